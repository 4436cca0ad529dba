/* Split virtqueue: normal chains, and every way a hostile driver can break one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/virtqueue.h"

#define RAM	 (4u << 20)
#define QSIZE	 8
#define DESC	 0x10000
#define AVAIL	 0x11000
#define USED	 0x12000
#define BUF	 0x20000
#define INDIRECT 0x30000

struct fx {
	struct guest_mem mem;
	struct virtq vq;
	uint16_t avail_idx;
};

static struct fx fx;

static int setup(void **state)
{
	char err[128];
	assert_int_equal(guest_mem_init(&fx.mem, RAM, err, sizeof(err)), 0);
	virtq_reset(&fx.vq, QSIZE);
	fx.vq.desc_gpa = DESC;
	fx.vq.avail_gpa = AVAIL;
	fx.vq.used_gpa = USED;
	fx.vq.indirect = true;
	fx.avail_idx = 0;
	assert_int_equal(virtq_enable(&fx.vq, &fx.mem), 0);
	return 0;
}

static int teardown(void **state)
{
	guest_mem_free(&fx.mem);
	return 0;
}

static void set_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct virtq_desc d = {addr, len, flags, next};
	assert_int_equal(gpa_write(&fx.mem, table + 16ull * i, &d, sizeof(d)), 0);
}

static void offer(uint16_t head)
{
	uint16_t slot = fx.avail_idx % QSIZE;
	gpa_write(&fx.mem, AVAIL + 4 + 2u * slot, &head, 2);
	fx.avail_idx++;
	gpa_write(&fx.mem, AVAIL + 2, &fx.avail_idx, 2);
}

static void pops_a_chain_and_pushes_used(void **state)
{
	struct vq_chain c;
	assert_int_equal(virtq_pop(&fx.vq, &c), 0); /* empty */
	set_desc(DESC, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	set_desc(DESC, 5, BUF + 16, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	set_desc(DESC, 0, BUF + 528, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(3);
	assert_int_equal(virtq_pop(&fx.vq, &c), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.nread, 1);
	assert_int_equal(c.nwrite, 2);
	assert_int_equal(c.read_len, 16);
	assert_int_equal(c.write_len, 513);
	assert_ptr_equal(c.iov[1].iov_base, gpa_ptr(&fx.mem, BUF + 16, 512));
	assert_int_equal(virtq_pop(&fx.vq, &c), 0);

	virtq_push(&fx.vq, 3, 513);
	uint16_t idx;
	uint32_t elem[2];
	gpa_read(&fx.mem, USED + 2, &idx, 2);
	gpa_read(&fx.mem, USED + 4, elem, 8);
	assert_int_equal(idx, 1);
	assert_int_equal(elem[0], 3);
	assert_int_equal(elem[1], 513);
}

static void chain_copy_helpers_cross_buffers(void **state)
{
	struct vq_chain c;
	set_desc(DESC, 0, BUF, 3, VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, BUF + 100, 5, VIRTQ_DESC_F_NEXT, 2);
	set_desc(DESC, 2, BUF + 200, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	set_desc(DESC, 3, BUF + 300, 4, VIRTQ_DESC_F_WRITE, 0);
	gpa_write(&fx.mem, BUF, "abc", 3);
	gpa_write(&fx.mem, BUF + 100, "defgh", 5);
	offer(0);
	assert_int_equal(virtq_pop(&fx.vq, &c), 1);
	char out[8] = {0};
	assert_int_equal(vq_chain_read(&c, 2, out, 10), 6);
	assert_string_equal(out, "cdefgh");
	assert_int_equal(vq_chain_write(&c, 2, "123456789", 9), 6);
	char w[5] = {0};
	gpa_read(&fx.mem, BUF + 200, w, 4);
	assert_memory_equal(w,
			    "\0\0"
			    "12",
			    4);
	gpa_read(&fx.mem, BUF + 300, w, 4);
	assert_string_equal(w, "3456");
}

static void expect_broken(void)
{
	struct vq_chain c;
	assert_int_equal(virtq_pop(&fx.vq, &c), -1);
}

static void rejects_descriptor_loop(void **state)
{
	set_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, BUF, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	expect_broken();
}

static void rejects_self_loop(void **state)
{
	set_desc(DESC, 2, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
	offer(2);
	expect_broken();
}

static void rejects_head_out_of_range(void **state)
{
	offer(QSIZE);
	expect_broken();
}

static void rejects_next_out_of_range(void **state)
{
	set_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 0xffff);
	offer(0);
	expect_broken();
}

static void rejects_buffer_outside_ram(void **state)
{
	set_desc(DESC, 0, RAM - 4, 8, 0, 0);
	offer(0);
	expect_broken();
}

static void rejects_huge_length(void **state)
{
	set_desc(DESC, 0, BUF, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	expect_broken();
}

static void rejects_wrapping_address(void **state)
{
	set_desc(DESC, 0, UINT64_MAX - 3, 16, 0, 0);
	offer(0);
	expect_broken();
}

static void rejects_readable_after_writable(void **state)
{
	set_desc(DESC, 0, BUF, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, BUF, 8, 0, 0);
	offer(0);
	expect_broken();
}

static void rejects_avail_index_jump(void **state)
{
	uint16_t idx = QSIZE + 1;
	gpa_write(&fx.mem, AVAIL + 2, &idx, 2);
	expect_broken();
}

static void indirect_table_works(void **state)
{
	struct vq_chain c;
	set_desc(INDIRECT, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc(INDIRECT, 2, BUF + 16, 100, VIRTQ_DESC_F_WRITE, 0);
	set_desc(DESC, 4, INDIRECT, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(4);
	assert_int_equal(virtq_pop(&fx.vq, &c), 1);
	assert_int_equal(c.head, 4);
	assert_int_equal(c.nread, 1);
	assert_int_equal(c.nwrite, 1);
	assert_int_equal(c.write_len, 100);
}

static void indirect_needs_negotiation(void **state)
{
	fx.vq.indirect = false;
	set_desc(INDIRECT, 0, BUF, 16, 0, 0);
	set_desc(DESC, 0, INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
}

static void rejects_nested_indirect(void **state)
{
	set_desc(INDIRECT, 0, INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(DESC, 0, INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
}

static void rejects_indirect_with_next(void **state)
{
	set_desc(INDIRECT, 0, BUF, 16, 0, 0);
	set_desc(DESC, 0, INDIRECT, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC, 1, BUF, 16, 0, 0);
	offer(0);
	expect_broken();
}

static void rejects_indirect_loop(void **state)
{
	set_desc(INDIRECT, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(INDIRECT, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
	set_desc(DESC, 0, INDIRECT, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
}

static void rejects_bad_indirect_sizes(void **state)
{
	set_desc(DESC, 0, INDIRECT, 17, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
	teardown(NULL);
	setup(NULL);
	set_desc(DESC, 0, INDIRECT, 0, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
	teardown(NULL);
	setup(NULL);
	set_desc(DESC, 0, INDIRECT, 16 * (VQ_MAX_SIZE + 1), VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
	teardown(NULL);
	setup(NULL);
	set_desc(DESC, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
}

static void enable_validates_rings(void **state)
{
	struct virtq vq;
	virtq_reset(&vq, 6); /* not a power of two */
	vq.desc_gpa = DESC, vq.avail_gpa = AVAIL, vq.used_gpa = USED;
	assert_int_equal(virtq_enable(&vq, &fx.mem), -1);
	vq.size = 0;
	assert_int_equal(virtq_enable(&vq, &fx.mem), -1);
	vq.size = VQ_MAX_SIZE * 2;
	assert_int_equal(virtq_enable(&vq, &fx.mem), -1);
	vq.size = 8;
	vq.desc_gpa = DESC + 8; /* misaligned */
	assert_int_equal(virtq_enable(&vq, &fx.mem), -1);
	vq.desc_gpa = DESC;
	vq.used_gpa = RAM - 16; /* runs off the end of RAM */
	assert_int_equal(virtq_enable(&vq, &fx.mem), -1);
	vq.used_gpa = USED;
	assert_int_equal(virtq_enable(&vq, &fx.mem), 0);
}

static void honours_no_interrupt(void **state)
{
	assert_true(virtq_should_interrupt(&fx.vq));
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	gpa_write(&fx.mem, AVAIL, &flags, 2);
	assert_false(virtq_should_interrupt(&fx.vq));
}

static void iov_slice_trims(void **state)
{
	char a[4], b[4], c[4];
	struct iovec in[3] = {{a, 4}, {b, 4}, {c, 4}}, out[3];
	assert_int_equal(iov_slice(in, 3, 5, 5, out), 2);
	assert_ptr_equal(out[0].iov_base, b + 1);
	assert_int_equal(out[0].iov_len, 3);
	assert_ptr_equal(out[1].iov_base, c);
	assert_int_equal(out[1].iov_len, 2);
	assert_int_equal(iov_slice(in, 3, 12, 5, out), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(pops_a_chain_and_pushes_used), T(chain_copy_helpers_cross_buffers),
	    T(rejects_descriptor_loop),	     T(rejects_self_loop),
	    T(rejects_head_out_of_range),    T(rejects_next_out_of_range),
	    T(rejects_buffer_outside_ram),   T(rejects_huge_length),
	    T(rejects_wrapping_address),     T(rejects_readable_after_writable),
	    T(rejects_avail_index_jump),     T(indirect_table_works),
	    T(indirect_needs_negotiation),   T(rejects_nested_indirect),
	    T(rejects_indirect_with_next),   T(rejects_indirect_loop),
	    T(rejects_bad_indirect_sizes),   T(enable_validates_rings),
	    T(honours_no_interrupt),	     T(iov_slice_trims),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
