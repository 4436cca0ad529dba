#include "migrate/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/disk.h"
#include "machine/machine.h"
#include "migrate/stream.h"

/* A disk the HELLO names may be at most this big (2^50 bytes: 1 PiB). */
#define DISK_SIZE_MAX (1ull << 50)

int storage_out_init(struct storage_out *st, struct machine *m, char *err, size_t errlen)
{
	st->n = m->cfg->ndisks;
	st->buf = malloc(16 + DISK_BLOCK);
	for (int i = 0; i < st->n; i++) {
		struct stat sb;
		st->d[i].fd = machine_disk_fd(m, i);
		if (st->d[i].fd < 0 || fstat(st->d[i].fd, &sb) < 0) {
			snprintf(err, errlen,
				 "disk %s cannot be copied (--copy-storage mirrors raw images "
				 "only; put it on storage both hosts share and migrate without "
				 "--copy-storage)",
				 m->cfg->disk[i].path);
			return -1;
		}
		uint64_t blocks = ((uint64_t)sb.st_size + DISK_BLOCK - 1) / DISK_BLOCK;
		st->d[i].size = (uint64_t)sb.st_size;
		st->d[i].words = (blocks + 63) / 64;
		st->d[i].dirty = calloc(st->d[i].words, sizeof(uint64_t));
		st->d[i].send = calloc(st->d[i].words, sizeof(uint64_t));
		if (!st->buf || !st->d[i].dirty || !st->d[i].send) {
			snprintf(err, errlen, "out of memory for the dirty map of disk %s",
				 m->cfg->disk[i].path);
			return -1;
		}
		for (uint64_t b = 0; b < blocks; b++)
			st->d[i].send[b / 64] |= 1ull << (b % 64);
	}
	return 0;
}

int storage_track(struct storage_out *st, struct machine *m, bool on, char *err, size_t errlen)
{
	for (int i = 0; i < st->n; i++)
		if (machine_disk_track(m, i, on ? st->d[i].dirty : NULL) && on) {
			snprintf(err, errlen, "disk %s cannot track its writes for --copy-storage",
				 m->cfg->disk[i].path);
			return -1;
		}
	return 0;
}

void storage_collect(struct storage_out *st)
{
	for (int i = 0; i < st->n; i++)
		for (uint64_t w = 0; w < st->d[i].words; w++)
			st->d[i].send[w] |=
			    __atomic_exchange_n(&st->d[i].dirty[w], 0, __ATOMIC_RELAXED);
}

uint64_t storage_pending(const struct storage_out *st)
{
	uint64_t bytes = 0;
	for (int i = 0; i < st->n; i++) {
		for (uint64_t w = 0; w < st->d[i].words; w++)
			bytes += (uint64_t)__builtin_popcountll(st->d[i].send[w]) * DISK_BLOCK;
		uint64_t last = (st->d[i].size - 1) / DISK_BLOCK, tail = st->d[i].size % DISK_BLOCK;
		if (tail && st->d[i].send[last / 64] >> (last % 64) & 1)
			bytes -= DISK_BLOCK - tail; /* the last block is short */
	}
	return bytes;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int storage_send(struct storage_out *st, bool first_round,
		 int (*emit)(void *ctx, const void *p, size_t len), void *ctx, char *err,
		 size_t errlen)
{
	for (int i = 0; i < st->n; i++) {
		for (uint64_t w = 0; w < st->d[i].words; w++) {
			for (uint64_t bits = st->d[i].send[w]; bits; bits &= bits - 1) {
				uint64_t off =
				    (w * 64 + (uint64_t)__builtin_ctzll(bits)) * DISK_BLOCK;
				size_t len = st->d[i].size - off < DISK_BLOCK
						 ? (size_t)(st->d[i].size - off)
						 : DISK_BLOCK;
				ssize_t got = pread(st->d[i].fd, st->buf + 16, len, (off_t)off);
				if (got != (ssize_t)len) {
					snprintf(
					    err, errlen,
					    "cannot read disk %d at byte %llu for the copy: %s", i,
					    (unsigned long long)off,
					    got < 0 ? strerror(errno) : "short read");
					return -1;
				}
				if (first_round && all_zero(st->buf + 16, len))
					continue;
				mig_put_le(st->buf, off, 8);
				mig_put_le(st->buf + 8, len, 4);
				mig_put_le(st->buf + 12, (uint64_t)i, 4);
				if (emit(ctx, st->buf, 16 + len))
					return -1;
				st->bytes += len;
			}
			st->d[i].send[w] = 0;
		}
	}
	return 0;
}

void storage_out_free(struct storage_out *st)
{
	for (int i = 0; i < st->n; i++) {
		free(st->d[i].dirty);
		free(st->d[i].send);
	}
	free(st->buf);
	memset(st, 0, sizeof(*st));
}

int storage_in_hello(struct storage_in *st, json_object *meta, char *err, size_t errlen)
{
	json_object *cs, *disks;
	for (int i = 0; i < MAX_DISKS; i++)
		st->fd[i] = -1;
	st->n = 0;
	if (!json_object_object_get_ex(meta, "copy_storage", &cs) || !json_object_get_boolean(cs))
		return 0;
	size_t n = json_object_object_get_ex(meta, "disks", &disks) &&
			   json_object_is_type(disks, json_type_array)
		       ? json_object_array_length(disks)
		       : 0;
	if (n == 0 || n > MAX_DISKS) {
		snprintf(err, errlen, "HELLO says copy_storage with %zu disks (1 to %d)", n,
			 MAX_DISKS);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *size, *d = json_object_array_get_idx(disks, i);
		int64_t v = json_object_object_get_ex(d, "size", &size) &&
				    json_object_is_type(size, json_type_int)
				? json_object_get_int64(size)
				: -1;
		if (v < 512 || (uint64_t)v > DISK_SIZE_MAX) {
			snprintf(err, errlen, "HELLO: disk %zu has no size from 512 bytes to 1 PiB",
				 i);
			return -1;
		}
		st->size[i] = (uint64_t)v;
	}
	st->n = (int)n;
	return 0;
}

int storage_in_open(struct storage_in *st, const char *const *paths, int n, char *err,
		    size_t errlen)
{
	if (n != st->n) {
		if (!st->n)
			snprintf(err, errlen,
				 "--disk is for a migration with --copy-storage; this source "
				 "shares its disks (the destination opens the paths it uses)");
		else
			snprintf(err, errlen,
				 "the source copies its %d disk%s (--copy-storage): give popek "
				 "receive --disk PATH for each (%d given)",
				 st->n, st->n > 1 ? "s" : "", n);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int fd = open(paths[i], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			snprintf(err, errlen, "cannot create disk %s for the copy: %s", paths[i],
				 strerror(errno));
			return -1;
		}
		st->fd[i] = fd;
		/* The source (on this host) holds its own image locked: never
		 * truncate a disk in use, whoever uses it. */
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			snprintf(err, errlen,
				 "disk %s is attached to a VM (the source's own image?): give "
				 "the copy a file of its own",
				 paths[i]);
			return -1;
		}
		if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)st->size[i]) < 0) {
			snprintf(err, errlen, "cannot size disk %s to %llu bytes: %s", paths[i],
				 (unsigned long long)st->size[i], strerror(errno));
			return -1;
		}
		flock(fd, LOCK_UN); /* the VM's disk device takes it */
	}
	return 0;
}

int storage_in_record(struct storage_in *st, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	uint64_t off = len >= 16 ? mig_le(p, 8) : 0, n = len >= 16 ? mig_le(p + 8, 4) : 0,
		 disk = len >= 16 ? mig_le(p + 12, 4) : ~0ull;
	if (disk >= (uint64_t)st->n || n == 0 || len != 16 + n || off > st->size[disk] ||
	    n > st->size[disk] - off) {
		if (st->n)
			snprintf(err, errlen, "a DISK record lies outside the %d disk%s copied",
				 st->n, st->n > 1 ? "s" : "");
		else
			snprintf(err, errlen,
				 "a DISK record, but the source did not say "
				 "copy_storage");
		return -1;
	}
	for (size_t done = 0; done < n;) {
		ssize_t w = pwrite(st->fd[disk], p + 16 + done, n - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "cannot write the copy of disk %llu: %s",
				 (unsigned long long)disk, w < 0 ? strerror(errno) : "no space");
			return -1;
		}
		done += (size_t)w;
	}
	st->bytes += n;
	return 0;
}

int storage_in_finish(struct storage_in *st, const uint8_t *end, size_t len, char *err,
		      size_t errlen)
{
	if (!st->n && len == 16)
		return 0;
	if (!st->n) {
		snprintf(err, errlen,
			 "END has disk fields, but the source did not say "
			 "copy_storage");
		return -1;
	}
	if (len != 32 || mig_le(end + 16, 8) != (uint64_t)st->n ||
	    mig_le(end + 24, 8) != st->bytes) {
		snprintf(err, errlen,
			 "END does not match the disks' copy (%d disks, %llu bytes arrived)", st->n,
			 (unsigned long long)st->bytes);
		return -1;
	}
	return storage_in_flush(st, err, errlen);
}

int storage_in_flush(struct storage_in *st, char *err, size_t errlen)
{
	for (int i = 0; i < st->n; i++)
		if (fdatasync(st->fd[i]) < 0) {
			snprintf(err, errlen, "cannot flush the copy of disk %d: %s", i,
				 strerror(errno));
			return -1;
		}
	return 0;
}

void storage_in_close(struct storage_in *st)
{
	for (int i = 0; i < st->n; i++)
		if (st->fd[i] >= 0) {
			close(st->fd[i]);
			st->fd[i] = -1;
		}
}
