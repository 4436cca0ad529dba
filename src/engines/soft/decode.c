/* The instruction decoder: prefixes, REX, opcode maps (1-byte, 0F, 0F38,
 * 0F3A), ModRM/SIB/displacement and immediates, for 16-, 32- and 64-bit code.
 * Effective addresses are kept symbolic (base, index, scale, displacement) and
 * computed at execution, so a decoded instruction stays valid while registers
 * change. */
#include <string.h>

#include "engines/soft/jit/jit.h"
#include "engines/soft/soft.h"

struct fetch {
	struct soft_cpu *c;
	const uint8_t *p; /* host bytes of the current code page, or NULL */
	uint64_t lin;	  /* linear address of the instruction */
	int avail, pos;
	uint8_t *out;
};

static uint8_t fb(struct fetch *f)
{
	if (f->pos >= 15)
		raise_gp(f->c, 0);
	uint8_t b;
	if (f->pos < f->avail)
		b = f->p[f->pos];
	else
		b = (uint8_t)lin_read(f->c, f->lin + f->pos, 1, ACC_EXEC, f->c->cpl == 3);
	f->out[f->pos] = b;
	f->pos++;
	return b;
}

static int64_t fimm(struct fetch *f, int size)
{
	uint64_t v = 0;
	for (int i = 0; i < size; i++)
		v |= (uint64_t)fb(f) << (8 * i);
	int sh = 64 - size * 8;
	return sh ? (int64_t)(v << sh) >> sh : (int64_t)v;
}

static void modrm(struct fetch *f, struct insn *d)
{
	uint8_t m = fb(f);
	d->has_modrm = true;
	d->mod = m >> 6;
	d->reg = ((m >> 3) & 7) | ((d->rex & 4) << 1);
	d->rm = m & 7;
	d->base = d->index = -1;
	d->scale = 1;
	d->disp = 0;
	d->ea_seg = SEG_DS;
	if (d->mod == 3) {
		d->rm |= (d->rex & 1) << 3;
		d->is_mem = false;
		return;
	}
	d->is_mem = true;
	if (d->addrsize == 2) {
		static const int8_t b16[8] = {R_RBX, R_RBX, R_RBP, R_RBP, -1, -1, R_RBP, R_RBX};
		static const int8_t i16[8] = {R_RSI, R_RDI, R_RSI, R_RDI, R_RSI, R_RDI, -1, -1};
		d->base = b16[d->rm];
		d->index = i16[d->rm];
		if (d->mod == 0 && d->rm == 6) {
			d->base = -1;
			d->disp = fimm(f, 2);
		} else if (d->mod == 1) {
			d->disp = fimm(f, 1);
		} else if (d->mod == 2) {
			d->disp = fimm(f, 2);
		}
		if (d->base == R_RBP)
			d->ea_seg = SEG_SS;
		return;
	}
	if (d->rm == 4) {
		uint8_t sib = fb(f);
		d->scale = (uint8_t)(1u << (sib >> 6));
		int idx = ((sib >> 3) & 7) | ((d->rex & 2) << 2);
		d->index = idx == 4 ? -1 : idx;
		d->base = (sib & 7) | ((d->rex & 1) << 3);
		if ((sib & 7) == 5 && d->mod == 0) {
			d->base = -1;
			d->disp = fimm(f, 4);
		}
	} else if (d->rm == 5 && d->mod == 0) {
		d->base = d->addrsize == 8 || f->c->mode == 8 ? 16 : -1;
		d->disp = fimm(f, 4);
	} else {
		d->base = d->rm | ((d->rex & 1) << 3);
	}
	if (d->mod == 1)
		d->disp = fimm(f, 1);
	else if (d->mod == 2)
		d->disp = fimm(f, 4);
	if (d->base == R_RSP || d->base == R_RBP)
		d->ea_seg = SEG_SS;
}

void decode(struct soft_cpu *c, struct insn *d, uint64_t rip, uint8_t *bytes)
{
	struct fetch f = {.c = c, .pos = 0, .out = bytes};
	int mode = c->mode;
	f.lin = mode == 8 ? rip : (c->seg[SEG_CS].base + rip) & 0xffffffff;
	f.p = tlb_peek(c, f.lin, 1, ACC_EXEC);
	if (!f.p)
		f.p = tlb_fill(c, f.lin, ACC_EXEC, c->cpl == 3);
	f.avail = f.p ? (int)(0x1000 - (f.lin & 0xfff)) : 0;
	if (f.avail > 15)
		f.avail = 15;

	d->start = rip;
	d->rex = 0;
	d->seg = -1;
	d->rep = 0;
	d->lock = false;
	d->opsize_prefix = false;
	d->has_modrm = false;
	d->is_mem = false;
	d->imm = d->imm2 = 0;
	bool asize = false;
	uint8_t b;
	for (;;) {
		b = fb(&f);
		switch (b) {
		case 0x66:
			d->opsize_prefix = true;
			d->rex = 0;
			continue;
		case 0x67:
			asize = true;
			d->rex = 0;
			continue;
		case 0x26:
		case 0x2e:
		case 0x36:
		case 0x3e:
			if (mode != 8)
				d->seg = (int8_t)((b >> 3) & 3);
			d->rex = 0;
			continue;
		case 0x64:
		case 0x65:
			d->seg = (int8_t)(b - 0x64 + SEG_FS);
			d->rex = 0;
			continue;
		case 0xf0:
			d->lock = true;
			d->rex = 0;
			continue;
		case 0xf2:
		case 0xf3:
			d->rep = b;
			d->rex = 0;
			continue;
		case 0x40 ... 0x4f:
			if (mode == 8) {
				d->rex = b;
				continue;
			}
			break;
		}
		break;
	}
	/* es=0 cs=1 ss=2 ds=3 from the prefix byte bits */
	if (d->seg >= 0 && d->seg < SEG_FS) {
		static const int8_t legacy[4] = {SEG_ES, SEG_CS, SEG_SS, SEG_DS};
		d->seg = legacy[d->seg];
	}
	if (mode == 8)
		d->addrsize = asize ? 4 : 8;
	else
		d->addrsize = (uint8_t)((mode == 4) != asize ? 4 : 2);
	if (d->rex & 8)
		d->opsize = 8;
	else if (mode == 2)
		d->opsize = d->opsize_prefix ? 4 : 2;
	else
		d->opsize = d->opsize_prefix ? 2 : 4;

	unsigned map = 0;
	if (b == 0x0f) {
		b = fb(&f);
		map = 1;
		if (b == 0x38 || b == 0x3a) {
			map = b == 0x38 ? 2 : 3;
			b = fb(&f);
		}
	}
	d->op = (uint16_t)(map << 8 | b);
	const struct opcode *o = opcode_of(d->op);
	d->invalid = mode == 8 && o->no64;
	unsigned shape = d->invalid ? 0 : o->shape; /* #UD at the opcode: no operands to fetch */
	if (shape & OP_M)
		modrm(&f, d);
	else if (shape & OP_RAX)
		d->rm = R_RAX;
	if (op_form(o->no_imm, d->reg))
		shape &= ~(unsigned)(OP_I8 | OP_IZ);
	if (shape & OP_I16) {
		d->imm = (uint16_t)fimm(&f, 2);
		if (shape & OP_I8)
			d->imm2 = (uint8_t)fimm(&f, 1);
	} else if (shape & OP_I8) {
		d->imm = fimm(&f, 1);
	} else if (shape & OP_IZ) {
		d->imm = fimm(&f, d->opsize == 2 ? 2 : 4);
	} else if (shape & OP_IV) {
		d->imm = fimm(&f, d->opsize);
	} else if (shape & OP_MOFFS) {
		d->imm = fimm(&f, d->addrsize) & (int64_t)mask_of(d->addrsize);
	} else if (shape & OP_FAR) {
		d->imm = (uint32_t)fimm(&f, d->opsize) & mask_of(d->opsize);
		d->imm2 = (uint16_t)fimm(&f, 2);
	}
	d->len = (uint8_t)f.pos;
	d->cls = op_form(o->alt, d->reg) ? o->alt_cls : o->cls;
	choose_handler(c, d);
}

/* Instructions that end a block: anything the fast handlers do not cover
 * (it may branch, trap, change modes or exit) and every branch. */
static bool ends_block(const struct insn *d)
{
	return d->fn == exec_insn || op_form(opcode_of(d->op)->branch, d->reg);
}

/* Do the guest bytes at p still match the block? Whole words; the tail is
 * one more word that overlaps the last full one, so nothing past the block's
 * end (possibly the end of the page) is read. */
static inline bool same_bytes(const uint8_t *p, const struct block *b)
{
	unsigned n = b->nbytes, i = 0;
	uint64_t diff = 0;
	if (n < 8 && ((uintptr_t)p & 0xfff) <= 0x1000 - 8) {
		/* a short block: one masked word, still inside the host page */
		diff = (load_n(p, 8) ^ load_n(b->code, 8)) & ((1ull << (n * 8)) - 1);
		return diff == 0;
	}
	if (n < 8) {
		for (; i < n; i++)
			diff |= load_n(p + i, 1) ^ b->code[i];
		return diff == 0;
	}
	for (; i + 8 <= n; i += 8)
		diff |= load_n(p + i, 8) ^ load_n(b->code + i, 8);
	if (i < n)
		diff |= load_n(p + n - 8, 8) ^ load_n(b->code + n - 8, 8);
	return diff == 0;
}

/* Blocks of the page at lin (which the TLB maps for execution) are cached
 * now: writes there must find them (code_check in soft.h). */
static void code_page_mark(struct soft_cpu *c, uint64_t lin)
{
	uint64_t *code = tlb_entry_of(c, lin)->code;
	if (!(__atomic_load_n(code, __ATOMIC_RELAXED) & c->code_bit))
		__atomic_fetch_or(code, c->code_bit, __ATOMIC_SEQ_CST);
}

/* Are block k's bytes still what the TLB maps at lin (p: its host address)?
 * A block whose one instruction crosses into the next page is compared in
 * two parts, the second where that page is mapped now (walked again, as
 * fetching the instruction would: a fault there is the fetch's). */
static bool still_there(struct soft_cpu *c, uint64_t lin, const uint8_t *p, const struct block *k)
{
	if (!k->split)
		return same_bytes(p, k);
	uint64_t next = lin + k->split;
	uint8_t *q = tlb_peek(c, next, 1, ACC_EXEC);
	if (!q)
		q = tlb_fill(c, next, ACC_EXEC, c->cpl == 3);
	if (!q)
		return false;
	code_page_mark(c, next);
	return !memcmp(p, k->code, k->split) &&
	       !memcmp(q, k->code + k->split, k->nbytes - k->split);
}

/* Whether the pages of block k at lin are mapped global now (tlb_peek or
 * tlb_fill just found them), so that its tag may live in gcode_epoch. */
static bool on_global(struct soft_cpu *c, uint64_t lin, const struct block *k)
{
	return tlb_entry_of(c, lin)->global &&
	       (!k->split || tlb_entry_of(c, lin + k->split)->global);
}

void block_cache_init(struct soft_cpu *c)
{
	for (unsigned i = 0; i < block_count(c); i++)
		c->tags[i] = (struct block_tag){.lin = ~0ull, .slot = BLOCK_NONE};
	c->blocks_used = 0;
}

/* The straight-line block of decoded instructions starting at RIP. A cached
 * block is valid while the guest bytes it was decoded from are unchanged at
 * the address the TLB gives now, so self-modifying code and remapped pages
 * need no invalidation protocol: one compare per block and epoch (next_block
 * in soft.h reuses blocks already compared in the current epoch). */
struct block *fetch_block(struct soft_cpu *c)
{
	/* the epoch the bytes are compared or decoded in: a bump by another
	 * vCPU meanwhile leaves the block to be validated again */
	uint64_t epoch = epoch_now(c), gepoch = gepoch_now(c);
	uint64_t rip = c->rip, lin = code_lin(c);
	/* two-way set associative; a miss replaces the less recently used way */
	unsigned set = block_set(c, lin);
	struct block_tag *t = &c->tags[set * 2];
	uint8_t *p = NULL;
	int stale = -1; /* the way whose block is the one at RIP, changed since */
	for (int w = 0; w < 2; w++) {
		if (t[w].lin != lin || t[w].rip != rip || t[w].key != code_key(c))
			continue;
		struct block *k = &c->blocks[t[w].slot];
		/* Same epoch: neither guest memory (as far as this vCPU must see
		 * it) nor the TLB changed since the bytes matched, so the
		 * translation need not be looked up again either. */
		if (t[w].epoch != tag_epoch(c, &t[w])) {
			/* After a TLB flush (a context switch) the page is walked
			 * again, as decoding it would: a fault here is the fetch's. */
			if (!p)
				p = tlb_peek(c, lin, 1, ACC_EXEC);
			if (!p)
				p = tlb_fill(c, lin, ACC_EXEC, c->cpl == 3);
			if (!p)
				continue;
			code_page_mark(c, lin); /* first: a write after it notifies */
			if (!still_there(c, lin, p, k)) {
				stale = w;
				continue;
			}
			t[w].global = on_global(c, lin, k);
			t[w].epoch = t[w].global ? gepoch : epoch;
			counter_add(&c->stat_revalidated, 1);
		}
		c->block_mru[set] = (uint8_t)w;
		return k;
	}
	/* the stale block, else the less recently used one */
	int victim = stale >= 0 ? stale : !c->block_mru[set];
	c->block_mru[set] = (uint8_t)victim;
	t += victim;
	if (t->slot == BLOCK_NONE) {
		/* the way's first fill takes the next slot, which it keeps:
		 * there are as many slots as ways (`stats` reads the count) */
		t->slot = c->blocks_used;
		__atomic_store_n(&c->blocks_used, t->slot + 1, __ATOMIC_RELAXED);
		c->blocks[t->slot].tag = set * 2 + (unsigned)victim;
	}
	struct block *b = &c->blocks[t->slot];
	if (b->jit_code) {
		/* translations may jump straight into it: they check chain_epoch */
		b->jit_code = NULL;
		chain_bump(c);
	}

	t->lin = ~0ull;
	b->n = 0;
	uint64_t off = 0;
	for (;;) {
		struct insn *d = &b->insn[b->n];
		/* Past the first instruction, decode only what cannot reach into the
		 * next page: a fetch fault there must happen when execution gets
		 * there, not while the block is built. */
		if (b->n && ((lin + off) & 0xfff) > 0x1000 - 15)
			break;
		decode(c, d, rip + off, b->code + off);
		if (b->n && d->fn == exec_insn)
			break; /* starts the next block, where faults get the right RIP */
		b->n++;
		off += d->len;
		if (ends_block(d) || b->n == BLOCK_INSNS)
			break;
	}
	counter_add(&c->stat_fetch_slow, 1);
	b->generic = b->insn[0].fn == exec_insn;
	optimize_block(b->insn, b->n);
	b->insn[b->n].fn = block_end;
	b->end = b->insn[b->n - 1].start + b->insn[b->n - 1].len;
	b->runs = 0;
	b->nbytes = 0;
	/* A first instruction may cross into the next page (nothing after it
	 * does); the block is cached all the same, both pages watched. */
	uint64_t first = 0x1000 - (lin & 0xfff);
	p = tlb_peek(c, lin, 1, ACC_EXEC);
	uint8_t *q = off > first ? tlb_peek(c, lin + first, 1, ACC_EXEC) : p;
	if (p && q) {
		/* b->code holds the very bytes decoded, so a write that raced
		 * with the decoding fails the next validation */
		code_page_mark(c, lin);
		if (off > first)
			code_page_mark(c, lin + first);
		b->nbytes = (uint16_t)off;
		b->split = off > first ? (uint16_t)first : 0;
		bool global = on_global(c, lin, b);
		*t = (struct block_tag){.lin = lin,
					.rip = rip,
					.epoch = global ? gepoch : epoch,
					.slot = t->slot,
					.key = code_key(c),
					.global = global};
	}
	return b;
}
