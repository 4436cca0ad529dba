/* Net rules: the frame classifier on good and malformed frames (truncated
 * IP and TCP headers, header lengths that lie, VLAN tags, IPv6 extension
 * headers, fragments), net rules parsed and matched, and the canonical form
 * of every kind of rule read back into the same rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net/frame.h"
#include "policy/policy.h"

/* Ethernet (with vlans 802.1Q tags), IPv4 with ihl words, TCP or UDP. */
static size_t ipv4_frame(uint8_t *f, int vlans, unsigned ihl, uint8_t proto, uint16_t sport,
			 uint16_t dport, uint16_t total)
{
	memset(f, 0, 128);
	size_t o = 12;
	for (int i = 0; i < vlans; i++, o += 4) {
		f[o] = 0x81;
		f[o + 2] = 0;
		f[o + 3] = 5; /* VLAN 5 */
	}
	f[o] = 0x08;
	f[o + 1] = 0x00;
	uint8_t *ip = f + o + 2;
	ip[0] = (uint8_t)(0x40 | ihl);
	ip[2] = (uint8_t)(total >> 8);
	ip[3] = (uint8_t)total;
	ip[9] = proto;
	memcpy(ip + 12, (uint8_t[]){10, 0, 2, 15}, 4);
	memcpy(ip + 16, (uint8_t[]){10, 0, 2, 2}, 4);
	uint8_t *l4 = ip + (ihl < 5 ? 5 : ihl) * 4;
	l4[0] = (uint8_t)(sport >> 8);
	l4[1] = (uint8_t)sport;
	l4[2] = (uint8_t)(dport >> 8);
	l4[3] = (uint8_t)dport;
	return (size_t)(l4 - f) + 20;
}

static void test_classify_ipv4(void **state)
{
	(void)state;
	uint8_t f[128];
	struct frame_info fi;
	size_t n = ipv4_frame(f, 0, 5, 6, 40000, 25, 40);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.ethertype, 0x0800);
	assert_int_equal(fi.family, 4);
	assert_int_equal(fi.proto, 6);
	assert_true(fi.flags & FRAME_PORTS);
	assert_int_equal(fi.sport, 40000);
	assert_int_equal(fi.dport, 25);
	assert_memory_equal(fi.dst, ((uint8_t[]){10, 0, 2, 2}), 4);
	/* Options: the ports are past them. */
	n = ipv4_frame(f, 0, 7, 17, 53, 5353, 48);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.proto, 17);
	assert_int_equal(fi.dport, 5353);
	/* Two VLAN tags are looked through; a third is not. */
	n = ipv4_frame(f, 2, 5, 6, 1, 25, 40);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.vlans, 2);
	assert_int_equal(fi.ethertype, 0x0800);
	assert_int_equal(fi.dport, 25);
	n = ipv4_frame(f, 3, 5, 6, 1, 25, 40);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.ethertype, 0x8100);
	assert_int_equal(fi.family, 0);
}

static void test_classify_malformed(void **state)
{
	(void)state;
	uint8_t f[128];
	struct frame_info fi;
	size_t n = ipv4_frame(f, 0, 5, 6, 1, 25, 40);
	/* Every truncation: never a read past the end (ASan), ports only whole. */
	for (size_t len = 0; len <= n; len++) {
		frame_classify(f, len, &fi);
		assert_int_equal(fi.family, len >= 14 + 20 ? 4 : 0);
		assert_int_equal(!!(fi.flags & FRAME_PORTS), len >= 14 + 20 + 4);
	}
	/* IHL below 5, or past the frame: no IP header at all. */
	n = ipv4_frame(f, 0, 4, 6, 1, 25, 40);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.family, 0);
	n = ipv4_frame(f, 0, 15, 6, 1, 25, 80);
	frame_classify(f, 14 + 40, &fi);
	assert_int_equal(fi.family, 0);
	/* A total length shorter than the header is a lie too. */
	n = ipv4_frame(f, 0, 5, 6, 1, 25, 12);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.family, 0);
	/* A total length that ends the packet before the ports: no ports (the
	 * rest is Ethernet padding, not TCP). */
	n = ipv4_frame(f, 0, 5, 6, 1, 25, 22);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.family, 4);
	assert_false(fi.flags & FRAME_PORTS);
	/* Version 6 in an IPv4 ethertype. */
	n = ipv4_frame(f, 0, 5, 6, 1, 25, 40);
	f[14] = 0x65;
	frame_classify(f, n, &fi);
	assert_int_equal(fi.family, 0);
	/* Fragments: the first has ports, the others none. */
	n = ipv4_frame(f, 0, 5, 6, 1, 25, 40);
	f[14 + 6] = 0x20; /* more fragments, offset 0 */
	frame_classify(f, n, &fi);
	assert_true(fi.flags & FRAME_FRAGMENT);
	assert_true(fi.flags & FRAME_PORTS);
	f[14 + 6] = 0x00;
	f[14 + 7] = 0x03; /* offset 24 bytes: the "ports" are payload */
	frame_classify(f, n, &fi);
	assert_true(fi.flags & FRAME_FRAGMENT);
	assert_false(fi.flags & FRAME_PORTS);
}

/* Ethernet + IPv6 + the extension headers in ext (each 8 bytes) + TCP. */
static size_t ipv6_frame(uint8_t *f, const uint8_t *ext, int next_ext, int n_ext)
{
	memset(f, 0, 200);
	f[12] = 0x86;
	f[13] = 0xdd;
	uint8_t *ip = f + 14;
	ip[0] = 0x60;
	ip[4] = 0;
	ip[5] = (uint8_t)(8 * n_ext + 20);
	ip[6] = (uint8_t)(n_ext ? next_ext : 6);
	ip[8] = 0xfd;
	ip[39] = 1; /* dst ::1 */
	if (n_ext)
		memcpy(ip + 40, ext, 8 * (size_t)n_ext);
	uint8_t *tcp = ip + 40 + 8 * n_ext;
	tcp[3] = 25;
	return (size_t)(tcp - f) + 20;
}

static void test_classify_ipv6(void **state)
{
	(void)state;
	uint8_t f[200];
	struct frame_info fi;
	size_t n = ipv6_frame(f, NULL, 0, 0);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.family, 6);
	assert_int_equal(fi.proto, 6);
	assert_int_equal(fi.dport, 25);
	assert_int_equal(fi.src[0], 0xfd);
	/* Hop-by-hop then destination options, then TCP. */
	uint8_t ext[16] = {60, 0, 0, 0, 0, 0, 0, 0, 6, 0};
	n = ipv6_frame(f, ext, 0, 2);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.proto, 6);
	assert_int_equal(fi.dport, 25);
	/* An extension header whose length runs past the frame: the walk stops
	 * there, no ports. */
	ext[1] = 200;
	n = ipv6_frame(f, ext, 0, 2);
	frame_classify(f, n, &fi);
	assert_int_equal(fi.proto, 0);
	assert_false(fi.flags & FRAME_PORTS);
	/* A later fragment: no ports. */
	uint8_t frag[8] = {6, 0, 0, 0x10};
	n = ipv6_frame(f, frag, 44, 1);
	frame_classify(f, n, &fi);
	assert_true(fi.flags & FRAME_FRAGMENT);
	assert_false(fi.flags & FRAME_PORTS);
	for (size_t len = 0; len <= n; len++)
		frame_classify(f, len, &fi);
}

static struct policy pol;
static char err[256];

static int parse(const char *text)
{
	err[0] = 0;
	return policy_parse(&pol, text, "p.policy", err, sizeof(err));
}

static const struct policy_rule *match_frame(const uint8_t *f, size_t n, unsigned op)
{
	struct frame_info fi;
	frame_classify(f, n, &fi);
	const struct policy_rule *logged;
	struct policy_access a = {
	    .cls = POLICY_NET, .op = op, .len = n, .vcpu = -1, .dev = "virtio-net0", .frame = &fi};
	return policy_match(&pol, &a, &logged);
}

static void test_net_rules(void **state)
{
	(void)state;
	uint8_t f[128];
	size_t n = ipv4_frame(f, 0, 5, 6, 40000, 25, 40);
	assert_int_equal(parse("deny net tcp dport 25\nlimit net bytes 10M/s\n"), 0);
	assert_int_equal(pol.rule[0].proto, 6);
	assert_int_equal(pol.rule[1].limit.rate, 10u << 20);
	assert_non_null(match_frame(f, n, POLICY_WRITE));
	n = ipv4_frame(f, 0, 5, 17, 40000, 25, 40);
	assert_null(match_frame(f, n, POLICY_WRITE)); /* UDP */
	n = ipv4_frame(f, 0, 5, 6, 40000, 26, 40);
	assert_null(match_frame(f, n, POLICY_WRITE));
	/* A port rule does not match a frame without ports; fragment does. */
	assert_int_equal(parse("deny net dport 0-65535\ndeny net fragment\n"), 0);
	n = ipv4_frame(f, 0, 5, 1, 0, 0, 40);
	assert_null(match_frame(f, n, POLICY_WRITE)); /* ICMP */
	n = ipv4_frame(f, 0, 5, 6, 1, 25, 40);
	f[14 + 7] = 3;
	assert_int_equal(match_frame(f, n, POLICY_READ)->line, 2);
	/* Directions, addresses, NIC, ethertype, length. */
	assert_int_equal(parse("allow net out dst 10.0.2.0/24 sport 40000\n"
			       "deny net rx src 10.0.2.15 nic 1\n"
			       "deny net in src 10.0.0.0/8 dev virtio-net0 length 0-59\n"
			       "deny net ethertype 0x0806\n"
			       "stop net icmp src fd00::/8\n"),
			 0);
	n = ipv4_frame(f, 0, 5, 6, 40000, 80, 40);
	assert_int_equal(match_frame(f, n, POLICY_WRITE)->action, POLICY_ALLOW);
	assert_int_equal(match_frame(f, n, POLICY_READ)->line, 3);
	assert_null(match_frame(f, 60, POLICY_READ)); /* length 60 */
	f[12] = 0x08, f[13] = 0x06;
	assert_int_equal(match_frame(f, n, POLICY_READ)->line, 4);
	uint8_t f6[200];
	n = ipv6_frame(f6, NULL, 0, 0);
	f6[14 + 6] = 58; /* ICMPv6 */
	assert_int_equal(match_frame(f6, n, POLICY_WRITE)->action, POLICY_STOP);
	f6[14 + 8] = 0xfe;
	assert_null(match_frame(f6, n, POLICY_WRITE));
}

static void refused(const char *text, const char *msg)
{
	if (parse(text) != -1 || !strstr(err, msg)) {
		print_error("%s: got '%s', want '...%s...'\n", text, err, msg);
		fail();
	}
}

static void test_net_malformed(void **state)
{
	(void)state;
	refused("modify net bytes 0x00",
		"p.policy:1:8: expected another action: net frames cannot be modified");
	refused("deny net read", "p.policy:1:10: expected rx, tx, length RANGE");
	refused("deny net dport 70000", "p.policy:1:16: expected a port range");
	refused("deny net dst 10.0.2.0/33", "p.policy:1:14: expected an address or prefix");
	refused("deny net dst 10.0.2", "expected an address or prefix");
	refused("deny net src fe80::/129", "expected an address or prefix");
	refused("deny net proto 256", "expected an IP protocol number (0-255)");
	refused("deny net tcp udp", "p.policy:1:14: expected");
	refused("deny net nic 0 dev virtio-net0", "p.policy:1:16: expected");
	refused("limit net ops", "expected a rate");
	refused("deny net contains \"x\"", "p.policy:1:10: expected");
}

/* Every kind of rule, in canonical form: printing it and parsing that gives
 * the same rules (but for their line), and printing again the same text. */
static const char *const canonical =
    "deny hypercall nr 4\n"
    "log pio port 0x70-0x71\n"
    "modify pio read port 0x71 value 0x0\n"
    "stop mmio write addr 0xfee00000-0xfee00fff size 4 vcpu 1\n"
    "deny pio write port 0x70 written 0x80-0xff dev cmos-rtc\n"
    "log hypercall nr 1 arg1 0x100-0xffff\n"
    "deny disk write sectors 0-2047\n"
    "limit disk ops 200/s burst 50\n"
    "limit disk bytes 20M/s\n"
    "pause disk write sectors 0\n"
    "log disk write sectors 0 contains 0x55aa\n"
    "modify disk write sectors 0 bytes 0x0000 at 510\n"
    "deny rng length 65-4294967295\n"
    "modify console write contains \"%\" bytes \"#\"\n"
    "deny console read contains \"rm -rf \\\"\\\\\"\n"
    "limit console bytes 1K/s burst 4K\n"
    "deny net tcp dport 25\n"
    "limit net bytes 10M/s\n"
    "limit net rx ops 1000/s burst 1500\n"
    "allow net tx dev virtio-net1 ethertype 0x0800 udp src 10.0.2.0/24 dst 10.0.2.3 sport "
    "1024-65535 dport 53\n"
    "deny net length 1000-1518 proto 47 dst fd00::/8 fragment\n"
    "log net ethertype 0x0806-0x0808 icmp\n"
    "deny pio\n";

static void test_canonical_round_trip(void **state)
{
	(void)state;
	assert_int_equal(parse(canonical), 0);
	char *text = policy_format(&pol);
	assert_non_null(text);
	assert_string_equal(text, canonical);
	static struct policy again;
	assert_int_equal(policy_parse(&again, text, "canonical", err, sizeof(err)), 0);
	assert_int_equal(again.n, pol.n);
	for (int i = 0; i < pol.n; i++)
		assert_memory_equal(&again.rule[i], &pol.rule[i],
				    offsetof(struct policy_rule, line));
	free(text);
	/* Written another way, the same canonical text. */
	assert_int_equal(parse("  deny   net  dport 25 tcp   # mail\n\n"
			       "limit net bytes 10485760/s burst 1048576\n"
			       "deny net out nic 2 src 10.0.2.77/24\n"),
			 0);
	text = policy_format(&pol);
	assert_string_equal(text, "deny net tcp dport 25\nlimit net bytes 10M/s\n"
				  "deny net tx dev virtio-net2 src 10.0.2.0/24\n");
	free(text);
	pol.n = 0;
	text = policy_format(&pol);
	assert_string_equal(text, "");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_classify_ipv4), cmocka_unit_test(test_classify_malformed),
	    cmocka_unit_test(test_classify_ipv6), cmocka_unit_test(test_net_rules),
	    cmocka_unit_test(test_net_malformed), cmocka_unit_test(test_canonical_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
