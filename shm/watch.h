/*
 * watch.h - telling watchers that a lock changed (watch.c).
 *
 * Every change of who holds a lock (a grant, a release, a mode changed
 * in place, a dead holder freed, a lease expired) ends with its changer
 * calling lm_lock_changed, which costs one load while nobody watches the
 * lock. A watcher sets the lock's `watched` flag (seq_cst) and then
 * reads the lock; a changer changes it and then loads the flag (seq_cst):
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

#include <stdint.h>

#include "region.h"

/* lock changed (what: LM_CHANGE_*, of a grant in mode held by pid with
 * token): bump its version and wake its watchers, if it has any. */
void lm_lock_changed(struct lm_region *r, uint32_t lock, uint32_t what,
		     uint32_t mode, int32_t pid, uint64_t token);

/*
 * The lease of a grant (mode, pid, token) ended and this server freed
 * it on its table: lm_lock_changed(LM_CHANGE_EXPIRED), unless the lock's
 * last change is already that very end. Each server frees a lapsed grant
 * on its own table, and one lease that ends must count as one change,
 * not one per server (a watcher sums `changes`; lockctl watch would
 * print "expired" up to three times). The first server to free it
 * announces; the others find its note on the lock's current version and
 * stay quiet. The version moves by CAS here, so two servers that free
 * it at once cannot both announce it, unless the one that moved it
 * stands still between its CAS and its note for longer than the other
 * waits for the note, LM_EXPIRY_NOTE_WAIT_MS (then it is counted twice,
 * never missed, and the region's `expiries_unchecked` says so). A server
 * that finds the lock changed since (a new holder) announces again only
 * if a table of the old grant was still left to free: never missed.
 */
void lm_lock_expired(struct lm_region *r, uint32_t lock, uint32_t mode,
		     int32_t pid, uint64_t token);

/* How long an expiry waits for the note of a version whose changer has
 * bumped it and not yet written the note. A preempted announcer on a
 * loaded host takes milliseconds; waiting much longer would only wait
 * for one stopped or killed there. One wait per such changer, two in
 * all: a server waits inside its sweep, so twice this stays below
 * LM_HEARTBEAT_STALE_MS (heartbeat.h). */
#define LM_EXPIRY_NOTE_WAIT_MS 100

/* Start watching lock: set its `watched` flag (seq_cst). Read the lock
 * only after this. */
void lm_lock_watch(struct lm_region *r, uint32_t lock);

/* lock's version (seq_cst), and its note if the note is of that version
 * (else LM_CHANGE_OTHER in *what): what, mode, pid and token of the last
 * change. */
uint32_t lm_lock_version(const struct lm_region *r, uint32_t lock);
void lm_lock_note_read(const struct lm_region *r, uint32_t lock,
		       uint32_t version, uint32_t *what, uint32_t *mode,
		       int32_t *pid, uint64_t *token);

#endif
