/*
 * name_index.h - the lock-name index: name -> lock index.
 *
 * An open-addressing hash table of 32-bit buckets (0 = empty, else name
 * slot + 1) over an append-only array of name slots. Lookups are wait-
 * free loads; an insert fills a fresh name slot, publishes it, then CASes
 * it into the first empty bucket of its probe sequence. Names are never
 * removed, so a published bucket never changes again.
 */
#ifndef LOCKMGR_SHM_NAME_INDEX_H
#define LOCKMGR_SHM_NAME_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"

/* 0 if name is a valid lock name (1..255 bytes, no NUL), else LM_EBADNAME. */
int lm_name_check(const char *name, size_t len);

uint32_t lm_name_hash(const char *name, size_t len);

/*
 * Find the lock index of name; create the entry if create is set.
 * Returns the index (>= 0), LM_EBUSY-free negative errors: LM_EBADNAME,
 * LM_ETABLEFULL, or LM_ENOTHELD when !create and the name is unknown.
 */
int64_t lm_name_lookup(struct lm_region *r, const char *name, size_t len,
		       int create);

/* The published name of lock idx, or NULL if the slot is not in use. */
const char *lm_name_of(const struct lm_region *r, uint32_t idx,
		       uint32_t *len);

#endif
