/* Source side: pre-copy. Round 1 sends every page that holds data while the
 * VM runs; each later round collects the pages written since (vCPUs through
 * the engine's dirty log, devices through guest_mem_dirty) and sends them
 * again, until the rest fits in --max-downtime at the bandwidth measured;
 * the last round runs with the VM paused and carries the state. A guest that
 * dirties memory faster than it can be sent is throttled (auto-converge).
 * The VM runs here until the destination says it is ready. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "machine/machine.h"
#include "migrate/migrate.h"
#include "migrate/storage.h"
#include "snapshot/blob.h"
#include "snapshot/memimage.h"
#include "snapshot/snapshot.h"

#define MAX_ROUNDS	40
#define THROTTLE_FIRST	20 /* percent of the time the vCPUs are held, first step */
#define THROTTLE_STEP	10
#define THROTTLE_MAX	99
#define THROTTLE_SLICE	(20 * 1000000ull) /* ns: one run + hold period */
#define READY_TIMEOUT_S 60

/* The stop-and-copy phases, each ending at sender.at[]: the pause starts at
 * PH_PAUSE, and the downtime is the sum of the rest (reported by name). */
enum phase { PH_PAUSE, PH_COLLECT, PH_PAGES, PH_FLUSH, PH_STATE, PH_READY, PH_GO, NPHASES };
static const char *const phase_name[NPHASES] = {
    [PH_COLLECT] = "collect",	/* the last dirty log */
    [PH_PAGES] = "last_pages",	/* sending what it held (pages, copied disk blocks) */
    [PH_FLUSH] = "disk_flush",	/* fsync of the disks */
    [PH_STATE] = "state",	/* vCPU and device state, STATE and END sent */
    [PH_READY] = "destination", /* until it has built the VM and says ready */
    [PH_GO] = "go",		/* writing go */
};

struct sender {
	struct machine *m;
	struct migrate_opts o;
	int conn, reply;
	struct mig_out out;
	uint64_t npages, words;
	uint64_t *send;		  /* pages to send this round, by offset in RAM / 4096 */
	uint64_t *devdirty;	  /* m->mem.dirty while logging */
	uint8_t *run;		  /* one PAGES payload */
	struct storage_out disks; /* --copy-storage */
	bool was_paused;	  /* by someone else: stays paused between rounds */
	bool held;		  /* paused by us */
	bool logging;
	bool postcopy;	  /* switching: the rest goes after the handover */
	bool handed_over; /* go written: the VM is the destination's */
	char pulls[64];	  /* post-copy: the destination's request line so far */
	size_t npull;
	uint64_t pulled;
	unsigned throttle; /* percent */
	uint64_t phase_ns; /* when the throttle's current run or hold began */
	uint64_t round_bytes, round_start, pages_sent;
	uint64_t at[NPHASES]; /* monotonic ns */
	char err[512];
};

static void set(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, v, __ATOMIC_RELAXED);
}

static void hold(struct sender *s, bool on)
{
	if (s->held == on || s->was_paused)
		return;
	if (on)
		machine_pause(s->m);
	else
		machine_resume(s->m);
	s->held = on;
	s->phase_ns = monotonic_ns();
}

/* Auto-converge: while sending, the vCPUs run for (100 - throttle)% of each
 * slice and are held for the rest. */
static void throttle_tick(struct sender *s)
{
	if (!s->throttle)
		return;
	uint64_t held = THROTTLE_SLICE * s->throttle / 100, elapsed = monotonic_ns() - s->phase_ns;
	if (s->held ? elapsed >= held : elapsed >= THROTTLE_SLICE - held)
		hold(s, !s->held);
}

/* --bandwidth: sleep until this round's bytes fit the rate. */
static void pace(struct sender *s)
{
	if (!s->o.bandwidth)
		return;
	uint64_t due = s->round_start + (s->round_bytes * 1000000000ull) / s->o.bandwidth,
		 now = monotonic_ns();
	if (due > now) {
		struct timespec ts = {(time_t)((due - now) / 1000000000ull),
				      (long)((due - now) % 1000000000ull)};
		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	}
}

static int await_reply(struct sender *s, const char *want, int timeout_ms);

static int emit(struct sender *s, enum mig_type t, const void *p, size_t len)
{
	uint64_t before = s->out.bytes;
	if (mig_write(&s->out, t, p, len)) {
		int e = errno;
		/* A destination that refused the stream says why before it closes. */
		await_reply(s, NULL, 1000);
		if (strncmp(s->err, "the destination refused", 23))
			snprintf(s->err, sizeof(s->err), "the connection to %s broke: %s", s->o.uri,
				 strerror(e));
		return -1;
	}
	s->round_bytes += s->out.bytes - before;
	set(&s->m->migration.sent_bytes, s->out.bytes);
	pace(s);
	throttle_tick(s);
	return 0;
}

/* One run of n pages from page first: PAGES, or ZERO if they all are
 * (skipped in round 1: the destination's RAM starts zeroed). */
static int send_run(struct sender *s, uint64_t first, uint64_t n, bool first_round)
{
	const uint8_t *src = s->m->mem.base + first * MIG_PAGE;
	bool zero = true;
	for (uint64_t i = 0; i < n && zero; i++)
		zero = memimage_page_zero(src + i * MIG_PAGE);
	if (zero && first_round)
		return 0;
	mig_put_le(s->run, first * MIG_PAGE, 8);
	mig_put_le(s->run + 8, n, 4);
	mig_put_le(s->run + 12, 0, 4);
	s->pages_sent += n;
	if (zero)
		return emit(s, MIG_ZERO, s->run, 16);
	memcpy(s->run + 16, src, n * MIG_PAGE);
	return emit(s, MIG_PAGES, s->run, 16 + n * MIG_PAGE);
}

/* Every page set in s->send, in runs; clears the bitmap. */
static int send_pages(struct sender *s, bool first_round)
{
	uint64_t start = 0, n = 0;
	for (uint64_t p = 0; p < s->npages; p++) {
		bool want = s->send[p / 64] >> (p % 64) & 1;
		if (want && n && (start + n != p || n == MIG_RUN_PAGES)) {
			if (send_run(s, start, n, first_round))
				return -1;
			n = 0;
		}
		if (want && !n++)
			start = p;
	}
	memset(s->send, 0, s->words * sizeof(*s->send));
	return n ? send_run(s, start, n, first_round) : 0;
}

static uint64_t count_pages(const struct sender *s)
{
	uint64_t n = 0;
	for (uint64_t w = 0; w < s->words; w++)
		n += (uint64_t)__builtin_popcountll(s->send[w]);
	return n;
}

/* With the vCPUs and devices held: what was written since the last collect. */
static int collect(struct sender *s)
{
	struct machine *m = s->m;
	for (int i = 0; i < m->mem.nranges; i++) {
		int rc = m->engine->dirty_collect(m->evm, (unsigned)i,
						  s->send + m->mem.range[i].offset / MIG_PAGE / 64);
		if (rc) {
			snprintf(s->err, sizeof(s->err), "engine %s cannot read its dirty log: %s",
				 m->engine->name, strerror(-rc));
			return -1;
		}
	}
	for (uint64_t w = 0; w < s->words; w++)
		s->send[w] |= __atomic_exchange_n(&s->devdirty[w], 0, __ATOMIC_RELAXED);
	storage_collect(&s->disks);
	return 0;
}

static int emit_disk(void *ctx, const void *p, size_t len)
{
	return emit(ctx, MIG_DISK, p, len);
}

/* This round's pages, then its disk blocks (--copy-storage). */
static int send_round(struct sender *s, bool first_round)
{
	return send_pages(s, first_round) ||
		       storage_send(&s->disks, first_round, emit_disk, s, s->err, sizeof(s->err))
		   ? -1
		   : 0;
}

/* Round 1: the pages that may hold data, as the snapshot writer finds them. */
static void all_data_pages(struct sender *s)
{
	bool cand[MEM_CHUNK / MIG_PAGE];
	for (uint64_t off = 0; off < s->m->mem.size; off += MEM_CHUNK) {
		memimage_data_pages(&s->m->mem, off, cand);
		for (uint64_t i = 0; i < MEM_CHUNK / MIG_PAGE && off / MIG_PAGE + i < s->npages;
		     i++)
			if (cand[i])
				s->send[(off / MIG_PAGE + i) / 64] |=
				    1ull << ((off / MIG_PAGE + i) % 64);
	}
}

static void progress(struct sender *s, unsigned round, uint64_t dirty, uint64_t disk_dirty,
		     uint64_t rate, uint64_t downtime_ns)
{
	struct migration_progress *mp = &s->m->migration;
	set(&mp->round, round);
	set(&mp->dirty_pages, dirty);
	set(&mp->dirty_rate, rate);
	set(&mp->expected_downtime_us, downtime_ns / 1000);
	set(&mp->throttle_pct, s->throttle);
	char line[320];
	snprintf(line, sizeof(line),
		 "{\"progress\":{\"round\":%u,\"sent\":%llu,\"dirty_pages\":%llu,"
		 "\"dirty_disk_bytes\":%llu,\"dirty_rate\":%llu,\"expected_downtime_ms\":%.1f,"
		 "\"throttle\":%u}}\n",
		 round, (unsigned long long)s->out.bytes, (unsigned long long)dirty,
		 (unsigned long long)disk_dirty, (unsigned long long)rate,
		 (double)downtime_ns / 1e6, s->throttle);
	mig_send_all(s->reply, line, strlen(line));
}

static void note(struct sender *s, const char *text)
{
	char line[320];
	json_object *o = json_object_new_object(), *p = json_object_new_object();
	json_object_object_add(p, "note", json_object_new_string(text));
	json_object_object_add(o, "progress", p);
	snprintf(line, sizeof(line), "%s\n",
		 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	mig_send_all(s->reply, line, strlen(line));
}

/* Dirty logging on (or off), with the VM held so no write is in flight. */
static int logging(struct sender *s, bool on)
{
	struct machine *m = s->m;
	bool was_held = s->held;
	hold(s, true);
	int rc = m->engine->dirty_log(m->evm, on);
	__atomic_store_n(&m->mem.dirty, on && !rc ? s->devdirty : NULL, __ATOMIC_RELEASE);
	s->logging = on && !rc;
	if (rc)
		snprintf(s->err, sizeof(s->err), "engine %s cannot log dirty pages: %s",
			 m->engine->name, strerror(-rc));
	/* Off again if it fails: the disks' maps are freed with the sender. */
	if (storage_track(&s->disks, m, s->logging, s->err, sizeof(s->err)) && s->logging) {
		storage_track(&s->disks, m, false, s->err, sizeof(s->err));
		rc = -1;
	}
	if (!was_held)
		hold(s, false);
	return rc ? -1 : 0;
}

/* The destination's answer: want ("ready\n" after END, "synced\n" after
 * SYNC; NULL: only a refusal is looked for), or "refused WHY" (at any time). */
static int await_reply(struct sender *s, const char *want, int timeout_ms)
{
	char line[640];
	size_t n = 0;
	struct pollfd p = {.fd = s->conn, .events = POLLIN};
	while (n < sizeof(line) - 1 && (n == 0 || line[n - 1] != '\n')) {
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		ssize_t r = read(s->conn, line + n, 1);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	line[n] = 0;
	if (want && !strcmp(line, want))
		return 0;
	if (!strncmp(line, "refused ", 8)) {
		line[strcspn(line, "\n")] = 0;
		snprintf(s->err, sizeof(s->err), "the destination refused the VM: %.450s",
			 line + 8);
	} else {
		snprintf(s->err, sizeof(s->err),
			 "the destination did not confirm it has %s (connection lost or no "
			 "answer in %d s)",
			 want && !strcmp(want, "synced\n") ? "the pages sent" : "the VM",
			 timeout_ms / 1000);
	}
	return -1;
}

/* The shared disks are the destination's from here: flush what was written. */
static int flush_disks(struct sender *s)
{
	for (int i = 0; i < s->m->cfg->ndisks; i++) {
		int fd = machine_disk_fd(s->m, i);
		if (fd >= 0 && fsync(fd) < 0) {
			snprintf(s->err, sizeof(s->err), "cannot flush disk %s: %s",
				 s->m->cfg->disk[i].path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* After a round, while the VM runs: wait until the destination has stored
 * what was sent. Pages still in flight (in socket buffers, or the receiver
 * behind) would otherwise be drained in the downtime; and the round's time
 * then measures the bandwidth end to end. */
static int sync_dest(struct sender *s, unsigned round)
{
	uint8_t p[8];
	mig_put_le(p, round, 8);
	if (emit(s, MIG_SYNC, p, sizeof(p)))
		return -1;
	struct pollfd pf = {.fd = s->conn, .events = POLLIN};
	uint64_t deadline = monotonic_ns() + READY_TIMEOUT_S * 1000000000ull;
	while (poll(&pf, 1, 20) == 0 && monotonic_ns() < deadline)
		throttle_tick(s); /* auto-converge goes on meanwhile */
	return await_reply(s, "synced\n", 1000);
}

/* Everything but the handover; the VM is held when it returns 0. */
static int precopy(struct sender *s, unsigned *rounds)
{
	struct machine *m = s->m;
	json_object *meta = snapshot_meta(m, MIG_FORMAT, s->err, sizeof(s->err));
	if (!meta)
		return -1;
	if (s->o.copy_storage)
		json_object_object_add(meta, "copy_storage", json_object_new_boolean(true));
	if (s->o.postcopy)
		json_object_object_add(meta, "postcopy", json_object_new_boolean(true));
	const char *hello = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN);
	int rc = mig_send_all(s->conn, MIG_MAGIC, 8) || emit(s, MIG_HELLO, hello, strlen(hello));
	json_object_put(meta);
	if (rc) {
		snprintf(s->err, sizeof(s->err), "cannot reach %s: %s", s->o.uri, strerror(errno));
		return -1;
	}
	if (logging(s, true))
		return -1;
	all_data_pages(s);
	uint64_t prev_dirty = ~0ull;
	unsigned slow = 0;
	for (unsigned round = 1;; round++) {
		s->round_bytes = 0;
		s->round_start = monotonic_ns();
		if (send_round(s, round == 1) || sync_dest(s, round))
			return -1;
		uint64_t took = monotonic_ns() - s->round_start + 1;
		hold(s, true);
		s->at[PH_PAUSE] = monotonic_ns();
		if (collect(s))
			return -1;
		s->at[PH_COLLECT] = monotonic_ns();
		uint64_t dirty = count_pages(s),
			 bytes = dirty * MIG_PAGE + storage_pending(&s->disks);
		uint64_t bw = s->round_bytes * 1000000000ull / took + 1;
		if (s->o.bandwidth && bw > s->o.bandwidth)
			bw = s->o.bandwidth;
		uint64_t downtime = bytes * 1000000000ull / bw, rate = bytes * 1000000000ull / took;
		progress(s, round, dirty, storage_pending(&s->disks), rate, downtime);
		*rounds = round;
		if (downtime <= s->o.max_downtime_ns)
			return 0;
		/* --postcopy: no more rounds, no throttling; the dirty set is
		 * discarded and pushed after the handover. */
		s->postcopy = s->o.postcopy;
		if (s->postcopy)
			return 0;
		if (round == MAX_ROUNDS) {
			note(s, "did not converge in 40 rounds: the last round takes longer than "
				"--max-downtime");
			return 0;
		}
		/* Not converging: the guest dirties more than half of what a round
		 * sends, twice running. */
		slow = bytes * 2 > s->round_bytes && dirty >= prev_dirty / 2 ? slow + 1 : 0;
		prev_dirty = dirty;
		if (slow >= 2 && s->throttle < THROTTLE_MAX) {
			s->throttle = s->throttle ? s->throttle + THROTTLE_STEP : THROTTLE_FIRST;
			if (s->throttle > THROTTLE_MAX)
				s->throttle = THROTTLE_MAX;
			char text[160];
			snprintf(text, sizeof(text),
				 "auto-converge: the guest dirties memory faster than it can be "
				 "sent; vCPUs throttled to %u%% of their time",
				 100 - s->throttle);
			note(s, text);
			slow = 0;
		}
		hold(s, false);
	}
}

static bool wanted(const struct sender *s, uint64_t pg)
{
	return s->send[pg / 64] >> (pg % 64) & 1;
}

/* Post-copy's switch: the pages the destination must not read (the dirty
 * set, left in s->send for the push), as DISCARD runs. */
static int discard(struct sender *s)
{
	uint8_t *rec = s->run; /* room for 16 + 1 MiB: as many runs as fit */
	size_t len = 0, cap = (16 + MIG_RUN_PAGES * MIG_PAGE) / 16 * 16;
	if (cap > 16 * MIG_DISCARD_RUNS)
		cap = 16 * MIG_DISCARD_RUNS;
	for (uint64_t p = 0; p < s->npages;) {
		if (!wanted(s, p)) {
			p++;
			continue;
		}
		uint64_t n = 1;
		while (p + n < s->npages && wanted(s, p + n))
			n++;
		if (len == cap && emit(s, MIG_DISCARD, rec, len))
			return -1;
		len = len == cap ? 0 : len;
		mig_put_le(rec + len, p * MIG_PAGE, 8);
		mig_put_le(rec + len + 8, n, 8);
		len += 16;
		p += n;
	}
	return len ? emit(s, MIG_DISCARD, rec, len) : 0;
}

/* A page the destination's guest touched: it jumps the queue. */
static int pull(struct sender *s, const char *line)
{
	char *end;
	unsigned long long off = strtoull(line + 5, &end, 10);
	if (strncmp(line, "pull ", 5) || *end || off % MIG_PAGE || off >= s->m->mem.size) {
		snprintf(s->err, sizeof(s->err), "the destination asked for a bad page (%.40s)",
			 line);
		return -1;
	}
	uint64_t pg = off / MIG_PAGE;
	if (!wanted(s, pg))
		return 0; /* on its way already */
	s->send[pg / 64] &= ~(1ull << (pg % 64));
	s->pulled++;
	return send_run(s, pg, 1, false);
}

/* What the destination asked for since the last look, without waiting;
 * also "done" (1) once it has every page. */
static int read_requests(struct sender *s, int timeout_ms)
{
	struct pollfd p = {.fd = s->conn, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	char in[512];
	ssize_t got = read(s->conn, in, sizeof(in));
	if (got <= 0) {
		snprintf(s->err, sizeof(s->err), "the destination closed the connection");
		return -1;
	}
	for (ssize_t i = 0; i < got; i++) {
		if (in[i] != '\n') {
			if (s->npull == sizeof(s->pulls) - 1) {
				snprintf(s->err, sizeof(s->err),
					 "the destination sent a line too long for a request");
				return -1;
			}
			s->pulls[s->npull++] = in[i];
			continue;
		}
		s->pulls[s->npull] = 0;
		s->npull = 0;
		if (!strcmp(s->pulls, "done"))
			return 1;
		if (pull(s, s->pulls))
			return -1;
	}
	return 0;
}

static void push_progress(struct sender *s, uint64_t left)
{
	char line[200];
	set(&s->m->migration.dirty_pages, left);
	snprintf(line, sizeof(line),
		 "{\"progress\":{\"postcopy_left\":%llu,\"sent\":%llu,\"pulled\":%llu}}\n",
		 (unsigned long long)left, (unsigned long long)s->out.bytes,
		 (unsigned long long)s->pulled);
	mig_send_all(s->reply, line, strlen(line));
}

/* After go: every discarded page in order, the pulled ones first, then
 * POSTCOPY_END; done when the destination says it has them all. */
static int push(struct sender *s)
{
	uint64_t first = s->pages_sent, left = count_pages(s), shown = monotonic_ns();
	s->round_bytes = 0;
	s->round_start = monotonic_ns();
	for (uint64_t p = 0; p < s->npages;) {
		if (!wanted(s, p)) {
			p++;
			continue;
		}
		/* Before each run: a pull waits for one run at most. */
		if (read_requests(s, 0) < 0)
			return -1;
		if (!wanted(s, p))
			continue; /* just pulled */
		uint64_t n = 0;
		while (p + n < s->npages && n < MIG_RUN_PAGES && wanted(s, p + n)) {
			s->send[(p + n) / 64] &= ~(1ull << ((p + n) % 64));
			n++;
		}
		if (send_run(s, p, n, false))
			return -1;
		p += n;
		if (monotonic_ns() - shown > 200 * 1000000ull) {
			push_progress(s, left - (s->pages_sent - first));
			shown = monotonic_ns();
		}
	}
	uint8_t end[8];
	mig_put_le(end, s->pages_sent - first, 8);
	if (emit(s, MIG_POSTCOPY_END, end, sizeof(end)))
		return -1;
	push_progress(s, 0);
	uint64_t deadline = monotonic_ns() + READY_TIMEOUT_S * 1000000000ull;
	int rc;
	while (!(rc = read_requests(s, 100)) && monotonic_ns() < deadline)
		;
	if (rc == 0)
		snprintf(s->err, sizeof(s->err),
			 "the destination did not confirm it has every page in %d s",
			 READY_TIMEOUT_S);
	return rc > 0 ? 0 : -1;
}

static void finish(struct sender *s, int rc, unsigned rounds, uint64_t downtime)
{
	char line[900];
	json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(rc == 0));
	if (rc) {
		json_object_object_add(r, "error", json_object_new_string(s->err));
		/* After go: the source cannot resume it. */
		json_object_object_add(r, "stopped", json_object_new_boolean(s->handed_over));
	} else {
		json_object_object_add(r, "rounds", json_object_new_int((int)rounds));
		json_object_object_add(r, "bytes", json_object_new_int64((int64_t)s->out.bytes));
		json_object_object_add(r, "downtime_ms",
				       json_object_new_double((double)downtime / 1e6));
		json_object *ph = json_object_new_object();
		for (int i = PH_PAUSE + 1; i < NPHASES; i++)
			json_object_object_add(
			    ph, phase_name[i],
			    json_object_new_double((double)(s->at[i] - s->at[i - 1]) / 1e6));
		json_object_object_add(r, "phases_ms", ph);
		if (s->postcopy)
			json_object_object_add(r, "pulled",
					       json_object_new_int64((int64_t)s->pulled));
	}
	snprintf(line, sizeof(line), "%s\n",
		 json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
	json_object_put(r);
	mig_send_all(s->reply, line, strlen(line));
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct machine *m = s->m;
	unsigned rounds = 0;
	struct blob state = {0};
	uint8_t end[32];
	int rc = precopy(s, &rounds);
	/* Post-copy: the disks converge before the switch; RAM's dirty pages
	 * are only named. */
	if (!rc && !(rc = s->postcopy ? storage_send(&s->disks, false, emit_disk, s, s->err,
						     sizeof(s->err)) ||
					    discard(s)
				      : send_round(s, false)))
		s->at[PH_PAGES] = monotonic_ns();
	if (!rc && !(rc = flush_disks(s)))
		s->at[PH_FLUSH] = monotonic_ns();
	mig_put_le(end, s->pages_sent, 8);
	mig_put_le(end + 8, rounds, 8);
	mig_put_le(end + 16, (uint64_t)s->disks.n, 8);
	mig_put_le(end + 24, s->disks.bytes, 8);
	if (!rc && !(rc = snapshot_state(m, &state, NULL, s->err, sizeof(s->err)) ||
			  emit(s, MIG_STATE, state.buf, state.len) ||
			  emit(s, MIG_END, end, s->o.copy_storage ? 32 : 16)))
		s->at[PH_STATE] = monotonic_ns();
	blob_free(&state);
	if (!rc && !(rc = await_reply(s, "ready\n", READY_TIMEOUT_S * 1000)))
		s->at[PH_READY] = monotonic_ns();
	if (!rc && mig_send_all(s->conn, "go\n", 3)) {
		/* The destination will not start without it: better here than nowhere. */
		snprintf(s->err, sizeof(s->err), "the connection to %s broke at the handover",
			 s->o.uri);
		rc = -1;
	}
	s->at[PH_GO] = monotonic_ns();
	uint64_t downtime = s->at[PH_GO] - s->at[PH_PAUSE];
	if (s->logging)
		logging(s, false);
	s->throttle = 0;
	/* o.postcopy, not postcopy: the HELLO told the destination to wait for
	 * POSTCOPY_END, which comes (after no pages) when the pre-copy converged. */
	if (!rc && s->o.postcopy) {
		s->handed_over = true;
		uint64_t left = count_pages(s);
		if (push(s)) {
			char why[sizeof(s->err)];
			snprintf(why, sizeof(why), "%s", s->err);
			snprintf(
			    s->err, sizeof(s->err),
			    "post-copy broke after the handover (%.300s) with %llu of %llu pages "
			    "not sent: the destination cannot run the VM on",
			    why, (unsigned long long)count_pages(s), (unsigned long long)left);
			rc = -1;
		}
	}
	set(&m->migration.active, 0);
	if (rc && s->handed_over) {
		/* Held, never resumed: the guest has run there. */
		fprintf(stderr, "popek: migration to %s failed: %s; the VM stays stopped here\n",
			s->o.uri, s->err);
	} else if (rc) {
		fprintf(stderr, "popek: migration to %s failed: %s; the VM keeps running here\n",
			s->o.uri, s->err);
		hold(s, false);
	} else {
		fprintf(stderr,
			"popek: %s migrated to %s (%u rounds%s, %.1f MiB, downtime %.1f ms)\n",
			m->name, s->o.uri, rounds, s->postcopy ? " and post-copy" : "",
			(double)s->out.bytes / (1 << 20), (double)downtime / 1e6);
		/* The reply first: the process may end as soon as the VM stops. */
		finish(s, rc, rounds, downtime);
		machine_stop(m, STOP_POWEROFF, 0, "migrated to %s", s->o.uri);
		hold(s, false);
	}
	if (rc)
		finish(s, rc, rounds, downtime);
	close(s->conn);
	close(s->reply);
	mig_out_free(&s->out);
	free(s->send);
	free(s->devdirty);
	free(s->run);
	storage_out_free(&s->disks);
	free(s);
	return NULL;
}

int migrate_start(struct machine *m, int conn, int reply_fd, const struct migrate_opts *o,
		  char *err, size_t errlen)
{
	const char *why = NULL;
	char why_disks[400];
	bool vhost_disk = false;
	for (int i = 0; i < m->cfg->ndisks; i++)
		vhost_disk |= m->cfg->disk[i].kind != DISK_RAW;
	if (!m->engine->dirty_log || !m->engine->dirty_collect)
		why = "this engine cannot log dirty pages";
	else if (m->cfg->nfs || vhost_disk)
		why = "a VM with --fs or a vhost-user disk (an image format, socket=) cannot "
		      "migrate: its backend writes guest memory popek cannot track";
	else if (__atomic_load_n(&m->migration.active, __ATOMIC_RELAXED))
		why = "a migration of this VM is already running";
	struct sender *s = why ? NULL : calloc(1, sizeof(*s));
	if (s) {
		s->m = m;
		s->o = *o;
		s->conn = conn;
		s->reply = reply_fd;
		s->out.fd = conn;
		s->out.compress = o->compress;
		s->npages = m->mem.size / MIG_PAGE;
		s->words = (s->npages + 63) / 64;
		s->send = calloc(s->words, sizeof(uint64_t));
		s->devdirty = calloc(s->words, sizeof(uint64_t));
		s->run = malloc(16 + MIG_RUN_PAGES * MIG_PAGE);
		s->was_paused = machine_paused(m);
		if (o->copy_storage && storage_out_init(&s->disks, m, why_disks, sizeof(why_disks)))
			why = why_disks;
	}
	pthread_t t;
	if (!why && (!s || !s->send || !s->devdirty || !s->run))
		why = "out of memory";
	if (!why) {
		set(&m->migration.active, 1);
		if (pthread_create(&t, NULL, sender_main, s)) {
			set(&m->migration.active, 0);
			why = "cannot start the migration thread";
		}
	}
	if (why) {
		snprintf(err, errlen, "%s", why);
		if (s) {
			free(s->send);
			free(s->devdirty);
			free(s->run);
			storage_out_free(&s->disks);
			free(s);
		}
		close(conn);
		close(reply_fd);
		return -1;
	}
	pthread_detach(t);
	return 0;
}
