/* virtio-fs as a vhost-user device (devices/vhost_dev.h) served by
 * virtiofsd: this file holds what is virtio-fs's own — the config space,
 * starting virtiofsd, and the FUSE errors once it is gone. */
#include "devices/virtio_fs.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "devices/vhost_dev.h"

#define VIRTIO_ID_FS  26
#define FS_QUEUES     2 /* hiprio + one request queue */
#define FS_QUEUE_SIZE 128
#define VIRTIOFSD     "/usr/lib/qemu/virtiofsd"

struct fs_config_space {
	uint8_t tag[FS_TAG_MAX];
	uint32_t num_request_queues;
} __attribute__((packed));

struct virtio_fs {
	struct vhost_dev d; /* first: the registry's hooks see the transport */
	struct fs_config_space cfg;
};

/* FUSE headers (linux/fuse.h): what a request starts with, what a reply is. */
struct fuse_in {
	uint32_t len, opcode;
	uint64_t unique;
};
struct fuse_out {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};
#define FUSE_FORGET	  2
#define FUSE_BATCH_FORGET 42
#define FUSE_ENOTCONN	  107

/* With the backend gone every request fails with ENOTCONN ("Transport
 * endpoint is not connected"), the way a FUSE mount whose daemon died does. */
static int64_t fail_request(struct virtio_pci *vp, struct vq_chain *c)
{
	struct fuse_in in;
	if (vq_chain_read(c, 0, &in, sizeof(in)) != sizeof(in) || in.opcode == FUSE_FORGET ||
	    in.opcode == FUSE_BATCH_FORGET)
		return 0; /* forgets get no reply */
	struct fuse_out out = {sizeof(out), -FUSE_ENOTCONN, in.unique};
	return (int64_t)vq_chain_write(c, 0, &out, sizeof(out));
}

/* A ro share is mounted read-only in virtiofsd's own mount namespace, so
 * the kernel refuses writes whatever the guest sends. */
static int mount_ro(void *arg)
{
	const char *dir = arg;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(dir, dir, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
		fprintf(stderr, "popek: --fs %s,ro: cannot mount it read-only: %s\n", dir,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Start virtiofsd for the folder and connect to it: 0, or the exit code
 * with err set. */
static int spawn_virtiofsd(struct virtio_fs *fs, const struct fs_config *f, char *err,
			   size_t errlen)
{
	if (access(VIRTIOFSD, X_OK) < 0) {
		snprintf(err, errlen,
			 "--fs %s: %s is missing (install Debian's qemu-system-common, or start "
			 "a backend yourself and use --fs socket=PATH,tag=TAG)",
			 f->dir, VIRTIOFSD);
		return EXIT_CODE_USAGE;
	}
	if (vhost_dev_socket_dir(&fs->d, "fs", err, errlen) < 0)
		return EXIT_CODE_HOST;
	char sockopt[80], source[4200];
	snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", fs->d.sock);
	if (snprintf(source, sizeof(source), "source=%s", f->dir) >= (int)sizeof(source)) {
		snprintf(err, errlen, "--fs %s: path too long", f->dir);
		return EXIT_CODE_USAGE;
	}
	char *argv[] = {VIRTIOFSD, sockopt,	     "-o", source, "-o", "cache=auto",
			"-o",	   "log_level=warn", NULL};
	return vhost_dev_connect(&fs->d, fs->d.sock, argv, f->ro ? mount_ro : NULL, (void *)f->dir,
				 FS_QUEUES, err, errlen) < 0
		   ? EXIT_CODE_HOST
		   : 0;
}

static void fs_destroy(void *dev)
{
	struct virtio_fs *fs = dev;
	if (!fs)
		return;
	vhost_dev_destroy(&fs->d);
	free(fs);
}

/* The share's state (open files, the rings' progress) lives in virtiofsd,
 * which cannot hand it over: refuse rather than write a snapshot that
 * would restore a share the guest believes is open. */
static int fs_save(void *dev, void **buf, size_t *len)
{
	fprintf(stderr, "popek: snapshot refused: virtio-fs shares (--fs) live in virtiofsd and "
			"cannot be saved; snapshot the VM without --fs\n");
	return -1;
}

static int fs_count(const struct vm_config *cfg)
{
	return cfg->nfs;
}

static int fs_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		     char *err, size_t errlen)
{
	const struct fs_config *f = &cfg->fs[i];
	struct virtio_fs *fs = calloc(1, sizeof(*fs));
	if (!fs) {
		snprintf(err, errlen, "out of memory creating virtio-fs");
		return -1;
	}
	vhost_dev_prepare(&fs->d);
	*dev = fs;
	snprintf(fs->d.what, sizeof(fs->d.what), "virtio-fs %s", f->tag);
	fs->d.after_death = "the share fails with ENOTCONN";
	fs->d.fail = fail_request;
	/* No reconnect: a new virtiofsd knows neither the FUSE session (it
	 * refuses every request before FUSE_INIT, which the guest sent once)
	 * nor the guest's node ids and open files. */
	int rc =
	    f->dir ? spawn_virtiofsd(fs, f, err, errlen)
		   : vhost_dev_connect(&fs->d, f->socket, NULL, NULL, NULL, FS_QUEUES, err, errlen);
	if (rc)
		return f->dir ? rc : EXIT_CODE_USAGE;
	memcpy(fs->cfg.tag, f->tag, strlen(f->tag));
	fs->cfg.num_request_queues = FS_QUEUES - 1;
	struct virtio_pci_info info = {
	    .name = "virtio-fs",
	    .type = VIRTIO_ID_FS,
	    .class_code = 0x018000, /* mass storage, other */
	    .nqueues = FS_QUEUES,
	    .queue_size = FS_QUEUE_SIZE,
	    .features = fs->d.vu.features & VHOST_DEV_BITS_MASK,
	    .config = &fs->cfg,
	    .config_len = sizeof(fs->cfg),
	};
	return vhost_dev_init(&fs->d, &info, s, err, errlen);
}

const struct device_type virtio_fs_device = {.name = "virtio-fs",
					     .numbered = true,
					     .count = fs_count,
					     .create = fs_create,
					     .save = fs_save,
					     .destroy = fs_destroy};
