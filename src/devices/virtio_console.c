#include "devices/virtio_console.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define RXQ 0
#define TXQ 1

/* struct virtio_console_config (§5.3.4); meaningful only with features we do
 * not offer, but drivers may still read it. */
struct console_config {
	uint16_t cols, rows;
	uint32_t max_nr_ports;
	uint32_t emerg_wr;
};

struct virtio_console {
	struct virtio_pci vp;
	int in_fd, out_fd;
	int wake_fd; /* eventfd: RX buffers arrived, or time to stop */
	atomic_bool stop;
	bool has_thread;
	pthread_t thread;
	struct console_config config;
};

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			struct pollfd pfd = {fd, POLLOUT, 0};
			poll(&pfd, 1, -1);
			continue;
		}
		if (r <= 0)
			return; /* the reader went away: guest output is dropped */
		p += r;
		len -= (size_t)r;
	}
}

static int64_t tx_request(struct virtio_pci *vp, struct vq_chain *c)
{
	struct virtio_console *con = vp->dev;
	for (unsigned i = 0; i < c->nread; i++)
		write_all(con->out_fd, c->iov[i].iov_base, c->iov[i].iov_len);
	return 0;
}

static void console_notify(struct virtio_pci *vp, unsigned q)
{
	struct virtio_console *con = vp->dev;
	if (q == TXQ) {
		virtio_pci_process(vp, q, tx_request);
	} else {
		uint64_t one = 1;
		if (write(con->wake_fd, &one, sizeof(one)) < 0)
			return; /* counter saturated: the thread is already awake */
	}
}

static const struct virtio_dev_ops console_ops = {.queue_notify = console_notify};

/* Copy host input into as many RX buffers as it needs; returns bytes taken. */
static size_t deliver(struct virtio_console *con, const uint8_t *data, size_t len)
{
	struct virtio_pci *vp = &con->vp;
	struct virtq *vq = &vp->vq[RXQ];
	struct vq_chain c;
	size_t done = 0;
	pthread_mutex_lock(&vp->lock);
	while (done < len && virtio_pci_live(vp)) {
		int r = virtq_pop(vq, &c);
		if (r < 0)
			virtio_pci_fail(vp);
		if (r <= 0)
			break;
		uint64_t n = vq_chain_write(&c, 0, data + done, len - done);
		virtq_push(vq, c.head, (uint32_t)n);
		done += n;
	}
	if (done)
		virtio_pci_used(vp, RXQ);
	pthread_mutex_unlock(&vp->lock);
	return done;
}

static void *rx_thread(void *arg)
{
	struct virtio_console *con = arg;
	uint8_t buf[4096];
	size_t len = 0, off = 0;
	bool eof = false;
	while (!atomic_load(&con->stop)) {
		if (off < len) {
			off += deliver(con, buf + off, len - off);
			if (off == len)
				off = len = 0;
		}
		/* Read more input only once the last chunk is in the guest:
		 * the host fd is the flow control. */
		bool want_input = len == 0 && !eof;
		struct pollfd p[2] = {{con->wake_fd, POLLIN, 0}, {con->in_fd, POLLIN, 0}};
		if (poll(p, want_input ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & POLLIN) {
			uint64_t v;
			if (read(con->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
		}
		if (want_input && p[1].revents) {
			ssize_t r = read(con->in_fd, buf, sizeof(buf));
			if (r > 0)
				len = (size_t)r;
			else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				eof = true;
		}
	}
	return NULL;
}

static int start_thread(struct virtio_console *con)
{
	/* Signals belong to the main and vCPU threads, not to this helper. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&con->thread, NULL, rx_thread, con);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	con->has_thread = rc == 0;
	return rc;
}

struct virtio_console *virtio_console_create(const struct virtio_env *env, int in_fd, int out_fd,
					     char *err, size_t errlen)
{
	struct virtio_console *con = calloc(1, sizeof(*con));
	if (!con) {
		snprintf(err, errlen, "out of memory creating virtio-console");
		return NULL;
	}
	con->in_fd = in_fd;
	con->out_fd = out_fd;
	con->config.max_nr_ports = 1;
	con->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (con->wake_fd < 0) {
		snprintf(err, errlen, "virtio-console: cannot create an eventfd: %s",
			 strerror(errno));
		free(con);
		return NULL;
	}
	struct virtio_pci_info info = {
	    .name = "virtio-console",
	    .type = VIRTIO_ID_CONSOLE,
	    .class_code = 0x078000, /* simple communication controller, other */
	    .nqueues = 2,
	    .queue_size = 64,
	    .ops = &console_ops,
	    .config = &con->config,
	    .config_len = sizeof(con->config),
	};
	if (virtio_pci_init(&con->vp, &info, con, env, err, errlen) < 0) {
		close(con->wake_fd);
		free(con);
		return NULL;
	}
	if (in_fd >= 0 && start_thread(con) != 0) {
		snprintf(err, errlen, "virtio-console: cannot start the input thread");
		virtio_console_destroy(con);
		return NULL;
	}
	return con;
}

void virtio_console_destroy(struct virtio_console *con)
{
	if (!con)
		return;
	if (con->has_thread) {
		atomic_store(&con->stop, true);
		uint64_t one = 1;
		if (write(con->wake_fd, &one, sizeof(one)) < 0)
			perror("virtio-console: waking the input thread");
		pthread_join(con->thread, NULL);
	}
	virtio_pci_destroy(&con->vp);
	close(con->wake_fd);
	free(con);
}
