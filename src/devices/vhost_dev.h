/* A virtio-pci device whose queues a vhost-user backend serves (virtio-fs,
 * vhost-user-blk): the transport talks to the driver, the backend reads and
 * answers the rings in shared RAM. popek hands the rings over when the
 * driver is ready, forwards kicks to the backend's eventfds and turns its
 * call eventfds into interrupts on the VM's loop. When the backend dies a
 * device that can (vhost-user-blk) waits for a new one and hands it the
 * rings with the requests in flight; otherwise, or if none comes, the device
 * takes the rings back and answers every request itself with the device's
 * own error. */
#ifndef POPEK_VHOST_DEV_H
#define POPEK_VHOST_DEV_H

#include "devices/vhost_track.h"
#include "devices/virtio_pci.h"
#include "vhost/backend.h"
#include "vhost/vhost_user.h"

/* Feature bits a backend may offer besides the transport's (0-23). */
#define VHOST_DEV_BITS_MASK 0xffffffull

struct vhost_dev;

struct vhost_call {
	struct vhost_dev *d;
	unsigned q;
	struct loop_watch *w;
};

struct vhost_dev {
	struct virtio_pci vp; /* first: the registry's hooks see the transport */
	struct vhost_user vu;
	struct vhost_backend backend; /* the process popek started, if it did */
	struct vhost_call call[VHOST_USER_MAX_QUEUES];
	struct loop_watch *sock_w;
	struct loop *loop;
	struct loop_watch *ctl_w; /* the keeper's connections (reconnect only) */
	bool reconnect;		  /* the device survives a new backend (set before init) */
	bool running;		  /* the backend has the rings */
	bool waiting;		  /* the backend is gone, a new one is awaited */
	bool had_rings;		  /* ... and the last one had the rings */
	bool dead;		  /* the backend is gone: fail answers every request */
	struct vhost_track track[VHOST_USER_MAX_QUEUES];
	char dir[32], sock[64];	 /* where popek's backend listens until connected */
	char what[96];		 /* "virtio-fs TAG", for messages */
	const char *after_death; /* what the guest sees then, for the message */
	virtio_handler fail;
};

/* Before anything else (nothing to close yet). */
void vhost_dev_prepare(struct vhost_dev *d);
/* Make a private socket folder /tmp/popek-NAME-XXXXXX for a backend popek
 * starts: d->sock is its socket path. 0, or -1 with err set. */
int vhost_dev_socket_dir(struct vhost_dev *d, const char *name, char *err, size_t errlen);
/* Start the backend's keeper (devices/backend.h; argv NULL: the user's
 * backend at path) and connect through it. 0, or -1 with err set. */
int vhost_dev_connect(struct vhost_dev *d, const char *path, char *const argv[],
		      int (*setup)(void *arg), void *arg, unsigned nqueues, char *err,
		      size_t errlen);
/* Plug the transport in (info->ops is the vhost device's own) and watch the
 * backend. 0, or -1 with err set. */
int vhost_dev_init(struct vhost_dev *d, struct virtio_pci_info *info, const struct dev_services *s,
		   char *err, size_t errlen);
/* Unplug, disconnect and stop the backend popek started; d is not freed. */
void vhost_dev_destroy(struct vhost_dev *d);

#endif
