/* The local APIC of each soft vCPU: register file (xAPIC MMIO and x2APIC MSRs),
 * interrupt acceptance and priority (IRR/ISR/TMR, TPR/PPR), EOI, IPIs and the
 * timer (one-shot, periodic, TSC-deadline). Intel SDM vol. 3, chapter 11/12
 * ("Advanced Programmable Interrupt Controller"). Runs under the intc lock. */
#include <string.h>

#include "engines/soft/intc/intc_priv.h"

_Static_assert(INTC_CRYSTAL_HZ == 1000000000ull, "timer arithmetic assumes 1 tick per ns");

#define LAPIC_VERSION 0x00050014u /* integrated APIC, 6 LVT entries (no CMCI) */

#define TIMER_MODE(lvt) (((lvt) >> 17) & 3)
enum { TIMER_ONESHOT, TIMER_PERIODIC, TIMER_TSC_DEADLINE };

#define ICR_LOGICAL	 (1u << 11)
#define ICR_ASSERT	 (1u << 14)
#define ICR_LEVEL	 (1u << 15)
#define ESR_SEND_ILLEGAL (1u << 5)
#define ESR_RECV_ILLEGAL (1u << 6)

/* Writable bits of each LVT entry (delivery status and remote IRR are read-only). */
static uint32_t lvt_writable(unsigned slot)
{
	switch (slot) {
	case LAPIC_LVT_TIMER:
		return 0x000700ff; /* vector, mask, timer mode */
	case LAPIC_LVT_LINT0:
	case LAPIC_LVT_LINT1:
		return 0x0001a7ff; /* vector, mode, polarity, trigger, mask */
	case LAPIC_LVT_ERROR:
		return 0x000100ff;
	default:
		return 0x000107ff; /* thermal, perf, CMCI: vector, mode, mask */
	}
}

static bool is_lvt(unsigned slot)
{
	return slot == LAPIC_LVT_CMCI || (slot >= LAPIC_LVT_TIMER && slot <= LAPIC_LVT_ERROR);
}

bool lapic_hw_enabled(const struct lapic *a)
{
	return a->base_msr & APIC_BASE_EN;
}

bool lapic_x2apic(const struct lapic *a)
{
	return a->base_msr & APIC_BASE_EXTD;
}

/* The x2APIC logical ID, fixed by the APIC ID: cluster in 31:16, one bit of
 * 16 in 15:0 (SDM 11.12.10.2). */
static uint32_t x2apic_ldr(uint32_t id)
{
	return ((id >> 4) << 16) | (1u << (id & 15));
}

static bool sw_enabled(const struct lapic *a)
{
	return lapic_hw_enabled(a) && (a->reg[LAPIC_SVR] & SVR_ENABLED);
}

/* 256-bit vector sets (IRR, ISR, TMR) live in 8 consecutive slots. */
static bool vec_test(const struct lapic *a, unsigned base, uint8_t v)
{
	return a->reg[base + v / 32] & (1u << (v % 32));
}

static void vec_set(struct lapic *a, unsigned base, uint8_t v, bool on)
{
	if (on)
		a->reg[base + v / 32] |= 1u << (v % 32);
	else
		a->reg[base + v / 32] &= ~(1u << (v % 32));
}

static int vec_highest(const struct lapic *a, unsigned base)
{
	for (int i = 7; i >= 0; i--)
		if (a->reg[base + i])
			return i * 32 + 31 - __builtin_clz(a->reg[base + i]);
	return -1;
}

static uint32_t ppr(const struct lapic *a)
{
	uint32_t tpr = a->reg[LAPIC_TPR] & 0xff;
	int isrv = vec_highest(a, LAPIC_ISR);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
	return (tpr & 0xf0) >= isr_class ? tpr : isr_class;
}

int lapic_deliverable(const struct lapic *a)
{
	if (!sw_enabled(a))
		return -1;
	int v = vec_highest(a, LAPIC_IRR);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (ppr(a) & 0xf0))
		return -1;
	return v;
}

void lapic_ack(struct lapic *a, uint8_t vector)
{
	vec_set(a, LAPIC_IRR, vector, false);
	vec_set(a, LAPIC_ISR, vector, true);
}

bool lapic_accepts_pic(const struct lapic *a)
{
	uint32_t lint0 = a->reg[LAPIC_LVT_LINT0];
	if (!lapic_hw_enabled(a))
		return a->base_msr & APIC_BASE_BSP; /* no APIC: INTR goes straight to the BSP */
	return !(lint0 & LVT_MASKED) && ((lint0 >> 8) & 7) == DM_EXTINT;
}

/* ---- Timer ---- */

static uint64_t timer_divisor(const struct lapic *a)
{
	uint32_t d = a->reg[LAPIC_TIMER_DIV];
	uint32_t v = (d & 3) | ((d >> 1) & 4);
	return v == 7 ? 1 : 2ull << v;
}

static uint32_t timer_current(const struct lapic *a, uint64_t now)
{
	uint32_t lvt = a->reg[LAPIC_LVT_TIMER];
	if (TIMER_MODE(lvt) == TIMER_TSC_DEADLINE || a->timer_period == 0)
		return 0;
	uint64_t elapsed = now > a->timer_start ? now - a->timer_start : 0;
	if (TIMER_MODE(lvt) == TIMER_PERIODIC)
		elapsed %= a->timer_period;
	else if (elapsed >= a->timer_period)
		return 0;
	return (uint32_t)((a->timer_period - elapsed) / timer_divisor(a));
}

static void timer_disarm(struct soft_intc *ic, int cpu)
{
	struct lapic *a = &ic->cpu[cpu];
	a->timer_period = 0;
	a->timer_due = NEVER;
	a->tsc_deadline = 0;
	intc_set_due(ic, cpu);
}

/* Start counting `remaining` ticks of a count whose full length is `period` ns. */
static void timer_start(struct soft_intc *ic, int cpu, uint64_t period, uint64_t remaining)
{
	struct lapic *a = &ic->cpu[cpu];
	uint64_t now = intc_now();
	a->timer_period = period;
	a->timer_start = now - (period - remaining);
	a->timer_due = remaining ? now + remaining : now;
	intc_set_due(ic, cpu);
}

void lapic_fire_timer(struct soft_intc *ic, int cpu, uint64_t now)
{
	struct lapic *a = &ic->cpu[cpu];
	uint32_t lvt = a->reg[LAPIC_LVT_TIMER];
	if (a->timer_due > now)
		return;
	if (TIMER_MODE(lvt) == TIMER_PERIODIC && a->timer_period) {
		/* Ticks missed while the host was busy collapse into one interrupt:
		 * the IRR holds one bit per vector anyway. */
		uint64_t missed = (now - a->timer_due) / a->timer_period;
		a->timer_due += (missed + 1) * a->timer_period;
	} else {
		a->timer_due = NEVER;
		a->tsc_deadline = 0;
	}
	intc_set_due(ic, cpu);
	if (!(lvt & LVT_MASKED))
		lapic_accept(ic, cpu, DM_FIXED, lvt & 0xff, false);
}

void lapic_set_tsc_deadline(struct soft_intc *ic, int cpu, uint64_t tsc)
{
	struct lapic *a = &ic->cpu[cpu];
	if (TIMER_MODE(a->reg[LAPIC_LVT_TIMER]) != TIMER_TSC_DEADLINE)
		return; /* ignored in the other timer modes */
	a->tsc_deadline = tsc;
	if (tsc == 0) {
		a->timer_due = NEVER;
	} else {
		uint64_t now = intc_now();
		uint64_t cur = intc_ticks(ic, now - ic->epoch) + (uint64_t)a->tsc_offset;
		uint64_t ahead = intc_ns(ic, tsc > cur ? tsc - cur : 0);
		a->timer_due = ahead >= NEVER - now ? NEVER - 1 : now + ahead;
	}
	intc_set_due(ic, cpu);
}

/* ---- Acceptance, EOI, IPIs ---- */

void lapic_accept(struct soft_intc *ic, int cpu, unsigned dm, uint8_t vector, bool level_trig)
{
	struct lapic *a = &ic->cpu[cpu];
	if (!lapic_hw_enabled(a))
		return;
	switch (dm) {
	case DM_FIXED:
	case DM_LOWEST:
		if (!sw_enabled(a))
			return; /* a software-disabled APIC drops fixed interrupts */
		if (vector < 16) {
			a->esr_pending |= ESR_RECV_ILLEGAL;
			return;
		}
		vec_set(a, LAPIC_IRR, vector, true);
		vec_set(a, LAPIC_TMR, vector, level_trig);
		break;
	case DM_NMI:
		a->events |= INTC_EV_NMI;
		break;
	case DM_INIT:
		a->events |= INTC_EV_INIT;
		break;
	case DM_SIPI:
		a->events |= INTC_EV_SIPI;
		a->sipi_vector = vector;
		break;
	default:
		return; /* SMI and ExtINT messages are not modelled */
	}
	intc_update(ic, cpu);
}

bool lapic_match(const struct lapic *a, uint32_t dest, bool logical, bool wide)
{
	if (!lapic_hw_enabled(a))
		return false;
	uint32_t bcast = wide ? 0xffffffffu : 0xffu;
	if (dest == bcast)
		return true;
	if (!logical)
		return dest == (lapic_x2apic(a) || wide ? a->id : (a->id & 0xff));
	uint32_t ldr = a->reg[LAPIC_LDR];
	if (lapic_x2apic(a)) {
		/* x2APIC logical: cluster in 31:16, one bit per member in 15:0. An
		 * 8-bit message uses the xAPIC cluster layout (cluster:4, bits:4). */
		if (!wide)
			dest = ((dest >> 4) << 16) | (dest & 0xf);
		return (dest >> 16) == (ldr >> 16) && (dest & ldr & 0xffff);
	}
	uint8_t d = (uint8_t)dest, l = (uint8_t)(ldr >> 24);
	if ((a->reg[LAPIC_DFR] >> 28) == 0xf)
		return d & l;			      /* flat model: 8 bits, one per CPU */
	return (d >> 4) == (l >> 4) && (d & l & 0xf); /* cluster model */
}

static void eoi(struct soft_intc *ic, int cpu)
{
	struct lapic *a = &ic->cpu[cpu];
	int v = vec_highest(a, LAPIC_ISR);
	if (v < 0)
		return;
	vec_set(a, LAPIC_ISR, (uint8_t)v, false);
	if (vec_test(a, LAPIC_TMR, (uint8_t)v))
		ioapic_eoi(ic, (uint8_t)v); /* level-triggered: the IOAPIC may resend */
	intc_update(ic, cpu);
}

static void send_ipi(struct soft_intc *ic, int cpu)
{
	struct lapic *a = &ic->cpu[cpu];
	uint32_t icr = a->reg[LAPIC_ICR];
	bool wide = lapic_x2apic(a);
	uint32_t dest = wide ? a->reg[LAPIC_ICR2] : a->reg[LAPIC_ICR2] >> 24;
	unsigned dm = (icr >> 8) & 7, shorthand = (icr >> 18) & 3;
	uint8_t vector = icr & 0xff;

	if (dm == DM_INIT && !(icr & ICR_ASSERT) && (icr & ICR_LEVEL))
		return; /* INIT level de-assert: only synchronises arbitration IDs */
	if ((dm == DM_FIXED || dm == DM_LOWEST) && vector < 16) {
		a->esr_pending |= ESR_SEND_ILLEGAL;
		return;
	}
	if (dm == DM_LOWEST && shorthand)
		dm = DM_FIXED;
	switch (shorthand) {
	case 0:
		intc_route(ic, dest, icr & ICR_LOGICAL, wide, dm, vector, false);
		break;
	case 1:
		lapic_accept(ic, cpu, dm, vector, false);
		break;
	default: /* 2: all including self, 3: all excluding self */
		for (int i = 0; i < ic->ncpus; i++)
			if (i != cpu || shorthand == 2)
				lapic_accept(ic, i, dm, vector, false);
	}
}

/* ---- Register file ---- */

uint32_t lapic_read(struct soft_intc *ic, int cpu, unsigned slot)
{
	struct lapic *a = &ic->cpu[cpu];
	switch (slot) {
	case LAPIC_ID:
		return lapic_x2apic(a) ? a->id : a->id << 24;
	case LAPIC_VER:
		return LAPIC_VERSION;
	case LAPIC_PPR:
		return ppr(a);
	case LAPIC_TIMER_CUR:
		return timer_current(a, intc_now());
	case LAPIC_EOI:
	case LAPIC_SELF_IPI:
		return 0;
	default:
		return slot < LAPIC_NREGS ? a->reg[slot] : 0;
	}
}

static void write_lvt(struct soft_intc *ic, int cpu, unsigned slot, uint32_t val)
{
	struct lapic *a = &ic->cpu[cpu];
	uint32_t old = a->reg[slot];
	uint32_t keep = old & ~lvt_writable(slot) & (1u << 14); /* remote IRR */
	val = (val & lvt_writable(slot)) | keep;
	if (!sw_enabled(a))
		val |= LVT_MASKED;
	if (slot == LAPIC_LVT_TIMER && TIMER_MODE(val) == 3)
		val &= ~(3u << 17); /* reserved mode: behave as one-shot */
	a->reg[slot] = val;
	/* Entering or leaving TSC-deadline mode disarms the timer; switching
	 * between one-shot and periodic lets the running count go on. */
	if (slot == LAPIC_LVT_TIMER &&
	    (TIMER_MODE(val) == TIMER_TSC_DEADLINE) != (TIMER_MODE(old) == TIMER_TSC_DEADLINE)) {
		a->reg[LAPIC_TIMER_INIT] = 0;
		timer_disarm(ic, cpu);
	}
	if (slot == LAPIC_LVT_LINT0)
		intc_update(ic, cpu); /* ExtINT routing of the 8259 may have changed */
}

void lapic_write(struct soft_intc *ic, int cpu, unsigned slot, uint32_t val)
{
	struct lapic *a = &ic->cpu[cpu];
	switch (slot) {
	case LAPIC_ID:
		if (!lapic_x2apic(a))
			a->id = val >> 24;
		break;
	case LAPIC_TPR:
		a->reg[slot] = val & 0xff;
		intc_update(ic, cpu);
		break;
	case LAPIC_EOI:
		eoi(ic, cpu);
		break;
	case LAPIC_LDR:
		if (!lapic_x2apic(a))
			a->reg[slot] = val & 0xff000000;
		break;
	case LAPIC_DFR:
		if (!lapic_x2apic(a))
			a->reg[slot] = val | 0x0fffffff;
		break;
	case LAPIC_SVR:
		a->reg[slot] = val & 0x3ff;
		if (!(val & SVR_ENABLED)) {
			a->reg[LAPIC_LVT_CMCI] |= LVT_MASKED;
			for (unsigned s = LAPIC_LVT_TIMER; s <= LAPIC_LVT_ERROR; s++)
				a->reg[s] |= LVT_MASKED;
		}
		intc_update(ic, cpu);
		break;
	case LAPIC_ESR:
		a->reg[slot] = a->esr_pending; /* a write latches the errors seen so far */
		a->esr_pending = 0;
		break;
	case LAPIC_ICR:
		a->reg[slot] = val & ~(1u << 12); /* delivery is instant: never "pending" */
		send_ipi(ic, cpu);
		break;
	case LAPIC_ICR2:
		a->reg[slot] = lapic_x2apic(a) ? val : val & 0xff000000;
		break;
	case LAPIC_TIMER_INIT:
		if (TIMER_MODE(a->reg[LAPIC_LVT_TIMER]) == TIMER_TSC_DEADLINE)
			break;
		a->reg[slot] = val;
		if (val == 0) {
			timer_disarm(ic, cpu);
		} else {
			uint64_t period = val * timer_divisor(a);
			timer_start(ic, cpu, period, period);
		}
		break;
	case LAPIC_TIMER_DIV:
		a->reg[slot] = val & 0xb;
		break;
	case LAPIC_SELF_IPI:
		if (!lapic_x2apic(a))
			break; /* reserved in xAPIC mode */
		if ((val & 0xff) < 16)
			a->esr_pending |= ESR_SEND_ILLEGAL;
		else
			lapic_accept(ic, cpu, DM_FIXED, val & 0xff, false);
		break;
	default:
		if (is_lvt(slot))
			write_lvt(ic, cpu, slot, val);
		break; /* read-only or reserved: ignored */
	}
}

/* Power-on (or INIT) state; INIT keeps the ID and the APIC base MSR. */
void lapic_reset(struct soft_intc *ic, int cpu, bool power_on)
{
	struct lapic *a = &ic->cpu[cpu];
	if (power_on) {
		a->id = (uint32_t)cpu;
		a->base_msr =
		    INTC_APIC_DEFAULT_BASE | APIC_BASE_EN | (cpu == 0 ? APIC_BASE_BSP : 0);
	}
	memset(a->reg, 0, sizeof(a->reg));
	a->esr_pending = 0;
	a->reg[LAPIC_DFR] = 0xffffffff;
	a->reg[LAPIC_SVR] = 0xff;
	a->reg[LAPIC_LVT_CMCI] = LVT_MASKED;
	for (unsigned s = LAPIC_LVT_TIMER; s <= LAPIC_LVT_ERROR; s++)
		a->reg[s] = LVT_MASKED;
	/* Firmware leaves the BSP in virtual-wire mode: the 8259 reaches it
	 * through LINT0 as ExtINT, so PIC-only guests work without APIC setup. */
	if (power_on && cpu == 0)
		a->reg[LAPIC_LVT_LINT0] = DM_EXTINT << 8;
	if (lapic_x2apic(a))
		a->reg[LAPIC_LDR] = x2apic_ldr(a->id);
	timer_disarm(ic, cpu);
	intc_update(ic, cpu);
}

/* ---- MSRs: IA32_APIC_BASE, IA32_TSC_DEADLINE, x2APIC 0x800-0x8ff ---- */

/* A guest write obeys the mode transitions of SDM 11.12.5; a host write (set
 * state, restore) may go from any valid state to any other. */
static int apic_base_write(struct soft_intc *ic, int cpu, uint64_t val, bool host)
{
	struct lapic *a = &ic->cpu[cpu];
	const uint64_t reserved = ~(APIC_BASE_ADDR | APIC_BASE_BSP | APIC_BASE_EXTD | APIC_BASE_EN);
	bool en = val & APIC_BASE_EN, x2 = val & APIC_BASE_EXTD;
	if ((val & reserved) || (x2 && !en))
		return -1;
	if (!host && lapic_x2apic(a) && en && !x2)
		return -1; /* x2APIC -> xAPIC must go through disabled */
	if (!host && !lapic_hw_enabled(a) && x2)
		return -1; /* disabled -> x2APIC must go through xAPIC */
	bool was_en = lapic_hw_enabled(a), was_x2 = lapic_x2apic(a);
	a->base_msr = (val & ~APIC_BASE_BSP) | (a->base_msr & APIC_BASE_BSP);
	if (was_en && !en)
		lapic_reset(ic, cpu, false); /* globally disabling loses the state (SDM 11.4.3) */
	if (x2 && !was_x2)
		a->reg[LAPIC_LDR] = x2apic_ldr(a->id);
	else if (!x2 && was_x2)
		a->reg[LAPIC_LDR] = 0; /* a host write leaving x2APIC: the xAPIC default */
	intc_update(ic, cpu);
	return 1;
}

bool intc_set_apic_base(struct soft_intc *ic, int cpu, uint64_t val)
{
	pthread_mutex_lock(&ic->lock);
	int r = apic_base_write(ic, cpu, val, true);
	pthread_mutex_unlock(&ic->lock);
	return r > 0;
}

/* x2APIC MSR access rules (SDM table 11-6): which slots exist, read or write. */
static bool x2apic_readable(unsigned slot)
{
	return slot == LAPIC_ID || slot == LAPIC_VER || slot == LAPIC_TPR || slot == LAPIC_PPR ||
	       slot == LAPIC_LDR || slot == LAPIC_SVR ||
	       (slot >= LAPIC_ISR && slot < LAPIC_ESR + 1) || slot == LAPIC_ICR || is_lvt(slot) ||
	       slot == LAPIC_TIMER_INIT || slot == LAPIC_TIMER_CUR || slot == LAPIC_TIMER_DIV;
}

static bool x2apic_writable(unsigned slot)
{
	return slot == LAPIC_TPR || slot == LAPIC_EOI || slot == LAPIC_SVR || slot == LAPIC_ESR ||
	       slot == LAPIC_ICR || is_lvt(slot) || slot == LAPIC_TIMER_INIT ||
	       slot == LAPIC_TIMER_DIV || slot == LAPIC_SELF_IPI;
}

static int x2apic_msr(struct soft_intc *ic, int cpu, unsigned slot, uint64_t *val, bool write)
{
	struct lapic *a = &ic->cpu[cpu];
	if (!lapic_x2apic(a))
		return -1;
	if (!write) {
		if (!x2apic_readable(slot))
			return -1;
		*val = lapic_read(ic, cpu, slot);
		if (slot == LAPIC_ICR)
			*val |= (uint64_t)a->reg[LAPIC_ICR2] << 32;
		return 1;
	}
	if (!x2apic_writable(slot))
		return -1;
	if (slot == LAPIC_ICR) {
		a->reg[LAPIC_ICR2] = (uint32_t)(*val >> 32);
	} else if (*val >> 32) {
		return -1;
	}
	if ((slot == LAPIC_EOI || slot == LAPIC_ESR) && *val)
		return -1;
	lapic_write(ic, cpu, slot, (uint32_t)*val);
	return 1;
}

int lapic_msr(struct soft_intc *ic, int cpu, uint32_t msr, uint64_t *val, bool write)
{
	struct lapic *a = &ic->cpu[cpu];
	if (msr == 0x1b) { /* IA32_APIC_BASE */
		if (write)
			return apic_base_write(ic, cpu, *val, false);
		*val = a->base_msr;
		return 1;
	}
	if (msr == 0x6e0) { /* IA32_TSC_DEADLINE */
		if (write)
			lapic_set_tsc_deadline(ic, cpu, *val);
		else
			*val = a->tsc_deadline;
		return 1;
	}
	if (msr >= 0x800 && msr <= 0x8ff)
		return x2apic_msr(ic, cpu, msr - 0x800, val, write);
	return 0;
}

/* ---- Snapshots ---- */

void intc_get_lapic(struct soft_intc *ic, int cpu, uint8_t page[1024])
{
	pthread_mutex_lock(&ic->lock);
	memset(page, 0, LAPIC_NREGS * 16);
	for (unsigned s = 0; s < LAPIC_NREGS; s++) {
		uint32_t v = s == LAPIC_ID ? ic->cpu[cpu].id << 24 : lapic_read(ic, cpu, s);
		memcpy(page + s * 16, &v, 4);
	}
	pthread_mutex_unlock(&ic->lock);
}

void intc_set_lapic(struct soft_intc *ic, int cpu, const uint8_t page[1024])
{
	pthread_mutex_lock(&ic->lock);
	struct lapic *a = &ic->cpu[cpu];
	uint32_t r[LAPIC_NREGS];
	for (unsigned s = 0; s < LAPIC_NREGS; s++)
		memcpy(&r[s], page + s * 16, 4);
	memcpy(a->reg, r, sizeof(a->reg));
	a->id = r[LAPIC_ID] >> 24;
	if (lapic_x2apic(a))
		a->reg[LAPIC_LDR] = x2apic_ldr(a->id); /* derived, whatever the page says */
	a->reg[LAPIC_TIMER_DIV] &= 0xb;
	a->reg[LAPIC_TIMER_CUR] = 0;
	uint32_t mode = TIMER_MODE(a->reg[LAPIC_LVT_TIMER]);
	uint64_t tsc_deadline = a->tsc_deadline;
	timer_disarm(ic, cpu);
	if (mode == TIMER_TSC_DEADLINE) {
		lapic_set_tsc_deadline(ic, cpu, tsc_deadline);
	} else if (r[LAPIC_TIMER_INIT]) {
		uint64_t period = r[LAPIC_TIMER_INIT] * timer_divisor(a);
		uint64_t left = (uint64_t)r[LAPIC_TIMER_CUR] * timer_divisor(a);
		if (left > period)
			left = period;
		if (left || mode == TIMER_PERIODIC)
			timer_start(ic, cpu, period, left);
		else
			a->timer_period = period; /* a one-shot that already fired */
	}
	intc_update(ic, cpu);
	pthread_mutex_unlock(&ic->lock);
}
