/*
 * fuzz_state_file.c - arbitrary bytes as lockmgrd's server-N.tokens.
 *
 * The bytes are written as server-0.tokens, server-1.tokens and
 * server-2.tokens in a private directory, and lm_state_load
 * (daemon/state_dir.c) reads each. It must return 0 (and then the value
 * must survive a store and a load: the round trip), or -1 with a
 * non-empty, NUL-terminated message; never 1 ("no file yet"), since the
 * file is there.
 *
 * The file is CRC-32 protected, so most mutations die at the checksum.
 * A custom mutator therefore recomputes the checksum after three
 * mutations in four (it knows the 32-byte layout: magic[8], version,
 * server, reservation, crc of the 24 bytes before it, pad), so the
 * fuzzer also explores what lies behind it: version, server index,
 * reservation. If the format changes, the fix-up only becomes useless,
 * not wrong: the target still checks whatever the loader does.
 *
 * Seeds (LMFUZZ_MKSEEDS=DIR) are files written by lm_state_store.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../daemon/state_dir.h"
#include "fuzz_common.h"

static void check_load(const char *dir, unsigned server)
{
	uint64_t res = 0x5a5a5a5a5a5a5a5aull;
	char err[512];
	memset(err, 'X', sizeof(err));
	int rc = lm_state_load(dir, server, &res, err, sizeof(err));
	FZ_CHECK(rc == 0 || rc == -1,
		 "lm_state_load(server %u) returned %d for a file that exists",
		 server, rc);
	if (rc == -1) {
		FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL,
			 "the error message is not NUL-terminated");
		FZ_CHECK(err[0] != 'X' && err[0] != '\0',
			 "lm_state_load failed without a message");
		return;
	}
	/* Accepted: what it read must round-trip. */
	FZ_CHECK(lm_state_store(dir, server, res, err, sizeof(err)) == 0,
		 "lm_state_store: %s", err);
	uint64_t again = 0;
	rc = lm_state_load(dir, server, &again, err, sizeof(err));
	FZ_CHECK(rc == 0 && again == res,
		 "stored %llu, loaded back rc %d value %llu",
		 (unsigned long long)res, rc, (unsigned long long)again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_tmpdir();
	for (unsigned i = 0; i < 3; i++) {
		char name[32], path[PATH_MAX];
		snprintf(name, sizeof(name), "server-%u.tokens", i);
		fz_tmp_path(path, sizeof(path), name);
		FZ_CHECK(fz_write_file(path, data, size) == 0, "write %s: %s",
			 path, strerror(errno));
	}
	for (unsigned i = 0; i < 3; i++)
		check_load(dir, i);
	fz_empty_dir(dir);
	return 0;
}

/* The layout state_dir.c writes (see its header comment). */
#define STATE_LEN    32u
#define STATE_CRC_AT 24u

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % 4 != 0 && size >= STATE_CRC_AT + 4) {
		uint32_t crc = (uint32_t)crc32(0L, data, STATE_CRC_AT);
		memcpy(data + STATE_CRC_AT, &crc, sizeof(crc));
	}
	return size;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *seeds = fz_seed_dir();
	if (seeds == NULL)
		return 0;
	const char *dir = fz_tmpdir();
	static const uint64_t marks[] = {0, 65536, UINT64_C(3) << 40,
					 UINT64_MAX};
	for (unsigned i = 0; i < 3; i++) {
		char err[512], name[32], path[PATH_MAX], seed[64];
		uint64_t mark = marks[i + (i == 2)];
		FZ_CHECK(lm_state_store(dir, i, mark, err, sizeof(err)) == 0,
			 "lm_state_store: %s", err);
		snprintf(name, sizeof(name), "server-%u.tokens", i);
		fz_tmp_path(path, sizeof(path), name);
		size_t len;
		void *bytes = fz_read_file(path, 4096, &len);
		FZ_CHECK(bytes != NULL, "read %s", path);
		snprintf(seed, sizeof(seed), "server-%u-%llu", i,
			 (unsigned long long)mark);
		fz_write_seed(seeds, seed, bytes, len);
		free(bytes);
	}
	exit(0);
}
