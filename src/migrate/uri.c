/* Migration addresses: tcp:HOST:PORT and unix:PATH. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migrate/migrate.h"

/* A socket for uri, bound and listening, or connected; -1 with err. */
static int open_uri(const char *uri, bool listening, char *err, size_t errlen)
{
	const char *what = listening ? "listen on" : "connect to";
	if (!strncmp(uri, "unix:", 5)) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		if (!uri[5] || strlen(uri + 5) >= sizeof(a.sun_path)) {
			snprintf(err, errlen, "%s: the socket path is empty or too long", uri);
			return -1;
		}
		strcpy(a.sun_path, uri + 5);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (listening)
			unlink(a.sun_path); /* a stale socket of an earlier receive */
		if (fd < 0 ||
		    (listening ? bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0
			       : connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)) {
			snprintf(err, errlen, "cannot %s %s: %s", what, uri, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	char host[256];
	const char *colon = strrchr(uri, ':');
	if (strncmp(uri, "tcp:", 4) || colon < uri + 4 || !colon[1] ||
	    (size_t)(colon - uri - 4) >= sizeof(host)) {
		snprintf(err, errlen,
			 "'%s' is not a migration address — use tcp:HOST:PORT or "
			 "unix:PATH",
			 uri);
		return -1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - uri - 4), uri + 4);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = listening ? AI_PASSIVE : 0},
			*ai;
	int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
	if (g) {
		snprintf(err, errlen, "%s: %s", uri, gai_strerror(g));
		return -1;
	}
	int fd = -1, e = 0, one = 1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* A record is written as header then payload, and the small ones
		 * at the handover (END, ready, go) would wait out Nagle and a
		 * delayed ACK: 40 ms of downtime. Accepted sockets inherit it. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (listening ? bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 1) < 0
			      : connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		snprintf(err, errlen, "cannot %s %s: %s", what, uri, strerror(e));
	return fd;
}

int migrate_connect(const char *uri, char *err, size_t errlen)
{
	return open_uri(uri, false, err, errlen);
}

int migrate_listen(const char *uri, char *err, size_t errlen)
{
	return open_uri(uri, true, err, errlen);
}
