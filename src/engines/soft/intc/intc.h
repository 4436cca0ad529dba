/* Interrupt controllers and time for the soft engine: one local APIC per vCPU,
 * an IOAPIC, the 8259 PIC pair, the 8254 PIT (with port 0x61), the TSC and a
 * kvmclock (pvclock) — the parts of a PC that /dev/kvm would otherwise emulate
 * in the host kernel.
 *
 * Threading: every function may be called from any thread unless it takes a
 * `cpu` and says "vCPU thread only". State changes happen under one lock per
 * intc; the per-instruction check (intc_attention) is a lock-free load.
 *
 * Time: the TSC, the LAPIC timer and the PIT all follow CLOCK_MONOTONIC, so
 * guest time follows wall time however fast or slow the interpreter runs.
 *
 * How the CPU core uses it (per vCPU thread):
 *   const atomic_uint *attn = intc_attention(ic, cpu);    once
 *   every instruction (or block boundary):
 *     a = atomic_load_explicit(attn, memory_order_relaxed);
 *     if (a & INTC_ATTN_EVENT) ev = intc_take_events(ic, cpu, &sipi);  NMI/INIT/SIPI
 *     if ((a & INTC_ATTN_IRQ) && IF && !shadow) v = intc_ack(ic, cpu); deliver v if >= 0
 *   every few thousand instructions: intc_poll(ic, cpu)     (fires due timers)
 *   HLT: intc_wait(ic, cpu, IF)                              (blocks; see below)
 *   port I/O: intc_pio() before the exit to the machine; MMIO: intc_mmio();
 *   RDMSR/WRMSR: intc_msr(); RDTSC: intc_rdtsc(); MOV CR8: intc_cr8_read/write(). */
#ifndef POPEK_SOFT_INTC_H
#define POPEK_SOFT_INTC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct soft_intc;

/* The TSC counts at INTC_TSC_HZ (1 tick = 1 ns of CLOCK_MONOTONIC) unless
 * intc_set_tsc_khz set another rate (a VM that came from a host whose TSC ran
 * at it). The LAPIC timer runs from a "core crystal" at INTC_CRYSTAL_HZ, so the
 * core should advertise: CPUID 0x15 EAX/EBX the TSC/crystal ratio, ECX=
 * INTC_CRYSTAL_HZ; CPUID 0x16 EAX=EBX=the TSC's MHz; 0x40000010 EAX=its kHz,
 * EBX=INTC_CRYSTAL_HZ/1000;
 * and CPUID.1:ECX.TSC_DEADLINE (bit 24), CPUID.1:EDX.APIC (bit 9) while
 * intc_apic_enabled. The APIC timer never stops and the TSC is invariant, so
 * CPUID.6:EAX.ARAT (bit 2) and CPUID.80000007:EDX (bit 8) may be advertised
 * too. x2APIC (CPUID.1:ECX bit 21) should be advertised: with the KVM
 * signature and no interrupt remapping, Linux then runs it in physical mode,
 * and MSRs are cheaper to emulate than MMIO. */
#define INTC_TSC_HZ	1000000000ull
#define INTC_CRYSTAL_HZ 1000000000ull

#define INTC_APIC_DEFAULT_BASE 0xfee00000ull
#define INTC_IOAPIC_BASE       0xfec00000ull
#define INTC_IOAPIC_PINS       24

/* Host pointer for guest-physical RAM [gpa, gpa+len), or NULL if that span is
 * not RAM. Used only to write the kvmclock structures the guest registers. */
typedef void *(*intc_mem_fn)(void *ctx, uint64_t gpa, uint64_t len);

/* ncpus in [1, 255]. CPU 0 is the bootstrap processor; LAPIC IDs equal CPU
 * indices. Returns NULL on allocation failure. */
struct soft_intc *intc_create(int ncpus, intc_mem_fn mem, void *mem_ctx);
void intc_destroy(struct soft_intc *ic);

/* ---- Inputs from devices (engine irq_line / msi ops) ---- */

/* Drive GSI `gsi` (0-23) to `level`. GSIs 0-15 also reach the 8259 input of the
 * same number (edge or level per ELCR). Out-of-range GSIs are ignored. The PIT
 * is internal: it drives PIC IRQ0 and IOAPIC pins 0 and 2, so firmware tables
 * may map ISA IRQ0 to GSI 0 (as KVM's default routing does) or GSI 2. */
void intc_irq_line(struct soft_intc *ic, unsigned gsi, bool level);

/* A message-signalled interrupt: addr 0xfeeXXXXX (destination in bits 19:12,
 * destination mode in bit 2), data = vector, delivery mode, trigger. Malformed
 * messages are dropped. */
void intc_msi(struct soft_intc *ic, uint64_t addr, uint32_t data);

/* ---- Guest accesses (vCPU thread) ---- */

/* Port I/O: PIC 0x20/0x21/0xa0/0xa1, ELCR 0x4d0/0x4d1, PIT 0x40-0x43, system
 * control port B 0x61 (PIT channel 2 gate / speaker, OUT2, refresh toggle).
 * size 1, 2 or 4; data little-endian. Returns false if the port is not ours
 * (data untouched): the core then exits to the machine. */
bool intc_pio(struct soft_intc *ic, uint16_t port, void *data, unsigned size, bool write);

/* MMIO: the 4 KiB LAPIC page at this CPU's APIC base (when the APIC is enabled
 * in xAPIC mode) and the IOAPIC page at INTC_IOAPIC_BASE. Returns false if gpa
 * is not ours. Reads of any size return bytes of the containing 32-bit
 * register; writes take effect only as aligned 32-bit stores (others are
 * dropped, as KVM does). */
bool intc_mmio(struct soft_intc *ic, int cpu, uint64_t gpa, void *data, unsigned size, bool write);

/* MSRs: IA32_TSC (0x10), IA32_APIC_BASE (0x1b), IA32_TSC_ADJUST (0x3b),
 * IA32_TSC_DEADLINE (0x6e0), x2APIC 0x800-0x8ff, kvmclock 0x4b564d00/01 (and
 * the legacy 0x11/0x12 numbers). Returns 1 handled, 0 not ours, -1 the access
 * must raise #GP (reserved bits, x2APIC MSR while not in x2APIC mode, ...).
 * kvmclock: advertise CPUID 0x40000000 "KVMKVMKVM" and 0x40000001 EAX bits 3
 * (CLOCKSOURCE2) and 24 (CLOCKSOURCE_STABLE); the structure is kept exact. */
int intc_msr(struct soft_intc *ic, int cpu, uint32_t msr, uint64_t *val, bool write);

/* IA32_APIC_BASE.EN: the core clears CPUID.1:EDX.APIC while it is 0. */
bool intc_apic_enabled(struct soft_intc *ic, int cpu);

/* MOV to/from CR8: the LAPIC task priority, TPR[7:4]. */
uint64_t intc_cr8_read(struct soft_intc *ic, int cpu);
void intc_cr8_write(struct soft_intc *ic, int cpu, uint64_t val);

/* ---- Interrupt delivery (vCPU thread only) ---- */

/* Bits of the attention word. IRQ: a maskable interrupt may be deliverable
 * (check IF and the interrupt shadow, then intc_ack). EVENT: an NMI/INIT/SIPI
 * is waiting in intc_take_events (delivered regardless of IF). */
#define INTC_ATTN_IRQ	1u
#define INTC_ATTN_EVENT 2u

/* This CPU's attention word; valid for the intc's lifetime. Load it relaxed on
 * the fast path; it is recomputed under the lock whenever state changes, so it
 * stays 0 while nothing is deliverable. */
const atomic_uint *intc_attention(struct soft_intc *ic, int cpu);

/* Highest-priority deliverable maskable interrupt vector, or -1: the LAPIC IRR
 * above the processor priority, or the PIC's vector when the PIC reaches this
 * CPU (LINT0 in ExtINT mode, or the LAPIC hardware-disabled). No side effects. */
int intc_pending(struct soft_intc *ic, int cpu);

/* Acknowledge the interrupt intc_pending would return: the LAPIC moves it from
 * IRR to ISR, the PIC performs its INTA cycle. Returns the vector to deliver,
 * or -1 if nothing is deliverable any more (then deliver nothing). */
int intc_ack(struct soft_intc *ic, int cpu);

#define INTC_EV_NMI  1u
#define INTC_EV_INIT 2u
#define INTC_EV_SIPI 4u

/* Take (and clear) this CPU's pending NMI/INIT/SIPI. On INIT the LAPIC has
 * already been reset to its INIT state (ID and APIC base kept); the core resets
 * the CPU and, for an AP, waits for SIPI. SIPI is reported with its vector
 * (start at sipi_vector << 12); the core ignores a SIPI unless the CPU is in
 * wait-for-SIPI. Several bits may come at once: apply INIT, then SIPI, then
 * NMI. NMI: the core delivers vector 2 (honouring NMI blocking). */
unsigned intc_take_events(struct soft_intc *ic, int cpu, uint8_t *sipi_vector);

/* ---- Time (vCPU thread only, except intc_kick) ---- */

/* Fire whatever timers are due (LAPIC timer of this CPU, PIT). Cheap when
 * nothing is due: two atomic loads and one clock read. Call it every few
 * thousand instructions; interrupts it raises show up in the attention word. */
void intc_poll(struct soft_intc *ic, int cpu);

enum intc_wake {
	INTC_WAKE_READY,  /* something is deliverable (an event, or an IRQ if irq_enabled) */
	INTC_WAKE_KICKED, /* intc_kick was called (e.g. the machine stops): return to the loop */
};

/* HLT (or wait-for-SIPI with irq_enabled false): block until an event is
 * pending, a maskable interrupt is deliverable and irq_enabled, or intc_kick.
 * Fires timers as they fall due while waiting. */
enum intc_wake intc_wait(struct soft_intc *ic, int cpu, bool irq_enabled);

/* Wake intc_wait on `cpu` (any thread). A kick that arrives while the CPU is
 * not waiting makes its next intc_wait return INTC_WAKE_KICKED at once. */
void intc_kick(struct soft_intc *ic, int cpu);

/* This CPU's TSC: intc_tsc_khz * 1000 ticks per second of CLOCK_MONOTONIC
 * since the intc was created, plus the offset that writes to IA32_TSC,
 * IA32_TSC_ADJUST and intc_set_tsc set. */
uint64_t intc_rdtsc(struct soft_intc *ic, int cpu);
/* The TSC's rate, and setting it (before any vCPU has a TSC: at creation),
 * in the range engine.h allows (ENGINE_TSC_KHZ_MIN/MAX; others are ignored). */
uint32_t intc_tsc_khz(const struct soft_intc *ic);
void intc_set_tsc_khz(struct soft_intc *ic, uint32_t khz);

/* ---- Snapshots and vCPU set-up (CPU stopped) ----
 * Restore order: intc_set_apic_base, then intc_set_lapic, then
 * intc_set_tsc, then IA32_TSC_DEADLINE (it only counts in that mode). */

/* Host-initiated IA32_APIC_BASE write: any valid value (reserved bits clear,
 * no EXTD without EN), without the guest's mode transition rules, so a state
 * in x2APIC mode can be set on a CPU in any mode. false if invalid. */
bool intc_set_apic_base(struct soft_intc *ic, int cpu, uint64_t val);

/* Host-initiated TSC write (set_state at vCPU creation or restore; the guest's
 * WRMSR goes through intc_msr). vCPUs are set one after another, so their
 * values were taken at slightly different instants: a value within one second
 * of what the previous intc_set_tsc's TSC reads now (or 0, a fresh vCPU) is
 * taken to mean the same TSC and gets the same offset, as KVM does. Without
 * this, Linux measures a TSC warp between CPUs and drops the TSC. */
void intc_set_tsc(struct soft_intc *ic, int cpu, uint64_t tsc);

/* The LAPIC register page (LAPIC_PAGE_SIZE bytes, architectural xAPIC offsets,
 * each register in the low dword of its 16-byte slot; timer current count as
 * of now). set restores it, re-arming the timer from the current count. The
 * mode comes from IA32_APIC_BASE; in x2APIC mode too the ID is kept in bits
 * 31:24 and ICR2 holds the upper half of the 64-bit ICR, as KVM_GET_LAPIC
 * does without KVM_CAP_X2APIC_API, and the LDR is derived from the ID. */
void intc_get_lapic(struct soft_intc *ic, int cpu, uint8_t page[1024]);
void intc_set_lapic(struct soft_intc *ic, int cpu, const uint8_t page[1024]);

/* The VM-wide part (PIC pair, IOAPIC, PIT, kvmclock time) in the neutral form
 * of engines/vm_state.h, for the engine's get/set_vm_state ops. Setting the
 * clock moves the TSC of every CPU with it: intc_set_tsc afterwards. */
struct vm_state;
void intc_get_vm_state(struct soft_intc *ic, struct vm_state *st);
void intc_set_vm_state(struct soft_intc *ic, const struct vm_state *st);

#endif
