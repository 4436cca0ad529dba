/* The compressed kernel inside a bzImage (its payload, boot protocol 2.08+),
 * decompressed on the host: the guest then need not run the kernel's own
 * decompressor, which is slow wherever guest code is (nested, emulated). */
#ifndef POPEK_BZPAYLOAD_H
#define POPEK_BZPAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* A payload being decoded front to back, straight to where its bytes go. */
struct bzpayload;

/* Start decoding the payload p (len bytes, as the setup header's
 * payload_offset and payload_length give it): the vmlinux ELF, perhaps with
 * relocations after it. *size is its decompressed size, the payload's last
 * 4 bytes as Linux's build appends them (gzip's own trailer); more than max
 * is refused. gzip, xz and zstd are decoded; another codec, or a size out of
 * bounds, returns NULL with err naming the codec and the problem. */
struct bzpayload *bzpayload_open(const uint8_t *p, size_t len, uint64_t max, uint64_t *size,
				 char *err, size_t errlen);
/* The next n bytes of the output into dst, or past them if dst is NULL.
 * Returns 0, or -1 with err if the data is corrupt or ends before them. */
int bzpayload_read(struct bzpayload *z, uint8_t *dst, uint64_t n, char *err, size_t errlen);
/* Decode the rest: the stream must end exactly at the declared size, its
 * own check (CRC, checksum) passing. Returns 0 or -1 with err. */
int bzpayload_finish(struct bzpayload *z, char *err, size_t errlen);
void bzpayload_close(struct bzpayload *z);

#endif
