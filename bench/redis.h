/*
 * redis.h - the redis-server that lockbench starts for its Redis peer.
 *
 * Its own server, never the host's: on a Unix socket in a private
 * directory (mode 0700, under $TMPDIR or /tmp), no TCP port, nothing
 * on disk (--save "" --appendonly no), so that the figures are those of
 * a local Redis with nothing else to do, and nothing is left behind.
 * Stopped by its pid at the end.
 */
#ifndef LOCKBENCH_REDIS_H
#define LOCKBENCH_REDIS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Is there a redis-server to start? bench_cfg.redis_server if set (a
 * path), else "redis-server" looked up in PATH. false with a sentence
 * in why when not.
 */
bool redis_available(char *why, size_t n);

/* Start it and wait (bounded) until it answers PING. 0, or -1 with a
 * message on stderr. */
int redis_start(void);

/* The Unix socket it listens on (valid after redis_start). */
const char *redis_socket(void);

/* SIGTERM, bounded wait (then SIGKILL), its directory removed. */
void redis_stop(void);

/* For the signal handler: SIGTERM it, remove its socket and directory
 * (kill, unlink, rmdir only). */
void redis_stop_signal_safe(void);

#endif
