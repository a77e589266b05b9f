/*
 * primitives.c - the table of primitives and what is common to them.
 */
#include "primitives.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../client/lockmgr.h"

const struct prim_ops *const prim_table[PRIM_COUNT] = {
	[PRIM_ROBUST] = &prim_robust_ops,
	[PRIM_FLOCK] = &prim_flock_ops,
	[PRIM_OFD] = &prim_ofd_ops,
	[PRIM_POSIX_SEM] = &prim_posix_sem_ops,
	[PRIM_SYSV_SEM] = &prim_sysv_sem_ops,
	[PRIM_FUTEX] = &prim_futex_ops,
	[PRIM_LOCKMGR] = &prim_lockmgr_ops,
	[PRIM_LOCKMGR_REF] = &prim_lockmgr_ref_ops,
	[PRIM_REDIS] = &prim_redis_ops,
	[PRIM_RWLOCK] = &prim_rwlock_ops,
};

int prim_init(struct prim *p, enum prim_id id, uint32_t nlocks,
	      const char *tag)
{
	memset(p, 0, sizeof(*p));
	p->ops = prim_table[id];
	p->nlocks = nlocks;
	if (nlocks == 0)
		return -EINVAL;
	if (nlocks > p->ops->max_locks)
		return PRIM_ELIMIT;
	int rc = p->ops->init(p, nlocks, tag);
	if (rc != 0)
		p->ops->destroy(p); /* every destroy takes a partial init */
	return rc;
}

const char *prim_strerror(int rc)
{
	if (rc >= LM_ERR_FIRST && rc <= LM_ERR_LAST)
		return lm_strerror(rc);
	if (rc == PRIM_ELIMIT)
		return "more locks than this primitive supports";
	if (rc == PRIM_ELOST)
		return "the lock's lease had run out before its release "
		       "(another process may have held it meanwhile)";
	if (rc < 0 && rc > -4096)
		return strerror(-rc);
	return "unknown error";
}

int prim_parse_list(const char *list, unsigned *mask)
{
	*mask = 0;
	char *copy = strdup(list);
	if (copy == NULL)
		return -1;
	int rc = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		int found = -1;
		for (int i = 0; i < PRIM_COUNT; i++)
			if (strcmp(prim_table[i]->key, t) == 0)
				found = i;
		if (found < 0) {
			rc = -1;
			break;
		}
		*mask |= 1u << found;
	}
	free(copy);
	return rc;
}
