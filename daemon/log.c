/*
 * log.c - one line per event on stderr, written with a single write(2)
 * so that lines from the supervisor and its servers do not interleave:
 *
 *   lockmgrd[PID] 2026-12-01T04:40:12.345+01:00 WHO: MESSAGE
 *
 * The time is the wall clock in local time, ISO 8601 with milliseconds
 * and the offset from UTC, so a line can be matched with other logs
 * (lockmgrd(8), "LOG FORMAT"). It is the host's real clock, never a
 * server's simulated one (lockctl server skew).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool lm_log_quiet;

/* "2026-12-01T04:40:12.345+01:00" into buf. */
static void format_now(char *buf, size_t n)
{
	struct timespec ts = {0, 0};
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (localtime_r(&ts.tv_sec, &tm) == NULL) {
		/* Out of range for local time: UTC says as much. */
		memset(&tm, 0, sizeof(tm));
		gmtime_r(&ts.tv_sec, &tm);
	}
	char date[32];
	size_t len = strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	if (len == 0)
		date[0] = '\0';
	long off = tm.tm_gmtoff / 60; /* minutes east of UTC */
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	snprintf(buf, n, "%s.%03ld%c%02ld:%02ld", date,
			(long)(ts.tv_nsec / 1000000), sign, off / 60,
			off % 60);
}

static void vlog(const char *who, const char *fmt, va_list ap)
{
	char line[1024], when[48];
	format_now(when, sizeof(when));
	int n = snprintf(line, sizeof(line), "lockmgrd[%d] %s %s: ",
			 (int)getpid(), when, who);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void lm_log(const char *who, const char *fmt, ...)
{
	if (lm_log_quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(who, fmt, ap);
	va_end(ap);
}

/* Written even with --quiet, whose help promises "nothing but errors". */
void lm_log_error(const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(who, fmt, ap);
	va_end(ap);
}

void lm_die_at(const char *file, const char *func, int line, const char *msg)
{
	int e = errno;
	fprintf(stderr, "lockmgrd: fatal: %s (%s:%d in %s, errno %d: %s)\n",
		msg, file, line, func, e, strerror(e));
	abort();
}
