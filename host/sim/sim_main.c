/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sim_main.c - `gthulhu-lua simulate [OPTIONS] WORKLOAD POLICY.lua [POLICY2.lua ...]`:
 * every policy runs the same workload with the same seed on a fresh simulated machine;
 * the results are printed side by side (table or --json), optionally plotted (--svg) and
 * traced (--trace). Exit codes: 0 ok, 2 usage, 3 workload error, 4 policy error (load
 * failure, or schedule() raised during the run), 10 simulated stall.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "sim.h"
#include "../rec/rec.h"

#define SIM_MAX_POLICIES 16
#define SIM_POL_SOFT_MS 5000u    /* a schedule() call interrupted after this (interpreted) */
#define SIM_POL_HARD_MS 20000u   /* stuck in compiled code this long: the process ends */

static void sim_usage(FILE *out)
{
	fprintf(out,
		"Usage: gthulhu-lua simulate [OPTIONS] WORKLOAD POLICY.lua [POLICY2.lua ...]\n"
		"\n"
		"Run a workload (YAML, or rt-app .json) on a simulated sched_ext machine with each\n"
		"policy; no root, no BPF. Output: a table (or --json) on stdout.\n"
		"\n"
		"      --json          JSON instead of the table (schema: README)\n"
		"      --svg FILE      latency CDFs and CPU shares of every policy, side by side\n"
		"      --trace FILE    Chrome/Perfetto trace: one track per CPU with the task slices\n"
		"      --record FILE   record the queued stream and decisions (one policy only)\n"
		"      --seed N        override the workload's seed\n"
		"      --duration D    override the workload's duration (e.g. 500ms)\n"
		"      --measure       add the policy's measured real cost to the output (varies\n"
		"                      run to run; everything else is deterministic)\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit codes: 0 ok, 2 usage, 3 workload error, 4 policy error, 10 simulated stall.\n");
}

int sim_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "svg", required_argument, NULL, 'S' },
		{ "trace", required_argument, NULL, 'T' },
		{ "record", required_argument, NULL, 'R' },
		{ "seed", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "measure", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *svg = NULL, *trace = NULL, *record = NULL, *seed_s = NULL, *dur_s = NULL;
	bool json = false, measure = false;
	struct sim_wl w;
	struct sim_result *res[SIM_MAX_POLICIES] = { 0 };
	struct sim_trace *tr = NULL;
	char err[4096];
	int c, np, rc = 0, nres = 0;
	bool wl_loaded = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'S': svg = optarg; break;
		case 'T': trace = optarg; break;
		case 'R': record = optarg; break;
		case 's': seed_s = optarg; break;
		case 'd': dur_s = optarg; break;
		case 'm': measure = true; break;
		case 'h': sim_usage(stdout); return 0;
		default:
			fprintf(stderr, "Try 'gthulhu-lua simulate --help'.\n");
			return EXIT_USAGE;
		}
	}
	np = argc - optind - 1;
	if (np < 1) {
		g_err("simulate: needs a workload and at least one policy; try 'gthulhu-lua "
		      "simulate --help'");
		return EXIT_USAGE;
	}
	if (np > SIM_MAX_POLICIES) {
		g_err("simulate: at most %d policies at once", SIM_MAX_POLICIES);
		return EXIT_USAGE;
	}
	if (record && np != 1) {
		g_err("simulate: --record takes one policy (one run)");
		return EXIT_USAGE;
	}
	if (sim_wl_load(&w, argv[optind], err, sizeof(err))) {
		g_err("workload: %s", err);
		return EXIT_CONFIG;
	}
	wl_loaded = true;
	if (seed_s) {
		char *end;
		errno = 0;
		w.seed = strtoull(seed_s, &end, 0);
		if (errno || *end || !*seed_s) {
			g_err("simulate: --seed %s: expected a whole number", seed_s);
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (dur_s && (sim_parse_duration(dur_s, &w.duration_ns) || w.duration_ns < 1000000)) {
		g_err("simulate: --duration %s: expected a duration of at least 1ms (e.g. 500ms)", dur_s);
		rc = EXIT_USAGE;
		goto out;
	}
	if (trace && !(tr = sim_trace_open(trace, err, sizeof(err)))) {
		g_err("simulate: --trace: %s", err);
		rc = EXIT_USAGE;
		goto out;
	}

	for (int k = 0; k < np; k++) {
		const char *policy = argv[optind + 1 + k];
		struct sim *s = NULL;
		struct pol *pol = NULL;
		struct pol_env env;
		struct rec_writer *rw = NULL;
		static struct strat_entry se[8192];
		int run_rc;
		uint64_t t0;

		if (sim_open(&s, &w, w.seed, err, sizeof(err))) {
			g_err("%s", err);
			rc = EXIT_FAILURE;
			goto out;
		}
		sim_pol_env(s, &env);
		if (pol_open(&pol, policy, &env, err, sizeof(err))) {
			g_err("%s", err);
			sim_close(s);
			rc = EXIT_POLICY;
			goto out;
		}
		/* Wider call limits than a live run's 200 ms / 3 s: they are wall time, and a
		 * loaded machine must not cut a call and change a deterministic result. */
		pol_set_limits(pol, SIM_POL_SOFT_MS, SIM_POL_HARD_MS);
		int ns = sim_strategies(s, se, (int)(sizeof(se) / sizeof(se[0])));
		if (ns && pol_set_strategies(pol, se, ns))
			g_warn("policy %s: on_strategies() failed: %s", policy, pol_last_error(pol));
		if (record) {
			struct rec_info ri;
			memset(&ri, 0, sizeof(ri));
			ri.nr_cpus = (uint32_t)w.nr_cpus;
			ri.batch_max = (uint32_t)w.batch_max;
			ri.slice_ns_default = w.slice_ns_default;
			ri.slice_ns_min = w.slice_ns_min;
			snprintf(ri.source, sizeof(ri.source), "sim");
			snprintf(ri.policy, sizeof(ri.policy), "%.184s", policy);
			rw = rec_writer_open(record, &ri, sim_clock(s), env.idle, err, sizeof(err));
			if (!rw) {
				g_err("simulate: --record: %s", err);
				pol_close(pol);
				sim_close(s);
				rc = EXIT_USAGE;
				goto out;
			}
		}
		sim_trace_begin_policy(tr, k, policy, w.nr_cpus);
		t0 = g_now_ns();
		run_rc = sim_run(s, pol, tr, rw ? rec_writer_batch : NULL, rw, err, sizeof(err));
		double real = (g_now_ns() - t0) / 1e9;
		const struct sim_counters *cn = sim_counters(s);
		const struct pol_stats *ps = pol_stats(pol);
		char msg[512] = "";
		int code = 0;
		if (run_rc == SIM_EXIT_STALL) {
			snprintf(msg, sizeof(msg), "%.500s", err);
			code = SIM_EXIT_STALL;
		} else if (ps->errors) {
			snprintf(msg, sizeof(msg), "policy raised %llu error(s); the host's fallback "
				 "decided those batches. Last: %.300s", (unsigned long long)ps->errors,
				 pol_last_error(pol));
			code = EXIT_POLICY;
		}
		if (code)
			g_err("simulate: %s: %s", policy, msg);
		fprintf(stderr, "gthulhu-lua: simulate: %s: %.3f s simulated in %.3f s real, "
			"%llu decisions (%.0f/s), policy %.1f ns/task (measured)\n", policy,
			sim_elapsed(s) / 1e9, real, (unsigned long long)cn->nr_tasks,
			real > 0 ? cn->nr_tasks / real : 0,
			cn->nr_tasks ? (double)cn->cost_ns / cn->nr_tasks : 0);
		if (rw && rec_writer_close(rw, err, sizeof(err))) {
			g_err("simulate: --record: %s", err);
			if (!code)
				code = EXIT_FAILURE;
		}
		res[nres] = sim_result_new(s, &w, policy, ps, code, msg);
		if (res[nres] && sim_result_fallback_share(res[nres]) >= SIM_FALLBACK_WARN) {
			/* Loud: in the table such a run just looks like a slow policy. */
			char fb[160];
			const char *last = pol_last_rejected(pol);
			sim_result_fallback_text(res[nres], fb, sizeof(fb));
			g_warn("simulate: %s: %s: %llu rejected%s%.160s%s, %llu raised batches; "
			       "those tasks ran on the built-in decision, not the policy's", policy, fb,
			       (unsigned long long)ps->bad_decisions,
			       ps->bad_decisions && *last ? " (last: " : "",
			       ps->bad_decisions ? last : "", ps->bad_decisions && *last ? ")" : "",
			       (unsigned long long)ps->errors);
		}
		pol_close(pol);
		sim_close(s);
		if (!res[nres]) {
			g_err("simulate: out of memory");
			rc = EXIT_FAILURE;
			goto out;
		}
		nres++;
		if (code == SIM_EXIT_STALL || (code && rc != SIM_EXIT_STALL))
			rc = code;
	}
	if (json)
		sim_report_json(stdout, &w, res, nres, measure);
	else
		sim_report_table(stdout, &w, res, nres, measure);
	fflush(stdout);
	if (svg && sim_report_svg(svg, &w, res, nres, err, sizeof(err))) {
		g_err("simulate: --svg: %s", err);
		if (!rc)
			rc = EXIT_FAILURE;
	}
out:
	if (sim_trace_close(tr) && !rc) {
		g_err("simulate: --trace %s: write error", trace);
		rc = EXIT_FAILURE;
	}
	for (int k = 0; k < nres; k++)
		sim_result_free(res[k]);
	if (wl_loaded)
		sim_wl_free(&w);
	return rc;
}
