/*
 * prim_redis.c - the lock many programs on one host use instead: Redis,
 * the single-instance form of Redlock.
 *
 *   acquire   SET key value NX PX ttl, with a value no other holder
 *             has (pid and a sequence number); if the key exists,
 *             poll: sleep, then SET again;
 *   release   a compare-and-delete script (EVAL): delete the key only
 *             if it still holds our value, so that a holder whose TTL
 *             ran out cannot release its successor's lock.
 *
 * What it does not give, and the benchmark shows: no fencing token (a
 * holder paused past its TTL and its successor both believe they hold
 * the lock, and nothing downstream can tell them apart); no queue
 * (waiters poll, so who gets the lock next is whoever polls first, and
 * a release reaches a waiter only at its next poll); and a dead
 * holder's lock is freed only when its TTL runs out.
 *
 * The poll: a waiter retries at once, then sleeps 20 us doubling up to
 * 1 ms, each sleep drawn between half and all of that (jitter, so that
 * the waiters do not poll in step). Common clients sleep far longer by
 * default (redis-py 100 ms, node-redlock 200 ms); shorter sleeps would
 * only load the one server thread that every waiter and the holder
 * share.
 *
 * Each process has its own connection (made in attach: a connection
 * must not be shared across fork) to lockbench's own redis-server
 * (redis.h), over its Unix socket. The TTL is bench_cfg.redis_ttl_ms.
 * A release that finds the key gone or another's (the TTL ran out while
 * held) is an error, PRIM_ELOST: the run fails, as it would when the
 * counter check finds two holders.
 */
#include <errno.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "primitives.h"
#include "redis.h"

#define POLL_FIRST_NS 20000
#define POLL_MAX_NS 1000000

static const char release_script[] =
	"if redis.call('get', KEYS[1]) == ARGV[1] then "
	"return redis.call('del', KEYS[1]) else return 0 end";

struct rlock {
	char tag[24];
	redisContext *c;    /* the worker's own, after attach */
	uint64_t seq;       /* makes each acquire's value unique */
	uint64_t rng;       /* for the poll's jitter */
	char (*held)[40];   /* [nlocks]: the value we set, per lock */
};

static void key_of(const struct rlock *s, uint32_t i, char *out, size_t n)
{
	snprintf(out, n, "lockbench:%s:%u", s->tag, i);
}

static redisContext *connect_own(void)
{
	struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
	redisContext *c = redisConnectUnixWithTimeout(redis_socket(), tv);
	if (c != NULL && c->err != 0) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Delete the set's keys (before the first run, after the last: a key a
 * killed holder left stays until its TTL, and the next run on the same
 * tag must not find it). */
static int delete_keys(struct rlock *s, uint32_t nlocks)
{
	redisContext *c = connect_own();
	if (c == NULL)
		return -ECONNREFUSED;
	int rc = 0;
	for (uint32_t i = 0; i < nlocks; i++) {
		char key[64];
		key_of(s, i, key, sizeof(key));
		redisAppendCommand(c, "DEL %s", key);
	}
	for (uint32_t i = 0; i < nlocks; i++) {
		void *r = NULL;
		if (redisGetReply(c, &r) != REDIS_OK) {
			rc = -EIO;
			break;
		}
		freeReplyObject(r);
	}
	redisFree(c);
	return rc;
}

static int redis_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	struct rlock *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	p->state = s;
	snprintf(s->tag, sizeof(s->tag), "%s", tag);
	s->held = calloc(nlocks, sizeof(*s->held));
	if (s->held == NULL)
		return -ENOMEM;
	return delete_keys(s, nlocks);
}

static int redis_attach(struct prim *p)
{
	struct rlock *s = p->state;
	s->c = connect_own();
	s->rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15u + 1;
	return s->c != NULL ? 0 : -ECONNREFUSED;
}

static void poll_sleep(struct rlock *s, int64_t *ns, int64_t deadline_ns)
{
	int64_t d = *ns / 2 + (int64_t)(bench_rand(&s->rng) %
					(uint64_t)(*ns / 2 + 1));
	if (deadline_ns != INT64_MAX) {
		int64_t left = deadline_ns - bench_now_ns();
		d = left < d ? (left > 0 ? left : 0) : d;
	}
	bench_sleep_ns(d);
	*ns = *ns * 2 < POLL_MAX_NS ? *ns * 2 : POLL_MAX_NS;
}

static int redis_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	struct rlock *s = p->state;
	char key[64];
	key_of(s, i, key, sizeof(key));
	snprintf(s->held[i], sizeof(s->held[i]), "%d:%llu", (int)getpid(),
		 (unsigned long long)++s->seq);
	int64_t sleep_ns = POLL_FIRST_NS;
	for (int tries = 0;; tries++) {
		redisReply *r = redisCommand(s->c, "SET %s %s NX PX %lld", key,
					     s->held[i],
					     (long long)bench_cfg.redis_ttl_ms);
		if (r == NULL)
			return -EIO;
		int type = r->type;
		freeReplyObject(r);
		if (type == REDIS_REPLY_STATUS)
			return 0;
		if (type != REDIS_REPLY_NIL)
			return -EPROTO;
		/* Taken: poll. */
		if (deadline_ns != INT64_MAX && bench_now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		if (tries > 0)
			poll_sleep(s, &sleep_ns, deadline_ns);
	}
}

static int redis_release(struct prim *p, uint32_t i)
{
	struct rlock *s = p->state;
	char key[64];
	key_of(s, i, key, sizeof(key));
	redisReply *r = redisCommand(s->c, "EVAL %s 1 %s %s", release_script,
				     key, s->held[i]);
	if (r == NULL)
		return -EIO;
	int rc = r->type != REDIS_REPLY_INTEGER ? -EPROTO
		 : r->integer == 1		? 0
						: PRIM_ELOST;
	freeReplyObject(r);
	return rc;
}

static void redis_detach(struct prim *p)
{
	struct rlock *s = p->state;
	if (s->c != NULL)
		redisFree(s->c);
	s->c = NULL;
}

static void redis_destroy(struct prim *p)
{
	struct rlock *s = p->state;
	if (s == NULL)
		return;
	if (s->held != NULL)
		delete_keys(s, p->nlocks);
	free(s->held);
	free(s);
	p->state = NULL;
}

/* A dead holder's lock is freed by its TTL only. */
static int64_t redis_recovery_ms(void)
{
	return bench_cfg.redis_ttl_ms;
}

const struct prim_ops prim_redis_ops = {
	.key = "redis",
	.label = "Redis SET NX",
	/* A key per lock in one server: the many-locks scenario's small
	 * size, like a file per lock. */
	.max_locks = 1000,
	.init = redis_init,
	.attach = redis_attach,
	.acquire = redis_acquire,
	.release = redis_release,
	.detach = redis_detach,
	.destroy = redis_destroy,
	.recovery_ms = redis_recovery_ms,
	.rpc = true,
};
