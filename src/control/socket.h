/* Unix-socket plumbing shared by the control server and its clients. */
#ifndef POPEK_CONTROL_SOCKET_H
#define POPEK_CONTROL_SOCKET_H

#include <stddef.h>

#define CONTROL_MAX_MSG (1u << 20)

/* Path of VM `name`'s socket; 0 or -errno. */
int socket_path(const char *name, char *buf, size_t len);
/* Bind and listen for VM `name`, replacing a stale socket; -1 + err if the name is taken. */
int socket_listen(const char *name, char *path, size_t pathlen, char *err, size_t errlen);
/* Connect to VM `name`; -errno on failure (-ECONNREFUSED: stale socket). */
int socket_connect(const char *name);
/* Read up to a newline (at most max bytes), leaving what follows it in the
 * socket; malloc'ed, NUL-terminated, or NULL. */
char *socket_read_line(int fd, size_t max);
int socket_write_line(int fd, const char *s);

#endif
