/*
 * etcd_harness.h - a real etcd for the tests: Debian's etcd-server
 * (/usr/bin/etcd, or $LOCKMGR_ETCD), one member or a three-member
 * cluster on loopback ports of the test's own with a temporary data
 * directory, never the package's default daemon on 2379.
 *
 * Members run with a 25 ms heartbeat and a 250 ms election timeout, so
 * that an election after a SIGKILL takes well under a second and etcd's
 * shortest lease is 1 s (1.5 election timeouts, rounded up).
 */
#ifndef LOCKMGR_TESTS_ETCD_HARNESS_H
#define LOCKMGR_TESTS_ETCD_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#define ETCD_H_MAX 3

struct etcd_h {
	unsigned n;
	pid_t pid[ETCD_H_MAX];      /* 0: not running */
	int client_port[ETCD_H_MAX];
	int peer_port[ETCD_H_MAX];
	char dir[256];              /* the data dirs and logs live here */
	char addr[512];             /* etcd://127.0.0.1:P1,.../<prefix> */
	char cluster[512];          /* --initial-cluster */
};

/* The etcd binary, or NULL if there is none (the caller skips). */
const char *etcd_h_binary(void);

/* Start n (1 or 3) members and wait, bounded, until each is healthy
 * and the cluster has a leader. prefix is the address's (e.g. "/t"). */
void etcd_h_start(struct etcd_h *h, unsigned n, const char *prefix);
/* Start member i again (same data dir) and wait until it is healthy. */
void etcd_h_restart(struct etcd_h *h, unsigned i);
/* SIGKILL member i and reap it. */
void etcd_h_kill(struct etcd_h *h, unsigned i);
/* The index of the leader as the members see it (bounded wait). */
unsigned etcd_h_leader(struct etcd_h *h);
/* Stop every member by pid (SIGTERM, bounded, then SIGKILL) and remove
 * the data dirs. */
void etcd_h_stop(struct etcd_h *h);

/* Run `curl`-like POST of body to member i's path; the answer into out
 * (for the tests' own checks). 0 or -1. */
int etcd_h_post(const struct etcd_h *h, unsigned i, const char *path,
		const char *body, char *out, size_t n);

#endif
