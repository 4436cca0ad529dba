/* Processes. fork, vfork and clone without CLONE_VM fork popek itself: the
 * program's RAM is a private mapping (mm.c), so the host's fork makes the
 * child's copy-on-write, and the child popek builds a VM of its own from the
 * parent's registers. A guest pid is the popek process's host pid, so
 * wait4 is the host's wait4 on popek's children, and a child that died of a
 * signal dies of it again in its popek so the status reads the same.
 * execve loads a new image into the emptied address space of the same VM. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/exec.h"

#define XCLONE_VM	      0x00000100
#define XCLONE_VFORK	      0x00004000
#define XCLONE_SETTLS	      0x00080000
#define XCLONE_PARENT_SETTID  0x00100000
#define XCLONE_CHILD_CLEARTID 0x00200000
#define XCLONE_CHILD_SETTID   0x01000000
#define XCLONE_THREAD	      0x00010000

#define MAX_ARGS      4096
#define MAX_ARG_BYTES (2u << 20)

static int64_t do_fork(struct xproc *p, uint64_t flags, uint64_t stack, uint64_t ptid,
		       uint64_t ctid, uint64_t tls)
{
	if ((flags & XCLONE_THREAD) && (flags & XCLONE_VM))
		return exec_thread(p, flags, stack, ptid, ctid, tls);
	if ((flags & XCLONE_THREAD) || ((flags & XCLONE_VM) && !(flags & XCLONE_VFORK)))
		return -EINVAL; /* a thread shares the address space; a shared one is a thread */
	if (p->nchild == (int)(sizeof(p->child) / sizeof(p->child[0])))
		return -EAGAIN;
	static _Thread_local struct cpu_state st;
	if (exec_user_state(p, &st))
		return -EIO;
	int vf[2] = {-1, -1};
	if ((flags & XCLONE_VFORK) && pipe2(vf, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		if (vf[0] >= 0) {
			close(vf[0]);
			close(vf[1]);
		}
		return -e;
	}
	if (pid == 0) {
		pid_t me = getpid();
		p->forked = true;
		p->nchild = 0;
		exec_self->tid = me;			    /* the child's one thread */
		memset(&p->pending, 0, sizeof(p->pending)); /* a child starts with none */
		memset(&exec_self->pending, 0, sizeof(exec_self->pending));
		exec_self->notified = false;
		if (vf[0] >= 0) {
			close(vf[0]);
			p->vfork_fd = vf[1];
		}
		st.gpr[R_RAX] = 0;
		if (stack)
			st.gpr[R_RSP] = stack;
		if (flags & XCLONE_SETTLS)
			st.seg[SEG_FS].base = tls;
		if (flags & XCLONE_CHILD_SETTID)
			mm_write(&p->mm, ctid, &me, sizeof(me));
		if (flags & XCLONE_CHILD_CLEARTID)
			exec_self->clear_tid = ctid;
		if (exec_respawn(p, &st))
			_exit(127);
		return 0; /* the state set above carries the child's RAX */
	}
	p->child[p->nchild++] = pid;
	if (flags & XCLONE_PARENT_SETTID)
		mm_write(&p->mm, ptid, &pid, sizeof(pid));
	if (vf[0] >= 0) { /* vfork: the parent waits until the child execs or exits */
		char c;
		close(vf[1]);
		while (read(vf[0], &c, 1) < 0 && errno == EINTR)
			;
		close(vf[0]);
	}
	return pid;
}

static int64_t sys_fork(struct xproc *p, const struct xsys *s)
{
	return do_fork(p, SIGCHLD, 0, 0, 0, 0);
}

static int64_t sys_vfork(struct xproc *p, const struct xsys *s)
{
	return do_fork(p, XCLONE_VM | XCLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
}

static int64_t sys_clone(struct xproc *p, const struct xsys *s)
{
	return do_fork(p, s->a[0], s->a[1], s->a[2], s->a[3], s->a[4]);
}

static void forget_child(struct xproc *p, pid_t pid)
{
	for (int i = 0; i < p->nchild; i++)
		if (p->child[i] == pid)
			p->child[i] = p->child[--p->nchild];
}

bool exec_is_child(struct xproc *p, pid_t pid)
{
	for (int i = 0; i < p->nchild; i++)
		if (p->child[i] == pid)
			return true;
	return false;
}

static int64_t sys_wait4(struct xproc *p, const struct xsys *s)
{
	int status = 0;
	int opts = (int)s->a[2] & (WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE);
	exec_unlock(p);
	pid_t pid = wait4((pid_t)s->a[0], &status, opts, NULL);
	exec_lock(p);
	if (pid < 0)
		return -errno;
	if (pid > 0 && (WIFEXITED(status) || WIFSIGNALED(status)))
		forget_child(p, pid);
	if (pid > 0 && s->a[1] && mm_write(&p->mm, s->a[1], &status, sizeof(status)))
		return -EFAULT;
	if (s->a[3]) {
		struct rusage ru;
		memset(&ru, 0, sizeof(ru));
		if (mm_write(&p->mm, s->a[3], &ru, sizeof(ru)))
			return -EFAULT;
	}
	return pid;
}

/* A NULL-terminated array of guest strings, copied to the host. */
static int read_strv(struct xproc *p, uint64_t va, char ***out, size_t *budget)
{
	char **v = calloc(MAX_ARGS + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	for (size_t i = 0; va; i++) {
		uint64_t sp;
		if (i == MAX_ARGS)
			return -E2BIG;
		if (mm_read(&p->mm, va + i * 8, &sp, 8))
			return -EFAULT;
		if (!sp)
			break;
		char buf[131072];
		int rc = mm_read_str(&p->mm, sp, buf, sizeof(buf));
		if (rc)
			return rc == -ENAMETOOLONG ? -E2BIG : rc;
		size_t n = strlen(buf) + 1;
		if (n > *budget || !(v[i] = strdup(buf)))
			return -E2BIG;
		*budget -= n;
	}
	return 0;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* "#!INTERP [ARG]" in the first line: argv becomes INTERP [ARG] PATH ARGV[1..]. */
static int shebang(struct xproc *p, const char *path, char ***argv)
{
	int h = fs_open(p, AT_FDCWD, path, O_RDONLY, 0, false);
	if (h < 0)
		return h;
	char line[256];
	ssize_t n = read(h, line, sizeof(line) - 1);
	close(h);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	char *nl = strchr(line, '\n');
	if (!nl)
		return -ENOEXEC;
	*nl = '\0';
	char *save, *interp = strtok_r(line + 2, " \t", &save), *arg = strtok_r(NULL, "", &save);
	if (!interp)
		return -ENOEXEC;
	size_t argc = 0;
	while ((*argv)[argc])
		argc++;
	char **v = calloc(argc + 4, sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	v[k++] = strdup(interp);
	if (arg)
		v[k++] = strdup(arg);
	v[k++] = strdup(path);
	for (size_t i = 1; i < argc; i++)
		v[k++] = (*argv)[i];
	if ((*argv)[0])
		free((*argv)[0]);
	free(*argv);
	*argv = v;
	return 1;
}

static int64_t sys_execve(struct xproc *p, const struct xsys *s)
{
	char path[4096], err[512];
	int rc = mm_read_str(&p->mm, s->a[0], path, sizeof(path));
	if (rc)
		return rc;
	char g[4096];
	const char *rest;
	/* busybox runs its applets through /proc/self/exe: the program itself */
	if (fs_resolve(p, AT_FDCWD, path, g, sizeof(g)) == -ENOENT && proc_self(g, &rest) &&
	    !strcmp(rest, "exe"))
		snprintf(path, sizeof(path), "%s", p->exe);
	char **argv = NULL, **envp = NULL;
	size_t budget = MAX_ARG_BYTES;
	rc = read_strv(p, s->a[1], &argv, &budget);
	if (!rc)
		rc = read_strv(p, s->a[2], &envp, &budget);
	struct xload ld;
	for (int depth = 0; !rc && depth < 4; depth++) {
		rc = shebang(p, depth ? argv[0] : path, &argv);
		if (rc <= 0)
			break;
		snprintf(path, sizeof(path), "%s", argv[0]);
		rc = 0;
	}
	if (!rc)
		rc = exec_load(p, path, &ld, true, err, sizeof(err));
	if (rc) {
		free_strv(argv);
		free_strv(envp);
		return rc;
	}
	/* the point of no return: the other threads end (Linux's de_thread;
	 * the caller takes the leader's tid), then the old image goes */
	if (exec_others(p) && !exec_stop_others(p)) {
		free_strv(argv);
		free_strv(envp);
		return 0; /* the program ended meanwhile */
	}
	exec_self->tid = getpid();
	if (p->pending.set)
		exec_self->notified = true; /* the process's pending signals stay, now its */
	exec_self->ss_sp = exec_self->ss_size = exec_self->ss_flags = 0;
	mm_reset(&p->mm);
	for (int fd = 0; fd < X_MAX_FDS; fd++)
		if (p->fd[fd].host >= 0 && p->fd[fd].cloexec)
			fd_close(p, fd);
	for (int sig = 1; sig < X_NSIG; sig++)
		if (p->sig[sig].handler > 1)
			memset(&p->sig[sig], 0, sizeof(p->sig[sig]));
	exec_self->clear_tid = 0;
	if (exec_image(p, path, argv, (const char **)envp, err, sizeof(err))) {
		fprintf(stderr, "popek exec: execve %s: %s\n", path, err);
		exec_kill(p, SIGSEGV);
	}
	if (p->vfork_fd >= 0) {
		close(p->vfork_fd);
		p->vfork_fd = -1;
	}
	free_strv(argv);
	free_strv(envp);
	return 0;
}

void sys_process_table(struct sys_entry *t)
{
	t[SYS_clone] = (struct sys_entry){"clone", sys_clone, "xpppx"};
	t[SYS_fork] = (struct sys_entry){"fork", sys_fork, ""};
	t[SYS_vfork] = (struct sys_entry){"vfork", sys_vfork, ""};
	t[SYS_execve] = (struct sys_entry){"execve", sys_execve, "spp"};
	t[SYS_wait4] = (struct sys_entry){"wait4", sys_wait4, "ipxp"};
}
