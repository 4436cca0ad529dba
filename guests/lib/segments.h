/* Selectors of the runtime GDT (lib/boot.S), shared by C and assembly.
 * The layout is Linux's: user selectors in the order SYSRET derives them from
 * STAR[63:48] (+8 data, +16 64-bit code). Some hypervisors (this project's
 * nested PVM host among them) assume these exact values for ring transitions. */
#ifndef GUEST_SEGMENTS_H
#define GUEST_SEGMENTS_H

#define SEL_KCODE32 0x08
#define SEL_KCODE   0x10
#define SEL_KDATA   0x18
#define SEL_UCODE32 0x20
#define SEL_UDATA   0x28
#define SEL_UCODE   0x30
#define SEL_TSS	    0x40

#endif
