/* Guest time of the soft engine: the TSC follows CLOCK_MONOTONIC at
 * INTC_TSC_HZ (or the rate a VM brought), IA32_TSC / TSC_ADJUST writes move
 * it, and the kvmclock
 * structures a guest registers give the same time as the TSC. */
#include "intc_test.h"

#define MS 1000000ull

struct pvti {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags, pad[2];
};

/* What a guest computes from a pvclock structure (Linux's pvclock_read). */
static uint64_t pvclock_ns(const struct pvti *p, uint64_t tsc)
{
	uint64_t delta = tsc - p->tsc_timestamp;
	delta = p->shift >= 0 ? delta << p->shift : delta >> -p->shift;
	return p->system_time + (uint64_t)(((unsigned __int128)delta * p->mul) >> 32);
}

static void tsc_follows_wall_time(void **state)
{
	struct soft_intc *ic = test_intc(2);
	uint64_t w0 = now_ns(), t0 = intc_rdtsc(ic, 0);
	sleep_ms(100);
	uint64_t w1 = now_ns(), t1 = intc_rdtsc(ic, 0);
	double hz = (double)(t1 - t0) * 1e9 / (double)(w1 - w0);
	assert_true(hz > 0.9 * INTC_TSC_HZ && hz < 1.1 * INTC_TSC_HZ);
	/* Both CPUs share one TSC: a later read on CPU 1 is not smaller. */
	assert_true(intc_rdtsc(ic, 1) >= t1);
	intc_destroy(ic);
}

static void tsc_writes_and_adjust(void **state)
{
	struct soft_intc *ic = test_intc(2);
	assert_int_equal(wrmsr(ic, 1, 0x10, 1000000000000ull), 1);
	uint64_t t = rdmsr(ic, 1, 0x10);
	assert_true(t >= 1000000000000ull && t < 1000000000000ull + 100 * MS);
	assert_true(intc_rdtsc(ic, 0) < 100000000000ull); /* CPU 0 unaffected */
	/* TSC_ADJUST tracks the write; writing it back to 0 undoes it. */
	uint64_t adj = rdmsr(ic, 1, 0x3b);
	assert_true(adj > 900000000000ull);
	assert_int_equal(wrmsr(ic, 1, 0x3b, 0), 1);
	assert_true(intc_rdtsc(ic, 1) < 100000000000ull);
	intc_destroy(ic);
}

/* vCPUs whose state is set one after another keep one TSC (Linux checks). */
static void host_writes_keep_cpus_in_sync(void **state)
{
	struct soft_intc *ic = test_intc(2);
	intc_set_tsc(ic, 0, 0);
	sleep_ms(5);
	intc_set_tsc(ic, 1, 0);
	uint64_t t0 = intc_rdtsc(ic, 0), t1 = intc_rdtsc(ic, 1);
	assert_true(t1 >= t0 && t1 - t0 < MS);
	assert_true(t0 < 100 * MS); /* and both restarted from 0 */

	/* A snapshot's values, read a little apart, restore to one TSC. */
	intc_set_tsc(ic, 0, 5000000000000ull);
	sleep_ms(3);
	intc_set_tsc(ic, 1, 5000000000000ull + 40000);
	t0 = intc_rdtsc(ic, 0);
	t1 = intc_rdtsc(ic, 1);
	assert_true(t1 >= t0 && t1 - t0 < MS);
	assert_true(t0 >= 5000000000000ull);
	assert_int_equal(rdmsr(ic, 1, 0x3b), 0); /* host writes leave TSC_ADJUST alone */

	/* A value far from the other CPU's is taken as it is. */
	intc_set_tsc(ic, 1, 9000000000000ull);
	assert_true(intc_rdtsc(ic, 1) - intc_rdtsc(ic, 0) > 3000000000000ull);
	intc_destroy(ic);
}

static void kvmclock_matches_tsc(void **state)
{
	struct soft_intc *ic = test_intc(1);
	memset(test_ram, 0, sizeof(test_ram));
	assert_int_equal(wrmsr(ic, 0, 0x4b564d01, 0x1000 | 1), 1);
	assert_int_equal(rdmsr(ic, 0, 0x4b564d01), 0x1001);
	struct pvti p;
	memcpy(&p, test_ram + 0x1000, sizeof(p));
	assert_int_equal(p.version & 1, 0);
	assert_true(p.version > 0);
	assert_int_equal(p.flags & 1, 1); /* TSC stable */
	sleep_ms(20);
	uint64_t tsc = intc_rdtsc(ic, 0);
	uint64_t ns = pvclock_ns(&p, tsc);
	/* The TSC counts from intc creation like kvmclock: both say "now". */
	assert_true(ns > 15 * MS && ns < tsc + 1 && tsc - ns < 1000);

	/* Moving the TSC rewrites the structure; the clock does not jump. */
	wrmsr(ic, 0, 0x10, 5000000000000ull);
	uint32_t v0 = p.version;
	memcpy(&p, test_ram + 0x1000, sizeof(p));
	assert_true(p.version > v0 && !(p.version & 1));
	uint64_t ns2 = pvclock_ns(&p, intc_rdtsc(ic, 0));
	assert_true(ns2 >= ns && ns2 - ns < 100 * MS);

	/* A bad address is ignored, not a crash. */
	assert_int_equal(wrmsr(ic, 0, 0x4b564d01, 0xfffffff001ull), 1);
	intc_destroy(ic);
}

static void kvmclock_wall_clock(void **state)
{
	struct soft_intc *ic = test_intc(1);
	memset(test_ram, 0, sizeof(test_ram));
	sleep_ms(10);
	assert_int_equal(wrmsr(ic, 0, 0x4b564d00, 0x2000), 1);
	uint32_t w[3];
	memcpy(w, test_ram + 0x2000, sizeof(w));
	assert_int_equal(w[0] & 1, 0);
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	/* Boot time = now - uptime (10 ms): same second, give or take one. */
	assert_true(w[1] <= rt.tv_sec && w[1] + 1 >= rt.tv_sec);
	assert_true(w[2] < 1000000000u);
	intc_destroy(ic);
}

/* A VM that came from a host whose TSC ran at another rate keeps it: the
 * TSC, kvmclock's scale and the TSC deadline follow intc_set_tsc_khz. */
static void another_rate(void **state)
{
	const uint32_t khz = 2596134; /* a kvm host's */
	struct soft_intc *ic = test_intc(1);
	intc_set_tsc_khz(ic, 0); /* no rate: ignored */
	assert_int_equal(intc_tsc_khz(ic), INTC_TSC_HZ / 1000);
	intc_set_tsc_khz(ic, khz);
	assert_int_equal(intc_tsc_khz(ic), khz);
	uint64_t w0 = now_ns(), t0 = intc_rdtsc(ic, 0);
	sleep_ms(100);
	uint64_t w1 = now_ns(), t1 = intc_rdtsc(ic, 0);
	double hz = (double)(t1 - t0) * 1e9 / (double)(w1 - w0);
	assert_true(hz > 0.9 * khz * 1e3 && hz < 1.1 * khz * 1e3);

	/* kvmclock turns the ticks back into the ns since creation. */
	memset(test_ram, 0, sizeof(test_ram));
	assert_int_equal(wrmsr(ic, 0, 0x4b564d01, 0x1000 | 1), 1);
	struct pvti p;
	memcpy(&p, test_ram + 0x1000, sizeof(p));
	uint64_t tsc = intc_rdtsc(ic, 0), ns = pvclock_ns(&p, tsc),
		 want = (uint64_t)((unsigned __int128)tsc * 1000000 / khz);
	assert_true(ns + 1000 > want && ns < want + 1000);

	/* A deadline 15 ms of this rate ahead fires after 15 ms. */
	apic_enable(ic, 0);
	apic_write(ic, 0, 0x320, 0x40000 | 0xee);
	uint64_t start = now_ns();
	assert_int_equal(wrmsr(ic, 0, 0x6e0, intc_rdtsc(ic, 0) + 15ull * khz), 1);
	assert_int_equal(intc_wait(ic, 0, true), INTC_WAKE_READY);
	uint64_t took = now_ns() - start;
	assert_true(took >= 14 * MS && took < 1000 * MS);
	intc_destroy(ic);
}

static void unknown_msrs_are_not_ours(void **state)
{
	struct soft_intc *ic = test_intc(1);
	uint64_t v = 0;
	assert_int_equal(intc_msr(ic, 0, 0xc0000080, &v, false), 0);
	assert_int_equal(intc_msr(ic, 0, 0x4b564d02, &v, true), 0);
	intc_destroy(ic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tsc_follows_wall_time),
	    cmocka_unit_test(tsc_writes_and_adjust),
	    cmocka_unit_test(host_writes_keep_cpus_in_sync),
	    cmocka_unit_test(kvmclock_matches_tsc),
	    cmocka_unit_test(kvmclock_wall_clock),
	    cmocka_unit_test(another_rate),
	    cmocka_unit_test(unknown_msrs_are_not_ours),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
