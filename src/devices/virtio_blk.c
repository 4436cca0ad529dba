#include "devices/virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/disk.h"
#include "devices/disk_format.h"
#include "machine/config.h"

#define SECTOR 512ull

#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO	      5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_T_IN	    0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define BLK_ID_BYTES   20
#define BLK_QUEUE_SIZE 256

/* struct virtio_blk_config up to blk_size (§5.2.4); the rest is unused. */
struct blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads, sectors;
	uint32_t blk_size;
};

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct virtio_blk {
	struct virtio_pci vp; /* first: the device is its transport for the registry's hooks */
	int fd;
	bool ro;
	bool guard_head; /* refuse a sector 0 that would probe as another format */
	uint64_t sectors;
	char id[BLK_ID_BYTES];
	struct blk_config config;
	uint64_t *dirty; /* --copy-storage: blocks written (devices/disk.h), or NULL */
};

/* Move all of iov to/from the image at byte pos; short transfers are retried
 * until done, so only real errors (or EOF) fail. */
static int transfer(int fd, struct iovec *iov, unsigned n, uint64_t pos, bool write)
{
	while (n) {
		ssize_t r = write ? pwritev(fd, iov, (int)n, (off_t)pos)
				  : preadv(fd, iov, (int)n, (off_t)pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		pos += (uint64_t)r;
		while (n && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* The most a request the gate inspects may carry: its data is copied once
 * (the gate checks the copy, the image gets the copy), and a bigger one fails
 * rather than make the VMM allocate whatever the guest asks for. Linux sends
 * at most 1.25 MiB. */
#define GATE_COPY_MAX (16u << 20)

/* Read or write through the gate: with a gate that wants the data, a write's
 * bytes are copied out of guest memory first, so what it checked is what
 * reaches the image even if the guest rewrites its buffer meanwhile. */
static int gated_transfer(struct virtio_blk *b, struct gate_request *rq, struct iovec *iov,
			  unsigned n, bool write)
{
	const struct request_gate *g = &b->vp.gate;
	uint8_t *copy = NULL;
	/* The image was found raw by its content: a guest that wrote a qcow2
	 * header (with a backing file of its choosing) there would have popek
	 * open it as qcow2 next time. Such a write fails, as in QEMU; checked
	 * on a copy, which is what reaches the file. */
	bool guard = write && b->guard_head && rq->sector == 0;
	if (write && (guard || gate_wants_data(g, GATE_DISK))) {
		if (rq->len > GATE_COPY_MAX || !(copy = malloc(rq->len ? rq->len : 1)))
			return VIRTIO_BLK_S_IOERR;
		size_t done = 0; /* iov holds exactly len bytes; the bound is belt and braces */
		for (unsigned i = 0; i < n && iov[i].iov_len <= rq->len - done; i++) {
			memcpy(copy + done, iov[i].iov_base, iov[i].iov_len);
			done += iov[i].iov_len;
		}
		rq->data = copy;
		if (guard && disk_format_probe(
				 copy, rq->len < DISK_FORMAT_HEAD ? rq->len : DISK_FORMAT_HEAD)) {
			free(copy);
			return VIRTIO_BLK_S_IOERR;
		}
	}
	enum gate_verdict v = gate_check(g, rq);
	int st = v == GATE_DEFER ? VIRTIO_DEFER : VIRTIO_BLK_S_IOERR;
	struct iovec one = {copy, rq->len};
	if (copy)
		iov = &one, n = 1;
	if (v == GATE_GO)
		st = transfer(b->fd, iov, n, rq->sector * SECTOR, write) < 0 ? VIRTIO_BLK_S_IOERR
									     : VIRTIO_BLK_S_OK;
	/* Marked once the bytes are in the image, so a block the mirror reads
	 * before they land is marked again after. A failed write may have
	 * changed part of its range, so it is marked too. */
	uint64_t *dirty = __atomic_load_n(&b->dirty, __ATOMIC_ACQUIRE);
	if (write && v == GATE_GO && dirty)
		disk_dirty_mark(dirty, rq->sector * SECTOR, rq->len);
	free(copy);
	return st;
}

static int rw(struct virtio_blk *b, const struct vq_chain *c, uint64_t sector, bool write,
	      uint64_t *written)
{
	struct iovec iov[VQ_MAX_SIZE];
	uint64_t len = write ? c->read_len - sizeof(struct blk_req_hdr) : c->write_len - 1;
	if (len % SECTOR || sector > b->sectors || len / SECTOR > b->sectors - sector)
		return VIRTIO_BLK_S_IOERR;
	if (write && b->ro)
		return VIRTIO_BLK_S_IOERR;
	unsigned n = write ? iov_slice(c->iov, c->nread, sizeof(struct blk_req_hdr), len, iov)
			   : iov_slice(c->iov + c->nread, c->nwrite, 0, len, iov);
	struct gate_request rq = {.kind = GATE_DISK,
				  .op = write ? GATE_WRITE : GATE_READ,
				  .sector = sector,
				  .count = len / SECTOR,
				  .len = len,
				  .after_pause = b->vp.after_pause};
	int st = gated_transfer(b, &rq, iov, n, write);
	if (st == VIRTIO_BLK_S_OK && !write)
		*written = len;
	return st;
}

static int flush(struct virtio_blk *b)
{
	struct gate_request rq = {
	    .kind = GATE_DISK, .op = GATE_FLUSH, .after_pause = b->vp.after_pause};
	enum gate_verdict v = gate_check(&b->vp.gate, &rq);
	if (v != GATE_GO)
		return v == GATE_DEFER ? VIRTIO_DEFER : VIRTIO_BLK_S_IOERR;
	return fsync(b->fd) == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

static int64_t blk_request(struct virtio_pci *vp, struct vq_chain *c)
{
	struct virtio_blk *b = vp->dev;
	struct blk_req_hdr hdr;
	/* Without a header and a status byte there is no way to answer. */
	if (c->write_len == 0 || vq_chain_read(c, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
		return -1;
	uint64_t written = 0, room = c->write_len - 1;
	int status;
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		status = rw(b, c, hdr.sector, hdr.type == VIRTIO_BLK_T_OUT, &written);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = flush(b);
		break;
	case VIRTIO_BLK_T_GET_ID:
		written = vq_chain_write(c, 0, b->id, room < BLK_ID_BYTES ? room : BLK_ID_BYTES);
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (status == VIRTIO_DEFER)
		return VIRTIO_DEFER;
	uint8_t st = (uint8_t)status;
	vq_chain_write(c, room, &st, 1);
	return (int64_t)(written + 1);
}

static void blk_notify(struct virtio_pci *vp, unsigned q)
{
	virtio_pci_process(vp, q, blk_request);
}

static const struct virtio_dev_ops blk_ops = {.queue_notify = blk_notify};

static int open_image(struct virtio_blk *b, const char *path, bool lock_later, char *err,
		      size_t errlen)
{
	b->fd = open(path, (b->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		snprintf(err, errlen, "cannot open disk image %s: %s%s", path, strerror(errno),
			 errno == EACCES || errno == EROFS ? " (add ,ro to attach it read-only)"
							   : "");
		return -1;
	}
	/* Two writers on one image corrupt it; readers may share. A migrating
	 * VM's source holds it until the handover (machine_disks_lock). */
	if (flock(b->fd, (b->ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0 &&
	    !(lock_later && errno == EWOULDBLOCK)) {
		snprintf(err, errlen,
			 "disk image %s is already attached (here or by another VM): detach it, or "
			 "attach "
			 "every user read-only with ,ro",
			 path);
		return -1;
	}
	off_t size = lseek(b->fd, 0, SEEK_END);
	if (size < (off_t)SECTOR) {
		snprintf(err, errlen,
			 "disk image %s is %s: it must hold at least one 512-byte sector", path,
			 size < 0 ? strerror(errno) : "too small");
		return -1;
	}
	b->sectors = (uint64_t)size / SECTOR;
	return 0;
}

struct virtio_blk *virtio_blk_create(const struct virtio_env *env, const struct disk_config *d,
				     char *err, size_t errlen)
{
	const char *path = d->path;
	bool ro = d->ro;
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory creating virtio-blk for %s", path);
		return NULL;
	}
	b->ro = ro;
	b->guard_head = !d->format_raw;
	if (open_image(b, path, d->lock_later, err, errlen) < 0)
		goto fail;
	/* The serial the guest sees (/sys/block/vda/serial): the image's name,
	 * NUL-padded, unterminated if it fills all 20 bytes (§5.2.6). */
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	memcpy(b->id, name, strnlen(name, sizeof(b->id)));
	b->config = (struct blk_config){
	    .capacity = b->sectors,
	    .seg_max = BLK_QUEUE_SIZE - 2, /* header and status take two descriptors */
	    .blk_size = SECTOR,
	};
	struct virtio_pci_info info = {
	    .name = "virtio-blk",
	    .type = VIRTIO_ID_BLOCK,
	    .class_code = 0x018000, /* mass storage, other */
	    .nqueues = 1,
	    .queue_size = BLK_QUEUE_SIZE,
	    .features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			1ull << VIRTIO_BLK_F_FLUSH | (ro ? 1ull << VIRTIO_BLK_F_RO : 0),
	    .ops = &blk_ops,
	    .config = &b->config,
	    .config_len = sizeof(b->config),
	};
	if (virtio_pci_init(&b->vp, &info, b, env, err, errlen) < 0)
		goto fail;
	return b;
fail:
	if (b->fd >= 0)
		close(b->fd);
	free(b);
	return NULL;
}

struct virtio_pci *virtio_blk_pci(struct virtio_blk *b)
{
	return &b->vp;
}

void virtio_blk_destroy(void *blk)
{
	struct virtio_blk *b = blk;
	if (!b)
		return;
	virtio_pci_destroy(&b->vp);
	close(b->fd);
	free(b);
}

int virtio_blk_fd(const struct virtio_blk *b)
{
	return b->fd;
}

void virtio_blk_track(struct virtio_blk *b, uint64_t *bitmap)
{
	__atomic_store_n(&b->dirty, bitmap, __ATOMIC_RELEASE);
}

static int blk_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		      char *err, size_t errlen)
{
	struct virtio_env env = virtio_env_of(s);
	*dev = virtio_blk_create(&env, &cfg->disk[i], err, errlen);
	return *dev ? 0 : EXIT_CODE_USAGE;
}

const struct device_type virtio_blk_device = {.name = "virtio-blk",
					      .numbered = true,
					      .create = blk_create,
					      .save = virtio_pci_save,
					      .load = virtio_pci_load,
					      .destroy = virtio_blk_destroy};
