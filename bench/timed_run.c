/*
 * timed_run.c - P processes, one or many locks, a fixed duration: the
 * throughput run and, separately, the latency run.
 *
 * Shared mapping of one run:
 *
 *   struct workers_hdr | struct proc_out[P] | samples[P][cap] |
 *   counters[nlocks]
 *
 * (no samples in a throughput run). Workers write only their own
 * proc_out and sample rows, and those once at the end (no false
 * sharing on the hot path: they keep their counts in locals), and the
 * counters only inside the critical section. The stop flag and the
 * end of the warm-up are read before each acquire, outside the hold:
 * their cache line is written only at the start and at the stop, so
 * the read hits the worker's own cache.
 */
#include "timed_run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "workers.h"

/* Lock choices a worker draws before the clock starts and cycles
 * through, so that drawing (a binary search for Zipf) never counts. */
#define RING (1u << 16)
#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

struct proc_out {
	uint64_t ops;       /* critical sections while measuring */
	uint64_t all_ops;   /* ... including the warm-up: the counters' sum */
	uint64_t runs;      /* streaks begun while measuring: entries whose
	                     * counter value did not follow this worker's
	                     * previous one (one lock only) */
	uint64_t seen;      /* latencies offered to the reservoir */
	uint8_t pad_[32];
};

struct run {
	const struct timed_spec *spec;
	bool latency;             /* a latency run (else throughput) */
	size_t cap;               /* samples per worker (0: throughput) */
	size_t size;
	struct workers_hdr *hdr;
	struct proc_out *out;
	int64_t *samples;
	uint64_t *counters;       /* plain: the lock is what guards them */
	struct prim prim;
};

static uint32_t *draw_ring(const struct timed_spec *s, uint64_t *rng)
{
	uint32_t *ring = malloc(RING * sizeof(*ring));
	if (ring == NULL)
		return NULL;
	for (uint32_t k = 0; k < RING; k++) {
		uint64_t x = bench_rand(rng);
		if (s->choice == CHOOSE_ZIPF)
			ring[k] = zipf_draw(s->zipf,
					    (double)(x >> 11) * 0x1p-53);
		else
			ring[k] = (uint32_t)(x % s->nlocks);
	}
	return ring;
}

static inline bool stopped(const struct run *r)
{
	return atomic_load_explicit(&r->hdr->gate.stop,
				    memory_order_relaxed) != 0;
}

static inline bool measuring(const struct run *r)
{
	return atomic_load_explicit(&r->hdr->measuring,
				    memory_order_relaxed) != 0;
}

/*
 * The throughput loop: acquire, the checked increment, release. What a
 * worker learns it keeps in registers: its count, and the streaks it
 * began. A streak (a run of one worker's entries in the acquisition
 * order) is a block of consecutive counter values; a worker begins one
 * whenever the value it reads is not the one after its previous entry's.
 * Summed over the workers, those beginnings are the runs of the order.
 * Returns 0 or the worker's exit status (4).
 */
static int throughput_loop(struct run *r, int id, const uint32_t *ring)
{
	struct prim *p = &r->prim;
	uint64_t *counters = r->counters;
	uint64_t all = 0, runs = 0, base_ops = 0, base_runs = 0;
	uint64_t prev = UINT64_MAX - 1;
	bool counting = r->spec->warmup_ms == 0;
	int status = 0;
	for (uint32_t k = 0; !stopped(r); k++) {
		if (!counting && measuring(r)) {
			counting = true;
			base_ops = all;
			base_runs = runs;
		}
		uint32_t lock = ring != NULL ? ring[k & (RING - 1)] : 0;
		int rc = p->ops->acquire(p, lock, INT64_MAX);
		if (rc != 0) {
			workers_fail(r->hdr, id, "acquire", rc);
			status = 4;
			break;
		}
		/* The critical section: a plain read-modify-write that a
		 * second holder would make lose an update. */
		uint64_t c = counters[lock];
		counters[lock] = c + 1;
		rc = p->ops->release(p, lock);
		if (rc != 0) {
			workers_fail(r->hdr, id, "release", rc);
			status = 4;
			break;
		}
		all++;
		runs += c != prev + 1;
		prev = c;
	}
	r->out[id].ops = counting ? all - base_ops : 0;
	r->out[id].all_ops = all;
	r->out[id].runs = counting ? runs - base_runs : 0;
	return status;
}

/*
 * The latency loop: the same, with the acquire timed and offered to
 * the worker's reservoir. Its throughput is never reported.
 */
static int latency_loop(struct run *r, int id, const uint32_t *ring,
			uint64_t *rng)
{
	struct prim *p = &r->prim;
	int64_t *mine = r->samples + (size_t)id * r->cap;
	uint64_t all = 0, seen = 0;
	bool counting = r->spec->warmup_ms == 0;
	int status = 0;
	for (uint32_t k = 0; !stopped(r); k++) {
		if (!counting && measuring(r)) {
			counting = true;
			seen = 0;
		}
		uint32_t lock = ring != NULL ? ring[k & (RING - 1)] : 0;
		int64_t t0 = bench_now_ns();
		int rc = p->ops->acquire(p, lock, INT64_MAX);
		int64_t t1 = bench_now_ns();
		if (rc != 0) {
			workers_fail(r->hdr, id, "acquire", rc);
			status = 4;
			break;
		}
		uint64_t c = r->counters[lock];
		r->counters[lock] = c + 1;
		rc = p->ops->release(p, lock);
		if (rc != 0) {
			workers_fail(r->hdr, id, "release", rc);
			status = 4;
			break;
		}
		all++;
		reservoir_offer(mine, r->cap, &seen, t1 - t0,
				bench_rand(rng));
	}
	r->out[id].all_ops = all;
	r->out[id].seen = counting ? seen : 0;
	return status;
}

static int worker(int id, void *arg)
{
	struct run *r = arg;
	const struct timed_spec *s = r->spec;
	struct prim *p = &r->prim;
	uint64_t rng = (uint64_t)s->seed * 0x9e3779b97f4a7c15u + (uint64_t)id +
		       1;
	uint32_t *ring = NULL;
	int rc = p->ops->attach(p);
	if (rc != 0)
		return workers_fail_at_start(r->hdr, id, "attach", rc);
	if (s->choice != CHOOSE_ONE) {
		ring = draw_ring(s, &rng);
		if (ring == NULL)
			return workers_fail_at_start(r->hdr, id, "ring",
						     -ENOMEM);
		if (p->ops->prepare != NULL &&
		    (rc = p->ops->prepare(p, ring, RING)) != 0)
			return workers_fail_at_start(r->hdr, id, "prepare",
						     rc);
	}
	gate_arrive_and_wait(&r->hdr->gate);
	int status = r->latency ? latency_loop(r, id, ring, &rng)
				: throughput_loop(r, id, ring);
	p->ops->detach(p);
	free(ring);
	return status;
}

/* The counters against the workers' counts, then the figures of a
 * throughput run (res) or the samples of a latency run (pool). */
static int check_and_measure(struct run *r, int64_t t_start, int64_t t_stop,
			     struct timed_result *res, struct samples *pool)
{
	const struct timed_spec *s = r->spec;
	uint64_t total = 0, all = 0, runs = 0, min = UINT64_MAX, max = 0;
	for (uint32_t i = 0; i < s->nprocs; i++) {
		uint64_t o = r->out[i].ops;
		total += o;
		all += r->out[i].all_ops;
		runs += r->out[i].runs;
		min = o < min ? o : min;
		max = o > max ? o : max;
		if (pool != NULL)
			samples_add_reservoir(pool,
					      r->samples + (size_t)i * r->cap,
					      r->cap, r->out[i].seen);
	}
	uint64_t counted = 0;
	for (uint32_t l = 0; l < s->nlocks; l++)
		counted += r->counters[l];
	if (counted != all) {
		bench_fail("%s, P=%u, %u lock%s: the shared counter%s say%s "
			   "%llu critical sections, the workers did %llu: "
			   "mutual exclusion was broken",
			   r->prim.ops->key, s->nprocs, s->nlocks,
			   s->nlocks == 1 ? "" : "s",
			   s->nlocks == 1 ? "" : "s",
			   s->nlocks == 1 ? "s" : "",
			   (unsigned long long)counted,
			   (unsigned long long)all);
		return -1;
	}
	if (res != NULL) {
		res->total_ops = total;
		res->ops_per_s = stats_per_s(total, t_start, t_stop);
		res->fairness = stats_fairness(min, max);
		res->mean_streak = s->choice == CHOOSE_ONE && runs > 0
					   ? (double)total / (double)runs
					   : NAN;
	}
	return 0;
}

static int run_once(const struct timed_spec *s, struct timed_result *res,
		    struct samples *pool)
{
	if (s->nprocs == 0 || s->nprocs > BENCH_MAX_PROCS)
		bench_die("timed_run: %u processes", s->nprocs);
	struct run r;
	memset(&r, 0, sizeof(r));
	r.spec = s;
	r.latency = pool != NULL;
	r.cap = r.latency ? bench_cfg.sample_cap : 0;
	/* Every part starts on a cache line of its own. */
	size_t off_out = ALIGN64(sizeof(struct workers_hdr));
	size_t off_samples =
		ALIGN64(off_out + s->nprocs * sizeof(struct proc_out));
	size_t off_counters =
		ALIGN64(off_samples + s->nprocs * r.cap * sizeof(int64_t));
	r.size = off_counters + (size_t)s->nlocks * sizeof(uint64_t);
	char *base = bench_shared_alloc(r.size);
	r.hdr = (struct workers_hdr *)base;
	r.out = (struct proc_out *)(base + off_out);
	r.samples = (int64_t *)(base + off_samples);
	r.counters = (uint64_t *)(base + off_counters);

	int rc = prim_init(&r.prim, s->prim, s->nlocks, s->tag);
	if (rc != 0) {
		bench_shared_free(base, r.size);
		if (rc == PRIM_ELIMIT)
			return PRIM_ELIMIT;
		bench_fail("%s: init of %u locks: %s", prim_table[s->prim]->key,
			   s->nlocks, prim_strerror(rc));
		return -1;
	}
	char what[96];
	snprintf(what, sizeof(what), "%s, P=%u, %u lock%s%s",
		 prim_table[s->prim]->key, s->nprocs, s->nlocks,
		 s->nlocks == 1 ? "" : "s", r.latency ? " (latency)" : "");
	/* Reaping is generous: after a many-locks run each worker's
	 * lm_disconnect walks every name of the region. */
	int64_t t_stop = 0;
	int64_t t_start = workers_run(r.hdr, s->nprocs, worker, &r,
				      s->warmup_ms, s->duration_ms, 120000,
				      what, &t_stop);
	int ret = t_start < 0 ? -1
			      : check_and_measure(&r, t_start, t_stop, res,
						  pool);
	r.prim.ops->destroy(&r.prim);
	bench_shared_free(base, r.size);
	return ret;
}

int timed_run(const struct timed_spec *s, struct timed_result *res)
{
	memset(res, 0, sizeof(*res));
	return run_once(s, res, NULL);
}

int timed_latency(const struct timed_spec *s, struct samples *pool)
{
	return run_once(s, NULL, pool);
}

int64_t timed_latency_ms(int64_t duration_ms)
{
	return duration_ms / 2 > 50 ? duration_ms / 2 : 50;
}

static struct timed_spec one_lock(enum prim_id prim, uint32_t nprocs,
				  uint32_t seed, int64_t duration_ms)
{
	struct timed_spec spec = {
		.prim = prim,
		.nprocs = nprocs,
		.nlocks = 1,
		.tag = "c",
		.choice = CHOOSE_ONE,
		.duration_ms = duration_ms,
		.seed = seed,
	};
	return spec;
}

int timed_run_one_lock(enum prim_id prim, uint32_t nprocs, uint32_t seed,
		       struct timed_result *res)
{
	struct timed_spec spec =
		one_lock(prim, nprocs, seed, bench_cfg.duration_ms);
	return timed_run(&spec, res);
}

int timed_latency_one_lock(enum prim_id prim, uint32_t nprocs, uint32_t seed,
			   struct samples *pool)
{
	struct timed_spec spec = one_lock(
		prim, nprocs, seed, timed_latency_ms(bench_cfg.duration_ms));
	return timed_latency(&spec, pool);
}
