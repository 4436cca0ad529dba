/* Shared by the jail's parts; jail.c calls them in order. */
#ifndef POPEK_JAIL_INTERNAL_H
#define POPEK_JAIL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "jail/jail.h"
#include "util/sanitize.h" /* SANITIZED: a sanitizer runtime needs more of the host */

#define JAIL_CGROUP_DESC 320

struct jail_state {
	bool enabled;	 /* jail_enter ran */
	bool spawned;	 /* the VMM runs in its own namespaces (jail_spawn forked) */
	bool userns;	 /* ... including a user namespace */
	bool netns;	 /* ... and a network namespace */
	bool pivot_root; /* its root is an empty tmpfs */
	bool no_new_privs, caps_dropped;
	int seccomp_syscalls; /* 0: no filter */
	char cgroup[JAIL_CGROUP_DESC];
	int host_pid;
};

extern struct jail_state jail_state;

/* namespaces.c */
/* Write all of text to an existing file (proc and cgroup files): 0 or -1. */
int jail_write_text(const char *path, const char *text);
int ns_spawn(const struct vm_config *cfg, int *exit_code);
int ns_pivot_to_empty(bool with_proc, bool with_resolv, const char *vsock_dir, char *err,
		      size_t errlen);

/* caps.c: empty every capability set of the calling thread. */
int caps_drop_all(char *err, size_t errlen);

/* seccomp.c: load the allowlist for p on every thread; the number of system
 * calls it allows, or -1 + err. */
int seccomp_install(const struct jail_profile *p, char *err, size_t errlen);
/* Make this thread call one system call the allowlist never includes. */
void seccomp_selftest_forbidden(void);

/* cgroup.c: a cgroup per VMM with --cpu-quota/--mem-limit. */
struct cgroup_set {
	int n;
	char dir[2][300];
};
/* Create the cgroup(s) with the limits; desc says where, or why not. */
void cgroup_create(const struct vm_config *cfg, int tag, struct cgroup_set *cg, char *desc,
		   size_t desclen);
int cgroup_add(const struct cgroup_set *cg, pid_t pid, char *desc, size_t desclen);
void cgroup_remove(const struct cgroup_set *cg);

#endif
