/*
 * test_cli.c - lockctl, run as a real process against a real lockmgrd:
 * `run` (exit status, LOCKMGR_TOKEN / LOCKMGR_LOCK), `run --wait 0` on
 * a held lock, `status` and `status --json`, usage errors and a missing
 * region. And every command's --help and --version against its man page
 * (docs/, read from the source tree the test runs in), and lockmgrd's
 * own command line: its option errors, --quiet, which keeps error
 * lines, and --daemon, which returns once clients can take locks.
 *
 * Exit statuses (sysexits): 64 usage, 69 service unavailable, 75 lock
 * busy (temporary failure); `run` otherwise exits with its command's.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/region.h"

static struct harness_lockmgrd d;
static char lockctl[512];
static char dir[64];

static void setup(bool with_service)
{
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	if (access(lockctl, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", lockctl,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	if (with_service)
		harness_lockmgrd_start(&d, "cli", "--max-ttl", "60000", NULL);
}

static void teardown(void)
{
	harness_lockmgrd_stop(&d);
	/* The scratch dir is flat; the runner removes it on failure. */
	const char *files[] = {"out", "err", "tok1", "tok2", "lock1", "ran",
			       "json"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void path_in(char *out, size_t n, const char *file)
{
	snprintf(out, n, "%s/%s", dir, file);
}

/* lockctl with the NULL-terminated args, its output in the case's dir. */
#define ctl(...) harness_ctl(dir, __VA_ARGS__)

static uint64_t read_token(const char *file)
{
	char p[128], buf[64];
	path_in(p, sizeof(p), file);
	if (harness_read_file(p, buf, sizeof(buf)) <= 0)
		fail_msg("the command under lockctl did not write %s", p);
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0'))
		fail_msg("LOCKMGR_TOKEN was \"%s\", not a number", buf);
	return v;
}

static lm_client *connect_or_fail(void)
{
	lm_client *c = NULL;
	int rc = lm_connect(d.region, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %d (%s)", d.region, rc,
			 lm_strerror(rc));
	return c;
}

/* ---------------------------------------------------------------- */

static void run_passes_token_and_lock(void)
{
	setup(true);
	char script[512], err[4096];
	snprintf(script, sizeof(script),
		 "echo \"$LOCKMGR_TOKEN\" >%s/tok1; "
		 "echo \"$LOCKMGR_LOCK\" >%s/lock1; exit 7", dir, dir);
	int code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run",
		       "/cli/job", "--", "/bin/sh", "-c", script, NULL);
	if (code != 7)
		fail_msg("lockctl run ... exit 7 exited %d; stderr: %s", code,
			 err);
	uint64_t t1 = read_token("tok1");
	assert_true(t1 > 0);
	char p[128], lock[300];
	path_in(p, sizeof(p), "lock1");
	assert_true(harness_read_file(p, lock, sizeof(lock)) > 0);
	assert_string_equal(lock, "/cli/job\n");

	snprintf(script, sizeof(script),
		 "echo \"$LOCKMGR_TOKEN\" >%s/tok2", dir);
	code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run",
		   "/cli/job", "--", "/bin/sh", "-c", script, NULL);
	if (code != 0)
		fail_msg("lockctl run ... true exited %d; stderr: %s", code,
			 err);
	uint64_t t2 = read_token("tok2");
	if (t2 <= t1)
		fail_msg("second run got token %llu after %llu",
			 (unsigned long long)t2, (unsigned long long)t1);

	/* lockctl released it: the API gets it at once, with a larger
	 * token and no sign of a crash. */
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "/cli/job", 1000, 0, &g), 0);
	assert_true(g.token > t2);
	assert_int_equal(g.flags, 0);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_disconnect(a), 0);
	teardown();
}
HARNESS_CASE(run_passes_token_and_lock, 60)

/*
 * A signal that lockctl passes on to CMD, sent right after the grant
 * (lockctl stopped there: "lockctl.granted"), before CMD has started:
 * it reaches CMD once CMD runs (sleep, killed by SIGTERM: 143), and
 * does not kill lockctl, which held the lock (run, elect and flock
 * blocked it only later, and were killed by it).
 */
static void signal_after_grant_reaches_cmd(void)
{
	setup(true);
	char out[128], err[128];
	path_in(out, sizeof(out), "out");
	path_in(err, sizeof(err), "err");
	char *fronts[][10] = {
		{lockctl, "-r", d.region, "run", "/cli/sig", "--",
		 "/bin/sleep", "30", NULL},
		{lockctl, "-r", d.region, "elect", "/cli/sig-e", "--",
		 "/bin/sleep", "30", NULL},
		{lockctl, "-r", d.region, "flock", "/cli/sig-f",
		 "/bin/sleep", "30", NULL},
	};
	for (size_t i = 0; i < sizeof(fronts) / sizeof(fronts[0]); i++) {
		char log[256], what[64];
		snprintf(what, sizeof(what), "lockctl %s sent SIGTERM at its "
			 "grant", fronts[i][3]);
		harness_pause_arm("lockctl.granted", log, sizeof(log));
		pid_t p = harness_spawn(fronts[i], out, err);
		harness_pause_disarm();
		assert_int_equal(harness_wait_paused(log, "lockctl.granted",
						     10000), p);
		kill(p, SIGTERM);
		harness_resume(p);
		harness_expect_exit(p, 10000, 128 + SIGTERM, what);
	}
	teardown();
}
HARNESS_CASE(signal_after_grant_reaches_cmd, 60)

/*
 * A signal while lockmgrd starts: stopped at "supervisor.region_open"
 * (its region created, its record written, no event loop yet), it is
 * sent SIGHUP, which it ignores as documented, and then SIGTERM, on
 * which it stops cleanly (exit 0, the region removed). Both used to
 * kill it there, leaving the region (and with a state dir a record
 * saying it runs) behind.
 */
static void signal_while_lockmgrd_starts(void)
{
	setup(false);
	const int sigs[] = {SIGHUP, SIGTERM};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct harness_lockmgrd s = {0};
		harness_region_name(s.region, sizeof(s.region), "cli-start");
		char log[256];
		harness_pause_arm("supervisor.region_open", log, sizeof(log));
		const char *const extra[] = {"--ephemeral", NULL};
		s.pid = harness_lockmgrd_spawn(s.region, extra);
		harness_pause_disarm();
		assert_int_equal(harness_wait_paused(log,
						     "supervisor.region_open",
						     10000),
				 s.pid);
		kill(s.pid, sigs[i]);
		harness_resume(s.pid);
		if (sigs[i] == SIGHUP) {
			harness_wait_servers_up(s.region, s.pid, 15000);
			harness_lockmgrd_stop(&s); /* SIGTERM: exit 0, no region */
			continue;
		}
		harness_expect_exit(s.pid, 15000, 0,
				    "lockmgrd sent SIGTERM as it started");
		int fd = shm_open(s.region, O_RDONLY, 0);
		if (fd >= 0) {
			close(fd);
			fail_msg("lockmgrd stopped by SIGTERM as it started "
				 "left region %s behind", s.region);
		}
	}
	teardown();
}
HARNESS_CASE(signal_while_lockmgrd_starts, 60)

static void run_wait0_on_held_lock(void)
{
	setup(true);
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "/cli/held", 30000, 0, &g), 0);
	char script[256], err[4096];
	snprintf(script, sizeof(script), "touch %s/ran", dir);
	int64_t t0 = harness_now_ms();
	int code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run",
		       "--wait", "0", "/cli/held", "--", "/bin/sh", "-c",
		       script, NULL);
	int64_t took = harness_now_ms() - t0;
	if (code != 75)
		fail_msg("lockctl run --wait 0 on a held lock exited %d, "
			 "expected 75; stderr: %s", code, err);
	if (err[0] == '\0')
		fail_msg("lockctl run --wait 0 on a held lock said nothing on "
			 "stderr");
	char p[128];
	path_in(p, sizeof(p), "ran");
	if (access(p, F_OK) == 0)
		fail_msg("lockctl ran the command without the lock");
	assert_true(took < 10000);
	/* The holder is undisturbed. */
	assert_int_equal(lm_renew(a, &g, 30000), 0);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_disconnect(a), 0);
	teardown();
}
HARNESS_CASE(run_wait0_on_held_lock, 60)

/*
 * lockctl run on shared memory does not load libcurl: the etcd backend
 * opens it on its first connection (client/etcd/curl_load.h). Linked
 * in, its thirty-odd libraries made every `lockctl run` several times
 * slower than flock(1) before main even ran. CMD reads its parent's
 * (lockctl's) memory map while lockctl holds the lock; the map must
 * show lockctl itself (so that it is lockctl's) and no libcurl.
 */
static void run_loads_no_curl(void)
{
	setup(true);
	char script[512], err[4096];
	snprintf(script, sizeof(script),
		 "m=/proc/$PPID/maps; { grep -c libcurl $m; "
		 "grep -c lockctl $m; } >%s/out; exit 0", dir);
	int code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run",
		       "/cli/nocurl", "--", "/bin/sh", "-c", script, NULL);
	if (code != 0)
		fail_msg("lockctl run ... exited %d; stderr: %s", code, err);
	char p[128], counts[64];
	path_in(p, sizeof(p), "out");
	if (harness_read_file(p, counts, sizeof(counts)) <= 0)
		fail_msg("the command under lockctl did not write %s", p);
	unsigned curl = 99, self = 0;
	if (sscanf(counts, "%u %u", &curl, &self) != 2 || self == 0)
		fail_msg("could not read lockctl's memory map: \"%s\"",
			 counts);
	if (curl != 0)
		fail_msg("lockctl run on shared memory has libcurl mapped "
			 "(%u mappings): the etcd backend should load it only "
			 "when it connects", curl);
	teardown();
}
HARNESS_CASE(run_loads_no_curl, 60)

static void status_shows_held_lock(void)
{
	setup(true);
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "/cli/status/row17", 30000, 0, &g), 0);
	char out[65536], err[4096];
	int code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		       "status", NULL);
	if (code != 0)
		fail_msg("lockctl status exited %d; stderr: %s", code, err);
	if (strstr(out, "/cli/status/row17") == NULL)
		fail_msg("lockctl status does not show the held lock:\n%s",
			 out);
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "status", "--json", NULL);
	if (code != 0)
		fail_msg("lockctl status --json exited %d; stderr: %s", code,
			 err);
	if (strstr(out, "/cli/status/row17") == NULL)
		fail_msg("lockctl status --json does not show the held "
			 "lock:\n%s", out);
	/* It parses as JSON (python3's parser, through the shell). */
	char json[128], o[128], cmd[512];
	path_in(json, sizeof(json), "json");
	path_in(o, sizeof(o), "out");
	if (rename(o, json) != 0)
		fail_msg("rename: %s", strerror(errno));
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import json,sys; json.load(sys.stdin)' <%s",
		 json);
	char *sh[] = {"/bin/sh", "-c", cmd, NULL};
	char perr[128], pmsg[4096];
	path_in(perr, sizeof(perr), "err");
	code = harness_run(sh, NULL, perr, 20000);
	harness_read_file(perr, pmsg, sizeof(pmsg));
	if (code != 0)
		fail_msg("lockctl status --json is not valid JSON (python3 "
			 "exit %d): %s\n%s", code, pmsg, out);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_disconnect(a), 0);
	teardown();
}
HARNESS_CASE(status_shows_held_lock, 60)

static void usage_errors(void)
{
	setup(true);
	char err[4096];
	int code = ctl(NULL, 0, err, sizeof(err), "-r", d.region,
		       "--no-such-flag", "status", NULL);
	if (code != 64)
		fail_msg("lockctl --no-such-flag status exited %d, expected "
			 "64; stderr: %s", code, err);
	assert_true(err[0] != '\0');
	code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run",
		   "--no-such-flag", "/cli/u", "--", "/bin/true", NULL);
	if (code != 64)
		fail_msg("lockctl run --no-such-flag exited %d, expected 64; "
			 "stderr: %s", code, err);
	assert_true(err[0] != '\0');
	code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run", "--ttl",
		   "abc", "/cli/u", "--", "/bin/true", NULL);
	/* Named by its command, as run's other usage errors are. */
	if (code != 64 ||
	    strncmp(err, "lockctl run: --ttl: 'abc' is not a whole number",
		    47) != 0)
		fail_msg("lockctl run --ttl abc exited %d, expected 64 and "
			 "\"lockctl run: --ttl: 'abc' is not a whole "
			 "number...\"; stderr: %s", code, err);
	/* A lease shorter than the renewals can keep (10 ms lost the lock
	 * in 2 of 3 runs on an idle host) is refused, with this region's
	 * range rather than the library's. */
	char want[320];
	snprintf(want, sizeof(want), "region %s allows 100 to 60000 ms",
		 d.region);
	static const char *const ttls[] = {"10", "99", "60001"};
	for (size_t i = 0; i < sizeof(ttls) / sizeof(ttls[0]); i++) {
		code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run",
			   "--ttl", ttls[i], "/cli/u", "--", "/bin/true",
			   NULL);
		if (code != 64 || strstr(err, want) == NULL)
			fail_msg("lockctl run --ttl %s exited %d, expected 64 "
				 "and \"%s\"; stderr: %s", ttls[i], code,
				 want, err);
	}
	/* 100 ms is accepted. (On a loaded host lockctl may be left
	 * unscheduled past so short a lease: that is exit 70, the lease
	 * lost, not a refusal.) */
	code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "run", "--ttl",
		   "100", "/cli/u", "--", "/bin/true", NULL);
	if ((code != 0 && code != 70) || strstr(err, "allows") != NULL)
		fail_msg("lockctl run --ttl 100 exited %d, expected 0 (or 70 "
			 "if its lease was lost); stderr: %s", code, err);
	code = ctl(NULL, 0, err, sizeof(err), "-r", d.region,
		   "no-such-command", NULL);
	if (code != 64)
		fail_msg("lockctl no-such-command exited %d, expected 64; "
			 "stderr: %s", code, err);
	teardown();
}
HARNESS_CASE(usage_errors, 60)

static void missing_region(void)
{
	setup(false);
	char region[LM_REGION_NAME_MAX + 2], err[4096];
	harness_region_name(region, sizeof(region), "cli-missing");
	int code = ctl(NULL, 0, err, sizeof(err), "-r", region, "status",
		       NULL);
	if (code != 69)
		fail_msg("lockctl status on a missing region exited %d, "
			 "expected 69; stderr: %s", code, err);
	if (strstr(err, "lockmgrd") == NULL)
		fail_msg("lockctl's message for a missing region does not "
			 "mention lockmgrd: %s", err);
	code = ctl(NULL, 0, err, sizeof(err), "-r", region, "run", "/cli/m",
		   "--", "/bin/true", NULL);
	if (code != 69)
		fail_msg("lockctl run on a missing region exited %d, expected "
			 "69; stderr: %s", code, err);
	if (strstr(err, "lockmgrd") == NULL)
		fail_msg("lockctl run's message for a missing region does not "
			 "mention lockmgrd: %s", err);
	teardown();
}
HARNESS_CASE(missing_region, 60)

/* ---- --help and --version against the man pages -------------------- */

/*
 * The exit statuses a --help lists: the lines of its "Exit status:"
 * section that start "  N " (a continuation is indented further), and
 * a second status on one line after ";  ". Bit N of the result is N.
 */
static void help_statuses(const char *help, uint64_t set[4])
{
	memset(set, 0, 4 * sizeof(set[0]));
	const char *p = strstr(help, "\nExit status:\n");
	if (p == NULL)
		return;
	for (p = strchr(p + 1, '\n') + 1; *p != '\0' && *p != '\n';) {
		const char *eol = strchrnul(p, '\n');
		const char *q = p;
		if (strncmp(q, "  ", 2) == 0 && q[2] >= '0' && q[2] <= '9')
			q += 2;
		else if ((q = strstr(p, ";  ")) != NULL && q < eol)
			q += 3;
		while (q != NULL && q < eol && *q >= '0' && *q <= '9') {
			unsigned v = (unsigned)strtoul(q, (char **)&q, 10);
			if (v < 256 && *q == ' ')
				set[v / 64] |= 1ull << (v % 64);
			q = strstr(q, ";  ");
			if (q != NULL && q < eol)
				q += 3;
		}
		p = *eol == '\n' ? eol + 1 : eol;
	}
}

/* The exit statuses a man page lists: ".TP" then ".B N" in its EXIT
 * STATUS section. */
static void man_statuses(const char *man, uint64_t set[4])
{
	memset(set, 0, 4 * sizeof(set[0]));
	const char *p = strstr(man, "\n.SH \"EXIT STATUS\"\n");
	if (p == NULL)
		p = strstr(man, "\n.SH EXIT STATUS\n");
	if (p == NULL)
		return;
	const char *end = strstr(p + 1, "\n.SH ");
	for (p = strstr(p, "\n.TP\n.B "); p != NULL && (end == NULL || p < end);
	     p = strstr(p + 1, "\n.TP\n.B ")) {
		const char *q = p + strlen("\n.TP\n.B ");
		char *e;
		unsigned long v = strtoul(q, &e, 10);
		if (e != q && *e == '\n' && v < 256)
			set[v / 64] |= 1ull << (v % 64);
	}
}

static void list_statuses(const uint64_t set[4], char *out, size_t n)
{
	size_t len = 0;
	out[0] = '\0';
	for (unsigned v = 0; v < 256; v++)
		if ((set[v / 64] >> (v % 64)) & 1u && len < n)
			len += (size_t)snprintf(out + len, n - len, " %u", v);
}

/*
 * PROG --help exits 0 and lists the exit statuses of docs/MAN's EXIT
 * STATUS section, no more, no fewer; -V and --version print "PROG V"
 * where V is the version in the man page's .TH line ("lockmgr V").
 */
static void check_against_man(const char *prog, const char *man)
{
	static char help[65536], page[262144], err[4096];
	char bin[512], mpath[128];
	harness_bin_path(bin, sizeof(bin), prog);
	snprintf(mpath, sizeof(mpath), "docs/%s", man);
	if (harness_read_file(mpath, page, sizeof(page)) <= 0)
		fail_msg("cannot read %s: run the test from the source tree",
			 mpath);
	char *hv[] = {bin, "--help", NULL};
	char o[128], e[128];
	path_in(o, sizeof(o), "out");
	path_in(e, sizeof(e), "err");
	int code = harness_run(hv, o, e, 20000);
	harness_read_file(o, help, sizeof(help));
	harness_read_file(e, err, sizeof(err));
	if (code != 0)
		fail_msg("%s --help exited %d; stderr: %s", prog, code, err);
	uint64_t h[4], m[4];
	help_statuses(help, h);
	man_statuses(page, m);
	if (memcmp(h, m, sizeof(h)) != 0) {
		char hs[256], ms[256];
		list_statuses(h, hs, sizeof(hs));
		list_statuses(m, ms, sizeof(ms));
		fail_msg("%s --help lists the exit statuses%s, and %s lists%s: "
			 "make them agree", prog, hs[0] ? hs : " (none)",
			 mpath, ms[0] ? ms : " (none)");
	}

	const char *th = strstr(page, "\"lockmgr ");
	if (strncmp(page, ".TH ", 4) != 0 || th == NULL)
		fail_msg("%s has no .TH line with \"lockmgr VERSION\"", mpath);
	char want[320];
	snprintf(want, sizeof(want), "%s %.*s\n", prog,
		 (int)strcspn(th + 9, "\""), th + 9);
	const char *flags[] = {"--version", "-V"};
	for (size_t i = 0; i < 2; i++) {
		char *vv[] = {bin, (char *)flags[i], NULL};
		code = harness_run(vv, o, e, 20000);
		harness_read_file(o, help, sizeof(help));
		harness_read_file(e, err, sizeof(err));
		if (code != 0 || strcmp(help, want) != 0)
			fail_msg("%s %s exited %d and printed \"%s\", expected "
				 "0 and \"%.*s\" (the version in %s); stderr: "
				 "%s", prog, flags[i], code, help,
				 (int)strlen(want) - 1, want, mpath, err);
	}
}

static void help_matches_man_pages(void)
{
	setup(false);
	check_against_man("lockmgrd", "lockmgrd.8");
	check_against_man("lockctl", "lockctl.1");
	check_against_man("resctl", "resctl.1");
	teardown();
}
HARNESS_CASE(help_matches_man_pages, 60)

/*
 * lockmgrd's option errors: one message in lockmgrd's own name (not
 * getopt's "./lockmgrd:" or a full path), saying what is wrong with the
 * value (a negative count is not "not a number"), and exit 64.
 */
static void lockmgrd_usage_messages(void)
{
	setup(false);
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	static const struct {
		const char *a1, *a2;
		const char *says;
	} cases[] = {
		{"--max-sessions", "-1", "must not be negative"},
		{"--max-locks", "99999999999999", "far too large"},
		{"--max-ttl", "soon", "not a whole number of milliseconds"},
		{"--frob", NULL, "unknown option '--frob'"},
		{"--region", NULL, "option '--region' needs a value"},
		{"extra", NULL, "unexpected argument 'extra'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = {bin, (char *)cases[i].a1, (char *)cases[i].a2,
				NULL};
		char e[128], err[1024];
		path_in(e, sizeof(e), "err");
		int code = harness_run(argv, "/dev/null", e, 10000);
		if (harness_read_file(e, err, sizeof(err)) < 0)
			err[0] = '\0';
		if (code != 64 || strncmp(err, "lockmgrd: ", 10) != 0 ||
		    strstr(err, cases[i].says) == NULL ||
		    strstr(err, "Try 'lockmgrd --help'") == NULL)
			fail_msg("lockmgrd %s %s: exited %d (expected 64, "
				 "\"lockmgrd: ...%s\"); stderr: %s",
				 cases[i].a1, cases[i].a2 ? cases[i].a2 : "",
				 code, cases[i].says, err);
	}
	teardown();
}
HARNESS_CASE(lockmgrd_usage_messages, 60)

/*
 * -q logs nothing but errors, as its help says: a server that refuses to
 * start (here on a token file corrupted while it was down) says so,
 * while the events of a healthy service are not written. -q once
 * dropped every line, errors included, so a service started with -q
 * kept a server down without a word.
 */
static void lockmgrd_quiet_keeps_errors(void)
{
	setup(false);
	char bin[512], state[128], log[128], text[8192] = "";
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	path_in(state, sizeof(state), "state");
	path_in(log, sizeof(log), "lockmgrd.log");
	harness_region_name(d.region, sizeof(d.region), "cli-quiet");
	char *argv[] = {bin, "-r", d.region, "-q", "--max-ttl", "2000",
			"--max-locks", "4096", "--state-dir", state,
			"--restart-delay", "-1", NULL};
	d.pid = harness_spawn(argv, NULL, log);
	harness_wait_servers_up(d.region, d.pid, 15000);
	struct lm_region r;
	harness_attach(d.region, &r);
	harness_kill_server(d.region, &r, 1, false);

	/* Its token mark, damaged while it is down: it must refuse to
	 * start rather than risk issuing a token twice. */
	char tokens[256];
	snprintf(tokens, sizeof(tokens), "%s/server-1.tokens", state);
	int fd = open(tokens, O_RDWR);
	if (fd < 0)
		fail_msg("open %s: %s", tokens, strerror(errno));
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, 17), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, 17), 1);
	close(fd);
	char err[1024];
	int code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "server",
		       "start", "1", NULL);
	/* lockctl once said "server 1 started (pid 0 ...)" and 0. */
	if (code != 69 || strstr(err, "did not start") == NULL)
		fail_msg("lockctl server start of a server that refuses to "
			 "start exited %d; stderr: %s", code, err);
	HARNESS_WAIT_FOR(harness_read_file(log, text, sizeof(text)) > 0 &&
				 strstr(text, "refusing to start") != NULL,
			 5000, "lockmgrd -q did not log that server 1 refuses "
			 "to start; its log:\n%s", text);
	if (strstr(text, "server 1: ") == NULL)
		fail_msg("the error does not say which server: %s", text);
	/* The events of a healthy service are not errors. */
	static const char *const events[] = {"created region", "started",
					     "up (epoch", "serving"};
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (strstr(text, events[i]) != NULL)
			fail_msg("lockmgrd -q logged an event (\"%s\"), not "
				 "only errors:\n%s", events[i], text);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
	unlink(log);
	harness_remove_flat_dir(state);
	teardown();
}
HARNESS_CASE(lockmgrd_quiet_keeps_errors, 60)

/* ---- lockmgrd --daemon ---------------------------------------------- */

/*
 * Run "lockmgrd -r region -q EXTRA... --daemon --pidfile dir/pid" (extra
 * NULL-terminated) to completion: its exit status, its stderr in err,
 * and in *bg the pid of the background supervisor it left (0 if none),
 * which is ours to reap (we are a child subreaper).
 */
static int start_daemon(const char *region, const char *const *extra,
			char *err, size_t errn, pid_t *bg)
{
	char bin[512], pidfile[128], e[128], buf[64];
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	path_in(pidfile, sizeof(pidfile), "pid");
	path_in(e, sizeof(e), "err");
	unlink(pidfile);
	char *argv[32] = {bin, "-r", (char *)region, "-q"};
	int n = 4;
	while (extra != NULL && *extra != NULL && n < 28)
		argv[n++] = (char *)*extra++;
	argv[n++] = "--daemon";
	argv[n++] = "--pidfile";
	argv[n++] = pidfile;
	argv[n] = NULL;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int code = harness_run(argv, NULL, e, 30000);
	if (harness_read_file(e, err, errn) < 0)
		err[0] = '\0';
	*bg = harness_read_file(pidfile, buf, sizeof(buf)) > 0
		      ? (pid_t)strtol(buf, NULL, 10)
		      : 0;
	return code;
}

/* SIGTERM the background lockmgrd bg; it must exit 0 and remove the
 * region. */
static void stop_daemon(pid_t bg, const char *region)
{
	if (bg <= 0)
		fail_msg("lockmgrd --daemon wrote no pid to its --pidfile");
	struct harness_lockmgrd s = {.pid = bg};
	snprintf(s.region, sizeof(s.region), "%s", region);
	harness_lockmgrd_stop(&s);
	harness_reap_orphans();
}

/*
 * `lockmgrd --daemon` returns once the service is usable, so that a
 * command right after it finds a quorum: it once returned as soon as
 * the servers were started, a few milliseconds before they counted,
 * and `lockctl run --wait 0` or `lockctl status` straight after could
 * fail with "no quorum". Several rounds, since that was a race.
 */
static void daemon_returns_when_usable(void)
{
	setup(false);
	for (int round = 0; round < 8; round++) {
		char region[LM_REGION_NAME_MAX + 2], err[4096], out[4096];
		harness_region_name(region, sizeof(region), "cli-daemon");
		const char *const extra[] = {"--ephemeral", "--max-ttl", "2000",
					     "--max-locks", "4096", NULL};
		pid_t bg;
		int code = start_daemon(region, extra, err, sizeof(err), &bg);
		if (code != 0)
			fail_msg("round %d: lockmgrd --daemon exited %d; "
				 "stderr: %s", round, code, err);
		code = ctl(out, sizeof(out), err, sizeof(err), "-r", region,
			   "run", "--wait", "0", "cli/daemon", "--", "true",
			   NULL);
		if (code != 0)
			fail_msg("round %d: lockctl run --wait 0 right after "
				 "lockmgrd --daemon exited %d; stderr: %s",
				 round, code, err);
		code = ctl(out, sizeof(out), err, sizeof(err), "-r", region,
			   "status", NULL);
		if (code != 0)
			fail_msg("round %d: lockctl status right after lockmgrd "
				 "--daemon exited %d; stderr: %s", round, code,
				 err);
		/* "3 of 3" needs every heartbeat fresh at that instant, which
		 * a loaded host may let lapse for a moment: ask again, for
		 * at most 10 s (a server that never counts still fails). */
		int64_t deadline = harness_now_ms() + 10000;
		while (strstr(out, "3 of 3") == NULL) {
			if (harness_now_ms() > deadline)
				fail_msg("round %d: not all three servers count "
					 "after lockmgrd --daemon:\n%s", round,
					 out);
			harness_nap_us(20000);
			ctl(out, sizeof(out), err, sizeof(err), "-r", region,
			    "status", NULL);
		}
		stop_daemon(bg, region);
	}
	teardown();
}
HARNESS_CASE(daemon_returns_when_usable, 90)

/*
 * SIGKILL the supervisor of region (pid sup, our child) and its servers,
 * and remove the region: a service that crashed, leaving in its state
 * directory a record that says it was running.
 */
static void crash_service(pid_t sup, const char *region)
{
	struct lm_region r;
	harness_attach(region, &r);
	pid_t srv[LM_NSERVERS];
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		srv[i] = atomic_load(&r.servers[i]->pid);
	lm_region_detach(&r);
	kill(sup, SIGKILL);
	harness_reap(sup, 5000, "lockmgrd after SIGKILL");
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (srv[i] > 0)
			kill(srv[i], SIGKILL);
	harness_reap_orphans();
	shm_unlink(region);
}

/*
 * After a crash, a new service grants nothing while the leases of the
 * last one may still run (up to its max TTL). lockmgrd --daemon waits
 * for that when it ends soon (2 s here), and returns usable; when it
 * would keep it waiting longer (60 s), it returns at once with 75 and
 * says why and for how long, the service running.
 */
static void daemon_after_crash(void)
{
	setup(false);
	char bin[512], state[128], err[4096], out[4096];
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	path_in(state, sizeof(state), "state");
	static const char *const ttls[] = {"2000", "60000"};
	for (int k = 0; k < 2; k++) {
		char region[LM_REGION_NAME_MAX + 2];
		harness_region_name(region, sizeof(region), "cli-crash");
		char *argv[] = {bin, "-r", region, "-q", "--max-ttl",
				(char *)ttls[k], "--state-dir", state, NULL};
		pid_t sup = harness_spawn(argv, NULL, NULL);
		harness_wait_servers_up(region, sup, 15000);
		crash_service(sup, region);

		const char *const extra[] = {"--max-ttl", ttls[k],
					     "--state-dir", state, NULL};
		pid_t bg;
		int64_t t0 = harness_now_ms();
		int code = start_daemon(region, extra, err, sizeof(err), &bg);
		int64_t took = harness_now_ms() - t0;
		if (k == 0) {
			if (code != 0 || took < 1500)
				fail_msg("lockmgrd --daemon after a crash, max "
					 "TTL 2 s: exited %d after %lld ms "
					 "(expected 0 once the old leases "
					 "ended); stderr: %s", code,
					 (long long)took, err);
			code = ctl(out, sizeof(out), err, sizeof(err), "-r",
				   region, "run", "--wait", "0", "cli/crash",
				   "--", "true", NULL);
			if (code != 0)
				fail_msg("lockctl run --wait 0 after lockmgrd "
					 "--daemon exited %d; stderr: %s", code,
					 err);
		} else {
			if (code != 75 || took > 10000 ||
			    strstr(err, "no quorum") == NULL ||
			    strstr(err, "lockctl status") == NULL)
				fail_msg("lockmgrd --daemon after a crash, max "
					 "TTL 60 s: exited %d after %lld ms "
					 "(expected 75 at once, saying there is "
					 "no quorum yet, and why); stderr: %s",
					 code, (long long)took, err);
			/* It runs: the servers are there, recovering. */
			code = ctl(out, sizeof(out), err, sizeof(err), "-r",
				   region, "status", NULL);
			if (code != 69 || strstr(out, "recovering") == NULL)
				fail_msg("lockctl status exited %d, expected 69 "
					 "and recovering servers:\n%s%s", code,
					 out, err);
		}
		stop_daemon(bg, region);
	}
	harness_remove_flat_dir(state);
	teardown();
}
HARNESS_CASE(daemon_after_crash, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(run_passes_token_and_lock),
		harness_case(signal_after_grant_reaches_cmd),
		harness_case(signal_while_lockmgrd_starts),
		harness_case(run_wait0_on_held_lock),
		harness_case(run_loads_no_curl),
		harness_case(status_shows_held_lock),
		harness_case(usage_errors),
		harness_case(missing_region),
		harness_case(help_matches_man_pages),
		harness_case(lockmgrd_usage_messages),
		harness_case(lockmgrd_quiet_keeps_errors),
		harness_case(daemon_returns_when_usable),
		harness_case(daemon_after_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
