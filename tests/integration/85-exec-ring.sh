# popek exec's call ring (src/exec/ring.c, docs/exec.md "Design: the call
# path"): on kvm a system call reaches a dispatcher on a user page and a
# server thread answers it without an exit. Each program checks its own
# results and prints them; the same program runs natively, on soft (no ring)
# and on kvm, with the same output. --stats on kvm shows the ring was used.
export POPEK=$POPEK_ROOT/build/popek-san

cat >"$TMP/ring.c" <<'C'
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long calls(long n) /* n getppid calls: the count of right answers */
{
	long ppid = getppid(), ok = 0;
	for (long i = 0; i < n; i++)
		ok += syscall(SYS_getppid) == ppid;
	return ok;
}

/* Each thread's tid, file reads and clock stay its own under many calls. */
static char path[256];
static void *worker(void *arg)
{
	long id = (long)arg, bad = 0;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 2000; i++) {
		char buf[16] = "";
		bad += syscall(SYS_gettid) != tid;
		int fd = open(path, O_RDONLY);
		bad += fd < 0 || pread(fd, buf, 10, id) != 10 - id || buf[0] != '0' + id;
		close(fd);
		clock_gettime(CLOCK_MONOTONIC, &b);
		bad += b.tv_sec < a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec < a.tv_nsec);
		a = b;
	}
	return (void *)bad;
}

static volatile sig_atomic_t got;
static void on_usr1(int s)
{
	got++;
}
static volatile int stop;
static void *spinner(void *arg)
{
	long *bad = arg;
	long ppid = getppid();
	while (!stop)
		*bad += syscall(SYS_getppid) != ppid;
	return NULL;
}

static void *reader(void *arg)
{
	int *fd = arg;
	static char buf[64];
	ssize_t n = read(fd[0], buf, sizeof(buf) - 1); /* blocks: the ring sends it to the exit */
	return n > 0 ? buf : NULL;
}

/* A page touched (so the TLB holds it), then unmapped or narrowed: the next
 * access must fault at once, whatever the TLB held. */
static sigjmp_buf revoked;
static void on_segv(int sig)
{
	siglongjmp(revoked, 1);
}
static const char *faults(volatile char *a, int write)
{
	if (sigsetjmp(revoked, 1))
		return "faults";
	if (write)
		a[0] = 2;
	else
		(void)a[0];
	return "does not fault";
}
static void take_away(void)
{
	signal(SIGSEGV, on_segv);
	for (int round = 0; round < 3; round++) {
		volatile char *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		a[0] = 1;
		(void)a[0];
		if (round == 0)
			munmap((void *)a, 4096);
		else
			mprotect((void *)a, 4096, round == 1 ? PROT_NONE : PROT_READ);
		printf("%s: a %s %s\n",
		       round == 0 ? "munmap" : round == 1 ? "mprotect none" : "mprotect read",
		       round == 2 ? "write" : "read", faults(a, round == 2));
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "revoke")) {
		take_away();
	} else if (!strcmp(what, "loop")) {
		long n = 20000;
		printf("getppid right %ld of %ld\n", calls(n), n);
	} else if (!strcmp(what, "modified")) {
		long n = 20000, ok = 0;
		for (long i = 0; i < n; i++)
			ok += syscall(SYS_getppid) == 4242;
		printf("getppid 4242 %ld of %ld\n", ok, n);
	} else if (!strcmp(what, "threads")) {
		snprintf(path, sizeof(path), "%s", argv[2]);
		pthread_t t[8];
		for (long i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, worker, (void *)i);
		long bad = 0;
		for (int i = 0; i < 8; i++) {
			void *r;
			pthread_join(t[i], &r);
			bad += (long)r;
		}
		printf("8 threads, wrong answers %ld\n", bad);
	} else if (!strcmp(what, "signal")) {
		/* pthread_kill while the target loops on ring calls: every signal
		 * is taken, and no call result is disturbed */
		signal(SIGUSR1, on_usr1);
		long bad = 0;
		pthread_t t;
		pthread_create(&t, NULL, spinner, &bad);
		int sent = 0;
		for (int i = 0; i < 100; i++) {
			int before = got;
			pthread_kill(t, SIGUSR1);
			sent++;
			for (long w = 0; got == before && w < 100000; w++)
				sched_yield(); /* a liveness bound, not a time */
			if (got == before)
				break;
		}
		stop = 1;
		pthread_join(t, NULL);
		printf("signals sent %d taken %d, getppid wrong %ld\n", sent, (int)got, bad);
	} else if (!strcmp(what, "pipe")) {
		int fd[2];
		pipe(fd);
		pthread_t t;
		pthread_create(&t, NULL, reader, fd);
		long ok = calls(2000); /* the reader blocks meanwhile */
		write(fd[1], "through the pipe", 16);
		void *r;
		pthread_join(t, &r);
		printf("blocked reader got '%s', getppid right %ld\n", r ? (char *)r : "nothing", ok);
	} else if (!strcmp(what, "fork")) {
		long ok = calls(2000);
		pid_t c = fork();
		if (c == 0) {
			/* the child's own server: its getppid is its parent */
			long mine = 0;
			for (int i = 0; i < 2000; i++)
				mine += syscall(SYS_getppid) == getppid();
			printf("child right %ld\n", mine);
			execl(argv[2], argv[2], "echo", "exec from the child", (char *)NULL);
			_exit(99);
		}
		int st;
		waitpid(c, &st, 0);
		printf("parent right %ld, child exit %d\n", ok + calls(2000), WEXITSTATUS(st));
	}
	return 0;
}
C
if ! cc -O1 -pthread -o "$TMP/ring" "$TMP/ring.c" 2>"$TMP/cc.err"; then
	fail "exec ring: build the test program" "$(head -c 300 "$TMP/cc.err")"
fi
printf '0123456789' >"$TMP/digits"

# ring NAME USED ARGS...: the program's output on both engines equals
# native's; with USED=used, --stats on kvm must show calls the ring served in
# one of three runs (20000 calls: some find the server running even on a busy
# host; the other cases report their count).
ring() {
	local name=$1 used=$2
	shift 2
	(cd / && "$TMP/ring" "$@") >"$TMP/ring-native.out" 2>/dev/null </dev/null
	for e in soft kvm; do
		run_vm "ring-$e" exec --engine $e --stats -- "$TMP/ring" "$@"
		# the server needs a core: a host busy for a whole run may leave
		# every call to the exit path, so that run is tried twice more
		for _ in 1 2; do
			[ $e = kvm ] && [ $used = used ] && [ "$RC" -eq 0 ] &&
				! grep -qE '"ring_calls":[1-9]' "$ERR" || break
			run_vm "ring-$e" exec --engine $e --stats -- "$TMP/ring" "$@"
		done
		if [ "$RC" -ne 0 ]; then
			fail "exec/$e ring: $name" "exit $RC; stderr: $(tail -c 300 "$ERR" | tr '\n' ' ')"
		elif ! cmp -s "$OUT" "$TMP/ring-native.out"; then
			fail "exec/$e ring: $name" "'$(head -c 200 "$OUT")', native '$(cat "$TMP/ring-native.out")'"
		elif grep -qE 'AddressSanitizer|runtime error' "$ERR"; then
			fail "exec/$e ring: $name" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$ERR")"
		elif [ $e = kvm ] && [ $used = used ] && ! grep -qE '"ring_calls":[1-9]' "$ERR"; then
			fail "exec/$e ring: $name" "no call went by the ring: $(tail -c 200 "$ERR")"
		else
			pass "exec/$e ring: $name: $(head -c 80 "$OUT" | tr '\n' ' ')$(grep -oE '"ring_calls":[0-9]+' "$ERR")"
		fi
	done
}
ring "20000 getppid calls all answer right" used loop
ring "8 threads keep their own tid, file offsets and clock" - threads "$TMP/digits"
ring "pthread_kill to a thread looping on calls: each signal is taken" - signal
ring "a blocking pipe read leaves the ring for the exit path" - pipe
ring "fork: the child serves its own calls, then execve" - fork /usr/bin/busybox

# munmap and mprotect take away a page the TLB holds at once. On soft only:
# on this host's kvm (nested PVM, shadow paging) the access still succeeds —
# popek edits the guest page tables from the host, which the shadow MMU does
# not see, and neither a state reload nor a guest CR3 reload drops the stale
# translation (docs/exec.md, "Address space"). An open bug, not tested as passing.
(cd / && "$TMP/ring" revoke) >"$TMP/revoke-native.out" 2>/dev/null </dev/null
run_vm ring-soft-revoke exec --engine soft -- "$TMP/ring" revoke
if [ "$RC" = 0 ] && cmp -s "$OUT" "$TMP/revoke-native.out" && grep -q "munmap: a read faults" "$OUT"; then
	pass "exec/soft: munmap and mprotect take a page the TLB holds away at once"
else
	fail "exec/soft: munmap and mprotect revoke" "exit $RC: $(tr '\n' ' ' <"$OUT") native: $(tr '\n' ' ' <"$TMP/revoke-native.out")"
fi

# A policy sees ring calls as it sees exit calls (the server runs the same
# exec_syscall): every getppid is modified and audited, however it came.
echo "modify syscall getppid value 4242" >"$TMP/ring.policy"
for e in soft kvm; do
	rm -f "$TMP/ring-$e.audit"
	run_vm "ring-$e-policy" exec --engine $e --stats --policy "$TMP/ring.policy" \
		--audit "$TMP/ring-$e.audit" -- "$TMP/ring" modified
	expect "exec/$e ring: a policy's modify applies to every call" 0 "^getppid 4242 20000 of 20000$"
	n=$(grep -c '"device":"getppid"' "$TMP/ring-$e.audit" 2>/dev/null)
	[ "$n" = 20000 ] && pass "exec/$e ring: each of the 20000 calls is audited once" ||
		fail "exec/$e ring: audit" "$n getppid lines, expected 20000"
done
grep -qE '"ring_calls":[1-9]' "$TMP/ring-kvm-policy.err" &&
	pass "exec/kvm ring: the policy's calls went by the ring too" ||
	fail "exec/kvm ring: policy calls by the ring" "$(tail -c 200 "$TMP/ring-kvm-policy.err")"

# The guest is the attacker: the slot pages are its to scribble on. Threads
# write random words over every slot's request while others make calls (a
# forged call may block its caller for good: the program's own doing); then
# the scribbling stops and the main thread's calls must work again. popek
# must neither crash nor hang, and the code and info pages must not be
# writable.
cat >"$TMP/scribble.c" <<'C'
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING 0x7fffffff0000ul
static sigjmp_buf env;
static void on_segv(int s)
{
	siglongjmp(env, 1);
}
static int writable(volatile uint64_t *w)
{
	if (sigsetjmp(env, 1))
		return 0;
	*w = *w;
	return 1;
}
static volatile int stop;
static uint64_t *slots;
static void *scribble(void *arg)
{
	uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
	while (!stop) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* the request words of a slot (its state, call and result),
		 * not the dispatcher's saved stack pointer: that would only
		 * crash the program itself */
		uint64_t *w = slots + (x >> 40) % 64 * 32 + (x >> 20) % 9;
		*w = (x & 1) ? x >> 61 : x; /* small: a protocol state */
	}
	return NULL;
}
static volatile long progress;
static void *caller(void *arg)
{
	for (;;) {
		syscall(SYS_getppid);
		syscall(SYS_gettid);
		syscall(SYS_clock_gettime, 1, NULL);
		progress++;
	}
	return NULL;
}
int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGSEGV, on_segv);
	int w[6];
	for (int i = 0; i < 6; i++)
		w[i] = writable((volatile uint64_t *)(RING + i * 4096ul));
	printf("ring pages writable: %d%d%d%d%d%d\n", w[0], w[1], w[2], w[3], w[4], w[5]);
	if (!w[2]) {
		printf("no slots\n");
		return 0;
	}
	printf("mprotect of the code page: %s\n",
	       mprotect((void *)RING, 4096, PROT_READ | PROT_WRITE) ? "refused" : "allowed");
	printf("mmap over it: %s\n",
	       mmap((void *)RING, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		    -1, 0) == MAP_FAILED
		   ? "refused"
		   : "allowed");
	slots = (uint64_t *)(RING + 2 * 4096);
	/* forged calls may close or write to low descriptors: the verdict
	 * goes to a copy of stdout out of their reach */
	dup2(1, 100);
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, i < 2 ? scribble : caller, (void *)i);
	/* nanosleep never goes by the ring, so the scribbling cannot touch it */
	struct timespec ms = {0, 1000000};
	for (int i = 0; i < 2000 && progress < 5000; i++)
		nanosleep(&ms, NULL);
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int k = 0; k < 64; k++) /* the requests, not a caller's saved stack pointer */
		memset(slots + k * 32, 0, 9 * 8);
	long ok = 0, ppid = getppid();
	for (int i = 0; i < 1000; i++)
		ok += syscall(SYS_getppid) == ppid;
	dprintf(100, "after the scribbling, getppid right %ld of 1000\n", ok);
	_exit(0); /* a caller may be stuck in a forged call */
}
C
if ! cc -O1 -pthread -o "$TMP/scribble" "$TMP/scribble.c" 2>"$TMP/cc.err"; then
	fail "exec ring: build the scribble program" "$(head -c 300 "$TMP/cc.err")"
fi
VM_TIMEOUT=120 run_vm ring-scribble exec --engine kvm -- "$TMP/scribble"
expect "exec/kvm ring: slots scribbled on: popek lives, the calls work again" 0 \
	"after the scribbling, getppid right 1000 of 1000"
expect "exec/kvm ring: only the slot pages are writable, and they cannot be remapped" 0 \
	"ring pages writable: 001111"
grep -q "mprotect of the code page: refused" "$OUT" && grep -q "mmap over it: refused" "$OUT" &&
	pass "exec/kvm ring: mprotect and mmap MAP_FIXED of the ring fail" ||
	fail "exec/kvm ring: mprotect/mmap of the ring" "$(cat "$OUT" | tr '\n' ' ')"
