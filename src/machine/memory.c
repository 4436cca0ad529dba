#include "machine/memory.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE (2ull << 20)

const char *const mem_pages_names[] = {
    [MEM_PAGES_4K] = "4k",
    [MEM_PAGES_THP] = "thp",
    [MEM_PAGES_HUGETLB] = "hugetlb",
};

static int check_size(uint64_t size, char *err, size_t errlen)
{
	if (size < MEM_MIN_SIZE || size > MEM_MAX_SIZE || (size & 0xfff)) {
		snprintf(err, errlen,
			 "memory size %llu bytes is invalid — use 2M..1T in whole pages",
			 (unsigned long long)size);
		return -EINVAL;
	}
	return 0;
}

/* Whether a memfd mapping gets huge pages when madvised: the host's policy
 * for shmem, the bracketed word in sysfs (never and deny refuse). */
static bool shmem_thp_allowed(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, "[always]") || strstr(buf, "[within_size]") || strstr(buf, "[advise]") ||
	       strstr(buf, "[force]");
}

static int map_ram(struct guest_mem *m, uint64_t size, int flags, char *err, size_t errlen);

static int new_ram(struct guest_mem *m, uint64_t size, unsigned mfd_flags, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (check_size(size, err, errlen))
		return -EINVAL;
	m->fd = memfd_create("popek-ram", MFD_CLOEXEC | mfd_flags);
	if (m->fd < 0 || ftruncate(m->fd, (off_t)size) < 0) {
		snprintf(err, errlen, "cannot allocate %llu MiB of guest RAM: %s",
			 (unsigned long long)(size >> 20), strerror(errno));
		guest_mem_free(m);
		return -ENOMEM;
	}
	if (mfd_flags & MFD_HUGETLB)
		m->pages = MEM_PAGES_HUGETLB;
	return map_ram(m, size, MAP_SHARED, err, errlen);
}

int guest_mem_init(struct guest_mem *m, uint64_t size, char *err, size_t errlen)
{
	int rc = new_ram(m, size, 0, err, errlen);
	if (!rc && shmem_thp_allowed() && !madvise(m->base, size, MADV_HUGEPAGE))
		m->pages = MEM_PAGES_THP;
	return rc;
}

/* Free reserved huge pages, or -1 if the host says nothing. */
static long hugetlb_free(void)
{
	long n = -1;
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

int guest_mem_init_hugetlb(struct guest_mem *m, uint64_t size, char *err, size_t errlen)
{
	if (size % HUGE_PAGE) {
		snprintf(err, errlen, "--mem-hugepages: --mem must be a multiple of 2M");
		return -EINVAL;
	}
	/* The mapping reserves the pages (no MAP_NORESERVE), so a host without
	 * enough fails here rather than with SIGBUS at the guest's first touch. */
	int rc = new_ram(m, size, MFD_HUGETLB, err, errlen);
	if (rc == -ENOMEM) {
		unsigned long long need = size / HUGE_PAGE;
		snprintf(err, errlen,
			 "--mem-hugepages: %ld free 2 MiB huge pages, %llu needed — reserve them "
			 "with: echo %llu > /proc/sys/vm/nr_hugepages",
			 hugetlb_free(), need, need);
	}
	return rc;
}

int guest_mem_init_fd(struct guest_mem *m, uint64_t size, int fd, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->fd = fd;
	if (check_size(size, err, errlen)) {
		guest_mem_free(m);
		return -EINVAL;
	}
	m->private_map = true;
	return map_ram(m, size, MAP_PRIVATE, err, errlen);
}

/* Map at a 2 MiB-aligned address: a huge page needs the host address and the
 * guest-physical address (offset 0 here) aligned alike. */
static void *map_aligned(uint64_t size, int flags, int fd)
{
	uint8_t *r = mmap(NULL, size + HUGE_PAGE, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return MAP_FAILED;
	uint8_t *a = (uint8_t *)(((uintptr_t)r + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	if (a > r)
		munmap(r, (size_t)(a - r));
	munmap(a + size, (size_t)(r + HUGE_PAGE - a));
	void *p = mmap(a, size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		munmap(a, size);
	return p;
}

static int map_ram(struct guest_mem *m, uint64_t size, int flags, char *err, size_t errlen)
{
	/* MAP_NORESERVE: untouched guest pages cost nothing until used. */
	if (m->pages != MEM_PAGES_HUGETLB)
		flags |= MAP_NORESERVE;
	m->base = map_aligned(size, flags, m->fd);
	if (m->base == MAP_FAILED) {

		m->base = NULL;
		snprintf(err, errlen, "cannot map %llu MiB of guest RAM: %s",
			 (unsigned long long)(size >> 20), strerror(errno));
		goto fail;
	}
	madvise(m->base, size, MADV_DONTDUMP);
	m->size = size;
	uint64_t low = size < MEM_PCI_HOLE_START ? size : MEM_PCI_HOLE_START;
	m->range[0] = (struct mem_range){.gpa = 0, .size = low, .offset = 0};
	m->nranges = 1;
	if (size > low)
		m->range[m->nranges++] =
		    (struct mem_range){.gpa = MEM_HIGH_START, .size = size - low, .offset = low};
	return 0;
fail:
	guest_mem_free(m);
	return -ENOMEM;
}

void guest_mem_free(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->base = NULL;
	m->fd = -1;
}

void *gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->nranges; i++) {
		const struct mem_range *r = &m->range[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return m->base + r->offset + (gpa - r->gpa);
	}
	return NULL;
}

int gpa_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = gpa_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

int gpa_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gpa_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(p, src, len);
	return 0;
}

void guest_mem_dirty(const struct guest_mem *m, const void *hva, uint64_t len)
{
	uint64_t *bits = __atomic_load_n(&m->dirty, __ATOMIC_ACQUIRE);
	uintptr_t off = (uintptr_t)hva - (uintptr_t)m->base;
	if (!bits || !len || off >= m->size || len > m->size - off)
		return;
	for (uint64_t pg = off >> 12; pg <= (off + len - 1) >> 12; pg++)
		__atomic_fetch_or(&bits[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
}
