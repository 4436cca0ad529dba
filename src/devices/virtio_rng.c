#include "devices/virtio_rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

/* One request gets at most this much: a guest handing us a gigabyte buffer
 * must not stall its vCPU; the driver simply asks again. */
#define RNG_MAX_CHUNK (64u << 10)

struct virtio_rng {
	struct virtio_pci vp; /* first: the device is its transport for the registry's hooks */
};

static int fill(void *p, size_t len)
{
	while (len) {
		ssize_t r = getrandom(p, len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p = (uint8_t *)p + r;
		len -= (size_t)r;
	}
	return 0;
}

static int64_t rng_request(struct virtio_pci *vp, struct vq_chain *c)
{
	struct iovec iov[VQ_MAX_SIZE];
	uint64_t len = c->write_len < RNG_MAX_CHUNK ? c->write_len : RNG_MAX_CHUNK;
	struct gate_request rq = {
	    .kind = GATE_RNG, .op = GATE_READ, .len = len, .after_pause = vp->after_pause};
	/* A gate that wants the bytes gets them before the guest does: it may
	 * change them. */
	if (gate_wants_data(&vp->gate, GATE_RNG)) {
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy || fill(copy, len) < 0) {
			free(copy);
			return 0;
		}
		rq.data = copy;
		enum gate_verdict v = gate_check(&vp->gate, &rq);
		int64_t done = v == GATE_GO	 ? (int64_t)vq_chain_write(c, 0, copy, len)
			       : v == GATE_DEFER ? VIRTIO_DEFER
						 : 0; /* denied: an empty answer */
		free(copy);
		return done;
	}
	enum gate_verdict v = gate_check(&vp->gate, &rq);
	if (v != GATE_GO)
		return v == GATE_DEFER ? VIRTIO_DEFER : 0;
	unsigned n = iov_slice(c->iov + c->nread, c->nwrite, 0, len, iov);
	for (unsigned i = 0; i < n; i++)
		if (fill(iov[i].iov_base, iov[i].iov_len) < 0)
			return 0; /* no entropy this time: an empty answer, not a broken device */
	return (int64_t)len;
}

static void rng_notify(struct virtio_pci *vp, unsigned q)
{
	virtio_pci_process(vp, q, rng_request);
}

static const struct virtio_dev_ops rng_ops = {.queue_notify = rng_notify};

struct virtio_rng *virtio_rng_create(const struct virtio_env *env, char *err, size_t errlen)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory creating virtio-rng");
		return NULL;
	}
	struct virtio_pci_info info = {
	    .name = "virtio-rng",
	    .type = VIRTIO_ID_RNG,
	    .class_code = 0xff0000, /* unclassified device */
	    .nqueues = 1,
	    .queue_size = 64,
	    .ops = &rng_ops,
	};
	if (virtio_pci_init(&r->vp, &info, r, env, err, errlen) < 0) {
		free(r);
		return NULL;
	}
	return r;
}

struct virtio_pci *virtio_rng_pci(struct virtio_rng *r)
{
	return &r->vp;
}

void virtio_rng_destroy(void *rng)
{
	struct virtio_rng *r = rng;
	if (!r)
		return;
	virtio_pci_destroy(&r->vp);
	free(r);
}

static int rng_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		      char *err, size_t errlen)
{
	struct virtio_env env = virtio_env_of(s);
	return (*dev = virtio_rng_create(&env, err, errlen)) ? 0 : -1;
}

const struct device_type virtio_rng_device = {.name = "virtio-rng0",
					      .create = rng_create,
					      .save = virtio_pci_save,
					      .load = virtio_pci_load,
					      .destroy = virtio_rng_destroy};
