/* COM1 16550 UART, polled. */
#include "guest.h"

#define COM1	   0x3f8
#define LSR	   5
#define LSR_THRE   0x20
#define THRE_POLLS 10000 /* a missing or stuck UART must not hang the guest */

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB: divisor follows */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0x07); /* FIFO on and cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

void serial_putc(char c)
{
	for (int i = 0; i < THRE_POLLS && !(inb(COM1 + LSR) & LSR_THRE); i++)
		cpu_relax();
	outb(COM1, (uint8_t)c);
}
