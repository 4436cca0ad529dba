/* Live migration (docs/migration.md): the source VM sends itself over a
 * connected socket while it runs (pre-copy with dirty logging); the
 * destination rebuilds it from the stream and runs it only once the source
 * has handed over. */
#ifndef POPEK_MIGRATE_H
#define POPEK_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/postcopy.h"
#include "migrate/storage.h"
#include "migrate/stream.h"

struct machine;
struct snapshot;

struct migrate_opts {
	char uri[256];		  /* where it goes, for messages */
	uint64_t max_downtime_ns; /* the pause the last round may cost */
	uint64_t bandwidth;	  /* bytes/s cap, 0 = none */
	bool compress;
	bool copy_storage; /* mirror the disks' contents too */
	bool postcopy;	   /* hand over after round 1, then push the rest */
};

#define MIGRATE_DEFAULT_DOWNTIME_MS 50

/* Source side, in the VM: start sending m over conn (owned from here) on a
 * thread of its own; progress lines and the final reply go to reply_fd
 * (owned), the control client's connection. 0, or -1 with err (nothing was
 * started; both fds are closed). */
int migrate_start(struct machine *m, int conn, int reply_fd, const struct migrate_opts *o,
		  char *err, size_t errlen);

/* Sockets for tcp:HOST:PORT and unix:PATH: connected, or listening (one
 * connection). -1 with err naming the address and the fix. */
int migrate_connect(const char *uri, char *err, size_t errlen);
int migrate_listen(const char *uri, char *err, size_t errlen);

/* Destination side, in two steps, so that the VM is built and jailed while
 * the pages arrive (and the stream is checked in the jail). */
struct mig_recv {
	struct mig_in in;
	struct snapshot *snap; /* from HELLO; its state once all has arrived */
	uint64_t mem;
	int ram_fd;	/* the incoming RAM (a memfd) */
	bool ram_owned; /* closed by us: the machine has not taken it */
	uint8_t *ram;	/* its mapping, for ZERO's holes */
	uint8_t *state;
	size_t state_len;
	uint64_t pages;
	uint8_t *buf; /* one record */
	size_t cap;
	struct storage_in disks; /* --copy-storage */
	struct postcopy_in *pc;	 /* --postcopy (the HELLO says so), else NULL */
};
struct vm_config;
/* The magic and HELLO: the snapshot's metadata and a zeroed memfd for RAM.
 * NULL with err (the stream is refused). */
struct mig_recv *migrate_receive_begin(const struct mig_in *in, char *err, size_t errlen);
/* Where the disks are copied to (--copy-storage; the stream says so): the
 * files popek receive --disk gave, each created or truncated to its source's
 * size, then cfg's disks. 0, or -1 with err (refused, also for paths given to
 * a source that shares its disks). */
int migrate_receive_disks(struct mig_recv *r, struct vm_config *cfg,
			  const struct disk_config *given, int n, char *err, size_t errlen);
/* The VM's configuration, RAM included (snapshot_config). */
void migrate_receive_config(struct mig_recv *r, struct vm_config *cfg);
/* The pages, STATE and END, checked as a snapshot restore checks: 0, and
 * r->snap can be applied; or -1 with err (refused). */
int migrate_receive_rest(struct mig_recv *r, char *err, size_t errlen);
void migrate_receive_free(struct mig_recv *r);

/* The handshake after the destination has built the VM: tell the source it
 * is ready and wait for its go. 0: run it; -1 with err: the source kept it. */
int migrate_handover(int conn, char *err, size_t errlen);
/* The destination cannot take the VM: tell the source why. */
void migrate_refuse(int conn, const char *why);

#endif
