/* SPDX-License-Identifier: GPL-2.0 */
/*
 * paths.h - where an installed gthulhu-lua finds its data files (policies) when a
 * relative path from the config does not exist in the current directory (tried: next to
 * the binary as installed, <bin>/../share/gthulhu-lua/; a checkout's build/ binary, <bin>/../;
 * then the DATADIR it was built for), e.g. the default
 * scheduler.policy "policies/gthulhu.lua" when run by systemd from /; and where a policy's
 * library is (path_lib_dir). No state.
 */
#ifndef GTHULHU_PATHS_H
#define GTHULHU_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* Look REL up, first match wins: <executable dir>/../share/gthulhu-lua/REL (an install,
 * wherever its prefix or DESTDIR put it), then GTHULHU_DATADIR/REL (the PREFIX it was
 * built for). Writes the path found to out; false (out = "") when neither exists. */
bool path_find_data(const char *rel, char *out, size_t len);

/* The policy library's directory (the one holding gthulhu/sched.lua) for the policy file
 * policy_path, first match wins: $GTHULHU_LIB; <policy dir>/lib (the repository's
 * policies/); policies/lib as path_find_data() finds it (an install, or a checkout's
 * build/gthulhu-lua run on a policy kept anywhere else); else GTHULHU_DATADIR/policies/lib. */
void path_lib_dir(const char *policy_path, char *out, size_t len);

/* The directory part of path ("." when it has none, "/" for a file at the root). */
void path_dir_of(const char *path, char *dir, size_t len);

#endif
