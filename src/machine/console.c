#include "machine/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct console {
	int out_fd;
	bool own_out;
	pthread_mutex_t out_lock;
	int stop_fd; /* eventfd: tells the input thread to finish */
	pthread_t input_thread;
	bool input_running;
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
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
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

void console_tx(void *console, const void *buf, size_t len)
{
	console_write(console, buf, len);
}

static void *input_loop(void *arg)
{
	struct console *c = arg;
	uint8_t buf[256];
	struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
				{.fd = c->stop_fd, .events = POLLIN}};
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (tty_raw)
			n = (ssize_t)filter_escapes(c, buf, (size_t)n);
		/* The device takes what fits; wait for the guest to drain the rest. */
		size_t done = 0;
		while (done < (size_t)n) {
			done += c->input(c->input_ctx, buf + done, (size_t)n - done);
			if (done < (size_t)n) {
				struct pollfd s = {.fd = c->stop_fd, .events = POLLIN};
				if (poll(&s, 1, 5) > 0)
					return NULL;
			}
		}
	}
	return NULL;
}

int console_start_input(struct console *c, console_input_fn fn, void *fn_ctx,
			void (*quit)(void *ctx), void *quit_ctx)
{
	if (c->own_out || fcntl(STDIN_FILENO, F_GETFD) < 0)
		return 0;
	c->input = fn;
	c->input_ctx = fn_ctx;
	c->quit = quit;
	c->quit_ctx = quit_ctx;
	tty_make_raw();
	if (pthread_create(&c->input_thread, NULL, input_loop, c))
		return -1;
	c->input_running = true;
	return 0;
}

void console_close(struct console *c)
{
	if (!c)
		return;
	if (c->input_running) {
		uint64_t one = 1;
		if (write(c->stop_fd, &one, sizeof(one)) < 0)
			perror("popek: console");
		pthread_join(c->input_thread, NULL);
	}
	tty_restore();
	close(c->stop_fd);
	if (c->own_out)
		close(c->out_fd);
	pthread_mutex_destroy(&c->out_lock);
	free(c);
}
