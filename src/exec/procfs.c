/* The program's /proc/self. popek's own is hidden (fs.c): the program sees
 * what popek knows of it instead. exe, cwd and fd/N are links to guest
 * paths (a pipe or socket shows as the host names it, pipe:[N]); maps lists
 * the page tables' runs of pages, which are the program's only mappings
 * (mm.c), with [heap], [stack] and [popek-ring] named; fd lists the descriptors. Files
 * are built when opened, as Linux's are read: a memfd of the text. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "exec/exec.h"

int proc_self(const char *g, const char **rest)
{
	char own[32];
	snprintf(own, sizeof(own), "/proc/%d", (int)getpid());
	const char *names[] = {"/proc/self", "/proc/thread-self", own};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		if (!strncmp(g, names[i], n) && (g[n] == '/' || !g[n])) {
			*rest = g[n] ? g + n + 1 : g + n;
			return 1;
		}
	}
	return 0;
}

struct maps {
	FILE *f;
	const struct mm *mm;
};

static void map_line(void *ctx, uint64_t start, uint64_t end, int prot)
{
	struct maps *m = ctx;
	const char *name = "";
	if (end > X_STACK_TOP - X_STACK_SIZE && start < X_STACK_TOP)
		name = "[stack]";
	else if (m->mm->brk_start && start >= m->mm->brk_start && end <= XPAGE_UP(m->mm->brk))
		name = "[heap]";
	else if (start >= X_RING_VA)
		name = "[popek-ring]"; /* the call ring's pages (ring.c), as Linux names [vdso] */
	fprintf(m->f, "%08llx-%08llx %c%c%cp 00000000 00:00 0%*s%s\n", (unsigned long long)start,
		(unsigned long long)end, prot & PROT_READ ? 'r' : '-',
		prot & PROT_WRITE ? 'w' : '-', prot & PROT_EXEC ? 'x' : '-', *name ? 26 : 0, "",
		name);
}

/* One dirent64 record for a listing. */
static void dirent_(FILE *f, uint64_t ino, const char *name, unsigned char type, int64_t *off)
{
	struct {
		uint64_t ino;
		int64_t off;
		uint16_t reclen;
		uint8_t type;
		char name[21];
	} d = {.ino = ino, .off = ++*off, .type = type};
	snprintf(d.name, sizeof(d.name), "%s", name);
	size_t len = offsetof(__typeof__(d), name) + strlen(d.name) + 1;
	d.reclen = (uint16_t)((len + 7) & ~7u);
	fwrite(&d, 1, d.reclen, f);
}

int proc_listing(struct xproc *p, char **buf, size_t *len)
{
	FILE *f = open_memstream(buf, len);
	if (!f)
		return -ENOMEM;
	int64_t off = 0;
	dirent_(f, 1, ".", DT_DIR, &off);
	dirent_(f, 1, "..", DT_DIR, &off);
	for (int i = 0; i < X_MAX_FDS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d", i);
		if (p->fd[i].host >= 0)
			dirent_(f, 100 + (uint64_t)i, name, DT_LNK, &off);
	}
	return fclose(f) ? -ENOMEM : 0;
}

int proc_open(struct xproc *p, const char *rest, int flags)
{
	if (!*rest || !strcmp(rest, "fd")) /* fstat sees a directory; getdents the listing */
		return open(!*rest ? "/proc/self" : "/proc/self/fd",
			    (flags & O_PATH ? O_PATH : O_RDONLY) | O_DIRECTORY | O_CLOEXEC);
	if (!strncmp(rest, "fd/", 3)) {
		char *end;
		long fd = strtol(rest + 3, &end, 10);
		if (*end || end == rest + 3 || fd < 0 || fd >= X_MAX_FDS || p->fd[fd].host < 0)
			return -ENOENT;
		/* lstat sees the link: the host's own, opened only to be looked at */
		if ((flags & (O_PATH | O_NOFOLLOW)) == (O_PATH | O_NOFOLLOW) || !p->fd[fd].path) {
			char link[64];
			if (!(flags & O_PATH))
				return -ENXIO; /* a pipe or socket is not reopened by name */
			snprintf(link, sizeof(link), "/proc/self/fd/%d", p->fd[fd].host);
			return open(link, O_PATH | (flags & O_NOFOLLOW) | O_CLOEXEC);
		}
		return fs_open(p, AT_FDCWD, p->fd[fd].path, flags, 0, false);
	}
	if (!strcmp(rest, "exe") || !strcmp(rest, "cwd")) {
		char target[4096];
		int n = proc_readlink(p, rest, target, sizeof(target) - 1);
		if (n < 0)
			return n;
		target[n] = 0;
		return fs_open(p, AT_FDCWD, target, flags, 0, false);
	}
	if (strcmp(rest, "maps"))
		return -ENOENT; /* what popek does not answer, the program does not see */
	int h = memfd_create("popek-proc", MFD_CLOEXEC);
	FILE *f = h < 0 ? NULL : fdopen(dup(h), "w");
	if (!f) {
		if (h >= 0)
			close(h);
		return -ENOMEM;
	}
	struct maps m = {f, &p->mm};
	mm_ranges(&p->mm, map_line, &m);
	fclose(f);
	lseek(h, 0, SEEK_SET); /* the stream moved the shared offset */
	return h;
}

int proc_readlink(struct xproc *p, const char *rest, char *out, size_t len)
{
	const char *t = NULL;
	char host[4096];
	if (!strcmp(rest, "exe")) {
		t = p->exe;
	} else if (!strcmp(rest, "cwd")) {
		t = p->cwd;
	} else if (!strncmp(rest, "fd/", 3)) {
		char *end;
		long fd = strtol(rest + 3, &end, 10);
		if (*end || end == rest + 3 || fd < 0 || fd >= X_MAX_FDS || p->fd[fd].host < 0)
			return -ENOENT;
		t = p->fd[fd].path;
		if (!t) { /* a pipe, socket or the terminal: as the host names it */
			char link[64];
			snprintf(link, sizeof(link), "/proc/self/fd/%d", p->fd[fd].host);
			ssize_t n = readlink(link, host, sizeof(host) - 1);
			if (n < 0)
				return -errno;
			host[n] = 0;
			t = host;
		}
	} else {
		return -EINVAL;
	}
	size_t n = strlen(t);
	if (n > len)
		n = len;
	memcpy(out, t, n);
	return (int)n;
}
