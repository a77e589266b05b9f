/*
 * session.c - claiming, freeing and identifying session slots.
 */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "status.h"
#include "futex.h"
#include "test_hook.h"

/*
 * Read /proc/PID/stat: the process state letter and its start time
 * (clock ticks since boot). Returns false if the process is gone.
 */
static bool proc_stat(pid_t pid, char *state, uint64_t *start_time)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses:
	 * count fields from the last ')'. Field 3 is the state, field 22
	 * the start time. */
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return false;
	*state = p[2];
	p++;
	for (int field = 2; field < 21 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return false;
	*start_time = strtoull(p + 1, NULL, 10);
	return true;
}

static uint64_t namespace_id(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

uint64_t lm_pid_namespace(void)
{
	return namespace_id("/proc/self/ns/pid");
}

uint64_t lm_time_namespace(void)
{
	return namespace_id("/proc/self/ns/time");
}

uint64_t lm_proc_start_time(pid_t pid)
{
	char state;
	uint64_t start;
	/* Not "zombie = dead" here: a process whose main thread called
	 * pthread_exit shows as Z while its other threads run. Deaths are
	 * reported by pidfds; this only tells one process from another. */
	return proc_stat(pid, &state, &start) ? start : 0;
}

bool lm_session_process_alive(const struct lm_session *s)
{
	pid_t pid = LM_SESS_PID(atomic_load(&s->life));
	if (pid <= 0)
		return false;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return false;
	uint64_t st = lm_proc_start_time(pid);
	/* 0: /proc unreadable or process gone between the calls. */
	return st != 0 && st == atomic_load(&s->start_time);
}

bool lm_session_process_running(const struct lm_session *s)
{
	pid_t pid = LM_SESS_PID(atomic_load(&s->life));
	char state;
	uint64_t start;
	if (pid <= 0 || !proc_stat(pid, &state, &start))
		return false;
	return start == atomic_load(&s->start_time) && state != 'Z' &&
	       state != 'X' && state != 'T' && state != 't';
}

void lm_session_notify(struct lm_region *r)
{
	lm_futex_bump_wake(&r->hdr->session_seq, 1);
}

/* Raise sessions_hwm to cover slot i, before the slot is claimed: a
 * claimer that dies right after its claim must still be in the range
 * the supervisor scans. */
static void cover_slot(struct lm_region *r, uint32_t i)
{
	uint32_t hwm = atomic_load(&r->hdr->sessions_hwm);
	while (hwm < i + 1 &&
	       !atomic_compare_exchange_weak(&r->hdr->sessions_hwm, &hwm,
					     i + 1))
		;
}

int lm_session_claim(struct lm_region *r, pid_t pid, uint64_t start_time,
		     uint64_t *live_word)
{
	for (uint32_t i = 0; i < r->max_sessions; i++) {
		struct lm_session *s = &r->sessions[i];
		uint64_t w = atomic_load_explicit(&s->life,
						  memory_order_relaxed);
		if (LM_SESS_STATE(w) != LM_SESS_FREE)
			continue;
		cover_slot(r, i);
		uint32_t gen = LM_SESS_GEN(w) + 1;
		uint64_t claiming = LM_SESS_WORD(pid, gen, LM_SESS_CLAIMING);
		if (!atomic_compare_exchange_strong(&s->life, &w, claiming))
			continue;
		LM_HOOK("session.claimed");
		/* The slot is ours alone until it is LIVE: nobody else
		 * writes these fields of a CLAIMING slot. */
		atomic_store(&s->start_time, start_time);
		atomic_store(&s->waiting_on, 0);
		atomic_store(&s->isolated, 0);
		atomic_store(&s->acquires, 0);
		atomic_store(&s->held_overflow, 0);
		atomic_store(&s->unrecorded, 0);
		atomic_store(&s->inserting, 0);
		for (unsigned k = 0; k < LM_HELD_MAX; k++) {
			atomic_store(&s->held[k], 0);
			for (unsigned i = 0; i < LM_NSERVERS; i++)
				atomic_store(&s->joined[k][i], 0);
		}
		atomic_store(&s->wait_mode, 0);
		/* Pairs with the acquire loads of life by the supervisor
		 * and lockctl: a LIVE slot has its identity filled in. */
		uint64_t live = LM_SESS_WORD(pid, gen, LM_SESS_LIVE);
		if (!atomic_compare_exchange_strong_explicit(
			    &s->life, &claiming, live, memory_order_seq_cst,
			    memory_order_relaxed))
			/* Only a claimer proven dead loses its claim, so
			 * this is a damaged region: leave the slot be. */
			continue;
		lm_session_notify(r);
		*live_word = live;
		return (int)i;
	}
	return LM_R_SESSIONS;
}

bool lm_session_transition(struct lm_region *r, uint32_t idx, uint64_t from,
			   uint64_t to)
{
	if (idx >= r->max_sessions)
		return false;
	bool ok = atomic_compare_exchange_strong(&r->sessions[idx].life,
						 &from, to);
	if (ok && LM_SESS_STATE(to) == LM_SESS_FREE)
		lm_session_notify(r);
	return ok;
}

bool lm_session_free(struct lm_region *r, uint32_t idx, uint64_t from)
{
	if (idx >= r->max_sessions)
		return false;
	/* A slot taken over meanwhile (by a supervisor that believed its
	 * client dead) may already be someone else's: leave its identity,
	 * pins and value alone. */
	if (atomic_load(&r->sessions[idx].life) != from)
		return false;
	/* A FREE slot keeps no identity. A claimer writes its start time
	 * only after its claim, and the supervisor, judging whether a
	 * claimer died, once compared against the start time of the slot's
	 * previous life and took a live claimer for a dead one. The writer
	 * owns the slot here (its own LIVE life, a DEAD one it reaped, or a
	 * claim whose claimer is proven dead). */
	atomic_store(&r->sessions[idx].start_time, 0);
	/* Its pins go with it (shm/pins.h), and its proclaimed value. */
	for (unsigned k = 0; k < LM_PINS_MAX; k++)
		atomic_store(&r->sessions[idx].pins[k], 0);
	atomic_store(&r->sessions[idx].value_lock, 0);
	return lm_session_transition(
		r, idx, from, LM_SESS_WORD(0, LM_SESS_GEN(from), LM_SESS_FREE));
}
