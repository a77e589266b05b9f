/*
 * test_chaos.c - fenced readers and writers under random SIGKILL /
 * SIGSTOP / SIGCONT, with lock servers and the supervisor killed under
 * them.
 *
 * NCLIENTS (16) fenced clients (examples/clients.h) take a few
 * locks round after round, and append what they did to an audit file of
 * their own making (fixed-size binary records, one write() each,
 * O_APPEND: records never interleave). Most are writers: they take their
 * lock in X and write their token to the lock's fenced store inside
 * their critical section. Six are readers (READERS_OF: 3, 2 and 1 of the
 * three locks' clients): they take their lock in S, so that readers are
 * inside together and writers wait for them, and where a writer writes
 * they look at the store (its highest accepted token) instead. They do
 * not write: the store accepts a token only if it is >= the highest it
 * has seen, and two readers inside together hold tokens in no set order,
 * so the one with the lower token would be rejected for writing second
 * while both hold the lock (a false rejection, and the store's highest
 * raised past a writer's waiting token for nothing). What a read can
 * check is the other direction: a reader inside its lease never sees a
 * token above its own, since every writer granted after it waits for it;
 * a reader that does was a zombie (check 4). Meanwhile the driver (the
 * case process) breaks things, to readers and writers alike:
 *
 *   - clients: it SIGKILLs clients and starts replacements, and SIGSTOPs
 *     clients for 200-800 ms, often longer than their 300 ms lease, so
 *     that zombies really happen;
 *   - servers: every 1-5 s (at random) it kills a lock server with
 *     `lockctl server kill N`, a third of the time with --wipe (the
 *     server comes back with its table lost), but only while all three
 *     servers are UP with fresh heartbeats and a supervisor runs, so
 *     that never two are down at once;
 *   - the supervisor: every 10-20 s it SIGKILLs lockmgrd and at once
 *     starts a new one on the same region, which adopts it. The case is
 *     a child subreaper, so the servers a killed supervisor leaves are
 *     reparented to it; it reaps them as they die, and at the end. No
 *     server is killed until the new supervisor runs the region: while
 *     none runs, a dead server is not restarted and a dead client's
 *     locks are freed only by lease expiry.
 *
 * lockmgrd runs with its default --max-ttl (60 s) and --restart-delay
 * (100 ms), plus --ephemeral: a restarted server stays out only while
 * leases of its earlier lives run (the clients' 300 ms), and one that
 * lost its table until both peers are up and the leases on them that
 * could include it have ended.
 *
 * At the end the audit, the stores and the lock tables are checked
 * against the safety guarantees (README.md, "What it guarantees"):
 *
 *   1. mutual exclusion, with modes: per lock, the interval in which a
 *      writer may have touched the resource overlaps no other interval,
 *      a writer's or a reader's; readers' intervals may overlap each
 *      other, and must have: the summary gives the most readers seen
 *      inside a lock at once, and the case fails if that is never more
 *      than one (shared mode would not have been tested);
 *   2. fencing tokens: unique per lock across all grants, readers'
 *      included, and increasing in the order the holds happened between
 *      conflicting grants (a writer's against any other); two readers'
 *      tokens may come in either order;
 *   3. the store: accepted tokens never go down, every write the store
 *      acknowledged (a WROTE audit record) is in it, and it has no write
 *      of a reader's token;
 *   4. a rejection only ever hits a writer whose lease had ended, and
 *      there is a newer grant that beat it; a read that saw a token above
 *      the reader's own only ever happens after the reader's lease had
 *      ended, and that token was a writer's grant (check 1 seen from
 *      the store, whatever the intervals' bounds);
 *   5. once every client is gone, no table holds anything and every
 *      session slot is free;
 *
 * and availability is measured like safety, from the same audit. Every
 * acquire's outcome is recorded (an ATTEMPT record: from the hook before
 * lm_acquire to the hook after it, granted, timed out, no quorum or
 * another error), and so are the faults (server killed / UP again,
 * supervisor killed / RUNNING again) and every freeze, with their times.
 * A monitor process polls the servers' state words and heartbeats every
 * millisecond. The checks:
 *
 *   6. at least 99% of the waiting acquires (every client waits 1000 ms),
 *      readers' and writers' together, are granted. An attempt whose interval overlaps a freeze of its
 *      own client is not counted: a waiter stopped in its queue cannot
 *      take its turn (the others skip it), its deadline runs on while it
 *      sleeps, and it reads the clock only when it wakes, so its time-out
 *      says nothing about the service. The attempts of *other* clients
 *      stuck behind a frozen holder do count: the service promises them
 *      the lock once its 300 ms lease ends.
 *   7. no acquire fails with LM_ENOQUORUM while two servers were
 *      certainly usable. Such an acquire decides "no quorum" at some
 *      instant between its deadline (start + 1000 ms) and its outcome
 *      hook, by the clients' rule (state UP, heartbeat at most 300 ms
 *      old). The monitor proves a quorum between two of its polls when,
 *      for two servers, both polls read the same UP state word (each
 *      restart publishes a new epoch, and DOWN -> UP needs one) and the
 *      heartbeat read by the first is still fresh by the clock after
 *      the second (heartbeats only move forward). A decision window the
 *      proofs do not cover (a server really hung, say, or the monitor
 *      itself was descheduled for most of a heartbeat's 300 ms) excuses
 *      the LM_ENOQUORUM: conservative, so a report is a real one. The
 *      failure still counts against 6. Since the driver never has two
 *      servers down at once, every LM_ENOQUORUM is printed with the
 *      faults around it.
 *
 * The summary line gives the figures: acquires attempted, counted,
 * granted, timed out, no quorum; server kills (wipes), the longest a
 * killed server took to count again, supervisor kills, and the longest
 * time the monitor saw fewer than two usable servers. A third line gives
 * the readers': their grants, the most inside a lock at once, reads and
 * stale reads, kills, freezes and takeovers, acquires.
 *
 * CHAOS_SECONDS (default 60) sets the length, so CHAOS_SECONDS=600 is a
 * soak (run the binary directly then: tests/run.sh gives each binary
 * 300 s unless LOCKMGR_TEST_TIMEOUT says otherwise). CHAOS_SEED replays
 * the driver's choices (the schedule still differs, of course).
 *
 * What an interval is. The audit cannot see the instant acquire
 * returned or the instant a holder last touched the resource, only
 * times taken in the client's event hook, so each bound is chosen on
 * the side that can neither hide a real overlap nor report a false one:
 *
 *   start = the time taken in the ACQUIRED hook. It is after acquire
 *           returned, but before any access of this grant to the store
 *           (the write or read comes after the hook), so [start, end]
 *           covers every access.
 *   end   = min(valid_until_ns, the time in the grant's WROTE/REJECTED
 *           hook or (a reader's) READ hook, the time in its RELEASED
 *           hook, the time just before the driver's kill() for a killed
 *           client). The write or read is the last access of a round,
 *           and its hook runs right after it.
 *           For a killed client the time *before* kill() is used: it is
 *           a lower bound of the death, and the supervisor frees a dead
 *           holder's lock only after the death, so a successor always
 *           starts after it. A time taken after kill() (or after
 *           waitpid) would be an upper bound: the driver can be
 *           preempted after kill() returns while the supervisor frees
 *           the lock and a successor takes it, which would show as a
 *           false overlap. (What the lower bound gives up is only a
 *           successor granted in the microseconds between kill() and
 *           the death, by a holder that never wrote, since a written
 *           record ends the interval anyway.)
 *
 *   An interval with start >= end is dropped: its holder was frozen or
 *   killed between acquire returning and the hook, and did nothing with
 *   the grant while its lease was valid.
 *
 *   Both bounds lie inside the time the grant was validly held, so the
 *   intervals can also prove the opposite of an overlap: two readers'
 *   intervals that overlap were two readers inside at once.
 *
 * The summary also prints the longest time a lock sat unused between two
 * holds, and fails the run if it exceeds 500 ms while clients wait.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/internal.h"
#include "shm/heartbeat.h"
#include "shm/lease_scan.h"
#include "shm/wait_queue.h"
#include "client/lockmgr.h"
#include "examples/clients.h"
#include "resource/store.h"
#include "shm/layout.h"
#include "shm/modes.h"
#include "shm/name_index.h"
#include "shm/region.h"

/* ---- parameters --------------------------------------------------- */

#define NLOCKS       3
#define NCLIENTS     16      /* alive at every moment (frozen included) */
#define TTL_MS       300
#define WAIT_MS      1000
#define MAX_FROZEN   (NCLIENTS / 2) /* so that the locks keep moving */
#define MAX_SECONDS  3000    /* the case's own timeout is 3600 s */

/*
 * Readers: the first READERS_OF[lock] clients of each lock (by slot:
 * slot i takes lock i % NLOCKS and is that lock's (i / NLOCKS)-th
 * client) take it in S, the others in X. 6 of the 16, unevenly, so that
 * the locks see different mixes: chaos/a has 3 readers and 3 writers
 * (up to three readers inside at once), chaos/b 2 and 3, chaos/c 1 and
 * 4 (a reader only ever alone, among writers). A replacement keeps its
 * slot's mode.
 */
static const int READERS_OF[NLOCKS] = {3, 2, 1};

/* Server kills: one every SERVER_KILL_MIN_MS..MAX_MS, while all three
 * servers are UP with a heartbeat at most FRESH_MS old. A killed server
 * must count again within SERVER_BACK_MS (restart delay, plus the
 * clients' leases, plus an adoption if the supervisor died meanwhile). */
#define SERVER_KILL_MIN_MS 1000
#define SERVER_KILL_MAX_MS 5000
#define FRESH_MS           100
#define SERVER_BACK_MS     10000
/* An outage longer than this is reported with what happened around it. */
#define LONG_OUT_MS        1000
/* Supervisor kills: one every SUP_KILL_MIN_MS..MAX_MS; the new one must
 * run the region within ADOPT_MS of its start. */
#define SUP_KILL_MIN_MS    10000
#define SUP_KILL_MAX_MS    20000
#define ADOPT_MS           10000
/* Availability: granted waiting acquires, in per cent, at least. */
#define AVAIL_TARGET_PCT   99

/* ---- the audit ---------------------------------------------------- */

enum rec_type {
	/* written by the clients (lock: the lock) */
	REC_ACQUIRED = 1, /* t: hook time; aux: valid_until_ns; flags:
			   * ACQ_FLAGS(lm_grant.flags, tables of the grant,
			   * lm_grant.mode) */
	REC_WROTE,        /* t: hook time; aux: the store's highest */
	REC_REJECTED,     /* t: hook time; aux: the store's highest */
	REC_RELEASED,     /* t: hook time; aux: lm_release's rc */
	REC_READ,         /* a reader's look at the store: t: hook time;
			   * aux: the store's highest token */
	REC_ATTEMPT,      /* t: hook before lm_acquire; aux: hook after it;
			   * flags: enum outcome | mode asked for << 4;
			   * token: the grant's token, or -rc of a refusal */
	/* written by the driver */
	REC_KILLED,       /* lock: the client's; t: just before kill();
			   * aux: after waitpid */
	REC_FROZEN,       /* pid: the client; t: just before SIGSTOP; aux:
			   * just after SIGCONT (or before its SIGKILL) */
	REC_SRV_KILLED,   /* lock: the server; flags: 1 if wiped; t: before
			   * lockctl ran; aux: after it returned */
	REC_SRV_UP,       /* lock: the server; t: first seen UP in a new
			   * epoch with a fresh heartbeat; aux: the epoch */
	REC_SUP_KILLED,   /* pid: lockmgrd; t: before kill(); aux: reaped */
	REC_SUP_ADOPTED,  /* pid: the new lockmgrd; t: first seen RUNNING
			   * the region; aux: when it was started */
	/* written by the monitor */
	REC_QGAP,         /* t, aux: an interval over which no quorum could
			   * be proven (see check 7) */
	REC_NOQ,          /* fewer than two usable servers seen: t: the last
			   * poll before that saw two; aux: the first poll
			   * after that saw two again; token: ns from the
			   * first to the last poll that saw fewer; flags:
			   * servers seen not UP, | those seen UP with a stale
			   * heartbeat << 4; pid: the oldest such heartbeat's
			   * age (ms) */
	REC_QSPAN,        /* last: t: first poll; aux: last poll; token:
			   * number of polls */
};

enum outcome { OUT_GRANTED, OUT_TIMEDOUT, OUT_NOQUORUM, OUT_OTHER };

#define REC_MAGIC 0xc5u

/*
 * An ACQUIRED record's flags byte: lm_grant.flags (2 bits: only
 * LM_GRANT_RECOVERED is defined; a grant with a flag beyond these two
 * counts as an audit error, so that a new flag is not silently cut off),
 * the tables of the grant (3 bits) and the mode held (3 bits). Packed so
 * that the record stays 32 bytes.
 */
#define ACQ_GFLAGS_MAX 0x3u
#define ACQ_FLAGS(gflags, mask, mode)                                     \
	((uint8_t)(((gflags) & ACQ_GFLAGS_MAX) | ((mask) & 0x7u) << 2 |      \
		   ((mode) & 0x7u) << 5))
#define ACQ_GFLAGS(f) ((f) & ACQ_GFLAGS_MAX)
#define ACQ_MASK(f)   ((unsigned)(f) >> 2 & 0x7u)
#define ACQ_MODE(f)   ((unsigned)(f) >> 5 & 0x7u)
_Static_assert(LM_NSERVERS <= 3, "the tables of a grant take 3 bits");
_Static_assert(LM_MODE_COUNT <= 8, "a mode takes 3 bits");
/* An ATTEMPT record's flags: the outcome, and the mode asked for. */
#define ATT_FLAGS(outcome, mode) ((uint8_t)((outcome) | (mode) << 4))
#define ATT_OUTCOME(f) ((enum outcome)((f) & 0xfu))
#define ATT_MODE(f)    ((unsigned)(f) >> 4)

/*
 * One audit record. 32 bytes, so that records written at multiples of
 * 32 never straddle a page: a SIGKILL during the one write() of a
 * record then leaves all or nothing of it (the kernel checks for a fatal
 * signal only between the pages it copies).
 */
struct rec {
	uint8_t magic;
	uint8_t type;
	uint8_t lock;
	uint8_t flags;   /* ACQUIRED, ATTEMPT: see above */
	int32_t pid;
	uint64_t token;
	int64_t t;
	int64_t aux;
};
_Static_assert(sizeof(struct rec) == 32, "audit record size");

/* What the driver, the clients and the monitor share (a MAP_SHARED
 * mapping). */
struct cl_slot {
	_Atomic int32_t pid;      /* driver, at spawn */
	_Atomic uint32_t in_cs;   /* hook: 1 after ACQUIRED, 0 after the
				   * write or read (set after token,
				   * release) */
	_Atomic uint64_t token;   /* hook: the grant in_cs refers to */
};

struct shared {
	_Atomic int stop;              /* driver: clients end their loop */
	_Atomic int monitor_stop;      /* driver: the monitor ends */
	_Atomic int monitor_ready;     /* monitor: attached, polling */
	_Atomic uint32_t audit_errors; /* anyone: short or failed audit
					* writes */
	_Atomic uint64_t last_token[NLOCKS]; /* hook: highest ACQUIRED
					      * token (CAS max) */
	_Atomic uint64_t last_x_token[NLOCKS]; /* ... of an X grant */
	struct cl_slot slot[NCLIENTS];
};

/* What a client process is given (copied by fork). */
struct spawn_args {
	struct shared *sh;
	const char *region;
	const char *audit_path;
	const char *store_path;
	int slot;
	int lock;
	uint32_t mode;
	int id;
	int hold_ms;
	int gap_ms;
};

/* The client process's own hook state. */
struct hook_ctx {
	int fd;
	int32_t pid;
	int lock;
	uint32_t mode;          /* asked for */
	int64_t wants_ns;       /* time of the last EV_WANTS */
	struct cl_slot *slot;
	struct shared *sh;
};

static const char *lock_name(int lock)
{
	static const char *names[NLOCKS] = {"chaos/a", "chaos/b", "chaos/c"};
	return names[lock];
}

static bool put_rec(int fd, const struct rec *r)
{
	ssize_t n = write(fd, r, sizeof(*r));
	return n == (ssize_t)sizeof(*r);
}

static void raise_max(_Atomic uint64_t *v, uint64_t x)
{
	uint64_t cur = atomic_load(v);
	while (cur < x && !atomic_compare_exchange_weak(v, &cur, x))
		;
}

static enum outcome outcome_of(int rc)
{
	switch (rc) {
	case 0:
		return OUT_GRANTED;
	case LM_ETIMEDOUT:
		return OUT_TIMEDOUT;
	case LM_ENOQUORUM:
		return OUT_NOQUORUM;
	default:
		return OUT_OTHER;
	}
}

static void chaos_hook(const struct client_spec *s, enum client_event ev,
		       int round, const lm_grant *g, int rc, uint64_t highest)
{
	(void)round;
	/* First thing: the time is what the checks lean on. */
	int64_t now = harness_now_ns();
	struct hook_ctx *cx = s->arg;
	struct rec r = {.magic = REC_MAGIC,
			.lock = (uint8_t)cx->lock,
			.pid = cx->pid,
			.t = now};
	struct rec attempt = {.magic = REC_MAGIC,
			      .type = REC_ATTEMPT,
			      .lock = (uint8_t)cx->lock,
			      .pid = cx->pid,
			      .t = cx->wants_ns,
			      .aux = now};
	switch (ev) {
	case EV_WANTS:
		cx->wants_ns = now;
		return;
	case EV_ACQUIRED:
		r.type = REC_ACQUIRED;
		r.token = g->token;
		r.aux = g->valid_until_ns;
		r.flags = ACQ_FLAGS(g->flags, G_MASK(g), g->mode);
		if ((g->flags & ~ACQ_GFLAGS_MAX) != 0 || g->mode > 7)
			atomic_fetch_add(&cx->sh->audit_errors, 1);
		atomic_store(&cx->slot->token, g->token);
		atomic_store(&cx->slot->in_cs, 1);
		raise_max(&cx->sh->last_token[cx->lock], g->token);
		if (g->mode == LM_MODE_X)
			raise_max(&cx->sh->last_x_token[cx->lock], g->token);
		attempt.flags = ATT_FLAGS(OUT_GRANTED, cx->mode);
		attempt.token = g->token;
		break;
	case EV_REFUSED:
		attempt.flags = ATT_FLAGS(outcome_of(rc), cx->mode);
		attempt.token = (uint64_t)(-(int64_t)rc);
		if (!put_rec(cx->fd, &attempt))
			atomic_fetch_add(&cx->sh->audit_errors, 1);
		return;
	case EV_WROTE:
	case EV_REJECTED:
		r.type = ev == EV_WROTE ? REC_WROTE : REC_REJECTED;
		r.token = g->token;
		r.aux = (int64_t)highest;
		atomic_store(&cx->slot->in_cs, 0);
		break;
	case EV_READ:
		r.type = REC_READ;
		r.token = g->token;
		r.aux = (int64_t)highest;
		atomic_store(&cx->slot->in_cs, 0);
		break;
	case EV_RELEASED:
		r.type = REC_RELEASED;
		r.token = g->token;
		r.aux = rc;
		break;
	default:
		return;
	}
	if (!put_rec(cx->fd, &r))
		atomic_fetch_add(&cx->sh->audit_errors, 1);
	/* A grant's attempt after its ACQUIRED record: whoever has the
	 * attempt has the grant. */
	if (ev == EV_ACQUIRED && !put_rec(cx->fd, &attempt))
		atomic_fetch_add(&cx->sh->audit_errors, 1);
}

static void client_main(void *arg)
{
	const struct spawn_args *a = arg;
	struct hook_ctx cx = {
		.pid = (int32_t)getpid(),
		.lock = a->lock,
		.mode = a->mode,
		.slot = &a->sh->slot[a->slot],
		.sh = a->sh,
	};
	cx.fd = open(a->audit_path, O_APPEND | O_WRONLY | O_CREAT | O_CLOEXEC,
		     0600);
	if (cx.fd < 0)
		fail_msg("client: open %s: %s", a->audit_path, strerror(errno));
	struct client_spec spec = {
		.region = a->region,
		.lock = lock_name(a->lock),
		.id = a->id,
		.ttl_ms = TTL_MS,
		.wait_ms = WAIT_MS,
		.mode = a->mode,
		.rounds = -1,
		.hold_ms = a->hold_ms,
		.gap_ms = a->gap_ms,
		.stop = &a->sh->stop,
		.store_path = a->store_path,
		.crash_at = CRASH_NEVER,
		.on_event = chaos_hook,
		.arg = &cx,
	};
	int rc = run_client(&spec);
	if (rc != 0)
		fail_msg("client %d (pid %d, %s in %s): run_client: %s", a->id,
			 (int)cx.pid, spec.lock, lm_mode_name(a->mode),
			 rc <= FS_ERR_LAST && rc >= FS_ERR_FIRST
				 ? fs_strerror(rc)
				 : lm_strerror(rc));
	close(cx.fd);
}

/* ---- the monitor -------------------------------------------------- */

struct monitor_args {
	struct shared *sh;
	const char *region;
	const char *audit_path;
};

static void mon_rec(struct shared *sh, int fd, uint8_t type, int64_t t,
		    int64_t aux, uint64_t token, unsigned why, int32_t age)
{
	struct rec r = {.magic = REC_MAGIC, .type = type, .t = t, .aux = aux,
			.token = token, .flags = (uint8_t)why, .pid = age};
	if (!put_rec(fd, &r))
		atomic_fetch_add(&sh->audit_errors, 1);
}

/* One look at the three servers: the clock before and after the loads. */
struct poll {
	int64_t pre, post;
	uint64_t st[LM_NSERVERS];
	int64_t hb[LM_NSERVERS];
};

/*
 * Poll the three servers' state words and heartbeats every millisecond
 * and record (check 7):
 *
 *   - the gaps in the proofs of a quorum. Polls a and b (two apart) prove
 *     server i usable at every instant of [a.post, b.pre] if both read
 *     the same UP state word (it cannot leave UP in an epoch and come
 *     back: a restart brings a new one) and b.post (in whole ms, as
 *     clients count) minus the heartbeat read by a is at most
 *     LM_HEARTBEAT_STALE_MS (a heartbeat only moves forward, so no look
 *     in between found it older). Two such servers prove a quorum over
 *     the span; spans two polls apart overlap, so consecutive proofs
 *     cover the run without a hole, whenever the monitor ran late.
 *     Whatever no proof covers is one REC_QGAP;
 *   - every stretch of polls that saw fewer than two usable servers
 *     (REC_NOQ), with its bounds.
 */
static void monitor_main(void *arg)
{
	const struct monitor_args *a = arg;
	struct shared *sh = a->sh;
	struct lm_region reg;
	char why[256] = "";
	int rc = lm_region_attach(&reg, a->region, why, sizeof(why));
	if (rc != 0)
		fail_msg("monitor: attach %s: %s (%s)", a->region,
			 lm_strerror(rc), why);
	int fd = open(a->audit_path, O_APPEND | O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("monitor: open %s: %s", a->audit_path,
			 strerror(errno));
	struct poll p[3];        /* the last three polls, by polls % 3 */
	int64_t first = 0;       /* proofs cover from here ... */
	int64_t covered = 0;     /* ... to here, but for the gaps */
	bool last_proven = false;
	int64_t last_q = 0;      /* last poll that saw a quorum */
	int64_t noq_first = 0, noq_last = 0; /* open stretch without one */
	unsigned noq_why = 0;    /* ... why (see REC_NOQ) */
	int64_t noq_age = 0;
	bool in_noq = false;
	uint64_t polls = 0;
	atomic_store(&sh->monitor_ready, 1);
	while (!atomic_load(&sh->monitor_stop)) {
		struct poll *cur = &p[polls % 3];
		cur->pre = harness_now_ns();
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			cur->st[i] = atomic_load(&reg.servers[i]->state);
			cur->hb[i] = atomic_load(&reg.servers[i]->heartbeat_ms);
		}
		cur->post = harness_now_ns();
		int64_t post_ms = cur->post / 1000000;
		if (polls == 0)
			first = covered = last_q = cur->post;
		if (polls >= 2) {
			const struct poll *old = &p[(polls - 2) % 3];
			unsigned proven = 0;
			for (unsigned i = 0; i < LM_NSERVERS; i++)
				proven += LM_SRV_STATE(cur->st[i]) ==
						  LM_SRV_UP &&
					  cur->st[i] == old->st[i] &&
					  post_ms - old->hb[i] <=
						  LM_HEARTBEAT_STALE_MS;
			last_proven = proven >= LM_QUORUM;
			if (last_proven) {
				if (old->post > covered)
					mon_rec(sh, fd, REC_QGAP, covered,
						old->post, 0, 0, 0);
				if (cur->pre > covered)
					covered = cur->pre;
			}
		}
		unsigned seen = 0, why = 0;
		int64_t age = 0;
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			int64_t a_ms = post_ms - cur->hb[i];
			if (LM_SRV_STATE(cur->st[i]) != LM_SRV_UP) {
				why |= 1u << i;
			} else if (a_ms > LM_HEARTBEAT_STALE_MS) {
				why |= 1u << (4 + i);
				age = a_ms > age ? a_ms : age;
			} else {
				seen++;
			}
		}
		if (seen < LM_QUORUM) {
			if (!in_noq) {
				in_noq = true;
				noq_first = cur->post;
				noq_why = 0;
				noq_age = 0;
			}
			noq_last = cur->post;
			noq_why |= why;
			noq_age = age > noq_age ? age : noq_age;
		} else {
			if (in_noq) {
				mon_rec(sh, fd, REC_NOQ, last_q, cur->post,
					(uint64_t)(noq_last - noq_first),
					noq_why, (int32_t)noq_age);
				in_noq = false;
			}
			last_q = cur->post;
		}
		polls++;
		harness_nap_us(1000); /* pacing, not synchronisation */
	}
	const struct poll *last = &p[(polls + 2) % 3];
	if (polls > 0 && !last_proven && last->post > covered)
		mon_rec(sh, fd, REC_QGAP, covered, last->post, 0, 0, 0);
	if (in_noq)
		mon_rec(sh, fd, REC_NOQ, last_q, noq_last,
			(uint64_t)(noq_last - noq_first), noq_why,
			(int32_t)noq_age);
	mon_rec(sh, fd, REC_QSPAN, first, covered, polls, 0, 0);
	close(fd);
	lm_region_detach(&reg);
}

/* ---- the driver --------------------------------------------------- */

enum cl_state { CL_RUNNING, CL_FROZEN };

struct client {
	pid_t pid;
	int lock;
	uint32_t mode;
	enum cl_state state;
	int64_t frozen_at_ns;  /* just before its SIGSTOP */
	int64_t thaw_at_ns;
	bool cs_freeze;        /* frozen while it held the lock */
	uint64_t cs_token;     /* ... with this token */
};

struct run {
	struct shared *sh;
	char region[LM_REGION_NAME_MAX + 2];
	char dir[256];
	char audit_path[300];
	char store_path[NLOCKS][300];
	char lockctl_err[300];
	struct client cl[NCLIENTS];
	int audit_fd;
	int next_id;
	unsigned seed;
	struct lm_region reg;    /* attached: the servers' and supervisor's
				  * state, read by the driver */
	pid_t sup_pid;           /* the lockmgrd started last (our child) */
	pid_t monitor_pid;
	/* faults in flight */
	bool adopting;           /* sup_pid started, not yet RUNNING */
	int64_t adopt_since_ns;
	int down_server;         /* killed and not yet UP again, or -1 */
	uint64_t down_epoch;     /* its epoch before the kill */
	bool down_wiped;
	int64_t down_since_ns;
	int64_t next_server_kill_ns, next_sup_kill_ns;
	unsigned kills_since_wipe;
	/* counters */
	unsigned kills, kills_holding, freezes, cs_freezes, cs_thawed;
	unsigned takeovers;
	/* of those, readers' */
	unsigned r_kills, r_kills_holding, r_cs_freezes, r_takeovers;
	unsigned unexpected_exits;
	unsigned server_kills, wipes, sup_kills, orphans;
	int64_t longest_out_ns, longest_wiped_out_ns, longest_adopt_ns;
};

static unsigned rnd(struct run *r, unsigned n)
{
	return (unsigned)rand_r(&r->seed) % n;
}

/* A random time (ns) of lo_ms to hi_ms. */
static int64_t ms_in(struct run *r, int lo_ms, int hi_ms)
{
	return (int64_t)(lo_ms + (int)rnd(r, (unsigned)(hi_ms - lo_ms + 1))) *
	       1000000;
}

static void driver_rec(struct run *r, const struct rec *k)
{
	if (!put_rec(r->audit_fd, k))
		fail_msg("driver: audit write: %s", strerror(errno));
}

/* Slot i's mode (READERS_OF). */
static uint32_t slot_mode(int i)
{
	return i / NLOCKS < READERS_OF[i % NLOCKS] ? LM_MODE_S : LM_MODE_X;
}

static void spawn(struct run *r, int i, int lock)
{
	struct cl_slot *s = &r->sh->slot[i];
	uint32_t mode = slot_mode(i);
	atomic_store(&s->in_cs, 0);
	atomic_store(&s->token, 0);
	struct spawn_args a = {
		.sh = r->sh,
		.region = r->region,
		.audit_path = r->audit_path,
		.store_path = r->store_path[lock],
		.slot = i,
		.lock = lock,
		.mode = mode,
		.id = r->next_id++,
		.hold_ms = 1 + (int)rnd(r, 5),
		.gap_ms = (int)rnd(r, 4),
	};
	pid_t p = harness_fork(client_main, &a);
	atomic_store(&s->pid, p);
	r->cl[i] = (struct client){.pid = p, .lock = lock, .mode = mode,
				   .state = CL_RUNNING};
}

/* A client that ended on its own (it must not, before the stop flag):
 * report it, and start a replacement. */
static void check_exits(struct run *r)
{
	for (int i = 0; i < NCLIENTS; i++) {
		int st;
		pid_t p = waitpid(r->cl[i].pid, &st, WNOHANG);
		if (p != r->cl[i].pid)
			continue;
		char b[96];
		fprintf(stderr, "chaos: client pid %d ended on its own: %s\n",
			(int)p, harness_status_str(st, b, sizeof(b)));
		r->unexpected_exits++;
		spawn(r, i, r->cl[i].lock);
	}
}

static void do_kill(struct run *r, int i)
{
	struct client *c = &r->cl[i];
	bool holding = atomic_load(&r->sh->slot[i].in_cs) != 0;
	int64_t before = harness_now_ns();
	if (kill(c->pid, SIGKILL) != 0)
		fail_msg("kill(%d, SIGKILL): %s", (int)c->pid,
			 strerror(errno));
	int st = harness_reap(c->pid, 5000, "SIGKILLed client");
	int64_t after = harness_now_ns();
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		char b[96];
		fprintf(stderr, "chaos: client pid %d ended on its own "
				"before its kill: %s\n",
			(int)c->pid, harness_status_str(st, b, sizeof(b)));
		r->unexpected_exits++;
	}
	if (c->state == CL_FROZEN)
		driver_rec(r, &(struct rec){.magic = REC_MAGIC,
					    .type = REC_FROZEN,
					    .pid = (int32_t)c->pid,
					    .t = c->frozen_at_ns,
					    .aux = before});
	driver_rec(r, &(struct rec){.magic = REC_MAGIC, .type = REC_KILLED,
				    .lock = (uint8_t)c->lock,
				    .pid = (int32_t)c->pid, .t = before,
				    .aux = after});
	r->kills++;
	r->kills_holding += holding;
	if (c->mode != LM_MODE_X) {
		r->r_kills++;
		r->r_kills_holding += holding;
	}
	spawn(r, i, c->lock);
}

/* Wait (bounded) until the stopped child reports its stop. */
static void confirm_stopped(pid_t pid)
{
	int64_t deadline = harness_now_ms() + 5000;
	for (;;) {
		int st;
		pid_t p = waitpid(pid, &st, WUNTRACED | WNOHANG);
		if (p == pid && WIFSTOPPED(st))
			return;
		if (p == pid) {
			char b[96];
			fail_msg("client %d ended while being stopped: %s",
				 (int)pid,
				 harness_status_str(st, b, sizeof(b)));
		}
		if (p < 0 && errno != EINTR)
			fail_msg("waitpid(%d, WUNTRACED): %s", (int)pid,
				 strerror(errno));
		if (harness_now_ms() > deadline)
			fail_msg("client %d did not stop within 5 s of SIGSTOP",
				 (int)pid);
		harness_nap_us(200);
	}
}

static void do_freeze(struct run *r, int i, bool cs_target)
{
	struct client *c = &r->cl[i];
	struct cl_slot *s = &r->sh->slot[i];
	c->frozen_at_ns = harness_now_ns();
	if (kill(c->pid, SIGSTOP) != 0)
		fail_msg("kill(%d, SIGSTOP): %s", (int)c->pid,
			 strerror(errno));
	confirm_stopped(c->pid);
	/* Stopped now: its slot no longer moves. */
	c->cs_freeze = atomic_load(&s->in_cs) != 0;
	c->cs_token = atomic_load(&s->token);
	/* A holder frozen for longer than its lease (plus the time a
	 * successor needs to acquire and write) is a zombie when it
	 * resumes; other targets get the full 200-800 ms range. */
	unsigned ms = cs_target ? 450 + rnd(r, 351) : 200 + rnd(r, 601);
	c->thaw_at_ns = harness_now_ns() + (int64_t)ms * 1000000;
	c->state = CL_FROZEN;
	r->freezes++;
	r->cs_freezes += c->cs_freeze;
	if (c->mode != LM_MODE_X)
		r->r_cs_freezes += c->cs_freeze;
}

static void do_thaw(struct run *r, int i, bool at_end)
{
	struct client *c = &r->cl[i];
	if (c->cs_freeze && !at_end) {
		r->cs_thawed++;
		/* Its lock moved on while it slept (a reader's: to a
		 * writer; other readers may join it any time): it resumes
		 * a zombie. */
		if (c->mode == LM_MODE_X &&
		    atomic_load(&r->sh->last_token[c->lock]) > c->cs_token)
			r->takeovers++;
		if (c->mode != LM_MODE_X &&
		    atomic_load(&r->sh->last_x_token[c->lock]) > c->cs_token)
			r->r_takeovers++;
	}
	if (kill(c->pid, SIGCONT) != 0)
		fail_msg("kill(%d, SIGCONT): %s", (int)c->pid,
			 strerror(errno));
	driver_rec(r, &(struct rec){.magic = REC_MAGIC, .type = REC_FROZEN,
				    .pid = (int32_t)c->pid,
				    .t = c->frozen_at_ns,
				    .aux = harness_now_ns()});
	c->state = CL_RUNNING;
	c->cs_freeze = false;
}

static int count_frozen(const struct run *r)
{
	int n = 0;
	for (int i = 0; i < NCLIENTS; i++)
		n += r->cl[i].state == CL_FROZEN;
	return n;
}

/* A random client in the given state (-1 if none); with in_cs, only
 * one that is inside its critical section. */
static int pick(struct run *r, int state, bool in_cs)
{
	int cand[NCLIENTS], n = 0;
	for (int i = 0; i < NCLIENTS; i++) {
		if (state >= 0 && (int)r->cl[i].state != state)
			continue;
		if (in_cs && atomic_load(&r->sh->slot[i].in_cs) == 0)
			continue;
		cand[n++] = i;
	}
	return n == 0 ? -1 : cand[rnd(r, (unsigned)n)];
}

static void act(struct run *r)
{
	unsigned a = rnd(r, 100);
	if (a < 45 || count_frozen(r) >= MAX_FROZEN) {
		/* Kill: a third of the time a (running) holder, else any
		 * client, frozen ones included. */
		int i = rnd(r, 3) == 0 ? pick(r, CL_RUNNING, true) : -1;
		if (i < 0)
			i = pick(r, -1, false);
		do_kill(r, i);
		return;
	}
	/* Freeze: mostly one inside its critical section (the zombie
	 * case), else any running client (a waiter, a client between
	 * rounds, or one inside the library's protocol). */
	int i = rnd(r, 10) < 7 ? pick(r, CL_RUNNING, true) : -1;
	bool cs_target = i >= 0;
	if (i < 0)
		i = pick(r, CL_RUNNING, false);
	if (i >= 0)
		do_freeze(r, i, cs_target);
}

/* ---- the service's faults ----------------------------------------- */

/* lockmgrd on region with its default max TTL and restart delay (and
 * nothing on disk), as a child of the case. */
static pid_t start_lockmgrd(const char *region)
{
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	if (access(bin, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bin,
			 harness_bin_dir());
	char *argv[10];
	int n = 0;
	argv[n++] = bin;
	argv[n++] = "-r";
	argv[n++] = (char *)region;
	/* LOCKMGR_TEST_VERBOSE=1 shows lockmgrd's log (debugging). */
	const char *verbose = getenv("LOCKMGR_TEST_VERBOSE");
	if (verbose == NULL || *verbose == '\0' || *verbose == '0')
		argv[n++] = "-q";
	argv[n++] = "--max-locks";
	argv[n++] = "4096";
	argv[n++] = "--ephemeral";
	argv[n] = NULL;
	return harness_spawn(argv, NULL, NULL);
}

static bool server_fresh_up(struct run *r, unsigned i, int64_t now_ns,
			    int64_t fresh_ms)
{
	uint64_t st = atomic_load(&r->reg.servers[i]->state);
	int64_t hb = atomic_load(&r->reg.servers[i]->heartbeat_ms);
	return LM_SRV_STATE(st) == LM_SRV_UP &&
	       now_ns / 1000000 - hb <= fresh_ms;
}

static bool all_servers_up(struct run *r, int64_t now_ns)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (!server_fresh_up(r, i, now_ns, FRESH_MS))
			return false;
	return true;
}

static void kill_server(struct run *r)
{
	unsigned i = rnd(r, LM_NSERVERS);
	/* A third of them at random, and never more than three kills in
	 * a row without one, so that a short run has wipes too. */
	bool wipe = rnd(r, 3) == 0 || r->kills_since_wipe >= 3;
	char bin[512], n[8];
	harness_bin_path(bin, sizeof(bin), "lockctl");
	snprintf(n, sizeof(n), "%u", i);
	char *argv[] = {bin, "-r", r->region, "server", "kill", n,
			wipe ? "--wipe" : NULL, NULL};
	uint64_t st = atomic_load(&r->reg.servers[i]->state);
	int64_t before = harness_now_ns();
	int rc = harness_run(argv, NULL, r->lockctl_err, 10000);
	int64_t after = harness_now_ns();
	if (rc != 0) {
		char msg[1024] = "";
		harness_read_file(r->lockctl_err, msg, sizeof(msg));
		fail_msg("lockctl server kill %u%s exited %d: %s", i,
			 wipe ? " --wipe" : "", rc, msg);
	}
	driver_rec(r, &(struct rec){.magic = REC_MAGIC,
				    .type = REC_SRV_KILLED,
				    .lock = (uint8_t)i,
				    .flags = wipe,
				    .t = before,
				    .aux = after});
	r->down_server = (int)i;
	r->down_epoch = LM_SRV_EPOCH(st);
	r->down_wiped = wipe;
	r->down_since_ns = before;
	r->server_kills++;
	r->wipes += wipe;
	r->kills_since_wipe = wipe ? 0 : r->kills_since_wipe + 1;
}

/* SIGKILL lockmgrd and start a new one at once: it adopts the region. */
static void kill_supervisor(struct run *r)
{
	pid_t old = r->sup_pid;
	int64_t before = harness_now_ns();
	if (kill(old, SIGKILL) != 0)
		fail_msg("kill(lockmgrd %d, SIGKILL): %s", (int)old,
			 strerror(errno));
	int st = harness_reap(old, 5000, "SIGKILLed lockmgrd");
	int64_t after = harness_now_ns();
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		char b[96];
		fail_msg("lockmgrd (pid %d) ended on its own before its "
			 "kill: %s", (int)old,
			 harness_status_str(st, b, sizeof(b)));
	}
	driver_rec(r, &(struct rec){.magic = REC_MAGIC,
				    .type = REC_SUP_KILLED,
				    .pid = (int32_t)old,
				    .t = before,
				    .aux = after});
	r->sup_kills++;
	r->sup_pid = start_lockmgrd(r->region);
	r->adopting = true;
	r->adopt_since_ns = harness_now_ns();
	r->next_sup_kill_ns = INT64_MAX; /* scheduled once it runs */
}

static const char *srv_state_name(uint64_t st)
{
	switch (LM_SRV_STATE(st)) {
	case LM_SRV_UP:
		return "UP";
	case LM_SRV_RECOVERING:
		return "RECOVERING";
	case LM_SRV_DOWN:
		return "DOWN";
	default:
		return "?";
	}
}

/* Follow the faults in flight: a new supervisor taking the region over,
 * a killed server coming back. Both are bounded. */
static void watch_faults(struct run *r, int64_t now)
{
	if (r->adopting) {
		uint32_t s = atomic_load(&r->reg.hdr->supervisor_state);
		pid_t p = atomic_load(&r->reg.hdr->supervisor_pid);
		if (s == LM_SUP_RUNNING && p == r->sup_pid) {
			driver_rec(r, &(struct rec){.magic = REC_MAGIC,
						    .type = REC_SUP_ADOPTED,
						    .pid = (int32_t)p,
						    .t = now,
						    .aux = r->adopt_since_ns});
			if (now - r->adopt_since_ns > r->longest_adopt_ns)
				r->longest_adopt_ns = now - r->adopt_since_ns;
			r->adopting = false;
			r->next_sup_kill_ns = now + ms_in(r, SUP_KILL_MIN_MS,
							  SUP_KILL_MAX_MS);
		} else if (now - r->adopt_since_ns >
			   (int64_t)ADOPT_MS * 1000000) {
			fail_msg("the new lockmgrd (pid %d) did not run %s "
				 "within %d ms of its start (supervisor state "
				 "%u, pid %d)",
				 (int)r->sup_pid, r->region, ADOPT_MS, s,
				 (int)p);
		}
	}
	if (r->down_server >= 0) {
		unsigned i = (unsigned)r->down_server;
		uint64_t st = atomic_load(&r->reg.servers[i]->state);
		if (LM_SRV_EPOCH(st) > r->down_epoch &&
		    server_fresh_up(r, i, now, LM_HEARTBEAT_STALE_MS)) {
			driver_rec(r, &(struct rec){.magic = REC_MAGIC,
						    .type = REC_SRV_UP,
						    .lock = (uint8_t)i,
						    .t = now,
						    .aux = (int64_t)
							    LM_SRV_EPOCH(st)});
			int64_t out = now - r->down_since_ns;
			if (out > r->longest_out_ns)
				r->longest_out_ns = out;
			if (r->down_wiped && out > r->longest_wiped_out_ns)
				r->longest_wiped_out_ns = out;
			r->down_server = -1;
		} else if (now - r->down_since_ns >
			   (int64_t)SERVER_BACK_MS * 1000000) {
			struct lm_server *srv = r->reg.servers[i];
			int64_t age = now / 1000000 -
				      atomic_load(&srv->heartbeat_ms);
			fail_msg("server %u did not count again within %d ms "
				 "of its kill%s: state %s, epoch %llu (%llu "
				 "before the kill), recovery %u, heartbeat "
				 "%lld ms old; supervisor pid %d%s",
				 i, SERVER_BACK_MS,
				 r->down_wiped ? " --wipe" : "",
				 srv_state_name(st),
				 (unsigned long long)LM_SRV_EPOCH(st),
				 (unsigned long long)r->down_epoch,
				 atomic_load(&srv->recovery), (long long)age,
				 (int)r->sup_pid,
				 r->adopting ? " (still adopting)" : "");
		}
	}
}

/* The next fault of the service, if one is due. A server is killed
 * only while a supervisor runs the region and all three servers are UP,
 * so that never two are down at once. */
static void service_faults(struct run *r, int64_t now)
{
	if (r->adopting)
		return;
	if (now >= r->next_sup_kill_ns) {
		kill_supervisor(r);
		return;
	}
	if (r->down_server < 0 && now >= r->next_server_kill_ns &&
	    all_servers_up(r, now)) {
		kill_server(r);
		r->next_server_kill_ns =
			now + ms_in(r, SERVER_KILL_MIN_MS, SERVER_KILL_MAX_MS);
	}
}

/* The supervisor and the monitor must outlive the run. */
static void check_service(struct run *r)
{
	int st;
	char b[96];
	if (waitpid(r->sup_pid, &st, WNOHANG) == r->sup_pid)
		fail_msg("lockmgrd (pid %d) ended on its own: %s",
			 (int)r->sup_pid, harness_status_str(st, b, sizeof(b)));
	if (waitpid(r->monitor_pid, &st, WNOHANG) == r->monitor_pid)
		fail_msg("the monitor ended on its own: %s",
			 harness_status_str(st, b, sizeof(b)));
}

static bool known_child(const struct run *r, pid_t p)
{
	if (p == r->sup_pid || p == r->monitor_pid)
		return true;
	for (int i = 0; i < NCLIENTS; i++)
		if (r->cl[i].pid == p)
			return true;
	return false;
}

/*
 * Reap the servers that killed supervisors left to us (the case is a
 * child subreaper) once they die: every child that is not a client,
 * the supervisor or the monitor, and is a zombie. A server a dead
 * supervisor forked but never named in the region (it died in between)
 * is found too: it exits once it sees its epoch superseded.
 */
static void reap_orphans(struct run *r)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return;
	pid_t me = getpid();
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], st[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (harness_read_file(path, st, sizeof(st)) <= 0)
			continue;
		/* pid (comm) state ppid ...; comm may hold spaces */
		char *rp = strrchr(st, ')');
		char state;
		int ppid;
		if (rp == NULL || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
			continue;
		pid_t p = (pid_t)atoi(e->d_name);
		if (ppid != (int)me || state != 'Z' || known_child(r, p))
			continue;
		int ws;
		if (waitpid(p, &ws, WNOHANG) == p)
			r->orphans++;
	}
	closedir(d);
}

/* After the last supervisor stopped: every child left is a server it
 * stopped (adopted, so not its own to reap). */
static void reap_all_orphans(struct run *r)
{
	int64_t deadline = harness_now_ms() + 10000;
	for (;;) {
		int ws;
		pid_t p = waitpid(-1, &ws, WNOHANG);
		if (p > 0) {
			r->orphans++;
			continue;
		}
		if (p < 0 && errno == ECHILD)
			return;
		if (p < 0 && errno != EINTR)
			fail_msg("waitpid(-1): %s", strerror(errno));
		if (harness_now_ms() > deadline)
			fail_msg("servers orphaned by killed supervisors were "
				 "still running 10 s after lockmgrd stopped");
		harness_nap_us(1000);
	}
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0')
		return dflt;
	char *end;
	long x = strtol(v, &end, 10);
	if (*end != '\0' || x < 0 || x > 1000000000)
		fail_msg("%s=%s: not a non-negative number", name, v);
	return (int)x;
}

/* ---- the analysis ------------------------------------------------- */

struct grant {
	int32_t pid;
	int lock;
	uint32_t mode;      /* held (lm_grant.mode) */
	uint64_t token;
	uint32_t flags;     /* lm_grant.flags */
	unsigned mask;      /* tables of the grant */
	int64_t attempt;    /* its acquire began (0: no ATTEMPT record) */
	int64_t start;
	int64_t valid_until;
	int64_t t_write;    /* 0: no write record */
	int64_t t_read;     /* 0: no read record (a reader's) */
	int64_t t_release;  /* 0: no release record */
	int64_t death;      /* 0: not killed */
	int64_t end;
	uint64_t highest;   /* the store's, at the write or read */
	bool wrote, rejected, in_store, reject_in_store, stale_read;
	int release_rc;
};

struct kill_rec {
	int32_t pid;
	int64_t before, after;
};

struct attempt {
	int32_t pid;
	int lock;
	uint32_t mode;      /* asked for */
	enum outcome outcome;
	int rc;             /* OUT_OTHER: the error */
	int64_t start, end;
};

/* A freeze of one client, or an interval of the monitor's. */
struct span {
	int32_t pid;
	int64_t from, to;
	int64_t seen;       /* REC_NOQ: ns from first to last poll seeing it */
	unsigned why;       /* REC_NOQ: servers not UP | stale << 4 */
	int32_t age;        /* REC_NOQ: oldest stale heartbeat (ms) */
};

/* A fault of the service. */
struct fault {
	enum rec_type type; /* REC_SRV_KILLED ... REC_SUP_ADOPTED */
	int server;
	bool wipe;
	int32_t pid;
	int64_t t, aux;
};

/* Which check a violation belongs to: each prints its first ten, and
 * the summary counts them per check. */
enum check {
	CK_AUDIT,  /* the audit itself, and the run */
	CK_EXCL,   /* 1 */
	CK_TOKENS, /* 2 */
	CK_STORE,  /* 3 */
	CK_REJECT, /* 4 */
	CK_LEASE,  /* 4b */
	CK_TABLES, /* 5 */
	CK_AVAIL,  /* 6, 7 */
	CK_COUNT
};

static const char *const check_name[CK_COUNT] = {
	[CK_AUDIT] = "audit",
	[CK_EXCL] = "1 (exclusion)",
	[CK_TOKENS] = "2 (tokens)",
	[CK_STORE] = "3 (store)",
	[CK_REJECT] = "4 (rejections, stale reads)",
	[CK_LEASE] = "4b (lease reports)",
	[CK_TABLES] = "5 (tables)",
	[CK_AVAIL] = "6-7 (availability)",
};

struct analysis {
	int64_t t0;              /* the run's start, for the messages */
	enum check check;        /* the one running */
	unsigned by_check[CK_COUNT];
	struct grant *g;
	size_t ng;
	struct grant **by_key;   /* sorted by (pid, lock, token) */
	struct grant **by_token; /* sorted by (lock, token) */
	struct kill_rec *k;
	size_t nk;
	struct attempt *at;
	size_t nat;
	struct span *frz;        /* freezes, sorted by (pid, from) */
	size_t nfrz;
	struct fault *ft;        /* sorted by t */
	size_t nft;
	struct span *qgap;       /* sorted by from */
	size_t nqgap;
	struct span *noq;
	size_t nnoq;
	int64_t mon_first, mon_last;
	uint64_t mon_polls;
	bool mon_done;
	unsigned violations;
	/* counters */
	unsigned writes, rejections, releases_lost, recovered, empty;
	/* readers */
	unsigned r_grants, reads, stale_reads, r_empty;
	unsigned s_max[NLOCKS];  /* most S intervals inside at once */
	unsigned s_joined;       /* S intervals that began while another
				  * was inside */
	unsigned releases_lost_restart; /* of those: a table of the grant
					 * restarted under it */
	unsigned store_accepted, store_rejected, store_unacked;
	int64_t longest_idle_ns; /* a lock unused between two holds */
	int longest_idle_lock;
	/* availability */
	unsigned att_total, att_frozen, att_frozen_failed, att_counted;
	unsigned att_ok, att_timedout;
	unsigned r_att_counted, r_att_ok; /* readers' */
	unsigned att_noquorum, att_other, noquorum_unproven;
	int64_t longest_granted_ns; /* the longest acquire that succeeded */
	int64_t longest_noq_seen_ns, longest_noq_bound_ns, longest_qgap_ns;
};

static void violation(struct analysis *an, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void violation(struct analysis *an, const char *fmt, ...)
{
	an->violations++;
	if (an->by_check[an->check]++ < 10) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "chaos: VIOLATION of %s: ",
			check_name[an->check]);
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
		va_end(ap);
	}
}

/* ms since the run began, for messages. */
static long long rel_ms(const struct analysis *an, int64_t t)
{
	return (long long)((t - an->t0) / 1000000);
}

static int cmp_key(const void *a, const void *b)
{
	const struct grant *x = *(struct grant *const *)a;
	const struct grant *y = *(struct grant *const *)b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->lock != y->lock)
		return x->lock < y->lock ? -1 : 1;
	if (x->token != y->token)
		return x->token < y->token ? -1 : 1;
	return 0;
}

static int cmp_token(const void *a, const void *b)
{
	const struct grant *x = *(struct grant *const *)a;
	const struct grant *y = *(struct grant *const *)b;
	if (x->lock != y->lock)
		return x->lock < y->lock ? -1 : 1;
	if (x->token != y->token)
		return x->token < y->token ? -1 : 1;
	return 0;
}

static int cmp_start(const void *a, const void *b)
{
	const struct grant *x = *(struct grant *const *)a;
	const struct grant *y = *(struct grant *const *)b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

static int cmp_kill(const void *a, const void *b)
{
	const struct kill_rec *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->after != y->after)
		return x->after < y->after ? -1 : 1;
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return 0;
}

static int cmp_fault(const void *a, const void *b)
{
	const struct fault *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return 0;
}

static struct grant *find_grant(struct analysis *an, int32_t pid, int lock,
				uint64_t token)
{
	struct grant key = {.pid = pid, .lock = lock, .token = token};
	struct grant *kp = &key;
	struct grant **f = bsearch(&kp, an->by_key, an->ng, sizeof(*f),
				   cmp_key);
	return f == NULL ? NULL : *f;
}

static struct grant *find_token(struct analysis *an, int lock,
				uint64_t token)
{
	struct grant key = {.lock = lock, .token = token};
	struct grant *kp = &key;
	struct grant **f = bsearch(&kp, an->by_token, an->ng, sizeof(*f),
				   cmp_token);
	return f == NULL ? NULL : *f;
}

/*
 * The kill of this grant's process: the first kill of its pid reaped
 * after the grant started (a reused pid's earlier life was reaped before
 * this process was even forked).
 */
static const struct kill_rec *find_kill(struct analysis *an,
					const struct grant *g)
{
	size_t lo = 0, hi = an->nk;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (an->k[mid].pid < g->pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < an->nk && an->k[i].pid == g->pid; i++)
		if (an->k[i].after >= g->start)
			return &an->k[i];
	return NULL;
}

static void *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0)
		fail_msg("fstat %s: %s", path, strerror(errno));
	size_t n = (size_t)st.st_size;
	char *buf = malloc(n + 1);
	assert_non_null(buf);
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			fail_msg("read %s: %s", path,
				 k == 0 ? "short" : strerror(errno));
		got += (size_t)k;
	}
	close(fd);
	*len = n;
	return buf;
}

/* Is the record's lock field in range for its type? */
static bool rec_sane(const struct rec *r)
{
	if (r->magic != REC_MAGIC)
		return false;
	switch (r->type) {
	case REC_ACQUIRED:
	case REC_WROTE:
	case REC_REJECTED:
	case REC_RELEASED:
	case REC_READ:
	case REC_ATTEMPT:
	case REC_KILLED:
		return r->lock < NLOCKS;
	case REC_SRV_KILLED:
	case REC_SRV_UP:
		return r->lock < LM_NSERVERS;
	case REC_FROZEN:
	case REC_SUP_KILLED:
	case REC_SUP_ADOPTED:
	case REC_QGAP:
	case REC_NOQ:
	case REC_QSPAN:
		return r->lock == 0;
	default:
		return false;
	}
}

/* Build the grants, kills, attempts, freezes, faults and the monitor's
 * intervals from the audit file, linking every event to its grant. */
static void load_audit(struct analysis *an, const char *path)
{
	size_t len;
	struct rec *recs = read_all(path, &len);
	if (len % sizeof(struct rec) != 0)
		violation(an, "audit file is %zu bytes, not a whole number "
			      "of records (a torn record)", len);
	size_t n = len / sizeof(struct rec);
	an->g = calloc(n + 1, sizeof(*an->g));
	an->k = calloc(n + 1, sizeof(*an->k));
	an->at = calloc(n + 1, sizeof(*an->at));
	an->frz = calloc(n + 1, sizeof(*an->frz));
	an->ft = calloc(n + 1, sizeof(*an->ft));
	an->qgap = calloc(n + 1, sizeof(*an->qgap));
	an->noq = calloc(n + 1, sizeof(*an->noq));
	assert_non_null(an->g);
	assert_non_null(an->k);
	assert_non_null(an->at);
	assert_non_null(an->frz);
	assert_non_null(an->ft);
	assert_non_null(an->qgap);
	assert_non_null(an->noq);
	for (size_t i = 0; i < n; i++) {
		const struct rec *r = &recs[i];
		if (!rec_sane(r)) {
			violation(an, "audit record %zu is garbage", i);
			continue;
		}
		switch (r->type) {
		case REC_ACQUIRED: {
			struct grant *g = &an->g[an->ng++];
			g->pid = r->pid;
			g->lock = r->lock;
			g->mode = ACQ_MODE(r->flags);
			g->token = r->token;
			g->flags = ACQ_GFLAGS(r->flags);
			g->mask = ACQ_MASK(r->flags);
			g->start = r->t;
			g->valid_until = r->aux;
			break;
		}
		case REC_KILLED:
			an->k[an->nk++] = (struct kill_rec){
				.pid = r->pid, .before = r->t, .after = r->aux};
			break;
		case REC_ATTEMPT:
			an->at[an->nat++] = (struct attempt){
				.pid = r->pid,
				.lock = r->lock,
				.mode = ATT_MODE(r->flags),
				.outcome = ATT_OUTCOME(r->flags),
				.rc = ATT_OUTCOME(r->flags) == OUT_GRANTED
					      ? 0
					      : -(int)(int64_t)r->token,
				.start = r->t,
				.end = r->aux};
			break;
		case REC_FROZEN:
			an->frz[an->nfrz++] = (struct span){
				.pid = r->pid, .from = r->t, .to = r->aux};
			break;
		case REC_SRV_KILLED:
		case REC_SRV_UP:
		case REC_SUP_KILLED:
		case REC_SUP_ADOPTED:
			an->ft[an->nft++] = (struct fault){
				.type = (enum rec_type)r->type,
				.server = r->lock,
				.wipe = r->flags != 0,
				.pid = r->pid,
				.t = r->t,
				.aux = r->aux};
			break;
		case REC_QGAP:
			an->qgap[an->nqgap++] =
				(struct span){.from = r->t, .to = r->aux};
			if (r->aux - r->t > an->longest_qgap_ns)
				an->longest_qgap_ns = r->aux - r->t;
			break;
		case REC_NOQ:
			an->noq[an->nnoq++] = (struct span){
				.from = r->t, .to = r->aux,
				.seen = (int64_t)r->token, .why = r->flags,
				.age = r->pid};
			if ((int64_t)r->token > an->longest_noq_seen_ns)
				an->longest_noq_seen_ns = (int64_t)r->token;
			if (r->aux - r->t > an->longest_noq_bound_ns)
				an->longest_noq_bound_ns = r->aux - r->t;
			break;
		case REC_QSPAN:
			an->mon_first = r->t;
			an->mon_last = r->aux;
			an->mon_polls = r->token;
			an->mon_done = true;
			break;
		default:
			break;
		}
	}
	an->by_key = malloc((an->ng + 1) * sizeof(*an->by_key));
	an->by_token = malloc((an->ng + 1) * sizeof(*an->by_token));
	assert_non_null(an->by_key);
	assert_non_null(an->by_token);
	for (size_t i = 0; i < an->ng; i++)
		an->by_key[i] = an->by_token[i] = &an->g[i];
	qsort(an->by_key, an->ng, sizeof(*an->by_key), cmp_key);
	qsort(an->by_token, an->ng, sizeof(*an->by_token), cmp_token);
	qsort(an->k, an->nk, sizeof(*an->k), cmp_kill);
	qsort(an->frz, an->nfrz, sizeof(*an->frz), cmp_span);
	qsort(an->ft, an->nft, sizeof(*an->ft), cmp_fault);
	qsort(an->qgap, an->nqgap, sizeof(*an->qgap), cmp_span);
	qsort(an->noq, an->nnoq, sizeof(*an->noq), cmp_span);

	for (size_t i = 0; i < n; i++) {
		const struct rec *r = &recs[i];
		if (!rec_sane(r) ||
		    (r->type != REC_WROTE && r->type != REC_REJECTED &&
		     r->type != REC_RELEASED && r->type != REC_READ &&
		     !(r->type == REC_ATTEMPT &&
		       ATT_OUTCOME(r->flags) == OUT_GRANTED)))
			continue;
		struct grant *g = find_grant(an, r->pid, r->lock, r->token);
		if (g == NULL) {
			violation(an, "pid %d lock %s: event %u for token %llu "
				      "it was never granted",
				  (int)r->pid, lock_name(r->lock),
				  (unsigned)r->type,
				  (unsigned long long)r->token);
			continue;
		}
		switch (r->type) {
		case REC_ATTEMPT:
			g->attempt = r->t;
			if (ATT_MODE(r->flags) != g->mode)
				violation(an, "pid %d lock %s: asked for %s, "
					      "granted token %llu in %s",
					  (int)r->pid, lock_name(r->lock),
					  lm_mode_name(ATT_MODE(r->flags)),
					  (unsigned long long)r->token,
					  lm_mode_name(g->mode));
			break;
		case REC_READ:
			if (g->t_read != 0 || g->mode == LM_MODE_X)
				violation(an, "pid %d token %llu (%s) %s",
					  (int)r->pid,
					  (unsigned long long)r->token,
					  lm_mode_name(g->mode),
					  g->t_read != 0
						  ? "read twice"
						  : "is a writer's, but read");
			g->t_read = r->t;
			g->highest = (uint64_t)r->aux;
			g->stale_read = g->highest > g->token;
			an->reads++;
			an->stale_reads += g->stale_read;
			break;
		case REC_WROTE:
		case REC_REJECTED:
			if (g->mode != LM_MODE_X)
				violation(an, "pid %d token %llu: a reader (%s) "
					      "wrote",
					  (int)r->pid,
					  (unsigned long long)r->token,
					  lm_mode_name(g->mode));
			if (g->t_write != 0)
				violation(an, "pid %d token %llu wrote twice",
					  (int)r->pid,
					  (unsigned long long)r->token);
			g->t_write = r->t;
			g->highest = (uint64_t)r->aux;
			g->wrote = r->type == REC_WROTE;
			g->rejected = r->type == REC_REJECTED;
			an->writes += g->wrote;
			an->rejections += g->rejected;
			break;
		case REC_RELEASED:
			g->t_release = r->t;
			g->release_rc = (int)r->aux;
			an->releases_lost += r->aux == LM_ELEASELOST;
			break;
		default:
			break;
		}
	}
	free(recs);

	for (size_t i = 0; i < an->ng; i++) {
		struct grant *g = &an->g[i];
		const struct kill_rec *k = find_kill(an, g);
		if (k != NULL)
			g->death = k->before;
		int64_t end = g->valid_until;
		if (g->t_write != 0 && g->t_write < end)
			end = g->t_write;
		if (g->t_read != 0 && g->t_read < end)
			end = g->t_read;
		if (g->t_release != 0 && g->t_release < end)
			end = g->t_release;
		if (g->death != 0 && g->death < end)
			end = g->death;
		g->end = end;
		an->recovered += (g->flags & LM_GRANT_RECOVERED) != 0;
		an->r_grants += g->mode != LM_MODE_X;
		/* Every round of a fenced client writes (a reader: reads)
		 * before it releases; only a kill can cut that short. */
		bool x = g->mode == LM_MODE_X;
		if ((x ? g->t_write : g->t_read) == 0 && g->death == 0)
			violation(an, "pid %d lock %s token %llu (%s): no %s "
				      "record, and the client was not killed",
				  (int)g->pid, lock_name(g->lock),
				  (unsigned long long)g->token,
				  lm_mode_name(g->mode), x ? "write" : "read");
	}
}

static void report_overlap(struct analysis *an, int lock,
			   const struct grant *g, const struct grant *o)
{
	an->check = CK_EXCL;
	violation(an, "lock %s: pid %d token %llu (%s) held [%lld, %lld] "
		      "overlaps pid %d token %llu (%s) [%lld, %lld] by %lld us",
		  lock_name(lock), (int)g->pid, (unsigned long long)g->token,
		  lm_mode_name(g->mode), (long long)g->start,
		  (long long)g->end, (int)o->pid,
		  (unsigned long long)o->token, lm_mode_name(o->mode),
		  (long long)o->start, (long long)o->end,
		  (long long)((o->end < g->end ? o->end : g->end) - g->start) /
			  1000);
}

static void report_order(struct analysis *an, int lock,
			 const struct grant *g, const struct grant *o)
{
	an->check = CK_TOKENS;
	violation(an, "lock %s: token %llu (pid %d, %s, from %lld) came after "
		      "token %llu (pid %d, %s, from %lld)",
		  lock_name(lock), (unsigned long long)g->token, (int)g->pid,
		  lm_mode_name(g->mode), (long long)g->start,
		  (unsigned long long)o->token, (int)o->pid,
		  lm_mode_name(o->mode), (long long)o->start);
}

struct s_edge {
	int64_t t;
	int d; /* +1 start, -1 end */
};

static int cmp_edge(const void *a, const void *b)
{
	const struct s_edge *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->d - y->d; /* ends first: [s, e) touching is no overlap */
}

/*
 * 1 and 2, with modes. Per lock, over the (non-empty) intervals in the
 * order they began:
 *
 *   1. an X interval overlaps no other interval, of any mode; an S one
 *      overlaps no X interval. (S intervals may overlap each other: the
 *      most that were inside at once, per lock, is counted, and the case
 *      fails if that is never more than one, for then shared mode was
 *      not tested.) One pass finds every overlapping pair that involves
 *      an X: a pair (a before b) overlaps when b starts before a ends,
 *      so b is checked against the latest end of every interval before
 *      it if b is X, and of every X interval before it if b is S.
 *   2. tokens are unique per lock across all grants, readers included;
 *      and they increase in hold order between conflicting grants: an X
 *      grant's token is above every token of the intervals before it,
 *      an S grant's above every X token before it. Two readers' tokens
 *      may come in either order (they are granted side by side, and
 *      each is taken with its own CAS of the marks, in whatever order
 *      the two reach them).
 *
 * Both bounds of an interval are taken on the safe side (the header):
 * an interval never starts before, or ends after, its holder's hold was
 * valid, so two overlapping S intervals prove two readers inside at once.
 */
static void check_exclusion_and_tokens(struct analysis *an)
{
	for (size_t i = 1; i < an->ng; i++) {
		const struct grant *a = an->by_token[i - 1];
		const struct grant *b = an->by_token[i];
		an->check = CK_TOKENS;
		if (a->lock == b->lock && a->token == b->token)
			violation(an, "lock %s: token %llu granted twice (pids "
				      "%d in %s and %d in %s)",
				  lock_name(a->lock),
				  (unsigned long long)a->token, (int)a->pid,
				  lm_mode_name(a->mode), (int)b->pid,
				  lm_mode_name(b->mode));
	}
	struct grant **iv = malloc((an->ng + 1) * sizeof(*iv));
	struct s_edge *edge = malloc((2 * an->ng + 1) * sizeof(*edge));
	assert_non_null(iv);
	assert_non_null(edge);
	for (int lock = 0; lock < NLOCKS; lock++) {
		size_t n = 0, ne = 0;
		for (size_t i = 0; i < an->ng; i++) {
			struct grant *g = &an->g[i];
			if (g->lock != lock)
				continue;
			if (g->start >= g->end) {
				an->empty++;
				an->r_empty += g->mode != LM_MODE_X;
				continue;
			}
			iv[n++] = g;
			if (g->mode != LM_MODE_X) {
				edge[ne++] = (struct s_edge){g->start, +1};
				edge[ne++] = (struct s_edge){g->end, -1};
			}
		}
		qsort(iv, n, sizeof(*iv), cmp_start);
		/* Of the intervals before the current one: the one that
		 * ends last, and the X one that ends last; the one with the
		 * highest token, and the X one with the highest token. */
		const struct grant *reach = NULL, *reach_x = NULL;
		const struct grant *top = NULL, *top_x = NULL;
		for (size_t i = 0; i < n; i++) {
			const struct grant *g = iv[i];
			bool x = g->mode == LM_MODE_X;
			const struct grant *o = x ? reach : reach_x;
			if (o != NULL && g->start < o->end)
				report_overlap(an, lock, g, o);
			o = x ? top : top_x;
			if (o != NULL && g->token <= o->token)
				report_order(an, lock, g, o);
			if (reach != NULL &&
			    g->start - reach->end > an->longest_idle_ns) {
				an->longest_idle_ns = g->start - reach->end;
				an->longest_idle_lock = lock;
			}
			if (reach == NULL || g->end > reach->end)
				reach = g;
			if (top == NULL || g->token > top->token)
				top = g;
			if (x && (reach_x == NULL || g->end > reach_x->end))
				reach_x = g;
			if (x && (top_x == NULL || g->token > top_x->token))
				top_x = g;
		}
		/* Readers inside at once. */
		qsort(edge, ne, sizeof(*edge), cmp_edge);
		unsigned inside = 0;
		for (size_t i = 0; i < ne; i++) {
			if (edge[i].d > 0) {
				an->s_joined += inside > 0;
				inside++;
				if (inside > an->s_max[lock])
					an->s_max[lock] = inside;
			} else {
				inside--;
			}
		}
	}
	free(edge);
	free(iv);
}

/*
 * 4: a rejected writer's lease had ended, by its own clock, and the
 * token that beat it was granted. Likewise for readers: a read that saw
 * a token above the reader's own in the store (a writer granted after
 * the reader had written) happened after the reader's lease had ended,
 * and that token was granted, to a writer. This is check 1 seen from
 * the store: a writer cannot write while a reader inside its lease
 * reads, whatever the interval bounds say.
 */
static void check_rejections(struct analysis *an)
{
	for (size_t i = 0; i < an->ng; i++) {
		const struct grant *g = &an->g[i];
		if (g->stale_read) {
			const struct grant *w =
				find_token(an, g->lock, g->highest);
			if (g->t_read < g->valid_until)
				violation(an, "lock %s: reader pid %d token %llu "
					      "saw token %llu in the store at "
					      "%lld, %lld us before its lease "
					      "ended",
					  lock_name(g->lock), (int)g->pid,
					  (unsigned long long)g->token,
					  (unsigned long long)g->highest,
					  (long long)g->t_read,
					  (long long)(g->valid_until -
						      g->t_read) /
						  1000);
			if (w == NULL || w->mode != LM_MODE_X)
				violation(an, "lock %s: reader pid %d token %llu "
					      "saw token %llu in the store, "
					      "which was %s",
					  lock_name(g->lock), (int)g->pid,
					  (unsigned long long)g->token,
					  (unsigned long long)g->highest,
					  w == NULL ? "never granted"
						    : "granted to a reader");
		}
		if (!g->rejected)
			continue;
		if (g->t_write < g->valid_until)
			violation(an, "lock %s: pid %d token %llu rejected at "
				      "%lld, %lld us before its lease ended",
				  lock_name(g->lock), (int)g->pid,
				  (unsigned long long)g->token,
				  (long long)g->t_write,
				  (long long)(g->valid_until - g->t_write) /
					  1000);
		if (g->highest <= g->token ||
		    find_token(an, g->lock, g->highest) == NULL)
			violation(an, "lock %s: pid %d token %llu rejected "
				      "for token %llu, which was never granted",
				  lock_name(g->lock), (int)g->pid,
				  (unsigned long long)g->token,
				  (unsigned long long)g->highest);
	}
}

/*
 * Was a server among the tables of g's grant killed between the start of
 * its acquire and its release? (The kill's lockctl ran over [t, aux]:
 * the server died somewhere in there.)
 */
static bool table_restarted_under(const struct analysis *an,
				  const struct grant *g)
{
	/* An ATTEMPT record follows every ACQUIRED one unless the client
	 * was killed in between, and then it never released. */
	int64_t from = g->attempt != 0
			       ? g->attempt
			       : g->start - (int64_t)WAIT_MS * 2 * 1000000;
	for (size_t i = 0; i < an->nft; i++) {
		const struct fault *f = &an->ft[i];
		if (f->type == REC_SRV_KILLED &&
		    (g->mask & (1u << f->server)) && f->aux >= from &&
		    f->t <= g->t_release)
			return true;
	}
	return false;
}

/*
 * 4b: what the library told each holder about its lease agrees with
 * what happened to it.
 *
 *   - A release that reports LM_ELEASELOST comes after the lease's
 *     valid_until, unless a server of the grant was killed between the
 *     start of its acquire and its release: a release counts only the
 *     tables still in the life they were granted in, so a grant of two
 *     tables (taken while the third server was out) that lost one to a
 *     restart says LM_ELEASELOST early. Nobody else could take the lock
 *     meanwhile: the restarted server stays out while its old leases run.
 *     Otherwise only an expired lease (taken over, or expired by its
 *     server) loses a holder its tables.
 *   - A grant taken over before its holder released it (the next
 *     conflicting grant's ACQUIRED hook ran before this one's write or
 *     read hook, and the release comes after that hook) reports
 *     LM_ELEASELOST: the successor replaced its owner words (an X
 *     holder's) or reset its group (a reader's) on a majority. The next
 *     conflicting grant of an X grant is the next grant by token; of a
 *     reader's, the next X grant by token (other readers join it).
 *   - The grant after an X grant that was taken over, or whose holder
 *     was killed holding it (killed, no write record: it had not yet
 *     released), carries LM_GRANT_RECOVERED, whatever its mode: it found
 *     the previous holder's slots expired or abandoned (a grant lost to
 *     a kill before its own hook in between would itself have been
 *     abandoned). Not after a reader's: a reader changes nothing, and an
 *     expired or dead reader's group is simply reset or left.
 */
static void check_lease_reports(struct analysis *an)
{
	for (size_t i = 0; i < an->ng; i++) {
		const struct grant *g = an->by_token[i];
		bool x = g->mode == LM_MODE_X;
		const struct grant *next = NULL;
		for (size_t j = i + 1; j < an->ng; j++) {
			if (an->by_token[j]->lock != g->lock)
				break;
			if (x || an->by_token[j]->mode == LM_MODE_X) {
				next = an->by_token[j];
				break;
			}
		}
		if (g->t_release != 0 && g->release_rc == LM_ELEASELOST &&
		    g->t_release < g->valid_until) {
			if (table_restarted_under(an, g))
				an->releases_lost_restart++;
			else
				violation(an, "lock %s: pid %d token %llu: "
					      "release said the lease was lost "
					      "%lld us before it ended",
					  lock_name(g->lock), (int)g->pid,
					  (unsigned long long)g->token,
					  (long long)(g->valid_until -
						      g->t_release) /
						  1000);
		}
		if (next == NULL)
			continue;
		int64_t t_access = x ? g->t_write : g->t_read;
		bool taken_over = t_access != 0 && next->start < t_access;
		if (taken_over && g->t_release != 0 && g->release_rc == 0)
			violation(an, "lock %s: pid %d token %llu (%s) released "
				      "cleanly although token %llu (pid %d, %s) "
				      "was granted before its %s",
				  lock_name(g->lock), (int)g->pid,
				  (unsigned long long)g->token,
				  lm_mode_name(g->mode),
				  (unsigned long long)next->token,
				  (int)next->pid, lm_mode_name(next->mode),
				  x ? "write" : "read");
		bool died_holding = g->death != 0 && g->t_write == 0;
		if (x && (taken_over || died_holding) &&
		    !(next->flags & LM_GRANT_RECOVERED))
			violation(an, "lock %s: token %llu (pid %d, %s) "
				      "follows token %llu (pid %d), which was "
				      "%s, but is not flagged "
				      "LM_GRANT_RECOVERED",
				  lock_name(g->lock),
				  (unsigned long long)next->token,
				  (int)next->pid, lm_mode_name(next->mode),
				  (unsigned long long)g->token, (int)g->pid,
				  taken_over ? "taken over" : "killed holding");
	}
}

struct store_ctx {
	struct analysis *an;
	int lock;
	uint64_t last;
};

static int store_each(const struct fs_record *rec, void *arg)
{
	struct store_ctx *sc = arg;
	struct analysis *an = sc->an;
	struct grant *g = find_grant(an, (int32_t)rec->pid, sc->lock,
				     rec->token);
	if (rec->type == FS_REC_REJECT) {
		an->store_rejected++;
		if (g != NULL)
			g->reject_in_store = true;
		if (rec->token >= rec->highest)
			violation(an, "store %s: seq %llu rejected token %llu "
				      "with highest %llu",
				  lock_name(sc->lock),
				  (unsigned long long)rec->seq,
				  (unsigned long long)rec->token,
				  (unsigned long long)rec->highest);
		return 0;
	}
	an->store_accepted++;
	if (rec->token < sc->last)
		violation(an, "store %s: seq %llu accepted token %llu after "
			      "token %llu",
			  lock_name(sc->lock), (unsigned long long)rec->seq,
			  (unsigned long long)rec->token,
			  (unsigned long long)sc->last);
	if (rec->token > sc->last)
		sc->last = rec->token;
	if (g == NULL) {
		violation(an, "store %s: seq %llu from pid %u token %llu, "
			      "which that pid was never granted",
			  lock_name(sc->lock), (unsigned long long)rec->seq,
			  rec->pid, (unsigned long long)rec->token);
		return 0;
	}
	if (g->mode != LM_MODE_X)
		violation(an, "store %s: pid %u token %llu is a reader's (%s), "
			      "but the store has a write of it",
			  lock_name(sc->lock), rec->pid,
			  (unsigned long long)rec->token,
			  lm_mode_name(g->mode));
	if (g->in_store)
		violation(an, "store %s: pid %u token %llu accepted twice",
			  lock_name(sc->lock), rec->pid,
			  (unsigned long long)rec->token);
	g->in_store = true;
	if (!g->wrote) {
		an->store_unacked++;
		/* Accepted, but no WROTE record: only a kill between
		 * fs_write and the hook's write() explains that. */
		if (g->death == 0)
			violation(an, "store %s: pid %u token %llu accepted, "
				      "but the client (not killed) recorded "
				      "%s",
				  lock_name(sc->lock), rec->pid,
				  (unsigned long long)rec->token,
				  g->rejected ? "a rejection" : "no write");
	}
	return 0;
}

/* 3: the stores' logs agree with the audit. */
static void check_stores(struct analysis *an, struct run *r)
{
	for (int lock = 0; lock < NLOCKS; lock++) {
		fs_store *st;
		int rc = fs_open(r->store_path[lock], FS_RDONLY, &st);
		if (rc != 0)
			fail_msg("fs_open %s: %s", r->store_path[lock],
				 fs_strerror(rc));
		struct store_ctx sc = {.an = an, .lock = lock};
		rc = fs_read(st, store_each, &sc);
		if (rc != 0)
			violation(an, "fs_read %s: %s", r->store_path[lock],
				  fs_strerror(rc));
		fs_close(st);
	}
	for (size_t i = 0; i < an->ng; i++) {
		const struct grant *g = &an->g[i];
		if (g->wrote && !g->in_store)
			violation(an, "lost update: lock %s pid %d token %llu "
				      "was acknowledged but is not in the "
				      "store",
				  lock_name(g->lock), (int)g->pid,
				  (unsigned long long)g->token);
		if (g->rejected && !g->reject_in_store)
			violation(an, "lock %s pid %d token %llu: rejected, "
				      "but the store logged no such rejection",
				  lock_name(g->lock), (int)g->pid,
				  (unsigned long long)g->token);
	}
}

/* 5: with every client gone, the tables hold nothing. */
static void check_tables_empty(struct analysis *an, const char *region)
{
	struct lm_region reg;
	char why[256] = "";
	int rc = lm_region_attach(&reg, region, why, sizeof(why));
	if (rc != 0)
		fail_msg("attach %s: %s (%s)", region, lm_strerror(rc), why);
	int64_t deadline = harness_now_ms() + 5000;
	char what[256];
	for (;;) {
		what[0] = '\0';
		uint32_t n = lm_names_in_use(&reg);
		for (uint32_t lock = 0; lock < n && !what[0]; lock++) {
			for (unsigned i = 0; i < LM_NSERVERS; i++) {
				uint64_t w = atomic_load(
					&lm_slot_of(&reg, i, lock)->owner);
				if (LM_OWNER_SESSION(w) != 0) {
					snprintf(what, sizeof(what),
						 "lock %u on table %u is held "
						 "by session %u",
						 lock, i,
						 LM_OWNER_SESSION(w) - 1);
					break;
				}
			}
		}
		uint32_t ns = lm_sessions_in_use(&reg);
		for (uint32_t s = 0; s < ns && !what[0]; s++) {
			uint64_t w = atomic_load(&reg.sessions[s].life);
			if (LM_SESS_STATE(w) != LM_SESS_FREE)
				snprintf(what, sizeof(what),
					 "session %u (pid %d) is in state %u",
					 s, (int)LM_SESS_PID(w),
					 LM_SESS_STATE(w));
		}
		if (!what[0])
			break;
		if (harness_now_ms() > deadline) {
			violation(an, "5 s after every client was gone, %s",
				  what);
			break;
		}
		harness_nap_us(1000);
	}
	lm_region_detach(&reg);
}

/* ---- availability (6, 7) ------------------------------------------ */

/* Did the client of attempt a sit frozen during it? */
static bool attempt_frozen(const struct analysis *an, const struct attempt *a)
{
	size_t lo = 0, hi = an->nfrz;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (an->frz[mid].pid < a->pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < an->nfrz && an->frz[i].pid == a->pid; i++)
		if (an->frz[i].from < a->end && an->frz[i].to > a->start)
			return true;
	return false;
}

/* Did the monitor prove two usable servers over all of [lo, hi]? */
static bool quorum_proven(const struct analysis *an, int64_t lo, int64_t hi)
{
	if (!an->mon_done || lo < an->mon_first || hi > an->mon_last)
		return false;
	for (size_t i = 0; i < an->nqgap; i++)
		if (lo < an->qgap[i].to && hi > an->qgap[i].from)
			return false;
	return true;
}

static const char *outcome_name(enum outcome o)
{
	switch (o) {
	case OUT_GRANTED:
		return "granted";
	case OUT_TIMEDOUT:
		return "LM_ETIMEDOUT";
	case OUT_NOQUORUM:
		return "LM_ENOQUORUM";
	default:
		return "another error";
	}
}

/* What happened to the service over [from, to]: the driver's faults
 * and what the monitor saw. */
static void print_context(const struct analysis *an, int64_t from, int64_t to)
{
	for (size_t i = 0; i < an->nft; i++) {
		const struct fault *f = &an->ft[i];
		if (f->t < from || f->t > to)
			continue;
		switch (f->type) {
		case REC_SRV_KILLED:
			fprintf(stderr, "chaos:     %lld ms: server %d "
					"killed%s (lockctl took %lld ms)\n",
				rel_ms(an, f->t), f->server,
				f->wipe ? " --wipe" : "",
				(long long)((f->aux - f->t) / 1000000));
			break;
		case REC_SRV_UP:
			fprintf(stderr, "chaos:     %lld ms: server %d counts "
					"again (epoch %lld)\n",
				rel_ms(an, f->t), f->server, (long long)f->aux);
			break;
		case REC_SUP_KILLED:
			fprintf(stderr, "chaos:     %lld ms: lockmgrd pid %d "
					"killed\n",
				rel_ms(an, f->t), (int)f->pid);
			break;
		case REC_SUP_ADOPTED:
			fprintf(stderr, "chaos:     %lld ms: lockmgrd pid %d "
					"runs the region (started at %lld "
					"ms)\n",
				rel_ms(an, f->t), (int)f->pid,
				rel_ms(an, f->aux));
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; i < an->nnoq; i++) {
		const struct span *q = &an->noq[i];
		if (q->from >= to || q->to <= from)
			continue;
		char down[32] = "", hung[32] = "";
		for (unsigned k = 0; k < LM_NSERVERS; k++) {
			if (q->why & (1u << k))
				snprintf(down + strlen(down),
					 sizeof(down) - strlen(down), " %u", k);
			if (q->why & (1u << (4 + k)))
				snprintf(hung + strlen(hung),
					 sizeof(hung) - strlen(hung), " %u", k);
		}
		fprintf(stderr, "chaos:     %lld..%lld ms: the monitor saw "
				"fewer than two usable servers (for %lld ms; "
				"not UP:%s; stale heartbeat:%s, up to %d ms "
				"old)\n",
			rel_ms(an, q->from), rel_ms(an, q->to),
			(long long)(q->seen / 1000000), down[0] ? down : " -",
			hung[0] ? hung : " -", (int)q->age);
	}
	for (size_t i = 0; i < an->nqgap; i++)
		if (an->qgap[i].from < to && an->qgap[i].to > from)
			fprintf(stderr, "chaos:     %lld..%lld ms: the monitor "
					"could not prove two usable servers\n",
				rel_ms(an, an->qgap[i].from),
				rel_ms(an, an->qgap[i].to));
}

/* Print up to max of the counted attempts that failed, with the
 * service's faults around each. */
static void report_failures(const struct analysis *an, unsigned max)
{
	unsigned shown = 0;
	for (size_t i = 0; i < an->nat && shown < max; i++) {
		const struct attempt *a = &an->at[i];
		if (a->outcome == OUT_GRANTED || attempt_frozen(an, a))
			continue;
		fprintf(stderr, "chaos:   pid %d lock %s in %s: %s after %lld "
				"ms (%lld..%lld ms); around it:\n",
			(int)a->pid, lock_name(a->lock), lm_mode_name(a->mode),
			outcome_name(a->outcome),
			(long long)((a->end - a->start) / 1000000),
			rel_ms(an, a->start), rel_ms(an, a->end));
		print_context(an, a->start - INT64_C(2000000000),
			      a->end + INT64_C(100000000));
		shown++;
	}
}

/*
 * 6 and 7: count the outcomes of the acquires whose client was not
 * frozen during them (the header says why), and check every "no quorum"
 * against the monitor's proofs. The ratio itself is asserted by the
 * case, after the summary.
 */
static void check_availability(struct analysis *an)
{
	unsigned noq_shown = 0;
	for (size_t i = 0; i < an->nat; i++) {
		const struct attempt *a = &an->at[i];
		an->att_total++;
		if (attempt_frozen(an, a)) {
			an->att_frozen++;
			an->att_frozen_failed += a->outcome != OUT_GRANTED;
			continue;
		}
		an->att_counted++;
		an->r_att_counted += a->mode != LM_MODE_X;
		switch (a->outcome) {
		case OUT_GRANTED:
			an->att_ok++;
			an->r_att_ok += a->mode != LM_MODE_X;
			if (a->end - a->start > an->longest_granted_ns)
				an->longest_granted_ns = a->end - a->start;
			break;
		case OUT_TIMEDOUT:
			an->att_timedout++;
			break;
		case OUT_NOQUORUM: {
			an->att_noquorum++;
			/* It decided at or after its deadline. */
			int64_t lo = a->start + (int64_t)WAIT_MS * 1000000;
			if (lo > a->end)
				lo = a->start;
			bool proven = quorum_proven(an, lo, a->end);
			if (!proven)
				an->noquorum_unproven++;
			if (noq_shown++ < 10) {
				fprintf(stderr, "chaos: pid %d lock %s in %s: "
						"LM_ENOQUORUM (acquire "
						"%lld..%lld ms)%s; around "
						"it:\n",
					(int)a->pid, lock_name(a->lock),
					lm_mode_name(a->mode),
					rel_ms(an, a->start),
					rel_ms(an, a->end),
					proven ? ", while two servers were "
						 "certainly usable"
					       : "");
				print_context(an,
					      a->start - INT64_C(2000000000),
					      a->end + INT64_C(100000000));
			}
			if (proven)
				violation(an, "pid %d lock %s: LM_ENOQUORUM "
					      "decided in %lld..%lld ms, while "
					      "the monitor saw two servers "
					      "usable throughout",
					  (int)a->pid, lock_name(a->lock),
					  rel_ms(an, lo), rel_ms(an, a->end));
			break;
		}
		default:
			an->att_other++;
			violation(an, "pid %d lock %s in %s: acquire failed: "
				      "%s",
				  (int)a->pid, lock_name(a->lock),
				  lm_mode_name(a->mode), lm_strerror(a->rc));
			break;
		}
	}
	if (!an->mon_done)
		violation(an, "the monitor left no summary record");
}

/*
 * The driver never has two servers down at once: say what the monitor
 * saw each time fewer than two were usable. A killed server normally
 * counts again within about 500 ms (restart delay, then its own or its
 * peers' leases): say what held up any that took longer than
 * LONG_OUT_MS.
 */
static void report_service_events(const struct analysis *an)
{
	for (size_t i = 0; i < an->nnoq && i < 10; i++) {
		fprintf(stderr, "chaos: fewer than two usable servers at "
				"%lld..%lld ms; around it:\n",
			rel_ms(an, an->noq[i].from), rel_ms(an, an->noq[i].to));
		print_context(an, an->noq[i].from - INT64_C(2000000000),
			      an->noq[i].to + INT64_C(500000000));
	}
	for (size_t i = 0; i < an->nft; i++) {
		const struct fault *up = &an->ft[i];
		if (up->type != REC_SRV_UP)
			continue;
		for (size_t j = i; j-- > 0;) {
			const struct fault *k = &an->ft[j];
			if (k->type != REC_SRV_KILLED ||
			    k->server != up->server)
				continue;
			if (up->t - k->t > (int64_t)LONG_OUT_MS * 1000000) {
				fprintf(stderr, "chaos: server %d was out for "
						"%lld ms (killed%s at %lld "
						"ms); around it:\n",
					up->server,
					(long long)((up->t - k->t) / 1000000),
					k->wipe ? " --wipe" : "",
					rel_ms(an, k->t));
				print_context(an, k->t - INT64_C(2000000000),
					      up->t + INT64_C(500000000));
			}
			break;
		}
	}
}

/* ---- the case ----------------------------------------------------- */

static void chaos(void)
{
	int seconds = env_int("CHAOS_SECONDS", 60);
	if (seconds < 1 || seconds > MAX_SECONDS)
		fail_msg("CHAOS_SECONDS=%d: must be 1..%d (the case times out "
			 "after 3600 s)", seconds, MAX_SECONDS);
	/* The servers a killed supervisor leaves are reparented to the
	 * case: become their reaper, so that they are reaped here. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		fail_msg("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
	struct run *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->down_server = -1;
	r->seed = (unsigned)env_int("CHAOS_SEED",
				    (int)((unsigned)getpid() ^
					  (unsigned)harness_now_ns()) &
					    0x7fffffff);
	fprintf(stderr, "chaos: %d s, %d clients, %d locks, seed %u "
			"(CHAOS_SEED to replay the driver's choices)\n",
		seconds, NCLIENTS, NLOCKS, r->seed);

	harness_region_name(r->region, sizeof(r->region), "chaos");
	r->sup_pid = start_lockmgrd(r->region);
	harness_wait_servers_up(r->region, r->sup_pid, 15000);
	char why[256] = "";
	int rc = lm_region_attach(&r->reg, r->region, why, sizeof(why));
	if (rc != 0)
		fail_msg("attach %s: %s (%s)", r->region, lm_strerror(rc), why);
	harness_tmpdir(r->dir, sizeof(r->dir));
	snprintf(r->audit_path, sizeof(r->audit_path), "%s/audit.bin", r->dir);
	snprintf(r->lockctl_err, sizeof(r->lockctl_err), "%s/lockctl.err",
		 r->dir);
	for (int lock = 0; lock < NLOCKS; lock++) {
		snprintf(r->store_path[lock], sizeof(r->store_path[lock]),
			 "%s/store-%d", r->dir, lock);
		/* Create the stores before any client races to. */
		fs_store *st;
		rc = fs_open(r->store_path[lock], FS_CREATE, &st);
		if (rc != 0)
			fail_msg("fs_open %s: %s", r->store_path[lock],
				 fs_strerror(rc));
		fs_close(st);
	}
	r->audit_fd = open(r->audit_path,
			   O_APPEND | O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (r->audit_fd < 0)
		fail_msg("open %s: %s", r->audit_path, strerror(errno));
	r->sh = harness_shared(sizeof(*r->sh));

	struct monitor_args ma = {.sh = r->sh, .region = r->region,
				  .audit_path = r->audit_path};
	r->monitor_pid = harness_fork(monitor_main, &ma);
	HARNESS_WAIT_FOR(atomic_load(&r->sh->monitor_ready), 5000,
			 "the monitor never started polling the servers");

	int64_t t_start = harness_now_ns();
	for (int i = 0; i < NCLIENTS; i++)
		spawn(r, i, i % NLOCKS);

	int64_t end = t_start + (int64_t)seconds * 1000000000;
	r->next_server_kill_ns =
		t_start + ms_in(r, SERVER_KILL_MIN_MS, SERVER_KILL_MAX_MS);
	r->next_sup_kill_ns = t_start + ms_in(r, SUP_KILL_MIN_MS,
					      SUP_KILL_MAX_MS);
	int64_t next_action = harness_now_ns() + 20000000;
	int64_t next_exit_check = next_action;
	int64_t next_orphan_scan = next_action;
	for (;;) {
		int64_t now = harness_now_ns();
		watch_faults(r, now);
		/* The run ends with no fault in flight: a supervisor runs
		 * the region (so dead clients are freed) and all three
		 * servers count. */
		if (now >= end && !r->adopting && r->down_server < 0)
			break;
		for (int i = 0; i < NCLIENTS; i++)
			if (r->cl[i].state == CL_FROZEN &&
			    r->cl[i].thaw_at_ns <= now)
				do_thaw(r, i, false);
		if (now >= next_exit_check) {
			check_exits(r);
			check_service(r);
			next_exit_check = now + 20000000;
		}
		if (now >= next_orphan_scan) {
			reap_orphans(r);
			next_orphan_scan = now + 100000000;
		}
		if (now < end) {
			service_faults(r, harness_now_ns());
			if (now >= next_action) {
				act(r);
				next_action = harness_now_ns() +
					      (20 + (int64_t)rnd(r, 61)) *
						      1000000;
			}
		}
		harness_nap_us(1000); /* pacing, not synchronisation */
	}

	/* Stop: flag, wake the frozen, then every client must end on its
	 * own (its current acquire waits at most WAIT_MS). */
	atomic_store(&r->sh->stop, 1);
	for (int i = 0; i < NCLIENTS; i++)
		if (r->cl[i].state == CL_FROZEN)
			do_thaw(r, i, true);
	for (int i = 0; i < NCLIENTS; i++)
		harness_expect_exit(r->cl[i].pid, 30000, 0, "chaos client");
	atomic_store(&r->sh->monitor_stop, 1);
	harness_expect_exit(r->monitor_pid, 5000, 0, "monitor");
	int64_t t_run = harness_now_ns() - t_start;
	close(r->audit_fd);

	struct analysis an = {.t0 = t_start};
	load_audit(&an, r->audit_path);
	check_exclusion_and_tokens(&an);
	an.check = CK_REJECT;
	check_rejections(&an);
	an.check = CK_LEASE;
	check_lease_reports(&an);
	an.check = CK_STORE;
	check_stores(&an, r);
	an.check = CK_TABLES;
	check_tables_empty(&an, r->region);
	an.check = CK_AVAIL;
	check_availability(&an);
	report_service_events(&an);
	an.check = CK_AUDIT;
	uint32_t audit_errors = atomic_load(&r->sh->audit_errors);
	if (audit_errors != 0)
		violation(&an, "%u audit records could not be written",
			  audit_errors);
	if (r->unexpected_exits != 0)
		violation(&an, "%u clients ended on their own",
			  r->unexpected_exits);

	fprintf(stderr,
		"chaos: %lld s, %d+ clients, %d locks: %zu grants, %u writes, "
		"%u kills (%u holding), %u freezes (%u holding: %u thawed, "
		"%u of them taken over), %u rejections, %u leases lost at "
		"release (%u under a server restart), %u recovered grants, "
		"%u empty intervals, store %u accepted (%u unacknowledged) "
		"%u rejected, longest idle lock %lld ms (%s), %u violations\n",
		(long long)(t_run / 1000000000), NCLIENTS, NLOCKS, an.ng,
		an.writes, r->kills, r->kills_holding, r->freezes,
		r->cs_freezes, r->cs_thawed, r->takeovers, an.rejections,
		an.releases_lost, an.releases_lost_restart, an.recovered,
		an.empty, an.store_accepted, an.store_unacked,
		an.store_rejected, (long long)(an.longest_idle_ns / 1000000),
		lock_name(an.longest_idle_lock), an.violations);
	fprintf(stderr,
		"chaos: availability: %u acquires attempted, %u counted (%u "
		"overlapped a freeze of their client, %u of those failed): %u "
		"granted (%.3f%%), "
		"%u timed out, %u no quorum (%u not provably with two servers "
		"up), %u other errors; longest granted acquire %lld ms. "
		"Faults: %u server kills (%u wipes), longest out %lld ms "
		"(wiped: %lld ms); %u supervisor kills, longest adoption %lld "
		"ms; %u orphaned servers reaped meanwhile. Fewer than two "
		"usable servers seen %zu times, longest %lld ms (at most %lld "
		"ms); longest unprovable stretch %lld ms in %llu polls\n",
		an.att_total, an.att_counted, an.att_frozen,
		an.att_frozen_failed, an.att_ok,
		an.att_counted ? 100.0 * an.att_ok / an.att_counted : 0.0,
		an.att_timedout, an.att_noquorum, an.noquorum_unproven,
		an.att_other, (long long)(an.longest_granted_ns / 1000000),
		r->server_kills, r->wipes,
		(long long)(r->longest_out_ns / 1000000),
		(long long)(r->longest_wiped_out_ns / 1000000), r->sup_kills,
		(long long)(r->longest_adopt_ns / 1000000), r->orphans, an.nnoq,
		(long long)(an.longest_noq_seen_ns / 1000000),
		(long long)(an.longest_noq_bound_ns / 1000000),
		(long long)(an.longest_qgap_ns / 1000000),
		(unsigned long long)an.mon_polls);
	unsigned s_max = 0, readers = 0;
	for (int lock = 0; lock < NLOCKS; lock++)
		s_max = an.s_max[lock] > s_max ? an.s_max[lock] : s_max;
	for (int i = 0; i < NCLIENTS; i++)
		readers += slot_mode(i) != LM_MODE_X;
	fprintf(stderr,
		"chaos: modes: %d of the %d clients read (S; per lock %d/%d/%d): "
		"%u reader grants of %zu, most readers inside at once %u "
		"(per lock %u/%u/%u), %u reader intervals began with another "
		"reader inside, %u empty; %u reads, %u stale (a zombie reader "
		"saw a later writer's token); %u reader kills (%u holding), %u "
		"readers frozen holding (%u taken over by a writer); readers' "
		"acquires: %u counted, %u granted\n",
		readers, NCLIENTS, READERS_OF[0], READERS_OF[1], READERS_OF[2],
		an.r_grants, an.ng, s_max, an.s_max[0], an.s_max[1],
		an.s_max[2], an.s_joined, an.r_empty, an.reads, an.stale_reads,
		r->r_kills, r->r_kills_holding, r->r_cs_freezes,
		r->r_takeovers, an.r_att_counted, an.r_att_ok);
	if (an.violations != 0) {
		fprintf(stderr, "chaos: violations by check:");
		for (int k = 0; k < CK_COUNT; k++)
			if (an.by_check[k] != 0)
				fprintf(stderr, " %s %u;", check_name[k],
					an.by_check[k]);
		fprintf(stderr, "\n");
	}
	assert_int_equal(an.violations, 0);

	/* Shared mode must have been tested: readers inside together. */
	if (s_max < 2)
		fail_msg("no two readers were ever inside a lock at once (%u "
			 "reader grants): shared mode was not tested",
			 an.r_grants);

	/*
	 * Liveness: with 16 clients on 3 locks there is always someone
	 * waiting, so a lock should never sit unused for long: a frozen
	 * holder's successor takes over just after its lease ends, a dead
	 * one's within milliseconds (by its lease while no supervisor
	 * runs), and a frozen waiter at the head of the queue is skipped
	 * within a server tick. Before waiters skipped a frozen head, locks
	 * sat idle for 750-1400 ms here.
	 */
	if (an.longest_idle_ns > INT64_C(500000000))
		fail_msg("lock %s sat unused for %lld ms while clients waited",
			 lock_name(an.longest_idle_lock),
			 (long long)(an.longest_idle_ns / 1000000));

	/* Availability: the project's target, with the defaults. */
	if ((uint64_t)an.att_ok * 100 <
	    (uint64_t)an.att_counted * AVAIL_TARGET_PCT) {
		fprintf(stderr, "chaos: failed acquires (first 10):\n");
		report_failures(&an, 10);
		fail_msg("only %u of %u waiting acquires were granted (%.3f%%, "
			 "want >= %d%%): %u timed out, %u found no quorum",
			 an.att_ok, an.att_counted,
			 100.0 * an.att_ok / an.att_counted, AVAIL_TARGET_PCT,
			 an.att_timedout, an.att_noquorum);
	}

	/*
	 * The run must have been meaningful. Rejections are reliable, not
	 * luck: about one action in three is a freeze of a client caught
	 * inside its critical section (the hook's in_cs flag), for 450-800
	 * ms, longer than its 300 ms lease plus the time a waiting
	 * successor needs to take the lock and write (~5 ms). A zombie that
	 * is thawed (not killed) after such a takeover presents its stale
	 * token and is rejected, unless it was stopped in the few
	 * microseconds between fs_write returning and its hook clearing
	 * in_cs. Readers the same way: a reader frozen inside for longer
	 * than its lease is taken over by a writer (the group's lease ends
	 * with the last reader's), and once thawed reads the writer's
	 * token in the store: a stale read. A 30 s run has ~100 such
	 * freezes and ~70 writers and ~25 readers taken over (each one a
	 * rejection or a stale read in practice); every freeze (and so
	 * every takeover) needs about 1 s of run. Server kills come every
	 * 1-5 s (at least one in four wiped) and supervisor kills every
	 * 10-20 s, so CHAOS_SECONDS below ~25 cannot be expected to pass
	 * these checks.
	 */
	if (an.ng <= 1000 || r->kills == 0 || r->freezes == 0 ||
	    r->takeovers == 0 || an.rejections == 0 || r->server_kills == 0 ||
	    r->wipes == 0 || r->sup_kills == 0 || an.att_counted == 0 ||
	    an.r_grants == 0 || r->r_takeovers == 0 || an.stale_reads == 0)
		fail_msg("the run was not meaningful: %zu grants (want > "
			 "1000), %u kills, %u freezes, %u takeovers, %u "
			 "rejections, %u server kills, %u wipes, %u supervisor "
			 "kills, %u acquires counted, %u reader grants, %u "
			 "readers taken over, %u stale reads (want > 0 each)",
			 an.ng, r->kills, r->freezes, r->takeovers,
			 an.rejections, r->server_kills, r->wipes,
			 r->sup_kills, an.att_counted, an.r_grants,
			 r->r_takeovers, an.stale_reads);

	harness_shared_free(r->sh, sizeof(*r->sh));
	free(an.g);
	free(an.k);
	free(an.by_key);
	free(an.by_token);
	free(an.at);
	free(an.frz);
	free(an.ft);
	free(an.qgap);
	free(an.noq);
	lm_region_detach(&r->reg);
	struct harness_lockmgrd d = {.pid = r->sup_pid};
	snprintf(d.region, sizeof(d.region), "%s", r->region);
	harness_lockmgrd_stop(&d);
	/* The servers outlived the supervisors that started them; as
	 * orphans of this case they are ours to reap now that the last
	 * supervisor has stopped them. */
	reap_all_orphans(r);
	free(r);
}

/* ---- a semaphore under the same faults ------------------------------
 *
 * SEM_WORKERS clients take slots of one semaphore of SEM_SLOTS slots
 * (300 ms leases, waits of 1000 ms), hold them for 0-150 ms renewing
 * every 100 ms, and release; the driver SIGKILLs them (and starts
 * replacements), SIGSTOPs them for 200-800 ms (past their lease, so that
 * a frozen holder's slot is taken over), and kills a lock server now and
 * then (only while all three are up). Each grant is recorded in shared
 * memory as an interval: from the return of lm_sem_acquire to its
 * valid_until_ns (moved on by each successful renew, and cut at the
 * release), published with one store once whole, before the holder
 * "uses" the slot. The check is the lock chaos's overlap accounting, per
 * slot and in total: no two intervals of one slot overlap and their
 * tokens increase in grant order, and at no instant are more than
 * SEM_SLOTS intervals open. Availability: how many acquires were tried
 * and how many granted.
 */
enum { SEM_WORKERS = 8, SEM_SLOTS = 3, SEM_MAX_RECS = 200000 };

struct sem_rec {
	int64_t begin_ns, end_ns;
	uint64_t token;
	int32_t slot, pid;
	_Atomic uint32_t ready;   /* 1 once the fields above are whole */
};

struct sem_shared {
	_Atomic int stop;
	_Atomic uint64_t attempts, grants, errors;
	_Atomic uint32_t nrec;
	struct sem_rec rec[SEM_MAX_RECS];
	uint32_t nkill;           /* the driver's: who it killed, when */
	struct {
		int32_t pid;
		int64_t t_ns;
	} kill[4096];
};

static struct sem_shared *ssh;
static char sem_region[LM_REGION_NAME_MAX + 2];

static void sem_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg ^ (unsigned)getpid();
	lm_client *c = NULL;
	int rc = lm_connect(sem_region, &c);
	if (rc != 0)
		fail_msg("lm_connect: %s", lm_strerror(rc));
	while (!atomic_load(&ssh->stop)) {
		lm_grant g;
		atomic_fetch_add(&ssh->attempts, 1);
		rc = lm_sem_acquire(c, "chaos-sem", SEM_SLOTS, 300, 1000, &g);
		if (rc != 0) {
			if (rc != LM_ETIMEDOUT && rc != LM_ENOQUORUM)
				atomic_fetch_add(&ssh->errors, 1);
			continue;
		}
		int64_t begin = harness_now_ns();
		atomic_fetch_add(&ssh->grants, 1);
		uint32_t k = atomic_fetch_add(&ssh->nrec, 1);
		struct sem_rec *sr = k < SEM_MAX_RECS ? &ssh->rec[k] : NULL;
		if (sr != NULL) {
			sr->begin_ns = begin;
			sr->end_ns = g.valid_until_ns;
			sr->token = g.token;
			sr->slot = lm_sem_slot(&g);
			sr->pid = getpid();
			atomic_store(&sr->ready, 1);
		}
		int64_t until = begin + (int64_t)(rand_r(&seed) % 150) * 1000000;
		bool lost = false;
		while (!lost && harness_now_ns() < until) {
			int64_t next = harness_now_ns() + 100000000;
			while (harness_now_ns() < next && harness_now_ns() < until)
				harness_nap_us(2000);
			if (harness_now_ns() >= until)
				break;
			/* The end only moves with a renew that succeeded:
			 * past its valid_until, a holder uses nothing. */
			if (harness_now_ns() >= g.valid_until_ns ||
			    lm_renew(c, &g, 300) != 0)
				lost = true;
			else if (sr != NULL)
				sr->end_ns = g.valid_until_ns;
		}
		int64_t end = harness_now_ns();
		if (sr != NULL && end < sr->end_ns)
			sr->end_ns = end;
		lm_release(c, &g);
	}
	lm_disconnect(c);
}

static int cmp_sem_begin(const void *a, const void *b)
{
	const struct sem_rec *x = *(struct sem_rec *const *)a,
			     *y = *(struct sem_rec *const *)b;
	return x->begin_ns < y->begin_ns ? -1 : x->begin_ns > y->begin_ns;
}

/* Sweep events: +1 at a begin, -1 at an end (ends first at a tie: an
 * interval that ends where the next begins does not overlap it). */
struct sem_ev {
	int64_t t;
	int d;
};

static int cmp_sem_ev(const void *a, const void *b)
{
	const struct sem_ev *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->d - y->d;
}

static void semaphore_chaos(void)
{
	int seconds = env_int("SEM_CHAOS_SECONDS", 10);
	if (seconds < 1 || seconds > MAX_SECONDS)
		fail_msg("SEM_CHAOS_SECONDS=%d: must be 1..%d", seconds,
			 MAX_SECONDS);
	unsigned seed = (unsigned)env_int(
		"CHAOS_SEED",
		(int)((unsigned)getpid() ^ (unsigned)harness_now_ns()) &
			0x7fffffff);
	fprintf(stderr, "semaphore chaos: %d s, %d clients, %d slots, seed "
			"%u\n", seconds, SEM_WORKERS, SEM_SLOTS, seed);
	const unsigned seed0 = seed;
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "semchaos", NULL);
	snprintf(sem_region, sizeof(sem_region), "%s", d.region);
	struct lm_region reg;
	harness_attach(d.region, &reg);
	ssh = harness_shared(sizeof(*ssh));
	pid_t w[SEM_WORKERS];
	int64_t thaw[SEM_WORKERS] = {0};
	for (int i = 0; i < SEM_WORKERS; i++)
		w[i] = harness_fork(sem_worker, (void *)(uintptr_t)i);
	unsigned kills = 0, freezes = 0, server_kills = 0;
	int64_t end = harness_now_ms() + seconds * 1000;
	int64_t next_server = harness_now_ms() + 1500 + rand_r(&seed) % 1500;
	while (harness_now_ms() < end) {
		harness_nap_us(50000 + rand_r(&seed) % 150000);
		int64_t now = harness_now_ms();
		for (int i = 0; i < SEM_WORKERS; i++)
			if (thaw[i] != 0 && now >= thaw[i]) {
				kill(w[i], SIGCONT);
				thaw[i] = 0;
			}
		int i = (int)(rand_r(&seed) % SEM_WORKERS);
		unsigned what = rand_r(&seed) % 4;
		if (what == 0 && thaw[i] == 0) {
			/* A dead holder uses nothing: its interval ends here
			 * (before the kill, so before any death the
			 * supervisor could free a slot on). */
			if (ssh->nkill < 4096) {
				ssh->kill[ssh->nkill].pid = w[i];
				ssh->kill[ssh->nkill++].t_ns = harness_now_ns();
			}
			kill(w[i], SIGKILL);
			harness_reap(w[i], 5000, "a killed semaphore client");
			w[i] = harness_fork(sem_worker, (void *)(uintptr_t)i);
			kills++;
		} else if (what == 1 && thaw[i] == 0) {
			kill(w[i], SIGSTOP);
			thaw[i] = now + 200 + rand_r(&seed) % 600;
			freezes++;
		}
		bool all_up = true;
		for (unsigned j = 0; j < LM_NSERVERS; j++)
			all_up = all_up &&
				 harness_server_state(&reg, j) == LM_SRV_UP;
		if (now >= next_server && all_up) {
			char n[4];
			snprintf(n, sizeof(n), "%u", rand_r(&seed) % LM_NSERVERS);
			harness_lockctl(d.region, "server", "kill", n, NULL);
			server_kills++;
			next_server = now + 1500 + rand_r(&seed) % 1500;
		}
	}
	atomic_store(&ssh->stop, 1);
	for (int i = 0; i < SEM_WORKERS; i++)
		if (thaw[i] != 0)
			kill(w[i], SIGCONT);
	for (int i = 0; i < SEM_WORKERS; i++)
		harness_expect_exit(w[i], 15000, 0, "a semaphore client");

	uint32_t n = atomic_load(&ssh->nrec);
	if (n > SEM_MAX_RECS)
		n = SEM_MAX_RECS;
	struct sem_rec **by = calloc(n + 1, sizeof(*by));
	struct sem_ev *ev = calloc(2 * (size_t)n + 1, sizeof(*ev));
	assert_non_null(by);
	assert_non_null(ev);
	uint32_t m = 0;
	for (uint32_t k = 0; k < n; k++)
		if (atomic_load(&ssh->rec[k].ready))
			by[m++] = &ssh->rec[k];
	for (uint32_t k = 0; k < m; k++)
		for (uint32_t j = 0; j < ssh->nkill; j++)
			if (ssh->kill[j].pid == by[k]->pid &&
			    ssh->kill[j].t_ns < by[k]->end_ns)
				by[k]->end_ns = ssh->kill[j].t_ns;
	qsort(by, m, sizeof(*by), cmp_sem_begin);
	unsigned violations = 0;
	for (int s = 0; s < SEM_SLOTS; s++) {
		const struct sem_rec *prev = NULL;
		for (uint32_t k = 0; k < m; k++) {
			const struct sem_rec *x = by[k];
			if (x->slot < 0 || x->slot >= SEM_SLOTS) {
				if (s == 0 && violations++ < 10)
					fprintf(stderr, "a grant of slot %d\n",
						x->slot);
				continue;
			}
			if (x->slot != s)
				continue;
			if (prev != NULL && x->begin_ns < prev->end_ns &&
			    violations++ < 10)
				fprintf(stderr, "slot %d: pid %d (token %llu) "
					"from %lld overlaps pid %d (token "
					"%llu) until %lld\n", s, x->pid,
					(unsigned long long)x->token,
					(long long)x->begin_ns, prev->pid,
					(unsigned long long)prev->token,
					(long long)prev->end_ns);
			if (prev != NULL && x->token <= prev->token &&
			    violations++ < 10)
				fprintf(stderr, "slot %d: token %llu after "
					"%llu\n", s,
					(unsigned long long)x->token,
					(unsigned long long)prev->token);
			prev = x;
		}
	}
	for (uint32_t k = 0; k < m; k++) {
		ev[2 * k] = (struct sem_ev){by[k]->begin_ns, +1};
		ev[2 * k + 1] = (struct sem_ev){by[k]->end_ns, -1};
	}
	qsort(ev, 2 * (size_t)m, sizeof(*ev), cmp_sem_ev);
	int open = 0, most = 0;
	for (uint32_t k = 0; k < 2 * m; k++) {
		open += ev[k].d;
		most = open > most ? open : most;
	}
	uint64_t att = atomic_load(&ssh->attempts),
		 gr = atomic_load(&ssh->grants);
	fprintf(stderr, "semaphore chaos: %llu acquires tried, %llu granted "
			"(%.1f%%), %u grants checked; %u clients killed, %u "
			"frozen, %u server kills; at most %d holders at once "
			"(%d slots)\n", (unsigned long long)att,
		(unsigned long long)gr, att ? 100.0 * (double)gr / (double)att
					    : 0.0,
		m, kills, freezes, server_kills, most, SEM_SLOTS);
	if (violations != 0)
		fail_msg("%u violations of a semaphore slot's exclusion or "
			 "token order (seed %u)", violations, seed0);
	if (most > SEM_SLOTS)
		fail_msg("%d holders with running leases at once of a "
			 "semaphore of %d slots (seed %u)", most, SEM_SLOTS,
			 seed0);
	if (atomic_load(&ssh->errors) != 0)
		fail_msg("%llu acquires failed other than by a timeout or "
			 "a lost quorum", (unsigned long long)atomic_load(
						  &ssh->errors));
	if (gr == 0 || gr * 2 < att)
		fail_msg("only %llu of %llu acquires granted",
			 (unsigned long long)gr, (unsigned long long)att);
	/* Nothing left behind: all the slots can be had at once. */
	lm_client *c;
	assert_int_equal(lm_connect(d.region, &c), 0);
	lm_grant g[SEM_SLOTS];
	for (int s = 0; s < SEM_SLOTS; s++) {
		int rc = lm_sem_acquire(c, "chaos-sem", SEM_SLOTS, 1000, 3000,
					&g[s]);
		if (rc != 0)
			fail_msg("after the run, slot %d of %d: %s", s,
				 SEM_SLOTS, lm_strerror(rc));
	}
	for (int s = 0; s < SEM_SLOTS; s++)
		lm_release(c, &g[s]);
	lm_disconnect(c);
	free(by);
	free(ev);
	harness_shared_free(ssh, sizeof(*ssh));
	lm_region_detach(&reg);
	harness_lockmgrd_stop(&d);
}

HARNESS_CASE(chaos, 3600)
HARNESS_CASE(semaphore_chaos, 300)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(chaos),
		harness_case(semaphore_chaos),
	};
	/* One case, by name (CHAOS_CASE=semaphore_chaos, say). */
	const char *only = getenv("CHAOS_CASE");
	struct CMUnitTest chosen[2];
	size_t n = 0;
	for (size_t k = 0; k < 2; k++)
		if (only == NULL || strcmp(only, tests[k].name) == 0)
			chosen[n++] = tests[k];
	return _cmocka_run_group_tests("test_chaos", chosen, n, NULL, NULL);
}
