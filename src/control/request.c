#include "control/request.h"

#include <json-c/json.h>
#include <string.h>

#include "policy/policy.h"

static const char *const cmd_names[NR_CMDS] = {
    [CMD_INFO] = "info",     [CMD_PAUSE] = "pause", [CMD_RESUME] = "resume",
    [CMD_STOP] = "stop",     [CMD_STATS] = "stats", [CMD_SNAPSHOT] = "snapshot",
    [CMD_POLICY] = "policy", [CMD_TRACE] = "trace", [CMD_MIGRATE] = "migrate",
};

static bool get_bool(json_object *obj, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(obj, key, &v) && json_object_get_boolean(v);
}

/* The string at key (NULL if absent); *bad if present but not a string
 * without NUL bytes. */
static const char *get_string(json_object *obj, const char *key, bool *bad)
{
	json_object *v;
	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		*bad = true;
		return NULL;
	}
	return json_object_get_string(v);
}

static const char *parse_policy(struct control_request *req)
{
	bool bad = false;
	req->text = get_string(req->obj, "text", &bad);
	req->file = get_string(req->obj, "file", &bad);
	if (bad)
		return "policy: \"text\" and \"file\" must be strings without NUL bytes";
	if (!req->file)
		req->file = "policy";
	return NULL;
}

static const char *parse_trace(struct control_request *req)
{
	static const char *const bad =
	    "trace: \"classes\" must be a non-empty array of policy class names";
	json_object *a;
	req->classes = (1u << NR_POLICY_CLASSES) - 1;
	if (!json_object_object_get_ex(req->obj, "classes", &a))
		return NULL;
	if (!json_object_is_type(a, json_type_array) || !json_object_array_length(a))
		return bad;
	req->classes = 0;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *c = json_object_array_get_idx(a, i);
		int k = 0;
		while (k < NR_POLICY_CLASSES &&
		       (!json_object_is_type(c, json_type_string) ||
			strcmp(json_object_get_string(c), policy_class_names[k])))
			k++;
		if (k == NR_POLICY_CLASSES)
			return bad;
		req->classes |= 1u << k;
	}
	return NULL;
}

/* A non-negative integer at key, or def when absent; -1 if malformed. */
static int get_count(json_object *obj, const char *key, uint64_t def, uint64_t *out)
{
	json_object *v;
	*out = def;
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -1;
	*out = (uint64_t)json_object_get_int64(v);
	return 0;
}

static const char *parse_migrate(struct control_request *req)
{
	bool bad = false;
	req->uri = get_string(req->obj, "uri", &bad);
	req->compress = get_bool(req->obj, "compress");
	req->copy_storage = get_bool(req->obj, "copy_storage");
	req->postcopy = get_bool(req->obj, "postcopy");
	if (bad || !req->uri)
		return "migrate needs \"uri\": a string";
	if (get_count(req->obj, "max_downtime_ms", 50, &req->max_downtime_ms) ||
	    get_count(req->obj, "bandwidth", 0, &req->bandwidth) || req->max_downtime_ms > 3600000)
		return "migrate: \"max_downtime_ms\" (0..3600000) and \"bandwidth\" must be "
		       "non-negative integers";
	return NULL;
}

static const char *parse_args(struct control_request *req)
{
	json_object *dir;
	if (req->cmd == CMD_MIGRATE)
		return parse_migrate(req);
	if (req->cmd == CMD_POLICY)
		return parse_policy(req);
	if (req->cmd == CMD_TRACE)
		return parse_trace(req);
	if (req->cmd != CMD_SNAPSHOT)
		return NULL;
	if (!json_object_object_get_ex(req->obj, "dir", &dir) ||
	    !json_object_is_type(dir, json_type_string) || json_object_get_string(dir)[0] != '/')
		return "snapshot needs \"dir\": an absolute path";
	req->dir = json_object_get_string(dir);
	req->stop = get_bool(req->obj, "stop");
	req->compress = get_bool(req->obj, "compress");
	return NULL;
}

int control_parse(const char *line, struct control_request *req, const char **error)
{
	json_object *cmd;
	*req = (struct control_request){.obj = json_tokener_parse(line)};
	*error = "request must be a JSON object with a string \"cmd\"";
	if (!req->obj || !json_object_is_type(req->obj, json_type_object) ||
	    !json_object_object_get_ex(req->obj, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string))
		goto bad;
	*error = "unknown command";
	for (req->cmd = 0; req->cmd < NR_CMDS; req->cmd++)
		if (!strcmp(cmd_names[req->cmd], json_object_get_string(cmd)))
			break;
	if (req->cmd == NR_CMDS || (*error = parse_args(req)))
		goto bad;
	return 0;
bad:
	control_request_free(req);
	return -1;
}

void control_request_free(struct control_request *req)
{
	json_object_put(req->obj);
	req->obj = NULL;
}
