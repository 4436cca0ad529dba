/* The seccomp-bpf allowlist, built with libseccomp from one table: a system
 * call is allowed when every condition of its row holds for this VMM. Anything
 * else raises SIGSYS, whose handler names the call in one line and ends the
 * VMM with EXIT_CODE_JAIL. */
#include <errno.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "jail/internal.h"
#include "machine/machine.h"

enum {
	ANY = 0,
	KVM = 1 << 0,	  /* engine kvm */
	SOFT = 1 << 1,	  /* engine soft */
	DISKS = 1 << 2,	  /* virtio-blk configured */
	SAN = 1 << 3,	  /* a sanitizer runtime (ASan/LSan/UBSan, TSan) is linked in */
	NIC = 1 << 4,	  /* a virtio-net of any backend */
	USERNET = 1 << 5, /* libslirp: the guest's connections become host sockets */
	VSOCK = 1 << 6,	  /* virtio-vsock: guest connections to PATH_PORT sockets */
	UFFD = 1 << 7,	  /* post-copy: a userfaultfd on RAM (docs/migration.md) */
};

/* Each row: a system call and when the VMM needs it. */
static const struct {
	const char *name;
	unsigned when;
} allowlist[] = {
    /* I/O on fds opened before the jail: console, control socket, eventfds */
    {"read", ANY},
    {"write", ANY},
    {"readv", ANY},
    {"writev", ANY},
    {"close", ANY},
    {"lseek", ANY},
    {"fcntl", ANY},
    {"fstat", ANY},
    {"newfstatat", ANY},
    {"ioctl", ANY}, /* by request: the table below */
    /* the VM's event loop (util/loop.c): its timers and signals start with the VM */
    {"epoll_wait", ANY},
    {"epoll_pwait", ANY},
    {"epoll_ctl", ANY},
    {"timerfd_create", ANY},
    {"timerfd_settime", ANY},
    {"signalfd4", ANY},
    /* the control channel */
    {"accept4", ANY},
    {"setsockopt", ANY},
    {"sendto", ANY},
    {"sendmsg", ANY},
    {"recvfrom", ANY},
    {"recvmsg", ANY},
    /* snapshots into the directory fd a client passes (openat on an fd; the
     * root is empty and read-only, so no path reaches the host) */
    {"openat", ANY},
    {"renameat", ANY},
    {"unlinkat", ANY},
    {"fsync", ANY},
    {"fdatasync", ANY},
    {"ftruncate", ANY},
    {"pwrite64", ANY},
    /* memory and threads (glibc malloc, pthread, the vCPU threads) */
    {"mmap", ANY}, /* without PROT_EXEC: see install() */
    {"mprotect", ANY},
    {"munmap", ANY},
    {"madvise", ANY},
    {"mincore", ANY}, /* snapshots of a restored VM: its copy-on-write pages */
    {"mremap", ANY},
    {"brk", ANY},
    {"clone", ANY}, /* threads only: see install() */
    {"set_robust_list", ANY},
    {"rseq", ANY},
    {"futex", ANY},
    {"sched_yield", ANY},
    {"sched_getaffinity", ANY},
    {"gettid", ANY},
    {"getpid", ANY},
    {"tgkill", ANY},
    {"rt_sigaction", ANY},
    {"rt_sigprocmask", ANY},
    {"rt_sigreturn", ANY},
    {"restart_syscall", ANY}, /* a sleep interrupted by a signal goes on */
    {"exit", ANY},
    {"exit_group", ANY},
    /* the trace and audit threads (policy/trace.c): a trace client's socket, naps */
    {"poll", ANY},
    /* time: the guest's clocks and timers, when the vDSO does not answer */
    {"clock_gettime", ANY},
    {"gettimeofday", ANY},
    /* a policy's limit rules: a limited action waits on its thread (also
     * after `popek policy` adds one, so for every VM) */
    {"clock_nanosleep", ANY},
    /* virtio-rng */
    {"getrandom", ANY},
    /* virtio-blk */
    {"preadv", DISKS},
    {"pwritev", DISKS},
    {"pread64", DISKS},
    {"flock", DISKS},
    /* NICs: a backend's round polls its fds without waiting (net/loop.c) */
    {"poll", NIC},
    /* user networking opens, connects and serves host sockets for the guest */
    {"socket", USERNET},
    {"connect", USERNET},
    {"bind", USERNET},
    {"listen", USERNET},
    {"accept", USERNET},
    {"getsockopt", USERNET},
    {"getsockname", USERNET},
    {"getpeername", USERNET},
    {"shutdown", USERNET},
    /* virtio-vsock connects guest streams to Unix sockets and half-closes them */
    {"socket", VSOCK},
    {"connect", VSOCK},
    {"shutdown", VSOCK},
    /* post-copy: the fault thread is woken from its read when the VM ends */
    {"shutdown", UFFD},
    /* sanitizer runtimes: LeakSanitizer stops the threads from a clone()d
     * tracer with ptrace and reads /proc at exit; reports need the rest */
    {"ptrace", SAN},
    {"process_vm_readv", SAN},
    {"wait4", SAN},
    {"waitid", SAN},
    {"prctl", SAN},
    {"sigaltstack", SAN},
    {"open", SAN}, /* the runtimes' own system calls: the legacy ones */
    {"stat", SAN},
    {"lstat", SAN},
    {"access", SAN},
    {"getdents", SAN},
    {"getdents64", SAN},
    {"readlink", SAN},
    {"getppid", SAN},
    {"kill", SAN},
    {"pipe", SAN},
    {"pipe2", SAN},
    {"dup", SAN},
    {"dup2", SAN},
    {"getrlimit", SAN},
    {"prlimit64", SAN},
    {"uname", SAN},
    {"sched_setaffinity", SAN},
    {"nanosleep", SAN}, /* TSan's background thread */
};

/* ioctl, by request number. */
static const struct {
	unsigned long request, mask; /* request & mask must equal request */
	unsigned when;
} ioctls[] = {
    {TCGETS, ~0ul, ANY}, /* the console: isatty, raw mode and back */
    {TCSETS, ~0ul, ANY},
    {TCSETSW, ~0ul, ANY},
    {TCSETSF, ~0ul, ANY},
    {TIOCGWINSZ, ~0ul, ANY},
    {TUNSETOFFLOAD, ~0ul, NIC}, /* tap: the offloads the guest negotiated */
    {FIONREAD, ~0ul, USERNET},	/* libslirp: bytes waiting on a socket */
    /* every KVM ioctl (type KVMIO) on the VM and vCPU fds */
    {(unsigned long)KVMIO << _IOC_TYPESHIFT, (unsigned long)_IOC_TYPEMASK << _IOC_TYPESHIFT, KVM},
    /* every userfaultfd ioctl (COPY, ZEROPAGE, WAKE, UNREGISTER), on that fd only */
    {(unsigned long)UFFDIO << _IOC_TYPESHIFT, (unsigned long)_IOC_TYPEMASK << _IOC_TYPESHIFT, UFFD},
};

#define NAMES_MAX 512
#define NAME_LEN  32
/* Names resolved before the filter goes in: the SIGSYS handler must not allocate. */
static char names[NAMES_MAX][NAME_LEN];

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
	while (*s && *n + 1 < cap)
		buf[(*n)++] = *s++;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[256], num[16];
	size_t n = 0, k = 0;
	int nr = si->si_syscall;
	unsigned u = nr < 0 ? 0u : (unsigned)nr;
	do
		num[k++] = (char)('0' + u % 10);
	while ((u /= 10) && k < sizeof(num));
	put(msg, &n, sizeof(msg), "popek: jail: forbidden system call ");
	put(msg, &n, sizeof(msg), nr >= 0 && nr < NAMES_MAX && names[nr][0] ? names[nr] : "?");
	put(msg, &n, sizeof(msg), " (");
	while (k && n + 1 < sizeof(msg))
		msg[n++] = num[--k];
	put(msg, &n, sizeof(msg), ") — the seccomp allowlist does not include it\n");
	if (write(STDERR_FILENO, msg, n) < 0)
		_exit(EXIT_CODE_JAIL);
	_exit(EXIT_CODE_JAIL);
}

/* A call in two rows (needed for either reason) is added once. */
static bool added_before(size_t i, unsigned have)
{
	for (size_t j = 0; j < i; j++)
		if (!(allowlist[j].when & ~have) && !strcmp(allowlist[j].name, allowlist[i].name))
			return true;
	return false;
}

static unsigned conditions(const struct jail_profile *p)
{
	return (p->kvm ? KVM : SOFT) | (p->disks ? DISKS : 0) | (SANITIZED ? SAN : 0) |
	       (p->nics ? NIC : 0) | (p->usernet ? USERNET : 0) | (p->vsock_dir ? VSOCK : 0) |
	       (p->uffd > 0 ? UFFD : 0);
}

/* Rules whose arguments matter: mapping memory executable, clone without
 * CLONE_THREAD (a new process), and ioctl requests. */
static int add_rule(scmp_filter_ctx f, const char *name, int nr, const struct jail_profile *p)
{
	const uint64_t prot_exec = PROT_EXEC, thread = CLONE_THREAD;
	unsigned have = conditions(p);
	if (!strcmp(name, "ioctl")) {
		for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
			if (ioctls[i].when & ~have)
				continue;
			struct scmp_arg_cmp req =
			    SCMP_A1(SCMP_CMP_MASKED_EQ, ioctls[i].mask, ioctls[i].request);
			int rc = ioctls[i].when & UFFD
				     ? seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 2, req,
							SCMP_A0(SCMP_CMP_EQ, (uint64_t)p->uffd, 0))
				     : seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1, req);
			if (rc < 0)
				return -1;
		}
		return 0;
	}
	if (SANITIZED)
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
	if (!strcmp(name, "mmap") || !strcmp(name, "mprotect"))
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A2(SCMP_CMP_MASKED_EQ, prot_exec, 0));
	if (!strcmp(name, "clone"))
		return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A0(SCMP_CMP_MASKED_EQ, thread, thread));
	return seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
}

int seccomp_install(const struct jail_profile *p, char *err, size_t errlen)
{
	for (int nr = 0; nr < NAMES_MAX; nr++) {
		char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		snprintf(names[nr], NAME_LEN, "%s", s ? s : "");
		free(s);
	}
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_TRAP);
	if (!f || sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, errlen, "jail: cannot set up the seccomp filter");
		seccomp_release(f);
		return -1;
	}
	unsigned have = conditions(p);
	int allowed = 0, rc = 0;
	for (size_t i = 0; i < sizeof(allowlist) / sizeof(allowlist[0]) && !rc; i++) {
		if ((allowlist[i].when & ~have) || added_before(i, have))
			continue;
		int nr = seccomp_syscall_resolve_name(allowlist[i].name);
		rc = nr == __NR_SCMP_ERROR ? -1 : add_rule(f, allowlist[i].name, nr, p);
		if (rc)
			snprintf(err, errlen, "jail: seccomp rule for %s: %s", allowlist[i].name,
				 strerror(rc == -1 ? EINVAL : -rc));
		allowed++;
	}
	/* glibc tries clone3 first and falls back to clone on ENOSYS; clone3's
	 * flags are in memory, out of the filter's reach. */
	if (!rc && (rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
		snprintf(err, errlen, "jail: seccomp rule for clone3: %s", strerror(-rc));
	/* No VMM thread exists yet (they all start after the jail); should a
	 * library have started one, it gets the same filter. */
	if (!rc && (rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		snprintf(err, errlen, "jail: seccomp thread sync: %s", strerror(-rc));
	if (!rc && (rc = seccomp_load(f)) < 0)
		snprintf(err, errlen, "jail: cannot load the seccomp filter: %s", strerror(-rc));
	seccomp_release(f);
	return rc ? -1 : allowed;
}

void seccomp_selftest_forbidden(void)
{
	syscall(SYS_mount, "none", "/", "tmpfs", 0ul, NULL);
}
