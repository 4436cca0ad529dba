/* The monitor: the process `create` leaves behind and names in the pid file.
 * It runs `popek run` with the agent as the guest's init and the console on a
 * pipe pair, relays the container's stdio to the agent's process 1, serves
 * the CLI's requests on m.sock (start, kill, exec, ps) and exits with the
 * container's status. Everything the VM sends is parsed as untrusted frames. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"

#define MAX_CONNS    32
#define POD_STREAMS  32	 /* processes one pod container may have: 1 and its execs */
#define BOOT_TIMEOUT 300 /* s: a Linux boot on the soft engine of a loaded host */
#define KILL_GRACE   3	 /* s between SIGKILL to the process and killing the VM */

/* CONN_POD: the monitor of a container of this sandbox's pod; its streams
 * (0 for setup, 1 its process, more for its execs) are renumbered to the
 * agent's, and its frames act on its slot's root only. */
enum conn_kind { CONN_NEW, CONN_EXEC, CONN_POD };
struct conn {
	int fd;
	enum conn_kind kind;
	uint32_t stream; /* the agent's process id for an exec */
	pid_t peer;
	struct line_reader lr;
	int slot;		       /* CONN_POD */
	char owner[128];	       /* the pod container's ID */
	uint32_t streams[POD_STREAMS]; /* CONN_POD: local id → agent's, 0 when unused */
};

struct monitor {
	const struct oci_spec *spec;
	const char *id;
	int stdio[3];
	bool stdin_open, started, ready;
	int ready_fd;
	int vm_in, vm_out, listen_fd, sig_fd;
	pid_t vm_pid;
	struct line_reader vm_lr;
	struct obuf to_vm;
	struct conn *conns[MAX_CONNS];
	uint32_t next_stream;
	int exit_status; /* -1 while the process runs */
	time_t kill_deadline;
	FILE *vm_log;
	bool tap; /* the guest takes over the client's interface: */
	struct oci_guest_net net;
};

static void set_status(struct monitor *m, enum oci_status status)
{
	struct oci_state st;
	char err[256];
	if (state_load(m->id, &st, err, sizeof(err)) == 0) {
		st.status = status;
		st.pid = getpid();
		if (state_save(&st, err, sizeof(err)))
			oci_error("%s", err);
		state_free(&st);
	}
}

static void report_ready(struct monitor *m, const char *msg)
{
	if (m->ready_fd < 0)
		return;
	if (write(m->ready_fd, msg, strlen(msg)) < 0 || write(m->ready_fd, "\n", 1) < 0)
		oci_debug("create went away before the container was ready");
	close(m->ready_fd);
	m->ready_fd = -1;
}

static void to_vm(struct monitor *m)
{
	if (obuf_flush(&m->to_vm, m->vm_in) < 0)
		oci_debug("the VM's console is closed");
}

static void mount_disks(struct monitor *m)
{
	const struct oci_guest_net *g = &m->net;
	if (m->tap) {
		char data[64];
		int n = snprintf(data, sizeof(data), "%s %s %s", g->ip, g->gw, g->mac);
		obuf_frame(&m->to_vm, FRAME_NET, 0, g->prefix, g->mtu, 0, data, (size_t)n);
	}
	obuf_frame(&m->to_vm, FRAME_MOUNT, 0, 0, m->spec->root_fs, 0, NULL, 0);
	to_vm(m);
}

/* A pod container's "VM" is its sandbox's, reached through that monitor. */
static int join_pod(struct monitor *m, char *err, size_t errlen)
{
	const struct oci_spec *s = m->spec;
	int fd = state_connect(s->sandbox_id);
	if (fd < 0) {
		snprintf(err, errlen, "the pod's sandbox %s is not running (%s)", s->sandbox_id,
			 strerror(-fd));
		return -1;
	}
	m->vm_in = m->vm_out = fd;
	dprintf(fd, "pod %d %s\n", s->pod_slot, m->id);
	mount_disks(m);
	return 0;
}

static int start_vm(struct monitor *m, char *err, size_t errlen)
{
	if (m->spec->pod == POD_CONTAINER)
		return join_pod(m, err, errlen);
	char log[4200];
	state_path(log, sizeof(log), m->id, "vm.log");
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	struct vm vm;
	int rc = vm_start(m->spec, m->id, logfd, &vm, err, errlen);
	if (logfd >= 0)
		m->vm_log = fdopen(logfd, "a");
	if (rc)
		return -1;
	m->vm_pid = vm.pid;
	m->vm_in = vm.in;
	m->vm_out = vm.out;
	m->tap = vm.tap;
	m->net = vm.net;
	if (vm.warm)
		mount_disks(m);
	return 0;
}

/* What the agent needs before any process: hostname, mounts. */
static void send_setup(struct monitor *m)
{
	const struct oci_spec *s = m->spec;
	if (s->hostname)
		obuf_frame(&m->to_vm, FRAME_HOST, 0, 0, 0, 0, s->hostname, strlen(s->hostname));
	for (size_t i = 0; i < s->nmounts; i++)
		obuf_frame(&m->to_vm, s->mounts[i].kind == MOUNT_BIND ? FRAME_BIND : FRAME_TMPFS, 0,
			   (int64_t)i, s->mounts[i].ro, 0, s->mounts[i].dest,
			   strlen(s->mounts[i].dest));
	to_vm(m);
}

/* The connection whose process the agent's stream is, and its number there. */
static struct conn *conn_by_stream(struct monitor *m, uint32_t stream, uint32_t *local)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = m->conns[i];
		if (c && c->kind == CONN_EXEC && c->stream == stream) {
			*local = 0;
			return c;
		}
		for (uint32_t k = 0; c && c->kind == CONN_POD && k < POD_STREAMS; k++)
			if (c->streams[k] == stream) {
				*local = k;
				return c;
			}
	}
	return NULL;
}

static void conn_close(struct monitor *m, struct conn *c)
{
	for (int i = 0; i < MAX_CONNS; i++)
		if (m->conns[i] == c)
			m->conns[i] = NULL;
	/* an exec whose client went away must not linger in the VM, nor a pod
	 * container whose monitor is gone; its slot is free for the next */
	if (c->kind == CONN_EXEC) {
		obuf_frame(&m->to_vm, FRAME_SIG, c->stream, SIGKILL, 1, 0, NULL, 0);
		to_vm(m);
	} else if (c->kind == CONN_POD) {
		obuf_frame(&m->to_vm, FRAME_UMOUNT, 0, c->slot, 0, 0, NULL, 0);
		to_vm(m);
		pod_release(m->id, c->slot, c->owner);
	}
	close(c->fd);
	free(c);
}

static void reply(struct conn *c, const char *text)
{
	size_t n = strlen(text);
	if (write(c->fd, text, n) != (ssize_t)n)
		oci_debug("a client went away before its reply");
}

/* A frame from the VM: untrusted, parsed already. */
static void vm_frame(struct monitor *m, const struct frame *f)
{
	if (f->type == FRAME_BOOTED) {
		mount_disks(m); /* a cold boot got here; a restored VM was told already */
		return;
	}
	if (f->type == FRAME_READY && f->id == 0 && !m->ready) {
		m->ready = true;
		send_setup(m);
		set_status(m, ST_CREATED);
		report_ready(m, "ok");
		return;
	}
	if (f->type == FRAME_ERROR && f->id == 0) {
		if (!m->ready) {
			char msg[FRAME_DATA_MAX + 32];
			snprintf(msg, sizeof(msg), "the guest agent: %s", (const char *)f->data);
			report_ready(m, msg);
			m->exit_status = 255;
		} else {
			dprintf(m->stdio[2], "popek-oci: %s\n", (const char *)f->data);
		}
		return;
	}
	if (f->id == 1) {
		switch (f->type) {
		case FRAME_OUT:
			stdio_write_out(f, m->stdio[1], m->stdio[2]);
			break;
		case FRAME_ERROR:
			dprintf(m->stdio[2], "popek-oci: %s\n", (const char *)f->data);
			break;
		case FRAME_EXIT:
			if (f->a >= 0 && f->a <= 255)
				m->exit_status = (int)f->a;
			else
				m->exit_status = 255;
			break;
		default:
			break;
		}
		return;
	}
	uint32_t local;
	struct conn *c = conn_by_stream(m, f->id, &local);
	if (!c || !(f->type == FRAME_OUT || f->type == FRAME_EXIT || f->type == FRAME_ERROR ||
		    f->type == FRAME_STARTED || (f->type == FRAME_READY && c->kind == CONN_POD)))
		return;
	char line[FRAME_LINE_MAX];
	size_t n = frame_format(line, f->type, local, f->a, f->b, f->c, f->data, f->len);
	if (write(c->fd, line, n) != (ssize_t)n || (f->type == FRAME_EXIT && c->kind == CONN_EXEC))
		conn_close(m, c);
}

static int vm_line(void *ctx, const char *line, size_t len)
{
	struct monitor *m = ctx;
	static struct frame f;
	switch (frame_parse(line, len, &f)) {
	case FRAME_OK:
		vm_frame(m, &f);
		break;
	case FRAME_BAD:
		if (m->vm_log)
			fprintf(m->vm_log, "popek-oci: malformed frame from the guest: %.80s\n",
				line);
		break;
	case FRAME_NOISE:
		if (m->vm_log && len)
			fprintf(m->vm_log, "guest: %s\n", line);
		break;
	}
	return 0;
}

static void kill_process(struct monitor *m, int sig, bool all)
{
	obuf_frame(&m->to_vm, FRAME_SIG, 1, sig, all, 0, NULL, 0);
	to_vm(m);
	if (sig == SIGKILL && !m->kill_deadline)
		m->kill_deadline = time(NULL) + KILL_GRACE;
}

/* The first line of a connection: the request. */
static int command(struct monitor *m, struct conn *c, const char *line)
{
	int sig, all;
	if (!strcmp(line, "start")) {
		if (m->started)
			return reply(c, "error the container was started already\n"), -1;
		m->started = true;
		m->stdin_open = true;
		process_frames(&m->to_vm, 1, &m->spec->proc);
		to_vm(m);
		set_status(m, ST_RUNNING);
		reply(c, "ok\n");
		return -1;
	}
	if (sscanf(line, "kill %d %d", &sig, &all) == 2 && sig > 0 && sig < 65) {
		if (!m->started) {
			/* a created container has no process yet: it simply ends */
			m->exit_status = 128 + sig;
		} else {
			kill_process(m, sig, all);
		}
		reply(c, "ok\n");
		return -1;
	}
	if (!strcmp(line, "ps")) {
		char buf[64 * (MAX_CONNS + 1)];
		size_t n = (size_t)snprintf(buf, sizeof(buf), "ok %d", (int)getpid());
		for (int i = 0; i < MAX_CONNS; i++)
			if (m->conns[i] && m->conns[i]->kind == CONN_EXEC && m->conns[i]->peer > 0)
				n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %d",
						      (int)m->conns[i]->peer);
		snprintf(buf + n, sizeof(buf) - n, "\n");
		reply(c, buf);
		return -1;
	}
	int slot, end = 0;
	if (sscanf(line, "pod %d %*s%n", &slot, &end) == 1 && end && slot > 0 &&
	    slot <= POD_SLOTS && m->spec->pod == POD_SANDBOX) {
		snprintf(c->owner, sizeof(c->owner), "%s", line + 4 + strcspn(line + 4, " ") + 1);
		for (int i = 0; i < MAX_CONNS; i++)
			if (m->conns[i] && m->conns[i]->kind == CONN_POD &&
			    m->conns[i]->slot == slot)
				return reply(c, "error the slot is taken\n"), -1;
		c->kind = CONN_POD;
		c->slot = slot;
		return 0;
	}
	if (!strcmp(line, "exec")) {
		if (!m->started)
			return reply(c, "error the container is not running\n"), -1;
		c->kind = CONN_EXEC;
		c->stream = m->next_stream++;
		return 0;
	}
	reply(c, "error unknown request\n");
	return -1;
}

/* A pod container's frame: setup of its slot's root and what its processes
 * may be sent, renumbered; the slot is the one it was given, whatever the
 * frame says. */
static int pod_frame(struct monitor *m, struct conn *c, struct frame *f)
{
	bool setup = f->type == FRAME_MOUNT || f->type == FRAME_BIND || f->type == FRAME_TMPFS;
	if (f->id >= POD_STREAMS || !(setup || (f->type >= FRAME_ARG && f->type <= FRAME_WINCH)))
		return 0;
	if (!c->streams[f->id])
		c->streams[f->id] = m->next_stream++;
	int64_t a = f->type == FRAME_MOUNT || f->type == FRAME_START ? c->slot : f->a;
	int64_t cc = f->type == FRAME_BIND || f->type == FRAME_TMPFS ? c->slot : f->c;
	obuf_frame(&m->to_vm, f->type, c->streams[f->id], a, f->b, cc, f->data, f->len);
	return 0;
}

/* An exec client's frame: only what a process may be sent, under its stream. */
static int conn_line(void *ctx, const char *line, size_t len)
{
	void **pair = ctx;
	struct monitor *m = pair[0];
	struct conn *c = pair[1];
	if (c->kind == CONN_NEW)
		return command(m, c, line);
	static struct frame f;
	if (frame_parse(line, len, &f) != FRAME_OK)
		return -1;
	if (c->kind == CONN_POD)
		return pod_frame(m, c, &f);
	if (!(f.type >= FRAME_ARG && f.type <= FRAME_WINCH))
		return -1;
	/* an exec runs in the sandbox's own root, slot 0 */
	obuf_frame(&m->to_vm, f.type, c->stream, f.type == FRAME_START ? 0 : f.a, f.b, f.c, f.data,
		   f.len);
	return 0;
}

static void accept_conn(struct monitor *m)
{
	int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	int slot = -1;
	for (int i = 0; i < MAX_CONNS && slot < 0; i++)
		if (!m->conns[i])
			slot = i;
	struct conn *c = slot >= 0 ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		close(fd);
		return;
	}
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	c->fd = fd;
	c->peer = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 ? cred.pid : 0;
	m->conns[slot] = c;
}

static void read_conn(struct monitor *m, struct conn *c)
{
	char buf[8192];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	void *pair[2] = {m, c};
	if (n <= 0 || line_reader_feed(&c->lr, buf, (size_t)n, conn_line, pair)) {
		conn_close(m, c);
		return;
	}
	to_vm(m);
}

static int listen_on(const char *id, char *err, size_t errlen)
{
	char dir[4200];
	state_path(dir, sizeof(dir), id, NULL);
	if (chdir(dir) < 0) {
		snprintf(err, errlen, "%.300s: %s", dir, strerror(errno));
		return -1;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "m.sock"};
	unlink("m.sock");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "monitor socket in %.300s: %s", dir, strerror(errno));
		return -1;
	}
	return fd;
}

static void stop_vm(struct monitor *m)
{
	if (m->vm_pid <= 0)
		return;
	kill(m->vm_pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(m->vm_pid, NULL, WNOHANG) == m->vm_pid) {
			m->vm_pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(m->vm_pid, SIGKILL);
	waitpid(m->vm_pid, NULL, 0);
	m->vm_pid = 0;
}

/* The last line popek or the guest wrote to vm.log: why the VM stopped. */
static void last_log_line(struct monitor *m, char *buf, size_t len)
{
	char path[4200], tail[512];
	buf[0] = 0;
	if (m->vm_log)
		fflush(m->vm_log);
	state_path(path, sizeof(path), m->id, "vm.log");
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, size > (long)sizeof(tail) - 1 ? size - (long)sizeof(tail) + 1 : 0, SEEK_SET);
	size_t n = fread(tail, 1, sizeof(tail) - 1, f);
	fclose(f);
	while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
		n--;
	tail[n] = 0;
	char *nl = strrchr(tail, '\n');
	snprintf(buf, len, "%s", nl ? nl + 1 : tail);
}

/* The sandbox's monitor closed our connection: the pod's VM is gone. */
static void pod_gone(struct monitor *m)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "the pod's sandbox %s stopped", m->spec->sandbox_id);
	report_ready(m, msg);
	if (m->ready)
		dprintf(m->stdio[2], "popek-oci: %s\n", msg);
	m->exit_status = m->kill_deadline ? 137 : 255;
}

/* Signals sent to the monitor are the container's: forwarded to process 1. */
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static void on_signal(struct monitor *m)
{
	struct signalfd_siginfo si;
	while (read(m->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			int status;
			if (m->vm_pid > 0 && waitpid(m->vm_pid, &status, WNOHANG) == m->vm_pid) {
				m->vm_pid = 0;
				if (m->exit_status < 0) {
					int code = WIFEXITED(status) ? WEXITSTATUS(status)
								     : 128 + WTERMSIG(status);
					char msg[800], last[512];
					last_log_line(m, last, sizeof(last));
					snprintf(msg, sizeof(msg),
						 "the VM stopped (popek exit status %d): %s", code,
						 last);
					report_ready(m, msg);
					if (m->ready)
						dprintf(m->stdio[2], "popek-oci: %s\n", msg);
					m->exit_status = m->kill_deadline ? 137 : 255;
				}
			}
		} else if (si.ssi_signo == SIGWINCH) {
			unsigned rows, cols;
			stdio_winsize(m->stdio[0], &rows, &cols);
			if (m->started && rows) {
				obuf_frame(&m->to_vm, FRAME_WINCH, 1, rows, cols, 0, NULL, 0);
				to_vm(m);
			}
		} else if (m->started) {
			kill_process(m, (int)si.ssi_signo, false);
		} else {
			m->exit_status = 128 + (int)si.ssi_signo;
		}
	}
}

int monitor_run(const struct oci_spec *s, const char *id, const int stdio[3], int ready_fd)
{
	static struct monitor mon;
	struct monitor *m = &mon;
	char err[512];
	*m = (struct monitor){.spec = s,
			      .id = id,
			      .stdio = {stdio[0], stdio[1], stdio[2]},
			      .ready_fd = ready_fd,
			      .exit_status = -1,
			      .next_stream = 2};
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGWINCH);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&mask, forwarded[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	m->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->proc.terminal) {
		/* the pty is our controlling terminal, so resizes arrive as SIGWINCH */
		setsid();
		ioctl(stdio[0], TIOCSCTTY, 0);
	}
	m->listen_fd = listen_on(id, err, sizeof(err));
	if (m->listen_fd < 0 || start_vm(m, err, sizeof(err))) {
		report_ready(m, err);
		return 255;
	}
	time_t boot_deadline = time(NULL) + BOOT_TIMEOUT;
	while (m->exit_status < 0) {
		struct pollfd pfd[4 + MAX_CONNS];
		struct conn *owner[4 + MAX_CONNS] = {0};
		nfds_t n = 0;
		pfd[n++] = (struct pollfd){.fd = m->vm_out, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = m->sig_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
		pfd[n++] =
		    (struct pollfd){.fd = m->stdin_open ? m->stdio[0] : -1, .events = POLLIN};
		for (int i = 0; i < MAX_CONNS; i++) {
			if (!m->conns[i])
				continue;
			owner[n] = m->conns[i];
			pfd[n++] = (struct pollfd){.fd = m->conns[i]->fd, .events = POLLIN};
		}
		if (poll(pfd, n, 1000) < 0 && errno != EINTR)
			break;
		time_t now = time(NULL);
		if (!m->ready && now > boot_deadline) {
			report_ready(m, "the guest agent did not answer within the boot timeout");
			m->exit_status = 255;
		}
		if (m->kill_deadline && now > m->kill_deadline)
			m->exit_status = 137; /* the guest did not act on SIGKILL: the VM goes */
		if (pfd[0].revents) {
			char buf[16384];
			ssize_t r = read(m->vm_out, buf, sizeof(buf));
			if (r > 0) {
				line_reader_feed(&m->vm_lr, buf, (size_t)r, vm_line, m);
			} else if (r == 0) {
				m->vm_out = -1;
				if (m->spec->pod == POD_CONTAINER)
					pod_gone(m);
			}
		}
		if (pfd[1].revents)
			on_signal(m);
		if (pfd[2].revents)
			accept_conn(m);
		if (pfd[3].revents && m->stdin_open) {
			m->stdin_open = stdio_pump_in(m->stdio[0], 1, &m->to_vm);
			to_vm(m);
		}
		for (nfds_t i = 4; i < n; i++)
			if (pfd[i].revents && owner[i])
				read_conn(m, owner[i]);
	}
	for (int i = 0; i < MAX_CONNS; i++)
		if (m->conns[i]) {
			m->conns[i]->kind = CONN_NEW; /* the VM goes; nothing to kill in it */
			conn_close(m, m->conns[i]);
		}
	stop_vm(m);
	if (m->ready)
		set_status(m, ST_STOPPED);
	if (m->vm_log)
		fclose(m->vm_log);
	return m->exit_status;
}
