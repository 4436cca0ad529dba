/* Pods: the CRI's sandbox container boots the pod's VM with POD_SLOTS spare
 * disk pairs (sparse placeholders of the template sizes, so a sandbox VM
 * is restored from a template like any other). A container of the pod claims
 * a free slot, has its root and binds written into that slot's files in
 * place — the VMM keeps them open, so the guest sees the new contents once
 * it drops its cache — and its monitor talks to the sandbox's monitor
 * instead of a VM of its own (docs/oci.md). The slot is free again when the
 * sandbox's monitor sees that connection close. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci/oci.h"

void pod_disk_name(char *buf, size_t len, int slot, bool binds)
{
	snprintf(buf, len, "slot%d%s.img", slot, binds ? "-binds" : "");
}

int pod_disk_path(char *buf, size_t len, const char *sandbox, int slot, bool binds)
{
	char name[32];
	pod_disk_name(name, sizeof(name), slot, binds);
	return state_path(buf, len, sandbox, name);
}

static int owner_path(char *buf, size_t len, const char *sandbox, int slot)
{
	char name[32];
	snprintf(name, sizeof(name), "slot%d.owner", slot);
	return state_path(buf, len, sandbox, name);
}

int pod_make_slots(const char *sandbox, char *err, size_t errlen)
{
	for (int k = 1; k <= POD_SLOTS; k++) {
		for (int binds = 0; binds < 2; binds++) {
			char path[4200];
			if (pod_disk_path(path, sizeof(path), sandbox, k, binds) ||
			    vm_placeholder(path, binds ? BINDS_DISK_SIZE : ROOTFS_DISK_SIZE)) {
				snprintf(err, errlen, "the pod's spare disks: %s", strerror(errno));
				return -1;
			}
		}
	}
	return 0;
}

int pod_claim(const char *sandbox, const char *id, char *err, size_t errlen)
{
	struct oci_state st;
	if (state_load(sandbox, &st, err, errlen)) {
		snprintf(err, errlen, "the pod's sandbox %s does not exist: create it first",
			 sandbox);
		return -1;
	}
	enum oci_status status = st.status;
	state_free(&st);
	char path[4200];
	struct stat sb;
	if (pod_disk_path(path, sizeof(path), sandbox, 1, false) || stat(path, &sb) < 0) {
		snprintf(err, errlen,
			 "%s is not a pod sandbox (its spec lacks "
			 "io.kubernetes.cri.container-type=sandbox)",
			 sandbox);
		return -1;
	}
	if (status != ST_CREATED && status != ST_RUNNING) {
		snprintf(err, errlen, "the pod's sandbox %s is %s", sandbox,
			 state_status_name(status));
		return -1;
	}
	for (int k = 1; k <= POD_SLOTS; k++) {
		if (owner_path(path, sizeof(path), sandbox, k))
			break;
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			continue;
		int ok = dprintf(fd, "%s\n", id) > 0;
		close(fd);
		if (ok)
			return k;
		unlink(path);
	}
	snprintf(err, errlen,
		 "the pod's sandbox %s runs %d containers already (its VM has no more disk slots)",
		 sandbox, POD_SLOTS);
	return -1;
}

void pod_release(const char *sandbox, int slot, const char *id)
{
	char path[4200], owner[160] = "";
	if (owner_path(path, sizeof(path), sandbox, slot))
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(owner, sizeof(owner), f))
		owner[strcspn(owner, "\n")] = 0;
	fclose(f);
	if (!strcmp(owner, id))
		unlink(path);
}
