/* The call ring (kvm engine): system calls without an exit. On this host's
 * nested PVM, SYSCALL from ring 3 stays in ring 3 and jumps to LSTAR, so
 * with LSTAR on a user page popek provides, the call reaches a dispatcher
 * running natively in the VM. The dispatcher posts the call into its vCPU's
 * slot in guest RAM, which popek's server thread watches: the server serves
 * it with exec_syscall, as an exit would, and the dispatcher returns the
 * result to RCX with R11's flags. Whatever cannot go that way (a call that
 * blocks or changes the vCPU's own state, the server asleep or late, a
 * signal to take) leaves by the old path: a jump to the kernel stub, whose
 * fetch fault popek serves as the call (run.c, frame_syscall). On hardware
 * where SYSCALL enters ring 0, the dispatcher takes that path at once.
 * The slots are guest-writable: the server reads a request once, checks it,
 * and trusts nothing in a slot beyond the protocol. docs/exec.md. */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"

/* Guest pages, at X_RING_VA and at fixed frames below the first data frame,
 * so a host pointer to them holds across execve (mm_reset) */
#define RING_PA	   0x10000ull
#define RING_CODE  0 /* the entries and the dispatcher: user, read and execute */
#define RING_INFO  1 /* popek's words for the dispatcher: user, read only */
#define RING_SLOTS 2 /* a slot per vCPU: user, read and write */
#define RING_PAGES (RING_SLOTS + X_MAX_THREADS * 256 / 4096)

/* The info page: what the dispatcher reads and popek alone writes. */
struct ring_info {
	uint32_t asleep; /* the server sleeps: take the exit at once */
	uint8_t pad[60];
	uint64_t ok[8]; /* a bit per call number that may be posted */
	uint64_t slow;	/* where the exit path starts: the kernel stub */
	uint64_t spin;	/* loops to wait for a posted call */
};

/* A vCPU's slot: one cache line of request, the result, the dispatcher's
 * own stack at the end (its stack pointer tells the dispatcher its slot). */
struct ring_slot {
	uint32_t state; /* RING_FREE... */
	uint32_t work;	/* popek wants the vCPU out: take the exit with the result */
	uint64_t nr, a[6];
	uint64_t ret;
	uint8_t stack[168]; /* ends with the caller's RDX and RSP */
	uint64_t rdx, rsp;
};
_Static_assert(sizeof(struct ring_slot) == 256, "the dispatcher finds its slot by RSP & -256");
_Static_assert(sizeof(struct ring_info) <= 4096, "one page");

enum { RING_FREE, RING_POSTED, RING_TAKEN, RING_DONE, RING_DECLINED };
/* The dispatcher below spells out these offsets and states. */
_Static_assert(RING_INFO * 4096 == 4096 && RING_SLOTS * 4096 == 8192, "page offsets");
_Static_assert(offsetof(struct ring_info, ok) == 64 && offsetof(struct ring_info, slow) == 128 &&
		   offsetof(struct ring_info, spin) == 136,
	       "info offsets");
_Static_assert(offsetof(struct ring_slot, work) == 4 && offsetof(struct ring_slot, nr) == 8 &&
		   offsetof(struct ring_slot, a) == 16 && offsetof(struct ring_slot, ret) == 64 &&
		   offsetof(struct ring_slot, rsp) == 248,
	       "slot offsets");
_Static_assert(RING_POSTED == 1 && RING_TAKEN == 2 && RING_DONE == 3 && RING_DECLINED == 4,
	       "states");

/* How long the dispatcher waits for the server: RING_SPIN / 16 loops (of a
 * few ns, well under the ~13 µs a SYSCALL costs here) for it to take a
 * call, up to RING_SPIN while it serves one (a host call such as openat
 * takes tens of µs here; an exit ~70). No PAUSE, which the outer
 * hypervisor may take as a spinning vCPU to deschedule. The server watches
 * for RING_WATCH_NS after its last call before it sleeps: bounded, the
 * host has two cores. */
#define RING_SPIN     80000
#define RING_WATCH_NS 1000000

#define S(x)  #x
#define XS(x) S(x)

/* Entry k (LSTAR of vCPU k, 32 bytes each) saves the caller's RSP in slot
 * k and moves to slot k's stack, touching neither the program's stack (no
 * red zone to mind) nor its flags; the dispatcher then needs no register to
 * know its slot. Every register but RAX, RCX and R11 is given back as it
 * was, and on the exit path RAX too, so the stub sees the SYSCALL's state. */
__asm__(".pushsection .rodata\n"
	".balign 64\n"
	".globl exec_ring_code\n"
	".hidden exec_ring_code\n"
	"exec_ring_code:\n"
	".Lring_base:\n"
	".set .Lk, 0\n"
	".rept " XS(X_MAX_THREADS) "\n"
				   "	mov %rsp, .Lring_base + 8192 + .Lk * 256 + 248(%rip)\n"
				   "	lea .Lring_base + 8192 + .Lk * 256 + 248(%rip), %rsp\n"
				   "	jmp .Lring_common\n"
				   "	.balign 32, 0xcc\n"
				   "	.set .Lk, .Lk + 1\n"
				   ".endr\n"
				   ".Lring_common:\n"
				   "	push %rdx\n"
				   "	mov %cs, %edx\n"
				   "	test $3, %dl\n"
				   "	jz .Lring_slow\n" /* ring 0: real hardware, the stub's exit
							     is cheap */
				   "	cmp $512, %rax\n"
				   "	jae .Lring_slow\n"
				   "	bt %rax, .Lring_base + 4096 + 64(%rip)\n"
				   "	jnc .Lring_slow\n"
				   "	cmpl $0, .Lring_base + 4096(%rip)\n"
				   "	jne .Lring_slow\n"
				   "	mov %rsp, %rdx\n"
				   "	and $-256, %rdx\n"
				   "	mov %rax, 8(%rdx)\n"
				   "	mov %rdi, 16(%rdx)\n"
				   "	mov %rsi, 24(%rdx)\n"
				   "	mov (%rsp), %rax\n"
				   "	mov %rax, 32(%rdx)\n"
				   "	mov %r10, 40(%rdx)\n"
				   "	mov %r8, 48(%rdx)\n"
				   "	mov %r9, 56(%rdx)\n"
				   "	movl $1, (%rdx)\n" /* posted */
				   "	mov .Lring_base + 4096 + 136(%rip), %rax\n"
				   ".Lring_wait:\n"
				   "	cmpl $3, (%rdx)\n"
				   "	je .Lring_done\n"
				   "	cmpl $4, (%rdx)\n"
				   "	je .Lring_giveup\n" /* declined */
				   "	cmpl $2, (%rdx)\n"
				   "	je .Lring_taken\n"
				   "	sub $16, %rax\n" /* posted: the server has not seen it */
				   "	jg .Lring_wait\n"
				   "	jmp .Lring_late\n"
				   ".Lring_taken:\n" /* taken: the server is at it, wait longer */
				   "	sub $1, %rax\n"
				   "	jg .Lring_wait\n"
				   ".Lring_late:\n"
				   "	mov $1, %eax\n" /* too long: withdraw it, if the server did
							   not take it */
				   "	xor %edi, %edi\n"
				   "	lock cmpxchg %edi, (%rdx)\n"
				   "	mov 16(%rdx), %rdi\n"
				   ".Lring_giveup:\n"
				   "	mov 8(%rdx), %rax\n"
				   "	jmp .Lring_slow\n"
				   ".Lring_done:\n"
				   "	testl $1, 4(%rdx)\n"
				   "	jnz .Lring_giveup\n" /* the exit takes the result, the slot
								stays done */
				   "	mov 64(%rdx), %rax\n"
				   "	movl $0, (%rdx)\n"
				   "	pop %rdx\n"
				   "	push %r11\n"
				   "	popfq\n"
				   "	pop %rsp\n"
				   "	jmp *%rcx\n"
				   ".Lring_slow:\n"
				   "	pop %rdx\n"
				   "	pop %rsp\n"
				   "	jmp *.Lring_base + 4096 + 128(%rip)\n"
				   ".globl exec_ring_code_end\n"
				   ".hidden exec_ring_code_end\n"
				   "exec_ring_code_end:\n"
				   ".popsection\n");

extern const uint8_t exec_ring_code[], exec_ring_code_end[];

static struct ring_info *info(struct xproc *p)
{
	return (struct ring_info *)(p->mm.mem.base + RING_PA + RING_INFO * XPAGE);
}

static struct ring_slot *slot(struct xproc *p, int k)
{
	return (struct ring_slot *)(p->mm.mem.base + RING_PA + RING_SLOTS * XPAGE) + k;
}

uint64_t ring_entry(int k)
{
	return X_RING_VA + (uint64_t)k * 32;
}

bool ring_in_page(uint64_t rip)
{
	return rip >= X_RING_VA && rip < X_RING_VA + XPAGE;
}

int ring_build(struct xproc *p, uint64_t slow)
{
	_Static_assert(X_MAX_THREADS * 32 < 4096, "the entries and the dispatcher in a page");
	if (p->fast_syscall || p->mm.mem.size < RING_PA + RING_PAGES * XPAGE)
		return 0; /* soft: SYSCALL is an exit of its own; or no RAM for the pages */
	for (int i = 0; i < RING_PAGES; i++) {
		int prot = i == RING_CODE ? PROT_READ | PROT_EXEC
					  : PROT_READ | (i >= RING_SLOTS ? PROT_WRITE : 0);
		if (mm_map_fixed(&p->mm, X_RING_VA + i * XPAGE, RING_PA + i * XPAGE, prot))
			return -ENOMEM;
	}
	memcpy(p->mm.mem.base + RING_PA, exec_ring_code,
	       (size_t)(exec_ring_code_end - exec_ring_code));
	struct ring_info *in = info(p);
	syscall_ring_map(in->ok);
	in->slow = slow;
	in->spin = RING_SPIN;
	__atomic_store_n(&in->asleep, !p->ring.started || p->ring.sleeping, __ATOMIC_RELEASE);
	p->ring.on = true;
	return 0;
}

void ring_thread(struct xproc *p, struct xthread *t, struct cpu_state *st)
{
	if (!p->ring.on)
		return;
	struct ring_slot *s = slot(p, t->index);
	__atomic_store_n(&s->work, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, RING_FREE, __ATOMIC_RELEASE);
	st->msr[MSR_IDX_LSTAR] = ring_entry(t->index);
	if (t->index >= p->ring.nslots)
		__atomic_store_n(&p->ring.nslots, t->index + 1, __ATOMIC_RELEASE);
}

void ring_kick(struct xproc *p, struct xthread *t)
{
	if (p->ring.on)
		__atomic_store_n(&slot(p, t->index)->work, 1, __ATOMIC_RELEASE);
}

static long futex(uint32_t *w, int op, uint32_t val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

/* One posted call of vCPU k, under the process lock as every call is. */
static void serve(struct xproc *p, int k)
{
	struct ring_slot *s = slot(p, k);
	struct xthread *t = &p->thread[k];
	exec_lock(p);
	uint32_t want = RING_POSTED;
	if (!t->live || p->exited) {
		/* a thread gone meanwhile: nobody waits for it */
		__atomic_compare_exchange_n(&s->state, &want, RING_FREE, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_RELAXED);
		exec_unlock(p);
		return;
	}
	if (!__atomic_compare_exchange_n(&s->state, &want, RING_TAKEN, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED)) {
		exec_unlock(p); /* withdrawn */
		return;
	}
	__atomic_store_n(&t->ring_busy, 1, __ATOMIC_RELAXED);
	/* read once: the program may rewrite its slot at any time */
	struct xsys c;
	c.nr = __atomic_load_n(&s->nr, __ATOMIC_RELAXED);
	for (int i = 0; i < 6; i++)
		c.a[i] = __atomic_load_n(&s->a[i], __ATOMIC_RELAXED);
	uint32_t state = RING_DECLINED;
	exec_self = t;
	if (syscall_on_ring(p, &c)) {
		t->on_ring = true;
		int64_t ret = exec_syscall(p, &c);
		t->on_ring = false;
		p->ring.calls++;
		bool work = p->exited || !t->live || exec_signal_wanted(p);
		if (p->mm.need_flush) {
			/* the caller flushes at its exit (flush_seen is behind),
			 * the others when their kick lands */
			p->mm.need_flush = false;
			p->flush_gen++;
			for (int i = 0; i < X_MAX_THREADS; i++)
				if (p->thread[i].live && i != k)
					exec_kick(p, &p->thread[i], false);
			work = true;
		}
		__atomic_store_n(&s->ret, (uint64_t)ret, __ATOMIC_RELAXED);
		if (work)
			__atomic_store_n(&s->work, 1, __ATOMIC_RELAXED);
		state = RING_DONE;
	}
	exec_self = NULL;
	__atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
	__atomic_store_n(&t->ring_busy, 0, __ATOMIC_RELEASE);
	futex(&t->ring_busy, FUTEX_WAKE_PRIVATE, 1);
	exec_unlock(p);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Serve what is posted; true if anything was. */
static bool scan(struct xproc *p)
{
	bool any = false;
	int n = __atomic_load_n(&p->ring.nslots, __ATOMIC_ACQUIRE);
	for (int k = 0; k < n; k++)
		if (__atomic_load_n(&slot(p, k)->state, __ATOMIC_ACQUIRE) == RING_POSTED) {
			serve(p, k);
			any = true;
		}
	return any;
}

/* Watches the slots while calls come, then sleeps until an exit-path call
 * wakes it (ring_wake). A call posted as it falls asleep is withdrawn by its
 * dispatcher after its spin, and takes the exit. */
static void *server(void *arg)
{
	struct xproc *p = arg;
	uint64_t last = now_ns();
	for (unsigned i = 0; !__atomic_load_n(&p->ring.quit, __ATOMIC_ACQUIRE); i++) {
		if (scan(p)) {
			last = now_ns();
			continue;
		}
		/* no vCPU in program code: nothing comes until an exit is served,
		 * and that exit's thread may want this core */
		if (__atomic_load_n(&p->ring.in_guest, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
		else
			sched_yield();
		if ((i & 15) || now_ns() - last < RING_WATCH_NS)
			continue;
		__atomic_store_n(&p->ring.sleeping, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&info(p)->asleep, 1, __ATOMIC_SEQ_CST);
		scan(p);
		while (__atomic_load_n(&p->ring.sleeping, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&p->ring.quit, __ATOMIC_ACQUIRE))
			futex(&p->ring.sleeping, FUTEX_WAIT_PRIVATE, 1);
		__atomic_store_n(&info(p)->asleep, 0, __ATOMIC_RELEASE);
		last = now_ns();
	}
	return NULL;
}

void ring_wake(struct xproc *p, uint64_t nr)
{
	if (!p->ring.on || nr >= 512 || !(info(p)->ok[nr / 64] & (1ull << (nr % 64))))
		return; /* the server is for calls that may go by the ring */
	if (!p->ring.started) {
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old); /* the server takes no signals */
		p->ring.sleeping = 0;
		p->ring.started = pthread_create(&p->ring.server, NULL, server, p) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (p->ring.started)
			__atomic_store_n(&info(p)->asleep, 0, __ATOMIC_RELEASE);
		return;
	}
	if (__atomic_exchange_n(&p->ring.sleeping, 0, __ATOMIC_ACQ_REL))
		futex(&p->ring.sleeping, FUTEX_WAKE_PRIVATE, 1);
}

void ring_stop(struct xproc *p)
{
	if (!p->ring.started)
		return;
	__atomic_store_n(&p->ring.quit, true, __ATOMIC_RELEASE);
	if (__atomic_exchange_n(&p->ring.sleeping, 0, __ATOMIC_ACQ_REL))
		futex(&p->ring.sleeping, FUTEX_WAKE_PRIVATE, 1);
	pthread_join(p->ring.server, NULL);
	p->ring.started = false;
}

bool ring_collect(struct xproc *p, int64_t *ret)
{
	if (!p->ring.on)
		return false;
	struct xthread *t = exec_self;
	struct ring_slot *s = slot(p, t->index);
	__atomic_store_n(&s->work, 0, __ATOMIC_RELAXED); /* this exit does the work */
	while (__atomic_load_n(&t->ring_busy, __ATOMIC_ACQUIRE)) {
		exec_unlock(p); /* the server has the call: it finishes it */
		futex(&t->ring_busy, FUTEX_WAIT_PRIVATE, 1);
		exec_lock(p);
	}
	if (__atomic_exchange_n(&s->state, RING_FREE, __ATOMIC_ACQ_REL) != RING_DONE)
		return false;
	*ret = (int64_t)__atomic_load_n(&s->ret, __ATOMIC_RELAXED);
	return true;
}

void ring_forked(struct xproc *p)
{
	/* the server is the parent's: this process starts its own when needed */
	p->ring.started = false;
	p->ring.sleeping = 0;
	if (!p->ring.on)
		return;
	__atomic_store_n(&info(p)->asleep, 1, __ATOMIC_RELEASE);
	for (int k = 0; k < X_MAX_THREADS; k++) {
		slot(p, k)->state = RING_FREE;
		slot(p, k)->work = 0;
		p->thread[k].ring_busy = 0;
		p->thread[k].rekick_armed = false; /* timers are not inherited */
	}
}

/* A signal for a vCPU kicked inside the dispatcher waits until it leaves:
 * the work flag brings it out through the exit path, or it returns to the
 * program and the next kick finds it there. */
void ring_rekick(struct xthread *t)
{
	t->kicks++; /* an EINTR it brings is for the signal, not the program's */
	if (!t->rekick_armed) {
		struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID,
				      .sigev_signo = X_KICK_SIGNAL};
		ev._sigev_un._tid = t->tid; /* sigev_notify_thread_id, which glibc 2.36 lacks */
		if (timer_create(CLOCK_MONOTONIC, &ev, &t->rekick))
			return;
		t->rekick_armed = true;
	}
	struct itimerspec in = {.it_value = {0, 50000}};
	timer_settime(t->rekick, 0, &in, NULL);
}
