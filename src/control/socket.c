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

char *socket_read_line(int fd, size_t max)
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
		/* Peek, then take no more than this line: the peer may have sent
		 * the next one (a progress line and the reply) already. */
		ssize_t r = recv(fd, buf + n, cap - n - 1, MSG_PEEK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		char *nl = memchr(buf + n, '\n', (size_t)r);
		size_t take = nl ? (size_t)(nl - (buf + n)) + 1 : (size_t)r;
		ssize_t got;
		while ((got = recv(fd, buf + n, take, 0)) < 0 && errno == EINTR)
			;
		if (got != (ssize_t)take)
			break;
		n += take;
		if (nl) {
			buf[n - 1] = 0;
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

int socket_write_line(int fd, const char *s)
{
	size_t len = strlen(s);
	const char *parts[2] = {s, "\n"};
	size_t lens[2] = {len, 1};
	for (int i = 0; i < 2; i++) {
		const char *p = parts[i];
		size_t left = lens[i];
		while (left) {
			ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			p += w;
			left -= (size_t)w;
		}
	}
	return 0;
}
