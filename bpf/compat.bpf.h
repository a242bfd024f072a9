/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.bpf.h - what the scheduler needs from the kernel, declared here instead of taken
 * from vmlinux.h, so bpf/main.bpf.c compiles against the BTF of any kernel from 6.12 on
 * (a 6.12 vmlinux.h has no scx_bpf_dsq_insert*, scx_bpf_dsq_move_to_local,
 * scx_bpf_dsq_peek, no struct scx_bpf_dsq_insert_vtime_args; a 6.19+ one has no
 * scx_bpf_dispatch* / scx_bpf_consume) and picks at load time what the running kernel has.
 *
 * How:
 *  - vmlinux.h is included with BPF_NO_KFUNC_PROTOTYPES: it then gives types only, and
 *    every kfunc the scheduler calls is declared below, once, whatever BTF was dumped.
 *  - Kfuncs every kernel since 6.12 has are plain __ksym: a kernel without one refuses
 *    the object at load with libbpf naming the symbol, instead of misbehaving.
 *  - Kfuncs that were renamed or added later are __ksym __weak: libbpf resolves a missing
 *    one to 0, bpf_ksym_exists() is then false at load time, and the verifier drops the
 *    branch that calls it (main.bpf.c's g_*() wrappers choose with it).
 *  - Structs that only newer kernels have are declared with a ___compat suffix, which CO-RE
 *    and the kfunc prototype check ignore: the layout is what the kernel checks.
 *  - Struct fields that a kernel may lack are read behind bpf_core_field_exists().
 *  - Enum values that moved between kernels are CO-RE relocated: the names below are
 *    redefined as bpf_core_enum_value() of the enumerator (inside its own macro the name
 *    still means the enumerator), so libbpf patches in the running kernel's value. Seen:
 *    SCX_ENQ_HEAD is 1 << 4 in 6.12 and 1 << 16 from 6.19 on (SCX_ENQ_CPU_SELECTED moved
 *    too). Constants that are ABI (SCX_DSQ_*, SCX_KICK_*, SCX_OPS_* in the ops struct,
 *    where a constant expression is needed) stay vmlinux.h's: equal in 6.12 .. 7.3.
 *
 * The ksym-based choices are recorded at init in the .bss word compat_paths (COMPAT_*
 * bits, bpf/intf.h); the host prints them with -v.
 *
 * Prototypes match the kernel's (checked against 6.12 .. 7.3 BTF): libbpf compares each
 * against the running kernel's and refuses a mismatch.
 */
#ifndef GTHULHU_COMPAT_BPF_H
#define GTHULHU_COMPAT_BPF_H

#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* --- In every kernel from 6.12 on ----------------------------------------------------- */
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
u32 scx_bpf_dispatch_nr_slots(void) __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym;
const struct cpumask *scx_bpf_get_online_cpumask(void) __ksym;
void scx_bpf_put_cpumask(const struct cpumask *cpumask) __ksym;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;
void scx_bpf_dump_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;
int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __ksym;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
u32 bpf_cpumask_weight(const struct cpumask *cpumask) __ksym;
struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;

/* --- 6.12 names, removed in later kernels (6.19 has none of them) ---------------------- */
void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			    u64 enq_flags) __ksym __weak;
bool scx_bpf_consume(u64 dsq_id) __ksym __weak;
bool scx_bpf_dispatch_from_dsq(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p,
			       u64 dsq_id, u64 enq_flags) __ksym __weak;

/* --- 6.13 and later: the renamed insert / move kfuncs ---------------------------------- */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;
bool scx_bpf_dsq_move(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p, u64 dsq_id,
		      u64 enq_flags) __ksym __weak;

/* Newer kernels: vtime insert with its arguments in a struct (same layout as the kernel's
 * struct scx_bpf_dsq_insert_vtime_args; the ___compat suffix keeps this declaration from
 * clashing with a vmlinux.h that has the real one). */
struct scx_bpf_dsq_insert_vtime_args___compat {
	u64 dsq_id;
	u64 slice;
	u64 vtime;
	u64 enq_flags;
};
bool __scx_bpf_dsq_insert_vtime(struct task_struct *p,
				struct scx_bpf_dsq_insert_vtime_args___compat *args) __ksym __weak;

/* 6.19 and later: the first task of a DSQ without an iterator. */
struct task_struct *scx_bpf_dsq_peek(u64 dsq_id) __ksym __weak;

/* --- Enum values that differ between kernels ------------------------------------------ */
#define SCX_ENQ_HEAD    ((u64)bpf_core_enum_value(enum scx_enq_flags, SCX_ENQ_HEAD))
#define SCX_ENQ_PREEMPT ((u64)bpf_core_enum_value(enum scx_enq_flags, SCX_ENQ_PREEMPT))
#define SCX_ENQ_WAKEUP  ((u64)bpf_core_enum_value(enum scx_enq_flags, SCX_ENQ_WAKEUP))
#define SCX_TASK_QUEUED ((u32)bpf_core_enum_value(enum scx_ent_flags, SCX_TASK_QUEUED))
#define SCX_RQ_ONLINE   ((u32)bpf_core_enum_value(enum scx_rq_flags, SCX_RQ_ONLINE))

/* The exit dump buffer the kernel fills on an error exit (ops.exit_dump_len bytes). A
 * kernel whose scx_exit_info has no dump gives an empty string. */
#define g_exit_dump(ei) (bpf_core_field_exists((ei)->dump) ? (ei)->dump : (char *)0)

#endif /* GTHULHU_COMPAT_BPF_H */
