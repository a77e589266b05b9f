/*
 * watch.c - `lockctl watch NAME...`: one line per change of each lock
 * (granted, released, holder died, lease expired), as it happens.
 *
 * One lm_watch per name, each with its descriptor (lm_watch_fd) in one
 * poll beside a signalfd for SIGINT/SIGTERM/SIGHUP: nothing runs between
 * changes. Changes that come together are printed as one line that says
 * how many it covers; none is missed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "../../shm/test_hook.h"
#include "../lockmgr.h"
#include "lockctl.h"

#define MAX_WATCHED 16 /* one client's pins */

static void watch_usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl watch [--json] [--count N] [--timeout MS] [-r NAME]\n"
"                     LOCK...\n"
"Print a line for each change of each LOCK: granted, released, died\n"
"(its holder died), expired (its lease ended), proclaimed (an election's\n"
"leader set its value), with the time, the holder's pid and the token.\n"
"The first line of each LOCK says how it is now (event \"now\").\n"
"Changes that come close together may share one line, which then says\n"
"how many it covers; a change is never missed.\n"
"\n"
"  -j, --json         one JSON object per line\n"
"  -n, --count N      exit 0 after N changes (of all LOCKs together)\n"
"  -t, --timeout MS   exit 75 if fewer than N changes (or, without\n"
"                     --count, none) came within MS\n"
CTL_REGION_HELP
"  -h, --help         show this help\n"
"\n"
"Up to %d LOCKs. SIGINT, SIGTERM and SIGHUP end it (exit 0).\n"
"Exit status: 0; 64 usage error; 69 service unavailable; 71 a system\n"
"call failed; 75 --timeout passed first.\n",
		MAX_WATCHED);
}

static const char *event_name(uint32_t what)
{
	switch (what) {
	case LM_WATCH_NONE:
		return "now";
	case LM_WATCH_GRANTED:
		return "granted";
	case LM_WATCH_RELEASED:
		return "released";
	case LM_WATCH_DIED:
		return "died";
	case LM_WATCH_EXPIRED:
		return "expired";
	case LM_WATCH_PROCLAIMED:
		return "proclaimed";
	default:
		return "changed";
	}
}

/* Wall-clock time, UTC, with milliseconds. */
static void stamp(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void print_event(const char *name, const lm_watch_event *ev,
			bool json)
{
	char when[40];
	stamp(when, sizeof(when));
	/* The "now" line describes the holder; an event, its grant. */
	bool now = ev->what == LM_WATCH_NONE;
	const char *what = now && ev->holders == 0 ? "now free"
			   : now                   ? "now held"
						   : event_name(ev->what);
	int32_t pid = now ? ev->holder_pid : ev->pid;
	uint64_t token = now ? ev->holder_token : ev->token;
	uint32_t mode = now ? ev->held_mode : ev->mode;
	if (json) {
		printf("{\"time\":\"%s\",\"lock\":", when);
		ctl_json_str(stdout, name, strlen(name));
		printf(",\"event\":\"%s\",\"version\":%" PRIu64
		       ",\"changes\":%" PRIu32,
		       now ? "now" : event_name(ev->what), ev->version,
		       ev->changes);
		if (pid != 0)
			printf(",\"pid\":%" PRId32 ",\"mode\":\"%s\"", pid,
			       ctl_mode_name(mode));
		if (token != 0)
			printf(",\"token\":%" PRIu64, token);
		printf(",\"holders\":%" PRIu32, ev->holders);
		if (ev->holders != 0)
			printf(",\"holder_pid\":%" PRId32
			       ",\"held_mode\":\"%s\"",
			       ev->holder_pid, ctl_mode_name(ev->held_mode));
		printf("}\n");
	} else {
		printf("%s ", when);
		ctl_print_escaped(stdout, name, strlen(name));
		printf(" %s", what);
		if (pid != 0)
			printf(" pid=%" PRId32 " mode=%s", pid,
			       ctl_mode_name(mode));
		if (token != 0)
			printf(" token=%" PRIu64, token);
		if (now && ev->holders > 1)
			printf(" holders=%" PRIu32, ev->holders);
		if (ev->changes > 1)
			printf(" (%" PRIu32 " changes)", ev->changes);
		printf("\n");
	}
	fflush(stdout);
}

struct watch_args {
	bool json;
	int64_t count;    /* 0: no limit */
	int64_t timeout;  /* ms, < 0: none */
	int first;        /* argv index of the first LOCK */
};

static int parse(int argc, char **argv, struct ctl_global *g,
		 struct watch_args *a)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"count", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 't'},
		{"region", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*a = (struct watch_args){ .timeout = -1 };
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+jn:t:r:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			a->json = true;
			break;
		case 'n':
			if (ctl_parse_i64(optarg, "--count", NULL, 1,
					  INT64_MAX, &a->count) != 0)
				return EX_CTL_USAGE;
			break;
		case 't':
			if (ctl_parse_i64(optarg, "--timeout", "ms", 0,
					  INT64_C(1000000000000),
					  &a->timeout) != 0)
				return EX_CTL_USAGE;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'h':
			watch_usage(stdout);
			return -1;
		default:
			fprintf(stderr, "lockctl watch: %s '%s'\n"
					"Try 'lockctl watch --help'.\n",
				optopt != 0 ? "option needs a value or is "
					      "unknown:"
					    : "unknown option",
				argv[optind - 1]);
			return EX_CTL_USAGE;
		}
	}
	a->first = optind;
	int n = argc - optind;
	if (n == 0) {
		fprintf(stderr, "lockctl watch: no LOCK given\n"
				"Try 'lockctl watch --help'.\n");
		return EX_CTL_USAGE;
	}
	if (n > MAX_WATCHED) {
		fprintf(stderr, "lockctl watch: %d LOCKs: at most %d at once "
				"(run another lockctl watch for the rest)\n",
			n, MAX_WATCHED);
		return EX_CTL_USAGE;
	}
	return 0;
}

int ctl_watch(struct ctl_global *g, int argc, char **argv)
{
	struct watch_args a;
	int rc = parse(argc, argv, g, &a);
	if (rc != 0)
		return rc < 0 ? EX_CTL_OK : rc;
	int n = argc - a.first;
	for (int k = 0; k < n; k++) {
		const char *name = argv[a.first + k];
		if (name[0] == '\0' || strlen(name) > 255) {
			ctl_bad_lock_name(name);
			return EX_CTL_USAGE;
		}
	}
	if (ctl_resolve_region(g) != 0)
		return EX_CTL_USAGE;
	/* Blocked before anything is printed, and before the library
	 * starts a thread (which would inherit the mask): a SIGTERM sent
	 * once the first line is out must reach the signalfd, not end the
	 * process. */
	int sig_fd = ctl_end_signals();
	if (sig_fd < 0) {
		fprintf(stderr, "lockctl watch: signalfd: %s\n",
			strerror(errno));
		return EX_CTL_OSERR;
	}
	lm_client *c;
	rc = lm_connect(g->region, &c);
	if (rc != 0)
		return ctl_service_error(rc, g->region, NULL);
	lm_watch *w[MAX_WATCHED];
	struct pollfd pfd[MAX_WATCHED + 1];
	int opened = 0, status = EX_CTL_OK;
	for (; opened < n; opened++) {
		const char *name = argv[a.first + opened];
		lm_watch_event now;
		rc = lm_watch_open(c, name, &w[opened], &now);
		if (rc == 0) {
			pfd[opened].fd = lm_watch_fd(w[opened]);
			pfd[opened].events = POLLIN;
			if (pfd[opened].fd < 0) {
				lm_watch_close(w[opened]);
				rc = pfd[opened].fd;
			}
		}
		if (rc != 0) {
			fprintf(stderr, "lockctl watch: ");
			ctl_print_escaped(stderr, name, strlen(name));
			fprintf(stderr, ": %s\n", lm_strerror(rc));
			status = rc == LM_ESYS ? EX_CTL_OSERR
						: EX_CTL_UNAVAILABLE;
			goto out;
		}
		print_event(name, &now, a.json);
	}
	LM_HOOK("lockctl.watch_printed");
	pfd[n].fd = sig_fd;
	pfd[n].events = POLLIN;
	int64_t deadline = a.timeout < 0 ? INT64_MAX
					 : lm_now_ns() + a.timeout * 1000000;
	int64_t seen = 0;
	for (;;) {
		int64_t left = deadline == INT64_MAX
				       ? -1
				       : (deadline - lm_now_ns()) / 1000000;
		if (deadline != INT64_MAX && left <= 0) {
			if (a.count != 0 ? seen < a.count : seen == 0)
				status = EX_CTL_TEMPFAIL;
			break;
		}
		int p = poll(pfd, (nfds_t)n + 1,
			     left < 0 || left > 1000000000 ? -1 : (int)left);
		if (p < 0)
			continue; /* EINTR */
		if (pfd[n].revents & POLLIN)
			break;
		for (int k = 0; k < n; k++) {
			lm_watch_event ev;
			if (!(pfd[k].revents & POLLIN) ||
			    lm_watch_next(w[k], 0, &ev) != 0)
				continue;
			print_event(argv[a.first + k], &ev, a.json);
			seen++;
		}
		if (a.count != 0 && seen >= a.count)
			break;
	}
out:
	for (int k = 0; k < opened; k++)
		lm_watch_close(w[k]);
	lm_disconnect(c);
	return status;
}
