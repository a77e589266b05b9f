/*
 * run.c - `lockctl run NAME -- CMD`: run a command while holding
 * a lock, like flock(1), but with a lease that lockctl keeps renewing.
 *
 * The lock belongs to lockctl's session, not to CMD: a flock is carried
 * by an open file that the child inherits, a lease is not. So lockctl
 * stays in the foreground as CMD's parent and keeps the lease alive,
 * and whatever ends the lease also ends CMD:
 *
 *  - a renewal fails, or lockctl finds its lease past valid_until_ns
 *    (it was stopped or starved longer than the lease): SIGTERM to CMD
 *    and every process it started (cmd_tree.c), SIGKILL to what is left
 *    5 s later, exit 70;
 *  - lockctl itself is killed (the supervisor then frees the lock in
 *    milliseconds): CMD gets SIGKILL from PR_SET_PDEATHSIG, so that it
 *    cannot go on working under a lock someone else may now hold.
 *
 * One thread and one ppoll over a pidfd (CMD exited) and a signalfd
 * (signals to forward), with the next renewal as the timeout: nothing
 * wakes up between renewals.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "../../shm/name_index.h"
#include "../../shm/test_hook.h"
#include "../internal.h"
#include "lockctl.h"
#include "../lockmgr.h"

#define DEFAULT_TTL_MS   10000 /* or the region's max TTL, if shorter */
#define TTL_UNSET        CTL_TTL_UNSET
#define MAX_WAIT_MS      CTL_MAX_WAIT_MS
/* The hard limit of any region (lockmgrd --max-ttl); the region's own
 * limit is checked once connected. */
#define MAX_TTL_LIMIT_MS INT64_C(86400000)
/* lockctl renews every TTL/3, and the library trusts a lease for TTL
 * minus a drift bound of at least 1 ms. A renewal is a few microseconds
 * of work, but a loaded host can leave lockctl unscheduled for tens of
 * ms: on a 2-core machine at load 1.5, --ttl 10 lost its lease in 4 of
 * 5 one-second runs and --ttl 20 in 1 of 5, --ttl 50 and 100 in none of
 * 20. A command-line lease below 100 ms buys nothing but that risk (the
 * library still allows 10 ms for programs that renew themselves). */
#define MIN_TTL_MS       100

/* Signals lockctl passes on to CMD instead of dying of them. */
static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
				SIGUSR2};

static void run_usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl run [--shared | --mode M | --slots N] [--ttl MS] [--wait MS]\n"
"                   [-r NAME] LOCK -- CMD [ARG]...\n"
"Acquire LOCK, run CMD while holding it, release it when CMD exits.\n"
"The lease is renewed every TTL/3 while CMD runs. CMD gets LOCKMGR_LOCK,\n"
"LOCKMGR_TOKEN (the fencing token: pass it to whatever the lock guards)\n"
"and LOCKMGR_REGION in its environment, and LOCKMGR_RECOVERED=1 when the\n"
"previous holder died or lost its lease without releasing (what the lock\n"
"guards may be half-done: repair it first).\n"
"\n"
"  -t, --ttl MS       lease length in ms (default %d, or the region's\n"
"                     max TTL if shorter; %d up to the max TTL)\n"
"  -w, --wait MS      wait at most MS for the lock; 0 tries once;\n"
"                     -1 (the default) waits until it is free\n"
"  -s, --shared       take LOCK shared (S): other shared holders run at\n"
"                     once, exclusive ones wait (default: exclusive, X)\n"
"  -m, --mode M       take LOCK in mode M: X, S, IS, IX or SIX (the\n"
"                     intention modes of lock trees; see lockctl(1))\n"
"  -n, --slots N      LOCK is a counting semaphore of N slots (1 to %u):\n"
"                     at most N commands run at once under it, each\n"
"                     holding a slot of its own (every user of LOCK\n"
"                     must give the same N); CMD gets LOCKMGR_SLOT\n"
"      --deadlock-timeout MS\n"
"                     look for a cycle of waits once the wait has lasted\n"
"                     MS (default 1000; -1 never); if this wait is chosen\n"
"                     to end one, exit 75 and name the cycle\n"
CTL_REGION_HELP
"  -h, --help         show this help\n"
"\n"
"CMD also gets LOCKMGR_MODE (the mode held), and with --slots\n"
"LOCKMGR_SLOT (the slot held, 0 to N-1; LOCKMGR_TOKEN is that slot's).\n"
"\n"
"SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to lockctl are\n"
"passed on to CMD. If lockctl is killed, CMD is killed too. If the lease\n"
"is lost, CMD and every process it started get SIGTERM, then SIGKILL 5 s\n"
"later, and lockctl exits 70.\n"
"\n"
"Exit status: CMD's (128+N if a signal N killed it); 64 usage error (or\n"
"LOCK is used as another kind of lock: a semaphore of another N, or a\n"
"plain lock); 69 service unavailable; 70 the lease was lost while CMD\n"
"ran (CMD was stopped); 71 a system call failed; 75 LOCK not acquired\n"
"within --wait; 126 CMD not executable; 127 CMD not found.\n",
		DEFAULT_TTL_MS, MIN_TTL_MS, LM_SEM_SLOTS_MAX);
}

/* lm_connect gives no reason for an incompatible region: attach
 * ourselves to get the sentence lm_region_attach wrote. */
static int connect_error(int err, const char *region)
{
	char why[256] = "";
	if (err == LM_EINCOMPAT && !lm_addr_is_etcd(region)) {
		struct lm_region r;
		if (lm_region_attach(&r, region, why, sizeof(why)) == 0)
			lm_region_detach(&r);
	}
	return ctl_service_error(err, region, why);
}

static void print_name(const char *name)
{
	ctl_print_escaped(stderr, name, SIZE_MAX);
}

/* The exit status a shell would report for CMD. */
static int shell_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EX_CTL_OSERR;
}

/* Wait up to timeout_ms for CMD to exit; true if it did. */
static bool wait_exit(struct ctl_hold *rn, int timeout_ms)
{
	int64_t until = lm_now_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = {.fd = rn->pidfd, .events = POLLIN};
		int64_t left = until - lm_now_ms();
		int n = poll(&p, 1, left > 0 ? (int)left : 0);
		if (n == 1)
			return true;
		if (n == 0 || (n < 0 && errno != EINTR))
			return false;
	}
}

static int reap(struct ctl_hold *rn)
{
	int status;
	while (waitpid(rn->child, &status, 0) < 0)
		if (errno != EINTR)
			return EX_CTL_OSERR;
	return shell_status(status);
}

/* Why the lease is gone, for a person: a service that shut down takes
 * every lease with it, which "expired or taken over" would not say. */
static const char *lost_reason(const struct ctl_hold *rn, int err)
{
	const struct lm_region_header *h = rn->c->ctx.region.hdr;
	if (h != NULL && /* NULL: another backend than shared memory */
	    atomic_load(&h->supervisor_state) == LM_SUP_STOPPED)
		return "the lock service stopped (lockmgrd shut down), and "
		       "its locks with it";
	return lm_strerror(err);
}

/* The lease is gone: CMD must stop using what the lock guards. */
static int lease_lost(struct ctl_hold *rn, int err)
{
	fprintf(stderr, "%s: lease on ", ctl_prog);
	print_name(rn->name);
	if (wait_exit(rn, 0)) {
		/* lockctl was stopped or starved past its lease and only
		 * now sees that CMD is done: it may have worked unlocked. */
		int st = reap(rn);
		fprintf(stderr, " lost before lockctl saw %s finish (%s); %s "
				"exited with status %d\n", rn->cmd,
			lost_reason(rn, err), rn->cmd, st);
		return EX_CTL_LEASELOST;
	}
	fprintf(stderr, " lost while %s was running (%s); stopping %s and "
			"what it started\n", rn->cmd, lost_reason(rn, err),
		rn->cmd);
	/* The whole tree, as a terminal's ^C reaches a whole job: a shell
	 * killed alone leaves its current command running unlocked. */
	pidfd_send_signal(rn->pidfd, SIGTERM, NULL, 0);
	if (ctl_tree_signal(SIGTERM, rn->child) < 0)
		fprintf(stderr, "%s: cannot read this pid namespace's /proc: "
				"only %s itself is stopped, not what it "
				"started\n", ctl_prog, rn->cmd);
	/* A stopped process cannot act on SIGTERM. */
	pidfd_send_signal(rn->pidfd, SIGCONT, NULL, 0);
	ctl_tree_signal(SIGCONT, rn->child);
	int64_t grace = rn->grace_ms > 0 ? rn->grace_ms : CTL_KILL_GRACE_MS;
	if (grace > INT_MAX)
		grace = INT_MAX;
	int64_t until = lm_now_ms() + grace;
	if (!wait_exit(rn, (int)grace)) {
		fprintf(stderr, "%s: %s did not stop within %" PRId64 " ms of "
				"SIGTERM; killing it\n", ctl_prog, rn->cmd,
			grace);
		pidfd_send_signal(rn->pidfd, SIGKILL, NULL, 0);
	}
	reap(rn);
	/* What CMD left behind gets the rest of the grace, then SIGKILL. */
	int64_t left = until - lm_now_ms();
	if (!ctl_tree_gone(left > 0 ? (int)left : 0)) {
		fprintf(stderr, "%s: processes %s started did not stop within "
				"%" PRId64 " ms of SIGTERM; killing them\n",
			ctl_prog, rn->cmd, grace);
		if (!ctl_tree_kill(CTL_KILL_GRACE_MS))
			fprintf(stderr, "%s: %d processes %s started are "
					"still there after SIGKILL\n",
				ctl_prog, ctl_tree_signal(0, 0), rn->cmd);
	}
	return EX_CTL_LEASELOST;
}

static void forward_signals(struct ctl_hold *rn)
{
	struct signalfd_siginfo si;
	while (read(rn->sigfd, &si, sizeof(si)) == sizeof(si)) {
		/* An adopted process of CMD's tree exited (CMD's own exit
		 * is read from its pidfd). */
		if (si.ssi_signo == SIGCHLD) {
			ctl_tree_reap(rn->child);
			continue;
		}
		/* A signal from the terminal (^C, ^\, hangup) went to the
		 * whole foreground process group, CMD included: sending it
		 * again would make CMD see two ^C for one. */
		if (si.ssi_code == SI_KERNEL &&
		    getpgid(rn->child) == getpgrp())
			continue;
		pidfd_send_signal(rn->pidfd, (int)si.ssi_signo, NULL, 0);
	}
}

/*
 * Hold the lease while CMD runs. Returns lockctl's exit status: CMD's,
 * or EX_CTL_LEASELOST.
 */
static int supervise(struct ctl_hold *rn)
{
	/* Three renewals per lease: one late or failed wake-up still
	 * leaves a renewal inside the lease. */
	int64_t interval_ns = rn->ttl_ms * 1000000 / 3;
	int64_t next_renew = lm_now_ns() + interval_ns;
	for (;;) {
		int64_t now = lm_now_ns();
		if (now >= next_renew) {
			/* valid_until_ns already allows for clock drift; past
			 * it, another session may hold the lock even if our
			 * slots still look untouched. */
			if (now >= rn->g.valid_until_ns)
				return lease_lost(rn, LM_ELEASELOST);
			int rc = lm_renew(rn->c, &rn->g, rn->ttl_ms);
			if (rc != 0)
				return lease_lost(rn, rc);
			next_renew = now + interval_ns;
			continue;
		}
		struct pollfd fds[2] = {
			{.fd = rn->pidfd, .events = POLLIN},
			{.fd = rn->sigfd, .events = POLLIN},
		};
		int64_t d = next_renew - now;
		struct timespec ts = {.tv_sec = d / 1000000000,
				      .tv_nsec = d % 1000000000};
		int n = ppoll(fds, 2, &ts, NULL);
		if (n < 0) {
			if (errno == EINTR) /* e.g. after SIGSTOP/SIGCONT */
				continue;
			fprintf(stderr, "%s: poll: %s\n", ctl_prog,
				strerror(errno));
			return lease_lost(rn, LM_ESYS);
		}
		if (fds[1].revents & POLLIN)
			forward_signals(rn);
		if (fds[0].revents & POLLIN)
			return reap(rn);
	}
}

/*
 * Start CMD with the signal mask lockctl had. The exec result comes
 * back over a close-on-exec pipe, so that a CMD that cannot be run is
 * reported (and the lock released) by lockctl, not by a stray child.
 */
static int spawn(struct ctl_hold *rn, char **cmd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		fprintf(stderr, "%s: pipe: %s\n", ctl_prog,
			strerror(errno));
		return EX_CTL_OSERR;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", ctl_prog,
			strerror(errno));
		close(p[0]);
		close(p[1]);
		return EX_CTL_OSERR;
	}
	if (pid == 0) {
		close(p[0]);
		/* The lock dies with lockctl, so CMD must too. getppid
		 * catches a lockctl that died before prctl took effect. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    getppid() != parent)
			_exit(EX_CTL_OSERR);
		sigprocmask(SIG_SETMASK, &rn->oldmask, NULL);
		execvp(cmd[0], cmd);
		int e = errno;
		ssize_t w = write(p[1], &e, sizeof(e));
		(void)w;
		_exit(e == ENOENT ? EX_CTL_NOTFOUND : EX_CTL_NOEXEC);
	}
	close(p[1]);
	rn->child = pid;
	rn->pidfd = pidfd_open(pid, 0);
	if (rn->pidfd < 0) {
		fprintf(stderr, "%s: pidfd_open: %s (Linux 5.3 or later is "
				"needed)\n", ctl_prog, strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(p[0]);
		return EX_CTL_OSERR;
	}
	int e = 0;
	ssize_t n;
	while ((n = read(p[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(p[0]);
	if (n == (ssize_t)sizeof(e)) {
		fprintf(stderr, "%s: cannot run '%s': %s\n", ctl_prog, cmd[0],
			strerror(e));
		reap(rn);
		return e == ENOENT ? EX_CTL_NOTFOUND : EX_CTL_NOEXEC;
	}
	return 0;
}

static int parse_args(struct ctl_global *g, int argc, char **argv,
		      struct ctl_hold *rn, int64_t *wait_ms, char ***cmd)
{
	static const struct option longopts[] = {
		{"ttl", required_argument, NULL, 't'},
		{"wait", required_argument, NULL, 'w'},
		{"shared", no_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"slots", required_argument, NULL, 'n'},
		{"deadlock-timeout", required_argument, NULL, 'D'},
		{"region", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	opterr = 0;
	optind = 0;
	/* '+': stop at LOCK, so that CMD's own options stay CMD's. */
	bool shared = false, moded = false;
	while ((c = getopt_long(argc, argv, "+:t:w:sm:n:r:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'n': {
			int64_t n;
			if (ctl_parse_i64(optarg, "--slots", NULL, 1,
					  LM_SEM_SLOTS_MAX, &n))
				return EX_CTL_USAGE;
			rn->slots = (uint32_t)n;
			break;
		}
		case 's':
			shared = true;
			rn->mode = LM_MODE_S;
			break;
		case 'm':
			if (ctl_parse_mode(optarg, &rn->mode) != 0) {
				fprintf(stderr, "lockctl run: --mode '%s' is "
						"not a mode: use X, S, IS, IX "
						"or SIX\n", optarg);
				return EX_CTL_USAGE;
			}
			moded = true;
			break;
		case 'D':
			if (ctl_parse_i64(optarg, "--deadlock-timeout",
					  "milliseconds", -1, MAX_WAIT_MS,
					  &rn->deadlock_ms))
				return EX_CTL_USAGE;
			/* The library's 0 is "its default"; ours is
			 * "search at once". */
			if (rn->deadlock_ms == 0)
				rn->deadlock_ms = 1;
			break;
		case 't':
			/* The range is this region's: checked in
			 * check_ttl, once the region is known. */
			if (ctl_parse_i64(optarg, "--ttl", "milliseconds",
					  INT64_MIN + 1, INT64_MAX,
					  &rn->ttl_ms))
				return EX_CTL_USAGE;
			break;
		case 'w':
			if (ctl_parse_i64(optarg, "--wait", "milliseconds",
					  -1, MAX_WAIT_MS, wait_ms))
				return EX_CTL_USAGE;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'h':
			run_usage(stdout);
			exit(EX_CTL_OK);
		case ':':
			fprintf(stderr, "lockctl run: option '%s' needs a "
					"value\n", argv[optind - 1]);
			return EX_CTL_USAGE;
		default:
			fprintf(stderr, "lockctl run: unknown option '%s'\n"
					"Try 'lockctl run --help'.\n",
				argv[optind - 1]);
			return EX_CTL_USAGE;
		}
	}
	if (rn->slots != 0 && (shared || moded)) {
		fprintf(stderr, "lockctl run: --slots takes a slot of a "
				"semaphore, which has no mode: give --slots or "
				"--%s, not both\n", shared ? "shared" : "mode");
		return EX_CTL_USAGE;
	}
	if (shared && moded && rn->mode != LM_MODE_S) {
		fprintf(stderr, "lockctl run: --shared and --mode %s disagree: "
				"give one of them\n", ctl_mode_name(rn->mode));
		return EX_CTL_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "lockctl run: no lock name given\n"
				"Usage: lockctl run [--ttl MS] [--wait MS] "
				"LOCK -- CMD [ARG]...\n");
		return EX_CTL_USAGE;
	}
	rn->name = argv[optind++];
	if (lm_name_check(rn->name, strnlen(rn->name, LM_NAME_MAX + 1)) != 0) {
		ctl_bad_lock_name(rn->name);
		return EX_CTL_USAGE;
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc) {
		fprintf(stderr, "lockctl run: no command given after the lock "
				"name\nUsage: lockctl run [--ttl MS] [--wait MS] "
				"LOCK -- CMD [ARG]...\n");
		return EX_CTL_USAGE;
	}
	*cmd = argv + optind;
	rn->cmd = argv[optind];
	return 0;
}

/*
 * --ttl must lie within the region's limits, which only the region knows
 * (known: connected, max is its max TTL); before that, within those of
 * any region. An unset --ttl becomes the default, or the region's max TTL
 * if shorter (or the max TTL itself, for a lease nobody renews).
 */
static int check_ttl(const struct ctl_global *g, const struct ctl_hold *rn,
		     bool known, int64_t max, int64_t *ttl_ms)
{
	if (*ttl_ms == TTL_UNSET) {
		if (known)
			*ttl_ms = DEFAULT_TTL_MS < max && !rn->ttl_default_max
					  ? DEFAULT_TTL_MS
					  : max;
		return 0;
	}
	if (*ttl_ms >= MIN_TTL_MS && *ttl_ms <= max)
		return 0;
	/* Wrong for any region: still, name this one's range if it has
	 * one (attached only here, on the way out). */
	struct lm_region r;
	char why[256];
	if (!known && !ctl_is_etcd(g) &&
	    lm_region_attach(&r, g->region, why, sizeof(why)) == 0) {
		known = true;
		max = r.max_ttl_ms;
		lm_region_detach(&r);
	}
	fprintf(stderr, "%s: --ttl %" PRId64 " is out of range: ", rn->who,
		*ttl_ms);
	if (known)
		fprintf(stderr, "region %s allows %d to %" PRId64 " ms (its "
				"lockmgrd --max-ttl)\n", g->region, MIN_TTL_MS,
			max);
	else
		fprintf(stderr, "a lease is %d to %" PRId64 " ms\n",
			MIN_TTL_MS, max);
	return EX_CTL_USAGE;
}

int ctl_hold_acquire_error(const struct ctl_hold *rn, int err,
			   int64_t wait_ms)
{
	switch (err) {
	case LM_EKIND:
		fprintf(stderr, "%s: could not acquire ", ctl_prog);
		print_name(rn->name);
		if (rn->slots != 0)
			fprintf(stderr, " as a semaphore of %u slots",
				rn->slots);
		fprintf(stderr, ": %s\n", lm_strerror(err));
		return EX_CTL_USAGE;
	case LM_EBUSY:
	case LM_ETIMEDOUT:
		fprintf(stderr, "%s: could not acquire ", ctl_prog);
		print_name(rn->name);
		fprintf(stderr, " within %" PRId64 " ms: %s\n", wait_ms,
			lm_strerror(err));
		return EX_CTL_TEMPFAIL;
	case LM_EDEADLK:
		fprintf(stderr, "%s: could not acquire ", ctl_prog);
		print_name(rn->name);
		fprintf(stderr, ": %s\n%s: the cycle: %s\n", lm_strerror(err),
			ctl_prog, lm_deadlock_cycle(rn->c));
		return EX_CTL_TEMPFAIL;
	case LM_EBADTTL:
		fprintf(stderr, "%s: --ttl %" PRId64 ": %s; this region's "
				"max TTL is %" PRId64 " ms\n", ctl_prog,
			rn->ttl_ms, lm_strerror(err), rn->max_ttl);
		return EX_CTL_USAGE;
	case LM_EBADNAME:
		ctl_bad_lock_name(rn->name);
		return EX_CTL_USAGE;
	case LM_ESYS:
		fprintf(stderr, "%s: acquiring ", ctl_prog);
		print_name(rn->name);
		fprintf(stderr, ": %s: %s\n", lm_strerror(err), strerror(errno));
		return EX_CTL_OSERR;
	default:
		/* No quorum, a full table: the service cannot grant. */
		fprintf(stderr, "%s: could not acquire ", ctl_prog);
		print_name(rn->name);
		fprintf(stderr, ": %s\n", lm_strerror(err));
		return EX_CTL_UNAVAILABLE;
	}
}

int ctl_hold_connect(struct ctl_global *g, struct ctl_hold *rn)
{
	int rc = ctl_resolve_region(g);
	if (rc != 0)
		return rc;
	rc = check_ttl(g, rn, false, MAX_TTL_LIMIT_MS, &rn->ttl_ms);
	if (rc != 0)
		return rc;
	int err = lm_connect(g->region, &rn->c);
	if (err != 0) {
		rn->c = NULL;
		return connect_error(err, g->region);
	}
	rn->max_ttl = lm_max_ttl_ms(rn->c);
	rc = check_ttl(g, rn, true, rn->max_ttl, &rn->ttl_ms);
	if (rc != 0)
		ctl_hold_end(rn);
	return rc;
}

int ctl_hold_acquire(struct ctl_hold *rn, int64_t wait_ms)
{
	if (rn->slots != 0) {
		int err = lm_sem_acquire(rn->c, rn->name, rn->slots,
					 rn->ttl_ms, wait_ms, &rn->g);
		rn->held = err == 0;
		return err;
	}
	lm_acquire_opts opts = LM_ACQUIRE_OPTS(rn->mode, rn->ttl_ms, wait_ms);
	opts.deadlock_timeout_ms = rn->deadlock_ms;
	int err = lm_acquire_ex(rn->c, rn->name, &opts, &rn->g);
	rn->held = err == 0;
	return err;
}

int ctl_hold_export(const struct ctl_global *g, const struct ctl_hold *rn)
{
	char token[32], slot[16];
	snprintf(token, sizeof(token), "%" PRIu64, rn->g.token);
	snprintf(slot, sizeof(slot), "%d", lm_sem_slot(&rn->g));
	if (setenv("LOCKMGR_LOCK", rn->name, 1) != 0 ||
	    (rn->slots != 0 ? setenv("LOCKMGR_SLOT", slot, 1)
			    : unsetenv("LOCKMGR_SLOT")) != 0 ||
	    setenv("LOCKMGR_TOKEN", token, 1) != 0 ||
	    setenv("LOCKMGR_MODE", ctl_mode_name(rn->g.mode), 1) != 0 ||
	    setenv("LOCKMGR_REGION", g->region, 1) != 0 ||
	    (rn->g.flags & LM_GRANT_RECOVERED
		     ? setenv("LOCKMGR_RECOVERED", "1", 1)
		     : unsetenv("LOCKMGR_RECOVERED")) != 0) {
		fprintf(stderr, "%s: setenv: %s\n", ctl_prog, strerror(errno));
		return EX_CTL_OSERR;
	}
	return 0;
}

void ctl_hold_end(struct ctl_hold *rn)
{
	/* After a lost lease this touches nothing of a newer holder. */
	if (rn->held)
		lm_release(rn->c, &rn->g);
	rn->held = false;
	if (rn->c != NULL)
		lm_disconnect(rn->c);
	rn->c = NULL;
	if (rn->pidfd >= 0)
		close(rn->pidfd);
	if (rn->sigfd >= 0)
		close(rn->sigfd);
	rn->pidfd = rn->sigfd = -1;
}

int ctl_hold_catch_signals(struct ctl_hold *rn)
{
	if (rn->sigfd >= 0)
		return 0;
	/* From here on the signals we forward are read from a signalfd,
	 * and one that comes before CMD starts is passed on to it once it
	 * has. (While lm_acquire waits they still kill lockctl, and the
	 * supervisor then frees its session.) */
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	/* Inherited as ignored, SIGCHLD would have the kernel reap CMD
	 * before its status could be read. */
	signal(SIGCHLD, SIG_DFL);
	if (sigprocmask(SIG_BLOCK, &set, &rn->oldmask) != 0 ||
	    (rn->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", ctl_prog,
			strerror(errno));
		return EX_CTL_OSERR;
	}
	return 0;
}

int ctl_hold_run(const struct ctl_global *g, struct ctl_hold *rn, char **cmd)
{
	rn->cmd = cmd[0];
	int rc = ctl_hold_catch_signals(rn);
	if (rc != 0)
		goto out;
	rc = ctl_hold_export(g, rn);
	if (rc != 0)
		goto out;
	int e = ctl_tree_adopt();
	if (e != 0) {
		fprintf(stderr, "%s: prctl(PR_SET_CHILD_SUBREAPER): %s\n",
			ctl_prog, strerror(-e));
		rc = EX_CTL_OSERR;
		goto out;
	}
	rc = spawn(rn, cmd);
	if (rc != 0)
		goto out;
	rc = supervise(rn);
	if (rc == EX_CTL_LEASELOST)
		goto out;

	int err = lm_release(rn->c, &rn->g);
	rn->held = false;
	if (err == LM_ELEASELOST) {
		/* CMD finished, but not all of it ran under the lock. */
		fprintf(stderr, "%s: lease on ", ctl_prog);
		print_name(rn->name);
		fprintf(stderr, " was lost before %s finished (%s); %s exited "
				"with status %d\n", rn->cmd,
			lost_reason(rn, err), rn->cmd, rc);
		rc = EX_CTL_LEASELOST;
	}
out:
	ctl_hold_end(rn);
	return rc;
}

int ctl_run(struct ctl_global *g, int argc, char **argv)
{
	struct ctl_hold rn = CTL_HOLD_INIT("lockctl run");
	int64_t wait_ms = -1;
	char **cmd = NULL;
	int rc = parse_args(g, argc, argv, &rn, &wait_ms, &cmd);
	if (rc != 0)
		return rc;
	rc = ctl_hold_connect(g, &rn);
	if (rc != 0)
		return rc;
	int err = ctl_hold_acquire(&rn, wait_ms);
	if (err != 0) {
		rc = ctl_hold_acquire_error(&rn, err, wait_ms);
		ctl_hold_end(&rn);
		return rc;
	}
	rc = ctl_hold_catch_signals(&rn);
	if (rc != 0) {
		ctl_hold_end(&rn);
		return rc;
	}
	LM_HOOK("lockctl.granted");
	return ctl_hold_run(g, &rn, cmd);
}
