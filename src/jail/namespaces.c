/* The jail's process structure and namespaces, and the pivot into an empty
 * root. A new PID namespace holds only children, so the VMM is a child: PID 1
 * of its namespaces. Its parent holds nothing of the VM and drops its own
 * privileges; it only waits, forwards signals and puts the terminal back
 * however the VMM ended. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "jail/internal.h"
#include "machine/machine.h"

/* Parent to VMM, once the VMM is in its cgroup. */
struct spawn_msg {
	int host_pid;
	char cgroup[JAIL_CGROUP_DESC];
};

static volatile sig_atomic_t vmm_pid;

static void forward_signal(int sig)
{
	if (vmm_pid > 0)
		kill((pid_t)vmm_pid, sig);
}

/* The VMM gets an empty network namespace unless a NIC needs the host's:
 * user networking opens host sockets as the guest connects, and a tap is
 * found by name in the host's namespace. (A switch's Unix socket is a path:
 * any namespace reaches it.) */
static bool keeps_host_network(const struct vm_config *cfg)
{
	for (int i = 0; i < cfg->nnics; i++)
		if (cfg->nic[i].kind != NET_SOCKET)
			return true;
	return false;
}

int jail_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
	int e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* An unprivileged user gets the same jail from a user namespace in which it
 * keeps its own uid and gid (files it creates stay its own); the parent writes
 * the VMM's maps. */
static int map_user(pid_t pid, char *why, size_t len)
{
	char path[64], map[64];
	const struct {
		const char *file;
		unsigned id;
	} maps[] = {
	    {"uid_map", (unsigned)geteuid()}, {"setgroups", 0}, {"gid_map", (unsigned)getegid()}};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, maps[i].file);
		if (!strcmp(maps[i].file, "setgroups"))
			snprintf(map, sizeof(map), "deny");
		else
			snprintf(map, sizeof(map), "%u %u 1\n", maps[i].id, maps[i].id);
		if (jail_write_text(path, map) < 0) {
			snprintf(why, len, "cannot write %s of the VMM's user namespace: %s", path,
				 strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int vmm_child(int rfd)
{
	struct spawn_msg msg;
	ssize_t n;
	/* The VMM must not outlive the parent that reports its exit code. Set
	 * before the read: a parent that died earlier left the pipe at EOF. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	do
		n = read(rfd, &msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	close(rfd);
	if (n != (ssize_t)sizeof(msg))
		_exit(EXIT_CODE_HOST); /* the parent is gone */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "popek: jail: cannot make the mounts private: %s\n",
			strerror(errno));
		_exit(EXIT_CODE_HOST);
	}
	jail_state.spawned = true;
	jail_state.host_pid = msg.host_pid;
	snprintf(jail_state.cgroup, sizeof(jail_state.cgroup), "%s", msg.cgroup);
	return 0;
}

static int wait_vmm(pid_t pid)
{
	vmm_pid = pid;
	struct sigaction sa = {.sa_handler = forward_signal};
	sigemptyset(&sa.sa_mask);
	const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, NULL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return EXIT_CODE_HOST;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int ns_spawn(const struct vm_config *cfg, int *exit_code)
{
	char why[256] = "", err[160];
	struct cgroup_set cg = {0};
	struct spawn_msg msg = {0};
	cgroup_create(cfg, (int)getpid(), &cg, msg.cgroup, sizeof(msg.cgroup));
	bool userns = geteuid() != 0;
	unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	if (!keeps_host_network(cfg))
		flags |= CLONE_NEWNET;
	if (userns)
		flags |= CLONE_NEWUSER;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(why, sizeof(why), "pipe: %s", strerror(errno));
		goto no_namespaces;
	}
	struct termios tty;
	bool have_tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tty) == 0;
	fflush(NULL);
	/* clone, not unshare + fork: the parent stays in every namespace of the
	 * host (unshare(CLONE_NEWPID) would leave it unable to fork once the VMM,
	 * its namespace's init, is gone). Single-threaded here, so a raw clone
	 * without a new stack is a fork. */
	pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) {
		close(p[1]);
		jail_state.userns = userns;
		jail_state.netns = flags & CLONE_NEWNET;
		return vmm_child(p[0]);
	}
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		snprintf(why, sizeof(why), "cannot create %snamespaces (clone: %s)",
			 userns ? "user " : "", strerror(errno));
		goto no_namespaces;
	}
	if (userns && map_user(pid, why, sizeof(why)) < 0) {
		kill(pid, SIGKILL);
		close(p[1]);
		waitpid(pid, NULL, 0);
		goto no_namespaces;
	}
	if (cg.n && cgroup_add(&cg, pid, msg.cgroup, sizeof(msg.cgroup)) < 0)
		fprintf(stderr, "popek: jail: %s — the VM runs without cgroup limits\n",
			msg.cgroup);
	msg.host_pid = pid;
	if (write(p[1], &msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		kill(pid, SIGKILL);
	close(p[1]);
	/* Waiting needs no privilege: give it all up. */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	caps_drop_all(err, sizeof(err));
	*exit_code = wait_vmm(pid);
	if (have_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &tty);
	cgroup_remove(&cg);
	return 1;

no_namespaces:
	cgroup_remove(&cg);
	if (cfg->jail_set) {
		fprintf(stderr, "popek: jail: --jail: %s\n", why);
		*exit_code = EXIT_CODE_HOST;
		return 1;
	}
	fprintf(stderr,
		"popek: jail: %s — the VMM runs without namespaces and pivot_root "
		"(no_new_privs, capabilities and seccomp still apply)\n",
		why);
	snprintf(jail_state.cgroup, sizeof(jail_state.cgroup), "none: no namespaces");
	return 0;
}

/* A fresh tmpfs becomes the root; the host's tree is detached. Returns 0, 1
 * if the root could only be changed with chroot, or -1 + err. Sanitized
 * builds keep a /proc of the VMM's own PID namespace: LeakSanitizer reads
 * /proc/self/maps and the thread list at exit; with_resolv keeps a copy of
 * the host's /etc/resolv.conf; vsock_dir (if set) stays reachable, and only
 * it, at JAIL_VSOCK_DIR. */
int ns_pivot_to_empty(bool with_proc, bool with_resolv, const char *vsock_dir, char *err,
		      size_t errlen)
{
	/* User networking forwards the guest's DNS to the host's resolvers,
	 * which libslirp reads from /etc/resolv.conf: the jail gets a copy. */
	char resolv[4096];
	ssize_t nresolv = -1;
	int rfd = with_resolv ? open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC) : -1;
	if (rfd >= 0) {
		nresolv = read(rfd, resolv, sizeof(resolv));
		close(rfd);
	}
	/* A detached copy of the vsock folder, taken before the tmpfs hides it
	 * (it may well be under /tmp). */
	const char *step = "copy the vsock folder's mount";
	int vfd =
	    vsock_dir ? open_tree(AT_FDCWD, vsock_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC) : -1;
	if (vsock_dir && vfd < 0)
		goto fail;
	step = "mount tmpfs on /tmp";
	if (mount("popek-jail", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=16k,mode=0555") < 0)
		goto fail;
	step = "chdir";
	if (chdir("/tmp") < 0)
		goto fail;
	step = "mount /proc";
	if (with_proc &&
	    (mkdir("proc", 0555) < 0 ||
	     mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0))
		goto fail;
	step = "copy /etc/resolv.conf";
	if (nresolv >= 0 &&
	    (mkdir("etc", 0555) < 0 ||
	     (rfd = open("etc/resolv.conf", O_WRONLY | O_CREAT | O_CLOEXEC, 0444)) < 0 ||
	     write(rfd, resolv, (size_t)nresolv) != nresolv || close(rfd) < 0))
		goto fail;
	/* vsock's guest connections reach PATH_PORT sockets by name. */
	step = "bind-mount the vsock folder";
	if (vsock_dir &&
	    (mkdir(&JAIL_VSOCK_DIR[1], 0555) < 0 ||
	     move_mount(vfd, "", AT_FDCWD, &JAIL_VSOCK_DIR[1], MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
	     mount(NULL, &JAIL_VSOCK_DIR[1], NULL,
		   MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0))
		goto fail;
	if (vfd >= 0)
		close(vfd);
	vfd = -1;
	/* pivot_root(".", "."): the old root ends up on top of the new one, from
	 * where it is detached; no directory for it is needed. */
	step = "pivot_root";
	bool pivoted = syscall(SYS_pivot_root, ".", ".") == 0;
	if (!pivoted && errno != EINVAL)
		goto fail;
	if (!pivoted) {
		/* The root is an initramfs (rootfs cannot be pivoted away, e.g. in the
		 * nested harness): chroot instead; without capabilities and with no
		 * fd to a directory outside, the VMM cannot climb out. */
		fprintf(stderr, "popek: jail: pivot_root is not possible here (the root is an "
				"initramfs): chroot into the empty tmpfs instead\n");
		step = "chroot";
		if (chroot(".") < 0 || chdir("/") < 0)
			goto fail;
	} else {
		step = "detach the old root";
		if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
			goto fail;
	}
	step = "remount the root read-only";
	if (mount(NULL, "/", NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		goto fail;
	return pivoted ? 0 : 1;
fail:
	snprintf(err, errlen, "jail: %s: %s", step, strerror(errno));
	if (vfd >= 0)
		close(vfd);
	return -1;
}
