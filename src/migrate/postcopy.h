/* Post-copy, destination side (docs/migration.md, "--postcopy"): the pages
 * the source still has are holes in RAM, registered with userfaultfd before
 * the jail; once the VM runs, a thread of its own asks the source for each
 * page a vCPU or device touches first and fills the holes as the pages come. */
#ifndef POPEK_MIGRATE_POSTCOPY_H
#define POPEK_MIGRATE_POSTCOPY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/stream.h"

struct machine;

struct postcopy_in {
	uint64_t mem, words;
	uint64_t *want;	      /* pages DISCARD named that have not arrived */
	uint64_t *asked;      /* of those, pulled from the source already */
	uint64_t left;	      /* bits set in want */
	uint64_t discard_end; /* DISCARD runs come in order: the next starts here or later */
	uint64_t pushed, pulled, zeroed;
	int uffd;      /* -1 until armed */
	uint8_t *base; /* the machine's RAM mapping, registered with uffd */
	struct machine *m;
	struct mig_in in; /* the connection, from the handover on */
	uint8_t *buf;
	size_t cap;
	pthread_t thread;
	bool running;
	atomic_bool quit; /* the VM ended: the thread leaves without a word */
};

/* For a HELLO that says postcopy: a VM of mem bytes. NULL: out of memory. */
struct postcopy_in *postcopy_in_new(uint64_t mem);
/* One DISCARD record: its runs lie inside RAM, each is punched out of ram
 * (the receiver's mapping of the memfd) and wanted from the source. 0 or -1
 * with err (refused). */
int postcopy_discard(struct postcopy_in *pc, uint8_t *ram, const uint8_t *p, size_t len, char *err,
		     size_t errlen);
/* Before the jail: a userfaultfd on m's RAM (m->uffd, which the jail lets
 * the fault thread use). 0 or -1 with err naming why and the fix. */
int postcopy_arm(struct postcopy_in *pc, struct machine *m, char *err, size_t errlen);
/* One record after the handover, read from pc->in and put into RAM through
 * the userfaultfd: 1 at POSTCOPY_END (every discarded page came), 0 for
 * pages, -1 with err (a bad or broken stream). The fault thread's, and the
 * fuzz target's. */
int postcopy_record(struct postcopy_in *pc, char *err, size_t errlen);
/* After go: the fault thread serves faults and reads the pushed pages from
 * conn (owned from here) until POSTCOPY_END; a broken or bad stream stops
 * the VM with EXIT_CODE_HOST. 0 or -1 with err (nothing started). */
int postcopy_start(struct postcopy_in *pc, int conn, char *err, size_t errlen);
/* After the VM ended, before the machine goes: the thread, if it still
 * runs, leaves without a word. */
void postcopy_stop(struct postcopy_in *pc);
void postcopy_in_free(struct postcopy_in *pc);

#endif
