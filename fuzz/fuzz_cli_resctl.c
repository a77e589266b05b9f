/*
 * fuzz_cli_resctl.c - resctl's command line (resource/resctl.c).
 *
 * The input is argv (see cli_common.h), run through resctl's own main()
 * in-process, with the real fenced store underneath. Before every input
 * the private directory is emptied and a small valid store named
 * "store" (accepted and rejected records, highest token 9) is put in
 * it, so `-s store show`, `-s store write --token 3 x` (stale) or
 * `-s new write ...` (creates) all do their real work.
 *
 * Paths are confined (open, link and unlink wrapped with -Wl,--wrap,
 * only while resctl runs): a relative path without a ".." component is
 * taken inside the private directory, anything else (an absolute path,
 * a way out with "..") fails with EACCES. So a fuzzed `-s /etc/passwd
 * write` can neither create nor read anything outside. Standard input
 * is /dev/null (write - reads an empty payload; write with no DATA is
 * a usage error), and $RESCTL_STORE and $LOCKMGR_TOKEN are unset.
 *
 * Checked: resctl exits with a status it documents (0, 3, 64, 65, 66,
 * 74), and the sanitizers' usual.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "../resource/store.h"
#include "cli_common.h"
#include "fuzz_common.h"

int resctl_main(int argc, char **argv);

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __real_link(const char *from, const char *to);
int __wrap_link(const char *from, const char *to);
int __real_unlink(const char *path);
int __wrap_unlink(const char *path);

static void *template;
static size_t template_len;

/* Map a path resctl uses to one inside the private directory. */
static int confine(const char *path, char *out, size_t len)
{
	if (path[0] == '/') {
		errno = EACCES;
		return -1;
	}
	for (const char *p = path; *p != '\0';) {
		const char *e = strchrnul(p, '/');
		if (e - p == 2 && p[0] == '.' && p[1] == '.') {
			errno = EACCES;
			return -1;
		}
		p = *e != '\0' ? e + 1 : e;
	}
	int n = snprintf(out, len, "%s/%s", fz_tmpdir(), path);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (!fz_cli_active)
		return __real_open(path, flags, mode);
	char p[PATH_MAX];
	if (confine(path, p, sizeof(p)) != 0)
		return -1;
	return __real_open(p, flags, mode);
}

int __wrap_link(const char *from, const char *to)
{
	if (!fz_cli_active)
		return __real_link(from, to);
	char a[PATH_MAX], b[PATH_MAX];
	if (confine(from, a, sizeof(a)) != 0 || confine(to, b, sizeof(b)) != 0)
		return -1;
	return __real_link(a, b);
}

int __wrap_unlink(const char *path)
{
	if (!fz_cli_active)
		return __real_unlink(path);
	char p[PATH_MAX];
	if (confine(path, p, sizeof(p)) != 0)
		return -1;
	return __real_unlink(p);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_cli_init();
	unsetenv("RESCTL_STORE");
	unsetenv("LOCKMGR_TOKEN");
	/* The store every input starts with. */
	char path[PATH_MAX];
	fz_tmp_path(path, sizeof(path), "template");
	fs_store *s;
	int rc = fs_open(path, FS_CREATE, &s);
	FZ_CHECK(rc == 0, "fs_open: %s", fs_strerror(rc));
	static const uint64_t tokens[] = {5, 7, 3, 9};
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		static const char data[] = "payload \x01\xc3\xa9\xff \"q\"\n";
		rc = fs_write(s, tokens[i], data, sizeof(data) - 1 - i, NULL);
		FZ_CHECK(rc == 0 || rc == FS_ESTALE, "fs_write: %s",
			 fs_strerror(rc));
	}
	fs_close(s);
	template = fz_read_file(path, 1u << 20, &template_len);
	FZ_CHECK(template != NULL, "read %s", path);
	fz_empty_dir(fz_tmpdir());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[PATH_MAX];
	fz_tmp_path(path, sizeof(path), "store");
	FZ_CHECK(fz_write_file(path, template, template_len) == 0,
		 "write %s: %s", path, strerror(errno));
	int st = fz_run_cli(resctl_main, "resctl", data, size);
	FZ_CHECK(st == 0 || st == 3 || st == 64 || st == 65 || st == 66 ||
			 st == 74,
		 "resctl exited with %d, not a status it documents", st);
	fz_empty_dir(fz_tmpdir());
	return 0;
}
