/*
 * lockctl.c - the lockctl command: global options, help, dispatch, and
 * the helpers its commands share (number parsing, escaping, messages
 * for an unavailable service).
 *
 * Global options may come before the command (`lockctl -r /x status`);
 * each command also accepts -r after its name (`lockctl status -r /x`),
 * so the global ones are parsed by hand here, up to the command name,
 * and each command runs its own getopt over the rest.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <strings.h>

#include "../../shm/test_hook.h"
#include "lockctl.h"
#include "../lockmgr.h"

const char *ctl_prog = "lockctl";
const char *ctl_cmd;

static void usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl [-r NAME] COMMAND [OPTION]... [ARG]...\n"
"Inspect and use the lockmgr lock service.\n"
"\n"
"Commands:\n"
"  status [--json]                 show the region, its servers, sessions\n"
"                                  and the locks held or waited for\n"
"  run [--ttl MS] [--wait MS] NAME -- CMD [ARG]...\n"
"                                  run CMD while holding lock NAME, like\n"
"                                  flock(1); the lease is renewed while\n"
"                                  CMD runs\n"
"  flock [OPTION]... LOCK CMD [ARG]... | LOCK -c CMDSTRING\n"
"                                  run CMD under LOCK with flock(1)'s options\n"
"                                  and exit codes (also as 'lmflock')\n"
"  watch [--json] NAME...          print each change of each lock as it\n"
"                                  happens (granted, released, died, ...)\n"
"  elect [--value V] NAME -- CMD [ARG]...\n"
"                                  campaign to lead election NAME; run CMD\n"
"                                  while leader, stop it if the lead is lost\n"
"  leader [--watch] NAME           who leads election NAME (pid, token,\n"
"                                  value)\n"
"  top [--once | -b [-n N]] [-d MS]\n"
"                                  a live view of the servers, sessions and\n"
"                                  locks, with the events between refreshes\n"
"  server list|kill|start|pause|resume|skew|isolate|heal N ...\n"
"                                  list the lock servers, or inject a fault\n"
"                                  into one ('lockctl server --help')\n"
"  help [COMMAND]                  show this help, or a command's\n"
"\n"
"Options:\n"
CTL_REGION_HELP
"  -h, --help         show this help\n"
"  -V, --version      show the version\n"
"\n"
"Exit status:\n"
"  0    success (for run and flock: CMD's own exit status is passed on;\n"
"       128+N if CMD was killed by signal N)\n"
"  1    flock: LOCK was busy (-n) or -w ran out (or the -E code);\n"
"       leader: nobody leads\n"
"  64   usage error: unknown option, bad lock name, bad number\n"
"  69   service unavailable: no region (lockmgrd not running), no\n"
"       quorum, or an incompatible region\n"
"  70   run, flock, elect: the lease (the lead) was lost while CMD was\n"
"       running (CMD was stopped)\n"
"  71   run, flock: a system call failed (fork, pidfd, signalfd)\n"
"  75   run, elect: the lock (the lead) could not be had within --wait;\n"
"       watch: --timeout passed first\n"
"  126  run, flock: CMD is not executable;  127  CMD was not found\n"
"\n"
"See lockctl(1) and lockmgrd(8).\n");
}

int ctl_resolve_region(struct ctl_global *g)
{
	const char *a = g->region_arg ? g->region_arg : getenv("LOCKMGR_REGION");
	if (a != NULL && strncmp(a, "etcd://", 7) == 0)
		return ctl_resolve_etcd(g, a); /* status_etcd.c */
	if (lm_region_resolve_name(g->region_arg, g->region) == 0)
		return 0;
	fprintf(stderr, "%s: bad region name '", ctl_prog);
	ctl_print_escaped(stderr, g->region_arg ? g->region_arg
						: getenv("LOCKMGR_REGION"),
			  SIZE_MAX);
	fprintf(stderr, "'%s: %s\n",
		g->region_arg ? "" : " (from $LOCKMGR_REGION)",
		lm_strerror(LM_EBADREGION));
	return EX_CTL_USAGE;
}

static const char *const mode_names[LM_MODE_COUNT] = {
	[LM_MODE_X] = "X", [LM_MODE_S] = "S", [LM_MODE_IS] = "IS",
	[LM_MODE_IX] = "IX", [LM_MODE_SIX] = "SIX",
};

const char *ctl_mode_name(uint32_t mode)
{
	return mode < LM_MODE_COUNT ? mode_names[mode] : "?";
}

int ctl_parse_mode(const char *s, uint32_t *mode)
{
	for (uint32_t m = 0; m < LM_MODE_COUNT; m++)
		if (strcasecmp(s, mode_names[m]) == 0) {
			*mode = m;
			return 0;
		}
	return -1;
}

int ctl_parse_i64(const char *s, const char *flag, const char *unit,
		  int64_t min, int64_t max, int64_t *out)
{
	const char *p = s;
	if (*p == '-')
		p++;
	/* strtoll alone would accept "  12", "+12" and "12abc". */
	if (*p < '0' || *p > '9')
		goto bad;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*end != '\0')
		goto bad;
	if (errno == ERANGE || v < min || v > max) {
		fprintf(stderr, "%s%s%s: %s: '", ctl_prog, ctl_cmd ? " " : "",
			ctl_cmd ? ctl_cmd : "", flag);
		ctl_print_escaped(stderr, s, 24);
		fprintf(stderr, "%s' is out of range (%lld to %lld%s%s)\n",
			strlen(s) > 24 ? "..." : "", (long long)min,
			(long long)max, unit ? " " : "", unit ? unit : "");
		return -1;
	}
	*out = v;
	return 0;
bad:
	fprintf(stderr, "%s%s%s: %s: '", ctl_prog, ctl_cmd ? " " : "",
		ctl_cmd ? ctl_cmd : "", flag);
	ctl_print_escaped(stderr, s, 24);
	fprintf(stderr, "%s' is not a whole number%s%s%s\n",
		strlen(s) > 24 ? "..." : "", unit ? " of " : "",
		unit ? unit : "", unit && min >= 0 ? ", like 5000" : "");
	return -1;
}

int ctl_print_escaped(FILE *f, const char *s, size_t len)
{
	int cols = 0;
	if (s == NULL)
		return 0;
	for (size_t i = 0; i < len && s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			fputc(ch, f);
			cols++;
		} else {
			fprintf(f, "\\x%02x", ch);
			cols += 4;
		}
	}
	return cols;
}

void ctl_bad_lock_name(const char *name)
{
	/* Echo enough of a long name to recognise it, not all of it. */
	size_t len = strlen(name);
	fprintf(stderr, "%s: bad lock name '", ctl_prog);
	ctl_print_escaped(stderr, name, 40);
	if (len > 40)
		fprintf(stderr, "...' (%zu bytes)", len);
	else
		fputc('\'', stderr);
	fprintf(stderr, ": a name is 1 to %u bytes with no NUL byte\n",
		LM_NAME_MAX);
}

int ctl_service_error(int err, const char *region, const char *why)
{
	if (strncmp(region, "etcd://", 7) == 0)
		return ctl_etcd_error(err, region); /* status_etcd.c */
	switch (err) {
	case LM_ENOSUPERVISOR:
		fprintf(stderr, "%s: region %s: %s\n", ctl_prog, region,
			lm_strerror(err));
		return EX_CTL_UNAVAILABLE;
	case LM_EINCOMPAT:
		fprintf(stderr, "%s: region %s: %s%s%s\n", ctl_prog, region,
			why != NULL && *why != '\0' ? why : "",
			why != NULL && *why != '\0' ? ".\n  " : "",
			lm_strerror(err));
		return EX_CTL_UNAVAILABLE;
	case LM_ESYS:
		/* Most often EACCES: the region is 0600 and owned by the
		 * user who started lockmgrd. */
		fprintf(stderr, "%s: cannot open region %s: %s%s\n", ctl_prog,
			region, strerror(errno),
			errno == EACCES ? " (run as the user of lockmgrd, or "
					  "start it with --mode 0660 or 0666)"
					: "");
		return EX_CTL_UNAVAILABLE;
	default:
		fprintf(stderr, "%s: region %s: %s\n", ctl_prog, region,
			lm_strerror(err));
		return EX_CTL_UNAVAILABLE;
	}
}

const char *ctl_recovery_note(const struct lm_server *s, int64_t now_ms,
			      char *buf, size_t n)
{
	int64_t until = atomic_load(&s->quarantine_until_ms);
	int64_t left = until - now_ms;
	if (left < 0)
		left = 0;
	switch (atomic_load(&s->recovery)) {
	case LM_RECOV_LOOKING:
		snprintf(buf, n, "reading its table after a restart");
		break;
	case LM_RECOV_OWN_LEASES:
		if (left == 0)
			snprintf(buf, n, "counts again at once: no lease "
				 "granted before its restart is running");
		else
			snprintf(buf, n, "counts again in %lld ms, when the "
				 "leases granted before its restart end",
				 (long long)left);
		break;
	case LM_RECOV_PEERS:
		if (until == INT64_MAX)
			snprintf(buf, n, "lost its table: waits for both peers "
				 "to be up (their token marks and leases)");
		else
			snprintf(buf, n, "lost its table: waits for both peers "
				 "to be up, at most %lld ms more",
				 (long long)left);
		break;
	case LM_RECOV_PEER_LEASES:
		snprintf(buf, n, "lost its table: counts again in %lld ms, "
			 "when the leases on its peers that could include it "
			 "end", (long long)left);
		break;
	case LM_RECOV_MAX_TTL:
		snprintf(buf, n, "lost its table, a peer unreadable: counts "
			 "again in %lld ms (one max TTL)", (long long)left);
		break;
	case LM_RECOV_PREV_LIFE:
		snprintf(buf, n, "counts again in %lld ms, when the leases of "
			 "the service that ran before may have ended",
			 (long long)left);
		break;
	default:
		snprintf(buf, n, "recovering: %lld ms left", (long long)left);
		break;
	}
	return buf;
}

int ctl_end_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static int run_help(struct ctl_global *g, int argc, char **argv);

static const struct {
	const char *name;
	int (*fn)(struct ctl_global *g, int argc, char **argv);
} commands[] = {
	{"status", ctl_status},
	{"run", ctl_run},
	{"flock", ctl_flock},
	{"server", ctl_server},
	{"top", ctl_top},
	{"watch", ctl_watch},
	{"leader", ctl_leader},
	{"elect", ctl_elect},
	{"help", run_help},
};

static int run_help(struct ctl_global *g, int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return EX_CTL_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0 ||
		    commands[i].fn == run_help)
			continue;
		char *av[] = {argv[1], "--help", NULL};
		return commands[i].fn(g, 2, av);
	}
	fprintf(stderr, "lockctl: help: no command '%s' (commands: status, "
			"run, flock, watch, elect, leader, server, top)\n", argv[1]);
	return EX_CTL_USAGE;
}

int main(int argc, char **argv)
{
	lm_hook_init();
	struct ctl_global g;
	memset(&g, 0, sizeof(g));
	/* lmflock (a link to lockctl) is `lockctl flock`, so that a script
	 * moves from flock(1) to lockmgr by changing the command's name. */
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
	base = base != NULL ? base + 1 : argc > 0 ? argv[0] : "";
	if (strcmp(base, "lmflock") == 0) {
		ctl_prog = "lmflock";
		return ctl_flock(&g, argc, argv);
	}
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return EX_CTL_OK;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("lockctl %s\n", LOCKCTL_VERSION);
			return EX_CTL_OK;
		} else if (strcmp(a, "-r") == 0 || strcmp(a, "--region") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "lockctl: option '%s' needs a "
						"region name\n", a);
				return EX_CTL_USAGE;
			}
			g.region_arg = argv[++i];
		} else if (strncmp(a, "--region=", 9) == 0) {
			g.region_arg = a + 9;
		} else if (strncmp(a, "-r", 2) == 0) {
			g.region_arg = a + 2;
		} else {
			fprintf(stderr, "lockctl: unknown option '%s'\n"
					"Try 'lockctl --help'.\n", a);
			return EX_CTL_USAGE;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "lockctl: no command given (status, run, flock, "
				"watch, elect, leader, top, server, help)\nTry 'lockctl --help'.\n");
		return EX_CTL_USAGE;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0) {
			ctl_cmd = commands[k].name;
			return commands[k].fn(&g, argc - i, argv + i);
		}
	fprintf(stderr, "lockctl: unknown command '");
	ctl_print_escaped(stderr, argv[i], 40);
	fprintf(stderr, "' (status, run, flock, watch, elect, leader, server, "
			"top, help)\nTry "
			"'lockctl --help'.\n");
	return EX_CTL_USAGE;
}
