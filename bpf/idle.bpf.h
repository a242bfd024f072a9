/* SPDX-License-Identifier: GPL-2.0 */
/*
 * idle.bpf.h - the BPF side's idle-CPU walk over a cache sibling list (struct cpu_topo,
 * filled by the host from sysfs). Shared by main.bpf.c and the BPF unit tests
 * (tests/bpfunit), which drive it with a fake topology and a fake idle mask.
 *
 * The includer defines, before including:
 *   IDLE_ALLOWED(p, cpu)  may task p run on cpu (a valid CPU id in its affinity)
 *   IDLE_CLAIM(cpu)       test-and-clear cpu's idle state: true if it was idle
 */
#ifndef GTHULHU_IDLE_BPF_H
#define GTHULHU_IDLE_BPF_H

/* Walk ids[0..nr), starting at index `start` (mod nr) so wakeups spread over the
 * siblings, and claim the first idle CPU p may use. -1 if none. */
static __always_inline s32 pick_from(const struct task_struct *p, const __u16 *ids, u32 nr,
				     u32 start)
{
	u32 i, first;

	if (nr > MAX_SIBLINGS)
		nr = MAX_SIBLINGS;
	if (!nr)
		return -1;
	first = start % nr;
	bpf_for(i, 0, nr) {
		/* Index i places after `first`, wrapping within the list (k < nr <= 64). */
		u32 k = first + i;
		s32 cpu;

		if (k >= nr)
			k -= nr;
		if (k >= MAX_SIBLINGS)
			break;
		cpu = ids[k];
		if (!IDLE_ALLOWED(p, cpu))
			continue;
		if (IDLE_CLAIM(cpu))
			return cpu;
	}
	return -1;
}

#endif
