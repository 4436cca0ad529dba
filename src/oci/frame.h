/* The agent protocol: popek-oci and the guest agent exchange text lines over
 * the VM's virtio console (docs/oci.md). A line is
 *     @PK TYPE ID A B C DATA\n
 * TYPE from frame_types, ID a stream (process) number, A B C signed decimal
 * integers, DATA the payload in hex or "-" when empty. Anything else on the
 * console (kernel messages) is not a frame and is skipped. The same module is
 * compiled into the agent, so both ends parse alike. */
#ifndef POPEK_OCI_FRAME_H
#define POPEK_OCI_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_DATA_MAX 2048 /* payload bytes per frame */
#define FRAME_LINE_MAX (64 + 2 * FRAME_DATA_MAX)
/* A pod's sandbox VM has room for this many further containers: slot k
 * (1..POD_SLOTS) is the disk pair vd[2k], vd[2k+1] after the sandbox's own
 * vda and vdb (popek takes 8 disks). Slot 0 is the VM's own container. */
#define POD_SLOTS 3

enum frame_type {
	/* host → agent */
	FRAME_MOUNT,  /* mount slot A's disks (they may have been swapped since BOOTED);
		       * B = 1: slot 0's root is the virtio-fs share, its binds on vda */
	FRAME_HOST,   /* DATA hostname */
	FRAME_BIND,   /* A = index on the binds disk, B = 1 read-only, C = slot, DATA = dest */
	FRAME_TMPFS,  /* C = slot, DATA = destination */
	FRAME_ARG,    /* DATA = the next argv string of process ID */
	FRAME_ENV,    /* DATA = NAME=VALUE */
	FRAME_CWD,    /* DATA = working directory */
	FRAME_USER,   /* A = uid, B = gid */
	FRAME_GROUP,  /* A = a supplementary gid */
	FRAME_RLIM,   /* A = resource, B = soft, C = hard (-1 = unlimited) */
	FRAME_TTY,    /* A = rows, B = columns: the process gets a terminal */
	FRAME_START,  /* spawn process ID in slot A's root with what came before */
	FRAME_IN,     /* stdin bytes; empty DATA = end of input */
	FRAME_SIG,    /* A = signal; B = 1 for the whole process group */
	FRAME_WINCH,  /* A = rows, B = columns */
	FRAME_UMOUNT, /* detach slot A's root: its container is gone */
	FRAME_NET,    /* A = prefix length, B = MTU, DATA = "IP GATEWAY MAC" for eth0 */
	/* agent → host */
	FRAME_BOOTED,  /* the agent runs, the disks untouched: a VM to snapshot */
	FRAME_READY,   /* slot A's root is mounted */
	FRAME_STARTED, /* A = guest pid */
	FRAME_OUT,     /* A = 1 stdout, 2 stderr; DATA = bytes */
	FRAME_EXIT,    /* A = status: exit code, or 128 + signal */
	FRAME_ERROR,   /* DATA = message (setup or spawn failed) */
	FRAME_NTYPES
};

struct frame {
	enum frame_type type;
	uint32_t id;
	int64_t a, b, c;
	size_t len;
	uint8_t data[FRAME_DATA_MAX + 1]; /* NUL after len, for string payloads */
};

enum frame_parse_result { FRAME_OK, FRAME_NOISE, FRAME_BAD };

/* Parse one line (without its newline). FRAME_NOISE: not a frame at all;
 * FRAME_BAD: starts like one but is malformed (the caller reports it). */
enum frame_parse_result frame_parse(const char *line, size_t len, struct frame *f);
/* Write one frame line into out (FRAME_LINE_MAX bytes); returns its length.
 * len must not exceed FRAME_DATA_MAX. */
size_t frame_format(char *out, enum frame_type type, uint32_t id, int64_t a, int64_t b, int64_t c,
		    const void *data, size_t len);
const char *frame_type_name(enum frame_type type);

/* Splits a byte stream into lines; a line longer than FRAME_LINE_MAX is
 * dropped whole (it cannot be a frame). */
struct line_reader {
	char buf[FRAME_LINE_MAX + 1];
	size_t len;
	bool overlong;
};
/* Feed bytes; calls fn(ctx, line, len) per complete line. Returns the first
 * non-zero value fn returned (and stops), else 0. */
int line_reader_feed(struct line_reader *r, const void *bytes, size_t n,
		     int (*fn)(void *ctx, const char *line, size_t len), void *ctx);

#endif
