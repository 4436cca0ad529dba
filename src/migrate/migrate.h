/* Live migration (docs/migration.md): the source VM sends itself over a
 * connected socket while it runs (pre-copy with dirty logging); the
 * destination rebuilds it from the stream and runs it only once the source
 * has handed over. */
#ifndef POPEK_MIGRATE_H
#define POPEK_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/stream.h"

struct machine;
struct snapshot;

struct migrate_opts {
	char uri[256];		  /* where it goes, for messages */
	uint64_t max_downtime_ns; /* the pause the last round may cost */
	uint64_t bandwidth;	  /* bytes/s cap, 0 = none */
	bool compress;
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

/* Destination side: read a whole stream and check it, before anything runs.
 * Returns the snapshot it describes (RAM in a memfd: snapshot_config), or
 * NULL with err. */
struct snapshot *migrate_receive(struct mig_in *in, char *err, size_t errlen);

/* The handshake after the destination has built the VM: tell the source it
 * is ready and wait for its go. 0: run it; -1 with err: the source kept it. */
int migrate_handover(int conn, char *err, size_t errlen);
/* The destination cannot take the VM: tell the source why. */
void migrate_refuse(int conn, const char *why);

#endif
