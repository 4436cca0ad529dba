#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "oci/oci.h"

/* runc's format: {"level":"error","msg":"...","time":"RFC 3339"} per line, to
 * --log (the caller reads it after a failure), else stderr. */
void oci_log(const char *level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	FILE *f = oci_g.log ? fopen(oci_g.log, "a") : NULL;
	FILE *out = f ? f : stderr;
	if (oci_g.json_log) {
		char when[40];
		time_t now = time(NULL);
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
		json_object *o = json_object_new_object();
		json_object_object_add(o, "level", json_object_new_string(level));
		json_object_object_add(o, "msg", json_object_new_string(msg));
		json_object_object_add(o, "time", json_object_new_string(when));
		fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		fprintf(out, "popek-oci: %s%s%s\n", strcmp(level, "error") ? level : "",
			strcmp(level, "error") ? ": " : "", msg);
	}
	if (f)
		fclose(f);
	/* A client that logs to a file still shows a person the error. */
	if (f && !strcmp(level, "error"))
		fprintf(stderr, "popek-oci: %s\n", msg);
}
