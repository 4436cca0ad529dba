/* VM-wide state of the in-kernel irqchip, PIT and kvmclock, in neutral form. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "engines/kvm/kvm_internal.h"

static uint64_t host_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock KVM's ktime_get() reads */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pic_from_kvm(const struct kvm_pic_state *k, struct pic_state *p)
{
	*p = (struct pic_state){
	    .irr = k->irr,
	    .imr = k->imr,
	    .isr = k->isr,
	    .last_irr = k->last_irr,
	    .priority_add = k->priority_add,
	    .irq_base = k->irq_base,
	    .read_reg_select = k->read_reg_select,
	    .poll = k->poll,
	    .special_mask = k->special_mask,
	    .init_state = k->init_state,
	    .auto_eoi = k->auto_eoi,
	    .rotate_on_auto_eoi = k->rotate_on_auto_eoi,
	    .special_fully_nested_mode = k->special_fully_nested_mode,
	    .init4 = k->init4,
	    .elcr = k->elcr,
	    .elcr_mask = k->elcr_mask,
	};
}

static void pic_to_kvm(const struct pic_state *p, struct kvm_pic_state *k)
{
	*k = (struct kvm_pic_state){
	    .irr = p->irr,
	    .imr = p->imr,
	    .isr = p->isr,
	    .last_irr = p->last_irr,
	    .priority_add = p->priority_add,
	    .irq_base = p->irq_base,
	    .read_reg_select = p->read_reg_select,
	    .poll = p->poll,
	    .special_mask = p->special_mask,
	    .init_state = p->init_state,
	    .auto_eoi = p->auto_eoi,
	    .rotate_on_auto_eoi = p->rotate_on_auto_eoi,
	    .special_fully_nested_mode = p->special_fully_nested_mode,
	    .init4 = p->init4,
	    .elcr = p->elcr,
	    .elcr_mask = p->elcr_mask,
	};
}

int kvm_get_vm_state(struct engine_vm *vm, struct vm_state *st)
{
	memset(st, 0, sizeof(*st));
	struct kvm_irqchip chip;
	for (uint32_t id = 0; id < 3; id++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = id;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return -errno;
		if (id < 2) {
			pic_from_kvm(&chip.chip.pic, &st->pic[id]);
			continue;
		}
		const struct kvm_ioapic_state *io = &chip.chip.ioapic;
		st->ioapic.id = io->id;
		st->ioapic.ioregsel = io->ioregsel;
		st->ioapic.irr = io->irr;
		for (int i = 0; i < IOAPIC_PINS && i < KVM_IOAPIC_NUM_PINS; i++)
			st->ioapic.redir[i] = io->redirtbl[i].bits;
	}
	struct kvm_pit_state2 pit;
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return -errno;
	uint64_t now = host_monotonic_ns();
	for (int i = 0; i < 3; i++) {
		const struct kvm_pit_channel_state *c = &pit.channels[i];
		st->pit[i] = (struct pit_channel_state){
		    .count = c->count,
		    .latched_count = c->latched_count,
		    .count_latched = c->count_latched,
		    .status_latched = c->status_latched,
		    .status = c->status,
		    .read_state = c->read_state,
		    .write_state = c->write_state,
		    .write_latch = c->write_latch,
		    .rw_mode = c->rw_mode,
		    .mode = c->mode,
		    .bcd = c->bcd,
		    .gate = c->gate,
		    .elapsed_ns =
			now > (uint64_t)c->count_load_time ? now - (uint64_t)c->count_load_time : 0,
		};
	}
	st->pit_speaker = (pit.flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON) != 0;
	struct kvm_clock_data clk = {0};
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) < 0)
		return -errno;
	st->clock_ns = clk.clock;
	return 0;
}

int kvm_set_vm_state(struct engine_vm *vm, const struct vm_state *st)
{
	struct kvm_irqchip chip;
	for (uint32_t id = 0; id < 3; id++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = id;
		if (id < 2) {
			pic_to_kvm(&st->pic[id], &chip.chip.pic);
		} else {
			struct kvm_ioapic_state *io = &chip.chip.ioapic;
			io->base_address = 0xfec00000;
			io->id = st->ioapic.id;
			io->ioregsel = st->ioapic.ioregsel;
			io->irr = st->ioapic.irr;
			for (int i = 0; i < IOAPIC_PINS && i < KVM_IOAPIC_NUM_PINS; i++)
				io->redirtbl[i].bits = st->ioapic.redir[i];
		}
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return -errno;
	}
	struct kvm_pit_state2 pit = {0};
	uint64_t now = host_monotonic_ns();
	for (int i = 0; i < 3; i++) {
		const struct pit_channel_state *c = &st->pit[i];
		pit.channels[i] = (struct kvm_pit_channel_state){
		    .count = c->count,
		    .latched_count = c->latched_count,
		    .count_latched = c->count_latched,
		    .status_latched = c->status_latched,
		    .status = c->status,
		    .read_state = c->read_state,
		    .write_state = c->write_state,
		    .write_latch = c->write_latch,
		    .rw_mode = c->rw_mode,
		    .mode = c->mode,
		    .bcd = c->bcd,
		    .gate = c->gate,
		    .count_load_time = (int64_t)(now - c->elapsed_ns),
		};
	}
	pit.flags = st->pit_speaker ? KVM_PIT_FLAGS_SPEAKER_DATA_ON : 0;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return -errno;
	struct kvm_clock_data clk = {.clock = st->clock_ns};
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clk) < 0)
		return -errno;
	return 0;
}
