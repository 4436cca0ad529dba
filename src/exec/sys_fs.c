/* File system calls: descriptors, I/O, metadata, directories. Paths go
 * through fs.c (inside --root, writes only in rw binds); data moves between
 * the host file and guest pages with no bounce buffer (iovecs of the guest
 * frames, mm_iov). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "exec/exec.h"

#define MAX_IOV	 256
#define MAX_XFER (16u << 20) /* a longer read or write is short, as Linux allows */

static int64_t err_or(long rc)
{
	return rc < 0 ? -errno : rc;
}

/* A guest buffer as host iovecs. */
static int buf_iov(struct xproc *p, uint64_t va, uint64_t len, bool write, struct iovec *iov)
{
	if (len > MAX_XFER)
		len = MAX_XFER;
	if (!len)
		return 0;
	return mm_iov(&p->mm, va, len, write, iov, MAX_IOV);
}

/* read/write/pread/pwrite: off < 0 means the file position. */
static int64_t xfer(struct xproc *p, int fd, uint64_t va, uint64_t len, bool to_guest, int64_t off)
{
	int h = fd_host(p, fd);
	if (h < 0)
		return h;
	struct iovec iov[MAX_IOV];
	int n = buf_iov(p, va, len, to_guest, iov);
	if (n < 0)
		return n;
	exec_unlock(p);
	ssize_t r = to_guest ? (off < 0 ? readv(h, iov, n) : preadv(h, iov, n, off))
			     : (off < 0 ? writev(h, iov, n) : pwritev(h, iov, n, off));
	int64_t rc = err_or(r);
	exec_lock(p);
	return rc;
}

static int64_t sys_read(struct xproc *p, const struct xsys *s)
{
	return xfer(p, (int)s->a[0], s->a[1], s->a[2], true, -1);
}

static int64_t sys_write(struct xproc *p, const struct xsys *s)
{
	return xfer(p, (int)s->a[0], s->a[1], s->a[2], false, -1);
}

static int64_t sys_pread(struct xproc *p, const struct xsys *s)
{
	if ((int64_t)s->a[3] < 0)
		return -EINVAL;
	return xfer(p, (int)s->a[0], s->a[1], s->a[2], true, (int64_t)s->a[3]);
}

static int64_t sys_pwrite(struct xproc *p, const struct xsys *s)
{
	if ((int64_t)s->a[3] < 0)
		return -EINVAL;
	return xfer(p, (int)s->a[0], s->a[1], s->a[2], false, (int64_t)s->a[3]);
}

/* readv/writev: the guest's iovec array, each entry as host pieces. */
static int64_t vec(struct xproc *p, const struct xsys *s, bool to_guest)
{
	int h = fd_host(p, (int)s->a[0]);
	if (h < 0)
		return h;
	struct iovec iov[MAX_IOV];
	int n = mm_iovec(&p->mm, s->a[1], s->a[2], to_guest, iov, MAX_IOV);
	if (n < 0)
		return n;
	exec_unlock(p);
	int64_t rc = err_or(to_guest ? readv(h, iov, n) : writev(h, iov, n));
	exec_lock(p);
	return rc;
}

static int64_t sys_readv(struct xproc *p, const struct xsys *s)
{
	return vec(p, s, true);
}

static int64_t sys_writev(struct xproc *p, const struct xsys *s)
{
	return vec(p, s, false);
}

static int read_path(struct xproc *p, uint64_t va, char *buf)
{
	return mm_read_str(&p->mm, va, buf, 4096);
}

static int64_t do_open(struct xproc *p, int dirfd, uint64_t path_va, int flags, unsigned mode)
{
	char path[4096], g[4096];
	const char *rest;
	int rc = read_path(p, path_va, path);
	if (rc)
		return rc;
	bool proc =
	    (rc = fs_resolve(p, dirfd, path, g, sizeof(g))) == -ENOENT && proc_self(g, &rest);
	if (rc && !proc)
		return rc;
	int h = fs_open(p, dirfd, path, flags & ~O_CLOEXEC, mode & ~p->umask, false);
	if (h < 0)
		return h;
	int fd = fd_install(p, h, flags & O_CLOEXEC, 0);
	if (fd >= 0) {
		p->fd[fd].path = strdup(g);
		if (proc && !strcmp(rest, "fd") && !(flags & O_PATH) &&
		    proc_listing(p, &p->fd[fd].dents, &p->fd[fd].ndents)) {
			fd_close(p, fd);
			return -ENOMEM;
		}
	}
	return fd;
}

static int64_t sys_open(struct xproc *p, const struct xsys *s)
{
	return do_open(p, AT_FDCWD, s->a[0], (int)s->a[1], (unsigned)s->a[2]);
}

static int64_t sys_openat(struct xproc *p, const struct xsys *s)
{
	return do_open(p, (int)s->a[0], s->a[1], (int)s->a[2], (unsigned)s->a[3]);
}

static int64_t sys_creat(struct xproc *p, const struct xsys *s)
{
	return do_open(p, AT_FDCWD, s->a[0], O_CREAT | O_WRONLY | O_TRUNC, (unsigned)s->a[1]);
}

static int64_t sys_close(struct xproc *p, const struct xsys *s)
{
	return fd_close(p, (int)s->a[0]);
}

static int64_t sys_close_range(struct xproc *p, const struct xsys *s)
{
	for (uint64_t fd = s->a[0]; fd <= s->a[1] && fd < X_MAX_FDS; fd++)
		fd_close(p, (int)fd);
	return 0;
}

static int64_t sys_lseek(struct xproc *p, const struct xsys *s)
{
	int h = fd_host(p, (int)s->a[0]);
	return h < 0 ? h : err_or(lseek(h, (off_t)s->a[1], (int)s->a[2]));
}

/* A host O_PATH descriptor for a stat-like call on dirfd/path. */
static int path_fd(struct xproc *p, int dirfd, uint64_t path_va, int atflags, bool *own)
{
	char path[4096];
	*own = false; /* also when the path cannot be read: callers pass it on */
	int rc = read_path(p, path_va, path);
	if (rc)
		return rc;
	if (!*path && (atflags & AT_EMPTY_PATH))
		return dirfd == AT_FDCWD ? fs_open(p, AT_FDCWD, ".", O_PATH, 0, false)
					 : fd_host(p, dirfd);
	*own = true;
	return fs_open(p, dirfd, path, O_PATH | ((atflags & AT_SYMLINK_NOFOLLOW) ? O_NOFOLLOW : 0),
		       0, false);
}

enum meta { META_STAT, META_STATX, META_STATFS };

/* One metadata query on host descriptor h (closed if own), copied out. */
static int64_t meta_out(struct xproc *p, int h, bool own, enum meta kind, unsigned mask,
			uint64_t out)
{
	if (h < 0)
		return h;
	union {
		struct stat st;
		struct statx sx;
		struct statfs sf;
	} u;
	size_t n = kind == META_STAT	? sizeof(u.st)
		   : kind == META_STATX ? sizeof(u.sx)
					: sizeof(u.sf);
	int rc = kind == META_STAT    ? fstatat(h, "", &u.st, AT_EMPTY_PATH)
		 : kind == META_STATX ? statx(h, "", AT_EMPTY_PATH, mask, &u.sx)
				      : fstatfs(h, &u.sf);
	rc = rc ? -errno : 0;
	if (own)
		close(h);
	if (!rc && mm_write(&p->mm, out, &u, n))
		rc = -EFAULT;
	return rc;
}

static int64_t stat_out(struct xproc *p, int h, bool own, uint64_t out)
{
	return meta_out(p, h, own, META_STAT, 0, out);
}

static int64_t sys_stat(struct xproc *p, const struct xsys *s)
{
	bool own;
	int h = path_fd(p, AT_FDCWD, s->a[0], 0, &own);
	return stat_out(p, h, own, s->a[1]);
}

static int64_t sys_lstat(struct xproc *p, const struct xsys *s)
{
	bool own;
	int h = path_fd(p, AT_FDCWD, s->a[0], AT_SYMLINK_NOFOLLOW, &own);
	return stat_out(p, h, own, s->a[1]);
}

static int64_t sys_fstat(struct xproc *p, const struct xsys *s)
{
	return stat_out(p, fd_host(p, (int)s->a[0]), false, s->a[1]);
}

static int64_t sys_newfstatat(struct xproc *p, const struct xsys *s)
{
	bool own;
	int h = path_fd(p, (int)s->a[0], s->a[1], (int)s->a[3], &own);
	return stat_out(p, h, own, s->a[2]);
}

static int64_t sys_statx(struct xproc *p, const struct xsys *s)
{
	bool own;
	int h = path_fd(p, (int)s->a[0], s->a[1], (int)s->a[2], &own);
	return meta_out(p, h, own, META_STATX, (unsigned)s->a[3], s->a[4]);
}

static int64_t sys_statfs(struct xproc *p, const struct xsys *s)
{
	bool own;
	int h = path_fd(p, AT_FDCWD, s->a[0], 0, &own);
	return meta_out(p, h, own, META_STATFS, 0, s->a[1]);
}

static int64_t sys_fstatfs(struct xproc *p, const struct xsys *s)
{
	return meta_out(p, fd_host(p, (int)s->a[0]), false, META_STATFS, 0, s->a[1]);
}

static int64_t sys_getdents64(struct xproc *p, const struct xsys *s)
{
	int h = fd_host(p, (int)s->a[0]);
	if (h < 0)
		return h;
	char buf[65536];
	size_t n = s->a[2] < sizeof(buf) ? s->a[2] : sizeof(buf);
	long got;
	struct xfd *x = &p->fd[s->a[0]];
	if (x->dents) { /* a /proc/self listing: the whole records that fit */
		got = 0;
		const char *d = x->dents + x->dents_at;
		size_t left = x->ndents - x->dents_at;
		while ((size_t)got + 19 <= left) {
			uint16_t reclen;
			memcpy(&reclen, d + got + 16, 2);
			if ((size_t)got + reclen > left || (size_t)got + reclen > n)
				break;
			got += reclen;
		}
		if (!got && left)
			return -EINVAL; /* the buffer holds no record */
		memcpy(buf, d, (size_t)got);
		x->dents_at += (size_t)got;
	} else if ((got = syscall(SYS_getdents64, h, buf, n)) < 0) {
		return -errno;
	}
	return mm_write(&p->mm, s->a[1], buf, (size_t)got) ? -EFAULT : got;
}

static int64_t readlink_at(struct xproc *p, int dirfd, uint64_t path_va, uint64_t buf,
			   uint64_t size)
{
	char path[4096], target[4096];
	int rc = read_path(p, path_va, path);
	if (rc)
		return rc;
	if ((int64_t)size <= 0)
		return -EINVAL;
	ssize_t n;
	char g[4096];
	const char *rest;
	if (fs_resolve(p, dirfd, path, g, sizeof(g)) == -ENOENT && proc_self(g, &rest)) {
		if ((n = proc_readlink(p, rest, target, sizeof(target))) < 0)
			return n;
	} else {
		int h = fs_open(p, dirfd, path, O_PATH | O_NOFOLLOW, 0, false);
		if (h < 0)
			return h;
		n = readlinkat(h, "", target, sizeof(target));
		rc = n < 0 ? -errno : 0;
		close(h);
		if (rc)
			return rc;
	}
	if ((uint64_t)n > size)
		n = (ssize_t)size;
	return mm_write(&p->mm, buf, target, (size_t)n) ? -EFAULT : n;
}

static int64_t sys_readlink(struct xproc *p, const struct xsys *s)
{
	return readlink_at(p, AT_FDCWD, s->a[0], s->a[1], s->a[2]);
}

static int64_t sys_readlinkat(struct xproc *p, const struct xsys *s)
{
	return readlink_at(p, (int)s->a[0], s->a[1], s->a[2], s->a[3]);
}

static int64_t access_at(struct xproc *p, int dirfd, uint64_t path_va, int mode, int flags)
{
	bool own;
	int h = path_fd(p, dirfd, path_va, flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), &own);
	if (h < 0)
		return h;
	int rc = syscall(SYS_faccessat2, h, "", mode, AT_EMPTY_PATH) ? -errno : 0;
	if (own)
		close(h);
	return rc;
}

static int64_t sys_access(struct xproc *p, const struct xsys *s)
{
	return access_at(p, AT_FDCWD, s->a[0], (int)s->a[1], 0);
}

static int64_t sys_faccessat(struct xproc *p, const struct xsys *s)
{
	return access_at(p, (int)s->a[0], s->a[1], (int)s->a[2], 0);
}

static int64_t sys_faccessat2(struct xproc *p, const struct xsys *s)
{
	return access_at(p, (int)s->a[0], s->a[1], (int)s->a[2], (int)s->a[3]);
}

static int64_t dup_to(struct xproc *p, int old, int min, bool cloexec)
{
	int h = fd_host(p, old);
	if (h < 0)
		return h;
	int nh = fcntl(h, F_DUPFD_CLOEXEC, 3);
	if (nh < 0)
		return -errno;
	int fd = fd_install(p, nh, cloexec, min);
	if (fd >= 0 && p->fd[old].path)
		p->fd[fd].path = strdup(p->fd[old].path);
	return fd;
}

static int64_t sys_dup(struct xproc *p, const struct xsys *s)
{
	return dup_to(p, (int)s->a[0], 0, false);
}

static int64_t dup3_(struct xproc *p, int old, int new, bool cloexec)
{
	if (fd_host(p, old) < 0)
		return -EBADF;
	if (new < 0 || new >= X_MAX_FDS)
		return -EBADF;
	if (old == new)
		return new;
	fd_close(p, new);
	return dup_to(p, old, new, cloexec);
}

static int64_t sys_dup2(struct xproc *p, const struct xsys *s)
{
	if ((int)s->a[0] == (int)s->a[1])
		return fd_host(p, (int)s->a[0]) < 0 ? -EBADF : (int64_t)s->a[1];
	return dup3_(p, (int)s->a[0], (int)s->a[1], false);
}

static int64_t sys_dup3(struct xproc *p, const struct xsys *s)
{
	if ((int)s->a[0] == (int)s->a[1] || (s->a[2] & ~(uint64_t)O_CLOEXEC))
		return -EINVAL;
	return dup3_(p, (int)s->a[0], (int)s->a[1], s->a[2] & O_CLOEXEC);
}

static int64_t sys_fcntl(struct xproc *p, const struct xsys *s)
{
	int fd = (int)s->a[0], h = fd_host(p, fd);
	if (h < 0)
		return h;
	switch ((int)s->a[1]) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		if (s->a[2] >= X_MAX_FDS)
			return -EINVAL;
		return dup_to(p, fd, (int)s->a[2], (int)s->a[1] == F_DUPFD_CLOEXEC);
	case F_GETFD:
		return p->fd[fd].cloexec ? FD_CLOEXEC : 0;
	case F_SETFD:
		p->fd[fd].cloexec = s->a[2] & FD_CLOEXEC;
		return 0;
	case F_GETFL:
		return err_or(fcntl(h, F_GETFL));
	case F_SETFL:
		return err_or(fcntl(h, F_SETFL, (int)s->a[2]));
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
		return 0; /* one process: no one to conflict with */
	default:
		return -EINVAL;
	}
}

/* Terminal ioctls only, with the argument size each one moves. */
static const struct {
	unsigned long req;
	size_t size;
	bool out;
} ioctls[] = {
    {TCGETS, sizeof(struct termios), true},
    {TCSETS, sizeof(struct termios), false},
    {TCSETSW, sizeof(struct termios), false},
    {TCSETSF, sizeof(struct termios), false},
    {TIOCGWINSZ, sizeof(struct winsize), true},
    {TIOCGPGRP, sizeof(int), true},
    {FIONREAD, sizeof(int), true},
    {FIONBIO, sizeof(int), false},
};

static int64_t sys_ioctl(struct xproc *p, const struct xsys *s)
{
	int h = fd_host(p, (int)s->a[0]);
	if (h < 0)
		return h;
	for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
		if (ioctls[i].req != s->a[1])
			continue;
		uint8_t arg[64];
		if (!ioctls[i].out && mm_read(&p->mm, s->a[2], arg, ioctls[i].size))
			return -EFAULT;
		if (ioctl(h, ioctls[i].req, arg) < 0)
			return -errno;
		if (ioctls[i].out && mm_write(&p->mm, s->a[2], arg, ioctls[i].size))
			return -EFAULT;
		return 0;
	}
	return -ENOTTY;
}

static int64_t sys_pipe2(struct xproc *p, const struct xsys *s)
{
	int fds[2];
	if (s->a[1] & ~(uint64_t)(O_CLOEXEC | O_NONBLOCK))
		return -EINVAL;
	if (pipe2(fds, O_CLOEXEC | (int)(s->a[1] & O_NONBLOCK)))
		return -errno;
	return fd_install_pair(p, fds, s->a[1] & O_CLOEXEC, s->a[0]);
}

static int64_t sys_pipe(struct xproc *p, const struct xsys *s)
{
	struct xsys t = {s->nr, {s->a[0], 0}};
	return sys_pipe2(p, &t);
}

static int64_t sys_sendfile(struct xproc *p, const struct xsys *s)
{
	int out = fd_host(p, (int)s->a[0]), in = fd_host(p, (int)s->a[1]);
	if (out < 0 || in < 0)
		return -EBADF;
	off_t off, *po = NULL;
	if (s->a[2]) {
		if (mm_read(&p->mm, s->a[2], &off, sizeof(off)))
			return -EFAULT;
		po = &off;
	}
	ssize_t n = sendfile(out, in, po, s->a[3] > MAX_XFER ? MAX_XFER : s->a[3]);
	if (n < 0)
		return -errno;
	if (po && mm_write(&p->mm, s->a[2], &off, sizeof(off)))
		return -EFAULT;
	return n;
}

static int64_t sys_ftruncate(struct xproc *p, const struct xsys *s)
{
	int h = fd_host(p, (int)s->a[0]);
	return h < 0 ? h : err_or(ftruncate(h, (off_t)s->a[1]));
}

static int64_t sys_fsync(struct xproc *p, const struct xsys *s)
{
	int h = fd_host(p, (int)s->a[0]);
	return h < 0 ? h : err_or(fsync(h));
}

/* mkdir/unlink/rmdir/rename/utimensat: the parent inside an rw bind, then
 * the host call on the last component. */
static int open_parent(struct xproc *p, int dirfd, uint64_t path_va, char name[256])
{
	char path[4096];
	int rc = read_path(p, path_va, path);
	return rc ? rc : fs_parent(p, dirfd, path, name, 256, true);
}

static int64_t sys_mkdirat_(struct xproc *p, int dirfd, uint64_t path_va, unsigned mode)
{
	char name[256];
	int h = open_parent(p, dirfd, path_va, name), rc;
	if (h < 0)
		return h;
	rc = mkdirat(h, name, mode & ~p->umask & 07777) ? -errno : 0;
	close(h);
	return rc;
}

static int64_t sys_mkdir(struct xproc *p, const struct xsys *s)
{
	return sys_mkdirat_(p, AT_FDCWD, s->a[0], (unsigned)s->a[1]);
}

static int64_t sys_mkdirat(struct xproc *p, const struct xsys *s)
{
	return sys_mkdirat_(p, (int)s->a[0], s->a[1], (unsigned)s->a[2]);
}

static int64_t unlink_at(struct xproc *p, int dirfd, uint64_t path_va, int flags)
{
	char name[256];
	int h = open_parent(p, dirfd, path_va, name), rc;
	if (h < 0)
		return h;
	rc = unlinkat(h, name, flags & AT_REMOVEDIR) ? -errno : 0;
	close(h);
	return rc;
}

static int64_t sys_unlink(struct xproc *p, const struct xsys *s)
{
	return unlink_at(p, AT_FDCWD, s->a[0], 0);
}

static int64_t sys_rmdir(struct xproc *p, const struct xsys *s)
{
	return unlink_at(p, AT_FDCWD, s->a[0], AT_REMOVEDIR);
}

static int64_t sys_unlinkat(struct xproc *p, const struct xsys *s)
{
	return unlink_at(p, (int)s->a[0], s->a[1], (int)s->a[2]);
}

static int64_t rename_at(struct xproc *p, int od, uint64_t op, int nd, uint64_t np, unsigned fl)
{
	char a[4096], b[4096], an[256], bn[256];
	int rc = read_path(p, op, a);
	if (!rc)
		rc = read_path(p, np, b);
	if (rc)
		return rc;
	int ha = fs_parent(p, od, a, an, sizeof(an), true);
	if (ha < 0)
		return ha;
	int hb = fs_parent(p, nd, b, bn, sizeof(bn), true);
	if (hb < 0) {
		close(ha);
		return hb;
	}
	rc = renameat2(ha, an, hb, bn, fl) ? -errno : 0;
	close(ha);
	close(hb);
	return rc;
}

static int64_t sys_rename(struct xproc *p, const struct xsys *s)
{
	return rename_at(p, AT_FDCWD, s->a[0], AT_FDCWD, s->a[1], 0);
}

static int64_t sys_renameat(struct xproc *p, const struct xsys *s)
{
	return rename_at(p, (int)s->a[0], s->a[1], (int)s->a[2], s->a[3], 0);
}

static int64_t sys_renameat2(struct xproc *p, const struct xsys *s)
{
	return rename_at(p, (int)s->a[0], s->a[1], (int)s->a[2], s->a[3], (unsigned)s->a[4]);
}

static int64_t sys_utimensat(struct xproc *p, const struct xsys *s)
{
	struct timespec ts[2];
	if (s->a[2] && mm_read(&p->mm, s->a[2], ts, sizeof(ts)))
		return -EFAULT;
	if (!s->a[1]) { /* futimens */
		int h = fd_host(p, (int)s->a[0]);
		return h < 0 ? h : err_or(futimens(h, s->a[2] ? ts : NULL));
	}
	char name[256];
	int h = open_parent(p, (int)s->a[0], s->a[1], name), rc;
	if (h < 0)
		return h;
	rc = utimensat(h, name, s->a[2] ? ts : NULL, (int)s->a[3] & AT_SYMLINK_NOFOLLOW) ? -errno
											 : 0;
	close(h);
	return rc;
}

static int64_t sys_getcwd(struct xproc *p, const struct xsys *s)
{
	size_t n = strlen(p->cwd) + 1;
	if (s->a[1] < n)
		return -ERANGE;
	return mm_write(&p->mm, s->a[0], p->cwd, n) ? -EFAULT : (int64_t)n;
}

static int64_t change_dir(struct xproc *p, int dirfd, const char *path)
{
	char g[4096];
	int rc = fs_resolve(p, dirfd, path, g, sizeof(g));
	if (rc)
		return rc;
	int h = fs_open(p, dirfd, path, O_PATH | O_DIRECTORY, 0, false);
	if (h < 0)
		return h;
	close(h);
	snprintf(p->cwd, sizeof(p->cwd), "%s", g);
	return 0;
}

static int64_t sys_chdir(struct xproc *p, const struct xsys *s)
{
	char path[4096];
	int rc = read_path(p, s->a[0], path);
	return rc ? rc : change_dir(p, AT_FDCWD, path);
}

static int64_t sys_fchdir(struct xproc *p, const struct xsys *s)
{
	return change_dir(p, (int)s->a[0], ".");
}

static int64_t sys_umask(struct xproc *p, const struct xsys *s)
{
	unsigned old = p->umask;
	p->umask = (unsigned)s->a[0] & 0777;
	return old;
}

void sys_fs_table(struct sys_entry *t)
{
	t[SYS_read] = (struct sys_entry){"read", sys_read, "ipi"};
	t[SYS_write] = (struct sys_entry){"write", sys_write, "ipi"};
	t[SYS_open] = (struct sys_entry){"open", sys_open, "sxx"};
	t[SYS_close] = (struct sys_entry){"close", sys_close, "i"};
	t[SYS_stat] = (struct sys_entry){"stat", sys_stat, "sp"};
	t[SYS_fstat] = (struct sys_entry){"fstat", sys_fstat, "ip"};
	t[SYS_lstat] = (struct sys_entry){"lstat", sys_lstat, "sp"};
	t[SYS_lseek] = (struct sys_entry){"lseek", sys_lseek, "iii"};
	t[SYS_ioctl] = (struct sys_entry){"ioctl", sys_ioctl, "ixp"};
	t[SYS_pread64] = (struct sys_entry){"pread64", sys_pread, "ipii"};
	t[SYS_pwrite64] = (struct sys_entry){"pwrite64", sys_pwrite, "ipii"};
	t[SYS_readv] = (struct sys_entry){"readv", sys_readv, "ipi"};
	t[SYS_writev] = (struct sys_entry){"writev", sys_writev, "ipi"};
	t[SYS_access] = (struct sys_entry){"access", sys_access, "si"};
	t[SYS_pipe] = (struct sys_entry){"pipe", sys_pipe, "p"};
	t[SYS_dup] = (struct sys_entry){"dup", sys_dup, "i"};
	t[SYS_dup2] = (struct sys_entry){"dup2", sys_dup2, "ii"};
	t[SYS_sendfile] = (struct sys_entry){"sendfile", sys_sendfile, "iipi"};
	t[SYS_fcntl] = (struct sys_entry){"fcntl", sys_fcntl, "iix"};
	t[SYS_fsync] = (struct sys_entry){"fsync", sys_fsync, "i"};
	t[SYS_fdatasync] = (struct sys_entry){"fdatasync", sys_fsync, "i"};
	t[SYS_ftruncate] = (struct sys_entry){"ftruncate", sys_ftruncate, "ii"};
	t[SYS_getcwd] = (struct sys_entry){"getcwd", sys_getcwd, "pi"};
	t[SYS_chdir] = (struct sys_entry){"chdir", sys_chdir, "s"};
	t[SYS_fchdir] = (struct sys_entry){"fchdir", sys_fchdir, "i"};
	t[SYS_rename] = (struct sys_entry){"rename", sys_rename, "ss"};
	t[SYS_mkdir] = (struct sys_entry){"mkdir", sys_mkdir, "sx"};
	t[SYS_rmdir] = (struct sys_entry){"rmdir", sys_rmdir, "s"};
	t[SYS_creat] = (struct sys_entry){"creat", sys_creat, "sx"};
	t[SYS_unlink] = (struct sys_entry){"unlink", sys_unlink, "s"};
	t[SYS_readlink] = (struct sys_entry){"readlink", sys_readlink, "spi"};
	t[SYS_umask] = (struct sys_entry){"umask", sys_umask, "x"};
	t[SYS_statfs] = (struct sys_entry){"statfs", sys_statfs, "sp"};
	t[SYS_fstatfs] = (struct sys_entry){"fstatfs", sys_fstatfs, "ip"};
	t[SYS_getdents64] = (struct sys_entry){"getdents64", sys_getdents64, "ipi"};
	t[SYS_openat] = (struct sys_entry){"openat", sys_openat, "dsxx"};
	t[SYS_mkdirat] = (struct sys_entry){"mkdirat", sys_mkdirat, "dsx"};
	t[SYS_newfstatat] = (struct sys_entry){"newfstatat", sys_newfstatat, "dspx"};
	t[SYS_unlinkat] = (struct sys_entry){"unlinkat", sys_unlinkat, "dsx"};
	t[SYS_renameat] = (struct sys_entry){"renameat", sys_renameat, "dsds"};
	t[SYS_readlinkat] = (struct sys_entry){"readlinkat", sys_readlinkat, "dspi"};
	t[SYS_faccessat] = (struct sys_entry){"faccessat", sys_faccessat, "dsi"};
	t[SYS_dup3] = (struct sys_entry){"dup3", sys_dup3, "iix"};
	t[SYS_pipe2] = (struct sys_entry){"pipe2", sys_pipe2, "px"};
	t[SYS_renameat2] = (struct sys_entry){"renameat2", sys_renameat2, "dsdsx"};
	t[SYS_statx] = (struct sys_entry){"statx", sys_statx, "dsxxp"};
	t[SYS_close_range] = (struct sys_entry){"close_range", sys_close_range, "iix"};
	t[SYS_utimensat] = (struct sys_entry){"utimensat", sys_utimensat, "dspx"};
	t[SYS_faccessat2] = (struct sys_entry){"faccessat2", sys_faccessat2, "dsix"};
}
