#include "machine/stats.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "jail/jail.h"
#include "policy/active.h"
#include "policy/policy.h"
#include "popek/hypercall.h"
#include "util/counter.h"

static const char *const hypercall_names[POPEK_HC_COUNT + 1] = {
    "version", "console_write", "get_time", "exit", "yield", "unknown",
};

static json_object *counters_json(const struct vcpu_counters *c)
{
	json_object *o = json_object_new_object(), *exits = json_object_new_object(),
		    *hc = json_object_new_object();
	for (int r = 0; r < NR_EXIT_REASONS; r++)
		if (c->exits[r])
			json_object_object_add(exits, exit_reason_names[r],
					       json_object_new_int64((int64_t)c->exits[r]));
	for (int i = 0; i <= POPEK_HC_COUNT; i++)
		if (c->hypercalls[i])
			json_object_object_add(hc, hypercall_names[i],
					       json_object_new_int64((int64_t)c->hypercalls[i]));
	json_object_object_add(o, "exits", exits);
	json_object_object_add(o, "hypercalls", hc);
	return o;
}

/* A copy of a running vCPU's counters, each read once. */
static void counters_read(const struct vcpu_counters *c, struct vcpu_counters *out)
{
	for (int r = 0; r < NR_EXIT_REASONS; r++)
		out->exits[r] = counter_read(&c->exits[r]);
	for (int h = 0; h <= POPEK_HC_COUNT; h++)
		out->hypercalls[h] = counter_read(&c->hypercalls[h]);
}

/* What each rule of the active policy met (policy.h, hits), with the rule
 * as `popek policy` prints it, and the sums by class and action; none
 * without rules. The counts start again with a policy replaced live. */
static void policy_stats(struct machine *m, json_object *root)
{
	const struct policy *p = m->policy ? policy_enter(m->policy) : NULL;
	char *text = p && p->n ? policy_format(p) : NULL;
	if (text) {
		json_object *o = json_object_new_object(), *rules = json_object_new_array(),
			    *by = json_object_new_object();
		uint64_t sum[NR_POLICY_CLASSES][NR_POLICY_ACTIONS] = {{0}};
		char *line = text;
		for (int i = 0; i < p->n; i++) {
			const struct policy_rule *r = &p->rule[i];
			char *end = strchr(line, '\n'); /* policy_format: one line per rule */
			if (!end)
				break;
			*end = 0;
			uint64_t hits = atomic_load_explicit(&r->hits, memory_order_relaxed);
			sum[r->cls][r->action] += hits;
			json_object *rj = json_object_new_object();
			json_object_object_add(rj, "line", json_object_new_int(r->line));
			json_object_object_add(rj, "rule", json_object_new_string(line));
			json_object_object_add(rj, "hits", json_object_new_int64((int64_t)hits));
			if (r->action == POLICY_LIMIT)
				json_object_object_add(
				    rj, "held_ns",
				    json_object_new_int64((int64_t)atomic_load_explicit(
					&r->held_ns, memory_order_relaxed)));
			json_object_array_add(rules, rj);
			line = end + 1;
		}
		for (int c = 0; c < NR_POLICY_CLASSES; c++) {
			json_object *cj = NULL;
			for (int a = 0; a < NR_POLICY_ACTIONS; a++) {
				if (!(p->classes & (1u << c)) || !sum[c][a])
					continue;
				if (!cj)
					cj = json_object_new_object();
				json_object_object_add(cj, policy_action_names[a],
						       json_object_new_int64((int64_t)sum[c][a]));
			}
			if (cj)
				json_object_object_add(by, policy_class_names[c], cj);
		}
		json_object_object_add(o, "rules", rules);
		json_object_object_add(o, "by_class", by);
		json_object_object_add(root, "policy", o);
	}
	if (m->policy)
		policy_leave();
	free(text);
}

char *machine_stats_json(struct machine *m, double wall_seconds)
{
	json_object *root = json_object_new_object(), *cpus = json_object_new_array();
	struct vcpu_counters total = {0};
	for (int i = 0; i < m->ncpus; i++) {
		struct vcpu_counters c = {0};
		counters_read(&m->vcpu[i].count, &c);
		for (int r = 0; r < NR_EXIT_REASONS; r++)
			total.exits[r] += c.exits[r];
		for (int h = 0; h <= POPEK_HC_COUNT; h++)
			total.hypercalls[h] += c.hypercalls[h];
		json_object *cj = counters_json(&c);
		if (m->engine->stats && m->vcpu[i].ev) {
			json_object *es = json_object_new_object();
			m->engine->stats(m->vcpu[i].ev, es);
			json_object_object_add(cj, "engine", es);
		}
		json_object_array_add(cpus, cj);
	}
	json_object *t = counters_json(&total), *pio = json_object_new_object(),
		    *mmio = json_object_new_object();
	bus_stats(&m->pio, pio);
	bus_stats(&m->mmio, mmio);
	json_object_object_add(root, "engine", json_object_new_string(m->engine->name));
	json_object_object_add(root, "vcpus", json_object_new_int(m->ncpus));
	json_object_object_add(root, "ram", json_object_new_string(guest_mem_kind(&m->mem)));
	json_object_object_add(
	    root, "ram_pages",
	    json_object_new_string(m->mem.private_map
				       ? "snapshot" /* copy-on-write from the image */
				       : mem_pages_names[m->mem.pages]));
	json_object_object_add(root, "wall_seconds", json_object_new_double(wall_seconds));
	json_object_object_add(root, "exits", json_object_get(json_object_object_get(t, "exits")));
	json_object_object_add(root, "hypercalls",
			       json_object_get(json_object_object_get(t, "hypercalls")));
	json_object_object_add(root, "pio", pio);
	json_object_object_add(root, "mmio", mmio);
	json_object_object_add(root, "per_vcpu", cpus);
	const struct migration_progress *mp = &m->migration;
	if (counter_read(&mp->round)) {
		json_object *mj = json_object_new_object();
		const struct {
			const char *name;
			const uint64_t *v;
		} f[] = {{"active", &mp->active},
			 {"round", &mp->round},
			 {"sent_bytes", &mp->sent_bytes},
			 {"dirty_pages", &mp->dirty_pages},
			 {"dirty_rate_bytes_per_s", &mp->dirty_rate},
			 {"expected_downtime_us", &mp->expected_downtime_us},
			 {"throttle_pct", &mp->throttle_pct}};
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			json_object_object_add(
			    mj, f[i].name, json_object_new_int64((int64_t)counter_read(f[i].v)));
		json_object_object_add(root, "migration", mj);
	}
	policy_stats(m, root);
	json_object_object_add(root, "jail", jail_report_json()); /* last: what protected the VMM */
	json_object_put(t);
	char *s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return s;
}
