/*
 * util.c - the configuration, time, shared mappings, futexes, progress
 * and failures.
 */
#include "bench.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct bench_config bench_cfg;

int64_t bench_many_runs_duration_ms(void)
{
	int64_t d = bench_cfg.duration_ms;
	return bench_cfg.quick && d >= 3 ? d / 3 : d;
}

static const char *const scenario_keys[SCEN_COUNT] = {
	[SCEN_UNCONTENDED] = "uncontended",
	[SCEN_CONTENDED] = "contended",
	[SCEN_HANDOFF] = "handoff",
	[SCEN_CRASH] = "crash",
	[SCEN_MANYLOCKS] = "manylocks",
	[SCEN_SERVERDOWN] = "serverdown",
	[SCEN_RW] = "rw",
	[SCEN_TREE] = "tree",
	[SCEN_WATCH] = "watch",
	[SCEN_SEMAPHORE] = "semaphore",
	[SCEN_ETCD] = "etcd",
	[SCEN_CROSSCHECK] = "crosscheck",
	[SCEN_CLI] = "cli",
};

const char *scenario_key(enum scenario s)
{
	return s < SCEN_COUNT ? scenario_keys[s] : "?";
}

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_ns(int64_t ns)
{
	if (ns <= 0)
		return;
	struct timespec ts = {.tv_sec = ns / 1000000000,
			      .tv_nsec = ns % 1000000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void *bench_shared_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		bench_die("mmap(%zu bytes, MAP_SHARED): %s", n,
			  strerror(errno));
	return p;
}

void bench_shared_free(void *p, size_t n)
{
	if (p != NULL)
		munmap(p, n);
}

int bench_futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t deadline_ns)
{
	struct timespec ts, *tsp = NULL;
	if (deadline_ns != INT64_MAX) {
		ts.tv_sec = deadline_ns / 1000000000;
		ts.tv_nsec = deadline_ns % 1000000000;
		tsp = &ts;
	}
	/* Shared (not FUTEX_PRIVATE): waiter and waker are different
	 * processes. BITSET takes an absolute CLOCK_MONOTONIC deadline. */
	if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, val, tsp,
		    NULL, FUTEX_BITSET_MATCH_ANY) == 0)
		return 0;
	return -errno;
}

void bench_futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* ---- progress and failures ----------------------------------------- */

static int64_t started_ns;
static pid_t main_pid;

void bench_mark_main(void)
{
	main_pid = getpid();
}

static int progress_tty = -1;
static bool progress_open;
static int failures;

void bench_progress(const char *fmt, ...)
{
	if (started_ns == 0)
		started_ns = bench_now_ns();
	if (progress_tty < 0)
		progress_tty = isatty(STDERR_FILENO);
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	double t = (double)(bench_now_ns() - started_ns) / 1e9;
	/* On a terminal one line is rewritten in place; into a file (a
	 * test's log) each step is a line of its own. */
	if (progress_tty)
		fprintf(stderr, "\r\033[K[lockbench %5.1fs] %s", t, msg);
	else
		fprintf(stderr, "[lockbench %5.1fs] %s\n", t, msg);
	progress_open = progress_tty;
	fflush(stderr);
}

void bench_progress_done(void)
{
	if (progress_open)
		fputs("\r\033[K", stderr);
	progress_open = false;
}

void bench_fail(const char *fmt, ...)
{
	bench_progress_done();
	va_list ap;
	va_start(ap, fmt);
	fputs("lockbench: FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

int bench_failures(void)
{
	return failures;
}

void bench_die(const char *fmt, ...)
{
	bench_progress_done();
	va_list ap;
	va_start(ap, fmt);
	fputs("lockbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	/* A forked worker must not run the parent's exit handlers (or
	 * flush its copy of the parent's stdio buffers). */
	if (getpid() != main_pid)
		_exit(2);
	exit(2);
}
