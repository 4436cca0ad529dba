/* Why a machine stops, and the exit codes popek ends with: shared by the
 * machine and the devices that stop it (through their services). */
#ifndef POPEK_STOP_H
#define POPEK_STOP_H

/* Why the machine stopped; the first reason recorded wins. */
enum stop_kind {
	STOP_NONE,
	STOP_GUEST_EXIT, /* the guest chose an exit status (debug-exit, hypercall) */
	STOP_POWEROFF,
	STOP_RESET,
	STOP_CRASH, /* triple fault, HLT with interrupts off forever, engine failure */
	STOP_ERROR  /* host-side failure */
};

/* popek's exit codes (documented in README.md). Guest statuses pass through. */
#define EXIT_CODE_USAGE	 64 /* bad command line */
#define EXIT_CODE_IMAGE	 65 /* kernel/initrd refused before start */
#define EXIT_CODE_ENGINE 69 /* engine unavailable */
#define EXIT_CODE_CRASH	 70 /* the VM crashed */
#define EXIT_CODE_HOST	 71 /* host-side failure */
#define EXIT_CODE_POLICY 72 /* a policy rule stopped the VM */
#define EXIT_CODE_JAIL	 73 /* the jail's seccomp filter stopped a forbidden system call */

#endif
