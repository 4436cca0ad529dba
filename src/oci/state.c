/* The state directory: ROOT/ID/state.json (what `state` prints), the monitor's
 * socket m.sock, the disks. Sockets are reached relative to the directory, so
 * a long --root does not run into the 108-byte limit of a socket path. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "oci/oci.h"

static const char *const status_names[] = {
    [ST_CREATING] = "creating", [ST_CREATED] = "created", [ST_RUNNING] = "running",
    [ST_PAUSED] = "paused",	[ST_STOPPED] = "stopped",
};

const char *state_status_name(enum oci_status s)
{
	return status_names[s];
}

/* runc's rule: letters, digits, and _ + - . ; not . or .. */
int state_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= sizeof(((struct oci_state *)0)->id) || !strcmp(id, ".") ||
	    !strcmp(id, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

int state_path(char *buf, size_t len, const char *id, const char *name)
{
	int n = snprintf(buf, len, "%s/%s%s%s", oci_g.root, id, name ? "/" : "", name ? name : "");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

void state_vm_name(const char *id, char *buf, size_t len)
{
	/* popek names are at most 64 characters; IDs from clients are 64 hex digits */
	snprintf(buf, len, "oci-%.59s", id);
	for (char *p = buf; *p; p++)
		if (*p == '+')
			*p = '_';
}

int state_save(const struct oci_state *st, char *err, size_t errlen)
{
	char path[4200], tmp[4210];
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(o, "bundle", json_object_new_string(st->bundle));
	json_object_object_add(o, "pid", json_object_new_int(st->pid));
	json_object_object_add(o, "status", json_object_new_string(status_names[st->status]));
	json_object_object_add(o, "created", json_object_new_string(st->created));
	json_object_object_add(o, "annotations",
			       json_tokener_parse(st->annotations ? st->annotations : "{}"));
	int rc = -1;
	if (state_path(path, sizeof(path), st->id, "state.json") == 0) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		FILE *f = fopen(tmp, "w");
		if (f) {
			fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE),
			      f);
			if (fclose(f) == 0 && rename(tmp, path) == 0)
				rc = 0;
		}
		if (rc)
			snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	} else {
		snprintf(err, errlen, "state path of %s is too long", st->id);
	}
	json_object_put(o);
	return rc;
}

static bool monitor_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

int state_load(const char *id, struct oci_state *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	char path[4200];
	if (!state_id_valid(id)) {
		snprintf(err, errlen, "invalid container id '%s'", id);
		return -EINVAL;
	}
	if (state_path(path, sizeof(path), id, "state.json"))
		return -ENAMETOOLONG;
	json_object *o = json_object_from_file(path);
	if (!o) {
		struct stat s;
		int e = stat(path, &s) < 0 ? errno : EINVAL;
		snprintf(err, errlen,
			 e == ENOENT ? "container \"%s\" does not exist"
				     : "container \"%s\": bad state file",
			 id);
		return -e;
	}
	json_object *v;
	snprintf(st->id, sizeof(st->id), "%s", id);
	if (json_object_object_get_ex(o, "bundle", &v))
		snprintf(st->bundle, sizeof(st->bundle), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "pid", &v))
		st->pid = json_object_get_int(v);
	if (json_object_object_get_ex(o, "created", &v))
		snprintf(st->created, sizeof(st->created), "%s", json_object_get_string(v));
	st->status = ST_STOPPED;
	if (json_object_object_get_ex(o, "status", &v))
		for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
			if (!strcmp(json_object_get_string(v), status_names[i]))
				st->status = (enum oci_status)i;
	if (json_object_object_get_ex(o, "annotations", &v))
		st->annotations = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (st->status != ST_CREATING && !monitor_alive(st->pid))
		st->status = ST_STOPPED;
	return 0;
}

void state_free(struct oci_state *st)
{
	free(st->annotations);
	st->annotations = NULL;
}

char *state_json(const struct oci_state *st)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ociVersion", json_object_new_string(OCI_VERSION));
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(o, "status", json_object_new_string(status_names[st->status]));
	json_object_object_add(o, "pid",
			       json_object_new_int(st->status == ST_STOPPED ? 0 : st->pid));
	json_object_object_add(o, "bundle", json_object_new_string(st->bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(""));
	json_object_object_add(o, "created", json_object_new_string(st->created));
	json_object_object_add(o, "owner", json_object_new_string(""));
	json_object_object_add(o, "annotations",
			       json_tokener_parse(st->annotations ? st->annotations : "{}"));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

int state_connect(const char *id)
{
	char dir[4200];
	if (state_path(dir, sizeof(dir), id, NULL))
		return -ENAMETOOLONG;
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	/* /proc/self/fd/N/m.sock is short whatever the root's length */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/m.sock", dfd);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -errno : 0;
	if (!rc && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(fd);
	}
	close(dfd);
	return rc ? rc : fd;
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

void oci_remove_tree(const char *path)
{
	nftw(path, remove_cb, 64, FTW_DEPTH | FTW_PHYS);
}
