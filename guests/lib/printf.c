/* kprintf: %c %s %d %i %u %x %X %p %%, flags '-' '0' '#', width, length l/ll/z. */
#include "guest.h"

struct spec {
	bool left, zero, alt;
	int width;
};

static void pad(int n, char c)
{
	while (n-- > 0)
		serial_putc(c);
}

static void emit(const struct spec *sp, const char *prefix, const char *s, int len)
{
	int plen = (int)strlen(prefix), fill = sp->width - len - plen;

	if (!sp->left && !sp->zero)
		pad(fill, ' ');
	while (*prefix)
		serial_putc(*prefix++);
	if (!sp->left && sp->zero)
		pad(fill, '0');
	for (int i = 0; i < len; i++)
		serial_putc(s[i]);
	if (sp->left)
		pad(fill, ' ');
}

static void emit_num(const struct spec *sp, uint64_t v, bool neg, unsigned base, bool upper,
		     const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char buf[24];
	int i = sizeof(buf);

	do {
		buf[--i] = digits[v % base];
		v /= base;
	} while (v);
	emit(sp, neg ? "-" : prefix, buf + i, (int)sizeof(buf) - i);
}

void kvprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		struct spec sp = {0};
		int lng = 0;

		if (*fmt != '%') {
			serial_putc(*fmt);
			continue;
		}
		for (;; fmt++) {
			if (fmt[1] == '-')
				sp.left = true;
			else if (fmt[1] == '0')
				sp.zero = true;
			else if (fmt[1] == '#')
				sp.alt = true;
			else
				break;
		}
		while (fmt[1] >= '0' && fmt[1] <= '9')
			sp.width = sp.width * 10 + (*++fmt - '0');
		while (fmt[1] == 'l' || fmt[1] == 'z') {
			lng++;
			fmt++;
		}
		switch (*++fmt) {
		case 'c': {
			char c = (char)va_arg(ap, int);
			emit(&sp, "", &c, 1);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			emit(&sp, "", s, (int)strlen(s));
			break;
		}
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			emit_num(&sp, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, false, "");
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			unsigned base = *fmt == 'u' ? 10 : 16;
			emit_num(&sp, v, false, base, *fmt == 'X',
				 sp.alt && base == 16 ? "0x" : "");
			break;
		}
		case 'p':
			emit_num(&sp, (uint64_t)va_arg(ap, void *), false, 16, false, "0x");
			break;
		case '\0':
			return;
		default:
			serial_putc(*fmt);
		}
	}
}

void kprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}
