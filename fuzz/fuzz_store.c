/*
 * fuzz_store.c - arbitrary bytes as a fenced-store file (resource/store.c).
 *
 * Each input is written as a store file in a private directory, then:
 *
 *  1. fs_open read-only: 0 or FS_ECORRUPT, nothing else (the file exists
 *     and is readable). If it opened: fs_stats, then fs_read_stats over
 *     every record, touching every payload byte (AddressSanitizer checks
 *     the buffer), and fs_read again. The callback sees only well-formed
 *     records (type, length, consecutive sequence numbers); the stats
 *     must equal fs_stats'; a complete read (0) must agree with the
 *     header's totals and highest token; a failed one is FS_ECORRUPT.
 *  2. fs_open read-write: it must agree with the read-only open. Then a
 *     write with a token at the store's highest (must not be stale) and
 *     one with token 0. Each returns 0, FS_ESTALE or FS_ECORRUPT, and the
 *     reported highest-before must match the header.
 *  3. If the log read cleanly in 1 and the first write succeeded, the
 *     store must still read cleanly, with exactly the records added and
 *     the last accepted payload in place.
 *
 * All of it under a time limit per input (fuzz/run.sh: -timeout), so a
 * loop on a corrupt length shows up as a timeout.
 *
 * The format is CRC-protected (each header slot and each record), so a
 * custom mutator repairs what a mutation broke, three times in four: the
 * record checksums (walking the log from 4096), half of the time the
 * log's consistency too (sequence numbers, each record's highest, the
 * header's committed length, counts and highest), then both header
 * slots' checksums. It copies the layout documented in store.c; if that
 * changes, the repair stops helping but the target stays correct.
 *
 * Seeds (LMFUZZ_MKSEEDS=DIR) are stores made with fs_open(FS_CREATE) and
 * fs_write.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../resource/store.h"
#include "fuzz_common.h"

struct walk {
	uint64_t n, acc, rej, high, last_seq;
	uint32_t sum;
	uint8_t last_data[8];
	size_t last_len;
};

static int each(const struct fs_record *r, void *arg)
{
	struct walk *w = arg;
	FZ_CHECK(r->type == FS_REC_ACCEPT || r->type == FS_REC_REJECT,
		 "record %llu has type %u", (unsigned long long)r->seq,
		 r->type);
	FZ_CHECK(r->len <= FS_MAX_DATA, "record of %zu bytes", r->len);
	FZ_CHECK(r->type == FS_REC_ACCEPT || r->len == 0,
		 "a rejection with %zu bytes of data", r->len);
	FZ_CHECK(r->len == 0 || r->data != NULL, "data NULL, len %zu",
		 r->len);
	FZ_CHECK(r->seq == w->last_seq + 1,
		 "record %llu after record %llu",
		 (unsigned long long)r->seq,
		 (unsigned long long)w->last_seq);
	const uint8_t *p = r->data;
	for (size_t i = 0; i < r->len; i++)
		w->sum += p[i];
	w->last_seq = r->seq;
	w->n++;
	if (r->type == FS_REC_ACCEPT) {
		w->acc++;
		w->high = r->token;
		w->last_len = r->len;
		memcpy(w->last_data, p, r->len < 8 ? r->len : 8);
	} else {
		w->rej++;
	}
	return 0;
}

static bool stats_eq(const struct fs_stats *a, const struct fs_stats *b)
{
	return a->highest == b->highest && a->accepted == b->accepted &&
	       a->rejected == b->rejected &&
	       a->committed_bytes == b->committed_bytes && a->sync == b->sync;
}

/* Read the whole store; returns fs_open's or fs_read_stats' result. */
static int read_all(const char *path, struct fs_stats *st, struct walk *w,
		    bool *opened)
{
	fs_store *s;
	memset(w, 0, sizeof(*w));
	memset(st, 0, sizeof(*st));
	int rc = fs_open(path, FS_RDONLY, &s);
	FZ_CHECK(rc == 0 || rc == FS_ECORRUPT,
		 "read-only fs_open of an existing file returned %d (%s)", rc,
		 fs_strerror(rc));
	*opened = rc == 0;
	if (rc != 0)
		return rc;
	struct fs_stats st0, st1;
	rc = fs_stats(s, &st0);
	FZ_CHECK(rc == 0, "fs_stats after a successful open returned %d", rc);
	rc = fs_read_stats(s, &st1, each, w);
	FZ_CHECK(rc == 0 || rc == FS_ECORRUPT, "fs_read_stats returned %d",
		 rc);
	FZ_CHECK(stats_eq(&st0, &st1),
		 "fs_stats and fs_read_stats disagree on an unchanged file");
	if (rc == 0)
		FZ_CHECK(w->acc == st1.accepted && w->rej == st1.rejected &&
				 w->high == st1.highest,
			 "complete read of %llu+%llu records (highest %llu) "
			 "but the header says %llu+%llu (highest %llu)",
			 (unsigned long long)w->acc,
			 (unsigned long long)w->rej,
			 (unsigned long long)w->high,
			 (unsigned long long)st1.accepted,
			 (unsigned long long)st1.rejected,
			 (unsigned long long)st1.highest);
	struct walk w2;
	memset(&w2, 0, sizeof(w2));
	int rc2 = fs_read(s, each, &w2);
	FZ_CHECK(rc2 == rc && w2.n == w->n && w2.sum == w->sum,
		 "two reads of an unchanged store differ");
	*st = st1;
	fs_close(s);
	return rc;
}

/* The layout the custom mutator below repairs (store.c's disk_hdr). */
#define HDR_SLOT_SIZE   512u
#define HDR_SIZE        128u
#define HDR_GEN_AT      24u

static uint64_t rd64(const uint8_t *p);

static const char payload[] = "fuzz";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[PATH_MAX];
	fz_tmp_path(path, sizeof(path), "store");
	FZ_CHECK(fz_write_file(path, data, size) == 0, "write %s: %s", path,
		 strerror(errno));

	struct fs_stats st;
	struct walk w;
	bool opened;
	int rrc = read_all(path, &st, &w, &opened);

	fs_store *s;
	int orc = fs_open(path, 0, &s);
	FZ_CHECK(orc == 0 || orc == FS_ECORRUPT,
		 "read-write fs_open returned %d (%s)", orc, fs_strerror(orc));
	FZ_CHECK((orc == 0) == opened,
		 "the read-only open %s the file, the read-write open %s it",
		 opened ? "accepted" : "refused", orc == 0 ? "accepted"
							  : "refused");
	if (orc != 0) {
		fz_empty_dir(fz_tmpdir());
		return 0;
	}

	uint64_t tok = st.highest, before = 1;
	int w1 = fs_write(s, tok, payload, sizeof(payload) - 1, &before);
	FZ_CHECK(w1 == 0 || w1 == FS_ECORRUPT,
		 "write with token %llu = highest returned %d (%s)",
		 (unsigned long long)tok, w1, fs_strerror(w1));
	if (w1 == 0)
		FZ_CHECK(before == st.highest,
			 "write reported highest %llu, header says %llu",
			 (unsigned long long)before,
			 (unsigned long long)st.highest);
	/* A store whose header generation reaches 2^64-1 refuses every
	 * further write with FS_ECORRUPT, losing nothing (store.c): so the
	 * second write may be refused when the first one took the last
	 * generation (the file started at 2^64-2). */
	bool last_gen = size >= HDR_SLOT_SIZE + HDR_SIZE &&
			(rd64(data + HDR_GEN_AT) == UINT64_MAX - 1 ||
			 rd64(data + HDR_SLOT_SIZE + HDR_GEN_AT) ==
				 UINT64_MAX - 1);
	int w2 = fs_write(s, 0, NULL, 0, &before);
	FZ_CHECK(w2 == 0 || w2 == FS_ESTALE || w2 == FS_ECORRUPT,
		 "write with token 0 returned %d (%s)", w2, fs_strerror(w2));
	if (w1 == 0)
		FZ_CHECK(w2 == (tok == 0 ? 0 : FS_ESTALE) ||
				 (w2 == FS_ECORRUPT && last_gen),
			 "token 0 after token %llu: %d",
			 (unsigned long long)tok, w2);
	fs_close(s);

	if (rrc == 0 && w1 == 0) {
		bool second = w2 != FS_ECORRUPT;
		struct fs_stats st2;
		struct walk wa;
		bool again;
		int rc = read_all(path, &st2, &wa, &again);
		FZ_CHECK(rc == 0, "a clean store no longer reads after two "
			 "writes (%d)", rc);
		uint64_t acc = st.accepted + 1 + (second && tok == 0);
		uint64_t rej = st.rejected + (second && tok != 0);
		FZ_CHECK(st2.accepted == acc && st2.rejected == rej &&
				 st2.highest == tok,
			 "after the writes: %llu accepted, %llu rejected, "
			 "highest %llu; expected %llu, %llu, %llu",
			 (unsigned long long)st2.accepted,
			 (unsigned long long)st2.rejected,
			 (unsigned long long)st2.highest,
			 (unsigned long long)acc, (unsigned long long)rej,
			 (unsigned long long)tok);
		size_t want = second && tok == 0 ? 0 : sizeof(payload) - 1;
		FZ_CHECK(wa.last_len == want &&
				 memcmp(wa.last_data, payload, want) == 0,
			 "the last accepted record is not what was written");
	}
	fz_empty_dir(fz_tmpdir());
	return 0;
}

/* ---------------------------------------------------------------------
 * The custom mutator: repair checksums (and, half of the time, the
 * log's consistency) after a mutation. Offsets from store.c's
 * struct disk_hdr and struct disk_rec.
 */
#define HDR_CRC_AT      20u
#define HDR_COMMIT_AT   32u
#define HDR_HIGH_AT     40u
#define HDR_ACC_AT      48u
#define HDR_REJ_AT      56u
#define LOG_START       4096u
#define REC_SIZE        56u
#define REC_TYPE_AT     4u
#define REC_LEN_AT      8u
#define REC_CRC_AT      12u
#define REC_SEQ_AT      16u
#define REC_TOKEN_AT    24u
#define REC_HIGH_AT     32u

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void fix_store(uint8_t *d, size_t n, bool consistent)
{
	uint64_t at = LOG_START, seq = 0, high = 0, acc = 0, rej = 0;
	while (at + REC_SIZE <= n) {
		uint8_t *r = d + at;
		uint32_t len = rd32(r + REC_LEN_AT);
		uint16_t type;
		memcpy(&type, r + REC_TYPE_AT, 2);
		if (len > FS_MAX_DATA)
			break;
		size_t reclen = (REC_SIZE + len + 7u) & ~(size_t)7u;
		if (at + reclen > n)
			break;
		if (consistent) {
			if (type == FS_REC_REJECT && (len != 0 || high == 0))
				break;
			if (type != FS_REC_ACCEPT && type != FS_REC_REJECT)
				break;
			wr64(r + REC_SEQ_AT, seq + 1);
			wr64(r + REC_HIGH_AT, high);
			uint64_t tok = rd64(r + REC_TOKEN_AT);
			if (type == FS_REC_ACCEPT && tok < high)
				wr64(r + REC_TOKEN_AT, tok = high);
			if (type == FS_REC_REJECT && tok >= high)
				wr64(r + REC_TOKEN_AT, tok = high - 1);
			if (type == FS_REC_ACCEPT) {
				high = tok;
				acc++;
			} else {
				rej++;
			}
			seq++;
		}
		wr32(r + REC_CRC_AT, 0);
		uint32_t crc = (uint32_t)crc32(0L, r, (uInt)reclen);
		wr32(r + REC_CRC_AT, crc);
		at += reclen;
	}
	for (unsigned slot = 0; slot < 2; slot++) {
		size_t off = (size_t)slot * HDR_SLOT_SIZE;
		if (off + HDR_SIZE > n)
			break;
		uint8_t *h = d + off;
		if (consistent) {
			wr64(h + HDR_COMMIT_AT, at);
			wr64(h + HDR_HIGH_AT, high);
			wr64(h + HDR_ACC_AT, acc);
			wr64(h + HDR_REJ_AT, rej);
		}
		wr32(h + HDR_CRC_AT, 0);
		wr32(h + HDR_CRC_AT, (uint32_t)crc32(0L, h, HDR_SIZE));
	}
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % 4 != 0)
		fix_store(data, size, seed % 4 >= 2);
	return size;
}

/* ---------------------------------------------------------------------
 * Seeds (LMFUZZ_MKSEEDS=DIR).
 */
static void seed_store(const char *dir, const char *name, unsigned flags,
		       const uint64_t *tokens, size_t ntokens)
{
	char path[PATH_MAX];
	fz_tmp_path(path, sizeof(path), name);
	fs_store *s;
	int rc = fs_open(path, FS_CREATE | flags, &s);
	FZ_CHECK(rc == 0, "seed: fs_open: %s", fs_strerror(rc));
	for (size_t i = 0; i < ntokens; i++) {
		char buf[64];
		int len = snprintf(buf, sizeof(buf), "record %zu\n\x01\xff", i);
		rc = fs_write(s, tokens[i], buf, (size_t)len, NULL);
		FZ_CHECK(rc == 0 || rc == FS_ESTALE, "seed: fs_write: %s",
			 fs_strerror(rc));
	}
	fs_close(s);
	size_t len;
	void *bytes = fz_read_file(path, 1u << 20, &len);
	FZ_CHECK(bytes != NULL, "seed: read %s", path);
	fz_write_seed(dir, name, bytes, len);
	free(bytes);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *dir = fz_seed_dir();
	if (dir == NULL)
		return 0;
	static const uint64_t some[] = {5, 7, 6, 7, 1, 9};
	seed_store(dir, "empty", 0, NULL, 0);
	seed_store(dir, "one", 0, some, 1);
	seed_store(dir, "mixed", 0, some, 6);
	seed_store(dir, "sync", FS_SYNC, some, 3);
	exit(0);
}
