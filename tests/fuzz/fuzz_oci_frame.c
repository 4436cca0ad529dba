/* Fuzz the agent protocol: bytes from a guest's console (frames, kernel
 * noise, garbage) split into lines and parsed. A parsed frame must format back
 * to the same line, and no line may overflow the reader. */
#include <stdlib.h>
#include <string.h>

#include "oci/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_line(void *ctx, const char *line, size_t len)
{
	static struct frame f;
	static char again[FRAME_LINE_MAX];
	if (len > FRAME_LINE_MAX)
		abort();
	if (frame_parse(line, len, &f) != FRAME_OK)
		return 0;
	if (f.type >= FRAME_NTYPES || f.len > FRAME_DATA_MAX || f.data[f.len] != 0)
		abort();
	size_t n = frame_format(again, f.type, f.id, f.a, f.b, f.c, f.data, f.len);
	static struct frame g;
	if (n > FRAME_LINE_MAX || again[n - 1] != '\n' ||
	    frame_parse(again, n - 1, &g) != FRAME_OK || g.type != f.type || g.id != f.id ||
	    g.a != f.a || g.b != f.b || g.c != f.c || g.len != f.len ||
	    memcmp(g.data, f.data, f.len))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct line_reader r;
	memset(&r, 0, sizeof(r));
	/* in two pieces, as reads from a pipe split it */
	size_t cut = size ? data[0] % (size + 1) : 0;
	line_reader_feed(&r, data, cut, on_line, NULL);
	line_reader_feed(&r, data + cut, size - cut, on_line, NULL);
	return 0;
}
