/*
 * test_chaos.c - fenced clients under random SIGKILL / SIGSTOP / SIGCONT.
 *
 * At least CHAOS_CLIENTS fenced clients (examples/clients.h) take a few
 * locks round after round, each writing its token to the lock's fenced
 * store inside its critical section and appending what it did to an
 * audit file of its own making (fixed-size binary records, one write()
 * each, O_APPEND: records never interleave). Meanwhile the driver (the
 * case process) SIGKILLs clients and starts replacements, and SIGSTOPs
 * clients for 200-800 ms, often longer than their 300 ms lease, so that
 * zombies really happen. At the end the audit, the stores and the lock
 * tables are checked against DESIGN.md's safety invariants:
 *
 *   1. mutual exclusion: per lock, the intervals in which holders may
 *      have touched the resource never overlap;
 *   2. fencing tokens: unique per lock, and increasing in the order the
 *      holds happened;
 *   3. the store: accepted tokens never go down, and every write the
 *      store acknowledged (a WROTE audit record) is in it;
 *   4. a rejection only ever hits a holder whose lease had ended, and
 *      there is a newer grant that beat it;
 *   5. once every client is gone, no table holds anything and every
 *      session slot is free.
 *
 * CHAOS_SECONDS (default 30) sets the length, so CHAOS_SECONDS=600 is a
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
 *           (the write comes after the hook), so [start, end] covers
 *           every access.
 *   end   = min(valid_until_ns, the time in the grant's WROTE/REJECTED
 *           hook, the time in its RELEASED hook, the time just before
 *           the driver's kill() for a killed client). The write is the
 *           last access of a round, and its hook runs right after it.
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
 * The summary also prints the longest time a lock sat unused between two
 * holds. It is not asserted: a SIGSTOPped *waiter* at the head of a
 * lock's FIFO queue currently keeps every other waiter off the free lock
 * for as long as it is stopped (client/wait_queue.c, is_head), which
 * shows here as idle times near the longest freeze (~800 ms and more)
 * where frozen holders alone would give about one lease (300 ms).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "examples/clients.h"
#include "resource/store.h"
#include "shm/layout.h"
#include "shm/name_index.h"
#include "shm/region.h"

/* ---- parameters --------------------------------------------------- */

#define NLOCKS       3
#define NCLIENTS     16      /* alive at every moment (frozen included) */
#define TTL_MS       300
#define WAIT_MS      1000
#define MAX_FROZEN   (NCLIENTS / 2) /* so that the locks keep moving */
#define MAX_SECONDS  3000    /* the case's own timeout is 3600 s */

/* ---- the audit ---------------------------------------------------- */

enum rec_type {
	REC_ACQUIRED = 1, /* t: hook time; aux: valid_until_ns */
	REC_WROTE,        /* t: hook time; aux: the store's highest */
	REC_REJECTED,     /* t: hook time; aux: the store's highest */
	REC_RELEASED,     /* t: hook time; aux: lm_release's rc */
	REC_KILLED,       /* t: just before kill(); aux: after waitpid */
};

#define REC_MAGIC 0xc5u

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
	uint8_t flags;   /* ACQUIRED: lm_grant.flags */
	int32_t pid;
	uint64_t token;
	int64_t t;
	int64_t aux;
};
_Static_assert(sizeof(struct rec) == 32, "audit record size");

/* What the driver and the clients share (a MAP_SHARED mapping). */
struct cl_slot {
	_Atomic int32_t pid;
	_Atomic uint32_t in_cs;   /* hook: 1 after ACQUIRED, 0 after the
				   * write (set after token, release) */
	_Atomic uint64_t token;   /* the grant in_cs refers to */
};

struct shared {
	_Atomic int stop;
	_Atomic uint32_t audit_errors; /* short or failed audit writes */
	_Atomic uint64_t last_token[NLOCKS]; /* highest ACQUIRED token */
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
	int id;
	int hold_ms;
	int gap_ms;
};

/* The client process's own hook state. */
struct hook_ctx {
	int fd;
	int32_t pid;
	int lock;
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
	switch (ev) {
	case EV_ACQUIRED:
		r.type = REC_ACQUIRED;
		r.token = g->token;
		r.aux = g->valid_until_ns;
		r.flags = (uint8_t)g->flags;
		atomic_store(&cx->slot->token, g->token);
		atomic_store(&cx->slot->in_cs, 1);
		raise_max(&cx->sh->last_token[cx->lock], g->token);
		break;
	case EV_WROTE:
	case EV_REJECTED:
		r.type = ev == EV_WROTE ? REC_WROTE : REC_REJECTED;
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
}

static void client_main(void *arg)
{
	const struct spawn_args *a = arg;
	struct hook_ctx cx = {
		.pid = (int32_t)getpid(),
		.lock = a->lock,
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
		fail_msg("client %d (pid %d, %s): run_client: %s", a->id,
			 (int)cx.pid, spec.lock,
			 rc <= FS_ERR_LAST && rc >= FS_ERR_FIRST
				 ? fs_strerror(rc)
				 : lm_strerror(rc));
	close(cx.fd);
}

/* ---- the driver --------------------------------------------------- */

enum cl_state { CL_RUNNING, CL_FROZEN };

struct client {
	pid_t pid;
	int lock;
	enum cl_state state;
	int64_t thaw_at_ns;
	bool cs_freeze;        /* frozen while it held the lock */
	uint64_t cs_token;     /* ... with this token */
};

struct run {
	struct shared *sh;
	char region[LM_REGION_NAME_MAX + 2];
	char audit_path[300];
	char store_path[NLOCKS][300];
	struct client cl[NCLIENTS];
	int audit_fd;
	int next_id;
	unsigned seed;
	/* counters */
	unsigned kills, kills_holding, freezes, cs_freezes, cs_thawed;
	unsigned takeovers;
	unsigned unexpected_exits;
};

static unsigned rnd(struct run *r, unsigned n)
{
	return (unsigned)rand_r(&r->seed) % n;
}

static void spawn(struct run *r, int i, int lock)
{
	struct cl_slot *s = &r->sh->slot[i];
	atomic_store(&s->in_cs, 0);
	atomic_store(&s->token, 0);
	struct spawn_args a = {
		.sh = r->sh,
		.region = r->region,
		.audit_path = r->audit_path,
		.store_path = r->store_path[lock],
		.slot = i,
		.lock = lock,
		.id = r->next_id++,
		.hold_ms = 1 + (int)rnd(r, 5),
		.gap_ms = (int)rnd(r, 4),
	};
	pid_t p = harness_fork(client_main, &a);
	atomic_store(&s->pid, p);
	r->cl[i] = (struct client){.pid = p, .lock = lock,
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
	struct rec k = {.magic = REC_MAGIC, .type = REC_KILLED,
			.lock = (uint8_t)c->lock, .pid = (int32_t)c->pid,
			.t = before, .aux = after};
	if (!put_rec(r->audit_fd, &k))
		fail_msg("driver: audit write: %s", strerror(errno));
	r->kills++;
	r->kills_holding += holding;
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
}

static void do_thaw(struct run *r, int i, bool at_end)
{
	struct client *c = &r->cl[i];
	if (c->cs_freeze && !at_end) {
		r->cs_thawed++;
		/* Its lock moved on while it slept: it resumes a zombie. */
		if (atomic_load(&r->sh->last_token[c->lock]) > c->cs_token)
			r->takeovers++;
	}
	if (kill(c->pid, SIGCONT) != 0)
		fail_msg("kill(%d, SIGCONT): %s", (int)c->pid,
			 strerror(errno));
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
	uint64_t token;
	uint32_t flags;
	int64_t start;
	int64_t valid_until;
	int64_t t_write;    /* 0: no write record */
	int64_t t_release;  /* 0: no release record */
	int64_t death;      /* 0: not killed */
	int64_t end;
	uint64_t highest;   /* the store's, at the write */
	bool wrote, rejected, in_store, reject_in_store;
	int release_rc;
};

struct kill_rec {
	int32_t pid;
	int64_t before, after;
};

struct analysis {
	struct grant *g;
	size_t ng;
	struct grant **by_key;   /* sorted by (pid, lock, token) */
	struct grant **by_token; /* sorted by (lock, token) */
	struct kill_rec *k;
	size_t nk;
	unsigned violations;
	/* counters */
	unsigned writes, rejections, releases_lost, recovered, empty;
	unsigned store_accepted, store_rejected, store_unacked;
	int64_t longest_idle_ns; /* a lock unused between two holds */
	int longest_idle_lock;
};

static void violation(struct analysis *an, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void violation(struct analysis *an, const char *fmt, ...)
{
	if (an->violations++ < 10) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "chaos: VIOLATION: ");
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
		va_end(ap);
	}
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

/* Build the grants and kills from the audit file, linking every event
 * to its grant. */
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
	assert_non_null(an->g);
	assert_non_null(an->k);
	for (size_t i = 0; i < n; i++) {
		const struct rec *r = &recs[i];
		if (r->magic != REC_MAGIC || r->lock >= NLOCKS) {
			violation(an, "audit record %zu is garbage", i);
			continue;
		}
		if (r->type == REC_ACQUIRED) {
			struct grant *g = &an->g[an->ng++];
			g->pid = r->pid;
			g->lock = r->lock;
			g->token = r->token;
			g->flags = r->flags;
			g->start = r->t;
			g->valid_until = r->aux;
		} else if (r->type == REC_KILLED) {
			an->k[an->nk++] = (struct kill_rec){
				.pid = r->pid, .before = r->t, .after = r->aux};
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

	for (size_t i = 0; i < n; i++) {
		const struct rec *r = &recs[i];
		if (r->magic != REC_MAGIC || r->lock >= NLOCKS ||
		    r->type == REC_ACQUIRED || r->type == REC_KILLED)
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
		case REC_WROTE:
		case REC_REJECTED:
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
			violation(an, "audit record %zu has type %u", i,
				  (unsigned)r->type);
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
		if (g->t_release != 0 && g->t_release < end)
			end = g->t_release;
		if (g->death != 0 && g->death < end)
			end = g->death;
		g->end = end;
		an->recovered += (g->flags & LM_GRANT_RECOVERED) != 0;
		/* Every round of a fenced client writes before it
		 * releases; only a kill can cut that short. */
		if (g->t_write == 0 && g->death == 0)
			violation(an, "pid %d lock %s token %llu: no write "
				      "record, and the client was not killed",
				  (int)g->pid, lock_name(g->lock),
				  (unsigned long long)g->token);
	}
}

/* 1 and 2: per lock, no two intervals overlap; tokens are unique and
 * increase with the start of the (non-empty) intervals. */
static void check_exclusion_and_tokens(struct analysis *an)
{
	for (size_t i = 1; i < an->ng; i++) {
		const struct grant *a = an->by_token[i - 1];
		const struct grant *b = an->by_token[i];
		if (a->lock == b->lock && a->token == b->token)
			violation(an, "lock %s: token %llu granted twice (pids "
				      "%d and %d)",
				  lock_name(a->lock),
				  (unsigned long long)a->token, (int)a->pid,
				  (int)b->pid);
	}
	struct grant **iv = malloc((an->ng + 1) * sizeof(*iv));
	assert_non_null(iv);
	for (int lock = 0; lock < NLOCKS; lock++) {
		size_t n = 0;
		for (size_t i = 0; i < an->ng; i++) {
			struct grant *g = &an->g[i];
			if (g->lock != lock)
				continue;
			if (g->start >= g->end) {
				an->empty++;
				continue;
			}
			iv[n++] = g;
		}
		qsort(iv, n, sizeof(*iv), cmp_start);
		const struct grant *reach = NULL; /* latest end so far */
		for (size_t i = 0; i < n; i++) {
			const struct grant *g = iv[i];
			if (reach != NULL && g->start < reach->end)
				violation(an, "lock %s: pid %d token %llu held "
					      "[%lld, %lld] overlaps pid %d "
					      "token %llu [%lld, %lld] by %lld "
					      "us",
					  lock_name(lock), (int)g->pid,
					  (unsigned long long)g->token,
					  (long long)g->start,
					  (long long)g->end, (int)reach->pid,
					  (unsigned long long)reach->token,
					  (long long)reach->start,
					  (long long)reach->end,
					  (long long)(reach->end - g->start) /
						  1000);
			if (i > 0 && g->token <= iv[i - 1]->token)
				violation(an, "lock %s: token %llu (pid %d, "
					      "from %lld) came after token "
					      "%llu (pid %d, from %lld)",
					  lock_name(lock),
					  (unsigned long long)g->token,
					  (int)g->pid, (long long)g->start,
					  (unsigned long long)iv[i - 1]->token,
					  (int)iv[i - 1]->pid,
					  (long long)iv[i - 1]->start);
			if (reach != NULL &&
			    g->start - reach->end > an->longest_idle_ns) {
				an->longest_idle_ns = g->start - reach->end;
				an->longest_idle_lock = lock;
			}
			if (reach == NULL || g->end > reach->end)
				reach = g;
		}
	}
	free(iv);
}

/* 4: a rejected writer's lease had ended, by its own clock, and the
 * token that beat it was granted. */
static void check_rejections(struct analysis *an)
{
	for (size_t i = 0; i < an->ng; i++) {
		const struct grant *g = &an->g[i];
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
 * 4b: what the library told each holder about its lease agrees with
 * what happened to it.
 *
 *   - A release that reports LM_ELEASELOST comes after the lease's
 *     valid_until: with no server restarts, only an expired lease (taken
 *     over, or expired by its server) loses a holder its tables.
 *   - A grant taken over before its holder released it (the next
 *     grant's ACQUIRED hook ran before this one's write hook, and the
 *     release comes after that hook) reports LM_ELEASELOST: the
 *     successor replaced its owner words on a majority.
 *   - The grant after one that was taken over, or whose holder was
 *     killed holding it (killed, no write record: it had not yet
 *     released), carries LM_GRANT_RECOVERED: it found the previous
 *     holder's slots expired or abandoned (a grant lost to a kill
 *     before its own hook in between would itself have been abandoned).
 */
static void check_lease_reports(struct analysis *an)
{
	for (size_t i = 0; i < an->ng; i++) {
		const struct grant *g = an->by_token[i];
		const struct grant *next = NULL;
		if (i + 1 < an->ng && an->by_token[i + 1]->lock == g->lock)
			next = an->by_token[i + 1];
		if (g->t_release != 0 && g->release_rc == LM_ELEASELOST &&
		    g->t_release < g->valid_until)
			violation(an, "lock %s: pid %d token %llu: release "
				      "said the lease was lost %lld us before "
				      "it ended",
				  lock_name(g->lock), (int)g->pid,
				  (unsigned long long)g->token,
				  (long long)(g->valid_until - g->t_release) /
					  1000);
		if (next == NULL)
			continue;
		bool taken_over = g->t_write != 0 && next->start < g->t_write;
		if (taken_over && g->t_release != 0 && g->release_rc == 0)
			violation(an, "lock %s: pid %d token %llu released "
				      "cleanly although token %llu (pid %d) "
				      "was granted before its write",
				  lock_name(g->lock), (int)g->pid,
				  (unsigned long long)g->token,
				  (unsigned long long)next->token,
				  (int)next->pid);
		bool died_holding = g->death != 0 && g->t_write == 0;
		if ((taken_over || died_holding) &&
		    !(next->flags & LM_GRANT_RECOVERED))
			violation(an, "lock %s: token %llu (pid %d) follows "
				      "token %llu (pid %d), which was %s, but "
				      "is not flagged LM_GRANT_RECOVERED",
				  lock_name(g->lock),
				  (unsigned long long)next->token,
				  (int)next->pid,
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

/* ---- the case ----------------------------------------------------- */

static void chaos(void)
{
	int seconds = env_int("CHAOS_SECONDS", 30);
	if (seconds < 1 || seconds > MAX_SECONDS)
		fail_msg("CHAOS_SECONDS=%d: must be 1..%d (the case times out "
			 "after 3600 s)", seconds, MAX_SECONDS);
	struct run *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->seed = (unsigned)env_int("CHAOS_SEED",
				    (int)((unsigned)getpid() ^
					  (unsigned)harness_now_ns()) &
					    0x7fffffff);
	fprintf(stderr, "chaos: %d s, %d clients, %d locks, seed %u "
			"(CHAOS_SEED to replay the driver's choices)\n",
		seconds, NCLIENTS, NLOCKS, r->seed);

	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "chaos", "--max-ttl", "2000", NULL);
	snprintf(r->region, sizeof(r->region), "%s", d.region);
	char dir[256];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(r->audit_path, sizeof(r->audit_path), "%s/audit.bin", dir);
	for (int lock = 0; lock < NLOCKS; lock++) {
		snprintf(r->store_path[lock], sizeof(r->store_path[lock]),
			 "%s/store-%d", dir, lock);
		/* Create the stores before any client races to. */
		fs_store *st;
		int rc = fs_open(r->store_path[lock], FS_CREATE, &st);
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

	int64_t t_start = harness_now_ns();
	for (int i = 0; i < NCLIENTS; i++)
		spawn(r, i, i % NLOCKS);

	int64_t end = t_start + (int64_t)seconds * 1000000000;
	int64_t next_action = harness_now_ns() + 20000000;
	int64_t next_exit_check = next_action;
	for (;;) {
		int64_t now = harness_now_ns();
		if (now >= end)
			break;
		for (int i = 0; i < NCLIENTS; i++)
			if (r->cl[i].state == CL_FROZEN &&
			    r->cl[i].thaw_at_ns <= now)
				do_thaw(r, i, false);
		if (now >= next_exit_check) {
			check_exits(r);
			next_exit_check = now + 20000000;
		}
		if (now >= next_action) {
			act(r);
			next_action = harness_now_ns() +
				      (20 + (int64_t)rnd(r, 61)) * 1000000;
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
	int64_t t_run = harness_now_ns() - t_start;
	close(r->audit_fd);

	struct analysis an = {0};
	load_audit(&an, r->audit_path);
	check_exclusion_and_tokens(&an);
	check_rejections(&an);
	check_lease_reports(&an);
	check_stores(&an, r);
	check_tables_empty(&an, r->region);
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
		"release, %u recovered grants, %u empty intervals, store %u "
		"accepted (%u unacknowledged) %u rejected, longest idle "
		"lock %lld ms (%s), %u violations\n",
		(long long)(t_run / 1000000000), NCLIENTS, NLOCKS, an.ng,
		an.writes, r->kills, r->kills_holding, r->freezes,
		r->cs_freezes, r->cs_thawed, r->takeovers, an.rejections,
		an.releases_lost, an.recovered, an.empty, an.store_accepted,
		an.store_unacked, an.store_rejected,
		(long long)(an.longest_idle_ns / 1000000),
		lock_name(an.longest_idle_lock), an.violations);
	assert_int_equal(an.violations, 0);

	/*
	 * Liveness: with 16 clients on 3 locks there is always someone
	 * waiting, so a lock should never sit unused for long: a frozen
	 * holder's successor takes over just after its lease ends, a dead
	 * one's within milliseconds, and a frozen waiter at the head of the
	 * queue is skipped within a server tick. Before waiters skipped a
	 * frozen head, locks sat idle for 750-1400 ms here.
	 */
	if (an.longest_idle_ns > INT64_C(500000000))
		fail_msg("lock %s sat unused for %lld ms while clients waited",
			 lock_name(an.longest_idle_lock),
			 (long long)(an.longest_idle_ns / 1000000));

	/*
	 * The run must have been meaningful. Rejections are reliable, not
	 * luck: about one action in three is a freeze of a client caught
	 * inside its critical section (the hook's in_cs flag), for 450-800
	 * ms, longer than its 300 ms lease plus the time a waiting
	 * successor needs to take the lock and write (~5 ms). A zombie that
	 * is thawed (not killed) after such a takeover presents its stale
	 * token and is rejected, unless it was stopped in the few
	 * microseconds between fs_write returning and its hook clearing
	 * in_cs. A default 30 s run has ~100 such freezes and ~30 takeovers
	 * (each one a rejection in practice); every freeze (and so every
	 * takeover) needs about 1 s of run, so CHAOS_SECONDS below ~10
	 * cannot be expected to pass these checks.
	 */
	if (an.ng <= 1000 || r->kills == 0 || r->freezes == 0 ||
	    r->takeovers == 0 || an.rejections == 0)
		fail_msg("the run was not meaningful: %zu grants (want > "
			 "1000), %u kills, %u freezes, %u takeovers, %u "
			 "rejections (want > 0 each)",
			 an.ng, r->kills, r->freezes, r->takeovers,
			 an.rejections);

	harness_shared_free(r->sh, sizeof(*r->sh));
	free(an.g);
	free(an.k);
	free(an.by_key);
	free(an.by_token);
	harness_lockmgrd_stop(&d);
	free(r);
}

HARNESS_CASE(chaos, 3600)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(chaos),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
