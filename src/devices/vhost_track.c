#include "devices/vhost_track.h"

#include <string.h>

static uint16_t ring_idx(const uint8_t *ring)
{
	uint16_t idx;
	memcpy(&idx, ring + 2, sizeof(idx));
	__atomic_thread_fence(__ATOMIC_ACQUIRE); /* the entries after the index */
	return idx;
}

void vhost_track_start(struct vhost_track *t, const struct virtq *vq)
{
	memset(t, 0, sizeof(*t));
	t->avail = vq->last_avail;
	t->used = ring_idx(vq->used);
}

/* The used index is read first: a completion seen was then posted before the
 * avail index is read, so it is counted before it is taken away. Counting
 * (not setting) keeps a head answered and posted again between two looks in
 * flight. */
void vhost_track_update(struct vhost_track *t, const struct virtq *vq)
{
	if (!vq->enabled || t->lost)
		return;
	uint16_t used = ring_idx(vq->used), avail = ring_idx(vq->avail);
	if ((uint16_t)(avail - t->avail) > vq->size || (uint16_t)(used - t->used) > vq->size) {
		t->lost = true; /* entries were overwritten before popek saw them */
		return;
	}
	/* The backend writes a request's buffers when popek does not see it: they
	 * are reported when the request is posted (so the soft engine compares
	 * cached code there with RAM when it next runs it: a driver that polls for
	 * the completion then runs what the device wrote) and again when it
	 * completes. */
	bool report = guest_mem_watched(vq->mem);
	for (; t->avail != avail; t->avail++) {
		uint16_t head;
		memcpy(&head, vq->avail + 4 + 2u * (t->avail % vq->size), sizeof(head));
		if (head < vq->size && t->count[head] < UINT8_MAX) {
			t->count[head]++;
			t->seq[head] = t->next_seq++;
		}
		if (report && head < vq->size)
			virtq_chain_dirty(vq, head);
	}
	for (; t->used != used; t->used++) {
		uint32_t id;
		memcpy(&id, vq->used + 4 + 8u * (t->used % vq->size), sizeof(id));
		if (id < vq->size && t->count[id])
			t->count[id]--;
		if (report && id < vq->size)
			virtq_chain_dirty(vq, (uint16_t)id);
	}
}

/* Those slots hold requests already answered or still in flight, which the
 * driver no longer reads, and its next posting goes after them. */
int vhost_track_restore(struct vhost_track *t, struct virtq *vq, uint16_t *base)
{
	vhost_track_update(t, vq);
	if (t->lost || !vq->enabled)
		return -1;
	uint16_t heads[VQ_MAX_SIZE], n = 0;
	for (uint16_t h = 0; h < vq->size; h++)
		if (t->count[h])
			heads[n++] = h;
	/* Oldest first (insertion sort: n is at most the ring size). */
	for (uint16_t i = 1; i < n; i++)
		for (uint16_t j = i;
		     j > 0 && (int32_t)(t->seq[heads[j]] - t->seq[heads[j - 1]]) < 0; j--) {
			uint16_t x = heads[j];
			heads[j] = heads[j - 1];
			heads[j - 1] = x;
		}
	/* A driver keeps exactly avail - used requests out, each head once:
	 * any other count means the rings are not what popek followed. */
	if ((uint16_t)(t->avail - t->used) != n)
		return -1;
	for (uint16_t h = 0; h < n; h++)
		if (t->count[heads[h]] != 1)
			return -1;
	for (uint16_t i = 0; i < n; i++)
		memcpy(vq->avail + 4 + 2u * ((uint16_t)(t->used + i) % vq->size), &heads[i],
		       sizeof(heads[i]));
	__atomic_thread_fence(__ATOMIC_RELEASE);
	*base = t->used;
	return 0;
}
