/* Snapshots: a paused VM's whole state as files in a directory
 * (docs/snapshot-format.md), and back into a new VM on either engine. */
#ifndef POPEK_SNAPSHOT_H
#define POPEK_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "machine/config.h"
#include "snapshot/memimage.h"

struct machine;
struct snapshot;

struct snapshot_opts {
	bool compress;
	progress_fn progress;
	void *ctx;
};

/* Save m (all vCPUs parked: machine_pause) into the directory open as dir_fd
 * (named dir in messages). */
int snapshot_save(struct machine *m, int dir_fd, const char *dir, const struct snapshot_opts *o,
		  char *err, size_t errlen);

/* Read and check a snapshot before anything runs: metadata, state checksums,
 * every vCPU/VM record, memory size and (if verify) memory checksums. */
struct snapshot *snapshot_open(const char *dir, bool verify, char *err, size_t errlen);
/* The configuration the snapshot was taken with; cfg->ram_fd is the guest
 * RAM image (owned by the machine once machine_create runs). Strings point
 * into s. engine stays as the caller set it unless NULL. */
void snapshot_config(struct snapshot *s, struct vm_config *cfg);
const char *snapshot_engine(const struct snapshot *s);
/* Refuse if a referenced disk image changed since the snapshot (unless force). */
int snapshot_check_disks(const struct snapshot *s, bool force, char *err, size_t errlen);
/* Load vCPU, VM and device state into a machine created from snapshot_config. */
int snapshot_apply(const struct snapshot *s, struct machine *m, char *err, size_t errlen);
void snapshot_close(struct snapshot *s);

#endif
