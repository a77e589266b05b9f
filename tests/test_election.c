/*
 * test_election.c - leader election (lm_campaign, lm_proclaim,
 * lm_resign, lm_leader_get; lockctl elect and lockctl leader) against a
 * real lockmgrd and real processes.
 *
 *   - at most one leader with a running lease at any instant, under
 *     SIGKILL and SIGSTOP of leaders: campaigners record each term
 *     [token, start, believed end of the lease], and no two terms'
 *     intervals overlap, tokens increase with the terms, and a new
 *     leader follows a killed or frozen one within a lease (+ margin);
 *   - observers: lm_leader_get gives the leader's pid, token and value;
 *     a watch on the election reports PROCLAIMED; after the leader dies
 *     the next one is seen with its own value, never another's;
 *     LM_ENOLEADER when nobody leads;
 *   - lockctl elect stops its command (SIGTERM, then SIGKILL after
 *     --grace) and exits 70 once its lead is lost (stopped past its
 *     lease and taken over); lockctl leader prints the leader (exit 0)
 *     or "none" (exit 1), and --watch a line per change.
 *
 * Every wait is bounded; processes are driven through pipes and shared
 * memory. The only naps not inside a bounded poll are a leader's work
 * between two renewals, which is the workload, not a synchronisation.
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/lockmgr.h"
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

/* ---- at most one leader, under kills and freezes ------------------ */

enum {
	NCAMP = 5,          /* campaigners */
	TTL_MS = 300,       /* the lead's lease */
	HOLD_RENEWS = 5,    /* a term that nobody ends: 5 renewals, then
			     * resign */
	NFAULTS = 18,       /* kills, freezes and natural ends */
	MAX_TERMS = 1024,
	MARGIN_MS = 2000,   /* a loaded 2-CPU box: scheduling, sweeps */
};

struct term {
	uint64_t token;
	int32_t pid;
	int32_t id;                  /* campaigner index */
	_Atomic int64_t start_ns;    /* after lm_campaign returned */
	_Atomic int64_t end_ns;      /* valid_until_ns of its last renewal */
	_Atomic int published;
	_Atomic int64_t killed_ns;   /* the driver, just before SIGKILL */
};

struct elect_sh {
	_Atomic int nterms;
	_Atomic int stop;
	_Atomic int errors;
	struct term t[MAX_TERMS];
};

static struct elect_sh *es;

static void campaigner(void *arg)
{
	int id = (int)(intptr_t)arg;
	lm_client *c = connect_or_fail();
	char value[32];
	snprintf(value, sizeof(value), "camp-%d-%d", id, (int)getpid());
	while (!atomic_load(&es->stop)) {
		lm_grant g;
		int rc = lm_campaign(c, "one", value, TTL_MS, 1000, &g);
		if (rc == LM_ETIMEDOUT)
			continue;
		if (rc != 0) {
			fprintf(stderr, "campaigner %d: %s\n", id,
				lm_strerror(rc));
			atomic_fetch_add(&es->errors, 1);
			break;
		}
		int64_t start = harness_now_ns();
		int k = atomic_fetch_add(&es->nterms, 1);
		if (k >= MAX_TERMS) {
			atomic_fetch_add(&es->errors, 1);
			break;
		}
		struct term *t = &es->t[k];
		t->token = g.token;
		t->pid = getpid();
		t->id = id;
		atomic_store(&t->start_ns, start);
		atomic_store(&t->end_ns, g.valid_until_ns);
		atomic_store(&t->published, 1);
		/* Lead: work a third of the lease, renew, record the new
		 * end before working on under it. */
		for (int r = 0; r < HOLD_RENEWS; r++) {
			harness_nap_us(TTL_MS * 1000 / 3);
			if (lm_renew(c, &g, TTL_MS) != 0)
				break; /* the lead is lost: stop leading */
			atomic_store(&t->end_ns, g.valid_until_ns);
		}
		/* It stops leading here, whatever its lease says. */
		int64_t now = harness_now_ns();
		if (now < atomic_load(&t->end_ns))
			atomic_store(&t->end_ns, now);
		lm_resign(c, &g);
	}
	lm_disconnect(c);
}

/* The first published term from index k on, or -1. */
static int term_from(int k)
{
	int n = atomic_load(&es->nterms);
	for (; k < n && k < MAX_TERMS; k++)
		if (atomic_load(&es->t[k].published))
			return k;
	return -1;
}

/* The end of a term: the lease its leader last believed in, or its
 * death if that came first. */
static int64_t term_end(struct term *t)
{
	int64_t e = atomic_load(&t->end_ns), k = atomic_load(&t->killed_ns);
	return k != 0 && k < e ? k : e;
}

static void one_leader_at_a_time(void)
{
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", 10000);
	harness_lockmgrd_start(&d, "one", "--max-ttl", ttl, NULL);
	es = harness_shared(sizeof(*es));
	pid_t pids[NCAMP];
	for (int i = 0; i < NCAMP; i++)
		pids[i] = harness_fork(campaigner, (void *)(intptr_t)i);
	int next = 0, kills = 0, freezes = 0;
	int64_t fault_ns = harness_now_ns();
	for (int f = 0; f < NFAULTS; f++) {
		/* The next term: within a lease (+ margin) of the last
		 * fault, or of the start. */
		int k;
		HARNESS_WAIT_FOR((k = term_from(next)) >= 0,
				 TTL_MS + MARGIN_MS,
				 "no new leader within %d ms of the last one's "
				 "death, freeze or resignation (fault %d)",
				 TTL_MS + MARGIN_MS, f);
		struct term *t = &es->t[k];
		int64_t late = (atomic_load(&t->start_ns) - fault_ns) / 1000000;
		if (f > 0 && late > TTL_MS + MARGIN_MS)
			fail_msg("term %d began %lld ms after fault %d", k,
				 (long long)late, f - 1);
		next = k + 1;
		int id = t->id;
		fault_ns = harness_now_ns();
		switch (f % 3) {
		case 0:
			/* Dead, it leads no more: its term ends at the
			 * latest here (before its death, so before any
			 * successor's grant). */
			atomic_store(&t->killed_ns, harness_now_ns());
			kill(pids[id], SIGKILL);
			harness_reap(pids[id], 5000, "SIGKILLed leader");
			pids[id] = harness_fork(campaigner,
						(void *)(intptr_t)id);
			kills++;
			break;
		case 1: {
			kill(pids[id], SIGSTOP);
			/* Frozen until someone else leads (its lease ran
			 * out), then thawed: it must find its lead lost. */
			int k2;
			HARNESS_WAIT_FOR((k2 = term_from(next)) >= 0 &&
						 es->t[k2].pid != t->pid,
					 TTL_MS + MARGIN_MS,
					 "no new leader within %d ms of the "
					 "leader's freeze (fault %d)",
					 TTL_MS + MARGIN_MS, f);
			kill(pids[id], SIGCONT);
			freezes++;
			break;
		}
		default:
			/* Left alone: it resigns after its renewals. */
			break;
		}
	}
	atomic_store(&es->stop, 1);
	for (int i = 0; i < NCAMP; i++)
		harness_expect_exit(pids[i], 20000, 0, "campaigner");
	assert_int_equal(atomic_load(&es->errors), 0);

	int n = atomic_load(&es->nterms);
	int empty = 0;
	for (int i = 0; i < n; i++) {
		struct term *a = &es->t[i];
		if (!atomic_load(&a->published))
			continue; /* killed before it wrote its term */
		int64_t as = atomic_load(&a->start_ns),
			ae = term_end(a);
		empty += ae <= as;
		for (int j = 0; j < n; j++) {
			struct term *b = &es->t[j];
			int64_t bs = atomic_load(&b->start_ns),
				be = term_end(b);
			if (i == j || !atomic_load(&b->published))
				continue;
			if (a->token == b->token)
				fail_msg("terms %d and %d share token %llu", i,
					 j, (unsigned long long)a->token);
			if (ae <= as || be <= bs || a->token > b->token)
				continue;
			/* a's token is lower: its lead ended before b's
			 * began. */
			if (ae > bs)
				fail_msg("two leaders at once: term %d (pid %d, "
					 "token %llu) believed its lease ran "
					 "%.3f ms into term %d (pid %d, token "
					 "%llu)",
					 i, (int)a->pid,
					 (unsigned long long)a->token,
					 (double)(ae - bs) / 1e6, j, (int)b->pid,
					 (unsigned long long)b->token);
		}
	}
	fprintf(stderr,
		"  %d terms (%d ended before they began), %d leaders killed, "
		"%d frozen\n",
		n, empty, kills, freezes);
	assert_true(n >= NFAULTS);
	harness_shared_free(es, sizeof(*es));
	harness_lockmgrd_stop(&d);
}

/* ---- an agent: a campaigner driven through a pipe ----------------- */

enum { OP_CAMPAIGN = 'c', OP_PROCLAIM = 'p', OP_RESIGN = 'r',
       OP_QUIT = 'q' };

struct cmd {
	char op;
	int64_t wait_ms;
	char value[64];
};

struct reply {
	int rc;
	uint64_t token;
};

struct agent {
	pid_t pid;
	int to[2], from[2];
	char name[64];
};

static void agent_main(void *arg)
{
	struct agent *a = arg;
	close(a->to[1]);
	close(a->from[0]);
	lm_client *c = connect_or_fail();
	lm_grant g = { 0 };
	struct cmd m;
	while (read(a->to[0], &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		struct reply rp = { 0 };
		switch (m.op) {
		case OP_CAMPAIGN:
			rp.rc = lm_campaign(c, a->name, m.value, 10000,
					    m.wait_ms, &g);
			break;
		case OP_PROCLAIM:
			rp.rc = lm_proclaim(c, &g, m.value);
			break;
		case OP_RESIGN:
			rp.rc = lm_resign(c, &g);
			break;
		case OP_QUIT:
			lm_disconnect(c);
			return;
		}
		rp.token = g.token;
		if (write(a->from[1], &rp, sizeof(rp)) != (ssize_t)sizeof(rp))
			fail_msg("agent: write: %s", strerror(errno));
	}
	lm_disconnect(c);
}

static void agent_start(struct agent *a, const char *name)
{
	snprintf(a->name, sizeof(a->name), "%s", name);
	if (pipe(a->to) != 0 || pipe(a->from) != 0)
		fail_msg("pipe: %s", strerror(errno));
	a->pid = harness_fork(agent_main, a);
	close(a->to[0]);
	close(a->from[1]);
}

static void agent_send(struct agent *a, char op, const char *value,
		       int64_t wait_ms)
{
	struct cmd m = { .op = op, .wait_ms = wait_ms };
	snprintf(m.value, sizeof(m.value), "%s", value ? value : "");
	if (write(a->to[1], &m, sizeof(m)) != (ssize_t)sizeof(m))
		fail_msg("write to agent %d: %s", (int)a->pid, strerror(errno));
}

static struct reply agent_wait(struct agent *a, char op)
{
	struct reply rp;
	struct pollfd p = { .fd = a->from[0], .events = POLLIN };
	if (poll(&p, 1, 15000) != 1 ||
	    read(a->from[0], &rp, sizeof(rp)) != (ssize_t)sizeof(rp))
		fail_msg("agent %d did not answer '%c' within 15 s",
			 (int)a->pid, op);
	if (rp.rc != 0)
		fail_msg("agent %d '%c' on %s: %s", (int)a->pid, op, a->name,
			 lm_strerror(rp.rc));
	return rp;
}

static struct reply agent_ok(struct agent *a, char op, const char *value)
{
	agent_send(a, op, value, 10000);
	return agent_wait(a, op);
}

static void agent_end(struct agent *a)
{
	agent_send(a, OP_QUIT, NULL, 0);
	harness_expect_exit(a->pid, 10000, 0, "agent");
	close(a->to[1]);
	close(a->from[0]);
}

/* ---- observers ---------------------------------------------------- */

enum { NOBS = 3, MAX_SEEN = 32 };

struct seen {
	int rc;
	int32_t pid;
	uint64_t token;
	char value[LM_VALUE_MAX + 1];
};

struct observer {
	_Atomic int n;
	struct seen s[MAX_SEEN];
	_Atomic int proclaimed;   /* PROCLAIMED events of the leader's */
};

struct obs_sh {
	_Atomic int32_t a_pid, b_pid;
	_Atomic uint64_t a_token;
	struct observer o[NOBS];
};

static struct obs_sh *os;

static bool same(const struct seen *x, int rc, const lm_leader *l)
{
	if (x->rc != rc)
		return false;
	return rc != 0 || (x->pid == l->pid && x->token == l->token &&
			   strcmp(x->value, l->value) == 0);
}

static void observer_main(void *arg)
{
	struct observer *me = &os->o[(intptr_t)arg];
	lm_client *c = connect_or_fail();
	lm_watch *w;
	int rc = lm_watch_open(c, "obs", &w, NULL);
	if (rc != 0)
		fail_msg("lm_watch_open: %s", lm_strerror(rc));
	bool saw_b = false;
	int64_t deadline = harness_now_ms() + 40000;
	for (;;) {
		lm_leader l;
		rc = lm_leader_get(c, "obs", &l);
		if (rc != 0 && rc != LM_ENOLEADER)
			fail_msg("lm_leader_get: %s", lm_strerror(rc));
		int n = atomic_load(&me->n);
		if (n == 0 || !same(&me->s[n - 1], rc, &l)) {
			if (n == MAX_SEEN)
				fail_msg("observer: more than %d states",
					 MAX_SEEN);
			me->s[n] = (struct seen){ .rc = rc, .pid = l.pid,
						  .token = l.token };
			memcpy(me->s[n].value, l.value, sizeof(l.value));
			atomic_store(&me->n, n + 1);
		}
		saw_b |= rc == 0 && l.pid == atomic_load(&os->b_pid);
		if (saw_b && rc == LM_ENOLEADER)
			break;
		lm_watch_event ev;
		int64_t left = deadline - harness_now_ms();
		if (left <= 0 || lm_watch_next(w, left, &ev) != 0)
			fail_msg("observer: no change within 40 s (%d states "
				 "seen)", atomic_load(&me->n));
		if (ev.what == LM_WATCH_PROCLAIMED &&
		    ev.pid == atomic_load(&os->a_pid) &&
		    ev.token == atomic_load(&os->a_token))
			atomic_fetch_add(&me->proclaimed, 1);
	}
	lm_watch_close(w);
	lm_disconnect(c);
}

/* Every observer's last state is (rc, pid, value). */
static bool all_see(int rc, int32_t pid, const char *value)
{
	for (int i = 0; i < NOBS; i++) {
		int n = atomic_load(&os->o[i].n);
		if (n == 0)
			return false;
		const struct seen *s = &os->o[i].s[n - 1];
		if (s->rc != rc ||
		    (rc == 0 && (s->pid != pid || strcmp(s->value, value))))
			return false;
	}
	return true;
}

static void observers(void)
{
	harness_lockmgrd_start(&d, "obs", "--max-ttl", "20000", NULL);
	os = harness_shared(sizeof(*os));
	lm_client *c = connect_or_fail();
	lm_leader l;
	/* Nobody leads an election nobody has campaigned for, nor one
	 * whose lock exists but is free. */
	assert_int_equal(lm_leader_get(c, "obs", &l), LM_ENOLEADER);
	lm_watch *mine;
	assert_int_equal(lm_watch_open(c, "obs", &mine, NULL), 0);
	assert_int_equal(lm_leader_get(c, "obs", &l), LM_ENOLEADER);

	struct agent a, b;
	agent_start(&a, "obs");
	atomic_store(&os->a_pid, a.pid);
	struct reply ga = agent_ok(&a, OP_CAMPAIGN, "a:1");
	atomic_store(&os->a_token, ga.token);
	assert_int_equal(lm_leader_get(c, "obs", &l), 0);
	assert_int_equal(l.pid, a.pid);
	assert_int_equal(l.token, ga.token);
	assert_string_equal(l.value, "a:1");

	agent_start(&b, "obs");
	atomic_store(&os->b_pid, b.pid);
	pid_t obs[NOBS];
	for (int i = 0; i < NOBS; i++)
		obs[i] = harness_fork(observer_main, (void *)(intptr_t)i);
	HARNESS_WAIT_FOR(all_see(0, a.pid, "a:1"), 10000,
			 "the observers did not all see a lead with a:1");

	/* A proclaims: a PROCLAIMED event, then the new value. */
	lm_watch_event ev;
	while (lm_watch_next(mine, 0, &ev) == 0)
		;
	agent_ok(&a, OP_PROCLAIM, "a:2");
	if (lm_watch_next(mine, 5000, &ev) != 0)
		fail_msg("no event within 5 s of lm_proclaim");
	assert_int_equal(ev.what, LM_WATCH_PROCLAIMED);
	assert_int_equal(ev.pid, a.pid);
	assert_int_equal(ev.token, ga.token);
	assert_int_equal(ev.changes, 1);
	HARNESS_WAIT_FOR(all_see(0, a.pid, "a:2"), 10000,
			 "the observers did not all see a:2 proclaimed");
	for (int i = 0; i < NOBS; i++)
		assert_int_equal(atomic_load(&os->o[i].proclaimed), 1);
	assert_int_equal(lm_leader_get(c, "obs", &l), 0);
	assert_string_equal(l.value, "a:2");

	/* B campaigns (its value is written, but A leads); A dies. */
	agent_send(&b, OP_CAMPAIGN, "b:1", 15000);
	assert_int_equal(lm_leader_get(c, "obs", &l), 0);
	assert_int_equal(l.pid, a.pid);
	assert_string_equal(l.value, "a:2");
	kill(a.pid, SIGKILL);
	harness_reap(a.pid, 5000, "SIGKILLed leader");
	close(a.to[1]);
	close(a.from[0]);
	struct reply gb = agent_wait(&b, OP_CAMPAIGN);
	assert_true(gb.token > ga.token);
	HARNESS_WAIT_FOR(all_see(0, b.pid, "b:1"), 10000,
			 "the observers did not all see b lead with b:1");
	assert_int_equal(lm_leader_get(c, "obs", &l), 0);
	assert_int_equal(l.pid, b.pid);
	assert_int_equal(l.token, gb.token);
	assert_string_equal(l.value, "b:1");

	/* B resigns: nobody leads. */
	agent_ok(&b, OP_RESIGN, NULL);
	for (int i = 0; i < NOBS; i++)
		harness_expect_exit(obs[i], 10000, 0, "observer");
	assert_int_equal(lm_leader_get(c, "obs", &l), LM_ENOLEADER);
	agent_end(&b);

	/* What each saw, in order: a:1, a:2, (maybe nobody), b:1, nobody;
	 * never a leader with another's value or token. */
	for (int i = 0; i < NOBS; i++) {
		struct observer *o = &os->o[i];
		int n = atomic_load(&o->n);
		char seq[MAX_SEEN + 1];
		for (int k = 0; k < n; k++) {
			const struct seen *s = &o->s[k];
			bool is_a = s->rc == 0 && s->pid == a.pid &&
				    s->token == ga.token;
			bool is_b = s->rc == 0 && s->pid == b.pid &&
				    s->token == gb.token;
			if (s->rc != 0)
				seq[k] = 'n';
			else if (is_a && strcmp(s->value, "a:1") == 0)
				seq[k] = '1';
			else if (is_a && strcmp(s->value, "a:2") == 0)
				seq[k] = '2';
			else if (is_b && strcmp(s->value, "b:1") == 0)
				seq[k] = 'b';
			else
				fail_msg("observer %d, state %d: leader pid %d "
					 "token %llu value \"%s\": not a's "
					 "grant with a's value nor b's with "
					 "b's", i, k, (int)s->pid,
					 (unsigned long long)s->token,
					 s->value);
		}
		seq[n] = '\0';
		if (strcmp(seq, "12bn") != 0 && strcmp(seq, "12nbn") != 0)
			fail_msg("observer %d saw %s (1, 2: a with a:1, a:2; "
				 "b: b with b:1; n: nobody); expected 12bn or "
				 "12nbn", i, seq);
	}
	lm_watch_close(mine);
	lm_disconnect(c);
	harness_shared_free(os, sizeof(*os));
	harness_lockmgrd_stop(&d);
}

/* ---- lockctl elect and lockctl leader ----------------------------- */

static bool file_has(const char *path, const char *what)
{
	char buf[4096];
	return harness_read_file(path, buf, sizeof(buf)) >= 0 &&
	       strstr(buf, what) != NULL;
}

static bool dead(pid_t pid)
{
	char s = harness_proc_state(pid);
	return s == '?' || s == 'Z' || s == 'X';
}

/* lockctl elect's command is stopped when the lead is lost: obey is
 * whether it exits on SIGTERM (else lockctl must SIGKILL it). */
static void elect_loses_lead(bool obey)
{
	harness_lockmgrd_start(&d, obey ? "elect1" : "elect2", "--max-ttl",
			       "10000", NULL);
	char dir[256], out[512], err[512], log[512], pidf[512], kidf[512];
	char orphanf[512];
	char lockctl[512], script[4096];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(pidf, sizeof(pidf), "%s/pid", dir);
	snprintf(kidf, sizeof(kidf), "%s/kid", dir);
	snprintf(orphanf, sizeof(orphanf), "%s/orphan", dir);
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	/* The command starts a process of its own, in the background (one
	 * that ignores SIGTERM too when the command does), and another
	 * that a subshell leaves behind (orphaned, as a daemon's double
	 * fork leaves one): they work for the leader as much as the
	 * command does, and must stop with it. */
	snprintf(script, sizeof(script),
		 "trap 'echo TERM >> %s%s' TERM; echo $$ > %s; "
		 "(%s exec sleep 1000) & echo $! > %s; "
		 "(sleep 1001 & echo $! > %s); "
		 "echo started >> %s; while :; do sleep 0.05; done",
		 log, obey ? "; exit 3" : "", pidf,
		 obey ? "" : "trap '' TERM;", kidf, orphanf, log);
	char *argv[] = { lockctl, "-r", d.region, "elect", "--value", "v1",
			 "--ttl", "1500", "--grace", "500", "el", "--",
			 "/bin/sh", "-c", script, NULL };
	pid_t p = harness_spawn(argv, out, err);
	HARNESS_WAIT_FOR(file_has(log, "started"), 10000,
			 "lockctl elect did not start its command within 10 s");
	char buf[512];
	assert_true(harness_read_file(pidf, buf, sizeof(buf)) > 0);
	pid_t cmd = atoi(buf);
	assert_true(cmd > 0);
	assert_true(harness_read_file(kidf, buf, sizeof(buf)) > 0);
	pid_t kid = atoi(buf);
	assert_true(kid > 0);
	assert_true(harness_read_file(orphanf, buf, sizeof(buf)) > 0);
	pid_t orphan = atoi(buf);
	assert_true(orphan > 0);

	/* lockctl leader: it leads, with its value. (Its lease, 1.5 s,
	 * renewed every 500 ms, outlasts a loaded host's stalls until the
	 * SIGSTOP below.) */
	char o[1024], e[1024], want[64];
	int st = harness_ctl(dir, o, sizeof(o), e, sizeof(e), "-r", d.region,
			     "leader", "el", NULL);
	assert_int_equal(st, 0);
	snprintf(want, sizeof(want), "pid=%d ", (int)p);
	if (strstr(o, want) == NULL || strstr(o, " value=v1") == NULL)
		fail_msg("lockctl leader printed \"%s\"; expected %s... "
			 "value=v1", o, want);

	/* Stopped past its lease, the lead goes to another campaigner. */
	kill(p, SIGSTOP);
	HARNESS_WAIT_FOR(harness_proc_state(p) == 'T', 5000,
			 "lockctl elect did not stop");
	lm_client *c = connect_or_fail();
	lm_grant g;
	int rc = lm_campaign(c, "el", "taker", 10000, 10000, &g);
	if (rc != 0)
		fail_msg("campaign against a stopped leader: %s",
			 lm_strerror(rc));
	kill(p, SIGCONT);
	/* It finds the lead lost: its command gets SIGTERM (and SIGKILL
	 * after the grace if it ignores it), and lockctl exits 70. */
	harness_expect_exit(p, 15000, 70, "lockctl elect after its lead was "
			    "lost");
	if (!file_has(log, "TERM"))
		fail_msg("the command got no SIGTERM when the lead was lost");
	HARNESS_WAIT_FOR(dead(cmd), 5000,
			 "the command (pid %d) %s still runs after lockctl "
			 "elect exited", (int)cmd,
			 obey ? "which exits on SIGTERM" : "ignoring SIGTERM");
	/* lockctl stops the command's whole tree before it exits: nothing
	 * the command started goes on working for a lost leader. */
	if (!dead(kid))
		fail_msg("the process the command started (sleep, pid %d%s) "
			 "still runs after lockctl elect exited", (int)kid,
			 obey ? "" : ", ignoring SIGTERM");
	if (!dead(orphan))
		fail_msg("the process a subshell of the command left behind "
			 "(sleep, pid %d) still runs after lockctl elect exited",
			 (int)orphan);
	if (harness_group_runs("sleep"))
		fail_msg("a sleep of the command's still runs after lockctl "
			 "elect exited");

	st = harness_ctl(dir, o, sizeof(o), e, sizeof(e), "-r", d.region,
			 "leader", "el", NULL);
	assert_int_equal(st, 0);
	snprintf(want, sizeof(want), "pid=%d ", (int)getpid());
	if (strstr(o, want) == NULL || strstr(o, " value=taker") == NULL)
		fail_msg("lockctl leader printed \"%s\"; expected %s... "
			 "value=taker", o, want);
	assert_int_equal(lm_resign(c, &g), 0);
	st = harness_ctl(dir, o, sizeof(o), e, sizeof(e), "-r", d.region,
			 "leader", "el", NULL);
	if (st != 1 || strcmp(o, "none\n") != 0)
		fail_msg("lockctl leader with nobody leading: exit %d, \"%s\"; "
			 "expected exit 1, \"none\"", st, o);
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
	harness_lockmgrd_stop(&d);
	harness_reap_orphans();
}

static void elect_cmd_ignores_term(void)
{
	elect_loses_lead(false);
}

static void elect_cmd_obeys_term(void)
{
	elect_loses_lead(true);
}

/*
 * The command gets SIGTERM once when the lead is lost: lockctl signals
 * CMD through its pidfd and the rest of its tree by a walk, and the walk
 * must leave CMD out (a second SIGTERM reads as "stop now, no clean-up"
 * to many programs). A perl loop counts them: it handles each signal
 * within its 10 ms naps, so two that come a walk apart are two lines
 * (a shell's trap would merge them while it waits for its sleep).
 */
static void elect_cmd_gets_one_term(void)
{
	harness_lockmgrd_start(&d, "oneterm", "--max-ttl", "10000", NULL);
	char dir[256], out[512], err[512], log[512], lockctl[512];
	char script[1024], buf[4096];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	snprintf(log, sizeof(log), "%s/log", dir);
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	snprintf(script, sizeof(script),
		 "$| = 1; open(my $f, '>>', '%s') or die; $f->autoflush(1); "
		 "$SIG{TERM} = sub { print $f \"TERM\\n\" }; "
		 "print $f \"started\\n\"; "
		 "while (1) { select(undef, undef, undef, 0.01) }", log);
	char *argv[] = { lockctl, "-r", d.region, "elect", "--ttl", "1000",
			 "--grace", "1000", "one", "--", "perl", "-e", script,
			 NULL };
	pid_t p = harness_spawn(argv, out, err);
	HARNESS_WAIT_FOR(file_has(log, "started"), 10000,
			 "lockctl elect did not start its command within 10 s");
	/* Stopped past its lease, it finds the lead lost when it wakes. */
	int64_t stopped = harness_now_ms();
	kill(p, SIGSTOP);
	HARNESS_WAIT_FOR(harness_proc_state(p) == 'T', 5000,
			 "lockctl elect did not stop");
	HARNESS_WAIT_FOR(harness_now_ms() > stopped + 1500, 5000,
			 "1.5 s to pass");
	kill(p, SIGCONT);
	harness_expect_exit(p, 15000, 70, "lockctl elect after its lead was "
			    "lost");
	assert_true(harness_read_file(log, buf, sizeof(buf)) > 0);
	int terms = 0;
	for (const char *t = buf; (t = strstr(t, "TERM")) != NULL; t += 4)
		terms++;
	if (terms != 1)
		fail_msg("the command got SIGTERM %d times when the lead was "
			 "lost; expected once. Its log:\n%s", terms, buf);
	harness_remove_flat_dir(dir);
	harness_lockmgrd_stop(&d);
	harness_reap_orphans();
}

static int lines_in(const char *path, char *buf, size_t n)
{
	if (harness_read_file(path, buf, n) < 0)
		return 0;
	int k = 0;
	for (char *s = buf; *s; s++)
		k += *s == '\n';
	return k;
}

static void leader_watch(void)
{
	harness_lockmgrd_start(&d, "lwatch", "--max-ttl", "10000", NULL);
	char dir[256], out[512], err[512], lockctl[512], buf[4096];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	char *argv[] = { lockctl, "-r", d.region, "leader", "--watch", "lw",
			 NULL };
	pid_t p = harness_spawn(argv, out, err);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 1, 10000,
			 "lockctl leader --watch printed nothing in 10 s");
	assert_string_equal(buf, "none\n");
	lm_client *c = connect_or_fail();
	lm_grant g;
	assert_int_equal(lm_campaign(c, "lw", "w:1", 10000, 0, &g), 0);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 2, 10000,
			 "lockctl leader --watch: no line for a new leader");
	assert_int_equal(lm_proclaim(c, &g, "w:2"), 0);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 3, 10000,
			 "lockctl leader --watch: no line for a proclaim");
	assert_int_equal(lm_resign(c, &g), 0);
	HARNESS_WAIT_FOR(lines_in(out, buf, sizeof(buf)) >= 4, 10000,
			 "lockctl leader --watch: no line for a resign");
	kill(p, SIGTERM);
	harness_expect_exit(p, 10000, 0, "lockctl leader --watch");
	lines_in(out, buf, sizeof(buf));
	char want[512];
	snprintf(want, sizeof(want),
		 "none\npid=%d token=%llu value=w:1\n"
		 "pid=%d token=%llu value=w:2\nnone\n",
		 (int)getpid(), (unsigned long long)g.token, (int)getpid(),
		 (unsigned long long)g.token);
	if (strcmp(buf, want) != 0)
		fail_msg("lockctl leader --watch printed\n%s\nexpected\n%s",
			 buf, want);
	/* A SIGTERM sent as soon as its first line is out (it is stopped
	 * right after printing it) waits for it and ends it, exit 0. */
	char log[256];
	harness_pause_arm("lockctl.leader_printed", log, sizeof(log));
	p = harness_spawn(argv, out, err);
	harness_pause_disarm();
	assert_int_equal(harness_wait_paused(log, "lockctl.leader_printed",
					     10000), p);
	assert_int_equal(lines_in(out, buf, sizeof(buf)), 1);
	kill(p, SIGTERM);
	harness_resume(p);
	harness_expect_exit(p, 10000, 0,
			    "lockctl leader --watch sent SIGTERM at once");
	lm_disconnect(c);
	harness_remove_flat_dir(dir);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(one_leader_at_a_time, 60)
HARNESS_CASE(observers, 60)
HARNESS_CASE(elect_cmd_ignores_term, 60)
HARNESS_CASE(elect_cmd_obeys_term, 60)
HARNESS_CASE(elect_cmd_gets_one_term, 60)
HARNESS_CASE(leader_watch, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(one_leader_at_a_time),
		harness_case(observers),
		harness_case(elect_cmd_ignores_term),
		harness_case(elect_cmd_obeys_term),
		harness_case(elect_cmd_gets_one_term),
		harness_case(leader_watch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
