/* popek paravirtual hypercall ABI, shared by the VMM and guests.
 * See docs/hypercalls.md for the full description.
 *
 * A hypercall is a 32-bit OUT to port POPEK_HC_PORT (DX = port, EAX = number).
 * Arguments: RDI, RSI, RBX, RCX (RDX carries the port). Result: RAX
 * (>= 0 success, negative errno on failure). Every other register is preserved.
 * An OUT works identically on every engine and needs no CPU extension, so the
 * same guest binary runs on kvm and soft. */
#ifndef POPEK_HYPERCALL_H
#define POPEK_HYPERCALL_H

#define POPEK_HC_PORT 0x0510

#define POPEK_HC_VERSION       0 /* () -> ABI version */
#define POPEK_HC_CONSOLE_WRITE 1 /* (gpa, len) -> bytes written */
#define POPEK_HC_GET_TIME      2 /* (clock) -> nanoseconds */
#define POPEK_HC_EXIT	       3 /* (status) -> does not return */
#define POPEK_HC_YIELD	       4 /* () -> 0 */
#define POPEK_HC_COUNT	       5

#define POPEK_HC_ABI_VERSION 1

#define POPEK_CLOCK_MONOTONIC 0 /* since VM start */
#define POPEK_CLOCK_REALTIME  1 /* since the Unix epoch */

#define POPEK_HC_CONSOLE_MAX 4096 /* longest single console_write */

/* errno values returned (negated) in RAX */
#define POPEK_EPERM  1 /* refused by the VM's policy */
#define POPEK_EFAULT 14
#define POPEK_EINVAL 22
#define POPEK_ENOSYS 38

#endif
