/*
 * test_backends.c - one conformance suite run against both backends
 * (the shared-memory service and a real one-member etcd), then what
 * only a cluster has: members SIGKILLed under load, and bad addresses.
 *
 * Every case runs in its own process group under a timeout (harness.h).
 * The etcd cases skip, saying so, only when there is no etcd binary
 * (Debian's etcd-server, which setup.sh installs).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/etcd/etcd.h"
#include "client/lockmgr.h"
#include "etcd_harness.h"
#include "resource/store.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"

/* ---- the two backends ------------------------------------------- */

static struct harness_lockmgrd d;
static struct etcd_h eh;
static char addr[600];
static bool on_etcd;

static void start(bool etcd, const char *tag)
{
	on_etcd = etcd;
	if (etcd) {
		char prefix[64];
		snprintf(prefix, sizeof(prefix), "/%s", tag);
		etcd_h_start(&eh, 1, prefix);
		snprintf(addr, sizeof(addr), "%s", eh.addr);
	} else {
		harness_lockmgrd_start(&d, tag, "--max-ttl", "60000", NULL);
		snprintf(addr, sizeof(addr), "%s", d.region);
	}
}

static void stop(void)
{
	if (on_etcd)
		etcd_h_stop(&eh);
	else
		harness_lockmgrd_stop(&d);
}

static lm_client *conn(void)
{
	lm_client *c = NULL;
	int rc = lm_connect(addr, &c);
	if (rc != 0)
		fail_msg("lm_connect(%s): %d (%s)", addr, rc, lm_strerror(rc));
	return c;
}

/* How many wait for `lock` (its holder not counted). */
static unsigned waiters(const char *lock)
{
	if (on_etcd) {
		lm_client *c = conn();
		struct etcd_waiter *w;
		size_t n;
		int64_t rev;
		assert_int_equal(etcd_list(lm_etcd_of(c), &w, &n, &rev), 0);
		unsigned k = 0;
		for (size_t i = 0; i < n; i++)
			k += strcmp(w[i].name, lock) == 0;
		free(w);
		lm_disconnect(c);
		return k > 0 ? k - 1 : 0;
	}
	struct lm_region r;
	char why[256];
	assert_int_equal(lm_region_attach(&r, d.region, why, sizeof(why)), 0);
	int64_t idx = lm_name_lookup(&r, lock, strlen(lock), 1);
	unsigned k = idx < 0 ? 0
			     : LM_WAITERS_COUNT(atomic_load(
				       &lm_queue_of(&r, (uint32_t)idx)->waiters));
	lm_region_detach(&r);
	return k;
}

/* Shared with the forked clients. */
enum { NPROC = 4, NROUNDS = 30, NLOG = NPROC * NROUNDS };
struct shared {
	uint64_t count;          /* plain: the lock guards it */
	uint64_t log[NLOG + 8];  /* token of each critical section */
	_Atomic uint32_t seq;
	uint32_t order[4];
	int rc[4];
	uint64_t token[4];
	uint32_t flags[4];
	int64_t when[4];
};
static struct shared *sh;

/* ---- exclusion with an exact counter, tokens strictly increasing - */

static void excl_client(void *arg)
{
	(void)arg;
	lm_client *c = conn();
	for (int k = 0; k < NROUNDS; k++) {
		lm_grant g;
		int rc = lm_acquire(c, "/conf/excl", 5000, 20000, &g);
		if (rc != 0)
			fail_msg("acquire: %d (%s)", rc, lm_strerror(rc));
		uint64_t n = sh->count;
		sh->log[n] = g.token;
		harness_nap_us(200); /* widen the window a second holder
				      * would need */
		sh->count = n + 1;
		rc = lm_release(c, &g);
		if (rc != 0)
			fail_msg("release: %d (%s)", rc, lm_strerror(rc));
	}
	lm_disconnect(c);
}

static void exclusion(void)
{
	sh = harness_shared(sizeof(*sh));
	pid_t p[NPROC];
	for (int i = 0; i < NPROC; i++)
		p[i] = harness_fork(excl_client, NULL);
	for (int i = 0; i < NPROC; i++)
		harness_expect_exit(p[i], 60000, 0, "exclusion client");
	if (sh->count != NLOG)
		fail_msg("count %llu after %d critical sections: two held the "
			 "lock at once", (unsigned long long)sh->count, NLOG);
	for (int i = 1; i < NLOG; i++)
		if (sh->log[i] <= sh->log[i - 1])
			fail_msg("token %llu of section %d is not above %llu "
				 "of the one before",
				 (unsigned long long)sh->log[i], i,
				 (unsigned long long)sh->log[i - 1]);
}

/* ---- try-lock and timeouts --------------------------------------- */

static void trylock_timeout(void)
{
	lm_client *a = conn(), *b = conn();
	lm_grant g, h;
	/* a's lease (30 s) outlasts b's tries on a loaded host, and is far
	 * beyond the 10 s bound of b's 400 ms wait. */
	assert_int_equal(lm_acquire(a, "/conf/try", 30000, 0, &g), 0);
	assert_int_equal(lm_acquire(b, "/conf/try", 5000, 0, &h), LM_EBUSY);
	int64_t t0 = harness_now_ms();
	assert_int_equal(lm_acquire(b, "/conf/try", 5000, 400, &h),
			 LM_ETIMEDOUT);
	int64_t took = harness_now_ms() - t0;
	if (took < 400 || took > 10000)
		fail_msg("a 400 ms wait took %lld ms", (long long)took);
	/* Neither failure left a waiter behind. */
	assert_int_equal(waiters("/conf/try"), 0);
	assert_int_equal(lm_release(a, &g), 0);
	assert_int_equal(lm_release(a, &g), LM_ENOTHELD);
	assert_int_equal(lm_acquire(b, "/conf/try", 5000, 0, &h), 0);
	assert_true(h.token > g.token);
	assert_int_equal(h.flags & LM_GRANT_RECOVERED, 0);
	assert_int_equal(lm_release(b, &h), 0);
	lm_disconnect(a);
	lm_disconnect(b);
}

/* ---- FIFO --------------------------------------------------------- */

static void fifo_waiter(void *arg)
{
	int i = (int)(intptr_t)arg;
	lm_client *c = conn();
	lm_grant g;
	sh->rc[i] = lm_acquire(c, "/conf/fifo", 5000, 20000, &g);
	sh->order[i] = atomic_fetch_add(&sh->seq, 1) + 1;
	sh->token[i] = g.token;
	if (sh->rc[i] == 0)
		lm_release(c, &g);
	lm_disconnect(c);
}

static void fifo(void)
{
	sh = harness_shared(sizeof(*sh));
	lm_client *a = conn();
	lm_grant g;
	assert_int_equal(lm_acquire(a, "/conf/fifo", 5000, 0, &g), 0);
	pid_t p[3];
	for (int i = 0; i < 3; i++) {
		p[i] = harness_fork(fifo_waiter, (void *)(intptr_t)i);
		HARNESS_WAIT_FOR(waiters("/conf/fifo") == (unsigned)i + 1,
				 10000, "waiter %d to queue (%u queued)", i,
				 waiters("/conf/fifo"));
	}
	assert_int_equal(lm_release(a, &g), 0);
	for (int i = 0; i < 3; i++)
		harness_expect_exit(p[i], 20000, 0, "fifo waiter");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sh->rc[i], 0);
		if (sh->order[i] != (uint32_t)i + 1)
			fail_msg("waiter %d queued %d-th was served %u-th", i,
				 i + 1, sh->order[i]);
		if (i > 0 && sh->token[i] <= sh->token[i - 1])
			fail_msg("FIFO tokens not increasing");
	}
	lm_disconnect(a);
}

/* ---- a dead client's lock ---------------------------------------- */

static int pipefd[2];

static void doomed(void *arg)
{
	(void)arg;
	lm_client *c = conn();
	lm_grant g;
	assert_int_equal(lm_acquire(c, "/conf/dead", 1000, 0, &g), 0);
	sh->token[0] = g.token;
	assert_int_equal(write(pipefd[1], "x", 1), 1);
	for (;;)
		pause();
}

static void dead_client(void)
{
	sh = harness_shared(sizeof(*sh));
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid_t p = harness_fork(doomed, NULL);
	harness_read_byte(pipefd[0], 10000, "the doomed holder's grant");
	int64_t t = harness_now_ms();
	assert_int_equal(kill(p, SIGKILL), 0);
	harness_reap(p, 5000, "SIGKILLed holder");
	lm_client *c = conn();
	lm_grant g;
	/* 10 s allows a loaded host's etcd to revoke a 1 s lease; the wait
	 * (20 s) goes beyond it, to tell a late free from none. */
	int rc = lm_acquire(c, "/conf/dead", 1000, 20000, &g);
	if (rc != 0)
		fail_msg("after the holder's SIGKILL: %d (%s)", rc,
			 lm_strerror(rc));
	int64_t took = harness_now_ms() - t;
	fprintf(stderr, "  lock free %lld ms after SIGKILL (lease 1 s)\n",
		(long long)took);
	if (took > 10000)
		fail_msg("a dead holder's 1 s lease kept the lock %lld ms",
			 (long long)took);
	if (!(g.flags & LM_GRANT_RECOVERED))
		fail_msg("no LM_GRANT_RECOVERED after a dead holder");
	assert_true(g.token > sh->token[0]);
	assert_int_equal(lm_release(c, &g), 0);
	/* A clean release is not a recovery. */
	assert_int_equal(lm_acquire(c, "/conf/dead", 1000, 0, &g), 0);
	assert_int_equal(g.flags & LM_GRANT_RECOVERED, 0);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
}

/* ---- a zombie fenced by the store -------------------------------- */

static char store_path[300];

static void zombie(void *arg)
{
	(void)arg;
	lm_client *c = conn();
	fs_store *s;
	assert_int_equal(fs_open(store_path, 0, &s), 0);
	lm_grant g;
	assert_int_equal(lm_acquire(c, "/conf/zombie", 1000, 0, &g), 0);
	sh->token[0] = g.token;
	uint64_t hi;
	sh->rc[0] = fs_write(s, g.token, "z1", 2, &hi);
	raise(SIGSTOP); /* a GC pause, past the lease */
	sh->rc[1] = fs_write(s, g.token, "z2", 2, &hi);
	sh->rc[2] = lm_renew(c, &g, 1000);
	sh->rc[3] = lm_release(c, &g);
	fs_close(s);
	lm_disconnect(c);
}

static void zombie_fenced(void)
{
	sh = harness_shared(sizeof(*sh));
	char dir[256];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(store_path, sizeof(store_path), "%s/store", dir);
	fs_store *s;
	assert_int_equal(fs_open(store_path, FS_CREATE, &s), 0);
	pid_t p = harness_fork(zombie, NULL);
	HARNESS_WAIT_FOR(harness_proc_state(p) == 'T', 10000,
			 "the holder to stop itself");
	lm_client *c = conn();
	lm_grant g;
	int rc = lm_acquire(c, "/conf/zombie", 1000, 10000, &g);
	if (rc != 0)
		fail_msg("taking over from the zombie: %d (%s)", rc,
			 lm_strerror(rc));
	assert_true(g.token > sh->token[0]);
	uint64_t hi;
	assert_int_equal(fs_write(s, g.token, "new", 3, &hi), 0);
	assert_int_equal(kill(p, SIGCONT), 0);
	harness_expect_exit(p, 10000, 0, "zombie");
	assert_int_equal(sh->rc[0], 0);
	if (sh->rc[1] != FS_ESTALE)
		fail_msg("the zombie's write after the takeover: %d, not "
			 "FS_ESTALE", sh->rc[1]);
	assert_int_equal(sh->rc[2], LM_ELEASELOST);
	assert_int_equal(sh->rc[3], LM_ELEASELOST);
	assert_int_equal(lm_release(c, &g), 0);
	fs_close(s);
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
}

/* ---- lease loss reported ----------------------------------------- */

static void lease_lost(void)
{
	lm_client *a = conn(), *b = conn();
	lm_grant g, h;
	assert_int_equal(lm_acquire(a, "/conf/lost", 1000, 0, &g), 0);
	assert_int_equal(lm_renew(a, &g, 1000), 0);
	/* a stops renewing; b waits for the lease to end. */
	int rc = lm_acquire(b, "/conf/lost", 1000, 10000, &h);
	if (rc != 0)
		fail_msg("waiting out a lease: %d (%s)", rc, lm_strerror(rc));
	assert_true(harness_now_ns() >= g.valid_until_ns);
	assert_true(h.flags & LM_GRANT_RECOVERED);
	assert_int_equal(lm_renew(a, &g, 1000), LM_ELEASELOST);
	assert_int_equal(lm_release(a, &g), LM_ELEASELOST);
	/* ...and the loser touched nothing of the new holder's. */
	assert_int_equal(lm_renew(b, &h, 1000), 0);
	assert_int_equal(lm_release(b, &h), 0);
	lm_disconnect(a);
	lm_disconnect(b);
}

/* ---- the cases, once per backend --------------------------------- */

#define BOTH(fn, tag)                                                    \
	static void shm_##fn(void)                                       \
	{                                                                \
		start(false, tag);                                       \
		fn();                                                    \
		stop();                                                  \
	}                                                                \
	static void etcd_##fn(void)                                      \
	{                                                                \
		start(true, tag);                                        \
		fn();                                                    \
		stop();                                                  \
	}

BOTH(exclusion, "excl")
BOTH(trylock_timeout, "try")
BOTH(fifo, "fifo")
BOTH(dead_client, "dead")
BOTH(zombie_fenced, "zomb")
BOTH(lease_lost, "lost")

/* ---- cluster faults ---------------------------------------------- */

enum { FW = 4, FREC = 20000 };
struct frec {
	uint64_t token;
	int64_t start, end; /* when acquire returned; min(release, valid) */
};
struct fshared {
	_Atomic uint32_t stop;
	_Atomic uint64_t attempted, succeeded;
	_Atomic uint32_t n;
	struct frec rec[FREC];
};
static struct fshared *fsh;

static void fault_worker(void *arg)
{
	(void)arg;
	lm_client *c = conn();
	while (atomic_load(&fsh->stop) == 0) {
		lm_grant g;
		atomic_fetch_add(&fsh->attempted, 1);
		int rc = lm_acquire(c, "/faults/x", 1000, 3000, &g);
		if (rc != 0)
			continue; /* an election, or the wait ran out */
		int64_t t = harness_now_ns();
		atomic_fetch_add(&fsh->succeeded, 1);
		uint32_t k = atomic_fetch_add(&fsh->n, 1);
		harness_nap_us(2000);
		int64_t end = harness_now_ns();
		if (k < FREC) {
			fsh->rec[k].token = g.token;
			fsh->rec[k].start = t;
			fsh->rec[k].end = end < g.valid_until_ns ? end
								 : g.valid_until_ns;
		}
		lm_release(c, &g);
	}
	lm_disconnect(c);
}

static int by_start(const void *a, const void *b)
{
	const struct frec *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Wait until `more` grants succeed after now: the service is back. */
static void progress(uint64_t more, const char *after)
{
	uint64_t base = atomic_load(&fsh->succeeded);
	int64_t t0 = harness_now_ms();
	HARNESS_WAIT_FOR(atomic_load(&fsh->succeeded) >= base + more, 20000,
			 "the service to grant again after %s", after);
	fprintf(stderr, "  %llu grants within %lld ms after %s\n",
		(unsigned long long)more,
		(long long)(harness_now_ms() - t0), after);
}

static void cluster_faults(void)
{
	etcd_h_start(&eh, 3, "/faults");
	snprintf(addr, sizeof(addr), "%s", eh.addr);
	on_etcd = true;
	fsh = harness_shared(sizeof(*fsh));
	pid_t p[FW];
	for (int i = 0; i < FW; i++)
		p[i] = harness_fork(fault_worker, NULL);
	progress(20, "start");
	unsigned leader = etcd_h_leader(&eh);
	etcd_h_kill(&eh, leader);
	fprintf(stderr, "  SIGKILLed the leader, member %u\n", leader);
	progress(20, "the leader's SIGKILL");
	etcd_h_restart(&eh, leader);
	unsigned l2 = etcd_h_leader(&eh), follower = (l2 + 1) % 3;
	etcd_h_kill(&eh, follower);
	fprintf(stderr, "  SIGKILLed a follower, member %u\n", follower);
	progress(20, "a follower's SIGKILL");
	etcd_h_restart(&eh, follower);
	progress(10, "the follower's restart");
	atomic_store(&fsh->stop, 1);
	for (int i = 0; i < FW; i++)
		harness_expect_exit(p[i], 20000, 0, "fault worker");
	uint32_t n = atomic_load(&fsh->n);
	if (n > FREC)
		n = FREC;
	qsort(fsh->rec, n, sizeof(fsh->rec[0]), by_start);
	for (uint32_t i = 1; i < n; i++) {
		if (fsh->rec[i].start < fsh->rec[i - 1].end)
			fail_msg("two holders with unexpired leases: token "
				 "%llu from %lld, token %llu until %lld",
				 (unsigned long long)fsh->rec[i].token,
				 (long long)fsh->rec[i].start,
				 (unsigned long long)fsh->rec[i - 1].token,
				 (long long)fsh->rec[i - 1].end);
		if (fsh->rec[i].token <= fsh->rec[i - 1].token)
			fail_msg("token %llu after %llu",
				 (unsigned long long)fsh->rec[i].token,
				 (unsigned long long)fsh->rec[i - 1].token);
	}
	fprintf(stderr, "  acquires attempted %llu, succeeded %llu\n",
		(unsigned long long)atomic_load(&fsh->attempted),
		(unsigned long long)atomic_load(&fsh->succeeded));
	etcd_h_stop(&eh);
}

/* ---- bad input --------------------------------------------------- */

/* A server that answers every request with a 404 page, not etcd. */
static int not_etcd_fd;

static void not_etcd(void *arg)
{
	(void)arg;
	for (;;) {
		int s = accept(not_etcd_fd, NULL, NULL);
		if (s < 0)
			continue;
		char buf[4096];
		ssize_t k = read(s, buf, sizeof(buf));
		(void)k;
		const char *ans = "HTTP/1.1 404 Not Found\r\nContent-Length: "
				  "9\r\nConnection: close\r\n\r\nnot etcd\n";
		k = write(s, ans, strlen(ans));
		close(s);
	}
}

static void expect_connect(const char *a, int want)
{
	lm_client *c = NULL;
	int64_t t0 = harness_now_ms();
	int rc = lm_connect(a, &c);
	if (rc != want)
		fail_msg("lm_connect(%s): %d (%s), expected %d", a, rc,
			 lm_strerror(rc), want);
	if (harness_now_ms() - t0 > 5000)
		fail_msg("lm_connect(%s) took %lld ms", a,
			 (long long)(harness_now_ms() - t0));
}

static void bad_input(void)
{
	not_etcd_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(not_etcd_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(not_etcd_fd, 8), 0);
	assert_int_equal(getsockname(not_etcd_fd, (struct sockaddr *)&sa, &len), 0);
	pid_t srv = harness_fork(not_etcd, NULL);
	char a[128];
	/* Nothing listens on a port we just closed. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sb = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t lb = sizeof(sb);
	assert_int_equal(bind(fd, (struct sockaddr *)&sb, sizeof(sb)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sb, &lb), 0);
	close(fd);
	snprintf(a, sizeof(a), "etcd://127.0.0.1:%d", ntohs(sb.sin_port));
	expect_connect(a, LM_ENOSUPERVISOR);
	snprintf(a, sizeof(a), "etcd://127.0.0.1:%d/x", ntohs(sa.sin_port));
	expect_connect(a, LM_EINCOMPAT);
	expect_connect("etcd://", LM_EBADREGION);
	expect_connect("etcd://127.0.0.1:99999", LM_EBADREGION);
	expect_connect("etcd://127.0.0.1:2379,", LM_EBADREGION);
	expect_connect("etcd://a b:2379", LM_EBADREGION);
	expect_connect("etcd://127.0.0.1:2379/bad prefix", LM_EBADREGION);
	expect_connect("etcd://127.0.0.1:2379/a//b", LM_EBADREGION);
	expect_connect("etcd://127.0.0.1:2379/x$y", LM_EBADREGION);
	expect_connect("etcd://127.0.0.1:2379/", LM_EBADREGION);
	kill(srv, SIGKILL);
	harness_reap(srv, 5000, "the not-etcd server");
	close(not_etcd_fd);
}

/* lockctl, unchanged, against etcd: run, status, and the errors. */
static void expect_ctl(const char *dir, int code, const char *want,
		       const char *a1, const char *a2, const char *a3,
		       const char *a4, const char *a5, const char *a6)
{
	char out[8192], err[8192];
	int rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), a1, a2,
			     a3, a4, a5, a6, NULL);
	if (rc != code)
		fail_msg("lockctl %s %s %s %s: exit %d, expected %d; "
			 "stdout: %s stderr: %s", a1, a2, a3 ? a3 : "",
			 a4 ? a4 : "", rc, code, out, err);
	if (want != NULL && strstr(out, want) == NULL &&
	    strstr(err, want) == NULL)
		fail_msg("lockctl %s %s %s: no '%s' in stdout: %s stderr: %s",
			 a1, a2, a3 ? a3 : "", want, out, err);
}

static void etcd_lockctl(void)
{
	start(true, "ctl");
	char dir[256];
	harness_tmpdir(dir, sizeof(dir));
	expect_ctl(dir, 0, NULL, "-r", addr, "run", "/c/a", "--",
		   "true");
	lm_client *c = conn();
	lm_grant g;
	/* Leases that outlast the lockctl runs below (each loads libcurl
	 * and talks to etcd) on a loaded host, released at the end. */
	assert_int_equal(lm_acquire(c, "/c/held", 60000, 0, &g), 0);
	expect_ctl(dir, 75, "held by another", "-r", addr, "run", "--wait=0",
		   "/c/held", "true");
	expect_ctl(dir, 0, "/c/held", "-r", addr, "status", NULL, NULL,
		   NULL);
	expect_ctl(dir, 0, "\"name\":\"/c/held\"", "-r", addr, "status",
		   "--json", NULL, NULL);
	setenv("LOCKMGR_REGION", addr, 1);
	expect_ctl(dir, 0, "BACKEND etcd", "status", NULL, NULL, NULL, NULL,
		   NULL);
	unsetenv("LOCKMGR_REGION");
	expect_ctl(dir, 64, "shared-memory service", "-r", addr, "server",
		   "list", NULL, NULL);
	expect_ctl(dir, 64, "shared-memory service", "-r", addr, "top",
		   "--once", NULL, NULL);
	expect_ctl(dir, 64, "bad etcd address", "-r", "etcd://:1", "status",
		   NULL, NULL, NULL);
	expect_ctl(dir, 64, "bad prefix", "-r", "etcd://127.0.0.1:1/a b",
		   "run", "/x", "true", NULL);
	expect_ctl(dir, 69, "no endpoint", "-r", "etcd://127.0.0.1:1",
		   "run", "/x", "true", NULL);
	expect_ctl(dir, 69, "no endpoint", "-r", "etcd://127.0.0.1:1",
		   "status", NULL, NULL, NULL);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
	stop();
}

/* lockctl run --slots and status on an etcd semaphore. */
static void etcd_sem_lockctl(void)
{
	start(true, "semctl");
	char dir[256], out[8192], err[8192];
	harness_tmpdir(dir, sizeof(dir));
	lm_client *c = conn();
	lm_grant g;
	assert_int_equal(lm_sem_acquire(c, "/c/sem", 2, 60000, 0, &g), 0);
	/* The second slot is CMD's, and CMD learns which. */
	int rc = harness_ctl(dir, out, sizeof(out), err, sizeof(err), "-r",
			     addr, "run", "--slots=2", "--wait=0", "/c/sem",
			     "--", "sh", "-c",
			     "echo slot=$LOCKMGR_SLOT token=$LOCKMGR_TOKEN",
			     NULL);
	if (rc != 0)
		fail_msg("lockctl run --slots=2 on etcd: exit %d; stdout: %s "
			 "stderr: %s", rc, out, err);
	char want[64];
	snprintf(want, sizeof(want), "slot=%d token=", 1 - lm_sem_slot(&g));
	if (strstr(out, want) == NULL)
		fail_msg("no '%s' in: %s", want, out);
	/* Full: a try is refused (75), another count is LOCK's misuse. */
	lm_grant h;
	assert_int_equal(lm_sem_acquire(c, "/c/sem", 2, 60000, 0, &h), 0);
	setenv("LOCKMGR_REGION", addr, 1);
	expect_ctl(dir, 75, NULL, "run", "--slots=2", "--wait=0", "/c/sem",
		   "true", NULL);
	expect_ctl(dir, 64, NULL, "run", "--slots=3", "--wait=0", "/c/sem",
		   "true", NULL);
	unsetenv("LOCKMGR_REGION");
	expect_ctl(dir, 0, "[slot 1/2]", "-r", addr, "status", NULL, NULL,
		   NULL);
	expect_ctl(dir, 0, "\"slots\":2,\"holders\":[", "-r", addr, "status",
		   "--json", NULL, NULL);
	assert_int_equal(lm_release(c, &h), 0);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
	stop();
}

/* What the etcd backend cannot do says so. */
static void etcd_notsup(void)
{
	start(true, "nots");
	lm_client *c = conn();
	lm_grant g;
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_S, 1000, 0);
	assert_int_equal(lm_acquire_ex(c, "/n", &o, &g), LM_ENOTSUP);
	assert_int_equal(lm_acquire(c, "/n", 1000, 0, &g), 0);
	assert_int_equal(lm_convert(c, &g, LM_MODE_S, 1000, 0), LM_ENOTSUP);
	assert_int_equal(lm_release(c, &g), 0);
	lm_disconnect(c);
	stop();
}

/* ---- counting semaphores ------------------------------------------ */

/* How many wait for semaphore `name` of `slots` (its holders not
 * counted). */
static unsigned sem_waiters(const char *name, unsigned slots)
{
	if (on_etcd) {
		unsigned k = waiters(name) + 1; /* every key of the name */
		return k > slots ? k - slots : 0;
	}
	return waiters(name); /* the gate's queue (client/semaphore.c) */
}

enum { SEM_SLOTS = 3, SEM_PROCS = 6, SEM_ROUNDS = 12,
       SEM_LOG = SEM_PROCS * SEM_ROUNDS };
struct sem_shared {
	_Atomic uint32_t inside;      /* holders now */
	_Atomic uint32_t max_inside;
	_Atomic uint32_t over;        /* times inside exceeded the slots */
	_Atomic uint32_t slot_clash;  /* a slot taken by two at once */
	_Atomic uint32_t slot_busy[SEM_SLOTS];
	_Atomic uint32_t n;
	uint64_t token[SEM_LOG];  /* slot << 48 | token, on shared memory */
};
static struct sem_shared *ss;

static void sem_client(void *arg)
{
	(void)arg;
	lm_client *c = conn();
	for (int k = 0; k < SEM_ROUNDS; k++) {
		lm_grant g;
		int rc = lm_sem_acquire(c, "/conf/sem", SEM_SLOTS, 5000, 30000,
					&g);
		if (rc != 0)
			fail_msg("sem acquire: %d (%s)", rc, lm_strerror(rc));
		int slot = lm_sem_slot(&g);
		if (slot < 0 || slot >= SEM_SLOTS)
			fail_msg("slot %d of a semaphore of %d", slot,
				 SEM_SLOTS);
		if (atomic_exchange(&ss->slot_busy[slot], 1) != 0)
			atomic_fetch_add(&ss->slot_clash, 1);
		uint32_t in = atomic_fetch_add(&ss->inside, 1) + 1;
		if (in > SEM_SLOTS)
			atomic_fetch_add(&ss->over, 1);
		uint32_t m = atomic_load(&ss->max_inside);
		while (in > m &&
		       !atomic_compare_exchange_weak(&ss->max_inside, &m, in))
			;
		/* On shared memory a token is its slot's; on etcd, the
		 * semaphore's (a key's create revision). */
		ss->token[atomic_fetch_add(&ss->n, 1)] =
			on_etcd ? g.token : (uint64_t)slot << 48 | g.token;
		harness_nap_us(20000); /* long enough for the others to
					* pile up, even over HTTP */
		atomic_fetch_sub(&ss->inside, 1);
		atomic_store(&ss->slot_busy[slot], 0);
		rc = lm_release(c, &g);
		if (rc != 0)
			fail_msg("sem release: %d (%s)", rc, lm_strerror(rc));
	}
	lm_disconnect(c);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Never more than N holders, each slot held by one at a time, every
 * grant's token its own (its slot's own, on shared memory). */
static void sem_bound(void)
{
	ss = harness_shared(sizeof(*ss));
	pid_t p[SEM_PROCS];
	for (int i = 0; i < SEM_PROCS; i++)
		p[i] = harness_fork(sem_client, NULL);
	for (int i = 0; i < SEM_PROCS; i++)
		harness_expect_exit(p[i], 90000, 0, "semaphore client");
	assert_int_equal(atomic_load(&ss->n), SEM_LOG);
	if (atomic_load(&ss->over) != 0)
		fail_msg("more than %d holders at once, %u times (max %u)",
			 SEM_SLOTS, atomic_load(&ss->over),
			 atomic_load(&ss->max_inside));
	if (atomic_load(&ss->slot_clash) != 0)
		fail_msg("a slot held by two at once, %u times",
			 atomic_load(&ss->slot_clash));
	/* ...and it is no mutex: holders did overlap. */
	if (atomic_load(&ss->max_inside) < 2)
		fail_msg("never two holders at once in %d grants of 20 ms",
			 SEM_LOG);
	uint64_t t[SEM_LOG];
	memcpy(t, ss->token, sizeof(t));
	qsort(t, SEM_LOG, sizeof(t[0]), cmp_u64);
	for (int i = 1; i < SEM_LOG; i++)
		if (t[i] == t[i - 1])
			fail_msg("token %llu handed out twice",
				 (unsigned long long)t[i]);
	fprintf(stderr, "  %d grants, at most %u holders at once\n", SEM_LOG,
		atomic_load(&ss->max_inside));
}

static void sem_fifo_waiter(void *arg)
{
	int i = (int)(intptr_t)arg;
	lm_client *c = conn();
	lm_grant g;
	sh->rc[i] = lm_sem_acquire(c, "/conf/semq", 2, 5000, 20000, &g);
	sh->order[i] = atomic_fetch_add(&sh->seq, 1) + 1;
	sh->token[i] = g.token;
	sh->flags[i] = (uint32_t)lm_sem_slot(&g);
	if (sh->rc[i] == 0)
		lm_release(c, &g);
	lm_disconnect(c);
}

/* A full semaphore: a try says LM_EBUSY at once, a wait times out and
 * leaves no waiter; the name is no lock's nor another count's; waiters
 * are served first come, first served. */
static void sem_try_fifo(void)
{
	sh = harness_shared(sizeof(*sh));
	lm_client *a = conn(), *b = conn();
	lm_grant g1, g2, h;
	/* a's leases (30 s) outlast the tries and the queueing below on a
	 * loaded host, and are far beyond the 10 s bounds of b's tries. */
	assert_int_equal(lm_sem_acquire(a, "/conf/semq", 2, 30000, 0, &g1),
			 0);
	assert_int_equal(lm_sem_acquire(a, "/conf/semq", 2, 30000, 0, &g2),
			 0);
	/* Tokens order the grants of one slot; on etcd they are the
	 * keys' create revisions, distinct across slots too. */
	assert_true(lm_sem_slot(&g1) != lm_sem_slot(&g2));
	if (on_etcd)
		assert_true(g1.token != g2.token);
	int64_t t0 = harness_now_ms();
	assert_int_equal(lm_sem_acquire(b, "/conf/semq", 2, 5000, 0, &h),
			 LM_EBUSY);
	if (harness_now_ms() - t0 > 10000)
		fail_msg("a try on a full semaphore took %lld ms",
			 (long long)(harness_now_ms() - t0));
	t0 = harness_now_ms();
	assert_int_equal(lm_sem_acquire(b, "/conf/semq", 2, 5000, 400, &h),
			 LM_ETIMEDOUT);
	int64_t took = harness_now_ms() - t0;
	if (took < 400 || took > 10000)
		fail_msg("a 400 ms wait took %lld ms", (long long)took);
	assert_int_equal(sem_waiters("/conf/semq", 2), 0);
	/* One name, one kind. */
	assert_int_equal(lm_acquire(b, "/conf/semq", 5000, 0, &h), LM_EKIND);
	assert_int_equal(lm_sem_acquire(b, "/conf/semq", 3, 5000, 0, &h),
			 LM_EKIND);
	pid_t p[3];
	for (int i = 0; i < 3; i++) {
		p[i] = harness_fork(sem_fifo_waiter, (void *)(intptr_t)i);
		HARNESS_WAIT_FOR(sem_waiters("/conf/semq", 2) ==
					 (unsigned)i + 1,
				 10000, "semaphore waiter %d to queue (%u "
				 "queued)", i, sem_waiters("/conf/semq", 2));
	}
	/* One slot comes free; each waiter passes it on. */
	assert_int_equal(lm_release(a, &g1), 0);
	for (int i = 0; i < 3; i++)
		harness_expect_exit(p[i], 20000, 0, "semaphore fifo waiter");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sh->rc[i], 0);
		if (sh->order[i] != (uint32_t)i + 1)
			fail_msg("semaphore waiter %d queued %d-th was served "
				 "%u-th", i, i + 1, sh->order[i]);
		/* Each took the slot g1 gave back. */
		assert_int_equal(sh->flags[i], lm_sem_slot(&g1));
		if (sh->token[i] <= g1.token ||
		    (i > 0 && sh->token[i] <= sh->token[i - 1]))
			fail_msg("semaphore FIFO tokens not increasing");
	}
	assert_int_equal(lm_release(a, &g2), 0);
	assert_int_equal(lm_release(a, &g2), LM_ENOTHELD);
	/* Free again, on etcd the name may become a lock (its kind is
	 * its keys'); shared memory keeps a gate's kind until the name is
	 * reclaimed, which is not now. */
	if (on_etcd) {
		assert_int_equal(lm_acquire(b, "/conf/semq", 5000, 0, &h), 0);
		lm_grant s;
		assert_int_equal(lm_sem_acquire(a, "/conf/semq", 2, 5000, 0,
						&s),
				 LM_EKIND);
		assert_int_equal(lm_release(b, &h), 0);
	}
	lm_disconnect(a);
	lm_disconnect(b);
}

static void sem_doomed(void *arg)
{
	(void)arg;
	lm_client *c = conn();
	lm_grant g;
	assert_int_equal(lm_sem_acquire(c, "/conf/semd", 2, 1000, 0, &g), 0);
	sh->token[0] = g.token;
	assert_int_equal(write(pipefd[1], "x", 1), 1);
	for (;;)
		pause();
}

/* A SIGKILLed holder's slot is free again within its lease. */
static void sem_dead(void)
{
	sh = harness_shared(sizeof(*sh));
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	lm_client *c = conn();
	lm_grant mine, g;
	/* Ours (30 s) outlasts the fork, kill and wait below on a loaded
	 * host: the freed slot is the dead holder's, not ours. */
	assert_int_equal(lm_sem_acquire(c, "/conf/semd", 2, 30000, 0, &mine),
			 0);
	pid_t p = harness_fork(sem_doomed, NULL);
	harness_read_byte(pipefd[0], 10000, "the doomed holder's slot");
	assert_int_equal(lm_sem_acquire(c, "/conf/semd", 2, 1000, 0, &g),
			 LM_EBUSY);
	int64_t t = harness_now_ms();
	assert_int_equal(kill(p, SIGKILL), 0);
	harness_reap(p, 5000, "SIGKILLed semaphore holder");
	/* 10 s allows a loaded host's etcd to revoke a 1 s lease; the wait
	 * (20 s) goes beyond it, to tell a late free from none. */
	int rc = lm_sem_acquire(c, "/conf/semd", 2, 1000, 20000, &g);
	if (rc != 0)
		fail_msg("after the holder's SIGKILL: %d (%s)", rc,
			 lm_strerror(rc));
	int64_t took = harness_now_ms() - t;
	fprintf(stderr, "  slot free %lld ms after SIGKILL (lease 1 s)\n",
		(long long)took);
	if (took > 10000)
		fail_msg("a dead holder's 1 s lease kept its slot %lld ms",
			 (long long)took);
	assert_true(g.token > sh->token[0]);
	assert_true(lm_sem_slot(&g) != lm_sem_slot(&mine));
	assert_int_equal(lm_release(c, &g), 0);
	assert_int_equal(lm_release(c, &mine), 0);
	lm_disconnect(c);
}

BOTH(sem_bound, "semb")
BOTH(sem_try_fifo, "semq")
BOTH(sem_dead, "semd")

/* ---- entry -------------------------------------------------------- */

#define ETCD_CASE(fn, timeout_s)                                         \
	static void fn##_proc(void **state)                              \
	{                                                                \
		(void)state;                                             \
		if (etcd_h_binary() == NULL) {                           \
			fprintf(stderr, "SKIP " #fn ": no etcd binary "  \
					"(/usr/bin/etcd or $LOCKMGR_ETCD; " \
					"Debian: etcd-server)\n");       \
			skip();                                          \
		}                                                        \
		harness_run_case(#fn, fn, timeout_s);                    \
	}

HARNESS_CASE(shm_exclusion, 60)
HARNESS_CASE(shm_trylock_timeout, 30)
HARNESS_CASE(shm_fifo, 30)
HARNESS_CASE(shm_dead_client, 30)
HARNESS_CASE(shm_zombie_fenced, 30)
HARNESS_CASE(shm_lease_lost, 30)
ETCD_CASE(etcd_exclusion, 90)
ETCD_CASE(etcd_trylock_timeout, 30)
ETCD_CASE(etcd_fifo, 30)
ETCD_CASE(etcd_dead_client, 30)
ETCD_CASE(etcd_zombie_fenced, 30)
ETCD_CASE(etcd_lease_lost, 30)
HARNESS_CASE(shm_sem_bound, 90)
HARNESS_CASE(shm_sem_try_fifo, 60)
HARNESS_CASE(shm_sem_dead, 30)
ETCD_CASE(etcd_sem_bound, 120)
ETCD_CASE(etcd_sem_try_fifo, 60)
ETCD_CASE(etcd_sem_dead, 30)
ETCD_CASE(etcd_sem_lockctl, 60)
ETCD_CASE(etcd_notsup, 30)
ETCD_CASE(etcd_lockctl, 60)
ETCD_CASE(cluster_faults, 120)
HARNESS_CASE(bad_input, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(shm_exclusion),
		harness_case(shm_trylock_timeout),
		harness_case(shm_fifo),
		harness_case(shm_dead_client),
		harness_case(shm_zombie_fenced),
		harness_case(shm_lease_lost),
		harness_case(etcd_exclusion),
		harness_case(etcd_trylock_timeout),
		harness_case(etcd_fifo),
		harness_case(etcd_dead_client),
		harness_case(etcd_zombie_fenced),
		harness_case(etcd_lease_lost),
		harness_case(shm_sem_bound),
		harness_case(shm_sem_try_fifo),
		harness_case(shm_sem_dead),
		harness_case(etcd_sem_bound),
		harness_case(etcd_sem_try_fifo),
		harness_case(etcd_sem_dead),
		harness_case(etcd_sem_lockctl),
		harness_case(etcd_notsup),
		harness_case(etcd_lockctl),
		harness_case(cluster_faults),
		harness_case(bad_input),
	};
	/* LOCKMGR_TEST_CASE=name runs one case (mutation checks). */
	const char *only = getenv("LOCKMGR_TEST_CASE");
	struct CMUnitTest chosen[sizeof(tests) / sizeof(tests[0])];
	size_t n = 0;
	for (size_t k = 0; k < sizeof(tests) / sizeof(tests[0]); k++)
		if (only == NULL || strcmp(only, tests[k].name) == 0)
			chosen[n++] = tests[k];
	return _cmocka_run_group_tests("test_backends", chosen, n, NULL,
				       NULL);
}
