/* A process's stdio against the frame stream, on the host side. */
#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "oci/oci.h"

bool stdio_pump_in(int fd, uint32_t id, struct obuf *b)
{
	char buf[FRAME_DATA_MAX];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		obuf_frame(b, FRAME_IN, id, 0, 0, 0, NULL, 0);
		return false;
	}
	obuf_frame(b, FRAME_IN, id, 0, 0, 0, buf, (size_t)n);
	return true;
}

void stdio_write_out(const struct frame *f, int out, int err)
{
	int fd = f->a == 2 ? err : out;
	size_t done = 0;
	while (done < f->len) {
		ssize_t n = write(fd, f->data + done, f->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* a reader that went away loses the output, not the container */
		done += (size_t)n;
	}
}

void stdio_winsize(int fd, unsigned *rows, unsigned *cols)
{
	struct winsize ws = {0};
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		ws.ws_row = ws.ws_col = 0;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
}
