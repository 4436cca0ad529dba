/* The soft engine's interrupt hub: one lock around the LAPICs, IOAPIC, PIC and
 * PIT; message routing between them; the lock-free attention word each vCPU
 * polls; timer polling and the HLT sleep. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engines/soft/intc/intc_priv.h"

uint64_t intc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct soft_intc *intc_create(int ncpus, intc_mem_fn mem, void *mem_ctx)
{
	if (ncpus < 1 || ncpus > 255 || !mem)
		return NULL;
	struct soft_intc *ic = calloc(1, sizeof(*ic) + (size_t)ncpus * sizeof(struct lapic));
	if (!ic)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&ic->lock, NULL);
	ic->ncpus = ncpus;
	ic->mem = mem;
	ic->mem_ctx = mem_ctx;
	ic->epoch = intc_now();
	ic->tsc_khz = INTC_TSC_HZ / 1000;
	pic_reset(&ic->pic);
	ioapic_reset(&ic->ioapic);
	pit_reset(&ic->pit, ic->epoch);
	atomic_init(&ic->pit_due, NEVER);
	pthread_mutex_lock(&ic->lock);
	for (int i = 0; i < ncpus; i++) {
		pthread_cond_init(&ic->cpu[i].wake, &ca);
		atomic_init(&ic->cpu[i].attention, 0);
		atomic_init(&ic->cpu[i].next_due, NEVER);
		lapic_reset(ic, i, true);
	}
	pthread_mutex_unlock(&ic->lock);
	pthread_condattr_destroy(&ca);
	return ic;
}

void intc_destroy(struct soft_intc *ic)
{
	if (!ic)
		return;
	for (int i = 0; i < ic->ncpus; i++)
		pthread_cond_destroy(&ic->cpu[i].wake);
	pthread_mutex_destroy(&ic->lock);
	free(ic);
}

/* ---- Attention and wake-ups ---- */

static bool irq_ready(struct soft_intc *ic, int cpu)
{
	const struct lapic *a = &ic->cpu[cpu];
	return lapic_deliverable(a) >= 0 || (pic_output(&ic->pic) && lapic_accepts_pic(a));
}

void intc_update(struct soft_intc *ic, int cpu)
{
	struct lapic *a = &ic->cpu[cpu];
	unsigned attn =
	    (a->events ? INTC_ATTN_EVENT : 0) | (irq_ready(ic, cpu) ? INTC_ATTN_IRQ : 0);
	atomic_store_explicit(&a->attention, attn, memory_order_release);
	if (attn && a->waiting)
		pthread_cond_signal(&a->wake);
}

void intc_update_all(struct soft_intc *ic)
{
	for (int i = 0; i < ic->ncpus; i++)
		intc_update(ic, i);
}

void intc_set_due(struct soft_intc *ic, int cpu)
{
	struct lapic *a = &ic->cpu[cpu];
	atomic_store_explicit(&a->next_due, a->timer_due, memory_order_relaxed);
	if (a->waiting)
		pthread_cond_signal(&a->wake); /* re-sleep with the new deadline */
}

void intc_set_pit_due(struct soft_intc *ic, uint64_t due)
{
	if (atomic_exchange(&ic->pit_due, due) == due)
		return;
	for (int i = 0; i < ic->ncpus; i++)
		if (ic->cpu[i].waiting)
			pthread_cond_signal(&ic->cpu[i].wake);
}

/* ---- Routing ---- */

void intc_route(struct soft_intc *ic, uint32_t dest, bool logical, bool wide, unsigned dm,
		uint8_t vector, bool level_trig)
{
	if (dm == DM_LOWEST) {
		/* Lowest priority: the matching CPU with the lowest task priority. */
		int best = -1;
		for (int i = 0; i < ic->ncpus; i++) {
			const struct lapic *a = &ic->cpu[i];
			if (!lapic_match(a, dest, logical, wide) ||
			    !(a->reg[LAPIC_SVR] & SVR_ENABLED))
				continue;
			if (best < 0 || a->reg[LAPIC_TPR] < ic->cpu[best].reg[LAPIC_TPR])
				best = i;
		}
		if (best >= 0)
			lapic_accept(ic, best, DM_FIXED, vector, level_trig);
		return;
	}
	for (int i = 0; i < ic->ncpus; i++)
		if (lapic_match(&ic->cpu[i], dest, logical, wide))
			lapic_accept(ic, i, dm, vector, level_trig);
}

void intc_irq_line(struct soft_intc *ic, unsigned gsi, bool level)
{
	if (gsi >= INTC_IOAPIC_PINS)
		return;
	pthread_mutex_lock(&ic->lock);
	if (gsi < 16)
		pic_set_irq(&ic->pic, gsi, level);
	ioapic_set_pin(ic, gsi, level);
	intc_update_all(ic);
	pthread_mutex_unlock(&ic->lock);
}

void intc_msi(struct soft_intc *ic, uint64_t addr, uint32_t data)
{
	if ((addr >> 20) != 0xfee)
		return; /* not an interrupt message */
	unsigned dm = (data >> 8) & 7;
	if (dm == DM_SMI || dm == 3 || dm == DM_EXTINT)
		return;
	pthread_mutex_lock(&ic->lock);
	intc_route(ic, (addr >> 12) & 0xff, addr & 4, false, dm, data & 0xff, false);
	pthread_mutex_unlock(&ic->lock);
}

/* ---- Guest accesses ---- */

bool intc_pio(struct soft_intc *ic, uint16_t port, void *data, unsigned size, bool write)
{
	uint8_t *bytes = data;
	bool ours = false;
	pthread_mutex_lock(&ic->lock);
	/* Wider accesses split into byte cycles on consecutive ports, as on ISA. */
	for (unsigned i = 0; i < size && i < 4; i++) {
		uint8_t b = write ? bytes[i] : 0xff;
		uint16_t p = (uint16_t)(port + i);
		bool hit = pic_pio(&ic->pic, p, &b, write) || pit_pio(ic, p, &b, write);
		if (i == 0 && !hit)
			break;
		ours = true;
		if (!write)
			bytes[i] = b;
	}
	if (ours)
		intc_update_all(ic);
	pthread_mutex_unlock(&ic->lock);
	return ours;
}

bool intc_mmio(struct soft_intc *ic, int cpu, uint64_t gpa, void *data, unsigned size, bool write)
{
	struct lapic *a = &ic->cpu[cpu];
	uint64_t lapic_base = a->base_msr & APIC_BASE_ADDR;
	bool lapic = lapic_hw_enabled(a) && !lapic_x2apic(a) && gpa - lapic_base < 0x1000;
	bool ioapic = gpa - INTC_IOAPIC_BASE < 0x1000;
	if (!lapic && !ioapic)
		return false;
	if (size > 8)
		size = 8;
	unsigned off = gpa & 0xfff, in_reg = off & 0xf;
	pthread_mutex_lock(&ic->lock);
	if (write) {
		/* Registers take aligned 32-bit writes; anything else is dropped. */
		uint32_t v;
		if (in_reg == 0 && size >= 4) {
			memcpy(&v, data, 4);
			if (lapic)
				lapic_write(ic, cpu, off >> 4, v);
			else
				ioapic_mmio(ic, off & ~0xfu, &v, true);
		}
	} else {
		/* A read returns the containing register's bytes; past it, zeros. */
		uint32_t v = 0;
		if (lapic)
			v = lapic_read(ic, cpu, off >> 4);
		else
			ioapic_mmio(ic, off & ~0xfu, &v, false);
		uint8_t reg[16] = {0};
		memcpy(reg, &v, 4);
		memset(data, 0, size);
		memcpy(data, reg + in_reg, size < 16 - in_reg ? size : 16 - in_reg);
	}
	pthread_mutex_unlock(&ic->lock);
	return true;
}

int intc_msr(struct soft_intc *ic, int cpu, uint32_t msr, uint64_t *val, bool write)
{
	pthread_mutex_lock(&ic->lock);
	int r = lapic_msr(ic, cpu, msr, val, write);
	if (r == 0)
		r = clock_msr(ic, cpu, msr, val, write);
	pthread_mutex_unlock(&ic->lock);
	return r;
}

bool intc_apic_enabled(struct soft_intc *ic, int cpu)
{
	pthread_mutex_lock(&ic->lock);
	bool en = lapic_hw_enabled(&ic->cpu[cpu]);
	pthread_mutex_unlock(&ic->lock);
	return en;
}

uint64_t intc_cr8_read(struct soft_intc *ic, int cpu)
{
	pthread_mutex_lock(&ic->lock);
	uint64_t v = (ic->cpu[cpu].reg[LAPIC_TPR] >> 4) & 0xf;
	pthread_mutex_unlock(&ic->lock);
	return v;
}

void intc_cr8_write(struct soft_intc *ic, int cpu, uint64_t val)
{
	pthread_mutex_lock(&ic->lock);
	ic->cpu[cpu].reg[LAPIC_TPR] = (uint32_t)(val & 0xf) << 4;
	intc_update(ic, cpu);
	pthread_mutex_unlock(&ic->lock);
}

/* ---- Delivery ---- */

const atomic_uint *intc_attention(struct soft_intc *ic, int cpu)
{
	return &ic->cpu[cpu].attention;
}

int intc_pending(struct soft_intc *ic, int cpu)
{
	pthread_mutex_lock(&ic->lock);
	const struct lapic *a = &ic->cpu[cpu];
	/* The 8259 (ExtINT) wins over the APIC, as in KVM. */
	int v = lapic_accepts_pic(a) ? pic_peek(&ic->pic) : -1;
	if (v < 0)
		v = lapic_deliverable(a);
	pthread_mutex_unlock(&ic->lock);
	return v;
}

int intc_ack(struct soft_intc *ic, int cpu)
{
	pthread_mutex_lock(&ic->lock);
	struct lapic *a = &ic->cpu[cpu];
	int v;
	if (lapic_accepts_pic(a) && pic_output(&ic->pic)) {
		v = pic_ack(&ic->pic);
		intc_update_all(ic);
	} else {
		v = lapic_deliverable(a);
		if (v >= 0)
			lapic_ack(a, (uint8_t)v);
		intc_update(ic, cpu);
	}
	pthread_mutex_unlock(&ic->lock);
	return v;
}

unsigned intc_take_events(struct soft_intc *ic, int cpu, uint8_t *sipi_vector)
{
	pthread_mutex_lock(&ic->lock);
	struct lapic *a = &ic->cpu[cpu];
	unsigned ev = a->events;
	a->events = 0;
	if (sipi_vector)
		*sipi_vector = a->sipi_vector;
	if (ev & INTC_EV_INIT)
		lapic_reset(ic, cpu, false);
	intc_update(ic, cpu);
	pthread_mutex_unlock(&ic->lock);
	return ev;
}

/* ---- Time ---- */

static void fire_due(struct soft_intc *ic, int cpu, uint64_t now)
{
	lapic_fire_timer(ic, cpu, now);
	pit_fire(ic, now);
}

void intc_poll(struct soft_intc *ic, int cpu)
{
	uint64_t due = atomic_load_explicit(&ic->cpu[cpu].next_due, memory_order_relaxed);
	uint64_t pit = atomic_load_explicit(&ic->pit_due, memory_order_relaxed);
	if (due == NEVER && pit == NEVER)
		return;
	uint64_t now = intc_now();
	if (now < due && now < pit)
		return;
	pthread_mutex_lock(&ic->lock);
	fire_due(ic, cpu, now);
	pthread_mutex_unlock(&ic->lock);
}

enum intc_wake intc_wait(struct soft_intc *ic, int cpu, bool irq_enabled)
{
	struct lapic *a = &ic->cpu[cpu];
	enum intc_wake why;
	pthread_mutex_lock(&ic->lock);
	for (;;) {
		uint64_t now = intc_now();
		fire_due(ic, cpu, now);
		if (a->events || (irq_enabled && irq_ready(ic, cpu))) {
			why = INTC_WAKE_READY;
			break;
		}
		if (a->kicked) {
			a->kicked = false;
			why = INTC_WAKE_KICKED;
			break;
		}
		uint64_t due = a->timer_due < ic->pit_due ? a->timer_due : ic->pit_due;
		a->waiting = true;
		if (due == NEVER) {
			pthread_cond_wait(&a->wake, &ic->lock);
		} else {
			struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull),
					      .tv_nsec = (long)(due % 1000000000ull)};
			pthread_cond_timedwait(&a->wake, &ic->lock, &ts);
		}
		a->waiting = false;
	}
	pthread_mutex_unlock(&ic->lock);
	return why;
}

void intc_kick(struct soft_intc *ic, int cpu)
{
	pthread_mutex_lock(&ic->lock);
	ic->cpu[cpu].kicked = true;
	if (ic->cpu[cpu].waiting)
		pthread_cond_signal(&ic->cpu[cpu].wake);
	pthread_mutex_unlock(&ic->lock);
}

/* ---- VM-wide snapshot ---- */

void intc_get_vm_state(struct soft_intc *ic, struct vm_state *st)
{
	pthread_mutex_lock(&ic->lock);
	uint64_t now = intc_now();
	memset(st, 0, sizeof(*st));
	pic_save(&ic->pic, st->pic);
	ioapic_save(&ic->ioapic, &st->ioapic);
	pit_save(&ic->pit, st->pit, &st->pit_speaker, now);
	st->clock_ns = now - ic->epoch;
	pthread_mutex_unlock(&ic->lock);
}

void intc_set_vm_state(struct soft_intc *ic, const struct vm_state *st)
{
	pthread_mutex_lock(&ic->lock);
	uint64_t now = intc_now();
	ic->epoch = now - (st->clock_ns < now ? st->clock_ns : now);
	pic_load(&ic->pic, st->pic);
	ioapic_load(&ic->ioapic, &st->ioapic);
	pit_load(ic, st->pit, st->pit_speaker, now);
	intc_update_all(ic);
	pthread_mutex_unlock(&ic->lock);
}
