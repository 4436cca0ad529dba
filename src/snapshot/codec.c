#include "snapshot/codec.h"

#include <string.h>

#define CPU_STATE_VERSION 1
#define VM_STATE_VERSION  1

static void put_seg(struct blob *b, const struct seg *s)
{
	blob_put64(b, s->base);
	blob_put32(b, s->limit);
	blob_put16(b, s->sel);
	blob_put8(b, s->type);
	blob_put8(b, (uint8_t)(s->s | s->dpl << 1 | s->present << 3 | s->avl << 4 | s->l << 5 |
			       s->db << 6 | s->g << 7));
	blob_put8(b, s->unusable);
}

static void get_seg(struct reader *r, struct seg *s)
{
	s->base = rd_get64(r);
	s->limit = rd_get32(r);
	s->sel = rd_get16(r);
	s->type = rd_get8(r) & 0xf;
	uint8_t f = rd_get8(r);
	s->s = f & 1;
	s->dpl = (f >> 1) & 3;
	s->present = (f >> 3) & 1;
	s->avl = (f >> 4) & 1;
	s->l = (f >> 5) & 1;
	s->db = (f >> 6) & 1;
	s->g = (f >> 7) & 1;
	s->unusable = rd_get8(r) != 0;
}

void encode_cpu_state(struct blob *b, const struct cpu_state *st)
{
	blob_put32(b, CPU_STATE_VERSION);
	for (int i = 0; i < NR_GPRS; i++)
		blob_put64(b, st->gpr[i]);
	blob_put64(b, st->rip);
	blob_put64(b, st->rflags);
	for (int i = 0; i < NR_SEGS; i++)
		put_seg(b, &st->seg[i]);
	blob_put64(b, st->gdt.base);
	blob_put16(b, st->gdt.limit);
	blob_put64(b, st->idt.base);
	blob_put16(b, st->idt.limit);
	const uint64_t cr[] = {st->cr0,	  st->cr2,   st->cr3,	st->cr4,   st->cr8, st->xcr0,
			       st->dr[0], st->dr[1], st->dr[2], st->dr[3], st->dr6, st->dr7};
	for (size_t i = 0; i < sizeof(cr) / sizeof(cr[0]); i++)
		blob_put64(b, cr[i]);
	blob_put32(b, NR_STATE_MSRS);
	for (int i = 0; i < NR_STATE_MSRS; i++) {
		blob_put32(b, cpu_state_msr_numbers[i]);
		blob_put64(b, st->msr[i]);
	}
	blob_put32(b, st->xsave_size);
	blob_put_bytes(b, st->xsave, st->xsave_size);
	blob_put8(b, st->has_lapic);
	blob_put_bytes(b, st->lapic, LAPIC_PAGE_SIZE);
	blob_put8(b, (uint8_t)st->mp_state);
	blob_put8(b, st->sipi_vector);
	blob_put8(b, st->exception_pending);
	blob_put8(b, st->exception_vector);
	blob_put8(b, st->exception_has_error);
	blob_put32(b, st->exception_error);
	blob_put8(b, st->interrupt_pending);
	blob_put8(b, st->interrupt_vector);
	blob_put8(b, st->nmi_pending);
	blob_put8(b, st->nmi_masked);
	blob_put8(b, st->interrupt_shadow);
}

int decode_cpu_state(const uint8_t *p, size_t len, struct cpu_state *st)
{
	struct reader r = {p, len, false};
	memset(st, 0, sizeof(*st));
	if (rd_get32(&r) != CPU_STATE_VERSION)
		return -1;
	for (int i = 0; i < NR_GPRS; i++)
		st->gpr[i] = rd_get64(&r);
	st->rip = rd_get64(&r);
	st->rflags = rd_get64(&r);
	for (int i = 0; i < NR_SEGS; i++)
		get_seg(&r, &st->seg[i]);
	st->gdt.base = rd_get64(&r);
	st->gdt.limit = rd_get16(&r);
	st->idt.base = rd_get64(&r);
	st->idt.limit = rd_get16(&r);
	uint64_t *cr[] = {&st->cr0,   &st->cr2,	  &st->cr3,   &st->cr4,	  &st->cr8, &st->xcr0,
			  &st->dr[0], &st->dr[1], &st->dr[2], &st->dr[3], &st->dr6, &st->dr7};
	for (size_t i = 0; i < sizeof(cr) / sizeof(cr[0]); i++)
		*cr[i] = rd_get64(&r);
	/* An XCR0 no XSETBV could have set: x87 always on, AVX only with SSE. */
	if (!(st->xcr0 & XSTATE_X87) || ((st->xcr0 & XSTATE_AVX) && !(st->xcr0 & XSTATE_SSE)))
		return -1;
	uint32_t nmsrs = rd_get32(&r);
	if (nmsrs > 256)
		return -1;
	/* MSRs travel with their numbers, so a newer popek can add some. */
	for (uint32_t i = 0; i < nmsrs; i++) {
		uint32_t idx = rd_get32(&r);
		uint64_t val = rd_get64(&r);
		for (int j = 0; j < NR_STATE_MSRS; j++)
			if (cpu_state_msr_numbers[j] == idx)
				st->msr[j] = val;
	}
	st->xsave_size = rd_get32(&r);
	if (st->xsave_size > XSAVE_AREA_SIZE || st->xsave_size < 512)
		return -1;
	rd_get_bytes(&r, st->xsave, st->xsave_size);
	st->has_lapic = rd_get8(&r) != 0;
	rd_get_bytes(&r, st->lapic, LAPIC_PAGE_SIZE);
	uint8_t mp = rd_get8(&r);
	if (mp > MP_WAIT_FOR_SIPI)
		return -1;
	st->mp_state = (enum mp_state)mp;
	st->sipi_vector = rd_get8(&r);
	st->exception_pending = rd_get8(&r) != 0;
	st->exception_vector = rd_get8(&r);
	st->exception_has_error = rd_get8(&r) != 0;
	st->exception_error = rd_get32(&r);
	st->interrupt_pending = rd_get8(&r) != 0;
	st->interrupt_vector = rd_get8(&r);
	st->nmi_pending = rd_get8(&r) != 0;
	st->nmi_masked = rd_get8(&r) != 0;
	st->interrupt_shadow = rd_get8(&r) != 0;
	if (st->exception_pending && st->exception_vector > 31)
		return -1;
	return r.bad || r.left ? -1 : 0;
}

static void put_pic(struct blob *b, const struct pic_state *p)
{
	const uint8_t f[] = {p->irr,
			     p->imr,
			     p->isr,
			     p->last_irr,
			     p->priority_add,
			     p->irq_base,
			     p->read_reg_select,
			     p->poll,
			     p->special_mask,
			     p->init_state,
			     p->auto_eoi,
			     p->rotate_on_auto_eoi,
			     p->special_fully_nested_mode,
			     p->init4,
			     p->elcr,
			     p->elcr_mask};
	blob_put_bytes(b, f, sizeof(f));
}

static void get_pic(struct reader *r, struct pic_state *p)
{
	uint8_t *f[] = {&p->irr,
			&p->imr,
			&p->isr,
			&p->last_irr,
			&p->priority_add,
			&p->irq_base,
			&p->read_reg_select,
			&p->poll,
			&p->special_mask,
			&p->init_state,
			&p->auto_eoi,
			&p->rotate_on_auto_eoi,
			&p->special_fully_nested_mode,
			&p->init4,
			&p->elcr,
			&p->elcr_mask};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		*f[i] = rd_get8(r);
}

void encode_vm_state(struct blob *b, const struct vm_state *st)
{
	blob_put32(b, VM_STATE_VERSION);
	put_pic(b, &st->pic[0]);
	put_pic(b, &st->pic[1]);
	blob_put32(b, st->ioapic.id);
	blob_put32(b, st->ioapic.ioregsel);
	blob_put32(b, st->ioapic.irr);
	for (int i = 0; i < IOAPIC_PINS; i++)
		blob_put64(b, st->ioapic.redir[i]);
	for (int i = 0; i < 3; i++) {
		const struct pit_channel_state *c = &st->pit[i];
		blob_put32(b, c->count);
		blob_put16(b, c->latched_count);
		const uint8_t f[] = {
		    c->count_latched, c->status_latched, c->status, c->read_state, c->write_state,
		    c->write_latch,   c->rw_mode,	 c->mode,   c->bcd,	   c->gate};
		blob_put_bytes(b, f, sizeof(f));
		blob_put64(b, c->elapsed_ns);
	}
	blob_put8(b, st->pit_speaker);
	blob_put64(b, st->clock_ns);
}

int decode_vm_state(const uint8_t *p, size_t len, struct vm_state *st)
{
	struct reader r = {p, len, false};
	memset(st, 0, sizeof(*st));
	if (rd_get32(&r) != VM_STATE_VERSION)
		return -1;
	get_pic(&r, &st->pic[0]);
	get_pic(&r, &st->pic[1]);
	st->ioapic.id = rd_get32(&r);
	st->ioapic.ioregsel = rd_get32(&r);
	st->ioapic.irr = rd_get32(&r);
	for (int i = 0; i < IOAPIC_PINS; i++)
		st->ioapic.redir[i] = rd_get64(&r);
	for (int i = 0; i < 3; i++) {
		struct pit_channel_state *c = &st->pit[i];
		c->count = rd_get32(&r);
		c->latched_count = rd_get16(&r);
		uint8_t *f[] = {&c->count_latched, &c->status_latched, &c->status,
				&c->read_state,	   &c->write_state,    &c->write_latch,
				&c->rw_mode,	   &c->mode,	       &c->bcd,
				&c->gate};
		for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
			*f[j] = rd_get8(&r);
		c->elapsed_ns = rd_get64(&r);
		if (c->count > 0x10000 || (c->mode > 5 && c->mode != PIT_MODE_UNSET) ||
		    c->rw_mode > 4 || c->read_state > 4 || c->write_state > 4)
			return -1;
	}
	st->pit_speaker = rd_get8(&r) != 0;
	st->clock_ns = rd_get64(&r);
	return r.bad || r.left ? -1 : 0;
}
