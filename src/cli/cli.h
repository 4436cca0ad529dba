#ifndef POPEK_CLI_H
#define POPEK_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "machine/config.h"

/* "512M", "2G", "65536", "4k" → bytes; -1 on a malformed or overflowing size. */
int parse_size(const char *s, uint64_t *out);

struct option;

/* Command-specific options for cli_parse: values >= 300, handled by fn. */
struct cli_extra {
	const struct option *opts;			/* terminated by a zeroed entry */
	int (*fn)(void *ctx, int opt, const char *arg); /* 0 or an exit code */
	void *ctx;
	bool no_boot_opts; /* refuse --kernel/--initrd/--cmdline/--mem/--cpus */
};

/* Parse options into cfg, plus one optional positional argument; returns 0
 * or EXIT_CODE_USAGE after printing why. */
int cli_parse(int argc, char **argv, struct vm_config *cfg, const struct cli_extra *x,
	      const char **positional);

/* Parse `popek run` options into cfg; returns 0, or EXIT_CODE_USAGE after printing why. */
int cli_parse_run(int argc, char **argv, struct vm_config *cfg);

struct snapshot;
struct mig_recv;
/* Create, (restore,) run and tear down one VM in this process — jailed, in a
 * child process, unless --no-jail. t0: when the command started, for the
 * report. incoming: a migration past its HELLO (snap is its snapshot): the
 * rest is received once the VM is built and jailed, and the source is
 * answered (migrate_handover); the VM runs only if the source lets it go. */
int cli_launch(struct vm_config *cfg, const struct snapshot *snap, uint64_t t0,
	       struct mig_recv *incoming);

int cmd_run(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_receive(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_vmctl(const char *cmd, int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_switch(int argc, char **argv);

struct json_object;
/* Send a request (consumed), with file descriptor pass_fd if >= 0, to VM name;
 * the parsed {"ok":true,...} reply or NULL. */
struct json_object *vm_request(const char *name, struct json_object *req, int pass_fd, bool quiet);
void cli_usage(FILE *f);

#endif
