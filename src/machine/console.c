#include "machine/console.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

/* How soon to offer input again that the device had no room for. */
#define RETRY_NS (5 * 1000 * 1000)

struct console {
	int out_fd;
	bool own_out;
	pthread_mutex_t out_lock;
	/* Input, on the VM's loop as device work: none while the VM is paused. */
	struct loop_watch *in_w;  /* stdin; NULL when it cannot be polled (a file, /dev/null) */
	struct loop_timer *retry; /* the device was full, or stdin is read without polling */
	uint8_t buf[256];
	size_t len, off; /* buf[off..len) waits for the device */
	console_input_fn input;
	void *input_ctx;
	void (*quit)(void *ctx);
	void *quit_ctx;
	bool escape; /* the previous key was Ctrl-A */
};

#define ESCAPE_KEY 0x01 /* Ctrl-A, as in QEMU and screen */

/* The terminal as we found it; restored on every way out, including crashes. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_raw;

static void tty_restore(void)
{
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_raw = 0;
	}
}

static void tty_fatal_signal(int sig)
{
	tty_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void tty_make_raw(void)
{
	struct termios t;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return;
	t = saved_tty;
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR; /* our messages use \n; a guest's \r\n is unharmed */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
		return;
	tty_raw = 1;
	static bool hooked;
	if (!hooked) {
		hooked = true;
		atexit(tty_restore);
		const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
		for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			signal(fatal[i], tty_fatal_signal);
	}
}

static const char escape_help[] = "\npopek console: Ctrl-A x  quit the VM\n"
				  "               Ctrl-A h  this help\n"
				  "               Ctrl-A Ctrl-A  send Ctrl-A to the guest\n";

/* Interpret Ctrl-A sequences in place; returns the bytes left for the guest. */
static size_t filter_escapes(struct console *c, uint8_t *buf, size_t n)
{
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = buf[i];
		if (!c->escape && b == ESCAPE_KEY) {
			c->escape = true;
			continue;
		}
		if (c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				c->quit(c->quit_ctx);
				return out;
			}
			if (b == 'h' || b == 'H' || b == '?') {
				console_write(c, escape_help, sizeof(escape_help) - 1);
				continue;
			}
			if (b != ESCAPE_KEY)
				continue;
		}
		buf[out++] = b;
	}
	return out;
}

struct console *console_open(const struct vm_config *cfg, char *err, size_t errlen)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->out_fd = STDOUT_FILENO;
	if (cfg->console == CONSOLE_FILE) {
		c->out_fd = open(cfg->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0) {
			snprintf(err, errlen, "console file %s: %s — choose a writable path",
				 cfg->console_path, strerror(errno));
			free(c);
			return NULL;
		}
		c->own_out = true;
	}
	pthread_mutex_init(&c->out_lock, NULL);
	return c;
}

void console_write(struct console *c, const void *buf, size_t len)
{
	const char *p = buf;
	pthread_mutex_lock(&c->out_lock);
	while (len) {
		ssize_t n = write(c->out_fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a closed terminal must not stop the guest */
		p += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&c->out_lock);
}

/* Read what stdin has; false at EOF or on an error (input ends). */
static bool read_input(struct console *c)
{
	ssize_t n = read(STDIN_FILENO, c->buf, sizeof(c->buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	c->off = 0;
	c->len = tty_raw ? filter_escapes(c, c->buf, (size_t)n) : (size_t)n;
	return true;
}

/* Offer the pending bytes to the device, then wait for what comes next:
 * room in the device (a retry), or more input. */
static void pump(struct console *c, bool read_more)
{
	if (read_more && c->off == c->len && !read_input(c)) {
		loop_unwatch(c->in_w); /* EOF: input is over */
		c->in_w = NULL;
		return;
	}
	while (c->off < c->len) {
		size_t n = c->input(c->input_ctx, c->buf + c->off, c->len - c->off);
		if (n == 0)
			break;
		c->off += n;
	}
	bool waiting = c->off < c->len;
	if (c->in_w)
		loop_watch_events(c->in_w, waiting ? 0 : LOOP_IN);
	/* Unpollable stdin (always readable) is read again straight away. */
	if (waiting || !c->in_w)
		loop_timer_arm(c->retry, waiting ? RETRY_NS : 1, 0);
}

static void stdin_ready(void *ctx, unsigned ready)
{
	pump(ctx, true);
}

static void retry_due(void *ctx)
{
	struct console *c = ctx;
	pump(c, !c->in_w);
}

int console_start_input(struct console *c, struct loop *loop, console_input_fn fn, void *fn_ctx,
			void (*quit)(void *ctx), void *quit_ctx)
{
	if (c->own_out || fcntl(STDIN_FILENO, F_GETFD) < 0)
		return 0;
	c->input = fn;
	c->input_ctx = fn_ctx;
	c->quit = quit;
	c->quit_ctx = quit_ctx;
	c->retry = loop_timer_new(loop, LOOP_DEVICE, retry_due, c);
	if (!c->retry)
		return -1;
	c->in_w = loop_watch(loop, STDIN_FILENO, LOOP_IN, LOOP_DEVICE, stdin_ready, c);
	if (!c->in_w && errno != EPERM)
		return -1;
	if (!c->in_w)
		loop_timer_arm(c->retry, 1, 0);
	tty_make_raw();
	return 0;
}

void console_close(struct console *c)
{
	if (!c)
		return;
	loop_unwatch(c->in_w);
	loop_timer_free(c->retry);
	tty_restore();
	if (c->own_out)
		close(c->out_fd);
	pthread_mutex_destroy(&c->out_lock);
	free(c);
}
