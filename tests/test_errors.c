/*
 * test_errors.c - every documented error, provoked once through the
 * public API against a real lockmgrd (or a missing / foreign region),
 * with its code and a key word of its message; and lockmgrd's refusals
 * (a second supervisor, a foreign region).
 */
#include "harness.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include <stdatomic.h>
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"

static struct harness_lockmgrd d;

static lm_client *connect_or_fail(void)
{
	lm_client *c = NULL;
	int rc = lm_connect(d.region, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %d (%s)", d.region, rc,
			 lm_strerror(rc));
	return c;
}

/* rc must be code, and lm_strerror(code) must mention word. */
#define EXPECT_ERR(rc, code, word)                                         \
	do {                                                               \
		int ee_rc_ = (rc);                                         \
		if (ee_rc_ != (code))                                      \
			fail_msg("%s returned %d (%s), expected %s (%d)",  \
				 #rc, ee_rc_, lm_strerror(ee_rc_), #code,  \
				 (code));                                  \
		expect_message(code, #code, word);                         \
	} while (0)

static void expect_message(int code, const char *name, const char *word)
{
	const char *m = lm_strerror(code);
	if (m == NULL || strcasestr(m, word) == NULL)
		fail_msg("lm_strerror(%s) = \"%s\" does not mention \"%s\"",
			 name, m ? m : "(null)", word);
}

/* ---- errors from a running service ------------------------------- */

static void busy_timeout_lease_name_ttl(void)
{
	harness_lockmgrd_start(&d, "errors", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail();
	lm_grant ga, gb;
	assert_int_equal(lm_max_ttl_ms(a), 2000);

	/* LM_EBUSY, LM_ETIMEDOUT */
	assert_int_equal(lm_acquire(a, "e", 2000, 0, &ga), 0);
	EXPECT_ERR(lm_acquire(b, "e", 2000, 0, &gb), LM_EBUSY, "held");
	EXPECT_ERR(lm_acquire(b, "e", 2000, 50, &gb), LM_ETIMEDOUT,
		   "timed out");

	/* LM_ENOTHELD */
	assert_int_equal(lm_release(a, &ga), 0);
	EXPECT_ERR(lm_release(a, &ga), LM_ENOTHELD, "not held");
	EXPECT_ERR(lm_renew(a, &ga, 1000), LM_ENOTHELD, "not held");

	/* LM_ELEASELOST: a 30 ms lease, expired by its server. */
	int64_t t0 = harness_now_ms();
	assert_int_equal(lm_acquire(a, "lost", 30, 0, &ga), 0);
	/* Wait until someone else can take it (the server expired it or
	 * its lease is visibly over), bounded. */
	int rc;
	int64_t deadline = t0 + 5000;
	while ((rc = lm_acquire(b, "lost", 2000, 0, &gb)) == LM_EBUSY &&
	       harness_now_ms() < deadline)
		harness_nap_us(1000);
	assert_int_equal(rc, 0);
	assert_true(harness_now_ms() - t0 >= 30);
	EXPECT_ERR(lm_release(a, &ga), LM_ELEASELOST, "lease");
	assert_int_equal(lm_release(b, &gb), 0);
	assert_int_equal(lm_acquire(a, "lost2", 30, 0, &ga), 0);
	HARNESS_WAIT_FOR(lm_acquire(b, "lost2", 2000, 0, &gb) == 0, 5000,
			 "another client to take over an expired lease");
	EXPECT_ERR(lm_renew(a, &ga, 1000), LM_ELEASELOST, "lease");
	assert_int_equal(lm_release(b, &gb), 0);

	/* LM_EBADNAME */
	EXPECT_ERR(lm_acquire(a, "", 1000, 0, &ga), LM_EBADNAME, "name");
	char longname[LM_NAME_MAX + 2];
	memset(longname, 'n', LM_NAME_MAX + 1);
	longname[LM_NAME_MAX + 1] = '\0';
	EXPECT_ERR(lm_acquire(a, longname, 1000, 0, &ga), LM_EBADNAME, "name");
	longname[LM_NAME_MAX] = '\0'; /* 255: fine */
	assert_int_equal(lm_acquire(a, longname, 1000, 0, &ga), 0);
	assert_int_equal(lm_release(a, &ga), 0);

	/* LM_EBADTTL */
	EXPECT_ERR(lm_acquire(a, "t", 0, 0, &ga), LM_EBADTTL, "TTL");
	EXPECT_ERR(lm_acquire(a, "t", -5, 0, &ga), LM_EBADTTL, "TTL");
	EXPECT_ERR(lm_acquire(a, "t", 2001, 0, &ga), LM_EBADTTL, "TTL");
	assert_int_equal(lm_acquire(a, "t", 2000, 0, &ga), 0);
	EXPECT_ERR(lm_renew(a, &ga, 0), LM_EBADTTL, "TTL");
	EXPECT_ERR(lm_renew(a, &ga, 2001), LM_EBADTTL, "TTL");
	assert_int_equal(lm_release(a, &ga), 0);

	/* LM_EINVAL */
	EXPECT_ERR(lm_connect(d.region, NULL), LM_EINVAL, "invalid");
	EXPECT_ERR(lm_acquire(NULL, "x", 1000, 0, &ga), LM_EINVAL, "invalid");
	EXPECT_ERR(lm_acquire(a, "x", 1000, 0, NULL), LM_EINVAL, "invalid");
	EXPECT_ERR(lm_renew(NULL, &ga, 1000), LM_EINVAL, "invalid");
	EXPECT_ERR(lm_renew(a, NULL, 1000), LM_EINVAL, "invalid");
	EXPECT_ERR(lm_release(NULL, &ga), LM_EINVAL, "invalid");
	EXPECT_ERR(lm_release(a, NULL), LM_EINVAL, "invalid");
	EXPECT_ERR(lm_disconnect(NULL), LM_EINVAL, "invalid");
	EXPECT_ERR((int)lm_max_ttl_ms(NULL), LM_EINVAL, "invalid");

	assert_int_equal(lm_disconnect(a), 0);
	assert_int_equal(lm_disconnect(b), 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(busy_timeout_lease_name_ttl, 30)

/* LM_ENOQUORUM: two servers SIGKILLed and kept down. */
static void no_quorum(void)
{
	harness_lockmgrd_start(&d, "quorum", "--restart-delay", "-1", NULL);
	lm_client *a = connect_or_fail();
	struct lm_region r;
	char why[256] = "";
	assert_int_equal(lm_region_attach(&r, d.region, why, sizeof(why)), 0);
	pid_t s1 = atomic_load(&r.servers[1]->pid);
	pid_t s2 = atomic_load(&r.servers[2]->pid);
	assert_true(s1 > 0 && s2 > 0 && s1 != s2);
	assert_true(s1 != d.pid && s2 != d.pid);
	assert_int_equal(kill(s1, SIGKILL), 0);
	assert_int_equal(kill(s2, SIGKILL), 0);
	int64_t t0 = harness_now_ms();
	lm_grant g;
	int rc;
	/* Until the supervisor has seen the deaths, a grant may still
	 * succeed; within 3 s it must not (a loaded host's supervisor may
	 * be slow to look; a service that never noticed grants forever). */
	while ((rc = lm_acquire(a, "q", 1000, 0, &g)) == 0) {
		assert_int_equal(lm_release(a, &g), 0);
		if (harness_now_ms() - t0 >= 3000)
			break;
		harness_nap_us(1000);
	}
	int64_t took = harness_now_ms() - t0;
	if (rc != LM_ENOQUORUM || took >= 3000)
		fail_msg("with 2 of 3 servers killed, acquire returned %d (%s) "
			 "after %lld ms, expected LM_ENOQUORUM within 3 s", rc,
			 lm_strerror(rc), (long long)took);
	EXPECT_ERR(lm_acquire(a, "q", 1000, 0, &g), LM_ENOQUORUM, "quorum");
	/* A waiting acquire waits for the quorum to come back, and at its
	 * deadline says why it got nothing. */
	t0 = harness_now_ms();
	EXPECT_ERR(lm_acquire(a, "q", 1000, 300, &g), LM_ENOQUORUM, "quorum");
	assert_true(harness_now_ms() - t0 >= 300);
	/* The servers stay down (--restart-delay -1). */
	for (unsigned i = 1; i < 3; i++)
		assert_int_equal(LM_SRV_STATE(atomic_load(&r.servers[i]->state)),
				 LM_SRV_DOWN);
	lm_region_detach(&r);
	assert_int_equal(lm_disconnect(a), 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(no_quorum, 30)

/* LM_ETABLEFULL: --max-locks 8 and 9 names. */
static void table_full(void)
{
	harness_lockmgrd_start(&d, "full", "--max-locks", "8", NULL);
	lm_client *a = connect_or_fail();
	lm_grant g[8], g8;
	char name[32];
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "full-%d", i);
		assert_int_equal(lm_acquire(a, name, 1000, 0, &g[i]), 0);
	}
	/* Every slot holds a lock in use: no room for a ninth name. */
	EXPECT_ERR(lm_acquire(a, "full-8", 1000, 0, &g8), LM_ETABLEFULL,
		   "full");
	/* Known names still work. */
	assert_int_equal(lm_release(a, &g[3]), 0);
	assert_int_equal(lm_acquire(a, "full-3", 1000, 0, &g[3]), 0);
	/* A name nothing uses makes room: it is reclaimed for the new one. */
	assert_int_equal(lm_release(a, &g[5]), 0);
	assert_int_equal(lm_acquire(a, "full-8", 1000, 0, &g8), 0);
	assert_int_equal(lm_release(a, &g8), 0);
	for (int i = 0; i < 8; i++)
		if (i != 5)
			assert_int_equal(lm_release(a, &g[i]), 0);
	assert_int_equal(lm_disconnect(a), 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(table_full, 30)

/* LM_ESESSIONS: --max-sessions 2 and a third client. */
static void sessions_full(void)
{
	harness_lockmgrd_start(&d, "sess", "--max-sessions", "2", NULL);
	lm_client *a = connect_or_fail(), *b = connect_or_fail(), *c = NULL;
	EXPECT_ERR(lm_connect(d.region, &c), LM_ESESSIONS, "session");
	assert_null(c);
	/* A freed slot can be claimed again. */
	assert_int_equal(lm_disconnect(b), 0);
	b = connect_or_fail();
	assert_int_equal(lm_disconnect(a), 0);
	assert_int_equal(lm_disconnect(b), 0);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(sessions_full, 30)

/*
 * LM_EINCOMPAT from an acquire: a lock whose token mark is at its top
 * (2^64-1, only in a damaged region: fuzz/crashes/fuzz_region/
 * abi12-token-wrap) has no larger token to give. The acquire says the
 * region is damaged instead of handing out token 0; other locks work.
 */
static void token_at_its_top(void)
{
	harness_lockmgrd_start(&d, "tokmax", NULL);
	struct lm_region r;
	harness_attach(d.region, &r);
	int64_t idx = lm_name_lookup(&r, "tokmax/x", 8, 1);
	assert_true(idx >= 0);
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		atomic_store(&lm_slot_of(&r, i, (uint32_t)idx)->token,
			     UINT64_MAX);
	lm_client *a = connect_or_fail();
	lm_grant g;
	EXPECT_ERR(lm_acquire(a, "tokmax/x", 1000, 0, &g), LM_EINCOMPAT,
		   "region");
	EXPECT_ERR(lm_acquire(a, "tokmax/x", 1000, 500, &g), LM_EINCOMPAT,
		   "region");
	assert_int_equal(lm_acquire(a, "tokmax/y", 1000, 0, &g), 0);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_disconnect(a), 0);
	lm_region_detach(&r);
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(token_at_its_top, 30)

/*
 * LM_EOTHERNS: a client in another pid namespace than lockmgrd's. Its
 * pid would be watched as some other process's (or none), so it is
 * refused at connect. Needs CAP_SYS_ADMIN for unshare(CLONE_NEWPID);
 * without it the case says so and checks only the message.
 */
struct otherns_result {
	_Atomic int rc;     /* lm_connect's result + 1, 0 until known */
	_Atomic int pid;    /* the client's pid, in its own namespace */
};

static void otherns_main(void *arg)
{
	struct otherns_result *res = arg;
	if (unshare(CLONE_NEWPID) != 0) {
		atomic_store(&res->rc, 1); /* "0 + 1": not tested */
		atomic_store(&res->pid, -errno);
		return;
	}
	pid_t p = fork(); /* the first child of the new namespace */
	if (p == 0) {
		lm_client *c = NULL;
		int rc = lm_connect(d.region, &c);
		atomic_store(&res->pid, getpid());
		atomic_store(&res->rc, rc + 1);
		_exit(0);
	}
	int status;
	waitpid(p, &status, 0);
}

static void other_namespace_refused(void)
{
	harness_lockmgrd_start(&d, "otherns", NULL);
	struct otherns_result *res = harness_shared(sizeof(*res));
	pid_t p = harness_fork(otherns_main, res);
	harness_expect_exit(p, 10000, 0, "the client in a new pid namespace");
	int pid = atomic_load(&res->pid);
	if (pid < 0) {
		printf("other_namespace_refused: unshare(CLONE_NEWPID): %s; "
		       "not tested here\n", strerror(-pid));
	} else {
		assert_int_equal(pid, 1);
		EXPECT_ERR(atomic_load(&res->rc) - 1, LM_EOTHERNS, "namespace");
	}
	expect_message(LM_EOTHERNS, "LM_EOTHERNS", "lockmgrd");
	/* The service goes on for clients where it runs. */
	lm_client *a = connect_or_fail();
	assert_int_equal(lm_disconnect(a), 0);
	harness_shared_free(res, sizeof(*res));
	harness_lockmgrd_stop(&d);
}
HARNESS_CASE(other_namespace_refused, 30)

/* ---- errors without a service ------------------------------------ */

static void no_service(void)
{
	char name[LM_REGION_NAME_MAX + 2];
	lm_client *c = (lm_client *)0x1;
	/* LM_ENOSUPERVISOR: no region at all. */
	harness_region_name(name, sizeof(name), "missing");
	EXPECT_ERR(lm_connect(name, &c), LM_ENOSUPERVISOR, "lockmgrd");
	assert_null(c);

	/* LM_EINCOMPAT: a foreign object under the name. */
	harness_region_name(name, sizeof(name), "foreign");
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 37u + 11u);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	EXPECT_ERR(lm_connect(name, &c), LM_EINCOMPAT, "region");
	assert_int_equal(shm_unlink(name), 0);

	/* LM_EBADREGION */
	EXPECT_ERR(lm_connect("a/b", &c), LM_EBADREGION, "region");
	EXPECT_ERR(lm_connect("..", &c), LM_EBADREGION, "region");

	/* Every code has its own message; anything else is "unknown". */
	const char *unknown = lm_strerror(-1000);
	expect_message(-1000, "-1000", "unknown");
	expect_message(LM_ERR_FIRST - 1, "LM_ERR_FIRST - 1", "unknown");
	expect_message(-1, "-1 (an errno)", "unknown");
	expect_message(1, "1", "unknown");
	expect_message(INT32_MIN, "INT_MIN", "unknown");
	for (int e = LM_ERR_FIRST; e <= LM_ERR_LAST; e++) {
		const char *m = lm_strerror(e);
		assert_non_null(m);
		if (strcmp(m, unknown) == 0 || strlen(m) < 10)
			fail_msg("lm_strerror(%d) = \"%s\"", e, m);
		for (int f = LM_ERR_FIRST; f < e; f++)
			if (strcmp(m, lm_strerror(f)) == 0)
				fail_msg("codes %d and %d share a message", e,
					 f);
	}
	assert_non_null(lm_strerror(0));
	assert_true(strcmp(lm_strerror(0), unknown) != 0);
	expect_message(LM_ESYS, "LM_ESYS", "system");
}
HARNESS_CASE(no_service, 30)

/* ---- lockmgrd's refusals ----------------------------------------- */

static void second_supervisor_refused(void)
{
	harness_lockmgrd_start(&d, "twice", NULL);
	char dir[64], err[128], bin[512], out[4096];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(err, sizeof(err), "%s/stderr", dir);
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	char *argv[] = {bin, "-r", d.region, "-q", "--ephemeral", NULL};
	int code = harness_run(argv, NULL, err, 10000);
	assert_true(harness_read_file(err, out, sizeof(out)) >= 0);
	if (code != 69)
		fail_msg("a second lockmgrd on %s exited %d, expected 69; "
			 "stderr: %s", d.region, code, out);
	if (strstr(out, "already served") == NULL)
		fail_msg("second lockmgrd's message lacks \"already served\": "
			 "%s", out);
	/* The first one is undisturbed. */
	harness_wait_servers_up(d.region, d.pid, 5000);
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "still", 1000, 0, &g), 0);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_disconnect(a), 0);
	harness_lockmgrd_stop(&d);
	unlink(err);
	rmdir(dir);
}
HARNESS_CASE(second_supervisor_refused, 30)

static void foreign_region_needs_fresh(void)
{
	/* A foreign object where lockmgrd is to serve. */
	char name[LM_REGION_NAME_MAX + 2];
	harness_region_name(name, sizeof(name), "foreign");
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(0xa5 ^ i);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));

	char dir[64], err[128], bin[512], out[4096];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(err, sizeof(err), "%s/stderr", dir);
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	char *argv[] = {bin, "-r", name, "-q", "--max-ttl", "2000",
			"--max-locks", "4096", "--ephemeral", NULL};
	int code = harness_run(argv, NULL, err, 10000);
	harness_read_file(err, out, sizeof(out));
	if (code != 69)
		fail_msg("lockmgrd on a foreign region exited %d, expected 69; "
			 "stderr: %s", code, out);
	if (out[0] == '\0')
		fail_msg("lockmgrd refused a foreign region without a message");
	/* It did not touch the object. */
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, (off_t)sizeof(junk));
	char back[sizeof(junk)];
	assert_int_equal(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	assert_memory_equal(back, junk, sizeof(junk));
	close(fd);

	/* With --fresh it takes the name over and serves. */
	snprintf(d.region, sizeof(d.region), "%s", name);
	char *fresh[] = {bin, "-r", name, "-q", "--max-ttl", "2000",
			 "--max-locks", "4096", "--fresh", "--ephemeral", NULL};
	d.pid = harness_spawn(fresh, NULL, NULL);
	harness_wait_servers_up(d.region, d.pid, 15000);
	lm_client *a = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "fresh", 1000, 0, &g), 0);
	assert_true(g.token > 0);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_disconnect(a), 0);
	harness_lockmgrd_stop(&d);
	unlink(err);
	rmdir(dir);
}
HARNESS_CASE(foreign_region_needs_fresh, 30)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(busy_timeout_lease_name_ttl),
		harness_case(no_quorum),
		harness_case(table_full),
		harness_case(sessions_full),
		harness_case(token_at_its_top),
		harness_case(other_namespace_refused),
		harness_case(no_service),
		harness_case(second_supervisor_refused),
		harness_case(foreign_region_needs_fresh),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
