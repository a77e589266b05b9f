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
 *    head waiter of each such lock.
 *
 * It exits when its epoch is no longer the table's (the supervisor has
 * replaced it) or on SIGTERM.
 */
#include "server.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../client/internal.h"
#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/region.h"
#include "log.h"

#define EXPIRY_SCAN_MS 50

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static unsigned expire_leases(struct lm_region *r, unsigned i,
			      uint64_t epoch)
{
	struct lm_server *srv = r->servers[i];
	uint32_t n = lm_names_in_use(r);
	int64_t srv_now = lm_server_clock_ms(srv, lm_now_ns());
	unsigned freed = 0;
	for (uint32_t lock = 0; lock < n; lock++) {
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		uint64_t w = atomic_load_explicit(&slot->owner,
						  memory_order_acquire);
		if (LM_OWNER_SESSION(w) == 0)
			continue;
		uint64_t next;
		if (LM_OWNER_EPOCH(w) != (uint32_t)(epoch & 0xffffu)) {
			next = LM_OWNER_FREE; /* from an earlier life */
		} else {
			uint64_t lease = atomic_load(&slot->lease);
			if (LM_LEASE_TAG(lease) != LM_OWNER_TAG(w)) {
				/* The holder CASed the owner word but has not
				 * stored its lease: usually it is about to, but
				 * it may have been frozen in between. Give the
				 * grant a lease no real one can outlast (its own
				 * began earlier and is at most max TTL); the
				 * holder's own store, if it comes, replaces it. */
				uint64_t cap = LM_LEASE_WORD(
					w, srv_now + r->max_ttl_ms);
				atomic_compare_exchange_strong(&slot->lease,
							       &lease, cap);
				continue;
			}
			if (LM_LEASE_EXPIRY(lease) > srv_now)
				continue;
			next = LM_OWNER_ABANDONED;
		}
		if (!atomic_compare_exchange_strong(&slot->owner, &w, next))
			continue;
		freed++;
		if (atomic_load(&r->names[lock].waiters) != 0)
			lm_wake_next(r, lock);
	}
	return freed;
}

int lm_server_main(unsigned index, const char *name)
{
	char who[32];
	snprintf(who, sizeof(who), "server %u", index);
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
		lm_log(who, "cannot attach %s: %s", name, why);
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

	int64_t next_scan = 0;
	while (!stop_requested) {
		int64_t now = lm_now_ns();
		int64_t now_ms = now / 1000000;
		atomic_store_explicit(&srv->heartbeat_ms, now_ms,
				      memory_order_release);
		st = atomic_load(&srv->state);
		if (LM_SRV_EPOCH(st) != epoch) {
			lm_log(who, "superseded by epoch %llu, exiting",
			       (unsigned long long)LM_SRV_EPOCH(st));
			break;
		}
		if (LM_SRV_STATE(st) == LM_SRV_RECOVERING &&
		    now_ms >= atomic_load(&srv->quarantine_until_ms)) {
			uint64_t up = LM_SRV_WORD(epoch, LM_SRV_UP);
			if (atomic_compare_exchange_strong(&srv->state, &st, up))
				lm_log(who, "up (epoch %llu)",
				       (unsigned long long)epoch);
		}
		if (now_ms >= next_scan) {
			unsigned n = expire_leases(&r, index, epoch);
			if (n != 0)
				atomic_fetch_add(&srv->expired, n);
			next_scan = now_ms + EXPIRY_SCAN_MS;
		}
		uint32_t seq = atomic_load(&srv->wake);
		lm_futex_wait(&srv->wake, seq,
			      now + (int64_t)LM_HEARTBEAT_MS * 1000000);
	}
	lm_region_detach(&r);
	return 0;
}
