/*
 * fastpath.c - a tight loop of uncontended lm_acquire + lm_release, for
 * profiling the fast path (perf record) and for before/after figures on
 * a loaded machine: besides wall time it reports the thread's CPU time
 * per pair, which a busy host's preemptions do not inflate.
 *
 *   build/fastpath REGION name|ref [PAIRS [ROUNDS]]
 *
 * against a running lockmgrd, e.g.
 *
 *   build/lockmgrd -r /fp --ephemeral -q &
 *   taskset -c 1 build/fastpath /fp ref 1000000 5
 *
 * `name` acquires by name (lm_acquire), `ref` through an lm_lockref
 * (lm_acquire_ref); a 10 s lease, waiting if need be.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/lockmgr.h"

static long long ns(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[2], "name") != 0 &&
			 strcmp(argv[2], "ref") != 0)) {
		fprintf(stderr, "usage: %s REGION name|ref [PAIRS [ROUNDS]]\n",
			argv[0]);
		return 2;
	}
	const char *name = "/bench/fastpath";
	bool by_ref = strcmp(argv[2], "ref") == 0;
	long pairs = argc > 3 ? atol(argv[3]) : 1000000;
	int rounds = argc > 4 ? atoi(argv[4]) : 1;
	if (pairs <= 0 || rounds <= 0)
		return 2;
	lm_client *c;
	int rc = lm_connect(argv[1], &c);
	if (rc != 0) {
		fprintf(stderr, "connect: %s\n", lm_strerror(rc));
		return 1;
	}
	lm_lockref ref;
	rc = lm_lookup(c, name, &ref);
	if (rc != 0) {
		fprintf(stderr, "lookup: %s\n", lm_strerror(rc));
		return 1;
	}
	lm_grant g;
	for (int r = 0; r < rounds; r++) {
		long long w0 = ns(CLOCK_MONOTONIC);
		long long c0 = ns(CLOCK_THREAD_CPUTIME_ID);
		for (long i = 0; i < pairs; i++) {
			rc = by_ref ? lm_acquire_ref(c, &ref, 10000, -1, &g)
				    : lm_acquire(c, name, 10000, -1, &g);
			if (rc == 0)
				rc = lm_release(c, &g);
			if (rc != 0) {
				fprintf(stderr, "pair %ld: %s\n", i,
					lm_strerror(rc));
				return 1;
			}
		}
		long long c1 = ns(CLOCK_THREAD_CPUTIME_ID);
		long long w1 = ns(CLOCK_MONOTONIC);
		printf("%s: %.1f ns/pair wall, %.1f ns/pair cpu\n", argv[2],
		       (double)(w1 - w0) / pairs, (double)(c1 - c0) / pairs);
	}
	lm_disconnect(c);
	return 0;
}
