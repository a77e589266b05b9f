/*
 * group.c - steps on a lock's group of counted holders (group.h).
 */
#include <stdatomic.h>

#include "group.h"
#include "modes.h"

bool lm_group_leave(struct lm_slot *slot, uint32_t gen, uint32_t mode)
{
	uint64_t w = atomic_load(&slot->shared);
	for (;;) {
		if (LM_GROUP_GEN(w) != (gen & 0xffffffu))
			return false;
		uint64_t less = lm_group_minus(w, mode);
		if (less == w)
			return false; /* no such member: leave it alone */
		if (atomic_compare_exchange_weak(&slot->shared, &w, less))
			return true;
	}
}

bool lm_group_end(struct lm_slot *slot, uint64_t w)
{
	return atomic_compare_exchange_strong(&slot->shared, &w,
					      lm_group_reset(w));
}

bool lm_group_extend(struct lm_slot *slot, uint32_t gen, int64_t expiry,
		     int64_t srv_now, int64_t *judged)
{
	uint64_t lease = atomic_load(&slot->lease);
	for (;;) {
		if (!LM_GROUP_TAG_IS(LM_LEASE_TAG(lease), gen) ||
		    LM_LEASE_EXPIRY(lease) <= srv_now)
			return false;
		*judged = LM_LEASE_EXPIRY(lease);
		/* Always a new word (the tag flips), even when the lease
		 * runs longer than we need already: a CAS from the word as
		 * it was before our join must fail (layout.h). */
		if (atomic_compare_exchange_weak(
			    &slot->lease, &lease,
			    LM_GROUP_LEASE_NEXT(lease, gen, expiry)))
			return true;
	}
}
