/*
 * session.h - the session table: who is connected, keyed by pid plus
 * process start time (pids are reused; the pair is not).
 */
#ifndef LOCKMGR_SHM_SESSION_H
#define LOCKMGR_SHM_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "region.h"

/* Start time of pid in clock ticks since boot, or 0 if it is gone. */
uint64_t lm_proc_start_time(pid_t pid);

/* Is the process that registered session s still the one alive? */
bool lm_session_process_alive(const struct lm_session *s);

/* ... and able to act: alive and not stopped (SIGSTOP, a debugger). */
bool lm_session_process_running(const struct lm_session *s);

/*
 * Claim a free session slot for the calling process. Returns the slot
 * index or LM_ESESSIONS.
 */
int lm_session_claim(struct lm_region *r, pid_t pid, uint64_t start_time);

/* Return a slot (its locks already released) to the free list. */
void lm_session_free(struct lm_region *r, uint32_t idx);

/* Tell the supervisor's registrar that the table changed. */
void lm_session_notify(struct lm_region *r);

#endif
