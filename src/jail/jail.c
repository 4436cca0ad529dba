/* The jail's order (docs/jail.md) and what it reports. */
#include "jail/jail.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "jail/internal.h"
#include "machine/machine.h"

struct jail_state jail_state;

int jail_spawn(const struct vm_config *cfg, int *exit_code)
{
	if (cfg->jail)
		return ns_spawn(cfg, exit_code);
	if (cfg->cpu_quota || cfg->mem_limit)
		fprintf(stderr, "popek: jail: --cpu-quota and --mem-limit need the jail; "
				"with --no-jail the VM runs without them\n");
	return 0;
}

/* A failure of a step the host should allow is fatal; one it may refuse
 * (no namespaces, so no pivot_root or capabilities to drop) is reported. */
int jail_enter(const struct vm_config *cfg, const struct jail_profile *p, char *err, size_t errlen)
{
	if (!cfg->jail)
		return 0;
	jail_state.enabled = true;
	if (jail_state.spawned) {
		int rc = ns_pivot_to_empty(SANITIZED, p->usernet, p->vsock_dir, err, errlen);
		if (rc < 0)
			return EXIT_CODE_HOST;
		jail_state.pivot_root = rc == 0;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "jail: no_new_privs: %s", strerror(errno));
		return EXIT_CODE_HOST;
	}
	jail_state.no_new_privs = true;
	char why[200];
	if (caps_drop_all(why, sizeof(why)) == 0)
		jail_state.caps_dropped = true;
	else if (jail_state.spawned || geteuid() == 0) {
		snprintf(err, errlen, "%s", why);
		return EXIT_CODE_HOST;
	} else {
		fprintf(stderr, "popek: %s (unprivileged without a user namespace)\n", why);
	}
	int n = seccomp_install(p, err, errlen);
	if (n < 0)
		return EXIT_CODE_HOST;
	jail_state.seccomp_syscalls = n;
	/* Test hook (tests/integration/45-jail.sh): prove a forbidden call is reported. */
	const char *t = getenv("POPEK_JAIL_SELFTEST");
	if (t && !strcmp(t, "forbidden"))
		seccomp_selftest_forbidden();
	return 0;
}

const char *jail_vsock_dir(const struct jail_profile *p)
{
	return jail_state.enabled && jail_state.spawned ? JAIL_VSOCK_DIR : p->vsock_dir;
}

int jail_host_pid(void)
{
	return jail_state.spawned ? jail_state.host_pid : (int)getpid();
}

json_object *jail_report_json(void)
{
	const struct jail_state *s = &jail_state;
	json_object *o = json_object_new_object(), *ns = json_object_new_array();
	const struct {
		const char *name;
		bool on;
	} spaces[] = {{"mnt", s->spawned}, {"pid", s->spawned}, {"ipc", s->spawned},
		      {"uts", s->spawned}, {"net", s->netns},	{"user", s->userns}};
	for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++)
		if (spaces[i].on)
			json_object_array_add(ns, json_object_new_string(spaces[i].name));
	json_object_object_add(o, "enabled", json_object_new_boolean(s->enabled));
	json_object_object_add(o, "pivot_root", json_object_new_boolean(s->pivot_root));
	json_object_object_add(o, "namespaces", ns);
	json_object_object_add(o, "userns", json_object_new_boolean(s->userns));
	json_object_object_add(o, "no_new_privs", json_object_new_boolean(s->no_new_privs));
	json_object_object_add(o, "caps_dropped", json_object_new_boolean(s->caps_dropped));
	json_object_object_add(o, "seccomp_syscalls", json_object_new_int(s->seccomp_syscalls));
	json_object_object_add(o, "cgroup",
			       json_object_new_string(s->cgroup[0] ? s->cgroup : "none"));
	return o;
}
