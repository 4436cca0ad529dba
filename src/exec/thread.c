/* Threads: clone with CLONE_VM|CLONE_THREAD is a new vCPU of the same VM
 * (the same page tables, so the same address space), run by a host thread of
 * its own. Program code runs on every vCPU at once; popek serves one call at
 * a time under the process lock, which a call drops only around a host call
 * that blocks (a read, a futex wait, a poll), so the fd table, the mappings
 * and the signal state need no lock of their own. A futex is the host's, on
 * the host address of the guest's word: guest RAM is one mapping of this
 * process, so waiters and wakers on different vCPUs meet in the host kernel.
 * A mapping removed by one thread is flushed from every vCPU's TLB before it
 * runs program code again (run.c, shoot_down). */
#include <errno.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

#define XCLONE_SETTLS	      0x00080000
#define XCLONE_PARENT_SETTID  0x00100000
#define XCLONE_CHILD_CLEARTID 0x00200000
#define XCLONE_CHILD_SETTID   0x01000000

_Thread_local struct xthread *exec_self;

static struct xproc *the_proc; /* for the new host threads */

void exec_unlock(struct xproc *p)
{
	pthread_mutex_unlock(&p->lock);
}

void exec_lock(struct xproc *p)
{
	pthread_mutex_lock(&p->lock);
}

int exec_others(struct xproc *p)
{
	int n = 0;
	for (int i = 0; i < X_MAX_THREADS; i++)
		n += p->thread[i].live && &p->thread[i] != exec_self;
	return n;
}

struct start {
	struct xthread *t;
	sem_t started;
};

static void *thread_main(void *arg)
{
	struct start *st = arg;
	struct xproc *p = the_proc;
	exec_self = st->t;
	exec_self->tid = (pid_t)syscall(SYS_gettid);
	sem_post(&st->started); /* the parent holds the lock until it returns */
	exec_lock(p);
	for (;;) {
		exec_loop(p);
		if (p->exited)
			exec_end(p);
		/* The guest thread exited. The slot's vCPU has this host thread as
		 * its own (a kick signals it), so the host thread stays and runs the
		 * slot's next guest thread. */
		exec_self->parked = true;
		pthread_cond_broadcast(&p->gone); /* for exec_stop_others */
		while (!exec_self->live)
			pthread_cond_wait(&exec_self->wake, &p->lock);
		exec_self->parked = false;
	}
	return NULL;
}

/* CLONE_PARENT_SETTID, CLONE_CHILD_SETTID: the new tid into the guest. The
 * new thread cannot run program code before this: it waits for the lock. */
static int64_t settid(struct xproc *p, struct xthread *t, uint64_t flags, uint64_t ptid,
		      uint64_t ctid)
{
	if (((flags & XCLONE_PARENT_SETTID) && mm_write(&p->mm, ptid, &t->tid, 4)) ||
	    ((flags & XCLONE_CHILD_SETTID) && mm_write(&p->mm, ctid, &t->tid, 4)))
		return -EFAULT; /* as Linux, the thread runs anyway */
	return t->tid;
}

int64_t exec_thread(struct xproc *p, uint64_t flags, uint64_t stack, uint64_t ptid, uint64_t ctid,
		    uint64_t tls)
{
	struct xthread *t = NULL;
	for (int i = 1; i < X_MAX_THREADS && !t; i++)
		if (!p->thread[i].live)
			t = &p->thread[i];
	if (!t)
		return -EAGAIN; /* at most X_MAX_THREADS threads */
	static _Thread_local struct cpu_state st;
	if (exec_user_state(p, &st))
		return -EIO;
	st.gpr[R_RAX] = 0;
	st.gpr[R_RSP] = stack;
	if (flags & XCLONE_SETTLS)
		st.seg[SEG_FS].base = tls;
	/* a slot's vCPU and host thread outlive its guest thread */
	t->index = (int)(t - p->thread);
	t->state_set = false;
	t->slow_user = NULL;
	t->kframe = t->iframe = NULL;
	t->clear_tid = (flags & XCLONE_CHILD_CLEARTID) ? ctid : 0;
	t->flush_seen = p->flush_gen;
	/* as Linux's clone: the caller's mask, nothing pending, no altstack */
	t->sigmask = exec_self->sigmask;
	memset(&t->pending, 0, sizeof(t->pending));
	t->notified = t->in_stub = false;
	t->ss_sp = t->ss_size = t->ss_flags = 0;
	int rc = exec_thread_vcpu(p, t, &st);
	if (rc)
		return rc;
	if (t->parked) {
		t->live = true;
		p->nlive++;
		pthread_cond_signal(&t->wake);
		return settid(p, t, flags, ptid, ctid);
	}
	pthread_cond_init(&t->wake, NULL);
	struct start start = {.t = t};
	sem_init(&start.started, 0, 0);
	the_proc = p;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	t->live = true;
	rc = pthread_create(&t->host, &attr, thread_main, &start);
	pthread_attr_destroy(&attr);
	if (rc) {
		t->live = false;
		sem_destroy(&start.started);
		return -rc;
	}
	while (sem_wait(&start.started) && errno == EINTR)
		;
	sem_destroy(&start.started);
	p->nlive++;
	return settid(p, t, flags, ptid, ctid);
}

void exec_thread_exit(struct xproc *p, int status)
{
	struct xthread *t = exec_self;
	uint32_t zero = 0;
	struct iovec iov;
	/* CLONE_CHILD_CLEARTID: the word goes to 0 and a joiner wakes */
	if (t->clear_tid && !mm_write(&p->mm, t->clear_tid, &zero, 4) &&
	    mm_iov(&p->mm, t->clear_tid, 4, true, &iov, 1) == 1)
		syscall(SYS_futex, iov.iov_base, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	if (!exec_others(p)) {
		exec_exit(p, status); /* the last thread: the program ends */
		return;
	}
	t->live = false;
	p->nlive--;
	pthread_cond_broadcast(&p->gone);
	if (t->notified)
		exec_signal_retarget(p); /* what it was to take, another thread takes */
}

void exec_single(struct xproc *p)
{
	for (int i = 0; i < X_MAX_THREADS; i++)
		if (&p->thread[i] != exec_self)
			p->thread[i].live = p->thread[i].parked = false;
	p->nlive = 1;
}

bool exec_stop_others(struct xproc *p)
{
	for (int i = 0; i < X_MAX_THREADS; i++) {
		struct xthread *t = &p->thread[i];
		if (t != exec_self && t->live) {
			t->live = false;
			p->nlive--;
		}
	}
	/* Each leaves program code or its host call (EINTR) and parks. A kick
	 * that lands just before a host call blocks is lost, so it repeats. */
	for (;;) {
		bool running = false;
		for (int i = 0; i < X_MAX_THREADS; i++) {
			struct xthread *t = &p->thread[i];
			if (t != exec_self && t->vcpu && !t->parked) {
				running = true;
				exec_kick(p, t, true);
			}
		}
		if (!running || p->exited)
			return !p->exited;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->gone, &p->lock, &ts);
	}
}
