/* interpose(): the one trap path applies a policy to MMIO, port I/O (also
 * REP element by element) and hypercalls decoded from a 32-bit OUT. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "machine/interpose.h"
#include "policy/active.h"
#include "policy/policy.h"
#include "popek/hypercall.h"

static struct machine m;
static struct vm_config cfg;
static struct policy pol;
static struct vcpu v = {.m = &m};

/* A device that remembers the last write and counts reads. */
static uint64_t last_write;
static int writes, reads;

static void dev_read(void *dev, uint64_t off, void *data, unsigned size)
{
	uint64_t val = 0x1122334455667788ull;
	reads++;
	memcpy(data, &val, size);
}

static void dev_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	last_write = 0;
	memcpy(&last_write, data, size);
	writes++;
}

static const struct bus_ops dev_ops = {dev_read, dev_write};

/* A device whose reads wait until the test says, or give up after 10 s. */
static atomic_bool slow_release, slow_gave_up;
static void slow_read(void *dev, uint64_t off, void *data, unsigned size)
{
	int i = 0;
	while (!atomic_load(&slow_release) && i++ < 10000)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	atomic_store(&slow_gave_up, !atomic_load(&slow_release));
	memset(data, 0, size);
}

static const struct bus_ops slow_ops = {slow_read, dev_write};

static int setup(void **state)
{
	bus_init(&m.mmio, "mmio");
	bus_init(&m.pio, "pio");
	bus_register(&m.mmio, 0x1000, 0x1000, &dev_ops, NULL, "dev");
	bus_register(&m.pio, 0x80, 1, &dev_ops, NULL, "port80");
	bus_register(&m.pio, 0x510, 2, &dev_ops, NULL, "port510");
	bus_register(&m.pio, 0x90, 1, &slow_ops, NULL, "slow");
	m.cfg = &cfg;
	pol.audit_fd = memfd_create("audit", 0);
	m.policy = policy_active_create(&pol, NULL); /* no event ring: audit lines go directly */
	return pol.audit_fd < 0 || !m.policy;
}

static int teardown(void **state)
{
	policy_active_destroy(m.policy);
	close(pol.audit_fd);
	bus_destroy(&m.mmio);
	bus_destroy(&m.pio);
	return 0;
}

/* Replace the VM's policy with text's (NULL: none), as `popek policy` does. */
static void use(const char *text)
{
	char err[256];
	struct policy *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	if (text)
		assert_int_equal(policy_parse(p, text, "t", err, sizeof(err)), 0);
	policy_replace(m.policy, p);
	writes = reads = 0;
	last_write = 0;
	assert_int_equal(ftruncate(pol.audit_fd, 0), 0);
	lseek(pol.audit_fd, 0, SEEK_SET);
}

static const char *audit(void)
{
	static char buf[4096];
	ssize_t n = pread(pol.audit_fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static uint64_t mmio(uint64_t gpa, bool write, uint64_t val, unsigned size)
{
	struct vcpu_exit ex = {.reason = EXIT_MMIO};
	ex.mmio.gpa = gpa;
	ex.mmio.write = write;
	ex.mmio.size = (uint8_t)size;
	memcpy(ex.mmio.data, &val, 8);
	assert_int_equal(interpose(&v, &ex), EXIT_MMIO);
	uint64_t out = 0;
	memcpy(&out, ex.mmio.data, size);
	return out;
}

static void test_mmio(void **state)
{
	use(NULL);
	writes = 0;
	assert_int_equal(mmio(0x1008, false, 0, 4), 0x55667788);
	mmio(0x1008, true, 0x42, 4);
	assert_int_equal(last_write, 0x42);

	use("deny mmio write addr 0x1000-0x1007\n");
	mmio(0x1004, true, 0x42, 4);
	assert_int_equal(writes, 0); /* dropped */
	mmio(0x1008, true, 0x43, 4);
	assert_int_equal(last_write, 0x43);
	assert_int_equal(mmio(0x1004, false, 0, 4), 0x55667788); /* reads allowed */
	assert_non_null(strstr(audit(),
			       "\"class\":\"mmio\",\"op\":\"write\",\"addr\":4100,"
			       "\"size\":4,\"value\":66,\"verdict\":\"deny\",\"rule\":1}"));

	use("deny mmio read size 2\n");
	assert_int_equal(mmio(0x1000, false, 0, 2), 0xffff);
	assert_int_equal(reads, 0);
	assert_int_equal(mmio(0x1000, false, 0, 4), 0x55667788);

	use("log mmio\nmodify mmio write value 0xab\nmodify mmio read value 7\n");
	mmio(0x1010, true, 0x55, 1);
	assert_int_equal(last_write, 0xab);
	assert_int_equal(mmio(0x1010, false, 0, 8), 7);
	assert_int_equal(reads, 1); /* the device was still read */
	assert_non_null(strstr(audit(), "\"value\":171,\"verdict\":\"modify\",\"rule\":2}"));
	assert_non_null(strstr(audit(), "\"value\":7,\"verdict\":\"modify\",\"rule\":3}"));

	use("log mmio addr 0x1010\n");
	assert_int_equal(mmio(0x1010, false, 0, 1), 0x88);
	assert_non_null(strstr(audit(), "\"op\":\"read\",\"addr\":4112,\"size\":1,\"value\":136,"
					"\"verdict\":\"log\",\"rule\":1}"));
	mmio(0x1011, false, 0, 1);
	assert_int_equal(strchr(audit(), '\n')[1], 0); /* only the one line */
}

/* REP OUTSB of 3 bytes to port 0x80: each element through the policy. */
static void test_pio_rep(void **state)
{
	uint8_t data[3] = {1, 2, 3};
	struct vcpu_exit ex = {.reason = EXIT_IO};
	ex.io.port = 0x80;
	ex.io.size = 1;
	ex.io.write = true;
	ex.io.count = 3;
	ex.io.data = data;
	use("modify pio write port 0x80 value 9\n");
	assert_int_equal(interpose(&v, &ex), EXIT_IO);
	assert_int_equal(writes, 3);
	assert_int_equal(last_write, 9);
	use("deny pio port 0x80\n");
	assert_int_equal(interpose(&v, &ex), EXIT_IO);
	assert_int_equal(writes, 0);
	ex.io.write = false;
	assert_int_equal(interpose(&v, &ex), EXIT_IO);
	assert_int_equal(reads, 0);
	assert_memory_equal(data, "\xff\xff\xff", 3);
}

/* A 32-bit OUT carrying registers: a hypercall only on popek's port. */
static uint64_t call(uint16_t port, uint64_t nr, enum exit_reason want)
{
	uint32_t val = (uint32_t)nr;
	struct vcpu_exit ex = {.reason = EXIT_IO};
	ex.io.port = port;
	ex.io.size = 4;
	ex.io.write = true;
	ex.io.count = 1;
	ex.io.data = (uint8_t *)&val;
	ex.io.has_regs = true;
	ex.io.regs.rax = nr;
	ex.io.regs.rbx = 0x5555;
	assert_int_equal(interpose(&v, &ex), want);
	assert_int_equal(ex.io.regs_dirty, want == EXIT_HYPERCALL);
	assert_int_equal(ex.io.regs.rbx, 0x5555); /* only RAX changes */
	return ex.io.regs.rax;
}

static void test_hypercall(void **state)
{
	use("deny hypercall nr 4\nmodify hypercall nr 0 value 99\n");
	assert_int_equal(call(POPEK_HC_PORT, POPEK_HC_YIELD, EXIT_HYPERCALL),
			 (uint64_t) - (int64_t)POPEK_EPERM);
	assert_int_equal(call(POPEK_HC_PORT, POPEK_HC_VERSION, EXIT_HYPERCALL), 99);
	assert_non_null(strstr(audit(), "\"class\":\"hypercall\",\"op\":\"call\",\"nr\":4,"));
	use(NULL);
	assert_int_equal(call(POPEK_HC_PORT, POPEK_HC_YIELD, EXIT_HYPERCALL), 0);
	assert_int_equal(call(POPEK_HC_PORT, POPEK_HC_VERSION, EXIT_HYPERCALL),
			 POPEK_HC_ABI_VERSION);
	writes = 0;
	call(0x80, POPEK_HC_VERSION, EXIT_IO); /* another port: plain port I/O */
	assert_int_equal(writes, 1);
}

static void *slow_access(void *arg)
{
	uint8_t data;
	struct vcpu_exit ex = {.reason = EXIT_IO};
	ex.io.port = 0x90;
	ex.io.size = 1;
	ex.io.count = 1;
	ex.io.data = &data;
	interpose(&v, &ex);
	return NULL;
}

/* An exit of a class no rule and no trace watches holds no reader slot: a
 * device that takes its time does not hold back `popek policy` (which waits
 * for every action that holds the policy it replaces). */
static void test_unwatched_class_holds_nothing(void **state)
{
	use("deny disk write sectors 0-7\n");
	atomic_store(&slow_release, false);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, slow_access, NULL), 0);
	nanosleep(&(struct timespec){0, 50000000}, NULL); /* it is in slow_read now */
	use("deny disk write sectors 8-15\n");		  /* returns at once */
	atomic_store(&slow_release, true);
	pthread_join(t, NULL);
	assert_false(atomic_load(&slow_gave_up));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mmio),
	    cmocka_unit_test(test_pio_rep),
	    cmocka_unit_test(test_hypercall),
	    cmocka_unit_test(test_unwatched_class_holds_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
