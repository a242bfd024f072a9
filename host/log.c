/* SPDX-License-Identifier: GPL-2.0 */
/* log.c - output that never blocks the scheduling thread; see log.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "log.h"

struct stream {
	char buf[LOG_BUF_BYTES];
	size_t head, len;        /* ring: bytes [head, head + len) mod size are queued */
};

static struct stream streams[2];       /* [0] stdout, [1] stderr */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t drained = PTHREAD_COND_INITIALIZER;   /* a chunk was written */
static pthread_t writer;
static bool running, stopping, inflight;   /* inflight: a chunk is being written */
static uint64_t dropped, write_errors;

static void *writer_main(void *arg)
{
	char chunk[4096];

	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		int which = streams[1].len ? 1 : streams[0].len ? 0 : -1;
		if (which < 0) {
			pthread_cond_broadcast(&drained);
			if (stopping)
				break;
			pthread_cond_wait(&cond, &lock);
			continue;
		}
		struct stream *s = &streams[which];
		size_t n = s->len < sizeof(chunk) ? s->len : sizeof(chunk);
		size_t first = sizeof(s->buf) - s->head;
		if (first > n)
			first = n;
		memcpy(chunk, s->buf + s->head, first);
		memcpy(chunk + first, s->buf, n - first);
		s->head = (s->head + n) % sizeof(s->buf);
		s->len -= n;
		inflight = true;
		pthread_mutex_unlock(&lock);

		/* The only place output can block: this thread, nobody waits for it. */
		size_t off = 0;
		while (off < n) {
			ssize_t w = write(which + 1, chunk + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				__atomic_add_fetch(&write_errors, n - off, __ATOMIC_RELAXED);
				break;
			}
			off += (size_t)w;
		}
		pthread_mutex_lock(&lock);
		inflight = false;
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int log_start(char *err, size_t errlen)
{
	sigset_t all, old;
	pthread_attr_t ta;
	int rc;

	if (running)
		return G_OK;
	signal(SIGPIPE, SIG_IGN);   /* a reader that left: EPIPE for the writer, not death */
	fflush(stdout);
	fflush(stderr);
	stopping = false;
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, 64 * 1024);   /* mlockall pins it: keep it small */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&writer, &ta, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&ta);
	if (rc) {
		set_err(err, errlen, "cannot start the output thread: %s", strerror(rc));
		return G_ERR;
	}
	__atomic_store_n(&running, true, __ATOMIC_RELEASE);
	return G_OK;
}

void log_stop(unsigned wait_ms)
{
	struct timespec ts;

	if (!__atomic_load_n(&running, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	/* A reader that never reads must not keep us from exiting: give up after wait_ms. */
	if (pthread_timedjoin_np(writer, NULL, &ts) == 0)
		__atomic_store_n(&running, false, __ATOMIC_RELEASE);
}

void log_flush(unsigned wait_ms)
{
	uint64_t end = g_now_ns() + (uint64_t)wait_ms * 1000000ull;
	struct timespec ts;

	if (!__atomic_load_n(&running, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&lock);
	while ((streams[0].len || streams[1].len || inflight) && g_now_ns() < end) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&drained, &lock, &ts);
	}
	pthread_mutex_unlock(&lock);
}

void g_vlogf(int fd, const char *fmt, va_list ap)
{
	char msg[2048];
	int n;

	if (!__atomic_load_n(&running, __ATOMIC_ACQUIRE)) {
		vfprintf(fd == 1 ? stdout : stderr, fmt, ap);
		return;
	}
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg)) {       /* truncated: still one whole line */
		n = sizeof(msg) - 1;
		msg[n - 1] = '\n';
	}
	struct stream *s = &streams[fd == 1 ? 0 : 1];
	pthread_mutex_lock(&lock);
	if (sizeof(s->buf) - s->len < (size_t)n) {
		dropped++;
	} else {
		size_t tail = (s->head + s->len) % sizeof(s->buf);
		size_t first = sizeof(s->buf) - tail;
		if (first > (size_t)n)
			first = (size_t)n;
		memcpy(s->buf + tail, msg, first);
		memcpy(s->buf, msg + first, (size_t)n - first);
		s->len += (size_t)n;
		pthread_cond_signal(&cond);
	}
	pthread_mutex_unlock(&lock);
}

void g_logf(int fd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_vlogf(fd, fmt, ap);
	va_end(ap);
}

uint64_t log_dropped(void)
{
	pthread_mutex_lock(&lock);
	uint64_t d = dropped;
	pthread_mutex_unlock(&lock);
	return d;
}

uint64_t log_write_errors(void)
{
	return __atomic_load_n(&write_errors, __ATOMIC_RELAXED);
}
