/*
 * harness.h - helpers shared by lockmgr's tests.
 *
 * Every test is a cmocka program. Unit tests run their cases in-process;
 * multi-process tests run each case in its own forked process group
 * under a timeout (libuv's runner-unix.c style), so that one hang or
 * crash fails that case and not the suite, and so that whatever the case
 * started (lockmgrd, its servers, clients) can be killed as one group.
 *
 * Rules the helpers enforce (and the tests follow):
 *
 *   - every wait is bounded and fails with a message saying what was
 *     being waited for;
 *   - no sleep stands in for synchronisation: waits are on waitpid
 *     (through a pidfd), on pipes, or a bounded poll of a condition with
 *     short naps;
 *   - every process and every shm object a case created is gone when the
 *     case ends, even when it failed: regions are named
 *     /lmt-<tag>-<case pid>-<n>, so the runner can find what a dead case
 *     left behind.
 *
 * Assertions in a forked child: harness_fork() runs the child's function
 * inside a nested cmocka run, so a failed assert_*() in a child ends that
 * child (exit status 1, with the assertion's message on stderr) instead
 * of jumping back into a copy of the parent's test runner.
 */
#ifndef LOCKMGR_TESTS_HARNESS_H
#define LOCKMGR_TESTS_HARNESS_H

/* cmocka needs these before it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <sys/types.h>

#include "shm/region.h"

/* ---- time -------------------------------------------------------- */

int64_t harness_now_ns(void);
int64_t harness_now_ms(void);
/* A short nap inside a bounded polling loop (never a synchronisation). */
void harness_nap_us(long us);

/*
 * Poll cond every ~0.5 ms until it holds; fail the test with the
 * printf-style message if it does not within timeout_ms.
 */
#define HARNESS_WAIT_FOR(cond, timeout_ms, ...)                            \
	do {                                                               \
		int64_t hw_deadline_ = harness_now_ms() + (timeout_ms);    \
		while (!(cond)) {                                          \
			if (harness_now_ms() > hw_deadline_)               \
				fail_msg(__VA_ARGS__);                     \
			harness_nap_us(500);                               \
		}                                                          \
	} while (0)

/* ---- environment -------------------------------------------------- */

/* $LOCKMGR_BIN (the build directory with lockmgrd and lockctl). */
const char *harness_bin_dir(void);
/* "$LOCKMGR_BIN/<prog>" in a static buffer per call site's copy. */
void harness_bin_path(char *out, size_t n, const char *prog);

/*
 * A fresh region name "/lmt-<tag>-<case pid>-<n>". The case pid is the
 * pid of the process running the current case (the test binary itself
 * for in-process unit tests), inherited by every child.
 */
void harness_region_name(char *out, size_t n, const char *tag);

/* A fresh empty directory /tmp/lmt-<case pid>-XXXXXX for scratch files. */
void harness_tmpdir(char *out, size_t n);

/* A MAP_SHARED anonymous mapping, zeroed, shared with forked children. */
void *harness_shared(size_t n);
void harness_shared_free(void *p, size_t n);

/* Remove every /dev/shm/lmt-*-<pid>-* and /tmp/lmt-<pid>-* left behind.
 * Returns the number of objects removed. */
int harness_cleanup_leftovers(pid_t case_pid);

/* ---- processes ---------------------------------------------------- */

/*
 * Fork a child that runs fn(arg) and exits 0, or 1 if an assertion in
 * it failed (its message is printed on stderr).
 */
pid_t harness_fork(void (*fn)(void *), void *arg);

/*
 * Wait for pid (a child of ours) at most timeout_ms. Returns true and
 * its wait status, or false if it is still running (it is left alone).
 */
bool harness_wait_pid(pid_t pid, int64_t timeout_ms, int *status);

/*
 * Wait for pid at most timeout_ms; on timeout SIGKILL and reap it, then
 * fail with what. Returns the wait status.
 */
int harness_reap(pid_t pid, int64_t timeout_ms, const char *what);

/* harness_reap and assert a normal exit with status code. */
void harness_expect_exit(pid_t pid, int64_t timeout_ms, int code,
			 const char *what);

/* Describe a wait status ("exit 3", "signal 9") in buf. */
const char *harness_status_str(int status, char *buf, size_t n);

/*
 * fork + exec argv[0] with stdin from /dev/null and stdout/stderr to the
 * given files (NULL: stdout to /dev/null, stderr inherited).
 */
pid_t harness_spawn(char *const argv[], const char *out_path,
		    const char *err_path);

/*
 * Run argv to completion (at most timeout_ms, else it is killed and the
 * test fails). Returns its exit status (0..255), or 128 + signal.
 */
int harness_run(char *const argv[], const char *out_path,
		const char *err_path, int64_t timeout_ms);

/* The state letter of /proc/PID/stat (R, S, T, Z...), '?' if gone. */
char harness_proc_state(pid_t pid);

/* Read a whole (small) file into buf, NUL-terminated; -1 on error. */
ssize_t harness_read_file(const char *path, char *buf, size_t n);

/* Wait for one byte on fd at most timeout_ms; fail with what if not. */
void harness_read_byte(int fd, int64_t timeout_ms, const char *what);

/* ---- pause points (shm/test_hook.h) ------------------------------- */

/*
 * Arm the pause points `points` (comma-separated, "point" or "point@N")
 * in this process's environment, so that processes forked or started
 * from now on stop there; hits are logged to a fresh file whose path is
 * written to log. A forked child arms itself by calling this before
 * lm_connect.
 */
void harness_pause_arm(const char *points, char *log, size_t n);
void harness_pause_disarm(void);

/*
 * Wait until some process has logged `point` in log and is stopped
 * there; return its pid (fail the test after timeout_ms otherwise).
 */
pid_t harness_wait_paused(const char *log, const char *point,
			  int64_t timeout_ms);

/* The pid stopped at `point` (logged in log and stopped now), or 0. */
pid_t harness_paused(const char *log, const char *point);

/* SIGCONT pid (which a pause point stopped). */
void harness_resume(pid_t pid);

/* ---- lockmgrd ----------------------------------------------------- */

struct harness_lockmgrd {
	pid_t pid;
	char region[LM_REGION_NAME_MAX + 2];
};

/*
 * Start "$LOCKMGR_BIN/lockmgrd -r <fresh region> -q --max-ttl 2000
 * --max-locks 4096 <extra...>" (later options override earlier ones;
 * --ephemeral is added unless extra names a --state-dir)
 * and wait, bounded, until all three servers are UP. The extra options
 * are a NULL-terminated list. LOCKMGR_TEST_VERBOSE=1 in the environment
 * drops -q, to see lockmgrd's log while debugging a test.
 */
void harness_lockmgrd_start(struct harness_lockmgrd *d, const char *tag,
			    ...) __attribute__((sentinel));

/* Wait until the supervisor of region serves it with all servers UP. */
void harness_wait_servers_up(const char *region, pid_t supervisor,
			     int64_t timeout_ms);

/*
 * Wait until every server of r has begun a new loop since this call
 * (its heartbeat, stamped at the top of each loop, is later than now):
 * whatever a server's sweep was doing when this was called (freeing a
 * table, announcing the change) is over. A server whose pid is except
 * (0: none) is left out (a test keeps it stopped). Fails after
 * timeout_ms, naming the server that did not loop.
 */
void harness_servers_loop_once(const struct lm_region *r, pid_t except,
			       int64_t timeout_ms);
/* Whether every server of r but except has begun a loop since since_ms
 * (harness_now_ms), as above, without waiting. */
bool harness_servers_looped(const struct lm_region *r, pid_t except,
			    int64_t since_ms);

/* SIGTERM, bounded wait, assert a clean exit and the region removed. */
void harness_lockmgrd_stop(struct harness_lockmgrd *d);

/*
 * Start "$LOCKMGR_BIN/lockmgrd -r region -q <extra...>" (extra: a
 * NULL-terminated array, may be NULL) on a region that may or may not
 * exist yet, without waiting for it; -q is dropped with
 * LOCKMGR_TEST_VERBOSE=1.
 */
pid_t harness_lockmgrd_spawn(const char *region, const char *const *extra);

/* Attach region or fail the test, saying why. */
void harness_attach(const char *region, struct lm_region *r);

/* LM_SRV_* state of server i. */
uint32_t harness_server_state(const struct lm_region *r, unsigned i);

/* Run "lockctl -r region a1 a2 a3 a4" (trailing arguments may be NULL)
 * to completion; its exit status. */
int harness_lockctl(const char *region, const char *a1, const char *a2,
		    const char *a3, const char *a4);

/*
 * Run "$LOCKMGR_BIN/lockctl ARGS..." (NULL-terminated) to completion,
 * stdout and stderr into dir/out and dir/err, and copy them into out and
 * err (either may be NULL; "" if nothing was written). Its exit status.
 */
int harness_ctl(const char *dir, char *out, size_t outn, char *err,
		size_t errn, ...) __attribute__((sentinel));

/* Remove a directory and the files in it (not subdirectories). */
void harness_remove_flat_dir(const char *path);

/* lockctl server kill i [--wipe], and wait until the server is down. */
void harness_kill_server(const char *region, const struct lm_region *r,
			 unsigned i, bool wipe);

/*
 * Reap, within 5 s, every child left: the servers of a supervisor the
 * case killed are orphans of the case (a PR_SET_CHILD_SUBREAPER), ours
 * to reap once the supervisor that adopted them has stopped them.
 */
void harness_reap_orphans(void);

/* Does a process named comm (not a zombie) run in this case's process
 * group? An orphan adopted by the test runner still counts. */
bool harness_group_runs(const char *comm);

/* ---- multi-process cases ----------------------------------------- */

/*
 * Run fn in its own process group under a timeout of timeout_s seconds
 * (alarm() in the child, a bounded wait in the parent). Afterwards kill
 * whatever of the group is left, reap it and remove its shm objects; the
 * case fails if it failed, timed out, or left processes running or
 * regions behind. (Already-dead zombies whose parent exited unreaped are
 * only reaped.) If the test binary itself is killed by SIGTERM/SIGINT/
 * SIGHUP, the running case's group and regions go with it.
 */
void harness_run_case(const char *name, void (*fn)(void), int timeout_s);

/* Define the cmocka entry of a multi-process case, and list it. */
#define HARNESS_CASE(fn, timeout_s)                                        \
	static void fn##_proc(void **state)                                \
	{                                                                  \
		(void)state;                                               \
		harness_run_case(#fn, fn, timeout_s);                      \
	}
#define harness_case(fn) {#fn, fn##_proc, NULL, NULL, NULL}

/* In-process unit tests: per-case alarm and leftover cleanup. */
int harness_unit_setup(void **state);
int harness_unit_teardown(void **state);
#define harness_unit(fn)                                                   \
	cmocka_unit_test_setup_teardown(fn, harness_unit_setup,            \
					harness_unit_teardown)

#endif
