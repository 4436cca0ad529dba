/* The I/O APIC (82093AA): 24 input pins, each with a redirection entry that
 * turns a level or edge into an interrupt message for the local APICs.
 * Level-triggered pins hold "remote IRR" until the LAPIC broadcasts the EOI. */
#include "engines/soft/intc/intc_priv.h"
#include "engines/vm_state.h"

#define IOAPIC_VERSION ((uint32_t)(INTC_IOAPIC_PINS - 1) << 16 | 0x11)

#define RTE_DELIVERY_STATUS (1ull << 12)
#define RTE_REMOTE_IRR	    (1ull << 14)
#define RTE_LEVEL	    (1ull << 15)
#define RTE_MASKED	    (1ull << 16)
#define RTE_READONLY	    (RTE_DELIVERY_STATUS | RTE_REMOTE_IRR)

void ioapic_reset(struct ioapic *io)
{
	*io = (struct ioapic){0};
	for (unsigned i = 0; i < INTC_IOAPIC_PINS; i++)
		io->redir[i] = RTE_MASKED;
}

/* Send the pin's message if it is pending and allowed to go. */
static void service(struct soft_intc *ic, unsigned pin)
{
	struct ioapic *io = &ic->ioapic;
	uint64_t e = io->redir[pin];
	uint32_t bit = 1u << pin;
	if ((e & RTE_MASKED) || !(io->irr & bit))
		return;
	unsigned dm = (e >> 8) & 7;
	bool level = e & RTE_LEVEL;
	bool fixed = dm == DM_FIXED || dm == DM_LOWEST;
	if (level && fixed) {
		if (e & RTE_REMOTE_IRR)
			return; /* the previous one is not EOI'd yet */
		io->redir[pin] |= RTE_REMOTE_IRR;
	} else {
		io->irr &= ~bit;
	}
	intc_route(ic, (uint32_t)(e >> 56), e & (1ull << 11), false, dm, e & 0xff, level && fixed);
}

void ioapic_set_pin(struct soft_intc *ic, unsigned pin, bool level)
{
	struct ioapic *io = &ic->ioapic;
	uint32_t bit = 1u << pin;
	bool was = io->line & bit;
	io->line = level ? io->line | bit : io->line & ~bit;
	if (io->redir[pin] & RTE_LEVEL) {
		io->irr = level ? io->irr | bit : io->irr & ~bit;
	} else if (level && !was) {
		io->irr |= bit; /* rising edge: latched until delivered */
	}
	service(ic, pin);
}

void ioapic_eoi(struct soft_intc *ic, uint8_t vector)
{
	struct ioapic *io = &ic->ioapic;
	for (unsigned pin = 0; pin < INTC_IOAPIC_PINS; pin++) {
		uint64_t e = io->redir[pin];
		if ((e & 0xff) != vector || !(e & RTE_REMOTE_IRR))
			continue;
		io->redir[pin] &= ~RTE_REMOTE_IRR;
		service(ic, pin); /* still asserted: deliver again */
	}
}

static uint32_t read_reg(struct ioapic *io)
{
	uint32_t r = io->ioregsel;
	if (r == 0)
		return io->id << 24;
	if (r == 1)
		return IOAPIC_VERSION;
	if (r == 2)
		return io->id << 24; /* arbitration ID */
	if (r >= 0x10 && r < 0x10 + 2 * INTC_IOAPIC_PINS) {
		uint64_t e = io->redir[(r - 0x10) / 2];
		return (r & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	return 0;
}

static void write_reg(struct soft_intc *ic, uint32_t val)
{
	struct ioapic *io = &ic->ioapic;
	uint32_t r = io->ioregsel;
	if (r == 0) {
		io->id = (val >> 24) & 0xf;
		return;
	}
	if (r < 0x10 || r >= 0x10 + 2 * INTC_IOAPIC_PINS)
		return; /* version, arbitration and reserved registers are read-only */
	unsigned pin = (r - 0x10) / 2;
	uint64_t e = io->redir[pin];
	if (r & 1) {
		e = (e & 0xffffffffull) | (uint64_t)(val & 0xff000000) << 32;
	} else {
		e = (e & (0xffffffff00000000ull | RTE_READONLY)) | (val & ~(uint32_t)RTE_READONLY);
		if (!(e & RTE_LEVEL))
			e &= ~RTE_REMOTE_IRR;
		/* A pin switched to level mode follows its current input level. */
		if (e & RTE_LEVEL)
			io->irr = (io->line & (1u << pin)) ? io->irr | (1u << pin)
							   : io->irr & ~(1u << pin);
	}
	io->redir[pin] = e;
	service(ic, pin); /* unmasking delivers what is pending */
}

void ioapic_mmio(struct soft_intc *ic, uint64_t offset, uint32_t *val, bool write)
{
	struct ioapic *io = &ic->ioapic;
	switch (offset) {
	case 0x00:
		if (write)
			io->ioregsel = *val & 0xff;
		else
			*val = io->ioregsel;
		break;
	case 0x10:
		if (write)
			write_reg(ic, *val);
		else
			*val = read_reg(io);
		break;
	default:
		if (!write)
			*val = 0;
	}
}

void ioapic_save(const struct ioapic *io, struct ioapic_state *st)
{
	_Static_assert(IOAPIC_PINS == INTC_IOAPIC_PINS, "snapshot pin count");
	st->id = io->id;
	st->ioregsel = io->ioregsel;
	st->irr = io->irr;
	for (unsigned i = 0; i < INTC_IOAPIC_PINS; i++)
		st->redir[i] = io->redir[i];
}

void ioapic_load(struct ioapic *io, const struct ioapic_state *st)
{
	io->id = st->id & 0xf;
	io->ioregsel = st->ioregsel & 0xff;
	io->irr = st->irr & ((1u << INTC_IOAPIC_PINS) - 1);
	/* Input levels are not part of the state: asserted level pins show in irr. */
	io->line = 0;
	for (unsigned i = 0; i < INTC_IOAPIC_PINS; i++) {
		io->redir[i] = st->redir[i] & ~RTE_DELIVERY_STATUS;
		if (io->redir[i] & RTE_LEVEL)
			io->line |= io->irr & (1u << i);
	}
}
