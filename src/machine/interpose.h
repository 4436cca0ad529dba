/* The one trap path: every exit that asks popek to act (port I/O, MMIO and
 * the hypercalls decoded from port writes) and every device request (disk,
 * entropy, console data) goes through here before a bus, device or
 * hypercall handler acts on it. */
#ifndef POPEK_MACHINE_INTERPOSE_H
#define POPEK_MACHINE_INTERPOSE_H

#include "devices/request_gate.h"
#include "machine/console.h"
#include "machine/machine.h"

struct policy;

/* Act on an EXIT_IO or EXIT_MMIO; returns the reason it counts as
 * (EXIT_HYPERCALL for a decoded hypercall). */
enum exit_reason interpose(struct vcpu *v, struct vcpu_exit *ex);

/* The gate virtio devices pass their requests through (dev set per device). */
struct request_gate interpose_gate(struct machine *m);

/* Console data through the policy (class console): a tap sits between a
 * device and the console, in front of out(ctx) for output or in(ctx) for
 * input. Without console rules it only forwards. */
struct console_tap {
	struct machine *m;
	const char *dev;
	void (*out)(void *ctx, const void *buf, size_t len);
	console_input_fn in;
	void *ctx;
};
void interpose_console_out(void *tap, const void *buf, size_t len);
size_t interpose_console_in(void *tap, const uint8_t *buf, size_t len);
/* The tap of a slot (one machine per process: static storage), set up. */
enum tap_slot { TAP_UART_OUT, TAP_VIRTIO_OUT, TAP_INPUT, NR_TAP_SLOTS };
struct console_tap *interpose_tap(enum tap_slot slot, const struct console_tap *t);
/* Console output of device dev (the next one created) goes through the tap
 * in slot (machine.c, which owns the console). */
void machine_console_tap(struct machine *m, const char *dev, enum tap_slot slot);

/* Refuse rules of p this machine can never deliver (docs/policy.md, "What
 * a policy sees"): ranges only the engine sees, devices it does not have.
 * After the devices exist; 0, or EXIT_CODE_USAGE with the reason in err. */
int interpose_check(struct machine *m, const struct policy *p, char *err, size_t errlen);
/* May virtio notifications bypass the trap path (ioeventfd) under p? Not
 * if a rule must see them as MMIO, meet a request on its vCPU (pause,
 * vcpu N) or make a transmit wait (net limit: on the vCPU, not the loop);
 * a policy swapped in later that needs more switches them to trapping
 * (machine_trap_kicks). */
bool interpose_allows_ioeventfd(const struct policy *p);
/* May latch-port writes reach the machine late (coalesced, at the next
 * exit)? Not if a port I/O rule may want to act on them as they happen. */
bool interpose_allows_coalesced_pio(const struct policy *p);

#endif
