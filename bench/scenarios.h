/*
 * scenarios.h - the seven measurements of lockbench.
 *
 * Each takes the mask of primitives to measure (bit 1 << enum prim_id),
 * alternates them in short rounds (the order rotates each round, so no
 * primitive always runs first on a cold cache or last on a warm one),
 * and records its figures with results_add.
 */
#ifndef LOCKBENCH_SCENARIOS_H
#define LOCKBENCH_SCENARIOS_H

#include <stddef.h>

#include "primitives.h"

/* 1. One process, acquire+release in a loop: ns per pair. */
void scen_uncontended(unsigned prims);
/* 2. P processes on one lock: throughput, latency, fairness, streak. */
void scen_contended(unsigned prims);
/* 3. Release -> blocked waiter's acquire returns: median, p99. */
void scen_handoff(unsigned prims);
/* 4. SIGKILL the holder -> blocked waiter acquires (or never). */
void scen_crash(unsigned prims);
/* 5. 16 processes over many locks, uniform and Zipf; memory/lock. */
void scen_manylocks(unsigned prims);
/* 6. lockmgr at P = 16 with server 2 killed, against all three up.
 *    Leaves server 2 down: run it last. */
void scen_serverdown(unsigned prims);
/* 7. Readers and writers: S against X uncontended, then P processes on
 *    one lock in 95/5 and 50/50 read/write mixes; memory per lock.
 *    Runs before 6 (which leaves a server down). */
void scen_rw(unsigned prims);

/* The primitives of mask in round r's order (rotated by r); returns n. */
int scen_order(unsigned mask, int round, enum prim_id out[PRIM_COUNT]);

/* The P values of the contended sweep. */
#define CONTENDED_NP 6
extern const unsigned contended_p[CONTENDED_NP];

/* The P values and read shares (percent) of the read-write mixes. */
#define RW_NP 5
#define RW_NMIX 2
extern const unsigned rw_p[RW_NP];
extern const unsigned rw_read_pct[RW_NMIX];
/* The param of a mix's figures: "P=16 95/5". */
void rw_param(char *buf, size_t n, unsigned np, int mix);

#endif
