#include "control/request.h"

#include <json-c/json.h>
#include <string.h>

static const char *const cmd_names[NR_CMDS] = {
    [CMD_INFO] = "info", [CMD_PAUSE] = "pause", [CMD_RESUME] = "resume",
    [CMD_STOP] = "stop", [CMD_STATS] = "stats", [CMD_SNAPSHOT] = "snapshot",
};

static bool get_bool(json_object *obj, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(obj, key, &v) && json_object_get_boolean(v);
}

static const char *parse_args(struct control_request *req)
{
	json_object *dir;
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
