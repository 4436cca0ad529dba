#include <string.h>

#include "engines/engine.h"

const char *const exit_reason_names[NR_EXIT_REASONS] = {
    [EXIT_IO] = "io",	  [EXIT_MMIO] = "mmio",		[EXIT_HYPERCALL] = "hypercall",
    [EXIT_HLT] = "hlt",	  [EXIT_SHUTDOWN] = "shutdown", [EXIT_KICKED] = "kicked",
    [EXIT_FAIL] = "fail", [EXIT_SYSCALL] = "syscall",
};

const struct engine_ops *engine_find(const char *name)
{
	if (!strcmp(name, "kvm"))
		return &kvm_engine;
	if (!strcmp(name, "soft"))
		return &soft_engine;
	return NULL;
}
