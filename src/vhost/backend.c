#include "vhost/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CTL_FD	       3 /* the keeper's fds, after it closed every other one */
#define DONE_FD	       4
#define STOP_GRACE_MS  5000
#define STOP_CHECK_MS  50
#define LISTEN_WAIT_MS 5000 /* a backend popek starts has this long to listen */
#define LISTEN_POLL_MS 10
#define DIAL_EVERY_MS  100 /* the user's backend is dialled this often until it is back */
/* A backend started this often within the window is not started again: it
 * dies of something a restart does not cure (a request that kills it, say). */
#define STARTS_MAX	4
#define STARTS_WINDOW_S 60

static void say(const char *a, const char *b, const char *c)
{
	/* After fork in a threaded process: plain writes only. */
	const char *parts[] = {"popek: ", a, b, c, "\n"};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (write(2, parts[i], strlen(parts[i])) < 0)
			return;
}

/* One connection attempt: the fd, or -errno. */
static int dial(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* Tell popek: status 0 with the connection fd, or an errno. */
static void report(int32_t status, int fd)
{
	struct iovec iov = {&status, sizeof(status)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(CTL_FD, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

static void stop_child(pid_t pid, int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	kill(pid, SIGTERM);
	for (int waited = 0; waited < STOP_GRACE_MS && !poll(&p, 1, STOP_CHECK_MS);
	     waited += STOP_CHECK_MS)
		;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pidfd);
}

static pid_t run(char *const argv[], int (*setup)(void *arg), void *arg, int *pidfd)
{
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(CTL_FD);
		close(DONE_FD);
		if (setup && setup(arg) < 0)
			_exit(127);
		execv(argv[0], argv);
		say("cannot run ", argv[0], ": ");
		say(strerror(errno), "", "");
		_exit(127);
	}
	*pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	return *pidfd < 0 ? -1 : pid;
}

/* Connect to a backend just started: the fd, or -ECHILD if it exited first,
 * -ETIMEDOUT if it did not listen in time. */
static int await_listen(const char *sock, int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	for (int waited = 0; waited < LISTEN_WAIT_MS; waited += LISTEN_POLL_MS) {
		int fd = dial(sock);
		if (fd >= 0) {
			unlink(sock); /* from now on only popek can reach the backend */
			return fd;
		}
		if (poll(&p, 1, LISTEN_POLL_MS) > 0)
			return -ECHILD;
	}
	return -ETIMEDOUT;
}

static bool too_often(struct timespec *starts, unsigned n)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	struct timespec *oldest = &starts[n % STARTS_MAX];
	bool often = n >= STARTS_MAX && now.tv_sec - oldest->tv_sec < STARTS_WINDOW_S;
	if (!often)
		*oldest = now;
	return often;
}

/* Wait for popek's word: 1 for "connect again", 0 for "stop". The backend
 * ending meanwhile is reaped (popek notices the hang-up and asks). */
static int await_request(pid_t *pid, int *pidfd)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = CTL_FD, .events = POLLIN},
				      {.fd = *pidfd, .events = POLLIN}};
		if (poll(p, *pid > 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (p[0].revents) {
			char c;
			return read(CTL_FD, &c, 1) == 1;
		}
		if (p[1].revents) {
			waitpid(*pid, NULL, 0);
			close(*pidfd);
			*pid = -1;
		}
	}
}

/* The user's backend came back? Dial until it does or popek lets go. */
static int redial_user(const char *sock)
{
	for (;;) {
		int fd = dial(sock);
		if (fd >= 0)
			return fd;
		struct pollfd p = {.fd = CTL_FD, .events = POLLIN};
		char c;
		if (poll(&p, 1, DIAL_EVERY_MS) > 0 && read(CTL_FD, &c, 1) != 1)
			return -EPIPE;
	}
}

/* The keeper: hands popek a connection to the backend, and another each
 * time popek asks, until popek lets go (EOF on CTL_FD) or the backend
 * cannot be reached; then it stops the backend it runs and exits, which
 * closes DONE_FD, popek's sign that the backend is gone. */
static void keep(const char *sock, char *const argv[], int (*setup)(void *arg), void *arg)
{
	prctl(PR_SET_NAME, "popek-backend");
	/* A mount namespace of its own: the jail's pivot_root moves every
	 * process of the VMM's namespace into the empty root, and the keeper
	 * needs the host's files to restart the backend and dial its socket.
	 * Without namespaces there is no pivot either, so a failure is fine. */
	unshare(CLONE_NEWNS);
	struct timespec starts[STARTS_MAX] = {{0}};
	pid_t pid = -1;
	int pidfd = -1;
	for (unsigned n = 0;; n++) {
		int fd;
		if (!argv) {
			fd = n ? redial_user(sock) : dial(sock);
		} else if (too_often(starts, n)) {
			say(argv[0], " died too often: ", "not starting it again");
			fd = -ECHILD;
		} else {
			if (pid > 0)
				stop_child(pid, pidfd);
			pid = run(argv, setup, arg, &pidfd);
			fd = pid > 0 ? await_listen(sock, pidfd) : -ECHILD;
		}
		report(fd >= 0 ? 0 : -fd, fd);
		if (fd < 0)
			break;
		close(fd);
		if (!await_request(&pid, &pidfd))
			break;
	}
	if (pid > 0)
		stop_child(pid, pidfd);
	if (argv) {
		/* The socket's private folder (vhost_dev_socket_dir) goes too. */
		char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
		memcpy(dir, sock, strlen(sock) + 1);
		char *slash = strrchr(dir, '/');
		if (slash) {
			*slash = 0;
			unlink(sock);
			rmdir(dir);
		}
	}
	_exit(0);
}

int vhost_backend_start(struct vhost_backend *b, const char *sock, char *const argv[],
			int (*setup)(void *arg), void *arg, char *err, size_t errlen)
{
	int ctl[2], done[2];
	b->ctl_fd = b->done_fd = -1;
	b->own = argv != NULL;
	const char *prog = argv ? argv[0] : "vhost-user backend";
	const char *base = strrchr(prog, '/');
	snprintf(b->name, sizeof(b->name), "%s", base ? base + 1 : prog);
	if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "vhost-user: socket path %s is too long (at most %zu bytes)",
			 sock, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		snprintf(err, errlen, "cannot start %s: %s", prog, strerror(errno));
		return -1;
	}
	if (pipe2(done, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot start %s: %s", prog, strerror(errno));
		close(ctl[0]);
		close(ctl[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Keep only its two ends: another backend's keeper holding this
		 * one's control socket would keep it from ever stopping. */
		int s = fcntl(ctl[1], F_DUPFD, 10), d = fcntl(done[1], F_DUPFD, 10);
		if (s < 0 || d < 0 || dup2(s, CTL_FD) < 0 || dup2(d, DONE_FD) < 0 ||
		    syscall(SYS_close_range, DONE_FD + 1, ~0u, 0) < 0)
			_exit(1);
		keep(sock, argv, setup, arg);
	}
	close(ctl[1]);
	close(done[1]);
	if (pid < 0) {
		snprintf(err, errlen, "cannot start %s: %s", prog, strerror(errno));
		close(ctl[0]);
		close(done[0]);
		return -1;
	}
	b->ctl_fd = ctl[0];
	b->done_fd = done[0];
	return 0;
}

int vhost_backend_take(struct vhost_backend *b, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd p = {.fd = b->ctl_fd, .events = POLLIN};
	int n;
	while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	int32_t status = ETIMEDOUT;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {&status, sizeof(status)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl)};
	ssize_t got = n > 0 ? recvmsg(b->ctl_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) : -1;
	struct cmsghdr *c = got == sizeof(status) ? CMSG_FIRSTHDR(&mh) : NULL;
	int fd = -1;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (fd >= 0 && status == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	if (n > 0 && got != sizeof(status))
		snprintf(err, errlen, "the keeper of %s is gone", b->name);
	else if (status == ECHILD)
		snprintf(err, errlen, "%s exited before it listened (its messages are above)",
			 b->name);
	else if (status == ETIMEDOUT)
		snprintf(err, errlen, "%s did not listen on its socket within %d ms", b->name,
			 n > 0 ? LISTEN_WAIT_MS : timeout_ms);
	else
		snprintf(err, errlen, "%s", strerror(status));
	return -1;
}

int vhost_backend_redial(struct vhost_backend *b)
{
	return b->ctl_fd >= 0 && send(b->ctl_fd, "R", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1 ? 0 : -1;
}

void vhost_backend_stop(struct vhost_backend *b)
{
	if (b->ctl_fd < 0)
		return;
	close(b->ctl_fd);
	char c;
	while (read(b->done_fd, &c, 1) < 0 && errno == EINTR)
		;
	close(b->done_fd);
	b->ctl_fd = b->done_fd = -1;
}
