/*
 * isolation.c - the isolation rules (a simulated partition between a
 * process and some servers), their generation, and the clients' copies
 * of them. The protocol is in layout.h ("Isolation rules").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
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
		/* `who` twice around start_time: an entry reused between
		 * the loads would pair one process's pid with another's
		 * start time. A writer that keeps changing it (only a
		 * foreign one would) gets the entry skipped. */
		for (int tries = 0; tries < 4; tries++) {
			uint64_t w = atomic_load(&rule->who);
			if (w == 0 || LM_ISO_PID(w) != pid)
				break;
			uint64_t st = atomic_load(&rule->start_time);
			if (atomic_load(&rule->who) != w)
				continue;
			if (st == start_time)
				servers |= LM_ISO_SERVERS(w);
			break;
		}
	}
	return servers;
}

uint32_t lm_isolation_refresh(struct lm_region *r, struct lm_session *s,
			      pid_t pid, uint64_t start_time,
			      uint32_t *seen_gen, bool force)
{
	/* Pairs with the writer's bump after its rule change: seeing the
	 * new generation, we see the rules it covers. */
	uint32_t gen = atomic_load_explicit(&r->hdr->isolation_gen,
					    memory_order_acquire);
	/* Odd: a writer is changing the rules, or died doing so. Read them
	 * every time until a writer makes the generation even again. */
	if (force || gen != *seen_gen || (gen & 1)) {
		/* The generation first: a change after our read of the
		 * rules moves it again, and the next call reads anew. */
		*seen_gen = gen;
		uint32_t servers = lm_isolation_servers(r, pid, start_time);
		LM_HOOK("isolation.refresh");
		atomic_store_explicit(&s->isolated, servers,
				      memory_order_relaxed);
	}
	return atomic_load_explicit(&s->isolated, memory_order_relaxed);
}

/*
 * Take (or drop) the rule lock (layout.h) on fd, a descriptor of our
 * own: an OFD lock is owned by an open file description, so one shared
 * with a forked child or another thread's attachment would exclude
 * nothing. 0, or -EBUSY after 2 s, or -errno.
 */
static int rule_lock(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET,
			   .l_start = LM_ISOLATION_LOCK_BYTE, .l_len = 1};
	if (type == F_UNLCK)
		return fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 0 : -errno;
	for (int i = 0; i < 200; i++) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES)
			return -errno;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

/*
 * Open our own descriptor of the region's shm object, lock the rules
 * with it, and make the generation odd (changing): the descriptor, or
 * -errno. Odd from before the first rule store until after the last, so
 * that a writer killed in between leaves clients re-reading the rules
 * rather than trusting a copy made before its change.
 */
static int rules_open_locked(struct lm_region *r)
{
	int fd = shm_open(r->name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = rule_lock(fd, F_WRLCK);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	/* A writer that died left it odd already. */
	atomic_store(&r->hdr->isolation_gen,
		     atomic_load(&r->hdr->isolation_gen) | 1u);
	LM_HOOK("isolation.changing");
	return fd;
}

/* Publish the rule changes made under the lock (the generation even and
 * new), then let the lock go. */
static void rules_publish_unlock(struct lm_region *r, int fd)
{
	LM_HOOK("isolation.before_publish");
	atomic_store(&r->hdr->isolation_gen,
		     atomic_load(&r->hdr->isolation_gen) + 1);
	/* Closing the descriptor drops its OFD lock. */
	close(fd);
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

/* The thread group (process) of task id tid, or 0 if it is gone. */
static pid_t thread_group(pid_t tid)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	pid_t tgid = 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

/* Live sessions of process (pid, start): only counted, never written. */
static unsigned count_sessions(const struct lm_region *r, pid_t pid,
			       uint64_t start)
{
	unsigned count = 0;
	uint32_t n = lm_sessions_in_use(r);
	for (uint32_t i = 0; i < n; i++) {
		const struct lm_session *s = &r->sessions[i];
		uint64_t w = lm_session_word(s);
		if (LM_SESS_STATE(w) == LM_SESS_LIVE &&
		    LM_SESS_PID(w) == pid &&
		    atomic_load(&s->start_time) == start)
			count++;
	}
	return count;
}

int lm_isolation_add(struct lm_region *r, unsigned server, pid_t pid,
		     unsigned *sessions, pid_t *tgid)
{
	*sessions = 0;
	*tgid = 0;
	uint64_t start = pid > 0 ? lm_proc_start_time(pid) : 0;
	if (start == 0)
		return -ESRCH;
	/* /proc/TID answers for a thread too, but sessions are keyed by
	 * the process: a thread's id would never match one. */
	*tgid = thread_group(pid);
	if (*tgid != 0 && *tgid != pid)
		return -EINVAL;
	int fd = rules_open_locked(r);
	if (fd < 0)
		return fd;
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
		rules_publish_unlock(r, fd);
		return -ENOSPC;
	}
	rules_publish_unlock(r, fd);
	*sessions = count_sessions(r, pid, start);
	return 0;
}

int lm_isolation_heal(struct lm_region *r, unsigned server,
		      unsigned *processes)
{
	*processes = 0;
	int fd = rules_open_locked(r);
	if (fd < 0)
		return fd;
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
	/* A new generation even when no rule changed: a session whose bits
	 * were set some other way (a test) re-reads the rules. */
	rules_publish_unlock(r, fd);
	return 0;
}
