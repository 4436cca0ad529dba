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

void hypercall_handle(struct vcpu *v, struct vcpu_exit *ex)
{
	struct machine *m = v->m;
	uint64_t nr = ex->hc.nr, *a = ex->hc.arg;
	counter_add(&v->count.hypercalls[nr < POPEK_HC_COUNT ? nr : POPEK_HC_COUNT], 1);
	switch (nr) {
	case POPEK_HC_VERSION:
		ex->hc.ret = POPEK_HC_ABI_VERSION;
		break;
	case POPEK_HC_CONSOLE_WRITE:
		ex->hc.ret = hc_console_write(m, a[0], a[1]);
		break;
	case POPEK_HC_GET_TIME:
		ex->hc.ret = hc_get_time(m, a[0]);
		break;
	case POPEK_HC_EXIT:
		machine_stop(m, STOP_GUEST_EXIT, (int)(a[0] & 0xff), "guest called exit(%llu)",
			     (unsigned long long)a[0]);
		ex->hc.ret = 0;
		break;
	case POPEK_HC_YIELD:
		sched_yield();
		ex->hc.ret = 0;
		break;
	default:
		ex->hc.ret = err(POPEK_ENOSYS);
		break;
	}
}
