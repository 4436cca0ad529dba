/* popek exec [options] -- PROGRAM [ARGS...]: the command line into
 * struct exec_options, then src/exec/ runs the program. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "exec/exec.h"

extern char **environ;

enum { O_ENGINE = 300, O_ROOT, O_BIND, O_POLICY, O_AUDIT, O_MEM, O_ENV, O_CWD, O_STRACE, O_STATS };

static const struct option opts[] = {
    {"engine", required_argument, NULL, O_ENGINE},
    {"root", required_argument, NULL, O_ROOT},
    {"bind", required_argument, NULL, O_BIND},
    {"policy", required_argument, NULL, O_POLICY},
    {"mem", required_argument, NULL, O_MEM},
    {"env", required_argument, NULL, O_ENV},
    {"cwd", required_argument, NULL, O_CWD},
    {"strace", no_argument, NULL, O_STRACE},
    {"stats", no_argument, NULL, O_STATS},
    {"audit", required_argument, NULL, O_AUDIT},
    {NULL, 0, NULL, 0},
};

static int usage(const char *why, const char *arg)
{
	fprintf(stderr,
		"popek exec: %s%s%s — usage: popek exec [--engine kvm|soft|auto] [--root DIR] "
		"[--bind HOST:GUEST[:rw]]... [--policy FILE] [--audit FILE] [--mem SIZE] "
		"[--env K=V]... [--cwd DIR] "
		"[--strace] [--stats] -- PROGRAM [ARGS...]\n",
		why, arg ? " " : "", arg ? arg : "");
	return XEXIT_USAGE;
}

/* HOST:GUEST[:rw|:ro], cut in place (arg lives in argv). */
static int parse_bind(struct exec_options *o, char *arg)
{
	if (o->nbinds == X_MAX_BINDS)
		return usage("too many --bind options (at most 16)", NULL);
	char *guest = strchr(arg, ':');
	if (!guest || guest == arg || !guest[1])
		return usage("--bind wants HOST:GUEST[:rw], not", arg);
	*guest++ = '\0';
	char *mode = strchr(guest, ':');
	bool rw = false;
	if (mode) {
		*mode++ = '\0';
		if (!strcmp(mode, "rw"))
			rw = true;
		else if (strcmp(mode, "ro"))
			return usage("--bind mode must be rw or ro, not", mode);
	}
	o->bind[o->nbinds].host = arg;
	o->bind[o->nbinds].guest = guest;
	o->bind[o->nbinds].rw = rw;
	o->nbinds++;
	return 0;
}

int cmd_exec(int argc, char **argv)
{
	static struct exec_options o;
	memset(&o, 0, sizeof(o));
	o.mem = 1ull << 30;
	size_t nenv = 0, nextra = 0;
	for (char **e = environ; *e; e++)
		nenv++;
	/* --env entries first: getenv finds the first of a name */
	const char **env = calloc(nenv + (size_t)argc + 1, sizeof(*env));
	if (!env)
		return XEXIT_HOST;
	o.env = env;
	optind = 1;
	int c, rc = 0;
	/* '+': stop at the program's name, its options are its own */
	while (!rc && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case O_ENGINE:
			if (strcmp(optarg, "kvm") && strcmp(optarg, "soft") &&
			    strcmp(optarg, "auto"))
				rc = usage("--engine must be kvm, soft or auto, not", optarg);
			o.engine = optarg;
			break;
		case O_ROOT:
			o.root = optarg;
			break;
		case O_BIND:
			rc = parse_bind(&o, optarg);
			break;
		case O_POLICY:
			o.policy = optarg;
			break;
		case O_AUDIT:
			o.audit = optarg;
			break;
		case O_MEM:
			if (parse_size(optarg, &o.mem) || o.mem < (16u << 20) ||
			    o.mem > (3ull << 30))
				rc = usage("--mem must be a size from 16M to 3G, not", optarg);
			break;
		case O_ENV:
			if (!strchr(optarg, '='))
				rc = usage("--env wants K=V, not", optarg);
			env[nextra++] = optarg;
			break;
		case O_CWD:
			o.cwd = optarg;
			break;
		case O_STRACE:
			o.strace = true;
			break;
		case O_STATS:
			o.stats = true;
			break;
		default:
			rc = XEXIT_USAGE;
		}
	}
	if (!rc && optind >= argc)
		rc = usage("no program given", NULL);
	memcpy(env + nextra, environ, nenv * sizeof(*env));
	if (!rc) {
		o.program = argv[optind];
		o.argv = argv + optind;
		rc = exec_main(&o);
	}
	free(env);
	return rc;
}
