/* A backend process popek starts for a vhost-user device (virtiofsd,
 * qemu-storage-daemon) and owns. A small keeper process, forked before the
 * jail, starts it and stops it when popek lets go (or dies), so the jailed
 * VMM needs neither kill nor wait: it closes one pipe and reads another. */
#ifndef POPEK_VHOST_BACKEND_H
#define POPEK_VHOST_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

struct vhost_backend {
	int stop_fd;   /* popek's end: closing it stops the backend; -1 when none */
	int done_fd;   /* reads EOF once the backend and its keeper are gone */
	char name[32]; /* the program's file name, for messages */
};

/* Run argv[0] with argv; setup(arg), if given, runs in the backend's process
 * just before exec (a mount namespace, say) and says why on stderr if it
 * returns -1. 0, or -1 with err set. */
int vhost_backend_start(struct vhost_backend *b, char *const argv[], int (*setup)(void *arg),
			void *arg, char *err, size_t errlen);
/* Has it exited by itself? */
bool vhost_backend_exited(const struct vhost_backend *b);
/* Stop it (SIGTERM, SIGKILL after 5 s) and wait until it has gone. */
void vhost_backend_stop(struct vhost_backend *b);

#endif
