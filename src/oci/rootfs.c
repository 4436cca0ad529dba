/* The container's files as VM disks, built at create time with e2fsprogs:
 * root.img, ext4 made from root.path (`mke2fs -d`), is /dev/vda; binds.img
 * holds a copy of each bind mount's source under its index and is /dev/vdb
 * (always there, maybe empty, so every VM has the template's two disks).
 * Both are private to the container: writes stay in the VM (docs/oci.md). */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci/oci.h"

#define VIRTIOFSD "/usr/lib/qemu/virtiofsd" /* the one popek's --fs starts */

extern char **environ;

/* Run argv; on failure err gets the command's first line of stderr. */
static int run(char *const argv[], char *err, size_t errlen)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc) {
		close(p[0]);
		snprintf(err, errlen, "cannot run %s: %s — install e2fsprogs (Debian package)",
			 argv[0], strerror(rc));
		return -1;
	}
	char out[512];
	size_t n = 0;
	ssize_t r;
	while ((r = read(p[0], out + n, sizeof(out) - 1 - n)) > 0 && n < sizeof(out) - 1)
		n += (size_t)r;
	out[n] = 0;
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
	snprintf(err, errlen, "%s failed: %s", argv[0], out);
	return -1;
}

static uint64_t tree_bytes;

static int count(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	tree_bytes += ((uint64_t)st->st_size + 4095) / 4096 * 4096 + 512;
	return 0;
}

/* The disk size dir needs: the tree and room to write. */
static int disk_size(const char *dir, uint64_t *size, char *err, size_t errlen)
{
	tree_bytes = 0;
	if (nftw(dir, count, 64, FTW_PHYS) < 0) {
		snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	*size = tree_bytes + tree_bytes / 2 + (64ull << 20);
	return 0;
}

/* An ext4 image of dir at img: the fixed size when the tree and room to
 * write fit in it, else the tree's size plus that room. The file is sparse,
 * so the headroom costs nothing until the guest uses it. */
static int make_ext4(const char *dir, const char *img, uint64_t fixed, bool exact, char *err,
		     size_t errlen)
{
	uint64_t size;
	if (disk_size(dir, &size, err, errlen))
		return -1;
	if (size <= fixed) {
		size = fixed;
	} else if (exact) {
		snprintf(err, errlen,
			 "%s needs %llu MiB, more than a pod slot's disk of %llu MiB: run it in a "
			 "pod of its own",
			 dir, (unsigned long long)(size >> 20), (unsigned long long)(fixed >> 20));
		return -1;
	}
	int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", img, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	char *argv[] = {"mke2fs",
			"-q",
			"-F",
			"-t",
			"ext4",
			"-b",
			"4096",
			"-O",
			"^has_journal",
			"-E",
			"lazy_itable_init=1",
			"-d",
			(char *)dir,
			(char *)img,
			NULL};
	return run(argv, err, errlen);
}

static bool under_dev(const char *dest)
{
	return !strcmp(dest, "/dev") || !strncmp(dest, "/dev/", 5);
}

static int build_binds(const struct oci_spec *s, const char *id, const char *img, char *err,
		       size_t errlen)
{
	char stage[4200], dst[4300];
	if (state_path(stage, sizeof(stage), id, "binds")) {
		snprintf(err, errlen, "state path too long");
		return -1;
	}
	mkdir(stage, 0700);
	for (size_t i = 0; i < s->nmounts; i++) {
		const struct oci_mount *m = &s->mounts[i];
		struct stat st;
		/* the agent makes /dev; sockets and devices cannot be copied into a disk */
		if (m->kind != MOUNT_BIND || under_dev(m->dest) || stat(m->source, &st) < 0 ||
		    !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
			oci_debug("bind mount %s: not copied into the VM", m->dest);
			continue;
		}
		snprintf(dst, sizeof(dst), "%s/%zu", stage, i);
		char *argv[] = {"cp", "-a", "--", m->source, dst, NULL};
		if (run(argv, err, errlen))
			return -1;
	}
	int rc = make_ext4(stage, img, BINDS_DISK_SIZE, s->pod == POD_CONTAINER, err, errlen);
	oci_remove_tree(stage);
	return rc;
}

/* virtio-fs shares root.path itself: no copy, and writes reach the bundle's
 * root as with runc. But a VM with a share cannot be snapshotted, so it
 * boots cold: taken for a root too large for a template's disk (which boots
 * cold anyway), or when POPEK_OCI_ROOTFS=virtiofs asks; never for a pod's
 * VM, whose further roots are disks. */
static bool root_by_virtiofs(const struct oci_spec *s, char *err, size_t errlen)
{
	const char *want = getenv("POPEK_OCI_ROOTFS");
	uint64_t size;
	if (s->pod != POD_NONE || strchr(s->root, ',') || access(VIRTIOFSD, X_OK) < 0 ||
	    (want && !strcmp(want, "ext4")))
		return false;
	if (want && !strcmp(want, "virtiofs"))
		return true;
	return disk_size(s->root, &size, err, errlen) == 0 && size > ROOTFS_DISK_SIZE;
}

int rootfs_build(struct oci_spec *s, const char *id, char *err, size_t errlen)
{
	char img[4200], binds[4200];
	struct stat st;
	if (stat(s->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "root.path %s is not a directory", s->root);
		return -1;
	}
	bool pod = s->pod == POD_CONTAINER;
	if (pod ? pod_disk_path(img, sizeof(img), s->sandbox_id, s->pod_slot, false) ||
		      pod_disk_path(binds, sizeof(binds), s->sandbox_id, s->pod_slot, true)
		: state_path(img, sizeof(img), id, "root.img") ||
		      state_path(binds, sizeof(binds), id, "binds.img")) {
		snprintf(err, errlen, "state path too long");
		return -1;
	}
	s->root_fs = root_by_virtiofs(s, err, errlen);
	if ((!s->root_fs && make_ext4(s->root, img, ROOTFS_DISK_SIZE, pod, err, errlen)) ||
	    build_binds(s, id, binds, err, errlen))
		return -1;
	return s->pod == POD_SANDBOX ? pod_make_slots(id, err, errlen) : 0;
}
