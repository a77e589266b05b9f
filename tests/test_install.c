/*
 * test_install.c - `make install` into a temporary prefix, and a program
 * built outside the tree against it with pkg-config, as a user would.
 *
 *   1. `make install PREFIX=<scratch>/prefix` from the source tree, with
 *      the BUILD directory of the running tests ($LOCKMGR_BIN) and
 *      `-o all`, so that nothing is rebuilt: `make test` built it, and a
 *      rebuild from here would race other builds (and, for build-san,
 *      would not know SAN=1). LDCONFIG=true: a test never refreshes the
 *      host's linker cache.
 *   2. Every file the README says is installed is there, the headers and
 *      man pages byte for byte the tree's.
 *   3. A program (written here) that takes a lock and writes its token
 *      to a fenced store is built twice with pkg-config: against the
 *      shared liblockmgr (`pkg-config --cflags --libs lockmgr
 *      fencedstore`) and against liblockmgr.a (the README's static
 *      recipe). Only PKG_CONFIG_LIBDIR points at the prefix: no
 *      LD_LIBRARY_PATH, so the shared one must find liblockmgr.so.1 by
 *      itself (the rpath lockmgr.pc carries for a prefix the dynamic
 *      linker does not search).
 *   4. Both run against the installed lockmgrd (--ephemeral, a fresh
 *      region); each gets a lock and a token, the second higher than the
 *      first; the shared one has the prefix's liblockmgr.so.1 mapped, the
 *      static one none; the installed resctl shows both writes.
 *   5. `make uninstall` leaves no file in the prefix.
 *
 * The scratch directory is made and removed (recursively, pass or fail)
 * by the test process around the case; the case's own process group
 * (make, cc, lockmgrd, the programs) is the harness's to kill on a hang.
 * Run from the source tree, as `make test` does.
 */
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Made by the test process before the case is forked, removed after. */
static char scratch[64];

#define STEP_TIMEOUT_MS 120000

/* The program a user would write: a lock, its token, a fenced write. */
static const char prog_c[] =
	"#define _GNU_SOURCE\n"
	"#include <fencedstore.h>\n"
	"#include <lockmgr.h>\n"
	"#include <stdio.h>\n"
	"#include <string.h>\n"
	"\n"
	"/* Print which liblockmgr.so is mapped, or none (linked static). */\n"
	"static void print_lib(void)\n"
	"{\n"
	"\tchar line[4096];\n"
	"\tFILE *f = fopen(\"/proc/self/maps\", \"r\");\n"
	"\twhile (f != NULL && fgets(line, sizeof(line), f) != NULL) {\n"
	"\t\tchar *path = strchr(line, '/');\n"
	"\t\tif (path != NULL && strstr(path, \"/liblockmgr.so\")) {\n"
	"\t\t\tprintf(\"lib %s\", path);\n"
	"\t\t\tfclose(f);\n"
	"\t\t\treturn;\n"
	"\t\t}\n"
	"\t}\n"
	"\tif (f != NULL)\n"
	"\t\tfclose(f);\n"
	"\tprintf(\"lib none\\n\");\n"
	"}\n"
	"\n"
	"int main(int argc, char **argv)\n"
	"{\n"
	"\tif (argc != 4) {\n"
	"\t\tfprintf(stderr, \"usage: prog REGION LOCK STORE\\n\");\n"
	"\t\treturn 64;\n"
	"\t}\n"
	"\tlm_client *c;\n"
	"\tlm_grant g;\n"
	"\tfs_store *s;\n"
	"\tint rc = lm_connect(argv[1], &c);\n"
	"\tif (rc != 0) {\n"
	"\t\tfprintf(stderr, \"lm_connect: %s\\n\", lm_strerror(rc));\n"
	"\t\treturn 1;\n"
	"\t}\n"
	"\trc = lm_acquire(c, argv[2], 1000, 5000, &g);\n"
	"\tif (rc != 0) {\n"
	"\t\tfprintf(stderr, \"lm_acquire: %s\\n\", lm_strerror(rc));\n"
	"\t\treturn 2;\n"
	"\t}\n"
	"\tint err = fs_open(argv[3], FS_CREATE, &s);\n"
	"\tif (err == 0) {\n"
	"\t\terr = fs_write(s, g.token, argv[0], strlen(argv[0]), NULL);\n"
	"\t\tfs_close(s);\n"
	"\t}\n"
	"\tif (err != 0) {\n"
	"\t\tfprintf(stderr, \"fenced store: %s\\n\", fs_strerror(err));\n"
	"\t\treturn 3;\n"
	"\t}\n"
	"\trc = lm_release(c, &g);\n"
	"\tif (rc != 0) {\n"
	"\t\tfprintf(stderr, \"lm_release: %s\\n\", lm_strerror(rc));\n"
	"\t\treturn 4;\n"
	"\t}\n"
	"\tprintf(\"token %llu\\n\", (unsigned long long)g.token);\n"
	"\tprint_lib();\n"
	"\treturn lm_disconnect(c) == 0 ? 0 : 5;\n"
	"}\n";

/*
 * The sanitizers of the build under test: an instrumented liblockmgr
 * needs its runtime in the program that links it (gcc defines
 * __SANITIZE_ADDRESS__ under -fsanitize=address; make SAN=1 adds UBSan
 * with it).
 */
#ifdef __SANITIZE_ADDRESS__
#define SAN_FLAGS "-fsanitize=address,undefined"
#else
#define SAN_FLAGS ""
#endif

static char out[65536], err[65536];

/*
 * Run `sh -c script sh ARGS...` (the arguments as $1... so that no path
 * is ever quoted into the script) in the scratch directory, bounded.
 * Its stdout and stderr end up in out and err. Fails the test, showing
 * both, unless it exits 0.
 */
static void sh(const char *what, const char *script, ...)
{
	char *argv[16] = {"/bin/sh", "-c", (char *)script, "sh"};
	int n = 4;
	va_list ap;
	va_start(ap, script);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 15)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	char o[128], e[128];
	snprintf(o, sizeof(o), "%s/sh.out", scratch);
	snprintf(e, sizeof(e), "%s/sh.err", scratch);
	int code = harness_run(argv, o, e, STEP_TIMEOUT_MS);
	if (harness_read_file(o, out, sizeof(out)) < 0)
		out[0] = '\0';
	if (harness_read_file(e, err, sizeof(err)) < 0)
		err[0] = '\0';
	if (code != 0)
		fail_msg("%s: exit %d\n--- stdout:\n%s--- stderr:\n%s", what,
			 code, out, err);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
		fail_msg("cannot write %s: %s", path, strerror(errno));
}

/* The installed file rel (under prefix) is there, a regular file with
 * mode, and (if src) byte for byte the tree's src. */
static void expect_file(const char *prefix, const char *rel, mode_t mode,
			const char *src)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", prefix, rel);
	if (stat(path, &st) != 0)
		fail_msg("make install did not install %s (%s)", rel,
			 strerror(errno));
	if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != mode)
		fail_msg("%s is installed with mode %o, expected a file with "
			 "%o", rel, (unsigned)(st.st_mode & 07777),
			 (unsigned)mode);
	if (src == NULL)
		return;
	static char a[262144], b[262144];
	ssize_t na = harness_read_file(path, a, sizeof(a));
	ssize_t nb = harness_read_file(src, b, sizeof(b));
	if (nb < 0)
		fail_msg("cannot read %s: run the test from the source tree",
			 src);
	if (na != nb || memcmp(a, b, (size_t)na) != 0)
		fail_msg("the installed %s is not the tree's %s", rel, src);
}

static unsigned long long parse_token(const char *what)
{
	unsigned long long t = 0;
	if (sscanf(out, "token %llu\n", &t) != 1 || t == 0)
		fail_msg("%s printed no token:\n%s", what, out);
	return t;
}

static int count_leftover(const char *path, const struct stat *st, int type,
			  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type != FTW_D && type != FTW_DP) {
		fprintf(stderr, "# left behind by make uninstall: %s\n", path);
		return 1;
	}
	return 0;
}

static void install_and_build_against_it(void)
{
	/* Paths under scratch (64 bytes) fit these, as gcc can tell. */
	char src[PATH_MAX], prefix[128], real_prefix[PATH_MAX];
	char pcdir[256], prog[256], store[256], bin[160];
	if (getcwd(src, sizeof(src)) == NULL)
		fail_msg("getcwd: %s", strerror(errno));
	if (access("Makefile", R_OK) != 0 || access("lockmgr.pc.in", R_OK) != 0)
		fail_msg("%s is not lockmgr's source tree: run the test from "
			 "it (make test does)", src);
	const char *build = harness_bin_dir();
	char lib[PATH_MAX];
	snprintf(lib, sizeof(lib), "%s/liblockmgr.so", build);
	if (access(lib, R_OK) != 0)
		fail_msg("%s is not built: run make (or make SAN=1) first, with "
			 "LOCKMGR_BIN naming its build directory", lib);

	snprintf(prefix, sizeof(prefix), "%s/prefix", scratch);
	snprintf(pcdir, sizeof(pcdir), "%s/lib/pkgconfig", prefix);
	snprintf(prog, sizeof(prog), "%s/prog.c", scratch);
	snprintf(store, sizeof(store), "%s/store", scratch);

	/* What a user's shell would not have: this run's make (its jobserver
	 * belongs to the make running the tests), a library path or another
	 * pkg-config search path. */
	const char *drop[] = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL",
			      "MAKEOVERRIDES", "GNUMAKEFLAGS", "LD_LIBRARY_PATH",
			      "LD_PRELOAD", "PKG_CONFIG_PATH",
			      "PKG_CONFIG_SYSROOT_DIR"};
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		unsetenv(drop[i]);
	setenv("PKG_CONFIG_LIBDIR", pcdir, 1);

	char build_arg[PATH_MAX + 8], prefix_arg[256];
	snprintf(build_arg, sizeof(build_arg), "BUILD=%s", build);
	snprintf(prefix_arg, sizeof(prefix_arg), "PREFIX=%s", prefix);
	sh("make install into a temporary prefix",
	   "exec make -C \"$1\" --no-print-directory -o all install \"$2\" "
	   "\"$3\" LDCONFIG=true",
	   src, build_arg, prefix_arg, NULL);

	/* 2. Everything the README lists. */
	expect_file(prefix, "bin/lockmgrd", 0755, NULL);
	expect_file(prefix, "bin/lockctl", 0755, NULL);
	expect_file(prefix, "bin/lmflock", 0755, NULL);
	expect_file(prefix, "bin/resctl", 0755, NULL);
	expect_file(prefix, "lib/liblockmgr.so.1", 0755, NULL);
	expect_file(prefix, "lib/liblockmgr.a", 0644, NULL);
	expect_file(prefix, "lib/libfencedstore.a", 0644, NULL);
	expect_file(prefix, "lib/pkgconfig/lockmgr.pc", 0644, NULL);
	expect_file(prefix, "lib/pkgconfig/fencedstore.pc", 0644, NULL);
	expect_file(prefix, "include/lockmgr.h", 0644, "client/lockmgr.h");
	expect_file(prefix, "include/fencedstore.h", 0644, "resource/store.h");
	expect_file(prefix, "share/man/man1/lockctl.1", 0644, "docs/lockctl.1");
	expect_file(prefix, "share/man/man1/resctl.1", 0644, "docs/resctl.1");
	expect_file(prefix, "share/man/man1/lmflock.1", 0644, NULL);
	expect_file(prefix, "share/man/man8/lockmgrd.8", 0644,
		    "docs/lockmgrd.8");
	char link[256], target[64];
	/* lmflock is lockctl under flock's habits: a link, so that the
	 * two can never be different versions. */
	snprintf(link, sizeof(link), "%s/bin/lmflock", prefix);
	ssize_t tl = readlink(link, target, sizeof(target) - 1);
	target[tl > 0 ? tl : 0] = '\0';
	if (strcmp(target, "lockctl") != 0)
		fail_msg("bin/lmflock is not a link to lockctl (it points to "
			 "\"%s\")", target);
	snprintf(link, sizeof(link), "%s/lib/liblockmgr.so", prefix);
	tl = readlink(link, target, sizeof(target) - 1);
	target[tl > 0 ? tl : 0] = '\0';
	if (strcmp(target, "liblockmgr.so.1") != 0)
		fail_msg("lib/liblockmgr.so is not a link to liblockmgr.so.1");

	/* 3. Built outside the tree, shared and static. */
	write_file(prog, prog_c);
	sh("pkg-config finds lockmgr and fencedstore in the prefix",
	   "pkg-config --exists --print-errors lockmgr fencedstore", NULL);
	sh("build against the shared liblockmgr with pkg-config",
	   "cd \"$1\" && exec cc -std=c11 -Wall -Wextra -Werror $2 "
	   "$(pkg-config --cflags lockmgr fencedstore) -o prog-shared prog.c "
	   "$(pkg-config --libs lockmgr fencedstore)",
	   scratch, SAN_FLAGS, NULL);
	sh("build against liblockmgr.a (the README's static recipe)",
	   "cd \"$1\" && exec cc -std=c11 -Wall -Wextra -Werror $2 "
	   "$(pkg-config --cflags lockmgr fencedstore) -o prog-static prog.c "
	   "\"$(pkg-config --variable=libdir lockmgr)/liblockmgr.a\" "
	   "$(pkg-config --libs fencedstore) -pthread -ljansson -ldl",
	   scratch, SAN_FLAGS, NULL);

	/* 4. Against the installed lockmgrd. */
	snprintf(bin, sizeof(bin), "%s/bin", prefix);
	setenv("LOCKMGR_BIN", bin, 1);
	struct harness_lockmgrd d;
	harness_lockmgrd_start(&d, "inst", NULL);

	char exe[256];
	snprintf(exe, sizeof(exe), "%s/prog-shared", scratch);
	sh("the program built against the shared liblockmgr, without "
	   "LD_LIBRARY_PATH",
	   "exec \"$1\" \"$2\" /install/job \"$3\"", exe, d.region, store,
	   NULL);
	unsigned long long t1 = parse_token("prog-shared");
	if (realpath(prefix, real_prefix) == NULL)
		fail_msg("realpath(%s): %s", prefix, strerror(errno));
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "lib %s/lib/liblockmgr.so.1\n",
		 real_prefix);
	if (strstr(out, want) == NULL)
		fail_msg("prog-shared did not load the prefix's liblockmgr.so.1 "
			 "(expected \"%.*s\"):\n%s", (int)strlen(want) - 1, want,
			 out);

	snprintf(exe, sizeof(exe), "%s/prog-static", scratch);
	sh("the program built against liblockmgr.a",
	   "exec \"$1\" \"$2\" /install/job \"$3\"", exe, d.region, store,
	   NULL);
	unsigned long long t2 = parse_token("prog-static");
	if (strstr(out, "lib none\n") == NULL)
		fail_msg("prog-static has a liblockmgr.so mapped:\n%s", out);
	if (t2 <= t1)
		fail_msg("the second grant's token %llu is not above the first's "
			 "%llu", t2, t1);

	char resctl[256], lockctl[256];
	snprintf(resctl, sizeof(resctl), "%s/resctl", bin);
	snprintf(lockctl, sizeof(lockctl), "%s/lockctl", bin);
	sh("the installed resctl shows both writes",
	   "exec \"$1\" -s \"$2\" show --json", resctl, store, NULL);
	char hi[64];
	snprintf(hi, sizeof(hi), "\"highest_token\":%llu,", t2);
	if (strstr(out, hi) == NULL || strstr(out, "\"accepted_count\":2,") ==
						   NULL)
		fail_msg("the store does not hold the two writes (tokens %llu "
			 "and %llu):\n%s", t1, t2, out);
	sh("the installed lockctl reads the service",
	   "exec \"$1\" -r \"$2\" status", lockctl, d.region, NULL);
	char lmflock[256];
	snprintf(lmflock, sizeof(lmflock), "%s/lmflock", bin);
	sh("the installed lmflock runs a command under a lock",
	   "LOCKMGR_REGION=\"$2\" exec \"$1\" -n /install/lock -c "
	   "'echo \"lock $LOCKMGR_LOCK\"'", lmflock, d.region, NULL);
	if (strstr(out, "lock /install/lock\n") == NULL)
		fail_msg("the installed lmflock did not run its command:\n%s",
			 out);
	harness_lockmgrd_stop(&d);

	/* 5. Uninstalled, nothing is left (the directories may stay). */
	sh("make uninstall",
	   "exec make -C \"$1\" --no-print-directory uninstall \"$2\" "
	   "LDCONFIG=true",
	   src, prefix_arg, NULL);
	if (nftw(prefix, count_leftover, 16, FTW_PHYS) != 0)
		fail_msg("make uninstall left files in %s (listed above)",
			 prefix);
}
HARNESS_CASE(install_and_build_against_it, 240)

static int make_scratch(void **state)
{
	(void)state;
	harness_tmpdir(scratch, sizeof(scratch));
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "test_install: cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

/* Pass or fail: the prefix is a tree, which the harness's flat cleanup
 * of /tmp/lmt-* would not remove. */
static int remove_scratch(void **state)
{
	(void)state;
	if (scratch[0] != '\0')
		nftw(scratch, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	scratch[0] = '\0';
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		{"install_and_build_against_it",
		 install_and_build_against_it_proc, make_scratch,
		 remove_scratch, NULL},
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
