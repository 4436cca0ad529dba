#include "snapshot/sections.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

void sections_begin(struct blob *b, uint32_t count)
{
	blob_put_bytes(b, SECTIONS_MAGIC, 8);
	blob_put32(b, count);
}

void sections_add(struct blob *b, const char *name, const void *data, uint64_t len)
{
	size_t n = strlen(name);
	blob_put8(b, (uint8_t)n);
	blob_put_bytes(b, name, n);
	blob_put64(b, len);
	blob_put32(b, (uint32_t)crc32(0, data, (uInt)len));
	blob_put_bytes(b, data, len);
}

int sections_parse(const uint8_t *buf, size_t len, struct sections *out, char *err, size_t errlen)
{
	struct reader r = {buf, len, false};
	out->n = 0;
	const uint8_t *magic = rd_view(&r, 8);
	if (!magic || memcmp(magic, SECTIONS_MAGIC, 8)) {
		snprintf(err, errlen, "state.bin is not a popek state file (bad magic)");
		return -1;
	}
	uint32_t count = rd_get32(&r);
	if (count > SECTIONS_MAX) {
		snprintf(err, errlen, "state.bin claims %u sections (limit %d)", count,
			 SECTIONS_MAX);
		return -1;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct section *s = &out->s[i];
		uint8_t nlen = rd_get8(&r);
		const uint8_t *name = rd_view(&r, nlen);
		uint64_t dlen = rd_get64(&r);
		uint32_t crc = rd_get32(&r);
		if (r.bad || nlen == 0 || nlen > SECTION_NAME_MAX || dlen > r.left) {
			snprintf(err, errlen, "state.bin is truncated or damaged at section %u", i);
			return -1;
		}
		memcpy(s->name, name, nlen);
		s->name[nlen] = 0;
		s->data = rd_view(&r, dlen);
		s->len = dlen;
		if ((uint32_t)crc32(0, s->data, (uInt)dlen) != crc) {
			snprintf(err, errlen, "state.bin: section '%s' fails its checksum",
				 s->name);
			return -1;
		}
		out->n++;
	}
	if (r.left) {
		snprintf(err, errlen, "state.bin has %zu bytes of trailing garbage", r.left);
		return -1;
	}
	return 0;
}

const struct section *sections_find(const struct sections *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->s[i].name, name))
			return &s->s[i];
	return NULL;
}
