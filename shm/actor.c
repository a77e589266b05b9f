/*
 * actor.c - naming a process in shared memory (actor.h).
 */
#include "actor.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "layout.h"
#include "session.h"

uint64_t lm_actor_self(void)
{
	/* Cached per process: a forked child reads its own. */
	static _Atomic uint64_t cached;
	static _Atomic pid_t cached_for;
	pid_t pid = getpid();
	if (atomic_load(&cached_for) != pid) {
		atomic_store(&cached, LM_ACTOR(lm_proc_start_time(pid), pid));
		atomic_store(&cached_for, pid);
	}
	return atomic_load(&cached);
}

bool lm_actor_gone(uint64_t actor)
{
	pid_t pid = LM_ACTOR_PID(actor);
	if (pid <= 0)
		return true; /* not a word any actor writes */
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return true;
	uint64_t start = lm_proc_start_time(pid);
	/* 0: unreadable, which proves nothing. */
	return start != 0 && (uint32_t)start != LM_ACTOR_START(actor);
}
