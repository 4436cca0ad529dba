/* popek exec's address space and path rules, without a VM: mappings as the
 * page tables record them, protections as guest accesses see them, and guest
 * path normalization. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "exec/exec.h"

static void map_protect_unmap(void **state)
{
	struct mm mm;
	char err[128];
	assert_int_equal(mm_init(&mm, 16 << 20, err, sizeof(err)), 0);
	const uint64_t va = 0x400000;
	assert_true(mm_range_free(&mm, va, 4 * XPAGE));
	assert_int_equal(mm_map_anon(&mm, va, 4 * XPAGE, PROT_READ | PROT_WRITE), 0);
	assert_false(mm_range_free(&mm, va + XPAGE, 1));
	uint8_t buf[2 * XPAGE], back[2 * XPAGE];
	memset(buf, 0x5a, sizeof(buf));
	/* a write across a page boundary reads back; fresh pages read zero */
	assert_int_equal(mm_write(&mm, va + XPAGE - 100, buf, sizeof(buf)), 0);
	assert_int_equal(mm_read(&mm, va + XPAGE - 100, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(mm_read(&mm, va, back, 16), 0);
	assert_int_equal(back[0], 0);
	/* read-only refuses writes, PROT_NONE refuses reads, and keeps the data */
	assert_int_equal(mm_protect(&mm, va, 4 * XPAGE, PROT_READ), 0);
	assert_true(mm.need_flush);
	assert_int_equal(mm_write(&mm, va, buf, 1), -EFAULT);
	assert_int_equal(mm_protect(&mm, va, 4 * XPAGE, PROT_NONE), 0);
	assert_int_equal(mm_read(&mm, va + XPAGE, back, 1), -EFAULT);
	assert_int_equal(mm_protect(&mm, va, 4 * XPAGE, PROT_READ), 0);
	assert_int_equal(mm_read(&mm, va + XPAGE, back, 1), 0);
	assert_int_equal(back[0], 0x5a);
	/* a hole makes mprotect fail as on Linux; unmapped memory faults */
	mm_unmap(&mm, va + XPAGE, XPAGE);
	assert_int_equal(mm_read(&mm, va + XPAGE, back, 1), -EFAULT);
	assert_int_equal(mm_protect(&mm, va, 4 * XPAGE, PROT_READ), -ENOMEM);
	/* mremap's move keeps the bytes */
	assert_int_equal(mm_move(&mm, va + 2 * XPAGE, XPAGE, 0x800000), 0);
	assert_int_equal(mm_read(&mm, 0x800000, back, 1), 0);
	assert_int_equal(back[0], 0x5a);
	assert_int_equal(mm_read(&mm, va + 2 * XPAGE, back, 1), -EFAULT);
	/* nothing maps outside the user half */
	assert_int_equal(mm_map_anon(&mm, X_USER_END, XPAGE, PROT_READ), -EINVAL);
	assert_int_equal(mm_read(&mm, X_KERNEL_VA, back, 1), -EFAULT);
	/* after a reset the frames are zero again */
	mm_reset(&mm);
	assert_int_equal(mm_map_anon(&mm, va, XPAGE, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(mm_read(&mm, va + XPAGE - 100, back, 1), 0);
	assert_int_equal(back[0], 0);
	mm_free(&mm);
}

static void strings_and_iovecs(void **state)
{
	struct mm mm;
	char err[128], s[8];
	assert_int_equal(mm_init(&mm, 16 << 20, err, sizeof(err)), 0);
	const uint64_t va = 0x10000;
	assert_int_equal(mm_map_anon(&mm, va, XPAGE, PROT_READ | PROT_WRITE), 0);
	assert_int_equal(mm_write(&mm, va + XPAGE - 3, "ab", 3), 0);
	assert_int_equal(mm_read_str(&mm, va + XPAGE - 3, s, sizeof(s)), 0);
	assert_string_equal(s, "ab");
	/* a string running off the mapping faults; one longer than the cap is refused */
	assert_int_equal(mm_write(&mm, va + XPAGE - 2, "xy", 2), 0);
	assert_int_equal(mm_read_str(&mm, va + XPAGE - 2, s, sizeof(s)), -EFAULT);
	assert_int_equal(mm_read_str(&mm, va + XPAGE - 3, s, 2), -ENAMETOOLONG);
	struct iovec iov[4];
	assert_int_equal(mm_iov(&mm, va + 8, 100, true, iov, 4), 1);
	assert_int_equal(iov[0].iov_len, 100);
	/* a transfer running into a hole is short, up to the hole */
	assert_int_equal(mm_iov(&mm, va + XPAGE - 10, 100, false, iov, 4), 1);
	assert_int_equal(iov[0].iov_len, 10);
	assert_int_equal(mm_iov(&mm, va + XPAGE, 100, false, iov, 4), -EFAULT);
	mm_free(&mm);
}

static void path_normalization(void **state)
{
	static const char *const cases[][3] = {
	    {"/", "etc/passwd", "/etc/passwd"},
	    {"/usr/lib", "../../../../etc", "/etc"},
	    {"/a/b", "./c//d/./", "/a/b/c/d"},
	    {"/a", "/x/../..", "/"},
	    {"/a", "..", "/"},
	    {"/", "/proc/self/../self/exe", "/proc/self/exe"},
	};
	char out[4096];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(fs_normalize(cases[i][0], cases[i][1], out, sizeof(out)), 0);
		assert_string_equal(out, cases[i][2]);
	}
	assert_int_equal(fs_normalize("/", "", out, sizeof(out)), -ENOENT);
	assert_int_equal(fs_normalize("/", "abcdef", out, 4), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(map_protect_unmap),
	    cmocka_unit_test(strings_and_iovecs),
	    cmocka_unit_test(path_normalization),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
