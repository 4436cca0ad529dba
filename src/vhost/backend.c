#include "vhost/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STOP_FD	      3 /* the keeper's fds, after it closed every other one */
#define DONE_FD	      4
#define STOP_GRACE_MS 5000
#define STOP_CHECK_MS 50

static void say(const char *a, const char *b, const char *c)
{
	/* After fork in a threaded process: plain writes only. */
	const char *parts[] = {"popek: ", a, b, c, "\n"};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (write(2, parts[i], strlen(parts[i])) < 0)
			return;
}

/* The keeper: starts the backend, then waits for popek to let go (EOF on
 * STOP_FD) or the backend to end, stops it, and exits; its exit closes
 * DONE_FD, which is popek's sign that the backend is gone. */
static void keep(char *const argv[], int (*setup)(void *arg), void *arg)
{
	prctl(PR_SET_NAME, "popek-backend");
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(STOP_FD);
		close(DONE_FD);
		if (setup && setup(arg) < 0)
			_exit(127);
		execv(argv[0], argv);
		say("cannot run ", argv[0], ": ");
		say(strerror(errno), "", "");
		_exit(127);
	}
	int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pidfd < 0)
		_exit(1);
	struct pollfd p[2] = {{.fd = STOP_FD, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
	while (poll(p, 2, -1) < 0 && errno == EINTR)
		;
	if (!p[1].revents) {
		kill(pid, SIGTERM);
		for (int waited = 0; waited < STOP_GRACE_MS && !poll(&p[1], 1, STOP_CHECK_MS);
		     waited += STOP_CHECK_MS)
			;
		kill(pid, SIGKILL);
	}
	waitpid(pid, NULL, 0);
	_exit(0);
}

int vhost_backend_start(struct vhost_backend *b, char *const argv[], int (*setup)(void *arg),
			void *arg, char *err, size_t errlen)
{
	int stop[2], done[2];
	b->stop_fd = b->done_fd = -1;
	const char *base = strrchr(argv[0], '/');
	snprintf(b->name, sizeof(b->name), "%s", base ? base + 1 : argv[0]);
	if (pipe2(stop, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		return -1;
	}
	if (pipe2(done, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		close(stop[0]);
		close(stop[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* Keep only its two pipe ends: another backend's keeper holding
		 * this one's stop pipe would keep it from ever stopping. */
		int s = fcntl(stop[0], F_DUPFD, 10), d = fcntl(done[1], F_DUPFD, 10);
		if (s < 0 || d < 0 || dup2(s, STOP_FD) < 0 || dup2(d, DONE_FD) < 0 ||
		    syscall(SYS_close_range, DONE_FD + 1, ~0u, 0) < 0)
			_exit(1);
		keep(argv, setup, arg);
	}
	close(stop[0]);
	close(done[1]);
	if (pid < 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		close(stop[1]);
		close(done[0]);
		return -1;
	}
	b->stop_fd = stop[1];
	b->done_fd = done[0];
	return 0;
}

bool vhost_backend_exited(const struct vhost_backend *b)
{
	struct pollfd p = {.fd = b->done_fd, .events = POLLIN};
	return b->done_fd >= 0 && poll(&p, 1, 0) > 0;
}

void vhost_backend_stop(struct vhost_backend *b)
{
	if (b->stop_fd < 0)
		return;
	close(b->stop_fd);
	char c;
	while (read(b->done_fd, &c, 1) < 0 && errno == EINTR)
		;
	close(b->done_fd);
	b->stop_fd = b->done_fd = -1;
}
