/* SPDX-License-Identifier: GPL-2.0 */
/* watch.c - hot reload trigger; see watch.h. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "watch.h"

#define DIR_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
		    IN_ATTRIB)

int watch_open(struct watch *w, const char *policy, const char *lib_dir, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(policy, '/');

	memset(w, 0, sizeof(*w));
	w->policy_wd = -1;
	snprintf(w->policy, sizeof(w->policy), "%s", policy);
	snprintf(w->policy_name, sizeof(w->policy_name), "%s", slash ? slash + 1 : policy);
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == policy)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - policy), policy);

	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		goto fail;
	w->policy_wd = inotify_add_watch(w->fd, dir, DIR_EVENTS);
	if (w->policy_wd < 0)
		goto fail;
	if (lib_dir && lib_dir[0]) {
		int wd = inotify_add_watch(w->fd, lib_dir, DIR_EVENTS);
		if (wd >= 0)
			w->lib_wd[w->nr_lib++] = wd;
		DIR *d = opendir(lib_dir);
		struct dirent *de;
		while (d && (de = readdir(d)) && w->nr_lib < WATCH_MAX_DIRS) {
			char sub[PATH_MAX + 256];
			struct stat st;
			if (de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", lib_dir, de->d_name);
			if (stat(sub, &st) || !S_ISDIR(st.st_mode))
				continue;
			wd = inotify_add_watch(w->fd, sub, DIR_EVENTS);
			if (wd >= 0)
				w->lib_wd[w->nr_lib++] = wd;
		}
		if (d)
			closedir(d);
	}
	return G_OK;
fail:
	set_err(err, errlen, "inotify on %s: %s", dir, strerror(errno));
	watch_close(w);
	return G_ERR;
}

void watch_close(struct watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

static bool is_lib_wd(const struct watch *w, int wd)
{
	for (int i = 0; i < w->nr_lib; i++)
		if (w->lib_wd[i] == wd)
			return true;
	return false;
}

void watch_read(struct watch *w, uint64_t now)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	if (w->fd < 0)
		return;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n; ) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			bool hit = false;
			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				hit = true;   /* events lost: assume the worst */
			else if (ev->len && ev->wd == w->policy_wd && !strcmp(ev->name, w->policy_name))
				hit = true;
			else if (ev->len && is_lib_wd(w, ev->wd)) {
				size_t l = strlen(ev->name);
				hit = l > 4 && !strcmp(ev->name + l - 4, ".lua");
			}
			if (!hit)
				continue;
			w->nr_events++;
			if (!w->first_ns)
				w->first_ns = now;
			w->last_ns = now;
		}
	}
}

bool watch_due(struct watch *w, uint64_t now)
{
	struct stat st;

	if (!w->first_ns || now - w->last_ns < WATCH_QUIET_MS * 1000000ull)
		return false;
	/* Mid-save (missing or empty): wait for the editor, up to WATCH_MAX_MS. */
	if ((stat(w->policy, &st) || st.st_size == 0) &&
	    now - w->first_ns < WATCH_MAX_MS * 1000000ull)
		return false;
	w->first_ns = w->last_ns = 0;
	return true;
}
