/* The devices a guest stops the machine with: ACPI PM1a control (S5 power-off)
 * and the i8042 reset line; plus the i8042 probe sequence Linux runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot/acpi.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "machine/machine.h"

static int irq1_edges;

static int fake_irq_line(struct engine_vm *vm, unsigned gsi, bool level)
{
	if (gsi == I8042_KBD_GSI && level)
		irq1_edges++;
	return 0;
}

static const struct engine_ops fake_engine = {.name = "fake", .irq_line = fake_irq_line};

static int setup(void **state)
{
	static struct vm_config cfg;
	char err[128];
	struct machine *m = calloc(1, sizeof(*m));
	if (!m)
		return -1;
	vm_config_defaults(&cfg);
	m->cfg = &cfg;
	m->engine = &fake_engine;
	pthread_mutex_init(&m->stop_lock, NULL);
	pthread_mutex_init(&m->pause_lock, NULL);
	pthread_cond_init(&m->pause_cond, NULL);
	bus_init(&m->pio, "pio");
	m->start_ns = monotonic_ns();
	machine_services_init(m);
	if (machine_add_device(m, &acpi_pm_device, 0, err, sizeof(err)) ||
	    machine_add_device(m, &i8042_device, 0, err, sizeof(err)))
		return -1;
	irq1_edges = 0;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct machine *m = *state;
	for (int i = m->ndevices - 1; i >= 0; i--)
		m->devices[i].type->destroy(m->devices[i].dev);
	bus_destroy(&m->pio);
	pthread_mutex_destroy(&m->stop_lock);
	pthread_mutex_destroy(&m->pause_lock);
	pthread_cond_destroy(&m->pause_cond);
	free(m);
	return 0;
}

static uint32_t in(struct machine *m, uint16_t port, unsigned size)
{
	uint32_t v = 0;
	bus_access(&m->pio, port, &v, size, false);
	return v;
}

static void out(struct machine *m, uint16_t port, uint32_t v, unsigned size)
{
	bus_access(&m->pio, port, &v, size, true);
}

static void test_poweroff(void **state)
{
	struct machine *m = *state;
	assert_int_equal(in(m, ACPI_PM1_CNT, 2) & 1, 1); /* SCI_EN: ACPI mode */
	/* Linux writes SLP_TYP first, then SLP_TYP|SLP_EN. */
	out(m, ACPI_PM1_CNT, ACPI_S5_SLP_TYP << 10 | 1, 2);
	assert_int_equal(atomic_load(&m->stop), STOP_NONE);
	out(m, ACPI_PM1_CNT, 1u << 10 | 1u << 13, 2); /* S1 is not offered: ignored */
	assert_int_equal(atomic_load(&m->stop), STOP_NONE);
	out(m, ACPI_PM1_CNT, ACPI_S5_SLP_TYP << 10 | 1u << 13 | 1, 2);
	assert_int_equal(atomic_load(&m->stop), STOP_POWEROFF);
	assert_int_equal(m->exit_code, 0);
}

static void test_pm_registers(void **state)
{
	struct machine *m = *state;
	out(m, ACPI_PM1_EVT + 2, 0x0120, 2); /* enable */
	assert_int_equal(in(m, ACPI_PM1_EVT + 2, 2), 0x0120);
	assert_int_equal(in(m, ACPI_PM1_EVT, 4), 0x01200000);
	out(m, ACPI_PM1_EVT, 0xffff, 2); /* write-1-to-clear status leaves enable alone */
	assert_int_equal(in(m, ACPI_PM1_EVT + 2, 2), 0x0120);
	/* The timer runs forward at 3.58 MHz. */
	uint32_t t0 = in(m, ACPI_PM_TMR, 4);
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
	uint32_t t1 = in(m, ACPI_PM_TMR, 4);
	assert_true(t1 - t0 >= 7000 && t1 - t0 < 3579545);
	/* Accesses straddling the block read as all-ones and write nothing. */
	uint32_t v = 0;
	bus_access(&m->pio, ACPI_PM_BASE + ACPI_PM_LEN - 2, &v, 4, false);
	assert_int_equal(v, 0xffffffff);
	bus_access(&m->pio, ACPI_PM_BASE + ACPI_PM_LEN - 2, &v, 4, true);
	assert_int_equal(atomic_load(&m->stop), STOP_NONE);
}

static void test_reset_by_command(void **state)
{
	struct machine *m = *state;
	assert_int_equal(in(m, 0x64, 1) & 0x02, 0); /* input buffer never full */
	out(m, 0x64, 0xfe, 1);
	assert_int_equal(atomic_load(&m->stop), STOP_RESET);
	assert_int_equal(m->exit_code, 0);
}

static void test_reset_by_output_port(void **state)
{
	struct machine *m = *state;
	out(m, 0x64, 0xd1, 1);
	out(m, 0x60, 0x03, 1); /* reset line high: nothing happens */
	assert_int_equal(atomic_load(&m->stop), STOP_NONE);
	out(m, 0x64, 0xd1, 1);
	out(m, 0x60, 0x02, 1);
	assert_int_equal(atomic_load(&m->stop), STOP_RESET);
}

static uint8_t read_result(struct machine *m)
{
	assert_int_equal(in(m, 0x64, 1) & 1, 1); /* output buffer full */
	return (uint8_t)in(m, 0x60, 1);
}

static void test_linux_probe(void **state)
{
	struct machine *m = *state;
	/* Self test, then read and write the configuration byte. */
	out(m, 0x64, 0xaa, 1);
	assert_int_equal(read_result(m), 0x55);
	out(m, 0x64, 0x20, 1);
	uint8_t ctr = read_result(m);
	assert_int_equal(in(m, 0x64, 1) & 1, 0);
	out(m, 0x64, 0x60, 1);
	out(m, 0x60, ctr & ~0x01, 1); /* keyboard interrupt off */
	out(m, 0x64, 0x20, 1);
	assert_int_equal(read_result(m), ctr & ~0x01);
	/* No AUX port: the loopback does not come back as AUX data, the test fails. */
	out(m, 0x64, 0xd3, 1);
	out(m, 0x60, 0x5a, 1);
	assert_int_equal(in(m, 0x64, 1) & 0x20, 0);
	read_result(m);
	out(m, 0x64, 0xa9, 1);
	assert_int_not_equal(read_result(m), 0);
	/* Keyboard: interrupts on, reset and identify, one IRQ1 edge per byte. */
	out(m, 0x64, 0x60, 1);
	out(m, 0x60, ctr | 0x01, 1);
	irq1_edges = 0;
	out(m, 0x60, 0xff, 1);
	assert_int_equal(read_result(m), 0xfa);
	assert_int_equal(read_result(m), 0xaa);
	out(m, 0x60, 0xf2, 1);
	assert_int_equal(read_result(m), 0xfa);
	assert_int_equal(read_result(m), 0xab);
	assert_int_equal(read_result(m), 0x83);
	assert_int_equal(irq1_edges, 5);
	out(m, 0x60, 0xed, 1); /* LEDs + argument: two ACKs */
	out(m, 0x60, 0x07, 1);
	assert_int_equal(read_result(m), 0xfa);
	assert_int_equal(read_result(m), 0xfa);
	assert_int_equal(in(m, 0x64, 1) & 1, 0);
	/* A flood of commands never overflows the queue. */
	for (int i = 0; i < 100; i++)
		out(m, 0x60, 0xf4, 1);
	int n = 0;
	while (in(m, 0x64, 1) & 1) {
		in(m, 0x60, 1);
		n++;
	}
	assert_true(n > 0 && n <= 16);
	assert_int_equal(atomic_load(&m->stop), STOP_NONE);
}

static void test_snapshot(void **state)
{
	struct machine *m = *state;
	out(m, 0x60, 0xf2, 1); /* three bytes queued */
	for (int i = 0; i < m->ndevices; i++) {
		void *buf;
		size_t len;
		assert_int_equal(m->devices[i].type->save(m->devices[i].dev, &buf, &len), 0);
		assert_int_equal(m->devices[i].type->load(m->devices[i].dev, buf, len), 0);
		assert_int_equal(m->devices[i].type->load(m->devices[i].dev, buf, len - 1), -1);
		((uint8_t *)buf)[0] ^= 0xff; /* wrong version */
		assert_int_equal(m->devices[i].type->load(m->devices[i].dev, buf, len), -1);
		free(buf);
	}
	assert_int_equal(read_result(m), 0xfa);
	assert_int_equal(read_result(m), 0xab);
	assert_int_equal(read_result(m), 0x83);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_poweroff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pm_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_by_command, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_by_output_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_linux_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
