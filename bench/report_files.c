/*
 * report_files.c - the CSV and the gnuplot plots.
 *
 * The CSV is long-form (one figure per row), so a new metric never
 * changes its columns:  scenario,primitive,param,metric,value,unit
 * "n/a" is a figure not applicable, "never" a lock that did not recover.
 * Notes and the run's settings are rows too (metric "note", scenario
 * "meta"), so the file says how it was made.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "primitives.h"
#include "report.h"
#include "results.h"
#include "scenarios.h"

static FILE *open_in(const char *dir, const char *name, char *path,
		     size_t n)
{
	snprintf(path, n, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		fprintf(stderr, "lockbench: cannot write %s: %s\n", path,
			strerror(errno));
	return f;
}

/* A CSV field: quoted when it holds a comma or a quote. */
static void csv_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\n") == NULL) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void csv_row(FILE *f, const char *scen, const char *prim,
		    const char *param, const char *metric, const char *value,
		    const char *unit)
{
	csv_field(f, scen);
	fputc(',', f);
	csv_field(f, prim);
	fputc(',', f);
	csv_field(f, param);
	fputc(',', f);
	csv_field(f, metric);
	fputc(',', f);
	csv_field(f, value);
	fputc(',', f);
	csv_field(f, unit);
	fputc('\n', f);
}

int report_csv(const char *dir)
{
	char path[1024];
	FILE *f = open_in(dir, "lockbench.csv", path, sizeof(path));
	if (f == NULL)
		return -1;
	fputs("scenario,primitive,param,metric,value,unit\n", f);
	char v[64];
	snprintf(v, sizeof(v), "%s", bench_cfg.quick ? "quick" : "full");
	csv_row(f, "meta", "", "", "mode", v, "");
	snprintf(v, sizeof(v), "%d", bench_cfg.rounds);
	csv_row(f, "meta", "", "", "rounds", v, "");
	snprintf(v, sizeof(v), "%lld", (long long)bench_cfg.duration_ms);
	csv_row(f, "meta", "", "", "duration", v, "ms");
	snprintf(v, sizeof(v), "%ld", sysconf(_SC_NPROCESSORS_ONLN));
	csv_row(f, "meta", "", "", "cpus", v, "");
	snprintf(v, sizeof(v), "%lld", (long long)bench_cfg.ttl_ms);
	csv_row(f, "meta", "lockmgr", "", "ttl", v, "ms");
	for (size_t i = 0; i < results_count(); i++) {
		const struct result *r = results_at(i);
		if (isnan(r->value))
			snprintf(v, sizeof(v), "n/a");
		else if (isinf(r->value))
			snprintf(v, sizeof(v), "never");
		else
			snprintf(v, sizeof(v), "%.6g", r->value);
		csv_row(f, scenario_key(r->scen),
			r->prim == RES_NONE ? "" : prim_table[r->prim]->key,
			r->param, r->metric, v, r->unit);
	}
	for (int s = 0; s < SCEN_COUNT; s++) {
		const char *const *notes;
		size_t n = results_notes((enum scenario)s, &notes);
		for (size_t k = 0; k < n; k++)
			csv_row(f, scenario_key((enum scenario)s), "", "",
				"note", notes[k], "");
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "lockbench: writing %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- plots --------------------------------------------------------- */

static bool have_gnuplot(void)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		return false;
	char *copy = strdup(path), *save = NULL;
	bool found = false;
	for (char *d = strtok_r(copy, ":", &save); d != NULL && !found;
	     d = strtok_r(NULL, ":", &save)) {
		char p[1024];
		snprintf(p, sizeof(p), "%s/gnuplot", *d ? d : ".");
		found = access(p, X_OK) == 0;
	}
	free(copy);
	return found;
}

static void gp_value(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs(" NaN", f);
	else
		fprintf(f, " %.6g", v);
}

/* Throughput against P, one column per primitive. */
static int write_throughput(const char *dir, unsigned prims)
{
	char path[1024];
	FILE *f = open_in(dir, "contended.dat", path, sizeof(path));
	if (f == NULL)
		return -1;
	fputs("# P", f);
	for (int i = 0; i < PRIM_COUNT; i++)
		if (prims & (1u << i))
			fprintf(f, " %s", prim_table[i]->key);
	fputc('\n', f);
	for (int k = 0; k < CONTENDED_NP; k++) {
		char p[16];
		snprintf(p, sizeof(p), "P=%u", contended_p[k]);
		fprintf(f, "%u", contended_p[k]);
		for (int i = 0; i < PRIM_COUNT; i++)
			if (prims & (1u << i))
				gp_value(f, results_get(SCEN_CONTENDED, i, p,
							"ops_per_s"));
		fputc('\n', f);
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* The P = 16 latency CDF: one gnuplot data block per primitive. */
static int write_cdf(const char *dir, unsigned prims, unsigned *blocks)
{
	char path[1024];
	FILE *f = open_in(dir, "latency_cdf_p16.dat", path, sizeof(path));
	if (f == NULL)
		return -1;
	*blocks = 0;
	for (int i = 0; i < PRIM_COUNT; i++) {
		const struct cdf_point *pt;
		size_t n = results_cdf(i, &pt);
		if (!(prims & (1u << i)))
			continue;
		fprintf(f, "# %s: acquire latency (us), fraction <= it\n",
			prim_table[i]->key);
		/* An empty block keeps the index of each primitive. */
		if (n == 0)
			fputs("NaN NaN\n", f);
		for (size_t k = 0; k < n; k++)
			fprintf(f, "%.4f %.6f\n", pt[k].ns / 1e3,
				pt[k].fraction);
		fputs("\n\n", f);
		(*blocks)++;
	}
	return fclose(f) == 0 ? 0 : -1;
}

static int write_script(const char *dir, unsigned prims)
{
	char path[1024];
	FILE *f = open_in(dir, "lockbench.gp", path, sizeof(path));
	if (f == NULL)
		return -1;
	fputs("# lockbench plots: run in this directory with "
	      "`gnuplot lockbench.gp`.\n"
	      "set terminal png size 1000,650\n"
	      "set key outside right\n"
	      "set grid\n"
	      "set datafile missing 'NaN'\n\n"
	      "set output 'throughput.png'\n"
	      "set title 'Contended: throughput against processes (one "
	      "lock)'\n"
	      "set xlabel 'processes'\n"
	      "set ylabel 'acquire+release per second'\n"
	      "set logscale x 2\n"
	      "set logscale y 10\n"
	      "set xrange [0.8:80]\n"
	      "set xtics (1, 2, 4, 8, 16, 64)\n",
	      f);
	fputs("plot", f);
	int col = 2;
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!(prims & (1u << i)))
			continue;
		fprintf(f, "%s 'contended.dat' using 1:%d with linespoints "
			   "lw 2 title '%s'",
			col == 2 ? "" : ", \\\n    ", col,
			prim_table[i]->label);
		col++;
	}
	fputs("\n\n"
	      "set output 'latency_cdf_p16.png'\n"
	      "set title 'Acquire latency distribution at P = 16 (CDF)'\n"
	      "set xlabel 'acquire latency (microseconds)'\n"
	      "set ylabel 'fraction of acquires'\n"
	      "unset logscale y\n"
	      "set logscale x 10\n"
	      "set xtics auto\n"
	      "set autoscale x\n"
	      "set yrange [0:1]\n",
	      f);
	fputs("plot", f);
	int idx = 0;
	for (int i = 0; i < PRIM_COUNT; i++) {
		if (!(prims & (1u << i)))
			continue;
		fprintf(f, "%s 'latency_cdf_p16.dat' index %d using 1:2 with "
			   "lines lw 2 title '%s'",
			idx == 0 ? "" : ", \\\n    ", idx,
			prim_table[i]->label);
		idx++;
	}
	fputc('\n', f);
	return fclose(f) == 0 ? 0 : -1;
}

static int run_gnuplot(const char *dir)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (chdir(dir) != 0)
			_exit(126);
		execlp("gnuplot", "gnuplot", "lockbench.gp", (char *)NULL);
		_exit(127);
	}
	int64_t deadline = bench_now_ns() + INT64_C(60) * 1000000000;
	int st;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (bench_now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fprintf(stderr, "lockbench: gnuplot took over 60 s; "
					"killed\n");
			return -1;
		}
		bench_sleep_ns(10000000);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "lockbench: gnuplot failed (status 0x%x)\n",
			st);
		return -1;
	}
	return 0;
}

int report_plots(const char *dir, unsigned prims)
{
	unsigned blocks;
	if (write_throughput(dir, prims) != 0 ||
	    write_cdf(dir, prims, &blocks) != 0 ||
	    write_script(dir, prims) != 0)
		return -1;
	if (!have_gnuplot()) {
		fprintf(stderr, "lockbench: gnuplot is not installed (Debian: "
				"apt-get install gnuplot-nox): no PNGs; the "
				"data and %s/lockbench.gp are written\n",
			dir);
		return 1;
	}
	return run_gnuplot(dir);
}
