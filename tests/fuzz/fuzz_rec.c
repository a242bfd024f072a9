/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_rec.c - libFuzzer target for the record file reader (host/rec/rec.c).
 *
 * Input byte 0 picks the mode:
 *   even: the rest of the input is a record file, read through rec_reader_fopen/next
 *         (fmemopen) until the end or an error.
 *   odd:  a valid file of 1..8 batches (byte 1 picks the sizes), made once per size with
 *         the real writer, is damaged: bytes 2..5 choose a bit to flip (byte 6 bit 0 = 1:
 *         cut the file at that offset instead).
 * Invariants (abort() on violation):
 *   - no crash, no out-of-bounds access (ASan), no leak (LSan);
 *   - every accepted batch has 1 <= n <= MAX_BATCH records, 0 <= m <= n decisions, each
 *     paired with a distinct record of its pid, and consecutive seq numbers;
 *   - a valid file reads back exactly what was written (batch count, every record, every
 *     decision and its pairing; its batches hold records without a decision, and the
 *     decisions come in reverse order, as placed/stale records and policies make them);
 *   - any single flipped bit or any cut of a valid file is reported as an error: the
 *     checksums cover every byte.
 * Run: make fuzz, or build/fuzz/fuzz_rec DIR...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "rec/rec.h"

#define DIE(...) do { fprintf(stderr, "fuzz_rec: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

int g_verbose;

static struct queued_task_ctx t[MAX_BATCH];
static struct dispatched_task_ctx d[MAX_BATCH];
static uint16_t task[MAX_BATCH];
static uint64_t idle[MAX_CPUS / 64];

/* Batch b of a valid file: n records (pid 1000 + 10b + i, enq_cnt b, vtime 100b + i);
 * every record i with i % 3 != 1 decided, in reverse order, d.vtime = vtime + 1. Returns
 * m; task[] gets the pairing. */
static int plan(int b, unsigned pat, int *n, uint16_t *tk)
{
	int m = 0;

	*n = 1 + (int)((pat >> (b * 3)) & 7) * 3;
	for (int i = *n - 1; i >= 0; i--)
		if (i % 3 != 1)
			tk[m++] = (uint16_t)i;
	return m;
}

/* Read the whole file; returns batches read, or -1 - batches on an error. valid: the
 * file is make_valid(.., pat): check every batch against plan(). */
static long read_all(const uint8_t *data, size_t size, bool valid, unsigned pat)
{
	char err[1024];
	FILE *f = fmemopen((void *)data, size, "rb");
	struct rec_batch bt = { .t = t, .d = d, .task = task, .idle = idle };
	static unsigned char seen[MAX_BATCH];
	long nb = 0;
	int rc;

	if (!f)
		return -1;
	struct rec_reader *r = rec_reader_fopen(f, "input", err, sizeof(err));
	if (!r)
		return -1;
	while ((rc = rec_reader_next(r, &bt, err, sizeof(err))) > 0) {
		if (bt.n < 1 || bt.n > MAX_BATCH || bt.m < 0 || bt.m > bt.n)
			DIE("batch of %d records and %d decisions accepted", bt.n, bt.m);
		if (bt.seq != (uint64_t)nb)
			DIE("batch %ld numbered %llu", nb, (unsigned long long)bt.seq);
		memset(seen, 0, (size_t)bt.n);
		for (int j = 0; j < bt.m; j++) {
			if (task[j] >= bt.n || seen[task[j]] || d[j].pid != t[task[j]].pid)
				DIE("batch %ld: decision %d paired with record %u accepted", nb, j, task[j]);
			seen[task[j]] = 1;
		}
		if (valid) {
			uint16_t want[MAX_BATCH];
			int n, m = plan((int)nb, pat, &n, want);
			if (bt.n != n || bt.m != m || memcmp(task, want, (size_t)m * sizeof(*want)))
				DIE("valid batch %ld read back as %d records / %d decisions", nb, bt.n, bt.m);
			for (int i = 0; i < n; i++)
				if (t[i].pid != 1000 + nb * 10 + i || t[i].vtime != (uint64_t)(nb * 100 + i))
					DIE("valid batch %ld: record %d read back wrong", nb, i);
			for (int j = 0; j < m; j++)
				if (d[j].vtime != t[task[j]].vtime + 1 || d[j].cpu != task[j] % 8)
					DIE("valid batch %ld: decision %d read back wrong", nb, j);
		}
		nb++;
	}
	rec_reader_close(r);
	return rc < 0 ? -1 - nb : nb;
}

/* A valid file with k batches of sizes from `pat`, made with the writer. */
static uint8_t *make_valid(int k, unsigned pat, size_t *len)
{
	char path[] = "/tmp/fuzz_rec_XXXXXX", err[512];
	int fd = mkstemp(path);
	uint64_t clock = 1000;
	uint64_t idl[MAX_CPUS / 64] = { 0x5 };
	struct rec_info ri = { .nr_cpus = 8, .batch_max = 4096, .slice_ns_default = 20000000,
			       .slice_ns_min = 1000000, .source = "fuzz", .policy = "p.lua" };

	if (fd < 0)
		DIE("mkstemp");
	close(fd);
	struct rec_writer *w = rec_writer_open(path, &ri, &clock, idl, err, sizeof(err));
	if (!w)
		DIE("writer: %s", err);
	for (int b = 0; b < k; b++) {
		int n, m = plan(b, pat, &n, task);
		for (int i = 0; i < n; i++) {
			memset(&t[i], 0, sizeof(t[i]));
			t[i].pid = 1000 + b * 10 + i;
			t[i].enq_cnt = (uint64_t)b;
			t[i].vtime = (uint64_t)(b * 100 + i);
		}
		for (int j = 0; j < m; j++)
			d[j] = (struct dispatched_task_ctx){ .pid = t[task[j]].pid, .cpu = task[j] % 8,
							     .vtime = t[task[j]].vtime + 1, .enq_cnt = b };
		clock += 1000;
		rec_writer_batch(w, t, n, d, task, m);
	}
	if (rec_writer_close(w, err, sizeof(err)))
		DIE("writer close: %s", err);
	FILE *f = fopen(path, "rb");
	if (!f)
		DIE("reopen");
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	uint8_t *buf = malloc(*len);
	if (!buf || fread(buf, 1, *len, f) != *len)
		DIE("read back");
	fclose(f);
	unlink(path);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		read_all(data + 1, size - 1, false, 0);
		return 0;
	}
	int k = 1 + (size > 1 ? data[1] % 8 : 0);
	unsigned pat = size > 1 ? data[1] * 2654435761u : 0;
	size_t len;
	uint8_t *buf = make_valid(k, pat, &len);
	long nb = read_all(buf, len, true, pat);
	if (nb != k)
		DIE("valid file of %d batches read as %ld", k, nb);
	uint32_t pos = 0;
	for (int i = 0; i < 4; i++)
		pos = pos << 8 | (size > (size_t)(2 + i) ? data[2 + i] : 0);
	pos %= (uint32_t)(len * 8);
	if (size > 6 && (data[6] & 1)) {
		size_t cut = pos / 8;
		if (read_all(buf, cut, false, 0) >= 0)
			DIE("file cut at %zu of %zu bytes was accepted", cut, len);
	} else {
		buf[pos / 8] ^= (uint8_t)(1u << (pos % 8));
		if (read_all(buf, len, false, 0) >= 0)
			DIE("bit %u flipped and the file was accepted", pos);
	}
	free(buf);
	return 0;
}
