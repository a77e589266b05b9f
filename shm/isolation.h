/*
 * isolation.h - simulated partitions between a process and some servers
 * (`lockctl server isolate` and `heal`): the header's rule table and its
 * generation (layout.h, "Isolation rules").
 *
 * The rules are the truth. lockctl changes them and bumps the generation;
 * each client keeps its own session's `isolated` bits, refreshed from the
 * rules whenever the generation has moved (lm_isolation_refresh, before
 * every acquire attempt and renewal). Nobody writes another process's
 * session, so a lockctl stopped or killed at any instruction can neither
 * isolate a bystander that took over a slot nor leave a session that
 * disagrees with the rules past its next operation.
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

/*
 * Client: bring session s's bits up to date with the rules if the
 * generation moved since *seen_gen (or `force`), for the process (pid,
 * start_time) that owns s. Returns the bits.
 */
uint32_t lm_isolation_refresh(struct lm_region *r, struct lm_session *s,
			      pid_t pid, uint64_t start_time,
			      uint32_t *seen_gen, bool force);

/* Does the rule name a running process (not one that has exited, nor a
 * reused pid)? Its pid and servers, if so. Only such rules are shown,
 * and only the others are reused. */
bool lm_isolation_rule_live(const struct lm_isolation_rule *rule, pid_t *pid,
			    uint32_t *servers);

/*
 * The writers. Each takes the rule lock (an OFD lock on a descriptor of
 * its own; waits at most 2 s for another lockctl) and returns 0 or a
 * negative errno-style code: -EBUSY (another writer held the lock 2 s),
 * -ENOSPC (every rule in use by a live process), -ESRCH (no such
 * process), -EINVAL (pid is a thread, not a process: *tgid says whose),
 * or -errno from opening or locking the shm object.
 */

/* Server `server` refuses process pid from now on (its live sessions at
 * their next operation, later ones from their connect). *sessions: how
 * many live sessions it has. */
int lm_isolation_add(struct lm_region *r, unsigned server, pid_t pid,
		     unsigned *sessions, pid_t *tgid);

/* Server `server` serves everyone again. *processes: how many running
 * processes it was refusing. */
int lm_isolation_heal(struct lm_region *r, unsigned server,
		      unsigned *processes);

#endif
