/*
 * etcd_cluster.h - a private etcd for the etcd scenario: one member or
 * three, on loopback ports the kernel picks (never a system etcd's
 * 2379/2380), with a temporary data directory, started and waited for
 * (bounded) before any measurement, stopped by pid and removed after.
 *
 * The binary is $LOCKMGR_ETCD, else `etcd` on PATH (Debian's
 * etcd-server installs /usr/bin/etcd); etcdctl is $LOCKMGR_ETCDCTL,
 * else `etcdctl` on PATH. Without etcd the scenario is skipped with a
 * message, not failed: it measures an optional backend.
 *
 * Members run with etcd's default heartbeat and election timeout (100
 * and 1000 ms), as a user's cluster would: those set how fast a dead
 * leader is replaced and the shortest lease (2 s), not how fast a
 * healthy cluster commits.
 */
#ifndef LOCKBENCH_ETCD_CLUSTER_H
#define LOCKBENCH_ETCD_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ETCD_CLUSTER_MAX 3

struct etcd_cluster {
	unsigned n;
	pid_t pid[ETCD_CLUSTER_MAX];     /* 0: not running */
	int client_port[ETCD_CLUSTER_MAX];
	int peer_port[ETCD_CLUSTER_MAX];
	char dir[256];        /* data dirs and member logs, removed by stop */
	char addr[512];       /* etcd://127.0.0.1:P1,.../<prefix> */
	char endpoints[256];  /* 127.0.0.1:P1,... (etcdctl --endpoints) */
};

/* The etcd / etcdctl binary to run, or NULL if there is none. The
 * answer is a static buffer. */
const char *etcd_cluster_binary(void);
const char *etcd_cluster_ctl_binary(void);

/*
 * Start n (1 to 3) members and wait, at most timeout_ms in all, until
 * every one answers /health with true (which in etcd 3.4 also means the
 * cluster has a leader). prefix is the address's ("/lockbench").
 * Returns 0, or -1 with a sentence in err (the members already started
 * are stopped and the directory is removed).
 */
int etcd_cluster_start(struct etcd_cluster *c, unsigned n, const char *prefix,
		       int64_t timeout_ms, char *err, size_t errn);

/* Stop every member by pid (SIGKILL: its data goes with the
 * directory), reap it, and remove the data directory. Safe to call
 * twice. */
void etcd_cluster_stop(struct etcd_cluster *c);

/* For the signal handler: SIGKILL every member still running (the
 * temporary directory is left: removing it is no async-signal-safe
 * work; it is under $TMPDIR and named lockbench-etcd-*). */
void etcd_cluster_kill_all_signal_safe(void);

#endif
