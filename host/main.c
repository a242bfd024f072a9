/* SPDX-License-Identifier: GPL-2.0 */
/*
 * main.c - gthulhu-lua: command line, staged startup, the run loop and shutdown.
 *
 * Startup order matters: config and policy are checked before anything touches the
 * kernel, so a typo never attaches a scheduler that immediately detaches; the BPF object
 * is opened and configured (rodata) before the policy is loaded (the policy gets the
 * idle-CPU bitmap that lives in the BPF .bss), and attached last.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "cfg.h"
#include "loop.h"
#include "pol.h"
#include "sched_bpf.h"
#include "strat.h"
#include "topo.h"
#include "sim/sim.h"
#include "rec/rec.h"

int g_verbose;

static volatile sig_atomic_t stop_req, reload_req;

/* Large, fixed-size state: static, so it is never on the stack and never allocated. */
static struct cfg cfg;
static struct topo topo;
static struct strat strat;
static struct sched sch;
static struct rec_writer *recw;   /* --record FILE (host/rec), or NULL */

struct opts {
	const char *cfg_file;
	const char *policy;
	bool check;
	int stats_sec;      /* 0 = no stats */
	const char *record; /* --record FILE */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: gthulhu-lua [-c FILE] [--check] [--stats[=SEC]] [--record FILE] [-v] [--version] [--help] POLICY.lua\n"
		"       gthulhu-lua simulate [OPTIONS] WORKLOAD POLICY.lua [POLICY2.lua ...]   (see simulate --help)\n"
		"       gthulhu-lua replay [OPTIONS] FILE POLICY.lua                           (see replay --help)\n"
		"\n"
		"A sched_ext CPU scheduler whose policy is a LuaJIT script.\n"
		"\n"
		"  -c, --config FILE   YAML config (default: built-in defaults; see config/config.yaml)\n"
		"      --check         validate config and policy (load, init, self-test batch);\n"
		"                      no BPF, no root needed\n"
		"  -s, --stats[=SEC]   print the counters on one line every SEC seconds (default 1)\n"
		"      --record FILE   record every batch and its decisions (replay FILE POLICY.lua)\n"
		"  -v, --verbose       more output (repeat for debug)\n"
		"      --version       print the version\n"
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
	enum { OPT_CHECK = 1000, OPT_VERSION, OPT_RECORD };
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "stats", optional_argument, NULL, 's' },
		{ "record", required_argument, NULL, OPT_RECORD },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
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
		case OPT_RECORD:
			o->record = optarg;
			break;
		case 's': {
			char *end;
			long v = 1;

			if (optarg) {
				errno = 0;
				v = strtol(optarg, &end, 10);
				if (errno || *end || v < 1 || v > 3600) {
					g_err("--stats=%s: expected whole seconds in [1, 3600]", optarg);
					return EXIT_USAGE;
				}
			}
			o->stats_sec = (int)v;
			break;
		}
		case 'v':
			g_verbose++;
			break;
		case OPT_VERSION:
			printf("gthulhu-lua %s\n", GTHULHU_VERSION);
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
	return vfprintf(stderr, fmt, ap);
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_req = 1;
	else
		stop_req = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: epoll_wait returns EINTR at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* Topology: sysfs, or every CPU on its own if sysfs cannot be read (a warning). */
static void read_topology(void)
{
	char err[512];

	if (topo_read(&topo, cfg.topology_root, err, sizeof(err)) == G_OK && topo.nr_cpus > 0)
		return;
	g_warn("topology: %s; treating every CPU as its own cache domain", err);
	memset(&topo, 0, sizeof(topo));
	topo.nr_cpus = (int)sysconf(_SC_NPROCESSORS_CONF);
	if (topo.nr_cpus < 1)
		topo.nr_cpus = 1;
	if (topo.nr_cpus > MAX_CPUS)
		topo.nr_cpus = MAX_CPUS;
	for (int i = 0; i < topo.nr_cpus; i++) {
		topo.online[i] = 1;
		topo.cpu[i].nr_l2 = topo.cpu[i].nr_l3 = 1;
		topo.cpu[i].l2[0] = topo.cpu[i].l3[0] = (uint16_t)i;
	}
}

static void pol_env_fill(struct pol_env *env, volatile uint64_t *idle)
{
	memset(env, 0, sizeof(*env));
	env->nr_cpus = topo.nr_cpus;
	env->slice_ns_default = cfg.slice_ns_default;
	env->slice_ns_min = cfg.slice_ns_min;
	env->batch_max = (int)cfg.batch_max;
	env->topo = &topo;
	env->idle = idle;
	env->lib_dir = NULL;  /* <policy dir>/lib, else the installed one */
}

static void push_strategies(struct pol *pol, bool force)
{
	if (strat_refresh(&strat) || force) {
		if (pol_set_strategies(pol, strat.resolved, strat.nr_resolved))
			g_warn("policy on_strategies() failed: %s", pol_last_error(pol));
		else
			g_info("strategies: %d resolved entries", strat.nr_resolved);
	}
}

static int run_check(const char *policy)
{
	struct pol_env env;
	struct pol *pol = NULL;
	char err[2048];
	int rc = 0;

	pol_env_fill(&env, NULL);
	if (pol_open(&pol, policy, &env, err, sizeof(err))) {
		g_err("%s", err);
		return EXIT_POLICY;
	}
	push_strategies(pol, true);
	if (pol_selftest(pol, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_POLICY;
	} else {
		printf("gthulhu-lua: check OK: config %s, policy %s, %d CPUs, %d strategies\n",
		       cfg.file[0] ? cfg.file : "(built-in defaults)", policy, topo.nr_cpus,
		       strat.nr_resolved);
	}
	pol_close(pol);
	return rc;
}

static time_t mtime_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_mtime;
}

static void print_stats(const struct loop *lp, const struct pol *pol)
{
	const struct pol_stats *ps = pol_stats(pol);
	char line[1024];

	sched_format_stats(&sch, line, sizeof(line));
	printf("stats: %s nr_batches=%llu nr_tasks=%llu max_batch=%llu nr_policy_errors=%llu "
	       "nr_policy_fallbacks=%llu nr_bad_decisions=%llu nr_reloads=%llu\n",
	       line, (unsigned long long)lp->st.batches, (unsigned long long)lp->st.tasks,
	       (unsigned long long)lp->st.max_batch, (unsigned long long)ps->errors,
	       (unsigned long long)ps->fallbacks, (unsigned long long)ps->bad_decisions,
	       (unsigned long long)ps->reloads);
	fflush(stdout);
}

/* One attach-run-detach cycle. Sets *restart when the kernel asks for a restart. */
static int run_once(const struct opts *o, const char *policy, bool *restart)
{
	struct pol_env env;
	struct pol *pol = NULL;
	struct loop_src src;
	struct loop lp;
	char err[2048];
	uint64_t now, next_tick, next_stats;
	time_t pol_mtime;
	int rc = 0;

	*restart = false;
	/* 1-2: open and configure */
	if (sched_open(&sch, &cfg, &topo, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_BPF;
		goto cleanup;
	}
	pol_env_fill(&env, sched_idle_mask(&sch));
	if (pol_open(&pol, policy, &env, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_POLICY;
		goto cleanup;
	}
	push_strategies(pol, true);
	/* 3-4: load and attach */
	if (sched_attach(&sch, &topo, err, sizeof(err))) {
		g_err("%s", err);
		if (sched_exited(&sch))
			sched_print_exit(&sch, stderr);
		rc = EXIT_BPF;
		goto cleanup;
	}
	/* Everything the hot path touches is allocated and faulted in by now. */
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		g_warn("mlockall: %s (page faults possible on the hot path)", strerror(errno));
	fprintf(stderr, "gthulhu-lua: attached (ops gthulhu_lua, policy %s, %d CPUs)\n", policy,
		topo.nr_cpus);

	xport_src(&sch.xp, &src);
	loop_init(&lp, pol, &src, (int)cfg.batch_max, sched_heartbeat(&sch));
	if (recw) {
		rec_writer_set_idle(recw, sched_idle_mask(&sch));
		lp.rec.batch = rec_writer_batch;
		lp.rec.ctx = recw;
	}
	pol_mtime = mtime_of(policy);
	now = g_now_ns();
	next_tick = now + 1000000000ull;
	next_stats = now + (uint64_t)o->stats_sec * 1000000000ull;

	while (!stop_req) {
		int r = loop_step(&lp, 100);

		if (r < 0 && r != -EINTR) {
			g_err("transport: %s", strerror(-r));
			rc = EXIT_BPF;
			break;
		}
		if (sched_exited(&sch))
			break;
		if (reload_req) {
			reload_req = 0;
			goto reload;
		}
		now = g_now_ns();
		if (o->stats_sec && now >= next_stats) {
			print_stats(&lp, pol);
			next_stats = now + (uint64_t)o->stats_sec * 1000000000ull;
		}
		if (now < next_tick)
			continue;
		next_tick = now + 1000000000ull;
		push_strategies(pol, false);
		if (mtime_of(policy) == pol_mtime)
			continue;
reload:
		pol_mtime = mtime_of(policy);
		if (pol_reload(pol, NULL, err, sizeof(err)))
			g_err("policy reload rejected, the old policy keeps running: %s", err);
		else
			fprintf(stderr, "gthulhu-lua: policy %s reloaded\n", policy);
	}

	if (o->stats_sec)
		print_stats(&lp, pol);
cleanup:
	sched_destroy(&sch);     /* detach: the kernel fills the exit info now */
	if (sch.skel && sched_exited(&sch)) {
		sched_print_exit(&sch, stderr);
		if (!stop_req && sched_exit_wants_restart(&sch)) {
			*restart = true;
		} else if (!stop_req && sched_exit_is_error(&sch)) {
			rc = rc ? rc : EXIT_SCX_ERROR;
		}
	}
	pol_close(pol);
	sched_free(&sch);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	const char *policy;
	char err[4096];
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

	cfg_defaults(&cfg);
	if (o.cfg_file && cfg_load_file(&cfg, o.cfg_file, stderr, err, sizeof(err))) {
		fprintf(stderr, "gthulhu-lua: config error: %s\n", err);
		return EXIT_CONFIG;
	}
	if (g_verbose >= 1)
		cfg_dump(&cfg, stderr);
	if (cfg.api_enabled)
		g_warn("%s: api.enabled: this version serves no HTTP API yet; the api.* keys are "
		       "checked but nothing listens", cfg.file[0] ? cfg.file : "config");
	policy = o.policy ? o.policy : cfg.policy;
	if (!policy[0]) {
		g_err("no policy given (argument or scheduler.policy); try --help");
		return EXIT_USAGE;
	}
	if (access(policy, R_OK)) {
		g_err("policy %s: %s", policy, strerror(errno));
		return EXIT_POLICY;
	}
	read_topology();
	if (strat_init(&strat, cfg.strategies, cfg.nr_strategies, "/proc", err, sizeof(err))) {
		fprintf(stderr, "gthulhu-lua: config error: %s\n", err);
		return EXIT_CONFIG;
	}

	if (o.check) {
		rc = run_check(policy);
		strat_free(&strat);
		return rc;
	}

	rc = sched_preflight(err, sizeof(err));
	if (rc) {
		g_err("%s", err);
		strat_free(&strat);
		return rc;
	}
	libbpf_set_print(libbpf_print);
	install_signals();
	if (o.record) {
		struct rec_info ri;

		memset(&ri, 0, sizeof(ri));
		ri.nr_cpus = (uint32_t)topo.nr_cpus;
		ri.batch_max = cfg.batch_max;
		ri.slice_ns_default = cfg.slice_ns_default;
		ri.slice_ns_min = cfg.slice_ns_min;
		snprintf(ri.source, sizeof(ri.source), "live");
		snprintf(ri.policy, sizeof(ri.policy), "%.184s", policy);
		recw = rec_writer_open(o.record, &ri, NULL, NULL, err, sizeof(err));
		if (!recw) {
			g_err("--record: %s", err);
			strat_free(&strat);
			return EXIT_USAGE;
		}
	}
	do {
		rc = run_once(&o, policy, &restart);
		if (restart)
			fprintf(stderr, "gthulhu-lua: the kernel asked for a restart; restarting\n");
	} while (restart && !stop_req);
	if (recw) {
		uint64_t nb = rec_writer_batches(recw);

		if (rec_writer_close(recw, err, sizeof(err))) {
			g_err("--record: %s", err);
			rc = rc ? rc : EXIT_FAILURE;
		} else {
			fprintf(stderr, "gthulhu-lua: recorded %llu batches in %s\n",
				(unsigned long long)nb, o.record);
		}
	}
	strat_free(&strat);
	return rc;
}
