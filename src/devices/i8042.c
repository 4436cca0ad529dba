#include "devices/i8042.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"

/* Status register bits. */
#define STS_OBF	     0x01 /* output buffer full */
#define STS_SYS	     0x04 /* self test passed */
#define STS_CMD	     0x08 /* last write went to the command port */
/* Controller configuration byte ("CTR") bits. */
#define CTR_KBDINT   0x01
#define CTR_SYS	     0x04
#define CTR_KBDDIS   0x10
#define CTR_AUXDIS   0x20
#define CTR_XLATE    0x40
/* Output port: bit 0 drives the CPU reset line (low = reset). */
#define OUTPORT_NRESET 0x01
#define OUTPORT_A20    0x02

#define QUEUE_LEN 16

struct i8042 {
	struct machine *m;
	struct irq_line kbd_irq;
	pthread_mutex_t lock;
	uint8_t ctr, outport, status_cmd;
	uint8_t pending;     /* controller command waiting for its data byte, 0 if none */
	bool kbd_arg;	     /* keyboard command waiting for its argument byte */
	uint8_t queue[QUEUE_LEN];
	unsigned head, count;
	uint8_t last;	     /* what a read of an empty output buffer returns */
};

/* Queue a byte for the guest; the keyboard IRQ fires when a byte becomes
 * the head of the output buffer, as on the real controller. */
static void push(struct i8042 *k, uint8_t b)
{
	if (k->count == QUEUE_LEN)
		return;
	k->queue[(k->head + k->count++) % QUEUE_LEN] = b;
	if (k->count == 1 && (k->ctr & CTR_KBDINT))
		irq_line_pulse(&k->kbd_irq);
}

static void reset_machine(struct i8042 *k)
{
	machine_stop(k->m, STOP_RESET, 0, "guest reset the machine (keyboard controller)");
}

/* A byte written to the data port with no controller command pending goes
 * to the keyboard, which acknowledges everything. */
static void keyboard_byte(struct i8042 *k, uint8_t b)
{
	if (k->kbd_arg) { /* the argument of LEDs / scan code set / typematic */
		k->kbd_arg = false;
		push(k, 0xfa);
		return;
	}
	switch (b) {
	case 0xff: /* reset: ACK, self test passed */
		push(k, 0xfa);
		push(k, 0xaa);
		break;
	case 0xf2: /* identify: ACK, MF2 keyboard */
		push(k, 0xfa);
		push(k, 0xab);
		push(k, 0x83);
		break;
	case 0xee: /* echo */
		push(k, 0xee);
		break;
	case 0xed:
	case 0xf0:
	case 0xf3:
		k->kbd_arg = true;
		push(k, 0xfa);
		break;
	default:
		push(k, 0xfa);
		break;
	}
}

static void data_write(struct i8042 *k, uint8_t b)
{
	uint8_t cmd = k->pending;
	k->pending = 0;
	switch (cmd) {
	case 0:
		keyboard_byte(k, b);
		break;
	case 0x60:
		k->ctr = b;
		break;
	case 0xd1:
		k->outport = b;
		if (!(b & OUTPORT_NRESET))
			reset_machine(k);
		break;
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* "AUX loopback": answered as keyboard data, so Linux sees no AUX port */
		push(k, b);
		break;
	default: /* 0x61..0x7f controller RAM, 0xd4 to the (absent) mouse */
		break;
	}
}

static void command_write(struct i8042 *k, uint8_t c)
{
	k->pending = 0;
	if (c >= 0x20 && c < 0x40) { /* read controller RAM; byte 0 is the CTR */
		push(k, c == 0x20 ? k->ctr : 0);
		return;
	}
	if ((c >= 0x60 && c < 0x80) || c == 0xd1 || c == 0xd2 || c == 0xd3 || c == 0xd4) {
		k->pending = c;
		return;
	}
	if (c >= 0xf0) { /* pulse output lines low for the bits that are 0 */
		if (!(c & OUTPORT_NRESET))
			reset_machine(k);
		return;
	}
	switch (c) {
	case 0xa7:
		k->ctr |= CTR_AUXDIS;
		break;
	case 0xa8:
		k->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case 0xa9: /* AUX interface test: "clock line stuck low", i.e. no AUX */
		push(k, 0x01);
		break;
	case 0xaa: /* controller self test */
		push(k, 0x55);
		break;
	case 0xab: /* keyboard interface test */
		push(k, 0x00);
		break;
	case 0xad:
		k->ctr |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case 0xc0: /* input port */
		push(k, 0x00);
		break;
	case 0xd0:
		push(k, k->outport);
		break;
	default:
		break;
	}
}

static uint8_t data_read(struct i8042 *k)
{
	if (!k->count)
		return k->last;
	k->last = k->queue[k->head];
	k->head = (k->head + 1) % QUEUE_LEN;
	if (--k->count && (k->ctr & CTR_KBDINT))
		irq_line_pulse(&k->kbd_irq);
	return k->last;
}

static void i8042_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct i8042 *k = dev;
	uint8_t v;
	pthread_mutex_lock(&k->lock);
	if (off == 0)
		v = data_read(k);
	else
		v = (uint8_t)((k->count ? STS_OBF : 0) | (k->ctr & CTR_SYS ? STS_SYS : 0) |
			      k->status_cmd);
	pthread_mutex_unlock(&k->lock);
	memset(data, v, 1);
	if (size > 1)
		memset((uint8_t *)data + 1, 0xff, size - 1);
}

static void i8042_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct i8042 *k = dev;
	uint8_t b = *(const uint8_t *)data;
	pthread_mutex_lock(&k->lock);
	if (off == 0) {
		k->status_cmd = 0;
		data_write(k, b);
	} else {
		k->status_cmd = STS_CMD;
		command_write(k, b);
	}
	pthread_mutex_unlock(&k->lock);
}

static const struct bus_ops i8042_ops = {.read = i8042_read, .write = i8042_write};

struct i8042 *i8042_create(struct machine *m)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->m = m;
	k->kbd_irq = machine_irq_line(m, I8042_KBD_GSI);
	k->ctr = CTR_KBDINT | CTR_SYS | CTR_AUXDIS | CTR_XLATE;
	k->outport = OUTPORT_NRESET | OUTPORT_A20;
	pthread_mutex_init(&k->lock, NULL);
	/* Two one-byte ports 4 apart; 0x61 between them belongs to the PIT/speaker. */
	if (bus_register(&m->pio, I8042_DATA_PORT, 1, &i8042_ops, k, "i8042") ||
	    bus_register(&m->pio, I8042_COMMAND_PORT, 1, &i8042_ops, k, "i8042")) {
		i8042_destroy(k);
		return NULL;
	}
	return k;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	bus_unregister(&k->m->pio, I8042_DATA_PORT, k);
	bus_unregister(&k->m->pio, I8042_COMMAND_PORT, k);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
