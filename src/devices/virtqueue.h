/* Split virtqueues (virtio 1.x §2.7), device side. Everything in the rings is
 * written by the guest and may change under us: descriptors are copied before
 * use, every index and buffer is validated, and a malformed chain makes
 * virtq_pop fail so the transport can flag the device NEEDS_RESET. */
#ifndef POPEK_VIRTQUEUE_H
#define POPEK_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "machine/memory.h"

#define VQ_MAX_SIZE 256 /* also the longest chain we accept, direct or indirect */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq {
	const struct guest_mem *mem;
	uint16_t size;
	bool enabled;
	bool indirect; /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host views of the rings, resolved once when the queue is enabled. */
	uint8_t *desc, *avail, *used;
	uint16_t last_avail, used_idx;
};

/* One popped request: device-readable buffers first, then device-writable. */
struct vq_chain {
	uint16_t head;
	unsigned nread, nwrite;
	uint64_t read_len, write_len;
	struct iovec iov[VQ_MAX_SIZE];
};

/* Forget all ring state (device reset); size stays for the driver to read. */
void virtq_reset(struct virtq *vq, uint16_t max_size);

/* Start using the rings at desc/avail/used_gpa: checks size and alignment and
 * that every ring lies in RAM. Returns 0 or -1 (refuse to enable). */
int virtq_enable(struct virtq *vq, const struct guest_mem *mem);

/* Returns 1 with a chain, 0 if the ring is empty, -1 if the driver broke the ring. */
int virtq_pop(struct virtq *vq, struct vq_chain *c);

/* Return chain head to the driver with len bytes written. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* Return n chains at once: the driver sees all of them or none (one frame
 * spread over mergeable receive buffers). */
struct vq_used {
	uint16_t head;
	uint32_t len;
};
void virtq_push_n(struct virtq *vq, const struct vq_used *e, unsigned n);

/* After pushing: does the driver want an interrupt? */
bool virtq_should_interrupt(const struct virtq *vq);

/* Report the pages the device wrote for chain head (its writable buffers,
 * found again from the descriptors) through guest_mem_dirty: a migration sends
 * them again, the soft engine drops code it cached from them. Done for every
 * chain popek completes, and for those a vhost-user backend completed. A
 * driver that rewrote the descriptors of a chain in flight only loses its own
 * data. */
void virtq_chain_dirty(const struct virtq *vq, uint16_t head);

/* Copy between a flat buffer and the chain's readable / writable part,
 * starting at byte offset off. Return the number of bytes copied. */
uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len);
uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, uint64_t len);

/* Describe bytes [off, off+len) of iov[0..n) in out (at most n entries);
 * returns the entry count. Used to hand guest buffers to preadv/pwritev. */
unsigned iov_slice(const struct iovec *iov, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *out);

#endif
