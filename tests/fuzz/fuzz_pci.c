/* Fuzz PCI configuration space with every device popek plugs in (virtio-blk,
 * pvpanic, virtio-rng, virtio-console): conf1 address/data ports at any size,
 * BAR sizing and moving (64-bit BARs, halves written separately), command
 * register decode bits, capabilities, and accesses anywhere in the PCI hole,
 * so BARs left overlapping or half-moved are exercised too. */
#include <stdlib.h>

#include "devices/pvpanic.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "fuzz_util.h"

static void discard(void *ctx, const void *buf, size_t len)
{
}

static void blk_free(void *vp)
{
	virtio_blk_destroy(((struct virtio_pci *)vp)->dev);
}

static void rng_free(void *vp)
{
	virtio_rng_destroy(((struct virtio_pci *)vp)->dev);
}

static void console_free(void *vp)
{
	virtio_console_destroy(((struct virtio_pci *)vp)->dev);
}

static void pvpanic_free(void *p)
{
	pvpanic_destroy(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	char err[256];
	/* The slot order of pci_platform.c: disks, pvpanic, rng, console. */
	struct virtio_blk *blk = virtio_blk_create(&r->env, fuzz_disk(), false, err, sizeof(err));
	if (!blk)
		abort();
	fuzz_add_virtio(r, "virtio-blk0", virtio_blk_pci(blk), blk_free);
	struct pvpanic *p = pvpanic_create(&r->m, &r->pci, err, sizeof(err));
	if (!p ||
	    machine_add_device(&r->m, &(struct machine_device){
					  .name = "pvpanic", .dev = p, .destroy = pvpanic_free}))
		abort();
	struct virtio_rng *rng = virtio_rng_create(&r->env, err, sizeof(err));
	if (!rng)
		abort();
	fuzz_add_virtio(r, "virtio-rng0", virtio_rng_pci(rng), rng_free);
	struct virtio_console *con =
	    virtio_console_create(&r->env, discard, NULL, err, sizeof(err));
	if (!con)
		abort();
	fuzz_add_virtio(r, "virtio-console0", virtio_console_pci(con), console_free);
	const struct fuzz_window w[] = {
	    {&r->m.pio, PCI_CONFIG_ADDR, 8},
	    {&r->m.mmio, PCI_MMIO_START, PCI_MMIO_END - PCI_MMIO_START}};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
