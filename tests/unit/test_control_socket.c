/* The control channel's line reader: one line per call, nothing lost when
 * the peer sent more than one (progress lines, then the reply). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "control/socket.h"

static void lines_sent_together_are_read_one_by_one(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	const char msg[] = "{\"progress\":1}\n{\"ok\":true}\ntail";
	assert_int_equal(write(sv[0], msg, sizeof(msg) - 1), sizeof(msg) - 1);
	close(sv[0]);
	const char *want[] = {"{\"progress\":1}", "{\"ok\":true}", "tail"};
	for (int i = 0; i < 3; i++) {
		char *line = socket_read_line(sv[1], CONTROL_MAX_MSG);
		assert_non_null(line);
		assert_string_equal(line, want[i]);
		free(line);
	}
	assert_null(socket_read_line(sv[1], CONTROL_MAX_MSG));
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
	char *line = socket_read_line(sv[1], CONTROL_MAX_MSG);
	assert_non_null(line);
	assert_int_equal(strlen(line), sizeof(big) - 1);
	free(line);
	assert_int_equal(write(sv[0], big, sizeof(big)), sizeof(big));
	assert_null(socket_read_line(sv[1], 8192)); /* longer than max */
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lines_sent_together_are_read_one_by_one),
	    cmocka_unit_test(long_line_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
