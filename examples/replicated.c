/*
 * replicated.c - the replicated scenario with real processes.
 *
 * Act 1: three clients compete for one lock under three servers. Server
 * 2 is killed mid-run and the clients keep going on two; server 1 is
 * killed too and acquires fail at once with "no quorum", granting
 * nothing; both come back through quarantine and service resumes.
 * Fencing tokens increase throughout.
 *
 *   replicated [--lockmgrd PATH]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "demo_util.h"
#include "shm/clock.h"

#define LOCK_NAME "demo/replicated"
#define NCLIENTS 3
#define MAX_GRANTS 100000

struct shared {
	_Atomic int stop;
	_Atomic uint32_t grants;
	_Atomic uint32_t noquorum;
	_Atomic uint64_t last_grant_ns;
	_Atomic int violations;     /* a token not above the previous one */
	uint64_t last_token;        /* written by the holder only */
};

static int client(const struct demo *d, struct shared *sh, int id)
{
	char who[32];
	snprintf(who, sizeof(who), "client %d", id);
	lm_client *c;
	int rc = lm_connect(d->region, &c);
	if (rc != 0) {
		demo_event(d, who, "FAILED", 0, "%s", lm_strerror(rc));
		return 1;
	}
	int last_rc = 0;
	while (!atomic_load(&sh->stop)) {
		lm_grant g;
		rc = lm_acquire(c, LOCK_NAME, 1000, 500, &g);
		if (rc == 0) {
			if (g.token <= sh->last_token)
				atomic_fetch_add(&sh->violations, 1);
			sh->last_token = g.token;
			atomic_fetch_add(&sh->grants, 1);
			atomic_store(&sh->last_grant_ns, (uint64_t)lm_now_ns());
			if (last_rc != 0)
				demo_event(d, who, "acquired", g.token,
					   "service is back");
			else
				demo_event(d, who, "acquired", g.token, NULL);
			demo_pause_ms(60);
			rc = lm_release(c, &g);
			if (rc != 0)
				demo_event(d, who, "release", g.token, "%s",
					   lm_strerror(rc));
			demo_pause_ms(30);
		} else if (rc == LM_ENOQUORUM) {
			atomic_fetch_add(&sh->noquorum, 1);
			if (last_rc != LM_ENOQUORUM)
				demo_event(d, who, "refused", 0,
					   "no quorum: nothing granted");
			demo_pause_ms(100);
		} else if (rc != LM_ETIMEDOUT) {
			demo_event(d, who, "FAILED", 0, "%s", lm_strerror(rc));
			demo_pause_ms(100);
		}
		last_rc = rc;
	}
	lm_disconnect(c);
	return 0;
}

/* Wait (bounded) until some client is granted the lock after `since`. */
static int wait_for_grant_after(struct shared *sh, int64_t since,
				int64_t timeout_ms)
{
	int64_t deadline = lm_now_ns() + timeout_ms * 1000000;
	while (lm_now_ns() < deadline) {
		if ((int64_t)atomic_load(&sh->last_grant_ns) > since)
			return 0;
		demo_pause_ms(10);
	}
	return -1;
}

int main(int argc, char **argv)
{
	const char *lockmgrd = NULL;
	static const struct option opts[] = {
		{"lockmgrd", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 'l') {
			lockmgrd = optarg;
		} else {
			fprintf(o == 'h' ? stdout : stderr,
				"Usage: replicated [--lockmgrd PATH]\n");
			return o == 'h' ? 0 : 64;
		}
	}
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Manual restarts, so that the operator decides when servers come
	 * back; a short max TTL keeps the quarantine short. */
	static const char *const extra[] = {"--restart-delay", "-1",
					    "--max-ttl", "1500", NULL};
	struct demo d;
	demo_setup(&d, argv[0], lockmgrd, extra);
	if (d.supervisor == 0) {
		fprintf(stderr, "replicated: needs its own lockmgrd (unset "
				"LOCKMGR_REGION)\n");
		return 64;
	}
	printf("Act 1: %d clients, lock \"%s\", lease 1 s; servers fail and "
	       "come back\n\n", NCLIENTS, LOCK_NAME);
	fflush(stdout);

	pid_t pids[NCLIENTS];
	for (int i = 0; i < NCLIENTS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(client(&d, sh, i + 1));
	}
	demo_pause_ms(700);
	demo_lockctl(&d, (const char *const[]){"server", "kill", "2", NULL});
	demo_pause_ms(900);
	uint32_t on_two = atomic_load(&sh->grants);
	demo_lockctl(&d, (const char *const[]){"server", "kill", "1", NULL});
	demo_pause_ms(800);
	demo_lockctl(&d, (const char *const[]){"server", "start", "1", NULL});
	demo_lockctl(&d, (const char *const[]){"server", "start", "2", NULL});
	int64_t restarted = lm_now_ns();
	int back = wait_for_grant_after(sh, restarted, 5000);
	int64_t gap_ms = (lm_now_ns() - restarted) / 1000000;
	demo_pause_ms(600);
	atomic_store(&sh->stop, 1);
	int failed = 0, status;
	for (int i = 0; i < NCLIENTS; i++)
		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;

	uint32_t grants = atomic_load(&sh->grants);
	int violations = atomic_load(&sh->violations);
	printf("\n%u grants (%u of them before the second server died), "
	       "%u acquires refused for no quorum;\n", grants, on_two,
	       atomic_load(&sh->noquorum));
	printf("service resumed %lld ms after the restarts (the quarantine "
	       "is one max TTL, 1500 ms);\n", (long long)gap_ms);
	printf("tokens %s.\n", violations == 0 ? "strictly increased "
						 "throughout"
					       : "WENT BACKWARDS");
	demo_teardown(&d);
	int ok = failed == 0 && violations == 0 && back == 0 &&
		 atomic_load(&sh->noquorum) > 0;
	printf("%s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
