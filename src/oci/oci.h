/* popek-oci: an OCI runtime (runc's command line) that runs each container in
 * a popek VM. The interfaces between its files; docs/oci.md for the design. */
#ifndef POPEK_OCI_H
#define POPEK_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "oci/frame.h"

#define OCI_VERSION "1.0.2"

/* cli.c: the global options every subcommand sees. */
struct oci_globals {
	const char *root; /* state directory of all containers */
	const char *log;  /* --log FILE, or NULL for stderr */
	bool json_log;
	bool debug;
};
extern struct oci_globals oci_g;
int oci_main(int argc, char **argv);
/* Subcommand options: "--name value", "--name=value", "-n value" or a flag. */
struct opt {
	const char *name; /* long name without dashes */
	char shortname;	  /* or 0 */
	const char **val; /* for options with a value */
	bool *flag;	  /* for flags */
};
/* Returns the index of the first positional argument, or -1 after an error. */
int oci_parse_opts(int argc, char **argv, const struct opt *opts, size_t nopts);
/* argv[i], the container ID, checked; at most max_extra arguments may follow. */
const char *oci_id_arg(int argc, char **argv, int i, int max_extra);

/* log.c: messages as runc writes them (JSON lines with --log-format json). */
void oci_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define oci_error(...) oci_log("error", __VA_ARGS__)
#define oci_debug(...)                                                                             \
	do {                                                                                       \
		if (oci_g.debug)                                                                   \
			oci_log("debug", __VA_ARGS__);                                             \
	} while (0)

/* spec.c: config.json (the bundle) and process.json (exec), parsed with json-c. */
struct oci_rlimit {
	int resource;
	int64_t soft, hard; /* -1 = unlimited */
};
struct oci_process {
	char **args, **env;
	size_t nargs, nenv;
	char *cwd;
	uint32_t uid, gid;
	uint32_t gids[64];
	size_t ngids;
	struct oci_rlimit rlimits[16];
	size_t nrlimits;
	bool terminal;
	unsigned rows, cols;
};
enum oci_mount_kind { MOUNT_BIND, MOUNT_TMPFS };
struct oci_mount {
	enum oci_mount_kind kind;
	char *dest, *source;
	bool ro;
};
/* The CRI annotations (io.kubernetes.cri.container-type): a sandbox's VM
 * takes in the containers of its pod, each with its own root (docs/oci.md). */
enum oci_pod_role { POD_NONE, POD_SANDBOX, POD_CONTAINER };
/* The VM's network (docs/oci.md): user networking (libslirp) in the host's
 * network namespace or in the client's, or no NIC at all. */
enum oci_net { OCI_NET_HOST, OCI_NET_NS, OCI_NET_NONE };
struct oci_spec {
	struct oci_process proc;
	char *root; /* absolute */
	char *hostname;
	struct oci_mount *mounts;
	size_t nmounts;
	uint64_t mem; /* VM RAM in bytes */
	unsigned cpus;
	char *annotations; /* JSON object text, "{}" when none */
	enum oci_pod_role pod;
	char *sandbox_id; /* of a POD_CONTAINER */
	int pod_slot;	  /* its slot in the sandbox's VM, set by create */
	enum oci_net net;
	char *netns;  /* OCI_NET_NS: the namespace's path */
	bool root_fs; /* root.path is shared by virtio-fs (tag ROOTFS_TAG), set by create */
};
#define ROOTFS_TAG   "ocirootfs"
#define OCI_SPEC_MAX (4u << 20) /* bytes of config.json accepted */

/* Parse config.json text; bundle resolves a relative root.path. 0, or -1 + err. */
int spec_parse(const char *text, size_t len, const char *bundle, struct oci_spec *s, char *err,
	       size_t errlen);
/* Parse a process object's text (exec --process). */
int spec_parse_process(const char *text, size_t len, struct oci_process *p, char *err,
		       size_t errlen);
int spec_load(const char *path, char **text, size_t *len, char *err, size_t errlen);
void spec_free(struct oci_spec *s);
void spec_free_process(struct oci_process *p);

/* A growable byte buffer, for frames on their way out. */
struct obuf {
	char *data;
	size_t len, cap;
};
void obuf_add(struct obuf *b, const void *data, size_t n);
void obuf_frame(struct obuf *b, enum frame_type t, uint32_t id, int64_t a, int64_t b_, int64_t c,
		const void *data, size_t len);
/* Write it all to a blocking fd; 0 or -1. */
int obuf_flush(struct obuf *b, int fd);
/* Write what a non-blocking fd takes now and drop it from b; -1 on an error. */
int obuf_write_some(struct obuf *b, int fd);
void obuf_free(struct obuf *b);
/* The frames that make the agent run process p as stream id. */
void process_frames(struct obuf *b, uint32_t id, const struct oci_process *p);

/* state.c: ROOT/ID holds state.json, the monitor socket and the disks. */
enum oci_status { ST_CREATING, ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED };
struct oci_state {
	char id[128];
	char bundle[4096];
	pid_t pid; /* the monitor: the container's process as the host sees it */
	enum oci_status status;
	char created[40];
	char *annotations;
};
int state_id_valid(const char *id);
/* ROOT/ID/NAME into buf; -1 if too long. */
int state_path(char *buf, size_t len, const char *id, const char *name);
int state_save(const struct oci_state *st, char *err, size_t errlen);
/* -ENOENT when there is no such container. The status is corrected to
 * stopped when the monitor is gone. */
int state_load(const char *id, struct oci_state *st, char *err, size_t errlen);
void state_free(struct oci_state *st);
const char *state_status_name(enum oci_status s);
char *state_json(const struct oci_state *st); /* the OCI state object, malloc'ed */
/* The name of the container's VM for popek's control channel. */
void state_vm_name(const char *id, char *buf, size_t len);
/* rm -rf path. */
void oci_remove_tree(const char *path);
/* Connect to the monitor of id; fd or -errno. */
int state_connect(const char *id);

/* rootfs.c: the ext4 disks the VM boots with. Disks of these sizes (the
 * files are sparse) fit a VM template; a larger root boots cold. */
#define ROOTFS_DISK_SIZE (4ull << 30)
#define BINDS_DISK_SIZE	 (256ull << 20)
/* Into ROOT/ID, or for a pod container into its slot's disks of the sandbox;
 * sets s->root_fs when the root goes by virtio-fs instead of a disk. */
int rootfs_build(struct oci_spec *s, const char *id, char *err, size_t errlen);

/* pod.c: the slots of a sandbox's VM for the pod's further containers. */
void pod_disk_name(char *buf, size_t len, int slot, bool binds); /* slotK[-binds].img */
int pod_disk_path(char *buf, size_t len, const char *sandbox, int slot, bool binds);
/* The placeholders of every slot, in the sandbox's state directory. */
int pod_make_slots(const char *sandbox, char *err, size_t errlen);
/* A free slot (1..POD_SLOTS) now owned by id, or -1 + err. */
int pod_claim(const char *sandbox, const char *id, char *err, size_t errlen);
/* Free slot unless another container owns it by now. */
void pod_release(const char *sandbox, int slot, const char *id);

/* console.c: with a terminal, the pty whose master goes to --console-socket;
 * fds[0..2] become the slave. Without, fds stay 0, 1, 2. */
int console_setup(const char *socket_path, bool terminal, int fds[3], char *err, size_t errlen);

/* stdio.c: one process's stdio against the frame stream. */
/* Read what fd has and add it as IN frames of id; false at end of input
 * (then an empty IN frame was added). */
bool stdio_pump_in(int fd, uint32_t id, struct obuf *b);
/* Write an OUT frame's bytes to out or err. */
void stdio_write_out(const struct frame *f, int out, int err);
/* Window size of a terminal fd, as rows and columns (0 when not a tty). */
void stdio_winsize(int fd, unsigned *rows, unsigned *cols);

/* netns.c: a client's network namespace joined with a tap and tc redirects. */
#define NETNS_TAP "popek0" /* the VM's NIC, in every container's namespace */
struct oci_guest_net {
	bool none; /* the namespace has no IPv4 interface */
	char ip[16], gw[16], mac[18];
	int prefix, mtu;
};
/* Join path (this process stays in it), bridge its interface to NETNS_TAP
 * and say what the guest's eth0 must take over. 0 or -1 + err. */
int netns_attach(const char *path, struct oci_guest_net *g, char *err, size_t errlen);
/* NETNS_TAP, persistent and up, in this process's namespace. */
int netns_make_tap(int mtu, char *err, size_t errlen);

/* vm.c: start the container's VM, restored from a template when its disks
 * have the template sizes, else booted. */
struct vm {
	pid_t pid;
	int in, out;		  /* its console */
	bool warm;		  /* restored: the agent is past BOOTED already */
	bool tap;		  /* its NIC is bridged to the client's namespace: */
	struct oci_guest_net net; /* what the guest's eth0 takes over */
};
int vm_start(const struct oci_spec *s, const char *id, int logfd, struct vm *vm, char *err,
	     size_t errlen);
/* A blank sparse disk file of size bytes; 0 or -1 with errno. */
int vm_placeholder(const char *path, uint64_t size);

/* monitor.c: the process the pid file names. Boots the VM, waits for the
 * agent, reports on ready_fd ("ok\n" or an error line) and serves the
 * container until its process exits; returns its exit status. */
int monitor_run(const struct oci_spec *s, const char *id, const int stdio[3], int ready_fd);

/* lifecycle.c and exec.c: the subcommands; argv[0] is the subcommand. */
int oci_create(int argc, char **argv);
int oci_start(int argc, char **argv);
int oci_state(int argc, char **argv);
int oci_kill(int argc, char **argv);
int oci_delete(int argc, char **argv);
int oci_ps(int argc, char **argv);
int oci_pause(int argc, char **argv);
int oci_exec(int argc, char **argv);
int oci_features(int argc, char **argv);
/* Write pid to path (atomically; nothing when path is NULL); 0 or -1 logged. */
int oci_write_pid_file(const char *path, pid_t pid);
/* A signal by number or name (9, KILL, SIGKILL); -1 if unknown. */
int oci_signal_number(const char *name);
/* One request line to the monitor; reply "ok [TEXT]" → 0 with TEXT in out
 * (may be NULL), else -1 + err. */
int monitor_request(const char *id, const char *req, char *out, size_t outlen, char *err,
		    size_t errlen);

#endif
