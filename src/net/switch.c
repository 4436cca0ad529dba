#include "net/switch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "machine/machine.h"
#include "net/stream.h"

void switch_table_init(struct switch_table *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < SWITCH_MACS; i++)
		t->e[i].port = -1;
}

static int find(const struct switch_table *t, const uint8_t mac[6])
{
	for (int i = 0; i < SWITCH_MACS; i++)
		if (t->e[i].port >= 0 && !memcmp(t->e[i].mac, mac, 6))
			return i;
	return -1;
}

void switch_learn(struct switch_table *t, const uint8_t src[6], int port)
{
	if (src[0] & 1)
		return; /* a group address is never a source */
	int i = find(t, src);
	for (int j = 0; i < 0 && j < SWITCH_MACS; j++)
		if (t->e[j].port < 0)
			i = j;
	if (i < 0) {
		i = (int)t->next;
		t->next = (t->next + 1) % SWITCH_MACS;
	}
	memcpy(t->e[i].mac, src, 6);
	t->e[i].port = port;
}

int switch_lookup(const struct switch_table *t, const uint8_t dst[6])
{
	int i = dst[0] & 1 ? -1 : find(t, dst);
	return i < 0 ? -1 : t->e[i].port;
}

void switch_forget(struct switch_table *t, int port)
{
	for (int i = 0; i < SWITCH_MACS; i++)
		if (t->e[i].port == port)
			t->e[i].port = -1;
}

struct sw {
	struct switch_table table;
	struct stream *port[SWITCH_PORTS];
	int from; /* the port whose frames are being forwarded */
};

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static void forward(void *ctx, const uint8_t *frame, size_t len)
{
	struct sw *s = ctx;
	if (len < 14)
		return;
	switch_learn(&s->table, frame + 6, s->from);
	int to = switch_lookup(&s->table, frame);
	struct iovec v = {(void *)frame, len};
	for (int p = 0; p < SWITCH_PORTS; p++)
		if (s->port[p] && p != s->from && (to < 0 || p == to))
			stream_send(s->port[p], &v, 1, len);
}

static void drop_port(struct sw *s, int p)
{
	fprintf(stderr, "popek switch: port %d left\n", p);
	switch_forget(&s->table, p);
	close(s->port[p]->fd);
	free(s->port[p]);
	s->port[p] = NULL;
}

/* A connected peer becomes a free port; false (fd closed) if none is. */
static bool add_port(struct sw *s, int fd, const char *what)
{
	for (int p = 0; p < SWITCH_PORTS; p++) {
		if (!s->port[p] && (s->port[p] = calloc(1, sizeof(struct stream)))) {
			s->port[p]->fd = fd;
			fprintf(stderr, "popek switch: port %d joined%s\n", p, what);
			return true;
		}
	}
	fprintf(stderr, "popek switch: all %d ports in use: refused a peer\n", SWITCH_PORTS);
	close(fd);
	return false;
}

static void accept_port(struct sw *s, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		add_port(s, fd, "");
}

static int unix_addr(const char *path, struct sockaddr_un *a, char *err, size_t errlen)
{
	*a = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a->sun_path)) {
		snprintf(err, errlen, "switch %s: the path is too long for a Unix socket", path);
		return -1;
	}
	strcpy(a->sun_path, path);
	return 0;
}

/* --connect PATH: a peer that listens itself (passt's socket) joins as a
 * port; it speaks the same framing. */
static int connect_port(struct sw *s, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a;
	if (unix_addr(path, &a, err, errlen) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(err, errlen,
			 "switch --connect %s: cannot connect: %s (start the peer first, e.g. "
			 "'passt -f -s %s')",
			 path, strerror(errno), path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char what[160];
	snprintf(what, sizeof(what), " (%s)", path);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0 || !add_port(s, fd, what)) {
		snprintf(err, errlen, "switch --connect %s: cannot make it a port", path);
		return -1;
	}
	return 0;
}

/* Bind path; a socket file nobody listens on any more is replaced. */
static int listen_on(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a;
	if (unix_addr(path, &a, err, errlen) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "switch: socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		snprintf(err, errlen, "switch %s: another switch is already serving it", path);
		close(fd);
		return -1;
	}
	if (errno == ECONNREFUSED)
		unlink(path);
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "switch %s: cannot listen: %s (is the directory writable?)",
			 path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int switch_run(const char *path, char *const *peers, int npeers, char *err, size_t errlen)
{
	static struct sw s;
	switch_table_init(&s.table);
	for (int i = 0; i < npeers; i++)
		if (connect_port(&s, peers[i], err, errlen) < 0)
			return EXIT_CODE_HOST;
	int lfd = listen_on(path, err, errlen);
	if (lfd < 0)
		return EXIT_CODE_HOST;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "popek switch: listening on %s\n", path);
	while (!quit) {
		struct pollfd pf[SWITCH_PORTS + 1] = {{lfd, POLLIN, 0}};
		int idx[SWITCH_PORTS + 1];
		nfds_t n = 1;
		for (int p = 0; p < SWITCH_PORTS; p++) {
			if (!s.port[p])
				continue;
			idx[n] = p;
			pf[n++] = (struct pollfd){
			    s.port[p]->fd, (short)(POLLIN | (s.port[p]->out_len ? POLLOUT : 0)), 0};
		}
		if (poll(pf, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "switch: poll: %s", strerror(errno));
			break;
		}
		for (nfds_t i = 1; i < n; i++) {
			int p = idx[i];
			if (pf[i].revents & POLLOUT)
				stream_flush(s.port[p]);
			s.from = p;
			if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    stream_read(s.port[p], forward, &s) < 0)
				drop_port(&s, p);
		}
		if (pf[0].revents & POLLIN)
			accept_port(&s, lfd);
	}
	for (int p = 0; p < SWITCH_PORTS; p++)
		if (s.port[p])
			drop_port(&s, p);
	close(lfd);
	unlink(path);
	return quit ? 0 : EXIT_CODE_HOST;
}
