/*
 * state_dir.h - each server's durable token high-water mark
 * (lockmgrd --state-dir DIR).
 *
 * File DIR/server-N.tokens holds the highest token the server has
 * allowed onto its table (its reservation). A token is written to a
 * table only if it is at most the table's reservation, and a reservation
 * is published only after it is on disk, so after any crash, or a stop
 * and a fresh start, every new token is above every token ever issued.
 */
#ifndef LOCKMGR_DAEMON_STATE_DIR_H
#define LOCKMGR_DAEMON_STATE_DIR_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 (loaded), 1 (no file yet: a new directory), or -1 with a
 * message in err (unreadable, truncated, corrupted, wrong server). */
int lm_state_load(const char *dir, unsigned server, uint64_t *reserved,
		  char *err, size_t errlen);

/*
 * The default state directory of region name ("/lockmgr"):
 * /var/lib/lockmgr/lockmgr for root, else $XDG_STATE_HOME/lockmgr/lockmgr
 * ($XDG_STATE_HOME defaults to ~/.local/state). 0, or -1 + err.
 */
int lm_state_default_dir(const char *region, char *out, size_t n, char *err,
			 size_t errlen);

/* mkdir -p, the last component with mode 0700. 0, or -1 + err. */
int lm_state_mkdirs(const char *dir, char *err, size_t errlen);

/* Read exactly len bytes of DIR/file into buf: 0, 1 (no such file), or
 * -1 with a message in err (unreadable, or truncated). */
int lm_state_read(const char *dir, const char *file, void *buf, size_t len,
		  char *err, size_t errlen);

/* Write len bytes of buf to DIR/file durably: a temporary file, fsync,
 * rename over the old one, fsync of the directory. 0, or -1 + err. */
int lm_state_write(const char *dir, const char *file, const void *buf,
		   size_t len, char *err, size_t errlen);

/* Write the server's reservation durably (lm_state_write). */
int lm_state_store(const char *dir, unsigned server, uint64_t reserved,
		   char *err, size_t errlen);

#endif
