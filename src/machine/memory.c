#include "machine/memory.h"

#include <errno.h>
#include <fcntl.h>
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

#define THP_SYSFS "/sys/kernel/mm/transparent_hugepage/"

/* The host's policy for madvised memory of one kind, the bracketed word in
 * sysfs: anonymous memory ("enabled": always madvise never), shmem
 * ("shmem_enabled": always within_size advise never deny force). */
static bool thp_allowed(const char *file)
{
	char buf[128] = "";
	FILE *f = fopen(file, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strchr(buf, '[') && !strstr(buf, "[never]") && !strstr(buf, "[deny]");
}

static void clear(struct guest_mem *m)
{
	memset(m, 0, sizeof(*m));
	m->fd = m->pagemap_fd = -1;
}

static int map_ram(struct guest_mem *m, uint64_t size, int flags, char *err, size_t errlen);

static int new_memfd(struct guest_mem *m, uint64_t size, unsigned mfd_flags, char *err,
		     size_t errlen)
{
	clear(m);
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

static void want_thp(struct guest_mem *m, const char *policy)
{
	if (thp_allowed(policy) && !madvise(m->base, m->size, MADV_HUGEPAGE))
		m->pages = MEM_PAGES_THP;
}

int guest_mem_init(struct guest_mem *m, uint64_t size, char *err, size_t errlen)
{
	clear(m);
	if (check_size(size, err, errlen))
		return -EINVAL;
	int rc = map_ram(m, size, MAP_PRIVATE | MAP_ANONYMOUS, err, errlen);
	if (rc)
		return rc;
	want_thp(m, THP_SYSFS "enabled");
	/* A fork (a backend popek starts) must not share the RAM copy-on-write. */
	madvise(m->base, size, MADV_DONTFORK);
	/* Without it, snapshots read every page to find the touched ones. */
	m->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	return 0;
}

int guest_mem_init_shared(struct guest_mem *m, uint64_t size, char *err, size_t errlen)
{
	int rc = new_memfd(m, size, 0, err, errlen);
	if (!rc)
		want_thp(m, THP_SYSFS "shmem_enabled");
	return rc;
}

const char *guest_mem_kind(const struct guest_mem *m)
{
	return m->private_map ? "image" : m->fd < 0 ? "anonymous" : "memfd";
}

const char *guest_mem_why_4k(const struct guest_mem *m)
{
	return m->fd < 0 ? "transparent huge pages are off on this host (enable them with: echo "
			   "madvise > " THP_SYSFS "enabled, or use --mem-hugepages)"
			 : "it is a memfd for the vhost-user backends, and shmem huge pages are "
			   "off on this host (enable them with: echo advise > " THP_SYSFS
			   "shmem_enabled, or use --mem-hugepages)";
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
	int rc = new_memfd(m, size, MFD_HUGETLB, err, errlen);
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
	clear(m);
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
	if (m->pagemap_fd >= 0)
		close(m->pagemap_fd);
	m->base = NULL;
	m->fd = m->pagemap_fd = -1;
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
	uintptr_t off = (uintptr_t)hva - (uintptr_t)m->base;
	if (!len || off >= m->size || len > m->size - off)
		return;
	if (m->written)
		m->written(m->written_ctx, hva, len);
	uint64_t *bits = __atomic_load_n(&m->dirty, __ATOMIC_ACQUIRE);
	if (!bits)
		return;
	for (uint64_t pg = off >> 12; pg <= (off + len - 1) >> 12; pg++)
		__atomic_fetch_or(&bits[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
}

void guest_mem_written_somewhere(const struct guest_mem *m)
{
	if (m->written)
		m->written(m->written_ctx, NULL, 0);
}
