/* popek run / popek restore: build a machine, serve its control channel, run it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/control.h"
#include "jail/jail.h"
#include "machine/machine.h"
#include "migrate/migrate.h"
#include "snapshot/snapshot.h"

int cli_launch(struct vm_config *cfg, const struct snapshot *snap, uint64_t t0,
	       struct mig_recv *incoming)
{
	static struct machine m; /* large (vCPU table); one per process */
	char err[512] = "", name[32];
	int rc;
	if (jail_spawn(cfg, &rc))
		return rc;
	if (!cfg->name) {
		snprintf(name, sizeof(name), "vm-%d", jail_host_pid());
		cfg->name = name;
	}
	rc = machine_create(&m, cfg, err, sizeof(err));
	if (!rc && snap && !incoming && snapshot_apply(snap, &m, err, sizeof(err)))
		rc = EXIT_CODE_IMAGE;
	/* Post-copy's holes are caught from here on; nothing touches them until go. */
	if (!rc && incoming && incoming->pc && postcopy_arm(incoming->pc, &m, err, sizeof(err)))
		rc = EXIT_CODE_HOST;
	struct control *ctl = NULL;
	if (!rc && !(ctl = control_open(&m, cfg->name, err, sizeof(err))))
		rc = EXIT_CODE_HOST;
	/* Everything that needs the host is open; no thread of ours runs yet. */
	if (!rc)
		rc = machine_jail(&m, err, sizeof(err));
	/* A migration's pages arrive while the VM was built and jailed (out of
	 * its downtime); the stream is read and checked here, in the jail. */
	if (!rc && incoming &&
	    (migrate_receive_rest(incoming, err, sizeof(err)) ||
	     snapshot_apply(snap, &m, err, sizeof(err))))
		rc = EXIT_CODE_IMAGE;
	if (!rc && control_start(ctl, err, sizeof(err)))
		rc = EXIT_CODE_HOST;
	if (incoming) {
		int conn = incoming->in.fd;
		if (rc)
			migrate_refuse(conn, err);
		else if (migrate_handover(conn, err, sizeof(err)) ||
			 machine_disks_lock(&m, 30, err, sizeof(err)))
			rc = EXIT_CODE_HOST;
		/* Post-copy: the rest of the pages come on it while the VM runs. */
		if (!rc && incoming->pc)
			rc = postcopy_start(incoming->pc, conn, err, sizeof(err)) ? EXIT_CODE_HOST
										  : 0;
		else
			close(conn);
	}
	if (rc) {
		control_stop(ctl);
		fprintf(stderr, "popek: %s\n", err);
		machine_destroy(&m);
		return rc;
	}
	if (incoming)
		fprintf(stderr,
			"popek: %s arrived, running on %s (%.1f ms after the stream began)\n",
			cfg->name, m.engine->name, (double)(monotonic_ns() - t0) / 1e6);
	else if (snap)
		fprintf(stderr,
			"popek: %s restored on %s in %.1f ms (to the first guest instruction)\n",
			cfg->name, m.engine->name, (double)(monotonic_ns() - t0) / 1e6);
	rc = machine_run(&m);
	if (incoming)
		postcopy_stop(incoming->pc);
	control_stop(ctl);
	machine_destroy(&m);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	int rc = cli_parse_run(argc, argv, &cfg);
	return rc ? rc : cli_launch(&cfg, NULL, 0, NULL);
}

/* --clones N: one process per clone, each with its own name and console. */
static int restore_clones(struct vm_config *cfg, const struct snapshot *s, int n, uint64_t t0)
{
	const char *base = cfg->name ? cfg->name : "clone";
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	int worst = 0;
	if (!pids)
		return EXIT_CODE_HOST;
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char name[CONTROL_NAME_MAX + 1], path[4200];
			snprintf(name, sizeof(name), "%.50s-%d", base, i + 1);
			cfg->name = name;
			if (cfg->console == CONSOLE_FILE) {
				snprintf(path, sizeof(path), "%s.%d", cfg->console_path, i + 1);
				cfg->console_path = path;
			}
			_exit(cli_launch(cfg, s, t0, NULL));
		}
		if (pids[i] < 0)
			fprintf(stderr, "popek: cannot start clone %d: %s\n", i + 1,
				strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		int st = 0;
		if (pids[i] > 0 && waitpid(pids[i], &st, 0) > 0) {
			int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (code && !worst)
				worst = code;
		} else if (!worst) {
			worst = EXIT_CODE_HOST;
		}
	}
	free(pids);
	return worst;
}

struct restore_opts {
	bool verify, force;
	int clones;
};

enum { O_NOVERIFY = 300, O_CLONES, O_FORCE };

static int restore_opt(void *ctx, int opt, const char *arg)
{
	struct restore_opts *r = ctx;
	char *end;
	if (opt == O_NOVERIFY || opt == O_FORCE) {
		r->verify &= opt != O_NOVERIFY;
		r->force |= opt == O_FORCE;
		return 0;
	}
	r->clones = (int)strtol(arg, &end, 10);
	if (*end || r->clones < 1 || r->clones > 256) {
		fprintf(stderr, "popek: --clones %s: need a number from 1 to 256\n", arg);
		return EXIT_CODE_USAGE;
	}
	return 0;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"no-verify", no_argument, NULL, O_NOVERIFY},
	    {"clones", required_argument, NULL, O_CLONES},
	    {"force", no_argument, NULL, O_FORCE},
	    {0},
	};
	uint64_t t0 = monotonic_ns();
	struct restore_opts ro = {.verify = true};
	struct cli_extra x = {.opts = opts, .fn = restore_opt, .ctx = &ro, .no_boot_opts = true};
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	cfg.engine = NULL; /* default: the engine the snapshot was taken on */
	const char *dir = NULL;
	int rc = cli_parse(argc, argv, &cfg, &x, &dir);
	if (rc)
		return rc;
	if (!dir) {
		fprintf(stderr, "popek: usage: popek restore DIR [options] — see 'popek help'\n");
		return EXIT_CODE_USAGE;
	}
	char err[600];
	struct snapshot *s = snapshot_open(dir, ro.verify, err, sizeof(err));
	if (!s || snapshot_check_disks(s, ro.force, err, sizeof(err))) {
		fprintf(stderr, "popek: %s\n", err);
		snapshot_close(s);
		return EXIT_CODE_IMAGE;
	}
	snapshot_config(s, &cfg);
	if (ro.clones) {
		rc = restore_clones(&cfg, s, ro.clones, t0);
		close(cfg.ram_fd);
	} else {
		rc = cli_launch(&cfg, s, t0, NULL);
	}
	snapshot_close(s);
	return rc;
}
