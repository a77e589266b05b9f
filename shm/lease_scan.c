/*
 * lease_scan.c - how long the leases on a table can still run.
 *
 * A server that restarts must not count for any grant before every
 * grant that some client may still believe in, and that counted this
 * table in an earlier life, has ended (docs/protocol.md, "Restarts").
 * Its own table tells it, if the table survived; a lost table is bounded
 * by its peers', since every grant that counted it also holds a majority
 * and so wrote its lease on at least one peer. `lockctl server kill`
 * uses the same scan to say how long a killed server will be out.
 */
#include <stdatomic.h>

#include "clock.h"
#include "lease_scan.h"

int64_t lm_leases_end_ns(const struct lm_region *r, unsigned table,
			 uint64_t skip_epoch, int64_t now_ns)
{
	const struct lm_server *srv = r->servers[table];
	int64_t srv_now = lm_server_clock_ms(srv, now_ns);
	int64_t latest = 0;
	uint32_t n = lm_names_in_use(r);
	for (uint32_t lock = 0; lock < n; lock++) {
		struct lm_slot *slot = lm_slot_of(r, table, lock);
		/* A group's lease: its members may believe in it until it
		 * ends (group words carry no epoch, so every life's count). */
		uint64_t gw = atomic_load(&slot->shared);
		if (!LM_GROUP_EMPTY(gw)) {
			uint64_t gl = atomic_load(&slot->lease);
			if (LM_GROUP_TAG_IS(LM_LEASE_TAG(gl),
					    LM_GROUP_GEN(gw)) &&
			    LM_LEASE_EXPIRY(gl) > latest)
				latest = LM_LEASE_EXPIRY(gl);
		}
		uint64_t w = atomic_load(&slot->owner);
		if (LM_OWNER_SESSION(w) == 0 ||
		    (skip_epoch != UINT64_MAX &&
		     LM_OWNER_EPOCH(w) == (uint32_t)(skip_epoch & 0xffffu)))
			continue;
		/* Any running lease under a holder's owner word counts,
		 * whatever its tag: a word without its own lease is usually
		 * an acquire between its owner CAS and its lease store (which
		 * has not counted yet), but it may be a downgrade between its
		 * group's lease and its group word, whose X grant did count
		 * here and is still believed in. */
		uint64_t lease = atomic_load(&slot->lease);
		int64_t e = LM_LEASE_EXPIRY(lease);
		latest = e > latest ? e : latest;
	}
	if (latest <= srv_now)
		return now_ns;
	/* One ms more: lease words are whole milliseconds. */
	return lm_server_to_local_ns(srv, latest + 1, srv_now, now_ns);
}
