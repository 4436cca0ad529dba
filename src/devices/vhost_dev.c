#include "devices/vhost_dev.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The keeper waits 5 s for a backend it started to listen: wait longer. */
#define CONNECT_WAIT_MS 10000

#define CANNOT_RESUME (-2) /* no backend can carry on: popek lost count, say */

/* The rings go to the backend: fresh (restore false), or with what the last
 * backend left in flight. 0, -1 (the backend failed), or CANNOT_RESUME. */
static int start_backend(struct vhost_dev *d, bool restore)
{
	struct virtio_pci *vp = &d->vp;
	uint16_t base[VIRTIO_MAX_QUEUES] = {0};
	for (unsigned q = 0; q < vp->info.nqueues; q++) {
		struct virtq *vq = &vp->vq[q];
		if (!vq->enabled)
			continue;
		if (!restore) {
			vhost_track_start(&d->track[q], vq);
			base[q] = vq->last_avail;
		} else if (vhost_track_restore(&d->track[q], vq, &base[q]) < 0) {
			return CANNOT_RESUME;
		}
	}
	if (vhost_user_setup(&d->vu, vp->driver_features, vp->mem) < 0)
		return -1;
	for (unsigned q = 0; q < vp->info.nqueues; q++) {
		const struct virtq *vq = &vp->vq[q];
		struct vhost_vring r = {vq->size, vq->desc_gpa, vq->avail_gpa, vq->used_gpa,
					base[q]};
		if (vq->enabled && vhost_user_start_queue(&d->vu, q, &r, vp->mem) < 0)
			return -1;
	}
	d->running = true;
	return 0;
}

/* For good: the device answers every request with its error from now on. */
static void backend_failed(struct vhost_dev *d)
{
	fprintf(stderr,
		"popek: %s: the vhost-user backend is gone; %s until the VM restarts with a "
		"running backend\n",
		d->what, d->after_death);
	d->running = d->waiting = false;
	d->dead = true;
	/* Take the rings back where the backend left them: the requests in
	 * flight are put where popek reads next, as for a new backend. If popek
	 * lost count, it assumes the backend answered in order (a request it
	 * finished out of order may then be answered twice; either way the
	 * driver sees errors, not a hang). */
	for (unsigned q = 0; q < d->vp.info.nqueues; q++) {
		struct virtq *vq = &d->vp.vq[q];
		if (!vq->enabled)
			continue;
		uint16_t idx;
		if (vhost_track_restore(&d->track[q], vq, &idx) < 0)
			memcpy(&idx, vq->used + 2, sizeof(idx));
		vq->used_idx = vq->last_avail = idx;
		virtio_pci_process(&d->vp, q, d->fail);
	}
}

/* The connection broke: wait for a new backend if the device can, or fail.
 * Called with the transport's lock held, from any thread. */
static void backend_lost(struct vhost_dev *d)
{
	if (d->sock_w)
		loop_watch_events(d->sock_w, 0);
	for (unsigned q = 0; q < d->vp.info.nqueues; q++)
		if (d->running)
			vhost_track_update(&d->track[q], &d->vp.vq[q]);
	vhost_user_hangup(&d->vu);
	if (d->reconnect && !d->waiting && vhost_backend_redial(&d->backend) == 0) {
		fprintf(stderr,
			"popek: %s: the vhost-user backend is gone; its requests wait while %s\n",
			d->what,
			d->backend.own ? "popek restarts it" : "popek waits for it at its socket");
		/* A loss while handing the rings over keeps them to hand over. */
		d->had_rings |= d->running;
		d->running = false;
		d->waiting = true;
		return;
	}
	backend_failed(d);
}

static void notify(struct virtio_pci *vp, unsigned q)
{
	struct vhost_dev *d = vp->dev;
	if (d->dead) {
		virtio_pci_process(vp, q, d->fail);
		return;
	}
	if (d->waiting) {
		/* the request waits in the ring for the next backend */
		vhost_track_update(&d->track[q], &d->vp.vq[q]);
		return;
	}
	if (!d->running && start_backend(d, false) < 0) {
		backend_lost(d);
		return;
	}
	vhost_track_update(&d->track[q], &d->vp.vq[q]);
	vhost_user_kick(&d->vu, q);
}

static void reset(struct virtio_pci *vp)
{
	struct vhost_dev *d = vp->dev;
	if (d->running && vhost_user_stop(&d->vu) < 0)
		backend_lost(d);
	d->running = d->had_rings = false;
	/* The record is of rings that are no more, until the next handover. */
	for (unsigned q = 0; q < VHOST_USER_MAX_QUEUES; q++)
		d->track[q].lost = true;
}

static const struct virtio_dev_ops vhost_ops = {.queue_notify = notify, .reset = reset};

/* The backend signalled used buffers on a queue: interrupt the driver. The
 * backend wrote them into RAM itself; the record of the rings says where,
 * unless it lost count. */
static void called(void *ctx, unsigned ready)
{
	struct vhost_call *c = ctx;
	uint64_t n;
	if (read(c->d->vu.call[c->q], &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&c->d->vp.lock);
	if (virtio_pci_live(&c->d->vp)) {
		vhost_track_update(&c->d->track[c->q], &c->d->vp.vq[c->q]);
		if (c->d->track[c->q].lost)
			guest_mem_written_somewhere(c->d->vp.mem);
		virtio_pci_used(&c->d->vp, c->q);
	}
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
	if (d->vu.fd >= 0)
		backend_lost(d);
	else
		loop_watch_events(d->sock_w, 0);
	pthread_mutex_unlock(&d->vp.lock);
}

static int watch_socket(struct vhost_dev *d)
{
	if (d->sock_w)
		loop_unwatch(d->sock_w);
	d->sock_w = loop_watch(d->loop, d->vu.fd, LOOP_IN, LOOP_DEVICE, sock_ready, d);
	return d->sock_w ? 0 : -1;
}

/* The keeper has a new connection (or gave up): on the loop thread. */
static void ctl_ready(void *ctx, unsigned ready)
{
	struct vhost_dev *d = ctx;
	char err[160];
	pthread_mutex_lock(&d->vp.lock);
	int fd = vhost_backend_take(&d->backend, 0, err, sizeof(err)); /* it is there */
	if (fd < 0) {
		/* The keeper is gone or gave up: nothing more will come. */
		loop_watch_events(d->ctl_w, 0);
		if (d->waiting) {
			fprintf(stderr, "popek: %s: no new backend: %s\n", d->what, err);
			backend_failed(d);
		}
	} else if (!d->waiting) {
		close(fd); /* not asked for */
	} else {
		d->waiting = false;
		/* The driver keeps the features it accepted: the new backend must
		 * offer them all. */
		int rc = vhost_user_attach(&d->vu, fd) < 0 || watch_socket(d) < 0 ? -1
			 : d->vp.driver_features & ~d->vu.features & VHOST_DEV_BITS_MASK
			     ? CANNOT_RESUME
			 : d->had_rings ? start_backend(d, true)
					: 0;
		if (rc == CANNOT_RESUME) {
			/* No backend can carry on: fail for good. */
			fprintf(
			    stderr,
			    "popek: %s: the new backend cannot take over (it lacks features the "
			    "driver uses, or popek lost count of the requests in flight)\n",
			    d->what);
			vhost_user_hangup(&d->vu);
			backend_failed(d);
		} else if (rc < 0) {
			fprintf(stderr,
				"popek: %s: the new backend hung up or broke the protocol\n",
				d->what);
			backend_lost(d);
		} else {
			fprintf(stderr, "popek: %s: reconnected to the vhost-user backend\n",
				d->what);
			for (unsigned q = 0; d->running && q < d->vp.info.nqueues; q++)
				vhost_user_kick(&d->vu, q);
		}
	}
	pthread_mutex_unlock(&d->vp.lock);
}

void vhost_dev_prepare(struct vhost_dev *d)
{
	vhost_user_init(&d->vu, 0);
	d->backend.ctl_fd = d->backend.done_fd = -1;
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

int vhost_dev_connect(struct vhost_dev *d, const char *path, char *const argv[],
		      int (*setup)(void *arg), void *arg, unsigned nqueues, char *err,
		      size_t errlen)
{
	char why[160];
	if (vhost_user_init(&d->vu, nqueues) < 0) {
		snprintf(err, errlen, "%s: cannot create eventfds: %s", d->what, strerror(errno));
		return -1;
	}
	if (vhost_backend_start(&d->backend, path, argv, setup, arg, err, errlen) < 0) {
		if (d->dir[0])
			rmdir(d->dir);
		return -1;
	}
	d->dir[0] = 0; /* the keeper removes it */
	int fd = vhost_backend_take(&d->backend, CONNECT_WAIT_MS, why, sizeof(why));
	if (fd < 0 && argv)
		snprintf(err, errlen, "%s: %s", d->what, why);
	else if (fd < 0)
		snprintf(err, errlen,
			 "vhost-user: cannot connect to %s: %s (is the backend running and "
			 "listening there?)",
			 path, why);
	else if (vhost_user_attach(&d->vu, fd) < 0)
		snprintf(err, errlen, "vhost-user: the backend at %s broke the protocol or hung up",
			 path);
	return d->vu.fd >= 0 ? 0 : -1;
}

int vhost_dev_init(struct vhost_dev *d, struct virtio_pci_info *info, const struct dev_services *s,
		   char *err, size_t errlen)
{
	info->ops = &vhost_ops;
	d->loop = s->loop;
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
	if (d->reconnect) {
		d->ctl_w =
		    loop_watch(s->loop, d->backend.ctl_fd, LOOP_IN, LOOP_DEVICE, ctl_ready, d);
		if (!d->ctl_w)
			goto nowatch;
	}
	if (watch_socket(d) == 0)
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
	if (d->ctl_w)
		loop_unwatch(d->ctl_w);
	if (d->vp.dev)
		virtio_pci_destroy(&d->vp);
	vhost_user_close(&d->vu);
	if (d->dir[0])
		rmdir(d->dir);
	vhost_backend_stop(&d->backend);
}
