/* IDT, TSS and the C side of every trap: dispatch to a registered handler or
 * report an unexpected exception as a crash. */
#include "guest.h"

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap_base;
} __attribute__((packed));

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

#define GATE_INTR	 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define GATE_DPL3	 0x60
#define IST_DOUBLE_FAULT 1

extern char isr_stubs[];
extern uint64_t gdt[];
extern void syscall_entry(void);

struct tss64 tss; /* trap.S reads tss.rsp[0] on SYSCALL */
static struct idt_gate idt[256];
static trap_handler handlers[256];
static trap_handler syscall_path;
static uint8_t kstack[16384] __attribute__((aligned(16)));
static uint8_t df_stack[8192] __attribute__((aligned(16)));

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static void set_gate(unsigned vec, uint8_t type, uint8_t ist)
{
	uint64_t off = (uint64_t)isr_stubs + 16 * vec;

	idt[vec] = (struct idt_gate){
	    .off_lo = (uint16_t)off,
	    .sel = SEL_KCODE,
	    .ist = ist,
	    .type = type,
	    .off_mid = (uint16_t)(off >> 16),
	    .off_hi = (uint32_t)(off >> 32),
	};
}

void trap_load_idt(void)
{
	struct desc_ptr p = {sizeof(idt) - 1, (uint64_t)idt};

	__asm__ volatile("lidt %0" : : "m"(p));
}

void trap_load_empty_idt(void)
{
	struct desc_ptr p = {0, 0};

	__asm__ volatile("lidt %0" : : "m"(p));
}

void trap_init(void)
{
	uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;

	tss.rsp[0] = (uint64_t)(kstack + sizeof(kstack));
	tss.ist[IST_DOUBLE_FAULT - 1] = (uint64_t)(df_stack + sizeof(df_stack));
	tss.iomap_base = sizeof(tss); /* no I/O bitmap: ring 3 has no port access */
	/* 64-bit available TSS descriptor, 16 bytes at SEL_TSS */
	gdt[SEL_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			   ((limit >> 16) << 48) | (((base >> 24) & 0xff) << 56);
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"(SEL_TSS));

	for (unsigned v = 0; v < ARRAY_SIZE(idt); v++)
		set_gate(v, GATE_INTR, v == 8 ? IST_DOUBLE_FAULT : 0);
	trap_load_idt();
}

void trap_set_handler(unsigned vec, trap_handler h)
{
	if (vec == VEC_SYSCALL)
		syscall_path = h;
	else if (vec < ARRAY_SIZE(handlers))
		handlers[vec] = h;
}

void trap_allow_user(unsigned vec)
{
	set_gate(vec, GATE_INTR | GATE_DPL3, 0);
}

bool trap_user_allowed(unsigned vec)
{
	return vec < ARRAY_SIZE(idt) && (idt[vec].type & GATE_DPL3) == GATE_DPL3;
}

void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	user_fixup(f);
	trap_handler h = f->vector == VEC_SYSCALL ? syscall_path : handlers[f->vector & 0xff];
	const char *name = f->vector < 32 && exc_names[f->vector] ? exc_names[f->vector] : "irq";

	if (h) {
		h(f);
		return;
	}
	fail_status(EXIT_CRASH,
		    "unexpected %s (vector %lu) error=%#lx rip=%#lx cs=%#lx rsp=%#lx cr2=%#lx",
		    name, f->vector, f->error, f->rip, f->cs, f->rsp, read_cr2());
}
