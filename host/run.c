/* SPDX-License-Identifier: GPL-2.0 */
/*
 * run.c - the run loop: one attach-run-detach cycle (run_once) and everything the
 * scheduling thread does between two batches.
 *
 * The run loop is one epoll set (struct run: the task source's fd, a signalfd, a 1 s
 * timerfd, the inotify fd) and run_turn(), called once per loop turn: a batch or a wait,
 * then signals, the tick, reload triggers, the reload swap. Something else that must run
 * on the scheduling thread adds its fd with run_add() and its work to run_turn().
 *
 * Ownership: the host's state (g_host, run.h) is defined here; main.c fills it at startup
 * and tears it down. The BPF side (sch) and the policy live for one run_once() each.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "run.h"
#include "stats.h"
#include "xport.h"

struct host g_host;

/* Set by the run loop from the signalfd (signals are blocked and read, not handled). */
static bool stop_req, reload_req;

/* Large, fixed-size state: static, so it is never on the stack and never allocated. */
static struct sched sch;
static struct cfg_strategy merged[CFG_MAX_STRATEGIES];  /* API + config rules */

bool run_stopping(void)
{
	return stop_req;
}

void run_pol_env(struct pol_env *env, volatile uint64_t *idle)
{
	memset(env, 0, sizeof(*env));
	env->nr_cpus = g_host.topo.nr_cpus;
	env->slice_ns_default = g_host.cfg.slice_ns_default;
	env->slice_ns_min = g_host.cfg.slice_ns_min;
	env->slice_ns_max = cfg_slice_max_ns(&g_host.cfg);
	env->batch_max = (int)g_host.cfg.batch_max;
	env->topo = &g_host.topo;
	env->idle = idle;
	env->lib_dir = NULL;  /* <policy dir>/lib, else the installed one */
	env->lua_heap_max = (size_t)g_host.cfg.lua_heap_max_mb << 20;
}

void run_push_strategies(struct pol *pol, bool force)
{
	if (strat_refresh(&g_host.strat) || force) {
		api_publish_resolved(g_host.api, &g_host.strat);
		if (pol_set_strategies(pol, g_host.strat.resolved, g_host.strat.nr_resolved))
			g_warn("policy on_strategies() failed: %s", pol_last_error(pol));
		else
			g_info("strategies: %d resolved entries", g_host.strat.nr_resolved);
	}
}

/* The rules changed (API, SIGHUP): merge API and config rules (api.h), hand them over. */
static void apply_rules(struct pol *pol)
{
	char err[1024];
	int n = api_merge_rules(g_host.api, g_host.cfg.strategies, g_host.cfg.nr_strategies, merged,
				CFG_MAX_STRATEGIES, err, sizeof(err));

	if (n < 0 || strat_set(&g_host.strat, merged, n, err, sizeof(err))) {
		g_err("strategies not changed: %s", err);
		return;
	}
	run_push_strategies(pol, true);
}

/* SIGHUP: read the config file again. Live keys and strategies are applied; keys that
 * need a restart are named and keep their running value. */
static void reload_config(struct pol *pol)
{
	static struct cfg next;
	char err[4096], a[CFG_PATH_MAX], b[CFG_PATH_MAX], why[256];

	if (!g_host.cfg.file[0])
		return;
	cfg_defaults(&next);
	if (cfg_load_file(&next, g_host.cfg.file, stderr, err, sizeof(err))) {
		g_err("config reload rejected, the running config stays: %s", err);
		return;
	}
	for (int i = 0; i < cfg_nr_keys(); i++) {
		cfg_get_text(&g_host.cfg, i, a, sizeof(a));
		cfg_get_text(&next, i, b, sizeof(b));
		if (!strcmp(a, b))
			continue;
		if (cfg_key_live(i))
			cfg_set_text(&g_host.cfg, i, b, why, sizeof(why));
		else
			g_warn("%s: %s changed; it needs a restart (still %s)", g_host.cfg.file, cfg_key(i), a);
	}
	memcpy(g_host.cfg.strategies, next.strategies, sizeof(g_host.cfg.strategies));
	g_host.cfg.nr_strategies = next.nr_strategies;
	api_config_reloaded(g_host.api, &g_host.cfg);
	if (g_host.dry.tasks)
		g_host.dry.rate = g_host.cfg.dryrun_rate;
	apply_rules(pol);
	fprintf(stderr, "gthulhu-lua: config %s reloaded (%d strategies)\n", g_host.cfg.file,
		g_host.cfg.nr_strategies);
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

void run_close(void)
{
	if (run.epfd >= 0)
		close(run.epfd);
	if (run.sfd >= 0)
		close(run.sfd);
	if (run.tfd >= 0)
		close(run.tfd);
	run.epfd = run.sfd = run.tfd = run.src_fd = -1;
}

static int run_add_flags(int fd, uint32_t tag, uint32_t flags)
{
	struct epoll_event ev = { .events = EPOLLIN | flags, .data.u32 = tag };

	return epoll_ctl(run.epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int run_add(int fd, uint32_t tag)
{
	return run_add_flags(fd, tag, 0);
}

/* Block the signals we read (before any thread exists, so every thread inherits the mask),
 * ignore SIGPIPE, and build the set. */
int run_open(char *err, size_t errlen)
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
	if (fd >= 0 && run_add_flags(fd, EV_SRC, src->poll_edge ? EPOLLET : 0) == 0) {
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
	run_push_strategies(pol, false);
	if (o->stats_sec && run.ticks % (unsigned long)o->stats_sec < exp)
		stats_print(lp, pol, &g_host.dry, &sch);
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
	if (o->dry_run ? dryrun_done(&g_host.dry) : sched_exited(&sch))
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

	stats_format(f->lp, f->pol, &g_host.dry, &sch, out->stats_line,
		     sizeof(out->stats_line));
	out->loop = &f->lp->st;
}

/* One attach-run-detach cycle. Sets *restart when the kernel asks for a restart; then the
 * policy's save() is in *carry (malloc'd) for the next cycle's restore(). */
int run_once(const struct opts *o, const char *policy, bool *restart, char **carry,
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
	if (!o->dry_run && sched_open(&sch, &g_host.cfg, &g_host.topo, err, sizeof(err))) {
		g_err("%s", err);
		rc = EXIT_BPF;
		goto cleanup;
	}
	run_pol_env(&env, o->dry_run ? dryrun_idle_mask(&g_host.dry) : sched_idle_mask(&sch));
	if (!o->dry_run)
		env.urgent_tid = sched_urgent_tid(&sch);
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
		       "tasks, at most %u/s)\n", policy, g_host.topo.nr_cpus, g_host.dry.nr_tasks,
		       g_host.cfg.dryrun_rate);
		log_flush(1000);
		dryrun_print_layout(&g_host.dry, stderr);
		dryrun_src(&g_host.dry, &src);
		goto run;
	}
	/* 3-4: load and attach */
	if (sched_attach(&sch, &g_host.topo, err, sizeof(err))) {
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
	       "stall_timeout_ms %u, heartbeat_ms %llu)\n", policy, g_host.topo.nr_cpus,
	       (unsigned long long)sch.hotplug_seq, g_host.cfg.stall_timeout_ms,
	       (unsigned long long)(bounds_hb_period_ns((uint64_t)g_host.cfg.stall_timeout_ms * 1000000ull) /
				    1000000ull));

	xport_src(&sch.xp, &src);
run:
	run_attach_src(&src);
	run_watch(pol, policy);
	loop_init(&lp, pol, &src, (int)g_host.cfg.batch_max, o->dry_run ? NULL : sched_heartbeat(&sch));
	if (g_host.recw) {
		rec_writer_set_idle(g_host.recw, o->dry_run ? dryrun_idle_mask(&g_host.dry)
							    : sched_idle_mask(&sch));
		lp.rec.batch = rec_writer_batch;
		lp.rec.ctx = g_host.recw;
	}
	pol_mtime = mtime_of(pol_path(pol));
	fill.lp = &lp;
	fill.pol = pol;
	api_set_attached(g_host.api, true);
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
		unsigned ev = api_poll(g_host.api, pol, &g_host.cfg, api_fill, &fill);
		if (ev & API_RULES_CHANGED)
			apply_rules(pol);
		if ((ev & API_CFG_CHANGED) && o->dry_run)
			g_host.dry.rate = g_host.cfg.dryrun_rate;
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
		stats_print(&lp, pol, &g_host.dry, &sch);
	if (o->dry_run)
		queue_output(1, dryrun_print_summary_to, &g_host.dry);
cleanup:
	api_set_attached(g_host.api, false);
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
