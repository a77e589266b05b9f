/*
 * test_bench.c - lockbench as a smoke test: every scenario runs with
 * every primitive, every shared counter is exact (that is what exit
 * status 0 means), and the CSV names them all.
 *
 * Never a timed assertion: the numbers of a --quick run on a loaded
 * machine (or a sanitizer build) mean nothing, and a test that failed
 * on them would only teach people to ignore it.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* What lockbench's CSV must name (bench/primitives.c, bench/util.c). */
static const char *const primitives[] = {
	"robust-mutex", "flock", "ofd", "posix-sem",
	"sysv-sem", "futex", "lockmgr", "lockmgr-ref",
};
static const char *const scenarios[] = {
	"uncontended", "contended", "handoff",
	"crash", "manylocks", "serverdown", "rw", "tree", "watch",
	"semaphore", "cli",
};
/* The Redis peer's rows, when a redis-server was there to run it. */
static const char *const redis_rows[] = {
	"uncontended,redis,,ns_per_pair,",
	"contended,redis,P=4,ops_per_s,",
	"contended,redis,P=16,ops_per_s,",
	"contended,redis,P=16,p50_ns,",
	"crash,redis,,p50_ns,",
};
/* The read-write scenario's primitives (shared and exclusive modes). */
static const char *const rw_primitives[] = {"flock", "lockmgr", "rwlock"};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

#define CSV_MAX (4u << 20)

static char dir[64];

/* Print the tail of a file on stderr, to explain a failure. */
static void show_tail(const char *path, size_t max)
{
	static char buf[1 << 16];
	ssize_t n = harness_read_file(path, buf, sizeof(buf));
	if (n <= 0)
		return;
	size_t from = (size_t)n > max ? (size_t)n - max : 0;
	fprintf(stderr, "---- %s (last %zu bytes) ----\n%s\n----\n", path,
		(size_t)n - from, buf + from);
}

/* Does the CSV hold a line starting with prefix whose value field (the
 * rest of the line up to the next comma) is a number above zero? */
static bool has_positive_row(const char *csv, const char *prefix)
{
	size_t plen = strlen(prefix);
	for (const char *line = csv; line != NULL && *line;) {
		if (strncmp(line, prefix, plen) == 0) {
			char *end;
			double v = strtod(line + plen, &end);
			if (end != line + plen && v > 0)
				return true;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return false;
}

static bool has_line_prefix(const char *csv, const char *prefix)
{
	size_t plen = strlen(prefix);
	if (strncmp(csv, prefix, plen) == 0)
		return true;
	for (const char *p = strchr(csv, '\n'); p != NULL;
	     p = strchr(p + 1, '\n'))
		if (strncmp(p + 1, prefix, plen) == 0)
			return true;
	return false;
}

static void remove_dir(const char *path)
{
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(path);
}

/* No shm object of run `pid` is left: its regions (the main one, the
 * tree scenario's lockbench-<pid>-tree and -flat), its semaphores. */
static void assert_no_shm_left(pid_t pid)
{
	char a[64], b[64], c[64];
	snprintf(a, sizeof(a), "lockbench-%d", (int)pid);
	snprintf(b, sizeof(b), "sem.lockbench-%d-", (int)pid);
	snprintf(c, sizeof(c), "lockbench-%d-", (int)pid);
	DIR *d = opendir("/dev/shm");
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, a) == 0 ||
		    strncmp(e->d_name, b, strlen(b)) == 0 ||
		    strncmp(e->d_name, c, strlen(c)) == 0) {
			char name[300];
			snprintf(name, sizeof(name), "/%s", e->d_name);
			shm_unlink(name);
			closedir(d);
			fail_msg("lockbench left /dev/shm/%s behind", name + 1);
		}
	}
	closedir(d);
}

/* Is there a redis-server in PATH (what lockbench looks for)? */
static bool have_redis_server(void)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		return false;
	char *copy = strdup(path), *save = NULL;
	bool found = false;
	for (char *d = strtok_r(copy, ":", &save); d != NULL && !found;
	     d = strtok_r(NULL, ":", &save)) {
		char p[512];
		snprintf(p, sizeof(p), "%s/redis-server", d);
		found = access(p, X_OK) == 0;
	}
	free(copy);
	return found;
}

static void bench_quick(void)
{
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	if (access(bench, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bench,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	char *argv[] = {bench, "--quick", "--out", dir, "--lockmgrd",
			lockmgrd, NULL};

	int64_t t0 = harness_now_ms();
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 170000, "lockbench --quick");
	int64_t took = harness_now_ms() - t0;
	fprintf(stderr, "  lockbench --quick ran in %lld ms\n",
		(long long)took);
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		show_tail(out, 3000);
		fail_msg("lockbench --quick: %s (1 means a counter was off or "
			 "a worker failed: see its stderr above)",
			 harness_status_str(status, b, sizeof(b)));
	}
	assert_no_shm_left(pid);

	char *csv = malloc(CSV_MAX);
	assert_non_null(csv);
	ssize_t n = harness_read_file(csv_path, csv, CSV_MAX);
	if (n <= 0)
		fail_msg("%s is missing or empty", csv_path);
	assert_true(has_line_prefix(csv,
				    "scenario,primitive,param,metric,value,"
				    "unit"));
	for (size_t s = 0; s < N_OF(scenarios); s++) {
		char p[64];
		snprintf(p, sizeof(p), "%s,", scenarios[s]);
		if (!has_line_prefix(csv, p))
			fail_msg("the CSV has no row of scenario %s",
				 scenarios[s]);
	}
	for (size_t i = 0; i < N_OF(primitives); i++) {
		char p[96];
		snprintf(p, sizeof(p), ",%s,", primitives[i]);
		if (strstr(csv, p) == NULL)
			fail_msg("the CSV never names primitive %s",
				 primitives[i]);
		/* Every primitive ran: it has a throughput at P = 16. */
		snprintf(p, sizeof(p), "contended,%s,P=16,ops_per_s,",
			 primitives[i]);
		if (!has_positive_row(csv, p))
			fail_msg("no contended throughput at P=16 for %s",
				 primitives[i]);
	}
	/* The Redis peer ran where there is a redis-server (its crash
	 * recovery is its TTL, finite), and was skipped with a message
	 * where there is none. */
	static char text[1 << 17];
	assert_true(harness_read_file(out, text, sizeof(text)) > 0);
	if (have_redis_server()) {
		for (size_t k = 0; k < N_OF(redis_rows); k++)
			if (!has_positive_row(csv, redis_rows[k]))
				fail_msg("no positive CSV row %s", redis_rows[k]);
	} else if (strstr(text, "the Redis peer is skipped") == NULL) {
		fail_msg("no redis-server, and no word that the Redis peer "
			 "was skipped");
	}
	/* Scenarios that measure something for lockmgr did so (crash
	 * recovery is left out: "never" there would be a time bound). */
	assert_true(has_positive_row(csv, "uncontended,lockmgr,,ns_per_pair,"));
	assert_true(has_positive_row(csv, "handoff,lockmgr,,p50_ns,"));
	assert_true(has_positive_row(csv, "serverdown,lockmgr,1 down,"
					  "ops_per_s,"));
	assert_true(has_positive_row(csv, "manylocks,lockmgr,,"
					  "bytes_per_lock,"));
	/* The read-write scenario: both modes measured uncontended, every
	 * mix ran at P = 16 for each primitive with a shared mode, and no
	 * overlap was seen (a violation would also have made the exit
	 * status 1). */
	for (size_t i = 0; i < N_OF(rw_primitives); i++) {
		static const char *const rows[] = {
			"rw,%s,uncontended,S_ns_per_pair,",
			"rw,%s,uncontended,X_ns_per_pair,",
			"rw,%s,P=16 95/5,ops_per_s,",
			"rw,%s,P=16 50/50,ops_per_s,",
		};
		for (size_t k = 0; k < N_OF(rows); k++) {
			char p[96];
			snprintf(p, sizeof(p), rows[k], rw_primitives[i]);
			if (!has_positive_row(csv, p))
				fail_msg("no positive CSV row %s", p);
		}
		static const char *const zero[] = {
			"rw,%s,P=16 95/5,violations,0,",
			"rw,%s,P=16 50/50,violations,0,",
		};
		for (size_t k = 0; k < N_OF(zero); k++) {
			char p[96];
			snprintf(p, sizeof(p), zero[k], rw_primitives[i]);
			if (!has_line_prefix(csv, p))
				fail_msg("no CSV row %s", p);
		}
	}
	assert_true(has_positive_row(csv, "rw,lockmgr,uncontended,"
					  "X_plain_ns_per_pair,"));
	assert_true(has_positive_row(csv, "rw,lockmgr-ref,uncontended,"
					  "X_plain_ns_per_pair,"));
	assert_true(has_positive_row(csv, "rw,lockmgr,P=16 95/5,"
					  "thru_over_flock,"));
	assert_true(has_positive_row(csv, "rw,lockmgr,,bytes_per_lock,"));
	/* The tree scenario: the tree and its flat twin measured, each
	 * variant at P = 16, the table-writer mix ran and its exclusion
	 * held (a violation would also have made the exit status 1). */
	static const char *const tree_rows[] = {
		"tree,lockmgr,uncontended tree,ns_per_pair,",
		"tree,lockmgr,uncontended flat,ns_per_pair,",
		"tree,lockmgr,uncontended tree,cost_over_flat,",
		"tree,lockmgr,P=16 tree,ops_per_s,",
		"tree,lockmgr,P=16 flat,ops_per_s,",
		"tree,flock,P=16,ops_per_s,",
		"tree,robust-mutex,P=16,ops_per_s,",
		"tree,lockmgr,P=16 tree,thru_over_flat,",
		"tree,lockmgr,mix P=4,ops_per_s,",
		"tree,lockmgr,mix P=16,ops_per_s,",
	};
	for (size_t k = 0; k < N_OF(tree_rows); k++)
		if (!has_positive_row(csv, tree_rows[k]))
			fail_msg("no positive CSV row %s", tree_rows[k]);
	static const char *const tree_zero[] = {
		"tree,lockmgr,mix P=4,violations,0,",
		"tree,lockmgr,mix P=16,violations,0,",
		"tree,lockmgr,P=16 tree,violations,0,",
	};
	for (size_t k = 0; k < N_OF(tree_zero); k++)
		if (!has_line_prefix(csv, tree_zero[k]))
			fail_msg("no CSV row %s", tree_zero[k]);
	/* The watch scenario: both floors and both watch paths. */
	assert_true(has_positive_row(csv, "watch,futex,bare futex,p50_ns,"));
	assert_true(has_positive_row(csv, "watch,lockmgr,lm_watch_next,"
					  "p50_ns,"));
	/* The rwlock is no mutex: the other scenarios leave it out. */
	if (strstr(csv, "contended,rwlock,") != NULL)
		fail_msg("the pthread rwlock ran in a mutex scenario");
	free(csv);

	/* The table reached the terminal (stdout). */
	assert_non_null(strstr(text, "The project's targets:"));
	remove_dir(dir);
}
HARNESS_CASE(bench_quick, 180)

/*
 * The watch scenario alone, briefly: its table has a row for each path
 * (the two floors and the two ways of waiting for a watch), each with a
 * median, and the CSV has each path's median, p99 and ratio to the bare
 * futex. Whether a figure is fast is not asked.
 */
static void bench_watch(void)
{
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	if (access(bench, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bench,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	char *argv[] = {bench, "--quick", "--scenarios", "watch", "--out",
			dir, "--lockmgrd", lockmgrd, NULL};
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 50000, "lockbench --scenarios watch");
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		show_tail(out, 3000);
		fail_msg("lockbench --quick --scenarios watch: %s",
			 harness_status_str(status, b, sizeof(b)));
	}
	assert_no_shm_left(pid);

	static char text[1 << 16];
	if (harness_read_file(out, text, sizeof(text)) <= 0)
		fail_msg("lockbench printed no table");
	if (strstr(text, "9. Watch wake-up") == NULL) {
		show_tail(out, 3000);
		fail_msg("the table has no watch scenario (9.)");
	}
	/* A row per path: its label, then a median (a number with a unit,
	 * never "n/a"). */
	static const char *const paths[] = {
		"bare futex", "eventfd+poll", "lm_watch_next",
		"lm_watch_fd+poll",
	};
	for (size_t i = 0; i < N_OF(paths); i++) {
		char row[64];
		snprintf(row, sizeof(row), "\n   %s ", paths[i]);
		const char *r = strstr(text, row);
		if (r == NULL) {
			show_tail(out, 3000);
			fail_msg("the watch table has no row %s", paths[i]);
		}
		double v;
		char unit[8];
		if (sscanf(r + strlen(row), "%lf %7s", &v, unit) != 2 ||
		    v <= 0 || (strcmp(unit, "ns") != 0 &&
			       strcmp(unit, "us") != 0 &&
			       strcmp(unit, "ms") != 0)) {
			show_tail(out, 3000);
			fail_msg("the watch row %s has no median", paths[i]);
		}
	}
	/* Other scenarios did not run. */
	if (strstr(text, "\n3. Hand-off") != NULL)
		fail_msg("--scenarios watch ran the hand-off scenario too");

	static char csv[1 << 16];
	if (harness_read_file(csv_path, csv, sizeof(csv)) <= 0)
		fail_msg("%s is missing or empty", csv_path);
	static const char *const rows[] = {
		"watch,futex,bare futex,p50_ns,",
		"watch,futex,bare futex,p99_ns,",
		"watch,,eventfd+poll,p50_ns,",
		"watch,,eventfd+poll,p50_over_futex,",
		"watch,lockmgr,lm_watch_next,p50_ns,",
		"watch,lockmgr,lm_watch_next,p99_ns,",
		"watch,lockmgr,lm_watch_next,p50_over_futex,",
		"watch,lockmgr,lm_watch_next,release_p50_ns,",
		"watch,lockmgr,lm_watch_next,grant_p50_ns,",
		"watch,lockmgr,lm_watch_fd+poll,p50_ns,",
		"watch,lockmgr,lm_watch_fd+poll,p99_ns,",
		"watch,lockmgr,lm_watch_fd+poll,p50_over_futex,",
		"watch,lockmgr,lm_watch_next,samples,",
		"watch,lockmgr,lm_watch_fd+poll,samples,",
	};
	for (size_t k = 0; k < N_OF(rows); k++)
		if (!has_positive_row(csv, rows[k]))
			fail_msg("no positive CSV row %s", rows[k]);
	remove_dir(dir);
}
HARNESS_CASE(bench_watch, 60)

/*
 * The command line scenario alone, briefly: lockctl run and lmflock are
 * timed against flock(1) (a row each in the table, and a median, p99,
 * run count and ratio to flock each in the CSV), and with
 * $LOCKBENCH_CLI_BASELINE naming a directory holding a lockctl, that
 * one's rows too (here the same build: only that the rows exist is
 * asked, never how fast anything was).
 */
static void bench_cli(void)
{
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	if (access(bench, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bench,
			 harness_bin_dir());
	if (system("command -v flock >/dev/null 2>&1") != 0)
		skip(); /* util-linux flock(1): the baseline of the rows */
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	setenv("LOCKBENCH_CLI_BASELINE", harness_bin_dir(), 1);
	char *argv[] = {bench, "--quick", "--scenarios", "cli", "--out",
			dir, "--lockmgrd", lockmgrd, NULL};
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 50000, "lockbench --scenarios cli");
	unsetenv("LOCKBENCH_CLI_BASELINE");
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		show_tail(out, 3000);
		fail_msg("lockbench --quick --scenarios cli: %s",
			 harness_status_str(status, b, sizeof(b)));
	}
	assert_no_shm_left(pid);

	static char text[1 << 16];
	if (harness_read_file(out, text, sizeof(text)) <= 0)
		fail_msg("lockbench printed no table");
	if (strstr(text, "13. Command line") == NULL) {
		show_tail(out, 3000);
		fail_msg("the table has no command line scenario (13.)");
	}
	static const char *const tools[] = {
		"flock", "lockctl run", "lmflock", "lockctl run baseline",
		"lmflock baseline",
	};
	for (size_t i = 0; i < N_OF(tools); i++) {
		char row[64];
		snprintf(row, sizeof(row), "\n   %s ", tools[i]);
		if (strstr(text, row) == NULL) {
			show_tail(out, 3000);
			fail_msg("the command line table has no row %s",
				 tools[i]);
		}
	}
	if (strstr(text, "\n3. Hand-off") != NULL)
		fail_msg("--scenarios cli ran the hand-off scenario too");

	static char csv[1 << 16];
	if (harness_read_file(csv_path, csv, sizeof(csv)) <= 0)
		fail_msg("%s is missing or empty", csv_path);
	static const char *const rows[] = {
		"cli,,flock,p50_ns,",
		"cli,,flock,p99_ns,",
		"cli,,flock,runs,",
		"cli,lockmgr,lockctl run,p50_ns,",
		"cli,lockmgr,lockctl run,p99_ns,",
		"cli,lockmgr,lockctl run,runs,",
		"cli,lockmgr,lockctl run,p50_over_flock,",
		"cli,lockmgr,lockctl run,p99_over_flock,",
		"cli,lockmgr,lmflock,p50_ns,",
		"cli,lockmgr,lmflock,p99_ns,",
		"cli,lockmgr,lmflock,p50_over_flock,",
		"cli,lockmgr,lockctl run baseline,p50_ns,",
		"cli,lockmgr,lmflock baseline,p50_ns,",
	};
	for (size_t k = 0; k < N_OF(rows); k++)
		if (!has_positive_row(csv, rows[k]))
			fail_msg("no positive CSV row %s", rows[k]);
	remove_dir(dir);
}
HARNESS_CASE(bench_cli, 60)

/*
 * The semaphore scenario alone, briefly: its table has a row for the
 * POSIX semaphore and one for lockmgr, each with an uncontended pair's
 * time, and the CSV has both figures and their ratios to the POSIX one,
 * and no entry that found 4 holders inside (that would also have made
 * the exit status 1). Whether a figure is fast is not asked.
 */
static void bench_semaphore(void)
{
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	if (access(bench, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bench,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	char *argv[] = {bench, "--quick", "--scenarios", "semaphore", "--out",
			dir, "--lockmgrd", lockmgrd, NULL};
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 50000,
				  "lockbench --scenarios semaphore");
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		show_tail(out, 3000);
		fail_msg("lockbench --quick --scenarios semaphore: %s (1 means "
			 "more than 4 holders were inside at once, or a worker "
			 "failed)",
			 harness_status_str(status, b, sizeof(b)));
	}
	assert_no_shm_left(pid);

	static char text[1 << 16];
	if (harness_read_file(out, text, sizeof(text)) <= 0)
		fail_msg("lockbench printed no table");
	if (strstr(text, "\n10. Semaphores") == NULL) {
		show_tail(out, 3000);
		fail_msg("the table has no semaphore scenario (10.)");
	}
	/* A row per primitive: its label, then the uncontended pair (a
	 * number with a unit, never "n/a"). */
	static const char *const labels[] = {"POSIX sem", "lockmgr"};
	for (size_t i = 0; i < N_OF(labels); i++) {
		char row[64];
		snprintf(row, sizeof(row), "\n   %s ", labels[i]);
		const char *r = strstr(text, row);
		if (r == NULL) {
			show_tail(out, 3000);
			fail_msg("the semaphore table has no row %s",
				 labels[i]);
		}
		double v;
		char unit[8];
		if (sscanf(r + strlen(row), "%lf %7s", &v, unit) != 2 ||
		    v <= 0 || (strcmp(unit, "ns") != 0 &&
			       strcmp(unit, "us") != 0 &&
			       strcmp(unit, "ms") != 0)) {
			show_tail(out, 3000);
			fail_msg("the semaphore row %s has no pair time",
				 labels[i]);
		}
	}
	/* Other scenarios did not run. */
	if (strstr(text, "\n2. Contended") != NULL ||
	    strstr(text, "\n9. Watch") != NULL)
		fail_msg("--scenarios semaphore ran another scenario too");

	static char csv[1 << 16];
	if (harness_read_file(csv_path, csv, sizeof(csv)) <= 0)
		fail_msg("%s is missing or empty", csv_path);
	static const char *const rows[] = {
		"semaphore,posix-sem,uncontended N=4,ns_per_pair,",
		"semaphore,posix-sem,P=16 N=4,ops_per_s,",
		"semaphore,posix-sem,P=16 N=4,peak_inside,",
		"semaphore,lockmgr,uncontended N=4,ns_per_pair,",
		"semaphore,lockmgr,uncontended N=4,cost_over_posix,",
		"semaphore,lockmgr,P=16 N=4,ops_per_s,",
		"semaphore,lockmgr,P=16 N=4,thru_over_posix,",
		"semaphore,lockmgr,P=16 N=4,peak_inside,",
		"semaphore,lockmgr,P=16 N=4,runs_checked,",
	};
	for (size_t k = 0; k < N_OF(rows); k++)
		if (!has_positive_row(csv, rows[k]))
			fail_msg("no positive CSV row %s", rows[k]);
	/* Present, whatever their value: a worker the scheduler starved
	 * in a short run on a loaded machine makes a fairness of 0. */
	static const char *const present[] = {
		"semaphore,posix-sem,P=16 N=4,fairness,",
		"semaphore,lockmgr,P=16 N=4,fairness,",
		"semaphore,posix-sem,P=16 N=4,violations,0,",
		"semaphore,lockmgr,P=16 N=4,violations,0,",
	};
	for (size_t k = 0; k < N_OF(present); k++)
		if (!has_line_prefix(csv, present[k]))
			fail_msg("no CSV row %s", present[k]);
	remove_dir(dir);
}
HARNESS_CASE(bench_semaphore, 60)

/* An executable `name` as lockbench looks for it: $env, else PATH. */
static bool have_binary(const char *env, const char *name)
{
	const char *e = getenv(env);
	if (e != NULL && *e != '\0')
		return access(e, X_OK) == 0;
	const char *path = getenv("PATH");
	if (path == NULL)
		return false;
	while (*path) {
		size_t len = strcspn(path, ":");
		char p[512];
		snprintf(p, sizeof(p), "%.*s/%s", (int)len, path, name);
		if (len > 0 && access(p, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

/* Does dir hold an entry whose name starts with prefix? */
static bool dir_has(const char *path, const char *prefix)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return false;
	struct dirent *e;
	bool found = false;
	while (!found && (e = readdir(d)) != NULL)
		found = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return found;
}

/*
 * The etcd scenario alone, at --quick sizes: lockbench starts its own
 * etcd of one member and of three, and every row is there - the
 * uncontended median and p99 of shm, etcd-1 and etcd-3 with their
 * ratios to shm, P=4 and P=16 throughput with exclusion checked and no
 * violation, lockctl run against etcdctl lock on each cluster - and
 * nothing is left behind: no etcd running (the case would fail on a
 * leftover process), no temporary data directory (lockbench's TMPDIR
 * is the case's own directory here). Skipped without an etcd binary.
 */
static void bench_etcd(void)
{
	if (!have_binary("LOCKMGR_ETCD", "etcd")) {
		fprintf(stderr, "  no etcd binary: bench_etcd skipped\n");
		skip();
	}
	bool etcdctl = have_binary("LOCKMGR_ETCDCTL", "etcdctl");
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	if (access(bench, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bench,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	setenv("TMPDIR", dir, 1);
	char *argv[] = {bench, "--quick", "--scenarios", "etcd", "--out", dir,
			"--lockmgrd", lockmgrd, NULL};
	int64_t t0 = harness_now_ms();
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 110000, "lockbench --scenarios etcd");
	fprintf(stderr, "  lockbench --quick --scenarios etcd ran in %lld ms\n",
		(long long)(harness_now_ms() - t0));
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		show_tail(out, 3000);
		fail_msg("lockbench --quick --scenarios etcd: %s (1 means a "
			 "second holder was inside, a cluster did not start or "
			 "a worker failed: see its stderr above)",
			 harness_status_str(status, b, sizeof(b)));
	}
	assert_no_shm_left(pid);
	if (dir_has(dir, "lockbench-etcd-"))
		fail_msg("lockbench left its etcd data directory in %s", dir);

	static char text[1 << 16];
	if (harness_read_file(out, text, sizeof(text)) <= 0)
		fail_msg("lockbench printed no table");
	if (strstr(text, "\n11. etcd backend") == NULL) {
		show_tail(out, 3000);
		fail_msg("the table has no etcd scenario (11.)");
	}
	if (strstr(text, "\n2. Contended") != NULL)
		fail_msg("--scenarios etcd ran another scenario too");

	static char csv[1 << 16];
	if (harness_read_file(csv_path, csv, sizeof(csv)) <= 0)
		fail_msg("%s is missing or empty", csv_path);
	static const char *const backends[] = {"shm", "etcd-1", "etcd-3"};
	static const char *const positive[] = {
		"etcd,lockmgr,uncontended %s,p50_ns,",
		"etcd,lockmgr,uncontended %s,p99_ns,",
		"etcd,lockmgr,uncontended %s,p50_over_shm,",
		"etcd,lockmgr,uncontended %s,p99_over_shm,",
		"etcd,lockmgr,P=4 %s,ops_per_s,",
		"etcd,lockmgr,P=4 %s,thru_over_shm,",
		"etcd,lockmgr,P=4 %s,runs_checked,",
		"etcd,lockmgr,P=16 %s,ops_per_s,",
		"etcd,lockmgr,P=16 %s,thru_over_shm,",
		"etcd,lockmgr,P=16 %s,runs_checked,",
		"etcd,lockmgr,cli %s,p50_ns,",
	};
	/* Exclusion held in every checked run. */
	static const char *const zero[] = {
		"etcd,lockmgr,P=4 %s,violations,0,",
		"etcd,lockmgr,P=16 %s,violations,0,",
	};
	for (size_t i = 0; i < N_OF(backends); i++) {
		char p[96];
		for (size_t k = 0; k < N_OF(positive); k++) {
			snprintf(p, sizeof(p), positive[k], backends[i]);
			if (!has_positive_row(csv, p))
				fail_msg("no positive CSV row %s", p);
		}
		for (size_t k = 0; k < N_OF(zero); k++) {
			snprintf(p, sizeof(p), zero[k], backends[i]);
			if (!has_line_prefix(csv, p))
				fail_msg("no CSV row %s", p);
		}
	}
	/* etcdctl lock, the CLI peer, on both clusters (not on shm). */
	for (size_t i = 1; etcdctl && i < N_OF(backends); i++) {
		char p[96];
		snprintf(p, sizeof(p), "etcd,,cli %s,p50_ns,", backends[i]);
		if (!has_positive_row(csv, p))
			fail_msg("no positive CSV row %s", p);
		snprintf(p, sizeof(p), "etcd,lockmgr,cli %s,p50_over_etcdctl,",
			 backends[i]);
		if (!has_positive_row(csv, p))
			fail_msg("no positive CSV row %s", p);
	}
	remove_dir(dir);
}
HARNESS_CASE(bench_etcd, 120)

/*
 * Without an etcd binary the etcd scenario is skipped, with a message
 * that says why, and the run still succeeds: etcd is an optional
 * backend, not a broken benchmark.
 */
static void bench_etcd_missing(void)
{
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128], missing[160];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	snprintf(missing, sizeof(missing), "%s/no-etcd-here", dir);
	setenv("LOCKMGR_ETCD", missing, 1);
	char *argv[] = {bench, "--quick", "--scenarios", "etcd", "--out", dir,
			"--lockmgrd", lockmgrd, NULL};
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 30000, "lockbench without etcd");
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		fail_msg("lockbench --scenarios etcd without etcd: %s (a "
			 "missing etcd must skip the scenario, not fail it)",
			 harness_status_str(status, b, sizeof(b)));
	}
	static char text[1 << 16];
	if (harness_read_file(err, text, sizeof(text)) <= 0 ||
	    strstr(text, "scenario etcd skipped: no etcd binary") == NULL) {
		show_tail(err, 3000);
		fail_msg("lockbench did not say why it skipped the etcd "
			 "scenario");
	}
	static char csv[1 << 16];
	if (harness_read_file(csv_path, csv, sizeof(csv)) <= 0)
		fail_msg("%s is missing or empty", csv_path);
	if (strstr(csv, "etcd,lockmgr,") != NULL)
		fail_msg("the etcd scenario has figures without etcd");
	if (!has_line_prefix(csv, "etcd,,,note,\"skipped: no etcd binary"))
		fail_msg("the CSV does not note the skipped etcd scenario");
	remove_dir(dir);
}
HARNESS_CASE(bench_etcd_missing, 60)

/*
 * lockbench --minimal, briefly: the cross-check ran for each primitive
 * asked for, at P = 1 and 16, each row with the engine's figure, the
 * minimal loop's and their ratio, and a verdict ("ok" or "DIFFER":
 * whether the two agree is a timing matter, never asserted here; the
 * README gives the command and the figures of a quiet machine).
 */
static void bench_minimal(void)
{
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	if (access(bench, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bench,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	char *argv[] = {bench, "--quick", "--minimal", "--primitives",
			"robust-mutex,flock,lockmgr", "--out", dir,
			"--lockmgrd", lockmgrd, NULL};
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 50000, "lockbench --minimal");
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		show_tail(out, 3000);
		fail_msg("lockbench --quick --minimal: %s (1 means a counter "
			 "was off or a worker failed)",
			 harness_status_str(status, b, sizeof(b)));
	}
	assert_no_shm_left(pid);

	static char text[1 << 16];
	if (harness_read_file(out, text, sizeof(text)) <= 0)
		fail_msg("lockbench printed no table");
	if (strstr(text, "\n12. Cross-check") == NULL) {
		show_tail(out, 3000);
		fail_msg("the table has no cross-check (12.)");
	}
	/* Only the cross-check ran. */
	if (strstr(text, "\n2. Contended") != NULL ||
	    strstr(text, "\n1. Uncontended") != NULL)
		fail_msg("--minimal ran another scenario too");
	/* A row per primitive and P: two figures, a ratio, a verdict. */
	static const char *const labels[] = {"robust mutex", "flock",
					     "lockmgr"};
	for (size_t i = 0; i < N_OF(labels); i++) {
		char row[64];
		snprintf(row, sizeof(row), "\n   %s ", labels[i]);
		const char *r = strstr(text, row);
		if (r == NULL) {
			show_tail(out, 3000);
			fail_msg("the cross-check has no row %s", labels[i]);
		}
		char p1[8], e1[16], m1[16], x1[16], v1[8];
		char p2[8], e2[16], m2[16], x2[16], v2[8];
		if (sscanf(r + strlen(row), " %7s %15s %15s %15s %7s %7s "
					    "%15s %15s %15s %7s",
			   p1, e1, m1, x1, v1, p2, e2, m2, x2, v2) != 10 ||
		    strcmp(p1, "P=1") != 0 || strcmp(p2, "P=16") != 0 ||
		    strcmp(e1, "n/a") == 0 || strcmp(m2, "n/a") == 0 ||
		    (strcmp(v1, "ok") != 0 && strcmp(v1, "DIFFER") != 0) ||
		    (strcmp(v2, "ok") != 0 && strcmp(v2, "DIFFER") != 0)) {
			show_tail(out, 3000);
			fail_msg("the cross-check rows of %s are not P=1 and "
				 "P=16 with two figures, a ratio and a verdict",
				 labels[i]);
		}
	}

	static char csv[1 << 16];
	if (harness_read_file(csv_path, csv, sizeof(csv)) <= 0)
		fail_msg("%s is missing or empty", csv_path);
	static const char *const prims[] = {"robust-mutex", "flock",
					    "lockmgr"};
	static const char *const metrics[] = {
		"engine_ops_per_s", "minimal_ops_per_s", "engine_over_minimal"};
	static const char *const ps[] = {"P=1", "P=16"};
	for (size_t i = 0; i < N_OF(prims); i++)
		for (size_t k = 0; k < N_OF(ps); k++) {
			char p[96];
			for (size_t m = 0; m < N_OF(metrics); m++) {
				snprintf(p, sizeof(p), "crosscheck,%s,%s,%s,",
					 prims[i], ps[k], metrics[m]);
				if (!has_positive_row(csv, p))
					fail_msg("no positive CSV row %s", p);
			}
			snprintf(p, sizeof(p), "crosscheck,%s,%s,flagged,",
				 prims[i], ps[k]);
			if (!has_line_prefix(csv, p))
				fail_msg("no CSV row %s", p);
		}
	remove_dir(dir);
}
HARNESS_CASE(bench_minimal, 60)

/*
 * Without a redis-server the Redis peer is left out with a message,
 * and the run goes on (exit 0) with the other primitives.
 */
static void bench_redis_missing(void)
{
	char bench[512], lockmgrd[512];
	harness_bin_path(bench, sizeof(bench), "lockbench");
	harness_bin_path(lockmgrd, sizeof(lockmgrd), "lockmgrd");
	if (access(bench, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bench,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	char out[128], err[128], csv_path[128];
	snprintf(out, sizeof(out), "%s/stdout.txt", dir);
	snprintf(err, sizeof(err), "%s/stderr.txt", dir);
	snprintf(csv_path, sizeof(csv_path), "%s/lockbench.csv", dir);
	char *argv[] = {bench, "--quick", "--scenarios", "uncontended",
			"--primitives", "robust-mutex,redis", "--redis-server",
			"/nonexistent/redis-server", "--out", dir,
			"--lockmgrd", lockmgrd, NULL};
	pid_t pid = harness_spawn(argv, out, err);
	int status = harness_reap(pid, 30000, "lockbench without redis");
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		show_tail(err, 3000);
		show_tail(out, 3000);
		fail_msg("lockbench without a redis-server: %s",
			 harness_status_str(status, b, sizeof(b)));
	}
	static char text[1 << 16];
	if (harness_read_file(out, text, sizeof(text)) <= 0)
		fail_msg("lockbench printed nothing");
	if (strstr(text, "the Redis peer is skipped: "
			 "/nonexistent/redis-server not found") == NULL) {
		show_tail(out, 3000);
		fail_msg("no word that the Redis peer was skipped, and why");
	}
	static char csv[1 << 16];
	if (harness_read_file(csv_path, csv, sizeof(csv)) <= 0)
		fail_msg("%s is missing or empty", csv_path);
	if (!has_positive_row(csv, "uncontended,robust-mutex,,ns_per_pair,"))
		fail_msg("the other primitive did not run");
	if (strstr(csv, ",redis,") != NULL)
		fail_msg("the CSV has a Redis row though it was skipped");
	remove_dir(dir);
}
HARNESS_CASE(bench_redis_missing, 40)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(bench_quick),
		harness_case(bench_minimal),
		harness_case(bench_redis_missing),
		harness_case(bench_watch),
		harness_case(bench_cli),
		harness_case(bench_semaphore),
		harness_case(bench_etcd),
		harness_case(bench_etcd_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
