/*
 * service_record.h - what a service leaves in its state directory for
 * the next one: whether it stopped cleanly, and until when the leases it
 * granted may still be believed.
 *
 * A full stop and start makes a new region: nothing in it says that a
 * client of the old one may still hold a lease (its process may outlive
 * the service, with the old region mapped). So a service that stops
 * writes DIR/service: "stopped, leases may run until T" (monotonic
 * clock, as the leases);
 * one that starts writes "running". The next service, if it finds no
 * region to adopt, keeps its servers out until T, or, after a service
 * that never stopped cleanly (killed, and its region removed), for one
 * max TTL. Both only within the same boot: a reboot ends every lease.
 */
#ifndef LOCKMGR_DAEMON_SERVICE_RECORD_H
#define LOCKMGR_DAEMON_SERVICE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define LM_SERVICE_RUNNING 1u
#define LM_SERVICE_STOPPED 2u

struct lm_service_record {
	uint32_t state;           /* LM_SERVICE_* */
	char boot_id[40];         /* /proc/sys/kernel/random/boot_id */
	int64_t leases_until_ms;  /* STOPPED: CLOCK_MONOTONIC ms of the boot
				   * boot_id names, as the leases are */
	int64_t max_ttl_ms;       /* the service's --max-ttl */
};

/* This boot's id (NUL-terminated, at most 39 bytes), or "" if unknown. */
void lm_boot_id(char out[40]);

/* 0 (loaded), 1 (no record yet), or -1 with a message in err
 * (unreadable, truncated, corrupted). */
int lm_service_load(const char *dir, struct lm_service_record *rec,
		    char *err, size_t errlen);

/* Write durably (temp file, fsync, rename, fsync dir). 0 or -1 + err. */
int lm_service_store(const char *dir, const struct lm_service_record *rec,
		     char *err, size_t errlen);

/*
 * DIR/abandoned: the names of the locks still held when the service
 * stopped. The next service marks them abandoned in its new region, so
 * that their next holder is told (LM_GRANT_RECOVERED) that the last one
 * never released them.
 */

/* Write the names (count of them, each len[i] bytes). 0 or -1 + err. */
int lm_abandoned_store(const char *dir, const char *const *names,
		       const uint32_t *len, uint32_t count, char *err,
		       size_t errlen);

/*
 * Read the names: calls fn(name, len, arg) for each. 0 (read), 1 (no
 * file), or -1 with a message in err (unreadable or corrupted: no name
 * is passed on then).
 */
int lm_abandoned_load(const char *dir,
		      void (*fn)(const char *name, uint32_t len, void *arg),
		      void *arg, char *err, size_t errlen);

/* Remove DIR/abandoned (it has been used). */
void lm_abandoned_remove(const char *dir);

#endif
