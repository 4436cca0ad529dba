/* The test-guest runtime: what every guest in guests/ can use.
 *
 * A guest is one file that defines guest_name[] and guest_main(). The runtime
 * boots (multiboot, PVH or popek's ELF64 entry), sets up a GDT, TSS, IDT,
 * identity paging and the serial console, then calls guest_main(). Returning 0
 * prints "PASS <name>" and exits through isa-debug-exit with status 0. */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "segments.h"

/* Exit statuses written to isa-debug-exit (QEMU exits with (status << 1) | 1). */
enum { EXIT_PASS = 0, EXIT_FAIL = 1, EXIT_CRASH = 2 };

struct boot_info {
	const char *protocol;			/* "multiboot", "pvh" or "elf64" */
	const char *cmdline;			/* never NULL, may be empty */
	uint64_t ram_bytes;			/* usable RAM reported by the loader */
	const struct multiboot_info *multiboot; /* the loader's info, if multiboot */
};

/* Multiboot v1 information (the fields the guests read). */
#define MB_INFO_MEM	(1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODS	(1u << 3)
#define MB_INFO_MMAP	(1u << 6)
struct multiboot_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr, syms[4], mmap_length, mmap_addr;
} __attribute__((packed));

struct multiboot_module {
	uint32_t start, end, string, reserved;
};

/* Provided by each guest. */
extern const char guest_name[];
int guest_main(const struct boot_info *bi);

/* rt.c */
bool boot_flag(const struct boot_info *bi, const char *word); /* word on the cmdline? */
/* The decimal value of key=N on the cmdline, or def. */
uint64_t boot_arg(const struct boot_info *bi, const char *key, uint64_t def);
_Noreturn void guest_exit(int status);
_Noreturn __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...);
_Noreturn __attribute__((format(printf, 2, 3))) void fail_status(int status, const char *fmt, ...);

/* serial.c + printf.c */
void serial_init(void);
void serial_putc(char c);
__attribute__((format(printf, 1, 2))) void kprintf(const char *fmt, ...);
void kvprintf(const char *fmt, va_list ap);

/* string.c (also what the compiler may call on its own) */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* trap.c */
struct trap_frame {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};
#define VEC_SYSCALL 0x100 /* pseudo vector of the SYSCALL instruction path */
typedef void (*trap_handler)(struct trap_frame *f);
void trap_init(void);
void trap_load_idt(void); /* for application processors */
void trap_set_handler(unsigned vec, trap_handler h);
void trap_allow_user(unsigned vec); /* gate DPL 3: "int vec" from ring 3 */
bool trap_user_allowed(unsigned vec);
void trap_load_empty_idt(void);

/* paging.c: identity map of the first 4 GiB, 2 MiB pages split on demand */
#define PTE_P	(1ull << 0)
#define PTE_W	(1ull << 1)
#define PTE_U	(1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_PS	(1ull << 7)
uint64_t *pte_lookup(uint64_t va); /* the 4 KiB PTE mapping va (< 4 GiB) */
void page_update(uint64_t va, uint64_t len, uint64_t set, uint64_t clear);

/* tsc.c */
uint64_t tsc_hz(void);
void tsc_delay_us(uint64_t us);
uint64_t tsc_deadline_us(uint64_t us); /* rdtsc() value us from now */

/* lapic.c */
#define LAPIC_ID	     0x020
#define LAPIC_EOI	     0x0b0
#define LAPIC_SVR	     0x0f0
#define LAPIC_ISR	     0x100
#define LAPIC_ICR_LO	     0x300
#define LAPIC_ICR_HI	     0x310
#define LAPIC_LVT_TIMER	     0x320
#define LAPIC_TIMER_INIT     0x380
#define LAPIC_TIMER_CUR	     0x390
#define LAPIC_TIMER_DIV	     0x3e0
#define LAPIC_TIMER_PERIODIC (1u << 17)
#define LAPIC_MASKED	     (1u << 16)
void pic_disable(void);
void lapic_enable(uint8_t spurious_vec);
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
void lapic_eoi(void);
uint32_t lapic_id(void);
bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo);

/* smp.c: start one application processor running fn on its own stack. */
bool smp_start_ap(uint32_t apic_id, void (*fn)(void), uint64_t timeout_us);

/* hypercall.c: popek paravirtual calls (include/popek/hypercall.h) */
long popek_hypercall(long nr, long a0, long a1, long a2, long a3);
long hc_version(void);
long hc_console_write(const void *buf, uint64_t len);
long hc_get_time(int clock);
long hc_yield(void);
long hc_exit(long status);

/* user.c: ring 3. Code and data the user side touches must live in the user
 * region (these section attributes); only that region is mapped with U=1. */
#define USER_TEXT   __attribute__((section(".user.text"), noinline))
#define USER_RODATA __attribute__((section(".user.rodata")))
#define USER_DATA   __attribute__((section(".user.data")))
#define USER_BSS    __attribute__((section(".bss.user")))
typedef long (*syscall_handler)(struct trap_frame *f);
extern char __user_start[], __user_end[];
void user_init(syscall_handler h);  /* SYSCALL MSRs, int 0x80 gate, U bit on the user region */
long user_run(void (*entry)(void)); /* iretq to ring 3; returns user_return()'s code */
#define USYS_EXIT 3		    /* exit(code): every guest's system call 3 */
long user_exit_only(struct trap_frame *f); /* a syscall_handler: exit, else -ENOSYS */
_Noreturn void user_return(long code);	   /* from a trap handler: back to user_run's caller */
bool user_range_ok(uint64_t addr, uint64_t len);
/* Platform faults on the way into the kernel that user_fixup() (called for every
 * trap from ring 3) turned back into system calls; see user.c. */
struct user_quirks {
	unsigned syscall, int_n;
};
extern struct user_quirks user_quirks;
void user_fixup(struct trap_frame *f);
/* user-side system calls (nr in rax, args rdi, rsi, rdx; result rax) through
 * SYSCALL, int 0x80 or int3 (see user.c for why int3) */
long usys(long nr, long a0, long a1, long a2);
long usys_int80(long nr, long a0, long a1, long a2);
long usys_int3(long nr, long a0, long a1, long a2);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
