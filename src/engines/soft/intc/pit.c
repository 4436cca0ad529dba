/* The 8254 programmable interval timer: three 16-bit counters at 1.193182 MHz.
 * Channel 0 drives IRQ0 (8259 input 0, IOAPIC pins 0 and 2); channel 2's gate and
 * output are wired to system control port B (0x61), which Linux uses to
 * calibrate the TSC. Counters are computed from CLOCK_MONOTONIC on demand, so
 * only channel 0's interrupts need a deadline.
 * Modes 0 (interrupt on terminal count), 2 (rate generator), 3 (square wave)
 * and 4 (software strobe) are modelled; the gate-triggered modes 1 and 5 count
 * like 0 and 4, and BCD counting is treated as binary. */
#include "engines/soft/intc/intc_priv.h"
#include "engines/vm_state.h"

#define PIT_HZ	       1193182ull
#define REFRESH_NS     15085 /* port 0x61 bit 4 toggles every 15.085 us */
#define PORT61_GATE2   0x01
#define PORT61_OUT2    0x20
#define PORT61_REFRESH 0x10

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * PIT_HZ / 1000000000u);
}

/* The first instant at which `ticks` ticks have elapsed. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * 1000000000u + PIT_HZ - 1) / PIT_HZ);
}

static bool periodic(const struct pit_channel *ch)
{
	return ch->mode == 2 || ch->mode == 3;
}

static uint64_t elapsed(const struct pit_channel *ch, uint64_t now)
{
	if (!ch->armed)
		return 0;
	uint64_t t = ch->paused_ticks;
	if (ch->gate && now > ch->start)
		t += ns_to_ticks(now - ch->start);
	return t;
}

static uint16_t count(const struct pit_channel *ch, uint64_t now)
{
	if (!ch->armed)
		return 0;
	uint64_t e = elapsed(ch, now), n = ch->reload;
	if (ch->mode == 2)
		return (uint16_t)(n - e % n);
	if (ch->mode == 3)
		return (uint16_t)(n - (2 * (e % n)) % n) & 0xfffe; /* counts by two, twice */
	return (uint16_t)(n - e); /* one-shot modes wrap around after terminal count */
}

static bool out(const struct pit_channel *ch, uint64_t now)
{
	if (!ch->armed)
		return ch->mode != 0; /* mode 0 drives OUT low from the control word on */
	if (!ch->gate && periodic(ch))
		return true;
	uint64_t e = elapsed(ch, now), n = ch->reload;
	switch (ch->mode) {
	case 2:
		return n < 2 || e % n != n - 1; /* low for the tick before reload */
	case 3:
		return e % n < (n + 1) / 2;
	case 4:
	case 5:
		return e != n; /* a one-tick low strobe at terminal count */
	default:
		return e >= n;
	}
}

/* Next rising edge of OUT0 after now, in ns, or NEVER. */
static uint64_t next_edge(const struct pit_channel *ch, uint64_t now)
{
	if (!ch->armed)
		return NEVER;
	uint64_t e = elapsed(ch, now), n = ch->reload;
	if (periodic(ch))
		return ch->start + ticks_to_ns((e / n + 1) * n);
	return e < n ? ch->start + ticks_to_ns(n) : NEVER;
}

static void schedule(struct soft_intc *ic, uint64_t now)
{
	intc_set_pit_due(ic, next_edge(&ic->pit.ch[0], now));
}

void pit_fire(struct soft_intc *ic, uint64_t now)
{
	if (atomic_load(&ic->pit_due) > now)
		return;
	/* IRQ0 is an edge: a pulse on the 8259 input and on IOAPIC pins 0 and 2,
	 * so the timer works whether the firmware tables route ISA IRQ0 to GSI 0
	 * (KVM's default routing) or override it to GSI 2 (PC chipsets). The OS
	 * leaves the pin it does not use masked. */
	pic_set_irq(&ic->pic, 0, true);
	pic_set_irq(&ic->pic, 0, false);
	for (unsigned pin = 0; pin <= 2; pin += 2) {
		ioapic_set_pin(ic, pin, true);
		ioapic_set_pin(ic, pin, false);
	}
	intc_update_all(ic);
	schedule(ic, now);
}

void pit_reset(struct pit *p, uint64_t now)
{
	*p = (struct pit){0};
	for (int i = 0; i < 3; i++) {
		p->ch[i].reload = 65536;
		p->ch[i].gate = i != 2; /* channel 2's gate is port 0x61 bit 0 */
		p->ch[i].start = now;
	}
}

static void set_gate(struct pit_channel *ch, bool gate, uint64_t now)
{
	if (gate == ch->gate)
		return;
	if (gate) {
		/* A rising gate restarts the count in modes 1, 2, 3 and 5 and
		 * resumes it in modes 0 and 4. */
		if (ch->mode != 0 && ch->mode != 4)
			ch->paused_ticks = 0;
		ch->start = now;
	} else {
		ch->paused_ticks = elapsed(ch, now);
	}
	ch->gate = gate;
}

static void latch_count(struct pit_channel *ch, uint64_t now)
{
	if (ch->latch_bytes)
		return; /* a second latch before the first is read is ignored */
	ch->latch = count(ch, now);
	ch->latch_bytes = ch->rw == 3 ? 2 : 1;
}

static void latch_status(struct pit_channel *ch, uint64_t now)
{
	if (ch->status_latched)
		return;
	ch->status =
	    (uint8_t)(out(ch, now) << 7 | ch->null_count << 6 | ch->rw << 4 | ch->mode << 1);
	ch->status_latched = true;
}

static void control(struct soft_intc *ic, uint8_t val, uint64_t now)
{
	unsigned sel = val >> 6;
	if (sel == 3) { /* read-back: bits 1-3 select channels */
		for (int i = 0; i < 3; i++) {
			if (!(val & (2u << i)))
				continue;
			if (!(val & 0x20))
				latch_count(&ic->pit.ch[i], now);
			if (!(val & 0x10))
				latch_status(&ic->pit.ch[i], now);
		}
		return;
	}
	struct pit_channel *ch = &ic->pit.ch[sel];
	unsigned rw = (val >> 4) & 3;
	if (rw == 0) {
		latch_count(ch, now);
		return;
	}
	ch->rw = (uint8_t)rw;
	ch->mode = (val >> 1) & 7;
	if (ch->mode > 5)
		ch->mode -= 4; /* 6 and 7 are aliases of 2 and 3 */
	ch->armed = false;
	ch->null_count = true;
	ch->read_hi = ch->write_hi = false;
	ch->latch_bytes = 0;
	ch->status_latched = false;
	if (sel == 0)
		schedule(ic, now);
}

static void load(struct soft_intc *ic, struct pit_channel *ch, uint32_t value, uint64_t now)
{
	ch->reload = value ? value : 65536;
	ch->armed = true;
	ch->null_count = false;
	ch->start = now;
	ch->paused_ticks = 0;
	if (ch == &ic->pit.ch[0])
		schedule(ic, now);
}

static void write_data(struct soft_intc *ic, struct pit_channel *ch, uint8_t val, uint64_t now)
{
	switch (ch->rw) {
	case 1:
		load(ic, ch, val, now);
		break;
	case 2:
		load(ic, ch, (uint32_t)val << 8, now);
		break;
	default:
		if (!ch->write_hi) {
			ch->write_lo = val;
			ch->write_hi = true;
		} else {
			ch->write_hi = false;
			load(ic, ch, ch->write_lo | (uint32_t)val << 8, now);
		}
		break;
	}
}

static uint8_t read_data(struct pit_channel *ch, uint64_t now)
{
	if (ch->status_latched) {
		ch->status_latched = false;
		return ch->status;
	}
	uint16_t v;
	bool hi;
	if (ch->latch_bytes) {
		v = ch->latch;
		hi = ch->rw == 2 || (ch->rw == 3 && ch->latch_bytes == 1);
		ch->latch_bytes--;
		if (ch->rw != 3)
			ch->latch_bytes = 0;
	} else {
		v = count(ch, now);
		hi = ch->rw == 2 || (ch->rw == 3 && ch->read_hi);
		if (ch->rw == 3)
			ch->read_hi = !ch->read_hi;
	}
	return hi ? (uint8_t)(v >> 8) : (uint8_t)v;
}

bool pit_pio(struct soft_intc *ic, uint16_t port, uint8_t *val, bool write)
{
	uint64_t now = intc_now();
	struct pit *p = &ic->pit;
	if (port == 0x61) {
		if (write) {
			p->port61 = *val & 0x0f;
			set_gate(&p->ch[2], *val & PORT61_GATE2, now);
		} else {
			*val = p->port61 | (out(&p->ch[2], now) ? PORT61_OUT2 : 0) |
			       ((now / REFRESH_NS) & 1 ? PORT61_REFRESH : 0);
		}
		return true;
	}
	if (port < 0x40 || port > 0x43)
		return false;
	if (port == 0x43) {
		if (write)
			control(ic, *val, now);
		else
			*val = 0xff; /* the control word register is write-only */
		return true;
	}
	struct pit_channel *ch = &p->ch[port - 0x40];
	if (write)
		write_data(ic, ch, *val, now);
	else
		*val = read_data(ch, now);
	return true;
}

/* ---- Snapshots, in the neutral (KVM-compatible) layout of vm_state.h ----
 * KVM encodes byte-access progress as RW_STATE_LSB 1, MSB 2, WORD0 3 (low
 * byte next), WORD1 4 (high byte next). */
enum { RW_LSB = 1, RW_MSB, RW_WORD0, RW_WORD1 };

static uint8_t rw_state(unsigned rw, bool hi_next)
{
	return rw == 3 ? (hi_next ? RW_WORD1 : RW_WORD0) : (uint8_t)rw;
}

void pit_save(const struct pit *p, struct pit_channel_state st[3], bool *speaker, uint64_t now)
{
	for (int i = 0; i < 3; i++) {
		const struct pit_channel *ch = &p->ch[i];
		uint8_t latched = 0;
		if (ch->latch_bytes)
			latched = ch->rw == 3 && ch->latch_bytes == 2 ? RW_WORD0
				  : ch->rw == 1			      ? RW_LSB
								      : RW_MSB;
		st[i] = (struct pit_channel_state){
		    .count = ch->reload == 65536 ? 0 : ch->reload,
		    .latched_count = ch->latch,
		    .count_latched = latched,
		    .status_latched = ch->status_latched,
		    .status = ch->status,
		    .read_state = rw_state(ch->rw, ch->read_hi),
		    .write_state = rw_state(ch->rw, ch->write_hi),
		    .write_latch = ch->write_lo,
		    .rw_mode = ch->rw,
		    .mode = ch->mode,
		    .gate = ch->gate,
		    .elapsed_ns = ticks_to_ns(elapsed(ch, now)),
		};
	}
	*speaker = p->port61 & 0x02;
}

void pit_load(struct soft_intc *ic, const struct pit_channel_state st[3], bool speaker,
	      uint64_t now)
{
	struct pit *p = &ic->pit;
	for (int i = 0; i < 3; i++) {
		struct pit_channel *ch = &p->ch[i];
		const struct pit_channel_state *s = &st[i];
		uint32_t n = s->count & 0x1ffff;
		*ch = (struct pit_channel){
		    .mode = s->mode <= 5 ? s->mode : 0,
		    .rw = s->rw_mode >= 1 && s->rw_mode <= 3 ? s->rw_mode : 3,
		    .reload = n == 0 || n > 65536 ? 65536 : n,
		    .armed = true,
		    .gate = i == 2 ? s->gate : true,
		    .latch = s->latched_count,
		    .status_latched = s->status_latched,
		    .status = s->status,
		    .write_lo = s->write_latch,
		};
		ch->latch_bytes = s->count_latched == RW_WORD0 ? 2 : s->count_latched ? 1 : 0;
		ch->read_hi = s->read_state == RW_WORD1;
		ch->write_hi = s->write_state == RW_WORD1;
		/* Resume the count where it was; a paused channel keeps its ticks. */
		uint64_t ns = s->elapsed_ns < now ? s->elapsed_ns : now;
		if (ch->gate) {
			ch->start = now - ns;
		} else {
			ch->start = now;
			ch->paused_ticks = ns_to_ticks(ns);
		}
	}
	p->port61 = (uint8_t)((speaker ? 0x02 : 0) | (p->ch[2].gate ? PORT61_GATE2 : 0));
	schedule(ic, now);
}
