/*
 * log.h - lockmgrd's log lines on stderr (systemd style: no timestamps
 * of the wall clock, the journal adds those; we add the monotonic ms so
 * a reader can order events across processes).
 */
#ifndef LOCKMGR_DAEMON_LOG_H
#define LOCKMGR_DAEMON_LOG_H

#include <stdbool.h>

extern bool lm_log_quiet;
void lm_log(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A broken invariant: print where and errno, then abort. */
#define lm_die(msg) lm_die_at(__FILE__, __func__, __LINE__, (msg))
_Noreturn void lm_die_at(const char *file, const char *func, int line,
			 const char *msg);

#endif
