/* --console-socket: runc's protocol is one message carrying the pty master
 * (SCM_RIGHTS) to the client's Unix socket; the slave is the process's stdio. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "oci/oci.h"

static int send_fd(int sock, int fd, const char *name)
{
	struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) < 0 ? -1 : 0;
}

int console_setup(const char *socket_path, bool terminal, int fds[3], char *err, size_t errlen)
{
	fds[0] = 0;
	fds[1] = 1;
	fds[2] = 2;
	if (!terminal)
		return 0;
	if (!socket_path) {
		snprintf(err, errlen, "the process wants a terminal: pass --console-socket");
		return -1;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--console-socket %s: path too long", socket_path);
		return -1;
	}
	strcpy(sa.sun_path, socket_path);
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
		snprintf(err, errlen, "cannot open a pty: %s", strerror(errno));
		return -1;
	}
	int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = -1;
	if (slave < 0 || sock < 0) {
		snprintf(err, errlen, "cannot open the pty: %s", strerror(errno));
	} else if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "--console-socket %s: %s", socket_path, strerror(errno));
	} else if (send_fd(sock, master, ptsname(master)) < 0) {
		snprintf(err, errlen, "cannot send the pty to %s: %s", socket_path,
			 strerror(errno));
	} else {
		/* The guest's own pty does the line discipline; this one passes bytes. */
		struct termios t;
		if (tcgetattr(slave, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(slave, TCSANOW, &t);
		}
		fds[0] = fds[1] = fds[2] = slave;
		rc = 0;
	}
	if (sock >= 0)
		close(sock);
	close(master);
	if (rc && slave >= 0)
		close(slave);
	return rc;
}
