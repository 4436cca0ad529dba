/* Guest RAM as a snapshot file: a sparse raw image (never-touched and zero
 * pages are holes), mapped copy-on-write at restore; or a zstd stream of the
 * same image. Every 1 MiB chunk carries a CRC32. */
#ifndef POPEK_MEMIMAGE_H
#define POPEK_MEMIMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/memory.h"

#define MEM_CHUNK (1u << 20)

typedef void (*progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Write file path in directory dir_fd. crcs has size/MEM_CHUNK entries.
 * Returns bytes of data written (sparse), or -1. */
int64_t memimage_save(const struct guest_mem *m, int dir_fd, const char *path, bool compress,
		      uint32_t *crcs, progress_fn progress, void *ctx, char *err, size_t errlen);

/* An fd whose contents are the RAM image (the file itself, or a memfd holding
 * the decompressed image), after checking its size and, if verify, every chunk
 * CRC. Returns -1 with err on any mismatch. */
int memimage_open(const char *path, bool compressed, uint64_t size, const uint32_t *crcs,
		  bool verify, char *err, size_t errlen);

/* Which pages of the chunk at off may hold data (cand[i] for page i), without
 * touching the others: reading a memfd hole would allocate it. Data is in the
 * backing file (SEEK_DATA) or, for a private mapping, in resident
 * copy-on-write pages (mincore). */
void memimage_data_pages(const struct guest_mem *m, uint64_t off, bool *cand);
bool memimage_page_zero(const uint8_t *page);

#endif
