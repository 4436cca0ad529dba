/* 16550A UART. Transmission is instantaneous (bytes go straight to the host),
 * so THR is always empty; the receive side holds host input until the guest
 * reads it. The IRQ output follows the interrupt-pending state gated by
 * MCR.OUT2, as on a PC. */
#include "devices/uart16550.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR };

#define IER_RDA	 0x01
#define IER_THRE 0x02
#define IER_RLS	 0x04
#define IER_MS	 0x08
#define IIR_NONE 0x01
#define IIR_MS	 0x00
#define IIR_THRE 0x02
#define IIR_RDA	 0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR	 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define FCR_FIFO 0x01
#define FCR_CLRR 0x02

#define RX_SIZE 1024 /* host-side buffer: more than the 16-byte FIFO, so pastes are not lost */

struct uart {
	pthread_mutex_t lock;
	struct irq_line irq;
	uart_tx_fn tx;
	void *tx_ctx;
	uint8_t ier, lcr, mcr, msr_delta, scr, fcr, dll, dlm;
	bool thre_pending; /* THR-empty interrupt armed, cleared by reading IIR or writing THR */
	bool irq_level;
	uint8_t rx[RX_SIZE];
	unsigned rx_head, rx_count;
};

static uint8_t pending_iir(const struct uart *u)
{
	if ((u->ier & IER_RDA) && u->rx_count)
		return IIR_RDA;
	if ((u->ier & IER_THRE) && u->thre_pending)
		return IIR_THRE;
	if ((u->ier & IER_MS) && u->msr_delta)
		return IIR_MS;
	return IIR_NONE;
}

/* Call with the lock held whenever interrupt-relevant state changed. */
static void update_irq(struct uart *u)
{
	bool level = pending_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2);
	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

static void rx_push(struct uart *u, uint8_t b)
{
	if (u->rx_count < RX_SIZE) {
		u->rx[(u->rx_head + u->rx_count) % RX_SIZE] = b;
		u->rx_count++;
	}
}

static uint8_t modem_status(const struct uart *u)
{
	if (u->mcr &
	    MCR_LOOP) /* loopback: outputs feed the inputs (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2) */
		return (uint8_t)(((u->mcr & 0x02) << 3) | ((u->mcr & 0x01) << 5) |
				 ((u->mcr & 0x04) << 4) | ((u->mcr & 0x08) << 4));
	return 0xb0; /* DCD, DSR, CTS: a connected terminal */
}

static uint8_t uart_reg_read(struct uart *u, unsigned reg)
{
	uint8_t v = 0;
	switch (reg) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % RX_SIZE;
			u->rx_count--;
		}
		return v;
	case IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case IIR_FCR:
		v = pending_iir(u);
		if (v == IIR_THRE)
			u->thre_pending = false;
		return v | ((u->fcr & FCR_FIFO) ? IIR_FIFO : 0);
	case LCR:
		return u->lcr;
	case MCR:
		return u->mcr;
	case LSR:
		return LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
	case MSR:
		v = modem_status(u) | u->msr_delta;
		u->msr_delta = 0;
		return v;
	default:
		return u->scr;
	}
}

static void uart_reg_write(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
		} else if (u->mcr & MCR_LOOP) {
			rx_push(u, v);
			u->thre_pending = true;
		} else {
			u->tx(u->tx_ctx, &v, 1);
			u->thre_pending = true;
		}
		break;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
		} else {
			/* Enabling the THRE interrupt while THR is empty raises it at once. */
			if ((v & IER_THRE) && !(u->ier & IER_THRE))
				u->thre_pending = true;
			u->ier = v & 0x0f;
		}
		break;
	case IIR_FCR:
		u->fcr = v & 0xc9;
		if (v & FCR_CLRR)
			u->rx_count = 0;
		break;
	case LCR:
		u->lcr = v;
		break;
	case MCR:
		u->mcr = v & 0x1f;
		break;
	case SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static void uart_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct uart *u = dev;
	pthread_mutex_lock(&u->lock);
	*(uint8_t *)data = uart_reg_read(u, (unsigned)off);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	for (unsigned i = 1; i < size; i++) /* wider accesses: upper bytes float high */
		((uint8_t *)data)[i] = 0xff;
}

static void uart_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct uart *u = dev;
	pthread_mutex_lock(&u->lock);
	uart_reg_write(u, (unsigned)off, *(const uint8_t *)data);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct bus_ops uart_ops = {.read = uart_read, .write = uart_write};

size_t uart_input(void *dev, const uint8_t *buf, size_t len)
{
	struct uart *u = dev;
	size_t n = 0;
	pthread_mutex_lock(&u->lock);
	while (n < len && u->rx_count < RX_SIZE)
		rx_push(u, buf[n++]);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

struct uart *uart_create(struct bus *pio, uint16_t base, struct irq_line irq, uart_tx_fn tx,
			 void *tx_ctx)
{
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	pthread_mutex_init(&u->lock, NULL);
	u->irq = irq;
	u->tx = tx;
	u->tx_ctx = tx_ctx;
	u->dll = 12; /* 9600 baud, as firmware leaves it */
	if (bus_register(pio, base, 8, &uart_ops, u, "uart")) {
		uart_destroy(u);
		return NULL;
	}
	return u;
}

void uart_destroy(void *uart)
{
	struct uart *u = uart;
	if (!u)
		return;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* The saved form: registers plus pending input, receive buffer unrolled. */
struct uart_saved {
	uint32_t version;
	uint8_t ier, lcr, mcr, msr_delta, scr, fcr, dll, dlm;
	uint8_t thre_pending, pad[3];
	uint32_t rx_count;
	uint8_t rx[RX_SIZE];
};

#define UART_STATE_VERSION 1

int uart_save(void *dev, void **buf, size_t *len)
{
	struct uart *u = dev;
	struct uart_saved *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	pthread_mutex_lock(&u->lock);
	*s = (struct uart_saved){.version = UART_STATE_VERSION,
				 .ier = u->ier,
				 .lcr = u->lcr,
				 .mcr = u->mcr,
				 .msr_delta = u->msr_delta,
				 .scr = u->scr,
				 .fcr = u->fcr,
				 .dll = u->dll,
				 .dlm = u->dlm,
				 .thre_pending = u->thre_pending,
				 .rx_count = u->rx_count};
	for (unsigned i = 0; i < u->rx_count; i++)
		s->rx[i] = u->rx[(u->rx_head + i) % RX_SIZE];
	pthread_mutex_unlock(&u->lock);
	*buf = s;
	*len = sizeof(*s);
	return 0;
}

int uart_load(void *dev, const void *buf, size_t len)
{
	struct uart *u = dev;
	struct uart_saved s;
	if (len != sizeof(s))
		return -1;
	memcpy(&s, buf, sizeof(s));
	if (s.version != UART_STATE_VERSION || s.rx_count > RX_SIZE)
		return -1;
	pthread_mutex_lock(&u->lock);
	u->ier = s.ier & 0x0f;
	u->lcr = s.lcr;
	u->mcr = s.mcr & 0x1f;
	u->msr_delta = s.msr_delta & 0x0f;
	u->scr = s.scr;
	u->fcr = s.fcr & 0xc9;
	u->dll = s.dll;
	u->dlm = s.dlm;
	u->thre_pending = s.thre_pending != 0;
	u->rx_head = 0;
	u->rx_count = s.rx_count;
	memcpy(u->rx, s.rx, sizeof(u->rx));
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

#define COM1_PORT 0x3f8
#define COM1_GSI  4

static int com1_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		       char *err, size_t errlen)
{
	*dev = uart_create(s->pio, COM1_PORT, dev_irq_line(s, COM1_GSI), s->console_tx,
			   s->console_ctx);
	return *dev ? 0 : -1;
}

const struct device_type uart_device = {.name = "uart0",
					.create = com1_create,
					.save = uart_save,
					.load = uart_load,
					.destroy = uart_destroy,
					.input = uart_input};
