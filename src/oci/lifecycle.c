/* create, start, state, kill, delete, ps, pause and resume. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "control/control.h"
#include "oci/oci.h"

static void remove_state(const char *id, const struct oci_spec *s)
{
	char dir[4200];
	if (s && s->pod == POD_CONTAINER && s->pod_slot > 0)
		pod_release(s->sandbox_id, s->pod_slot, id);
	if (state_path(dir, sizeof(dir), id, NULL) == 0)
		oci_remove_tree(dir);
}

int oci_write_pid_file(const char *path, pid_t pid)
{
	if (!path)
		return 0;
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d", (int)pid) < 0 || fclose(f) || rename(tmp, path)) {
		oci_error("cannot write the pid file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int mkdirs(const char *path)
{
	char buf[4200];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0711);
			*p = '/';
		}
	}
	return mkdir(buf, 0711) < 0 && errno != EEXIST ? -1 : 0;
}

/* The monitor inherits the container's stdio as 0-2, the ready pipe, and
 * nothing else of the caller's. */
static void monitor_child(const struct oci_spec *s, const char *id, int fds[3], int ready)
{
	for (int i = 0; i < 3; i++)
		if (fds[i] != i)
			dup2(fds[i], i);
	if (ready != 3) {
		dup2(ready, 3);
		close(ready);
	}
	fcntl(3, F_SETFD, FD_CLOEXEC);
	close_range(4, ~0u, 0);
	int std[3] = {0, 1, 2};
	_exit(monitor_run(s, id, std, 3));
}

int oci_create(int argc, char **argv)
{
	const char *bundle = ".", *pid_file = NULL, *console = NULL, *ignored = NULL;
	bool no_pivot = false, no_keyring = false;
	const struct opt opts[] = {
	    {"bundle", 'b', &bundle, NULL},	   {"pid-file", 0, &pid_file, NULL},
	    {"console-socket", 0, &console, NULL}, {"preserve-fds", 0, &ignored, NULL},
	    {"no-pivot", 0, NULL, &no_pivot},	   {"no-new-keyring", 0, NULL, &no_keyring}};
	int i = oci_parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
	const char *id = i < 0 ? NULL : oci_id_arg(argc, argv, i, 0);
	if (!id)
		return 1;
	char err[1024], dir[4200], cfg[PATH_MAX + 16], abs_bundle[PATH_MAX];
	if (!realpath(bundle, abs_bundle)) {
		oci_error("bundle %s: %s", bundle, strerror(errno));
		return 1;
	}
	if (mkdirs(oci_g.root) < 0 || state_path(dir, sizeof(dir), id, NULL)) {
		oci_error("cannot create the state directory %s: %s", oci_g.root, strerror(errno));
		return 1;
	}
	if (mkdir(dir, 0700) < 0) {
		oci_error(errno == EEXIST ? "container with id %s exists already"
					  : "cannot create the container's directory for %s",
			  id);
		return 1;
	}
	snprintf(cfg, sizeof(cfg), "%s/config.json", abs_bundle);
	char *text = NULL;
	size_t len;
	struct oci_spec spec;
	memset(&spec, 0, sizeof(spec));
	int fds[3];
	if (spec_load(cfg, &text, &len, err, sizeof(err)) ||
	    spec_parse(text, len, abs_bundle, &spec, err, sizeof(err)) ||
	    (spec.pod == POD_CONTAINER &&
	     (spec.pod_slot = pod_claim(spec.sandbox_id, id, err, sizeof(err))) < 0) ||
	    console_setup(console, spec.proc.terminal, fds, err, sizeof(err)) ||
	    rootfs_build(&spec, id, err, sizeof(err))) {
		oci_error("%s", err);
		free(text);
		remove_state(id, &spec);
		spec_free(&spec);
		return 1;
	}
	free(text);
	struct oci_state st = {.status = ST_CREATING, .annotations = spec.annotations};
	snprintf(st.id, sizeof(st.id), "%s", id);
	snprintf(st.bundle, sizeof(st.bundle), "%s", abs_bundle);
	time_t now = time(NULL);
	struct tm tm;
	strftime(st.created, sizeof(st.created), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	int ready[2];
	if (state_save(&st, err, sizeof(err)) || pipe2(ready, O_CLOEXEC) < 0) {
		oci_error("%s", err);
		remove_state(id, &spec);
		return 1;
	}
	oci_debug("%s: booting its VM", id);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		monitor_child(&spec, id, fds, ready[1]);
	}
	close(ready[1]);
	if (fds[0] != 0)
		close(fds[0]);
	char line[1200];
	ssize_t n = pid < 0 ? -1 : read(ready[0], line, sizeof(line) - 1);
	close(ready[0]);
	line[n > 0 ? n : 0] = 0;
	line[strcspn(line, "\n")] = 0;
	if (strcmp(line, "ok")) {
		oci_error("%s: %s", id, *line ? line : "the monitor ended before the VM was ready");
		/* the monitor stops its VM on its way out */
		for (int k = 0; pid > 0 && k < 500 && waitpid(pid, NULL, WNOHANG) == 0; k++)
			usleep(10000);
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0)
			kill(pid, SIGTERM);
		remove_state(id, &spec);
		return 1;
	}
	st.pid = pid;
	st.status = ST_CREATED;
	if (oci_write_pid_file(pid_file, pid))
		return 1;
	oci_debug("%s: created, monitor pid %d", id, (int)pid);
	return 0;
}

int monitor_request(const char *id, const char *req, char *out, size_t outlen, char *err,
		    size_t errlen)
{
	int fd = state_connect(id);
	if (fd < 0) {
		snprintf(err, errlen, "container %s is not running (%s)", id, strerror(-fd));
		return -1;
	}
	char buf[4096];
	size_t n = 0;
	ssize_t r;
	int rc = -1;
	if (dprintf(fd, "%s\n", req) < 0) {
		snprintf(err, errlen, "container %s: cannot reach its monitor", id);
		goto out;
	}
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
		n += (size_t)r;
		if (memchr(buf, '\n', n))
			break;
	}
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	if (!strncmp(buf, "ok", 2)) {
		if (out)
			snprintf(out, outlen, "%s", buf[2] ? buf + 3 : "");
		rc = 0;
	} else {
		snprintf(err, errlen, "container %s: %s", id,
			 !strncmp(buf, "error ", 6) ? buf + 6 : "its monitor did not answer");
	}
out:
	close(fd);
	return rc;
}

static int load(int argc, char **argv, const struct opt *opts, size_t nopts, int extra,
		struct oci_state *st, int *pos)
{
	int i = oci_parse_opts(argc, argv, opts, nopts);
	const char *id = i < 0 ? NULL : oci_id_arg(argc, argv, i, extra);
	if (!id)
		return -EINVAL;
	if (pos)
		*pos = i;
	char err[512];
	int rc = state_load(id, st, err, sizeof(err));
	if (rc)
		oci_error("%s", err);
	return rc;
}

int oci_start(int argc, char **argv)
{
	struct oci_state st;
	char err[512];
	if (load(argc, argv, NULL, 0, 0, &st, NULL))
		return 1;
	int rc = 0;
	if (st.status != ST_CREATED) {
		oci_error("cannot start a container that is %s", state_status_name(st.status));
		rc = 1;
	} else if (monitor_request(st.id, "start", NULL, 0, err, sizeof(err))) {
		oci_error("%s", err);
		rc = 1;
	}
	state_free(&st);
	return rc;
}

int oci_state(int argc, char **argv)
{
	struct oci_state st;
	if (load(argc, argv, NULL, 0, 0, &st, NULL))
		return 1;
	char *s = state_json(&st);
	printf("%s\n", s);
	free(s);
	state_free(&st);
	return 0;
}

int oci_signal_number(const char *name)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},	    {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"TERM", SIGTERM}, {"CONT", SIGCONT},
		    {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"PIPE", SIGPIPE}};
	char *end;
	long n = strtol(name, &end, 10);
	if (*name && !*end)
		return n > 0 && n < 65 ? (int)n : -1;
	if (!strncmp(name, "SIG", 3))
		name += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!strcmp(name, sigs[i].name))
			return sigs[i].sig;
	return -1;
}

int oci_kill(int argc, char **argv)
{
	bool all = false;
	const struct opt opts[] = {{"all", 'a', NULL, &all}};
	struct oci_state st;
	int i;
	if (load(argc, argv, opts, 1, 1, &st, &i))
		return 1;
	int sig = i + 1 < argc ? oci_signal_number(argv[i + 1]) : SIGTERM;
	char err[512], req[64];
	int rc = 1;
	if (sig < 0) {
		oci_error("unknown signal %s", argv[i + 1]);
	} else if (st.status == ST_STOPPED) {
		oci_error("container not running");
	} else {
		snprintf(req, sizeof(req), "kill %d %d", sig, all);
		rc = monitor_request(st.id, req, NULL, 0, err, sizeof(err)) ? 1 : 0;
		if (rc)
			oci_error("%s", err);
	}
	state_free(&st);
	return rc;
}

/* One request to the container VM's popek control socket; 0 when it said ok. */
static int vm_request(const char *id, const char *cmd, char *err, size_t errlen)
{
	char vm[80], req[64], *resp = NULL;
	state_vm_name(id, vm, sizeof(vm));
	snprintf(req, sizeof(req), "{\"cmd\":\"%s\"}", cmd);
	if (control_request(vm, req, -1, &resp, NULL, err, errlen))
		return -1;
	json_object *o = json_tokener_parse(resp), *ok, *e;
	int rc =
	    o && json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok) ? 0 : -1;
	if (rc)
		snprintf(err, errlen, "%s",
			 o && json_object_object_get_ex(o, "error", &e) ? json_object_get_string(e)
									: resp);
	json_object_put(o);
	free(resp);
	return rc;
}

/* Gone, or a zombie its parent has not reaped yet. */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

int oci_delete(int argc, char **argv)
{
	bool force = false;
	const struct opt opts[] = {{"force", 'f', NULL, &force}};
	struct oci_state st;
	char err[512];
	int i = oci_parse_opts(argc, argv, opts, 1);
	const char *id = i < 0 ? NULL : oci_id_arg(argc, argv, i, 0);
	if (!id)
		return 1;
	int rc = state_load(id, &st, err, sizeof(err));
	if (rc == -ENOENT && force)
		return 0; /* what clients expect of a container that is already gone */
	if (rc) {
		oci_error("%s", err);
		return 1;
	}
	if (st.status != ST_STOPPED && st.status != ST_CREATING) {
		if (!force) {
			oci_error("cannot delete container %s that is %s: stop it or use --force",
				  st.id, state_status_name(st.status));
			state_free(&st);
			return 1;
		}
		monitor_request(st.id, "kill 9 1", NULL, 0, err, sizeof(err));
		/* the VM may be paused, or the guest not answer: stop the VM itself */
		vm_request(st.id, "stop", err, sizeof(err));
		for (int k = 0; k < 1000 && !process_gone(st.pid); k++)
			usleep(10000);
		if (!process_gone(st.pid))
			kill(st.pid, SIGKILL);
	}
	remove_state(st.id, NULL);
	state_free(&st);
	return 0;
}

int oci_ps(int argc, char **argv)
{
	const char *format = "table";
	const struct opt opts[] = {{"format", 'f', &format, NULL}};
	struct oci_state st;
	if (load(argc, argv, opts, 1, 0, &st, NULL))
		return 1;
	char pids[4096] = "", err[512];
	if (st.status != ST_STOPPED &&
	    monitor_request(st.id, "ps", pids, sizeof(pids), err, sizeof(err))) {
		oci_error("%s", err);
		state_free(&st);
		return 1;
	}
	bool json = !strcmp(format, "json");
	printf(json ? "[" : "PID\n");
	int k = 0;
	for (char *tok = strtok(pids, " "); tok; tok = strtok(NULL, " "), k++)
		printf(json ? "%s%s" : "%.0s%s\n", k ? "," : "", tok);
	printf(json ? "]\n" : "");
	state_free(&st);
	return 0;
}

int oci_pause(int argc, char **argv)
{
	bool pause = !strcmp(argv[0], "pause");
	struct oci_state st;
	if (load(argc, argv, NULL, 0, 0, &st, NULL))
		return 1;
	char err[512];
	int rc = 1;
	if (st.status != (pause ? ST_RUNNING : ST_PAUSED)) {
		oci_error("container %s is %s, not %s", st.id, state_status_name(st.status),
			  pause ? "running" : "paused");
	} else {
		if (vm_request(st.id, argv[0], err, sizeof(err))) {
			oci_error("%s %s: %s", argv[0], st.id, err);
		} else {
			st.status = pause ? ST_PAUSED : ST_RUNNING;
			rc = state_save(&st, err, sizeof(err)) ? 1 : 0;
			if (rc)
				oci_error("%s", err);
		}
	}
	state_free(&st);
	return rc;
}
