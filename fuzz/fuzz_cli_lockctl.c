/*
 * fuzz_cli_lockctl.c - lockctl's command line (client/lockctl*.c).
 *
 * The input is argv (see cli_common.h), run through lockctl's own
 * main() in-process. lockctl talks to a region, so the harness gives it
 * one of its own: a small region made with lm_region_init at start-up,
 * under a private name ($LOCKMGR_REGION points at it), with its three
 * servers marked up (heartbeat in the far future) and one session of
 * the harness's own, and no lock held. It is restored byte for byte
 * before every input, so each run starts from the same state. Every
 * command therefore gets past its parsing into its real work: status
 * renders, server list/skew/isolate/heal change the private region, run
 * acquires, forks and supervises.
 *
 * What keeps that harmless (wrappers, -Wl,--wrap, active only while
 * lockctl runs):
 *   shm_open   only the private region opens; any other name (-r /x)
 *              is ENOENT, so no real lockmgr region is ever touched;
 *              creating one is a check failure (lockctl never creates).
 *   execvp     in lockctl run's child, never executes anything: "missing"
 *              fails with ENOENT, "noexec" with EACCES, anything else
 *              exits at once (status 1 for "false", else 0). The child
 *              is a plain fork of the fuzzer that exits immediately;
 *              lockctl reaps it (checked: no child may be left).
 *   kill       only to the child lockctl forked; a signal to any other
 *              pid (a server's, the supervisor's) is a check failure
 *              (the region's pids are all 0, so none is expected).
 *   sigtimedwait  where top -b waits for its next frame: answers
 *              SIGTERM at once, as if the user stopped it after its
 *              first frame; otherwise every -b input would run until
 *              libFuzzer's timeout. top then ends the way it ends for a
 *              real SIGTERM, freeing what it holds.
 * After each input the harness also restores the signal mask and the
 * environment that lockctl run changes (it blocks the signals it
 * forwards and exports LOCKMGR_LOCK/TOKEN/REGION), and checks that the
 * exit status is one lockctl documents.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../client/lockmgr.h"
#include "../shm/region.h"
#include "../shm/session.h"
#include "cli_common.h"
#include "fuzz_common.h"

int lockctl_main(int argc, char **argv);

int __real_shm_open(const char *name, int oflag, mode_t mode);
int __wrap_shm_open(const char *name, int oflag, mode_t mode);
pid_t __real_fork(void);
pid_t __wrap_fork(void);
int __wrap_execvp(const char *file, char *const argv[]);
int __real_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig);
int __real_sigtimedwait(const sigset_t *set, siginfo_t *info,
			const struct timespec *timeout);
int __wrap_sigtimedwait(const sigset_t *set, siginfo_t *info,
			const struct timespec *timeout);

static char region_name[128];
static struct lm_region region;
static void *pristine;
static sigset_t mask0;
static pid_t child;
static lm_client *own_session;

int __wrap_shm_open(const char *name, int oflag, mode_t mode)
{
	if (!fz_cli_active)
		return __real_shm_open(name, oflag, mode);
	FZ_CHECK(!(oflag & O_CREAT), "lockctl tried to create shm object %s",
		 name);
	if (strcmp(name, region_name) != 0) {
		errno = ENOENT;
		return -1;
	}
	return __real_shm_open(name, oflag, mode);
}

pid_t __wrap_fork(void)
{
	pid_t pid = __real_fork();
	if (fz_cli_active && pid > 0)
		child = pid;
	return pid;
}

int __wrap_execvp(const char *file, char *const argv[])
{
	(void)argv;
	FZ_CHECK(fz_cli_active, "execvp outside lockctl");
	if (strcmp(file, "missing") == 0) {
		errno = ENOENT;
		return -1;
	}
	if (strcmp(file, "noexec") == 0) {
		errno = EACCES;
		return -1;
	}
	/* As if CMD ran and exited at once. */
	_exit(strcmp(file, "false") == 0 ? 1 : 0);
}

int __wrap_kill(pid_t pid, int sig)
{
	if (fz_cli_active && sig != 0)
		FZ_CHECK(pid == child && child > 0,
			 "lockctl sent signal %d to pid %d, not its own child",
			 sig, (int)pid);
	return __real_kill(pid, sig);
}

int __wrap_sigtimedwait(const sigset_t *set, siginfo_t *info,
			const struct timespec *timeout)
{
	if (!fz_cli_active)
		return __real_sigtimedwait(set, info, timeout);
	FZ_CHECK(sigismember(set, SIGTERM) == 1,
		 "lockctl waits in sigtimedwait without SIGTERM in its set");
	if (info != NULL) {
		memset(info, 0, sizeof(*info));
		info->si_signo = SIGTERM;
	}
	return SIGTERM;
}

static void remove_region(void)
{
	if (region_name[0] != '\0')
		shm_unlink(region_name);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_cli_init();
	sigprocmask(SIG_SETMASK, NULL, &mask0);
	fz_shm_name(region_name, sizeof(region_name), "ctl");
	int fd = shm_open(region_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			  0600);
	FZ_CHECK(fd >= 0, "shm_open(%s): %s", region_name, strerror(errno));
	atexit(remove_region);
	struct lm_region_params p = {
		.max_locks = 16, .max_sessions = 4, .max_ttl_ms = 60000,
		.mode = 0600,
	};
	FZ_CHECK(lm_region_init(&region, fd, region_name, &p) == 0,
		 "lm_region_init: %s", strerror(errno));
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		atomic_store(&region.servers[i]->state,
			     LM_SRV_WORD(1, LM_SRV_UP));
		atomic_store(&region.servers[i]->heartbeat_ms,
			     INT64_C(1) << 50);
	}
	/* Isolation rules for status, list, isolate and heal to read and
	 * change: this process refused by server 2 (a majority is still in
	 * reach, so run is unaffected), and a rule whose process is gone
	 * (free for reuse). */
	atomic_store(&region.hdr->isolation[0].start_time,
		     lm_proc_start_time(getpid()));
	atomic_store(&region.hdr->isolation[0].who,
		     LM_ISO_WORD(getpid(), 1u << 2));
	atomic_store(&region.hdr->isolation[1].start_time, 1);
	atomic_store(&region.hdr->isolation[1].who,
		     LM_ISO_WORD(0x7ffffffe, 0x3u));
	atomic_store(&region.hdr->isolation_gen, 2);
	/* A session for status to show (it holds nothing, so no lockctl
	 * run ever has to wait). */
	FZ_CHECK(lm_connect(region_name, &own_session) == 0, "lm_connect");
	pristine = malloc(region.size);
	FZ_CHECK(pristine != NULL, "malloc");
	memcpy(pristine, region.base, region.size);
	setenv("LOCKMGR_REGION", region_name, 1);
	unsetenv("LOCKMGR_LOCK");
	unsetenv("LOCKMGR_TOKEN");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memcpy(region.base, pristine, region.size);
	child = 0;
	int st = fz_run_cli(lockctl_main, "lockctl", data, size);
	FZ_CHECK(st == 0 || st == 1 || st == 64 || st == 69 || st == 70 ||
			 st == 71 || st == 75 || st == 126 || st == 127,
		 "lockctl exited with %d, not a status it documents", st);
	int ws;
	pid_t left = waitpid(-1, &ws, WNOHANG);
	FZ_CHECK(left <= 0, "lockctl left child %d unreaped", (int)left);
	sigprocmask(SIG_SETMASK, &mask0, NULL);
	setenv("LOCKMGR_REGION", region_name, 1);
	unsetenv("LOCKMGR_LOCK");
	unsetenv("LOCKMGR_TOKEN");
	return 0;
}
