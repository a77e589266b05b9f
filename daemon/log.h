/*
 * log.h - lockmgrd's log lines on stderr, one per event:
 * "lockmgrd[PID] 2026-12-01T04:40:12.345+01:00 WHO: MESSAGE" (local
 * wall-clock time with milliseconds and UTC offset; see log.c).
 */
#ifndef LOCKMGR_DAEMON_LOG_H
#define LOCKMGR_DAEMON_LOG_H

#include <stdbool.h>

/*
 * Two kinds of line. lm_log: what happened, for a person following the
 * service (a server started, up, restarted; a client died). lm_log_error:
 * something is wrong and needs a person (a server refusing to start, a
 * state file that cannot be written, a client that cannot be watched).
 * --quiet (lm_log_quiet) drops the first kind only.
 */
extern bool lm_log_quiet;
void lm_log(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void lm_log_error(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A broken invariant: print where and errno, then abort. */
#define lm_die(msg) lm_die_at(__FILE__, __func__, __LINE__, (msg))
_Noreturn void lm_die_at(const char *file, const char *func, int line,
			 const char *msg);

#endif
