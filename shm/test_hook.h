/*
 * test_hook.h - named pause points, so a test can stop a process at one
 * exact step of a protocol and drive the interleaving it wants.
 *
 * A test sets LOCKMGR_TEST_PAUSE=point[,point...] in the environment of
 * the process it wants to stop (a client, lockmgrd, whose servers inherit
 * it). When that process reaches LM_HOOK("point") it appends
 * "point pid\n" to $LOCKMGR_TEST_PAUSE_LOG (if set) and stops itself with
 * SIGSTOP; the test sees it stopped, does what the interleaving needs,
 * and sends SIGCONT. Each point pauses once per process; "point@N"
 * pauses at its Nth hit instead of the first.
 *
 * Unarmed, a hook costs one load of a global and a predictable branch.
 * The variable is for tests only: nothing else sets it.
 */
#ifndef LOCKMGR_SHM_TEST_HOOK_H
#define LOCKMGR_SHM_TEST_HOOK_H

#include <stdatomic.h>
#include <stdbool.h>

extern _Atomic bool lm_hook_armed;

/* Read LOCKMGR_TEST_PAUSE, once per process (a forked child reads its
 * own); called by lm_connect and by lockmgrd's roles. Thread-safe. */
void lm_hook_init(void);

/* Pause here if the point is armed (see above). */
void lm_hook_hit(const char *point);

/*
 * Test switches: LOCKMGR_TEST_OFF=what[,what...] turns off one
 * safety net by name, so that a test can prove the mechanism it backs
 * up works on its own (e.g. "unstall": the servers' wake of a stalled
 * queue, which would otherwise hide a missing hand-off wake). Read
 * once per call; callers cache it. Tests only.
 */
bool lm_test_off(const char *what);

#define LM_HOOK(point)                                                    \
	do {                                                              \
		if (__builtin_expect(atomic_load_explicit(               \
					     &lm_hook_armed,              \
					     memory_order_relaxed), 0))   \
			lm_hook_hit(point);                               \
	} while (0)

#endif
