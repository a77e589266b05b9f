/*
 * replicated.c - the replicated scenario with real processes.
 *
 * Act 1: three clients compete for one lock under three servers. Server
 * 2 is killed mid-run and the clients keep going on two; server 1 is
 * killed too and acquires fail at once with "no quorum", granting
 * nothing; both come back and service resumes as soon as the leases
 * granted before their restart have ended.
 * Fencing tokens increase throughout.
 *
 * Act 2: clock skew. Client 1 holds the lock on servers 0 and 1 (it is
 * partitioned from server 2). Server 0's clock jumps 900 ms ahead, so
 * client 1's lease ends early there. Client 2, partitioned from server
 * 1, finds the lock expired on server 0 and free on server 2: a majority,
 * while client 1, by its own clock, still holds the lock. Two holders:
 * the drift bound was wrong. The fenced resource catches it: client 1's
 * write with the older token is rejected.
 *
 *   replicated [--lockmgrd PATH]
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "clients.h"
#include "demo_util.h"
#include "shm/clock.h"

#define LOCK_NAME "demo/replicated"
#define SKEW_LOCK "demo/skew" /* act 2's */
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
				demo_release_failed(d, who, g.token, rc);
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

/* Act 2's shared state: the operator sets up the partition between a
 * client's connect and its acquire. */
struct act2 {
	_Atomic int connected[3]; /* client i has a session */
	_Atomic int go[3];        /* client i may acquire */
	_Atomic int c2_wrote;
	_Atomic int c1_rejected;
	_Atomic int c1_believed;  /* client 1's lease was valid by its clock
				   * when its write was rejected */
	uint64_t token[3];
};
static struct act2 *a2;

static void act2_event(const struct client_spec *s, enum client_event ev,
		       int round, const lm_grant *g, int rc, uint64_t highest)
{
	if (ev == EV_WANTS) {
		atomic_store(&a2->connected[s->id], 1);
		demo_wait_flag(&a2->go[s->id], 10000, "the operator");
	}
	if (ev == EV_REJECTED && s->id == 1) {
		atomic_store(&a2->c1_believed,
			     lm_now_ns() < g->valid_until_ns);
		atomic_store(&a2->c1_rejected, 1);
		demo_client_event(s, (int)ev, round, g, rc, highest);
		demo_event(s->arg, "client 1", "", 0,
			   "(by its own clock its lease had %lld ms left)",
			   (long long)((g->valid_until_ns - lm_now_ns()) /
				       1000000));
		return;
	}
	demo_client_event(s, (int)ev, round, g, rc, highest);
	if (ev == EV_ACQUIRED)
		a2->token[s->id] = g->token;
	if (ev == EV_WROTE && s->id == 2)
		atomic_store(&a2->c2_wrote, 1);
}

static int act2(struct demo *d, const char *store)
{
	printf("\nAct 2: clock skew, on a second lock, \"%s\" (its tokens "
	       "start at 1).\nClient 1 holds it on servers 0 and 1; server "
	       "0's clock jumps ahead; client 2,\ncut off from server 1, "
	       "finds a majority elsewhere.\n\n", SKEW_LOCK);
	demo_header();
	char pid1[16], pid2[16];
	struct client_spec c1 = {
		.region = d->region, .lock = SKEW_LOCK, .id = 1,
		.ttl_ms = 1000, .wait_ms = 2000, .rounds = 1, .hold_ms = 600,
		.store_path = store, .on_event = act2_event, .arg = d,
	};
	struct client_spec c2 = c1;
	c2.id = 2;
	c2.hold_ms = 100;
	pid_t p1 = demo_fork_client(&c1);
	demo_wait_flag(&a2->connected[1], 5000, "client 1 to connect");
	snprintf(pid1, sizeof(pid1), "%d", (int)p1);
	demo_lockctl(d, (const char *const[]){"server", "isolate", "2",
					      "--pid", pid1, NULL});
	atomic_store(&a2->go[1], 1);
	while (a2->token[1] == 0)
		demo_pause_ms(1);
	pid_t p2 = demo_fork_client(&c2);
	demo_wait_flag(&a2->connected[2], 5000, "client 2 to connect");
	snprintf(pid2, sizeof(pid2), "%d", (int)p2);
	demo_lockctl(d, (const char *const[]){"server", "isolate", "1",
					      "--pid", pid2, NULL});
	demo_lockctl(d, (const char *const[]){"server", "skew", "0",
					      "--offset", "900", NULL});
	atomic_store(&a2->go[2], 1);
	int st1, st2;
	waitpid(p1, &st1, 0);
	waitpid(p2, &st2, 0);
	demo_lockctl(d, (const char *const[]){"server", "skew", "0",
					      "--offset", "0", NULL});
	demo_print_store(store);
	bool ok = atomic_load(&a2->c2_wrote) && atomic_load(&a2->c1_rejected) &&
		  a2->token[2] > a2->token[1];
	printf("\n%s\n", ok ? "Both clients held the lock at once, because "
			      "server 0's clock was off by more than the\n"
			      "drift bound; fencing rejected the older "
			      "holder's write, so no update was lost."
			    : "FAILED: the skew did not play out as expected.");
	return ok ? 0 : 1;
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
	const char *lockmgrd;
	int rc = demo_options(argc, argv, "replicated", &lockmgrd);
	if (rc >= 0)
		return rc;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Manual restarts, so that the operator decides when servers come
	 * back. */
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
	demo_header();

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
	printf("service resumed %lld ms after the restarts (a restarted "
	       "server counts again once the\nleases it granted before have "
	       "ended: here the clients' 1 s leases);\n", (long long)gap_ms);
	printf("tokens of \"%s\" %s.\n", LOCK_NAME,
	       violations == 0 ? "strictly increased throughout"
			       : "WENT BACKWARDS");
	int ok = failed == 0 && violations == 0 && back == 0 &&
		 atomic_load(&sh->noquorum) > 0;

	a2 = mmap(NULL, sizeof(*a2), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char dir[] = "/tmp/lockmgr-skew-XXXXXX";
	if (a2 == MAP_FAILED || mkdtemp(dir) == NULL) {
		perror("act 2");
		ok = 0;
	} else {
		char store[sizeof(dir) + 16];
		snprintf(store, sizeof(store), "%s/store", dir);
		ok = act2(&d, store) == 0 && ok;
		unlink(store);
		rmdir(dir);
	}
	demo_teardown(&d);
	printf("%s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
