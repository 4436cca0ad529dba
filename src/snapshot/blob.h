/* Little-endian byte buffers with bounds: the building block of the snapshot
 * file format. A reader never reads past its end; after any short read it is
 * marked bad and every later get returns zero. */
#ifndef POPEK_BLOB_H
#define POPEK_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct blob {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

void blob_put8(struct blob *b, uint8_t v);
void blob_put16(struct blob *b, uint16_t v);
void blob_put32(struct blob *b, uint32_t v);
void blob_put64(struct blob *b, uint64_t v);
void blob_put_bytes(struct blob *b, const void *p, size_t n);
void blob_free(struct blob *b);

struct reader {
	const uint8_t *p;
	size_t left;
	bool bad;
};

uint8_t rd_get8(struct reader *r);
uint16_t rd_get16(struct reader *r);
uint32_t rd_get32(struct reader *r);
uint64_t rd_get64(struct reader *r);
void rd_get_bytes(struct reader *r, void *dst, size_t n);
/* A view of the next n bytes (NULL and bad if fewer remain). */
const uint8_t *rd_view(struct reader *r, size_t n);

#endif
