/* What popek knows of a vhost-user queue's requests besides the backend, so
 * that a new backend can be given exactly those in flight — what
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD would give, which qemu-storage-daemon
 * 7.2 does not offer (docs/vhost-user.md). On every kick and every call
 * popek reads the rings' new entries and counts, per head, postings minus
 * completions. */
#ifndef POPEK_VHOST_TRACK_H
#define POPEK_VHOST_TRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtqueue.h"

struct vhost_track {
	uint16_t avail, used;	    /* the next ring positions not looked at */
	bool lost;		    /* more went by unseen than the ring holds */
	uint8_t count[VQ_MAX_SIZE]; /* per head: postings minus completions */
	uint32_t seq[VQ_MAX_SIZE];  /* per head: when it was last posted */
	uint32_t next_seq;
};

/* The backend takes vq's rings from the avail position vq->last_avail on. */
void vhost_track_start(struct vhost_track *t, const struct virtq *vq);
/* Take in what changed in the rings since the last look; the buffers of the
 * requests posted and completed since are reported written
 * (virtq_chain_dirty). */
void vhost_track_update(struct vhost_track *t, const struct virtq *vq);
/* Put the requests in flight, oldest first, in the avail slots from the
 * used index on, where a new backend (or popek) starts reading: *base. -1
 * if popek lost count or the rings disagree with the count. */
int vhost_track_restore(struct vhost_track *t, struct virtq *vq, uint16_t *base);

#endif
