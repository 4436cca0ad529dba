/* Paths and descriptors. A guest path is first normalized as text against
 * the cwd (or a directory descriptor's path), then the longest --bind whose
 * guest path prefixes it is chosen (else --root), and the rest is opened
 * with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) below that
 * directory: the kernel resolves "..", absolute and relative symlinks as if
 * that directory were "/", so no path leaves it, and /proc's magic links
 * (/proc/self/root, /proc/PID/fd/N) do not resolve at all. popek's own
 * /proc/self is not the program's, so it is hidden. Only rw binds can be
 * written; the root and other binds are read-only. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec/exec.h"

int fs_normalize(const char *base, const char *path, char *out, size_t len)
{
	char buf[8192];
	if (!*path)
		return -ENOENT;
	int n = path[0] == '/' ? snprintf(buf, sizeof(buf), "%s", path)
			       : snprintf(buf, sizeof(buf), "%s/%s", base, path);
	if (n < 0 || (size_t)n >= sizeof(buf) || len < 2)
		return -ENAMETOOLONG;
	size_t o = 0;
	out[o] = '\0';
	for (char *save, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			out[o] = '\0';
			continue;
		}
		size_t cl = strlen(c);
		if (o + 1 + cl + 1 > len)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, c, cl + 1);
		o += cl;
	}
	if (o == 0) {
		out[0] = '/';
		out[1] = '\0';
	}
	return 0;
}

static int open_dir(const char *host, char *err, size_t errlen)
{
	int fd = open(host, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		snprintf(err, errlen, "cannot open directory %s: %s — give an existing directory",
			 host, strerror(errno));
	return fd;
}

int fs_init(struct xproc *p, char *err, size_t errlen)
{
	const struct exec_options *o = p->opt;
	p->root_fd = open_dir(o->root ? o->root : "/", err, errlen);
	if (p->root_fd < 0)
		return -1;
	for (int i = 0; i < o->nbinds; i++) {
		char g[4096];
		if (o->bind[i].guest[0] != '/' ||
		    fs_normalize("/", o->bind[i].guest, g, sizeof(g))) {
			snprintf(err, errlen, "--bind %s:%s: the guest path must be absolute",
				 o->bind[i].host, o->bind[i].guest);
			return -1;
		}
		int fd = open_dir(o->bind[i].host, err, errlen);
		if (fd < 0)
			return -1;
		p->bind[i].fd = fd;
		p->bind[i].guest = strdup(g);
		p->bind[i].rw = o->bind[i].rw;
		p->nbinds++;
	}
	for (int i = 0; i < X_MAX_FDS; i++)
		p->fd[i].host = -1;
	for (int i = 0; i < 3; i++)
		p->fd[i].host = fcntl(i, F_GETFD) < 0 ? -1 : i; /* the program's stdio is popek's */
	snprintf(p->cwd, sizeof(p->cwd), "/");
	if (o->cwd && fs_normalize("/", o->cwd, p->cwd, sizeof(p->cwd))) {
		snprintf(err, errlen, "--cwd %s: path too long", o->cwd);
		return -1;
	}
	p->umask = 022;
	return 0;
}

void fs_free(struct xproc *p)
{
	for (int i = 0; i < X_MAX_FDS; i++) {
		if (p->fd[i].host > 2)
			close(p->fd[i].host);
		free(p->fd[i].path);
		free(p->fd[i].dents);
		p->fd[i].path = p->fd[i].dents = NULL;
		p->fd[i].host = -1;
	}
	for (int i = 0; i < p->nbinds; i++) {
		close(p->bind[i].fd);
		free(p->bind[i].guest);
	}
	if (p->root_fd >= 0)
		close(p->root_fd);
}

/* The base path of dirfd for *at calls. */
static int at_base(struct xproc *p, int dirfd, const char **base)
{
	if (dirfd == AT_FDCWD) {
		*base = p->cwd;
		return 0;
	}
	if (dirfd < 0 || dirfd >= X_MAX_FDS || p->fd[dirfd].host < 0)
		return -EBADF;
	if (!p->fd[dirfd].path)
		return -ENOTDIR;
	*base = p->fd[dirfd].path;
	return 0;
}

/* popek's own /proc/self (and /proc/PID for its pid) is not the program's. */
static bool hidden(const char *g)
{
	char own[32];
	snprintf(own, sizeof(own), "/proc/%d", (int)getpid());
	const char *hide[] = {"/proc/self", "/proc/thread-self", own};
	for (size_t i = 0; i < sizeof(hide) / sizeof(hide[0]); i++) {
		size_t n = strlen(hide[i]);
		if (!strncmp(g, hide[i], n) && (g[n] == '/' || !g[n]))
			return true;
	}
	return false;
}

/* Normalized guest path → directory fd, path below it, writability. */
static int place(struct xproc *p, const char *g, int *dir, const char **rest, bool *rw)
{
	int best = -1;
	size_t best_len = 0;
	for (int i = 0; i < p->nbinds; i++) {
		size_t n = strlen(p->bind[i].guest);
		if (n == 1)
			n = 0; /* a bind on "/" prefixes everything */
		if (!strncmp(g, p->bind[i].guest, n) && (g[n] == '/' || !g[n]) &&
		    (best < 0 || n > best_len)) {
			best = i;
			best_len = n;
		}
	}
	*dir = best < 0 ? p->root_fd : p->bind[best].fd;
	*rw = best >= 0 && p->bind[best].rw;
	*rest = g + best_len;
	while (**rest == '/')
		(*rest)++;
	if (!**rest)
		*rest = ".";
	return 0;
}

int fs_resolve(struct xproc *p, int dirfd, const char *path, char *g, size_t glen)
{
	const char *base;
	int rc = at_base(p, dirfd, &base);
	if (!rc)
		rc = fs_normalize(base, path, g, glen);
	if (!rc && hidden(g))
		rc = -ENOENT;
	return rc;
}

static int open_in(int dir, const char *rest, int flags, unsigned mode)
{
	struct open_how how = {
	    .flags = (uint64_t)flags | O_CLOEXEC,
	    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode & 07777 : 0,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dir, rest, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

int fs_open(struct xproc *p, int dirfd, const char *path, int flags, unsigned mode, bool write)
{
	char g[4096];
	const char *rest;
	int rc = fs_resolve(p, dirfd, path, g, sizeof(g));
	if (rc == -ENOENT && proc_self(g, &rest)) /* hidden: popek answers for it */
		return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC))
			   ? -EACCES
			   : proc_open(p, rest, flags);
	if (rc)
		return rc;
	int dir;
	bool rw;
	place(p, g, &dir, &rest, &rw);
	bool writes = write || (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND));
	if (writes && !rw && strcmp(g, "/dev/null"))
		return -EROFS;
	return open_in(dir, rest, flags, mode);
}

/* The guest path of what host descriptor fd names, found below dir (a
 * bind's or the root's, at guest path prefix); 0 or -errno. */
static int guest_of(int fd, int dir, const char *prefix, char *g, size_t glen)
{
	char proc[64], host[4096], top[4096];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, host, sizeof(host) - 1);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dir);
	ssize_t t = readlink(proc, top, sizeof(top) - 1);
	if (n < 0 || t < 0)
		return -errno;
	host[n] = top[t] = 0;
	if (t == 1) /* the host's "/" */
		t = 0;
	if (strncmp(host, top, (size_t)t) || (host[t] != '/' && host[t]))
		return -EXDEV;
	int w = snprintf(g, glen, "%s%s", strcmp(prefix, "/") ? prefix : "", host + t);
	if (!g[0])
		snprintf(g, glen, "/");
	return w < 0 || (size_t)w >= glen ? -ENAMETOOLONG : 0;
}

/* The guest path normalized guest path t resolves to (symlinks followed). */
static int real_of(struct xproc *p, const char *t, char *g, size_t glen)
{
	int dir, fd;
	const char *rest;
	bool rw;
	place(p, t, &dir, &rest, &rw);
	if ((fd = open_in(dir, rest, O_PATH, 0)) < 0)
		return fd;
	int b = -1;
	for (int i = 0; i < p->nbinds; i++)
		if (p->bind[i].fd == dir)
			b = i;
	int rc = guest_of(fd, dir, b < 0 ? "/" : p->bind[b].guest, g, glen);
	close(fd);
	return rc;
}

int fs_real(struct xproc *p, int dirfd, const char *path, char *g, size_t glen)
{
	char t[4096], parent[4096];
	int rc = fs_resolve(p, dirfd, path, t, sizeof(t));
	if (rc || (rc = real_of(p, t, g, glen)) != -ENOENT)
		return rc;
	/* what does not exist yet resolves through its parent */
	char *slash = strrchr(t, '/');
	if (!slash[1])
		return rc;
	*slash = 0;
	if ((rc = real_of(p, slash == t ? "/" : t, parent, sizeof(parent))))
		return rc;
	return fs_normalize(parent, slash + 1, g, glen);
}

int fs_parent(struct xproc *p, int dirfd, const char *path, char *name, size_t namelen, bool write)
{
	char g[4096];
	int rc = fs_resolve(p, dirfd, path, g, sizeof(g));
	if (rc)
		return rc;
	char *slash = strrchr(g, '/');
	if (!slash[1])
		return -EBUSY; /* "/" itself */
	if (strlen(slash + 1) >= namelen)
		return -ENAMETOOLONG;
	snprintf(name, namelen, "%s", slash + 1);
	if (slash == g)
		slash[1] = '\0';
	else
		*slash = '\0';
	int dir;
	const char *rest;
	bool rw;
	place(p, g, &dir, &rest, &rw);
	if (write && !rw)
		return -EROFS;
	return open_in(dir, rest, O_PATH | O_DIRECTORY, 0);
}

int fd_install(struct xproc *p, int host, bool cloexec, int min)
{
	for (int i = min < 0 ? 0 : min; i < X_MAX_FDS; i++) {
		if (p->fd[i].host < 0) {
			p->fd[i].host = host;
			p->fd[i].cloexec = cloexec;
			p->fd[i].dents = NULL;
			p->fd[i].path = NULL;
			return i;
		}
	}
	close(host);
	return -EMFILE;
}

int fd_install_pair(struct xproc *p, const int h[2], bool cloexec, uint64_t va)
{
	int g[2] = {fd_install(p, h[0], cloexec, 0), -1};
	g[1] = g[0] < 0 ? (close(h[1]), g[0]) : fd_install(p, h[1], cloexec, 0);
	if (g[1] < 0) {
		if (g[0] >= 0)
			fd_close(p, g[0]);
		return g[1];
	}
	if (mm_write(&p->mm, va, g, sizeof(g))) {
		fd_close(p, g[0]);
		fd_close(p, g[1]);
		return -EFAULT;
	}
	return 0;
}

int fd_host(struct xproc *p, int fd)
{
	if (fd < 0 || fd >= X_MAX_FDS || p->fd[fd].host < 0)
		return -EBADF;
	return p->fd[fd].host;
}

int fd_close(struct xproc *p, int fd)
{
	int h = fd_host(p, fd);
	if (h < 0)
		return h;
	if (h > 2 || fd > 2 || h != fd)
		close(h);
	free(p->fd[fd].path);
	free(p->fd[fd].dents);
	p->fd[fd].path = p->fd[fd].dents = NULL;
	p->fd[fd].host = -1;
	return 0;
}
