/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sched_bpf.h - the live BPF scheduler: preflight checks, staged startup (open, configure,
 * load, attach), its stats and exit info, and detach.
 *
 * Ownership: struct sched owns the skeleton, the struct_ops link and the transport;
 * sched_destroy() releases them in reverse order and is NULL-safe and idempotent.
 */
#ifndef GTHULHU_SCHED_BPF_H
#define GTHULHU_SCHED_BPF_H

#include <stdbool.h>
#include <stdio.h>
#include "cfg.h"
#include "topo.h"
#include "xport.h"

struct main_bpf;
struct bpf_link;

struct sched {
	struct main_bpf *skel;
	struct bpf_link *link;
	struct xport xp;
	bool xp_open;
	uint64_t hotplug_seq;   /* what sched_open() put in ops.hotplug_seq */
	uint32_t poll_us;       /* scheduler.host_poll_us, for xport at attach */
};

/* /sys/kernel/sched_ext/hotplug_seq (0 if unreadable). */
uint64_t sched_hotplug_seq(void);

/* Can we run here? Returns 0, or EXIT_NO_SCX / EXIT_SCX_BUSY / EXIT_NOT_ROOT with a
 * message saying what is missing (and the name of the scheduler already loaded). */
int sched_preflight(char *err, size_t errlen);

/* Hidden --test-fault=NAME (test suite only): G_ERR naming the known faults if unknown. */
int sched_set_fault(const char *name, char *err, size_t errlen);

/* Stage 1+2: open the BPF object and set its rodata from the config. */
int sched_open(struct sched *s, const struct cfg *c, const struct topo *t, char *err,
	       size_t errlen);
/* Stage 3+4: load (verifier), fill the topology map, attach, open the transport. */
int sched_attach(struct sched *s, const struct topo *t, char *err, size_t errlen);
/* Detach and close the transport; the exit info stays readable until sched_free(). */
void sched_destroy(struct sched *s);
/* sched_destroy() + free the BPF object. NULL-safe. */
void sched_free(struct sched *s);

/* Shared memory the host reads or writes without syscalls (valid after sched_open). */
volatile uint64_t *sched_idle_mask(struct sched *s);
/* The BPF side's host_urgent_tid (pol_env.urgent_tid). */
volatile uint64_t *sched_urgent_tid(struct sched *s);
volatile uint64_t *sched_heartbeat(struct sched *s);

/* The kernel ejected or unregistered us: exit info recorded by ops.exit. */
bool sched_exited(const struct sched *s);
/* Print "gthulhu-lua: exit: kind=NAME(N) code=N reason=... msg=..." and, after an error
 * exit, the kernel's exit dump (sched_print_dump). */
void sched_print_exit(const struct sched *s, FILE *out);
void sched_print_dump(const struct sched *s, FILE *out);
/* After detach: a line if custody entries or the nr_pending counter are left over. */
void sched_print_custody(const struct sched *s, FILE *out);
/* -v: the kernel interface paths taken on this kernel (after attach). */
void sched_log_compat(const struct sched *s);
bool sched_exit_is_error(const struct sched *s);
bool sched_exit_wants_restart(const struct sched *s);

/* One line of "key=value" counters (BPF side). */
int sched_format_stats(const struct sched *s, char *buf, size_t len);

#endif
