/* hostile: a guest that attacks every device popek offers and checks that each
 * attack gets the answer a robust device gives. For virtio-blk, -rng and
 * -console: broken rings (descriptor loops, indirect tables that nest or point
 * to themselves, buffers outside RAM, in MMIO, across the end of RAM, lengths
 * near 2^32, index jumps) must set DEVICE_NEEDS_RESET and raise the config
 * interrupt, and a reset must bring the device back; bad queue setups must be
 * refused the same way; reconfiguration after DRIVER_OK, writes to read-only
 * fields and bogus MSI-X entries must be ignored. Then port and MMIO floods on
 * every device, BARs moved over the LAPIC and RAM, and an IPI storm between two
 * vCPUs. Every line "hostile: ok ..." or "hostile: BAD ..."; PASS if none is BAD.
 * Run with --disk (sectors ATTACK_SECTOR.. are written) and --cpus 2.
 * cmdline: rounds=N repeats every attack N times (default 1, the IPI storm
 * grows with it); no-ipi leaves the storm out; seed=N fixes the floods' random
 * values (default: from the TSC, printed, so a failing run can be repeated). */
#include "guest.h"
#include "pci.h"
#include "popek/hypercall.h"
#include "virtio.h"

const char guest_name[] = "hostile";

#define ATTACK_SECTOR 16      /* the only sectors the guest writes: 16..19 */
#define BROKEN_US     3000000 /* generous: a loaded host can stall a vCPU thread */
#define VEC_IPI_BSP   0x60    /* from the other vCPU */
#define VEC_IPI_AP    0x61
#define VEC_IPI_SELF  0x62 /* + 0 on the BSP, + 1 on the AP */
#define VEC_IPI_ALL   0x64 /* "all excluding self" */
#define LAPIC_PAGE    0xfee00000ull
#define IOAPIC_PAGE   0xfec00000ull

struct target {
	const char *name;
	uint16_t type;
	unsigned nq, q; /* queues to set up, queue to attack */
	uint8_t vec;
	bool (*request)(struct virtio_dev *d);
	struct virtio_dev *d;
};

static unsigned bad;
static uint64_t ram_end;
static volatile uint32_t irqs[256];
static uint8_t scratch[8192] __attribute__((aligned(4096)));
static struct vio_desc itab[4] __attribute__((aligned(16))), itab2[4] __attribute__((aligned(16)));
static struct virtio_dev blk, rng, con;
static uint64_t seed;

static uint64_t rnd(void)
{
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	return seed * 0x2545f4914f6cdd1dull;
}

__attribute__((format(printf, 2, 3))) static void check(bool ok, const char *fmt, ...)
{
	va_list ap;
	kprintf("hostile: %s ", ok ? "ok " : "BAD");
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
	bad += !ok;
}

static void on_irq(struct trap_frame *f)
{
	__atomic_fetch_add(&irqs[f->vector & 0xff], 1, __ATOMIC_RELAXED);
	lapic_eoi();
}

static bool wait_irq(unsigned vec, uint32_t before, uint64_t us)
{
	uint64_t end = tsc_deadline_us(us);
	while (__atomic_load_n(&irqs[vec], __ATOMIC_RELAXED) == before)
		if (rdtsc() > end)
			return false;
		else
			cpu_relax();
	return true;
}

/* ---- one well-formed request per device ---- */

static bool blk_request_ok(struct virtio_dev *d)
{
	static uint8_t out[1024], in[1024];
	for (unsigned i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)rnd();
	memset(in, 0, sizeof(in));
	return vblk_request(d, VBLK_T_OUT, ATTACK_SECTOR, out, sizeof(out)) == VBLK_S_OK &&
	       vblk_request(d, VBLK_T_IN, ATTACK_SECTOR, in, sizeof(in)) == VBLK_S_OK &&
	       !memcmp(in, out, sizeof(in));
}

static bool rng_request_ok(struct virtio_dev *d)
{
	static uint8_t buf[64];
	struct vio_buf b = {(uint64_t)buf, sizeof(buf), true};
	uint32_t len = 0;
	memset(buf, 0, sizeof(buf));
	vio_submit(d, 0, &b, 1);
	if (!vio_wait_used(d, 0, &len, 5000000) || len != sizeof(buf))
		return false;
	for (unsigned i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return true;
	return false; /* 64 zero bytes from getrandom: not plausible */
}

static bool con_request_ok(struct virtio_dev *d)
{
	static const char msg[] = "hostile: hello through virtio-console\n";
	struct vio_buf b = {(uint64_t)msg, sizeof(msg) - 1, false};
	uint32_t len;
	vio_submit(d, 1, &b, 1);
	return vio_wait_used(d, 1, &len, 5000000);
}

static bool live(const struct virtio_dev *d)
{
	uint8_t s = vio_status(d);
	return (s & VIO_S_DRIVER_OK) && !(s & VIO_S_NEEDS_RESET);
}

/* ---- ring attacks: each must leave the device NEEDS_RESET ---- */

static struct vio_desc D(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
	return (struct vio_desc){addr, len, flags, next};
}

/* A device-readable or -writable buffer as the attacked queue wants it. */
static uint16_t
dir(const struct target *t)
{
	return t->type == VIO_ID_CONSOLE ? 0 : VIO_D_WRITE;
}

static void a_loop(struct target *t, struct vio_desc *dt)
{
	dt[0] = D((uint64_t)scratch, 16, dir(t) | VIO_D_NEXT, 1);
	dt[1] = D((uint64_t)scratch + 16, 16, dir(t) | VIO_D_NEXT, 0);
}

static void a_self_loop(struct target *t, struct vio_desc *dt)
{
	dt[0] = D((uint64_t)scratch, 16, dir(t) | VIO_D_NEXT, 0);
}

static void a_next_out_of_range(struct target *t, struct vio_desc *dt)
{
	dt[0] = D((uint64_t)scratch, 16, dir(t) | VIO_D_NEXT, 200);
}

static void a_indirect_self(struct target *t, struct vio_desc *dt)
{
	itab[0] = D((uint64_t)itab, sizeof(itab), VIO_D_INDIRECT, 0);
	dt[0] = D((uint64_t)itab, sizeof(itab), VIO_D_INDIRECT, 0);
	(void)t;
}

static void a_indirect_nested(struct target *t, struct vio_desc *dt)
{
	itab2[0] = D((uint64_t)scratch, 16, dir(t), 0);
	itab[0] = D((uint64_t)itab2, 16, VIO_D_INDIRECT, 0);
	dt[0] = D((uint64_t)itab, 16, VIO_D_INDIRECT, 0);
}

static void a_indirect_loop(struct target *t, struct vio_desc *dt)
{
	itab[0] = D((uint64_t)scratch, 16, dir(t) | VIO_D_NEXT, 1);
	itab[1] = D((uint64_t)scratch + 16, 16, dir(t) | VIO_D_NEXT, 0);
	dt[0] = D((uint64_t)itab, 32, VIO_D_INDIRECT, 0);
}

static void a_indirect_huge(struct target *t, struct vio_desc *dt)
{
	dt[0] = D((uint64_t)itab, 0xfffffff0u, VIO_D_INDIRECT, 0);
	(void)t;
}

static void a_indirect_outside(struct target *t, struct vio_desc *dt)
{
	dt[0] = D(1ull << 40, 64, VIO_D_INDIRECT, 0);
	(void)t;
}

static void a_outside_ram(struct target *t, struct vio_desc *dt)
{
	dt[0] = D(1ull << 40, 512, dir(t), 0);
}

static void a_in_own_bar(struct target *t, struct vio_desc *dt)
{
	dt[0] = D(t->d->bar, 64, dir(t), 0);
}

static void a_in_lapic(struct target *t, struct vio_desc *dt)
{
	dt[0] = D(LAPIC_PAGE, 64, dir(t), 0);
}

static void a_straddle_ram_end(struct target *t, struct vio_desc *dt)
{
	dt[0] = D(ram_end - 256, 4096, dir(t), 0);
}

static void a_len_4g(struct target *t, struct vio_desc *dt)
{
	dt[0] = D((uint64_t)scratch, 0xffffffffu, dir(t), 0);
}

static void a_read_after_write(struct target *t, struct vio_desc *dt)
{
	dt[0] = D((uint64_t)scratch, 16, VIO_D_WRITE | VIO_D_NEXT, 1);
	dt[1] = D((uint64_t)scratch + 16, 16, 0, 0);
	(void)t;
}

static const struct {
	const char *name;
	void (*build)(struct target *t, struct vio_desc *dt);
	uint16_t head, idx_jump; /* avail ring entry; extra distance of avail.idx */
} ring_attacks[] = {
    {"descriptor loop (0 -> 1 -> 0)", a_loop, 0, 0},
    {"descriptor pointing to itself", a_self_loop, 0, 0},
    {"next index beyond the queue", a_next_out_of_range, 0, 0},
    {"indirect table containing itself", a_indirect_self, 0, 0},
    {"nested indirect table", a_indirect_nested, 0, 0},
    {"loop inside an indirect table", a_indirect_loop, 0, 0},
    {"indirect table of 0xfffffff0 bytes", a_indirect_huge, 0, 0},
    {"indirect table outside RAM", a_indirect_outside, 0, 0},
    {"buffer outside RAM (1 TiB)", a_outside_ram, 0, 0},
    {"buffer in the device's own BAR", a_in_own_bar, 0, 0},
    {"buffer on the LAPIC page", a_in_lapic, 0, 0},
    {"buffer straddling the end of RAM", a_straddle_ram_end, 0, 0},
    {"buffer of 0xffffffff bytes", a_len_4g, 0, 0},
    {"readable buffer after a writable one", a_read_after_write, 0, 0},
    {"head index beyond the queue", a_self_loop, 300, 0},
    {"avail.idx 1000 ahead of the ring", a_self_loop, 0, 999},
};

/* NEEDS_RESET and a config interrupt, then a reset brings the device back. */
static void expect_broken(struct target *t, const char *what, uint32_t cfg_irqs)
{
	bool needs = vio_wait_status(t->d, VIO_S_NEEDS_RESET, BROKEN_US);
	bool irq = wait_irq(t->vec, cfg_irqs, BROKEN_US);
	bool back = vio_start(t->d, t->nq) && t->request(t->d);
	check(needs && irq && back, "%s: %s -> %s%s%s", t->name, what,
	      needs ? "NEEDS_RESET" : "device did not flag NEEDS_RESET",
	      irq ? ", config interrupt" : ", no config interrupt",
	      back ? ", works after reset" : ", NOT working after reset");
}

static void ring_attack(struct target *t, unsigned i)
{
	struct vio_ring *r = &t->d->ring[t->q];
	uint32_t cfg = irqs[t->vec];
	ring_attacks[i].build(t, r->desc);
	r->avail.idx = (uint16_t)(r->avail.idx + ring_attacks[i].idx_jump);
	vio_offer(t->d, t->q, ring_attacks[i].head);
	expect_broken(t, ring_attacks[i].name, cfg);
}

/* Queue setups the device must refuse (NEEDS_RESET at queue_enable). */
static void setup_attack(struct target *t, const char *what, uint16_t size, uint64_t desc)
{
	uint32_t cfg = irqs[t->vec];
	if (!vio_begin(t->d, 1ull << VIO_F_VERSION_1 | 1ull << VIO_F_INDIRECT_DESC)) {
		check(false, "%s: FEATURES_OK refused", t->name);
		return;
	}
	vio_cc_set(t->d, VIO_CC_Q_SELECT, 2, t->q);
	vio_cc_set(t->d, VIO_CC_Q_SIZE, 2, size);
	vio_cc_set(t->d, VIO_CC_Q_DESC, 8, desc);
	vio_cc_set(t->d, VIO_CC_Q_DRIVER, 8, (uint64_t)&t->d->ring[t->q].avail);
	vio_cc_set(t->d, VIO_CC_Q_DEVICE, 8, (uint64_t)&t->d->ring[t->q].used);
	vio_cc_set(t->d, VIO_CC_Q_ENABLE, 2, 1);
	vio_driver_ok(t->d);
	expect_broken(t, what, cfg);
}

/* ---- accesses that must be ignored: the device stays live ---- */

static void ignored(struct target *t, const char *what, bool state_ok)
{
	bool ok = live(t->d) && t->request(t->d);
	check(state_ok && ok, "%s: %s -> %s%s", t->name, what, state_ok ? "ignored" : "NOT ignored",
	      ok ? ", device works" : ", device broken");
	if (!ok)
		vio_start(t->d, t->nq);
}

static void reconfigure_attacks(struct target *t)
{
	struct virtio_dev *d = t->d;
	vio_cc_set(d, VIO_CC_Q_SELECT, 2, t->q);
	uint64_t desc = vio_cc(d, VIO_CC_Q_DESC, 8);
	vio_cc_set(d, VIO_CC_Q_DESC, 8, (uint64_t)scratch);
	vio_cc_set(d, VIO_CC_Q_DRIVER, 4, 0x1234);
	vio_cc_set(d, VIO_CC_Q_SIZE, 2, 3);
	vio_cc_set(d, VIO_CC_Q_ENABLE, 2, 0);
	ignored(t, "queue_desc/size/enable changed after DRIVER_OK",
		vio_cc(d, VIO_CC_Q_DESC, 8) == desc && vio_cc(d, VIO_CC_Q_SIZE, 2) == VIO_QSIZE &&
		    vio_cc(d, VIO_CC_Q_ENABLE, 2) == 1);

	vio_cc_set(d, VIO_CC_Q_SELECT, 2, 0xffff);
	vio_cc_set(d, VIO_CC_Q_DESC, 8, 0);
	vio_cc_set(d, VIO_CC_Q_ENABLE, 2, 1);
	bool none = vio_cc(d, VIO_CC_Q_SIZE, 2) == 0;
	vio_cc_set(d, VIO_CC_Q_SELECT, 2, t->q);
	ignored(t, "queue_select 0xffff and writes to it", none);

	uint64_t nq = vio_cc(d, VIO_CC_NUM_QUEUES, 2);
	vio_cc_set(d, VIO_CC_NUM_QUEUES, 2, 99);
	vio_cc_set(d, VIO_CC_DFSELECT, 4, 0);
	uint64_t df = vio_cc(d, VIO_CC_DF, 4);
	vio_cc_set(d, VIO_CC_DF, 4, ~df);
	vio_cc_set(d, VIO_CC_GENERATION, 1, 0x55);
	vio_cc_set(d, VIO_CC_GFSELECT, 4, 0);
	uint64_t gf = vio_cc(d, VIO_CC_GF, 4);
	vio_cc_set(d, VIO_CC_GF, 4, 0xffffffff); /* after FEATURES_OK */
	uint32_t cfg0 = d->devcfg ? mmio_read32(d->devcfg) : 0;
	if (d->devcfg)
		mmio_write32(d->devcfg, ~cfg0);
	ignored(t,
		"writes to num_queues, device features, generation, features after FEATURES_OK, "
		"device config",
		vio_cc(d, VIO_CC_NUM_QUEUES, 2) == nq && vio_cc(d, VIO_CC_DF, 4) == df &&
		    vio_cc(d, VIO_CC_GF, 4) == gf &&
		    (!d->devcfg || mmio_read32(d->devcfg) == cfg0));

	/* Odd widths and offsets inside the common config. */
	for (unsigned off = 0; off < 0x40; off++)
		mmio_write8(d->common + off, 0xa5);
	vio_start(d, t->nq);
	ignored(t, "byte writes all over the common config, then a reset", true);

	/* A notify for a queue the device does not have. */
	mmio_write16(d->notify + 40 * d->notify_mult, 40);
	mmio_write32(d->notify + 0x800, 0xffffffff);
	ignored(t, "notify for queue 40 and far past the notify area", true);

	/* The used ring is the device's: whatever the driver writes there, and a
	 * kick with nothing new to do, must not make the device act. The index is
	 * put back before the next request, as this driver polls it for completion
	 * (with eventfd kicks on kvm, a scribbled index would look complete at once). */
	struct vio_ring *r = &d->ring[t->q];
	uint16_t idx = r->used.idx;
	r->used.idx = (uint16_t)(idx + 0x1234);
	r->used.flags = 0xffff;
	r->used.ring[r->used_seen % VIO_QSIZE].id = 0xffffffff;
	r->used.ring[r->used_seen % VIO_QSIZE].len = 0xffffffff;
	r->avail.used_event = 0xffff;
	vio_kick(d, t->q);
	tsc_delay_us(1000);
	bool untouched = r->used.idx == (uint16_t)(idx + 0x1234);
	r->used.idx = idx;
	ignored(t, "used.idx, used.flags and a used element scribbled by the driver, then a kick",
		untouched);
}

static void msix_attacks(struct target *t)
{
	struct virtio_dev *d = t->d;
	uint64_t e = d->msix_table + 16 * (1 + t->q); /* the attacked queue's vector */
	uint32_t before = irqs[t->vec + 1 + t->q];
	uint64_t bogus[] = {0, 0xdead0000ull, 0x200000ull, LAPIC_PAGE | 1ull << 32,
			    0xfffffffffffff000ull};
	bool quiet = true;
	for (unsigned i = 0; i < ARRAY_SIZE(bogus); i++) {
		mmio_write32(e, (uint32_t)bogus[i]);
		mmio_write32(e + 4, (uint32_t)(bogus[i] >> 32));
		mmio_write32(e + 8, 0xffffffff);
		if (!t->request(d))
			quiet = false;
	}
	quiet = quiet && irqs[t->vec + 1 + t->q] == before;
	/* Accesses the table must ignore: past its end, odd widths, misaligned. */
	mmio_write32(d->msix_table + 16 * 60, 0x12345678);
	mmio_write16(e + 2, 0xbeef);
	mmio_write8(e + 12, 0xff);
	mmio_write32(e + 6, 0xffffffff);
	mmio_write64(d->msix_pba, ~0ull);
	(void)mmio_read8(e + 3);
	(void)mmio_read64(d->msix_table + 16 * 60);
	/* Repair the entry: the interrupt must come again. */
	mmio_write32(e, 0xfee00000);
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, (uint32_t)(t->vec + 1 + t->q));
	mmio_write32(e + 12, 0);
	bool again = t->request(d) && wait_irq(t->vec + 1 + t->q, before, BROKEN_US);
	check(quiet && again && live(d),
	      "%s: MSI-X entries with bogus addresses and data -> %s, %s", t->name,
	      quiet ? "requests complete, no stray interrupt" : "request failed or stray interrupt",
	      again ? "interrupts back after repair" : "NO interrupt after repair");
}

static void attack_virtio(struct target *t)
{
	if (!vio_find(t->d, t->type)) {
		check(false, "%s: device not found", t->name);
		return;
	}
	t->d->msi_vec = t->vec;
	check(vio_start(t->d, t->nq) && t->request(t->d), "%s: starts and answers a request",
	      t->name);
	for (unsigned i = 0; i < ARRAY_SIZE(ring_attacks); i++)
		ring_attack(t, i);
	setup_attack(t, "queue size 0", 0, (uint64_t)t->d->ring[t->q].desc);
	setup_attack(t, "queue size 3 (not a power of 2)", 3, (uint64_t)t->d->ring[t->q].desc);
	setup_attack(t, "queue size 1024 (above the maximum)", 1024,
		     (uint64_t)t->d->ring[t->q].desc);
	setup_attack(t, "descriptor table outside RAM", VIO_QSIZE, 1ull << 40);
	setup_attack(t, "descriptor table in the BAR", VIO_QSIZE, t->d->bar);
	setup_attack(t, "misaligned descriptor table", VIO_QSIZE,
		     (uint64_t)t->d->ring[t->q].desc + 8);
	setup_attack(t, "descriptor table straddling the end of RAM", VIO_QSIZE, ram_end - 64);
	/* An offered feature bit the device does not have must not get FEATURES_OK. */
	bool refused = !vio_begin(t->d, 1ull << VIO_F_VERSION_1 | 1ull << 63);
	check(refused && vio_start(t->d, t->nq) && t->request(t->d),
	      "%s: unknown feature bit -> FEATURES_OK %s", t->name,
	      refused ? "refused" : "ACCEPTED");
	reconfigure_attacks(t);
	msix_attacks(t);
}

/* ---- virtio-blk request-level attacks ---- */

static void blk_attacks(struct target *t)
{
	struct virtio_dev *d = t->d;
	uint64_t cap = vblk_capacity(d);
	int past = vblk_request(d, VBLK_T_OUT, cap - 1, scratch, 1024);
	int at_end = vblk_request(d, VBLK_T_IN, cap, scratch, 512);
	int far = vblk_request(d, VBLK_T_OUT, ~0ull >> 9, scratch, 512);
	int partial = vblk_request(d, VBLK_T_OUT, ATTACK_SECTOR, scratch, 100);
	bool works = live(d) && t->request(d);
	check(past == VBLK_S_IOERR && at_end == VBLK_S_IOERR && far == VBLK_S_IOERR &&
		  partial == VBLK_S_IOERR && works,
	      "virtio-blk: write across the end %d, read at the end %d, write at sector 2^55 %d, "
	      "partial sector %d (IOERR = 1, no answer = -1), device %s",
	      past, at_end, far, partial, works ? "works" : "BROKEN");
	check(vblk_request(d, 0x7777, 0, scratch, 512) == 2 && live(d),
	      "virtio-blk: unknown request type -> UNSUPP");
	/* A request without a status byte cannot be answered. */
	uint32_t cfg = irqs[t->vec];
	struct vio_buf b = {(uint64_t)scratch, 16, false};
	memset(scratch, 0, 16);
	vio_submit(d, 0, &b, 1);
	expect_broken(t, "request without a status byte", cfg);
}

/* ---- port and MMIO floods ---- */

#define FLOOD 4000

static void port_flood(void)
{
	/* Writes to everything but the lines that end the VM on purpose: the
	 * i8042 reset commands, PM1_CNT.SLP_EN, 0xcf9, port 0x92 and debug-exit.
	 * Each port gets only widths that stay inside its own register. */
	static const struct {
		uint16_t port;
		uint8_t widths; /* bit 0: byte, 1: word, 2: dword */
	} wports[] = {
	    {0x3f9, 1}, {0x3fa, 3}, {0x3fb, 1}, {0x3fd, 1}, {0x3fe, 1}, {0x3ff, 1},
	    {0x60, 1},	{0x70, 3},  {0x71, 1},	{0x600, 7}, {0x602, 3}, {0x608, 7},
	    {0xcfa, 3}, {0x511, 1}, {0x510, 3}, {0x80, 1},
	};
	for (unsigned i = 0; i < FLOOD; i++) {
		unsigned k = (unsigned)(rnd() % ARRAY_SIZE(wports));
		uint16_t p = wports[k].port;
		uint32_t v = (uint32_t)rnd();
		unsigned w = (unsigned)rnd() % 3;
		while (!(wports[k].widths & 1u << w))
			w = (w + 1) % 3;
		if (w == 0)
			outb(p, (uint8_t)v);
		else if (w == 1)
			outw(p, (uint16_t)v); /* 0x510: an fw_cfg selector write, not a hypercall */
		else
			outl(p, v);
		uint8_t c = (uint8_t)(v >> 8);
		if (c < 0xf0 && c != 0xd1)
			outb(0x64, c); /* controller commands, not the reset ones */
		outw(0x604, (uint16_t)(v & ~(1u << 13)));
	}
	/* Reads from every port there is. */
	for (unsigned i = 0; i < 4 * FLOOD; i++) {
		uint16_t p = (uint16_t)rnd();
		switch (rnd() % 3) {
		case 0:
			(void)inb(p);
			break;
		case 1:
			(void)inw(p);
			break;
		default:
			(void)inl(p);
			break;
		}
	}
	serial_init(); /* the UART's registers got random values */
	/* Each device still answers as it should. */
	for (unsigned i = 0; i < 64 && (inb(0x64) & 1); i++)
		(void)inb(0x60); /* what the flood left in the i8042's output buffer */
	outb(0x64, 0xaa);	 /* controller self-test */
	for (unsigned i = 0; i < 1000 && !(inb(0x64) & 1); i++)
		cpu_relax();
	uint8_t kbc = inb(0x60);
	outb(0x70, 0x0d);
	uint8_t rtc_d = inb(0x71);
	uint32_t t0 = inl(0x608);
	tsc_delay_us(2000);
	uint32_t t1 = inl(0x608);
	check(kbc == 0x55 && rtc_d == 0x80 && t1 != t0,
	      "port I/O flood on UART, i8042, CMOS, ACPI PM, 0x510/0x511 and all ports for "
	      "reading -> i8042 self-test %#x, CMOS register D %#x, PM timer %s",
	      kbc, rtc_d, t1 != t0 ? "running" : "STOPPED");
}

static void pci_flood(void)
{
	for (unsigned i = 0; i < FLOOD; i++) {
		unsigned bus = (unsigned)rnd() & 0xff, dev = (unsigned)rnd() & 31,
			 fn = (unsigned)rnd() & 7, off = (unsigned)rnd() & 0xff;
		bool mine = bus == 0 && fn == 0 && pci_read(dev, PCI_VENDOR_ID, 2) != 0xffff;
		outl(PCI_CONF_ADDR, pci_conf_addr(bus, dev, fn, off) | (uint32_t)(rnd() & 3));
		(void)inb((uint16_t)(PCI_CONF_DATA + (rnd() & 3)));
		(void)inw((uint16_t)(PCI_CONF_DATA + (rnd() & 2)));
		(void)inl(PCI_CONF_DATA);
		if (!mine) /* config writes to functions that do not exist */
			outl(PCI_CONF_DATA, (uint32_t)rnd());
		outl(PCI_CONF_ADDR, (uint32_t)rnd() & ~(1u << 31)); /* enable bit clear */
		outl(PCI_CONF_DATA, (uint32_t)rnd());
		outb(PCI_CONF_ADDR, (uint8_t)rnd()); /* not latched: byte access */
	}
	bool ok = vio_start(&blk, 1) && blk_request_ok(&blk);
	check(ok, "PCI conf1 flood: out-of-range bus/dev/fn/offsets -> devices unharmed");
}

static void mmio_flood(struct target *t)
{
	struct virtio_dev *d = t->d;
	vio_reset(d);
	for (unsigned i = 0; i < FLOOD; i++) {
		uint64_t off = rnd() & 0x7fff;
		unsigned size = 1u << (rnd() % 4);
		off &= ~(uint64_t)(size - 1);
		uint64_t a = d->bar + off, v = rnd();
		(void)(size == 1   ? mmio_read8(a)
		       : size == 2 ? mmio_read16(a)
		       : size == 4 ? mmio_read32(a)
				   : mmio_read64(a));
		/* Writes everywhere but the common config and the MSI-X table:
		 * random ring addresses or MSI messages would be requests the guest
		 * really made. */
		if (off < 0x1000 || (off >= 0x4000 && off < 0x5000))
			continue;
		if (size == 1)
			mmio_write8(a, (uint8_t)v);
		else if (size == 2)
			mmio_write16(a, (uint16_t)v);
		else if (size == 4)
			mmio_write32(a, (uint32_t)v);
		else
			mmio_write64(a, v);
	}
	check(vio_start(d, t->nq) && t->request(d),
	      "%s: MMIO flood on the BAR -> device works after reset", t->name);
}

static void other_mmio_flood(void)
{
	for (unsigned i = 0; i < FLOOD; i++) {
		(void)mmio_read32(LAPIC_PAGE + (rnd() & 0x3f0));
		mmio_write32(IOAPIC_PAGE, 0x01); /* IOREGSEL: version */
		(void)mmio_read32(IOAPIC_PAGE + 0x10);
		uint64_t hole = 0xd0000000ull + (rnd() & 0x0ffffffc);
		(void)mmio_read32(hole);
		mmio_write32(hole, (uint32_t)rnd());
		(void)mmio_read32(0xfed00000ull + (rnd() & 0x3fc)); /* no HPET here */
	}
	uint32_t ver = mmio_read32(LAPIC_PAGE + 0x30);
	check(lapic_id() == 0 && (ver & 0xff) >= 0x10,
	      "MMIO flood on LAPIC, IOAPIC and unassigned space -> LAPIC still sane (version %#x)",
	      ver);
}

/* pvpanic: reads anywhere in its BAR, writes with the two event bits clear
 * (set, they end the VM on purpose). */
static void pvpanic_flood(void)
{
	int slot = pci_find(0x1b36, 0x0011);
	if (slot < 0) {
		check(false, "pvpanic: device not found");
		return;
	}
	uint64_t bar = pci_bar64((unsigned)slot, 0);
	for (unsigned i = 0; i < FLOOD; i++) {
		uint64_t off = rnd() & 0xff8;
		(void)mmio_read64(bar + off);
		(void)mmio_read8(bar + (off | (rnd() & 7)));
		mmio_write64(bar + off, rnd() & ~3ull);
		mmio_write8(bar + 1 + (rnd() % 0xffe), (uint8_t)rnd());
	}
	uint8_t events = mmio_read8(bar);
	check(events == 3, "pvpanic: flood of reads and harmless writes -> events still %#x",
	      events);
}

/* popek's hypercalls with bad arguments: errors, never a crash. */
static void hypercall_attacks(void)
{
	if (hc_version() != POPEK_HC_ABI_VERSION) {
		check(true, "hypercalls: not under popek, skipped");
		return;
	}
	long straddle = hc_console_write((void *)(ram_end - 16), 64);
	long lapic = hc_console_write((void *)LAPIC_PAGE, 16);
	long wrap = hc_console_write((void *)0xffffffffffffff00ull, 0x200);
	long huge = hc_console_write(scratch, 1ull << 63);
	long nr = popek_hypercall(99, 0, 0, 0, 0), nr2 = popek_hypercall(0xffffffff, 0, 0, 0, 0);
	long clk = hc_get_time(12345);
	for (unsigned i = 0; i < FLOOD; i++)
		hc_yield();
	check(straddle == -14 && lapic == -14 && wrap == -14 && huge == -22 && nr == -38 &&
		  nr2 == -38 && clk == -22,
	      "hypercalls: console_write across the end of RAM %ld, on the LAPIC %ld, wrapping "
	      "%ld, 2^63 bytes %ld; numbers 99 %ld and 0xffffffff %ld; clock 12345 %ld; %u yields",
	      straddle, lapic, wrap, huge, nr, nr2, clk, FLOOD);
}

/* String instructions with long counts on ports and MMIO: the engine must
 * run them to the end (or fault) without stalling the VMM. */
static void string_attacks(void)
{
	uint64_t rcx = 0x10000, rdi = 0xd0000000ull; /* unassigned MMIO */
	__asm__ volatile("rep insb" : "+c"(rcx), "+D"(rdi) : "d"(0x80) : "memory");
	bool ins_done = rcx == 0 && rdi == 0xd0010000ull;
	uint64_t rsi = LAPIC_PAGE;
	rcx = 0x400;
	__asm__ volatile("rep outsl" : "+c"(rcx), "+S"(rsi) : "d"(0x80) : "memory");
	bool outs_done = rcx == 0 && rsi == LAPIC_PAGE + 0x1000;
	/* RAM from the device config and ISR, then the read-only device config
	 * and the notify area overwritten. */
	rcx = 0x1000;
	rsi = blk.bar + 0x1000;
	rdi = (uint64_t)scratch;
	__asm__ volatile("rep movsb" : "+c"(rcx), "+S"(rsi), "+D"(rdi) : : "memory");
	bool movs_done = rcx == 0;
	uint64_t cap = vblk_capacity(&blk);
	rcx = 0x2000 / 8;
	rdi = blk.bar + 0x2000;
	__asm__ volatile("rep stosq" : "+c"(rcx), "+D"(rdi) : "a"(~0ull) : "memory");
	bool stos_done = rcx == 0 && vblk_capacity(&blk) == cap;
	check(ins_done && outs_done && movs_done && stos_done && blk_request_ok(&blk),
	      "REP INSB into unassigned MMIO, REP OUTSL from the LAPIC, REP MOVSB from and REP "
	      "STOSQ over virtio-blk's BAR -> %s%s%s%s, device works",
	      ins_done ? "ins done" : "INS INCOMPLETE",
	      outs_done ? ", outs done" : ", OUTS INCOMPLETE",
	      movs_done ? ", movs done" : ", MOVS INCOMPLETE",
	      stos_done ? ", config unchanged" : ", CONFIG CHANGED or STOS incomplete");
}

/* Move virtio-blk's BAR over the LAPIC, over RAM, to 0 and past the address
 * limit; the LAPIC and RAM must stay what they are, and the device must work
 * again once the BAR is back. */
static void bar_attacks(void)
{
	uint64_t home = pci_bar64(blk.slot, blk.bar_index);
	volatile uint64_t *ramp = (volatile uint64_t *)(scratch + 4096);
	*ramp = 0x0123456789abcdefull;
	pci_set_bar64(blk.slot, blk.bar_index, LAPIC_PAGE);
	bool lapic_ok = lapic_id() == 0 && (mmio_read32(LAPIC_PAGE + 0x30) & 0xff) >= 0x10;
	pci_set_bar64(blk.slot, blk.bar_index, (uint64_t)ramp & ~0x7fffull);
	bool ram_ok = *ramp == 0x0123456789abcdefull;
	*ramp = 42;
	ram_ok = ram_ok && *ramp == 42;
	pci_set_bar64(blk.slot, blk.bar_index, 0);
	pci_set_bar64(blk.slot, blk.bar_index, 0xfffffffffff00000ull);
	pci_write(blk.slot, PCI_COMMAND, 2, 0);
	bool dark = mmio_read32(home) == 0xffffffff; /* decoding off: nothing answers */
	pci_set_bar64(blk.slot, blk.bar_index, home);
	pci_write(blk.slot, PCI_COMMAND, 2, PCI_CMD_MEMORY);
	vio_locate(&blk);
	bool works = vio_start(&blk, 1) && blk_request_ok(&blk);
	check(lapic_ok && ram_ok && dark && works,
	      "virtio-blk BAR moved over the LAPIC (%s), over RAM (%s), to 0 and 2^64-1M, "
	      "decoding off (%s) -> %s",
	      lapic_ok ? "LAPIC unaffected" : "LAPIC HIDDEN",
	      ram_ok ? "RAM unaffected" : "RAM HIDDEN", dark ? "BAR dark" : "BAR STILL ANSWERS",
	      works ? "works back home" : "NOT working back home");
}

/* ---- IPI storm: both vCPUs write the ICR as fast as they can ---- */

#define IPIS	   20000
#define ICR_FIXED  0x0000
#define ICR_SELF   (1u << 18)
#define ICR_OTHERS (3u << 18)

static volatile bool ap_ready, ap_go, ap_done, bsp_checked;
static unsigned ipis = IPIS;

/* Raw ICR writes, never waiting for delivery; the target counts what it gets. */
static void storm(uint32_t peer, uint8_t vec, uint8_t self_vec)
{
	for (unsigned i = 0; i < ipis; i++) {
		lapic_write(LAPIC_ICR_HI, peer << 24);
		lapic_write(LAPIC_ICR_LO, ICR_FIXED | vec);
		if ((i & 7) == 0) {
			lapic_write(LAPIC_ICR_HI, 7u << 24); /* no such CPU */
			lapic_write(LAPIC_ICR_LO, ICR_FIXED | vec);
			lapic_write(LAPIC_ICR_LO, ICR_OTHERS | VEC_IPI_ALL);
			lapic_write(LAPIC_ICR_LO, ICR_SELF | self_vec);
			lapic_write(LAPIC_ICR_LO, ICR_FIXED | 3); /* illegal vector */
		}
	}
}

static void ap_main(void)
{
	lapic_enable(0xff);
	sti();
	/* A software-disabled APIC drops fixed IPIs: the BSP storms only now. */
	__atomic_store_n(&ap_ready, true, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&ap_go, __ATOMIC_ACQUIRE))
		cpu_relax();
	storm(0, VEC_IPI_BSP, VEC_IPI_SELF + 1);
	__atomic_store_n(&ap_done, true, __ATOMIC_RELEASE);
	/* Interrupts stay on until the BSP has counted: an IPI still pending in
	 * the IRR when the storm ends must land, not be cut off by a halt. */
	while (!__atomic_load_n(&bsp_checked, __ATOMIC_ACQUIRE))
		cpu_relax();
}

static void ipi_storm(void)
{
	if (!smp_start_ap(1, ap_main, 3000000)) {
		check(false, "IPI storm: the second vCPU did not start (run with --cpus 2)");
		return;
	}
	uint64_t ready_by = tsc_deadline_us(3000000);
	while (!__atomic_load_n(&ap_ready, __ATOMIC_ACQUIRE) && rdtsc() < ready_by)
		cpu_relax();
	uint64_t t0 = rdtsc();
	__atomic_store_n(&ap_go, true, __ATOMIC_RELEASE);
	storm(1, VEC_IPI_AP, VEC_IPI_SELF);
	uint64_t end = tsc_deadline_us(20000000);
	while (!__atomic_load_n(&ap_done, __ATOMIC_ACQUIRE) && rdtsc() < end)
		cpu_relax();
	uint64_t ms = (rdtsc() - t0) / (tsc_hz() / 1000);
	/* Fixed IPIs to a busy target coalesce in its IRR; the last of them
	 * must still arrive (a loaded host may run the target late). */
	wait_irq(VEC_IPI_AP, 0, 2000000);
	wait_irq(VEC_IPI_BSP, 0, 2000000);
	__atomic_store_n(&bsp_checked, true, __ATOMIC_RELEASE);
	bool ok = ap_done && irqs[VEC_IPI_BSP] > 0 && irqs[VEC_IPI_AP] > 0 && blk_request_ok(&blk);
	/* Fixed IPIs to a busy target coalesce in its IRR: at least one must
	 * arrive, not all. Self-IPIs are reported, not judged (another part of
	 * issue 10 fixes their delivery). */
	check(ok,
	      "IPI storm: %u ICR writes per vCPU in %lu ms; from the peer: BSP got %u, AP got %u; "
	      "broadcast %u; self BSP %u, AP %u%s",
	      ipis * 13 / 8, ms, irqs[VEC_IPI_BSP], irqs[VEC_IPI_AP], irqs[VEC_IPI_ALL],
	      irqs[VEC_IPI_SELF], irqs[VEC_IPI_SELF + 1], ap_done ? "" : "; the AP never finished");
}

int guest_main(const struct boot_info *bi)
{
	static struct target targets[] = {
	    {"virtio-blk", VIO_ID_BLOCK, 1, 0, 0x40, blk_request_ok, &blk},
	    {"virtio-rng", VIO_ID_RNG, 1, 0, 0x48, rng_request_ok, &rng},
	    {"virtio-console", VIO_ID_CONSOLE, 2, 1, 0x50, con_request_ok, &con},
	};
	ram_end = (bi->ram_bytes + 0xfffff) & ~0xfffffull;
	pic_disable();
	lapic_enable(0xff);
	for (unsigned v = 0x40; v < 0x70; v++)
		trap_set_handler(v, on_irq);
	trap_set_handler(0xff, on_irq);
	sti();
	uint64_t rounds = boot_arg(bi, "rounds", 1);
	seed = boot_arg(bi, "seed", rdtsc() % 1000000000) | 1; /* xorshift needs a non-zero state */
	ipis = (unsigned)(IPIS * rounds);
	kprintf("hostile: RAM ends at %#lx, %lu rounds, seed=%lu\n", ram_end, rounds, seed);
	for (uint64_t r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < ARRAY_SIZE(targets); i++)
			attack_virtio(&targets[i]);
		blk_attacks(&targets[0]);
		for (unsigned i = 0; i < ARRAY_SIZE(targets); i++)
			mmio_flood(&targets[i]);
		port_flood();
		pci_flood();
		other_mmio_flood();
		string_attacks();
		pvpanic_flood();
		hypercall_attacks();
		bar_attacks();
	}
	if (!boot_flag(bi, "no-ipi"))
		ipi_storm();
	if (bad)
		fail("%u attacks did not get the expected answer", bad);
	return 0;
}
