/*
 * prim_host.c - the host's own locks, the peers lockmgr is measured
 * against. Each is used the way a careful program would use it, with
 * nothing tuned down: a robust mutex repairs EOWNERDEAD, the SysV
 * semaphore asks for SEM_UNDO so a dead holder's count is given back,
 * the file locks take one open file description per process.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "primitives.h"

/* One lock per cache line, for every shared-memory peer alike, so that
 * neighbouring locks in the many-locks run never share a line. */
#define SLOT 64u

static void ts_of(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

/* ---- timed waits for calls that have no timeout of their own -------
 *
 * flock(2) and F_OFD_SETLKW block without a deadline. The crash
 * scenario needs one (a peer that never recovers must not hang the
 * run), so a one-shot ITIMER_REAL interrupts the call: the handler is
 * installed without SA_RESTART, the call fails with EINTR, and the
 * caller decides whether the deadline has passed. Only the waiters of
 * the crash scenario ever arm it; the measured paths never do.
 */
static void on_alarm(int sig)
{
	(void)sig;
}

static void alarm_arm(int64_t deadline_ns)
{
	static bool installed;
	if (!installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		installed = true;
	}
	int64_t left = deadline_ns - bench_now_ns();
	if (left < 1000)
		left = 1000;
	struct itimerval it = {
		.it_value = {.tv_sec = left / 1000000000,
			     .tv_usec = (left % 1000000000) / 1000},
	};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void alarm_disarm(void)
{
	struct itimerval it;
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- locks in one shared array, a slot each ------------------------
 *
 * The robust mutexes, the rwlocks and the futex words live in one
 * MAP_SHARED array the parent makes before it forks: the workers
 * inherit it, so they have nothing to attach or detach, and it goes as
 * a whole, the locks in it with it.
 */
struct slots {
	void *map;
	size_t size;
};

static int slots_init(struct prim *p, uint32_t nlocks)
{
	struct slots *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->size = (size_t)nlocks * SLOT;
	s->map = bench_shared_alloc(s->size);
	p->state = s;
	return 0;
}

static void *slot_at(struct prim *p, uint32_t i)
{
	struct slots *s = p->state;
	return (char *)s->map + (size_t)i * SLOT;
}

static int slots_attach(struct prim *p)
{
	(void)p;
	return 0;
}

static void slots_detach(struct prim *p)
{
	(void)p;
}

static void slots_destroy(struct prim *p)
{
	struct slots *s = p->state;
	if (s == NULL)
		return;
	bench_shared_free(s->map, s->size);
	free(s);
	p->state = NULL;
}

/* ---- robust process-shared pthread mutex --------------------------- */

static pthread_mutex_t *robust_at(struct prim *p, uint32_t i)
{
	return slot_at(p, i);
}

static int robust_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	(void)tag;
	_Static_assert(sizeof(pthread_mutex_t) <= SLOT, "mutex slot");
	int rc = slots_init(p, nlocks);
	if (rc != 0)
		return rc;
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	for (uint32_t i = 0; i < nlocks; i++) {
		rc = pthread_mutex_init(robust_at(p, i), &a);
		if (rc != 0) {
			pthread_mutexattr_destroy(&a);
			return -rc;
		}
	}
	pthread_mutexattr_destroy(&a);
	return 0;
}

static int robust_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	pthread_mutex_t *m = robust_at(p, i);
	int rc;
	if (deadline_ns == INT64_MAX) {
		rc = pthread_mutex_lock(m);
	} else {
		struct timespec ts;
		ts_of(deadline_ns, &ts);
		rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
	}
	if (rc == EOWNERDEAD) {
		/* The holder died inside its critical section: what the
		 * mutex guards is ours to repair (here: nothing), then the
		 * mutex is usable again. */
		p->recovered = true;
		rc = pthread_mutex_consistent(m);
	}
	return -rc;
}

static int robust_release(struct prim *p, uint32_t i)
{
	return -pthread_mutex_unlock(robust_at(p, i));
}

const struct prim_ops prim_robust_ops = {
	.key = "robust-mutex",
	.label = "robust mutex",
	.max_locks = 1u << 21,
	.init = robust_init,
	.attach = slots_attach,
	.acquire = robust_acquire,
	.release = robust_release,
	.detach = slots_detach,
	/* No pthread_mutex_destroy: a mutex whose holder was killed is
	 * still "locked", and destroying a locked mutex is undefined. The
	 * mapping goes as a whole. */
	.destroy = slots_destroy,
};

/* ---- process-shared pthread rwlock (read-write scenario only) ------
 *
 * glibc's default kind (PTHREAD_RWLOCK_PREFER_READER_NP), as a program
 * that only asks for PTHREAD_PROCESS_SHARED gets it. Not robust: a
 * holder that dies leaves it taken for ever, which is why it takes part
 * in the read-write scenario only (and why that is fine there).
 */
static pthread_rwlock_t *rwlock_at(struct prim *p, uint32_t i)
{
	return slot_at(p, i);
}

static int rwlock_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	(void)tag;
	_Static_assert(sizeof(pthread_rwlock_t) <= SLOT, "rwlock slot");
	int rc = slots_init(p, nlocks);
	if (rc != 0)
		return rc;
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	for (uint32_t i = 0; i < nlocks; i++) {
		rc = pthread_rwlock_init(rwlock_at(p, i), &a);
		if (rc != 0) {
			pthread_rwlockattr_destroy(&a);
			return -rc;
		}
	}
	pthread_rwlockattr_destroy(&a);
	return 0;
}

static int rwlock_acquire_mode(struct prim *p, uint32_t i, bool shared,
			       int64_t deadline_ns)
{
	pthread_rwlock_t *l = rwlock_at(p, i);
	if (deadline_ns == INT64_MAX)
		return -(shared ? pthread_rwlock_rdlock(l)
				: pthread_rwlock_wrlock(l));
	struct timespec ts;
	ts_of(deadline_ns, &ts);
	return -(shared ? pthread_rwlock_clockrdlock(l, CLOCK_MONOTONIC, &ts)
			: pthread_rwlock_clockwrlock(l, CLOCK_MONOTONIC, &ts));
}

static int rwlock_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	return rwlock_acquire_mode(p, i, false, deadline_ns);
}

static int rwlock_release(struct prim *p, uint32_t i)
{
	return -pthread_rwlock_unlock(rwlock_at(p, i));
}

const struct prim_ops prim_rwlock_ops = {
	.key = "rwlock",
	.label = "pthread rwlock",
	.max_locks = 1u << 21,
	.init = rwlock_init,
	.attach = slots_attach,
	.acquire = rwlock_acquire,
	.release = rwlock_release,
	.acquire_mode = rwlock_acquire_mode,
	.detach = slots_detach,
	.destroy = slots_destroy,
};

/* ---- files: flock(2) and OFD locks ---------------------------------
 *
 * The parent creates unlinked temporary files (nothing is left behind
 * however the run ends); a worker opens /proc/self/fd/N of the
 * descriptor it inherited, which gives it an open file description of
 * its own, hence a lock of its own.
 */
struct files {
	int nfiles;
	int *parent_fd;  /* the parent's, inherited */
	int *fd;         /* the worker's own, after attach */
};

static int tmpfile_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/lockbench-%d-XXXXXX",
		 dir != NULL && *dir != '\0' ? dir : "/tmp", (int)getpid());
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int files_init(struct prim *p, int nfiles)
{
	struct files *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	p->state = s;
	s->parent_fd = calloc((size_t)nfiles, sizeof(int));
	s->fd = calloc((size_t)nfiles, sizeof(int));
	if (s->parent_fd == NULL || s->fd == NULL)
		return -ENOMEM;
	for (int i = 0; i < nfiles; i++) {
		s->parent_fd[i] = -1;
		s->fd[i] = -1;
	}
	s->nfiles = nfiles;
	for (int i = 0; i < nfiles; i++) {
		s->parent_fd[i] = tmpfile_fd();
		if (s->parent_fd[i] < 0)
			return s->parent_fd[i];
	}
	return 0;
}

static int files_attach(struct prim *p)
{
	struct files *s = p->state;
	for (int i = 0; i < s->nfiles; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d",
			 s->parent_fd[i]);
		s->fd[i] = open(path, O_RDWR | O_CLOEXEC);
		if (s->fd[i] < 0)
			return -errno;
	}
	return 0;
}

static void files_detach(struct prim *p)
{
	struct files *s = p->state;
	for (int i = 0; i < s->nfiles; i++)
		if (s->fd[i] >= 0) {
			close(s->fd[i]);
			s->fd[i] = -1;
		}
}

static void files_destroy(struct prim *p)
{
	struct files *s = p->state;
	if (s == NULL)
		return;
	if (s->parent_fd != NULL)
		for (int i = 0; i < s->nfiles; i++)
			if (s->parent_fd[i] >= 0)
				close(s->parent_fd[i]);
	free(s->parent_fd);
	free(s->fd);
	free(s);
	p->state = NULL;
}

/* Each process holds 2 descriptors per lock file (inherited + own). */
static bool fds_suffice(uint32_t nlocks)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	return rl.rlim_cur == RLIM_INFINITY ||
	       (uint64_t)nlocks * 2 + 64 <= (uint64_t)rl.rlim_cur;
}

static int flock_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	(void)tag;
	if (!fds_suffice(nlocks))
		return PRIM_ELIMIT;
	return files_init(p, (int)nlocks);
}

/* A blocking file-lock call, made interruptible at deadline_ns. */
static int file_lock_call(int (*call)(int fd, int arg), int fd, int arg,
			  int64_t deadline_ns)
{
	for (;;) {
		if (deadline_ns != INT64_MAX)
			alarm_arm(deadline_ns);
		int rc = call(fd, arg);
		int err = errno;
		if (deadline_ns != INT64_MAX)
			alarm_disarm();
		if (rc == 0)
			return 0;
		if (err != EINTR)
			return -err;
		if (deadline_ns != INT64_MAX && bench_now_ns() >= deadline_ns)
			return -ETIMEDOUT;
	}
}

static int do_flock(int fd, int op)
{
	return flock(fd, op);
}

static int flock_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	struct files *s = p->state;
	return file_lock_call(do_flock, s->fd[i], LOCK_EX, deadline_ns);
}

/* Read-write scenario: LOCK_SH for a reader, LOCK_EX for a writer. */
static int flock_acquire_mode(struct prim *p, uint32_t i, bool shared,
			      int64_t deadline_ns)
{
	struct files *s = p->state;
	return file_lock_call(do_flock, s->fd[i], shared ? LOCK_SH : LOCK_EX,
			      deadline_ns);
}

static int flock_release(struct prim *p, uint32_t i)
{
	struct files *s = p->state;
	return flock(s->fd[i], LOCK_UN) == 0 ? 0 : -errno;
}

const struct prim_ops prim_flock_ops = {
	.key = "flock",
	.label = "flock",
	.max_locks = 4096,
	.init = flock_init,
	.attach = files_attach,
	.acquire = flock_acquire,
	.release = flock_release,
	.acquire_mode = flock_acquire_mode,
	.detach = files_detach,
	.destroy = files_destroy,
};

/* OFD locks: one file, lock i is the byte range [i, i+1). The lock
 * index travels in the static below because fcntl's calling shape does
 * not fit file_lock_call's (fd, arg); a worker is single-threaded. */
static uint32_t ofd_byte;

static int do_ofd(int fd, int type)
{
	struct flock fl = {
		.l_type = (short)type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)ofd_byte,
		.l_len = 1,
	};
	return fcntl(fd, type == F_UNLCK ? F_OFD_SETLK : F_OFD_SETLKW, &fl);
}

static int ofd_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	(void)nlocks;
	(void)tag;
	return files_init(p, 1);
}

static int ofd_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	struct files *s = p->state;
	ofd_byte = i;
	return file_lock_call(do_ofd, s->fd[0], F_WRLCK, deadline_ns);
}

static int ofd_release(struct prim *p, uint32_t i)
{
	struct files *s = p->state;
	ofd_byte = i;
	return do_ofd(s->fd[0], F_UNLCK) == 0 ? 0 : -errno;
}

const struct prim_ops prim_ofd_ops = {
	.key = "ofd",
	.label = "OFD lock",
	.max_locks = UINT32_MAX,
	.init = ofd_init,
	.attach = files_attach,
	.acquire = ofd_acquire,
	.release = ofd_release,
	.detach = files_detach,
	.destroy = files_destroy,
};

/* ---- POSIX named semaphore -----------------------------------------
 *
 * Created with value 1 and unlinked at once: the parent's mapping of
 * each semaphore is inherited by the workers, so nothing is left in
 * /dev/shm however the run ends.
 */
struct psem {
	uint32_t n;
	sem_t **sem;
};

static int psem_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	struct psem *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	p->state = s;
	s->sem = calloc(nlocks, sizeof(*s->sem));
	if (s->sem == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < nlocks; i++) {
		char name[96];
		snprintf(name, sizeof(name), "/lockbench-%d-%s-%u",
			 (int)getpid(), tag, i);
		sem_t *sem = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
		if (sem == SEM_FAILED)
			return -errno;
		sem_unlink(name);
		s->sem[i] = sem;
		s->n = i + 1;
	}
	return 0;
}

static int psem_attach(struct prim *p)
{
	(void)p;
	return 0;
}

static int psem_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	struct psem *s = p->state;
	for (;;) {
		int rc;
		if (deadline_ns == INT64_MAX) {
			rc = sem_wait(s->sem[i]);
		} else {
			struct timespec ts;
			ts_of(deadline_ns, &ts);
			rc = sem_clockwait(s->sem[i], CLOCK_MONOTONIC, &ts);
		}
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static int psem_release(struct prim *p, uint32_t i)
{
	struct psem *s = p->state;
	return sem_post(s->sem[i]) == 0 ? 0 : -errno;
}

static void psem_detach(struct prim *p)
{
	(void)p;
}

static void psem_destroy(struct prim *p)
{
	struct psem *s = p->state;
	if (s == NULL)
		return;
	for (uint32_t i = 0; i < s->n; i++)
		sem_close(s->sem[i]);
	free(s->sem);
	free(s);
	p->state = NULL;
}

const struct prim_ops prim_posix_sem_ops = {
	.key = "posix-sem",
	.label = "POSIX sem",
	.max_locks = 4096,
	.init = psem_init,
	.attach = psem_attach,
	.acquire = psem_acquire,
	.release = psem_release,
	.detach = psem_detach,
	.destroy = psem_destroy,
};

/* ---- System V semaphore with SEM_UNDO ------------------------------ */

/* Sets not yet removed, so that an interrupted run removes them. */
#define SYSV_TRACK 16
static volatile sig_atomic_t sysv_live[SYSV_TRACK];

struct sysv {
	int id;
};

static int sysv_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	(void)tag;
	/* One set holds at most SEMMSL semaphores (32000 by default). */
	if (nlocks > 32000)
		return PRIM_ELIMIT;
	struct sysv *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	p->state = s;
	s->id = semget(IPC_PRIVATE, (int)nlocks, IPC_CREAT | 0600);
	if (s->id < 0)
		return -errno;
	for (int k = 0; k < SYSV_TRACK; k++)
		if (sysv_live[k] == 0) {
			sysv_live[k] = s->id + 1;
			break;
		}
	unsigned short *one = malloc(nlocks * sizeof(*one));
	if (one == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < nlocks; i++)
		one[i] = 1;
	union {
		int val;
		struct semid_ds *buf;
		unsigned short *array;
	} arg = {.array = one};
	int rc = semctl(s->id, 0, SETALL, arg);
	free(one);
	return rc == 0 ? 0 : -errno;
}

static int sysv_attach(struct prim *p)
{
	(void)p;
	return 0;
}

static int sysv_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	struct sysv *s = p->state;
	struct sembuf op = {.sem_num = (unsigned short)i, .sem_op = -1,
			    .sem_flg = SEM_UNDO};
	for (;;) {
		int rc;
		if (deadline_ns == INT64_MAX) {
			rc = semop(s->id, &op, 1);
		} else {
			int64_t left = deadline_ns - bench_now_ns();
			if (left <= 0)
				return -ETIMEDOUT;
			struct timespec ts;
			ts_of(left, &ts);
			rc = semtimedop(s->id, &op, 1, &ts);
		}
		if (rc == 0)
			return 0;
		if (errno == EAGAIN)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int sysv_release(struct prim *p, uint32_t i)
{
	struct sysv *s = p->state;
	struct sembuf op = {.sem_num = (unsigned short)i, .sem_op = 1,
			    .sem_flg = SEM_UNDO};
	return semop(s->id, &op, 1) == 0 ? 0 : -errno;
}

static void sysv_detach(struct prim *p)
{
	(void)p;
}

static void sysv_destroy(struct prim *p)
{
	struct sysv *s = p->state;
	if (s == NULL)
		return;
	if (s->id >= 0) {
		semctl(s->id, 0, IPC_RMID);
		for (int k = 0; k < SYSV_TRACK; k++)
			if (sysv_live[k] == s->id + 1)
				sysv_live[k] = 0;
	}
	free(s);
	p->state = NULL;
}

void prim_host_cleanup_signal_safe(void)
{
	for (int k = 0; k < SYSV_TRACK; k++)
		if (sysv_live[k] != 0)
			semctl((int)sysv_live[k] - 1, 0, IPC_RMID);
}

const struct prim_ops prim_sysv_sem_ops = {
	.key = "sysv-sem",
	.label = "SysV sem",
	.max_locks = 32000,
	.init = sysv_init,
	.attach = sysv_attach,
	.acquire = sysv_acquire,
	.release = sysv_release,
	.detach = sysv_detach,
	.destroy = sysv_destroy,
};

/* ---- bare futex mutex ----------------------------------------------
 *
 * Drepper, "Futexes Are Tricky", mutex #3: 0 unlocked, 1 locked, 2
 * locked with (possible) waiters. The floor every sleeping lock is
 * measured against: one CAS to take, one atomic decrement to release,
 * a system call only when someone sleeps. It is not robust: a holder
 * that dies leaves the word at 1 or 2 for ever, which the crash
 * scenario reports as "never".
 */
static _Atomic uint32_t *futex_at(struct prim *p, uint32_t i)
{
	return slot_at(p, i);
}

static int futex_init(struct prim *p, uint32_t nlocks, const char *tag)
{
	(void)tag;
	return slots_init(p, nlocks);
}

static int futex_acquire(struct prim *p, uint32_t i, int64_t deadline_ns)
{
	_Atomic uint32_t *w = futex_at(p, i);
	uint32_t c = 0;
	if (atomic_compare_exchange_strong_explicit(w, &c, 1,
						    memory_order_acquire,
						    memory_order_relaxed))
		return 0;
	if (c != 2)
		c = atomic_exchange_explicit(w, 2, memory_order_acquire);
	while (c != 0) {
		int rc = bench_futex_wait(w, 2, deadline_ns);
		if (rc == -ETIMEDOUT)
			return -ETIMEDOUT;
		c = atomic_exchange_explicit(w, 2, memory_order_acquire);
	}
	return 0;
}

static int futex_release(struct prim *p, uint32_t i)
{
	_Atomic uint32_t *w = futex_at(p, i);
	/* 1 -> 0: nobody waits. 2 -> 1 -> 0 plus a wake: someone may. */
	if (atomic_fetch_sub_explicit(w, 1, memory_order_release) != 1) {
		atomic_store_explicit(w, 0, memory_order_release);
		bench_futex_wake(w, 1);
	}
	return 0;
}

const struct prim_ops prim_futex_ops = {
	.key = "futex",
	.label = "bare futex",
	.max_locks = 1u << 21,
	.init = futex_init,
	.attach = slots_attach,
	.acquire = futex_acquire,
	.release = futex_release,
	.detach = slots_detach,
	.destroy = slots_destroy,
};
