/*
 * fuzz_region.c - arbitrary bytes as a shared-memory region image.
 *
 * Each input is one region image (header, sessions, name index, server
 * headers, lock slots). Two stages:
 *
 *  1. lm_region_validate() on the bytes, which libFuzzer hands over in a
 *     heap buffer of exactly their size (AddressSanitizer flags a read
 *     one byte past it). A refusal must be LM_EINCOMPAT with a reason:
 *     `why` is pre-filled with 'X', and must come back NUL-terminated and
 *     rewritten. An acceptance must mean the header's own sizes fit in
 *     the bytes.
 *
 *  2. When the bytes validate, they go into a fresh POSIX shm object
 *     (unique name, unlinked right after the connects, so nothing is
 *     left even if a later step crashes) and the public API runs on it:
 *     lm_connect, lm_acquire with wait 0, lm_renew, lm_release (twice),
 *     lm_lookup + lm_acquire_ref, and lm_disconnect with a grant still
 *     held. When the image's last byte has bit 0 set, a second client
 *     connects too and contends: a try on the lock the first one holds,
 *     then a waiting acquire (2 ms) through the wait queue. Every return
 *     value must be 0 or an LM_E* code, a wait of 0 must never time
 *     out, a name must keep its lock index, and every grant of a name in
 *     one input must carry a token above the previous grant's (fencing
 *     must survive a corrupted image: the region's values are the
 *     starting point, not an excuse). LMFUZZ_TRACE=1 prints each call.
 *
 * The library maps the region itself (lm_region_map_fd). Its mmap() and
 * munmap() calls are wrapped (-Wl,--wrap) so that the mapping sits
 * between two 16 MiB PROT_NONE guard areas: a stray index that reaches
 * outside the region faults at once (and AddressSanitizer reports the
 * stack), rather than scribbling on whatever mapping the kernel happened
 * to put next to it. kill() is wrapped too: the client library may probe
 * a pid from the region with signal 0, but must never send it a real
 * signal (a check failure if it tries; the signal is not sent). Futex
 * waits with a deadline end at once in virtual time (see below), and a
 * custom mutator puts boundary values into the words that matter.
 *
 * Seeds are made at run time (LMFUZZ_MKSEEDS=DIR) with lm_region_init
 * and the public API of the tree being fuzzed, never committed: the
 * layout changes (LM_ABI_VERSION), and stale images would only exercise
 * the first refusal.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "../shm/region.h"
#include "../shm/session.h"
#include "fuzz_common.h"

/* ---------------------------------------------------------------------
 * Guarded mappings.
 */
#define GUARD_BYTES ((size_t)16 << 20)
#define MAX_GUARDED 16

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off);
int __wrap_munmap(void *addr, size_t len);
int __real_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig);

static struct {
	char *user;  /* what the caller got */
	char *base;  /* the whole reservation, guards included */
	size_t total;
} guarded[MAX_GUARDED];

static size_t page_round(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return (n + pg - 1) & ~(pg - 1);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	if (addr != NULL || fd < 0 || !(flags & MAP_SHARED) || len == 0)
		return __real_mmap(addr, len, prot, flags, fd, off);
	int slot = -1;
	for (int i = 0; i < MAX_GUARDED && slot < 0; i++)
		if (guarded[i].user == NULL)
			slot = i;
	FZ_CHECK(slot >= 0, "more than %d region mappings at once (leak?)",
		 MAX_GUARDED);
	size_t total = page_round(len) + 2 * GUARD_BYTES;
	char *base = __real_mmap(NULL, total, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
	if (base == MAP_FAILED)
		return MAP_FAILED;
	void *p = __real_mmap(base + GUARD_BYTES, len, prot, flags | MAP_FIXED,
			      fd, off);
	if (p == MAP_FAILED) {
		int e = errno;
		__real_munmap(base, total);
		errno = e;
		return MAP_FAILED;
	}
	guarded[slot].user = p;
	guarded[slot].base = base;
	guarded[slot].total = total;
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	for (int i = 0; i < MAX_GUARDED; i++) {
		if (guarded[i].user != addr || addr == NULL)
			continue;
		int rc = __real_munmap(guarded[i].base, guarded[i].total);
		guarded[i].user = NULL;
		return rc;
	}
	return __real_munmap(addr, len);
}

int __wrap_kill(pid_t pid, int sig)
{
	FZ_CHECK(sig == 0, "the client library tried to send signal %d to "
		 "pid %d, a pid read from a (fuzzed) region", sig, (int)pid);
	return __real_kill(pid, 0);
}

/* ---------------------------------------------------------------------
 * Virtual time. A client waits on futexes with absolute CLOCK_MONOTONIC
 * deadlines: for a token reservation no server will make (up to the
 * lease, 8 ms here), in the wait queue (2 ms). In this process nobody
 * else could end such a wait early, so instead of sleeping the harness
 * moves the client's clock to the deadline and reports ETIMEDOUT, as the
 * kernel would once the time had passed: the same paths run, without
 * the fuzzer idling most of the time. The library's clock_gettime and
 * syscall are wrapped for this; a wait without a deadline, or one whose
 * word has already changed, goes to the kernel as is.
 */
int __real_clock_gettime(clockid_t clk, struct timespec *ts);
int __wrap_clock_gettime(clockid_t clk, struct timespec *ts);
long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);

static int64_t warp_ns; /* added to CLOCK_MONOTONIC; only grows */
static bool warp_on;    /* not while making seeds (threads, real waits) */

int __wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
	int rc = __real_clock_gettime(clk, ts);
	if (rc == 0 && clk == CLOCK_MONOTONIC && warp_ns != 0) {
		int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec +
			     warp_ns;
		ts->tv_sec = ns / 1000000000;
		ts->tv_nsec = ns % 1000000000;
	}
	return rc;
}

long __wrap_syscall(long nr, ...)
{
	va_list ap;
	va_start(ap, nr);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (warp_on && nr == SYS_futex &&
	    (a[1] & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET && a[3] != 0) {
		const _Atomic uint32_t *word = (const void *)a[0];
		const struct timespec *dl = (const void *)a[3];
		if (atomic_load(word) != (uint32_t)a[2]) {
			errno = EAGAIN;
			return -1;
		}
		struct timespec now;
		__wrap_clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t d = ((int64_t)dl->tv_sec - now.tv_sec) * 1000000000 +
			    (dl->tv_nsec - now.tv_nsec);
		if (d > 0)
			warp_ns += d;
		errno = ETIMEDOUT;
		return -1;
	}
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---------------------------------------------------------------------
 * Checks on the public API.
 */
/* LMFUZZ_TRACE=1: print each call and its outcome (to reproduce a
 * finding by hand). */
static bool tracing(void)
{
	static int on = -1;
	if (on < 0) {
		const char *t = getenv("LMFUZZ_TRACE");
		on = t != NULL && *t != '\0' && *t != '0';
	}
	return on;
}

#define TRACE(...)                                                        \
	do {                                                              \
		if (tracing())                                            \
			fprintf(stderr, "fuzz_region: " __VA_ARGS__);     \
	} while (0)

static void check_rc(const char *op, int rc)
{
	TRACE("%s -> %d (%s)\n", op, rc, lm_strerror(rc));
	FZ_CHECK(rc == 0 || (rc >= LM_ERR_FIRST && rc <= LM_ERR_LAST),
		 "%s returned %d, which is not an LM_E* code", op, rc);
	const char *msg = lm_strerror(rc);
	FZ_CHECK(msg != NULL && *msg != '\0', "lm_strerror(%d) is empty", rc);
}

/* Per lock name, in this input: the last grant's token and lock index. */
struct last_grant {
	uint64_t token;
	int64_t index; /* -1: no grant yet */
};

/*
 * A grant of a name must carry a token above the previous grant's of
 * the same name (invariant 2 of README.md: fencing). Whatever the image
 * held, the library's own operations in this input must keep that. Two
 * distinct failures are told apart: the name resolving to another lock
 * index than before (a published name slot was reused: "name-alias"),
 * and a token not above the last one on the same lock.
 */
static void check_grant(const char *op, const char *name, const lm_grant *g,
			struct last_grant *last)
{
	/* private_u32_[0] is the lock index (client/internal.h, G_LOCK). */
	int64_t index = g->private_u32_[0];
	TRACE("%s(%s): token %llu, lock index %lld, flags %#x\n", op, name,
	      (unsigned long long)g->token, (long long)index, g->flags);
	if (g->token == 0 && fz_known("token-wrap"))
		return;
	FZ_CHECK(g->token != 0, "%s(%s) granted token 0: the token "
		 "high-water mark wrapped around", op, name);
	if (last->index >= 0 && index != last->index) {
		FZ_CHECK(fz_known("name-alias"), "%s: name %s resolved to lock "
			 "index %lld, but to %lld for the grant before: a "
			 "published name slot was reused, so two holders of "
			 "one name can hold different locks", op, name,
			 (long long)index, (long long)last->index);
		last->token = 0; /* another lock: its own token sequence */
	}
	FZ_CHECK(g->token > last->token, "%s(%s) granted token %llu, not "
		 "above the previous grant's %llu of the same lock: fencing "
		 "broken", op, name, (unsigned long long)g->token,
		 (unsigned long long)last->token);
	last->token = g->token;
	last->index = index;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Isolation rules name a process by pid and start time, which differ
 * from run to run: a rule naming SELF_PID (with any start time) is made
 * to name this process, so that the isolated paths can be reached and a
 * finding reproduces under another pid.
 */
#define SELF_PID 0x7ffffff0
static void point_rules_at_self(int fd, size_t size)
{
	for (unsigned i = 0; i < LM_ISOLATION_RULES; i++) {
		size_t off = offsetof(struct lm_region_header, isolation) +
			     i * sizeof(struct lm_isolation_rule);
		uint64_t who;
		if (off + sizeof(struct lm_isolation_rule) > size ||
		    pread(fd, &who, sizeof(who), (off_t)off) != sizeof(who))
			return;
		if (LM_ISO_PID(who) != SELF_PID)
			continue;
		uint64_t start = lm_proc_start_time(getpid());
		who = (who & ~(uint64_t)UINT32_MAX) | (uint32_t)getpid();
		FZ_CHECK(pwrite(fd, &start, sizeof(start),
				(off_t)(off + sizeof(who))) ==
				 (ssize_t)sizeof(start) &&
			 pwrite(fd, &who, sizeof(who), (off_t)off) ==
				 (ssize_t)sizeof(who),
			 "pwrite: %s", strerror(errno));
	}
}

static void drive_api(const uint8_t *data, size_t size)
{
	bool two = (data[size - 1] & 1u) != 0;
	char name[128];
	fz_shm_name(name, sizeof(name), "r");
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FZ_CHECK(fd >= 0, "shm_open(%s): %s", name, strerror(errno));
	int wrc = write_all(fd, data, size);
	int werr = errno;
	if (wrc == 0)
		point_rules_at_self(fd, size);
	close(fd);
	if (wrc != 0)
		shm_unlink(name);
	FZ_CHECK(wrc == 0, "writing the image to %s: %s", name,
		 strerror(werr));

	lm_client *c1 = NULL, *c2 = NULL;
	int rc1 = lm_connect(name, &c1);
	int rc2 = two && rc1 == 0 ? lm_connect(name, &c2) : 0;
	/* The mappings stay valid; nothing is left in /dev/shm. */
	shm_unlink(name);
	check_rc("lm_connect", rc1);
	FZ_CHECK(rc1 != LM_EINCOMPAT,
		 "lm_region_validate accepted these bytes, but lm_connect "
		 "refused the same bytes as incompatible");
	if (rc1 != 0) {
		FZ_CHECK(c1 == NULL, "failed lm_connect left a client");
		return;
	}
	check_rc("lm_connect (second client)", rc2);

	struct last_grant last_a = {0, -1}, last_b = {0, -1};
	int64_t max_ttl = lm_max_ttl_ms(c1);
	FZ_CHECK(max_ttl >= 1 && max_ttl <= 86400000,
		 "validated region has max TTL %lld", (long long)max_ttl);
	/* The shortest lease: a grant that has to wait for a token
	 * reservation no server will ever make waits at most this long. */
	int64_t ttl = LM_MIN_TTL_MS;

	lm_grant g;
	int rc = lm_acquire(c1, "fuzz/a", ttl, 0, &g);
	check_rc("lm_acquire", rc);
	FZ_CHECK(rc != LM_ETIMEDOUT, "lm_acquire with wait 0 timed out");
	if (max_ttl < LM_MIN_TTL_MS)
		FZ_CHECK(rc == LM_EBADTTL, "TTL %lld above the region's max "
			 "%lld accepted (rc %d)", (long long)ttl,
			 (long long)max_ttl, rc);
	if (rc == 0) {
		check_grant("lm_acquire", "fuzz/a", &g, &last_a);
		rc = lm_renew(c1, &g, ttl);
		check_rc("lm_renew", rc);
		rc = lm_release(c1, &g);
		check_rc("lm_release", rc);
		FZ_CHECK(rc == 0 || rc == LM_ELEASELOST,
			 "lm_release of a live grant returned %d", rc);
		rc = lm_release(c1, &g);
		FZ_CHECK(rc == LM_ENOTHELD,
			 "second lm_release returned %d, not LM_ENOTHELD", rc);
	}

	lm_lockref ref;
	lm_grant gb;
	bool held_b = false;
	rc = lm_lookup(c1, "fuzz/b", &ref);
	check_rc("lm_lookup", rc);
	if (rc == 0) {
		rc = lm_acquire_ref(c1, &ref, ttl, 0, &gb);
		check_rc("lm_acquire_ref", rc);
		FZ_CHECK(rc != LM_ETIMEDOUT,
			 "lm_acquire_ref with wait 0 timed out");
		if (rc == 0) {
			check_grant("lm_acquire_ref", "fuzz/b", &gb, &last_b);
			held_b = true;
		}
	}

	if (last_a.index >= 0 && last_a.index == last_b.index)
		FZ_CHECK(fz_known("name-alias"), "fuzz/a and fuzz/b resolved "
			 "to the same lock index %lld: a published name slot "
			 "was reused", (long long)last_a.index);

	if (c2 != NULL) {
		lm_grant g2;
		rc = lm_acquire(c2, "fuzz/b", ttl, 0, &g2);
		check_rc("lm_acquire (second client)", rc);
		if (rc == 0) {
			check_grant("second client's lm_acquire", "fuzz/b",
				    &g2, &last_b);
			check_rc("lm_release (second client)",
				 lm_release(c2, &g2));
		}
		if (held_b) {
			check_rc("lm_release", lm_release(c1, &gb));
			held_b = false;
		}
		/* Waits, through the queue, if fuzz/a is busy. */
		rc = lm_acquire(c2, "fuzz/a", ttl, 2, &g2);
		check_rc("lm_acquire with wait 2 ms", rc);
		if (rc == 0)
			check_grant("second client's lm_acquire", "fuzz/a",
				    &g2, &last_a);
		/* A grant still held: lm_disconnect frees it. */
		rc = lm_disconnect(c2);
		FZ_CHECK(rc == 0, "lm_disconnect returned %d", rc);
	}
	(void)held_b; /* still held, on purpose: disconnect frees it */
	rc = lm_disconnect(c1);
	FZ_CHECK(rc == 0, "lm_disconnect returned %d", rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	warp_on = true;
	char why[256];
	memset(why, 'X', sizeof(why));
	int rc = lm_region_validate(data, size, why, sizeof(why));
	if (rc != 0) {
		FZ_CHECK(rc == LM_EINCOMPAT,
			 "lm_region_validate returned %d, not LM_EINCOMPAT", rc);
		FZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL,
			 "the refusal's reason is not NUL-terminated");
		FZ_CHECK(why[0] != 'X' && why[0] != '\0',
			 "refused without saying why");
		/* fuzz/repro.sh: a saved image of an older layout no longer
		 * reproduces anything; say so rather than "passes". */
		if (getenv("LMFUZZ_REPRO") != NULL)
			fprintf(stderr, "fuzz_region: image refused: %s\n", why);
		return 0;
	}
	const struct lm_region_header *h = (const void *)data;
	FZ_CHECK(lm_region_size_for(h->max_locks, h->max_sessions) <= size,
		 "accepted an image of %zu bytes whose header needs %zu", size,
		 lm_region_size_for(h->max_locks, h->max_sessions));
	drive_api(data, size);
	return 0;
}

/* ---------------------------------------------------------------------
 * The custom mutator. A region image is 12 KiB or more, mostly zeroes
 * and padding, and what matters sits in 8-byte words at a few places:
 * the server headers (state, heartbeat, clock skew, token marks), the
 * lock slots (owner, lease, token, wait queue), the sessions. libFuzzer's
 * byte-level mutations rarely put a boundary value (INT64_MIN, 2^64-1)
 * into exactly such a word. So half of the mutations are libFuzzer's
 * own; the other half write one to three boundary values into aligned
 * words of one area, located through the image's own header (offsets
 * and counts, as lm_region_init wrote them): the server headers, the
 * first four locks' slots (the names the harness uses get the first
 * indices), the sessions, the header, or anywhere. Nothing here
 * decides what is valid: the library still has to cope with whatever
 * comes out.
 */
static const uint64_t boundary[] = {
	0, 1, 2, UINT64_MAX, UINT64_MAX - 1, INT64_MAX, INT64_MAX - 1,
	(uint64_t)INT64_MIN, (uint64_t)INT64_MIN + 1, UINT32_MAX,
	(uint64_t)UINT32_MAX + 1, INT32_MAX, (uint64_t)1 << 38,
	(uint64_t)1 << 50, 1000000, 65534, 65535, 65536,
};

static uint32_t next_rand(uint32_t *r)
{
	*r = *r * 1103515245u + 12345u;
	return *r >> 8;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	uint32_t r = seed;
	if (next_rand(&r) % 2 == 0 || size < sizeof(struct lm_region_header))
		return LLVMFuzzerMutate(data, size, max_size);
	struct lm_region_header h;
	memcpy(&h, data, sizeof(h));
	uint64_t lo = 0, len = size;
	switch (next_rand(&r) % 5) {
	case 0:
		lo = h.off_servers;
		len = (uint64_t)LM_NSERVERS * sizeof(struct lm_server);
		break;
	case 1:
		lo = h.off_slots;
		len = (uint64_t)LM_NSERVERS * sizeof(struct lm_slot) *
		      (h.max_locks < 4 ? h.max_locks : 4);
		break;
	case 2:
		lo = h.off_sessions;
		len = (uint64_t)sizeof(struct lm_session) *
		      (h.max_sessions < 4 ? h.max_sessions : 4);
		break;
	case 3:
		len = sizeof(h);
		break;
	}
	if (lo >= size || len == 0 || len > size - lo) {
		lo = 0;
		len = size;
	}
	unsigned words = 1 + next_rand(&r) % 3;
	for (unsigned i = 0; i < words && len >= 8; i++) {
		uint64_t off = lo + (next_rand(&r) % (len / 8)) * 8;
		uint64_t v = boundary[next_rand(&r) % (sizeof(boundary) /
						       sizeof(boundary[0]))];
		if (next_rand(&r) % 4 == 0) /* a nearby value */
			v += (uint64_t)(int64_t)(int)(next_rand(&r) % 17 - 8);
		if (next_rand(&r) % 3 == 0) { /* a 32-bit field */
			uint32_t v32 = (uint32_t)v;
			off += (next_rand(&r) % 2) * 4;
			memcpy(data + off, &v32, sizeof(v32));
		} else {
			memcpy(data + off, &v, sizeof(v));
		}
	}
	return size;
}

/* ---------------------------------------------------------------------
 * Seeds (LMFUZZ_MKSEEDS=DIR).
 */
static void seed_fresh(const char *dir, uint32_t locks, uint32_t sessions)
{
	int fd = memfd_create("lmfuzz-seed", MFD_CLOEXEC);
	FZ_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	struct lm_region r;
	struct lm_region_params p = {
		.max_locks = locks, .max_sessions = sessions,
		.max_ttl_ms = 60000, .mode = 0600,
	};
	FZ_CHECK(lm_region_init(&r, fd, "/lmfuzz-seed", &p) == 0,
		 "lm_region_init: %s", strerror(errno));
	char fname[64];
	snprintf(fname, sizeof(fname), "fresh-%ux%u", locks, sessions);
	fz_write_seed(dir, fname, r.base, r.size);
	lm_region_detach(&r);
}

struct waiter {
	const char *region;
	int started;
};

static void *wait_for_a(void *arg)
{
	struct waiter *w = arg;
	lm_client *c;
	if (lm_connect(w->region, &c) != 0)
		return NULL;
	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	lm_grant g;
	if (lm_acquire(c, "fuzz/a", 1000, 300, &g) == 0)
		lm_release(c, &g);
	lm_disconnect(c);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/*
 * A region that has been used: servers up (heartbeat in the far future,
 * so they stay "alive" whenever the fuzzer runs), sessions, names, held
 * and released locks with tokens, and a waiter in fuzz/a's queue.
 */
static void seed_live(const char *dir, uint32_t locks, uint32_t sessions,
		      unsigned down_mask)
{
	char name[128];
	fz_shm_name(name, sizeof(name), "seed");
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FZ_CHECK(fd >= 0, "shm_open(%s): %s", name, strerror(errno));
	struct lm_region r;
	struct lm_region_params p = {
		.max_locks = locks, .max_sessions = sessions,
		.max_ttl_ms = 86400000, .mode = 0600,
	};
	FZ_CHECK(lm_region_init(&r, fd, name, &p) == 0, "lm_region_init: %s",
		 strerror(errno));
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		unsigned st = (down_mask >> i) & 1u ? LM_SRV_DOWN : LM_SRV_UP;
		atomic_store(&r.servers[i]->state, LM_SRV_WORD(1, st));
		atomic_store(&r.servers[i]->heartbeat_ms, INT64_C(1) << 50);
	}
	/* With every server up: the seed's clients are isolated from
	 * server 2 (a majority still in reach), by a rule the harness
	 * points at itself. */
	if (down_mask == 0) {
		atomic_store(&r.hdr->isolation[0].start_time, 1);
		atomic_store(&r.hdr->isolation[0].who,
			     LM_ISO_WORD(SELF_PID, 1u << 2));
	}
	lm_client *a = NULL, *b = NULL;
	lm_grant ga, gb, gc;
	FZ_CHECK(lm_connect(name, &a) == 0, "seed: lm_connect");
	/* Held for a day: still busy when the fuzzer reads the seed. */
	FZ_CHECK(lm_acquire(a, "fuzz/a", 86400000, 0, &ga) == 0, "seed: a");
	/* Held with a 10 ms lease: expired by then. */
	FZ_CHECK(lm_acquire(a, "fuzz/b", 10, 0, &gb) == 0, "seed: b");
	if (sessions >= 2) {
		FZ_CHECK(lm_connect(name, &b) == 0, "seed: lm_connect b");
		for (int i = 0; i < 2; i++) {
			int rc = lm_acquire(b, "fuzz/c", 1000, 0, &gc);
			FZ_CHECK(rc == 0, "seed: c: %s", lm_strerror(rc));
			lm_release(b, &gc);
		}
	}
	pthread_t t;
	struct waiter w = {.region = name};
	bool waiting = sessions >= 3 &&
		       pthread_create(&t, NULL, wait_for_a, &w) == 0;
	if (waiting) {
		while (!__atomic_load_n(&w.started, __ATOMIC_ACQUIRE))
			sleep_ms(1);
		sleep_ms(50); /* it is in fuzz/a's queue now */
	}
	char fname[64];
	snprintf(fname, sizeof(fname), "live-%ux%u-down%u", locks, sessions,
		 down_mask);
	/* A snapshot as another process would see it. */
	uint8_t *copy = malloc(r.size);
	FZ_CHECK(copy != NULL, "malloc");
	memcpy(copy, r.base, r.size);
	fz_write_seed(dir, fname, copy, r.size);
	/* The same image with the harness's "second client" bit set in its
	 * last byte (page padding in these layouts). */
	copy[r.size - 1] |= 1u;
	strncat(fname, "-2clients", sizeof(fname) - strlen(fname) - 1);
	fz_write_seed(dir, fname, copy, r.size);
	free(copy);
	if (waiting)
		pthread_join(t, NULL);
	if (b != NULL)
		lm_disconnect(b);
	lm_disconnect(a);
	shm_unlink(name);
	lm_region_detach(&r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *dir = fz_seed_dir();
	if (dir == NULL)
		return 0;
	seed_fresh(dir, 1, 1);
	seed_fresh(dir, 16, 4);
	seed_live(dir, 4, 2, 0);
	seed_live(dir, 16, 4, 0);
	seed_live(dir, 16, 4, 4u); /* server 2 down: quorum of two */
	exit(0);
}
