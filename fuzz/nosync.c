/*
 * nosync.c - fsync and fdatasync as no-ops, for the file-format targets
 * (linked with -Wl,--wrap=fsync,--wrap=fdatasync).
 *
 * The targets test how a file is parsed and rewritten, not whether it
 * reaches the disk; a real sync per input (the fenced store's sync flag
 * is one mutated bit away) would cut the executions per second by two
 * orders of magnitude on a disk-backed $TMPDIR. The descriptor is still
 * checked, so a sync on a bad one fails as it would.
 */
#include <errno.h>
#include <fcntl.h>

int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);

static int fd_ok(int fd)
{
	if (fcntl(fd, F_GETFD) < 0) {
		errno = EBADF;
		return -1;
	}
	return 0;
}

int __wrap_fsync(int fd)
{
	return fd_ok(fd);
}

int __wrap_fdatasync(int fd)
{
	return fd_ok(fd);
}
