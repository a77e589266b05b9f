/*
 * status.c - `lockctl status`: a snapshot of the region, its
 * servers, its sessions and its locks, for people (aligned columns) or
 * programs (--json).
 *
 * status only reads. It attaches the region but registers no session:
 * a monitoring loop must not fill the session table, nor show up in
 * what it reports. The snapshot (snapshot.c, shared with `top`)
 * is not atomic (the region changes while it is read); each lock is
 * judged the way a client would judge it, by one pass over its slots in
 * the three tables.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shm/deadlock.h"
#include "../../shm/session.h"
#include "lockctl.h"
#include "snapshot.h"

static void print_waits_for(const struct ctl_snapshot *s);

static void status_usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl status [--json] [-r NAME]\n"
"Show the region, its three servers, the connected sessions and every\n"
"lock that is held or waited for. Registers no session.\n"
"\n"
"      --json         one JSON object: {\"region\", \"servers\", \"sessions\",\n"
"                     \"locks\"}\n"
CTL_REGION_HELP
"  -h, --help         show this help\n"
"\n"
"Exit status: 0 if a majority of servers is up, 69 if the region is\n"
"missing or incompatible, or no quorum of servers is up (the report is\n"
"still printed), 64 on a usage error.\n");
}

/* ------------------------------------------------------------------ */
/* Human output */

static void pad(int n)
{
	while (n-- > 0)
		putchar(' ');
}

/* The server table of status, and of `lockctl server list`. */
static void print_servers(const struct ctl_snapshot *s)
{
	printf("SERVER  STATE       PID      EPOCH  HEARTBEAT  RESTARTS  "
	       "NOTE\n");
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct ctl_srv_info *si = &s->srv[i];
		char pid[16] = "-", hb[32] = "-";
		if (si->pid > 0)
			snprintf(pid, sizeof(pid), "%d", si->pid);
		if (si->hb_age_ms >= 0)
			snprintf(hb, sizeof(hb), "%lld ms",
				 (long long)si->hb_age_ms);
		char note[256];
		ctl_server_note(si, note, sizeof(note));
		char restarts[24];
		snprintf(restarts, sizeof(restarts), "%llu",
			 (unsigned long long)si->restarts);
		printf("%-6u  %-10s  %-7s  %-5llu  %-9s  ", i, si->state, pid,
		       (unsigned long long)si->epoch, hb);
		if (note[0] != '\0')
			printf("%-8s  %s\n", restarts, note);
		else
			printf("%s\n", restarts);
	}
}

static void print_human(const struct ctl_snapshot *s)
{
	const struct lm_region *r = s->r;
	uint32_t flags = atomic_load(&r->hdr->flags);
	printf("Region      %s: %u locks, %u sessions, max TTL %lld ms\n",
	       r->name, r->max_locks, r->max_sessions,
	       (long long)r->max_ttl_ms);
	printf("            a dead client's locks are %s\n",
	       flags & LM_REGION_RELEASE_ON_EXIT ? "freed at once"
						 : "left to lease expiry");
	if (!strcmp(s->sup_state, "running"))
		printf("Supervisor  pid %d, running\n", s->sup_pid);
	else if (!strcmp(s->sup_state, "dead"))
		printf("Supervisor  DEAD (pid %d is gone): locks still work, "
		       "but dead servers\n            are not restarted nor "
		       "dead clients' locks freed; start lockmgrd\n            "
		       "again to adopt the region\n", s->sup_pid);
	else
		printf("Supervisor  %s\n", s->sup_state);
	if (s->usable >= LM_QUORUM)
		printf("Service     available: %u of %u servers up\n",
		       s->usable, LM_NSERVERS);
	else
		printf("Service     NO QUORUM: %u of %u servers up, every "
		       "acquire fails until %u are\n", s->usable, LM_NSERVERS,
		       LM_QUORUM);

	putchar('\n');
	print_servers(s);

	if (s->nsess == 0) {
		printf("\nSESSIONS    none\n");
	} else {
		printf("\nSLOT   PID      STATE     ACQUIRES  WAITING-ON\n");
		for (uint32_t k = 0; k < s->nsess; k++) {
			const struct ctl_sess_info *si = &s->sess[k];
			uint32_t len;
			char buf[LM_NAME_MAX + 1];
			const char *w = ctl_snapshot_lock_name(
				s, si->waiting_on, &len, buf);
			printf("%-5u  %-7d  %-8s  %-8llu  ", si->slot, si->pid,
			       si->state, (unsigned long long)si->acquires);
			int cols = 1;
			if (w != NULL) {
				cols = ctl_print_escaped(stdout, w, len);
				cols += printf(" (%s)",
					       ctl_mode_name(si->wait_mode));
			} else {
				putchar('-');
			}
			if (si->isolated != 0) {
				pad(10 - cols);
				printf("  isolated from server%s",
				       __builtin_popcount(si->isolated) > 1
					       ? "s"
					       : "");
				const char *sep = " ";
				for (unsigned i = 0; i < LM_NSERVERS; i++)
					if (si->isolated & (1u << i)) {
						printf("%s%u", sep, i);
						sep = ", ";
					}
			}
			putchar('\n');
		}
	}

	if (s->nlocks == 0) {
		printf("\nLOCKS       none held or waited for\n");
		return;
	}
	int nw = ctl_snapshot_name_column(s);
	printf("\nNAME");
	pad(nw - 4);
	printf("  HOLDER   TOKEN       LEASE-LEFT  WAITERS  TABLES  MODE\n");
	for (uint32_t k = 0; k < s->nlocks; k++) {
		const struct ctl_lock_info *li = &s->locks[k];
		pad(nw - ctl_print_lock_name(stdout, li));
		if (li->holder_slot < 0 && li->nshared == 0) {
			printf("  %-7s  %-10s  %-10s  %-7u  %-6s  -\n", "-", "-",
			       "-", li->waiters, "-");
			continue;
		}
		char lease[32], holder[16], tables[8] = "";
		snprintf(lease, sizeof(lease), "%lld ms",
			 (long long)li->lease_left_ms);
		if (li->holder_slot >= 0)
			snprintf(holder, sizeof(holder), "%d", li->holder_pid);
		else if (li->nshared == 1)
			snprintf(holder, sizeof(holder), "%d",
				 li->shared[0].pid);
		else
			snprintf(holder, sizeof(holder), "(%u)", li->nshared);
		for (unsigned i = 0, at = 0; i < LM_NSERVERS; i++)
			if (li->tables & (1u << i))
				at += (unsigned)snprintf(tables + at,
							 sizeof(tables) - at,
							 "%s%u", at ? "," : "",
							 i);
		printf("  %-7s  %-10llu  %-10s  %-7u  %-6s  %s\n", holder,
		       (unsigned long long)li->token, lease, li->waiters,
		       tables, li->mode);
		/* Several counted holders: one line each. */
		for (uint32_t h = 0; li->nshared > 1 && h < li->nshared &&
				     h < CTL_SHARED_SHOWN;
		     h++) {
			pad(nw);
			printf("    pid %d (slot %u) holds %s\n",
			       li->shared[h].pid, li->shared[h].slot,
			       ctl_mode_name(li->shared[h].mode));
		}
		if (li->nshared > CTL_SHARED_SHOWN) {
			pad(nw);
			printf("    and %u more\n",
			       li->nshared - CTL_SHARED_SHOWN);
		}
	}
	print_waits_for(s);
}

/*
 * The waits-for graph (what deadlock detection searches, shm/deadlock.h):
 * each waiting session and whom it waits for.
 */
static void print_waits_for(const struct ctl_snapshot *s)
{
	bool any = false;
	for (uint32_t k = 0; k < s->nsess; k++) {
		const struct ctl_sess_info *si = &s->sess[k];
		if (si->waiting_on < 0)
			continue;
		struct lm_blocker b[16];
		size_t n = lm_wait_blockers(s->r, si->slot, s->now_ns, b, 16);
		if (!any)
			printf("\nWAITS-FOR   (who waits for whom: a cycle here "
			       "is a deadlock)\n");
		any = true;
		uint32_t len;
		char buf[LM_NAME_MAX + 1];
		const char *w = ctl_snapshot_lock_name(s, si->waiting_on, &len,
						       buf);
		printf("pid %d (slot %u) waits for %s on ", si->pid, si->slot,
		       ctl_mode_name(si->wait_mode));
		if (w != NULL)
			ctl_print_escaped(stdout, w, len);
		else
			putchar('?');
		if (n == 0)
			printf(": nobody in the way now\n");
		for (size_t j = 0; j < n && j < 16; j++) {
			int pid = LM_SESS_PID(
				lm_session_word(&s->r->sessions[b[j].session]));
			printf("%s pid %d (slot %u) %s %s", j ? ";" : ":", pid,
			       b[j].session, b[j].queued ? "queued for" : "holds",
			       ctl_mode_name(b[j].mode));
		}
		if (n != 0)
			putchar('\n');
	}
}

/* ------------------------------------------------------------------ */
/* JSON output */

static void json_str(const char *s, size_t len)
{
	ctl_json_str(stdout, s, len);
}

static void json_cstr(const char *s)
{
	json_str(s, strlen(s));
}

static void print_json(const struct ctl_snapshot *s)
{
	const struct lm_region *r = s->r;
	const struct lm_region_header *h = r->hdr;
	printf("{\"region\":{\"name\":");
	json_cstr(r->name);
	printf(",\"max_locks\":%u,\"max_sessions\":%u,\"max_ttl_ms\":%lld,"
	       "\"release_on_exit\":%s,\"restart_delay_ms\":%lld,"
	       "\"created_realtime_s\":%lld,\"names_used\":%u,"
	       "\"supervisor_pid\":%d,\"supervisor_state\":",
	       r->max_locks, r->max_sessions, (long long)r->max_ttl_ms,
	       atomic_load(&h->flags) & LM_REGION_RELEASE_ON_EXIT ? "true"
								  : "false",
	       (long long)atomic_load(&h->restart_delay_ms),
	       (long long)h->created_realtime_s, lm_names_in_use(r),
	       s->sup_pid);
	json_cstr(s->sup_state);
	printf(",\"supervisor_alive\":%s,\"servers_up\":%u,\"quorum\":%s}",
	       s->sup_alive ? "true" : "false", s->usable,
	       s->usable >= LM_QUORUM ? "true" : "false");

	printf(",\"servers\":[");
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct ctl_srv_info *si = &s->srv[i];
		printf("%s{\"index\":%u,\"pid\":%d,\"state\":", i ? "," : "", i,
		       si->pid);
		json_cstr(si->state);
		printf(",\"epoch\":%llu,\"heartbeat_age_ms\":",
		       (unsigned long long)si->epoch);
		if (si->hb_age_ms >= 0)
			printf("%lld", (long long)si->hb_age_ms);
		else
			printf("null");
		printf(",\"table_lost\":%s", si->table_lost ? "true" : "false");
		printf(",\"recovery\":");
		if (!strcmp(si->state, "recovering"))
			json_cstr(si->recovery);
		else
			printf("null");
		printf(",\"restarts\":%llu,\"quarantine_left_ms\":%lld,"
		       "\"token_floor\":%llu,\"leases_expired\":%llu,"
		       "\"skew_offset_ms\":%lld,\"skew_rate_ppm\":%lld",
		       (unsigned long long)si->restarts,
		       (long long)si->quarantine_ms,
		       (unsigned long long)si->token_floor,
		       (unsigned long long)si->expired,
		       (long long)si->skew_offset_ms,
		       (long long)si->skew_rate_ppm);
		printf(",\"isolated_pids\":[");
		for (unsigned j = 0; j < si->niso; j++)
			printf("%s%d", j ? "," : "", si->iso_pids[j]);
		printf("]}");
	}

	printf("],\"sessions\":[");
	for (uint32_t k = 0; k < s->nsess; k++) {
		const struct ctl_sess_info *si = &s->sess[k];
		printf("%s{\"slot\":%u,\"pid\":%d,\"state\":", k ? "," : "",
		       si->slot, si->pid);
		json_cstr(si->state);
		printf(",\"acquires\":%llu,\"isolated_from\":[",
		       (unsigned long long)si->acquires);
		const char *sep = "";
		for (unsigned i = 0; i < LM_NSERVERS; i++)
			if (si->isolated & (1u << i)) {
				printf("%s%u", sep, i);
				sep = ",";
			}
		printf("],\"waiting_on\":");
		uint32_t len;
		char buf[LM_NAME_MAX + 1];
		const char *w = ctl_snapshot_lock_name(s, si->waiting_on, &len, buf);
		if (w != NULL)
			json_str(w, len);
		else
			printf("null");
		printf(",\"wait_mode\":");
		if (w != NULL)
			json_cstr(ctl_mode_name(si->wait_mode));
		else
			printf("null");
		/* Whom it waits for: the waits-for graph's edges. */
		printf(",\"waits_for\":[");
		struct lm_blocker b[16];
		size_t nb = w == NULL ? 0
				      : lm_wait_blockers(s->r, si->slot,
							 s->now_ns, b, 16);
		for (size_t j = 0; j < nb; j++)
			printf("%s{\"session\":%u,\"pid\":%d,\"%s\":\"%s\"}",
			       j ? "," : "", b[j].session,
			       (int)LM_SESS_PID(lm_session_word(
				       &s->r->sessions[b[j].session])),
			       b[j].queued ? "queued_for" : "holds",
			       ctl_mode_name(b[j].mode));
		printf("]}");
	}

	printf("],\"locks\":[");
	for (uint32_t k = 0; k < s->nlocks; k++) {
		const struct ctl_lock_info *li = &s->locks[k];
		printf("%s{\"name\":", k ? "," : "");
		json_str(li->name, li->len);
		/* A semaphore's slot: the semaphore's name, its slot and
		 * its count (null for a lock; slots null if unknown). */
		if (li->sem_slot >= 0 && li->sem_slots != 0)
			printf(",\"slot\":%d,\"slots\":%u", li->sem_slot,
			       li->sem_slots);
		else if (li->sem_slot >= 0)
			printf(",\"slot\":%d,\"slots\":null", li->sem_slot);
		else
			printf(",\"slot\":null,\"slots\":null");
		printf(",\"index\":%u,\"held\":%s", li->idx,
		       li->holder_slot >= 0 || li->nshared != 0 ? "true"
								  : "false");
		if (li->holder_slot >= 0 || li->nshared != 0) {
			/* Counted holders: "holders" lists them. */
			if (li->holder_slot >= 0)
				printf(",\"holder_pid\":%d,\"holder_session\":"
				       "%lld", li->holder_pid,
				       (long long)li->holder_slot);
			else
				printf(",\"holder_pid\":null,"
				       "\"holder_session\":null");
			printf(",\"token\":%llu,\"lease_left_ms\":%lld,"
			       "\"tables\":[",
			       (unsigned long long)li->token,
			       (long long)li->lease_left_ms);
			const char *sep = "";
			for (unsigned i = 0; i < LM_NSERVERS; i++)
				if (li->tables & (1u << i)) {
					printf("%s%u", sep, i);
					sep = ",";
				}
			putchar(']');
		} else {
			printf(",\"holder_pid\":null,\"holder_session\":null,"
			       "\"token\":null,\"lease_left_ms\":null,"
			       "\"tables\":[]");
		}
		printf(",\"mode\":");
		if (li->holder_slot >= 0 || li->nshared != 0)
			json_cstr(li->mode);
		else
			printf("null");
		printf(",\"holders\":[");
		if (li->holder_slot >= 0)
			printf("{\"session\":%lld,\"pid\":%d,\"mode\":\"X\"}",
			       (long long)li->holder_slot, li->holder_pid);
		for (uint32_t h = 0; h < li->nshared && h < CTL_SHARED_SHOWN;
		     h++)
			printf("%s{\"session\":%u,\"pid\":%d,\"mode\":\"%s\"}",
			       h ? "," : "", li->shared[h].slot,
			       li->shared[h].pid,
			       ctl_mode_name(li->shared[h].mode));
		printf("],\"holders_count\":%u",
		       li->holder_slot >= 0 ? 1u : li->nshared);
		printf(",\"waiters\":%u}", li->waiters);
	}
	printf("]}\n");
}

/* ------------------------------------------------------------------ */

int ctl_status(struct ctl_global *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"region", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'h':
			status_usage(stdout);
			return EX_CTL_OK;
		case ':':
			fprintf(stderr, "lockctl status: option '%s' needs a "
					"value\n", argv[optind - 1]);
			return EX_CTL_USAGE;
		default:
			fprintf(stderr, "lockctl status: unknown option '%s'\n"
					"Try 'lockctl status --help'.\n",
				argv[optind - 1]);
			return EX_CTL_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "lockctl status: unexpected argument '%s'\n"
				"Try 'lockctl status --help'.\n", argv[optind]);
		return EX_CTL_USAGE;
	}
	int rc = ctl_resolve_region(g);
	if (rc != 0)
		return rc;
	if (ctl_is_etcd(g))
		return ctl_status_etcd(g, json);

	struct lm_region r;
	char why[256] = "";
	int err = lm_region_attach(&r, g->region, why, sizeof(why));
	if (err != 0)
		return ctl_service_error(err, g->region, why);
	struct ctl_snapshot s;
	if (ctl_snapshot_take(&s, &r) != 0) {
		fprintf(stderr, "lockctl: out of memory reading the region\n");
		rc = EX_CTL_OSERR;
		goto out;
	}
	if (json)
		print_json(&s);
	else
		print_human(&s);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "lockctl: writing the status: %s\n",
			strerror(errno));
		rc = EX_CTL_OSERR;
		goto out;
	}
	rc = s.usable >= LM_QUORUM ? EX_CTL_OK : EX_CTL_UNAVAILABLE;
out:
	ctl_snapshot_free(&s);
	lm_region_detach(&r);
	return rc;
}

int ctl_server_table(const struct lm_region *r)
{
	struct ctl_snapshot s;
	int rc = EX_CTL_OK;
	if (ctl_snapshot_take(&s, r) != 0) {
		fprintf(stderr, "lockctl: out of memory reading the region\n");
		rc = EX_CTL_OSERR;
	} else {
		print_servers(&s);
		if (fflush(stdout) != 0)
			rc = EX_CTL_OSERR;
	}
	ctl_snapshot_free(&s);
	return rc;
}
