/*
 * name_index.c - lock-free name -> lock index map in the region.
 *
 * Insert race: two clients inserting the same new name both fill a name
 * slot; the first CAS into the bucket wins and the loser finds the
 * winner's slot on its next probe. The loser's slot is wasted (names are
 * never freed), which costs one slot per lost race rather than a lock
 * that a dying client could leave held.
 */
#include "name_index.h"

#include <string.h>

#include "../client/lockmgr.h"

int lm_name_check(const char *name, size_t len)
{
	if (name == NULL || len == 0 || len > LM_NAME_MAX)
		return LM_EBADNAME;
	if (memchr(name, '\0', len) != NULL)
		return LM_EBADNAME;
	return 0;
}

uint32_t lm_name_hash(const char *name, size_t len)
{
	/* FNV-1a, then a finaliser so that similar names spread out. */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	return h;
}

static int name_matches(const struct lm_name *n, uint32_t hash,
			const char *name, size_t len)
{
	/* Pairs with the release store of len in fill_slot. */
	uint32_t nlen = atomic_load_explicit(&n->len, memory_order_acquire);
	return nlen == len &&
	       atomic_load_explicit(&n->hash, memory_order_relaxed) == hash &&
	       memcmp(n->name, name, len) == 0;
}

static int64_t alloc_slot(struct lm_region *r, uint32_t hash,
			  const char *name, size_t len)
{
	uint32_t idx = atomic_fetch_add(&r->hdr->names_used, 1);
	if (idx >= r->max_locks) {
		/* Undo so names_used stays near max_locks; readers bound it
		 * by max_locks anyway. */
		atomic_fetch_sub(&r->hdr->names_used, 1);
		return LM_ETABLEFULL;
	}
	struct lm_name *n = &r->names[idx];
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	atomic_store_explicit(&n->hash, hash, memory_order_relaxed);
	atomic_store_explicit(&n->len, (uint32_t)len, memory_order_release);
	return idx;
}

int64_t lm_name_lookup(struct lm_region *r, const char *name, size_t len,
		       int create)
{
	int rc = lm_name_check(name, len);
	if (rc != 0)
		return rc;
	uint32_t hash = lm_name_hash(name, len);
	int64_t mine = -1;
	uint32_t b = hash & r->bucket_mask;
	for (uint32_t probes = 0; probes <= r->bucket_mask; probes++,
		      b = (b + 1) & r->bucket_mask) {
		uint32_t v = atomic_load_explicit(&r->buckets[b],
						  memory_order_acquire);
		if (v == 0) {
			if (!create)
				return LM_ENOTHELD;
			if (mine < 0) {
				mine = alloc_slot(r, hash, name, len);
				if (mine < 0)
					return mine;
			}
			uint32_t expect = 0;
			if (atomic_compare_exchange_strong(
				    &r->buckets[b], &expect,
				    (uint32_t)mine + 1))
				return mine;
			v = expect; /* lost the race: look at the winner */
		}
		if (v > r->max_locks)
			continue; /* corrupted bucket: skip, never index */
		if (name_matches(&r->names[v - 1], hash, name, len))
			return v - 1;
	}
	return LM_ETABLEFULL;
}

const char *lm_name_of(const struct lm_region *r, uint32_t idx,
		       uint32_t *len)
{
	if (idx >= r->max_locks)
		return NULL;
	const struct lm_name *n = &r->names[idx];
	uint32_t l = atomic_load_explicit(&n->len, memory_order_acquire);
	if (l == 0 || l > LM_NAME_MAX)
		return NULL;
	if (len != NULL)
		*len = l;
	return n->name;
}
