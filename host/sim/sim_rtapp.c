/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sim_rtapp.c - import an rt-app JSON file (https://github.com/scheduler-tools/rt-app,
 * doc/tutorial.txt) as a workload: each entry of "tasks" becomes a group; the supported
 * task keys are instance, loop, run / runtime (us), sleep (us), timer {period (us)},
 * cpus (list of CPU ids), priority / nice (the nice value of a SCHED_OTHER task),
 * policy (SCHED_OTHER only), and phases (objects with the same event keys and their own
 * loop). Events run in file order, as rt-app runs them; "run1", "sleep2"... are the same
 * events (rt-app tells repeated keys apart by a suffix). "global" gives duration (s) and
 * the simulator's own keys sim_cpus, sim_hz, sim_seed, sim_timer_slack (us). Anything else
 * is refused with the path of the key (jansson keeps no line numbers for values; syntax
 * errors have them).
 *
 * Timer slack: rt-app has no setting for it (it never calls PR_SET_TIMERSLACK, so its
 * SCHED_OTHER threads sleep with the kernel's default 50 us; its "slack" and
 * "cumulative_slack" are a report of the time left before a timer's next period, not the
 * timer slack): the workload's default applies unless global.sim_timer_slack says otherwise.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "sim.h"

static int rerr(struct sim_wl *w, char *err, size_t errlen, const char *field, const char *what)
{
	set_err(err, errlen, "%s: %s: %s", w->file, field, what);
	return G_ERR_PARSE;
}

static bool key_is(const char *k, const char *event)
{
	size_t n = strlen(event);
	if (strncmp(k, event, n) != 0)
		return false;
	for (k += n; *k; k++)
		if (*k < '0' || *k > '9')
			return false;
	return true;
}

static int us_of(struct sim_wl *w, json_t *v, const char *f, uint64_t *ns, char *err, size_t errlen)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000000000ll)
		return rerr(w, err, errlen, f, "expected a whole number of microseconds");
	*ns = (uint64_t)json_integer_value(v) * 1000ull;
	return G_OK;
}

/* The events of a task or phase object, in file order, as ops wrapped in its loop. */
static int events(struct sim_wl *w, json_t *obj, const char *path, int *timed, char *err,
		  size_t errlen)
{
	const char *k;
	json_t *v;
	char f[256];

	json_object_foreach(obj, k, v) {
		struct sim_op op;
		memset(&op, 0, sizeof(op));
		snprintf(f, sizeof(f), "%s.%s", path, k);
		if (key_is(k, "run") || key_is(k, "runtime")) {
			op.kind = OP_RUN;
			if (us_of(w, v, f, &op.lo, err, errlen))
				return G_ERR_PARSE;
			op.hi = op.lo;
		} else if (key_is(k, "sleep")) {
			op.kind = OP_SLEEP;
			if (us_of(w, v, f, &op.lo, err, errlen))
				return G_ERR_PARSE;
			op.hi = op.lo;
		} else if (key_is(k, "timer")) {
			json_t *p = json_is_object(v) ? json_object_get(v, "period") : NULL;
			op.kind = OP_PERIOD;
			snprintf(f + strlen(f), sizeof(f) - strlen(f), ".period");
			if (!p)
				return rerr(w, err, errlen, f, "a timer needs a period (us)");
			if (us_of(w, p, f, &op.lo, err, errlen))
				return G_ERR_PARSE;
			if (op.lo < 1000)
				return rerr(w, err, errlen, f, "a period is at least 1 us");
			w->groups[w->ngroups - 1].periodic = true;
		} else {
			continue;   /* task-level keys are handled by the caller */
		}
		if (op.kind != OP_RUN || op.lo)
			(*timed)++;
		if (sim_wl_add_op(w, &op) < 0)
			return rerr(w, err, errlen, f, "out of memory");
	}
	return G_OK;
}

/* loop absent: forever for a task, once for a phase (dflt). */
static int open_loop(struct sim_wl *w, json_t *loop, long long dflt, const char *f, char *err,
		     size_t errlen)
{
	struct sim_op op = { .kind = OP_LOOP };
	long long n = dflt;

	if (loop) {
		if (!json_is_integer(loop) || (json_integer_value(loop) < 1 && json_integer_value(loop) != -1))
			return rerr(w, err, errlen, f, "loop is -1 (forever) or a count >= 1");
		n = json_integer_value(loop);
	}
	op.lo = n < 0 ? 0 : (uint64_t)n;
	return sim_wl_add_op(w, &op);
}

static int close_loop(struct sim_wl *w, int at)
{
	struct sim_op e = { .kind = OP_END, .arg = at };
	int end = sim_wl_add_op(w, &e);
	if (end < 0)
		return -1;
	w->ops[at].arg = end;
	return end;
}

static bool known_task_key(const char *k)
{
	static const char *const keys[] = { "instance", "loop", "cpus", "priority", "nice",
					    "policy", "phases", NULL };
	for (int i = 0; keys[i]; i++)
		if (!strcmp(k, keys[i]))
			return true;
	return key_is(k, "run") || key_is(k, "runtime") || key_is(k, "sleep") || key_is(k, "timer");
}

static int task(struct sim_wl *w, const char *name, json_t *t, char *err, size_t errlen)
{
	struct sim_group *g = &w->groups[w->ngroups++];
	char path[128], f[256];
	const char *k;
	json_t *v, *phases;
	int timed = 0, at;

	snprintf(path, sizeof(path), "tasks.%.60s", name);
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%.63s", name);
	snprintf(g->comm, sizeof(g->comm), "%.15s", name);
	g->count = 1;
	g->weight = 100;
	g->aff = calloc(MAX_CPUS / 64, sizeof(uint64_t));
	if (!g->aff)
		return rerr(w, err, errlen, path, "out of memory");
	if (!json_is_object(t))
		return rerr(w, err, errlen, path, "expected an object");
	json_object_foreach(t, k, v) {
		snprintf(f, sizeof(f), "%s.%s", path, k);
		if (!known_task_key(k))
			return rerr(w, err, errlen, f, "unknown key (instance, loop, run, runtime, "
				    "sleep, timer, cpus, priority, nice, policy, phases)");
		if (!strcmp(k, "instance")) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 100000)
				return rerr(w, err, errlen, f, "expected a count in [0, 100000]");
			g->count = (int)json_integer_value(v);
		} else if (!strcmp(k, "priority") || !strcmp(k, "nice")) {
			if (!json_is_integer(v) || json_integer_value(v) < -20 ||
			    json_integer_value(v) > 19)
				return rerr(w, err, errlen, f, "a SCHED_OTHER priority is a nice value "
					    "in [-20, 19]");
			g->nice = (int)json_integer_value(v);
			g->weight = sim_nice_weight(g->nice);
		} else if (!strcmp(k, "policy")) {
			if (!json_is_string(v) || strcmp(json_string_value(v), "SCHED_OTHER"))
				return rerr(w, err, errlen, f, "only SCHED_OTHER tasks are simulated "
					    "(sched_ext schedules the fair class)");
		} else if (!strcmp(k, "cpus")) {
			size_t i;
			json_t *c;
			if (!json_is_array(v) || !json_array_size(v))
				return rerr(w, err, errlen, f, "expected a list of CPU ids");
			json_array_foreach(v, i, c) {
				long long id = json_is_integer(c) ? json_integer_value(c) : -1;
				if (id < 0 || id >= w->nr_cpus)
					return rerr(w, err, errlen, f, "a CPU id is not below the "
						    "simulated CPUs (global.sim_cpus)");
				if (!(g->aff[id / 64] & (1ull << (id % 64))))
					g->nr_allowed++;
				g->aff[id / 64] |= 1ull << (id % 64);
			}
		}
	}
	if (!g->nr_allowed) {
		for (int c = 0; c < w->nr_cpus; c++)
			g->aff[c / 64] |= 1ull << (c % 64);
		g->nr_allowed = w->nr_cpus;
	}
	snprintf(f, sizeof(f), "%s.loop", path);
	g->op0 = w->nops;
	at = open_loop(w, json_object_get(t, "loop"), -1, f, err, errlen);
	if (at < 0)
		return at == -1 ? rerr(w, err, errlen, f, "out of memory") : G_ERR_PARSE;
	phases = json_object_get(t, "phases");
	if (phases) {
		if (!json_is_object(phases))
			return rerr(w, err, errlen, path, "phases: expected an object of phases");
		json_object_foreach(phases, k, v) {
			char pp[200];
			snprintf(pp, sizeof(pp), "%s.phases.%.60s", path, k);
			if (!json_is_object(v))
				return rerr(w, err, errlen, pp, "expected an object");
			json_t *pk;
			const char *kk;
			json_object_foreach(v, kk, pk) {
				if (strcmp(kk, "loop") && !key_is(kk, "run") && !key_is(kk, "runtime") &&
				    !key_is(kk, "sleep") && !key_is(kk, "timer")) {
					snprintf(f, sizeof(f), "%s.%s", pp, kk);
					return rerr(w, err, errlen, f, "unknown key (loop, run, runtime, "
						    "sleep, timer)");
				}
			}
			snprintf(f, sizeof(f), "%s.loop", pp);
			int pat = open_loop(w, json_object_get(v, "loop"), 1, f, err, errlen);
			if (pat < 0)
				return G_ERR_PARSE;
			if (events(w, v, pp, &timed, err, errlen) || close_loop(w, pat) < 0)
				return G_ERR_PARSE;
		}
	} else if (events(w, t, path, &timed, err, errlen)) {
		return G_ERR_PARSE;
	}
	if (close_loop(w, at) < 0)
		return rerr(w, err, errlen, path, "out of memory");
	g->nops = w->nops - g->op0;
	if (!timed)
		return rerr(w, err, errlen, path, "no run, sleep or timer event: nothing to simulate");
	return G_OK;
}

int sim_wl_load_rtapp(struct sim_wl *w, const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *tasks, *global, *v;
	const char *k;
	int rc = G_ERR_PARSE;

	sim_wl_defaults(w);
	snprintf(w->file, sizeof(w->file), "%s", path);
	snprintf(w->name, sizeof(w->name), "%.63s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	root = json_load_file(path, 0, &je);
	if (!root) {
		if (je.line < 1)
			set_err(err, errlen, "%s: %s", path, je.text);
		else
			set_err(err, errlen, "%s:%d: JSON syntax error: %s", path, je.line, je.text);
		return je.line < 1 ? G_ERR_IO : G_ERR_PARSE;
	}
	if (!json_is_object(root)) {
		rerr(w, err, errlen, "(top level)", "expected an object with tasks and global");
		goto out;
	}
	json_object_foreach(root, k, v) {
		if (strcmp(k, "tasks") && strcmp(k, "global") && strcmp(k, "resources")) {
			rerr(w, err, errlen, k, "unknown key (tasks, global, resources)");
			goto out;
		}
	}
	global = json_object_get(root, "global");
	if (global) {
		if (!json_is_object(global)) {
			rerr(w, err, errlen, "global", "expected an object");
			goto out;
		}
		json_object_foreach(global, k, v) {
			char f[128];
			snprintf(f, sizeof(f), "global.%s", k);
			if (!strcmp(k, "duration")) {
				if (!json_is_integer(v) || json_integer_value(v) < 1 ||
				    json_integer_value(v) > 3600) {
					rerr(w, err, errlen, f, "expected whole seconds in [1, 3600] (-1, "
					     "forever, cannot be simulated)");
					goto out;
				}
				w->duration_ns = (uint64_t)json_integer_value(v) * 1000000000ull;
			} else if (!strcmp(k, "sim_cpus")) {
				if (!json_is_integer(v) || json_integer_value(v) < 1 ||
				    json_integer_value(v) > MAX_CPUS) {
					rerr(w, err, errlen, f, "expected a CPU count in [1, 1024]");
					goto out;
				}
				w->nr_cpus = (int)json_integer_value(v);
			} else if (!strcmp(k, "sim_hz")) {
				if (!json_is_integer(v) || json_integer_value(v) < 100 ||
				    json_integer_value(v) > 10000) {
					rerr(w, err, errlen, f, "expected HZ in [100, 10000]");
					goto out;
				}
				w->hz = (int)json_integer_value(v);
			} else if (!strcmp(k, "sim_timer_slack")) {
				if (!json_is_integer(v) || json_integer_value(v) < 0 ||
				    json_integer_value(v) > (json_int_t)(SIM_SLACK_MAX_NS / 1000)) {
					rerr(w, err, errlen, f, "expected whole microseconds in [0, "
					     "1000000] (0 = exact wake-ups)");
					goto out;
				}
				w->timer_slack_ns = (uint64_t)json_integer_value(v) * 1000ull;
			} else if (!strcmp(k, "sim_seed")) {
				if (!json_is_integer(v) || json_integer_value(v) < 0) {
					rerr(w, err, errlen, f, "expected a whole number");
					goto out;
				}
				w->seed = (uint64_t)json_integer_value(v);
			} else if (!strcmp(k, "default_policy")) {
				if (!json_is_string(v) || strcmp(json_string_value(v), "SCHED_OTHER")) {
					rerr(w, err, errlen, f, "only SCHED_OTHER is simulated");
					goto out;
				}
			}
			/* calibration, logdir, log_basename, lock_pages, ftrace, gnuplot, pi_enabled,
			 * io_device, mem_buffer_size, cumulative_slack (a report option, not the
			 * timer slack): host-side rt-app settings with no meaning in a simulation */
		}
	}
	tasks = json_object_get(root, "tasks");
	if (!json_is_object(tasks) || !json_object_size(tasks)) {
		rerr(w, err, errlen, "tasks", "missing or empty: an object of tasks");
		goto out;
	}
	w->groups = calloc(json_object_size(tasks), sizeof(*w->groups));
	if (!w->groups) {
		rerr(w, err, errlen, "tasks", "out of memory");
		goto out;
	}
	json_object_foreach(tasks, k, v) {
		if (task(w, k, v, err, errlen))
			goto out;
	}
	rc = sim_wl_finish(w, err, errlen);
out:
	json_decref(root);
	if (rc)
		sim_wl_free(w);
	return rc;
}
