/* bench/storage's guest tool (busybox dd cannot seek at random): N reads or
 * writes of BS bytes on FILE, in order or at random BS-aligned offsets
 * within the first SPAN bytes, with O_DIRECT where the file allows it;
 * prints MB/s and IOPS by the guest's monotonic clock.
 * Usage: storage_io FILE read|write seq|rand BS COUNT SPAN */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 7)
		return 64;
	int wr = !strcmp(argv[2], "write"), rnd = !strcmp(argv[3], "rand");
	size_t bs = strtoul(argv[4], NULL, 0);
	long n = strtol(argv[5], NULL, 0);
	uint64_t blocks = strtoull(argv[6], NULL, 0) / bs, x = 88172645463325252ull;
	int direct = 1, fd = open(argv[1], (wr ? O_WRONLY : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		direct = 0;
		fd = open(argv[1], wr ? O_WRONLY : O_RDONLY);
	}
	void *buf;
	if (fd < 0 || !blocks || posix_memalign(&buf, 4096, bs))
		return 1;
	memset(buf, 0x5a, bs);
	double t0 = now();
	for (long i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		off_t off = (off_t)((rnd ? x % blocks : (uint64_t)i % blocks) * bs);
		ssize_t r = wr ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
		if (r != (ssize_t)bs) {
			perror("storage_io");
			return 1;
		}
	}
	if (wr && fdatasync(fd) < 0)
		return 1;
	double dt = now() - t0;
	printf("RESULT %.3f MB/s %.0f IOPS direct=%d\n", n * bs / dt / 1e6, n / dt, direct);
	return 0;
}
