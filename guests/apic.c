/* apic: the local APIC's interprocessor interrupts and modes, on two CPUs.
 * xAPIC (MMIO): a self-IPI (ICR shorthand "self"), "all including self",
 * "all excluding self", a physical and a flat logical IPI to the other CPU;
 * each must arrive exactly once, while the sender spins with PAUSE until the
 * TSC has advanced 10^9 cycles at most (kvm-unit-tests' self-IPI test).
 * x2APIC (when CPUID.1:ECX bit 21 says so): entered through IA32_APIC_BASE,
 * 32-bit ID and derived LDR over MSRs 0x800-0x8ff, #GP for read-only,
 * write-only and MMIO-only registers, MMIO off, the SELF_IPI MSR, the 64-bit
 * ICR in physical, cluster-logical and broadcast form, and the SDM's mode
 * transitions (#GP for the invalid ones, reserved base bits). Last, the
 * APIC disabled through IA32_APIC_BASE: CPUID.1:EDX.APIC reads 0 and the
 * MMIO page is gone; enabled again, both come back. Needs 2 vCPUs; with
 * "x2apic" on the command line, x2APIC must be advertised. */
#include "guest.h"

const char guest_name[] = "apic";

#define VEC		0xf1
#define VEC_SPURIOUS	0xff
#define AP_APIC_ID	1
#define AP_TIMEOUT_US	3000000
#define SPIN_CYCLES	1000000000ull /* kvm-unit-tests' limit for a self-IPI */
#define MSR_APIC_BASE	0x1b
#define BASE_BSP	(1u << 8)
#define BASE_EXTD	(1u << 10)
#define BASE_EN		(1u << 11)
#define X2APIC_MSR(off) (0x800 + ((off) >> 4))
#define ICR_LOGICAL	(1u << 11)
#define ICR_SELF	(1u << 18)
#define ICR_ALL		(2u << 18)
#define ICR_OTHERS	(3u << 18)

enum { CMD_NONE, CMD_READY, CMD_LDR, CMD_X2APIC, CMD_DONE };

static volatile unsigned hits[2];
static volatile bool x2apic_on[2];
static volatile int command, command_done;
static volatile bool expect_gp, got_gp;

static unsigned this_cpu(void)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	return r[1] >> 24 ? 1 : 0; /* initial APIC ID: 0 for the BSP, 1 for the AP */
}

static void on_ipi(struct trap_frame *f)
{
	unsigned cpu = this_cpu();

	(void)f;
	hits[cpu]++;
	if (x2apic_on[cpu])
		wrmsr(X2APIC_MSR(LAPIC_EOI), 0);
	else
		lapic_eoi();
}

static void on_spurious(struct trap_frame *f)
{
	(void)f;
}

/* An expected #GP from RDMSR/WRMSR (both 2 bytes long): note it, skip it. */
static void on_gp(struct trap_frame *f)
{
	if (!expect_gp)
		fail("unexpected #GP at %#lx (error %#lx)", f->rip, f->error);
	got_gp = true;
	f->rax = f->rdx = 0;
	f->rip += 2;
}

static bool wrmsr_faults(uint32_t msr, uint64_t v)
{
	expect_gp = true;
	got_gp = false;
	wrmsr(msr, v);
	expect_gp = false;
	return got_gp;
}

static bool rdmsr_faults(uint32_t msr)
{
	expect_gp = true;
	got_gp = false;
	(void)rdmsr(msr);
	expect_gp = false;
	return got_gp;
}

static void ap_command(int cmd)
{
	uint64_t end = tsc_deadline_us(AP_TIMEOUT_US);

	command_done = CMD_NONE;
	__atomic_store_n(&command, cmd, __ATOMIC_RELEASE);
	while (__atomic_load_n(&command_done, __ATOMIC_ACQUIRE) != cmd)
		if (rdtsc() > end)
			fail("the AP did not carry out command %d", cmd);
		else
			cpu_relax();
}

/* The AP takes interrupts while it waits for commands from the BSP. */
static void ap_main(void)
{
	lapic_enable(VEC_SPURIOUS);
	sti();
	for (;;) {
		int cmd = __atomic_load_n(&command, __ATOMIC_ACQUIRE);
		if (cmd == CMD_NONE) {
			cpu_relax();
			continue;
		}
		if (cmd == CMD_LDR) {
			lapic_write(0x0d0, 2u << 24); /* logical ID: bit 1, flat model */
		} else if (cmd == CMD_X2APIC) {
			wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | BASE_EXTD);
			x2apic_on[1] = true;
		}
		__atomic_store_n(&command, CMD_NONE, __ATOMIC_RELAXED);
		__atomic_store_n(&command_done, cmd, __ATOMIC_RELEASE);
		if (cmd == CMD_DONE)
			break;
	}
}

/* Send with `send`, then spin with PAUSE until both CPUs have seen the IPIs
 * they should or the TSC has advanced SPIN_CYCLES; then a little longer, so
 * a duplicate would show. */
static void expect_ipis(const char *what, void (*send)(uint64_t), uint64_t arg, unsigned bsp,
			unsigned ap)
{
	unsigned want0 = hits[0] + bsp, want1 = hits[1] + ap;
	uint64_t start = rdtsc(), took;

	sti();
	send(arg);
	while ((hits[0] < want0 || hits[1] < want1) && rdtsc() - start < SPIN_CYCLES)
		cpu_relax();
	took = rdtsc() - start;
	tsc_delay_us(2000);
	cli();
	if (hits[0] != want0 || hits[1] != want1)
		fail("%s: the BSP took %d and the AP %d interrupts, expected %u and %u (spun %lu "
		     "TSC cycles)",
		     what, (int)(hits[0] - want0 + bsp), (int)(hits[1] - want1 + ap), bsp, ap,
		     took);
	kprintf("apic: %s: delivered after %lu TSC cycles\n", what, took);
}

static void xapic_send(uint64_t icr)
{
	lapic_write(LAPIC_ICR_HI, (uint32_t)(icr >> 32) << 24);
	lapic_write(LAPIC_ICR_LO, (uint32_t)icr);
}

static void x2apic_send(uint64_t icr)
{
	wrmsr(X2APIC_MSR(LAPIC_ICR_LO), icr);
}

static void x2apic_self_ipi(uint64_t vec)
{
	wrmsr(X2APIC_MSR(0x3f0), vec);
}

static void xapic_tests(void)
{
	expect_ipis("xAPIC self-IPI (shorthand self)", xapic_send, ICR_SELF | VEC, 1, 0);
	expect_ipis("xAPIC shorthand all including self", xapic_send, ICR_ALL | VEC, 1, 1);
	expect_ipis("xAPIC shorthand all excluding self", xapic_send, ICR_OTHERS | VEC, 0, 1);
	expect_ipis("xAPIC physical IPI to the AP", xapic_send, (1ull << 32) | VEC, 0, 1);
	lapic_write(0x0d0, 1u << 24);
	ap_command(CMD_LDR);
	expect_ipis("xAPIC flat logical IPI to the AP", xapic_send,
		    (2ull << 32) | ICR_LOGICAL | VEC, 0, 1);
}

static void x2apic_tests(uint64_t base)
{
	uint32_t version = lapic_read(0x030);

	wrmsr(MSR_APIC_BASE, base | BASE_EXTD);
	x2apic_on[0] = true;
	if ((rdmsr(MSR_APIC_BASE) & (BASE_EN | BASE_EXTD)) != (BASE_EN | BASE_EXTD))
		fail("IA32_APIC_BASE %#lx after enabling x2APIC", rdmsr(MSR_APIC_BASE));
	if (rdmsr(X2APIC_MSR(LAPIC_ID)) != 0 || rdmsr(X2APIC_MSR(0x0d0)) != 1)
		fail("x2APIC ID %#lx, LDR %#lx: expected 0 and 1 (cluster 0, bit 0)",
		     rdmsr(X2APIC_MSR(LAPIC_ID)), rdmsr(X2APIC_MSR(0x0d0)));
	if ((uint32_t)rdmsr(X2APIC_MSR(0x030)) != version)
		fail("x2APIC version %#lx, xAPIC said %#x", rdmsr(X2APIC_MSR(0x030)), version);
	if (!wrmsr_faults(X2APIC_MSR(LAPIC_ID), 5) || !wrmsr_faults(X2APIC_MSR(0x0d0), 5) ||
	    !rdmsr_faults(X2APIC_MSR(0x0e0)) || !rdmsr_faults(X2APIC_MSR(LAPIC_ICR_HI)) ||
	    !rdmsr_faults(X2APIC_MSR(0x3f0)))
		fail("x2APIC: a read-only, write-only or MMIO-only register did not raise #GP");
	wrmsr(X2APIC_MSR(LAPIC_SVR), 0x100 | VEC_SPURIOUS);
	if (lapic_read(0x030) != 0xffffffff)
		fail("xAPIC MMIO still answers in x2APIC mode (version reads %#x)",
		     lapic_read(0x030));
	lapic_write(0x080, 0xf0);
	if (rdmsr(X2APIC_MSR(0x080)) != 0)
		fail("an MMIO write reached the TPR in x2APIC mode");
	kprintf("apic: x2APIC: ID 0, LDR 1, MMIO off, #GP on read-only/write-only/MMIO-only "
		"registers\n");

	expect_ipis("x2APIC SELF_IPI MSR", x2apic_self_ipi, VEC, 1, 0);
	expect_ipis("x2APIC self-IPI (shorthand self)", x2apic_send, ICR_SELF | VEC, 1, 0);
	ap_command(CMD_X2APIC);
	expect_ipis("x2APIC physical IPI to the AP", x2apic_send, (1ull << 32) | VEC, 0, 1);
	expect_ipis("x2APIC cluster logical IPI to the AP", x2apic_send,
		    (2ull << 32) | ICR_LOGICAL | VEC, 0, 1);
	expect_ipis("x2APIC cluster logical IPI to both", x2apic_send,
		    (3ull << 32) | ICR_LOGICAL | VEC, 1, 1);
	expect_ipis("x2APIC physical broadcast", x2apic_send, (0xffffffffull << 32) | VEC, 1, 1);

	/* SDM 11.12.5: x2APIC -> xAPIC and EXTD without EN are invalid. */
	base &= ~(uint64_t)(BASE_EN | BASE_EXTD);
	if (!wrmsr_faults(MSR_APIC_BASE, base | BASE_EN) ||
	    !wrmsr_faults(MSR_APIC_BASE, base | BASE_EXTD))
		fail("x2APIC -> xAPIC or -> EXTD without EN did not raise #GP");
	if (wrmsr_faults(MSR_APIC_BASE, base))
		fail("x2APIC -> disabled raised #GP");
	x2apic_on[0] = false;
	if (!wrmsr_faults(MSR_APIC_BASE, base | BASE_EN | BASE_EXTD) ||
	    !wrmsr_faults(MSR_APIC_BASE, base | BASE_EXTD))
		fail("disabled -> x2APIC or -> EXTD without EN did not raise #GP");
	if (wrmsr_faults(MSR_APIC_BASE, base | BASE_EN))
		fail("disabled -> xAPIC raised #GP");
	if (!wrmsr_faults(MSR_APIC_BASE, base | BASE_EN | BASE_EXTD | 1))
		fail("a reserved bit in IA32_APIC_BASE did not raise #GP");
	kprintf("apic: x2APIC: invalid IA32_APIC_BASE transitions and bits raise #GP\n");
	lapic_enable(VEC_SPURIOUS);
}

/* Base address bits from MAXPHYADDR up are reserved. CPUID.1:EDX.APIC
 * follows IA32_APIC_BASE.EN; a disabled APIC has no MMIO page. */
static void disable_and_enable(uint64_t base)
{
	uint32_t r[4], version = lapic_read(0x030);

	cpuid(0x80000008, 0, r);
	if (!wrmsr_faults(MSR_APIC_BASE, base | 1ull << (r[0] & 0xff)))
		fail("IA32_APIC_BASE took an address bit at MAXPHYADDR (%u)", r[0] & 0xff);
	wrmsr(MSR_APIC_BASE, base & ~(uint64_t)BASE_EN);
	cpuid(1, 0, r);
	if (r[3] & (1u << 9))
		fail("CPUID.1:EDX.APIC is set while IA32_APIC_BASE.EN is clear");
	if (lapic_read(0x030) != 0xffffffff)
		fail("the disabled APIC's MMIO page still answers (version %#x)",
		     lapic_read(0x030));
	wrmsr(MSR_APIC_BASE, base | BASE_EN);
	cpuid(1, 0, r);
	if (!(r[3] & (1u << 9)))
		fail("CPUID.1:EDX.APIC is clear after enabling the APIC again");
	if (lapic_read(0x030) != version)
		fail("the APIC enabled again reads version %#x, before %#x", lapic_read(0x030),
		     version);
	lapic_enable(VEC_SPURIOUS);
	expect_ipis("self-IPI after enabling the APIC again", xapic_send, ICR_SELF | VEC, 1, 0);
	kprintf("apic: CPUID.1:EDX.APIC follows IA32_APIC_BASE.EN\n");
}

int guest_main(const struct boot_info *bi)
{
	uint32_t r[4];
	uint64_t base;

	pic_disable();
	trap_set_handler(VEC, on_ipi);
	trap_set_handler(VEC_SPURIOUS, on_spurious);
	trap_set_handler(13, on_gp);
	lapic_enable(VEC_SPURIOUS);
	base = rdmsr(MSR_APIC_BASE);
	if (!smp_start_ap(AP_APIC_ID, ap_main, AP_TIMEOUT_US))
		fail("CPU with APIC ID %u did not start (is the VM running with 2 vCPUs?)",
		     AP_APIC_ID);
	/* Started is not ready: until the AP's APIC is software-enabled it drops
	 * fixed IPIs, as hardware does. It answers commands only after that. */
	ap_command(CMD_READY);

	xapic_tests();
	cpuid(1, 0, r);
	if (r[2] & (1u << 21))
		x2apic_tests(base);
	else if (boot_flag(bi, "x2apic"))
		fail("x2APIC (CPUID.1:ECX bit 21) is not advertised");
	else
		kprintf("apic: x2APIC not advertised: its checks skipped\n");
	ap_command(CMD_DONE);
	disable_and_enable(base);
	return 0;
}
