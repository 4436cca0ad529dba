#include "devices/virtqueue.h"

#include <string.h>

/* Ring sizes in bytes (§2.7): desc table, avail (flags, idx, ring, used_event),
 * used (flags, idx, ring of {id, len}, avail_event). */
#define DESC_BYTES(n)  (16ull * (n))
#define AVAIL_BYTES(n) (6ull + 2ull * (n))
#define USED_BYTES(n)  (6ull + 8ull * (n))

void virtq_reset(struct virtq *vq, uint16_t max_size)
{
	memset(vq, 0, sizeof(*vq));
	vq->size = max_size;
}

int virtq_enable(struct virtq *vq, const struct guest_mem *mem)
{
	uint16_t n = vq->size;
	if (n == 0 || n > VQ_MAX_SIZE || (n & (n - 1)))
		return -1;
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return -1;
	vq->desc = gpa_ptr(mem, vq->desc_gpa, DESC_BYTES(n));
	vq->avail = gpa_ptr(mem, vq->avail_gpa, AVAIL_BYTES(n));
	vq->used = gpa_ptr(mem, vq->used_gpa, USED_BYTES(n));
	if (!vq->desc || !vq->avail || !vq->used)
		return -1;
	vq->mem = mem;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->enabled = true;
	return 0;
}

/* Ring fields are 2-byte aligned (checked at enable) and written concurrently
 * by the driver, hence atomic loads. */
static uint16_t load16(const uint8_t *p, int order)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, order);
}

/* Walk one descriptor table (the ring's, or an indirect one) from idx. */
static int walk(const struct virtq *vq, const uint8_t *table, unsigned tsize, unsigned idx,
		bool in_indirect, struct vq_chain *c)
{
	for (unsigned count = 0;; count++) {
		if (idx >= tsize || count >= tsize)
			return -1; /* out of range, or a loop */
		struct virtq_desc d;
		memcpy(&d, table + 16ull * idx, sizeof(d));

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* Only a head may point to a table (§2.7.5.3), never with NEXT. */
			if (!vq->indirect || in_indirect || count || (d.flags & VIRTQ_DESC_F_NEXT))
				return -1;
			if (d.len == 0 || d.len % 16 || d.len / 16 > VQ_MAX_SIZE)
				return -1;
			const uint8_t *it = gpa_ptr(vq->mem, d.addr, d.len);
			if (!it)
				return -1;
			return walk(vq, it, d.len / 16, 0, true, c);
		}

		void *p = gpa_ptr(vq->mem, d.addr, d.len);
		if (!p || c->nread + c->nwrite >= VQ_MAX_SIZE)
			return -1;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			c->nwrite++;
			c->write_len += d.len;
		} else {
			if (c->nwrite) /* readable after writable is forbidden (§2.7.4.2) */
				return -1;
			c->nread++;
			c->read_len += d.len;
		}
		c->iov[c->nread + c->nwrite - 1] = (struct iovec){p, d.len};
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int virtq_pop(struct virtq *vq, struct vq_chain *c)
{
	if (!vq->enabled)
		return 0;
	uint16_t avail_idx = load16(vq->avail + 2, __ATOMIC_ACQUIRE);
	uint16_t waiting = (uint16_t)(avail_idx - vq->last_avail);
	if (waiting == 0)
		return 0;
	if (waiting > vq->size)
		return -1; /* the driver claims more buffers than the ring holds */
	uint16_t head = load16(vq->avail + 4 + 2u * (vq->last_avail % vq->size), __ATOMIC_RELAXED);
	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_len = c->write_len = 0;
	if (walk(vq, vq->desc, vq->size, head, false, c) < 0)
		return -1;
	vq->last_avail++;
	return 1;
}

void virtq_chain_dirty(const struct virtq *vq, uint16_t head)
{
	struct vq_chain c = {.head = head};
	if (walk(vq, vq->desc, vq->size, head % vq->size, false, &c) < 0)
		return;
	for (unsigned i = c.nread; i < c.nread + c.nwrite; i++)
		guest_mem_dirty(vq->mem, c.iov[i].iov_base, c.iov[i].iov_len);
}

void virtq_push_n(struct virtq *vq, const struct vq_used *e, unsigned n)
{
	if (!vq->enabled)
		return;
	if (guest_mem_watched(vq->mem)) {
		for (unsigned i = 0; i < n; i++)
			virtq_chain_dirty(vq, e[i].head);
		guest_mem_dirty(vq->mem, vq->used, USED_BYTES(vq->size));
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t *elem = vq->used + 4 + 8u * ((uint16_t)(vq->used_idx + i) % vq->size);
		uint32_t w[2] = {e[i].head, e[i].len};
		memcpy(elem, w, sizeof(w));
	}
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	/* Publish the elements before the index the driver polls. */
	__atomic_store_n((uint16_t *)(void *)(vq->used + 2), vq->used_idx, __ATOMIC_RELEASE);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vq_used e = {head, len};
	virtq_push_n(vq, &e, 1);
}

bool virtq_should_interrupt(const struct virtq *vq)
{
	if (!vq->enabled)
		return false;
	/* Order our used->idx store before reading the driver's flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(load16(vq->avail, __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

unsigned iov_slice(const struct iovec *iov, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *out)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		uint64_t take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		out[k++] = (struct iovec){(uint8_t *)iov[i].iov_base + off, take};
		len -= take;
		off = 0;
	}
	return k;
}

static uint64_t copy_iov(const struct iovec *iov, unsigned n, uint64_t off, void *buf, uint64_t len,
			 bool to_iov)
{
	struct iovec part[VQ_MAX_SIZE];
	unsigned k = iov_slice(iov, n, off, len, part);
	uint64_t done = 0;
	for (unsigned i = 0; i < k; i++) {
		if (to_iov)
			memcpy(part[i].iov_base, (const uint8_t *)buf + done, part[i].iov_len);
		else
			memcpy((uint8_t *)buf + done, part[i].iov_base, part[i].iov_len);
		done += part[i].iov_len;
	}
	return done;
}

uint64_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, uint64_t len)
{
	return copy_iov(c->iov, c->nread, off, dst, len, false);
}

uint64_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, uint64_t len)
{
	return copy_iov(c->iov + c->nread, c->nwrite, off, (void *)src, len, true);
}
