/* ring3: a small kernel/user split. The kernel side sets up SYSCALL, int 0x80,
 * int3 and user pages, then drops to ring 3 with IRETQ. The user side does real work
 * (a prime sieve and an FNV-1a hash) and talks to the kernel only through
 * system calls; the kernel checks every result against known values. */
#include "guest.h"

const char guest_name[] = "ring3";

enum { SYS_WRITE = 1, SYS_GETPID = 2, SYS_EXIT = USYS_EXIT };

#define SIEVE_N	    200000
#define PRIME_COUNT 17984
#define PRIME_SUM   1709600813ull
#define HASH_BYTES  65536
#define HASH_EXPECT 0x3dd5dec4cf215625ull
#define FAKE_PID    42
#define EFAULT	    14
#define ENOSYS	    38

struct results {
	uint64_t cpl, pid_int3, pid_syscall, pid_int80, bad_write, bad_nr;
	uint64_t prime_count, prime_sum, hash;
};

USER_DATA static struct results res;
USER_BSS static uint8_t composite[SIEVE_N];
USER_BSS static uint32_t hash_buf[HASH_BYTES / 4];
USER_RODATA static const char hello_msg[] = "ring3: hello from user mode\n";
static uint64_t kernel_secret; /* supervisor-only: a write() from it must fail */
static unsigned syscalls, int80s, int3s;

USER_TEXT static void sieve(void)
{
	for (uint64_t i = 2; i < SIEVE_N; i++) {
		if (composite[i])
			continue;
		res.prime_count++;
		res.prime_sum += i;
		for (uint64_t j = i * i; j < SIEVE_N; j += i)
			composite[j] = 1;
	}
}

USER_TEXT static void hash(void)
{
	uint32_t x = 0x12345678;
	const uint8_t *p = (const uint8_t *)hash_buf;
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < ARRAY_SIZE(hash_buf); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		hash_buf[i] = x;
	}
	for (unsigned i = 0; i < HASH_BYTES; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	res.hash = h;
}

USER_TEXT static void user_main(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	res.cpl = cs & 3;
	res.pid_int3 = usys_int3(SYS_GETPID, 0, 0, 0);
	usys(SYS_WRITE, (long)hello_msg, sizeof(hello_msg) - 1, 0);
	res.pid_syscall = usys(SYS_GETPID, 0, 0, 0);
	res.pid_int80 = usys_int80(SYS_GETPID, 0, 0, 0);
	res.bad_write = usys(SYS_WRITE, (long)&kernel_secret, sizeof(kernel_secret), 0);
	res.bad_nr = usys(99, 0, 0, 0);
	sieve();
	hash();
	usys(SYS_EXIT, 7, 0, 0);
}

static long sys(struct trap_frame *f)
{
	if ((f->cs & 3) != 3)
		fail("system call from ring %lu", f->cs & 3);
	syscalls++;
	int80s += f->vector == 0x80;
	int3s += f->vector == 3;
	switch (f->rax) {
	case SYS_WRITE:
		if (!user_range_ok(f->rdi, f->rsi))
			return -EFAULT;
		for (uint64_t i = 0; i < f->rsi; i++)
			serial_putc(((const char *)f->rdi)[i]);
		return (long)f->rsi;
	case SYS_GETPID:
		return FAKE_PID;
	case SYS_EXIT:
		user_return((long)f->rdi);
	default:
		return -ENOSYS;
	}
}

static void expect(const char *what, uint64_t got, uint64_t want)
{
	kprintf("ring3: %-12s %ld (%#lx)\n", what, (int64_t)got, got);
	if (got != want)
		fail("%s is %#lx, expected %#lx", what, got, want);
}

int guest_main(const struct boot_info *bi)
{
	uint64_t t0, t1;
	long code;

	user_init(sys);
	t0 = rdtsc();
	code = user_run(user_main);
	t1 = rdtsc();
	kprintf("ring3: user mode exited with %ld after %u system calls (%u via int 0x80), "
		"%lu TSC cycles\n",
		code, syscalls, int80s, t1 - t0);
	expect("int3 calls", int3s, 1);
	expect("exit code", (uint64_t)code, 7);
	expect("cpl", res.cpl, 3);
	expect("pid int3", res.pid_int3, FAKE_PID);
	expect("pid", res.pid_syscall, FAKE_PID);
	expect("pid int80", res.pid_int80, FAKE_PID);
	expect("bad write", res.bad_write, (uint64_t)-EFAULT);
	expect("bad syscall", res.bad_nr, (uint64_t)-ENOSYS);
	expect("primes", res.prime_count, PRIME_COUNT);
	expect("prime sum", res.prime_sum, PRIME_SUM);
	expect("fnv1a64", res.hash, HASH_EXPECT);
	expect("syscalls", syscalls, 7);
	if (user_quirks.syscall || user_quirks.int_n) {
		kprintf("ring3: platform quirks emulated: %u SYSCALLs stayed in ring 3, %u int N "
			"raised #UD\n",
			user_quirks.syscall, user_quirks.int_n);
		if (boot_flag(bi, "strict"))
			fail("SYSCALL or int 0x80 from ring 3 misbehaved (see lib/user.c)");
	}
	return 0;
}
