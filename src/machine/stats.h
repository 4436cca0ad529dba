/* --stats: every exit and trap the VM took, by reason, as one JSON object. */
#ifndef POPEK_STATS_H
#define POPEK_STATS_H

#include "machine/machine.h"

/* Returns a malloc'ed JSON string. */
char *machine_stats_json(struct machine *m, double wall_seconds);

#endif
