/*
 * snapshot.c - one read of the region for `lockctl status` and
 * `lockctl top` (see snapshot.h): the supervisor, the servers,
 * the sessions, and every lock that is held or waited for, each judged
 * as a client would judge it.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../../shm/clock.h"
#include "../../shm/group.h"
#include "../../shm/heartbeat.h"
#include "../../shm/holders.h"
#include "../../shm/isolation.h"
#include "../../shm/name_index.h"
#include "../../shm/region.h"
#include "../../shm/semaphore.h"
#include "../../shm/session.h"
#include "../lockmgr.h"
#include "lockctl.h"
#include "snapshot.h"

/* A killed process that nobody has reaped yet still answers kill(0)
 * and keeps its /proc entry: only its state letter says it is dead. */
static bool is_zombie(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may contain ')': the state follows the last. */
	const char *p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

bool ctl_pid_alive(int pid, uint64_t start)
{
	if (pid <= 0)
		return false;
	if ((kill(pid, 0) != 0 && errno != EPERM) || is_zombie(pid))
		return false;
	/* The pid may belong to another process by now. A start time of 0
	 * means /proc could not tell: trust kill(). */
	uint64_t now = lm_proc_start_time(pid);
	return now == 0 || start == 0 || now == start;
}

static void snap_supervisor(struct ctl_snapshot *s)
{
	const struct lm_region_header *h = s->r->hdr;
	uint32_t st = atomic_load(&h->supervisor_state);
	s->sup_pid = atomic_load(&h->supervisor_pid);
	s->sup_alive = ctl_pid_alive(s->sup_pid, atomic_load(&h->supervisor_start));
	if (st == LM_SUP_RUNNING)
		s->sup_state = s->sup_alive ? "running" : "dead";
	else if (st == LM_SUP_STOPPED)
		s->sup_state = "stopped";
	else
		s->sup_state = "none";
}

static void snap_servers(struct ctl_snapshot *s)
{
	int64_t now_ms = s->now_ns / 1000000;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct lm_server *srv = s->r->servers[i];
		struct ctl_srv_info *si = &s->srv[i];
		uint64_t w = atomic_load(&srv->state);
		si->epoch = LM_SRV_EPOCH(w);
		si->pid = atomic_load(&srv->pid);
		si->restarts = atomic_load(&srv->restarts);
		si->token_floor = atomic_load(&srv->token_floor);
		si->expired = atomic_load(&srv->expired);
		struct lm_skew_now k = lm_skew_read(srv);
		si->skew = k;
		si->skew_offset_ms = lm_skew_apply(&k, now_ms) - now_ms;
		si->skew_rate_ppm = k.rate_ppm;
		si->table_lost = (atomic_load(&srv->flags) &
				  LM_SRVF_TOKENS_LOST) != 0;
		si->hb_age_ms = lm_heartbeat_age_ms(
			atomic_load(&srv->heartbeat_ms), now_ms);
		si->quarantine_ms = 0;
		si->usable = false;
		switch (LM_SRV_STATE(w)) {
		case LM_SRV_UP:
			/* Clients treat a stale heartbeat as down: say so. */
			if (si->hb_age_ms > LM_HEARTBEAT_STALE_MS) {
				si->state = "hung";
			} else {
				si->state = "up";
				si->usable = true;
				s->usable++;
			}
			break;
		case LM_SRV_RECOVERING: {
			si->state = "recovering";
			int64_t until = atomic_load(&srv->quarantine_until_ms);
			si->quarantine_ms = until == INT64_MAX ? -1
							       : until - now_ms;
			if (until != INT64_MAX && si->quarantine_ms < 0)
				si->quarantine_ms = 0;
			ctl_recovery_note(srv, now_ms, si->recovery,
					  sizeof(si->recovery));
			break;
		}
		default:
			si->state = "down";
			si->hb_age_ms = -1;
			break;
		}
	}
}

/* Which running processes each server refuses (lockctl server
 * isolate), whether or not they have connected yet. */
static void snap_isolation(struct ctl_snapshot *s)
{
	for (unsigned i = 0; i < LM_ISOLATION_RULES; i++) {
		pid_t pid;
		uint32_t servers;
		if (!lm_isolation_rule_live(&s->r->hdr->isolation[i], &pid,
					    &servers))
			continue;
		for (unsigned j = 0; j < LM_NSERVERS; j++)
			if (servers & (1u << j))
				s->srv[j].iso_pids[s->srv[j].niso++] = pid;
	}
}

static int snap_sessions(struct ctl_snapshot *s)
{
	const struct lm_region *r = s->r;
	uint32_t n = lm_sessions_in_use(r);
	s->sess = calloc(n ? n : 1, sizeof(*s->sess));
	if (s->sess == NULL)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		const struct lm_session *ss = &r->sessions[i];
		uint64_t w = lm_session_word(ss);
		uint32_t st = LM_SESS_STATE(w);
		struct ctl_sess_info *si = &s->sess[s->nsess];
		if (st == LM_SESS_FREE)
			continue;
		si->slot = i;
		si->pid = LM_SESS_PID(w);
		si->gen = LM_SESS_GEN(w);
		si->start_time = atomic_load(&ss->start_time);
		si->acquires = atomic_load(&ss->acquires);
		/* The rules, which its client adopts at its next
		 * operation, and whatever bits it already has. */
		si->isolated = (lm_isolation_servers(r, si->pid,
						     si->start_time) |
				atomic_load(&ss->isolated)) &
			       ((1u << LM_NSERVERS) - 1);
		if (st == LM_SESS_LIVE)
			/* "gone": died while no supervisor was watching. */
			si->state = lm_session_process_alive(ss) ? "live"
								 : "gone";
		else if (st == LM_SESS_DEAD)
			si->state = "dead";
		else
			si->state = "claiming";
		uint32_t on = atomic_load(&ss->waiting_on);
		if (on & LM_WAIT_LEAVING)
			on = 0; /* leaving: no longer waits */
		si->waiting_on = on != 0 && on <= r->max_locks ? (int64_t)on - 1
							       : -1;
		si->wait_mode = atomic_load(&ss->wait_mode);
		s->nsess++;
	}
	return 0;
}

/*
 * The TTL session ss asked for in its acquire of sequence seq, or 0 if
 * it has made another attempt since (only its latest is recorded). The
 * session stores the TTL before the sequence (release), so a TTL read
 * between two loads of an unchanged sequence is that attempt's.
 */
static int64_t grant_ttl(const struct lm_session *ss, uint32_t seq)
{
	uint64_t before = atomic_load_explicit(&ss->grant_seq,
					       memory_order_acquire);
	uint32_t ttl = atomic_load_explicit(&ss->grant_ttl_ms,
					    memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	uint64_t after = atomic_load_explicit(&ss->grant_seq,
					      memory_order_relaxed);
	return before == after && (uint32_t)before == seq ? ttl : 0;
}

/* How long a grant whose leases have left[0..n-1] ms stays valid: while
 * a majority of them run, so the QUORUM-th longest (0 without one). */
static int64_t quorum_left(int64_t *left, unsigned n)
{
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = a + 1; b < n; b++)
			if (left[b] > left[a]) {
				int64_t x = left[a];
				left[a] = left[b];
				left[b] = x;
			}
	return n >= LM_QUORUM ? left[LM_QUORUM - 1] : 0;
}

/*
 * Is lock idx held, and by whom? Held means what a client's quorum
 * means: the same grant (session and sequence) on a majority of the
 * tables that are UP, in each table's current epoch, with a lease that
 * belongs to that grant and has not ended in that server's clock.
 */
static void judge_lock(struct ctl_snapshot *s, uint32_t idx,
		       struct ctl_lock_info *li)
{
	const struct lm_region *r = s->r;
	uint64_t grant[LM_NSERVERS];
	int64_t left[LM_NSERVERS];
	unsigned have = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct lm_server *srv = r->servers[i];
		uint64_t st = atomic_load(&srv->state);
		grant[i] = 0;
		if (LM_SRV_STATE(st) != LM_SRV_UP)
			continue;
		struct lm_slot *slot = lm_slot_of(r, i, idx);
		uint64_t owner = atomic_load(&slot->owner);
		uint64_t lease = atomic_load(&slot->lease);
		if (LM_OWNER_SESSION(owner) == 0 ||
		    LM_OWNER_EPOCH(owner) != (uint32_t)(LM_SRV_EPOCH(st) &
							0xffffu) ||
		    LM_LEASE_TAG(lease) != LM_OWNER_TAG(owner))
			continue;
		left[i] = LM_LEASE_EXPIRY(lease) -
			  lm_server_clock_ms(srv, s->now_ns);
		if (left[i] <= 0)
			continue;
		/* The owner words of one grant differ only in the epoch
		 * bits: compare session and sequence. */
		grant[i] = owner & UINT64_C(0xffffffffffff);
		have |= 1u << i;
	}
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(have & (1u << i)))
			continue;
		unsigned mask = 0;
		for (unsigned j = 0; j < LM_NSERVERS; j++)
			if ((have & (1u << j)) && grant[j] == grant[i])
				mask |= 1u << j;
		if (__builtin_popcount(mask) < (int)LM_QUORUM)
			continue;
		uint64_t owner = atomic_load(&lm_slot_of(r, i, idx)->owner);
		const struct lm_session *ss = lm_owner_session(r, owner);
		/* A holder whose session is no longer live is as good as
		 * gone: the next acquire takes its slots (grant.c). */
		uint64_t sw = ss != NULL ? lm_session_word(ss) : 0;
		if (LM_SESS_STATE(sw) != LM_SESS_LIVE)
			return;
		li->holder_slot = ss - r->sessions;
		li->holder_pid = LM_SESS_PID(sw);
		li->tables = mask;
		li->grant = grant[i];
		li->ttl_ms = grant_ttl(ss, LM_OWNER_SEQ(owner));
		int64_t l[LM_NSERVERS];
		unsigned n = 0;
		for (unsigned j = 0; j < LM_NSERVERS; j++) {
			if (!(mask & (1u << j)))
				continue;
			uint64_t t = atomic_load(&lm_slot_of(r, j, idx)->token);
			li->token = t > li->token ? t : li->token;
			l[n++] = left[j];
		}
		li->lease_left_ms = quorum_left(l, n);
		return;
	}
}

/*
 * The counted holders of lock idx (holders.h), their modes summed up in
 * li->mode, and their group's token and lease (the QUORUM-th longest of
 * the running group leases).
 */
static void judge_group(struct ctl_snapshot *s, uint32_t idx,
			struct ctl_lock_info *li)
{
	const struct lm_region *r = s->r;
	struct lm_holder h[64];
	size_t n = lm_lock_holders(r, idx, s->now_ns, h, 64);
	unsigned count[LM_MODE_COUNT] = {0};
	li->nshared = 0;
	for (size_t k = 0; k < n && k < 64; k++) {
		if (h[k].mode == LM_MODE_X)
			continue;
		count[h[k].mode % LM_MODE_COUNT]++;
		if (li->nshared < CTL_SHARED_SHOWN) {
			struct ctl_holder *ch = &li->shared[li->nshared];
			ch->slot = h[k].session;
			ch->mode = h[k].mode;
			ch->pid = LM_SESS_PID(
				lm_session_word(&r->sessions[h[k].session]));
		}
		li->nshared++;
	}
	if (li->nshared == 0)
		return;
	size_t at = 0;
	static const uint32_t order[] = {LM_MODE_IS, LM_MODE_IX, LM_MODE_S,
					 LM_MODE_SIX};
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		if (count[order[k]] == 0 || at >= sizeof(li->mode))
			continue;
		int m = snprintf(li->mode + at, sizeof(li->mode) - at,
				 count[order[k]] > 1 ? "%s%s x%u" : "%s%s",
				 at ? " " : "", ctl_mode_name(order[k]),
				 count[order[k]]);
		if (m > 0)
			at += (size_t)m;
	}
	int64_t l[LM_NSERVERS];
	unsigned nl = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct lm_slot *slot = lm_slot_of(r, i, idx);
		uint64_t gw = atomic_load(&slot->shared);
		uint64_t lease = atomic_load(&slot->lease);
		int64_t srv_now = lm_server_clock_ms(r->servers[i], s->now_ns);
		if (lm_group_state(gw, lease, srv_now) != LM_GROUP_RUNS)
			continue;
		li->tables |= 1u << i;
		l[nl++] = LM_LEASE_EXPIRY(lease) - srv_now;
		uint64_t t = atomic_load(&slot->token);
		li->token = t > li->token ? t : li->token;
	}
	li->lease_left_ms = quorum_left(l, nl);
}

/*
 * A semaphore's slot lock (NAME, NUL, K: shm/semaphore.h) is shown as
 * its semaphore's name and slot. Its count is its gate's, found through
 * the gate the slot's note names, if that gate still has the name.
 */
static void sem_name(const struct lm_region *r, uint32_t idx,
		     struct ctl_lock_info *li)
{
	size_t base;
	uint32_t k;
	li->sem_slot = -1;
	if (!lm_sem_slot_parse(li->name, li->len, &base, &k))
		return;
	li->sem_slot = (int32_t)k;
	li->len = (uint32_t)base;
	li->name[base] = '\0';
	uint32_t gate = lm_slot_gate(r, idx);
	char gname[LM_NAME_MAX + 1];
	if (gate != 0 && lm_name_copy(r, gate - 1, gname, NULL) == base &&
	    memcmp(gname, li->name, base) == 0)
		li->sem_slots = atomic_load(&lm_queue_of(r, gate - 1)->sem_slots);
}

static int snap_locks(struct ctl_snapshot *s)
{
	const struct lm_region *r = s->r;
	uint32_t n = lm_names_in_use(r);
	s->locks = calloc(n ? n : 1, sizeof(*s->locks));
	if (s->locks == NULL)
		return -1;
	for (uint32_t idx = 0; idx < n; idx++) {
		struct ctl_lock_info *li = &s->locks[s->nlocks];
		memset(li, 0, sizeof(*li));
		li->len = lm_name_copy(r, idx, li->name, &li->gen);
		if (li->len == 0)
			continue;
		li->idx = idx;
		li->holder_slot = -1;
		sem_name(r, idx, li);
		li->waiters = LM_WAITERS_COUNT(
			atomic_load(&lm_queue_of(r, idx)->waiters));
		if (li->waiters != 0) {
			int64_t t = atomic_load_explicit(
				&lm_queue_of(r, idx)->turn_since_ns,
				memory_order_relaxed);
			/* A stamp from the future is damage: unknown. */
			li->turn_since_ns = t > 0 && t <= s->now_ns ? t : 0;
		}
		judge_lock(s, idx, li);
		snprintf(li->mode, sizeof(li->mode), "%s",
			 li->holder_slot >= 0 ? "X" : "-");
		if (li->holder_slot < 0)
			judge_group(s, idx, li);
		if (li->holder_slot >= 0 || li->nshared != 0 ||
		    li->waiters != 0)
			s->nlocks++;
	}
	return 0;
}

/* Count each session's locks (sessions are in slot order). */
static void count_held(struct ctl_snapshot *s)
{
	for (uint32_t k = 0; k < s->nlocks; k++) {
		int64_t slot = s->locks[k].holder_slot;
		uint32_t lo = 0, hi = s->nsess;
		while (slot >= 0 && lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (s->sess[mid].slot < slot) {
				lo = mid + 1;
			} else if (s->sess[mid].slot > slot) {
				hi = mid;
			} else {
				s->sess[mid].held++;
				break;
			}
		}
	}
}

int ctl_snapshot_take(struct ctl_snapshot *s, const struct lm_region *r)
{
	memset(s, 0, sizeof(*s));
	s->r = r;
	s->now_ns = lm_now_ns();
	snap_supervisor(s);
	snap_servers(s);
	snap_isolation(s);
	if (snap_sessions(s) != 0 || snap_locks(s) != 0)
		return -1;
	count_held(s);
	return 0;
}

void ctl_snapshot_free(struct ctl_snapshot *s)
{
	free(s->sess);
	free(s->locks);
	s->sess = NULL;
	s->locks = NULL;
	s->nsess = s->nlocks = 0;
}

/* ------------------------------------------------------------------ */
/* Helpers for the commands that print a snapshot */

int ctl_name_width(const char *name, uint32_t len)
{
	int w = 0;
	for (uint32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		w += ch >= 0x20 && ch < 0x7f && ch != '\\' ? 1 : 4;
	}
	return w;
}

/* " [slot K/N]" or " [slot K]" for a semaphore's slot, else "". */
static const char *slot_suffix(const struct ctl_lock_info *li, char *buf,
			       size_t n)
{
	buf[0] = '\0';
	if (li->sem_slot >= 0 && li->sem_slots != 0)
		snprintf(buf, n, " [slot %d/%u]", li->sem_slot, li->sem_slots);
	else if (li->sem_slot >= 0)
		snprintf(buf, n, " [slot %d]", li->sem_slot);
	return buf;
}

int ctl_print_lock_name(FILE *f, const struct ctl_lock_info *li)
{
	char sfx[40];
	int w = ctl_print_escaped(f, li->name, li->len);
	return w + fprintf(f, "%s", slot_suffix(li, sfx, sizeof(sfx)));
}

int ctl_snapshot_name_column(const struct ctl_snapshot *s)
{
	/* Fit the names, but let a very long name run over its row
	 * rather than push every row off the screen. */
	int nw = 4;
	for (uint32_t k = 0; k < s->nlocks; k++) {
		char sfx[40];
		int w = ctl_name_width(s->locks[k].name, s->locks[k].len) +
			(int)strlen(slot_suffix(&s->locks[k], sfx, sizeof(sfx)));
		nw = w > nw ? w : nw;
	}
	return nw > 40 ? 40 : nw;
}

const char *ctl_snapshot_lock_name(const struct ctl_snapshot *s, int64_t idx,
				   uint32_t *len, char *buf)
{
	if (idx < 0)
		return NULL;
	*len = lm_name_copy(s->r, (uint32_t)idx, buf, NULL);
	return *len != 0 ? buf : NULL;
}

/* Append "; "-separated text to buf, never past its end. */
__attribute__((format(printf, 4, 5)))
static void note_add(char *buf, size_t n, size_t *k, const char *fmt, ...)
{
	if (*k != 0 && *k + 2 < n) {
		memcpy(buf + *k, "; ", 3);
		*k += 2;
	}
	if (*k >= n)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf + *k, n - *k, fmt, ap);
	va_end(ap);
	if (w > 0)
		*k = *k + (size_t)w < n ? *k + (size_t)w : n - 1;
}

const char *ctl_server_note(const struct ctl_srv_info *si, char *buf,
			    size_t n)
{
	size_t k = 0;
	buf[0] = '\0';
	if (!strcmp(si->state, "recovering"))
		note_add(buf, n, &k, "%s", si->recovery);
	if (!strcmp(si->state, "hung"))
		note_add(buf, n, &k, "no heartbeat for %lld ms (stopped?)",
			 (long long)si->hb_age_ms);
	/* The rate as `lockctl server skew --rate` takes it. */
	if (si->skew_offset_ms != 0 || si->skew_rate_ppm != 1000000)
		note_add(buf, n, &k, "clock skew %+lld ms, rate %.3f",
			 (long long)si->skew_offset_ms,
			 (double)si->skew_rate_ppm / 1e6);
	if (si->niso != 0) {
		char pids[LM_ISOLATION_RULES * 12] = "";
		size_t m = 0;
		for (unsigned j = 0; j < si->niso && m < sizeof(pids); j++) {
			int w = snprintf(pids + m, sizeof(pids) - m, "%s%d",
					 j ? ", " : "", si->iso_pids[j]);
			m += w > 0 ? (size_t)w : 0;
		}
		note_add(buf, n, &k, "isolates pid%s %s",
			 si->niso == 1 ? "" : "s", pids);
	}
	return buf;
}
