/*
 * futex.h - waiting on a 32-bit word in shared memory.
 *
 * Shared (not FUTEX_PRIVATE) futexes, since waiter and waker are in
 * different processes. Callers loop: load the word, re-check their
 * condition, then wait for the value they loaded; a wait returns on a
 * wake, a change of the word, a signal or the deadline, and the caller
 * re-checks in every case (musl's __wait, liburcu's wait_gp).
 */
#ifndef LOCKMGR_SHM_FUTEX_H
#define LOCKMGR_SHM_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Sleep while *word == expected, until woken or until the absolute
 * CLOCK_MONOTONIC time deadline_ns (INT64_MAX = no deadline).
 * Returns 0 on a wake or when the word had already changed, or
 * -ETIMEDOUT; EINTR is reported as 0 (a spurious wake-up).
 */
int lm_futex_wait(_Atomic uint32_t *word, uint32_t expected,
		  int64_t deadline_ns);

/* Wake up to n waiters on word. */
void lm_futex_wake(_Atomic uint32_t *word, int n);

/* Increment word and wake one waiter: the "your turn" signal. */
static inline void lm_futex_bump_wake(_Atomic uint32_t *word, int n)
{
	atomic_fetch_add(word, 1);
	lm_futex_wake(word, n);
}

#endif
