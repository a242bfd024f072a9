/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/guard.c - the batch arrays, mapped so that a policy cannot scribble on the host.
 *
 *   tasks  one memfd mapped twice: read-write for the host (pol_tasks(), the transport
 *          receives into it) and read-only for Lua (cast to `const struct
 *          queued_task_ctx *`), so a policy that casts the const away still cannot write.
 *   out    read-write for both (the policy writes its decisions there).
 * Each Lua-visible array ends exactly at a PROT_NONE guard page and starts after one, so
 * tasks[batch_max] or out[batch_max] faults instead of reading or writing host memory.
 *
 * A fault in one of those ranges is the policy's doing: the SIGSEGV handler says which
 * array the policy touched and how, and ends the process with EXIT_POLICY (the kernel's
 * scheduler takes over, as for a policy stuck in compiled code). Faults elsewhere go to
 * the handler that was installed before (ASan's, say) or the default action.
 *
 * Ownership: pol_arrays_open() maps into struct pol, pol_arrays_close() unmaps (NULL-safe
 * per field). The region table is process-wide; slots are claimed and released atomically.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"
#include "pol_int.h"

#define GUARD_SLOTS 16   /* pols open at once (a reload reuses its pol's arrays) */

struct guard_region {
	char *lo, *hi;              /* [lo, hi): the whole reservation, guards included */
	char *data_lo, *data_hi;    /* the array's pages */
	const char *what;           /* "tasks[]" / "out[]" */
	bool read_only;             /* data pages are read-only (tasks) */
	const char *path;           /* the pol's path (lives in struct pol) */
};

static struct guard_region regions[GUARD_SLOTS];
static int region_used[GUARD_SLOTS];
static struct sigaction old_segv, old_bus;
static int handler_installed;

static size_t page_size(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	return pg > 0 ? (size_t)pg : 4096;
}

static void put(const char *s)
{
	ssize_t r = write(2, s, strlen(s));
	(void)r;
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	char *a = si->si_addr;

	for (int i = 0; i < GUARD_SLOTS; i++) {
		if (!__atomic_load_n(&region_used[i], __ATOMIC_ACQUIRE))
			continue;
		const struct guard_region *r = &regions[i];
		if (a < r->lo || a >= r->hi)
			continue;
		put("gthulhu-lua: error: policy ");
		put(r->path);
		if (a >= r->data_lo && a < r->data_hi && r->read_only)
			put(": wrote to the read-only task array (tasks is const: a policy "
			    "decides in out[], never in tasks[])");
		else if (a >= r->data_hi) {
			put(": accessed past the end of ");
			put(r->what);
			put(" (index batch_max or more)");
		} else {
			put(": accessed before the start of ");
			put(r->what);
			put(" (negative index)");
		}
		put("; exiting so the kernel's scheduler takes over\n");
		_exit(EXIT_POLICY);
	}
	/* Not ours: hand it to whoever was there before, or die of it the default way. */
	struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
	if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
		old->sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);   /* returning re-runs the faulting access: default action */
}

static void install_handler(void)
{
	struct sigaction sa;

	if (__atomic_exchange_n(&handler_installed, 1, __ATOMIC_ACQ_REL))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
}

static int region_add(const struct guard_region *r)
{
	for (int i = 0; i < GUARD_SLOTS; i++) {
		int z = 0;
		if (region_used[i])
			continue;
		regions[i] = *r;
		if (__atomic_compare_exchange_n(&region_used[i], &z, 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return i;
	}
	return -1;
}

static void region_del(int *slot)
{
	if (*slot >= 0)
		__atomic_store_n(&region_used[*slot], 0, __ATOMIC_RELEASE);
	*slot = -1;
}

/* Reserve guard + len + guard, all PROT_NONE. */
static char *reserve(size_t len)
{
	size_t pg = page_size();
	void *m = mmap(NULL, len + 2 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

int pol_arrays_open(struct pol *p, struct pol_arrays *a, char *err, size_t errlen)
{
	size_t pg = page_size();
	size_t tb = sizeof(struct queued_task_ctx) * (size_t)p->env.batch_max;
	size_t ob = sizeof(struct dispatched_task_ctx) * (size_t)p->env.batch_max;
	size_t tr = (tb + pg - 1) / pg * pg, orr = (ob + pg - 1) / pg * pg;
	struct guard_region r;
	int fd = -1;

	a->guard_slot[0] = a->guard_slot[1] = -1;
	a->tasks_bytes = tr;
	a->out_bytes = orr;
	install_handler();

	/* tasks: memfd, RW view for the host, RO view (between guards) for Lua */
	fd = memfd_create("gthulhu-tasks", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)tr))
		goto fail;
	a->tasks_rw_map = mmap(NULL, tr, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a->tasks_rw_map == MAP_FAILED) {
		a->tasks_rw_map = NULL;
		goto fail;
	}
	a->tasks_ro_map = reserve(tr);
	if (!a->tasks_ro_map)
		goto fail;
	if (mmap(a->tasks_ro_map + pg, tr, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		goto fail;
	close(fd);
	fd = -1;
	a->tasks = (struct queued_task_ctx *)(a->tasks_rw_map + (tr - tb));
	a->tasks_ro = (const struct queued_task_ctx *)(a->tasks_ro_map + pg + (tr - tb));

	/* out: RW between guards */
	a->out_map = reserve(orr);
	if (!a->out_map || mprotect(a->out_map + pg, orr, PROT_READ | PROT_WRITE))
		goto fail;
	a->out = (struct dispatched_task_ctx *)(a->out_map + pg + (orr - ob));

	/* pre-fault both views: no page faults on the hot path */
	memset(a->tasks_rw_map, 0, tr);
	memset(a->out_map + pg, 0, orr);
	for (size_t off = 0; off < tr; off += pg)
		(void)*(volatile const char *)(a->tasks_ro_map + pg + off);

	r = (struct guard_region){ a->tasks_ro_map, a->tasks_ro_map + tr + 2 * pg,
				   (char *)a->tasks_ro, (char *)a->tasks_ro + tb, "tasks[]", true,
				   p->path };
	a->guard_slot[0] = region_add(&r);
	r = (struct guard_region){ a->out_map, a->out_map + orr + 2 * pg, (char *)a->out,
				   (char *)a->out + ob, "out[]", false, p->path };
	a->guard_slot[1] = region_add(&r);
	/* A full table only costs the message: the fault still ends the process. */
	return G_OK;
fail:
	set_err(err, errlen, "%s: mapping the batch arrays: %s", p->path, strerror(errno));
	if (fd >= 0)
		close(fd);
	pol_arrays_close(a);
	return G_ERR_NOMEM;
}

void pol_arrays_close(struct pol_arrays *a)
{
	size_t pg = page_size();

	region_del(&a->guard_slot[0]);
	region_del(&a->guard_slot[1]);
	if (a->tasks_rw_map)
		munmap(a->tasks_rw_map, a->tasks_bytes);
	if (a->tasks_ro_map)
		munmap(a->tasks_ro_map, a->tasks_bytes + 2 * pg);
	if (a->out_map)
		munmap(a->out_map, a->out_bytes + 2 * pg);
	a->tasks_rw_map = a->tasks_ro_map = a->out_map = NULL;
	a->tasks = NULL;
	a->tasks_ro = NULL;
	a->out = NULL;
}
