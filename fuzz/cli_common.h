/*
 * cli_common.h - running a command's main() in-process, once per input.
 *
 * The command's source is compiled with -Dmain=<prog>_main and linked
 * with -Wl,--wrap=exit, so fz_run_cli can call it like a function: the
 * input is split at NUL bytes into argv[1..] (argv[0] is the program
 * name), getopt's state is reset, stdout and stderr point to /dev/null
 * while it runs, and an exit() from inside comes back here by longjmp
 * with its status. Everything stays in one process, so libFuzzer sees
 * the coverage of each run (coverage of a forked child would be lost).
 */
#ifndef LOCKMGR_FUZZ_CLI_COMMON_H
#define LOCKMGR_FUZZ_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most arguments passed; the rest of the input is ignored. */
#define FZ_MAX_ARGS 48

/* Set while the command runs: wrappers refuse side effects only then
 * (libFuzzer itself calls exit, open, fopen...). */
extern volatile bool fz_cli_active;

/* Call main_fn on the input as argv; returns the exit status (from a
 * return or an exit()). */
int fz_run_cli(int (*main_fn)(int, char **), const char *argv0,
	       const uint8_t *data, size_t size);

/* Leave the command now with `status`, as if it had exited (for a cut
 * point: a wrapper that stops the command where it would start doing
 * real work). Only while fz_cli_active. */
_Noreturn void fz_cli_leave(int status);

/* Redirect stdin to /dev/null (a command reading data from stdin must
 * see end of file, not wait for a terminal) and open the /dev/null
 * stream for stdout and stderr. Call from LLVMFuzzerInitialize. */
void fz_cli_init(void);

#endif
