/*
 * layout.h - the shared-memory region: the one home of every shared struct.
 *
 * The region is one POSIX shm object laid out as
 *
 *   header | sessions[max_sessions] | buckets[bucket_count] |
 *   names[max_locks] | servers[3] | slots[max_locks][3]
 *
 * Table i is server i's header plus the i-th slot of every lock. The three
 * slots of one lock sit side by side (192 bytes, one page) rather than in
 * three separate arrays, so an acquire touches one page, not three, and
 * adjacent-line prefetch helps; each slot is still its own cache line, so
 * tables never share a line.
 * Every cross-process reference is an index, never a pointer, and every
 * index read from the region is bounds-checked before use (a corrupted or
 * foreign region must give an error, not a stray write).
 *
 * Who writes what (the rules every field comment below refers to):
 *
 *   creator     lockmgrd while it creates the region, before it publishes
 *               `magic` with a release store; immutable afterwards.
 *   supervisor  the live lockmgrd (it holds flock(LOCK_EX) on the shm fd).
 *   server i    the server process of table i.
 *   client      liblockmgr in any attached process.
 *
 * All synchronisation is C11 atomics plus futexes; there is no
 * process-shared mutex anywhere, because its holder can die.
 */
#ifndef LOCKMGR_SHM_LAYOUT_H
#define LOCKMGR_SHM_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LM_REGION_MAGIC   UINT64_C(0x314752474d4b434c) /* "LCKMGRG1" */
#define LM_ABI_VERSION    20u

/* The longest lease a region may allow (--max-ttl): one day. */
#define LM_MAX_TTL_LIMIT_MS INT64_C(86400000)
#define LM_NSERVERS       3u
#define LM_QUORUM         2u /* a majority of LM_NSERVERS */
#define LM_NAME_MAX       255u
#define LM_NAME_WORDS     32u  /* LM_NAME_MAX + 1 bytes, in 8-byte words */
#define LM_CACHELINE      64u

/* Tokens a server reserves (and makes durable) at a time. */
#define LM_TOKEN_BLOCK 65536u

/* Locks a session records as held without a full scan at cleanup. */
#define LM_HELD_MAX 16u

/* Names a session pins at once (watches, semaphore gates): lm_session.pins */
#define LM_PINS_MAX 16u

/* The value an election's leader proclaims (lm_session.value), bytes. */
#define LM_VALUE_MAX_  112u
#define LM_VALUE_WORDS (LM_VALUE_MAX_ / 8u)

/* Hard limits the encodings below impose. */
#define LM_MAX_SESSIONS_LIMIT 65534u  /* session field of an owner word */
#define LM_MAX_LOCKS_LIMIT    (1u << 26)

/* ---------------------------------------------------------------------
 * Server state word (lm_server.state): epoch and state in one 64-bit word,
 * so a client reads both with one load. Loading them separately (state
 * first) would let a crash between the loads hide a restart from the
 * client and let its grant into a table whose new epoch is still in
 * quarantine.
 *
 *   bits 63..8  epoch: bumped by the supervisor each time it (re)starts
 *               the server; grants carry it, and a grant whose epoch is
 *               not the table's current one counts for nobody.
 *   bits  7..0  one of LM_SRV_*.
 */
#define LM_SRV_DOWN       0u /* no process, or dead: table is out of quorum */
#define LM_SRV_RECOVERING 1u /* process up, in quarantine: grants nothing */
#define LM_SRV_UP         2u /* counts towards the quorum */
#define LM_SRV_STATE(w)   ((uint32_t)((w) & 0xffu))
#define LM_SRV_EPOCH(w)   ((w) >> 8)
#define LM_SRV_WORD(epoch, state) (((uint64_t)(epoch) << 8) | (state))

/* ---------------------------------------------------------------------
 * Owner word (lm_slot.owner): who holds a lock on one table.
 *
 *   bits 63..48  epoch of the table when the grant was made (low 16 bits)
 *   bits 47..32  session index + 1; 0 means "nobody holds it"
 *   bits 31..0   grant sequence of that session (unique per acquire, so
 *                a stale handle never matches a newer grant)
 *
 * Free words have session field 0; their low bit says why:
 *   LM_OWNER_FREE       released cleanly
 *   LM_OWNER_ABANDONED  freed because its holder died or its lease
 *                       expired: the next holder is told (like EOWNERDEAD)
 */
#define LM_OWNER_FREE      UINT64_C(0)
#define LM_OWNER_ABANDONED UINT64_C(1)
#define LM_OWNER_EPOCH(w)   ((uint32_t)((w) >> 48))
#define LM_OWNER_SESSION(w) ((uint32_t)(((w) >> 32) & 0xffffu)) /* idx+1 */
#define LM_OWNER_SEQ(w)     ((uint32_t)(w))
#define LM_OWNER_WORD(epoch, sidx, seq)                                  \
	((((uint64_t)(epoch) & 0xffffu) << 48) |                         \
	 ((uint64_t)((sidx) + 1u) << 32) | (uint64_t)(uint32_t)(seq))

/* ---------------------------------------------------------------------
 * Lease word (lm_slot.lease): when a grant expires, in the clock of the
 * table's server (milliseconds, see shm/clock.h).
 *
 *   bits 63..38  tag of the owner word it belongs to (LM_OWNER_TAG)
 *   bits 37..0   expiry, server-clock ms (38 bits: 8.7 years of uptime)
 *
 * The owner word and the lease are two words, so a new holder's CAS on
 * the owner and its store of the lease are two steps. The tag makes the
 * gap safe: a lease whose tag does not match the owner word belongs to
 * the previous holder and is never taken as "expired" for the new one.
 */
#define LM_LEASE_EXPIRY_BITS 38u
#define LM_LEASE_EXPIRY_MASK ((UINT64_C(1) << LM_LEASE_EXPIRY_BITS) - 1u)
#define LM_OWNER_TAG(w)                                                  \
	((uint32_t)(((w) ^ ((w) >> 26) ^ ((w) >> 52)) & 0x3ffffffu))
#define LM_LEASE_WORD(owner, expiry_ms)                                  \
	(((uint64_t)LM_OWNER_TAG(owner) << LM_LEASE_EXPIRY_BITS) |       \
	 ((uint64_t)(expiry_ms) & LM_LEASE_EXPIRY_MASK))
#define LM_LEASE_WORD_TAGGED(tag, expiry_ms)                             \
	(((uint64_t)(tag) << LM_LEASE_EXPIRY_BITS) |                     \
	 ((uint64_t)(expiry_ms) & LM_LEASE_EXPIRY_MASK))
#define LM_LEASE_TAG(l)     ((uint32_t)((l) >> LM_LEASE_EXPIRY_BITS))
#define LM_LEASE_EXPIRY(l)  ((int64_t)((l) & LM_LEASE_EXPIRY_MASK))

/* ---------------------------------------------------------------------
 * Lock modes (shm/modes.h has the compatibility matrix). X is held
 * through the owner word, like every grant before modes existed; the
 * counted modes IS, IX, S and SIX through the group word below. Values
 * are the public LM_MODE_* (client/lockmgr.h).
 */
#define LM_MODE_X_   0u
#define LM_MODE_S_   1u
#define LM_MODE_IS_  2u
#define LM_MODE_IX_  3u
#define LM_MODE_SIX_ 4u
#define LM_MODES     5u

/* ---------------------------------------------------------------------
 * Group word (lm_slot.shared): the counted holders of a lock on one
 * table, changed only by CAS.
 *
 *   bits 63..40  generation: bumped by every reset (a writer taking over
 *                expired readers, a reader restarting an expired group,
 *                a server expiring one, a wiped table), never by a join
 *                or a leave
 *   bits 39..38  kind of the main group: LM_GROUP_IX, _S or _SIX
 *   bits 37..19  holders in the main group (IX holders, S holders, or
 *                the one SIX holder); its kind means nothing when 0
 *   bits 18..0   IS holders (compatible with every main group)
 *
 * The group's lease is the slot's lease word, tagged for the generation
 * (LM_GROUP_TAG_IS, below): the latest expiry of its members, only ever
 * raised within one generation, and rewritten (its tag flipped) by every
 * join and extension. The owner word (X) and the group exclude each other, so
 * the lease word is the X holder's or the group's; an owner word under a
 * group's lease is a claim in progress (an X taker that has not looked
 * at the group yet, a downgrade or upgrade), which others wait for and
 * the server's sweep never caps while that lease runs.
 *
 * The rules (a model check of this design found each trap named in
 * docs/protocol.md, "Modes"): a joiner CASes the group word first and
 * then loads the owner word, an X taker CASes the owner word first and
 * then loads the group word (both seq_cst: one of them sees the other
 * and undoes); a member leaves by a CAS that expects the generation it
 * joined, so a leave never lowers a later group's count; a joiner joins
 * a generation as is only while its lease runs (tag and expiry), and
 * extends that lease by CAS from the word it judged, checking its
 * server clock after the CAS (as a renew does); anyone who finds the
 * group empty or its lease ended starts a new generation, writing the
 * new generation's lease *before* the group word that names it, so a
 * count is never seen without its lease.
 */
#define LM_GROUP_IX  1u
#define LM_GROUP_S   2u
#define LM_GROUP_SIX 3u
#define LM_GROUP_COUNT_MAX 0x7ffffu
#define LM_GROUP_GEN(w)   ((uint32_t)((w) >> 40))
#define LM_GROUP_KIND(w)  ((uint32_t)(((w) >> 38) & 0x3u))
#define LM_GROUP_MAIN(w)  ((uint32_t)(((w) >> 19) & LM_GROUP_COUNT_MAX))
#define LM_GROUP_IS(w)    ((uint32_t)((w) & LM_GROUP_COUNT_MAX))
#define LM_GROUP_WORD(gen, kind, main, is)                               \
	((((uint64_t)(gen) & 0xffffffu) << 40) |                         \
	 ((uint64_t)((kind) & 0x3u) << 38) |                             \
	 ((uint64_t)((main) & LM_GROUP_COUNT_MAX) << 19) |               \
	 (uint64_t)((is) & LM_GROUP_COUNT_MAX))
#define LM_GROUP_EMPTY(w) (LM_GROUP_MAIN(w) == 0 && LM_GROUP_IS(w) == 0)
/*
 * The lease tags of generation gen: tags of owner words no session can
 * have (session field 0xffff, above LM_MAX_SESSIONS_LIMIT), two per
 * generation. Every write of a group's lease flips between them, so the
 * word changes even when its expiry does not: a CAS from a lease word
 * read earlier (an X taker's lease store, the server capping a frozen
 * claim) fails once a member has joined or extended since.
 */
#define LM_GROUP_TAG_FLIP(gen, flip)                                     \
	LM_OWNER_TAG((UINT64_C(0xffff) << 32) |                          \
		     ((uint64_t)((flip) & 1u) << 24) |                   \
		     ((uint64_t)(gen) & 0xffffffu))
#define LM_GROUP_TAG(gen) LM_GROUP_TAG_FLIP(gen, 0)
#define LM_GROUP_TAG_IS(tag, gen)                                        \
	((tag) == LM_GROUP_TAG_FLIP(gen, 0) ||                           \
	 (tag) == LM_GROUP_TAG_FLIP(gen, 1))
/* The next lease word of generation gen after word cur (which may be of
 * another generation or an X holder's): the other tag, and the later of
 * cur's expiry (if it is gen's) and expiry. */
#define LM_GROUP_LEASE_NEXT(cur, gen, expiry)                            \
	(LM_GROUP_TAG_IS(LM_LEASE_TAG(cur), gen)                         \
		 ? LM_LEASE_WORD_TAGGED(                                 \
			   LM_LEASE_TAG(cur) == LM_GROUP_TAG_FLIP(gen, 0)  \
				   ? LM_GROUP_TAG_FLIP(gen, 1)           \
				   : LM_GROUP_TAG_FLIP(gen, 0),          \
			   LM_LEASE_EXPIRY(cur) > (expiry)               \
				   ? LM_LEASE_EXPIRY(cur)                \
				   : (expiry))                           \
		 : LM_LEASE_WORD_TAGGED(LM_GROUP_TAG(gen), (expiry)))

/*
 * Join record (lm_session.joined[k][i]): the generation a session joined
 * on table i for the lock of its held[k], and in which mode, so that
 * whoever frees a dead session's grants leaves its groups for it.
 *
 *   bits 31..8  generation joined
 *   bits  7..1  LM_MODE_* + 1
 *   bit   0     set while the record stands
 *
 * Written after the join, cleared before the leave: a process killed
 * between the two leaves a count one too high (safe: it ends with the
 * group's lease), never one decremented twice.
 */
#define LM_JOIN_WORD(gen, mode)                                          \
	((((uint32_t)(gen) & 0xffffffu) << 8) |                          \
	 (((uint32_t)(mode) + 1u) << 1) | 1u)
#define LM_JOIN_GEN(j)    ((uint32_t)(j) >> 8)
#define LM_JOIN_MODE(j)   ((((uint32_t)(j) >> 1) & 0x7fu) - 1u)
#define LM_JOIN_SET(j)    (((uint32_t)(j) & 1u) != 0)

/* ---------------------------------------------------------------------
 * Session life word (lm_session.life): the slot's state, generation and
 * claimer pid in one 64-bit word, changed only by CAS.
 *
 *   bits 63..32  pid of the process that claimed the slot (0 when FREE)
 *   bits 31..2   generation: each claim bumps it, so every life of the
 *                slot has a word of its own
 *   bits  1..0   one of LM_SESS_*
 *
 * A slot is claimed, used, freed and reused by different processes. A
 * chain of plain stores (pid = 0, then gen++, then FREE) once let a slow
 * client finish its chain on a slot that the supervisor had meanwhile
 * freed and a second client claimed: the second client's live session
 * read FREE, and its lock went to a third. Every transition is therefore
 * one CAS from the exact word its writer saw, so a writer that was
 * overtaken fails instead of clobbering the next life.
 */
#define LM_SESS_FREE     0u
#define LM_SESS_CLAIMING 1u /* claimed, identity being filled in */
#define LM_SESS_LIVE     2u
#define LM_SESS_DEAD     3u /* its process died; locks being freed */
#define LM_SESS_STATE(w) ((uint32_t)((w) & 0x3u))
#define LM_SESS_GEN(w)   ((uint32_t)(((w) >> 2) & 0x3fffffffu))
#define LM_SESS_PID(w)   ((int32_t)(uint32_t)((w) >> 32))
#define LM_SESS_WORD(pid, gen, state)                                    \
	(((uint64_t)(uint32_t)(pid) << 32) |                             \
	 ((uint64_t)((gen) & 0x3fffffffu) << 2) | (uint64_t)(state))

/* Supervisor states (lm_region_header.supervisor_state). */
#define LM_SUP_NONE      0u /* never started, or crashed (pid is stale) */
#define LM_SUP_RUNNING   1u
#define LM_SUP_STOPPED   2u /* shut down cleanly; region is unlinked */

/* Region flags (lm_region_header.flags). */
#define LM_REGION_RELEASE_ON_EXIT 0x1u /* free a dead client's locks */
#define LM_REGION_TREE 0x2u /* creator only: names with '/' form a tree,
			     * and every acquire of a name takes intention
			     * modes on its ancestors first (client/tree.c) */

/* ---------------------------------------------------------------------
 * Session slot: one per connected client (lm_connect). A session is
 * identified by pid plus process start time, never by pid alone.
 *
 * Life cycle (each arrow one CAS of `life`, see above):
 *   FREE(g)        -> CLAIMING(g+1, pid)  client, at connect
 *   CLAIMING(g, p) -> LIVE(g, p)          client, identity filled in
 *   LIVE(g, p)     -> FREE(g)             client, at disconnect, after
 *                                         freeing its locks
 *   LIVE(g, p)     -> DEAD(g, p)          supervisor, once p has died
 *   DEAD(g, p)     -> FREE(g)             supervisor, after freeing its
 *                                         locks (also a later supervisor
 *                                         finishing a dead one's work)
 *   CLAIMING(g, p) -> FREE(g)             supervisor, once the claimer p
 *                                         is proven dead
 * A LIVE word always names its pid; nothing reads "dead" from a field
 * caught mid-change, only from the process itself (pidfd, start time).
 * The other fields are the claimer's while CLAIMING and are written by
 * others only as their comments say.
 */
struct lm_session {
	_Atomic uint64_t life;       /* LM_SESS_WORD(pid, gen, state), CAS */
	_Atomic uint64_t start_time; /* client, while CLAIMING: clock ticks
	                              * since boot (/proc/PID/stat field 22);
	                              * 0 in a FREE slot (cleared by whoever
	                              * frees it, lm_session_free) */
	_Atomic uint32_t waiting_on; /* lock index + 1 the session waits for,
	                              * 0 if none (also the edge of the
	                              * roadmap's wait-for graph), with
	                              * LM_WAIT_LEAVING while it leaves. Set
	                              * and left by the client; cleared by xchg
	                              * by the supervisor after its death. */
	_Atomic uint32_t wake;       /* futex the session sleeps on while it
	                              * waits; any waker increments it, then
	                              * FUTEX_WAKEs it */
	_Atomic uint32_t wait_ticket;/* client: FIFO position, taken from
	                              * lm_queue.ticket_next, written before
	                              * waiting_on (release) */
	_Atomic uint32_t isolated;   /* client: bit i: server i refuses this
	                              * session (a simulated partition),
	                              * what the header's isolation rules
	                              * said at the client's last look
	                              * (layout.h, "Isolation rules"). Read
	                              * by other waiters (a waiter cut off
	                              * from a majority is passed over) and
	                              * by tests, which may set bits. */
	_Atomic uint32_t wait_mode;  /* client: LM_MODE_* it waits for, stored
	                              * before waiting_on (release) */
	_Atomic uint32_t held_overflow; /* client: set (for the session's
	                              * life) when it held more locks at once
	                              * than held[] has room for */
	_Atomic uint64_t grant_seq;  /* client: sequence of its current (or
	                              * last) acquire attempt, stored (release)
	                              * after grant_ttl_ms; kept across slot
	                              * reuse so owner words of successive
	                              * sessions differ */
	_Atomic uint64_t acquires;   /* client: grants taken (statistics) */
	_Atomic int64_t grant_start_ns; /* client: CLOCK_MONOTONIC start of
	                              * attempt grant_seq, stored before it
	                              * (release): past start + grant_ttl_ms
	                              * the attempt can no longer succeed,
	                              * and a server may clear its owner word
	                              * if it is still without its lease
	                              * (beside grant_seq: one line written) */
	_Atomic uint32_t held[LM_HELD_MAX]; /* client: lock index + 1 of each
	                              * lock it may hold, 0 = empty; written
	                              * before its first owner CAS, cleared
	                              * after release. Whoever frees a dead
	                              * session's locks visits these instead
	                              * of every lock in the region (unless
	                              * held_overflow), checking each owner
	                              * word, so a stale entry is harmless. */
	_Atomic uint32_t grant_ttl_ms; /* client: TTL of attempt grant_seq, so
	                              * a server that finds the attempt frozen
	                              * between its owner CAS and its lease
	                              * bounds it by that TTL, not max TTL */
	_Atomic uint32_t joined[LM_HELD_MAX][LM_NSERVERS]; /* client:
	                              * LM_JOIN_WORD of each counted hold of
	                              * held[k] on table i, else 0: set after
	                              * the join, cleared before the leave;
	                              * read by whoever frees the session */
	_Atomic int64_t wait_since_ns; /* client: CLOCK_MONOTONIC time its
	                              * current wait began, stored before
	                              * waiting_on (release); deadlock
	                              * detection picks the youngest waiter */
	_Atomic uint64_t victim;     /* a deadlock detector (any client):
	                              * LM_WAIT_ID of the wait it chose to
	                              * end; the waiter compares it with its
	                              * own wait's id when it wakes */
	_Atomic uint32_t wait_flags; /* client: LM_WAITF_*, stored before
	                              * waiting_on (release) */
	_Atomic uint32_t inserting;  /* client: name slot + 1 it is claiming
	                              * or filling in, else 0; stored before
	                              * the claim (seq_cst), cleared once the
	                              * name is linked, reset at connect. A
	                              * server frees a claim no LIVE session
	                              * names (its inserter died). */
	_Atomic uint32_t pins[LM_PINS_MAX]; /* client: lock index + 1 of
	                              * each name it keeps from reclaim
	                              * while it holds none of its grants
	                              * (a watch; a semaphore's gate, while
	                              * it waits there or holds one of its
	                              * slots, shm/semaphore.h), else
	                              * 0. Stored (seq_cst) before it checks
	                              * the name's life, cleared when done;
	                              * a reclaimer marks the name DYING and
	                              * then scans these (seq_cst), so one of
	                              * the two sees the other (layout.h,
	                              * "Names"). Cleared with the slot. */
	_Atomic uint32_t value_seq;  /* client: the seqlock of the value it
	                              * proclaims as an election's leader:
	                              * odd while it rewrites value_lock,
	                              * value_len and value; readers retry on
	                              * an odd or moved count */
	_Atomic uint32_t value_lock; /* client, under value_seq: lock index
	                              * + 1 of the election it proclaims
	                              * value for, else 0; also cleared by
	                              * whoever frees the slot (outside the
	                              * seqlock: its writer is gone, and a
	                              * reader sees the old word or 0) */
	_Atomic uint32_t value_len;  /* client, under value_seq */
	_Atomic uint32_t unrecorded; /* client: lock index + 1 of a grant it
	                              * gives up that has no held[] entry
	                              * (taken past LM_HELD_MAX), stored
	                              * before the give-up and cleared after
	                              * its version bump, else 0: whoever
	                              * frees a dead session announces it
	                              * (docs/protocol.md, "Watches") */
	_Atomic uint64_t value[LM_VALUE_WORDS]; /* client, under value_seq:
	                              * the proclaimed bytes, zero-padded */
	uint8_t pad_[32];
};

/* ---------------------------------------------------------------------
 * Names. A lock's name lives in name slot i, and its state in slot i of
 * every table. Names are found through a hash table of bucket chains
 * (singly linked lists through the name slots, in the style of Harris
 * and Michael's lock-free list): a bucket holds the link to the first
 * name of its chain, each name the link to the next.
 *
 * Link word (buckets[], lm_name.next):
 *
 *   bits 63..28  low 36 bits of the generation of the name slot it
 *                points to (the life it points to)
 *   bit  27      mark: the name holding this link is being removed
 *   bits 26..0   name slot index + 1; 0 is the end of the chain
 *
 * Names are reclaimed when nothing holds, waits on or watches them
 * (shm/name_reclaim.c), and the slot is reused for another name, so a
 * link carries the generation of the life it points to: a reader that
 * followed a link checks, after reading the slot, that the slot is still
 * in that life, and starts over if not. A name is removed by marking its
 * own next link (it can then no longer be unlinked through a stale
 * view of it) and then unlinking it from its predecessor; anyone who
 * meets a marked name on the way helps unlink it. New names go at the
 * head of their chain, by CAS from the head an inserter saw when it
 * found the name absent, so two inserters of one name cannot both
 * succeed.
 *
 * Name life word (lm_name_state.life, in the lock's table-1 slot, which
 * an acquire touches anyway):
 *
 *   bits 63..3   generation: bumped by each claim of the slot (61 bits:
 *                it does not wrap in the life of a machine)
 *   bits  2..0   LM_NAME_*
 *
 *   FREE(g)      -> INSERTING(g+1)  an inserter claims the slot
 *   INSERTING(g) -> LIVE(g)         once linked (inserter, or any reader
 *                                   that finds it in its chain)
 *   INSERTING(g) -> FREE(g)         never linked (lost the insert race,
 *                                   or its inserter died, which a server
 *                                   knows when no session's `inserting`
 *                                   names the slot any more)
 *   LIVE(g)      -> DYING(g)        its finisher thinks it unused...
 *   DYING(g)     -> LIVE(g)         ...and it was not (the finisher), or
 *                                   a client wants it (anyone: calling a
 *                                   removal off is always safe), or
 *   DYING(g)     -> DEAD(g)         ...it was, tokens folded (the
 *                                   finisher only)
 *   DEAD(g)      -> FREE(g)         marked, unlinked (the finisher only)
 *
 * An acquire CASes its owner words, then checks that the life is still
 * the LIVE(g) it resolved; a reclaimer CASes LIVE -> DYING, then looks
 * at the owner words and the waiter count. Both seq_cst: either the
 * acquire sees its name going (it undoes and looks the name up again),
 * or the reclaimer sees the acquire (and backs off).
 *
 * Finisher (lm_name.finisher): the process that removes the name, from
 * LIVE -> DYING to FREE. Only it starts and decides a DYING round, so no
 * look taken in an earlier round can commit a later one (a name acquired
 * in between would die under its holder); and only it marks the name's
 * next link and frees the slot, so no stale view of the slot can mark
 * its next life's link (the name that moved in would drop out of its
 * chain and be created twice). It is claimed by CAS from 0, and taken
 * over only from a process proven gone (the actor word, below).
 */
#define LM_NAME_FREE      0u
#define LM_NAME_INSERTING 1u
#define LM_NAME_LIVE      2u
#define LM_NAME_DYING     3u
#define LM_NAME_DEAD      4u
#define LM_NAME_STATE(l)  ((uint32_t)((l) & 0x7u))
#define LM_NAME_GEN(l)    ((uint64_t)(l) >> 3)
#define LM_NAME_LIFE(gen, state)                                        \
	(((uint64_t)(gen) << 3) | (uint64_t)(state))

#define LM_LINK_MARK      (UINT64_C(1) << 27)
#define LM_LINK_IDX_MASK  ((UINT64_C(1) << 27) - 1)
#define LM_LINK_GEN_MASK  ((UINT64_C(1) << 36) - 1)
#define LM_LINK_IDX(k)    ((uint32_t)((k) & LM_LINK_IDX_MASK)) /* idx+1 */
#define LM_LINK_GEN(k)    ((uint64_t)(k) >> 28)
#define LM_LINK(idx, gen)                                               \
	((((uint64_t)(gen) & LM_LINK_GEN_MASK) << 28) |                 \
	 ((uint64_t)(idx) + 1u))

/*
 * Actor word (lm_name.finisher): the process doing something only it may
 * do, in a form that tells whether it still lives.
 *
 *   bits 63..32  the low 32 bits of its start time (clock ticks since
 *                boot, /proc/PID/stat)
 *   bits 31..0   its pid (never 0, so 0 means "nobody")
 *
 * It is gone once no process has that pid and start time, or the one
 * that has exited (a zombie not yet reaped included). A process,
 * not a session or a server epoch: both can end while the process that
 * held them still runs (a server orphaned by a killed supervisor runs on
 * in an old epoch), and a process that still runs may still act.
 */
#define LM_ACTOR_PID(a)   ((int32_t)(uint32_t)(a))
#define LM_ACTOR_START(a) ((uint32_t)((a) >> 32))
#define LM_ACTOR(start, pid)                                            \
	(((uint64_t)(uint32_t)(start) << 32) | (uint64_t)(uint32_t)(pid))

struct lm_name {
	_Atomic uint64_t next;       /* link to the next name of its chain;
	                              * CAS only (insert: inserter, before the
	                              * slot is linked; mark: the finisher;
	                              * unlink of the next name: anyone) */
	_Atomic uint64_t finisher;   /* LM_ACTOR word of the process removing
	                              * this name, else 0; CAS only */
	_Atomic uint32_t hash;       /* inserter, while INSERTING */
	_Atomic uint32_t len;        /* inserter, while INSERTING */
	_Atomic uint64_t text[LM_NAME_WORDS]; /* inserter, while INSERTING:
	                              * the name, zero-padded, in 8-byte
	                              * words (read with relaxed loads, then
	                              * the life re-checked: the slot is
	                              * rewritten when it is reused) */
};

/* The name's life, in the spare space of the lock's table-1 slot. */
struct lm_name_state {
	_Atomic uint64_t life;       /* LM_NAME_LIFE (above): CAS only */
	uint64_t reserved_[3];
};

/* ---------------------------------------------------------------------
 * Wait queue of one lock: waiting is for the lock as a whole, not for
 * one table. It lives in the lock's table-0 slot (lm_slot.queue) so that
 * an acquire and a release touch only the lock's three slot lines.
 *
 * Waiter count (lm_queue.waiters): a 64-bit word
 *
 *   bits 63..32  repair generation: bumped by a server before it recounts
 *   bits 31..0   sessions in the queue
 *
 * The count is a hint (a release that reads 0 wakes nobody, a newcomer
 * that reads 0 barges); the queue itself is the set of sessions whose
 * waiting_on names the lock. A waiter raises the count, then publishes
 * waiting_on, then re-reads the word; whoever clears waiting_on (xchg)
 * lowers it. A waiter killed between its raise and its publish leaves a
 * count too high, which a server repairs by recounting the sessions. A
 * repair that simply zeroed the count once raced with a waiter between
 * its two steps and left it queued but uncounted (releases skipped its
 * wake-up; it got the lock only when the next lease ran out). So the
 * repairer bumps the generation *before* it recounts, and a waiter that
 * sees the generation change after its publish counts itself again: the
 * recount either saw its waiting_on, or the waiter re-counts (seq_cst on
 * both sides, a Dekker pair). A count one too high is harmless and is
 * repaired next time.
 */
#define LM_WAITERS_COUNT(w)       ((uint32_t)(w))

/*
 * Leaving a queue is three steps: mark waiting_on LEAVING, lower the
 * count, clear waiting_on. A recount counts LEAVING entries as still
 * counted (they are, until their lowering): a waiter that cleared
 * waiting_on first and lowered the count after once had its leave
 * subtracted twice when a recount fell between the two, and the next
 * waiter went uncounted. Only the recount looks at LEAVING entries;
 * for everything else a leaving session no longer waits. The supervisor
 * that finds a dead session LEAVING does not lower the count (it may
 * have been lowered already): one too many is repaired by a recount.
 */
#define LM_WAIT_LEAVING           0x80000000u
/* One wait of one session: its lock and its ticket (lm_session.victim). */
#define LM_WAIT_ID(lock, ticket)  (((uint64_t)((lock) + 1u) << 32) | (ticket))
/* lm_session.wait_flags */
#define LM_WAITF_DEADLOCK 0x1u /* this wait looks for deadlocks (and may
				* be chosen to end one) */
#define LM_WAIT_LOCK(on)          ((on) & ~LM_WAIT_LEAVING)
#define LM_WAITERS_GEN(w)         ((uint32_t)((w) >> 32))
#define LM_WAITERS_WORD(gen, n)   (((uint64_t)(gen) << 32) | (uint32_t)(n))

struct lm_queue {
	_Atomic uint64_t waiters;    /* LM_WAITERS_WORD (above): raised by a
	                              * waiter before it sets waiting_on,
	                              * lowered by whoever clears that, and
	                              * recounted by a server (CAS) */
	_Atomic uint32_t ticket_next;/* FIFO ticket dispenser (fetch_add) */
	_Atomic uint16_t woken;      /* session index + 1 of a waiter that was
	                              * woken for its turn and has not gone back
	                              * to sleep, else 0. Set (CAS from 0) by the
	                              * waker, cleared by that waiter before it
	                              * sleeps or when it leaves the queue, or by
	                              * whoever finds it stopped, dead or gone
	                              * from the queue. While it names a waiting
	                              * session, a release need not wake anyone. */
	_Atomic uint16_t sem_slots;  /* 0: an ordinary lock. N: the gate of
	                              * a semaphore of N slots (its waiters
	                              * queue here; its slots are locks of
	                              * their own, shm/semaphore.h). Set by
	                              * CAS from 0 by the name's first
	                              * semaphore user, reset by the name's
	                              * reclaimer (nothing pins it then) */
	_Atomic int64_t turn_since_ns; /* when the current head of the queue
	                              * began its turn (monotonic): set by the
	                              * waiter that starts a queue and by each
	                              * head as it leaves. Newcomers may barge
	                              * past the queue only within a short
	                              * window of it (shm/wait_queue.c). */
	union {
		_Atomic uint64_t word; /* LM_CHG_* (below): the lock's
		                        * version, its `watched` bit and the
		                        * tag of its last change if that was a
		                        * lease end. Changers move it by CAS (seq_cst),
		                        * after their change, only while it is
		                        * watched (shm/watch.h); a watcher sets
		                        * `watched` (fetch_or, seq_cst) before it
		                        * reads the lock; the name's reclaimer
		                        * clears `watched` and the tag */
		_Atomic uint32_t version; /* its low half (little-endian):
		                        * the version alone, the futex word
		                        * watchers sleep on */
	} change;
};

/* The change word (lm_queue.change.word):
 *
 *   bits 63..33  0, or the tag (expiry_tag, watch.c) of a lease end
 *                (which end, lm_end_of_*, watch.h) when the last change
 *                was that end: set by the CAS that counts it, cleared
 *                by the next change, so that every other announcer of
 *                the same end stays quiet until the lock changes again
 *   bit  32      watched: a watcher has looked at the lock in this life
 *                of its name (changers bump only while it is set)
 *   bits 31..0   the version: the lock's change count
 */
#define LM_CHG_VERSION(w)   ((uint32_t)(w))
#define LM_CHG_WATCHED      (UINT64_C(1) << 32)
#define LM_CHG_TAG_SHIFT    33
#define LM_CHG_TAG(w)       ((uint32_t)((w) >> LM_CHG_TAG_SHIFT))
#define LM_CHG_WORD(tag, watched, version)                               \
	(((uint64_t)(tag) << LM_CHG_TAG_SHIFT) | (watched) |             \
	 (uint64_t)(uint32_t)(version))
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the version (a futex word) is the change word's low half");

/* ---------------------------------------------------------------------
 * A lock's last change, for its watchers (shm/watch.h), in the spare
 * space of its table-2 slot; and a semaphore slot's gate.
 *
 * Note word (lm_lock_note.event):
 *
 *   bits 63..32  the version the change bumped the lock to
 *   bits 31..28  LM_CHANGE_* (what happened)
 *   bits 27..25  LM_MODE_* of the grant it happened to
 *   bits 24..0   pid of that grant's holder (pid_max is at most 2^22)
 *
 * Written only while the lock is watched, by the changer, after it has
 * bumped the version: a reader that finds the note's version equal to
 * the version it read knows what that change was; otherwise (changes
 * crossing, a changer killed between its bump and its note) it says
 * only that the lock changed. The note describes; the version counts.
 */
#define LM_CHANGE_NONE     0u
#define LM_CHANGE_GRANTED  1u /* a grant (or a mode changed in place) */
#define LM_CHANGE_RELEASED 2u /* its holder released it */
#define LM_CHANGE_DIED     3u /* its holder died; the supervisor freed it */
#define LM_CHANGE_EXPIRED  4u /* its lease ended; a server freed it */
#define LM_CHANGE_OTHER    5u /* a change the note does not describe */
#define LM_CHANGE_PROCLAIMED 6u /* an election's leader set its value */
#define LM_NOTE_WORD(version, what, mode, pid)                           \
	(((uint64_t)(uint32_t)(version) << 32) |                         \
	 ((uint64_t)((what) & 0xfu) << 28) |                             \
	 ((uint64_t)((mode) & 0x7u) << 25) |                             \
	 ((uint64_t)(uint32_t)(pid) & 0x1ffffffu))
#define LM_NOTE_VERSION(n) ((uint32_t)((n) >> 32))
#define LM_NOTE_WHAT(n)    ((uint32_t)(((n) >> 28) & 0xfu))
#define LM_NOTE_MODE(n)    ((uint32_t)(((n) >> 25) & 0x7u))
#define LM_NOTE_PID(n)     ((int32_t)((n) & 0x1ffffffu))

struct lm_lock_note {
	_Atomic uint64_t event;      /* LM_NOTE_WORD: the changer, after
	                              * its version bump (release) */
	_Atomic uint64_t token_lo;   /* the changer, before `event`: its
	                              * version << 32 | the low half of the
	                              * token of the grant it changed */
	_Atomic uint64_t token_hi;   /* the same with the high half. Each
	                              * word names its changer, so a reader
	                              * takes the token only when both halves
	                              * carry the event's version: changers
	                              * that cross cannot hand it one half of
	                              * each other's token */
	_Atomic uint64_t gate;       /* a semaphore slot's gate:
	                              * LM_GATE_WORD(life, gate + 1), stored
	                              * (CAS, seq_cst) by each semaphore user
	                              * before its owner CAS on the slot,
	                              * never over a later life's word (its
	                              * index may be stale); whoever frees
	                              * the slot loads it after its own CAS
	                              * (seq_cst) and, if its life is the
	                              * name's (lm_slot_gate), wakes the
	                              * gate's queue (lm_wake_freed), and
	                              * each change of the slot bumps the
	                              * gate's version too (lm_lock_changed).
	                              * Reset by the slot's reclaimer. */
};

/*
 * Gate word (lm_lock_note.gate):
 *
 *   bits 63..32  the low 32 bits of the slot name's life (LM_NAME_GEN)
 *                its writer resolved: a word of another life names no
 *                gate, and is never written over a later life's
 *   bits 31..0   the gate's lock index + 1; 0: none
 */
#define LM_GATE_WORD(gen, gate1)                                         \
	(((uint64_t)(uint32_t)(gen) << 32) | (uint64_t)(uint32_t)(gate1))
#define LM_GATE_GEN(w)   ((uint32_t)((w) >> 32))
#define LM_GATE_LOCK1(w) ((uint32_t)(w))

/* ---------------------------------------------------------------------
 * Lock slot: the state of one lock on one table. Written by clients with
 * CAS (the grant protocol, shm/grant.c), by the server when it expires
 * a lease, and by the supervisor when it frees a dead client's locks.
 */
struct lm_slot {
	_Atomic uint64_t owner;  /* owner word, CAS only */
	_Atomic uint64_t lease;  /* lease word; written by the holder after
	                          * its owner CAS and by renew (CAS) */
	_Atomic uint64_t token;  /* highest fencing token written back here
	                          * for this lock; only raised (CAS max) */
	_Atomic uint64_t shared; /* group word (above): the counted holders;
	                          * CAS only, by clients, by the server
	                          * expiring a group, by the supervisor
	                          * leaving a dead session's groups */
	union {                  /* never wiped with the table: */
		struct lm_queue queue;     /* table 0: the lock's wait queue */
		struct lm_name_state name; /* table 1: its name's life */
		struct lm_lock_note note;  /* table 2: its last change */
	};
};

/* ---------------------------------------------------------------------
 * A server's clock (`lockctl server skew`): from local monotonic time
 * base_ms it reads base_srv_ms and runs at rate_ppm / 10^6 of real
 * speed. A change starts from the clock's current reading, so a new rate
 * never makes the clock jump (shm/clock.h reads and writes these).
 */
struct lm_skew {
	_Atomic int64_t base_ms;       /* lockctl: local ms the entry starts */
	_Atomic int64_t base_srv_ms;   /* lockctl: server ms at base_ms */
	_Atomic int64_t rate_ppm;      /* lockctl: 1000000 = true rate */
};

/* ---------------------------------------------------------------------
 * Server header: one per table, before its lock slots.
 */
struct lm_server {
	_Atomic uint64_t state;        /* LM_SRV_WORD(epoch, state). The
	                                * supervisor CASes a new epoch in
	                                * (RECOVERING) before it forks the
	                                * server and DOWN when it dies; the
	                                * server CASes RECOVERING -> UP. */
	_Atomic int32_t pid;           /* supervisor after fork; 0 if none */
	_Atomic uint32_t wake;         /* futex: lockctl pokes the server */
	_Atomic uint64_t start_time;   /* supervisor after fork */
	_Atomic int64_t heartbeat_ms;  /* server: monotonic ms, every tick;
	                                * clients treat a stale heartbeat as
	                                * DOWN (a hung server) */
	_Atomic int64_t quarantine_until_ms; /* local monotonic ms until
	                                * which a RECOVERING server grants
	                                * nothing: INT64_MAX (supervisor, at
	                                * restart) until the server has worked
	                                * it out, then the server's answer */
	_Atomic uint64_t token_floor;  /* server at recovery: no token at or
	                                * below it may be issued here again */
	_Atomic uint64_t restarts;     /* supervisor: times restarted */
	_Atomic uint64_t expired;      /* server: leases it expired */
	_Atomic uint64_t token_reserved; /* server: no token above it may be
	                                * written to this table; with a state
	                                * directory it is what the server has
	                                * made durable (blocks of tokens, so
	                                * not every grant costs an fsync);
	                                * without one, UINT64_MAX */
	_Atomic uint64_t token_wanted; /* client: CAS max of tokens it wants
	                                * reserved; server reads it */
	_Atomic uint32_t reserve_seq;  /* futex: server bumps it after every
	                                * reservation; clients wait on it */
	_Atomic uint32_t flags;        /* LM_SRVF_*: supervisor and lockctl
	                                * set, server clears (CAS) */
	_Atomic uint32_t skew_seq;     /* lockctl: skew[skew_seq & 1] is the
	                                * server's clock; bumped (release)
	                                * after the other entry is filled in
	                                * (shm/clock.h) */
	struct lm_skew skew[2];        /* lockctl, see skew_seq */
	_Atomic uint32_t recovery;     /* LM_RECOV_*: why a RECOVERING server
	                                * waits. Supervisor at restart, then
	                                * the server */
	_Atomic int64_t restarted_ms;  /* supervisor: local ms of the last
	                                * restart (a lost table's fallback
	                                * quarantine runs from here) */
	_Atomic int64_t quarantine_floor_ms; /* supervisor at restart: the
	                                * quarantine lasts at least until then
	                                * (the last service's leases), else 0 */
	uint8_t pad_[88];
};

/* lm_server.recovery: why a RECOVERING server does not count yet */
#define LM_RECOV_NONE       0u /* up, or never restarted */
#define LM_RECOV_LOOKING    1u /* just restarted: reading its table */
#define LM_RECOV_OWN_LEASES 2u /* until the leases granted in its
				* earlier lives (still in its table) end */
#define LM_RECOV_PEERS      3u /* lost its table: waits for both peers to
				* be up, to read their tokens and leases */
#define LM_RECOV_PEER_LEASES 4u /* lost its table: until every lease on
				* its peers that could include it ends */
#define LM_RECOV_MAX_TTL    5u /* nothing better known: one max TTL */
#define LM_RECOV_PREV_LIFE  6u /* the region is new, and the last
				* service's leases may still run */

/* lm_server.flags */
#define LM_SRVF_WIPE_NEXT   0x1u /* lockctl: the next restart loses the
				  * table (simulated memory loss) */
#define LM_SRVF_TOKENS_LOST 0x2u /* supervisor: this life started with a
				  * lost table; the server must recover
				  * token high-water marks from both peers
				  * (or its state file) before going UP */

/* ---------------------------------------------------------------------
 * Isolation rules: `lockctl server isolate N --pid P` simulates a network
 * partition between process P and server N. A rule names the process
 * (pid plus start time, so a reused pid is not caught) and the servers it
 * cannot reach; it holds for the sessions P has and for those it opens
 * later, until `lockctl server heal N`.
 *
 * Writers are lockctl processes, one at a time: each holds an OFD write
 * lock on byte LM_ISOLATION_LOCK_BYTE of the shm object (through an open
 * file description of its own), which the kernel drops if it dies. A
 * writer makes isolation_gen odd, changes rules, then makes it even (one
 * more): a seqlock's count. It never writes a session: each client keeps
 * its own lm_session.isolated, and re-reads the rules before each
 * acquire attempt and renewal if isolation_gen moved since its last look
 * or is odd (an acquire load, pairing with the writer's seq_cst stores).
 * A writer that dies mid-change leaves the count odd, and clients
 * re-read the rules every time until the next writer finishes; no
 * session ever carries another process's isolation.
 *
 * In an entry, the writer fills start_time before it publishes `who`, and
 * clears `who` before it reuses the entry; a reader loads `who`,
 * start_time, then `who` again, and trusts the pair only if `who` did not
 * change.
 */
#define LM_ISOLATION_RULES     16u
#define LM_ISOLATION_LOCK_BYTE LM_NSERVERS /* bytes 0..2: server clocks */

/* Rule word: pid in the low 32 bits, bit 32+i set if server i refuses the
 * process. 0 = a free entry. */
#define LM_ISO_WORD(pid, servers) \
	(((uint64_t)(servers) << 32) | (uint64_t)(uint32_t)(pid))
#define LM_ISO_PID(w)     ((int32_t)(uint32_t)(w))
#define LM_ISO_SERVERS(w) ((uint32_t)((w) >> 32) & ((1u << LM_NSERVERS) - 1))

struct lm_isolation_rule {
	_Atomic uint64_t who;        /* lockctl, under the rule lock:
	                              * LM_ISO_WORD, stored after start_time */
	_Atomic uint64_t start_time; /* lockctl, under the rule lock: the
	                              * process's start time (clock ticks) */
};

/* ---------------------------------------------------------------------
 * Region header. The creator fills it in and publishes `magic` last with
 * a release store; attach() loads it with acquire and validates every
 * size before it touches anything else.
 */
struct lm_region_header {
	_Atomic uint64_t magic;        /* creator, last (release) */
	uint32_t abi_version;          /* creator */
	uint32_t header_size;          /* creator: sizeof(struct lm_region_header) */
	uint64_t region_size;          /* creator */
	uint32_t max_locks;            /* creator */
	uint32_t max_sessions;         /* creator */
	uint32_t bucket_count;         /* creator: power of two >= max_locks */
	uint32_t nservers;             /* creator: LM_NSERVERS */
	uint32_t session_size;         /* creator: sizeof(struct lm_session) */
	uint32_t name_size;            /* creator: sizeof(struct lm_name) */
	uint32_t slot_size;            /* creator: sizeof(struct lm_slot) */
	uint32_t server_size;          /* creator: sizeof(struct lm_server) */
	uint64_t off_sessions;         /* creator: byte offsets */
	uint64_t off_buckets;
	uint64_t off_names;
	uint64_t off_servers;          /* creator: the 3 server headers */
	uint64_t off_slots;            /* creator: slots[max_locks][3] */
	int64_t max_ttl_ms;            /* creator: longest lease; also the
	                                * quarantine of a restarted server */
	int64_t created_realtime_s;    /* creator */
	_Atomic uint32_t flags;        /* supervisor: LM_REGION_* */
	_Atomic uint32_t names_hwm;    /* client: 1 + highest name slot ever
	                                * claimed (atomic max, before the
	                                * claim); what scans of the names and
	                                * tables cover */
	_Atomic uint32_t names_cursor; /* client: where the next claim looks
	                                * for a free name slot (fetch_add) */
	_Atomic uint32_t names_live;   /* server: name slots in use, counted
	                                * on its last full sweep (a hint: how
	                                * full the table is) */
	_Atomic uint32_t sessions_hwm; /* client: 1 + highest session index
	                                * ever claimed (atomic max) */
	_Atomic uint32_t session_seq;  /* futex: client bumps it on register
	                                * and unregister; the supervisor's
	                                * registrar sleeps on it */
	_Atomic uint32_t supervisor_state; /* supervisor: LM_SUP_* */
	_Atomic int32_t supervisor_pid;    /* supervisor */
	_Atomic uint64_t supervisor_start; /* supervisor: start time (ticks) */
	_Atomic int64_t restart_delay_ms;  /* supervisor: -1 = manual */
	_Atomic uint32_t start_requests;   /* lockctl sets bit i to ask the
	                                    * supervisor to start server i,
	                                    * then sends it SIGUSR1; the
	                                    * supervisor takes them (xchg 0) */
	_Atomic uint32_t servers_seq;      /* futex: bumped (then woken) by a
	                                    * server that went UP or came back
	                                    * from a stall, and by lockctl
	                                    * heal; acquires waiting for a
	                                    * quorum sleep on it */
	_Atomic uint64_t supervisor_pid_ns;  /* supervisor, before RUNNING:
	                                      * its pid and time namespaces
	                                      * (lm_pid_namespace; 0 unknown):
	                                      * a client in others is refused,
	                                      * since pids and start times
	                                      * would mean something else */
	_Atomic uint64_t supervisor_time_ns;
	_Atomic uint32_t names_short;  /* client: bumped by an insert that
	                                * found no free name slot and
	                                * reclaimed a name itself; servers
	                                * reclaim idle names ahead of inserts
	                                * only while it moves */
	_Atomic uint32_t isolation_gen; /* lockctl, under the rule lock:
	                                * odd while it changes rules */
	struct lm_isolation_rule isolation[LM_ISOLATION_RULES]; /* see above */
	_Atomic int64_t deadlock_timeout_ms; /* supervisor, at start
	                                * (--deadlock-timeout): how long a
	                                * wait lasts before it looks for a
	                                * cycle, unless the acquire says; 0 =
	                                * the library's default, < 0 never */
	uint8_t pad_[56];
};

_Static_assert(sizeof(struct lm_session) == 576, "session slot: 9 lines");
_Static_assert(sizeof(struct lm_lock_note) == 32, "note size");
_Static_assert(sizeof(struct lm_slot) == 64, "lock slot is a line");
_Static_assert(sizeof(struct lm_name) == 280, "name slot size");
_Static_assert(sizeof(struct lm_queue) == 32, "queue size");
_Static_assert(sizeof(struct lm_name_state) == 32, "name state size");
_Static_assert(sizeof(struct lm_server) == 256, "server header size");
_Static_assert(sizeof(struct lm_region_header) == 512, "header size");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "lock-free 64-bit atomics");

#endif
