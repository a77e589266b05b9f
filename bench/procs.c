/*
 * procs.c - forked workers, the start gate, bounded waits.
 */
#include "procs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* Live workers, for a run interrupted by SIGINT/SIGTERM. */
#define TRACK 256
static volatile pid_t tracked[TRACK];

static void track(pid_t pid)
{
	for (int i = 0; i < TRACK; i++)
		if (tracked[i] == 0) {
			tracked[i] = pid;
			return;
		}
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < TRACK; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

void procs_kill_all_signal_safe(void)
{
	for (int i = 0; i < TRACK; i++)
		if (tracked[i] > 0)
			kill(tracked[i], SIGKILL);
}

void gate_arrive_and_wait(struct gate *g)
{
	atomic_fetch_add(&g->ready, 1);
	while (atomic_load(&g->go) == 0)
		bench_futex_wait(&g->go, 0, INT64_MAX);
}

int64_t gate_open_when_ready(struct gate *g, uint32_t n, const pid_t *pids,
			     const char *what)
{
	/* Generous: 64 workers each creating a session, or a sanitizer
	 * build resolving thousands of refs, take a while on 2 cores. */
	int64_t deadline = bench_now_ns() + INT64_C(60) * 1000000000;
	while (atomic_load(&g->ready) < n) {
		for (uint32_t i = 0; i < n; i++) {
			int st;
			if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
				untrack(pids[i]);
				bench_fail("%s: worker %u exited (status 0x%x) "
					   "before the start", what, i, st);
				atomic_store(&g->stop, 1);
				atomic_store(&g->go, 1);
				bench_futex_wake(&g->go, INT32_MAX);
				return -1;
			}
		}
		if (bench_now_ns() > deadline) {
			bench_fail("%s: only %u of %u workers ready after 60 s",
				   what, atomic_load(&g->ready), n);
			atomic_store(&g->stop, 1);
			atomic_store(&g->go, 1);
			bench_futex_wake(&g->go, INT32_MAX);
			return -1;
		}
		bench_sleep_ns(200000);
	}
	int64_t t = bench_now_ns();
	atomic_store(&g->go, 1);
	bench_futex_wake(&g->go, INT32_MAX);
	return t;
}

pid_t procs_fork(int (*fn)(int id, void *arg), int id, void *arg)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* The parent's interrupt handler is not ours: a worker just
		 * dies with the run. */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		/* _exit: no exit handlers of the parent, no stdio flush of
		 * its buffers, no sanitizer leak check per worker. */
		_exit(fn(id, arg));
	}
	track(pid);
	return pid;
}

int procs_reap(const pid_t *pids, int n, int64_t timeout_ms, const char *what)
{
	int64_t deadline = bench_now_ns() + timeout_ms * 1000000;
	int bad = 0;
	for (int i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		int st = 0;
		pid_t r;
		for (;;) {
			r = waitpid(pids[i], &st, WNOHANG);
			if (r != 0 || bench_now_ns() > deadline)
				break;
			bench_sleep_ns(500000);
		}
		if (r == 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &st, 0);
			untrack(pids[i]);
			bench_fail("%s: worker %d did not finish within %lld ms",
				   what, i, (long long)timeout_ms);
			bad++;
			continue;
		}
		untrack(pids[i]);
		if (r < 0) {
			bench_fail("%s: waitpid(worker %d): %s", what, i,
				   strerror(errno));
			bad++;
		} else if (WIFSIGNALED(st)) {
			bench_fail("%s: worker %d killed by signal %d", what, i,
				   WTERMSIG(st));
			bad++;
		} else if (WEXITSTATUS(st) != 0) {
			bench_fail("%s: worker %d exited with status %d", what,
				   i, WEXITSTATUS(st));
			bad++;
		}
	}
	return bad;
}

void procs_kill_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	untrack(pid);
}

/* The state letter of /proc/pid/stat (after the last ')'), or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' ? p[2] : 0;
}

bool procs_wait_asleep(pid_t pid, int64_t timeout_ms)
{
	int64_t deadline = bench_now_ns() + timeout_ms * 1000000;
	for (;;) {
		char s = proc_state(pid);
		if (s == 'S' || s == 'D')
			return true;
		if (s == 0 || s == 'Z' || bench_now_ns() > deadline)
			return false;
		sched_yield();
	}
}

int procs_pin(int k)
{
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return -1;
	int n = CPU_COUNT(&allowed);
	if (n < 2)
		return -1;
	int want = k % n;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || want-- > 0)
			continue;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		return sched_setaffinity(0, sizeof(one), &one) == 0 ? cpu : -1;
	}
	return -1;
}

bool procs_wait_value(_Atomic uint32_t *w, uint32_t v, int64_t timeout_ms)
{
	int64_t deadline = bench_now_ns() + timeout_ms * 1000000;
	unsigned spins = 0;
	while (atomic_load(w) < v) {
		if ((++spins & 63) == 0 && bench_now_ns() > deadline)
			return false;
		sched_yield();
	}
	return true;
}

int procs_run_timed(char *const argv[], const char *errlog, int timeout_ms,
		    int64_t *ns, char *err, size_t errn)
{
	fflush(stdout);
	fflush(stderr);
	int64_t t0 = bench_now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errn, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		int out = open("/dev/null", O_RDWR | O_CLOEXEC);
		int e = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0600);
		if (out < 0 || e < 0)
			_exit(127);
		dup2(out, 0);
		dup2(out, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int st = 0;
	int pfd = pidfd_open(pid, 0);
	if (pfd >= 0) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		int n;
		while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		close(pfd);
		if (n == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			snprintf(err, errn, "did not end within %d ms",
				 timeout_ms);
			return -1;
		}
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errn, "waitpid: %s", strerror(errno));
			return -1;
		}
	*ns = bench_now_ns() - t0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char msg[200] = "";
	int fd = open(errlog, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t k = read(fd, msg, sizeof(msg) - 1);
		msg[k > 0 ? k : 0] = '\0';
		close(fd);
	}
	msg[strcspn(msg, "\n")] = '\0';
	snprintf(err, errn, "%s %d: %s",
		 WIFEXITED(st) ? "exit status" : "killed by signal",
		 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), msg);
	return -1;
}
