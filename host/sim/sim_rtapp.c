/* SPDX-License-Identifier: GPL-2.0 */
/* sim_rtapp.c - rt-app JSON import (placeholder until implemented: refuses clearly). */
#include <string.h>
#include "common.h"
#include "sim.h"

int sim_wl_load_rtapp(struct sim_wl *w, const char *path, char *err, size_t errlen)
{
	sim_wl_defaults(w);
	set_err(err, errlen, "%s: rt-app JSON import is not available in this build", path);
	return G_ERR_PARSE;
}
