#include "snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "devices/virtio_vsock.h"
#include "machine/machine.h"
#include "net/net.h"
#include "snapshot/codec.h"
#include "snapshot/disks.h"
#include "snapshot/sections.h"
#include "util/file.h"

#define FORMAT_NAME    "popek-snapshot"
#define FORMAT_VERSION 1
#define META_MAX       (64u << 20)
#define STATE_MAX      (256u << 20)

struct snapshot {
	char dir[4096];
	json_object *meta;
	uint8_t *state;
	size_t state_len;
	struct sections sec;
	struct vm_state vm;
	int ncpus;
	struct cpu_state *cpu;
	uint64_t mem;
	uint32_t tsc_khz; /* the guest's TSC rate, 0 if not recorded */
	int ram_fd;
};

static int path_in(char *buf, size_t len, const char *dir, const char *file)
{
	int n = snprintf(buf, len, "%s/%s", dir, file);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Files are written through the directory's fd: a jailed VMM has no path to it. */
static int write_file(int dir_fd, const char *dir, const char *name, const void *data, size_t len,
		      char *err, size_t errlen)
{
	char tmp[256];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "snapshot file name too long");
		return -1;
	}
	int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const uint8_t *p = data;
	size_t left = len;
	while (fd >= 0 && left) {
		ssize_t w = write(fd, p, left);
		if (w <= 0 && errno != EINTR)
			break;
		if (w > 0) {
			p += w;
			left -= (size_t)w;
		}
	}
	if (fd < 0 || left || fsync(fd) < 0 || close(fd) < 0 ||
	    renameat(dir_fd, tmp, dir_fd, name) < 0) {
		snprintf(err, errlen, "writing %s/%s: %s", dir, name, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlinkat(dir_fd, tmp, 0);
		return -1;
	}
	return 0;
}

int snapshot_state(struct machine *m, struct blob *out, json_object *devs, char *err, size_t errlen)
{
	struct blob rec = {0};
	struct cpu_state *st = malloc(sizeof(*st));
	struct vm_state vm;
	int rc = -1, nsaved = 0;
	for (int i = 0; i < m->ndevices; i++)
		nsaved += m->devices[i].type->save != NULL;
	if (!st)
		goto out;
	if (!m->engine->get_vm_state || m->engine->get_vm_state(m->evm, &vm)) {
		snprintf(err, errlen, "engine %s cannot save its interrupt controller state",
			 m->engine->name);
		goto out;
	}
	sections_begin(out, (uint32_t)(1 + m->ncpus + nsaved));
	encode_vm_state(&rec, &vm);
	sections_add(out, "vm", rec.buf, rec.len);
	for (int i = 0; i < m->ncpus; i++) {
		char name[32];
		rec.len = 0;
		if (m->engine->get_state(m->vcpu[i].ev, st)) {
			snprintf(err, errlen, "engine %s cannot read vCPU %d", m->engine->name, i);
			goto out;
		}
		encode_cpu_state(&rec, st);
		snprintf(name, sizeof(name), "cpu.%d", i);
		sections_add(out, name, rec.buf, rec.len);
	}
	for (int i = 0; i < m->ndevices; i++) {
		const struct machine_device *d = &m->devices[i];
		void *buf;
		size_t len;
		char name[SECTION_NAME_MAX + 1];
		if (!d->type->save)
			continue;
		if (d->type->save(d->dev, &buf, &len)) {
			snprintf(err, errlen, "device %s cannot save its state", d->name);
			goto out;
		}
		snprintf(name, sizeof(name), "dev.%s", d->name);
		sections_add(out, name, buf, len);
		free(buf);
		if (devs)
			json_object_array_add(devs, json_object_new_string(d->name));
	}
	rc = out->oom || rec.oom ? -1 : 0;
	if (rc)
		snprintf(err, errlen, "out of memory");
out:
	blob_free(&rec);
	free(st);
	return rc;
}

json_object *snapshot_meta(struct machine *m, const char *format, char *err, size_t errlen)
{
	const struct vm_config *cfg = m->cfg;
	json_object *meta = json_object_new_object(), *c = json_object_new_object();
	json_object_object_add(meta, "format", json_object_new_string(format));
	json_object_object_add(meta, "version", json_object_new_int(FORMAT_VERSION));
	json_object_object_add(meta, "popek", json_object_new_string(POPEK_VERSION));
	json_object_object_add(meta, "created", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(meta, "engine", json_object_new_string(m->engine->name));
	/* The rate the guest calibrated its TSC against: the next engine keeps it. */
	uint32_t khz = m->engine->tsc_khz ? m->engine->tsc_khz(m->evm) : 0;
	if (khz)
		json_object_object_add(meta, "tsc_khz", json_object_new_int64(khz));
	json_object_object_add(meta, "name", json_object_new_string(m->name));
	json_object_object_add(c, "mem", json_object_new_int64((int64_t)m->mem.size));
	json_object_object_add(c, "cpus", json_object_new_int(m->ncpus));
	json_object_object_add(c, "kernel", json_object_new_string(cfg->kernel ? cfg->kernel : ""));
	json_object_object_add(c, "cmdline",
			       json_object_new_string(cfg->cmdline ? cfg->cmdline : ""));
	json_object *optional = json_object_new_array();
	for (int i = 0; i < NR_OPTIONAL_DEVICES; i++)
		if (cfg->device[i])
			json_object_array_add(optional,
					      json_object_new_string(optional_device_names[i]));
	json_object_object_add(c, "devices", optional);
	/* Each NIC as its --net, with the MAC its guest knows. */
	json_object *nics = json_object_new_array();
	for (int i = 0; i < cfg->nnics; i++) {
		uint8_t mac[6];
		char text[32];
		net_mac(&cfg->nic[i], cfg->name, i, mac);
		snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
			 mac[2], mac[3], mac[4], mac[5]);
		json_object *n = json_object_new_object();
		json_object_object_add(n, "net", json_object_new_string(cfg->nic[i].spec));
		json_object_object_add(n, "mac", json_object_new_string(text));
		json_object_array_add(nics, n);
	}
	json_object_object_add(c, "nics", nics);
	/* The vsock device as its --vsock, by the absolute path it listens on. */
	struct machine_device *vs = machine_device_find(m, virtio_vsock_device.name);
	if (vs) {
		json_object *v = json_object_new_object();
		json_object_object_add(v, "cid", json_object_new_int64(cfg->vsock.cid));
		json_object_object_add(v, "uds",
				       json_object_new_string(virtio_vsock_path(vs->dev)));
		json_object_object_add(c, "vsock", v);
	}
	json_object_object_add(meta, "config", c);
	json_object *disks = json_object_new_array();
	json_object_object_add(meta, "disks", disks);
	for (int i = 0; i < cfg->ndisks; i++) {
		/* The path is absolute (the CLI resolved it); the image is read
		 * through the fd the disk has open. */
		struct disk_ident id;
		if (disk_ident_fd(machine_disk_fd(m, i), cfg->disk[i].path, &id, err, errlen)) {
			json_object_put(meta);
			return NULL;
		}
		json_object *d = json_object_new_object();
		json_object_object_add(d, "path", json_object_new_string(cfg->disk[i].path));
		json_object_object_add(d, "ro", json_object_new_boolean(cfg->disk[i].ro));
		json_object_object_add(d, "size", json_object_new_int64((int64_t)id.size));
		json_object_object_add(d, "mtime_ns", json_object_new_int64(id.mtime_ns));
		json_object_object_add(d, "crc32", json_object_new_int64(id.crc32));
		json_object_array_add(disks, d);
	}
	return meta;
}

int snapshot_save(struct machine *m, int dir_fd, const char *dir, const struct snapshot_opts *o,
		  char *err, size_t errlen)
{
	struct blob state = {0};
	json_object *meta = NULL, *devs = json_object_new_array();
	uint64_t nchunks = m->mem.size / MEM_CHUNK + (m->mem.size % MEM_CHUNK != 0);
	uint32_t *crcs = calloc(nchunks, sizeof(*crcs));
	int rc = -1;
	if (!crcs)
		goto out;
	if (snapshot_state(m, &state, devs, err, errlen) ||
	    write_file(dir_fd, dir, "state.bin", state.buf, state.len, err, errlen))
		goto out;
	const char *memfile = o->compress ? "memory.zst" : "memory.bin";
	int64_t stored = memimage_save(&m->mem, dir_fd, memfile, o->compress, crcs, o->progress,
				       o->ctx, err, errlen);
	if (stored < 0 || !(meta = snapshot_meta(m, FORMAT_NAME, err, errlen)))
		goto out;

	json_object *mem = json_object_new_object(), *st = json_object_new_object(),
		    *crc = json_object_new_array();
	json_object_object_add(st, "file", json_object_new_string("state.bin"));
	json_object_object_add(st, "size", json_object_new_int64((int64_t)state.len));
	json_object_object_add(st, "crc32",
			       json_object_new_int64(crc32(0, state.buf, (uInt)state.len)));
	json_object_object_add(meta, "state", st);
	json_object_object_add(mem, "file", json_object_new_string(memfile));
	json_object_object_add(mem, "size", json_object_new_int64((int64_t)m->mem.size));
	json_object_object_add(mem, "stored", json_object_new_int64(stored));
	json_object_object_add(mem, "compression",
			       json_object_new_string(o->compress ? "zstd" : "none"));
	json_object_object_add(mem, "chunk", json_object_new_int(MEM_CHUNK));
	for (uint64_t i = 0; i < nchunks; i++)
		json_object_array_add(crc, json_object_new_int64(crcs[i]));
	json_object_object_add(mem, "crc32", crc);
	json_object_object_add(meta, "memory", mem);
	json_object_object_add(meta, "devices", json_object_get(devs));
	const char *text = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PRETTY);
	/* Written last: a snapshot.json means the snapshot is complete. */
	rc = write_file(dir_fd, dir, "snapshot.json", text, strlen(text), err, errlen);
out:
	json_object_put(devs);
	json_object_put(meta);
	blob_free(&state);
	free(crcs);
	return rc;
}

static uint8_t *slurp(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	uint8_t *buf;
	int rc = file_read_all(path, max, &buf, len, err, errlen);
	if (rc == -EFBIG)
		snprintf(err, errlen, "%.200s is %zu bytes, more than the %zu a snapshot may hold",
			 path, *len, max);
	return rc ? NULL : buf;
}

static json_object *get(json_object *o, const char *k, json_type t)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

/* Is this a popek snapshot of a format we read? */
static int check_format(struct snapshot *s, const char *format, char *err, size_t errlen)
{
	json_object *m = s->meta, *v = get(m, "format", json_type_string);
	if (!v || strcmp(json_object_get_string(v), format)) {
		snprintf(err, errlen, "not a popek %s (its metadata has no \"format\": \"%s\")",
			 strcmp(format, FORMAT_NAME) ? "migration stream" : "snapshot", format);
		return -1;
	}
	v = get(m, "version", json_type_int);
	if (!v || json_object_get_int(v) != FORMAT_VERSION) {
		snprintf(err, errlen, "%s version %d is not supported (this popek reads %d)",
			 format, v ? json_object_get_int(v) : -1, FORMAT_VERSION);
		return -1;
	}
	return 0;
}

/* The VM the metadata describes: CPUs and memory in range. */
static int check_config(struct snapshot *s, char *err, size_t errlen)
{
	json_object *c = get(s->meta, "config", json_type_object);
	json_object *cpus = get(c, "cpus", json_type_int), *mem = get(c, "mem", json_type_int);
	if (!cpus || !mem || !get(s->meta, "engine", json_type_string)) {
		snprintf(err, errlen,
			 "the metadata is incomplete (config.cpus, config.mem, engine)");
		return -1;
	}
	s->ncpus = json_object_get_int(cpus);
	s->mem = (uint64_t)json_object_get_int64(mem);
	json_object *khz; /* absent in snapshots older than it: the engine's rate */
	if (json_object_object_get_ex(s->meta, "tsc_khz", &khz)) {
		int64_t k =
		    json_object_is_type(khz, json_type_int) ? json_object_get_int64(khz) : 0;
		if (k < ENGINE_TSC_KHZ_MIN || k > ENGINE_TSC_KHZ_MAX) {
			snprintf(err, errlen,
				 "the metadata's tsc_khz is not a TSC rate (1 MHz to 10 GHz)");
			return -1;
		}
		s->tsc_khz = (uint32_t)k;
	}
	if (s->ncpus < 1 || s->ncpus > MAX_VCPUS || s->mem < MEM_MIN_SIZE ||
	    s->mem > MEM_MAX_SIZE || (s->mem & 0xfff)) {
		snprintf(err, errlen, "the metadata describes an impossible VM (cpus or memory)");
		return -1;
	}
	return 0;
}

/* The files snapshot.json names, present and matching. */
static int check_files(struct snapshot *s, char *err, size_t errlen)
{
	json_object *m = s->meta;
	json_object *mem = get(m, "memory", json_type_object),
		    *st = get(m, "state", json_type_object);
	json_object *size = get(mem, "size", json_type_int),
		    *crc = get(mem, "crc32", json_type_array),
		    *comp = get(mem, "compression", json_type_string),
		    *file = get(mem, "file", json_type_string),
		    *ssz = get(st, "size", json_type_int), *scrc = get(st, "crc32", json_type_int);
	if (!size || !crc || !comp || !file || !ssz || !scrc) {
		snprintf(err, errlen, "snapshot.json is incomplete");
		return -1;
	}
	uint64_t nchunks = s->mem / MEM_CHUNK + (s->mem % MEM_CHUNK != 0);
	const char *f = json_object_get_string(file), *cm = json_object_get_string(comp);
	if ((uint64_t)json_object_get_int64(size) != s->mem ||
	    json_object_array_length(crc) != nchunks ||
	    (strcmp(cm, "none") && strcmp(cm, "zstd")) ||
	    strcmp(f, strcmp(cm, "zstd") ? "memory.bin" : "memory.zst")) {
		snprintf(err, errlen, "snapshot.json describes an impossible VM (memory or files)");
		return -1;
	}
	if ((uint64_t)json_object_get_int64(ssz) != s->state_len ||
	    (uint64_t)json_object_get_int64(scrc) != crc32(0, s->state, (uInt)s->state_len)) {
		snprintf(err, errlen,
			 "state.bin does not match snapshot.json (truncated or corrupt)");
		return -1;
	}
	return 0;
}

static int decode_records(struct snapshot *s, char *err, size_t errlen)
{
	const struct section *vm = sections_find(&s->sec, "vm");
	if (!vm || decode_vm_state(vm->data, vm->len, &s->vm)) {
		snprintf(err, errlen, "state.bin: VM record missing or invalid");
		return -1;
	}
	s->cpu = calloc((size_t)s->ncpus, sizeof(*s->cpu));
	if (!s->cpu)
		return -1;
	for (int i = 0; i < s->ncpus; i++) {
		char name[32];
		snprintf(name, sizeof(name), "cpu.%d", i);
		const struct section *c = sections_find(&s->sec, name);
		if (!c || decode_cpu_state(c->data, c->len, &s->cpu[i])) {
			snprintf(err, errlen, "state.bin: vCPU %d record missing or invalid", i);
			return -1;
		}
	}
	return 0;
}

struct snapshot *snapshot_open(const char *dir, bool verify, char *err, size_t errlen)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	char path[4200], why[400] = "";
	size_t len;
	if (!s)
		return NULL;
	s->ram_fd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	uint8_t *text = NULL;
	if (path_in(path, sizeof(path), dir, "snapshot.json") ||
	    !(text = slurp(path, META_MAX, &len, why, sizeof(why))))
		goto fail;
	s->meta = json_tokener_parse((char *)text);
	free(text);
	if (!s->meta) {
		snprintf(why, sizeof(why), "snapshot.json is not valid JSON");
		goto fail;
	}
	if (check_format(s, FORMAT_NAME, why, sizeof(why)))
		goto fail;
	path_in(path, sizeof(path), dir, "state.bin");
	if (!(s->state = slurp(path, STATE_MAX, &s->state_len, why, sizeof(why))) ||
	    check_config(s, why, sizeof(why)) || check_files(s, why, sizeof(why)) ||
	    sections_parse(s->state, s->state_len, &s->sec, why, sizeof(why)) ||
	    decode_records(s, why, sizeof(why)))
		goto fail;
	json_object *mem = get(s->meta, "memory", json_type_object),
		    *crcj = get(mem, "crc32", json_type_array);
	size_t n = json_object_array_length(crcj);
	uint32_t *crcs = calloc(n ? n : 1, sizeof(*crcs));
	if (!crcs)
		goto fail;
	for (size_t i = 0; i < n; i++)
		crcs[i] = (uint32_t)json_object_get_int64(json_object_array_get_idx(crcj, i));
	const char *file = json_object_get_string(get(mem, "file", json_type_string));
	path_in(path, sizeof(path), dir, file);
	s->ram_fd = memimage_open(path, !strcmp(file, "memory.zst"), s->mem, crcs, verify, why,
				  sizeof(why));
	free(crcs);
	if (s->ram_fd < 0)
		goto fail;
	return s;
fail:
	snprintf(err, errlen, "snapshot %s refused: %s", dir, why[0] ? why : "out of memory");
	snapshot_close(s);
	return NULL;
}

struct snapshot *snapshot_begin(struct json_object *meta, const char *format, uint64_t *mem,
				char *err, size_t errlen)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	if (!s) {
		json_object_put(meta);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->ram_fd = -1;
	s->meta = meta;
	if (!meta || check_format(s, format, err, errlen) || check_config(s, err, errlen)) {
		snapshot_close(s);
		return NULL;
	}
	*mem = s->mem;
	return s;
}

int snapshot_finish(struct snapshot *s, uint8_t *state, size_t len, int ram_fd, char *err,
		    size_t errlen)
{
	s->state = state;
	s->state_len = len;
	s->ram_fd = ram_fd;
	return sections_parse(s->state, s->state_len, &s->sec, err, errlen) ||
		       decode_records(s, err, errlen)
		   ? -1
		   : 0;
}

int snapshot_check_disks(const struct snapshot *s, bool force, char *err, size_t errlen)
{
	json_object *disks = get(s->meta, "disks", json_type_array);
	size_t n = disks ? json_object_array_length(disks) : 0;
	if (n > MAX_DISKS) {
		snprintf(err, errlen, "snapshot lists %zu disks (limit %d)", n, MAX_DISKS);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(disks, i),
			    *p = get(d, "path", json_type_string),
			    *size = get(d, "size", json_type_int),
			    *mt = get(d, "mtime_ns", json_type_int),
			    *crc = get(d, "crc32", json_type_int);
		struct disk_ident id;
		if (!p || !size || !mt || !crc || !get(d, "ro", json_type_boolean)) {
			snprintf(err, errlen, "snapshot.json: disk %zu is incomplete", i);
			return -1;
		}
		const char *path = json_object_get_string(p);
		if (disk_ident(path, &id, err, errlen))
			return -1;
		const char *what =
		    (uint64_t)json_object_get_int64(size) != id.size   ? "its size"
		    : (uint32_t)json_object_get_int64(crc) != id.crc32 ? "its content"
		    : json_object_get_int64(mt) != id.mtime_ns	       ? "its modification time"
								       : NULL;
		if (what && !force) {
			snprintf(err, errlen,
				 "disk image %s changed since the snapshot (%s differs): the "
				 "guest's view of "
				 "it would be inconsistent — restore the image, or use --force",
				 path, what);
			return -1;
		}
	}
	return 0;
}

const char *snapshot_engine(const struct snapshot *s)
{
	return json_object_get_string(get(s->meta, "engine", json_type_string));
}

/* The NICs as saved; one that no longer parses is left out (its device
 * state is then refused, with the reason printed here). */
static void snapshot_nics(json_object *nics, struct vm_config *cfg)
{
	static char args[MAX_NICS][sizeof(cfg->nic[0].spec)]; /* the NICs point into them */
	char err[512];
	cfg->nnics = 0;
	for (size_t i = 0; nics && i < json_object_array_length(nics) && i < MAX_NICS; i++) {
		json_object *n = json_object_array_get_idx(nics, i);
		json_object *spec = get(n, "net", json_type_string),
			    *mac = get(n, "mac", json_type_string);
		char *arg = args[cfg->nnics];
		struct net_config *nc = &cfg->nic[cfg->nnics];
		snprintf(arg, sizeof(args[0]), "%s", spec ? json_object_get_string(spec) : "");
		if (net_config_parse(arg, nc, err, sizeof(err))) {
			fprintf(stderr, "popek: snapshot NIC %zu: %s\n", i, err);
			continue;
		}
		unsigned b[6];
		if (mac && sscanf(json_object_get_string(mac), "%2x:%2x:%2x:%2x:%2x:%2x", &b[0],
				  &b[1], &b[2], &b[3], &b[4], &b[5]) == 6) {
			for (int k = 0; k < 6; k++)
				nc->mac[k] = (uint8_t)b[k];
			nc->mac_set = true;
		}
		cfg->nnics++;
	}
}

void snapshot_config(struct snapshot *s, struct vm_config *cfg)
{
	json_object *c = get(s->meta, "config", json_type_object), *v;
	cfg->mem = s->mem;
	cfg->cpus = s->ncpus;
	cfg->kernel = (v = get(c, "kernel", json_type_string)) ? json_object_get_string(v) : "";
	cfg->cmdline = (v = get(c, "cmdline", json_type_string)) ? json_object_get_string(v) : "";
	/* an unknown name is dropped here; its device state is then refused */
	json_object *optional = get(c, "devices", json_type_array);
	for (size_t i = 0; optional && i < json_object_array_length(optional); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(optional, i));
		int dev = name ? optional_device_find(name) : -1;
		if (dev >= 0)
			cfg->device[dev] = true;
	}
	snapshot_nics(get(c, "nics", json_type_array), cfg);
	/* A vsock out of range is dropped here; its device state is then refused. */
	json_object *vs = get(c, "vsock", json_type_object);
	json_object *cid = get(vs, "cid", json_type_int), *uds = get(vs, "uds", json_type_string);
	int64_t n = cid ? json_object_get_int64(cid) : 0;
	if (uds && n >= 3 && n < 0xffffffff)
		cfg->vsock = (struct vsock_config){(uint32_t)n, json_object_get_string(uds)};
	json_object *disks = get(s->meta, "disks", json_type_array);
	cfg->ndisks = 0;
	for (size_t i = 0; disks && i < json_object_array_length(disks) && i < MAX_DISKS; i++) {
		json_object *d = json_object_array_get_idx(disks, i);
		cfg->disk[cfg->ndisks].path =
		    json_object_get_string(get(d, "path", json_type_string));
		cfg->disk[cfg->ndisks++].ro =
		    json_object_get_boolean(get(d, "ro", json_type_boolean));
	}
	if (!cfg->engine)
		cfg->engine = snapshot_engine(s);
	cfg->tsc_khz = s->tsc_khz;
	cfg->ram_fd = s->ram_fd;
	s->ram_fd = -1; /* the machine owns it now */
}

int snapshot_apply(const struct snapshot *s, struct machine *m, char *err, size_t errlen)
{
	int matched = 0;
	for (int i = 0; i < m->ndevices; i++) {
		const struct machine_device *d = &m->devices[i];
		char name[SECTION_NAME_MAX + 1];
		if (!d->type->load)
			continue;
		snprintf(name, sizeof(name), "dev.%s", d->name);
		const struct section *sec = sections_find(&s->sec, name);
		if (!sec) {
			snprintf(err, errlen, "snapshot has no state for device %s", d->name);
			return -1;
		}
		if (d->type->load(d->dev, sec->data, sec->len)) {
			snprintf(err, errlen, "snapshot state for device %s is invalid", d->name);
			return -1;
		}
		matched++;
	}
	if (matched != s->sec.n - 1 - s->ncpus) {
		snprintf(err, errlen, "snapshot holds devices this VM does not have");
		return -1;
	}
	if (!m->engine->set_vm_state || m->engine->set_vm_state(m->evm, &s->vm)) {
		snprintf(err, errlen, "engine %s cannot load the interrupt controller state",
			 m->engine->name);
		return -1;
	}
	for (int i = 0; i < s->ncpus; i++) {
		int rc = m->engine->set_state(m->vcpu[i].ev, &s->cpu[i]);
		if (rc) {
			snprintf(err, errlen, "engine %s cannot load vCPU %d: %s", m->engine->name,
				 i, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

void snapshot_close(struct snapshot *s)
{
	if (!s)
		return;
	if (s->ram_fd >= 0)
		close(s->ram_fd);
	json_object_put(s->meta);
	free(s->state);
	free(s->cpu);
	free(s);
}
