/* Capabilities: every set of the calling thread emptied — bounding and ambient
 * first (they need CAP_SETPCAP), then effective, permitted and inheritable. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail/internal.h"

int caps_drop_all(char *err, size_t errlen)
{
	/* Past the kernel's last capability PR_CAPBSET_DROP fails with EINVAL. */
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;
			snprintf(err, errlen,
				 "jail: cannot drop capability %d from the bounding set: %s", cap,
				 strerror(errno));
			return -1;
		}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
		snprintf(err, errlen, "jail: cannot clear the ambient capabilities: %s",
			 strerror(errno));
		return -1;
	}
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0) {
		snprintf(err, errlen, "jail: capset: %s", strerror(errno));
		return -1;
	}
	return 0;
}
