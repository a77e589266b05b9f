/*
 * procs.h - forked worker processes: start, a start gate, bounded
 * waits, and telling when a process has gone to sleep.
 *
 * Every wait here is bounded: a worker that hangs is killed and the
 * run fails with a message, it never stalls the benchmark.
 */
#ifndef LOCKBENCH_PROCS_H
#define LOCKBENCH_PROCS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The start gate of one timed run, in shared memory. Workers check in
 * (ready), sleep on `go`, run until `stop`; the clock starts when every
 * worker is ready, so fork and attach costs never count.
 */
struct gate {
	_Atomic uint32_t ready;
	_Atomic uint32_t go;
	_Atomic uint32_t stop;
	_Atomic uint32_t pad_;
};

/* Worker side: check in and sleep until the parent opens the gate. */
void gate_arrive_and_wait(struct gate *g);

/*
 * Parent side: wait (bounded) until n workers are ready, then open the
 * gate. Fails if a worker exits first. Returns the time it opened, or
 * -1 (the failure is reported with bench_fail).
 */
int64_t gate_open_when_ready(struct gate *g, uint32_t n, const pid_t *pids,
			     const char *what);

/* Fork a worker running fn(id, arg); its exit status is fn's return.
 * stdout is flushed first so the worker holds no copy of its buffer. */
pid_t procs_fork(int (*fn)(int id, void *arg), int id, void *arg);

/*
 * Reap the n workers, waiting at most timeout_ms in all; kill the rest.
 * Each that failed, was killed or did not end is reported with
 * bench_fail(what). Returns the number of such workers.
 */
int procs_reap(const pid_t *pids, int n, int64_t timeout_ms,
	       const char *what);

/* SIGKILL and reap one process (a crash scenario holder). */
void procs_kill_reap(pid_t pid);

/*
 * Wait until pid is asleep in the kernel (state S or D in
 * /proc/pid/stat): a waiter that has announced itself and then sleeps
 * is blocked in its acquire. false if it did not within timeout_ms.
 */
bool procs_wait_asleep(pid_t pid, int64_t timeout_ms);

/* Spin (yielding the CPU) until *w >= v or the timeout; false on timeout. */
bool procs_wait_value(_Atomic uint32_t *w, uint32_t v, int64_t timeout_ms);

/*
 * Pin the calling process to the k-th CPU it may run on (modulo their
 * number). Returns that CPU, or -1 if fewer than two are allowed (then
 * nothing is pinned).
 */
int procs_pin(int k);

/* For the signal handler: SIGKILL every worker still running. */
void procs_kill_all_signal_safe(void);

/*
 * Run argv once (a command line tool being timed), stdout to /dev/null,
 * stderr to errlog; *ns is the time from fork to reap. 0, or -1 with
 * the reason in err: its exit status and the start of its stderr, or
 * that it did not end within timeout_ms (it is killed). The wait is a
 * poll on a pidfd, not a sleep loop: what is timed is the tool, not our
 * polling.
 */
int procs_run_timed(char *const argv[], const char *errlog, int timeout_ms,
		    int64_t *ns, char *err, size_t errn);

#endif
