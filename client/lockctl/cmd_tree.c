/*
 * cmd_tree.c - CMD and every process it started, for `lockctl run`,
 * `elect` and `flock`: stopped together when the lease is lost.
 *
 * Signalling CMD alone is not enough: `sh -c 'step1; step2'` or a
 * server that forks workers leaves processes behind that go on working
 * after the lock (or the lead) has passed to someone else. lockctl
 * makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so that a
 * process of CMD's tree whose parent exits is re-parented to lockctl
 * rather than to init: a double fork does not leave the tree, which is
 * "lockctl's descendants". It is found by a walk of /proc (parent
 * links), the way pkill -P or systemd's KillMode=control-group would
 * find it without a cgroup of our own; and it is gone when lockctl has
 * no child left. (If lockctl itself is killed, only CMD dies with it,
 * by PR_SET_PDEATHSIG: the rest of the tree is re-parented to init.)
 *
 * Every process of the tree gets the signals, as in a systemd unit's
 * stop: a CMD that passes SIGTERM on to its own children (a shell
 * script with a trap, timeout(1)) makes them see it twice.
 *
 * A process group would be cheaper but takes CMD out of the terminal's
 * foreground group (^C, ^Z and reads from the terminal would stop
 * reaching it, as with timeout(1) without --foreground), and CMD can
 * leave a group with setsid() or setpgid() anyway.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../shm/clock.h"
#include "lockctl.h"

int ctl_tree_adopt(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -errno;
}

void ctl_tree_reap(pid_t cmd)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		/* Look without reaping: CMD's own status is read by its
		 * pidfd's owner, not here. */
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
		    si.si_pid == 0 || si.si_pid == cmd)
			return;
		waitpid(si.si_pid, NULL, WNOHANG);
	}
}

struct proc_link {
	pid_t pid, ppid;
};

/* Every process's parent, from /proc; *n of them. NULL if /proc could
 * not be read, or is another pid namespace's (pids there are not the
 * ones kill() takes here). Zombies are kept: a process whose main
 * thread exited shows as one while its other threads run on. */
static struct proc_link *read_links(size_t *n)
{
	char self[32];
	ssize_t sl = readlink("/proc/self", self, sizeof(self) - 1);
	if (sl <= 0)
		return NULL;
	self[sl] = '\0';
	if (atoi(self) != (int)getpid())
		return NULL;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return NULL;
	size_t cap = 256, used = 0;
	struct proc_link *l = malloc(cap * sizeof(*l));
	struct dirent *e;
	while (l != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "re");
		if (f == NULL)
			continue; /* gone meanwhile */
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		/* pid (comm) state ppid ...; comm may hold ')' */
		char *rp = strrchr(buf, ')');
		char state;
		int ppid;
		if (rp == NULL || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
			continue;
		if (used == cap) {
			struct proc_link *m = realloc(l, 2 * cap * sizeof(*l));
			if (m == NULL) {
				free(l);
				l = NULL;
				break;
			}
			l = m;
			cap *= 2;
		}
		l[used].pid = atoi(e->d_name);
		l[used].ppid = ppid;
		used++;
	}
	closedir(d);
	*n = used;
	return l;
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct proc_link *)a)->pid;
	pid_t y = ((const struct proc_link *)b)->pid;
	return (x > y) - (x < y);
}

static size_t find_pid(const struct proc_link *l, size_t n, pid_t pid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && l[lo].pid == pid ? lo : n;
}

enum { UNKNOWN, INSIDE, OUTSIDE };

int ctl_tree_signal(int sig, pid_t except)
{
	size_t n;
	struct proc_link *l = read_links(&n);
	if (l == NULL)
		return -1;
	qsort(l, n, sizeof(*l), by_pid);
	/* Whether each process descends from lockctl, by walking up its
	 * parents until lockctl, a process outside, or one already
	 * judged (then everything on the way is judged alike): each
	 * process is walked through once, so n log n on a busy host. */
	pid_t self = getpid();
	unsigned char *mark = calloc(n ? n : 1, 1);
	size_t *path = malloc((n ? n : 1) * sizeof(*path));
	if (mark == NULL || path == NULL) {
		free(mark);
		free(path);
		free(l);
		return -1;
	}
	int found = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = 0, k = i;
		unsigned char verdict = OUTSIDE;
		while (len < n) {
			if (mark[k] != UNKNOWN) {
				verdict = mark[k];
				break;
			}
			path[len++] = k;
			if (l[k].ppid == self) {
				verdict = INSIDE;
				break;
			}
			size_t up = find_pid(l, n, l[k].ppid);
			if (up == n || up == k)
				break; /* init, the kernel, or gone: outside */
			k = up;
		}
		while (len > 0)
			mark[path[--len]] = verdict;
	}
	/* By pid: one that exits and is reaped between the walk and the
	 * kill frees its pid, which a new process could take in that
	 * instant (pids are handed out in increasing order, so not soon). */
	for (size_t i = 0; i < n; i++)
		if (mark[i] == INSIDE && l[i].pid != except) {
			kill(l[i].pid, sig);
			found++;
		}
	free(path);
	free(mark);
	free(l);
	return found;
}

bool ctl_tree_gone(int timeout_ms)
{
	/* lockctl is the subreaper of the tree: while any of it is left,
	 * lockctl has a child (the process itself or an ancestor of it);
	 * when none is left, waitpid says ECHILD. No walk needed. */
	int64_t until = lm_now_ms() + timeout_ms;
	for (;;) {
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p > 0)
			continue;
		if (p < 0 && errno == ECHILD)
			return true;
		if (p < 0 && errno == EINTR)
			continue;
		if (lm_now_ms() >= until)
			return false;
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
}

bool ctl_tree_kill(int timeout_ms)
{
	/* Again and again: a process may fork between a walk and its
	 * kills, and the new one is only seen by the next walk. */
	int64_t until = lm_now_ms() + timeout_ms;
	for (;;) {
		int n = ctl_tree_signal(SIGKILL, 0);
		if (ctl_tree_gone(n != 0 ? 10 : 0))
			return true;
		if (lm_now_ms() >= until)
			return false;
	}
}
