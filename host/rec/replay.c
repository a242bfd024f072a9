/* SPDX-License-Identifier: GPL-2.0 */
#include "common.h"
#include "rec.h"
int rec_replay_main(int argc, char **argv) { g_err("replay: not yet"); return 2; }
