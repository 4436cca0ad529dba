/* The Unix-socket side of virtio-vsock (docs/vsock.md): PATH split into an
 * absolute folder and a name, the listening socket at PATH, connects to
 * PATH_PORT, and the CONNECT line host programs send. No device state. */
#ifndef POPEK_VSOCK_UDS_H
#define POPEK_VSOCK_UDS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#define VSOCK_UDS_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
/* PATH_PORT fits with the folder renamed to anything this short. */
#define VSOCK_UDS_DIR_MIN 16

struct vsock_uds {
	char path[VSOCK_UDS_MAX]; /* absolute, as the host sees it */
	char dir[PATH_MAX];	  /* where the VMM reaches the folder (the jail moves it) */
	char base[VSOCK_UDS_MAX];
	ino_t ino; /* the socket file we made */
	int lfd;   /* listening, non-blocking */
};

/* Listen on uds, replacing a socket file nobody listens on any more (left by
 * a VMM that ended). 0, or -1 with err naming the problem and the fix. */
int vsock_uds_listen(struct vsock_uds *u, const char *uds, char *err, size_t errlen);
/* A non-blocking stream connected to PATH_port, or -1 if none listens. */
int vsock_uds_connect(const struct vsock_uds *u, uint32_t port);
/* Close the listener and remove its file, if it is still ours. */
void vsock_uds_close(struct vsock_uds *u);
/* "CONNECT PORT" (the newline already cut off): 0 and *port, or -1. */
int vsock_uds_parse_connect(const char *line, uint32_t *port);

#endif
