/* The gate a device passes each guest request through before it acts on it:
 * the machine's interposition point (src/machine/interpose.c) behind a
 * function pointer, so devices know nothing of policies. Without a gate (no
 * check function) every request goes on. */
#ifndef POPEK_REQUEST_GATE_H
#define POPEK_REQUEST_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gate_kind { GATE_DISK, GATE_RNG, GATE_CONSOLE, GATE_NET };
/* In the order of the policy's operation bits (src/policy/policy.h). A
 * frame the guest receives is a read, one it sends a write. */
enum gate_op { GATE_READ, GATE_WRITE, GATE_FLUSH, GATE_DISCARD };

struct gate_request {
	enum gate_kind kind;
	enum gate_op op;
	uint64_t sector, count; /* disk: the sectors the request covers */
	uint64_t len;		/* bytes */
	/* When gate_wants_data: the device's own copy of the bytes (written by
	 * the guest, or about to be given to it); the gate checks this copy and
	 * may change it, and the device then uses exactly this copy. */
	uint8_t *data;
	/* The request was deferred for a pause that has happened since. */
	bool after_pause;
	/* GATE_NET: data holds the frame's first head_len bytes (its headers,
	 * net/frame.h; len is the whole frame's), always when the gate wants
	 * data. What the gate saw there is what the device must send. */
	size_t head_len;
	/* The caller cannot sleep (it serves the VM's loop): a limit's wait
	 * comes back in wait_ns, and the device holds the request that long. */
	bool no_sleep;
	uint64_t wait_ns;
};

enum gate_verdict {
	GATE_GO,    /* act on it (with the data as the gate left it) */
	GATE_FAIL,  /* fail it the way natural to the device */
	GATE_DEFER, /* not now: retry after the VM has paused and resumed */
};

struct request_gate {
	enum gate_verdict (*check)(void *ctx, const char *dev, struct gate_request *r);
	bool (*wants_data)(void *ctx, enum gate_kind kind);
	/* Run fn(arg) once on the VM's loop after the VM next resumes: how a
	 * deferred request comes back. NULL: deferred requests never do. */
	void (*after_resume)(void *ctx, void (*fn)(void *arg), void *arg);
	void *ctx;
	const char *dev; /* the device's name in the VM: "virtio-blk0" */
};

static inline bool gate_wants_data(const struct request_gate *g, enum gate_kind kind)
{
	return g->wants_data && g->wants_data(g->ctx, kind);
}

static inline enum gate_verdict gate_check(const struct request_gate *g, struct gate_request *r)
{
	return g->check ? g->check(g->ctx, g->dev, r) : GATE_GO;
}

#endif
