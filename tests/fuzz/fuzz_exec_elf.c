/* Fuzz popek exec's parsers of untrusted input: the program's ELF headers
 * (xelf_parse) and guest path normalization (fs_normalize). Whatever the
 * input, an accepted ELF's span is page-aligned user space and its
 * interpreter a terminated string, and a normalized path is absolute with no
 * ".", ".." or empty component. */
#include <stdlib.h>
#include <string.h>

#include "exec/exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *base, const char *path)
{
	char out[4096];
	if (fs_normalize(base, path, out, sizeof(out)))
		return;
	if (out[0] != '/' || strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../"))
		abort();
	size_t n = strlen(out);
	if (n > 1 && (out[n - 1] == '/' || !strcmp(out + n - 2, "/.") ||
		      (n >= 3 && !strcmp(out + n - 3, "/.."))))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xelf e;
	char err[256];
	if (!xelf_parse(data, size, &e, err, sizeof(err))) {
		if (e.lo >= e.hi || (e.lo | e.hi) & (XPAGE - 1) || e.hi > X_USER_END + XPAGE ||
		    (e.has_interp && !memchr(e.interp, 0, sizeof(e.interp))))
			abort();
	} else if (!err[0]) {
		abort(); /* a refusal says why */
	}
	/* the same bytes as "base\0path" */
	char buf[8192];
	size_t n = size < sizeof(buf) - 2 ? size : sizeof(buf) - 2;
	memcpy(buf, data, n);
	buf[n] = buf[n + 1] = '\0';
	const char *path = buf + strlen(buf) + 1;
	check_path(buf[0] == '/' ? buf : "/", path);
	return 0;
}
