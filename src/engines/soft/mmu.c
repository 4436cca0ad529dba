/* Guest address translation: segmentation, the page walk, and the software TLB.
 *
 * The TLB is the soft engine's shadow page table: each entry maps one guest
 * virtual page straight to a host pointer, with a separate tag per access kind
 * (read, write, execute) and privilege (supervisor, user), so that a hit needs
 * no permission check at all. An entry only gets a write tag once the guest
 * PTE's dirty bit is set, so the first write to a clean page walks again and
 * sets D as hardware does. Entries die exactly where a real TLB's would: CR3
 * writes (except global pages), INVLPG, and paging-mode changes. */
#include <string.h>

#include "engines/soft/soft.h"

#define PTE_P	 (1ull << 0)
#define PTE_W	 (1ull << 1)
#define PTE_U	 (1ull << 2)
#define PTE_A	 (1ull << 5)
#define PTE_D	 (1ull << 6)
#define PTE_PS	 (1ull << 7)
#define PTE_G	 (1ull << 8)
#define PTE_NX	 (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

/* Reserved bits (SDM Vol. 3 4.4.2, 4.5.4): set in a present entry they make
 * the walk fail with #PF, error code P|RSVD. Beyond the address bits above
 * MAXPHYADDR (up to bit 51 in 4-level paging, where 62:52 are ignored; up to
 * bit 62 in PAE) and XD without EFER.NXE, by level (1 = PTE ... 4 = PML4E):
 * PS where no large page exists, and a large page's address bits below its
 * alignment (bit 12 is its PAT bit). */
#define RSVD_PHYS_4LEVEL (((1ull << 52) - 1) & ~((1ull << PHYS_ADDR_BITS) - 1))
#define RSVD_PHYS_PAE	 (((1ull << 63) - 1) & ~((1ull << PHYS_ADDR_BITS) - 1))
static const uint64_t rsvd_level[5] = {[4] = PTE_PS};
static const uint64_t rsvd_large[5] = {[2] = 0x1fe000, [3] = 0x3fffe000};
/* 32-bit paging, 4 MiB page without PSE-36 (not offered): bits 21:13 */
#define RSVD_4M 0x3fe000u

uint8_t *phys_ptr(struct engine_vm *vm, uint64_t gpa, uint64_t len, bool write)
{
	for (int i = 0; i < vm->nslots; i++) {
		struct soft_slot *s = &vm->slot[i];
		if (gpa >= s->gpa && gpa - s->gpa < s->size && len <= s->size - (gpa - s->gpa)) {
			if (write && (s->flags & ENGINE_MEM_READONLY))
				return NULL;
			return s->hva + (gpa - s->gpa);
		}
	}
	return NULL;
}

static void slot_dirty(struct soft_slot *s, uint64_t page)
{
	uint64_t *d = __atomic_load_n(&s->dirty, __ATOMIC_ACQUIRE);
	if (d)
		__atomic_fetch_or(&d[page / 64], 1ull << (page % 64), __ATOMIC_RELAXED);
}

void phys_written(struct engine_vm *vm, const void *hva)
{
	for (int i = 0; i < vm->nslots; i++) {
		struct soft_slot *s = &vm->slot[i];
		uintptr_t off = (uintptr_t)hva - (uintptr_t)s->hva;
		if (off < s->size)
			slot_dirty(s, off >> 12);
	}
}

/* The code word of the RAM page at gpa (which phys_ptr found). */
static uint64_t *code_word(struct engine_vm *vm, uint64_t gpa)
{
	for (int i = 0; i < vm->nslots; i++) {
		struct soft_slot *s = &vm->slot[i];
		if (gpa - s->gpa < s->size)
			return &s->code[(gpa - s->gpa) >> 12];
	}
	return NULL;
}

static void revalidate(struct engine_vm *vm, uint64_t holders)
{
	for (int i = 0; holders; i++, holders >>= 1) {
		struct soft_cpu *o = vm->cpu[i];
		if ((holders & 1) && o)
			epoch_bump(o);
	}
}

/* This vCPU wrote a page that vCPUs (itself included) hold decoded code
 * from: each of them revalidates its blocks against guest memory before it
 * runs another one — at once, without waiting for the serialization the
 * architecture asks of cross-modifying code — this vCPU's current block ends
 * after this instruction, and writes to the page run at full speed until code
 * is decoded from it again (fetch_block). That is also why a serializing
 * instruction (the SDM's cross-modification protocol, Linux's sync_core)
 * need not make a vCPU look at guest memory again. */
void code_written(struct soft_cpu *c, uint64_t *code)
{
	uint64_t holders = __atomic_exchange_n(code, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < c->vm->nslots; i++) {
		struct soft_slot *s = &c->vm->slot[i];
		if ((uint64_t)(code - s->code) < s->size >> 12)
			slot_dirty(s, (uint64_t)(code - s->code));
	}
	revalidate(c->vm, holders);
	c->stop = true;
}

/* A device wrote RAM (engine_ops.ram_written): the vCPUs holding code of
 * those pages revalidate it before their next block, as for code_written;
 * the others keep theirs. The device ordered its writes before the
 * interrupt that announces them, and a vCPU takes the interrupt before it
 * runs a block, so it sees the bump. A migration's log of the pages is the
 * machine's (guest_mem_dirty), so DIRTY_ARMED stays; bit 63 is also vCPU
 * 63's, which revalidates whenever it is set. */
void soft_ram_written(struct engine_vm *vm, const void *hva, uint64_t len)
{
	if (!hva) {
		revalidate(vm, ~0ull);
		return;
	}
	for (int i = 0; i < vm->nslots; i++) {
		struct soft_slot *s = &vm->slot[i];
		uint64_t off = (uint64_t)((uintptr_t)hva - (uintptr_t)s->hva);
		if (off >= s->size || !len)
			continue;
		uint64_t last = len - 1 > s->size - 1 - off ? s->size - 1 : off + len - 1;
		for (uint64_t pg = off >> 12; pg <= last >> 12; pg++)
			if (__atomic_load_n(&s->code[pg], __ATOMIC_RELAXED))
				revalidate(vm, __atomic_fetch_and(&s->code[pg], DIRTY_ARMED,
								  __ATOMIC_RELAXED));
	}
}

uint64_t seg_lin_slow(struct soft_cpu *c, int seg, uint64_t off, int size, int acc)
{
	if (c->mode == 8) {
		uint64_t lin = off;
		if (seg >= SEG_FS)
			lin += c->seg[seg].base;
		if ((uint64_t)((int64_t)(lin << 16) >> 16) != lin)
			raise_exc(c, seg == SEG_SS ? EXC_SS : EXC_GP, true, 0);
		return lin;
	}
	struct seg *s = &c->seg[seg];
	if (c->cr0 & CR0_PE) {
		/* Null or unusable selectors fault on use; limits of expand-up
		 * segments are checked (boot code relies on flat ones). */
		if (s->unusable)
			raise_exc(c, seg == SEG_SS ? EXC_SS : EXC_GP, true, 0);
		if (!(s->type & 4) && (off > s->limit || off + size - 1 > s->limit))
			raise_exc(c, seg == SEG_SS ? EXC_SS : EXC_GP, true, 0);
		if (acc == ACC_WRITE && s->s && (s->type & 0xa) != 2)
			raise_exc(c, seg == SEG_SS ? EXC_SS : EXC_GP, true, 0);
	}
	return (s->base + off) & 0xffffffffull;
}

void tlb_flush(struct soft_cpu *c, bool keep_global)
{
	counter_add(&c->stat_tlb_flush, 1);
	if (keep_global)
		epoch_bump_local(c);
	else
		epoch_bump(c);
	for (int u = 0; u < 2; u++)
		for (unsigned i = 0; i < TLB_SIZE; i++) {
			struct tlb_entry *e = &c->tlb[u][i];
			if (keep_global && e->global)
				continue;
			e->tag[0] = e->tag[1] = e->tag[2] = ~0ull;
			e->global = false;
		}
	if (!keep_global) {
		c->tlb_large_lo = ~0ull;
		c->tlb_large_last = 0;
	}
}

void tlb_flush_page(struct soft_cpu *c, uint64_t lin)
{
	counter_add(&c->stat_tlb_flush, 1);
	epoch_bump(c);
	if (lin < c->tlb_large_lo || lin > c->tlb_large_last) {
		/* no large page covers lin: its 4 KiB entries are the only ones */
		uint64_t page = lin & ~0xfffull;
		for (int u = 0; u < 2; u++) {
			struct tlb_entry *e = &c->tlb[u][(lin >> 12) & (TLB_SIZE - 1)];
			if (e->tag[0] == page || e->tag[1] == page || e->tag[2] == page)
				e->tag[0] = e->tag[1] = e->tag[2] = ~0ull;
		}
		return;
	}
	/* Large pages are cached as 4 KiB pieces: drop every piece of the guest
	 * page that contains lin, as INVLPG drops the whole large translation. */
	for (int u = 0; u < 2; u++)
		for (unsigned i = 0; i < TLB_SIZE; i++) {
			struct tlb_entry *e = &c->tlb[u][i];
			if (e->tag[0] == ~0ull && e->tag[1] == ~0ull && e->tag[2] == ~0ull)
				continue;
			uint64_t page = e->tag[0] != ~0ull   ? e->tag[0]
					: e->tag[1] != ~0ull ? e->tag[1]
							     : e->tag[2];
			if (((page ^ lin) & e->pmask) == 0)
				e->tag[0] = e->tag[1] = e->tag[2] = ~0ull;
		}
}

/* PAE paging loads the four PDPTEs with MOV to CR3 (and the CR0/CR4 writes
 * that start or change it); a present one with reserved bits (2:1, 8:5, above
 * MAXPHYADDR) makes that write #GP. false for such a PDPT. */
bool pae_pdpt_valid(struct soft_cpu *c, uint64_t cr3)
{
	const uint64_t rsvd = 0x1e6 | ~((1ull << PHYS_ADDR_BITS) - 1);
	for (int i = 0; i < 4; i++) {
		uint8_t *p = phys_ptr(c->vm, (cr3 & 0xffffffe0) + i * 8, 8, false);
		uint64_t e = p ? load_n(p, 8) : 0; /* outside RAM: the walk says #MC */
		if ((e & PTE_P) && (e & rsvd))
			return false;
	}
	return true;
}

static uint64_t *pte_ptr(struct soft_cpu *c, uint64_t gpa)
{
	uint64_t *p = (uint64_t *)(void *)phys_ptr(c->vm, gpa, 8, true);
	if (!p)
		raise_exc(c, EXC_MC, false, 0); /* page tables outside RAM */
	return p;
}

/* Accessed/dirty bits, set as hardware does. The page table may hold code
 * this vCPU cached, so its blocks are revalidated (rarely matters: the bits
 * are only written when they change). */
static void pte_set(struct soft_cpu *c, uint64_t *e, uint64_t bits)
{
	if ((__atomic_load_n(e, __ATOMIC_RELAXED) & bits) == bits)
		return;
	epoch_bump(c);
	phys_written(c->vm, e);
	__atomic_fetch_or(e, bits, __ATOMIC_RELAXED);
}

static void pte_set32(struct soft_cpu *c, uint32_t *e, uint32_t bits)
{
	if ((__atomic_load_n(e, __ATOMIC_RELAXED) & bits) == bits)
		return;
	epoch_bump(c);
	phys_written(c->vm, e);
	__atomic_fetch_or(e, bits, __ATOMIC_RELAXED);
}

static _Noreturn void page_fault(struct soft_cpu *c, uint64_t lin, uint32_t err)
{
	c->cr2 = lin;
	raise_exc(c, EXC_PF, true, err);
}

/* Walk the guest page tables for lin; returns the guest-physical address and
 * the effective permissions. Sets accessed/dirty bits like hardware. */
static uint64_t walk(struct soft_cpu *c, uint64_t lin, int acc, int user, bool *w_ok, bool *x_ok,
		     bool *u_ok, bool *dirty, bool *global, uint64_t *pmask_out)
{
	bool nxe = c->efer & EFER_NXE, write = acc == ACC_WRITE;
	uint32_t err = (write ? 2 : 0) | (user ? 4 : 0) | (acc == ACC_EXEC && nxe ? 16 : 0);
	bool w = true, u = true, x = true;
	uint64_t gpa, pte;

	if (!(c->cr0 & CR0_PG)) {
		*w_ok = *x_ok = *u_ok = *dirty = true;
		*global = false;
		*pmask_out = ~0xfffull;
		return lin;
	}
	if (!(c->cr4 & CR4_PAE)) {
		/* 32-bit paging: two levels of 4-byte entries, 4 MiB pages with PSE. */
		uint32_t *pde = (uint32_t *)(void *)phys_ptr(
		    c->vm, (c->cr3 & 0xfffff000) + ((lin >> 22) & 0x3ff) * 4, 4, true);
		if (!pde)
			raise_exc(c, EXC_MC, false, 0);
		uint32_t pdv = __atomic_load_n(pde, __ATOMIC_ACQUIRE); /* read once */
		if (!(pdv & PTE_P))
			page_fault(c, lin, err);
		w = pdv & PTE_W;
		u = pdv & PTE_U;
		pte_set32(c, pde, (uint32_t)PTE_A);
		uint32_t *leaf, lv = pdv;
		*pmask_out = ~0xfffull;
		if ((pdv & PTE_PS) && (c->cr4 & CR4_PSE)) {
			if (pdv & RSVD_4M)
				page_fault(c, lin, err | 1 | 8);
			*pmask_out = ~0x3fffffull;
			leaf = pde;
			gpa = (pdv & 0xffc00000u) | (lin & 0x3fffff);
		} else {
			leaf = (uint32_t *)(void *)phys_ptr(
			    c->vm, (pdv & 0xfffff000u) + ((lin >> 12) & 0x3ff) * 4, 4, true);
			if (!leaf)
				raise_exc(c, EXC_MC, false, 0);
			lv = __atomic_load_n(leaf, __ATOMIC_ACQUIRE);
			if (!(lv & PTE_P))
				page_fault(c, lin, err);
			w = w && (lv & PTE_W);
			u = u && (lv & PTE_U);
			gpa = (lv & 0xfffff000u) | (lin & 0xfff);
		}
		pte = lv;
		bool wok = w || (!user && !(c->cr0 & CR0_WP));
		if ((user && !u) || (write && !wok))
			page_fault(c, lin, err | 1);
		pte_set32(c, leaf, (uint32_t)(PTE_A | (write ? PTE_D : 0)));
		*w_ok = wok;
		*u_ok = u;
		*x_ok = true;
		*dirty = write || (pte & PTE_D);
		*global = (pte & PTE_G) && (c->cr4 & CR4_PGE);
		return gpa;
	}

	int level;
	uint64_t table, rsvd = nxe ? 0 : PTE_NX;
	if (c->efer & EFER_LMA) {
		level = 4;
		table = c->cr3 & PTE_ADDR;
		rsvd |= RSVD_PHYS_4LEVEL;
	} else {
		rsvd |= RSVD_PHYS_PAE;
		/* PAE: the 4 PDPTEs carry only P (the CPU loads them at CR3 write). */
		uint64_t *pdpte = pte_ptr(c, (c->cr3 & 0xffffffe0) + ((lin >> 30) & 3) * 8);
		uint64_t pdv = __atomic_load_n(pdpte, __ATOMIC_ACQUIRE);
		if (!(pdv & PTE_P))
			page_fault(c, lin, err);
		level = 2;
		table = pdv & PTE_ADDR;
	}
	uint64_t *e;
	for (;;) {
		int shift = 12 + 9 * (level - 1);
		e = pte_ptr(c, table + ((lin >> shift) & 0x1ff) * 8);
		pte = __atomic_load_n(e, __ATOMIC_ACQUIRE); /* other vCPUs set A/D bits */
		if (!(pte & PTE_P))
			page_fault(c, lin, err);
		bool large = (pte & PTE_PS) && level <= 3;
		if (pte & (rsvd | rsvd_level[level] | (large ? rsvd_large[level] : 0)))
			page_fault(c, lin, err | 1 | 8);
		w = w && (pte & PTE_W);
		u = u && (pte & PTE_U);
		x = x && !((pte & PTE_NX) && nxe);
		if (level == 1 || large) {
			uint64_t pmask = (1ull << shift) - 1;
			gpa = (pte & PTE_ADDR & ~pmask) | (lin & pmask);
			*pmask_out = ~pmask;
			break;
		}
		if (!(pte & PTE_A))
			pte_set(c, e, PTE_A);
		table = pte & PTE_ADDR;
		level--;
	}
	bool wok = w || (!user && !(c->cr0 & CR0_WP));
	if ((user && !u) || (write && !wok) || (acc == ACC_EXEC && !x))
		page_fault(c, lin, err | 1);
	uint64_t set = PTE_A | (write ? PTE_D : 0);
	if ((pte & set) != set)
		pte_set(c, e, set);
	*w_ok = wok;
	*u_ok = u;
	*x_ok = x;
	*dirty = write || (pte & PTE_D);
	*global = (pte & PTE_G) && (c->cr4 & CR4_PGE);
	return gpa;
}

/* Translate lin for acc; returns a host pointer (and caches the page) when it
 * is RAM, or NULL with *gpa_out set when it is MMIO. Raises #PF. */
static uint8_t *translate(struct soft_cpu *c, uint64_t lin, int acc, int user, uint64_t *gpa_out)
{
	bool w, x, u, dirty, global;
	uint64_t pmask;
	counter_add(&c->stat_tlb_miss, 1);
	uint64_t gpa = walk(c, lin, acc, user, &w, &x, &u, &dirty, &global, &pmask);
	*gpa_out = gpa;
	uint8_t *host = phys_ptr(c->vm, gpa & ~0xfffull, 0x1000, false);
	if (!host)
		return NULL;
	uint8_t *host_w = phys_ptr(c->vm, gpa & ~0xfffull, 0x1000, true);
	uint64_t page = lin & ~0xfffull;
	struct tlb_entry *e = &c->tlb[user][(lin >> 12) & (TLB_SIZE - 1)];
	if (e->tag[0] != page && e->tag[1] != page && e->tag[2] != page)
		e->tag[0] = e->tag[1] = e->tag[2] = ~0ull;
	e->addend = (uintptr_t)host - page;
	e->code = code_word(c->vm, gpa);
	e->global = global;
	e->pmask = pmask;
	if (pmask != ~0xfffull) {
		uint64_t base = lin & pmask, last = base | ~pmask;
		if (base < c->tlb_large_lo)
			c->tlb_large_lo = base;
		if (last > c->tlb_large_last)
			c->tlb_large_last = last;
	}
	e->tag[ACC_READ] = page;
	e->tag[ACC_WRITE] = w && dirty && host_w ? page : ~0ull;
	e->tag[ACC_EXEC] = x ? page : ~0ull;
	if (acc == ACC_WRITE && !host_w)
		return NULL;
	if (acc == ACC_WRITE)
		code_check(c, e);
	return host + (gpa & 0xfff);
}

uint8_t *tlb_fill(struct soft_cpu *c, uint64_t lin, int acc, int user)
{
	uint64_t gpa;
	return translate(c, lin, acc, user, &gpa);
}

/* MMIO: the local interrupt controllers first, then the machine, one exit
 * per access. An instruction may make several (a read-modify-write, a page-
 * crossing or 16-byte access, a string move), so the accesses of the
 * instruction in flight are logged in order. A write is queued and the
 * instruction completes; its writes then leave as exits. A read the machine
 * must answer aborts the instruction: the queued writes and the read leave as
 * exits, and then the instruction runs again (soft.c), its reads answered
 * from the log and the writes already done skipped, until it completes. So
 * the devices see each access once, in program order, and a read never waits
 * for a later one. */
static bool mmio_logged(struct soft_cpu *c, uint64_t gpa, int size, bool write, uint64_t *v)
{
	if (c->mmio_pos == c->mmio_n)
		return false;
	struct mmio_access *a = &c->mmio_log[c->mmio_pos];
	if (a->gpa == gpa && a->size == size && a->write == write) {
		c->mmio_pos++;
		if (!write)
			*v = a->data;
		return true;
	}
	/* The replay went another way (another vCPU changed memory it
	 * depends on): the rest of the log belongs to the old path. */
	c->mmio_n = c->mmio_pos;
	if (c->mmio_out > c->mmio_n)
		c->mmio_out = c->mmio_n;
	return false;
}

static void mmio_append(struct soft_cpu *c, uint64_t gpa, int size, bool write, uint64_t v)
{
	if (c->mmio_n == MMIO_LOG)
		raise_exc(c, EXC_MC, false, 0); /* more than any instruction makes */
	c->mmio_log[c->mmio_n++] =
	    (struct mmio_access){.gpa = gpa, .size = (uint8_t)size, .write = write, .data = v};
	c->mmio_pos = c->mmio_n;
}

/* The first logged access the machine has not done, as the exit; false if
 * none is left. */
bool mmio_next_exit(struct soft_cpu *c)
{
	if (c->mmio_out == c->mmio_n)
		return false;
	const struct mmio_access *a = &c->mmio_log[c->mmio_out];
	trap(c, TRAP_MMIO);
	c->exit->reason = EXIT_MMIO;
	c->exit->mmio.gpa = a->gpa;
	c->exit->mmio.size = a->size;
	c->exit->mmio.write = a->write;
	memcpy(c->exit->mmio.data, &a->data, 8);
	return true;
}

/* The machine did the access mmio_next_exit gave it. */
void mmio_done(struct soft_cpu *c, const struct vcpu_exit *exit)
{
	struct mmio_access *a = &c->mmio_log[c->mmio_out++];
	if (!a->write) {
		a->data = 0;
		memcpy(&a->data, exit->mmio.data, a->size);
	}
}

/* The instruction completed or was abandoned: its accesses are history. */
void mmio_reset(struct soft_cpu *c)
{
	c->mmio_n = c->mmio_out = c->mmio_pos = 0;
	c->mmio_replay = false;
}

static uint64_t mmio_read(struct soft_cpu *c, uint64_t gpa, int size)
{
	uint64_t v = 0;
	if (mmio_logged(c, gpa, size, false, &v) || soft_mmio(c, gpa, &v, size, false))
		return v;
	mmio_append(c, gpa, size, false, 0);
	c->mmio_replay = true;
	mmio_next_exit(c);
	longjmp(c->jb, JMP_EXIT);
}

static void mmio_write(struct soft_cpu *c, uint64_t gpa, int size, uint64_t v)
{
	uint64_t unused;
	if (mmio_logged(c, gpa, size, true, &unused) || soft_mmio(c, gpa, &v, size, true))
		return;
	mmio_append(c, gpa, size, true, v & mask_of(size));
	c->exit_pending = true;
	c->stop = true;
}

uint64_t lin_read(struct soft_cpu *c, uint64_t lin, int size, int acc, int user)
{
	if ((lin & 0xfff) + size > 0x1000) {
		uint64_t v = 0;
		for (int i = 0; i < size; i++)
			v |= lin_read(c, lin + i, 1, acc, user) << (8 * i);
		return v;
	}
	uint64_t gpa;
	uint8_t *p = translate(c, lin, acc, user, &gpa);
	if (p)
		return load_n(p, size);
	return mmio_read(c, gpa, size);
}

void lin_write(struct soft_cpu *c, uint64_t lin, int size, uint64_t val, int user)
{
	if ((lin & 0xfff) + size > 0x1000) {
		/* Probe both pages first so a fault leaves memory untouched. */
		uint64_t gpa;
		translate(c, lin, ACC_WRITE, user, &gpa);
		translate(c, (lin | 0xfff) + 1, ACC_WRITE, user, &gpa);
		for (int i = 0; i < size; i++)
			lin_write(c, lin + i, 1, val >> (8 * i), user);
		return;
	}
	uint64_t gpa;
	uint8_t *p = translate(c, lin, ACC_WRITE, user, &gpa);
	if (p)
		store_n(p, size, val);
	else
		mmio_write(c, gpa, size, val);
}

uint8_t *mem_rmw_ptr(struct soft_cpu *c, int seg, uint64_t off, int size)
{
	uint64_t lin = seg_lin(c, seg, off, size, ACC_WRITE);
	uint8_t *p = tlb_lookup(c, lin, size, ACC_WRITE);
	if (p)
		return p;
	if ((lin & 0xfff) + size > 0x1000)
		return NULL;
	uint64_t gpa;
	return translate(c, lin, ACC_WRITE, c->cpl == 3, &gpa);
}
