/* state.bin: named, checksummed sections (vCPUs, VM, devices). */
#ifndef POPEK_SNAPSHOT_SECTIONS_H
#define POPEK_SNAPSHOT_SECTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot/blob.h"

#define SECTIONS_MAGIC	 "POPEKST1"
#define SECTION_NAME_MAX 48
#define SECTIONS_MAX	 256

struct section {
	char name[SECTION_NAME_MAX + 1];
	const uint8_t *data;
	uint64_t len;
};

struct sections {
	int n;
	struct section s[SECTIONS_MAX];
};

void sections_begin(struct blob *b, uint32_t count);
void sections_add(struct blob *b, const char *name, const void *data, uint64_t len);

/* Parse and checksum-verify buf (which must outlive the result). */
int sections_parse(const uint8_t *buf, size_t len, struct sections *out, char *err, size_t errlen);
const struct section *sections_find(const struct sections *s, const char *name);

#endif
