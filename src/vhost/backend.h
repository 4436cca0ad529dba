/* The keeper of a vhost-user device's backend: a small process forked before
 * the jail that connects to the backend's socket and hands each connection
 * to the jailed VMM (which can reach no path), so popek can reconnect when
 * the backend dies and comes back. For a backend popek starts (virtiofsd,
 * qemu-storage-daemon) the keeper also runs it, restarts it on request and
 * stops it when popek lets go (or dies): the VMM needs neither kill nor
 * wait, it closes one socket and reads a pipe. */
#ifndef POPEK_VHOST_BACKEND_H
#define POPEK_VHOST_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

struct vhost_backend {
	/* popek's end of a socketpair with the keeper: connections arrive here,
	 * a byte written asks for a new one, closing it stops the backend; -1
	 * when there is no keeper */
	int ctl_fd;
	int done_fd;   /* reads EOF once the backend and its keeper are gone */
	bool own;      /* the keeper runs the backend (and restarts it) */
	char name[32]; /* the program's file name, for messages */
};

/* Keep the backend listening at sock. With argv, run argv[0] with argv;
 * setup(arg), if given, runs in the backend's process just before exec (a
 * mount namespace, say) and says why on stderr if it returns -1. Without
 * argv the backend is the user's, already listening (or not) at sock. 0, or
 * -1 with err set. */
int vhost_backend_start(struct vhost_backend *b, const char *sock, char *const argv[],
			int (*setup)(void *arg), void *arg, char *err, size_t errlen);
/* The keeper's next connection to the backend: its fd, or -1 with err set
 * (the backend exited or did not listen, the keeper is gone, or no
 * connection came within timeout_ms; -1 waits for ever). */
int vhost_backend_take(struct vhost_backend *b, int timeout_ms, char *err, size_t errlen);
/* The last connection broke: ask for another (a backend popek runs is
 * restarted; the user's is dialled until it listens again). 0 or -1. */
int vhost_backend_redial(struct vhost_backend *b);
/* Stop it (SIGTERM, SIGKILL after 5 s) and wait until it has gone. */
void vhost_backend_stop(struct vhost_backend *b);

#endif
