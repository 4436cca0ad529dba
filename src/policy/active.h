/* The policy a running VM uses, replaceable while it runs (`popek policy NAME
 * FILE`). Readers (every thread that interposes an action) take it without a
 * lock: each thread has a reader slot whose counter is odd while it holds a
 * policy. A replacement swaps one atomic pointer and frees the old policy
 * only after every slot that was odd has moved on (a grace period), so no
 * action sees half of two policies and none sees a freed one. */
#ifndef POPEK_POLICY_ACTIVE_H
#define POPEK_POLICY_ACTIVE_H

#include <stddef.h>

struct policy;
struct policy_events;
struct policy_active;

/* Start with a copy of initial (NULL: no rules); installed policies deliver
 * their events to ev (may be NULL: the audit log is then written directly). */
struct policy_active *policy_active_create(const struct policy *initial, struct policy_events *ev);
void policy_active_destroy(struct policy_active *a);

/* The policy to use for one action, never NULL, valid until policy_leave.
 * Nests; must not be held across a wait for another thread's action. */
const struct policy *policy_enter(struct policy_active *a);
void policy_leave(void);
/* The classes the active policy has rules for or a trace client watches (a
 * bit per class): an action of a class in neither needs no policy_enter, so
 * it costs two loads. An action that finds its class unwatched while a
 * replacement adds rules for it runs as one begun before the replacement. */
unsigned policy_active_watched(const struct policy_active *a);

/* Install p (malloc'ed, owned from now on) and free the one it replaces once
 * no reader can still use it. Not from inside policy_enter. */
void policy_replace(struct policy_active *a, struct policy *p);
/* The active policy in canonical form (policy_format: malloc'ed, "" for
 * no rules; NULL without memory). */
char *policy_active_text(struct policy_active *a);
/* Wait until every reader inside policy_enter now has left it. */
void policy_synchronize(void);

#endif
