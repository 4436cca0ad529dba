#include "machine/memory.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

static int map_ram(struct guest_mem *m, uint64_t size, int flags, char *err, size_t errlen);

int guest_mem_init(struct guest_mem *m, uint64_t size, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (check_size(size, err, errlen))
		return -EINVAL;
	m->fd = memfd_create("popek-ram", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, (off_t)size) < 0) {
		snprintf(err, errlen, "cannot allocate %llu MiB of guest RAM: %s",
			 (unsigned long long)(size >> 20), strerror(errno));
		guest_mem_free(m);
		return -ENOMEM;
	}
	return map_ram(m, size, MAP_SHARED, err, errlen);
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

static int map_ram(struct guest_mem *m, uint64_t size, int flags, char *err, size_t errlen)
{
	/* MAP_NORESERVE: untouched guest pages cost nothing until used. */
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_NORESERVE, m->fd, 0);
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
