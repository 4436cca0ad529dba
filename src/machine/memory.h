/* Guest RAM: one mapping in the VMM, exposed as up to two guest-physical
 * ranges (below the 32-bit PCI hole, and above 4 GiB). Fresh RAM is private
 * anonymous memory, which gets transparent huge pages under the host's usual
 * policy, unless a vhost-user backend must map it too: then it is a memfd,
 * whose huge pages depend on the host's shmem policy (off by default). */
#ifndef POPEK_MEMORY_H
#define POPEK_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEM_PCI_HOLE_START 0xc0000000ull /* 3 GiB: start of MMIO below 4 GiB */
#define MEM_HIGH_START	   0x100000000ull
#define MEM_MIN_SIZE	   (2ull << 20)
#define MEM_MAX_SIZE	   (1ull << 40)

struct mem_range {
	uint64_t gpa, size;
	uint64_t offset; /* in base[] and in fd */
};

/* How the RAM is backed, best first; a guest's first touch of a 4 KiB page
 * costs a host fault and, on kvm, a nested-paging fault per page. */
enum mem_pages {
	MEM_PAGES_4K,	   /* the host's policy for this kind of RAM refuses huge pages */
	MEM_PAGES_THP,	   /* transparent huge pages (MADV_HUGEPAGE) */
	MEM_PAGES_HUGETLB, /* --mem-hugepages: reserved 2 MiB pages (hugetlbfs memfd) */
};
extern const char *const mem_pages_names[];

struct guest_mem {
	int fd; /* the memfd or image the RAM is in; -1: anonymous RAM */
	/* Anonymous RAM: /proc/self/pagemap, opened before the jail, for the
	 * pages ever touched (snapshots, migration); -1 otherwise. */
	int pagemap_fd;
	enum mem_pages pages;
	uint8_t *base;
	uint64_t size;	  /* total RAM */
	bool private_map; /* MAP_PRIVATE over an image: written pages are not in fd */
	/* While a migration runs: a bit per 4 KiB page (by offset in base[]) that
	 * a device wrote; NULL otherwise. Set through guest_mem_dirty. */
	uint64_t *dirty;
	/* Told of every write guest_mem_dirty and guest_mem_written_somewhere
	 * report: the engine, whose cached translations of guest code go stale
	 * when the VMM writes code (soft). Set by the machine; NULL: none. */
	void (*written)(void *ctx, const void *hva, uint64_t len);
	void *written_ctx;
	int nranges;
	struct mem_range range[2];
};

/* Fresh RAM on transparent huge pages where the host allows them, else 4 KiB
 * pages: anonymous, or with _shared a memfd (m->fd) other processes can map.
 * guest_mem_init_hugetlb insists on reserved 2 MiB pages (a hugetlbfs memfd). */
int guest_mem_init(struct guest_mem *m, uint64_t size, char *err, size_t errlen);
int guest_mem_init_shared(struct guest_mem *m, uint64_t size, char *err, size_t errlen);
int guest_mem_init_hugetlb(struct guest_mem *m, uint64_t size, char *err, size_t errlen);
/* Map RAM copy-on-write from an image file (restore, clones): pages are read
 * lazily and shared between VMs until one writes. Takes ownership of fd. */
int guest_mem_init_fd(struct guest_mem *m, uint64_t size, int fd, char *err, size_t errlen);
void guest_mem_free(struct guest_mem *m);

/* What the RAM is, for --stats: "anonymous", "memfd" or "image" (restored or
 * migrated, copy-on-write). */
const char *guest_mem_kind(const struct guest_mem *m);
/* For fresh RAM on 4 KiB pages: the host setting that refused huge pages,
 * and the fix, as the end of one line to the user. */
const char *guest_mem_why_4k(const struct guest_mem *m);

/* Host pointer for guest-physical [gpa, gpa+len), or NULL unless the whole
 * span is RAM inside one range. Every guest-supplied address goes through this. */
void *gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copy in/out of guest RAM; -1 if the span is not RAM. */
int gpa_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
int gpa_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

/* A device wrote host memory [hva, hva+len) of m (inside base[]): tell the
 * engine, and record the pages for a migration's next round if one runs.
 * Every VMM write to RAM a running guest may execute goes through here. */
void guest_mem_dirty(const struct guest_mem *m, const void *hva, uint64_t len);
/* Does anyone want to hear of device writes (guest_mem_dirty)? */
static inline bool guest_mem_watched(const struct guest_mem *m)
{
	return m->written || __atomic_load_n(&m->dirty, __ATOMIC_RELAXED);
}
/* Something outside popek (a vhost-user backend) wrote RAM, where popek
 * cannot tell: the engine treats all of it as possibly changed. */
void guest_mem_written_somewhere(const struct guest_mem *m);

#endif
