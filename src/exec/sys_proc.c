/* Process, identity, time and randomness calls. Identity is the host's
 * (popek runs the program as itself); uname says popek. */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

static int64_t sys_exit_group(struct xproc *p, const struct xsys *s)
{
	exec_exit(p, (int)(s->a[0] & 0xff));
	return 0;
}

static int64_t sys_exit(struct xproc *p, const struct xsys *s)
{
	exec_thread_exit(p, (int)(s->a[0] & 0xff));
	return 0;
}

static int64_t sys_getpid(struct xproc *p, const struct xsys *s)
{
	return getpid();
}

static int64_t sys_getppid(struct xproc *p, const struct xsys *s)
{
	return getppid();
}

static int64_t sys_getuid(struct xproc *p, const struct xsys *s)
{
	return getuid();
}

static int64_t sys_geteuid(struct xproc *p, const struct xsys *s)
{
	return geteuid();
}

static int64_t sys_getgid(struct xproc *p, const struct xsys *s)
{
	return getgid();
}

static int64_t sys_getegid(struct xproc *p, const struct xsys *s)
{
	return getegid();
}

static int64_t sys_getpgrp(struct xproc *p, const struct xsys *s)
{
	return getpgrp();
}

static int64_t sys_getgroups(struct xproc *p, const struct xsys *s)
{
	return 0; /* no supplementary groups */
}

static int64_t sys_setpgid(struct xproc *p, const struct xsys *s)
{
	return 0;
}

static int64_t sys_uname(struct xproc *p, const struct xsys *s)
{
	struct utsname u;
	memset(&u, 0, sizeof(u));
	snprintf(u.sysname, sizeof(u.sysname), "Linux");
	snprintf(u.nodename, sizeof(u.nodename), "popek");
	snprintf(u.release, sizeof(u.release), "6.1.0-popek");
	snprintf(u.version, sizeof(u.version), "#1 popek exec");
	snprintf(u.machine, sizeof(u.machine), "x86_64");
	return mm_write(&p->mm, s->a[0], &u, sizeof(u)) ? -EFAULT : 0;
}

static int64_t sys_getrandom(struct xproc *p, const struct xsys *s)
{
	uint8_t buf[4096];
	size_t n = s->a[1] < sizeof(buf) ? s->a[1] : sizeof(buf);
	ssize_t got = getrandom(buf, n, (unsigned)s->a[2] & (GRND_NONBLOCK | GRND_RANDOM));
	if (got < 0)
		return -errno;
	return mm_write(&p->mm, s->a[0], buf, (size_t)got) ? -EFAULT : got;
}

static bool clock_ok(uint64_t id)
{
	return id <= CLOCK_BOOTTIME && id != 8 && id != 9 && id != 10;
}

static int64_t sys_clock_gettime(struct xproc *p, const struct xsys *s)
{
	struct timespec ts;
	if (!clock_ok(s->a[0]) || clock_gettime((clockid_t)s->a[0], &ts))
		return -EINVAL;
	return mm_write(&p->mm, s->a[1], &ts, sizeof(ts)) ? -EFAULT : 0;
}

static int64_t sys_clock_getres(struct xproc *p, const struct xsys *s)
{
	struct timespec ts;
	if (!clock_ok(s->a[0]) || clock_getres((clockid_t)s->a[0], &ts))
		return -EINVAL;
	return s->a[1] && mm_write(&p->mm, s->a[1], &ts, sizeof(ts)) ? -EFAULT : 0;
}

static int64_t sys_gettimeofday(struct xproc *p, const struct xsys *s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t tv[2] = {ts.tv_sec, ts.tv_nsec / 1000};
	if (s->a[0] && mm_write(&p->mm, s->a[0], tv, sizeof(tv)))
		return -EFAULT;
	return 0;
}

static int64_t sys_time(struct xproc *p, const struct xsys *s)
{
	int64_t t = (int64_t)time(NULL);
	return s->a[0] && mm_write(&p->mm, s->a[0], &t, sizeof(t)) ? -EFAULT : t;
}

static int64_t ns_of(const struct timespec *t)
{
	return t->tv_sec * 1000000000ll + t->tv_nsec;
}

/* A sleep is a ppoll with no descriptors, so a signal for the thread ends it
 * with no lost-kick race (exec_wait_begin); the clock is read again after
 * each wake-up. */
static int64_t sleep_for(struct xproc *p, clockid_t clk, int flags, uint64_t req, uint64_t rem)
{
	struct timespec ts, now;
	if (mm_read(&p->mm, req, &ts, sizeof(ts)))
		return -EFAULT;
	if (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000 || ts.tv_sec < 0)
		return -EINVAL;
	if (clk == CLOCK_PROCESS_CPUTIME_ID || clk == CLOCK_THREAD_CPUTIME_ID)
		return -EINVAL; /* popek's CPU time is not the program's */
	if (ts.tv_sec > (1ll << 32))
		ts.tv_sec = 1ll << 32; /* 136 years: for ever, and no overflow below */
	clock_gettime(clk, &now);
	int64_t end = ns_of(&ts) + ((flags & TIMER_ABSTIME) ? 0 : ns_of(&now)), left;
	sigset_t old;
	for (;;) {
		bool go = exec_wait_begin(p, &old);
		clock_gettime(clk, &now);
		left = end - ns_of(&now);
		if (!go || left <= 0)
			break;
		struct timespec wait = {left / 1000000000, left % 1000000000};
		exec_unlock(p);
		ppoll(NULL, 0, &wait, &old);
		exec_lock(p);
		exec_wait_end(&old);
	}
	exec_wait_end(&old);
	if (left <= 0)
		return 0;
	struct timespec rest = {left / 1000000000, left % 1000000000};
	if (rem && !(flags & TIMER_ABSTIME) && mm_write(&p->mm, rem, &rest, sizeof(rest)))
		return -EFAULT;
	return -EINTR; /* a signal to take, or the thread ends */
}

static int64_t sys_nanosleep(struct xproc *p, const struct xsys *s)
{
	return sleep_for(p, CLOCK_MONOTONIC, 0, s->a[0], s->a[1]);
}

static int64_t sys_clock_nanosleep(struct xproc *p, const struct xsys *s)
{
	if (!clock_ok(s->a[0]) || (s->a[1] & ~(uint64_t)TIMER_ABSTIME))
		return -EINVAL;
	return sleep_for(p, (clockid_t)s->a[0], (int)s->a[1], s->a[2], s->a[3]);
}

static bool canonical(uint64_t a)
{
	return a < X_USER_END;
}

static int64_t sys_arch_prctl(struct xproc *p, const struct xsys *s)
{
	int code = (int)s->a[0];
	if (code != ARCH_SET_FS && code != ARCH_SET_GS && code != ARCH_GET_FS &&
	    code != ARCH_GET_GS)
		return -EINVAL;
	struct cpu_state st;
	if (exec_user_state(p, &st))
		return -EIO;
	int seg = (code == ARCH_SET_FS || code == ARCH_GET_FS) ? SEG_FS : SEG_GS;
	if (code == ARCH_GET_FS || code == ARCH_GET_GS)
		return mm_write(&p->mm, s->a[1], &st.seg[seg].base, 8) ? -EFAULT : 0;
	if (!canonical(s->a[1]))
		return -EPERM;
	st.seg[seg].base = s->a[1];
	st.gpr[R_RAX] = 0;
	return exec_set_state(p, &st) ? -EIO : 0;
}

static int64_t sys_set_tid_address(struct xproc *p, const struct xsys *s)
{
	exec_self->clear_tid = s->a[0];
	return exec_self->tid;
}

static int64_t sys_gettid(struct xproc *p, const struct xsys *s)
{
	return exec_self->tid;
}

static int64_t sys_ok(struct xproc *p, const struct xsys *s)
{
	return 0;
}

/* The host address of a futex word: aligned, in a mapped page. */
static int futex_word(struct xproc *p, uint64_t va, bool write, uint32_t **host)
{
	struct iovec iov;
	if (va & 3)
		return -EINVAL;
	if (mm_iov(&p->mm, va, 4, write, &iov, 1) != 1)
		return -EFAULT;
	*host = iov.iov_base;
	return 0;
}

/* The host's futex on the guest words' host addresses (thread.c); a wait
 * lets the other threads' calls go on. Always process-private: guest RAM is
 * this process's alone. */
static int64_t sys_futex(struct xproc *p, const struct xsys *s)
{
	int cmd = (int)s->a[1] & FUTEX_CMD_MASK;
	int op = cmd | FUTEX_PRIVATE_FLAG | ((int)s->a[1] & FUTEX_CLOCK_REALTIME);
	uint32_t *w, *w2 = NULL;
	int rc = futex_word(p, s->a[0], false, &w);
	if (rc)
		return rc;
	switch (cmd) {
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET: {
		struct timespec ts;
		if (s->a[3] && mm_read(&p->mm, s->a[3], &ts, sizeof(ts)))
			return -EFAULT;
		exec_unlock(p);
		long r = syscall(SYS_futex, w, op, (uint32_t)s->a[2], s->a[3] ? &ts : NULL, NULL,
				 (uint32_t)s->a[5]);
		rc = r < 0 ? -errno : (int)r;
		exec_lock(p);
		return rc;
	}
	case FUTEX_WAKE:
	case FUTEX_WAKE_BITSET: {
		long r =
		    syscall(SYS_futex, w, op, (uint32_t)s->a[2], NULL, NULL, (uint32_t)s->a[5]);
		return r < 0 ? -errno : r;
	}
	case FUTEX_REQUEUE:
	case FUTEX_CMP_REQUEUE:
	case FUTEX_WAKE_OP: {
		if ((rc = futex_word(p, s->a[4], cmd == FUTEX_WAKE_OP, &w2)))
			return rc;
		/* the fourth argument is a count here, not a pointer */
		long r = syscall(SYS_futex, w, op, (uint32_t)s->a[2], (void *)(uintptr_t)s->a[3],
				 w2, (uint32_t)s->a[5]);
		return r < 0 ? -errno : r;
	}
	}
	return -ENOSYS; /* the priority-inheritance futexes */
}

static int64_t sys_prlimit64(struct xproc *p, const struct xsys *s)
{
	if (s->a[0] && s->a[0] != (uint64_t)getpid())
		return -ESRCH;
	struct rlimit old;
	if (getrlimit((int)s->a[1], &old))
		return -EINVAL;
	if (s->a[1] == RLIMIT_STACK)
		old.rlim_cur = old.rlim_max = X_STACK_SIZE;
	if (s->a[3] && mm_write(&p->mm, s->a[3], &old, sizeof(old)))
		return -EFAULT;
	return 0; /* new limits are accepted and not enforced */
}

static int64_t sys_getrlimit(struct xproc *p, const struct xsys *s)
{
	struct xsys t = {s->nr, {0, s->a[0], 0, s->a[1]}};
	return sys_prlimit64(p, &t);
}

static int64_t sys_sysinfo(struct xproc *p, const struct xsys *s)
{
	struct sysinfo si;
	if (sysinfo(&si))
		return -errno;
	si.totalram = p->mm.mem.size;
	si.mem_unit = 1;
	si.procs = 1;
	return mm_write(&p->mm, s->a[0], &si, sizeof(si)) ? -EFAULT : 0;
}

static int64_t sys_sched_getaffinity(struct xproc *p, const struct xsys *s)
{
	uint64_t mask = 1; /* one vCPU */
	if (s->a[1] < sizeof(mask))
		return -EINVAL;
	return mm_write(&p->mm, s->a[2], &mask, sizeof(mask)) ? -EFAULT : (int64_t)sizeof(mask);
}

void sys_proc_table(struct sys_entry *t)
{
	t[SYS_exit] = (struct sys_entry){"exit", sys_exit, "i"};
	t[SYS_exit_group] = (struct sys_entry){"exit_group", sys_exit_group, "i"};
	t[SYS_getpid] = (struct sys_entry){"getpid", sys_getpid, ""};
	t[SYS_getppid] = (struct sys_entry){"getppid", sys_getppid, ""};
	t[SYS_gettid] = (struct sys_entry){"gettid", sys_gettid, ""};
	t[SYS_getuid] = (struct sys_entry){"getuid", sys_getuid, ""};
	t[SYS_geteuid] = (struct sys_entry){"geteuid", sys_geteuid, ""};
	t[SYS_getgid] = (struct sys_entry){"getgid", sys_getgid, ""};
	t[SYS_getegid] = (struct sys_entry){"getegid", sys_getegid, ""};
	t[SYS_getpgrp] = (struct sys_entry){"getpgrp", sys_getpgrp, ""};
	t[SYS_getgroups] = (struct sys_entry){"getgroups", sys_getgroups, "ip"};
	t[SYS_setpgid] = (struct sys_entry){"setpgid", sys_setpgid, "ii"};
	t[SYS_uname] = (struct sys_entry){"uname", sys_uname, "p"};
	t[SYS_getrandom] = (struct sys_entry){"getrandom", sys_getrandom, "pix"};
	t[SYS_clock_gettime] = (struct sys_entry){"clock_gettime", sys_clock_gettime, "ip"};
	t[SYS_clock_getres] = (struct sys_entry){"clock_getres", sys_clock_getres, "ip"};
	t[SYS_gettimeofday] = (struct sys_entry){"gettimeofday", sys_gettimeofday, "pp"};
	t[SYS_time] = (struct sys_entry){"time", sys_time, "p"};
	t[SYS_nanosleep] = (struct sys_entry){"nanosleep", sys_nanosleep, "pp"};
	t[SYS_clock_nanosleep] = (struct sys_entry){"clock_nanosleep", sys_clock_nanosleep, "ixpp"};
	t[SYS_arch_prctl] = (struct sys_entry){"arch_prctl", sys_arch_prctl, "xx"};
	t[SYS_set_tid_address] = (struct sys_entry){"set_tid_address", sys_set_tid_address, "p"};
	t[SYS_set_robust_list] = (struct sys_entry){"set_robust_list", sys_ok, "pi"};
	t[SYS_sched_yield] = (struct sys_entry){"sched_yield", sys_ok, ""};
	t[SYS_futex] = (struct sys_entry){"futex", sys_futex, "pxipxx"};
	t[SYS_prlimit64] = (struct sys_entry){"prlimit64", sys_prlimit64, "iipp"};
	t[SYS_getrlimit] = (struct sys_entry){"getrlimit", sys_getrlimit, "ip"};
	t[SYS_sysinfo] = (struct sys_entry){"sysinfo", sys_sysinfo, "p"};
	t[SYS_sched_getaffinity] =
	    (struct sys_entry){"sched_getaffinity", sys_sched_getaffinity, "iip"};
	/* named for --strace and --stats, not served (-ENOSYS) */
	t[SYS_rseq] = (struct sys_entry){"rseq", NULL, "pixx"};
	t[SYS_clone3] = (struct sys_entry){"clone3", NULL, "pi"};
}
