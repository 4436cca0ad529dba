/* Shared parts of the device fuzzers: a machine without an engine or vCPUs
 * (port and MMIO buses, guest RAM, a PCI host bridge), built once per process
 * and put back for every input into the state it had when it was built, so
 * that a crash replays from its input alone; and an interpreter that turns
 * the input into a hostile guest's accesses. */
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

/* A range of guest accesses the program may reach. */
struct fuzz_window {
	struct bus *bus;
	uint64_t base, len;
};

/* Called for FUZZ_OP_HOST: something the host side does (input bytes, an
 * interrupt), with the op's 8-byte value. */
typedef void (*fuzz_host_fn)(void *ctx, uint64_t value);

#define FUZZ_MAX_WINDOWS 4

struct fuzz_rig {
	struct machine m;
	struct pci_bus pci;
	struct virtio_env env; /* for virtio devices: the bus above, RAM, MSIs */
	/* What the program reaches, chosen by setup. */
	struct fuzz_window w[FUZZ_MAX_WINDOWS];
	unsigned nw;
	fuzz_host_fn host; /* may stay NULL */
	void *host_ctx;
};

/* The rig for this input. The first call builds it: setup adds the devices
 * and the windows (and may enable BARs), then the rig records the pristine
 * state: every device's saved state, every PCI function's config space, the
 * bus maps. */
struct fuzz_rig *fuzz_rig(void (*setup)(struct fuzz_rig *r));
/* The end of an input: the rig goes back to the pristine state (each device
 * loads it, BARs return, the machine runs again, guest RAM and the disk read
 * as zeros), and aborts if anything differs from it afterwards. At the end,
 * not at the next start, so what an input allocates is freed within it:
 * libFuzzer then runs its leak check only for real leaks (an unbalanced
 * input costs a scan of the heap: six times fewer executions). */
void fuzz_done(struct fuzz_rig *r);
/* For setup: one more window for the program. */
void fuzz_window(struct fuzz_rig *r, struct bus *bus, uint64_t base, uint64_t len);
/* Turn on memory decoding of every PCI function (firmware left the BARs at
 * their addresses); returns the address of BAR 0 of the function in slot. */
uint64_t fuzz_pci_enable(struct fuzz_rig *r, unsigned slot);

/* Make rules (policy file text; aborts if malformed) the machine's active
 * policy, as `popek policy` would: devices added after see them through
 * their gate. For setup. */
void fuzz_policy(struct fuzz_rig *r, const char *rules);

/* Devices as the machine creates them from its registry, under their
 * snapshot names; they abort if creation fails. The UART is at COM1 and the
 * consoles' output is dropped. For setup only. */
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

/* A 64 KiB disk image (a memfd, by /proc path) for virtio-blk; the rig zeroes
 * it for every input. */
const char *fuzz_disk(void);

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
void fuzz_run(struct fuzz_rig *r, const uint8_t *data, size_t size);

/* The entry point of a device fuzzer: the input as a program on the rig that
 * setup builds. */
#define FUZZ_RIG_TARGET(setup)                                                                     \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                               \
	{                                                                                          \
		struct fuzz_rig *r = fuzz_rig(setup);                                              \
		fuzz_run(r, data, size);                                                           \
		fuzz_done(r);                                                                      \
		return 0;                                                                          \
	}

/* For the boot loader fuzzers: data as the kernel image (its last 4 KiB,
 * or half of a shorter one, doubling as the initrd) over 32 MiB of RAM and
 * a blank boot vCPU state. A loader's refusal must
 * say why: fuzz_boot_check aborts on a failure with an empty message. */
struct boot_args *fuzz_boot_args(const uint8_t *data, size_t size, struct cpu_state **st,
				 char **err, size_t *errlen);
void fuzz_boot_check(int rc, const char *err);

#endif
