/* The guest's clocks: the TSC and kvmclock.
 *
 * The TSC is CLOCK_MONOTONIC since the intc was created, at INTC_TSC_HZ, plus a
 * per-CPU offset that writes to IA32_TSC / IA32_TSC_ADJUST move. Because it is
 * an exact linear function of host time, the kvmclock (pvclock) structure a
 * guest registers never goes stale: we write it once when the guest enables it
 * (and again when that CPU's TSC offset changes), with the TSC_STABLE flag, as
 * described by Linux's include/asm/pvclock-abi.h. */
#include <string.h>
#include <time.h>

#include "engines/engine.h"
#include "engines/soft/intc/intc_priv.h"

#define MSR_TSC		 0x10
#define MSR_TSC_ADJUST	 0x3b
#define MSR_KVM_WALL_OLD 0x11
#define MSR_KVM_TIME_OLD 0x12
#define MSR_KVM_WALL	 0x4b564d00
#define MSR_KVM_TIME	 0x4b564d01

#define PVCLOCK_TSC_STABLE 0x01

struct pvclock_vcpu_time_info {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
};
_Static_assert(sizeof(struct pvclock_vcpu_time_info) == 32, "pvclock ABI layout");

struct pvclock_wall_clock {
	uint32_t version, sec, nsec;
};

uint64_t intc_ticks(const struct soft_intc *ic, uint64_t ns)
{
	/* In two parts, so that no product overflows for centuries of uptime. */
	return ns / 1000000 * ic->tsc_khz + ns % 1000000 * ic->tsc_khz / 1000000;
}

uint64_t intc_ns(const struct soft_intc *ic, uint64_t ticks)
{
	uint64_t whole = ticks / ic->tsc_khz;
	if (whole > UINT64_MAX / 1000000 - 1)
		return UINT64_MAX;
	return whole * 1000000 + ticks % ic->tsc_khz * 1000000 / ic->tsc_khz;
}

uint64_t intc_rdtsc(struct soft_intc *ic, int cpu)
{
	return intc_ticks(ic, intc_now() - ic->epoch) + (uint64_t)ic->cpu[cpu].tsc_offset;
}

uint32_t intc_tsc_khz(const struct soft_intc *ic)
{
	return ic->tsc_khz;
}

void intc_set_tsc_khz(struct soft_intc *ic, uint32_t khz)
{
	if (khz >= ENGINE_TSC_KHZ_MIN && khz <= ENGINE_TSC_KHZ_MAX)
		ic->tsc_khz = khz;
}

/* The pvclock scale for the TSC's rate: ns = ((tsc << shift) * mul) >> 32
 * (a negative shift shifts right), with mul in [2^31, 2^32) for precision. At
 * 1 GHz: mul 2^31, shift 1. */
static void pvclock_scale(const struct soft_intc *ic, uint32_t *mul, int8_t *shift)
{
	uint64_t hz = (uint64_t)ic->tsc_khz * 1000;
	for (int s = -31; s <= 31; s++) {
		unsigned __int128 m = ((unsigned __int128)1000000000ull << (32 - s)) / hz;
		if (m >> 32 == 0) {
			*mul = (uint32_t)m;
			*shift = (int8_t)s;
			return;
		}
	}
}

/* Publish `len` bytes at guest-physical gpa under the pvclock version protocol:
 * odd version while the body changes, even and bigger afterwards. */
static void pv_publish(struct soft_intc *ic, uint64_t gpa, void *body, size_t len)
{
	uint8_t *p = ic->mem(ic->mem_ctx, gpa, len);
	if (!p)
		return; /* not RAM: the guest gave a bad address; nothing to update */
	uint32_t ver;
	memcpy(&ver, p, 4);
	ver = (ver | 1) + 1; /* next even number after an odd one */
	uint32_t odd = ver - 1;
	memcpy(p, &odd, 4);
	atomic_thread_fence(memory_order_release);
	memcpy(p + 4, (uint8_t *)body + 4, len - 4);
	atomic_thread_fence(memory_order_release);
	memcpy(p, &ver, 4);
}

static void kvmclock_refresh(struct soft_intc *ic, int cpu)
{
	struct lapic *a = &ic->cpu[cpu];
	if (!(a->kvmclock_msr & 1))
		return;
	uint64_t now = intc_now();
	struct pvclock_vcpu_time_info t = {
	    .tsc_timestamp = intc_ticks(ic, now - ic->epoch) + (uint64_t)a->tsc_offset,
	    .system_time = now - ic->epoch,
	    .flags = PVCLOCK_TSC_STABLE,
	};
	pvclock_scale(ic, &t.tsc_to_system_mul, &t.tsc_shift);
	pv_publish(ic, a->kvmclock_msr & ~1ull, &t, sizeof(t));
}

/* The wall-clock time at which kvmclock read 0. */
static void wall_clock_write(struct soft_intc *ic, uint64_t gpa)
{
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	uint64_t real = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
	uint64_t boot = real - (intc_now() - ic->epoch);
	struct pvclock_wall_clock w = {
	    .sec = (uint32_t)(boot / 1000000000ull),
	    .nsec = (uint32_t)(boot % 1000000000ull),
	};
	pv_publish(ic, gpa, &w, sizeof(w));
}

static void apply_tsc_offset(struct soft_intc *ic, int cpu, int64_t offset)
{
	struct lapic *a = &ic->cpu[cpu];
	a->tsc_offset = offset;
	lapic_set_tsc_deadline(ic, cpu, a->tsc_deadline); /* the deadline is in TSC terms */
	kvmclock_refresh(ic, cpu);
}

/* A guest write moves IA32_TSC_ADJUST by the same amount (SDM 17.17.3). */
static void set_tsc_offset(struct soft_intc *ic, int cpu, int64_t offset)
{
	struct lapic *a = &ic->cpu[cpu];
	a->tsc_adjust += offset - a->tsc_offset;
	apply_tsc_offset(ic, cpu, offset);
}

void intc_set_tsc(struct soft_intc *ic, int cpu, uint64_t tsc)
{
	pthread_mutex_lock(&ic->lock);
	uint64_t now = intc_now(), second = (uint64_t)ic->tsc_khz * 1000;
	int64_t offset = (int64_t)(tsc - intc_ticks(ic, now - ic->epoch));
	if (ic->tsc_sync.valid) {
		/* What the previous host write's TSC reads now; within a second of
		 * it (or 0, a fresh vCPU) means "the same TSC", as KVM decides. */
		uint64_t expect = ic->tsc_sync.value + intc_ticks(ic, now - ic->tsc_sync.at);
		if (tsc == 0 || tsc - expect + second < 2 * second)
			offset = ic->tsc_sync.offset;
	}
	ic->tsc_sync.valid = true;
	ic->tsc_sync.value = tsc;
	ic->tsc_sync.at = now;
	ic->tsc_sync.offset = offset;
	apply_tsc_offset(ic, cpu, offset);
	pthread_mutex_unlock(&ic->lock);
}

int clock_msr(struct soft_intc *ic, int cpu, uint32_t msr, uint64_t *val, bool write)
{
	struct lapic *a = &ic->cpu[cpu];
	switch (msr) {
	case MSR_TSC:
		if (write)
			set_tsc_offset(ic, cpu,
				       (int64_t)(*val - intc_ticks(ic, intc_now() - ic->epoch)));
		else
			*val = intc_rdtsc(ic, cpu);
		return 1;
	case MSR_TSC_ADJUST:
		if (write)
			set_tsc_offset(ic, cpu,
				       a->tsc_offset + (int64_t)(*val - (uint64_t)a->tsc_adjust));
		else
			*val = (uint64_t)a->tsc_adjust;
		return 1;
	case MSR_KVM_WALL_OLD:
	case MSR_KVM_WALL:
		if (write) {
			ic->wall_clock_msr = *val;
			wall_clock_write(ic, *val);
		} else {
			*val = ic->wall_clock_msr;
		}
		return 1;
	case MSR_KVM_TIME_OLD:
	case MSR_KVM_TIME:
		if (write) {
			a->kvmclock_msr = *val;
			kvmclock_refresh(ic, cpu);
		} else {
			*val = a->kvmclock_msr;
		}
		return 1;
	default:
		return 0;
	}
}
