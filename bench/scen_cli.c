/*
 * scen_cli.c - scenario 13: the command line against util-linux
 * flock(1). `lockctl run -r REGION NAME -- true` and `lmflock -r REGION
 * NAME true` against `flock FILE true`, each run timed from fork to
 * reap: the tool's start-up (exec, dynamic linking), its connection,
 * acquire, running `true`, release and exit. That is what a shell
 * script pays per locked command, and what made lockctl run look slow
 * next to flock (libcurl's thirty libraries, loaded at every start
 * before the etcd backend loaded it on first use: client/etcd/curl_load.h).
 *
 * The tools alternate run by run (the first of each run rotating), the
 * same number of times each, so that a noisy neighbour slows them
 * alike; median and p99 of each, and each one's over flock's.
 *
 * $LOCKBENCH_CLI_BASELINE, a directory holding another build's lockctl
 * (and its lmflock link), adds that build's two tools to the same
 * rounds ("lockctl run baseline", "lmflock baseline"): a before/after
 * comparison measured interleaved, not in two runs minutes apart.
 *
 * Without flock(1) on PATH the flock rows (and the ratios) are left
 * out with a note; without a lockmgr primitive, the lockmgr ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"

#define CLI_NAME "lockbench-cli"
#define CLI_RUN_MS 10000 /* one run that takes longer has hung */

const char *const cli_tool_param[CLI_NTOOL] = {
	[CLI_FLOCK] = "flock",
	[CLI_RUN] = "lockctl run",
	[CLI_LMFLOCK] = "lmflock",
	[CLI_RUN_BASE] = "lockctl run baseline",
	[CLI_LMFLOCK_BASE] = "lmflock baseline",
};

/* The directory of our own binary (where lockctl and lmflock are
 * built), or NULL. */
static const char *self_dir(void)
{
	static char dir[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(self));
	return dir;
}

/* flock(1) from PATH, or NULL. */
static const char *find_flock(void)
{
	static char path[PATH_MAX];
	const char *p = getenv("PATH");
	if (p == NULL)
		p = "/usr/bin:/bin";
	while (*p) {
		size_t n = strcspn(p, ":");
		snprintf(path, sizeof(path), "%.*s/flock", (int)n, p);
		if (n > 0 && access(path, X_OK) == 0)
			return path;
		p += n + (p[n] == ':');
	}
	return NULL;
}

struct cli_tools {
	char path[CLI_NTOOL][PATH_MAX + 16];
	bool have[CLI_NTOOL];
	char file[64]; /* flock(1)'s lock file */
};

static void cli_argv(struct cli_tools *t, int k, char *argv[8])
{
	int n = 0;
	argv[n++] = t->path[k];
	if (k == CLI_FLOCK) {
		argv[n++] = t->file;
	} else {
		if (k == CLI_RUN || k == CLI_RUN_BASE)
			argv[n++] = "run";
		argv[n++] = "-r";
		argv[n++] = bench_cfg.region;
		argv[n++] = CLI_NAME;
		if (k == CLI_RUN || k == CLI_RUN_BASE)
			argv[n++] = "--";
	}
	argv[n++] = "true";
	argv[n] = NULL;
}

/* Tool k at dir/name, if executable. */
static void tool_at(struct cli_tools *t, int k, const char *dir,
		    const char *name)
{
	if (dir == NULL)
		return;
	snprintf(t->path[k], sizeof(t->path[k]), "%s/%s", dir, name);
	t->have[k] = access(t->path[k], X_OK) == 0;
}

void scen_cli(unsigned prims)
{
	static struct cli_tools t;
	memset(&t, 0, sizeof(t));
	const char *fl = find_flock();
	if (fl != NULL) {
		snprintf(t.path[CLI_FLOCK], sizeof(t.path[CLI_FLOCK]), "%s",
			 fl);
		t.have[CLI_FLOCK] = true;
	} else {
		results_note(SCEN_CLI, "flock rows and ratios left out: no "
				       "flock(1) on PATH (util-linux)");
	}
	const unsigned lm = (1u << PRIM_LOCKMGR) | (1u << PRIM_LOCKMGR_REF);
	if (prims & lm) {
		const char *dir = self_dir();
		tool_at(&t, CLI_RUN, dir, "lockctl");
		tool_at(&t, CLI_LMFLOCK, dir, "lmflock");
		const char *base = getenv("LOCKBENCH_CLI_BASELINE");
		if (base != NULL && *base) {
			tool_at(&t, CLI_RUN_BASE, base, "lockctl");
			tool_at(&t, CLI_LMFLOCK_BASE, base, "lmflock");
			if (!t.have[CLI_RUN_BASE])
				results_note(SCEN_CLI, "baseline rows left "
						       "out: no lockctl in "
						       "$LOCKBENCH_CLI_BASELINE"
						       " (%s)", base);
		}
		if (!t.have[CLI_RUN] || !t.have[CLI_LMFLOCK])
			results_note(SCEN_CLI, "lockctl/lmflock rows left "
					       "out: not next to lockbench");
	} else {
		results_note(SCEN_CLI, "lockctl rows left out: --primitives "
				       "has no lockmgr");
	}
	snprintf(t.file, sizeof(t.file), "/tmp/lockbench-cli-%d.lock",
		 (int)getpid());
	char errlog[80];
	snprintf(errlog, sizeof(errlog), "/tmp/lockbench-cli-%d.err",
		 (int)getpid());

	int runs = bench_cfg.cli_runs;
	struct samples pool[CLI_NTOOL] = {{0}};
	int order[CLI_NTOOL], n = 0;
	for (int k = 0; k < CLI_NTOOL; k++)
		if (t.have[k])
			order[n++] = k;
	for (int r = 0; r < runs && n > 0; r++) {
		bench_progress("13 cli: run %d/%d", r + 1, runs);
		for (int q = 0; q < n; q++) {
			int k = order[(q + r) % n];
			if (!t.have[k])
				continue;
			char *argv[8], err[300];
			cli_argv(&t, k, argv);
			int64_t ns;
			if (procs_run_timed(argv, errlog, CLI_RUN_MS, &ns, err,
					    sizeof(err)) != 0) {
				bench_fail("cli: %s: %s", cli_tool_param[k],
					   err);
				t.have[k] = false;
				continue;
			}
			samples_add(&pool[k], &ns, 1);
		}
	}
	unlink(t.file);
	unlink(errlog);

	double p50[CLI_NTOOL], p99[CLI_NTOOL];
	for (int k = 0; k < CLI_NTOOL; k++) {
		stats_sort_i64(pool[k].v, pool[k].n);
		p50[k] = stats_pct_sorted(pool[k].v, pool[k].n, 50);
		p99[k] = stats_pct_sorted(pool[k].v, pool[k].n, 99);
	}
	for (int k = 0; k < CLI_NTOOL; k++) {
		if (pool[k].n == 0)
			continue;
		int prim = k == CLI_FLOCK ? RES_NONE : PRIM_LOCKMGR;
		const char *p = cli_tool_param[k];
		results_add(SCEN_CLI, prim, p, "p50_ns", p50[k], "ns");
		results_add(SCEN_CLI, prim, p, "p99_ns", p99[k], "ns");
		results_add(SCEN_CLI, prim, p, "runs", (double)pool[k].n, "");
		if (k != CLI_FLOCK && pool[CLI_FLOCK].n > 0) {
			results_add(SCEN_CLI, prim, p, "p50_over_flock",
				    p50[k] / p50[CLI_FLOCK], "ratio");
			results_add(SCEN_CLI, prim, p, "p99_over_flock",
				    p99[k] / p99[CLI_FLOCK], "ratio");
		}
	}
	for (int k = 0; k < CLI_NTOOL; k++)
		samples_free(&pool[k]);
	results_note(SCEN_CLI,
		     "`lockctl run -r REGION %s -- true` and `lmflock -r REGION "
		     "%s true` against `flock FILE true`, %d runs each, "
		     "alternated run by run, each timed from fork to exit "
		     "(start-up, connection, acquire, `true`, release)",
		     CLI_NAME, CLI_NAME, runs);
}
