/*
 * lockbench.c - main: options, our own lockmgrd, the scenarios in order,
 * the report.
 *
 *   lockbench [--quick] [--out DIR] [--lockmgrd PATH] [--scenarios LIST]
 *             [--primitives LIST] [--rounds N] [--duration MS]
 *             [--redis-server PATH] [--minimal]
 *
 * Exit status: 0 when every scenario ran and every shared counter was
 * exact; 1 when a counter was off or a worker failed (mutual exclusion
 * broken, or a primitive erred); 2 when lockbench could not run at all;
 * 64 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "daemon.h"
#include "etcd_cluster.h"
#include "primitives.h"
#include "procs.h"
#include "redis.h"
#include "report.h"
#include "scenarios.h"

#define EX_USAGE 64

static void usage(FILE *f)
{
	fprintf(f,
"Usage: lockbench [OPTION]...\n"
"Measure lockmgr against the host's own locks - a robust pthread mutex,\n"
"flock(2), OFD locks, a POSIX and a SysV semaphore, a bare futex - and a\n"
"Redis lock (SET NX PX), in one run, interleaved, and report ratios.\n"
"Starts its own lockmgrd on a private region, and its own redis-server\n"
"on a private Unix socket, and stops them at the end.\n"
"\n"
"  --quick             every scenario but etcd at small sizes and short\n"
"                      runs (about 45 s): a smoke test, not a\n"
"                      measurement; --quick --scenarios etcd runs that\n"
"                      one too (10-20 s: it starts two etcds)\n"
"  --out DIR           write lockbench.csv, plot data and PNGs to DIR\n"
"                      (default bench/results; created if missing)\n"
"  --lockmgrd PATH     the lockmgrd to start (default: next to lockbench)\n"
"  --scenarios LIST    comma-separated, by number or name:\n"
"                        1 uncontended, 2 contended, 3 handoff, 4 crash,\n"
"                        5 manylocks, 6 serverdown, 7 rw (readers and\n"
"                        writers: shared against exclusive locks),\n"
"                        8 tree (rows of a lock tree: lockmgrd --tree\n"
"                        against flat names and per-row host locks),\n"
"                        9 watch (a lock's grant or release -> the\n"
"                        watcher's lm_watch_next returns, blocking and\n"
"                        through lm_watch_fd and poll, against a bare\n"
"                        futex wake-up and an eventfd in poll between\n"
"                        two processes; median, p99, ratio to the\n"
"                        futex; the lm_watch rows need --primitives\n"
"                        to include lockmgr),\n"
"                        10 semaphore (4 slots: lm_sem_acquire against\n"
"                        a POSIX semaphore of 4, uncontended and 16\n"
"                        processes, ratios to the POSIX one; lockmgr's\n"
"                        rows need --primitives to include lockmgr),\n"
"                        11 etcd (liblockmgr on a private etcd of 1\n"
"                        and 3 members started on free loopback\n"
"                        ports: uncontended median/p99 and P=4, 16\n"
"                        throughput against the shared-memory\n"
"                        backend, and `lockctl run` against\n"
"                        `etcdctl lock`; skipped without an etcd\n"
"                        binary: $LOCKMGR_ETCD or etcd on PATH),\n"
"                        12 crosscheck (as --minimal),\n"
"                        13 cli (`lockctl run NAME -- true` and\n"
"                        `lmflock NAME true` against util-linux\n"
"                        `flock FILE true`, timed from fork to exit:\n"
"                        median, p99, ratio to flock;\n"
"                        $LOCKBENCH_CLI_BASELINE=DIR adds DIR's\n"
"                        lockctl and lmflock to the same rounds)\n"
"                        (default: all but 12)\n"
"  --minimal           also run scenario 12: each primitive's contended\n"
"                      throughput at P=1 and P=16 from lockbench's engine\n"
"                      and from a minimal loop (acquire, counter++,\n"
"                      release, nothing else), with the two flagged if\n"
"                      more than 25%% apart; alone unless --scenarios\n"
"                      names others\n"
"  --primitives LIST   comma-separated: robust-mutex, flock, ofd,\n"
"                      posix-sem, sysv-sem, futex, lockmgr, lockmgr-ref,\n"
"                      redis (skipped, with a message, when there is no\n"
"                      redis-server), rwlock (a pthread rwlock: scenario\n"
"                      rw only) (default: all)\n"
"  --rounds N          interleaved rounds per measurement (default 3,\n"
"                      quick 1)\n"
"  --duration MS       length of one timed run (default 500, quick 150);\n"
"                      longer rw runs: e.g. --rounds 5 --duration 2000\n"
"  --redis-server PATH the redis-server to start (default: from PATH)\n"
"  -h, --help          show this help\n"
"\n"
"Exit status: 0 all counters exact, 1 a counter or a worker failed,\n"
"2 could not run.\n");
}

static void set_defaults(bool quick)
{
	struct bench_config *c = &bench_cfg;
	c->quick = quick;
	c->ttl_ms = 10000;
	c->rounds = quick ? 1 : 3;
	c->duration_ms = quick ? 150 : 500;
	c->uncontended_iters = quick ? 20000 : 200000;
	c->handoff_iters = quick ? 100 : 1000;
	c->watch_iters = quick ? 100 : 2000;
	/* An etcd pair is 5-30 ms here (five fsynced raft writes), a
	 * command line tool's run 50-150 ms: 100 pairs a round and 20 runs
	 * keep the etcd scenario under a minute on a loaded 2-core host
	 * (200 and 30 took 74 s). */
	c->etcd_iters = quick ? 20 : 100;
	c->etcd_cli_runs = quick ? 5 : 20;
	c->cli_runs = quick ? 10 : 40;
	c->crash_iters = quick ? 2 : 10;
	c->crash_timeout_ms = quick ? 300 : 1000;
	c->sample_cap = quick ? 4096 : 16384;
	/* Long enough that a holder preempted on a loaded machine keeps
	 * its lock (else the counter check fails the run), short enough
	 * that the crash scenario does not wait long. */
	c->redis_ttl_ms = 1000;
	c->many_small = 1000;
	c->many_large = quick ? 10000 : 1000000;
	/* The names of the large run, the small one and a few more, in a
	 * power of two. About 488 bytes a lock: 512 MB at full size. */
	/* Twice the million names of the many-locks scenario: at 1,048,576
	 * slots (95% full with them) its lockmgr-ref workers, each
	 * resolving 65,536 names, spent over 60 s creating names again
	 * (perf: the inserts' slot search), so the run failed. */
	c->max_locks = quick ? 16384 : 2097152;
}

static int parse_scenarios(const char *list, unsigned *mask)
{
	*mask = 0;
	char *copy = strdup(list), *save = NULL;
	int rc = 0;
	for (char *t = strtok_r(copy, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		int found = -1;
		for (int s = 0; s < SCEN_COUNT; s++) {
			char num[4];
			snprintf(num, sizeof(num), "%d", s + 1);
			if (strcmp(t, num) == 0 ||
			    strcmp(t, scenario_key((enum scenario)s)) == 0)
				found = s;
		}
		if (found < 0) {
			rc = -1;
			break;
		}
		*mask |= 1u << found;
	}
	free(copy);
	return rc;
}

static int parse_pos(const char *s, const char *flag, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0) {
		fprintf(stderr, "lockbench: %s: '%s' is not a positive number\n",
			flag, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* lockmgrd next to our own binary. */
static char *default_lockmgrd(void)
{
	static char path[PATH_MAX + 16];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return "lockmgrd";
	self[n] = '\0';
	snprintf(path, sizeof(path), "%s/lockmgrd", dirname(self));
	return path;
}

static int mkdir_p(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static unsigned prims_mask;

static int parse_options(int argc, char **argv)
{
	static const struct option opts[] = {
		{"quick", no_argument, NULL, 'Q'},
		{"out", required_argument, NULL, 'o'},
		{"lockmgrd", required_argument, NULL, 'l'},
		{"scenarios", required_argument, NULL, 's'},
		{"primitives", required_argument, NULL, 'p'},
		{"rounds", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'},
		{"redis-server", required_argument, NULL, 'R'},
		{"minimal", no_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	/* --quick changes the defaults the other options override, so it
	 * is looked for first. */
	bool quick = false;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
	set_defaults(quick);
	bench_cfg.out_dir = "bench/results";
	bench_cfg.lockmgrd = NULL;
	/* The cross-check re-measures what scenario 2 does: only when
	 * asked for. */
	bench_cfg.scenarios =
		((1u << SCEN_COUNT) - 1) & ~(1u << SCEN_CROSSCHECK);
	bool minimal = false, scen_given = false;
	prims_mask = (1u << PRIM_COUNT) - 1;
	long long v;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'Q':
			break;
		case 'o':
			bench_cfg.out_dir = optarg;
			break;
		case 'l':
			bench_cfg.lockmgrd = optarg;
			break;
		case 'M':
			minimal = true;
			break;
		case 's':
			scen_given = true;
			if (parse_scenarios(optarg, &bench_cfg.scenarios) != 0) {
				fprintf(stderr, "lockbench: --scenarios: "
						"unknown scenario in '%s'\n",
					optarg);
				return EX_USAGE;
			}
			break;
		case 'p':
			if (prim_parse_list(optarg, &prims_mask) != 0) {
				fprintf(stderr, "lockbench: --primitives: "
						"unknown primitive in '%s'\n",
					optarg);
				return EX_USAGE;
			}
			break;
		case 'r':
			if (parse_pos(optarg, "--rounds", &v) != 0 || v > 16)
				return EX_USAGE;
			bench_cfg.rounds = (int)v;
			break;
		case 'd':
			if (parse_pos(optarg, "--duration", &v) != 0)
				return EX_USAGE;
			bench_cfg.duration_ms = v;
			break;
		case 'R':
			bench_cfg.redis_server = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'lockbench --help'.\n");
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lockbench: unexpected argument '%s'\n"
				"Try 'lockbench --help'.\n", argv[optind]);
		return EX_USAGE;
	}
	/* The etcd scenario starts two etcd clusters: 10 s or more even at
	 * --quick's sizes, a third of the smoke test again. It runs in
	 * --quick only when named (test_bench runs it on its own). */
	if (quick && !scen_given)
		bench_cfg.scenarios &= ~(1u << SCEN_ETCD);
	if (minimal)
		bench_cfg.scenarios = (scen_given ? bench_cfg.scenarios : 0) |
				      (1u << SCEN_CROSSCHECK);
	if (bench_cfg.lockmgrd == NULL)
		bench_cfg.lockmgrd = default_lockmgrd();
	return 0;
}

static void on_signal(int sig)
{
	/* Only async-signal-safe calls: kill, semctl, write, _exit. */
	procs_kill_all_signal_safe();
	lmd_stop_signal_safe();
	etcd_cluster_kill_all_signal_safe();
	redis_stop_signal_safe();
	prim_host_cleanup_signal_safe();
	static const char msg[] = "\nlockbench: interrupted\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(128 + sig);
}

int main(int argc, char **argv)
{
	int rc = parse_options(argc, argv);
	if (rc != 0)
		return rc;
	bench_mark_main();
	snprintf(bench_cfg.region, sizeof(bench_cfg.region), "/lockbench-%d",
		 (int)getpid());
	if (mkdir_p(bench_cfg.out_dir) != 0) {
		fprintf(stderr, "lockbench: cannot create %s: %s\n",
			bench_cfg.out_dir, strerror(errno));
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	const unsigned lm = (1u << PRIM_LOCKMGR) | (1u << PRIM_LOCKMGR_REF);
	bool need_lmd = (prims_mask & lm) != 0;
	int64_t t0 = bench_now_ns();
	/* The Redis peer runs only where there is a redis-server: without
	 * one it is left out with a message, never a failure. */
	bool need_redis = (prims_mask & (1u << PRIM_REDIS)) != 0;
	if (need_redis) {
		char why[1200];
		if (!redis_available(why, sizeof(why))) {
			fprintf(stderr, "lockbench: the Redis peer is skipped: "
					"%s\n", why);
			printf("lockbench: the Redis peer is skipped: %s\n", why);
			prims_mask &= ~(1u << PRIM_REDIS);
			need_redis = false;
		} else {
			bench_progress("starting redis-server");
			if (redis_start() != 0)
				return 2;
		}
	}
	if (need_lmd) {
		bench_progress("starting lockmgrd (%s, %u locks)",
			       bench_cfg.region, bench_cfg.max_locks);
		if (lmd_start() != 0) {
			if (need_redis)
				redis_stop();
			return 2;
		}
	}

	unsigned sc = bench_cfg.scenarios;
	/* The rw-only primitives (a pthread rwlock) are no mutexes: the
	 * other scenarios never see them. */
	unsigned mutexes = prims_mask & ~PRIM_RW_ONLY_MASK;
	if (sc & (1u << SCEN_UNCONTENDED))
		scen_uncontended(mutexes);
	if (sc & (1u << SCEN_CONTENDED))
		scen_contended(mutexes);
	if (sc & (1u << SCEN_HANDOFF))
		scen_handoff(mutexes);
	if (sc & (1u << SCEN_CRASH))
		scen_crash(mutexes);
	if (sc & (1u << SCEN_MANYLOCKS))
		scen_manylocks(mutexes);
	if (sc & (1u << SCEN_RW))
		scen_rw(prims_mask);
	/* Its own pair of lockmgrds (a tree region and a flat twin). */
	if (sc & (1u << SCEN_TREE))
		scen_tree(mutexes);
	if (sc & (1u << SCEN_WATCH))
		scen_watch(prims_mask);
	if (sc & (1u << SCEN_SEMAPHORE))
		scen_semaphore(prims_mask);
	/* Its own etcd clusters; lockmgr's figures beside them need all
	 * three servers up, so it too runs before the server-down one. */
	if (sc & (1u << SCEN_ETCD))
		scen_etcd(prims_mask);
	if (sc & (1u << SCEN_CROSSCHECK))
		scen_crosscheck(mutexes);
	/* Needs the region (lockctl connects to it) with every server. */
	if (sc & (1u << SCEN_CLI))
		scen_cli(prims_mask);
	/* Last: it leaves a server down. */
	if ((sc & (1u << SCEN_SERVERDOWN)) && need_lmd)
		scen_serverdown(mutexes);

	if (need_lmd) {
		bench_progress("stopping lockmgrd");
		prim_lockmgr_shutdown();
		lmd_stop();
	}
	if (need_redis) {
		bench_progress("stopping redis-server");
		redis_stop();
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	bench_progress_done();

	report_table(stdout, sc, prims_mask);
	int frc = report_csv(bench_cfg.out_dir);
	int prc = (sc & (1u << SCEN_CONTENDED))
			  ? report_plots(bench_cfg.out_dir, mutexes)
			  : 0;
	printf("\nran in %.1f s on %ld CPUs; CSV: %s/lockbench.csv", secs,
	       sysconf(_SC_NPROCESSORS_ONLN), bench_cfg.out_dir);
	if (prc == 0 && (sc & (1u << SCEN_CONTENDED)))
		printf("; plots: %s/throughput.png, %s/latency_cdf_p16.png",
		       bench_cfg.out_dir, bench_cfg.out_dir);
	printf("\n");
	int failures = bench_failures();
	if (failures != 0) {
		printf("lockbench: %d FAILURE%s (see above): exit 1\n",
		       failures, failures == 1 ? "" : "S");
		return 1;
	}
	return frc != 0 ? 2 : 0;
}
