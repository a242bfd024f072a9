/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rec.c - record file writer and reader (format in rec.h).
 *
 * The writer's hook runs inside the hot loop (struct loop_rec): it only copies the batch
 * into a preallocated buffer; a thread checksums and writes (see below). tests/bench
 * measures what it costs.
 *
 * The reader trusts nothing: every size is checked before it is used, every frame's
 * checksum is verified, and a short read is reported with the byte offset and batch.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "rec.h"

#define IDLE_WORDS(nr) (((nr) + 63) / 64)
/* m u16 task indexes, zero-padded to whole u64 words */
#define TASK_BYTES(m) ((((size_t)(m) * sizeof(uint16_t)) + 7) & ~(size_t)7)

/* The bytes of a frame after its header. */
static size_t frame_body(size_t nw, uint32_t n, uint32_t m)
{
	return nw * 8 + (size_t)n * sizeof(struct queued_task_ctx) +
	       (size_t)m * sizeof(struct dispatched_task_ctx) + TASK_BYTES(m);
}

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t rec_checksum(uint64_t st[2], const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t a = st[0], b = st[1];

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);     /* little-endian hosts only (x86_64, arm64) */
		a += w;
		b += a;
	}
	st[0] = a;
	st[1] = b;
	return a ^ rotl64(b, 32);
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* ---- writer ------------------------------------------------------------------------ */
/*
 * The hot loop only copies each batch into one of two preallocated 2 MiB buffers (the
 * frame's checksum field left for later); a writer thread checksums the frames of a full
 * buffer and writes it out while the loop fills the other. So the loop never makes a
 * syscall or a checksum pass for recording; it waits only if the disk falls a whole
 * buffer behind (backpressure, nothing is dropped).
 */
#define WBUF (640u << 10)   /* > the largest frame (4096 tasks: 521 KiB); small enough to stay in cache */
_Static_assert(REC_FRAME_HDR + MAX_CPUS / 8 + MAX_BATCH * (sizeof(struct queued_task_ctx) +
	       sizeof(struct dispatched_task_ctx) + sizeof(uint16_t)) <= WBUF,
	       "a frame fits in a writer buffer");

struct rec_writer {
	FILE *f;
	char path[512];
	unsigned char *buf[2];
	size_t used[2];
	bool full[2];           /* handed to the thread, not yet written */
	int a;                  /* buffer the loop fills */
	bool stop;
	pthread_t th;
	bool th_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const volatile uint64_t *clock, *idle;
	uint32_t nr_cpus;
	uint64_t seq, last_ts;
	int err_no;             /* first write error (the thread's) */
};

static uint64_t wclock(const struct rec_writer *w)
{
	return w->clock ? *w->clock : g_now_ns();
}

/* Fill in the checksum of every frame in buf[0..len). */
static void seal_frames(struct rec_writer *w, unsigned char *b, size_t len)
{
	size_t nw = IDLE_WORDS(w->nr_cpus), off = 0;

	while (off + REC_FRAME_HDR <= len) {
		size_t body = frame_body(nw, get32(b + off + 4), get32(b + off + 8));
		uint64_t st[2] = { 0, 0 };
		rec_checksum(st, b + off, 32);
		put64(b + off + 32, rec_checksum(st, b + off + REC_FRAME_HDR, body));
		off += REC_FRAME_HDR + body;
	}
}

static void *writer_main(void *arg)
{
	struct rec_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		int k = w->full[0] ? 0 : w->full[1] ? 1 : -1;
		if (k < 0) {
			if (w->stop)
				break;
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		pthread_mutex_unlock(&w->lock);
		seal_frames(w, w->buf[k], w->used[k]);
		if (!w->err_no && fwrite(w->buf[k], 1, w->used[k], w->f) != w->used[k])
			w->err_no = errno ? errno : EIO;
		pthread_mutex_lock(&w->lock);
		w->used[k] = 0;
		w->full[k] = false;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Hand the active buffer to the thread and switch to the other (waiting for it if the
 * thread is still writing it). */
static void swap_buffers(struct rec_writer *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->used[w->a]) {
		w->full[w->a] = true;
		pthread_cond_broadcast(&w->cond);
	}
	w->a ^= 1;
	while (w->full[w->a])
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

struct rec_writer *rec_writer_open(const char *path, const struct rec_info *info,
				   const volatile uint64_t *clock, const volatile uint64_t *idle,
				   char *err, size_t errlen)
{
	struct rec_writer *w = calloc(1, sizeof(*w));
	unsigned char h[REC_HDR_SIZE];
	uint64_t st[2] = { 0, 0 };
	pthread_attr_t ta;

	if (!w) {
		set_err(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->clock = clock;
	w->idle = idle;
	w->nr_cpus = info->nr_cpus;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->f = fopen(path, "wb");
	w->buf[0] = malloc(WBUF);
	w->buf[1] = malloc(WBUF);
	if (!w->f || !w->buf[0] || !w->buf[1]) {
		set_err(err, errlen, "%s: %s", path, w->f ? "out of memory" : strerror(errno));
		goto fail;
	}
	memset(w->buf[0], 0, WBUF);   /* fault in now: no page faults on the hot path */
	memset(w->buf[1], 0, WBUF);
	memset(h, 0, sizeof(h));
	memcpy(h, REC_MAGIC, 8);
	put32(h + 8, REC_VERSION);
	put32(h + 12, REC_HDR_SIZE);
	put32(h + 16, sizeof(struct queued_task_ctx));
	put32(h + 20, sizeof(struct dispatched_task_ctx));
	put32(h + 24, info->nr_cpus);
	put32(h + 28, info->batch_max);
	put64(h + 32, info->slice_ns_default);
	put64(h + 40, info->slice_ns_min);
	put64(h + 48, wclock(w));
	memcpy(h + 56, info->source, strnlen(info->source, 15));
	memcpy(h + 72, info->policy, strnlen(info->policy, 175));
	put64(h + 248, rec_checksum(st, h, 248));
	if (fwrite(h, sizeof(h), 1, w->f) != 1 || fflush(w->f)) {
		set_err(err, errlen, "%s: write error: %s", path, strerror(errno));
		goto fail;
	}
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, 256 * 1024);
	if (pthread_create(&w->th, &ta, writer_main, w) != 0) {
		pthread_attr_destroy(&ta);
		set_err(err, errlen, "%s: cannot start the writer thread", path);
		goto fail;
	}
	pthread_attr_destroy(&ta);
	w->th_started = true;
	return w;
fail:
	if (w->f)
		fclose(w->f);
	free(w->buf[0]);
	free(w->buf[1]);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}

void rec_writer_batch(void *ctx, const struct queued_task_ctx *t, int n,
		      const struct dispatched_task_ctx *d, const uint16_t *task, int m)
{
	struct rec_writer *w = ctx;
	size_t nw = IDLE_WORDS(w->nr_cpus);
	size_t len;
	unsigned char *p;

	if (n <= 0 || n > MAX_BATCH || m < 0 || m > n)
		return;
	len = REC_FRAME_HDR + frame_body(nw, (uint32_t)n, (uint32_t)m);
	if (w->used[w->a] + len > WBUF)
		swap_buffers(w);
	p = w->buf[w->a] + w->used[w->a];
	w->last_ts = wclock(w);
	put32(p, REC_FRAME_MAGIC);
	put32(p + 4, (uint32_t)n);
	put32(p + 8, (uint32_t)m);
	put32(p + 12, 0);
	put64(p + 16, w->seq++);
	put64(p + 24, w->last_ts);
	put64(p + 32, 0);             /* the checksum: filled in by the writer thread */
	p += REC_FRAME_HDR;
	for (size_t i = 0; i < nw; i++)
		put64(p + 8 * i, w->idle ? w->idle[i] : 0);
	p += nw * 8;
	memcpy(p, t, (size_t)n * sizeof(*t));
	p += (size_t)n * sizeof(*t);
	memcpy(p, d, (size_t)m * sizeof(*d));
	p += (size_t)m * sizeof(*d);
	memcpy(p, task, (size_t)m * sizeof(*task));
	memset(p + (size_t)m * sizeof(*task), 0, TASK_BYTES(m) - (size_t)m * sizeof(*task));
	w->used[w->a] += len;
}

uint64_t rec_writer_batches(const struct rec_writer *w) { return w ? w->seq : 0; }

void rec_writer_set_idle(struct rec_writer *w, const volatile uint64_t *idle)
{
	if (w)
		w->idle = idle;
}

int rec_writer_close(struct rec_writer *w, char *err, size_t errlen)
{
	unsigned char fh[REC_FRAME_HDR];
	uint64_t st[2] = { 0, 0 };
	int rc = G_OK;

	if (!w)
		return G_OK;
	swap_buffers(w);                  /* the last partial buffer */
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->th, NULL);
	put32(fh, REC_END_MAGIC);
	put32(fh + 4, 0);
	put32(fh + 8, 0);
	put32(fh + 12, 0);
	put64(fh + 16, w->seq);
	put64(fh + 24, w->last_ts);
	put64(fh + 32, rec_checksum(st, fh, 32));
	if (!w->err_no && fwrite(fh, sizeof(fh), 1, w->f) != 1)
		w->err_no = errno ? errno : EIO;
	if (fclose(w->f) && !w->err_no)
		w->err_no = errno ? errno : EIO;
	if (w->err_no) {
		set_err(err, errlen, "%s: write error: %s", w->path, strerror(w->err_no));
		rc = G_ERR_IO;
	}
	free(w->buf[0]);
	free(w->buf[1]);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return rc;
}

/* ---- reader ------------------------------------------------------------------------ */
struct rec_reader {
	FILE *f;
	char path[512];
	struct rec_info info;
	uint64_t off, batches;
	bool done;
	uint64_t tbuf[TASK_BYTES(MAX_BATCH) / 8];   /* a frame's task indexes and padding */
	uint32_t seen[MAX_BATCH], gen;              /* record i named this batch: seen[i] == gen */
};

/* Read exactly len bytes or say where the file ended. */
static int rd(struct rec_reader *r, void *buf, size_t len, const char *what, char *err, size_t errlen)
{
	size_t got = fread(buf, 1, len, r->f);

	if (got != len) {
		set_err(err, errlen, "%s: truncated: %s at byte %llu needs %zu bytes, the file has "
			"%zu (after %llu complete batches)", r->path, what,
			(unsigned long long)r->off, len, got, (unsigned long long)r->batches);
		return G_ERR_PARSE;
	}
	r->off += len;
	return G_OK;
}

struct rec_reader *rec_reader_fopen(FILE *f, const char *path, char *err, size_t errlen)
{
	struct rec_reader *r = calloc(1, sizeof(*r));
	unsigned char h[REC_HDR_SIZE];
	uint64_t st[2] = { 0, 0 };

	if (!r) {
		set_err(err, errlen, "%s: out of memory", path);
		fclose(f);
		return NULL;
	}
	r->f = f;
	snprintf(r->path, sizeof(r->path), "%s", path);
	if (rd(r, h, 8, "the header", err, errlen))
		goto fail;
	if (memcmp(h, REC_MAGIC, 7) != 0) {
		set_err(err, errlen, "%s: not a gthulhu-lua record file (bad magic)", path);
		goto fail;
	}
	if (rd(r, h + 8, sizeof(h) - 8, "the header", err, errlen))
		goto fail;
	if (get32(h + 8) == 1) {
		set_err(err, errlen, "%s: record format version 1, which paired decisions with "
			"records by position and dropped records that got none (placed or stale ones); "
			"this gthulhu-lua reads version %d only: record the run again", path,
			REC_VERSION);
		goto fail;
	}
	if (get32(h + 8) != REC_VERSION) {
		set_err(err, errlen, "%s: record format version %u; this gthulhu-lua reads version %d",
			path, get32(h + 8), REC_VERSION);
		goto fail;
	}
	if (get64(h + 248) != rec_checksum(st, h, 248)) {
		set_err(err, errlen, "%s: header checksum mismatch (corrupt file)", path);
		goto fail;
	}
	if (get32(h + 12) != REC_HDR_SIZE || get32(h + 16) != sizeof(struct queued_task_ctx) ||
	    get32(h + 20) != sizeof(struct dispatched_task_ctx)) {
		set_err(err, errlen, "%s: written with other record sizes (header %u, queued %u, "
			"dispatched %u; expected %d, %zu, %zu)", path, get32(h + 12), get32(h + 16),
			get32(h + 20), REC_HDR_SIZE, sizeof(struct queued_task_ctx),
			sizeof(struct dispatched_task_ctx));
		goto fail;
	}
	r->info.version = get32(h + 8);
	r->info.nr_cpus = get32(h + 24);
	r->info.batch_max = get32(h + 28);
	r->info.slice_ns_default = get64(h + 32);
	r->info.slice_ns_min = get64(h + 40);
	r->info.created = get64(h + 48);
	memcpy(r->info.source, h + 56, 16);
	r->info.source[16] = '\0';
	memcpy(r->info.policy, h + 72, 176);
	r->info.policy[176] = '\0';
	if (r->info.nr_cpus < 1 || r->info.nr_cpus > MAX_CPUS || r->info.batch_max < 1 ||
	    r->info.batch_max > MAX_BATCH) {
		set_err(err, errlen, "%s: header: nr_cpus %u or batch_max %u out of range", path,
			r->info.nr_cpus, r->info.batch_max);
		goto fail;
	}
	return r;
fail:
	rec_reader_close(r);
	return NULL;
}

struct rec_reader *rec_reader_open(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");

	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	return rec_reader_fopen(f, path, err, errlen);
}

const struct rec_info *rec_reader_info(const struct rec_reader *r) { return &r->info; }

int rec_reader_next(struct rec_reader *r, struct rec_batch *b, char *err, size_t errlen)
{
	unsigned char fh[REC_FRAME_HDR];
	uint64_t st[2] = { 0, 0 }, at = r->off, sum;
	size_t nw = IDLE_WORDS(r->info.nr_cpus);
	uint32_t magic, n, m;

	if (r->done)
		return 0;
	if (rd(r, fh, sizeof(fh), "a frame header", err, errlen)) {
		if (r->off == at && feof(r->f))
			set_err(err, errlen, "%s: truncated: no end mark after %llu batches (byte "
				"%llu): the recorder did not finish", r->path,
				(unsigned long long)r->batches, (unsigned long long)at);
		return G_ERR_PARSE;
	}
	magic = get32(fh);
	n = get32(fh + 4);
	m = get32(fh + 8);
	b->seq = get64(fh + 16);
	b->ts = get64(fh + 24);
	sum = get64(fh + 32);
	if (magic == REC_END_MAGIC) {
		if (n != 0 || m != 0 || get32(fh + 12) != 0 || sum != rec_checksum(st, fh, 32) ||
		    b->seq != r->batches) {
			set_err(err, errlen, "%s: corrupt end mark at byte %llu", r->path,
				(unsigned long long)at);
			return G_ERR_PARSE;
		}
		r->done = true;
		return 0;
	}
	if (magic != REC_FRAME_MAGIC) {
		set_err(err, errlen, "%s: corrupt: batch %llu at byte %llu has no frame magic",
			r->path, (unsigned long long)r->batches, (unsigned long long)at);
		return G_ERR_PARSE;
	}
	if (n < 1 || n > MAX_BATCH || m > n || get32(fh + 12) != 0) {
		set_err(err, errlen, "%s: corrupt: batch %llu at byte %llu claims %u records and %u "
			"decisions (1..%d records, at most one decision each)", r->path,
			(unsigned long long)r->batches, (unsigned long long)at, n, m, MAX_BATCH);
		return G_ERR_PARSE;
	}
	if (b->seq != r->batches) {
		set_err(err, errlen, "%s: corrupt: batch %llu at byte %llu is numbered %llu",
			r->path, (unsigned long long)r->batches, (unsigned long long)at,
			(unsigned long long)b->seq);
		return G_ERR_PARSE;
	}
	size_t tb = m * sizeof(*b->task);
	memset(b->idle, 0, MAX_CPUS / 8);
	if (rd(r, b->idle, nw * 8, "an idle bitmap", err, errlen) ||
	    rd(r, b->t, n * sizeof(*b->t), "queued records", err, errlen) ||
	    rd(r, b->d, m * sizeof(*b->d), "decisions", err, errlen) ||
	    rd(r, r->tbuf, TASK_BYTES(m), "task indexes", err, errlen))
		return G_ERR_PARSE;
	rec_checksum(st, fh, 32);
	rec_checksum(st, b->idle, nw * 8);
	rec_checksum(st, b->t, n * sizeof(*b->t));
	rec_checksum(st, b->d, m * sizeof(*b->d));
	if (rec_checksum(st, r->tbuf, TASK_BYTES(m)) != sum) {
		set_err(err, errlen, "%s: corrupt: checksum mismatch in batch %llu (byte %llu)",
			r->path, (unsigned long long)r->batches, (unsigned long long)at);
		return G_ERR_PARSE;
	}
	memcpy(b->task, r->tbuf, tb);
	/* The checksum says the bytes are as written; this says the writer paired them. */
	if (++r->gen == 0) {
		memset(r->seen, 0, sizeof(r->seen));
		r->gen = 1;
	}
	for (uint32_t j = 0; j < m; j++) {
		uint16_t i = b->task[j];
		if (i >= n || r->seen[i] == r->gen || b->d[j].pid != b->t[i].pid) {
			set_err(err, errlen, "%s: corrupt: batch %llu (byte %llu): decision %u (pid %d) "
				"names record %u, %s", r->path, (unsigned long long)r->batches,
				(unsigned long long)at, j, (int)b->d[j].pid, i,
				i >= n ? "past the batch's records" :
				r->seen[i] == r->gen ? "which an earlier decision names too" :
				"a record of another pid");
			return G_ERR_PARSE;
		}
		r->seen[i] = r->gen;
	}
	b->n = (int)n;
	b->m = (int)m;
	r->batches++;
	return 1;
}

void rec_reader_close(struct rec_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	free(r);
}
