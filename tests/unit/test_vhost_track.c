/* popek's in-flight record of a vhost-user queue (devices/vhost_track.h),
 * with the real ring code as driver and backend: a backend that answers out
 * of order dies, and a new one must get exactly the requests in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/vhost_track.h"
#include "devices/virtqueue.h"

#define RAM   (4u << 20)
#define QSIZE 8
#define DESC  0x10000
#define AVAIL 0x11000
#define USED  0x12000
#define BUF   0x20000

static struct guest_mem mem;
static struct virtq vq;	     /* popek's view */
static struct virtq backend; /* the backend's: the same rings */
static struct vhost_track t;
static uint16_t avail_idx;

static int setup(void **state)
{
	char err[128];
	assert_int_equal(guest_mem_init(&mem, RAM, err, sizeof(err)), 0);
	struct virtq *qs[] = {&vq, &backend};
	for (int i = 0; i < 2; i++) {
		virtq_reset(qs[i], QSIZE);
		qs[i]->desc_gpa = DESC;
		qs[i]->avail_gpa = AVAIL;
		qs[i]->used_gpa = USED;
		assert_int_equal(virtq_enable(qs[i], &mem), 0);
	}
	for (uint16_t h = 0; h < QSIZE; h++) {
		struct virtq_desc d = {BUF + 512u * h, 512, VIRTQ_DESC_F_WRITE, 0};
		assert_int_equal(gpa_write(&mem, DESC + 16u * h, &d, sizeof(d)), 0);
	}
	avail_idx = 0;
	vhost_track_start(&t, &vq);
	return 0;
}

static int teardown(void **state)
{
	guest_mem_free(&mem);
	return 0;
}

static void post(uint16_t head)
{
	gpa_write(&mem, AVAIL + 4 + 2u * (avail_idx % QSIZE), &head, 2);
	avail_idx++;
	gpa_write(&mem, AVAIL + 2, &avail_idx, 2);
}

static uint16_t take(void)
{
	struct vq_chain c;
	assert_int_equal(virtq_pop(&backend, &c), 1);
	return c.head;
}

/* A new backend from base on: the heads it reads, in order. */
static void new_backend_reads(uint16_t base, const uint16_t *want, unsigned n)
{
	backend.last_avail = base;
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(take(), want[i]);
	struct vq_chain c;
	assert_int_equal(virtq_pop(&backend, &c), 0);
}

static void out_of_order_answers_leave_exactly_the_rest(void **state)
{
	for (uint16_t h = 0; h < 4; h++)
		post(h);
	vhost_track_update(&t, &vq); /* the kick */
	for (int i = 0; i < 4; i++)
		take();
	virtq_push(&backend, 2, 512); /* answered out of order */
	virtq_push(&backend, 0, 512);
	vhost_track_update(&t, &vq); /* the call */
	post(2);		     /* the driver reuses an answered head, no kick seen */
	uint16_t base = 0;
	assert_int_equal(vhost_track_restore(&t, &vq, &base), 0);
	assert_int_equal(base, 2); /* the used index */
	/* Without the record the new backend would read 2, 3, 2: one answered
	 * twice, and 1 never. */
	const uint16_t want[] = {1, 3, 2};
	new_backend_reads(base, want, 3);
}

static void answered_and_posted_again_unseen_stays_in_flight(void **state)
{
	post(5);
	vhost_track_update(&t, &vq);
	take();
	virtq_push(&backend, 5, 512);
	post(5); /* no look at the rings in between */
	post(6);
	uint16_t base = 0;
	assert_int_equal(vhost_track_restore(&t, &vq, &base), 0);
	const uint16_t want[] = {5, 6};
	new_backend_reads(base, want, 2);
}

static void rings_that_ran_past_popek_are_refused(void **state)
{
	for (int round = 0; round < 3; round++)
		for (uint16_t h = 0; h < QSIZE; h++) {
			post(h);
			take();
			virtq_push(&backend, h, 512);
		}
	uint16_t base = 0;
	assert_int_equal(vhost_track_restore(&t, &vq, &base), -1);
}

static void a_head_posted_twice_is_refused(void **state)
{
	post(3);
	post(3); /* a broken driver: popek cannot say what is in flight */
	uint16_t base = 0;
	assert_int_equal(vhost_track_restore(&t, &vq, &base), -1);
}

static void completions_of_heads_never_posted_are_ignored(void **state)
{
	post(1);
	vhost_track_update(&t, &vq);
	take();
	virtq_push(&backend, 7, 512); /* a hostile backend */
	post(4);
	vhost_track_update(&t, &vq);
	uint16_t base = 0;
	/* avail - used is 1, but 1 and 4 are both in flight. */
	assert_int_equal(vhost_track_restore(&t, &vq, &base), -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(out_of_order_answers_leave_exactly_the_rest),
	    T(answered_and_posted_again_unseen_stays_in_flight),
	    T(rings_that_ran_past_popek_are_refused),
	    T(a_head_posted_twice_is_refused),
	    T(completions_of_heads_never_posted_are_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
