/* The compressed kernel inside a bzImage (its payload, boot protocol 2.08+),
 * decompressed on the host: the guest then need not run the kernel's own
 * decompressor, which is slow wherever guest code is (nested, emulated). */
#ifndef POPEK_BZPAYLOAD_H
#define POPEK_BZPAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Decompress the payload p (len bytes, as the setup header's payload_offset
 * and payload_length give it) into a malloc'd buffer *out of *outlen bytes:
 * the vmlinux ELF, perhaps with relocations after it. The decompressed size
 * is the payload's last 4 bytes, as Linux's build appends it (gzip's own
 * trailer); more than max bytes is refused. gzip, xz and zstd are decoded;
 * other codecs, corrupt or truncated data return -1 with err naming the codec
 * and the problem. */
int bzpayload_decompress(const uint8_t *p, size_t len, uint64_t max, uint8_t **out, size_t *outlen,
			 char *err, size_t errlen);

#endif
