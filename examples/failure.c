/*
 * failure.c - a client crashes while holding the lock.
 *
 * Act 1: the supervisor sees the death through the client's pidfd and
 * frees the lock at once; the waiting client gets it within
 * milliseconds, told that the previous holder died.
 * Act 2: the same crash with lockmgrd --no-release-on-exit: nothing
 * frees the lock but its lease, so the waiter gets it at the moment the
 * TTL says.
 *
 *   failure [--lockmgrd PATH]
 */
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "demo_util.h"
#include "shm/clock.h"

#define LOCK_NAME "demo/failure"

struct shared {
	_Atomic int holding;        /* client 1 is inside */
	_Atomic int64_t crash_ns;   /* when client 1 crashed */
	_Atomic int64_t valid_until_ns; /* client 1's lease */
	_Atomic int64_t taken_ns;   /* when client 2 got the lock */
	_Atomic int recovered;      /* client 2 was told */
	uint64_t token[3];
};

static struct shared *sh;

static void on_event(const struct client_spec *s, enum client_event ev,
		     int round, const lm_grant *g, int rc, uint64_t highest)
{
	demo_client_event(s, (int)ev, round, g, rc, highest);
	if (ev == EV_ACQUIRED) {
		sh->token[s->id] = g->token;
		if (s->id == 1) {
			atomic_store(&sh->valid_until_ns, g->valid_until_ns);
			atomic_store(&sh->holding, 1);
		} else {
			atomic_store(&sh->taken_ns, lm_now_ns());
			atomic_store(&sh->recovered,
				     (g->flags & LM_GRANT_RECOVERED) != 0);
		}
	} else if (ev == EV_CRASHING) {
		atomic_store(&sh->crash_ns, lm_now_ns());
	}
}

/* One act: client 1 holds and crashes; client 2 waits for the lock. */
static int act(struct demo *d, int64_t ttl_ms, bool release_on_exit)
{
	memset(sh, 0, sizeof(*sh));
	/* A failing client: killed (SIGKILL) half-way through its 400 ms
	 * critical section, by which time client 2 is queued. */
	struct client_spec c1 = {
		.region = d->region, .lock = LOCK_NAME, .id = 1,
		.ttl_ms = ttl_ms, .wait_ms = 0, .rounds = 1, .hold_ms = 400,
		.crash_at = CRASH_INSIDE, .crash_round = 0,
		.crash_how = CRASH_SIGKILL, .on_event = on_event, .arg = d,
	};
	struct client_spec c2 = {
		.region = d->region, .lock = LOCK_NAME, .id = 2,
		.ttl_ms = ttl_ms, .wait_ms = 3 * ttl_ms, .rounds = 1,
		.hold_ms = 50, .on_event = on_event, .arg = d,
	};
	pid_t p1 = demo_fork_client(&c1);
	demo_wait_flag(&sh->holding, 5000, "client 1 to take the lock");
	pid_t p2 = demo_fork_client(&c2);
	int st1, st2;
	waitpid(p1, &st1, 0);
	waitpid(p2, &st2, 0);
	int64_t taken = atomic_load(&sh->taken_ns);
	double after_crash = (double)(taken - atomic_load(&sh->crash_ns)) / 1e6;
	double vs_lease = (double)(taken - atomic_load(&sh->valid_until_ns)) /
			  1e6;
	if (release_on_exit)
		printf("\n  -> client 2 had the lock %.2f ms after the crash, "
		       "%.0f ms before the lease would have ended.\n",
		       after_crash, -vs_lease);
	else
		printf("\n  -> client 2 had the lock %.0f ms after the crash, "
		       "%.1f ms after client 1's lease ended.\n",
		       after_crash, vs_lease);
	bool ok = WIFEXITED(st2) && WEXITSTATUS(st2) == 0 && taken > 0 &&
		  atomic_load(&sh->recovered) && sh->token[2] > sh->token[1];
	if (release_on_exit)
		ok = ok && vs_lease < 0;
	else
		ok = ok && vs_lease >= -1.0; /* not before the lease ended */
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *lockmgrd;
	int rc = demo_options(argc, argv, "failure", &lockmgrd);
	if (rc >= 0)
		return rc;
	unsetenv("LOCKMGR_REGION"); /* each act needs its own supervisor */
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct demo d;
	demo_setup(&d, argv[0], lockmgrd, NULL);
	printf("Act 1: death detection. Client 1 holds \"%s\" with a 5 s "
	       "lease and is killed.\n\n", LOCK_NAME);
	demo_header();
	int bad = act(&d, 5000, true);
	demo_teardown(&d);

	static const char *const no_release[] = {"--no-release-on-exit", NULL};
	demo_setup(&d, argv[0], lockmgrd, no_release);
	printf("\nAct 2: lockmgrd --no-release-on-exit. The same crash, with "
	       "a 1.5 s lease:\nonly the lease can free the lock now.\n\n");
	demo_header();
	bad |= act(&d, 1500, false);
	demo_teardown(&d);
	printf("\n%s\n", bad ? "FAILED" : "OK: death detection freed the lock "
					  "at once; without it, the lease "
					  "did, on time.");
	return bad;
}
