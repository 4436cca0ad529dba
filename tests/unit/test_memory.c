#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "machine/memory.h"
#include "snapshot/memimage.h"

static void small_ram_one_range(void **state)
{
	struct guest_mem m;
	char err[128];
	assert_int_equal(guest_mem_init(&m, 64 << 20, err, sizeof(err)), 0);
	assert_int_equal(m.nranges, 1);
	assert_non_null(gpa_ptr(&m, 0, 64 << 20));
	assert_null(gpa_ptr(&m, 1, 64 << 20));
	assert_null(gpa_ptr(&m, (64 << 20) - 4, 8));
	assert_non_null(gpa_ptr(&m, (64 << 20) - 8, 8));
	assert_null(gpa_ptr(&m, ~0ull - 4, 8)); /* wrap-around */
	assert_null(gpa_ptr(&m, 0, ~0ull));
	uint64_t v = 0x1122334455667788ull, r = 0;
	assert_int_equal(gpa_write(&m, 0x1000, &v, 8), 0);
	assert_int_equal(gpa_read(&m, 0x1000, &r, 8), 0);
	assert_int_equal(r, v);
	assert_int_equal(gpa_write(&m, 64 << 20, &v, 1), -1);
	guest_mem_free(&m);
}

static void big_ram_splits_around_pci_hole(void **state)
{
	struct guest_mem m;
	char err[128];
	assert_int_equal(guest_mem_init(&m, 4ull << 30, err, sizeof(err)), 0);
	assert_int_equal(m.nranges, 2);
	assert_int_equal(m.range[0].size, MEM_PCI_HOLE_START);
	assert_int_equal(m.range[1].gpa, MEM_HIGH_START);
	assert_int_equal(m.range[1].size, (4ull << 30) - MEM_PCI_HOLE_START);
	assert_null(gpa_ptr(&m, MEM_PCI_HOLE_START, 1));
	assert_null(gpa_ptr(&m, MEM_PCI_HOLE_START - 1, 2)); /* straddles the hole */
	uint8_t *hi = gpa_ptr(&m, MEM_HIGH_START, 1);
	assert_ptr_equal(hi, m.base + MEM_PCI_HOLE_START);
	guest_mem_free(&m);
}

static void rejects_bad_sizes(void **state)
{
	struct guest_mem m;
	char err[128];
	assert_int_not_equal(guest_mem_init(&m, 1 << 20, err, sizeof(err)), 0);
	assert_int_not_equal(guest_mem_init(&m, (64 << 20) + 1, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "invalid"));
}

/* Fresh RAM is anonymous unless it must be shared; only the shared kind has
 * an fd a vhost-user backend can map. */
static void fresh_ram_kinds(void **state)
{
	struct guest_mem m;
	char err[128];
	assert_int_equal(guest_mem_init(&m, 8 << 20, err, sizeof(err)), 0);
	assert_int_equal(m.fd, -1);
	assert_string_equal(guest_mem_kind(&m), "anonymous");
	assert_non_null(strstr(guest_mem_why_4k(&m), "transparent_hugepage/enabled"));
	guest_mem_free(&m);
	assert_int_equal(guest_mem_init_shared(&m, 8 << 20, err, sizeof(err)), 0);
	assert_true(m.fd >= 0);
	assert_string_equal(guest_mem_kind(&m), "memfd");
	assert_non_null(strstr(guest_mem_why_4k(&m), "shmem_enabled"));
	guest_mem_free(&m);
}

/* A snapshot of anonymous RAM reads the pages the pagemap says were touched
 * (a touch on THP takes its whole 2 MiB), and every page when it cannot say. */
static void anonymous_touched_pages(void **state)
{
	struct guest_mem m;
	char err[128];
	bool cand[MEM_CHUNK / 4096];
	assert_int_equal(guest_mem_init(&m, 8 << 20, err, sizeof(err)), 0);
	assert_true(m.pagemap_fd >= 0);
	m.base[3 * 4096] = 1;
	memimage_data_pages(&m, 0, cand);
	assert_true(cand[3]);
	for (uint64_t off = 4 << 20; off < m.size; off += MEM_CHUNK) {
		memimage_data_pages(&m, off, cand);
		for (unsigned i = 0; i < MEM_CHUNK / 4096; i++)
			assert_false(cand[i]);
	}
	m.base[(6 << 20) + 5 * 4096] = 1;
	memimage_data_pages(&m, 6 << 20, cand);
	assert_true(cand[5]);
	close(m.pagemap_fd);
	m.pagemap_fd = -1;
	memimage_data_pages(&m, 4 << 20, cand);
	for (unsigned i = 0; i < MEM_CHUNK / 4096; i++)
		assert_true(cand[i]);
	guest_mem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(small_ram_one_range),
	    cmocka_unit_test(big_ram_splits_around_pci_hole),
	    cmocka_unit_test(rejects_bad_sizes),
	    cmocka_unit_test(fresh_ram_kinds),
	    cmocka_unit_test(anonymous_touched_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
