#include "devices/vhost_dev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SOCKET_WAIT_MS 5000

static void backend_failed(struct vhost_dev *d)
{
	fprintf(stderr,
		"popek: %s: the vhost-user backend is gone; %s until the VM restarts with a "
		"running backend\n",
		d->what, d->after_death);
	vhost_user_close(&d->vu);
	d->running = false;
	d->dead = true;
	/* Take the rings back where the backend left them: requests it took and
	 * never answered are answered now, assuming it answered in order (a
	 * request it finished out of order may be answered twice; either way
	 * the driver sees errors, not a hang). */
	for (unsigned q = 0; q < d->vp.info.nqueues; q++) {
		struct virtq *vq = &d->vp.vq[q];
		if (!vq->enabled)
			continue;
		uint16_t idx;
		memcpy(&idx, vq->used + 2, sizeof(idx));
		vq->used_idx = vq->last_avail = idx;
		virtio_pci_process(&d->vp, q, d->fail);
	}
}

static int start_backend(struct vhost_dev *d)
{
	struct virtio_pci *vp = &d->vp;
	if (vhost_user_setup(&d->vu, vp->driver_features, vp->mem) < 0)
		return -1;
	for (unsigned q = 0; q < vp->info.nqueues; q++) {
		const struct virtq *vq = &vp->vq[q];
		struct vhost_vring r = {vq->size, vq->desc_gpa, vq->avail_gpa, vq->used_gpa,
					vq->last_avail};
		if (vq->enabled && vhost_user_start_queue(&d->vu, q, &r, vp->mem) < 0)
			return -1;
	}
	d->running = true;
	return 0;
}

static void notify(struct virtio_pci *vp, unsigned q)
{
	struct vhost_dev *d = vp->dev;
	if (d->dead) {
		virtio_pci_process(vp, q, d->fail);
		return;
	}
	if (!d->running && start_backend(d) < 0) {
		backend_failed(d);
		return;
	}
	vhost_user_kick(&d->vu, q);
}

static void reset(struct virtio_pci *vp)
{
	struct vhost_dev *d = vp->dev;
	if (d->running && vhost_user_stop(&d->vu) < 0)
		backend_failed(d);
	d->running = false;
}

static const struct virtio_dev_ops vhost_ops = {.queue_notify = notify, .reset = reset};

/* The backend signalled used buffers on a queue: interrupt the driver. */
static void called(void *ctx, unsigned ready)
{
	struct vhost_call *c = ctx;
	uint64_t n;
	if (read(c->d->vu.call[c->q], &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&c->d->vp.lock);
	if (virtio_pci_live(&c->d->vp))
		virtio_pci_used(&c->d->vp, c->q);
	pthread_mutex_unlock(&c->d->vp.lock);
}

/* The backend never speaks unasked (replies are read under the lock): the
 * socket turning readable means it hung up or broke the protocol. */
static void sock_ready(void *ctx, unsigned ready)
{
	struct vhost_dev *d = ctx;
	char b;
	pthread_mutex_lock(&d->vp.lock);
	if (d->vu.fd >= 0 && recv(d->vu.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
	    (errno == EAGAIN || errno == EINTR)) {
		pthread_mutex_unlock(&d->vp.lock);
		return;
	}
	loop_watch_events(d->sock_w, 0);
	if (d->vu.fd >= 0)
		backend_failed(d);
	pthread_mutex_unlock(&d->vp.lock);
}

void vhost_dev_prepare(struct vhost_dev *d)
{
	d->vu.fd = -1;
	for (unsigned q = 0; q < VHOST_USER_MAX_QUEUES; q++)
		d->vu.kick[q] = d->vu.call[q] = -1;
	d->backend.stop_fd = d->backend.done_fd = -1;
}

int vhost_dev_socket_dir(struct vhost_dev *d, const char *name, char *err, size_t errlen)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/popek-%.8s-XXXXXX", name);
	if (!mkdtemp(d->dir)) {
		snprintf(err, errlen, "%s: cannot create a socket folder: %s", d->what,
			 strerror(errno));
		d->dir[0] = 0;
		return -1;
	}
	snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
	return 0;
}

static void remove_socket(struct vhost_dev *d)
{
	if (d->dir[0]) {
		unlink(d->sock);
		rmdir(d->dir);
		d->dir[0] = 0;
	}
}

int vhost_dev_connect(struct vhost_dev *d, const char *path, unsigned nqueues, char *err,
		      size_t errlen)
{
	int rc = -1;
	for (int waited = 0;; waited += 10) {
		if (vhost_user_connect(&d->vu, path, nqueues, err, errlen) == 0) {
			rc = 0;
			break;
		}
		if (d->backend.stop_fd < 0 || waited >= SOCKET_WAIT_MS)
			break; /* the user's backend is listening or not */
		if (vhost_backend_exited(&d->backend)) {
			snprintf(err, errlen,
				 "%s: %s exited before it listened (its messages are above)",
				 d->what, d->backend.name);
			break;
		}
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	/* Connected (or not): the path has done its job. */
	remove_socket(d);
	return rc;
}

int vhost_dev_init(struct vhost_dev *d, struct virtio_pci_info *info, const struct dev_services *s,
		   char *err, size_t errlen)
{
	info->ops = &vhost_ops;
	struct virtio_env env = virtio_env_of(s);
	if (virtio_pci_init(&d->vp, info, d, &env, err, errlen) < 0)
		return -1;
	for (unsigned q = 0; q < info->nqueues; q++) {
		d->call[q] = (struct vhost_call){d, q, NULL};
		d->call[q].w =
		    loop_watch(s->loop, d->vu.call[q], LOOP_IN, LOOP_DEVICE, called, &d->call[q]);
		if (!d->call[q].w)
			goto nowatch;
	}
	d->sock_w = loop_watch(s->loop, d->vu.fd, LOOP_IN, LOOP_DEVICE, sock_ready, d);
	if (d->sock_w)
		return 0;
nowatch:
	snprintf(err, errlen, "%s: cannot watch the backend's eventfds", d->what);
	return -1;
}

void vhost_dev_destroy(struct vhost_dev *d)
{
	for (unsigned q = 0; q < VHOST_USER_MAX_QUEUES; q++)
		if (d->call[q].w)
			loop_unwatch(d->call[q].w);
	if (d->sock_w)
		loop_unwatch(d->sock_w);
	if (d->vp.dev)
		virtio_pci_destroy(&d->vp);
	vhost_user_close(&d->vu);
	remove_socket(d);
	vhost_backend_stop(&d->backend);
}
