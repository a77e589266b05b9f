/*
 * test_hook.c - the pause points of test_hook.h.
 */
#include "test_hook.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_POINTS 8

_Atomic bool lm_hook_armed;

struct armed_point {
	char name[64];
	unsigned hits;   /* hits so far */
	unsigned at;     /* pause at this hit (1 = the first) */
};

static struct armed_point points[MAX_POINTS];
static unsigned npoints;
static pid_t parsed_by; /* a forked child parses its own environment */
static pthread_mutex_t hit_lock = PTHREAD_MUTEX_INITIALIZER;

static void parse_locked(void)
{
	npoints = 0;
	parsed_by = getpid();
	const char *env = getenv("LOCKMGR_TEST_PAUSE");
	if (env == NULL || *env == '\0') {
		atomic_store_explicit(&lm_hook_armed, false,
				      memory_order_relaxed);
		return;
	}
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", env);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save);
	     tok != NULL && npoints < MAX_POINTS;
	     tok = strtok_r(NULL, ",", &save)) {
		struct armed_point *p = &points[npoints];
		char *at = strchr(tok, '@');
		p->at = 1;
		if (at != NULL) {
			*at = '\0';
			p->at = (unsigned)strtoul(at + 1, NULL, 10);
			if (p->at == 0)
				p->at = 1;
		}
		snprintf(p->name, sizeof(p->name), "%s", tok);
		npoints++;
	}
	atomic_store_explicit(&lm_hook_armed, npoints > 0,
			      memory_order_relaxed);
}

void lm_hook_init(void)
{
	pthread_mutex_lock(&hit_lock);
	if (parsed_by != getpid())
		parse_locked();
	pthread_mutex_unlock(&hit_lock);
}

void lm_hook_hit(const char *point)
{
	bool pause = false;
	pthread_mutex_lock(&hit_lock);
	for (unsigned i = 0; i < npoints; i++)
		if (strcmp(points[i].name, point) == 0 &&
		    ++points[i].hits == points[i].at)
			pause = true;
	pthread_mutex_unlock(&hit_lock);
	if (!pause)
		return;
	const char *log = getenv("LOCKMGR_TEST_PAUSE_LOG");
	if (log != NULL && *log != '\0') {
		int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			      0600);
		if (fd >= 0) {
			char line[128];
			int n = snprintf(line, sizeof(line), "%s %d\n", point,
					 (int)getpid());
			if (write(fd, line, (size_t)n) != n) {
				/* The test then times out waiting for it. */
			}
			close(fd);
		}
	}
	raise(SIGSTOP);
}

bool lm_test_off(const char *what)
{
	const char *env = getenv("LOCKMGR_TEST_OFF");
	size_t n = strlen(what);
	for (const char *p = env; p != NULL && *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, what, n) == 0)
			return true;
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}
