/* SPDX-License-Identifier: GPL-2.0 */
/* version.h - `--version` output (see version.c). No state. */
#ifndef GTHULHU_VERSION_H
#define GTHULHU_VERSION_H

#include <stdio.h>

/* Program, libbpf, LuaJIT and kernel versions, and whether sched_ext is available. */
void version_print(FILE *out);

#endif
