/* VM-wide state an engine owns besides its vCPUs: the platform interrupt
 * controllers, the PIT and the guest clock. Engine-neutral, like cpu_state:
 * each field is the architectural state of an 8259A, an 82093AA IOAPIC or an
 * 8254 PIT, so a snapshot taken on one engine restores on the other. */
#ifndef POPEK_VM_STATE_H
#define POPEK_VM_STATE_H

#include <stdbool.h>
#include <stdint.h>

struct pic_state {
	uint8_t irr, imr, isr;
	uint8_t last_irr;     /* for edge detection */
	uint8_t priority_add; /* lowest-priority line after rotation */
	uint8_t irq_base;     /* ICW2 */
	uint8_t read_reg_select, poll, special_mask, init_state, auto_eoi;
	uint8_t rotate_on_auto_eoi, special_fully_nested_mode, init4, elcr, elcr_mask;
};

#define IOAPIC_PINS 24

struct ioapic_state {
	uint32_t id, ioregsel, irr;
	uint64_t redir[IOAPIC_PINS];
};

#define PIT_MODE_UNSET 0xff

struct pit_channel_state {
	uint32_t count; /* reload value, 0 = 65536 */
	uint16_t latched_count;
	uint8_t count_latched, status_latched, status, read_state, write_state, write_latch;
	uint8_t rw_mode, mode, bcd, gate; /* mode PIT_MODE_UNSET: never programmed */
	uint64_t elapsed_ns;		  /* time since the count was loaded */
};

struct vm_state {
	struct pic_state pic[2]; /* master, slave */
	struct ioapic_state ioapic;
	struct pit_channel_state pit[3];
	bool pit_speaker;  /* port 0x61 bit 1: speaker data enable */
	uint64_t clock_ns; /* guest kvmclock / monotonic time */
};

#endif
