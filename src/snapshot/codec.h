/* Explicit, documented encodings of the neutral vCPU and VM state
 * (docs/snapshot-format.md): no struct is ever written raw. */
#ifndef POPEK_SNAPSHOT_CODEC_H
#define POPEK_SNAPSHOT_CODEC_H

#include "engines/cpu_state.h"
#include "engines/vm_state.h"
#include "snapshot/blob.h"

void encode_cpu_state(struct blob *b, const struct cpu_state *st);
/* 0, or -1 if the bytes are short, long or hold impossible values. */
int decode_cpu_state(const uint8_t *p, size_t len, struct cpu_state *st);

void encode_vm_state(struct blob *b, const struct vm_state *st);
int decode_vm_state(const uint8_t *p, size_t len, struct vm_state *st);

#endif
