/* The program's CPU and its run loop. The VM has one vCPU in 64-bit user
 * mode and a one-page "kernel" popek writes: a GDT, a TSS, an IDT whose 32
 * exception gates lead to stubs that report the vector with one OUT, and a
 * SYSCALL entry stub that does the same. On the soft engine SYSCALL never
 * reaches that stub: the engine leaves with EXIT_SYSCALL carrying the
 * arguments and takes the result back in RAX (docs/exec.md). On kvm LSTAR
 * is the call ring's entry (ring.c), whose dispatcher jumps to the stub for
 * what the ring does not serve. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec/exec.h"
#include "util/sanitize.h"

#define PORT_FAULT   0xf0
#define PORT_SYSCALL 0xf1

#define SEL_KCODE 0x08
#define SEL_UDATA 0x23
#define SEL_UCODE 0x2b
#define SEL_TSS	  0x30

#define KPAGE_GDT    0
#define KPAGE_IDT    1
#define KPAGE_TSS    2
#define KPAGE_STUB   3
#define KPAGE_STACK  4 /* and the next: 8 KiB of exception stack (the first thread's) */
#define KPAGE_THREAD 8 /* then 4 per further thread: its TSS and exception stack */
#define STUB_SIZE    32
#define STUB_REPORT  16 /* a fault stub's bytes up to and with its OUT */
#define SYSCALL_STUB (32 * STUB_SIZE)

/* What a fault stub leaves on the exception stack, lowest address first. */
enum { KF_R11, KF_R10, KF_R9, KF_R8, KF_RAX, KF_REGS };
/* then [error code], then the CPU's frame: */
enum { IF_RIP, IF_CS, IF_RFLAGS, IF_RSP, IF_SS, IF_WORDS };

static bool has_error_code(unsigned vec)
{
	return vec == 8 || (vec >= 10 && vec <= 14) || vec == 17;
}

void exec_user_segments(struct cpu_state *st)
{
	uint64_t fs = st->seg[SEG_FS].base, gs = st->seg[SEG_GS].base;
	for (int i = 0; i < SEG_TR; i++) {
		cpu_state_flat_seg(&st->seg[i], SEL_UDATA, false, false);
		st->seg[i].dpl = 3;
	}
	cpu_state_flat_seg(&st->seg[SEG_CS], SEL_UCODE, true, true);
	st->seg[SEG_CS].dpl = 3;
	st->seg[SEG_FS].base = fs;
	st->seg[SEG_GS].base = gs;
}

int exec_get_state(struct xproc *p, struct cpu_state *st)
{
	return p->ops->get_state(exec_self->vcpu, st);
}

int exec_user_state(struct xproc *p, struct cpu_state *st)
{
	if (exec_self->slow_user) { /* a call on the slow path: its user state is known */
		memcpy(st, exec_self->slow_user, sizeof(*st));
		return 0;
	}
	int rc = p->ops->get_state(exec_self->vcpu, st);
	if (rc || !exec_self->kframe)
		return rc;
	/* in a fault stub: the registers it saved and the CPU's frame */
	const uint64_t *k = exec_self->kframe, *f = exec_self->iframe;
	st->gpr[R_RAX] = k[KF_RAX];
	st->gpr[R_RSP] = f[IF_RSP];
	st->rip = st->gpr[R_RCX];
	st->rflags = (k[KF_R11] & 0x3c7fd7) | 2;
	exec_user_segments(st);
	return 0;
}

int exec_set_state(struct xproc *p, const struct cpu_state *st)
{
	exec_self->state_set = true;
	return p->ops->set_state(exec_self->vcpu, st);
}

void exec_exit(struct xproc *p, int status)
{
	p->exited = true;
	p->status = status;
	if (p->vfork_fd >= 0) { /* the vfork parent may go on */
		close(p->vfork_fd);
		p->vfork_fd = -1;
	}
}

void exec_kill(struct xproc *p, int sig)
{
	p->term_sig = sig;
	exec_exit(p, 128 + sig);
}

static uint64_t kva(int page)
{
	return X_KERNEL_VA + (uint64_t)page * XPAGE;
}

/* The first page of thread t's TSS and exception stack. */
static int thread_page(const struct xthread *t, int page)
{
	return t->index ? KPAGE_THREAD + 4 * (t->index - 1) + page
			: (page ? KPAGE_STACK + page - 1 : KPAGE_TSS);
}

/* Thread t's TSS (RSP0 at the top of its exception stack), so faults on two
 * vCPUs at once land on stacks of their own. */
static int thread_pages(struct xproc *p, struct xthread *t)
{
	uint8_t *tss = mm_map_kernel(&p->mm, kva(thread_page(t, 0)), false);
	if (!tss || !mm_map_kernel(&p->mm, kva(thread_page(t, 1)), false) ||
	    !(t->kstack = mm_map_kernel(&p->mm, kva(thread_page(t, 2)), false)))
		return -ENOMEM;
	uint64_t rsp0 = kva(thread_page(t, 2)) + XPAGE;
	memcpy(tss + 4, &rsp0, 8);
	tss[102] = 0x68; /* no I/O bitmap */
	return 0;
}

static void thread_tr(const struct xthread *t, struct cpu_state *st)
{
	st->seg[SEG_TR] = (struct seg){.base = kva(thread_page(t, 0)),
				       .limit = 0x67,
				       .sel = SEL_TSS,
				       .type = 0xb,
				       .present = 1};
}

/* The kernel page set: descriptors and stubs, supervisor-only. */
static int build_kernel(struct xproc *p)
{
	uint64_t *gdt = mm_map_kernel(&p->mm, kva(KPAGE_GDT), false);
	uint8_t *idt = mm_map_kernel(&p->mm, kva(KPAGE_IDT), false);
	uint8_t *stub = mm_map_kernel(&p->mm, kva(KPAGE_STUB), true);
	if (!gdt || !idt || !stub || thread_pages(p, exec_self))
		return -ENOMEM;
	gdt[1] = 0x00af9b000000ffffull; /* kernel code, 64-bit */
	gdt[2] = 0x00cf93000000ffffull; /* kernel data */
	gdt[3] = 0x00cffb000000ffffull; /* user code, 32-bit (SYSRET's layout) */
	gdt[4] = 0x00cff3000000ffffull; /* user data */
	gdt[5] = 0x00affb000000ffffull; /* user code, 64-bit */
	uint64_t tb = kva(KPAGE_TSS);	/* for LTR only: each vCPU's TR holds its own TSS */
	gdt[6] = 0x67 | ((tb & 0xffffff) << 16) | (0x89ull << 40) | (((tb >> 24) & 0xff) << 56);
	gdt[7] = tb >> 32;
	for (int v = 0; v < 32; v++) {
		/* push rax r8 r9 r10 r11; mov eax, v; out PORT_FAULT, eax; pop them;
		 * [add rsp, 8: the error code]; iretq. popek reads and edits the
		 * frame in memory, so a call resumes without a state reload. */
		static const uint8_t push[] = {0x50, 0x41, 0x50, 0x41, 0x51,
					       0x41, 0x52, 0x41, 0x53};
		static const uint8_t pop[] = {0x41, 0x5b, 0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, 0x58};
		static const uint8_t drop_err[] = {0x48, 0x83, 0xc4, 0x08};
		_Static_assert(sizeof(push) + 5 + 2 == STUB_REPORT, "pushes, mov eax, out");
		uint8_t *s = stub + v * STUB_SIZE;
		size_t n = 0;
		memcpy(s + n, push, sizeof(push));
		n += sizeof(push);
		s[n++] = 0xb8;
		memcpy(s + n, &v, 4);
		n += 4;
		s[n++] = 0xe7;
		s[n++] = PORT_FAULT;
		memcpy(s + n, pop, sizeof(pop));
		n += sizeof(pop);
		if (has_error_code((unsigned)v)) {
			memcpy(s + n, drop_err, sizeof(drop_err));
			n += sizeof(drop_err);
		}
		s[n++] = 0x48;
		s[n++] = 0xcf;
		uint64_t off = kva(KPAGE_STUB) + (uint64_t)v * STUB_SIZE;
		uint8_t *g = idt + v * 16;
		memset(g, 0, 16);
		g[0] = (uint8_t)off;
		g[1] = (uint8_t)(off >> 8);
		g[2] = SEL_KCODE;
		/* interrupt gate; int3/into may be raised by user code */
		g[5] = (v == 3 || v == 4) ? 0xee : 0x8e;
		g[6] = (uint8_t)(off >> 16);
		g[7] = (uint8_t)(off >> 24);
		uint32_t hi = (uint32_t)(off >> 32);
		memcpy(g + 8, &hi, 4);
	}
	stub[SYSCALL_STUB] = 0xe7; /* out PORT_SYSCALL, eax; hlt */
	stub[SYSCALL_STUB + 1] = PORT_SYSCALL;
	stub[SYSCALL_STUB + 2] = 0xf4;
	return ring_build(p, kva(KPAGE_STUB) + SYSCALL_STUB);
}

static void initial_state(struct xproc *p, struct cpu_state *st, uint64_t entry, uint64_t rsp)
{
	memset(st, 0, sizeof(*st));
	exec_user_segments(st);
	thread_tr(exec_self, st);
	st->seg[SEG_LDTR] = (struct seg){.type = 0x2, .present = 1, .unusable = 1};
	st->gdt = (struct dtable){kva(KPAGE_GDT), 8 * 8 - 1};
	st->idt = (struct dtable){kva(KPAGE_IDT), 32 * 16 - 1};
	st->cr0 = 0x80050033; /* PG WP NE ET MP PE */
	st->cr3 = p->mm.pml4;
	st->cr4 = 0x620;	       /* OSXMMEXCPT OSFXSR PAE */
	st->msr[MSR_IDX_EFER] = 0xd01; /* NXE LMA LME SCE */
	st->msr[MSR_IDX_STAR] = (0x18ull << 48) | ((uint64_t)SEL_KCODE << 32);
	st->msr[MSR_IDX_LSTAR] = kva(KPAGE_STUB) + SYSCALL_STUB;
	/* AC DF TF NT; not IF: the ring's dispatcher runs at CPL3 here, where
	 * POPF cannot set it again */
	st->msr[MSR_IDX_SFMASK] = 0x44500;
	st->msr[MSR_IDX_PAT] = 0x0007040600070406ull;
	st->rflags = 0x202;
	st->rip = entry;
	st->gpr[R_RSP] = rsp;
	st->dr6 = 0xffff0ff0;
	st->dr7 = 0x400;
	st->mp_state = MP_RUNNABLE;
	cpu_state_reset_fpu(st);
	ring_thread(p, exec_self, st);
}

static const char *engine_name(const char *want)
{
	/* Both engines run the program's own code at CPL3; soft serves a call
	 * in the engine's thread without a round trip (~0.3 µs), kvm here pays
	 * ~13 µs by the ring and ~70 µs by an exit (docs/exec.md), so auto
	 * means soft. */
	return !want || !strcmp(want, "auto") ? "soft" : want;
}

static int create_vm(struct xproc *p, char *err, size_t errlen)
{
	const char *name = engine_name(p->opt->engine);
	p->ops = engine_find(name);
	if (!p->ops) {
		snprintf(err, errlen, "unknown engine '%s' — use kvm, soft or auto", name);
		return XEXIT_USAGE;
	}
	p->fast_syscall = p->ops == &soft_engine;
	struct engine_vm_config cfg = {
	    .ncpus = X_MAX_THREADS, .ram_size = p->mm.mem.size, .syscall_exits = p->fast_syscall};
	if (p->ops->vm_create(&cfg, &p->vm, err, errlen) < 0)
		return XEXIT_ENGINE;
	if (p->ops->map_memory(p->vm, 0, 0, p->mm.mem.size, p->mm.mem.base, 0) < 0 ||
	    p->ops->vcpu_create(p->vm, exec_self->index, &exec_self->vcpu) < 0) {
		snprintf(err, errlen, "the %s engine cannot map guest memory or create a vCPU",
			 name);
		return XEXIT_ENGINE;
	}
	return 0;
}

/* A SYSCALL that did not leave as EXIT_SYSCALL: serve it from the user state
 * it came from, and return there the way SYSRET would. */
static void slow_syscall(struct xproc *p, struct cpu_state *user)
{
	const uint64_t *r = user->gpr;
	struct xsys s = {r[R_RAX], {r[R_RDI], r[R_RSI], r[R_RDX], r[R_R10], r[R_R8], r[R_R9]}};
	exec_self->state_set = false;
	exec_self->slow_user = user;
	int64_t ret = exec_syscall(p, &s);
	exec_self->slow_user = NULL;
	if (p->exited || exec_self->state_set)
		return;
	user->gpr[R_RAX] = (uint64_t)ret;
	exec_set_state(p, user);
}

static const struct {
	int sig;
	const char *what;
} fault_signal[32] = {
    [0] = {SIGFPE, "divide error"},
    [1] = {SIGTRAP, "debug trap"},
    [3] = {SIGTRAP, "breakpoint"},
    [4] = {SIGSEGV, "overflow"},
    [5] = {SIGSEGV, "bound range"},
    [6] = {SIGILL, "invalid opcode"},
    [7] = {SIGSEGV, "device not available"},
    [10] = {SIGSEGV, "invalid TSS"},
    [11] = {SIGBUS, "segment not present"},
    [12] = {SIGBUS, "stack fault"},
    [13] = {SIGSEGV, "general protection"},
    [14] = {SIGSEGV, "page fault"},
    [16] = {SIGFPE, "x87 error"},
    [17] = {SIGBUS, "alignment check"},
    [19] = {SIGFPE, "SIMD error"},
};

/* A CPU exception in the program: the stub's frame is on the kernel stack. */
/* Nested PVM: SYSCALL did everything but enter ring 0, so the fetch at LSTAR
 * faulted in ring 3 (guests/lib/user.c). The call's registers are in the exit
 * and the stub's frame; the result goes back into that frame, and the stub's
 * IRETQ returns to the caller: no state is read or loaded. */
static void frame_syscall(struct xproc *p, const struct vcpu_exit *ex, uint64_t *k, uint64_t *f)
{
	const struct exit_regs *r = &ex->io.regs;
	struct xsys s = {k[KF_RAX], {r->rdi, r->rsi, r->rdx, k[KF_R10], k[KF_R8], k[KF_R9]}};
	p->pvm_syscalls++;
	exec_self->state_set = false;
	exec_self->kframe = k;
	exec_self->iframe = f;
	int64_t ret;
	if (ring_collect(p, &ret)) { /* the ring's server ran it: its signals now */
		ret = exec_signal_syscall(p, &s, ret);
	} else {
		ring_wake(p, s.nr);
		ret = exec_syscall(p, &s);
	}
	if (!p->exited && !exec_self->state_set && p->mm.need_flush) {
		/* a mapping went: a state reload makes the TLB forget it */
		static _Thread_local struct cpu_state st;
		if (exec_user_state(p, &st)) {
			exec_exit(p, XEXIT_HOST);
		} else {
			st.gpr[R_RAX] = (uint64_t)ret;
			exec_set_state(p, &st);
		}
	}
	exec_self->kframe = exec_self->iframe = NULL;
	if (p->exited || exec_self->state_set)
		return;
	k[KF_RAX] = (uint64_t)ret;
	f[IF_RIP] = r->rcx;
	f[IF_RFLAGS] = (k[KF_R11] & 0x3c7fd7) | 2;
	exec_self->in_stub = true;
}

/* The top of thread t's exception stack: what its fault stub saved, and the
 * CPU's frame after it. */
static uint64_t *stub_frame(struct xthread *t, bool err, uint64_t **frame)
{
	uint64_t *k = (uint64_t *)(t->kstack + XPAGE) - (KF_REGS + err + IF_WORDS);
	*frame = k + KF_REGS + err;
	return k;
}

int exec_async_state(struct xproc *p, struct cpu_state *st)
{
	if (exec_get_state(p, st))
		return -1;
	if ((st->seg[SEG_CS].sel & 3) == 3 && st->rip < X_USER_END)
		return 0;
	uint64_t stub = kva(KPAGE_STUB);
	if (!exec_self->in_stub || st->rip < stub || st->rip >= stub + SYSCALL_STUB ||
	    (st->rip - stub) % STUB_SIZE < STUB_REPORT)
		return -1;
	/* Past its report, a stub only pops what it saved and returns with
	 * IRETQ: the state it returns to is in memory (frame_syscall's result).
	 * Before it, the stub is the next fault's (in_stub is the last one's):
	 * its report comes at once. */
	unsigned vec = (unsigned)((st->rip - stub) / STUB_SIZE);
	uint64_t *f, *k = stub_frame(exec_self, has_error_code(vec), &f);
	st->gpr[R_RAX] = k[KF_RAX];
	st->gpr[R_R8] = k[KF_R8];
	st->gpr[R_R9] = k[KF_R9];
	st->gpr[R_R10] = k[KF_R10];
	st->gpr[R_R11] = k[KF_R11];
	st->rip = f[IF_RIP];
	st->rflags = (f[IF_RFLAGS] & 0x3c7fd7) | 2;
	st->gpr[R_RSP] = f[IF_RSP];
	exec_user_segments(st);
	return 0;
}

/* A CPU exception in the program, reported by its stub. */
static void fault(struct xproc *p, const struct vcpu_exit *ex)
{
	unsigned vec = (unsigned)ex->io.regs.rax & 31;
	bool err = has_error_code(vec);
	/* faults do not nest, so the stub's frame is at the top of the stack */
	uint64_t *f, *k = stub_frame(exec_self, err, &f);
	uint64_t lstar = kva(KPAGE_STUB) + SYSCALL_STUB;
	if (vec == 14 && f[IF_RIP] == lstar && (f[IF_CS] & 3) == 3) {
		frame_syscall(p, ex, k, f);
		return;
	}
	static _Thread_local struct cpu_state st;
	if (exec_get_state(p, &st)) {
		exec_exit(p, XEXIT_HOST);
		return;
	}
	st.gpr[R_RAX] = k[KF_RAX];
	p->nfaults++;
	int sig = fault_signal[vec].sig ? fault_signal[vec].sig : SIGSEGV;
	uint64_t addr = vec == 14 ? st.cr2 : f[IF_RIP];
	if (exec_signal_fault(p, &st, sig, addr, f))
		return; /* the program's handler runs */
	fprintf(stderr, "popek exec: %s: SIG%s (%s) at address 0x%llx, rip 0x%llx\n",
		p->opt->program, sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal",
		fault_signal[vec].what ? fault_signal[vec].what : "exception",
		(unsigned long long)addr, (unsigned long long)f[IF_RIP]);
	exec_kill(p, sig);
}

/* The CPL0 entry stub at LSTAR (hardware that switches to ring 0). */
static void stub_syscall(struct xproc *p)
{
	static _Thread_local struct cpu_state st;
	if (exec_get_state(p, &st)) {
		exec_exit(p, XEXIT_HOST);
		return;
	}
	st.rip = st.gpr[R_RCX];
	st.rflags = (st.gpr[R_R11] & 0x3c7fd7) | 2;
	exec_user_segments(&st);
	slow_syscall(p, &st);
}

static void print_stats(struct xproc *p)
{
	json_object *o = json_object_new_object(), *by = json_object_new_object(),
		    *nosys = json_object_new_object();
	for (int i = 0; i < 512; i++) {
		char num[32];
		const char *n = syscall_name((uint64_t)i);
		snprintf(num, sizeof(num), "%d", i);
		if (p->per_nr[i])
			json_object_object_add(by, n ? n : num,
					       json_object_new_int64((int64_t)p->per_nr[i]));
		if (p->enosys[i])
			json_object_object_add(nosys, n ? n : num,
					       json_object_new_int64((int64_t)p->enosys[i]));
	}
	json_object_object_add(o, "engine", json_object_new_string(p->ops->name));
	json_object_object_add(o, "syscalls", json_object_new_int64((int64_t)p->ncalls));
	json_object_object_add(o, "by_name", by);
	json_object_object_add(o, "enosys", nosys);
	json_object_object_add(o, "faults", json_object_new_int64((int64_t)p->nfaults));
	json_object_object_add(o, "ring3_syscall_faults",
			       json_object_new_int64((int64_t)p->pvm_syscalls));
	json_object_object_add(o, "ring_calls", json_object_new_int64((int64_t)p->ring.calls));
	json_object_object_add(o, "exit_status", json_object_new_int(p->status));
	fprintf(stderr, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* Another thread removed or narrowed a mapping: load the state back, which
 * flushes this vCPU's TLB (a pending soft-engine call flushes on its return). */
static int catch_up(struct xproc *p, struct vcpu_exit *ex)
{
	exec_self->flush_seen = p->flush_gen;
	if (ex->reason == EXIT_SYSCALL) {
		ex->sys.flush = true;
		return 0;
	}
	static _Thread_local struct cpu_state st;
	return exec_get_state(p, &st) || exec_set_state(p, &st);
}

void exec_kick(struct xproc *p, struct xthread *t, bool interrupt)
{
	t->kicks++;
	if (interrupt)
		ring_kick(p, t);
	p->ops->vcpu_kick(t->vcpu);
	if (interrupt)
		pthread_kill(t->host, X_KICK_SIGNAL);
}

/* This thread's call removed or narrowed a mapping: every other vCPU leaves
 * guest code and flushes before it goes on (catch_up). */
static void shoot_down(struct xproc *p)
{
	exec_self->flush_seen = ++p->flush_gen;
	for (int i = 0; i < X_MAX_THREADS; i++)
		if (p->thread[i].live && &p->thread[i] != exec_self)
			exec_kick(p, &p->thread[i], false);
}

int exec_loop(struct xproc *p)
{
	struct xthread *t = exec_self;
	static _Thread_local struct vcpu_exit ex;
	memset(&ex, 0, sizeof(ex));
	int rc = 0;
	while (!p->exited && t->live && !rc) {
		if (t->flush_seen != p->flush_gen && catch_up(p, &ex)) {
			rc = XEXIT_HOST;
			break;
		}
		exec_unlock(p);
		__atomic_add_fetch(&p->ring.in_guest, 1, __ATOMIC_RELAXED);
		int r = p->ops->vcpu_run(t->vcpu, &ex);
		__atomic_sub_fetch(&p->ring.in_guest, 1, __ATOMIC_RELAXED);
		exec_lock(p);
		if (r < 0) {
			fprintf(stderr, "popek exec: the engine failed to run the vCPU\n");
			rc = XEXIT_HOST;
			break;
		}
		if (!t->live || p->exited)
			break; /* ended meanwhile (execve in another thread, exit_group) */
		if (ex.reason != EXIT_KICKED)
			t->in_stub = false;
		switch (ex.reason) {
		case EXIT_SYSCALL: {
			struct xsys s = {ex.sys.nr, {0}};
			memcpy(s.a, ex.sys.arg, sizeof(s.a));
			t->state_set = false;
			ex.sys.ret = (uint64_t)exec_syscall(p, &s);
			ex.sys.flush = p->mm.need_flush && !t->state_set;
			break;
		}
		case EXIT_IO:
			if (ex.io.port == PORT_SYSCALL && ex.io.write) {
				stub_syscall(p);
			} else if (ex.io.port == PORT_FAULT && ex.io.write && ex.io.has_regs) {
				fault(p, &ex);
			} else {
				fprintf(stderr, "popek exec: port 0x%x accessed from user mode\n",
					ex.io.port);
				rc = 70;
			}
			break; /* set_state flushed the TLB */
		case EXIT_KICKED:
			break;
		default:
			fprintf(stderr, "popek exec: %s: the vCPU stopped (%s) at rip 0x%llx: %s\n",
				p->opt->program, exit_reason_names[ex.reason],
				(unsigned long long)ex.fail.rip, ex.fail.why);
			rc = 70;
		}
		if (p->mm.need_flush)
			shoot_down(p);
		p->mm.need_flush = false;
		if (ex.reason != EXIT_SYSCALL) /* a call took its signals at its end */
			exec_signal_async(p);
		if (ex.reason == EXIT_KICKED && p->ring.on && !p->exited && t->live &&
		    exec_signal_wanted(p)) {
			static _Thread_local struct cpu_state st;
			if (!exec_get_state(p, &st) && ring_in_page(st.rip))
				ring_rekick(t);
		}
	}
	if (rc && !p->exited)
		exec_exit(p, rc);
	return p->status;
}

_Noreturn void exec_end(struct xproc *p)
{
	if (p->opt->stats && !p->forked)
		print_stats(p);
	fflush(NULL);
	if (p->forked && p->term_sig) {
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		signal(p->term_sig, SIG_DFL);
		raise(p->term_sig);
	}
	_exit(p->status);
}

int exec_thread_vcpu(struct xproc *p, struct xthread *t, const struct cpu_state *from)
{
	if (!t->vcpu && p->ops->vcpu_create(p->vm, t->index, &t->vcpu) < 0)
		return -EAGAIN;
	if (thread_pages(p, t))
		return -ENOMEM;
	static _Thread_local struct cpu_state st;
	st = *from;
	thread_tr(t, &st);
	ring_thread(p, t, &st);
	return p->ops->set_state(t->vcpu, &st) ? -EIO : 0;
}

int exec_image(struct xproc *p, const char *path, char **argv, const char **envp, char *err,
	       size_t errlen)
{
	struct xload ld;
	uint64_t rsp;
	if (fs_resolve(p, AT_FDCWD, path, p->exe, sizeof(p->exe))) {
		snprintf(err, errlen, "%s: bad path", path);
		return XEXIT_IMAGE;
	}
	if (exec_load(p, p->exe, &ld, false, err, errlen))
		return XEXIT_IMAGE;
	if (build_kernel(p) || exec_stack(p, &ld, argv, envp, &rsp)) {
		snprintf(err, errlen, "out of guest memory or arguments too long (--mem)");
		return XEXIT_HOST;
	}
	static _Thread_local struct cpu_state st;
	initial_state(p, &st, ld.entry, rsp);
	if (exec_set_state(p, &st)) {
		snprintf(err, errlen, "the engine refused the initial CPU state");
		return XEXIT_HOST;
	}
	return 0;
}

int exec_respawn(struct xproc *p, const struct cpu_state *st)
{
	/* The parent's engine objects are not this process's to use or free
	 * (a KVM VM belongs to the process that made it): left behind. */
	char err[256];
	p->parent_vm = p->vm;
	p->vm = NULL;
	exec_single(p);
	ring_forked(p);
	for (int i = 0; i < X_MAX_THREADS; i++) {
		p->parent_vcpu[i] = p->thread[i].vcpu;
		p->thread[i].vcpu = NULL;
	}
	if (create_vm(p, err, sizeof(err))) {
		fprintf(stderr, "popek exec: fork: %s\n", err);
		return -EAGAIN;
	}
	return exec_set_state(p, st) ? -EIO : 0;
}

/* The stack of release_task: it runs once, after popek's last call. */
static _Alignas(16) char release_stack[64 << 10];

/* Holds the VM until popek has exited, then exits, and the kernel releases
 * the VM and its memory. Raw calls only: the task shares popek's memory and
 * thread pointer, so its libc state is popek's. */
__attribute__((no_sanitize("address"), no_sanitize("thread"))) static int release_task(void *arg)
{
	const int *gone = arg; /* gone[0] reads EOF when popek has exited */
	char c;
	for (int fd = 0; fd < 3; fd++) /* popek's stdio is the user's */
		syscall(SYS_close, fd);
	syscall(SYS_close, gone[1]);
	while (syscall(SYS_read, gone[0], &c, 1) != 0)
		; /* a signal, or a byte nobody writes */
	return 0;
}

/* Tearing the VM down after popek has exited, so that the exit status (and
 * the end of popek's output) comes as soon as the program is done: on this
 * host KVM takes about 15 ms to destroy a VM, and the kernel's release of the
 * RAM comes on top. A task sharing popek's memory (CLONE_VM) and holding a
 * copy of its descriptors outlives it: popek's own exit then frees neither,
 * and the task's does, right after. Everything the user sees is done first
 * (output flushed, the program's files closed); the task closes its copy of
 * stdin/stdout/stderr, so a reader of popek's output sees its end when popek
 * exits. false if there is no VM or no task could be made: the caller tears
 * down itself. */
static bool release_later(struct xproc *p)
{
	static int gone[2];
	/* TSan's clone() interceptor cannot run a CLONE_VM task (it crashed
	 * at address 0 after popek's exit): its builds tear down in popek */
	if (SANITIZE_THREAD || !p->vm || pipe2(gone, O_CLOEXEC))
		return false;
	fflush(NULL);
	pid_t t = clone(release_task, release_stack + sizeof(release_stack), CLONE_VM, gone);
	close(gone[0]);
	if (t < 0) {
		close(gone[1]);
		return false;
	}
	return true; /* gone[1] stays open until popek exits */
}

static void kick_handler(int sig)
{
	(void)sig; /* only here to make a blocking host call return EINTR */
}

int exec_main(const struct exec_options *opt)
{
	static struct xproc proc; /* large: the fd table and counters */
	struct xproc *p = &proc;
	memset(p, 0, sizeof(*p));
	p->opt = opt;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->gone, NULL);
	exec_self = &p->thread[0];
	*exec_self = (struct xthread){.tid = getpid(), .host = pthread_self(), .live = true};
	/* the kick that ends a host call a thread blocks in, for a signal */
	struct sigaction kick = {.sa_handler = kick_handler}; /* no SA_RESTART */
	sigemptyset(&kick.sa_mask);
	sigaction(X_KICK_SIGNAL, &kick, NULL);
	sigset_t unblock;
	sigemptyset(&unblock);
	sigaddset(&unblock, X_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
	p->nlive = 1;
	p->root_fd = -1;
	p->vfork_fd = -1;
	char err[512] = "";
	int rc = XEXIT_HOST;
	signal(SIGPIPE, SIG_IGN); /* a write to a closed pipe is the program's EPIPE or SIGPIPE */
	if ((rc = exec_policy_load(p, err, sizeof(err))))
		goto out;
	rc = XEXIT_HOST;
	if (fs_init(p, err, sizeof(err)) || mm_init(&p->mm, opt->mem, err, sizeof(err)))
		goto out;
	if ((rc = create_vm(p, err, sizeof(err))))
		goto out;
	if ((rc = exec_image(p, opt->program, opt->argv, opt->env, err, sizeof(err))))
		goto out;
	exec_lock(p);
	rc = exec_loop(p);
	exec_self->parked = true; /* for execve in another thread: this one is stopped */
	pthread_cond_broadcast(&p->gone);
	/* The first thread exited and others run: the last of them ends popek. */
	while (!p->exited)
		pthread_cond_wait(&p->gone, &p->lock);
	if (exec_others(p))
		exec_end(p); /* threads still run: they end with popek */
	exec_unlock(p);
	if (opt->stats && !p->forked)
		print_stats(p);
out:
	if (*err)
		fprintf(stderr, "popek exec: %s\n", err);
	fs_free(p);
	if (p->policy && p->policy->audit_fd >= 0)
		close(p->policy->audit_fd);
	policy_free(p->policy);
	if (!release_later(p)) {
		ring_stop(p);
		for (int i = 0; i < X_MAX_THREADS; i++)
			if (p->thread[i].vcpu)
				p->ops->vcpu_destroy(p->thread[i].vcpu);
		if (p->vm)
			p->ops->vm_destroy(p->vm);
		mm_free(&p->mm);
	}
	if (p->forked && p->term_sig) {
		/* a forked child dies of the signal, so its parent's wait4 sees it */
		fflush(NULL);
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		signal(p->term_sig, SIG_DFL);
		raise(p->term_sig);
	}
	return rc;
}
