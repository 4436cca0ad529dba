/* A tiny guest for exercising the soft engine through engine_ops: 4 MiB of
 * RAM, identity-mapped with 2 MiB pages, a GDT with kernel/user segments and a
 * TSS, an IDT whose every vector points at a stub that records the vector and
 * halts. Shared by the soft engine's unit tests and the differential tester. */
#ifndef POPEK_TEST_SOFT_GUEST_H
#define POPEK_TEST_SOFT_GUEST_H

#include <stdlib.h>
#include <string.h>

#include "engines/engine.h"

#define SG_RAM	     (4u << 20)
#define SG_PML4	     0x1000
#define SG_PDPT	     0x2000
#define SG_PD	     0x3000
#define SG_GDT	     0x4000
#define SG_IDT	     0x5000
#define SG_TSS	     0x6000
#define SG_STUBS     0x7000 /* 16 bytes per vector */
#define SG_VEC	     0x8ff0 /* the stub stores the vector number here */
#define SG_CODE	     0x10000
#define SG_DATA	     0x20000
#define SG_STACK     0x80000
#define SG_IST_STACK 0x90000

#define SG_CS64	 0x08
#define SG_DS	 0x10
#define SG_CS32	 0x18
#define SG_UCS32 0x23
#define SG_UDS	 0x2b
#define SG_UCS64 0x33
#define SG_TSSEL 0x38

struct sg {
	struct engine_vm *vm;
	struct engine_vcpu *v;
	uint8_t *ram;
	struct cpu_state st;
	struct vcpu_exit exit;
};

static inline void sg_w64(struct sg *g, uint64_t gpa, uint64_t v)
{
	memcpy(g->ram + gpa, &v, 8);
}

static inline uint64_t sg_r64(struct sg *g, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, g->ram + gpa, 8);
	return v;
}

static inline void sg_seg(struct seg *s, uint16_t sel, uint8_t type, int dpl, bool l, bool db)
{
	*s = (struct seg){.base = 0,
			  .limit = 0xffffffff,
			  .sel = sel,
			  .type = type,
			  .s = 1,
			  .dpl = (uint8_t)dpl,
			  .present = 1,
			  .l = l,
			  .db = db,
			  .g = 1};
}

/* Descriptor for a flat code/data segment. */
static inline uint64_t sg_desc(uint8_t type, int dpl, bool l, bool db)
{
	return 0xffffull | (0xfull << 48) | ((uint64_t)(type | 0x10 | (dpl << 5) | 0x80) << 40) |
	       ((uint64_t)l << 53) | ((uint64_t)db << 54) | (1ull << 55);
}

/* Every vector's stub: mov dword [SG_VEC], vec ; hlt (with IF=0 -> EXIT_HLT). */
static inline void sg_idt(struct sg *g)
{
	for (int v = 0; v < 256; v++) {
		uint64_t stub = SG_STUBS + v * 16;
		uint8_t code[16] = {0xc7, 0x04, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0xf4, 0xeb, 0xfd};
		uint32_t addr = SG_VEC, vec = (uint32_t)v;
		memcpy(code + 3, &addr, 4);
		memcpy(code + 7, &vec, 4);
		memcpy(g->ram + stub, code, 16);
		uint64_t lo = (stub & 0xffff) | ((uint64_t)SG_CS64 << 16) | (0x8eull << 40) |
			      ((stub >> 16) << 48);
		sg_w64(g, SG_IDT + v * 16, lo);
		sg_w64(g, SG_IDT + v * 16 + 8, stub >> 32);
	}
}

/* 64-bit kernel mode, paging on, everything identity-mapped; jit turns the
 * translator on. */
static inline int sg_init_jit(struct sg *g, int ncpus, bool jit)
{
	memset(g, 0, sizeof(*g));
	g->ram = aligned_alloc(4096, SG_RAM);
	if (!g->ram)
		return -1;
	memset(g->ram, 0, SG_RAM);
	/* with the translator, translate every block: the tests' code runs once */
	struct engine_vm_config cfg = {
	    .ncpus = ncpus, .ram_size = SG_RAM, .jit = jit, .jit_after = 1};
	char err[200];
	if (soft_engine.vm_create(&cfg, &g->vm, err, sizeof(err)))
		return -1;
	soft_engine.map_memory(g->vm, 0, 0, SG_RAM, g->ram, 0);
	if (soft_engine.vcpu_create(g->vm, 0, &g->v))
		return -1;

	sg_w64(g, SG_PML4, SG_PDPT | 7);
	sg_w64(g, SG_PDPT, SG_PD | 7);
	for (uint64_t i = 0; i < 512; i++)
		sg_w64(g, SG_PD + i * 8, (i << 21) | 0x87); /* P W U PS */
	sg_w64(g, SG_GDT + 0x08, sg_desc(0xb, 0, true, false));
	sg_w64(g, SG_GDT + 0x10, sg_desc(0x3, 0, false, true));
	sg_w64(g, SG_GDT + 0x18, sg_desc(0xb, 0, false, true));
	sg_w64(g, SG_GDT + 0x20, sg_desc(0xb, 3, false, true));
	sg_w64(g, SG_GDT + 0x28, sg_desc(0x3, 3, false, true));
	sg_w64(g, SG_GDT + 0x30, sg_desc(0xb, 3, true, false));
	sg_w64(g, SG_GDT + 0x38, 0x67 | ((uint64_t)SG_TSS << 16) | (0x89ull << 40));
	sg_w64(g, SG_TSS + 4, SG_STACK);	/* RSP0 */
	sg_w64(g, SG_TSS + 0x24, SG_IST_STACK); /* IST1 */
	sg_idt(g);

	struct cpu_state *s = &g->st;
	soft_engine.get_state(g->v, s);
	memset(s->gpr, 0, sizeof(s->gpr));
	s->gpr[R_RSP] = SG_STACK;
	s->rip = SG_CODE;
	s->rflags = 2;
	sg_seg(&s->seg[SEG_CS], SG_CS64, 0xb, 0, true, false);
	for (int i = SEG_ES; i <= SEG_GS; i++)
		if (i != SEG_CS)
			sg_seg(&s->seg[i], SG_DS, 0x3, 0, false, true);
	s->seg[SEG_TR] =
	    (struct seg){.base = SG_TSS, .limit = 0x67, .sel = SG_TSSEL, .type = 0xb, .present = 1};
	s->seg[SEG_LDTR] = (struct seg){.unusable = 1, .type = 2, .present = 1};
	s->gdt = (struct dtable){SG_GDT, 0x47};
	s->idt = (struct dtable){SG_IDT, 0xfff};
	s->cr0 = 0x80050033; /* PG WP NE ET MP PE */
	s->cr3 = SG_PML4;
	s->cr4 = 0x6a0;		      /* OSXMMEXCPT OSFXSR PGE PAE */
	s->msr[MSR_IDX_EFER] = 0xd01; /* NXE LMA LME SCE */
	s->mp_state = MP_RUNNABLE;
	return soft_engine.set_state(g->v, s);
}

static inline int sg_init(struct sg *g, int ncpus)
{
	return sg_init_jit(g, ncpus, false);
}

static inline void sg_free(struct sg *g)
{
	soft_engine.vcpu_destroy(g->v);
	soft_engine.vm_destroy(g->vm);
	free(g->ram);
}

static inline void sg_code(struct sg *g, const void *code, size_t len)
{
	memcpy(g->ram + SG_CODE, code, len);
}

/* Run until an exit other than a kick; returns the exit reason. */
static inline enum exit_reason sg_run(struct sg *g)
{
	do {
		if (soft_engine.vcpu_run(g->v, &g->exit))
			return EXIT_FAIL;
	} while (g->exit.reason == EXIT_KICKED);
	soft_engine.get_state(g->v, &g->st);
	return g->exit.reason;
}

#endif
