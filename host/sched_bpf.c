/* SPDX-License-Identifier: GPL-2.0 */
/* sched_bpf.c - the live BPF scheduler; see sched_bpf.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "common.h"
#include "sched_bpf.h"
/* The skeleton names BTF types (u64, u32) that user space spells __u64, __u32. */
typedef __u64 u64;
typedef __u32 u32;
typedef __s32 s32;
typedef __s64 s64;
#include "main.skel.h"

#define SCX_SYSFS "/sys/kernel/sched_ext"

/* enum scx_ops_flags: the same value in every kernel from 6.12 to 7.3. */
#define SCX_OPS_SWITCH_PARTIAL_ 8ull

/* exit_code bit the kernel sets when it wants the scheduler restarted (CPU hotplug). */
#define ECODE_ACT_RESTART (1LL << 48)

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int sched_preflight(char *err, size_t errlen)
{
	char state[64] = "", ops[64] = "";
	struct utsname u;

	uname(&u);
	if (access(SCX_SYSFS, F_OK)) {
		snprintf(err, errlen,
			 "this kernel (%s) has no sched_ext: %s is missing. gthulhu-lua needs "
			 "Linux >= 6.12 built with CONFIG_SCHED_CLASS_EXT=y, CONFIG_BPF_SYSCALL=y "
			 "and CONFIG_DEBUG_INFO_BTF=y (try `make vm-run` to watch it in a VM)",
			 u.release, SCX_SYSFS);
		return EXIT_NO_SCX;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(err, errlen, "this kernel (%s) exposes no BTF (/sys/kernel/btf/vmlinux): "
			 "it needs CONFIG_DEBUG_INFO_BTF=y", u.release);
		return EXIT_NO_SCX;
	}
	if (!read_line(SCX_SYSFS "/state", state, sizeof(state)) && strcmp(state, "disabled")) {
		if (read_line(SCX_SYSFS "/root/ops", ops, sizeof(ops)))
			snprintf(ops, sizeof(ops), "unknown");
		snprintf(err, errlen,
			 "another sched_ext scheduler is loaded: '%s' (state: %s); stop it first",
			 ops, state);
		return EXIT_SCX_BUSY;
	}
	if (geteuid() != 0) {
		snprintf(err, errlen, "loading a sched_ext scheduler needs root (CAP_SYS_ADMIN "
			 "and CAP_BPF): run it with sudo");
		return EXIT_NOT_ROOT;
	}
	return 0;
}

/* Test-suite fault injection (tests/vm "watchdog" and "custody_check" scenarios): prove a
 * broken BPF side makes the suite fail, not hang, and that a custody counter drift is
 * reported. Set only by the hidden --test-fault option. */
static uint32_t fault_inject;
static const char *fault_name;

int sched_set_fault(const char *name, char *err, size_t errlen)
{
	if (!strcmp(name, "starve-host")) {
		fault_inject = FAULT_STARVE_HOST;
	} else if (!strcmp(name, "leak-custody")) {
		fault_inject = FAULT_LEAK_CUSTODY;
	} else {
		snprintf(err, errlen, "--test-fault=%s: unknown fault (known: starve-host, "
			 "leak-custody)", name);
		return G_ERR;
	}
	fault_name = name;
	return G_OK;
}

uint64_t sched_hotplug_seq(void)
{
	char line[64];

	if (read_line(SCX_SYSFS "/hotplug_seq", line, sizeof(line)))
		return 0;
	return strtoull(line, NULL, 10);
}

int sched_open(struct sched *s, const struct cfg *c, const struct topo *t, char *err,
	       size_t errlen)
{
	int ncpu = libbpf_num_possible_cpus();

	memset(s, 0, sizeof(*s));
	s->skel = main_bpf__open();
	if (!s->skel) {
		snprintf(err, errlen, "opening the BPF object failed: %s", strerror(errno));
		return G_ERR;
	}
	if (ncpu < t->nr_cpus)
		ncpu = t->nr_cpus;
	if (ncpu > MAX_CPUS) {
		snprintf(err, errlen, "%d possible CPUs: more than the %d this build handles",
			 ncpu, MAX_CPUS);
		return G_ERR;
	}
	s->skel->rodata->slice_ns_default = c->slice_ns_default;
	s->skel->rodata->slice_ns_min = c->slice_ns_min;
	s->skel->rodata->host_tgid = (uint32_t)getpid();
	s->skel->rodata->builtin_idle = c->builtin_idle;
	s->skel->rodata->early_processing = c->early_processing;
	s->skel->rodata->wakeup_preempt = c->wakeup_preempt;
	s->skel->rodata->wake_batch = c->wake_batch;
	s->skel->rodata->host_last = c->host_last;
	s->skel->rodata->wake_delay_ns = (uint64_t)c->wake_delay_us * 1000;
	s->poll_us = c->host_poll_us;   /* for the transport, opened at attach */
	s->skel->rodata->debug = c->debug;
	s->skel->rodata->stall_timeout_ns = (uint64_t)c->stall_timeout_ms * 1000000ull;
	s->skel->rodata->nr_cpu_ids_max = (uint32_t)ncpu;
	/* Safety bounds against the watchdog (see cfg_slice_max_ns): the longest slice, and
	 * how long a waiter may wait behind a running task that stays first in vtime order
	 * (watchdog/10, at most 500 ms: about what EEVDF makes a nice 0 task wait beside a
	 * nice -20 one, and 10x below the watchdog). */
	s->skel->rodata->slice_ns_max = cfg_slice_max_ns(c);
	s->skel->rodata->wait_bound_ns = bounds_wait_ns(c->watchdog_timeout_ms);
	if (fault_inject) {
		s->skel->rodata->fault_inject = fault_inject;
		g_warn("--test-fault=%s: fault injected on purpose (test suite only)", fault_name);
	}
	if (g_verbose >= 3) {
		/* -vvv: the verifier's statistics for every program (printed at debug level). */
		struct bpf_program *prog;

		bpf_object__for_each_program(prog, s->skel->obj)
			bpf_program__set_log_level(prog, 4);
	}
	/* 0 is the kernel's default (30 s): the ops must say 0, not keep the object's 5000. */
	s->skel->struct_ops.gthulhu_lua_ops->timeout_ms = c->watchdog_timeout_ms;
	/* scheduler.partial: only SCHED_EXT tasks are ours; the rest stay with the kernel. */
	if (c->partial)
		s->skel->struct_ops.gthulhu_lua_ops->flags |= SCX_OPS_SWITCH_PARTIAL_;
	/* The kernel refuses to enable a scheduler whose hotplug_seq is older than a CPU
	 * hotplug it has seen (it asks for a restart instead): a restart after hotplug
	 * attaches with the topology the kernel has now, not the one we last read. */
	s->hotplug_seq = sched_hotplug_seq();
	s->skel->struct_ops.gthulhu_lua_ops->hotplug_seq = s->hotplug_seq;
	return G_OK;
}

/*
 * Kfuncs with an implicit `struct bpf_prog_aux *aux` argument (KF_IMPLICIT_ARGS) are shown
 * in the kernel's BTF without it, next to a NAME_impl with it; the verifier needs both.
 * Some kernel builds (seen: Debian's 7.1.13 and 7.2.12 cloud kernels) left the aux
 * argument on some sched_ext kfuncs and have no NAME_impl: no program can call those, so
 * no scheduler that uses them loads. Names the first such kfunc we need, or returns NULL.
 */
static const char *broken_implicit_kfunc(void)
{
	static const char *const names[] = {
		"scx_bpf_create_dsq", "scx_bpf_dsq_nr_queued", "scx_bpf_dispatch_nr_slots",
		"scx_bpf_kick_cpu", "scx_bpf_pick_idle_cpu", "scx_bpf_test_and_clear_cpu_idle",
		"scx_bpf_error_bstr", "scx_bpf_task_cpu", "scx_bpf_select_cpu_dfl",
		"scx_bpf_dsq_insert", "scx_bpf_dsq_insert_vtime", "scx_bpf_dsq_move_to_local",
	};
	static char bad[64];
	struct btf *vb = btf__load_vmlinux_btf();
	const char *found = NULL;

	if (!vb)
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !found; i++) {
		char impl[96];
		int id = btf__find_by_name_kind(vb, names[i], BTF_KIND_FUNC);
		const struct btf_type *fn, *proto;

		if (id < 0)
			continue;
		fn = btf__type_by_id(vb, id);
		proto = fn ? btf__type_by_id(vb, fn->type) : NULL;
		if (!proto || !btf_is_func_proto(proto) || !btf_vlen(proto))
			continue;
		snprintf(impl, sizeof(impl), "%s_impl", names[i]);
		if (!strcmp(btf__name_by_offset(vb, btf_params(proto)[btf_vlen(proto) - 1].name_off), "aux") &&
		    btf__find_by_name_kind(vb, impl, BTF_KIND_FUNC) < 0) {
			snprintf(bad, sizeof(bad), "%s", names[i]);
			found = bad;
		}
	}
	btf__free(vb);
	return found;
}

int sched_attach(struct sched *s, const struct topo *t, char *err, size_t errlen)
{
	int err_, fd;
	uint32_t cpu;

	err_ = main_bpf__load(s->skel);
	if (err_) {
		const char *bad = broken_implicit_kfunc();
		struct utsname u;

		uname(&u);
		if (bad)
			snprintf(err, errlen, "loading the BPF scheduler failed (%s): this kernel's BTF "
				 "(%s) declares the sched_ext kfunc %s with its implicit aux argument "
				 "and has no %s_impl, so no BPF program can call it (a kernel build "
				 "problem, seen with Debian's 7.1.13 and 7.2.12 kernels): use another "
				 "kernel", strerror(-err_), u.release, bad, bad);
		else
			snprintf(err, errlen, "loading the BPF scheduler failed (%s): the verifier "
				 "log is above; see README 'Troubleshooting'", strerror(-err_));
		return G_ERR;
	}
	fd = bpf_map__fd(s->skel->maps.cpu_topo);
	for (cpu = 0; cpu < (uint32_t)t->nr_cpus; cpu++) {
		if (bpf_map_update_elem(fd, &cpu, &t->cpu[cpu], BPF_ANY)) {
			snprintf(err, errlen, "filling cpu_topo[%u]: %s", cpu, strerror(errno));
			return G_ERR;
		}
	}
	if (xport_open(&s->xp, bpf_map__fd(s->skel->maps.queued),
		       bpf_map__fd(s->skel->maps.dispatched), err, errlen))
		return G_ERR;
	s->xp_open = true;
	s->xp.nr_scheduled = (volatile uint64_t *)&s->skel->bss->nr_scheduled;
	s->xp.yield_after_publish = true;
	s->xp.poll_us = s->poll_us;

	s->skel->bss->host_hb_ns = g_now_ns();
	s->link = bpf_map__attach_struct_ops(s->skel->maps.gthulhu_lua_ops);
	if (!s->link) {
		int e = errno;

		if (e == EBUSY || e == EEXIST)
			snprintf(err, errlen, "attaching failed: another sched_ext scheduler got "
				 "loaded meanwhile (%s)", strerror(e));
		else
			snprintf(err, errlen, "attaching the sched_ext ops failed: %s%s", strerror(e),
				 sched_exited(s) ? " (the kernel's reason follows)" : "");
		return G_ERR;
	}
	sched_log_compat(s);
	return G_OK;
}

/* -v: which kernel interface each compatibility wrapper of main.bpf.c resolved to on this
 * kernel (ops.init records it in compat_paths; see bpf/compat.bpf.h). */
void sched_log_compat(const struct sched *s)
{
	uint32_t f = s->skel->bss->compat_paths;
	uint64_t fl = s->skel->struct_ops.gthulhu_lua_ops->flags;

	if (!(f & COMPAT_RECORDED)) {
		g_info("kernel interface: not recorded (ops.init did not run)");
		return;
	}
	g_info("kernel interface: insert=%s vtime-insert=%s move=%s dsq-head=%s dsq-move=%s exit-dump=%s%s",
	       f & COMPAT_DSQ_INSERT ? "scx_bpf_dsq_insert" : "scx_bpf_dispatch (6.12 name)",
	       f & COMPAT_INSERT_VTIME ? "scx_bpf_dsq_insert_vtime" :
	       f & COMPAT_INSERT_VTIME_ARGS ? "__scx_bpf_dsq_insert_vtime(args)" :
					      "scx_bpf_dispatch_vtime (6.12 name)",
	       f & COMPAT_MOVE_TO_LOCAL ? "scx_bpf_dsq_move_to_local" : "scx_bpf_consume (6.12 name)",
	       f & COMPAT_DSQ_PEEK ? "scx_bpf_dsq_peek" : "bpf_iter_scx_dsq (no scx_bpf_dsq_peek)",
	       f & COMPAT_DSQ_MOVE ? "scx_bpf_dsq_move" : "scx_bpf_dispatch_from_dsq (6.12 name)",
	       f & COMPAT_EXIT_DUMP ? "yes" : "no (scx_exit_info has no dump)",
	       fl & SCX_OPS_SWITCH_PARTIAL_ ? " mode=partial (SCHED_EXT tasks only)" : " mode=all tasks");
}

void sched_destroy(struct sched *s)
{
	if (!s)
		return;
	/* Detach first: the kernel runs ops.exit, which fills uei, synchronously. */
	bpf_link__destroy(s->link);   /* NULL-safe */
	s->link = NULL;
	if (s->xp_open)
		xport_close(&s->xp);
	s->xp_open = false;
}

void sched_free(struct sched *s)
{
	if (!s)
		return;
	sched_destroy(s);
	main_bpf__destroy(s->skel);   /* NULL-safe */
	s->skel = NULL;
}

volatile uint64_t *sched_idle_mask(struct sched *s) { return (volatile uint64_t *)s->skel->bss->idle_mask; }
volatile uint64_t *sched_urgent_tid(struct sched *s) { return (volatile uint64_t *)&s->skel->bss->host_urgent_tid; }
volatile uint64_t *sched_heartbeat(struct sched *s) { return (volatile uint64_t *)&s->skel->bss->host_hb_ns; }

bool sched_exited(const struct sched *s)
{
	return s->skel && s->skel->bss && ((volatile struct user_exit_info *)&s->skel->bss->uei)->kind;
}

static const char *exit_kind_name(int kind)
{
	switch (kind) {
	case 0: return "none";
	case 1: return "done";
	case 64: return "unregistered";
	case 65: return "unregistered-bpf";
	case 66: return "unregistered-kernel";
	case 67: return "sysrq";
	case 1024: return "error";
	case 1025: return "error-bpf";
	case 1026: return "error-stall (watchdog)";
	default: return "unknown";
	}
}

void sched_print_exit(const struct sched *s, FILE *out)
{
	const struct user_exit_info *u;

	if (!s->skel || !s->skel->bss)
		return;
	u = &s->skel->bss->uei;
	fprintf(out, "gthulhu-lua: exit: kind=%s(%d) code=%lld reason=\"%s\"%s%s%s\n",
		exit_kind_name(u->kind), u->kind, (long long)u->exit_code, u->reason,
		u->msg[0] ? " msg=\"" : "", u->msg, u->msg[0] ? "\"" : "");
	sched_print_dump(s, out);
	sched_print_custody(s, out);
}

/* After detach the kernel has run ops.exit_task for every task, which drops its custody
 * entry, so both the pending map and the nr_pending counter should be empty. Anything else
 * is a bookkeeping fault worth a report: entries left (a task the drop missed) or a
 * counter that disagrees with the map (it drifted). Silent when all is well. */
void sched_print_custody(const struct sched *s, FILE *out)
{
	int fd, n = 0;
	struct custody_key key, next, *prev = NULL;
	unsigned long long counter;

	if (!s->skel || !s->skel->bss)
		return;
	fd = bpf_map__fd(s->skel->maps.pending);
	counter = s->skel->bss->nr_pending;
	while (fd >= 0 && n < 100000 && !bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		n++;
	}
	if (!n && !counter)
		return;
	/* no NAME=%llu pattern here: tests/dryrun takes each one in this file for a stats key */
	fprintf(out, "gthulhu-lua: custody after detach: %d entries left in the pending map, "
		"counter nr_pending at %llu%s\n", n, counter,
		(unsigned long long)n != counter ? " (the counter disagrees with the map)" : "");
}

/* The kernel's exit dump (error exits only: CPU and task states, then ops.dump's lines),
 * between two marker lines so a report can quote it whole. */
void sched_print_dump(const struct sched *s, FILE *out)
{
	const char *d;
	size_t n;

	if (!s->skel || !s->skel->bss || !s->skel->bss->uei.dump[0])
		return;
	d = s->skel->bss->uei.dump;
	n = strnlen(d, sizeof(s->skel->bss->uei.dump));
	fprintf(out, "gthulhu-lua: exit dump (%zu bytes%s):\n", n,
		n >= sizeof(s->skel->bss->uei.dump) - 1 ? ", truncated" : "");
	fwrite(d, 1, n, out);
	if (n && d[n - 1] != '\n')
		fputc('\n', out);
	fprintf(out, "gthulhu-lua: end of exit dump\n");
}

bool sched_exit_is_error(const struct sched *s)
{
	return s->skel && s->skel->bss->uei.kind >= 1024;
}

bool sched_exit_wants_restart(const struct sched *s)
{
	return s->skel && (s->skel->bss->uei.exit_code & ECODE_ACT_RESTART);
}

int sched_format_stats(const struct sched *s, char *buf, size_t len)
{
	const struct main_bpf__bss *b = s->skel->bss;

	return snprintf(buf, len,
		"nr_queued=%llu nr_scheduled=%llu nr_running=%llu nr_online_cpus=%llu "
		"nr_user_dispatches=%llu nr_kernel_dispatches=%llu nr_cancel_dispatches=%llu "
		"nr_bounce_dispatches=%llu nr_failed_dispatches=%llu nr_sched_congested=%llu "
		"nr_host_stalls=%llu nr_rescued=%llu nr_pending=%llu pending_entries=%llu "
		"pending_oldest_ms=%llu host_stalled=%llu nr_kept=%llu "
		"nr_slice_clamped=%llu nr_keep_bounded=%llu nr_prio_throttled=%llu nr_resumed=%llu "
		"nr_placed=%llu nr_placed_untold=%llu nr_starved=%llu nr_wakeup_preempts=%llu nr_host_wakes=%llu "
		"nr_sync_wakeups=%llu nr_fast_queued=%llu",
		(unsigned long long)b->nr_queued, (unsigned long long)b->nr_scheduled,
		(unsigned long long)b->nr_running, (unsigned long long)b->nr_online_cpus,
		(unsigned long long)b->nr_user_dispatches, (unsigned long long)b->nr_kernel_dispatches,
		(unsigned long long)b->nr_cancel_dispatches, (unsigned long long)b->nr_bounce_dispatches,
		(unsigned long long)b->nr_failed_dispatches, (unsigned long long)b->nr_sched_congested,
		(unsigned long long)b->nr_host_stalls, (unsigned long long)b->nr_rescued,
		(unsigned long long)b->nr_pending, (unsigned long long)b->pending_entries,
		(unsigned long long)b->pending_oldest_ms, (unsigned long long)b->host_stalled,
		(unsigned long long)b->nr_kept, (unsigned long long)b->nr_slice_clamped,
		(unsigned long long)b->nr_keep_bounded, (unsigned long long)b->nr_prio_throttled,
		(unsigned long long)b->nr_resumed, (unsigned long long)b->nr_placed,
		(unsigned long long)b->nr_placed_untold, (unsigned long long)b->nr_starved,
		(unsigned long long)b->nr_wakeup_preempts, (unsigned long long)b->nr_host_wakes,
		(unsigned long long)b->nr_sync_wakeups, (unsigned long long)b->nr_fast_queued);
}
