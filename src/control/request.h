/* Parsing of one control request line (docs/control.md), apart from the
 * socket and the machine so that a hostile line can be tested on its own. */
#ifndef POPEK_CONTROL_REQUEST_H
#define POPEK_CONTROL_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

struct json_object;

enum control_cmd {
	CMD_INFO,
	CMD_PAUSE,
	CMD_RESUME,
	CMD_STOP,
	CMD_STATS,
	CMD_SNAPSHOT,
	CMD_POLICY,
	CMD_TRACE,
	CMD_MIGRATE,
	NR_CMDS
};

struct control_request {
	enum control_cmd cmd;
	struct json_object *obj; /* the parsed line; owns the strings below */
	/* snapshot: {"dir":ABS,"stop":bool,"compress":bool} */
	const char *dir;
	bool stop, compress;
	/* policy: {"text":STR,"file":STR} replaces the policy; without text, shows it */
	const char *text, *file;
	/* trace: {"classes":[NAME,...]}, a bit per policy class; all if not given */
	unsigned classes;
	/* migrate: {"uri":STR,"max_downtime_ms":N,"bandwidth":N,"compress":bool,
	 * "copy_storage":bool, "postcopy":bool} + the connected socket; uri only names it in
	 * messages */
	const char *uri;
	uint64_t max_downtime_ms, bandwidth;
	bool copy_storage;
	bool postcopy;
};

/* Returns 0, or -1 with *error the message to reply (nothing to free then). */
int control_parse(const char *line, struct control_request *req, const char **error);
void control_request_free(struct control_request *req);

#endif
