#include "devices/virtio_console.h"

#include <stdio.h>
#include <stdlib.h>

#define RXQ 0
#define TXQ 1

/* The most one TX chain sends; the rest is dropped. Drivers send a page or
 * so at a time, while one chain of 254 buffers of all of RAM would keep the
 * vCPU writing (and the host's disk filling) for minutes. */
#define TX_MAX_CHAIN (64u << 10)

/* struct virtio_console_config (§5.3.4); meaningful only with features we do
 * not offer, but drivers may still read it. */
struct console_config {
	uint16_t cols, rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
};

struct virtio_console {
	struct virtio_pci vp; /* first: the device is its transport for the registry's hooks */
	virtio_console_tx_fn tx;
	void *tx_ctx;
	struct console_config config;
};

static int64_t tx_request(struct virtio_pci *vp, struct vq_chain *c)
{
	struct virtio_console *con = vp->dev;
	struct iovec iov[VQ_MAX_SIZE];
	unsigned n = iov_slice(c->iov, c->nread, 0, TX_MAX_CHAIN, iov);
	for (unsigned i = 0; i < n; i++)
		con->tx(con->tx_ctx, iov[i].iov_base, iov[i].iov_len);
	return 0;
}

static void console_notify(struct virtio_pci *vp, unsigned q)
{
	/* New RX buffers need no action: the console retries pending input. */
	if (q == TXQ)
		virtio_pci_process(vp, q, tx_request);
}

static const struct virtio_dev_ops console_ops = {.queue_notify = console_notify};

size_t virtio_console_input(void *arg, const uint8_t *data, size_t len)
{
	struct virtio_console *con = arg;
	struct virtio_pci *vp = &con->vp;
	struct virtq *vq = &vp->vq[RXQ];
	struct vq_chain c;
	size_t done = 0;
	pthread_mutex_lock(&vp->lock);
	/* Called from the VM's loop, which is still while the VM is paused. */
	while (done < len && virtio_pci_live(vp)) {
		int r = virtq_pop(vq, &c);
		if (r < 0)
			virtio_pci_fail(vp);
		if (r <= 0)
			break;
		uint64_t n = vq_chain_write(&c, 0, data + done, len - done);
		virtq_push(vq, c.head, (uint32_t)n);
		done += n;
	}
	if (done)
		virtio_pci_used(vp, RXQ);
	pthread_mutex_unlock(&vp->lock);
	return done;
}

struct virtio_console *virtio_console_create(const struct virtio_env *env, virtio_console_tx_fn tx,
					     void *tx_ctx, char *err, size_t errlen)
{
	struct virtio_console *con = calloc(1, sizeof(*con));
	if (!con) {
		snprintf(err, errlen, "out of memory creating virtio-console");
		return NULL;
	}
	con->tx = tx;
	con->tx_ctx = tx_ctx;
	con->config.max_nr_ports = 1;
	struct virtio_pci_info info = {
	    .name = "virtio-console",
	    .type = VIRTIO_ID_CONSOLE,
	    .class_code = 0x078000, /* simple communication controller, other */
	    .nqueues = 2,
	    .queue_size = 64,
	    .ops = &console_ops,
	    .config = &con->config,
	    .config_len = sizeof(con->config),
	};
	if (virtio_pci_init(&con->vp, &info, con, env, err, errlen) < 0) {
		free(con);
		return NULL;
	}
	return con;
}

struct virtio_pci *virtio_console_pci(struct virtio_console *c)
{
	return &c->vp;
}

void virtio_console_destroy(void *console)
{
	struct virtio_console *con = console;
	if (!con)
		return;
	virtio_pci_destroy(&con->vp);
	free(con);
}

static int console_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			  void **dev, char *err, size_t errlen)
{
	struct virtio_env env = virtio_env_of(s);
	return (*dev = virtio_console_create(&env, s->console_tx, s->console_ctx, err, errlen))
		   ? 0
		   : -1;
}

const struct device_type virtio_console_device = {.name = "virtio-console0",
						  .create = console_create,
						  .save = virtio_pci_save,
						  .load = virtio_pci_load,
						  .destroy = virtio_console_destroy,
						  .input = virtio_console_input};
