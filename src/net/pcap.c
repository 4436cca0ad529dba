#include "net/pcap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtqueue.h"

#define PCAP_MAGIC   0xa1b2c3d4u
#define PCAP_SNAPLEN 65535u
#define LINKTYPE_ETH 1u

int pcap_open(struct pcap *p, const char *path, char *err, size_t errlen)
{
	/* An existing capture goes on (a restored VM continues its run's file). */
	p->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	off_t size = p->fd < 0 ? -1 : lseek(p->fd, 0, SEEK_END);
	/* Host byte order: readers detect it from the magic. */
	uint32_t hdr[6] = {PCAP_MAGIC, 2u | 4u << 16, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETH};
	uint32_t magic = 0;
	if (size > 0 && (pread(p->fd, &magic, 4, 0) != 4 || magic != PCAP_MAGIC)) {
		snprintf(err, errlen,
			 "capture=%s: the file exists and is not a pcap capture of ours: "
			 "remove it or pick another name",
			 path);
		close(p->fd);
		p->fd = -1;
		return -1;
	}
	if (size < 0 || (size == 0 && write(p->fd, hdr, sizeof(hdr)) != sizeof(hdr))) {
		snprintf(err, errlen, "capture=%s: cannot write it: %s", path, strerror(errno));
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	return 0;
}

void pcap_write(struct pcap *p, const struct iovec *iov, unsigned n, size_t skip, size_t len)
{
	if (len <= skip)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint32_t caplen = len - skip > PCAP_SNAPLEN ? PCAP_SNAPLEN : (uint32_t)(len - skip);
	uint32_t rec[4] = {(uint32_t)ts.tv_sec, (uint32_t)(ts.tv_nsec / 1000), caplen,
			   (uint32_t)(len - skip)};
	struct iovec out[1 + VQ_MAX_SIZE] = {{rec, sizeof(rec)}};
	unsigned k = 1 + iov_slice(iov, n > VQ_MAX_SIZE ? VQ_MAX_SIZE : n, skip, caplen, out + 1);
	pthread_mutex_lock(&p->lock);
	if (p->fd < 0) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	/* A short write would break the file's framing: stop capturing then. */
	ssize_t w = writev(p->fd, out, (int)k);
	if (w != (ssize_t)(sizeof(rec) + caplen)) {
		fprintf(stderr, "popek: capture stopped: %s\n",
			w < 0 ? strerror(errno) : "disk full");
		close(p->fd);
		p->fd = -1;
	}
	pthread_mutex_unlock(&p->lock);
}

void pcap_close(struct pcap *p)
{
	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
	pthread_mutex_destroy(&p->lock);
}
