/* SPDX-License-Identifier: GPL-2.0 */
/*
 * idle.bpf.h - the BPF side's idle-CPU walk over a cache sibling list (struct cpu_topo,
 * filled by the host from sysfs). Shared by main.bpf.c, the BPF unit tests (tests/bpfunit),
 * which drive it with a fake topology and a fake idle mask, and the simulator's event model
 * (host/sim/sim_model.c), which compiles it as plain C over its own idle mask.
 *
 * The includer defines, before including (MAX_SIBLINGS from intf.h in scope):
 *   IDLE_ALLOWED(p, cpu)  may task p run on cpu (a valid CPU id in its affinity)
 *   IDLE_CLAIM(cpu)       test-and-clear cpu's idle state: true if it was idle
 * and may define:
 *   IDLE_TASK             the type p points to (default struct task_struct; the simulator
 *                         passes its own context, which IDLE_CLAIM_TASK reads)
 *   IDLE_CLAIM_TASK(p, cpu)  the claim with p at hand (default IDLE_CLAIM(cpu))
 * Types: __s32/__u32/__u16 from vmlinux.h in BPF, from <linux/types.h> elsewhere, where
 * bpf_for is a plain for loop.
 */
#ifndef GTHULHU_IDLE_BPF_H
#define GTHULHU_IDLE_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#ifndef bpf_for
#define bpf_for(i, start, end) for ((i) = (start); (i) < (end); (i)++)
#endif
#ifndef IDLE_TASK
#define IDLE_TASK struct task_struct
#endif
#ifndef IDLE_CLAIM_TASK
#define IDLE_CLAIM_TASK(p, cpu) IDLE_CLAIM(cpu)
#endif

/* Walk ids[0..nr), starting at index `start` (mod nr) so wakeups spread over the
 * siblings, and claim the first idle CPU p may use. -1 if none. */
static __always_inline __s32 pick_from(const IDLE_TASK *p, const __u16 *ids, __u32 nr,
				       __u32 start)
{
	__u32 i, first;

	if (nr > MAX_SIBLINGS)
		nr = MAX_SIBLINGS;
	if (!nr)
		return -1;
	first = start % nr;
	bpf_for(i, 0, nr) {
		/* Index i places after `first`, wrapping within the list (k < nr <= 64). */
		__u32 k = first + i;
		__s32 cpu;

		if (k >= nr)
			k -= nr;
		if (k >= MAX_SIBLINGS)
			break;
		cpu = ids[k];
		if (!IDLE_ALLOWED(p, cpu))
			continue;
		if (IDLE_CLAIM_TASK(p, cpu))
			return cpu;
	}
	return -1;
}

#endif
