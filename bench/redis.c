/*
 * redis.c - starting, checking and stopping our own redis-server.
 */
#include "redis.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static volatile pid_t server_pid;
static char dir[256];      /* the private directory, "" if none */
static char sock[300];     /* dir/redis.sock */
static char exe[1024];     /* the redis-server we run */

/* name looked up in PATH (or taken as is if it has a '/'). */
static bool find_exe(const char *name, char *out, size_t n)
{
	if (strchr(name, '/') != NULL) {
		snprintf(out, n, "%s", name);
		return access(out, X_OK) == 0;
	}
	const char *path = getenv("PATH");
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	char *copy = strdup(path), *save = NULL;
	bool found = false;
	for (char *d = strtok_r(copy, ":", &save); d != NULL && !found;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(out, n, "%s/%s", d, name);
		found = access(out, X_OK) == 0;
	}
	free(copy);
	return found;
}

bool redis_available(char *why, size_t n)
{
	const char *want = bench_cfg.redis_server != NULL
				   ? bench_cfg.redis_server
				   : "redis-server";
	if (find_exe(want, exe, sizeof(exe)))
		return true;
	snprintf(why, n, "%s not found%s (Debian: apt-get install "
		 "redis-server)", want,
		 strchr(want, '/') != NULL ? "" : " in PATH");
	return false;
}

const char *redis_socket(void)
{
	return sock;
}

/* Does it answer PING on the socket? */
static bool answers(void)
{
	struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
	redisContext *c = redisConnectUnixWithTimeout(sock, tv);
	bool ok = false;
	if (c != NULL && c->err == 0) {
		redisReply *r = redisCommand(c, "PING");
		ok = r != NULL && r->type == REDIS_REPLY_STATUS &&
		     strcmp(r->str, "PONG") == 0;
		if (r != NULL)
			freeReplyObject(r);
	}
	if (c != NULL)
		redisFree(c);
	return ok;
}

static void remove_dir(void)
{
	if (dir[0] == '\0')
		return;
	unlink(sock);
	rmdir(dir);
	dir[0] = '\0';
}

int redis_start(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/lockbench-redis-%d-XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp", (int)getpid());
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "lockbench: cannot create %s: %s\n", dir,
			strerror(errno));
		dir[0] = '\0';
		return -1;
	}
	snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
	/* No TCP port, no persistence, nothing in the directory but the
	 * socket; the log (warnings only) goes to our stderr. */
	char *argv[] = {
		exe, "--port", "0", "--unixsocket", sock,
		"--unixsocketperm", "700", "--dir", dir, "--save", "",
		"--appendonly", "no", "--daemonize", "no",
		"--loglevel", "warning", "--logfile", "", NULL,
	};
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("lockbench: fork");
		remove_dir();
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			dup2(nul, STDOUT_FILENO);
		}
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		/* A lockbench killed with SIGKILL runs no handler: the server
		 * must not outlive it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "lockbench: exec %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	server_pid = pid;
	int64_t deadline = bench_now_ns() + INT64_C(10) * 1000000000;
	while (!answers()) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			server_pid = 0;
			fprintf(stderr, "lockbench: redis-server exited "
					"(status 0x%x) before answering on %s\n",
				st, sock);
			remove_dir();
			return -1;
		}
		if (bench_now_ns() > deadline) {
			fprintf(stderr, "lockbench: redis-server did not answer "
					"on %s within 10 s\n", sock);
			redis_stop();
			return -1;
		}
		bench_sleep_ns(5000000);
	}
	return 0;
}

void redis_stop(void)
{
	pid_t pid = server_pid;
	if (pid > 0) {
		kill(pid, SIGTERM);
		int64_t deadline = bench_now_ns() + INT64_C(10) * 1000000000;
		int st;
		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (bench_now_ns() > deadline) {
				fprintf(stderr, "lockbench: redis-server did "
						"not stop on SIGTERM within "
						"10 s; killing it\n");
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				break;
			}
			bench_sleep_ns(2000000);
		}
		server_pid = 0;
	}
	remove_dir();
}

void redis_stop_signal_safe(void)
{
	if (server_pid > 0)
		kill(server_pid, SIGTERM);
	if (dir[0] != '\0') {
		unlink(sock);
		rmdir(dir);
	}
}
