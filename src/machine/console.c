#include "machine/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
};

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

static void *input_loop(void *arg)
{
	struct console *c = arg;
	uint8_t buf[256];
	struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = c->stop_fd, .events = POLLIN}};
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

int console_start_input(struct console *c, console_input_fn fn, void *ctx)
{
	if (c->own_out || fcntl(STDIN_FILENO, F_GETFD) < 0)
		return 0;
	c->input = fn;
	c->input_ctx = ctx;
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
	close(c->stop_fd);
	if (c->own_out)
		close(c->out_fd);
	pthread_mutex_destroy(&c->out_lock);
	free(c);
}
