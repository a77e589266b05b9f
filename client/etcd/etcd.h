/*
 * etcd.h - the etcd backend's private types, shared by its files.
 *
 *   client.c  the address, connect/disconnect, the ops table
 *   http.c    libcurl: one JSON request to the first endpoint that
 *             answers (failing over on connection errors), and watch
 *             streams
 *   kv.c      base64, key names, range / txn / delete bodies (jansson)
 *   lease.c   grant, keepalive, timetolive, revoke
 *   lock.c    the lock recipe (acquire, renew, release)
 *   semaphore.c  counting semaphores on the same recipe (N holders)
 *   watch.c   lm_watch_*: open, next, fd, close
 *   watch_stream.c  a watch's thread: one watch stream on the lock's
 *             keys, each event read as a grant, release, expiry or
 *             proclaim
 *   election.c  campaign, proclaim, resign, leader on the lock recipe
 *   list.c    every lock under the prefix (lockctl status)
 *
 * Keys under the cluster's prefix P (default "/lockmgr"):
 *
 *   P/lock/<name>/<lease id, 16 hex>   one per waiter or holder of
 *                                      <name>, attached to its lease;
 *                                      the lowest create revision holds
 *   P/sem/<name>/NNNN/w/<lease>        a semaphore's waiter or holder
 *                                      (NNNN: its slot count); the
 *                                      NNNN oldest hold (semaphore.c)
 *   P/sem/<name>/NNNN/s/<slot>         the slot a holder took, on its
 *                                      lease
 *   P/last/<name>                      "held <token>" or "released
 *                                      <token>": how the last grant
 *                                      ended (LM_GRANT_RECOVERED)
 *
 * <name> is the lock name with every byte outside [A-Za-z0-9._-] as
 * %XX, so that no name's keys fall under another's prefix ("a" and
 * "a/b" would, with '/' kept).
 */
#ifndef LOCKMGR_CLIENT_ETCD_H
#define LOCKMGR_CLIENT_ETCD_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../shm/clock.h"
#include "../internal.h"

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_PREFIX_MAX    128
#define ETCD_DEFAULT_PREFIX "/lockmgr"
/* Longest key: prefix, "/lock/", a name of 255 bytes each as %XX, '/',
 * 16 hex digits. */
#define ETCD_KEY_MAX (ETCD_PREFIX_MAX + 8 + 3 * LM_NAME_MAX + 1 + 16 + 1 + 8)
/* (+ 8: a semaphore's key has "/NNNN/w/" where a lock's has "/".) */
/* The longest lease lockctl and the library allow here (one day). */
#define ETCD_MAX_TTL_MS INT64_C(86400000)
/* How long one request may take before the next endpoint is tried. */
#define ETCD_REQUEST_MS 2000
/* How long the steps of an acquire or release may take in all when a
 * cluster is electing (they are not waits for the lock). */
#define ETCD_OP_MS 10000

/* The deadline of such steps begun now (monotonic ns). */
static inline int64_t etcd_op_deadline(void)
{
	return lm_now_ns() + (int64_t)ETCD_OP_MS * 1000000;
}

/* A grant of this client: what lm_grant's private part cannot hold. */
struct etcd_grant {
	struct etcd_grant *next;
	uint64_t id;           /* lm_grant.private_[1] */
	int64_t lease;         /* lm_grant.private_[0] */
	uint64_t token;        /* the key's create revision */
	int64_t lease_ttl_s;   /* the TTL etcd gave the lease */
	char key[ETCD_KEY_MAX + 48];
	char last[ETCD_KEY_MAX];
	char value[LM_VALUE_MAX + 1]; /* election value proclaimed */
	bool sem;              /* a semaphore's grant (semaphore.c) */
	char slot_key[ETCD_KEY_MAX + 48]; /* its slot's key */
};

struct lm_etcd {
	char *ep[ETCD_MAX_ENDPOINTS]; /* "http://host:port" */
	unsigned nep;
	unsigned cur;                 /* the endpoint that answered last */
	char prefix[ETCD_PREFIX_MAX + 1];
	char addr[512];               /* as given, for messages */
	void *curl;                   /* CURL *: unary requests */
	struct etcd_grant *grants;
	uint64_t next_id;
	int pid;
	char host[64];
	char detail[512];             /* lm_backend_detail */
	struct lm_watch *watches;     /* open watches (watch.c) */
};

/* A copy of e's address (endpoints, prefix, identity) with a curl
 * handle of its own and no grants, for another thread (a watch's
 * stream); NULL if out of memory. etcd_free() frees it. */
struct lm_etcd *etcd_clone(const struct lm_etcd *e);
void etcd_free(struct lm_etcd *e);

/* ---- http.c ------------------------------------------------------ */

/* Results of a request besides 0 and the LM_E* codes. */
#define ETCD_EGRPC (-1) /* etcd answered with a gRPC error: e->detail */

/*
 * POST body to endpoint path ("/v3/kv/range"), trying the endpoints in
 * turn, until deadline_ns (CLOCK_MONOTONIC) at the latest. 0 and *out
 * (the parsed answer, to json_decref), or:
 *   LM_ENOQUORUM      no endpoint answered, or none had a leader, until
 *                     the deadline (or LM_ENOSUPERVISOR, see below);
 *   LM_ENOSUPERVISOR  nothing listens at any endpoint (connection
 *                     refused everywhere, tried once each);
 *   LM_EINCOMPAT      what answered is not etcd's JSON gateway;
 *   ETCD_EGRPC        etcd refused the request (e->detail says why);
 *   LM_ESYS           out of memory.
 * body is consumed (json_decref'd).
 */
int etcd_post(struct lm_etcd *e, const char *path, json_t *body,
	      int64_t deadline_ns, json_t **out);

/*
 * A way for another thread to end a watch stream at once (http.c says
 * how): etcd_cancel_stream() makes the etcd_watch() that was given it
 * return LM_ETIMEDOUT, now or as soon as it starts.
 */
struct etcd_cancel {
	pthread_mutex_t mu;
	atomic_bool stop;
	int fd;              /* the stream's socket, -1 if none */
};
void etcd_cancel_init(struct etcd_cancel *k);
void etcd_cancel_destroy(struct etcd_cancel *k);
void etcd_cancel_stream(struct etcd_cancel *k);
bool etcd_cancelled(struct etcd_cancel *k);

/*
 * A watch stream on [key, range_end) (range_end NULL: key only) from
 * revision `from`. on_event is called with each "result" object that
 * carries events; it returns true to end the watch. Returns 0 when
 * on_event ended it or etcd canceled the watch (compaction: *next_rev
 * is then the compact revision, and the caller reads the keys again),
 * LM_ETIMEDOUT at until_ns or when `cancel` (NULL: none) was used, or
 * an error as etcd_post's. *next_rev is advanced past every revision
 * delivered, so a watch restarted from it misses nothing. The curl
 * handle of a stream with a cancel must be freed before the cancel.
 */
typedef bool (*etcd_event_fn)(void *arg, json_t *result);
int etcd_watch(struct lm_etcd *e, void *curl, const char *key,
	       const char *range_end, int64_t *next_rev, int64_t until_ns,
	       struct etcd_cancel *cancel, etcd_event_fn on_event, void *arg);

void *etcd_curl_new(void);
void etcd_curl_free(void *curl);

/* ---- kv.c -------------------------------------------------------- */

/* base64 of n bytes into a new string (to free), and back: the bytes
 * into out (n bytes at most), their number, or -1. */
char *etcd_b64(const void *p, size_t n);
ssize_t etcd_unb64(const char *s, char *out, size_t n);

/* P/lock/<enc name>/ and P/last/<enc name>, into out. */
void etcd_lock_prefix(const struct lm_etcd *e, const char *name, char *out);
void etcd_last_key(const struct lm_etcd *e, const char *name, char *out);
/* P/sem/<enc name>/ (semaphore.c) */
void etcd_sem_prefix(const struct lm_etcd *e, const char *name, char *out);
/* The lock name of an encoded one (list.c); -1 if it is not one. */
ssize_t etcd_name_decode(const char *enc, size_t len, char *out, size_t n);
/* The end of the range of keys that begin with prefix (etcd's
 * "prefix + 1"), into out. */
void etcd_prefix_end(const char *prefix, char *out);

/* JSON shapes of txn requests (the recipes'): a base64 string of s, an
 * int64 as the string etcd wants, a compare of key's create revision
 * with rev (0: the key does not exist), a range / put operation of a
 * txn, the oldest key under prefix lp (or, with below > 0, the newest
 * one created before revision `below`), responses[i]'s first kv. */
json_t *etcd_b64str(const char *s);
json_t *etcd_i64str(int64_t v);
json_t *etcd_cmp_create(const char *key, int64_t rev);
json_t *etcd_cmp_none(const char *key, const char *end); /* [key,end) empty */
json_t *etcd_op_range(json_t *range);
json_t *etcd_op_put(const char *key, const char *value, int64_t lease);
json_t *etcd_owner_range(const char *lp, int64_t below);
json_t *etcd_txn_kv(json_t *resp, size_t i);
/* POST a txn (compare, success, failure: each consumed). */
int etcd_txn(struct lm_etcd *e, json_t *cmp, json_t *ok, json_t *fail,
	     int64_t deadline, json_t **out);

/* {"key": b64(key)} with "range_end" if end is not NULL. */
json_t *etcd_range_req(const char *key, const char *end);
/* An int64 field that etcd sends as a string (or leaves out: 0). */
int64_t etcd_i64(const json_t *obj, const char *field);
/* The header revision of a response, 0 if absent. */
int64_t etcd_rev(const json_t *resp);
/* Decode kv's "key" or "value" into out (NUL-ended); its length or -1. */
ssize_t etcd_kv_bytes(const json_t *kv, const char *field, char *out,
		      size_t n);

/* ---- lease.c ----------------------------------------------------- */

/* Grant a lease of ttl_s seconds: its id and the TTL etcd gave. */
int etcd_lease_grant(struct lm_etcd *e, int64_t ttl_s, int64_t deadline_ns,
		     int64_t *id, int64_t *ttl_out);
/* Keep lease id alive: the TTL it has again, 0 if the lease is gone. */
int etcd_lease_keepalive(struct lm_etcd *e, int64_t id, int64_t deadline_ns,
			 int64_t *ttl_out);
/* Seconds left of lease id (-1 if gone). */
int etcd_lease_ttl(struct lm_etcd *e, int64_t id, int64_t deadline_ns,
		   int64_t *ttl_out);
int etcd_lease_revoke(struct lm_etcd *e, int64_t id, int64_t deadline_ns);

/* ---- lock.c ------------------------------------------------------ */

int etcd_acquire(lm_client *c, const char *name, uint32_t mode,
		 int64_t ttl_ms, int64_t wait_ms, int64_t deadlock_ms,
		 lm_grant *g);
int etcd_renew(lm_client *c, lm_grant *g, int64_t ttl_ms);
int etcd_release(lm_client *c, lm_grant *g);
/* The client's record of a live grant g, or NULL. */
struct etcd_grant *etcd_grant_of(struct lm_etcd *e, const lm_grant *g);
/* Acquire with `value` as what the key says after "pid host\n". */
int etcd_acquire_value(lm_client *c, const char *name, const char *value,
		       int64_t ttl_ms, int64_t wait_ms, lm_grant *g);
/* Delete key (if it is still there) and revoke lease: a waiter that
 * gives up leaves nothing for the others to wait on. */
void etcd_give_up(struct lm_etcd *e, const char *key, int64_t lease);
/* An etcd_watch callback: sets *(bool *)arg and ends the watch at the
 * first DELETE event. */
bool etcd_on_delete(void *arg, json_t *result);
/* At disconnect: release every grant the caller never released. */
void etcd_release_all(lm_client *c);
/* "pid host\nvalue": what a waiter's key holds. */
void etcd_key_value(const struct lm_etcd *e, const char *value, char *out,
		    size_t n);

/* ---- semaphore.c ------------------------------------------------- */

int etcd_sem_acquire(lm_client *c, const char *name, uint32_t slots,
		     int64_t ttl_ms, int64_t wait_ms, lm_grant *g);
/* Delete a semaphore grant's keys (lock.c's etcd_release revokes the
 * lease and forgets the grant after): 0 or LM_ELEASELOST. */
int etcd_sem_release(struct lm_etcd *e, struct etcd_grant *gr);

/* ---- watch.c, watch_stream.c -------------------------------------- */

/* One waiter's key of a watched lock, as the watch's stream saw it. */
struct etcd_wkey {
	char *key;             /* the whole key (malloc'ed) */
	int64_t create_rev;    /* its place; the token if it holds */
	int32_t pid;
	char value[LM_VALUE_MAX + 1]; /* after "pid host\n" */
};

/*
 * An lm_watch on etcd. The client's thread opens, reads and closes it;
 * one stream thread per watch (watch_stream.c) follows the lock's keys
 * and hands what changed over under `mu`:
 *
 *   written by the opener, then read-only: c, name, lp, lp_end, last,
 *       efd, e2, curl_stream, cancel (its own lock);
 *   stream thread only: keys, nkeys, cap, next_rev, seen_rev, lost;
 *   under mu: pend, ev, stream_err (thread writes, lm_watch_next takes).
 *
 * The stream thread never touches the client (one thread per client,
 * lockmgr.h): it talks to etcd through e2, a copy of the client's
 * endpoints with curl handles of its own.
 */
struct lm_watch {
	lm_client *c;          /* first: struct lm_watch_head (backend.h) */
	struct lm_watch *next; /* in the client's e->watches */
	char name[LM_NAME_MAX + 1];
	char lp[ETCD_KEY_MAX];     /* P/lock/<name>/ */
	char lp_end[ETCD_KEY_MAX]; /* the end of its range */
	char last[ETCD_KEY_MAX];   /* P/last/<name> */
	int efd;               /* eventfd: lm_watch_fd */
	struct lm_etcd *e2;
	void *curl_stream;
	struct etcd_cancel cancel;
	pthread_t thread;
	bool running;
	struct etcd_wkey *keys; /* by create revision: keys[0] holds */
	size_t nkeys, cap;
	int64_t next_rev;      /* where the stream goes on from */
	int64_t seen_rev;      /* past the last event applied */
	bool lost;             /* keys must be read again (resync) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t pend;         /* changes not yet taken */
	lm_watch_event ev;     /* the last of them, and the lock after it */
	int stream_err;        /* the stream's last error, 0 if none */
};

/* watch_stream.c: fill w's keys from a range answer of w->lp (kvs by
 * create revision); 0 or LM_ESYS. */
int etcd_wkeys_load(struct lm_watch *w, json_t *kvs);
void etcd_wkeys_free(struct lm_watch *w);
/* The lock as w's keys say, into ev's "now" fields. */
void etcd_wkeys_view(const struct lm_watch *w, lm_watch_event *ev);
/* The stream thread (pthread_create's start routine). */
void *etcd_watch_thread(void *arg);
/* A range of every key under w->lp, oldest first (a new request). */
json_t *etcd_wkeys_range(const struct lm_watch *w);

int etcd_watch_open(lm_client *c, const char *name, lm_watch **out,
		    lm_watch_event *now);
int etcd_watch_next(lm_watch *w, int64_t timeout_ms, lm_watch_event *ev);
int etcd_watch_fd(lm_watch *w);
void etcd_watch_close(lm_watch *w);
/* At disconnect: close every watch the caller left open. */
void etcd_watch_close_all(lm_client *c);

/* ---- election.c -------------------------------------------------- */

int etcd_campaign(lm_client *c, const char *election, const char *value,
		  int64_t ttl_ms, int64_t wait_ms, lm_grant *g);
int etcd_proclaim(lm_client *c, lm_grant *g, const char *value);
int etcd_resign(lm_client *c, lm_grant *g);
int etcd_leader_get(lm_client *c, const char *election, lm_leader *out);

/* ---- list.c ------------------------------------------------------ */

/* One waiter's key under P/lock/ or P/sem/. */
struct etcd_waiter {
	char name[LM_NAME_MAX + 1];
	uint64_t create_rev;   /* the token, if it holds */
	int64_t lease;
	int pid;
	char host[64];
	char value[LM_VALUE_MAX + 1];
	uint32_t slots;        /* a semaphore's slot count, 0 for a lock */
	int slot;              /* the slot a semaphore's holder took, -1 */
};

/* Every waiter key under the prefix, by name then create revision:
 * 0 and a malloc'ed array (*n entries), or an error. */
int etcd_list(struct lm_etcd *e, struct etcd_waiter **out, size_t *n,
	      int64_t *revision);

/* The lm_etcd of a client of this backend, or NULL. */
struct lm_etcd *lm_etcd_of(lm_client *c);

#endif
