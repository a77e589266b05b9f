/*
 * actor.c - naming a process in shared memory (actor.h).
 */
#include "actor.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "session.h"

uint64_t lm_actor_session(const struct lm_region *r,
			  const struct lm_session *self)
{
	uint32_t idx = (uint32_t)(self - r->sessions);
	return LM_ACTOR(LM_ACTOR_SESSION, idx,
			LM_SESS_GEN(atomic_load(&self->life)));
}

uint64_t lm_actor_server(unsigned index, uint64_t epoch)
{
	return LM_ACTOR(LM_ACTOR_SERVER, index, (uint32_t)epoch);
}

uint64_t lm_actor_process(void)
{
	/* Read /proc once per process (a forked child reads its own). */
	static _Atomic uint64_t cached;
	static _Atomic pid_t cached_for;
	pid_t pid = getpid();
	if (atomic_load(&cached_for) != pid) {
		atomic_store(&cached,
			     LM_ACTOR(LM_ACTOR_PROCESS,
				      (uint32_t)lm_proc_start_time(pid),
				      (uint32_t)pid));
		atomic_store(&cached_for, pid);
	}
	return atomic_load(&cached);
}

bool lm_actor_gone(const struct lm_region *r, uint64_t actor)
{
	uint32_t high = LM_ACTOR_HIGH(actor), low = LM_ACTOR_LOW(actor);
	switch (LM_ACTOR_KIND(actor)) {
	case LM_ACTOR_SESSION: {
		if (high >= r->max_sessions)
			return true; /* no such session: a damaged word */
		uint64_t w = atomic_load(&r->sessions[high].life);
		return LM_SESS_STATE(w) != LM_SESS_LIVE ||
		       LM_SESS_GEN(w) != (low & 0x3fffffffu);
	}
	case LM_ACTOR_SERVER: {
		if (high >= LM_NSERVERS)
			return true;
		uint64_t st = atomic_load(&r->servers[high]->state);
		return LM_SRV_STATE(st) == LM_SRV_DOWN ||
		       (uint32_t)LM_SRV_EPOCH(st) != low;
	}
	case LM_ACTOR_PROCESS: {
		pid_t pid = (pid_t)low;
		if (pid <= 0)
			return true;
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
		uint64_t st = lm_proc_start_time(pid);
		return st != 0 && ((uint32_t)st & 0x3fffffffu) != high;
	}
	default:
		return true; /* not a word any actor writes */
	}
}
