/* pagefault: a #PF handler that fixes the mapping and lets the CPU retry.
 *   (a) read of a not-present page        -> error 0 (supervisor read, not present)
 *   (b) write to a read-only page, CR0.WP -> error P|W
 *   (c) ring-3 read of a supervisor page  -> error P|U
 * Each time CR2 and the error code must be exact, and the retried access must
 * see the right data. */
#include "guest.h"

const char guest_name[] = "pagefault";

#define PF_P 0x1
#define PF_W 0x2
#define PF_U 0x4

static uint64_t np_page[512] __attribute__((aligned(4096)));
static uint64_t ro_page[512] __attribute__((aligned(4096)));
static uint64_t sv_page[512] __attribute__((aligned(4096)));

static volatile struct {
	uint64_t addr, error; /* the fault we are about to cause (volatile: set around faults) */
	unsigned seen;
} want;

USER_DATA static uint64_t user_read;

static void on_pf(struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();

	if (cr2 != want.addr || f->error != want.error)
		fail("#PF cr2=%#lx error=%#lx rip=%#lx, expected cr2=%#lx error=%#lx", cr2,
		     f->error, f->rip, want.addr, want.error);
	want.seen++;
	if (!(f->error & PF_P))
		page_update(cr2, 1, PTE_P, 0);
	else if (f->error & PF_U)
		page_update(cr2, 1, PTE_U, 0);
	else if (f->error & PF_W)
		page_update(cr2, 1, PTE_W, 0);
	kprintf("pagefault: #PF at %#lx error %#lx fixed, retrying\n", cr2, f->error);
}

USER_TEXT static void user_main(void)
{
	user_read = *(volatile uint64_t *)&sv_page[7];
	usys_int3(USYS_EXIT, 0, 0, 0);
}

static void expect_fault(uint64_t addr, uint64_t error)
{
	want.addr = addr;
	want.error = error;
	want.seen = 0;
}

static void check_seen(const char *what)
{
	if (want.seen != 1)
		fail("%s: %u page faults, expected 1", what, want.seen);
}

int guest_main(const struct boot_info *bi)
{
	uint64_t v;

	(void)bi;
	if (!(read_cr0() & (1u << 16)))
		fail("CR0.WP is clear");
	trap_set_handler(14, on_pf);
	user_init(user_exit_only);

	np_page[3] = 0x1234abcd;
	page_update((uint64_t)np_page, 4096, 0, PTE_P);
	expect_fault((uint64_t)&np_page[3], 0);
	v = *(volatile uint64_t *)&np_page[3];
	check_seen("not-present read");
	if (v != 0x1234abcd)
		fail("not-present read returned %#lx", v);
	kprintf("pagefault: (a) not-present read ok\n");

	ro_page[5] = 1;
	page_update((uint64_t)ro_page, 4096, 0, PTE_W);
	expect_fault((uint64_t)&ro_page[5], PF_P | PF_W);
	*(volatile uint64_t *)&ro_page[5] = 0x55aa;
	check_seen("read-only write");
	if (ro_page[5] != 0x55aa)
		fail("write to read-only page left %#lx", ro_page[5]);
	kprintf("pagefault: (b) read-only write ok\n");

	sv_page[7] = 0xfeedf00d;
	expect_fault((uint64_t)&sv_page[7], PF_P | PF_U);
	if (user_run(user_main) != 0)
		fail("user mode exited with an error");
	check_seen("user access to a supervisor page");
	if (user_read != 0xfeedf00d)
		fail("user read of the supervisor page returned %#lx", user_read);
	kprintf("pagefault: (c) ring-3 access to a supervisor page ok\n");
	return 0;
}
