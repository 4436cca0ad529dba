/* The program's ELF and its interpreter, loaded into the address space the
 * way Linux's binfmt_elf does: PT_LOAD segments at their addresses (ET_DYN
 * at a base popek picks), the interpreter named by PT_INTERP found inside
 * --root. Every header field comes from an untrusted file and is checked. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/exec.h"

#define MAX_PHNUM 64
#define MAX_IMAGE (1ull << 31)

static int bad(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -ENOEXEC;
}

static const Elf64_Phdr *phdr(const uint8_t *img, const struct xelf *e, int i)
{
	return (const Elf64_Phdr *)(img + e->phoff + (uint64_t)i * sizeof(Elf64_Phdr));
}

int xelf_parse(const uint8_t *img, size_t len, struct xelf *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (len < sizeof(Elf64_Ehdr) || memcmp(img, ELFMAG, SELFMAG))
		return bad(err, errlen, "not an ELF file");
	Elf64_Ehdr eh;
	memcpy(&eh, img, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64)
		return bad(err, errlen, "not an x86-64 ELF64 program");
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return bad(err, errlen, "not an executable (ELF type is neither EXEC nor DYN)");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > MAX_PHNUM ||
	    eh.e_phoff > len || (len - eh.e_phoff) / sizeof(Elf64_Phdr) < eh.e_phnum ||
	    (eh.e_phoff & 7))
		return bad(err, errlen, "program headers are malformed or outside the file");
	out->type = eh.e_type;
	out->entry = eh.e_entry;
	out->phoff = eh.e_phoff;
	out->phnum = eh.e_phnum;
	out->lo = UINT64_MAX;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, phdr(img, out, i), sizeof(ph));
		if (ph.p_type == PT_LOAD) {
			if (ph.p_filesz > ph.p_memsz || ph.p_offset > len ||
			    ph.p_filesz > len - ph.p_offset || ph.p_vaddr >= X_USER_END ||
			    ph.p_memsz > X_USER_END - ph.p_vaddr ||
			    (ph.p_vaddr & (XPAGE - 1)) != (ph.p_offset & (XPAGE - 1)))
				return bad(err, errlen,
					   "a PT_LOAD segment is outside the file or "
					   "the user address space");
			if (!ph.p_memsz)
				continue; /* maps nothing */
			if (XPAGE_DOWN(ph.p_vaddr) < out->lo)
				out->lo = XPAGE_DOWN(ph.p_vaddr);
			if (XPAGE_UP(ph.p_vaddr + ph.p_memsz) > out->hi)
				out->hi = XPAGE_UP(ph.p_vaddr + ph.p_memsz);
		} else if (ph.p_type == PT_INTERP) {
			if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset ||
			    ph.p_filesz < 2 || ph.p_filesz > sizeof(out->interp) ||
			    img[ph.p_offset + ph.p_filesz - 1])
				return bad(err, errlen, "PT_INTERP is malformed");
			memcpy(out->interp, img + ph.p_offset, ph.p_filesz);
			out->has_interp = true;
		} else if (ph.p_type == PT_PHDR) {
			out->phdr_va = ph.p_vaddr;
		}
	}
	if (out->lo == UINT64_MAX)
		return bad(err, errlen, "no PT_LOAD segment with memory");
	return 0;
}

/* The file mapped read-only for parsing; *len its size. */
static const uint8_t *map_file(int fd, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		return NULL;
	}
	if (st.st_size < (off_t)sizeof(Elf64_Ehdr) || (uint64_t)st.st_size > MAX_IMAGE) {
		snprintf(err, errlen, "file size %lld is not a program's", (long long)st.st_size);
		return NULL;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "cannot map it: %s", strerror(errno));
		return NULL;
	}
	*len = (size_t)st.st_size;
	return m;
}

static int prot_of(uint32_t flags)
{
	return ((flags & PF_R) ? PROT_READ : 0) | ((flags & PF_W) ? PROT_WRITE : 0) |
	       ((flags & PF_X) ? PROT_EXEC : 0);
}

/* Map one image at bias; pages two segments share keep the first's frame. */
static int map_image(struct mm *mm, const uint8_t *img, const struct xelf *e, uint64_t bias)
{
	for (int i = 0; i < e->phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, phdr(img, e, i), sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		uint64_t start = XPAGE_DOWN(ph.p_vaddr + bias);
		uint64_t end = XPAGE_UP(ph.p_vaddr + bias + ph.p_memsz);
		for (uint64_t a = start; a < end; a += XPAGE)
			if (mm_range_free(mm, a, XPAGE) && mm_map_anon(mm, a, XPAGE, PROT_READ))
				return -ENOMEM;
		if (mm_poke(mm, ph.p_vaddr + bias, img + ph.p_offset, ph.p_filesz))
			return -EFAULT;
		mm_protect(mm, start, end - start, prot_of(ph.p_flags));
	}
	return 0;
}

static uint64_t phdr_addr(const uint8_t *img, const struct xelf *e, uint64_t bias)
{
	if (e->phdr_va)
		return e->phdr_va + bias;
	for (int i = 0; i < e->phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, phdr(img, e, i), sizeof(ph));
		if (ph.p_type == PT_LOAD && e->phoff >= ph.p_offset &&
		    e->phoff - ph.p_offset < ph.p_filesz)
			return ph.p_vaddr + (e->phoff - ph.p_offset) + bias;
	}
	return 0;
}

/* Open, parse and (unless dry) map one file; bias chosen for ET_DYN. */
static int load_one(struct xproc *p, const char *path, bool main, bool dry, struct xelf *e,
		    uint64_t *bias, uint64_t *phdr_va, char *err, size_t errlen)
{
	int fd = fs_open(p, -100, path, O_RDONLY | O_CLOEXEC, 0, false);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-fd));
		return fd == -ENOENT ? -ENOENT : -ENOEXEC;
	}
	char why[200] = "";
	size_t len = 0;
	const uint8_t *img = map_file(fd, &len, why, sizeof(why));
	close(fd);
	int rc = img ? xelf_parse(img, len, e, why, sizeof(why)) : -ENOEXEC;
	if (!rc && !dry) {
		if (e->type == ET_EXEC) {
			*bias = 0;
		} else if (main) {
			*bias = X_PIE_BASE - e->lo;
		} else {
			*bias = p->mm.mmap_next - e->lo;
			p->mm.mmap_next += (e->hi - e->lo) + (1ull << 20);
		}
		rc = map_image(&p->mm, img, e, *bias);
		if (rc)
			snprintf(why, sizeof(why), "out of guest memory (raise --mem)");
		*phdr_va = phdr_addr(img, e, *bias);
	}
	if (img)
		munmap((void *)img, len);
	if (rc)
		snprintf(err, errlen, "%s: %s", path, why);
	return rc;
}

int exec_load(struct xproc *p, const char *path, struct xload *out, bool dry, char *err,
	      size_t errlen)
{
	struct xelf e, ie;
	uint64_t bias = 0, ibias = 0, phdr_va = 0, iphdr;
	int rc = load_one(p, path, true, dry, &e, &bias, &phdr_va, err, errlen);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	out->prog_entry = out->entry = e.entry + bias;
	out->phdr = phdr_va;
	out->phnum = e.phnum;
	p->mm.brk_start = p->mm.brk = e.hi + bias + XPAGE; /* a guard page, as Linux's randomness */
	if (e.has_interp) {
		rc = load_one(p, e.interp, false, dry, &ie, &ibias, &iphdr, err, errlen);
		if (rc)
			return rc;
		out->entry = ie.entry + ibias;
		out->base = ie.lo + ibias;
	}
	return 0;
}
