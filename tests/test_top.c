/*
 * test_top.c - `lockctl top` against a real lockmgrd: a --once frame
 * shows a forked client's lock (holder pid, token, mode) and the state
 * of each server (up, down after a kill, recovering after a restart
 * under a lease); a batch run (-b) reports the grant, release, lease
 * expiry, death and freed lock of clients driven between its frames,
 * and a server going down; usage errors and a missing region; and the
 * terminal view, under a pseudo-terminal, quits on q, ^C and SIGTERM
 * within a bound, giving the terminal back.
 *
 * Events are waited for by polling top's output for the line, with a
 * deadline: the frames come every 50 ms, so a wait is short unless the
 * event never comes.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "client/lockmgr.h"
#include "shm/clock.h"
#include "shm/name_index.h"

static struct harness_lockmgrd d;
static char lockctl[512];
static char dir[64];

static void setup(bool with_service)
{
	harness_bin_path(lockctl, sizeof(lockctl), "lockctl");
	if (access(lockctl, X_OK) != 0)
		fail_msg("%s is not built (LOCKMGR_BIN=%s)", lockctl,
			 harness_bin_dir());
	harness_tmpdir(dir, sizeof(dir));
	/* --once and -b must need no terminal type. */
	unsetenv("TERM");
	/* A long max TTL: the leases below outlast the case. Manual
	 * restarts: a killed server stays down until the case starts it. */
	if (with_service)
		harness_lockmgrd_start(&d, "top", "--max-ttl", "60000",
				       "--restart-delay", "-1", NULL);
}

static void teardown(void)
{
	harness_lockmgrd_stop(&d);
	const char *files[] = {"out", "err", "err2", "batch", "batch.err"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void path_in(char *out, size_t n, const char *file)
{
	snprintf(out, n, "%s/%s", dir, file);
}

/* lockctl with the NULL-terminated args, its output in the case's dir. */
#define ctl(...) harness_ctl(dir, __VA_ARGS__)

/* The line of text that starts with prefix (copied into line), or
 * NULL. */
static const char *line_starting(const char *text, const char *prefix,
				 char *line, size_t n)
{
	size_t plen = strlen(prefix);
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len >= plen && memcmp(p, prefix, plen) == 0) {
			len = len < n - 1 ? len : n - 1;
			memcpy(line, p, len);
			line[len] = '\0';
			return line;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

/* top --once; fail unless it exits 0 with a frame free of control
 * codes. */
static void top_once(char *out, size_t n)
{
	char err[4096];
	int code = ctl(out, n, err, sizeof(err), "-r", d.region, "top",
		       "--once", NULL);
	if (code != 0)
		fail_msg("lockctl top --once exited %d; stderr: %s", code, err);
	if (strstr(out, "lockctl top - ") == NULL)
		fail_msg("lockctl top --once printed no frame:\n%s", out);
	for (const char *p = out; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 && *p != '\n')
			fail_msg("lockctl top --once wrote control byte 0x%02x "
				 "at offset %td:\n%s", (unsigned char)*p,
				 p - out, out);
}

/* Fail unless the SERVER row of server i in frame out says state. */
static void expect_server(const char *out, unsigned i, const char *state)
{
	char prefix[16], line[512], st[32] = "";
	snprintf(prefix, sizeof(prefix), "%u  ", i);
	if (line_starting(out, prefix, line, sizeof(line)) == NULL)
		fail_msg("no row for server %u in the frame:\n%s", i, out);
	unsigned idx;
	if (sscanf(line, "%u %31s", &idx, st) != 2 || strcmp(st, state) != 0)
		fail_msg("server %u shows as '%s', expected '%s':\n%s", i, st,
			 state, out);
}

/* Does the SERVER row of server i in frame out say state? */
static bool server_shows(const char *out, unsigned i, const char *state)
{
	char prefix[16], line[512], st[32] = "";
	snprintf(prefix, sizeof(prefix), "%u  ", i);
	unsigned idx;
	return line_starting(out, prefix, line, sizeof(line)) != NULL &&
	       sscanf(line, "%u %31s", &idx, st) == 2 && !strcmp(st, state);
}

/*
 * top --once until the SERVER row of each server i says want[i] (NULL:
 * anything), for at most 10 s, and fail with the last frame otherwise.
 * "up" needs a heartbeat fresh at that instant, which a loaded host may
 * let lapse for a moment; a server that stays out fails.
 */
static void top_once_servers(char *out, size_t n, const char *const want[])
{
	int64_t deadline = harness_now_ms() + 10000;
	for (;;) {
		top_once(out, n);
		bool all = true;
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			if (want[i] != NULL && !server_shows(out, i, want[i]))
				all = false;
		if (all || harness_now_ms() > deadline)
			break;
		harness_nap_us(20000);
	}
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (want[i] != NULL)
			expect_server(out, i, want[i]);
}

/* ---- a client driven over pipes ---------------------------------- */

/*
 * A forked client. Commands, one byte each on cmd: 'a' acquires lock
 * name with a TTL of ttl_ms and answers the token (8 bytes), 'r'
 * releases it and answers one byte, 'x' disconnects and exits, 'q'
 * releases, disconnects and exits at once, answering nothing. It never
 * renews. (Not end of file: the clients forked later hold copies of the
 * pipe's write end.)
 */
struct client {
	pid_t pid;
	int cmd;   /* ours to write */
	int reply; /* ours to read */
	int child_cmd, child_reply;
	const char *name;
	int64_t ttl_ms;
};

static void client_main(void *arg)
{
	struct client *cl = arg;
	close(cl->cmd);
	close(cl->reply);
	lm_client *c = NULL;
	int rc = lm_connect(d.region, &c);
	if (rc != 0)
		fail_msg("client: lm_connect: %s", lm_strerror(rc));
	lm_grant g;
	char op;
	while (read(cl->child_cmd, &op, 1) == 1 && op != 'x') {
		if (op == 'a') {
			rc = lm_acquire(c, cl->name, cl->ttl_ms, 5000, &g);
			if (rc != 0)
				fail_msg("client: lm_acquire(%s): %s", cl->name,
					 lm_strerror(rc));
			uint64_t t = g.token;
			assert_int_equal(write(cl->child_reply, &t, sizeof(t)),
					 sizeof(t));
		} else if (op == 'q') {
			assert_int_equal(lm_release(c, &g), 0);
			break;
		} else if (op == 'r') {
			rc = lm_release(c, &g);
			if (rc != 0)
				fail_msg("client: lm_release: %s",
					 lm_strerror(rc));
			assert_int_equal(write(cl->child_reply, "r", 1), 1);
		}
	}
	lm_disconnect(c);
}

static void client_start(struct client *cl, const char *name, int64_t ttl)
{
	int a[2], b[2];
	if (pipe2(a, O_CLOEXEC) != 0 || pipe2(b, O_CLOEXEC) != 0)
		fail_msg("pipe: %s", strerror(errno));
	cl->cmd = a[1];
	cl->child_cmd = a[0];
	cl->reply = b[0];
	cl->child_reply = b[1];
	cl->name = name;
	cl->ttl_ms = ttl;
	cl->pid = harness_fork(client_main, cl);
	close(cl->child_cmd);
	close(cl->child_reply);
}

static void client_send(struct client *cl, char op)
{
	if (write(cl->cmd, &op, 1) != 1)
		fail_msg("client %d: write: %s", (int)cl->pid, strerror(errno));
}

static uint64_t client_acquire(struct client *cl)
{
	client_send(cl, 'a');
	struct pollfd p = {.fd = cl->reply, .events = POLLIN};
	if (poll(&p, 1, 10000) != 1)
		fail_msg("client %d did not acquire %s within 10 s",
			 (int)cl->pid, cl->name);
	uint64_t t;
	if (read(cl->reply, &t, sizeof(t)) != sizeof(t))
		fail_msg("client %d failed to acquire %s (see its message)",
			 (int)cl->pid, cl->name);
	return t;
}

static void client_release(struct client *cl)
{
	client_send(cl, 'r');
	harness_read_byte(cl->reply, 10000, "the client's release");
}

/* The client disconnects and exits 0. */
static void client_finish(struct client *cl)
{
	client_send(cl, 'x');
	close(cl->cmd);
	close(cl->reply);
	harness_expect_exit(cl->pid, 10000, 0, "client");
}

/* ---------------------------------------------------------------- */

static void once_shows_lock_and_servers(void)
{
	setup(true);
	struct lm_region r;
	harness_attach(d.region, &r);
	struct client cl;
	client_start(&cl, "/top/held", 30000);
	uint64_t token = client_acquire(&cl);

	static char out[65536];
	top_once_servers(out, sizeof(out),
			 (const char *const[]){"up", "up", "up"});
	char line[512];
	if (line_starting(out, "/top/held ", line, sizeof(line)) == NULL)
		fail_msg("the frame does not list /top/held:\n%s", out);
	int pid = 0;
	char mode[8] = "";
	unsigned long long tok = 0;
	if (sscanf(line, "/top/held %d %7s %llu", &pid, mode, &tok) != 3)
		fail_msg("cannot read holder, mode and token from '%s'", line);
	if (pid != (int)cl.pid || strcmp(mode, "X") != 0 || tok != token)
		fail_msg("/top/held shows holder %d, mode %s, token %llu; "
			 "expected %d, X, %llu:\n%s", pid, mode, tok,
			 (int)cl.pid, (unsigned long long)token, out);
	if (strstr(line, "] ") == NULL || strstr(line, " ms") == NULL)
		fail_msg("no lease bar for /top/held: '%s'", line);
	/* Its session: SLOT PID STATE HELD. */
	bool seen = false;
	for (const char *p = strstr(out, "\nSLOT "); p != NULL && !seen;
	     p = strchr(p + 1, '\n')) {
		unsigned slot, held;
		int spid;
		char state[16];
		seen = sscanf(p + 1, "%u %d %15s %u", &slot, &spid, state,
			      &held) == 4 &&
		       spid == (int)cl.pid && !strcmp(state, "live") &&
		       held == 1;
	}
	if (!seen)
		fail_msg("no live session of pid %d holding 1 lock:\n%s",
			 (int)cl.pid, out);

	/* Killed (manual restarts): down. */
	harness_kill_server(d.region, &r, 1, false);
	top_once_servers(out, sizeof(out),
			 (const char *const[]){"up", "down", NULL});
	if (line_starting(out, "/top/held ", line, sizeof(line)) == NULL)
		fail_msg("with one server down the lock should still show as "
			 "held:\n%s", out);

	/* Started again, it stays out while the lease granted before its
	 * restart runs, and top says so and why. */
	assert_int_equal(harness_lockctl(d.region, "server", "start", "1",
					 NULL), 0);
	HARNESS_WAIT_FOR(harness_server_state(&r, 1) == LM_SRV_RECOVERING &&
				 atomic_load(&r.servers[1]->recovery) ==
					 LM_RECOV_OWN_LEASES,
			 10000, "server 1 never waited for its old leases");
	top_once(out, sizeof(out));
	expect_server(out, 1, "recovering");
	if (line_starting(out, "1  ", line, sizeof(line)) == NULL ||
	    strstr(line, "when the leases granted before its restart end") ==
		    NULL ||
	    strstr(line, " ms ") == NULL)
		fail_msg("the recovering server's row does not say how long "
			 "and why:\n%s", out);

	client_release(&cl);
	client_finish(&cl);
	lm_region_detach(&r);
	teardown();
}
HARNESS_CASE(once_shows_lock_and_servers, 60)

/* ---- batch mode: events ------------------------------------------ */

static char batch_buf[1 << 21];

/* Is there an event line of kind whose text contains needle (or, with
 * at_end, ends with it)? Lines are "HH:MM:SS.mmm  KIND(10)  TEXT". */
static bool has_event_at(const char *buf, const char *kind,
			 const char *needle, bool at_end)
{
	char k[32];
	snprintf(k, sizeof(k), "  %-10s  ", kind);
	for (const char *p = buf; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		char line[1024];
		len = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		const char *at = strstr(line, k);
		const char *found = at == line + 12
					    ? strstr(at + strlen(k), needle)
					    : NULL;
		if (found != NULL &&
		    (!at_end || strcmp(found, needle) == 0))
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

static bool has_event(const char *buf, const char *kind, const char *needle)
{
	return has_event_at(buf, kind, needle, false);
}

/* The event lines of top's output (the last that fit in n bytes), for
 * failure messages: the frames around them would bury them. */
static const char *event_lines(const char *buf, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (const char *p = buf; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) + 1 : strlen(p);
		/* "HH:MM:SS.mmm  " */
		if (len > 14 && p[2] == ':' && p[5] == ':' && p[8] == '.') {
			if (len >= n)
				len = n - 1;
			if (used + len >= n) {
				/* Keep the latest: drop the oldest line. */
				char *nl = strchr(out, '\n');
				size_t drop = nl != NULL ? (size_t)(nl - out) + 1
							 : used;
				memmove(out, out + drop, used - drop + 1);
				used -= drop;
				continue;
			}
			memcpy(out + used, p, len);
			used += len;
			out[used] = '\0';
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return out;
}

/* Wait (bounded) until top's output has such an event line. */
static void wait_event(const char *path, const char *kind, const char *needle)
{
	/* Generous: at load 25 a 1 s lease's expiry has taken over 10 s
	 * to reach top's output (the server's sweep and top's frames
	 * both wait for a CPU). */
	int64_t deadline = harness_now_ms() + 30000;
	for (;;) {
		ssize_t n = harness_read_file(path, batch_buf, sizeof(batch_buf));
		if (n >= (ssize_t)sizeof(batch_buf) - 1)
			fail_msg("top's output outgrew the test's buffer");
		if (n > 0 && has_event(batch_buf, kind, needle))
			return;
		if (harness_now_ms() > deadline) {
			size_t len = n > 0 ? (size_t)n : 0;
			fail_msg("no '%s' event with '%s' from top within 30 s; "
				 "the end of its output:\n%s", kind, needle,
				 batch_buf + (len > 3000 ? len - 3000 : 0));
		}
		harness_nap_us(5000);
	}
}

/* lockctl top -b on the case's service, its output into out (the
 * case's "batch" file), once it has printed a first frame. Bounded by
 * -n as well as by the case: 50 ms frames, 60 s. */
static pid_t batch_top_start(char *out, size_t n)
{
	char err[128];
	path_in(out, n, "batch");
	path_in(err, sizeof(err), "batch.err");
	char *argv[] = {lockctl, "-r", d.region, "top", "-b", "-d", "50",
			"-n", "1200", NULL};
	pid_t top = harness_spawn(argv, out, err);
	HARNESS_WAIT_FOR(harness_read_file(out, batch_buf, sizeof(batch_buf))
				 > 0 && strstr(batch_buf, "EVENTS") != NULL,
			 10000, "top -b printed no first frame");
	return top;
}

static void batch_reports_events(void)
{
	setup(true);
	struct lm_region r;
	harness_attach(d.region, &r);
	char out[128];
	pid_t top = batch_top_start(out, sizeof(out));

	char text[256];
	struct client a;
	client_start(&a, "/top/ev", 30000);
	uint64_t t1 = client_acquire(&a);
	snprintf(text, sizeof(text), "/top/ev to pid %d (session",
		 (int)a.pid);
	wait_event(out, "grant", text);
	snprintf(text, sizeof(text), "), token %llu", (unsigned long long)t1);
	if (!has_event(batch_buf, "grant", text))
		fail_msg("the grant event does not carry token %llu",
			 (unsigned long long)t1);

	client_release(&a);
	snprintf(text, sizeof(text), "/top/ev by pid %d, token %llu",
		 (int)a.pid, (unsigned long long)t1);
	wait_event(out, "release", text);

	/* A lease that is never renewed runs out (its holder lives on). */
	struct client e;
	client_start(&e, "/top/short", 1000);
	client_acquire(&e);
	snprintf(text, sizeof(text), "/top/short: the lease of pid %d ran "
		 "out", (int)e.pid);
	wait_event(out, "expire", text);

	/* A holder SIGKILLed: its session dies, and its lock is freed. */
	struct client b;
	client_start(&b, "/top/ev", 30000);
	uint64_t t2 = client_acquire(&b);
	snprintf(text, sizeof(text), "/top/ev to pid %d (session", (int)b.pid);
	wait_event(out, "grant", text);
	kill(b.pid, SIGKILL);
	snprintf(text, sizeof(text), "pid %d: the process is gone",
		 (int)b.pid);
	wait_event(out, "death", text);
	snprintf(text, sizeof(text), "/top/ev: holder pid %d died, token %llu",
		 (int)b.pid, (unsigned long long)t2);
	wait_event(out, "freed", text);
	int st = harness_reap(b.pid, 5000, "the killed client");
	assert_true(WIFSIGNALED(st));
	close(b.cmd);
	close(b.reply);

	/* A server fault. */
	harness_kill_server(d.region, &r, 2, false);
	wait_event(out, "server", "server 2 down (pid ");

	/* A client that disconnects and exits is no death: it reads as a
	 * disconnect (a frame between the two), or, once its process is
	 * gone too, an exit. */
	client_finish(&a);
	char gone[64];
	snprintf(text, sizeof(text), ", pid %d: ended", (int)a.pid);
	snprintf(gone, sizeof(gone), ", pid %d", (int)a.pid);
	HARNESS_WAIT_FOR(harness_read_file(out, batch_buf, sizeof(batch_buf))
				 > 0 &&
				 (has_event(batch_buf, "exit", text) ||
				  has_event_at(batch_buf, "disconnect", gone,
					       true)),
			 10000, "no exit or disconnect event for pid %d",
			 (int)a.pid);
	snprintf(text, sizeof(text), "pid %d:", (int)a.pid);
	if (has_event(batch_buf, "death", text))
		fail_msg("a client that disconnected was reported dead");
	client_finish(&e);

	/* A holder that releases and exits within one frame released: its
	 * lock is clean in the tables, whatever became of its process. */
	struct client q;
	client_start(&q, "/top/quick", 30000);
	uint64_t t3 = client_acquire(&q);
	snprintf(text, sizeof(text), "/top/quick to pid %d (session",
		 (int)q.pid);
	wait_event(out, "grant", text);
	client_send(&q, 'q');
	harness_expect_exit(q.pid, 10000, 0, "client (release and exit)");
	close(q.cmd);
	close(q.reply);
	snprintf(text, sizeof(text), "/top/quick by pid %d, token %llu",
		 (int)q.pid, (unsigned long long)t3);
	wait_event(out, "release", text);
	snprintf(text, sizeof(text), "pid %d", (int)q.pid);
	if (has_event(batch_buf, "freed", text) ||
	    has_event(batch_buf, "death", text))
		fail_msg("a holder that released and exited was reported "
			 "dead:\n%s", batch_buf);

	kill(top, SIGTERM);
	harness_expect_exit(top, 5000, 0, "lockctl top -b after SIGTERM");
	harness_read_file(out, batch_buf, sizeof(batch_buf));
	if (strchr(batch_buf, '\033') != NULL)
		fail_msg("lockctl top -b wrote an escape sequence");
	lm_region_detach(&r);
	teardown();
}
HARNESS_CASE(batch_reports_events, 120)

/* Has table i's lease of lock idx ended in server i's own clock? */
static bool lease_ended(const struct lm_region *r, unsigned i, uint32_t idx)
{
	uint64_t lease = atomic_load(&lm_slot_of(r, i, idx)->lease);
	return LM_LEASE_EXPIRY(lease) <=
	       lm_server_clock_ms(r->servers[i], lm_now_ns());
}

/*
 * A lease that runs out one table at a time. Server 0's clock runs
 * ahead, so its copy of the lease ends first while the other two still
 * run: its sweep frees its table clean (the grant only dropped a
 * table). When the other two end, before their servers sweep them
 * (paused here, before the lease could end), the grant is gone with one clean table behind it. That
 * is an expiry, not a release: the holder never released, and its owner
 * words are still on the other tables. top sees the grant in one frame
 * and this state in the next (it is stopped in between).
 */
static void batch_expiry_after_one_clean_table(void)
{
	setup(true);
	struct lm_region r;
	harness_attach(d.region, &r);
	char out[128], text[256];
	pid_t top = batch_top_start(out, sizeof(out));

	struct client e;
	client_start(&e, "/top/skewed", 8000);
	client_acquire(&e);
	snprintf(text, sizeof(text), "/top/skewed to pid %d (session",
		 (int)e.pid);
	wait_event(out, "grant", text);
	int64_t idx = lm_name_lookup(&r, "/top/skewed", 11, 0);
	assert_true(idx >= 0);
	kill(top, SIGSTOP);
	HARNESS_WAIT_FOR(harness_proc_state(top) == 'T', 5000,
			 "lockctl top did not stop");

	/* Servers 1 and 2 paused first, while the 8 s lease runs on all
	 * three tables; then server 0 eight seconds ahead: its copy of the
	 * lease ends now, the others' in real time. */
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "pause", "1", NULL),
			 0);
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "pause", "2", NULL),
			 0);
	for (unsigned i = 1; i < 3; i++)
		if (lease_ended(&r, i, (uint32_t)idx))
			fail_msg("the 8 s lease on table %u ended before its "
				 "server was paused", i);
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server",
			     "skew", "0", "--offset", "8000", NULL),
			 0);
	HARNESS_WAIT_FOR(atomic_load(&lm_slot_of(&r, 0, (uint32_t)idx)
					      ->owner) == LM_OWNER_FREE,
			 10000, "server 0 did not free its expired copy of the "
			 "lease within 10 s");
	HARNESS_WAIT_FOR(lease_ended(&r, 1, (uint32_t)idx) &&
				 lease_ended(&r, 2, (uint32_t)idx),
			 30000, "the lease on tables 1 and 2 did not end "
			 "within 30 s");
	for (unsigned i = 1; i < 3; i++)
		if (LM_OWNER_SESSION(atomic_load(
			    &lm_slot_of(&r, i, (uint32_t)idx)->owner)) == 0)
			fail_msg("paused server %u swept its table", i);

	kill(top, SIGCONT);
	char released[256], expired[256], events[4096];
	snprintf(released, sizeof(released), "/top/skewed by pid %d",
		 (int)e.pid);
	snprintf(expired, sizeof(expired), "/top/skewed: the lease of pid %d "
		 "ran out", (int)e.pid);
	HARNESS_WAIT_FOR(harness_read_file(out, batch_buf, sizeof(batch_buf))
					 > 0 &&
				 (has_event(batch_buf, "release", released) ||
				  has_event(batch_buf, "expire", expired)),
			 30000, "top reported no end of the grant within 30 s; "
			 "its events:\n%s",
			 event_lines(batch_buf, events, sizeof(events)));
	if (!has_event(batch_buf, "expire", expired))
		fail_msg("a lease that ran out (one table freed clean by a fast "
			 "clock) was reported as a release; top's events:\n%s",
			 event_lines(batch_buf, events, sizeof(events)));

	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server", "resume", "1", NULL), 0);
	assert_int_equal(ctl(NULL, 0, NULL, 0, "-r", d.region, "server", "resume", "2", NULL), 0);
	kill(top, SIGTERM);
	harness_expect_exit(top, 5000, 0, "lockctl top -b after SIGTERM");
	client_finish(&e);
	lm_region_detach(&r);
	teardown();
}
HARNESS_CASE(batch_expiry_after_one_clean_table, 60)

/*
 * A server killed and started again between two of top's frames: the
 * frame after shows a new epoch, and the death must be in the events
 * too, not only the restart. top is stopped (SIGSTOP) across the kill
 * and the start, so it cannot see the down state in between.
 */
static void down_and_back_between_frames(void)
{
	setup(true);
	struct lm_region r;
	harness_attach(d.region, &r);
	char out[128], err[128];
	path_in(out, sizeof(out), "batch");
	path_in(err, sizeof(err), "batch.err");
	char *argv[] = {lockctl, "-r", d.region, "top", "-b", "-d", "50",
			"-n", "1200", NULL};
	pid_t top = harness_spawn(argv, out, err);
	HARNESS_WAIT_FOR(harness_read_file(out, batch_buf, sizeof(batch_buf))
				 > 0 && strstr(batch_buf, "EVENTS") != NULL,
			 10000, "top -b printed no first frame");
	kill(top, SIGSTOP);
	uint64_t epoch = LM_SRV_EPOCH(atomic_load(&r.servers[1]->state));
	harness_kill_server(d.region, &r, 1, false);
	assert_int_equal(harness_lockctl(d.region, "server", "start", "1",
					 NULL), 0);
	HARNESS_WAIT_FOR(LM_SRV_EPOCH(atomic_load(&r.servers[1]->state)) !=
					 epoch &&
				 harness_server_state(&r, 1) != LM_SRV_DOWN,
			 10000, "server 1 did not come back within 10 s");
	kill(top, SIGCONT);
	wait_event(out, "server", "server 1 restarted (epoch ");
	if (!has_event(batch_buf, "server", "server 1 down (pid "))
		fail_msg("top reported server 1's restart but not its death:"
			 "\n%s", batch_buf);
	kill(top, SIGTERM);
	harness_expect_exit(top, 5000, 0, "lockctl top -b after SIGTERM");
	lm_region_detach(&r);
	teardown();
}
HARNESS_CASE(down_and_back_between_frames, 60)

/* ---- usage errors and a missing region --------------------------- */

static void expect_usage_error(const char *what, const char *msg, ...)
{
	char *argv[16];
	int n = 0;
	argv[n++] = lockctl;
	va_list ap;
	va_start(ap, msg);
	char *a;
	while ((a = va_arg(ap, char *)) != NULL && n < 15)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	char o[128], e[128], err[4096];
	path_in(o, sizeof(o), "out");
	path_in(e, sizeof(e), "err");
	int code = harness_run(argv, o, e, 20000);
	harness_read_file(e, err, sizeof(err));
	if (code != 64)
		fail_msg("lockctl %s exited %d, expected 64; stderr: %s", what,
			 code, err);
	/* One line saying what is wrong, one saying where to look. */
	char want[512];
	snprintf(want, sizeof(want), "lockctl top: %s", msg);
	const char *nl = strchr(err, '\n');
	if (strncmp(err, want, strlen(want)) != 0 || nl == NULL ||
	    strcmp(nl + 1, "Try 'lockctl top --help'.\n") != 0)
		fail_msg("lockctl %s: expected '%s...' and a Try line, got:\n%s",
			 what, want, err);
}

static void usage_and_missing_region(void)
{
	setup(false);
	char region[LM_REGION_NAME_MAX + 2];
	harness_region_name(region, sizeof(region), "top-missing");
	expect_usage_error("top --bogus", "unknown option '--bogus'", "-r",
			   region, "top", "--bogus", NULL);
	expect_usage_error("top -d abc", "--delay: 'abc' is not a whole number",
			   "-r", region, "top", "-d", "abc", NULL);
	expect_usage_error("top -d 5", "--delay: '5' is out of range", "-r",
			   region, "top", "-d", "5", NULL);
	expect_usage_error("top -b -n 0", "--iterations: '0' is out of range",
			   "-r", region, "top", "-b", "-n", "0", NULL);
	expect_usage_error("top -n", "option '-n' needs a value", "-r", region,
			   "top", "-n", NULL);
	expect_usage_error("top --once -b", "--once prints one frame", "-r",
			   region, "top", "--once", "-b", NULL);
	expect_usage_error("top extra", "unexpected argument 'extra'", "-r",
			   region, "top", "extra", NULL);
	/* No terminal (stdin is /dev/null, stdout a file). */
	expect_usage_error("top (no terminal)", "the live view needs a "
			   "terminal", "-r", region, "top", NULL);

	char out[8192], err[4096], serr[4096];
	int code = ctl(out, sizeof(out), err, sizeof(err), "top", "--help",
		       NULL);
	if (code != 0 || strstr(out, "Usage: lockctl top") == NULL)
		fail_msg("lockctl top --help exited %d:\n%s", code, out);

	/* No service: what status says, and its exit status. */
	code = ctl(NULL, 0, serr, sizeof(serr), "-r", region, "status",
		   NULL);
	assert_int_equal(code, 69);
	code = ctl(out, sizeof(out), err, sizeof(err), "-r", region, "top",
		   "--once", NULL);
	if (code != 69)
		fail_msg("lockctl top --once on a missing region exited %d, "
			 "expected 69; stderr: %s", code, err);
	if (strcmp(err, serr) != 0 || out[0] != '\0')
		fail_msg("lockctl top on a missing region said:\n%s\nstatus "
			 "says:\n%s", err, serr);
	teardown();
}
HARNESS_CASE(usage_and_missing_region, 60)

/* ---- the terminal view, under a pseudo-terminal ------------------ */

/* xterm's rmcup (terminfo): what endwin() writes to leave the
 * alternate screen and give the terminal back. */
#define XTERM_RMCUP "\033[?1049l"

/* A lock whose row is wider than 100 columns, ending in LONG_END. */
#define LONG_END "Zq9"
#define LONG_NAME                                                          \
	"/top/a-lock-name-that-runs-past-the-edge-of-a-100-column-"        \
	"terminal-so-that-only-a-wider-one-shows-its-end-" LONG_END

static char pty_buf[1 << 20];
static size_t pty_len;

/* Read what the pty has within ms; false at end of file (EIO). */
static bool pty_read(int fd, int64_t ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, (int)ms) != 1)
		return true;
	ssize_t n = read(fd, pty_buf + pty_len, sizeof(pty_buf) - 1 - pty_len);
	if (n <= 0)
		return false;
	pty_len += (size_t)n;
	pty_buf[pty_len] = '\0';
	return pty_len + 1 < sizeof(pty_buf);
}

static pid_t top_pid;

/* Kill the view (its own session: the case's group kill misses it)
 * and fail. */
#define PTY_FAIL(...)                                                      \
	do {                                                               \
		kill(top_pid, SIGKILL);                                    \
		waitpid(top_pid, NULL, 0);                                 \
		fail_msg(__VA_ARGS__);                                     \
	} while (0)

static void screen_quits(const char *how)
{
	struct winsize ws = {.ws_row = 30, .ws_col = 100};
	int fd;
	fflush(stdout);
	fflush(stderr);
	top_pid = forkpty(&fd, NULL, NULL, &ws);
	if (top_pid < 0)
		fail_msg("forkpty: %s", strerror(errno));
	if (top_pid == 0) {
		setenv("TERM", "xterm", 1);
		alarm(0);
		/* A slow refresh, so that only a redraw on the resize
		 * itself comes in time below; -n: it ends by itself even
		 * if nothing below stops it. */
		execl(lockctl, lockctl, "-r", d.region, "top", "-d", "3000",
		      "-n", "20", (char *)NULL);
		_exit(127);
	}
	pty_len = 0;
	pty_buf[0] = '\0';
	int64_t deadline = harness_now_ms() + 10000;
	char title[256];
	snprintf(title, sizeof(title), "lockctl top - %s", d.region);
	while (strstr(pty_buf, title) == NULL || strstr(pty_buf, "SERVER") ==
							 NULL) {
		if (harness_now_ms() > deadline || !pty_read(fd, 100))
			PTY_FAIL("lockctl top drew no frame on the pty (%s)",
				 how);
	}
	if (strstr(pty_buf, "\033[?1049h") == NULL)
		PTY_FAIL("lockctl top did not take the alternate screen");
	/* A resize: redrawn at once (not at the next refresh, 3 s on) at
	 * the new size, where the end of the long lock name, cut off at
	 * 100 columns, fits. */
	if (strstr(pty_buf, LONG_END) != NULL)
		PTY_FAIL("a 100-column view showed column %zu",
			 strlen(LONG_NAME));
	struct winsize big = {.ws_row = 40, .ws_col = 240};
	ioctl(fd, TIOCSWINSZ, &big);
	size_t mark = pty_len;
	int64_t resized = harness_now_ms();
	while (strstr(pty_buf + mark, LONG_END) == NULL)
		if (harness_now_ms() - resized > 2000 || !pty_read(fd, 100))
			PTY_FAIL("lockctl top did not redraw at 240 columns "
				 "within 2 s of a resize (%s)", how);

	mark = pty_len;
	int64_t t0 = harness_now_ms();
	if (!strcmp(how, "q"))
		assert_int_equal(write(fd, "q", 1), 1);
	else if (!strcmp(how, "^C"))
		assert_int_equal(write(fd, "\003", 1), 1);
	else
		kill(top_pid, SIGTERM);
	int status = 0;
	bool done = false;
	while (!done && harness_now_ms() - t0 < 3000) {
		pty_read(fd, 20);
		done = waitpid(top_pid, &status, WNOHANG) == top_pid;
	}
	if (!done)
		PTY_FAIL("lockctl top did not exit within 3 s of %s", how);
	while (pty_read(fd, 0) && pty_len > mark) {
		size_t before = pty_len;
		pty_read(fd, 50);
		if (pty_len == before)
			break;
	}
	close(fd);
	char b[64];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("lockctl top ended by %s: %s, expected exit 0", how,
			 harness_status_str(status, b, sizeof(b)));
	if (strstr(pty_buf + mark, XTERM_RMCUP) == NULL)
		fail_msg("lockctl top ended by %s without restoring the "
			 "terminal (no rmcup after it)", how);
}

/*
 * A stop signal that comes while the view ends (-n 1; stopped after its
 * last frame at "lockctl.top_last_frame" in batch mode, after endwin at
 * "lockctl.top_screen_ended" on a terminal) is a stop like any other:
 * exit 0. It used to be left pending while the old signal mask (batch)
 * or the old handlers (terminal) came back, and then killed top.
 */
static void signal_as_the_view_ends(void)
{
	setup(true);
	char out[128], err[128], log[256];
	path_in(out, sizeof(out), "batch");
	path_in(err, sizeof(err), "batch.err");
	char *argv[] = {lockctl, "-r", d.region, "top", "-b", "-n", "1",
			NULL};
	harness_pause_arm("lockctl.top_last_frame", log, sizeof(log));
	pid_t top = harness_spawn(argv, out, err);
	harness_pause_disarm();
	assert_int_equal(harness_wait_paused(log, "lockctl.top_last_frame",
					     10000), top);
	kill(top, SIGTERM);
	harness_resume(top);
	harness_expect_exit(top, 5000, 0,
			    "lockctl top -b -n 1 sent SIGTERM as it ended");

	struct winsize ws = {.ws_row = 30, .ws_col = 100};
	int fd;
	harness_pause_arm("lockctl.top_screen_ended", log, sizeof(log));
	fflush(stdout);
	fflush(stderr);
	top_pid = forkpty(&fd, NULL, NULL, &ws);
	if (top_pid < 0)
		fail_msg("forkpty: %s", strerror(errno));
	if (top_pid == 0) {
		setenv("TERM", "xterm", 1);
		alarm(0);
		execl(lockctl, lockctl, "-r", d.region, "top", "-n", "1",
		      (char *)NULL);
		_exit(127);
	}
	harness_pause_disarm();
	pty_len = 0;
	pty_buf[0] = '\0';
	int64_t deadline = harness_now_ms() + 10000;
	while (harness_paused(log, "lockctl.top_screen_ended") != top_pid) {
		if (harness_now_ms() > deadline)
			PTY_FAIL("lockctl top -n 1 did not end its view within "
				 "10 s");
		pty_read(fd, 20);
	}
	kill(top_pid, SIGTERM);
	harness_resume(top_pid);
	int status = 0;
	bool done = false;
	int64_t t0 = harness_now_ms();
	while (!done && harness_now_ms() - t0 < 3000) {
		pty_read(fd, 20);
		done = waitpid(top_pid, &status, WNOHANG) == top_pid;
	}
	if (!done)
		PTY_FAIL("lockctl top did not exit within 3 s of its SIGTERM");
	close(fd);
	char b[64];
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("lockctl top on a terminal, sent SIGTERM as its view "
			 "ended: %s, expected exit 0",
			 harness_status_str(status, b, sizeof(b)));
	teardown();
}
HARNESS_CASE(signal_as_the_view_ends, 60)

static void screen_quits_and_restores(void)
{
	setup(true);
	struct client cl;
	client_start(&cl, LONG_NAME, 30000);
	client_acquire(&cl);
	screen_quits("q");
	screen_quits("^C");
	screen_quits("SIGTERM");
	client_release(&cl);
	client_finish(&cl);
	teardown();
}
HARNESS_CASE(screen_quits_and_restores, 60)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(once_shows_lock_and_servers),
		harness_case(batch_reports_events),
		harness_case(batch_expiry_after_one_clean_table),
		harness_case(down_and_back_between_frames),
		harness_case(usage_and_missing_region),
		harness_case(screen_quits_and_restores),
		harness_case(signal_as_the_view_ends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
