/* virtio-blk driven through the PCI transport like a guest would, including
 * a hostile driver: bad sectors, odd lengths, broken chains, ro images. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/virtio_blk.h"
#include "virtio_driver.h"

#define SECTORS 64
#define HDR	0x200000
#define DATA	0x201000
#define STATUS	0x203000

#define F_RO	(1ull << 5)
#define F_FLUSH (1ull << 9)
#define F_V1	(1ull << VIRTIO_F_VERSION_1)

struct fx {
	struct vdrv d;
	char path[64];
	int fd;
	struct virtio_blk *blk;
};

static struct fx fx;

static void make_image(void)
{
	strcpy(fx.path, "/tmp/popek-blk-XXXXXX");
	fx.fd = mkstemp(fx.path);
	assert_true(fx.fd >= 0);
	uint8_t sector[512];
	for (unsigned s = 0; s < SECTORS; s++) {
		memset(sector, (int)s, sizeof(sector));
		assert_int_equal(write(fx.fd, sector, sizeof(sector)), sizeof(sector));
	}
}

static int open_dev(bool ro, bool format_raw)
{
	char err[256];
	vd_init(&fx.d);
	make_image();
	fx.blk = virtio_blk_create(
	    &fx.d.env, &(struct disk_config){.path = fx.path, .ro = ro, .format_raw = format_raw},
	    err, sizeof(err));
	assert_non_null(fx.blk);
	assert_int_equal(vd_start(&fx.d, F_V1 | F_FLUSH | (ro ? F_RO : 0), 1, true),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	return 0;
}

static int setup_rw(void **state)
{
	return open_dev(false, false);
}

static int setup_ro(void **state)
{
	return open_dev(true, false);
}

static int setup_format_raw(void **state)
{
	return open_dev(false, true);
}

static int teardown(void **state)
{
	virtio_blk_destroy(fx.blk);
	vd_fini(&fx.d);
	close(fx.fd);
	unlink(fx.path);
	return 0;
}

/* Submit one request; returns the status byte (0xee if not completed). */
static uint8_t request(uint32_t type, uint64_t sector, uint32_t len, bool data_write,
		       uint32_t *used_len)
{
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr = {type, 0, sector};
	uint8_t st = 0xee;
	gpa_write(&fx.d.mem, HDR, &hdr, sizeof(hdr));
	gpa_write(&fx.d.mem, STATUS, &st, 1);
	struct vd_buf b[3] = {{HDR, 16, false}, {DATA, len, data_write}, {STATUS, 1, true}};
	if (len)
		vd_submit(&fx.d, 0, b, 3);
	else
		vd_submit(&fx.d, 0, (struct vd_buf[]){b[0], b[2]}, 2);
	uint32_t ul = 0;
	if (!vd_used(&fx.d, 0, &ul))
		return 0xee;
	if (used_len)
		*used_len = ul;
	gpa_read(&fx.d.mem, STATUS, &st, 1);
	return st;
}

static void identity_and_config(void **state)
{
	assert_int_equal(vd_cfg(&fx.d, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(vd_cfg(&fx.d, PCI_DEVICE_ID, 2), 0x1042);
	assert_int_equal(vd_cfg(&fx.d, PCI_REVISION, 1), 1);
	assert_true(vd_cfg(&fx.d, PCI_SUBSYS_ID, 2) >= 0x40);
	uint64_t f = vd_device_features(&fx.d);
	assert_true(f & F_V1);
	assert_true(f & F_FLUSH);
	assert_false(f & F_RO);
	assert_int_equal(vd_rd(&fx.d, VIRTIO_BAR_DEVICE, 8), SECTORS);
	assert_int_equal(vd_rd(&fx.d, VIRTIO_BAR_DEVICE + 20, 4), 512); /* blk_size */
	assert_int_equal(vd_rd(&fx.d, 0x12, 2), 1);			/* num_queues */
}

static void reads_sectors(void **state)
{
	uint32_t used;
	int before = fx.d.msis;
	assert_int_equal(request(0, 3, 1024, true, &used), 0);
	assert_int_equal(used, 1025);
	uint8_t *p = gpa_ptr(&fx.d.mem, DATA, 1024);
	assert_int_equal(p[0], 3);
	assert_int_equal(p[511], 3);
	assert_int_equal(p[512], 4);
	assert_int_equal(p[1023], 4);
	/* the queue's MSI-X vector (1) fired */
	assert_int_equal(fx.d.msis, before + 1);
	assert_int_equal(fx.d.msi_data, VD_MSI_DATA + 1);
}

static void writes_sectors(void **state)
{
	memset(gpa_ptr(&fx.d.mem, DATA, 512), 0xab, 512);
	assert_int_equal(request(1, 7, 512, false, NULL), 0);
	uint8_t back[512];
	assert_int_equal(pread(fx.fd, back, 512, 7 * 512), 512);
	assert_int_equal(back[0], 0xab);
	assert_int_equal(back[511], 0xab);
	assert_int_equal(pread(fx.fd, back, 1, 8 * 512), 1);
	assert_int_equal(back[0], 8);
}

static void flush_and_get_id(void **state)
{
	assert_int_equal(request(4, 0, 0, false, NULL), 0);
	uint32_t used;
	memset(gpa_ptr(&fx.d.mem, DATA, 20), 0, 20);
	assert_int_equal(request(8, 0, 20, true, &used), 0);
	assert_int_equal(used, 21);
	const char *name = strrchr(fx.path, '/') + 1;
	assert_memory_equal(gpa_ptr(&fx.d.mem, DATA, 20), name, strlen(name));
}

static void rejects_out_of_range_sectors(void **state)
{
	assert_int_equal(request(0, SECTORS, 512, true, NULL), 1);
	assert_int_equal(request(0, SECTORS - 1, 1024, true, NULL), 1);
	assert_int_equal(request(0, UINT64_MAX, 512, true, NULL), 1);
	assert_int_equal(request(1, UINT64_MAX / 512 + 1, 512, false, NULL), 1);
	assert_int_equal(request(0, SECTORS - 1, 512, true, NULL), 0); /* last one is fine */
}

static void rejects_partial_sectors(void **state)
{
	assert_int_equal(request(0, 0, 100, true, NULL), 1);
	assert_int_equal(request(1, 0, 513, false, NULL), 1);
}

static void unknown_request_is_unsupported(void **state)
{
	assert_int_equal(request(11, 0, 512, false, NULL), 2); /* WRITE_ZEROES: not offered */
}

static void ro_disk_refuses_writes(void **state)
{
	assert_true(vd_device_features(&fx.d) & F_RO);
	memset(gpa_ptr(&fx.d.mem, DATA, 512), 0xcd, 512);
	assert_int_equal(request(1, 2, 512, false, NULL), 1);
	uint8_t back;
	assert_int_equal(pread(fx.fd, &back, 1, 2 * 512), 1);
	assert_int_equal(back, 2);
	assert_int_equal(request(0, 2, 512, true, NULL), 0); /* reads still work */
	assert_int_equal(request(4, 0, 0, false, NULL), 0);  /* flush is harmless */
}

/* A qcow2 header in sector 0 of a raw image: written, the file would be
 * opened as qcow2 next time (with a backing file the guest chose). */
static uint8_t write_qcow2_header(uint64_t sector)
{
	uint8_t *p = gpa_ptr(&fx.d.mem, DATA, 512);
	memset(p, 0, 512);
	memcpy(p, "QFI\xfb\0\0\0\3", 8);
	return request(1, sector, 512, false, NULL);
}

static void image_header_in_sector0_refused(void **state)
{
	assert_int_equal(write_qcow2_header(0), 1);
	uint8_t back;
	assert_int_equal(pread(fx.fd, &back, 1, 0), 1);
	assert_int_equal(back, 0);		    /* the fixture's sector 0, unchanged */
	assert_int_equal(write_qcow2_header(1), 0); /* elsewhere it is just data */
	memset(gpa_ptr(&fx.d.mem, DATA, 1024), 0x5a, 1024);
	assert_int_equal(request(1, 0, 1024, false, NULL), 0); /* other data in sector 0 */
	assert_int_equal(pread(fx.fd, &back, 1, 0), 1);
	assert_int_equal(back, 0x5a);
}

static void format_raw_takes_any_sector0(void **state)
{
	assert_int_equal(write_qcow2_header(0), 0);
	uint8_t back[4];
	assert_int_equal(pread(fx.fd, back, 4, 0), 4);
	assert_memory_equal(back, "QFI\xfb", 4);
}

static void missing_status_needs_reset(void **state)
{
	struct vd_buf b[1] = {{HDR, 16, false}};
	vd_submit(&fx.d, 0, b, 1);
	assert_true(vd_status(&fx.d) & VIRTIO_STATUS_NEEDS_RESET);
	/* the config vector (0) told the driver */
	assert_int_equal(fx.d.msi_data, VD_MSI_DATA + 0);
	/* a broken device ignores further kicks until reset */
	assert_int_equal(request(0, 0, 512, true, NULL), 0xee);
	/* reset and start over: it works again */
	assert_int_equal(vd_start(&fx.d, F_V1, 1, true) & VIRTIO_STATUS_NEEDS_RESET, 0);
	assert_int_equal(request(0, 0, 512, true, NULL), 0);
}

static void descriptor_loop_needs_reset(void **state)
{
	struct virtq_desc d = {HDR, 16, VIRTQ_DESC_F_NEXT, 0}; /* points at itself */
	gpa_write(&fx.d.mem, fx.d.q[0].desc, &d, sizeof(d));
	uint16_t head = 0, idx = 1;
	gpa_write(&fx.d.mem, fx.d.q[0].avail + 4, &head, 2);
	gpa_write(&fx.d.mem, fx.d.q[0].avail + 2, &idx, 2);
	vd_wr(&fx.d, VIRTIO_BAR_NOTIFY, 2, 0);
	assert_true(vd_status(&fx.d) & VIRTIO_STATUS_NEEDS_RESET);
}

static void header_outside_ram_needs_reset(void **state)
{
	struct vd_buf b[2] = {{VD_RAM - 8, 16, false}, {STATUS, 1, true}};
	vd_submit(&fx.d, 0, b, 2);
	assert_true(vd_status(&fx.d) & VIRTIO_STATUS_NEEDS_RESET);
}

static void features_without_version_1_refused(void **state)
{
	uint8_t st = vd_start(&fx.d, F_FLUSH, 1, false);
	assert_false(st & VIRTIO_STATUS_FEATURES_OK);
	/* features the device never offered are refused too */
	st = vd_start(&fx.d, F_V1 | 1ull << 40, 1, false);
	assert_false(st & VIRTIO_STATUS_FEATURES_OK);
}

static void intx_when_msix_is_off(void **state)
{
	unsigned cap = vd_find_cap(&fx.d, 0x11);
	pci_config_write(&fx.d.pb, fx.d.slot, 0, cap + 2, 2, 0);
	assert_int_equal(vd_start(&fx.d, F_V1, 1, false) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	int msis = fx.d.msis;
	assert_int_equal(request(0, 0, 512, true, NULL), 0);
	assert_true(fx.d.intx);
	assert_int_equal(fx.d.msis, msis);
	assert_int_equal(vd_rd(&fx.d, VIRTIO_BAR_ISR, 1), 1); /* read clears */
	assert_false(fx.d.intx);
	assert_int_equal(vd_rd(&fx.d, VIRTIO_BAR_ISR, 1), 0);
}

static void queue_rings_outside_ram_refused(void **state)
{
	vd_wr(&fx.d, VD_STATUS, 1, 0);
	vd_wr(&fx.d, VD_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vd_wr(&fx.d, VD_GFSEL, 4, 1);
	vd_wr(&fx.d, VD_GF, 4, 1);
	vd_wr(&fx.d, VD_STATUS, 1, 0x0b);
	vd_wr(&fx.d, VD_QSEL, 2, 0);
	vd_wr(&fx.d, VD_QDESC, 8, 0xfffffffffffff000ull);
	vd_wr(&fx.d, VD_QEN, 2, 1);
	assert_true(vd_status(&fx.d) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(vd_rd(&fx.d, VD_QEN, 2), 0);
	/* a bogus queue index and vector read back safely */
	vd_wr(&fx.d, VD_QSEL, 2, 99);
	assert_int_equal(vd_rd(&fx.d, VD_QSIZE_, 2), 0);
	vd_wr(&fx.d, VD_QSEL, 2, 0);
	vd_wr(&fx.d, VD_QMSIX, 2, 1234);
	assert_int_equal(vd_rd(&fx.d, VD_QMSIX, 2), MSIX_NO_VECTOR);
}

static void image_errors_are_clear(void **state)
{
	char err[256];
	/* the fixture holds the image open read-write: a second writer is refused */
	assert_null(
	    virtio_blk_create(&fx.d.env, &(struct disk_config){.path = fx.path}, err, sizeof(err)));
	assert_non_null(strstr(err, "already attached"));
	assert_null(virtio_blk_create(
	    &fx.d.env, &(struct disk_config){.path = "/nonexistent/disk.img"}, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/disk.img"));
	char small[] = "/tmp/popek-small-XXXXXX";
	int fd = mkstemp(small);
	assert_int_equal(write(fd, "x", 1), 1);
	assert_null(virtio_blk_create(&fx.d.env, &(struct disk_config){.path = small, .ro = true},
				      err, sizeof(err)));
	assert_non_null(strstr(err, "512-byte sector"));
	close(fd);
	unlink(small);
}

static void snapshot_round_trip(void **state)
{
	char err[256];
	assert_int_equal(request(0, 1, 512, true, NULL), 0);
	/* move the BAR, as Linux may, so the restore has to follow it */
	pci_config_write(&fx.d.pb, 1, 0, PCI_BAR0, 4, 0xd0000000);
	fx.d.bar = 0xd0000000;
	void *buf;
	size_t len;
	struct virtio_pci *vp = virtio_blk_pci(fx.blk);
	assert_int_equal(virtio_pci_save(vp, &buf, &len), 0);

	/* A second machine with the same RAM and a copy of the image. */
	struct vdrv d2;
	vd_init(&d2);
	memcpy(d2.mem.base, fx.d.mem.base, VD_RAM);
	char path2[] = "/tmp/popek-blk2-XXXXXX";
	int fd2 = mkstemp(path2);
	uint8_t sector[512];
	for (unsigned i = 0; i < SECTORS; i++) {
		assert_int_equal(pread(fx.fd, sector, 512, i * 512), 512);
		assert_int_equal(write(fd2, sector, 512), 512);
	}
	struct virtio_blk *b2 =
	    virtio_blk_create(&d2.env, &(struct disk_config){.path = path2}, err, sizeof(err));
	assert_non_null(b2);
	struct virtio_pci *vp2 = virtio_blk_pci(b2);

	/* hostile blobs are refused */
	assert_int_equal(virtio_pci_load(vp2, buf, len - 1), -1);
	assert_int_equal(virtio_pci_load(vp2, buf, 3), -1);
	uint8_t *bad = malloc(len + 1);
	memcpy(bad, buf, len);
	bad[len] = 0;
	assert_int_equal(virtio_pci_load(vp2, bad, len + 1), -1); /* trailing junk */
	memcpy(bad, buf, len);
	bad[0] ^= 0xff; /* version */
	assert_int_equal(virtio_pci_load(vp2, bad, len), -1);
	free(bad);

	assert_int_equal(virtio_pci_load(vp2, buf, len), 0);
	free(buf);
	d2.bar = 0xd0000000;
	d2.q[0] = fx.d.q[0];
	assert_int_equal(vd_status(&d2), vd_status(&fx.d));
	assert_true(vd_status(&d2) & VIRTIO_STATUS_DRIVER_OK);
	/* the restored device carries on the same ring, interrupting via MSI-X */
	memset(gpa_ptr(&d2.mem, DATA, 512), 0, 512);
	struct vd_buf b[3] = {{HDR, 16, false}, {DATA, 512, true}, {STATUS, 1, true}};
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr = {0, 0, 5};
	gpa_write(&d2.mem, HDR, &hdr, sizeof(hdr));
	vd_submit(&d2, 0, b, 3);
	uint32_t used;
	assert_true(vd_used(&d2, 0, &used));
	assert_int_equal(*(uint8_t *)gpa_ptr(&d2.mem, DATA, 1), 5);
	assert_int_equal(d2.msis, 1);
	assert_int_equal(d2.msi_data, VD_MSI_DATA + 1);

	virtio_blk_destroy(b2);
	vd_fini(&d2);
	close(fd2);
	unlink(path2);
}

static void snapshot_with_rings_outside_ram_refused(void **state)
{
	void *buf;
	size_t len;
	struct virtio_pci *vp = virtio_blk_pci(fx.blk);
	assert_int_equal(virtio_pci_save(vp, &buf, &len), 0);
	/* the last queue record ends with desc, avail, used, last_avail,
	 * used_idx, vector: point desc far outside RAM */
	uint64_t far = 0x7000000000ull;
	memcpy((uint8_t *)buf + len - 6 - 24, &far, 8);
	assert_int_equal(virtio_pci_load(vp, buf, len), -1);
	/* a refused load leaves a reset device, not a half-restored one */
	assert_int_equal(vd_status(&fx.d), 0);
	free(buf);
}

#define RW(f) cmocka_unit_test_setup_teardown(f, setup_rw, teardown)
#define RO(f) cmocka_unit_test_setup_teardown(f, setup_ro, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    RW(identity_and_config),
	    RW(reads_sectors),
	    RW(writes_sectors),
	    RW(flush_and_get_id),
	    RW(rejects_out_of_range_sectors),
	    RW(rejects_partial_sectors),
	    RW(unknown_request_is_unsupported),
	    RO(ro_disk_refuses_writes),
	    RW(image_header_in_sector0_refused),
	    cmocka_unit_test_setup_teardown(format_raw_takes_any_sector0, setup_format_raw,
					    teardown),
	    RW(missing_status_needs_reset),
	    RW(descriptor_loop_needs_reset),
	    RW(header_outside_ram_needs_reset),
	    RW(features_without_version_1_refused),
	    RW(intx_when_msix_is_off),
	    RW(queue_rings_outside_ram_refused),
	    RW(image_errors_are_clear),
	    RW(snapshot_round_trip),
	    RW(snapshot_with_rings_outside_ram_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
