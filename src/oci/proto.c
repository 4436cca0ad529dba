/* The host end of the agent protocol: frames on their way to the agent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci/oci.h"

void obuf_add(struct obuf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			abort(); /* a runtime out of memory cannot keep a container right */
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
}

void obuf_frame(struct obuf *b, enum frame_type t, uint32_t id, int64_t a, int64_t b_, int64_t c,
		const void *data, size_t len)
{
	char line[FRAME_LINE_MAX];
	const char *d = data;
	for (size_t off = 0;;) { /* one frame even for no data */
		size_t chunk = len - off > FRAME_DATA_MAX ? FRAME_DATA_MAX : len - off;
		obuf_add(b, line,
			 frame_format(line, t, id, a, b_, c, chunk ? d + off : NULL, chunk));
		off += chunk;
		if (off >= len)
			break;
	}
}

int obuf_flush(struct obuf *b, int fd)
{
	size_t done = 0;
	while (done < b->len) {
		ssize_t n = write(fd, b->data + done, b->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			b->len = 0;
			return -1;
		}
		done += (size_t)n;
	}
	b->len = 0;
	return 0;
}

int obuf_write_some(struct obuf *b, int fd)
{
	while (b->len) {
		ssize_t n = write(fd, b->data, b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		memmove(b->data, b->data + n, b->len - (size_t)n);
		b->len -= (size_t)n;
	}
	return 0;
}

void obuf_free(struct obuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void string_frame(struct obuf *b, enum frame_type t, uint32_t id, const char *s)
{
	obuf_frame(b, t, id, 0, 0, 0, s, strlen(s));
}

void process_frames(struct obuf *b, uint32_t id, const struct oci_process *p)
{
	for (size_t i = 0; i < p->nargs; i++)
		string_frame(b, FRAME_ARG, id, p->args[i]);
	for (size_t i = 0; i < p->nenv; i++)
		string_frame(b, FRAME_ENV, id, p->env[i]);
	string_frame(b, FRAME_CWD, id, p->cwd ? p->cwd : "/");
	obuf_frame(b, FRAME_USER, id, p->uid, p->gid, 0, NULL, 0);
	for (size_t i = 0; i < p->ngids; i++)
		obuf_frame(b, FRAME_GROUP, id, p->gids[i], 0, 0, NULL, 0);
	for (size_t i = 0; i < p->nrlimits; i++)
		obuf_frame(b, FRAME_RLIM, id, p->rlimits[i].resource, p->rlimits[i].soft,
			   p->rlimits[i].hard, NULL, 0);
	if (p->terminal)
		obuf_frame(b, FRAME_TTY, id, p->rows, p->cols, 0, NULL, 0);
	obuf_frame(b, FRAME_START, id, 0, 0, 0, NULL, 0);
}
