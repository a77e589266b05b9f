/*
 * isolation.h - simulated partitions between a process and some servers
 * (`lockctl server isolate` and `heal`): the header's rule table
 * (layout.h) and the sessions' `isolated` bits that follow it.
 *
 * The rules are the truth; a session's bits are a copy its client reads
 * on every acquire and renew. Two writers keep the copy right:
 *   - lockctl changes a rule, then the bits of the process's live
 *     sessions (lm_isolation_add, lm_isolation_heal);
 *   - a connecting client, once its session is LIVE, stores the mask the
 *     rules give it and repeats until the rules read the same after its
 *     store (lm_isolation_adopt).
 * Both orders are seq_cst, so (Dekker) a rule change racing a connect is
 * seen by one side or the other, and the client's loop undoes a store of
 * a mask that a concurrent change had already made stale.
 */
#ifndef LOCKMGR_SHM_ISOLATION_H
#define LOCKMGR_SHM_ISOLATION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "region.h"

/* The servers the rules say process (pid, start_time) cannot reach. */
uint32_t lm_isolation_servers(const struct lm_region *r, pid_t pid,
			      uint64_t start_time);

/* Does the rule name a running process (not one that has exited, nor a
 * reused pid)? Its pid and servers, if so. Such rules only are shown,
 * and only the others are reused. */
bool lm_isolation_rule_live(const struct lm_isolation_rule *rule, pid_t *pid,
			    uint32_t *servers);

/* Client, at connect, once session s is LIVE: make s->isolated match
 * the rules for the calling process. */
void lm_isolation_adopt(struct lm_region *r, struct lm_session *s, pid_t pid,
			uint64_t start_time);

/*
 * The writers. Each takes the rule lock (an OFD lock on the shm object;
 * waits at most 2 s for another lockctl) and returns 0 or a negative
 * errno-style code: -EBUSY (another writer held the lock 2 s), -ENOSPC
 * (every rule in use by a live process), -ESRCH (no such process), or
 * -errno from opening the shm object.
 */

/* Server `server` refuses process pid from now on (its live sessions at
 * once, later ones at connect). *sessions: how many live ones it has. */
int lm_isolation_add(struct lm_region *r, unsigned server, pid_t pid,
		     unsigned *sessions);

/* Server `server` serves everyone again. *processes: how many processes
 * it was refusing (live ones only). */
int lm_isolation_heal(struct lm_region *r, unsigned server,
		      unsigned *processes);

#endif
