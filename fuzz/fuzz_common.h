/*
 * fuzz_common.h - what the libFuzzer targets in fuzz/ share.
 *
 * Every target keeps what it touches private to its own process: files
 * go to a temporary directory made for the process (removed at exit, and
 * emptied after every input), shared-memory objects get names under
 * $LMFUZZ_SHM_PREFIX plus the pid (fuzz/run.sh removes whatever a
 * crashed run left behind under that prefix).
 */
#ifndef LOCKMGR_FUZZ_COMMON_H
#define LOCKMGR_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);

/*
 * A property the code under test must have. A failure prints what was
 * expected and aborts: libFuzzer reports it as a crash and saves the
 * input, like any other finding.
 */
#define FZ_CHECK(cond, ...)                                               \
	do {                                                              \
		if (!(cond)) {                                            \
			fz_check_failed(__FILE__, __LINE__, #cond);       \
			fprintf(stderr, __VA_ARGS__);                     \
			fputc('\n', stderr);                              \
			abort();                                          \
		}                                                         \
	} while (0)

void fz_check_failed(const char *file, int line, const char *cond);

/*
 * Is check `id` a known, already reported failure to let pass? The ids
 * come from $LMFUZZ_KNOWN (comma- or space-separated), which fuzz/run.sh
 * fills from fuzz/known-checks so that a run goes on past a reported
 * bug; fuzz/repro.sh leaves it empty, so saved inputs still fail.
 */
bool fz_known(const char *id);

/* This process's private temporary directory (created on first use
 * under $TMPDIR, else /tmp; removed at exit). */
const char *fz_tmpdir(void);

/* Remove everything inside dir (not dir itself). */
void fz_empty_dir(const char *dir);

/* path = fz_tmpdir() + "/" + name; aborts if it does not fit. */
void fz_tmp_path(char *path, size_t len, const char *name);

/* Write n bytes to path (created or truncated, mode 0600). 0 or -1. */
int fz_write_file(const char *path, const void *data, size_t n);

/* Read a whole file (at most max bytes) into a malloc'd buffer. */
void *fz_read_file(const char *path, size_t max, size_t *len);

/*
 * A fresh shared-memory object name: "/PREFIX-PID-N", PREFIX from
 * $LMFUZZ_SHM_PREFIX (default "lmfuzz"). Names never repeat within a
 * process.
 */
void fz_shm_name(char *out, size_t len, const char *tag);

/* If $LMFUZZ_MKSEEDS names a directory, the target writes its seed
 * inputs there and exits (fuzz/run.sh does this before every run, so
 * seeds always match the layout of the tree being fuzzed). Returns the
 * directory or NULL. */
const char *fz_seed_dir(void);

/* Write seed `name` (DIR/name). Exits the process on failure. */
void fz_write_seed(const char *dir, const char *name, const void *data,
		   size_t n);

#endif
