/*
 * test_region.c - creating, attaching and validating the shared region
 * (shm/region.c), in-process: no lockmgrd.
 *
 * Each validation case corrupts one thing in a freshly initialised
 * region (or makes a foreign object) and checks that attach refuses it
 * with the right code and a reason, and never crashes.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/internal.h"
#include "shm/heartbeat.h"
#include "shm/lease_scan.h"
#include "shm/wait_queue.h"
#include "client/lockmgr.h"
#include "shm/clock.h"
#include "shm/layout.h"
#include "shm/region.h"

static const struct lm_region_params small = {
	.max_locks = 64, .max_sessions = 8, .max_ttl_ms = 2000, .mode = 0600};

/* A new shm object (O_EXCL: never someone else's). */
static int new_object(char *name, size_t n, const char *tag)
{
	harness_region_name(name, n, tag);
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		fail_msg("shm_open(%s, O_CREAT|O_EXCL): %s", name,
			 strerror(errno));
	return fd;
}

static int create_region(struct lm_region *r, char *name, size_t n,
			 const char *tag, const struct lm_region_params *p)
{
	int fd = new_object(name, n, tag);
	assert_int_equal(lm_region_init(r, fd, name, p), 0);
	return fd;
}

static void destroy_region(struct lm_region *r, const char *name)
{
	lm_region_detach(r); /* also closes the fd */
	assert_int_equal(shm_unlink(name), 0);
}

/* Attach must fail with code and say why. */
static void expect_refused(const char *name, int code, const char *what)
{
	struct lm_region r;
	char why[256];
	memset(why, 0, sizeof(why));
	int rc = lm_region_attach(&r, name, why, sizeof(why));
	if (rc == 0) {
		lm_region_detach(&r);
		fail_msg("attach accepted a region with %s", what);
	}
	if (rc != code)
		fail_msg("attach of a region with %s: expected %d, got %d (%s)",
			 what, code, rc, why);
	if (why[0] == '\0')
		fail_msg("attach refused a region with %s but gave no reason",
			 what);
}

static void expect_attaches(const char *name, const char *what)
{
	struct lm_region r;
	char why[256] = "";
	int rc = lm_region_attach(&r, name, why, sizeof(why));
	if (rc != 0)
		fail_msg("attach after %s failed: %d (%s)", what, rc, why);
	lm_region_detach(&r);
}

/* ---------------------------------------------------------------- */

static void create_and_attach(void **state)
{
	(void)state;
	struct lm_region_params p = {.max_locks = 4096, .max_sessions = 32,
				     .max_ttl_ms = 2000, .mode = 0600};
	struct lm_region c;
	char name[LM_REGION_NAME_MAX + 2];
	create_region(&c, name, sizeof(name), "region", &p);

	struct lm_region r;
	char why[256] = "";
	assert_int_equal(lm_region_attach(&r, name, why, sizeof(why)), 0);
	size_t expect = lm_region_size_for(p.max_locks, p.max_sessions);
	assert_int_equal(r.size, expect);
	assert_int_equal(c.size, expect);
	struct stat st;
	assert_int_equal(fstat(r.fd, &st), 0);
	assert_int_equal((size_t)st.st_size, expect);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(r.max_locks, p.max_locks);
	assert_int_equal(r.max_sessions, p.max_sessions);
	assert_int_equal(r.max_ttl_ms, p.max_ttl_ms);
	assert_int_equal(r.hdr->region_size, expect);
	assert_int_equal(r.hdr->abi_version, LM_ABI_VERSION);
	assert_int_equal(r.hdr->nservers, LM_NSERVERS);
	assert_true(atomic_load(&r.hdr->magic) == LM_REGION_MAGIC);
	/* Buckets: a power of two, at least twice max_locks. */
	uint32_t buckets = r.bucket_mask + 1;
	assert_int_equal(buckets & (buckets - 1), 0);
	assert_true(buckets >= 2 * p.max_locks);
	/* Every view lies inside the mapping, in layout order. */
	char *base = r.base, *end = base + r.size;
	assert_true((char *)r.sessions > base);
	assert_true((char *)(r.sessions + r.max_sessions) <= (char *)r.buckets);
	assert_true((char *)(r.buckets + buckets) <= (char *)r.names);
	assert_true((char *)(r.names + r.max_locks) <=
		    (char *)r.servers[0]);
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		assert_true((char *)r.servers[i] >= base);
		assert_true((char *)(r.servers[i] + 1) <= (char *)r.slots);
		/* The last lock's slot of every table is inside the map. */
		assert_true((char *)(lm_slot_of(&r, i, r.max_locks - 1) + 1) <=
			    end);
		assert_int_equal(LM_SRV_STATE(atomic_load(&r.servers[i]->state)),
				 LM_SRV_DOWN);
	}
	/* The two views are of the same memory. */
	atomic_store(&c.hdr->names_hwm, 7);
	assert_int_equal(atomic_load(&r.hdr->names_hwm), 7);
	lm_region_detach(&r);
	destroy_region(&c, name);
}

static void size_grows_with_params(void **state)
{
	(void)state;
	size_t a = lm_region_size_for(64, 8);
	size_t b = lm_region_size_for(4096, 8);
	size_t c = lm_region_size_for(4096, 1024);
	assert_true(a < b);
	assert_true(b < c);
	/* Three tables of max_locks slots at least. */
	assert_true(b >= 3u * 4096u * sizeof(struct lm_slot));
}

/* A header field the test can break and restore. */
struct corruption {
	const char *what;
	size_t off;   /* offset of the field in the header */
	size_t width; /* 4 or 8 */
	uint64_t bad;
};

#define HFIELD(f) offsetof(struct lm_region_header, f), \
	sizeof(((struct lm_region_header *)0)->f)

static void refuses_corrupted_header(void **state)
{
	(void)state;
	struct lm_region c;
	char name[LM_REGION_NAME_MAX + 2];
	create_region(&c, name, sizeof(name), "corrupt", &small);
	const struct lm_region_header *h = c.hdr;
	const struct corruption cases[] = {
		{"a wrong magic", HFIELD(magic), 0x4f4f4f4f4f4f4f4full},
		{"a wrong abi_version", HFIELD(abi_version),
		 LM_ABI_VERSION + 1},
		{"abi_version 0", HFIELD(abi_version), 0},
		{"a wrong header_size", HFIELD(header_size),
		 sizeof(struct lm_region_header) + 64},
		{"a wrong session_size", HFIELD(session_size),
		 sizeof(struct lm_session) * 2},
		{"a wrong name_size", HFIELD(name_size), 256},
		{"a wrong slot_size", HFIELD(slot_size), 32},
		{"a wrong server_size", HFIELD(server_size), 512},
		{"a wrong nservers", HFIELD(nservers), 5},
		{"max_locks 0", HFIELD(max_locks), 0},
		{"max_locks over the limit", HFIELD(max_locks),
		 (uint64_t)LM_MAX_LOCKS_LIMIT + 1},
		{"max_locks bigger than the object", HFIELD(max_locks),
		 1u << 20},
		{"max_sessions 0", HFIELD(max_sessions), 0},
		{"max_sessions over the limit", HFIELD(max_sessions),
		 LM_MAX_SESSIONS_LIMIT + 1},
		{"max_ttl_ms 0", HFIELD(max_ttl_ms), 0},
		{"a negative max_ttl_ms", HFIELD(max_ttl_ms), (uint64_t)-5},
		{"an inconsistent bucket_count", HFIELD(bucket_count),
		 h->bucket_count * 2},
		{"an inconsistent off_sessions", HFIELD(off_sessions),
		 h->off_sessions + 64},
		{"an inconsistent off_buckets", HFIELD(off_buckets),
		 h->off_buckets - 64},
		{"an inconsistent off_names", HFIELD(off_names),
		 h->off_names + 4096},
		{"off_servers past the end", HFIELD(off_servers),
		 h->region_size * 4},
		{"an inconsistent off_slots", HFIELD(off_slots),
		 h->off_slots + 4096},
		{"an inconsistent region_size", HFIELD(region_size),
		 h->region_size + 4096},
	};
	char *hb = (char *)c.hdr;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct corruption *cc = &cases[k];
		uint64_t saved = 0;
		memcpy(&saved, hb + cc->off, cc->width);
		memcpy(hb + cc->off, &cc->bad, cc->width);
		expect_refused(name, LM_EINCOMPAT, cc->what);
		memcpy(hb + cc->off, &saved, cc->width);
		expect_attaches(name, cc->what);
	}
	destroy_region(&c, name);
}

static void refuses_truncated_object(void **state)
{
	(void)state;
	struct lm_region c;
	char name[LM_REGION_NAME_MAX + 2];
	int fd = create_region(&c, name, sizeof(name), "trunc", &small);
	size_t full = c.size;
	/* Our own view is not touched past the new end below. */
	assert_int_equal(ftruncate(fd, (off_t)(full - 4096)), 0);
	expect_refused(name, LM_EINCOMPAT, "a truncated object");
	assert_int_equal(ftruncate(fd, (off_t)(full / 2)), 0);
	expect_refused(name, LM_EINCOMPAT, "an object cut in half");
	assert_int_equal(ftruncate(fd, (off_t)sizeof(struct lm_region_header)),
			 0);
	expect_refused(name, LM_EINCOMPAT, "only a header");
	assert_int_equal(ftruncate(fd, 100), 0);
	expect_refused(name, LM_EINCOMPAT, "an object smaller than a header");
	assert_int_equal(ftruncate(fd, 0), 0);
	expect_refused(name, LM_EINCOMPAT, "an empty object");
	/* Put it back (zero-filled: not initialised any more). */
	assert_int_equal(ftruncate(fd, (off_t)full), 0);
	expect_refused(name, LM_EINCOMPAT, "a zeroed header");
	destroy_region(&c, name);
}

static void refuses_uninitialised_object(void **state)
{
	(void)state;
	char name[LM_REGION_NAME_MAX + 2];
	int fd = new_object(name, sizeof(name), "zero");
	/* Full size, all zero: what a crash during creation leaves. */
	assert_int_equal(ftruncate(fd, (off_t)lm_region_size_for(64, 8)), 0);
	expect_refused(name, LM_EINCOMPAT, "a zero magic (uninitialised)");
	close(fd);
	assert_int_equal(shm_unlink(name), 0);
}

static void refuses_foreign_object(void **state)
{
	(void)state;
	char name[LM_REGION_NAME_MAX + 2];
	int fd = new_object(name, sizeof(name), "foreign");
	unsigned char junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131u + 7u);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	expect_refused(name, LM_EINCOMPAT, "garbage bytes");
	/* A foreign object with a correct magic but garbage after it. */
	uint64_t magic = LM_REGION_MAGIC;
	assert_int_equal(pwrite(fd, &magic, sizeof(magic), 0),
			 (ssize_t)sizeof(magic));
	expect_refused(name, LM_EINCOMPAT, "the magic and garbage");
	close(fd);
	assert_int_equal(shm_unlink(name), 0);
}

static void missing_object(void **state)
{
	(void)state;
	char name[LM_REGION_NAME_MAX + 2];
	harness_region_name(name, sizeof(name), "missing");
	expect_refused(name, LM_ENOSUPERVISOR, "no object at all");
}

static void validate_small_buffers(void **state)
{
	(void)state;
	/* lm_region_validate on memory that is not even a header. */
	uint64_t buf[64];
	memset(buf, 0, sizeof(buf));
	char why[128] = "";
	assert_int_equal(lm_region_validate(buf, 16, why, sizeof(why)),
			 LM_EINCOMPAT);
	assert_true(why[0] != '\0');
	why[0] = '\0';
	assert_int_equal(lm_region_validate(buf, sizeof(buf), why, sizeof(why)),
			 LM_EINCOMPAT);
	assert_true(why[0] != '\0');
	/* A reason is cut to the buffer, never overflows it. */
	char tiny[8];
	memset(tiny, 'x', sizeof(tiny));
	assert_int_equal(lm_region_validate(buf, 16, tiny, 4), LM_EINCOMPAT);
	assert_int_equal(tiny[3], '\0');
	assert_int_equal(tiny[4], 'x');
}

/* ---- names ------------------------------------------------------- */

static void expect_name(const char *in, const char *want)
{
	char out[LM_REGION_NAME_MAX + 2];
	memset(out, 0, sizeof(out));
	int rc = lm_region_resolve_name(in, out);
	if (rc != 0)
		fail_msg("resolve(\"%s\") failed: %d", in ? in : "(null)", rc);
	if (strcmp(out, want) != 0)
		fail_msg("resolve(\"%s\") = \"%s\", expected \"%s\"",
			 in ? in : "(null)", out, want);
}

static void expect_bad_name(const char *in, const char *what)
{
	char out[LM_REGION_NAME_MAX + 2];
	int rc = lm_region_resolve_name(in, out);
	if (rc != LM_EBADREGION)
		fail_msg("resolve(%s) returned %d, expected LM_EBADREGION",
			 what, rc);
}

static void resolve_name(void **state)
{
	(void)state;
	char *saved = getenv("LOCKMGR_REGION");
	saved = saved ? strdup(saved) : NULL;

	unsetenv("LOCKMGR_REGION");
	expect_name(NULL, LM_DEFAULT_REGION);
	setenv("LOCKMGR_REGION", "fromenv", 1);
	expect_name(NULL, "/fromenv");
	expect_name("explicit", "/explicit"); /* explicit beats env */
	setenv("LOCKMGR_REGION", "/slashed", 1);
	expect_name(NULL, "/slashed");
	setenv("LOCKMGR_REGION", "", 1);
	expect_name(NULL, LM_DEFAULT_REGION); /* empty env: default */
	setenv("LOCKMGR_REGION", "a/b", 1);
	expect_bad_name(NULL, "$LOCKMGR_REGION=a/b");
	unsetenv("LOCKMGR_REGION");

	expect_name("name", "/name");
	expect_name("/name", "/name");
	expect_name("lockmgr-test_1.x", "/lockmgr-test_1.x");
	expect_name("..x", "/..x");

	char longest[LM_REGION_NAME_MAX + 2];
	memset(longest, 'n', LM_REGION_NAME_MAX);
	longest[LM_REGION_NAME_MAX] = '\0';
	char want[LM_REGION_NAME_MAX + 3];
	snprintf(want, sizeof(want), "/%s", longest);
	expect_name(longest, want);
	expect_name(want, want);

	char toolong[LM_REGION_NAME_MAX + 3];
	memset(toolong, 'n', LM_REGION_NAME_MAX + 1);
	toolong[LM_REGION_NAME_MAX + 1] = '\0';
	expect_bad_name(toolong, "a 201-byte name");
	char huge[4096];
	memset(huge, 'h', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	expect_bad_name(huge, "a 4095-byte name");

	expect_bad_name("/", "\"/\"");
	expect_bad_name("a/b", "\"a/b\"");
	expect_bad_name("/a/b", "\"/a/b\"");
	expect_bad_name("a/", "\"a/\"");
	expect_bad_name("//a", "\"//a\"");
	expect_bad_name("..", "\"..\"");
	expect_bad_name("/..", "\"/..\"");
	expect_bad_name(".", "\".\"");
	expect_bad_name("a b", "a name with a space");
	expect_bad_name("a\tb", "a name with a tab");
	expect_bad_name("a\nb", "a name with a newline");
	expect_bad_name("a\x7f", "a name with DEL");

	if (saved != NULL) {
		setenv("LOCKMGR_REGION", saved, 1);
		free(saved);
	}
}

/*
 * An explicit empty name must be refused, not silently turned into the
 * default region: `lockctl -r "$UNSET"` must not touch /lockmgr.
 */
static void resolve_rejects_empty(void **state)
{
	(void)state;
	char *saved = getenv("LOCKMGR_REGION");
	saved = saved ? strdup(saved) : NULL;
	unsetenv("LOCKMGR_REGION");
	expect_bad_name("", "\"\" (an explicit empty name)");
	if (saved != NULL) {
		setenv("LOCKMGR_REGION", saved, 1);
		free(saved);
	}
}

/* ---- parameters -------------------------------------------------- */

static void expect_params(uint32_t locks, uint32_t sessions, int64_t ttl,
			  int want)
{
	struct lm_region_params p = {.max_locks = locks,
				     .max_sessions = sessions,
				     .max_ttl_ms = ttl,
				     .mode = 0600};
	char err[128] = "";
	int rc = lm_region_check_params(&p, err, sizeof(err));
	if (rc != want)
		fail_msg("check_params(locks %u, sessions %u, ttl %lld) = %d, "
			 "expected %d (%s)", locks, sessions, (long long)ttl,
			 rc, want, err);
	if (want != 0 && err[0] == '\0')
		fail_msg("check_params(locks %u, sessions %u, ttl %lld) "
			 "refused without a message", locks, sessions,
			 (long long)ttl);
}

static void check_params_bounds(void **state)
{
	(void)state;
	expect_params(1, 1, 1, 0);
	expect_params(4096, 1024, 2000, 0);
	expect_params(LM_MAX_LOCKS_LIMIT, LM_MAX_SESSIONS_LIMIT, 86400000, 0);
	expect_params(0, 8, 2000, LM_EINVAL);
	expect_params(LM_MAX_LOCKS_LIMIT + 1, 8, 2000, LM_EINVAL);
	expect_params(UINT32_MAX, 8, 2000, LM_EINVAL);
	expect_params(64, 0, 2000, LM_EINVAL);
	expect_params(64, LM_MAX_SESSIONS_LIMIT + 1, 2000, LM_EINVAL);
	expect_params(64, UINT32_MAX, 2000, LM_EINVAL);
	expect_params(64, 8, 0, LM_EINVAL);
	expect_params(64, 8, -1, LM_EINVAL);
	expect_params(64, 8, 86400001, LM_EINVAL);
	expect_params(64, 8, INT64_MAX, LM_EINVAL);
	/* The session encoding of an owner word has 16 bits (idx + 1). */
	assert_true(LM_MAX_SESSIONS_LIMIT + 1 <= 0xffffu);
}

/* Write one clock setting into both entries of s, as a damaged region
 * might hold it. */
static void damage_skew(struct lm_server *s, int64_t base, int64_t srv,
			int64_t rate)
{
	for (int e = 0; e < 2; e++) {
		atomic_store(&s->skew[e].base_ms, base);
		atomic_store(&s->skew[e].base_srv_ms, srv);
		atomic_store(&s->skew[e].rate_ppm, rate);
	}
}

/*
 * Values in a damaged region's clock settings and heartbeats are read
 * without overflow (fuzz/crashes/fuzz_region/abi12-*): a setting no
 * setter writes runs the clock true, a clock stays within what a lease
 * word holds, and a heartbeat stamp no server writes is never fresh.
 */
static void damaged_clock_and_heartbeat(void **state)
{
	(void)state;
	char name[64];
	struct lm_region r;
	create_region(&r, name, sizeof(name), "clock", &small);
	struct lm_server *s = r.servers[1];
	int64_t now_ns = harness_now_ns(), now_ms = now_ns / 1000000;
	const int64_t bad[][3] = {
		{INT64_MIN, 0, LM_RATE_ONE},   {INT64_MAX, 0, LM_RATE_ONE},
		{0, INT64_MAX, LM_RATE_ONE},   {0, INT64_MIN, LM_RATE_ONE},
		{0, 0, 0},                     {0, 0, -5},
		{0, 0, INT64_MAX},             {-1, 0, LM_RATE_ONE},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		damage_skew(s, bad[i][0], bad[i][1], bad[i][2]);
		int64_t c = lm_server_clock_ms(s, now_ns);
		if (c != now_ms)
			fail_msg("setting %zu: server clock %lld, not the true "
				 "%lld", i, (long long)c, (long long)now_ms);
		int64_t t = lm_server_to_local_ns(s, LM_CLOCK_MAX_MS, 0, now_ns);
		assert_true(t > now_ns);
	}
	/* In range, but far ahead: capped where lease words end. */
	damage_skew(s, 0, LM_CLOCK_MAX_MS, LM_RATE_MAX);
	assert_int_equal(lm_server_clock_ms(s, now_ns), LM_CLOCK_MAX_MS);
	/* The slowest rate, the longest wait: no overflow either. */
	damage_skew(s, now_ms, 0, LM_RATE_MIN);
	assert_true(lm_server_to_local_ns(s, LM_CLOCK_MAX_MS, 0, now_ns) >
		    now_ns);

	assert_true(lm_heartbeat_fresh(now_ms, now_ms));
	assert_true(lm_heartbeat_fresh(now_ms - LM_HEARTBEAT_STALE_MS, now_ms));
	assert_true(lm_heartbeat_fresh(now_ms + 5, now_ms)); /* a race */
	assert_int_equal(lm_heartbeat_age_ms(now_ms + 5, now_ms), 0);
	assert_false(lm_heartbeat_fresh(now_ms - LM_HEARTBEAT_STALE_MS - 1,
					now_ms));
	const int64_t stamps[] = {INT64_MIN, INT64_MIN + 1, -1};
	for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
		assert_false(lm_heartbeat_fresh(stamps[i], now_ms));
		assert_int_equal(lm_heartbeat_age_ms(stamps[i], now_ms),
				 INT64_MAX);
	}
	/* Far ahead: fresh, and no overflow on the way. */
	assert_int_equal(lm_heartbeat_age_ms(INT64_MAX, now_ms), 0);
	assert_int_equal(lm_heartbeat_age_ms(0, INT64_MAX), INT64_MAX);
	destroy_region(&r, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_unit(create_and_attach),
		harness_unit(size_grows_with_params),
		harness_unit(refuses_corrupted_header),
		harness_unit(refuses_truncated_object),
		harness_unit(refuses_uninitialised_object),
		harness_unit(refuses_foreign_object),
		harness_unit(missing_object),
		harness_unit(validate_small_buffers),
		harness_unit(resolve_name),
		harness_unit(resolve_rejects_empty),
		harness_unit(check_params_bounds),
		harness_unit(damaged_clock_and_heartbeat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
