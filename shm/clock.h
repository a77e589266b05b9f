/*
 * clock.h - local time and each server's (possibly skewed) clock.
 *
 * All deadlines are CLOCK_MONOTONIC, which every process on the host
 * shares. A server's clock is that clock seen through the skew the
 * server publishes (set by `lockctl server skew`), so that leases on a
 * skewed server really end early or late, as they would on a machine
 * whose clock drifts. Clients and the server compute a server's time
 * with the same function, from the same published parameters, so they
 * agree on when a lease on that table ends.
 *
 * The parameters (struct lm_skew) are three words, so they are double-
 * buffered: a writer fills the entry not in use and then publishes it by
 * bumping skew_seq (release); a reader loads skew_seq (acquire), reads
 * that entry and re-checks skew_seq. Readers never see a mix of two
 * settings, which once made a clock jump for an instant at every change.
 */
#ifndef LOCKMGR_SHM_CLOCK_H
#define LOCKMGR_SHM_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "layout.h"
#include "test_hook.h"

#define LM_RATE_ONE INT64_C(1000000)

static inline int64_t lm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t lm_now_ms(void)
{
	return lm_now_ns() / 1000000;
}

struct lm_skew_now {
	int64_t base_ms, base_srv_ms, rate_ppm;
};

/* Server clocks stay within what a lease word holds (38 bits of ms,
 * about 8.7 years from boot); rates within what lockctl can set. */
#define LM_CLOCK_MAX_MS ((int64_t)LM_LEASE_EXPIRY_MASK)
#define LM_RATE_MIN     (LM_RATE_ONE / 1000)
#define LM_RATE_MAX     (LM_RATE_ONE * 1000)

/* A consistent copy of server s's clock parameters. */
static inline struct lm_skew_now lm_skew_read(const struct lm_server *s)
{
	struct lm_skew_now k;
	/* A retry means a set came in between: sets are operator commands
	 * (lockctl server skew), so this ends at once in practice, and a
	 * torn copy, which could stretch a lease, is never used. */
	for (;;) {
		uint32_t seq = atomic_load_explicit(&s->skew_seq,
						    memory_order_acquire);
		const struct lm_skew *e = &s->skew[seq & 1];
		k.base_ms = atomic_load_explicit(&e->base_ms,
						 memory_order_relaxed);
		k.base_srv_ms = atomic_load_explicit(&e->base_srv_ms,
						     memory_order_relaxed);
		k.rate_ppm = atomic_load_explicit(&e->rate_ppm,
						  memory_order_relaxed);
		/* Pairs with the release bump in lm_skew_set: the entry was
		 * not being rewritten while we read it. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->skew_seq, memory_order_relaxed) ==
		    seq)
			break;
	}
	/* Parameters no setter writes are a damaged region: run true. */
	if (k.base_ms < 0 || k.base_ms > LM_CLOCK_MAX_MS ||
	    k.base_srv_ms < -LM_CLOCK_MAX_MS ||
	    k.base_srv_ms > LM_CLOCK_MAX_MS ||
	    k.rate_ppm < LM_RATE_MIN || k.rate_ppm > LM_RATE_MAX) {
		k.base_ms = k.base_srv_ms = 0;
		k.rate_ppm = LM_RATE_ONE;
	}
	return k;
}

static inline int64_t lm_skew_apply(const struct lm_skew_now *k,
				    int64_t now_ms)
{
	/* In 128 bits: the parameters are bounded (lm_skew_read), now_ms
	 * is not. A clock at the true rate (every clock no one skewed)
	 * skips the 128-bit division, which is a libgcc call on every
	 * table of every acquire: x * ONE / ONE is x, exactly. */
	__int128 d = (__int128)now_ms - k->base_ms;
	__int128 t = (__int128)k->base_srv_ms +
		     (k->rate_ppm == LM_RATE_ONE
			      ? d
			      : d * k->rate_ppm / LM_RATE_ONE);
	/* Lease words hold 38 unsigned bits: a negative time (a skew
	 * further back than the uptime) would wrap into an expiry that
	 * never comes, and so would one past the top. */
	return t < 0 ? 0 : t > LM_CLOCK_MAX_MS ? LM_CLOCK_MAX_MS : (int64_t)t;
}

/* Server s's clock, in ms, at local monotonic time now_ns. */
static inline int64_t lm_server_clock_ms(const struct lm_server *s,
					 int64_t now_ns)
{
	struct lm_skew_now k = lm_skew_read(s);
	return lm_skew_apply(&k, now_ns / 1000000);
}

/*
 * Local monotonic ns at which server s's clock reaches srv_ms, given
 * that it reads srv_now_ms at now_ns (for sleeping until a lease ends,
 * and for how long a grant stays valid).
 */
static inline int64_t lm_server_to_local_ns(const struct lm_server *s,
					    int64_t srv_ms, int64_t srv_now_ms,
					    int64_t now_ns)
{
	struct lm_skew_now k = lm_skew_read(s);
	if (srv_ms <= srv_now_ms)
		return now_ns;
	/* At the true rate, without the 128-bit division (as above). */
	__int128 dns = ((__int128)srv_ms - srv_now_ms) * 1000000;
	__int128 t = (__int128)now_ns +
		     (k.rate_ppm == LM_RATE_ONE
			      ? dns
			      : dns * LM_RATE_ONE / k.rate_ppm);
	return t > INT64_MAX ? INT64_MAX : (int64_t)t;
}

/*
 * Set server s's clock to read srv_ms at local now_ms and run at
 * rate_ppm from there. One writer at a time (lockctl holds an OFD lock
 * for it): two would write the same spare entry, and the second would
 * publish it half-written by the first.
 */
static inline void lm_skew_set(struct lm_server *s, int64_t now_ms,
			       int64_t srv_ms, int64_t rate_ppm)
{
	uint32_t seq = atomic_load_explicit(&s->skew_seq,
					    memory_order_relaxed);
	/* Before the entry's stores: a reader that sees one of them then
	 * sees a sequence at least this one (its acquire fence pairs with
	 * this), so it notices the entry it read was being rewritten. */
	atomic_thread_fence(memory_order_release);
	struct lm_skew *e = &s->skew[(seq + 1) & 1];
	atomic_store_explicit(&e->base_ms, now_ms, memory_order_relaxed);
	LM_HOOK("clock.skew_writing");
	atomic_store_explicit(&e->base_srv_ms, srv_ms, memory_order_relaxed);
	atomic_store_explicit(&e->rate_ppm, rate_ppm, memory_order_relaxed);
	/* Pairs with the acquire load and fence in lm_skew_read. */
	atomic_store_explicit(&s->skew_seq, seq + 1, memory_order_release);
}

#endif
