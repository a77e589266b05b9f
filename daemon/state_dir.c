/*
 * state_dir.c - reading and writing server-N.tokens.
 *
 * Format (32 bytes, little-endian as on the host): magic "LMTOKHW1",
 * version, server index, reservation, CRC-32 (zlib) of the preceding 24
 * bytes, padding. A short file or a bad checksum is refused with an
 * error rather than read as zero: starting from zero would re-issue
 * tokens, which is the one thing the file exists to prevent.
 */
#include "state_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define STATE_MAGIC "LMTOKHW1"
#define STATE_VERSION 1u

struct state_file {
	char magic[8];
	uint32_t version;
	uint32_t server;
	uint64_t reserved;
	uint32_t crc;
	uint32_t pad;
};
_Static_assert(sizeof(struct state_file) == 32, "state file size");

static uint32_t state_crc(const struct state_file *f)
{
	return (uint32_t)crc32(0L, (const Bytef *)f,
			       offsetof(struct state_file, crc));
}

int lm_state_read(const char *dir, const char *file, void *buf, size_t len,
		  char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, buf, len);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
		return -1;
	}
	if (n != (ssize_t)len) {
		snprintf(err, errlen, "%s is truncated (%zd of %zu bytes)", path,
			 n, len);
		return -1;
	}
	return 0;
}

int lm_state_load(const char *dir, unsigned server, uint64_t *reserved,
		  char *err, size_t errlen)
{
	char file[32];
	snprintf(file, sizeof(file), "server-%u.tokens", server);
	struct state_file f;
	int rc = lm_state_read(dir, file, &f, sizeof(f), err, errlen);
	if (rc != 0)
		return rc;
	if (memcmp(f.magic, STATE_MAGIC, 8) != 0 ||
	    f.version != STATE_VERSION || f.server != server ||
	    f.crc != state_crc(&f)) {
		snprintf(err, errlen, "%s/%s is corrupted (bad magic, version, "
			 "server or checksum)", dir, file);
		return -1;
	}
	*reserved = f.reserved;
	return 0;
}

int lm_state_write(const char *dir, const char *file, const void *buf,
		   size_t len, char *err, size_t errlen)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (write(fd, buf, len) != (ssize_t)len || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		goto fail;
	}
	/* The rename is durable only once the directory is. */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	return -1;
}

int lm_state_store(const char *dir, unsigned server, uint64_t reserved,
		   char *err, size_t errlen)
{
	char file[32];
	snprintf(file, sizeof(file), "server-%u.tokens", server);
	struct state_file f;
	memset(&f, 0, sizeof(f));
	memcpy(f.magic, STATE_MAGIC, 8);
	f.version = STATE_VERSION;
	f.server = server;
	f.reserved = reserved;
	f.crc = state_crc(&f);
	return lm_state_write(dir, file, &f, sizeof(f), err, errlen);
}

int lm_state_default_dir(const char *region, char *out, size_t n, char *err,
			 size_t errlen)
{
	const char *base = region[0] == '/' ? region + 1 : region;
	int w;
	if (geteuid() == 0) {
		w = snprintf(out, n, "/var/lib/lockmgr/%s", base);
	} else {
		const char *xdg = getenv("XDG_STATE_HOME");
		const char *home = getenv("HOME");
		if (xdg != NULL && xdg[0] == '/')
			w = snprintf(out, n, "%s/lockmgr/%s", xdg, base);
		else if (home != NULL && home[0] == '/')
			w = snprintf(out, n, "%s/.local/state/lockmgr/%s", home,
				     base);
		else {
			snprintf(err, errlen, "no state directory: neither "
				 "$XDG_STATE_HOME nor $HOME is an absolute "
				 "path");
			return -1;
		}
	}
	if (w < 0 || (size_t)w >= n) {
		snprintf(err, errlen, "the state directory's path is too long");
		return -1;
	}
	return 0;
}

int lm_state_mkdirs(const char *dir, char *err, size_t errlen)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		return -1;
	}
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path,
				 strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create state directory %s: %s",
			 path, strerror(errno));
		return -1;
	}
	return 0;
}
