# popek exec (docs/exec.md): unmodified Linux programs in a VM with no guest
# kernel, on both engines. Output is compared byte for byte with the same
# program run natively; exit statuses, signals, the SIGSEGV report, --root
# escapes, writes outside rw binds, --strace and --stats.
BB=/usr/bin/busybox
if [ ! -x $BB ] || ! file -L $BB 2>/dev/null | grep -q static; then
	fail "exec: static busybox" "$BB is missing or not static — run scripts/install-deps.sh (busybox-static)"
	return 0 2>/dev/null || exit 0
fi
export POPEK=$POPEK_ROOT/build/popek-san

# Small C programs the tests need, built for the host (dynamic, glibc).
cat >"$TMP/sig.c" <<'C'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void on_usr1(int s) { got = s; }
static void on_segv(int s, siginfo_t *si, void *uc)
{
	(void)uc;
	printf("segv handler: signal %d at %p\n", s, si->si_addr);
	fflush(stdout);
	_exit(5);
}
int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "crash")) {
		*(volatile int *)0x1234 = 1;
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "catch-segv")) {
		struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
		sigaction(SIGSEGV, &sa, NULL);
		*(volatile int *)0x5678 = 1;
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "term")) {
		kill(getpid(), SIGTERM);
		return 0;
	}
	signal(SIGUSR1, on_usr1);
	double x = 1.5; /* SSE state must survive the handler */
	raise(SIGUSR1);
	printf("caught signal %d, x=%.2f\n", (int)got, x * 2);
	return got == SIGUSR1 ? 0 : 1;
}
C
if ! cc -O1 -o "$TMP/sig" "$TMP/sig.c" 2>"$TMP/cc.err"; then
	fail "exec: build the signal test program" "$(head -c 300 "$TMP/cc.err")"
fi

# same NAME ENGINE ARGS...: popek exec's stdout and status equal native's
# (popek exec gets the options in $EXEC_OPTS, if any).
same() {
	local name=$1 e=$2
	shift 2
	(cd / && "$@") >"$TMP/native.out" 2>/dev/null </dev/null
	local want=$?
	run_vm "exec-$e" exec --engine "$e" ${EXEC_OPTS:-} -- "$@"
	if [ "$RC" -ne "$want" ]; then
		fail "$name" "exit $RC, native $want; stderr: $(tail -c 300 "$ERR" | tr '\n' ' ')"
	elif ! cmp -s "$OUT" "$TMP/native.out"; then
		fail "$name" "output differs from native: $(cmp "$OUT" "$TMP/native.out" 2>&1)"
	elif grep -qE 'AddressSanitizer|runtime error' "$ERR"; then
		fail "$name" "sanitizer report: $(grep -m1 -E 'Sanitizer|runtime error' "$ERR")"
	else
		pass "$name"
	fi
}

mkdir -p "$TMP/tree/sub"
printf 'b\na\nc\n' >"$TMP/tree/sub/f"
printf 'x\n' >"$TMP/tree/g"
for e in soft kvm; do
	for a in "ls /etc" "sort /etc/passwd" "sha256sum $BB" "wc /etc/passwd" \
		"tar -cf - -C $TMP/tree ." "sh -c echo\ \$((6*7))"; do
		eval "same \"exec/$e: busybox $a is byte-identical to native\" $e $BB $a"
	done
	same "exec/$e: busybox sh -c 'exit 7' passes the status through" $e $BB sh -c 'exit 7'
	same "exec/$e: sh -c 'ls / | wc -l' (fork, execve, pipe2, wait4)" $e $BB sh -c 'ls / | wc -l'
	same "exec/$e: sh runs dynamic programs in a pipeline and passes their status" $e \
		$BB sh -c '/usr/bin/sort /etc/passwd | /usr/bin/sha256sum; /bin/false; echo "false: $?"'
	same "exec/$e: a child killed by a signal reads as signalled to the shell" $e \
		$BB sh -c "$TMP/sig crash 2>/dev/null; echo \"status \$?\""
	same "exec/$e: dynamic /bin/ls -l /usr is byte-identical" $e /bin/ls -l /usr
	same "exec/$e: dynamic /usr/bin/sort is byte-identical" $e /usr/bin/sort /etc/passwd
	same "exec/$e: dynamic /usr/bin/sha256sum is byte-identical" $e /usr/bin/sha256sum $BB
	same "exec/$e: /bin/false exits 1" $e /bin/false
	if [ -x /usr/bin/python3 ]; then
		same "exec/$e: python3 -c print" $e /usr/bin/python3 -c 'print(sum(range(1000)))'
	fi
	same "exec/$e: a handler catches SIGUSR1 (raise) and returns" $e "$TMP/sig"
	same "exec/$e: a SIGSEGV handler sees the faulting address" $e "$TMP/sig" catch-segv

	run_vm exec-$e-crash exec --engine $e -- "$TMP/sig" crash
	expect_err "exec/$e: a segfault exits 139 with one line naming the signal and address" 139 \
		"SIGSEGV \(page fault\) at address 0x1234, rip 0x"
	run_vm exec-$e-term exec --engine $e -- "$TMP/sig" term
	[ "$RC" -eq 143 ] && pass "exec/$e: kill(self, SIGTERM) with the default action exits 143" ||
		fail "exec/$e: kill(self, SIGTERM)" "exit $RC, expected 143"

	run_vm exec-$e-stats exec --engine $e --stats -- /bin/true
	expect_err "exec/$e: --stats counts calls and lists -ENOSYS ones (rseq)" 0 \
		"\"syscalls\":[0-9]+.*\"enosys\":\{[^}]*\"rseq\":1"
	run_vm exec-$e-strace exec --engine $e --strace -- $BB echo hi
	expect_err "exec/$e: --strace prints calls with arguments and results" 0 \
		"^write\(1, 0x[0-9a-f]+, 3\) = 3$"
done

# --root: paths resolve inside it and cannot leave it.
R=$TMP/root
mkdir -p "$R/bin" "$R/etc" "$R/w"
cp $BB "$R/bin/busybox"
echo inside >"$R/etc/marker"
ln -s /etc/passwd "$R/abs-link"
ln -s ../../../../../../etc/passwd "$R/rel-link"
for e in soft kvm; do
	run_vm exec-$e-root exec --engine $e --root "$R" -- /bin/busybox cat /etc/marker
	expect "exec/$e: --root: /etc/marker is the root's" 0 "^inside$"
	for p in /../../../etc/passwd /abs-link /rel-link /proc/self/root/etc/passwd \
		"/proc/$$/root/etc/passwd"; do
		run_vm exec-$e-esc exec --engine $e --root "$R" -- /bin/busybox cat "$p"
		if [ "$RC" -ne 0 ] && ! grep -q root: "$OUT"; then
			pass "exec/$e: --root escape through $p fails"
		else
			fail "exec/$e: --root escape through $p" "exit $RC, read: $(head -c 100 "$OUT")"
		fi
	done
	run_vm exec-$e-ro exec --engine $e --root "$R" -- /bin/busybox touch /etc/new
	expect_err "exec/$e: the root is read-only" 1 "Read-only file system"
	rm -rf "$TMP/rw" && mkdir "$TMP/rw"
	run_vm exec-$e-rw exec --engine $e --root "$R" --bind "$TMP/rw:/w:rw" -- /bin/busybox sh -c \
		'b=/bin/busybox; echo data >/w/f && $b mkdir /w/d && $b mv /w/f /w/d/g && $b cat /w/d/g &&
		 $b rm /w/d/g && $b rmdir /w/d && echo done'
	expect "exec/$e: an rw bind takes create, mkdir, rename, unlink, rmdir" 0 "^data$"
	[ -z "$(ls -A "$TMP/rw")" ] && pass "exec/$e: the bind's host directory saw the changes" ||
		fail "exec/$e: rw bind" "left $(ls -A "$TMP/rw")"
done

run_vm exec-notelf exec --engine soft -- /etc/passwd
expect_err "exec: a file that is not an ELF is refused (65)" 65 "/etc/passwd: not an ELF file"
run_vm exec-missing exec --engine soft -- /no/such/program
expect_err "exec: a missing program is named (65)" 65 "/no/such/program: No such file"
run_vm exec-usage exec --engine soft
expect_err "exec: no program is a usage error (64)" 64 "no program given"

# The syscall policy class: a denied call fails with its errno and is
# audited (a symlink to the denied file too), modify replaces a result, stop
# ends the program with 72; sockets and readiness calls work as natively, and
# a policy can deny a connection by family and port.
cat >"$TMP/sock.py" <<'PY'
import os, select, selectors, socket, sys
a, b = socket.socketpair()
sel = selectors.DefaultSelector()
sel.register(b, selectors.EVENT_READ)
a.sendall(b"hello over a socketpair\n")
for key, ev in sel.select(timeout=5):
    print(key.fileobj.recv(100).decode(), end="")
r, w, x = select.select([a], [a], [], 1)
print("select", len(r), len(w))
ep = select.epoll()
ep.register(a.fileno(), select.EPOLLOUT)
print("epoll", len(ep.poll(1)))
fd = os.eventfd(3)
print("eventfd", os.eventfd_read(fd))
path = sys.argv[1] + "/s.sock"
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(1)
c = socket.socket(socket.AF_UNIX)
c.connect(path)
d, _ = s.accept()
c.send(b"over a unix socket\n")
print(d.recv(100).decode(), end="")
os.unlink(path)
PY
mkdir -p "$TMP/www"
echo "served by the test" >"$TMP/www/index.txt"
PORT=$((20000 + $$ % 20000))
(cd "$TMP/www" && exec timeout 600 python3 -m http.server $PORT --bind 127.0.0.1) >/dev/null 2>&1 &
HTTPD=$!
GET="import urllib.request as u; print(u.urlopen('http://127.0.0.1:$PORT/index.txt').read().decode(), end='')"
for i in $(seq 50); do
	python3 -c "$GET" >/dev/null 2>&1 && break
	sleep 0.2
done
ln -sf "$TMP/tree/g" "$TMP/g-link"
printf '%s\n' "deny syscall openat path $TMP/tree/g errno EACCES" "log syscall uname" \
	"modify syscall getuid value 4242" >"$TMP/exec.policy"
echo "stop syscall nr 39 # getpid" >"$TMP/stop.policy"
echo "deny syscall connect family inet port $PORT errno ECONNREFUSED" >"$TMP/net.policy"
for e in soft kvm; do
	rm -f "$TMP/audit-$e"
	run_vm exec-$e-deny exec --engine $e --policy "$TMP/exec.policy" --audit "$TMP/audit-$e" \
		-- $BB cat "$TMP/tree/g"
	expect_err "exec/$e: deny syscall openat path: the call fails with EACCES" 1 \
		"Permission denied"
	grep -q "\"device\":\"openat\",\"class\":\"syscall\",\"op\":\"call\",\"nr\":257,\"ret\":-13,\"path\":\"$TMP/tree/g\",\"verdict\":\"deny\",\"rule\":1" \
		"$TMP/audit-$e" && pass "exec/$e: the denied call is in the audit log" ||
		fail "exec/$e: audit of a denied call" "$(cat "$TMP/audit-$e")"
	run_vm exec-$e-link exec --engine $e --policy "$TMP/exec.policy" -- $BB cat "$TMP/g-link"
	expect_err "exec/$e: a symlink to a denied path is denied" 1 "Permission denied"
	run_vm exec-$e-mod exec --engine $e --policy "$TMP/exec.policy" --audit "$TMP/audit-$e" \
		-- $BB sh -c 'id -ru; uname'
	expect "exec/$e: modify syscall getuid value 4242 replaces the result" 0 "^4242$"
	grep -q '"device":"uname".*"ret":0,"verdict":"log","rule":2' "$TMP/audit-$e" &&
		pass "exec/$e: a log rule records the call and its result" ||
		fail "exec/$e: log syscall uname" "$(cat "$TMP/audit-$e")"
	run_vm exec-$e-stop exec --engine $e --policy "$TMP/stop.policy" -- $BB sh -c 'echo $$'
	expect_err "exec/$e: stop syscall ends the program with 72" 72 "stopped by policy rule on line 1"
	if [ -x /usr/bin/python3 ]; then
		mkdir -p "$TMP/sock-$e"
		EXEC_OPTS="--bind $TMP/sock-$e:$TMP/sock-$e:rw" same \
			"exec/$e: socketpair, selectors, select, epoll, eventfd, AF_UNIX bind/connect" $e \
			/usr/bin/python3 "$TMP/sock.py" "$TMP/sock-$e"
		run_vm exec-$e-http exec --engine $e -- /usr/bin/python3 -c "$GET"
		expect "exec/$e: an HTTP GET to a server the test started" 0 "^served by the test$"
		rm -f "$TMP/audit-$e"
		run_vm exec-$e-nonet exec --engine $e --policy "$TMP/net.policy" --audit "$TMP/audit-$e" \
			-- /usr/bin/python3 -c "$GET"
		expect_err "exec/$e: deny syscall connect family inet port: ECONNREFUSED" 1 \
			"Connection refused"
		grep -q '"device":"connect".*"ret":-111,"verdict":"deny"' "$TMP/audit-$e" &&
			pass "exec/$e: the denied connect is audited" ||
			fail "exec/$e: audit of a denied connect" "$(cat "$TMP/audit-$e")"
	fi
done
kill $HTTPD 2>/dev/null
echo "deny syscall openat path etc" >"$TMP/bad.policy"
run_vm exec-badpol exec --policy "$TMP/bad.policy" -- /bin/true
expect_err "exec: a malformed policy is refused with FILE:LINE:COL (64)" 64 \
	"bad.policy:1:26: expected a path glob"
echo "deny pio port 0x80" >"$TMP/pio.policy"
run_vm exec-piopol exec --policy "$TMP/pio.policy" -- /bin/true
expect_err "exec: a device rule is refused: exec has no devices (64)" 64 "of class syscall"

# The program's /proc/self: exe, maps from popek's page tables, fd.
for e in soft kvm; do
	run_vm exec-$e-exe exec --engine $e -- $BB readlink /proc/self/exe
	expect "exec/$e: readlink /proc/self/exe names the program" 0 "^$BB$"
	run_vm exec-$e-maps exec --engine $e -- $BB cat /proc/self/maps
	expect "exec/$e: /proc/self/maps lists the program's code" 0 "^00401000-[0-9a-f]+ r-xp "
	grep -qE "^7f[0-9a-f]+-7ffffff00000 rw-p .* \[stack\]$" "$OUT" &&
		pass "exec/$e: /proc/self/maps names the stack" ||
		fail "exec/$e: /proc/self/maps [stack]" "$(head -c 400 "$OUT")"
	run_vm exec-$e-fds exec --engine $e -- $BB sh -c 'exec 7</etc/passwd; ls /proc/self/fd | tr "\n" " "; readlink /proc/self/fd/7'
	expect "exec/$e: ls /proc/self/fd lists the descriptors; fd/N links to the path" 0 \
		"^0 1 2 3 7 /etc/passwd$"
done

# Threads: each a vCPU of the same VM (both engines). N threads sum under a
# mutex and a condition variable and are joined (futex WAIT/WAKE, clone's
# tid words); exit_group from a thread ends the program while the main one
# blocks; the main thread's pthread_exit leaves the others running.
cat >"$TMP/pt.c" <<'C'
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#define N 6
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long total;
static int ready;
static void *work(void *arg)
{
	long id = (long)arg, mine = 0;
	for (long i = 0; i < 200000; i++)
		mine += i % (id + 2);
	pthread_mutex_lock(&m);
	total += mine;
	ready++;
	pthread_cond_broadcast(&c);
	pthread_mutex_unlock(&m);
	return (void *)(mine & 0xff);
}
static void *quit(void *arg)
{
	usleep(100000);
	_exit(3); /* exit_group while the main thread waits in read */
}
static void *crash(void *arg)
{
	usleep(100000);
	*(volatile int *)0x4321 = 1;
	return NULL;
}
static void *ret(void *arg)
{
	return arg;
}
static pthread_barrier_t bar;
static void *meet(void *arg)
{
	pthread_barrier_wait(&bar);
	return arg;
}
static void *late(void *arg)
{
	usleep(100000);
	printf("the last thread ends the program\n");
	return NULL;
}
int main(int argc, char **argv)
{
	pthread_t t[N];
	if (argc > 1 && !strcmp(argv[1], "group")) {
		int fd[2];
		char b;
		pipe(fd);
		pthread_create(&t[0], NULL, quit, NULL);
		return (int)read(fd[0], &b, 1);
	}
	if (argc > 1 && !strcmp(argv[1], "crash")) {
		int fd[2];
		char b;
		pipe(fd);
		pthread_create(&t[0], NULL, crash, NULL);
		return (int)read(fd[0], &b, 1);
	}
	if (argc > 1 && !strcmp(argv[1], "wide")) { /* 64 threads alive at once */
		static pthread_t w[63];
		pthread_barrier_init(&bar, NULL, 64);
		for (long i = 0; i < 63; i++)
			if (pthread_create(&w[i], NULL, meet, (void *)i))
				return 2;
		pthread_barrier_wait(&bar);
		long sum = 0;
		for (int i = 0; i < 63; i++) {
			void *r;
			pthread_join(w[i], &r);
			sum += (long)r;
		}
		printf("64 threads at once, sum %ld\n", sum);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "churn")) { /* more threads than vCPUs, one by one */
		long sum = 0, n = argc > 2 ? atol(argv[2]) : 100;
		for (long i = 0; i < n; i++) {
			void *r;
			pthread_create(&t[0], NULL, ret, (void *)i);
			pthread_join(t[0], &r);
			sum += (long)r;
		}
		printf("%ld threads joined, sum %ld\n", n, sum);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "main-exit")) {
		pthread_create(&t[0], NULL, late, NULL);
		pthread_exit(NULL);
	}
	for (long i = 0; i < N; i++)
		if (pthread_create(&t[i], NULL, work, (void *)i))
			return 2;
	pthread_mutex_lock(&m);
	while (ready < N)
		pthread_cond_wait(&c, &m);
	pthread_mutex_unlock(&m);
	long ret = 0;
	for (int i = 0; i < N; i++) {
		void *r;
		pthread_join(t[i], &r);
		ret += (long)r;
	}
	printf("%d threads: total %ld, joined %ld, main tid is pid: %d\n", N, total, ret,
	       (pid_t)syscall(SYS_gettid) == getpid());
	return 0;
}
C
if cc -O1 -pthread -o "$TMP/pt" "$TMP/pt.c" 2>"$TMP/cc.err" &&
	cc -O1 -static -pthread -o "$TMP/pt-static" "$TMP/pt.c" 2>>"$TMP/cc.err"; then
	for e in soft kvm; do
		same "exec/$e: a pthreads program (dynamic) is byte-identical" $e "$TMP/pt"
		same "exec/$e: a pthreads program (static) is byte-identical" $e "$TMP/pt-static"
		same "exec/$e: exit_group from a thread ends a program blocked in read" $e \
			"$TMP/pt" group
		same "exec/$e: after the main thread's pthread_exit the others run on" $e \
			"$TMP/pt" main-exit
		same "exec/$e: 100 threads one after another (vCPUs and host threads reused)" $e \
			"$TMP/pt" churn
		same "exec/$e: 64 threads alive at once" $e "$TMP/pt" wide
		EXEC_OPTS="--mem 32M" same \
			"exec/$e: 3000 threads one after another in 32 MiB (a slot's kernel pages are reused)" \
			$e "$TMP/pt" churn 3000
		run_vm exec-$e-tcrash exec --engine $e -- "$TMP/pt" crash
		expect_err "exec/$e: a segfault in a thread ends the program (139) with the report" 139 \
			"SIGSEGV \(page fault\) at address 0x4321"
	done
	if [ -x /usr/bin/python3 ]; then
		same "exec/soft: python3 threading" soft /usr/bin/python3 -c \
			'import threading; o = []; ts = [threading.Thread(target=lambda i=i: o.append(sum(range(i * 9999)))) for i in range(8)]; [t.start() for t in ts]; [t.join() for t in ts]; print(sorted(o))'
	fi
else
	fail "exec: build the pthreads test program" "$(head -c 300 "$TMP/cc.err")"
fi

# Signals with threads (sys_signal.c): masks and pending sets are each
# thread's; kill() to the process is taken by the thread that does not block
# it; pthread_kill reaches a thread running program code (onto its
# sigaltstack, its registers intact) and one blocked in read (EINTR, or the
# read goes on after an SA_RESTART handler); sigsuspend and pause wait for
# one, sigwaitinfo/sigtimedwait take one, ppoll/epoll_pwait masks apply;
# execve while another thread
# runs or blocks ends it, and the caller becomes the leader.
cat >"$TMP/sigthr.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static volatile pid_t by, ttid;
static volatile int stop, paused, code, from_us, onstack, usr2;
static char alt[65536];
static int ready[2], data[2], cmd[2], rep[2];
static void on_sig(int s, siginfo_t *si, void *uc)
{
	stack_t ss;
	char here;
	(void)uc;
	if (s == SIGUSR2) {
		usr2++;
		return;
	}
	sigaltstack(NULL, &ss);
	by = gettid();
	code = si->si_code;
	from_us = si->si_pid == getpid();
	onstack = (ss.ss_flags & SS_ONSTACK) && &here > alt && &here < alt + sizeof(alt);
	stop = 1;
}
static void on(int sig, int flags)
{
	struct sigaction sa = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO | flags};
	sigaction(sig, &sa, NULL);
}
static void mask(int how, int sig)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	pthread_sigmask(how, &s, NULL);
}
static int blocks(int sig)
{
	sigset_t s;
	pthread_sigmask(SIG_SETMASK, NULL, &s);
	return sigismember(&s, sig);
}
/* blocked in read on a pipe until main writes to it */
static void *reader(void *arg)
{
	char c;
	mask(SIG_UNBLOCK, SIGUSR1);
	ttid = gettid();
	write(ready[1], "r", 1);
	ssize_t n = read(data[0], &c, 1);
	printf("reader: read returned %zd (%s), the handler ran %s\n", n,
	       n < 0 ? strerror(errno) : "data", by == ttid ? "here" : "elsewhere");
	return arg;
}
/* program code only: a kick must stop it where it is */
static void *spinner(void *arg)
{
	stack_t ss = {.ss_sp = alt, .ss_size = sizeof(alt)};
	sigaltstack(&ss, NULL);
	ttid = gettid();
	write(ready[1], "r", 1);
	unsigned long x = 1, n = 0, y = 1;
	while (!stop) {
		x = x * 6364136223846793005ul + 1442695040888963407ul;
		n++;
	}
	for (unsigned long i = 0; i < n; i++)
		y = y * 6364136223846793005ul + 1442695040888963407ul;
	printf("spinner: registers survived the handler: %d\n", x == y);
	return arg;
}
/* reports whether SIGUSR2 is pending for it, on request */
static void *querier(void *arg)
{
	char c;
	while (read(cmd[0], &c, 1) == 1) {
		sigset_t s;
		sigpending(&s);
		c = (char)('0' + sigismember(&s, SIGUSR2));
		write(rep[1], &c, 1);
	}
	return arg;
}
static int ask(void)
{
	char c = 'q';
	write(cmd[1], &c, 1);
	read(rep[0], &c, 1);
	return c - '0';
}
static pthread_t start(void *(*fn)(void *))
{
	pthread_t t;
	char c;
	pthread_create(&t, NULL, fn, NULL);
	if (fn != querier)
		read(ready[0], &c, 1);
	usleep(100000); /* let it block or spin */
	return t;
}
/* kill() to the process, blocked everywhere: it waits for main's sigsuspend */
static void *killer(void *arg)
{
	usleep(100000);
	kill(getpid(), SIGUSR1);
	return arg;
}
/* pthread_kill main until it is out of pause() */
static void *poker(void *arg)
{
	while (!paused) {
		pthread_kill(*(pthread_t *)arg, SIGUSR2);
		usleep(50000);
	}
	return arg;
}
/* a dedicated signal thread: sigwaitinfo for SIGTERM, whose action is the default */
static void *waiter(void *arg)
{
	sigset_t s;
	siginfo_t si;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	ttid = gettid();
	write(ready[1], "r", 1);
	int sig = sigwaitinfo(&s, &si);
	printf("waiter: sigwaitinfo %d, SI_USER %d, si_pid ours %d\n", sig, si.si_code == SI_USER,
	       si.si_pid == getpid());
	return arg;
}
/* pthread_kill main once, while it sleeps */
static void *late_kill(void *arg)
{
	usleep(300000);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return arg;
}
static void *execer(void *arg)
{
	char **argv = arg;
	char *args[] = {argv[0], "after", NULL};
	execv(argv[0], args);
	printf("execv failed: %s\n", strerror(errno));
	exit(1);
}
int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";
	pipe(ready);
	pipe(data);
	if (!strcmp(m, "mask")) {
		/* kill() to the process goes to the one thread that does not block it;
		 * its read goes on after the handler (SA_RESTART) */
		on(SIGUSR1, SA_RESTART);
		mask(SIG_BLOCK, SIGUSR1);
		pthread_t t = start(reader);
		kill(getpid(), SIGUSR1);
		while (!by)
			usleep(1000);
		printf("kill: taken by the thread that does not block it: %d; main blocks it: %d\n",
		       by == ttid, blocks(SIGUSR1));
		fflush(stdout);
		write(data[1], "x", 1);
		pthread_join(t, NULL);
		/* pending: a thread's own and the process's */
		on(SIGUSR2, 0);
		mask(SIG_BLOCK, SIGUSR2);
		pipe(cmd);
		pipe(rep);
		t = start(querier); /* blocks SIGUSR2 too: the mask is inherited */
		raise(SIGUSR2);
		sigset_t s;
		sigpending(&s);
		printf("raise: pending in main %d, in the other thread %d\n", sigismember(&s, SIGUSR2),
		       ask());
		kill(getpid(), SIGUSR2);
		printf("kill: pending in the other thread %d\n", ask());
		mask(SIG_UNBLOCK, SIGUSR2);
		printf("unblocked in main: the handler ran %d times, pending in the other %d\n", usr2,
		       ask());
		return 0;
	}
	if (!strcmp(m, "tgkill")) {
		/* pthread_kill a thread that runs program code, onto its altstack */
		on(SIGUSR1, SA_ONSTACK);
		pthread_t t = start(spinner);
		int rc = pthread_kill(t, SIGUSR1);
		pthread_join(t, NULL);
		printf("pthread_kill %d: the handler ran in the target %d, si_code SI_TKILL %d, "
		       "si_pid ours %d, on its alternate stack %d, main is the leader %d\n",
		       rc, by == ttid, code == SI_TKILL, from_us, onstack, gettid() == getpid());
		return 0;
	}
	if (!strcmp(m, "eintr")) {
		/* without SA_RESTART the blocked read fails with EINTR */
		on(SIGUSR1, 0);
		pthread_t t = start(reader);
		pthread_kill(t, SIGUSR1);
		pthread_join(t, NULL);
		return 0;
	}
	if (!strcmp(m, "ppoll")) {
		/* a kill() every thread blocks: ppoll's and epoll_pwait's masks let it in */
		on(SIGUSR1, SA_RESTART);
		mask(SIG_BLOCK, SIGUSR1);
		sigset_t none;
		sigemptyset(&none);
		struct pollfd pf = {.fd = data[0], .events = POLLIN};
		struct timespec ts = {5, 0};
		pthread_t t;
		pthread_create(&t, NULL, killer, NULL);
		int rc = ppoll(&pf, 1, &ts, &none);
		printf("ppoll: %d (%s), the handler ran in main %d, the mask is back %d\n", rc,
		       strerror(errno), by == gettid(), blocks(SIGUSR1));
		pthread_join(t, NULL);
		by = 0;
		int ep = epoll_create1(0);
		struct epoll_event ev = {.events = EPOLLIN};
		epoll_ctl(ep, EPOLL_CTL_ADD, data[0], &ev);
		pthread_create(&t, NULL, killer, NULL);
		rc = epoll_pwait(ep, &ev, 1, 5000, &none);
		printf("epoll_pwait: %d (%s), the handler ran in main %d, the mask is back %d\n", rc,
		       strerror(errno), by == gettid(), blocks(SIGUSR1));
		pthread_join(t, NULL);
		return 0;
	}
	if (!strcmp(m, "sleep")) {
		/* a sleep never restarts, SA_RESTART or not; rem is the time left */
		on(SIGUSR1, SA_RESTART);
		pthread_t t, me = pthread_self();
		pthread_create(&t, NULL, late_kill, &me);
		struct timespec ts = {5, 0}, rem = {0, 0};
		int rc = nanosleep(&ts, &rem);
		printf("nanosleep: %d (%s), the handler ran in main %d, 3 s <= rem < 5 s %d\n", rc,
		       strerror(errno), by == gettid(), rem.tv_sec >= 3 && rem.tv_sec < 5);
		pthread_join(t, NULL);
		return 0;
	}
	if (!strcmp(m, "sigwait")) {
		mask(SIG_BLOCK, SIGTERM);
		mask(SIG_BLOCK, SIGUSR1);
		pthread_t t = start(waiter);
		kill(getpid(), SIGTERM);
		pthread_join(t, NULL);
		sigset_t s;
		siginfo_t si;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		struct timespec ts = {0, 100000000};
		int rc = sigtimedwait(&s, &si, &ts);
		printf("sigtimedwait with nothing sent: %d (%s)\n", rc, strerror(errno));
		raise(SIGUSR1);
		rc = sigtimedwait(&s, &si, &ts);
		printf("after raise: %d, si_code %d, still blocked %d\n", rc, si.si_code,
		       blocks(SIGUSR1));
		return 0;
	}
	if (!strcmp(m, "suspend")) {
		on(SIGUSR1, 0);
		on(SIGUSR2, 0);
		mask(SIG_BLOCK, SIGUSR1);
		pthread_t t, me = pthread_self();
		pthread_create(&t, NULL, killer, NULL);
		sigset_t none;
		sigemptyset(&none);
		int rc = sigsuspend(&none);
		printf("sigsuspend: %d (%s), the handler ran in main %d, the mask is back %d\n", rc,
		       strerror(errno), by == gettid(), blocks(SIGUSR1));
		pthread_join(t, NULL);
		pthread_create(&t, NULL, poker, &me);
		rc = pause();
		printf("pause: %d (%s), the handler ran %d\n", rc, strerror(errno), usr2 > 0);
		paused = 1;
		pthread_join(t, NULL);
		return 0;
	}
	if (!strcmp(m, "exec") || !strcmp(m, "exec-thread")) {
		/* execve while another thread spins or blocks: it ends */
		pthread_t t = start(m[4] ? reader : spinner);
		fflush(stdout);
		if (m[4]) {
			pthread_create(&t, NULL, execer, argv);
			pthread_join(t, NULL); /* never returns: the execve ends this thread */
		}
		execer(argv);
	}
	if (!strcmp(m, "after")) {
		printf("after execve: pid is tid %d, SIGUSR1 blocked %d\n", gettid() == getpid(),
		       blocks(SIGUSR1));
		return 0;
	}
	return 2;
}
C
if cc -O1 -pthread -o "$TMP/sigthr" "$TMP/sigthr.c" 2>"$TMP/cc.err"; then
	for e in soft kvm; do
		same "exec/$e: per-thread masks and pending sets; kill() goes to the thread that does not block it" \
			$e "$TMP/sigthr" mask
		same "exec/$e: pthread_kill to a thread in program code runs its handler there, on its sigaltstack" \
			$e "$TMP/sigthr" tgkill
		same "exec/$e: pthread_kill without SA_RESTART: the target's blocked read fails with EINTR" \
			$e "$TMP/sigthr" eintr
		same "exec/$e: sigsuspend takes a signal every thread blocks; pause ends on pthread_kill" \
			$e "$TMP/sigthr" suspend
		same "exec/$e: a signal thread's sigwaitinfo takes kill(SIGTERM); sigtimedwait times out" \
			$e "$TMP/sigthr" sigwait
		same "exec/$e: ppoll's and epoll_pwait's masks let a blocked signal in: EINTR, the mask back" \
			$e "$TMP/sigthr" ppoll
		same "exec/$e: pthread_kill ends a nanosleep with EINTR and the time left" \
			$e "$TMP/sigthr" sleep
		same "exec/$e: execve while another thread runs program code" $e "$TMP/sigthr" exec
		same "exec/$e: execve from a second thread while the others block" $e "$TMP/sigthr" exec-thread
	done
else
	fail "exec: build the signals-with-threads test program" "$(head -c 300 "$TMP/cc.err")"
fi
if [ -x /usr/bin/python3 ]; then
	cat >"$TMP/sig.py" <<'PY'
import os, signal, threading, time
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(threading.current_thread().name))
t = threading.Thread(target=lambda: (time.sleep(0.2), os.kill(os.getpid(), signal.SIGUSR1)), name="worker")
t.start()
start = time.monotonic()
time.sleep(1)
t.join()
print("handled in", got, "slept through", time.monotonic() - start >= 1)
signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
print("pthread_kill to main:", got)
PY
	for e in soft kvm; do
		same "exec/$e: python3: a thread's os.kill interrupts the main thread's sleep; its handler runs" \
			$e /usr/bin/python3 "$TMP/sig.py"
	done
fi

# The VM is torn down after popek has exited (run.c, release_later): the
# status and all output come first, read through pipes as a shell reads them,
# and the task that holds the VM for the teardown is gone soon after. It
# shares popek's memory, so its command line is popek's: the marker finds it
# (a test of the test: with the task made to sleep, the second check fails).
for e in soft kvm; do
	mark="POPEK_RELEASE_TEST=$$-$e"
	timeout 60 "$POPEK" exec --engine $e --env "$mark" -- /bin/sh -c \
		'echo out; echo err >&2; echo "$POPEK_RELEASE_TEST"; exit 7' 2>"$TMP/rel.err" </dev/null |
		cat >"$TMP/rel.out"
	rc=${PIPESTATUS[0]}
	got=$(cat "$TMP/rel.out")
	want=$(printf 'out\n%s' "${mark#*=}")
	left=
	for _ in $(seq 100); do
		left=$(grep -ls "POPEK_RELEASE_TES[T]=$$-$e" /proc/[0-9]*/cmdline) # not grep itself
		[ -z "$left" ] && break
		sleep 0.1
	done
	if [ "$rc" -ne 7 ] || [ "$got" != "$want" ] || [ "$(cat "$TMP/rel.err")" != err ]; then
		fail "exec/$e: status and output before the VM's teardown" \
			"exit $rc (want 7), stdout '$got', stderr '$(head -c 200 "$TMP/rel.err")'"
	elif [ -n "$left" ]; then
		fail "exec/$e: the VM's teardown ends" "still running after 10 s: $left"
	else
		pass "exec/$e: status and output before the VM's teardown, which ends soon after"
	fi
done
