#include "machine/hypercall.h"

#include <sched.h>
#include <time.h>

#include "machine/console.h"
#include "popek/hypercall.h"
#include "util/counter.h"

static uint64_t err(int e)
{
	return (uint64_t) - (int64_t)e;
}

static uint64_t hc_console_write(struct machine *m, uint64_t gpa, uint64_t len)
{
	if (len > POPEK_HC_CONSOLE_MAX)
		return err(POPEK_EINVAL);
	const void *p = gpa_ptr(&m->mem, gpa, len);
	if (!p)
		return err(POPEK_EFAULT);
	console_write(m->console, p, len);
	return len;
}

static uint64_t hc_get_time(struct machine *m, uint64_t clock)
{
	struct timespec ts;
	switch (clock) {
	case POPEK_CLOCK_MONOTONIC:
		return monotonic_ns() - m->start_ns;
	case POPEK_CLOCK_REALTIME:
		clock_gettime(CLOCK_REALTIME, &ts);
		return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	default:
		return err(POPEK_EINVAL);
	}
}

bool hypercall_decode(const struct vcpu_exit *ex, struct hypercall *hc)
{
	if (!ex->io.has_regs || ex->io.port != POPEK_HC_PORT)
		return false;
	const struct exit_regs *r = &ex->io.regs;
	*hc = (struct hypercall){(uint32_t)r->rax, {r->rdi, r->rsi, r->rbx, r->rcx}};
	return true;
}

void hypercall_complete(struct vcpu_exit *ex, uint64_t ret)
{
	ex->io.regs.rax = ret;
	ex->io.regs_dirty = true;
}

uint64_t hypercall_handle(struct vcpu *v, const struct hypercall *hc)
{
	struct machine *m = v->m;
	uint64_t nr = hc->nr;
	const uint64_t *a = hc->arg;
	counter_add(&v->count.hypercalls[nr < POPEK_HC_COUNT ? nr : POPEK_HC_COUNT], 1);
	switch (nr) {
	case POPEK_HC_VERSION:
		return POPEK_HC_ABI_VERSION;
	case POPEK_HC_CONSOLE_WRITE:
		return hc_console_write(m, a[0], a[1]);
	case POPEK_HC_GET_TIME:
		return hc_get_time(m, a[0]);
	case POPEK_HC_EXIT:
		machine_stop(m, STOP_GUEST_EXIT, (int)(a[0] & 0xff), "guest called exit(%llu)",
			     (unsigned long long)a[0]);
		return 0;
	case POPEK_HC_YIELD:
		sched_yield();
		return 0;
	default:
		return err(POPEK_ENOSYS);
	}
}
