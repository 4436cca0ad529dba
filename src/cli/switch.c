/* popek switch PATH [--connect SOCK]...: run a learning Ethernet switch for
 * --net socket=PATH, with listening peers (passt) connected as ports. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "machine/machine.h"
#include "net/switch.h"

#define SWITCH_PEERS 8

int cmd_switch(int argc, char **argv)
{
	char *peers[SWITCH_PEERS];
	int npeers = 0;
	bool ok = argc >= 2 && argv[1][0] != '-';
	for (int i = 2; ok && i < argc; i += 2) {
		ok = i + 1 < argc && !strcmp(argv[i], "--connect") && npeers < SWITCH_PEERS;
		if (ok)
			peers[npeers++] = argv[i + 1];
	}
	if (!ok) {
		fprintf(stderr,
			"popek: usage: popek switch PATH [--connect SOCK]... (PATH: a Unix socket "
			"to create; SOCK: a listening peer such as passt, at most %d) — see 'popek "
			"help'\n",
			SWITCH_PEERS);
		return EXIT_CODE_USAGE;
	}
	char err[512] = "";
	int rc = switch_run(argv[1], peers, npeers, err, sizeof(err));
	if (rc)
		fprintf(stderr, "popek: %s\n", err);
	return rc;
}
