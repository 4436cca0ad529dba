/* libFuzzer: a hostile migration stream, read as `popek receive` does
 * (framing, checksums, zstd, HELLO metadata, page runs into the memfd, disk
 * blocks into the copies' files, the state sections and every vCPU/VM
 * record; post-copy's DISCARD, and the pages after the handover through a
 * userfaultfd up to POSTCOPY_END). The input is fed twice: raw,
 * and as a list of { u8 type, u8 compress, le16 length, payload } that the
 * harness frames with correct checksums (a fuzzer cannot forge a CRC), so
 * the records' contents are reached too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "machine/config.h"
#include "machine/machine.h"
#include "migrate/migrate.h"
#include "snapshot/snapshot.h"

/* A HELLO that says copy_storage gets its disks as files in a directory of
 * the harness's, created and truncated to the sizes it names (sparse). */
static char dir[] = "/tmp/fuzz-migrate-XXXXXX", path[MAX_DISKS][64];

static void remove_disks(void)
{
	for (int i = 0; i < MAX_DISKS; i++)
		if (path[i][0])
			unlink(path[i]);
	rmdir(dir);
}

static void copy_disks(struct mig_recv *r, struct vm_config *cfg)
{
	static bool made;
	struct disk_config given[MAX_DISKS] = {0};
	if (!made && !mkdtemp(dir))
		return;
	if (!made)
		atexit(remove_disks);
	made = true;
	for (int i = 0; i < r->disks.n; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/disk%d", dir, i);
		given[i].path = path[i];
	}
	char err[512];
	migrate_receive_disks(r, cfg, given, r->disks.n, err, sizeof(err));
}

/* A post-copy stream goes on after END (its "go" left out): the pages come
 * into RAM through a userfaultfd, as the fault thread takes them, here a
 * private mapping of a memfd, as the destination's RAM is. */
static void postcopy(struct mig_recv *r)
{
	static struct machine m;
	char err[512];
	int fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)r->mem)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.mem.base = mmap(NULL, r->mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	m.mem.size = r->mem;
	if (m.mem.base != MAP_FAILED && !postcopy_arm(r->pc, &m, err, sizeof(err))) {
		r->pc->in = r->in;
		while (postcopy_record(r->pc, err, sizeof(err)) == 0)
			;
	}
	if (m.mem.base != MAP_FAILED)
		munmap(m.mem.base, r->mem);
	close(fd);
}

static void receive(const uint8_t *p, size_t n)
{
	char err[512];
	struct mig_in in = {.fd = -1, .buf = p, .left = n};
	struct mig_recv *r = migrate_receive_begin(&in, err, sizeof(err));
	static struct vm_config cfg;
	if (r) {
		memset(&cfg, 0, sizeof(cfg));
		copy_disks(r, &cfg);
		if (!migrate_receive_rest(r, err, sizeof(err)) && r->pc)
			postcopy(r);
	}
	migrate_receive_free(r);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	receive(data, size);
	/* Worst case: every byte in a body, each body grown by zstd's bound
	 * (len + len/256 + at most 64), and a header per 4 input bytes. */
	size_t cap = 8 + size + size / 256 + (size / 4 + 1) * (MIG_HDR_LEN + 64);
	uint8_t *out = malloc(cap);
	if (!out)
		return 0;
	memcpy(out, MIG_MAGIC, 8);
	size_t n = 8;
	while (size >= 4) {
		size_t len = (size_t)(data[2] | data[3] << 8);
		uint8_t type = data[0], zstd = data[1] & 1;
		data += 4;
		size -= 4;
		if (len > size)
			len = size;
		uint8_t *h = out + n, *body = h + MIG_HDR_LEN;
		size_t stored = len;
		if (zstd) {
			size_t c = ZSTD_compress(body, ZSTD_compressBound(len), data, len, 1);
			if (ZSTD_isError(c))
				break;
			stored = c;
		} else {
			memcpy(body, data, len);
		}
		memset(h, 0, MIG_HDR_LEN);
		h[0] = type;
		h[1] = zstd;
		put32(h + 4, (uint32_t)stored);
		put32(h + 8, (uint32_t)len);
		put32(h + 12, (uint32_t)crc32(0, body, (uInt)stored));
		n += MIG_HDR_LEN + stored;
		data += len;
		size -= len;
	}
	receive(out, n);
	free(out);
	return 0;
}
