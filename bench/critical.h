/*
 * critical.h - the work inside the critical section of the read-write
 * and tree scenarios: a fixed spin, the same for every primitive, so
 * that a holder keeps the lock for a known, short time and an overlap
 * of two holders has time to be seen by the checks around it.
 *
 * (The contended engine's critical section is a counter increment
 * only; see timed_run.h.)
 */
#ifndef LOCKBENCH_CRITICAL_H
#define LOCKBENCH_CRITICAL_H

#include <stdint.h>

/* Iterations of the spin: a dependent multiply-add chain, some 100 ns
 * here; cs_spin_ns measures it for the notes. */
#define CS_SPIN 64

/* Inline: its cost is part of every critical section measured, and a
 * call would add to it. */
static inline uint64_t cs_spin(uint64_t x)
{
	for (int i = 0; i < CS_SPIN; i++) {
		x = x * UINT64_C(6364136223846793005) +
		    UINT64_C(1442695040888963407);
		__asm__ volatile("" : "+r"(x));
	}
	return x;
}

/* The spin alone, measured now: ns per cs_spin (median of 5). */
double cs_spin_ns(void);

#endif
