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
#include <unistd.h>

#include "../client/lockmgr.h"
#include "futex.h"

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
	pid_t pid = atomic_load(&s->pid);
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
	pid_t pid = atomic_load(&s->pid);
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

int lm_session_claim(struct lm_region *r, pid_t pid, uint64_t start_time)
{
	for (uint32_t i = 0; i < r->max_sessions; i++) {
		struct lm_session *s = &r->sessions[i];
		uint32_t st = LM_SESS_FREE;
		if (atomic_load_explicit(&s->state, memory_order_relaxed) !=
			    LM_SESS_FREE ||
		    !atomic_compare_exchange_strong(&s->state, &st,
						    LM_SESS_CLAIMING))
			continue;
		atomic_store(&s->pid, pid);
		atomic_store(&s->start_time, start_time);
		atomic_store(&s->waiting_on, 0);
		atomic_store(&s->isolated, 0);
		atomic_store(&s->acquires, 0);
		atomic_store(&s->held_overflow, 0);
		for (unsigned k = 0; k < LM_HELD_MAX; k++)
			atomic_store(&s->held[k], 0);
		/* Pairs with the acquire loads of state by the supervisor
		 * and lockctl: a LIVE slot has its identity filled in. */
		atomic_store_explicit(&s->state, LM_SESS_LIVE,
				      memory_order_release);
		uint32_t hwm = atomic_load(&r->hdr->sessions_hwm);
		while (hwm < i + 1 &&
		       !atomic_compare_exchange_weak(&r->hdr->sessions_hwm,
						     &hwm, i + 1))
			;
		lm_session_notify(r);
		return (int)i;
	}
	return LM_ESESSIONS;
}

void lm_session_free(struct lm_region *r, uint32_t idx)
{
	if (idx >= r->max_sessions)
		return;
	struct lm_session *s = &r->sessions[idx];
	atomic_store(&s->waiting_on, 0);
	atomic_store(&s->pid, 0);
	atomic_fetch_add(&s->gen, 1);
	atomic_store_explicit(&s->state, LM_SESS_FREE, memory_order_release);
	lm_session_notify(r);
}
