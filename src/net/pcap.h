/* capture=FILE.pcap: every frame a NIC sends or receives, in the classic
 * pcap format (Ethernet link type) that tcpdump and tshark read. */
#ifndef POPEK_NET_PCAP_H
#define POPEK_NET_PCAP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct pcap {
	int fd;
	pthread_mutex_t lock; /* both directions write */
};

/* Create path, or append to it if it exists. Returns 0, or -1 with err set. */
int pcap_open(struct pcap *p, const char *path, char *err, size_t errlen);
/* Append one frame of len bytes from iov (skipping skip bytes of header). */
void pcap_write(struct pcap *p, const struct iovec *iov, unsigned n, size_t skip, size_t len);
void pcap_close(struct pcap *p);

#endif
