#include "control/socket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/control.h"

int socket_path(const char *name, char *buf, size_t len)
{
	char dir[256];
	int rc = control_dir(dir, sizeof(dir));
	if (rc)
		return rc;
	if (!control_name_valid(name))
		return -EINVAL;
	int n = snprintf(buf, len, "%s/%s.sock", dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int addr_for(const char *name, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	return socket_path(name, a->sun_path, sizeof(a->sun_path));
}

int socket_connect(const char *name)
{
	struct sockaddr_un a;
	int rc = addr_for(name, &a);
	if (rc)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int socket_listen(const char *name, char *path, size_t pathlen, char *err, size_t errlen)
{
	struct sockaddr_un a;
	int rc = addr_for(name, &a);
	if (rc) {
		snprintf(err, errlen, "control socket for '%s': %s", name,
			 rc == -EINVAL ? "invalid name (use letters, digits, . _ -)"
				       : strerror(-rc));
		return -1;
	}
	int probe = socket_connect(name);
	if (probe >= 0) {
		close(probe);
		snprintf(err, errlen, "a VM named '%s' is already running — choose another --name",
			 name);
		return -1;
	}
	unlink(a.sun_path); /* stale: its VM is gone */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0) {
		snprintf(err, errlen, "control socket %s: %s", a.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(path, pathlen, "%s", a.sun_path);
	return fd;
}

/* Keep the first descriptor a message carries if wanted; close the rest. */
static void take_fds(struct msghdr *mh, int *passed_fd)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			if (passed_fd && *passed_fd < 0)
				*passed_fd = f;
			else
				close(f);
		}
	}
}

/* Up to and including the next newline, no further: the next line (a reply
 * after a progress line) stays in the socket for the next call. */
static ssize_t recv_some(int fd, char *buf, size_t len, int *passed_fd)
{
	ssize_t peek = recv(fd, buf, len, MSG_PEEK);
	if (peek <= 0)
		return peek;
	char *nl = memchr(buf, '\n', (size_t)peek);
	if (nl)
		len = (size_t)(nl - buf) + 1;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = {buf, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (r >= 0)
		take_fds(&mh, passed_fd);
	return r;
}

char *socket_read_line(int fd, size_t max, int *passed_fd)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			if (cap >= max)
				break;
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = recv_some(fd, buf + n, cap - n - 1, passed_fd);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		char *nl = memchr(buf + n, '\n', (size_t)r);
		n += (size_t)r;
		if (nl) {
			*nl = 0;
			return buf;
		}
	}
	if (buf && n && n + 1 < cap) { /* EOF without newline: accept the line */
		buf[n] = 0;
		return buf;
	}
	free(buf);
	return NULL;
}

static ssize_t send_some(int fd, const char *p, size_t len, int pass_fd)
{
	if (pass_fd < 0)
		return send(fd, p, len, MSG_NOSIGNAL);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {(void *)p, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

int socket_write_line(int fd, const char *s, int pass_fd)
{
	size_t len = strlen(s);
	const char *parts[2] = {s, "\n"};
	size_t lens[2] = {len, 1};
	for (int i = 0; i < 2; i++) {
		const char *p = parts[i];
		size_t left = lens[i];
		while (left) {
			ssize_t w = send_some(fd, p, left, pass_fd);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			pass_fd = -1; /* sent with the first bytes */
			p += w;
			left -= (size_t)w;
		}
	}
	return 0;
}
