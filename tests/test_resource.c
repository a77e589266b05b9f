/*
 * test_resource.c - the fenced store (resource/store.c).
 *
 * Unit cases run in-process; the concurrency and crash cases fork
 * writers. Children never call cmocka's assertions (a failed one would
 * jump into the copy of the parent's runner): they check by hand and
 * _exit() with a code that says what failed, and the parent asserts on
 * that. Every wait is bounded, every case runs under alarm(60), and all
 * files live in one mkdtemp directory removed at the end.
 *
 * Some cases know the file layout (header slots at 0 and 512, generation
 * % 2 selects the slot, log from 4096) to play a killed writer exactly;
 * they say so where they do.
 *
 *   FSTEST_SEED=N       replay the random choices of an earlier run (each
 *                       run prints its seed)
 *   FSTEST_FILTER=GLOB  run only the matching cases, e.g. '*torn*'
 *   LOCKMGR_BIN=DIR     where resctl is (else next to tests/); the CLI
 *                       case is skipped if it is not found
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "resource/store.h"

#define CASE_TIMEOUT_S  60
#define CHILD_TIMEOUT_S 40

static char tdir[64];
static unsigned tseq;
static unsigned rseed;

/* ---------------------------------------------------------------------
 * Helpers.
 */
static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nap_us(long us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000 };
	nanosleep(&ts, NULL);
}

/* A fresh path in the case directory. */
static void new_path(char *out, size_t n, const char *tag)
{
	snprintf(out, n, "%s/%s-%u", tdir, tag, tseq++);
}

/* Wait for a child at most timeout_ms; on timeout kill it and fail. */
static int wait_child(pid_t pid, int64_t timeout_ms, const char *what)
{
	int64_t deadline = now_ms() + timeout_ms;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			fail_msg("waitpid(%s): %s", what, strerror(errno));
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("%s: still running after %" PRId64 " ms", what,
				 timeout_ms);
		}
		nap_us(500);
	}
}

static void expect_exit0(pid_t pid, int64_t timeout_ms, const char *what)
{
	int st = wait_child(pid, timeout_ms, what);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("%s: %s %d", what,
			 WIFEXITED(st) ? "exited with" : "killed by signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* Read exactly n bytes from fd within timeout_ms; returns bytes read
 * (short only at EOF). */
static size_t read_bounded(int fd, void *buf, size_t n, int64_t timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t got = 0;
	while (got < n) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			fail_msg("pipe: no data within %" PRId64 " ms",
				 timeout_ms);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r >= 0);
		if (r == 0)
			continue;
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		assert_true(k >= 0);
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return got;
}

static void *shared_map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void append_bytes(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

static void patch_bytes(const char *path, off_t off, const void *buf,
			size_t n)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, n, off), (ssize_t)n);
	close(fd);
}

/* Every record of a store, copied out of the callback. */
struct rec {
	struct fs_record r;
	unsigned char *data;
};

struct recs {
	struct rec *v;
	size_t n, cap;
	int stop_after; /* > 0: return 7 from that record on */
};

static int collect(const struct fs_record *r, void *arg)
{
	struct recs *rs = arg;
	if (rs->stop_after > 0 && rs->n == (size_t)rs->stop_after)
		return 7;
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? 2 * rs->cap : 64;
		rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
		if (rs->v == NULL)
			return -1;
	}
	struct rec *x = &rs->v[rs->n++];
	x->r = *r;
	x->data = malloc(r->len + 1);
	if (x->data == NULL)
		return -1;
	memcpy(x->data, r->data, r->len);
	x->data[r->len] = '\0';
	x->r.data = x->data;
	return 0;
}

static void recs_free(struct recs *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		free(rs->v[i].data);
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

/* Open path, read it all into rs; returns fs_read's result. */
static int read_all(const char *path, struct recs *rs)
{
	fs_store *s;
	int err = fs_open(path, FS_RDONLY, &s);
	if (err != 0)
		return err;
	err = fs_read(s, collect, rs);
	fs_close(s);
	return err;
}

static size_t count_type(const struct recs *rs, unsigned type)
{
	size_t n = 0;
	for (size_t i = 0; i < rs->n; i++)
		n += rs->v[i].r.type == type;
	return n;
}

static void write_ok(fs_store *s, uint64_t token, const char *data)
{
	assert_int_equal(fs_write(s, token, data, strlen(data), NULL), 0);
}

/* ---------------------------------------------------------------------
 * Fixtures.
 */
static int group_setup(void **state)
{
	(void)state;
	snprintf(tdir, sizeof(tdir), "/tmp/fstest-XXXXXX");
	if (mkdtemp(tdir) == NULL)
		return -1;
	const char *env = getenv("FSTEST_SEED");
	rseed = env ? (unsigned)strtoul(env, NULL, 10)
		    : (unsigned)(now_real_ns() ^ getpid());
	srand(rseed);
	printf("# test_resource: FSTEST_SEED=%u, files in %s\n", rseed, tdir);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	DIR *d = opendir(tdir);
	if (d == NULL)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
	return rmdir(tdir);
}

static int case_setup(void **state)
{
	(void)state;
	alarm(CASE_TIMEOUT_S);
	return 0;
}

static int case_teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

/* ---------------------------------------------------------------------
 * The token rule.
 */
static void test_token_rule(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "rule");
	fs_store *s;
	assert_int_equal(fs_open(path, FS_CREATE, &s), 0);
	assert_string_equal(fs_path(s), path);

	uint64_t hi = 99;
	assert_int_equal(fs_write(s, 5, "a", 1, &hi), 0);
	assert_int_equal(hi, 0); /* a new store has seen no token */
	assert_int_equal(fs_write(s, 5, "b", 1, &hi), 0); /* equal */
	assert_int_equal(hi, 5);
	assert_int_equal(fs_write(s, 3, "c", 1, &hi), FS_ESTALE);
	assert_int_equal(hi, 5); /* the token that beat it */
	assert_int_equal(fs_write(s, 4, "d", 1, &hi), FS_ESTALE);
	assert_int_equal(hi, 5);
	uint64_t seq = 0;
	assert_int_equal(fs_write_seq(s, 8, "e", 1, &hi, &seq), 0);
	assert_int_equal(hi, 5);
	assert_int_equal(seq, 5);
	assert_int_equal(fs_write_seq(s, 7, "f", 1, &hi, &seq), FS_ESTALE);
	assert_int_equal(hi, 8);
	assert_int_equal(seq, 6);
	assert_int_equal(fs_write(s, UINT64_MAX, "g", 1, NULL), 0);
	assert_int_equal(fs_write(s, UINT64_MAX - 1, "h", 1, &hi), FS_ESTALE);
	assert_true(hi == UINT64_MAX);

	struct fs_stats st;
	assert_int_equal(fs_stats(s, &st), 0);
	assert_true(st.highest == UINT64_MAX);
	assert_int_equal(st.accepted, 4);
	assert_int_equal(st.rejected, 4);
	assert_int_equal(st.sync, 0);
	fs_close(s);

	/* Another handle (another open file description) sees the same. */
	assert_int_equal(fs_open(path, 0, &s), 0);
	assert_int_equal(fs_write(s, 8, "late", 4, &hi), FS_ESTALE);
	assert_true(hi == UINT64_MAX);
	fs_close(s);
}

/* The log: order, types, contents, writer pid and time. */
static void test_log_contents(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "log");
	int64_t t0 = now_real_ns();
	fs_store *s;
	assert_int_equal(fs_open(path, FS_CREATE, &s), 0);
	write_ok(s, 10, "first");
	write_ok(s, 10, "");  /* empty payloads are records too */
	assert_int_equal(fs_write(s, 9, "stale", 5, NULL), FS_ESTALE);
	unsigned char bin[300];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7);
	assert_int_equal(fs_write(s, 11, bin, sizeof(bin), NULL), 0);
	assert_int_equal(fs_write(s, 2, "older", 5, NULL), FS_ESTALE);
	write_ok(s, 12, "last");
	fs_close(s);
	int64_t t1 = now_real_ns();

	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, 6);
	static const struct {
		unsigned type;
		uint64_t token, highest;
		const char *data;
	} want[] = {
		{FS_REC_ACCEPT, 10, 0, "first"},
		{FS_REC_ACCEPT, 10, 10, ""},
		{FS_REC_REJECT, 9, 10, ""},
		{FS_REC_ACCEPT, 11, 10, NULL},
		{FS_REC_REJECT, 2, 11, ""},
		{FS_REC_ACCEPT, 12, 11, "last"},
	};
	for (size_t i = 0; i < rs.n; i++) {
		const struct fs_record *r = &rs.v[i].r;
		assert_int_equal(r->seq, i + 1);
		assert_int_equal(r->type, want[i].type);
		assert_int_equal(r->token, want[i].token);
		assert_int_equal(r->highest, want[i].highest);
		assert_int_equal(r->pid, (uint32_t)getpid());
		assert_true(r->time_ns >= t0 && r->time_ns <= t1);
		if (i > 0)
			assert_true(r->time_ns >= rs.v[i - 1].r.time_ns);
		if (want[i].data != NULL) {
			assert_int_equal(r->len, strlen(want[i].data));
			assert_memory_equal(r->data, want[i].data, r->len);
		} else {
			assert_int_equal(r->len, sizeof(bin));
			assert_memory_equal(r->data, bin, sizeof(bin));
		}
	}
	recs_free(&rs);

	/* A callback's non-zero return stops the read and is returned. */
	rs.stop_after = 2;
	assert_int_equal(read_all(path, &rs), 7);
	assert_int_equal(rs.n, 2);
	recs_free(&rs);

	/* fs_read_stats: totals of the very snapshot delivered. */
	assert_int_equal(fs_open(path, FS_RDONLY, &s), 0);
	struct fs_stats st;
	assert_int_equal(fs_read_stats(s, &st, collect, &rs), 0);
	assert_int_equal(st.accepted, 4);
	assert_int_equal(st.rejected, 2);
	assert_int_equal(st.highest, 12);
	assert_int_equal(st.committed_bytes, file_size(path));
	recs_free(&rs);
	fs_close(s);
}

/* Rejected attempts are counted and listed with the highest at the time. */
static void test_rejections_listed(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "rej");
	fs_store *s;
	assert_int_equal(fs_open(path, FS_CREATE, &s), 0);
	write_ok(s, 100, "holder");
	for (uint64_t t = 0; t < 50; t++)
		assert_int_equal(fs_write(s, t, "zombie", 6, NULL), FS_ESTALE);
	write_ok(s, 101, "next holder");
	assert_int_equal(fs_write(s, 100, "old holder", 10, NULL), FS_ESTALE);
	fs_close(s);

	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(count_type(&rs, FS_REC_ACCEPT), 2);
	assert_int_equal(count_type(&rs, FS_REC_REJECT), 51);
	for (size_t i = 1; i <= 50; i++) {
		assert_int_equal(rs.v[i].r.type, FS_REC_REJECT);
		assert_int_equal(rs.v[i].r.token, i - 1);
		assert_int_equal(rs.v[i].r.highest, 100);
		assert_int_equal(rs.v[i].r.len, 0);
	}
	assert_int_equal(rs.v[52].r.token, 100);
	assert_int_equal(rs.v[52].r.highest, 101);
	recs_free(&rs);
}

/* Argument checks, limits, flags. */
static void test_arguments(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "args");
	fs_store *s = (fs_store *)1;

	assert_int_equal(fs_open(NULL, 0, &s), FS_EINVAL);
	assert_null(s);
	assert_int_equal(fs_open("", 0, &s), FS_EINVAL);
	assert_int_equal(fs_open(path, 0x100, &s), FS_EINVAL);
	assert_int_equal(fs_open(path, FS_RDONLY | FS_CREATE, &s), FS_EINVAL);
	errno = 0;
	assert_int_equal(fs_open(path, 0, &s), FS_ESYS);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(fs_open(path, FS_RDONLY, &s), FS_ESYS);

	assert_int_equal(fs_open(path, FS_CREATE | FS_SYNC, &s), 0);
	struct fs_stats st;
	assert_int_equal(fs_stats(s, &st), 0);
	assert_int_equal(st.sync, 1); /* the store remembers sync mode */
	assert_int_equal(fs_write(s, 1, NULL, 1, NULL), FS_EINVAL);
	assert_int_equal(fs_write(s, 1, NULL, 0, NULL), 0);
	static unsigned char big[FS_MAX_DATA + 1];
	memset(big, 'x', sizeof(big));
	assert_int_equal(fs_write(s, 1, big, sizeof(big), NULL), FS_ETOOBIG);
	assert_int_equal(fs_write(s, 1, big, FS_MAX_DATA, NULL), 0);
	assert_int_equal(fs_read(s, NULL, NULL), FS_EINVAL);
	assert_int_equal(fs_stats(s, NULL), FS_EINVAL);
	fs_close(s);
	fs_close(NULL);

	assert_int_equal(fs_open(path, FS_RDONLY, &s), 0);
	assert_int_equal(fs_write(s, 2, "x", 1, NULL), FS_EINVAL);
	struct recs rs = {0};
	assert_int_equal(fs_read(s, collect, &rs), 0);
	assert_int_equal(rs.n, 2);
	assert_int_equal(rs.v[1].r.len, FS_MAX_DATA);
	recs_free(&rs);
	fs_close(s);

	/* Every code has its own sentence. */
	for (int e = FS_ERR_FIRST; e <= FS_ERR_LAST; e++) {
		assert_non_null(fs_strerror(e));
		assert_string_not_equal(fs_strerror(e),
					fs_strerror(FS_ERR_FIRST - 1));
	}
	assert_string_equal(fs_strerror(0), "success");
}

/* A handle inherited across fork is refused: it would share the lock. */
static void test_fork_handle(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "fork");
	fs_store *s;
	assert_int_equal(fs_open(path, FS_CREATE, &s), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(CHILD_TIMEOUT_S);
		int bad = fs_write(s, 1, "x", 1, NULL) != FS_EINVAL;
		struct fs_stats st;
		bad |= (fs_stats(s, &st) != FS_EINVAL) << 1;
		fs_close(s); /* allowed: it only closes the child's copy */
		fs_store *s2;
		bad |= (fs_open(path, 0, &s2) != 0) << 2;
		if (!(bad & 4)) {
			bad |= (fs_write(s2, 1, "child", 5, NULL) != 0) << 3;
			fs_close(s2);
		}
		_exit(bad);
	}
	expect_exit0(pid, 10000, "child using an inherited handle");
	write_ok(s, 1, "parent"); /* the parent's handle still works */
	fs_close(s);
	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, 2);
	recs_free(&rs);
}

/* ---------------------------------------------------------------------
 * Concurrent writers (and a reader) in many processes.
 */
#define NWRITERS 8
#define NWRITES  200

struct ack {
	uint64_t token;
	uint64_t highest;
	int32_t rc;      /* fs_write's result */
	uint32_t done;   /* 1 once this attempt returned */
};

struct conc {
	_Atomic uint64_t clock;   /* tokens are drawn near it */
	_Atomic int writers_left;
	uint32_t pids[NWRITERS];
	struct ack acks[NWRITERS][NWRITES];
};

static int conc_writer(const char *path, struct conc *c, int w)
{
	fs_store *s;
	if (fs_open(path, FS_CREATE, &s) != 0)
		return 10;
	srand(rseed * 31 + (unsigned)w);
	uint64_t mine = 0; /* this writer's tokens only go up */
	for (int k = 0; k < NWRITES; k++) {
		/* Near the shared clock, sometimes just behind it: writers
		 * overtake each other, so some tokens are stale by the
		 * time they land and some are equal to the highest. */
		uint64_t now = atomic_load(&c->clock);
		uint64_t t = now + (uint64_t)(rand() % 3);
		t = t > 1 ? t - 1 : 0;
		if (t < mine)
			t = mine;
		mine = t;
		if (rand() % 4 == 0)
			atomic_fetch_add(&c->clock, 1);
		char data[64];
		int n = snprintf(data, sizeof(data), "w%d k%d t%" PRIu64, w, k,
				 t);
		uint64_t hi;
		int rc = fs_write(s, t, data, (size_t)n, &hi);
		if (rc != 0 && rc != FS_ESTALE)
			return 11;
		if ((rc == 0) != (t >= hi))
			return 12;
		c->acks[w][k] = (struct ack){ t, hi, rc, 1 };
		if (rand() % 8 == 0)
			sched_yield();
	}
	fs_close(s);
	return 0;
}

/* A reader racing the writers: lock-free reads must never see a torn
 * header or a partial record, and the log only grows. */
static int conc_reader(const char *path, struct conc *c)
{
	/* The first writer may not have created the store yet. */
	fs_store *s = NULL;
	int64_t deadline = now_ms() + 10000;
	while (fs_open(path, FS_RDONLY, &s) != 0) {
		if (now_ms() > deadline)
			return 20;
		nap_us(200);
	}
	size_t last = 0;
	int rounds = 0;
	while (atomic_load(&c->writers_left) > 0 || rounds < 2) {
		struct recs rs = {0};
		struct fs_stats st;
		if (fs_read_stats(s, &st, collect, &rs) != 0)
			return 21;
		if (rs.n < last || rs.n != st.accepted + st.rejected)
			return 22;
		last = rs.n;
		recs_free(&rs);
		if (atomic_load(&c->writers_left) == 0)
			rounds++;
	}
	fs_close(s);
	return 0;
}

static void test_concurrent_writers(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "conc");
	struct conc *c = shared_map(sizeof(*c));
	atomic_store(&c->clock, 1);
	atomic_store(&c->writers_left, NWRITERS);

	pid_t reader = fork();
	assert_true(reader >= 0);
	if (reader == 0) {
		alarm(CHILD_TIMEOUT_S);
		_exit(conc_reader(path, c));
	}
	pid_t pids[NWRITERS];
	for (int w = 0; w < NWRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			alarm(CHILD_TIMEOUT_S);
			int rc = conc_writer(path, c, w);
			atomic_fetch_sub(&c->writers_left, 1);
			_exit(rc);
		}
		c->pids[w] = (uint32_t)pids[w];
	}
	for (int w = 0; w < NWRITERS; w++)
		expect_exit0(pids[w], 45000, "writer");
	expect_exit0(reader, 45000, "reader");

	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, NWRITERS * NWRITES);

	/* Accepted tokens never go down; each names its writer and step. */
	static uint8_t seen[NWRITERS][NWRITES];
	memset(seen, 0, sizeof(seen));
	size_t rej_by[NWRITERS] = {0};
	uint64_t high = 0;
	for (size_t i = 0; i < rs.n; i++) {
		const struct fs_record *r = &rs.v[i].r;
		int w = -1;
		for (int j = 0; j < NWRITERS; j++)
			if (c->pids[j] == r->pid)
				w = j;
		assert_true(w >= 0);
		if (r->type == FS_REC_REJECT) {
			assert_true(r->token < r->highest);
			rej_by[w]++;
			continue;
		}
		assert_true(r->token >= high);
		high = r->token;
		int rw, rk;
		uint64_t rt;
		assert_int_equal(sscanf((const char *)rs.v[i].data,
					"w%d k%d t%" SCNu64, &rw, &rk, &rt),
				 3);
		assert_int_equal(rw, w);
		assert_true(rk >= 0 && rk < NWRITES);
		assert_int_equal(rt, r->token);
		assert_int_equal(seen[rw][rk], 0); /* exactly once */
		seen[rw][rk] = 1;
	}

	/* Every acknowledged write is there; every rejection is counted. */
	size_t nacc = 0, nrej = 0;
	for (int w = 0; w < NWRITERS; w++) {
		size_t wrej = 0;
		for (int k = 0; k < NWRITES; k++) {
			const struct ack *a = &c->acks[w][k];
			assert_int_equal(a->done, 1);
			if (a->rc == 0) {
				assert_int_equal(seen[w][k], 1);
				nacc++;
			} else {
				assert_int_equal(a->rc, FS_ESTALE);
				assert_int_equal(seen[w][k], 0);
				assert_true(a->token < a->highest);
				wrej++;
			}
		}
		assert_int_equal(wrej, rej_by[w]);
		nrej += wrej;
	}
	assert_int_equal(nacc, count_type(&rs, FS_REC_ACCEPT));
	assert_int_equal(nrej, count_type(&rs, FS_REC_REJECT));
	assert_int_equal(nacc + nrej, NWRITERS * NWRITES);
	/* Some of both, or the case tested nothing. */
	assert_true(nacc > 0);
	assert_true(nrej > 0);
	printf("# concurrent: %zu accepted, %zu rejected\n", nacc, nrej);
	recs_free(&rs);
	munmap(c, sizeof(*c));
}

/* Many processes create the same new store at once: one store results. */
static void test_concurrent_create(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "create");
	_Atomic int *go = shared_map(sizeof(*go));
	pid_t pids[NWRITERS];
	for (int w = 0; w < NWRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			alarm(CHILD_TIMEOUT_S);
			while (atomic_load(go) == 0)
				;
			fs_store *s;
			if (fs_open(path, FS_CREATE, &s) != 0)
				_exit(1);
			int rc = fs_write(s, 1, "x", 1, NULL);
			fs_close(s);
			_exit(rc == 0 ? 0 : 2);
		}
	}
	atomic_store(go, 1);
	for (int w = 0; w < NWRITERS; w++)
		expect_exit0(pids[w], 20000, "creator");
	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, NWRITERS);
	recs_free(&rs);

	/* No temporary file is left behind. */
	DIR *d = opendir(tdir);
	assert_non_null(d);
	struct dirent *e;
	const char *base = strrchr(path, '/') + 1;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, base, strlen(base)) == 0)
			assert_string_equal(e->d_name, base);
	closedir(d);
	munmap(go, sizeof(*go));
}

/* ---------------------------------------------------------------------
 * Crashes: torn tails and killed writers.
 */

/* A writer killed mid-record leaves bytes past the committed length. */
static void test_torn_tail(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "torn");
	fs_store *s;
	assert_int_equal(fs_open(path, FS_CREATE, &s), 0);
	write_ok(s, 1, "one");
	write_ok(s, 2, "two");
	write_ok(s, 3, "three");
	fs_close(s);
	off_t committed = file_size(path);

	/* Half of a real record (its header copied from the last one, so
	 * its magic is right), then garbage. */
	unsigned char buf[200];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, 64, committed - 64), 64);
	close(fd);
	append_bytes(path, buf, 40);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rand();
	append_bytes(path, buf, sizeof(buf));

	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, 3);
	assert_string_equal((const char *)rs.v[2].data, "three");
	recs_free(&rs);

	/* The next write truncates the tail and lands right after. */
	assert_int_equal(fs_open(path, 0, &s), 0);
	uint64_t hi;
	assert_int_equal(fs_write(s, 3, "four", 4, &hi), 0);
	assert_int_equal(hi, 3);
	struct fs_stats st;
	assert_int_equal(fs_stats(s, &st), 0);
	assert_int_equal(st.committed_bytes, file_size(path));
	fs_close(s);
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, 4);
	assert_string_equal((const char *)rs.v[3].data, "four");
	recs_free(&rs);
}

/*
 * A writer killed inside its header update (layout knowledge: slots at 0
 * and 512, generation % 2 picks the slot; creation is generation 1, so
 * after three writes the current header, generation 4, is in slot 0).
 * The torn slot fails its checksum, the previous header rules, and the
 * third record becomes an uncommitted tail.
 */
static void test_torn_header(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "tornhdr");
	fs_store *s;
	assert_int_equal(fs_open(path, FS_CREATE, &s), 0);
	write_ok(s, 1, "one");
	write_ok(s, 2, "two");
	write_ok(s, 3, "three");
	fs_close(s);

	unsigned char junk[60];
	memset(junk, 0xa5, sizeof(junk));
	patch_bytes(path, 40, junk, sizeof(junk)); /* half of slot 0 */

	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, 2);
	recs_free(&rs);

	assert_int_equal(fs_open(path, 0, &s), 0);
	struct fs_stats st;
	assert_int_equal(fs_stats(s, &st), 0);
	assert_int_equal(st.highest, 2);
	write_ok(s, 2, "again");
	fs_close(s);
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, 3);
	assert_string_equal((const char *)rs.v[2].data, "again");
	recs_free(&rs);

	/* Both slots bad: not a store any more. */
	patch_bytes(path, 0, junk, sizeof(junk));
	patch_bytes(path, 512, junk, sizeof(junk));
	assert_int_equal(fs_open(path, FS_RDONLY, &s), FS_ECORRUPT);
}

/*
 * A real kill: a child writes as fast as it can and reports each
 * acknowledged write on a pipe; the parent SIGKILLs it at a random
 * moment. Every acknowledged record must be there, in order.
 */
static void kill_child(const char *path, int wfd, int round)
{
	fs_store *s;
	if (fs_open(path, FS_CREATE, &s) != 0)
		_exit(30);
	static unsigned char data[16384];
	srand(rseed + (unsigned)round);
	for (uint32_t k = 1;; k++) {
		/* Varying sizes, up to several pages, so that a kill can
		 * land inside a multi-page record copy. */
		size_t len = 8 + (size_t)rand() % (sizeof(data) - 8);
		memset(data, (int)(k & 0xff), len);
		memcpy(data, &k, sizeof(k));
		/* Tokens go up every few writes; equal ones are accepted. */
		uint64_t token = (uint64_t)round * 1000000 + k / 3;
		if (fs_write(s, token, data, len, NULL) != 0)
			_exit(31);
		if (write(wfd, &k, sizeof(k)) != (ssize_t)sizeof(k))
			_exit(32);
	}
}

static void test_kill_writer(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "kill");
	uint32_t total_acked = 0;
	int torn = 0;
	for (int round = 1; round <= 6; round++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			alarm(CHILD_TIMEOUT_S);
			close(p[0]);
			kill_child(path, p[1], round);
		}
		close(p[1]);
		/* Wait (bounded) for some acks, then kill mid-stream,
		 * sometimes after a tiny extra delay. */
		uint32_t want = 20 + (uint32_t)rand() % 300, k = 0;
		for (uint32_t i = 0; i < want; i++)
			assert_int_equal(read_bounded(p[0], &k, sizeof(k),
						      10000),
					 sizeof(k));
		if (rand() % 2)
			nap_us(rand() % 2000);
		kill(pid, SIGKILL);
		int ws = wait_child(pid, 10000, "killed writer");
		assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
		/* Acks it sent before dying. */
		uint32_t last = k;
		while (read_bounded(p[0], &k, sizeof(k), 10000) == sizeof(k))
			last = k;
		close(p[0]);

		/* Informational: did the kill leave a torn tail this time? */
		fs_store *rs_s;
		struct fs_stats rs_st;
		assert_int_equal(fs_open(path, FS_RDONLY, &rs_s), 0);
		assert_int_equal(fs_stats(rs_s, &rs_st), 0);
		fs_close(rs_s);
		torn += (uint64_t)file_size(path) > rs_st.committed_bytes;

		struct recs rs = {0};
		assert_int_equal(read_all(path, &rs), 0);
		/* This round's records: 1..last at least, maybe one more
		 * (committed, killed before it could report). */
		size_t first = total_acked;
		assert_true(rs.n >= first + last);
		assert_true(rs.n <= first + last + 1);
		for (size_t i = first; i < rs.n; i++) {
			const struct fs_record *r = &rs.v[i].r;
			uint32_t rk;
			assert_int_equal(r->type, FS_REC_ACCEPT);
			assert_true(r->len >= 8);
			memcpy(&rk, r->data, sizeof(rk));
			assert_int_equal(rk, i - first + 1);
			for (size_t b = sizeof(rk); b < r->len; b++)
				if (rs.v[i].data[b] != (unsigned char)rk)
					fail_msg("record %zu byte %zu", i, b);
		}
		total_acked = (uint32_t)rs.n;
		recs_free(&rs);
	}
	printf("# kill: %d of 6 kills left a torn tail\n", torn);
	/* After all that, a plain write works and truncates any tail. */
	fs_store *s;
	assert_int_equal(fs_open(path, 0, &s), 0);
	write_ok(s, 99000000, "after");
	struct fs_stats st;
	assert_int_equal(fs_stats(s, &st), 0);
	assert_int_equal(st.committed_bytes, file_size(path));
	assert_int_equal(st.accepted, total_acked + 1);
	fs_close(s);
}

/* ---------------------------------------------------------------------
 * Corruption and foreign files.
 */
static void test_corrupt_committed(void **state)
{
	(void)state;
	char path[128];
	new_path(path, sizeof(path), "corrupt");
	fs_store *s;
	assert_int_equal(fs_open(path, FS_CREATE, &s), 0);
	write_ok(s, 1, "payload-one");
	write_ok(s, 2, "payload-two");
	write_ok(s, 3, "payload-three");
	fs_close(s);

	/* Find record 2's payload in the file and flip one bit of it. */
	static unsigned char file[8192];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, file, sizeof(file));
	close(fd);
	assert_true(n > 0);
	unsigned char *p = memmem(file, (size_t)n, "payload-two", 11);
	assert_non_null(p);
	unsigned char flipped = p[8] ^ 0x01;
	patch_bytes(path, p + 8 - file, &flipped, 1);

	/* The header is intact, so the store opens; the read delivers the
	 * first record and then reports the damage, never skipping it. */
	struct recs rs = {0};
	assert_int_equal(read_all(path, &rs), FS_ECORRUPT);
	assert_int_equal(rs.n, 1);
	recs_free(&rs);

	/* Restore it: clean again. Then damage a token in a header. */
	patch_bytes(path, p + 8 - file, &p[8], 1);
	assert_int_equal(read_all(path, &rs), 0);
	assert_int_equal(rs.n, 3);
	recs_free(&rs);
	unsigned char *r3 = memmem(file, (size_t)n, "payload-three", 13);
	assert_non_null(r3);
	/* The record header is the 56 bytes before the payload; the token
	 * is at offset 24 of it. */
	unsigned char tok = r3[-56 + 24] ^ 0x80;
	patch_bytes(path, r3 - 56 + 24 - file, &tok, 1);
	assert_int_equal(read_all(path, &rs), FS_ECORRUPT);
	assert_int_equal(rs.n, 2);
	recs_free(&rs);

	/* A store cut short below its committed length is corrupt too. */
	assert_int_equal(truncate(path, file_size(path) - 10), 0);
	assert_int_equal(read_all(path, &rs), FS_ECORRUPT);
	recs_free(&rs);
	assert_int_equal(fs_open(path, 0, &s), 0);
	assert_int_equal(fs_write(s, 9, "x", 1, NULL), FS_ECORRUPT);
	fs_close(s);
}

static void test_foreign_files(void **state)
{
	(void)state;
	char path[128];
	fs_store *s;

	/* Random bytes. */
	new_path(path, sizeof(path), "random");
	static unsigned char buf[16384];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rand();
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	assert_int_equal(fs_open(path, 0, &s), FS_ECORRUPT);
	assert_int_equal(fs_open(path, FS_CREATE, &s), FS_ECORRUPT);
	assert_int_equal(fs_open(path, FS_RDONLY, &s), FS_ECORRUPT);

	/* The right magic with a wrong checksum. */
	memcpy(buf, "LMSTORE1", 8);
	memcpy(buf + 512, "LMSTORE1", 8);
	patch_bytes(path, 0, buf, 1024);
	assert_int_equal(fs_open(path, 0, &s), FS_ECORRUPT);

	/* Empty and short files. */
	new_path(path, sizeof(path), "empty");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fs_open(path, FS_CREATE, &s), FS_ECORRUPT);
	append_bytes(path, "LMSTORE1", 8);
	assert_int_equal(fs_open(path, 0, &s), FS_ECORRUPT);

	/* A directory, and a FIFO (which must not hang the open). */
	assert_int_equal(fs_open(tdir, FS_RDONLY, &s), FS_ECORRUPT);
	errno = 0;
	assert_int_equal(fs_open(tdir, 0, &s), FS_ESYS);
	assert_int_equal(errno, EISDIR);
	new_path(path, sizeof(path), "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(fs_open(path, FS_RDONLY, &s), FS_ECORRUPT);
}

/*
 * A header whose generation is at its top (2^64-1: only a damaged or
 * crafted file, fuzz/crashes/fuzz_store/generation-wrap) has no next
 * generation: a write would commit under a header that loses to the old
 * one, acknowledged and then invisible. It is refused, and the file is
 * left as it was.
 */
static void test_generation_at_top(void **state)
{
	(void)state;
	static unsigned char img[4096], after[4096];
	const char *src = "fuzz/crashes/fuzz_store/generation-wrap";
	int fd = open(src, O_RDONLY);
	if (fd < 0)
		fail_msg("%s: %s (run from the source tree)", src,
			 strerror(errno));
	assert_int_equal(read(fd, img, sizeof(img)), (ssize_t)sizeof(img));
	close(fd);
	char path[128];
	new_path(path, sizeof(path), "gentop");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img, sizeof(img)), (ssize_t)sizeof(img));
	close(fd);
	fs_store *s;
	assert_int_equal(fs_open(path, 0, &s), 0);
	assert_int_equal(fs_write(s, 5, "lost?", 5, NULL), FS_ECORRUPT);
	fs_close(s);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, after, sizeof(after)), (ssize_t)sizeof(after));
	assert_int_equal(read(fd, after, 1), 0);
	close(fd);
	assert_memory_equal(after, img, sizeof(img));
}

/* ---------------------------------------------------------------------
 * The resctl command, if it was built next to this test.
 */
static char resctl_bin[512];

static void find_resctl(const char *argv0)
{
	const char *dir = getenv("LOCKMGR_BIN");
	if (dir != NULL)
		snprintf(resctl_bin, sizeof(resctl_bin), "%s/resctl", dir);
	if (dir == NULL || access(resctl_bin, X_OK) != 0) {
		/* BUILD/tests/test_resource -> BUILD/resctl */
		snprintf(resctl_bin, sizeof(resctl_bin), "%s", argv0);
		char *slash = strrchr(resctl_bin, '/');
		if (slash != NULL) {
			*slash = '\0';
			slash = strrchr(resctl_bin, '/');
		}
		if (slash != NULL)
			snprintf(slash, sizeof(resctl_bin) -
				 (size_t)(slash - resctl_bin), "/resctl");
		else
			snprintf(resctl_bin, sizeof(resctl_bin), "../resctl");
	}
	if (access(resctl_bin, X_OK) != 0)
		resctl_bin[0] = '\0';
}

/* Run resctl with args (NULL-terminated), stdin from in_path (or
 * /dev/null); its stdout and stderr go to out and err (NUL-terminated,
 * truncated to n). Returns its exit code. */
static int resctl(char *out, char *err, size_t n, const char *in_path, ...)
{
	char *argv[16] = {resctl_bin};
	int argc = 1;
	va_list ap;
	va_start(ap, in_path);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && argc < 15)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;

	char opath[160], epath[160];
	snprintf(opath, sizeof(opath), "%s/resctl.out", tdir);
	snprintf(epath, sizeof(epath), "%s/resctl.err", tdir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int i = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (i < 0 || o < 0 || e < 0 || dup2(i, 0) < 0 ||
		    dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(125);
		unsetenv("LOCKMGR_TOKEN");
		unsetenv("RESCTL_STORE");
		execv(resctl_bin, argv);
		_exit(126);
	}
	int st = wait_child(pid, 20000, "resctl");
	assert_true(WIFEXITED(st));
	const char *paths[2] = {opath, epath};
	char *bufs[2] = {out, err};
	for (int k = 0; k < 2; k++) {
		int fd = open(paths[k], O_RDONLY);
		assert_true(fd >= 0);
		ssize_t r = read(fd, bufs[k], n - 1);
		close(fd);
		bufs[k][r > 0 ? r : 0] = '\0';
		unlink(paths[k]);
	}
	return WEXITSTATUS(st);
}

/* Skip the case when there is no resctl binary to run. */
static void require_resctl(void)
{
	if (resctl_bin[0] == '\0') {
		printf("# resctl not found ($LOCKMGR_BIN or next to the "
		       "test's directory): skipped\n");
		skip();
	}
}

static void test_resctl_cli(void **state)
{
	(void)state;
	require_resctl();
	char path[128], out[8192], err[4096];
	new_path(path, sizeof(path), "cli");

	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "7", "first", NULL), 0);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "9", "a\"b\nc\\", NULL), 0);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "9", "equal", NULL), 0);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "7", "stale", NULL), 3);
	char want[256];
	snprintf(want, sizeof(want), "rejected: token 7 is older than token "
				     "9 already used on %s", path);
	assert_non_null(strstr(err, want));

	/* Data from stdin, and options after the command. */
	char inpath[160];
	snprintf(inpath, sizeof(inpath), "%s/cli-stdin", tdir);
	int fd = open(inpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "from\tstdin", 10), 10);
	close(fd);
	assert_int_equal(resctl(out, err, sizeof(out), inpath, "write",
				"--token", "10", "-s", path, "-", NULL), 0);
	unlink(inpath);

	/* Usage errors, and stores that cannot be opened. */
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "x", NULL), 64);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "-1", "x", NULL), 64);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"frob", NULL), 64);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "show", NULL),
			 64);
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/missing", tdir);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", missing,
				"show", NULL), 66);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", tdir,
				"show", NULL), 66);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "--help", NULL),
			 0);
	assert_non_null(strstr(out, "Exit status"));

	/* show --json: the records in order, escaped, and the rejection. */
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"show", "--json", NULL), 0);
	assert_non_null(strstr(out, "\"highest_token\":10"));
	assert_non_null(strstr(out, "\"data\":\"a\\\"b\\nc\\\\\""));
	assert_non_null(strstr(out, "\"data\":\"from\\tstdin\""));
	assert_non_null(strstr(out, "\"rejected_count\":1"));
	assert_non_null(strstr(out, "{\"seq\":4,\"token\":7,\"highest\":9,"));
	char *p1 = strstr(out, "\"first\""), *p2 = strstr(out, "\"equal\"");
	assert_true(p1 != NULL && p2 != NULL && p1 < p2);

	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"show", NULL), 0);
	assert_non_null(strstr(out, "highest token 10, 4 accepted, "
				    "1 rejected"));
}

/* The whole of a (small) file, or -1 if it cannot be read. */
static ssize_t slurp(const char *path, unsigned char *buf, size_t n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t r;
	while (len < n && (r = read(fd, buf + len, n - len)) > 0)
		len += (size_t)r;
	close(fd);
	return (ssize_t)len;
}

/*
 * `resctl write` with no DATA is a usage error: it once read stdin
 * instead, which waited silently on a terminal and, with stdin at EOF,
 * appended an empty record and exited 0. Stdin is read only for an
 * explicit "-".
 */
static void test_resctl_write_needs_data(void **state)
{
	(void)state;
	require_resctl();
	char path[128], out[8192], err[4096], inpath[160];
	static unsigned char before[16384], after[16384];
	new_path(path, sizeof(path), "nodata");
	snprintf(inpath, sizeof(inpath), "%s/nodata-stdin", tdir);
	int fd = open(inpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "piped", 5), 5);
	close(fd);

	/* On a store that does not exist: 64, and nothing is created. */
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "4", NULL), 64);
	assert_non_null(strstr(err, "write needs DATA, or - to read it from "
				    "stdin"));
	assert_non_null(strstr(err, "resctl --help"));
	assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1); /* 1 line */
	assert_int_equal(access(path, F_OK), -1);

	/* On an existing store, with data waiting on stdin (at EOF or
	 * not): 64, and the store is byte for byte what it was. */
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "5", "first", NULL), 0);
	ssize_t n0 = slurp(path, before, sizeof(before));
	assert_true(n0 > 0);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "6", NULL), 64);
	assert_int_equal(resctl(out, err, sizeof(out), inpath, "-s", path,
				"write", "--token", "6", NULL), 64);
	assert_int_equal(resctl(out, err, sizeof(out), inpath, "write",
				"--token", "6", "-s", path, "--", NULL), 64);
	ssize_t n1 = slurp(path, after, sizeof(after));
	assert_int_equal(n1, n0);
	assert_memory_equal(after, before, (size_t)n0);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"show", NULL), 0);
	assert_non_null(strstr(out, "highest token 5, 1 accepted, "
				    "0 rejected"));

	/* "-" reads stdin: its bytes, or an empty record from an empty
	 * stdin, since that was asked for. */
	assert_int_equal(resctl(out, err, sizeof(out), inpath, "-s", path,
				"write", "--token", "6", "-", NULL), 0);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"write", "--token", "7", "-", NULL), 0);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"show", "--json", NULL), 0);
	assert_non_null(strstr(out, "\"token\":6,"));
	assert_non_null(strstr(out, "\"data\":\"piped\""));
	assert_non_null(strstr(out, "\"token\":7,"));
	assert_non_null(strstr(out, "\"data\":\"\"}"));
	assert_non_null(strstr(out, "\"accepted_count\":3"));
	unlink(inpath);
}

/*
 * `resctl show` on a store that does not exist says how to create it,
 * with a command that works as printed once its placeholders are filled
 * in: it once suggested "resctl -s PATH write", which lacks the data
 * (and so exits 64) since write no longer reads stdin by default.
 */
static void test_resctl_show_missing_hint(void **state)
{
	(void)state;
	require_resctl();
	char path[128], out[8192], err[4096];
	new_path(path, sizeof(path), "hint");
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"show", NULL), 66);
	char want[256];
	snprintf(want, sizeof(want), "lockctl run LOCK -- resctl -s %s write "
				     "DATA\n", path);
	if (strstr(err, want) == NULL)
		fail_msg("resctl show on a missing store does not suggest "
			 "\"%.*s\": %s", (int)strlen(want) - 1, want, err);
	assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1); /* 1 line */

	/* The resctl part as printed, with DATA filled in and the token
	 * that lockctl run would export, creates the store. */
	char cmd[1200], bindir[512];
	snprintf(bindir, sizeof(bindir), "%s", resctl_bin);
	*strrchr(bindir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "PATH=%s:$PATH LOCKMGR_TOKEN=1 %.*s first",
		 bindir, (int)(strlen(want) - strlen(" DATA\n") -
			       strlen("lockctl run LOCK -- ")),
		 want + strlen("lockctl run LOCK -- "));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(126);
	}
	int st = wait_child(pid, 20000, cmd);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the suggested command (%s) failed: status %d", cmd,
			 st);
	assert_int_equal(resctl(out, err, sizeof(out), NULL, "-s", path,
				"show", NULL), 0);
	assert_non_null(strstr(out, "highest token 1, 1 accepted"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, case_setup, case_teardown)
		T(test_token_rule),
		T(test_log_contents),
		T(test_rejections_listed),
		T(test_arguments),
		T(test_fork_handle),
		T(test_concurrent_writers),
		T(test_concurrent_create),
		T(test_torn_tail),
		T(test_torn_header),
		T(test_kill_writer),
		T(test_corrupt_committed),
		T(test_foreign_files),
		T(test_generation_at_top),
		T(test_resctl_cli),
		T(test_resctl_write_needs_data),
		T(test_resctl_show_missing_hint),
#undef T
	};
	(void)argc;
	find_resctl(argv[0]);
	/* FSTEST_FILTER=PATTERN runs the matching cases (a glob: *torn*). */
	const char *filter = getenv("FSTEST_FILTER");
	if (filter != NULL)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests_name("fenced store", tests,
					   group_setup, group_teardown);
}
