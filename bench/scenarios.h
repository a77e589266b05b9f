/*
 * scenarios.h - the eleven measurements of lockbench.
 *
 * Each takes the mask of primitives to measure (bit 1 << enum prim_id),
 * alternates them in short rounds (the order rotates each round, so no
 * primitive always runs first on a cold cache or last on a warm one),
 * and records its figures with results_add.
 */
#ifndef LOCKBENCH_SCENARIOS_H
#define LOCKBENCH_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"
#include "primitives.h"
#include "stats.h"

/* 1. One process, acquire+release in a loop: ns per pair. */
void scen_uncontended(unsigned prims);
/* 2. P processes on one lock: throughput, latency, fairness, streak. */
void scen_contended(unsigned prims);
/* 3. Release -> blocked waiter's acquire returns: median, p99. */
void scen_handoff(unsigned prims);
/* 4. SIGKILL the holder -> blocked waiter acquires (or never). */
void scen_crash(unsigned prims);
/* 5. 16 processes over many locks, uniform and Zipf; memory/lock. */
void scen_manylocks(unsigned prims);
/* 6. lockmgr at P = 16 with server 2 killed, against all three up.
 *    Leaves server 2 down: run it last. */
void scen_serverdown(unsigned prims);
/* 7. Readers and writers: S against X uncontended, then P processes on
 *    one lock in 95/5 and 50/50 read/write mixes; memory per lock.
 *    Runs before 6 (which leaves a server down). */
void scen_rw(unsigned prims);
/* 8. Lock trees: P processes each taking X on its own row
 *    /tbl/rows/rK of a lockmgrd --tree region (IX on /tbl and /tbl/rows
 *    first), against the same names in a flat twin region and per-row
 *    flock and robust mutexes; a mix with a whole-table writer (X on
 *    /tbl/rows) whose exclusion is checked; the uncontended cost of the
 *    tree. Starts and stops its own two lockmgrds. */
void scen_tree(unsigned prims);
/* 9. Watch wake-up: a lock's grant or release -> a watcher's
 *    lm_watch_next returns with it, blocking and through lm_watch_fd
 *    and poll, against the floors of a bare futex wake-up and an
 *    eventfd in poll between two processes. The floors always run;
 *    the watch paths when prims has a lockmgr. Runs before 6. */
void scen_watch(unsigned prims);
/* 10. Counting semaphores of SEM_N slots: lm_sem_acquire/lm_release
 *    against a POSIX named semaphore initialised to SEM_N, uncontended
 *    (ns per pair) and SEM_P processes (throughput, fairness, and a
 *    check that no more than SEM_N are ever inside). The POSIX one
 *    always runs; lockmgr when prims has a lockmgr. Runs before 6. */
void scen_semaphore(unsigned prims);
/* 11. The etcd backend: liblockmgr on a private etcd of 1 and of 3
 *    members (etcd_cluster.h) against the shared-memory backend in the
 *    same rounds: uncontended acquire+release (median, p99), P
 *    processes on one lock (throughput, fairness, a checked counter),
 *    and one run of `lockctl run ... -- true` against `etcdctl lock
 *    ... true`. Skipped, with a note, without an etcd binary; the
 *    shared-memory rows need prims to have a lockmgr. Runs before 6. */
void scen_etcd(unsigned prims);

/* 13. The command line: `lockctl run NAME -- true` and `lmflock NAME
 *    true` against util-linux `flock FILE true`, alternated run by run,
 *    each timed from fork to exit (median, p99, ratio to flock). The
 *    flock rows need flock(1) on PATH, the others a lockmgr in prims.
 *    Runs before 6. */
void scen_cli(unsigned prims);
enum cli_tool {
	CLI_FLOCK,        /* util-linux flock(1) */
	CLI_RUN,          /* lockctl run */
	CLI_LMFLOCK,      /* lmflock */
	CLI_RUN_BASE,     /* $LOCKBENCH_CLI_BASELINE/lockctl run */
	CLI_LMFLOCK_BASE, /* $LOCKBENCH_CLI_BASELINE/lmflock */
	CLI_NTOOL
};
/* The param of each tool's figures ("lockctl run", "flock"). */
extern const char *const cli_tool_param[CLI_NTOOL];

/* 12. The contended engine's throughput against a minimal loop
 *    (minimal.h), at P = 1 and 16; a gap above CROSS_TOLERANCE is
 *    flagged. Only with --minimal or --scenarios crosscheck. */
void scen_crosscheck(unsigned prims);
#define CROSS_NP 2
extern const unsigned crosscheck_p[CROSS_NP];
#define CROSS_TOLERANCE 0.25

/* The most rounds of one measurement: the size of the scenarios'
 * per-round arrays. */
#define SCEN_MAX_ROUNDS 16

/* The rounds of a measurement: --rounds, plus `extra` for a cheap one
 * that can afford a few more, at most SCEN_MAX_ROUNDS. */
int scen_rounds(int extra);

/*
 * The runs of an interleaved measurement: `rounds` rounds, each running
 * every primitive of mask once, in that round's order (the primitives'
 * order rotated by the round's number):
 *
 *	struct scen_runs it;
 *	scen_runs_start(&it, mask, rounds);
 *	while (scen_runs_next(&it))
 *		measure it.prim, in round it.round;
 */
struct scen_runs {
	int round;         /* the current run's, from 0 */
	enum prim_id prim; /* the current run's */
	unsigned mask;
	int rounds, k, n;
	enum prim_id order[PRIM_COUNT];
};
void scen_runs_start(struct scen_runs *it, unsigned mask, int rounds);
/* Step to the next run; false after the last. */
bool scen_runs_next(struct scen_runs *it);

/* Sort pool and record its median and 99th percentile as the figures
 * <prefix>p50_ns and <prefix>p99_ns ("read_p50_ns", or "p50_ns"). */
void scen_add_p50_p99(enum scenario scen, int prim, const char *param,
		      const char *prefix, struct samples *pool);

/* The P values of the contended sweep. */
#define CONTENDED_NP 6
extern const unsigned contended_p[CONTENDED_NP];

/* The P values and read shares (percent) of the read-write mixes. */
#define RW_NP 5
#define RW_NMIX 2
extern const unsigned rw_p[RW_NP];
extern const unsigned rw_read_pct[RW_NMIX];
/* The param of a mix's figures: "P=16 95/5". */
void rw_param(char *buf, size_t n, unsigned np, int mix);

/* The tree scenario: its P sweep, the P values of its table-writer mix,
 * and the variants it compares. Figures of the two lockmgr variants are
 * filed under PRIM_LOCKMGR with " tree" or " flat" after the param
 * ("P=4 tree", "uncontended flat"), the host locks' under their own
 * primitive ("P=4"); the mix's under PRIM_LOCKMGR, "mix P=16". */
#define TREE_NP 5
#define TREE_NMIX 2
extern const unsigned tree_p[TREE_NP];
extern const unsigned tree_mix_p[TREE_NMIX];
enum tree_variant {
	TREE_V_TREE,   /* lockmgr, lockmgrd --tree: IX, IX, X per op */
	TREE_V_FLAT,   /* lockmgr, the same names in a flat region */
	TREE_V_FLOCK,  /* flock(2) on a file per row */
	TREE_V_ROBUST, /* a robust process-shared mutex per row */
	TREE_NV
};
extern const char *const tree_variant_label[TREE_NV];
enum prim_id tree_variant_prim(int v);
/* The param of variant v's figures for base ("P=4", "uncontended"). */
void tree_param(char *buf, size_t n, const char *base, int v);

/* The paths of the watch scenario. A path's figures are filed under
 * its label as the param, and its primitive: futex for the bare futex,
 * lockmgr for the two watch paths, none (RES_NONE) for the eventfd. */
enum watch_path {
	WATCH_FUTEX,   /* FUTEX_WAKE -> the waiter's FUTEX_WAIT returns */
	WATCH_EVENTFD, /* eventfd write -> poll returns, read */
	WATCH_NEXT,    /* grant or release -> lm_watch_next returns */
	WATCH_FD,      /* the same -> poll on lm_watch_fd, lm_watch_next(0) */
	WATCH_NPATH
};
extern const char *const watch_path_label[WATCH_NPATH];
int watch_path_prim(int path);

/* The semaphore scenario: its slots and processes, and the params its
 * figures are filed under (with PRIM_POSIX_SEM or PRIM_LOCKMGR). */
#define SEM_N 4u
#define SEM_P 16u
enum sem_param_id { SEM_UNCONTENDED, SEM_CONTENDED, SEM_NPARAM };
extern const char *const sem_param[SEM_NPARAM];

/* The etcd scenario: the backends it compares and the P values of its
 * contended runs. Figures are filed with the param "uncontended K",
 * "P=4 K" or "cli K" (K a backend's key below), under PRIM_LOCKMGR for
 * liblockmgr and lockctl, RES_NONE for etcdctl. */
enum etcd_backend { ETCD_B_SHM, ETCD_B_ONE, ETCD_B_THREE, ETCD_NB };
extern const char *const etcd_backend_key[ETCD_NB];   /* "shm", "etcd-1" */
extern const char *const etcd_backend_label[ETCD_NB]; /* "etcd 1 node" */
#define ETCD_NP 2
extern const unsigned etcd_p[ETCD_NP];

#endif
