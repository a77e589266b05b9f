/*
 * test_docs.c - every example in README.md and the man pages runs, as
 * written, and does what the text says.
 *
 * The examples are found by their markup, so a new one is run without
 * being listed here:
 *
 *   README.md     fenced code blocks: ```sh is run with /bin/sh -e,
 *                 ```c is compiled against the built library and run,
 *                 ```text is not an example (a listing). Any other tag,
 *                 or an indented code block, fails the test: an example
 *                 must say which it is.
 *   docs/X.1, X.8 every .EX/.EE block is run with /bin/sh -e (troff
 *                 escapes undone), except a listing (output, a format):
 *                 the line before its .EX is the comment
 *                 .\" listing
 *                 (it may go on: ".\" listing: not an example").
 *
 * Each shell example runs in a scratch directory, with the built
 * lockmgrd, lockctl and resctl first on $PATH, against a private
 * lockmgrd of its own (--ephemeral, a region named for this case,
 * --restart-delay -1 as the fault example says) that $LOCKMGR_REGION
 * names, while the test itself holds the lock "docs/held" there (so
 * that `lockctl status` has something to show, and `isolate --pid` a
 * session to name). An example that starts lockmgrd itself gets no
 * service and must stop the one it starts. It must exit 0 with nothing
 * on standard error. The reader's own programs that examples run
 * (./job.sh, backup.sh, deploy...) are stubs that check they hold the
 * lock (LOCKMGR_TOKEN, LOCKMGR_LOCK) and log it; a stub named in an
 * example must have run.
 *
 * What differs from the text is listed below with the reason, in three
 * short tables: the examples not run, the placeholders replaced, and the
 * output some examples must show.
 */
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/lockmgr.h"

#ifndef LM_SRC_DIR
#define LM_SRC_DIR "."
#endif
#ifndef LM_CC
#define LM_CC "cc"
#endif
#ifndef LM_EXAMPLE_LDFLAGS
#define LM_EXAMPLE_LDFLAGS ""
#endif

/* ---- what differs from the text, and why -------------------------- */

/* Examples not run. `match` must occur in exactly one example. */
static const struct {
	const char *doc, *match, *why;
} skips[] = {
	{"README.md", "./setup.sh demo",
	 "installs Debian packages as root, then builds and tests the tree"},
	{"README.md", "# region /lockmgr, 65536 locks",
	 "runs the host's service in the foreground until stopped, on the "
	 "default region and state directory"},
	{"README.md", "make test SAN=1",
	 "builds and runs the whole suite (this test included); make install "
	 "writes outside the tree"},
	{"README.md", "make uninstall PREFIX=...",
	 "installs outside the tree (tests/test_install.c installs into a "
	 "temporary prefix and checks what this section says)"},
	{"README.md", "/liblockmgr.a\" -pthread",
	 "needs an installed lockmgr.pc and a prog.c: tests/test_install.c "
	 "builds a program statically this way against its prefix"},
	{"lockctl.1", "lockctl top -b -d 1000 | grep",
	 "the live view needs a terminal, and both run until stopped: "
	 "tests/test_top.c drives them under a pty and with -b -n"},
	{"lockmgrd.8", "--mode 0660 --daemon --pidfile /run/lockmgrd.pid",
	 "the host's own service: the default region, /run and "
	 "/var/lib/lockmgr"},
	{"resctl.1", "#include <fencedstore.h>",
	 "an #include and a build command for the reader's prog.c: "
	 "tests/test_install.c builds one this way against its prefix"},
};

/*
 * Placeholders: text replaced before an example runs. @REGION@ is a
 * fresh region of this case, @DIR@ the scratch directory (where the
 * stubs are), @PID@ this process (it has a session).
 */
static const struct {
	const char *from, *to, *why;
} placeholders[] = {
	{"/usr/local/bin/backup.sh", "@DIR@/backup.sh",
	 "the reader's backup script"},
	{"/mytest", "@REGION@",
	 "a region of this case's own, so that runs never collide"},
	{"--pid PID", "--pid @PID@", "a process with a session"},
	{"/srv/", "@DIR@/",
	 "the reader's stores, in the scratch directory (examples run in "
	 "order: show lists what the writes before it wrote)"},
	{"--token \"$T\" \"$line\"", "--token 1000000 \"batch 18\"",
	 "a script's token and data: above the examples' own tokens"},
};

/* What some examples must print on standard output; `needs` is a
 * program without which the example is reported and not run. */
static const struct {
	const char *doc, *match, *stdout_has, *needs;
} expects[] = {
	{"README.md", "nightly-backup", "docs/held", NULL},
	{"lockctl.1", "jq -r", "docs/held", "jq"},
	{"resctl.1", "show --json | jq", "batch 17", "jq"},
};

/* The reader's programs, as stubs in the scratch directory (on $PATH). */
static const char *const stubs[] = {"job.sh", "migrate.sh", "backup.sh",
				    "deploy", "report"};

/* ---- the examples -------------------------------------------------- */

enum kind { SHELL, C_PROGRAM };

struct example {
	const char *doc; /* "README.md", "lockctl.1" */
	int line;        /* of its first line of code */
	enum kind kind;
	char *text;      /* as a reader would type it */
};

#define MAX_EXAMPLES 64
static struct example examples[MAX_EXAMPLES];
static int nexamples;

static char *slurp(const char *rel)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", LM_SRC_DIR, rel);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot read %s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
			if (buf == NULL)
				fail_msg("out of memory");
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static void add_example(const char *doc, int line, enum kind kind,
			const char *text)
{
	if (nexamples == MAX_EXAMPLES)
		fail_msg("more than %d examples: raise MAX_EXAMPLES",
			 MAX_EXAMPLES);
	struct example *e = &examples[nexamples++];
	e->doc = doc;
	e->line = line;
	e->kind = kind;
	e->text = strdup(text);
}

/* Append line [p, p + n) and a newline to the growing string *s. */
static void append_line(char **s, size_t *len, const char *p, size_t n)
{
	*s = realloc(*s, *len + n + 2);
	if (*s == NULL)
		fail_msg("out of memory");
	memcpy(*s + *len, p, n);
	*len += n;
	(*s)[(*len)++] = '\n';
	(*s)[*len] = '\0';
}

static bool blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)p[i]))
			return false;
	return true;
}

/* README.md: fenced blocks; an indented code block is an error. */
static void scan_markdown(const char *doc)
{
	char *src = slurp(doc);
	char *block = NULL;
	size_t blen = 0;
	const char *tag = NULL;
	int lineno = 0, start = 0;
	bool prev_blank = true, in_list = false;
	for (char *p = src; *p != '\0';) {
		char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (n >= 3 && strncmp(p, "```", 3) == 0) {
			if (tag == NULL) {
				static char t[32];
				snprintf(t, sizeof(t), "%.*s", (int)(n - 3),
					 p + 3);
				tag = t;
				start = lineno + 1;
				free(block);
				block = NULL;
				blen = 0;
				if (strcmp(tag, "sh") != 0 &&
				    strcmp(tag, "c") != 0 &&
				    strcmp(tag, "text") != 0)
					fail_msg("%s:%d: a code block tagged "
						 "\"%s\": tag it sh (run), c "
						 "(compiled and run) or text "
						 "(not an example)", doc,
						 lineno, tag);
			} else {
				if (strcmp(tag, "sh") == 0)
					add_example(doc, start, SHELL,
						    block ? block : "");
				else if (strcmp(tag, "c") == 0)
					add_example(doc, start, C_PROGRAM,
						    block ? block : "");
				tag = NULL;
			}
		} else if (tag != NULL) {
			append_line(&block, &blen, p, n);
		} else {
			/* A list item's continuation is indented too, but
			 * follows the item; a code block follows a blank
			 * line outside a list. */
			size_t d = 0;
			while (d < n && isdigit((unsigned char)p[d]))
				d++;
			bool item = (n >= 2 && (p[0] == '-' || p[0] == '*') &&
				     p[1] == ' ') ||
				    (d > 0 && d + 1 < n && p[d] == '.' &&
				     p[d + 1] == ' ');
			if (item)
				in_list = true;
			else if (n > 0 && !isspace((unsigned char)p[0]))
				in_list = false;
			if (prev_blank && !in_list && n >= 4 &&
			    (strncmp(p, "    ", 4) == 0 || p[0] == '\t') &&
			    !blank(p, n))
				fail_msg("%s:%d: an indented code block: fence "
					 "it (```sh to be run, ```text if it "
					 "is not an example)", doc, lineno);
		}
		prev_blank = blank(p, n);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (tag != NULL)
		fail_msg("%s: a code block opened at line %d is never closed",
			 doc, start - 1);
	free(block);
	free(src);
}

/* Undo the troff escapes an .EX block may hold; fail on others. */
static void untroff(const char *doc, int lineno, const char *p, size_t n,
		    char *out, size_t outn)
{
	static const struct {
		const char *esc, *plain;
	} table[] = {
		{"\\-", "-"}, {"\\e", "\\"}, {"\\(aq", "'"}, {"\\(dq", "\""},
		{"\\(ti", "~"}, {"\\(ha", "^"}, {"\\&", ""}, {"\\ ", " "},
		{"\\(rs", "\\"}, {"\\(ga", "`"},
	};
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		if (p[i] != '\\') {
			if (o + 1 < outn)
				out[o++] = p[i];
			i++;
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
			size_t el = strlen(table[k].esc);
			if (i + el <= n && strncmp(p + i, table[k].esc, el) == 0) {
				size_t pl = strlen(table[k].plain);
				if (o + pl < outn) {
					memcpy(out + o, table[k].plain, pl);
					o += pl;
				}
				i += el;
				break;
			}
		}
		if (k == sizeof(table) / sizeof(table[0]))
			fail_msg("%s:%d: a troff escape this test does not "
				 "know (\"%.*s\"): add it to untroff()", doc,
				 lineno, (int)(n - i < 6 ? n - i : 6), p + i);
	}
	out[o] = '\0';
}

/* A man page: every .EX/.EE block, but those marked as listings. */
static void scan_man(const char *rel, const char *doc)
{
	static const char marker[] = ".\\\" listing";
	char *src = slurp(rel);
	char *block = NULL;
	size_t blen = 0;
	int lineno = 0, start = 0;
	bool in = false, listing = false, marked = false;
	for (char *p = src; *p != '\0';) {
		char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		lineno++;
		bool marks = !in && n >= sizeof(marker) - 1 &&
			     strncmp(p, marker, sizeof(marker) - 1) == 0;
		if (n == 3 && strncmp(p, ".EX", 3) == 0) {
			in = true;
			listing = marked;
			start = lineno + 1;
			free(block);
			block = NULL;
			blen = 0;
		} else if (n == 3 && strncmp(p, ".EE", 3) == 0) {
			if (!in)
				fail_msg("%s:%d: .EE without .EX", doc, lineno);
			if (!listing)
				add_example(doc, start, SHELL,
					    block ? block : "");
			in = false;
		} else if (in) {
			if (n >= 3 && strncmp(p, ".\\\"", 3) == 0) {
				/* a comment */
			} else if (n > 0 && (p[0] == '.' || p[0] == '\'')) {
				fail_msg("%s:%d: a request inside an example "
					 "(%.*s): this test runs .EX blocks "
					 "as shell", doc, lineno, (int)n, p);
			} else {
				char plain[1024];
				untroff(doc, lineno, p, n, plain,
					sizeof(plain));
				append_line(&block, &blen, plain,
					    strlen(plain));
			}
		} else if (marked && !marks) {
			fail_msg("%s:%d: a listing mark not followed by .EX",
				 doc, lineno - 1);
		}
		marked = marks;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	if (in)
		fail_msg("%s: .EX at line %d is never closed", doc, start - 1);
	free(block);
	free(src);
}

/* The skip entry for e, or -1; every entry must match exactly one. */
static int skip_of(const struct example *e)
{
	for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++)
		if (strcmp(skips[i].doc, e->doc) == 0 &&
		    strstr(e->text, skips[i].match) != NULL)
			return (int)i;
	return -1;
}

static void check_skips_match(const char *doc)
{
	for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
		if (strcmp(skips[i].doc, doc) != 0)
			continue;
		int hits = 0;
		for (int k = 0; k < nexamples; k++)
			if (strcmp(examples[k].doc, doc) == 0 &&
			    strstr(examples[k].text, skips[i].match) != NULL)
				hits++;
		if (hits != 1)
			fail_msg("the skip entry \"%s\" of %s matches %d "
				 "examples, not 1: update the skip list",
				 skips[i].match, doc, hits);
	}
	for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
		if (strcmp(expects[i].doc, doc) != 0)
			continue;
		int hits = 0;
		for (int k = 0; k < nexamples; k++)
			if (strcmp(examples[k].doc, doc) == 0 &&
			    strstr(examples[k].text, expects[i].match) != NULL)
				hits++;
		if (hits != 1)
			fail_msg("the expected output for \"%s\" of %s matches "
				 "%d examples, not 1", expects[i].match, doc,
				 hits);
	}
}

/* ---- running them --------------------------------------------------- */

static char dir[64];      /* the scratch directory */
static char bindir[1024]; /* $LOCKMGR_BIN, absolute */

static void path_in(char *out, size_t n, const char *file)
{
	snprintf(out, n, "%s/%s", dir, file);
}

static void write_file(const char *file, const char *text, mode_t mode)
{
	char p[256];
	path_in(p, sizeof(p), file);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		fail_msg("open %s: %s", p, strerror(errno));
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len)
		fail_msg("write %s: %s", p, strerror(errno));
	close(fd);
}

static void remove_dir(void)
{
	harness_remove_flat_dir(dir);
}

/*
 * A scratch directory with the stubs, first on $PATH with the built
 * programs after it, as the working directory.
 */
static void setup(void)
{
	harness_tmpdir(dir, sizeof(dir));
	static const char stub[] =
		"#!/bin/sh\n"
		"# Stands in for the reader's own program: it must run under\n"
		"# the lock, and says so in stubs.log.\n"
		"case \"$LOCKMGR_TOKEN\" in\n"
		"''|*[!0-9]*) echo \"$0: LOCKMGR_TOKEN is '$LOCKMGR_TOKEN'\" "
		">&2; exit 99;;\n"
		"esac\n"
		"[ -n \"$LOCKMGR_LOCK\" ] || { echo \"$0: no LOCKMGR_LOCK\" >&2; "
		"exit 99; }\n"
		"if [ \"${0##*/}\" = deploy ] && { [ \"$1\" != --fence ] || "
		"[ \"$2\" != \"$LOCKMGR_TOKEN\" ]; }; then\n"
		"\techo \"deploy: expected --fence $LOCKMGR_TOKEN, got $*\" >&2\n"
		"\texit 99\n"
		"fi\n"
		"echo \"${0##*/} lock=$LOCKMGR_LOCK token=$LOCKMGR_TOKEN\" "
		">>\"${0%/*}/stubs.log\"\n";
	for (size_t i = 0; i < sizeof(stubs) / sizeof(stubs[0]); i++)
		write_file(stubs[i], stub, 0755);
	char path[8192];
	/* The built programs, by absolute path. */
	if (harness_bin_dir()[0] == '/')
		snprintf(bindir, sizeof(bindir), "%s", harness_bin_dir());
	else if (getcwd(bindir, sizeof(bindir) / 2) != NULL)
		snprintf(bindir + strlen(bindir), sizeof(bindir) - strlen(bindir),
			 "/%s", harness_bin_dir());
	else
		fail_msg("getcwd: %s", strerror(errno));
	setenv("LOCKMGR_BIN", bindir, 1); /* we leave the cwd it is under */
	const char *old = getenv("PATH");
	snprintf(path, sizeof(path), "%s:%s:%s", dir, bindir,
		 old != NULL ? old : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	if (chdir(dir) != 0)
		fail_msg("chdir %s: %s", dir, strerror(errno));
	/* A daemon an example starts is reparented to this process, which
	 * then reaps it. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[8192];
	snprintf(buf, sizeof(buf), "%s", path != NULL ? path : "");
	for (char *save, *d = strtok_r(buf, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", d, prog);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

/* text with every placeholder replaced (a malloc'd string). */
static char *replace_placeholders(const char *text, const char *region)
{
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	char *s = strdup(text);
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]);
	     i++) {
		/* The replacement, with @REGION@, @DIR@ and @PID@ filled. */
		char to[512] = "";
		for (const char *t = placeholders[i].to; *t != '\0';) {
			const char *v = NULL;
			if (strncmp(t, "@REGION@", 8) == 0)
				v = region, t += 8;
			else if (strncmp(t, "@DIR@", 5) == 0)
				v = dir, t += 5;
			else if (strncmp(t, "@PID@", 5) == 0)
				v = pid, t += 5;
			if (v != NULL) {
				strncat(to, v, sizeof(to) - strlen(to) - 1);
			} else {
				size_t l = strlen(to);
				if (l + 1 < sizeof(to)) {
					to[l] = *t;
					to[l + 1] = '\0';
				}
				t++;
			}
		}
		const char *from = placeholders[i].from;
		char *hit;
		size_t at = 0;
		while ((hit = strstr(s + at, from)) != NULL) {
			size_t pre = (size_t)(hit - s);
			size_t fl = strlen(from), tl = strlen(to);
			char *r = malloc(strlen(s) - fl + tl + 1);
			if (r == NULL)
				fail_msg("out of memory");
			memcpy(r, s, pre);
			memcpy(r + pre, to, tl);
			strcpy(r + pre + tl, hit + fl);
			free(s);
			s = r;
			at = pre + tl;
		}
	}
	return s;
}

/* Does a line of the example start lockmgrd (its own service)? */
static bool starts_lockmgrd(const char *text)
{
	for (const char *p = text; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "lockmgrd", 8) == 0 &&
		    (p[8] == ' ' || p[8] == '\n' || p[8] == '\0'))
			return true;
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return false;
}

static bool region_exists(const char *region)
{
	int fd = shm_open(region, O_RDONLY, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * An example's own service must be gone once it ends (it stops it).
 * If it is not within 10 s, kill it (it may have left our process
 * group with --daemon) and say so.
 */
static bool own_service_gone(const char *region, char *why, size_t n)
{
	int64_t deadline = harness_now_ms() + 10000;
	while (region_exists(region) && harness_now_ms() < deadline)
		harness_nap_us(2000);
	if (!region_exists(region)) {
		harness_reap_orphans();
		return true;
	}
	struct lm_region r;
	char err[128];
	if (lm_region_attach(&r, region, err, sizeof(err)) == 0) {
		pid_t sup = atomic_load(&r.hdr->supervisor_pid);
		if (sup > 0)
			kill(sup, SIGKILL);
		for (unsigned i = 0; i < LM_NSERVERS; i++) {
			pid_t s = atomic_load(&r.servers[i]->pid);
			if (s > 0)
				kill(s, SIGKILL);
		}
		lm_region_detach(&r);
	}
	shm_unlink(region);
	harness_reap_orphans();
	snprintf(why, n, "the lockmgrd it started on %s was still running "
			 "10 s after it ended", region);
	return false;
}

static void show(const char *file, char *buf, size_t n)
{
	char p[256];
	path_in(p, sizeof(p), file);
	if (harness_read_file(p, buf, n) < 0)
		buf[0] = '\0';
}

static int expect_of(const struct example *e)
{
	for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++)
		if (strcmp(expects[i].doc, e->doc) == 0 &&
		    strstr(e->text, expects[i].match) != NULL)
			return (int)i;
	return -1;
}

/* Run one shell example; fail the case, saying which, if it fails. */
static void run_shell(const struct example *e)
{
	int x = expect_of(e);
	if (x >= 0 && expects[x].needs != NULL && !in_path(expects[x].needs)) {
		/* On stderr: a case's stdout is shown only if it fails. */
		fprintf(stderr, "test_docs: %s:%d: not run: it needs %s, which "
				"is not installed\n", e->doc, e->line,
			expects[x].needs);
		return;
	}
	bool own = starts_lockmgrd(e->text);
	struct harness_lockmgrd d = {0};
	char region[LM_REGION_NAME_MAX + 2];
	lm_client *c = NULL;
	lm_grant held;
	if (own) {
		harness_region_name(region, sizeof(region), "docs");
		unsetenv("LOCKMGR_REGION");
	} else {
		harness_lockmgrd_start(&d, "docs", "--max-ttl", "60000",
				       "--restart-delay", "-1", NULL);
		snprintf(region, sizeof(region), "%s", d.region);
		setenv("LOCKMGR_REGION", region, 1);
		int rc = lm_connect(region, &c);
		if (rc == 0)
			rc = lm_acquire(c, "docs/held", 20000, 5000, &held);
		if (rc != 0)
			fail_msg("holding docs/held on %s: %s", region,
				 lm_strerror(rc));
	}
	char *script = replace_placeholders(e->text, region);
	write_file("example.sh", script, 0644);
	write_file("stubs.log", "", 0644);
	char out[256], err[256];
	path_in(out, sizeof(out), "out");
	path_in(err, sizeof(err), "err");
	char *argv[] = {"/bin/sh", "-e", "example.sh", NULL};
	int code = harness_run(argv, out, err, 30000);

	char why[512] = "";
	if (!own) {
		int rc = lm_release(c, &held);
		lm_disconnect(c);
		if (rc != 0)
			snprintf(why, sizeof(why), "the test's own lock was "
				 "lost while it ran: %s", lm_strerror(rc));
		harness_lockmgrd_stop(&d);
	} else {
		own_service_gone(region, why, sizeof(why));
	}
	static char o[16384], er[8192], log[4096];
	show("out", o, sizeof(o));
	show("err", er, sizeof(er));
	show("stubs.log", log, sizeof(log));
	if (why[0] == '\0' && code != 0)
		snprintf(why, sizeof(why), "it exited %d", code);
	if (why[0] == '\0' && er[0] != '\0')
		snprintf(why, sizeof(why), "it wrote to standard error");
	for (size_t i = 0; why[0] == '\0' && i < sizeof(stubs) / sizeof(*stubs);
	     i++) {
		char ran[64];
		snprintf(ran, sizeof(ran), "%s lock=", stubs[i]);
		if (strstr(e->text, stubs[i]) != NULL && strstr(log, ran) == NULL)
			snprintf(why, sizeof(why), "%s never ran under the "
				 "lock", stubs[i]);
	}
	if (why[0] == '\0' && x >= 0 && strstr(o, expects[x].stdout_has) == NULL)
		snprintf(why, sizeof(why), "its output lacks \"%s\"",
			 expects[x].stdout_has);
	if (why[0] != '\0')
		fail_msg("%s:%d: the example fails: %s.\n--- example (as "
			 "run) ---\n%s--- stdout ---\n%s--- stderr ---\n%s"
			 "--- stubs.log ---\n%s", e->doc, e->line, why, script,
			 o, er, log);
	printf("# %s:%d: ok\n", e->doc, e->line);
	free(script);
}

/* Compile a C example against the built library, then run it against a
 * service (it must take the lock) and without one (it must say so). */
static void run_c(const struct example *e)
{
	write_file("prog.c", e->text, 0644);
	char inc[1200], lib[1200], out[256], err[256], msg[8192];
	snprintf(inc, sizeof(inc), "-I%s/client", LM_SRC_DIR);
	snprintf(lib, sizeof(lib), "%s/liblockmgr.a", bindir);
	path_in(out, sizeof(out), "out");
	path_in(err, sizeof(err), "err");
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "%s -std=c11 -Wall -Wextra -Werror %s "
		 "-o prog prog.c %s %s -pthread -ljansson -ldl", LM_CC,
		 inc, lib,
		 LM_EXAMPLE_LDFLAGS);
	char *cc[] = {"/bin/sh", "-c", cmd, NULL};
	int code = harness_run(cc, out, err, 60000);
	show("err", msg, sizeof(msg));
	if (code != 0)
		fail_msg("%s:%d: the C example does not compile (%s): exit "
			 "%d\n%s", e->doc, e->line, cmd, code, msg);

	char *prog[] = {"./prog", NULL};
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "docs", "--max-ttl", "60000", NULL);
	setenv("LOCKMGR_REGION", d.region, 1);
	code = harness_run(prog, out, err, 20000);
	harness_lockmgrd_stop(&d);
	static char o[8192];
	show("out", o, sizeof(o));
	show("err", msg, sizeof(msg));
	if (code != 0 || strstr(o, "token ") == NULL || msg[0] != '\0')
		fail_msg("%s:%d: the C example, with a service, exited %d\n"
			 "--- stdout ---\n%s--- stderr ---\n%s", e->doc, e->line,
			 code, o, msg);

	/* No service: it must stop at lm_connect and say why. */
	char region[LM_REGION_NAME_MAX + 2];
	harness_region_name(region, sizeof(region), "docs-none");
	setenv("LOCKMGR_REGION", region, 1);
	code = harness_run(prog, out, err, 20000);
	show("err", msg, sizeof(msg));
	if (code == 0 || strstr(msg, lm_strerror(LM_ENOSUPERVISOR)) == NULL)
		fail_msg("%s:%d: the C example, without a service, exited %d "
			 "and did not say \"%s\":\n%s", e->doc, e->line, code,
			 lm_strerror(LM_ENOSUPERVISOR), msg);
	printf("# %s:%d: ok (compiled, run with and without a service)\n",
	       e->doc, e->line);
}

static void run_doc(const char *doc)
{
	int ran = 0;
	for (int i = 0; i < nexamples; i++) {
		const struct example *e = &examples[i];
		if (strcmp(e->doc, doc) != 0)
			continue;
		int s = skip_of(e);
		if (s >= 0) {
			printf("# %s:%d: not run: %s\n", e->doc, e->line,
			       skips[s].why);
			continue;
		}
		if (e->kind == SHELL)
			run_shell(e);
		else
			run_c(e);
		ran++;
	}
	if (ran == 0)
		fail_msg("%s: no example was run (are they still marked?)",
			 doc);
}

static void scan_all(void)
{
	nexamples = 0;
	scan_markdown("README.md");
	scan_man("docs/lockctl.1", "lockctl.1");
	scan_man("docs/lockmgrd.8", "lockmgrd.8");
	scan_man("docs/resctl.1", "resctl.1");
	check_skips_match("README.md");
	check_skips_match("lockctl.1");
	check_skips_match("lockmgrd.8");
	check_skips_match("resctl.1");
}

static void teardown(void)
{
	if (chdir("/") != 0)
		fail_msg("chdir /: %s", strerror(errno));
	remove_dir();
}

/* ---- cases ------------------------------------------------------------ */

static void readme_examples(void)
{
	scan_all();
	setup();
	run_doc("README.md");
	teardown();
}
HARNESS_CASE(readme_examples, 180)

static void lockctl_1_examples(void)
{
	scan_all();
	setup();
	run_doc("lockctl.1");
	teardown();
}
HARNESS_CASE(lockctl_1_examples, 180)

static void lockmgrd_8_examples(void)
{
	scan_all();
	setup();
	run_doc("lockmgrd.8");
	teardown();
}
HARNESS_CASE(lockmgrd_8_examples, 180)

static void resctl_1_examples(void)
{
	scan_all();
	setup();
	run_doc("resctl.1");
	teardown();
}
HARNESS_CASE(resctl_1_examples, 180)

/*
 * The man pages as a reader sees them in an 80-column terminal (man-db
 * renders with a 78-column line there): groff has no warning to give
 * (-ww), no line is wider than 80 columns (an example that is must be
 * wrapped, with a backslash for the shell), and the text is ragged right
 * with no hyphenation, as ".ad l" and ".nh" after .TH make it: justified
 * text leaves wide gaps at this width, and a hyphen breaks option names
 * and paths in two. The last is checked on the output: the page must
 * render the same with those two requests added.
 */
static char *render(const char *file, char *err, size_t errn)
{
	char cmd[2048], errpath[128];
	snprintf(errpath, sizeof(errpath), "%s/groff.err", dir);
	snprintf(cmd, sizeof(cmd),
		 "groff -ww -man -Tutf8 -rLL=78n -P-cbou '%s' 2>'%s'", file,
		 errpath);
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		fail_msg("popen %s: %s", cmd, strerror(errno));
	char *buf = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
			if (buf == NULL)
				fail_msg("out of memory");
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	buf[len] = '\0';
	int st = pclose(f);
	if (st != 0)
		fail_msg("%s: exit status %d", cmd, st);
	ssize_t e = harness_read_file(errpath, err, errn);
	err[e > 0 ? (size_t)e : 0] = '\0';
	return buf;
}

static void man_page_renders_at_80_columns(const char *rel)
{
	char src[1024], ragged[256], err[4096];
	snprintf(src, sizeof(src), "%s/%s", LM_SRC_DIR, rel);
	char *out = render(src, err, sizeof(err));
	if (err[0] != '\0')
		fail_msg("%s: groff -ww warns:\n%s", rel, err);
	int lineno = 1;
	for (const char *p = out; *p != '\0'; lineno++) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		size_t cols = 0; /* characters, not bytes (UTF-8) */
		for (size_t i = 0; i < n; i++)
			cols += ((unsigned char)p[i] & 0xC0) != 0x80;
		if (cols > 80)
			fail_msg("%s: rendered line %d is %zu columns wide (wrap "
				 "it to 80):\n%.*s",
				 rel, lineno, cols, (int)n, p);
		p += n + (nl != NULL);
	}
	/* The same page, ragged right and unhyphenated for certain. */
	char *text = slurp(rel);
	char *eol = strchr(text, '\n');
	assert_non_null(eol);
	path_in(ragged, sizeof(ragged), "ragged.man");
	FILE *f = fopen(ragged, "w");
	assert_non_null(f);
	fprintf(f, "%.*s\n.ad l\n.nh\n%s", (int)(eol - text), text, eol + 1);
	fclose(f);
	char *want = render(ragged, err, sizeof(err));
	if (strcmp(out, want) != 0) {
		size_t i = 0;
		while (out[i] == want[i])
			i++;
		while (i > 0 && out[i - 1] != '\n')
			i--;
		fail_msg("%s is justified or hyphenated at 80 columns (wide "
			 "gaps, broken words): put \".ad l\" and \".nh\" after "
			 ".TH; first difference:\n%.160s", rel, out + i);
	}
	free(want);
	free(text);
	free(out);
}

static void man_pages_render_at_80_columns(void)
{
	setup();
	if (!in_path("groff")) {
		printf("# not run: needs groff (Debian groff-base)\n");
		teardown();
		return;
	}
	man_page_renders_at_80_columns("docs/lockctl.1");
	man_page_renders_at_80_columns("docs/lockmgrd.8");
	man_page_renders_at_80_columns("docs/resctl.1");
	teardown();
}
HARNESS_CASE(man_pages_render_at_80_columns, 60)

/*
 * The docs stand on their own in a clone: every relative link in the
 * Markdown files names a file of the tree, and no doc points at the
 * design notes of the workspace the project was written in (DESIGN.md,
 * ../shared/), which a clone does not have: the invariants and design
 * are stated in docs/protocol.md.
 */
static void docs_name_only_files_in_the_tree(void)
{
	static const char *const docs[] = {"README.md", "docs/protocol.md",
					   "docs/lockctl.1", "docs/lockmgrd.8",
					   "docs/resctl.1"};
	static const char *const outside[] = {"DESIGN.md", "../shared"};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		char *text = slurp(docs[i]);
		for (size_t k = 0; k < sizeof(outside) / sizeof(outside[0]);
		     k++)
			if (strstr(text, outside[k]) != NULL)
				fail_msg("%s mentions %s, which a clone does "
					 "not have", docs[i], outside[k]);
		const char *slash = strrchr(docs[i], '/');
		int dirlen = slash ? (int)(slash - docs[i] + 1) : 0;
		for (const char *p = strstr(text, "]("); p != NULL;
		     p = strstr(p + 2, "](")) {
			const char *t = p + 2, *end = strpbrk(t, ")# \n");
			if (end == NULL || end == t ||
			    strncmp(t, "http://", 7) == 0 ||
			    strncmp(t, "https://", 8) == 0 ||
			    strncmp(t, "mailto:", 7) == 0)
				continue;
			char path[1024];
			snprintf(path, sizeof(path), "%s/%.*s%.*s",
				 LM_SRC_DIR, dirlen, docs[i], (int)(end - t),
				 t);
			if (access(path, F_OK) != 0)
				fail_msg("%s links to %.*s, which is not in "
					 "the tree", docs[i], (int)(end - t),
					 t);
		}
		free(text);
	}
}
HARNESS_CASE(docs_name_only_files_in_the_tree, 30)

int main(void)
{
	const struct CMUnitTest tests[] = {
		harness_case(readme_examples),
		harness_case(lockctl_1_examples),
		harness_case(lockmgrd_8_examples),
		harness_case(resctl_1_examples),
		harness_case(man_pages_render_at_80_columns),
		harness_case(docs_name_only_files_in_the_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
