# ThreadSanitizer subset (make tsan): the threaded unit tests, two vCPUs on
# both engines, the timer guest, a threaded program under popek exec on both, and a running two-vCPU VM that gets console input throughout
# while `popek stats` polls it from another process, is paused, snapshotted
# paused and running, resumed, and restored. Any TSan report fails the check.
# (Linux is not in the subset: under TSan its two-vCPU boot takes minutes.)
TS=$POPEK_ROOT/build/popek-tsan
export TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1"

# expect_tsan NAME WANT_RC PATTERN: no TSan report in the last run's stderr,
# then the usual expect.
expect_tsan() {
	if grep -q "WARNING: ThreadSanitizer" "$ERR"; then
		fail "$1" "$(grep -c 'WARNING: ThreadSanitizer' "$ERR") TSan report(s), first: $(grep -m1 SUMMARY "$ERR")"
	else
		expect "$@"
	fi
}

# The unit tests that run threads of their own (the Makefile's TSANUNIT), under TSan.
nunit=0
for t in "$POPEK_ROOT"/build/tsan-tests/test_*; do
	[ -x "$t" ] || continue
	nunit=$((nunit + 1))
	n=$(basename "$t")
	ERR=$TMP/tsan-$n.log
	"$t" >"$ERR" 2>&1
	rc=$?
	if grep -q "WARNING: ThreadSanitizer" "$ERR"; then
		fail "tsan/unit: $n" "TSan report: $(grep -m1 SUMMARY "$ERR")"
	elif [ $rc -ne 0 ]; then
		fail "tsan/unit: $n" "exit $rc: $(grep -m1 FAILED "$ERR")"
	else
		pass "tsan/unit: $n ($(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$ERR") tests)"
	fi
done
[ $nunit -gt 0 ] || fail "tsan/unit" "build/tsan-tests/ holds no tests: run 'make tsan' (make test does)"

if [ ! -x "$TS" ]; then
	fail "tsan" "build/popek-tsan is missing: run 'make tsan' (make test does)"
else
	export POPEK=$TS
	for e in soft kvm; do
		run_vm tsan-$e-smp run --engine $e --cpus 2 --kernel "$GUESTS/smp.elf"
		expect_tsan "tsan/$e: two vCPUs" 1 "PASS smp"
		run_vm tsan-$e-timer run --engine $e --kernel "$GUESTS/timer.elf"
		expect_tsan "tsan/$e: LAPIC timer interrupts" 1 "PASS timer"
	done
	# popek exec: four program threads (a vCPU and a host thread each) making
	# calls at once, on kvm through the call ring's server thread too.
	cat >"$TMP/tsan-threads.c" <<'C'
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static void *work(void *arg)
{
	long n = 0;
	struct timespec ts;
	for (int i = 0; i < 5000; i++)
		n += getppid() > 0 && clock_gettime(CLOCK_MONOTONIC, &ts) == 0;
	return (void *)n;
}
int main(void)
{
	pthread_t t[4];
	long sum = 0;
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, work, NULL);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		sum += (long)r;
	}
	printf("calls %ld\n", sum);
	return 0;
}
C
	if cc -O1 -pthread -o "$TMP/tsan-threads" "$TMP/tsan-threads.c" 2>"$TMP/cc.err"; then
		for e in soft kvm; do
			run_vm tsan-$e-exec exec --engine $e -- "$TMP/tsan-threads"
			expect_tsan "tsan/$e: popek exec, four threads making calls" 0 "^calls 20000$"
		done
	else
		fail "tsan: build the exec test program" "$(head -c 300 "$TMP/cc.err")"
	fi
	unset POPEK

	export POPEK_RUNTIME_DIR=$TMP/run
	P=$POPEK_ROOT/build/popek
	con=$TMP/tsan-live.out
	ERR=$TMP/tsan-live.err
	# Sized for the translator (about 5 s under TSan here; 100000 iterations,
	# enough for the interpreter, ended before the control side could pause).
	# stdin keeps typing for the whole run (more than the UART holds, so the
	# console also retries), while the control side polls, pauses and snapshots.
	(for i in $(seq 150); do
		echo "typed line $i"
		sleep 0.02
	done) | timeout 120 "$TS" run --engine soft --cpus 2 --name tsan-live --kernel "$GUESTS/longrun.elf" \
		--cmdline "rounds=60 iters=10000000" >"$con" 2>"$ERR" &
	live=$!
	for _ in $(seq 200); do grep -q "round 1$" "$con" 2>/dev/null && break; sleep 0.02; done
	polled=0
	for _ in $(seq 10); do
		"$P" stats tsan-live | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["per_vcpu"][0]["engine"]["instructions"] > 0' 2>/dev/null && polled=$((polled + 1))
	done
	"$P" pause tsan-live
	"$P" ls | grep -q "tsan-live .* paused" && paused=1 || paused=0
	a=$(grep -c round "$con")
	sleep 0.2 # input keeps arriving while paused
	"$P" snapshot tsan-live "$TMP/tsan-snap" >/dev/null 2>"$TMP/tsan-snap.err"
	snap=$?
	b=$(grep -c round "$con")
	"$P" resume tsan-live
	"$P" snapshot tsan-live "$TMP/tsan-snap2" >/dev/null 2>>"$TMP/tsan-snap.err"
	snap2=$?
	wait $live
	RC=$?
	OUT=$con
	if [ "$polled" != 10 ] || [ "$paused" != 1 ] || [ "$a" != "$b" ] || [ "$snap" != 0 ] || [ "$snap2" != 0 ]; then
		fail "tsan/soft: live VM polled, paused, snapshotted" "stats $polled/10, paused $paused, rounds $a -> $b while paused, snapshots $snap $snap2: $(cat "$TMP/tsan-snap.err")"
	else
		expect_tsan "tsan/soft: 2-vCPU VM with console input, polled by stats, paused, snapshotted, resumed" 1 "PASS longrun"
	fi
	want=$(grep -o "result 0x[0-9a-f]*" "$con")
	POPEK=$TS run_vm tsan-restore restore "$TMP/tsan-snap"
	expect_tsan "tsan/soft: the snapshot taken while paused restores to the same result" 1 "${want:-no result in the live run}"
	unset POPEK_RUNTIME_DIR
fi
unset TSAN_OPTIONS
