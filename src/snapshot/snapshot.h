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

struct blob;
struct json_object;
/* The metadata of a snapshot (without its files) with the given "format";
 * NULL + err if a disk cannot be identified. */
struct json_object *snapshot_meta(struct machine *m, const char *format, char *err, size_t errlen);
/* The vCPU, VM and device sections of m (parked), appended to out; each
 * device's name is added to devs (may be NULL). */
int snapshot_state(struct machine *m, struct blob *out, struct json_object *devs, char *err,
		   size_t errlen);

/* A snapshot that arrives in parts (a migration stream): begin checks the
 * metadata (owned from here, also on failure) and gives the memory size;
 * finish takes the state sections and the RAM image (owned by s) and checks
 * every record. */
struct snapshot *snapshot_begin(struct json_object *meta, const char *format, uint64_t *mem,
				char *err, size_t errlen);
int snapshot_finish(struct snapshot *s, uint8_t *state, size_t len, int ram_fd, char *err,
		    size_t errlen);

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
