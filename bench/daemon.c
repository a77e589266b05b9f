/*
 * daemon.c - starting, watching and stopping our own lockmgrd.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../shm/layout.h"
#include "../shm/region.h"
#include "bench.h"

/* How long a server's heartbeat may be old and still count as UP
 * (servers beat every 20 ms). */
#define HEARTBEAT_FRESH_MS 200

/* Our lockmgrds: [0] the main one, on bench_cfg.region; then the ones
 * a scenario starts for itself (the tree scenario's pair). */
#define LMD_MAX 3
static volatile pid_t supervisor[LMD_MAX];
static char region_of[LMD_MAX][LM_REGION_NAME_MAX + 2];

/* Are the supervisor RUNNING and all servers UP with a fresh beat? */
static bool all_up(const char *region, char *why, size_t n)
{
	struct lm_region r;
	if (lm_region_attach(&r, region, why, n) != 0)
		return false;
	int64_t now = bench_now_ns() / 1000000;
	unsigned up = 0;
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		uint64_t st = atomic_load(&r.servers[i]->state);
		int64_t hb = atomic_load(&r.servers[i]->heartbeat_ms);
		if (LM_SRV_STATE(st) == LM_SRV_UP &&
		    now - hb < HEARTBEAT_FRESH_MS)
			up++;
	}
	bool running = atomic_load(&r.hdr->supervisor_state) == LM_SUP_RUNNING;
	lm_region_detach(&r);
	snprintf(why, n, "%s, %u of 3 servers up",
		 running ? "supervisor running" : "supervisor not running", up);
	return running && up == LM_NSERVERS;
}

/* Start a lockmgrd on region in slot and wait (bounded) until it
 * serves. 0, or -1 with a message on stderr. */
static int start_in(int slot, const char *region, uint32_t nlocks, bool tree)
{
	if (access(bench_cfg.lockmgrd, X_OK) != 0) {
		fprintf(stderr, "lockbench: cannot run lockmgrd at %s: %s\n"
				"Build it (make) or name it with --lockmgrd "
				"PATH.\n",
			bench_cfg.lockmgrd, strerror(errno));
		return -1;
	}
	snprintf(region_of[slot], sizeof(region_of[slot]), "%s", region);
	char max_locks[16];
	snprintf(max_locks, sizeof(max_locks), "%u", nlocks);
	/* The max TTL must admit our TTL; nothing goes on disk. */
	char max_ttl[24];
	snprintf(max_ttl, sizeof(max_ttl), "%lld",
		 (long long)bench_cfg.ttl_ms);
	char *argv[] = {
		(char *)bench_cfg.lockmgrd, "-q", "-r", region_of[slot],
		"--max-locks", max_locks, "--max-sessions", "256",
		"--max-ttl", max_ttl, "--restart-delay", "-1", "--ephemeral",
		tree ? "--tree" : NULL, NULL,
	};
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("lockbench: fork");
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			dup2(nul, STDOUT_FILENO);
		}
		/* Our process group, so that whoever kills lockbench's
		 * group (a test runner's timeout) kills it too; a ^C
		 * reaches it as well, and lockmgrd stops cleanly on SIGINT
		 * (removing the region). */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execv(argv[0], argv);
		fprintf(stderr, "lockbench: exec %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	supervisor[slot] = pid;
	int64_t deadline = bench_now_ns() + INT64_C(30) * 1000000000;
	char why[256] = "region not created yet";
	while (!all_up(region_of[slot], why, sizeof(why))) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			supervisor[slot] = 0;
			fprintf(stderr, "lockbench: lockmgrd exited (status "
					"0x%x) before serving %s\n",
				st, region_of[slot]);
			return -1;
		}
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "lockbench: lockmgrd did not serve %s "
					"within 30 s (%s)\n",
				region_of[slot], why);
			lmd_stop_extra(slot);
			return -1;
		}
		bench_sleep_ns(2000000);
	}
	return 0;
}

int lmd_start(void)
{
	return start_in(0, bench_cfg.region, bench_cfg.max_locks, false);
}

int lmd_start_extra(const char *region, uint32_t nlocks, bool tree)
{
	for (int slot = 1; slot < LMD_MAX; slot++)
		if (supervisor[slot] == 0)
			return start_in(slot, region, nlocks, tree) == 0 ? slot
									 : -1;
	fprintf(stderr, "lockbench: more than %d lockmgrds at once\n",
		LMD_MAX);
	return -1;
}

void lmd_stop_extra(int slot)
{
	if (slot < 0 || slot >= LMD_MAX)
		return;
	pid_t pid = supervisor[slot];
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	int64_t deadline = bench_now_ns() + INT64_C(10) * 1000000000;
	int st;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "lockbench: lockmgrd did not stop on "
					"SIGTERM within 10 s; killing it\n");
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		bench_sleep_ns(2000000);
	}
	supervisor[slot] = 0;
	/* Normally lockmgrd removed it; after a SIGKILL we do. */
	shm_unlink(region_of[slot]);
}

void lmd_stop(void)
{
	lmd_stop_extra(0);
}

void lmd_stop_signal_safe(void)
{
	/* All of them first, then wait for each: the waits overlap. */
	for (int slot = 0; slot < LMD_MAX; slot++)
		if (supervisor[slot] > 0)
			kill(supervisor[slot], SIGTERM);
	/* Wait (bounded) for them to remove their regions: whoever killed
	 * us may kill our whole process group next. Only waitpid and
	 * nanosleep: this runs in a signal handler. */
	for (int slot = 0; slot < LMD_MAX; slot++) {
		pid_t pid = supervisor[slot];
		if (pid <= 0)
			continue;
		for (int i = 0; i < 500; i++) {
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break;
			struct timespec ts = {.tv_sec = 0,
					      .tv_nsec = 10000000};
			nanosleep(&ts, NULL);
		}
	}
}

int lmd_kill_server(unsigned idx)
{
	struct lm_region r;
	char why[256];
	if (idx >= LM_NSERVERS ||
	    lm_region_attach(&r, bench_cfg.region, why, sizeof(why)) != 0)
		return -1;
	int rc = -1;
	pid_t pid = atomic_load(&r.servers[idx]->pid);
	if (pid <= 0 || kill(pid, SIGKILL) != 0) {
		fprintf(stderr, "lockbench: cannot kill server %u (pid %d)\n",
			idx, (int)pid);
		goto out;
	}
	/* The supervisor sees the death on a pidfd and marks it DOWN. */
	int64_t deadline = bench_now_ns() + INT64_C(10) * 1000000000;
	while (bench_now_ns() < deadline) {
		uint64_t st = atomic_load(&r.servers[idx]->state);
		if (LM_SRV_STATE(st) == LM_SRV_DOWN) {
			rc = 0;
			goto out;
		}
		bench_sleep_ns(1000000);
	}
	fprintf(stderr, "lockbench: server %u not marked DOWN within 10 s\n",
		idx);
out:
	lm_region_detach(&r);
	return rc;
}

double lmd_region_bytes(void)
{
	char path[LM_REGION_NAME_MAX + 16];
	snprintf(path, sizeof(path), "/dev/shm%s", bench_cfg.region);
	struct stat st;
	return stat(path, &st) == 0 ? (double)st.st_size : NAN;
}

int lmd_region_layout(struct lmd_layout *out)
{
	struct lm_region r;
	char why[256];
	if (lm_region_attach(&r, bench_cfg.region, why, sizeof(why)) != 0)
		return -1;
	const struct lm_region_header *h = r.hdr;
	out->max_locks = h->max_locks;
	out->max_sessions = h->max_sessions;
	out->bucket_count = h->bucket_count;
	out->nservers = h->nservers;
	out->name_size = h->name_size;
	out->slot_size = h->slot_size;
	out->session_size = h->session_size;
	out->region_size = h->region_size;
	lm_region_detach(&r);
	return 0;
}
