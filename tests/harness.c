/*
 * harness.c - process, region and lockmgrd helpers for the tests.
 *
 * See harness.h for the rules. The one non-obvious piece is how a forked
 * child reports an assertion: the child runs its function as the only
 * test of a nested cmocka group (output in TAP form, captured in a
 * memfd), so cmocka's longjmp on failure lands in the child's own runner
 * and the child exits 1, printing the assertion's lines on stderr.
 * Without that, a failed assert in a child would jump into the child's
 * copy of the parent's runner and go on running the parent's remaining
 * tests in the child.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/layout.h"

/* The pid whose number names this case's regions and scratch dirs. */
static pid_t case_pid;
static unsigned name_counter;

static pid_t current_case_pid(void)
{
	if (case_pid == 0)
		case_pid = getpid();
	return case_pid;
}

/* ---- time -------------------------------------------------------- */

int64_t harness_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t harness_now_ms(void)
{
	return harness_now_ns() / 1000000;
}

void harness_nap_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000,
			      .tv_nsec = (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* ---- environment -------------------------------------------------- */

const char *harness_bin_dir(void)
{
	const char *d = getenv("LOCKMGR_BIN");
	return d != NULL && *d != '\0' ? d : "build";
}

void harness_bin_path(char *out, size_t n, const char *prog)
{
	snprintf(out, n, "%s/%s", harness_bin_dir(), prog);
}

void harness_region_name(char *out, size_t n, const char *tag)
{
	snprintf(out, n, "/lmt-%s-%d-%u", tag, (int)current_case_pid(),
		 name_counter++);
}

void harness_tmpdir(char *out, size_t n)
{
	snprintf(out, n, "/tmp/lmt-%d-XXXXXX", (int)current_case_pid());
	if (mkdtemp(out) == NULL)
		fail_msg("mkdtemp(%s): %s", out, strerror(errno));
}

void *harness_shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail_msg("mmap(shared, %zu): %s", n, strerror(errno));
	return p;
}

void harness_shared_free(void *p, size_t n)
{
	if (p != NULL)
		munmap(p, n);
}

void harness_remove_flat_dir(const char *path)
{
	DIR *d = opendir(path);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			char p[1024];
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(path);
}

int harness_cleanup_leftovers(pid_t pid)
{
	char mid[32], pre[48];
	snprintf(mid, sizeof(mid), "-%d-", (int)pid);
	snprintf(pre, sizeof(pre), "lmt-%d-", (int)pid);
	int removed = 0;
	DIR *d = opendir("/dev/shm");
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "lmt-", 4) != 0 ||
			    strstr(e->d_name, mid) == NULL)
				continue;
			char name[300];
			snprintf(name, sizeof(name), "/%s", e->d_name);
			if (shm_unlink(name) == 0) {
				fprintf(stderr, "harness: removed leftover "
						"region %s\n", name);
				removed++;
			}
		}
		closedir(d);
	}
	d = opendir("/tmp");
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, pre, strlen(pre)) != 0)
				continue;
			char p[300];
			snprintf(p, sizeof(p), "/tmp/%s", e->d_name);
			harness_remove_flat_dir(p);
		}
		closedir(d);
	}
	return removed;
}

/* ---- processes ---------------------------------------------------- */

struct child_ctx {
	void (*fn)(void *);
	void *arg;
};

static void child_trampoline(void **state)
{
	struct child_ctx *ctx = *state;
	ctx->fn(ctx->arg);
}

/* Print the "# ..." (diagnostic) lines of the captured TAP output. */
static void dump_tap_diagnostics(int fd)
{
	if (lseek(fd, 0, SEEK_SET) != 0)
		return;
	FILE *f = fdopen(dup(fd), "r");
	if (f == NULL)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#' && strstr(line, "not ok - child") == NULL)
			fprintf(stderr, "  [pid %d] %s", (int)getpid(),
				line + (line[1] == ' ' ? 2 : 1));
	}
	fclose(f);
}

static void __attribute__((noreturn)) child_main(void (*fn)(void *),
						 void *arg)
{
	int mfd = memfd_create("harness-child", 0);
	if (mfd >= 0) {
		dup2(mfd, STDOUT_FILENO);
		close(mfd);
	}
	unsetenv("CMOCKA_MESSAGE_OUTPUT");
	cmocka_set_message_output(CM_OUTPUT_TAP);
	struct child_ctx ctx = {fn, arg};
	const struct CMUnitTest t[1] = {
		{"child", child_trampoline, NULL, NULL, &ctx}};
	int failed = _cmocka_run_group_tests("child", t, 1, NULL, NULL);
	fflush(stdout);
	if (failed) {
		if (mfd >= 0)
			dump_tap_diagnostics(STDOUT_FILENO);
		fflush(stderr);
	}
	_exit(failed ? 1 : 0);
}

pid_t harness_fork(void (*fn)(void *), void *arg)
{
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p < 0)
		fail_msg("fork: %s", strerror(errno));
	if (p == 0)
		child_main(fn, arg);
	return p;
}

bool harness_wait_pid(pid_t pid, int64_t timeout_ms, int *status)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int pfd = pidfd_open(pid, 0);
	bool done = false;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid) {
			done = true;
			break;
		}
		if (r < 0 && errno != EINTR) {
			if (pfd >= 0)
				close(pfd);
			fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
		}
		int64_t left = deadline - harness_now_ms();
		if (left <= 0)
			break;
		if (pfd >= 0) {
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			poll(&p, 1, (int)(left < 1000 ? left : 1000));
		} else {
			harness_nap_us(1000);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return done;
}

const char *harness_status_str(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "wait status %#x", status);
	return buf;
}

int harness_reap(pid_t pid, int64_t timeout_ms, const char *what)
{
	int status = 0;
	if (!harness_wait_pid(pid, timeout_ms, &status)) {
		kill(pid, SIGKILL);
		harness_wait_pid(pid, 5000, &status);
		fail_msg("%s (pid %d) did not finish within %lld ms; killed",
			 what, (int)pid, (long long)timeout_ms);
	}
	return status;
}

void harness_expect_exit(pid_t pid, int64_t timeout_ms, int code,
			 const char *what)
{
	int status = harness_reap(pid, timeout_ms, what);
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != code)
		fail_msg("%s (pid %d): expected exit status %d, got %s", what,
			 (int)pid, code, harness_status_str(status, b, sizeof(b)));
}

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "harness: open %s: %s\n", path,
			strerror(errno));
		_exit(126);
	}
	return fd;
}

pid_t harness_spawn(char *const argv[], const char *out_path,
		    const char *err_path)
{
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p < 0)
		fail_msg("fork: %s", strerror(errno));
	if (p != 0)
		return p;
	int in = open_or_die("/dev/null", O_RDONLY);
	int out = open_or_die(out_path != NULL ? out_path : "/dev/null",
			      O_WRONLY | O_CREAT | O_TRUNC);
	dup2(in, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	if (err_path != NULL) {
		int err = open_or_die(err_path, O_WRONLY | O_CREAT | O_TRUNC);
		dup2(err, STDERR_FILENO);
	}
	/* The test process blocks nothing we rely on, but be explicit. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	alarm(0);
	execv(argv[0], argv);
	fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int harness_run(char *const argv[], const char *out_path,
		const char *err_path, int64_t timeout_ms)
{
	pid_t p = harness_spawn(argv, out_path, err_path);
	char what[256];
	snprintf(what, sizeof(what), "command '%s %s'", argv[0],
		 argv[1] != NULL ? argv[1] : "");
	int status = harness_reap(p, timeout_ms, what);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

ssize_t harness_read_file(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got + 1 < n) {
		ssize_t r = read(fd, buf + got, n - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

void harness_read_byte(int fd, int64_t timeout_ms, const char *what)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - harness_now_ms();
		if (left <= 0)
			fail_msg("timed out after %lld ms waiting for %s",
				 (long long)timeout_ms, what);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 1) {
			char b;
			ssize_t n = read(fd, &b, 1);
			if (n == 1)
				return;
			fail_msg("waiting for %s: the pipe closed (%s)", what,
				 n == 0 ? "EOF" : strerror(errno));
		}
	}
}

/* ---- servers' loops ------------------------------------------------ */

bool harness_servers_looped(const struct lm_region *r, pid_t except,
			    int64_t since_ms)
{
	/* The servers stamp lm_now_ms (CLOCK_MONOTONIC, as here): a stamp
	 * above since_ms was taken after it. */
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct lm_server *srv = r->servers[i];
		if (except != 0 && atomic_load(&srv->pid) == except)
			continue;
		if (atomic_load(&srv->heartbeat_ms) <= since_ms)
			return false;
	}
	return true;
}

void harness_servers_loop_once(const struct lm_region *r, pid_t except,
			       int64_t timeout_ms)
{
	int64_t now = harness_now_ms();
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct lm_server *srv = r->servers[i];
		if (except != 0 && atomic_load(&srv->pid) == except)
			continue;
		HARNESS_WAIT_FOR(atomic_load(&srv->heartbeat_ms) > now,
				 timeout_ms,
				 "server %u did not begin a new loop within "
				 "%lld ms (stopped, or its sweep hangs)",
				 i, (long long)timeout_ms);
	}
}

/* ---- pause points ------------------------------------------------- */

void harness_pause_arm(const char *points, char *log, size_t n)
{
	char dir[256];
	harness_tmpdir(dir, sizeof(dir));
	snprintf(log, n, "%s/pauses.log", dir);
	setenv("LOCKMGR_TEST_PAUSE", points, 1);
	setenv("LOCKMGR_TEST_PAUSE_LOG", log, 1);
}

void harness_pause_disarm(void)
{
	unsetenv("LOCKMGR_TEST_PAUSE");
	unsetenv("LOCKMGR_TEST_PAUSE_LOG");
}

/* The pid that logged point in the log file, or 0. */
static pid_t logged_pid(const char *log, const char *point)
{
	char buf[4096];
	if (harness_read_file(log, buf, sizeof(buf)) < 0)
		return 0;
	size_t len = strlen(point);
	for (char *line = buf; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(line, point, len) == 0 && line[len] == ' ')
			return (pid_t)atoi(line + len + 1);
		line = next;
	}
	return 0;
}

pid_t harness_paused(const char *log, const char *point)
{
	pid_t pid = logged_pid(log, point);
	return pid > 0 && harness_proc_state(pid) == 'T' ? pid : 0;
}

pid_t harness_wait_paused(const char *log, const char *point,
			  int64_t timeout_ms)
{
	pid_t pid = 0;
	HARNESS_WAIT_FOR((pid = logged_pid(log, point)) > 0 &&
				 harness_proc_state(pid) == 'T',
			 timeout_ms, "no process stopped at pause point %s "
			 "within %lld ms", point, (long long)timeout_ms);
	return pid;
}

void harness_resume(pid_t pid)
{
	if (kill(pid, SIGCONT) != 0)
		fail_msg("SIGCONT %d: %s", (int)pid, strerror(errno));
}

/* ---- lockmgrd ----------------------------------------------------- */

void harness_wait_servers_up(const char *region, pid_t supervisor,
			     int64_t timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	char why[256] = "";
	const char *last = "region not attachable";
	for (;;) {
		if (supervisor > 0) {
			int status;
			pid_t r = waitpid(supervisor, &status, WNOHANG);
			if (r == supervisor) {
				char b[96];
				fail_msg("lockmgrd for %s ended (%s) before it "
					 "served the region", region,
					 harness_status_str(status, b,
							    sizeof(b)));
			}
		}
		struct lm_region r;
		if (lm_region_attach(&r, region, why, sizeof(why)) == 0) {
			int64_t now = harness_now_ms();
			unsigned up = 0;
			for (unsigned i = 0; i < LM_NSERVERS; i++) {
				uint64_t st = atomic_load(&r.servers[i]->state);
				int64_t hb = atomic_load(
					&r.servers[i]->heartbeat_ms);
				if (LM_SRV_STATE(st) == LM_SRV_UP &&
				    now - hb < 200)
					up++;
			}
			/* RUNNING by this supervisor: a killed one leaves
			 * RUNNING (and its servers) behind. */
			bool running = atomic_load(&r.hdr->supervisor_state) ==
					       LM_SUP_RUNNING &&
				       (supervisor <= 0 ||
					atomic_load(&r.hdr->supervisor_pid) ==
						supervisor);
			lm_region_detach(&r);
			if (running && up == LM_NSERVERS)
				return;
			last = running ? "not all servers UP"
				       : "supervisor not RUNNING";
		}
		if (harness_now_ms() > deadline)
			fail_msg("lockmgrd did not serve %s with 3 servers UP "
				 "within %lld ms (%s; %s)", region,
				 (long long)timeout_ms, last, why);
		harness_nap_us(1000);
	}
}

void harness_lockmgrd_start(struct harness_lockmgrd *d, const char *tag, ...)
{
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	if (access(bin, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", bin,
			 harness_bin_dir());
	harness_region_name(d->region, sizeof(d->region), tag);
	char *argv[32];
	int n = 0;
	argv[n++] = bin;
	argv[n++] = "-r";
	argv[n++] = d->region;
	/* LOCKMGR_TEST_VERBOSE=1 shows lockmgrd's log (debugging). */
	const char *verbose = getenv("LOCKMGR_TEST_VERBOSE");
	if (verbose == NULL || *verbose == '\0' || *verbose == '0')
		argv[n++] = "-q";
	argv[n++] = "--max-ttl";
	argv[n++] = "2000";
	argv[n++] = "--max-locks";
	argv[n++] = "4096";
	va_list ap;
	va_start(ap, tag);
	const char *a;
	bool state_dir = false;
	while ((a = va_arg(ap, const char *)) != NULL && n < 30) {
		state_dir |= strcmp(a, "--state-dir") == 0;
		argv[n++] = (char *)a;
	}
	va_end(ap);
	/* Nothing on disk unless the case asks for a state directory. */
	if (!state_dir)
		argv[n++] = "--ephemeral";
	argv[n] = NULL;
	d->pid = harness_spawn(argv, NULL, NULL);
	harness_wait_servers_up(d->region, d->pid, 15000);
}

void harness_lockmgrd_stop(struct harness_lockmgrd *d)
{
	if (d->pid <= 0)
		return;
	pid_t pid = d->pid;
	d->pid = 0;
	if (kill(pid, SIGTERM) != 0)
		fail_msg("kill(lockmgrd %d, SIGTERM): %s", (int)pid,
			 strerror(errno));
	int status = harness_reap(pid, 10000, "lockmgrd after SIGTERM");
	char b[96];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("lockmgrd did not stop cleanly on SIGTERM: %s",
			 harness_status_str(status, b, sizeof(b)));
	int fd = shm_open(d->region, O_RDONLY, 0);
	if (fd >= 0) {
		close(fd);
		fail_msg("lockmgrd stopped but left region %s behind",
			 d->region);
	}
}

pid_t harness_lockmgrd_spawn(const char *region, const char *const *extra)
{
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "lockmgrd");
	char *argv[24] = {bin, "-r", (char *)region};
	int n = 3;
	const char *verbose = getenv("LOCKMGR_TEST_VERBOSE");
	if (verbose == NULL || *verbose == '\0' || *verbose == '0')
		argv[n++] = "-q";
	while (extra != NULL && *extra != NULL && n < 23)
		argv[n++] = (char *)*extra++;
	argv[n] = NULL;
	return harness_spawn(argv, NULL, NULL);
}

void harness_attach(const char *region, struct lm_region *r)
{
	char why[256] = "";
	int rc = lm_region_attach(r, region, why, sizeof(why));
	if (rc != 0)
		fail_msg("attach %s: error %d (%s)", region, rc, why);
}

uint32_t harness_server_state(const struct lm_region *r, unsigned i)
{
	return LM_SRV_STATE(atomic_load(&r->servers[i]->state));
}

int harness_lockctl(const char *region, const char *a1, const char *a2,
		    const char *a3, const char *a4)
{
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "lockctl");
	char *argv[] = {bin, "-r", (char *)region, (char *)a1, (char *)a2,
			(char *)a3, (char *)a4, NULL};
	return harness_run(argv, NULL, "/dev/null", 10000);
}

int harness_ctl(const char *dir, char *out, size_t outn, char *err,
		size_t errn, ...)
{
	char bin[512];
	harness_bin_path(bin, sizeof(bin), "lockctl");
	char *argv[32];
	int n = 0;
	argv[n++] = bin;
	va_list ap;
	va_start(ap, errn);
	char *a;
	while ((a = va_arg(ap, char *)) != NULL && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	char o[512], e[512];
	snprintf(o, sizeof(o), "%s/out", dir);
	snprintf(e, sizeof(e), "%s/err", dir);
	int code = harness_run(argv, o, e, 20000);
	if (out != NULL && harness_read_file(o, out, outn) < 0)
		out[0] = '\0';
	if (err != NULL && harness_read_file(e, err, errn) < 0)
		err[0] = '\0';
	return code;
}

void harness_kill_server(const char *region, const struct lm_region *r,
			 unsigned i, bool wipe)
{
	char n[8];
	snprintf(n, sizeof(n), "%u", i);
	uint64_t epoch = LM_SRV_EPOCH(atomic_load(&r->servers[i]->state));
	int rc = harness_lockctl(region, "server", "kill", n,
				 wipe ? "--wipe" : NULL);
	if (rc != 0)
		fail_msg("lockctl server kill %u exited %d", i, rc);
	/* Down, or already restarted: with the default restart delay of
	 * 100 ms a test descheduled that long on a loaded host never sees
	 * the down state, only the next epoch. */
	HARNESS_WAIT_FOR(harness_server_state(r, i) == LM_SRV_DOWN ||
				 LM_SRV_EPOCH(atomic_load(
					 &r->servers[i]->state)) != epoch,
			 5000, "server %u never went down after a kill", i);
}

void harness_reap_orphans(void)
{
	int64_t deadline = harness_now_ms() + 5000;
	for (;;) {
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p < 0 && errno == ECHILD)
			return;
		if (harness_now_ms() > deadline)
			fail_msg("orphaned processes did not exit within 5 s");
		if (p <= 0)
			harness_nap_us(1000);
	}
}

/* Does a process named comm run in this case's process group? */
bool harness_group_runs(const char *comm)
{
	DIR *dir = opendir("/proc");
	if (dir == NULL)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(dir)) != NULL) {
		int pid = atoi(de->d_name);
		if (pid <= 0)
			continue;
		char path[64], buf[512], name[64];
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (harness_read_file(path, buf, sizeof(buf)) <= 0)
			continue;
		/* pid (comm) state ppid pgrp ... */
		char *close_paren = strrchr(buf, ')');
		char *open_paren = strchr(buf, '(');
		if (close_paren == NULL || open_paren == NULL ||
		    close_paren - open_paren - 1 >= (long)sizeof(name))
			continue;
		size_t len = (size_t)(close_paren - open_paren - 1);
		memcpy(name, open_paren + 1, len);
		name[len] = '\0';
		char state;
		int ppid, pgrp;
		if (sscanf(close_paren + 2, "%c %d %d", &state, &ppid, &pgrp) !=
		    3)
			continue;
		found = pgrp == (int)getpgrp() && state != 'Z' &&
			strcmp(name, comm) == 0;
	}
	closedir(dir);
	return found;
}

/* ---- multi-process cases ----------------------------------------- */

static void case_trampoline(void *arg)
{
	void (*fn)(void) = (void (*)(void))arg;
	fn();
}

/*
 * List "pid (comm) state" of the processes in group pgid into buf;
 * return how many are still running (not zombies). A zombie is already
 * dead: its parent exited without reaping it (for example the exit-time
 * LeakSanitizer tracer of a process killed during its leak check, in a
 * SAN=1 build), and it is only ours to reap.
 */
static int describe_group(pid_t pgid, char *buf, size_t n)
{
	buf[0] = '\0';
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	size_t used = 0;
	int running = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[300], st[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (harness_read_file(path, st, sizeof(st)) <= 0)
			continue;
		/* pid (comm) state ppid pgrp ...; comm may hold spaces */
		char *rp = strrchr(st, ')');
		char state;
		int ppid, pgrp;
		if (rp == NULL ||
		    sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 ||
		    pgrp != (int)pgid)
			continue;
		*rp = '\0';
		if (state != 'Z' && state != 'X')
			running++;
		int w = snprintf(buf + used, n - used, "%s %s) %c; ",
				 e->d_name, strchr(st, '(') ? strchr(st, '(')
							    : "(?", state);
		if (w < 0 || (size_t)w >= n - used)
			break;
		used += (size_t)w;
	}
	closedir(d);
	return running;
}

/* Kill what is left of process group pgid and reap it (we are a child
 * subreaper, so orphans of the group are ours). Returns how many were
 * still running. */
static int kill_and_reap_group(pid_t pgid, char *desc, size_t descn)
{
	int running = describe_group(pgid, desc, descn);
	int reaped = 0;
	int64_t deadline = harness_now_ms() + 10000;
	for (;;) {
		killpg(pgid, SIGKILL);
		int status;
		pid_t r = waitpid(-pgid, &status, WNOHANG);
		if (r > 0) {
			reaped++;
			size_t used = strlen(desc);
			char b[64];
			snprintf(desc + used, descn - used, "[%d: %s] ", (int)r,
				 harness_status_str(status, b, sizeof(b)));
			continue;
		}
		if (r < 0 && errno == ECHILD)
			return reaped > 0 ? running : 0;
		if (r < 0 && errno != EINTR)
			fail_msg("waitpid(-%d): %s", (int)pgid,
				 strerror(errno));
		if (harness_now_ms() > deadline)
			fail_msg("processes of case group %d survive SIGKILL",
				 (int)pgid);
		harness_nap_us(1000);
	}
}

/*
 * If the test binary itself is killed (run.sh's timeout sends SIGTERM,
 * a user presses ^C, a unit test's alarm fires), take the running case's
 * process group and shm objects with it: the case runs in its own
 * process group, which a signal to ours would not reach.
 */
static pid_t handler_owner;
static volatile pid_t running_case_pgid;

static void on_fatal_signal(int sig)
{
	if (getpid() == handler_owner) {
		static const char msg[] = "harness: killed by a signal; "
					  "cleaning up the running case\n";
		ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
		pid_t pg = running_case_pgid;
		if (pg > 0) {
			killpg(pg, SIGKILL);
			harness_cleanup_leftovers(pg);
		}
		harness_cleanup_leftovers(handler_owner);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_fatal_handlers(void)
{
	if (handler_owner == getpid())
		return;
	handler_owner = getpid();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
}

void harness_run_case(const char *name, void (*fn)(void), int timeout_s)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	install_fatal_handlers();
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p < 0)
		fail_msg("fork: %s", strerror(errno));
	if (p == 0) {
		setpgid(0, 0);
		case_pid = getpid();
		name_counter = 0;
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		alarm((unsigned)timeout_s);
		child_main(case_trampoline, (void *)fn);
	}
	setpgid(p, p); /* also here: no race with the child's own call */
	running_case_pgid = p;
	int status = 0;
	bool done = harness_wait_pid(p, (int64_t)timeout_s * 1000 + 2000,
				     &status);
	if (!done) {
		killpg(p, SIGKILL);
		kill(p, SIGKILL);
		harness_wait_pid(p, 5000, &status);
	}
	char leftovers[1024];
	int left = kill_and_reap_group(p, leftovers, sizeof(leftovers));
	running_case_pgid = 0;
	int regions = harness_cleanup_leftovers(p);
	char b[96];
	if (!done)
		fail_msg("%s: timed out after %d s (its process group was "
			 "killed)", name, timeout_s);
	if (WIFSIGNALED(status))
		fail_msg("%s: the case process was %s%s", name,
			 harness_status_str(status, b, sizeof(b)),
			 WTERMSIG(status) == SIGALRM ? " (alarm: timed out)"
						     : "");
	if (WEXITSTATUS(status) != 0)
		fail_msg("%s: failed (%s; see the assertion above)", name,
			 harness_status_str(status, b, sizeof(b)));
	if (left > 0)
		fail_msg("%s: passed but left %d process(es) running: %s", name,
			 left, leftovers);
	if (regions > 0)
		fail_msg("%s: passed but left %d shm region(s) behind", name,
			 regions);
}

/* ---- in-process unit tests ---------------------------------------- */

int harness_unit_setup(void **state)
{
	(void)state;
	/* A hang kills the binary (SIGALRM, after removing this process's
	 * regions), which run.sh counts as a failure. */
	install_fatal_handlers();
	alarm(60);
	return 0;
}

int harness_unit_teardown(void **state)
{
	(void)state;
	alarm(0);
	/* A failed case leaves its region behind: remove it quietly (the
	 * failure is already reported; failing the teardown too would
	 * only garble cmocka's report). */
	harness_cleanup_leftovers(current_case_pid());
	return 0;
}

char harness_proc_state(pid_t pid)
{
	char path[64], st[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (harness_read_file(path, st, sizeof(st)) <= 0)
		return '?';
	/* The command name may hold spaces and parentheses. */
	const char *rp = strrchr(st, ')');
	return rp != NULL && rp[1] == ' ' && rp[2] != '\0' ? rp[2] : '?';
}
