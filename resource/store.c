/*
 * store.c - the fenced store: an append-only log with a token check.
 *
 * File layout
 * -----------
 *
 *   0      header slot 0   (struct disk_hdr, 128 bytes)
 *   512    header slot 1   (struct disk_hdr, 128 bytes)
 *   1024   zeros up to LOG_START
 *   4096   record | record | ... | record      <- committed length
 *          [torn or unacknowledged tail]       <- ignored, truncated
 *
 * Each record is a struct disk_rec, its payload, and zero padding to a
 * multiple of 8 bytes; its CRC32 covers all of that (with the crc field
 * taken as 0). Fields are in host byte order: a store moved to a host of
 * the other byte order fails the magic check and is refused as foreign.
 *
 * Why two header slots (LMDB's two meta pages)
 * --------------------------------------------
 * The header says where the committed log ends, the highest token and
 * the counts. A writer updates it with one pwrite of 128 bytes into the
 * slot its new generation selects (generation % 2), leaving the other
 * slot holding the previous state. So there is always one intact header:
 *
 *   - a writer killed inside that pwrite (or a power cut tearing the
 *     sector) leaves one slot with a bad checksum and the other, older
 *     one valid: the record it was committing lies past the committed
 *     length of the older header and is ignored;
 *   - a reader takes no lock: it reads both slots and uses the valid one
 *     with the higher generation. A pread racing a writer's pwrite can
 *     see the slot being written half-copied (buffered reads and writes
 *     of one page are not atomic with each other on Linux); its checksum
 *     fails and the reader uses the other slot, an older but consistent
 *     state. A single header, updated in place, would need readers to
 *     lock or retry, and would be lost for good to a torn sector.
 *
 * Committed records are never rewritten, so whatever committed length a
 * reader saw stays readable: the log below it is immutable. Only the
 * region past the committed length ever changes (appended, or truncated
 * as a torn tail).
 *
 * The write protocol (fs_write_seq)
 * ---------------------------------
 * Writers serialise on an OFD write lock on the whole file
 * (F_OFD_SETLKW). The kernel drops it when the holder dies, so a writer
 * SIGKILLed in its critical section never blocks the others. (flock()
 * would do the same, but OFD byte-range locks also let a reader take a
 * shared lock on the same file for its rare fallback; classic POSIX
 * record locks were rejected because closing any descriptor of the file
 * in the process drops them, and they do not exclude two handles of one
 * process from each other.) Under the lock:
 *
 *   1. read the header; a size past its committed length is the tail of
 *      a writer that died before committing: truncate it;
 *   2. compare the token with the highest: accept if token >= highest;
 *   3. append an ACCEPT record (with the data) or a REJECT record (so
 *      rejections are counted and audited);
 *   4. [sync mode] fdatasync, so the record is on disk before any header
 *      points at it;
 *   5. write the next-generation header into the other slot (the commit
 *      point);
 *   6. [sync mode] fdatasync, so the commit is on disk before the ack;
 *   7. unlock, and only then report accepted or rejected.
 *
 * Without sync mode an acknowledged write is in the page cache, which
 * survives the death of any process but not a power cut: after one, a
 * header may reach records that never hit the disk, and the checksums
 * report the store as corrupt rather than return garbage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "resource/store.h"

#define HDR_MAGIC     "LMSTORE1"
#define HDR_VERSION   1u
#define HDR_SLOT_SIZE 512u  /* one sector apart: a torn sector write can
			     * only ever damage one slot */
#define LOG_START     4096u
#define HDR_SYNC      0x1u  /* disk_hdr.flags: every writer fdatasyncs */

#define REC_MAGIC     UINT32_C(0x4345524c) /* "LREC" */
#define REC_ALIGN     8u

/* The buffer fs_read parses from: at least one whole maximal record. */
#define READ_BUF_SIZE (256u * 1024u)

/*
 * One header slot. Written only by a writer holding the OFD write lock
 * (or by the creator, before the file has a name); read by anyone
 * without a lock, protected by its checksum.
 */
struct disk_hdr {
	char magic[8];        /* HDR_MAGIC */
	uint32_t version;     /* HDR_VERSION */
	uint32_t hdr_size;    /* sizeof(struct disk_hdr) */
	uint32_t flags;       /* HDR_SYNC */
	uint32_t crc;         /* CRC32 of this struct with crc = 0 */
	uint64_t generation;  /* +1 per write; selects the slot (gen % 2) */
	uint64_t committed;   /* end of the committed log (file offset) */
	uint64_t highest;     /* highest accepted token, 0 if none */
	uint64_t accepted;    /* ACCEPT records in the committed log */
	uint64_t rejected;    /* REJECT records in the committed log */
	int64_t created_ns;   /* CLOCK_REALTIME at creation */
	uint64_t reserved[7]; /* zero */
};
_Static_assert(sizeof(struct disk_hdr) == 128, "disk_hdr is 128 bytes");
_Static_assert(2 * HDR_SLOT_SIZE <= LOG_START, "slots fit before the log");

/* One record header, followed by len bytes of payload and padding. */
struct disk_rec {
	uint32_t magic;    /* REC_MAGIC */
	uint16_t type;     /* FS_REC_ACCEPT or FS_REC_REJECT */
	uint16_t reserved; /* zero */
	uint32_t len;      /* payload bytes (0 for REJECT) */
	uint32_t crc;      /* CRC32 of header (crc = 0), payload, padding */
	uint64_t seq;      /* 1-based position in the log */
	uint64_t token;
	uint64_t highest;  /* the store's highest before this attempt */
	int64_t time_ns;   /* CLOCK_REALTIME */
	uint32_t pid;
	uint32_t reserved2; /* zero */
};
_Static_assert(sizeof(struct disk_rec) == 56, "disk_rec is 56 bytes");
_Static_assert(sizeof(struct disk_rec) % REC_ALIGN == 0, "aligned");
_Static_assert(sizeof(struct disk_rec) + FS_MAX_DATA + REC_ALIGN <=
	       READ_BUF_SIZE, "a whole record fits the read buffer");

struct fs_store {
	int fd;
	unsigned flags;     /* FS_* given to fs_open */
	pid_t pid;          /* the process that opened it (see fork rule) */
	char *path;
	unsigned char *rec; /* one maximal record, for fs_write */
};

/* CRC-32 from zlib (IEEE 802.3, as gzip uses). */
static uint32_t crc32_update(uint32_t crc, const void *buf, size_t n)
{
	return (uint32_t)crc32(crc, (const Bytef *)buf, (uInt)n);
}

static uint32_t hdr_crc(const struct disk_hdr *h)
{
	struct disk_hdr c = *h;
	c.crc = 0;
	return crc32_update(0, &c, sizeof(c));
}

/* CRC of a record laid out contiguously (header, payload, padding). */
static uint32_t rec_crc(const unsigned char *rec, size_t reclen)
{
	struct disk_rec h;
	memcpy(&h, rec, sizeof(h));
	h.crc = 0;
	uint32_t crc = crc32_update(0, &h, sizeof(h));
	return crc32_update(crc, rec + sizeof(h), reclen - sizeof(h));
}

static size_t rec_size(size_t len)
{
	return (sizeof(struct disk_rec) + len + REC_ALIGN - 1) &
	       ~(size_t)(REC_ALIGN - 1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------------
 * System call helpers: retry EINTR and short transfers.
 */
static int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Read up to n bytes; returns the count (short only at end of file). */
static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * Take (F_WRLCK / F_RDLCK) or drop (F_UNLCK) the OFD lock on the whole
 * file. Waiting has no timeout: the holder's critical section is a few
 * system calls, and the kernel drops the lock of a holder that dies. (A
 * holder stopped by SIGSTOP does block the others until it continues;
 * any lock would.)
 */
static int ofd_lock(int fd, short type)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* to the end of the file, however long */
		.l_pid = 0, /* must be 0 for OFD locks */
	};
	int cmd = type == F_UNLCK ? F_OFD_SETLK : F_OFD_SETLKW;
	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Drop the lock without disturbing the errno of the error being returned. */
static void ofd_unlock_keep_errno(int fd)
{
	int saved = errno;
	(void)ofd_lock(fd, F_UNLCK);
	errno = saved;
}

/* ---------------------------------------------------------------------
 * The header.
 */
static bool hdr_valid(const struct disk_hdr *h, unsigned slot)
{
	return memcmp(h->magic, HDR_MAGIC, 8) == 0 &&
	       h->version == HDR_VERSION &&
	       h->hdr_size == sizeof(struct disk_hdr) &&
	       h->crc == hdr_crc(h) && h->generation % 2 == slot &&
	       h->committed >= LOG_START &&
	       h->accepted + h->rejected >= h->accepted; /* no overflow */
}

/*
 * Read both slots once and pick the current header. Returns 0, or
 * FS_ECORRUPT if neither slot is valid, or FS_ESYS. *ours, if not NULL,
 * says whether either slot at least carries the store's magic.
 */
static int hdr_read_once(int fd, struct disk_hdr *out, bool *ours)
{
	if (ours != NULL)
		*ours = false;
	unsigned char buf[2 * HDR_SLOT_SIZE];
	ssize_t n = pread_full(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return FS_ESYS;
	if ((size_t)n < sizeof(buf))
		return FS_ECORRUPT; /* too short to be a store */
	struct disk_hdr h[2];
	memcpy(&h[0], buf, sizeof(h[0]));
	memcpy(&h[1], buf + HDR_SLOT_SIZE, sizeof(h[1]));
	if (ours != NULL)
		*ours = memcmp(h[0].magic, HDR_MAGIC, 8) == 0 ||
			memcmp(h[1].magic, HDR_MAGIC, 8) == 0;
	bool ok0 = hdr_valid(&h[0], 0), ok1 = hdr_valid(&h[1], 1);
	if (!ok0 && !ok1)
		return FS_ECORRUPT;
	if (ok0 && (!ok1 || h[0].generation > h[1].generation))
		*out = h[0];
	else
		*out = h[1];
	return 0;
}

/*
 * The current header, for a caller that does not hold the write lock.
 * Lock-free first. If neither slot verifies, the reader either raced
 * two writes (the slot it fell back on was overwritten under it too, a
 * window of a few microseconds) or the file is damaged or foreign; under
 * a shared lock no write is in progress, so a second failure is final.
 */
static int hdr_read_unlocked(int fd, struct disk_hdr *out)
{
	bool ours;
	int err = hdr_read_once(fd, out, &ours);
	/* A file without the magic in either slot is foreign: no need to
	 * wait for (or on) anyone's lock to say so. */
	if (err != FS_ECORRUPT || !ours)
		return err;
	if (ofd_lock(fd, F_RDLCK) < 0)
		return FS_ESYS;
	err = hdr_read_once(fd, out, NULL);
	if (err == FS_ESYS)
		ofd_unlock_keep_errno(fd);
	else
		(void)ofd_lock(fd, F_UNLCK);
	return err;
}

/* Commit: write h into the slot its generation selects, in one pwrite. */
static int hdr_write(int fd, struct disk_hdr *h)
{
	h->crc = hdr_crc(h);
	off_t off = (off_t)(h->generation % 2) * HDR_SLOT_SIZE;
	for (;;) {
		ssize_t w = pwrite(fd, h, sizeof(*h), off);
		if (w == (ssize_t)sizeof(*h))
			return 0;
		if (w < 0 && errno == EINTR)
			continue;
		/* A short write of 128 bytes inside one page does not happen
		 * on a local file system; if it did, the slot fails its
		 * checksum and readers keep the previous one. */
		if (w >= 0)
			errno = EIO;
		return -1;
	}
}

/* ---------------------------------------------------------------------
 * Creation: write the store whole under a temporary name, then link it
 * into place. link() fails with EEXIST if another process got there
 * first, so exactly one creator wins and no one ever opens a half-made
 * store (an open-or-create on the final name would let a reader see an
 * empty file and call it "not a store"). A creator killed between the
 * two steps leaves a PATH.tmp.* file behind, never a bad store.
 */
static int fsync_parent_dir(const char *path)
{
	char *dup = strdup(path);
	if (dup == NULL)
		return -1;
	char *slash = strrchr(dup, '/');
	const char *dir = ".";
	if (slash == dup)
		dir = "/";
	else if (slash != NULL) {
		*slash = '\0';
		dir = dup;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = -1;
	if (dfd >= 0) {
		rc = fsync(dfd);
		int saved = errno;
		close(dfd);
		errno = saved;
	}
	free(dup);
	return rc;
}

/* Returns 0 (created, or someone else did: open it), or FS_ESYS. */
static int store_create(const char *path, bool sync)
{
	static _Atomic unsigned counter; /* uniqueness within a process;
					  * O_EXCL catches any clash */
	size_t n = strlen(path) + 48;
	char *tmp = malloc(n);
	if (tmp == NULL)
		return FS_ESYS;
	int fd = -1;
	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		snprintf(tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(),
			 atomic_fetch_add(&counter, 1u));
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		free(tmp);
		return FS_ESYS;
	}

	int err = FS_ESYS;
	unsigned char *page = calloc(1, LOG_START);
	if (page == NULL)
		goto out;
	/* Generation 1 in slot 1; slot 0 stays zero (not valid). */
	struct disk_hdr h = {
		.version = HDR_VERSION,
		.hdr_size = sizeof(struct disk_hdr),
		.flags = sync ? HDR_SYNC : 0,
		.generation = 1,
		.committed = LOG_START,
		.created_ns = now_ns(),
	};
	memcpy(h.magic, HDR_MAGIC, 8);
	h.crc = hdr_crc(&h);
	memcpy(page + HDR_SLOT_SIZE, &h, sizeof(h));
	if (pwrite_all(fd, page, LOG_START, 0) < 0)
		goto out;
	if (sync && fsync(fd) < 0)
		goto out;
	if (link(tmp, path) < 0 && errno != EEXIST)
		goto out;
	if (sync && fsync_parent_dir(path) < 0)
		goto out;
	err = 0;
out:;
	int saved = errno;
	free(page);
	close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return err;
}

/* ---------------------------------------------------------------------
 * Open and close.
 */
int fs_open(const char *path, unsigned flags, fs_store **out)
{
	if (out != NULL)
		*out = NULL;
	if (path == NULL || *path == '\0' || out == NULL ||
	    (flags & ~(FS_CREATE | FS_SYNC | FS_RDONLY)) != 0 ||
	    ((flags & FS_RDONLY) && (flags & (FS_CREATE | FS_SYNC))))
		return FS_EINVAL;

	/* O_NONBLOCK so that a FIFO at path cannot hang the open; it is
	 * refused as "not a store" right after. */
	int oflags = ((flags & FS_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		     O_NONBLOCK;
	int fd = -1;
	/* Bounded: another process would have to delete the store between
	 * our creating it and opening it, again and again. */
	for (int tries = 0; fd < 0 && tries < 5; tries++) {
		fd = open(path, oflags);
		if (fd >= 0 || errno != ENOENT || !(flags & FS_CREATE))
			break;
		int err = store_create(path, flags & FS_SYNC);
		if (err != 0)
			return err;
	}
	if (fd < 0)
		return FS_ESYS;

	int err = FS_ECORRUPT;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		err = FS_ESYS;
		goto fail;
	}
	if (!S_ISREG(st.st_mode))
		goto fail;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		err = FS_ESYS;
		goto fail;
	}
	struct disk_hdr h;
	err = hdr_read_unlocked(fd, &h);
	if (err != 0)
		goto fail;

	err = FS_ESYS;
	fs_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	s->fd = fd;
	s->flags = flags;
	s->pid = getpid();
	s->path = strdup(path);
	if (!(flags & FS_RDONLY))
		s->rec = malloc(rec_size(FS_MAX_DATA));
	if (s->path == NULL || (!(flags & FS_RDONLY) && s->rec == NULL)) {
		free(s->path);
		free(s);
		goto fail;
	}
	*out = s;
	return 0;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return err;
}

void fs_close(fs_store *s)
{
	if (s == NULL)
		return;
	/* Closing the last descriptor of the open file description drops
	 * its OFD lock; in a child that inherited the handle, the parent's
	 * descriptor keeps it (and nothing here is held between calls). */
	close(s->fd);
	free(s->rec);
	free(s->path);
	free(s);
}

const char *fs_path(const fs_store *s)
{
	return s != NULL ? s->path : NULL;
}

/* A handle is usable only in the process that opened it (see store.h). */
static bool handle_ok(const fs_store *s)
{
	return s != NULL && s->pid == getpid();
}

/* ---------------------------------------------------------------------
 * Write.
 */
int fs_write(fs_store *s, uint64_t token, const void *data, size_t len,
	     uint64_t *highest)
{
	return fs_write_seq(s, token, data, len, highest, NULL);
}

int fs_write_seq(fs_store *s, uint64_t token, const void *data, size_t len,
		 uint64_t *highest, uint64_t *seq)
{
	if (highest != NULL)
		*highest = 0;
	if (seq != NULL)
		*seq = 0;
	if (!handle_ok(s) || (s->flags & FS_RDONLY) ||
	    (data == NULL && len > 0))
		return FS_EINVAL;
	if (len > FS_MAX_DATA)
		return FS_ETOOBIG;

	if (ofd_lock(s->fd, F_WRLCK) < 0)
		return FS_ESYS;

	/* Under the write lock no one else writes, so the slots can only be
	 * torn by a writer that died: hdr_read_once is enough. */
	struct disk_hdr h;
	int err = hdr_read_once(s->fd, &h, NULL);
	if (err != 0)
		goto unlock;

	/* Anything past the committed length belongs to a writer that died
	 * before its commit (or failed): it was never acknowledged.
	 *
	 * The writer trusts the (checksummed) header and does not re-verify
	 * the committed log: that would make every write O(size of the log).
	 * Damage inside the log is fs_read's to report, and appending after
	 * it loses nothing that was not already lost. */
	struct stat st;
	err = FS_ESYS;
	if (fstat(s->fd, &st) < 0)
		goto unlock;
	if ((uint64_t)st.st_size < h.committed) {
		/* Committed records are missing: something outside the store
		 * truncated the file. */
		err = FS_ECORRUPT;
		goto unlock;
	}
	if (h.generation == UINT64_MAX) {
		/* No generation above it: the next header would lose to this
		 * one and the write would vanish. Only a damaged or crafted
		 * file gets here (2^64 commits); refuse it, lose nothing. */
		err = FS_ECORRUPT;
		goto unlock;
	}
	if ((uint64_t)st.st_size > h.committed &&
	    ftruncate(s->fd, (off_t)h.committed) < 0)
		goto unlock;

	bool accept = token >= h.highest;
	size_t plen = accept ? len : 0;
	size_t reclen = rec_size(plen);
	struct disk_rec r = {
		.magic = REC_MAGIC,
		.type = accept ? FS_REC_ACCEPT : FS_REC_REJECT,
		.len = (uint32_t)plen,
		.seq = h.accepted + h.rejected + 1,
		.token = token,
		.highest = h.highest,
		.time_ns = now_ns(),
		.pid = (uint32_t)getpid(),
	};
	memcpy(s->rec, &r, sizeof(r));
	if (plen > 0)
		memcpy(s->rec + sizeof(r), data, plen);
	memset(s->rec + sizeof(r) + plen, 0, reclen - sizeof(r) - plen);
	r.crc = rec_crc(s->rec, reclen);
	memcpy(s->rec, &r, sizeof(r));

	bool sync = (s->flags & FS_SYNC) || (h.flags & HDR_SYNC);
	if (pwrite_all(s->fd, s->rec, reclen, (off_t)h.committed) < 0 ||
	    (sync && fdatasync(s->fd) < 0)) {
		/* Not committed; drop what landed now rather than leave it
		 * to the next writer (it would be ignored either way). */
		int saved = errno;
		(void)ftruncate(s->fd, (off_t)h.committed);
		errno = saved;
		goto unlock;
	}

	struct disk_hdr nh = h;
	nh.generation = h.generation + 1;
	nh.committed = h.committed + reclen;
	if (accept) {
		nh.highest = token;
		nh.accepted++;
	} else {
		nh.rejected++;
	}
	if (hdr_write(s->fd, &nh) < 0 || (sync && fdatasync(s->fd) < 0))
		goto unlock;

	if (highest != NULL)
		*highest = h.highest;
	if (seq != NULL)
		*seq = r.seq;
	err = accept ? 0 : FS_ESTALE;
unlock:
	if (err == FS_ESYS)
		ofd_unlock_keep_errno(s->fd);
	else
		(void)ofd_lock(s->fd, F_UNLCK);
	return err;
}

/* ---------------------------------------------------------------------
 * Read.
 */
static void stats_from_hdr(const struct disk_hdr *h, struct fs_stats *st)
{
	st->highest = h->highest;
	st->accepted = h->accepted;
	st->rejected = h->rejected;
	st->committed_bytes = h->committed;
	st->sync = (h->flags & HDR_SYNC) != 0;
}

int fs_stats(fs_store *s, struct fs_stats *st)
{
	if (!handle_ok(s) || st == NULL)
		return FS_EINVAL;
	struct disk_hdr h;
	int err = hdr_read_unlocked(s->fd, &h);
	if (err == 0)
		stats_from_hdr(&h, st);
	return err;
}

/* A window [off, off + len) of the file, refilled on demand. */
struct reader {
	int fd;
	unsigned char *buf;
	uint64_t off; /* file offset of buf[0] */
	size_t len;   /* valid bytes in buf */
	uint64_t end; /* committed length of the snapshot */
};

/*
 * Make [at, at + need) available in the buffer; at + need <= end. A short
 * read means the file is shorter than its committed length: something
 * outside the store truncated it.
 */
static int reader_need(struct reader *rd, uint64_t at, size_t need)
{
	if (at >= rd->off && at + need <= rd->off + rd->len)
		return 0;
	uint64_t want = rd->end - at;
	if (want > READ_BUF_SIZE)
		want = READ_BUF_SIZE;
	ssize_t n = pread_full(rd->fd, rd->buf, (size_t)want, (off_t)at);
	if (n < 0)
		return FS_ESYS;
	rd->off = at;
	rd->len = (size_t)n;
	return (size_t)n >= need ? 0 : FS_ECORRUPT;
}

int fs_read(fs_store *s, int (*each)(const struct fs_record *rec, void *arg),
	    void *arg)
{
	return fs_read_stats(s, NULL, each, arg);
}

int fs_read_stats(fs_store *s, struct fs_stats *st,
		  int (*each)(const struct fs_record *rec, void *arg),
		  void *arg)
{
	if (!handle_ok(s) || each == NULL)
		return FS_EINVAL;
	struct disk_hdr h;
	int err = hdr_read_unlocked(s->fd, &h);
	if (err != 0)
		return err;
	if (st != NULL)
		stats_from_hdr(&h, st);

	struct reader rd = { .fd = s->fd, .end = h.committed };
	rd.buf = malloc(READ_BUF_SIZE);
	if (rd.buf == NULL)
		return FS_ESYS;

	/* Besides the checksums, check what the write protocol guarantees:
	 * consecutive sequence numbers, accepted tokens that never go down,
	 * and totals that match the header. A checksum alone would pass a
	 * well-formed record that a bug wrote in the wrong place. */
	uint64_t at = LOG_START, seq = 0, high = 0, nacc = 0, nrej = 0;
	err = FS_ECORRUPT;
	while (at < h.committed) {
		if (h.committed - at < sizeof(struct disk_rec))
			goto out;
		int e = reader_need(&rd, at, sizeof(struct disk_rec));
		if (e != 0) {
			err = e;
			goto out;
		}
		struct disk_rec r;
		memcpy(&r, rd.buf + (at - rd.off), sizeof(r));
		if (r.magic != REC_MAGIC || r.len > FS_MAX_DATA ||
		    (r.type != FS_REC_ACCEPT && r.type != FS_REC_REJECT) ||
		    (r.type == FS_REC_REJECT && r.len != 0))
			goto out;
		size_t reclen = rec_size(r.len);
		if (h.committed - at < reclen)
			goto out;
		e = reader_need(&rd, at, reclen);
		if (e != 0) {
			err = e;
			goto out;
		}
		const unsigned char *p = rd.buf + (at - rd.off);
		if (rec_crc(p, reclen) != r.crc || r.seq != seq + 1 ||
		    r.highest != high)
			goto out;
		if (r.type == FS_REC_ACCEPT) {
			if (r.token < high)
				goto out;
			high = r.token;
			nacc++;
		} else {
			if (r.token >= high)
				goto out;
			nrej++;
		}
		seq = r.seq;

		struct fs_record rec = {
			.seq = r.seq,
			.token = r.token,
			.highest = r.highest,
			.time_ns = r.time_ns,
			.pid = r.pid,
			.type = r.type,
			.data = p + sizeof(r),
			.len = r.len,
		};
		int rc = each(&rec, arg);
		if (rc != 0) {
			err = rc;
			goto out;
		}
		at += reclen;
	}
	if (at == h.committed && nacc == h.accepted && nrej == h.rejected &&
	    high == h.highest)
		err = 0;
out:;
	int saved = errno;
	free(rd.buf);
	errno = saved;
	return err;
}

/* ---------------------------------------------------------------------
 * Errors.
 */
const char *fs_strerror(int err)
{
	switch (err) {
	case FS_OK:
		return "success";
	case FS_ESTALE:
		return "rejected as stale: the token is older than one the "
		       "store has already accepted, so this writer's lock was "
		       "lost (lease expired or taken over); stop writing and "
		       "acquire the lock again";
	case FS_ECORRUPT:
		return "not a usable fenced store: the file is foreign, "
		       "truncated, or a checksum inside its committed log does "
		       "not match; check the path, or restore the file from a "
		       "backup";
	case FS_ESYS:
		return "a system call failed (see errno)";
	case FS_EINVAL:
		return "invalid argument: a NULL pointer or bad flags, a "
		       "write through a read-only handle, or a handle "
		       "inherited across fork (open the store again in the "
		       "child)";
	case FS_ETOOBIG:
		return "payload too large: one record holds at most 64 KiB; "
		       "split the data";
	default:
		return "unknown fenced-store error";
	}
}
