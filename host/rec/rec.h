/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rec.h - record files: the queued stream a policy saw and the decisions it made, batch by
 * batch with timestamps, written by `gthulhu-lua --record FILE` (live) and `simulate
 * --record FILE`, read by `gthulhu-lua replay FILE POLICY.lua`.
 *
 * Format version 2 (all integers little-endian; documented in README):
 *   header, 256 bytes: magic "GTLREC1\n", u32 version (2), u32 header size (256),
 *     u32 sizeof(queued_task_ctx) (88), u32 sizeof(dispatched_task_ctx) (40), u32 nr_cpus,
 *     u32 batch_max, u64 slice_ns_default, u64 slice_ns_min, u64 created (ns),
 *     char source[16] ("live", "sim"), char policy[184], u64 checksum of bytes 0..247.
 *   frames, one per batch, a 40-byte frame header: u32 magic "GTLB", u32 n (records,
 *     1..4096), u32 m (decisions sent, 0..n), u32 0, u64 seq (0, 1, ...), u64 ts (ns:
 *     CLOCK_MONOTONIC live, virtual in the simulator), u64 checksum of the first 32 frame
 *     bytes and the payload; payload: the idle-CPU bitmap the policy saw (ceil(nr_cpus /
 *     64) u64 words), the n queued_task_ctx as received, the m dispatched_task_ctx as sent
 *     (in that order), then m u16 task indexes (decision j decides record task[j]; each
 *     record at most once), zero-padded to a multiple of 8 bytes. m < n when records got
 *     no decision: RL_ENQ_PLACED ones and stale ones (see pol_schedule()); and the
 *     decisions come in the policy's order, so only task[] pairs them with their records.
 *   end frame: magic "GTLE", n = m = 0, seq = number of batches, ts = last, checksum of the
 *     first 32 bytes. A file without it was cut short (the recorder died): the reader says so.
 *   checksum: A = B = 0; for every u64 word w: A += w, B += A (mod 2^64); A ^ rotl64(B, 32).
 *   Version 1 stored m records and m decisions paired by position, wrong as soon as a
 *   batch held a record without a decision or the policy decided out of order: the reader
 *   refuses it with a message naming the file and version.
 *
 * Ownership: rec_writer_open()/rec_reader_open() return objects their _close() frees
 * (NULL-safe). The writer borrows the clock and idle pointers.
 */
#ifndef GTHULHU_REC_H
#define GTHULHU_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "../../bpf/intf.h"

#define REC_MAGIC "GTLREC1\n"
#define REC_VERSION 2
#define REC_HDR_SIZE 256
#define REC_FRAME_MAGIC 0x424c5447u   /* "GTLB" */
#define REC_END_MAGIC   0x454c5447u   /* "GTLE" */
#define REC_FRAME_HDR 40

struct rec_info {
	uint32_t version, nr_cpus, batch_max;
	uint64_t slice_ns_default, slice_ns_min, created;
	char source[17];
	char policy[185];
};

uint64_t rec_checksum(uint64_t state[2], const void *data, size_t len);   /* len % 8 == 0 */

struct rec_writer;
struct rec_writer *rec_writer_open(const char *path, const struct rec_info *info,
				   const volatile uint64_t *clock, const volatile uint64_t *idle,
				   char *err, size_t errlen);
/* The loop's record hook (struct loop_rec.batch, a loop_rec_fn): ctx is the writer; d[j]
 * decides t[task[j]]. */
void rec_writer_batch(void *ctx, const struct queued_task_ctx *t, int n,
		      const struct dispatched_task_ctx *d, const uint16_t *task, int m);
/* Writes the end frame and closes. G_ERR with a message on any write error. */
int rec_writer_close(struct rec_writer *w, char *err, size_t errlen);
uint64_t rec_writer_batches(const struct rec_writer *w);
/* Point the writer at another idle bitmap (a live run re-attaches after a restart). */
void rec_writer_set_idle(struct rec_writer *w, const volatile uint64_t *idle);

struct rec_reader;
/* One batch read back; the caller provides the arrays. */
struct rec_batch {
	struct queued_task_ctx *t;      /* room for MAX_BATCH: the records, as received */
	struct dispatched_task_ctx *d;  /* room for MAX_BATCH: the decisions, as sent */
	uint16_t *task;                 /* room for MAX_BATCH: d[j] decides t[task[j]] */
	uint64_t *idle;                 /* room for MAX_CPUS / 64 words */
	int n, m;                       /* records, decisions (0 <= m <= n) */
	uint64_t ts, seq;
};
/* Reads and checks the header. path for messages; f is owned by the reader from here. */
struct rec_reader *rec_reader_fopen(FILE *f, const char *path, char *err, size_t errlen);
struct rec_reader *rec_reader_open(const char *path, char *err, size_t errlen);
const struct rec_info *rec_reader_info(const struct rec_reader *r);
/* Next batch into b: 1; 0 at the end frame; < 0 on a truncated or corrupt file (message).
 * Checked beyond the checksum: every task index < n, none twice, and each decision's pid
 * that of its record. */
int rec_reader_next(struct rec_reader *r, struct rec_batch *b, char *err, size_t errlen);
void rec_reader_close(struct rec_reader *r);

/* `gthulhu-lua replay FILE POLICY.lua` (argv[0] = "replay"). Returns the exit code. */
int rec_replay_main(int argc, char **argv);

#endif
