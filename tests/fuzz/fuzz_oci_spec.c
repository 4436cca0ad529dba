/* Fuzz popek-oci's config.json and process.json parser: any text is either
 * refused with a message or becomes a spec whose strings the agent protocol
 * can carry (each at most one frame), which is then turned into frames. The
 * first byte picks the parser. */
#include <stdlib.h>
#include <string.h>

#include "oci/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_process(const struct oci_process *p)
{
	if (!p->nargs || p->ngids > 64 || p->nrlimits > 16 || !p->cwd || p->cwd[0] != '/')
		abort();
	for (size_t i = 0; i < p->nargs; i++)
		if (strlen(p->args[i]) > FRAME_DATA_MAX)
			abort();
	struct obuf b = {0};
	process_frames(&b, 1, p);
	/* every frame the host builds parses back on the agent's side */
	static struct line_reader lr;
	memset(&lr, 0, sizeof(lr));
	if (!b.len || b.data[b.len - 1] != '\n')
		abort();
	for (size_t s = 0, i = 0; i < b.len; i++) {
		if (b.data[i] != '\n')
			continue;
		static struct frame f;
		if (frame_parse(b.data + s, i - s, &f) != FRAME_OK)
			abort();
		s = i + 1;
	}
	obuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char err[512] = "";
	const char *text = (const char *)data + 1;
	if (data[0] & 1) {
		struct oci_process p;
		if (spec_parse_process(text, size - 1, &p, err, sizeof(err)) == 0)
			check_process(&p);
		else if (!err[0])
			abort();
		spec_free_process(&p);
	} else {
		struct oci_spec s;
		if (spec_parse(text, size - 1, "/bundle", &s, err, sizeof(err)) == 0) {
			check_process(&s.proc);
			if (!s.root || s.mem < (192u << 20) || !s.cpus || !s.annotations)
				abort();
			for (size_t i = 0; i < s.nmounts; i++)
				if (s.mounts[i].dest[0] != '/')
					abort();
		} else if (!err[0]) {
			abort();
		}
		spec_free(&s);
	}
	return 0;
}
