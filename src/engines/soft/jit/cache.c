/* The translation cache: one W^X code buffer per vCPU, two views of one
 * memfd (written through a read-write mapping, run through a read-execute
 * one, so no page is ever writable and executable), filled in order and
 * flushed whole when it or the table of translations is full. Made when the
 * vCPU is, before the jail, so translating needs no system call. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engines/soft/jit/jit.h"
#include "engines/soft/soft.h"

int jit_create(struct soft_cpu *c, unsigned after)
{
	struct jit *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	int fd = memfd_create("popek-jit", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, JIT_CODE_SIZE) < 0)
		goto fail;
	j->rw = mmap(NULL, JIT_CODE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	j->rx = mmap(NULL, JIT_CODE_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	if (j->rw == MAP_FAILED || j->rx == MAP_FAILED)
		goto fail;
	close(fd);
	j->after = after;
	c->jit = j;
	return 0;
fail:;
	int err = -errno;
	if (j->rw && j->rw != MAP_FAILED)
		munmap(j->rw, JIT_CODE_SIZE);
	if (j->rx && j->rx != MAP_FAILED)
		munmap(j->rx, JIT_CODE_SIZE);
	if (fd >= 0)
		close(fd);
	free(j);
	return err;
}

void jit_destroy(struct soft_cpu *c)
{
	struct jit *j = c->jit;
	if (!j)
		return;
	munmap(j->rw, JIT_CODE_SIZE);
	munmap(j->rx, JIT_CODE_SIZE);
	free(j);
	c->jit = NULL;
}

/* Every block still entering a translation gets its interpreter handler
 * back (blocks decoded again since then already have theirs) and counts its
 * runs again, so that what is still hot is translated again; nothing may
 * jump into the buffer any more: no block is a link target, the
 * indirect-branch table is empty and the last exit is not linked. */
void jit_flush(struct soft_cpu *c)
{
	struct jit *j = c->jit;
	for (int i = 0; i < j->nentries; i++) {
		struct jit_entry *t = &j->entry[i];
		if ((void *)t->b->insn[0].fn == t->code) {
			t->b->insn[0].fn = t->orig;
			t->b->runs = 0; /* still hot, it is translated again */
		}
		if (t->b->jit_code == t->body)
			t->b->jit_code = NULL;
	}
	memset(j->ind, 0, sizeof(j->ind));
	j->nlinks = 0;
	c->jit_exit = 0;
	j->nentries = 0;
	j->used = 0;
	counter_add(&j->stat_flushes, 1);
}
