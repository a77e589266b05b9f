/*
 * report.h - what a run shows: the terminal table with its ratios and
 * the project's targets (report_table.c), the CSV and the gnuplot plots
 * (report_files.c).
 */
#ifndef LOCKBENCH_REPORT_H
#define LOCKBENCH_REPORT_H

#include <stdio.h>

/* The aligned table of every scenario that ran, then the targets. */
void report_table(FILE *f, unsigned scenarios, unsigned prims);

/* <dir>/lockbench.csv. 0, or -1 with a message on stderr. */
int report_csv(const char *dir);

/*
 * Data files, a gnuplot script and the PNGs under dir. Returns 0, 1 if
 * gnuplot is not installed (a note is printed, the data files and the
 * script are still written), or -1 on an error.
 */
int report_plots(const char *dir, unsigned prims);

#endif
