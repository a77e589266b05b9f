/*
 * lockmgrd.c - the supervisor: options, creating or adopting the region,
 * the event loop and a clean shutdown.
 *
 * Only one supervisor serves a region: it holds flock(LOCK_EX) on the
 * shm object for its lifetime, and the kernel drops that lock when it
 * dies, so a restarted supervisor can tell "another one is running"
 * (refuse) from "the last one died" (adopt the region as it is).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "../shm/clock.h"
#include "../shm/session.h"
#include "../shm/test_hook.h"
#include "log.h"
#include "server.h"
#include "state_dir.h"
#include "supervisor.h"

#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_OSERR 71
#define EX_CONFIG 78

static void usage(FILE *f)
{
	fprintf(f,
"Usage: lockmgrd [OPTION]...\n"
"Run the lockmgr supervisor: create (or adopt) the shared-memory region,\n"
"run its three lock servers, free the locks of clients that die.\n"
"Runs in the foreground and logs to stderr; SIGTERM or SIGINT stops it,\n"
"its servers, and removes the region.\n"
"\n"
"  -r, --region NAME        region name (default $LOCKMGR_REGION or /lockmgr)\n"
"      --max-locks N        lock slots per table (default %u)\n"
"      --max-sessions N     client sessions (default %u)\n"
"      --max-ttl MS         longest lease, and a restarted server's\n"
"                           quarantine (default %d ms)\n"
"      --restart-delay MS   restart a dead server after MS (default 100);\n"
"                           -1 keeps it down until 'lockctl server start'\n"
"      --no-release-on-exit leave a dead client's locks to lease expiry\n"
"      --state-dir DIR      keep each server's token high-water mark in DIR,\n"
"                           so tokens keep increasing across full restarts\n"
"      --mode OCTAL         permissions of the region (default 0600)\n"
"      --fresh              discard an existing region that is not in use\n"
"  -d, --daemon             detach once ready; write --pidfile if given\n"
"      --pidfile PATH       write the supervisor's pid to PATH\n"
"  -q, --quiet              log nothing but errors\n"
"  -h, --help               show this help\n",
		LM_DEFAULT_MAX_LOCKS, LM_DEFAULT_MAX_SESSIONS,
		LM_DEFAULT_MAX_TTL_MS);
}

static int parse_u32(const char *s, const char *flag, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v > UINT32_MAX) {
		fprintf(stderr, "lockmgrd: %s: '%s' is not a number\n", flag, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_i64(const char *s, const char *flag, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		fprintf(stderr, "lockmgrd: %s: '%s' is not a number\n", flag, s);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_MAX_LOCKS = 256,
	OPT_MAX_SESSIONS,
	OPT_MAX_TTL,
	OPT_RESTART_DELAY,
	OPT_NO_RELEASE,
	OPT_MODE,
	OPT_FRESH,
	OPT_PIDFILE,
	OPT_SERVER_ROLE,
	OPT_STATE_DIR,
};

static int parse_options(int argc, char **argv, struct lm_options *o,
			 int *server_role)
{
	static const struct option longopts[] = {
		{"region", required_argument, NULL, 'r'},
		{"max-locks", required_argument, NULL, OPT_MAX_LOCKS},
		{"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
		{"max-ttl", required_argument, NULL, OPT_MAX_TTL},
		{"restart-delay", required_argument, NULL, OPT_RESTART_DELAY},
		{"no-release-on-exit", no_argument, NULL, OPT_NO_RELEASE},
		{"mode", required_argument, NULL, OPT_MODE},
		{"fresh", no_argument, NULL, OPT_FRESH},
		{"daemon", no_argument, NULL, 'd'},
		{"pidfile", required_argument, NULL, OPT_PIDFILE},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"server-role", required_argument, NULL, OPT_SERVER_ROLE},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	o->params.max_locks = LM_DEFAULT_MAX_LOCKS;
	o->params.max_sessions = LM_DEFAULT_MAX_SESSIONS;
	o->params.max_ttl_ms = LM_DEFAULT_MAX_TTL_MS;
	o->params.mode = 0600;
	o->restart_delay_ms = 100;
	o->release_on_exit = true;
	*server_role = -1;
	int c;
	uint32_t u;
	while ((c = getopt_long(argc, argv, "r:dqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o->region = optarg;
			break;
		case OPT_MAX_LOCKS:
			if (parse_u32(optarg, "--max-locks",
				      &o->params.max_locks))
				return EX_USAGE;
			break;
		case OPT_MAX_SESSIONS:
			if (parse_u32(optarg, "--max-sessions",
				      &o->params.max_sessions))
				return EX_USAGE;
			break;
		case OPT_MAX_TTL:
			if (parse_i64(optarg, "--max-ttl", &o->params.max_ttl_ms))
				return EX_USAGE;
			break;
		case OPT_RESTART_DELAY:
			if (parse_i64(optarg, "--restart-delay",
				      &o->restart_delay_ms))
				return EX_USAGE;
			if (o->restart_delay_ms < -1) {
				fprintf(stderr, "lockmgrd: --restart-delay must "
						"be -1 (manual) or >= 0 ms\n");
				return EX_USAGE;
			}
			break;
		case OPT_NO_RELEASE:
			o->release_on_exit = false;
			break;
		case OPT_MODE: {
			char *end;
			unsigned long m = strtoul(optarg, &end, 8);
			if (*optarg == '\0' || *end != '\0' || m > 0777) {
				fprintf(stderr, "lockmgrd: --mode: '%s' is not "
						"an octal mode like 0600\n",
					optarg);
				return EX_USAGE;
			}
			o->params.mode = (unsigned)m;
			break;
		}
		case OPT_FRESH:
			o->fresh = true;
			break;
		case 'd':
			o->daemonize = true;
			break;
		case OPT_PIDFILE:
			o->pidfile = optarg;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		case OPT_SERVER_ROLE:
			if (parse_u32(optarg, "--server-role", &u) ||
			    u >= LM_NSERVERS)
				return EX_USAGE;
			*server_role = (int)u;
			break;
		default:
			fprintf(stderr, "Try 'lockmgrd --help'.\n");
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lockmgrd: unexpected argument '%s'\n"
				"Try 'lockmgrd --help'.\n", argv[optind]);
		return EX_USAGE;
	}
	char err[128];
	if (lm_region_check_params(&o->params, err, sizeof(err)) != 0) {
		fprintf(stderr, "lockmgrd: %s\n", err);
		return EX_USAGE;
	}
	return 0;
}

/*
 * Open or create the region and take the supervisor's flock. On return
 * sv->region is mapped and valid.
 */
static int open_region(struct supervisor *sv)
{
	const char *name = sv->name;
	int fd = shm_open(name, O_RDWR | O_CREAT | O_CLOEXEC,
			  (mode_t)sv->opt.params.mode);
	if (fd < 0) {
		fprintf(stderr, "lockmgrd: cannot open region %s: %s\n", name,
			strerror(errno));
		return EX_OSERR;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		struct lm_region peek;
		char why[256];
		int pid = 0;
		if (lm_region_map_fd(&peek, fd, name, why, sizeof(why)) == 0) {
			pid = atomic_load(&peek.hdr->supervisor_pid);
			munmap(peek.base, peek.size);
		}
		fprintf(stderr,
			"lockmgrd: region %s is already served by a running "
			"lockmgrd (pid %d); stop it first (kill %d), or use "
			"another --region\n", name, pid, pid);
		close(fd);
		return EX_UNAVAILABLE;
	}
	/* fchmod: shm_open's mode is masked by the umask. */
	struct stat st;
	if (fstat(fd, &st) != 0)
		lm_die("fstat(region)");
	if (st.st_size != 0 && sv->opt.fresh) {
		lm_log("supervisor", "--fresh: discarding the old contents of "
		       "%s", name);
		if (ftruncate(fd, 0) != 0)
			lm_die("ftruncate(region, 0)");
		st.st_size = 0;
	}
	if (st.st_size == 0) {
		fchmod(fd, (mode_t)sv->opt.params.mode);
		if (lm_region_init(&sv->region, fd, name, &sv->opt.params) != 0) {
			fprintf(stderr, "lockmgrd: cannot create region %s "
					"(%zu bytes): %s\n", name,
				lm_region_size_for(sv->opt.params.max_locks,
						   sv->opt.params.max_sessions),
				strerror(errno));
			shm_unlink(name);
			close(fd);
			return EX_OSERR;
		}
		sv->fresh_region = true;
		lm_log("supervisor", "created region %s (%u locks, %u "
		       "sessions, max TTL %lld ms, %zu bytes)", name,
		       sv->region.max_locks, sv->region.max_sessions,
		       (long long)sv->region.max_ttl_ms, sv->region.size);
		return 0;
	}
	char why[256];
	int rc = lm_region_map_fd(&sv->region, fd, name, why, sizeof(why));
	if (rc != 0) {
		fprintf(stderr,
			"lockmgrd: region %s exists but cannot be adopted: "
			"%s.\nNo supervisor is using it: start with --fresh "
			"to discard it, or use another --region.\n", name,
			rc == LM_ESYS ? strerror(errno) : why);
		close(fd);
		return EX_UNAVAILABLE;
	}
	lm_log("supervisor", "adopting region %s (its supervisor pid %d is "
	       "gone; %u locks, %u sessions)", name,
	       (int)atomic_load(&sv->region.hdr->supervisor_pid),
	       sv->region.max_locks, sv->region.max_sessions);
	if (sv->region.max_locks != sv->opt.params.max_locks ||
	    sv->region.max_sessions != sv->opt.params.max_sessions)
		lm_log("supervisor", "note: keeping the region's sizes; "
		       "--max-locks/--max-sessions apply to a new region");
	return 0;
}

/* Refuse to start on a state file we cannot trust: starting from zero
 * would re-issue tokens. */
static int check_state_dir(const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "lockmgrd: cannot create --state-dir %s: %s\n",
			dir, strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		uint64_t res;
		char err[512];
		if (lm_state_load(dir, i, &res, err, sizeof(err)) < 0) {
			fprintf(stderr,
				"lockmgrd: %s.\nTokens issued before cannot be "
				"proven lower than new ones. Restore the file "
				"from a backup, or, only if every client that "
				"used tokens is gone, remove the directory.\n",
				err);
			return -1;
		}
	}
	return 0;
}

/*
 * The supervisor holds a pidfd per session: raise the open-file limit to
 * the hard limit, and say so if even that is too low for max_sessions
 * (a session it cannot watch is freed only by lease expiry).
 */
static void raise_fd_limit(uint32_t max_sessions)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max_sessions + 64)
		lm_log("supervisor", "warning: the open-file limit (%llu) is "
		       "below --max-sessions + 64; raise it (ulimit -n, or "
		       "LimitNOFILE= in systemd) so every client can be "
		       "watched", (unsigned long long)rl.rlim_cur);
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "lockmgrd: cannot write pidfile %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	return 0;
}

/* Fork into the background; the parent exits once the child says it is
 * ready, so that `lockmgrd --daemon && lockctl ...` works. */
static int daemonize(int *ready_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		char b;
		ssize_t n = read(p[0], &b, 1);
		_exit(n == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		close(nul);
	}
	*ready_fd = p[1];
	return 0;
}

static int setup_events(struct supervisor *sv)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	sv->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	sv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sv->sigfd < 0 || sv->epfd < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = EV_DATA(EV_SIGNAL, 0, 0)};
	return epoll_ctl(sv->epfd, EPOLL_CTL_ADD, sv->sigfd, &ev);
}

static void event_loop(struct supervisor *sv)
{
	for (;;) {
		int64_t now = lm_now_ms();
		int64_t due = sup_next_due_ms(sv);
		int timeout = 1000;
		if (due != INT64_MAX)
			timeout = due <= now ? 0 : (int)(due - now < 1000
								 ? due - now
								 : 1000);
		struct epoll_event evs[16];
		int n = epoll_wait(sv->epfd, evs, 16, timeout);
		if (n < 0 && errno != EINTR)
			lm_die("epoll_wait");
		for (int k = 0; k < n; k++) {
			uint64_t d = evs[k].data.u64;
			switch (EV_KIND(d)) {
			case EV_SIGNAL: {
				struct signalfd_siginfo si;
				if (read(sv->sigfd, &si, sizeof(si)) !=
				    sizeof(si))
					break;
				if (si.ssi_signo == SIGHUP)
					break;
				if (si.ssi_signo == SIGUSR1) {
					sup_take_start_requests(sv);
					break;
				}
				lm_log("supervisor", "%s: shutting down",
				       strsignal((int)si.ssi_signo));
				return;
			}
			case EV_SERVER:
				sup_server_died(sv, EV_IDX(d));
				break;
			case EV_SESSION:
				sup_session_died(sv, EV_IDX(d), EV_GEN(d));
				break;
			case EV_NEWS:
				sup_take_session_news(sv);
				break;
			}
		}
		now = lm_now_ms();
		sup_run_due_restarts(sv, now);
		sup_free_deferred_sessions(sv, now);
	}
}

int main(int argc, char **argv)
{
	struct supervisor sv;
	memset(&sv, 0, sizeof(sv));
	int server_role;
	int rc = parse_options(argc, argv, &sv.opt, &server_role);
	if (rc != 0)
		return rc;
	lm_log_quiet = sv.opt.quiet;
	lm_hook_init();
	if (lm_region_resolve_name(sv.opt.region, sv.name) != 0) {
		fprintf(stderr, "lockmgrd: %s\n", lm_strerror(LM_EBADREGION));
		return EX_USAGE;
	}
	if (server_role >= 0)
		return lm_server_main((unsigned)server_role, sv.name,
				      sv.opt.state_dir);
	if (sv.opt.state_dir != NULL && check_state_dir(sv.opt.state_dir) != 0)
		return EX_CONFIG;

	rc = open_region(&sv);
	if (rc != 0)
		return rc;
	int ready_fd = -1;
	if (sv.opt.daemonize && daemonize(&ready_fd) != 0)
		lm_die("fork for --daemon");
	if (sv.opt.pidfile != NULL && write_pidfile(sv.opt.pidfile) != 0)
		return EX_OSERR;
	if (setup_events(&sv) != 0)
		lm_die("signalfd/epoll");

	struct lm_region_header *h = sv.region.hdr;
	pid_t me = getpid();
	atomic_store(&h->supervisor_pid, me);
	atomic_store(&h->supervisor_start, lm_proc_start_time(me));
	atomic_store(&h->restart_delay_ms, sv.opt.restart_delay_ms);
	uint32_t flags = atomic_load(&h->flags);
	flags = sv.opt.release_on_exit ? flags | LM_REGION_RELEASE_ON_EXIT
				       : flags & ~LM_REGION_RELEASE_ON_EXIT;
	atomic_store(&h->flags, flags);
	atomic_store(&h->supervisor_state, LM_SUP_RUNNING);

	raise_fd_limit(sv.region.max_sessions);
	sup_adopt_or_start_servers(&sv);
	if (sup_start_registrar(&sv) != 0)
		lm_die("registrar thread");
	lm_log("supervisor", "serving %s (pid %d)", sv.name, (int)me);
	if (ready_fd >= 0) {
		ssize_t w = write(ready_fd, "r", 1);
		(void)w;
		close(ready_fd);
	}

	event_loop(&sv);

	atomic_store(&sv.stopping, true);
	atomic_store(&h->supervisor_state, LM_SUP_STOPPED);
	sup_stop_registrar(&sv);
	sup_stop_servers(&sv);
	shm_unlink(sv.name);
	if (sv.opt.pidfile != NULL)
		unlink(sv.opt.pidfile);
	lm_log("supervisor", "stopped; region %s removed", sv.name);
	lm_region_detach(&sv.region);
	close(sv.epfd);
	close(sv.sigfd);
	return 0;
}
