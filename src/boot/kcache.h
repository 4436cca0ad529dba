/* The kernel cache: a bzImage's vmlinux as popek decompressed it, kept in the
 * user's cache directory so that a later boot of the same file copies it into
 * guest RAM instead of decoding the payload again (docs/boot-time.md). One
 * entry per kernel path; it records the identity of the file it was made from
 * (device, inode, size, mtime, ctime), the vmlinux's entry point and segments,
 * and checksums (XXH64) of both. Entries are written to a temporary file and renamed into
 * place, and whatever is read back is checked before use: an entry that fails
 * is refused, and the boot decodes the payload and rewrites it. */
#ifndef POPEK_KCACHE_H
#define POPEK_KCACHE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "boot/boot.h"

struct kcache_key {
	uint64_t dev, ino, size, mtime_s, mtime_ns, ctime_s, ctime_ns;
};

/* An entry's header, at its start (host byte order: the cache is this
 * machine's); the segments' bytes follow it at KCACHE_DATA, back to back. */
struct kcache_head {
	char magic[8];
	struct kcache_key key;
	uint64_t entry, nsegs;
	struct {
		uint64_t paddr, filesz, memsz;
	} seg[ELF_MAX_SEGMENTS];
	uint64_t data_len, data_hash;
	uint64_t head_hash; /* of the bytes before it */
};
#define KCACHE_DATA 512

/* Pieces handed to the writer thread and not yet written, at most. */
#define KCACHE_QUEUE 16

struct kcache {
	char path[PATH_MAX];	/* the entry */
	char tmp[PATH_MAX + 8]; /* the entry being written */
	int fd;			/* of tmp, -1 when none is being written */
	struct kcache_head head;
	uint64_t added; /* data bytes handed to the writer */
	/* The writer thread writes and hashes the pieces kcache_add hands it
	 * while the caller goes on decoding; all below is under lock. */
	bool writing; /* the thread runs */
	pthread_t writer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct {
		const uint8_t *p;
		uint64_t n;
	} queue[KCACHE_QUEUE];
	unsigned qhead, qtail; /* next to write, next free (mod KCACHE_QUEUE) */
	bool done;	       /* no more pieces come */
	bool failed;	       /* why: what went wrong */
	char why[PATH_MAX + 100];
	XXH64_state_t *hash; /* of what was written (the writer's) */
};

/* The key of a file as fstat gave it. */
void kcache_key_of(const struct stat *st, struct kcache_key *key);

/* The entry for the kernel at path (its identity st): in $POPEK_CACHE_DIR,
 * else $XDG_CACHE_HOME/popek, else $HOME/.cache/popek, made if missing (0700)
 * and refused unless it is a directory of ours. Returns 0, or -1 with err. */
int kcache_init(struct kcache *c, const char *path, const struct stat *st, char *err,
		size_t errlen);

/* An entry's header (untrusted): head holds the first KCACHE_DATA bytes of
 * an entry of len bytes (all of them if it is shorter). 0 with e holding its
 * entry point and segments, each at its offset in the entry; 1 if it is
 * intact but made from another file than key; -1 with err if it is damaged.
 * The segments' data is checked by kcache_load as it reads it. */
int kcache_parse(const uint8_t *head, uint64_t len, const struct kcache_key *key,
		 struct elf_image *e, char *err, size_t errlen);

/* Copy the entry's segments into guest RAM (checked as boot_check_elf
 * checks a vmlinux's): 0 with e filled; 1 with err if there is no entry
 * for this file (none yet, or one made from another version of it); -1
 * with err if the entry is damaged. Guest RAM may be written either way. */
int kcache_load(const struct kcache *c, const struct boot_args *a, struct elf_image *e, char *err,
		size_t errlen);

/* Write a new entry for the vmlinux e: kcache_begin, then kcache_add with
 * each segment's filesz bytes in e's order (in as many pieces as the caller
 * likes; they are written on a thread of the cache's own, so the bytes must
 * stay as they are until kcache_commit or kcache_abort returns), then
 * kcache_commit, which puts it in place. Each returns 0 or -1 with err;
 * after a failure, or to give up, kcache_abort removes what was written. */
int kcache_begin(struct kcache *c, const struct elf_image *e, char *err, size_t errlen);
int kcache_add(struct kcache *c, const uint8_t *p, uint64_t n, char *err, size_t errlen);
int kcache_commit(struct kcache *c, char *err, size_t errlen);
void kcache_abort(struct kcache *c);

#endif
