/* virtio-rng (entropy source) fed by the host's getrandom(). */
#ifndef POPEK_VIRTIO_RNG_H
#define POPEK_VIRTIO_RNG_H

#include <stddef.h>

#include "devices/virtio_pci.h"

struct virtio_rng;

struct virtio_rng *virtio_rng_create(const struct virtio_env *env, char *err, size_t errlen);
/* Its transport. */
struct virtio_pci *virtio_rng_pci(struct virtio_rng *r);
void virtio_rng_destroy(void *rng);
extern const struct device_type virtio_rng_device;

#endif
