/* Fuzz the policy parser and matcher: any text is either refused with a
 * FILE:LINE:COL message or becomes rules that every access can be matched
 * against (the syscall class's path, family, address and port too), and
 * whose canonical form (policy_format) parses back into the same rules. The
 * input's first 16 bytes are the access, the rest the text. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy p;
	uint8_t head[16] = {0};
	size_t h = size < sizeof(head) ? size : sizeof(head);
	memcpy(head, data, h);
	char *text = malloc(size - h + 1);
	if (!text)
		return 0;
	memcpy(text, data + h, size - h);
	text[size - h] = 0;
	memset(&p, 0, sizeof(p));
	p.audit_fd = -1;
	char err[512];
	if (policy_parse(&p, text, "fuzz", err, sizeof(err)) == 0) {
		if (p.n < 0 || p.n > POLICY_MAX_RULES)
			abort();
		/* The canonical form reads back into the same rules (before
		 * a limit's bucket moves). */
		static struct policy again;
		char *canon = policy_format(&p);
		if (!canon || policy_parse(&again, canon, "canonical", err, sizeof(err)) ||
		    again.n != p.n)
			abort();
		for (int i = 0; i < p.n; i++)
			if (memcmp(&again.rule[i], &p.rule[i], offsetof(struct policy_rule, line)))
				abort();
		free(canon);
		uint64_t addr;
		memcpy(&addr, head + 8, sizeof(addr));
		uint64_t args[4] = {addr, ~addr, head[4], head[5]};
		struct policy_access a = {.cls = head[0] % NR_POLICY_CLASSES,
					  .op = 1u << (head[1] % NR_POLICY_OPS),
					  .addr = addr,
					  .count = head[6],
					  .size = 1u << (head[2] % 4),
					  .len = head[7],
					  .value = addr >> 8,
					  .vcpu = head[3] % 4,
					  .dev = head[4] & 1 ? "virtio-blk0" : "uart0",
					  .args = head[5] & 1 ? args : NULL,
					  .data = (const uint8_t *)text,
					  .datalen = size - h};
		/* the syscall class's facts: a path (the text), a family, an address */
		const char *paths[] = {text};
		uint8_t ip[16];
		memcpy(ip, head, sizeof(ip));
		a.paths = paths;
		a.npaths = head[6] & 1;
		a.family = head[7] % 12;
		a.ip = head[6] & 2 ? ip : NULL;
		a.has_port = head[6] & 4;
		a.port = (uint16_t)addr;
		const struct policy_rule *logged, *r = policy_match(&p, &a, &logged);
		uint8_t buf[8] = {0};
		if (r && r->action == POLICY_MODIFY)
			policy_patch(r, buf, head[7] % (sizeof(buf) + 1));
		policy_limit(&p, &a, addr);
	} else if (strncmp(err, "fuzz:", 5) != 0) {
		abort(); /* a refusal names the file, line and column */
	}
	free(text);
	return 0;
}
