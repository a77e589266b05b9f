/*
 * report_table.c - the table on the terminal.
 *
 * Ratios are spelled so that no reader has to guess their direction:
 * "cost/robust" is this primitive's time divided by the robust mutex's
 * (above 1 = slower), "thru/flock" is its throughput divided by
 * flock's (above 1 = faster).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "primitives.h"
#include "report.h"
#include "results.h"
#include "scenarios.h"

#define W_NAME 14

/* ---- number formatting --------------------------------------------- */

static const char *fmt_ns(char *b, size_t n, double v)
{
	if (isnan(v))
		snprintf(b, n, "n/a");
	else if (isinf(v))
		snprintf(b, n, "never");
	else if (v < 1e3)
		snprintf(b, n, "%.1f ns", v);
	else if (v < 1e6)
		snprintf(b, n, "%.1f us", v / 1e3);
	else if (v < 1e9)
		snprintf(b, n, "%.2f ms", v / 1e6);
	else
		snprintf(b, n, "%.2f s", v / 1e9);
	return b;
}

static const char *fmt_ops(char *b, size_t n, double v)
{
	if (isnan(v))
		snprintf(b, n, "n/a");
	else if (v >= 1e6)
		snprintf(b, n, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(b, n, "%.1fk", v / 1e3);
	else
		snprintf(b, n, "%.0f", v);
	return b;
}

static const char *fmt_x(char *b, size_t n, double v)
{
	if (isnan(v))
		snprintf(b, n, "n/a");
	else if (isinf(v))
		snprintf(b, n, "inf");
	else if (v >= 100)
		snprintf(b, n, "%.0fx", v);
	else
		snprintf(b, n, "%.2fx", v);
	return b;
}

static const char *fmt_num(char *b, size_t n, double v, int prec)
{
	if (isnan(v))
		snprintf(b, n, "n/a");
	else
		snprintf(b, n, "%.*f", prec, v);
	return b;
}

static const char *fmt_pct(char *b, size_t n, double v)
{
	if (isnan(v))
		snprintf(b, n, "-");
	else
		snprintf(b, n, "%.0f%%", v * 100);
	return b;
}

/* a / b for two finite values, else NAN ("never" / x is no ratio). */
static double ratio(double a, double b)
{
	if (isnan(a) || isnan(b) || isinf(a) || isinf(b) || b == 0)
		return NAN;
	return a / b;
}

static void heading(FILE *f, enum scenario s, const char *title)
{
	fprintf(f, "\n%d. %s\n", (int)s + 1, title);
}

static void notes(FILE *f, enum scenario s)
{
	const char *const *v;
	size_t n = results_notes(s, &v);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "   note: %s\n", v[i]);
}

static bool on(unsigned prims, int i)
{
	return (prims & (1u << i)) != 0;
}

/* ---- tables over a sweep of P ------------------------------------- */

/* The heads of a table with a column per P, after the first column's
 * ("primitive", "variant"). */
static void sweep_head(FILE *f, const char *first, const unsigned *ps,
		       int np)
{
	fprintf(f, "   %-*s", W_NAME, first);
	for (int k = 0; k < np; k++) {
		char p[16];
		snprintf(p, sizeof(p), "P=%u", ps[k]);
		fprintf(f, " %9s", p);
	}
	fputc('\n', f);
}

/* One row of such a table: its label, then the figure at each P. */
static void sweep_row(FILE *f, const char *label, const double *v, int np,
		      const char *(*fmt)(char *, size_t, double))
{
	fprintf(f, "   %-*s", W_NAME, label);
	for (int k = 0; k < np; k++) {
		char a[32];
		fprintf(f, " %9s", fmt(a, sizeof(a), v[k]));
	}
	fputc('\n', f);
}

/* ---- the scenarios ------------------------------------------------- */

static void t_uncontended(FILE *f, unsigned prims)
{
	heading(f, SCEN_UNCONTENDED,
		"Uncontended acquire+release, one process (ns per pair)");
	fprintf(f, "   %-*s %12s %12s %12s\n", W_NAME, "primitive", "ns/pair",
		"cost/robust", "cost/flock");
	double rob = results_get(SCEN_UNCONTENDED, PRIM_ROBUST, "",
				 "ns_per_pair");
	double fl = results_get(SCEN_UNCONTENDED, PRIM_FLOCK, "",
				"ns_per_pair");
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		double v = results_get(SCEN_UNCONTENDED, i, "", "ns_per_pair");
		char a[32], b[32], c[32];
		fprintf(f, "   %-*s %12s %12s %12s\n", W_NAME,
			prim_table[i]->label, fmt_num(a, sizeof(a), v, 1),
			fmt_x(b, sizeof(b), ratio(v, rob)),
			fmt_x(c, sizeof(c), ratio(v, fl)));
	}
	notes(f, SCEN_UNCONTENDED);
}

static void contended_detail(FILE *f, unsigned prims, unsigned np)
{
	char param[16];
	snprintf(param, sizeof(param), "P=%u", np);
	fprintf(f, "\n   at %s:\n", param);
	fprintf(f, "   %-*s %9s %11s %10s %9s %9s %9s %8s %7s\n", W_NAME,
		"primitive", "ops/s", "thru/robust", "thru/flock", "p50",
		"p99", "p99.9", "fairness", "streak");
	double rob = results_get(SCEN_CONTENDED, PRIM_ROBUST, param,
				 "ops_per_s");
	double fl = results_get(SCEN_CONTENDED, PRIM_FLOCK, param,
				"ops_per_s");
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		double ops = results_get(SCEN_CONTENDED, i, param, "ops_per_s");
		char a[32], b[32], c[32], d[32], e[32], g[32], h[32], k[32];
		fprintf(f, "   %-*s %9s %11s %10s %9s %9s %9s %8s %7s\n",
			W_NAME, prim_table[i]->label,
			fmt_ops(a, sizeof(a), ops),
			fmt_x(b, sizeof(b), ratio(ops, rob)),
			fmt_x(c, sizeof(c), ratio(ops, fl)),
			fmt_ns(d, sizeof(d),
			       results_get(SCEN_CONTENDED, i, param, "p50_ns")),
			fmt_ns(e, sizeof(e),
			       results_get(SCEN_CONTENDED, i, param, "p99_ns")),
			fmt_ns(g, sizeof(g),
			       results_get(SCEN_CONTENDED, i, param,
					   "p999_ns")),
			fmt_num(h, sizeof(h),
				results_get(SCEN_CONTENDED, i, param,
					    "fairness"), 2),
			fmt_num(k, sizeof(k),
				results_get(SCEN_CONTENDED, i, param,
					    "mean_streak"), 1));
	}
}

/* A primitive's contended throughput at P = np. */
static double contended_ops(int prim, unsigned np)
{
	char p[16];
	snprintf(p, sizeof(p), "P=%u", np);
	return results_get(SCEN_CONTENDED, prim, p, "ops_per_s");
}

static void t_contended(FILE *f, unsigned prims)
{
	heading(f, SCEN_CONTENDED,
		"Contended: P processes on one lock, a counter incremented "
		"in the critical section");
	fprintf(f, "   throughput (ops/s):\n");
	sweep_head(f, "primitive", contended_p, CONTENDED_NP);
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		double v[CONTENDED_NP];
		for (int k = 0; k < CONTENDED_NP; k++)
			v[k] = contended_ops(i, contended_p[k]);
		sweep_row(f, prim_table[i]->label, v, CONTENDED_NP, fmt_ops);
	}
	fprintf(f, "   lockmgr throughput / flock's:\n");
	for (int i = PRIM_LOCKMGR; i <= PRIM_LOCKMGR_REF; i++) {
		if (!on(prims, i))
			continue;
		double v[CONTENDED_NP];
		for (int k = 0; k < CONTENDED_NP; k++)
			v[k] = ratio(contended_ops(i, contended_p[k]),
				     contended_ops(PRIM_FLOCK, contended_p[k]));
		sweep_row(f, prim_table[i]->label, v, CONTENDED_NP, fmt_x);
	}
	contended_detail(f, prims, 16);
	contended_detail(f, prims, 64);
	notes(f, SCEN_CONTENDED);
}

static void t_handoff(FILE *f, unsigned prims)
{
	heading(f, SCEN_HANDOFF,
		"Hand-off: release -> the blocked waiter's acquire returns");
	fprintf(f, "   %-*s %10s %10s %11s %12s %11s %7s\n", W_NAME,
		"primitive", "median", "p99", "cost/futex", "cost/robust",
		"cost/flock", "asleep");
	double fu = results_get(SCEN_HANDOFF, PRIM_FUTEX, "", "p50_ns");
	double rob = results_get(SCEN_HANDOFF, PRIM_ROBUST, "", "p50_ns");
	double fl = results_get(SCEN_HANDOFF, PRIM_FLOCK, "", "p50_ns");
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		double v = results_get(SCEN_HANDOFF, i, "", "p50_ns");
		char a[32], b[32], c[32], d[32], e[32], g[32];
		fprintf(f, "   %-*s %10s %10s %11s %12s %11s %7s\n", W_NAME,
			prim_table[i]->label, fmt_ns(a, sizeof(a), v),
			fmt_ns(b, sizeof(b),
			       results_get(SCEN_HANDOFF, i, "", "p99_ns")),
			fmt_x(c, sizeof(c), ratio(v, fu)),
			fmt_x(d, sizeof(d), ratio(v, rob)),
			fmt_x(e, sizeof(e), ratio(v, fl)),
			fmt_pct(g, sizeof(g),
				results_get(SCEN_HANDOFF, i, "",
					    "waiter_asleep")));
	}
	notes(f, SCEN_HANDOFF);
	fprintf(f, "   (\"asleep\": share of hand-offs to a waiter asleep in "
		   "the kernel)\n");
}

static void t_crash(FILE *f, unsigned prims)
{
	heading(f, SCEN_CRASH,
		"Crash recovery: holder SIGKILLed -> blocked waiter acquires");
	fprintf(f, "   %-*s %10s %10s %12s %11s %10s %7s\n", W_NAME,
		"primitive", "median", "max", "cost/robust", "cost/flock",
		"told dead", "asleep");
	double rob = results_get(SCEN_CRASH, PRIM_ROBUST, "", "p50_ns");
	double fl = results_get(SCEN_CRASH, PRIM_FLOCK, "", "p50_ns");
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		double v = results_get(SCEN_CRASH, i, "", "p50_ns");
		double told = results_get(SCEN_CRASH, i, "", "told_dead");
		char a[32], b[32], c[32], d[32], e[32];
		fprintf(f, "   %-*s %10s %10s %12s %11s %10s %7s\n", W_NAME,
			prim_table[i]->label, fmt_ns(a, sizeof(a), v),
			fmt_ns(b, sizeof(b),
			       results_get(SCEN_CRASH, i, "", "max_ns")),
			fmt_x(c, sizeof(c), ratio(v, rob)),
			fmt_x(d, sizeof(d), ratio(v, fl)),
			isnan(told) ? "-" : told > 0.5 ? "yes" : "no",
			fmt_pct(e, sizeof(e),
				results_get(SCEN_CRASH, i, "",
					    "waiter_asleep")));
	}
	notes(f, SCEN_CRASH);
	fprintf(f, "   (\"told dead\": the new holder learns the old one "
		   "died: EOWNERDEAD, LM_GRANT_RECOVERED; \"asleep\": "
		   "share of kills with the waiter asleep in the kernel)\n");
}

static void t_manylocks(FILE *f, unsigned prims)
{
	heading(f, SCEN_MANYLOCKS, "Many locks: 16 processes (ops/s)");
	uint32_t sz[2] = {bench_cfg.many_small, bench_cfg.many_large};
	char params[4][32];
	for (int k = 0; k < 4; k++)
		snprintf(params[k], sizeof(params[k]), "N=%u %s", sz[k / 2],
			 k % 2 ? "zipf" : "uniform");
	fprintf(f, "   %-*s", W_NAME, "primitive");
	for (int k = 0; k < 4; k++)
		fprintf(f, " %14s", params[k] + 2);
	fprintf(f, " %11s %11s %11s\n", "small/large", "small/large",
		"thru/robust");
	fprintf(f, "   %-*s %14s %14s %14s %14s %11s %11s %11s\n", W_NAME, "",
		"", "", "", "", "uniform", "zipf", "large unif");
	double rob_large = results_get(SCEN_MANYLOCKS, PRIM_ROBUST, params[2],
				       "ops_per_s");
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		double v[4];
		char a[32];
		fprintf(f, "   %-*s", W_NAME, prim_table[i]->label);
		for (int k = 0; k < 4; k++) {
			v[k] = results_get(SCEN_MANYLOCKS, i, params[k],
					   "ops_per_s");
			fprintf(f, " %14s", fmt_ops(a, sizeof(a), v[k]));
		}
		char b[32], c[32];
		fprintf(f, " %11s %11s %11s\n",
			fmt_x(a, sizeof(a), ratio(v[0], v[2])),
			fmt_x(b, sizeof(b), ratio(v[1], v[3])),
			fmt_x(c, sizeof(c), ratio(v[2], rob_large)));
	}
	for (int i = PRIM_LOCKMGR; i <= PRIM_LOCKMGR_REF; i++) {
		double b = results_get(SCEN_MANYLOCKS, i, "", "bytes_per_lock");
		if (!isnan(b))
			fprintf(f, "   lockmgr memory: %.0f bytes per lock "
				   "(region %.0f bytes / %u locks)\n",
				b,
				results_get(SCEN_MANYLOCKS, i, "",
					    "region_bytes"),
				bench_cfg.max_locks);
	}
	notes(f, SCEN_MANYLOCKS);
}

static void t_serverdown(FILE *f, unsigned prims)
{
	heading(f, SCEN_SERVERDOWN,
		"lockmgr with one of three servers down, P = 16");
	fprintf(f, "   %-*s %10s %10s %10s %12s %12s\n", W_NAME, "primitive",
		"3 up", "1 down", "down/up", "p99.9 3 up", "p99.9 1 down");
	for (int i = PRIM_LOCKMGR; i <= PRIM_LOCKMGR_REF; i++) {
		if (!on(prims, i))
			continue;
		char a[32], b[32], c[32], d[32], e[32];
		fprintf(f, "   %-*s %10s %10s %10s %12s %12s\n", W_NAME,
			prim_table[i]->label,
			fmt_ops(a, sizeof(a),
				results_get(SCEN_SERVERDOWN, i, "3 up",
					    "ops_per_s")),
			fmt_ops(b, sizeof(b),
				results_get(SCEN_SERVERDOWN, i, "1 down",
					    "ops_per_s")),
			fmt_x(c, sizeof(c),
			      results_get(SCEN_SERVERDOWN, i, "",
					  "ratio_down_up")),
			fmt_ns(d, sizeof(d),
			       results_get(SCEN_SERVERDOWN, i, "3 up",
					   "p999_ns")),
			fmt_ns(e, sizeof(e),
			       results_get(SCEN_SERVERDOWN, i, "1 down",
					   "p999_ns")));
	}
	notes(f, SCEN_SERVERDOWN);
}

/* A figure of the read-write mix `mix` at P = np. */
static double rw_get(int prim, unsigned np, int mix, const char *metric)
{
	char p[32];
	rw_param(p, sizeof(p), np, mix);
	return results_get(SCEN_RW, prim, p, metric);
}

static void rw_thru_rows(FILE *f, unsigned prims, int mix)
{
	fprintf(f, "   throughput (ops/s), %u%% reads:\n", rw_read_pct[mix]);
	sweep_head(f, "primitive", rw_p, RW_NP);
	double v[RW_NP];
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i) || prim_table[i]->acquire_mode == NULL)
			continue;
		for (int k = 0; k < RW_NP; k++)
			v[k] = rw_get(i, rw_p[k], mix, "ops_per_s");
		sweep_row(f, prim_table[i]->label, v, RW_NP, fmt_ops);
	}
	static const char *const vs[2][2] = {
		{"lockmgr/flock", "thru_over_flock"},
		{"lockmgr/rwlock", "thru_over_rwlock"},
	};
	for (int r = 0; r < 2 && on(prims, PRIM_LOCKMGR); r++) {
		for (int k = 0; k < RW_NP; k++)
			v[k] = rw_get(PRIM_LOCKMGR, rw_p[k], mix, vs[r][1]);
		sweep_row(f, vs[r][0], v, RW_NP, fmt_x);
	}
}

static void t_rw(FILE *f, unsigned prims)
{
	heading(f, SCEN_RW,
		"Readers and writers: shared (S, rdlock, LOCK_SH) against "
		"exclusive locks");
	fprintf(f, "   uncontended, one process (ns per acquire+release "
		   "pair):\n");
	fprintf(f, "   %-*s %10s %10s %8s %10s\n", W_NAME, "primitive",
		"S", "X", "S/X", "X plain");
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		double sv = results_get(SCEN_RW, i, "uncontended",
					"S_ns_per_pair");
		double xv = results_get(SCEN_RW, i, "uncontended",
					"X_ns_per_pair");
		double pv = results_get(SCEN_RW, i, "uncontended",
					"X_plain_ns_per_pair");
		if (isnan(sv) && isnan(xv) && isnan(pv))
			continue;
		char a[32], b[32], c[32], d[32];
		fprintf(f, "   %-*s %10s %10s %8s %10s\n", W_NAME,
			prim_table[i]->label, fmt_num(a, sizeof(a), sv, 1),
			fmt_num(b, sizeof(b), xv, 1),
			fmt_x(c, sizeof(c), ratio(sv, xv)),
			fmt_num(d, sizeof(d), pv, 1));
	}
	for (int mix = 0; mix < RW_NMIX; mix++)
		rw_thru_rows(f, prims, mix);
	for (int mix = 0; mix < RW_NMIX; mix++) {
		char param[32];
		rw_param(param, sizeof(param), 16, mix);
		fprintf(f, "\n   at %s:\n", param);
		fprintf(f, "   %-*s %9s %7s %8s %9s %9s %9s %9s %5s\n",
			W_NAME, "primitive", "ops/s", "writes", "fairness",
			"read p50", "read p99", "write p50", "write p99",
			"viol");
		for (int i = 0; i < PRIM_COUNT; i++) {
			if (!on(prims, i) || prim_table[i]->acquire_mode == NULL)
				continue;
			char a[32], b[32], c[32], d[32], e[32], g[32], h[32],
				k[32];
#define RG(m) results_get(SCEN_RW, i, param, m)
			fprintf(f, "   %-*s %9s %7s %8s %9s %9s %9s %9s %5s\n",
				W_NAME, prim_table[i]->label,
				fmt_ops(a, sizeof(a), RG("ops_per_s")),
				fmt_pct(b, sizeof(b), RG("write_share")),
				fmt_num(c, sizeof(c), RG("fairness"), 2),
				fmt_ns(d, sizeof(d), RG("read_p50_ns")),
				fmt_ns(e, sizeof(e), RG("read_p99_ns")),
				fmt_ns(g, sizeof(g), RG("write_p50_ns")),
				fmt_ns(h, sizeof(h), RG("write_p99_ns")),
				fmt_num(k, sizeof(k), RG("violations"), 0));
#undef RG
		}
	}
	double b = results_get(SCEN_RW, PRIM_LOCKMGR, "", "bytes_per_lock");
	if (!isnan(b))
		fprintf(f, "   lockmgr memory: %.0f bytes per lock from the "
			   "region header's sizes; %.1f with the sessions and "
			   "headers (region %.0f bytes / %.0f locks)\n",
			results_get(SCEN_RW, PRIM_LOCKMGR, "",
				    "marginal_bytes_per_lock"),
			b, results_get(SCEN_RW, PRIM_LOCKMGR, "", "region_bytes"),
			results_get(SCEN_RW, PRIM_LOCKMGR, "", "max_locks"));
	notes(f, SCEN_RW);
	fprintf(f, "   (\"writes\": share of completed operations that were "
		   "writes; \"viol\": overlaps, torn reads and lost writes "
		   "seen inside the critical section, must be 0)\n");
}

/* A figure of tree variant v at base ("P=4", "uncontended"). */
static double tree_get(int v, const char *base, const char *metric)
{
	char param[32];
	tree_param(param, sizeof(param), base, v);
	return results_get(SCEN_TREE, tree_variant_prim(v), param, metric);
}

static bool tree_has(int v)
{
	return !isnan(tree_get(v, "uncontended", "ns_per_pair")) ||
	       !isnan(tree_get(v, "P=1", "ops_per_s"));
}

/* Variant v's figure at each P of the sweep, into v[TREE_NP]. */
static void tree_sweep_get(int v, const char *metric, double *out)
{
	for (int k = 0; k < TREE_NP; k++) {
		char base[16];
		snprintf(base, sizeof(base), "P=%u", tree_p[k]);
		out[k] = tree_get(v, base, metric);
	}
}

/* One row per variant of a figure over the P sweep. */
static void tree_sweep_rows(FILE *f, const char *metric, bool ns)
{
	for (int v = 0; v < TREE_NV; v++) {
		if (!tree_has(v))
			continue;
		double x[TREE_NP];
		tree_sweep_get(v, metric, x);
		sweep_row(f, tree_variant_label[v], x, TREE_NP,
			  ns ? fmt_ns : fmt_ops);
	}
}

static void tree_sweep_head(FILE *f, const char *what)
{
	fprintf(f, "   %s:\n", what);
	sweep_head(f, "variant", tree_p, TREE_NP);
}

static void t_tree(FILE *f)
{
	heading(f, SCEN_TREE,
		"Lock trees: X on rows /tbl/rows/rK of a lockmgrd --tree "
		"region (IX on /tbl, /tbl/rows first)");
	fprintf(f, "   uncontended, one process, X on /tbl/rows/r0 (ns per "
		   "acquire+release pair):\n");
	fprintf(f, "   %-*s %10s %10s\n", W_NAME, "variant", "ns/pair",
		"cost/flat");
	double flat = tree_get(TREE_V_FLAT, "uncontended", "ns_per_pair");
	for (int v = 0; v < TREE_NV; v++) {
		if (!tree_has(v))
			continue;
		double x = tree_get(v, "uncontended", "ns_per_pair");
		char a[32], b[32];
		fprintf(f, "   %-*s %10s %10s\n", W_NAME,
			tree_variant_label[v], fmt_num(a, sizeof(a), x, 1),
			fmt_x(b, sizeof(b), ratio(x, flat)));
	}
	tree_sweep_head(f, "rows only, process K writes row K: throughput "
			   "(ops/s)");
	tree_sweep_rows(f, "ops_per_s", false);
	static const char *const vs[3][2] = {
		{"tree/flat", "thru_over_flat"},
		{"tree/flock", "thru_over_flock"},
		{"tree/robust", "thru_over_robust"},
	};
	for (int i = 0; i < 3; i++) {
		double x[TREE_NP];
		tree_sweep_get(TREE_V_TREE, vs[i][1], x);
		bool any = false;
		for (int k = 0; k < TREE_NP; k++)
			any |= !isnan(x[k]);
		if (any)
			sweep_row(f, vs[i][0], x, TREE_NP, fmt_x);
	}
	tree_sweep_head(f, "acquire latency p50");
	tree_sweep_rows(f, "p50_ns", true);
	tree_sweep_head(f, "acquire latency p99");
	tree_sweep_rows(f, "p99_ns", true);
	double v0 = results_get(SCEN_TREE, PRIM_LOCKMGR, "mix P=4",
				"ops_per_s");
	bool mix = !isnan(v0);
	for (int k = 0; k < TREE_NMIX && !mix; k++) {
		char p[32];
		snprintf(p, sizeof(p), "mix P=%u", tree_mix_p[k]);
		mix = !isnan(results_get(SCEN_TREE, PRIM_LOCKMGR, p,
					 "ops_per_s"));
	}
	if (mix) {
		fprintf(f, "   mix, lockmgr tree: process 0 takes X on "
			   "/tbl/rows (the whole table) on 1%% of its ops:\n");
		fprintf(f, "   %-6s %9s %10s %9s %9s %10s %10s %9s %9s %5s\n",
			"", "ops/s", "/rows-only", "table/s", "table ops",
			"table p50", "table p99", "row p50", "row p99",
			"viol");
		for (int k = 0; k < TREE_NMIX; k++) {
			char p[32], a[32], b[32], c[32], d[32], e[32], g[32],
				h[32], i[32], j[32];
			snprintf(p, sizeof(p), "mix P=%u", tree_mix_p[k]);
#define TG(m) results_get(SCEN_TREE, PRIM_LOCKMGR, p, m)
			fprintf(f,
				"   P=%-4u %9s %10s %9s %9s %10s %10s %9s %9s "
				"%5s\n",
				tree_mix_p[k],
				fmt_ops(a, sizeof(a), TG("ops_per_s")),
				fmt_x(b, sizeof(b), TG("thru_over_rows_only")),
				fmt_ops(c, sizeof(c), TG("table_per_s")),
				fmt_num(d, sizeof(d), TG("table_ops"), 0),
				fmt_ns(e, sizeof(e), TG("table_wait_p50_ns")),
				fmt_ns(g, sizeof(g), TG("table_wait_p99_ns")),
				fmt_ns(h, sizeof(h), TG("row_p50_ns")),
				fmt_ns(i, sizeof(i), TG("row_p99_ns")),
				fmt_num(j, sizeof(j), TG("violations"), 0));
#undef TG
		}
	}
	notes(f, SCEN_TREE);
	fprintf(f, "   (\"/rows-only\": the mix's throughput over its "
		   "baseline, the rows alone at the same P in the same rounds; "
		   "\"table ops\": table writes measured "
		   "over all rounds; \"viol\": overlaps of a row writer and the "
		   "table writer inside, plus lost row writes, must be 0)\n");
}

/* A figure of watch path p. */
static double watch_get(int p, const char *metric)
{
	return results_get(SCEN_WATCH, watch_path_prim(p),
			   watch_path_label[p], metric);
}

static void t_watch(FILE *f)
{
	heading(f, SCEN_WATCH,
		"Watch wake-up: a lock changes -> the watcher runs with the "
		"event in hand");
	fprintf(f, "   %-18s %9s %9s %9s %9s %11s %9s %7s\n", "path",
		"median", "p99", "p50/futex", "p99/futex", "release p50",
		"grant p50", "asleep");
	for (int p = 0; p < WATCH_NPATH; p++) {
		double v = watch_get(p, "p50_ns");
		if (isnan(v))
			continue;
		char a[32], b[32], c[32], d[32], e[32], g[32], h[32];
		fprintf(f, "   %-18s %9s %9s %9s %9s %11s %9s %7s\n",
			watch_path_label[p], fmt_ns(a, sizeof(a), v),
			fmt_ns(b, sizeof(b), watch_get(p, "p99_ns")),
			fmt_x(c, sizeof(c), watch_get(p, "p50_over_futex")),
			fmt_x(d, sizeof(d), watch_get(p, "p99_over_futex")),
			p == WATCH_NEXT || p == WATCH_FD
				? fmt_ns(e, sizeof(e),
					 watch_get(p, "release_p50_ns"))
				: "-",
			p == WATCH_NEXT || p == WATCH_FD
				? fmt_ns(g, sizeof(g),
					 watch_get(p, "grant_p50_ns"))
				: "-",
			fmt_pct(h, sizeof(h), watch_get(p, "waiter_asleep")));
	}
	notes(f, SCEN_WATCH);
	fprintf(f, "   (\"p50/futex\", \"p99/futex\": over the bare futex's "
		   "median and p99 of the same run; \"release p50\", \"grant "
		   "p50\": the median of each kind of change, a grant's time "
		   "holding lm_acquire's work before it announces the change; "
		   "\"asleep\": share of changes made to a watcher asleep in "
		   "the kernel)\n");
}

/* A figure of the semaphore scenario. */
static double sem_get(int prim, int param, const char *metric)
{
	return results_get(SCEN_SEMAPHORE, prim, sem_param[param], metric);
}

static void t_semaphore(FILE *f)
{
	heading(f, SCEN_SEMAPHORE,
		"Semaphores of 4 slots: lm_sem_acquire against a POSIX "
		"semaphore");
	fprintf(f, "   %-*s %12s %11s %11s %11s %8s %5s %5s\n", W_NAME,
		"primitive", "uncontended", "cost/posix", "P=16 ops/s",
		"thru/posix", "fairness", "peak", "viol");
	const int rows[] = {PRIM_POSIX_SEM, PRIM_LOCKMGR};
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		int i = rows[k];
		double v = sem_get(i, SEM_UNCONTENDED, "ns_per_pair");
		if (isnan(v))
			continue;
		char a[32], b[32], c[32], d[32], e[32], g[32], h[32];
		fprintf(f, "   %-*s %12s %11s %11s %11s %8s %5s %5s\n", W_NAME,
			prim_table[i]->label, fmt_ns(a, sizeof(a), v),
			fmt_x(b, sizeof(b),
			      sem_get(i, SEM_UNCONTENDED, "cost_over_posix")),
			fmt_ops(c, sizeof(c),
				sem_get(i, SEM_CONTENDED, "ops_per_s")),
			fmt_x(d, sizeof(d),
			      sem_get(i, SEM_CONTENDED, "thru_over_posix")),
			fmt_num(e, sizeof(e),
				sem_get(i, SEM_CONTENDED, "fairness"), 2),
			fmt_num(g, sizeof(g),
				sem_get(i, SEM_CONTENDED, "peak_inside"), 0),
			fmt_num(h, sizeof(h),
				sem_get(i, SEM_CONTENDED, "violations"), 0));
	}
	notes(f, SCEN_SEMAPHORE);
	fprintf(f, "   (\"cost/posix\": time per acquire+release over the "
		   "POSIX semaphore's; \"thru/posix\": critical sections per "
		   "second over its; \"viol\": entries that found 4 holders "
		   "already inside, must be 0)\n");
}

/* A ratio far below 1 as the fraction it is ("1/14500"): etcd's
 * throughput over shared memory's would read "0.00x". */
static const char *fmt_x_small(char *b, size_t n, double v)
{
	if (!isnan(v) && v > 0 && v < 0.01)
		snprintf(b, n, "1/%.0f", 1 / v);
	else
		fmt_x(b, n, v);
	return b;
}

/* A figure of the etcd scenario: prim's, with the param "<what> <key
 * of backend b>". */
static double etcd_get(int prim, const char *what, int b,
		       const char *metric)
{
	char p[32];
	snprintf(p, sizeof(p), "%s %s", what, etcd_backend_key[b]);
	return results_get(SCEN_ETCD, prim, p, metric);
}

static void t_etcd(FILE *f)
{
	heading(f, SCEN_ETCD,
		"etcd backend: liblockmgr on a private etcd of 1 and 3 "
		"members, against lockmgrd's shared memory");
	bool any = false;
	for (int b = 0; b < ETCD_NB; b++)
		any |= !isnan(etcd_get(PRIM_LOCKMGR, "uncontended", b,
				       "p50_ns"));
	if (!any) {
		notes(f, SCEN_ETCD);
		return;
	}
	fprintf(f, "   uncontended acquire+release, one process:\n");
	fprintf(f, "   %-16s %10s %10s %10s %10s\n", "backend", "median",
		"p99", "p50/shm", "p99/shm");
	for (int b = 0; b < ETCD_NB; b++) {
		double v = etcd_get(PRIM_LOCKMGR, "uncontended", b, "p50_ns");
		if (isnan(v))
			continue;
		char a[32], c[32], d[32], e[32];
		fprintf(f, "   %-16s %10s %10s %10s %10s\n",
			etcd_backend_label[b], fmt_ns(a, sizeof(a), v),
			fmt_ns(c, sizeof(c),
			       etcd_get(PRIM_LOCKMGR, "uncontended", b,
					"p99_ns")),
			fmt_x(d, sizeof(d),
			      etcd_get(PRIM_LOCKMGR, "uncontended", b,
				       "p50_over_shm")),
			fmt_x(e, sizeof(e),
			      etcd_get(PRIM_LOCKMGR, "uncontended", b,
				       "p99_over_shm")));
	}
	fprintf(f, "   P processes on one lock, each its own connection:\n");
	fprintf(f, "   %-16s", "backend");
	for (int k = 0; k < ETCD_NP; k++) {
		char h[3][24];
		snprintf(h[0], sizeof(h[0]), "P=%u ops/s", etcd_p[k]);
		snprintf(h[1], sizeof(h[1]), "thru/shm");
		snprintf(h[2], sizeof(h[2]), "fairness");
		fprintf(f, " %11s %9s %8s", h[0], h[1], h[2]);
	}
	fprintf(f, " %5s\n", "viol");
	for (int b = 0; b < ETCD_NB; b++) {
		char w[16];
		double viol = 0;
		bool row = false;
		for (int k = 0; k < ETCD_NP; k++) {
			snprintf(w, sizeof(w), "P=%u", etcd_p[k]);
			double v = etcd_get(PRIM_LOCKMGR, w, b, "violations");
			if (!isnan(v)) {
				viol += v;
				row = true;
			}
		}
		if (!row)
			continue;
		fprintf(f, "   %-16s", etcd_backend_label[b]);
		for (int k = 0; k < ETCD_NP; k++) {
			char a[32], c[32], d[32];
			snprintf(w, sizeof(w), "P=%u", etcd_p[k]);
			fprintf(f, " %11s %9s %8s",
				fmt_ops(a, sizeof(a),
					etcd_get(PRIM_LOCKMGR, w, b,
						 "ops_per_s")),
				fmt_x_small(c, sizeof(c),
					    etcd_get(PRIM_LOCKMGR, w, b,
						     "thru_over_shm")),
				fmt_num(d, sizeof(d),
					etcd_get(PRIM_LOCKMGR, w, b,
						 "fairness"),
					2));
		}
		fprintf(f, " %5.0f\n", viol);
	}
	fprintf(f, "   command line, one run of `... -- true` from fork to "
		   "exit:\n");
	fprintf(f, "   %-28s %10s %10s %10s\n", "tool, backend", "median",
		"p99", "/etcdctl");
	for (int b = 0; b < ETCD_NB; b++) {
		static const char *const tool[2] = {"lockctl run",
						    "etcdctl lock"};
		const int prim[2] = {PRIM_LOCKMGR, RES_NONE};
		for (int t = 0; t < 2; t++) {
			double v = etcd_get(prim[t], "cli", b, "p50_ns");
			if (isnan(v))
				continue;
			char l[48], a[32], c[32], d[32];
			snprintf(l, sizeof(l), "%s, %s", tool[t],
				 etcd_backend_label[b]);
			fprintf(f, "   %-28s %10s %10s %10s\n", l,
				fmt_ns(a, sizeof(a), v),
				fmt_ns(c, sizeof(c),
				       etcd_get(prim[t], "cli", b, "p99_ns")),
				t == 0 ? fmt_x(d, sizeof(d),
					       etcd_get(prim[t], "cli", b,
							"p50_over_etcdctl"))
				       : "-");
		}
	}
	notes(f, SCEN_ETCD);
	fprintf(f, "   (\"p50/shm\": the median over the shared-memory "
		   "backend's in the same rounds; \"thru/shm\": throughput "
		   "over its, 1/N when N times lower; \"viol\": sections that "
		   "found another holder inside or lost an increment, over "
		   "both P, must be 0; \"/etcdctl\": lockctl's median over "
		   "etcdctl's on the same cluster)\n");
}

/* The cross-check: per primitive and P, the engine's figure, the
 * minimal loop's, their ratio, and whether they differ. */
static void t_crosscheck(FILE *f, unsigned prims)
{
	heading(f, SCEN_CROSSCHECK,
		"Cross-check: lockbench's contended engine against a minimal "
		"loop (acquire, counter++, release)");
	fprintf(f, "   %-*s %6s %10s %10s %14s %7s\n", W_NAME, "primitive",
		"P", "engine", "minimal", "engine/minimal", "");
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!on(prims, i))
			continue;
		for (int k = 0; k < CROSS_NP; k++) {
			char p[16];
			snprintf(p, sizeof(p), "P=%u", crosscheck_p[k]);
			double fl = results_get(SCEN_CROSSCHECK, i, p,
						"flagged");
			char a[32], b[32], c[32];
			fprintf(f, "   %-*s %6s %10s %10s %14s %7s\n", W_NAME,
				k == 0 ? prim_table[i]->label : "", p,
				fmt_ops(a, sizeof(a),
					results_get(SCEN_CROSSCHECK, i, p,
						    "engine_ops_per_s")),
				fmt_ops(b, sizeof(b),
					results_get(SCEN_CROSSCHECK, i, p,
						    "minimal_ops_per_s")),
				fmt_x(c, sizeof(c),
				      results_get(SCEN_CROSSCHECK, i, p,
						  "engine_over_minimal")),
				isnan(fl) ? "n/a" : fl > 0 ? "DIFFER" : "ok");
		}
	}
	notes(f, SCEN_CROSSCHECK);
}

/* The command line: per tool, median, p99, and their ratios to
 * flock(1)'s. */
static void t_cli(FILE *f)
{
	heading(f, SCEN_CLI,
		"Command line: `lockctl run NAME -- true`, `lmflock NAME "
		"true` against `flock FILE true` (fork to exit)");
	fprintf(f, "   %-22s %10s %10s %10s %10s\n", "tool", "median", "p99",
		"med/flock", "p99/flock");
	for (int k = 0; k < CLI_NTOOL; k++) {
		const char *p = cli_tool_param[k];
		int prim = k == CLI_FLOCK ? RES_NONE : PRIM_LOCKMGR;
		double m = results_get(SCEN_CLI, prim, p, "p50_ns");
		if (isnan(m))
			continue;
		char a[32], b[32], c[32], d[32];
		fprintf(f, "   %-22s %10s %10s %10s %10s\n", p,
			fmt_ns(a, sizeof(a), m),
			fmt_ns(b, sizeof(b),
			       results_get(SCEN_CLI, prim, p, "p99_ns")),
			k == CLI_FLOCK ? ""
				       : fmt_x(c, sizeof(c),
					       results_get(SCEN_CLI, prim, p,
							   "p50_over_flock")),
			k == CLI_FLOCK ? ""
				       : fmt_x(d, sizeof(d),
					       results_get(SCEN_CLI, prim, p,
							   "p99_over_flock")));
	}
	notes(f, SCEN_CLI);
}

/* ---- the project's targets (README.md, "Performance") ------------- */

/* A ratio for a sentence, from one of a few rotating buffers. */
static const char *fx(double v)
{
	static char buf[8][32];
	static int k;
	k = (k + 1) % 8;
	return fmt_x(buf[k], sizeof(buf[k]), v);
}

/* One target line: "met" when ok, else how far off. */
static void target(FILE *f, const char *what, const char *measured,
		   double ok, const char *miss)
{
	const char *verdict = isnan(ok) ? "not measured"
			      : ok > 0  ? "met"
					: miss;
	fprintf(f, "   %-55s %-26s %s\n", what, measured, verdict);
}

static void targets_for(FILE *f, unsigned scen, int lm)
{
	const char *name = prim_table[lm]->label;
	char what[96], m[64], miss[64];

	if (scen & (1u << SCEN_UNCONTENDED)) {
		double v = results_get(SCEN_UNCONTENDED, lm, "", "ns_per_pair");
		double r = ratio(v, results_get(SCEN_UNCONTENDED, PRIM_ROBUST,
						"", "ns_per_pair"));
		snprintf(what, sizeof(what), "%s uncontended <= 8x robust",
			 name);
		snprintf(m, sizeof(m), "%.1f ns = %s", v, fx(r));
		snprintf(miss, sizeof(miss), "MISSED by %s", fx(r / 8));
		target(f, what, m, isnan(r) ? NAN : r <= 8, miss);
		double fr = ratio(results_get(SCEN_UNCONTENDED, PRIM_FLOCK, "",
					      "ns_per_pair"), v);
		snprintf(what, sizeof(what),
			 "%s uncontended >= 5x faster than flock", name);
		snprintf(m, sizeof(m), "%s faster", fx(fr));
		snprintf(miss, sizeof(miss), "MISSED by %s", fx(5 / fr));
		target(f, what, m, isnan(fr) ? NAN : fr >= 5, miss);
	}
	if (scen & (1u << SCEN_CONTENDED)) {
		double r = ratio(results_get(SCEN_CONTENDED, lm, "P=16",
					     "ops_per_s"),
				 results_get(SCEN_CONTENDED, PRIM_FLOCK, "P=16",
					     "ops_per_s"));
		snprintf(what, sizeof(what), "%s P=16 throughput >= 2x flock",
			 name);
		snprintf(m, sizeof(m), "%s flock", fx(r));
		snprintf(miss, sizeof(miss), "MISSED by %s", fx(2 / r));
		target(f, what, m, isnan(r) ? NAN : r >= 2, miss);
		double fa = results_get(SCEN_CONTENDED, lm, "P=16", "fairness");
		snprintf(what, sizeof(what), "%s P=16 fairness min/max >= 0.5",
			 name);
		snprintf(m, sizeof(m), "%.2f", fa);
		snprintf(miss, sizeof(miss), "MISSED (%.2f < 0.5)", fa);
		target(f, what, m, isnan(fa) ? NAN : fa >= 0.5, miss);
		char b[32];
		snprintf(what, sizeof(what), "%s P=16 p99.9 acquire latency",
			 name);
		snprintf(m, sizeof(m), "%s",
			 fmt_ns(b, sizeof(b),
				results_get(SCEN_CONTENDED, lm, "P=16",
					    "p999_ns")));
		fprintf(f, "   %-55s %-26s %s\n", what, m, "(stated)");
	}
	if (scen & (1u << SCEN_HANDOFF)) {
		double r = ratio(results_get(SCEN_HANDOFF, lm, "", "p50_ns"),
				 results_get(SCEN_HANDOFF, PRIM_FUTEX, "",
					     "p50_ns"));
		snprintf(what, sizeof(what),
			 "%s hand-off median <= 1.2x bare futex", name);
		snprintf(m, sizeof(m), "%s futex", fx(r));
		snprintf(miss, sizeof(miss), "MISSED by %s", fx(r / 1.2));
		target(f, what, m, isnan(r) ? NAN : r <= 1.2, miss);
	}
	if (scen & (1u << SCEN_CRASH)) {
		double v = results_get(SCEN_CRASH, lm, "", "p50_ns");
		double fl = results_get(SCEN_CRASH, PRIM_FLOCK, "", "p50_ns");
		char a[32], b[32];
		snprintf(what, sizeof(what),
			 "%s crash recovery median <= flock's", name);
		snprintf(m, sizeof(m), "%s vs %s", fmt_ns(a, sizeof(a), v),
			 fmt_ns(b, sizeof(b), fl));
		snprintf(miss, sizeof(miss), "MISSED by %s", fx(v / fl));
		target(f, what, m,
		       isnan(v) || isnan(fl) ? NAN : v <= fl, miss);
	}
	if (scen & (1u << SCEN_MANYLOCKS)) {
		for (int z = 0; z < 2; z++) {
			char ps[32], pl[32];
			snprintf(ps, sizeof(ps), "N=%u %s",
				 bench_cfg.many_small, z ? "zipf" : "uniform");
			snprintf(pl, sizeof(pl), "N=%u %s",
				 bench_cfg.many_large, z ? "zipf" : "uniform");
			double r = ratio(
				results_get(SCEN_MANYLOCKS, lm, ps, "ops_per_s"),
				results_get(SCEN_MANYLOCKS, lm, pl,
					    "ops_per_s"));
			snprintf(what, sizeof(what),
				 "%s %u names within 2x of %u (%s)", name,
				 bench_cfg.many_large, bench_cfg.many_small,
				 z ? "zipf" : "uniform");
			snprintf(m, sizeof(m), "%u names %s slower",
				 bench_cfg.many_large, fx(r));
			snprintf(miss, sizeof(miss), "MISSED by %s", fx(r / 2));
			target(f, what, m, isnan(r) ? NAN : r <= 2, miss);
		}
	}
}

/* The read-write targets (lockmgr by name: S is lm_acquire_ex only). */
static void targets_rw(FILE *f)
{
	char m[64], miss[64];
	double r = results_get(SCEN_RW, PRIM_LOCKMGR, "uncontended",
			       "S_over_X");
	snprintf(m, sizeof(m), "S/X = %s", fx(r));
	snprintf(miss, sizeof(miss), "MISSED by %s", fx(r / 1.2));
	target(f, "lockmgr uncontended S pair <= 1.2x X (lm_acquire_ex)", m,
	       isnan(r) ? NAN : r <= 1.2, miss);
	r = results_get(SCEN_RW, PRIM_LOCKMGR, "P=16 95/5", "thru_over_flock");
	snprintf(m, sizeof(m), "%s flock", fx(r));
	snprintf(miss, sizeof(miss), "MISSED by %s", fx(2 / r));
	target(f, "lockmgr 95/5 reads/writes P=16 >= 2x flock", m,
	       isnan(r) ? NAN : r >= 2, miss);
	r = results_get(SCEN_RW, PRIM_LOCKMGR, "P=16 95/5", "thru_over_rwlock");
	snprintf(m, sizeof(m), "%s pthread rwlock", fx(r));
	fprintf(f, "   %-55s %-26s %s\n",
		"lockmgr 95/5 reads/writes P=16 against pthread rwlock", m,
		"(stated)");
}

/* The tree's figures: its costs are stated (no target in README.md),
 * the table writer's exclusion is one. */
static void targets_tree(FILE *f)
{
	char m[64];
	double r = results_get(SCEN_TREE, PRIM_LOCKMGR, "uncontended tree",
			       "cost_over_flat");
	snprintf(m, sizeof(m), "%s flat", fx(r));
	fprintf(f, "   %-55s %-26s %s\n",
		"lockmgr tree: uncontended X on a depth-3 name", m,
		"(stated)");
	r = results_get(SCEN_TREE, PRIM_LOCKMGR, "P=16 tree", "thru_over_flat");
	snprintf(m, sizeof(m), "%s flat", fx(r));
	fprintf(f, "   %-55s %-26s %s\n",
		"lockmgr tree: P=16 disjoint rows, throughput", m, "(stated)");
	double viol = 0;
	bool any = false;
	for (int k = 0; k < TREE_NMIX; k++) {
		char p[32];
		snprintf(p, sizeof(p), "mix P=%u", tree_mix_p[k]);
		double v = results_get(SCEN_TREE, PRIM_LOCKMGR, p,
				       "violations");
		if (!isnan(v)) {
			viol += v;
			any = true;
		}
	}
	snprintf(m, sizeof(m), "%.0f violations", viol);
	target(f, "lockmgr tree: X on /tbl/rows excludes every row writer", m,
	       any ? viol == 0 : NAN, "MISSED (see the failures)");
}

/* The etcd figures: stated (README.md sets etcd no speed target), and
 * exclusion, which must hold. */
static void targets_etcd(FILE *f)
{
	for (int b = ETCD_B_ONE; b <= ETCD_B_THREE; b++) {
		double v = etcd_get(PRIM_LOCKMGR, "uncontended", b, "p50_ns");
		if (isnan(v))
			continue;
		char what[96], m[64], a[32];
		snprintf(what, sizeof(what),
			 "lockmgr on %s: uncontended pair median",
			 etcd_backend_label[b]);
		snprintf(m, sizeof(m), "%s = %s shm", fmt_ns(a, sizeof(a), v),
			 fx(etcd_get(PRIM_LOCKMGR, "uncontended", b,
				     "p50_over_shm")));
		fprintf(f, "   %-55s %-26s %s\n", what, m, "(stated)");
	}
	double viol = 0;
	bool any = false;
	for (int b = 0; b < ETCD_NB; b++)
		for (int k = 0; k < ETCD_NP; k++) {
			char w[16];
			snprintf(w, sizeof(w), "P=%u", etcd_p[k]);
			double v = etcd_get(PRIM_LOCKMGR, w, b, "violations");
			if (!isnan(v)) {
				viol += v;
				any = true;
			}
		}
	char m[64];
	snprintf(m, sizeof(m), "%.0f violations", viol);
	target(f, "lockmgr on etcd and shm: exclusion at P=4 and P=16", m,
	       any ? viol == 0 : NAN, "MISSED (see the failures)");
}

static void t_targets(FILE *f, unsigned scen, unsigned prims)
{
	fprintf(f, "\nThe project's targets:\n");
	/* The scenarios with targets (or figures) of their own below. */
	const unsigned own = (1u << SCEN_RW) | (1u << SCEN_TREE) |
			     (1u << SCEN_WATCH) | (1u << SCEN_SEMAPHORE) |
			     (1u << SCEN_ETCD);
	for (int lm = PRIM_LOCKMGR; lm <= PRIM_LOCKMGR_REF; lm++)
		if (on(prims, lm))
			targets_for(f, scen & ~own, lm);
	if ((scen & (1u << SCEN_RW)) && on(prims, PRIM_LOCKMGR))
		targets_rw(f);
	if ((scen & (1u << SCEN_TREE)) && on(prims, PRIM_LOCKMGR))
		targets_tree(f);
	if (scen & (1u << SCEN_WATCH)) {
		/* Stated: README.md sets the watch no target. */
		for (int p = WATCH_NEXT; p <= WATCH_FD; p++) {
			char what[96], m[64], a[32];
			snprintf(what, sizeof(what),
				 "lockmgr watch wake-up median, %s",
				 watch_path_label[p]);
			snprintf(m, sizeof(m), "%s = %s futex",
				 fmt_ns(a, sizeof(a), watch_get(p, "p50_ns")),
				 fx(watch_get(p, "p50_over_futex")));
			fprintf(f, "   %-55s %-26s %s\n", what, m, "(stated)");
		}
	}
	if ((scen & (1u << SCEN_SEMAPHORE)) &&
	    !isnan(sem_get(PRIM_LOCKMGR, SEM_UNCONTENDED, "ns_per_pair"))) {
		/* Stated: README.md sets the semaphore no target. */
		char m[64], a[32];
		snprintf(m, sizeof(m), "%s = %s POSIX sem",
			 fmt_ns(a, sizeof(a), sem_get(PRIM_LOCKMGR,
						      SEM_UNCONTENDED,
						      "ns_per_pair")),
			 fx(sem_get(PRIM_LOCKMGR, SEM_UNCONTENDED,
				    "cost_over_posix")));
		fprintf(f, "   %-55s %-26s %s\n",
			"lockmgr semaphore (4 slots) uncontended pair", m,
			"(stated)");
		snprintf(m, sizeof(m), "%s POSIX sem",
			 fx(sem_get(PRIM_LOCKMGR, SEM_CONTENDED,
				    "thru_over_posix")));
		fprintf(f, "   %-55s %-26s %s\n",
			"lockmgr semaphore (4 slots) P=16 throughput", m,
			"(stated)");
	}
	if (scen & (1u << SCEN_ETCD))
		targets_etcd(f);
	for (int k = CLI_RUN; k <= CLI_LMFLOCK && (scen & (1u << SCEN_CLI));
	     k++) {
		/* Stated: README.md sets the command line no target. */
		double r = results_get(SCEN_CLI, PRIM_LOCKMGR,
				       cli_tool_param[k], "p50_over_flock");
		if (isnan(r))
			continue;
		char what[96], m[64];
		snprintf(what, sizeof(what), "%s ... true, median",
			 cli_tool_param[k]);
		snprintf(m, sizeof(m), "%s flock(1)", fx(r));
		fprintf(f, "   %-55s %-26s %s\n", what, m, "(stated)");
	}
	if (scen & (1u << SCEN_MANYLOCKS)) {
		int lm = on(prims, PRIM_LOCKMGR) ? PRIM_LOCKMGR
						 : PRIM_LOCKMGR_REF;
		double b = results_get(SCEN_MANYLOCKS, lm, "", "bytes_per_lock");
		char m[64], miss[64];
		snprintf(m, sizeof(m), "%.0f bytes", b);
		snprintf(miss, sizeof(miss), "MISSED by %.0f bytes", b - 512);
		target(f, "memory <= 512 bytes per lock", m,
		       isnan(b) ? NAN : b <= 512, miss);
	}
}

void report_table(FILE *f, unsigned scen, unsigned prims)
{
	fprintf(f, "\nlockbench: lockmgr against the host's own locks, "
		   "measured interleaved in one run%s\n",
		bench_cfg.quick ? " (--quick: a smoke test, the numbers are "
				  "not meaningful)"
				: "");
	/* The rw-only primitives appear in the read-write table only. */
	unsigned mutexes = prims & ~PRIM_RW_ONLY_MASK;
	if (scen & (1u << SCEN_UNCONTENDED))
		t_uncontended(f, mutexes);
	if (scen & (1u << SCEN_CONTENDED))
		t_contended(f, mutexes);
	if (scen & (1u << SCEN_HANDOFF))
		t_handoff(f, mutexes);
	if (scen & (1u << SCEN_CRASH))
		t_crash(f, mutexes);
	if (scen & (1u << SCEN_MANYLOCKS))
		t_manylocks(f, mutexes);
	if (scen & (1u << SCEN_SERVERDOWN))
		t_serverdown(f, mutexes);
	if (scen & (1u << SCEN_RW))
		t_rw(f, prims);
	if (scen & (1u << SCEN_TREE))
		t_tree(f);
	if (scen & (1u << SCEN_WATCH))
		t_watch(f);
	if (scen & (1u << SCEN_SEMAPHORE))
		t_semaphore(f);
	if (scen & (1u << SCEN_ETCD))
		t_etcd(f);
	if (scen & (1u << SCEN_CROSSCHECK))
		t_crosscheck(f, mutexes);
	if (scen & (1u << SCEN_CLI))
		t_cli(f);
	/* The cross-check has no target of its own. */
	if ((prims & ((1u << PRIM_LOCKMGR) | (1u << PRIM_LOCKMGR_REF))) &&
	    (scen & ~(1u << SCEN_CROSSCHECK)) != 0)
		t_targets(f, scen, prims);
	fflush(f);
}
