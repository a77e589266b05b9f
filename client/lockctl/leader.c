/*
 * leader.c - `lockctl leader NAME`: who leads an election now (its pid,
 * token and proclaimed value); with --watch, a line each time that
 * changes, from a watch on the election's lock.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../../shm/test_hook.h"
#include "../lockmgr.h"
#include "lockctl.h"

#define EX_NO_LEADER 1 /* like grep: asked, and nobody was there */

static void leader_usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl leader [--watch] [--json] [-r NAME] ELECTION\n"
"Print who leads ELECTION now: its pid, its fencing token and the value\n"
"it proclaims (lockctl elect --value, lm_campaign).\n"
"\n"
"  -w, --watch        keep going: print a line each time the leader or\n"
"                     its value changes (\"none\" while nobody leads)\n"
"  -j, --json         one JSON object per line\n"
CTL_REGION_HELP
"  -h, --help         show this help\n"
"\n"
"Exit status: 0 a leader was printed (or --watch ended by a signal);\n"
"1 nobody leads; 64 usage error; 69 service unavailable.\n");
}

static void print_leader(const char *name, int rc, const lm_leader *l,
			 bool json)
{
	if (json) {
		printf("{\"election\":");
		ctl_json_str(stdout, name, strlen(name));
		if (rc == 0) {
			printf(",\"leader\":true,\"pid\":%" PRId32
			       ",\"token\":%" PRIu64 ",\"value\":",
			       l->pid, l->token);
			ctl_json_str(stdout, l->value, strlen(l->value));
		} else {
			printf(",\"leader\":false");
		}
		printf("}\n");
	} else if (rc == 0) {
		printf("pid=%" PRId32 " token=%" PRIu64 " value=", l->pid,
		       l->token);
		ctl_print_escaped(stdout, l->value, strlen(l->value));
		printf("\n");
	} else {
		printf("none\n");
	}
	fflush(stdout);
}

int ctl_leader(struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"watch", no_argument, NULL, 'w'},
		{"json", no_argument, NULL, 'j'},
		{"region", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool watch = false, json = false;
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+wjr:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			watch = true;
			break;
		case 'j':
			json = true;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'h':
			leader_usage(stdout);
			return EX_CTL_OK;
		default:
			fprintf(stderr, "lockctl leader: bad option '%s'\n"
					"Try 'lockctl leader --help'.\n",
				argv[optind - 1]);
			return EX_CTL_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "lockctl leader: give one ELECTION\n"
				"Try 'lockctl leader --help'.\n");
		return EX_CTL_USAGE;
	}
	const char *name = argv[optind];
	if (name[0] == '\0' || strlen(name) > 255) {
		ctl_bad_lock_name(name);
		return EX_CTL_USAGE;
	}
	if (ctl_resolve_region(g) != 0)
		return EX_CTL_USAGE;
	/* Blocked before anything is printed, and before the library
	 * starts a thread (which would inherit the mask): a SIGTERM sent
	 * once the first line is out must reach the signalfd, not end the
	 * process. */
	int sig_fd = -1;
	if (watch && (sig_fd = ctl_end_signals()) < 0) {
		fprintf(stderr, "lockctl leader: signalfd: %s\n",
			strerror(errno));
		return EX_CTL_OSERR;
	}
	lm_client *c;
	int rc = lm_connect(g->region, &c);
	if (rc != 0)
		return ctl_service_error(rc, g->region, NULL);
	lm_leader l;
	lm_watch *w = NULL;
	int status = EX_CTL_OK;
	if (watch) {
		/* The watch first: a change after our read is then seen. */
		rc = lm_watch_open(c, name, &w, NULL);
		if (rc != 0) {
			fprintf(stderr, "lockctl leader: %s\n",
				lm_strerror(rc));
			lm_disconnect(c);
			return EX_CTL_UNAVAILABLE;
		}
	}
	rc = lm_leader_get(c, name, &l);
	if (rc != 0 && rc != LM_ENOLEADER) {
		fprintf(stderr, "lockctl leader: %s\n", lm_strerror(rc));
		status = EX_CTL_UNAVAILABLE;
		goto out;
	}
	print_leader(name, rc, &l, json);
	LM_HOOK("lockctl.leader_printed");
	if (!watch) {
		status = rc == 0 ? EX_CTL_OK : EX_NO_LEADER;
		goto out;
	}
	struct pollfd pfd[2] = {
		{ .fd = lm_watch_fd(w), .events = POLLIN },
		{ .fd = sig_fd, .events = POLLIN },
	};
	/* Print only what changes what an observer sees. */
	int last_rc = rc;
	lm_leader last = l;
	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents & POLLIN)
			break;
		lm_watch_event ev;
		if (lm_watch_next(w, 0, &ev) != 0)
			continue;
		rc = lm_leader_get(c, name, &l);
		if (rc == last_rc &&
		    (rc != 0 || (l.pid == last.pid && l.token == last.token &&
				 strcmp(l.value, last.value) == 0)))
			continue;
		print_leader(name, rc, &l, json);
		last_rc = rc;
		last = l;
	}
out:
	lm_watch_close(w);
	lm_disconnect(c);
	return status;
}
