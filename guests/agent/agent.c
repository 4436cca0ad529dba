/* popek-agent: /init of an OCI container VM (rdinit=/sbin/popek-agent).
 * Loads the drivers, mounts the container's root from /dev/vda (and the bind
 * sources from /dev/vdb), then serves popek-oci over /dev/hvc0 with the frame
 * protocol of src/oci/frame.h: runs processes, relays their stdio and
 * signals, reports their exit status. The host is trusted by the guest; what
 * the guest sends back is what the host validates. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "oci/oci.h"

#define MAX_PROCS 64
#define MAX_ARGS  1024

struct proc {
	bool used, started;
	uint32_t id;
	int slot; /* whose root it runs in */
	pid_t pid;
	int in_fd, out_fd, err_fd; /* -1 when closed; with a tty out_fd is the master */
	char **argv, **envp;
	size_t argc, envc;
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	size_t ngroups;
	struct {
		int res;
		struct rlimit lim;
	} rlim[RLIM_NLIMITS];
	size_t nrlim;
	bool tty;
	struct winsize ws;
	struct obuf inq; /* stdin the process has not read yet */
	bool in_eof;	 /* close its stdin once inq is written */
};

static struct proc procs[MAX_PROCS];
/* The container roots: slot 0 is the VM's own container (/dev/vda, its
 * binds on /dev/vdb), slots 1..POD_SLOTS a pod's further containers. */
static struct root {
	bool mounted;
	char path[32], binds[32];
} roots[1 + POD_SLOTS];
static int hvc = -1;
/* Output to the host, written as the console drains. */
static struct obuf outq;

static void flush_some(void)
{
	obuf_write_some(&outq, hvc);
}

static void flush_all(void)
{
	int fl = fcntl(hvc, F_GETFL);
	fcntl(hvc, F_SETFL, fl & ~O_NONBLOCK);
	flush_some();
	fcntl(hvc, F_SETFL, fl);
}

static void send_frame(enum frame_type t, uint32_t id, int64_t a, const void *data, size_t len)
{
	obuf_frame(&outq, t, id, a, 0, 0, data, len);
}

static void send_error(uint32_t id, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	send_frame(FRAME_ERROR, id, 0, msg, strlen(msg));
}

static void load_modules(const char *list)
{
	FILE *f = fopen(list, "r");
	char name[128], path[192];
	if (!f)
		return;
	while (fscanf(f, "%127s", name) == 1) {
		snprintf(path, sizeof(path), "/lib/modules/%s.ko", name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0)
			fprintf(stderr, "popek-agent: cannot load %s: %s\n", name, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	fclose(f);
}

/* Devices show up asynchronously after their driver loads. */
static int wait_open(const char *path, int flags)
{
	for (int i = 0; i < 500; i++) {
		int fd = open(path, flags);
		if (fd >= 0 || errno != ENOENT)
			return fd;
		usleep(10000);
	}
	return -1;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void set_ipv4(struct sockaddr *sa, const char *addr)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;
	in->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &in->sin_addr);
}

static void if_set(int s, const char *name, unsigned long req, const char *addr)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (addr) {
		set_ipv4(&ifr.ifr_addr, addr);
	} else if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
	}
	if (ioctl(s, req, &ifr) < 0)
		fprintf(stderr, "popek-agent: %s: %s\n", name, strerror(errno));
}

static void default_route(int s, unsigned long req, const char *gw)
{
	struct rtentry rt;
	memset(&rt, 0, sizeof(rt));
	set_ipv4(&rt.rt_dst, "0.0.0.0");
	set_ipv4(&rt.rt_genmask, "0.0.0.0");
	set_ipv4(&rt.rt_gateway, gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(s, req, &rt) < 0 && req == SIOCADDRT)
		fprintf(stderr, "popek-agent: default route via %s: %s\n", gw, strerror(errno));
}

/* Loopback, and the NIC the VM has unless its container asked for no
 * network: user networking's fixed addresses (docs/networking.md), the
 * guest 10.0.2.15/24 behind the host's 10.0.2.2. Set before BOOTED, so a
 * template's clones have them without a DHCP round trip. */
static void net_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	if_set(s, "lo", SIOCSIFFLAGS, NULL);
	/* virtio_net has probed by now, when the VM has a NIC at all */
	if (exists("/sys/class/net/eth0")) {
		if_set(s, "eth0", SIOCSIFADDR, "10.0.2.15");
		if_set(s, "eth0", SIOCSIFNETMASK, "255.255.255.0");
		if_set(s, "eth0", SIOCSIFFLAGS, NULL);
		default_route(s, SIOCADDRT, "10.0.2.2");
	}
	close(s);
}

/* NET: eth0 is bridged to the container's own interface on the host; take
 * over its MAC, address, MTU and gateway. */
static void net_take_over(const struct frame *f)
{
	char ip[16], gw[16], mask[16];
	unsigned mac[6];
	if (f->a < 0 || f->a > 32 || f->b < 68 || f->b > 65535 ||
	    sscanf((const char *)f->data, "%15s %15s %x:%x:%x:%x:%x:%x", ip, gw, &mac[0], &mac[1],
		   &mac[2], &mac[3], &mac[4], &mac[5]) != 8)
		return;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	for (int i = 0; i < 6; i++)
		ifr.ifr_hwaddr.sa_data[i] = (char)mac[i];
	if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0)
		fprintf(stderr, "popek-agent: eth0 MAC: %s\n", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
	ifr.ifr_mtu = (int)f->b;
	ioctl(s, SIOCSIFMTU, &ifr);
	uint32_t m = f->a ? htonl(~0u << (32 - f->a)) : 0;
	inet_ntop(AF_INET, &m, mask, sizeof(mask));
	default_route(s, SIOCDELRT, "10.0.2.2");
	if_set(s, "eth0", SIOCSIFADDR, ip);
	if_set(s, "eth0", SIOCSIFNETMASK, mask);
	if_set(s, "eth0", SIOCSIFFLAGS, NULL);
	if (strcmp(gw, "0.0.0.0"))
		default_route(s, SIOCADDRT, gw);
	close(s);
}

/* mkdir -p of a path inside the root; the last component as a file if file. */
static void make_target(const char *path, bool file)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			mkdir(buf, 0755);
			*s = '/';
		}
	}
	if (file)
		close(open(buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	else
		mkdir(buf, 0755);
}

/* /dev of the container: a tmpfs with the standard nodes and a private devpts. */
static void setup_dev(const char *root)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {{"null", 1, 3},   {"zero", 1, 5},	  {"full", 1, 7},
		     {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	char dev[64];
	snprintf(dev, sizeof(dev), "%s/dev", root);
	make_target(dev, false);
	if (mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755") < 0 || chdir(dev) < 0)
		return;
	/* relative names from here: the same for every root */
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		mknod(nodes[i].name, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min));
		chmod(nodes[i].name, 0666);
	}
	mkdir("pts", 0755);
	mount("devpts", "pts", "devpts", MS_NOSUID | MS_NOEXEC,
	      "newinstance,ptmxmode=0666,mode=620");
	symlink("pts/ptmx", "ptmx");
	mkdir("shm", 0755);
	mount("shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mkdir("mqueue", 0755);
	symlink("/proc/self/fd", "fd");
	symlink("/proc/self/fd/0", "stdin");
	symlink("/proc/self/fd/1", "stdout");
	symlink("/proc/self/fd/2", "stderr");
	if (chdir("/") < 0)
		send_error(0, "chdir /: %s", strerror(errno));
}

/* Open a disk for mounting. A VM restored from a snapshot taken before its
 * disks were swapped may still cache the old ones' first blocks (the
 * kernel's partition scan): drop them. */
static int open_disk(const char *path)
{
	int fd = wait_open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		ioctl(fd, BLKFLSBUF, 0);
	return fd;
}

/* Mount /dev/vd<first> as path, or say why not. */
static int mount_disk(uint32_t id, char first, const char *path, const char *what)
{
	char dev[16];
	snprintf(dev, sizeof(dev), "/dev/vd%c", first);
	make_target(path, false);
	int fd = open_disk(dev);
	if (fd < 0 || mount(dev, path, "ext4", 0, "") < 0) {
		send_error(id, "cannot mount %s %s: %s", what, dev, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Slot k's root and binds disks, with a fresh /proc, /sys and /dev. With
 * share, slot 0's root is the virtio-fs share and its binds the first disk. */
static int setup_root(uint32_t id, int slot, bool share)
{
	struct root *r = &roots[slot];
	char root_dev = (char)('a' + 2 * slot), binds_dev = (char)(root_dev + !share), p[64];
	if (slot) {
		snprintf(r->path, sizeof(r->path), "/mnt/pod/%d/root", slot);
		snprintf(r->binds, sizeof(r->binds), "/mnt/pod/%d/binds", slot);
	} else {
		snprintf(r->path, sizeof(r->path), "/mnt/root");
		snprintf(r->binds, sizeof(r->binds), "/mnt/binds");
	}
	if (share) {
		make_target(r->path, false);
		if (mount(ROOTFS_TAG, r->path, "virtiofs", 0, "") < 0) {
			send_error(id, "cannot mount the container root (virtio-fs %s): %s",
				   ROOTFS_TAG, strerror(errno));
			return -1;
		}
	} else if (mount_disk(id, root_dev, r->path, "the container root")) {
		return -1;
	}
	snprintf(p, sizeof(p), "/sys/block/vd%c", binds_dev);
	if (exists(p) && mount_disk(id, binds_dev, r->binds, "the bind mounts disk")) {
		umount2(r->path, MNT_DETACH);
		return -1;
	}
	snprintf(p, sizeof(p), "%s/proc", r->path);
	make_target(p, false);
	mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
	snprintf(p, sizeof(p), "%s/sys", r->path);
	make_target(p, false);
	mount("sysfs", p, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "");
	setup_dev(r->path);
	r->mounted = true;
	return 0;
}

/* A pod container is gone: its root and everything mounted under it. The
 * host rewrites the slot's disks for the next one. */
static void drop_root(int slot)
{
	struct root *r = &roots[slot];
	if (!r->mounted)
		return;
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i].used && procs[i].started && procs[i].slot == slot)
			kill(-procs[i].pid, SIGKILL);
	umount2(r->path, MNT_DETACH);
	umount2(r->binds, MNT_DETACH);
	r->mounted = false;
}

static int frame_slot(int64_t v)
{
	return v >= 0 && v <= POD_SLOTS ? (int)v : -1;
}

/* DATA of f as a path inside slot C's root. */
static char *root_path(const struct frame *f)
{
	static char p[4096 + 64];
	snprintf(p, sizeof(p), "%s%s%s", roots[f->c].path, f->data[0] == '/' ? "" : "/",
		 (const char *)f->data);
	return p;
}

static void do_bind(const struct frame *f)
{
	char src[128];
	struct stat st;
	snprintf(src, sizeof(src), "%s/%lld", roots[f->c].binds, (long long)f->a);
	if (stat(src, &st) < 0)
		return; /* not copied: a socket or device the host could not put on a disk */
	char *dst = root_path(f);
	make_target(dst, !S_ISDIR(st.st_mode));
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
		send_error(f->id, "bind mount %s: %s", (const char *)f->data, strerror(errno));
	else if (f->b)
		mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

static struct proc *find_proc(uint32_t id, bool create)
{
	struct proc *free_slot = NULL;
	for (int i = 0; i < MAX_PROCS; i++) {
		if (procs[i].used && procs[i].id == id)
			return &procs[i];
		if (!procs[i].used && !free_slot)
			free_slot = &procs[i];
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	free_slot->id = id;
	free_slot->in_fd = free_slot->out_fd = free_slot->err_fd = -1;
	return free_slot;
}

static void proc_free(struct proc *p)
{
	for (size_t i = 0; i < p->argc; i++)
		free(p->argv[i]);
	for (size_t i = 0; i < p->envc; i++)
		free(p->envp[i]);
	free(p->argv);
	free(p->envp);
	free(p->cwd);
	if (p->in_fd >= 0)
		close(p->in_fd);
	if (p->out_fd >= 0 && p->out_fd != p->in_fd)
		close(p->out_fd);
	if (p->err_fd >= 0)
		close(p->err_fd);
	obuf_free(&p->inq);
	p->used = false;
}

static bool push(char ***v, size_t *n, const struct frame *f)
{
	if (*n + 2 > MAX_ARGS)
		return false;
	char **nv = realloc(*v, (*n + 2) * sizeof(char *));
	if (!nv)
		return false;
	*v = nv;
	nv[(*n)++] = strndup((const char *)f->data, f->len);
	nv[*n] = NULL;
	return true;
}

/* In the child: become the container process or report why not on errfd. */
static void child(struct proc *p, int slave, int in[2], int out[2], int err[2], int errfd)
{
	const char *what = "setsid";
	setsid();
	if (p->tty) {
		if (ioctl(slave, TIOCSCTTY, 0) < 0) {
			what = "controlling terminal";
			goto fail;
		}
		ioctl(slave, TIOCSWINSZ, &p->ws);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
	} else {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
	}
	for (int fd = 3; fd < 1024; fd++)
		if (fd != errfd)
			close(fd);
	what = "chroot";
	if (chroot(roots[p->slot].path) < 0)
		goto fail;
	what = "working directory";
	if (chdir(p->cwd ? p->cwd : "/") < 0)
		goto fail;
	what = "rlimit";
	for (size_t i = 0; i < p->nrlim; i++)
		if (setrlimit(p->rlim[i].res, &p->rlim[i].lim) < 0)
			goto fail;
	what = "groups";
	if (setgroups(p->ngroups, p->groups) < 0 || setgid(p->gid) < 0)
		goto fail;
	what = "user";
	if (setuid(p->uid) < 0)
		goto fail;
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	environ = p->envp;
	what = "exec";
	execvp(p->argv[0], p->argv);
fail:;
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s%s%s: %s", what, p->argc ? " " : "",
			 p->argc ? p->argv[0] : "", strerror(errno));
	if (write(errfd, msg, (size_t)n) < 0)
		_exit(126);
	_exit(errno == ENOENT ? 127 : 126);
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* A terminal of the container's own devpts, so its name is valid inside. */
static int open_pty(const char *root, int *master, int *slave, const struct winsize *ws)
{
	char ptmx[64];
	snprintf(ptmx, sizeof(ptmx), "%s/dev/pts/ptmx", root);
	*master = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0 || unlockpt(*master) < 0)
		return -1;
	*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (*slave < 0)
		return -1;
	ioctl(*slave, TIOCSWINSZ, ws);
	return 0;
}

static void spawn(struct proc *p)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2];
	int master = -1, slave = -1;
	if (!p->argc) {
		send_error(p->id, "process %u has no args", p->id);
		send_frame(FRAME_EXIT, p->id, 127, NULL, 0);
		proc_free(p);
		return;
	}
	if (p->tty ? open_pty(roots[p->slot].path, &master, &slave, &p->ws) < 0
		   : pipe(in) < 0 || pipe(out) < 0 || pipe(err) < 0) {
		send_error(p->id, "cannot make the stdio of process %u: %s", p->id,
			   strerror(errno));
		send_frame(FRAME_EXIT, p->id, 126, NULL, 0);
		proc_free(p);
		return;
	}
	if (pipe2(ep, O_CLOEXEC) < 0)
		ep[0] = ep[1] = -1;
	pid_t pid = fork();
	if (pid == 0)
		child(p, slave, in, out, err, ep[1]);
	close(ep[1]);
	if (p->tty) {
		close(slave);
		p->in_fd = p->out_fd = master;
		nonblock(master);
	} else {
		close(in[0]);
		close(out[1]);
		close(err[1]);
		p->in_fd = in[1];
		p->out_fd = out[0];
		p->err_fd = err[0];
		nonblock(out[0]);
		nonblock(err[0]);
		nonblock(in[1]);
	}
	char msg[512];
	ssize_t n = read(ep[0], msg, sizeof(msg) - 1);
	close(ep[0]);
	if (n > 0) {
		msg[n] = 0;
		send_error(p->id, "%s", msg);
	}
	p->pid = pid;
	p->started = true;
	send_frame(FRAME_STARTED, p->id, pid, NULL, 0);
}

/* Stdin as the process takes it, so one that does not read cannot block us. */
static void feed_stdin(struct proc *p)
{
	if (p->in_fd < 0)
		return;
	if (obuf_write_some(&p->inq, p->in_fd) < 0)
		p->inq.len = 0; /* it closed its stdin: the rest has no reader */
	if (p->inq.len || !p->in_eof)
		return;
	p->in_eof = false;
	if (p->tty) {
		if (write(p->in_fd, "\x04", 1) < 0)
			p->inq.len = 0; /* end of input on a terminal is ^D */
	} else {
		close(p->in_fd);
		p->in_fd = -1;
	}
}

static void handle_frame(const struct frame *f)
{
	struct proc *p = NULL;
	if (f->type >= FRAME_ARG && f->type <= FRAME_START) {
		p = find_proc(f->id, true);
		if (!p) {
			send_error(f->id, "too many processes");
			return;
		}
		if (p->started)
			return; /* a running process takes no more setup */
	} else if (f->type == FRAME_IN || f->type == FRAME_SIG || f->type == FRAME_WINCH) {
		p = find_proc(f->id, false);
		if (!p || !p->started)
			return;
	}
	int slot = frame_slot(f->type == FRAME_BIND || f->type == FRAME_TMPFS ? f->c : f->a);
	switch (f->type) {
	case FRAME_MOUNT:
		if (slot >= 0 && !roots[slot].mounted &&
		    setup_root(f->id, slot, slot == 0 && f->b == 1) == 0)
			send_frame(FRAME_READY, f->id, slot, NULL, 0);
		break;
	case FRAME_NET:
		net_take_over(f);
		break;
	case FRAME_UMOUNT:
		if (slot > 0)
			drop_root(slot);
		break;
	case FRAME_HOST:
		sethostname((const char *)f->data, f->len);
		break;
	case FRAME_BIND:
		if (slot >= 0 && roots[slot].mounted)
			do_bind(f);
		break;
	case FRAME_TMPFS: {
		if (slot < 0 || !roots[slot].mounted)
			break;
		char *dst = root_path(f);
		make_target(dst, false);
		mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
		break;
	}
	case FRAME_ARG:
		push(&p->argv, &p->argc, f);
		break;
	case FRAME_ENV:
		push(&p->envp, &p->envc, f);
		break;
	case FRAME_CWD:
		free(p->cwd);
		p->cwd = strndup((const char *)f->data, f->len);
		break;
	case FRAME_USER:
		p->uid = (uid_t)f->a;
		p->gid = (gid_t)f->b;
		break;
	case FRAME_GROUP:
		if (p->ngroups < sizeof(p->groups) / sizeof(p->groups[0]))
			p->groups[p->ngroups++] = (gid_t)f->a;
		break;
	case FRAME_RLIM:
		if (p->nrlim < RLIM_NLIMITS) {
			p->rlim[p->nrlim].res = (int)f->a;
			p->rlim[p->nrlim].lim.rlim_cur = f->b < 0 ? RLIM_INFINITY : (rlim_t)f->b;
			p->rlim[p->nrlim].lim.rlim_max = f->c < 0 ? RLIM_INFINITY : (rlim_t)f->c;
			p->nrlim++;
		}
		break;
	case FRAME_TTY:
	case FRAME_WINCH:
		p->tty = p->tty || f->type == FRAME_TTY;
		p->ws.ws_row = (unsigned short)f->a;
		p->ws.ws_col = (unsigned short)f->b;
		if (f->type == FRAME_WINCH && p->tty)
			ioctl(p->in_fd, TIOCSWINSZ, &p->ws);
		break;
	case FRAME_START:
		if (slot < 0 || !roots[slot].mounted) {
			send_error(p->id, "process %u: no container root in slot %lld", p->id,
				   (long long)f->a);
			send_frame(FRAME_EXIT, p->id, 126, NULL, 0);
			proc_free(p);
			break;
		}
		p->slot = slot;
		spawn(p);
		break;
	case FRAME_IN:
		if (p->in_fd < 0)
			break;
		if (f->len)
			obuf_add(&p->inq, f->data, f->len);
		else
			p->in_eof = true;
		feed_stdin(p);
		break;
	case FRAME_SIG:
		kill(f->b ? -p->pid : p->pid, (int)f->a);
		break;
	default:
		break;
	}
}

static int on_line(void *ctx, const char *line, size_t len)
{
	static struct frame f;
	if (frame_parse(line, len, &f) == FRAME_OK)
		handle_frame(&f);
	return 0;
}

/* Relay what is readable on fd as OUT frames; false at end of file. */
static bool relay(struct proc *p, int fd, int stream)
{
	char buf[FRAME_DATA_MAX];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			send_frame(FRAME_OUT, p->id, stream, buf, (size_t)n);
			continue;
		}
		return n < 0 && errno == EAGAIN;
	}
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_PROCS; i++) {
			struct proc *p = &procs[i];
			if (!p->used || !p->started || p->pid != pid)
				continue;
			if (p->out_fd >= 0)
				relay(p, p->out_fd, 1);
			if (p->err_fd >= 0)
				relay(p, p->err_fd, 2);
			int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			send_frame(FRAME_EXIT, p->id, code, NULL, 0);
			proc_free(p);
		}
	}
}

int main(void)
{
	mount("proc", "/proc", "proc", 0, "");
	mount("sysfs", "/sys", "sysfs", 0, "");
	mount("devtmpfs", "/dev", "devtmpfs", 0, "");
	load_modules("/etc/modules");
	load_modules("/etc/modules.agent");
	hvc = wait_open("/dev/hvc0", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (hvc < 0) {
		fprintf(stderr, "popek-agent: no /dev/hvc0: %s\n", strerror(errno));
		reboot(RB_POWER_OFF);
		return 1;
	}
	struct termios t;
	if (tcgetattr(hvc, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(hvc, TCSANOW, &t);
	}
	nonblock(hvc);
	dup2(hvc, 2); /* our own messages reach the host's vm.log as non-frame lines */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	net_up();
	send_frame(FRAME_BOOTED, 0, 0, NULL, 0);
	flush_all();
	static struct line_reader lr;
	for (;;) {
		struct pollfd pfd[2 + 3 * MAX_PROCS];
		struct proc *owner[2 + 3 * MAX_PROCS];
		size_t n = 0;
		pfd[n++] = (struct pollfd){.fd = hvc, .events = POLLIN | (outq.len ? POLLOUT : 0)};
		pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		for (int i = 0; i < MAX_PROCS; i++) {
			struct proc *p = &procs[i];
			if (!p->used || !p->started)
				continue;
			int fds[2] = {p->out_fd, p->err_fd};
			for (int k = 0; k < 2; k++) {
				if (fds[k] < 0)
					continue;
				owner[n] = p;
				pfd[n++] = (struct pollfd){.fd = fds[k], .events = POLLIN};
			}
			if (p->in_fd >= 0 && p->inq.len) {
				owner[n] = p;
				pfd[n++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
			}
		}
		if (poll(pfd, n, -1) < 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			char buf[8192];
			ssize_t r = read(hvc, buf, sizeof(buf));
			if (r > 0)
				line_reader_feed(&lr, buf, (size_t)r, on_line, NULL);
		}
		for (size_t i = 2; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			struct proc *p = owner[i];
			if (pfd[i].events == POLLOUT) {
				feed_stdin(p);
				continue;
			}
			int stream = pfd[i].fd == p->err_fd ? 2 : 1;
			if (!relay(p, pfd[i].fd, stream)) {
				/* end of output: keep the fd number owned until exit */
				if (stream == 2) {
					close(p->err_fd);
					p->err_fd = -1;
				} else if (!p->tty) {
					close(p->out_fd);
					p->out_fd = -1;
				} else {
					p->out_fd = -1; /* the master stays open as in_fd */
				}
			}
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			reap();
		}
		flush_some();
	}
}
