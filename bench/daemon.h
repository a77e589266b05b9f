/*
 * daemon.h - the lockmgrd that lockbench starts for itself.
 *
 * A private region (/lockbench-<pid>), sized for the many-locks
 * scenario, with --restart-delay -1 so that a server the server-down
 * scenario kills stays down while it measures. The tree scenario starts
 * two more for itself (/lockbench-<pid>-tree and -flat).
 */
#ifndef LOCKBENCH_DAEMON_H
#define LOCKBENCH_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Start it and wait (bounded) until its three servers are UP.
 * 0, or -1 with a message on stderr. */
int lmd_start(void);

/* SIGTERM, bounded wait (then SIGKILL), region removed. */
void lmd_stop(void);

/*
 * Another lockmgrd of our own, beside the main one, on region (sized for
 * nlocks names; --tree if tree): the tree scenario starts a tree region
 * and a flat twin of the same size, so that only --tree differs. Waits
 * like lmd_start. Returns its slot for lmd_stop_extra, or -1 with a
 * message on stderr. The lmd_* calls below are the main one's.
 */
int lmd_start_extra(const char *region, uint32_t nlocks, bool tree);
void lmd_stop_extra(int slot);

/* SIGKILL server idx and wait until the region marks it DOWN. */
int lmd_kill_server(unsigned idx);

/* Bytes of our lockmgrd's region, from its shm object; NAN if unknown. */
double lmd_region_bytes(void);

/* The sizes our lockmgrd's region header records. */
struct lmd_layout {
	uint32_t max_locks;
	uint32_t max_sessions;
	uint32_t bucket_count;
	uint32_t nservers;
	uint32_t name_size;
	uint32_t slot_size;
	uint32_t session_size;
	uint64_t region_size;
};
/* 0, or -1 if the region cannot be attached. */
int lmd_region_layout(struct lmd_layout *out);

/* For the signal handler: SIGTERM every supervisor that runs. */
void lmd_stop_signal_safe(void);

#endif
