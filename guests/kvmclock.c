/* kvmclock: the paravirtual clock (pvclock) read on two CPUs must never go
 * backwards. Each CPU registers its own pvclock_vcpu_time_info (MSR
 * 0x4b564d01); both then take turns under a spin lock, reading their clock and
 * comparing it with the last value the other one stored, as kvm-unit-tests'
 * kvmclock_test does. With the TSC-stable flag set the guest uses each CPU's
 * reading as it is, so one warp is a failure. Each CPU reads up to LOOPS
 * times, for one second of TSC time (the kvm engine on an emulating host is
 * slow), or longer, up to ten, until both have done MIN_LOOPS (a loaded host
 * may leave one vCPU thread waiting). Needs 2 vCPUs and the KVM paravirtual
 * interface (popek, or QEMU with -accel kvm). */
#include "guest.h"

const char guest_name[] = "kvmclock";

#define MSR_KVM_SYSTEM_TIME 0x4b564d01
#define KVM_FEATURE_CLOCK2  (1u << 3)
#define PVCLOCK_TSC_STABLE  0x01
#define LOOPS		    200000
#define MIN_LOOPS	    1000
#define AP_APIC_ID	    1
#define AP_TIMEOUT_US	    3000000

struct pvclock {
	volatile uint32_t version, pad0;
	volatile uint64_t tsc_timestamp, system_time;
	volatile uint32_t mul;
	volatile int8_t shift;
	volatile uint8_t flags, pad[2];
};

static struct pvclock clocks[2] __attribute__((aligned(64)));
static volatile int lock;
static volatile uint64_t last;
static volatile unsigned done;
static volatile bool go;
static uint64_t deadline, last_chance;
static volatile uint64_t loops[2];
static uint64_t warps[2], worst[2], stalls[2];
static uint8_t flags_seen[2];

static uint64_t pvclock_read(struct pvclock *p, uint8_t *flags)
{
	uint32_t v;
	uint64_t ns;

	do {
		v = p->version & ~1u;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		uint64_t delta = rdtsc() - p->tsc_timestamp;
		delta = p->shift < 0 ? delta >> -p->shift : delta << p->shift;
		ns = p->system_time + (uint64_t)(((unsigned __int128)delta * p->mul) >> 32);
		*flags = p->flags;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while (v != p->version);
	return ns;
}

static void run(int cpu)
{
	struct pvclock *p = &clocks[cpu];

	wrmsr(MSR_KVM_SYSTEM_TIME, (uint64_t)p | 1);
	while (!go)
		cpu_relax();
	for (loops[cpu] = 0; loops[cpu] < LOOPS; loops[cpu]++) {
		uint64_t now = rdtsc();
		if (now > last_chance ||
		    (now > deadline && loops[0] >= MIN_LOOPS && loops[1] >= MIN_LOOPS))
			break;
		while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
			cpu_relax();
		uint64_t t1 = pvclock_read(p, &flags_seen[cpu]);
		uint64_t t0 = last;
		last = pvclock_read(p, &flags_seen[cpu]);
		__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
		int64_t d = (int64_t)(t1 - t0);
		if (d < 0) {
			warps[cpu]++;
			if ((uint64_t)-d > worst[cpu])
				worst[cpu] = (uint64_t)-d;
		} else if (d == 0) {
			stalls[cpu]++;
		}
	}
	wrmsr(MSR_KVM_SYSTEM_TIME, 0);
	__atomic_fetch_add(&done, 1, __ATOMIC_RELEASE);
}

static void ap_main(void)
{
	run(1);
}

int guest_main(const struct boot_info *bi)
{
	uint32_t r[4];
	uint64_t t0, t1, end;
	uint8_t f;

	(void)bi;
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 31)))
		fail("no hypervisor");
	cpuid(0x40000000, 0, r);
	if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d)
		fail("no KVM paravirtual interface");
	cpuid(0x40000001, 0, r);
	if (!(r[0] & KVM_FEATURE_CLOCK2))
		fail("kvmclock (MSR 0x4b564d01) not advertised");
	pic_disable();
	lapic_enable(0xff);
	if (!smp_start_ap(AP_APIC_ID, ap_main, AP_TIMEOUT_US))
		fail("CPU with APIC ID %u did not start (is the VM running with 2 vCPUs?)",
		     AP_APIC_ID);
	wrmsr(MSR_KVM_SYSTEM_TIME, (uint64_t)&clocks[0] | 1);
	t0 = pvclock_read(&clocks[0], &f);
	deadline = tsc_deadline_us(1000000);
	last_chance = tsc_deadline_us(10000000);
	__atomic_store_n(&go, true, __ATOMIC_RELEASE);
	run(0);
	end = tsc_deadline_us(AP_TIMEOUT_US + 10000000);
	while (done < 2)
		if (rdtsc() > end)
			fail("the AP did not finish its reads");
		else
			cpu_relax();
	wrmsr(MSR_KVM_SYSTEM_TIME, (uint64_t)&clocks[0] | 1);
	t1 = pvclock_read(&clocks[0], &f);
	wrmsr(MSR_KVM_SYSTEM_TIME, 0);
	kprintf("kvmclock: %lu/%lu rounds of 2 reads in %lu ns; warps %lu/%lu (worst %lu ns), "
		"stalls %lu/%lu, flags %#x/%#x\n",
		loops[0], loops[1], t1 - t0, warps[0], warps[1],
		worst[0] > worst[1] ? worst[0] : worst[1], stalls[0], stalls[1], flags_seen[0],
		flags_seen[1]);
	if (loops[0] < MIN_LOOPS || loops[1] < MIN_LOOPS)
		fail("only %lu/%lu rounds in ten seconds: too few to judge", loops[0], loops[1]);
	if (!(flags_seen[0] & flags_seen[1] & PVCLOCK_TSC_STABLE))
		fail("the TSC-stable flag is not set on both CPUs");
	if (warps[0] || warps[1])
		fail("kvmclock went backwards %lu times across CPUs (worst %lu ns)",
		     warps[0] + warps[1], worst[0] > worst[1] ? worst[0] : worst[1]);
	if (t1 <= t0)
		fail("kvmclock did not advance");
	return 0;
}
