#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/linux.h"
#include "cli/cli.h"
#include "control/control.h"
#include "devices/disk_format.h"
#include "machine/machine.h"
#include "net/net.h"
#include "policy/policy.h"

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' || *end == 'B' || *end == 'b')
		end += (*end == 'i' && (end[1] == 'B' || end[1] == 'b')) ? 2 : 1;
	if (*end || (shift && v > (~0ull >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* FILE, FILE,ro or socket=PATH. The suffix is cut off in place: optarg lives
 * in argv. The path is made absolute here, while the host's tree is in reach:
 * snapshots of a jailed VMM record it. The image's format is read from its
 * header now, so everything after knows what serves the disk. */
static int parse_disk(char *arg, struct vm_config *cfg)
{
	static char real[MAX_DISKS][PATH_MAX];
	if (cfg->ndisks == MAX_DISKS)
		return -1;
	struct disk_config *d = &cfg->disk[cfg->ndisks];
	/* Options trail the path (which may hold commas): ,ro and ,format=raw. */
	for (char *opt; (opt = strrchr(arg, ',')) && opt != arg;) {
		if (!strcmp(opt, ",ro"))
			d->ro = true;
		else if (!strcmp(opt, ",format=raw"))
			d->format_raw = true;
		else
			break;
		*opt = '\0';
	}
	d->kind = strncmp(arg, "socket=", 7) ? DISK_RAW : DISK_SOCKET;
	if (d->kind == DISK_SOCKET)
		arg += 7;
	/* ro with a socket would be the user's backend's to enforce, not popek's. */
	if (!*arg || (d->kind == DISK_SOCKET && (d->ro || d->format_raw)))
		return -1;
	d->path = realpath(arg, real[cfg->ndisks]) ? real[cfg->ndisks] : arg;
	d->format = d->kind == DISK_RAW && !d->format_raw ? disk_format_detect(d->path) : NULL;
	if (d->format)
		d->kind = DISK_IMAGE;
	cfg->ndisks++;
	return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "popek: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " — see 'popek help'\n");
	return EXIT_CODE_USAGE;
}

/* --policy FILE / --audit FILE: one policy per process, refused here,
 * before anything is built, if malformed. */
static struct policy *the_policy(struct vm_config *cfg)
{
	static struct policy p = {.audit_fd = -1};
	cfg->policy = &p;
	return &p;
}

static int parse_policy(const char *path, struct vm_config *cfg)
{
	char err[512];
	if (policy_load(the_policy(cfg), path, err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "popek: %s\n", err);
	return EXIT_CODE_USAGE;
}

static int open_audit(const char *path, struct vm_config *cfg)
{
	struct policy *p = the_policy(cfg);
	if (p->audit_fd >= 0)
		close(p->audit_fd);
	p->audit_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (p->audit_fd >= 0)
		return 0;
	fprintf(stderr, "popek: --audit %s: %s\n", path, strerror(errno));
	return EXIT_CODE_USAGE;
}

/* --net SPEC (several allowed), or --net none. */
static int parse_net(char *arg, struct vm_config *cfg)
{
	char err[512];
	if (!strcmp(arg, "none")) {
		cfg->no_net = true;
		cfg->nnics = 0;
		return 0;
	}
	if (cfg->nnics == MAX_NICS) {
		fprintf(stderr, "popek: --net %s: at most %d NICs\n", arg, MAX_NICS);
		return -1;
	}
	if (net_config_parse(arg, &cfg->nic[cfg->nnics], err, sizeof(err))) {
		fprintf(stderr, "popek: %s — see docs/networking.md\n", err);
		return -1;
	}
	cfg->nnics++;
	cfg->no_net = false;
	return 0;
}

static int unknown_device(const char *name)
{
	fprintf(stderr, "popek: --device %s: unknown device; known:", name);
	for (int i = 0; i < NR_OPTIONAL_DEVICES; i++)
		fprintf(stderr, " %s", optional_device_names[i]);
	fprintf(stderr, " — see 'popek help'\n");
	return EXIT_CODE_USAGE;
}

/* Options shared by run and restore; boot options (kernel, memory, CPUs)
 * only where the VM is being built from scratch. */
/* --fs HOSTDIR,tag=TAG[,ro] | socket=PATH,tag=TAG; optarg is edited in place. */
static int parse_fs(char *arg, struct vm_config *cfg)
{
	if (cfg->nfs == MAX_FS)
		return -1;
	struct fs_config *f = &cfg->fs[cfg->nfs];
	memset(f, 0, sizeof(*f));
	char *save = NULL;
	for (char *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strncmp(t, "tag=", 4) && t[4] && strlen(t + 4) <= FS_TAG_MAX)
			strcpy(f->tag, t + 4);
		else if (!strncmp(t, "socket=", 7) && t[7] && !f->dir)
			f->socket = t + 7;
		else if (!strcmp(t, "ro"))
			f->ro = true;
		else if (t == arg && !strchr(t, '='))
			f->dir = t;
		else
			return -1;
	}
	/* ro is virtiofsd's to enforce: only for a share popek starts. */
	if (!f->tag[0] || !f->dir == !f->socket || (f->ro && f->socket))
		return -1;
	cfg->nfs++;
	return 0;
}

/* --vsock cid=N,uds=PATH; optarg is edited in place. CIDs 0-2 are the
 * hypervisor's and the host's, ~0 is VMADDR_CID_ANY. */
static int parse_vsock(char *arg, struct vm_config *cfg)
{
	struct vsock_config *v = &cfg->vsock;
	char *save = NULL, *end;
	*v = (struct vsock_config){0};
	for (char *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strncmp(t, "cid=", 4)) {
			errno = 0;
			unsigned long cid = strtoul(t + 4, &end, 10);
			if (errno || *end || t[4] < '0' || t[4] > '9' || cid < 3 ||
			    cid >= 0xffffffff)
				return -1;
			v->cid = (uint32_t)cid;
		} else if (!strncmp(t, "uds=", 4) && t[4]) {
			v->uds = t + 4;
		} else {
			return -1;
		}
	}
	return v->cid && v->uds ? 0 : -1;
}

int cli_parse(int argc, char **argv, struct vm_config *cfg, const struct cli_extra *x,
	      const char **positional)
{
	enum {
		O_KERNEL = 256,
		O_INITRD,
		O_CMDLINE,
		O_MEM,
		O_CPUS,
		O_ENGINE,
		O_CONSOLE,
		O_STATS,
		O_NAME,
		O_DISK,
		O_POLICY,
		O_AUDIT,
		O_DEVICE,
		O_JAIL,
		O_NO_JAIL,
		O_CPU_QUOTA,
		O_MEM_LIMIT,
		O_MEM_HUGEPAGES,
		O_JIT,
		O_NET,
		O_FS,
		O_VSOCK,
		O_VERBOSE,
		O_DECOMPRESS,
		O_KERNEL_CACHE,
		NR_COMMON
	};
	static const struct option common[] = {
	    {"engine", required_argument, NULL, O_ENGINE},
	    {"console", required_argument, NULL, O_CONSOLE},
	    {"stats", no_argument, NULL, O_STATS},
	    {"name", required_argument, NULL, O_NAME},
	    {"policy", required_argument, NULL, O_POLICY},
	    {"audit", required_argument, NULL, O_AUDIT},
	    {"disk", required_argument, NULL, O_DISK},
	    {"device", required_argument, NULL, O_DEVICE},
	    {"jail", no_argument, NULL, O_JAIL},
	    {"no-jail", no_argument, NULL, O_NO_JAIL},
	    {"cpu-quota", required_argument, NULL, O_CPU_QUOTA},
	    {"mem-limit", required_argument, NULL, O_MEM_LIMIT},
	    {"jit", required_argument, NULL, O_JIT},
	    {"net", required_argument, NULL, O_NET},
	    {"fs", required_argument, NULL, O_FS},
	    {"vsock", required_argument, NULL, O_VSOCK},
	    {"kernel", required_argument, NULL, O_KERNEL},
	    {"initrd", required_argument, NULL, O_INITRD},
	    {"cmdline", required_argument, NULL, O_CMDLINE},
	    {"mem", required_argument, NULL, O_MEM},
	    {"cpus", required_argument, NULL, O_CPUS},
	    {"mem-hugepages", no_argument, NULL, O_MEM_HUGEPAGES},
	    {"verbose", no_argument, NULL, O_VERBOSE},
	    {"decompress", required_argument, NULL, O_DECOMPRESS},
	    {"kernel-cache", required_argument, NULL, O_KERNEL_CACHE},
	};
	const size_t ncommon = sizeof(common) / sizeof(common[0]), nboot = 12; /* from --net on */
	struct option opts[32];
	size_t n = 0;
	for (size_t i = 0; i < ncommon; i++)
		if (!(x && x->no_boot_opts && i >= ncommon - nboot))
			opts[n++] = common[i];
	for (size_t i = 0; x && x->opts && x->opts[i].name && n < 31; i++)
		opts[n++] = x->opts[i];
	opts[n] = (struct option){0};
	optind = 1;
	opterr = 0;
	for (;;) {
		int o = getopt_long(argc, argv, "", opts, NULL);
		if (o < 0)
			break;
		char *end;
		switch (o) {
		case O_KERNEL:
			cfg->kernel = optarg;
			break;
		case O_INITRD:
			cfg->initrd = optarg;
			break;
		case O_CMDLINE:
			cfg->cmdline = optarg;
			break;
		case O_MEM:
			if (parse_size(optarg, &cfg->mem))
				return usage_error("--mem %s: not a size (use e.g. 512M or 2G)",
						   optarg);
			cfg->mem_set = true;
			break;
		case O_MEM_HUGEPAGES:
			cfg->mem_hugepages = true;
			break;
		case O_VERBOSE:
			cfg->verbose = true;
			break;
		case O_DECOMPRESS:
			if (strcmp(optarg, "host") && strcmp(optarg, "guest"))
				return usage_error("--decompress %s: use host or guest", optarg);
			cfg->guest_decompress = !strcmp(optarg, "guest");
			break;
		case O_KERNEL_CACHE:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return usage_error("--kernel-cache %s: use on or off", optarg);
			cfg->no_kernel_cache = !strcmp(optarg, "off");
			break;
		case O_CPUS:
			errno = 0;
			cfg->cpus = (int)strtol(optarg, &end, 10);
			if (errno || *end || cfg->cpus < 1 || cfg->cpus > MAX_VCPUS)
				return usage_error("--cpus %s: need a number from 1 to 64", optarg);
			break;
		case O_ENGINE:
			if (strcmp(optarg, "kvm") && strcmp(optarg, "soft") &&
			    strcmp(optarg, "auto"))
				return usage_error("--engine %s: choose kvm, soft or auto", optarg);
			cfg->engine = optarg;
			break;
		case O_CONSOLE:
			if (!strcmp(optarg, "stdio")) {
				cfg->console = CONSOLE_STDIO;
			} else if (!strncmp(optarg, "file:", 5) && optarg[5]) {
				cfg->console = CONSOLE_FILE;
				cfg->console_path = optarg + 5;
			} else {
				return usage_error("--console %s: use stdio or file:PATH", optarg);
			}
			break;
		case O_DISK:
			if (parse_disk(optarg, cfg))
				return usage_error(
				    "--disk %s: use FILE[,ro][,format=raw] or socket=PATH (a "
				    "vhost-user-blk backend's own options decide ro; at most 8 "
				    "disks)",
				    optarg);
			break;
		case O_DEVICE: {
			int dev = optional_device_find(optarg);
			if (dev < 0)
				return unknown_device(optarg);
			cfg->device[dev] = true;
			break;
		}
		case O_STATS:
			cfg->stats = true;
			break;
		case O_JIT:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return usage_error("--jit %s: use on or off", optarg);
			cfg->jit = !strcmp(optarg, "on");
			break;
		case O_POLICY:
			if (parse_policy(optarg, cfg))
				return EXIT_CODE_USAGE;
			break;
		case O_AUDIT:
			if (open_audit(optarg, cfg))
				return EXIT_CODE_USAGE;
			break;
		case O_JAIL:
		case O_NO_JAIL:
			cfg->jail = o == O_JAIL;
			cfg->jail_set = o == O_JAIL;
			break;
		case O_CPU_QUOTA:
			errno = 0;
			cfg->cpu_quota = (int)strtol(optarg, &end, 10);
			if (errno || *end || cfg->cpu_quota < 1 || cfg->cpu_quota > MAX_VCPUS * 100)
				return usage_error(
				    "--cpu-quota %s: need a percentage of one CPU from 1 to 6400",
				    optarg);
			break;
		case O_MEM_LIMIT:
			if (parse_size(optarg, &cfg->mem_limit) || cfg->mem_limit < (1u << 20))
				return usage_error("--mem-limit %s: not a size of at least 1M",
						   optarg);
			break;
		case O_NAME:
			if (!control_name_valid(optarg))
				return usage_error(
				    "--name %s: use 1-64 letters, digits, '.', '_' or '-'", optarg);
			cfg->name = optarg;
			break;
		case O_NET:
			if (parse_net(optarg, cfg))
				return EXIT_CODE_USAGE;
			break;
		case O_FS:
			if (parse_fs(optarg, cfg))
				return usage_error("--fs %s: use HOSTDIR,tag=TAG[,ro] or "
						   "socket=PATH,tag=TAG (a tag of 1-36 bytes, at "
						   "most 4 shares)",
						   optarg);
			break;
		case O_VSOCK:
			if (parse_vsock(optarg, cfg))
				return usage_error("--vsock %s: use cid=N,uds=PATH (N from 3 to "
						   "4294967294; see docs/vsock.md)",
						   optarg);
			break;
		default:
			if (o >= NR_COMMON && x && x->fn) {
				int rc = x->fn(x->ctx, o, optarg);
				if (rc)
					return rc;
				break;
			}
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (positional && optind < argc)
		*positional = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

/* The default image (make image): $POPEK_IMAGES, else images/ beside the
 * build/ directory that holds this binary. */
static int default_image(struct vm_config *cfg)
{
	static char kernel[PATH_MAX], initrd[PATH_MAX];
	char dir[PATH_MAX];
	const char *env = getenv("POPEK_IMAGES");
	if (env && *env) {
		snprintf(dir, sizeof(dir), "%s", env);
	} else {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 32);
		if (n <= 0)
			return -1;
		dir[n] = 0;
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = 0;
		strcat(dir, "/../images");
	}
	snprintf(kernel, sizeof(kernel), "%.*s/vmlinux", PATH_MAX - 16, dir);
	snprintf(initrd, sizeof(initrd), "%.*s/initramfs.cpio.gz", PATH_MAX - 32, dir);
	if (access(kernel, R_OK) || access(initrd, R_OK)) {
		fprintf(stderr,
			"popek: no --kernel given and the default image is missing (%s) — run "
			"'make image' or pass --kernel FILE\n",
			kernel);
		return -1;
	}
	cfg->kernel = kernel;
	if (!cfg->initrd)
		cfg->initrd = initrd;
	if (!cfg->mem_set)
		cfg->mem = 256ull << 20;
	/* The default image has a network unless --net none. */
	static char user[] = "user";
	if (!cfg->nnics && !cfg->no_net && net_config_parse(user, &cfg->nic[0], dir, sizeof(dir)))
		return -1;
	if (!cfg->nnics && !cfg->no_net)
		cfg->nnics = 1;
	return 0;
}

/* The command line of a Linux kernel (the default image's among them) when
 * --cmdline does not give one: without console= Linux prints nothing.
 * cryptomgr.notests: the kernel's boot-time self-tests of its crypto
 * algorithms cost ~10 s on the soft engine and test nothing of ours. */
#define LINUX_CMDLINE "console=ttyS0 panic=-1 cryptomgr.notests"

/* No --cmdline: the kernel's default (LINUX_CMDLINE for Linux, none for
 * others); --cmdline +ARGS: that default, then ARGS. */
static int resolve_cmdline(struct vm_config *cfg)
{
	static char joined[8192];
	const char *c = cfg->cmdline;
	if (c && c[0] != '+')
		return 0;
	const char *def = linux_probe_file(cfg->kernel) ? LINUX_CMDLINE : NULL;
	if (!c) {
		cfg->cmdline = def;
		return 0;
	}
	int n = snprintf(joined, sizeof(joined), "%s%s%s", def ? def : "", def && c[1] ? " " : "",
			 c + 1);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return usage_error("--cmdline %.40s...: too long", c);
	cfg->cmdline = joined;
	return 0;
}

int cli_parse_run(int argc, char **argv, struct vm_config *cfg)
{
	int rc = cli_parse(argc, argv, cfg, NULL, NULL);
	if (rc)
		return rc;
	if (!cfg->kernel && default_image(cfg))
		return EXIT_CODE_USAGE;
	return resolve_cmdline(cfg);
}
