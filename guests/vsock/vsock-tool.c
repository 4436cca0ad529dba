/* vsock-tool: the default image's AF_VSOCK client and server (busybox nc has
 * no vsock). Relays stdin to the stream and the stream to stdout; when stdin
 * ends it shuts its sending side, and it exits once the peer has sent all.
 *   vsock-tool listen PORT        accept one connection on PORT
 *   vsock-tool connect CID PORT   connect to CID (2 is the host) PORT
 * Built static by scripts/mkimage.sh with the host's gcc. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int die(const char *what)
{
	fprintf(stderr, "vsock-tool: %s: %s\n", what, strerror(errno));
	return 1;
}

static unsigned number(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v > 0xffffffffu) {
		fprintf(stderr, "vsock-tool: %s is not a number\n", s);
		exit(64);
	}
	return (unsigned)v;
}

/* Copy what one read gives from in to out: 1 copied, 0 end, -1 error. */
static int pump(int in, int out)
{
	char buf[65536];
	ssize_t n = read(in, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 ? -1 : 0;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(out, buf + off, (size_t)(n - off));
		if (w < 0)
			return -1;
		off += w;
	}
	return 1;
}

int main(int argc, char **argv)
{
	bool listening = argc == 3 && !strcmp(argv[1], "listen");
	if (!listening && !(argc == 4 && !strcmp(argv[1], "connect"))) {
		fprintf(stderr, "usage: vsock-tool listen PORT | vsock-tool connect CID PORT\n");
		return 64;
	}
	struct sockaddr_vm a = {.svm_family = AF_VSOCK};
	a.svm_cid = listening ? VMADDR_CID_ANY : number(argv[2]);
	a.svm_port = number(argv[listening ? 2 : 3]);
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		return die("socket (is the vsock driver loaded?)");
	if (listening) {
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)
			return die("listen");
		int c = accept(s, NULL, NULL);
		if (c < 0)
			return die("accept");
		close(s);
		s = c;
	} else if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		return die("connect");
	}
	struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = s, .events = POLLIN}};
	while (p[1].fd >= 0) {
		if (poll(p, 2, -1) < 0)
			return die("poll");
		if (p[0].revents) {
			int r = pump(0, s);
			if (r < 0)
				return die("send");
			if (r == 0) {
				shutdown(s, SHUT_WR);
				p[0].fd = -1;
			}
		}
		if (p[1].revents) {
			int r = pump(s, 1);
			if (r < 0)
				return die("receive");
			if (r == 0)
				p[1].fd = -1;
		}
	}
	return 0;
}
