/*
 * demo_util.h - what every example needs: a private supervisor to run
 * against, and a timeline a person can follow.
 */
#ifndef LOCKMGR_EXAMPLES_DEMO_UTIL_H
#define LOCKMGR_EXAMPLES_DEMO_UTIL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/lockmgr.h"

struct client_spec;

struct demo {
	char region[128];
	char lockctl[4096];   /* path of lockctl */
	pid_t supervisor;     /* ours to stop, or 0 if we use a running one */
	int64_t t0_ns;        /* timeline origin */
};

/*
 * Use the running service named by $LOCKMGR_REGION if there is one;
 * otherwise start `lockmgrd_path` (NULL: next to this program, then
 * $PATH) on a private region with extra_args appended. Waits (bounded)
 * until a majority of servers is up. Exits with a message on failure.
 * The first call in a process also says how to watch the region live.
 */
void demo_setup(struct demo *d, const char *argv0, const char *lockmgrd_path,
		const char *const *extra_args);

/*
 * The options every scenario demo takes: --lockmgrd PATH and --help.
 * Returns -1 to go on, or the exit status to end with (help, usage).
 */
int demo_options(int argc, char **argv, const char *name,
		 const char **lockmgrd);

/* Fork a process that runs run_client(s) and exits with its result. */
pid_t demo_fork_client(const struct client_spec *s);

/* Stop the supervisor we started (SIGTERM, bounded wait). */
void demo_teardown(struct demo *d);

/*
 * Run `lockctl -r REGION ARGS...` (lockctl next to lockmgrd), showing its
 * output as a timeline note; returns its exit status.
 */
int demo_lockctl(const struct demo *d, const char *const *args);

/* Sleep ms (restarting after signals). */
void demo_pause_ms(long ms);

/* The column header of the timeline; print it above the first line. */
void demo_header(void);

/* One timeline line: "  +1.234s  client 2   acquired   token 7  note". */
void demo_event(const struct demo *d, const char *who, const char *event,
		uint64_t token, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* A release that failed (rc), in the words every demo uses. */
void demo_release_failed(const struct demo *d, const char *who,
			 uint64_t token, int rc);

/* Print a fenced store's log (what the resource accepted and rejected). */
void demo_print_store(const char *path);

/* Wait (bounded) until *flag is non-zero; exits with a message if not. */
void demo_wait_flag(_Atomic int *flag, int64_t timeout_ms, const char *what);

/*
 * An on_event hook for run_client (clients.h) that prints the client's
 * events on the timeline; the spec's arg must be the struct demo.
 */
void demo_client_event(const struct client_spec *s, int ev, int round,
		       const lm_grant *g, int rc, uint64_t highest);

#endif
