/* Starting a container's VM. Cold: `popek run` boots Linux and the agent
 * (seconds on the soft engine). Warm: a template VM, booted once per popek
 * build, image and VM size to the agent's BOOTED (disks untouched) and
 * snapshotted, is restored copy-on-write with `popek restore`; the
 * container's disks are bind-mounted over the template's in a private mount
 * namespace of the VMM, so every restore sees its own files at the paths the
 * snapshot names. Templates live in $POPEK_OCI_CACHE, else /var/lib/popek-oci. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"

#define CMDLINE		      "console=hvc0 quiet loglevel=1 panic=-1 cryptomgr.notests rdinit=/sbin/popek-agent"
#define TEMPLATE_BOOT_TIMEOUT 300 /* s */

static int self_exe(char *exe, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", exe, len - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	return 0;
}

/* Fork the VMM with argv, its console on pipes, stderr to logfd. With
 * own_tap (a template of tap-networked VMs), it gets a network namespace of
 * its own with an unconnected NETNS_TAP. With binds, it first gets a private
 * mount namespace in which binds[i][0] is mounted over binds[i][1]. */
static int spawn(char *const argv[], bool own_tap, const char *binds[][2], size_t nbinds, int logfd,
		 struct vm *vm, char *err, size_t errlen)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	vm->pid = fork();
	if (vm->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (vm->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (logfd >= 0)
			dup2(logfd, 2);
		setsid();			  /* not in the container's terminal session */
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* no VM outlives its monitor */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL); /* the caller's are blocked for a signalfd */
		char nerr[256] = "unshare";
		if (own_tap &&
		    (unshare(CLONE_NEWNET) < 0 || netns_make_tap(0, nerr, sizeof(nerr)))) {
			dprintf(2, "popek-oci: the template's network namespace: %s: %s\n", nerr,
				strerror(errno));
			_exit(71);
		}
		if (nbinds && (unshare(CLONE_NEWNS) < 0 ||
			       mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)) {
			dprintf(2, "popek-oci: private mount namespace: %s\n", strerror(errno));
			_exit(71);
		}
		for (size_t i = 0; i < nbinds; i++)
			if (mount(binds[i][0], binds[i][1], NULL, MS_BIND, NULL) < 0) {
				dprintf(2, "popek-oci: bind %s: %s\n", binds[i][0],
					strerror(errno));
				_exit(71);
			}
		execv(argv[0], argv);
		dprintf(2, "popek-oci: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	vm->in = in[1];
	vm->out = out[0];
	return 0;
}

/* The VM's disks in dir, in guest order: root.img, binds.img and, for a
 * pod's sandbox, each slot's pair. Returns how many. */
#define VM_DISKS (2 + 2 * POD_SLOTS)
static size_t disk_paths(const struct oci_spec *s, const char *dir, char paths[VM_DISKS][PATH_MAX])
{
	size_t n = 0;
	if (!s->root_fs)
		snprintf(paths[n++], PATH_MAX, "%s/root.img", dir);
	snprintf(paths[n++], PATH_MAX, "%s/binds.img", dir);
	for (int k = 1; s->pod == POD_SANDBOX && k <= POD_SLOTS; k++) {
		for (int b = 0; b < 2; b++) {
			char name[32];
			pod_disk_name(name, sizeof(name), k, b);
			snprintf(paths[n++], PATH_MAX, "%.4000s/%s", dir, name);
		}
	}
	return n;
}

static int boot(const struct oci_spec *s, const char *name, char disks[VM_DISKS][PATH_MAX],
		size_t ndisks, bool template, int logfd, struct vm *vm, char *err, size_t errlen)
{
	char exe[PATH_MAX], mem[32], cpus[16];
	if (self_exe(exe, sizeof(exe))) {
		snprintf(err, errlen, "cannot find the popek binary: %s", strerror(errno));
		return -1;
	}
	snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)(s->mem >> 20));
	snprintf(cpus, sizeof(cpus), "%u", s->cpus);
	const char *engine = getenv("POPEK_OCI_ENGINE");
	char *argv[12 + 2 * VM_DISKS + 5] = {
	    exe,	 "run",	  "--engine", (char *)(engine && *engine ? engine : "auto"),
	    "--cmdline", CMDLINE, "--mem",    mem,
	    "--cpus",	 cpus,	  "--name",   (char *)name};
	size_t n = 12;
	for (size_t i = 0; i < ndisks; i++) {
		argv[n++] = "--disk";
		argv[n++] = disks[i];
	}
	char share[PATH_MAX + 32], real[PATH_MAX];
	if (s->root_fs) {
		/* virtiofsd takes no symlink as its source */
		snprintf(share, sizeof(share), "%s,tag=" ROOTFS_TAG,
			 realpath(s->root, real) ? real : s->root);
		argv[n++] = "--fs";
		argv[n++] = share;
	}
	if (s->net != OCI_NET_HOST) {
		argv[n++] = "--net";
		argv[n++] = s->net == OCI_NET_NONE ? "none" : "tap=" NETNS_TAP;
	}
	argv[n] = NULL;
	/* a template's VM is every container's: it gets a tap of its own */
	return spawn(argv, template && s->net == OCI_NET_NS, NULL, 0, logfd, vm, err, errlen);
}

/* The identity of what a template depends on: this binary, the default
 * image, the VM's size and engine. */
static void template_key(const struct oci_spec *s, char *key, size_t len)
{
	char exe[PATH_MAX] = "", images[PATH_MAX + 16];
	self_exe(exe, sizeof(exe));
	const char *env = getenv("POPEK_IMAGES");
	if (env && *env) {
		snprintf(images, sizeof(images), "%s", env);
	} else {
		char *slash = strrchr(exe, '/');
		snprintf(images, sizeof(images), "%.*s/../images", slash ? (int)(slash - exe) : 0,
			 exe);
	}
	const char *files[] = {exe, "vmlinux", "initramfs.cpio.gz"};
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < 3; i++) {
		char path[PATH_MAX * 2];
		snprintf(path, sizeof(path), "%s%s%s", i ? images : files[i], i ? "/" : "",
			 i ? files[i] : "");
		struct stat st = {0};
		stat(path, &st);
		uint64_t v[3] = {(uint64_t)st.st_ino, (uint64_t)st.st_size,
				 (uint64_t)st.st_mtim.tv_sec * 1000000000u +
				     (uint64_t)st.st_mtim.tv_nsec};
		const uint8_t *b = (const uint8_t *)v;
		for (size_t k = 0; k < sizeof(v); k++)
			h = (h ^ b[k]) * 1099511628211ull;
	}
	const char *engine = getenv("POPEK_OCI_ENGINE");
	snprintf(key, len, "%lluM-%ucpu-%s%s%s-%016llx", (unsigned long long)(s->mem >> 20),
		 s->cpus, engine && *engine ? engine : "auto", s->pod == POD_SANDBOX ? "-pod" : "",
		 s->net == OCI_NET_NONE ? "-nonet"
		 : s->net == OCI_NET_NS ? "-tap"
					: "",
		 (unsigned long long)h);
}

int vm_placeholder(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int rc = ftruncate(fd, (off_t)size);
	close(fd);
	return rc;
}

static int booted_line(void *ctx, const char *line, size_t len)
{
	static struct frame f;
	return frame_parse(line, len, &f) == FRAME_OK && f.type == FRAME_BOOTED;
}

static int wait_booted(struct vm *vm)
{
	static struct line_reader lr;
	memset(&lr, 0, sizeof(lr));
	time_t end = time(NULL) + TEMPLATE_BOOT_TIMEOUT;
	while (time(NULL) < end) {
		struct pollfd p = {.fd = vm->out, .events = POLLIN};
		if (poll(&p, 1, 1000) <= 0)
			continue;
		char buf[4096];
		ssize_t n = read(vm->out, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		if (line_reader_feed(&lr, buf, (size_t)n, booted_line, NULL))
			return 0;
	}
	return -1;
}

/* Boot the template VM and snapshot it at BOOTED into dir/snap. */
static int make_template(const struct oci_spec *s, const char *dir, char *err, size_t errlen)
{
	char disks[VM_DISKS][PATH_MAX], snap[PATH_MAX + 32], tmp[PATH_MAX + 32], name[64],
	    exe[PATH_MAX];
	size_t ndisks = disk_paths(s, dir, disks);
	snprintf(snap, sizeof(snap), "%s/snap", dir);
	snprintf(tmp, sizeof(tmp), "%s/snap.tmp", dir);
	snprintf(name, sizeof(name), "oci-template-%d", (int)getpid());
	for (size_t i = 0; i < ndisks; i++) {
		/* even disks are roots, odd ones binds: the same sizes as every VM's */
		if (vm_placeholder(disks[i], i % 2 ? BINDS_DISK_SIZE : ROOTFS_DISK_SIZE)) {
			snprintf(err, errlen, "template disks in %.300s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (self_exe(exe, sizeof(exe))) {
		snprintf(err, errlen, "cannot find the popek binary: %s", strerror(errno));
		return -1;
	}
	char log[PATH_MAX + 32];
	snprintf(log, sizeof(log), "%s/template.log", dir);
	int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	struct vm vm;
	int rc = boot(s, name, disks, ndisks, true, logfd, &vm, err, errlen);
	if (logfd >= 0)
		close(logfd);
	if (rc)
		return -1;
	rc = -1;
	if (wait_booted(&vm)) {
		snprintf(err, errlen, "the template VM did not boot (see %.300s)", log);
		kill(vm.pid, SIGTERM);
	} else {
		pid_t p = fork();
		if (p == 0) {
			int null = open("/dev/null", O_RDWR);
			int lf = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
			dup2(null, 0);
			dup2(null, 1);
			dup2(lf >= 0 ? lf : null, 2);
			execl(exe, exe, "snapshot", name, tmp, "--stop", (char *)NULL);
			_exit(127);
		}
		int st = 1;
		if (p > 0)
			waitpid(p, &st, 0);
		if (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && rename(tmp, snap) == 0)
			rc = 0;
		else
			snprintf(err, errlen, "snapshot of the template VM failed");
	}
	close(vm.in);
	close(vm.out);
	waitpid(vm.pid, NULL, 0);
	return rc;
}

/* Templates of the same VM size for another build or image are of no more
 * use. VMs restored from them keep their mappings of the removed files. */
static void remove_stale(const char *parent, const char *key)
{
	DIR *d = opendir(parent);
	const char *dash = strrchr(key, '-');
	size_t prefix = dash ? (size_t)(dash - key) + 1 : strlen(key);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		/* the same kind (size, engine, pod, network) with another hash, or its lock */
		size_t n = strlen(e->d_name);
		if (n > 5 && !strcmp(e->d_name + n - 5, ".lock"))
			n -= 5;
		if (e->d_name[0] == '.' || !strncmp(e->d_name, key, strlen(key)) ||
		    n != strlen(key) || strncmp(e->d_name, key, prefix))
			continue;
		char path[PATH_MAX + 512];
		snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
		oci_debug("removing the stale template %s", path);
		oci_remove_tree(path);
	}
	if (d)
		closedir(d);
}

/* The template directory for s, made on first use; -1 when there is none. */
static int template_dir(const struct oci_spec *s, char *dir, size_t len)
{
	const char *cache = getenv("POPEK_OCI_CACHE");
	if (!cache || !*cache)
		cache = "/var/lib/popek-oci";
	if (!strcmp(cache, "off"))
		return -1;
	char key[128], lock[PATH_MAX + 8], snap[PATH_MAX + 32], err[512];
	template_key(s, key, sizeof(key));
	snprintf(dir, len, "%s/templates/%s", cache, key);
	snprintf(lock, sizeof(lock), "%s.lock", dir);
	snprintf(snap, sizeof(snap), "%s/snap/snapshot.json", dir);
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s/templates", cache);
	mkdir(cache, 0700);
	mkdir(parent, 0700);
	int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		oci_debug("template lock %s: %s", lock, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	struct stat st;
	int rc = 0;
	if (stat(snap, &st) < 0) {
		remove_stale(parent, key);
		mkdir(dir, 0700);
		oci_debug("booting a template VM in %s", dir);
		rc = make_template(s, dir, err, sizeof(err));
		if (rc)
			oci_log("warning", "no VM template, booting cold: %s", err);
	}
	close(lfd);
	return rc;
}

int vm_start(const struct oci_spec *spec, const char *id, int logfd, struct vm *vm, char *err,
	     size_t errlen)
{
	/* the network decides the VM's NIC: user networking on the host's
	 * namespace, a tap bridged to the client's, or none */
	struct oci_spec eff = *spec;
	const struct oci_spec *s = &eff;
	memset(&vm->net, 0, sizeof(vm->net));
	if (spec->net == OCI_NET_NS && netns_attach(spec->netns, &vm->net, err, errlen))
		return -1;
	if (spec->net == OCI_NET_NS && vm->net.none)
		eff.net = OCI_NET_NONE;
	vm->tap = eff.net == OCI_NET_NS;
	char dir[4200], disks[VM_DISKS][PATH_MAX], name[80], tdir[2048];
	state_path(dir, sizeof(dir), id, NULL);
	size_t ndisks = disk_paths(s, dir, disks);
	state_vm_name(id, name, sizeof(name));
	struct stat r, b;
	vm->warm = !s->root_fs && stat(disks[0], &r) == 0 && r.st_size == (off_t)ROOTFS_DISK_SIZE &&
		   stat(disks[1], &b) == 0 && b.st_size == (off_t)BINDS_DISK_SIZE &&
		   template_dir(s, tdir, sizeof(tdir)) == 0;
	if (!vm->warm)
		return boot(s, name, disks, ndisks, false, logfd, vm, err, errlen);
	char exe[PATH_MAX], snap[PATH_MAX + 8], tdisks[VM_DISKS][PATH_MAX];
	self_exe(exe, sizeof(exe));
	snprintf(snap, sizeof(snap), "%s/snap", tdir);
	disk_paths(s, tdir, tdisks);
	const char *mounts[VM_DISKS][2];
	for (size_t i = 0; i < ndisks; i++) {
		mounts[i][0] = disks[i];
		mounts[i][1] = tdisks[i];
	}
	/* --force: the disks are the container's, not the template's, by design;
	 * --no-verify: the template is ours, in a directory only root reaches */
	char *argv[] = {exe, "restore", snap, "--force", "--no-verify", "--name", name, NULL};
	return spawn(argv, false, mounts, ndisks, logfd, vm, err, errlen);
}
