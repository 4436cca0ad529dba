/* Destination side: a stream becomes a snapshot (metadata, state, RAM in a
 * memfd) checked like one, before any guest code runs: the HELLO first, so
 * the VM can be built and jailed while the rest arrives. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "machine/config.h"
#include "migrate/migrate.h"
#include "snapshot/snapshot.h"

static int write_line(int fd, const char *s)
{
	return mig_send_all(fd, s, strlen(s));
}

static int hello(struct mig_recv *r, const uint8_t *p, size_t len, char *err, size_t errlen)
{
	json_tokener *tok = json_tokener_new();
	json_object *meta = tok ? json_tokener_parse_ex(tok, (const char *)p, (int)len) : NULL;
	if (tok && meta && json_tokener_get_parse_end(tok) != len) {
		json_object_put(meta);
		meta = NULL;
	}
	json_tokener_free(tok);
	if (!meta) {
		snprintf(err, errlen, "HELLO is not one JSON object");
		return -1;
	}
	if (storage_in_hello(&r->disks, meta, err, errlen)) {
		json_object_put(meta);
		return -1;
	}
	json_object *pc;
	bool postcopy =
	    json_object_object_get_ex(meta, "postcopy", &pc) && json_object_get_boolean(pc);
	r->snap = snapshot_begin(meta, MIG_FORMAT, &r->mem, err, errlen);
	if (!r->snap)
		return -1;
	if (postcopy && !(r->pc = postcopy_in_new(r->mem))) {
		snprintf(err, errlen, "out of memory for the post-copy page maps");
		return -1;
	}
	r->ram_fd = memfd_create("popek-ram", MFD_CLOEXEC);
	r->ram_owned = r->ram_fd >= 0;
	if (r->ram_fd < 0 || ftruncate(r->ram_fd, (off_t)r->mem) < 0) {
		snprintf(err, errlen, "cannot allocate %llu MiB for the incoming RAM: %s",
			 (unsigned long long)(r->mem >> 20), strerror(errno));
		return -1;
	}
	r->ram =
	    mmap(NULL, r->mem, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, r->ram_fd, 0);
	if (r->ram == MAP_FAILED) {
		r->ram = NULL;
		snprintf(err, errlen, "cannot map the incoming RAM: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* PAGES and ZERO: a run that lies inside RAM. */
static int pages(struct mig_recv *r, enum mig_type t, const uint8_t *p, size_t len, char *err,
		 size_t errlen)
{
	uint64_t off, n;
	if (!mig_page_run(t, p, len, r->mem, &off, &n)) {
		snprintf(err, errlen, "a page record lies outside the VM's %llu MiB of RAM",
			 (unsigned long long)(r->mem >> 20));
		return -1;
	}
	/* Pages are written to the memfd, not through the mapping: a mapping
	 * filled with them took ~8 ms to unmap, inside the downtime. ZERO
	 * punches a hole (it reads as zero and costs no page) with madvise, as
	 * the jail this runs in allows it, not fallocate. */
	size_t done = 0, want = n * MIG_PAGE;
	if (t == MIG_ZERO && madvise(r->ram + off, want, MADV_REMOVE))
		memset(r->ram + off, 0, want);
	while (t == MIG_PAGES && done < want) {
		ssize_t w = pwrite(r->ram_fd, p + 16 + done, want - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "cannot write the incoming RAM: %s",
				 w < 0 ? strerror(errno) : "no space");
			return -1;
		}
		done += (size_t)w;
	}
	r->pages += n;
	return 0;
}

static int record(struct mig_recv *r, enum mig_type t, size_t len, char *err, size_t errlen)
{
	if (t == MIG_HELLO) {
		snprintf(err, errlen, "a second HELLO record");
		return -1;
	}
	if ((t == MIG_PAGES || t == MIG_ZERO) && r->pc && r->pc->discard_end) {
		snprintf(err, errlen, "a page record between DISCARD and the handover");
		return -1;
	}
	if (t == MIG_PAGES || t == MIG_ZERO)
		return pages(r, t, r->buf, len, err, errlen);
	if (t == MIG_DISCARD) {
		if (!r->pc) {
			snprintf(err, errlen, "a DISCARD record in a stream that is not post-copy");
			return -1;
		}
		return postcopy_discard(r->pc, r->ram, r->buf, len, err, errlen);
	}
	if (t == MIG_POSTCOPY_END) {
		snprintf(err, errlen, "POSTCOPY_END before the handover");
		return -1;
	}
	if (t == MIG_DISK)
		return storage_in_record(&r->disks, r->buf, len, err, errlen);
	if (t == MIG_SYNC) {
		if (len != 8) {
			snprintf(err, errlen, "a SYNC record of %zu bytes", len);
			return -1;
		}
		if (storage_in_flush(&r->disks, err, errlen))
			return -1;
		if (r->in.fd >= 0 && write_line(r->in.fd, "synced\n") < 0) {
			snprintf(err, errlen, "the source went away (SYNC not answered)");
			return -1;
		}
		return 0;
	}
	if (r->state) {
		snprintf(err, errlen, "a second STATE record");
		return -1;
	}
	r->state = r->buf; /* the buffer becomes the state; the next record gets a new one */
	r->state_len = len;
	r->buf = NULL;
	r->cap = 0;
	return 0;
}

static void refused(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "migration stream refused: %s", why[0] ? why : "out of memory");
}

struct mig_recv *migrate_receive_begin(const struct mig_in *in, char *err, size_t errlen)
{
	struct mig_recv *r = calloc(1, sizeof(*r));
	char why[400] = "";
	enum mig_type t;
	size_t len;
	if (r) {
		r->in = *in;
		r->ram_fd = -1;
	}
	if (!r || mig_read_magic(&r->in, why, sizeof(why)) ||
	    mig_read(&r->in, &t, &r->buf, &r->cap, &len, why, sizeof(why)))
		goto fail;
	if (t != MIG_HELLO) {
		snprintf(why, sizeof(why), "the stream does not begin with HELLO");
		goto fail;
	}
	if (hello(r, r->buf, len, why, sizeof(why)))
		goto fail;
	return r;
fail:
	migrate_receive_free(r);
	refused(err, errlen, why);
	return NULL;
}

int migrate_receive_disks(struct mig_recv *r, struct vm_config *cfg,
			  const struct disk_config *given, int n, char *err, size_t errlen)
{
	const char *paths[MAX_DISKS] = {0};
	for (int i = 0; i < n; i++) {
		if (given[i].kind == DISK_SOCKET || given[i].ro || given[i].format_raw) {
			snprintf(err, errlen,
				 "--disk %s: a disk copy is a plain file, without options (ro "
				 "comes from the source)",
				 given[i].path);
			return -1;
		}
		paths[i] = given[i].path;
	}
	if (storage_in_open(&r->disks, paths, n, err, errlen))
		return -1;
	for (int i = 0; i < n; i++) {
		cfg->disk[i].path = paths[i];
		cfg->disk[i].kind = DISK_RAW;
		cfg->disk[i].format = NULL;
		cfg->disk[i].lock_later = false; /* no one else has this file */
	}
	return 0;
}

void migrate_receive_config(struct mig_recv *r, struct vm_config *cfg)
{
	snapshot_config(r->snap, cfg);
	cfg->ram_fd = r->ram_fd;
	r->ram_owned = false; /* the machine's now; pages are still written to it */
}

int migrate_receive_rest(struct mig_recv *r, char *err, size_t errlen)
{
	enum mig_type t;
	size_t len;
	char why[400] = "";
	for (;;) {
		if (mig_read(&r->in, &t, &r->buf, &r->cap, &len, why, sizeof(why)))
			goto fail;
		if (t == MIG_END)
			break;
		if (record(r, t, len, why, sizeof(why)))
			goto fail;
	}
	if (!r->state || len < 16 || mig_le(r->buf, 8) != r->pages) {
		snprintf(why, sizeof(why), "END does not match what arrived (%llu pages%s)",
			 (unsigned long long)r->pages, r->state ? "" : ", no STATE");
		goto fail;
	}
	if (storage_in_finish(&r->disks, r->buf, len, why, sizeof(why)))
		goto fail;
	munmap(r->ram, r->mem);
	r->ram = NULL;
	/* The state is the snapshot's from here, whatever it decides. */
	uint8_t *state = r->state;
	r->state = NULL;
	int rc = snapshot_finish(r->snap, state, r->state_len, r->ram_owned ? r->ram_fd : -1, why,
				 sizeof(why));
	r->ram_owned = false; /* so is the memfd, if the machine did not take it */
	if (rc)
		goto fail;
	return 0;
fail:
	refused(err, errlen, why);
	return -1;
}

void migrate_receive_free(struct mig_recv *r)
{
	if (!r)
		return;
	if (r->ram)
		munmap(r->ram, r->mem);
	if (r->ram_owned)
		close(r->ram_fd);
	free(r->buf);
	free(r->state);
	storage_in_close(&r->disks);
	postcopy_in_free(r->pc);
	snapshot_close(r->snap);
	free(r);
}

void migrate_refuse(int conn, const char *why)
{
	char line[600];
	snprintf(line, sizeof(line), "refused %.580s\n", why);
	for (char *p = line; p[1]; p++)
		if (*p == '\n')
			*p = ' ';
	write_line(conn, line);
}

int migrate_handover(int conn, char *err, size_t errlen)
{
	char go[3];
	size_t got = 0;
	if (write_line(conn, "ready\n") < 0) {
		snprintf(err, errlen, "the source went away before the handover: it keeps the VM");
		return -1;
	}
	while (got < sizeof(go)) {
		ssize_t r = read(conn, go + got, sizeof(go) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != sizeof(go) || memcmp(go, "go\n", 3)) {
		snprintf(err, errlen,
			 "the source did not hand the VM over (connection lost after ready): not "
			 "starting it here");
		return -1;
	}
	return 0;
}
