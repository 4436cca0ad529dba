/* A hand-written x86-64 encoder for the few instruction forms translations
 * need (Intel SDM Vol. 2, chapter 2: REX, ModRM). Memory operands are
 * [rdi + disp32], rdi holding the soft_cpu, or [reg] with a scratch register
 * (never rsp, rbp, r12 or r13, which would need a SIB byte or displacement).
 * Writing past the buffer sets full instead, and the translation is dropped. */
#include <string.h>

#include "engines/soft/jit/jit.h"

void emit_bytes(struct emit *e, const void *b, size_t n)
{
	if ((size_t)(e->end - e->p) < n) {
		e->full = true;
		return;
	}
	memcpy(e->p, b, n);
	e->p += n;
}

void emit_u8(struct emit *e, uint8_t v)
{
	emit_bytes(e, &v, 1);
}

void emit_u32(struct emit *e, uint32_t v)
{
	emit_bytes(e, &v, 4);
}

/* REX with W for 64-bit operands and the high bits of ModRM.reg and .rm;
 * omitted when it would be 0x40 (but byte stores of sil/dil need it: unused) */
static void rex(struct emit *e, bool w, int reg, int rm)
{
	uint8_t r = (uint8_t)(0x40 | w << 3 | (reg >> 3) << 2 | (rm >> 3));
	if (r != 0x40)
		emit_u8(e, r);
}

/* ModRM for [base + disp] (base not rsp or r12, which need a SIB byte),
 * with a one-byte displacement when it fits (most soft_cpu fields a
 * translation touches do: three bytes less each). */
static void base_disp(struct emit *e, int reg, int base, int32_t disp)
{
	if (disp >= -128 && disp < 128) {
		emit_u8(e, (uint8_t)(0x40 | (reg & 7) << 3 | (base & 7)));
		emit_u8(e, (uint8_t)disp);
		return;
	}
	emit_u8(e, (uint8_t)(0x80 | (reg & 7) << 3 | (base & 7)));
	emit_u32(e, (uint32_t)disp);
}

static void rdi_disp(struct emit *e, int reg, int32_t disp)
{
	base_disp(e, reg, H_RDI, disp);
}

static void modrm_rr(struct emit *e, int reg, int rm)
{
	emit_u8(e, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

void emit_load(struct emit *e, int size, int reg, int32_t disp)
{
	rex(e, size == 8, reg, 0);
	emit_u8(e, 0x8b);
	rdi_disp(e, reg, disp);
}

void emit_store(struct emit *e, int size, int reg, int32_t disp)
{
	rex(e, size == 8, reg, 0);
	emit_u8(e, size == 1 ? 0x88 : 0x89);
	rdi_disp(e, reg, disp);
}

void emit_store_imm(struct emit *e, int size, int32_t disp, int32_t imm)
{
	rex(e, size == 8, 0, 0);
	emit_u8(e, size == 1 ? 0xc6 : 0xc7);
	rdi_disp(e, 0, disp);
	if (size == 1)
		emit_u8(e, (uint8_t)imm);
	else
		emit_u32(e, (uint32_t)imm);
}

void emit_mov_imm(struct emit *e, int reg, uint64_t imm)
{
	if (imm <= 0xffffffffull) { /* mov r32, imm32 zero-extends */
		rex(e, false, 0, reg);
		emit_u8(e, (uint8_t)(0xb8 | (reg & 7)));
		emit_u32(e, (uint32_t)imm);
	} else if ((int64_t)imm == (int32_t)imm) {
		rex(e, true, 0, reg);
		emit_u8(e, 0xc7);
		modrm_rr(e, 0, reg);
		emit_u32(e, (uint32_t)imm);
	} else {
		rex(e, true, 0, reg);
		emit_u8(e, (uint8_t)(0xb8 | (reg & 7)));
		emit_bytes(e, &imm, 8);
	}
}

void emit_op_rr(struct emit *e, int size, uint8_t op, int dst, int src)
{
	if (size == 2)
		emit_u8(e, 0x66);
	rex(e, size == 8, src, dst);
	emit_u8(e, op);
	modrm_rr(e, src, dst);
}

void emit_alu_rr(struct emit *e, uint8_t op, int dst, int src)
{
	emit_op_rr(e, 8, op, dst, src);
}

void emit_alu_mem(struct emit *e, uint8_t op, int reg, int base, int32_t disp)
{
	rex(e, true, reg, base);
	emit_u8(e, op);
	base_disp(e, reg, base, disp);
}

void emit_alu_sib(struct emit *e, uint8_t op, int reg, int base, int index, int32_t disp)
{
	emit_u8(e, (uint8_t)(0x48 | (reg >> 3) << 2 | (index >> 3) << 1 | (base >> 3)));
	emit_u8(e, op);
	emit_u8(e, (uint8_t)(0x84 | (reg & 7) << 3)); /* [SIB + disp32] */
	emit_u8(e, (uint8_t)((index & 7) << 3 | (base & 7)));
	emit_u32(e, (uint32_t)disp);
}

void emit_shift_imm(struct emit *e, int size, int ext, int reg, uint8_t n)
{
	rex(e, size == 8, 0, reg);
	emit_u8(e, 0xc1);
	modrm_rr(e, ext, reg);
	emit_u8(e, n);
}

void emit_alu_imm(struct emit *e, int size, int ext, int reg, int32_t imm)
{
	rex(e, size == 8, 0, reg);
	emit_u8(e, 0x81);
	modrm_rr(e, ext, reg);
	emit_u32(e, (uint32_t)imm);
}

void emit_and_imm(struct emit *e, int reg, int32_t imm)
{
	emit_alu_imm(e, 8, 4, reg, imm);
}

void emit_ind(struct emit *e, int size, bool store, int reg, int ptr)
{
	if (size == 2)
		emit_u8(e, 0x66); /* operand-size prefix, before REX */
	rex(e, size == 8, reg, ptr);
	emit_u8(e, store ? 0x89 : 0x8b);
	emit_u8(e, (uint8_t)((reg & 7) << 3 | (ptr & 7)));
}

void emit_ext_rr(struct emit *e, int size, uint8_t op, int ext, int reg)
{
	if (size == 2)
		emit_u8(e, 0x66);
	rex(e, size == 8, 0, reg);
	emit_u8(e, op);
	modrm_rr(e, ext, reg);
}

void emit_bswap(struct emit *e, int size, int reg)
{
	rex(e, size == 8, 0, reg);
	emit_u8(e, 0x0f);
	emit_u8(e, (uint8_t)(0xc8 | (reg & 7)));
}

void emit_bt_mem(struct emit *e, int32_t disp, uint8_t bit)
{
	rex(e, true, 0, 0);
	emit_u8(e, 0x0f);
	emit_u8(e, 0xba);
	rdi_disp(e, 4, disp);
	emit_u8(e, bit);
}

void emit_imul_rr(struct emit *e, int size, int dst, int src)
{
	rex(e, size == 8, dst, src);
	emit_u8(e, 0x0f);
	emit_u8(e, 0xaf);
	modrm_rr(e, dst, src);
}

void emit_setcc(struct emit *e, uint8_t cc, int reg)
{
	emit_mov_imm(e, reg, 0); /* setcc writes only the low byte; mov keeps the flags */
	rex(e, false, 0, reg);
	emit_u8(e, 0x0f);
	emit_u8(e, (uint8_t)(0x90 | cc));
	modrm_rr(e, 0, reg);
}

/* 0F op: MOVZX (B6, B7) or MOVSX (BE, BF) */
static void movx(struct emit *e, uint8_t op, bool w, int reg, int src, bool mem)
{
	rex(e, w, reg, src);
	emit_u8(e, 0x0f);
	emit_u8(e, op);
	emit_u8(e, (uint8_t)((mem ? 0 : 0xc0) | (reg & 7) << 3 | (src & 7)));
}

void emit_movzx(struct emit *e, int size, int reg, int src, bool mem)
{
	movx(e, size == 1 ? 0xb6 : 0xb7, false, reg, src, mem);
}

void emit_movsx(struct emit *e, int size, int dsize, int reg, int src, bool mem)
{
	movx(e, size == 1 ? 0xbe : 0xbf, dsize == 8, reg, src, mem);
}

void emit_zext32(struct emit *e, int reg)
{
	rex(e, false, reg, reg);
	emit_u8(e, 0x89);
	modrm_rr(e, reg, reg);
}

uint8_t *emit_jcc(struct emit *e, uint8_t cc)
{
	emit_u8(e, 0x0f);
	emit_u8(e, (uint8_t)(0x80 | cc));
	uint8_t *rel = e->p;
	emit_u32(e, 0);
	return e->full ? NULL : rel;
}

void emit_patch(uint8_t *rel, const uint8_t *target)
{
	int32_t d = (int32_t)(target - (rel + 4));
	memcpy(rel, &d, 4);
}

void emit_lea_disp(struct emit *e, int reg, int base, int32_t disp)
{
	rex(e, true, reg, base);
	emit_u8(e, 0x8d);
	base_disp(e, reg, base, disp);
}

void emit_jmp_mem(struct emit *e, int base, int32_t disp)
{
	rex(e, false, 0, base);
	emit_u8(e, 0xff);
	base_disp(e, 4, base, disp);
}

void emit_call_abs(struct emit *e, const void *fn)
{
	emit_mov_imm(e, H_RAX, (uint64_t)(uintptr_t)fn);
	emit_u8(e, 0xff);
	emit_u8(e, 0xd0); /* call rax */
}

void emit_grp1_mem(struct emit *e, int size, int ext, int base, int32_t disp, int32_t imm)
{
	rex(e, size == 8, 0, base);
	emit_u8(e, size == 1 ? 0x80 : 0x81);
	base_disp(e, ext, base, disp);
	if (size == 1)
		emit_u8(e, (uint8_t)imm);
	else
		emit_u32(e, (uint32_t)imm);
}

void emit_test_mem(struct emit *e, int base, int32_t disp, int32_t imm)
{
	rex(e, false, 0, base);
	emit_u8(e, 0xf7);
	base_disp(e, 0, base, disp);
	emit_u32(e, (uint32_t)imm);
}

void emit_cmov(struct emit *e, uint8_t cc, int dst, int src)
{
	rex(e, true, dst, src);
	emit_u8(e, 0x0f);
	emit_u8(e, (uint8_t)(0x40 | cc));
	modrm_rr(e, dst, src);
}
