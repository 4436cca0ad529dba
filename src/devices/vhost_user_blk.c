/* vhost-user-blk as a vhost-user device (devices/vhost_dev.h): the config
 * space comes from the backend (GET_CONFIG), qemu-storage-daemon is started
 * for images popek does not read itself, and with the backend gone every
 * request fails with an I/O error. */
#include "devices/vhost_user_blk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/vhost_dev.h"

#define QSD	       "/usr/bin/qemu-storage-daemon"
#define BLK_QUEUES     1
#define BLK_QUEUE_SIZE 128

#define VIRTIO_BLK_F_CONFIG_WCE 11 /* the driver writes the config: ours is read-only */
#define VIRTIO_BLK_F_MQ		12 /* one queue is all popek hands over */
#define VIRTIO_BLK_S_IOERR	1

/* struct virtio_blk_config up to write_zeroes_may_unmap and its padding,
 * all that Linux 6.1 and QEMU 7.2 know; popek passes it on unread. */
#define BLK_CONFIG_LEN 60

struct vhost_blk {
	struct vhost_dev d; /* first: the registry's hooks see the transport */
	uint8_t config[BLK_CONFIG_LEN];
};

/* The status byte is the last the driver gave the device to write. */
static int64_t fail_request(struct virtio_pci *vp, struct vq_chain *c)
{
	if (c->write_len == 0)
		return -1;
	uint8_t st = VIRTIO_BLK_S_IOERR;
	return (int64_t)vq_chain_write(c, c->write_len - 1, &st, 1);
}

/* QEMU's option syntax: a comma inside a value is written twice. */
static int qemu_opt(char *buf, size_t len, const char *prefix, const char *val)
{
	size_t n = (size_t)snprintf(buf, len, "%s", prefix);
	for (; *val && n + 2 < len; val++) {
		if (*val == ',')
			buf[n++] = ',';
		buf[n++] = *val;
	}
	buf[n] = 0;
	return *val ? -1 : 0;
}

/* Start qemu-storage-daemon for the image and connect to it: 0, or the
 * exit code with err set. */
static int spawn_qsd(struct vhost_blk *b, const struct disk_config *dc, char *err, size_t errlen)
{
	if (!strcmp(dc->format, "luks")) {
		snprintf(
		    err, errlen,
		    "--disk %s: a LUKS image needs its passphrase: start qemu-storage-daemon "
		    "yourself (--object secret, --blockdev driver=luks,key-secret=..., --export "
		    "type=vhost-user-blk) and use --disk socket=PATH",
		    dc->path);
		return EXIT_CODE_USAGE;
	}
	if (access(QSD, X_OK) < 0) {
		snprintf(
		    err, errlen,
		    "--disk %s: a %s image is served by %s, which is missing (install Debian's "
		    "qemu-system-common, or convert it: qemu-img convert -O raw)",
		    dc->path, dc->format, QSD);
		return EXIT_CODE_USAGE;
	}
	if (vhost_dev_socket_dir(&b->d, "blk", err, errlen) < 0)
		return EXIT_CODE_HOST;
	const char *ro = dc->ro ? ",read-only=on" : "";
	char file[4200], fmt[128], export[256];
	if (qemu_opt(file, sizeof(file) - 20, "driver=file,node-name=file0,filename=", dc->path)) {
		snprintf(err, errlen, "--disk %s: path too long", dc->path);
		return EXIT_CODE_USAGE;
	}
	strcat(file, ro);
	snprintf(fmt, sizeof(fmt), "driver=%s,node-name=disk0,file=file0%s", dc->format, ro);
	snprintf(export, sizeof(export),
		 "type=vhost-user-blk,id=export0,node-name=disk0,addr.type=unix,addr.path=%s,"
		 "writable=%s",
		 b->d.sock, dc->ro ? "off" : "on");
	char *argv[] = {QSD, "--blockdev", file, "--blockdev", fmt, "--export", export, NULL};
	return vhost_dev_connect(&b->d, b->d.sock, argv, NULL, NULL, BLK_QUEUES, err, errlen) < 0
		   ? EXIT_CODE_HOST
		   : 0;
}

static void blk_destroy(void *dev)
{
	struct vhost_blk *b = dev;
	if (!b)
		return;
	vhost_dev_destroy(&b->d);
	free(b);
}

/* The backend holds the image and the requests in flight: neither can be
 * saved here, so a snapshot would restore a disk behind the guest's back. */
static int blk_save(void *dev, void **buf, size_t *len)
{
	struct vhost_blk *b = dev;
	fprintf(stderr,
		"popek: snapshot refused: %s is served by a vhost-user backend, which holds its "
		"requests in flight; snapshot a VM whose disks are raw (qemu-img convert -O raw)\n",
		b->d.what);
	return -1;
}

static int blk_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		      char *err, size_t errlen)
{
	const struct disk_config *dc = &cfg->disk[i];
	struct vhost_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory creating vhost-user-blk");
		return -1;
	}
	vhost_dev_prepare(&b->d);
	*dev = b;
	bool own = dc->kind == DISK_IMAGE;
	snprintf(b->d.what, sizeof(b->d.what), "virtio-blk%d (%.60s)", i, dc->path);
	b->d.after_death = "every request to the disk fails with an I/O error";
	b->d.fail = fail_request;
	/* qemu-storage-daemon keeps nothing of a client but the rings, which
	 * popek follows (vhost_dev.h): a new one carries on where it stopped. */
	b->d.reconnect = true;
	int rc =
	    own ? spawn_qsd(b, dc, err, errlen)
		: vhost_dev_connect(&b->d, dc->path, NULL, NULL, NULL, BLK_QUEUES, err, errlen);
	if (rc)
		return own ? rc : EXIT_CODE_USAGE;
	if (vhost_user_get_config(&b->d.vu, b->config, sizeof(b->config)) < 0) {
		snprintf(err, errlen,
			 "%s: the backend does not give the disk's size (it needs the vhost-user "
			 "CONFIG protocol feature, as qemu-storage-daemon's vhost-user-blk export "
			 "has)",
			 b->d.what);
		return EXIT_CODE_USAGE;
	}
	struct virtio_pci_info info = {
	    .name = "vhost-user-blk",
	    .type = VIRTIO_ID_BLOCK,
	    .class_code = 0x018000, /* mass storage, other */
	    .nqueues = BLK_QUEUES,
	    .queue_size = BLK_QUEUE_SIZE,
	    .features = b->d.vu.features & VHOST_DEV_BITS_MASK &
			~(1ull << VIRTIO_BLK_F_CONFIG_WCE | 1ull << VIRTIO_BLK_F_MQ),
	    .config = b->config,
	    .config_len = sizeof(b->config),
	};
	return vhost_dev_init(&b->d, &info, s, err, errlen);
}

const struct device_type vhost_user_blk_device = {
    .name = "virtio-blk", .create = blk_create, .save = blk_save, .destroy = blk_destroy};
