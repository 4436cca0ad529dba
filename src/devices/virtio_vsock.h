/* virtio-vsock (virtio 1.x §5.10), a userspace device in Firecracker's hybrid
 * style (docs/vsock.md): the host side of every guest stream is a Unix socket.
 * A host program connects to the device's path and writes "CONNECT PORT\n"
 * to reach a guest listener; a guest connection to the host (CID 2) port P
 * is connected to PATH_P. All host sockets are served on the VM's loop. */
#ifndef POPEK_VIRTIO_VSOCK_H
#define POPEK_VIRTIO_VSOCK_H

#include <stdint.h>

#include "devices/virtio_pci.h"

#define VIRTIO_ID_VSOCK 19

struct virtio_vsock;

/* uds NULL: no host side (every guest connection is refused); else the
 * device listens on uds now. loop may be NULL only without uds. */
struct virtio_vsock *virtio_vsock_create(const struct virtio_env *env, uint32_t cid,
					 const char *uds, char *err, size_t errlen);
/* Once the loop has stopped (a posted cleanup must not outlive the device). */
void virtio_vsock_destroy(void *dev);
/* The listening socket's absolute path on the host, and the folder. */
const char *virtio_vsock_path(const struct virtio_vsock *v);
const char *virtio_vsock_dir(const struct virtio_vsock *v);
/* From now on reach the folder (PATH_P sockets) as dir, the jail's name for
 * it (at most VSOCK_UDS_DIR_MIN bytes: devices/vsock_uds.h). */
void virtio_vsock_moved(struct virtio_vsock *v, const char *dir);
/* A host program's connection (a non-blocking stream socket, now the
 * device's), as if accepted on the path: the listener's, and fuzzing's. */
void virtio_vsock_host_connect(struct virtio_vsock *v, int fd);
/* Serve every host socket once, as the loop does when they are ready: for a
 * device without a loop (fuzzing). */
void virtio_vsock_poll(struct virtio_vsock *v);

extern const struct device_type virtio_vsock_device;

#endif
