/*
 * server.h - one lock server: the process that owns table i.
 */
#ifndef LOCKMGR_DAEMON_SERVER_H
#define LOCKMGR_DAEMON_SERVER_H

/* Run server `index` on region `name` until SIGTERM; state_dir may be
 * NULL. Returns the exit code. */
int lm_server_main(unsigned index, const char *name, const char *state_dir);

#endif
