/*
 * snapshot.h - one read of the region's servers, sessions and
 * locks, as `lockctl status` and `lockctl top` show them.
 *
 * A snapshot only reads. It attaches nothing and registers no session:
 * the caller attaches the region, and a monitoring loop must neither
 * fill the session table nor show up in what it reports. It is not
 * atomic (the region changes while it is read); each lock is judged the
 * way a client would judge it, by one pass over its slots in the three
 * tables.
 */
#ifndef LOCKMGR_CLIENT_LOCKCTL_SNAPSHOT_H
#define LOCKMGR_CLIENT_LOCKCTL_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../shm/clock.h"
#include "../../shm/layout.h"
#include "../../shm/region.h"

struct ctl_srv_info {
	const char *state;     /* up, hung, recovering, down */
	int pid;
	uint64_t epoch;
	int64_t hb_age_ms;     /* -1 when down */
	uint64_t restarts;
	int64_t quarantine_ms; /* left, when recovering and known; else 0 */
	char recovery[160];    /* why it is recovering, and for how long */
	uint64_t token_floor;
	uint64_t expired;
	int64_t skew_offset_ms;
	int64_t skew_rate_ppm;
	bool table_lost;       /* restarted without its table: waits for
	                        * its peers' token marks, not only for
	                        * its quarantine */
	bool usable;           /* counts towards a client's quorum now */
	struct lm_skew_now skew; /* its clock's parameters: they change
	                        * only when someone sets them */
	int iso_pids[LM_ISOLATION_RULES]; /* running processes it refuses
	                        * (lockctl server isolate), connected or
	                        * not */
	unsigned niso;
};

struct ctl_sess_info {
	uint32_t slot;
	int pid;
	const char *state;     /* live, gone, dead, claiming */
	int64_t waiting_on;    /* lock index, or -1 */
	uint32_t wait_mode;    /* LM_MODE_* it waits for */
	uint64_t acquires;
	uint32_t gen;          /* generation of the slot's life: which
	                        * session this is, with slot */
	uint64_t start_time;   /* its process's (0: unknown) */
	uint32_t held;         /* locks of the snapshot it holds */
	uint32_t isolated;     /* bit i: server i refuses it (a simulated
	                        * partition, lockctl server isolate) */
};

/* A holder of a counted mode (S, IS, IX, SIX). */
struct ctl_holder {
	uint32_t slot;
	int pid;
	uint32_t mode;
};

#define CTL_SHARED_SHOWN 8

struct ctl_lock_info {
	uint32_t idx;
	char name[LM_NAME_MAX + 1];
	uint32_t len;
	int holder_pid;        /* 0: not held */
	int64_t holder_slot;   /* -1: not held */
	uint64_t token;
	int64_t lease_left_ms;
	uint32_t waiters;
	unsigned tables;       /* bit i: held on table i */
	uint64_t gen;          /* generation of the name's life */
	uint64_t grant;        /* the holder's owner word without its
	                        * epoch bits (session and sequence: one
	                        * grant); 0 when not held */
	int64_t ttl_ms;        /* the TTL the holder asked for, when its
	                        * session still says (0: unknown) */
	int64_t turn_since_ns; /* when the head of its queue began its
	                        * turn (monotonic; see lm_queue), or 0 */
	char mode[32];         /* what is held: "X", "S x3", "IS x1 IX x2",
	                        * or "-" */
	uint32_t nshared;      /* counted holders (shared[] the first ones;
	                        * token and lease_left_ms are their group's) */
	struct ctl_holder shared[CTL_SHARED_SHOWN];
	int32_t sem_slot;      /* a semaphore's slot lock: its slot (name
	                        * and len are then the semaphore's), else
	                        * -1 */
	uint32_t sem_slots;    /* that semaphore's slot count, read from
	                        * the gate the slot names (0: unknown) */
};

struct ctl_snapshot {
	const struct lm_region *r;
	int64_t now_ns;
	int sup_pid;
	const char *sup_state; /* running, dead, stopped, none */
	bool sup_alive;
	struct ctl_srv_info srv[LM_NSERVERS];
	unsigned usable;
	struct ctl_sess_info *sess;   /* by slot, the free ones left out */
	uint32_t nsess;
	struct ctl_lock_info *locks;  /* by index: held or waited for */
	uint32_t nlocks;
};

/*
 * Read region r into s (which the caller has not filled in). Returns 0,
 * or -1 when out of memory; either way ctl_snapshot_free(s) frees what
 * was allocated.
 */
int ctl_snapshot_take(struct ctl_snapshot *s, const struct lm_region *r);
void ctl_snapshot_free(struct ctl_snapshot *s);

/* The name of lock idx, copied into buf (LM_NAME_MAX + 1), or NULL. */
const char *ctl_snapshot_lock_name(const struct ctl_snapshot *s, int64_t idx,
				   uint32_t *len, char *buf);

/* The width of a NAME column for the snapshot's locks (4 to 40). */
int ctl_snapshot_name_column(const struct ctl_snapshot *s);

/* Columns the name takes when printed by ctl_print_escaped. */
int ctl_name_width(const char *name, uint32_t len);

/* Print a lock's name as status shows it: escaped, and a semaphore's
 * slot as "NAME [slot K/N]". Returns the columns written. */
int ctl_print_lock_name(FILE *f, const struct ctl_lock_info *li);

/*
 * What status's NOTE column says about a server: why it is recovering,
 * that it is hung, its clock skew, and the processes it isolates,
 * "; "-separated ("" if nothing).
 */
const char *ctl_server_note(const struct ctl_srv_info *si, char *buf,
			    size_t n);

/* Is the process pid, started at start (0: unknown), still alive? A
 * zombie counts as dead. */
bool ctl_pid_alive(int pid, uint64_t start);

#endif
