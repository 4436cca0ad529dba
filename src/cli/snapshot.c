/* popek snapshot NAME DIR [--stop] [--compress] */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "machine/machine.h"

int cmd_snapshot(int argc, char **argv)
{
	const char *name = NULL, *dir = NULL;
	bool stop = false, compress = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--stop"))
			stop = true;
		else if (!strcmp(argv[i], "--compress"))
			compress = true;
		else if (argv[i][0] == '-' || (name && dir))
			name = dir = NULL, i = argc;
		else if (!name)
			name = argv[i];
		else
			dir = argv[i];
	}
	if (!name || !dir) {
		fprintf(stderr, "popek: usage: popek snapshot NAME DIR [--stop] [--compress]\n");
		return EXIT_CODE_USAGE;
	}
	/* The VM process resolves paths in its own cwd: send an absolute one. */
	char abs[PATH_MAX];
	if (dir[0] == '/') {
		snprintf(abs, sizeof(abs), "%s", dir);
	} else {
		char cwd[PATH_MAX - 256];
		if (!getcwd(cwd, sizeof(cwd))) {
			perror("popek: getcwd");
			return EXIT_CODE_HOST;
		}
		snprintf(abs, sizeof(abs), "%s/%s", cwd, dir);
	}
	/* Created here and sent as an fd: a jailed VMM cannot reach the path. */
	if (mkdir(abs, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "popek: snapshot directory %s: %s\n", abs, strerror(errno));
		return EXIT_CODE_HOST;
	}
	int dfd = open(abs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "popek: snapshot directory %s: %s\n", abs, strerror(errno));
		return EXIT_CODE_HOST;
	}
	json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("snapshot"));
	json_object_object_add(req, "dir", json_object_new_string(abs));
	json_object_object_add(req, "stop", json_object_new_boolean(stop));
	json_object_object_add(req, "compress", json_object_new_boolean(compress));
	json_object *r = vm_request(name, req, dfd, false), *secs;
	close(dfd);
	if (!r)
		return 1;
	if (json_object_object_get_ex(r, "seconds", &secs))
		fprintf(stderr, "popek: snapshot of %s written to %s in %.3f s\n", name, abs,
			json_object_get_double(secs));
	json_object_put(r);
	return 0;
}
