/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/heap.c - the Lua heap cap (pol_env.lua_heap_max): every state's allocator counts
 * its bytes (pol_capped_alloc), a count hook raises past the cap, and after each call
 * pol_heap_check() collects or switches the policy off (built-in C decisions) until a
 * reload.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#include "common.h"
#include "pol_int.h"

/* Raised from the count hook pol_capped_alloc() sets when the heap passes the cap (works
										    * while the policy runs interpreted code; compiled code is caught after the call). */
static void heap_hook(lua_State *L, lua_Debug *ar)
{
	struct pol_heap *h;

	(void)ar;
	lua_getallocf(L, (void **)&h);
	lua_sethook(L, NULL, 0, 0);
	h->hooked = false;
	if (h->used > h->max)
		luaL_error(L, "the policy's Lua heap passed scheduler.lua_heap_max_mb (%d MiB)",
			   (int)(h->max >> 20));
}

/* Every allocation of a state goes through here, counted. Past heap->max a count hook is
 * armed (see heap_hook) and the call is checked after it returns (pol_heap_check): refusing
 * memory at the cap would be neater, but LuaJIT 2.1.0-beta3 can crash when an allocation
 * fails inside compiled code, so only growth past twice the cap is refused (the last
 * line against one call allocating without end). Under mlockall(MCL_FUTURE) an unbounded
 * heap would pin memory without limit. */
void *pol_capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct pol_heap *h = ud;

	if (nsize > osize && h->max) {
		size_t after = h->used + (nsize - osize);
		if (after > h->max && !h->hooked && h->L) {
			h->hooked = true;
			h->hit = true;
			lua_sethook(h->L, heap_hook, LUA_MASKCOUNT, 1);  /* async-safe in LuaJIT */
		}
		if (after > 2 * h->max) {
			h->hit = true;
			return NULL;
		}
	}
	void *r = h->f(h->ud, ptr, osize, nsize);
	if (r || nsize == 0)
		h->used = h->used + nsize - osize;
	return r;
}

int pol_gc_full(lua_State *L)
{
	lua_gc(L, LUA_GCCOLLECT, 0);
	return 0;
}

/* After every call: over the cap means collect; still over 3/4 of the cap after a full
 * GC means live data (a leak), and the policy is switched off until a reload: every
 * batch gets the C decisions, reported once. Two loads when under the cap. */
void pol_heap_check(struct pol *p)
{
	struct pol_heap *h = p->st.heap;

	if (!h->max || (h->used <= h->max && !h->hit))
		return;
	if (h->hooked) {
		lua_sethook(p->st.L, NULL, 0, 0);
		h->hooked = false;
	}
	h->hit = false;
	p->stats.lua_heap_hits++;
	lua_cpcall(p->st.L, pol_gc_full, NULL);
	lua_settop(p->st.L, 0);
	if (h->used <= h->max / 4 * 3)
		return;
	h->disabled = true;
	p->stats.lua_heap_disabled = 1;
	char msg[PATH_MAX + 256];
	snprintf(msg, sizeof(msg), "its Lua heap passed scheduler.lua_heap_max_mb (%zu MiB) and "
		 "stays at %zu KiB after a full GC: the host decides every task itself (built-in "
		 "C decisions) until the policy is reloaded", h->max >> 20, h->used >> 10);
	p->err_log_ns = 0;   /* always printed */
	pol_note_error(p, msg);
}
