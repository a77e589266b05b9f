/*
 * primitives.h - every lock lockbench measures, behind one interface.
 *
 * Life cycle of one instance (a set of nlocks locks of one kind):
 *
 *   init     in the parent, before it forks: create what all processes
 *            share (a shared mapping, files, semaphores, lockmgr names);
 *   attach   in each worker process after fork: what must be the
 *            process's own (its file descriptions, its lockmgr session);
 *   prepare  optional, in the worker before the clock starts: resolve
 *            the locks it is going to use (lockmgr's pre-resolved refs);
 *   acquire / release   the measured calls;
 *   detach   in the worker, before it exits;
 *   destroy  in the parent, after every worker is reaped.
 *
 * flock(2) and OFD locks belong to an open file description, which fork
 * shares: a worker that used its parent's descriptor would share its
 * lock with every sibling. So each worker opens its own in attach.
 */
#ifndef LOCKBENCH_PRIMITIVES_H
#define LOCKBENCH_PRIMITIVES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum prim_id {
	PRIM_ROBUST,      /* robust process-shared pthread mutex */
	PRIM_FLOCK,       /* flock(2) on a file per lock */
	PRIM_OFD,         /* fcntl OFD lock on byte i of one file */
	PRIM_POSIX_SEM,   /* sem_open named semaphore per lock */
	PRIM_SYSV_SEM,    /* System V semaphore with SEM_UNDO */
	PRIM_FUTEX,       /* bare futex mutex, Drepper's 0/1/2 states */
	PRIM_LOCKMGR,     /* lm_acquire by name */
	PRIM_LOCKMGR_REF, /* lm_acquire_ref with a pre-resolved lm_lockref */
	PRIM_REDIS,       /* Redis SET NX PX, compare-and-delete release */
	PRIM_RWLOCK,      /* process-shared pthread_rwlock_t (rw only) */
	PRIM_COUNT
};

/* The primitives that take part in the read-write scenario only: the
 * others measure them as mutexes, which they are not made to be. */
#define PRIM_RW_ONLY_MASK (1u << PRIM_RWLOCK)

struct prim;

struct prim_ops {
	const char *key;    /* CSV and option name, e.g. "robust-mutex" */
	const char *label;  /* column/row heading in the table */
	/* Most locks one instance can sensibly provide: beyond it the
	 * many-locks scenario reports the primitive as not applicable
	 * (a file per lock at a million names is not a real design). */
	uint32_t max_locks;
	int (*init)(struct prim *p, uint32_t nlocks, const char *tag);
	int (*attach)(struct prim *p);
	int (*prepare)(struct prim *p, const uint32_t *idx, size_t n);
	/* 0, -ETIMEDOUT once deadline_ns (CLOCK_MONOTONIC; INT64_MAX for
	 * none) has passed, or another negative code (prim_strerror). */
	int (*acquire)(struct prim *p, uint32_t lock, int64_t deadline_ns);
	int (*release)(struct prim *p, uint32_t lock);
	/* Read-write scenario: acquire shared (a reader) or exclusive (a
	 * writer), released by release; NULL for a primitive without a
	 * shared mode. Same codes as acquire. */
	int (*acquire_mode)(struct prim *p, uint32_t lock, bool shared,
			    int64_t deadline_ns);
	void (*detach)(struct prim *p);
	void (*destroy)(struct prim *p);
	/* NULL, or for a lock whose dead holder is released only when its
	 * lease runs out (Redis): that lease, in ms. The crash scenario's
	 * waiter waits this much longer before calling it "never". */
	int64_t (*recovery_ms)(void);
	/* Every call is a round trip to a server (Redis: tens of us): the
	 * uncontended scenario makes RPC_ITERS_DIV times fewer pairs, so
	 * that a round takes about as long as a local lock's. */
	bool rpc;
};
#define RPC_ITERS_DIV 100

struct prim {
	const struct prim_ops *ops;
	uint32_t nlocks;
	void *state;        /* the implementation's own */
	/* Set by acquire when the previous holder died holding the lock
	 * (EOWNERDEAD, LM_GRANT_RECOVERED): the crash scenario reports it. */
	bool recovered;
};

extern const struct prim_ops *const prim_table[PRIM_COUNT];

/* Set the instance up (parent). 0 or a negative code. */
int prim_init(struct prim *p, enum prim_id id, uint32_t nlocks,
	      const char *tag);

/* A sentence for a code returned by any prim call. */
const char *prim_strerror(int rc);

/* Parse a comma-separated list of keys into a bit mask; -1 if unknown. */
int prim_parse_list(const char *list, unsigned *mask);

/* The lockmgr parts outlive one instance: the parent's session (which
 * created the names) and the name cache. Drop them before lockmgrd goes. */
void prim_lockmgr_shutdown(void);

/* The implementations (prim_host.c, prim_lockmgr.c). */
extern const struct prim_ops prim_robust_ops, prim_flock_ops, prim_ofd_ops,
	prim_posix_sem_ops, prim_sysv_sem_ops, prim_futex_ops,
	prim_lockmgr_ops, prim_lockmgr_ref_ops, prim_redis_ops,
	prim_rwlock_ops;

/* Error codes of our own, below -errno's range and outside LM_E*. */
#define PRIM_ELIMIT (-2001) /* more locks than this primitive supports */
#define PRIM_ELOST (-2002)  /* released a lock whose lease had run out */

/* SysV semaphore sets not yet removed, for an interrupted run. */
void prim_host_cleanup_signal_safe(void);

#endif
