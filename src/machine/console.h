/* The VM's console: where guest output goes (terminal or file) and where
 * input comes from (stdin). Shared by the UART and the console hypercall. */
#ifndef POPEK_CONSOLE_H
#define POPEK_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "machine/config.h"
#include "util/loop.h"

struct console;

/* Accepts up to len bytes of input; returns how many were taken. */
typedef size_t (*console_input_fn)(void *ctx, const uint8_t *buf, size_t len);

struct console *console_open(const struct vm_config *cfg, char *err, size_t errlen);
/* Start delivering stdin to fn on loop, as device work (no input for file
 * consoles or when stdin is closed). On a terminal, stdin goes raw and Ctrl-A x
 * calls quit(quit_ctx); the terminal is restored by console_close, at exit, and
 * on fatal signals. */
int console_start_input(struct console *c, struct loop *loop, console_input_fn fn, void *fn_ctx,
			void (*quit)(void *ctx), void *quit_ctx);
void console_write(struct console *c, const void *buf, size_t len);
void console_close(struct console *c);

#endif
