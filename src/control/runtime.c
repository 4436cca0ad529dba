#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/control.h"

int control_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > CONTROL_NAME_MAX || name[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* $POPEK_RUNTIME_DIR, else $XDG_RUNTIME_DIR/popek, else /run/popek for root,
 * else /tmp/popek-UID. */
int control_dir(char *buf, size_t len)
{
	const char *env = getenv("POPEK_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (xdg && *xdg)
		n = snprintf(buf, len, "%s/popek", xdg);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/popek");
	else
		n = snprintf(buf, len, "/tmp/popek-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/* Create missing parents too (a minimal system may lack /run). */
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int rc = mkdir(buf, 0755);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -errno;
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(buf, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM; /* someone else's directory: do not trust it */
	return 0;
}
