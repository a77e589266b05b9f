/*
 * bench.h - what every part of lockbench shares: the run's configuration,
 * time, shared memory for forked workers, futex helpers, progress and
 * failure reporting.
 *
 * lockbench measures lockmgr and the host's own locks in one run,
 * interleaved round by round, so that a noisy neighbour slows every
 * primitive of a round alike and the ratios stay meaningful even when
 * the absolute numbers do not.
 */
#ifndef LOCKBENCH_BENCH_H
#define LOCKBENCH_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../shm/region.h"

/* The most processes one scenario forks (the top of the P sweep). */
#define BENCH_MAX_PROCS 64

/* The scenarios, in the order they are numbered and reported; they run
 * in this order too, except the read-write, tree, watch, semaphore,
 * etcd and cross-check ones, which run before the server-down one (that
 * leaves a server down). */
enum scenario {
	SCEN_UNCONTENDED,
	SCEN_CONTENDED,
	SCEN_HANDOFF,
	SCEN_CRASH,
	SCEN_MANYLOCKS,
	SCEN_SERVERDOWN,
	SCEN_RW,
	SCEN_TREE,
	SCEN_WATCH,
	SCEN_SEMAPHORE,
	SCEN_ETCD,
	SCEN_CROSSCHECK, /* not in the default set: --minimal */
	SCEN_CLI,
	SCEN_COUNT
};

/* CSV key of a scenario ("uncontended", ...). */
const char *scenario_key(enum scenario s);

struct bench_config {
	bool quick;               /* small sizes, short runs: a smoke test */
	const char *out_dir;      /* CSV, gnuplot data and PNGs */
	const char *lockmgrd;     /* the supervisor binary we start */
	unsigned scenarios;       /* bit (1 << enum scenario) selects one */
	int rounds;               /* interleaved rounds per measurement */
	int64_t duration_ms;      /* of one timed contended run */
	int64_t ttl_ms;           /* lockmgr lease of every acquire */
	uint32_t max_locks;       /* --max-locks of our lockmgrd */
	uint32_t many_small;      /* names in the small many-locks run */
	uint32_t many_large;      /* names in the large many-locks run */
	int uncontended_iters;    /* acquire+release pairs per round */
	int handoff_iters;        /* hand-offs per primitive per round */
	int watch_iters;          /* changes per watch path per round */
	int etcd_iters;           /* etcd: uncontended pairs per round */
	int etcd_cli_runs;        /* etcd: runs of each command line tool */
	int cli_runs;             /* cli: runs of each command line tool */
	int crash_iters;          /* kills per primitive */
	int64_t crash_timeout_ms; /* a waiter not granted by then: "never" */
	size_t sample_cap;        /* latency samples kept per process */
	const char *redis_server; /* --redis-server, or NULL: from PATH */
	int64_t redis_ttl_ms;     /* the Redis peer's PX: its crash
	                           * recovery, and how long a paused holder
	                           * keeps the lock */
	char region[LM_REGION_NAME_MAX + 2]; /* our lockmgrd's region */
};

/* Filled in by main before any scenario runs; read-only afterwards. */
extern struct bench_config bench_cfg;

/* One timed run's length in the scenarios that make many per round
 * (read-write: 2 mixes x 5 P x 3 primitives, tree: 5 P x 4 variants):
 * duration_ms, but a third of it under --quick, where they would
 * otherwise add a fifth and a sixth to a smoke test that promises to
 * take under 30 s. */
int64_t bench_many_runs_duration_ms(void);

/* ---- time ---------------------------------------------------------- */

int64_t bench_now_ns(void);
void bench_sleep_ns(int64_t ns);

/* ---- shared memory for forked workers ------------------------------ */

/* A zeroed MAP_SHARED anonymous mapping; dies if it cannot be had. */
void *bench_shared_alloc(size_t n);
void bench_shared_free(void *p, size_t n);

/* ---- futex (process-shared) ---------------------------------------- */

/* Sleep while *word == val, at most until deadline_ns (CLOCK_MONOTONIC,
 * INT64_MAX = no limit). Returns 0 or -errno (-ETIMEDOUT, -EAGAIN,
 * -EINTR); callers re-check their condition in every case. */
int bench_futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline_ns);
void bench_futex_wake(_Atomic uint32_t *word, int n);

/* ---- reporting ----------------------------------------------------- */

/* A progress line on stderr (overwritten in place on a terminal). */
void bench_progress(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* End the progress line before other output. */
void bench_progress_done(void);

/*
 * A correctness failure (a counter off, a worker that failed): printed at
 * once and remembered, so the run finishes its report but exits 1.
 */
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int bench_failures(void);

/* Remember the main process: bench_die in a forked worker uses _exit. */
void bench_mark_main(void);

/* A broken invariant of lockbench itself: print and exit 2. */
void bench_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* ---- small random numbers (per process, never shared) -------------- */

static inline uint64_t bench_rand(uint64_t *s)
{
	/* xorshift64*: enough for choosing locks and sample slots. */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(2685821657736338717);
}

#endif
