/* The control channel: each running VM listens on a Unix socket in a per-user
 * runtime directory and answers one-line JSON requests (docs/control.md). */
#ifndef POPEK_CONTROL_H
#define POPEK_CONTROL_H

#include <stddef.h>

struct machine;
struct control;

#define CONTROL_NAME_MAX 64

/* The per-user runtime directory (created 0700); returns 0 or -errno. */
int control_dir(char *buf, size_t len);
/* Names: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
int control_name_valid(const char *name);

/* VM side: bind the socket for machine m under name (before the jail: the
 * runtime directory is out of its reach); NULL + err on failure. */
struct control *control_open(struct machine *m, const char *name, char *err, size_t errlen);
/* Start serving requests on the machine's event loop; 0, or -1 + err. */
int control_start(struct control *c, char *err, size_t errlen);
/* Stop serving and remove the socket; c may be NULL or never started. */
void control_stop(struct control *c);

/* Client side: send one JSON request to VM `name`, with file descriptor
 * pass_fd if >= 0 (SCM_RIGHTS); *resp is malloc'ed JSON. progress (optional)
 * sees each {"progress":...} line streamed before the reply. */
int control_request(const char *name, const char *req, int pass_fd, char **resp,
		    void (*progress)(const char *line), char *err, size_t errlen);

#endif
