/*
 * stats.c - medians, percentiles, sample pools, Zipf.
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double stats_median(const double *v, size_t n)
{
	if (n == 0)
		return NAN;
	double *c = malloc(n * sizeof(*c));
	if (c == NULL)
		bench_die("out of memory");
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

void stats_sort_i64(int64_t *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_i64);
}

double stats_pct_sorted(const int64_t *sorted, size_t n, double q)
{
	if (n == 0)
		return NAN;
	/* Nearest rank: the smallest sample with at least q% at or
	 * below it. */
	double rank = ceil(q / 100.0 * (double)n);
	size_t k = rank < 1 ? 0 : (size_t)rank - 1;
	if (k >= n)
		k = n - 1;
	return (double)sorted[k];
}

double stats_per_s(uint64_t n, int64_t t0_ns, int64_t t1_ns)
{
	double secs = (double)(t1_ns - t0_ns) / 1e9;
	return secs > 0 ? (double)n / secs : NAN;
}

double stats_fairness(uint64_t min, uint64_t max)
{
	return max > 0 ? (double)min / (double)max : NAN;
}

void samples_add(struct samples *s, const int64_t *v, size_t n)
{
	if (n == 0)
		return; /* (memcpy from or to NULL is undefined even for 0) */
	if (s->n + n > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->n + n)
			cap *= 2;
		int64_t *nv = realloc(s->v, cap * sizeof(*nv));
		if (nv == NULL)
			bench_die("out of memory for %zu samples", cap);
		s->v = nv;
		s->cap = cap;
	}
	memcpy(s->v + s->n, v, n * sizeof(*v));
	s->n += n;
}

void samples_add_reservoir(struct samples *s, const int64_t *slots,
			   uint64_t cap, uint64_t seen)
{
	samples_add(s, slots, seen < cap ? seen : cap);
}

void samples_free(struct samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int zipf_init(struct zipf *z, uint32_t n, double s)
{
	z->n = n;
	z->cdf = malloc((size_t)n * sizeof(*z->cdf));
	if (z->cdf == NULL)
		return -1;
	double sum = 0;
	for (uint32_t k = 0; k < n; k++) {
		sum += 1.0 / pow((double)(k + 1), s);
		z->cdf[k] = sum;
	}
	for (uint32_t k = 0; k < n; k++)
		z->cdf[k] /= sum;
	return 0;
}

void zipf_free(struct zipf *z)
{
	free(z->cdf);
	z->cdf = NULL;
}

uint32_t zipf_draw(const struct zipf *z, double u)
{
	/* The first rank whose cumulative share exceeds u. */
	uint32_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	/* 2654435761 is odd and not a multiple of 5, so coprime with
	 * every n of the form 2^a * 5^b this benchmark uses: a bijection
	 * of ranks onto locks. For other n it still spreads, with rare
	 * collisions. */
	return (uint32_t)(((uint64_t)lo * UINT64_C(2654435761)) % z->n);
}
