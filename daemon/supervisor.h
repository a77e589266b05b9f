/*
 * supervisor.h - lockmgrd's state, shared by its files.
 *
 * Threads: the main thread runs the event loop (signals, server and
 * session pidfds, timers) and owns every field here; the registrar thread
 * (session_monitor.c) sleeps on the region's session_seq futex, opens a
 * pidfd for each new session and hands it over through news_head/tail
 * (a liburcu wait-free queue) and the newsfd eventfd.
 */
#ifndef LOCKMGR_DAEMON_SUPERVISOR_H
#define LOCKMGR_DAEMON_SUPERVISOR_H

#include <pthread.h>
#include <urcu/wfcqueue.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../shm/region.h"

struct lm_options {
	const char *region;
	const char *pidfile;
	const char *state_dir;    /* NULL: nothing on disk (--ephemeral) */
	bool ephemeral;
	struct lm_region_params params;
	int64_t restart_delay_ms; /* -1: keep a dead server down */
	int64_t deadlock_timeout_ms; /* 0: the library's default */
	bool release_on_exit;
	bool daemonize;
	bool fresh;
	bool quiet;
};

/* epoll data: kind in the top byte, then generation and index. */
#define EV_SIGNAL  1u
#define EV_SERVER  2u
#define EV_SESSION 3u
#define EV_NEWS    4u
#define EV_DATA(kind, gen, idx)                                           \
	(((uint64_t)(kind) << 56) | ((uint64_t)(gen) << 24) | (idx))
#define EV_KIND(d) ((unsigned)((d) >> 56))
#define EV_GEN(d)  ((uint32_t)(((d) >> 24) & 0xffffffffu))
#define EV_IDX(d)  ((uint32_t)((d) & 0xffffffu))

struct tracked_session {
	int pidfd;        /* -1 if untracked */
	uint32_t gen;     /* slot generation the pidfd belongs to */
	int64_t free_at_ms; /* >0: dead, locks left to lease expiry; the
	                     * slot is freed at this time */
};

struct tracked_server {
	pid_t pid;
	int pidfd;
	bool child;           /* ours to reap */
	int64_t restart_at_ms;/* >0: scheduled restart */
};

struct supervisor {
	struct lm_options opt;
	struct lm_region region;
	char name[LM_REGION_NAME_MAX + 2];
	int epfd;
	int sigfd;
	int timerfd;
	bool fresh_region;
	bool old_region_seen;             /* --fresh discarded a valid region
	                                   * (with no client attached)... */
	int64_t old_region_floor;         /* ... whose servers carried this
	                                   * quarantine floor (local ms) */
	int64_t prev_leases_until_ms;     /* local ms: no server counts
	                                   * before then (a new region while
	                                   * the last service's leases may
	                                   * run), else 0 */
	struct tracked_server servers[LM_NSERVERS];
	pthread_t registrar;
	bool registrar_running;
	_Atomic bool stopping;
	struct tracked_session *sessions; /* max_sessions entries */
	struct cds_wfcq_head news_head;   /* registrar -> main thread */
	struct cds_wfcq_tail news_tail;
	int newsfd;                       /* eventfd: news is queued */
};

/* servers.c */
int sup_start_server(struct supervisor *sv, unsigned i, bool restart);
void sup_adopt_or_start_servers(struct supervisor *sv);
void sup_server_died(struct supervisor *sv, unsigned i);
void sup_run_due_restarts(struct supervisor *sv, int64_t now_ms);
void sup_take_start_requests(struct supervisor *sv);
void sup_stop_servers(struct supervisor *sv);
int64_t sup_next_due_ms(struct supervisor *sv);

/* session_monitor.c */
int sup_start_registrar(struct supervisor *sv);
void sup_stop_registrar(struct supervisor *sv);
void sup_session_died(struct supervisor *sv, uint32_t idx, uint32_t gen);
void sup_take_session_news(struct supervisor *sv);
void sup_free_deferred_sessions(struct supervisor *sv, int64_t now_ms);

#endif
