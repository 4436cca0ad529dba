#include "devices/vsock_uds.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* PATH as an absolute folder and a name, short enough for PATH_4294967295. */
static int split_path(struct vsock_uds *u, const char *uds, char *err, size_t errlen)
{
	char copy[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s", uds);
	const char *name = basename(copy);
	snprintf(u->base, sizeof(u->base), "%s", name);
	snprintf(copy, sizeof(copy), "%s", uds);
	if (!realpath(dirname(copy), u->dir)) {
		snprintf(err, errlen, "--vsock uds=%s: its folder: %s", uds, strerror(errno));
		return -1;
	}
	/* The jail may give the folder another name (up to VSOCK_UDS_DIR_MIN bytes). */
	size_t dirlen = strlen(u->dir) > VSOCK_UDS_DIR_MIN ? strlen(u->dir) : VSOCK_UDS_DIR_MIN;
	size_t need = dirlen + 1 + strlen(u->base) + sizeof("_4294967295");
	if (strlen(name) >= sizeof(u->base) || !strcmp(name, "/") || !strcmp(name, ".") ||
	    need > sizeof(u->path) ||
	    (size_t)snprintf(u->path, sizeof(u->path), "%s/%s", u->dir, u->base) >=
		sizeof(u->path)) {
		snprintf(err, errlen,
			 "--vsock uds=%s: a Unix socket path (with _PORT added) must be under %zu "
			 "bytes: use a shorter path",
			 uds, sizeof(u->path));
		return -1;
	}
	return 0;
}

int vsock_uds_listen(struct vsock_uds *u, const char *uds, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	u->lfd = -1;
	if (split_path(u, uds, err, errlen) < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", u->path);
	if (lstat(u->path, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = S_ISSOCK(st.st_mode) && probe >= 0 &&
			    connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
		if (probe >= 0)
			close(probe);
		if (!S_ISSOCK(st.st_mode) || live) {
			snprintf(err, errlen,
				 "--vsock: %s %s: choose another uds= path or remove it", u->path,
				 live ? "is in use by another program"
				      : "exists and is not a socket");
			return -1;
		}
		unlink(u->path);
	}
	u->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->lfd < 0 || bind(u->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(u->lfd, 64) < 0 || stat(u->path, &st) < 0) {
		snprintf(err, errlen, "--vsock: cannot listen on %s: %s", u->path, strerror(errno));
		return -1;
	}
	u->ino = st.st_ino;
	return 0;
}

int vsock_uds_connect(const struct vsock_uds *u, uint32_t port)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (!u->base[0] || (size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s_%u", u->dir,
					    u->base, port) >= sizeof(a.sun_path))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* A full backlog (EAGAIN) refuses too: the guest may try again. */
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

void vsock_uds_close(struct vsock_uds *u)
{
	struct stat st;
	if (u->lfd < 0)
		return;
	close(u->lfd);
	u->lfd = -1;
	/* By its name in the jail, where the folder may have moved; unless
	 * someone replaced it meanwhile. unlink(2) is not in the jail's allowlist. */
	char name[sizeof(u->dir) + sizeof(u->base) + 1];
	snprintf(name, sizeof(name), "%s/%s", u->dir, u->base);
	if (stat(name, &st) == 0 && st.st_ino == u->ino)
		unlinkat(AT_FDCWD, name, 0);
}

int vsock_uds_parse_connect(const char *line, uint32_t *port)
{
	char *end;
	if (strncmp(line, "CONNECT ", 8) || line[8] < '0' || line[8] > '9')
		return -1;
	errno = 0;
	unsigned long p = strtoul(line + 8, &end, 10);
	if (*end || errno || p > UINT32_MAX)
		return -1;
	*port = (uint32_t)p;
	return 0;
}
