/* virtio-fs as a vhost-user device: the transport (virtio_pci) talks to the
 * driver, virtiofsd serves the queues. popek hands the rings over when the
 * driver is ready, forwards kicks to the backend's eventfds and turns the
 * backend's call eventfds into MSI-X interrupts on the VM's loop. */
#include "devices/virtio_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio_pci.h"
#include "vhost/vhost_user.h"

#define VIRTIO_ID_FS   26
#define FS_QUEUES      2 /* hiprio + one request queue */
#define FS_QUEUE_SIZE  128
#define VIRTIOFSD      "/usr/lib/qemu/virtiofsd"
#define SOCKET_WAIT_MS 5000
/* Feature bits the transport implements besides the device's own (0-23). */
#define DEVICE_BITS_MASK 0xffffffull

struct fs_config_space {
	uint8_t tag[FS_TAG_MAX];
	uint32_t num_request_queues;
} __attribute__((packed));

struct virtio_fs;

struct fs_call {
	struct virtio_fs *fs;
	unsigned q;
	struct loop_watch *w;
};

struct virtio_fs {
	struct virtio_pci vp; /* first: the registry's save/load hooks see the transport */
	struct vhost_user vu;
	struct fs_config_space cfg;
	struct fs_call call[FS_QUEUES];
	struct loop_watch *sock_w;
	bool running; /* the backend has the rings */
	bool dead;    /* the backend is gone: popek answers requests with errors */
	pid_t daemon; /* the virtiofsd popek started, or 0 */
	char dir[32], sock[64];
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

static void backend_failed(struct virtio_fs *fs)
{
	fprintf(stderr,
		"popek: virtio-fs %.36s: the vhost-user backend is gone; the share "
		"fails with ENOTCONN until the VM restarts with a running backend\n",
		(const char *)fs->cfg.tag);
	vhost_user_close(&fs->vu);
	fs->running = false;
	fs->dead = true;
	/* Take the rings back where the backend left them: requests it took and
	 * never answered are answered now (its replies are in order per queue). */
	for (unsigned q = 0; q < FS_QUEUES; q++) {
		struct virtq *vq = &fs->vp.vq[q];
		if (!vq->enabled)
			continue;
		uint16_t idx;
		memcpy(&idx, vq->used + 2, sizeof(idx));
		vq->used_idx = vq->last_avail = idx;
		virtio_pci_process(&fs->vp, q, fail_request);
	}
}

static int start_backend(struct virtio_fs *fs)
{
	struct virtio_pci *vp = &fs->vp;
	if (vhost_user_setup(&fs->vu, vp->driver_features, vp->mem) < 0)
		return -1;
	for (unsigned q = 0; q < FS_QUEUES; q++) {
		const struct virtq *vq = &vp->vq[q];
		struct vhost_vring r = {vq->size, vq->desc_gpa, vq->avail_gpa, vq->used_gpa,
					vq->last_avail};
		if (vq->enabled && vhost_user_start_queue(&fs->vu, q, &r, vp->mem) < 0)
			return -1;
	}
	fs->running = true;
	return 0;
}

static void fs_notify(struct virtio_pci *vp, unsigned q)
{
	struct virtio_fs *fs = vp->dev;
	if (fs->dead) {
		virtio_pci_process(vp, q, fail_request);
		return;
	}
	if (!fs->running && start_backend(fs) < 0) {
		backend_failed(fs);
		return;
	}
	vhost_user_kick(&fs->vu, q);
}

static void fs_reset(struct virtio_pci *vp)
{
	struct virtio_fs *fs = vp->dev;
	if (fs->running && vhost_user_stop(&fs->vu) < 0)
		backend_failed(fs);
	fs->running = false;
}

static const struct virtio_dev_ops fs_ops = {.queue_notify = fs_notify, .reset = fs_reset};

/* The backend signalled used buffers on a queue: interrupt the driver. */
static void called(void *ctx, unsigned ready)
{
	struct fs_call *c = ctx;
	uint64_t n;
	if (read(c->fs->vu.call[c->q], &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&c->fs->vp.lock);
	if (virtio_pci_live(&c->fs->vp))
		virtio_pci_used(&c->fs->vp, c->q);
	pthread_mutex_unlock(&c->fs->vp.lock);
}

/* The backend never speaks unasked (replies are read under the lock): the
 * socket turning readable means it hung up or broke the protocol. */
static void sock_ready(void *ctx, unsigned ready)
{
	struct virtio_fs *fs = ctx;
	char b;
	pthread_mutex_lock(&fs->vp.lock);
	if (fs->vu.fd >= 0 && recv(fs->vu.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	    (errno == EAGAIN || errno == EINTR)) {
		pthread_mutex_unlock(&fs->vp.lock);
		return;
	}
	loop_watch_events(fs->sock_w, 0);
	if (fs->vu.fd >= 0)
		backend_failed(fs);
	pthread_mutex_unlock(&fs->vp.lock);
}

/* virtiofsd for dir on fs->sock; ro shares are mounted read-only in a mount
 * namespace of its own, so the kernel refuses writes whatever the guest sends. */
static int spawn_virtiofsd(struct virtio_fs *fs, const struct fs_config *f, char *err,
			   size_t errlen)
{
	if (access(VIRTIOFSD, X_OK) < 0) {
		snprintf(err, errlen,
			 "--fs %s: %s is missing (install Debian's qemu-system-common, or start "
			 "a backend yourself and use --fs socket=PATH,tag=TAG)",
			 f->dir, VIRTIOFSD);
		return -1;
	}
	strcpy(fs->dir, "/tmp/popek-fs-XXXXXX");
	if (!mkdtemp(fs->dir)) {
		snprintf(err, errlen, "--fs: cannot create a socket folder: %s", strerror(errno));
		fs->dir[0] = 0;
		return -1;
	}
	snprintf(fs->sock, sizeof(fs->sock), "%s/sock", fs->dir);
	char sockopt[80], source[4200];
	snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", fs->sock);
	if (snprintf(source, sizeof(source), "source=%s", f->dir) >= (int)sizeof(source)) {
		snprintf(err, errlen, "--fs %s: path too long", f->dir);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "--fs: cannot start virtiofsd: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (f->ro &&
		    (unshare(CLONE_NEWNS) < 0 ||
		     mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		     mount(f->dir, f->dir, NULL, MS_BIND, NULL) < 0 ||
		     mount(NULL, f->dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)) {
			fprintf(stderr, "popek: --fs %s,ro: cannot mount it read-only: %s\n",
				f->dir, strerror(errno));
			_exit(127);
		}
		execl(VIRTIOFSD, VIRTIOFSD, sockopt, "-o", source, "-o", "cache=auto", "-o",
		      "log_level=warn", (char *)NULL);
		_exit(127);
	}
	fs->daemon = pid;
	return 0;
}

static void remove_socket(struct virtio_fs *fs)
{
	if (fs->dir[0]) {
		unlink(fs->sock);
		rmdir(fs->dir);
		fs->dir[0] = 0;
	}
}

/* Connect, giving a virtiofsd that is starting up time to listen. */
static int connect_backend(struct virtio_fs *fs, const char *path, char *err, size_t errlen)
{
	for (int waited = 0;; waited += 10) {
		if (vhost_user_connect(&fs->vu, path, FS_QUEUES, err, errlen) == 0)
			return 0;
		if (!fs->daemon)
			return -1; /* the user's backend: it is listening or not */
		if (waitpid(fs->daemon, NULL, WNOHANG) == fs->daemon) {
			snprintf(err, errlen,
				 "--fs: virtiofsd exited before it listened (its messages are "
				 "above); check that the folder exists");
			fs->daemon = 0;
			return -1;
		}
		if (waited >= SOCKET_WAIT_MS)
			return -1;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
}

static void fs_destroy(void *dev)
{
	struct virtio_fs *fs = dev;
	if (!fs)
		return;
	for (unsigned q = 0; q < FS_QUEUES; q++)
		if (fs->call[q].w)
			loop_unwatch(fs->call[q].w);
	if (fs->sock_w)
		loop_unwatch(fs->sock_w);
	if (fs->vp.dev)
		virtio_pci_destroy(&fs->vp);
	/* virtiofsd exits when its connection closes (and on our death:
	 * PDEATHSIG), so the jailed VMM needs neither kill nor unlink here. */
	vhost_user_close(&fs->vu);
	remove_socket(fs);
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
	fs->vu.fd = -1;
	for (unsigned q = 0; q < VHOST_USER_MAX_QUEUES; q++)
		fs->vu.kick[q] = fs->vu.call[q] = -1;
	*dev = fs;
	if (f->dir && spawn_virtiofsd(fs, f, err, errlen) < 0)
		return EXIT_CODE_USAGE;
	int rc = connect_backend(fs, f->dir ? fs->sock : f->socket, err, errlen);
	/* Connected (or not): the path has done its job. */
	remove_socket(fs);
	if (rc < 0)
		return f->dir ? EXIT_CODE_HOST : EXIT_CODE_USAGE;
	memcpy(fs->cfg.tag, f->tag, strlen(f->tag));
	fs->cfg.num_request_queues = FS_QUEUES - 1;
	struct virtio_pci_info info = {
	    .name = "virtio-fs",
	    .type = VIRTIO_ID_FS,
	    .class_code = 0x018000, /* mass storage, other */
	    .nqueues = FS_QUEUES,
	    .queue_size = FS_QUEUE_SIZE,
	    .features = fs->vu.features & DEVICE_BITS_MASK,
	    .ops = &fs_ops,
	    .config = &fs->cfg,
	    .config_len = sizeof(fs->cfg),
	};
	struct virtio_env env = virtio_env_of(s);
	if (virtio_pci_init(&fs->vp, &info, fs, &env, err, errlen) < 0)
		return -1;
	for (unsigned q = 0; q < FS_QUEUES; q++) {
		fs->call[q] = (struct fs_call){fs, q, NULL};
		fs->call[q].w =
		    loop_watch(s->loop, fs->vu.call[q], LOOP_IN, LOOP_DEVICE, called, &fs->call[q]);
		if (!fs->call[q].w)
			goto nowatch;
	}
	fs->sock_w = loop_watch(s->loop, fs->vu.fd, LOOP_IN, LOOP_DEVICE, sock_ready, fs);
	if (!fs->sock_w)
		goto nowatch;
	return 0;
nowatch:
	snprintf(err, errlen, "virtio-fs: cannot watch the backend's eventfds");
	return -1;
}

const struct device_type virtio_fs_device = {.name = "virtio-fs",
					     .numbered = true,
					     .count = fs_count,
					     .create = fs_create,
					     .save = fs_save,
					     .destroy = fs_destroy};
