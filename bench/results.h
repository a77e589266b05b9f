/*
 * results.h - every figure a run measured, as (scenario, primitive,
 * parameter, metric) -> value rows: the table, the CSV and the plots are
 * all drawn from here.
 *
 * A value is a number, NAN for "not applicable / not measured" and
 * INFINITY for "never" (a peer that does not recover a dead holder's
 * lock).
 */
#ifndef LOCKBENCH_RESULTS_H
#define LOCKBENCH_RESULTS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

#define RES_NONE (-1) /* a row that belongs to no primitive */

struct result {
	enum scenario scen;
	int prim;          /* enum prim_id, or RES_NONE */
	char param[32];    /* "P=16", "N=1000 zipf", "" */
	char metric[24];   /* "ops_per_s", "p99_ns", ... */
	char unit[12];
	double value;
};

void results_add(enum scenario scen, int prim, const char *param,
		 const char *metric, double value, const char *unit);

/* The value of a row, NAN if there is none. */
double results_get(enum scenario scen, int prim, const char *param,
		   const char *metric);

size_t results_count(void);
const struct result *results_at(size_t i);

/* A sentence printed under a scenario's table (and kept in the CSV). */
void results_note(enum scenario scen, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t results_notes(enum scenario scen, const char *const **notes);

/*
 * The latency distribution of one primitive at P = 16, for the plot:
 * from the pooled samples (sorted, ns) only up to CDF_POINTS quantiles
 * are kept. (Keeping the samples would grow lockbench's heap by tens of
 * MB, which every later forked worker inherits and must unmap at exit:
 * that alone slowed the kernel's release of a killed holder's flock by
 * half a millisecond in the crash scenario.)
 */
#define CDF_POINTS 2000
struct cdf_point {
	double ns;
	double fraction; /* of samples <= ns */
};
void results_set_cdf(int prim, const int64_t *sorted, size_t n);
size_t results_cdf(int prim, const struct cdf_point **points);

#endif
