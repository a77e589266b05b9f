/*
 * test_flock.c - lmflock (lockctl flock), run as a real process against a
 * real lockmgrd, in the manner of util-linux's tests/ts/flock/flock: a
 * held lock and -n (exit 1, or -E's code), shared beside shared, shared
 * against exclusive, -w with a fraction, -c, -o, -F, the command's exit
 * status and death by a signal passed through, --verbose naming the
 * holder, LOCKMGR_TOKEN and LOCKMGR_RECOVERED in the command's
 * environment, the fd form and -u refused (64), usage errors (64).
 * tests/flock_compat.sh then runs util-linux's cases against lmflock
 * and, when it is installed, against flock itself: same output.
 *
 * A lock is held across another lmflock by a holder `lmflock NAME sh -c
 * 'echo $$ >FILE; exec sleep 30'`: the case waits (bounded) for FILE,
 * and ends the holder with SIGTERM, which lmflock passes on.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct harness_lockmgrd d;
static char lmflock[512];
static char dir[64];
static char out[16384], err[16384];

static void setup(bool with_service)
{
	harness_bin_path(lmflock, sizeof(lmflock), "lmflock");
	if (access(lmflock, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", lmflock,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	if (with_service) {
		harness_lockmgrd_start(&d, "flock", "--max-ttl", "60000",
				       NULL);
		/* As a script run from flock would: the service comes from
		 * the environment, the options are flock's alone. */
		setenv("LOCKMGR_REGION", d.region, 1);
	}
}

static void teardown(void)
{
	if (d.pid > 0)
		harness_lockmgrd_stop(&d);
	harness_remove_flat_dir(dir);
}

static void path_in(char *p, size_t n, const char *file)
{
	snprintf(p, n, "%s/%s", dir, file);
}

/* Run lmflock with the NULL-terminated args; its status, and its output
 * in out and err. */
static int flk(const char *first, ...)
{
	char *argv[40];
	int n = 0;
	argv[n++] = lmflock;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a != NULL && n < 39;
	     a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	char o[128], e[128];
	path_in(o, sizeof(o), "out");
	path_in(e, sizeof(e), "err");
	int code = harness_run(argv, o, e, 30000);
	if (harness_read_file(o, out, sizeof(out)) < 0)
		out[0] = '\0';
	if (harness_read_file(e, err, sizeof(err)) < 0)
		err[0] = '\0';
	return code;
}

static void expect(int code, int want, const char *what)
{
	if (code != want)
		fail_msg("%s: lmflock exited %d, expected %d\nstdout: %s\n"
			 "stderr: %s", what, code, want, out, err);
}

static bool exists(const char *file)
{
	char p[128];
	path_in(p, sizeof(p), file);
	return access(p, F_OK) == 0;
}

static void read_in(const char *file, char *buf, size_t n)
{
	char p[128];
	path_in(p, sizeof(p), file);
	if (harness_read_file(p, buf, n) <= 0)
		fail_msg("the command under lmflock did not write %s", p);
}

/*
 * Start a holder of `name` (mode_opt: "-s", "-x" or NULL) whose command
 * writes its environment's LOCKMGR_TOKEN to dir/ready and then sleeps;
 * return lmflock's pid once the command runs.
 */
static pid_t hold(const char *name, const char *mode_opt)
{
	char script[512], ready[128];
	path_in(ready, sizeof(ready), "ready");
	unlink(ready);
	snprintf(script, sizeof(script),
		 "echo \"$LOCKMGR_TOKEN\" >%s.tmp && mv %s.tmp %s && "
		 "exec sleep 30", ready, ready, ready);
	char *argv[] = {lmflock, (char *)(mode_opt ? mode_opt : "-x"),
			(char *)name, "sh", "-c", script, NULL};
	pid_t pid = harness_spawn(argv, NULL, NULL);
	HARNESS_WAIT_FOR(access(ready, F_OK) == 0 ||
				 harness_proc_state(pid) == 'Z',
			 20000, "the holder `lmflock %s %s` never ran its "
			 "command (20 s)", mode_opt ? mode_opt : "-x", name);
	if (access(ready, F_OK) != 0)
		fail_msg("the holder `lmflock %s` exited before its command "
			 "ran", name);
	return pid;
}

/* End a holder: SIGTERM, which lmflock passes on to its command. */
static void unhold(pid_t pid)
{
	kill(pid, SIGTERM);
	int st = harness_reap(pid, 10000, "the holder after SIGTERM");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 128 + SIGTERM) {
		char b[32];
		fail_msg("the holder ended with %s, expected exit %d (its "
			 "command's SIGTERM)", harness_status_str(st, b,
								  sizeof(b)),
			 128 + SIGTERM);
	}
}

static uint64_t ready_token(void)
{
	char buf[64];
	read_in("ready", buf, sizeof(buf));
	char *end;
	unsigned long long t = strtoull(buf, &end, 10);
	if (end == buf || t == 0)
		fail_msg("the holder's LOCKMGR_TOKEN was \"%s\"", buf);
	return t;
}

/* ---------------------------------------------------------------- */

static void nonblock_on_held_lock(void)
{
	setup(true);
	pid_t h = hold("/flock/a", NULL);
	char script[256];
	snprintf(script, sizeof(script), "touch %s/ran", dir);
	expect(flk("-n", "/flock/a", "sh", "-c", script, NULL), 1,
	       "-n on a held lock");
	if (exists("ran"))
		fail_msg("lmflock -n ran the command without the lock");
	/* flock says nothing here without --verbose (cron tests $?). */
	if (err[0] != '\0')
		fail_msg("lmflock -n wrote to stderr: %s", err);
	expect(flk("--nb", "/flock/a", "true", NULL), 1, "--nb");
	expect(flk("--nonblock", "-E", "5", "/flock/a", "true", NULL), 5,
	       "-E 5");
	expect(flk("-n", "--conflict-exit-code", "0", "/flock/a", "sh", "-c",
		   script, NULL), 0, "-E 0");
	if (exists("ran"))
		fail_msg("lmflock -n -E 0 ran the command without the lock");
	unhold(h);
	/* Free again: the same command runs. */
	expect(flk("-n", "/flock/a", "sh", "-c", script, NULL), 0,
	       "-n on a free lock");
	if (!exists("ran"))
		fail_msg("lmflock -n on a free lock did not run the command");
	teardown();
}
HARNESS_CASE(nonblock_on_held_lock, 90)

static void shared_and_exclusive(void)
{
	setup(true);
	pid_t h = hold("/flock/rw", "-s");
	char script[256];
	snprintf(script, sizeof(script),
		 "echo \"$LOCKMGR_MODE\" >%s/mode", dir);
	expect(flk("-s", "-n", "/flock/rw", "sh", "-c", script, NULL), 0,
	       "shared beside a shared holder");
	char mode[16];
	read_in("mode", mode, sizeof(mode));
	assert_string_equal(mode, "S\n");
	expect(flk("-n", "/flock/rw", "true", NULL), 1,
	       "exclusive (default) against a shared holder");
	expect(flk("-x", "-n", "/flock/rw", "true", NULL), 1,
	       "-x against a shared holder");
	expect(flk("--exclusive", "-n", "-E", "9", "/flock/rw", "true", NULL),
	       9, "--exclusive -E 9 against a shared holder");
	unhold(h);

	h = hold("/flock/rw", "-x");
	expect(flk("-s", "-n", "/flock/rw", "true", NULL), 1,
	       "shared against an exclusive holder");
	expect(flk("--shared", "-e", "-n", "/flock/rw", "true", NULL), 1,
	       "-e (after -s: the last wins) against an exclusive holder");
	unhold(h);
	teardown();
}
HARNESS_CASE(shared_and_exclusive, 90)

static void wait_times_out(void)
{
	setup(true);
	pid_t h = hold("/flock/w", NULL);
	int64_t t0 = harness_now_ms();
	expect(flk("-w", "0.3", "/flock/w", "true", NULL), 1, "-w 0.3");
	int64_t took = harness_now_ms() - t0;
	/* It waited (not a try), and it did end: only generous bounds. */
	if (took < 250 || took > 15000)
		fail_msg("lmflock -w 0.3 returned after %lld ms",
			 (long long)took);
	expect(flk("--timeout", ".2", "-E", "3", "/flock/w", "true", NULL),
	       3, "--timeout .2 -E 3");
	expect(flk("--wait", "0", "/flock/w", "true", NULL), 1,
	       "-w 0 (is -n)");
	unhold(h);
	teardown();
}
HARNESS_CASE(wait_times_out, 90)

static void command_status_passed_on(void)
{
	setup(true);
	expect(flk("/flock/x", "sh", "-c", "exit 42", NULL), 42, "exit 42");
	expect(flk("/flock/x", "sh", "-c", "kill -KILL $$", NULL),
	       128 + SIGKILL, "a command killed by SIGKILL");
	expect(flk("/flock/x", "sh", "-c", "kill -USR1 $$", NULL),
	       128 + SIGUSR1, "a command killed by SIGUSR1");
	char script[256], buf[300];
	snprintf(script, sizeof(script),
		 "echo \"$LOCKMGR_LOCK\" >%s/c; exit 3", dir);
	expect(flk("/flock/c", "-c", script, NULL), 3, "-c CMDSTRING");
	read_in("c", buf, sizeof(buf));
	assert_string_equal(buf, "/flock/c\n");
	expect(flk("/flock/c", "--command", "exit 4", NULL), 4, "--command");
	expect(flk("-o", "/flock/c", "sh", "-c", "exit 5", NULL), 5, "-o");
	expect(flk("--close", "/flock/c", "true", NULL), 0, "--close");
	/* CMD's options are CMD's. */
	expect(flk("/flock/c", "echo", "-n", "-s", "-w", "5", NULL), 0,
	       "options after the command");
	assert_string_equal(out, "-s -w 5");
	/* A command that cannot be run: a shell's 127 and 126. */
	expect(flk("/flock/c", "/no/such/command", NULL), 127,
	       "a missing command");
	if (strstr(err, "/no/such/command") == NULL)
		fail_msg("lmflock did not name the missing command: %s", err);
	char noexec[128];
	path_in(noexec, sizeof(noexec), "noexec");
	FILE *f = fopen(noexec, "w");
	assert_non_null(f);
	fclose(f);
	expect(flk("/flock/c", noexec, NULL), 126, "a command not executable");
	unlink(noexec);
	teardown();
}
HARNESS_CASE(command_status_passed_on, 90)

static void environment_of_the_command(void)
{
	setup(true);
	char script[512], buf[1024];
	snprintf(script, sizeof(script),
		 "echo \"$LOCKMGR_TOKEN $LOCKMGR_MODE $LOCKMGR_LOCK "
		 "$LOCKMGR_REGION ${LOCKMGR_RECOVERED:-no}\" >%s/env", dir);
	expect(flk("/tmp/flock-env.lock", "sh", "-c", script, NULL), 0,
	       "writing the environment");
	read_in("env", buf, sizeof(buf));
	unsigned long long t1;
	char mode[8], lock[256], region[256], rec[8];
	if (sscanf(buf, "%llu %7s %255s %255s %7s", &t1, mode, lock, region,
		   rec) != 5 || t1 == 0)
		fail_msg("the command's environment: \"%s\"", buf);
	assert_string_equal(mode, "X");
	assert_string_equal(lock, "/tmp/flock-env.lock");
	assert_string_equal(region, d.region);
	assert_string_equal(rec, "no");
	if (access("/tmp/flock-env.lock", F_OK) == 0)
		fail_msg("lmflock created the file /tmp/flock-env.lock: a "
			 "lock name is not a file");
	/* The next grant has a higher token. */
	expect(flk("-s", "/tmp/flock-env.lock", "sh", "-c", script, NULL), 0,
	       "writing the environment, shared");
	read_in("env", buf, sizeof(buf));
	unsigned long long t2;
	if (sscanf(buf, "%llu %7s", &t2, mode) != 2 || t2 <= t1)
		fail_msg("the second grant's environment: \"%s\" (first "
			 "token %llu)", buf, t1);
	assert_string_equal(mode, "S");
	teardown();
}
HARNESS_CASE(environment_of_the_command, 90)

static void recovered_after_holder_killed(void)
{
	setup(true);
	pid_t h = hold("/flock/dead", NULL);
	kill(h, SIGKILL);
	harness_reap(h, 10000, "the SIGKILLed holder");
	char script[256], buf[64];
	snprintf(script, sizeof(script),
		 "echo \"${LOCKMGR_RECOVERED:-unset}\" >%s/rec", dir);
	expect(flk("-w", "20", "/flock/dead", "sh", "-c", script, NULL), 0,
	       "after the holder was SIGKILLed");
	read_in("rec", buf, sizeof(buf));
	if (strcmp(buf, "1\n") != 0)
		fail_msg("LOCKMGR_RECOVERED after a SIGKILLed holder: \"%s\", "
			 "expected 1", buf);
	/* And not after a clean release. */
	expect(flk("-w", "20", "/flock/dead", "sh", "-c", script, NULL), 0,
	       "after a clean release");
	read_in("rec", buf, sizeof(buf));
	assert_string_equal(buf, "unset\n");
	teardown();
}
HARNESS_CASE(recovered_after_holder_killed, 90)

static void verbose_names_the_holder(void)
{
	setup(true);
	pid_t h = hold("/flock/v", NULL);
	uint64_t tok = ready_token();
	expect(flk("--verbose", "-w", "0.2", "/flock/v", "true", NULL), 1,
	       "--verbose -w 0.2 on a held lock");
	char want[128];
	snprintf(want, sizeof(want), "held by pid %d", (int)h);
	if (strstr(out, want) == NULL)
		fail_msg("--verbose does not say \"%s\": stdout: %s", want,
			 out);
	snprintf(want, sizeof(want), "token %llu", (unsigned long long)tok);
	if (strstr(out, want) == NULL)
		fail_msg("--verbose does not give the holder's %s: stdout: %s",
			 want, out);
	if (strstr(out, "waiting") == NULL ||
	    strstr(err, "timeout while waiting to get lock") == NULL)
		fail_msg("--verbose does not say it waited and timed out:\n"
			 "stdout: %s\nstderr: %s", out, err);
	expect(flk("--verbose", "-n", "/flock/v", "true", NULL), 1,
	       "--verbose -n on a held lock");
	if (strstr(err, "failed to get lock") == NULL)
		fail_msg("--verbose -n does not say it failed: %s", err);
	unhold(h);

	expect(flk("--verbose", "/flock/v", "true", NULL), 0,
	       "--verbose on a free lock");
	if (strstr(out, "lmflock: getting lock took ") == NULL ||
	    strstr(out, " seconds") == NULL ||
	    strstr(out, "lmflock: executing true") == NULL)
		fail_msg("--verbose does not say how long the wait took and "
			 "what it runs: %s", out);
	teardown();
}
HARNESS_CASE(verbose_names_the_holder, 90)

static void no_fork_holds_until_exit(void)
{
	setup(true);
	char ready[128], script[512];
	path_in(ready, sizeof(ready), "ready");
	snprintf(script, sizeof(script),
		 "echo \"$LOCKMGR_TOKEN\" >%s; exec sleep 30", ready);
	char *argv[] = {lmflock, "-F", "/flock/F", "sh", "-c", script, NULL};
	pid_t pid = harness_spawn(argv, NULL, NULL);
	HARNESS_WAIT_FOR(access(ready, F_OK) == 0, 20000,
			 "lmflock -F never ran its command (20 s)");
	/* Exec'd in place: the command is the holder, and holds it. */
	expect(flk("-n", "/flock/F", "true", NULL), 1,
	       "-n while an -F command runs");
	kill(pid, SIGTERM);
	int st = harness_reap(pid, 10000, "the -F command after SIGTERM");
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	/* Freed when it exited; never released, so the next one is told. */
	char rec[256], buf[64];
	snprintf(rec, sizeof(rec),
		 "echo \"${LOCKMGR_RECOVERED:-unset}\" >%s/rec", dir);
	expect(flk("-w", "20", "/flock/F", "sh", "-c", rec, NULL), 0,
	       "after the -F command exited");
	read_in("rec", buf, sizeof(buf));
	assert_string_equal(buf, "1\n");
	expect(flk("-F", "/flock/F", "sh", "-c", "exit 7", NULL), 7,
	       "-F passes the status on");
	teardown();
}
HARNESS_CASE(no_fork_holds_until_exit, 90)

static void refused_and_usage_errors(void)
{
	setup(true);
	expect(flk("4", NULL), 64, "the fd form");
	if (strstr(err, "descriptor") == NULL)
		fail_msg("the fd form's refusal does not say why: %s", err);
	expect(flk("-n", "-E", "3", "9", NULL), 64, "the fd form with -n");
	expect(flk("-u", "/flock/u", "true", NULL), 64, "-u");
	if (strstr(err, "unlock") == NULL)
		fail_msg("-u's refusal does not say why: %s", err);
	expect(flk("--unlock", "5", NULL), 64, "--unlock on an fd");
	expect(flk("--fcntl", "/flock/u", "true", NULL), 64, "--fcntl");
	expect(flk("/flock/u", NULL), 64, "a lock name and no command");
	if (strstr(err, "no command given") == NULL)
		fail_msg("a lone lock name is not reported as a missing "
			 "command: %s", err);
	static const char *const bad[][6] = {
		{NULL},
		{"/flock/u", NULL},
		{"--no-such-option", "/flock/u", "true", NULL},
		{"-E", "256", "/flock/u", "true", NULL},
		{"-E", "-1", "/flock/u", "true", NULL},
		{"-w", "soon", "/flock/u", "true", NULL},
		{"-w", "-1", "/flock/u", "true", NULL},
		{"-w", NULL},
		{"/flock/u", "-c", NULL},
		{"/flock/u", "-c", "true", "true", NULL},
		{"-c", "true", "/flock/u", NULL},
		{"-F", "-o", "/flock/u", "true", NULL},
		{"--ttl", "50", "/flock/u", "true", NULL},
		{"", "true", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int code = flk(bad[i][0], bad[i][1], bad[i][2], bad[i][3],
			       bad[i][4], NULL);
		if (code != 64 || err[0] == '\0')
			fail_msg("lmflock %s %s %s %s exited %d, expected 64 "
				 "and a message; stderr: %s",
				 bad[i][0] ? bad[i][0] : "",
				 bad[i][0] && bad[i][1] ? bad[i][1] : "",
				 bad[i][0] && bad[i][1] && bad[i][2] ? bad[i][2]
								     : "",
				 bad[i][0] && bad[i][1] && bad[i][2] &&
						 bad[i][3]
					 ? bad[i][3]
					 : "",
				 code, err);
		/* It names what is wrong. */
		for (size_t k = 0; k < 5 && bad[i][k] != NULL; k++)
			if (strncmp(bad[i][k], "--no-such", 9) == 0 &&
			    strstr(err, bad[i][k]) == NULL)
				fail_msg("the message does not name %s: %s",
					 bad[i][k], err);
	}
	teardown();
}
HARNESS_CASE(refused_and_usage_errors, 90)

static void service_unavailable(void)
{
	setup(false);
	setenv("LOCKMGR_REGION", "/lmt-flock-no-such-region", 1);
	expect(flk("/flock/s", "true", NULL), 69, "no service");
	if (strstr(err, "lmflock:") == NULL)
		fail_msg("the message is not in lmflock's name: %s", err);
	teardown();
}
HARNESS_CASE(service_unavailable, 60)

static void help_and_version(void)
{
	setup(false);
	expect(flk("-V", NULL), 0, "-V");
	assert_string_equal(out, "lmflock 0.1\n");
	expect(flk("--help", NULL), 0, "--help");
	static const char *const statuses[] = {"  0 ", "  1 ", "  64 ",
					       "  69 ", "  70 ", "  71 ",
					       "  126 ", ";  127 "};
	const char *ex = strstr(out, "\nExit status:\n");
	if (ex == NULL)
		fail_msg("lmflock --help has no \"Exit status:\": %s", out);
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strstr(ex, statuses[i]) == NULL)
			fail_msg("lmflock --help does not list exit status%s",
				 statuses[i]);
	/* The man page has the section it points to. */
	char page[262144];
	if (harness_read_file("docs/lockctl.1", page, sizeof(page)) <= 0)
		fail_msg("cannot read docs/lockctl.1: run from the source "
			 "tree");
	if (strstr(page, "\n.SS flock") == NULL ||
	    strstr(page, "lmflock") == NULL)
		fail_msg("docs/lockctl.1 has no flock section naming lmflock");
	teardown();
}
HARNESS_CASE(help_and_version, 60)

/*
 * tests/flock_compat.sh: util-linux's cases against lmflock, and against
 * util-linux's flock when it is installed; the two outputs must match.
 */
static void compat_with_util_linux(void)
{
	setup(true);
	static char a[16384], b[16384];
	char sub[128], o[128], e[128];
	path_in(sub, sizeof(sub), "lm");
	path_in(o, sizeof(o), "compat.out");
	path_in(e, sizeof(e), "compat.err");
	mkdir(sub, 0700);
	char *argv[] = {"/bin/sh", "tests/flock_compat.sh", lmflock, sub,
			NULL};
	int code = harness_run(argv, o, e, 120000);
	harness_read_file(o, a, sizeof(a));
	harness_read_file(e, err, sizeof(err));
	if (code != 0)
		fail_msg("tests/flock_compat.sh %s exited %d:\n%s\nstderr: %s",
			 lmflock, code, a, err);
	harness_remove_flat_dir(sub);
	if (access("/usr/bin/flock", X_OK) != 0) {
		fprintf(stderr, "test_flock: /usr/bin/flock is not installed: "
				"lmflock not compared with it\n");
		teardown();
		return;
	}
	path_in(sub, sizeof(sub), "ul");
	mkdir(sub, 0700);
	argv[2] = "/usr/bin/flock";
	code = harness_run(argv, o, e, 120000);
	harness_read_file(o, b, sizeof(b));
	harness_read_file(e, err, sizeof(err));
	harness_remove_flat_dir(sub);
	if (code != 0)
		fail_msg("tests/flock_compat.sh /usr/bin/flock exited %d (the "
			 "script's expectations are wrong):\n%s\nstderr: %s",
			 code, b, err);
	if (strcmp(a, b) != 0)
		fail_msg("lmflock and flock differ on tests/flock_compat.sh:\n"
			 "--- lmflock ---\n%s--- flock ---\n%s", a, b);
	teardown();
}
HARNESS_CASE(compat_with_util_linux, 180)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(nonblock_on_held_lock),
		harness_case(shared_and_exclusive),
		harness_case(wait_times_out),
		harness_case(command_status_passed_on),
		harness_case(environment_of_the_command),
		harness_case(recovered_after_holder_killed),
		harness_case(verbose_names_the_holder),
		harness_case(no_fork_holds_until_exit),
		harness_case(refused_and_usage_errors),
		harness_case(service_unavailable),
		harness_case(help_and_version),
		harness_case(compat_with_util_linux),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
