/* --copy-storage (docs/migration.md): each disk's contents go through the
 * migration stream as DISK records. The source sends every block that holds
 * data in round 1, then the blocks the guest wrote since (the disk device
 * tracks them), the last ones with the VM held; the destination writes them
 * into files of its own, each record checked against the disk's size. */
#ifndef POPEK_MIGRATE_STORAGE_H
#define POPEK_MIGRATE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/config.h"

struct machine;
struct json_object;

/* Source side. */
struct storage_out {
	int n;
	struct {
		int fd;
		uint64_t size, words;
		uint64_t *dirty; /* marked by the device */
		uint64_t *send;	 /* this round's blocks */
	} d[MAX_DISKS];
	uint8_t *buf;	/* one DISK payload */
	uint64_t bytes; /* disk data sent */
};

/* m's disks, every block of them in the first round's set. 0, or -1 with err. */
int storage_out_init(struct storage_out *st, struct machine *m, char *err, size_t errlen);
/* The devices' write tracking on or off, with the VM held. 0, or -1 with err. */
int storage_track(struct storage_out *st, struct machine *m, bool on, char *err, size_t errlen);
/* With the VM held: the blocks written since, added to this round's set. */
void storage_collect(struct storage_out *st);
/* Bytes in this round's set. */
uint64_t storage_pending(const struct storage_out *st);
/* This round's set as DISK records through emit (0, or -1 with its own
 * message), then cleared. The first round skips blocks that read as zero: the
 * destination's files start zeroed. 0, or -1 (err set unless emit failed). */
int storage_send(struct storage_out *st, bool first_round,
		 int (*emit)(void *ctx, const void *p, size_t len), void *ctx, char *err,
		 size_t errlen);
void storage_out_free(struct storage_out *st);

/* Destination side: n == 0 unless the HELLO said copy_storage. */
struct storage_in {
	int n;
	int fd[MAX_DISKS];
	uint64_t size[MAX_DISKS];
	uint64_t bytes; /* disk data stored */
};

/* From the HELLO's metadata: whether the source copies its disks, and their
 * sizes. 0, or -1 with err. */
int storage_in_hello(struct storage_in *st, struct json_object *meta, char *err, size_t errlen);
/* The files the disks are written to, one per disk in order, each created or
 * truncated to the source's size (a file another VM holds is refused). 0, or
 * -1 with err. */
int storage_in_open(struct storage_in *st, const char *const *paths, int n, char *err,
		    size_t errlen);
/* One DISK record: inside its disk, then written. 0, or -1 with err. */
int storage_in_record(struct storage_in *st, const uint8_t *p, size_t len, char *err,
		      size_t errlen);
/* END's disk fields (after its first 16 bytes) match what arrived, and the
 * files are flushed (storage_in_flush). 0, or -1 with err. */
int storage_in_finish(struct storage_in *st, const uint8_t *end, size_t len, char *err,
		      size_t errlen);
/* The disks' copies on stable storage: the guest's acknowledged flushes hold
 * here as they did there. At each SYNC, so that END has little left to
 * flush. 0, or -1 with err. */
int storage_in_flush(struct storage_in *st, char *err, size_t errlen);
void storage_in_close(struct storage_in *st);

#endif
