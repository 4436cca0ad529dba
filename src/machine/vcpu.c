/* The vCPU loop: run the engine, hand each exit to the trap path. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "machine/interpose.h"
#include "machine/machine.h"
#include "machine/vcpu.h"
#include "util/counter.h"

static void report_crash(struct vcpu *v, const struct vcpu_exit *ex)
{
	struct machine *m = v->m;
	switch (ex->reason) {
	case EXIT_SHUTDOWN:
		machine_stop(
		    m, STOP_CRASH, EXIT_CODE_CRASH,
		    "vCPU %d: triple fault at RIP %#" PRIx64 " (%s)", v->index, ex->fail.rip,
		    ex->fail.why[0] ? ex->fail.why : "exception while delivering a double fault");
		break;
	case EXIT_HLT:
		machine_stop(m, STOP_CRASH, EXIT_CODE_CRASH,
			     "vCPU %d: halted with interrupts disabled at RIP %#" PRIx64
			     " — it can never wake up",
			     v->index, ex->fail.rip);
		break;
	default:
		machine_stop(m, STOP_CRASH, EXIT_CODE_CRASH, "vCPU %d: %s at RIP %#" PRIx64,
			     v->index, ex->fail.why, ex->fail.rip);
		break;
	}
}

void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct machine *m = v->m;
	struct vcpu_exit ex;
	memset(&ex, 0, sizeof(ex));
	while (!machine_stopping(m)) {
		int rc = m->engine->vcpu_run(v->ev, &ex);
		if (rc < 0) {
			machine_stop(m, STOP_ERROR, EXIT_CODE_HOST,
				     "vCPU %d: engine run failed: %s", v->index, strerror(-rc));
			break;
		}
		if (ex.reason != EXIT_IO && ex.reason != EXIT_MMIO)
			counter_add(&v->count.exits[ex.reason], 1);
		switch (ex.reason) {
		case EXIT_IO:
		case EXIT_MMIO: {
			enum exit_reason r = interpose(v, &ex);
			if (!(ex.reason == EXIT_IO && ex.io.coalesced))
				counter_add(&v->count.exits[r], 1);
			break;
		}
		case EXIT_KICKED:
			machine_park_if_paused(m);
			break;
		case EXIT_HYPERCALL: /* never from an engine */
		case EXIT_HLT:
		case EXIT_SHUTDOWN:
		case EXIT_FAIL:
		case EXIT_SYSCALL: /* machines do not ask for it */
		case NR_EXIT_REASONS:
			report_crash(v, &ex);
			break;
		}
	}
	if (v->pauser_live)
		pthread_join(v->pauser, NULL);
	machine_vcpus_ended(m, 1);
	return NULL;
}
