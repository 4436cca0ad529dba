/* Fuzz the control channel's request handling: the input arrives through a
 * socket as a client's bytes (a pipe would fail the server's recv), is framed into a line as the
 * server does, and parsed; a request accepted must name a command and carry valid arguments. */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/request.h"
#include "control/socket.h"
#include "policy/policy.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int p[2];
	if (size > 60000 || socketpair(AF_UNIX, SOCK_STREAM, 0, p)) /* the input fits in it */
		return 0;
	if (write(p[1], data, size) != (ssize_t)size)
		abort();
	close(p[1]);
	char *line = socket_read_line(p[0], CONTROL_MAX_MSG, NULL);
	close(p[0]);
	struct control_request req;
	const char *error;
	if (line && control_parse(line, &req, &error) == 0) {
		if (req.cmd >= NR_CMDS || (req.cmd == CMD_SNAPSHOT && req.dir[0] != '/') ||
		    (req.cmd == CMD_POLICY && !req.file) ||
		    (req.cmd == CMD_TRACE && (!req.classes || req.classes >> NR_POLICY_CLASSES)))
			abort();
		control_request_free(&req);
	} else if (line && !error) {
		abort();
	}
	free(line);
	return 0;
}
