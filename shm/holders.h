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

/* A lock as a watcher or an election's observer sees it: its X holder
 * (with the token marks of the tables it holds), or how many counted
 * holders it has and one of them. */
struct lm_lock_view {
	uint32_t holders;  /* 0: free */
	uint32_t mode;     /* LM_MODE_* held */
	uint32_t session;  /* the X holder's session (or a counted one's) */
	int32_t pid;       /* its pid */
	uint64_t token;    /* the X holder's token, else 0 */
};
void lm_lock_look(const struct lm_region *r, uint32_t lock, int64_t now_ns,
		  struct lm_lock_view *v);

#endif
