/*
 * log.c - one line per event on stderr, written with a single write(2)
 * so that lines from the supervisor and its servers do not interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shm/clock.h"

bool lm_log_quiet;

void lm_log(const char *who, const char *fmt, ...)
{
	if (lm_log_quiet)
		return;
	char line[512];
	int64_t ms = lm_now_ms();
	int n = snprintf(line, sizeof(line), "lockmgrd[%d] %lld.%03lld %s: ",
			 (int)getpid(), (long long)(ms / 1000),
			 (long long)(ms % 1000), who);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void lm_die_at(const char *file, const char *func, int line, const char *msg)
{
	int e = errno;
	fprintf(stderr, "lockmgrd: fatal: %s (%s:%d in %s, errno %d: %s)\n",
		msg, file, line, func, e, strerror(e));
	abort();
}
