#ifndef POPEK_CLI_H
#define POPEK_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "machine/config.h"

/* "512M", "2G", "65536", "4k" → bytes; -1 on a malformed or overflowing size. */
int parse_size(const char *s, uint64_t *out);

/* Parse `popek run` options into cfg; returns 0, or EXIT_CODE_USAGE after printing why. */
int cli_parse_run(int argc, char **argv, struct vm_config *cfg);

int cmd_run(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_vmctl(const char *cmd, int argc, char **argv);
void cli_usage(FILE *f);

#endif
