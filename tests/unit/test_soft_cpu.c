/* Soft engine CPU core: small hand-assembled programs run through engine_ops
 * on a 4 MiB guest (tests/unit/soft_guest.h), checking results, flags,
 * exceptions with their error codes, exits, paging/TLB semantics, privilege
 * transitions and the real -> protected -> long mode path. Each program is
 * listed with its source as a comment. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "soft_guest.h"

/* Assembled with GNU as; sources in the comments above each test. */
static const uint8_t exc_de_code[] = {0x31, 0xc9, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf7, 0xf1, 0xf4};
static const uint8_t exc_pf_code[] = {0x48, 0xc7, 0xc0, 0x00, 0x00, 0x00, 0x40, 0xc7,
				      0x40, 0x10, 0x01, 0x00, 0x00, 0x00, 0xf4};
static const uint8_t invlpg_code[] = {
    0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x48, 0xc7, 0x04, 0x25, 0x08,
    0x30, 0x00, 0x00, 0x87, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00,
    0x20, 0x00, 0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x20, 0x00, 0x48, 0x8b, 0x0c,
    0x25, 0x00, 0x00, 0x20, 0x00, 0x0f, 0x20, 0xda, 0x0f, 0x22, 0xda, 0xf4};
static const uint8_t io_code[] = {0x66, 0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee, 0xec, 0x89, 0xc3, 0x66,
				  0xba, 0x10, 0x05, 0xb8, 0x02, 0x00, 0x00, 0x00, 0xbf, 0x0b, 0x00,
				  0x00, 0x00, 0xbe, 0x16, 0x00, 0x00, 0x00, 0xef, 0xf4};
static const uint8_t loop_code[] = {0xb9, 0x64, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x48, 0x01, 0xc8,
				    0xe2, 0xfb, 0x48, 0xc7, 0xc3, 0xff, 0xff, 0xff, 0xff, 0x48,
				    0x83, 0xc3, 0x01, 0x48, 0x83, 0xd0, 0x00, 0xf4};
static const uint8_t mmio_code[] = {0x48, 0xbe, 0x00, 0x00, 0xe0, 0x3f, 0x00, 0x00,
				    0x00, 0x00, 0x8b, 0x46, 0x08, 0xc7, 0x46, 0x0c,
				    0x78, 0x56, 0x34, 0x12, 0x83, 0xc0, 0x01, 0xf4};
static const uint8_t sse_code[] = {0x48, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x66,
				   0x48, 0x0f, 0x6e, 0xc0, 0xf2, 0x0f, 0x58, 0xc0, 0xf2, 0x0f, 0x59,
				   0xc0, 0xf2, 0x48, 0x0f, 0x2c, 0xd8, 0x66, 0x0f, 0x74, 0xc9, 0x66,
				   0x0f, 0xef, 0xd2, 0x66, 0x0f, 0xf8, 0xd1, 0x66, 0x0f, 0xd7, 0xc9,
				   0xd9, 0xe8, 0xd9, 0xe8, 0xde, 0xc1, 0xdb, 0x1c, 0x25, 0x00, 0x00,
				   0x02, 0x00, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x02, 0x00, 0xf4};
static const uint8_t sys_code[] = {
    0xb9, 0x81, 0x00, 0x00, 0xc0, 0x31, 0xc0, 0xba, 0x08, 0x00, 0x20, 0x00, 0x0f, 0x30,
    0xb9, 0x82, 0x00, 0x00, 0xc0, 0x48, 0x8d, 0x05, 0x2d, 0x00, 0x00, 0x00, 0x31, 0xd2,
    0x0f, 0x30, 0xb9, 0x84, 0x00, 0x00, 0xc0, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x31, 0xd2,
    0x0f, 0x30, 0x48, 0x8d, 0x0d, 0x0a, 0x00, 0x00, 0x00, 0x49, 0xc7, 0xc3, 0x02, 0x00,
    0x00, 0x00, 0x48, 0x0f, 0x07, 0x49, 0xc7, 0xc4, 0x07, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0xf4, 0x49, 0x89, 0xcd, 0x41, 0x8c, 0xce, 0x48, 0x8b, 0x1c, 0x24, 0xfa, 0xf4};
static const uint8_t triple_code[] = {0x0f, 0x01, 0x1d, 0x02, 0x00, 0x00, 0x00, 0x0f, 0x0b, 0x00,
				      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t user_priv_code[] = {0xb9, 0x81, 0x00, 0x00, 0xc0, 0x31, 0xc0, 0xba, 0x08, 0x00,
					 0x20, 0x00, 0x0f, 0x30, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f,
					 0x32, 0x48, 0x8d, 0x0d, 0x0a, 0x00, 0x00, 0x00, 0x49, 0xc7,
					 0xc3, 0x02, 0x00, 0x00, 0x00, 0x48, 0x0f, 0x07, 0xf4};
static const uint8_t modes_code[] = {
    0xfa, 0x8c, 0xc8, 0x8e, 0xd8, 0x66, 0x0f, 0x01, 0x16, 0x60, 0x00, 0x0f, 0x20, 0xc0, 0x66,
    0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x1d, 0x00, 0x01, 0x00, 0x18, 0x00, 0x66,
    0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0xb8, 0x20, 0x00, 0x00, 0x00, 0x0f, 0x22, 0xe0,
    0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32,
    0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80,
    0x0f, 0x22, 0xc0, 0xea, 0x55, 0x00, 0x01, 0x00, 0x08, 0x00, 0x48, 0xb8, 0x88, 0x77, 0x66,
    0x55, 0x44, 0x33, 0x22, 0x11, 0xf4, 0x47, 0x00, 0x00, 0x40, 0x00, 0x00};

static const uint8_t real_int_code[] = {0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0x84, 0x00, 0x16, 0x00,
					0xc7, 0x06, 0x86, 0x00, 0x00, 0x10, 0xbb, 0x34, 0x12, 0xcd,
					0x21, 0xf4, 0xb9, 0x78, 0x56, 0x9c, 0x5a, 0xcf};
static const uint8_t lock_code[] = {0xb9, 0xa0, 0x86, 0x01, 0x00, 0xf0, 0x48, 0xff, 0x04, 0x25,
				    0x00, 0x00, 0x02, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf0,
				    0x48, 0x0f, 0xc1, 0x04, 0x25, 0x08, 0x00, 0x02, 0x00, 0xff,
				    0xc9, 0x75, 0xe4, 0x66, 0xba, 0x10, 0x05, 0xef};
static const uint8_t prot32_code[] = {
    0xb8, 0x2f, 0x00, 0x01, 0x00, 0x66, 0xa3, 0x30, 0x50, 0x00, 0x00, 0x66, 0xc7, 0x05, 0x32, 0x50,
    0x00, 0x00, 0x18, 0x00, 0x66, 0xc7, 0x05, 0x34, 0x50, 0x00, 0x00, 0x00, 0x8e, 0xc1, 0xe8, 0x10,
    0x66, 0xa3, 0x36, 0x50, 0x00, 0x00, 0x0f, 0x01, 0x1d, 0x38, 0x00, 0x01, 0x00, 0x0f, 0x0b, 0x5b,
    0x8c, 0xc9, 0xf4, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xff, 0x07, 0x00, 0x50, 0x00, 0x00};

static const uint8_t c16_code[] = {
    0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, 0x48, 0xc7, 0xc2, 0x02, 0x00, 0x00, 0x00, 0x48, 0xc7,
    0xc3, 0x03, 0x00, 0x00, 0x00, 0x48, 0xc7, 0xc1, 0x04, 0x00, 0x00, 0x00, 0xf0, 0x48, 0x0f, 0xc7,
    0x0c, 0x25, 0x00, 0x00, 0x02, 0x00, 0x41, 0x0f, 0x94, 0xc0, 0x48, 0xc7, 0xc0, 0x09, 0x00, 0x00,
    0x00, 0xf0, 0x48, 0x0f, 0xc7, 0x0c, 0x25, 0x00, 0x00, 0x02, 0x00, 0x41, 0x0f, 0x94, 0xc1, 0xf4};

static struct sg g;

static int setup(void **state)
{
	(void)state;
	return sg_init(&g, 1);
}

static int teardown(void **state)
{
	(void)state;
	sg_free(&g);
	return 0;
}

static void load(const uint8_t *code, size_t len)
{
	sg_code(&g, code, len);
}

static uint32_t vector(void)
{
	uint32_t v;
	memcpy(&v, g.ram + SG_VEC, 4);
	return v;
}

/* mov ecx,100; xor eax,eax; 1: add rax,rcx; loop 1b; mov rbx,-1; add rbx,1;
 * adc rax,0; hlt */
static void test_loop_and_carry(void **state)
{
	(void)state;
	load(loop_code, sizeof(loop_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 5050 + 1);
	assert_int_equal(g.st.gpr[R_RBX], 0);
	assert_int_equal(g.st.gpr[R_RCX], 0);
	assert_int_equal(g.st.rflags & 0x41, 0); /* adc consumed the carry: CF=0, ZF=0 */
}

/* xor ecx,ecx; mov eax,1; div ecx -> #DE delivered through the IDT */
static void test_divide_error(void **state)
{
	(void)state;
	load(exc_de_code, sizeof(exc_de_code));
	memset(g.ram + SG_VEC, 0xff, 4);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 0);
	/* the frame holds the faulting RIP (div is at +7), no error code */
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), SG_CODE + 7);
}

/* mov rax,0x40000000; mov dword [rax+0x10],1 -> #PF, not present, write */
static void test_page_fault(void **state)
{
	(void)state;
	load(exc_pf_code, sizeof(exc_pf_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	assert_int_equal(g.st.cr2, 0x40000010);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), 2); /* W, not present, supervisor */
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP] + 8), SG_CODE + 7); /* faulting RIP */
}

/* mov rax,0x40000000; jmp rax -> #PF on the fetch: RIP and CR2 are the
 * target, the error code says instruction fetch, not present */
static void test_fetch_fault(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0xc7, 0xc0, 0x00, 0x00, 0x00, 0x40, 0xff, 0xe0};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	assert_int_equal(g.st.cr2, 0x40000000);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), 0x10);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP] + 8), 0x40000000);
}

/* out 0x3f8,'A'; in al,dx; mov ebx,eax; hypercall 2 (11, 22); hlt */
static void test_io_and_hypercall(void **state)
{
	(void)state;
	load(io_code, sizeof(io_code));
	assert_int_equal(sg_run(&g), EXIT_IO);
	assert_true(g.exit.io.write);
	assert_int_equal(g.exit.io.port, 0x3f8);
	assert_int_equal(g.exit.io.size, 1);
	assert_int_equal(g.exit.io.data[0], 'A');
	assert_int_equal(sg_run(&g), EXIT_IO);
	assert_false(g.exit.io.write);
	g.exit.io.data[0] = 0x5a; /* the device's answer, consumed by the next run */
	assert_int_equal(sg_run(&g), EXIT_HYPERCALL);
	assert_int_equal(g.exit.hc.nr, 2);
	assert_int_equal(g.exit.hc.arg[0], 11);
	assert_int_equal(g.exit.hc.arg[1], 22);
	assert_int_equal(g.exit.hc.arg[2], 0x5a); /* RBX = what IN read */
	g.exit.hc.ret = 1234;
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 1234);
}

/* mov rsi,0x3fe00000 (mapped to gpa 0xc0000000, not RAM); mov eax,[rsi+8];
 * mov dword [rsi+12],0x12345678; add eax,1; hlt */
static void test_mmio(void **state)
{
	(void)state;
	load(mmio_code, sizeof(mmio_code));
	sg_w64(&g, SG_PD + 511 * 8, 0xc0000000 | 0x87);
	assert_int_equal(sg_run(&g), EXIT_MMIO);
	assert_false(g.exit.mmio.write);
	assert_int_equal(g.exit.mmio.gpa, 0xc0000008);
	assert_int_equal(g.exit.mmio.size, 4);
	uint32_t v = 41;
	memcpy(g.exit.mmio.data, &v, 4);
	assert_int_equal(sg_run(&g), EXIT_MMIO);
	assert_true(g.exit.mmio.write);
	assert_int_equal(g.exit.mmio.gpa, 0xc000000c);
	memcpy(&v, g.exit.mmio.data, 4);
	assert_int_equal(v, 0x12345678);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 42);
}

/* The engine's --stats counter group.name for the guest's vCPU. */
static int64_t engine_stat(struct sg *guest, const char *group, const char *name)
{
	struct json_object *o = json_object_new_object(), *grp, *val;
	soft_engine.stats(guest->v, o);
	assert_true(json_object_object_get_ex(o, group, &grp));
	assert_true(json_object_object_get_ex(grp, name, &val));
	int64_t v = json_object_get_int64(val);
	json_object_put(o);
	return v;
}

/* Runs a program that reads 0x200000 (rax), remaps it to gpa 0, reads it
 * again (rbx: the stale translation) and after INVLPG once more (rcx). */
static void run_remap(struct sg *guest)
{
	sg_w64(guest, 0x200000, 0x1111);
	sg_w64(guest, 0, 0x2222);
	assert_int_equal(sg_run(guest), EXIT_HLT);
	assert_int_equal(guest->st.gpr[R_RAX], 0x1111);
	assert_int_equal(guest->st.gpr[R_RBX], 0x1111);
	assert_int_equal(guest->st.gpr[R_RCX], 0x2222);
}

/* rax=[0x200000]; remap that 2 MiB page to gpa 0; rbx=[0x200000] (stale TLB,
 * as on hardware); invlpg; rcx=[0x200000] (new mapping); reload CR3; hlt */
static void test_tlb_invalidation(void **state)
{
	(void)state;
	load(invlpg_code, sizeof(invlpg_code));
	run_remap(&g);
	assert_true(engine_stat(&g, "tlb", "flushes") >= 2);
}

/* The same with a 4 KiB page while the code runs from a 2 MiB one: INVLPG
 * of an address no cached large page covers drops just its own entry.
 * PD[1] -> page table at 0xa000 mapping 0x200000.. one to one;
 *   rax=[0x200000]; PTE 0 -> gpa 0; rbx=[0x200000] (stale);
 *   invlpg [0x200000]; rcx=[0x200000]; hlt */
static void test_tlb_invalidation_4k(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x48,
				       0xc7, 0x04, 0x25, 0x00, 0xa0, 0x00, 0x00, 0x03, 0x00,
				       0x00, 0x00, 0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x20,
				       0x00, 0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x20, 0x00,
				       0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x20, 0x00, 0xf4};
	load(code, sizeof(code));
	for (uint64_t i = 0; i < 512; i++)
		sg_w64(&g, 0xa000 + i * 8, (0x200000 + (i << 12)) | 3);
	sg_w64(&g, SG_PD + 8, 0xa000 | 7);
	run_remap(&g);
}

/* STAR/LSTAR/SFMASK; sysretq to ring 3; ring 3 does syscall; the kernel entry
 * records RCX and CS and halts. */
static void test_syscall_sysret(void **state)
{
	(void)state;
	load(sys_code, sizeof(sys_code));
	g.st.gpr[R_RSP] = 0x70000;
	soft_engine.set_state(g.v, &g.st);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_R12], 7);	    /* ran in ring 3 */
	assert_int_equal(g.st.gpr[R_R14], SG_CS64); /* back in the kernel */
	assert_int_equal(g.st.seg[SEG_CS].sel, SG_CS64);
	assert_int_equal(g.st.gpr[R_R11] & 3, 2);	    /* R11 = user RFLAGS */
	assert_int_equal(g.st.gpr[R_R13], g.st.gpr[R_RCX]); /* return address */
	assert_int_equal(g.st.rflags & 0x200, 0);
}

/* sysretq to ring 3, which executes hlt: #GP(0) with a stack switch to RSP0 */
static void test_privileged_in_user_mode(void **state)
{
	(void)state;
	load(user_priv_code, sizeof(user_priv_code));
	g.st.gpr[R_RSP] = 0x70000;
	soft_engine.set_state(g.v, &g.st);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 13);
	uint64_t sp = g.st.gpr[R_RSP];
	assert_int_equal(sp, SG_STACK - 48);		/* RSP0 from the TSS, six words pushed */
	assert_int_equal(sg_r64(&g, sp), 0);		/* error code */
	assert_int_equal(sg_r64(&g, sp + 16) & 3, 3);	/* CS of ring 3 */
	assert_int_equal(sg_r64(&g, sp + 32), 0x70000); /* user RSP */
	assert_true(engine_stat(&g, "classes", "privileged") >= 1);
}

/* lidt with limit 0; ud2 -> #UD cannot be delivered -> #GP -> #DF -> shutdown */
static void test_triple_fault(void **state)
{
	(void)state;
	load(triple_code, sizeof(triple_code));
	assert_int_equal(sg_run(&g), EXIT_SHUTDOWN);
	assert_int_equal(g.exit.fail.rip, SG_CODE + 7);
}

/* SSE2 double arithmetic and conversion, integer SIMD, x87 fld1/faddp/fistp */
static void test_sse_x87(void **state)
{
	(void)state;
	load(sse_code, sizeof(sse_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], 16);	   /* (2+2)^2 */
	assert_int_equal(g.st.gpr[R_RCX], 0xffff); /* pmovmskb of all ones */
	assert_int_equal(g.st.gpr[R_RDX], 2);	   /* 1 + 1 through the x87 stack */
	/* xmm2 = 0 - (-1) per byte, visible in the FXSAVE image of get_state */
	for (int i = 0; i < 16; i++)
		assert_int_equal(g.st.xsave[160 + 32 + i], 1);
}

/* Real mode at 1000:0000 -> lgdt, CR0.PE, far jump to 32-bit code -> PAE,
 * CR3, EFER.LME, CR0.PG, far jump to 64-bit code: the AP trampoline path. */
static void test_real_to_long_mode(void **state)
{
	(void)state;
	load(modes_code, sizeof(modes_code));
	struct cpu_state *s = &g.st;
	for (int i = SEG_ES; i <= SEG_GS; i++)
		s->seg[i] = (struct seg){.limit = 0xffff, .type = 3, .s = 1, .present = 1};
	s->seg[SEG_CS] = (struct seg){
	    .base = 0x10000, .limit = 0xffff, .sel = 0x1000, .type = 0xb, .s = 1, .present = 1};
	s->cr0 = 0x10;
	s->cr4 = 0;
	s->cr3 = 0;
	s->msr[MSR_IDX_EFER] = 0;
	s->rip = 0;
	s->gpr[R_RSP] = 0x8000;
	soft_engine.set_state(g.v, s);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 0x1122334455667788ull);
	assert_true(g.st.seg[SEG_CS].l);
	assert_true(g.st.msr[MSR_IDX_EFER] & EFER_LMA);
}

/* Real mode at 1000:0000: IVT entry 0x21 -> handler (mov cx; pushf; pop dx;
 * iret), int 0x21, hlt. The handler sees IF clear; IRET restores it. */
static void test_real_mode_interrupt(void **state)
{
	(void)state;
	load(real_int_code, sizeof(real_int_code));
	struct cpu_state *s = &g.st;
	for (int i = SEG_ES; i <= SEG_GS; i++)
		s->seg[i] = (struct seg){.limit = 0xffff, .type = 3, .s = 1, .present = 1};
	s->seg[SEG_CS] = (struct seg){
	    .base = 0x10000, .limit = 0xffff, .sel = 0x1000, .type = 0xb, .s = 1, .present = 1};
	s->idt = (struct dtable){0, 0x3ff};
	s->cr0 = 0x10;
	s->cr4 = 0;
	s->msr[MSR_IDX_EFER] = 0;
	s->rip = 0;
	s->rflags = 0x2;
	s->gpr[R_RSP] = 0x8000;
	soft_engine.set_state(g.v, s);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX] & 0xffff, 0x1234);
	assert_int_equal(g.st.gpr[R_RCX] & 0xffff, 0x5678);
	assert_int_equal(g.st.gpr[R_RDX] & 0x200, 0); /* IF cleared on entry */
	assert_int_equal(g.st.gpr[R_RSP] & 0xffff, 0x8000);
	assert_int_equal(g.st.rip, 0x16); /* after hlt, back in the caller */
}

/* 32-bit protected mode, paging off: a 32-bit interrupt gate for #UD; the
 * handler pops the pushed EIP (no error code for #UD) and reads CS. */
static void test_protected_mode_exception(void **state)
{
	(void)state;
	load(prot32_code, sizeof(prot32_code));
	struct cpu_state *s = &g.st;
	sg_seg(&s->seg[SEG_CS], SG_CS32, 0xb, 0, false, true);
	for (int i = SEG_ES; i <= SEG_GS; i++)
		if (i != SEG_CS)
			sg_seg(&s->seg[i], SG_DS, 0x3, 0, false, true);
	s->cr0 = 0x11;
	s->cr4 = 0;
	s->msr[MSR_IDX_EFER] = 0;
	s->rip = SG_CODE;
	s->gpr[R_RSP] = 0x80000;
	soft_engine.set_state(g.v, s);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], SG_CODE + 0x2d); /* the ud2 */
	assert_int_equal(g.st.gpr[R_RCX] & 0xffff, SG_CS32);
	assert_int_equal(g.st.gpr[R_RSP], 0x80000 - 8); /* EFLAGS and CS still pushed */
}

/* lock cmpxchg16b: a match stores RCX:RBX and sets ZF; a mismatch loads the
 * memory into RDX:RAX and clears ZF */
static void test_cmpxchg16b(void **state)
{
	(void)state;
	load(c16_code, sizeof(c16_code));
	sg_w64(&g, 0x20000, 1);
	sg_w64(&g, 0x20008, 2);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_R8] & 0xff, 1);
	assert_int_equal(g.st.gpr[R_R9] & 0xff, 0);
	assert_int_equal(sg_r64(&g, 0x20000), 3);
	assert_int_equal(sg_r64(&g, 0x20008), 4);
	assert_int_equal(g.st.gpr[R_RAX], 3);
	assert_int_equal(g.st.gpr[R_RDX], 4);
}

struct lock_cpu {
	struct engine_vcpu *v;
	struct vcpu_exit exit;
	int rc;
};

static void *lock_runner(void *arg)
{
	struct lock_cpu *l = arg;
	do
		l->rc = soft_engine.vcpu_run(l->v, &l->exit);
	while (!l->rc && l->exit.reason == EXIT_KICKED);
	return NULL;
}

/* Runs vCPU 0 of a two-vCPU guest from its state and vCPU 1 from the same
 * state at rip1, each on a host thread of its own, until both make a
 * hypercall. */
static void run_two_vcpus(struct sg *two, uint64_t rip1)
{
	struct lock_cpu cpu[2] = {{.v = two->v}};
	assert_int_equal(soft_engine.vcpu_create(two->vm, 1, &cpu[1].v), 0);
	struct cpu_state st = two->st;
	st.rip = rip1;
	assert_int_equal(soft_engine.set_state(cpu[1].v, &st), 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, lock_runner, &cpu[i]);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(cpu[i].rc, 0);
		assert_int_equal(cpu[i].exit.reason, EXIT_HYPERCALL);
	}
	soft_engine.vcpu_destroy(cpu[1].v);
}

/* Two vCPUs on two host threads each do 100000 LOCK INC and LOCK XADD on the
 * same words (LOCK XADD adding 1), then a hypercall: LOCKed instructions are atomic on the shared
 * guest memory. */
static void test_smp_lock_atomicity(void **state)
{
	(void)state;
	struct sg two;
	assert_int_equal(sg_init(&two, 2), 0);
	memcpy(two.ram + SG_CODE, lock_code, sizeof(lock_code));
	run_two_vcpus(&two, two.st.rip);
	assert_int_equal(sg_r64(&two, 0x20000), 200000);
	assert_int_equal(sg_r64(&two, 0x20008), 200000);
	sg_free(&two);
}

/* vCPU 0: 1000000 x LOCK CMPXCHG dword [0x20000], 0 -> 2, the successes
 * (ZF) counted and stored at 0x20100. vCPU 1 at SG_CODE + 0x80: 1000000 x
 * (XCHG [0x20000] with 1, then with 0), the 2s it takes out stored at 0x20108. */
static const uint8_t cmpxchg_code[] = {
    0xb9, 0x40, 0x42, 0x0f, 0x00, 0x45, 0x31, 0xc0, 0x31, 0xc0, 0xba, 0x02, 0x00, 0x00, 0x00, 0xf0,
    0x0f, 0xb1, 0x14, 0x25, 0x00, 0x00, 0x02, 0x00, 0x75, 0x03, 0x49, 0xff, 0xc0, 0xff, 0xc9, 0x75,
    0xe7, 0x4c, 0x89, 0x04, 0x25, 0x00, 0x01, 0x02, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};
static const uint8_t xchg_code[] = {
    0xb9, 0x40, 0x42, 0x0f, 0x00, 0x45, 0x31, 0xc9, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x87, 0x04, 0x25,
    0x00, 0x00, 0x02, 0x00, 0x83, 0xf8, 0x02, 0x75, 0x03, 0x49, 0xff, 0xc1, 0x31, 0xc0, 0x87, 0x04,
    0x25, 0x00, 0x00, 0x02, 0x00, 0x83, 0xf8, 0x02, 0x75, 0x03, 0x49, 0xff, 0xc1, 0xff, 0xc9, 0x75,
    0xd7, 0x4c, 0x89, 0x0c, 0x25, 0x08, 0x01, 0x02, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};

/* LOCK CMPXCHG reports success (ZF) only when it stored: every 2 that vCPU 0
 * claims to have written is taken out by vCPU 1's XCHG or still there at the
 * end. A failed compare that read the word again afterwards could find the 0
 * vCPU 1 had just put back and claim a store that never happened; Linux's
 * lock-free lists (the scheduler's wake-up list) then lose an entry. */
static void test_smp_cmpxchg_is_one_access(void **state)
{
	(void)state;
	struct sg two;
	assert_int_equal(sg_init(&two, 2), 0);
	memcpy(two.ram + SG_CODE, cmpxchg_code, sizeof(cmpxchg_code));
	memcpy(two.ram + SG_CODE + 0x80, xchg_code, sizeof(xchg_code));
	run_two_vcpus(&two, two.st.rip + 0x80);
	uint32_t left;
	memcpy(&left, two.ram + 0x20000, 4);
	uint64_t claimed = sg_r64(&two, 0x20100), taken = sg_r64(&two, 0x20108);
	assert_true(claimed > 0);
	assert_int_equal(claimed, taken + (left == 2));
	sg_free(&two);
}

static void *kicker(void *arg)
{
	(void)arg;
	usleep(20000);
	soft_engine.vcpu_kick(g.v);
	return NULL;
}

/* sti; hlt; jmp back: only a kick can end the run */
static void test_kick_wakes_hlt(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xfb, 0xf4, 0xeb, 0xfd};
	load(code, sizeof(code));
	pthread_t t;
	pthread_create(&t, NULL, kicker, NULL);
	struct vcpu_exit ex;
	assert_int_equal(soft_engine.vcpu_run(g.v, &ex), 0);
	assert_int_equal(ex.reason, EXIT_KICKED);
	pthread_join(t, NULL);
}

/* get_state / set_state round trip keeps registers and the FXSAVE image */
/* A store into the next instruction of the same block takes effect:
 *   mov dword [rip+1], 0x42   ; the immediate of the mov below
 *   mov eax, 0x11
 *   hlt */
static void test_smc_same_block(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xc7, 0x05, 0x01, 0x00, 0x00, 0x00, 0x42, 0x00,
				       0x00, 0x00, 0xb8, 0x11, 0x00, 0x00, 0x00, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 0x42);
}

/* A loop that rewrites its own first instruction runs the new one on the
 * next pass. The first pass runs inside the entry block and the second
 * decodes the loop as a block of its own, so the store of the second pass
 * hits cached code (through the TLB's fast path: the first store dirtied
 * the page):
 *   mov dword [rip + scratch], 0
 *   mov ecx, 3; xor ebx, ebx
 * top: mov eax, 1; add ebx, eax
 *   mov [rip + top+1], ecx           ; the next pass adds this ecx
 *   dec ecx; jnz top; hlt            -> ebx = 1 + 3 + 2
 * scratch: .long 0 */
static void test_smc_loop(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xc7, 0x05, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
				       0xb9, 0x03, 0x00, 0x00, 0x00, 0x31, 0xdb, 0xb8, 0x01, 0x00,
				       0x00, 0x00, 0x01, 0xc3, 0x89, 0x0d, 0xf4, 0xff, 0xff, 0xff,
				       0xff, 0xc9, 0x75, 0xef, 0xf4, 0x00, 0x00, 0x00, 0x00};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], 6);
}

/* The flags an instruction computes are kept when a later one in the block
 * could fault before they are overwritten: the exception frame holds them.
 *   mov rax, -1; add rax, 1          ; CF PF AF ZF
 *   mov rbx, [0x40000000]            ; #PF
 *   xor ecx, ecx; hlt */
static void test_flags_at_fault(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48,
				       0x83, 0xc0, 0x01, 0x48, 0x8b, 0x1c, 0x25, 0x00,
				       0x00, 0x00, 0x40, 0x31, 0xc9, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	uint64_t sp = g.st.gpr[R_RSP];
	assert_int_equal(sg_r64(&g, sp + 8), SG_CODE + 11);  /* faulting RIP */
	assert_int_equal(sg_r64(&g, sp + 24) & 0x8d5, 0x55); /* CF PF AF ZF set; SF OF clear */
}

/* Cross-modifying code: vCPU 1 keeps calling func (mov eax, 1; ret) and
 * counting; once it has run 100 times, vCPU 0 rewrites the immediate to 2 and
 * raises a flag, with no serializing instruction on either side. The call
 * after vCPU 1 sees the flag runs the new code, as on hardware.
 *   writer (SG_CODE):       1: cmp dword [0x20008], 100; jb 1b
 *                           mov dword [func+1], 2; mov dword [0x20000], 1
 *                           hypercall
 *   reader (SG_CODE+0x100): xor ebx, ebx
 *                           2: call func; add ebx, eax; mov [0x20008], ebx
 *                           cmp dword [0x20000], 0; je 2b
 *                           call func; mov [0x20010], eax; hypercall
 *   func (SG_CODE+0x200):   mov eax, 1; ret */
static void test_cross_modifying_code(void **state)
{
	(void)state;
	static const uint8_t writer[] = {0x83, 0x3c, 0x25, 0x08, 0x00, 0x02, 0x00, 0x64, 0x72, 0xf6,
					 0xc7, 0x04, 0x25, 0x01, 0x02, 0x01, 0x00, 0x02, 0x00, 0x00,
					 0x00, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00,
					 0x00, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};
	static const uint8_t reader[] = {0x31, 0xdb, 0xe8, 0xf9, 0x00, 0x00, 0x00, 0x01, 0xc3,
					 0x89, 0x1c, 0x25, 0x08, 0x00, 0x02, 0x00, 0x83, 0x3c,
					 0x25, 0x00, 0x00, 0x02, 0x00, 0x00, 0x74, 0xe8, 0xe8,
					 0xe1, 0x00, 0x00, 0x00, 0x89, 0x04, 0x25, 0x10, 0x00,
					 0x02, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};
	static const uint8_t func[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
	struct sg two;
	assert_int_equal(sg_init(&two, 2), 0);
	memcpy(two.ram + SG_CODE, writer, sizeof(writer));
	memcpy(two.ram + SG_CODE + 0x100, reader, sizeof(reader));
	memcpy(two.ram + SG_CODE + 0x200, func, sizeof(func));
	run_two_vcpus(&two, SG_CODE + 0x100);
	assert_true(sg_r64(&two, 0x20008) >= 100);
	assert_int_equal(sg_r64(&two, 0x20010), 2);
	sg_free(&two);
}

static void test_state_round_trip(void **state)
{
	(void)state;
	struct cpu_state *s = &g.st;
	for (int i = 0; i < NR_GPRS; i++)
		s->gpr[i] = 0x1000 + i;
	s->rip = SG_CODE + 3;
	s->rflags = 0x2 | 0x1 | 0x800;
	for (int i = 0; i < 16; i++)
		s->xsave[160 + i * 16] = (uint8_t)(i + 1);
	s->msr[MSR_IDX_LSTAR] = 0xffffffff81000000ull;
	assert_int_equal(soft_engine.set_state(g.v, s), 0);
	static struct cpu_state out;
	assert_int_equal(soft_engine.get_state(g.v, &out), 0);
	assert_memory_equal(out.gpr, s->gpr, sizeof(s->gpr));
	assert_int_equal(out.rip, s->rip);
	assert_int_equal(out.rflags, s->rflags);
	assert_int_equal(out.msr[MSR_IDX_LSTAR], s->msr[MSR_IDX_LSTAR]);
	for (int i = 0; i < 16; i++)
		assert_int_equal(out.xsave[160 + i * 16], i + 1);
	assert_int_equal(out.cr3, SG_PML4);
	assert_true(out.has_lapic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_loop_and_carry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_divide_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_io_and_hypercall, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mmio, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_invalidation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_invalidation_4k, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syscall_sysret, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_privileged_in_user_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_triple_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sse_x87, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_to_long_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_mode_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protected_mode_exception, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmpxchg16b, setup, teardown),
	    cmocka_unit_test(test_smp_lock_atomicity),
	    cmocka_unit_test(test_smp_cmpxchg_is_one_access),
	    cmocka_unit_test(test_cross_modifying_code),
	    cmocka_unit_test_setup_teardown(test_kick_wakes_hlt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smc_same_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smc_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_at_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
