/*
 * region.h - create, attach, validate and address the shared region.
 *
 * A struct lm_region is a process-local view of the mapping: it caches
 * the validated sizes and base pointers so that the hot paths never
 * re-read (and never trust) sizes from shared memory.
 */
#ifndef LOCKMGR_SHM_REGION_H
#define LOCKMGR_SHM_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "status.h"

#define LM_DEFAULT_REGION       "/lockmgr"
#define LM_DEFAULT_MAX_LOCKS    65536u
#define LM_DEFAULT_MAX_SESSIONS 1024u
#define LM_DEFAULT_MAX_TTL_MS   60000
#define LM_REGION_NAME_MAX      200u

struct lm_region {
	struct lm_region_header *hdr;
	void *base;
	size_t size;
	int fd;
	uint32_t max_locks;
	uint32_t max_sessions;
	uint32_t bucket_mask;
	int64_t max_ttl_ms;
	struct lm_session *sessions;
	_Atomic uint64_t *buckets;   /* chain heads (LM_LINK words) */
	struct lm_name *names;
	struct lm_server *servers[LM_NSERVERS];
	struct lm_slot *slots; /* slots[lock * LM_NSERVERS + server] */
	char name[LM_REGION_NAME_MAX + 2];
};

struct lm_region_params {
	uint32_t max_locks;
	uint32_t max_sessions;
	int64_t max_ttl_ms;
	unsigned mode; /* file mode of the shm object, 0600 by default */
	bool tree;     /* names with '/' form a tree (LM_REGION_TREE) */
};

/*
 * Resolve the region name: explicit > $LOCKMGR_REGION > "/lockmgr"; an
 * explicit empty name is refused (it is a mistake, not "the default").
 * Accepts "name" or "/name"; writes "/name" to out. Returns 0 or
 * LM_R_BADREGION.
 */
int lm_region_resolve_name(const char *name, char out[LM_REGION_NAME_MAX + 2]);

/* Bytes a region with these parameters occupies. */
size_t lm_region_size_for(uint32_t max_locks, uint32_t max_sessions);

/* Check params; 0 or LM_R_INVAL with a message in err. */
int lm_region_check_params(const struct lm_region_params *p, char *err,
			   size_t errlen);

/*
 * Lay out and initialise a region in an already-sized, zeroed fd (the
 * supervisor owns the fd and its flock). Publishes magic last.
 */
int lm_region_init(struct lm_region *r, int fd, const char *name,
		   const struct lm_region_params *p);

/*
 * Attach an existing region read-write and validate it. Returns 0,
 * LM_R_NOSUPERVISOR (no such object), LM_R_INCOMPAT (foreign, corrupted,
 * truncated, other ABI), or LM_R_SYS (errno set). On LM_R_INCOMPAT a
 * reason is written to why.
 */
int lm_region_attach(struct lm_region *r, const char *name, char *why,
		     size_t whylen);

/* Validate a mapping of `size` bytes at `base` (attach's check). */
int lm_region_validate(const void *base, size_t size, char *why,
		       size_t whylen);

/* Map the validated fd (used by attach and by the supervisor's adopt). */
int lm_region_map_fd(struct lm_region *r, int fd, const char *name,
		     char *why, size_t whylen);

void lm_region_detach(struct lm_region *r);

static inline struct lm_slot *lm_slot_of(const struct lm_region *r,
					 unsigned server, uint32_t lock)
{
	return &r->slots[(size_t)lock * LM_NSERVERS + server];
}

/* The wait queue of lock (in its table-0 slot). */
static inline struct lm_queue *lm_queue_of(const struct lm_region *r,
					   uint32_t lock)
{
	return &lm_slot_of(r, 0, lock)->queue;
}

/* The session a (possibly corrupted) owner word names, or NULL. */
static inline struct lm_session *lm_owner_session(const struct lm_region *r,
						  uint64_t owner)
{
	uint32_t s = LM_OWNER_SESSION(owner);
	if (s == 0 || s > r->max_sessions)
		return NULL;
	return &r->sessions[s - 1];
}

/* Name slots that may be (or have been) in use: 1 + the highest ever
 * claimed, bounded by max_locks. Scans of the names and tables stop
 * here. */
static inline uint32_t lm_names_in_use(const struct lm_region *r)
{
	uint32_t n = atomic_load_explicit(&r->hdr->names_hwm,
					  memory_order_acquire);
	return n < r->max_locks ? n : r->max_locks;
}

/* The life word of name slot (= lock) idx (in its table-1 slot). */
static inline _Atomic uint64_t *lm_name_life(const struct lm_region *r,
					     uint32_t idx)
{
	return &lm_slot_of(r, 1, idx)->name.life;
}

/*
 * The gate of semaphore slot `lock` (its lock index + 1), or 0: the
 * note's gate (layout.h, lm_lock_note.gate) if it was stored for the
 * name's current life. A gate stored through a stale index (the slot's
 * name reclaimed and the index given to another name since its writer
 * resolved it) names no gate. The note is loaded first, seq_cst: the
 * caller's half of the Dekker pair with a gate waiter (semaphore.h).
 */
static inline uint32_t lm_slot_gate(const struct lm_region *r, uint32_t lock)
{
	uint64_t w = atomic_load(&lm_slot_of(r, 2, lock)->note.gate);
	uint32_t g1 = LM_GATE_LOCK1(w);
	if (g1 == 0 || g1 > r->max_locks || g1 - 1 == lock)
		return 0;
	uint64_t life = atomic_load(lm_name_life(r, lock));
	return LM_GATE_GEN(w) == (uint32_t)LM_NAME_GEN(life) ? g1 : 0;
}

/* 1 + highest session index ever claimed, bounded by max_sessions. */
static inline uint32_t lm_sessions_in_use(const struct lm_region *r)
{
	uint32_t n = atomic_load_explicit(&r->hdr->sessions_hwm,
					  memory_order_acquire);
	return n < r->max_sessions ? n : r->max_sessions;
}

#endif
