/* Signals of a single-threaded program: actions and the mask are popek's
 * records; a signal the program sends itself or a CPU exception runs its
 * handler on a Linux rt_sigframe (ucontext, siginfo, FXSAVE image), and
 * rt_sigreturn loads the state back. A signal with the default action ends
 * the program with 128+signal. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec/exec.h"

#define XSA_RESTORER  0x04000000u
#define XSA_ONSTACK   0x08000000u
#define XSA_RESETHAND 0x80000000u
#define XSA_NODEFER   0x40000000u

/* The kernel's x86-64 struct ucontext with its sigcontext. */
struct xucontext {
	uint64_t flags, link;
	uint64_t ss_sp, ss_flags, ss_size;
	uint64_t gregs[18]; /* r8..r15 rdi rsi rbp rbx rdx rax rcx rsp rip eflags */
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2, fpstate, reserved[8];
	uint64_t sigmask;
};

struct xframe {
	uint64_t pretcode;
	struct xucontext uc;
	uint8_t info[128];
};

static const int greg_order[16] = {R_R8,  R_R9,	 R_R10, R_R11, R_R12, R_R13, R_R14, R_R15,
				   R_RDI, R_RSI, R_RBP, R_RBX, R_RDX, R_RAX, R_RCX, R_RSP};

static uint64_t bit(int sig)
{
	return 1ull << (sig - 1);
}

/* Build the frame on the user stack of st and enter the handler. */
static bool deliver(struct xproc *p, struct cpu_state *st, int sig, int code, uint64_t addr,
		    uint64_t trapno, uint64_t err)
{
	struct xsigaction *a = &p->sig[sig];
	if (!(a->flags & XSA_RESTORER))
		return false;
	uint64_t sp = st->gpr[R_RSP] - 128; /* the red zone */
	sp = (sp - 512) & ~63ull;
	uint64_t fpstate = sp;
	sp = ((sp - sizeof(struct xframe)) & ~15ull) - 8;
	struct xframe f;
	memset(&f, 0, sizeof(f));
	f.pretcode = a->restorer;
	for (int i = 0; i < 16; i++)
		f.uc.gregs[i] = st->gpr[greg_order[i]];
	f.uc.gregs[16] = st->rip;
	f.uc.gregs[17] = st->rflags;
	f.uc.cs = 0x2b;
	f.uc.ss = 0x23;
	f.uc.err = err;
	f.uc.trapno = trapno;
	f.uc.oldmask = p->sigmask;
	f.uc.cr2 = addr;
	f.uc.fpstate = fpstate;
	f.uc.sigmask = p->sigmask;
	int32_t info[4] = {sig, 0, code, 0};
	memcpy(f.info, info, sizeof(info));
	memcpy(f.info + 16, &addr, 8); /* si_addr, or si_pid for kill */
	if (mm_write(&p->mm, fpstate, st->xsave, 512) || mm_write(&p->mm, sp, &f, sizeof(f)))
		return false; /* no room: the default action */
	p->sigmask |= a->mask | ((a->flags & XSA_NODEFER) ? 0 : bit(sig));
	st->rip = a->handler;
	st->gpr[R_RSP] = sp;
	st->gpr[R_RDI] = (uint64_t)sig;
	st->gpr[R_RSI] = sp + offsetof(struct xframe, info);
	st->gpr[R_RDX] = sp + offsetof(struct xframe, uc);
	st->gpr[R_RAX] = 0;
	st->rflags &= ~0x10500ull; /* TF DF RF */
	if (a->flags & XSA_RESETHAND)
		memset(a, 0, sizeof(*a));
	return exec_set_state(p, st) == 0;
}

bool exec_signal_fault(struct xproc *p, struct cpu_state *st, int sig, uint64_t addr,
		       const uint64_t *frame)
{
	if (p->sig[sig].handler <= 1 || (p->sigmask & bit(sig)))
		return false; /* default, ignored (not for faults) or blocked: the program dies */
	/* back to the faulting user state, then onto the handler */
	st->rip = frame[0];
	st->rflags = frame[2];
	st->gpr[R_RSP] = frame[3];
	exec_user_segments(st);
	return deliver(p, st, sig, 1 /* SEGV_MAPERR etc. */, addr, 14, 0);
}

static int64_t sys_rt_sigaction(struct xproc *p, const struct xsys *s)
{
	int sig = (int)s->a[0];
	if (sig < 1 || sig >= X_NSIG || s->a[3] != 8)
		return -EINVAL;
	if (s->a[2] && mm_write(&p->mm, s->a[2], &p->sig[sig], sizeof(p->sig[sig])))
		return -EFAULT;
	if (s->a[1]) {
		if (sig == SIGKILL || sig == SIGSTOP)
			return -EINVAL;
		struct xsigaction a;
		if (mm_read(&p->mm, s->a[1], &a, sizeof(a)))
			return -EFAULT;
		a.mask &= ~(bit(SIGKILL) | bit(SIGSTOP));
		p->sig[sig] = a;
	}
	return 0;
}

static int64_t sys_rt_sigprocmask(struct xproc *p, const struct xsys *s)
{
	if (s->a[3] != 8)
		return -EINVAL;
	uint64_t old = p->sigmask, set;
	if (s->a[1]) {
		if (mm_read(&p->mm, s->a[1], &set, 8))
			return -EFAULT;
		set &= ~(bit(SIGKILL) | bit(SIGSTOP));
		if (s->a[0] == SIG_BLOCK)
			p->sigmask |= set;
		else if (s->a[0] == SIG_UNBLOCK)
			p->sigmask &= ~set;
		else if (s->a[0] == SIG_SETMASK)
			p->sigmask = set;
		else
			return -EINVAL;
	}
	return s->a[2] && mm_write(&p->mm, s->a[2], &old, 8) ? -EFAULT : 0;
}

static int64_t sys_rt_sigreturn(struct xproc *p, const struct xsys *s)
{
	struct cpu_state st;
	if (exec_user_state(p, &st))
		return -EIO;
	struct xframe f;
	uint64_t at = st.gpr[R_RSP] - 8; /* the handler's RET popped pretcode */
	if (mm_read(&p->mm, at, &f, sizeof(f))) {
		fprintf(stderr, "popek exec: %s: rt_sigreturn with a bad frame\n", p->opt->program);
		exec_kill(p, SIGSEGV);
		return 0;
	}
	for (int i = 0; i < 16; i++)
		st.gpr[greg_order[i]] = f.uc.gregs[i];
	st.rip = f.uc.gregs[16];
	st.rflags = (f.uc.gregs[17] & 0x3c0ed5) | 0x202;
	if (f.uc.fpstate)
		mm_read(&p->mm, f.uc.fpstate, st.xsave, 512);
	p->sigmask = f.uc.sigmask & ~(bit(SIGKILL) | bit(SIGSTOP));
	return exec_set_state(p, &st) ? -EIO : (int64_t)st.gpr[R_RAX];
}

/* A signal the program sends itself. */
static int64_t raise_self(struct xproc *p, int sig)
{
	if (sig < 0 || sig >= X_NSIG)
		return -EINVAL;
	if (!sig)
		return 0;
	struct xsigaction *a = &p->sig[sig];
	if (a->handler == 1 /* SIG_IGN */ ||
	    (!a->handler && (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT)))
		return 0;
	if (p->sigmask & bit(sig))
		return 0; /* blocked: not queued (one thread, no pending set yet) */
	if (!a->handler) {
		exec_kill(p, sig);
		return 0;
	}
	struct cpu_state st;
	if (exec_user_state(p, &st))
		return -EIO;
	st.gpr[R_RAX] = 0; /* kill's own result, seen after the handler returns */
	if (!deliver(p, &st, sig, 0 /* SI_USER */, (uint64_t)getpid(), 0, 0))
		exec_kill(p, sig);
	return 0;
}

static int64_t sys_kill(struct xproc *p, const struct xsys *s)
{
	int pid = (int)s->a[0];
	if (pid > 0 && pid != getpid()) {
		/* only its own children: they are popek processes too, and a
		 * signal acts on them with its default action */
		if (!exec_is_child(p, pid))
			return -ESRCH;
		return kill(pid, (int)s->a[1]) ? -errno : 0;
	}
	if (pid != getpid() && pid != 0 && pid != -1)
		return -ESRCH;
	return raise_self(p, (int)s->a[1]);
}

/* A signal to another thread of the program: not delivered yet (docs/exec.md). */
static int64_t other_thread(struct xproc *p, int tid)
{
	for (int i = 0; i < X_MAX_THREADS; i++)
		if (p->thread[i].live && p->thread[i].tid == tid)
			return -ENOSYS;
	return -ESRCH;
}

static int64_t sys_tgkill(struct xproc *p, const struct xsys *s)
{
	if ((int)s->a[0] != getpid())
		return -ESRCH;
	return (int)s->a[1] == exec_self->tid ? raise_self(p, (int)s->a[2])
					      : other_thread(p, (int)s->a[1]);
}

static int64_t sys_tkill(struct xproc *p, const struct xsys *s)
{
	return (int)s->a[0] == exec_self->tid ? raise_self(p, (int)s->a[1])
					      : other_thread(p, (int)s->a[0]);
}

static int64_t sys_sigaltstack(struct xproc *p, const struct xsys *s)
{
	uint64_t none[3] = {0, SS_DISABLE, 0};
	return s->a[1] && mm_write(&p->mm, s->a[1], none, sizeof(none)) ? -EFAULT : 0;
}

void sys_signal_table(struct sys_entry *t)
{
	t[SYS_rt_sigaction] = (struct sys_entry){"rt_sigaction", sys_rt_sigaction, "ippi"};
	t[SYS_rt_sigprocmask] = (struct sys_entry){"rt_sigprocmask", sys_rt_sigprocmask, "ippi"};
	t[SYS_rt_sigreturn] = (struct sys_entry){"rt_sigreturn", sys_rt_sigreturn, ""};
	t[SYS_kill] = (struct sys_entry){"kill", sys_kill, "ii"};
	t[SYS_tgkill] = (struct sys_entry){"tgkill", sys_tgkill, "iii"};
	t[SYS_tkill] = (struct sys_entry){"tkill", sys_tkill, "ii"};
	t[SYS_sigaltstack] = (struct sys_entry){"sigaltstack", sys_sigaltstack, "pp"};
}
