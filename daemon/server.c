/*
 * server.c - a lock server process.
 *
 * Clients grant themselves locks by atomics on the table, so a server
 * does not sit on the acquire path. What it owns is the table's life:
 *
 *  - liveness: it publishes a heartbeat; a table whose server is dead,
 *    hung (SIGSTOP) or restarting does not count towards any quorum;
 *  - recovery: after a restart it stays RECOVERING (granting nothing)
 *    until every lease it could have granted before has ended, then
 *    moves itself to UP;
 *  - expiry: it frees leases that ended in its own (possibly skewed)
 *    clock, marking them abandoned for the next holder, and wakes the
 *    head waiter of each such lock;
 *  - tokens: with a state directory it makes blocks of tokens durable
 *    before clients may use them; after a restart that lost its table
 *    it recovers every lock's token high-water mark (from its state file,
 *    or else from both peers) before it may count again.
 *
 * It exits when its epoch is no longer the table's (the supervisor has
 * replaced it) or on SIGTERM.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/grant.h"
#include "../shm/group.h"
#include "../shm/heartbeat.h"
#include "../shm/lease_scan.h"
#include "../shm/name_reclaim.h"
#include "../shm/test_hook.h"
#include "../shm/region.h"
#include "../shm/session.h"
#include "../shm/wait_queue.h"
#include "../shm/watch.h"
#include "log.h"
#include "state_dir.h"

/*
 * The expiry scan visits at most this many slots per tick, so that a
 * table of a million locks costs a server a steady trickle of reads, not
 * a 64 MB sweep every tick. Clients never depend on the scan (an expired
 * lease is takeable whether or not it was swept, and a head waiter sleeps
 * only until the lease it waits for ends); it tidies abandoned grants
 * and wakes waiters early.
 */
#define EXPIRY_SCAN_SLOTS 8192u

/* A recovering server looks again at the leases it waits for this often
 * (a whole scan of its table: only while it recovers). */
#define RECOVERY_RESCAN_MS 100

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Is lock free (no live grant) on a majority of the tables? */
static bool lock_looks_free(struct lm_region *r, uint32_t lock,
			    int64_t now_ns)
{
	unsigned free = 0;
	for (unsigned j = 0; j < LM_NSERVERS; j++) {
		struct lm_server *s = r->servers[j];
		uint64_t w = atomic_load(&lm_slot_of(r, j, lock)->owner);
		uint64_t lease = atomic_load(&lm_slot_of(r, j, lock)->lease);
		uint64_t gw = atomic_load(&lm_slot_of(r, j, lock)->shared);
		int64_t srv_now = lm_server_clock_ms(s, now_ns);
		bool owner_free =
			LM_OWNER_SESSION(w) == 0 ||
			LM_OWNER_EPOCH(w) !=
				(uint32_t)(LM_SRV_EPOCH(atomic_load(&s->state)) &
					   0xffffu) ||
			(LM_LEASE_TAG(lease) == LM_OWNER_TAG(w) &&
			 LM_LEASE_EXPIRY(lease) <= srv_now);
		if (owner_free &&
		    lm_group_state(gw, lease, srv_now) != LM_GROUP_RUNS)
			free++;
	}
	return free >= LM_QUORUM;
}

/* Is this the lowest-numbered server that is up? It alone watches for
 * stalled queues, so that a stall costs one wake-up, not three. */
static bool first_server_up(struct lm_region *r, unsigned i, int64_t now_ms)
{
	for (unsigned j = 0; j < i; j++) {
		uint64_t st = atomic_load(&r->servers[j]->state);
		if (LM_SRV_STATE(st) == LM_SRV_UP &&
		    lm_heartbeat_fresh(atomic_load(&r->servers[j]->heartbeat_ms),
				       now_ms))
			return false;
	}
	return true;
}

/*
 * The TTL of the acquire attempt that owner word w belongs to, if its
 * session still records that attempt; max TTL otherwise. The client
 * stores the TTL before the attempt's sequence (release), and an attempt
 * whose owner word has no lease yet is the session's current one.
 */
static int64_t attempt_ttl_ms(const struct lm_region *r, uint64_t w)
{
	const struct lm_session *s = lm_owner_session(r, w);
	if (s == NULL)
		return r->max_ttl_ms;
	uint64_t seq = atomic_load_explicit(&s->grant_seq,
					    memory_order_acquire);
	int64_t ttl = atomic_load_explicit(&s->grant_ttl_ms,
					   memory_order_relaxed);
	if ((uint32_t)seq != LM_OWNER_SEQ(w) || ttl < LM_MIN_TTL_MS ||
	    ttl > r->max_ttl_ms)
		return r->max_ttl_ms;
	return ttl;
}

/* What a server's sweep carries from one tick to the next. */
struct sweep {
	uint32_t cursor;    /* next lock to look at */
	uint32_t live_seen; /* names in use met in this pass */
	uint8_t *idle;      /* bit per lock: unused when last passed */
	uint8_t *orphan;    /* bit per lock: an orphaned claim then */
	uint32_t short_mark; /* names_short at the start of this pass */
	bool short_before;   /* ... and it moved during the last one */
};

/*
 * The names: finish what dead processes left half-done, count the names
 * in use (lm_region_header.names_live), and, once more than half the
 * table is in use, reclaim names nothing has used for a whole pass, so
 * that a new name rarely has to reclaim one itself. Below that, names
 * stay: their references keep working, and status lists them.
 */
static void sweep_name(struct lm_region *r, struct sweep *sw, uint32_t lock,
		       bool pressure)
{
	uint8_t bit = (uint8_t)(1u << (lock & 7));
	if (lm_name_tidy(r, lock, (sw->orphan[lock / 8] & bit) != 0))
		sw->orphan[lock / 8] |= bit;
	else
		sw->orphan[lock / 8] &= (uint8_t)~bit;
	uint64_t life = atomic_load(lm_name_life(r, lock));
	if (LM_NAME_STATE(life) == LM_NAME_FREE) {
		sw->idle[lock / 8] &= (uint8_t)~bit;
		return;
	}
	sw->live_seen++;
	bool unused = LM_NAME_STATE(life) == LM_NAME_LIVE;
	for (unsigned i = 0; i < LM_NSERVERS && unused; i++)
		unused = LM_OWNER_SESSION(atomic_load(
				 &lm_slot_of(r, i, lock)->owner)) == 0 &&
			 LM_GROUP_EMPTY(atomic_load(
				 &lm_slot_of(r, i, lock)->shared));
	unused = unused && lm_queue_count(lm_queue_of(r, lock)) == 0;
	if (!unused) {
		sw->idle[lock / 8] &= (uint8_t)~bit;
		return;
	}
	if (pressure && (sw->idle[lock / 8] & bit) &&
	    lm_name_reclaim(r, lock, false) == LM_RECLAIMED) {
		sw->live_seen--;
		sw->idle[lock / 8] &= (uint8_t)~bit;
		return;
	}
	sw->idle[lock / 8] |= bit;
}

/*
 * A free lock with waiters is normally a hand-off in flight; if its head
 * is frozen (SIGSTOP) it would stay so forever. Wake the first waiter
 * that can act. A semaphore's waiters queue at its gate, which is never
 * held: theirs is a free *slot* with waiters at its gate, seen when the
 * sweep meets the slot (the gate itself always looks free, and waking
 * its queue on that would wake a waiter of a full semaphore every
 * sweep).
 */
static bool unstall_off; /* LOCKMGR_TEST_OFF=unstall (test_hook.h) */

static void unstall(struct lm_region *r, uint32_t lock, int64_t now_ns)
{
	if (unstall_off)
		return;
	struct lm_queue *q = lm_queue_of(r, lock);
	if (atomic_load_explicit(&q->sem_slots, memory_order_relaxed) != 0)
		return;
	uint32_t waited = lock;
	if (lm_queue_count(q) == 0) {
		uint32_t gate = lm_slot_gate(r, lock);
		if (gate == 0 || lm_queue_count(lm_queue_of(r, gate - 1)) == 0)
			return;
		waited = gate - 1;
	}
	if (!lock_looks_free(r, lock, now_ns))
		return;
	/* A count a waiter killed while queueing left. */
	lm_queue_recount(r, waited);
	if (lm_queue_has_waiter(r, waited))
		lm_wake_stalled(r, waited);
}

/*
 * Is the acquire (or upgrade) attempt that owner word w belongs to over:
 * past its own deadline (start + TTL, which its verify cannot beat), or
 * not its session's attempt any more, or of a session no longer live?
 * Such an attempt, caught between its owner CAS and its lease store, can
 * never count: its word may be cleared. A word without its lease does
 * not count for its claimant either way (it verifies its owner word
 * after its lease store, and finds it gone).
 */
static bool claim_is_over(const struct lm_region *r, uint64_t w,
			  int64_t now_ns)
{
	const struct lm_session *s = lm_owner_session(r, w);
	if (s == NULL || !lm_session_is_live(s))
		return true;
	uint64_t seq = atomic_load_explicit(&s->grant_seq,
					    memory_order_acquire);
	int64_t start = atomic_load_explicit(&s->grant_start_ns,
					     memory_order_relaxed);
	int64_t ttl = atomic_load_explicit(&s->grant_ttl_ms,
					   memory_order_relaxed);
	if (atomic_load_explicit(&s->grant_seq, memory_order_acquire) != seq)
		return false; /* moving: look again next sweep */
	if ((uint32_t)seq != LM_OWNER_SEQ(w))
		return true;
	if (ttl < LM_MIN_TTL_MS || ttl > r->max_ttl_ms || start <= 0 ||
	    start > now_ns)
		ttl = r->max_ttl_ms; /* damaged or unknown: the longest */
	return start > 0 && start <= now_ns &&
	       now_ns - start > ttl * 1000000;
}

/*
 * Is lease a running lease of the lock's group, of its generation or of
 * the next one (being started: its lease is written before the group
 * word)? Then an owner word without a lease of its own is an X claim
 * that will find the group and back off (or a downgrade in progress),
 * and capping it would overwrite the group's lease: the next X taker
 * would take the group for ended and reset it under its live members.
 * Such a claim is capped once the group's lease has ended.
 */
static bool group_lease_runs(struct lm_slot *slot, uint64_t lease,
			     int64_t srv_now)
{
	uint32_t g = LM_GROUP_GEN(atomic_load(&slot->shared));
	uint32_t tag = LM_LEASE_TAG(lease);
	return LM_LEASE_EXPIRY(lease) > srv_now &&
	       (LM_GROUP_TAG_IS(tag, g) ||
		LM_GROUP_TAG_IS(tag, (g + 1u) & 0xffffffu));
}

/*
 * A group of counted holders whose lease ended (every member lost its
 * lease, layout.h) on table i: reset it, so that waiters need not wait
 * for the next taker to notice. True if this call did; *token is then
 * the group's token, read while the group word still said so (once it
 * has ended, a new holder may write its own), and *end which end it was.
 *
 * The expiry goes into the end's identity only if the lease word is
 * tagged for the group's generation. A starter of the next generation
 * (or a downgrade) writes its lease before the group word that names
 * it, and one acquire can write the same word on every table. Then the
 * table's number stands in, as -1 - i, which no expiry is and which
 * differs between tables; a table ends a generation number once in 2^24
 * generations. The end may count twice, never take another's identity.
 */
static bool end_group(struct lm_slot *slot, unsigned i, int64_t srv_now,
		      uint64_t *token, uint64_t *end)
{
	uint64_t gw = atomic_load(&slot->shared);
	if (LM_GROUP_EMPTY(gw))
		return false;
	uint64_t lease = atomic_load(&slot->lease);
	if (lm_group_state(gw, lease, srv_now) != LM_GROUP_ENDED)
		return false;
	*token = atomic_load(&slot->token);
	int64_t expiry = lm_group_lease_is_its(gw, lease)
				 ? LM_LEASE_EXPIRY(lease)
				 : -1 - (int64_t)i;
	*end = lm_end_of_group(*token, LM_GROUP_GEN(gw), expiry);
	return lm_group_end(slot, gw);
}

/* The pid of the session an owner word names, or 0. */
static int32_t owner_pid(const struct lm_region *r, uint64_t w)
{
	const struct lm_session *ss = lm_owner_session(r, w);
	return ss != NULL ? LM_SESS_PID(atomic_load(&ss->life)) : 0;
}

static unsigned expire_leases(struct lm_region *r, unsigned i,
			      uint64_t epoch, struct sweep *sw)
{
	int64_t now_ns = lm_now_ns();
	bool watch_queues = first_server_up(r, i, now_ns / 1000000);
	struct lm_server *srv = r->servers[i];
	uint32_t n = lm_names_in_use(r);
	int64_t srv_now = lm_server_clock_ms(srv, now_ns);
	unsigned freed = 0;
	if (sw->cursor >= n) {
		if (watch_queues && n > 0)
			atomic_store(&r->hdr->names_live, sw->live_seen);
		sw->cursor = 0;
		sw->live_seen = 0;
		uint32_t s = atomic_load(&r->hdr->names_short);
		sw->short_before = s != sw->short_mark;
		sw->short_mark = s;
	}
	/* Reclaim idle names ahead of inserts only while inserts run short
	 * of free slots: a table full of names that are all in use now and
	 * then (a fixed set of a million rows) must keep them, or every
	 * use would pay for an insert. */
	bool pressure = atomic_load(&r->hdr->names_live) > r->max_locks / 2 &&
			(sw->short_before ||
			 atomic_load(&r->hdr->names_short) != sw->short_mark);
	uint32_t end = n - sw->cursor > EXPIRY_SCAN_SLOTS
			       ? sw->cursor + EXPIRY_SCAN_SLOTS
			       : n;
	uint32_t lock = sw->cursor;
	sw->cursor = end;
	for (; lock < end; lock++) {
		if (watch_queues)
			sweep_name(r, sw, lock, pressure);
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		if (watch_queues)
			unstall(r, lock, now_ns);
		uint64_t token, which;
		if (end_group(slot, i, srv_now, &token, &which)) {
			freed++;
			lm_lock_expired(r, lock, LM_MODE_S_, 0, token, which);
			lm_wake_freed(r, lock, LM_NO_SESSION);
		}
		uint64_t w = atomic_load(&slot->owner);
		if (LM_OWNER_SESSION(w) == 0)
			continue;
		uint64_t lease = atomic_load(&slot->lease);
		if (atomic_load(&slot->owner) != w)
			continue; /* the lease may be a newer holder's */
		bool tagged = LM_LEASE_TAG(lease) == LM_OWNER_TAG(w);
		int16_t age = (int16_t)(uint16_t)(LM_OWNER_EPOCH(w) -
						  (uint32_t)(epoch & 0xffffu));
		uint64_t next;
		if (age > 0)
			continue; /* a later life's: we are being replaced */
		if (age < 0) {
			/* From an earlier life: it counts for nobody, but
			 * while its lease runs a quick second restart must
			 * still see it to set its quarantine. (Whatever the
			 * lease's tag: a downgrade caught between its group's
			 * lease and its group word leaves its owner word
			 * under the group's lease, lease_scan.c.) */
			if (LM_LEASE_EXPIRY(lease) > srv_now)
				continue;
			next = tagged && !lm_grant_holds_quorum_elsewhere(
						 r, lock, i, w, now_ns)
				       ? LM_OWNER_ABANDONED
				       : LM_OWNER_FREE;
		} else {
			if (!tagged && group_lease_runs(slot, lease, srv_now)) {
				/* Not capped (it would end the group), but
				 * not kept past its attempt's own deadline
				 * either: while other members renew, the
				 * group's lease never ends, and the claim
				 * would keep new readers out for ever. */
				if (claim_is_over(r, w, now_ns) &&
				    atomic_compare_exchange_strong(
					    &slot->owner, &w, LM_OWNER_FREE))
					lm_wake_freed(r, lock, LM_NO_SESSION);
				continue;
			}
			if (!tagged) {
				/* The holder CASed the owner word but has not
				 * stored its lease: usually it is about to, but
				 * it may have been frozen in between. Give the
				 * grant a lease no real one can outlast (its own
				 * began earlier, with this TTL); the holder's own
				 * store, if it comes, replaces it. */
				uint64_t cap = LM_LEASE_WORD(
					w, srv_now + attempt_ttl_ms(r, w));
				atomic_compare_exchange_strong(&slot->lease,
							       &lease, cap);
				continue;
			}
			if (LM_LEASE_EXPIRY(lease) > srv_now)
				continue;
			/* A grant that still holds a majority elsewhere only
			 * dropped this table (a fast clock here): freed
			 * clean. Otherwise its holder lost it. */
			next = lm_grant_holds_quorum_elsewhere(r, lock, i, w,
							       now_ns)
				       ? LM_OWNER_FREE
				       : LM_OWNER_ABANDONED;
		}
		/* Whose end it is, read while the owner word still says so:
		 * once the table is free, the next holder may write its own
		 * token there (and the end would be announced as its). */
		token = atomic_load(&slot->token);
		int32_t pid = owner_pid(r, w);
		if (!atomic_compare_exchange_strong(&slot->owner, &w, next))
			continue;
		freed++;
		LM_HOOK("server.freed_lapsed");
		/* Only a grant that lost its majority ended here; a table
		 * it merely dropped changes nothing a watcher sees. */
		if (next == LM_OWNER_ABANDONED)
			lm_lock_expired(r, lock, LM_MODE_X_, pid, token,
					lm_end_of_grant(w));
		lm_wake_freed(r, lock, LM_NO_SESSION);
	}
	return freed;
}

/* Make a new block of tokens durable if clients are near the end. */
static void serve_reservation(struct lm_server *srv, const char *state_dir,
			      unsigned index, const char *who)
{
	uint64_t res = atomic_load(&srv->token_reserved);
	uint64_t want = atomic_load(&srv->token_wanted);
	if (state_dir == NULL || want + LM_TOKEN_BLOCK / 2 <= res)
		return;
	uint64_t next = (want > res ? want : res) + LM_TOKEN_BLOCK;
	char err[512], point[32];
	snprintf(point, sizeof(point), "server%u.reserving", index);
	LM_HOOK(point);
	if (lm_state_store(state_dir, index, next, err, sizeof(err)) != 0) {
		/* Clients wait (bounded) and this table drops out of their
		 * grants until the disk takes writes again. */
		lm_log_error(who, "%s; tokens above %llu cannot be issued here",
			     err, (unsigned long long)res);
		return;
	}
	/* Never lower it (pairs with the acquire load in
	 * within_reservation). */
	uint64_t cur = atomic_load(&srv->token_reserved);
	while (cur < next &&
	       !atomic_compare_exchange_weak_explicit(
		       &srv->token_reserved, &cur, next, memory_order_release,
		       memory_order_relaxed))
		;
	lm_futex_bump_wake(&srv->reserve_seq, INT32_MAX);
}

/*
 * One process per table writes its state file. A server process whose
 * supervisor died between forking it and recording its pid lives on
 * while the next supervisor starts another for the same table; if both
 * wrote, one stopped in the middle of a reservation could later write a
 * lower mark over a higher one, and a full restart would issue tokens
 * again. So a server holds an exclusive flock on DIR/server-N.lock for
 * its life (the kernel drops it when the process dies), and a new one
 * waits for the old one to go (it exits once it sees the table's new
 * epoch). Returns the lock's fd, or -1 if this process was superseded
 * while it waited, or cannot open the lock.
 */
static int lock_state_file(const char *state_dir, unsigned index,
			   const struct lm_server *srv, uint64_t epoch,
			   const char *who)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/server-%u.lock", state_dir, index);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		lm_log_error(who, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	bool logged = false;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			lm_log_error(who, "cannot lock %s: %s", path,
				     strerror(errno));
			close(fd);
			return -1;
		}
		if (LM_SRV_EPOCH(atomic_load(&srv->state)) != epoch ||
		    stop_requested) {
			close(fd);
			return -1;
		}
		if (!logged) {
			lm_log(who, "waiting for the previous process of server "
			       "%u to exit (it holds %s)", index, path);
			logged = true;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL); /* it exits within a tick of its own */
	}
	return fd;
}

static bool peer_has_tokens(const struct lm_server *p, int64_t now_ms)
{
	uint64_t st = atomic_load(&p->state);
	return (LM_SRV_STATE(st) == LM_SRV_UP ||
		LM_SRV_STATE(st) == LM_SRV_RECOVERING) &&
	       lm_heartbeat_fresh(atomic_load(&p->heartbeat_ms), now_ms) &&
	       !(atomic_load(&p->flags) & LM_SRVF_TOKENS_LOST);
}

/* The highest token table `index` of the region has seen. */
static uint64_t table_high_water(struct lm_region *r, unsigned index)
{
	uint64_t t = atomic_load(&r->servers[index]->token_floor);
	uint32_t n = lm_names_in_use(r);
	for (uint32_t lock = 0; lock < n; lock++) {
		uint64_t v = atomic_load(&lm_slot_of(r, index, lock)->token);
		t = v > t ? v : t;
	}
	return t;
}

static void raise_to(_Atomic uint64_t *v, uint64_t x)
{
	uint64_t cur = atomic_load(v);
	while (cur < x && !atomic_compare_exchange_weak(v, &cur, x))
		;
}

/*
 * Copy the peers' token marks into our lost table and bound our
 * quarantine by their leases (*end_ns): any grant that counted our table
 * also holds a majority, so it wrote its token and its lease on at least
 * one of them. Which one is unknown, so both must be readable (up or
 * recovering, heartbeat fresh, not themselves lost). The epoch was
 * bumped before this process started, so every write-back and lease that
 * counted for a grant at the old epoch is already in the peers.
 */
static bool read_peers(struct lm_region *r, unsigned index, int64_t *end_ns)
{
	int64_t now_ms = lm_now_ms();
	unsigned peer[2], np = 0;
	for (unsigned j = 0; j < LM_NSERVERS; j++)
		if (j != index)
			peer[np++] = j;
	for (unsigned k = 0; k < 2; k++)
		if (!peer_has_tokens(r->servers[peer[k]], now_ms))
			return false;
	/* A peer that restarts (or loses its table) while we copy from it
	 * may hand us zeros: note both peers' state words and check after
	 * the copy that neither changed. */
	uint64_t before[2] = {atomic_load(&r->servers[peer[0]]->state),
			      atomic_load(&r->servers[peer[1]]->state)};
	uint32_t n = lm_names_in_use(r);
	for (uint32_t lock = 0; lock < n; lock++) {
		uint64_t t = 0;
		for (unsigned k = 0; k < 2; k++) {
			uint64_t v = atomic_load(
				&lm_slot_of(r, peer[k], lock)->token);
			t = v > t ? v : t;
		}
		raise_to(&lm_slot_of(r, index, lock)->token, t);
	}
	int64_t now = lm_now_ns();
	*end_ns = now;
	for (unsigned k = 0; k < 2; k++) {
		raise_to(&r->servers[index]->token_floor,
			 atomic_load(&r->servers[peer[k]]->token_floor));
		int64_t e = lm_leases_end_ns(r, peer[k], UINT64_MAX, now);
		*end_ns = e > *end_ns ? e : *end_ns;
	}
	for (unsigned k = 0; k < 2; k++)
		if (atomic_load(&r->servers[peer[k]]->state) != before[k] ||
		    !peer_has_tokens(r->servers[peer[k]], lm_now_ms()))
			return false; /* copied from a moving peer: again */
	return true;
}

static int64_t ceil_ms(int64_t ns)
{
	return (ns + 999999) / 1000000;
}

/*
 * Work out when this restarted server may count again, and why; true
 * once lm_server.quarantine_until_ms holds the answer.
 *
 *  - Its table survived: until the leases granted in its earlier lives
 *    end. They are all in the table (a renew re-checks the server's life
 *    after its CAS, and an acquire verifies after every write), and
 *    usually there are none.
 *  - Its table was lost: until every lease on both peers that could
 *    include it has ended, once both can be read (their token marks are
 *    needed too, unless a state file has them). With a state file and a
 *    peer missing, one max TTL from the restart is the fallback: nothing
 *    better is knowable.
 *  - Never before the supervisor's floor (a new region while the last
 *    service's leases may run).
 */
static bool plan_recovery(struct lm_region *r, unsigned index, uint64_t epoch,
			  const char *state_dir)
{
	struct lm_server *srv = r->servers[index];
	int64_t floor = atomic_load(&srv->quarantine_floor_ms);
	int64_t until;
	uint32_t why;
	if (!(atomic_load(&srv->flags) & LM_SRVF_TOKENS_LOST)) {
		int64_t now = lm_now_ns();
		int64_t end = lm_leases_end_ns(r, index, epoch, now);
		until = end > now ? ceil_ms(end) : 0;
		why = LM_RECOV_OWN_LEASES;
	} else {
		int64_t end_ns;
		int64_t fallback = atomic_load(&srv->restarted_ms) +
				   r->max_ttl_ms;
		if (read_peers(r, index, &end_ns)) {
			until = ceil_ms(end_ns);
			why = LM_RECOV_PEER_LEASES;
		} else if (state_dir != NULL && lm_now_ms() >= fallback) {
			until = fallback;
			why = LM_RECOV_MAX_TTL;
		} else {
			atomic_store(&srv->recovery, LM_RECOV_PEERS);
			atomic_store(&srv->quarantine_until_ms,
				     state_dir != NULL ? fallback : INT64_MAX);
			return false;
		}
		atomic_fetch_and(&srv->flags, ~LM_SRVF_TOKENS_LOST);
	}
	if (floor > until) {
		until = floor;
		why = LM_RECOV_PREV_LIFE;
	}
	atomic_store(&srv->recovery, why);
	atomic_store(&srv->quarantine_until_ms, until);
	return true;
}

/*
 * While a restarted server waits out the leases of its earlier lives on
 * its own table, their holders may release them (or die, or let them
 * expire): a lease no longer in the table is believed by nobody, so the
 * wait ends with the last one still there. Only ever shortened: a lease
 * longer now than at the plan is an old-life renew, which that renew's
 * re-check of the epoch does not count.
 */
static void shorten_recovery(struct lm_region *r, unsigned index,
			     uint64_t epoch)
{
	struct lm_server *srv = r->servers[index];
	if (atomic_load(&srv->recovery) != LM_RECOV_OWN_LEASES)
		return;
	int64_t now = lm_now_ns();
	int64_t end = lm_leases_end_ns(r, index, epoch, now);
	int64_t until = end > now ? ceil_ms(end) : 0;
	int64_t floor = atomic_load(&srv->quarantine_floor_ms);
	until = until > floor ? until : floor;
	if (until < atomic_load(&srv->quarantine_until_ms))
		atomic_store(&srv->quarantine_until_ms, until);
}

static const char *recovery_reason(uint32_t why)
{
	switch (why) {
	case LM_RECOV_OWN_LEASES:
		return "leases granted before its restart";
	case LM_RECOV_PEER_LEASES:
		return "leases on its peers that could include its lost table";
	case LM_RECOV_MAX_TTL:
		return "one max TTL: a peer could not be read";
	case LM_RECOV_PREV_LIFE:
		return "leases of the service that ran before";
	default:
		return "?";
	}
}

int lm_server_main(unsigned index, const char *name, const char *state_dir)
{
	char who[32];
	snprintf(who, sizeof(who), "server %u", index);
	unstall_off = lm_test_off("unstall");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	struct lm_region r;
	char why[256];
	int rc = lm_region_attach(&r, name, why, sizeof(why));
	if (rc != 0) {
		lm_log_error(who, "cannot attach %s: %s", name, why);
		return 1;
	}
	if (index >= LM_NSERVERS)
		return 1;
	struct lm_server *srv = r.servers[index];
	uint64_t st = atomic_load(&srv->state);
	uint64_t epoch = LM_SRV_EPOCH(st);
	lm_log(who, "started (pid %d, epoch %llu, %s)", (int)getpid(),
	       (unsigned long long)epoch,
	       LM_SRV_STATE(st) == LM_SRV_RECOVERING ? "recovering" : "?");
	/* The reservation starts above every token this table has seen:
	 * its state file's mark, and the region's own marks (an adopted
	 * region may have issued tokens before there was a file). */
	uint64_t base = table_high_water(&r, index);
	int lock_fd = -1;
	if (state_dir != NULL) {
		lock_fd = lock_state_file(state_dir, index, srv, epoch, who);
		if (lock_fd < 0) {
			lm_region_detach(&r);
			return 1;
		}
		base = table_high_water(&r, index);
		uint64_t res = 0;
		char err[512];
		int rc = lm_state_load(state_dir, index, &res, err, sizeof(err));
		if (rc < 0) {
			lm_log_error(who, "%s; refusing to start (tokens "
				     "issued before cannot be proven lower "
				     "than new ones): restore the file from a "
				     "backup, then 'lockctl server start %u' "
				     "if it stays down", err, index);
			return 1;
		}
		if (res > base)
			base = res;
		/* The file must cover the region's marks before anything
		 * else happens: a full restart trusts the file alone. */
		if (base > res &&
		    lm_state_store(state_dir, index, base, err, sizeof(err)) !=
			    0) {
			lm_log_error(who, "%s; refusing to start: make the "
				     "state directory writable, then 'lockctl "
				     "server start %u' if it stays down", err,
				     index);
			return 1;
		}
		raise_to(&srv->token_floor, base);
		atomic_store(&srv->token_reserved, base);
		serve_reservation(srv, state_dir, index, who);
	} else {
		atomic_store(&srv->token_reserved, UINT64_MAX);
	}
	bool planned = false, waiting_logged = false;
	int64_t next_rescan_ms = 0;
	pid_t self = getpid();

	struct sweep sw = {.idle = calloc(r.max_locks / 8 + 1, 1),
			   .orphan = calloc(r.max_locks / 8 + 1, 1)};
	sw.short_mark = atomic_load(&r.hdr->names_short);
	if (sw.idle == NULL || sw.orphan == NULL) {
		lm_log_error(who, "out of memory for the sweep of %u locks",
			     r.max_locks);
		return 1;
	}
	int64_t last_beat_ms = lm_now_ms();
	while (!stop_requested) {
		int64_t now = lm_now_ns();
		int64_t now_ms = now / 1000000;
		atomic_store_explicit(&srv->heartbeat_ms, now_ms,
				      memory_order_release);
		/* Back from a stall (SIGSTOP, say) that clients took for a
		 * death: acquires waiting for a quorum may proceed. */
		if (now_ms - last_beat_ms > LM_HEARTBEAT_STALE_MS)
			lm_futex_bump_wake(&r.hdr->servers_seq, INT32_MAX);
		last_beat_ms = now_ms;
		st = atomic_load(&srv->state);
		if (LM_SRV_EPOCH(st) != epoch) {
			lm_log(who, "superseded by epoch %llu, exiting",
			       (unsigned long long)LM_SRV_EPOCH(st));
			break;
		}
		/* The region was made anew under us (--fresh), and its
		 * epochs start again: the pid tells us apart. */
		pid_t owner = atomic_load(&srv->pid);
		if (owner != 0 && owner != self) {
			lm_log(who, "superseded by pid %d, exiting", (int)owner);
			break;
		}
		if (LM_SRV_STATE(st) == LM_SRV_RECOVERING && !planned) {
			planned = plan_recovery(&r, index, epoch, state_dir);
			if (planned) {
				int64_t q = atomic_load(
					&srv->quarantine_until_ms) - now_ms;
				if (q > 0)
					lm_log(who, "counts again in %lld ms "
					       "(%s)", (long long)q,
					       recovery_reason(atomic_load(
						       &srv->recovery)));
			} else if (!waiting_logged) {
				lm_log(who, "lost its table: waiting for both "
				       "peers to be up, to recover token marks "
				       "and bound the leases it may be in");
				waiting_logged = true;
			}
		}
		if (LM_SRV_STATE(st) == LM_SRV_RECOVERING && planned &&
		    now_ms >= next_rescan_ms) {
			shorten_recovery(&r, index, epoch);
			next_rescan_ms = now_ms + RECOVERY_RESCAN_MS;
		}
		serve_reservation(srv, state_dir, index, who);
		if (LM_SRV_STATE(st) == LM_SRV_RECOVERING && planned &&
		    now_ms >= atomic_load(&srv->quarantine_until_ms)) {
			uint64_t up = LM_SRV_WORD(epoch, LM_SRV_UP);
			if (atomic_compare_exchange_strong(&srv->state, &st,
							   up)) {
				atomic_store(&srv->recovery, LM_RECOV_NONE);
				lm_futex_bump_wake(&r.hdr->servers_seq,
						   INT32_MAX);
				lm_log(who, "up (epoch %llu)",
				       (unsigned long long)epoch);
			}
		}
		unsigned expired = expire_leases(&r, index, epoch, &sw);
		if (expired != 0)
			atomic_fetch_add(&srv->expired, expired);
		uint32_t seq = atomic_load(&srv->wake);
		lm_futex_wait(&srv->wake, seq,
			      now + (int64_t)LM_HEARTBEAT_MS * 1000000);
	}
	free(sw.idle);
	free(sw.orphan);
	if (lock_fd >= 0)
		close(lock_fd);
	lm_region_detach(&r);
	return 0;
}
