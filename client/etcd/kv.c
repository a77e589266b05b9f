/*
 * kv.c - keys, base64 and the JSON shapes of etcd's KV requests.
 *
 * The gateway carries keys and values as base64 and 64-bit numbers as
 * strings. base64 is a few lines here: libcurl keeps its encoder
 * private, and OpenSSL's would add a library for forty lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64(const void *p, size_t n)
{
	const unsigned char *s = p;
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		*o++ = b64chars[(v >> 18) & 63];
		*o++ = b64chars[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? b64chars[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64val(char ch)
{
	const char *p = ch != '\0' ? strchr(b64chars, ch) : NULL;
	return p != NULL ? (int)(p - b64chars) : -1;
}

ssize_t etcd_unb64(const char *s, char *out, size_t n)
{
	size_t len = strlen(s), k = 0;
	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		for (int j = 0; j < 4; j++) {
			v[j] = s[i + j] == '=' && j >= 2 ? 0 : b64val(s[i + j]);
			if (v[j] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		unsigned bytes = s[i + 2] == '=' ? 1 : s[i + 3] == '=' ? 2 : 3;
		for (unsigned j = 0; j < bytes; j++) {
			if (k >= n)
				return -1;
			out[k++] = (char)(w >> (16 - 8 * j));
		}
	}
	return (ssize_t)k;
}

static bool plain(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
}

static void encode_name(const char *name, char *out)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (plain(*p)) {
			*out++ = (char)*p;
		} else {
			sprintf(out, "%%%02X", *p);
			out += 3;
		}
	}
	*out = '\0';
}

void etcd_lock_prefix(const struct lm_etcd *e, const char *name, char *out)
{
	size_t n = (size_t)sprintf(out, "%s/lock/", e->prefix);
	encode_name(name, out + n);
	strcat(out, "/");
}

void etcd_sem_prefix(const struct lm_etcd *e, const char *name, char *out)
{
	size_t n = (size_t)sprintf(out, "%s/sem/", e->prefix);
	encode_name(name, out + n);
	strcat(out, "/");
}

void etcd_last_key(const struct lm_etcd *e, const char *name, char *out)
{
	size_t n = (size_t)sprintf(out, "%s/last/", e->prefix);
	encode_name(name, out + n);
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9'	? ch - '0'
	       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
	       : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
					: -1;
}

ssize_t etcd_name_decode(const char *enc, size_t len, char *out, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)enc[i];
		if (ch == '%') {
			if (i + 2 >= len)
				return -1;
			int hi = hexval(enc[i + 1]), lo = hexval(enc[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (!plain(ch)) {
			return -1;
		}
		if (k + 1 >= n || ch == '\0')
			return -1;
		out[k++] = (char)ch;
	}
	out[k] = '\0';
	return (ssize_t)k;
}

void etcd_prefix_end(const char *prefix, char *out)
{
	/* Every key that begins with prefix sorts below prefix with its
	 * last byte plus one (etcd's clientv3.GetPrefixRangeEnd); our
	 * prefixes end in '/', never 0xff. */
	size_t n = strlen(prefix);
	memcpy(out, prefix, n + 1);
	if (n > 0)
		out[n - 1] = (char)(out[n - 1] + 1);
}

json_t *etcd_range_req(const char *key, const char *end)
{
	char *k = etcd_b64(key, strlen(key));
	json_t *o = json_object();
	if (k != NULL)
		json_object_set_new(o, "key", json_string(k));
	free(k);
	if (end != NULL) {
		char *r = etcd_b64(end, strlen(end));
		if (r != NULL)
			json_object_set_new(o, "range_end", json_string(r));
		free(r);
	}
	return o;
}

int64_t etcd_i64(const json_t *obj, const char *field)
{
	json_t *v = json_object_get(obj, field);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	return 0;
}

int64_t etcd_rev(const json_t *resp)
{
	return etcd_i64(json_object_get(resp, "header"), "revision");
}

ssize_t etcd_kv_bytes(const json_t *kv, const char *field, char *out,
		      size_t n)
{
	const char *s = json_string_value(json_object_get(kv, field));
	if (s == NULL) {
		if (n > 0)
			out[0] = '\0';
		return n > 0 ? 0 : -1; /* an empty value is left out */
	}
	if (n == 0)
		return -1;
	ssize_t k = etcd_unb64(s, out, n - 1);
	if (k < 0)
		return -1;
	out[k] = '\0';
	return k;
}

/* ---- txn shapes shared by the recipes (lock.c, semaphore.c) ---- */

json_t *etcd_b64str(const char *s)
{
	char *b = etcd_b64(s, strlen(s));
	json_t *j = json_string(b != NULL ? b : "");
	free(b);
	return j;
}

json_t *etcd_i64str(int64_t v)
{
	return json_sprintf("%lld", (long long)v);
}

/* A compare on key's create revision. */
json_t *etcd_cmp_create(const char *key, int64_t rev)
{
	return json_pack("{s:o,s:s,s:s,s:o}", "key", etcd_b64str(key), "target",
			 "CREATE", "result", "EQUAL", "create_revision",
			 etcd_i64str(rev));
}

/* A compare that holds when no key is in [key, end): every key that
 * exists has a create revision above 0 (etcd compares each key of a
 * range, and an empty range as one absent key). */
json_t *etcd_cmp_none(const char *key, const char *end)
{
	json_t *c = etcd_cmp_create(key, 0);
	json_object_set_new(c, "range_end", etcd_b64str(end));
	return c;
}

json_t *etcd_op_range(json_t *range)
{
	return json_pack("{s:o}", "request_range", range);
}

json_t *etcd_op_put(const char *key, const char *value, int64_t lease)
{
	json_t *p = json_pack("{s:o,s:o}", "key", etcd_b64str(key), "value",
			      etcd_b64str(value));
	if (lease != 0)
		json_object_set_new(p, "lease", etcd_i64str(lease));
	return json_pack("{s:o}", "request_put", p);
}

/* The oldest key under prefix lp (or, with below > 0, the newest one
 * created before revision `below`). */
json_t *etcd_owner_range(const char *lp, int64_t below)
{
	char end[ETCD_KEY_MAX];
	etcd_prefix_end(lp, end);
	json_t *r = etcd_range_req(lp, end);
	json_object_set_new(r, "sort_target", json_string("CREATE"));
	json_object_set_new(r, "sort_order",
			    json_string(below > 0 ? "DESCEND" : "ASCEND"));
	json_object_set_new(r, "limit", etcd_i64str(1));
	if (below > 0)
		json_object_set_new(r, "max_create_revision", etcd_i64str(below - 1));
	return r;
}

/* responses[i]'s response_range.kvs[0], or NULL. */
json_t *etcd_txn_kv(json_t *resp, size_t i)
{
	json_t *rr = json_object_get(
		json_array_get(json_object_get(resp, "responses"), i),
		"response_range");
	return json_array_get(json_object_get(rr, "kvs"), 0);
}

int etcd_txn(struct lm_etcd *e, json_t *cmp, json_t *ok, json_t *fail,
	       int64_t deadline, json_t **out)
{
	json_t *body = json_pack("{s:o,s:o,s:o}", "compare", cmp, "success",
				 ok, "failure", fail);
	return etcd_post(e, "/v3/kv/txn", body, deadline, out);
}
