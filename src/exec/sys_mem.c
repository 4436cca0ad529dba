/* Memory calls on the address space of mm.c. A file mapping is a private
 * copy of the file's pages made at mmap time (MAP_SHARED writes do not reach
 * the file: docs/exec.md). mmap(NULL) addresses grow up from X_MMAP_BASE and
 * are never reused, so a stale pointer faults instead of aliasing. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec/exec.h"

#define KNOWN_FLAGS                                                                                \
	(MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_DENYWRITE |    \
	 MAP_EXECUTABLE | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK | MAP_STACK |   \
	 MAP_HUGETLB | MAP_FIXED_NOREPLACE | MAP_SHARED_VALIDATE)

/* Copy the file's bytes at off into the (writable) fresh pages at va. */
static int fill_from_file(struct xproc *p, int h, uint64_t va, uint64_t len, off_t off)
{
	while (len) {
		struct iovec iov[64];
		int n = mm_iov(&p->mm, va, len, true, iov, 64);
		if (n < 0)
			return n;
		size_t want = 0;
		for (int i = 0; i < n; i++)
			want += iov[i].iov_len;
		ssize_t got = preadv(h, iov, n, off);
		if (got < 0)
			return -errno;
		if ((size_t)got < want)
			return 0; /* end of file: the rest stays zero */
		va += want;
		len -= want;
		off += (off_t)want;
	}
	return 0;
}

static int64_t sys_mmap(struct xproc *p, const struct xsys *s)
{
	uint64_t addr = s->a[0], len = XPAGE_UP(s->a[1]);
	int prot = (int)s->a[2], flags = (int)s->a[3], fd = (int)s->a[4];
	uint64_t off = s->a[5];
	if (!s->a[1] || !len || (off & (XPAGE - 1)) || (flags & ~KNOWN_FLAGS) ||
	    !(flags & (MAP_SHARED | MAP_PRIVATE)))
		return -EINVAL;
	int h = -1;
	if (!(flags & MAP_ANONYMOUS) && (h = fd_host(p, fd)) < 0)
		return -EBADF;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (addr & (XPAGE - 1))
			return -EINVAL;
		if ((flags & MAP_FIXED_NOREPLACE) && !mm_range_free(&p->mm, addr, len))
			return -EEXIST;
	} else if (!addr || (addr & (XPAGE - 1)) || !mm_range_free(&p->mm, addr, len)) {
		if (len > X_STACK_TOP - X_STACK_SIZE - p->mm.mmap_next)
			return -ENOMEM;
		addr = p->mm.mmap_next;
		p->mm.mmap_next += len;
	}
	int rc = mm_map_anon(&p->mm, addr, len, h < 0 ? prot : PROT_READ | PROT_WRITE);
	if (rc)
		return rc;
	if (h >= 0) {
		rc = fill_from_file(p, h, addr, len, (off_t)off);
		if (!rc)
			rc = mm_protect(&p->mm, addr, len, prot);
		if (rc) {
			mm_unmap(&p->mm, addr, len);
			return rc;
		}
	}
	return (int64_t)addr;
}

static int64_t sys_munmap(struct xproc *p, const struct xsys *s)
{
	if ((s->a[0] & (XPAGE - 1)) || !s->a[1] || s->a[0] >= X_USER_END)
		return -EINVAL;
	mm_unmap(&p->mm, s->a[0], XPAGE_UP(s->a[1]));
	return 0;
}

static int64_t sys_mprotect(struct xproc *p, const struct xsys *s)
{
	if (!s->a[1])
		return (s->a[0] & (XPAGE - 1)) ? -EINVAL : 0;
	return mm_protect(&p->mm, s->a[0], XPAGE_UP(s->a[1]), (int)s->a[2]);
}

static int64_t sys_brk(struct xproc *p, const struct xsys *s)
{
	struct mm *mm = &p->mm;
	uint64_t want = s->a[0], have = XPAGE_UP(mm->brk);
	if (want < mm->brk_start || want > mm->brk_start + (1ull << 40))
		return (int64_t)mm->brk;
	uint64_t need = XPAGE_UP(want);
	if (need > have) {
		if (!mm_range_free(mm, have, need - have) ||
		    mm_map_anon(mm, have, need - have, PROT_READ | PROT_WRITE))
			return (int64_t)mm->brk;
	} else if (need < have) {
		mm_unmap(mm, need, have - need);
	}
	mm->brk = want;
	return (int64_t)want;
}

static int64_t sys_mremap(struct xproc *p, const struct xsys *s)
{
	uint64_t old = s->a[0], olen = XPAGE_UP(s->a[1]), nlen = XPAGE_UP(s->a[2]);
	int flags = (int)s->a[3];
	if ((old & (XPAGE - 1)) || !nlen || (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED)) ||
	    (flags & MREMAP_FIXED))
		return -EINVAL;
	if (nlen <= olen) {
		if (nlen < olen)
			mm_unmap(&p->mm, old + nlen, olen - nlen);
		return (int64_t)old;
	}
	if (mm_range_free(&p->mm, old + olen, nlen - olen))
		return mm_map_anon(&p->mm, old + olen, nlen - olen, PROT_READ | PROT_WRITE)
			   ?: (int64_t)old;
	if (!(flags & MREMAP_MAYMOVE))
		return -ENOMEM;
	uint64_t nva = p->mm.mmap_next;
	if (nlen > X_STACK_TOP - X_STACK_SIZE - nva)
		return -ENOMEM;
	p->mm.mmap_next += nlen;
	int rc = mm_move(&p->mm, old, olen, nva);
	if (!rc)
		rc = mm_map_anon(&p->mm, nva + olen, nlen - olen, PROT_READ | PROT_WRITE);
	return rc ? rc : (int64_t)nva;
}

static int64_t sys_madvise(struct xproc *p, const struct xsys *s)
{
	static const uint8_t zero[XPAGE];
	if (s->a[0] & (XPAGE - 1))
		return -EINVAL;
	if ((int)s->a[2] != MADV_DONTNEED)
		return 0; /* advice */
	/* anonymous memory reads as zero afterwards */
	for (uint64_t a = s->a[0]; a < s->a[0] + XPAGE_UP(s->a[1]); a += XPAGE)
		mm_poke(&p->mm, a, zero, XPAGE);
	return 0;
}

static int64_t sys_msync(struct xproc *p, const struct xsys *s)
{
	return 0;
}

void sys_mem_table(struct sys_entry *t)
{
	t[SYS_mmap] = (struct sys_entry){"mmap", sys_mmap, "xixxix"};
	t[SYS_mprotect] = (struct sys_entry){"mprotect", sys_mprotect, "xix"};
	t[SYS_munmap] = (struct sys_entry){"munmap", sys_munmap, "xi"};
	t[SYS_brk] = (struct sys_entry){"brk", sys_brk, "x"};
	t[SYS_mremap] = (struct sys_entry){"mremap", sys_mremap, "xiix"};
	t[SYS_madvise] = (struct sys_entry){"madvise", sys_madvise, "xii"};
	t[SYS_msync] = (struct sys_entry){"msync", sys_msync, "xix"};
}
