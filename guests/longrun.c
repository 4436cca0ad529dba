/* longrun: a long, deterministic ring-3 computation that reports progress, for
 * snapshot tests. It chains xorshift64* rounds; each round's value depends on
 * all earlier ones, so a VM restored mid-run must continue from exactly the
 * saved registers and memory to print the right final value.
 * cmdline: rounds=N (default 40), iters=N per round (default 4000000). */
#include "guest.h"

const char guest_name[] = "longrun";

#define SYS_PROGRESS 1

USER_DATA static uint64_t rounds = 40, iters = 4000000, state = 0x9e3779b97f4a7c15ull;

USER_TEXT static void user_main(void)
{
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t x = state;
		for (uint64_t i = 0; i < iters; i++) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			x *= 0x2545f4914f6cdd1dull;
		}
		state = x;
		usys_int3(SYS_PROGRESS, (long)r, 0, 0);
	}
	usys_int3(USYS_EXIT, 0, 0, 0);
}

static long sys(struct trap_frame *f)
{
	if (f->rax == SYS_PROGRESS) {
		kprintf("longrun: round %lu\n", f->rdi);
		return 0;
	}
	return user_exit_only(f);
}

int guest_main(const struct boot_info *bi)
{
	rounds = boot_arg(bi, "rounds", rounds);
	iters = boot_arg(bi, "iters", iters);
	user_init(sys);
	if (user_run(user_main) != 0)
		fail("user mode exited with an error");
	kprintf("longrun: result %#018lx after %lu rounds of %lu\n", state, rounds, iters);
	return 0;
}
