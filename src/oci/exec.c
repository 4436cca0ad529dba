/* exec: a further process in the container's VM. The exec process (named in
 * --pid-file with --detach) talks to the monitor over m.sock: "exec", the
 * process's frames, then its stdin as IN frames; back come STARTED, OUT and
 * EXIT, whose status becomes the exec process's own. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "oci/oci.h"

struct relay {
	int sock, fds[3], ready_fd;
	bool stdin_open;
	int status;
	struct obuf out;
};

static void ready(struct relay *r, const char *msg)
{
	if (r->ready_fd < 0)
		return;
	if (write(r->ready_fd, msg, strlen(msg)) < 0)
		oci_debug("exec: the caller went away");
	close(r->ready_fd);
	r->ready_fd = -1;
}

static int on_line(void *ctx, const char *line, size_t len)
{
	struct relay *r = ctx;
	static struct frame f;
	if (frame_parse(line, len, &f) != FRAME_OK)
		return 0;
	switch (f.type) {
	case FRAME_STARTED:
		ready(r, "ok");
		break;
	case FRAME_OUT:
		stdio_write_out(&f, r->fds[1], r->fds[2]);
		break;
	case FRAME_ERROR:
		dprintf(r->fds[2], "popek-oci: %s\n", (const char *)f.data);
		break;
	case FRAME_EXIT:
		r->status = f.a >= 0 && f.a <= 255 ? (int)f.a : 255;
		return 1;
	default:
		break;
	}
	return 0;
}

static int relay_run(struct relay *r, bool terminal)
{
	sigset_t mask;
	sigemptyset(&mask);
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&mask, sigs[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	static struct line_reader lr;
	r->status = -1;
	while (r->status < 0) {
		struct pollfd pfd[3] = {{.fd = r->sock, .events = POLLIN},
					{.fd = r->stdin_open ? r->fds[0] : -1, .events = POLLIN},
					{.fd = sfd, .events = POLLIN}};
		if (poll(pfd, 3, -1) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents) {
			char buf[16384];
			ssize_t n = read(r->sock, buf, sizeof(buf));
			if (n <= 0) {
				ready(r, "the container's monitor closed the connection");
				dprintf(r->fds[2], "popek-oci: the container stopped\n");
				r->status = 255;
				break;
			}
			line_reader_feed(&lr, buf, (size_t)n, on_line, r);
		}
		if (pfd[1].revents)
			r->stdin_open = stdio_pump_in(r->fds[0], 0, &r->out);
		struct signalfd_siginfo si;
		while (pfd[2].revents && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			unsigned rows, cols;
			if (si.ssi_signo != SIGWINCH) {
				obuf_frame(&r->out, FRAME_SIG, 0, si.ssi_signo, 0, 0, NULL, 0);
			} else if (terminal) {
				stdio_winsize(r->fds[0], &rows, &cols);
				obuf_frame(&r->out, FRAME_WINCH, 0, rows, cols, 0, NULL, 0);
			}
		}
		obuf_flush(&r->out, r->sock);
	}
	return r->status;
}

/* The process from --process, or from the arguments after the ID. */
static int load_process(const char *path, int argc, char **argv, int first, struct oci_process *p)
{
	char err[512];
	if (path) {
		char *text;
		size_t len;
		int rc = spec_load(path, &text, &len, err, sizeof(err));
		if (!rc)
			rc = spec_parse_process(text, len, p, err, sizeof(err));
		if (!rc)
			return 0;
		oci_error("%s", err);
		free(text);
		return -1;
	}
	memset(p, 0, sizeof(*p));
	if (first >= argc) {
		oci_error("exec: give --process FILE or the command after the container ID");
		return -1;
	}
	p->nargs = (size_t)(argc - first);
	p->args = calloc(p->nargs + 1, sizeof(char *));
	p->env = calloc(2, sizeof(char *));
	for (size_t i = 0; p->args && i < p->nargs; i++)
		p->args[i] = strdup(argv[first + (int)i]);
	if (p->env) {
		p->env[0] =
		    strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
		p->nenv = 1;
	}
	p->cwd = strdup("/");
	return 0;
}

int oci_exec(int argc, char **argv)
{
	const char *process = NULL, *pid_file = NULL, *console = NULL, *ignored = NULL;
	bool detach = false, tty = false;
	const struct opt opts[] = {{"process", 'p', &process, NULL},
				   {"pid-file", 0, &pid_file, NULL},
				   {"console-socket", 0, &console, NULL},
				   {"detach", 'd', NULL, &detach},
				   {"tty", 't', NULL, &tty},
				   {"preserve-fds", 0, &ignored, NULL},
				   {"cgroup", 0, &ignored, NULL}};
	int i = oci_parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
	const char *id = i < 0 ? NULL : oci_id_arg(argc, argv, i, process ? 0 : 1 << 20);
	if (!id)
		return 1;
	struct oci_state st;
	char err[512];
	if (state_load(id, &st, err, sizeof(err))) {
		oci_error("%s", err);
		return 1;
	}
	state_free(&st);
	if (st.status != ST_RUNNING) {
		oci_error("cannot exec in a container that is %s", state_status_name(st.status));
		return 1;
	}
	struct oci_process p;
	if (load_process(process, argc, argv, i + 1, &p))
		return 1;
	p.terminal = p.terminal || tty;
	struct relay r = {.ready_fd = -1, .stdin_open = true};
	int sock = state_connect(id);
	if (sock < 0 || console_setup(console, p.terminal, r.fds, err, sizeof(err))) {
		oci_error("exec in %s: %s", id, sock < 0 ? strerror(-sock) : err);
		return 1;
	}
	r.sock = sock;
	obuf_add(&r.out, "exec\n", 5);
	process_frames(&r.out, 0, &p);
	bool terminal = p.terminal;
	spec_free_process(&p);
	if (obuf_flush(&r.out, sock)) {
		oci_error("exec in %s: the container's monitor went away", id);
		return 1;
	}
	if (!detach) {
		if (oci_write_pid_file(pid_file, getpid()))
			return 1;
		return relay_run(&r, terminal);
	}
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		oci_error("pipe: %s", strerror(errno));
		return 1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		r.ready_fd = pipefd[1];
		_exit(relay_run(&r, terminal));
	}
	close(pipefd[1]);
	char line[256] = "";
	ssize_t n = pid < 0 ? -1 : read(pipefd[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = 0;
	if (strcmp(line, "ok")) {
		oci_error("exec in %s: %s", id, *line ? line : "the process did not start");
		return 1;
	}
	return oci_write_pid_file(pid_file, pid) ? 1 : 0;
}
