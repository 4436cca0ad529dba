/* Post-copy on the destination: the holes DISCARD left are filled on demand.
 * A vCPU (in KVM or the soft engine) or a device touching a hole blocks in
 * the kernel; the fault thread, which never touches guest RAM itself, reads
 * the event, pulls that page from the source ("pull OFFSET\n" on the same
 * connection) and fills it with UFFDIO_COPY when it arrives, which wakes
 * every thread waiting on it. A hole DISCARD did not name is a page the
 * source has as zero (never sent, or sent as ZERO): it is filled here. */
#include "migrate/postcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "machine/machine.h"

static bool bit(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

struct postcopy_in *postcopy_in_new(uint64_t mem)
{
	struct postcopy_in *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return NULL;
	pc->mem = mem;
	pc->words = (mem / MIG_PAGE + 63) / 64;
	pc->want = calloc(pc->words, sizeof(uint64_t));
	pc->asked = calloc(pc->words, sizeof(uint64_t));
	pc->uffd = pc->in.fd = -1;
	if (!pc->want || !pc->asked) {
		postcopy_in_free(pc);
		return NULL;
	}
	return pc;
}

int postcopy_discard(struct postcopy_in *pc, uint8_t *ram, const uint8_t *p, size_t len, char *err,
		     size_t errlen)
{
	if (!len || len % 16) {
		snprintf(err, errlen, "a DISCARD record of %zu bytes (runs are 16 bytes)", len);
		return -1;
	}
	for (size_t i = 0; i < len; i += 16) {
		uint64_t off = mig_le(p + i, 8), n = mig_le(p + i + 8, 8);
		/* In order and apart: each page is marked once, whatever a
		 * stream repeats. */
		if (!mig_run_inside(off, n, pc->mem) || off < pc->discard_end) {
			snprintf(err, errlen,
				 "a DISCARD run lies outside the VM's %llu MiB of RAM or before "
				 "the previous one",
				 (unsigned long long)(pc->mem >> 20));
			return -1;
		}
		pc->discard_end = off + n * MIG_PAGE;
		if (madvise(ram + off, n * MIG_PAGE, MADV_REMOVE)) {
			snprintf(err, errlen, "cannot punch the discarded pages out of RAM: %s",
				 strerror(errno));
			return -1;
		}
		for (uint64_t pg = off / MIG_PAGE; pg < off / MIG_PAGE + n; pg++)
			pc->want[pg / 64] |= 1ull << (pg % 64);
		pc->left += n;
	}
	return 0;
}

/* Kernel-mode faults too: KVM's own accesses to the memslot, the soft
 * engine's and the devices' reads are the VMM's, in system calls or not.
 * That needs CAP_SYS_PTRACE (root) or /dev/userfaultfd. */
static int open_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 || (errno != EPERM && errno != ENOSYS))
		return fd;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -1;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd;
}

int postcopy_arm(struct postcopy_in *pc, struct machine *m, char *err, size_t errlen)
{
	const uint64_t need =
	    1ull << _UFFDIO_COPY | 1ull << _UFFDIO_ZEROPAGE | 1ull << _UFFDIO_WAKE;
	if (m->mem.pages == MEM_PAGES_HUGETLB || m->mem.size != pc->mem) {
		snprintf(err, errlen,
			 "post-copy fills RAM one 4 KiB page at a time: receive without "
			 "--mem-hugepages");
		return -1;
	}
	pc->uffd = open_uffd();
	if (pc->uffd < 0) {
		snprintf(err, errlen,
			 "post-copy needs a userfaultfd that also catches the kernel's faults: %s "
			 "— run popek receive as root, or give it /dev/userfaultfd",
			 strerror(errno));
		return -1;
	}
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {
	    .range = {.start = (uintptr_t)m->mem.base, .len = m->mem.size},
	    .mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(pc->uffd, UFFDIO_API, &api) || !(api.features & UFFD_FEATURE_MISSING_SHMEM) ||
	    ioctl(pc->uffd, UFFDIO_REGISTER, &reg) || (reg.ioctls & need) != need) {
		snprintf(err, errlen,
			 "post-copy: this kernel cannot catch faults on the VM's RAM (a memfd) "
			 "with userfaultfd: %s — migrate without --postcopy",
			 strerror(errno));
		close(pc->uffd);
		pc->uffd = -1;
		return -1;
	}
	pc->base = m->mem.base;
	pc->m = m;
	m->uffd = pc->uffd;
	return 0;
}

/* A page is there now, or was already (EEXIST): wake whoever waits on it. */
static int filled(struct postcopy_in *pc, uint64_t pg, int rc, char *err, size_t errlen)
{
	if (rc == 0)
		return 0;
	if (errno == EEXIST) {
		struct uffdio_range r = {.start = (uintptr_t)pc->base + pg * MIG_PAGE,
					 .len = MIG_PAGE};
		if (ioctl(pc->uffd, UFFDIO_WAKE, &r) == 0)
			return 0;
	}
	snprintf(err, errlen, "cannot fill guest page %llu: %s", (unsigned long long)pg,
		 strerror(errno));
	return -1;
}

static int fill(struct postcopy_in *pc, uint64_t pg, const uint8_t *data, char *err, size_t errlen)
{
	int rc;
	do {
		if (data) {
			struct uffdio_copy c = {.dst = (uintptr_t)pc->base + pg * MIG_PAGE,
						.src = (uintptr_t)data,
						.len = MIG_PAGE};
			rc = ioctl(pc->uffd, UFFDIO_COPY, &c);
		} else {
			struct uffdio_zeropage z = {
			    .range = {.start = (uintptr_t)pc->base + pg * MIG_PAGE,
				      .len = MIG_PAGE}};
			rc = ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
		}
	} while (rc && errno == EAGAIN); /* the mapping was changing: again */
	return filled(pc, pg, rc, err, errlen);
}

static int pull(struct postcopy_in *pc, uint64_t pg, char *err, size_t errlen)
{
	char line[40];
	int n = snprintf(line, sizeof(line), "pull %llu\n", (unsigned long long)(pg * MIG_PAGE));
	if (mig_send_all(pc->in.fd, line, (size_t)n)) {
		snprintf(err, errlen, "cannot ask the source for a page: %s", strerror(errno));
		return -1;
	}
	pc->asked[pg / 64] |= 1ull << (pg % 64);
	pc->pulled++;
	return 0;
}

/* The fault events waiting: each hole touched is pulled once, or filled
 * with zeros if the source has nothing there. */
static int serve_faults(struct postcopy_in *pc, char *err, size_t errlen)
{
	struct uffd_msg msg[32];
	ssize_t got = read(pc->uffd, msg, sizeof(msg));
	if (got < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	for (size_t i = 0; i < (size_t)got / sizeof(msg[0]); i++) {
		if (msg[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t pg = (msg[i].arg.pagefault.address - (uintptr_t)pc->base) / MIG_PAGE;
		if (pg >= pc->mem / MIG_PAGE)
			continue;
		int rc = !bit(pc->want, pg)    ? fill(pc, pg, NULL, err, errlen)
			 : !bit(pc->asked, pg) ? pull(pc, pg, err, errlen)
					       : 0;
		if (rc)
			return -1;
		pc->zeroed += !bit(pc->want, pg);
	}
	return 0;
}

int postcopy_record(struct postcopy_in *pc, char *err, size_t errlen)
{
	enum mig_type t;
	size_t len;
	if (mig_read(&pc->in, &t, &pc->buf, &pc->cap, &len, err, errlen))
		return -1;
	const uint8_t *p = pc->buf;
	if (t == MIG_POSTCOPY_END) {
		if (len != 8 || mig_le(p, 8) != pc->pushed || pc->left) {
			snprintf(err, errlen,
				 "POSTCOPY_END with %llu of the discarded pages never sent",
				 (unsigned long long)pc->left);
			return -1;
		}
		return 1;
	}
	uint64_t off, n;
	if ((t != MIG_PAGES && t != MIG_ZERO) || !mig_page_run(t, p, len, pc->mem, &off, &n)) {
		snprintf(err, errlen, "a bad or unexpected record (type %u) after the handover", t);
		return -1;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pg = off / MIG_PAGE + i;
		if (!bit(pc->want, pg)) {
			snprintf(err, errlen,
				 "page %llu came after the handover, but was not discarded",
				 (unsigned long long)pg);
			return -1;
		}
		if (fill(pc, pg, t == MIG_PAGES ? p + 16 + i * MIG_PAGE : NULL, err, errlen))
			return -1;
		pc->want[pg / 64] &= ~(1ull << (pg % 64));
		pc->left--;
		pc->pushed++;
	}
	return 0;
}

static void *fault_main(void *arg)
{
	struct postcopy_in *pc = arg;
	char why[400] = "";
	int rc = 0;
	struct pollfd pf[2] = {{.fd = pc->uffd, .events = POLLIN},
			       {.fd = pc->in.fd, .events = POLLIN}};
	while (rc == 0 && !atomic_load(&pc->quit)) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, sizeof(why), "poll: %s", strerror(errno));
			rc = -1;
		}
		if (rc == 0 && (pf[0].revents & POLLIN))
			rc = serve_faults(pc, why, sizeof(why));
		if (rc == 0 && pf[1].revents)
			rc = postcopy_record(pc, why, sizeof(why));
	}
	if (atomic_load(&pc->quit))
		return NULL;
	if (rc > 0) {
		struct uffdio_range r = {.start = (uintptr_t)pc->base, .len = pc->mem};
		ioctl(pc->uffd, UFFDIO_UNREGISTER, &r);
		/* The source holds its copy until it hears this. */
		mig_send_all(pc->in.fd, "done\n", 5);
		fprintf(stderr,
			"popek: post-copy complete: %llu pages pulled on first touch, %llu pushed "
			"in all, %llu zero pages filled here\n",
			(unsigned long long)pc->pulled, (unsigned long long)pc->pushed,
			(unsigned long long)pc->zeroed);
	} else {
		/* Stopped first, then released: a thread blocked on a hole goes on
		 * with a zero page only as far as its next stop check. */
		machine_stop(pc->m, STOP_ERROR, EXIT_CODE_HOST,
			     "post-copy: the connection to the source broke with %llu pages still "
			     "there (%s); the VM cannot continue",
			     (unsigned long long)pc->left, why);
	}
	close(pc->uffd);
	pc->uffd = -1;
	return NULL;
}

int postcopy_start(struct postcopy_in *pc, int conn, char *err, size_t errlen)
{
	pc->in = (struct mig_in){.fd = conn};
	if (pthread_create(&pc->thread, NULL, fault_main, pc)) {
		snprintf(err, errlen, "cannot start the post-copy fault thread");
		pc->in.fd = -1;
		close(conn);
		return -1;
	}
	pc->running = true;
	return 0;
}

void postcopy_stop(struct postcopy_in *pc)
{
	if (!pc || !pc->running)
		return;
	/* Woken from its read, done or not. */
	atomic_store(&pc->quit, true);
	shutdown(pc->in.fd, SHUT_RDWR);
	pthread_join(pc->thread, NULL);
	pc->running = false;
}

void postcopy_in_free(struct postcopy_in *pc)
{
	if (!pc)
		return;
	postcopy_stop(pc);
	if (pc->uffd >= 0)
		close(pc->uffd);
	if (pc->in.fd >= 0)
		close(pc->in.fd);
	free(pc->want);
	free(pc->asked);
	free(pc->buf);
	free(pc);
}
