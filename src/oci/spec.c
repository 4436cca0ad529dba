/* The bundle's config.json and exec's process.json (OCI runtime spec
 * 1.0), read with json-c. The files come from the client, so every field is
 * checked for its type and range; unknown fields are ignored as runc does. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <json-c/json.h>

#include "oci/oci.h"
#include "util/file.h"

#define MAX_STRINGS 4096

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static json_object *get(json_object *o, const char *key, json_type type)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* A present field of the wrong type is an error; an absent one is not. */
static int check(json_object *o, const char *key, json_type type, const char *where, char *err,
		 size_t errlen)
{
	json_object *v;
	if (o && json_object_object_get_ex(o, key, &v) && v && !json_object_is_type(v, type))
		return fail(err, errlen, "%s.%s has the wrong type (expected %s)", where, key,
			    json_type_to_name(type));
	return 0;
}

static int uint_field(json_object *o, const char *key, uint64_t max, uint64_t *out,
		      const char *where, char *err, size_t errlen)
{
	if (check(o, key, json_type_int, where, err, errlen))
		return -1;
	json_object *v = get(o, key, json_type_int);
	if (!v)
		return 0;
	int64_t n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n > max)
		return fail(err, errlen, "%s.%s = %lld is out of range (0..%llu)", where, key,
			    (long long)n, (unsigned long long)max);
	*out = (uint64_t)n;
	return 0;
}

static int strings(json_object *arr, char ***out, size_t *n, const char *what, char *err,
		   size_t errlen)
{
	size_t len = json_object_array_length(arr);
	if (len > MAX_STRINGS)
		return fail(err, errlen, "%s has %zu entries (at most %d)", what, len, MAX_STRINGS);
	*out = calloc(len + 1, sizeof(char *));
	*n = 0;
	if (!*out)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < len; i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(s, json_type_string))
			return fail(err, errlen, "%s[%zu] is not a string", what, i);
		if ((size_t)json_object_get_string_len(s) > FRAME_DATA_MAX)
			return fail(err, errlen, "%s[%zu] is longer than %d bytes", what, i,
				    FRAME_DATA_MAX);
		(*out)[(*n)++] = strdup(json_object_get_string(s));
	}
	return 0;
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},		  {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},	  {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},	  {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},	  {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},	  {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},	  {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},	  {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static int parse_rlimits(json_object *arr, struct oci_process *p, char *err, size_t errlen)
{
	size_t len = json_object_array_length(arr);
	for (size_t i = 0; i < len; i++) {
		json_object *r = json_object_array_get_idx(arr, i);
		json_object *type = get(r, "type", json_type_string);
		if (!type)
			return fail(err, errlen, "process.rlimits[%zu].type is missing", i);
		int res = -1;
		for (size_t k = 0; k < sizeof(rlimit_names) / sizeof(rlimit_names[0]); k++)
			if (!strcmp(json_object_get_string(type), rlimit_names[k].name))
				res = rlimit_names[k].resource;
		if (res < 0)
			return fail(err, errlen, "process.rlimits[%zu]: unknown type %s", i,
				    json_object_get_string(type));
		uint64_t soft = UINT64_MAX, hard = UINT64_MAX;
		if (uint_field(r, "soft", UINT64_MAX, &soft, "process.rlimits[]", err, errlen) ||
		    uint_field(r, "hard", UINT64_MAX, &hard, "process.rlimits[]", err, errlen))
			return -1;
		if (p->nrlimits == sizeof(p->rlimits) / sizeof(p->rlimits[0]))
			return fail(err, errlen, "process.rlimits has more than %zu entries",
				    sizeof(p->rlimits) / sizeof(p->rlimits[0]));
		/* json-c reads 2^64-1 (RLIM_INFINITY) as INT64_MAX */
		struct oci_rlimit *l = &p->rlimits[p->nrlimits++];
		l->resource = res;
		l->soft = soft >= (uint64_t)INT64_MAX ? -1 : (int64_t)soft;
		l->hard = hard >= (uint64_t)INT64_MAX ? -1 : (int64_t)hard;
	}
	return 0;
}

static int parse_process(json_object *o, struct oci_process *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (!o)
		return fail(err, errlen, "the spec has no process object");
	const char *w = "process";
	if (check(o, "args", json_type_array, w, err, errlen) ||
	    check(o, "env", json_type_array, w, err, errlen) ||
	    check(o, "cwd", json_type_string, w, err, errlen) ||
	    check(o, "terminal", json_type_boolean, w, err, errlen) ||
	    check(o, "user", json_type_object, w, err, errlen) ||
	    check(o, "rlimits", json_type_array, w, err, errlen) ||
	    check(o, "consoleSize", json_type_object, w, err, errlen))
		return -1;
	json_object *args = get(o, "args", json_type_array);
	if (!args || json_object_array_length(args) == 0)
		return fail(err, errlen, "process.args is missing or empty: nothing to run");
	if (strings(args, &p->args, &p->nargs, "process.args", err, errlen))
		return -1;
	json_object *env = get(o, "env", json_type_array);
	if (env && strings(env, &p->env, &p->nenv, "process.env", err, errlen))
		return -1;
	json_object *cwd = get(o, "cwd", json_type_string);
	p->cwd = strdup(cwd ? json_object_get_string(cwd) : "/");
	if (p->cwd[0] != '/' || strlen(p->cwd) > FRAME_DATA_MAX)
		return fail(err, errlen, "process.cwd must be an absolute path");
	json_object *term = get(o, "terminal", json_type_boolean);
	p->terminal = term && json_object_get_boolean(term);
	json_object *user = get(o, "user", json_type_object);
	uint64_t v = 0;
	if (uint_field(user, "uid", UINT32_MAX - 1, &v, "process.user", err, errlen))
		return -1;
	p->uid = (uint32_t)v;
	v = 0;
	if (uint_field(user, "gid", UINT32_MAX - 1, &v, "process.user", err, errlen))
		return -1;
	p->gid = (uint32_t)v;
	if (check(user, "additionalGids", json_type_array, "process.user", err, errlen))
		return -1;
	json_object *gids = get(user, "additionalGids", json_type_array);
	for (size_t i = 0; gids && i < json_object_array_length(gids); i++) {
		json_object *g = json_object_array_get_idx(gids, i);
		int64_t n = json_object_get_int64(g);
		if (!json_object_is_type(g, json_type_int) || n < 0 || n >= UINT32_MAX)
			return fail(err, errlen, "process.user.additionalGids[%zu] is not a gid",
				    i);
		if (p->ngids == sizeof(p->gids) / sizeof(p->gids[0]))
			return fail(err, errlen, "process.user.additionalGids: more than %zu",
				    sizeof(p->gids) / sizeof(p->gids[0]));
		p->gids[p->ngids++] = (uint32_t)n;
	}
	json_object *rl = get(o, "rlimits", json_type_array);
	if (rl && parse_rlimits(rl, p, err, errlen))
		return -1;
	json_object *cs = get(o, "consoleSize", json_type_object);
	uint64_t rows = 24, cols = 80;
	if (uint_field(cs, "height", 65535, &rows, "process.consoleSize", err, errlen) ||
	    uint_field(cs, "width", 65535, &cols, "process.consoleSize", err, errlen))
		return -1;
	p->rows = (unsigned)rows;
	p->cols = (unsigned)cols;
	return 0;
}

/* Mounts: bind mounts of host files and directories reach the guest on the
 * binds disk; tmpfs ones are made by the agent; the kernel file systems
 * (proc, sysfs, devpts, mqueue, cgroup, /dev) the agent sets up itself. */
static int parse_mounts(json_object *arr, struct oci_spec *s, char *err, size_t errlen)
{
	size_t len = json_object_array_length(arr);
	if (len > 1024)
		return fail(err, errlen, "mounts has %zu entries (at most 1024)", len);
	s->mounts = calloc(len ? len : 1, sizeof(*s->mounts));
	if (!s->mounts)
		return fail(err, errlen, "out of memory");
	for (size_t i = 0; i < len; i++) {
		json_object *m = json_object_array_get_idx(arr, i);
		json_object *dest = get(m, "destination", json_type_string);
		json_object *type = get(m, "type", json_type_string);
		json_object *src = get(m, "source", json_type_string);
		json_object *opts = get(m, "options", json_type_array);
		if (!dest || json_object_get_string(dest)[0] != '/' ||
		    json_object_get_string_len(dest) > FRAME_DATA_MAX)
			return fail(err, errlen, "mounts[%zu].destination must be an absolute path",
				    i);
		const char *t = type ? json_object_get_string(type) : "";
		const char *d = json_object_get_string(dest);
		bool bind = !strcmp(t, "bind"), ro = false;
		for (size_t k = 0; opts && k < json_object_array_length(opts); k++) {
			const char *o = json_object_get_string(json_object_array_get_idx(opts, k));
			if (o && (!strcmp(o, "bind") || !strcmp(o, "rbind")))
				bind = true;
			if (o && !strcmp(o, "ro"))
				ro = true;
		}
		struct oci_mount *om = &s->mounts[s->nmounts];
		if (bind) {
			if (!src || json_object_get_string(src)[0] != '/')
				return fail(
				    err, errlen,
				    "mounts[%zu] (%s): a bind mount needs an absolute source", i,
				    d);
			om->kind = MOUNT_BIND;
			om->source = strdup(json_object_get_string(src));
		} else if (!strcmp(t, "tmpfs") && strcmp(d, "/dev") && strncmp(d, "/dev/", 5)) {
			om->kind = MOUNT_TMPFS;
		} else {
			continue; /* proc, sysfs, devpts, mqueue, cgroup, /dev: the agent's own */
		}
		om->dest = strdup(d);
		om->ro = ro;
		s->nmounts++;
	}
	return 0;
}

/* VM size from linux.resources: memory.limit (at least 192 MiB: the kernel and
 * the agent need it), cpu.quota/period rounded up, else cpuset size. */
/* linux.namespaces' network entry: none at all is the host's network, one
 * with a path the client's (podman's, CNI's), one without a new empty one. */
static int parse_netns(json_object *linux_, struct oci_spec *s, char *err, size_t errlen)
{
	json_object *ns = get(linux_, "namespaces", json_type_array);
	s->net = OCI_NET_HOST;
	for (size_t i = 0; ns && i < json_object_array_length(ns); i++) {
		json_object *e = json_object_array_get_idx(ns, i);
		json_object *type = get(e, "type", json_type_string);
		if (!type || strcmp(json_object_get_string(type), "network"))
			continue;
		if (check(e, "path", json_type_string, "linux.namespaces", err, errlen))
			return -1;
		json_object *path = get(e, "path", json_type_string);
		const char *p = path ? json_object_get_string(path) : "";
		if (*p && *p != '/')
			return fail(err, errlen,
				    "linux.namespaces: network path %s is not absolute", p);
		s->net = *p ? OCI_NET_NS : OCI_NET_NONE;
		free(s->netns);
		s->netns = *p ? strdup(p) : NULL;
	}
	return 0;
}

static int parse_resources(json_object *linux_, struct oci_spec *s, char *err, size_t errlen)
{
	json_object *res = get(linux_, "resources", json_type_object);
	json_object *mem = get(res, "memory", json_type_object);
	json_object *cpu = get(res, "cpu", json_type_object);
	s->mem = 256ull << 20;
	s->cpus = 1;
	json_object *limit = get(mem, "limit", json_type_int);
	if (limit && json_object_get_int64(limit) > 0) {
		uint64_t l = (uint64_t)json_object_get_int64(limit);
		s->mem = l < (192ull << 20) ? 192ull << 20 : l > (16ull << 30) ? 16ull << 30 : l;
		s->mem = (s->mem + (1 << 20) - 1) & ~((1ull << 20) - 1);
	}
	json_object *quota = get(cpu, "quota", json_type_int);
	json_object *period = get(cpu, "period", json_type_int);
	if (quota && period && json_object_get_int64(quota) > 0 &&
	    json_object_get_int64(period) > 0) {
		int64_t q = json_object_get_int64(quota), p = json_object_get_int64(period);
		int64_t n = q / p + (q % p != 0); /* no overflow for huge values */
		s->cpus = n < 1 ? 1 : n > 16 ? 16 : (unsigned)n;
	}
	return 0;
}

static json_object *parse_json(const char *text, size_t len, const char *what, char *err,
			       size_t errlen)
{
	if (len > OCI_SPEC_MAX || len > INT_MAX) {
		fail(err, errlen, "%s is larger than %u bytes", what, OCI_SPEC_MAX);
		return NULL;
	}
	json_tokener *tok = json_tokener_new_ex(64);
	if (!tok) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	if (!o || e != json_tokener_success || !json_object_is_type(o, json_type_object)) {
		fail(err, errlen, "%s is not a JSON object (%s)", what,
		     e == json_tokener_success ? "wrong type" : json_tokener_error_desc(e));
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* A CRI container names its sandbox, which must be a valid container ID. */
static int parse_pod(json_object *ann, struct oci_spec *s, char *err, size_t errlen)
{
	json_object *type = get(ann, "io.kubernetes.cri.container-type", json_type_string);
	json_object *sb = get(ann, "io.kubernetes.cri.sandbox-id", json_type_string);
	const char *t = type ? json_object_get_string(type) : "";
	if (!strcmp(t, "sandbox")) {
		s->pod = POD_SANDBOX;
	} else if (!strcmp(t, "container")) {
		if (!sb || !state_id_valid(json_object_get_string(sb)))
			return fail(err, errlen,
				    "a CRI container needs a valid io.kubernetes.cri.sandbox-id");
		s->pod = POD_CONTAINER;
		s->sandbox_id = strdup(json_object_get_string(sb));
	}
	return 0;
}

int spec_parse(const char *text, size_t len, const char *bundle, struct oci_spec *s, char *err,
	       size_t errlen)
{
	memset(s, 0, sizeof(*s));
	json_object *o = parse_json(text, len, "config.json", err, errlen);
	if (!o)
		return -1;
	int rc = -1;
	if (check(o, "process", json_type_object, "spec", err, errlen) ||
	    check(o, "root", json_type_object, "spec", err, errlen) ||
	    check(o, "mounts", json_type_array, "spec", err, errlen) ||
	    check(o, "hostname", json_type_string, "spec", err, errlen) ||
	    check(o, "annotations", json_type_object, "spec", err, errlen) ||
	    check(o, "linux", json_type_object, "spec", err, errlen))
		goto out;
	if (parse_process(get(o, "process", json_type_object), &s->proc, err, errlen))
		goto out;
	json_object *path = get(get(o, "root", json_type_object), "path", json_type_string);
	if (!path || !json_object_get_string_len(path)) {
		fail(err, errlen, "root.path is missing: the bundle names no root file system");
		goto out;
	}
	const char *p = json_object_get_string(path);
	size_t n = strlen(bundle) + strlen(p) + 2;
	s->root = malloc(n);
	if (!s->root)
		goto out;
	if (p[0] == '/')
		snprintf(s->root, n, "%s", p);
	else
		snprintf(s->root, n, "%s/%s", bundle, p);
	json_object *host = get(o, "hostname", json_type_string);
	if (host && json_object_get_string_len(host) > 64) {
		fail(err, errlen, "hostname is longer than 64 bytes");
		goto out;
	}
	s->hostname = host ? strdup(json_object_get_string(host)) : NULL;
	json_object *mounts = get(o, "mounts", json_type_array);
	if (mounts && parse_mounts(mounts, s, err, errlen))
		goto out;
	if (parse_resources(get(o, "linux", json_type_object), s, err, errlen) ||
	    parse_netns(get(o, "linux", json_type_object), s, err, errlen))
		goto out;
	json_object *ann = get(o, "annotations", json_type_object);
	s->annotations =
	    strdup(ann ? json_object_to_json_string_ext(ann, JSON_C_TO_STRING_PLAIN) : "{}");
	if (ann && parse_pod(ann, s, err, errlen))
		goto out;
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

int spec_parse_process(const char *text, size_t len, struct oci_process *p, char *err,
		       size_t errlen)
{
	json_object *o = parse_json(text, len, "process.json", err, errlen);
	if (!o) {
		memset(p, 0, sizeof(*p));
		return -1;
	}
	int rc = parse_process(o, p, err, errlen);
	json_object_put(o);
	return rc;
}

int spec_load(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	uint8_t *buf;
	int rc = file_read_all(path, OCI_SPEC_MAX, &buf, len, err, errlen);
	if (rc == -EFBIG)
		return fail(err, errlen, "%s is larger than %u bytes", path, OCI_SPEC_MAX);
	if (rc)
		return -1;
	*text = (char *)buf;
	return 0;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void spec_free_process(struct oci_process *p)
{
	free_strings(p->args, p->nargs);
	free_strings(p->env, p->nenv);
	free(p->cwd);
	memset(p, 0, sizeof(*p));
}

void spec_free(struct oci_spec *s)
{
	spec_free_process(&s->proc);
	for (size_t i = 0; i < s->nmounts; i++) {
		free(s->mounts[i].dest);
		free(s->mounts[i].source);
	}
	free(s->mounts);
	free(s->root);
	free(s->hostname);
	free(s->annotations);
	free(s->sandbox_id);
	free(s->netns);
	memset(s, 0, sizeof(*s));
}
