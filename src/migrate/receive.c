/* Destination side: a stream becomes a snapshot (metadata, state, RAM in a
 * memfd) checked like one, before any guest code runs. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "snapshot/snapshot.h"

struct recv {
	struct snapshot *snap;
	uint64_t mem;
	int ram_fd;
	uint8_t *ram;
	uint8_t *state;
	size_t state_len;
	uint64_t pages;
};

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int hello(struct recv *r, const uint8_t *p, size_t len, char *err, size_t errlen)
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
	r->snap = snapshot_begin(meta, MIG_FORMAT, &r->mem, err, errlen);
	if (!r->snap)
		return -1;
	r->ram_fd = memfd_create("popek-ram", MFD_CLOEXEC);
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
static int pages(struct recv *r, enum mig_type t, const uint8_t *p, size_t len, char *err,
		 size_t errlen)
{
	uint64_t off = le(p, 8), n = le(p + 8, 4);
	if (len < 16 || le(p + 12, 4) || (off % MIG_PAGE) || n == 0 || n > MIG_RUN_PAGES ||
	    off > r->mem || n * MIG_PAGE > r->mem - off ||
	    (t == MIG_PAGES ? len != 16 + n * MIG_PAGE : len != 16)) {
		snprintf(err, errlen, "a page record lies outside the VM's %llu MiB of RAM",
			 (unsigned long long)(r->mem >> 20));
		return -1;
	}
	if (t == MIG_PAGES)
		memcpy(r->ram + off, p + 16, n * MIG_PAGE);
	else if (fallocate(r->ram_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			   (off_t)(n * MIG_PAGE)))
		memset(r->ram + off, 0, n * MIG_PAGE); /* a hole reads as zero and costs no page */
	r->pages += n;
	return 0;
}

static int record(struct recv *r, enum mig_type t, uint8_t **buf, size_t *cap, size_t len,
		  char *err, size_t errlen)
{
	if (t == MIG_HELLO)
		return hello(r, *buf, len, err, errlen);
	if (t == MIG_PAGES || t == MIG_ZERO)
		return pages(r, t, *buf, len, err, errlen);
	if (r->state) {
		snprintf(err, errlen, "a second STATE record");
		return -1;
	}
	r->state = *buf; /* the buffer becomes the state; the next record gets a new one */
	r->state_len = len;
	*buf = NULL;
	*cap = 0;
	return 0;
}

struct snapshot *migrate_receive(struct mig_in *in, char *err, size_t errlen)
{
	struct recv r = {.ram_fd = -1};
	uint8_t *buf = NULL;
	size_t cap = 0, len;
	enum mig_type t;
	char why[400] = "";
	if (mig_read_magic(in, why, sizeof(why)))
		goto fail;
	for (;;) {
		if (mig_read(in, &t, &buf, &cap, &len, why, sizeof(why)))
			goto fail;
		if ((t == MIG_HELLO) != !r.snap) {
			snprintf(why, sizeof(why),
				 r.snap ? "a second HELLO record"
					: "the stream does not begin with HELLO");
			goto fail;
		}
		if (t == MIG_END)
			break;
		if (record(&r, t, &buf, &cap, len, why, sizeof(why)))
			goto fail;
	}
	if (!r.state || len != 16 || le(buf, 8) != r.pages) {
		snprintf(why, sizeof(why), "END does not match what arrived (%llu pages%s)",
			 (unsigned long long)r.pages, r.state ? "" : ", no STATE");
		goto fail;
	}
	free(buf);
	munmap(r.ram, r.mem);
	if (snapshot_finish(r.snap, r.state, r.state_len, r.ram_fd, why, sizeof(why))) {
		snapshot_close(r.snap);
		snprintf(err, errlen, "migration stream refused: %s", why);
		return NULL;
	}
	return r.snap;
fail:
	free(buf);
	if (r.ram)
		munmap(r.ram, r.mem);
	if (r.ram_fd >= 0)
		close(r.ram_fd);
	free(r.state);
	snapshot_close(r.snap);
	snprintf(err, errlen, "migration stream refused: %s", why[0] ? why : "out of memory");
	return NULL;
}

static int write_line(int fd, const char *s)
{
	return mig_send_all(fd, s, strlen(s));
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
