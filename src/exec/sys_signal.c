/* Signals: actions are the process's; masks, pending signals and the
 * alternate stack are each thread's, as in Linux. A signal to a thread
 * (tgkill) waits in its own set, one to the process (kill) in the process's,
 * taken by the thread it was aimed at: the leader if it does not block it,
 * else the first thread that does not. A thread takes its signals where it
 * returns to program code: at the end of a call, or after a kick (run.c)
 * wherever its vCPU was. Each handler runs on a Linux rt_sigframe
 * (ucontext, siginfo, FXSAVE image), and rt_sigreturn loads the state back.
 * A signal with the default action ends the program with 128+signal. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

#define XSA_RESTORER  0x04000000u
#define XSA_ONSTACK   0x08000000u
#define XSA_RESTART   0x10000000u
#define XSA_RESETHAND 0x80000000u
#define XSA_NODEFER   0x40000000u

#define XSI_USER  0
#define XSI_TKILL (-6)

#define XSS_AUTODISARM (1u << 31)
#define XMINSIGSTKSZ   2048

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

static const uint64_t unblockable = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1));

static bool ignored(struct xproc *p, int sig)
{
	uint64_t h = p->sig[sig].handler;
	return h == 1 /* SIG_IGN */ ||
	       (!h && (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT));
}

/* Linux's sas_ss_flags: where sp is relative to thread t's alternate stack. */
static uint32_t altstack_flags(const struct xthread *t, uint64_t sp)
{
	if (!t->ss_size)
		return SS_DISABLE;
	if (!(t->ss_flags & XSS_AUTODISARM) && sp > t->ss_sp && sp - t->ss_sp <= t->ss_size)
		return SS_ONSTACK;
	return 0;
}

/* sigaltstack's new stack for thread t, whose stack pointer is sp. */
static int set_altstack(struct xthread *t, uint64_t sp, uint64_t ss_sp, uint32_t flags,
			uint64_t size)
{
	uint32_t mode = flags & ~XSS_AUTODISARM;
	if (mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK)
		return -EINVAL;
	if (altstack_flags(t, sp) == SS_ONSTACK)
		return -EPERM; /* not while a handler runs on it */
	if (mode == SS_DISABLE) {
		t->ss_sp = t->ss_size = 0;
		t->ss_flags = 0;
		return 0;
	}
	if (size < XMINSIGSTKSZ)
		return -ENOMEM;
	t->ss_sp = ss_sp;
	t->ss_size = size;
	t->ss_flags = flags & XSS_AUTODISARM;
	return 0;
}

/* A siginfo_t: signo, errno, code, then si_addr or si_pid and si_uid. */
static void fill_info(uint8_t info[128], int sig, int code, uint64_t val)
{
	int32_t head[4] = {sig, 0, code, 0};
	memcpy(info, head, sizeof(head));
	memcpy(info + 16, &val, 8);
}

/* A signal sent with kill or tgkill: si_pid and si_uid are the program's. */
static uint64_t sender(void)
{
	return (uint64_t)getpid() | ((uint64_t)getuid() << 32);
}

/* Build the frame on the user stack of st (or the alternate stack) and point
 * st at the handler; val: si_addr, or si_pid and si_uid. false if the frame
 * does not fit there. */
static bool deliver(struct xproc *p, struct cpu_state *st, int sig, int code, uint64_t val,
		    uint64_t trapno, uint64_t err)
{
	struct xthread *t = exec_self;
	struct xsigaction *a = &p->sig[sig];
	if (!(a->flags & XSA_RESTORER))
		return false;
	uint64_t sp = st->gpr[R_RSP] - 128; /* the red zone */
	if ((a->flags & XSA_ONSTACK) && altstack_flags(t, sp) == 0)
		sp = t->ss_sp + t->ss_size;
	sp = (sp - 512) & ~63ull;
	uint64_t fpstate = sp;
	sp = ((sp - sizeof(struct xframe)) & ~15ull) - 8;
	struct xframe f;
	memset(&f, 0, sizeof(f));
	f.pretcode = a->restorer;
	f.uc.ss_sp = t->ss_sp;
	f.uc.ss_flags = t->ss_size ? t->ss_flags : SS_DISABLE;
	f.uc.ss_size = t->ss_size;
	for (int i = 0; i < 16; i++)
		f.uc.gregs[i] = st->gpr[greg_order[i]];
	f.uc.gregs[16] = st->rip;
	f.uc.gregs[17] = st->rflags;
	f.uc.cs = 0x2b;
	f.uc.ss = 0x23;
	f.uc.err = err;
	f.uc.trapno = trapno;
	uint64_t restore = t->mask_saved ? t->saved_mask : t->sigmask;
	t->mask_saved = false;
	f.uc.oldmask = restore;
	f.uc.cr2 = trapno == 14 ? val : 0;
	f.uc.fpstate = fpstate;
	f.uc.sigmask = restore;
	fill_info(f.info, sig, code, val);
	if (mm_write(&p->mm, fpstate, st->xsave, 512) || mm_write(&p->mm, sp, &f, sizeof(f)))
		return false;
	if ((a->flags & XSA_ONSTACK) && (t->ss_flags & XSS_AUTODISARM))
		t->ss_sp = t->ss_size = t->ss_flags = 0; /* until rt_sigreturn puts it back */
	t->sigmask |= (a->mask | ((a->flags & XSA_NODEFER) ? 0 : bit(sig))) & ~unblockable;
	st->rip = a->handler;
	st->gpr[R_RSP] = sp;
	st->gpr[R_RDI] = (uint64_t)sig;
	st->gpr[R_RSI] = sp + offsetof(struct xframe, info);
	st->gpr[R_RDX] = sp + offsetof(struct xframe, uc);
	st->gpr[R_RAX] = 0;
	st->rflags &= ~0x10500ull; /* TF DF RF */
	if (a->flags & XSA_RESETHAND)
		memset(a, 0, sizeof(*a));
	return true;
}

bool exec_signal_fault(struct xproc *p, struct cpu_state *st, int sig, uint64_t addr,
		       const uint64_t *frame)
{
	if (p->sig[sig].handler <= 1 || (exec_self->sigmask & bit(sig)))
		return false; /* default, ignored (not for faults) or blocked: the program dies */
	/* back to the faulting user state, then onto the handler */
	st->rip = frame[0];
	st->rflags = frame[2];
	st->gpr[R_RSP] = frame[3];
	exec_user_segments(st);
	return deliver(p, st, sig, 1 /* SEGV_MAPERR etc. */, addr, 14, 0) &&
	       exec_set_state(p, st) == 0;
}

/* The signals thread t may take now. */
static uint64_t deliverable(struct xproc *p, const struct xthread *t)
{
	return (t->pending.set | (t->notified ? p->pending.set : 0)) & ~t->sigmask;
}

bool exec_signal_wanted(struct xproc *p)
{
	return p->exited || !exec_self->live || deliverable(p, exec_self);
}

/* The thread to take a process-directed signal: the leader if it does not
 * block it, else the first that does not; NULL if every one blocks it. */
static struct xthread *aim(struct xproc *p, int sig)
{
	struct xthread *first = NULL;
	for (int i = 0; i < X_MAX_THREADS; i++) {
		struct xthread *t = &p->thread[i];
		if (!t->live || (t->sigmask & bit(sig)))
			continue;
		if (t->tid == getpid())
			return t;
		if (!first)
			first = t;
	}
	return first;
}

/* Tell thread t it has a signal to take; a default action ends the program. */
static void notify(struct xproc *p, struct xthread *t, int sig)
{
	if (!p->sig[sig].handler && !(t->wait_set & bit(sig))) {
		exec_kill(p, sig);
		return;
	}
	if (t != exec_self)
		exec_kick(p, t, true);
}

/* An ignored signal goes at once, as in Linux, unless its target blocks it
 * or waits for it (it may get a handler first, or be taken by sigwait). */
static bool discarded(struct xproc *p, struct xthread *to, int sig)
{
	if (!ignored(p, sig))
		return false;
	if (!to && !(to = aim(p, sig)))
		return false; /* every thread blocks it */
	return !((to->sigmask | to->wait_set) & bit(sig));
}

/* Send sig to thread to, or to the process if to is NULL. */
static void post(struct xproc *p, struct xthread *to, int sig, int code)
{
	if (discarded(p, to, sig))
		return;
	struct xpending *q = to ? &to->pending : &p->pending;
	q->set |= bit(sig);
	q->code[sig] = (int8_t)code;
	if (!to && (to = aim(p, sig)))
		to->notified = true;
	if (to && !(to->sigmask & bit(sig)))
		notify(p, to, sig);
}

void exec_signal_retarget(struct xproc *p)
{
	for (int sig = 1; sig < X_NSIG && !p->exited; sig++) {
		struct xthread *t;
		if ((p->pending.set & bit(sig)) && (t = aim(p, sig)) && !t->notified) {
			t->notified = true;
			notify(p, t, sig);
		}
	}
}

/* Calls a handler never restarts, whatever SA_RESTART says (signal(7)). */
static bool restartable(uint64_t nr)
{
	static const uint16_t never[] = {SYS_poll,	    SYS_ppoll,		 SYS_select,
					 SYS_pselect6,	    SYS_epoll_wait,	 SYS_epoll_pwait,
					 SYS_nanosleep,	    SYS_clock_nanosleep, SYS_pause,
					 SYS_rt_sigsuspend, SYS_rt_sigtimedwait};
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		if (nr == never[i])
			return false;
	return true;
}

/* Take this thread's deliverable signals onto st, a frame each (the last
 * taken runs first, as Linux nests them). restart: the number of the call
 * that returned -EINTR in st's RAX, or -1. true if st changed. */
static bool take(struct xproc *p, struct cpu_state *st, int64_t restart)
{
	struct xthread *t = exec_self;
	bool changed = false;
	uint64_t set;
	while (!p->exited && (set = deliverable(p, t))) {
		int sig = __builtin_ctzll(set) + 1;
		struct xpending *q = (t->pending.set & bit(sig)) ? &t->pending : &p->pending;
		q->set &= ~bit(sig);
		if (!(p->pending.set & ~t->sigmask))
			t->notified = false;
		if (ignored(p, sig))
			continue;
		if (!p->sig[sig].handler) {
			exec_kill(p, sig);
			break;
		}
		if (restart >= 0 && (p->sig[sig].flags & XSA_RESTART) &&
		    restartable((uint64_t)restart)) {
			st->rip -= 2; /* SYSCALL's length: the call goes again after the handler */
			st->gpr[R_RAX] = (uint64_t)restart;
		}
		restart = -1; /* only the first frame returns into the interrupted call */
		if (!deliver(p, st, sig, q->code[sig], sender(), 0, 0)) {
			fprintf(stderr,
				"popek exec: %s: no room for a signal frame at rsp 0x%llx\n",
				p->opt->program, (unsigned long long)st->gpr[R_RSP]);
			exec_kill(p, SIGSEGV);
			break;
		}
		changed = true;
	}
	/* what this thread blocks and was aimed at, another thread may take */
	if (p->pending.set & t->sigmask)
		exec_signal_retarget(p);
	return changed;
}

static int64_t signal_syscall(struct xproc *p, const struct xsys *s, int64_t ret)
{
	if (p->exited || !exec_self->live || !deliverable(p, exec_self))
		return ret;
	static _Thread_local struct cpu_state st;
	bool set = exec_self->state_set; /* the call loaded a state: its result is in it */
	if (set ? exec_get_state(p, &st) : exec_user_state(p, &st))
		return ret;
	if (!set)
		st.gpr[R_RAX] = (uint64_t)ret;
	if (!take(p, &st, !set && ret == -EINTR ? (int64_t)s->nr : -1) || p->exited)
		return ret;
	return exec_set_state(p, &st) ? ret : (int64_t)st.gpr[R_RAX];
}

int64_t exec_signal_syscall(struct xproc *p, const struct xsys *s, int64_t ret)
{
	ret = signal_syscall(p, s, ret);
	if (exec_self->mask_saved) { /* no handler ran: rt_sigsuspend's mask goes now */
		exec_self->sigmask = exec_self->saved_mask;
		exec_self->mask_saved = false;
	}
	return ret;
}

void exec_signal_async(struct xproc *p)
{
	if (p->exited || !exec_self->live || !deliverable(p, exec_self))
		return;
	static _Thread_local struct cpu_state st;
	/* elsewhere (a stub before its report) an exit comes at once, and the
	 * signal is taken after it */
	if (exec_async_state(p, &st) == 0 && take(p, &st, -1) && !p->exited)
		exec_set_state(p, &st);
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
		a.mask &= ~unblockable;
		p->sig[sig] = a;
		if (ignored(p, sig)) { /* pending ones go (POSIX) */
			p->pending.set &= ~bit(sig);
			for (int i = 0; i < X_MAX_THREADS; i++)
				p->thread[i].pending.set &= ~bit(sig);
		}
	}
	return 0;
}

static int64_t sys_rt_sigprocmask(struct xproc *p, const struct xsys *s)
{
	struct xthread *t = exec_self;
	if (s->a[3] != 8)
		return -EINVAL;
	uint64_t old = t->sigmask, set;
	if (s->a[1]) {
		if (mm_read(&p->mm, s->a[1], &set, 8))
			return -EFAULT;
		set &= ~unblockable;
		if (s->a[0] == SIG_BLOCK)
			t->sigmask |= set;
		else if (s->a[0] == SIG_UNBLOCK)
			t->sigmask &= ~set;
		else if (s->a[0] == SIG_SETMASK)
			t->sigmask = set;
		else
			return -EINVAL;
		/* what it unblocked of the process's pending signals, it takes
		 * (Linux's recalc_sigpending); what it blocked, another may */
		if (p->pending.set & ~t->sigmask)
			t->notified = true;
		if (p->pending.set & t->sigmask)
			exec_signal_retarget(p);
	}
	return s->a[2] && mm_write(&p->mm, s->a[2], &old, 8) ? -EFAULT : 0;
}

bool exec_wait_begin(struct xproc *p, sigset_t *old)
{
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, X_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &kick, old);
	return !exec_signal_wanted(p);
}

void exec_wait_end(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Wait until this thread has a signal to take (or ends), or until the
 * CLOCK_MONOTONIC deadline if any; false if it passed. */
static bool await_signal(struct xproc *p, const struct timespec *deadline)
{
	sigset_t old;
	bool in_time = true;
	while (in_time && exec_wait_begin(p, &old)) {
		struct timespec left, now;
		if (deadline) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			int64_t ns = (deadline->tv_sec - now.tv_sec) * 1000000000ll +
				     (deadline->tv_nsec - now.tv_nsec);
			if (ns <= 0) {
				in_time = false;
				break;
			}
			left = (struct timespec){ns / 1000000000, ns % 1000000000};
		}
		exec_unlock(p);
		ppoll(NULL, 0, deadline ? &left : NULL, &old);
		exec_lock(p);
		exec_wait_end(&old);
	}
	exec_wait_end(&old);
	return in_time;
}

/* Wait with mask in place until a signal is taken (rt_sigsuspend, pause). */
/* mask in place for the call; the first handler's frame (or the call's
 * end, exec_signal_syscall) restores the thread's own. */
static void call_mask(struct xproc *p, uint64_t mask)
{
	struct xthread *t = exec_self;
	t->saved_mask = t->sigmask;
	t->mask_saved = true;
	t->sigmask = mask & ~unblockable;
	if (p->pending.set & ~t->sigmask)
		t->notified = true;
	if (p->pending.set & t->sigmask)
		exec_signal_retarget(p);
}

int exec_call_mask(struct xproc *p, uint64_t va, uint64_t size)
{
	uint64_t mask;
	if (!va)
		return 0;
	if (size != 8)
		return -EINVAL;
	if (mm_read(&p->mm, va, &mask, 8))
		return -EFAULT;
	call_mask(p, mask);
	return 0;
}

static int64_t suspend(struct xproc *p, uint64_t mask)
{
	call_mask(p, mask);
	await_signal(p, NULL);
	return -EINTR;
}

static int64_t sys_rt_sigsuspend(struct xproc *p, const struct xsys *s)
{
	uint64_t mask;
	if (s->a[1] != 8)
		return -EINVAL;
	if (mm_read(&p->mm, s->a[0], &mask, 8))
		return -EFAULT;
	return suspend(p, mask);
}

static int64_t sys_pause(struct xproc *p, const struct xsys *s)
{
	return suspend(p, exec_self->sigmask);
}

/* sigwaitinfo, sigtimedwait, sigwait: take a signal of the set without a
 * handler. As Linux, the set is unblocked meanwhile, so a signal to the
 * process is aimed at this thread, and the default action does not apply. */
static int64_t sys_rt_sigtimedwait(struct xproc *p, const struct xsys *s)
{
	struct xthread *t = exec_self;
	uint64_t set;
	struct timespec deadline;
	if (s->a[3] != 8)
		return -EINVAL;
	if (mm_read(&p->mm, s->a[0], &set, 8))
		return -EFAULT;
	set &= ~unblockable;
	if (s->a[2]) {
		struct timespec ts, now;
		if (mm_read(&p->mm, s->a[2], &ts, sizeof(ts)))
			return -EFAULT;
		if (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000 || ts.tv_sec < 0)
			return -EINVAL;
		clock_gettime(CLOCK_MONOTONIC, &now);
		deadline.tv_sec = now.tv_sec + ts.tv_sec;
		deadline.tv_nsec = now.tv_nsec + ts.tv_nsec;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	uint64_t mask = t->sigmask;
	bool in_time = true;
	if (!((t->pending.set | p->pending.set) & set)) {
		t->wait_set = set;
		t->sigmask &= ~set;
		if (p->pending.set & set)
			t->notified = true;
		in_time = await_signal(p, s->a[2] ? &deadline : NULL);
		t->sigmask = mask;
		t->wait_set = 0;
	}
	uint64_t own = t->pending.set & set, any = (own | p->pending.set) & set;
	if (!any)
		return in_time ? -EINTR : -EAGAIN; /* EINTR: another signal, its handler runs */
	int sig = __builtin_ctzll(any) + 1;
	struct xpending *q = (own & bit(sig)) ? &t->pending : &p->pending;
	q->set &= ~bit(sig);
	if (s->a[1]) {
		uint8_t info[128] = {0};
		fill_info(info, sig, q->code[sig], sender());
		if (mm_write(&p->mm, s->a[1], info, sizeof(info)))
			return -EFAULT;
	}
	return sig;
}

static int64_t sys_rt_sigpending(struct xproc *p, const struct xsys *s)
{
	if (s->a[1] > 8)
		return -EINVAL;
	struct xthread *t = exec_self;
	uint64_t set = (t->pending.set | p->pending.set) & t->sigmask;
	return mm_write(&p->mm, s->a[0], &set, s->a[1]) ? -EFAULT : 0;
}

static int64_t sys_rt_sigreturn(struct xproc *p, const struct xsys *s)
{
	struct xthread *t = exec_self;
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
	t->sigmask = f.uc.sigmask & ~unblockable;
	if (p->pending.set & ~t->sigmask)
		t->notified = true;
	/* the stack the frame saved comes back (SS_AUTODISARM); refused, as
	 * Linux's restore_altstack, while still on it */
	set_altstack(t, st.gpr[R_RSP], f.uc.ss_sp, (uint32_t)f.uc.ss_flags, f.uc.ss_size);
	return exec_set_state(p, &st) ? -EIO : (int64_t)st.gpr[R_RAX];
}

static int64_t check_sig(int sig)
{
	return sig < 0 || sig >= X_NSIG ? -EINVAL : 0;
}

static int64_t sys_kill(struct xproc *p, const struct xsys *s)
{
	int pid = (int)s->a[0], sig = (int)s->a[1];
	if (pid > 0 && pid != getpid()) {
		/* only its own children: they are popek processes too, and a
		 * signal acts on them with its default action */
		if (!exec_is_child(p, pid))
			return -ESRCH;
		return kill(pid, sig) ? -errno : 0;
	}
	if (pid != getpid() && pid != 0 && pid != -1)
		return -ESRCH;
	if (check_sig(sig) || !sig)
		return check_sig(sig);
	post(p, NULL, sig, XSI_USER);
	return 0;
}

/* A signal to thread tid of the program. */
static int64_t to_thread(struct xproc *p, int tid, int sig)
{
	if (check_sig(sig))
		return -EINVAL;
	for (int i = 0; i < X_MAX_THREADS; i++) {
		struct xthread *t = &p->thread[i];
		if (t->live && t->tid == tid) {
			if (sig)
				post(p, t, sig, XSI_TKILL);
			return 0;
		}
	}
	return -ESRCH;
}

static int64_t sys_tgkill(struct xproc *p, const struct xsys *s)
{
	if ((int)s->a[0] != getpid())
		return -ESRCH;
	return to_thread(p, (int)s->a[1], (int)s->a[2]);
}

static int64_t sys_tkill(struct xproc *p, const struct xsys *s)
{
	return to_thread(p, (int)s->a[0], (int)s->a[1]);
}

static int64_t sys_sigaltstack(struct xproc *p, const struct xsys *s)
{
	struct xthread *t = exec_self;
	static _Thread_local struct cpu_state st;
	if (exec_user_state(p, &st))
		return -EIO;
	uint64_t sp = st.gpr[R_RSP];
	uint64_t old[3] = {t->ss_sp, altstack_flags(t, sp) | t->ss_flags, t->ss_size};
	if (s->a[0]) {
		uint64_t ss[3]; /* ss_sp, ss_flags (an int), ss_size */
		if (mm_read(&p->mm, s->a[0], ss, sizeof(ss)))
			return -EFAULT;
		int rc = set_altstack(t, sp, ss[0], (uint32_t)ss[1], ss[2]);
		if (rc)
			return rc;
	}
	return s->a[1] && mm_write(&p->mm, s->a[1], old, sizeof(old)) ? -EFAULT : 0;
}

void sys_signal_table(struct sys_entry *t)
{
	t[SYS_rt_sigaction] = (struct sys_entry){"rt_sigaction", sys_rt_sigaction, "ippi"};
	t[SYS_rt_sigprocmask] = (struct sys_entry){"rt_sigprocmask", sys_rt_sigprocmask, "ippi"};
	t[SYS_rt_sigpending] = (struct sys_entry){"rt_sigpending", sys_rt_sigpending, "pi"};
	t[SYS_rt_sigsuspend] = (struct sys_entry){"rt_sigsuspend", sys_rt_sigsuspend, "pi"};
	t[SYS_pause] = (struct sys_entry){"pause", sys_pause, ""};
	t[SYS_rt_sigtimedwait] = (struct sys_entry){"rt_sigtimedwait", sys_rt_sigtimedwait, "pppi"};
	t[SYS_rt_sigreturn] = (struct sys_entry){"rt_sigreturn", sys_rt_sigreturn, ""};
	t[SYS_kill] = (struct sys_entry){"kill", sys_kill, "ii"};
	t[SYS_tgkill] = (struct sys_entry){"tgkill", sys_tgkill, "iii"};
	t[SYS_tkill] = (struct sys_entry){"tkill", sys_tkill, "ii"};
	t[SYS_sigaltstack] = (struct sys_entry){"sigaltstack", sys_sigaltstack, "pp"};
}
