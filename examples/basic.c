/*
 * basic.c - the basic competition: several client processes compete for
 * one lock through the three-server quorum, and the timeline shows that
 * only one holds it at a time and that fencing tokens only go up.
 *
 *   basic [--clients N] [--rounds R] [--lockmgrd PATH]
 *
 * With $LOCKMGR_REGION naming a running service it uses that one;
 * otherwise it starts a private lockmgrd and stops it at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "demo_util.h"

#define LOCK_NAME "demo/basic"
#define MAX_GRANTS 4096

/* What the clients record, in memory shared with the parent. */
struct shared {
	_Atomic int inside;        /* holders inside the critical section */
	_Atomic int max_inside;    /* most ever seen at once (must be 1) */
	_Atomic uint32_t grants;
	uint64_t tokens[MAX_GRANTS]; /* in grant order, written by holder */
};

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int client(const struct demo *d, struct shared *sh, int id,
		  int rounds)
{
	char who[32];
	snprintf(who, sizeof(who), "client %d", id);
	lm_client *c;
	int rc = lm_connect(d->region, &c);
	if (rc != 0) {
		fprintf(stderr, "%s: connect: %s\n", who, lm_strerror(rc));
		return 1;
	}
	srand((unsigned)getpid());
	for (int r = 0; r < rounds; r++) {
		demo_event(d, who, "wants", 0, "the lock");
		lm_grant g;
		rc = lm_acquire(c, LOCK_NAME, 2000, 10000, &g);
		if (rc != 0) {
			demo_event(d, who, "FAILED", 0, "%s", lm_strerror(rc));
			lm_disconnect(c);
			return 1;
		}
		int now_inside = atomic_fetch_add(&sh->inside, 1) + 1;
		int m = atomic_load(&sh->max_inside);
		while (now_inside > m &&
		       !atomic_compare_exchange_weak(&sh->max_inside, &m,
						     now_inside))
			;
		uint32_t n = atomic_fetch_add(&sh->grants, 1);
		if (n < MAX_GRANTS)
			sh->tokens[n] = g.token;
		demo_event(d, who, "acquired", g.token, "holding it");
		pause_ms(20 + rand() % 40); /* the critical section's work */
		atomic_fetch_sub(&sh->inside, 1);
		demo_event(d, who, "released", g.token, NULL);
		rc = lm_release(c, &g);
		if (rc != 0)
			demo_release_failed(d, who, g.token, rc);
		pause_ms(rand() % 20);
	}
	lm_disconnect(c);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: basic [--clients N] [--rounds R] "
		   "[--lockmgrd PATH]\n"
		   "N client processes (default 4) each take the lock R "
		   "times (default 3).\n");
}

int main(int argc, char **argv)
{
	int clients = 4, rounds = 3;
	const char *lockmgrd = NULL;
	static const struct option opts[] = {
		{"clients", required_argument, NULL, 'c'},
		{"rounds", required_argument, NULL, 'n'},
		{"lockmgrd", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:n:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			clients = atoi(optarg);
			break;
		case 'n':
			rounds = atoi(optarg);
			break;
		case 'l':
			lockmgrd = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (clients < 1 || clients > 64 || rounds < 1 ||
	    clients * rounds > MAX_GRANTS) {
		fprintf(stderr, "basic: --clients must be 1..64 and --rounds "
				"at least 1 (at most %d grants in all)\n",
			MAX_GRANTS);
		return 64;
	}
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct demo d;
	demo_setup(&d, argv[0], lockmgrd, NULL);
	printf("%d clients compete for lock \"%s\", %d rounds each "
	       "(lease 2 s)\n\n", clients, LOCK_NAME, rounds);
	demo_header();

	pid_t pids[64];
	int started = 0, failed = 0, status;
	for (int i = 1; i <= clients; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(client(&d, sh, i, rounds));
		if (pid < 0) {
			perror("fork");
			failed++;
			break;
		}
		pids[started++] = pid;
	}
	/* Clients bound their own waits (10 s each), so this ends. */
	for (int i = 0; i < started; i++)
		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;

	uint32_t n = atomic_load(&sh->grants);
	int increasing = 1;
	for (uint32_t i = 1; i < n && i < MAX_GRANTS; i++)
		if (sh->tokens[i] <= sh->tokens[i - 1])
			increasing = 0;
	printf("\n%u grants; tokens %llu..%llu %s; at most %d holder%s at "
	       "once\n", n, n ? (unsigned long long)sh->tokens[0] : 0ULL,
	       n ? (unsigned long long)sh->tokens[n - 1] : 0ULL,
	       increasing ? "strictly increasing" : "NOT INCREASING",
	       atomic_load(&sh->max_inside),
	       atomic_load(&sh->max_inside) == 1 ? "" : "s");
	int ok = failed == 0 && increasing && atomic_load(&sh->max_inside) == 1 &&
		 n == (uint32_t)(clients * rounds);
	printf("%s\n", ok ? "OK: mutual exclusion held and fencing tokens "
			    "only went up."
			  : "FAILED: see above.");
	demo_teardown(&d);
	return ok ? 0 : 1;
}
