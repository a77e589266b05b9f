/*
 * fencing.c - the split-brain scenario with real processes.
 *
 * Client 1 takes the lock (token N) and is frozen with SIGSTOP inside
 * its critical section, like a long GC pause, past its lease. Client 2
 * is granted the lock (token N+1) once that lease has expired, and
 * writes to the protected resource. Client 1 is resumed with SIGCONT,
 * still believing it holds the lock, and writes with token N: the
 * resource rejects it, because it has already seen N+1. Without the
 * token check, that write would silently have overwritten client 2's.
 *
 *   fencing [--lockmgrd PATH]
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "demo_util.h"

#define LOCK_NAME "demo/fencing"
#define TTL_MS 800

struct shared {
	_Atomic int c1_inside;   /* client 1 acquired: freeze it now */
	_Atomic int c2_wrote;    /* client 2's write was accepted */
	_Atomic int c1_rejected; /* client 1's stale write was refused */
	_Atomic int c1_lost;     /* client 1's release reported lease lost */
	uint64_t token[3];
};

static struct shared *sh;

static void on_event(const struct client_spec *s, enum client_event ev,
		     int round, const lm_grant *g, int rc, uint64_t highest)
{
	demo_client_event(s, (int)ev, round, g, rc, highest);
	if (ev == EV_ACQUIRED) {
		sh->token[s->id] = g->token;
		if (s->id == 1)
			atomic_store(&sh->c1_inside, 1);
	} else if (ev == EV_WROTE && s->id == 2) {
		atomic_store(&sh->c2_wrote, 1);
	} else if (ev == EV_REJECTED && s->id == 1) {
		atomic_store(&sh->c1_rejected, 1);
	} else if (ev == EV_RELEASED && s->id == 1 && rc == LM_ELEASELOST) {
		atomic_store(&sh->c1_lost, 1);
	}
}

int main(int argc, char **argv)
{
	const char *lockmgrd;
	int rc = demo_options(argc, argv, "fencing", &lockmgrd);
	if (rc >= 0)
		return rc;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	char dir[] = "/tmp/lockmgr-fencing-XXXXXX";
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	char store[sizeof(dir) + 16];
	snprintf(store, sizeof(store), "%s/store", dir);

	struct demo d;
	demo_setup(&d, argv[0], lockmgrd, NULL);
	printf("Two clients, one lock (\"%s\", lease %d ms), one fenced "
	       "resource.\n\n", LOCK_NAME, TTL_MS);
	demo_header();

	struct client_spec c1 = {
		.region = d.region, .lock = LOCK_NAME, .id = 1,
		.ttl_ms = TTL_MS, .wait_ms = 5000, .rounds = 1,
		.hold_ms = 300, .store_path = store,
		.on_event = on_event, .arg = &d,
	};
	struct client_spec c2 = c1;
	c2.id = 2;
	c2.hold_ms = 100;

	pid_t p1 = demo_fork_client(&c1);
	demo_wait_flag(&sh->c1_inside, 5000, "client 1 to take the lock");
	demo_pause_ms(50); /* into its critical section: for the story only */
	kill(p1, SIGSTOP);
	demo_event(&d, "operator", "SIGSTOP", 0,
		   "client 1 frozen inside its critical section (a GC pause)");
	pid_t p2 = demo_fork_client(&c2);
	demo_wait_flag(&sh->c2_wrote, 10000, "client 2 to write");
	demo_event(&d, "operator", "SIGCONT", 0,
		   "client 1 resumes, still believing it holds the lock");
	kill(p1, SIGCONT);
	int s1, s2;
	waitpid(p1, &s1, 0);
	waitpid(p2, &s2, 0);

	demo_print_store(store);
	int ok = atomic_load(&sh->c1_rejected) && atomic_load(&sh->c1_lost) &&
		 sh->token[2] > sh->token[1] && WIFEXITED(s1) &&
		 WIFEXITED(s2) && WEXITSTATUS(s1) == 0 && WEXITSTATUS(s2) == 0;
	printf("\n%s\n", ok ? "OK: the zombie's write with the older token "
			      "was rejected; client 2's data is intact."
			    : "FAILED: the zombie was not fenced.");
	demo_teardown(&d);
	unlink(store);
	rmdir(dir);
	return ok ? 0 : 1;
}
