/* The program's address space. popek writes the guest's 4-level page tables
 * itself: they are the only record of the program's mappings (no VMA list),
 * so what the CPU sees and what popek serves can never disagree. Frames come
 * from the RAM: a bump pointer, then a stack of freed frames. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "exec/exec.h"

#define PTE_P	 1ull
#define PTE_W	 2ull
#define PTE_U	 4ull
#define PTE_NONE (1ull << 9) /* software: a frame kept while PROT_NONE */
#define PTE_NX	 (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

/* Frames below this hold nothing (the zero page catches null physical bugs). */
#define FIRST_FRAME 0x100000ull

/* An empty address space: no frame in use but the new PML4. */
static void mm_empty(struct mm *mm)
{
	mm->nfree = 0;
	mm->next_pa = FIRST_FRAME;
	mm->pml4 = mm->next_table = (mm->mem.size & ~(XPAGE - 1)) - XPAGE;
	mm->mmap_next = X_MMAP_BASE;
	mm->brk_start = mm->brk = 0;
	mm->need_flush = true;
}

int mm_init(struct mm *mm, uint64_t mem, char *err, size_t errlen)
{
	memset(mm, 0, sizeof(*mm));
	if (mem > MEM_PCI_HOLE_START)
		mem = MEM_PCI_HOLE_START; /* one flat range: gpa == offset in RAM */
	/* Private anonymous memory, inherited by a host fork() of popek: the fork
	 * is then a copy-on-write fork of the program's RAM (process.c). */
	if (guest_mem_init(&mm->mem, mem, err, errlen))
		return -1;
	madvise(mm->mem.base, mm->mem.size, MADV_DOFORK);
	mm_empty(mm);
	return 0;
}

void mm_reset(struct mm *mm)
{
	/* the pages dropped: RAM reads as zero */
	madvise(mm->mem.base, mm->mem.size, MADV_DONTNEED);
	mm_empty(mm);
}

void mm_free(struct mm *mm)
{
	guest_mem_free(&mm->mem);
	free(mm->free_pa);
	mm->free_pa = NULL;
}

static uint64_t *table(struct mm *mm, uint64_t pa)
{
	return (uint64_t *)(mm->mem.base + pa);
}

/* A zeroed frame, or 0 when RAM is exhausted. Never-used frames for data
 * come up from the bottom and for page tables down from the top: a host huge
 * page of RAM is zeroed at its first touch, and a mapping reserves its frames
 * at once (an 8 MiB stack of which a few pages are used), so a table written
 * among the data frames would cost the host a 2 MiB page for each table. */
static uint64_t frame_alloc(struct mm *mm, bool table)
{
	uint64_t pa;
	if (mm->nfree) {
		pa = mm->free_pa[--mm->nfree];
		memset(mm->mem.base + pa, 0, XPAGE);
		return pa;
	}
	if (mm->next_pa + XPAGE > mm->next_table)
		return 0;
	if (table) /* never used: it reads as zero */
		return mm->next_table -= XPAGE;
	pa = mm->next_pa;
	mm->next_pa += XPAGE;
	return pa;
}

static void frame_free(struct mm *mm, uint64_t pa)
{
	if (mm->nfree == mm->cap_free) {
		size_t cap = mm->cap_free ? mm->cap_free * 2 : 1024;
		uint64_t *n = realloc(mm->free_pa, cap * sizeof(*n));
		if (!n)
			return; /* the frame leaks; the program still runs */
		mm->free_pa = n;
		mm->cap_free = cap;
	}
	mm->free_pa[mm->nfree++] = pa;
}

/* The PTE slot of va; creates the tables on the way if create. */
static uint64_t *pte_slot(struct mm *mm, uint64_t va, bool create, bool user)
{
	uint64_t pa = mm->pml4;
	for (int shift = 39; shift > 12; shift -= 9) {
		uint64_t *e = &table(mm, pa)[(va >> shift) & 511];
		if (!(*e & PTE_P)) {
			if (!create)
				return NULL;
			uint64_t t = frame_alloc(mm, true);
			if (!t)
				return NULL;
			/* the leaf decides; upper levels allow all */
			*e = t | PTE_P | PTE_W | (user ? PTE_U : 0);
		}
		pa = *e & PTE_ADDR;
	}
	return &table(mm, pa)[(va >> 12) & 511];
}

static uint64_t prot_bits(int prot)
{
	if (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)))
		return PTE_NONE;
	return PTE_P | PTE_U | ((prot & PROT_WRITE) ? PTE_W : 0) |
	       ((prot & PROT_EXEC) ? 0 : PTE_NX);
}

static bool user_range(uint64_t va, uint64_t len)
{
	return len && va < X_USER_END && len <= X_USER_END - va;
}

void mm_unmap(struct mm *mm, uint64_t va, uint64_t len)
{
	if (!user_range(va, len))
		return;
	for (uint64_t a = XPAGE_DOWN(va); a < va + len; a += XPAGE) {
		uint64_t *e = pte_slot(mm, a, false, true);
		if (!e || !*e)
			continue;
		frame_free(mm, *e & PTE_ADDR);
		*e = 0;
		mm->need_flush = true;
	}
}

int mm_map_anon(struct mm *mm, uint64_t va, uint64_t len, int prot)
{
	if ((va & (XPAGE - 1)) || !user_range(va, len))
		return -EINVAL;
	mm_unmap(mm, va, len);
	uint64_t bits = prot_bits(prot);
	for (uint64_t a = va; a < va + len; a += XPAGE) {
		uint64_t *e = pte_slot(mm, a, true, true);
		uint64_t pa = e ? frame_alloc(mm, false) : 0;
		if (!pa) {
			mm_unmap(mm, va, a - va);
			return -ENOMEM;
		}
		*e = pa | bits;
	}
	return 0;
}

int mm_protect(struct mm *mm, uint64_t va, uint64_t len, int prot)
{
	if ((va & (XPAGE - 1)) || !user_range(va, len))
		return -EINVAL;
	uint64_t bits = prot_bits(prot);
	for (uint64_t a = va; a < va + len; a += XPAGE) {
		uint64_t *e = pte_slot(mm, a, false, true);
		if (!e || !*e)
			return -ENOMEM; /* Linux: a hole in the range */
		uint64_t old = *e;
		*e = (old & PTE_ADDR) | bits;
		if ((old & ~*e & (PTE_P | PTE_W)) || (~old & *e & PTE_NX))
			mm->need_flush = true;
	}
	return 0;
}

bool mm_range_free(struct mm *mm, uint64_t va, uint64_t len)
{
	if (!user_range(va, len))
		return false;
	for (uint64_t a = XPAGE_DOWN(va); a < va + len; a += XPAGE) {
		uint64_t *e = pte_slot(mm, a, false, true);
		if (e && *e)
			return false;
	}
	return true;
}

int mm_move(struct mm *mm, uint64_t old, uint64_t len, uint64_t new_va)
{
	if (!user_range(old, len) || !user_range(new_va, len))
		return -EINVAL;
	for (uint64_t off = 0; off < len; off += XPAGE) {
		uint64_t *from = pte_slot(mm, old + off, false, true);
		uint64_t *to = pte_slot(mm, new_va + off, true, true);
		if (!to)
			return -ENOMEM;
		*to = from ? *from : 0;
		if (from)
			*from = 0;
	}
	mm->need_flush = true;
	return 0;
}

void *mm_map_kernel(struct mm *mm, uint64_t va, bool exec)
{
	uint64_t *e = pte_slot(mm, va, true, false);
	/* a page already there is kept: a thread slot's pages are mapped again
	 * each time the slot runs a new thread */
	uint64_t pa = !e ? 0 : (*e & PTE_P) ? *e & PTE_ADDR : frame_alloc(mm, false);
	if (!pa)
		return NULL;
	*e = pa | PTE_P | PTE_W | (exec ? 0 : PTE_NX);
	return mm->mem.base + pa;
}

int mm_map_fixed(struct mm *mm, uint64_t va, uint64_t pa, int prot)
{
	uint64_t *e = pte_slot(mm, va, true, true);
	if (!e)
		return -ENOMEM;
	*e = pa | prot_bits(prot);
	return 0;
}

/* Host address of user page va with the access allowed, or NULL. */
static uint8_t *user_page(struct mm *mm, uint64_t va, bool write, bool any)
{
	if (va >= X_USER_END)
		return NULL;
	uint64_t *e = pte_slot(mm, va, false, true);
	if (!e || !(*e & (any ? PTE_P | PTE_NONE : PTE_P)) || (write && !any && !(*e & PTE_W)))
		return NULL;
	return mm->mem.base + (*e & PTE_ADDR);
}

static int copy(struct mm *mm, uint64_t va, void *buf, size_t len, bool write, bool any)
{
	uint8_t *b = buf;
	while (len) {
		uint8_t *page = user_page(mm, XPAGE_DOWN(va), write, any);
		if (!page)
			return -EFAULT;
		size_t off = va & (XPAGE - 1), n = XPAGE - off;
		if (n > len)
			n = len;
		if (write)
			memcpy(page + off, b, n);
		else
			memcpy(b, page + off, n);
		va += n;
		b += n;
		len -= n;
	}
	return 0;
}

int mm_read(struct mm *mm, uint64_t va, void *dst, size_t len)
{
	return copy(mm, va, dst, len, false, false);
}

int mm_write(struct mm *mm, uint64_t va, const void *src, size_t len)
{
	return copy(mm, va, (void *)src, len, true, false);
}

int mm_poke(struct mm *mm, uint64_t va, const void *src, size_t len)
{
	return copy(mm, va, (void *)src, len, true, true);
}

int mm_read_str(struct mm *mm, uint64_t va, char *dst, size_t max)
{
	uint8_t *page = NULL;
	for (size_t i = 0; i < max; i++) {
		if (!page || ((va + i) & (XPAGE - 1)) == 0)
			page = user_page(mm, XPAGE_DOWN(va + i), false, false);
		if (!page)
			return -EFAULT;
		dst[i] = (char)page[(va + i) & (XPAGE - 1)];
		if (!dst[i])
			return 0;
	}
	return -ENAMETOOLONG;
}

int mm_iov(struct mm *mm, uint64_t va, uint64_t len, bool write, struct iovec *iov, int max)
{
	int n = 0;
	while (len && n < max) {
		uint8_t *page = user_page(mm, XPAGE_DOWN(va), write, false);
		if (!page)
			return n ? n : -EFAULT; /* a short transfer up to the hole */
		size_t off = va & (XPAGE - 1), k = XPAGE - off;
		if (k > len)
			k = len;
		if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == page + off) {
			iov[n - 1].iov_len += k; /* adjacent frames: one piece */
		} else {
			iov[n].iov_base = page + off;
			iov[n].iov_len = k;
			n++;
		}
		va += k;
		len -= k;
	}
	return n;
}

int mm_iovec(struct mm *mm, uint64_t vec, uint64_t cnt, bool write, struct iovec *iov, int max)
{
	if (cnt > 1024)
		return -EINVAL;
	int n = 0;
	for (uint64_t i = 0; i < cnt && n < max; i++) {
		uint64_t g[2];
		if (mm_read(mm, vec + i * 16, g, sizeof(g)))
			return -EFAULT;
		int k = mm_iov(mm, g[0], g[1] > (16u << 20) ? 16u << 20 : g[1], write, iov + n,
			       max - n);
		if (k < 0)
			return n ? n : k; /* a short transfer up to the hole */
		n += k;
	}
	return n;
}

/* Walk the user half's leaf entries in address order, coalescing runs of
 * pages with one protection. */
static void walk(struct mm *mm, uint64_t pa, int shift, uint64_t base, mm_range_fn fn, void *ctx,
		 uint64_t *start, uint64_t *end, int *prot)
{
	const uint64_t *t = table(mm, pa);
	for (int i = 0; i < (shift == 39 ? 256 : 512); i++) {
		uint64_t va = base + ((uint64_t)i << shift), e = t[i];
		if (shift > 12 && (e & PTE_P)) {
			walk(mm, e & PTE_ADDR, shift - 9, va, fn, ctx, start, end, prot);
			continue;
		}
		if (shift > 12 || !(e & (PTE_P | PTE_NONE)) || !(e & (PTE_U | PTE_NONE)))
			continue;
		int pr = (e & PTE_NONE) ? 0
					: PROT_READ | ((e & PTE_W) ? PROT_WRITE : 0) |
					      ((e & PTE_NX) ? 0 : PROT_EXEC);
		if (*end == va && *prot == pr) {
			*end += XPAGE;
			continue;
		}
		if (*end)
			fn(ctx, *start, *end, *prot);
		*start = va;
		*end = va + XPAGE;
		*prot = pr;
	}
}

void mm_ranges(struct mm *mm, mm_range_fn fn, void *ctx)
{
	uint64_t start = 0, end = 0;
	int prot = -1;
	walk(mm, mm->pml4, 39, 0, fn, ctx, &start, &end, &prot);
	if (end)
		fn(ctx, start, end, prot);
}
