/*
 * grant_steps.h - steps of the grant protocol that more than one of its
 * files takes (grant.c: acquire, renew, release; convert.c: upgrade and
 * downgrade). Not for the daemon or the library: they use grant.h.
 */
#ifndef LOCKMGR_SHM_GRANT_STEPS_H
#define LOCKMGR_SHM_GRANT_STEPS_H

#include <stdbool.h>
#include <stdint.h>

#include "grant.h"

/* What a grab may do with the owner word it found on a table. */
enum take {
	TAKE,       /* free, from an earlier life, abandoned or expired */
	TAKE_BUSY,  /* held by a live lease */
	TAKE_STALE, /* from a later life than our look at the server: our
		     * view of the server is out of date; look again */
};

/*
 * May the owner word cur of table i's slot be replaced by a new grant at
 * epoch `epoch`? Sets *abandoned when the previous holder did not
 * release cleanly, and *busy_until_srv to when a live lease ends.
 */
enum take lm_slot_takeable(const struct lm_region *r, uint32_t lock,
			   unsigned i, uint64_t cur, uint64_t epoch,
			   int64_t t0, int64_t srv_now, bool *abandoned,
			   int64_t *busy_until_srv);

/* Store our lease `mine` after our owner CAS (of w), by CAS from `seen`;
 * false if the owner word stopped being w (taken over). */
bool lm_store_lease(struct lm_slot *slot, uint64_t w, uint64_t seen,
		    uint64_t mine);

/* Until when (local ns) a grant whose leases end at expiry[] on the
 * tables of mask is valid (a majority of them, less the drift bound). */
int64_t lm_valid_until(const struct lm_region *r, unsigned mask,
		       const int64_t *expiry, const int64_t *srv_now,
		       int64_t t0, int64_t ttl_ms);

/* May token be written to this server's table (its reservation)? */
bool lm_within_reservation(struct lm_server *srv, uint64_t token,
			   int64_t deadline_ns);

/* Raise a token mark to at least v (CAS max). */
void lm_raise_token(_Atomic uint64_t *t, uint64_t v);

/* The largest token mark (or server floor) of lock's tables in mask. */
uint64_t lm_marks_max(const struct lm_region *r, uint32_t lock,
		      unsigned mask);

#endif
