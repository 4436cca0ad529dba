/* Fuzz virtio-blk and virtio-rng behind the machine's request gate with a
 * policy that inspects, patches, denies, defers (pause) and stops requests:
 * a hostile driver must not make the gate or the data copy crash, hang or
 * touch memory outside guest RAM and the image. */
#include <stdlib.h>

#include "fuzz_util.h"
#include "machine/interpose.h"

static const char rules[] = "deny disk write sectors 3-5\n"
			    "log disk write contains 0x4142\n"
			    "modify disk write sectors 6-9 bytes \"popek\" at 510\n"
			    "pause disk flush\n"
			    "stop disk read sectors 100-101\n"
			    "deny rng length 1-7\n"
			    "modify rng bytes \"entropy\" at 3\n";

static void setup(struct fuzz_rig *r)
{
	/* The rig's machine takes the rules as a running VM does: its
	 * registry's devices get its gate, which reads the active policy. */
	fuzz_policy(r, rules);
	fuzz_add_virtio_blk(r);
	fuzz_add_virtio_rng(r);
	fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, 1), VIRTIO_BAR_SIZE);
	fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, 2), VIRTIO_BAR_SIZE);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
}

FUZZ_RIG_TARGET(setup)
