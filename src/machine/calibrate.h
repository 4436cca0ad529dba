/* --engine auto: measure how fast an engine runs guest kernel code. */
#ifndef POPEK_CALIBRATE_H
#define POPEK_CALIBRATE_H

#include "engines/engine.h"

/* Run a short CPL0 loop on a throw-away VM of `engine`; returns guest
 * instructions per second, or a negative errno if the engine cannot run it. */
double engine_kernel_speed(const struct engine_ops *engine, char *err, size_t errlen);

#endif
