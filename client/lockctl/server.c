/*
 * server.c - `lockctl server ...`: list the lock servers and
 * drive their faults (kill, start, pause, resume, skew, isolate, heal),
 * so that demos, tests and users break the cluster the same way.
 *
 * Faults are real: kill is SIGKILL to the server process, pause is
 * SIGSTOP. Only start needs the supervisor (it owns the processes): the
 * request is a bit in the region header plus SIGUSR1 to the supervisor.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "../../shm/futex.h"
#include "../../shm/isolation.h"
#include "../../shm/region.h"
#include "../../shm/session.h"
#include "../../shm/heartbeat.h"
#include "../../shm/lease_scan.h"
#include "lockctl.h"
#include "../lockmgr.h"

static const char *server_usage =
"Usage: lockctl server list\n"
"       lockctl server kill N [--wipe]   SIGKILL server N (--wipe: it comes\n"
"                                        back with its table lost)\n"
"       lockctl server start N           ask the supervisor to start it\n"
"       lockctl server pause N           SIGSTOP: a hung server\n"
"       lockctl server resume N          SIGCONT\n"
"       lockctl server skew N [--offset MS] [--rate R]\n"
"                                        server N's clock runs MS ahead and\n"
"                                        at R times real speed (1 = true)\n"
"       lockctl server isolate N --pid PID  server N refuses PID's sessions\n"
"       lockctl server heal N            server N serves everyone again\n"
"N is 0, 1 or 2.\n";

/* The server's pid, if its process is the one the region names. */
static pid_t server_pid(struct lm_server *s)
{
	pid_t pid = atomic_load(&s->pid);
	if (pid <= 0 || lm_proc_start_time(pid) != atomic_load(&s->start_time))
		return 0;
	return pid;
}

static int signal_server(struct lm_region *r, unsigned n, int sig,
			 const char *what)
{
	pid_t pid = server_pid(r->servers[n]);
	if (pid == 0) {
		fprintf(stderr, "lockctl: server %u is not running (see "
				"'lockctl server list')\n", n);
		return EX_CTL_UNAVAILABLE;
	}
	if (kill(pid, sig) != 0) {
		fprintf(stderr, "lockctl: cannot signal server %u (pid %d): "
				"%s\n", n, (int)pid, strerror(errno));
		return EX_CTL_UNAVAILABLE;
	}
	printf("server %u (pid %d) %s\n", n, (int)pid, what);
	return 0;
}

/*
 * For a kill: when will server n count again, and why? The same look at
 * the tables that the restarted server will take (docs/protocol.md).
 */
static void when_back(struct lm_region *r, unsigned n, bool wipe, char *buf,
		      size_t len)
{
	int64_t delay = atomic_load(&r->hdr->restart_delay_ms);
	int64_t now = lm_now_ns();
	int64_t end = now;
	for (unsigned j = 0; j < LM_NSERVERS; j++)
		if (wipe ? j != n : j == n) {
			int64_t e = lm_leases_end_ns(r, j, UINT64_MAX, now);
			end = e > end ? e : end;
		}
	long long left = (long long)((end - now + 999999) / 1000000);
	char when[80];
	if (delay < 0)
		snprintf(when, sizeof(when), "it stays down until 'lockctl "
			 "server start %u'", n);
	else
		snprintf(when, sizeof(when), "restart in %lld ms",
			 (long long)delay);
	if (wipe)
		snprintf(buf, len, "killed, its table lost: %s, then it waits "
			 "for both peers and for the leases on them that could "
			 "include it (the last ends in %lld ms)", when, left);
	else if (left > 0)
		snprintf(buf, len, "killed: %s, then it counts again once the "
			 "leases on its table end (the last in %lld ms)", when,
			 left);
	else
		snprintf(buf, len, "killed: %s, then it counts again at once "
			 "(no lease is outstanding on its table)", when);
}

static int start_server(struct lm_region *r, unsigned n)
{
	struct lm_region_header *h = r->hdr;
	pid_t sup = atomic_load(&h->supervisor_pid);
	if (atomic_load(&h->supervisor_state) != LM_SUP_RUNNING || sup <= 0 ||
	    lm_proc_start_time(sup) != atomic_load(&h->supervisor_start)) {
		fprintf(stderr, "lockctl: no supervisor is running on %s, and "
				"only it can start servers: start lockmgrd "
				"(it adopts the region and restarts dead "
				"servers)\n", r->name);
		return EX_CTL_UNAVAILABLE;
	}
	if (server_pid(r->servers[n]) != 0) {
		printf("server %u is already running\n", n);
		return 0;
	}
	uint64_t before = atomic_load(&r->servers[n]->state);
	atomic_fetch_or(&h->start_requests, 1u << n);
	kill(sup, SIGUSR1);
	for (int i = 0; i < 200; i++) {
		uint64_t st = atomic_load(&r->servers[n]->state);
		bool started = LM_SRV_EPOCH(st) != LM_SRV_EPOCH(before);
		/* A server that refuses to start (a token file it cannot
		 * trust, say) exits at once, and the supervisor marks it
		 * down in its new epoch. (Not "its pid is 0": the new
		 * epoch is published before the process exists.) */
		if (started && LM_SRV_STATE(st) == LM_SRV_DOWN) {
			fprintf(stderr, "lockctl: server %u did not start: it "
					"exited at once; lockmgrd's log says "
					"why\n", n);
			return EX_CTL_UNAVAILABLE;
		}
		if (started &&
		    (LM_SRV_STATE(st) == LM_SRV_UP ||
		     atomic_load(&r->servers[n]->recovery) !=
			     LM_RECOV_LOOKING ||
		     i >= 150)) {
			char note[160] = "it is up";
			if (LM_SRV_STATE(st) != LM_SRV_UP)
				ctl_recovery_note(r->servers[n], lm_now_ms(),
						  note, sizeof(note));
			printf("server %u started (pid %d, epoch %llu): %s\n",
			       n, (int)atomic_load(&r->servers[n]->pid),
			       (unsigned long long)LM_SRV_EPOCH(st), note);
			return 0;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "lockctl: the supervisor did not start server %u "
			"within 2 s (see its log)\n", n);
	return EX_CTL_UNAVAILABLE;
}

/* What `lockctl server ...` asked for, checked before the region is
 * attached, so a typo is a usage error (64) even with no service. */
struct server_args {
	const char *cmd;
	unsigned n;
	bool wipe;
	bool have_offset, have_rate;
	int64_t offset_ms;
	double rate;
	int64_t pid;
	const char *opt_of[4]; /* the flags given: --wipe --offset --rate
	                        * --pid, for "not an option of" messages */
};

/*
 * Take the right to set server n's clock: an OFD lock on byte n of the
 * region's shm object, which the kernel drops if we die. Two lockctls
 * setting one clock at once would publish a half-written setting
 * (lm_skew_set). Returns the fd holding the lock, or -1 (said why).
 */
static int lock_server_clock(const struct lm_region *r, unsigned n)
{
	int fd = shm_open(r->name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "lockctl: cannot open region %s to set server "
				"%u's clock: %s\n", r->name, n, strerror(errno));
		return -1;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
			   .l_start = n, .l_len = 1};
	for (int i = 0; i < 200; i++) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return fd;
		if (errno != EAGAIN && errno != EACCES) {
			fprintf(stderr, "lockctl: cannot lock server %u's clock "
					"setting: %s\n", n, strerror(errno));
			close(fd);
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "lockctl: another lockctl has been setting server %u's "
			"clock for 2 s (is it stopped?); try again once it "
			"is done\n", n);
	close(fd);
	return -1;
}

static int skew_server(struct lm_region *r, unsigned n,
		       const struct server_args *a)
{
	int64_t off = a->offset_ms;
	double rate = a->rate;
	bool have_off = a->have_offset;
	struct lm_server *s = r->servers[n];
	int64_t now = lm_now_ms();
	if (have_off && now + off < 0) {
		fprintf(stderr, "lockctl: --offset %lld would put server %u's "
				"clock before this host booted (%lld ms ago); "
				"use at least %lld\n",
			(long long)off, n, (long long)now, (long long)-now);
		return EX_CTL_USAGE;
	}
	int lock_fd = lock_server_clock(r, n);
	if (lock_fd < 0)
		return EX_CTL_UNAVAILABLE;
	/* The new setting starts from the clock's current reading (or from
	 * the offset asked for), so a new rate never makes it jump. */
	now = lm_now_ms();
	int64_t srv_now = lm_server_clock_ms(s, now * 1000000);
	int64_t ppm = (int64_t)(rate * 1e6 + 0.5);
	lm_skew_set(s, now, have_off ? now + off : srv_now, ppm);
	close(lock_fd);
	printf("server %u: clock skew %+lld ms, rate %.3f\n", n,
	       (long long)((have_off ? now + off : srv_now) - now), rate);
	return 0;
}

static int isolate(struct lm_region *r, unsigned n, pid_t pid)
{
	unsigned sessions = 0;
	pid_t tgid = 0;
	int rc = lm_isolation_add(r, n, pid, &sessions, &tgid);
	switch (rc) {
	case 0:
		break;
	case -EINVAL:
		fprintf(stderr, "lockctl: server isolate: %d is a thread of "
				"process %d; sessions belong to processes: "
				"isolate --pid %d\n", (int)pid, (int)tgid,
			(int)tgid);
		return EX_CTL_USAGE;
	case -ESRCH:
		fprintf(stderr, "lockctl: server isolate: no process %d is "
				"running; a process must exist to be isolated "
				"(its sessions then are, now and later)\n",
			(int)pid);
		return EX_CTL_USAGE;
	case -ENOSPC:
		fprintf(stderr, "lockctl: server isolate: %u processes are "
				"isolated already, the most there is room for; "
				"'lockctl server heal N' one first\n",
			LM_ISOLATION_RULES);
		return EX_CTL_UNAVAILABLE;
	case -EBUSY:
		fprintf(stderr, "lockctl: server isolate: another lockctl has "
				"been changing isolation for 2 s (is it "
				"stopped?); try again once it is done\n");
		return EX_CTL_UNAVAILABLE;
	default:
		fprintf(stderr, "lockctl: server isolate: cannot lock the "
				"isolation rules of %s: %s\n", r->name,
			strerror(-rc));
		return EX_CTL_UNAVAILABLE;
	}
	if (sessions == 0)
		printf("server %u now refuses pid %d: it has no session yet, "
		       "and the ones it opens will not reach server %u (until "
		       "'lockctl server heal %u')\n", n, (int)pid, n, n);
	else
		printf("server %u now refuses pid %d (%u session%s): from its "
		       "next acquire or renewal it can do neither there, as "
		       "in a partition, until 'lockctl server heal %u'\n", n,
		       (int)pid, sessions, sessions == 1 ? "" : "s", n);
	return 0;
}

static int heal(struct lm_region *r, unsigned n)
{
	unsigned processes = 0;
	int rc = lm_isolation_heal(r, n, &processes);
	if (rc == -EBUSY) {
		fprintf(stderr, "lockctl: server heal: another lockctl has "
				"been changing isolation for 2 s (is it "
				"stopped?); try again once it is done\n");
		return EX_CTL_UNAVAILABLE;
	} else if (rc != 0) {
		fprintf(stderr, "lockctl: server heal: cannot lock the "
				"isolation rules of %s: %s\n", r->name,
			strerror(-rc));
		return EX_CTL_UNAVAILABLE;
	}
	/* Acquires waiting for a quorum may proceed. */
	lm_futex_bump_wake(&r->hdr->servers_seq, INT32_MAX);
	if (processes == 0)
		printf("server %u serves every session (none was isolated)\n",
		       n);
	else
		printf("server %u serves every session again (%u process%s "
		       "isolated before)\n", n, processes,
		       processes == 1 ? " was" : "es were");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Arguments */

static const char *const server_cmds[] = {
	"list", "kill", "start", "pause", "resume", "skew", "isolate", "heal",
};

enum { OPT_WIPE, OPT_OFFSET, OPT_RATE, OPT_PID };

static int try_help(void)
{
	fputs("Try 'lockctl server --help'.\n", stderr);
	return EX_CTL_USAGE;
}

__attribute__((format(printf, 1, 2)))
static int server_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("lockctl server: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'lockctl server --help'.\n", stderr);
	return EX_CTL_USAGE;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL if not this flag.
 * *missing is set when the flag came without its value. */
static const char *flag_value(int argc, char **argv, int *i,
			      const char *name, bool *missing)
{
	const char *a = argv[*i];
	size_t len = strlen(name);
	if (strncmp(a, name, len) != 0)
		return NULL;
	if (a[len] == '=')
		return a + len + 1;
	if (a[len] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static int parse_rate(const char *v, double *rate)
{
	char *end;
	errno = 0;
	*rate = strtod(v, &end);
	if (errno || *end || end == v || !(*rate >= 0.001 && *rate <= 1000.0))
		return server_usage_error("--rate: '%s' is not a rate in "
					  "[0.001, 1000] (1 = true speed)", v);
	return 0;
}

static int parse_server_args(struct ctl_global *g, int argc, char **argv,
			     struct server_args *a)
{
	const char *pos[3] = {NULL, NULL, NULL};
	int npos = 0;
	bool only_args = false; /* after "--" */
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const char *v;
		bool missing = false;
		if (strcmp(arg, "--") == 0 && !only_args) {
			only_args = true;
			continue;
		}
		if (only_args) {
			if (npos >= 3)
				return server_usage_error("unexpected argument "
							  "'%s'", arg);
			pos[npos++] = arg;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			fputs(server_usage, stdout);
			return -1;
		} else if (strcmp(arg, "-r") == 0 ||
			   strcmp(arg, "--region") == 0) {
			if (i + 1 >= argc)
				return server_usage_error("option '%s' needs a "
							  "region name", arg);
			g->region_arg = argv[++i];
		} else if (strncmp(arg, "--region=", 9) == 0) {
			g->region_arg = arg + 9;
		} else if (strncmp(arg, "-r", 2) == 0 && arg[2] != '\0') {
			g->region_arg = arg + 2;
		} else if (strcmp(arg, "--wipe") == 0) {
			a->wipe = true;
			a->opt_of[OPT_WIPE] = "--wipe";
		} else if ((v = flag_value(argc, argv, &i, "--offset",
					   &missing)) != NULL) {
			if (ctl_parse_i64(v, "--offset", "milliseconds",
					  -86400000, 86400000, &a->offset_ms))
				return try_help();
			a->have_offset = true;
			a->opt_of[OPT_OFFSET] = "--offset";
		} else if (!missing && (v = flag_value(argc, argv, &i, "--rate",
						       &missing)) != NULL) {
			if (parse_rate(v, &a->rate))
				return EX_CTL_USAGE;
			a->have_rate = true;
			a->opt_of[OPT_RATE] = "--rate";
		} else if (!missing && (v = flag_value(argc, argv, &i, "--pid",
						       &missing)) != NULL) {
			if (ctl_parse_i64(v, "--pid", NULL, 1, INT32_MAX,
					  &a->pid))
				return try_help();
			a->opt_of[OPT_PID] = "--pid";
		} else if (missing) {
			return server_usage_error("option '%s' needs a value",
						  arg);
		} else if (arg[0] == '-' && arg[1] != '\0' &&
			   !(arg[1] >= '0' && arg[1] <= '9')) {
			return server_usage_error("unknown option '%s'", arg);
		} else if (npos < 3) {
			pos[npos++] = arg;
		} else {
			return server_usage_error("unexpected argument '%s'",
						  arg);
		}
	}
	if (npos == 0)
		return server_usage_error("no server command given (list, "
					  "kill, start, pause, resume, skew, "
					  "isolate, heal)");
	a->cmd = pos[0];
	bool known = false;
	for (size_t k = 0; k < sizeof(server_cmds) / sizeof(*server_cmds); k++)
		known |= strcmp(a->cmd, server_cmds[k]) == 0;
	if (!known)
		return server_usage_error("unknown server command '%s' (list, "
					  "kill, start, pause, resume, skew, "
					  "isolate, heal)", a->cmd);
	bool list = strcmp(a->cmd, "list") == 0;
	if (list && npos > 1)
		return server_usage_error("list: unexpected argument '%s' "
					  "(list shows every server)", pos[1]);
	if (!list) {
		if (npos < 2)
			return server_usage_error("%s: which server? Give its "
						  "number, 0, 1 or 2", a->cmd);
		if (strlen(pos[1]) != 1 || pos[1][0] < '0' ||
		    pos[1][0] >= '0' + (int)LM_NSERVERS) {
			fprintf(stderr, "lockctl server: %s: server number '",
				a->cmd);
			ctl_print_escaped(stderr, pos[1], 24);
			fprintf(stderr, "' is not 0, 1 or 2\n");
			return try_help();
		}
		a->n = (unsigned)(pos[1][0] - '0');
		if (npos > 2)
			return server_usage_error("%s: unexpected argument "
						  "'%s'", a->cmd, pos[2]);
	}
	/* Each option belongs to one command. */
	static const char *const owner[] = {"kill", "skew", "skew", "isolate"};
	for (int k = 0; k < 4; k++)
		if (a->opt_of[k] != NULL && strcmp(a->cmd, owner[k]) != 0)
			return server_usage_error("%s: '%s' is an option of "
						  "'server %s' only", a->cmd,
						  a->opt_of[k], owner[k]);
	if (strcmp(a->cmd, "skew") == 0 && !a->have_offset && !a->have_rate)
		return server_usage_error("skew: give --offset MS and/or --rate "
					  "R ('--offset 0 --rate 1' sets the "
					  "clock right)");
	if (strcmp(a->cmd, "isolate") == 0 && a->opt_of[OPT_PID] == NULL)
		return server_usage_error("isolate: which process? Give "
					  "--pid PID");
	return 0;
}

int ctl_server(struct ctl_global *g, int argc, char **argv)
{
	struct server_args a = {.rate = 1.0};
	int rc = parse_server_args(g, argc - 1, argv + 1, &a);
	if (rc != 0)
		return rc < 0 ? EX_CTL_OK : rc;
	rc = ctl_resolve_region(g);
	if (rc == 0)
		rc = ctl_shm_only(g, "lockctl server");
	if (rc != 0)
		return rc;
	struct lm_region r;
	char why[256];
	rc = lm_region_attach(&r, g->region, why, sizeof(why));
	if (rc != 0)
		return ctl_service_error(rc, g->region, why);
	unsigned n = a.n;
	if (strcmp(a.cmd, "list") == 0) {
		rc = ctl_server_table(&r);
	} else if (strcmp(a.cmd, "kill") == 0) {
		if (a.wipe && server_pid(r.servers[n]) != 0)
			atomic_fetch_or(&r.servers[n]->flags,
					LM_SRVF_WIPE_NEXT);
		char what[320];
		when_back(&r, n, a.wipe, what, sizeof(what));
		rc = signal_server(&r, n, SIGKILL, what);
	} else if (strcmp(a.cmd, "start") == 0) {
		rc = start_server(&r, n);
	} else if (strcmp(a.cmd, "pause") == 0) {
		char what[200];
		snprintf(what, sizeof(what), "paused (SIGSTOP): it stops "
			 "counting once its heartbeat is %d ms old; 'lockctl "
			 "server resume %u' wakes it", LM_HEARTBEAT_STALE_MS, n);
		rc = signal_server(&r, n, SIGSTOP, what);
	} else if (strcmp(a.cmd, "resume") == 0) {
		rc = signal_server(&r, n, SIGCONT, "resumed (SIGCONT)");
	} else if (strcmp(a.cmd, "skew") == 0) {
		rc = skew_server(&r, n, &a);
	} else if (strcmp(a.cmd, "isolate") == 0) {
		rc = isolate(&r, n, (pid_t)a.pid);
	} else {
		rc = heal(&r, n);
	}
	lm_region_detach(&r);
	return rc;
}
