/*
 * service_record.c - reading and writing DIR/service.
 *
 * Format (96 bytes, little-endian as on the host): magic "LMSVCRD1",
 * version, state, boot id (40 bytes, NUL-padded), leases_until_ms,
 * max_ttl_ms, CRC-32 (zlib) of what precedes it, padding. Written like
 * the token files: temp file, fsync, rename, fsync of the directory.
 */
#include "service_record.h"

#include "state_dir.h"
#include "../shm/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define RECORD_MAGIC "LMSVCRD1"
#define RECORD_VERSION 1u

struct record_file {
	char magic[8];
	uint32_t version;
	uint32_t state;
	char boot_id[40];
	int64_t leases_until_ms;
	int64_t max_ttl_ms;
	uint32_t crc;
	uint8_t pad[20];
};
_Static_assert(sizeof(struct record_file) == 96, "service record size");

static uint32_t record_crc(const struct record_file *f)
{
	return (uint32_t)crc32(0L, (const Bytef *)f,
			       offsetof(struct record_file, crc));
}

void lm_boot_id(char out[40])
{
	out[0] = '\0';
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, 39);
	close(fd);
	if (n <= 0) {
		out[0] = '\0';
		return;
	}
	out[n] = '\0';
	char *nl = strchr(out, '\n');
	if (nl != NULL)
		*nl = '\0';
}

int lm_service_load(const char *dir, struct lm_service_record *rec,
		    char *err, size_t errlen)
{
	struct record_file f;
	int rc = lm_state_read(dir, "service", &f, sizeof(f), err, errlen);
	if (rc != 0)
		return rc;
	if (memcmp(f.magic, RECORD_MAGIC, 8) != 0 ||
	    f.version != RECORD_VERSION || f.crc != record_crc(&f) ||
	    (f.state != LM_SERVICE_RUNNING && f.state != LM_SERVICE_STOPPED) ||
	    memchr(f.boot_id, '\0', sizeof(f.boot_id)) == NULL) {
		snprintf(err, errlen, "%s/service is corrupted (bad magic, "
			 "version, state or checksum)", dir);
		return -1;
	}
	/* Times no service writes: a lease ends after the boot and at most
	 * a region's longest TTL after its service stopped (bounded again
	 * against the clock by the next service). */
	if (f.max_ttl_ms < 1 || f.max_ttl_ms > LM_MAX_TTL_LIMIT_MS ||
	    f.leases_until_ms < 0 ||
	    f.leases_until_ms > INT64_MAX / 1000000 - LM_MAX_TTL_LIMIT_MS) {
		snprintf(err, errlen, "%s/service is corrupted (a max TTL of "
			 "%lld ms or a lease end of %lld ms, which no service "
			 "writes)", dir, (long long)f.max_ttl_ms,
			 (long long)f.leases_until_ms);
		return -1;
	}
	rec->state = f.state;
	memcpy(rec->boot_id, f.boot_id, sizeof(rec->boot_id));
	rec->leases_until_ms = f.leases_until_ms;
	rec->max_ttl_ms = f.max_ttl_ms;
	return 0;
}

int lm_service_store(const char *dir, const struct lm_service_record *rec,
		     char *err, size_t errlen)
{
	struct record_file f;
	memset(&f, 0, sizeof(f));
	memcpy(f.magic, RECORD_MAGIC, 8);
	f.version = RECORD_VERSION;
	f.state = rec->state;
	snprintf(f.boot_id, sizeof(f.boot_id), "%s", rec->boot_id);
	f.leases_until_ms = rec->leases_until_ms;
	f.max_ttl_ms = rec->max_ttl_ms;
	f.crc = record_crc(&f);
	return lm_state_write(dir, "service", &f, sizeof(f), err, errlen);
}

/*
 * DIR/abandoned: magic "LMABND01", count (u32), then per name its length
 * (u32, 1..255) and bytes, then CRC-32 (zlib) of everything before it.
 */
#define ABANDONED_MAGIC "LMABND01"
#define ABANDONED_MAX_NAMES (1u << 26)
#define NAME_MAX_LEN 255u

int lm_abandoned_store(const char *dir, const char *const *names,
		       const uint32_t *len, uint32_t count, char *err,
		       size_t errlen)
{
	size_t size = 8 + sizeof(count) + sizeof(uint32_t);
	for (uint32_t i = 0; i < count; i++)
		size += sizeof(len[i]) + len[i];
	unsigned char *buf = malloc(size), *p = buf;
	if (buf == NULL) {
		snprintf(err, errlen, "cannot write %s/abandoned: out of "
			 "memory", dir);
		return -1;
	}
	memcpy(p, ABANDONED_MAGIC, 8);
	p += 8;
	memcpy(p, &count, sizeof(count));
	p += sizeof(count);
	for (uint32_t i = 0; i < count; i++) {
		memcpy(p, &len[i], sizeof(len[i]));
		p += sizeof(len[i]);
		memcpy(p, names[i], len[i]);
		p += len[i];
	}
	uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(p - buf));
	memcpy(p, &crc, sizeof(crc));
	int rc = lm_state_write(dir, "abandoned", buf, size, err, errlen);
	free(buf);
	return rc;
}

/* Read exactly n bytes, folding them into *crc. */
static bool read_crc(FILE *f, void *buf, size_t n, uLong *crc)
{
	if (fread(buf, 1, n, f) != n)
		return false;
	*crc = crc32(*crc, (const Bytef *)buf, (uInt)n);
	return true;
}

int lm_abandoned_load(const char *dir,
		      void (*fn)(const char *name, uint32_t len, void *arg),
		      void *arg, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/abandoned", dir);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return -1;
	}
	/* Two passes: check the whole file before passing on any name. */
	int rc = -1;
	for (int pass = 0; pass < 2; pass++) {
		rewind(f);
		uLong crc = crc32(0L, Z_NULL, 0);
		char magic[8], name[NAME_MAX_LEN];
		uint32_t count, len, want;
		if (!read_crc(f, magic, 8, &crc) ||
		    memcmp(magic, ABANDONED_MAGIC, 8) != 0 ||
		    !read_crc(f, &count, sizeof(count), &crc) ||
		    count > ABANDONED_MAX_NAMES)
			goto corrupt;
		for (uint32_t i = 0; i < count; i++) {
			if (!read_crc(f, &len, sizeof(len), &crc) || len == 0 ||
			    len > NAME_MAX_LEN || !read_crc(f, name, len, &crc))
				goto corrupt;
			if (pass == 1)
				fn(name, len, arg);
		}
		if (fread(&want, sizeof(want), 1, f) != 1 ||
		    want != (uint32_t)crc || fgetc(f) != EOF)
			goto corrupt;
	}
	rc = 0;
	goto out;
corrupt:
	snprintf(err, errlen, "%s is truncated or corrupted", path);
out:
	fclose(f);
	return rc;
}

void lm_abandoned_remove(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/abandoned", dir);
	unlink(path);
}
