#include "devices/i8042.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "devices/services.h"

/* Status register bits. */
#define STS_OBF 0x01 /* output buffer full */
#define STS_SYS 0x04 /* self test passed */
#define STS_CMD 0x08 /* last write went to the command port */
/* Controller configuration byte ("CTR") bits. */
#define CTR_KBDINT 0x01
#define CTR_SYS	   0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40
/* Output port: bit 0 drives the CPU reset line (low = reset). */
#define OUTPORT_NRESET 0x01
#define OUTPORT_A20    0x02

#define QUEUE_LEN 16

struct i8042 {
	const struct dev_services *svc;
	struct irq_line kbd_irq;
	pthread_mutex_t lock;
	uint8_t ctr, outport, status_cmd;
	uint8_t pending; /* controller command waiting for its data byte, 0 if none */
	bool kbd_arg;	 /* keyboard command waiting for its argument byte */
	uint8_t queue[QUEUE_LEN];
	unsigned head, count;
	uint8_t last; /* what a read of an empty output buffer returns */
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
	k->svc->stop(k->svc->ctx, STOP_RESET, 0, "guest reset the machine (keyboard controller)");
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

/* The two ports are separate one-byte bus ranges (0x61 between them is the
 * PIT/speaker port), so each has its own handlers. */
static void reply(void *data, unsigned size, uint8_t v)
{
	memset(data, 0xff, size);
	*(uint8_t *)data = v;
}

static void data_port_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct i8042 *k = dev;
	pthread_mutex_lock(&k->lock);
	uint8_t v = data_read(k);
	pthread_mutex_unlock(&k->lock);
	reply(data, size, v);
}

static void command_port_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct i8042 *k = dev;
	pthread_mutex_lock(&k->lock);
	uint8_t v =
	    (uint8_t)((k->count ? STS_OBF : 0) | (k->ctr & CTR_SYS ? STS_SYS : 0) | k->status_cmd);
	pthread_mutex_unlock(&k->lock);
	reply(data, size, v);
}

static void data_port_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct i8042 *k = dev;
	pthread_mutex_lock(&k->lock);
	k->status_cmd = 0;
	data_write(k, *(const uint8_t *)data);
	pthread_mutex_unlock(&k->lock);
}

static void command_port_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct i8042 *k = dev;
	pthread_mutex_lock(&k->lock);
	k->status_cmd = STS_CMD;
	command_write(k, *(const uint8_t *)data);
	pthread_mutex_unlock(&k->lock);
}

static const struct bus_ops data_ops = {.read = data_port_read, .write = data_port_write};
static const struct bus_ops command_ops = {.read = command_port_read, .write = command_port_write};

struct i8042_saved {
	uint32_t version;
	uint8_t ctr, outport, status_cmd, pending, kbd_arg, last, count, pad;
	uint8_t queue[QUEUE_LEN];
};

#define I8042_STATE_VERSION 1

static int i8042_save(void *dev, void **buf, size_t *len)
{
	struct i8042 *k = dev;
	struct i8042_saved *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	pthread_mutex_lock(&k->lock);
	*s = (struct i8042_saved){.version = I8042_STATE_VERSION,
				  .ctr = k->ctr,
				  .outport = k->outport,
				  .status_cmd = k->status_cmd,
				  .pending = k->pending,
				  .kbd_arg = k->kbd_arg,
				  .last = k->last,
				  .count = (uint8_t)k->count};
	for (unsigned i = 0; i < k->count; i++)
		s->queue[i] = k->queue[(k->head + i) % QUEUE_LEN];
	pthread_mutex_unlock(&k->lock);
	*buf = s;
	*len = sizeof(*s);
	return 0;
}

static int i8042_load(void *dev, const void *buf, size_t len)
{
	struct i8042 *k = dev;
	struct i8042_saved s;
	if (len != sizeof(s))
		return -1;
	memcpy(&s, buf, sizeof(s));
	if (s.version != I8042_STATE_VERSION || s.count > QUEUE_LEN)
		return -1;
	pthread_mutex_lock(&k->lock);
	k->ctr = s.ctr;
	k->outport = s.outport | OUTPORT_NRESET;
	k->status_cmd = s.status_cmd & STS_CMD;
	k->pending = s.pending;
	k->kbd_arg = s.kbd_arg != 0;
	k->last = s.last;
	k->head = 0;
	k->count = s.count;
	memcpy(k->queue, s.queue, QUEUE_LEN);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_destroy(void *dev)
{
	struct i8042 *k = dev;
	bus_unregister(k->svc->pio, I8042_DATA_PORT, k);
	bus_unregister(k->svc->pio, I8042_COMMAND_PORT, k);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static int i8042_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			void **dev, char *err, size_t errlen)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -1;
	k->svc = s;
	k->kbd_irq = dev_irq_line(s, I8042_KBD_GSI);
	k->ctr = CTR_KBDINT | CTR_SYS | CTR_AUXDIS | CTR_XLATE;
	k->outport = OUTPORT_NRESET | OUTPORT_A20;
	pthread_mutex_init(&k->lock, NULL);
	if (bus_register(s->pio, I8042_DATA_PORT, 1, &data_ops, k, "i8042") ||
	    bus_register(s->pio, I8042_COMMAND_PORT, 1, &command_ops, k, "i8042")) {
		i8042_destroy(k);
		return -1;
	}
	*dev = k;
	return 0;
}

const struct device_type i8042_device = {.name = "i8042",
					 .create = i8042_create,
					 .save = i8042_save,
					 .load = i8042_load,
					 .destroy = i8042_destroy};
