/* mmio: every memory-operand instruction form gives the same result on device
 * memory as on RAM. Each case runs twice from the same registers, flags and
 * memory contents: once on a RAM buffer, once on pc-testdev's read-back MMIO
 * window at 0xff000000 (`--device pc-testdev`, QEMU `-device pc-testdev`),
 * and the registers, flags and memory afterwards must be identical. The
 * memory under test is 64 bytes at the start of a page and 64 bytes around the
 * next page boundary, for accesses split across pages.
 * Without the device the window reads all-ones and the first case fails. */
#include "guest.h"

/* a case overrides the default registers it needs */
#pragma GCC diagnostic ignored "-Woverride-init"

const char guest_name[] = "mmio";

#define MMIO_BASE 0xff000000ull
#define CROSS	  0x1000 /* a page boundary inside the area */

struct regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, fl;
};

/* Each case is one asm body with the area's base in R8 and RSI/RDI given as
 * offsets into the area (the harness adds the base). The body may use any of
 * RAX-RDI, R8, XMM0-1 and the x87 stack, which it must leave empty. */
#define CASE(fn, body)                                                                             \
	static void fn(struct regs *r, uint8_t *m)                                                 \
	{                                                                                          \
		register uint8_t *base __asm__("r8") = m;                                          \
		__asm__ volatile("push %[fl]\n\tpopf\n\t" body "\n\tpushf\n\tpop %[fl]\n\tcld"     \
				 : "+a"(r->rax), "+b"(r->rbx), "+c"(r->rcx), "+d"(r->rdx),         \
				   "+S"(r->rsi), "+D"(r->rdi), [fl] "+r"(r->fl)                    \
				 : "r"(base)                                                       \
				 : "memory", "cc");                                                \
	}

/* Data movement */
CASE(mov_load8, "mov 3(%%r8), %%bl")
CASE(mov_load16, "mov 5(%%r8), %%bx")
CASE(mov_load32, "mov 9(%%r8), %%ebx")
CASE(mov_load64, "mov 16(%%r8), %%rbx")
CASE(mov_load_ah, "lea 7(%%r8), %%rsi\n\tmov (%%rsi), %%ah")
CASE(mov_store8, "mov %%al, 3(%%r8)")
CASE(mov_store16, "mov %%ax, 5(%%r8)")
CASE(mov_store32, "mov %%eax, 9(%%r8)")
CASE(mov_store64, "mov %%rax, 16(%%r8)")
CASE(mov_store_imm8, "movb $0x5a, 1(%%r8)")
CASE(mov_store_imm16, "movw $0x1234, 2(%%r8)")
CASE(mov_store_imm32, "movl $0x89abcdef, 4(%%r8)")
CASE(mov_store_imm64, "movq $-0x12345678, 8(%%r8)")
CASE(mov_cross_load, "mov 0xffc(%%r8), %%rbx")
CASE(mov_cross_store, "mov %%rax, 0xffa(%%r8)")
CASE(movzx8, "movzbl 3(%%r8), %%ebx")
CASE(movzx16, "movzwq 6(%%r8), %%rbx")
CASE(movsx8, "movsbq 7(%%r8), %%rbx")
CASE(movsx16, "movswl 14(%%r8), %%ebx")
CASE(movsxd, "movslq 12(%%r8), %%rbx")
CASE(movbe_free_bswap, "mov 8(%%r8), %%rbx\n\tbswap %%rbx\n\tmov %%rbx, 24(%%r8)")
CASE(xchg8, "xchg %%al, 3(%%r8)")
CASE(xchg32, "xchg %%eax, 4(%%r8)")
CASE(xchg64, "xchg %%rax, 8(%%r8)")
CASE(cmov_taken, "cmp %%rax, %%rax\n\tcmove 8(%%r8), %%rbx")
CASE(cmov_not_taken, "cmp %%rax, %%rax\n\tcmovne 8(%%r8), %%ebx")
CASE(setcc_mem, "cmp %%rbx, %%rax\n\tseta 5(%%r8)\n\tsetb 6(%%r8)")
CASE(push_pop_mem, "push 8(%%r8)\n\tpop 24(%%r8)")
CASE(push_mem16, "pushw 6(%%r8)\n\tpopw %%bx")
CASE(pop_mem_from_stack, "push %%rax\n\tpop 32(%%r8)")

/* ALU read-modify-write, register and immediate sources */
#define ALU_CASES(op)                                                                              \
	CASE(op##_rm8, #op " %%al, 3(%%r8)")                                                       \
	CASE(op##_rm16, #op " %%ax, 6(%%r8)")                                                      \
	CASE(op##_rm32, #op " %%eax, 12(%%r8)")                                                    \
	CASE(op##_rm64, #op " %%rax, 16(%%r8)")                                                    \
	CASE(op##_r8m, #op " 5(%%r8), %%bl")                                                       \
	CASE(op##_r32m, #op " 12(%%r8), %%ebx")                                                    \
	CASE(op##_r64m, #op " 24(%%r8), %%rbx")                                                    \
	CASE(op##_imm8, #op "b $0x81, 2(%%r8)")                                                    \
	CASE(op##_imm16, #op "w $0x7ff1, 4(%%r8)")                                                 \
	CASE(op##_imm32s8, #op "l $-3, 8(%%r8)")                                                   \
	CASE(op##_imm64, #op "q $0x7edcba98, 16(%%r8)")
ALU_CASES(add)
ALU_CASES(or)
ALU_CASES(adc)
ALU_CASES(sbb)
ALU_CASES(and)
ALU_CASES(sub)
ALU_CASES(xor)
ALU_CASES(cmp)
CASE(test_rm, "test %%rax, 8(%%r8)")
CASE(test_imm, "testl $0x80000001, 12(%%r8)")
CASE(lock_add, "lock add %%rax, 8(%%r8)")
CASE(lock_or8, "lock orb $0x40, 3(%%r8)")
CASE(lock_cross, "lock xadd %%rax, 0xffc(%%r8)")

/* Group 3 and 4/5 */
CASE(inc8, "incb 3(%%r8)")
CASE(inc64, "incq 8(%%r8)")
CASE(dec16, "decw 4(%%r8)")
CASE(dec32, "decl 12(%%r8)")
CASE(neg32, "negl 12(%%r8)")
CASE(neg64, "negq 16(%%r8)")
CASE(not8, "notb 2(%%r8)")
CASE(not64, "notq 24(%%r8)")
CASE(mul8, "mulb 3(%%r8)")
CASE(mul64, "mulq 8(%%r8)")
CASE(imul1_32, "imull 12(%%r8)")
CASE(imul2_64, "imul 16(%%r8), %%rbx")
CASE(imul3_16, "imul $-77, 6(%%r8), %%bx")
CASE(div32, "movl $3, 40(%%r8)\n\tdivl 40(%%r8)")
CASE(idiv64, "movq $-7, 40(%%r8)\n\tidivq 40(%%r8)")
CASE(div8, "movb $13, 40(%%r8)\n\tdivb 40(%%r8)")

/* Shifts and rotates */
#define SHIFT_CASES(op)                                                                            \
	CASE(op##_1, #op "l 12(%%r8)")                                                             \
	CASE(op##_imm, #op "q $5, 16(%%r8)")                                                       \
	CASE(op##_cl8, #op "b %%cl, 3(%%r8)")                                                      \
	CASE(op##_cl16, #op "w %%cl, 6(%%r8)")
SHIFT_CASES(shl)
SHIFT_CASES(shr)
SHIFT_CASES(sar)
SHIFT_CASES(rol)
SHIFT_CASES(ror)
SHIFT_CASES(rcl)
SHIFT_CASES(rcr)
CASE(shld_imm, "shld $7, %%rax, 16(%%r8)")
CASE(shrd_cl, "shrd %%cl, %%eax, 12(%%r8)")

/* CMPXCHG, XADD */
CASE(cmpxchg_eq, "mov 8(%%r8), %%rax\n\tcmpxchg %%rbx, 8(%%r8)")
CASE(cmpxchg_ne, "cmpxchg %%ebx, 12(%%r8)")
CASE(cmpxchg8, "mov 3(%%r8), %%al\n\tlock cmpxchg %%bl, 3(%%r8)")
CASE(cmpxchg8b_eq, "mov 8(%%r8), %%eax\n\tmov 12(%%r8), %%edx\n\tcmpxchg8b 8(%%r8)")
CASE(cmpxchg8b_ne, "cmpxchg8b 16(%%r8)")
CASE(cmpxchg16b_eq, "mov 16(%%r8), %%rax\n\tmov 24(%%r8), %%rdx\n\tlock cmpxchg16b 16(%%r8)")
CASE(xadd16, "xadd %%bx, 6(%%r8)")
CASE(xadd64, "lock xadd %%rax, 16(%%r8)")

/* Bit operations: register offsets address bytes far from the operand */
CASE(bt_imm, "btl $13, 8(%%r8)")
CASE(bts_imm, "btsq $45, 8(%%r8)")
CASE(btr_imm, "btrw $9, 6(%%r8)")
CASE(btc_imm, "btcl $31, 12(%%r8)")
CASE(bt_reg_far, "mov $300, %%rbx\n\tbtq %%rbx, (%%r8)")
CASE(bts_reg_far, "mov $259, %%ebx\n\tbtsl %%ebx, (%%r8)")
CASE(btr_reg_neg, "mov $-70, %%rbx\n\tbtrq %%rbx, 32(%%r8)")
CASE(btc_reg16, "mov $-9, %%bx\n\tbtcw %%bx, 20(%%r8)")
CASE(bts_reg_cross, "mov $35, %%ebx\n\tlock btsl %%ebx, 0xffc(%%r8)")
CASE(bsf_mem, "bsfq 8(%%r8), %%rbx")
CASE(bsr_mem, "bsrl 12(%%r8), %%ebx")
CASE(bsf_zero, "movq $0, 40(%%r8)\n\tbsfq 40(%%r8), %%rbx")

/* String instructions, forward and backward, with and without REP */
CASE(movsb, "movsb")
CASE(rep_movsb, "mov $13, %%ecx\n\trep movsb")
CASE(rep_movsq, "mov $3, %%ecx\n\trep movsq")
CASE(rep_movsw_back, "std\n\tmov $5, %%ecx\n\trep movsw")
CASE(rep_stosb, "mov $11, %%ecx\n\trep stosb")
CASE(rep_stosl_back, "std\n\tmov $4, %%ecx\n\trep stosl")
CASE(rep_stosq_cross, "mov $4, %%ecx\n\trep stosq")
CASE(lodsl, "lodsl")
CASE(rep_lodsb, "mov $6, %%ecx\n\trep lodsb")
CASE(lodsq_back, "std\n\tlodsq")
CASE(cmpsb, "cmpsb")
CASE(repe_cmpsb, "mov $20, %%ecx\n\trepe cmpsb")
CASE(repne_cmpsq, "mov $4, %%ecx\n\trepne cmpsq")
CASE(scasw, "scasw")
CASE(repne_scasb, "mov $64, %%ecx\n\trepne scasb")
CASE(repe_scasl_back, "std\n\tmov $6, %%ecx\n\trepe scasl")

/* SSE (16-byte accesses reach the device as two 8-byte ones) */
CASE(movdqu_load, "movdqu 1(%%r8), %%xmm0\n\tmovdqu %%xmm0, 48(%%r8)")
CASE(movdqu_store, "movdqu 16(%%r8), %%xmm1\n\tmovdqu %%xmm1, 33(%%r8)")
CASE(movups_rt, "movups 8(%%r8), %%xmm0\n\tmovups %%xmm0, 40(%%r8)")
CASE(movaps_rt, "movaps 16(%%r8), %%xmm1\n\tmovaps %%xmm1, 32(%%r8)")
CASE(movdqa_rt, "movdqa (%%r8), %%xmm0\n\tmovdqa %%xmm0, 48(%%r8)")
CASE(movq_rt, "movq 3(%%r8), %%xmm0\n\tmovq %%xmm0, 40(%%r8)")
CASE(movd_rt, "movd 5(%%r8), %%xmm1\n\tmovd %%xmm1, 44(%%r8)\n\tmovd %%xmm1, %%ebx")
CASE(movdqu_cross, "movdqu 0xff8(%%r8), %%xmm0\n\tmovdqu %%xmm0, 0xff4(%%r8)")
CASE(paddd_mem, "movdqu 32(%%r8), %%xmm0\n\tpaddd (%%r8), %%xmm0\n\tmovdqu %%xmm0, 48(%%r8)")
CASE(movlpd_rt, "movdqu (%%r8), %%xmm0\n\tmovlpd 24(%%r8), %%xmm0\n\tmovhpd %%xmm0, 40(%%r8)")

/* x87 */
CASE(fld_fstp64, "fldl 8(%%r8)\n\tfstpl 40(%%r8)")
CASE(fild_fistp32, "fildl 12(%%r8)\n\tfistpl 44(%%r8)")
CASE(fld_fstp80, "fldt 16(%%r8)\n\tfstpt 32(%%r8)")
CASE(fadd_mem, "fld1\n\tfaddl 8(%%r8)\n\tfstpl 48(%%r8)")

struct test {
	const char *name;
	void (*fn)(struct regs *r, uint8_t *m);
	struct regs in;
	uint64_t flags; /* the flags the architecture defines after the case */
	bool kvm_lacks; /* KVM's instruction emulator cannot run it on MMIO */
};

#define ARITH 0x8d5u /* CF PF AF ZF SF OF */
#define DF    0x400u
#define R0                                                                                         \
	.rax = 0x8877665544332211ull, .rbx = 0x0123456789abcdefull, .rcx = 0x2b,                   \
	.rdx = 0x0000000fedcba987ull, .rsi = 8, .rdi = 40, .fl = 0x2
#define T(n, ...)                                                                                  \
	{                                                                                          \
#n, n, {R0, __VA_ARGS__ }, ARITH | DF, false                                       \
	}
/* cases whose flags are partly undefined: only those in mask are compared */
#define TF(n, mask, ...)                                                                           \
	{                                                                                          \
#n, n, {R0, __VA_ARGS__ }, (mask) | DF, false                                      \
	}
#define TK(n, ...)                                                                                 \
	{                                                                                          \
#n, n, {R0, __VA_ARGS__ }, ARITH | DF, true                                        \
	}

#define ALU_TESTS(op)                                                                              \
	T(op##_rm8), T(op##_rm16), T(op##_rm32), T(op##_rm64), T(op##_r8m), T(op##_r32m),          \
	    T(op##_r64m), T(op##_imm8), T(op##_imm16), T(op##_imm32s8), T(op##_imm64),             \
	    T(op##_rm64, .fl = 0x3), T(op##_imm8, .fl = 0x3)
/* shifts leave AF undefined, OF for counts other than 1, everything for count 0 */
#define SHIFT_TESTS(op)                                                                            \
	TF(op##_1, 0x8c5), TF(op##_imm, 0x0c5), TF(op##_cl8, 0x0c5), TF(op##_cl16, 0x0c5),         \
	    TF(op##_1, 0x8c5, .fl = 0x3), TF(op##_cl16, 0x0c5, .rcx = 17, .fl = 0x3)
#define ROT_TESTS(op)                                                                              \
	TF(op##_1, 0x801), TF(op##_imm, 0x001), TF(op##_cl8, 0x001), TF(op##_cl16, 0x001),         \
	    TF(op##_1, 0x801, .fl = 0x3), TF(op##_cl16, 0x001, .rcx = 19, .fl = 0x3)

static const struct test tests[] = {
    T(mov_load8),
    T(mov_load16),
    T(mov_load32),
    T(mov_load64),
    T(mov_load_ah),
    T(mov_store8),
    T(mov_store16),
    T(mov_store32),
    T(mov_store64),
    T(mov_store_imm8),
    T(mov_store_imm16),
    T(mov_store_imm32),
    T(mov_store_imm64),
    T(mov_cross_load),
    T(mov_cross_store),
    T(movzx8),
    T(movzx16),
    T(movsx8),
    T(movsx16),
    T(movsxd),
    T(movbe_free_bswap),
    T(xchg8),
    T(xchg32),
    T(xchg64),
    T(cmov_taken),
    T(cmov_not_taken),
    T(setcc_mem),
    T(push_pop_mem),
    T(push_mem16),
    T(pop_mem_from_stack),

    ALU_TESTS(add),
    ALU_TESTS(or),
    ALU_TESTS(adc),
    ALU_TESTS(sbb),
    ALU_TESTS(and),
    ALU_TESTS(sub),
    ALU_TESTS(xor),
    ALU_TESTS(cmp),
    T(test_rm),
    T(test_imm),
    T(lock_add),
    T(lock_or8),
    T(lock_cross),

    T(inc8),
    T(inc64),
    T(dec16),
    T(dec32),
    T(neg32),
    T(neg64),
    T(not8),
    T(not64),
    TF(mul8, 0x801),
    TF(mul64, 0x801),
    TF(imul1_32, 0x801),
    TF(imul2_64, 0x801),
    TF(imul3_16, 0x801),
    TF(div32, 0, .rdx = 1),
    TF(idiv64, 0, .rdx = ~0ull, .rax = -1000001ll),
    TF(div8, 0, .rax = 0x0834),

    SHIFT_TESTS(shl),
    SHIFT_TESTS(shr),
    SHIFT_TESTS(sar),
    ROT_TESTS(rol),
    ROT_TESTS(ror),
    ROT_TESTS(rcl),
    ROT_TESTS(rcr),
    TF(shld_imm, 0x0c5),
    TF(shrd_cl, 0x0c5, .rcx = 9),

    T(cmpxchg_eq),
    T(cmpxchg_ne),
    T(cmpxchg8),
    T(cmpxchg8b_eq),
    T(cmpxchg8b_ne),
    TK(cmpxchg16b_eq, .rbx = 0x1111, .rcx = 0x2222),
    T(xadd16),
    T(xadd64),

    TF(bt_imm, 0x001),
    TF(bts_imm, 0x001),
    TF(btr_imm, 0x001),
    TF(btc_imm, 0x001),
    TF(bt_reg_far, 0x001),
    TF(bts_reg_far, 0x001),
    TF(btr_reg_neg, 0x001),
    TF(btc_reg16, 0x001),
    TF(bts_reg_cross, 0x001),
    TF(bsf_mem, 0x040),
    TF(bsr_mem, 0x040),
    TF(bsf_zero, 0x040),

    T(movsb),
    T(rep_movsb),
    T(rep_movsq, .rsi = 0, .rdi = 24),
    T(rep_movsq, .rsi = 16, .rdi = 8),
    T(rep_movsw_back, .rsi = 30, .rdi = 50),
    T(rep_stosb, .rdi = 3),
    T(rep_stosl_back, .rdi = 44),
    T(rep_stosq_cross, .rdi = 0xff0),
    T(lodsl),
    T(rep_lodsb),
    T(lodsq_back, .rsi = 24),
    T(cmpsb),
    T(repe_cmpsb, .rsi = 0, .rdi = 32),
    T(repne_cmpsq, .rsi = 0, .rdi = 32),
    T(scasw, .rdi = 6),
    T(repne_scasb, .rax = 0x2d, .rdi = 0),
    T(repe_scasl_back, .rax = 0x33333333, .rdi = 60),

    T(movdqu_load),
    T(movdqu_store),
    T(movups_rt),
    T(movaps_rt),
    T(movdqa_rt),
    TK(movq_rt),
    TK(movd_rt),
    T(movdqu_cross),
    TK(paddd_mem),
    TK(movlpd_rt),

    TK(fld_fstp64),
    TK(fild_fistp32),
    TK(fld_fstp80),
    TK(fadd_mem),
};

/* The areas compared: the start of the first page and around the boundary. */
static const struct {
	uint32_t off, len;
} areas[] = {{0, 64}, {CROSS - 32, 64}};

static uint8_t ram[2 * 4096] __attribute__((aligned(4096)));

/* A fixed pattern with some repeats (for REPE/REPNE) and a few known words. */
static void fill(volatile uint8_t *m)
{
	for (unsigned a = 0; a < sizeof(areas) / sizeof(areas[0]); a++)
		for (uint32_t i = 0; i < areas[a].len; i += 8) {
			uint32_t o = areas[a].off + i;
			uint64_t v = 0x9e3779b97f4a7c15ull * (o + 1);
			if (o == 32 || o == 40)
				v = 0x3333333333333333ull; /* scasl finds equal words */
			if (o == 48)
				v = 0x2d2d2d2d2d2d2d2dull;
			*(volatile uint64_t *)(m + o) = v;
		}
	/* the first 16 bytes equal the 16 at 32, so repe cmpsb runs a while */
	*(volatile uint64_t *)(m + 0) = 0x3333333333333333ull;
	*(volatile uint64_t *)(m + 8) = 0x3333333333335533ull;
}

static void snap(volatile uint8_t *m, uint8_t *out)
{
	unsigned n = 0;
	for (unsigned a = 0; a < sizeof(areas) / sizeof(areas[0]); a++)
		for (uint32_t i = 0; i < areas[a].len; i += 8, n += 8) {
			uint64_t v = *(volatile uint64_t *)(m + areas[a].off + i);
			memcpy(out + n, &v, 8);
		}
}

static void run(const struct test *t, uint8_t *m, struct regs *r, uint8_t *mem)
{
	fill(m);
	*r = t->in;
	r->rsi += (uint64_t)m;
	r->rdi += (uint64_t)m;
	t->fn(r, m);
	r->rsi -= (uint64_t)m;
	r->rdi -= (uint64_t)m;
	r->fl &= t->flags;
	snap(m, mem);
}

static const char *const reg_names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rflags"};

/* cmdline "kvm": skip the cases KVM's emulator cannot run (the kvm engine
 * and QEMU -accel kvm emulate MMIO instructions with it). */
int guest_main(const struct boot_info *bi)
{
	bool kvm = boot_flag(bi, "kvm");
	/* SSE needs CR4.OSFXSR; x87 needs CR0.EM clear */
	write_cr0((read_cr0() & ~(1ull << 2)) | (1ull << 1));
	write_cr4(read_cr4() | (1ull << 9) | (1ull << 10));
	__asm__ volatile("fninit");

	/* the device must be there: a word written must read back */
	volatile uint64_t *probe = (volatile uint64_t *)(MMIO_BASE + 0x8000);
	*probe = 0x0123456789abcdefull;
	if (*probe != 0x0123456789abcdefull)
		fail("no read-back MMIO at %#llx (pc-testdev missing?): read %#lx",
		     MMIO_BASE + 0x8000, *probe);

	unsigned n = sizeof(tests) / sizeof(tests[0]), bad = 0, skipped = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct test *t = &tests[i];
		if (kvm && t->kvm_lacks) {
			kprintf("mmio: %s skipped (kvm)\n", t->name);
			skipped++;
			continue;
		}
		struct regs a, b;
		uint8_t ma[128], mb[128];
		run(t, ram, &a, ma);
		run(t, (uint8_t *)MMIO_BASE, &b, mb);
		const uint64_t *ra = &a.rax, *rb = &b.rax;
		bool ok = true;
		for (unsigned k = 0; k < 7; k++)
			if (ra[k] != rb[k]) {
				kprintf("mmio: %s (case %u): %s ram %#lx mmio %#lx\n", t->name, i,
					reg_names[k], ra[k], rb[k]);
				ok = false;
			}
		for (unsigned k = 0; k < sizeof(ma); k++)
			if (ma[k] != mb[k]) {
				unsigned a_ = k < 64 ? 0 : 1;
				kprintf("mmio: %s (case %u): byte %#x ram %#x mmio %#x\n", t->name,
					i, areas[a_].off + (k & 63), ma[k], mb[k]);
				ok = false;
				break;
			}
		bad += !ok;
	}
	kprintf("mmio: %u cases, %u differ, %u skipped\n", n, bad, skipped);
	if (bad)
		fail("%u of %u instruction forms differ between RAM and MMIO", bad, n);
	return 0;
}
