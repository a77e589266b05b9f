/*
 * etcd_cluster.c - start and stop a private etcd for lockbench
 * (etcd_cluster.h).
 */
#include "etcd_cluster.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* Every member of every cluster still running, for the signal handler
 * (two clusters at most run at once: 1 + 3 members). */
#define LIVE_MAX 8
static volatile pid_t live[LIVE_MAX];

static void live_add(pid_t pid)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i] == 0) {
			live[i] = pid;
			return;
		}
}

static void live_del(pid_t pid)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i] == pid)
			live[i] = 0;
}

void etcd_cluster_kill_all_signal_safe(void)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i] > 0)
			kill(live[i], SIGKILL);
}

/* name from $env, else the first executable name on PATH. */
static const char *find_binary(const char *env, const char *name, char *buf,
			       size_t n)
{
	const char *e = getenv(env);
	if (e != NULL && *e != '\0') {
		snprintf(buf, n, "%s", e);
		return access(buf, X_OK) == 0 ? buf : NULL;
	}
	const char *path = getenv("PATH");
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len > 0) {
			snprintf(buf, n, "%.*s/%s", (int)len, path, name);
			if (access(buf, X_OK) == 0)
				return buf;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return NULL;
}

const char *etcd_cluster_binary(void)
{
	static char buf[PATH_MAX];
	return find_binary("LOCKMGR_ETCD", "etcd", buf, sizeof(buf));
}

const char *etcd_cluster_ctl_binary(void)
{
	static char buf[PATH_MAX];
	return find_binary("LOCKMGR_ETCDCTL", "etcdctl", buf, sizeof(buf));
}

/*
 * n distinct loopback ports nobody listens on now: each socket is bound
 * to port 0 (the kernel picks from its ephemeral range, never a system
 * etcd's 2379 or 2380) and kept open until all are picked, so no two
 * are alike. Another process may take one before etcd binds it: then
 * that member fails to start and says so in its log.
 */
static int free_ports(int *ports, unsigned n)
{
	int fds[2 * ETCD_CLUSTER_MAX];
	unsigned got = 0;
	int rc = 0;
	for (; got < n; got++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr =
						htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
			if (fd >= 0)
				close(fd);
			rc = -1;
			break;
		}
		fds[got] = fd;
		ports[got] = ntohs(a.sin_port);
	}
	for (unsigned i = 0; i < got; i++)
		close(fds[i]);
	return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void remove_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static size_t sink(char *p, size_t size, size_t nmemb, void *arg)
{
	char *buf = arg;
	size_t k = size * nmemb, have = strlen(buf);
	size_t room = 255 - have;
	memcpy(buf + have, p, k < room ? k : room);
	buf[have + (k < room ? k : room)] = '\0';
	return k;
}

/* Does the member on port answer GET /health with "health":"true"? */
static bool healthy(int port)
{
	CURL *cu = curl_easy_init();
	if (cu == NULL)
		return false;
	char url[64], body[256] = "";
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	/* Loopback: never through a proxy from the environment. */
	curl_easy_setopt(cu, CURLOPT_PROXY, "");
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, (void *)body);
	CURLcode rc = curl_easy_perform(cu);
	long status = 0;
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(cu);
	return rc == CURLE_OK && status == 200 &&
	       strstr(body, "\"health\":\"true\"") != NULL;
}

static pid_t spawn_member(struct etcd_cluster *c, unsigned i,
			  const char *cluster)
{
	char name[16], data[300], log[300], curls[64], purls[64];
	snprintf(name, sizeof(name), "m%u", i);
	snprintf(data, sizeof(data), "%s/%s.etcd", c->dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", c->dir, name);
	snprintf(curls, sizeof(curls), "http://127.0.0.1:%d", c->client_port[i]);
	snprintf(purls, sizeof(purls), "http://127.0.0.1:%d", c->peer_port[i]);
	/* The token is the directory: no member of another run (or a
	 * system etcd) can join this cluster by mistake. */
	const char *token = strrchr(c->dir, '/') + 1;
	char *const argv[] = {
		(char *)etcd_cluster_binary(), "--name", name, "--data-dir",
		data, "--listen-client-urls", curls, "--advertise-client-urls",
		curls, "--listen-peer-urls", purls,
		"--initial-advertise-peer-urls", purls, "--initial-cluster",
		(char *)cluster, "--initial-cluster-state", "new",
		"--initial-cluster-token", (char *)token, "--log-level", "warn",
		NULL};
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* A lockbench that dies without cleaning up (SIGKILL) takes its
	 * etcd with it, rather than leave a server on a port. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || null < 0)
		_exit(127);
	dup2(null, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	execv(argv[0], argv);
	_exit(127);
}

/* The end of member i's log (n - 1 bytes at most), for an error
 * message. */
static void log_tail(const struct etcd_cluster *c, unsigned i, char *out,
		     size_t n)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/m%u.log", c->dir, i);
	out[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)(n - 1) ? end - (off_t)(n - 1) : 0;
	ssize_t k = pread(fd, out, n - 1, from);
	close(fd);
	out[k > 0 ? k : 0] = '\0';
}

int etcd_cluster_start(struct etcd_cluster *c, unsigned n, const char *prefix,
		       int64_t timeout_ms, char *err, size_t errn)
{
	memset(c, 0, sizeof(*c));
	if (n < 1 || n > ETCD_CLUSTER_MAX) {
		snprintf(err, errn, "%u members: 1 to %d only", n,
			 ETCD_CLUSTER_MAX);
		return -1;
	}
	if (etcd_cluster_binary() == NULL) {
		snprintf(err, errn, "no etcd binary ($LOCKMGR_ETCD or etcd on "
				    "PATH)");
		return -1;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(c->dir, sizeof(c->dir), "%s/lockbench-etcd-XXXXXX",
		 tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(c->dir) == NULL) {
		snprintf(err, errn, "mkdtemp %s: %s", c->dir, strerror(errno));
		c->dir[0] = '\0';
		return -1;
	}
	int ports[2 * ETCD_CLUSTER_MAX];
	if (free_ports(ports, 2 * n) != 0) {
		snprintf(err, errn, "no free loopback port: %s",
			 strerror(errno));
		etcd_cluster_stop(c);
		return -1;
	}
	c->n = n;
	char cluster[512];
	size_t off = 0, aoff = 0, eoff = 0;
	aoff += (size_t)snprintf(c->addr, sizeof(c->addr), "etcd://");
	for (unsigned i = 0; i < n; i++) {
		c->client_port[i] = ports[2 * i];
		c->peer_port[i] = ports[2 * i + 1];
		off += (size_t)snprintf(cluster + off, sizeof(cluster) - off,
					"%sm%u=http://127.0.0.1:%d",
					i ? "," : "", i, c->peer_port[i]);
		aoff += (size_t)snprintf(c->addr + aoff, sizeof(c->addr) - aoff,
					 "%s127.0.0.1:%d", i ? "," : "",
					 c->client_port[i]);
		eoff += (size_t)snprintf(c->endpoints + eoff,
					 sizeof(c->endpoints) - eoff,
					 "%s127.0.0.1:%d", i ? "," : "",
					 c->client_port[i]);
	}
	snprintf(c->addr + aoff, sizeof(c->addr) - aoff, "%s", prefix);
	for (unsigned i = 0; i < n; i++) {
		c->pid[i] = spawn_member(c, i, cluster);
		if (c->pid[i] < 0) {
			c->pid[i] = 0;
			snprintf(err, errn, "fork: %s", strerror(errno));
			etcd_cluster_stop(c);
			return -1;
		}
		live_add(c->pid[i]);
	}
	/* Bounded: a member that exits, or a cluster without a leader by
	 * the deadline, fails the start with the member's own words. */
	int64_t deadline = bench_now_ns() + timeout_ms * 1000000;
	for (unsigned i = 0; i < n;) {
		if (healthy(c->client_port[i])) {
			i++;
			continue;
		}
		for (unsigned k = 0; k < n; k++) {
			int st;
			if (waitpid(c->pid[k], &st, WNOHANG) != c->pid[k])
				continue;
			live_del(c->pid[k]);
			c->pid[k] = 0;
			char tail[640];
			log_tail(c, k, tail, sizeof(tail));
			snprintf(err, errn, "etcd member %u exited (status "
					    "0x%x) before it was healthy: %s",
				 k, st, tail);
			etcd_cluster_stop(c);
			return -1;
		}
		if (bench_now_ns() > deadline) {
			snprintf(err, errn, "etcd member %u (port %d) not "
					    "healthy within %lld ms",
				 i, c->client_port[i], (long long)timeout_ms);
			etcd_cluster_stop(c);
			return -1;
		}
		bench_sleep_ns(50 * 1000000);
	}
	return 0;
}

void etcd_cluster_stop(struct etcd_cluster *c)
{
	/* SIGKILL, not SIGTERM: the data is thrown away with the
	 * directory, and a member of three stopped by SIGTERM first tries
	 * to hand its leadership to the others, which are stopping too:
	 * that took 5 s here, for nothing. */
	for (unsigned i = 0; i < c->n; i++)
		if (c->pid[i] > 0)
			kill(c->pid[i], SIGKILL);
	for (unsigned i = 0; i < c->n; i++) {
		if (c->pid[i] <= 0)
			continue;
		while (waitpid(c->pid[i], NULL, 0) < 0 && errno == EINTR)
			;
		live_del(c->pid[i]);
		c->pid[i] = 0;
	}
	if (c->dir[0] != '\0')
		remove_tree(c->dir);
	c->dir[0] = '\0';
	c->n = 0;
}
