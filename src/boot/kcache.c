/* The kernel cache (kcache.h). An entry is read as untrusted as the image it
 * came from: a file in the user's own directory can still be truncated by a
 * crash, damaged on disk or edited, so its header, its layout against its
 * length and against guest RAM, and its data are all checked. */
#include "boot/kcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC "popekKC1" /* the last byte is the format's version */
/* Copied in pieces this size, each stays in the CPU cache between its hash
 * and its copy. */
#define CHUNK (1u << 20)

_Static_assert(sizeof(struct kcache_head) <= KCACHE_DATA, "the header must fit before the data");

void kcache_key_of(const struct stat *st, struct kcache_key *key)
{
	*key = (struct kcache_key){
	    .dev = st->st_dev,
	    .ino = st->st_ino,
	    .size = (uint64_t)st->st_size,
	    .mtime_s = (uint64_t)st->st_mtim.tv_sec,
	    .mtime_ns = (uint64_t)st->st_mtim.tv_nsec,
	    .ctime_s = (uint64_t)st->st_ctim.tv_sec,
	    .ctime_ns = (uint64_t)st->st_ctim.tv_nsec,
	};
}

/* XXH64: under emulation (the nested harness's TCG) it costs a tenth of
 * zlib's CRC-32, which would double the time a cached kernel takes to load. */
static uint64_t head_hash(const struct kcache_head *h)
{
	return XXH64(h, offsetof(struct kcache_head, head_hash), 0);
}

static int make_dir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot make %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* The cache directory into dir, made if missing. */
static int cache_dir(char *dir, size_t len, char *err, size_t errlen)
{
	const char *own = getenv("POPEK_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"),
		   *home = getenv("HOME");
	char base[PATH_MAX] = ""; /* its parent, made too */
	int n;
	if (own && *own)
		n = snprintf(dir, len, "%s", own);
	else if (xdg && *xdg)
		n = snprintf(base, sizeof(base), "%s", xdg);
	else if (home && *home)
		n = snprintf(base, sizeof(base), "%s/.cache", home);
	else {
		snprintf(err, errlen,
			 "no cache directory: set POPEK_CACHE_DIR, XDG_CACHE_HOME or HOME");
		return -1;
	}
	if (n >= 0 && base[0])
		n = (size_t)n < sizeof(base) ? snprintf(dir, len, "%s/popek", base) : -1;
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "the cache directory's path is too long");
		return -1;
	}
	if ((base[0] && make_dir(base, err, errlen)) || make_dir(dir, err, errlen))
		return -1;
	struct stat st;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s is not a directory of this user's: not used", dir);
		return -1;
	}
	return 0;
}

int kcache_init(struct kcache *c, const char *path, const struct stat *st, char *err, size_t errlen)
{
	char dir[PATH_MAX - 32], real[PATH_MAX];
	c->fd = -1;
	c->tmp[0] = 0;
	c->hash = NULL;
	c->writing = false;
	kcache_key_of(st, &c->head.key);
	if (!realpath(path, real)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (cache_dir(dir, sizeof(dir), err, errlen))
		return -1;
	/* One entry per kernel path: a rebuilt kernel replaces its old entry. */
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = real; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	snprintf(c->path, sizeof(c->path), "%s/kernel-%016llx", dir, (unsigned long long)h);
	return 0;
}

int kcache_parse(const uint8_t *head, uint64_t len, const struct kcache_key *key,
		 struct elf_image *e, char *err, size_t errlen)
{
	struct kcache_head h;
	if (len < KCACHE_DATA) {
		snprintf(err, errlen, "it is truncated (%llu bytes, not even a header)",
			 (unsigned long long)len);
		return -1;
	}
	memcpy(&h, head, sizeof(h));
	if (memcmp(h.magic, MAGIC, sizeof(h.magic))) {
		snprintf(err, errlen, "it is not a kernel cache entry of this popek's format");
		return -1;
	}
	if (h.head_hash != head_hash(&h)) {
		snprintf(err, errlen, "its header fails its checksum");
		return -1;
	}
	if (memcmp(&h.key, key, sizeof(h.key))) {
		snprintf(err, errlen, "it was made from another version of the kernel file");
		return 1;
	}
	if (h.data_len != len - KCACHE_DATA) {
		snprintf(err, errlen, "it has %llu bytes of data where its header says %llu",
			 (unsigned long long)(len - KCACHE_DATA), (unsigned long long)h.data_len);
		return -1;
	}
	if (!h.nsegs || h.nsegs > ELF_MAX_SEGMENTS) {
		snprintf(err, errlen, "it lists %llu segments (1 to %d make sense)",
			 (unsigned long long)h.nsegs, ELF_MAX_SEGMENTS);
		return -1;
	}
	*e = (struct elf_image){.is64 = true, .entry = h.entry, .nsegs = (int)h.nsegs};
	uint64_t off = 0;
	for (int i = 0; i < e->nsegs; i++) {
		uint64_t filesz = h.seg[i].filesz, memsz = h.seg[i].memsz;
		if (filesz > memsz || filesz > h.data_len - off) {
			snprintf(err, errlen, "its segment %d (%llu of %llu bytes) does not fit it",
				 i, (unsigned long long)filesz, (unsigned long long)memsz);
			return -1;
		}
		e->seg[i] = (struct elf_segment){.paddr = h.seg[i].paddr,
						 .vaddr = h.seg[i].paddr,
						 .offset = KCACHE_DATA + off,
						 .filesz = filesz,
						 .memsz = memsz};
		off += filesz;
	}
	if (off != h.data_len) {
		snprintf(err, errlen, "its segments leave %llu bytes of its data over",
			 (unsigned long long)(h.data_len - off));
		return -1;
	}
	return 0;
}

/* All n bytes at off in fd into dst. */
static int read_at(int fd, uint8_t *dst, uint64_t n, uint64_t off, char *err, size_t errlen)
{
	for (uint64_t done = 0; done < n;) {
		ssize_t got = pread(fd, dst + done, n - done, (off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			snprintf(err, errlen, "cannot read it: %s",
				 got < 0 ? strerror(errno)
					 : "it ends early (cut short meanwhile?)");
			return -1;
		}
		done += (uint64_t)got;
	}
	return 0;
}

/* The segments read straight into guest RAM (read, not mapped: a file cut
 * short meanwhile gives an error, not SIGBUS), each piece hashed there while
 * it is in the CPU cache. */
static int read_segments(int fd, const uint8_t *head, const struct elf_image *e,
			 const struct boot_args *a, char *err, size_t errlen)
{
	uint64_t end;
	if (boot_check_elf(a, e, &end, err, errlen))
		return -1;
	XXH64_state_t *hash = XXH64_createState();
	if (!hash) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	XXH64_reset(hash, 0);
	int r = 0;
	for (int i = 0; i < e->nsegs && !r; i++) {
		const struct elf_segment *s = &e->seg[i];
		uint8_t *dst = gpa_ptr(a->mem, s->paddr, s->memsz);
		for (uint64_t done = 0; done < s->filesz && !r; done += CHUNK) {
			uint64_t k = s->filesz - done < CHUNK ? s->filesz - done : CHUNK;
			r = read_at(fd, dst + done, k, s->offset + done, err, errlen);
			XXH64_update(hash, dst + done, k);
		}
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	struct kcache_head h;
	memcpy(&h, head, sizeof(h));
	if (!r && XXH64_digest(hash) != h.data_hash) {
		snprintf(err, errlen, "its data fails its checksum");
		r = -1;
	}
	XXH64_freeState(hash);
	return r;
}

int kcache_load(const struct kcache *c, const struct boot_args *a, struct elf_image *e, char *err,
		size_t errlen)
{
	char why[200];
	int fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", c->path,
			 errno == ENOENT ? "no entry yet" : strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	struct stat st;
	uint8_t head[KCACHE_DATA] = {0};
	int r = -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
		snprintf(why, sizeof(why), "not a regular file of this user's");
	else if ((uint64_t)st.st_size > KCACHE_DATA + a->mem->size)
		snprintf(why, sizeof(why), "larger than guest RAM");
	else if (st.st_size < KCACHE_DATA ||
		 !read_at(fd, head, sizeof(head), 0, why, sizeof(why))) {
		r = kcache_parse(head, (uint64_t)st.st_size, &c->head.key, e, why, sizeof(why));
		if (!r)
			r = read_segments(fd, head, e, a, why, sizeof(why));
	}
	close(fd);
	if (r)
		snprintf(err, errlen, "%s: %s", c->path, why);
	return r;
}

/* All n bytes of p at off in c's file. */
static int put(struct kcache *c, const void *p, uint64_t n, uint64_t off, char *err, size_t errlen)
{
	for (uint64_t done = 0; done < n;) {
		ssize_t w = pwrite(c->fd, (const uint8_t *)p + done, n - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "cannot write %s: %s", c->tmp,
				 w < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		done += (uint64_t)w;
	}
	return 0;
}

/* The writer thread: the queue's pieces, in order, after the header's
 * place; once one fails the rest are only taken off the queue. */
static void *writer(void *arg)
{
	struct kcache *c = arg;
	char why[sizeof(c->why)];
	uint64_t off = KCACHE_DATA;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (c->qhead == c->qtail && !c->done)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->qhead == c->qtail)
			break;
		const uint8_t *p = c->queue[c->qhead % KCACHE_QUEUE].p;
		uint64_t n = c->queue[c->qhead % KCACHE_QUEUE].n;
		bool skip = c->failed;
		pthread_mutex_unlock(&c->lock);
		int r = skip ? 0 : put(c, p, n, off, why, sizeof(why));
		if (!skip && !r)
			XXH64_update(c->hash, p, n);
		off += n;
		pthread_mutex_lock(&c->lock);
		if (r) {
			c->failed = true;
			snprintf(c->why, sizeof(c->why), "%s", why);
		}
		c->qhead++;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int kcache_begin(struct kcache *c, const struct elf_image *e, char *err, size_t errlen)
{
	snprintf(c->tmp, sizeof(c->tmp), "%s.XXXXXX", c->path);
	c->fd = mkostemp(c->tmp, O_CLOEXEC);
	if (c->fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", c->tmp, strerror(errno));
		c->tmp[0] = 0;
		return -1;
	}
	struct kcache_key key = c->head.key;
	c->head = (struct kcache_head){.key = key, .entry = e->entry, .nsegs = (uint64_t)e->nsegs};
	memcpy(c->head.magic, MAGIC, sizeof(c->head.magic));
	for (int i = 0; i < e->nsegs; i++) {
		c->head.seg[i].paddr = e->seg[i].paddr;
		c->head.seg[i].filesz = e->seg[i].filesz;
		c->head.seg[i].memsz = e->seg[i].memsz;
		c->head.data_len += e->seg[i].filesz;
	}
	c->added = 0;
	c->qhead = c->qtail = 0;
	c->done = c->failed = false;
	if (!(c->hash = XXH64_createState())) {
		snprintf(err, errlen, "out of memory");
		kcache_abort(c);
		return -1;
	}
	XXH64_reset(c->hash, 0);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	int r = pthread_create(&c->writer, NULL, writer, c);
	c->writing = !r;
	if (r) {
		snprintf(err, errlen, "cannot start its writer thread: %s", strerror(r));
		kcache_abort(c);
		return -1;
	}
	return 0;
}

int kcache_add(struct kcache *c, const uint8_t *p, uint64_t n, char *err, size_t errlen)
{
	if (n > c->head.data_len - c->added) {
		snprintf(err, errlen, "more data than the segments hold");
		return -1;
	}
	pthread_mutex_lock(&c->lock);
	while (c->qtail - c->qhead == KCACHE_QUEUE)
		pthread_cond_wait(&c->cond, &c->lock);
	c->queue[c->qtail % KCACHE_QUEUE].p = p;
	c->queue[c->qtail % KCACHE_QUEUE].n = n;
	c->qtail++;
	c->added += n;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Let the writer finish what it was handed (or, with cancel, drop it) and
 * end. */
static void stop_writer(struct kcache *c, bool cancel)
{
	if (!c->writing)
		return;
	pthread_mutex_lock(&c->lock);
	c->done = true;
	c->failed |= cancel;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->writer, NULL);
	c->writing = false;
}

int kcache_commit(struct kcache *c, char *err, size_t errlen)
{
	stop_writer(c, false);
	if (c->failed) {
		snprintf(err, errlen, "%s", c->why);
		return -1;
	}
	if (c->added != c->head.data_len) {
		snprintf(err, errlen, "%llu of the segments' %llu bytes were written",
			 (unsigned long long)c->added, (unsigned long long)c->head.data_len);
		return -1;
	}
	c->head.data_hash = XXH64_digest(c->hash);
	c->head.head_hash = head_hash(&c->head);
	if (put(c, &c->head, sizeof(c->head), 0, err, errlen))
		return -1;
	int r = close(c->fd);
	c->fd = -1;
	/* Whole, then in place: a reader sees the old entry or the new one. */
	if (r || rename(c->tmp, c->path)) {
		snprintf(err, errlen, "cannot put %s in place: %s", c->path, strerror(errno));
		return -1;
	}
	c->tmp[0] = 0;
	kcache_abort(c); /* frees the hash */
	return 0;
}

void kcache_abort(struct kcache *c)
{
	stop_writer(c, true);
	if (c->fd >= 0)
		close(c->fd);
	if (c->tmp[0])
		unlink(c->tmp);
	if (c->hash) {
		XXH64_freeState(c->hash);
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cond);
	}
	c->fd = -1;
	c->tmp[0] = 0;
	c->hash = NULL;
}
