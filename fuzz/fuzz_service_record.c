/*
 * fuzz_service_record.c - arbitrary bytes as lockmgrd's DIR/service and
 * DIR/abandoned (daemon/service_record.c).
 *
 * The bytes are written as both files in a private directory (the two
 * magics differ, so an input is in effect one or the other), then:
 *
 *  1. lm_service_load must return 0 or -1 with a non-empty,
 *     NUL-terminated message; never 1 ("no record yet"), since the file
 *     is there. What loads must be a record a service could have left:
 *     a known state, a NUL-terminated boot id, and values lockmgrd can
 *     use as it does (daemon/lockmgrd.c, take_over_record and
 *     outlive_leases): the end of the last service's leases
 *     (leases_until_ms if it stopped, now + max_ttl_ms if not), and
 *     that end in ns, without overflow. And it must survive
 *     lm_service_store + lm_service_load (the round trip).
 *  2. lm_abandoned_load: the same 0 or -1 with a message; on -1 no name
 *     was passed on; every name passed on is 1..255 bytes (each is
 *     copied to a block of its exact size, so AddressSanitizer sees a
 *     read past it). What loads must survive lm_abandoned_store +
 *     lm_abandoned_load with the same names in the same order, and the
 *     format has exactly one encoding of a list, so the file written
 *     must be the input, byte for byte.
 *
 * Both formats end in a CRC-32, so most mutations die at the checksum.
 * A custom mutator repairs it after three mutations in four: for a
 * service record (96 bytes: magic[8], version, state, boot_id[40],
 * leases_until_ms, max_ttl_ms, crc of the 72 bytes before it, pad),
 * the CRC at 72; for an abandoned list (magic "LMABND01", count, then
 * per name its length and bytes, then the CRC of all before it), either
 * the last four bytes as they are, or, half of the time, after walking
 * the names: the count cut to the names really there, the file cut
 * after them, the CRC appended. The layouts are copied from the
 * comments in service_record.c; if they change, the repair stops
 * helping but the target stays correct.
 *
 * Seeds (LMFUZZ_MKSEEDS=DIR) are files written by lm_service_store and
 * lm_abandoned_store.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../daemon/service_record.h"
#include "fuzz_common.h"

#define NAME_MAX_LEN 255u

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void check_service(const char *dir)
{
	struct lm_service_record rec;
	char err[512];
	memset(&rec, 0x5a, sizeof(rec));
	memset(err, 'X', sizeof(err));
	int rc = lm_service_load(dir, &rec, err, sizeof(err));
	FZ_CHECK(rc == 0 || rc == -1,
		 "lm_service_load returned %d for a file that exists", rc);
	if (rc == -1) {
		FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL,
			 "the error message is not NUL-terminated");
		FZ_CHECK(err[0] != 'X' && err[0] != '\0',
			 "lm_service_load failed without a message");
		return;
	}
	FZ_CHECK(rec.state == LM_SERVICE_RUNNING ||
			 rec.state == LM_SERVICE_STOPPED,
		 "loaded a record of state %u", rec.state);
	FZ_CHECK(memchr(rec.boot_id, '\0', sizeof(rec.boot_id)) != NULL,
		 "loaded a boot id without a NUL");
	/* What lockmgrd computes from it: until = leases_until_ms (a
	 * stopped service) or now + max_ttl_ms (a running one), in
	 * take_over_record; until * 1000000 (ns) in outlive_leases. */
	int64_t until = rec.leases_until_ms, ns;
	bool usable = rec.state == LM_SERVICE_STOPPED ||
		      (rec.max_ttl_ms >= 0 &&
		       !__builtin_add_overflow(mono_ms(), rec.max_ttl_ms,
					       &until));
	usable = usable &&
		 !__builtin_mul_overflow(until, (int64_t)1000000, &ns);
	FZ_CHECK(usable || fz_known("service-record-range"),
		 "loaded a record lockmgrd cannot use: state %u, "
		 "leases_until_ms %lld, max_ttl_ms %lld (the leases' end, "
		 "or it in ns, overflows)",
		 rec.state, (long long)rec.leases_until_ms,
		 (long long)rec.max_ttl_ms);
	/* Accepted: what it read must round-trip. */
	FZ_CHECK(lm_service_store(dir, &rec, err, sizeof(err)) == 0,
		 "lm_service_store: %s", err);
	struct lm_service_record again;
	memset(&again, 0xa5, sizeof(again));
	rc = lm_service_load(dir, &again, err, sizeof(err));
	FZ_CHECK(rc == 0, "a stored record does not load back (%d): %s", rc,
		 rc == -1 ? err : "");
	FZ_CHECK(again.state == rec.state &&
			 strcmp(again.boot_id, rec.boot_id) == 0 &&
			 again.leases_until_ms == rec.leases_until_ms &&
			 again.max_ttl_ms == rec.max_ttl_ms,
		 "stored state %u boot '%s' until %lld ttl %lld, loaded back "
		 "state %u boot '%.39s' until %lld ttl %lld",
		 rec.state, rec.boot_id, (long long)rec.leases_until_ms,
		 (long long)rec.max_ttl_ms, again.state, again.boot_id,
		 (long long)again.leases_until_ms,
		 (long long)again.max_ttl_ms);
}

/* The names lm_abandoned_load passes on, each in a block of its size. */
struct names {
	char **name;
	uint32_t *len;
	uint32_t n, cap;
};

static void collect(const char *name, uint32_t len, void *arg)
{
	struct names *s = arg;
	FZ_CHECK(len >= 1 && len <= NAME_MAX_LEN,
		 "name %u passed on with length %u", s->n, len);
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->name = realloc(s->name, s->cap * sizeof(*s->name));
		s->len = realloc(s->len, s->cap * sizeof(*s->len));
		FZ_CHECK(s->name != NULL && s->len != NULL, "out of memory");
	}
	char *copy = malloc(len);
	FZ_CHECK(copy != NULL, "out of memory");
	memcpy(copy, name, len);
	s->name[s->n] = copy;
	s->len[s->n++] = len;
}

static void names_free(struct names *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		free(s->name[i]);
	free(s->name);
	free(s->len);
	memset(s, 0, sizeof(*s));
}

static void check_abandoned(const char *dir, const uint8_t *data,
			    size_t size)
{
	struct names got = {0}, back = {0};
	char err[512];
	memset(err, 'X', sizeof(err));
	int rc = lm_abandoned_load(dir, collect, &got, err, sizeof(err));
	FZ_CHECK(rc == 0 || rc == -1,
		 "lm_abandoned_load returned %d for a file that exists", rc);
	if (rc == -1) {
		FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL,
			 "the error message is not NUL-terminated");
		FZ_CHECK(err[0] != 'X' && err[0] != '\0',
			 "lm_abandoned_load failed without a message");
		FZ_CHECK(got.n == 0, "lm_abandoned_load failed after passing "
			 "on %u names", got.n);
		names_free(&got);
		return;
	}
	/* Accepted: the names must round-trip, and the file is the one
	 * encoding of them. */
	static const char *none[1];
	const char *const *names = got.n ? (const char *const *)got.name
					 : none;
	static const uint32_t zero[1];
	FZ_CHECK(lm_abandoned_store(dir, names, got.n ? got.len : zero, got.n,
				    err, sizeof(err)) == 0,
		 "lm_abandoned_store: %s", err);
	char path[PATH_MAX];
	fz_tmp_path(path, sizeof(path), "abandoned");
	size_t len;
	void *bytes = fz_read_file(path, size + 1, &len);
	FZ_CHECK(bytes != NULL, "read %s", path);
	FZ_CHECK(len == size && memcmp(bytes, data, size) == 0,
		 "%u names loaded from %zu bytes are stored as %zu other "
		 "bytes", got.n, size, len);
	free(bytes);
	rc = lm_abandoned_load(dir, collect, &back, err, sizeof(err));
	FZ_CHECK(rc == 0, "stored names do not load back (%d): %s", rc,
		 rc == -1 ? err : "");
	FZ_CHECK(back.n == got.n, "stored %u names, loaded back %u", got.n,
		 back.n);
	for (uint32_t i = 0; i < got.n; i++)
		FZ_CHECK(back.len[i] == got.len[i] &&
				 memcmp(back.name[i], got.name[i],
					got.len[i]) == 0,
			 "name %u changed in the round trip", i);
	names_free(&got);
	names_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_tmpdir();
	static const char *const files[] = {"service", "abandoned"};
	for (unsigned i = 0; i < 2; i++) {
		char path[PATH_MAX];
		fz_tmp_path(path, sizeof(path), files[i]);
		FZ_CHECK(fz_write_file(path, data, size) == 0, "write %s: %s",
			 path, strerror(errno));
	}
	check_service(dir);
	check_abandoned(dir, data, size);
	fz_empty_dir(dir);
	return 0;
}

/* The layouts service_record.c writes (see its comments). */
#define RECORD_LEN    96u
#define RECORD_CRC_AT 72u
#define ABANDONED_MAGIC "LMABND01"

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static size_t fix_abandoned(uint8_t *data, size_t size, size_t max_size,
			    unsigned int seed)
{
	if (size < 12 || (seed >> 2) % 2 == 0) {
		/* The CRC where it is: the last four bytes. */
		if (size >= 4) {
			uint32_t crc = (uint32_t)crc32(0L, data,
						       (uInt)(size - 4));
			memcpy(data + size - 4, &crc, sizeof(crc));
		}
		return size;
	}
	/* Walk the names; cut the count and the file to those there. */
	uint32_t count = rd32(data + 8), n = 0;
	size_t p = 12;
	while (n < count && p + 4 <= size) {
		uint32_t len = rd32(data + p);
		if (len == 0 || len > NAME_MAX_LEN || p + 4 + len > size)
			break;
		p += 4 + len;
		n++;
	}
	if (p + 4 > max_size)
		return size;
	memcpy(data + 8, &n, sizeof(n));
	uint32_t crc = (uint32_t)crc32(0L, data, (uInt)p);
	memcpy(data + p, &crc, sizeof(crc));
	return p + 4;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % 4 == 0)
		return size;
	if (size >= 8 && memcmp(data, ABANDONED_MAGIC, 8) == 0)
		return fix_abandoned(data, size, max_size, seed);
	if (size >= RECORD_CRC_AT + 4) {
		uint32_t crc = (uint32_t)crc32(0L, data, RECORD_CRC_AT);
		memcpy(data + RECORD_CRC_AT, &crc, sizeof(crc));
	}
	return size;
}

static void seed_from(const char *seeds, const char *file, const char *seed)
{
	char path[PATH_MAX];
	fz_tmp_path(path, sizeof(path), file);
	size_t len;
	void *bytes = fz_read_file(path, 1 << 16, &len);
	FZ_CHECK(bytes != NULL, "read %s", path);
	fz_write_seed(seeds, seed, bytes, len);
	free(bytes);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *seeds = fz_seed_dir();
	if (seeds == NULL)
		return 0;
	const char *dir = fz_tmpdir();
	char err[512], boot[40];
	lm_boot_id(boot);
	int64_t now = mono_ms();
	const struct {
		const char *seed;
		struct lm_service_record rec;
	} recs[] = {
		{"service-running", {LM_SERVICE_RUNNING, "", 0, 60000}},
		{"service-stopped", {LM_SERVICE_STOPPED, "", now + 5000, 60000}},
		{"service-stopped-no-boot",
		 {LM_SERVICE_STOPPED, "", now, 86400000}},
	};
	for (unsigned i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		struct lm_service_record rec = recs[i].rec;
		if (i < 2)
			memcpy(rec.boot_id, boot, sizeof(rec.boot_id));
		FZ_CHECK(lm_service_store(dir, &rec, err, sizeof(err)) == 0,
			 "lm_service_store: %s", err);
		seed_from(seeds, "service", recs[i].seed);
	}
	/* Abandoned lists: none, one, several (a 255-byte name, a byte 0
	 * inside one, bytes above 127). */
	static char longest[NAME_MAX_LEN];
	memset(longest, 'n', sizeof(longest));
	const char *names[] = {"db/orders", longest, "a\0b", "\xc3\xa9t\xc3\xa9",
			       "x"};
	const uint32_t len[] = {9, NAME_MAX_LEN, 3, 6, 1};
	const struct {
		const char *seed;
		uint32_t count;
	} lists[] = {{"abandoned-0", 0}, {"abandoned-1", 1},
		     {"abandoned-5", 5}};
	for (unsigned i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		FZ_CHECK(lm_abandoned_store(dir, names, len, lists[i].count, err,
					    sizeof(err)) == 0,
			 "lm_abandoned_store: %s", err);
		seed_from(seeds, "abandoned", lists[i].seed);
	}
	exit(0);
}
