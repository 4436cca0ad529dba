#include "devices/cmos_rtc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/bus.h"

enum {
	RTC_SEC = 0x00,
	RTC_MIN = 0x02,
	RTC_HOUR = 0x04,
	RTC_WDAY = 0x06,
	RTC_MDAY = 0x07,
	RTC_MON = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_CENTURY = 0x32,
};

#define REG_A_DIVIDER 0x26 /* 32.768 kHz time base, 1024 Hz rate: what firmware sets */
#define REG_B_SET     0x80 /* guest is setting the clock: freeze and take its fields */
#define REG_B_BINARY  0x04
#define REG_B_24H     0x02

/* The clock runs from year 0 to RTC_LAST_YEAR; no offset from the host clock
 * is larger than that span, so time(NULL) + offset cannot overflow. */
#define RTC_LAST_YEAR  9999
#define RTC_MAX_OFFSET ((int64_t)(RTC_LAST_YEAR + 1) * 366 * 86400)
#define REG_D_VRT      0x80 /* battery good, time valid */

struct cmos_rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t ram[128];
	int64_t offset; /* guest wall clock minus host wall clock, seconds */
};

static uint8_t to_bcd(const struct cmos_rtc *r, int v)
{
	return (r->ram[RTC_REG_B] & REG_B_BINARY) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static int from_bcd(const struct cmos_rtc *r, uint8_t v)
{
	return (r->ram[RTC_REG_B] & REG_B_BINARY) ? v : (v >> 4) * 10 + (v & 0xf);
}

/* Time registers are computed on read, so no update cycle is ever in progress. */
static uint8_t time_reg(const struct cmos_rtc *r, unsigned idx)
{
	time_t t = time(NULL) + r->offset;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return 0;
	/* Guests cannot set a date before year 0, but a snapshot's offset, taken
	 * against another host clock, may reach there: show year 0 then. */
	int year = tm.tm_year >= -1900 ? tm.tm_year + 1900 : 0;
	switch (idx) {
	case RTC_SEC:
		return to_bcd(r, tm.tm_sec);
	case RTC_MIN:
		return to_bcd(r, tm.tm_min);
	case RTC_HOUR:
		if (r->ram[RTC_REG_B] & REG_B_24H)
			return to_bcd(r, tm.tm_hour);
		return (uint8_t)(to_bcd(r, tm.tm_hour % 12 ? tm.tm_hour % 12 : 12) |
				 (tm.tm_hour >= 12 ? 0x80 : 0));
	case RTC_WDAY:
		return to_bcd(r, tm.tm_wday + 1);
	case RTC_MDAY:
		return to_bcd(r, tm.tm_mday);
	case RTC_MON:
		return to_bcd(r, tm.tm_mon + 1);
	case RTC_YEAR:
		return to_bcd(r, year % 100);
	default:
		return to_bcd(r, year / 100);
	}
}

static bool is_time_reg(unsigned idx)
{
	return idx == RTC_SEC || idx == RTC_MIN || idx == RTC_HOUR || idx == RTC_WDAY ||
	       idx == RTC_MDAY || idx == RTC_MON || idx == RTC_YEAR || idx == RTC_CENTURY;
}

/* The guest finished setting the clock: keep its time as an offset from ours. */
static void take_guest_time(struct cmos_rtc *r)
{
	struct tm tm = {
	    .tm_sec = from_bcd(r, r->ram[RTC_SEC]),
	    .tm_min = from_bcd(r, r->ram[RTC_MIN]),
	    .tm_hour = from_bcd(r, r->ram[RTC_HOUR] & 0x7f) % 24,
	    .tm_mday = from_bcd(r, r->ram[RTC_MDAY]),
	    .tm_mon = from_bcd(r, r->ram[RTC_MON]) - 1,
	    .tm_year =
		from_bcd(r, r->ram[RTC_CENTURY]) * 100 + from_bcd(r, r->ram[RTC_YEAR]) - 1900,
	};
	if (!(r->ram[RTC_REG_B] & REG_B_24H) && (r->ram[RTC_HOUR] & 0x80))
		tm.tm_hour = (tm.tm_hour % 12) + 12;
	/* timegm normalizes out-of-range fields (day 0, month 0) in tm: keep only
	 * times the century and year registers can show again. */
	time_t t = timegm(&tm);
	if (t != (time_t)-1 && tm.tm_year >= -1900 && tm.tm_year <= RTC_LAST_YEAR - 1900)
		r->offset = (int64_t)t - (int64_t)time(NULL);
}

static uint8_t rtc_read_reg(struct cmos_rtc *r, unsigned idx)
{
	if (is_time_reg(idx) && !(r->ram[RTC_REG_B] & REG_B_SET))
		return time_reg(r, idx);
	if (idx == RTC_REG_C) /* interrupt flags: none raised, reading clears */
		return 0;
	return r->ram[idx];
}

static void rtc_write_reg(struct cmos_rtc *r, unsigned idx, uint8_t v)
{
	switch (idx) {
	case RTC_REG_A:
		r->ram[idx] = v & 0x7f; /* UIP is read-only */
		break;
	case RTC_REG_B:
		if ((r->ram[RTC_REG_B] & REG_B_SET) && !(v & REG_B_SET))
			take_guest_time(r);
		if (!(r->ram[RTC_REG_B] & REG_B_SET) && (v & REG_B_SET))
			for (unsigned i = 0; i < 128; i++) /* freeze what the guest will edit */
				if (is_time_reg(i))
					r->ram[i] = time_reg(r, i);
		r->ram[idx] = v;
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->ram[idx] = v;
		if (is_time_reg(idx) && !(r->ram[RTC_REG_B] & REG_B_SET))
			take_guest_time(r);
		break;
	}
}

static void rtc_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct cmos_rtc *r = dev;
	memset(data, 0xff, size);
	pthread_mutex_lock(&r->lock);
	if (off == 1)
		*(uint8_t *)data = rtc_read_reg(r, r->index);
	pthread_mutex_unlock(&r->lock);
}

static void rtc_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct cmos_rtc *r = dev;
	uint8_t v = *(const uint8_t *)data;
	pthread_mutex_lock(&r->lock);
	if (off == 0)
		r->index = v & 0x7f; /* bit 7 masks NMI: we have no NMI source to mask */
	else
		rtc_write_reg(r, r->index, v);
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_ops rtc_ops = {.read = rtc_read, .write = rtc_write};

struct cmos_rtc *cmos_rtc_new(struct bus *pio, uint64_t ram_size)
{
	struct cmos_rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	pthread_mutex_init(&r->lock, NULL);
	r->ram[RTC_REG_A] = REG_A_DIVIDER;
	r->ram[RTC_REG_B] = REG_B_24H;
	r->ram[RTC_REG_D] = REG_D_VRT;
	/* Memory sizes where PC firmware leaves them, for older loaders. */
	uint64_t ext_kb = ram_size > (1u << 20) ? (ram_size - (1u << 20)) >> 10 : 0;
	uint64_t above16 = ram_size > (16u << 20) ? (ram_size - (16u << 20)) >> 16 : 0;
	if (ext_kb > 0xffff)
		ext_kb = 0xffff;
	if (above16 > 0xffff)
		above16 = 0xffff;
	r->ram[0x15] = 640 & 0xff;
	r->ram[0x16] = 640 >> 8;
	r->ram[0x17] = r->ram[0x30] = (uint8_t)ext_kb;
	r->ram[0x18] = r->ram[0x31] = (uint8_t)(ext_kb >> 8);
	r->ram[0x34] = (uint8_t)above16;
	r->ram[0x35] = (uint8_t)(above16 >> 8);
	if (bus_register(pio, CMOS_INDEX_PORT, 2, &rtc_ops, r, "cmos-rtc")) {
		cmos_rtc_free(r);
		return NULL;
	}
	return r;
}

void cmos_rtc_free(void *rtc)
{
	struct cmos_rtc *r = rtc;
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

struct rtc_saved {
	uint32_t version;
	uint8_t index, pad[3];
	int64_t offset;
	uint8_t ram[128];
};

int cmos_rtc_save(void *rtc, void **buf, size_t *len)
{
	struct cmos_rtc *r = rtc;
	struct rtc_saved *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	pthread_mutex_lock(&r->lock);
	s->version = 1;
	s->index = r->index;
	s->offset = r->offset;
	memcpy(s->ram, r->ram, sizeof(s->ram));
	pthread_mutex_unlock(&r->lock);
	*buf = s;
	*len = sizeof(*s);
	return 0;
}

int cmos_rtc_load(void *rtc, const void *buf, size_t len)
{
	struct cmos_rtc *r = rtc;
	struct rtc_saved s;
	if (len != sizeof(s))
		return -1;
	memcpy(&s, buf, sizeof(s));
	if (s.version != 1 || s.index > 0x7f || s.offset < -RTC_MAX_OFFSET ||
	    s.offset > RTC_MAX_OFFSET)
		return -1;
	pthread_mutex_lock(&r->lock);
	r->index = s.index;
	r->offset = s.offset;
	memcpy(r->ram, s.ram, sizeof(r->ram));
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int cmos_rtc_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			   void **dev, char *err, size_t errlen)
{
	return (*dev = cmos_rtc_new(s->pio, s->mem->size)) ? 0 : -1;
}

const struct device_type cmos_rtc_device = {.name = "cmos-rtc",
					    .create = cmos_rtc_create,
					    .save = cmos_rtc_save,
					    .load = cmos_rtc_load,
					    .destroy = cmos_rtc_free};
