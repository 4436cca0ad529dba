/* MC146818 real-time clock and CMOS RAM (ports 0x70/0x71). Guests read the
 * wall clock here at boot; without it Linux polls an absent chip ~40000 times
 * waiting for an update cycle that never ends. */
#ifndef POPEK_CMOS_RTC_H
#define POPEK_CMOS_RTC_H

#include <stddef.h>
#include <stdint.h>

#include "devices/services.h"

#define CMOS_INDEX_PORT 0x70
#define CMOS_DATA_PORT	0x71

extern const struct device_type cmos_rtc_device;

/* Internal, exposed for tests: the device itself. */
struct cmos_rtc;
struct bus;
struct cmos_rtc *cmos_rtc_new(struct bus *pio, uint64_t ram_size);
void cmos_rtc_free(void *rtc);
int cmos_rtc_save(void *rtc, void **buf, size_t *len);
int cmos_rtc_load(void *rtc, const void *buf, size_t len);

#endif
