/* 16550A UART (COM1 style): 8 registers on the port bus, one IRQ line. */
#ifndef POPEK_UART16550_H
#define POPEK_UART16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/services.h"

struct uart;
typedef void (*uart_tx_fn)(void *ctx, const void *buf, size_t len);

struct uart *uart_create(struct bus *pio, uint16_t base, struct irq_line irq, uart_tx_fn tx,
			 void *tx_ctx);
/* Host → guest bytes; returns how many fit in the receive buffer (the
 * console keeps the rest and retries). */
size_t uart_input(void *uart, const uint8_t *buf, size_t len);
void uart_destroy(void *uart);
/* COM1, the machine's console by default. */
extern const struct device_type uart_device;

/* Snapshot hooks (the machine's device registry). */
int uart_save(void *uart, void **buf, size_t *len);
int uart_load(void *uart, const void *buf, size_t len);

#endif
