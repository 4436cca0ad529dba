/* Why measure: a /dev/kvm that exists may still run guest kernel code slowly
 * (nested PVM emulates CPL0 at ~1M instructions/s), and no CPU flag says so.
 * A 2000-iteration loop at CPL0 costs microseconds on hardware and a few
 * milliseconds where kernel mode is emulated. */
#include "machine/calibrate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "machine/machine.h"

#define CAL_RAM	  (2u << 20)
#define CAL_CODE  0x1000
#define CAL_LOOPS 2000

double engine_kernel_speed(const struct engine_ops *engine, char *err, size_t errlen)
{
	/* mov ecx, CAL_LOOPS; 1: dec ecx; jnz 1b; out 0xf4, al */
	const uint8_t code[] = {
	    0xb9, CAL_LOOPS & 0xff, CAL_LOOPS >> 8, 0, 0, 0x49, 0x75, 0xfd, 0xe6, 0xf4};
	struct engine_vm_config cfg = {.ncpus = 1, .ram_size = CAL_RAM};
	struct engine_vm *vm = NULL;
	struct engine_vcpu *v = NULL;
	struct cpu_state *st = malloc(sizeof(*st));
	struct vcpu_exit ex;
	double ips = -EIO;
	uint8_t *ram =
	    mmap(NULL, CAL_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!st || ram == MAP_FAILED)
		goto out;
	memcpy(ram + CAL_CODE, code, sizeof(code));
	int rc = engine->vm_create(&cfg, &vm, err, errlen);
	if (rc) {
		ips = rc;
		goto out;
	}
	cpu_state_init_protected(st);
	st->rip = CAL_CODE;
	memset(&ex, 0, sizeof(ex));
	if (engine->map_memory(vm, 0, 0, CAL_RAM, ram, 0) || engine->vcpu_create(vm, 0, &v) ||
	    engine->set_state(v, st)) {
		snprintf(err, errlen, "engine %s cannot set up a calibration VM", engine->name);
		goto out;
	}
	uint64_t t0 = monotonic_ns();
	do {
		if (engine->vcpu_run(v, &ex) < 0)
			break;
	} while (ex.reason == EXIT_KICKED || (ex.reason == EXIT_IO && ex.io.port != 0xf4));
	uint64_t dt = monotonic_ns() - t0;
	if (ex.reason == EXIT_IO && ex.io.port == 0xf4)
		ips = (2.0 * CAL_LOOPS + 2) * 1e9 / (double)(dt ? dt : 1);
	else
		snprintf(err, errlen, "engine %s did not finish the calibration loop",
			 engine->name);
out:
	if (v)
		engine->vcpu_destroy(v);
	if (vm)
		engine->vm_destroy(vm);
	if (ram != MAP_FAILED)
		munmap(ram, CAL_RAM);
	free(st);
	return ips;
}
