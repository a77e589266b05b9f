/*
 * pins.c - keeping a name from reclaim without holding it (pins.h).
 */
#include "pins.h"

#include "name_reclaim.h"
#include "session.h"

int lm_pin(struct lm_session_ctx *c, uint32_t lock, uint64_t gen)
{
	_Atomic uint32_t *pins = c->self->pins;
	int k = 0;
	while (k < (int)LM_PINS_MAX && atomic_load(&pins[k]) != 0)
		k++;
	if (k == (int)LM_PINS_MAX)
		return LM_PIN_FULL;
	/* seq_cst, then the life: the other half of the reclaimer's
	 * DYING mark then scan. */
	atomic_store(&pins[k], lock + 1);
	if (!lm_name_keep(&c->region, lock, gen)) {
		atomic_store(&pins[k], 0);
		return LM_PIN_STALE;
	}
	return k;
}

void lm_unpin(struct lm_session_ctx *c, int k)
{
	if (k >= 0 && k < (int)LM_PINS_MAX)
		atomic_store(&c->self->pins[k], 0);
}

bool lm_pinned(const struct lm_region *r, uint32_t lock)
{
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t s = 0; s < n; s++) {
		const struct lm_session *ss = &r->sessions[s];
		/* A FREE slot's pins were cleared with it; any other state
		 * (a session being claimed, live, or dead and not yet
		 * freed) may pin. */
		for (unsigned k = 0; k < LM_PINS_MAX; k++)
			if (atomic_load(&ss->pins[k]) == lock + 1)
				return true;
	}
	return false;
}
