/* machine_pause against the vCPU threads' start: a pause (a snapshot) that
 * another thread asks for before machine_run has started the vCPUs must
 * still return only once every vCPU is parked. Boots build/guests/hello.elf
 * on the soft engine with 2 vCPUs (run from the repository root). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "machine/machine.h"

static struct machine m;

static void *pauser(void *arg)
{
	int *parked = arg;
	machine_pause(&m);
	pthread_mutex_lock(&m.pause_lock);
	*parked = m.parked;
	pthread_mutex_unlock(&m.pause_lock);
	machine_stop(&m, STOP_POWEROFF, 0, "test done");
	return NULL;
}

static void pause_before_run_waits_for_the_vcpus(void **state)
{
	struct vm_config cfg;
	char err[256] = "", con[] = "/tmp/popek-test-pause.XXXXXX";
	int fd = mkstemp(con);
	assert_true(fd >= 0);
	close(fd);
	vm_config_defaults(&cfg);
	cfg.kernel = "build/guests/hello.elf";
	cfg.engine = "soft";
	cfg.cpus = 2;
	cfg.console = CONSOLE_FILE;
	cfg.console_path = con;
	assert_int_equal(machine_create(&m, &cfg, err, sizeof(err)), 0);
	int parked = -1;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, pauser, &parked), 0);
	usleep(100 * 1000); /* the pause request is in before any vCPU thread exists */
	assert_int_equal(machine_run(&m), 0);
	pthread_join(t, NULL);
	assert_int_equal(parked, 2);
	machine_destroy(&m);
	unlink(con);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pause_before_run_waits_for_the_vcpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
