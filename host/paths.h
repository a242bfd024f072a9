/* SPDX-License-Identifier: GPL-2.0 */
/*
 * paths.h - where an installed gthulhu-lua finds its data files (policies) when a
 * relative path from the config does not exist in the current directory (tried: next to
 * the binary as installed, <bin>/../share/gthulhu-lua/; a checkout's build/ binary, <bin>/../;
 * then the DATADIR it was built for), e.g. the default
 * scheduler.policy "policies/gthulhu.lua" when run by systemd from /. No state.
 */
#ifndef GTHULHU_PATHS_H
#define GTHULHU_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* Look REL up, first match wins: <executable dir>/../share/gthulhu-lua/REL (an install,
 * wherever its prefix or DESTDIR put it), then GTHULHU_DATADIR/REL (the PREFIX it was
 * built for). Writes the path found to out; false (out = "") when neither exists. */
bool path_find_data(const char *rel, char *out, size_t len);

#endif
