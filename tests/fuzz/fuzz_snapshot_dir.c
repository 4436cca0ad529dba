/* libFuzzer: a hostile snapshot directory, opened and applied as `popek
 * restore` does (metadata, state records, disk references, the raw or zstd
 * memory image, every device's load). The input is
 *   le16 length, snapshot.json; le16 length, state.bin; the memory image.
 * The harness fixes state.bin's size and CRC in the JSON (a fuzzer cannot
 * forge a CRC) and points every disk at its own image, so a hostile path
 * cannot make it read host files; memory chunk CRCs are not verified. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "snapshot/snapshot.h"

static const uint8_t *take(const uint8_t **p, size_t *left, size_t *len)
{
	const uint8_t *part = *p;
	*len = *left < 2 ? 0 : (size_t)((*p)[0] | (*p)[1] << 8);
	size_t skip = *left < 2 ? *left : 2;
	*p += skip;
	*left -= skip;
	if (*len > *left)
		*len = *left;
	part = *p;
	*p += *len;
	*left -= *len;
	return part;
}

static void put(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || (len && fwrite(data, len, 1, f) != 1) || fclose(f))
		abort();
}

static json_object *field(json_object *o, const char *k)
{
	json_object *v;
	return json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v)
		   ? v
		   : NULL;
}

/* The JSON as the fuzzer wrote it, but with state.bin's true size and CRC
 * and every disk on the harness's image. */
static char *fix_meta(const uint8_t *json, size_t len, const uint8_t *state, size_t state_len)
{
	char *text = strndup((const char *)json, len);
	json_object *m = json_tokener_parse(text);
	json_object *st = field(m, "state"), *disks = field(m, "disks");
	if (json_object_is_type(st, json_type_object)) {
		json_object_object_add(st, "size", json_object_new_int64((int64_t)state_len));
		json_object_object_add(st, "crc32",
				       json_object_new_int64(crc32(0, state, (uInt)state_len)));
	}
	for (size_t i = 0;
	     json_object_is_type(disks, json_type_array) && i < json_object_array_length(disks);
	     i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		if (json_object_is_type(d, json_type_object))
			json_object_object_add(d, "path", json_object_new_string(fuzz_disk()));
	}
	if (m) {
		free(text);
		text = strdup(json_object_to_json_string(m));
	}
	json_object_put(m);
	return text;
}

static char dir[] = "/dev/shm/popek-fuzz-snap-XXXXXX"; /* tmpfs: files are rewritten per input */

static void remove_dir(void)
{
	static const char *const files[] = {"snapshot.json", "state.bin", "memory.zst",
					    "memory.bin"};
	char path[512];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void setup(struct fuzz_rig *r)
{
	if (!mkdtemp(dir) || atexit(remove_dir))
		abort();
	fuzz_add_platform(r);
}

static void one_input(struct fuzz_rig *r, const uint8_t *data, size_t size)
{
	size_t jlen, slen;
	const uint8_t *json = take(&data, &size, &jlen), *state = take(&data, &size, &slen);
	char *meta = fix_meta(json, jlen, state, slen);
	if (!meta)
		abort();
	put(dir, "snapshot.json", meta, strlen(meta));
	free(meta);
	put(dir, "state.bin", state, slen);
	put(dir, "memory.zst", data, size);
	put(dir, "memory.bin", data, size);
	/* A raw image is as large as RAM: the rest is a hole. */
	char path[512];
	snprintf(path, sizeof(path), "%s/memory.bin", dir);
	if (truncate(path, FUZZ_RAM))
		abort();

	char err[1024];
	struct snapshot *s = snapshot_open(dir, false, err, sizeof(err));
	if (!s)
		return;
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	snapshot_config(s, &cfg);
	close(cfg.ram_fd);
	snapshot_check_disks(s, false, err, sizeof(err));
	snapshot_apply(s, &r->m, err, sizeof(err));
	snapshot_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig(setup);
	one_input(r, data, size);
	fuzz_done(r);
	return 0;
}
