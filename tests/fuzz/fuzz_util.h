/* Shared parts of the device fuzzers: a machine without an engine or vCPUs
 * (port and MMIO buses, guest RAM, a PCI host bridge), rebuilt for every
 * input so that a crash replays from its input alone, and an interpreter
 * that turns the input into a hostile guest's accesses. */
#ifndef POPEK_FUZZ_UTIL_H
#define POPEK_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "devices/pci.h"
#include "devices/virtio_pci.h"
#include "machine/machine.h"

struct uart;
struct virtio_blk;
struct virtio_console;

#define FUZZ_RAM (2u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_rig {
	struct machine m;
	struct pci_bus pci;
	struct virtio_env env; /* for virtio devices: the bus above, RAM, MSIs */
};

/* A fresh machine: empty buses but the PCI config ports, RAM all zero. */
struct fuzz_rig *fuzz_rig_begin(void);
/* Destroy the devices added with fuzz_add (newest first), then the PCI
 * bridge and the buses. */
void fuzz_rig_end(struct fuzz_rig *r);
/* Turn on memory decoding of every PCI function (firmware left the BARs at
 * their addresses); returns the address of BAR 0 of the function in slot. */
uint64_t fuzz_pci_enable(struct fuzz_rig *r, unsigned slot);

/* Devices as the machine creates them from its registry, under their
 * snapshot names (so fuzz_rig_end destroys them); they abort if creation
 * fails. The UART is at COM1 and the consoles' output is dropped. */
void *fuzz_add(struct fuzz_rig *r, const struct device_type *t);
struct uart *fuzz_add_uart(struct fuzz_rig *r);
struct virtio_blk *fuzz_add_virtio_blk(struct fuzz_rig *r); /* on fuzz_disk() */
void fuzz_add_pvpanic(struct fuzz_rig *r);
struct virtio_pci *fuzz_add_virtio_rng(struct fuzz_rig *r);
struct virtio_console *fuzz_add_virtio_console(struct fuzz_rig *r);
/* Every device popek's machine has, in its order: uart0, debug-exit,
 * acpi-pm, i8042, cmos-rtc, then on PCI virtio-blk0, pvpanic, virtio-rng0,
 * virtio-console0. */
void fuzz_add_platform(struct fuzz_rig *r);

/* A 64 KiB all-zero disk image (a memfd, by /proc path) for virtio-blk. */
const char *fuzz_disk(void);

/* A range of guest accesses the program may reach. */
struct fuzz_window {
	struct bus *bus;
	uint64_t base, len;
};

/* Called for FUZZ_OP_HOST: something the host side does (input bytes, an
 * interrupt), with the op's 8-byte value. */
typedef void (*fuzz_host_fn)(void *ctx, uint64_t value);

/* The program: FUZZ_OP_LEN-byte ops, each
 *   kind (low 3 bits: enum below; the rest picks the window), log2 size,
 *   offset (le32), value (le64). */
#define FUZZ_OP_LEN 14
enum {
	FUZZ_OP_WRITE,	   /* bus write of size bytes at window + offset % len */
	FUZZ_OP_READ,	   /* bus read, the same way */
	FUZZ_OP_RAM,	   /* 8 bytes of value into RAM at offset (rings, requests) */
	FUZZ_OP_PCI_WRITE, /* config write: slot = size byte >> 2, register = offset */
	FUZZ_OP_HOST,	   /* host callback with value */
	FUZZ_OP_SNAPSHOT,  /* save and reload every registered device */
			   /* kinds 6 and 7 are writes too: the most useful op */
};
void fuzz_run(struct fuzz_rig *r, const struct fuzz_window *w, unsigned nw, const uint8_t *data,
	      size_t size, fuzz_host_fn host, void *ctx);

/* For the boot loader fuzzers: data as the kernel image (its last 4 KiB,
 * or half of a shorter one, doubling as the initrd) over 32 MiB of RAM and
 * a blank boot vCPU state. A loader's refusal must
 * say why: fuzz_boot_check aborts on a failure with an empty message. */
struct boot_args *fuzz_boot_args(const uint8_t *data, size_t size, struct cpu_state **st,
				 char **err, size_t *errlen);
void fuzz_boot_check(int rc, const char *err);

#endif
