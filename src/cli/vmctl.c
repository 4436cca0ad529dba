/* popek ls | pause | resume | stop | stats: talk to running VMs over their
 * control sockets. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/control.h"
#include "machine/machine.h"

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
