/* The 8259A programmable interrupt controller pair of a PC: a master on ports
 * 0x20/0x21 and a slave on 0xa0/0xa1 cascaded into master IRQ2, plus the ELCR
 * (ports 0x4d0/0x4d1) that makes individual inputs level-triggered.
 * Initialization words ICW1-4, operation words OCW1-3 (masks, EOIs, rotation,
 * IRR/ISR reads, poll, special mask), auto-EOI, spurious IRQ 7/15. */
#include "engines/soft/intc/intc_priv.h"
#include "engines/vm_state.h"

static void chip_init(struct pic_chip *c)
{
	c->line = 0;
	c->irr &= c->elcr; /* level inputs that are still asserted stay requested */
	c->isr = c->imr = 0;
	c->vector_base = c->prio_base = c->init_step = 0;
	c->want_icw4 = c->single = c->aeoi = c->rotate_aeoi = false;
	c->read_isr = c->poll = c->special_mask = false;
}

void pic_reset(struct pic *p)
{
	*p = (struct pic){0};
	p->chip[0].elcr_mask = 0xf8; /* IRQ 0, 1 and 2 are always edge */
	p->chip[1].elcr_mask = 0xde; /* IRQ 8 and 13 are always edge */
	chip_init(&p->chip[0]);
	chip_init(&p->chip[1]);
	/* As firmware leaves it: all inputs masked until the OS programs the
	 * PIC, so a guest that never touches it gets no stray vectors 0-15. */
	p->chip[0].imr = p->chip[1].imr = 0xff;
}

/* Priority rank (0 = highest) of the best request in mask, 8 if none. */
static int rank(const struct pic_chip *c, uint8_t mask)
{
	for (int i = 0; i < 8; i++)
		if (mask & (1u << ((i + c->prio_base) & 7)))
			return i;
	return 8;
}

/* The input this chip would present to the CPU now, or -1. */
static int chip_irq(const struct pic_chip *c)
{
	int req = rank(c, c->irr & ~c->imr);
	if (req == 8)
		return -1;
	uint8_t in_service = c->special_mask ? c->isr & ~c->imr : c->isr;
	if (req >= rank(c, in_service))
		return -1; /* an equal or higher priority is being serviced */
	return (req + c->prio_base) & 7;
}

static void chip_set_irq(struct pic_chip *c, unsigned n, bool level)
{
	uint8_t bit = 1u << n;
	if (c->elcr & bit) {
		c->irr = level ? c->irr | bit : c->irr & ~bit;
	} else if (level && !(c->line & bit)) {
		c->irr |= bit; /* rising edge */
	}
	c->line = level ? c->line | bit : c->line & ~bit;
}

/* The slave's output is the master's IRQ2 input. It acts as a level: a
 * request the slave withdraws (masked, reset) is withdrawn from the master. */
static void cascade(struct pic *p)
{
	struct pic_chip *m = &p->chip[0];
	if (chip_irq(&p->chip[1]) >= 0)
		m->irr |= 1u << 2;
	else
		m->irr &= ~(1u << 2);
}

void pic_set_irq(struct pic *p, unsigned irq, bool level)
{
	if (irq >= 16 || irq == 2)
		return;
	chip_set_irq(&p->chip[irq >> 3], irq & 7, level);
	cascade(p);
}

bool pic_output(const struct pic *p)
{
	return chip_irq(&p->chip[0]) >= 0;
}

int pic_peek(const struct pic *p)
{
	const struct pic_chip *m = &p->chip[0], *s = &p->chip[1];
	int irq = chip_irq(m);
	if (irq < 0)
		return -1;
	if (irq != 2)
		return m->vector_base + irq;
	int sirq = chip_irq(s);
	return s->vector_base + (sirq >= 0 ? sirq : 7);
}

static void chip_ack(struct pic_chip *c, int irq)
{
	uint8_t bit = 1u << irq;
	if (!c->aeoi)
		c->isr |= bit;
	else if (c->rotate_aeoi)
		c->prio_base = (irq + 1) & 7;
	if (!(c->elcr & bit))
		c->irr &= ~bit; /* edge requests are consumed; levels persist */
}

uint8_t pic_ack(struct pic *p)
{
	struct pic_chip *m = &p->chip[0], *s = &p->chip[1];
	int irq = chip_irq(m);
	uint8_t vector;
	if (irq < 0) {
		vector = m->vector_base + 7; /* request vanished: spurious IRQ7 */
	} else if (irq == 2) {
		int sirq = chip_irq(s);
		if (sirq >= 0) {
			chip_ack(s, sirq);
			vector = s->vector_base + (uint8_t)sirq;
		} else {
			vector = s->vector_base + 7; /* spurious IRQ15 */
		}
		chip_ack(m, 2);
	} else {
		chip_ack(m, irq);
		vector = m->vector_base + (uint8_t)irq;
	}
	cascade(p);
	return vector;
}

static void ocw2(struct pic_chip *c, uint8_t val)
{
	unsigned cmd = val >> 5;
	int irq;
	switch (cmd) {
	case 0: /* clear rotate in AEOI mode */
	case 4: /* set rotate in AEOI mode */
		c->rotate_aeoi = cmd == 4;
		break;
	case 1: /* non-specific EOI */
	case 5: /* rotate on non-specific EOI */
		if (rank(c, c->isr) == 8)
			break;
		irq = (rank(c, c->isr) + c->prio_base) & 7;
		c->isr &= ~(1u << irq);
		if (cmd == 5)
			c->prio_base = (irq + 1) & 7;
		break;
	case 3: /* specific EOI */
	case 7: /* rotate on specific EOI */
		irq = val & 7;
		c->isr &= ~(1u << irq);
		if (cmd == 7)
			c->prio_base = (irq + 1) & 7;
		break;
	case 6: /* set priority: val & 7 becomes the lowest */
		c->prio_base = (val + 1) & 7;
		break;
	default: /* 2: no operation */
		break;
	}
}

static void write_cmd(struct pic_chip *c, uint8_t val)
{
	if (val & 0x10) { /* ICW1 */
		chip_init(c);
		c->init_step = 1;
		c->want_icw4 = val & 1;
		c->single = val & 2;
	} else if (val & 0x08) { /* OCW3 */
		if (val & 0x04)
			c->poll = true;
		if (val & 0x02)
			c->read_isr = val & 1;
		if (val & 0x40)
			c->special_mask = (val >> 5) & 1;
	} else {
		ocw2(c, val);
	}
}

static void write_data(struct pic_chip *c, uint8_t val)
{
	switch (c->init_step) {
	case 0: /* OCW1 */
		c->imr = val;
		break;
	case 1: /* ICW2: vector base */
		c->vector_base = val & 0xf8;
		c->init_step = !c->single ? 2 : c->want_icw4 ? 3 : 0;
		break;
	case 2: /* ICW3: cascade wiring, fixed on a PC */
		c->init_step = c->want_icw4 ? 3 : 0;
		break;
	default: /* ICW4 */
		c->aeoi = val & 2;
		c->init_step = 0;
		break;
	}
}

/* Poll command: the highest request is acknowledged and reported as a byte. */
static uint8_t poll_read(struct pic_chip *c)
{
	c->poll = false;
	int irq = chip_irq(c);
	if (irq < 0)
		return 0;
	chip_ack(c, irq);
	return 0x80 | (uint8_t)irq;
}

bool pic_pio(struct pic *p, uint16_t port, uint8_t *val, bool write)
{
	struct pic_chip *c;
	switch (port) {
	case 0x20:
	case 0x21:
		c = &p->chip[0];
		break;
	case 0xa0:
	case 0xa1:
		c = &p->chip[1];
		break;
	case 0x4d0:
	case 0x4d1:
		c = &p->chip[port & 1];
		if (write)
			c->elcr = *val & c->elcr_mask;
		else
			*val = c->elcr;
		return true;
	default:
		return false;
	}
	if (write) {
		if (port & 1)
			write_data(c, *val);
		else
			write_cmd(c, *val);
	} else if (port & 1) {
		*val = c->imr;
	} else {
		*val = c->poll ? poll_read(c) : c->read_isr ? c->isr : c->irr;
	}
	cascade(p);
	return true;
}

/* ---- Snapshots, in the neutral (KVM-compatible) layout of vm_state.h ---- */

void pic_save(const struct pic *p, struct pic_state st[2])
{
	for (int i = 0; i < 2; i++) {
		const struct pic_chip *c = &p->chip[i];
		st[i] = (struct pic_state){
		    .irr = c->irr,
		    .imr = c->imr,
		    .isr = c->isr,
		    .last_irr = c->line,
		    .priority_add = c->prio_base,
		    .irq_base = c->vector_base,
		    .read_reg_select = c->read_isr,
		    .poll = c->poll,
		    .special_mask = c->special_mask,
		    .init_state = c->init_step,
		    .auto_eoi = c->aeoi,
		    .rotate_on_auto_eoi = c->rotate_aeoi,
		    .init4 = c->want_icw4,
		    .elcr = c->elcr,
		    .elcr_mask = c->elcr_mask,
		};
	}
}

void pic_load(struct pic *p, const struct pic_state st[2])
{
	pic_reset(p);
	for (int i = 0; i < 2; i++) {
		struct pic_chip *c = &p->chip[i];
		const struct pic_state *s = &st[i];
		c->irr = s->irr;
		c->imr = s->imr;
		c->isr = s->isr;
		c->line = s->last_irr;
		c->prio_base = s->priority_add & 7;
		c->vector_base = s->irq_base & 0xf8;
		c->read_isr = s->read_reg_select;
		c->poll = s->poll;
		c->special_mask = s->special_mask;
		c->init_step = s->init_state <= 3 ? s->init_state : 0;
		c->aeoi = s->auto_eoi;
		c->rotate_aeoi = s->rotate_on_auto_eoi;
		c->want_icw4 = s->init4;
		c->elcr = s->elcr & c->elcr_mask; /* the mask is wiring, not state */
	}
	cascade(p);
}
