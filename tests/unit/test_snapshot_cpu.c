/* The cpu.N snapshot record (src/snapshot/codec.c): XCR0 and the XSAVE image
 * survive a round trip; an XCR0 that no XSETBV could have set is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapshot/codec.h"

static struct cpu_state in, out;

static int encode_decode(uint64_t xcr0)
{
	cpu_state_init_protected(&in);
	in.xcr0 = xcr0;
	for (int i = 0; i < 256; i++)
		in.xsave[160 + i] = (uint8_t)(i + 1);
	in.xsave[XSAVE_HEADER] = (uint8_t)(XSTATE_X87 | XSTATE_SSE);
	in.xsave_size = 576;
	struct blob b = {0};
	encode_cpu_state(&b, &in);
	assert_false(b.oom);
	int rc = decode_cpu_state(b.buf, b.len, &out);
	blob_free(&b);
	return rc;
}

static void xsave_round_trip(void **state)
{
	(void)state;
	assert_int_equal(encode_decode(XSTATE_X87 | XSTATE_SSE), 0);
	assert_int_equal(out.xcr0, XSTATE_X87 | XSTATE_SSE);
	assert_int_equal(out.xsave_size, 576);
	assert_memory_equal(out.xsave, in.xsave, 576);
	assert_int_equal(encode_decode(XSTATE_X87 | XSTATE_SSE | XSTATE_AVX), 0);
	assert_int_equal(out.xcr0, 7);
}

static void impossible_xcr0_refused(void **state)
{
	(void)state;
	assert_int_equal(encode_decode(0), -1);
	assert_int_equal(encode_decode(XSTATE_SSE), -1);
	assert_int_equal(encode_decode(XSTATE_X87 | XSTATE_AVX), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(xsave_round_trip),
	    cmocka_unit_test(impossible_xcr0_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
