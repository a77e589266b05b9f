/*
 * curl_load.h - libcurl, loaded on first use by the etcd backend.
 *
 * liblockmgr and lockctl are not linked against libcurl: libcurl.so.4
 * brings some thirty libraries (TLS, Kerberos, LDAP, SSH, ...) whose
 * loading, relocation and constructors cost a program tens of ms at
 * every start, measured on `lockctl run NAME -- true` with the
 * shared-memory backend, which uses none of them. So the etcd backend
 * opens libcurl with dlopen when it makes its first handle, and calls
 * it through this table.
 *
 * Concurrency: lm_curl() may be called from any thread; the first call
 * loads the library (pthread_once), later ones return the same table.
 */
#ifndef LM_ETCD_CURL_LOAD_H
#define LM_ETCD_CURL_LOAD_H

#include <curl/curl.h>

struct lm_curl {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *h);
	void (*easy_reset)(CURL *h);
	/* Variadic as in curl.h: one argument of the option's type.
	 * (curl.h's compile-time type check of curl_easy_setopt does not
	 * apply through a pointer: pass long, pointers and callbacks as
	 * libcurl documents them.) */
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode rc);
	struct curl_slist *(*slist_append)(struct curl_slist *l,
					   const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};

/* The table, libcurl loaded and curl_global_init done; NULL if libcurl
 * cannot be loaded (lm_curl_error() then says why). */
const struct lm_curl *lm_curl(void);

/* Why lm_curl() returned NULL: dlopen's or dlsym's message. */
const char *lm_curl_error(void);

#endif
