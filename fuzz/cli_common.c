/*
 * cli_common.c - see cli_common.h.
 */
#include "cli_common.h"

#include <fcntl.h>
#include <getopt.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

volatile bool fz_cli_active;
static jmp_buf cli_jmp;
static volatile int cli_status;
static FILE *devnull;

_Noreturn void __real_exit(int status);
_Noreturn void __wrap_exit(int status);

_Noreturn void fz_cli_leave(int status)
{
	FZ_CHECK(fz_cli_active, "fz_cli_leave outside a command");
	cli_status = status;
	longjmp(cli_jmp, 1);
}

_Noreturn void __wrap_exit(int status)
{
	if (fz_cli_active)
		fz_cli_leave(status);
	__real_exit(status);
}

void fz_cli_init(void)
{
	/* The command-line seeds are hand-made (fuzz/seeds/): none to make. */
	if (fz_seed_dir() != NULL)
		exit(0);
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	FZ_CHECK(fd >= 0, "open /dev/null");
	FZ_CHECK(dup2(fd, STDIN_FILENO) == STDIN_FILENO, "dup2 stdin");
	close(fd);
	devnull = fopen("/dev/null", "we");
	FZ_CHECK(devnull != NULL, "fopen /dev/null");
}

int fz_run_cli(int (*main_fn)(int, char **), const char *argv0,
	       const uint8_t *data, size_t size)
{
	/* Each argument in its own heap block of exactly its length + 1,
	 * so that AddressSanitizer catches a read past its NUL. */
	char *args[FZ_MAX_ARGS + 2];
	char *argv[FZ_MAX_ARGS + 2];
	int argc = 0;
	args[argc++] = strdup(argv0);
	size_t start = 0;
	/* No input: no arguments at all. */
	for (size_t i = 0; size > 0 && i <= size && argc <= FZ_MAX_ARGS; i++) {
		if (i < size && data[i] != '\0')
			continue;
		if (i == size && start == size && size != 0)
			break; /* a trailing NUL ends the last argument */
		size_t len = i - start;
		char *a = malloc(len + 1);
		FZ_CHECK(a != NULL, "malloc");
		memcpy(a, data + start, len);
		a[len] = '\0';
		args[argc++] = a;
		start = i + 1;
	}
	args[argc] = NULL;
	/* The command may permute argv (getopt does): keep our own list
	 * of what to free. */
	memcpy(argv, args, sizeof(char *) * (size_t)(argc + 1));

	/* GNU getopt: optind 0 re-initialises all its internal state. */
	optind = 0;
	opterr = 1;
	optarg = NULL;
	optopt = '?';

	FILE *out = stdout, *err = stderr;
	stdout = devnull;
	stderr = devnull;
	int status;
	fz_cli_active = true;
	if (setjmp(cli_jmp) == 0)
		status = main_fn(argc, argv);
	else
		status = cli_status;
	fz_cli_active = false;
	fflush(devnull);
	clearerr(devnull);
	stdout = out;
	stderr = err;

	for (int i = 0; i < argc; i++)
		free(args[i]);
	return status;
}
