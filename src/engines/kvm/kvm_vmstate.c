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

/* The neutral structs mirror KVM's field for field: one list, both directions. */
// clang-format off
#define PIC_FIELDS(X) \
	X(irr) X(imr) X(isr) X(last_irr) X(priority_add) X(irq_base) X(read_reg_select) \
	X(poll) X(special_mask) X(init_state) X(auto_eoi) X(rotate_on_auto_eoi) \
	X(special_fully_nested_mode) X(init4) X(elcr) X(elcr_mask)
#define PIT_FIELDS(X) \
	X(count) X(latched_count) X(count_latched) X(status_latched) X(status) X(read_state) \
	X(write_state) X(write_latch) X(rw_mode) X(mode) X(bcd) X(gate)
// clang-format on
#define COPY(f) dst->f = src->f;

static void pic_from_kvm(const struct kvm_pic_state *src, struct pic_state *dst)
{
	PIC_FIELDS(COPY)
}

static void pic_to_kvm(const struct pic_state *src, struct kvm_pic_state *dst)
{
	memset(dst, 0, sizeof(*dst));
	PIC_FIELDS(COPY)
}

static void pit_from_kvm(const struct kvm_pit_channel_state *src, struct pit_channel_state *dst,
			 uint64_t now)
{
	PIT_FIELDS(COPY)
	dst->elapsed_ns =
	    now > (uint64_t)src->count_load_time ? now - (uint64_t)src->count_load_time : 0;
}

static void pit_to_kvm(const struct pit_channel_state *src, struct kvm_pit_channel_state *dst,
		       uint64_t now)
{
	memset(dst, 0, sizeof(*dst));
	PIT_FIELDS(COPY)
	dst->count_load_time = (int64_t)(now - src->elapsed_ns);
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
	for (int i = 0; i < 3; i++)
		pit_from_kvm(&pit.channels[i], &st->pit[i], now);
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
	for (int i = 0; i < 3; i++)
		pit_to_kvm(&st->pit[i], &pit.channels[i], now);
	pit.flags = st->pit_speaker ? KVM_PIT_FLAGS_SPEAKER_DATA_ON : 0;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return -errno;
	struct kvm_clock_data clk = {.clock = st->clock_ns};
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clk) < 0)
		return -errno;
	return 0;
}
