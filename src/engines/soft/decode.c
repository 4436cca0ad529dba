/* The instruction decoder: prefixes, REX, opcode maps (1-byte, 0F, 0F38,
 * 0F3A), ModRM/SIB/displacement and immediates, for 16-, 32- and 64-bit code.
 * Effective addresses are kept symbolic (base, index, scale, displacement) and
 * computed at execution, so a decoded instruction stays valid while registers
 * change. */
#include "engines/soft/soft.h"

enum { A_M = 1, A_I8 = 2, A_IZ = 4, A_I16 = 8 };

/* Operand layout of the one-byte map. */
static unsigned attr_1b(unsigned op)
{
	switch (op) {
	case 0x00 ... 0x3f:
		switch (op & 7) {
		case 0 ... 3:
			return A_M;
		case 4:
			return A_I8;
		case 5:
			return A_IZ;
		}
		return 0;
	case 0x62:
	case 0x63:
	case 0x84 ... 0x8f:
	case 0xc4:
	case 0xc5:
	case 0xd0 ... 0xd3:
	case 0xd8 ... 0xdf:
	case 0xfe:
	case 0xff:
		return A_M;
	case 0x69:
	case 0x81:
	case 0xc7:
		return A_M | A_IZ;
	case 0x6b:
	case 0x80:
	case 0x82:
	case 0x83:
	case 0xc0:
	case 0xc1:
	case 0xc6:
		return A_M | A_I8;
	case 0xf6:
	case 0xf7:
		return A_M; /* immediate only for /0 and /1, handled below */
	case 0x6a:
	case 0x70 ... 0x7f:
	case 0xa8:
	case 0xb0 ... 0xb7:
	case 0xcd:
	case 0xd4:
	case 0xd5:
	case 0xe0 ... 0xe7:
	case 0xeb:
		return A_I8;
	case 0x68:
	case 0xa9:
	case 0xe8:
	case 0xe9:
		return A_IZ;
	case 0xc2:
	case 0xca:
		return A_I16;
	case 0xc8:
		return A_I16 | A_I8;
	}
	return 0;
}

/* One-byte opcodes that are invalid (#UD) in 64-bit mode and valid in the
 * other modes, compatibility mode included. */
static bool invalid_in_64bit_mode(unsigned op)
{
	switch (op) {
	case 0x06: /* PUSH/POP ES, PUSH CS, PUSH/POP SS, PUSH/POP DS */
	case 0x07:
	case 0x0e:
	case 0x16:
	case 0x17:
	case 0x1e:
	case 0x1f:
	case 0x27: /* DAA, DAS, AAA, AAS */
	case 0x2f:
	case 0x37:
	case 0x3f:
	case 0x60: /* PUSHA, POPA, BOUND */
	case 0x61:
	case 0x62:
	case 0x82: /* group 1, r/m8 and imm8 (0x80's alias) */
	case 0x9a: /* far CALL/JMP ptr16:32 */
	case 0xea:
	case 0xc4: /* LES, LDS */
	case 0xc5:
	case 0xce: /* INTO */
	case 0xd4: /* AAM, AAD */
	case 0xd5:
		return true;
	}
	return false;
}

static unsigned attr_0f(unsigned op)
{
	switch (op) {
	case 0x05 ... 0x09:
	case 0x0b:
	case 0x0e:
	case 0x30 ... 0x37:
	case 0x77:
	case 0xa0 ... 0xa2:
	case 0xa8 ... 0xaa:
	case 0xc8 ... 0xcf:
		return 0;
	case 0x80 ... 0x8f:
		return A_IZ;
	case 0x70 ... 0x73:
	case 0xa4:
	case 0xac:
	case 0xba:
	case 0xc2:
	case 0xc4 ... 0xc6:
		return A_M | A_I8;
	}
	return A_M;
}

/* Popek-Goldberg class of an instruction: privileged ones trap outside the
 * virtual kernel mode; sensitive ones read or change privileged state without
 * trapping (the reason x86 needs an interpreter or binary translation). */
static uint8_t classify(unsigned map, unsigned op, unsigned reg)
{
	if (map == 0) {
		switch (op) {
		case 0xe4 ... 0xe7:
		case 0xec ... 0xef:
		case 0x6c ... 0x6f:
		case 0xf4:
		case 0xfa:
		case 0xfb:
			return CLS_PRIVILEGED;
		case 0x06:
		case 0x07:
		case 0x0e:
		case 0x16:
		case 0x17:
		case 0x1e:
		case 0x1f:
		case 0x8c:
		case 0x8e:
		case 0x9a:
		case 0x9c:
		case 0x9d:
		case 0xc4:
		case 0xc5:
		case 0xca ... 0xcf:
		case 0xea:
			return CLS_SENSITIVE;
		case 0xff:
			return reg == 3 || reg == 5 ? CLS_SENSITIVE : CLS_INNOCUOUS;
		}
		return CLS_INNOCUOUS;
	}
	if (map != 1)
		return CLS_INNOCUOUS;
	switch (op) {
	case 0x00:
		return reg >= 2 && reg <= 3 ? CLS_PRIVILEGED : CLS_SENSITIVE;
	case 0x01:
		return reg == 0 || reg == 1 || reg == 4 ? CLS_SENSITIVE : CLS_PRIVILEGED;
	case 0x06:
	case 0x07:
	case 0x08:
	case 0x09:
	case 0x20 ... 0x23:
	case 0x30:
	case 0x32:
	case 0x33:
		return CLS_PRIVILEGED;
	case 0x02:
	case 0x03:
	case 0x05:
	case 0x31:
	case 0x34:
	case 0x35:
	case 0xa0:
	case 0xa1:
	case 0xa2:
	case 0xa8:
	case 0xa9:
		return CLS_SENSITIVE;
	}
	return CLS_INNOCUOUS;
}

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

	unsigned map = 0, attr;
	if (b == 0x0f) {
		b = fb(&f);
		map = 1;
		if (b == 0x38 || b == 0x3a) {
			map = b == 0x38 ? 2 : 3;
			b = fb(&f);
		}
	}
	d->op = (uint16_t)(map << 8 | b);
	if (map == 0)
		attr = attr_1b(b);
	else if (map == 1)
		attr = attr_0f(b);
	else
		attr = A_M | (map == 3 ? A_I8 : 0);
	d->invalid = map == 0 && mode == 8 && invalid_in_64bit_mode(b);
	if (d->invalid)
		attr = 0; /* #UD at the opcode: no operands to fetch */
	if (attr & A_M)
		modrm(&f, d);
	else if (map == 0 && ((b < 0x40 && (b & 7) == 5) || b == 0xa9))
		d->rm = R_RAX; /* ALU rAX, imm: the implicit operand as a register r/m */
	if (map == 0 && (b == 0xf6 || b == 0xf7) && (d->reg & 7) < 2)
		attr |= b == 0xf6 ? A_I8 : A_IZ;
	if (attr & A_I16) {
		d->imm = (uint16_t)fimm(&f, 2);
		if (attr & A_I8)
			d->imm2 = (uint8_t)fimm(&f, 1);
	} else if (attr & A_I8) {
		d->imm = fimm(&f, 1);
	} else if (attr & A_IZ) {
		d->imm = fimm(&f, d->opsize == 2 ? 2 : 4);
	}
	if (map == 0) {
		if (b >= 0xb8 && b <= 0xbf)
			d->imm = fimm(&f, d->opsize);
		else if (b >= 0xa0 && b <= 0xa3)
			d->imm = fimm(&f, d->addrsize);
		else if ((b == 0xea || b == 0x9a) && mode != 8) {
			d->imm = (uint32_t)fimm(&f, d->opsize) & mask_of(d->opsize);
			d->imm2 = (uint16_t)fimm(&f, 2);
		}
	}
	if (d->imm && (b >= 0xa0 && b <= 0xa3) && map == 0)
		d->imm &= (int64_t)mask_of(d->addrsize);
	d->len = (uint8_t)f.pos;
	d->cls = classify(map, b, d->reg & 7);
	choose_handler(c, d);
}

/* Instructions that end a block: anything the fast handlers do not cover
 * (it may branch, trap, change modes or exit) and every branch. */
static bool ends_block(const struct insn *d)
{
	if (d->fn == exec_insn)
		return true;
	unsigned b = d->op & 0xff;
	if (d->op >> 8 == 1)
		return b >= 0x80 && b <= 0x8f;
	return (b >= 0x70 && b <= 0x7f) || b == 0xe8 || b == 0xe9 || b == 0xeb || b == 0xc3;
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

void block_cache_init(struct soft_cpu *c)
{
	for (unsigned i = 0; i < BLOCK_CACHE_SIZE; i++)
		c->tags[i].lin = ~0ull;
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
	uint64_t epoch = epoch_now(c);
	uint64_t rip = c->rip, lin = code_lin(c);
	/* two-way set associative; a miss replaces the less recently used way */
	unsigned set = block_set(lin);
	struct block_tag *t = &c->tags[set * 2];
	uint8_t *p = NULL;
	for (int w = 0; w < 2; w++) {
		if (t[w].lin != lin || t[w].rip != rip || t[w].key != code_key(c))
			continue;
		struct block *k = &c->blocks[set * 2 + w];
		/* Same epoch: neither guest memory (as far as this vCPU must see
		 * it) nor the TLB changed since the bytes matched, so the
		 * translation need not be looked up again either. */
		if (t[w].epoch != epoch_now(c)) {
			if (!p)
				p = tlb_peek(c, lin, 1, ACC_EXEC);
			if (!p)
				continue;
			code_page_mark(c, lin); /* first: a write after it notifies */
			if (!same_bytes(p, k))
				continue;
			t[w].epoch = epoch;
			counter_add(&c->stat_revalidated, 1);
		}
		c->block_mru[set] = (uint8_t)w;
		return k;
	}
	int victim = !c->block_mru[set];
	c->block_mru[set] = (uint8_t)victim;
	t += victim;
	struct block *b = &c->blocks[set * 2 + victim];

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
	b->nbytes = 0;
	p = tlb_peek(c, lin, 1, ACC_EXEC);
	if (p && (lin & 0xfff) + off <= 0x1000) {
		/* b->code holds the very bytes decoded, so a write that raced
		 * with the decoding fails the next validation */
		code_page_mark(c, lin);
		b->nbytes = (uint16_t)off;
		*t = (struct block_tag){.lin = lin, .rip = rip, .epoch = epoch, .key = code_key(c)};
	}
	return b;
}
