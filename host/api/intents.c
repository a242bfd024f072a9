/* SPDX-License-Identifier: GPL-2.0 */
/*
 * intents.c - Gthulhu's pod and node intents: their merkle roots (computed exactly as
 * Gthulhu's decision maker does, so its Manager's drift detection agrees with us), the
 * rules they become, and the pod -> pid table of GET /api/v1/pods/pids.
 *
 * Merkle root (Gthulhu api/pkg/util/merkle.go, decisionmaker/service): leaves are the
 * SHA-256 hex of each intent's "field=value|..." serialisation, in the order of a sort
 * key; pairs are hashed over their decoded bytes, an odd node pairs with itself; no
 * leaves: SHA-256("").
 */
#include <dirent.h>
#include <stdarg.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "common.h"
#include "internal.h"

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void pair_hash(const char *l, const char *r, char out[65])
{
	unsigned char b[64];

	for (int i = 0; i < 32; i++) {
		b[i] = (unsigned char)(unhex(l[2 * i]) << 4 | unhex(l[2 * i + 1]));
		b[32 + i] = (unsigned char)(unhex(r[2 * i]) << 4 | unhex(r[2 * i + 1]));
	}
	sha256_hex(b, sizeof(b), out);
}

/* leaves[n][65] -> root. leaves is overwritten. */
static void merkle_root(char (*h)[65], int n, char out[65])
{
	if (n == 0) {
		sha256_hex("", 0, out);
		return;
	}
	while (n > 1) {
		int m = 0;
		for (int i = 0; i < n; i += 2) {
			char p[65];
			pair_hash(h[i], h[i + 1 < n ? i + 1 : i], p);
			memcpy(h[m++], p, 65);
		}
		n = m;
	}
	memcpy(out, h[0], 65);
}

struct keyed {
	char *key;
	char *ser;
};

static int cmp_keyed(const void *a, const void *b)
{
	return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

static void root_of(struct keyed *k, int n, char out[65])
{
	char (*h)[65] = malloc((size_t)(n ? n : 1) * 65);

	if (!h) {
		out[0] = '\0';
		return;
	}
	qsort(k, (size_t)n, sizeof(*k), cmp_keyed);
	for (int i = 0; i < n; i++)
		sha256_hex(k[i].ser, strlen(k[i].ser), h[i]);
	merkle_root(h, n, out);
	free(h);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

void api_intents_root(const struct api_intent *in, int n, char out[65])
{
	struct keyed *k = calloc((size_t)(n ? n : 1), sizeof(*k));

	for (int i = 0; k && i < n; i++) {
		const struct api_intent *t = &in[i];
		k[i].key = fmt("%s|%s|%s|%s|%s|%lld|%lld|%s", t->pod_name, t->pod_id, t->node_id,
			       t->ns, t->command_regex, t->priority, t->execution_time, t->labels);
		k[i].ser = fmt("podName=%s|podID=%s|nodeID=%s|k8sNamespace=%s|commandRegex=%s|"
			       "priority=%lld|executionTime=%lld|podLabels=%s", t->pod_name,
			       t->pod_id, t->node_id, t->ns, t->command_regex, t->priority,
			       t->execution_time, t->labels);
	}
	if (k)
		root_of(k, n, out);
	for (int i = 0; k && i < n; i++) {
		free(k[i].key);
		free(k[i].ser);
	}
	free(k);
}

void api_nodepol_root(const struct api_node_policy *in, int n, char out[65])
{
	struct keyed *k = calloc((size_t)(n ? n : 1), sizeof(*k));

	for (int i = 0; k && i < n; i++) {
		const struct api_node_policy *t = &in[i];
		k[i].key = fmt("%s|%s|%s|%lld|%lld", t->policy_id, t->node_id, t->command_regex,
			       t->priority, t->execution_time);
		k[i].ser = fmt("policyID=%s|nodeID=%s|commandRegex=%s|priority=%lld|executionTime=%lld",
			       t->policy_id, t->node_id, t->command_regex, t->priority,
			       t->execution_time);
	}
	if (k)
		root_of(k, n, out);
	for (int i = 0; k && i < n; i++) {
		free(k[i].key);
		free(k[i].ser);
	}
	free(k);
}

/* One intent -> one rule; false (with a warning) if it cannot be one. */
static bool to_rule(struct cfg_strategy *r, const char *what, const char *regex,
		    long long prio, long long et)
{
	char why[256], text[32];

	r->priority = prio > 0;
	if (regex[0] && cfg_strategy_set_text(r, "command_regex", regex, why, sizeof(why))) {
		g_warn("api: %s: commandRegex skipped: %s", what, why);
		return false;
	}
	snprintf(text, sizeof(text), "%lld", et < 0 ? 0 : et);
	if (cfg_strategy_set_text(r, "execution_time", text, why, sizeof(why))) {
		g_warn("api: %s: executionTime skipped: %s", what, why);
		return false;
	}
	return true;
}

int api_intent_rules(const struct api *a, struct cfg_strategy *out, int max)
{
	int n = 0;
	char what[192];

	for (int i = 0; i < a->nr_intents && n < max; i++) {
		const struct api_intent *t = &a->intents[i];
		struct cfg_strategy *r = &out[n];

		memset(r, 0, sizeof(*r));
		snprintf(what, sizeof(what), "intent for pod %.64s", t->pod_id);
		if (!strat_valid_pod_uid(t->pod_id)) {
			g_warn("api: %s: podID is not a pod UID, skipped", what);
			continue;
		}
		snprintf(r->pod_uid, sizeof(r->pod_uid), "%.36s", t->pod_id);
		if (to_rule(r, what, t->command_regex, t->priority, t->execution_time))
			n++;
	}
	for (int i = 0; i < a->nr_nodepol && n < max; i++) {
		const struct api_node_policy *t = &a->nodepol[i];
		struct cfg_strategy *r = &out[n];

		memset(r, 0, sizeof(*r));
		if (!t->command_regex[0])
			continue;                  /* as Gthulhu: a node policy needs a regex */
		snprintf(what, sizeof(what), "node intent %.64s", t->policy_id);
		if (to_rule(r, what, t->command_regex, t->priority, t->execution_time))
			n++;
	}
	return n;
}

static bool read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

json_t *api_pods_json(const char *proc_root)
{
	json_t *pods = json_object();       /* uid -> pod object, turned into an array below */
	DIR *d = opendir(proc_root);
	struct dirent *de;
	char path[512], cg[4096], comm[64], stat[512], uid[40], cid[72];

	while (d && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%ld/cgroup", proc_root, pid);
		if (!read_small(path, cg, sizeof(cg)))
			continue;
		for (char *l = cg; *l;) {
			char *e = strchr(l, '\n'), *c1, *c2;
			if (e)
				*e = '\0';
			if ((c1 = strchr(l, ':')) && (c2 = strchr(c1 + 1, ':')) &&
			    strat_parse_kubepods(c2 + 1, uid, sizeof(uid), cid, sizeof(cid))) {
				json_t *pod = json_object_get(pods, uid);
				if (!pod) {
					pod = json_object();
					json_object_set_new(pod, "pod_uid", json_string(uid));
					json_object_set_new(pod, "processes", json_array());
					json_object_set_new(pods, uid, pod);
				}
				json_t *p = json_object();
				json_object_set_new(p, "pid", json_integer(pid));
				snprintf(path, sizeof(path), "%s/%ld/comm", proc_root, pid);
				comm[0] = '\0';
				if (read_small(path, comm, sizeof(comm)))
					comm[strcspn(comm, "\n")] = '\0';
				json_object_set_new(p, "command", json_string(comm));
				snprintf(path, sizeof(path), "%s/%ld/stat", proc_root, pid);
				char *rp;
				if (read_small(path, stat, sizeof(stat)) && (rp = strrchr(stat, ')'))) {
					int ppid = 0;
					if (sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid > 0)
						json_object_set_new(p, "ppid", json_integer(ppid));
				}
				if (cid[0])
					json_object_set_new(p, "container_id", json_string(cid));
				json_array_append_new(json_object_get(pod, "processes"), p);
				break;                  /* one line per process is enough */
			}
			if (!e)
				break;
			l = e + 1;
		}
	}
	if (d)
		closedir(d);
	json_t *arr = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(pods, k, v)
		json_array_append(arr, v);
	json_decref(pods);
	return arr;
}
