#include "devices/virtio_pci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/blob.h"

#define VIRTIO_PCI_VENDOR   0x1af4
#define VIRTIO_PCI_DEVICE0  0x1040 /* + device type, modern-only IDs */
#define VIRTIO_PCI_REVISION 1

/* virtio_pci_cap.cfg_type */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR	   3
#define CAP_DEVICE 4

#define PCI_CAP_ID_VNDR 0x09
#define VIRTIO_BAR	0

/* Common configuration fields (§4.1.4.3). */
#define CC_DFSELECT	0x00
#define CC_DF		0x04
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX_CONFIG	0x10
#define CC_NUM_QUEUES	0x12
#define CC_STATUS	0x14
#define CC_GENERATION	0x15
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_MSIX	0x1a
#define CC_Q_ENABLE	0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC	0x20
#define CC_Q_DRIVER	0x28
#define CC_Q_DEVICE	0x30

#define VIRTIO_STATE_VERSION 1

_Static_assert(VIRTIO_MAX_QUEUES <= KICK_MAX_QUEUES, "every queue needs a kick eventfd");

#define ISR_QUEUE  1
#define ISR_CONFIG 2

static uint64_t device_features(const struct virtio_pci *vp)
{
	return vp->info.features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC;
}

bool virtio_pci_live(const struct virtio_pci *vp)
{
	uint8_t need = VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK;
	return (vp->status & need) == need && !(vp->status & VIRTIO_STATUS_NEEDS_RESET);
}

static void raise_intx(struct virtio_pci *vp, uint8_t why)
{
	vp->isr |= why;
	pci_set_intx(&vp->pci, true);
}

void virtio_pci_used(struct virtio_pci *vp, unsigned q)
{
	if (!virtq_should_interrupt(&vp->vq[q]))
		return;
	if (msix_enabled(&vp->msix)) {
		if (vp->vq_vector[q] != MSIX_NO_VECTOR)
			msix_notify(&vp->msix, vp->vq_vector[q]);
	} else {
		raise_intx(vp, ISR_QUEUE);
	}
}

void virtio_pci_fail(struct virtio_pci *vp)
{
	if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	vp->config_gen++;
	if (msix_enabled(&vp->msix)) {
		if (vp->config_vector != MSIX_NO_VECTOR)
			msix_notify(&vp->msix, vp->config_vector);
	} else {
		raise_intx(vp, ISR_CONFIG);
	}
}

static void notify_locked(struct virtio_pci *vp, uint64_t q);

/* After the pause a deferred request waited for: each deferred queue runs
 * again, its first request past the pause rule. */
static void replay(void *arg)
{
	struct virtio_pci *vp = arg;
	pthread_mutex_lock(&vp->lock);
	vp->replay_posted = false;
	vp->replaying = true;
	for (unsigned q = 0; q < vp->info.nqueues; q++)
		if (vp->deferred & (1u << q))
			notify_locked(vp, q);
	vp->replaying = false;
	pthread_mutex_unlock(&vp->lock);
}

void virtio_pci_process(struct virtio_pci *vp, unsigned q, virtio_handler handle)
{
	struct vq_chain c;
	bool used = false;
	int r;
	if (vp->deferred & (1u << q)) {
		if (!vp->replaying)
			return; /* the pause it waits for has not ended yet */
		vp->deferred &= ~(1u << q);
		vp->after_pause = true;
	}
	while (virtio_pci_live(vp) && (r = virtq_pop(&vp->vq[q], &c)) != 0) {
		int64_t len = r > 0 ? handle(vp, &c) : -1;
		vp->after_pause = false;
		if (len == VIRTIO_DEFER) {
			vp->vq[q].last_avail--; /* unpopped: the driver still owns nothing new */
			vp->deferred |= 1u << q;
			if (!vp->replay_posted && vp->gate.after_resume)
				vp->gate.after_resume(vp->gate.ctx, replay, vp);
			vp->replay_posted = true;
			break;
		}
		if (len < 0) {
			virtio_pci_fail(vp);
			break;
		}
		virtq_push(&vp->vq[q], c.head, (uint32_t)len);
		used = true;
	}
	vp->after_pause = false; /* also if the deferred request never came back */
	if (used)
		virtio_pci_used(vp, q);
}

static void reset(struct virtio_pci *vp)
{
	vp->driver_features = 0;
	vp->dev_feature_sel = vp->drv_feature_sel = 0;
	vp->status = 0;
	vp->isr = 0;
	vp->queue_sel = 0;
	vp->deferred = 0;
	vp->config_vector = MSIX_NO_VECTOR;
	for (unsigned q = 0; q < vp->info.nqueues; q++) {
		virtq_reset(&vp->vq[q], vp->info.queue_size);
		vp->vq_vector[q] = MSIX_NO_VECTOR;
	}
	pci_set_intx(&vp->pci, false);
	if (vp->info.ops->reset)
		vp->info.ops->reset(vp);
}

static void put(uint8_t *buf, unsigned off, unsigned size, uint64_t v)
{
	for (unsigned i = 0; i < size; i++)
		buf[off + i] = (uint8_t)(v >> (8 * i));
}

static struct virtq *selected(struct virtio_pci *vp)
{
	return vp->queue_sel < vp->info.nqueues ? &vp->vq[vp->queue_sel] : NULL;
}

static void common_read(struct virtio_pci *vp, uint64_t off, void *data, unsigned size)
{
	uint8_t cc[VIRTIO_COMMON_LEN] = {0};
	uint64_t f = device_features(vp);
	put(cc, CC_DFSELECT, 4, vp->dev_feature_sel);
	put(cc, CC_DF, 4, vp->dev_feature_sel < 2 ? f >> (32 * vp->dev_feature_sel) : 0);
	put(cc, CC_GFSELECT, 4, vp->drv_feature_sel);
	put(cc, CC_GF, 4,
	    vp->drv_feature_sel < 2 ? vp->driver_features >> (32 * vp->drv_feature_sel) : 0);
	put(cc, CC_MSIX_CONFIG, 2, vp->config_vector);
	put(cc, CC_NUM_QUEUES, 2, vp->info.nqueues);
	put(cc, CC_STATUS, 1, vp->status);
	put(cc, CC_GENERATION, 1, vp->config_gen);
	put(cc, CC_Q_SELECT, 2, vp->queue_sel);
	struct virtq *vq = selected(vp);
	if (vq) {
		put(cc, CC_Q_SIZE, 2, vq->size);
		put(cc, CC_Q_MSIX, 2, vp->vq_vector[vp->queue_sel]);
		put(cc, CC_Q_ENABLE, 2, vq->enabled);
		put(cc, CC_Q_NOTIFY_OFF, 2, vp->queue_sel);
		put(cc, CC_Q_DESC, 8, vq->desc_gpa);
		put(cc, CC_Q_DRIVER, 8, vq->avail_gpa);
		put(cc, CC_Q_DEVICE, 8, vq->used_gpa);
	}
	memset(data, 0, size);
	if (off < sizeof(cc))
		memcpy(data, cc + off, size < sizeof(cc) - off ? size : sizeof(cc) - off);
}

static uint16_t valid_vector(const struct virtio_pci *vp, uint64_t v)
{
	/* An unusable vector reads back as NO_VECTOR, which is how the driver
	 * learns the mapping failed (§4.1.5.1.2). */
	return v < vp->msix.nvec ? (uint16_t)v : MSIX_NO_VECTOR;
}

static void write_status(struct virtio_pci *vp, uint8_t v)
{
	if (v == 0) {
		reset(vp);
		return;
	}
	uint8_t old = vp->status;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t f = vp->driver_features;
		/* Refuse a subset we cannot honour: the driver reads the bit back. */
		if ((f & ~device_features(vp)) || !(f & 1ull << VIRTIO_F_VERSION_1))
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	/* Only reset clears bits; NEEDS_RESET belongs to the device. */
	vp->status = old | (v & (uint8_t)~VIRTIO_STATUS_NEEDS_RESET);
	if (!(old & VIRTIO_STATUS_DRIVER_OK) && virtio_pci_live(vp)) {
		/* Buffers may have been queued (and kicked) before DRIVER_OK. */
		for (unsigned q = 0; q < vp->info.nqueues; q++)
			if (vp->vq[q].enabled)
				vp->info.ops->queue_notify(vp, q);
	}
}

static void set_half(uint64_t *field, uint64_t off, unsigned size, uint64_t v)
{
	if (size == 8 && !(off & 7))
		*field = v;
	else if (size == 4 && !(off & 3))
		*field = (off & 4) ? (*field & 0xffffffffull) | v << 32
				   : (*field & ~0xffffffffull) | (v & 0xffffffffull);
}

static void enable_queue(struct virtio_pci *vp, struct virtq *vq)
{
	/* Rings must not be used before the features (INDIRECT_DESC) are fixed. */
	if (vq->enabled)
		return;
	vq->indirect = vp->driver_features & 1ull << VIRTIO_F_INDIRECT_DESC;
	if (!(vp->status & VIRTIO_STATUS_FEATURES_OK) || vq->size > vp->info.queue_size ||
	    virtq_enable(vq, vp->mem) < 0)
		virtio_pci_fail(vp);
}

static void common_write(struct virtio_pci *vp, uint64_t off, const void *data, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, data, size);
	struct virtq *vq = selected(vp);
	/* Queue layout is frozen once the queue is enabled (§4.1.4.3.2). */
	struct virtq *cfgq = vq && !vq->enabled ? vq : NULL;

	if (off >= CC_Q_DESC && off < VIRTIO_COMMON_LEN) {
		if (cfgq)
			set_half(off < CC_Q_DRIVER   ? &cfgq->desc_gpa
				 : off < CC_Q_DEVICE ? &cfgq->avail_gpa
						     : &cfgq->used_gpa,
				 off, size, v);
		return;
	}
	switch (off | (uint64_t)size << 32) {
	case CC_DFSELECT | 4ull << 32:
		vp->dev_feature_sel = (uint32_t)v;
		break;
	case CC_GFSELECT | 4ull << 32:
		vp->drv_feature_sel = (uint32_t)v;
		break;
	case CC_GF | 4ull << 32:
		if (vp->drv_feature_sel < 2 && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
			unsigned shift = 32 * vp->drv_feature_sel;
			vp->driver_features &= ~(0xffffffffull << shift);
			vp->driver_features |= v << shift;
		}
		break;
	case CC_MSIX_CONFIG | 2ull << 32:
		vp->config_vector = valid_vector(vp, v);
		break;
	case CC_STATUS | 1ull << 32:
		write_status(vp, (uint8_t)v);
		break;
	case CC_Q_SELECT | 2ull << 32:
		vp->queue_sel = (uint16_t)v;
		break;
	case CC_Q_SIZE | 2ull << 32:
		if (cfgq)
			cfgq->size = (uint16_t)v;
		break;
	case CC_Q_MSIX | 2ull << 32:
		if (vq)
			vp->vq_vector[vp->queue_sel] = valid_vector(vp, v);
		break;
	case CC_Q_ENABLE | 2ull << 32:
		if (vq && v == 1)
			enable_queue(vp, vq);
		break;
	default:
		break; /* read-only field or an access width the spec does not allow */
	}
}

/* A driver kick for queue q, by MMIO write or eventfd. */
static void notify_locked(struct virtio_pci *vp, uint64_t q)
{
	if (q < vp->info.nqueues && vp->vq[q].enabled && virtio_pci_live(vp))
		vp->info.ops->queue_notify(vp, (unsigned)q);
}

static void notify_all_locked(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->info.nqueues; q++)
		notify_locked(vp, q);
}

static void look_at_queues(void *arg)
{
	struct virtio_pci *vp = arg;
	pthread_mutex_lock(&vp->lock);
	notify_all_locked(vp);
	pthread_mutex_unlock(&vp->lock);
}

/* An eventfd kick, on the VM's loop: never while the VM is paused. */
static void kicked(void *ctx, unsigned q)
{
	struct virtio_pci *vp = ctx;
	pthread_mutex_lock(&vp->lock);
	notify_locked(vp, q);
	pthread_mutex_unlock(&vp->lock);
}

/* Keep the eventfd kicks on the notify area wherever the BAR is decoded. */
static void sync_kicks(struct virtio_pci *vp)
{
	const struct pci_bar *b = &vp->pci.bar[VIRTIO_BAR];
	virtio_kick_bind(&vp->kick, b->mapped, b->mapped_at + VIRTIO_BAR_NOTIFY);
}

static void bar_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct virtio_pci *vp = dev;
	memset(data, 0, size);
	pthread_mutex_lock(&vp->lock);
	if (off < VIRTIO_BAR_ISR) {
		common_read(vp, off - VIRTIO_BAR_COMMON, data, size);
	} else if (off < VIRTIO_BAR_DEVICE) {
		if (off == VIRTIO_BAR_ISR) {
			/* Reading ISR acknowledges it and drops the level interrupt. */
			*(uint8_t *)data = vp->isr;
			vp->isr = 0;
			pci_set_intx(&vp->pci, false);
		}
	} else if (off < VIRTIO_BAR_NOTIFY) {
		uint64_t o = off - VIRTIO_BAR_DEVICE;
		if (o < vp->info.config_len && size <= vp->info.config_len - o)
			memcpy(data, (const uint8_t *)vp->info.config + o, size);
	} else if (off >= VIRTIO_BAR_MSIX && off < VIRTIO_BAR_PBA) {
		msix_table_read(&vp->msix, off - VIRTIO_BAR_MSIX, data, size);
	} else if (off >= VIRTIO_BAR_PBA) {
		msix_pba_read(&vp->msix, off - VIRTIO_BAR_PBA, data, size);
	}
	pthread_mutex_unlock(&vp->lock);
}

static void bar_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct virtio_pci *vp = dev;
	pthread_mutex_lock(&vp->lock);
	if (off < VIRTIO_BAR_ISR) {
		common_write(vp, off - VIRTIO_BAR_COMMON, data, size);
	} else if (off >= VIRTIO_BAR_NOTIFY && off < VIRTIO_BAR_MSIX) {
		notify_locked(vp, (off - VIRTIO_BAR_NOTIFY) / VIRTIO_NOTIFY_MULTIPLIER);
	} else if (off >= VIRTIO_BAR_MSIX && off < VIRTIO_BAR_PBA) {
		msix_table_write(&vp->msix, off - VIRTIO_BAR_MSIX, data, size);
	}
	pthread_mutex_unlock(&vp->lock);
}

static const struct bus_ops bar_ops = {.read = bar_read, .write = bar_write};

static void cfg_written(struct pci_dev *d, unsigned off, unsigned size)
{
	struct virtio_pci *vp =
	    (struct virtio_pci *)((uint8_t *)d - offsetof(struct virtio_pci, pci));
	pthread_mutex_lock(&vp->lock);
	sync_kicks(vp);
	msix_config_written(&vp->msix);
	if (msix_enabled(&vp->msix))
		pci_set_intx(d, false);
	pthread_mutex_unlock(&vp->lock);
}

static int add_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset, uint32_t length,
		   bool notify)
{
	/* struct virtio_pci_cap (§4.1.4), plus notify_off_multiplier for NOTIFY. */
	uint8_t cap[20] = {PCI_CAP_ID_VNDR, 0, notify ? 20 : 16, type, VIRTIO_BAR};
	put(cap, 8, 4, offset);
	put(cap, 12, 4, length);
	put(cap, 16, 4, VIRTIO_NOTIFY_MULTIPLIER);
	return pci_dev_add_cap(&vp->pci, cap, cap[2], NULL) ? 0 : -1;
}

struct virtio_env virtio_env_of(const struct dev_services *s)
{
	return (struct virtio_env){.pci = s->pci,
				   .mem = s->mem,
				   .msi = s->msi,
				   .ioeventfd = s->ioeventfd,
				   .loop = s->loop,
				   .gate = s->gate};
}

int virtio_pci_init(struct virtio_pci *vp, const struct virtio_pci_info *info, void *dev,
		    const struct virtio_env *env, char *err, size_t errlen)
{
	memset(vp, 0, sizeof(*vp));
	if (info->nqueues == 0 || info->nqueues > VIRTIO_MAX_QUEUES ||
	    info->queue_size > VQ_MAX_SIZE || info->config_len > VIRTIO_DEVICE_CFG_MAX) {
		snprintf(err, errlen, "%s: invalid device description", info->name);
		return -1;
	}
	vp->info = *info;
	vp->dev = dev;
	vp->mem = env->mem;
	vp->gate = env->gate;
	pthread_mutex_init(&vp->lock, NULL);

	pci_dev_init(&vp->pci, info->name, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE0 + info->type,
		     VIRTIO_PCI_REVISION, info->class_code);
	/* Modern devices need a subsystem ID >= 0x40 (§4.1.2.1). */
	vp->pci.cfg[PCI_SUBSYS_ID] = 0x40;
	vp->pci.cfg[PCI_SUBSYS_ID + 1] = 0;
	vp->pci.cfg_written = cfg_written;
	pci_dev_set_bar64(&vp->pci, VIRTIO_BAR, VIRTIO_BAR_SIZE, &bar_ops, vp);

	int bad = add_cap(vp, CAP_COMMON, VIRTIO_BAR_COMMON, VIRTIO_COMMON_LEN, false) ||
		  add_cap(vp, CAP_ISR, VIRTIO_BAR_ISR, 4, false) ||
		  add_cap(vp, CAP_NOTIFY, VIRTIO_BAR_NOTIFY,
			  info->nqueues * VIRTIO_NOTIFY_MULTIPLIER, true) ||
		  (info->config_len &&
		   add_cap(vp, CAP_DEVICE, VIRTIO_BAR_DEVICE, info->config_len, false)) ||
		  msix_init(&vp->msix, &vp->pci, info->nqueues + 1, VIRTIO_BAR, VIRTIO_BAR_MSIX,
			    VIRTIO_BAR_PBA, env->msi) < 0;
	if (bad) {
		snprintf(err, errlen, "%s: PCI configuration space is full", info->name);
		pthread_mutex_destroy(&vp->lock);
		return -1;
	}
	reset(vp);
	if (pci_bus_add(env->pci, &vp->pci, err, errlen) < 0) {
		pthread_mutex_destroy(&vp->lock);
		return -1;
	}
	vp->loop = env->loop;
	/* Without the fast path (or if it cannot start) kicks stay MMIO writes. */
	if (virtio_kick_start(&vp->kick, env->ioeventfd, env->loop, info->nqueues,
			      VIRTIO_NOTIFY_MULTIPLIER, kicked, vp) == 0)
		sync_kicks(vp);
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	virtio_kick_stop(&vp->kick);
	pci_bus_remove(&vp->pci);
	pthread_mutex_destroy(&vp->lock);
}

int virtio_pci_save(void *dev, void **buf, size_t *len)
{
	struct virtio_pci *vp = dev;
	struct blob b = {0};
	uint8_t cfg[PCI_CFG_SIZE];
	pci_dev_save_config(&vp->pci, cfg);
	blob_put32(&b, VIRTIO_STATE_VERSION);
	blob_put_bytes(&b, cfg, sizeof(cfg));
	pthread_mutex_lock(&vp->lock);
	msix_save(&vp->msix, &b);
	blob_put64(&b, vp->driver_features);
	blob_put32(&b, vp->dev_feature_sel);
	blob_put32(&b, vp->drv_feature_sel);
	blob_put8(&b, vp->status);
	blob_put8(&b, vp->isr);
	blob_put8(&b, vp->config_gen);
	blob_put16(&b, vp->queue_sel);
	blob_put16(&b, vp->config_vector);
	blob_put32(&b, vp->info.nqueues);
	for (unsigned q = 0; q < vp->info.nqueues; q++) {
		const struct virtq *vq = &vp->vq[q];
		blob_put16(&b, vq->size);
		blob_put8(&b, vq->enabled);
		blob_put64(&b, vq->desc_gpa);
		blob_put64(&b, vq->avail_gpa);
		blob_put64(&b, vq->used_gpa);
		blob_put16(&b, vq->last_avail);
		blob_put16(&b, vq->used_idx);
		blob_put16(&b, vp->vq_vector[q]);
	}
	pthread_mutex_unlock(&vp->lock);
	if (b.oom) {
		blob_free(&b);
		return -1;
	}
	*buf = b.buf;
	*len = b.len;
	return 0;
}

/* Queues of a saved transport, checked against this device and guest RAM. */
static int load_queues(struct virtio_pci *vp, struct reader *r)
{
	if (rd_get32(r) != vp->info.nqueues)
		return -1;
	for (unsigned q = 0; q < vp->info.nqueues; q++) {
		struct virtq *vq = &vp->vq[q];
		virtq_reset(vq, rd_get16(r));
		bool enabled = rd_get8(r);
		vq->desc_gpa = rd_get64(r);
		vq->avail_gpa = rd_get64(r);
		vq->used_gpa = rd_get64(r);
		uint16_t last_avail = rd_get16(r), used_idx = rd_get16(r);
		vp->vq_vector[q] = valid_vector(vp, rd_get16(r));
		if (r->bad)
			return -1;
		/* A disabled queue may hold any size the driver wrote: enable checks it. */
		if (enabled) {
			if (vq->size > vp->info.queue_size)
				return -1;
			vq->indirect = vp->driver_features & 1ull << VIRTIO_F_INDIRECT_DESC;
			if (virtq_enable(vq, vp->mem) < 0)
				return -1;
			vq->last_avail = last_avail;
			vq->used_idx = used_idx;
		}
	}
	return 0;
}

int virtio_pci_load(void *dev, const void *buf, size_t len)
{
	struct virtio_pci *vp = dev;
	struct reader r = {buf, len, false};
	uint8_t cfg[PCI_CFG_SIZE];
	if (rd_get32(&r) != VIRTIO_STATE_VERSION)
		return -1;
	rd_get_bytes(&r, cfg, sizeof(cfg));
	pthread_mutex_lock(&vp->lock);
	reset(vp);
	int rc = msix_load(&vp->msix, &r);
	vp->driver_features = rd_get64(&r) & device_features(vp);
	vp->dev_feature_sel = rd_get32(&r);
	vp->drv_feature_sel = rd_get32(&r);
	vp->status = rd_get8(&r);
	vp->isr = rd_get8(&r) & (ISR_QUEUE | ISR_CONFIG);
	vp->config_gen = rd_get8(&r);
	vp->queue_sel = rd_get16(&r);
	vp->config_vector = valid_vector(vp, rd_get16(&r));
	if (rc == 0)
		rc = load_queues(vp, &r);
	if (rc || r.bad || r.left) {
		reset(vp);
		rc = -1;
	}
	pthread_mutex_unlock(&vp->lock);
	if (rc)
		return -1;
	/* Last, outside our lock: the config hook re-reads MSI-X enable/mask
	 * with the table already in place, and BARs go back where the guest
	 * put them. */
	pci_dev_load_config(&vp->pci, cfg);
	pthread_mutex_lock(&vp->lock);
	if (vp->isr && !msix_enabled(&vp->msix))
		pci_set_intx(&vp->pci, true);
	/* A kick the snapshot caught between the eventfd and the queue work is
	 * not in any state: every queue is looked at once, on the loop. Not
	 * here: a post-copy destination loads devices before the pages of the
	 * rings have come, and only once the VM runs are missing pages served
	 * (a read here would wait for ever). */
	if (!vp->loop || loop_post(vp->loop, look_at_queues, vp) < 0)
		notify_all_locked(vp);
	pthread_mutex_unlock(&vp->lock);
	return 0;
}
