/* SPDX-License-Identifier: GPL-2.0 */
/*
 * main.c - gthulhu-lua: command line, staged startup and shutdown (the run loop is run.c).
 *
 * Startup order matters: config and policy are checked before anything touches the
 * kernel, so a typo never attaches a scheduler that immediately detaches; the BPF object
 * is opened and configured (rodata) before the policy is loaded (the policy gets the
 * idle-CPU bitmap that lives in the BPF .bss), and attached last.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "paths.h"
#include "run.h"
#include "version.h"
#include "sim/sim.h"

int g_verbose;

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: gthulhu-lua [-c FILE] [--check] [--dry-run] [--stats[=SEC]] [--record FILE] [-v] [--version] [--help] POLICY.lua\n"
		"       gthulhu-lua simulate [OPTIONS] WORKLOAD POLICY.lua [POLICY2.lua ...]   (see simulate --help)\n"
		"       gthulhu-lua replay [OPTIONS] FILE POLICY.lua                           (see replay --help)\n"
		"\n"
		"A sched_ext CPU scheduler whose policy is a LuaJIT script.\n"
		"\n"
		"  -c, --config FILE   YAML config (default: built-in defaults; see config/config.yaml)\n"
		"      --check         validate config and policy (load, init, self-test batch);\n"
		"                      no BPF, no root needed\n"
		"      --dry-run       run everything but the BPF side on synthetic tasks\n"
		"                      (dryrun.* keys); no sched_ext, no root needed\n"
		"  -s, --stats[=SEC]   print the counters on one line every SEC seconds (default 1)\n"
		"      --record FILE   record every batch and its decisions (replay FILE POLICY.lua)\n"
		"  -v, --verbose       more output (repeat for debug)\n"
		"      --version       print the versions (libbpf, LuaJIT, kernel) and sched_ext state\n"
		"  -h, --help          this text\n"
		"\n"
		"POLICY.lua defaults to the config's scheduler.policy. Signals: SIGINT/SIGTERM detach\n"
		"and exit 0; SIGHUP reloads the policy (so does saving the policy file).\n"
		"\n"
		"Exit codes: 0 ok, 2 usage, 3 config, 4 policy, 5 not root, 6 no sched_ext,\n"
		"7 another sched_ext scheduler loaded, 8 BPF load/attach, 9 ejected by the kernel.\n"
		"\n"
		"Config keys:\n");
	cfg_print_help(out);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_CHECK = 1000, OPT_VERSION, OPT_DRY_RUN, OPT_TEST_FAULT, OPT_RECORD };
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "stats", optional_argument, NULL, 's' },
		{ "record", required_argument, NULL, OPT_RECORD },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		/* hidden, for the test suite only (tests/vm "watchdog"): break the BPF side on
		 * purpose. An option, not an environment variable, so nothing inherits it. */
		{ "test-fault", required_argument, NULL, OPT_TEST_FAULT },
		{ 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "c:s::vh", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->cfg_file = optarg;
			break;
		case OPT_CHECK:
			o->check = true;
			break;
		case OPT_DRY_RUN:
			o->dry_run = true;
			break;
		case OPT_RECORD:
			o->record = optarg;
			break;
		case 's': {
			/* SEC attached (-s4, --stats=4) or, as most tools accept, the next word
			 * when it is a number (-s 4, --stats 4); any other next word is the policy. */
			const char *arg = optarg, *how = "=";
			char *end;
			long v = 1;

			if (!arg && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9') {
				arg = argv[optind++];
				how = " ";
			}
			if (arg) {
				errno = 0;
				v = strtol(arg, &end, 10);
				if (errno || *end || v < 1 || v > 3600) {
					g_err("--stats%s%s: expected whole seconds in [1, 3600]", how, arg);
					return EXIT_USAGE;
				}
			}
			o->stats_sec = (int)v;
			break;
		}
		case OPT_TEST_FAULT: {
			char err[256];

			if (sched_set_fault(optarg, err, sizeof(err))) {
				g_err("%s", err);
				return EXIT_USAGE;
			}
			break;
		}
		case 'v':
			g_verbose++;
			break;
		case OPT_VERSION:
			version_print(stdout);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'gthulhu-lua --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		o->policy = argv[optind++];
	if (optind < argc) {
		g_err("unexpected argument '%s' (one policy file only)", argv[optind]);
		return EXIT_USAGE;
	}
	return 0;
}


static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && g_verbose < 2)
		return 0;
	if (level == LIBBPF_INFO && g_verbose < 1)
		return 0;
	g_vlogf(2, fmt, ap);
	return 0;
}

/* Topology: sysfs, or every CPU on its own if sysfs cannot be read (a warning). */
static void read_topology(void)
{
	char err[512];

	if (topo_read(&g_host.topo, g_host.cfg.topology_root, err, sizeof(err)) == G_OK &&
	    g_host.topo.nr_cpus > 0)
		return;
	g_warn("topology: %s; treating every CPU as its own cache domain", err);
	memset(&g_host.topo, 0, sizeof(g_host.topo));
	g_host.topo.nr_cpus = (int)sysconf(_SC_NPROCESSORS_CONF);
	if (g_host.topo.nr_cpus < 1)
		g_host.topo.nr_cpus = 1;
	if (g_host.topo.nr_cpus > MAX_CPUS)
		g_host.topo.nr_cpus = MAX_CPUS;
	for (int i = 0; i < g_host.topo.nr_cpus; i++) {
		g_host.topo.online[i] = 1;
		g_host.topo.cpu[i].nr_l2 = g_host.topo.cpu[i].nr_l3 = 1;
		g_host.topo.cpu[i].l2[0] = g_host.topo.cpu[i].l3[0] = (uint16_t)i;
	}
}

static int run_check(const char *policy)
{
	struct pol_env env;
	struct pol *pol = NULL;
	char err[2048];
	int rc = 0;

	run_pol_env(&env, NULL);
	if (pol_open(&pol, policy, &env, err, sizeof(err))) {
		g_err("%s", err);
		return EXIT_POLICY;
	}
	run_push_strategies(pol, true);
	if (pol_selftest(pol, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_POLICY;
	} else {
		printf("gthulhu-lua: check OK: config %s, policy %s, %d CPUs, %d strategies\n",
		       g_host.cfg.file[0] ? g_host.cfg.file : "(built-in defaults)", policy,
		       g_host.topo.nr_cpus, g_host.strat.nr_resolved);
	}
	pol_close(pol);
	return rc;
}

/* Staged startup, one teardown: every stage's undo is NULL-safe (or safe on what was never
 * set up), so every exit after the command line goes through cleanup: in reverse order. */
int main(int argc, char **argv)
{
	struct opts o;
	const char *policy;
	char err[4096];
	char *carry = NULL;
	size_t carry_len = 0;
	bool restart;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The simulator and replay (host/sim, host/rec): no BPF, no root, their own options. */
	if (argc > 1 && !strcmp(argv[1], "simulate"))
		return sim_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "replay"))
		return rec_replay_main(argc - 1, argv + 1);
	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;

	cfg_defaults(&g_host.cfg);
	if (o.cfg_file && cfg_load_file(&g_host.cfg, o.cfg_file, stderr, err, sizeof(err))) {
		fprintf(stderr, "gthulhu-lua: config error: %s\n", err);
		rc = EXIT_CONFIG;
		goto cleanup;
	}
	if (g_verbose >= 1)
		cfg_dump(&g_host.cfg, stderr);
	policy = o.policy ? o.policy : g_host.cfg.policy;
	if (!policy[0]) {
		g_err("no policy given (argument or scheduler.policy); try --help");
		rc = EXIT_USAGE;
		goto cleanup;
	}
	if (access(policy, R_OK)) {
		/* The config's policy (a relative default) outside a checkout: the installed one. */
		static char installed[PATH_MAX];
		int e = errno;

		if (o.policy || !path_find_data(policy, installed, sizeof(installed))) {
			g_err("policy %s: %s", policy, strerror(e));
			rc = EXIT_POLICY;
			goto cleanup;
		}
		g_info("policy %s not in %s: using the installed %s", policy, "the current directory",
		       installed);
		policy = installed;
	}
	read_topology();
	if (o.dry_run && !o.check &&
	    dryrun_open(&g_host.dry, &g_host.cfg, g_host.topo.nr_cpus, err, sizeof(err))) {
		fprintf(stderr, "gthulhu-lua: config error: %s: %s\n",
			g_host.cfg.file[0] ? g_host.cfg.file : "config", err);
		rc = EXIT_CONFIG;
		goto cleanup;
	}
	if (strat_init(&g_host.strat, g_host.cfg.strategies, g_host.cfg.nr_strategies,
		       g_host.dry.tasks ? dryrun_proc_root(&g_host.dry) : "/proc", err, sizeof(err))) {
		fprintf(stderr, "gthulhu-lua: config error: %s\n", err);
		rc = EXIT_CONFIG;
		goto cleanup;
	}

	if (o.check) {
		rc = run_check(policy);
		goto cleanup;
	}

	rc = o.dry_run ? 0 : sched_preflight(err, sizeof(err));
	if (rc) {
		g_err("%s", err);
		goto cleanup;
	}
	libbpf_set_print(libbpf_print);
	/* Before any thread exists (the log writer, the API's, the recorder's): the signal
	 * mask is inherited, so SIGINT/SIGTERM/SIGHUP only ever reach the signalfd. An API
	 * thread started earlier took SIGHUP with its default action: the process died. */
	if (run_open(err, sizeof(err)) || log_start(err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_BPF;
		goto cleanup;
	}
	if (api_start(&g_host.api, &g_host.cfg, g_host.strat.proc_root, err, sizeof(err))) {
		g_logf(2, "gthulhu-lua: config error: %s\n", err);
		rc = EXIT_CONFIG;
		goto cleanup;
	}
	if (o.record) {
		struct rec_info ri;

		memset(&ri, 0, sizeof(ri));
		ri.nr_cpus = (uint32_t)g_host.topo.nr_cpus;
		ri.batch_max = g_host.cfg.batch_max;
		ri.slice_ns_default = g_host.cfg.slice_ns_default;
		ri.slice_ns_min = g_host.cfg.slice_ns_min;
		snprintf(ri.source, sizeof(ri.source), o.dry_run ? "dry-run" : "live");
		snprintf(ri.policy, sizeof(ri.policy), "%.184s", policy);
		g_host.recw = rec_writer_open(o.record, &ri, NULL, NULL, err, sizeof(err));
		if (!g_host.recw) {
			g_err("--record: %s", err);
			rc = EXIT_USAGE;
			goto cleanup;
		}
	}
	do {
		rc = run_once(&o, policy, &restart, &carry, &carry_len);
		if (restart) {
			/* CPU hotplug: the CPUs and caches are not what they were. */
			read_topology();
			int online = 0;
			for (int c = 0; c < g_host.topo.nr_cpus; c++)
				online += g_host.topo.online[c];
			g_logf(2, "gthulhu-lua: the kernel asked for a restart; restarting (topology "
			       "re-read: %d CPUs, %d online; hotplug_seq %llu)\n", g_host.topo.nr_cpus,
			       online, (unsigned long long)sched_hotplug_seq());
		}
	} while (restart && !run_stopping());
cleanup:
	api_stop(g_host.api);
	g_host.api = NULL;
	if (g_host.recw) {
		uint64_t nb = rec_writer_batches(g_host.recw);

		if (rec_writer_close(g_host.recw, err, sizeof(err))) {
			g_err("--record: %s", err);
			rc = rc ? rc : EXIT_FAILURE;
		} else {
			g_logf(2, "gthulhu-lua: recorded %llu batches in %s\n",
			       (unsigned long long)nb, o.record);
		}
		g_host.recw = NULL;
	}
	free(carry);
	log_stop(1000);
	run_close();
	strat_free(&g_host.strat);
	dryrun_close(&g_host.dry);
	return rc;
}
