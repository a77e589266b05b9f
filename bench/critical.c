/*
 * critical.c - what the critical-section spin costs, for the notes.
 */
#include "critical.h"

#include "bench.h"
#include "stats.h"

double cs_spin_ns(void)
{
	double v[5];
	uint64_t x = 1;
	for (int k = 0; k < 5; k++) {
		int64_t t0 = bench_now_ns();
		for (int i = 0; i < 100000; i++)
			x = cs_spin(x);
		v[k] = (double)(bench_now_ns() - t0) / 100000;
	}
	__asm__ volatile("" : : "r"(x));
	return stats_median(v, 5);
}
