/*
 * test_deadlock.c - deadlock detection with a real lockmgrd and real
 * client processes: cycles of 2, 3 and 8 sessions (exclusive and mixed
 * modes) end with exactly one LM_EDEADLK, found after the deadlock
 * timeout and well before the waits' own timeouts; chains without a
 * cycle, under heavy contention and with a stopped holder, end none.
 */
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/layout.h"
#include "shm/region.h"

static struct harness_lockmgrd d;

enum { MAXN = 16 };

struct cycle_shared {
	_Atomic int holding;          /* sessions holding their first lock */
	_Atomic int deadlocks;        /* LM_EDEADLK returned */
	_Atomic int granted;          /* second locks granted */
	_Atomic int errors;           /* anything else */
	_Atomic int64_t victim_ms;    /* how long the victim's wait took */
	_Atomic int64_t first_wait_ms;/* when the first member began to wait
				       * (the earliest search is due one
				       * deadlock timeout after it) */
	_Atomic int64_t last_wait_ms; /* when the last one did (the cycle
				       * is whole from then on) */
	_Atomic int64_t victim_end_ms;/* when the victim's wait ended */
	_Atomic int go;               /* release the sessions (stop test) */
	char cycle[512];              /* the victim's lm_deadlock_cycle */
};

static struct cycle_shared *cs;

struct member {
	int k, n;
	uint32_t first_mode, second_mode;
	int64_t deadlock_ms;          /* 0: the default */
};

static lm_client *connect_or_exit(void)
{
	lm_client *c = NULL;
	int rc = lm_connect(d.region, &c);
	if (rc != 0) {
		fprintf(stderr, "lm_connect: %s\n", lm_strerror(rc));
		_exit(3);
	}
	return c;
}

static void lock_name(char *out, size_t n, int k)
{
	snprintf(out, n, "/cycle/%d", k);
}

static void note_wait_start(int64_t t)
{
	int64_t cur = atomic_load(&cs->first_wait_ms);
	while ((cur == 0 || t < cur) &&
	       !atomic_compare_exchange_weak(&cs->first_wait_ms, &cur, t))
		;
	cur = atomic_load(&cs->last_wait_ms);
	while (t > cur &&
	       !atomic_compare_exchange_weak(&cs->last_wait_ms, &cur, t))
		;
}

/* Hold lock k, wait until everyone holds theirs, then want lock k+1. */
static void cycle_member(void *arg)
{
	const struct member *m = arg;
	lm_client *c = connect_or_exit();
	char first[32], second[32];
	lock_name(first, sizeof(first), m->k);
	lock_name(second, sizeof(second), (m->k + 1) % m->n);
	lm_grant g1, g2;
	lm_acquire_opts o1 = LM_ACQUIRE_OPTS(m->first_mode, 30000, 0);
	if (lm_acquire_ex(c, first, &o1, &g1) != 0)
		_exit(4);
	atomic_fetch_add(&cs->holding, 1);
	int64_t until = harness_now_ms() + 10000;
	while (atomic_load(&cs->holding) < m->n && harness_now_ms() < until)
		harness_nap_us(1000);
	if (atomic_load(&cs->holding) < m->n)
		_exit(5);
	lm_acquire_opts o2 = LM_ACQUIRE_OPTS(m->second_mode, 30000, 20000);
	o2.deadlock_timeout_ms = m->deadlock_ms;
	int64_t t0 = harness_now_ms();
	note_wait_start(t0);
	int rc = lm_acquire_ex(c, second, &o2, &g2);
	int64_t took = harness_now_ms() - t0;
	if (rc == LM_EDEADLK) {
		atomic_fetch_add(&cs->deadlocks, 1);
		atomic_store(&cs->victim_ms, took);
		atomic_store(&cs->victim_end_ms, t0 + took);
		snprintf(cs->cycle, sizeof(cs->cycle), "%s",
			 lm_deadlock_cycle(c));
	} else if (rc == 0) {
		atomic_fetch_add(&cs->granted, 1);
		lm_release(c, &g2);
	} else {
		fprintf(stderr, "member %d: %s\n", m->k, lm_strerror(rc));
		atomic_fetch_add(&cs->errors, 1);
	}
	/* The victim gives its first lock back: the cycle unwinds. */
	lm_release(c, &g1);
	lm_disconnect(c);
}

/*
 * The cycle was found one deadlock timeout (1 s) after a member began to
 * wait: no sooner than that after the first wait began, and no later
 * than that after the last one (which closed the cycle) — by the first
 * search that could see it, not a later timeout's — and long before the
 * waits' own 20 s. (On an idle host the members begin within a few ms of
 * each other; a loaded one may spread them over more than a timeout.)
 */
static int64_t expected_timeout_ms = LM_DEADLOCK_TIMEOUT_MS;

static void check_found_in_time(void)
{
	int64_t end = atomic_load(&cs->victim_end_ms);
	int64_t after_first = end - atomic_load(&cs->first_wait_ms);
	int64_t after_last = end - atomic_load(&cs->last_wait_ms);
	/* ms clocks: a reading can be up to 1 ms short. */
	if (after_first < expected_timeout_ms - 1 ||
	    after_last > expected_timeout_ms + 900)
		fail_msg("the cycle ended %lld ms after its first wait began "
			 "and %lld ms after its last; expected one deadlock "
			 "timeout (%lld ms) after a wait",
			 (long long)after_first, (long long)after_last,
			 (long long)expected_timeout_ms);
}

static void run_cycle(int n, const uint32_t *first, const uint32_t *second)
{
	if (expected_timeout_ms == LM_DEADLOCK_TIMEOUT_MS)
		harness_lockmgrd_start(&d, "cycle", "--max-ttl", "60000", NULL);
	else
		harness_lockmgrd_start(&d, "cycle", "--max-ttl", "60000",
				       "--deadlock-timeout", "250", NULL);
	cs = harness_shared(sizeof(*cs));
	struct member m[MAXN];
	pid_t pids[MAXN];
	for (int k = 0; k < n; k++) {
		m[k] = (struct member){ .k = k, .n = n,
					.first_mode = first[k],
					.second_mode = second[k] };
		pids[k] = harness_fork(cycle_member, &m[k]);
	}
	for (int k = 0; k < n; k++)
		harness_expect_exit(pids[k], 60000, 0, "cycle member");
	fprintf(stderr, "  %d sessions: %d deadlock(s) after %lld ms, %d "
		"granted: %s\n", n, atomic_load(&cs->deadlocks),
		(long long)atomic_load(&cs->victim_ms),
		atomic_load(&cs->granted), cs->cycle);
	assert_int_equal(atomic_load(&cs->errors), 0);
	if (atomic_load(&cs->deadlocks) != 1)
		fail_msg("a cycle of %d waits ended %d waits with LM_EDEADLK; "
			 "exactly one was expected", n,
			 atomic_load(&cs->deadlocks));
	assert_int_equal(atomic_load(&cs->granted), n - 1);
	check_found_in_time();
	/* The message names the cycle: every member's lock. */
	for (int k = 0; k < n && n <= 3; k++) {
		char name[32];
		lock_name(name, sizeof(name), k);
		if (strstr(cs->cycle, name) == NULL)
			fail_msg("the cycle's description does not name %s: "
				 "%s", name, cs->cycle);
	}
	harness_lockmgrd_stop(&d);
}

static void cycle_of_2(void)
{
	uint32_t x[2] = { LM_MODE_X, LM_MODE_X };
	run_cycle(2, x, x);
}

static void cycle_of_3(void)
{
	uint32_t x[3] = { LM_MODE_X, LM_MODE_X, LM_MODE_X };
	run_cycle(3, x, x);
}

static void cycle_of_8(void)
{
	uint32_t x[8];
	for (int k = 0; k < 8; k++)
		x[k] = LM_MODE_X;
	run_cycle(8, x, x);
}

/* lockmgrd --deadlock-timeout sets the service's default. */
static void service_deadlock_timeout(void)
{
	expected_timeout_ms = 250;
	uint32_t x[2] = { LM_MODE_X, LM_MODE_X };
	run_cycle(2, x, x);
}

/* Readers that each want to write what the other reads. */
static void cycle_of_modes(void)
{
	uint32_t s[3] = { LM_MODE_S, LM_MODE_IX, LM_MODE_S };
	uint32_t x[3] = { LM_MODE_X, LM_MODE_IX, LM_MODE_IX };
	run_cycle(3, s, x);
}

/* ---- no cycle, no victim ------------------------------------------ */

enum { CHAIN = 16, CHAIN_ROUNDS = 60 };

struct chain_arg {
	int k;
	int64_t deadlock_ms;
};

/* Take lock k then lock k+1, in that order: waits form chains, never a
 * cycle (the last session's second lock is nobody's first). */
static void chain_member(void *arg)
{
	const struct chain_arg *a = arg;
	lm_client *c = connect_or_exit();
	char first[32], second[32];
	snprintf(first, sizeof(first), "/chain/%d", a->k);
	snprintf(second, sizeof(second), "/chain/%d", a->k + 1);
	for (int r = 0; r < CHAIN_ROUNDS && !atomic_load(&cs->go); r++) {
		lm_grant g1, g2;
		uint32_t mode = (r + a->k) % 3 == 0 ? LM_MODE_S : LM_MODE_X;
		lm_acquire_opts o = LM_ACQUIRE_OPTS(mode, 30000, 30000);
		o.deadlock_timeout_ms = a->deadlock_ms;
		int rc = lm_acquire_ex(c, first, &o, &g1);
		if (rc != 0) {
			fprintf(stderr, "chain %d: %s (%s)\n", a->k,
				lm_strerror(rc), lm_deadlock_cycle(c));
			atomic_fetch_add(rc == LM_EDEADLK ? &cs->deadlocks
							  : &cs->errors, 1);
			continue;
		}
		rc = lm_acquire_ex(c, second, &o, &g2);
		if (rc == 0) {
			for (volatile int spin = 0; spin < 200000; spin++)
				;
			lm_release(c, &g2);
			atomic_fetch_add(&cs->granted, 1);
		} else {
			fprintf(stderr, "chain %d: %s (%s)\n", a->k,
				lm_strerror(rc), lm_deadlock_cycle(c));
			atomic_fetch_add(rc == LM_EDEADLK ? &cs->deadlocks
							  : &cs->errors, 1);
		}
		lm_release(c, &g1);
	}
	lm_disconnect(c);
}

static void chain_without_cycle(void)
{
	harness_lockmgrd_start(&d, "chain", "--max-ttl", "60000", NULL);
	cs = harness_shared(sizeof(*cs));
	struct chain_arg a[CHAIN];
	pid_t pids[CHAIN];
	/* A short deadlock timeout: every wait searches, many times. */
	for (int k = 0; k < CHAIN; k++) {
		a[k] = (struct chain_arg){ .k = k, .deadlock_ms = 20 };
		pids[k] = harness_fork(chain_member, &a[k]);
	}
	/* Stop one session for a while (it may be holding): waits behind
	 * it outlast the deadlock timeout many times over, with no cycle. */
	harness_nap_us(300000);
	kill(pids[CHAIN / 2], SIGSTOP);
	harness_nap_us(500000);
	kill(pids[CHAIN / 2], SIGCONT);
	/* And a server fault: holders and waiters seen through two tables
	 * for a while, then three again. */
	struct lm_region r;
	harness_attach(d.region, &r);
	harness_kill_server(d.region, &r, 1, false);
	HARNESS_WAIT_FOR(harness_server_state(&r, 1) == LM_SRV_UP, 20000,
			 "server 1 to come back");
	lm_region_detach(&r);
	for (int k = 0; k < CHAIN; k++)
		harness_expect_exit(pids[k], 120000, 0, "chain member");
	fprintf(stderr, "  %d rounds granted, %d deadlock(s), %d error(s)\n",
		atomic_load(&cs->granted), atomic_load(&cs->deadlocks),
		atomic_load(&cs->errors));
	if (atomic_load(&cs->deadlocks) != 0)
		fail_msg("%d LM_EDEADLK without a cycle",
			 atomic_load(&cs->deadlocks));
	assert_int_equal(atomic_load(&cs->errors), 0);
	assert_int_equal(atomic_load(&cs->granted), CHAIN * CHAIN_ROUNDS);
	harness_lockmgrd_stop(&d);
}

/* ---- two upgrades of one lock -------------------------------------- */

static void upgrade_member(void *arg)
{
	int n = *(const int *)arg;
	lm_client *c = connect_or_exit();
	lm_grant g;
	lm_acquire_opts o = LM_ACQUIRE_OPTS(LM_MODE_S, 30000, 0);
	if (lm_acquire_ex(c, "/upgrades", &o, &g) != 0)
		_exit(4);
	atomic_fetch_add(&cs->holding, 1);
	int64_t until = harness_now_ms() + 10000;
	while (atomic_load(&cs->holding) < n && harness_now_ms() < until)
		harness_nap_us(1000);
	if (atomic_load(&cs->holding) < n)
		_exit(5);
	int64_t t0 = harness_now_ms();
	note_wait_start(t0);
	int rc = lm_convert(c, &g, LM_MODE_X, 30000, 20000);
	int64_t took = harness_now_ms() - t0;
	if (rc == LM_EDEADLK) {
		atomic_store(&cs->victim_end_ms, t0 + took);
		/* Still a reader: give it back, so the others can write. */
		if (g.mode != LM_MODE_S)
			atomic_fetch_add(&cs->errors, 1);
		atomic_fetch_add(&cs->deadlocks, 1);
		atomic_store(&cs->victim_ms, took);
		snprintf(cs->cycle, sizeof(cs->cycle), "%s",
			 lm_deadlock_cycle(c));
	} else if (rc == 0 && g.mode == LM_MODE_X) {
		atomic_fetch_add(&cs->granted, 1);
	} else {
		fprintf(stderr, "upgrade: %s\n", lm_strerror(rc));
		atomic_fetch_add(&cs->errors, 1);
	}
	lm_release(c, &g);
	lm_disconnect(c);
}

/* Two sessions upgrading one lock wait for each other forever: a
 * deadlock, reported as one; the other upgrade then goes through. */
static void cycle_of_upgrades(void)
{
	harness_lockmgrd_start(&d, "upgrades", "--max-ttl", "60000", NULL);
	cs = harness_shared(sizeof(*cs));
	int n = 2;
	pid_t a = harness_fork(upgrade_member, &n);
	pid_t b = harness_fork(upgrade_member, &n);
	harness_expect_exit(a, 60000, 0, "upgrader");
	harness_expect_exit(b, 60000, 0, "upgrader");
	fprintf(stderr, "  %d deadlock(s) after %lld ms, %d upgraded: %s\n",
		atomic_load(&cs->deadlocks),
		(long long)atomic_load(&cs->victim_ms),
		atomic_load(&cs->granted), cs->cycle);
	assert_int_equal(atomic_load(&cs->errors), 0);
	assert_int_equal(atomic_load(&cs->deadlocks), 1);
	assert_int_equal(atomic_load(&cs->granted), 1);
	check_found_in_time();
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(cycle_of_2, 60)
HARNESS_CASE(cycle_of_3, 60)
HARNESS_CASE(cycle_of_8, 60)
HARNESS_CASE(cycle_of_modes, 60)
HARNESS_CASE(service_deadlock_timeout, 60)
HARNESS_CASE(cycle_of_upgrades, 60)
HARNESS_CASE(chain_without_cycle, 180)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(cycle_of_2),
		harness_case(cycle_of_3),
		harness_case(cycle_of_8),
		harness_case(cycle_of_modes),
		harness_case(service_deadlock_timeout),
		harness_case(cycle_of_upgrades),
		harness_case(chain_without_cycle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
