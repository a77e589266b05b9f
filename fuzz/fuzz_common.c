/*
 * fuzz_common.c - temporary files, shm names and checks for the targets.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fz_check_failed(const char *file, int line, const char *cond)
{
	fflush(stdout);
	fprintf(stderr, "\n==%d== FUZZ CHECK FAILED at %s:%d: %s\n  ",
		(int)getpid(), file, line, cond);
}

/*
 * Sanitizer defaults, so that a target run by hand behaves as under
 * fuzz/run.sh: undefined behaviour is a finding (libFuzzer saves the
 * input), not a line in the log. $UBSAN_OPTIONS still adds to these.
 */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

bool fz_known(const char *id)
{
	const char *list = getenv("LMFUZZ_KNOWN");
	size_t n = strlen(id);
	for (const char *p = list; p != NULL && *p != '\0';) {
		p += strspn(p, ", \t\n");
		size_t k = strcspn(p, ", \t\n");
		if (k == n && memcmp(p, id, n) == 0)
			return true;
		p += k;
	}
	return false;
}

static char tmpdir[PATH_MAX];
static pid_t tmpdir_owner;

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0; /* best effort: go on with the rest */
}

static void remove_tmpdir(void)
{
	/* A forked child must not remove its parent's directory. */
	if (tmpdir[0] != '\0' && getpid() == tmpdir_owner)
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fz_tmpdir(void)
{
	if (tmpdir[0] != '\0')
		return tmpdir;
	const char *base = getenv("TMPDIR");
	if (base == NULL || *base == '\0')
		base = "/tmp";
	char tmpl[PATH_MAX];
	int n = snprintf(tmpl, sizeof(tmpl), "%s/lmfuzz-%d-XXXXXX", base,
			 (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmpl) || mkdtemp(tmpl) == NULL) {
		fprintf(stderr, "fuzz: cannot make a temporary directory under "
				"%s: %s\n", base, strerror(errno));
		exit(2);
	}
	memcpy(tmpdir, tmpl, sizeof(tmpdir));
	tmpdir_owner = getpid();
	atexit(remove_tmpdir);
	return tmpdir;
}

void fz_empty_dir(const char *dir)
{
	/* nftw visits dir itself last (FTW_DEPTH); keep it. */
	char keep[PATH_MAX];
	snprintf(keep, sizeof(keep), "%s", dir);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mkdir(keep, 0700);
}

void fz_tmp_path(char *path, size_t len, const char *name)
{
	int n = snprintf(path, len, "%s/%s", fz_tmpdir(), name);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "fuzz: temporary path too long\n");
		abort();
	}
}

int fz_write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return close(fd);
}

void *fz_read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max ? max : 1);
	size_t got = 0;
	while (buf != NULL && got < max) {
		ssize_t r = read(fd, buf + got, max - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return buf;
}

void fz_shm_name(char *out, size_t len, const char *tag)
{
	static unsigned long counter;
	const char *prefix = getenv("LMFUZZ_SHM_PREFIX");
	if (prefix == NULL || *prefix == '\0' || strchr(prefix, '/') != NULL)
		prefix = "lmfuzz";
	int n = snprintf(out, len, "/%s-%d-%s%lu", prefix, (int)getpid(), tag,
			 ++counter);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "fuzz: shm name too long\n");
		abort();
	}
}

const char *fz_seed_dir(void)
{
	const char *d = getenv("LMFUZZ_MKSEEDS");
	return d != NULL && *d != '\0' ? d : NULL;
}

void fz_write_seed(const char *dir, const char *name, const void *data,
		   size_t n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (fz_write_file(path, data, n) != 0) {
		fprintf(stderr, "fuzz: cannot write seed %s: %s\n", path,
			strerror(errno));
		exit(2);
	}
}
