/*
 * scen_watch.c - scenario 9: how long a watcher takes to have a lock's
 * change in hand, against the floor of a wake-up between two processes
 * on this host.
 *
 * Two processes: a changer and a watcher. In step k the changer waits
 * until the watcher has announced it waits for change k *and* is asleep
 * in the kernel (its /proc state is S; on the fd path the library's pump
 * thread too), so that every change has to wake a sleeper. It stamps
 * the time in shared memory just before the change; the watcher stamps
 * the time its wait returns with the event in hand, then acknowledges.
 * The changer makes no change before that acknowledgement, so a slow
 * wake-up delays the next change instead of hiding behind it (no
 * coordinated omission), and no two changes are ever coalesced into one
 * event.
 *
 * The paths, each in the same rounds (their order rotating):
 *
 *   bare futex        the changer bumps a word and FUTEX_WAKEs; the
 *                     watcher's FUTEX_WAIT returns: the floor, what any
 *                     wake-up between two processes costs here;
 *   eventfd+poll      the changer writes an eventfd; the watcher's poll
 *                     returns and it reads the eventfd: the floor of a
 *                     descriptor in a poll loop;
 *   lm_watch_next     the changer takes the lock (a grant) or releases
 *                     it, alternately; the watcher blocks in
 *                     lm_watch_next;
 *   lm_watch_fd+poll  the same changes; the watcher polls lm_watch_fd
 *                     and then calls lm_watch_next(0). Two hops: the
 *                     library's pump thread wakes on the lock's futex
 *                     and writes the eventfd that wakes the poll.
 *
 * A grant's stamp is taken before lm_acquire, whose quorum grant comes
 * before the version bump that wakes watchers: a grant's figure holds
 * that work (a few hundred ns), a release's only lm_release's.
 *
 * The two processes are pinned to two different CPUs, as in the
 * hand-off scenario and for the same reason: unpinned, the scheduler
 * decides between a cross-CPU wake-up (20+ us in a VM) and a same-CPU
 * one (about 1 us) from run to run. The pump thread inherits the
 * watcher's CPU, so the fd path's second hop is a same-CPU wake-up,
 * as it is for any process that watches from one CPU.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "bench.h"
#include "primitives.h"
#include "procs.h"
#include "results.h"
#include "scenarios.h"
#include "stats.h"

#define WAIT_MS 10000
/* How long the changer waits for the watcher to fall asleep; a watcher
 * that does not is counted (and the change made anyway). */
#define ASLEEP_MS 20
#define WATCH_NAME "/lb/watch"

const char *const watch_path_label[WATCH_NPATH] = {
	[WATCH_FUTEX] = "bare futex",
	[WATCH_EVENTFD] = "eventfd+poll",
	[WATCH_NEXT] = "lm_watch_next",
	[WATCH_FD] = "lm_watch_fd+poll",
};

int watch_path_prim(int path)
{
	switch (path) {
	case WATCH_FUTEX:
		return PRIM_FUTEX;
	case WATCH_NEXT:
	case WATCH_FD:
		return PRIM_LOCKMGR;
	default:
		return RES_NONE;
	}
}

static bool is_lockmgr(int path)
{
	return path == WATCH_NEXT || path == WATCH_FD;
}

/*
 * Shared by the parent, the changer (process 0) and the watcher (1).
 * ready and acked are written by the watcher only, word and t_change by
 * the changer only, t_seen by the watcher only; the parent reads the
 * stamps after both are reaped. A stamp is written before the
 * change it stamps (t_change) or before the acknowledgement (t_seen),
 * and read after that was seen: the changes and acknowledgements are
 * seq_cst atomics (or system calls), which order the plain stores.
 */
struct wa_shared {
	struct gate gate;
	_Atomic uint32_t ready;     /* k + 1: the watcher waits for change k */
	_Atomic uint32_t acked;     /* k + 1: it has change k in hand */
	_Atomic uint32_t word;      /* futex path: k + 1 after change k */
	_Atomic int32_t pid[2];
	_Atomic int32_t pump_tid;   /* fd path: the library's pump thread */
	_Atomic int32_t cpu[2];     /* where each process is pinned, or -1 */
	_Atomic uint32_t failed;
	_Atomic uint32_t not_asleep; /* changes made to a watcher awake */
	_Atomic uint32_t odd;       /* events not the change waited for */
	char err[192];
	int64_t t_change[];         /* then t_seen[iters] */
};

struct wa_arg {
	int path;
	int iters;
	int efd; /* eventfd path: made by the parent, shared by fork */
	struct wa_shared *sh;
};

static int wa_fail(struct wa_shared *sh, int id, int k, const char *what,
		   int rc)
{
	uint32_t zero = 0;
	if (atomic_compare_exchange_strong(&sh->failed, &zero, 1))
		snprintf(sh->err, sizeof(sh->err), "%s, step %d: %s (%s)",
			 id ? "watcher" : "changer", k, what,
			 rc ? prim_strerror(rc) : "");
	return 4;
}

/* The thread of ours other than the main one: lm_watch_fd's pump, the
 * only thread the library starts. 0 if there is none. */
static pid_t other_thread(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return 0;
	pid_t self = getpid(), found = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		pid_t t = (pid_t)atoi(e->d_name);
		if (t > 0 && t != self)
			found = t;
	}
	closedir(d);
	return found;
}

/* Does ev show change k: a grant (k even) or a release (k odd)? */
static bool is_change(const lm_watch_event *ev, int k)
{
	return k % 2 == 0 ? ev->holders != 0 : ev->holders == 0;
}

/* The watcher's wait for change k on the two lockmgr paths: 0 once an
 * event shows it (an event that does not, or covers more than one
 * change, is counted in odd), else an error code. */
static int lm_wait(struct wa_shared *sh, int path, lm_watch *w, int fd,
		   int k)
{
	int64_t deadline = bench_now_ns() + (int64_t)WAIT_MS * 1000000;
	for (;;) {
		lm_watch_event ev;
		int rc;
		if (path == WATCH_NEXT) {
			rc = lm_watch_next(w, WAIT_MS, &ev);
		} else {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			int n = poll(&pfd, 1, WAIT_MS);
			if (n < 0 && errno != EINTR)
				return -errno;
			/* Readable may still mean no event: then wait
			 * again, as lockmgr.h says. */
			rc = n > 0 ? lm_watch_next(w, 0, &ev) : LM_ETIMEDOUT;
		}
		if (rc == 0) {
			bool mine = is_change(&ev, k);
			if (!mine || ev.changes != 1 ||
			    ev.what != (k % 2 == 0 ? LM_WATCH_GRANTED
						    : LM_WATCH_RELEASED))
				atomic_fetch_add(&sh->odd, 1);
			if (mine)
				return 0;
		} else if (rc != LM_ETIMEDOUT) {
			return rc;
		}
		if (bench_now_ns() > deadline)
			return LM_ETIMEDOUT;
	}
}

static int wa_watcher(struct wa_arg *a)
{
	struct wa_shared *sh = a->sh;
	int64_t *t_seen = sh->t_change + a->iters;
	atomic_store(&sh->cpu[1], procs_pin(1));
	lm_client *c = NULL;
	lm_watch *w = NULL;
	int fd = -1, rc = 0;
	if (is_lockmgr(a->path)) {
		rc = lm_connect(bench_cfg.region, &c);
		if (rc == 0)
			rc = lm_watch_open(c, WATCH_NAME, &w, NULL);
		if (rc == 0 && a->path == WATCH_FD) {
			fd = lm_watch_fd(w);
			if (fd < 0)
				rc = fd;
			else
				atomic_store(&sh->pump_tid, other_thread());
		}
		if (rc != 0) {
			wa_fail(sh, 1, -1, "watch", rc);
			gate_arrive_and_wait(&sh->gate);
			return 3;
		}
	}
	gate_arrive_and_wait(&sh->gate);
	for (int k = 0; k < a->iters && !atomic_load(&sh->failed); k++) {
		atomic_store(&sh->ready, (uint32_t)k + 1);
		int64_t deadline = bench_now_ns() + (int64_t)WAIT_MS * 1000000;
		switch (a->path) {
		case WATCH_FUTEX:
			/* The word is k until change k. */
			while (atomic_load(&sh->word) == (uint32_t)k &&
			       rc == 0) {
				int r = bench_futex_wait(&sh->word, (uint32_t)k,
							 deadline);
				if (r == -ETIMEDOUT)
					rc = r;
			}
			break;
		case WATCH_EVENTFD:
			for (;;) {
				struct pollfd pfd = {.fd = a->efd,
						     .events = POLLIN};
				int n = poll(&pfd, 1, WAIT_MS);
				uint64_t v;
				if (n > 0 && read(a->efd, &v, sizeof(v)) ==
						     (ssize_t)sizeof(v))
					break;
				if (n < 0 && errno != EINTR) {
					rc = -errno;
					break;
				}
				if (bench_now_ns() > deadline) {
					rc = -ETIMEDOUT;
					break;
				}
			}
			break;
		default:
			rc = lm_wait(sh, a->path, w, fd, k);
			break;
		}
		t_seen[k] = bench_now_ns();
		if (rc != 0)
			return wa_fail(sh, 1, k, "no change came", rc);
		atomic_store(&sh->acked, (uint32_t)k + 1);
	}
	if (w != NULL)
		lm_watch_close(w);
	if (c != NULL)
		lm_disconnect(c);
	return 0;
}

static int wa_changer(struct wa_arg *a)
{
	struct wa_shared *sh = a->sh;
	atomic_store(&sh->cpu[0], procs_pin(0));
	lm_client *c = NULL;
	lm_grant g;
	bool held = false;
	int rc = 0;
	if (is_lockmgr(a->path) &&
	    (rc = lm_connect(bench_cfg.region, &c)) != 0) {
		wa_fail(sh, 0, -1, "lm_connect", rc);
		gate_arrive_and_wait(&sh->gate);
		return 3;
	}
	gate_arrive_and_wait(&sh->gate);
	pid_t watcher = atomic_load(&sh->pid[1]);
	pid_t pump = atomic_load(&sh->pump_tid);
	const uint64_t one = 1;
	for (int k = 0; k < a->iters && !atomic_load(&sh->failed); k++) {
		if (!procs_wait_value(&sh->ready, (uint32_t)k + 1, WAIT_MS))
			return wa_fail(sh, 0, k, "the watcher did not come", 0);
		if (!procs_wait_asleep(watcher, ASLEEP_MS) ||
		    (pump > 0 && !procs_wait_asleep(pump, ASLEEP_MS)))
			atomic_fetch_add(&sh->not_asleep, 1);
		sh->t_change[k] = bench_now_ns();
		switch (a->path) {
		case WATCH_FUTEX:
			atomic_store(&sh->word, (uint32_t)k + 1);
			bench_futex_wake(&sh->word, 1);
			break;
		case WATCH_EVENTFD:
			if (write(a->efd, &one, sizeof(one)) !=
			    (ssize_t)sizeof(one))
				rc = -errno;
			break;
		default:
			if (k % 2 == 0) {
				rc = lm_acquire(c, WATCH_NAME, bench_cfg.ttl_ms,
						0, &g);
				held = rc == 0;
			} else {
				rc = lm_release(c, &g);
				held = false;
			}
			break;
		}
		if (rc != 0)
			return wa_fail(sh, 0, k, "change", rc);
		if (!procs_wait_value(&sh->acked, (uint32_t)k + 1, WAIT_MS))
			return wa_fail(sh, 0, k, "no acknowledgement", 0);
	}
	if (held)
		lm_release(c, &g);
	if (c != NULL)
		lm_disconnect(c);
	return 0;
}

static int wa_worker(int id, void *arg)
{
	return id == 0 ? wa_changer(arg) : wa_watcher(arg);
}

/* What one path measured over all rounds. */
struct wa_pool {
	struct samples all, by_kind[2]; /* [0] grants, [1] releases */
	unsigned not_asleep, odd;
};

static int pinned = -2; /* -2 unknown, -1 not pinned, else 1 */

/* One path, one round: iters changes, their latencies into pool. */
static void wa_round(int path, int iters, struct wa_pool *pool)
{
	size_t size = sizeof(struct wa_shared) + 2 * (size_t)iters * 8;
	struct wa_shared *sh = bench_shared_alloc(size);
	struct wa_arg a = {.path = path, .iters = iters, .efd = -1, .sh = sh};
	char what[64];
	snprintf(what, sizeof(what), "watch %s", watch_path_label[path]);
	if (path == WATCH_EVENTFD &&
	    (a.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		bench_fail("%s: eventfd: %s", what, strerror(errno));
		bench_shared_free(sh, size);
		return;
	}
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = procs_fork(wa_worker, i, &a);
		atomic_store(&sh->pid[i], pids[i]);
	}
	gate_open_when_ready(&sh->gate, 2, pids, what);
	int bad = procs_reap(pids, 2, 60000 + (int64_t)iters * 50, what);
	if (atomic_load(&sh->failed)) {
		bench_fail("%s: %s", what, sh->err);
	} else if (bad == 0) {
		const int64_t *t_seen = sh->t_change + iters;
		int64_t *lat = malloc((size_t)iters * sizeof(*lat));
		if (lat == NULL)
			bench_die("out of memory for %d samples", iters);
		for (int k = 0; k < iters; k++) {
			lat[k] = t_seen[k] - sh->t_change[k];
			if (is_lockmgr(path))
				samples_add(&pool->by_kind[k % 2], &lat[k], 1);
		}
		samples_add(&pool->all, lat, (size_t)iters);
		free(lat);
	}
	pool->not_asleep += atomic_load(&sh->not_asleep);
	pool->odd += atomic_load(&sh->odd);
	pinned = atomic_load(&sh->cpu[0]) >= 0 &&
				 atomic_load(&sh->cpu[1]) >= 0
			 ? 1
			 : -1;
	if (a.efd >= 0)
		close(a.efd);
	bench_shared_free(sh, size);
}

void scen_watch(unsigned prims)
{
	/* The floors always run: they are what the watch paths are
	 * compared with. The watch paths need our lockmgrd, which runs
	 * when a lockmgr primitive was asked for. */
	const unsigned lm = (1u << PRIM_LOCKMGR) | (1u << PRIM_LOCKMGR_REF);
	int paths[WATCH_NPATH], n = 0;
	for (int p = 0; p < WATCH_NPATH; p++)
		if (!is_lockmgr(p) || (prims & lm))
			paths[n++] = p;
	int rounds = scen_rounds(0);
	int iters = bench_cfg.watch_iters;
	struct wa_pool pool[WATCH_NPATH];
	memset(pool, 0, sizeof(pool));
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < n; k++) {
			int p = paths[(k + r) % n];
			bench_progress("9/9 watch: round %d/%d, %s", r + 1,
				       rounds, watch_path_label[p]);
			wa_round(p, iters, &pool[p]);
		}
	double fu50 = NAN, fu99 = NAN;
	for (int k = 0; k < n; k++) {
		int p = paths[k];
		struct wa_pool *q = &pool[p];
		const char *param = watch_path_label[p];
		int prim = watch_path_prim(p);
		scen_add_p50_p99(SCEN_WATCH, prim, param, "", &q->all);
		double p50 = results_get(SCEN_WATCH, prim, param, "p50_ns");
		double p99 = results_get(SCEN_WATCH, prim, param, "p99_ns");
		if (p == WATCH_FUTEX) {
			fu50 = p50;
			fu99 = p99;
		}
		results_add(SCEN_WATCH, prim, param, "p50_over_futex",
			    fu50 > 0 ? p50 / fu50 : NAN, "ratio");
		results_add(SCEN_WATCH, prim, param, "p99_over_futex",
			    fu99 > 0 ? p99 / fu99 : NAN, "ratio");
		if (is_lockmgr(p)) {
			scen_add_p50_p99(SCEN_WATCH, prim, param, "grant_",
					 &q->by_kind[0]);
			scen_add_p50_p99(SCEN_WATCH, prim, param, "release_",
					 &q->by_kind[1]);
			results_add(SCEN_WATCH, prim, param, "odd_events",
				    q->odd, "");
			if (q->odd != 0)
				results_note(SCEN_WATCH,
					     "%s: %u events were not the one "
					     "change waited for (coalesced or "
					     "another change of the lock)",
					     param, q->odd);
		}
		results_add(SCEN_WATCH, prim, param, "samples",
			    (double)q->all.n, "");
		results_add(SCEN_WATCH, prim, param, "waiter_asleep",
			    q->all.n ? 1.0 - (double)q->not_asleep /
						     (double)q->all.n
				     : NAN,
			    "fraction");
		samples_free(&q->all);
		samples_free(&q->by_kind[0]);
		samples_free(&q->by_kind[1]);
	}
	results_note(SCEN_WATCH,
		     "2 processes, a changer and a watcher, %d x %d changes "
		     "per path (for lockmgr a grant and a release in turn); "
		     "each change goes to a watcher already asleep in the "
		     "kernel%s; time from just before the change (FUTEX_WAKE, "
		     "eventfd write, lm_acquire, lm_release) to the watcher's "
		     "wait returning with it; the next change waits for the "
		     "watcher's acknowledgement",
		     rounds, iters,
		     pinned == 1 ? " on the other CPU (the two are pinned)"
				 : " (not pinned: fewer than 2 CPUs)");
	if (n < WATCH_NPATH)
		results_note(SCEN_WATCH, "the lm_watch paths did not run: "
					 "--primitives has no lockmgr");
}
