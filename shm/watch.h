/*
 * watch.h - telling watchers that a lock changed (watch.c).
 *
 * Every change of who holds a lock (a grant, a release, a mode changed
 * in place, a dead holder freed, a lease expired) ends with its changer
 * calling lm_lock_changed, which costs one load while nobody watches the
 * lock. A watcher sets the lock's `watched` flag (seq_cst) and then
 * reads the lock; a changer changes it and then loads the flag (seq_cst,
 * with the version and the tag: one word, layout.h "The change word"):
 * either the changer sees the flag and bumps the version (then wakes the
 * version's futex), or the watcher's read sees the change. So a watcher
 * that read the lock at version v and sleeps while the version is v
 * misses no change; changes that come together may share a wake-up
 * (coalesced), and the note (layout.h, "A lock's last change") says what
 * the last one was when it can.
 *
 * A changer killed between its change and its bump is announced for
 * it: the supervisor that frees a dead holder's grants bumps the
 * version, also for a lock the dead session recorded holding and gave
 * up before its bump; the server that expires a frozen holder's lease
 * bumps it too (docs/protocol.md, "Watches").
 */
#ifndef LOCKMGR_SHM_WATCH_H
#define LOCKMGR_SHM_WATCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "region.h"

/* lock changed (what: LM_CHANGE_*, of a grant in mode held by pid with
 * token): bump its version and wake its watchers, if it has any. */
void lm_lock_changed(struct lm_region *r, uint32_t lock, uint32_t what,
		     uint32_t mode, int32_t pid, uint64_t token);

/*
 * The lease of a grant (mode, pid, token) ended and this server (or its
 * holder's renew) freed it: lm_lock_changed(LM_CHANGE_EXPIRED), unless
 * that very end was counted already. Each server frees a lapsed grant
 * on its own table, and one lease that ends must count as one change,
 * not one per server (a watcher sums `changes`; lockctl watch would
 * print "expired" up to three times). The CAS that moves the version
 * for it also writes a tag of the end (of `end`, below) into
 * the same word (layout.h, "The change word"), and the next change
 * clears it: while the end is the lock's last change, the others find
 * the tag and stay quiet, however long the first stands still after
 * its CAS. A quiet one still wakes the watchers, for a first that was
 * stopped or killed before its wake. One that comes after the lock
 * changed again (a table of the old grant was left to free) counts it
 * again: a change too many, never one missed.
 */
void lm_lock_expired(struct lm_region *r, uint32_t lock, uint32_t mode,
		     int32_t pid, uint64_t token, uint64_t end);

/*
 * Which end it is (lm_lock_expired's `end`, hashed into the tag): the
 * same for every announcer of one end where that can be had, and
 * different for two ends but in the group case below. Not the token
 * alone: a group's members share one, a downgrade keeps it, and a joiner
 * or taker stopped before it writes its own back leaves the last grant's
 * in the table.
 *   lm_end_of_grant   an X grant: its owner word's session and sequence
 *                     (the same on every table; only the epoch differs)
 *   lm_end_of_group   a group a server ended: the group's token, the
 *                     table's generation and the group's lease expiry.
 *                     Generations drift apart between tables, and a
 *                     stale token can repeat; on one table a later
 *                     group's lease ends later. Tables that differ in a
 *                     group's generation or lease count its end twice.
 *                     Two different groups on two tables count once if
 *                     they agree in all three, which needs clocks skewed
 *                     apart and a joiner stalled before its token. A
 *                     lease word not tagged for the group's generation
 *                     (the next one's, which a starter or a downgrade
 *                     writes first; an X claim's; 0 after a wipe) is not
 *                     the group's expiry: server.c's end_group passes
 *                     -1 - table instead, different on each table.
 *   lm_end_of_member  one member of a group (its renew or late
 *                     release): its pid and token
 */
uint64_t lm_end_of_grant(uint64_t owner);
uint64_t lm_end_of_group(uint64_t token, uint32_t gen, int64_t expiry_ms);
uint64_t lm_end_of_member(int32_t pid, uint64_t token);

/* Start watching lock: set its `watched` flag (seq_cst). Read the lock
 * only after this. */
void lm_lock_watch(struct lm_region *r, uint32_t lock);

/* The name's reclaimer, once nothing pins it: clear `watched` and the
 * tag (its next life starts unwatched); the version stays. */
void lm_lock_unwatch(struct lm_region *r, uint32_t lock);

/* The version's futex word (the change word's low half), for watchers
 * to sleep on while the version is one they have seen. */
_Atomic uint32_t *lm_lock_version_futex(const struct lm_region *r,
					uint32_t lock);

/* lock's version (seq_cst), and its note if the note is of that version
 * (else LM_CHANGE_OTHER in *what): what, mode, pid and token of the last
 * change. */
uint32_t lm_lock_version(const struct lm_region *r, uint32_t lock);
void lm_lock_note_read(const struct lm_region *r, uint32_t lock,
		       uint32_t version, uint32_t *what, uint32_t *mode,
		       int32_t *pid, uint64_t *token);

#endif
