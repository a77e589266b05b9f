/*
 * test_fault_cli.c - the fault commands as a user types them: `lockctl
 * server ...` argument handling (usage errors before the service is even
 * looked for, -r anywhere), isolation that behaves like a partition
 * (a holder loses its lock, a process isolated before it connects is
 * cut off from the start, a rule racing a connect is not lost), and
 * what `lockctl run` tells its command and its user (LOCKMGR_RECOVERED,
 * a service that stopped).
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/internal.h"
#include "shm/heartbeat.h"
#include "shm/lease_scan.h"
#include "shm/wait_queue.h"
#include "client/lockmgr.h"
#include "shm/isolation.h"
#include "shm/name_index.h"
#include "shm/session.h"

static char lockctl[512];
static char dir[64];

static void setup(void)
{
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	if (access(lockctl, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", lockctl,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
}

static void cleanup(void)
{
	const char *files[] = {"out", "err", "env", "ready"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* lockctl with the NULL-terminated args, its output in the case's dir. */
#define ctl(...) harness_ctl(dir, __VA_ARGS__)

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- arguments ---------------------------------------------------- */

/*
 * Every malformed `lockctl server` command is a usage error (64) with a
 * one-line reason that begins "lockctl server: " and a pointer to --help, found before the region is
 * looked for: here the region does not exist, so a check made after
 * attaching would say 69 instead.
 */
static void server_usage_errors_before_attach(void)
{
	setup();
	char region[64];
	harness_region_name(region, sizeof(region), "noservice");
	static const struct {
		const char *args[6];
		const char *says;
	} cases[] = {
		{{"server", NULL}, "no server command"},
		{{"server", "frob", "1", NULL}, "unknown server command 'frob'"},
		{{"server", "heal", "1", "--frob", NULL},
		 "unknown option '--frob'"},
		{{"server", "list", "extra", NULL}, "unexpected argument 'extra'"},
		{{"server", "kill", "x", NULL}, "'x' is not 0, 1 or 2"},
		{{"server", "kill", "3", NULL}, "'3' is not 0, 1 or 2"},
		{{"server", "kill", NULL}, "which server"},
		{{"server", "kill", "1", "2", NULL}, "unexpected argument '2'"},
		{{"server", "heal", "1", "--wipe", NULL},
		 "'--wipe' is an option of 'server kill' only"},
		{{"server", "skew", "0", NULL}, "give --offset MS and/or --rate"},
		{{"server", "skew", "0", "--rate", NULL}, "needs a value"},
		{{"server", "skew", "0", "--rate", "0", NULL}, "not a rate"},
		{{"server", "skew", "0", "--offset", "soon", NULL},
		 "not a whole number"},
		{{"server", "isolate", "1", NULL}, "--pid PID"},
		{{"server", "isolate", "1", "--pid", "-4", NULL},
		 "out of range"},
		{{"server", "isolate", "1", "--pid", "me", NULL},
		 "not a whole number"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[10];
		int n = 0;
		argv[n++] = "-r";
		argv[n++] = region;
		for (int k = 0; cases[i].args[k] != NULL; k++)
			argv[n++] = (char *)cases[i].args[k];
		argv[n] = NULL;
		char err[2048];
		int code = ctl(NULL, 0, err, sizeof(err), argv[0], argv[1],
			       argv[2], argv[3], argv[4], argv[5], argv[6],
			       argv[7], NULL);
		if (code != 64 || strstr(err, cases[i].says) == NULL ||
		    strncmp(err, "lockctl server: ", 16) != 0 ||
		    strstr(err, "Try 'lockctl server --help'") == NULL ||
		    count_lines(err) > 2 || strstr(err, "Usage:") != NULL)
			fail_msg("lockctl %s %s %s %s: exited %d (expected 64 "
				 "with one line saying \"%s\" and a pointer "
				 "to --help); stderr:\n%s", argv[2],
				 argv[3] ? argv[3] : "",
				 argv[3] && argv[4] ? argv[4] : "",
				 argv[3] && argv[4] && argv[5] ? argv[5] : "",
				 code, cases[i].says, err);
	}
	/* --help is no error, and prints the whole usage, to stdout. */
	char out[4096];
	int code = ctl(out, sizeof(out), NULL, 0, "server", "--help", NULL);
	if (code != 0 || strstr(out, "isolate") == NULL)
		fail_msg("lockctl server --help exited %d; stdout:\n%s", code,
			 out);
	cleanup();
}
HARNESS_CASE(server_usage_errors_before_attach, 60)

/* -r names the region whether it comes before the subcommand, after it,
 * or after its arguments, as lockctl(1) promises for every command. */
static void server_region_option_anywhere(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "anyr", NULL);
	char out[8192], err[2048];
	const char *forms[][5] = {
		{"server", "list", "-r", d.region, NULL},
		{"server", "-r", d.region, "list", NULL},
		{"-r", d.region, "server", "list", NULL},
		{"server", "list", "--region", d.region, NULL},
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		/* The default region is unset, so a lost -r fails. */
		int code = ctl(out, sizeof(out), err, sizeof(err),
			       "-r", "/lm-no-such-region", forms[i][0],
			       forms[i][1], forms[i][2], forms[i][3], NULL);
		if (code != 0 || strstr(out, "SERVER") == NULL)
			fail_msg("lockctl %s %s %s %s: exited %d; stderr: %s",
				 forms[i][0], forms[i][1], forms[i][2],
				 forms[i][3], code, err);
	}
	int code = ctl(out, sizeof(out), err, sizeof(err), "server", "kill",
		       "1", "-r", "/lm-no-such-region", NULL);
	if (code != 69 || strstr(err, "/lm-no-such-region") == NULL)
		fail_msg("server kill 1 -r MISSING exited %d (expected 69 "
			 "naming the region); stderr: %s", code, err);
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(server_region_option_anywhere, 60)

/* ---- what a fault did ----------------------------------------------- */

/*
 * A fault command says what it did, and server list and status show it
 * in the same words and units: a skew as "clock skew +MS ms, rate R" in
 * both (not a rate in one and ppm in the other, nor a bare "true"), the
 * heartbeat's age in ms; `server kill` says when the server counts again.
 */
static void fault_effects_are_shown(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "effects", NULL);
	char out[8192], err[2048];
	int code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		       "server", "skew", "1", "--offset", "500", "--rate",
		       "1.5", NULL);
	if (code != 0 ||
	    strstr(out, "server 1: clock skew +500 ms, rate 1.500") == NULL)
		fail_msg("server skew 1 --offset 500 --rate 1.5 exited %d; "
			 "stdout: %s; stderr: %s", code, out, err);
	static const char *const views[][2] = {{"server", "list"},
					       {"status", NULL}};
	for (size_t v = 0; v < 2; v++) {
		code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
			   views[v][0], views[v][1], NULL);
		const char *row = strstr(out, "\n1 ");
		const char *eol = row != NULL ? strchr(row + 1, '\n') : NULL;
		char line[512] = "";
		if (row != NULL)
			snprintf(line, sizeof(line), "%.*s",
				 (int)(eol ? eol - row - 1 : 200), row + 1);
		if (code != 0 || strstr(out, "HEARTBEAT") == NULL ||
		    strstr(line, " ms ") == NULL ||
		    strstr(line, "clock skew +") == NULL ||
		    strstr(line, "rate 1.500") == NULL ||
		    strstr(out, "ppm") != NULL || strstr(out, "true") != NULL)
			fail_msg("lockctl %s %s exited %d: server 1's row should "
				 "show its heartbeat in ms and \"clock skew "
				 "+... ms, rate 1.500\", in the words of server "
				 "skew; stdout:\n%s\nstderr: %s", views[v][0],
				 views[v][1] ? views[v][1] : "", code, out, err);
	}
	/* JSON keeps exact integers, and says which unit in the key. */
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "status", "--json", NULL);
	if (code != 0 || strstr(out, "\"skew_rate_ppm\":1500000") == NULL)
		fail_msg("status --json exited %d, without skew_rate_ppm "
			 "1500000; stdout: %s", code, out);
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "server", "skew", "1", "--offset", "0", "--rate", "1", NULL);
	if (code != 0 ||
	    strstr(out, "server 1: clock skew +0 ms, rate 1.000") == NULL)
		fail_msg("server skew 1 --offset 0 --rate 1 exited %d; "
			 "stdout: %s", code, out);
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "server", "kill", "2", NULL);
	if (code != 0 || strstr(out, "server 2 (pid ") == NULL ||
	    strstr(out, "killed") == NULL ||
	    strstr(out, "counts again") == NULL)
		fail_msg("server kill 2 exited %d, without saying when server "
			 "2 counts again; stdout: %s; stderr: %s", code, out,
			 err);
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(fault_effects_are_shown, 60)

/* ---- isolation ---------------------------------------------------- */

struct holder {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic uint64_t token;   /* set once the lock is held */
	_Atomic int renew_rc;     /* the first failed renewal's code */
	_Atomic int failed;       /* set with renew_rc */
	_Atomic int stop;         /* parent: end the renewals */
};

/* Take "iso/held" and renew it every 50 ms until a renewal fails. */
static void holder_main(void *arg)
{
	struct holder *h = arg;
	lm_client *c;
	assert_int_equal(lm_connect(h->region, &c), 0);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "iso/held", 600, 5000, &g), 0);
	atomic_store(&h->token, g.token);
	int64_t end = harness_now_ms() + 20000;
	while (!atomic_load(&h->stop) && harness_now_ms() < end) {
		int rc = lm_renew(c, &g, 600);
		if (rc != 0) {
			atomic_store(&h->renew_rc, rc);
			atomic_store(&h->failed, 1);
			break;
		}
		harness_nap_us(50000);
	}
	/* Stay connected, so that status still shows the session. */
	HARNESS_WAIT_FOR(atomic_load(&h->stop), 10000,
			 "the parent never told the holder to stop");
	lm_release(c, &g);
	lm_disconnect(c);
}

/* The session of pid in r, or NULL. */
static struct lm_session *session_of(struct lm_region *r, pid_t pid)
{
	for (uint32_t i = 0; i < r->max_sessions; i++) {
		uint64_t w = lm_session_word(&r->sessions[i]);
		if (LM_SESS_STATE(w) == LM_SESS_LIVE && LM_SESS_PID(w) == pid)
			return &r->sessions[i];
	}
	return NULL;
}

/*
 * A holder isolated from two of the three servers is partitioned from
 * the majority: its renewals fail, its lock goes to the next acquirer
 * with a higher token, and status says who is isolated from what.
 */
static void isolate_cuts_off_a_holder(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "isoh", NULL);
	struct holder *h = harness_shared(sizeof(*h));
	snprintf(h->region, sizeof(h->region), "%s", d.region);
	pid_t p = harness_fork(holder_main, h);
	HARNESS_WAIT_FOR(atomic_load(&h->token) != 0, 5000,
			 "the holder never got its lock");
	char pid[16], out[8192], err[2048];
	snprintf(pid, sizeof(pid), "%d", (int)p);
	int code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		       "server", "isolate", "0", "--pid", pid, NULL);
	if (code != 0 || strstr(out, "1 session") == NULL)
		fail_msg("isolate 0 exited %d; out: %s err: %s", code, out,
			 err);
	/* One server away it still has a majority. */
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "status", NULL);
	if (strstr(out, "isolated from server 0") == NULL)
		fail_msg("status does not show the isolation:\n%s", out);
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "server", "isolate", "1", "--pid", pid, NULL);
	assert_int_equal(code, 0);
	HARNESS_WAIT_FOR(atomic_load(&h->failed), 5000,
			 "a holder isolated from servers 0 and 1 kept "
			 "renewing its lease");
	assert_int_equal(atomic_load(&h->renew_rc), LM_ELEASELOST);
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "status", "--json", NULL);
	if (strstr(out, "\"isolated_from\":[0,1]") == NULL)
		fail_msg("status --json does not show the isolation:\n%s", out);
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "server", "list", NULL);
	char want[64];
	snprintf(want, sizeof(want), "isolates pid %d", (int)p);
	if (strstr(out, want) == NULL)
		fail_msg("server list does not say server 0 isolates the "
			 "holder:\n%s", out);

	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant g;
	int rc = lm_acquire(c, "iso/held", 1000, 3000, &g);
	if (rc != 0)
		fail_msg("the lock of the partitioned holder was not granted "
			 "to the next one: %s", lm_strerror(rc));
	assert_true(g.token > atomic_load(&h->token));
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	atomic_store(&h->stop, 1);
	harness_expect_exit(p, 5000, 0, "holder");

	/* Heal says how many processes it freed. */
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "server", "heal", "0", NULL);
	if (code != 0 || strstr(out, "serves every session") == NULL)
		fail_msg("heal 0 exited %d; out: %s err: %s", code, out, err);
	harness_shared_free(h, sizeof(*h));
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(isolate_cuts_off_a_holder, 60)

struct late {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int go;        /* parent: 1 connect and try, 2 try again */
	_Atomic int tried;     /* how many tries are done */
	_Atomic int rc[2];
	_Atomic uint32_t isolated; /* the session's bits after connect */
	_Atomic uint32_t isolated_after; /* ... after the first try */
};

/* Wait for the parent's go, connect, try the lock (wait 0); again after
 * the second go. */
static void late_main(void *arg)
{
	struct late *l = arg;
	HARNESS_WAIT_FOR(atomic_load(&l->go) >= 1, 10000,
			 "the parent never said go");
	lm_client *c;
	assert_int_equal(lm_connect(l->region, &c), 0);
	atomic_store(&l->isolated, atomic_load(&c->ctx.self->isolated));
	for (int i = 0; i < 2; i++) {
		if (i == 1)
			HARNESS_WAIT_FOR(atomic_load(&l->go) >= 2, 10000,
					 "the parent never said go again");
		lm_grant g;
		int rc = lm_acquire(c, "iso/late", 1000, 0, &g);
		if (rc == 0)
			lm_release(c, &g);
		if (i == 0)
			atomic_store(&l->isolated_after,
				     atomic_load(&c->ctx.self->isolated));
		atomic_store(&l->rc[i], rc);
		atomic_store(&l->tried, i + 1);
	}
	lm_disconnect(c);
}

struct tid_box {
	_Atomic pid_t tid;
	_Atomic int stop;
};

static void *tid_thread(void *arg)
{
	struct tid_box *b = arg;
	atomic_store(&b->tid, (pid_t)syscall(SYS_gettid));
	while (!atomic_load(&b->stop))
		harness_nap_us(1000);
	return NULL;
}

/* A process isolated before it connects starts out partitioned, and
 * heal lets it in. */
static void isolate_before_connect(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "isob", NULL);
	struct late *l = harness_shared(sizeof(*l));
	snprintf(l->region, sizeof(l->region), "%s", d.region);
	pid_t p = harness_fork(late_main, l);
	char pid[16], out[4096], err[2048];
	snprintf(pid, sizeof(pid), "%d", (int)p);
	int code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		       "server", "isolate", "0", "--pid", pid, NULL);
	if (code != 0 || strstr(out, "no session yet") == NULL)
		fail_msg("isolate 0 of a process with no session exited %d; "
			 "out: %s err: %s", code, out, err);
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "isolate", "2", "--pid", pid, NULL), 0);
	atomic_store(&l->go, 1);
	HARNESS_WAIT_FOR(atomic_load(&l->tried) >= 1, 10000,
			 "the late client never tried");
	assert_int_equal(atomic_load(&l->isolated), 0x5u);
	if (atomic_load(&l->rc[0]) != LM_ENOQUORUM)
		fail_msg("a client isolated from servers 0 and 2 before it "
			 "connected got %d (%s), not LM_ENOQUORUM",
			 atomic_load(&l->rc[0]),
			 lm_strerror(atomic_load(&l->rc[0])));
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", d.region,
		   "server", "heal", "0", NULL);
	if (code != 0 || strstr(out, "1 process was isolated") == NULL)
		fail_msg("heal 0 exited %d; out: %s err: %s", code, out, err);
	atomic_store(&l->go, 2);
	HARNESS_WAIT_FOR(atomic_load(&l->tried) >= 2, 10000,
			 "the late client never tried again");
	if (atomic_load(&l->rc[1]) != 0)
		fail_msg("after heal 0 the client still could not acquire: "
			 "%s", lm_strerror(atomic_load(&l->rc[1])));
	harness_expect_exit(p, 5000, 0, "late client");
	/* A thread is not a process: sessions are keyed by the process. */
	pthread_t t;
	struct tid_box box = {0};
	assert_int_equal(pthread_create(&t, NULL, tid_thread, &box), 0);
	HARNESS_WAIT_FOR(atomic_load(&box.tid) != 0, 5000,
			 "the thread never said its id");
	char tid[16];
	snprintf(tid, sizeof(tid), "%d", (int)atomic_load(&box.tid));
	code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "server",
		   "isolate", "1", "--pid", tid, NULL);
	atomic_store(&box.stop, 1);
	pthread_join(t, NULL);
	if (code != 64 || strstr(err, "is a thread of process") == NULL)
		fail_msg("isolating a thread id exited %d; err: %s", code, err);
	/* A process that does not exist cannot be isolated. */
	code = ctl(NULL, 0, err, sizeof(err), "-r", d.region, "server",
		   "isolate", "1", "--pid", pid, NULL);
	if (code != 64 || strstr(err, "no process") == NULL)
		fail_msg("isolating a gone pid exited %d; err: %s", code, err);
	harness_shared_free(l, sizeof(*l));
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(isolate_before_connect, 60)

/*
 * The interleaving the isolation generation exists for: the connecting
 * client reads the rules (none yet) and is stopped before it stores its
 * bits; lockctl then adds rules (it never writes the session itself);
 * the client resumes and stores the stale empty mask. Its first acquire
 * must see that the generation moved and read the rules again, or the
 * process is not isolated.
 */
static void isolate_racing_connect(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "isor", NULL);
	struct late *l = harness_shared(sizeof(*l));
	snprintf(l->region, sizeof(l->region), "%s", d.region);
	char log[256];
	harness_pause_arm("isolation.refresh@1", log, sizeof(log));
	pid_t p = harness_fork(late_main, l);
	harness_pause_disarm();
	atomic_store(&l->go, 1);
	assert_int_equal(harness_wait_paused(log, "isolation.refresh", 5000),
			 p);
	struct lm_region r;
	harness_attach(d.region, &r);
	assert_non_null(session_of(&r, p));
	char pid[16], out[4096], err[2048];
	snprintf(pid, sizeof(pid), "%d", (int)p);
	for (int s = 0; s < 2; s++) {
		char n[2] = {(char)('0' + s), '\0'};
		int code = ctl(out, sizeof(out), err, sizeof(err), "-r",
			       d.region, "server", "isolate", n, "--pid", pid,
			       NULL);
		if (code != 0 || strstr(out, "1 session") == NULL)
			fail_msg("isolate %s exited %d; out: %s err: %s", n,
				 code, out, err);
	}
	harness_resume(p);
	HARNESS_WAIT_FOR(atomic_load(&l->tried) >= 1, 10000,
			 "the client never tried");
	if (atomic_load(&l->isolated_after) != 0x3u ||
	    atomic_load(&l->rc[0]) != LM_ENOQUORUM)
		fail_msg("a rule added while the client connected was lost: "
			 "its bits are %#x and its acquire gave %d (%s)",
			 atomic_load(&l->isolated_after),
			 atomic_load(&l->rc[0]),
			 lm_strerror(atomic_load(&l->rc[0])));
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "heal", "0", NULL), 0);
	atomic_store(&l->go, 2);
	HARNESS_WAIT_FOR(atomic_load(&l->tried) >= 2, 10000,
			 "the client never tried again");
	assert_int_equal(atomic_load(&l->rc[1]), 0);
	harness_expect_exit(p, 5000, 0, "client");
	lm_region_detach(&r);
	harness_shared_free(l, sizeof(*l));
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(isolate_racing_connect, 60)

/*
 * A holder partitioned from servers 0 and 1 fails its renewal, but it
 * cannot reach those servers to give its leases back: behind a real
 * partition they run out on their own. The next acquirer must wait for
 * that, not find the lock free while the holder's valid_until_ns still
 * vouches for it. (Its renewal used to free all three tables.)
 */
static void partitioned_renew_leaves_far_leases(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "isofar", NULL);
	lm_client *h, *c;
	assert_int_equal(lm_connect(d.region, &h), 0);
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant gh, gc;
	assert_int_equal(lm_acquire(h, "iso/far", 1500, 0, &gh), 0);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	/* The rule names this process, so c is isolated too until the
	 * heals below. */
	for (int s = 0; s < 2; s++) {
		char n[2] = {(char)('0' + s), '\0'};
		assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region,
				     "server", "isolate", n, "--pid", pid,
				     NULL), 0);
	}
	int rc = lm_renew(h, &gh, 1500);
	if (rc != LM_ELEASELOST)
		fail_msg("a holder partitioned from two servers renewed: %s",
			 lm_strerror(rc));
	int64_t valid_until = gh.valid_until_ns;
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "heal", "0", NULL), 0);
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "heal", "1", NULL), 0);
	rc = lm_acquire(c, "iso/far", 1000, 0, &gc);
	int64_t now = harness_now_ns();
	if (rc == 0 && now < valid_until)
		fail_msg("the lock was granted %lld ms before the partitioned "
			 "holder's lease ended: its failed renewal freed the "
			 "servers it could not reach",
			 (long long)((valid_until - now) / 1000000));
	if (rc == 0)
		assert_int_equal(lm_release(c, &gc), 0);
	else
		assert_int_equal(rc, LM_EBUSY);
	/* Once those leases end, the lock is the next holder's. */
	rc = lm_acquire(c, "iso/far", 1000, 5000, &gc);
	if (rc != 0)
		fail_msg("the lock never came free after the partitioned "
			 "holder's leases ended: %s", lm_strerror(rc));
	assert_true(gc.token > gh.token);
	assert_int_equal(lm_release(c, &gc), 0);
	assert_int_equal(lm_release(h, &gh), LM_ELEASELOST);
	lm_disconnect(h);
	lm_disconnect(c);
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(partitioned_renew_leaves_far_leases, 60)

struct waiter {
	char region[LM_REGION_NAME_MAX + 2];
	int64_t wait_ms;
	_Atomic int done;
	_Atomic int rc;
};

static void waiter_main(void *arg)
{
	struct waiter *w = arg;
	lm_client *c;
	assert_int_equal(lm_connect(w->region, &c), 0);
	lm_grant g;
	int rc = lm_acquire(c, "iso/queue", 1000, w->wait_ms, &g);
	if (rc == 0)
		lm_release(c, &g);
	atomic_store(&w->rc, rc);
	atomic_store(&w->done, 1);
	lm_disconnect(c);
}

/* The session waiting for lock idx whose pid is p. */
static bool waits(struct lm_region *r, pid_t p)
{
	struct lm_session *s = session_of(r, p);
	return s != NULL && atomic_load(&s->waiting_on) != 0;
}

/*
 * A waiter partitioned from the majority cannot take its turn: the ones
 * behind it must get a free lock, as they do past a stopped waiter.
 */
static void partitioned_waiter_is_passed_over(void)
{
	setup();
	struct harness_lockmgrd d;
	/* h's lease outlasts two forks and two lockctl runs on a loaded
	 * host: the lock is freed by its release, with A and B queued. */
	harness_lockmgrd_start(&d, "isoq", "--max-ttl", "20000", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	lm_client *h;
	assert_int_equal(lm_connect(d.region, &h), 0);
	lm_grant g;
	assert_int_equal(lm_acquire(h, "iso/queue", 20000, 0, &g), 0);
	struct waiter *a = harness_shared(sizeof(*a));
	struct waiter *b = harness_shared(sizeof(*b));
	snprintf(a->region, sizeof(a->region), "%s", d.region);
	snprintf(b->region, sizeof(b->region), "%s", d.region);
	a->wait_ms = 20000;
	b->wait_ms = 4000;
	pid_t pa = harness_fork(waiter_main, a);
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)pa);
	HARNESS_WAIT_FOR(waits(&r, pa), 5000, "A never queued");
	for (int s = 0; s < 2; s++) {
		char n[2] = {(char)('0' + s), '\0'};
		assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region,
				     "server", "isolate", n, "--pid", pid,
				     NULL), 0);
	}
	pid_t pb = harness_fork(waiter_main, b);
	HARNESS_WAIT_FOR(waits(&r, pb), 5000, "B never queued");
	assert_int_equal(lm_release(h, &g), 0);
	HARNESS_WAIT_FOR(atomic_load(&b->done), 6000, "B never finished");
	if (atomic_load(&b->rc) != 0)
		fail_msg("B, behind a waiter partitioned from the majority, "
			 "did not get the free lock: %s",
			 lm_strerror(atomic_load(&b->rc)));
	assert_false(atomic_load(&a->done));
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "heal", "0", NULL), 0);
	HARNESS_WAIT_FOR(atomic_load(&a->done), 6000,
			 "A never got the lock once healed");
	assert_int_equal(atomic_load(&a->rc), 0);
	harness_expect_exit(pa, 5000, 0, "A");
	harness_expect_exit(pb, 5000, 0, "B");
	lm_disconnect(h);
	lm_region_detach(&r);
	harness_shared_free(a, sizeof(*a));
	harness_shared_free(b, sizeof(*b));
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(partitioned_waiter_is_passed_over, 60)

/*
 * lockctl killed after it wrote a rule but before it published the new
 * generation, with the client having looked at the rules in between
 * (after lockctl marked them changing, before the rule): the rule is in
 * the region (status shows it), so the process it names must be
 * isolated at its next operation, not only after some later lockctl.
 */
static void killed_isolate_still_isolates(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "isokill", NULL);
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant g;
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "isolate", "0", "--pid", pid, NULL), 0);
	char log[256];
	harness_pause_arm("isolation.changing,isolation.before_publish", log,
			  sizeof(log));
	char *argv[] = {lockctl, "-r", d.region, "server", "isolate", "1",
			"--pid", pid, NULL};
	pid_t k = harness_spawn(argv, "/dev/null", "/dev/null");
	harness_pause_disarm();
	assert_int_equal(harness_wait_paused(log, "isolation.changing", 5000),
			 k);
	/* Isolated from server 0 only: a majority is still in reach. */
	assert_int_equal(lm_acquire(c, "iso/k", 1000, 0, &g), 0);
	assert_int_equal(lm_release(c, &g), 0);
	harness_resume(k);
	assert_int_equal(harness_wait_paused(log, "isolation.before_publish",
					     5000), k);
	kill(k, SIGKILL);
	int st;
	harness_wait_pid(k, 5000, &st);
	int rc = lm_acquire(c, "iso/k", 1000, 0, &g);
	if (rc == 0)
		fail_msg("the rule a killed lockctl left (servers 0 and 1) "
			 "did not isolate its process: it still acquired");
	assert_int_equal(rc, LM_ENOQUORUM);
	/* The next writer finishes the change. */
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "heal", "1", NULL), 0);
	assert_int_equal(lm_acquire(c, "iso/k", 1000, 0, &g), 0);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(killed_isolate_still_isolates, 60)

/*
 * The supervisor publishes a restarted server's new epoch before it
 * forks the process and records its pid. lockctl server start, seeing
 * the new epoch with no pid yet, once took that for a server that had
 * refused to start (69). Stop the supervisor right after the fork: the
 * start must still succeed.
 */
static void start_while_pid_unrecorded(void)
{
	setup();
	char log[256];
	/* Its first three forks start the servers at boot. */
	harness_pause_arm("supervisor.server_forked@4", log, sizeof(log));
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "startpid", "--restart-delay", "-1", NULL);
	harness_pause_disarm();
	struct lm_region r;
	harness_attach(d.region, &r);
	harness_kill_server(d.region, &r, 1, false);
	char *argv[] = {lockctl, "-r", d.region, "server", "start", "1",
			NULL};
	char o[128], e[128];
	snprintf(o, sizeof(o), "%s/out", dir);
	snprintf(e, sizeof(e), "%s/err", dir);
	pid_t st = harness_spawn(argv, o, e);
	pid_t sup = harness_wait_paused(log, "supervisor.server_forked",
					5000);
	assert_int_equal(sup, d.pid);
	/* lockctl now sees the new epoch and no pid. It polls every
	 * 10 ms: give it a second to (wrongly) give up. */
	int status;
	bool exited = false;
	int64_t until = harness_now_ms() + 1000;
	while (!exited && harness_now_ms() < until) {
		exited = harness_wait_pid(st, 0, &status);
		harness_nap_us(1000);
	}
	harness_resume(sup);
	if (!exited && !harness_wait_pid(st, 10000, &status))
		fail_msg("lockctl server start never returned");
	char err[1024] = "";
	harness_read_file(e, err, sizeof(err));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("lockctl server start, while the supervisor had not "
			 "yet recorded the new server's pid, failed (%d): %s",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
	HARNESS_WAIT_FOR(harness_server_state(&r, 1) == LM_SRV_UP, 10000,
			 "server 1 never came up");
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(start_while_pid_unrecorded, 60)

/* ---- lockctl run -------------------------------------------------- */

struct dier {
	char region[LM_REGION_NAME_MAX + 2];
	_Atomic int held;
};

static void dier_main(void *arg)
{
	struct dier *x = arg;
	lm_client *c;
	assert_int_equal(lm_connect(x->region, &c), 0);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "run/recovered", 2000, 5000, &g), 0);
	atomic_store(&x->held, 1);
	for (;;)
		pause();
}

/* What `lockctl run` exported as LOCKMGR_RECOVERED ("-" if unset). */
static void run_env(const char *region, char *val, size_t n)
{
	char envf[128], cmd[256], err[2048];
	snprintf(envf, sizeof(envf), "%s/env", dir);
	snprintf(cmd, sizeof(cmd), "echo ${LOCKMGR_RECOVERED--} > %s", envf);
	int code = ctl(NULL, 0, err, sizeof(err), "-r", region, "run",
		       "--wait", "5000", "run/recovered", "--", "/bin/sh",
		       "-c", cmd, NULL);
	if (code != 0)
		fail_msg("lockctl run exited %d: %s", code, err);
	if (harness_read_file(envf, val, n) <= 0)
		fail_msg("the command did not write %s", envf);
	val[strcspn(val, "\n")] = '\0';
}

/* The command learns that the holder before it died holding the lock,
 * and a clean release after that tells the next one nothing. */
static void run_says_recovered(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "recov", NULL);
	struct dier *x = harness_shared(sizeof(*x));
	snprintf(x->region, sizeof(x->region), "%s", d.region);
	pid_t p = harness_fork(dier_main, x);
	HARNESS_WAIT_FOR(atomic_load(&x->held), 5000,
			 "the first holder never got the lock");
	kill(p, SIGKILL);
	int st;
	harness_wait_pid(p, 5000, &st);
	char val[32];
	run_env(d.region, val, sizeof(val));
	if (strcmp(val, "1") != 0)
		fail_msg("after its holder was SIGKILLed, the command saw "
			 "LOCKMGR_RECOVERED=\"%s\", not 1", val);
	run_env(d.region, val, sizeof(val));
	if (strcmp(val, "-") != 0)
		fail_msg("after a clean release, the command saw "
			 "LOCKMGR_RECOVERED=\"%s\" (it should be unset)", val);
	harness_shared_free(x, sizeof(*x));
	harness_lockmgrd_stop(&d);
	cleanup();
}
HARNESS_CASE(run_says_recovered, 60)

/* A lease lost because lockmgrd shut down is reported as that, not as
 * an expiry or a takeover. */
static void run_says_service_stopped(void)
{
	setup();
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "stopped", NULL);
	/* CMD says it runs (so the lock is held: a name and a session
	 * come before the grant, and a stop then fails the acquire). */
	char o[128], e[128], ready[128], script[256];
	snprintf(o, sizeof(o), "%s/out", dir);
	snprintf(e, sizeof(e), "%s/err", dir);
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(script, sizeof(script), ": >%s; exec sleep 30", ready);
	char *argv[] = {lockctl, "-r", d.region, "run", "--ttl", "1000",
			"run/stop", "--", "/bin/sh", "-c", script, NULL};
	pid_t run = harness_spawn(argv, o, e);
	HARNESS_WAIT_FOR(access(ready, F_OK) == 0, 5000,
			 "lockctl run's CMD did not start within 5 s");
	harness_lockmgrd_stop(&d);
	harness_expect_exit(run, 10000, 70, "lockctl run");
	char err[2048];
	harness_read_file(e, err, sizeof(err));
	if (strstr(err, "lock service stopped") == NULL)
		fail_msg("lockctl run's message when lockmgrd stopped does "
			 "not say so: %s", err);
	cleanup();
}
HARNESS_CASE(run_says_service_stopped, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(server_usage_errors_before_attach),
		harness_case(server_region_option_anywhere),
		harness_case(fault_effects_are_shown),
		harness_case(isolate_cuts_off_a_holder),
		harness_case(isolate_before_connect),
		harness_case(isolate_racing_connect),
		harness_case(partitioned_renew_leaves_far_leases),
		harness_case(partitioned_waiter_is_passed_over),
		harness_case(killed_isolate_still_isolates),
		harness_case(start_while_pid_unrecorded),
		harness_case(run_says_recovered),
		harness_case(run_says_service_stopped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
