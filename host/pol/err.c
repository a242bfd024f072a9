/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pol/err.c - a policy's errors: the last one kept and logged (rate-limited), and the
 * traceback message handler every call into Lua runs under (pol_pcall, state.c). Below
 * every other file of the bridge: it calls none of them.
 */
#include <stdio.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#include "common.h"
#include "pol_int.h"

/* Keep `msg` as the last error and log it: the first one in full, later ones at most one
 * summary line a second. */
void pol_note_error(struct pol *p, const char *msg)
{
	uint64_t now = g_now_ns();

	if (msg != p->last_error)
		snprintf(p->last_error, sizeof(p->last_error), "%s", msg);
	if (p->err_log_ns == 0) {
		g_err("policy %s: %s", p->path, msg);
		p->err_log_ns = now;
		return;
	}
	p->err_suppressed++;
	if (now - p->err_log_ns >= 1000000000ull) {
		const char *nl = strchr(msg, '\n');
		g_err("policy %s: %llu more policy errors (last: %.*s)", p->path,
		      (unsigned long long)p->err_suppressed,
		      nl ? (int)(nl - msg) : (int)strlen(msg), msg);
		p->err_suppressed = 0;
		p->err_log_ns = now;
	}
}

/* Message handler: error value -> "message\nstack traceback: ..." */
int pol_traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);                 /* stack: err */
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1))
			msg = lua_tostring(L, -1);                 /* stack: err str */
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
					      luaL_typename(L, 1)); /* stack: err ... str */
	}
	luaL_traceback(L, L, msg, 1);                         /* stack: err ... tb */
	return 1;
}
