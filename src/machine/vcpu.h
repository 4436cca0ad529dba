#ifndef POPEK_VCPU_H
#define POPEK_VCPU_H

/* Thread body for one vCPU (arg: struct vcpu *). */
void *vcpu_thread(void *arg);

#endif
