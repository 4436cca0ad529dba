/* VM side of the control channel, served on the VM's event loop (as control
 * work: also while the VM is paused): one request per connection. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/control.h"
#include "control/request.h"
#include "control/socket.h"
#include "jail/jail.h"
#include "machine/interpose.h"
#include "machine/machine.h"
#include "machine/stats.h"
#include "migrate/migrate.h"
#include "policy/active.h"
#include "policy/policy.h"
#include "policy/trace.h"
#include "snapshot/snapshot.h"

struct control {
	struct machine *m;
	int listen_fd;
	int dir_fd; /* the runtime directory: the socket is removed through it, jailed */
	struct loop_watch *listen_w;
	struct conn *waiting; /* accepted, request not yet in */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* An accepted connection, served once its request has arrived. */
struct conn {
	struct control *c;
	int fd;
	struct loop_watch *w;
	struct conn *next;
};

static json_object *reply_ok(void)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	return r;
}

static json_object *reply_error(const char *msg)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "error", json_object_new_string(msg));
	return r;
}

static const char *state_name(struct machine *m)
{
	if (machine_stopping(m))
		return "stopping";
	return machine_paused(m) ? "paused" : "running";
}

static json_object *cmd_info(struct machine *m, const struct control_request *req, int fd,
			     int passed)
{
	json_object *r = reply_ok();
	json_object_object_add(r, "name", json_object_new_string(m->name));
	json_object_object_add(r, "pid", json_object_new_int(jail_host_pid()));
	json_object_object_add(r, "engine", json_object_new_string(m->engine->name));
	json_object_object_add(r, "mem", json_object_new_int64((int64_t)m->mem.size));
	json_object_object_add(r, "vcpus", json_object_new_int(m->ncpus));
	json_object_object_add(r, "state", json_object_new_string(state_name(m)));
	json_object_object_add(
	    r, "uptime", json_object_new_double((double)(monotonic_ns() - m->start_ns) / 1e9));
	json_object_object_add(r, "kernel", json_object_new_string(m->cfg->kernel));
	return r;
}

static json_object *cmd_pause(struct machine *m, const struct control_request *req, int fd,
			      int passed)
{
	machine_pause(m);
	return reply_ok();
}

static json_object *cmd_resume(struct machine *m, const struct control_request *req, int fd,
			       int passed)
{
	machine_resume(m);
	return reply_ok();
}

static json_object *cmd_stop(struct machine *m, const struct control_request *req, int fd,
			     int passed)
{
	machine_stop(m, STOP_POWEROFF, 0, "stopped through the control channel");
	return reply_ok();
}

static json_object *cmd_stats(struct machine *m, const struct control_request *req, int fd,
			      int passed)
{
	char *s = machine_stats_json(m, (double)(monotonic_ns() - m->start_ns) / 1e9);
	json_object *stats = json_tokener_parse(s);
	free(s);
	json_object *r = reply_ok();
	json_object_object_add(r, "stats", stats);
	return r;
}

struct progress {
	int fd;
	unsigned last_pct;
};

/* Stream {"progress": ...} lines while a long command runs. */
static void send_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	if (pct == p->last_pct)
		return;
	p->last_pct = pct;
	char line[128];
	snprintf(line, sizeof(line), "{\"progress\":{\"done\":%llu,\"total\":%llu}}",
		 (unsigned long long)done, (unsigned long long)total);
	socket_write_line(p->fd, line, -1);
}

/* {"cmd":"snapshot","dir":ABS,"stop":bool,"compress":bool} + the directory's fd */
static json_object *cmd_snapshot(struct machine *m, const struct control_request *req, int fd,
				 int passed)
{
	struct progress p = {fd, ~0u};
	struct snapshot_opts o = {.progress = send_progress, .ctx = &p, .compress = req->compress};
	/* The client created the directory and sent it open: a jailed VMM cannot
	 * reach the path, which only names it in messages. */
	struct stat st;
	if (passed < 0 || fstat(passed, &st) < 0 || !S_ISDIR(st.st_mode))
		return reply_error(
		    "snapshot needs the directory sent as a descriptor (SCM_RIGHTS)");
	char err[512];
	bool was_paused = machine_paused(m);
	uint64_t t0 = monotonic_ns();
	machine_pause(m);
	int rc = snapshot_save(m, passed, req->dir, &o, err, sizeof(err));
	uint64_t t1 = monotonic_ns();
	if (!rc && req->stop)
		machine_stop(m, STOP_POWEROFF, 0, "stopped after a snapshot");
	if (!was_paused)
		machine_resume(m);
	if (rc)
		return reply_error(err);
	json_object *r = reply_ok();
	json_object_object_add(r, "seconds", json_object_new_double((double)(t1 - t0) / 1e9));
	return r;
}

/* {"cmd":"policy"} shows the active policy; with "text" (and "file", for
 * messages) replaces it: parsed here, so a malformed one is refused with
 * FILE:LINE:COL and the VM keeps the old. */
static json_object *cmd_policy(struct machine *m, const struct control_request *req, int fd,
			       int passed)
{
	json_object *r;
	if (!req->text) {
		char *t = policy_active_text(m->policy);
		if (!t)
			return reply_error("out of memory");
		r = reply_ok();
		json_object_object_add(r, "policy", json_object_new_string(t));
		free(t);
		return r;
	}
	char err[512];
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return reply_error("out of memory");
	if (policy_parse(p, req->text, req->file, err, sizeof(err))) {
		policy_free(p);
		return reply_error(err);
	}
	if (interpose_check(m, p, err, sizeof(err))) {
		policy_free(p);
		return reply_error(err);
	}
	/* With ioeventfd, virtio notifications never reach popek: a new mmio
	 * rule would miss them, a pause or vcpu rule on a request meet it on
	 * no vCPU. They trap from now on, before the policy is in force. */
	if (!interpose_allows_ioeventfd(p))
		machine_trap_kicks(m);
	int n = p->n;
	policy_replace(m->policy, p);
	r = reply_ok();
	json_object_object_add(r, "rules", json_object_new_int(n));
	return r;
}

/* {"cmd":"trace","classes":[...]}: this connection becomes a stream of JSON
 * lines, {"ok":true} first; NULL: no other reply. */
static json_object *cmd_trace(struct machine *m, const struct control_request *req, int fd,
			      int passed)
{
	char err[128];
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (own < 0)
		return reply_error("cannot keep the connection for the trace");
	if (policy_trace_attach(m->events, own, req->classes, "{\"ok\":true}", err, sizeof(err)))
		return reply_error(err);
	return NULL;
}

/* {"cmd":"migrate",...} + the socket connected to the destination: the
 * migration runs on its own thread, which streams progress lines on this
 * connection and answers last; NULL: no other reply. */
static json_object *cmd_migrate(struct machine *m, const struct control_request *req, int fd,
				int passed)
{
	char err[256];
	struct migrate_opts o = {.max_downtime_ns = req->max_downtime_ms * 1000000ull,
				 .bandwidth = req->bandwidth,
				 .compress = req->compress,
				 .copy_storage = req->copy_storage,
				 .postcopy = req->postcopy};
	snprintf(o.uri, sizeof(o.uri), "%s", req->uri);
	if (passed < 0)
		return reply_error("migrate needs the connected socket sent as a descriptor "
				   "(SCM_RIGHTS)");
	int conn = fcntl(passed, F_DUPFD_CLOEXEC, 0), reply = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (conn < 0 || reply < 0) {
		if (conn >= 0)
			close(conn);
		if (reply >= 0)
			close(reply);
		return reply_error("cannot keep the connections for the migration");
	}
	if (migrate_start(m, conn, reply, &o, err, sizeof(err)))
		return reply_error(err);
	return NULL;
}

static json_object *(*const commands[NR_CMDS])(struct machine *m, const struct control_request *req,
					       int fd, int passed) = {
    [CMD_INFO] = cmd_info,     [CMD_PAUSE] = cmd_pause, [CMD_RESUME] = cmd_resume,
    [CMD_STOP] = cmd_stop,     [CMD_STATS] = cmd_stats, [CMD_SNAPSHOT] = cmd_snapshot,
    [CMD_POLICY] = cmd_policy, [CMD_TRACE] = cmd_trace, [CMD_MIGRATE] = cmd_migrate,
};

static json_object *handle(struct machine *m, const char *line, int fd, int passed)
{
	struct control_request req;
	const char *error;
	if (control_parse(line, &req, &error))
		return reply_error(error);
	json_object *r = commands[req.cmd](m, &req, fd, passed);
	control_request_free(&req);
	return r;
}

static void serve(struct control *c, int fd)
{
	int passed = -1; /* a descriptor sent with the request (snapshot: the directory) */
	char *line = socket_read_line(fd, CONTROL_MAX_MSG, &passed);
	json_object *r =
	    line ? handle(c->m, line, fd, passed) : reply_error("request too long or not a line");
	if (passed >= 0)
		close(passed);
	if (r) /* NULL: the command answered on its own (trace) */
		socket_write_line(fd, json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN),
				  -1);
	json_object_put(r);
	free(line);
}

static void request_ready(void *ctx, unsigned ready)
{
	struct conn *k = ctx;
	loop_unwatch(k->w);
	for (struct conn **p = &k->c->waiting; *p; p = &(*p)->next)
		if (*p == k) {
			*p = k->next;
			break;
		}
	serve(k->c, k->fd);
	close(k->fd);
	free(k);
}

static void client_waiting(void *ctx, unsigned ready)
{
	struct control *c = ctx;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct timeval tv = {5, 0}; /* a client that sends half a line must not block the loop */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct conn *k = malloc(sizeof(*k));
	if (k) {
		*k = (struct conn){c, fd, NULL, c->waiting};
		k->w = loop_watch(c->m->loop, fd, LOOP_IN, LOOP_CONTROL, request_ready, k);
	}
	if (!k || !k->w) {
		free(k);
		close(fd);
		return;
	}
	c->waiting = k;
}

struct control *control_open(struct machine *m, const char *name, char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->m = m;
	c->dir_fd = -1;
	c->listen_fd = socket_listen(name, c->path, sizeof(c->path), err, errlen);
	if (c->listen_fd < 0) {
		free(c);
		return NULL;
	}
	char *slash = strrchr(c->path, '/');
	*slash = 0;
	c->dir_fd = open(c->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	*slash = '/';
	if (c->dir_fd < 0) {
		snprintf(err, errlen, "control socket %s: %s", c->path, strerror(errno));
		control_stop(c);
		return NULL;
	}
	return c;
}

int control_start(struct control *c, char *err, size_t errlen)
{
	c->listen_w =
	    loop_watch(c->m->loop, c->listen_fd, LOOP_IN, LOOP_CONTROL, client_waiting, c);
	if (!c->listen_w) {
		snprintf(err, errlen, "cannot serve the control socket: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void control_stop(struct control *c)
{
	if (!c)
		return;
	loop_unwatch(c->listen_w);
	while (c->waiting) { /* clients that never sent their request */
		struct conn *k = c->waiting;
		c->waiting = k->next;
		loop_unwatch(k->w);
		close(k->fd);
		free(k);
	}
	if (c->dir_fd >= 0)
		unlinkat(c->dir_fd, strrchr(c->path, '/') + 1, 0);
	close(c->listen_fd);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	free(c);
}
