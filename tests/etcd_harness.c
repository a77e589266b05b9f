/*
 * etcd_harness.c - start and stop a real etcd for the tests
 * (etcd_harness.h).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd_harness.h"

const char *etcd_h_binary(void)
{
	const char *b = getenv("LOCKMGR_ETCD");
	if (b == NULL || *b == '\0')
		b = "/usr/bin/etcd";
	return access(b, X_OK) == 0 ? b : NULL;
}

/* A loopback port nobody listens on now (the kernel's pick). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

struct body {
	char *out;
	size_t n, len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t k = size * nmemb;
	if (b->len + k + 1 <= b->n) {
		memcpy(b->out + b->len, p, k);
		b->len += k;
		b->out[b->len] = '\0';
	}
	return k;
}

int etcd_h_post(const struct etcd_h *h, unsigned i, const char *path,
		const char *body, char *out, size_t n)
{
	CURL *c = curl_easy_init();
	if (c == NULL)
		return -1;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", h->client_port[i],
		 path);
	struct body b = {out, n, 0};
	out[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return rc == CURLE_OK && status == 200 ? 0 : -1;
}

static void spawn_member(struct etcd_h *h, unsigned i)
{
	char name[16], data[300], log[300], curls[64], purls[64];
	snprintf(name, sizeof(name), "m%u", i);
	snprintf(data, sizeof(data), "%s/%s.etcd", h->dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", h->dir, name);
	snprintf(curls, sizeof(curls), "http://127.0.0.1:%d", h->client_port[i]);
	snprintf(purls, sizeof(purls), "http://127.0.0.1:%d", h->peer_port[i]);
	struct stat st;
	bool fresh = stat(data, &st) != 0;
	char *const argv[] = {
		(char *)etcd_h_binary(), "--name", name, "--data-dir", data,
		"--listen-client-urls", curls, "--advertise-client-urls", curls,
		"--listen-peer-urls", purls, "--initial-advertise-peer-urls",
		purls, "--initial-cluster", h->cluster,
		"--initial-cluster-state", fresh ? "new" : "existing",
		"--initial-cluster-token", h->dir,
		"--heartbeat-interval", "25", "--election-timeout", "250",
		"--log-level", "warn", NULL};
	h->pid[i] = harness_spawn(argv, log, log);
	assert_true(h->pid[i] > 0);
}

static bool healthy(struct etcd_h *h, unsigned i)
{
	char out[256];
	return etcd_h_post(h, i, "/health", NULL, out, sizeof(out)) == 0 &&
	       strstr(out, "\"true\"") != NULL;
}

static void wait_healthy(struct etcd_h *h, unsigned i)
{
	int64_t deadline = harness_now_ms() + 15000;
	while (!healthy(h, i)) {
		int st;
		if (harness_wait_pid(h->pid[i], 0, &st)) {
			char buf[160], logp[300], tail[2048] = "";
			snprintf(logp, sizeof(logp), "%s/m%u.log", h->dir, i);
			harness_read_file(logp, tail, sizeof(tail));
			h->pid[i] = 0;
			fail_msg("etcd member %u exited (%s) before it was "
				 "healthy; its log: %s", i,
				 harness_status_str(st, buf, sizeof(buf)), tail);
		}
		if (harness_now_ms() > deadline)
			fail_msg("etcd member %u (port %d) not healthy within "
				 "15 s", i, h->client_port[i]);
		harness_nap_us(20000);
	}
}

void etcd_h_start(struct etcd_h *h, unsigned n, const char *prefix)
{
	assert_true(n >= 1 && n <= ETCD_H_MAX);
	memset(h, 0, sizeof(*h));
	h->n = n;
	harness_tmpdir(h->dir, sizeof(h->dir));
	size_t off = 0, aoff;
	aoff = (size_t)snprintf(h->addr, sizeof(h->addr), "etcd://");
	for (unsigned i = 0; i < n; i++) {
		h->client_port[i] = free_port();
		h->peer_port[i] = free_port();
		off += (size_t)snprintf(h->cluster + off, sizeof(h->cluster) - off,
					"%sm%u=http://127.0.0.1:%d",
					i ? "," : "", i, h->peer_port[i]);
		aoff += (size_t)snprintf(h->addr + aoff, sizeof(h->addr) - aoff,
					 "%s127.0.0.1:%d", i ? "," : "",
					 h->client_port[i]);
	}
	snprintf(h->addr + aoff, sizeof(h->addr) - aoff, "%s", prefix);
	for (unsigned i = 0; i < n; i++)
		spawn_member(h, i);
	for (unsigned i = 0; i < n; i++)
		wait_healthy(h, i);
}

void etcd_h_restart(struct etcd_h *h, unsigned i)
{
	assert_int_equal(h->pid[i], 0);
	spawn_member(h, i);
	wait_healthy(h, i);
}

void etcd_h_kill(struct etcd_h *h, unsigned i)
{
	assert_true(h->pid[i] > 0);
	assert_int_equal(kill(h->pid[i], SIGKILL), 0);
	harness_reap(h->pid[i], 5000, "SIGKILLed etcd member");
	h->pid[i] = 0;
}

unsigned etcd_h_leader(struct etcd_h *h)
{
	int64_t deadline = harness_now_ms() + 10000;
	for (;;) {
		for (unsigned i = 0; i < h->n; i++) {
			char out[1024];
			if (h->pid[i] == 0 ||
			    etcd_h_post(h, i, "/v3/maintenance/status", "{}",
					out, sizeof(out)) != 0)
				continue;
			/* {"header":{..."member_id":"M"...},..."leader":"L"} */
			char *m = strstr(out, "\"member_id\":\"");
			char *l = strstr(out, "\"leader\":\"");
			if (m != NULL && l != NULL &&
			    strtoull(m + 13, NULL, 10) ==
				    strtoull(l + 10, NULL, 10))
				return i;
		}
		if (harness_now_ms() > deadline)
			fail_msg("no etcd member says it leads within 10 s");
		harness_nap_us(20000);
	}
}

void etcd_h_stop(struct etcd_h *h)
{
	for (unsigned i = 0; i < h->n; i++) {
		if (h->pid[i] == 0)
			continue;
		kill(h->pid[i], SIGTERM);
		int st;
		if (!harness_wait_pid(h->pid[i], 5000, &st)) {
			kill(h->pid[i], SIGKILL);
			harness_reap(h->pid[i], 5000, "etcd member");
		}
		h->pid[i] = 0;
	}
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", h->dir);
}
