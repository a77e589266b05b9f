/*
 * lockctl.h - what the files of the lockctl command share: exit codes,
 * the parsed global options and the entry point of each command.
 */
#ifndef LOCKMGR_CLIENT_LOCKCTL_H
#define LOCKMGR_CLIENT_LOCKCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../../shm/region.h"
#include "../lockmgr.h"

#define LOCKCTL_VERSION "0.1"

/* Exit codes: sysexits.h values where one fits, flock(1)'s habit of 75
 * for "could not get the lock in time", and a shell's 126/127 for a
 * command that cannot be run. */
#define EX_CTL_OK          0
#define EX_CTL_USAGE       64  /* bad flag, name or number */
#define EX_CTL_UNAVAILABLE 69  /* no region, no quorum, incompatible */
#define EX_CTL_LEASELOST   70  /* the lease was lost while CMD ran */
#define EX_CTL_OSERR       71  /* fork, pidfd or signalfd failed */
#define EX_CTL_TEMPFAIL    75  /* lock not acquired within --wait */
#define EX_CTL_NOEXEC      126 /* CMD found but not executable */
#define EX_CTL_NOTFOUND    127 /* CMD not found */

/* The name messages begin with: "lockctl", or "lmflock" when lockctl
 * was started under that name (lockctl.c's main). */
extern const char *ctl_prog;

/* The command being run ("run", "server", ...), or NULL (lmflock, or
 * none yet): option errors begin "lockctl run: --ttl: ...", as a
 * command's other usage errors do. */
extern const char *ctl_cmd;

/* Options that apply to every command. */
struct ctl_global {
	const char *region_arg;                 /* -r/--region, or NULL */
	char region[LM_REGION_NAME_MAX + 2];    /* resolved "/name" */
};

/* The getopt long option and help line shared by every command. */
#define CTL_REGION_HELP                                                  \
	"  -r, --region NAME  region to use (default $LOCKMGR_REGION, else " \
	"/lockmgr)\n"

/* Resolve g->region from g->region_arg; prints and returns EX_CTL_USAGE
 * when the name is bad. */
int ctl_resolve_region(struct ctl_global *g);

/*
 * Parse a whole decimal integer for option `flag`: digits only (a '-'
 * only when min < 0), nothing before or after them, within [min, max].
 * `unit` ("ms", or NULL) goes into the messages. Prints a message naming
 * the flag and the value, and returns -1, on error.
 */
/* A lock mode's name (X, S, IS, IX, SIX), and back (case-insensitive):
 * 0, or -1 for something that is not one. */
const char *ctl_mode_name(uint32_t mode);
int ctl_parse_mode(const char *s, uint32_t *mode);

int ctl_parse_i64(const char *s, const char *flag, const char *unit,
		  int64_t min, int64_t max, int64_t *out);

/* Print `len` bytes of s so that control bytes and quotes cannot upset
 * a terminal: printable ASCII as is, everything else as \xNN. Returns
 * the number of columns written. */
int ctl_print_escaped(FILE *f, const char *s, size_t len);

/*
 * Write len bytes of s to f as a JSON string. Lock names are bytes, not
 * text: valid UTF-8 passes as is, any other byte is written as \u00XX
 * (its Latin-1 reading), which keeps the output valid JSON.
 */
void ctl_json_str(FILE *f, const char *s, size_t len);

/* Block SIGINT, SIGTERM and SIGHUP and return a signalfd that reads
 * them (for a poll loop that ends on them), or -1. */
int ctl_end_signals(void);

/* Print why `name` is not a lock name (a long one shortened). */
void ctl_bad_lock_name(const char *name);

/* status_etcd.c: check and copy an etcd:// address into g->region, and
 * the message for an error connecting to one (an exit code). */
int ctl_resolve_etcd(struct ctl_global *g, const char *addr);
int ctl_etcd_error(int err, const char *addr);

/* Print a message for a service error from lm_connect/lm_region_attach
 * and return the exit code that goes with it. why may be NULL. */
int ctl_service_error(int err, const char *region, const char *why);

/*
 * Why a RECOVERING server does not count yet, and how long it has left,
 * as a phrase for a note ("counts again in 850 ms: leases granted before
 * its restart"). Writes into buf and returns it.
 */
const char *ctl_recovery_note(const struct lm_server *s, int64_t now_ms,
			      char *buf, size_t n);

/* Print the server table of `lockctl status` (state, epoch, heartbeat,
 * restarts, and notes: recovery, skew, isolation); an exit code. */
int ctl_server_table(const struct lm_region *r);

/*
 * Holding a lock while a command runs (run.c): what `lockctl run` and
 * `lockctl flock` share. The caller fills in the request (name, mode,
 * ttl_ms, deadlock_ms), then
 *
 *   ctl_hold_connect   resolves the region, checks --ttl, connects;
 *   ctl_hold_acquire   takes the lock (called by the front end, which
 *                      reports a busy lock its own way), with
 *                      ctl_hold_acquire_error for what it does not
 *                      handle itself, then ctl_hold_end;
 *   ctl_hold_catch_signals  right after the grant, before anything
 *                      tells of it: the signals passed on to CMD are
 *                      read from a signalfd from then on (else one
 *                      sent at once would kill lockctl instead);
 *   ctl_hold_run       exports LOCKMGR_* (LOCKMGR_SLOT for a
 *                      semaphore's slot), runs CMD as a child, renews
 *                      the lease until it exits, releases, disconnects;
 *                      or ctl_hold_export + exec for a command that
 *                      replaces the front end (flock -F).
 *
 * Each returns an exit status (0 when the step succeeded).
 */
struct ctl_hold {
	/* The request. */
	const char *who;        /* for usage messages: "lockctl run" */
	const char *name;
	uint32_t mode;          /* LM_MODE_* */
	int64_t ttl_ms;         /* CTL_TTL_UNSET: the default */
	bool ttl_default_max;   /* an unset TTL is the region's max TTL */
	int64_t deadlock_ms;    /* 0: the library's default */
	int64_t grace_ms;       /* SIGTERM to SIGKILL when the lease is
				 * lost; 0: CTL_KILL_GRACE_MS */
	uint32_t slots;         /* > 0: take a slot of the semaphore
				 * `name` of this many slots (lockctl run
				 * --slots), not the lock */
	/* Filled in on the way. */
	lm_client *c;
	int64_t max_ttl;        /* the region's */
	lm_grant g;
	bool held;              /* g is ours to release */
	const char *cmd;
	pid_t child;
	int pidfd;
	int sigfd;
	sigset_t oldmask;
};

#define CTL_TTL_UNSET INT64_MIN
#define CTL_KILL_GRACE_MS 5000
/* A wait longer than this (31 years) is a typo, and would overflow the
 * library's nanosecond deadline. */
#define CTL_MAX_WAIT_MS INT64_C(1000000000000)
#define CTL_HOLD_INIT(who_)                                              \
	((struct ctl_hold){.who = (who_), .ttl_ms = CTL_TTL_UNSET,       \
			   .pidfd = -1, .sigfd = -1})

int ctl_hold_connect(struct ctl_global *g, struct ctl_hold *h);
/* lm_acquire_ex of the request, waiting wait_ms: an LM_E* code. */
int ctl_hold_acquire(struct ctl_hold *h, int64_t wait_ms);
int ctl_hold_acquire_error(const struct ctl_hold *h, int err,
			   int64_t wait_ms);
int ctl_hold_catch_signals(struct ctl_hold *h);
int ctl_hold_export(const struct ctl_global *g, const struct ctl_hold *h);
int ctl_hold_run(const struct ctl_global *g, struct ctl_hold *h,
		 char **cmd);
/* Release (if held) and disconnect: after a failed acquire or export. */
void ctl_hold_end(struct ctl_hold *h);

/* CMD's process tree (cmd_tree.c): lockctl becomes a child subreaper,
 * so that CMD and everything it started are lockctl's descendants. */
int ctl_tree_adopt(void);               /* 0 or -errno */
/* Reap the exited processes of the tree lockctl adopted (not cmd). */
void ctl_tree_reap(pid_t cmd);
/* Send sig to every descendant but `except` (0: none); how many, or -1
 * if /proc could not be read. */
int ctl_tree_signal(int sig, pid_t except);
/* Reap until lockctl has no child left (true) or timeout_ms has passed
 * (false). Call once CMD has been reaped. */
bool ctl_tree_gone(int timeout_ms);
/* SIGKILL the tree, walk after walk, until it is gone (true) or
 * timeout_ms has passed (false). */
bool ctl_tree_kill(int timeout_ms);

/* The etcd backend (status_etcd.c): is g->region an etcd:// address;
 * `lockctl status` of one; and, for commands that work on the
 * shared-memory service only (server, top), a message and
 * EX_CTL_USAGE when it is not that service. */
bool ctl_is_etcd(const struct ctl_global *g);
int ctl_status_etcd(struct ctl_global *g, bool json);
int ctl_shm_only(const struct ctl_global *g, const char *cmd);

/* The commands; argv[0] is the command name. */
int ctl_status(struct ctl_global *g, int argc, char **argv);
int ctl_run(struct ctl_global *g, int argc, char **argv);
int ctl_flock(struct ctl_global *g, int argc, char **argv);
int ctl_server(struct ctl_global *g, int argc, char **argv);
int ctl_top(struct ctl_global *g, int argc, char **argv);
int ctl_watch(struct ctl_global *g, int argc, char **argv);
int ctl_leader(struct ctl_global *g, int argc, char **argv);
int ctl_elect(struct ctl_global *g, int argc, char **argv);

#endif
