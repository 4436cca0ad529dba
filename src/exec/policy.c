/* The syscall class of the policy language (docs/exec.md, "Policy"). Every
 * call is matched before it runs, on its number, its arguments, its path
 * arguments (normalized as written, and as they resolve with symlinks
 * followed, so a link to a denied file is denied too) and the socket family,
 * address and port it names. With one thread no program code runs while
 * popek serves a call, so the guest memory a rule read is what the call then
 * reads; with threads another vCPU may rewrite it in between (docs/exec.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

/* Name → number, before any rule is matched; and what exec cannot honour. */
static int check_rule(struct policy_rule *r, char *err, size_t errlen)
{
	if (r->cls != POLICY_SYSCALL) {
		snprintf(
		    err, errlen,
		    "policy rule on line %d (%s %s): popek exec runs no devices; its rules are "
		    "of class syscall (docs/exec.md)",
		    r->line, policy_action_names[r->action], policy_class_names[r->cls]);
		return -1;
	}
	if (r->action == POLICY_PAUSE) {
		snprintf(err, errlen,
			 "policy rule on line %d: popek exec has no control socket to resume a "
			 "pause from; use stop or deny",
			 r->line);
		return -1;
	}
	if (!r->call[0])
		return 0;
	for (uint64_t nr = 0; nr < 512; nr++) {
		const char *n = syscall_name(nr);
		if (n && !strcmp(n, r->call)) {
			r->addr.lo = r->addr.hi = nr;
			return 0;
		}
	}
	snprintf(err, errlen,
		 "policy rule on line %d names '%s', a system call popek exec does not know "
		 "(docs/exec.md lists them; nr N matches a call by number)",
		 r->line, r->call);
	return -1;
}

int exec_policy_load(struct xproc *p, char *err, size_t errlen)
{
	const struct exec_options *o = p->opt;
	if (!o->policy && !o->audit)
		return 0;
	p->policy = calloc(1, sizeof(*p->policy));
	if (!p->policy) {
		snprintf(err, errlen, "out of memory for the policy");
		return XEXIT_HOST;
	}
	p->policy->audit_fd = -1;
	if (o->policy && policy_load(p->policy, o->policy, err, errlen))
		return XEXIT_USAGE;
	for (int i = 0; i < p->policy->n; i++)
		if (check_rule(&p->policy->rule[i], err, errlen))
			return XEXIT_USAGE;
	if (o->audit) {
		p->policy->audit_fd =
		    open(o->audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (p->policy->audit_fd < 0) {
			snprintf(err, errlen, "--audit %s: %s — give a writable file", o->audit,
				 strerror(errno));
			return XEXIT_USAGE;
		}
	}
	return 0;
}

static void add_path(struct xproc *p, struct xcheck *c, int dirfd, uint64_t va)
{
	char raw[4096];
	unsigned n = c->a.npaths;
	if (n + 2 > 4 || mm_read_str(&p->mm, va, raw, sizeof(raw)))
		return;
	if (fs_resolve(p, dirfd, raw, c->path[n], sizeof(c->path[n])))
		return;
	c->paths[n] = c->path[n];
	n++;
	if (!fs_real(p, dirfd, raw, c->path[n], sizeof(c->path[n])) &&
	    strcmp(c->path[n], c->path[n - 1])) {
		c->paths[n] = c->path[n];
		n++;
	}
	c->a.npaths = n;
}

/* A socket address: its family, AF_UNIX path, or IP address and port. */
static void add_sockaddr(struct xproc *p, struct xcheck *c, uint64_t va, uint64_t len)
{
	struct sockaddr_storage ss;
	if (!va || len < sizeof(sa_family_t) || len > sizeof(ss))
		return;
	memset(&ss, 0, sizeof(ss));
	if (mm_read(&p->mm, va, &ss, len))
		return;
	c->a.family = ss.ss_family;
	if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)&ss;
		memset(c->ip, 0, 10);
		c->ip[10] = c->ip[11] = 0xff;
		memcpy(c->ip + 12, &in->sin_addr, 4);
		c->a.ip = c->ip;
		c->a.has_port = true;
		c->a.port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)&ss;
		memcpy(c->ip, &in6->sin6_addr, 16);
		c->a.ip = c->ip;
		c->a.has_port = true;
		c->a.port = ntohs(in6->sin6_port);
	} else if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)&ss;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		if (n && un->sun_path[0] && c->a.npaths == 0 &&
		    !fs_normalize(p->cwd, strndupa(un->sun_path, n), c->path[0],
				  sizeof(c->path[0]))) {
			c->paths[0] = c->path[0];
			c->a.npaths = 1;
		}
	}
}

static void add_msghdr(struct xproc *p, struct xcheck *c, uint64_t va)
{
	struct msghdr m;
	if (va && !mm_read(&p->mm, va, &m, sizeof(m)))
		add_sockaddr(p, c, (uint64_t)(uintptr_t)m.msg_name, m.msg_namelen);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool exec_policy_check(struct xproc *p, const struct xsys *s, const struct sys_entry *e,
		       struct xcheck *c, int64_t *ret)
{
	c->a = (struct policy_access){.cls = POLICY_SYSCALL,
				      .op = POLICY_CALL,
				      .addr = s->nr,
				      .vcpu = 0,
				      .dev = e ? e->name : NULL,
				      .args = s->a,
				      .paths = c->paths};
	c->r = c->logged = NULL;
	const char *kinds = e && e->args ? e->args : "";
	int dirfd = AT_FDCWD;
	for (int i = 0; kinds[i] && i < 6; i++) {
		switch (kinds[i]) {
		case 'd':
			dirfd = (int)s->a[i];
			break;
		case 's':
			add_path(p, c, dirfd, s->a[i]);
			dirfd = AT_FDCWD;
			break;
		case 'f':
			c->a.family = (int)s->a[i];
			break;
		case 'a':
			if (i < 5)
				add_sockaddr(p, c, s->a[i], s->a[i + 1]);
			break;
		case 'm':
			add_msghdr(p, c, s->a[i]);
			break;
		}
	}
	uint64_t wait = policy_limit(p->policy, &c->a, now_ns());
	if (wait) {
		struct timespec ts = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
		exec_unlock(p);
		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
			;
		exec_lock(p);
	}
	c->r = policy_match(p->policy, &c->a, &c->logged);
	if (!c->r || c->r->action == POLICY_ALLOW)
		return false;
	*ret = c->r->action == POLICY_MODIFY ? (int64_t)c->r->value : -(int64_t)c->r->err;
	policy_audit(p->policy, &c->a, (uint64_t)*ret, c->r);
	if (c->r->action == POLICY_STOP) {
		fprintf(stderr, "popek exec: stopped by policy rule on line %d (%s)\n", c->r->line,
			e && e->name ? e->name : "a system call");
		exec_exit(p, 72);
	}
	return true;
}

void exec_policy_done(struct xproc *p, const struct xcheck *c, int64_t ret)
{
	if (c->logged)
		policy_audit(p->policy, &c->a, (uint64_t)ret, c->logged);
}
