/* The policy parser (good files, malformed ones with line:column messages)
 * and the matcher (first match wins, no match = allow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"

static struct policy pol;
static char err[256];
static const struct policy_rule *logged;

static int parse(const char *text)
{
	err[0] = 0;
	return policy_parse(&pol, text, "p.policy", err, sizeof(err));
}

static void refused(const char *text, const char *msg)
{
	if (parse(text) != -1 || strncmp(err, msg, strlen(msg))) {
		print_error("%s: got '%s', want '%s...'\n", text, err, msg);
		fail();
	}
}

static void test_issue_examples(void **state)
{
	(void)state;
	assert_int_equal(parse("# the rules of issue 11\n"
			       "deny hypercall nr 4                     # the call returns -EPERM\n"
			       "\n"
			       "log pio port 0x70-0x71\n"
			       "  modify pio read port 0x71 value 0x00\r\n"
			       "stop mmio write addr 0xfee00000-0xfee00fff size 4 vcpu 1"),
			 0);
	assert_int_equal(pol.n, 4);
	const struct policy_rule *r = &pol.rule[0];
	assert_int_equal(r->action, POLICY_DENY);
	assert_int_equal(r->cls, POLICY_HYPERCALL);
	assert_int_equal(r->addr.lo, 4);
	assert_int_equal(r->addr.hi, 4);
	assert_int_equal(r->line, 2);
	r = &pol.rule[1];
	assert_int_equal(r->action, POLICY_LOG);
	assert_int_equal(r->addr.lo, 0x70);
	assert_int_equal(r->addr.hi, 0x71);
	assert_int_equal(r->ops, POLICY_READ | POLICY_WRITE);
	r = &pol.rule[2];
	assert_int_equal(r->action, POLICY_MODIFY);
	assert_int_equal(r->ops, POLICY_READ);
	assert_int_equal(r->value, 0);
	assert_int_equal(r->line, 5);
	r = &pol.rule[3];
	assert_int_equal(r->cls, POLICY_MMIO);
	assert_int_equal(r->sizes, 1u << 4);
	assert_int_equal(r->vcpu, 1);
	assert_true(policy_has_class(&pol, POLICY_PIO));
	assert_true(policy_has_class(&pol, POLICY_MMIO));
	assert_false(policy_has_class(NULL, POLICY_PIO));
	assert_int_equal(parse("# nothing\n\n   \n"), 0);
	assert_int_equal(pol.n, 0);
	assert_false(policy_has_class(&pol, POLICY_HYPERCALL));
}

static void test_malformed(void **state)
{
	(void)state;
	refused("\nallow pio\nfrobnicate pio\n", "p.policy:3:1: expected an action");
	refused("deny", "p.policy:1:5: expected a class");
	refused("deny disc", "p.policy:1:6: expected a class");
	refused("deny pio port", "p.policy:1:14: expected a port range");
	refused("deny pio port 0x71-0x70", "p.policy:1:15: expected a port range");
	refused("deny pio port 0x10000", "p.policy:1:15: expected a port range");
	refused("deny pio port 12abc", "p.policy:1:15: expected a port range");
	refused("deny pio port 99999999999999999999999", "p.policy:1:15: expected a port range");
	refused("deny pio port -1", "p.policy:1:15: expected a port range");
	refused("deny pio port 1 port 2", "p.policy:1:17: expected read, write, size N");
	refused("deny hypercall read", "p.policy:1:16: expected nr RANGE");
	refused("deny hypercall port 1", "p.policy:1:16: expected nr RANGE");
	refused("deny mmio size 3", "p.policy:1:16: expected an access size of 1, 2, 4 or 8");
	refused("deny mmio size", "p.policy:1:15: expected an access size");
	refused("deny pio vcpu 64", "p.policy:1:15: expected a vCPU index below 64");
	refused("modify pio read port 0x71", "p.policy:1:26: expected value N");
	refused("modify pio read port 0x71 value", "p.policy:1:32: expected the value to use");
	refused("deny pio value 0",
		"p.policy:1:10: expected read, write, port RANGE, size N, written RANGE, vcpu N, "
		"dev NAME, or the end of the rule");
	refused("deny pio read write", "p.policy:1:15: expected port RANGE");
}

/* The device classes, limit and data bytes (issue 11's rules as written). */
static void test_device_rules(void **state)
{
	(void)state;
	assert_int_equal(parse("deny disk write sectors 0-2047\n"
			       "limit disk ops 200/s burst 50\n"
			       "limit disk bytes 20M/s\n"
			       "pause disk write sectors 0-0\n"
			       "modify console write dev uart0 bytes \"a\\\"b\\x41\\\\ #\" at 3\n"
			       "log hypercall nr 2 arg1 0x10-0x20 arg0 7\n"
			       "deny pio write port 0x70 written 0x80-0xff\n"
			       "deny rng length 65-0xffffffff\n"
			       "log console read contains 0x1b5b41\n"),
			 0);
	const struct policy_rule *r = &pol.rule[0];
	assert_int_equal(r->cls, POLICY_DISK);
	assert_int_equal(r->ops, POLICY_WRITE);
	assert_int_equal(r->addr.hi, 2047);
	r = &pol.rule[1];
	assert_int_equal(r->action, POLICY_LIMIT);
	assert_false(r->limit.bytes);
	assert_int_equal(r->limit.rate, 200);
	assert_int_equal(r->limit.burst, 50);
	assert_int_equal(r->ops, POLICY_READ | POLICY_WRITE | POLICY_FLUSH | POLICY_DISCARD);
	r = &pol.rule[2];
	assert_true(r->limit.bytes);
	assert_int_equal(r->limit.rate, 20 << 20);
	assert_int_equal(r->limit.burst, (20 << 20) / 10); /* 100 ms worth by default */
	r = &pol.rule[4];
	assert_string_equal(r->dev, "uart0");
	assert_int_equal(r->nbytes, 7);
	assert_memory_equal(r->bytes, "a\"bA\\ #", 7);
	assert_int_equal(r->at, 3);
	r = &pol.rule[5];
	assert_int_equal(r->arg[0].lo, 7);
	assert_int_equal(r->arg[1].hi, 0x20);
	assert_int_equal(r->arg[2].hi, UINT64_MAX);
	assert_int_equal(pol.rule[8].ncontains, 3);
	assert_int_equal(pol.limit_classes, 1u << POLICY_DISK);
	assert_int_equal(pol.vcpu_classes, 1u << POLICY_DISK);
	assert_int_equal(pol.data_classes, 1u << POLICY_CONSOLE);
	assert_int_equal(pol.dev_classes, 1u << POLICY_CONSOLE);

	struct policy_access a = {
	    .cls = POLICY_DISK, .op = POLICY_WRITE, .addr = 2040, .count = 16};
	assert_int_equal(policy_match(&pol, &a, &logged)->line, 1); /* overlaps 0-2047 */
	a.addr = 2048;
	assert_null(policy_match(&pol, &a, &logged));
	a.addr = 0;
	a.op = POLICY_READ;
	assert_null(policy_match(&pol, &a, &logged)); /* limits do not decide */

	uint64_t args[4] = {7, 0x18, 0, 0};
	a = (struct policy_access){
	    .cls = POLICY_HYPERCALL, .op = POLICY_CALL, .addr = 2, .args = args};
	assert_null(policy_match(&pol, &a, &logged));
	assert_int_equal(logged->line, 6);
	args[1] = 0x21;
	policy_match(&pol, &a, &logged);
	assert_null(logged);
	a = (struct policy_access){
	    .cls = POLICY_PIO, .op = POLICY_WRITE, .addr = 0x70, .value = 0x8d};
	assert_int_equal(policy_match(&pol, &a, &logged)->line, 7);
	a.value = 0x0d;
	assert_null(policy_match(&pol, &a, &logged));
	a = (struct policy_access){.cls = POLICY_RNG, .op = POLICY_READ, .len = 64};
	assert_null(policy_match(&pol, &a, &logged));
	a.len = 65;
	assert_int_equal(policy_match(&pol, &a, &logged)->line, 8);
	a = (struct policy_access){.cls = POLICY_CONSOLE,
				   .op = POLICY_READ,
				   .len = 4,
				   .data = (const uint8_t *)"x\x1b[A",
				   .datalen = 4};
	policy_match(&pol, &a, &logged);
	assert_int_equal(logged->line, 9);
	a.data = NULL; /* data not handed over: a contains rule cannot match */
	policy_match(&pol, &a, &logged);
	assert_null(logged);

	/* a flush covers no sector: only rules without a sector range see it */
	assert_int_equal(parse("deny disk sectors 0-9\nstop disk flush\n"), 0);
	a = (struct policy_access){.cls = POLICY_DISK, .op = POLICY_FLUSH};
	assert_int_equal(policy_match(&pol, &a, &logged)->line, 2);
	assert_int_equal(parse("deny disk write sectors 0-2047\n"
			       "modify console write dev uart0 bytes \"a\\\"b\\x41\\\\ #\" at 3\n"),
			 0);
	uint8_t buf[4] = "....";
	assert_int_equal(policy_patch(&pol.rule[1], buf, 4), 1); /* clipped to the data */
	assert_memory_equal(buf, "...a", 4);
	assert_int_equal(policy_patch(&pol.rule[1], buf, 2), 0);

	refused("limit disk ops 0/s", "p.policy:1:16: expected a rate (N/s with N > 0");
	refused("limit disk ops 9/m", "p.policy:1:16: expected a rate");
	refused("limit disk bytes 99999999999999999999G/s", "p.policy:1:18: expected a rate");
	refused("limit disk ops 1/s burst", "p.policy:1:25: expected a burst size");
	refused("limit disk burst 5",
		"p.policy:1:12: expected read, write, flush, discard, sectors");
	refused("modify rng", "p.policy:1:11: expected bytes BYTES");
	refused("modify rng bytes \"\"", "p.policy:1:18: expected bytes");
	refused("modify rng bytes 0x123", "p.policy:1:18: expected bytes");
	refused("modify rng bytes \"\\q\"", "p.policy:1:18: expected bytes");
	refused("modify disk bytes 0x00", "p.policy:1:23: expected write (contains and modify");
	refused("deny rng contains \"a\"", "p.policy:1:10: expected read, length RANGE");
	refused("deny hypercall dev x", "p.policy:1:16: expected nr RANGE, arg0..arg3 RANGE");
	refused("deny disk dev", "p.policy:1:14: expected a device name");
	refused("deny disk dev abcdefghijklmnopqrstuvwxyz",
		"p.policy:1:15: expected a device name");
	refused("deny console write write", "p.policy:1:20: expected length RANGE");
	refused("limit pio bytes 1/s ops 1/s", "p.policy:1:21: expected read, write, port RANGE");
}

static void test_too_many_rules(void **state)
{
	(void)state;
	static char text[(POLICY_MAX_RULES + 1) * 10];
	char *p = text;
	for (int i = 0; i <= POLICY_MAX_RULES; i++)
		p += sprintf(p, "deny pio\n");
	refused(text, "p.policy:1025:1: expected at most 1024 rules");
}

static const struct policy_rule *match(enum policy_class c, bool write, uint64_t addr,
				       unsigned size, int vcpu)
{
	struct policy_access a = {.cls = c,
				  .op = c == POLICY_HYPERCALL ? POLICY_CALL
					: write		      ? POLICY_WRITE
							      : POLICY_READ,
				  .addr = addr,
				  .size = size,
				  .vcpu = vcpu};
	return policy_match(&pol, &a, &logged);
}

static void test_match(void **state)
{
	(void)state;
	assert_int_equal(parse("log pio port 0x70-0x71\n"
			       "modify pio read port 0x71 value 0\n"
			       "deny pio write size 2 vcpu 1\n"
			       "deny hypercall nr 4\n"
			       "allow mmio addr 0x1000-0x1fff\n"
			       "stop mmio\n"
			       "log pio port 0x71\n"
			       "deny pio port 0x71\n"),
			 0);
	/* log records and goes on; the first deciding rule wins */
	assert_int_equal(match(POLICY_PIO, false, 0x71, 1, 0)->line, 2);
	assert_int_equal(logged->line, 1);
	assert_int_equal(match(POLICY_PIO, true, 0x71, 1, 0)->line, 8);
	assert_int_equal(logged->line, 1);
	assert_null(match(POLICY_PIO, false, 0x70, 1, 0));
	assert_int_equal(logged->line, 1);
	assert_null(match(POLICY_PIO, false, 0x72, 1, 0));
	assert_null(logged);
	assert_null(match(POLICY_PIO, true, 0x80, 2, 0));  /* vcpu 0 */
	assert_null(match(POLICY_PIO, true, 0x80, 4, 1));  /* size 4 */
	assert_null(match(POLICY_PIO, false, 0x80, 2, 1)); /* a read */
	assert_int_equal(match(POLICY_PIO, true, 0x80, 2, 1)->line, 3);
	assert_int_equal(match(POLICY_HYPERCALL, true, 4, 4, 0)->line, 4);
	assert_null(match(POLICY_HYPERCALL, true, 3, 4, 0));
	assert_int_equal(match(POLICY_MMIO, true, 0x1800, 4, 0)->action, POLICY_ALLOW);
	assert_int_equal(match(POLICY_MMIO, false, 0x2000, 8, 0)->action, POLICY_STOP);
	/* What each rule met (popek stats): the deciding rules once per action
	 * they decided, the log rules every action they saw on the way. */
	const uint64_t hits[] = {3, 1, 1, 1, 1, 1, 1, 1};
	for (int i = 0; i < pol.n; i++)
		assert_int_equal(pol.rule[i].hits, hits[i]);
}

/* A limit rule counts what it charged and how long it made actions wait. */
static void test_limit_counts(void **state)
{
	(void)state;
	assert_int_equal(parse("limit disk ops 10/s burst 1\ndeny disk write\n"), 0);
	struct policy_access a = {.cls = POLICY_DISK, .op = POLICY_WRITE, .count = 1};
	uint64_t now = 1000000000;
	assert_int_equal(policy_limit(&pol, &a, now), 0);
	assert_int_equal(policy_limit(&pol, &a, now), 100000000); /* the next op is due in 0.1 s */
	assert_int_equal(pol.rule[0].hits, 2);
	assert_int_equal(pol.rule[0].held_ns, 100000000);
	assert_int_equal(pol.rule[1].hits, 0); /* policy_limit charges, it does not decide */
}

/* popek exec's class: names, paths, socket facts, errno. */
static void test_syscall_rules(void **state)
{
	(void)state;
	assert_int_equal(parse("deny syscall openat path /etc/* errno EACCES\n"
			       "deny syscall connect family inet addr 10.0.0.0/8 port 1-1023\n"
			       "log syscall nr 0-2 arg0 3\n"
			       "modify syscall getuid value 0\n"
			       "deny syscall connect addr ::1\n"),
			 0);
	assert_int_equal(pol.n, 5);
	const struct policy_rule *r = &pol.rule[0];
	assert_int_equal(r->cls, POLICY_SYSCALL);
	assert_string_equal(r->call, "openat");
	assert_string_equal(r->path, "/etc/*");
	assert_int_equal(r->err, 13);
	assert_int_equal(pol.rule[1].family, 2);
	assert_int_equal(pol.rule[1].prefix, 104);
	assert_int_equal(pol.rule[2].addr.hi, 2);
	assert_int_equal(pol.rule[3].err, 1); /* EPERM unless told */

	const char *paths[] = {"/tmp/x", "/etc/shadow"};
	struct policy_access a = {
	    .cls = POLICY_SYSCALL, .op = POLICY_CALL, .addr = 257, .paths = paths, .npaths = 1};
	/* popek exec turns the names into numbers */
	pol.rule[0].addr = (struct policy_range){257, 257};
	pol.rule[3].addr = (struct policy_range){102, 102};
	assert_null(policy_match(&pol, &a, &logged));
	a.npaths = 2; /* the link resolves to a denied file */
	assert_ptr_equal(policy_match(&pol, &a, &logged), &pol.rule[0]);
	a.npaths = 0;
	assert_null(policy_match(&pol, &a, &logged)); /* no path: a path rule cannot match */

	uint8_t ip[16] = {[10] = 0xff, [11] = 0xff, [12] = 10, [13] = 1, [14] = 2, [15] = 3};
	pol.rule[1].addr = (struct policy_range){42, 42};
	a = (struct policy_access){.cls = POLICY_SYSCALL,
				   .op = POLICY_CALL,
				   .addr = 42,
				   .family = 2,
				   .ip = ip,
				   .has_port = true,
				   .port = 80};
	assert_ptr_equal(policy_match(&pol, &a, &logged), &pol.rule[1]);
	a.port = 8080;
	assert_null(policy_match(&pol, &a, &logged));
	a.port = 80;
	ip[12] = 11;
	assert_null(policy_match(&pol, &a, &logged));
	uint8_t one[16] = {[15] = 1};
	a = (struct policy_access){
	    .cls = POLICY_SYSCALL, .op = POLICY_CALL, .addr = 42, .family = 10, .ip = one};
	pol.rule[4].addr = (struct policy_range){42, 42};
	assert_ptr_equal(policy_match(&pol, &a, &logged), &pol.rule[4]);

	refused("deny syscall openat nr 2", "p.policy:1:25: expected a call's name or nr RANGE");
	refused("deny syscall openat errno ENOTANERRNO", "p.policy:1:27: expected an errno");
	refused("deny syscall connect addr 1.2.3.4/33", "p.policy:1:27: expected an address");
	refused("deny syscall connect family bogus", "p.policy:1:29: expected a socket family");
	refused("deny syscall open path relative", "p.policy:1:24: expected a path glob");
	refused("log syscall openat errno EPERM", "p.policy:1:20: expected");
	refused("deny syscall nr 512", "p.policy:1:17: expected a nr range");
	refused("deny syscall dev uart0", "p.policy:1:14: expected");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_issue_examples), cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_device_rules),   cmocka_unit_test(test_too_many_rules),
	    cmocka_unit_test(test_match),	   cmocka_unit_test(test_limit_counts),
	    cmocka_unit_test(test_syscall_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
