/* 16550A UART (COM1 style): 8 registers on the port bus, one IRQ line. */
#ifndef POPEK_UART16550_H
#define POPEK_UART16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/bus.h"
#include "machine/irq.h"

struct uart;
typedef void (*uart_tx_fn)(void *ctx, const void *buf, size_t len);

struct uart *uart_create(struct bus *pio, uint16_t base, struct irq_line irq, uart_tx_fn tx,
			 void *tx_ctx);
/* Host → guest bytes; returns how many fit in the receive buffer (none while
 * paused: the console keeps them and retries). */
size_t uart_input(void *uart, const uint8_t *buf, size_t len);
void uart_destroy(struct uart *u);

/* Snapshot hooks (struct machine_device). */
int uart_save(void *uart, void **buf, size_t *len);
int uart_load(void *uart, const void *buf, size_t len);
/* Pause hook (struct machine_device): no input and so no interrupt while the
 * VM is paused, so a snapshot sees the UART and the interrupt controllers as
 * they were when the vCPUs stopped. */
void uart_pause(void *uart, bool paused);

#endif
