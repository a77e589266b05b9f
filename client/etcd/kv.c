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
