/* popek migrate NAME URI [...]: send a running VM to a popek receive;
 * popek receive --listen URI [...]: wait for one and run it here. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/control.h"
#include "machine/machine.h"
#include "migrate/migrate.h"
#include "net/net.h"
#include "snapshot/snapshot.h"

static int64_t num(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* One line per round, and the notes (auto-converge, no convergence). */
static void show_round(const char *line)
{
	json_object *o = json_tokener_parse(line), *p, *n;
	if (o && json_object_object_get_ex(o, "progress", &p)) {
		char disk[48] = "";
		if (num(p, "dirty_disk_bytes"))
			snprintf(disk, sizeof(disk), " and %.1f MiB of disk",
				 (double)num(p, "dirty_disk_bytes") / (1 << 20));
		if (json_object_object_get_ex(p, "note", &n))
			fprintf(stderr, "popek: migrate: %s\n", json_object_get_string(n));
		else if (json_object_object_get_ex(p, "postcopy_left", &n))
			fprintf(stderr,
				"popek: migrate: post-copy: %.1f MiB sent, %lld pages left, %lld "
				"pulled by the guest\n",
				(double)num(p, "sent") / (1 << 20),
				(long long)json_object_get_int64(n), (long long)num(p, "pulled"));
		else if (json_object_object_get_ex(p, "expected_downtime_ms", &n))
			fprintf(stderr,
				"popek: migrate: round %lld: %.1f MiB sent, %lld pages%s dirty "
				"(%.1f MiB/s), expected downtime %.1f ms%s\n",
				(long long)num(p, "round"), (double)num(p, "sent") / (1 << 20),
				(long long)num(p, "dirty_pages"), disk,
				(double)num(p, "dirty_rate") / (1 << 20), json_object_get_double(n),
				num(p, "throttle") ? ", vCPUs throttled" : "");
	}
	json_object_put(o);
}

static int usage_migrate(void)
{
	fprintf(stderr, "popek: usage: popek migrate NAME tcp:HOST:PORT|unix:PATH "
			"[--max-downtime MS] [--bandwidth BYTES/s] [--compress] [--copy-storage] "
			"[--postcopy]\n");
	return EXIT_CODE_USAGE;
}

int cmd_migrate(int argc, char **argv)
{
	const char *name = NULL, *uri = NULL;
	uint64_t downtime = MIGRATE_DEFAULT_DOWNTIME_MS, bw = 0;
	bool compress = false, copy_storage = false, postcopy = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end = NULL;
		if (!strcmp(a, "--compress")) {
			compress = true;
		} else if (!strcmp(a, "--copy-storage")) {
			copy_storage = true;
		} else if (!strcmp(a, "--postcopy")) {
			postcopy = true;
		} else if (!strcmp(a, "--max-downtime") && i + 1 < argc) {
			downtime = strtoull(argv[++i], &end, 10);
			if (*end || downtime > 3600000)
				return usage_migrate();
		} else if (!strcmp(a, "--bandwidth") && i + 1 < argc) {
			if (parse_size(argv[++i], &bw) || bw == 0)
				return usage_migrate();
		} else if (a[0] == '-' || (name && uri)) {
			return usage_migrate();
		} else if (!name) {
			name = a;
		} else {
			uri = a;
		}
	}
	if (!name || !uri)
		return usage_migrate();
	char err[600], *resp = NULL;
	/* Connected here, sent to the VM: a jailed VMM opens no sockets. */
	int conn = migrate_connect(uri, err, sizeof(err));
	if (conn < 0) {
		fprintf(stderr, "popek: %s — is 'popek receive --listen %s' running?\n", err, uri);
		return EXIT_CODE_HOST;
	}
	json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("migrate"));
	json_object_object_add(req, "uri", json_object_new_string(uri));
	json_object_object_add(req, "max_downtime_ms", json_object_new_int64((int64_t)downtime));
	json_object_object_add(req, "bandwidth", json_object_new_int64((int64_t)bw));
	json_object_object_add(req, "compress", json_object_new_boolean(compress));
	json_object_object_add(req, "copy_storage", json_object_new_boolean(copy_storage));
	json_object_object_add(req, "postcopy", json_object_new_boolean(postcopy));
	int rc = control_request(name, json_object_to_json_string(req), conn, &resp, show_round,
				 err, sizeof(err));
	json_object_put(req);
	close(conn);
	json_object *r = rc ? NULL : json_tokener_parse(resp), *ok, *e, *st;
	free(resp);
	if (rc) {
		fprintf(stderr, "popek: %s\n", err);
		return EXIT_CODE_HOST;
	}
	if (!r || !json_object_object_get_ex(r, "ok", &ok) || !json_object_get_boolean(ok)) {
		/* After a post-copy handover the source cannot take the VM back. */
		bool stopped = r && json_object_object_get_ex(r, "stopped", &st) &&
			       json_object_get_boolean(st);
		fprintf(stderr, "popek: migration of %s failed: %s; %s\n", name,
			r && json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e)
								       : "malformed reply",
			stopped ? "its stopped copy is kept here, with every page"
				: "it keeps running here");
		json_object_put(r);
		return EXIT_CODE_HOST;
	}
	json_object *d, *ph = NULL;
	json_object_object_get_ex(r, "downtime_ms", &d);
	json_object_object_get_ex(r, "phases_ms", &ph);
	/* Where the pause went, phase by phase (src/migrate/send.c). */
	char phases[400] = "";
	size_t used = 0;
	if (json_object_is_type(ph, json_type_object)) {
		json_object_object_foreach(ph, key, val)
		{
			int n = snprintf(phases + used, sizeof(phases) - used, "%s%s %.1f",
					 used ? ", " : "", key, json_object_get_double(val));
			if (n < 0 || (size_t)n >= sizeof(phases) - used)
				break;
			used += (size_t)n;
		}
	}
	char post[64] = "";
	if (json_object_object_get_ex(r, "pulled", &e))
		snprintf(post, sizeof(post), " and post-copy (%lld pages pulled)",
			 (long long)json_object_get_int64(e));
	fprintf(stderr,
		"popek: %s migrated to %s in %lld rounds%s, %.1f MiB, downtime %.1f ms (%s)\n",
		name, uri, (long long)num(r, "rounds"), post, (double)num(r, "bytes") / (1 << 20),
		json_object_get_double(d), phases);
	json_object_put(r);
	return 0;
}

enum { O_LISTEN = 300, O_NET };

/* What receive takes besides restore's options: where to listen, and the
 * NICs' backends on this host (--net; boot options are refused). */
struct receive_opts {
	const char *uri;
	int nnics;
	struct net_config nic[MAX_NICS];
};

static int receive_opt(void *ctx, int opt, const char *arg)
{
	struct receive_opts *r = ctx;
	char err[256], *copy;
	if (opt == O_LISTEN) {
		r->uri = arg;
		return 0;
	}
	if (r->nnics == MAX_NICS || !(copy = strdup(arg)) ||
	    net_config_parse(copy, &r->nic[r->nnics], err, sizeof(err))) {
		fprintf(stderr, "popek: --net %s: %s\n", arg,
			r->nnics == MAX_NICS ? "too many NICs" : err);
		return EXIT_CODE_USAGE;
	}
	r->nnics++; /* copy stays: the NIC points into it */
	return 0;
}

/* --net given here: the NICs use this host's backends, with the MACs the
 * guest knows. */
static void keep_host_nics(struct vm_config *cfg, const struct net_config *mine, int n)
{
	if (!n)
		return;
	for (int i = 0; i < n && i < cfg->nnics; i++) {
		struct net_config nc = mine[i];
		if (!nc.mac_set && cfg->nic[i].mac_set) {
			memcpy(nc.mac, cfg->nic[i].mac, sizeof(nc.mac));
			nc.mac_set = true;
		}
		cfg->nic[i] = nc;
	}
	if (n != cfg->nnics)
		fprintf(stderr, "popek: receive: %d --net given, the VM has %d NICs\n", n,
			cfg->nnics);
	cfg->nnics = n;
}

int cmd_receive(int argc, char **argv)
{
	static const struct option opts[] = {{"listen", required_argument, NULL, O_LISTEN},
					     {"net", required_argument, NULL, O_NET},
					     {0}};
	static struct receive_opts ro;
	struct cli_extra x = {.opts = opts, .fn = receive_opt, .ctx = &ro, .no_boot_opts = true};
	static struct vm_config cfg;
	vm_config_defaults(&cfg);
	cfg.engine = NULL; /* default: the engine the VM ran on */
	const char *extra = NULL, *uri;
	int rc = cli_parse(argc, argv, &cfg, &x, &extra);
	if (rc)
		return rc;
	if (!(uri = ro.uri) || extra) {
		fprintf(stderr,
			"popek: usage: popek receive --listen tcp:HOST:PORT|unix:PATH "
			"[--engine kvm|soft] [--name NAME] [--net SPEC]... [--disk PATH]... "
			"[restore options]\n");
		return EXIT_CODE_USAGE;
	}
	char err[700];
	int lfd = migrate_listen(uri, err, sizeof(err));
	if (lfd < 0) {
		fprintf(stderr, "popek: %s\n", err);
		return EXIT_CODE_HOST;
	}
	fprintf(stderr, "popek: waiting for a VM on %s\n", uri);
	int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (!strncmp(uri, "unix:", 5))
		unlink(uri + 5);
	if (conn < 0) {
		perror("popek: receive: accept");
		return EXIT_CODE_HOST;
	}
	uint64_t t0 = monotonic_ns();
	struct mig_in in = {.fd = conn};
	struct mig_recv *r = migrate_receive_begin(&in, err, sizeof(err));
	if (!r) {
		migrate_refuse(conn, err);
		close(conn);
		fprintf(stderr, "popek: %s\n", err);
		return EXIT_CODE_IMAGE;
	}
	/* --disk here: where a --copy-storage source's disks are written. */
	struct disk_config given[MAX_DISKS];
	int ngiven = cfg.ndisks;
	memcpy(given, cfg.disk, sizeof(given));
	migrate_receive_config(r, &cfg);
	for (int i = 0; i < cfg.ndisks; i++)
		cfg.disk[i].lock_later = true;
	if (migrate_receive_disks(r, &cfg, given, ngiven, err, sizeof(err))) {
		migrate_refuse(conn, err);
		migrate_receive_free(r);
		close(conn);
		fprintf(stderr, "popek: %s\n", err);
		return EXIT_CODE_USAGE;
	}
	keep_host_nics(&cfg, ro.nic, ro.nnics);
	rc = cli_launch(&cfg, r->snap, t0, r);
	migrate_receive_free(r);
	return rc;
}
