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
#include <poll.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/grant.h"
#include "../shm/heartbeat.h"
#include "../shm/lease_scan.h"
#include "../shm/name_index.h"
#include "../shm/session.h"
#include "../shm/test_hook.h"
#include "../shm/wait_queue.h"
#include "log.h"
#include "server.h"
#include "service_record.h"
#include "state_dir.h"
#include "supervisor.h"

#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_OSERR 71
#define EX_TEMPFAIL 75
#define EX_CONFIG 78

/* --daemon: how long the foreground process waits for a quorum. */
#define READY_TIMEOUT_MS 10000
/* ... and, once a quorum counts, for a server still reading its table
 * (it usually counts a few ms later). */
#define READY_ALL_GRACE_MS 1000

#define LOCKMGRD_VERSION "0.1"

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
"      --deadlock-timeout MS a wait looks for a cycle of waits once it has\n"
"                           lasted MS (default 1000; -1 never), unless\n"
"                           the acquire says otherwise\n"
"      --tree               names with '/' form a tree: a lock on /a/b/c\n"
"                           first takes an intention mode on /a and /a/b,\n"
"                           so that X on /a/b excludes everything below it\n"
"                           (set when the region is created)\n"
"      --state-dir DIR      keep token high-water marks and the service\n"
"                           record in DIR (default /var/lib/lockmgr/REGION\n"
"                           for root, else $XDG_STATE_HOME/lockmgr/REGION),\n"
"                           so tokens keep increasing across full restarts\n"
"      --ephemeral          keep nothing on disk (tests, demos): tokens start\n"
"                           again at 1 after a full restart\n"
"      --mode OCTAL         permissions of the region (default 0600)\n"
"      --fresh              discard an existing region that is not in use\n"
"  -d, --daemon             detach once clients can take locks (a quorum of\n"
"                           servers is up); write --pidfile if given\n"
"      --pidfile PATH       write the supervisor's pid to PATH\n"
"  -q, --quiet              log nothing but errors (not the events of a\n"
"                           healthy service)\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n"
"\n"
"Exit status:\n"
"  0    stopped cleanly by SIGTERM or SIGINT; with --daemon, the\n"
"       foreground process exits 0 once the service is usable\n"
"  1    --daemon: the background process failed before the service was\n"
"       usable\n"
"  64   usage error: bad option, number or region name, or a parameter\n"
"       out of range\n"
"  69   the region is served by a running lockmgrd, or it exists but\n"
"       cannot be adopted, or --fresh would discard it under live clients\n"
"  71   system error: the region cannot be opened or created, or the\n"
"       pidfile cannot be written\n"
"  75   --daemon: the service runs but has no quorum yet (its servers\n"
"       wait over 10 s for an earlier service's leases, or too few\n"
"       counted within 10 s); the message says why and for how long\n"
"  78   the state directory cannot be found, created or written, or it\n"
"       holds a token file that cannot be trusted\n",
		LM_DEFAULT_MAX_LOCKS, LM_DEFAULT_MAX_SESSIONS,
		LM_DEFAULT_MAX_TTL_MS);
}

/* Print what is wrong with option flag's value s. */
static int bad_number(const char *s, const char *flag, const char *what)
{
	fprintf(stderr, "lockmgrd: %s: '%.40s%s' is not %s\n"
			"Try 'lockmgrd --help'.\n", flag, s,
		strlen(s) > 40 ? "..." : "", what);
	return -1;
}

static int parse_u32(const char *s, const char *flag, uint32_t *out)
{
	char *end;
	errno = 0;
	if (s[0] == '-')
		return bad_number(s, flag, "allowed: it must not be negative");
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end != '\0' || s[0] == '+' || s[0] == ' ')
		return bad_number(s, flag, "a whole number");
	if (errno != 0 || v > UINT32_MAX)
		return bad_number(s, flag, "allowed: it is far too large");
	*out = (uint32_t)v;
	return 0;
}

static int parse_i64(const char *s, const char *flag, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || s[0] == '+' || s[0] == ' ')
		return bad_number(s, flag, "a whole number of milliseconds");
	if (errno != 0)
		return bad_number(s, flag, "allowed: it is far too large");
	*out = v;
	return 0;
}

enum {
	OPT_MAX_LOCKS = 256,
	OPT_MAX_SESSIONS,
	OPT_MAX_TTL,
	OPT_RESTART_DELAY,
	OPT_DEADLOCK_TIMEOUT,
	OPT_NO_RELEASE,
	OPT_TREE,
	OPT_MODE,
	OPT_FRESH,
	OPT_PIDFILE,
	OPT_SERVER_ROLE,
	OPT_STATE_DIR,
	OPT_EPHEMERAL,
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
		{"deadlock-timeout", required_argument, NULL,
		 OPT_DEADLOCK_TIMEOUT},
		{"no-release-on-exit", no_argument, NULL, OPT_NO_RELEASE},
		{"tree", no_argument, NULL, OPT_TREE},
		{"mode", required_argument, NULL, OPT_MODE},
		{"fresh", no_argument, NULL, OPT_FRESH},
		{"daemon", no_argument, NULL, 'd'},
		{"pidfile", required_argument, NULL, OPT_PIDFILE},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"server-role", required_argument, NULL, OPT_SERVER_ROLE},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"ephemeral", no_argument, NULL, OPT_EPHEMERAL},
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
	/* Our own messages: getopt's would start with argv[0], which is
	 * "./lockmgrd" or a full path. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:dqhV", longopts, NULL)) != -1) {
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
		case OPT_DEADLOCK_TIMEOUT:
			if (parse_i64(optarg, "--deadlock-timeout",
				      &o->deadlock_timeout_ms))
				return EX_USAGE;
			if (o->deadlock_timeout_ms < -1 ||
			    o->deadlock_timeout_ms == 0) {
				fprintf(stderr, "lockmgrd: --deadlock-timeout "
						"must be -1 (never look for "
						"deadlocks) or > 0 ms\n");
				return EX_USAGE;
			}
			break;
		case OPT_TREE:
			o->params.tree = true;
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
		case 'V':
			printf("lockmgrd %s\n", LOCKMGRD_VERSION);
			exit(0);
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		case OPT_EPHEMERAL:
			o->ephemeral = true;
			break;
		case OPT_SERVER_ROLE:
			if (parse_u32(optarg, "--server-role", &u) ||
			    u >= LM_NSERVERS)
				return EX_USAGE;
			*server_role = (int)u;
			break;
		case ':':
			fprintf(stderr, "lockmgrd: option '%s' needs a value\n"
					"Try 'lockmgrd --help'.\n",
				argv[optind - 1]);
			return EX_USAGE;
		default:
			fprintf(stderr, "lockmgrd: unknown option '%s'\n"
					"Try 'lockmgrd --help'.\n",
				argv[optind - 1]);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lockmgrd: unexpected argument '%s'\n"
				"Try 'lockmgrd --help'.\n", argv[optind]);
		return EX_USAGE;
	}
	if (o->ephemeral && o->state_dir != NULL) {
		fprintf(stderr, "lockmgrd: --ephemeral keeps nothing on disk "
				"and --state-dir names where to keep it: give "
				"one or the other\nTry 'lockmgrd --help'.\n");
		return EX_USAGE;
	}
	char err[128];
	if (lm_region_check_params(&o->params, err, sizeof(err)) != 0) {
		fprintf(stderr, "lockmgrd: %s\n", err);
		return EX_USAGE;
	}
	return 0;
}

/* The latest quarantine floor a region's servers carry (local ms): the
 * leases of a service before the one that made the region. */
static int64_t region_floor(const struct lm_region *r)
{
	int64_t floor = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		int64_t f = atomic_load(&r->servers[i]->quarantine_floor_ms);
		floor = f > floor ? f : floor;
	}
	return floor;
}

/*
 * A region about to be discarded (--fresh), if it is a valid one: how
 * many live clients use it, and the floor its servers carry. False if
 * it is foreign or corrupted (then nobody could use it).
 */
static bool inspect_old_region(int fd, const char *name, int *live,
			       int64_t *floor)
{
	struct lm_region old;
	char why[256];
	if (lm_region_map_fd(&old, fd, name, why, sizeof(why)) != 0)
		return false;
	*live = 0;
	for (uint32_t i = 0; i < lm_sessions_in_use(&old); i++)
		if (lm_session_is_live(&old.sessions[i]) &&
		    lm_session_process_alive(&old.sessions[i]))
			(*live)++;
	*floor = region_floor(&old);
	munmap(old.base, old.size);
	return true;
}

/* The servers of a region being discarded (their supervisor died) must
 * not live on into the new one. */
static void stop_orphaned_servers(int fd, const char *name)
{
	struct lm_region old;
	char why[256];
	if (lm_region_map_fd(&old, fd, name, why, sizeof(why)) != 0)
		return;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		pid_t pid = atomic_load(&old.servers[i]->pid);
		if (pid > 0 && lm_proc_start_time(pid) ==
				       atomic_load(&old.servers[i]->start_time))
			kill(pid, SIGKILL);
	}
	munmap(old.base, old.size);
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
		int live = 0;
		sv->old_region_seen = inspect_old_region(fd, name, &live,
						      &sv->old_region_floor);
		if (live > 0) {
			fprintf(stderr,
				"lockmgrd: --fresh would discard region %s while "
				"%d client%s still use%s it (see 'lockctl "
				"status'): their locks would vanish under them. "
				"Stop them first, or start without --fresh to "
				"adopt the region.\n", name, live,
				live == 1 ? "" : "s", live == 1 ? "s" : "");
			close(fd);
			return EX_UNAVAILABLE;
		}
		lm_log("supervisor", "--fresh: discarding the old contents of "
		       "%s", name);
		stop_orphaned_servers(fd, name);
		/* A new object under the name, not the old one truncated:
		 * a process that still maps the old one (lockctl status in
		 * a loop, a monitor) would die of SIGBUS on its next read. */
		if (shm_unlink(name) != 0)
			lm_die("shm_unlink(region)");
		close(fd);
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			      (mode_t)sv->opt.params.mode);
		LM_HOOK("supervisor.fresh_discarded");
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
			fprintf(stderr, "lockmgrd: region %s was created again "
					"by another lockmgrd while this one "
					"discarded it; stop that one first\n",
				name);
			if (fd >= 0)
				close(fd);
			return EX_UNAVAILABLE;
		}
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
			rc == LM_R_SYS ? strerror(errno) : why);
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
	bool tree = atomic_load(&sv->region.hdr->flags) & LM_REGION_TREE;
	if (tree != sv->opt.params.tree)
		lm_log("supervisor", "note: keeping the region's names %s; "
		       "--tree applies to a new region",
		       tree ? "as a tree" : "flat");
	return 0;
}

/* Refuse to start on a state file we cannot trust: starting from zero
 * would re-issue tokens. */
static int check_state_dir(const char *dir)
{
	char err[512];
	if (lm_state_mkdirs(dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "lockmgrd: %s\n(keep the state elsewhere with "
				"--state-dir DIR, or none with --ephemeral)\n",
			err);
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

static void mark_abandoned(const char *name, uint32_t len, void *arg)
{
	struct lm_region *r = arg;
	int64_t idx = lm_name_lookup(r, name, len, 1);
	if (idx < 0)
		return; /* a full table: the mark is lost, nothing else */
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		atomic_store(&lm_slot_of(r, i, (uint32_t)idx)->owner,
			     LM_OWNER_ABANDONED);
}

static bool same_boot(const char *a, const char *b)
{
	/* Unknown counts as the same: only a known reboot ends leases. */
	return a[0] == '\0' || b[0] == '\0' || strcmp(a, b) == 0;
}

/*
 * Until when (local ms) may clients of an earlier service still believe
 * in leases it granted, and which locks did they hold? An adopted region
 * carries that itself: its servers' floor. A region that replaced a
 * valid one (--fresh, which refuses while clients use it) inherits that
 * one's floor. A new region after a removed one relies on the state
 * directory's record: until when a clean stop said (it counted its own
 * floor in), or one max TTL after a service that never stopped cleanly.
 * Sets sv->prev_leases_until_ms, then records this service as running.
 */
static int take_over_record(struct supervisor *sv)
{
	const char *dir = sv->opt.state_dir;
	char err[512], boot[40];
	struct lm_service_record rec;
	lm_boot_id(boot);
	int rc = lm_service_load(dir, &rec, err, sizeof(err));
	int64_t now_ms = lm_now_ms();
	int64_t until = 0;
	bool from_record = false;
	if (!sv->fresh_region) {
		until = region_floor(&sv->region);
	} else if (sv->old_region_seen) {
		until = sv->old_region_floor;
	} else if (rc < 0) {
		lm_log_error("supervisor", "%s: assuming the last service's "
			     "leases may run for one max TTL", err);
		until = now_ms + sv->region.max_ttl_ms;
	} else if (rc == 0 && same_boot(rec.boot_id, boot)) {
		until = rec.state == LM_SERVICE_STOPPED
				? rec.leases_until_ms
				: now_ms + rec.max_ttl_ms;
		from_record = true;
		/* No lease ends later than the longest TTL any region allows
		 * from now (a stopped service's end carries those of the
		 * services before it, whose TTLs may have been longer): a
		 * record that says so is damaged, and trusted no more than a
		 * missing one. */
		if (until > now_ms + LM_MAX_TTL_LIMIT_MS) {
			lm_log_error("supervisor", "%s/service says leases "
				     "run until %lld ms from now, past any max "
				     "TTL: damaged; assuming one max TTL", dir,
				     (long long)(until - now_ms));
			until = now_ms + (rec.max_ttl_ms > sv->region.max_ttl_ms
						  ? rec.max_ttl_ms
						  : sv->region.max_ttl_ms);
		}
	}
	/* The locks the last service left held or abandoned: their next
	 * holder is told (LM_GRANT_RECOVERED), as it would have been in the
	 * old region. */
	if (from_record && rec.state == LM_SERVICE_STOPPED &&
	    lm_abandoned_load(dir, mark_abandoned, &sv->region, err,
			      sizeof(err)) < 0)
		lm_log_error("supervisor", "%s: the next holders of the locks "
			     "held when the last service stopped will not be "
			     "told", err);
	if (sv->fresh_region)
		lm_abandoned_remove(dir);
	if (until > now_ms) {
		sv->prev_leases_until_ms = until;
		/* In the region at once, not only in the servers this
		 * supervisor will start: killed before it starts them, it
		 * must leave the floor to whoever adopts the region
		 * (region_floor). Only a restart's plan reads it. */
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			_Atomic int64_t *f =
				&sv->region.servers[i]->quarantine_floor_ms;
			int64_t cur = atomic_load(f);
			while (cur < until &&
			       !atomic_compare_exchange_weak(f, &cur, until))
				;
		}
		lm_log("supervisor", "leases of an earlier service on %s may "
		       "run for %lld ms more: nothing is granted until then",
		       sv->name, (long long)(until - now_ms));
	}
	struct lm_service_record mine = {
		.state = LM_SERVICE_RUNNING,
		.max_ttl_ms = sv->region.max_ttl_ms,
	};
	memcpy(mine.boot_id, boot, sizeof(mine.boot_id));
	if (lm_service_store(dir, &mine, err, sizeof(err)) != 0) {
		fprintf(stderr, "lockmgrd: %s\n", err);
		return -1;
	}
	return 0;
}

/*
 * Write to DIR/abandoned the names of the locks whose leases still run,
 * or that carry a mark for their next holder (an abandoned word on any
 * table, which a later service would otherwise forget).
 */
static void record_held_locks(struct supervisor *sv, int64_t now_ns)
{
	struct lm_region *r = &sv->region;
	uint32_t n = lm_names_in_use(r), count = 0;
	const char **names = calloc(n ? n : 1, sizeof(*names));
	uint32_t *len = calloc(n ? n : 1, sizeof(*len));
	char (*text)[LM_NAME_MAX + 1] = calloc(n ? n : 1, sizeof(*text));
	if (names == NULL || len == NULL || text == NULL)
		goto out;
	for (uint32_t lock = 0; lock < n; lock++) {
		bool held = false;
		for (unsigned i = 0; i < LM_NSERVERS && !held; i++) {
			struct lm_slot *slot = lm_slot_of(r, i, lock);
			uint64_t w = atomic_load(&slot->owner);
			uint64_t lease = atomic_load(&slot->lease);
			held = w == LM_OWNER_ABANDONED ||
			       (LM_OWNER_SESSION(w) != 0 &&
				LM_LEASE_TAG(lease) == LM_OWNER_TAG(w) &&
				LM_LEASE_EXPIRY(lease) >
					lm_server_clock_ms(r->servers[i],
							   now_ns));
		}
		if (held && (len[count] = lm_name_copy(r, lock, text[count],
						       NULL)) != 0) {
			names[count] = text[count];
			count++;
		}
	}
	char err[512];
	if (count > 0 && lm_abandoned_store(sv->opt.state_dir, names, len,
					    count, err, sizeof(err)) != 0)
		lm_log_error("supervisor", "%s: the next holders of the locks "
			     "held now will not be told", err);
out:
	free(names);
	free(len);
	free(text);
}

/*
 * The leases this service granted may outlive it: clients keep the old
 * region mapped. With a state directory the next service is told when
 * they end (DIR/service); without one, stopping waits for them, unless
 * a second SIGTERM or SIGINT says not to.
 */
static void outlive_leases(struct supervisor *sv)
{
	int64_t now = lm_now_ns();
	int64_t end = now;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		int64_t e = lm_leases_end_ns(&sv->region, i, UINT64_MAX, now);
		end = e > end ? e : end;
	}
	/* The leases of the services before this one, if some may still
	 * run: the next service must wait for them too. */
	int64_t floor_ns = region_floor(&sv->region) * 1000000;
	if (sv->prev_leases_until_ms * 1000000 > floor_ns)
		floor_ns = sv->prev_leases_until_ms * 1000000;
	end = floor_ns > end ? floor_ns : end;
	int64_t left_ms = (end - now + 999999) / 1000000;
	if (sv->opt.state_dir != NULL) {
		record_held_locks(sv, now);
		/* CLOCK_MONOTONIC, as the leases: it stops during a suspend,
		 * as their holders' clocks do. Valid within this boot. */
		struct lm_service_record rec = {
			.state = LM_SERVICE_STOPPED,
			.leases_until_ms = now / 1000000 + left_ms,
			.max_ttl_ms = sv->region.max_ttl_ms,
		};
		lm_boot_id(rec.boot_id);
		char err[512];
		if (lm_service_store(sv->opt.state_dir, &rec, err,
				     sizeof(err)) != 0)
			lm_log_error("supervisor", "%s: the next service "
				     "will wait one max TTL", err);
		return;
	}
	if (left_ms <= 0)
		return;
	lm_log("supervisor", "waiting %lld ms for the leases still held to "
	       "end, so that no new service can grant them twice (SIGTERM "
	       "again to stop at once)", (long long)left_ms);
	struct pollfd p = {.fd = sv->sigfd, .events = POLLIN};
	while (lm_now_ns() < end) {
		int ms = (int)((end - lm_now_ns()) / 1000000) + 1;
		if (poll(&p, 1, ms) == 1) {
			struct signalfd_siginfo si;
			if (read(sv->sigfd, &si, sizeof(si)) == sizeof(si) &&
			    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)) {
				lm_log("supervisor", "stopping at once: leases "
				       "may still be held");
				return;
			}
		}
	}
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
		lm_log_error("supervisor", "warning: the open-file limit "
			     "(%llu) is below --max-sessions + 64; raise it "
			     "(ulimit -n, or LimitNOFILE= in systemd) so every "
			     "client can be watched",
			     (unsigned long long)rl.rlim_cur);
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

/* Why a recovering server does not count yet, for a sentence. */
static const char *recovery_why(uint32_t why)
{
	switch (why) {
	case LM_RECOV_OWN_LEASES:
		return "leases granted before the servers' restart may still "
		       "be held";
	case LM_RECOV_PEER_LEASES:
	case LM_RECOV_PEERS:
		return "a server lost its table, and leases that could "
		       "include it may still be held";
	case LM_RECOV_MAX_TTL:
		return "a server lost its table and a peer could not be read: "
		       "one max TTL must pass";
	case LM_RECOV_PREV_LIFE:
		return "the leases of the service that ran before may still "
		       "be held";
	default:
		return "the servers are recovering";
	}
}

/*
 * --daemon, in the foreground process, once the background one has
 * started the servers: return (as the exit status) once clients can take
 * locks, so that `lockmgrd --daemon && lockctl run --wait 0 ...` works.
 * Usable is what a client judges (lm_server_usable): a quorum of servers
 * UP with fresh heartbeats; they count a few milliseconds after they
 * start. All three are waited for, briefly, unless one has settled into
 * a recovery (or is down): the quorum is what clients need.
 *
 * After a crash the servers may stay recovering for up to a max TTL (a
 * new region while the last service's leases may run). That is waited
 * for if it ends within READY_TIMEOUT_MS; if it cannot, or the timeout
 * passes, the service keeps running and this says why, with
 * EX_TEMPFAIL, rather than hold a boot up for minutes or pretend it is
 * usable.
 *
 * The servers bump servers_seq when they come UP; the other changes
 * (a plan made, the child's death) have no wake, so the futex wait is
 * short and everything is re-checked after it.
 */
static int wait_usable(const struct supervisor *sv, pid_t child)
{
	const struct lm_region *r = &sv->region;
	int64_t start = lm_now_ms();
	int64_t deadline = start + READY_TIMEOUT_MS, quorum_since = 0;
	for (;;) {
		uint32_t seq = atomic_load(&r->hdr->servers_seq);
		int64_t now = lm_now_ms();
		int status;
		if (waitpid(child, &status, WNOHANG) == child) {
			fprintf(stderr, "lockmgrd: the background lockmgrd "
				"(pid %d) %s %d before the service was usable "
				"(see its messages above)\n", (int)child,
				WIFEXITED(status) ? "exited with status"
						  : "was killed by signal",
				WIFEXITED(status) ? WEXITSTATUS(status)
						  : WTERMSIG(status));
			return 1;
		}
		unsigned usable = 0, settled = 0;
		/* The earliest each server may count: now if it might any
		 * moment, else the end of its quarantine (or of its floor,
		 * which a quarantine for its own leases never goes below). */
		int64_t earliest[LM_NSERVERS];
		uint32_t why[LM_NSERVERS];
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			const struct lm_server *s = r->servers[i];
			uint64_t st = atomic_load(&s->state);
			why[i] = atomic_load(&s->recovery);
			earliest[i] = now;
			if (LM_SRV_STATE(st) == LM_SRV_UP) {
				int64_t hb = atomic_load(&s->heartbeat_ms);
				if (lm_heartbeat_fresh(hb, now))
					usable++;
				else
					settled++; /* hung: not waited for */
				continue;
			}
			if (LM_SRV_STATE(st) == LM_SRV_DOWN) {
				settled++;
				continue;
			}
			if (why[i] == LM_RECOV_LOOKING ||
			    why[i] == LM_RECOV_PEERS)
				continue; /* no plan yet: may count soon */
			settled++;
			int64_t until = atomic_load(&s->quarantine_until_ms);
			if (why[i] == LM_RECOV_OWN_LEASES ||
			    why[i] == LM_RECOV_PREV_LIFE)
				until = atomic_load(&s->quarantine_floor_ms);
			earliest[i] = until > now ? until : now;
		}
		if (usable >= LM_QUORUM) {
			if (quorum_since == 0)
				quorum_since = now;
			if (usable + settled == LM_NSERVERS ||
			    now >= quorum_since + READY_ALL_GRACE_MS ||
			    now >= deadline) {
				lm_log("supervisor", "usable after %lld ms: %u "
				       "of %u servers count",
				       (long long)(now - start), usable,
				       LM_NSERVERS);
				return 0;
			}
		} else {
			quorum_since = 0;
			/* The quorum counts at the earliest when the
			 * second server to count does (k below). */
			unsigned first = 0, k = 1;
			for (unsigned i = 1; i < LM_NSERVERS; i++)
				if (earliest[i] < earliest[first])
					first = i;
			if (k == first)
				k = 0;
			for (unsigned i = 0; i < LM_NSERVERS; i++)
				if (i != first && earliest[i] < earliest[k])
					k = i;
			if (earliest[k] > deadline) {
				fprintf(stderr,
					"lockmgrd: serving %s (pid %d), but no "
					"quorum for %lld s more: %s. Clients "
					"that wait for a lock get it then; "
					"'lockctl status' shows the servers.\n",
					sv->name, (int)child,
					(long long)((earliest[k] - now + 999) /
						    1000),
					recovery_why(why[k]));
				return EX_TEMPFAIL;
			}
		}
		if (now >= deadline) {
			fprintf(stderr, "lockmgrd: serving %s (pid %d), but "
				"fewer than %u of its %u servers counted "
				"within %d s: see the errors above and "
				"'lockctl status'; it keeps trying (stop it "
				"with 'kill %d')\n", sv->name, (int)child,
				LM_QUORUM, LM_NSERVERS, READY_TIMEOUT_MS / 1000,
				(int)child);
			return EX_TEMPFAIL;
		}
		lm_futex_wait(&r->hdr->servers_seq, seq,
			      (now + LM_HEARTBEAT_MS) * 1000000);
	}
}

/*
 * Fork into the background. The foreground process exits once the
 * service is usable (wait_usable), or once the background one has
 * failed, which then said why on stderr.
 */
static int daemonize(const struct supervisor *sv, int *ready_fd,
		     const sigset_t *parent_mask)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		/* The parent only waits for the daemon: ^C ends it. */
		sigprocmask(SIG_SETMASK, parent_mask, NULL);
		close(p[1]);
		/* One byte once the servers are started; EOF if it died
		 * before that. */
		char b;
		ssize_t n;
		do
			n = read(p[0], &b, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? wait_usable(sv, pid) : 1);
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

/* The signals the supervisor reads from its signalfd. */
static sigset_t supervisor_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	return set;
}

static int setup_events(struct supervisor *sv)
{
	sigset_t set = supervisor_signals();
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
	char default_dir[4096];
	if (!sv.opt.ephemeral && sv.opt.state_dir == NULL) {
		char err[512];
		if (lm_state_default_dir(sv.name, default_dir,
					 sizeof(default_dir), err,
					 sizeof(err)) != 0) {
			fprintf(stderr, "lockmgrd: %s\n(name one with "
					"--state-dir DIR, or keep none with "
					"--ephemeral)\n", err);
			return EX_CONFIG;
		}
		sv.opt.state_dir = default_dir;
	}
	if (sv.opt.state_dir != NULL && check_state_dir(sv.opt.state_dir) != 0)
		return EX_CONFIG;

	/* Blocked before the region and its record exist, not only once
	 * the event loop is set up: a SIGTERM or ^C while it starts is then
	 * read by the loop (a clean stop), instead of killing lockmgrd
	 * with a region created and a record saying it runs (which the
	 * next start would take for a crash). SIGHUP is ignored as
	 * documented, from the start too. */
	sigset_t ends = supervisor_signals(), before;
	if (sigprocmask(SIG_BLOCK, &ends, &before) != 0)
		lm_die("sigprocmask");
	rc = open_region(&sv);
	if (rc != 0)
		return rc;
	if (sv.opt.state_dir != NULL && take_over_record(&sv) != 0)
		return EX_CONFIG;
	LM_HOOK("supervisor.region_open");
	int ready_fd = -1;
	if (sv.opt.daemonize && daemonize(&sv, &ready_fd, &before) != 0)
		lm_die("fork for --daemon");
	if (sv.opt.pidfile != NULL && write_pidfile(sv.opt.pidfile) != 0)
		return EX_OSERR;
	if (setup_events(&sv) != 0)
		lm_die("signalfd/epoll");

	struct lm_region_header *h = sv.region.hdr;
	pid_t me = getpid();
	atomic_store(&h->supervisor_pid, me);
	atomic_store(&h->supervisor_start, lm_proc_start_time(me));
	atomic_store(&h->supervisor_pid_ns, lm_pid_namespace());
	atomic_store(&h->supervisor_time_ns, lm_time_namespace());
	atomic_store(&h->restart_delay_ms, sv.opt.restart_delay_ms);
	atomic_store(&h->deadlock_timeout_ms, sv.opt.deadlock_timeout_ms);
	uint32_t flags = atomic_load(&h->flags);
	flags = sv.opt.release_on_exit ? flags | LM_REGION_RELEASE_ON_EXIT
				       : flags & ~LM_REGION_RELEASE_ON_EXIT;
	atomic_store(&h->flags, flags);
	atomic_store(&h->supervisor_state, LM_SUP_RUNNING);
	LM_HOOK("supervisor.running");

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

	LM_HOOK("supervisor.stopping");
	atomic_store(&sv.stopping, true);
	atomic_store(&h->supervisor_state, LM_SUP_STOPPED);
	sup_stop_registrar(&sv);
	sup_stop_servers(&sv);
	outlive_leases(&sv);
	shm_unlink(sv.name);
	if (sv.opt.pidfile != NULL)
		unlink(sv.opt.pidfile);
	lm_log("supervisor", "stopped; region %s removed", sv.name);
	lm_region_detach(&sv.region);
	close(sv.epfd);
	close(sv.sigfd);
	return 0;
}
