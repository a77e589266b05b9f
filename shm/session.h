/*
 * session.h - the session table: who is connected, keyed by pid plus
 * process start time (pids are reused; the pair is not).
 */
#ifndef LOCKMGR_SHM_SESSION_H
#define LOCKMGR_SHM_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "region.h"

/* Start time of pid in clock ticks since boot, or 0 if it is gone. */
uint64_t lm_proc_start_time(pid_t pid);

/*
 * The calling process's pid and time namespaces (inode numbers of
 * /proc/self/ns/pid and /proc/self/ns/time; 0 where unknown). Pids and
 * start times mean the same to every process of a region only within
 * one pair: the supervisor publishes its own, and clients must match.
 */
uint64_t lm_pid_namespace(void);
uint64_t lm_time_namespace(void);

/* Is the process that registered session s still the one alive? */
bool lm_session_process_alive(const struct lm_session *s);

/* ... and able to act: alive and not stopped (SIGSTOP, a debugger). */
bool lm_session_process_running(const struct lm_session *s);

/*
 * Claim a free session slot for the calling process and make it LIVE.
 * Returns the slot index (and its LIVE word in *live_word) or
 * LM_R_SESSIONS.
 */
int lm_session_claim(struct lm_region *r, pid_t pid, uint64_t start_time,
		     uint64_t *live_word);

/*
 * Move session idx from the word `from` to `to` (one CAS; layout.h lists
 * the transitions and who makes each). False if the slot is no longer in
 * `from`: its writer was overtaken and must leave the slot alone. A move
 * to FREE notifies the registrar.
 */
bool lm_session_transition(struct lm_region *r, uint32_t idx, uint64_t from,
			   uint64_t to);

/*
 * End the life `from` of session idx: clear its identity, then CAS it to
 * FREE (same generation). False if the slot had moved on from `from`.
 */
bool lm_session_free(struct lm_region *r, uint32_t idx, uint64_t from);

static inline uint64_t lm_session_word(const struct lm_session *s)
{
	/* Pairs with the CAS that made the slot LIVE: the identity fields
	 * of a LIVE slot are its claimer's. */
	return atomic_load_explicit(&s->life, memory_order_acquire);
}

static inline bool lm_session_is_live(const struct lm_session *s)
{
	return LM_SESS_STATE(lm_session_word(s)) == LM_SESS_LIVE;
}

/* Tell the supervisor's registrar that the table changed. */
void lm_session_notify(struct lm_region *r);

#endif
