/*
 * group.h - the counted holders of a lock on one table (IS, IX, S, SIX):
 * the group word and its lease (layout.h, "Group word"). The join is part
 * of the grant protocol (grant.c); these are the steps every party uses.
 */
#ifndef LOCKMGR_SHM_GROUP_H
#define LOCKMGR_SHM_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

/* What a group word and the lease word beside it say, at server time
 * srv_now. */
enum lm_group_state {
	LM_GROUP_NONE,  /* no member */
	LM_GROUP_RUNS,  /* members, under a running lease */
	LM_GROUP_ENDED, /* members, but the lease of their generation has
			 * ended (or is not there: a newer generation's
			 * starter wrote its own, layout.h): every member's
			 * lease has ended, and the group may be reset */
};

/* Whether lease is the lease of group word w's generation (not an X
 * holder's, nor a next generation's that its starter wrote first). */
static inline bool lm_group_lease_is_its(uint64_t w, uint64_t lease)
{
	return LM_GROUP_TAG_IS(LM_LEASE_TAG(lease), LM_GROUP_GEN(w));
}

static inline enum lm_group_state lm_group_state(uint64_t w, uint64_t lease,
						 int64_t srv_now)
{
	if (LM_GROUP_EMPTY(w))
		return LM_GROUP_NONE;
	if (lm_group_lease_is_its(w, lease) && LM_LEASE_EXPIRY(lease) > srv_now)
		return LM_GROUP_RUNS;
	return LM_GROUP_ENDED;
}

/*
 * Leave generation gen of slot's group, as a member of mode `mode`: one
 * CAS expecting that generation, retried only while it holds. False if
 * the group was reset meanwhile (nothing to leave: the count is gone).
 */
bool lm_group_leave(struct lm_slot *slot, uint32_t gen, uint32_t mode);

/*
 * End the group of word w (which lm_group_state found ENDED): reset it
 * to an empty next generation, if it is still w. True if this call did.
 */
bool lm_group_end(struct lm_slot *slot, uint64_t w);

/*
 * Raise the lease of generation gen to at least expiry, by CAS from a
 * word that is that generation's and runs at srv_now (the server clock
 * read before). *judged: the expiry of the word replaced (or found long
 * enough). The caller must then read the server clock *after* this call
 * and count the extension only if *judged has not passed by then: a
 * taker judges a lease ended only after its expiry, so if it has not
 * passed after our CAS, nobody judged the word we replaced as ended.
 * (Read once after several extensions, the clock checks them all.)
 * False if the lease is not gen's or had ended at srv_now.
 */
bool lm_group_extend(struct lm_slot *slot, uint32_t gen, int64_t expiry,
		     int64_t srv_now, int64_t *judged);

#endif
