/* popek ls | pause | resume | stop | stats | policy | trace: talk to running
 * VMs over their control sockets. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/control.h"
#include "control/socket.h"
#include "machine/machine.h"
#include "util/file.h"

static void show_progress(const char *line)
{
	json_object *o = json_tokener_parse(line), *p, *d, *t;
	if (o && json_object_object_get_ex(o, "progress", &p) &&
	    json_object_object_get_ex(p, "done", &d) && json_object_object_get_ex(p, "total", &t) &&
	    json_object_get_int64(t) > 0)
		fprintf(stderr, "\rpopek: %3lld%% of %lld MiB",
			(long long)(json_object_get_int64(d) * 100 / json_object_get_int64(t)),
			(long long)(json_object_get_int64(t) >> 20));
	json_object_put(o);
}

/* Send a request to name; returns the parsed reply or NULL after printing why. */
json_object *vm_request(const char *name, json_object *reqo, int pass_fd, bool quiet)
{
	char err[256], *resp;
	const char *req = json_object_to_json_string_ext(reqo, JSON_C_TO_STRING_PLAIN);
	bool tty = isatty(STDERR_FILENO);
	int rc = control_request(name, req, pass_fd, &resp, quiet || !tty ? NULL : show_progress,
				 err, sizeof(err));
	if (!quiet && tty && strstr(req, "snapshot"))
		fprintf(stderr, "\n");
	if (rc) {
		if (!quiet)
			fprintf(stderr, "popek: %s\n", err);
		json_object_put(reqo);
		return NULL;
	}
	json_object *r = json_tokener_parse(resp), *ok;
	free(resp);
	json_object_put(reqo);
	if (!r || !json_object_object_get_ex(r, "ok", &ok) || !json_object_get_boolean(ok)) {
		json_object *e;
		if (!quiet)
			fprintf(stderr, "popek: VM '%s': %s\n", name,
				r && json_object_object_get_ex(r, "error", &e)
				    ? json_object_get_string(e)
				    : "malformed reply");
		json_object_put(r);
		return NULL;
	}
	return r;
}

static json_object *ask(const char *name, const char *cmd, bool quiet)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	return vm_request(name, req, -1, quiet);
}

static const char *field(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "?";
}

int cmd_ls(int argc, char **argv)
{
	char dir[256];
	int rc = control_dir(dir, sizeof(dir));
	if (rc) {
		fprintf(stderr, "popek: runtime directory %s: %s\n", dir, strerror(-rc));
		return EXIT_CODE_HOST;
	}
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "popek: %s: %s\n", dir, strerror(errno));
		return EXIT_CODE_HOST;
	}
	printf("%-20s %-6s %8s %5s %-8s %10s %8s\n", "NAME", "ENGINE", "MEM", "VCPUS", "STATE",
	       "UPTIME", "PID");
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n <= 5 || strcmp(e->d_name + n - 5, ".sock"))
			continue;
		char name[CONTROL_NAME_MAX + 1];
		snprintf(name, sizeof(name), "%.*s", (int)(n - 5), e->d_name);
		json_object *r = ask(name, "info", true);
		if (!r) {
			char path[512];
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path); /* its VM is gone */
			continue;
		}
		json_object *mem, *up;
		json_object_object_get_ex(r, "mem", &mem);
		json_object_object_get_ex(r, "uptime", &up);
		printf("%-20s %-6s %7lluM %5s %-8s %9.1fs %8s\n", name, field(r, "engine"),
		       (unsigned long long)(json_object_get_int64(mem) >> 20), field(r, "vcpus"),
		       field(r, "state"), json_object_get_double(up), field(r, "pid"));
		json_object_put(r);
	}
	closedir(d);
	return 0;
}

/* pause | resume | stop | stats NAME */
int cmd_vmctl(const char *cmd, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "popek: usage: popek %s NAME — see 'popek ls' for names\n", cmd);
		return EXIT_CODE_USAGE;
	}
	json_object *r = ask(argv[1], cmd, false);
	if (!r)
		return 1;
	json_object *stats;
	if (json_object_object_get_ex(r, "stats", &stats))
		printf("%s\n", json_object_to_json_string_ext(stats, JSON_C_TO_STRING_PRETTY));
	json_object_put(r);
	return 0;
}

/* A policy sent live travels JSON-escaped in one request of at most
 * CONTROL_MAX_MSG bytes. */
#define LIVE_POLICY_MAX (256u << 10)

/* policy NAME [FILE]: show the active policy, or replace it with FILE's. */
int cmd_policy(int argc, char **argv)
{
	if (argc != 2 && argc != 3) {
		fprintf(stderr, "popek: usage: popek policy NAME [FILE] — without FILE it prints "
				"the active policy\n");
		return EXIT_CODE_USAGE;
	}
	json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("policy"));
	if (argc == 3) {
		char err[512];
		uint8_t *text;
		size_t len;
		int rc = file_read_all(argv[2], LIVE_POLICY_MAX, &text, &len, err, sizeof(err));
		if (rc == -EFBIG)
			snprintf(err, sizeof(err),
				 "%s: a policy sent to a running VM is at most %u KiB", argv[2],
				 LIVE_POLICY_MAX >> 10);
		else if (!rc && strlen((char *)text) != len)
			snprintf(err, sizeof(err), "%s: not a text file (it holds a NUL byte)",
				 argv[2]);
		if (rc || strlen((char *)text) != len) {
			fprintf(stderr, "popek: %s\n", err);
			if (!rc)
				free(text);
			json_object_put(req);
			return EXIT_CODE_USAGE;
		}
		json_object_object_add(req, "text", json_object_new_string((char *)text));
		json_object_object_add(req, "file", json_object_new_string(argv[2]));
		free(text);
	}
	json_object *r = vm_request(argv[1], req, -1, false), *v;
	if (!r)
		return 1;
	if (json_object_object_get_ex(r, "policy", &v))
		fputs(json_object_get_string(v), stdout);
	else if (json_object_object_get_ex(r, "rules", &v))
		fprintf(stderr, "popek: VM '%s' now uses %s (%d rules)\n", argv[1], argv[2],
			json_object_get_int(v));
	json_object_put(r);
	return 0;
}

/* trace NAME [--class CLASS]...: print the VM's actions as JSON lines until
 * it ends or popek is interrupted. */
int cmd_trace(int argc, char **argv)
{
	if (argc < 2 || argc % 2) {
		fprintf(stderr, "popek: usage: popek trace NAME [--class CLASS]... (classes: "
				"docs/policy.md)\n");
		return EXIT_CODE_USAGE;
	}
	json_object *req = json_object_new_object(), *classes = NULL;
	json_object_object_add(req, "cmd", json_object_new_string("trace"));
	for (int i = 2; i < argc; i += 2) {
		if (strcmp(argv[i], "--class")) {
			fprintf(stderr, "popek: trace: unknown option '%s' — see 'popek help'\n",
				argv[i]);
			json_object_put(req);
			return EXIT_CODE_USAGE;
		}
		if (!classes)
			json_object_object_add(req, "classes", classes = json_object_new_array());
		json_object_array_add(classes, json_object_new_string(argv[i + 1]));
	}
	const char *line = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	int fd = control_name_valid(argv[1]) ? socket_connect(argv[1]) : -EINVAL;
	FILE *in = fd >= 0 && socket_write_line(fd, line, -1) == 0 ? fdopen(fd, "r") : NULL;
	json_object_put(req);
	if (!in) {
		fprintf(stderr, "popek: no running VM named '%s' — see 'popek ls'\n", argv[1]);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n = getline(&buf, &cap, in);
	json_object *r = n > 0 ? json_tokener_parse(buf) : NULL, *ok, *e;
	int rc = 0;
	if (!r || !json_object_object_get_ex(r, "ok", &ok) || !json_object_get_boolean(ok)) {
		fprintf(stderr, "popek: VM '%s': %s\n", argv[1],
			r && json_object_object_get_ex(r, "error", &e)
			    ? json_object_get_string(e)
			    : "no answer to the trace request");
		rc = 1;
	}
	json_object_put(r);
	while (!rc && getline(&buf, &cap, in) > 0) {
		fputs(buf, stdout);
		fflush(stdout);
	}
	free(buf);
	fclose(in);
	return rc;
}
