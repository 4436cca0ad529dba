#ifndef POPEK_VCPU_H
#define POPEK_VCPU_H

/* Thread body for one vCPU (arg: struct vcpu *). */
void *vcpu_thread(void *arg);

struct machine;
/* n vCPU threads have ended (or will never start): wake a pauser waiting
 * for them, and stop the event loop after the last. */
void machine_vcpus_ended(struct machine *m, int n);

#endif
