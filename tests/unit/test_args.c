#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "machine/machine.h"

static void sizes(void **state)
{
	uint64_t v;
	assert_int_equal(parse_size("128M", &v), 0);
	assert_int_equal(v, 128ull << 20);
	assert_int_equal(parse_size("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(parse_size("4KiB", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("65536", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(parse_size("0x1000", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("", &v), -1);
	assert_int_equal(parse_size("-1G", &v), -1);
	assert_int_equal(parse_size("12Q", &v), -1);
	assert_int_equal(parse_size("99999999999T", &v), -1);
	assert_int_equal(parse_size("1M2", &v), -1);
}

static void run_options(void **state)
{
	struct vm_config c;
	vm_config_defaults(&c);
	char *argv[] = {"run",	       "--kernel", "k",	       "--mem", "256M",
			"--cpus",      "2",	   "--engine", "kvm",	"--console",
			"file:/tmp/x", "--stats",  NULL};
	assert_int_equal(cli_parse_run(12, argv, &c), 0);
	assert_string_equal(c.kernel, "k");
	assert_int_equal(c.mem, 256ull << 20);
	assert_int_equal(c.cpus, 2);
	assert_string_equal(c.engine, "kvm");
	assert_int_equal(c.console, CONSOLE_FILE);
	assert_string_equal(c.console_path, "/tmp/x");
	assert_true(c.stats);
	assert_false(c.verbose);
	assert_false(c.guest_decompress);
	char *more[] = {"run", "--kernel", "k", "--verbose", "--decompress", "guest", NULL};
	assert_int_equal(cli_parse_run(6, more, &c), 0);
	assert_true(c.verbose);
	assert_true(c.guest_decompress);
	more[5] = "host";
	assert_int_equal(cli_parse_run(6, more, &c), 0);
	assert_false(c.guest_decompress);
}

static void run_option_errors(void **state)
{
	struct vm_config c;
	vm_config_defaults(&c);
	char *a1[] = {"run", "--kernel", "k", "--cpus", "x", NULL};
	assert_int_not_equal(cli_parse_run(5, a1, &c), 0);
	char *a2[] = {"run", "--kernel", "k", "--console", "tty", NULL};
	assert_int_not_equal(cli_parse_run(5, a2, &c), 0);
	char *a3[] = {"run", "stray", NULL};
	assert_int_not_equal(cli_parse_run(2, a3, &c), 0);
	char *a4[] = {"run", "--kernel", "k", "--decompress", "both", NULL};
	assert_int_equal(cli_parse_run(5, a4, &c), EXIT_CODE_USAGE);
}

/* A file linux_probe takes for a bzImage ("HdrS" at 0x202), or plain bytes. */
static void write_kernel(const char *path, bool linux)
{
	char img[4096] = {0};
	if (linux)
		memcpy(img + 0x202, "HdrS", 4);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(img, 1, sizeof(img), f);
	fclose(f);
}

/* The command line cli_parse_run settles on for kernel (and --cmdline arg if
 * not NULL); NULL when the kernel gets none. */
static const char *cmdline_for(const char *kernel, const char *arg)
{
	static struct vm_config c;
	vm_config_defaults(&c);
	char *argv[] = {"run", "--kernel", (char *)kernel, "--cmdline", (char *)arg, NULL};
	assert_int_equal(cli_parse_run(arg ? 5 : 3, argv, &c), 0);
	return c.cmdline;
}

static void default_cmdline(void **state)
{
	char lx[64], other[64];
	snprintf(lx, sizeof(lx), "/tmp/popek-args-%d.linux", getpid());
	snprintf(other, sizeof(other), "/tmp/popek-args-%d.other", getpid());
	write_kernel(lx, true);
	write_kernel(other, false);
	const char *def = "console=ttyS0 panic=-1 cryptomgr.notests";
	assert_string_equal(cmdline_for(lx, NULL), def); /* Linux: a console by default */
	assert_null(cmdline_for(other, NULL));		 /* others: nothing */
	assert_string_equal(cmdline_for(lx, "+quiet loglevel=3"),
			    "console=ttyS0 panic=-1 cryptomgr.notests quiet loglevel=3");
	assert_string_equal(cmdline_for(other, "+quiet"), "quiet");
	assert_string_equal(cmdline_for(lx, "+"), def);
	assert_string_equal(cmdline_for(other, "+"), "");
	assert_string_equal(cmdline_for(lx, "console=hvc0"), "console=hvc0"); /* replaces */
	assert_string_equal(cmdline_for(other, "a=1"), "a=1");
	assert_null(cmdline_for("/nonexistent/kernel", NULL)); /* boot_load reports it */
	unlink(lx);
	unlink(other);

	char big[9000];
	memset(big, 'x', sizeof(big) - 1);
	big[0] = '+';
	big[sizeof(big) - 1] = 0;
	struct vm_config c;
	vm_config_defaults(&c);
	char *argv[] = {"run", "--kernel", "k", "--cmdline", big, NULL};
	assert_int_equal(cli_parse_run(5, argv, &c), EXIT_CODE_USAGE);
}

static void disks(void **state)
{
	struct vm_config c;
	vm_config_defaults(&c);
	/* argv strings are writable, as the real ones are */
	char d1[] = "a.img", d2[] = "b,c.img,ro", d3[] = ",ro";
	char *argv[] = {"run", "--kernel", "k", "--disk", d1, "--disk", d2, NULL};
	assert_int_equal(cli_parse_run(7, argv, &c), 0);
	assert_int_equal(c.ndisks, 2);
	assert_string_equal(c.disk[0].path, "a.img");
	assert_false(c.disk[0].ro);
	assert_string_equal(c.disk[1].path, "b,c.img");
	assert_true(c.disk[1].ro);
	vm_config_defaults(&c);
	char *odd[] = {"run", "--kernel", "k", "--disk", d3, NULL};
	assert_int_equal(cli_parse_run(5, odd, &c), 0); /* a file literally named ",ro" */
	vm_config_defaults(&c);
	char d4[] = "x.img,format=raw,ro";
	char *raw[] = {"run", "--kernel", "k", "--disk", d4, NULL};
	assert_int_equal(cli_parse_run(5, raw, &c), 0);
	assert_string_equal(c.disk[0].path, "x.img");
	assert_true(c.disk[0].ro && c.disk[0].format_raw && c.disk[0].kind == DISK_RAW);
	char many[MAX_DISKS + 1][16];
	char *argv2[3 + 2 * (MAX_DISKS + 1)];
	int n = 0;
	argv2[n++] = "run", argv2[n++] = "--kernel", argv2[n++] = "k";
	for (int i = 0; i <= MAX_DISKS; i++) {
		snprintf(many[i], sizeof(many[i]), "d%d", i);
		argv2[n++] = "--disk";
		argv2[n++] = many[i];
	}
	vm_config_defaults(&c);
	assert_int_not_equal(cli_parse_run(n, argv2, &c), 0);
}

/* What serves a disk follows its header, never its name. */
static void disk_kinds(void **state)
{
	char qcow[] = "/tmp/popek-test-args-XXXXXX", raw[] = "/tmp/popek-test-args-XXXXXX.qcow2";
	int q = mkstemp(qcow), r = mkstemps(raw, 6);
	assert_true(q >= 0 && r >= 0);
	assert_int_equal(write(q, "QFI\xfb\0\0\0\3", 8), 8);
	assert_int_equal(write(r, "QFI\xfb not a header", 17), 17);
	close(q);
	close(r);
	struct vm_config c;
	vm_config_defaults(&c);
	char sock[] = "socket=/run/b.sock";
	char *argv[] = {"run",	  "--kernel", "k",	"--disk", qcow,
			"--disk", raw,	      "--disk", sock,	  NULL};
	assert_int_equal(cli_parse_run(9, argv, &c), 0);
	assert_int_equal(c.disk[0].kind, DISK_IMAGE);
	assert_string_equal(c.disk[0].format, "qcow2");
	assert_int_equal(c.disk[1].kind, DISK_RAW);
	assert_null(c.disk[1].format);
	assert_int_equal(c.disk[2].kind, DISK_SOCKET);
	assert_string_equal(c.disk[2].path, "/run/b.sock");
	/* ro would be the user's backend's to enforce */
	vm_config_defaults(&c);
	char sock_ro[] = "socket=/run/b.sock,ro";
	char *bad[] = {"run", "--kernel", "k", "--disk", sock_ro, NULL};
	assert_int_equal(cli_parse_run(5, bad, &c), EXIT_CODE_USAGE);
	unlink(qcow);
	unlink(raw);
}

static void devices(void **state)
{
	struct vm_config c;
	vm_config_defaults(&c);
	assert_false(c.device[DEV_PC_TESTDEV]);
	char *argv[] = {"run", "--kernel", "k", "--device", "pc-testdev", NULL};
	assert_int_equal(cli_parse_run(5, argv, &c), 0);
	assert_true(c.device[DEV_PC_TESTDEV]);
	vm_config_defaults(&c);
	char *bad[] = {"run", "--kernel", "k", "--device", "pc-testdevice", NULL};
	assert_int_equal(cli_parse_run(5, bad, &c), EXIT_CODE_USAGE);
	assert_false(c.device[DEV_PC_TESTDEV]);
}

static void jail_options(void **state)
{
	struct vm_config c;
	vm_config_defaults(&c);
	assert_true(c.jail); /* on by default */
	assert_false(c.jail_set);
	char *a1[] = {"run", "--kernel",    "k",  "--no-jail", "--cpu-quota",
		      "150", "--mem-limit", "1G", NULL};
	assert_int_equal(cli_parse_run(8, a1, &c), 0);
	assert_false(c.jail);
	assert_int_equal(c.cpu_quota, 150);
	assert_int_equal(c.mem_limit, 1ull << 30);
	char *a2[] = {"run", "--kernel", "k", "--jail", NULL};
	assert_int_equal(cli_parse_run(4, a2, &c), 0);
	assert_true(c.jail);
	assert_true(c.jail_set);
	char *bad[][6] = {{"run", "--kernel", "k", "--cpu-quota", "0", NULL},
			  {"run", "--kernel", "k", "--cpu-quota", "6401", NULL},
			  {"run", "--kernel", "k", "--cpu-quota", "5x", NULL},
			  {"run", "--kernel", "k", "--mem-limit", "100k", NULL},
			  {"run", "--kernel", "k", "--mem-limit", "lots", NULL}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(cli_parse_run(5, bad[i], &c), 0);
}

static void vsock_option(void **state)
{
	struct vm_config c;
	vm_config_defaults(&c);
	assert_int_equal(c.vsock.cid, 0); /* no device unless asked for */
	char arg[] = "cid=4294967294,uds=/run/v.sock";
	char *ok[] = {"run", "--kernel", "k", "--vsock", arg, NULL};
	assert_int_equal(cli_parse_run(5, ok, &c), 0);
	assert_int_equal(c.vsock.cid, 4294967294u);
	assert_string_equal(c.vsock.uds, "/run/v.sock");
	/* CIDs 0-2 and ~0 are reserved; both keys are needed, nothing else. */
	const char *bad[] = {
	    "cid=2,uds=x", "cid=4294967295,uds=x", "cid=-3,uds=x",   "cid=3", "uds=x",
	    "cid=3,uds=",  "cid=3x,uds=x",	   "cid=3,uds=x,ro", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char copy[64];
		snprintf(copy, sizeof(copy), "%s", bad[i]);
		char *argv[] = {"run", "--kernel", "k", "--vsock", copy, NULL};
		vm_config_defaults(&c);
		assert_int_equal(cli_parse_run(5, argv, &c), EXIT_CODE_USAGE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sizes),
	    cmocka_unit_test(run_options),
	    cmocka_unit_test(run_option_errors),
	    cmocka_unit_test(disks),
	    cmocka_unit_test(disk_kinds),
	    cmocka_unit_test(devices),
	    cmocka_unit_test(default_cmdline),
	    cmocka_unit_test(jail_options),
	    cmocka_unit_test(vsock_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
