/* Placeholder until the soft engine lands (issue 4): say so clearly. */
#include <errno.h>
#include <stdio.h>

#include "engines/engine.h"

static int soft_vm_create(const struct engine_vm_config *cfg, struct engine_vm **out, char *err,
			  size_t errlen)
{
	snprintf(err, errlen, "the soft engine is not built yet — use --engine kvm");
	return -ENOSYS;
}

const struct engine_ops soft_engine = {
	.name = "soft",
	.vm_create = soft_vm_create,
};
