/* cpubench: CPU-bound work in ring 3 for engine benchmarks. Three phases, each
 * timed with the TSC from user mode and checked against a known checksum:
 *   int  - xorshift64* chain (ALU and multiplier)
 *   mem  - pseudo-random read-modify-write walk over a 1 MiB buffer
 *   hash - FNV-1a 64 over that buffer
 *   int0 - the int phase again, in ring 0 (only when asked: on kvm here CPL0
 *          code is emulated at about 1 M instructions/s)
 * The kernel side only enters and leaves ring 3 (via int3, which every
 * platform delivers; see lib/user.c).
 * cmdline: any of the words int, int0, mem, hash runs only those phases
 * (default int mem hash); scale=N repeats each phase's work N times, so a
 * benchmark can take the difference of two lengths and leave start-up out (the
 * known checksums hold for scale=1; other scales print theirs to compare
 * between VMMs). */
#include "guest.h"

const char guest_name[] = "cpubench";

#define INT_ITERS   10000000u
#define MEM_WORDS   (1u << 18) /* 1 MiB of uint32_t */
#define MEM_STEPS   (4u << 20)
#define HASH_PASSES 2u

#define INT_EXPECT  0x29f1e4da8019c199ull
#define MEM_EXPECT  0x4c397be0ull
#define HASH_EXPECT 0x6b799db58b38d925ull

USER_BSS static uint32_t buf[MEM_WORDS];
enum { P_INT, P_MEM, P_HASH, P_INT0, NPHASES };
static const char *const names[NPHASES] = {"int", "mem", "hash", "int0"};
USER_DATA static uint64_t sums[NPHASES], cycles[NPHASES];
USER_DATA static bool run[NPHASES];
USER_DATA static uint32_t scale = 1;

/* io.h's rdtsc() is kernel text if the compiler chooses not to inline it */
USER_TEXT static uint64_t rdtsc_user(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

USER_TEXT static uint64_t int_phase(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, acc = 0;

	for (uint32_t i = 0; i < INT_ITERS * scale; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		acc += x * 0x2545f4914f6cdd1dull;
	}
	return acc;
}

/* idx walks all 2^18 slots: an LCG mod 2^k with c odd and a = 1 mod 4 has full period */
USER_TEXT static void mem_fill(void)
{
	for (uint32_t i = 0; i < MEM_WORDS; i++)
		buf[i] = i * 2654435761u;
}

USER_TEXT static uint64_t mem_phase(void)
{
	uint32_t idx = 0, acc = 1;

	mem_fill();
	for (uint32_t s = 0; s < MEM_STEPS * scale; s++) {
		idx = (idx * 1664525u + 1013904223u) & (MEM_WORDS - 1);
		buf[idx] += s ^ acc;
		acc = acc * 31 + buf[idx];
	}
	return acc;
}

USER_TEXT static uint64_t hash_phase(void)
{
	const uint8_t *p = (const uint8_t *)buf;
	uint64_t h = 0xcbf29ce484222325ull;

	for (uint32_t n = 0; n < HASH_PASSES * scale; n++)
		for (uint32_t i = 0; i < sizeof(buf); i++)
			h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

USER_TEXT static void user_main(void)
{
	uint64_t (*const phase[3])(void) = {int_phase, mem_phase, hash_phase};

	if (!run[P_MEM])
		mem_fill(); /* the hash reads what the walk left, or this */
	for (int i = 0; i < 3; i++) {
		if (!run[i])
			continue;
		uint64_t t = rdtsc_user();
		sums[i] = phase[i]();
		cycles[i] = rdtsc_user() - t;
	}
	usys_int3(USYS_EXIT, 0, 0, 0);
}

int guest_main(const struct boot_info *bi)
{
	static const uint64_t expect[NPHASES] = {INT_EXPECT, MEM_EXPECT, HASH_EXPECT, INT_EXPECT};
	uint64_t total = 0;
	bool ok = true, any = false;

	for (int i = 0; i < NPHASES; i++)
		any |= run[i] = boot_flag(bi, names[i]);
	if (!any)
		run[P_INT] = run[P_MEM] = run[P_HASH] = true;
	scale = (uint32_t)boot_arg(bi, "scale", 1);
	if (scale < 1 || scale > 400)
		fail("scale=%u: give 1 to 400 (the loop counters are 32-bit)", scale);
	user_init(user_exit_only);
	if ((run[P_INT] || run[P_MEM] || run[P_HASH]) && user_run(user_main) != 0)
		fail("user mode exited with an error");
	if (run[P_INT0]) {
		uint64_t t = rdtsc();
		sums[P_INT0] = int_phase();
		cycles[P_INT0] = rdtsc() - t;
	}
	for (int i = 0; i < NPHASES; i++) {
		if (!run[i])
			continue;
		bool known = scale == 1 && (i != P_HASH || run[P_MEM]);
		bool wrong = known && sums[i] != expect[i];
		kprintf("cpubench: %-4s checksum %#018lx cycles %lu%s\n", names[i], sums[i],
			cycles[i], wrong ? " WRONG" : "");
		ok &= !wrong;
		total += cycles[i];
	}
	kprintf("cpubench: total cycles %lu\n", total);
	if (!ok)
		fail("wrong checksum (the CPU computed something else)");
	return 0;
}
