/* Waiting for descriptors: poll, ppoll, select, pselect6, epoll and eventfd.
 * Each guest descriptor is its host descriptor underneath, so the host's
 * poll and epoll do the waiting; select becomes a poll (a host descriptor
 * may lie past FD_SETSIZE). epoll keeps the guest's 64-bit data, so what a
 * wait returns needs no translation. Each wait ends on a signal for the
 * thread with EINTR, and the masks of ppoll, pselect6 and epoll_pwait are
 * the thread's while they wait (docs/exec.md). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec/exec.h"

#define MAX_POLL 1024

static int64_t err_or(long rc)
{
	return rc < 0 ? -errno : rc;
}

/* Wait on n guest pollfds g (changed in place); timeout as ppoll's. */
static int64_t poll_guest(struct xproc *p, struct pollfd *g, uint64_t n, const struct timespec *ts)
{
	static _Thread_local struct pollfd h[MAX_POLL];
	for (uint64_t i = 0; i < n; i++) {
		h[i] = g[i];
		/* a guest fd with no host one is polled as none and reported POLLNVAL */
		h[i].fd = g[i].fd < 0 || fd_host(p, g[i].fd) < 0 ? -1 : fd_host(p, g[i].fd);
	}
	sigset_t old;
	int rc = -1, e = EINTR;
	if (exec_wait_begin(p, &old)) {
		exec_unlock(p);
		rc = ppoll(h, n, ts, &old);
		e = errno;
		exec_lock(p);
	}
	exec_wait_end(&old);
	if (rc < 0)
		return -e;
	for (uint64_t i = 0; i < n; i++) {
		g[i].revents = h[i].revents;
		if (g[i].fd >= 0 && fd_host(p, g[i].fd) < 0) {
			g[i].revents = POLLNVAL;
			rc++;
		}
	}
	return rc;
}

static int64_t poll_call(struct xproc *p, uint64_t va, uint64_t n, const struct timespec *ts)
{
	static _Thread_local struct pollfd g[MAX_POLL];
	if (n > MAX_POLL)
		return -EINVAL;
	if (mm_read(&p->mm, va, g, n * sizeof(g[0])))
		return -EFAULT;
	int64_t rc = poll_guest(p, g, n, ts);
	if (rc >= 0 && mm_write(&p->mm, va, g, n * sizeof(g[0])))
		return -EFAULT;
	return rc;
}

/* A guest timespec at va (NULL: wait for ever); -EFAULT, -EINVAL. */
static int read_ts(struct xproc *p, uint64_t va, struct timespec *ts, struct timespec **out)
{
	*out = NULL;
	if (!va)
		return 0;
	if (mm_read(&p->mm, va, ts, sizeof(*ts)))
		return -EFAULT;
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
		return -EINVAL;
	*out = ts;
	return 0;
}

static int64_t sys_poll(struct xproc *p, const struct xsys *s)
{
	int ms = (int)s->a[2];
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	return poll_call(p, s->a[0], s->a[1], ms < 0 ? NULL : &ts);
}

static int64_t sys_ppoll(struct xproc *p, const struct xsys *s)
{
	struct timespec ts, *t;
	int rc = read_ts(p, s->a[2], &ts, &t);
	if (!rc)
		rc = exec_call_mask(p, s->a[3], s->a[4]);
	return rc ? rc : poll_call(p, s->a[0], s->a[1], t);
}

/* select's three sets as one poll; the sets are rewritten with what is ready. */
static int64_t select_call(struct xproc *p, const struct xsys *s, const struct timespec *ts)
{
	static _Thread_local struct pollfd g[MAX_POLL];
	uint64_t set[3][MAX_POLL / 64] = {{0}};
	uint64_t nfds = s->a[0];
	if ((int64_t)nfds < 0 || nfds > MAX_POLL)
		return -EINVAL;
	size_t bytes = (nfds + 63) / 64 * 8;
	for (int k = 0; k < 3; k++)
		if (s->a[1 + k] && mm_read(&p->mm, s->a[1 + k], set[k], bytes))
			return -EFAULT;
	static const short ev[3] = {POLLIN, POLLOUT, POLLPRI};
	uint64_t n = 0;
	for (uint64_t fd = 0; fd < nfds; fd++) {
		short want = 0;
		for (int k = 0; k < 3; k++)
			if (set[k][fd / 64] >> (fd % 64) & 1)
				want |= ev[k];
		if (!want)
			continue;
		if (fd_host(p, (int)fd) < 0)
			return -EBADF;
		g[n++] = (struct pollfd){.fd = (int)fd, .events = want};
	}
	int64_t rc = poll_guest(p, g, n, ts);
	if (rc < 0)
		return rc;
	memset(set, 0, sizeof(set));
	rc = 0;
	for (uint64_t i = 0; i < n; i++) {
		short got = g[i].revents;
		/* as Linux: hang-up and error count as readable and writable */
		short ready[3] = {got & (POLLIN | POLLHUP | POLLERR), got & (POLLOUT | POLLERR),
				  got & POLLPRI};
		for (int k = 0; k < 3; k++)
			if (ready[k] && (g[i].events & ev[k])) {
				set[k][g[i].fd / 64] |= 1ull << (g[i].fd % 64);
				rc++;
			}
	}
	for (int k = 0; k < 3; k++)
		if (s->a[1 + k] && mm_write(&p->mm, s->a[1 + k], set[k], bytes))
			return -EFAULT;
	return rc;
}

static int64_t sys_select(struct xproc *p, const struct xsys *s)
{
	struct timespec ts, *t = NULL;
	if (s->a[4]) {
		struct timeval tv;
		if (mm_read(&p->mm, s->a[4], &tv, sizeof(tv)))
			return -EFAULT;
		if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000)
			return -EINVAL;
		ts = (struct timespec){tv.tv_sec, tv.tv_usec * 1000};
		t = &ts;
	}
	return select_call(p, s, t);
}

static int64_t sys_pselect6(struct xproc *p, const struct xsys *s)
{
	struct timespec ts, *t;
	uint64_t sig[2] = {0, 0}; /* the sigset pointer and its size */
	int rc = read_ts(p, s->a[4], &ts, &t);
	if (!rc && s->a[5] && mm_read(&p->mm, s->a[5], sig, sizeof(sig)))
		rc = -EFAULT;
	if (!rc)
		rc = exec_call_mask(p, sig[0], sig[1]);
	return rc ? rc : select_call(p, s, t);
}

static int64_t sys_epoll_create1(struct xproc *p, const struct xsys *s)
{
	if (s->a[0] & ~(uint64_t)EPOLL_CLOEXEC)
		return -EINVAL;
	int h = epoll_create1(EPOLL_CLOEXEC);
	return h < 0 ? -errno : fd_install(p, h, s->a[0] & EPOLL_CLOEXEC, 0);
}

static int64_t sys_epoll_create(struct xproc *p, const struct xsys *s)
{
	if ((int)s->a[0] <= 0)
		return -EINVAL;
	struct xsys t = {s->nr, {0}};
	return sys_epoll_create1(p, &t);
}

static int64_t sys_epoll_ctl(struct xproc *p, const struct xsys *s)
{
	int ep = fd_host(p, (int)s->a[0]), h = fd_host(p, (int)s->a[2]);
	if (ep < 0 || h < 0)
		return -EBADF;
	struct epoll_event ev = {0};
	if ((int)s->a[1] != EPOLL_CTL_DEL && mm_read(&p->mm, s->a[3], &ev, sizeof(ev)))
		return -EFAULT;
	return err_or(epoll_ctl(ep, (int)s->a[1], h, &ev));
}

static int64_t epoll_wait_call(struct xproc *p, const struct xsys *s)
{
	static _Thread_local struct epoll_event ev[MAX_POLL];
	int ep = fd_host(p, (int)s->a[0]), n = (int)s->a[2];
	if (ep < 0)
		return -EBADF;
	if (n <= 0 || n > MAX_POLL)
		return n <= 0 ? -EINVAL : -ENOMEM;
	int rc = s->nr == SYS_epoll_pwait ? exec_call_mask(p, s->a[4], s->a[5]) : 0;
	if (rc)
		return rc;
	sigset_t old;
	int e = EINTR;
	rc = -1;
	if (exec_wait_begin(p, &old)) {
		exec_unlock(p);
		rc = epoll_pwait(ep, ev, n, (int)s->a[3], &old);
		e = errno;
		exec_lock(p);
	}
	exec_wait_end(&old);
	if (rc < 0)
		return -e;
	return mm_write(&p->mm, s->a[1], ev, (size_t)rc * sizeof(ev[0])) ? -EFAULT : rc;
}

static int64_t sys_eventfd2(struct xproc *p, const struct xsys *s)
{
	if (s->a[1] & ~(uint64_t)(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE))
		return -EINVAL;
	int h = eventfd((unsigned)s->a[0], (int)(s->a[1] & ~(uint64_t)EFD_CLOEXEC) | EFD_CLOEXEC);
	return h < 0 ? -errno : fd_install(p, h, s->a[1] & EFD_CLOEXEC, 0);
}

static int64_t sys_eventfd(struct xproc *p, const struct xsys *s)
{
	struct xsys t = {s->nr, {s->a[0], 0}};
	return sys_eventfd2(p, &t);
}

void sys_poll_table(struct sys_entry *t)
{
	t[SYS_poll] = (struct sys_entry){"poll", sys_poll, "pii"};
	t[SYS_ppoll] = (struct sys_entry){"ppoll", sys_ppoll, "pippi"};
	t[SYS_select] = (struct sys_entry){"select", sys_select, "ipppp"};
	t[SYS_pselect6] = (struct sys_entry){"pselect6", sys_pselect6, "ipppp"};
	t[SYS_epoll_create] = (struct sys_entry){"epoll_create", sys_epoll_create, "i"};
	t[SYS_epoll_create1] = (struct sys_entry){"epoll_create1", sys_epoll_create1, "x"};
	t[SYS_epoll_ctl] = (struct sys_entry){"epoll_ctl", sys_epoll_ctl, "iiip"};
	t[SYS_epoll_wait] = (struct sys_entry){"epoll_wait", epoll_wait_call, "ipii"};
	t[SYS_epoll_pwait] = (struct sys_entry){"epoll_pwait", epoll_wait_call, "ipiipi"};
	t[SYS_eventfd] = (struct sys_entry){"eventfd", sys_eventfd, "i"};
	t[SYS_eventfd2] = (struct sys_entry){"eventfd2", sys_eventfd2, "ix"};
}
