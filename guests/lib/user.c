/* Ring 3 support: SYSCALL/SYSRET MSRs, the int 0x80 and int3 gates,
 * user-accessible pages for the user region, and the user-side system call stubs.
 *
 * Three ways into the kernel, one handler. The nested-PVM /dev/kvm of this
 * project's machines gets two of them wrong: SYSCALL from ring 3 does everything
 * (RCX, R11, SFMASK, RIP = LSTAR) except switch to ring 0, so the fetch at LSTAR
 * faults (#PF, U=1); "int N" with N >= 32 from ring 3 raises #UD. Exceptions
 * such as int3 and #PF are delivered correctly. user_fixup() recognises both
 * faults and turns them back into the system call they were, counting them in
 * user_quirks so a guest can report or refuse them. */
#include "guest.h"

#define SFMASK_BITS 0x47700 /* clear TF, IF, DF, IOPL, NT, AC on SYSCALL */

#define RFLAGS_USER_MASK 0xcd5 /* CF PF AF ZF SF DF OF: what ring 3 may pass back */

extern char syscall_entry[];
static syscall_handler sys_handler;
struct user_quirks user_quirks;

static void on_syscall(struct trap_frame *f)
{
	if ((f->cs & 3) != 3)
		fail_status(EXIT_CRASH, "system call vector %#lx from ring 0 at %#lx", f->vector,
			    f->rip);
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
	trap_set_handler(3, on_syscall);
	trap_allow_user(3);
	page_update((uint64_t)__user_start, (uint64_t)(__user_end - __user_start), PTE_U, 0);
}

long user_exit_only(struct trap_frame *f)
{
	if (f->rax == USYS_EXIT)
		user_return((long)f->rdi);
	return -38; /* ENOSYS */
}

/* A fetch fault at LSTAR from ring 3 is a SYSCALL that stayed in ring 3 (or
 * ring 3 jumping there, which is the same request). #UD on "int N" whose gate
 * ring 3 may use is that int. Anything else is left to the normal handlers. */
void user_fixup(struct trap_frame *f)
{
	const uint8_t *ip = (const uint8_t *)f->rip;

	if (!sys_handler || (f->cs & 3) != 3)
		return;
	if (f->vector == 14 && f->rip == (uint64_t)syscall_entry && user_range_ok(f->rcx, 1)) {
		user_quirks.syscall++;
		f->vector = VEC_SYSCALL;
		f->rip = f->rcx;
		f->rflags = (f->r11 & RFLAGS_USER_MASK) | 0x2;
	} else if (f->vector == 6 && user_range_ok(f->rip, 2) && ip[0] == 0xcd &&
		   trap_user_allowed(ip[1])) {
		user_quirks.int_n++;
		f->vector = ip[1];
		f->rip += 2;
	}
}

bool user_range_ok(uint64_t addr, uint64_t len)
{
	uint64_t lo = (uint64_t)__user_start, hi = (uint64_t)__user_end;

	return addr >= lo && addr <= hi && len <= hi - addr;
}

USER_TEXT long usys(long nr, long a0, long a1, long a2)
{
	long ret = nr;

	__asm__ volatile("syscall"
			 : "+a"(ret)
			 : "D"(a0), "S"(a1), "d"(a2)
			 : "rcx", "r11", "memory");
	return ret;
}

USER_TEXT long usys_int80(long nr, long a0, long a1, long a2)
{
	long ret = nr;

	__asm__ volatile("int $0x80" : "+a"(ret) : "D"(a0), "S"(a1), "d"(a2) : "memory");
	return ret;
}

USER_TEXT long usys_int3(long nr, long a0, long a1, long a2)
{
	long ret = nr;

	__asm__ volatile("int3" : "+a"(ret) : "D"(a0), "S"(a1), "d"(a2) : "memory");
	return ret;
}
