/* cgroup limits (--cpu-quota, --mem-limit): a child of the caller's own cgroup
 * per VMM, on cgroup v2 (unified) or on the v1 cpu and memory hierarchies of a
 * hybrid host. Created by the parent of the jailed VMM, which moves the VMM in
 * and removes the cgroup when it ended. Not writable: the VM runs without. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/internal.h"

#define CGROOT	      "/sys/fs/cgroup"
#define CFS_PERIOD_US 100000

static int put_file(const char *dir, const char *file, const char *text)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return jail_write_text(path, text);
}

/* The caller's cgroup path in hierarchy `want` ("" = v2, else a v1 controller). */
static int own_cgroup(const char *want, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[512];
	int rc = -1;
	while (f && fgets(line, sizeof(line), f)) {
		char *ctrl = strchr(line, ':'), *path = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (!path)
			continue;
		*path++ = 0;
		path[strcspn(path, "\n")] = 0;
		ctrl++;
		bool match = !*want ? !*ctrl : false;
		for (char *c = strtok(ctrl, ","); *want && c; c = strtok(NULL, ","))
			match |= !strcmp(c, want);
		if (match) {
			snprintf(out, len, "%s", strcmp(path, "/") ? path : "");
			rc = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	return rc;
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int make(struct cgroup_set *cg, const char *hier, const char *ctrl, int tag)
{
	char own[256];
	if (own_cgroup(ctrl, own, sizeof(own)) < 0) {
		errno = ENOENT;
		return -1;
	}
	char *dir = cg->dir[cg->n];
	snprintf(dir, sizeof(cg->dir[0]), "%s%s/popek-%d", hier, own, tag);
	if (mkdir(dir, 0755) < 0)
		return -1;
	cg->n++;
	return 0;
}

void cgroup_create(const struct vm_config *cfg, int tag, struct cgroup_set *cg, char *desc,
		   size_t desclen)
{
	char v[64];
	cg->n = 0;
	if (!cfg->cpu_quota && !cfg->mem_limit) {
		snprintf(desc, desclen, "none");
		return;
	}
	const char *what = "";
	int rc = 0;
	if (is_dir(CGROOT "/cpu") || is_dir(CGROOT "/memory")) { /* v1 */
		if (cfg->cpu_quota) {
			what = "cpu";
			snprintf(v, sizeof(v), "%d", cfg->cpu_quota * (CFS_PERIOD_US / 100));
			rc = make(cg, CGROOT "/cpu", "cpu", tag) ||
			     put_file(cg->dir[cg->n - 1], "cpu.cfs_period_us", "100000") ||
			     put_file(cg->dir[cg->n - 1], "cpu.cfs_quota_us", v);
		}
		if (!rc && cfg->mem_limit) {
			what = "memory";
			snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->mem_limit);
			rc = make(cg, CGROOT "/memory", "memory", tag) ||
			     put_file(cg->dir[cg->n - 1], "memory.limit_in_bytes", v);
		}
	} else { /* v2: the limits need the controllers enabled for children */
		what = "cgroup v2";
		char parent[300];
		rc = make(cg, CGROOT, "", tag);
		if (!rc) {
			snprintf(parent, sizeof(parent), "%s", cg->dir[0]);
			*strrchr(parent, '/') = 0;
			rc = put_file(parent, "cgroup.subtree_control",
				      cfg->cpu_quota && cfg->mem_limit ? "+cpu +memory"
				      : cfg->cpu_quota		       ? "+cpu"
								       : "+memory");
		}
		if (!rc && cfg->cpu_quota) {
			snprintf(v, sizeof(v), "%d %d", cfg->cpu_quota * (CFS_PERIOD_US / 100),
				 CFS_PERIOD_US);
			rc = put_file(cg->dir[0], "cpu.max", v);
		}
		if (!rc && cfg->mem_limit) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)cfg->mem_limit);
			rc = put_file(cg->dir[0], "memory.max", v);
		}
	}
	if (rc) {
		snprintf(desc, desclen, "none: the host's %s cgroup is not writable (%s)", what,
			 strerror(errno));
		fprintf(stderr, "popek: jail: %s — the VM runs without cgroup limits\n", desc);
		cgroup_remove(cg);
		cg->n = 0;
		return;
	}
	snprintf(desc, desclen, "%s", cg->dir[0] + strlen(CGROOT));
	if (cg->n == 2)
		snprintf(desc + strlen(desc), desclen - strlen(desc), ",%s",
			 cg->dir[1] + strlen(CGROOT));
}

int cgroup_add(const struct cgroup_set *cg, pid_t pid, char *desc, size_t desclen)
{
	char v[32];
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (int i = 0; i < cg->n; i++)
		if (put_file(cg->dir[i], "cgroup.procs", v) < 0) {
			snprintf(desc, desclen, "none: cannot move the VMM into %s (%s)",
				 cg->dir[i], strerror(errno));
			return -1;
		}
	return 0;
}

void cgroup_remove(const struct cgroup_set *cg)
{
	for (int i = 0; i < cg->n; i++)
		rmdir(cg->dir[i]);
}
