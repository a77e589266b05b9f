/*
 * lockctl_status.c - `lockctl status`: a snapshot of the region, its
 * servers, its sessions and its locks, for people (aligned columns) or
 * programs (--json).
 *
 * status only reads. It attaches the region but registers no session:
 * a monitoring loop must not fill the session table, nor show up in
 * what it reports. The snapshot is not atomic (the region changes while
 * it is read); each lock is judged the way a client would judge it, by
 * one pass over its slots in the three tables.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../shm/clock.h"
#include "../shm/isolation.h"
#include "../shm/name_index.h"
#include "../shm/session.h"
#include "internal.h"
#include "lockctl.h"

struct srv_info {
	const char *state;     /* up, hung, recovering, down */
	int pid;
	uint64_t epoch;
	int64_t hb_age_ms;     /* -1 when down */
	uint64_t restarts;
	int64_t quarantine_ms; /* left, when recovering and known; else 0 */
	char recovery[160];    /* why it is recovering, and for how long */
	int iso_pids[LM_ISOLATION_RULES]; /* running processes it refuses
	                        * (lockctl server isolate), connected or
	                        * not */
	unsigned niso;
	uint64_t token_floor;
	uint64_t expired;
	int64_t skew_offset_ms;
	int64_t skew_rate_ppm;
	bool table_lost;       /* restarted without its table: waits for
	                        * its peers' token marks, not only for
	                        * its quarantine */
	bool usable;           /* counts towards a client's quorum now */
};

struct sess_info {
	uint32_t slot;
	int pid;
	const char *state;     /* live, gone, dead, claiming */
	int64_t waiting_on;    /* lock index, or -1 */
	uint64_t acquires;
	uint32_t isolated;     /* bit i: server i refuses it (a simulated
	                        * partition, lockctl server isolate) */
};

struct lock_info {
	uint32_t idx;
	char name[LM_NAME_MAX + 1];
	uint32_t len;
	int holder_pid;        /* 0: not held */
	int64_t holder_slot;   /* -1: not held */
	uint64_t token;
	int64_t lease_left_ms;
	uint32_t waiters;
	unsigned tables;       /* bit i: held on table i */
};

struct snapshot {
	const struct lm_region *r;
	int64_t now_ns;
	int sup_pid;
	const char *sup_state; /* running, dead, stopped, none */
	bool sup_alive;
	struct srv_info srv[LM_NSERVERS];
	unsigned usable;
	struct sess_info *sess;
	uint32_t nsess;
	struct lock_info *locks;
	uint32_t nlocks;
};

static void status_usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl status [--json] [-r NAME]\n"
"Show the region, its three servers, the connected sessions and every\n"
"lock that is held or waited for. Registers no session.\n"
"\n"
"      --json         one JSON object: {\"region\", \"servers\", \"sessions\",\n"
"                     \"locks\"}\n"
CTL_REGION_HELP
"  -h, --help         show this help\n"
"\n"
"Exit status: 0 if a majority of servers is up, 69 if the region is\n"
"missing or incompatible, or no quorum of servers is up (the report is\n"
"still printed), 64 on a usage error.\n");
}

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

static bool pid_alive(int pid, uint64_t start)
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

static void snap_supervisor(struct snapshot *s)
{
	const struct lm_region_header *h = s->r->hdr;
	uint32_t st = atomic_load(&h->supervisor_state);
	s->sup_pid = atomic_load(&h->supervisor_pid);
	s->sup_alive = pid_alive(s->sup_pid, atomic_load(&h->supervisor_start));
	if (st == LM_SUP_RUNNING)
		s->sup_state = s->sup_alive ? "running" : "dead";
	else if (st == LM_SUP_STOPPED)
		s->sup_state = "stopped";
	else
		s->sup_state = "none";
}

static void snap_servers(struct snapshot *s)
{
	int64_t now_ms = s->now_ns / 1000000;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct lm_server *srv = s->r->servers[i];
		struct srv_info *si = &s->srv[i];
		uint64_t w = atomic_load(&srv->state);
		si->epoch = LM_SRV_EPOCH(w);
		si->pid = atomic_load(&srv->pid);
		si->restarts = atomic_load(&srv->restarts);
		si->token_floor = atomic_load(&srv->token_floor);
		si->expired = atomic_load(&srv->expired);
		struct lm_skew_now k = lm_skew_read(srv);
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
static void snap_isolation(struct snapshot *s)
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

static int snap_sessions(struct snapshot *s)
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
		struct sess_info *si = &s->sess[s->nsess];
		if (st == LM_SESS_FREE)
			continue;
		si->slot = i;
		si->pid = LM_SESS_PID(w);
		si->acquires = atomic_load(&ss->acquires);
		/* The rules, which its client adopts at its next
		 * operation, and whatever bits it already has. */
		si->isolated = (lm_isolation_servers(r, LM_SESS_PID(w),
						     atomic_load(
							     &ss->start_time)) |
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
		s->nsess++;
	}
	return 0;
}

/*
 * Is lock idx held, and by whom? Held means what a client's quorum
 * means: the same grant (session and sequence) on a majority of the
 * tables that are UP, in each table's current epoch, with a lease that
 * belongs to that grant and has not ended in that server's clock.
 */
static void judge_lock(struct snapshot *s, uint32_t idx, struct lock_info *li)
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
		/* Valid while a majority of its leases run: the QUORUM-th
		 * longest of them. */
		int64_t l[LM_NSERVERS];
		unsigned n = 0;
		for (unsigned j = 0; j < LM_NSERVERS; j++) {
			if (!(mask & (1u << j)))
				continue;
			uint64_t t = atomic_load(&lm_slot_of(r, j, idx)->token);
			li->token = t > li->token ? t : li->token;
			l[n++] = left[j];
		}
		for (unsigned a = 0; a < n; a++)
			for (unsigned b = a + 1; b < n; b++)
				if (l[b] > l[a]) {
					int64_t x = l[a];
					l[a] = l[b];
					l[b] = x;
				}
		li->lease_left_ms = l[LM_QUORUM - 1];
		return;
	}
}

static int snap_locks(struct snapshot *s)
{
	const struct lm_region *r = s->r;
	uint32_t n = lm_names_in_use(r);
	s->locks = calloc(n ? n : 1, sizeof(*s->locks));
	if (s->locks == NULL)
		return -1;
	for (uint32_t idx = 0; idx < n; idx++) {
		struct lock_info *li = &s->locks[s->nlocks];
		memset(li, 0, sizeof(*li));
		li->len = lm_name_copy(r, idx, li->name, NULL);
		if (li->len == 0)
			continue;
		li->idx = idx;
		li->holder_slot = -1;
		li->waiters = LM_WAITERS_COUNT(
			atomic_load(&lm_queue_of(r, idx)->waiters));
		judge_lock(s, idx, li);
		if (li->holder_slot >= 0 || li->waiters != 0)
			s->nlocks++;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Human output */

static void pad(int n)
{
	while (n-- > 0)
		putchar(' ');
}

static int name_width(const char *name, uint32_t len)
{
	int w = 0;
	for (uint32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		w += ch >= 0x20 && ch < 0x7f && ch != '\\' ? 1 : 4;
	}
	return w;
}

/* The name of lock idx, copied into buf (LM_NAME_MAX + 1), or NULL. */
static const char *lock_name(const struct snapshot *s, int64_t idx,
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

/* The server table of status, and of `lockctl server list`. */
static void print_servers(const struct snapshot *s)
{
	printf("SERVER  STATE       PID      EPOCH  HEARTBEAT  RESTARTS  "
	       "NOTE\n");
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct srv_info *si = &s->srv[i];
		char pid[16] = "-", hb[32] = "-";
		if (si->pid > 0)
			snprintf(pid, sizeof(pid), "%d", si->pid);
		if (si->hb_age_ms >= 0)
			snprintf(hb, sizeof(hb), "%lld ms",
				 (long long)si->hb_age_ms);
		char note[256] = "";
		size_t k = 0;
		if (!strcmp(si->state, "recovering"))
			note_add(note, sizeof(note), &k, "%s", si->recovery);
		if (!strcmp(si->state, "hung"))
			note_add(note, sizeof(note), &k,
				 "no heartbeat for %lld ms (stopped?)",
				 (long long)si->hb_age_ms);
		if (si->skew_offset_ms != 0 || si->skew_rate_ppm != 1000000)
			note_add(note, sizeof(note), &k,
				 "clock skew %+lld ms, rate %.3f",
				 (long long)si->skew_offset_ms,
				 (double)si->skew_rate_ppm / 1e6);
		if (si->niso != 0) {
			char pids[LM_ISOLATION_RULES * 12] = "";
			size_t m = 0;
			for (unsigned j = 0; j < si->niso && m < sizeof(pids);
			     j++) {
				int w = snprintf(pids + m, sizeof(pids) - m,
						 "%s%d", j ? ", " : "",
						 si->iso_pids[j]);
				m += w > 0 ? (size_t)w : 0;
			}
			note_add(note, sizeof(note), &k, "isolates pid%s %s",
				 si->niso == 1 ? "" : "s", pids);
		}
		char restarts[24];
		snprintf(restarts, sizeof(restarts), "%llu",
			 (unsigned long long)si->restarts);
		printf("%-6u  %-10s  %-7s  %-5llu  %-9s  ", i, si->state, pid,
		       (unsigned long long)si->epoch, hb);
		if (note[0] != '\0')
			printf("%-8s  %s\n", restarts, note);
		else
			printf("%s\n", restarts);
	}

}

static void print_human(const struct snapshot *s)
{
	const struct lm_region *r = s->r;
	uint32_t flags = atomic_load(&r->hdr->flags);
	printf("Region      %s: %u locks, %u sessions, max TTL %lld ms\n",
	       r->name, r->max_locks, r->max_sessions,
	       (long long)r->max_ttl_ms);
	printf("            a dead client's locks are %s\n",
	       flags & LM_REGION_RELEASE_ON_EXIT ? "freed at once"
						 : "left to lease expiry");
	if (!strcmp(s->sup_state, "running"))
		printf("Supervisor  pid %d, running\n", s->sup_pid);
	else if (!strcmp(s->sup_state, "dead"))
		printf("Supervisor  DEAD (pid %d is gone): locks still work, "
		       "but dead servers\n            are not restarted nor "
		       "dead clients' locks freed; start lockmgrd\n            "
		       "again to adopt the region\n", s->sup_pid);
	else
		printf("Supervisor  %s\n", s->sup_state);
	if (s->usable >= LM_QUORUM)
		printf("Service     available: %u of %u servers up\n",
		       s->usable, LM_NSERVERS);
	else
		printf("Service     NO QUORUM: %u of %u servers up, every "
		       "acquire fails until %u are\n", s->usable, LM_NSERVERS,
		       LM_QUORUM);

	putchar('\n');
	print_servers(s);

	if (s->nsess == 0) {
		printf("\nSESSIONS    none\n");
	} else {
		printf("\nSLOT   PID      STATE     ACQUIRES  WAITING-ON\n");
		for (uint32_t k = 0; k < s->nsess; k++) {
			const struct sess_info *si = &s->sess[k];
			uint32_t len;
			char buf[LM_NAME_MAX + 1];
			const char *w = lock_name(s, si->waiting_on, &len, buf);
			printf("%-5u  %-7d  %-8s  %-8llu  ", si->slot, si->pid,
			       si->state, (unsigned long long)si->acquires);
			int cols = 1;
			if (w != NULL)
				cols = ctl_print_escaped(stdout, w, len);
			else
				putchar('-');
			if (si->isolated != 0) {
				pad(10 - cols);
				printf("  isolated from server%s",
				       __builtin_popcount(si->isolated) > 1
					       ? "s"
					       : "");
				const char *sep = " ";
				for (unsigned i = 0; i < LM_NSERVERS; i++)
					if (si->isolated & (1u << i)) {
						printf("%s%u", sep, i);
						sep = ", ";
					}
			}
			putchar('\n');
		}
	}

	if (s->nlocks == 0) {
		printf("\nLOCKS       none held or waited for\n");
		return;
	}
	/* Size the column to the names, but let a very long name run
	 * over its row rather than push every row off the screen. */
	int nw = 4;
	for (uint32_t k = 0; k < s->nlocks; k++) {
		int w = name_width(s->locks[k].name, s->locks[k].len);
		nw = w > nw ? w : nw;
	}
	nw = nw > 40 ? 40 : nw;
	printf("\nNAME");
	pad(nw - 4);
	printf("  HOLDER   TOKEN       LEASE-LEFT  WAITERS  TABLES\n");
	for (uint32_t k = 0; k < s->nlocks; k++) {
		const struct lock_info *li = &s->locks[k];
		pad(nw - ctl_print_escaped(stdout, li->name, li->len));
		if (li->holder_slot < 0) {
			printf("  %-7s  %-10s  %-10s  %-7u  -\n", "-", "-", "-",
			       li->waiters);
			continue;
		}
		char lease[32];
		snprintf(lease, sizeof(lease), "%lld ms",
			 (long long)li->lease_left_ms);
		printf("  %-7d  %-10llu  %-10s  %-7u  ", li->holder_pid,
		       (unsigned long long)li->token, lease, li->waiters);
		const char *sep = "";
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			if (li->tables & (1u << i)) {
				printf("%s%u", sep, i);
				sep = ",";
			}
		putchar('\n');
	}
}

/* ------------------------------------------------------------------ */
/* JSON output */

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates, beyond Unicode. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/*
 * A JSON string. Lock names are bytes, JSON strings are Unicode: valid
 * UTF-8 passes through, and a byte that is not part of valid UTF-8 is
 * written as \u00XX (the Latin-1 reading of the byte), which keeps the
 * output valid JSON; such names are rare and lockctl(1) says so.
 */
static void json_str(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	putchar('"');
	for (size_t i = 0; i < len;) {
		unsigned char ch = p[i];
		if (ch == '"' || ch == '\\') {
			printf("\\%c", ch);
			i++;
		} else if (ch < 0x20 || ch == 0x7f) {
			printf("\\u%04x", ch);
			i++;
		} else {
			size_t n = utf8_len(p + i, len - i);
			if (n == 0) {
				printf("\\u%04x", ch);
				i++;
			} else {
				fwrite(p + i, 1, n, stdout);
				i += n;
			}
		}
	}
	putchar('"');
}

static void json_cstr(const char *s)
{
	json_str(s, strlen(s));
}

static void print_json(const struct snapshot *s)
{
	const struct lm_region *r = s->r;
	const struct lm_region_header *h = r->hdr;
	printf("{\"region\":{\"name\":");
	json_cstr(r->name);
	printf(",\"max_locks\":%u,\"max_sessions\":%u,\"max_ttl_ms\":%lld,"
	       "\"release_on_exit\":%s,\"restart_delay_ms\":%lld,"
	       "\"created_realtime_s\":%lld,\"names_used\":%u,"
	       "\"supervisor_pid\":%d,\"supervisor_state\":",
	       r->max_locks, r->max_sessions, (long long)r->max_ttl_ms,
	       atomic_load(&h->flags) & LM_REGION_RELEASE_ON_EXIT ? "true"
								  : "false",
	       (long long)atomic_load(&h->restart_delay_ms),
	       (long long)h->created_realtime_s, lm_names_in_use(r),
	       s->sup_pid);
	json_cstr(s->sup_state);
	printf(",\"supervisor_alive\":%s,\"servers_up\":%u,\"quorum\":%s}",
	       s->sup_alive ? "true" : "false", s->usable,
	       s->usable >= LM_QUORUM ? "true" : "false");

	printf(",\"servers\":[");
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct srv_info *si = &s->srv[i];
		printf("%s{\"index\":%u,\"pid\":%d,\"state\":", i ? "," : "", i,
		       si->pid);
		json_cstr(si->state);
		printf(",\"epoch\":%llu,\"heartbeat_age_ms\":",
		       (unsigned long long)si->epoch);
		if (si->hb_age_ms >= 0)
			printf("%lld", (long long)si->hb_age_ms);
		else
			printf("null");
		printf(",\"table_lost\":%s", si->table_lost ? "true" : "false");
		printf(",\"recovery\":");
		if (!strcmp(si->state, "recovering"))
			json_cstr(si->recovery);
		else
			printf("null");
		printf(",\"restarts\":%llu,\"quarantine_left_ms\":%lld,"
		       "\"token_floor\":%llu,\"leases_expired\":%llu,"
		       "\"skew_offset_ms\":%lld,\"skew_rate_ppm\":%lld",
		       (unsigned long long)si->restarts,
		       (long long)si->quarantine_ms,
		       (unsigned long long)si->token_floor,
		       (unsigned long long)si->expired,
		       (long long)si->skew_offset_ms,
		       (long long)si->skew_rate_ppm);
		printf(",\"isolated_pids\":[");
		for (unsigned j = 0; j < si->niso; j++)
			printf("%s%d", j ? "," : "", si->iso_pids[j]);
		printf("]}");
	}

	printf("],\"sessions\":[");
	for (uint32_t k = 0; k < s->nsess; k++) {
		const struct sess_info *si = &s->sess[k];
		printf("%s{\"slot\":%u,\"pid\":%d,\"state\":", k ? "," : "",
		       si->slot, si->pid);
		json_cstr(si->state);
		printf(",\"acquires\":%llu,\"isolated_from\":[",
		       (unsigned long long)si->acquires);
		const char *sep = "";
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			if (si->isolated & (1u << i)) {
				printf("%s%u", sep, i);
				sep = ",";
			}
		printf("],\"waiting_on\":");
		uint32_t len;
		char buf[LM_NAME_MAX + 1];
		const char *w = lock_name(s, si->waiting_on, &len, buf);
		if (w != NULL)
			json_str(w, len);
		else
			printf("null");
		putchar('}');
	}

	printf("],\"locks\":[");
	for (uint32_t k = 0; k < s->nlocks; k++) {
		const struct lock_info *li = &s->locks[k];
		printf("%s{\"name\":", k ? "," : "");
		json_str(li->name, li->len);
		printf(",\"index\":%u,\"held\":%s", li->idx,
		       li->holder_slot >= 0 ? "true" : "false");
		if (li->holder_slot >= 0) {
			printf(",\"holder_pid\":%d,\"holder_session\":%lld,"
			       "\"token\":%llu,\"lease_left_ms\":%lld,"
			       "\"tables\":[",
			       li->holder_pid, (long long)li->holder_slot,
			       (unsigned long long)li->token,
			       (long long)li->lease_left_ms);
			const char *sep = "";
			for (unsigned i = 0; i < LM_NSERVERS; i++)
				if (li->tables & (1u << i)) {
					printf("%s%u", sep, i);
					sep = ",";
				}
			putchar(']');
		} else {
			printf(",\"holder_pid\":null,\"holder_session\":null,"
			       "\"token\":null,\"lease_left_ms\":null,"
			       "\"tables\":[]");
		}
		printf(",\"waiters\":%u}", li->waiters);
	}
	printf("]}\n");
}

/* ------------------------------------------------------------------ */

int ctl_status(struct ctl_global *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"region", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'h':
			status_usage(stdout);
			return EX_CTL_OK;
		case ':':
			fprintf(stderr, "lockctl status: option '%s' needs a "
					"value\n", argv[optind - 1]);
			return EX_CTL_USAGE;
		default:
			fprintf(stderr, "lockctl status: unknown option '%s'\n"
					"Try 'lockctl status --help'.\n",
				argv[optind - 1]);
			return EX_CTL_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lockctl status: unexpected argument '%s'\n"
				"Try 'lockctl status --help'.\n", argv[optind]);
		return EX_CTL_USAGE;
	}
	int rc = ctl_resolve_region(g);
	if (rc != 0)
		return rc;

	struct lm_region r;
	char why[256] = "";
	int err = lm_region_attach(&r, g->region, why, sizeof(why));
	if (err != 0)
		return ctl_service_error(err, g->region, why);
	struct snapshot s;
	memset(&s, 0, sizeof(s));
	s.r = &r;
	s.now_ns = lm_now_ns();
	snap_supervisor(&s);
	snap_servers(&s);
	snap_isolation(&s);
	if (snap_sessions(&s) != 0 || snap_locks(&s) != 0) {
		fprintf(stderr, "lockctl: out of memory reading the region\n");
		rc = EX_CTL_OSERR;
		goto out;
	}
	if (json)
		print_json(&s);
	else
		print_human(&s);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "lockctl: writing the status: %s\n",
			strerror(errno));
		rc = EX_CTL_OSERR;
		goto out;
	}
	rc = s.usable >= LM_QUORUM ? EX_CTL_OK : EX_CTL_UNAVAILABLE;
out:
	free(s.sess);
	free(s.locks);
	lm_region_detach(&r);
	return rc;
}

int ctl_server_table(const struct lm_region *r)
{
	struct snapshot s;
	memset(&s, 0, sizeof(s));
	s.r = r;
	s.now_ns = lm_now_ns();
	snap_servers(&s);
	snap_isolation(&s);
	print_servers(&s);
	return fflush(stdout) == 0 ? EX_CTL_OK : EX_CTL_OSERR;
}
