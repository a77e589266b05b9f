/*
 * servers.c - starting, watching, restarting and stopping the three
 * lock server processes.
 *
 * Each server is this binary re-executed with --server-role N, so that
 * it starts from a clean process image (the supervisor has threads).
 * The supervisor watches it through a pidfd, which also works for a
 * server it adopted from a supervisor that died (not its child).
 *
 * Restart rule (docs/protocol.md, "Restarts"): a new epoch is published,
 * with the state RECOVERING, *before* the process is forked; clients'
 * grants carry the epoch they saw, so anything granted on the table
 * before the restart counts for nobody. The new server process then
 * works out how long it must stay out: until the leases its earlier
 * lives granted have ended (they are in its table, which survives it),
 * usually at once; a server that lost its table bounds them by its
 * peers' leases instead.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include "../shm/clock.h"
#include "../shm/futex.h"
#include "../shm/modes.h"
#include "../shm/session.h"
#include "../shm/test_hook.h"
#include "log.h"
#include "supervisor.h"

static void watch_server(struct supervisor *sv, unsigned i, pid_t pid,
			 int pidfd, bool child)
{
	struct tracked_server *t = &sv->servers[i];
	t->pid = pid;
	t->pidfd = pidfd;
	t->child = child;
	t->restart_at_ms = 0;
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = EV_DATA(EV_SERVER, 0, i)};
	if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, pidfd, &ev) != 0)
		lm_die("epoll_ctl(server pidfd)");
}

/*
 * Simulated memory loss (lockctl server kill N --wipe): the table's
 * contents, token high-water marks included, are gone. Runs after the
 * new epoch is published, so a client still writing at the old epoch can
 * only leave a stray higher token, never make a grant count.
 */
static void wipe_table(struct lm_region *r, unsigned i)
{
	uint32_t n = lm_names_in_use(r);
	for (uint32_t lock = 0; lock < n; lock++) {
		struct lm_slot *slot = lm_slot_of(r, i, lock);
		atomic_store(&slot->owner, LM_OWNER_FREE);
		atomic_store(&slot->lease, 0);
		atomic_store(&slot->token, 0);
		/* Counts go, the generation moves on: a member's late
		 * leave must not match a later group (layout.h). */
		atomic_store(&slot->shared,
			     lm_group_reset(atomic_load(&slot->shared)));
	}
	atomic_store(&r->servers[i]->token_floor, 0);
}

int sup_start_server(struct supervisor *sv, unsigned i, bool restart)
{
	struct lm_server *srv = sv->region.servers[i];
	uint64_t st = atomic_load(&srv->state);
	uint64_t epoch = LM_SRV_EPOCH(st) + 1;
	bool wipe = atomic_fetch_and(&srv->flags, ~LM_SRVF_WIPE_NEXT) &
		    LM_SRVF_WIPE_NEXT;
	/* Unknown until the new process has read its table. */
	atomic_store(&srv->quarantine_until_ms, INT64_MAX);
	atomic_store(&srv->quarantine_floor_ms, sv->prev_leases_until_ms);
	atomic_store(&srv->recovery, LM_RECOV_LOOKING);
	atomic_store(&srv->restarted_ms, lm_now_ms());
	atomic_store(&srv->heartbeat_ms, lm_now_ms());
	if (wipe)
		atomic_fetch_or(&srv->flags, LM_SRVF_TOKENS_LOST);
	/* Publish the new epoch before the process exists: from here on,
	 * every grant of the old life counts for nobody. */
	atomic_store(&srv->state, LM_SRV_WORD(epoch, LM_SRV_RECOVERING));
	if (wipe)
		wipe_table(&sv->region, i);

	char idx[16];
	snprintf(idx, sizeof(idx), "%u", i);
	pid_t pid = fork();
	if (pid < 0) {
		/* The table is RECOVERING with no process: try again later,
		 * or it would stay out of the quorum for good. */
		lm_log_error("supervisor", "fork of server %u failed: %s; "
			     "retrying in 1 s", i, strerror(errno));
		sv->servers[i].restart_at_ms = lm_now_ms() + 1000;
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *argv[10] = {"lockmgrd", "--server-role", idx, "--region",
				  sv->name};
		int argc = 5;
		if (sv->opt.state_dir != NULL) {
			argv[argc++] = "--state-dir";
			argv[argc++] = (char *)sv->opt.state_dir;
		}
		if (sv->opt.quiet)
			argv[argc++] = "--quiet";
		argv[argc] = NULL;
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	LM_HOOK("supervisor.server_forked");
	int pidfd = pidfd_open(pid, 0);
	if (pidfd < 0)
		lm_die("pidfd_open(server)");
	atomic_store(&srv->pid, pid);
	atomic_store(&srv->start_time, lm_proc_start_time(pid));
	if (restart)
		atomic_fetch_add(&srv->restarts, 1);
	watch_server(sv, i, pid, pidfd, true);
	lm_log("supervisor", "started server %u (pid %d, epoch %llu%s)", i,
	       (int)pid, (unsigned long long)epoch,
	       wipe ? ", its table lost" : "");
	return 0;
}

void sup_adopt_or_start_servers(struct supervisor *sv)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct lm_server *srv = sv->region.servers[i];
		sv->servers[i].pidfd = -1;
		pid_t pid = atomic_load(&srv->pid);
		uint64_t st = atomic_load(&srv->state);
		if (!sv->fresh_region && pid > 0 &&
		    LM_SRV_STATE(st) != LM_SRV_DOWN) {
			int pidfd = pidfd_open(pid, 0);
			if (pidfd >= 0 && lm_proc_start_time(pid) ==
						  atomic_load(&srv->start_time)) {
				watch_server(sv, i, pid, pidfd, false);
				lm_log("supervisor",
				       "adopted server %u (pid %d, epoch %llu)",
				       i, (int)pid,
				       (unsigned long long)LM_SRV_EPOCH(st));
				continue;
			}
			if (pidfd >= 0)
				close(pidfd);
		}
		/* A server that died while no supervisor watched restarts
		 * like any other: it stays out while leases it granted run. */
		sup_start_server(sv, i, !sv->fresh_region);
	}
}

void sup_server_died(struct supervisor *sv, unsigned i)
{
	struct tracked_server *t = &sv->servers[i];
	struct lm_server *srv = sv->region.servers[i];
	int status = 0;
	char how[64] = "exited";
	if (t->child && waitpid(t->pid, &status, WNOHANG) == t->pid) {
		if (WIFSIGNALED(status))
			snprintf(how, sizeof(how), "killed by signal %d",
				 WTERMSIG(status));
		else
			snprintf(how, sizeof(how), "exited with status %d",
				 WEXITSTATUS(status));
	}
	epoll_ctl(sv->epfd, EPOLL_CTL_DEL, t->pidfd, NULL);
	close(t->pidfd);
	t->pidfd = -1;
	/* Out of the quorum at once; the epoch stays, so the restart's
	 * bump is what invalidates the old grants. */
	uint64_t st = atomic_load(&srv->state);
	while (LM_SRV_STATE(st) != LM_SRV_DOWN &&
	       !atomic_compare_exchange_weak(
		       &srv->state, &st,
		       LM_SRV_WORD(LM_SRV_EPOCH(st), LM_SRV_DOWN)))
		;
	atomic_store(&srv->pid, 0);
	int64_t delay = atomic_load(&sv->region.hdr->restart_delay_ms);
	if (atomic_load(&sv->stopping)) {
		return;
	} else if (delay >= 0) {
		t->restart_at_ms = lm_now_ms() + delay;
		lm_log("supervisor", "server %u (pid %d) %s; restarting in "
		       "%lld ms", i, (int)t->pid, how, (long long)delay);
	} else {
		t->restart_at_ms = 0;
		lm_log("supervisor", "server %u (pid %d) %s; kept down "
		       "(restart delay is manual)", i, (int)t->pid, how);
	}
	t->pid = 0;
}

int64_t sup_next_due_ms(struct supervisor *sv)
{
	int64_t due = INT64_MAX;
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (sv->servers[i].restart_at_ms > 0 &&
		    sv->servers[i].restart_at_ms < due)
			due = sv->servers[i].restart_at_ms;
	return due;
}

void sup_take_start_requests(struct supervisor *sv)
{
	uint32_t req = atomic_exchange(&sv->region.hdr->start_requests, 0);
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		if (!(req & (1u << i)))
			continue;
		if (sv->servers[i].pidfd >= 0) {
			lm_log("supervisor", "start of server %u requested, "
			       "but it is running", i);
			continue;
		}
		sv->servers[i].restart_at_ms = 0;
		sup_start_server(sv, i, true);
	}
}

void sup_run_due_restarts(struct supervisor *sv, int64_t now_ms)
{
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct tracked_server *t = &sv->servers[i];
		if (t->restart_at_ms > 0 && t->restart_at_ms <= now_ms &&
		    t->pidfd < 0) {
			t->restart_at_ms = 0;
			sup_start_server(sv, i, true);
		}
	}
}

static bool wait_pidfd(int pidfd, int timeout_ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	return poll(&p, 1, timeout_ms) == 1;
}

void sup_stop_servers(struct supervisor *sv)
{
	/* A paused (SIGSTOP) server cannot act on SIGTERM: continue it
	 * first. Not after: a SIGCONT then could resume a server that its
	 * own exit path stopped on purpose (LeakSanitizer's check does). */
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		if (sv->servers[i].pidfd >= 0) {
			pidfd_send_signal(sv->servers[i].pidfd, SIGCONT, NULL,
					  0);
			pidfd_send_signal(sv->servers[i].pidfd, SIGTERM, NULL,
					  0);
		}
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct tracked_server *t = &sv->servers[i];
		if (t->pidfd < 0)
			continue;
		if (!wait_pidfd(t->pidfd, 2000)) {
			lm_log_error("supervisor", "server %u did not stop; "
				     "killing", i);
			pidfd_send_signal(t->pidfd, SIGKILL, NULL, 0);
			wait_pidfd(t->pidfd, 2000);
		}
		if (t->child)
			waitpid(t->pid, NULL, 0);
		close(t->pidfd);
		t->pidfd = -1;
		uint64_t st = atomic_load(&sv->region.servers[i]->state);
		atomic_store(&sv->region.servers[i]->state,
			     LM_SRV_WORD(LM_SRV_EPOCH(st), LM_SRV_DOWN));
		atomic_store(&sv->region.servers[i]->pid, 0);
	}
}
