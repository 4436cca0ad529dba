/* popek exec: one Linux x86-64 program in a VM with no guest kernel.
 *
 * The program runs at CPL3 in the VM; popek is its kernel. It keeps the
 * program's address space (mm.c: guest page tables it writes itself), loads
 * the ELF (loader.c, stack.c), and serves every system call (syscall.c and
 * one sys_*.c per family) against the host, inside --root (fs.c). The design
 * and the call path per engine: docs/exec.md. */
#ifndef POPEK_EXEC_H
#define POPEK_EXEC_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <sys/uio.h>

#include "engines/engine.h"
#include "machine/memory.h"
#include "policy/policy.h"

#define XPAGE	      4096ull
#define XPAGE_DOWN(a) ((a) & ~(XPAGE - 1))
#define XPAGE_UP(a)   (((a) + XPAGE - 1) & ~(XPAGE - 1))

/* Guest-virtual layout (user half only; the kernel page sits at the top).
 * The program's addresses end where popek's call ring begins (ring.c): a few
 * pages below Linux's TASK_SIZE, out of the program's reach. */
#define X_USER_END   0x00007fffffff0000ull
#define X_RING_VA    X_USER_END
#define X_STACK_TOP  0x00007ffffff00000ull
#define X_STACK_SIZE (8ull << 20)
#define X_MMAP_BASE  0x00007f0000000000ull
#define X_PIE_BASE   0x0000555555554000ull
#define X_KERNEL_VA  0xffff800000000000ull

/* Threads alive at once, a vCPU each: the soft engine's most (kvm allows more). */
#define X_MAX_THREADS 64
#define X_MAX_FDS     1024
#define X_MAX_BINDS   16
#define X_NSIG	      65
/* The host signal that ends a host call for a guest signal (kvm's kick is SIGUSR1) */
#define X_KICK_SIGNAL SIGUSR2

/* Engine-independent exit codes of popek exec besides the program's own. */
enum { XEXIT_USAGE = 64, XEXIT_IMAGE = 65, XEXIT_ENGINE = 69, XEXIT_HOST = 71 };

struct exec_options {
	const char *engine; /* kvm, soft or auto */
	const char *root;   /* default "/" */
	struct {
		const char *host, *guest;
		bool rw;
	} bind[X_MAX_BINDS];
	int nbinds;
	uint64_t mem;
	const char **env; /* NULL-terminated, the program's whole environment */
	const char *cwd;
	bool strace, stats;
	const char *policy, *audit; /* --policy FILE, --audit FILE, or NULL */
	const char *program;
	char **argv; /* NULL-terminated */
};

/* A guest page protection, as PROT_* bits. */
struct mm {
	struct guest_mem mem;
	uint64_t pml4;	     /* guest-physical */
	uint64_t next_pa;    /* bump allocator for never-used frames: up for data, */
	uint64_t next_table; /* down for page tables (mm.c, frame_alloc) */
	uint64_t *free_pa;   /* freed frames, reused first */
	size_t nfree, cap_free;
	uint64_t brk_start, brk;
	uint64_t mmap_next; /* next address for mmap(NULL): grows up */
	bool need_flush;    /* a mapping was removed or narrowed */
};

struct xfd {
	int host; /* -1: free */
	bool cloexec;
	char *dents; /* a /proc/self listing: its dirent64 records (procfs.c), or NULL */
	size_t ndents, dents_at;
	char *path; /* guest path it was opened by, for fchdir; may be NULL */
};

struct xsigaction {
	uint64_t handler, flags, restorer, mask;
};

/* Signals sent and not yet taken, with each one's si_code. */
struct xpending {
	uint64_t set;
	int8_t code[X_NSIG];
};

/* One thread of the program: a vCPU of the VM run by a host thread of its
 * own (run.c). */
struct xthread {
	struct engine_vcpu *vcpu;
	int index; /* the vCPU's; 0 is the thread exec started */
	pid_t tid; /* its host thread's tid; the first thread's is the pid */
	pthread_t host;
	pthread_cond_t wake; /* a parked host thread's next guest thread is ready */
	bool live;
	bool parked;	/* its guest thread exited; the host thread waits for the slot's next */
	bool state_set; /* a call loaded a user state itself (its result in RAX) */
	struct cpu_state *slow_user; /* the caller's user state on the slow call path */
	uint64_t *kframe, *iframe;   /* or the fault stub's saved registers and CPU frame */
	uint8_t *kstack;	     /* host view of its exception stack page */
	uint64_t clear_tid;	     /* CLONE_CHILD_CLEARTID, set_tid_address */
	uint64_t flush_seen;	     /* the xproc's flush_gen its TLB has seen */
	uint64_t sigmask;
	/* rt_sigsuspend's caller's mask, for the first handler's frame to restore */
	uint64_t saved_mask;
	bool mask_saved;
	uint64_t wait_set;	 /* what rt_sigtimedwait waits for: taken, not delivered */
	struct xpending pending; /* signals sent to this thread */
	/* it is to take the process's pending signals (Linux's TIF_SIGPENDING) */
	bool notified;
	uint64_t ss_sp, ss_size; /* sigaltstack; ss_size 0: none */
	uint32_t ss_flags;	 /* SS_AUTODISARM */
	/* kicks by other threads: a host call's EINTR was theirs, not the program's */
	uint64_t kicks;
	bool in_stub;	    /* its vCPU goes on in a fault stub whose report was served */
	uint32_t ring_busy; /* the ring's server is serving its call (a futex word) */
	bool on_ring;	    /* the call in progress came by the ring: no vCPU state */
	bool rekick_armed;  /* rekick exists */
	timer_t rekick;	    /* kicks it again while a signal waits in the dispatcher */
};

/* The thread whose call popek is serving (each host thread runs one). */
extern _Thread_local struct xthread *exec_self;

struct xproc {
	const struct exec_options *opt;
	const struct engine_ops *ops;
	struct engine_vm *vm;
	struct engine_vm *parent_vm; /* a forked child's inherited, unusable engine */
	struct engine_vcpu *parent_vcpu[X_MAX_THREADS];
	bool fast_syscall; /* the engine exits on SYSCALL itself (soft) */
	struct {	   /* the call ring (ring.c), kvm only */
		bool on, started;
		bool quit;	   /* ring_stop: the server leaves */
		uint32_t sleeping; /* the server waits for a wake-up (a futex word) */
		int nslots;	   /* vCPU slots the server watches */
		int in_guest;	   /* vCPUs in vcpu_run: none, and the server yields */
		pthread_t server;
		uint64_t calls; /* served by the ring, for --stats */
	} ring;
	uint64_t pvm_syscalls; /* SYSCALLs that faulted in ring 3 (nested PVM) */
	/* One thread serves a call at a time: the lock is held but around the
	 * host calls that block (exec_unlock), so the process state needs no
	 * other lock. */
	pthread_mutex_t lock;
	pthread_cond_t gone; /* a thread ended */
	struct xthread thread[X_MAX_THREADS];
	int nlive;
	uint64_t flush_gen; /* a mapping went: every TLB older than this flushes */
	struct mm mm;
	struct policy *policy; /* --policy, or NULL */
	int root_fd;
	struct {
		int fd;
		char *guest; /* normalized, no trailing slash */
		bool rw;
	} bind[X_MAX_BINDS];
	int nbinds;
	char cwd[4096]; /* guest path, normalized */
	struct xfd fd[X_MAX_FDS];
	char exe[4096]; /* guest path of the program, for /proc/self/exe */
	unsigned umask;
	struct xsigaction sig[X_NSIG];
	struct xpending pending; /* process-directed signals no thread has taken */
	bool exited;
	int status;	 /* popek's exit code once exited */
	int term_sig;	 /* the signal that ended it, or 0 */
	bool forked;	 /* this popek is a fork of the first */
	int vfork_fd;	 /* a vfork child: closed at execve or exit, the parent waits for it */
	pid_t child[64]; /* children forked and not yet reaped, for kill */
	int nchild;
	/* --stats */
	uint64_t ncalls, nfaults;
	uint64_t per_nr[512], enosys[512];
};

/* mm.c: frames, page tables, the program's mappings. */
int mm_init(struct mm *mm, uint64_t mem, char *err, size_t errlen);
void mm_free(struct mm *mm);
/* Drop every mapping and frame (execve). */
void mm_reset(struct mm *mm);
/* Map [va, va+len) with fresh zero pages; replaces what was there. prot PROT_*. */
int mm_map_anon(struct mm *mm, uint64_t va, uint64_t len, int prot);
void mm_unmap(struct mm *mm, uint64_t va, uint64_t len);
int mm_protect(struct mm *mm, uint64_t va, uint64_t len, int prot);
/* Move the pages of [old, old+len) to new (mremap); new must be free. */
int mm_move(struct mm *mm, uint64_t old, uint64_t len, uint64_t new_va);
bool mm_range_free(struct mm *mm, uint64_t va, uint64_t len);
/* Map a supervisor-only page at kernel va (the one there, if any); returns
 * its host pointer. */
void *mm_map_kernel(struct mm *mm, uint64_t va, bool exec);
/* Map user page va (beyond the program's range) to frame pa, below the
 * frames mm hands out; 0 or -ENOMEM. */
int mm_map_fixed(struct mm *mm, uint64_t va, uint64_t pa, int prot);
/* Host memory behind guest-virtual [va, va+len) as iovecs (pages), checked
 * for user access and for write; returns the count or -EFAULT. */
int mm_iov(struct mm *mm, uint64_t va, uint64_t len, bool write, struct iovec *iov, int max);
/* A guest struct iovec array of cnt entries as host pieces (each entry cut
 * at 16 MiB, the whole at max pieces); the count or -EFAULT, -EINVAL. */
int mm_iovec(struct mm *mm, uint64_t vec, uint64_t cnt, bool write, struct iovec *iov, int max);
int mm_read(struct mm *mm, uint64_t va, void *dst, size_t len);
int mm_write(struct mm *mm, uint64_t va, const void *src, size_t len);
/* A NUL-terminated string of at most max bytes (with the NUL); -EFAULT,
 * -ENAMETOOLONG. */
int mm_read_str(struct mm *mm, uint64_t va, char *dst, size_t max);
/* Each run of mapped user pages with one protection, in address order. */
typedef void (*mm_range_fn)(void *ctx, uint64_t start, uint64_t end, int prot);
void mm_ranges(struct mm *mm, mm_range_fn fn, void *ctx);
/* Write to guest pages whatever their protection (loading code). */
int mm_poke(struct mm *mm, uint64_t va, const void *src, size_t len);

/* loader.c: the ELF and its interpreter into mm; fills the auxv facts. */
struct xload {
	uint64_t entry;	     /* where the first instruction is (interp or program) */
	uint64_t prog_entry; /* AT_ENTRY */
	uint64_t phdr, phnum, base;
};
/* dry: only check that path and its interpreter would load (execve's
 * errors must come before the old image is gone). */
int exec_load(struct xproc *p, const char *path, struct xload *out, bool dry, char *err,
	      size_t errlen);
/* Validate an ELF64 x86-64 image in memory (also the fuzz target). */
struct xelf {
	uint16_t type;
	uint64_t entry, phoff;
	uint16_t phnum;
	uint64_t lo, hi; /* page-aligned span of the PT_LOADs */
	char interp[256];
	bool has_interp;
	uint64_t phdr_va; /* PT_PHDR, or 0 */
};
int xelf_parse(const uint8_t *img, size_t len, struct xelf *out, char *err, size_t errlen);

/* stack.c: argv, envp, auxv on a new stack; returns the initial RSP. */
int exec_stack(struct xproc *p, const struct xload *ld, char **argv, const char **envp,
	       uint64_t *rsp);

/* fs.c: paths inside --root and the binds, descriptors. */
int fs_init(struct xproc *p, char *err, size_t errlen);
void fs_free(struct xproc *p);
/* Open guest path (relative to dirfd's path or the cwd) on the host:
 * openat2 with RESOLVE_IN_ROOT in its root or bind. Returns a host fd or
 * -errno. write: the path is to be changed, so it must lie in an rw bind. */
int fs_open(struct xproc *p, int dirfd, const char *path, int flags, unsigned mode, bool write);
/* The normalized guest path of path (relative to dirfd or the cwd). */
int fs_resolve(struct xproc *p, int dirfd, const char *path, char *g, size_t glen);
/* The guest path that path resolves to now, symlinks followed (inside the
 * root or its bind); for a path that does not exist, its parent's. */
int fs_real(struct xproc *p, int dirfd, const char *path, char *g, size_t glen);
/* The parent directory of path opened O_PATH, and its last component;
 * write: it is to be changed, so it must lie in an rw bind. */
int fs_parent(struct xproc *p, int dirfd, const char *path, char *name, size_t namelen, bool write);
/* Normalize guest path (relative to base) into out: no ., .., //. */
int fs_normalize(const char *base, const char *path, char *out, size_t len);
int fd_install(struct xproc *p, int host, bool cloexec, int min);
/* Both ends of a new pipe or socket pair, their guest numbers written to
 * va; 0 or -errno (nothing installed then). */
int fd_install_pair(struct xproc *p, const int h[2], bool cloexec, uint64_t va);
int fd_host(struct xproc *p, int fd);
int fd_close(struct xproc *p, int fd);

/* procfs.c: the program's own /proc/self (popek's is hidden). For a
 * normalized guest path under /proc/self, /proc/thread-self or /proc/PID:
 * 1 and the rest after it ("" for the directory itself), else 0. */
int proc_self(const char *g, const char **rest);
/* Open rest (maps, fd, exe...) with open flags (no writing): a host fd or
 * -errno. A directory is the host's, for fstat; its entries are not. */
int proc_open(struct xproc *p, const char *rest, int flags);
/* The program's /proc/self/fd as dirent64 records (malloc'ed). */
int proc_listing(struct xproc *p, char **buf, size_t *len);
/* The target of link rest (exe, cwd, fd/N) into out; its length or -errno. */
int proc_readlink(struct xproc *p, const char *rest, char *out, size_t len);

/* syscall.c: one call, dispatched by number. */
struct xsys {
	uint64_t nr, a[6];
};
int64_t exec_syscall(struct xproc *p, const struct xsys *s);
const char *syscall_name(uint64_t nr);
typedef int64_t (*sys_fn)(struct xproc *p, const struct xsys *s);
struct sys_entry {
	const char *name;
	sys_fn fn;
	/* per argument: i integer, p pointer, x hex, s a path (relative to the
	 * d argument before it, a directory fd, if any), f a socket family, a a
	 * socket address (its length the next argument), m a struct msghdr */
	const char *args;
};

/* The ring's calls, by number, as a bitmap for the dispatcher; and
 * whether call s may be served on the ring now (its descriptor's kind). */
void syscall_ring_map(uint64_t ok[8]);
bool syscall_on_ring(struct xproc *p, const struct xsys *s);

/* ring.c: system calls without an exit on kvm (docs/exec.md). */
/* Map the ring's pages; slow: the exit path's stub. 0 or -ENOMEM. */
int ring_build(struct xproc *p, uint64_t slow);
/* vCPU k's LSTAR: its entry into the dispatcher. */
uint64_t ring_entry(int k);
bool ring_in_page(uint64_t rip);
/* Thread t starts on its vCPU with state st: its slot is empty, its LSTAR set. */
void ring_thread(struct xproc *p, struct xthread *t, struct cpu_state *st);
/* t is kicked for a signal: its dispatcher leaves by the exit path. */
void ring_kick(struct xproc *p, struct xthread *t);
/* A call on the exit path that could have gone by the ring: the server is
 * started or woken for the next ones. */
void ring_wake(struct xproc *p, uint64_t nr);
/* On the exit path: true if the server already served this call (it
 * waits for the server to finish it), its result in *ret. */
bool ring_collect(struct xproc *p, int64_t *ret);
/* In a forked child: the parent's server is not here. */
void ring_forked(struct xproc *p);
/* Kick this thread again soon: a signal waits and its vCPU is in the ring. */
void ring_rekick(struct xthread *t);
/* Before a teardown in popek (the VM's memory goes): the server leaves. The
 * process lock must not be held. */
void ring_stop(struct xproc *p);

/* policy.c: the syscall class of --policy. */
int exec_policy_load(struct xproc *p, char *err, size_t errlen);
/* Match the call: true if a rule decided it must not run, its result in
 * *ret. Otherwise the call runs and exec_policy_done records it. */
struct xcheck {
	struct policy_access a;
	const struct policy_rule *r, *logged;
	char path[4][4096]; /* each path argument as written and as it resolves */
	const char *paths[4];
	uint8_t ip[16];
};
bool exec_policy_check(struct xproc *p, const struct xsys *s, const struct sys_entry *e,
		       struct xcheck *c, int64_t *ret);
void exec_policy_done(struct xproc *p, const struct xcheck *c, int64_t ret);
/* The families fill their slots of the table (sys_*.c). */
void sys_fs_table(struct sys_entry *t);
void sys_mem_table(struct sys_entry *t);
void sys_proc_table(struct sys_entry *t);

/* run.c: the program's CPU. Change the state outside the fast path: a call
 * that sets a state puts its own result into RAX. exec_user_state is the
 * user-mode state of the call in progress, on either call path. */
int exec_get_state(struct xproc *p, struct cpu_state *st);
int exec_user_state(struct xproc *p, struct cpu_state *st);
/* Flat 64-bit user CS and data segments; FS and GS bases kept. */
void exec_user_segments(struct cpu_state *st);
int exec_set_state(struct xproc *p, const struct cpu_state *st);
/* A CPU exception with a handler for sig: deliver it (sys_signal.c); false
 * if the default action applies. frame: RIP CS RFLAGS RSP SS. */
bool exec_signal_fault(struct xproc *p, struct cpu_state *st, int sig, uint64_t addr,
		       const uint64_t *frame);
/* The calling thread has a signal to take now, or it or the program ends:
 * a blocking call must not go on. */
bool exec_signal_wanted(struct xproc *p);
/* At the end of call s with result ret: take this thread's signals (a
 * handler frame each; an -EINTR call a SA_RESTART handler interrupted goes
 * again after it). Returns what RAX now holds. */
int64_t exec_signal_syscall(struct xproc *p, const struct xsys *s, int64_t ret);
/* Between calls (after a kick or a fault): take this thread's signals if
 * its vCPU is at a place a handler can start from. */
void exec_signal_async(struct xproc *p);
/* Before a host call that waits with a signal mask argument (ppoll,
 * epoll_pwait): block the kick, then false if a signal is to be taken
 * already; the call waits with *old, which ends the wait on a kick that came
 * in between. exec_wait_end puts the host mask back. */
bool exec_wait_begin(struct xproc *p, sigset_t *old);
void exec_wait_end(const sigset_t *old);
/* ppoll, pselect6, epoll_pwait: the guest's mask at va (size bytes, NULL:
 * none) for the call; restored at its end. 0 or -EINVAL, -EFAULT. */
int exec_call_mask(struct xproc *p, uint64_t va, uint64_t size);
/* A thread with the process's pending signals ended or blocked them:
 * another takes them. */
void exec_signal_retarget(struct xproc *p);
/* run.c: the user state an interrupted vCPU returns to, if it stopped in
 * program code or in a fault stub past its report; -1 elsewhere. */
int exec_async_state(struct xproc *p, struct cpu_state *st);
/* Make thread t leave program code soon (kicks++); interrupt: also end a
 * host call it blocks in (EINTR). */
void exec_kick(struct xproc *p, struct xthread *t, bool interrupt);
void sys_signal_table(struct sys_entry *t);
/* End the program with popek exit code status, or killed by signal sig. */
void exec_exit(struct xproc *p, int status);
void exec_kill(struct xproc *p, int sig);
/* Load a new program image into the (empty) address space and point the
 * vCPU at it; 0 or a popek exit code with err set. */
int exec_image(struct xproc *p, const char *path, char **argv, const char **envp, char *err,
	       size_t errlen);
/* In a forked child: a VM of its own, started at st. */
int exec_respawn(struct xproc *p, const struct cpu_state *st);
void sys_process_table(struct sys_entry *t);
void sys_net_table(struct sys_entry *t);
void sys_poll_table(struct sys_entry *t);
bool exec_is_child(struct xproc *p, pid_t pid);

/* Around a host call that may block: other threads' calls go on meanwhile.
 * Nothing of the process may be touched between the two. */
void exec_unlock(struct xproc *p);
void exec_lock(struct xproc *p);
/* clone with CLONE_VM|CLONE_THREAD: a new vCPU at the caller's state with
 * RSP stack and RAX 0, run by a new host thread; its tid or -errno. */
int64_t exec_thread(struct xproc *p, uint64_t flags, uint64_t stack, uint64_t ptid, uint64_t ctid,
		    uint64_t tls);
/* exit: this thread ends (the program too if it was the last one). */
void exec_thread_exit(struct xproc *p, int status);
/* Threads other than this one end with it: a fork's child. */
void exec_single(struct xproc *p);
/* execve: the other threads stop (each parks its host thread) before this
 * returns; false if the program ended meanwhile. */
bool exec_stop_others(struct xproc *p);
/* The threads still running besides this one. */
int exec_others(struct xproc *p);
/* run.c: this thread's vCPU until it or the program ends (the lock held);
 * the program's status. */
int exec_loop(struct xproc *p);
/* End popek now with the program's status, whatever other threads do. */
_Noreturn void exec_end(struct xproc *p);
/* Thread t's vCPU (made once per slot), its TSS, and the state from. */
int exec_thread_vcpu(struct xproc *p, struct xthread *t, const struct cpu_state *from);

int exec_main(const struct exec_options *opt);

#endif
