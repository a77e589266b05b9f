/*
 * clients.h - the client processes that the demos and the tests fork,
 * as building blocks:
 *
 *   a loop client     acquires and releases a lock round after round;
 *   a failing client  the same, but dies at a chosen point (before,
 *                     inside or after its critical section of a chosen
 *                     round) by SIGKILL, abort() or _exit();
 *   a fenced client   passes its token to a fenced store on every access
 *                     inside its critical section.
 *
 * A client takes its lock in X (lm_acquire) unless mode says otherwise
 * (lm_acquire_ex). A fenced client in X writes the store; in any other
 * mode it reads it: it only looks at the highest token the store has
 * accepted (see run_client).
 *
 * One struct describes all three (crash and store are optional), and
 * run_client() runs it in the calling process: fork first.
 */
#ifndef LOCKMGR_EXAMPLES_CLIENTS_H
#define LOCKMGR_EXAMPLES_CLIENTS_H

#include <stdatomic.h>
#include <stdint.h>

#include "client/lockmgr.h"

enum crash_point { CRASH_NEVER, CRASH_BEFORE, CRASH_INSIDE, CRASH_AFTER };
enum crash_how { CRASH_SIGKILL, CRASH_ABORT, CRASH_EXIT };

/* What happened, for the caller's timeline or audit. */
enum client_event {
	EV_WANTS,      /* about to acquire */
	EV_ACQUIRED,   /* g is the grant */
	EV_REFUSED,    /* acquire failed: rc says why */
	EV_WROTE,      /* the store accepted token g->token */
	EV_REJECTED,   /* the store rejected it; highest says what beat it */
	EV_READ,       /* a reader looked at the store: highest is the
			* highest token it had accepted (> g->token: a
			* later writer had written, so the reader's lease
			* was over) */
	EV_RELEASED,   /* rc: 0, or LM_ELEASELOST if the lease had been lost */
	EV_CRASHING,   /* about to die as configured */
};

struct client_spec {
	const char *region;     /* NULL: $LOCKMGR_REGION or /lockmgr */
	const char *lock;
	int id;                 /* shown in events and store records */
	int64_t ttl_ms;
	int64_t wait_ms;        /* per acquire */
	uint32_t mode;          /* LM_MODE_*: 0 is X */
	int rounds;             /* < 0: until *stop */
	int hold_ms;            /* time inside the critical section (a
	                         * CRASH_INSIDE happens half-way through) */
	int gap_ms;             /* time between rounds */
	_Atomic int *stop;      /* optional: set non-zero to end the loop */
	const char *store_path; /* fenced client: write here each round */
	enum crash_point crash_at;
	int crash_round;        /* which round (0-based) to die in */
	enum crash_how crash_how;
	/* Optional hook, called in the client process. */
	void (*on_event)(const struct client_spec *s, enum client_event ev,
			 int round, const lm_grant *g, int rc,
			 uint64_t highest);
	void *arg;              /* for the hook */
};

/*
 * Run the client to the end of its rounds (or until *stop). Returns 0,
 * or a negative LM_E* or FS_E* code for an error it could not go on
 * after.
 * A failing client does not return from its crash round.
 */
int run_client(const struct client_spec *s);

/* Die now, the configured way. */
_Noreturn void client_crash(enum crash_how how);

const char *client_crash_how_name(enum crash_how how);

#endif
