/*
 * watch_stream.c - a watch's thread on etcd: one watch stream on the
 * lock's keys, P/lock/<name>/, and what each event means for the lock.
 *
 * The thread keeps the lock's keys (the waiters, oldest first) as the
 * stream reports them, so that it knows which key holds: the oldest, as
 * in the lock recipe (lock.c) and lm_leader_get. Read that way, the
 * events of the keys are the lock's changes:
 *
 *   a key created while no key exists       GRANTED to it
 *   the oldest key deleted                  RELEASED or EXPIRED (below),
 *                                           then GRANTED to the next
 *                                           oldest, if there is one (two
 *                                           changes at one revision)
 *   the oldest key's value put again        PROCLAIMED (lm_proclaim)
 *   any other key created or deleted        no change: a waiter came or
 *                                           gave up
 *
 * A change's version is the etcd revision it happened at, so every
 * watch of a lock, opened whenever, gives one change one version, and
 * a version is never reported twice.
 *
 * RELEASED or EXPIRED: the deletion of a released key and of a key whose
 * lease ended are the same DELETE event, and the lease is revoked right
 * after a release, so neither the event nor the lease can tell them
 * apart. The release's txn writes "released <token>" to P/last/<name> at
 * the revision of the deletion (lock.c), so the thread reads that key as
 * of the deletion's revision: the mark of this token at exactly that
 * revision is a release; anything else is a lease that ended (etcd does
 * not know a dead holder from a frozen one). If that revision was
 * compacted away, the key as it is now still tells a release when it
 * says "released <token>"; when etcd cannot be read, the change is
 * reported as CHANGED (how is not known), never guessed.
 *
 * A broken stream is resumed by etcd_watch() from the revision after the
 * last event (on the next endpoint), so no event is lost; a stream that
 * etcd cancels (the revision was compacted) is followed by a fresh read
 * of the keys, and a holder that changed meanwhile is one CHANGED event.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "etcd.h"

/* ---- the keys ------------------------------------------------------ */

/* "pid host\nvalue": the pid and the value. */
static void parse_value(const json_t *kv, struct etcd_wkey *k)
{
	char val[LM_VALUE_MAX + 128];
	k->pid = 0;
	k->value[0] = '\0';
	if (etcd_kv_bytes(kv, "value", val, sizeof(val)) < 0)
		return;
	char *nl = strchr(val, '\n');
	if (nl != NULL) {
		snprintf(k->value, sizeof(k->value), "%s", nl + 1);
		*nl = '\0';
	}
	if (sscanf(val, "%d", &k->pid) != 1)
		k->pid = 0;
}

/* Append kv (the newest key) to the keys. */
static int add_key(struct lm_watch *w, const json_t *kv, int64_t create_rev)
{
	char key[ETCD_KEY_MAX + 24];
	if (etcd_kv_bytes(kv, "key", key, sizeof(key)) < 0)
		return 0; /* not one of ours: ignore it */
	if (w->nkeys == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 8;
		struct etcd_wkey *p = realloc(w->keys, cap * sizeof(*p));
		if (p == NULL)
			return LM_ESYS;
		w->keys = p;
		w->cap = cap;
	}
	struct etcd_wkey *k = &w->keys[w->nkeys];
	k->key = strdup(key);
	if (k->key == NULL)
		return LM_ESYS;
	k->create_rev = create_rev;
	parse_value(kv, k);
	w->nkeys++;
	return 0;
}

static ssize_t find_key(const struct lm_watch *w, const char *key)
{
	for (size_t i = 0; i < w->nkeys; i++)
		if (strcmp(w->keys[i].key, key) == 0)
			return (ssize_t)i;
	return -1;
}

static void drop_key(struct lm_watch *w, size_t i)
{
	free(w->keys[i].key);
	memmove(&w->keys[i], &w->keys[i + 1],
		(w->nkeys - i - 1) * sizeof(w->keys[0]));
	w->nkeys--;
}

void etcd_wkeys_free(struct lm_watch *w)
{
	while (w->nkeys > 0)
		drop_key(w, w->nkeys - 1);
	free(w->keys);
	w->keys = NULL;
	w->cap = 0;
}

int etcd_wkeys_load(struct lm_watch *w, json_t *kvs)
{
	etcd_wkeys_free(w);
	size_t i;
	json_t *kv;
	json_array_foreach(kvs, i, kv) {
		int rc = add_key(w, kv, etcd_i64(kv, "create_revision"));
		if (rc != 0)
			return rc;
	}
	return 0;
}

json_t *etcd_wkeys_range(const struct lm_watch *w)
{
	json_t *r = etcd_range_req(w->lp, w->lp_end);
	json_object_set_new(r, "sort_target", json_string("CREATE"));
	json_object_set_new(r, "sort_order", json_string("ASCEND"));
	return r;
}

void etcd_wkeys_view(const struct lm_watch *w, lm_watch_event *ev)
{
	ev->holders = w->nkeys > 0;
	ev->held_mode = LM_MODE_X;
	ev->holder_pid = w->nkeys > 0 ? w->keys[0].pid : 0;
	ev->holder_token =
		w->nkeys > 0 ? (uint64_t)w->keys[0].create_rev : 0;
}

/* ---- changes ------------------------------------------------------- */

/* What one response of the stream changed, handed over at its end. */
struct batch {
	uint32_t n;
	lm_watch_event last;
};

static void note(struct lm_watch *w, struct batch *b, int64_t rev,
		 uint32_t what, const struct etcd_wkey *k)
{
	b->n++;
	memset(&b->last, 0, sizeof(b->last));
	b->last.version = (uint64_t)rev;
	b->last.what = what;
	b->last.pid = k != NULL ? k->pid : 0;
	b->last.mode = LM_MODE_X;
	b->last.token = k != NULL ? (uint64_t)k->create_rev : 0;
	etcd_wkeys_view(w, &b->last);
}

static void publish(struct lm_watch *w, const struct batch *b)
{
	if (b->n == 0)
		return;
	pthread_mutex_lock(&w->mu);
	w->pend += b->n;
	w->ev = b->last;
	w->stream_err = 0;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	/* After the hand-over: lm_watch_next drains the eventfd before it
	 * looks, so a reader woken by this write finds the change. */
	const uint64_t one = 1;
	if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return; /* a full counter is readable anyway */
}

/* Was the deletion of `token`'s key at revision rev its release? */
static uint32_t how_ended(struct lm_watch *w, int64_t rev, int64_t token)
{
	char want[64], got[64];
	snprintf(want, sizeof(want), "released %lld", (long long)token);
	/* Bounded: the thread must not hang on a cluster that is gone
	 * (lm_watch_close waits for it). */
	int64_t deadline = lm_now_ns() + (int64_t)ETCD_REQUEST_MS * 1000000;
	json_t *req = etcd_range_req(w->last, NULL);
	json_object_set_new(req, "revision",
			    json_sprintf("%lld", (long long)rev));
	json_t *r;
	int rc = etcd_post(w->e2, "/v3/kv/range", req, deadline, &r);
	bool at_rev = rc == 0;
	if (rc == ETCD_EGRPC) /* compacted: the key as it is now */
		rc = etcd_post(w->e2, "/v3/kv/range",
			       etcd_range_req(w->last, NULL), deadline, &r);
	if (rc != 0)
		return LM_WATCH_CHANGED;
	json_t *kv = json_array_get(json_object_get(r, "kvs"), 0);
	bool released = kv != NULL &&
			etcd_kv_bytes(kv, "value", got, sizeof(got)) > 0 &&
			strcmp(got, want) == 0 &&
			(!at_rev || etcd_i64(kv, "mod_revision") == rev);
	json_decref(r);
	if (released)
		return LM_WATCH_RELEASED;
	return at_rev ? LM_WATCH_EXPIRED : LM_WATCH_CHANGED;
}

static int apply_put(struct lm_watch *w, struct batch *b, json_t *kv,
		     int64_t rev)
{
	int64_t created = etcd_i64(kv, "create_revision");
	char key[ETCD_KEY_MAX + 24];
	if (etcd_kv_bytes(kv, "key", key, sizeof(key)) < 0)
		return 0;
	ssize_t i = find_key(w, key);
	if (i < 0) {
		bool first = w->nkeys == 0;
		int rc = add_key(w, kv, created);
		if (rc != 0)
			return rc;
		if (first)
			note(w, b, rev, LM_WATCH_GRANTED, &w->keys[0]);
		return 0;
	}
	/* A key put again: a new value (lm_proclaim). */
	parse_value(kv, &w->keys[i]);
	if (i == 0)
		note(w, b, rev, LM_WATCH_PROCLAIMED, &w->keys[0]);
	return 0;
}

static void apply_delete(struct lm_watch *w, struct batch *b, json_t *kv,
			 int64_t rev)
{
	char key[ETCD_KEY_MAX + 24];
	if (etcd_kv_bytes(kv, "key", key, sizeof(key)) < 0)
		return;
	ssize_t i = find_key(w, key);
	if (i < 0)
		return;
	if (i > 0) { /* a waiter gave up */
		drop_key(w, (size_t)i);
		return;
	}
	struct etcd_wkey was = w->keys[0];
	was.key = NULL;
	drop_key(w, 0);
	note(w, b, rev, how_ended(w, rev, was.create_rev), &was);
	if (w->nkeys > 0)
		note(w, b, rev, LM_WATCH_GRANTED, &w->keys[0]);
}

/* One response of the stream: its events, oldest first. */
static bool on_events(void *arg, json_t *result)
{
	struct lm_watch *w = arg;
	struct batch b = {0};
	size_t k;
	json_t *ev;
	json_array_foreach(json_object_get(result, "events"), k, ev) {
		json_t *kv = json_object_get(ev, "kv");
		int64_t rev = etcd_i64(kv, "mod_revision");
		const char *type = json_string_value(
			json_object_get(ev, "type"));
		/* The gateway leaves out the default, PUT. */
		if (type != NULL && strcmp(type, "DELETE") == 0) {
			apply_delete(w, &b, kv, rev);
		} else if (apply_put(w, &b, kv, rev) != 0) {
			w->lost = true; /* out of memory: read them again */
			break;
		}
		if (rev >= w->seen_rev)
			w->seen_rev = rev + 1;
	}
	publish(w, &b);
	return w->lost || etcd_cancelled(&w->cancel);
}

/* After etcd canceled the stream: read the keys again, from scratch. */
static int resync(struct lm_watch *w)
{
	json_t *r;
	int rc = etcd_post(w->e2, "/v3/kv/range", etcd_wkeys_range(w),
			   etcd_op_deadline(), &r);
	if (rc != 0)
		return rc;
	uint64_t had = w->nkeys > 0 ? (uint64_t)w->keys[0].create_rev : 0;
	rc = etcd_wkeys_load(w, json_object_get(r, "kvs"));
	int64_t rev = etcd_rev(r);
	json_decref(r);
	if (rc != 0)
		return rc;
	w->next_rev = rev + 1;
	uint64_t has = w->nkeys > 0 ? (uint64_t)w->keys[0].create_rev : 0;
	if (has != had) {
		struct batch b = {0};
		note(w, &b, rev, LM_WATCH_CHANGED,
		     w->nkeys > 0 ? &w->keys[0] : NULL);
		publish(w, &b);
	}
	return 0;
}

static void pause_ms(struct lm_watch *w, int ms)
{
	for (int k = 0; k < ms / 10 && !etcd_cancelled(&w->cancel); k++) {
		struct timespec ts = {.tv_nsec = 10000000};
		nanosleep(&ts, NULL);
	}
}

void *etcd_watch_thread(void *arg)
{
	struct lm_watch *w = arg;
	w->seen_rev = w->next_rev;
	while (!etcd_cancelled(&w->cancel)) {
		if (w->lost) {
			int rc = resync(w);
			if (rc != 0) {
				pthread_mutex_lock(&w->mu);
				w->stream_err = rc;
				pthread_mutex_unlock(&w->mu);
				pause_ms(w, 200);
				continue;
			}
			w->seen_rev = w->next_rev;
			w->lost = false;
		}
		int rc = etcd_watch(w->e2, w->curl_stream, w->lp, w->lp_end,
				    &w->next_rev, INT64_MAX, &w->cancel,
				    on_events, w);
		if (etcd_cancelled(&w->cancel))
			break;
		if (rc == 0 && w->next_rev > w->seen_rev) {
			/* etcd canceled the watch because our revision was
			 * compacted (etcd_watch moved next_rev to the
			 * compaction's): the events between are gone. */
			w->lost = true;
			continue;
		}
		if (rc == 0) {
			/* Canceled by a member that lost its leader: go on
			 * from the same revision at the next member. */
			if (!w->lost) {
				w->e2->cur = (w->e2->cur + 1) % w->e2->nep;
				pause_ms(w, 50);
			}
			continue;
		}
		/* Not etcd's stream, or out of memory: say so to
		 * lm_watch_next's caller, and try again. */
		pthread_mutex_lock(&w->mu);
		w->stream_err = rc;
		pthread_mutex_unlock(&w->mu);
		pause_ms(w, 200);
	}
	return NULL;
}
