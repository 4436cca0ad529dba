/* Fuzz virtio-net's snapshot record (docs/snapshot-format.md: the transport's
 * record and the backend's) on a NIC with a real libslirp backend, as a
 * hostile state file would reach it: the load must refuse or accept, never
 * crash, leak or hand libslirp a record it would trust. Each input also saves
 * the NIC and loads that back, which must succeed. */
#include <stdlib.h>

#include "devices/virtio_net.h"
#include "fuzz_util.h"

static struct virtio_net *nic;

static int slirp_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			void **dev, char *err, size_t errlen)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
	struct net_config nc = {.kind = NET_USER};
	struct net_backend *be = net_backend_open(&nc, mac, err, errlen);
	if (!be)
		return -1;
	struct virtio_env env = virtio_env_of(s);
	return (*dev = nic = virtio_net_create(&env, be, mac, NULL, err, errlen)) ? 0 : -1;
}

static struct device_type slirp_nic; /* virtio-net's row, with the backend above */

static void setup(struct fuzz_rig *r)
{
	slirp_nic = virtio_net_device;
	slirp_nic.create = slirp_create;
	fuzz_add(r, &slirp_nic);
	fuzz_pci_enable(r, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_rig(setup);
	slirp_nic.load(nic, data, size);
	void *buf;
	size_t len;
	if (slirp_nic.save(nic, &buf, &len) < 0 || slirp_nic.load(nic, buf, len) < 0)
		abort(); /* our own record must load */
	free(buf);
	return 0;
}
