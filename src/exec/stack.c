/* The initial stack as Linux's ABI lays it out: argc, argv[], NULL, envp[],
 * NULL, auxv pairs ending in AT_NULL, then the strings and AT_RANDOM's bytes
 * above them. */
#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "exec/exec.h"

#define MAX_STRINGS 4096

/* Push bytes below *sp; their guest address. */
static int push(struct mm *mm, uint64_t *sp, const void *data, size_t len)
{
	if (len > X_STACK_SIZE / 2 || *sp - (X_STACK_TOP - X_STACK_SIZE) < len)
		return -E2BIG;
	*sp -= len;
	return mm_write(mm, *sp, data, len);
}

static size_t count(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

int exec_stack(struct xproc *p, const struct xload *ld, char **argv, const char **envp,
	       uint64_t *rsp)
{
	struct mm *mm = &p->mm;
	int rc = mm_map_anon(mm, X_STACK_TOP - X_STACK_SIZE, X_STACK_SIZE, PROT_READ | PROT_WRITE);
	if (rc)
		return rc;
	size_t argc = count(argv), envc = count((char *const *)envp);
	if (argc + envc > MAX_STRINGS)
		return -E2BIG;
	uint64_t sp = X_STACK_TOP, addr[MAX_STRINGS];
	uint8_t rnd[16];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	if ((rc = push(mm, &sp, p->exe, strlen(p->exe) + 1)))
		return rc;
	uint64_t execfn = sp;
	for (size_t i = 0; i < argc + envc; i++) {
		const char *s = i < argc ? argv[i] : envp[i - argc];
		if ((rc = push(mm, &sp, s, strlen(s) + 1)))
			return rc;
		addr[i] = sp;
	}
	if ((rc = push(mm, &sp, "x86_64", 7)) || (rc = push(mm, &sp, rnd, sizeof(rnd))))
		return rc;
	uint64_t platform = sp + sizeof(rnd), random = sp;
	unsigned a, b, c, d = 0;
	__get_cpuid(1, &a, &b, &c, &d);
	const uint64_t aux[][2] = {
	    {AT_PHDR, ld->phdr},
	    {AT_PHENT, sizeof(Elf64_Phdr)},
	    {AT_PHNUM, ld->phnum},
	    {AT_PAGESZ, XPAGE},
	    {AT_BASE, ld->base},
	    {AT_FLAGS, 0},
	    {AT_ENTRY, ld->prog_entry},
	    {AT_UID, getuid()},
	    {AT_EUID, geteuid()},
	    {AT_GID, getgid()},
	    {AT_EGID, getegid()},
	    {AT_SECURE, 0},
	    {AT_HWCAP, d},
	    {AT_CLKTCK, 100},
	    {AT_PLATFORM, platform},
	    {AT_RANDOM, random},
	    {AT_EXECFN, execfn},
	    {AT_NULL, 0},
	};
	/* argc + argv + NULL + envp + NULL + auxv, ending 16-byte aligned */
	size_t words = 1 + argc + 1 + envc + 1 + 2 * (sizeof(aux) / sizeof(aux[0]));
	sp = (sp - words * 8) & ~15ull;
	uint64_t w = sp;
	uint64_t v = argc;
	rc = mm_write(mm, w, &v, 8);
	w += 8;
	for (size_t i = 0; i <= argc + envc + 1 && !rc; i++, w += 8) {
		/* argv[0..argc) NULL envp[..] NULL */
		if (i < argc)
			v = addr[i];
		else if (i == argc)
			v = 0;
		else if (i <= argc + envc)
			v = addr[i - 1];
		else
			v = 0;
		rc = mm_write(mm, w, &v, 8);
	}
	if (!rc)
		rc = mm_write(mm, w, aux, sizeof(aux));
	*rsp = sp;
	return rc;
}
