/* A minimal PS/2 keyboard controller (ports 0x60/0x64): enough for Linux's
 * i8042 and atkbd probes to finish promptly, and for the guest to reset the
 * machine by pulsing the reset line (command 0xFE, reboot=k). No mouse. */
#ifndef POPEK_I8042_H
#define POPEK_I8042_H

struct machine;

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_KBD_GSI	   1

/* Create the device and add it to the machine's registry (snapshots,
 * teardown). Returns 0 or -1. */
int i8042_create(struct machine *m);

#endif
