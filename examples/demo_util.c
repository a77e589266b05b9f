/*
 * demo_util.c - supervisor start/stop and the timeline for the examples.
 */
#include "demo_util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "clients.h"
#include "resource/store.h"
#include "shm/clock.h"

static void pick_lockmgrd(const char *argv0, const char *given, char *out,
			  size_t outlen)
{
	if (given != NULL) {
		snprintf(out, outlen, "%s", given);
		return;
	}
	/* Next to the demo binary (build/examples/.. -> build/lockmgrd). */
	char self[PATH_MAX / 2];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(out, outlen, "%s/../lockmgrd", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	(void)argv0;
	snprintf(out, outlen, "lockmgrd"); /* from $PATH */
}

/* Wait until a client can be granted a lock: servers up, quorum met. */
static int wait_for_quorum(const char *region, int64_t timeout_ms)
{
	int64_t deadline = lm_now_ms() + timeout_ms;
	int rc;
	do {
		lm_client *c;
		rc = lm_connect(region, &c);
		if (rc == 0) {
			lm_grant g;
			rc = lm_acquire(c, "lockmgr/demo-ready", 100, 0, &g);
			if (rc == 0)
				lm_release(c, &g);
			lm_disconnect(c);
			if (rc == 0 || rc == LM_EBUSY)
				return 0;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	} while (lm_now_ms() < deadline);
	return rc;
}

/* Once per demo: the command that shows the region as it changes. */
static void say_watch_live(const struct demo *d)
{
	static bool said;
	if (said)
		return;
	said = true;
	char path[PATH_MAX];
	const char *lockctl = d->lockctl;
	/* build/examples/../lockctl reads better as the path it is. */
	if (strstr(lockctl, "/../") != NULL && realpath(lockctl, path) != NULL)
		lockctl = path;
	printf("watch it live: run '%s -r %s top' in another terminal\n",
	       lockctl, d->region);
}

void demo_setup(struct demo *d, const char *argv0, const char *lockmgrd_path,
		const char *const *extra_args)
{
	memset(d, 0, sizeof(*d));
	d->t0_ns = lm_now_ns();
	char path[PATH_MAX];
	pick_lockmgrd(argv0, lockmgrd_path, path, sizeof(path));
	/* lockctl sits next to lockmgrd (build/ or the install's bin/). */
	if (strchr(path, '/') != NULL)
		snprintf(d->lockctl, sizeof(d->lockctl), "%.*s/lockctl",
			 (int)(strrchr(path, '/') - path), path);
	else
		snprintf(d->lockctl, sizeof(d->lockctl), "lockctl");
	const char *env = getenv("LOCKMGR_REGION");
	if (env != NULL && *env != '\0' && wait_for_quorum(env, 200) == 0) {
		snprintf(d->region, sizeof(d->region), "%s", env);
		printf("using the running lock service on %s\n", d->region);
		say_watch_live(d);
		return;
	}
	snprintf(d->region, sizeof(d->region), "/lockmgr-demo-%d",
		 (int)getpid());
	/* A demo wants nothing on disk: its region is its own. */
	const char *argv[32] = {path, "--region", d->region, "--quiet",
				"--ephemeral"};
	int argc = 5;
	for (int i = 0; extra_args != NULL && extra_args[i] != NULL &&
			argc < 31; i++)
		argv[argc++] = extra_args[i];
	argv[argc] = NULL;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		execvp(path, (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	d->supervisor = pid;
	int rc = wait_for_quorum(d->region, 5000);
	if (rc != 0) {
		fprintf(stderr, "the lock service did not come up on %s: %s\n",
			d->region, lm_strerror(rc));
		demo_teardown(d);
		exit(1);
	}
	printf("started lockmgrd (pid %d) on region %s: 3 lock servers, "
	       "quorum 2\n", (int)pid, d->region);
	say_watch_live(d);
	d->t0_ns = lm_now_ns();
}

void demo_teardown(struct demo *d)
{
	if (d->supervisor <= 0)
		return;
	kill(d->supervisor, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(d->supervisor, NULL, WNOHANG) == d->supervisor) {
			d->supervisor = 0;
			return;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "lockmgrd (pid %d) did not stop; killing it\n",
		(int)d->supervisor);
	kill(d->supervisor, SIGKILL);
	waitpid(d->supervisor, NULL, 0);
	d->supervisor = 0;
}

void demo_pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int demo_lockctl(const struct demo *d, const char *const *args)
{
	const char *argv[16] = {d->lockctl, "-r", d->region};
	int argc = 3;
	char cmd[256] = "lockctl";
	size_t used = strlen(cmd);
	for (int i = 0; args[i] != NULL && argc < 15; i++) {
		argv[argc++] = args[i];
		used += (size_t)snprintf(cmd + used, sizeof(cmd) - used, " %s",
					 args[i]);
		if (used >= sizeof(cmd))
			used = sizeof(cmd) - 1;
	}
	argv[argc] = NULL;
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	char out[1024];
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(out) - 1 &&
	       (k = read(p[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)k;
	close(p[0]);
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
	int status = 0;
	waitpid(pid, &status, 0);
	demo_event(d, "operator", "$", 0, "%s -> %s", cmd, out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The timeline's columns: time, who, event (wide enough for "release
 * failed"), token, and a note. */
#define EVENT_WIDTH 14

void demo_header(void)
{
	printf("  %9s  %-10s %-*s %s\n", "time", "who", EVENT_WIDTH, "event",
	       "token");
	fflush(stdout);
}

void demo_event(const struct demo *d, const char *who, const char *event,
		uint64_t token, const char *fmt, ...)
{
	char line[512];
	double t = (double)(lm_now_ns() - d->t0_ns) / 1e9;
	int n = snprintf(line, sizeof(line), "  %+8.3fs  %-10s %-*s", t, who,
			 EVENT_WIDTH, event);
	if (token != 0)
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      " token %-5llu", (unsigned long long)token);
	else
		n += snprintf(line + n, sizeof(line) - (size_t)n, " %11s", "");
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		va_end(ap);
	}
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines from different processes stay whole. */
	ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
	(void)w;
}

void demo_release_failed(const struct demo *d, const char *who,
			 uint64_t token, int rc)
{
	if (rc == LM_ELEASELOST)
		demo_event(d, who, "release failed", token,
			   "its lease had already been lost");
	else
		demo_event(d, who, "release failed", token, "%s",
			   lm_strerror(rc));
}

void demo_client_event(const struct client_spec *s, int ev, int round,
		       const lm_grant *g, int rc, uint64_t highest)
{
	const struct demo *d = s->arg;
	char who[32];
	snprintf(who, sizeof(who), "client %d", s->id);
	(void)round;
	switch ((enum client_event)ev) {
	case EV_WANTS:
		demo_event(d, who, "wants", 0, "the lock");
		break;
	case EV_ACQUIRED:
		demo_event(d, who, "acquired", g->token, "%s",
			   g->flags & LM_GRANT_RECOVERED
				   ? "(previous holder died or lost its "
				     "lease: check the data)"
				   : "");
		break;
	case EV_REFUSED:
		demo_event(d, who, "refused", 0, "%s", lm_strerror(rc));
		break;
	case EV_WROTE:
		demo_event(d, who, "wrote", g->token,
			   "the store accepted it");
		break;
	case EV_REJECTED:
		demo_event(d, who, "REJECTED", g->token,
			   "the store has seen token %llu: this write is "
			   "stale", (unsigned long long)highest);
		break;
	case EV_READ:
		demo_event(d, who, "read", g->token,
			   "the store's highest token is %llu%s",
			   (unsigned long long)highest,
			   highest > g->token ? ": a later writer wrote, "
						"this read is stale"
					      : "");
		break;
	case EV_RELEASED:
		if (rc == 0)
			demo_event(d, who, "released", g->token, NULL);
		else
			demo_release_failed(d, who, g->token, rc);
		break;
	case EV_CRASHING:
		demo_event(d, who, "CRASHES", g != NULL ? g->token : 0,
			   "%s", client_crash_how_name(s->crash_how));
		break;
	}
}

static int print_record(const struct fs_record *rec, void *arg)
{
	(void)arg;
	if (rec->type == FS_REC_ACCEPT)
		printf("  %4llu  token %-5llu pid %-7u accepted  \"%.*s\"\n",
		       (unsigned long long)rec->seq,
		       (unsigned long long)rec->token, rec->pid,
		       (int)rec->len, (const char *)rec->data);
	else
		printf("  %4llu  token %-5llu pid %-7u REJECTED  (the store had "
		       "seen token %llu)\n",
		       (unsigned long long)rec->seq,
		       (unsigned long long)rec->token, rec->pid,
		       (unsigned long long)rec->highest);
	return 0;
}

void demo_print_store(const char *path)
{
	fs_store *st;
	int rc = fs_open(path, FS_RDONLY, &st);
	if (rc != 0) {
		printf("cannot open the store %s: %s\n", path, fs_strerror(rc));
		return;
	}
	struct fs_stats stats;
	printf("\nThe resource's log (%s):\n", path);
	rc = fs_read_stats(st, &stats, print_record, NULL);
	if (rc != 0)
		printf("  (read failed: %s)\n", fs_strerror(rc));
	printf("  %llu accepted, %llu rejected, highest token %llu\n",
	       (unsigned long long)stats.accepted,
	       (unsigned long long)stats.rejected,
	       (unsigned long long)stats.highest);
	fs_close(st);
}

void demo_wait_flag(_Atomic int *flag, int64_t timeout_ms, const char *what)
{
	int64_t deadline = lm_now_ms() + timeout_ms;
	while (!atomic_load(flag)) {
		if (lm_now_ms() > deadline) {
			fprintf(stderr, "demo: timed out waiting for %s\n",
				what);
			exit(1);
		}
		demo_pause_ms(2);
	}
}

int demo_options(int argc, char **argv, const char *name,
		 const char **lockmgrd)
{
	static const struct option opts[] = {
		{"lockmgrd", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*lockmgrd = NULL;
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == 'l') {
			*lockmgrd = optarg;
			continue;
		}
		fprintf(o == 'h' ? stdout : stderr,
			"Usage: %s [--lockmgrd PATH]\n", name);
		return o == 'h' ? 0 : 64;
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", name,
			argv[optind]);
		return 64;
	}
	return -1;
}

pid_t demo_fork_client(const struct client_spec *s)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(run_client(s) == 0 ? 0 : 1);
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	return pid;
}
