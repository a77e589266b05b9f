/*
 * store.h - the fenced store: the resource a lock protects.
 *
 * A fenced store is an append-only log in one file that any process can
 * open by path. A write carries the fencing token of the lock its writer
 * holds; the store accepts it only if the token is at least the highest
 * token it has already seen (equal is accepted: one holder writes many
 * times) and rejects it otherwise. The check and the append are one
 * atomic step across processes, so a zombie holder (paused past its
 * lease, then resumed) cannot slip a write in behind its successor's.
 * Every attempt is logged: accepted ones with their data, rejected ones
 * with the token and the highest token at the time, for the audit.
 *
 * Durability: a write that returned (accepted or rejected) is in the
 * page cache and survives the death of any process, SIGKILL included.
 * With FS_SYNC (or a store created with FS_SYNC) it is also on disk
 * (fdatasync) before the call returns, so it survives a power cut. A
 * writer killed half-way leaves a torn tail that the next open ignores
 * and the next write truncates; it is never taken for data.
 *
 * Concurrency of the calls
 * ------------------------
 *   fs_open, fs_close     any number of handles, in any processes.
 *   fs_write              serialised across every process and handle by
 *                         an OFD lock on the file; blocks only while
 *                         another writer is in its critical section (a
 *                         few syscalls, plus two fdatasyncs in sync
 *                         mode). A writer that dies drops the lock.
 *   fs_read, fs_stats     never block and take no lock: they see a
 *                         consistent snapshot as of their start.
 *   fs_strerror           thread-safe, never blocks.
 *
 *   A handle is not thread-safe: open one per thread (handles opened
 *   separately exclude each other even inside one process, because OFD
 *   locks belong to the open file description). A handle must not be
 *   used across fork(): parent and child would share one lock; every
 *   call on an inherited handle fails with FS_EINVAL. Open the store
 *   again in the child.
 *
 * Errors are negative FS_E* codes in their own range (so they never
 * collide with -errno or lockmgr's LM_E*); 0 is success.
 */
#ifndef LOCKMGR_RESOURCE_STORE_H
#define LOCKMGR_RESOURCE_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FS_OK        0
#define FS_ESTALE    (-1101) /* rejected: token below the highest seen */
#define FS_ECORRUPT  (-1102) /* not a store, or a checksum/structure
			      * error inside its committed log */
#define FS_ESYS      (-1103) /* a system call failed; errno says why */
#define FS_EINVAL    (-1104) /* bad argument, or handle used after fork
			      * or written through FS_RDONLY */
#define FS_ETOOBIG   (-1105) /* payload over FS_MAX_DATA */

#define FS_ERR_FIRST (-1105)
#define FS_ERR_LAST  (-1101)

/* The largest payload of one record. */
#define FS_MAX_DATA  (64u * 1024u)

/* fs_open flags. */
#define FS_CREATE 0x1u /* create the store if the path does not exist */
#define FS_SYNC   0x2u /* fdatasync before fs_write returns; with
			  * FS_CREATE on a new store, also set the store's
			  * own sync flag so every writer syncs */
#define FS_RDONLY 0x4u /* open read-only (fs_read/fs_stats only) */

/* fs_record.type */
#define FS_REC_ACCEPT 1u
#define FS_REC_REJECT 2u

typedef struct fs_store fs_store;

/* One record of the log, as fs_read hands it to its callback. */
struct fs_record {
	uint64_t seq;      /* position in the log, from 1; accepted and
			    * rejected attempts share the sequence */
	uint64_t token;    /* the token the writer presented */
	uint64_t highest;  /* the store's highest token before this
			    * attempt (for a rejection: the newer token
			    * that beat it) */
	int64_t time_ns;   /* CLOCK_REALTIME of the attempt */
	uint32_t pid;      /* the writer's pid */
	uint32_t type;     /* FS_REC_ACCEPT or FS_REC_REJECT */
	const void *data;  /* payload (accepted only; valid during the
			    * callback only) */
	size_t len;        /* payload length (0 for a rejection) */
};

struct fs_stats {
	uint64_t highest;  /* highest accepted token (0 if none) */
	uint64_t accepted; /* accepted records */
	uint64_t rejected; /* rejected attempts */
	uint64_t committed_bytes; /* length of the committed file */
	uint32_t sync;     /* the store's own sync flag */
};

/*
 * Open the store at path. Without FS_CREATE a missing path is FS_ESYS
 * (errno ENOENT). A new store is created whole (written to a temporary
 * name, then linked into place), so no process ever sees a half-made
 * one. A file that is not a store is FS_ECORRUPT.
 */
int fs_open(const char *path, unsigned flags, fs_store **out);

/*
 * Present token with len bytes of data. Returns 0 if accepted
 * (token >= highest), FS_ESTALE if rejected (the attempt is logged and
 * counted), or an error. *highest, if not NULL, receives the highest
 * token before this write, whatever the outcome was (0 on error). *seq,
 * if not NULL, receives the record's position in the log (accepted or
 * rejected).
 *
 * After an error nothing was logged, with one exception: in sync mode,
 * if the fdatasync after the commit fails, the record is in the log (and
 * the page cache) but not known to be on disk; as with any failed I/O,
 * treat its fate as unknown.
 */
int fs_write(fs_store *s, uint64_t token, const void *data, size_t len,
	     uint64_t *highest);
int fs_write_seq(fs_store *s, uint64_t token, const void *data, size_t len,
		 uint64_t *highest, uint64_t *seq);

/*
 * Call each(rec, arg) for every committed record, in log order, both
 * types. Every record's checksum is verified first; a bad one inside the
 * committed log is FS_ECORRUPT (after the records before it were
 * delivered), never skipped. If each returns non-zero, fs_read stops
 * and returns that value.
 */
int fs_read(fs_store *s, int (*each)(const struct fs_record *rec, void *arg),
	    void *arg);

/*
 * fs_read that also fills *st (if not NULL), before the first callback,
 * with the counters of exactly the snapshot it is about to deliver, so a
 * report can print its totals first and still agree with its records.
 */
int fs_read_stats(fs_store *s, struct fs_stats *st,
		  int (*each)(const struct fs_record *rec, void *arg),
		  void *arg);

/* The header's counters (a consistent snapshot). */
int fs_stats(fs_store *s, struct fs_stats *st);

/* The path the store was opened with. */
const char *fs_path(const fs_store *s);

void fs_close(fs_store *s);

/* A sentence saying what happened and what to do. Never NULL. */
const char *fs_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
