/* Fuzz the frame classifier (net/frame.c) and net rule matching: any bytes
 * are a frame the guest sends or the network delivers. The classifier must
 * read only inside them, report ports only of an IP packet that holds them,
 * and every rule must be matchable against what it found. */
#include <stdlib.h>
#include <string.h>

#include "net/frame.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rules[] = "deny net tcp dport 25\n"
			    "log net rx udp sport 53 src 10.0.2.0/24\n"
			    "limit net bytes 10M/s\n"
			    "deny net icmp dst fd00::/8\n"
			    "pause net fragment ethertype 0x86dd\n"
			    "stop net proto 47 length 100-200\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy p;
	static int parsed;
	char err[256];
	if (!parsed) {
		if (policy_parse(&p, rules, "fuzz", err, sizeof(err)))
			abort();
		parsed = 1;
	}
	/* An exact-size copy: ASan sees any read past the frame. */
	uint8_t *f = malloc(size ? size : 1);
	if (!f)
		return 0;
	memcpy(f, data, size);
	struct frame_info fi;
	frame_classify(f, size, &fi);
	if (size < 14 && (fi.ethertype || fi.family))
		abort();
	if ((fi.flags & FRAME_PORTS) && (!fi.family || size < 14 + 20 + 4))
		abort();
	if (fi.family && fi.family != 4 && fi.family != 6)
		abort();
	const struct policy_rule *logged;
	struct policy_access a = {.cls = POLICY_NET,
				  .op = size & 1 ? POLICY_READ : POLICY_WRITE,
				  .len = size,
				  .vcpu = -1,
				  .dev = "virtio-net0",
				  .frame = &fi};
	policy_match(&p, &a, &logged);
	policy_limit(&p, &a, size * 1000);
	free(f);
	return 0;
}
