/*
 * results.c - the store of measured figures. A few hundred rows per
 * run: a flat array searched linearly is all it needs.
 */
#include "results.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primitives.h"

static struct result *rows;
static size_t nrows, caprows;

#define MAX_NOTES 16
static char *notes[SCEN_COUNT][MAX_NOTES];
static size_t nnotes[SCEN_COUNT];

static struct {
	struct cdf_point pt[CDF_POINTS + 1];
	size_t n;
} cdf[PRIM_COUNT];

void results_add(enum scenario scen, int prim, const char *param,
		 const char *metric, double value, const char *unit)
{
	if (nrows == caprows) {
		caprows = caprows ? caprows * 2 : 256;
		rows = realloc(rows, caprows * sizeof(*rows));
		if (rows == NULL)
			bench_die("out of memory for results");
	}
	struct result *r = &rows[nrows++];
	memset(r, 0, sizeof(*r));
	r->scen = scen;
	r->prim = prim;
	snprintf(r->param, sizeof(r->param), "%s", param);
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	r->value = value;
}

double results_get(enum scenario scen, int prim, const char *param,
		   const char *metric)
{
	/* The last row wins, should a figure be measured twice. */
	for (size_t i = nrows; i-- > 0;) {
		const struct result *r = &rows[i];
		if (r->scen == scen && r->prim == prim &&
		    strcmp(r->param, param) == 0 &&
		    strcmp(r->metric, metric) == 0)
			return r->value;
	}
	return NAN;
}

size_t results_count(void)
{
	return nrows;
}

const struct result *results_at(size_t i)
{
	return i < nrows ? &rows[i] : NULL;
}

void results_note(enum scenario scen, const char *fmt, ...)
{
	if (scen >= SCEN_COUNT || nnotes[scen] >= MAX_NOTES)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	notes[scen][nnotes[scen]++] = strdup(buf);
}

size_t results_notes(enum scenario scen, const char *const **out)
{
	*out = (const char *const *)notes[scen];
	return nnotes[scen];
}

void results_set_cdf(int prim, const int64_t *sorted, size_t n)
{
	if (prim < 0 || prim >= PRIM_COUNT)
		return;
	size_t step = n / CDF_POINTS + 1, k = 0, m = 0;
	for (; k < n && m < CDF_POINTS; k += step, m++) {
		cdf[prim].pt[m].ns = (double)sorted[k];
		cdf[prim].pt[m].fraction = (double)(k + 1) / (double)n;
	}
	/* Always end on the largest sample: the tail is the point. */
	if (n > 0 && (k - step) != n - 1) {
		cdf[prim].pt[m].ns = (double)sorted[n - 1];
		cdf[prim].pt[m].fraction = 1;
		m++;
	}
	cdf[prim].n = m;
}

size_t results_cdf(int prim, const struct cdf_point **points)
{
	if (prim < 0 || prim >= PRIM_COUNT)
		return 0;
	*points = cdf[prim].pt;
	return cdf[prim].n;
}
