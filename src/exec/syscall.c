/* The system call table: one slot per x86-64 number, filled by the families
 * (sys_fs.c, sys_mem.c, sys_proc.c, sys_signal.c). A number without a
 * handler returns -ENOSYS and is counted for --stats; --strace prints every
 * call with its arguments and result. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "exec/exec.h"

#define NR_SYSCALLS 512

static struct sys_entry table[NR_SYSCALLS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill(void)
{
	sys_fs_table(table);
	sys_mem_table(table);
	sys_proc_table(table);
	sys_signal_table(table);
	sys_process_table(table);
	sys_net_table(table);
	sys_poll_table(table);
}

/* The calls the ring may serve (ring.c): none blocks for long or touches
 * the calling vCPU's own state (its registers, its TLB beyond a flush at
 * the exit: munmap and mprotect, which nearly always need one, take the
 * exit at once); FILE ones only on a regular file or directory (a pipe or
 * a terminal may block). fcntl's locks are no-ops here (sys_fs.c). */
enum { RING_ANY = 1, RING_FILE };
static const struct {
	uint16_t nr;
	uint8_t kind;
} ring_calls[] = {
    {SYS_read, RING_FILE},
    {SYS_write, RING_FILE},
    {SYS_pread64, RING_FILE},
    {SYS_pwrite64, RING_FILE},
    {SYS_readv, RING_FILE},
    {SYS_writev, RING_FILE},
    {SYS_open, RING_ANY},
    {SYS_openat, RING_ANY},
    {SYS_close, RING_ANY},
    {SYS_stat, RING_ANY},
    {SYS_fstat, RING_ANY},
    {SYS_lstat, RING_ANY},
    {SYS_newfstatat, RING_ANY},
    {SYS_statx, RING_ANY},
    {SYS_lseek, RING_ANY},
    {SYS_access, RING_ANY},
    {SYS_faccessat, RING_ANY},
    {SYS_faccessat2, RING_ANY},
    {SYS_getdents64, RING_ANY},
    {SYS_readlink, RING_ANY},
    {SYS_readlinkat, RING_ANY},
    {SYS_getcwd, RING_ANY},
    {SYS_umask, RING_ANY},
    {SYS_dup, RING_ANY},
    {SYS_dup2, RING_ANY},
    {SYS_dup3, RING_ANY},
    {SYS_pipe2, RING_ANY},
    {SYS_fcntl, RING_ANY},
    {SYS_statfs, RING_ANY},
    {SYS_fstatfs, RING_ANY},
    {SYS_mmap, RING_ANY},
    {SYS_brk, RING_ANY},
    {SYS_rt_sigprocmask, RING_ANY},
    {SYS_getpid, RING_ANY},
    {SYS_getppid, RING_ANY},
    {SYS_gettid, RING_ANY},
    {SYS_getuid, RING_ANY},
    {SYS_geteuid, RING_ANY},
    {SYS_getgid, RING_ANY},
    {SYS_getegid, RING_ANY},
    {SYS_getpgrp, RING_ANY},
    {SYS_getgroups, RING_ANY},
    {SYS_uname, RING_ANY},
    {SYS_getrandom, RING_ANY},
    {SYS_clock_gettime, RING_ANY},
    {SYS_clock_getres, RING_ANY},
    {SYS_gettimeofday, RING_ANY},
    {SYS_time, RING_ANY},
    {SYS_sysinfo, RING_ANY},
    {SYS_prlimit64, RING_ANY},
    {SYS_getrlimit, RING_ANY},
    {SYS_sched_getaffinity, RING_ANY},
    {SYS_sched_yield, RING_ANY},
    {SYS_set_tid_address, RING_ANY},
    {SYS_set_robust_list, RING_ANY},
};

void syscall_ring_map(uint64_t ok[8])
{
	memset(ok, 0, 8 * sizeof(uint64_t));
	for (size_t i = 0; i < sizeof(ring_calls) / sizeof(ring_calls[0]); i++)
		ok[ring_calls[i].nr / 64] |= 1ull << (ring_calls[i].nr % 64);
}

bool syscall_on_ring(struct xproc *p, const struct xsys *s)
{
	struct stat st;
	for (size_t i = 0; i < sizeof(ring_calls) / sizeof(ring_calls[0]); i++) {
		if (ring_calls[i].nr != s->nr)
			continue;
		switch (ring_calls[i].kind) {
		case RING_FILE: {
			int h = fd_host(p, (int)s->a[0]);
			return h < 0 ||
			       (!fstat(h, &st) && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)));
		}
		default:
			return true;
		}
	}
	return false;
}

const char *syscall_name(uint64_t nr)
{
	pthread_once(&once, fill);
	return nr < NR_SYSCALLS ? table[nr].name : NULL;
}

static void trace_arg(struct xproc *p, char kind, uint64_t v)
{
	char s[48];
	switch (kind) {
	case 's':
		if (mm_read_str(&p->mm, v, s, sizeof(s)) == 0)
			fprintf(stderr, "\"%s\"", s);
		else
			fprintf(stderr, "0x%" PRIx64, v);
		return;
	case 'd':
	case 'f':
		fprintf(stderr, "%d", (int)v); /* AT_FDCWD is a 32-bit -100 */
		return;
	case 'i':
		fprintf(stderr, "%" PRId64, (int64_t)v);
		return;
	default:
		fprintf(stderr, "0x%" PRIx64, v);
	}
}

static void trace(struct xproc *p, const struct xsys *s, const struct sys_entry *e, int64_t ret)
{
	if (e && e->name)
		fprintf(stderr, "%s(", e->name);
	else
		fprintf(stderr, "syscall_%" PRIu64 "(", s->nr);
	const char *args = e && e->args ? e->args : "xxxxxx";
	for (int i = 0; args[i] && i < 6; i++) {
		if (i)
			fputs(", ", stderr);
		trace_arg(p, args[i], s->a[i]);
	}
	if (ret < 0 && ret > -4096)
		fprintf(stderr, ") = -1 %s (%s)\n", strerrorname_np((int)-ret) ?: "E?",
			strerror((int)-ret));
	else if (ret > 0xffff)
		fprintf(stderr, ") = 0x%" PRIx64 "\n", (uint64_t)ret);
	else
		fprintf(stderr, ") = %" PRId64 "\n", ret);
}

int64_t exec_syscall(struct xproc *p, const struct xsys *s)
{
	pthread_once(&once, fill);
	const struct sys_entry *e = s->nr < NR_SYSCALLS ? &table[s->nr] : NULL;
	p->ncalls++;
	int64_t ret;
	static _Thread_local struct xcheck check; /* large, and one call at a time */
	bool watched = policy_has_class(p->policy, POLICY_SYSCALL);
	if (watched && exec_policy_check(p, s, e, &check, &ret)) {
		watched = false; /* a rule decided, and recorded it: the call does not run */
	} else if (e && e->fn) {
		p->per_nr[s->nr]++;
		uint64_t kicks;
		do { /* a kick for another reason (a TLB shoot-down) is not the program's EINTR */
			kicks = exec_self->kicks;
			ret = e->fn(p, s);
		} while (ret == -EINTR && exec_self->kicks != kicks && !exec_signal_wanted(p));
	} else {
		if (s->nr < NR_SYSCALLS)
			p->enosys[s->nr]++;
		ret = -ENOSYS;
	}
	if (watched)
		exec_policy_done(p, &check, ret);
	if (p->opt->strace)
		trace(p, s, e, ret);
	/* on the ring, signals are taken at the exit the server asks for */
	return exec_self->on_ring ? ret : exec_signal_syscall(p, s, ret);
}
