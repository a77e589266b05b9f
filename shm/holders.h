/*
 * holders.h - who holds a lock, in which mode: read from the tables (X
 * holders' owner words) and from the sessions' join records (counted
 * holders). For deadlock detection and for `lockctl status`; a snapshot
 * of moving state, never used to grant anything.
 */
#ifndef LOCKMGR_SHM_HOLDERS_H
#define LOCKMGR_SHM_HOLDERS_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"

struct lm_holder {
	uint32_t session; /* session index */
	uint32_t mode;    /* LM_MODE_* */
};

/*
 * The sessions holding lock on a majority of tables under running
 * leases, at most n of them into out; returns how many there are (more
 * than n if out was too small). A counted holder that held more locks
 * than its session records (held_overflow) is not seen.
 */
size_t lm_lock_holders(const struct lm_region *r, uint32_t lock,
		       int64_t now_ns, struct lm_holder *out, size_t n);

#endif
