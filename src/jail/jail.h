/* The jailed VMM (docs/jail.md): new namespaces, an empty root, no
 * capabilities, no_new_privs, a seccomp allowlist and cgroup limits. One VM
 * runs per process, so the jail's state is the process's. */
#ifndef POPEK_JAIL_H
#define POPEK_JAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "machine/config.h"

struct json_object;

/* What the jailed VMM goes on doing; it decides the seccomp allowlist. */
struct jail_profile {
	bool kvm;	    /* engine kvm: its ioctls; else the soft engine */
	bool disks;	    /* virtio-blk: positioned vector I/O and fsync */
	bool nics, usernet; /* virtio-net; one of them on libslirp (host sockets) */
	/* virtio-vsock: the folder of its Unix sockets, which the jailed VMM
	 * still connects to by path (bind-mounted at JAIL_VSOCK_DIR). */
	const char *vsock_dir;
	/* post-copy: the userfaultfd on RAM, whose ioctls are allowed on it
	 * alone; 0 or -1 none (fd 0 is stdin, never it) */
	int uffd;
};

#define JAIL_VSOCK_DIR "/vsock"

/* Step 1, first in `run`/`restore` for each VM (single-threaded, nothing of
 * the VM open yet): fork the VMM into new PID, IPC, UTS and network (and, for
 * an unprivileged user, user) namespaces and its cgroup. Returns 0 in the VMM.
 * In the parent, which only waits, forwards signals and restores the terminal,
 * returns 1 once the VMM ended, with *exit_code its exit code (128+N if killed
 * by signal N) — or at once if --jail was asked for and the host cannot. */
int jail_spawn(const struct vm_config *cfg, int *exit_code);

/* Step 2, when everything that needs the host is open: the empty root,
 * no_new_privs, capabilities, seccomp. Call it before starting threads: the
 * seccomp filter reaches threads started earlier, capabilities do not.
 * 0, or an EXIT_CODE_* with err set. */
int jail_enter(const struct vm_config *cfg, const struct jail_profile *p, char *err, size_t errlen);

/* Where the jailed VMM finds the profile's vsock_dir: JAIL_VSOCK_DIR once
 * its root changed, else the folder itself. */
const char *jail_vsock_dir(const struct jail_profile *p);

/* The VMM's PID as the host sees it (in its PID namespace getpid() is 1). */
int jail_host_pid(void);

/* What was applied, for --stats: {"enabled":..., "pivot_root":..., ...}. */
struct json_object *jail_report_json(void);

#endif
