/* Control-socket lines carry a file descriptor (SCM_RIGHTS): how `popek
 * snapshot` hands a jailed VMM its snapshot directory. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/socket.h"

static void line_with_fd(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int dir = open("/", O_DIRECTORY | O_RDONLY);
	assert_true(dir >= 0);
	assert_int_equal(socket_write_line(sv[0], "{\"cmd\":\"snapshot\"}", dir), 0);
	int got = -1;
	char *line = socket_read_line(sv[1], 4096, &got);
	assert_non_null(line);
	assert_string_equal(line, "{\"cmd\":\"snapshot\"}");
	assert_true(got >= 0 && got != dir);
	struct stat a, b;
	assert_int_equal(fstat(dir, &a), 0);
	assert_int_equal(fstat(got, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
	free(line);
	close(got);
	close(dir);
	close(sv[0]);
	close(sv[1]);
}

/* A descriptor nobody asked for is closed, not leaked into the VMM. */
static void unwanted_fd_closed(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int fd = open("/", O_DIRECTORY | O_RDONLY);
	assert_int_equal(socket_write_line(sv[0], "x", fd), 0);
	close(fd);
	int probe = open("/", O_RDONLY); /* the lowest free number before the read */
	close(probe);
	char *line = socket_read_line(sv[1], 4096, NULL);
	assert_string_equal(line, "x");
	assert_int_equal(fcntl(probe, F_GETFD), -1); /* received and closed again */
	free(line);
	close(sv[0]);
	close(sv[1]);
}

/* Lines sent back to back (progress, then the reply) are read one by one. */
static void lines_one_by_one(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[0], "{\"progress\":1}\n{\"ok\":true}\n", 28), 28);
	close(sv[0]);
	char *a = socket_read_line(sv[1], 4096, NULL), *b = socket_read_line(sv[1], 4096, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, "{\"progress\":1}");
	assert_string_equal(b, "{\"ok\":true}");
	free(a);
	free(b);
	close(sv[1]);
}

static void long_line_is_bounded(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	static char big[20000];
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(write(sv[0], big, sizeof(big)), sizeof(big));
	char *line = socket_read_line(sv[1], 65536, NULL);
	assert_non_null(line);
	assert_int_equal(strlen(line), sizeof(big) - 1);
	free(line);
	assert_int_equal(write(sv[0], big, sizeof(big)), sizeof(big));
	assert_null(socket_read_line(sv[1], 8192, NULL)); /* longer than max */
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(line_with_fd),
	    cmocka_unit_test(unwanted_fd_closed),
	    cmocka_unit_test(lines_one_by_one),
	    cmocka_unit_test(long_line_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
