/* How a device raises an interrupt without knowing the machine or the engine:
 * the machine hands each device the lines it may drive. */
#ifndef POPEK_IRQ_H
#define POPEK_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct irq_line {
	void (*set)(void *ctx, unsigned gsi, bool level);
	void *ctx;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *l, bool level)
{
	if (l->set)
		l->set(l->ctx, l->gsi, level);
}

/* Edge-triggered ISA devices: a pulse is a rising edge followed by a fall. */
static inline void irq_line_pulse(const struct irq_line *l)
{
	irq_line_set(l, true);
	irq_line_set(l, false);
}

struct msi_sink {
	void (*send)(void *ctx, uint64_t addr, uint32_t data);
	void *ctx;
};

#endif
