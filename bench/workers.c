/*
 * workers.c - the frame of a timed run of P forked workers.
 */
#include "workers.h"

#include <stdio.h>

#include "bench.h"
#include "primitives.h"

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

void workers_fail(struct workers_hdr *h, int id, const char *what, int rc)
{
	uint32_t zero = 0;
	if (atomic_compare_exchange_strong(&h->failed, &zero, 1))
		snprintf(h->err, sizeof(h->err), "worker %d: %s: %d (%s)", id,
			 what, rc, prim_strerror(rc));
	/* Stop the others: they must not wait for a lock we hold. */
	atomic_store(&h->gate.stop, 1);
}

int workers_fail_at_start(struct workers_hdr *h, int id, const char *what,
			  int rc)
{
	workers_fail(h, id, what, rc);
	gate_arrive_and_wait(&h->gate);
	return 3;
}

int64_t workers_run(struct workers_hdr *h, uint32_t np,
		    int (*fn)(int id, void *arg), void *arg, int64_t warmup_ms,
		    int64_t duration_ms, int64_t reap_ms, const char *what,
		    int64_t *t_stop)
{
	if (np == 0 || np > BENCH_MAX_PROCS)
		bench_die("%s: %u processes", what, np);
	pid_t pids[BENCH_MAX_PROCS];
	for (uint32_t i = 0; i < np; i++)
		pids[i] = procs_fork(fn, (int)i, arg);
	int64_t t_start = gate_open_when_ready(&h->gate, np, pids, what);
	if (t_start > 0) {
		if (warmup_ms > 0) {
			bench_sleep_ns(warmup_ms * 1000000);
			t_start = bench_now_ns();
			atomic_store(&h->measuring, 1);
		}
		bench_sleep_ns(duration_ms * 1000000);
		if (t_stop != NULL)
			*t_stop = bench_now_ns();
		atomic_store(&h->gate.stop, 1);
	}
	int bad = procs_reap(pids, (int)np, reap_ms, what);
	if (atomic_load(&h->failed)) {
		bench_fail("%s: %s", what, h->err);
		return -1;
	}
	if (bad != 0 || t_start < 0)
		return -1;
	return t_start;
}

void workers_map(struct workers_map *m, uint32_t np, size_t state_size,
		 size_t out_size, size_t cap)
{
	size_t off_state = ALIGN64(sizeof(struct workers_hdr));
	size_t off_out = ALIGN64(off_state + state_size);
	size_t off_samples = ALIGN64(off_out + np * out_size);
	m->cap = cap;
	m->size = off_samples + (size_t)np * 2 * cap * sizeof(int64_t);
	char *base = bench_shared_alloc(m->size);
	m->hdr = (struct workers_hdr *)base;
	m->state = base + off_state;
	m->out = base + off_out;
	m->samples = (int64_t *)(base + off_samples);
}

void workers_unmap(struct workers_map *m)
{
	bench_shared_free(m->hdr, m->size);
	m->hdr = NULL;
}
