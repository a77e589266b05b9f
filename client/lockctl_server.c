/*
 * lockctl_server.c - `lockctl server ...`: list the lock servers and
 * drive their faults (kill, start, pause, resume, skew, isolate, heal),
 * so that demos, tests and users break the cluster the same way.
 *
 * Faults are real: kill is SIGKILL to the server process, pause is
 * SIGSTOP. Only start needs the supervisor (it owns the processes): the
 * request is a bit in the region header plus SIGUSR1 to the supervisor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/region.h"
#include "../shm/session.h"
#include "internal.h"
#include "lockctl.h"
#include "lockmgr.h"

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

static const char *state_name(const struct lm_server *s, int64_t now_ms)
{
	uint64_t st = atomic_load(&s->state);
	switch (LM_SRV_STATE(st)) {
	case LM_SRV_UP:
		return lm_heartbeat_fresh(atomic_load(&s->heartbeat_ms), now_ms)
			       ? "up"
			       : "hung";
	case LM_SRV_RECOVERING:
		return "recovering";
	default:
		return "down";
	}
}

static int list_servers(struct lm_region *r)
{
	int64_t now = lm_now_ms();
	printf("%-6s %-8s %-11s %-6s %-8s %-9s %-24s %s\n", "SERVER", "PID",
	       "STATE", "EPOCH", "HB AGE", "RESTARTS", "CLOCK", "NOTE");
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct lm_server *s = r->servers[i];
		uint64_t st = atomic_load(&s->state);
		struct lm_skew_now k = lm_skew_read(s);
		int64_t off = lm_skew_apply(&k, now) - now;
		int64_t ppm = k.rate_ppm;
		char clock[64] = "true";
		if (off != 0 || ppm != 1000000)
			snprintf(clock, sizeof(clock), "%+lld ms, rate %.3f",
				 (long long)off, (double)ppm / 1e6);
		char note[160] = "";
		if (LM_SRV_STATE(st) == LM_SRV_RECOVERING)
			ctl_recovery_note(s, now, note, sizeof(note));
		printf("%-6u %-8d %-11s %-6llu %-8lld %-9llu %-24s %s\n", i,
		       (int)atomic_load(&s->pid), state_name(s, now),
		       (unsigned long long)LM_SRV_EPOCH(st),
		       (long long)lm_heartbeat_age_ms(
			       atomic_load(&s->heartbeat_ms), now),
		       (unsigned long long)atomic_load(&s->restarts), clock,
		       note);
	}
	return 0;
}

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
		if (LM_SRV_EPOCH(st) != LM_SRV_EPOCH(before) &&
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

static int skew_server(struct lm_region *r, unsigned n, int argc, char **argv)
{
	int64_t off = 0;
	double rate = 1.0;
	bool have_off = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--offset") == 0 && i + 1 < argc) {
			if (ctl_parse_i64(argv[++i], "--offset", -86400000,
					  86400000, &off))
				return EX_CTL_USAGE;
			have_off = true;
		} else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			rate = strtod(argv[++i], &end);
			if (errno || *end || end == argv[i] ||
			    !(rate >= 0.001 && rate <= 1000.0)) {
				fprintf(stderr, "lockctl: --rate: '%s' is not "
						"a rate in [0.001, 1000]\n",
					argv[i]);
				return EX_CTL_USAGE;
			}
		} else {
			fprintf(stderr, "lockctl: server skew: unexpected "
					"'%s'\n%s", argv[i], server_usage);
			return EX_CTL_USAGE;
		}
	}
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
	printf("server %u clock: %+lld ms, rate %.3f\n", n,
	       (long long)((have_off ? now + off : srv_now) - now), rate);
	return 0;
}

static int isolate(struct lm_region *r, unsigned n, int argc, char **argv)
{
	int64_t pid = 0;
	if (argc != 2 || strcmp(argv[0], "--pid") != 0 ||
	    ctl_parse_i64(argv[1], "--pid", 1, INT32_MAX, &pid)) {
		fprintf(stderr, "lockctl: server isolate N --pid PID\n");
		return EX_CTL_USAGE;
	}
	unsigned count = 0;
	uint32_t ns = lm_sessions_in_use(r);
	for (uint32_t i = 0; i < ns; i++) {
		struct lm_session *s = &r->sessions[i];
		uint64_t w = lm_session_word(s);
		if (LM_SESS_STATE(w) == LM_SESS_LIVE &&
		    LM_SESS_PID(w) == (pid_t)pid) {
			atomic_fetch_or(&s->isolated, 1u << n);
			count++;
		}
	}
	if (count == 0) {
		fprintf(stderr, "lockctl: pid %lld has no session on %s\n",
			(long long)pid, r->name);
		return EX_CTL_UNAVAILABLE;
	}
	printf("server %u now refuses %u session%s of pid %lld\n", n, count,
	       count == 1 ? "" : "s", (long long)pid);
	return 0;
}

static int heal(struct lm_region *r, unsigned n)
{
	uint32_t ns = lm_sessions_in_use(r);
	for (uint32_t i = 0; i < ns; i++)
		atomic_fetch_and(&r->sessions[i].isolated, ~(1u << n));
	/* Acquires waiting for a quorum may proceed. */
	lm_futex_bump_wake(&r->hdr->servers_seq, INT32_MAX);
	printf("server %u serves every session again\n", n);
	return 0;
}

int ctl_server(struct ctl_global *g, int argc, char **argv)
{
	argc--; /* argv[0] is "server" */
	argv++;
	if (argc < 1 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "-h") == 0) {
		fputs(server_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? EX_CTL_USAGE : 0;
	}
	const char *cmd = argv[0];
	unsigned n = 0;
	if (strcmp(cmd, "list") != 0) {
		int64_t v;
		if (argc < 2 || ctl_parse_i64(argv[1], "server number", 0,
					      LM_NSERVERS - 1, &v)) {
			fputs(server_usage, stderr);
			return EX_CTL_USAGE;
		}
		n = (unsigned)v;
	}
	int rc = ctl_resolve_region(g);
	if (rc != 0)
		return rc;
	struct lm_region r;
	char why[256];
	rc = lm_region_attach(&r, g->region, why, sizeof(why));
	if (rc != 0)
		return ctl_service_error(rc, g->region, why);
	int rest = argc - 2;
	char **restv = argv + 2;
	if (strcmp(cmd, "list") == 0 && argc == 1)
		rc = list_servers(&r);
	else if (strcmp(cmd, "kill") == 0 && rest <= 1) {
		if (rest == 1 && strcmp(restv[0], "--wipe") != 0) {
			fprintf(stderr, "lockctl: server kill N [--wipe]\n");
			rc = EX_CTL_USAGE;
		} else {
			bool wipe = rest == 1;
			if (wipe && server_pid(r.servers[n]) != 0)
				atomic_fetch_or(&r.servers[n]->flags,
						LM_SRVF_WIPE_NEXT);
			char what[320];
			when_back(&r, n, wipe, what, sizeof(what));
			rc = signal_server(&r, n, SIGKILL, what);
		}
	} else if (strcmp(cmd, "start") == 0 && rest == 0)
		rc = start_server(&r, n);
	else if (strcmp(cmd, "pause") == 0 && rest == 0)
		rc = signal_server(&r, n, SIGSTOP, "paused (SIGSTOP)");
	else if (strcmp(cmd, "resume") == 0 && rest == 0)
		rc = signal_server(&r, n, SIGCONT, "resumed (SIGCONT)");
	else if (strcmp(cmd, "skew") == 0)
		rc = skew_server(&r, n, rest, restv);
	else if (strcmp(cmd, "isolate") == 0)
		rc = isolate(&r, n, rest, restv);
	else if (strcmp(cmd, "heal") == 0 && rest == 0)
		rc = heal(&r, n);
	else {
		fprintf(stderr, "lockctl: unknown server command '%s'\n%s", cmd,
			server_usage);
		rc = EX_CTL_USAGE;
	}
	lm_region_detach(&r);
	return rc;
}
