/*
 * stats.h - medians, percentiles, rates, latency samples and lock
 * choice.
 */
#ifndef LOCKBENCH_STATS_H
#define LOCKBENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Median of n doubles (sorts a copy); NAN if n == 0. */
double stats_median(const double *v, size_t n);

/* Sort n samples in place (ascending). */
void stats_sort_i64(int64_t *v, size_t n);

/* Percentile q (0..100) of sorted samples, nearest rank; NAN if empty. */
double stats_pct_sorted(const int64_t *sorted, size_t n, double q);

/* n operations from t0_ns to t1_ns, per second; NAN if no time passed. */
double stats_per_s(uint64_t n, int64_t t0_ns, int64_t t1_ns);

/* The fairness of a run: the fewest operations a worker did over the
 * most (1 = all alike); NAN if none did any. */
double stats_fairness(uint64_t min, uint64_t max);

/*
 * A growable array of latency samples (ns), pooled across the workers
 * and rounds of one measurement.
 */
struct samples {
	int64_t *v;
	size_t n, cap;
};

void samples_add(struct samples *s, const int64_t *v, size_t n);
void samples_free(struct samples *s);

/*
 * Reservoir sampling into a fixed array: keeps a uniform sample of
 * every value offered, so a long run is sampled over its whole length
 * and not only at its start. seen counts the values offered.
 */
static inline void reservoir_offer(int64_t *slots, uint64_t cap,
				   uint64_t *seen, int64_t v, uint64_t r)
{
	uint64_t k = (*seen)++;
	if (k < cap)
		slots[k] = v;
	else if ((r % (k + 1)) < cap)
		slots[r % cap] = v;
}

/* Pool the samples a reservoir of cap slots kept after seen offers:
 * all of them, or cap if more were offered. */
void samples_add_reservoir(struct samples *s, const int64_t *slots,
			   uint64_t cap, uint64_t seen);

/*
 * Lock choice for the many-locks scenario. A Zipf distribution over n
 * locks is kept as its cumulative table; rank k maps to lock
 * (k * a large odd prime) mod n, so the hot locks are spread over the
 * table the way hashed keys are, not packed at its start.
 */
struct zipf {
	uint32_t n;
	double *cdf;
};

int zipf_init(struct zipf *z, uint32_t n, double s);
void zipf_free(struct zipf *z);
/* A lock drawn from the distribution for a uniform u in [0, 1). */
uint32_t zipf_draw(const struct zipf *z, double u);

#endif
