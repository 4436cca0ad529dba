#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/control.h"
#include "control/socket.h"

int control_request(const char *name, const char *req, int pass_fd, char **resp,
		    void (*progress)(const char *line), char *err, size_t errlen)
{
	*resp = NULL;
	if (!control_name_valid(name)) {
		snprintf(err, errlen, "'%s' is not a valid VM name", name);
		return -EINVAL;
	}
	int fd = socket_connect(name);
	if (fd < 0) {
		if (fd == -ENOENT || fd == -ECONNREFUSED)
			snprintf(err, errlen, "no running VM named '%s' — see 'popek ls'", name);
		else
			snprintf(err, errlen, "VM '%s': %s", name, strerror(-fd));
		return fd;
	}
	int rc = 0;
	if (socket_write_line(fd, req, pass_fd) < 0) {
		rc = -EIO;
		snprintf(err, errlen, "VM '%s': cannot send the request", name);
	} else {
		/* Progress lines come first; the last line is the reply. */
		while ((*resp = socket_read_line(fd, CONTROL_MAX_MSG, NULL)) &&
		       !strncmp(*resp, "{\"progress\"", 11)) {
			if (progress)
				progress(*resp);
			free(*resp);
		}
		if (!*resp) {
			rc = -EIO;
			snprintf(err, errlen, "VM '%s' closed the connection without answering",
				 name);
		}
	}
	close(fd);
	return rc;
}
