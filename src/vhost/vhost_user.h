/* A vhost-user frontend (docs/vhost-user.md): popek drives a device whose
 * queues an external backend (virtiofsd, qemu-storage-daemon) serves. Guest
 * RAM is shared by memfd, kicks and interrupts travel over eventfds. The
 * backend is untrusted: every reply is checked, and a dead or misbehaving
 * backend makes the calls below fail, never the VMM. */
#ifndef POPEK_VHOST_USER_H
#define POPEK_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/memory.h"

#define VHOST_USER_MAX_QUEUES 4
#define VHOST_USER_CONFIG_MAX 256 /* the spec's limit on a device config */

struct vhost_user {
	int fd;			    /* the unix socket; -1 while there is no backend */
	uint64_t features;	    /* what the backend offers (GET_FEATURES) */
	uint64_t protocol_features; /* negotiated */
	int kick[VHOST_USER_MAX_QUEUES], call[VHOST_USER_MAX_QUEUES];
	bool started[VHOST_USER_MAX_QUEUES];
	unsigned nqueues;
};

/* One vring as the driver laid it out (guest-physical addresses). */
struct vhost_vring {
	uint16_t num;
	uint64_t desc, avail, used;
	uint16_t base; /* first available index the backend looks at */
};

/* No backend yet: make nqueues kick/call eventfd pairs, which stay the
 * same across backends (the loop watches them). 0 or -1. */
int vhost_user_init(struct vhost_user *v, unsigned nqueues);
/* Take over fd, a connection to a backend (a new one replaces the last):
 * take ownership, read its features and agree on protocol features. 0, or
 * -1 with fd closed. */
int vhost_user_attach(struct vhost_user *v, int fd);
/* Drop the connection; the eventfds stay for the next backend. */
void vhost_user_hangup(struct vhost_user *v);
void vhost_user_close(struct vhost_user *v);

/* Agree on features (the driver's, device-specific bits and ring layout) and
 * share guest RAM. 0 or -1. */
int vhost_user_setup(struct vhost_user *v, uint64_t features, const struct guest_mem *mem);
/* Hand queue q to the backend and enable it. 0 or -1. */
int vhost_user_start_queue(struct vhost_user *v, unsigned q, const struct vhost_vring *r,
			   const struct guest_mem *mem);
/* Stop every started queue (device reset). 0 or -1. */
int vhost_user_stop(struct vhost_user *v);
/* Read the first len bytes of the device's config space from the backend
 * (when it offers the CONFIG protocol feature). 0, or -1. */
int vhost_user_get_config(struct vhost_user *v, void *buf, uint32_t len);
/* Tell the backend queue q has new buffers. */
void vhost_user_kick(struct vhost_user *v, unsigned q);

/* The reply parser, exposed for the fuzz target: check a reply header and
 * payload of len bytes against the request it answers and the payload size
 * it must have. Returns 0, or -1 if the backend broke the protocol. */
int vhost_user_check_reply(const void *buf, size_t len, uint32_t request, uint32_t size);

#endif
