/* String instructions (MOVS, STOS, LODS, CMPS, SCAS with REP) and port I/O
 * (IN, OUT, INS, OUTS). Port I/O is privileged: each one traps to the machine
 * as an EXIT_IO unless the soft engine's own interrupt controllers claim the
 * port; a 32-bit OUT also lends the machine the registers, which it decodes
 * as a hypercall when the port is popek's. */
#include <string.h>

#include "engines/soft/soft.h"

/* How much work one REP instruction does before giving interrupts and kicks
 * a chance; it resumes where it stopped, as REP is architecturally restartable. */
#define REP_BUDGET (256u * 1024)

struct strop {
	int size, as, seg;
	int64_t delta;
};

static uint64_t areg(struct soft_cpu *c, struct strop *s, int r)
{
	return c->r[r] & mask_of(s->as);
}

static void aset(struct soft_cpu *c, struct strop *s, int r, uint64_t v)
{
	reg_set(c, r, s->as, true, v);
}

/* Host pointer and element count for a DF=0 run starting at seg:off, or NULL. */
static uint8_t *run_ptr(struct soft_cpu *c, int seg, uint64_t off, int size, bool write,
			uint64_t *n)
{
	uint64_t lin = seg_lin(c, seg, off, size, write ? ACC_WRITE : ACC_READ);
	uint8_t *p = tlb_lookup(c, lin, size, write ? ACC_WRITE : ACC_READ);
	if (!p) {
		if ((lin & 0xfff) + size > 0x1000)
			return NULL;
		p = tlb_fill(c, lin, write ? ACC_WRITE : ACC_READ, c->cpl == 3);
		if (!p)
			return NULL;
	}
	uint64_t room = (0x1000 - (lin & 0xfff)) / size;
	/* a segment offset must not wrap inside the run */
	uint64_t off_room = (mask_of(c->mode == 8 ? 8 : 4) - off) / size + 1;
	if (c->mode != 8 && off_room < room)
		room = off_room;
	*n = room;
	return p;
}

/* MOVS/STOS with DF=0 over RAM: whole page-sized chunks at host speed. */
static bool fast_rep(struct soft_cpu *c, struct insn *d, struct strop *s, uint64_t *count)
{
	bool movs = (d->op & 0xfe) == 0xa4;
	uint64_t n, m = *count, nsrc = ~0ull;
	uint8_t *src = NULL;
	uint8_t *dst = run_ptr(c, SEG_ES, areg(c, s, R_RDI), s->size, true, &n);
	if (!dst)
		return false;
	if (movs) {
		src = run_ptr(c, s->seg, areg(c, s, R_RSI), s->size, false, &nsrc);
		if (!src)
			return false;
	}
	if (n < m)
		m = n;
	if (nsrc < m)
		m = nsrc;
	uint64_t bytes = m * s->size;
	if (movs) {
		if (dst > src && dst < src + bytes) {
			for (uint64_t i = 0; i < bytes;
			     i++) /* overlapping forward copy replicates */
				dst[i] = src[i];
		} else {
			memmove(dst, src, bytes);
		}
		aset(c, s, R_RSI, areg(c, s, R_RSI) + bytes);
	} else {
		uint64_t v = c->r[R_RAX];
		if (s->size == 1)
			memset(dst, (int)(v & 0xff), bytes);
		else
			for (uint64_t i = 0; i < m; i++)
				store_n(dst + i * s->size, s->size, v);
	}
	aset(c, s, R_RDI, areg(c, s, R_RDI) + bytes);
	*count -= m;
	return true;
}

void exec_string(struct soft_cpu *c, struct insn *d)
{
	unsigned b = d->op & 0xff;
	struct strop s = {
	    .size = (b & 1) ? d->opsize : 1,
	    .as = d->addrsize,
	    .seg = d->seg >= 0 ? d->seg : SEG_DS,
	};
	s.delta = (c->fl & FL_DF) ? -s.size : s.size;
	bool rep = d->rep != 0;
	uint64_t count = rep ? areg(c, &s, R_RCX) : 1;
	uint64_t budget = REP_BUDGET;

	while (count) {
		if (rep && !(c->fl & FL_DF) && (b == 0xa4 || b == 0xa5 || b == 0xaa || b == 0xab) &&
		    count > 1) {
			uint64_t before = count;
			if (fast_rep(c, d, &s, &count)) {
				aset(c, &s, R_RCX, count);
				uint64_t done = (before - count) * s.size;
				budget = done >= budget ? 0 : budget - done;
				goto next;
			}
		}
		switch (b) {
		case 0xa4:
		case 0xa5: {
			uint64_t v = mem_read(c, s.seg, areg(c, &s, R_RSI), s.size);
			mem_write(c, SEG_ES, areg(c, &s, R_RDI), s.size, v);
			aset(c, &s, R_RSI, areg(c, &s, R_RSI) + s.delta);
			aset(c, &s, R_RDI, areg(c, &s, R_RDI) + s.delta);
			break;
		}
		case 0xa6:
		case 0xa7: {
			uint64_t a = mem_read(c, s.seg, areg(c, &s, R_RSI), s.size);
			uint64_t v = mem_read(c, SEG_ES, areg(c, &s, R_RDI), s.size);
			alu(c, 7, s.size, a, v);
			aset(c, &s, R_RSI, areg(c, &s, R_RSI) + s.delta);
			aset(c, &s, R_RDI, areg(c, &s, R_RDI) + s.delta);
			break;
		}
		case 0xaa:
		case 0xab:
			mem_write(c, SEG_ES, areg(c, &s, R_RDI), s.size, c->r[R_RAX]);
			aset(c, &s, R_RDI, areg(c, &s, R_RDI) + s.delta);
			break;
		case 0xac:
		case 0xad:
			reg_set(c, R_RAX, s.size, true,
				mem_read(c, s.seg, areg(c, &s, R_RSI), s.size));
			aset(c, &s, R_RSI, areg(c, &s, R_RSI) + s.delta);
			break;
		default: { /* SCAS */
			uint64_t v = mem_read(c, SEG_ES, areg(c, &s, R_RDI), s.size);
			alu(c, 7, s.size, c->r[R_RAX] & mask_of(s.size), v);
			aset(c, &s, R_RDI, areg(c, &s, R_RDI) + s.delta);
			break;
		}
		}
		if (!rep)
			return;
		count--;
		aset(c, &s, R_RCX, count);
		budget = budget > (uint64_t)s.size ? budget - s.size : 0;
		if ((b == 0xa6 || b == 0xa7 || b == 0xae || b == 0xaf) &&
		    !!(get_flags(c) & FL_ZF) != (d->rep == 0xf3))
			return;
	next:
		/* after a device access: its log serves one iteration (mmu.c) */
		if (count && (budget == 0 || c->exit_pending || c->mmio_n)) {
			c->rip = d->start; /* continue on the next pass through the loop */
			return;
		}
	}
}

static bool io_allowed(struct soft_cpu *c)
{
	return !(c->cr0 & CR0_PE) || (c->cpl <= (int)((c->fl >> 12) & 3) && !(c->fl & FL_VM));
}

static void io_exit(struct soft_cpu *c, uint16_t port, int size, bool write, uint32_t count)
{
	c->exit->reason = EXIT_IO;
	c->exit->io.port = port;
	c->exit->io.size = (uint8_t)size;
	c->exit->io.write = write;
	c->exit->io.count = count;
	c->exit->io.data = c->io_buf;
	c->exit->io.has_regs = c->exit->io.regs_dirty = false;
	c->io_in_count = count;
	c->io_in_port = port;
	c->io_in_size = (uint8_t)size;
}

/* Data for the IN/INS being replayed after its exit, if this is it. */
static bool io_in_data(struct soft_cpu *c, uint16_t port, int size)
{
	bool mine = c->io_in_ready && c->io_in_port == port && c->io_in_size == size;
	c->io_in_ready = false;
	return mine;
}

/* A single 32-bit OUT may be a hypercall: lend the machine the registers. */
static void lend_regs(struct soft_cpu *c)
{
	c->exit->io.has_regs = true;
	c->exit->io.regs = (struct exit_regs){c->r[R_RAX], c->r[R_RBX], c->r[R_RCX],
					      c->r[R_RDX], c->r[R_RSI], c->r[R_RDI]};
	c->regs_lent = true;
}

static void in_out(struct soft_cpu *c, struct insn *d, uint16_t port, int size, bool out)
{
	trap(c, out ? TRAP_OUT : TRAP_IN);
	if (out) {
		uint64_t v = c->r[R_RAX] & mask_of(size);
		if (soft_pio(c, port, &v, size, true))
			return;
		memcpy(c->io_buf, &v, size);
		io_exit(c, port, size, true, 1);
		if (size == 4)
			lend_regs(c);
		c->exit_pending = true;
		return;
	}
	uint64_t v = 0;
	if (io_in_data(c, port, size)) {
		memcpy(&v, c->io_buf, size);
	} else if (!soft_pio(c, port, &v, size, false)) {
		memset(c->io_buf, 0xff, size);
		io_exit(c, port, size, false, 1);
		longjmp(c->jb, JMP_EXIT);
	}
	reg_set(c, R_RAX, size, true, v);
	(void)d;
}

static void ins_outs(struct soft_cpu *c, struct insn *d, bool out)
{
	trap(c, out ? TRAP_OUTS : TRAP_INS);
	struct strop s = {.size = (d->op & 1) ? (d->opsize == 2 ? 2 : 4) : 1, .as = d->addrsize};
	s.seg = out ? (d->seg >= 0 ? d->seg : SEG_DS) : SEG_ES;
	s.delta = (c->fl & FL_DF) ? -s.size : s.size;
	int reg = out ? R_RSI : R_RDI;
	bool rep = d->rep != 0;
	uint64_t count = rep ? areg(c, &s, R_RCX) : 1;
	if (!count)
		return;
	uint16_t port = (uint16_t)c->r[R_RDX];
	/* Batch the elements that stay inside one page of RAM and the I/O
	 * buffer; device memory takes one exit per element (mmu.c). */
	uint64_t n = 1, room;
	if (!(c->fl & FL_DF) && run_ptr(c, s.seg, areg(c, &s, reg), s.size, !out, &room))
		n = room;
	if (n > count)
		n = count;
	if (n > IO_BUF_SIZE / (uint64_t)s.size)
		n = IO_BUF_SIZE / s.size;
	if (out) {
		for (uint64_t i = 0; i < n; i++)
			store_n(c->io_buf + i * s.size, s.size,
				mem_read(c, s.seg, areg(c, &s, reg) + i * s.delta, s.size));
		bool local = n == 1 && soft_pio(c, port, c->io_buf, s.size, true);
		if (!local) {
			io_exit(c, port, s.size, true, (uint32_t)n);
			c->exit_pending = true;
		}
	} else if (io_in_data(c, port, s.size)) {
		n = c->io_in_count;
		for (uint64_t i = 0; i < n; i++)
			mem_write(c, s.seg, areg(c, &s, reg) + i * s.delta, s.size,
				  load_n(c->io_buf + i * s.size, s.size));
	} else {
		/* Probe the destination so a page fault comes before the device read. */
		mem_rmw_ptr(c, s.seg, areg(c, &s, reg), s.size);
		memset(c->io_buf, 0xff, n * s.size);
		io_exit(c, port, s.size, false, (uint32_t)n);
		longjmp(c->jb, JMP_EXIT);
	}
	aset(c, &s, reg, areg(c, &s, reg) + n * s.delta);
	if (rep) {
		count -= n;
		aset(c, &s, R_RCX, count);
		if (count)
			c->rip = d->start;
	}
}

void exec_io(struct soft_cpu *c, struct insn *d)
{
	if (!io_allowed(c))
		raise_gp(c, 0); /* no TSS I/O permission bitmap: user I/O needs IOPL */
	unsigned b = d->op & 0xff;
	int size = (b & 1) ? (d->opsize == 2 ? 2 : 4) : 1;
	switch (b) {
	case 0x6c:
	case 0x6d:
		ins_outs(c, d, false);
		return;
	case 0x6e:
	case 0x6f:
		ins_outs(c, d, true);
		return;
	case 0xe4:
	case 0xe5:
	case 0xe6:
	case 0xe7:
		in_out(c, d, (uint8_t)d->imm, size, b >= 0xe6);
		return;
	default:
		in_out(c, d, (uint16_t)c->r[R_RDX], size, b >= 0xee);
		return;
	}
}
