/*
 * futex.c - the two futex calls lockmgr makes.
 */
#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int lm_futex_wait(_Atomic uint32_t *word, uint32_t expected,
		  int64_t deadline_ns)
{
	struct timespec ts, *tsp = NULL;
	if (deadline_ns != INT64_MAX) {
		ts.tv_sec = deadline_ns / 1000000000;
		ts.tv_nsec = deadline_ns % 1000000000;
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so
	 * a wait restarted after EINTR does not stretch the timeout. */
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET,
			  expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (rc == 0)
		return 0;
	if (errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0; /* EAGAIN: word changed; EINTR: re-check */
}

void lm_futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}
