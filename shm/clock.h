/*
 * clock.h - local time and each server's (possibly skewed) clock.
 *
 * All deadlines are CLOCK_MONOTONIC, which every process on the host
 * shares. A server's clock is that clock seen through the skew the
 * server publishes (offset and rate, set by `lockctl server skew`), so
 * that leases on a skewed server really end early or late, as they
 * would on a machine whose clock drifts. Clients and the server compute
 * a server's time with the same function, from the same published
 * parameters, so they agree on when a lease on that table ends.
 */
#ifndef LOCKMGR_SHM_CLOCK_H
#define LOCKMGR_SHM_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "layout.h"

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

/* Server s's clock, in ms, at local monotonic time now_ns. */
static inline int64_t lm_server_clock_ms(const struct lm_server *s,
					 int64_t now_ns)
{
	int64_t now_ms = now_ns / 1000000;
	int64_t off = atomic_load_explicit(&s->skew_offset_ms,
					   memory_order_relaxed);
	int64_t ppm = atomic_load_explicit(&s->skew_rate_ppm,
					   memory_order_relaxed);
	int64_t t = now_ms + off;
	if (ppm != 1000000) {
		int64_t base = atomic_load_explicit(&s->skew_base_ms,
						    memory_order_relaxed);
		t += (now_ms - base) * (ppm - 1000000) / 1000000;
	}
	/* Lease words hold 38 unsigned bits: a negative time (a skew
	 * further back than the uptime, or a corrupted region) would wrap
	 * into an expiry that never comes. */
	return t < 0 ? 0 : t;
}

/*
 * Local monotonic ns at which server s's clock reaches srv_ms, given
 * that it reads srv_now_ms at now_ns (for sleeping until a lease ends).
 */
static inline int64_t lm_server_to_local_ns(const struct lm_server *s,
					    int64_t srv_ms, int64_t srv_now_ms,
					    int64_t now_ns)
{
	int64_t ppm = atomic_load_explicit(&s->skew_rate_ppm,
					   memory_order_relaxed);
	if (ppm <= 0)
		ppm = 1000000;
	int64_t d_ms = srv_ms - srv_now_ms;
	if (d_ms <= 0)
		return now_ns;
	return now_ns + d_ms * 1000000 / ppm * 1000000;
}

#endif
