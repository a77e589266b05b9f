/*
 * fuzz_cli_lockmgrd.c - lockmgrd's command line (daemon/lockmgrd.c).
 *
 * The input is argv (see cli_common.h), run through lockmgrd's own
 * main() in-process, which parses every option (getopt_long, the number
 * parsers, --mode, lm_region_check_params) and then resolves the region
 * name. That is where argument handling ends and a daemon would start:
 * state directory, shm object, fork, signals, servers. The harness cuts
 * there: lm_region_resolve_name is wrapped (-Wl,--wrap), runs for real,
 * and when it succeeds the run leaves by longjmp with the pseudo-status
 * CUT (1000), "the options were accepted". Nothing of the daemon ever
 * starts, so no process, shm object or file can be left behind.
 *
 * Should lockmgrd.c change so that it does real work before resolving
 * the name, the wrappers of every call with a side effect in it (shm_open,
 * open, fopen, mkdir, unlink, fork, pipe2, signalfd, lm_state_load,
 * lm_server_main) turn that into a check failure naming the call, rather
 * than letting the fuzzer create files or start servers: the cut point
 * then needs moving.
 *
 * Checked: the exit status is 0 (--help, --version), 64 (usage error)
 * or CUT.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shm/region.h"
#include "cli_common.h"
#include "fuzz_common.h"

#define CUT 1000

int lockmgrd_main(int argc, char **argv);

int __real_lm_region_resolve_name(const char *name,
				  char out[LM_REGION_NAME_MAX + 2]);
int __wrap_lm_region_resolve_name(const char *name,
				  char out[LM_REGION_NAME_MAX + 2]);

int __wrap_lm_region_resolve_name(const char *name,
				  char out[LM_REGION_NAME_MAX + 2])
{
	int rc = __real_lm_region_resolve_name(name, out);
	if (rc == 0 && fz_cli_active)
		fz_cli_leave(CUT);
	return rc;
}

/* Side effects past the cut point: each a check failure while lockmgrd
 * runs, else the real call. */
#define TRAP(ret, fn, params, args)                                       \
	ret __real_##fn params;                                           \
	ret __wrap_##fn params;                                           \
	ret __wrap_##fn params                                            \
	{                                                                 \
		FZ_CHECK(!fz_cli_active, "lockmgrd called " #fn           \
			 "() before the harness's cut point "             \
			 "(fuzz/fuzz_cli_lockmgrd.c): move the cut");     \
		return __real_##fn args;                                  \
	}

TRAP(int, shm_open, (const char *n, int f, mode_t m), (n, f, m))
TRAP(int, mkdir, (const char *p, mode_t m), (p, m))
TRAP(int, unlink, (const char *p), (p))
TRAP(FILE *, fopen, (const char *p, const char *m), (p, m))
TRAP(pid_t, fork, (void), ())
TRAP(int, pipe2, (int fds[2], int f), (fds, f))
TRAP(int, lm_server_main, (unsigned i, const char *r, const char *d),
     (i, r, d))
TRAP(int, lm_state_load,
     (const char *d, unsigned s, uint64_t *r, char *e, size_t l),
     (d, s, r, e, l))

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
	FZ_CHECK(!fz_cli_active, "lockmgrd called open(%s) before the "
		 "harness's cut point: move the cut", path);
	mode_t mode = 0;
	va_list ap;
	va_start(ap, flags);
	mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	return __real_open(path, flags, mode);
}

int __real_signalfd(int fd, const void *mask, int flags);
int __wrap_signalfd(int fd, const void *mask, int flags);
int __wrap_signalfd(int fd, const void *mask, int flags)
{
	FZ_CHECK(!fz_cli_active, "lockmgrd called signalfd() before the "
		 "harness's cut point: move the cut");
	return __real_signalfd(fd, mask, flags);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_cli_init();
	char name[128];
	fz_shm_name(name, sizeof(name), "d");
	setenv("LOCKMGR_REGION", name, 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int st = fz_run_cli(lockmgrd_main, "lockmgrd", data, size);
	FZ_CHECK(st == 0 || st == 64 || st == CUT,
		 "lockmgrd's option parsing ended with %d", st);
	return 0;
}
