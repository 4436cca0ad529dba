/* State shared by the soft engine's interrupt controllers (not for the core).
 * Every function here runs with soft_intc.lock held unless it says otherwise. */
#ifndef POPEK_SOFT_INTC_PRIV_H
#define POPEK_SOFT_INTC_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engines/soft/intc/intc.h"
#include "engines/vm_state.h"

#define NEVER UINT64_MAX /* a deadline that does not exist */

/* ---- Local APIC ---- */

/* Register slots: architectural offset >> 4, one dword per 16-byte slot. */
enum {
	LAPIC_ID = 0x02,
	LAPIC_VER = 0x03,
	LAPIC_TPR = 0x08,
	LAPIC_APR = 0x09,
	LAPIC_PPR = 0x0a,
	LAPIC_EOI = 0x0b,
	LAPIC_RRD = 0x0c,
	LAPIC_LDR = 0x0d,
	LAPIC_DFR = 0x0e,
	LAPIC_SVR = 0x0f,
	LAPIC_ISR = 0x10,
	LAPIC_TMR = 0x18,
	LAPIC_IRR = 0x20,
	LAPIC_ESR = 0x28,
	LAPIC_LVT_CMCI = 0x2f,
	LAPIC_ICR = 0x30,
	LAPIC_ICR2 = 0x31,
	LAPIC_LVT_TIMER = 0x32,
	LAPIC_LVT_THERMAL = 0x33,
	LAPIC_LVT_PERF = 0x34,
	LAPIC_LVT_LINT0 = 0x35,
	LAPIC_LVT_LINT1 = 0x36,
	LAPIC_LVT_ERROR = 0x37,
	LAPIC_TIMER_INIT = 0x38,
	LAPIC_TIMER_CUR = 0x39,
	LAPIC_TIMER_DIV = 0x3e,
	LAPIC_SELF_IPI = 0x3f,
	LAPIC_NREGS = 0x40
};

/* The APIC page address: bits 12 up to the 40-bit MAXPHYADDR the core
 * advertises in CPUID 0x80000008; the bits above are reserved (#GP). */
#define APIC_BASE_ADDR 0x000000fffffff000ull
#define APIC_BASE_BSP  (1ull << 8)
#define APIC_BASE_EXTD (1ull << 10) /* x2APIC mode */
#define APIC_BASE_EN   (1ull << 11)

#define LVT_MASKED  (1u << 16)
#define SVR_ENABLED (1u << 8)

/* Delivery modes (ICR, LVT, IOAPIC redirection entries, MSI data). */
enum { DM_FIXED, DM_LOWEST, DM_SMI, DM_NMI = 4, DM_INIT, DM_SIPI, DM_EXTINT };

struct lapic {
	uint32_t id;
	uint64_t base_msr;	   /* IA32_APIC_BASE */
	uint32_t reg[LAPIC_NREGS]; /* ID, PPR and the current count are computed */
	uint64_t timer_start;	   /* CLOCK_MONOTONIC ns the initial count was loaded */
	uint64_t timer_period;	   /* ns for the whole count (initial * divisor) */
	uint64_t timer_due;	   /* next expiry (ns), NEVER if disarmed */
	uint64_t tsc_deadline;	   /* IA32_TSC_DEADLINE */
	int64_t tsc_offset;	   /* guest TSC = (now - epoch) + tsc_offset */
	int64_t tsc_adjust;	   /* IA32_TSC_ADJUST, part of tsc_offset */
	uint64_t kvmclock_msr;	   /* MSR_KVM_SYSTEM_TIME_NEW */
	uint32_t esr_pending;	   /* errors since the last ESR write */

	unsigned events; /* INTC_EV_* not yet taken */
	uint8_t sipi_vector;
	bool kicked, waiting;
	pthread_cond_t wake;	   /* intc_wait sleeps here (CLOCK_MONOTONIC) */
	atomic_uint attention;	   /* INTC_ATTN_* */
	_Atomic uint64_t next_due; /* this CPU's earliest timer (ns), for intc_poll */
};

void lapic_reset(struct soft_intc *ic, int cpu, bool power_on);
uint32_t lapic_read(struct soft_intc *ic, int cpu, unsigned slot);
void lapic_write(struct soft_intc *ic, int cpu, unsigned slot, uint32_t val);
int lapic_msr(struct soft_intc *ic, int cpu, uint32_t msr, uint64_t *val, bool write);
bool lapic_hw_enabled(const struct lapic *a);
bool lapic_x2apic(const struct lapic *a);
/* Accept an interrupt message of delivery mode dm at this LAPIC. */
void lapic_accept(struct soft_intc *ic, int cpu, unsigned dm, uint8_t vector, bool level_trig);
/* Highest IRR vector above the processor priority, or -1. */
int lapic_deliverable(const struct lapic *a);
void lapic_ack(struct lapic *a, uint8_t vector);
/* Does LINT0 let the 8259's output reach this CPU? */
bool lapic_accepts_pic(const struct lapic *a);
/* Does a message for dest (logical when `logical`) reach this LAPIC? wide:
 * dest is a 32-bit x2APIC destination (else an 8-bit xAPIC one). */
bool lapic_match(const struct lapic *a, uint32_t dest, bool logical, bool wide);
void lapic_fire_timer(struct soft_intc *ic, int cpu, uint64_t now);
void lapic_set_tsc_deadline(struct soft_intc *ic, int cpu, uint64_t tsc);

/* ---- IOAPIC ---- */

struct ioapic {
	uint32_t ioregsel, id;
	uint64_t redir[INTC_IOAPIC_PINS];
	uint32_t line; /* input levels, for edge detection */
	uint32_t irr;  /* asserted level, or a latched rising edge not yet delivered */
};

void ioapic_reset(struct ioapic *io);
void ioapic_set_pin(struct soft_intc *ic, unsigned pin, bool level);
void ioapic_eoi(struct soft_intc *ic, uint8_t vector);
void ioapic_mmio(struct soft_intc *ic, uint64_t offset, uint32_t *val, bool write);
void ioapic_save(const struct ioapic *io, struct ioapic_state *st);
void ioapic_load(struct ioapic *io, const struct ioapic_state *st);

/* ---- 8259 PIC pair ---- */

struct pic_chip {
	uint8_t irr, isr, imr, elcr, elcr_mask;
	uint8_t line;	     /* input levels, for edge detection */
	uint8_t vector_base; /* ICW2 */
	uint8_t prio_base;   /* the IRQ with the highest priority (rotation) */
	uint8_t init_step;   /* 0 = operational, 1-3 = expecting ICW2-ICW4 */
	bool want_icw4, single, aeoi, rotate_aeoi, read_isr, poll, special_mask;
};

struct pic {
	struct pic_chip chip[2]; /* master, slave (cascaded on master IRQ2) */
};

void pic_reset(struct pic *p);
void pic_set_irq(struct pic *p, unsigned irq, bool level);
bool pic_output(const struct pic *p);
/* The vector pic_ack would return now, or -1 if the output is low. */
int pic_peek(const struct pic *p);
/* INTA cycle: the vector to deliver (a spurious 7/15 vector if nothing). */
uint8_t pic_ack(struct pic *p);
bool pic_pio(struct pic *p, uint16_t port, uint8_t *val, bool write);
void pic_save(const struct pic *p, struct pic_state st[2]);
void pic_load(struct pic *p, const struct pic_state st[2]);

/* ---- 8254 PIT and port 0x61 ---- */

struct pit_channel {
	uint8_t mode, rw; /* mode 0-5; rw: 1 lo byte, 2 hi byte, 3 lo then hi */
	uint32_t reload;  /* 1..65536 */
	bool armed;	  /* a count was written since the control word */
	bool null_count;  /* status bit: count written but not yet loaded */
	bool gate;
	uint64_t start;	       /* ns when counting (re)started */
	uint64_t paused_ticks; /* ticks counted before the gate fell */
	uint16_t latch;
	uint8_t latch_bytes; /* latched count bytes still to read (0, 1, 2) */
	bool status_latched;
	uint8_t status;
	bool read_hi, write_hi; /* lo/hi byte toggles */
	uint8_t write_lo;
};

struct pit {
	struct pit_channel ch[3];
	uint8_t port61; /* bits 0-3 as written */
};

void pit_reset(struct pit *p, uint64_t now);
bool pit_pio(struct soft_intc *ic, uint16_t port, uint8_t *val, bool write);
void pit_fire(struct soft_intc *ic, uint64_t now);
void pit_save(const struct pit *p, struct pit_channel_state st[3], bool *speaker, uint64_t now);
void pit_load(struct soft_intc *ic, const struct pit_channel_state st[3], bool speaker,
	      uint64_t now);

/* ---- The whole ---- */

struct soft_intc {
	pthread_mutex_t lock;
	int ncpus;
	uint64_t epoch;	  /* CLOCK_MONOTONIC ns at creation: TSC 0, kvmclock 0 */
	uint32_t tsc_khz; /* the TSC's rate */
	intc_mem_fn mem;
	void *mem_ctx;
	struct pic pic;
	struct ioapic ioapic;
	struct pit pit;
	_Atomic uint64_t pit_due; /* next rising edge of PIT OUT0 (ns), NEVER if none */
	uint64_t wall_clock_msr;
	struct {
		bool valid;
		uint64_t value, at; /* the last intc_set_tsc: TSC written, host ns */
		int64_t offset;	    /* the offset it chose */
	} tsc_sync;
	struct lapic cpu[];
};

uint64_t intc_now(void);
/* Host ns since the epoch as TSC ticks at the VM's rate, and TSC ticks as ns
 * (UINT64_MAX if that many ns do not fit). Exact floors. */
uint64_t intc_ticks(const struct soft_intc *ic, uint64_t ns);
uint64_t intc_ns(const struct soft_intc *ic, uint64_t ticks);
/* Recompute a CPU's attention word (and wake it if it sleeps) after a change. */
void intc_update(struct soft_intc *ic, int cpu);
void intc_update_all(struct soft_intc *ic);
/* Route an interrupt message (IOAPIC, MSI or IPI) to the LAPICs it addresses. */
void intc_route(struct soft_intc *ic, uint32_t dest, bool logical, bool wide, unsigned dm,
		uint8_t vector, bool level_trig);
/* Publish a changed LAPIC timer deadline of a CPU / the PIT's next interrupt
 * (for intc_poll and sleeping intc_wait callers). */
void intc_set_due(struct soft_intc *ic, int cpu);
void intc_set_pit_due(struct soft_intc *ic, uint64_t due);

/* IA32_TSC, IA32_TSC_ADJUST and the kvmclock MSRs (clock.c); 0 if not one. */
int clock_msr(struct soft_intc *ic, int cpu, uint32_t msr, uint64_t *val, bool write);

#endif
