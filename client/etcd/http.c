/*
 * http.c - talking to etcd's v3 JSON gateway with libcurl.
 *
 * One request goes to the endpoint that answered last; a connection
 * error (refused, reset, timed out, nothing received) or an "unavailable"
 * answer (a member without a leader: every request carries gRPC's
 * "hasleader" metadata, so a cut-off member says so instead of serving
 * stale reads or silent watches) moves it to the next endpoint, round
 * after round, until the caller's deadline. A request is retried only
 * in that case, so every request the recipe sends must be safe to send
 * twice (lock.c says why each one is).
 *
 * Watches are streams: one JSON object per line, read as they arrive by
 * a write callback that can end the transfer. A broken stream is resumed
 * on the next endpoint from the revision after the last event seen.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "curl_load.h"
#include "etcd.h"

/* libcurl's table (curl_load.h). Only called where a handle exists,
 * which etcd_curl_new made after loading it: never NULL there. */
static const struct lm_curl *lc(void)
{
	return lm_curl();
}

void *etcd_curl_new(void)
{
	const struct lm_curl *c = lm_curl();
	return c != NULL ? c->easy_init() : NULL;
}

void etcd_curl_free(void *curl)
{
	if (curl != NULL)
		lc()->easy_cleanup(curl);
}

/* A growing answer. */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

#define ANSWER_MAX (64u << 20) /* a range of every key: bounded anyway */

static bool buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *q = cap > ANSWER_MAX ? NULL : realloc(b->p, cap);
		if (q == NULL) {
			b->oom = true;
			return false;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	return buf_add(arg, p, size * nmemb) ? size * nmemb : 0;
}

/* A connection-level failure: worth the next endpoint. */
static bool conn_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static struct curl_slist *json_headers(void)
{
	if (lm_curl() == NULL)
		return NULL;
	struct curl_slist *h = lc()->slist_append(NULL,
		"Content-Type: application/json");
	/* clientv3's WithRequireLeader: a member cut off from its leader
	 * refuses (unary) or cancels (watch) instead of going stale. */
	if (h != NULL)
		h = lc()->slist_append(h, "Grpc-Metadata-hasleader: true");
	/* No "Expect: 100-continue" round trip for larger bodies. */
	if (h != NULL)
		h = lc()->slist_append(h, "Expect:");
	return h;
}

static void free_headers(struct curl_slist *hdr)
{
	if (hdr != NULL)
		lc()->slist_free_all(hdr);
}

static void setup(CURL *cu, const char *url, const char *body,
		  struct curl_slist *hdr, int64_t timeout_ms)
{
	lc()->easy_reset(cu);
	lc()->easy_setopt(cu, CURLOPT_URL, url);
	lc()->easy_setopt(cu, CURLOPT_POST, 1L);
	lc()->easy_setopt(cu, CURLOPT_POSTFIELDS, body);
	lc()->easy_setopt(cu, CURLOPT_HTTPHEADER, hdr);
	lc()->easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	lc()->easy_setopt(cu, CURLOPT_TCP_NODELAY, 1L);
	lc()->easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	lc()->easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS,
			  (long)(timeout_ms < 1000 ? timeout_ms : 1000));
	/* Plain http only: no redirect elsewhere, no proxy from the
	 * environment between us and the cluster. */
	lc()->easy_setopt(cu, CURLOPT_PROXY, "");
	lc()->easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http");
}

/* Between two rounds over every endpoint (a cluster electing a leader
 * takes ~ an election timeout): a short, growing pause. */
static void backoff(int round, int64_t deadline_ns)
{
	int64_t ns = (int64_t)(round < 5 ? 10 << round : 200) * 1000000;
	int64_t left = deadline_ns - lm_now_ns();
	if (ns > left)
		ns = left;
	if (ns <= 0)
		return;
	struct timespec ts = {.tv_sec = ns / 1000000000,
			      .tv_nsec = ns % 1000000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* What an etcd error answer says, into e->detail; true if it is one
 * (an object with "code" and "error" or "message"). */
static bool grpc_error(struct lm_etcd *e, const char *ep, json_t *j,
		       int *code)
{
	json_t *jc = json_object_get(j, "code");
	json_t *jm = json_object_get(j, "message");
	if (jm == NULL)
		jm = json_object_get(j, "error");
	if (!json_is_integer(jc) || !json_is_string(jm))
		return false;
	*code = (int)json_integer_value(jc);
	snprintf(e->detail, sizeof(e->detail), "%s: %s", ep,
		 json_string_value(jm));
	return true;
}

/* gRPC's UNAVAILABLE: no leader, leader changed, member stopping. */
#define GRPC_UNAVAILABLE 14
#define GRPC_DEADLINE 4

int etcd_post(struct lm_etcd *e, const char *path, json_t *body,
	      int64_t deadline_ns, json_t **out)
{
	*out = NULL;
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct curl_slist *hdr = json_headers();
	int rc = LM_ESYS;
	if (text == NULL || hdr == NULL || e->curl == NULL)
		goto out;
	for (int round = 0;; round++) {
		unsigned refused = 0;
		for (unsigned k = 0; k < e->nep; k++) {
			unsigned i = (e->cur + k) % e->nep;
			int64_t left_ms = (deadline_ns - lm_now_ns()) / 1000000;
			if (left_ms <= 0)
				goto timed_out;
			char url[600];
			snprintf(url, sizeof(url), "%s%s", e->ep[i], path);
			struct buf b = {0};
			setup(e->curl, url, text, hdr,
			      left_ms < ETCD_REQUEST_MS ? left_ms
							: ETCD_REQUEST_MS);
			lc()->easy_setopt(e->curl, CURLOPT_WRITEFUNCTION,
					  on_body);
			lc()->easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
			CURLcode cr = lc()->easy_perform(e->curl);
			long status = 0;
			lc()->easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE,
					   &status);
			if (b.oom) {
				free(b.p);
				rc = LM_ESYS;
				errno = ENOMEM;
				goto out;
			}
			if (cr != CURLE_OK) {
				free(b.p);
				snprintf(e->detail, sizeof(e->detail),
					 "%s: %s", e->ep[i] + 7,
					 lc()->easy_strerror(cr));
				if (cr == CURLE_COULDNT_CONNECT)
					refused++;
				if (conn_error(cr))
					continue;
				rc = LM_EINCOMPAT;
				goto out;
			}
			json_error_t je;
			json_t *j = b.p != NULL ? json_loads(b.p, 0, &je)
						: NULL;
			free(b.p);
			int code;
			if (j != NULL && json_is_object(j) &&
			    grpc_error(e, e->ep[i] + 7, j, &code)) {
				json_decref(j);
				if (code == GRPC_UNAVAILABLE ||
				    code == GRPC_DEADLINE)
					continue;
				rc = ETCD_EGRPC;
				goto out;
			}
			if (status != 200 || j == NULL || !json_is_object(j) ||
			    (json_object_get(j, "header") == NULL &&
			     json_object_get(j, "result") == NULL)) {
				json_decref(j);
				snprintf(e->detail, sizeof(e->detail),
					 "%s answered HTTP %ld to POST %s, "
					 "not as etcd's v3 JSON gateway does",
					 e->ep[i] + 7, status, path);
				rc = LM_EINCOMPAT;
				goto out;
			}
			e->cur = i;
			*out = j;
			rc = 0;
			goto out;
		}
		if (refused == e->nep && round == 0 &&
		    deadline_ns - lm_now_ns() < (int64_t)ETCD_REQUEST_MS *
							1000000) {
			/* Nothing listens anywhere, and the caller was not
			 * going to wait for it. */
			rc = LM_ENOSUPERVISOR;
			goto out;
		}
		backoff(round, deadline_ns);
		if (lm_now_ns() >= deadline_ns)
			goto timed_out;
	}
timed_out:
	rc = LM_ENOQUORUM;
out:
	free(text);
	free_headers(hdr);
	return rc;
}

/* ---- watch streams ---------------------------------------------- */

struct stream {
	struct buf b;
	size_t used;
	int64_t *next_rev;
	etcd_event_fn fn;
	void *arg;
	bool ended;      /* fn said so */
	bool canceled;   /* etcd canceled the watch */
	bool bad;        /* not etcd's answer */
	bool created;
};

/* One line of the stream. */
static void stream_line(struct stream *s, const char *line, size_t n)
{
	json_error_t je;
	json_t *j = json_loadb(line, n, 0, &je);
	json_t *r = json_object_get(j, "result");
	if (!json_is_object(r)) {
		s->bad = true;
		json_decref(j);
		return;
	}
	if (json_is_true(json_object_get(r, "created")))
		s->created = true;
	if (json_is_true(json_object_get(r, "canceled"))) {
		/* Compacted past next_rev, or the member lost its leader:
		 * the caller looks at the keys again and restarts. */
		int64_t cr = etcd_i64(r, "compact_revision");
		if (cr > *s->next_rev)
			*s->next_rev = cr;
		s->canceled = true;
		json_decref(j);
		return;
	}
	json_t *evs = json_object_get(r, "events");
	if (json_is_array(evs) && json_array_size(evs) > 0) {
		size_t k;
		json_t *ev;
		json_array_foreach(evs, k, ev) {
			int64_t mr = etcd_i64(json_object_get(ev, "kv"),
					      "mod_revision");
			if (mr >= *s->next_rev)
				*s->next_rev = mr + 1;
		}
		if (s->fn(s->arg, r))
			s->ended = true;
	}
	json_decref(j);
}

static size_t on_stream(char *p, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;
	size_t n = size * nmemb;
	if (!buf_add(&s->b, p, n))
		return 0;
	for (;;) {
		char *nl = memchr(s->b.p + s->used, '\n', s->b.len - s->used);
		if (nl == NULL)
			break;
		size_t ln = (size_t)(nl - (s->b.p + s->used));
		if (ln > 0)
			stream_line(s, s->b.p + s->used, ln);
		s->used += ln + 1;
		if (s->ended || s->canceled || s->bad)
			return 0; /* ends the transfer */
	}
	/* Keep only the unfinished line. */
	memmove(s->b.p, s->b.p + s->used, s->b.len - s->used);
	s->b.len -= s->used;
	s->used = 0;
	return n;
}

/* ---- cancelling a stream from another thread --------------------
 *
 * A stream that nothing changes sits in libcurl's poll() until its
 * timeout, and libcurl's progress callback runs only about once a second
 * then: too slow for lm_watch_close. So the stream's socket is opened
 * through a callback that records it, and etcd_cancel_stream() shuts it
 * down, which makes that poll() return at once (EOF). The mutex orders
 * the record, the shutdown and the close: a socket is never shut down
 * after libcurl closed it (its number may be another file's by then),
 * and a socket opened after the cancel is refused. */

void etcd_cancel_init(struct etcd_cancel *k)
{
	pthread_mutex_init(&k->mu, NULL);
	atomic_init(&k->stop, false);
	k->fd = -1;
}

void etcd_cancel_destroy(struct etcd_cancel *k)
{
	pthread_mutex_destroy(&k->mu);
}

void etcd_cancel_stream(struct etcd_cancel *k)
{
	pthread_mutex_lock(&k->mu);
	atomic_store(&k->stop, true);
	if (k->fd >= 0)
		shutdown(k->fd, SHUT_RDWR);
	pthread_mutex_unlock(&k->mu);
}

bool etcd_cancelled(struct etcd_cancel *k)
{
	return k != NULL && atomic_load(&k->stop);
}

static curl_socket_t open_sock(void *arg, curlsocktype purpose,
			       struct curl_sockaddr *a)
{
	struct etcd_cancel *k = arg;
	(void)purpose;
	pthread_mutex_lock(&k->mu);
	curl_socket_t fd = CURL_SOCKET_BAD;
	if (!atomic_load(&k->stop)) {
		fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
		k->fd = fd;
	}
	pthread_mutex_unlock(&k->mu);
	return fd;
}

static int close_sock(void *arg, curl_socket_t fd)
{
	struct etcd_cancel *k = arg;
	pthread_mutex_lock(&k->mu);
	if (k->fd == fd)
		k->fd = -1;
	int rc = close(fd);
	pthread_mutex_unlock(&k->mu);
	return rc;
}

/* Between two calls, and as a second line behind the shutdown. */
static int progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
		    curl_off_t d)
{
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return etcd_cancelled(arg) ? 1 : 0;
}

int etcd_watch(struct lm_etcd *e, void *curl, const char *key,
	       const char *range_end, int64_t *next_rev, int64_t until_ns,
	       struct etcd_cancel *cancel, etcd_event_fn on_event, void *arg)
{
	struct curl_slist *hdr = json_headers();
	if (hdr == NULL || curl == NULL) {
		free_headers(hdr);
		return LM_ESYS;
	}
	int rc;
	for (int round = 0;; round++) {
		unsigned i = e->cur % e->nep;
		int64_t left_ms = (until_ns - lm_now_ns()) / 1000000;
		if (left_ms <= 0) {
			rc = LM_ETIMEDOUT;
			break;
		}
		json_t *cr = etcd_range_req(key, range_end);
		json_object_set_new(cr, "start_revision",
				    json_sprintf("%lld", (long long)*next_rev));
		json_t *body = json_pack("{s:o}", "create_request", cr);
		char *text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (text == NULL) {
			rc = LM_ESYS;
			break;
		}
		char url[600];
		snprintf(url, sizeof(url), "%s/v3/watch", e->ep[i]);
		struct stream s = {.next_rev = next_rev, .fn = on_event,
				   .arg = arg};
		setup(curl, url, text, hdr, left_ms);
		lc()->easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_stream);
		lc()->easy_setopt(curl, CURLOPT_WRITEDATA, &s);
		if (cancel != NULL) {
			lc()->easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION,
					  open_sock);
			lc()->easy_setopt(curl, CURLOPT_OPENSOCKETDATA, cancel);
			lc()->easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION,
					  close_sock);
			lc()->easy_setopt(curl, CURLOPT_CLOSESOCKETDATA, cancel);
			lc()->easy_setopt(curl, CURLOPT_XFERINFOFUNCTION,
					  progress);
			lc()->easy_setopt(curl, CURLOPT_XFERINFODATA, cancel);
			lc()->easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		}
		CURLcode c = etcd_cancelled(cancel) ? CURLE_ABORTED_BY_CALLBACK
						    : lc()->easy_perform(curl);
		free(text);
		free(s.b.p);
		if (etcd_cancelled(cancel)) {
			rc = LM_ETIMEDOUT;
			break;
		}
		if (s.ended) {
			rc = 0;
			break;
		}
		if (s.canceled) {
			/* The caller reads the keys again. */
			rc = 0;
			break;
		}
		if (s.bad || s.b.oom) {
			snprintf(e->detail, sizeof(e->detail),
				 "%s: the watch stream is not etcd's",
				 e->ep[i] + 7);
			rc = s.b.oom ? LM_ESYS : LM_EINCOMPAT;
			break;
		}
		if (c == CURLE_OPERATION_TIMEDOUT && s.created) {
			rc = LM_ETIMEDOUT;
			break;
		}
		/* The stream broke (member killed, connection refused): the
		 * next endpoint, from the revision after the last event. */
		snprintf(e->detail, sizeof(e->detail), "%s: watch: %s",
			 e->ep[i] + 7, lc()->easy_strerror(c));
		e->cur = (i + 1) % e->nep;
		if ((round + 1) % (int)e->nep == 0)
			backoff(round / (int)e->nep, until_ns);
	}
	free_headers(hdr);
	return rc;
}
