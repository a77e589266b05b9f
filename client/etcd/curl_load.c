/*
 * curl_load.c - libcurl through dlopen, on the etcd backend's first use
 * (curl_load.h says why).
 *
 * The library is opened once and never closed: handles made from it
 * may live until the program exits, and libcurl is not meant to be
 * unloaded (curl_global_cleanup is not thread-safe either).
 */
#include "curl_load.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

/* libcurl's soname since 2006 (curl 7.16). */
#define CURL_SONAME "libcurl.so.4"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct lm_curl table;
static const struct lm_curl *loaded; /* &table once complete */
static char why[256];

/* Look name up into *slot; false (and why) if it is missing. */
static bool sym(void *lib, const char *name, void *slot)
{
	void *p = dlsym(lib, name);
	if (p == NULL) {
		snprintf(why, sizeof(why), "%s: no %s in it", CURL_SONAME,
			 name);
		return false;
	}
	/* POSIX guarantees that a function pointer survives a trip
	 * through void * (dlsym could not work otherwise). */
	*(void **)slot = p;
	return true;
}

static void load(void)
{
	/* RTLD_LOCAL: libcurl's symbols stay out of the program's
	 * namespace, so a program linked against another libcurl gets
	 * its own. */
	void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		const char *e = dlerror();
		snprintf(why, sizeof(why), "%s", e ? e : CURL_SONAME
				": cannot be loaded");
		return;
	}
	struct lm_curl *t = &table;
	if (!sym(lib, "curl_global_init", &t->global_init) ||
	    !sym(lib, "curl_easy_init", &t->easy_init) ||
	    !sym(lib, "curl_easy_cleanup", &t->easy_cleanup) ||
	    !sym(lib, "curl_easy_reset", &t->easy_reset) ||
	    !sym(lib, "curl_easy_setopt", &t->easy_setopt) ||
	    !sym(lib, "curl_easy_perform", &t->easy_perform) ||
	    !sym(lib, "curl_easy_getinfo", &t->easy_getinfo) ||
	    !sym(lib, "curl_easy_strerror", &t->easy_strerror) ||
	    !sym(lib, "curl_slist_append", &t->slist_append) ||
	    !sym(lib, "curl_slist_free_all", &t->slist_free_all)) {
		dlclose(lib);
		return;
	}
	CURLcode rc = t->global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK) {
		snprintf(why, sizeof(why), "curl_global_init: %s",
			 t->easy_strerror(rc));
		return;
	}
	loaded = t;
}

const struct lm_curl *lm_curl(void)
{
	/* pthread_once orders load()'s writes before any return here. */
	pthread_once(&once, load);
	return loaded;
}

const char *lm_curl_error(void)
{
	return why;
}
