/* The migration stream (docs/migration.md): a magic, then records, each
 * framed and checksummed, optionally zstd-compressed. Reading is bounded: a
 * record longer than its type allows, a bad checksum or a short read is an
 * error, never an allocation or a read past what arrived. */
#ifndef POPEK_MIGRATE_STREAM_H
#define POPEK_MIGRATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIG_MAGIC	 "POPEKMG1"
#define MIG_FORMAT	 "popek-migration"
#define MIG_PAGE	 4096u
#define MIG_RUN_PAGES	 256u /* pages in one PAGES record at most */
#define MIG_HDR_LEN	 16u
#define MIG_DISK_MAX	 (1u << 20) /* data bytes in one DISK record at most */
#define MIG_DISCARD_RUNS 65536u	    /* runs in one DISCARD record at most */

enum mig_type {
	MIG_HELLO = 1,	  /* JSON metadata, as snapshot.json without its files */
	MIG_PAGES,	  /* u64 offset, u32 npages, u32 0, npages × 4096 bytes */
	MIG_ZERO,	  /* u64 offset, u32 npages, u32 0: those pages are zero now */
	MIG_STATE,	  /* the state sections (POPEKST1), as state.bin */
	MIG_END,	  /* u64 pages sent, u64 rounds[, u64 disks, u64 disk bytes sent] */
	MIG_SYNC,	  /* u64 round: answered "synced" once all before it is stored */
	MIG_DISK,	  /* u64 offset, u32 length, u32 disk, length bytes of that disk */
	MIG_DISCARD,	  /* post-copy: runs of { u64 offset, u64 npages } the destination lacks */
	MIG_POSTCOPY_END, /* u64 pages pushed after the handover */
	NR_MIG_TYPES
};

#define MIG_F_ZSTD 1u

/* Where records come from: a socket, or a buffer (the fuzz target). */
struct mig_in {
	int fd;
	const uint8_t *buf;
	size_t left;
	uint64_t bytes; /* read so far */
};

/* Where they go; bytes counts what was written, for the bandwidth. */
struct mig_out {
	int fd;
	bool compress;
	uint64_t bytes;
	void *zbuf; /* compression scratch */
	size_t zcap;
};

/* Little-endian n-byte integers, as every record field is. */
void mig_put_le(uint8_t *p, uint64_t v, int n);
uint64_t mig_le(const uint8_t *p, int n);

/* Largest payload (uncompressed) a record of type t may have. */
uint64_t mig_max_len(enum mig_type t);

/* A run of n pages at byte offset off lies inside mem bytes of RAM (and is
 * page-aligned, not empty): what PAGES, ZERO and DISCARD must give. */
bool mig_run_inside(uint64_t off, uint64_t n, uint64_t mem);
/* A PAGES or ZERO payload of len bytes: its run (*off, *n pages) inside RAM,
 * at most MIG_RUN_PAGES, with exactly its pages' bytes. */
bool mig_page_run(enum mig_type t, const uint8_t *p, size_t len, uint64_t mem, uint64_t *off,
		  uint64_t *n);

/* Write one record; 0 or -1 (errno set) when the peer is gone. */
int mig_write(struct mig_out *o, enum mig_type t, const void *payload, size_t len);
void mig_out_free(struct mig_out *o);
/* All of p to socket fd; 0 or -1 when the peer is gone (no SIGPIPE). */
int mig_send_all(int fd, const void *p, size_t n);

/* Read the magic; 0 or -1 with err. */
int mig_read_magic(struct mig_in *in, char *err, size_t errlen);
/* Read one record into *buf (grown as needed, at most mig_max_len of its
 * type; the caller frees): its type and uncompressed length. 0 or -1 with err. */
int mig_read(struct mig_in *in, enum mig_type *t, uint8_t **buf, size_t *cap, size_t *len,
	     char *err, size_t errlen);

#endif
