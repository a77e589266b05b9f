/*
 * flock.c - `lockctl flock` and `lmflock`: flock(1)'s command line over
 * lockmgr, so that a script moves from flock to lockmgr by changing the
 * command's name.
 *
 *   lmflock [OPTION]... LOCK CMD [ARG]...
 *   lmflock [OPTION]... LOCK -c CMDSTRING
 *
 * LOCK (flock's file) is used as the lock's name: no file is opened or
 * created. The options and exit codes are util-linux flock's: -s, -x/-e,
 * -n, -w SECONDS (fractions allowed; 0 is -n), -E N (the exit code of a
 * conflict or a timeout, 1 by default), -c, -o, -F, --verbose; plus
 * lockmgr's --ttl and -r. The rest of the work (connect, take the lock,
 * run CMD as a child while renewing the lease, stop it if the lease is
 * lost) is `lockctl run`'s, shared through ctl_hold_* (run.c).
 *
 * What has no meaning with a lease, and why:
 *
 *  - the fd form (`flock [options] NUMBER`) and -u/--unlock lock and
 *    unlock an open file; a lockmgr lock belongs to a session, not to a
 *    descriptor, so there is nothing to pass a number for and nothing to
 *    unlock: both are refused (64) with what to do instead;
 *  - -o/--close keeps CMD from inheriting the locked descriptor: CMD
 *    never holds a lockmgr lock anyway (lmflock does), so it is accepted
 *    and does nothing (and refused with -F, as flock refuses the pair);
 *  - -F/--no-fork replaces flock by CMD, which keeps the open file and
 *    with it the lock. Here the lock is lmflock's session's, registered
 *    under its pid, which exec keeps: lmflock takes a lease of the
 *    region's max TTL (or --ttl) and execs CMD in place. The lock then
 *    lasts until CMD exits (the supervisor sees the pid die and frees
 *    it) or the lease ends, whichever comes first: nobody renews it.
 *    Because CMD never releases it, the next holder sees
 *    LOCKMGR_RECOVERED=1.
 *
 * A failed -n or -w says nothing without --verbose, as in flock (cron
 * jobs and scripts test the exit code); every other error says what
 * happened and what to do.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "../../shm/name_index.h"
#include "../../shm/test_hook.h"
#include "../internal.h"
#include "lockctl.h"
#include "snapshot.h"
#include "../lockmgr.h"

#define DEFAULT_CONFLICT_EXIT 1 /* flock(1)'s */

struct flock_opts {
	struct ctl_hold h;
	const char *me;          /* "lmflock" or "lockctl flock" */
	int64_t wait_ms;         /* -1: until free; 0: -n */
	int conflict_exit;       /* -E */
	bool close_fd;           /* -o */
	bool no_fork;            /* -F */
	bool verbose;
	char **cmd;
	char *sh_c[4];           /* CMD of -c: $SHELL -c CMDSTRING */
};

static void flock_usage(const char *me)
{
	printf(
"Usage: %1$s [OPTION]... LOCK CMD [ARG]...\n"
"       %1$s [OPTION]... LOCK -c CMDSTRING\n"
"Run CMD while holding the lockmgr lock LOCK, with flock(1)'s options and\n"
"exit codes. LOCK is a lock name (a lock file's path is a fine one); no\n"
"file is opened or created. The lease is renewed while CMD runs, and CMD\n"
"gets LOCKMGR_LOCK, LOCKMGR_TOKEN, LOCKMGR_MODE, LOCKMGR_REGION, and\n"
"LOCKMGR_RECOVERED=1 when the last holder died without releasing.\n"
"\n"
"  -s, --shared          take a shared lock\n"
"  -x, -e, --exclusive   take an exclusive lock (the default)\n"
"  -n, --nb, --nonblock  fail rather than wait if LOCK is held\n"
"  -w, --wait, --timeout SECONDS\n"
"                        wait at most SECONDS (fractions allowed, e.g.\n"
"                        0.5; 0 is -n)\n"
"  -E, --conflict-exit-code N\n"
"                        exit N (0 to 255) when -n fails or -w runs out\n"
"                        (default 1)\n"
"  -c, --command CMDSTRING\n"
"                        run CMDSTRING with $SHELL -c (/bin/sh if unset);\n"
"                        it comes after LOCK\n"
"  -o, --close           accepted, and nothing to do: CMD never holds the\n"
"                        lock, %1$s does\n"
"  -F, --no-fork         exec CMD in place: the lock lasts until CMD exits\n"
"                        or its lease (the region's max TTL, or --ttl)\n"
"                        ends, whichever is first; nobody renews it\n"
"      --verbose         say how long the wait took, who held LOCK when\n"
"                        it began (pid, token), and the command run\n"
"      --ttl MS          lease length in ms (default 10000, or the\n"
"                        region's max TTL if shorter; renewed every TTL/3)\n"
"  -r, --region NAME     region to use (default $LOCKMGR_REGION, else\n"
"                        /lockmgr)\n"
"  -h, --help            show this help\n"
"  -V, --version         show the version\n"
"\n"
"Not here: the form '%1$s NUMBER' and -u/--unlock lock and unlock an open\n"
"file descriptor, and a lockmgr lock belongs to %1$s's session, not to a\n"
"descriptor: run the part of the script that needs the lock as CMD.\n"
"\n"
"Exit status:\n"
"  0    CMD's own status is passed on (128+N if signal N killed it)\n"
"  1    LOCK was busy with -n, or -w ran out (or the -E code)\n"
"  64   usage error (also the fd form and -u)\n"
"  69   service unavailable: lockmgrd not running, no quorum\n"
"  70   the lease was lost while CMD ran (CMD was stopped)\n"
"  71   a system call failed (fork, pidfd, signalfd)\n"
"  126  CMD is not executable;  127  CMD was not found\n"
"\n"
"See lockctl(1), section flock.\n", me);
}

static int try_help(const char *me)
{
	fprintf(stderr, "Try '%s --help'.\n", me);
	return EX_CTL_USAGE;
}

/*
 * flock's SECONDS: digits, optionally a '.' and more digits (".5" and
 * "5." too). The wait in ms, rounded up so that a wait shorter than a
 * millisecond still waits; 0 only for a zero (then -w is -n, as in
 * flock). -1 on error, with a message.
 */
static int parse_seconds(const char *me, const char *s, int64_t *ms)
{
	const char *p = s;
	int64_t sec = 0, ns = 0;
	bool digits = false;
	for (; *p >= '0' && *p <= '9'; p++, digits = true) {
		if (sec > CTL_MAX_WAIT_MS / 1000)
			goto range;
		sec = sec * 10 + (*p - '0');
	}
	if (*p == '.') {
		int64_t scale = 100000000;
		for (p++; *p >= '0' && *p <= '9'; p++, digits = true) {
			ns += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (!digits || *p != '\0') {
		fprintf(stderr, "%s: -w: '", me);
		ctl_print_escaped(stderr, s, 24);
		fprintf(stderr, "' is not a number of seconds, like 5 or 0.5\n");
		return -1;
	}
	if (sec > CTL_MAX_WAIT_MS / 1000)
		goto range;
	*ms = sec * 1000 + (ns + 999999) / 1000000;
	return 0;
range:
	fprintf(stderr, "%s: -w: '", me);
	ctl_print_escaped(stderr, s, 24);
	fprintf(stderr, "%s' is out of range (at most %" PRId64 " seconds)\n",
		strlen(s) > 24 ? "..." : "", CTL_MAX_WAIT_MS / 1000);
	return -1;
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

enum {
	OPT_VERBOSE = 0x100,
	OPT_TTL,
	OPT_FCNTL,
};

static int parse_args(struct ctl_global *g, int argc, char **argv,
		      struct flock_opts *o)
{
	static const struct option longopts[] = {
		{"shared", no_argument, NULL, 's'},
		{"exclusive", no_argument, NULL, 'x'},
		{"unlock", no_argument, NULL, 'u'},
		{"nonblock", no_argument, NULL, 'n'},
		{"nonblocking", no_argument, NULL, 'n'},
		{"nb", no_argument, NULL, 'n'},
		{"wait", required_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 'w'},
		{"conflict-exit-code", required_argument, NULL, 'E'},
		{"close", no_argument, NULL, 'o'},
		{"no-fork", no_argument, NULL, 'F'},
		{"verbose", no_argument, NULL, OPT_VERBOSE},
		{"ttl", required_argument, NULL, OPT_TTL},
		{"region", required_argument, NULL, 'r'},
		{"fcntl", no_argument, NULL, OPT_FCNTL},
		{"start", required_argument, NULL, OPT_FCNTL},
		{"length", required_argument, NULL, OPT_FCNTL},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *me = o->me;
	bool nonblock = false;
	int64_t v;
	int c;
	opterr = 0;
	optind = 0;
	/* '+': stop at LOCK, so that CMD's own options stay CMD's. */
	while ((c = getopt_long(argc, argv, "+:sxenoFuw:E:r:hV", longopts,
				NULL)) != -1) {
		switch (c) {
		case 's':
			o->h.mode = LM_MODE_S;
			break;
		case 'x':
		case 'e':
			o->h.mode = LM_MODE_X;
			break;
		case 'n':
			nonblock = true;
			break;
		case 'w':
			/* 0 is -n, as in flock. */
			if (parse_seconds(me, optarg, &o->wait_ms) != 0)
				return EX_CTL_USAGE;
			break;
		case 'E':
			if (ctl_parse_i64(optarg, "-E", NULL, 0, 255, &v) != 0)
				return EX_CTL_USAGE;
			o->conflict_exit = (int)v;
			break;
		case 'o':
			o->close_fd = true;
			break;
		case 'F':
			o->no_fork = true;
			break;
		case OPT_VERBOSE:
			o->verbose = true;
			break;
		case OPT_TTL:
			/* The range is the region's: checked once known. */
			if (ctl_parse_i64(optarg, "--ttl", "milliseconds",
					  INT64_MIN + 1, INT64_MAX,
					  &o->h.ttl_ms))
				return EX_CTL_USAGE;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'u':
			fprintf(stderr,
				"%s: -u/--unlock has no meaning here: a lockmgr "
				"lock is not held by a file descriptor that "
				"could be unlocked; %s holds it while CMD runs "
				"and releases it when CMD exits. Run only the "
				"part that needs the lock as CMD.\n", me, me);
			return EX_CTL_USAGE;
		case OPT_FCNTL:
			fprintf(stderr, "%s: %s: a lockmgr lock is a name, not "
					"a byte range of a file: drop the "
					"option\n", me, argv[optind - 1]);
			return EX_CTL_USAGE;
		case 'h':
			flock_usage(me);
			exit(EX_CTL_OK);
		case 'V':
			printf("%s %s\n", ctl_prog, LOCKCTL_VERSION);
			exit(EX_CTL_OK);
		case ':':
			fprintf(stderr, "%s: option '%s' needs a value\n", me,
				argv[optind - 1]);
			return try_help(me);
		default:
			if (optopt == 'c')
				fprintf(stderr, "%s: -c goes after the lock "
						"name: %s [OPTION]... LOCK -c "
						"CMDSTRING\n", me, me);
			else
				fprintf(stderr, "%s: unknown option '%s'\n", me,
					argv[optind - 1]);
			return try_help(me);
		}
	}
	/* As in flock: -n wins over -w. */
	if (nonblock)
		o->wait_ms = 0;
	if (o->no_fork && o->close_fd) {
		fprintf(stderr, "%s: the --no-fork and --close options are "
				"incompatible (as in flock): give one of them\n",
			me);
		return EX_CTL_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "%s: no lock name given\n", me);
		return try_help(me);
	}
	o->h.name = argv[optind++];
	if (optind >= argc) {
		if (all_digits(o->h.name))
			fprintf(stderr,
				"%s: '%s' looks like flock's file descriptor "
				"form, which has no meaning here: a lockmgr "
				"lock is not held by a descriptor. Give a lock "
				"name and the command to run under it: %s "
				"LOCK CMD [ARG]...\n", me, o->h.name, me);
		else
			fprintf(stderr, "%s: no command given after the lock "
					"name: %s [OPTION]... LOCK CMD [ARG]... "
					"or LOCK -c CMDSTRING\n", me, me);
		return EX_CTL_USAGE;
	}
	if (lm_name_check(o->h.name, strnlen(o->h.name, LM_NAME_MAX + 1)) !=
	    0) {
		ctl_bad_lock_name(o->h.name);
		return EX_CTL_USAGE;
	}
	const char *a = argv[optind];
	if (strcmp(a, "-c") == 0 || strcmp(a, "--command") == 0) {
		if (argc - optind != 2) {
			fprintf(stderr, "%s: %s takes exactly one argument, the "
					"command string (quote it: %s LOCK -c "
					"'CMD ARG...')\n", me, a, me);
			return EX_CTL_USAGE;
		}
		const char *sh = getenv("SHELL");
		o->sh_c[0] = (char *)(sh != NULL && *sh != '\0' ? sh
								: "/bin/sh");
		o->sh_c[1] = "-c";
		o->sh_c[2] = argv[optind + 1];
		o->sh_c[3] = NULL;
		o->cmd = o->sh_c;
		return 0;
	}
	/* Not flock's, but `lockctl run`'s habit: LOCK -- CMD. */
	if (strcmp(a, "--") == 0 && ++optind >= argc) {
		fprintf(stderr, "%s: no command given after '--'\n", me);
		return EX_CTL_USAGE;
	}
	o->cmd = argv + optind;
	return 0;
}

/*
 * --verbose, when LOCK is busy: who holds it, from one snapshot of the
 * region (as `lockctl status` reads it). The lock may change hands
 * while it is read; what is printed is what was seen.
 */
static void describe_holder(const struct flock_opts *o)
{
	const char *me = ctl_prog;
	struct ctl_snapshot s;
	const struct lm_region *r = &o->h.c->ctx.region;
	size_t len = strlen(o->h.name);
	printf("%s: ", me);
	ctl_print_escaped(stdout, o->h.name, SIZE_MAX);
	if (r->hdr == NULL) { /* etcd: see lockctl status */
		printf(" is held\n");
		return;
	}
	if (ctl_snapshot_take(&s, r) != 0) {
		ctl_snapshot_free(&s);
		printf(" is held (out of memory reading who holds it)\n");
		return;
	}
	const struct ctl_lock_info *li = NULL;
	for (uint32_t k = 0; k < s.nlocks; k++)
		if (s.locks[k].len == len &&
		    memcmp(s.locks[k].name, o->h.name, len) == 0)
			li = &s.locks[k];
	if (li != NULL && li->holder_slot >= 0) {
		printf(" is held by pid %d (exclusive, token %" PRIu64
		       ", lease %" PRId64 " ms left)", li->holder_pid,
		       li->token, li->lease_left_ms);
	} else if (li != NULL && li->nshared != 0) {
		printf(" is held by pid");
		if (li->nshared > 1)
			printf("s");
		for (uint32_t k = 0; k < li->nshared && k < CTL_SHARED_SHOWN;
		     k++)
			printf("%s %d (%s)", k ? "," : "", li->shared[k].pid,
			       ctl_mode_name(li->shared[k].mode));
		if (li->nshared > CTL_SHARED_SHOWN)
			printf(" and %u more",
			       li->nshared - CTL_SHARED_SHOWN);
		printf(" (token %" PRIu64 ", lease %" PRId64 " ms left)",
		       li->token, li->lease_left_ms);
	} else {
		/* Released between the try and the snapshot, or in a lock
		 * tree held through an ancestor or a descendant. */
		printf(" is busy (its holder could not be read: released "
		       "since, or a lock tree's ancestor or descendant is "
		       "held)");
	}
	if (li != NULL && li->waiters != 0)
		printf(", %u waiter%s queued", li->waiters,
		       li->waiters > 1 ? "s" : "");
	ctl_snapshot_free(&s);
}

static int acquire(struct flock_opts *o)
{
	int64_t t0 = lm_now_ns();
	int err;
	if (!o->verbose) {
		err = ctl_hold_acquire(&o->h, o->wait_ms);
	} else {
		err = ctl_hold_acquire(&o->h, 0);
		if (err == LM_EBUSY) {
			describe_holder(o);
			printf(o->wait_ms == 0 ? "; not waiting (-n)\n"
					       : "; waiting\n");
			fflush(stdout);
		}
		if (err == LM_EBUSY && o->wait_ms != 0) {
			int64_t left = o->wait_ms;
			if (left > 0) {
				left -= (lm_now_ns() - t0) / 1000000;
				if (left < 1)
					left = 1;
			}
			err = ctl_hold_acquire(&o->h, left);
		}
	}
	int64_t took = lm_now_ns() - t0;
	switch (err) {
	case 0:
		/* Not with -F: CMD replaces us and would inherit the mask. */
		if (!o->no_fork) {
			int rc = ctl_hold_catch_signals(&o->h);
			if (rc != 0)
				return rc;
		}
		LM_HOOK("lockctl.granted");
		if (o->verbose) {
			printf("%s: getting lock took %" PRId64 ".%06" PRId64
			       " seconds (token %" PRIu64 "%s)\n", ctl_prog,
			       took / 1000000000, took % 1000000000 / 1000,
			       o->h.g.token,
			       o->h.g.flags & LM_GRANT_RECOVERED
				       ? ", the last holder did not release"
				       : "");
		}
		return 0;
	case LM_EBUSY:
	case LM_ETIMEDOUT:
		/* flock says nothing here unless asked: scripts and cron
		 * test the exit code. */
		if (o->verbose)
			fprintf(stderr, "%s: %s\n", ctl_prog,
				err == LM_EBUSY
					? "failed to get lock"
					: "timeout while waiting to get lock");
		return o->conflict_exit;
	case LM_EDEADLK:
		fprintf(stderr, "%s: ", ctl_prog);
		ctl_print_escaped(stderr, o->h.name, SIZE_MAX);
		fprintf(stderr, ": %s\n%s: the cycle: %s\n", lm_strerror(err),
			ctl_prog, lm_deadlock_cycle(o->h.c));
		return o->conflict_exit;
	default:
		return ctl_hold_acquire_error(&o->h, err, o->wait_ms);
	}
}

/* -F: CMD replaces us, and with it goes the only renewer of the lease. */
static int exec_in_place(const struct ctl_global *g, struct flock_opts *o)
{
	int rc = ctl_hold_export(g, &o->h);
	if (rc != 0) {
		ctl_hold_end(&o->h);
		return rc;
	}
	if (o->verbose)
		printf("%s: lease of %" PRId64 " ms, not renewed (-F)\n",
		       ctl_prog, o->h.ttl_ms);
	fflush(stdout);
	fflush(stderr);
	execvp(o->cmd[0], o->cmd);
	int e = errno;
	fprintf(stderr, "%s: cannot run '%s': %s\n", ctl_prog, o->cmd[0],
		strerror(e));
	ctl_hold_end(&o->h);
	return e == ENOENT ? EX_CTL_NOTFOUND : EX_CTL_NOEXEC;
}

int ctl_flock(struct ctl_global *g, int argc, char **argv)
{
	struct flock_opts o = {
		.h = CTL_HOLD_INIT(NULL),
		.me = strcmp(ctl_prog, "lmflock") == 0 ? "lmflock"
							: "lockctl flock",
		.wait_ms = -1,
		.conflict_exit = DEFAULT_CONFLICT_EXIT,
	};
	o.h.who = o.me;
	int rc = parse_args(g, argc, argv, &o);
	if (rc != 0)
		return rc;
	o.h.ttl_default_max = o.no_fork;
	rc = ctl_hold_connect(g, &o.h);
	if (rc != 0)
		return rc;
	rc = acquire(&o);
	if (rc != 0 || !o.h.held) {
		ctl_hold_end(&o.h);
		return rc;
	}
	if (o.verbose) {
		printf("%s: executing %s\n", ctl_prog, o.cmd[0]);
		fflush(stdout);
	}
	if (o.no_fork)
		return exec_in_place(g, &o);
	return ctl_hold_run(g, &o.h, o.cmd);
}
