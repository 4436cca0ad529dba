/* popek-oci's command line: runc's global options, then a subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/machine.h"
#include "oci/oci.h"

struct oci_globals oci_g = {.root = "/run/popek-oci"};

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
    {"create", oci_create}, {"start", oci_start},	{"state", oci_state}, {"kill", oci_kill},
    {"delete", oci_delete}, {"exec", oci_exec},		{"ps", oci_ps},	      {"pause", oci_pause},
    {"resume", oci_pause},  {"features", oci_features},
};

static void usage(FILE *f)
{
	fprintf(f,
		"popek-oci %s — an OCI runtime that runs each container in a popek VM\n"
		"\n"
		"usage: popek-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug] "
		"COMMAND ...\n"
		"  create --bundle DIR [--pid-file F] [--console-socket S] ID\n"
		"  start ID | state ID | pause ID | resume ID | ps [--format json] ID\n"
		"  kill [--all] ID [SIGNAL]       (default SIGTERM; number or name)\n"
		"  delete [--force] ID\n"
		"  exec --process P.json [--detach] [--pid-file F] [--tty] [--console-socket S] "
		"ID\n"
		"  features | --version\n"
		"Containers live under --root (default /run/popek-oci); docs/oci.md.\n",
		POPEK_VERSION);
}

/* "--opt value" or "--opt=value" (also with one dash, as runc's parser allows). */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	while (*a == '-')
		a++;
	size_t n = strlen(name);
	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] == 0 && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

int oci_main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *v;
		const char *a = argv[i];
		if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
			printf("popek-oci version %s\nspec: %s\n", POPEK_VERSION, OCI_VERSION);
			return 0;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--debug")) {
			oci_g.debug = true;
		} else if (!strcmp(a, "--systemd-cgroup") || !strcmp(a, "--rootless=false")) {
			/* cgroups belong to the VM's jail, not to the container */
		} else if ((v = opt_value(argc, argv, &i, "root"))) {
			oci_g.root = v;
		} else if ((v = opt_value(argc, argv, &i, "log-format"))) {
			if (strcmp(v, "json") && strcmp(v, "text")) {
				fprintf(stderr, "popek-oci: --log-format %s: use text or json\n",
					v);
				return EXIT_CODE_USAGE;
			}
			oci_g.json_log = !strcmp(v, "json");
		} else if ((v = opt_value(argc, argv, &i, "log"))) {
			oci_g.log = v;
		} else if ((v = opt_value(argc, argv, &i, "criu")) ||
			   (v = opt_value(argc, argv, &i, "rootless"))) {
			/* accepted for compatibility; nothing to do in a VM */
		} else {
			oci_error("unknown global option %s — see 'popek-oci --help'", a);
			return EXIT_CODE_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_CODE_USAGE;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(argv[i], commands[k].name))
			return commands[k].fn(argc - i, argv + i);
	oci_error("unknown command '%s' — see 'popek-oci --help'", argv[i]);
	return EXIT_CODE_USAGE;
}

/* Subcommand options: "--name value", "--name=value" or a flag. Returns the
 * index of the first positional argument, or -1 after reporting an error. */
int oci_parse_opts(int argc, char **argv, const struct opt *opts, size_t nopts)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i] + 1;
		if (*a == '-')
			a++;
		if (!*a) {
			i++;
			break; /* "--": the rest is positional */
		}
		const struct opt *o = NULL;
		size_t n = strcspn(a, "=");
		for (size_t k = 0; k < nopts && !o; k++)
			if ((strlen(opts[k].name) == n && !strncmp(a, opts[k].name, n)) ||
			    (n == 1 && opts[k].shortname == a[0]))
				o = &opts[k];
		if (!o) {
			oci_error("%s: unknown option %s", argv[0], argv[i]);
			return -1;
		}
		if (o->flag) {
			*o->flag = a[n] != '=' || strcmp(a + n + 1, "false");
		} else if (a[n] == '=') {
			*o->val = a + n + 1;
		} else if (i + 1 < argc) {
			*o->val = argv[++i];
		} else {
			oci_error("%s: option %s needs a value", argv[0], argv[i]);
			return -1;
		}
	}
	return i;
}

/* The container ID: the one positional argument (exec and kill take more). */
const char *oci_id_arg(int argc, char **argv, int i, int max_extra)
{
	if (i >= argc) {
		oci_error("%s: the container ID is missing", argv[0]);
		return NULL;
	}
	if (argc - i - 1 > max_extra) {
		oci_error("%s: unexpected argument %s", argv[0], argv[i + 1 + max_extra]);
		return NULL;
	}
	if (!state_id_valid(argv[i])) {
		oci_error("invalid container id '%s'", argv[i]);
		return NULL;
	}
	return argv[i];
}
