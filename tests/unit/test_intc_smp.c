/* Thread safety of the soft engine's interrupt controllers: two vCPU threads
 * play IPI ping-pong while halting between messages, and a device thread
 * raises MSIs at the same time. No wake-up may be lost. */
#include <pthread.h>

#include "intc_test.h"

#define ROUNDS 2000

struct player {
	struct soft_intc *ic;
	int cpu;
	unsigned got, msis;
};

static void send_ipi(struct soft_intc *ic, int from, int to, uint8_t vector)
{
	apic_write(ic, from, 0x310, (uint32_t)to << 24);
	apic_write(ic, from, 0x300, 0x4000 | vector);
}

/* Halt until an interrupt comes, take it, EOI it; the vector. */
static int take_one(struct player *p)
{
	while (!(attention(p->ic, p->cpu) & INTC_ATTN_IRQ))
		if (intc_wait(p->ic, p->cpu, true) != INTC_WAKE_READY)
			return -1;
	int v = intc_ack(p->ic, p->cpu);
	if (v >= 0)
		apic_write(p->ic, p->cpu, 0xb0, 0);
	return v;
}

static void *play(void *arg)
{
	struct player *p = arg;
	if (p->cpu == 0)
		send_ipi(p->ic, 0, 1, 0x40);
	while (p->got < ROUNDS) {
		int v = take_one(p);
		if (v == 0x40) {
			p->got++;
			if (p->cpu == 1 || p->got < ROUNDS)
				send_ipi(p->ic, p->cpu, 1 - p->cpu, 0x40);
		} else if (v == 0x50) {
			p->msis++;
		}
	}
	return NULL;
}

static void *device(void *arg)
{
	struct soft_intc *ic = arg;
	for (int i = 0; i < ROUNDS; i++)
		intc_msi(ic, 0xfee00000 | (uint64_t)(i & 1) << 12, 0x50);
	return NULL;
}

static void ipi_ping_pong_with_device_noise(void **state)
{
	struct soft_intc *ic = test_intc(2);
	apic_enable(ic, 0);
	apic_enable(ic, 1);
	struct player p[2] = {{ic, 0, 0, 0}, {ic, 1, 0, 0}};
	pthread_t t[3];
	pthread_create(&t[0], NULL, play, &p[0]);
	pthread_create(&t[1], NULL, play, &p[1]);
	pthread_create(&t[2], NULL, device, ic);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(p[0].got, ROUNDS);
	assert_int_equal(p[1].got, ROUNDS);
	/* MSIs to a vector already pending coalesce, but some got through. */
	assert_true(p[0].msis + p[1].msis > 0);
	intc_destroy(ic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ipi_ping_pong_with_device_noise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
