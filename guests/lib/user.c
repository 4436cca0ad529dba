/* Ring 3 support: SYSCALL/SYSRET MSRs, the int 0x80 gate, user-accessible
 * pages for the user region, and the user-side system call stubs. */
#include "guest.h"

#define SFMASK_BITS 0x47700 /* clear TF, IF, DF, IOPL, NT, AC on SYSCALL */

extern void syscall_entry(void);
static syscall_handler sys_handler;

static void on_syscall(struct trap_frame *f)
{
	f->rax = (uint64_t)sys_handler(f);
}

void user_init(syscall_handler h)
{
	sys_handler = h;
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, ((uint64_t)SEL_UCODE32 << 48) | ((uint64_t)SEL_KCODE << 32));
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_SFMASK, SFMASK_BITS);
	trap_set_handler(VEC_SYSCALL, on_syscall);
	trap_set_handler(0x80, on_syscall);
	trap_allow_user(0x80);
	page_update((uint64_t)__user_start, (uint64_t)(__user_end - __user_start), PTE_U, 0);
}

bool user_range_ok(uint64_t addr, uint64_t len)
{
	uint64_t lo = (uint64_t)__user_start, hi = (uint64_t)__user_end;

	return addr >= lo && addr <= hi && len <= hi - addr;
}

USER_TEXT long usys(long nr, long a0, long a1, long a2)
{
	long ret = nr;

	__asm__ volatile("syscall" : "+a"(ret) : "D"(a0), "S"(a1), "d"(a2) : "rcx", "r11", "memory");
	return ret;
}

USER_TEXT long usys_int80(long nr, long a0, long a1, long a2)
{
	long ret = nr;

	__asm__ volatile("int $0x80" : "+a"(ret) : "D"(a0), "S"(a1), "d"(a2) : "memory");
	return ret;
}
