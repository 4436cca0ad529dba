/* popek switch PATH: run a learning Ethernet switch for --net socket=PATH. */
#include <stdio.h>

#include "cli/cli.h"
#include "machine/machine.h"
#include "net/switch.h"

int cmd_switch(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "popek: usage: popek switch PATH (a Unix socket to create) — see "
				"'popek help'\n");
		return EXIT_CODE_USAGE;
	}
	char err[512] = "";
	int rc = switch_run(argv[1], err, sizeof(err));
	if (rc)
		fprintf(stderr, "popek: %s\n", err);
	return rc;
}
