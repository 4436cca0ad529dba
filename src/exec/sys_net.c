/* Sockets. A guest socket is a host socket: AF_INET and AF_INET6 reach the
 * host's network, AF_UNIX addresses are guest paths, resolved inside --root
 * and the binds (the host call goes to /proc/self/fd/DIR/NAME, DIR the
 * socket's directory opened there); other families fail with EAFNOSUPPORT,
 * and the host's abstract AF_UNIX namespace is not the program's (EPERM).
 * Data moves between guest pages and the socket with no bounce buffer;
 * descriptors passed with SCM_RIGHTS are translated both ways. A policy sees
 * the family, address and port of each call (exec/policy.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "exec/exec.h"

#define MAX_IOV	    256
#define MAX_CONTROL 4096
#define MAX_OPT	    256

static int64_t err_or(long rc)
{
	return rc < 0 ? -errno : rc;
}

static int sock_host(struct xproc *p, uint64_t fd)
{
	return fd_host(p, (int)fd);
}

/* A guest address, ready for the host: an AF_UNIX path becomes a path
 * through a directory descriptor (*dir, closed by the caller). */
struct xaddr {
	struct sockaddr_storage ss;
	socklen_t len;
	int dir;
};

static int addr_in(struct xproc *p, uint64_t va, uint64_t len, bool create, struct xaddr *a)
{
	a->dir = -1;
	if (len > sizeof(a->ss) || len < sizeof(sa_family_t))
		return -EINVAL;
	memset(&a->ss, 0, sizeof(a->ss));
	if (mm_read(&p->mm, va, &a->ss, len))
		return -EFAULT;
	a->len = (socklen_t)len;
	if (a->ss.ss_family != AF_UNIX || len == sizeof(sa_family_t))
		return 0; /* an IP address, or an unnamed (autobound) AF_UNIX socket */
	struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
	char path[sizeof(un->sun_path) + 1] = "", name[256];
	memcpy(path, un->sun_path, len - offsetof(struct sockaddr_un, sun_path));
	if (!path[0])
		return -EPERM; /* the host's abstract namespace */
	a->dir = fs_parent(p, AT_FDCWD, path, name, sizeof(name), create);
	if (a->dir < 0)
		return a->dir;
	int n = snprintf(un->sun_path, sizeof(un->sun_path), "/proc/self/fd/%d/%s", a->dir, name);
	if (n < 0 || (size_t)n >= sizeof(un->sun_path)) {
		close(a->dir);
		return -ENAMETOOLONG;
	}
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}

static void addr_done(struct xaddr *a)
{
	if (a->dir >= 0)
		close(a->dir);
}

/* An address the host returned, into the guest's buffer and length. */
static int addr_out(struct xproc *p, const void *ss, socklen_t len, uint64_t va, uint64_t lenp)
{
	if (!va || !lenp)
		return 0;
	uint32_t glen;
	if (mm_read(&p->mm, lenp, &glen, 4))
		return -EFAULT;
	if ((int32_t)glen < 0)
		return -EINVAL;
	if (mm_write(&p->mm, va, ss, glen < len ? glen : len) || mm_write(&p->mm, lenp, &len, 4))
		return -EFAULT;
	return 0;
}

static int64_t sys_socket(struct xproc *p, const struct xsys *s)
{
	int family = (int)s->a[0], type = (int)s->a[1];
	if (family != AF_UNIX && family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	int h = socket(family, (type & ~SOCK_CLOEXEC) | SOCK_CLOEXEC, (int)s->a[2]);
	return h < 0 ? -errno : fd_install(p, h, type & SOCK_CLOEXEC, 0);
}

static int64_t sys_socketpair(struct xproc *p, const struct xsys *s)
{
	int type = (int)s->a[1], h[2];
	if ((int)s->a[0] != AF_UNIX)
		return -EAFNOSUPPORT;
	if (socketpair(AF_UNIX, (type & ~SOCK_CLOEXEC) | SOCK_CLOEXEC, (int)s->a[2], h))
		return -errno;
	return fd_install_pair(p, h, type & SOCK_CLOEXEC, s->a[3]);
}

static int64_t connect_bind(struct xproc *p, const struct xsys *s, bool bind_)
{
	int h = sock_host(p, s->a[0]);
	if (h < 0)
		return h;
	struct xaddr a;
	int rc = addr_in(p, s->a[1], s->a[2], bind_, &a);
	if (rc)
		return rc;
	const struct sockaddr *sa = (const struct sockaddr *)&a.ss;
	exec_unlock(p);
	int64_t ret = err_or(bind_ ? bind(h, sa, a.len) : connect(h, sa, a.len));
	exec_lock(p);
	addr_done(&a);
	return ret;
}

static int64_t sys_connect(struct xproc *p, const struct xsys *s)
{
	return connect_bind(p, s, false);
}

static int64_t sys_bind(struct xproc *p, const struct xsys *s)
{
	return connect_bind(p, s, true);
}

static int64_t sys_listen(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]);
	return h < 0 ? h : err_or(listen(h, (int)s->a[1]));
}

static int64_t sys_shutdown(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]);
	return h < 0 ? h : err_or(shutdown(h, (int)s->a[1]));
}

static int64_t sys_accept4(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]), flags = (int)s->a[3];
	if (h < 0)
		return h;
	if (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK))
		return -EINVAL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	exec_unlock(p);
	int c = accept4(h, (struct sockaddr *)&ss, &len, (flags & SOCK_NONBLOCK) | SOCK_CLOEXEC);
	int e = errno;
	exec_lock(p);
	if (c < 0)
		return -e;
	int fd = fd_install(p, c, flags & SOCK_CLOEXEC, 0);
	if (fd >= 0 && addr_out(p, &ss, len, s->a[1], s->a[2])) {
		fd_close(p, fd);
		return -EFAULT;
	}
	return fd;
}

static int64_t sys_accept(struct xproc *p, const struct xsys *s)
{
	struct xsys t = {s->nr, {s->a[0], s->a[1], s->a[2], 0}};
	return sys_accept4(p, &t);
}

static int64_t name_call(struct xproc *p, const struct xsys *s, bool peer)
{
	int h = sock_host(p, s->a[0]);
	if (h < 0)
		return h;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if ((peer ? getpeername : getsockname)(h, (struct sockaddr *)&ss, &len))
		return -errno;
	return addr_out(p, &ss, len, s->a[1], s->a[2]);
}

static int64_t sys_getsockname(struct xproc *p, const struct xsys *s)
{
	return name_call(p, s, false);
}

static int64_t sys_getpeername(struct xproc *p, const struct xsys *s)
{
	return name_call(p, s, true);
}

/* Options that carry a pointer or a descriptor: the host would read its own
 * memory or descriptor table, not the program's. */
static bool opt_refused(int level, int name)
{
	return level == SOL_SOCKET &&
	       (name == SO_ATTACH_FILTER || name == SO_ATTACH_BPF ||
		name == SO_ATTACH_REUSEPORT_CBPF || name == SO_ATTACH_REUSEPORT_EBPF);
}

static int64_t sys_setsockopt(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]), level = (int)s->a[1], name = (int)s->a[2];
	uint8_t val[MAX_OPT];
	if (h < 0)
		return h;
	if (opt_refused(level, name))
		return -ENOPROTOOPT;
	if (s->a[4] > sizeof(val))
		return -EINVAL;
	if (mm_read(&p->mm, s->a[3], val, s->a[4]))
		return -EFAULT;
	return err_or(setsockopt(h, level, name, val, (socklen_t)s->a[4]));
}

static int64_t sys_getsockopt(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]);
	uint8_t val[MAX_OPT];
	uint32_t glen;
	if (h < 0)
		return h;
	if (mm_read(&p->mm, s->a[4], &glen, 4))
		return -EFAULT;
	socklen_t len = glen > sizeof(val) ? sizeof(val) : glen;
	if (getsockopt(h, (int)s->a[1], (int)s->a[2], val, &len))
		return -errno;
	if (mm_write(&p->mm, s->a[3], val, len) || mm_write(&p->mm, s->a[4], &len, 4))
		return -EFAULT;
	return 0;
}

/* SCM_RIGHTS descriptors in a control buffer, guest → host (out) or host →
 * guest (installed, in). Other messages pass as they are. */
static int rights(struct xproc *p, struct msghdr *m, bool out, int flags)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int *fd = (int *)CMSG_DATA(c);
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int t = out ? fd_host(p, fd[i])
				    : fd_install(p, fd[i], flags & MSG_CMSG_CLOEXEC, 0);
			if (t < 0 && out)
				return -EBADF;
			fd[i] = t;
		}
	}
	return 0;
}

struct xmsg {
	struct msghdr m;
	struct iovec iov[MAX_IOV];
	struct xaddr a;
	uint8_t control[MAX_CONTROL] __attribute__((aligned(8)));
	struct msghdr g; /* the guest's */
};

/* Data from a guest buffer (buf, len) or a guest msghdr (msg). */
static int msg_in(struct xproc *p, struct xmsg *x, uint64_t msg, uint64_t buf, uint64_t len,
		  bool to_guest)
{
	memset(&x->m, 0, sizeof(x->m));
	x->a.dir = -1;
	int n;
	if (!msg) {
		n = len ? mm_iov(&p->mm, buf, len > (16u << 20) ? 16u << 20 : len, to_guest, x->iov,
				 MAX_IOV)
			: 0;
	} else {
		if (mm_read(&p->mm, msg, &x->g, sizeof(x->g)))
			return -EFAULT;
		n = mm_iovec(&p->mm, (uint64_t)(uintptr_t)x->g.msg_iov, x->g.msg_iovlen, to_guest,
			     x->iov, MAX_IOV);
		if (x->g.msg_controllen > MAX_CONTROL)
			return -ENOBUFS;
		x->m.msg_controllen = x->g.msg_controllen;
		x->m.msg_control = x->m.msg_controllen ? x->control : NULL;
		if (!to_guest && x->m.msg_controllen &&
		    (mm_read(&p->mm, (uint64_t)(uintptr_t)x->g.msg_control, x->control,
			     x->m.msg_controllen) ||
		     rights(p, &x->m, true, 0)))
			return -EFAULT;
	}
	if (n < 0)
		return n;
	x->m.msg_iov = x->iov;
	x->m.msg_iovlen = (size_t)n;
	return 0;
}

static int64_t send_call(struct xproc *p, int h, struct xmsg *x, uint64_t addr, uint64_t alen,
			 int flags)
{
	if (addr) {
		int rc = addr_in(p, addr, alen, false, &x->a);
		if (rc)
			return rc;
		x->m.msg_name = &x->a.ss;
		x->m.msg_namelen = x->a.len;
	}
	exec_unlock(p);
	int64_t ret = err_or(sendmsg(h, &x->m, flags | MSG_NOSIGNAL));
	exec_lock(p);
	addr_done(&x->a);
	return ret;
}

static _Thread_local struct xmsg msgbuf; /* large; one call at a time */

static int64_t sys_sendto(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]);
	if (h < 0)
		return h;
	int rc = msg_in(p, &msgbuf, 0, s->a[1], s->a[2], false);
	return rc ? rc : send_call(p, h, &msgbuf, s->a[4], s->a[5], (int)s->a[3]);
}

static int64_t sys_sendmsg(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]);
	if (h < 0)
		return h;
	struct xmsg *x = &msgbuf;
	int rc = msg_in(p, x, s->a[1], 0, 0, false);
	return rc ? rc
		  : send_call(p, h, x, (uint64_t)(uintptr_t)x->g.msg_name, x->g.msg_namelen,
			      (int)s->a[2]);
}

static int64_t recv_call(struct xproc *p, int h, struct xmsg *x, int flags)
{
	struct sockaddr_storage ss;
	x->m.msg_name = &ss;
	x->m.msg_namelen = sizeof(ss);
	exec_unlock(p);
	ssize_t n = recvmsg(h, &x->m, flags | MSG_CMSG_CLOEXEC);
	int e = errno;
	exec_lock(p);
	if (n < 0)
		return -e;
	if (x->m.msg_controllen)
		rights(p, &x->m, false, flags);
	return n;
}

static int64_t sys_recvfrom(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]);
	if (h < 0)
		return h;
	int rc = msg_in(p, &msgbuf, 0, s->a[1], s->a[2], true);
	if (rc)
		return rc;
	int64_t n = recv_call(p, h, &msgbuf, (int)s->a[3] & ~MSG_CMSG_CLOEXEC);
	if (n >= 0 && addr_out(p, msgbuf.m.msg_name, msgbuf.m.msg_namelen, s->a[4], s->a[5]))
		return -EFAULT;
	return n;
}

static int64_t sys_recvmsg(struct xproc *p, const struct xsys *s)
{
	int h = sock_host(p, s->a[0]);
	if (h < 0)
		return h;
	struct xmsg *x = &msgbuf;
	int rc = msg_in(p, x, s->a[1], 0, 0, true);
	if (rc)
		return rc;
	int64_t n = recv_call(p, h, x, (int)s->a[2]);
	if (n < 0)
		return n;
	struct msghdr *g = &x->g;
	socklen_t nl = x->m.msg_namelen < g->msg_namelen ? x->m.msg_namelen : g->msg_namelen;
	if ((g->msg_name &&
	     mm_write(&p->mm, (uint64_t)(uintptr_t)g->msg_name, x->m.msg_name, nl)) ||
	    (x->m.msg_controllen && mm_write(&p->mm, (uint64_t)(uintptr_t)g->msg_control,
					     x->control, x->m.msg_controllen)))
		return -EFAULT;
	g->msg_namelen = g->msg_name ? x->m.msg_namelen : 0;
	g->msg_controllen = x->m.msg_controllen;
	g->msg_flags = x->m.msg_flags;
	return mm_write(&p->mm, s->a[1], g, sizeof(*g)) ? -EFAULT : n;
}

void sys_net_table(struct sys_entry *t)
{
	t[SYS_socket] = (struct sys_entry){"socket", sys_socket, "fxi"};
	t[SYS_socketpair] = (struct sys_entry){"socketpair", sys_socketpair, "fxip"};
	t[SYS_connect] = (struct sys_entry){"connect", sys_connect, "iai"};
	t[SYS_bind] = (struct sys_entry){"bind", sys_bind, "iai"};
	t[SYS_listen] = (struct sys_entry){"listen", sys_listen, "ii"};
	t[SYS_accept] = (struct sys_entry){"accept", sys_accept, "ipp"};
	t[SYS_accept4] = (struct sys_entry){"accept4", sys_accept4, "ippx"};
	t[SYS_shutdown] = (struct sys_entry){"shutdown", sys_shutdown, "ii"};
	t[SYS_getsockname] = (struct sys_entry){"getsockname", sys_getsockname, "ipp"};
	t[SYS_getpeername] = (struct sys_entry){"getpeername", sys_getpeername, "ipp"};
	t[SYS_setsockopt] = (struct sys_entry){"setsockopt", sys_setsockopt, "iiipi"};
	t[SYS_getsockopt] = (struct sys_entry){"getsockopt", sys_getsockopt, "iiipp"};
	t[SYS_sendto] = (struct sys_entry){"sendto", sys_sendto, "ipixai"};
	t[SYS_recvfrom] = (struct sys_entry){"recvfrom", sys_recvfrom, "ipixpp"};
	t[SYS_sendmsg] = (struct sys_entry){"sendmsg", sys_sendmsg, "imx"};
	t[SYS_recvmsg] = (struct sys_entry){"recvmsg", sys_recvmsg, "ipx"};
}
