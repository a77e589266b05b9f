/*
 * wait_queue.c - FIFO waiting for a lock, one futex per waiter.
 *
 * A waiter takes a ticket from the lock's dispenser, records (lock,
 * ticket) in its session slot and sleeps on its own session's futex.
 * The queue is the set of sessions whose waiting_on names the lock,
 * ordered by ticket. Only the head may try the tables, so waiters are
 * served in arrival order; a release wakes exactly the head (one wake,
 * no thundering herd).
 *
 * Keeping the queue in the session slots rather than in a linked list
 * is what makes it robust: a waiter that dies or gives up simply stops
 * naming the lock, and nobody has to unlink it from a list that a dead
 * process might have left half-edited. The price is a scan of the
 * session table on each hand-off, which is bounded by the number of
 * sessions ever connected (sessions_hwm).
 *
 * Bounded barging: strict FIFO costs a sleep and a wake-up per hand-off,
 * while the releasing process, already running, could take the lock
 * again at once. So a newcomer may go straight to the tables even when
 * others wait, but only within BARGE_WINDOW_NS of the moment the current
 * head began its turn; after that, newcomers queue and the head gets the
 * next release. No waiter waits more than its predecessors' turns plus
 * one window each, yet a busy lock mostly changes hands without a
 * context switch.
 *
 * Lost wake-ups: a waiter raises the count in `waiters` and reads its
 * futex word before it tries the tables; a releaser frees the tables
 * before it reads `waiters`. Both sides are seq_cst (a Dekker pair: the
 * releaser's CAS and load, the waiter's RMW and its seq_cst loads of
 * the owner words), so either the releaser sees the waiter and bumps its
 * futex word (the waiter's FUTEX_WAIT then returns at once), or the
 * waiter's try sees the tables free.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "clock.h"
#include "deadlock.h"
#include "futex.h"
#include "modes.h"
#include "name_index.h"
#include "session.h"
#include "test_hook.h"
#include "wait_queue.h"

/* How long newcomers may overtake the head of the queue. */
#define BARGE_WINDOW_NS INT64_C(200000)

/* Longest sleep of a waiter that is not the head, in case the process
 * that should wake it died with no supervisor left to notice. */
#define NON_HEAD_SLEEP_NS INT64_C(1000000000)

/* Longest sleep of a head waiting for the quorum to come back: servers
 * wake it (servers_seq) when they do; this bounds a missed wake-up. */
#define QUORUM_RECHECK_NS INT64_C(200000000)

static int32_t ticket_cmp(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b); /* tickets wrap */
}

/*
 * Is waiter ss isolated from so many servers (lockctl server isolate)
 * that it cannot reach a majority? Then it cannot take its turn, like a
 * stopped one, and is passed over until it is healed: otherwise one
 * partitioned waiter would keep everyone behind it off a free lock.
 */
static bool cut_off(const struct lm_session *ss)
{
	uint32_t iso = atomic_load_explicit(&ss->isolated,
					    memory_order_relaxed) &
		       ((1u << LM_NSERVERS) - 1);
	return (unsigned)__builtin_popcount(iso) > LM_NSERVERS - LM_QUORUM;
}

/* The head of lock's queue (session index), or -1 if nobody waits. */
static int64_t queue_head(struct lm_region *r, uint32_t lock)
{
	uint32_t n = lm_sessions_in_use(r);
	int64_t best = -1;
	uint32_t best_ticket = 0;
	for (uint32_t s = 0; s < n; s++) {
		struct lm_session *ss = &r->sessions[s];
		/* Pairs with the release store of waiting_on after
		 * wait_ticket in lm_wait_for_grant. */
		if (atomic_load_explicit(&ss->waiting_on,
					 memory_order_acquire) != lock + 1)
			continue;
		if (!lm_session_is_live(ss) || cut_off(ss))
			continue;
		uint32_t t = atomic_load(&ss->wait_ticket);
		if (best < 0 || ticket_cmp(t, best_ticket) < 0) {
			best = s;
			best_ticket = t;
		}
	}
	return best;
}

/* Does the "woken" mark name a session still waiting for lock? */
static bool mark_is_current(struct lm_region *r, uint32_t lock, uint16_t mark)
{
	if (mark == 0 || mark > r->max_sessions)
		return false;
	struct lm_session *ss = &r->sessions[mark - 1];
	return atomic_load(&ss->waiting_on) == lock + 1 &&
	       lm_session_is_live(ss);
}

bool lm_queue_has_waiter(struct lm_region *r, uint32_t lock)
{
	return queue_head(r, lock) >= 0;
}

void lm_wake_next(struct lm_region *r, uint32_t lock, uint32_t self)
{
	struct lm_queue *name = lm_queue_of(r, lock);
	for (int tries = 0; tries < 4; tries++) {
		/* A waiter already woken for its turn will try the tables,
		 * and clears the mark (then looks once more) before it
		 * sleeps again: no scan, no system call. Pairs with that
		 * clear in lm_wait_for_grant: either we see 0 here, or it
		 * sees the lock we just freed. */
		uint16_t mark = atomic_load(&name->woken);
		if (mark != 0) {
			if (mark_is_current(r, lock, mark))
				return;
			/* Its waiter left the queue (it got the lock between
			 * our scan and our mark): the mark is stale. */
			atomic_compare_exchange_strong(&name->woken, &mark, 0);
			continue;
		}
		int64_t best = queue_head(r, lock);
		/* Waking ourselves would only make our next sleep return
		 * at once. */
		if (best < 0 || (uint32_t)best == self)
			return;
		uint16_t none = 0, m = (uint16_t)(best + 1);
		if (!atomic_compare_exchange_strong(&name->woken, &none, m))
			continue; /* someone else marked a waiter: re-check */
		lm_futex_bump_wake(&r->sessions[best].wake, 1);
		/* If it left the queue meanwhile, nobody would clear the
		 * mark: take it back and look again. */
		if (mark_is_current(r, lock, m) ||
		    !atomic_compare_exchange_strong(&name->woken, &m, 0))
			return;
	}
}

void lm_wake_freed(struct lm_region *r, uint32_t lock, uint32_t self)
{
	if (lm_queue_count(lm_queue_of(r, lock)) != 0)
		lm_wake_next(r, lock, self);
	/* A semaphore's slot: its waiters queue at the gate. seq_cst, after
	 * the caller's free of the owner word: the other half of a gate
	 * waiter's count raise, then its look at the slots (the same Dekker
	 * pair as a lock's own queue). The gate was stored before the slot
	 * was taken (semaphore.h), so whoever saw the holder's owner word
	 * sees it. */
	uint32_t gate = lm_slot_gate(r, lock);
	if (gate != 0 && lm_queue_count(lm_queue_of(r, gate - 1)) != 0)
		lm_wake_next(r, gate - 1, self);
}

/* Wake the head of lock's queue if it waits for a mode compatible with
 * `mode` (which we were just granted). */
static void wake_if_compatible(struct lm_region *r, uint32_t lock,
			       uint32_t self, uint32_t mode)
{
	int64_t head = queue_head(r, lock);
	if (head < 0 || (uint32_t)head == self ||
	    !lm_modes_compatible(mode, atomic_load(&r->sessions[head]
							   .wait_mode)))
		return;
	lm_wake_next(r, lock, self);
}

void lm_wake_stalled(struct lm_region *r, uint32_t lock)
{
	uint32_t n = lm_sessions_in_use(r);
	int64_t best = -1;
	uint32_t best_ticket = 0;
	for (uint32_t s = 0; s < n; s++) {
		struct lm_session *ss = &r->sessions[s];
		if (atomic_load(&ss->waiting_on) != lock + 1 ||
		    !lm_session_is_live(ss))
			continue;
		uint32_t t = atomic_load(&ss->wait_ticket);
		if (best >= 0 && ticket_cmp(t, best_ticket) >= 0)
			continue;
		if (cut_off(ss) || !lm_session_process_running(ss))
			continue; /* it cannot take its turn */
		best = s;
		best_ticket = t;
	}
	if (best < 0)
		return;
	/* Whoever was marked woken did not take its turn: the mark now
	 * belongs to the waiter we wake. */
	atomic_store(&lm_queue_of(r, lock)->woken, (uint16_t)(best + 1));
	lm_futex_bump_wake(&r->sessions[best].wake, 1);
}

/*
 * May we try the tables? Yes if no waiter ahead of us that can act
 * wants a mode that conflicts with ours: a run of compatible waiters
 * (readers) at the head of the queue tries together, and a reader
 * behind a waiting writer waits (no writer starvation). A waiter whose
 * process is stopped (SIGSTOP, Ctrl-Z, a debugger) or gone, or cut off
 * from a majority (cut_off), cannot take its turn, so it is skipped:
 * otherwise one frozen waiter would keep everyone behind it off a free
 * lock for as long as it stays frozen. Checking costs a read of /proc
 * per waiter ahead, paid only by waiters that are not the head, on
 * their way back to sleep.
 */
static bool is_head(struct lm_session_ctx *c, uint32_t lock, uint32_t ticket,
		    uint32_t mode)
{
	struct lm_region *r = &c->region;
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t s = 0; s < n; s++) {
		if (s == c->session)
			continue;
		struct lm_session *ss = &r->sessions[s];
		if (atomic_load_explicit(&ss->waiting_on,
					 memory_order_acquire) != lock + 1 ||
		    !lm_session_is_live(ss) ||
		    ticket_cmp(atomic_load(&ss->wait_ticket), ticket) >= 0)
			continue;
		if (lm_modes_compatible(mode, atomic_load(&ss->wait_mode)))
			continue;
		if (cut_off(ss) || !lm_session_process_running(ss))
			continue;
		return false;
	}
	return true;
}

void lm_queue_leave(struct lm_queue *q)
{
	uint64_t w = atomic_load(&q->waiters);
	while (LM_WAITERS_COUNT(w) != 0 &&
	       !atomic_compare_exchange_weak(&q->waiters, &w, w - 1))
		;
}

void lm_queue_depart(struct lm_session *self, struct lm_queue *q,
		     uint32_t lock)
{
	uint32_t on = lock + 1;
	if (!atomic_compare_exchange_strong(&self->waiting_on, &on,
					    on | LM_WAIT_LEAVING))
		return; /* not queued for it */
	LM_HOOK("queue.leaving");
	lm_queue_leave(q);
	atomic_store(&self->waiting_on, 0);
}

uint32_t lm_queue_count(const struct lm_queue *q)
{
	return LM_WAITERS_COUNT(atomic_load(&q->waiters));
}

/*
 * Join the count of lock's queue and publish waiting_on (the order and
 * the re-count are explained at LM_WAITERS_WORD in shm/layout.h).
 */
static void join_queue(struct lm_session_ctx *c, uint32_t lock, uint32_t ticket,
		       uint32_t mode, bool deadlock)
{
	struct lm_queue *q = lm_queue_of(&c->region, lock);
	atomic_store(&c->self->wait_ticket, ticket);
	atomic_store(&c->self->wait_mode, mode);
	atomic_store(&c->self->wait_since_ns, lm_now_ns());
	atomic_store(&c->self->wait_flags, deadlock ? LM_WAITF_DEADLOCK : 0);
	/* Count ourselves before we publish waiting_on: whoever takes us
	 * out of the queue (we, or the supervisor after our death) does so
	 * by clearing waiting_on and then lowers the count, so a death
	 * between the two steps can over-count (which the servers repair)
	 * but never take the count below the queue. */
	uint64_t before = atomic_fetch_add(&q->waiters, 1);
	if (LM_WAITERS_COUNT(before) == 0)
		atomic_store_explicit(&q->turn_since_ns, lm_now_ns(),
				      memory_order_relaxed);
	LM_HOOK("queue.counted");
	atomic_store_explicit(&c->self->waiting_on, lock + 1,
			      memory_order_seq_cst);
	/* A repair that began after our raise may have recounted before
	 * our publish: count ourselves again (one too many is harmless). */
	uint64_t now = atomic_load_explicit(&q->waiters, memory_order_seq_cst);
	if (LM_WAITERS_GEN(now) != LM_WAITERS_GEN(before))
		atomic_fetch_add(&q->waiters, 1);
}

void lm_queue_recount(struct lm_region *r, uint32_t lock)
{
	struct lm_queue *q = lm_queue_of(r, lock);
	uint64_t w = atomic_load(&q->waiters);
	if (LM_WAITERS_COUNT(w) == 0)
		return;
	/* Announce the repair before looking (pairs with the waiter's
	 * re-read in join_queue). */
	uint64_t announced = LM_WAITERS_WORD(LM_WAITERS_GEN(w) + 1,
					     LM_WAITERS_COUNT(w));
	if (!atomic_compare_exchange_strong(&q->waiters, &w, announced))
		return; /* the queue moved: look again next time */
	uint32_t n = lm_sessions_in_use(r), queued = 0;
	for (uint32_t s = 0; s < n; s++)
		if (LM_WAIT_LOCK(atomic_load(&r->sessions[s].waiting_on)) ==
		    lock + 1)
			queued++;
	if (queued < LM_WAITERS_COUNT(announced))
		atomic_compare_exchange_strong(
			&q->waiters, &announced,
			LM_WAITERS_WORD(LM_WAITERS_GEN(announced), queued));
}

bool lm_may_barge(const struct lm_region *r, uint32_t lock)
{
	const struct lm_queue *n = lm_queue_of(r, lock);
	if (lm_queue_count(n) == 0)
		return true;
	/* Compared without a subtraction that a damaged stamp overflows. */
	int64_t since = atomic_load_explicit(&n->turn_since_ns,
					     memory_order_relaxed);
	return since > lm_now_ns() - BARGE_WINDOW_NS;
}

/* Leave the queue; a head that leaves starts the next one's turn. */
static void leave_queue(struct lm_session_ctx *c, uint32_t lock, bool was_head)
{
	struct lm_queue *n = lm_queue_of(&c->region, lock);
	lm_queue_depart(c->self, n, lock);
	uint16_t me = (uint16_t)(c->session + 1);
	atomic_compare_exchange_strong(&n->woken, &me, 0);
	if (was_head)
		atomic_store_explicit(&n->turn_since_ns, lm_now_ns(),
				      memory_order_relaxed);
}

/* The turn of lm_wait_for_grant: one grab of the lock, or one upgrade
 * of the counted hold h. */
struct grant_turn {
	uint32_t lock;
	uint64_t gen;
	uint32_t mode;
	int64_t ttl_ms;
	bool upgrade;
};

static enum grab_result grant_attempt(struct lm_session_ctx *c, void *arg,
				      struct lm_hold *h,
				      struct grab_info *info)
{
	const struct grant_turn *t = arg;
	return t->upgrade ? lm_hold_upgrade(c, h, t->ttl_ms, info)
			  : lm_grab(c, t->lock, t->gen, t->mode, t->ttl_ms,
				    h, info);
}

int lm_wait_for_grant(struct lm_session_ctx *c, uint32_t lock, uint64_t gen,
		      uint32_t mode, int64_t ttl_ms, int64_t deadline_ns,
		      int64_t deadlock_ms, struct lm_hold *h, bool upgrade)
{
	struct grant_turn t = {
		.lock = lock, .gen = gen, .mode = mode, .ttl_ms = ttl_ms,
		.upgrade = upgrade,
	};
	/* A counted mode passes the turn on to the next waiter if it can
	 * join us: a run of readers is woken one after the other. */
	struct lm_turn turn = {
		.attempt = grant_attempt, .arg = &t,
		.pass_on = mode != LM_MODE_X_ ? LM_PASS_COMPATIBLE
					      : LM_PASS_NONE,
	};
	return lm_wait_turn(c, lock, gen, mode, &turn, deadline_ns,
			    deadlock_ms, h);
}

int lm_wait_turn(struct lm_session_ctx *c, uint32_t lock, uint64_t gen,
		 uint32_t mode, const struct lm_turn *turn,
		 int64_t deadline_ns, int64_t deadlock_ms, struct lm_hold *h)
{
	struct lm_region *r = &c->region;
	struct lm_queue *name = lm_queue_of(r, lock);
	uint32_t ticket = atomic_fetch_add(&name->ticket_next, 1);
	join_queue(c, lock, ticket, mode, deadlock_ms >= 0);
	uint64_t my_wait = LM_WAIT_ID(lock, ticket);
	/* A century is "never" (and would overflow). */
	int64_t deadlock_ns = deadlock_ms < 0 || deadlock_ms > INT64_C(3153600000000)
				      ? INT64_MAX
				      : deadlock_ms * 1000000;
	int64_t next_search = deadlock_ns == INT64_MAX
				      ? INT64_MAX
				      : lm_now_ns() + deadlock_ns;

	bool head = false;
	for (;;) {
		uint32_t seq = atomic_load(&c->self->wake);
		uint32_t srv_seq = atomic_load(&r->hdr->servers_seq);
		int64_t now = lm_now_ns();
		int64_t sleep_until = now + NON_HEAD_SLEEP_NS;
		bool no_quorum = false;
		/* We count among the waiters (seq_cst), so a reclaimer that
		 * marks the name DYING after this sees us and backs off. */
		if (!lm_name_is(r, lock, gen)) {
			leave_queue(c, lock, false);
			lm_wake_next(r, lock, c->session);
			return LM_STALE_NAME;
		}
		head = is_head(c, lock, ticket, mode);
		if (head) {
			struct grab_info info;
			enum grab_result gr =
				turn->attempt(c, turn->arg, h, &info);
			if (gr == GRAB_LOST) {
				leave_queue(c, lock, true);
				lm_wake_next(r, lock, c->session);
				return LM_R_LEASELOST;
			}
			if (gr == GRAB_GRANTED) {
				leave_queue(c, lock, true);
				if (turn->pass_on == LM_PASS_COMPATIBLE)
					wake_if_compatible(r, lock, c->session,
							   mode);
				else if (turn->pass_on == LM_PASS_ALWAYS &&
					 lm_queue_count(name) != 0)
					lm_wake_next(r, lock, c->session);
				return 0;
			}
			if (gr == GRAB_KIND) {
				leave_queue(c, lock, true);
				lm_wake_next(r, lock, c->session);
				return LM_R_KIND;
			}
			if (gr == GRAB_STALE) {
				leave_queue(c, lock, true);
				lm_wake_next(r, lock, c->session);
				return LM_STALE_NAME;
			}
			if (gr == GRAB_DAMAGED) {
				leave_queue(c, lock, true);
				lm_wake_next(r, lock, c->session);
				return LM_R_INCOMPAT;
			}
			if (gr == GRAB_NOQUORUM) {
				/* A wait covers a passing loss of quorum: keep
				 * our place and sleep until a server comes
				 * back (or, at worst, a short while). */
				no_quorum = true;
				sleep_until = now + QUORUM_RECHECK_NS;
			} else if (gr == GRAB_RETRY) {
				sleep_until = now; /* try again at once */
			} else {
				sleep_until = info.busy_until_ns + 1000000;
			}
			now = lm_now_ns();
		}
		/* Chosen to end a cycle of waits, by us or by another
		 * member's search (deadlock.c). */
		bool victim = atomic_load(&c->self->victim) == my_wait;
		if (!victim && now >= next_search) {
			enum lm_deadlock dl = lm_deadlock_search(
				r, c->session, now, false, c->deadlock,
				sizeof(c->deadlock));
			victim = dl == LM_DEADLOCK_SELF;
			next_search = now + deadlock_ns;
		} else if (victim) {
			/* Say which cycle, if it still stands as we look. */
			c->deadlock[0] = '\0';
			lm_deadlock_search(r, c->session, now, true,
					   c->deadlock, sizeof(c->deadlock));
			if (c->deadlock[0] == '\0')
				snprintf(c->deadlock, sizeof(c->deadlock),
					 "another waiter's search found this "
					 "wait in a cycle");
		}
		if (victim) {
			leave_queue(c, lock, head);
			lm_wake_next(r, lock, c->session);
			return LM_R_DEADLOCK;
		}
		if (sleep_until > next_search)
			sleep_until = next_search;
		/* A stopped service will not come back within a wait. */
		bool stopped = atomic_load(&r->hdr->supervisor_state) ==
			       LM_SUP_STOPPED && lm_quorum_lost(c);
		if (now >= deadline_ns || stopped) {
			leave_queue(c, lock, head);
			lm_wake_next(r, lock, c->session); /* pass our turn on */
			/* Say why: "no quorum" if that is how things stand. */
			return lm_quorum_lost(c) ? LM_R_NOQUORUM : LM_R_TIMEDOUT;
		}
		if (sleep_until > deadline_ns)
			sleep_until = deadline_ns;
		if (sleep_until <= now)
			continue;
		/* Before sleeping, drop the "woken" mark so that the next
		 * release wakes us, then look once more: a release that saw
		 * the mark did not wake anyone (lm_wake_next). */
		uint16_t me = (uint16_t)(c->session + 1);
		if (atomic_compare_exchange_strong(&name->woken, &me, 0))
			continue;
		if (no_quorum)
			lm_futex_wait(&r->hdr->servers_seq, srv_seq,
				      sleep_until);
		else
			lm_futex_wait(&c->self->wake, seq, sleep_until);
	}
}
