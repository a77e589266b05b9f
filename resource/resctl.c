/*
 * resctl.c - the resctl command: write to and inspect a fenced store.
 *
 *   resctl -s PATH write --token T DATA    append, if T is not stale
 *   resctl -s PATH write --token T -       the same, DATA from stdin
 *   resctl -s PATH show [--json]           the log: accepted, rejected
 *
 * Global options may come before the command or after it (`resctl -s f
 * write ...` and `resctl write -s f ...`), like lockctl's. The token
 * defaults to $LOCKMGR_TOKEN, which `lockctl run` exports, so that
 *
 *   lockctl run job -- resctl -s /srv/data write "payload"
 *
 * writes under the lock's own fencing token.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "resource/store.h"

#define RESCTL_VERSION "0.1"

/* Exit codes: sysexits.h values, plus 3 for "rejected as stale" so a
 * script can tell a fenced-off writer from a failure. */
#define EX_RES_OK       0
#define EX_RES_STALE    3  /* write rejected: token older than highest */
#define EX_RES_USAGE    64 /* bad option, token, or data too large */
#define EX_RES_DATAERR  65 /* the store's committed log is corrupt */
#define EX_RES_NOINPUT  66 /* cannot open the store / not a store */
#define EX_RES_IOERR    74 /* I/O error on the store or the output */

struct opts {
	const char *path;  /* -s/--store, else $RESCTL_STORE */
	bool sync;         /* --sync */
	bool no_create;    /* write --no-create */
	bool json;         /* show --json */
	const char *token; /* write --token, else $LOCKMGR_TOKEN */
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: resctl -s PATH [--sync] COMMAND [OPTION]... [ARG]...\n"
"Write to and inspect a fenced store: an append-only log that accepts a\n"
"write only if its fencing token is at least the highest token the store\n"
"has seen (equal is accepted: one lock holder writes many times).\n"
"\n"
"Commands:\n"
"  write [--token T] [--no-create] DATA | -\n"
"                     append DATA (up to 64 KiB; - reads it from stdin)\n"
"                     under fencing token T; the token check and the\n"
"                     append are one atomic step. Creates the store if\n"
"                     it does not exist (unless --no-create).\n"
"  show [--json]      list the accepted records in order (seq, token,\n"
"                     writer pid, time, data) and the rejected attempts\n"
"                     (token, highest token at the time, pid); --json\n"
"                     prints one JSON object\n"
"  help               show this help\n"
"\n"
"Options:\n"
"  -s, --store PATH   the store file (default $RESCTL_STORE)\n"
"      --token T      write: the fencing token, a whole number (default\n"
"                     $LOCKMGR_TOKEN, which 'lockctl run' exports)\n"
"      --sync         write: fdatasync before acknowledging, so the record\n"
"                     survives a power cut, not only a crash; on a store\n"
"                     this write creates, every later write syncs too\n"
"      --no-create    write: fail with 66 if the store does not exist\n"
"      --json         show: machine-readable output\n"
"  -h, --help         show this help\n"
"  -V, --version      show the version\n"
"\n"
"Exit status:\n"
"  0    success; for write: the record was accepted (it survives any\n"
"       process crash, and with --sync a power cut too)\n"
"  3    write rejected as stale: T is older than a token already used\n"
"       on the store (the attempt is logged); this writer lost its lock\n"
"  64   usage error: bad option, token or command, no DATA (nor -)\n"
"       for write, data over 64 KiB\n"
"  65   the store is corrupt: a checksum or structure error inside its\n"
"       committed log\n"
"  66   cannot open the store: missing, no permission, or not a store\n"
"  74   I/O error reading or writing the store, or writing the output\n");
}

/* ---------------------------------------------------------------------
 * Messages and exit codes for library errors.
 */
static int store_error(int err, const char *path, const char *doing)
{
	switch (err) {
	case FS_ECORRUPT:
		fprintf(stderr, "resctl: %s %s: %s\n", doing, path,
			fs_strerror(err));
		return EX_RES_DATAERR;
	case FS_ETOOBIG:
		fprintf(stderr, "resctl: %s %s: %s\n", doing, path,
			fs_strerror(err));
		return EX_RES_USAGE;
	case FS_ESYS:
		fprintf(stderr, "resctl: %s %s: %s%s\n", doing, path,
			strerror(errno),
			errno == ENOSPC ? " (free some space and retry; "
					  "nothing was written)"
					: "");
		return EX_RES_IOERR;
	default:
		fprintf(stderr, "resctl: %s %s: %s\n", doing, path,
			fs_strerror(err));
		return EX_RES_IOERR;
	}
}

static int open_error(int err, const char *path, bool creating,
		      const char *hint)
{
	if (err == FS_ECORRUPT) {
		fprintf(stderr, "resctl: %s is not a fenced store (or its "
				"header is damaged); check the path\n", path);
		return EX_RES_NOINPUT;
	}
	if (err == FS_ESYS && errno == ENOENT) {
		fprintf(stderr, "resctl: %s does not exist%s\n", path,
			creating ? " and could not be created (does its "
				   "directory exist?)"
				 : hint);
		return EX_RES_NOINPUT;
	}
	if (err == FS_ESYS) {
		fprintf(stderr, "resctl: cannot open %s: %s%s\n", path,
			strerror(errno),
			errno == EACCES ? " (run as the store's owner, or "
					  "change its mode)"
					: "");
		return errno == EACCES || errno == EISDIR || errno == ENOTDIR ||
				       errno == ELOOP || errno == ENAMETOOLONG
			       ? EX_RES_NOINPUT
			       : EX_RES_IOERR;
	}
	fprintf(stderr, "resctl: cannot open %s: %s\n", path,
		fs_strerror(err));
	return EX_RES_NOINPUT;
}

/*
 * s as one shell word, into out (n bytes): as it is if it holds only
 * characters no shell treats specially, else in single quotes. False if
 * it does not fit.
 */
static bool shell_word(const char *s, char *out, size_t n)
{
	bool plain = *s != '\0';
	for (const char *p = s; *p != '\0' && plain; p++)
		plain = strchr("abcdefghijklmnopqrstuvwxyz"
			       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			       "0123456789_./+,:@%=-", *p) != NULL;
	size_t o = 0;
	if (plain)
		return (size_t)snprintf(out, n, "%s", s) < n;
	if (o + 1 >= n)
		return false;
	out[o++] = '\'';
	for (const char *p = s; *p != '\0'; p++) {
		const char *piece = *p == '\'' ? "'\\''" : NULL;
		size_t len = piece != NULL ? strlen(piece) : 1;
		if (o + len + 2 > n)
			return false;
		if (piece != NULL)
			memcpy(out + o, piece, len);
		else
			out[o] = *p;
		o += len;
	}
	out[o++] = '\'';
	out[o] = '\0';
	return true;
}

/* Whole decimal number, digits only: strtoull alone would take "-1" (as
 * 2^64-1), " 12", "+12" and "12abc". */
static int parse_token(const char *s, const char *from, uint64_t *out)
{
	if (*s < '0' || *s > '9')
		goto bad;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0')
		goto bad;
	if (errno == ERANGE) {
		fprintf(stderr, "resctl: %s: '%s' is out of range (0 to "
				"%" PRIu64 ")\n", from, s, UINT64_MAX);
		return -1;
	}
	*out = v;
	return 0;
bad:
	fprintf(stderr, "resctl: %s: '%s' is not a token (a whole number, "
			"like 42)\n", from, s);
	return -1;
}

/* ---------------------------------------------------------------------
 * write
 */
static int read_stdin(unsigned char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(STDIN_FILENO, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap)
			break;
	}
	*len = n;
	return 0;
}

static int cmd_write(struct opts *o, int argc, char **argv)
{
	/*
	 * No DATA is an error, not "read stdin": on a terminal that waited
	 * silently for input, and from a script whose data went missing it
	 * appended an empty record and reported success. Stdin is read only
	 * when asked for with "-".
	 */
	if (argc == 0) {
		fprintf(stderr, "resctl: write needs DATA, or - to read it "
				"from stdin (see 'resctl --help')\n");
		return EX_RES_USAGE;
	}
	if (argc > 1) {
		fprintf(stderr, "resctl: write takes one DATA argument (got "
				"%d); quote the data, or pipe it in with -\n",
			argc);
		return EX_RES_USAGE;
	}
	const char *tok_from = "--token";
	const char *tok = o->token;
	if (tok == NULL) {
		tok = getenv("LOCKMGR_TOKEN");
		tok_from = "$LOCKMGR_TOKEN";
	}
	if (tok == NULL) {
		fprintf(stderr, "resctl: write needs a fencing token: "
				"--token T (or $LOCKMGR_TOKEN, as set by "
				"'lockctl run')\n");
		return EX_RES_USAGE;
	}
	uint64_t token;
	if (parse_token(tok, tok_from, &token) < 0)
		return EX_RES_USAGE;

	/* One byte over the limit tells "exactly 64 KiB" from "more". */
	static unsigned char in[FS_MAX_DATA + 1];
	const void *data;
	size_t len;
	if (strcmp(argv[0], "-") != 0) {
		data = argv[0];
		len = strlen(argv[0]);
	} else {
		if (read_stdin(in, sizeof(in), &len) < 0) {
			fprintf(stderr, "resctl: cannot read the data from "
					"stdin: %s\n", strerror(errno));
			return EX_RES_IOERR;
		}
		data = in;
	}
	if (len > FS_MAX_DATA) {
		fprintf(stderr, "resctl: the data is over %u bytes, the most "
				"one record holds; split it\n", FS_MAX_DATA);
		return EX_RES_USAGE;
	}

	fs_store *s;
	unsigned flags = (o->no_create ? 0 : FS_CREATE) |
			 (o->sync ? FS_SYNC : 0);
	int err = fs_open(o->path, flags, &s);
	if (err != 0)
		return open_error(err, o->path, !o->no_create,
				  "; drop --no-create to create it (or check "
				  "the path)");
	uint64_t highest;
	err = fs_write(s, token, data, len, &highest);
	int rc = EX_RES_OK;
	if (err == FS_ESTALE) {
		fprintf(stderr, "resctl: rejected: token %" PRIu64 " is older "
				"than token %" PRIu64 " already used on %s\n",
			token, highest, o->path);
		rc = EX_RES_STALE;
	} else if (err != 0) {
		rc = store_error(err, o->path, "cannot write to");
	}
	fs_close(s);
	return rc;
}

/* ---------------------------------------------------------------------
 * show
 */
struct rejected {
	uint64_t seq, token, highest;
	int64_t time_ns;
	uint32_t pid;
};

struct show_ctx {
	FILE *out;
	const char *path;
	bool json;
	const struct fs_stats *st; /* filled before the first record */
	bool started;              /* the prologue is out */
	size_t nacc;
	struct rejected *rej;
	size_t nrej, caprej;
};

static void print_time(FILE *f, int64_t ns)
{
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;
	char buf[32];
	if (ns < 0 || gmtime_r(&sec, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		fprintf(f, "%-24" PRId64, ns);
		return;
	}
	fprintf(f, "%s.%03dZ", buf, (int)(ns / 1000000 % 1000));
}

/* Human output: printable ASCII as is, everything else as \xNN. */
static void print_escaped(FILE *f, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			fputc(p[i], f);
		else if (p[i] == '\\')
			fputs("\\\\", f);
		else
			fprintf(f, "\\x%02x", p[i]);
	}
}

/* The length of the well-formed UTF-8 sequence at p (n bytes left), or 0
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0fu;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0u) != 0x80u)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static bool utf8_valid(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/*
 * A JSON string (RFC 8259). Bytes that are not well-formed UTF-8 become
 * U+FFFD, so the output always parses; json_data avoids that loss for
 * payloads.
 */
static void json_string(FILE *f, const unsigned char *p, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t k = utf8_seq(p + i, n - i);
		if (k == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (k > 1) {
			fwrite(p + i, 1, k, f);
			i += k;
			continue;
		}
		i++;
		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

/*
 * JSON strings hold Unicode text, and a payload is bytes: a payload that
 * is valid UTF-8 is shown as "data"; any other gets "data": null and its
 * bytes in "data_hex", rather than a lossy or invalid string.
 */
static void json_data(FILE *f, const unsigned char *p, size_t n)
{
	if (utf8_valid(p, n)) {
		fputs("\"data\":", f);
		json_string(f, p, n);
		return;
	}
	fputs("\"data\":null,\"data_hex\":\"", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	fputc('"', f);
}

/*
 * The totals and the start of the accepted list. fs_read_stats fills the
 * totals of exactly the snapshot it delivers before the first record, so
 * this runs from the first callback (or after the read, for an empty
 * log) and the records stream out without being held in memory.
 */
static void show_prologue(struct show_ctx *c)
{
	FILE *f = c->out;
	const struct fs_stats *st = c->st;
	if (c->started)
		return;
	c->started = true;
	if (c->json) {
		fputs("{\"path\":", f);
		json_string(f, (const unsigned char *)c->path, strlen(c->path));
		fprintf(f, ",\n  \"highest_token\":%" PRIu64
			   ",\n  \"sync\":%s,\n  \"accepted_count\":%" PRIu64
			   ",\n  \"accepted\":[",
			st->highest, st->sync ? "true" : "false", st->accepted);
		return;
	}
	fputs("store ", f);
	print_escaped(f, (const unsigned char *)c->path, strlen(c->path));
	fprintf(f, ": highest token %" PRIu64 ", %" PRIu64 " accepted, %" PRIu64
		   " rejected%s\n",
		st->highest, st->accepted, st->rejected,
		st->sync ? ", sync writes" : "");
	if (st->accepted > 0)
		fprintf(f, "accepted:\n  %6s  %8s  %8s  %-24s  %s\n", "seq",
			"token", "pid", "time (UTC)", "data");
}

static int show_each(const struct fs_record *r, void *arg)
{
	struct show_ctx *c = arg;
	show_prologue(c);
	if (r->type == FS_REC_REJECT) {
		if (c->nrej == c->caprej) {
			size_t cap = c->caprej ? 2 * c->caprej : 64;
			struct rejected *p = realloc(c->rej, cap * sizeof(*p));
			if (p == NULL)
				return FS_ESYS;
			c->rej = p;
			c->caprej = cap;
		}
		c->rej[c->nrej++] = (struct rejected){
			.seq = r->seq,
			.token = r->token,
			.highest = r->highest,
			.time_ns = r->time_ns,
			.pid = r->pid,
		};
		return 0;
	}
	FILE *f = c->out;
	if (c->json) {
		fprintf(f,
			"%s\n    {\"seq\":%" PRIu64 ",\"token\":%" PRIu64
			",\"pid\":%" PRIu32 ",\"time_ns\":%" PRId64 ",",
			c->nacc ? "," : "", r->seq, r->token, r->pid,
			r->time_ns);
		json_data(f, r->data, r->len);
		fputc('}', f);
	} else {
		fprintf(f, "  %6" PRIu64 "  %8" PRIu64 "  %8" PRIu32 "  ",
			r->seq, r->token, r->pid);
		print_time(f, r->time_ns);
		fputs("  ", f);
		print_escaped(f, r->data, r->len);
		fputc('\n', f);
	}
	c->nacc++;
	return 0;
}

static int cmd_show(struct opts *o, int argc, char **argv)
{
	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "resctl: show takes no arguments\n");
		return EX_RES_USAGE;
	}
	fs_store *s;
	int err = fs_open(o->path, FS_RDONLY, &s);
	if (err != 0) {
		/* A store is created by its first write, which needs a token:
		 * the one of the lock that guards it. */
		char word[1024], hint[1200];
		if (!shell_word(o->path, word, sizeof(word)))
			snprintf(word, sizeof(word), "PATH");
		snprintf(hint, sizeof(hint), " (check the path); its first "
			 "write creates it: lockctl run LOCK -- resctl -s %s "
			 "write DATA", word);
		return open_error(err, o->path, false, hint);
	}

	FILE *f = stdout;
	struct fs_stats st;
	struct show_ctx c = {
		.out = f, .path = o->path, .json = o->json, .st = &st,
	};
	err = fs_read_stats(s, &st, show_each, &c);
	int saved = errno;
	if (err != 0 && !c.started) {
		/* The header itself could not be read: nothing to show. */
		errno = saved;
		int rc = store_error(err, o->path, "cannot read");
		free(c.rej);
		fs_close(s);
		return rc;
	}
	show_prologue(&c);

	/* On damage the records before it were printed; the JSON is still
	 * closed properly, with an "error" member, so a parser can show
	 * what was read and why it stopped. */
	if (o->json) {
		fprintf(f, "%s]", c.nacc ? "\n  " : "");
		if (err != 0) {
			fputs(",\n  \"error\":", f);
			const char *m = err == FS_ESYS ? strerror(saved)
						       : fs_strerror(err);
			json_string(f, (const unsigned char *)m, strlen(m));
		}
		/* The header's count: on damage the list below is short. */
		fprintf(f, ",\n  \"rejected_count\":%" PRIu64
			   ",\n  \"rejected\":[",
			st.rejected);
		for (size_t i = 0; i < c.nrej; i++) {
			const struct rejected *r = &c.rej[i];
			fprintf(f,
				"%s\n    {\"seq\":%" PRIu64
				",\"token\":%" PRIu64
				",\"highest\":%" PRIu64 ",\"pid\":%" PRIu32
				",\"time_ns\":%" PRId64 "}",
				i ? "," : "", r->seq, r->token, r->highest,
				r->pid, r->time_ns);
		}
		fprintf(f, "%s]}\n", c.nrej ? "\n  " : "");
	} else {
		if (err != 0)
			fprintf(f, "  (the log is unreadable after record "
				   "%zu)\n", c.nacc + c.nrej);
		if (c.nrej > 0)
			fprintf(f, "rejected:\n  %6s  %8s  %8s  %8s  %s\n",
				"seq", "token", "highest", "pid",
				"time (UTC)");
		for (size_t i = 0; i < c.nrej; i++) {
			const struct rejected *r = &c.rej[i];
			fprintf(f, "  %6" PRIu64 "  %8" PRIu64 "  %8" PRIu64
				   "  %8" PRIu32 "  ",
				r->seq, r->token, r->highest, r->pid);
			print_time(f, r->time_ns);
			fputc('\n', f);
		}
	}

	int rc = EX_RES_OK;
	if (fflush(f) != 0 || ferror(f)) {
		fprintf(stderr, "resctl: cannot write the output: %s\n",
			strerror(errno));
		rc = EX_RES_IOERR;
	}
	if (err != 0) {
		errno = saved;
		rc = store_error(err, o->path, "cannot read");
	}
	free(c.rej);
	fs_close(s);
	return rc;
}

/* ---------------------------------------------------------------------
 * main
 */
enum { OPT_SYNC = 256, OPT_TOKEN, OPT_NO_CREATE, OPT_JSON };

static const struct option long_opts[] = {
	{"store", required_argument, NULL, 's'},
	{"sync", no_argument, NULL, OPT_SYNC},
	{"token", required_argument, NULL, OPT_TOKEN},
	{"no-create", no_argument, NULL, OPT_NO_CREATE},
	{"json", no_argument, NULL, OPT_JSON},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	struct opts o = {0};
	const char *cmd = NULL;
	/*
	 * One getopt pass over the whole command line, permuting, so that
	 * options may come before or after the command; which options a
	 * command accepts is checked once the command is known. Data that
	 * starts with '-' goes after "--".
	 */
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":s:hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.path = optarg;
			break;
		case OPT_SYNC:
			o.sync = true;
			break;
		case OPT_TOKEN:
			o.token = optarg;
			break;
		case OPT_NO_CREATE:
			o.no_create = true;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return EX_RES_OK;
		case 'V':
			printf("resctl %s\n", RESCTL_VERSION);
			return EX_RES_OK;
		case ':':
			fprintf(stderr, "resctl: option '%s' needs a value\n"
					"Try 'resctl --help'.\n",
				argv[optind - 1]);
			return EX_RES_USAGE;
		default:
			fprintf(stderr, "resctl: unknown option '%s'\n"
					"Try 'resctl --help'.\n",
				argv[optind - 1]);
			return EX_RES_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "resctl: no command given\n");
		usage(stderr);
		return EX_RES_USAGE;
	}
	cmd = argv[optind++];
	int nargs = argc - optind;
	char **args = argv + optind;

	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return EX_RES_OK;
	}
	bool is_write = strcmp(cmd, "write") == 0;
	bool is_show = strcmp(cmd, "show") == 0;
	if (!is_write && !is_show) {
		fprintf(stderr, "resctl: unknown command '%s' (commands: "
				"write, show, help)\n", cmd);
		return EX_RES_USAGE;
	}
	if (is_show && (o.token || o.sync || o.no_create)) {
		fprintf(stderr, "resctl: show takes no --token, --sync or "
				"--no-create (they are write options)\n");
		return EX_RES_USAGE;
	}
	if (is_write && o.json) {
		fprintf(stderr, "resctl: --json is a show option\n");
		return EX_RES_USAGE;
	}
	if (o.path == NULL)
		o.path = getenv("RESCTL_STORE");
	if (o.path == NULL || *o.path == '\0') {
		fprintf(stderr, "resctl: no store given: use -s PATH (or set "
				"$RESCTL_STORE)\n");
		return EX_RES_USAGE;
	}
	return is_write ? cmd_write(&o, nargs, args)
			: cmd_show(&o, nargs, args);
}
