/*
 * daemon.h - the lockmgrd that lockbench starts for itself.
 *
 * A private region (/lockbench-<pid>), sized for the many-locks
 * scenario, with --restart-delay -1 so that a server the server-down
 * scenario kills stays down while it measures.
 */
#ifndef LOCKBENCH_DAEMON_H
#define LOCKBENCH_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

/* Start it and wait (bounded) until its three servers are UP.
 * 0, or -1 with a message on stderr. */
int lmd_start(void);

/* SIGTERM, bounded wait (then SIGKILL), region removed. */
void lmd_stop(void);

/* SIGKILL server idx and wait until the region marks it DOWN. */
int lmd_kill_server(unsigned idx);

/* For the signal handler: SIGTERM the supervisor if it runs. */
void lmd_stop_signal_safe(void);

#endif
