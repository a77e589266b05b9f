/*
 * isolation.c - the isolation rules (a simulated partition between a
 * process and some servers) and the session bits that copy them. The
 * protocol is in isolation.h and layout.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "isolation.h"
#include "session.h"
#include "test_hook.h"

uint32_t lm_isolation_servers(const struct lm_region *r, pid_t pid,
			      uint64_t start_time)
{
	uint32_t servers = 0;
	for (unsigned i = 0; i < LM_ISOLATION_RULES; i++) {
		const struct lm_isolation_rule *rule = &r->hdr->isolation[i];
		/* `who` first: its writer stored start_time before it. */
		uint64_t w = atomic_load(&rule->who);
		if (w != 0 && LM_ISO_PID(w) == pid &&
		    atomic_load(&rule->start_time) == start_time)
			servers |= LM_ISO_SERVERS(w);
	}
	return servers;
}

void lm_isolation_adopt(struct lm_region *r, struct lm_session *s, pid_t pid,
			uint64_t start_time)
{
	uint32_t servers = lm_isolation_servers(r, pid, start_time);
	for (;;) {
		LM_HOOK("isolation.adopt");
		/* seq_cst, after the CAS that made the session LIVE: either
		 * this read sees a rule lockctl wrote, or lockctl's scan
		 * (after its rule store) sees the session LIVE. */
		atomic_store(&s->isolated, servers);
		/* A rule changed between the read and the store may have
		 * had its bits set (or cleared) by lockctl before the store
		 * undid them: read again until the store is current. */
		uint32_t again = lm_isolation_servers(r, pid, start_time);
		if (again == servers)
			return;
		servers = again;
	}
}

/* Take the rule lock (layout.h): 0, or -EBUSY after 2 s, or -errno. */
static int rule_lock(struct lm_region *r, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET,
			   .l_start = LM_ISOLATION_LOCK_BYTE, .l_len = 1};
	if (type == F_UNLCK)
		return fcntl(r->fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
	for (int i = 0; i < 200; i++) {
		if (fcntl(r->fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES)
			return -errno;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

bool lm_isolation_rule_live(const struct lm_isolation_rule *rule, pid_t *pid,
			    uint32_t *servers)
{
	uint64_t w = atomic_load(&rule->who);
	if (w == 0 || LM_ISO_SERVERS(w) == 0)
		return false;
	uint64_t st = lm_proc_start_time(LM_ISO_PID(w));
	if (st == 0 || st != atomic_load(&rule->start_time))
		return false;
	if (pid != NULL)
		*pid = LM_ISO_PID(w);
	if (servers != NULL)
		*servers = LM_ISO_SERVERS(w);
	return true;
}

/* Set (or clear) bit `server` in the live sessions of process pid. */
static unsigned mark_sessions(struct lm_region *r, pid_t pid,
			      uint64_t start_time, unsigned server, bool set)
{
	unsigned count = 0;
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t i = 0; i < n; i++) {
		struct lm_session *s = &r->sessions[i];
		uint64_t w = lm_session_word(s);
		if (LM_SESS_STATE(w) != LM_SESS_LIVE ||
		    (pid != 0 && (LM_SESS_PID(w) != pid ||
				  atomic_load(&s->start_time) != start_time)))
			continue;
		if (set)
			atomic_fetch_or(&s->isolated, 1u << server);
		else
			atomic_fetch_and(&s->isolated, ~(1u << server));
		count++;
	}
	return count;
}

int lm_isolation_add(struct lm_region *r, unsigned server, pid_t pid,
		     unsigned *sessions)
{
	*sessions = 0;
	uint64_t start = lm_proc_start_time(pid);
	if (pid <= 0 || start == 0)
		return -ESRCH;
	int rc = rule_lock(r, F_WRLCK);
	if (rc != 0)
		return rc;
	struct lm_isolation_rule *mine = NULL, *spare = NULL;
	for (unsigned i = 0; i < LM_ISOLATION_RULES; i++) {
		struct lm_isolation_rule *rule = &r->hdr->isolation[i];
		uint64_t w = atomic_load(&rule->who);
		if (w != 0 && LM_ISO_PID(w) == pid &&
		    atomic_load(&rule->start_time) == start)
			mine = rule;
		else if (spare == NULL &&
			 !lm_isolation_rule_live(rule, NULL, NULL))
			spare = rule;
	}
	if (mine != NULL) {
		uint64_t w = atomic_load(&mine->who);
		atomic_store(&mine->who, LM_ISO_WORD(pid, LM_ISO_SERVERS(w) |
							  (1u << server)));
	} else if (spare != NULL) {
		/* Unpublish before the start time changes (layout.h). */
		atomic_store(&spare->who, 0);
		atomic_store(&spare->start_time, start);
		atomic_store(&spare->who, LM_ISO_WORD(pid, 1u << server));
	} else {
		rule_lock(r, F_UNLCK);
		return -ENOSPC;
	}
	LM_HOOK("isolation.rule_set");
	/* After the rule (seq_cst): a session that turned LIVE too late
	 * for this scan reads the rule in lm_isolation_adopt. */
	*sessions = mark_sessions(r, pid, start, server, true);
	rule_lock(r, F_UNLCK);
	return 0;
}

int lm_isolation_heal(struct lm_region *r, unsigned server,
		      unsigned *processes)
{
	*processes = 0;
	int rc = rule_lock(r, F_WRLCK);
	if (rc != 0)
		return rc;
	for (unsigned i = 0; i < LM_ISOLATION_RULES; i++) {
		struct lm_isolation_rule *rule = &r->hdr->isolation[i];
		uint64_t w = atomic_load(&rule->who);
		if (w == 0 || !(LM_ISO_SERVERS(w) & (1u << server)))
			continue;
		if (lm_isolation_rule_live(rule, NULL, NULL))
			(*processes)++;
		uint32_t left = LM_ISO_SERVERS(w) & ~(1u << server);
		atomic_store(&rule->who,
			     left != 0 ? LM_ISO_WORD(LM_ISO_PID(w), left) : 0);
	}
	/* After the rules: every session, including those of processes
	 * whose rule was already gone (and a region of an older lockctl). */
	mark_sessions(r, 0, 0, server, false);
	rule_lock(r, F_UNLCK);
	return 0;
}
