/* SPDX-License-Identifier: GPL-2.0 */
/*
 * main.c - gthulhu-lua: command line, staged startup, the run loop and shutdown.
 *
 * Startup order matters: config and policy are checked before anything touches the
 * kernel, so a typo never attaches a scheduler that immediately detaches; the BPF object
 * is opened and configured (rodata) before the policy is loaded (the policy gets the
 * idle-CPU bitmap that lives in the BPF .bss), and attached last.
 *
 * The run loop is one epoll set (struct run: the task source's fd, a signalfd, a 1 s
 * timerfd, the inotify fd) and run_turn(), called once per loop turn: a batch or a wait,
 * then signals, the tick, reload triggers, the reload swap. Something else that must run
 * on the scheduling thread adds its fd with run_add() and its work to run_turn().
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "cfg.h"
#include "api/api.h"
#include "dryrun.h"
#include "loop.h"
#include "paths.h"
#include "pol.h"
#include "sched_bpf.h"
#include "strat.h"
#include "topo.h"
#include "version.h"
#include "watch.h"
#include "sim/sim.h"
#include "rec/rec.h"

#ifndef GTHULHU_DATADIR
#define GTHULHU_DATADIR "/usr/local/share/gthulhu-lua"
#endif

int g_verbose;

/* Set by the run loop from the signalfd (signals are blocked and read, not handled). */
static bool stop_req, reload_req;

/* Large, fixed-size state: static, so it is never on the stack and never allocated. */
static struct cfg cfg;
static struct topo topo;
static struct strat strat;
static struct sched sch;
static struct dryrun dry;   /* --dry-run: synthetic tasks in place of the BPF side */
static struct api *api;     /* HTTP API / decision-maker client, NULL when off */
static struct cfg_strategy merged[CFG_MAX_STRATEGIES];  /* API + config rules */
static struct rec_writer *recw;   /* --record FILE (host/rec), or NULL */

struct opts {
	const char *cfg_file;
	const char *policy;
	bool check;
	bool dry_run;
	int stats_sec;      /* 0 = no stats */
	const char *record; /* --record FILE */
};

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
	env->slice_ns_max = cfg_slice_max_ns(&cfg);
	env->batch_max = (int)cfg.batch_max;
	env->topo = &topo;
	env->idle = idle;
	env->lib_dir = NULL;  /* <policy dir>/lib, else the installed one */
	env->lua_heap_max = (size_t)cfg.lua_heap_max_mb << 20;
}

static void push_strategies(struct pol *pol, bool force)
{
	if (strat_refresh(&strat) || force) {
		api_publish_resolved(api, &strat);
		if (pol_set_strategies(pol, strat.resolved, strat.nr_resolved))
			g_warn("policy on_strategies() failed: %s", pol_last_error(pol));
		else
			g_info("strategies: %d resolved entries", strat.nr_resolved);
	}
}

/* The rules changed (API, SIGHUP): merge API and config rules (api.h), hand them over. */
static void apply_rules(struct pol *pol)
{
	char err[1024];
	int n = api_merge_rules(api, cfg.strategies, cfg.nr_strategies, merged,
				CFG_MAX_STRATEGIES, err, sizeof(err));

	if (n < 0 || strat_set(&strat, merged, n, err, sizeof(err))) {
		g_err("strategies not changed: %s", err);
		return;
	}
	push_strategies(pol, true);
}

/* SIGHUP: read the config file again. Live keys and strategies are applied; keys that
 * need a restart are named and keep their running value. */
static void reload_config(struct pol *pol)
{
	static struct cfg next;
	char err[4096], a[CFG_PATH_MAX], b[CFG_PATH_MAX], why[256];

	if (!cfg.file[0])
		return;
	cfg_defaults(&next);
	if (cfg_load_file(&next, cfg.file, stderr, err, sizeof(err))) {
		g_err("config reload rejected, the running config stays: %s", err);
		return;
	}
	for (int i = 0; i < cfg_nr_keys(); i++) {
		cfg_get_text(&cfg, i, a, sizeof(a));
		cfg_get_text(&next, i, b, sizeof(b));
		if (!strcmp(a, b))
			continue;
		if (cfg_key_live(i))
			cfg_set_text(&cfg, i, b, why, sizeof(why));
		else
			g_warn("%s: %s changed; it needs a restart (still %s)", cfg.file, cfg_key(i), a);
	}
	memcpy(cfg.strategies, next.strategies, sizeof(cfg.strategies));
	cfg.nr_strategies = next.nr_strategies;
	api_config_reloaded(api, &cfg);
	if (dry.tasks)
		dry.rate = cfg.dryrun_rate;
	apply_rules(pol);
	fprintf(stderr, "gthulhu-lua: config %s reloaded (%d strategies)\n", cfg.file,
		cfg.nr_strategies);
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

/* The counters of the stats: line (without "stats: "): one format for --stats and API. */
static void format_stats(const struct loop *lp, const struct pol *pol, char *out, size_t len)
{
	const struct pol_stats *ps = pol_stats(pol);
	char line[1024];

	if (dry.tasks)
		dryrun_format_stats(&dry, line, sizeof(line));
	else
		sched_format_stats(&sch, line, sizeof(line));
	snprintf(out, len, "%s nr_batches=%llu nr_tasks=%llu max_batch=%llu nr_policy_errors=%llu "
		 "nr_policy_fallbacks=%llu nr_bad_decisions=%llu nr_slices_clamped=%llu nr_reloads=%llu "
		 "nr_lua_heap_hits=%llu lua_heap_off=%llu nr_reload_c_tasks=%llu nr_log_dropped=%llu",
		 line, (unsigned long long)lp->st.batches, (unsigned long long)lp->st.tasks,
		 (unsigned long long)lp->st.max_batch, (unsigned long long)ps->errors,
		 (unsigned long long)ps->fallbacks, (unsigned long long)ps->bad_decisions,
		 (unsigned long long)ps->slices_clamped, (unsigned long long)ps->reloads,
		 (unsigned long long)ps->lua_heap_hits, (unsigned long long)ps->lua_heap_disabled,
		 (unsigned long long)ps->reload_c_tasks, (unsigned long long)log_dropped());
}

static void print_stats(const struct loop *lp, const struct pol *pol)
{
	char line[2048];

	format_stats(lp, pol, line, sizeof(line));
	/* Through the log queue: a full or closed stdout never holds the scheduler up. */
	g_printf("stats: %s\n", line);
}

/* ---------------------------------------------------------------------------------- */
/* the run loop: one epoll set                                                        */

/* What the scheduling thread waits on, all in one epoll_wait: the task source (the BPF
 * ringbuf's epoll fd), a signalfd (SIGINT, SIGTERM, SIGHUP: blocked in every thread and
 * read here, so no handler runs in the middle of a batch) and a timerfd ticking once a
 * second (strategies, stats, policy file check). Created once, kept across restarts. */
enum { EV_SRC = 1, EV_SIG, EV_TICK, EV_WATCH };
#define RUN_WAIT_MS 100          /* longest wait: the BPF heartbeat is stamped each turn */
#define RUN_POLL_NS 10000000ull  /* under load (no wait at all): look at signals/timer every 10 ms */

static struct run {
	int epfd, sfd, tfd;
	int src_fd;              /* the source's fd in the set, or -1 (it waits by itself) */
	bool polled;             /* the set was polled this turn */
	bool sig_ready, tick_ready, watch_ready;
	bool watching;           /* inotify on the policy and its library (else mtime per tick) */
	struct watch w;
	uint64_t next_poll;
	unsigned long ticks;
} run = { -1, -1, -1, -1, .w.fd = -1 };

static void run_close(void)
{
	if (run.epfd >= 0)
		close(run.epfd);
	if (run.sfd >= 0)
		close(run.sfd);
	if (run.tfd >= 0)
		close(run.tfd);
	run.epfd = run.sfd = run.tfd = run.src_fd = -1;
}

static int run_add(int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(run.epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Block the signals we read (before any thread exists, so every thread inherits the mask),
 * ignore SIGPIPE, and build the set. */
static int run_open(char *err, size_t errlen)
{
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		goto fail;
	run.epfd = epoll_create1(EPOLL_CLOEXEC);
	run.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	run.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (run.epfd < 0 || run.sfd < 0 || run.tfd < 0 || timerfd_settime(run.tfd, 0, &its, NULL) ||
	    run_add(run.sfd, EV_SIG) || run_add(run.tfd, EV_TICK))
		goto fail;
	return G_OK;
fail:
	set_err(err, errlen, "setting up the run loop (epoll, signalfd, timerfd): %s", strerror(errno));
	run_close();
	return G_ERR;
}

static void run_note(const struct epoll_event *ev, int n, int *src_ready)
{
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == EV_SRC)
			*src_ready = 1;
		else if (ev[i].data.u32 == EV_SIG)
			run.sig_ready = true;
		else if (ev[i].data.u32 == EV_TICK)
			run.tick_ready = true;
		else if (ev[i].data.u32 == EV_WATCH)
			run.watch_ready = true;
	}
	run.polled = true;
}

/* The source's wait, when it has an fd: the whole set at once. */
static int run_wait(void *ctx, int timeout_ms)
{
	struct epoll_event ev[4];
	int ready = 0, n;

	(void)ctx;
	n = epoll_wait(run.epfd, ev, 4, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	run_note(ev, n, &ready);
	return ready;
}

/* Plug the source in: its fd joins the set and run_wait() replaces its wait. */
static void run_attach_src(struct loop_src *src)
{
	int fd = src->poll_fd ? src->poll_fd(src->ctx) : -1;

	run.src_fd = -1;
	if (fd >= 0 && run_add(fd, EV_SRC) == 0) {
		run.src_fd = fd;
		src->wait = run_wait;
	}
}

/* Hot reload trigger: inotify (see watch.h), or the policy's mtime once a second. */
static void run_watch(struct pol *pol, const char *policy)
{
	char err[PATH_MAX + 128];

	run.watching = false;
	if (watch_open(&run.w, policy, pol_lib_dir(pol), err, sizeof(err)) == G_OK &&
	    run_add(run.w.fd, EV_WATCH) == 0) {
		run.watching = true;
		return;
	}
	g_warn("%s; falling back to checking the policy's mtime once a second", err);
	watch_close(&run.w);
}

static void run_unwatch(void)
{
	if (run.w.fd >= 0)
		epoll_ctl(run.epfd, EPOLL_CTL_DEL, run.w.fd, NULL);
	watch_close(&run.w);
	run.watching = false;
}

static void run_detach_src(void)
{
	if (run.src_fd >= 0)
		epoll_ctl(run.epfd, EPOLL_CTL_DEL, run.src_fd, NULL);
	run.src_fd = -1;
}

static void read_signals(void)
{
	struct signalfd_siginfo si;

	while (read(run.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			reload_req = true;
		else
			stop_req = true;
	}
}

/* A reload is built and self-tested on another thread (pol_reload_start) while the old
 * policy schedules on; run_turn() swaps it in between two batches (pol_reload_poll). A
 * trigger while one is being built is kept and started after it. */
static const char *reload_why;      /* the trigger of the reload being built */
static const char *reload_again;    /* a trigger that came while building */

static void reload_policy(struct pol *pol, const char *policy, const char *why)
{
	char err[2048];
	int rc = pol_reload_start(pol, NULL, err, sizeof(err));

	(void)policy;
	if (rc == G_ERR_BUSY)
		reload_again = why;
	else if (rc)
		g_err("policy reload rejected, the old policy keeps running: %s (trigger: %s)", err, why);
	else
		reload_why = why;
}

static void reload_poll(struct pol *pol, const char *policy)
{
	char err[2048];
	int rc = pol_reload_poll(pol, err, sizeof(err));

	if (rc == POL_RELOAD_BUILDING)
		return;
	if (rc == G_OK)
		g_logf(2, "gthulhu-lua: policy %s reloaded (%s)\n", policy, reload_why);
	else if (rc < 0)
		g_err("policy reload rejected, the old policy keeps running: %s (trigger: %s)", err,
		      reload_why);
	if (reload_again) {
		const char *why = reload_again;
		reload_again = NULL;
		reload_policy(pol, policy, why);
	}
}

static time_t mtime_of(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_mtime;
}

/* Once a second: strategies, stats, the policy file. */
static void on_tick(const struct opts *o, struct loop *lp, struct pol *pol, const char *policy,
		    time_t *pol_mtime)
{
	uint64_t exp;

	if (read(run.tfd, &exp, sizeof(exp)) != (ssize_t)sizeof(exp))
		exp = 1;
	run.ticks += exp;
	push_strategies(pol, false);
	if (o->stats_sec && run.ticks % (unsigned long)o->stats_sec < exp)
		print_stats(lp, pol);
	if (run.watching)
		return;
	time_t mt = mtime_of(policy);
	if (mt != *pol_mtime) {
		*pol_mtime = mt;
		reload_policy(pol, policy, "file changed");
	}
}

/* One turn of the run loop: a batch (or a wait), then whatever the set reported. Returns
 * 0 to go on, 1 to stop (signal, source done, kernel exit), < 0 on a source error. */
static int run_turn(const struct opts *o, struct loop *lp, struct pol *pol, const char *policy,
		    time_t *pol_mtime)
{
	int r;

	policy = pol_path(pol);   /* the file now running (the API may have switched it) */

	run.polled = false;
	r = loop_step(lp, RUN_WAIT_MS);
	if (r < 0 && r != -EINTR)
		return r;
	uint64_t now = g_now_ns();
	if (!run.polled && now >= run.next_poll) {   /* busy, or a source without an fd */
		struct epoll_event ev[4];
		int ready = 0, n = epoll_wait(run.epfd, ev, 4, 0);
		if (n > 0)
			run_note(ev, n, &ready);
	}
	if (run.polled)
		run.next_poll = now + RUN_POLL_NS;
	if (run.sig_ready) {
		run.sig_ready = false;
		read_signals();
	}
	if (stop_req)
		return 1;
	if (reload_req) {
		reload_req = false;
		reload_config(pol);          /* SIGHUP: the config file too (strategies, live keys) */
		*pol_mtime = mtime_of(policy);
		reload_policy(pol, policy, "SIGHUP");
	}
	if (run.tick_ready) {
		run.tick_ready = false;
		on_tick(o, lp, pol, policy, pol_mtime);
	}
	if (run.watch_ready) {
		run.watch_ready = false;
		watch_read(&run.w, now);
	}
	if (run.watching && watch_due(&run.w, now))
		reload_policy(pol, policy, "file changed");
	reload_poll(pol, policy);
	if (o->dry_run ? dryrun_done(&dry) : sched_exited(&sch))
		return 1;
	return 0;
}

static void dryrun_print_summary_to(FILE *f, void *d) { dryrun_print_summary(d, f); }
static void sched_print_exit_to(FILE *f, void *s) { sched_print_exit(s, f); }

/* Output of a printer that takes a FILE, through the log queue (so a full or closed
 * stdout/stderr never blocks, even at exit), in pieces of at most one log message. */
static void queue_output(int fd, void (*print)(FILE *, void *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	print(f, arg);
	fclose(f);
	for (size_t off = 0; off < len; ) {
		size_t n = len - off > 1500 ? 1500 : len - off;
		const char *nl = memchr(buf + off, '\n', n);
		if (n == 1500 && nl)    /* cut after a newline when one is in this piece */
			n = (size_t)((const char *)memrchr(buf + off, '\n', n) - (buf + off)) + 1;
		g_logf(fd, "%.*s", (int)n, buf + off);
		off += n;
	}
	free(buf);
}

struct api_fill_ctx {
	const struct loop *lp;
	const struct pol *pol;
};

static void api_fill(struct api_counters *out, void *ctx)
{
	const struct api_fill_ctx *f = ctx;

	format_stats(f->lp, f->pol, out->stats_line, sizeof(out->stats_line));
	out->loop = &f->lp->st;
}

/* One attach-run-detach cycle. Sets *restart when the kernel asks for a restart; then the
 * policy's save() is in *carry (malloc'd) for the next cycle's restore(). */
static int run_once(const struct opts *o, const char *policy, bool *restart, char **carry,
		    size_t *carry_len)
{
	struct pol_env env;
	struct pol *pol = NULL;
	struct loop_src src;
	struct loop lp;
	char err[2048];
	struct api_fill_ctx fill;
	time_t pol_mtime;
	int rc = 0;

	*restart = false;
	/* 1-2: open and configure (a dry run has no BPF side: its source is open already) */
	if (!o->dry_run && sched_open(&sch, &cfg, &topo, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_BPF;
		goto cleanup;
	}
	pol_env_fill(&env, o->dry_run ? dryrun_idle_mask(&dry) : sched_idle_mask(&sch));
	if (pol_open(&pol, policy, &env, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_POLICY;
		goto cleanup;
	}
	apply_rules(pol);
	if (*carry) {   /* state of the policy that ran before the restart */
		if (pol_restore(pol, *carry, *carry_len, err, sizeof(err)))
			g_warn("the policy's state did not survive the restart: %s", err);
		else
			g_logf(2, "gthulhu-lua: restart: the policy's state was restored (%zu bytes)\n",
			       *carry_len);
		free(*carry);
		*carry = NULL;
	}
	if (o->dry_run) {
		g_logf(2, "gthulhu-lua: dry run (no BPF side; policy %s, %d CPUs, %d synthetic "
		       "tasks, at most %u/s)\n", policy, topo.nr_cpus, dry.nr_tasks, cfg.dryrun_rate);
		log_flush(1000);
		dryrun_print_layout(&dry, stderr);
		dryrun_src(&dry, &src);
		goto run;
	}
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
	/* (the stall timeout and heartbeat period: what tests/vm bounds pending_oldest_ms by) */
	g_logf(2, "gthulhu-lua: attached (ops gthulhu_lua, policy %s, %d CPUs, hotplug_seq %llu, "
	       "stall_timeout_ms %u, heartbeat_ms %llu)\n", policy, topo.nr_cpus,
	       (unsigned long long)sch.hotplug_seq, cfg.stall_timeout_ms,
	       (unsigned long long)(bounds_hb_period_ns((uint64_t)cfg.stall_timeout_ms * 1000000ull) /
				    1000000ull));

	xport_src(&sch.xp, &src);
run:
	run_attach_src(&src);
	run_watch(pol, policy);
	loop_init(&lp, pol, &src, (int)cfg.batch_max, o->dry_run ? NULL : sched_heartbeat(&sch));
	if (recw) {
		rec_writer_set_idle(recw, o->dry_run ? dryrun_idle_mask(&dry) : sched_idle_mask(&sch));
		lp.rec.batch = rec_writer_batch;
		lp.rec.ctx = recw;
	}
	pol_mtime = mtime_of(pol_path(pol));
	fill.lp = &lp;
	fill.pol = pol;
	api_set_attached(api, true);
	while (!stop_req) {
		int r = run_turn(o, &lp, pol, policy, &pol_mtime);

		if (r < 0) {
			g_err("transport: %s", strerror(-r));
			rc = EXIT_BPF;
			break;
		}
		if (r > 0)
			break;
		/* API: policy requests, rules, live keys; at this batch boundary only. */
		unsigned ev = api_poll(api, pol, &cfg, api_fill, &fill);
		if (ev & API_RULES_CHANGED)
			apply_rules(pol);
		if ((ev & API_CFG_CHANGED) && o->dry_run)
			dry.rate = cfg.dryrun_rate;
		if (ev & API_POLICY_SWITCHED) {
			/* Another file now: watch that one. */
			pol_mtime = mtime_of(pol_path(pol));
			run_unwatch();
			run_watch(pol, pol_path(pol));
		}
	}
	run_detach_src();
	run_unwatch();

	if (o->stats_sec)
		print_stats(&lp, pol);
	if (o->dry_run)
		queue_output(1, dryrun_print_summary_to, &dry);
cleanup:
	api_set_attached(api, false);
	sched_destroy(&sch);     /* detach: the kernel fills the exit info now */
	if (sch.skel && sched_exited(&sch)) {
		queue_output(2, sched_print_exit_to, &sch);
		if (!stop_req && sched_exit_wants_restart(&sch)) {
			*restart = true;
			if (pol && pol_save(pol, carry, carry_len, err, sizeof(err)))
				g_warn("the policy's state is lost over the restart: %s", err);
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
	policy = o.policy ? o.policy : cfg.policy;
	if (!policy[0]) {
		g_err("no policy given (argument or scheduler.policy); try --help");
		return EXIT_USAGE;
	}
	if (access(policy, R_OK)) {
		/* The config's policy (a relative default) outside a checkout: the installed one. */
		static char installed[PATH_MAX];
		int e = errno;

		if (o.policy || !path_find_data(policy, installed, sizeof(installed))) {
			g_err("policy %s: %s", policy, strerror(e));
			return EXIT_POLICY;
		}
		g_info("policy %s not in %s: using the installed %s", policy, "the current directory",
		       installed);
		policy = installed;
	}
	read_topology();
	if (o.dry_run && !o.check && dryrun_open(&dry, &cfg, topo.nr_cpus, err, sizeof(err))) {
		fprintf(stderr, "gthulhu-lua: config error: %s: %s\n",
			cfg.file[0] ? cfg.file : "config", err);
		return EXIT_CONFIG;
	}
	if (strat_init(&strat, cfg.strategies, cfg.nr_strategies,
		       dry.tasks ? dryrun_proc_root(&dry) : "/proc", err, sizeof(err))) {
		fprintf(stderr, "gthulhu-lua: config error: %s\n", err);
		dryrun_close(&dry);
		return EXIT_CONFIG;
	}

	if (o.check) {
		rc = run_check(policy);
		strat_free(&strat);
		return rc;
	}

	rc = o.dry_run ? 0 : sched_preflight(err, sizeof(err));
	if (rc) {
		g_err("%s", err);
		strat_free(&strat);
		return rc;
	}
	libbpf_set_print(libbpf_print);
	/* Before any thread exists (the log writer, the API's, the recorder's): the signal
	 * mask is inherited, so SIGINT/SIGTERM/SIGHUP only ever reach the signalfd. An API
	 * thread started earlier took SIGHUP with its default action: the process died. */
	if (run_open(err, sizeof(err)) || log_start(err, sizeof(err))) {
		g_err("%s", err);
		run_close();
		strat_free(&strat);
		dryrun_close(&dry);
		return EXIT_BPF;
	}
	if (api_start(&api, &cfg, strat.proc_root, err, sizeof(err))) {
		g_logf(2, "gthulhu-lua: config error: %s\n", err);
		log_stop(1000);
		run_close();
		strat_free(&strat);
		dryrun_close(&dry);
		return EXIT_CONFIG;
	}
	if (o.record) {
		struct rec_info ri;

		memset(&ri, 0, sizeof(ri));
		ri.nr_cpus = (uint32_t)topo.nr_cpus;
		ri.batch_max = cfg.batch_max;
		ri.slice_ns_default = cfg.slice_ns_default;
		ri.slice_ns_min = cfg.slice_ns_min;
		snprintf(ri.source, sizeof(ri.source), o.dry_run ? "dry-run" : "live");
		snprintf(ri.policy, sizeof(ri.policy), "%.184s", policy);
		recw = rec_writer_open(o.record, &ri, NULL, NULL, err, sizeof(err));
		if (!recw) {
			g_err("--record: %s", err);
			log_stop(1000);
			run_close();
			strat_free(&strat);
			dryrun_close(&dry);
			return EXIT_USAGE;
		}
	}
	char *carry = NULL;
	size_t carry_len = 0;
	do {
		rc = run_once(&o, policy, &restart, &carry, &carry_len);
		if (restart) {
			/* CPU hotplug: the CPUs and caches are not what they were. */
			read_topology();
			int online = 0;
			for (int c = 0; c < topo.nr_cpus; c++)
				online += topo.online[c];
			g_logf(2, "gthulhu-lua: the kernel asked for a restart; restarting (topology "
			       "re-read: %d CPUs, %d online; hotplug_seq %llu)\n", topo.nr_cpus, online,
			       (unsigned long long)sched_hotplug_seq());
		}
	} while (restart && !stop_req);
	api_stop(api);
	if (recw) {
		uint64_t nb = rec_writer_batches(recw);

		if (rec_writer_close(recw, err, sizeof(err))) {
			g_err("--record: %s", err);
			rc = rc ? rc : EXIT_FAILURE;
		} else {
			g_logf(2, "gthulhu-lua: recorded %llu batches in %s\n",
			       (unsigned long long)nb, o.record);
		}
	}
	free(carry);
	log_stop(1000);
	run_close();
	strat_free(&strat);
	dryrun_close(&dry);
	return rc;
}
