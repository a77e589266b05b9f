/*
 * elect.c - `lockctl elect ELECTION --value V -- CMD`: campaign, run CMD
 * only while this process leads, and stop it when the lead is lost.
 *
 * Leading is holding the election's lock (client/election.c), so this is
 * `lockctl run` with a campaign instead of an acquire: the same renewal
 * every TTL/3, the same SIGTERM-then-SIGKILL of CMD and what it started
 * (after --grace, cmd_tree.c) and exit 70 once the lease, and with it
 * the lead, is lost.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shm/test_hook.h"
#include "../lockmgr.h"
#include "lockctl.h"

static void elect_usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl elect [--value V] [--ttl MS] [--wait MS] [--grace MS]\n"
"                     [-r NAME] ELECTION -- CMD [ARG]...\n"
"Campaign to lead ELECTION; once leader, proclaim V (what 'lockctl\n"
"leader ELECTION' prints, for example host:port) and run CMD. The lead\n"
"is a lease, renewed every TTL/3 while CMD runs; if it is lost (this\n"
"process was stopped or starved past it, or the service lost quorum),\n"
"CMD and every process it started get SIGTERM, then SIGKILL after the\n"
"grace, and lockctl exits 70.\n"
"When CMD exits the lead is given up and the next campaigner leads.\n"
"\n"
"  -v, --value V      the value to proclaim (up to %d bytes; default \"\")\n"
"  -t, --ttl MS       lease of the lead in ms (as lockctl run's)\n"
"  -w, --wait MS      campaign at most MS; -1 (the default) until leader\n"
"  -g, --grace MS     from SIGTERM to SIGKILL when the lead is lost\n"
"                     (default %d)\n"
CTL_REGION_HELP
"  -h, --help         show this help\n"
"\n"
"CMD gets LOCKMGR_LOCK (ELECTION), LOCKMGR_TOKEN (the term's fencing\n"
"token: later terms have larger ones), LOCKMGR_MODE, LOCKMGR_REGION and\n"
"LOCKMGR_RECOVERED=1 when the last leader died or lost its lease.\n"
"\n"
"Exit status: CMD's (128+N if a signal N killed it); 64 usage error;\n"
"69 service unavailable; 70 the lead was lost while CMD ran (CMD was\n"
"stopped); 71 a system call failed; 75 not leader within --wait;\n"
"126 CMD not executable; 127 CMD not found.\n",
		LM_VALUE_MAX, CTL_KILL_GRACE_MS);
}

int ctl_elect(struct ctl_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"value", required_argument, NULL, 'v'},
		{"ttl", required_argument, NULL, 't'},
		{"wait", required_argument, NULL, 'w'},
		{"grace", required_argument, NULL, 'g'},
		{"region", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ctl_hold h = CTL_HOLD_INIT("lockctl elect");
	h.mode = LM_MODE_X;
	const char *value = "";
	int64_t wait_ms = -1;
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+v:t:w:g:r:h", opts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'v':
			value = optarg;
			if (strlen(value) > LM_VALUE_MAX) {
				fprintf(stderr, "lockctl elect: --value is "
						"%zu bytes; at most %d\n",
					strlen(value), LM_VALUE_MAX);
				return EX_CTL_USAGE;
			}
			break;
		case 't':
			if (ctl_parse_i64(optarg, "--ttl", "ms", 1,
					  INT64_C(86400000), &h.ttl_ms) != 0)
				return EX_CTL_USAGE;
			break;
		case 'w':
			if (ctl_parse_i64(optarg, "--wait", "ms", -1,
					  CTL_MAX_WAIT_MS, &wait_ms) != 0)
				return EX_CTL_USAGE;
			break;
		case 'g':
			if (ctl_parse_i64(optarg, "--grace", "ms", 1,
					  INT64_C(86400000), &h.grace_ms) != 0)
				return EX_CTL_USAGE;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'h':
			elect_usage(stdout);
			return EX_CTL_OK;
		default:
			fprintf(stderr, "lockctl elect: bad option '%s'\n"
					"Try 'lockctl elect --help'.\n",
				argv[optind - 1]);
			return EX_CTL_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "lockctl elect: no ELECTION given\n"
				"Try 'lockctl elect --help'.\n");
		return EX_CTL_USAGE;
	}
	h.name = argv[optind++];
	if (h.name[0] == '\0' || strlen(h.name) > 255) {
		ctl_bad_lock_name(h.name);
		return EX_CTL_USAGE;
	}
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc) {
		fprintf(stderr, "lockctl elect: no CMD given (lockctl elect "
				"ELECTION -- CMD)\n");
		return EX_CTL_USAGE;
	}
	int rc = ctl_hold_connect(g, &h);
	if (rc != 0)
		return rc;
	int err = lm_campaign(h.c, h.name, value, h.ttl_ms, wait_ms, &h.g);
	if (err != 0) {
		rc = ctl_hold_acquire_error(&h, err, wait_ms);
		ctl_hold_end(&h);
		return rc;
	}
	h.held = true;
	rc = ctl_hold_catch_signals(&h);
	if (rc != 0) {
		ctl_hold_end(&h);
		return rc;
	}
	LM_HOOK("lockctl.granted");
	return ctl_hold_run(g, &h, argv + optind);
}
