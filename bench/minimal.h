/*
 * minimal.h - the plainest contended loop there is, to check the
 * benchmark's engine against (lockbench --minimal, scenario 11).
 *
 * P forked processes on one lock; each does, until told to stop:
 *
 *	acquire; counter++; release; n++;
 *
 * and nothing else: no warm-up flag, no lock choice, no streak count,
 * none of workers.c's failure bookkeeping. The parent stamps the start
 * (all ready, gate opened) and the stop, and divides the processes'
 * counts by that time. It shares with the engine (timed_run.c) only
 * the primitives' own calls (prim_*.c) and the fork and start gate of
 * procs.h, so a gap between the two figures is the engine's own cost.
 */
#ifndef LOCKBENCH_MINIMAL_H
#define LOCKBENCH_MINIMAL_H

#include <stdint.h>

#include "primitives.h"

/* One run of duration_ms: 0 with *ops_per_s set, or -1 after a failure
 * reported with bench_fail (a worker's error, or the counter off). */
int minimal_run(enum prim_id prim, uint32_t nprocs, int64_t duration_ms,
		double *ops_per_s);

#endif
