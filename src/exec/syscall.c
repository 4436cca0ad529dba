/* The system call table: one slot per x86-64 number, filled by the families
 * (sys_fs.c, sys_mem.c, sys_proc.c, sys_signal.c). A number without a
 * handler returns -ENOSYS and is counted for --stats; --strace prints every
 * call with its arguments and result. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
	return exec_signal_syscall(p, s, ret);
}
