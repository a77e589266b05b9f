/*
 * heartbeat.h - when a server counts as alive: its heartbeat, stamped
 * every LM_HEARTBEAT_MS, is younger than LM_HEARTBEAT_STALE_MS.
 * Servers write it; clients, the supervisor and lockctl judge it.
 */
#ifndef LOCKMGR_SHM_HEARTBEAT_H
#define LOCKMGR_SHM_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

/* A heartbeat older than this marks a server as hung (out of quorum). */
#define LM_HEARTBEAT_STALE_MS 300
/* How often servers publish their heartbeat. */
#define LM_HEARTBEAT_MS 20

/*
 * How long ago (ms) a server's heartbeat stamped hb_ms was, at now_ms
 * (never negative: a stamp ahead of us was written a moment after we
 * read the clock). INT64_MAX for a negative stamp, which no server
 * writes (a damaged region): never fresh. No subtraction overflows.
 * (A damaged stamp far ahead reads as fresh: that costs nothing but
 * the detection of a hung server, which is never on the lock path.)
 */
static inline int64_t lm_heartbeat_age_ms(int64_t hb_ms, int64_t now_ms)
{
	if (hb_ms < 0)
		return INT64_MAX;
	return hb_ms >= now_ms ? 0 : now_ms - hb_ms;
}

static inline bool lm_heartbeat_fresh(int64_t hb_ms, int64_t now_ms)
{
	return lm_heartbeat_age_ms(hb_ms, now_ms) <= LM_HEARTBEAT_STALE_MS;
}

#endif
