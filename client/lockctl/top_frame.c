/*
 * top_frame.c - one frame of `lockctl top` as lines of plain
 * text: the terminal view draws these lines (clipped to the screen),
 * --once and batch mode print them. Nothing here writes a control code:
 * lock names are escaped as status escapes them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lockctl.h"
#include "top.h"

#define BAR_WIDTH 10

void top_escape(char *out, size_t n, const char *name, size_t len)
{
	size_t k = 0;
	for (size_t i = 0; i < len && name[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			if (k + 1 >= n)
				break;
			out[k++] = (char)ch;
		} else {
			if (k + 4 >= n)
				break;
			snprintf(out + k, 5, "\\x%02x", ch);
			k += 4;
		}
	}
	if (n > 0)
		out[k] = '\0';
}

/* End the current line; a heading if hdr. */
static void nl(struct top_out *o, bool hdr)
{
	if (hdr && o->nhdr < TOP_MAX_HEADERS)
		o->hdr[o->nhdr++] = o->line;
	fputc('\n', o->f);
	o->line++;
}

static void pad(FILE *f, int n)
{
	while (n-- > 0)
		fputc(' ', f);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void title(struct top_out *o, const struct top_frame *fr)
{
	const struct top_view *v = fr->v;
	const struct ctl_snapshot *s = &v->s;
	struct tm tm;
	char when[32] = "";
	if (localtime_r(&v->wall.tv_sec, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(o->f, "lockctl top - %s - %s", s->r->name, when);
	if (fr->delay_ms > 0)
		fprintf(o->f, " - every %lld ms", (long long)fr->delay_ms);
	if (fr->keys != NULL)
		fprintf(o->f, " - %s", fr->keys);
	nl(o, true);

	if (s->usable >= LM_QUORUM)
		fprintf(o->f, "Service     available: %u of %u servers up",
			s->usable, LM_NSERVERS);
	else
		fprintf(o->f, "Service     NO QUORUM: %u of %u servers up, every "
			"acquire fails until %u are", s->usable, LM_NSERVERS,
			LM_QUORUM);
	nl(o, false);

	if (!strcmp(s->sup_state, "running"))
		fprintf(o->f, "Supervisor  pid %d, running", s->sup_pid);
	else if (!strcmp(s->sup_state, "dead"))
		fprintf(o->f, "Supervisor  DEAD (pid %d is gone): dead servers "
			"are not restarted nor dead clients' locks freed",
			s->sup_pid);
	else if (!strcmp(s->sup_state, "stopped"))
		fprintf(o->f, "Supervisor  stopped: the region is removed "
			"(top shows the service again once lockmgrd is back)");
	else
		fprintf(o->f, "Supervisor  %s", s->sup_state);
	nl(o, false);

	uint32_t held = 0, waiting = 0;
	for (uint32_t k = 0; k < s->nsess; k++)
		waiting += s->sess[k].waiting_on >= 0;
	for (uint32_t k = 0; k < s->nlocks; k++)
		held += s->locks[k].holder_slot >= 0;
	fprintf(o->f, "Clients     %u %s, %u %s held, %u waiting", s->nsess,
		plural(s->nsess, "session", "sessions"), held,
		plural(held, "lock", "locks"), waiting);
	nl(o, false);
}

static void servers(struct top_out *o, const struct top_frame *fr)
{
	const struct ctl_snapshot *s = &fr->v->s;
	nl(o, false);
	fprintf(o->f, "SERVER  STATE       PID      EPOCH  RESTARTS  "
		"QUARANTINE  NOTE");
	nl(o, true);
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		const struct ctl_srv_info *si = &s->srv[i];
		char pid[16] = "-", quar[32] = "-", note[256];
		if (si->pid > 0)
			snprintf(pid, sizeof(pid), "%d", si->pid);
		if (!strcmp(si->state, "recovering")) {
			if (si->quarantine_ms < 0)
				snprintf(quar, sizeof(quar), "unknown");
			else
				snprintf(quar, sizeof(quar), "%lld ms",
					 (long long)si->quarantine_ms);
		}
		ctl_server_note(si, note, sizeof(note));
		fprintf(o->f, "%-6u  %-10s  %-7s  %-5llu  %-8llu  ", i,
			si->state, pid, (unsigned long long)si->epoch,
			(unsigned long long)si->restarts);
		if (note[0] != '\0')
			fprintf(o->f, "%-10s  %s", quar, note);
		else
			fprintf(o->f, "%s", quar);
		nl(o, false);
	}
}

/* How many of n rows fit in max (-1: all), keeping one for "more". */
static uint32_t rows_for(uint32_t n, int max)
{
	if (max < 0 || n <= (uint32_t)max)
		return n;
	return max > 1 ? (uint32_t)max - 1 : 0;
}

static void more(struct top_out *o, uint32_t shown, uint32_t n, int max,
		 const char *what)
{
	if (shown < n && max > 0) {
		fprintf(o->f, "... and %u more %s", n - shown, what);
		nl(o, false);
	}
}

static void sessions(struct top_out *o, const struct top_frame *fr)
{
	const struct top_view *v = fr->v;
	const struct ctl_snapshot *s = &v->s;
	nl(o, false);
	if (s->nsess == 0) {
		fprintf(o->f, "SESSIONS    none");
		nl(o, true);
		return;
	}
	fprintf(o->f, "SLOT   PID      STATE     HELD  WAITING-ON");
	nl(o, true);
	uint32_t n = rows_for(s->nsess, fr->max_sess);
	for (uint32_t k = 0; k < n; k++) {
		const struct ctl_sess_info *si = &s->sess[k];
		fprintf(o->f, "%-5u  %-7d  %-8s  %-4u  ", si->slot, si->pid,
			si->state, si->held);
		uint32_t len;
		char buf[LM_NAME_MAX + 1];
		const char *w = ctl_snapshot_lock_name(s, si->waiting_on, &len,
						       buf);
		if (w != NULL) {
			ctl_print_escaped(o->f, w, len);
			/* Only once seen in an earlier frame. */
			int64_t since = v->sess_wait_since_ns[k];
			if (since >= 0 && since < s->now_ns)
				fprintf(o->f, " (seen waiting %lld ms)",
					(long long)((s->now_ns - since) /
						    1000000));
		} else {
			fputc('-', o->f);
		}
		nl(o, false);
	}
	more(o, n, s->nsess, fr->max_sess, "sessions");
}

/* "[#######---] 1234 ms": the lease left, as a part of its span. */
static void lease_bar(char *buf, size_t n, int64_t left, int64_t span)
{
	int fill = BAR_WIDTH;
	if (span > 0 && left < span)
		fill = (int)((left * BAR_WIDTH + span - 1) / span);
	fill = fill < 0 ? 0 : fill > BAR_WIDTH ? BAR_WIDTH : fill;
	char bar[BAR_WIDTH + 1];
	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[BAR_WIDTH] = '\0';
	snprintf(buf, n, "[%s] %lld ms", bar, (long long)left);
}

static void locks(struct top_out *o, const struct top_frame *fr)
{
	const struct top_view *v = fr->v;
	const struct ctl_snapshot *s = &v->s;
	nl(o, false);
	if (s->nlocks == 0) {
		fprintf(o->f, "LOCKS       none held or waited for");
		nl(o, true);
		return;
	}
	int nw = ctl_snapshot_name_column(s);
	fprintf(o->f, "NAME");
	pad(o->f, nw - 4);
	fprintf(o->f, "  HOLDER   MODE  TOKEN       LEASE-LEFT              "
		"WAITERS  OLDEST-WAIT");
	nl(o, true);
	uint32_t n = rows_for(s->nlocks, fr->max_locks);
	for (uint32_t k = 0; k < n; k++) {
		const struct ctl_lock_info *li = &s->locks[k];
		const struct top_lock_extra *x = &v->lx[k];
		pad(o->f, nw - ctl_print_lock_name(o->f, li));
		char holder[16] = "-", token[24] = "-", lease[48] = "-";
		char oldest[32] = "-";
		/* X, or the counted modes held ("mix" when several kinds
		 * share the lock: status lists them). */
		const char *mode = "-";
		if (li->holder_slot >= 0 || li->nshared != 0) {
			if (li->holder_slot >= 0)
				snprintf(holder, sizeof(holder), "%d",
					 li->holder_pid);
			else if (li->nshared == 1)
				snprintf(holder, sizeof(holder), "%d",
					 li->shared[0].pid);
			else
				snprintf(holder, sizeof(holder), "(%u)",
					 li->nshared);
			snprintf(token, sizeof(token), "%llu",
				 (unsigned long long)li->token);
			lease_bar(lease, sizeof(lease), li->lease_left_ms,
				  x->span_ms);
			bool one_kind = true;
			for (uint32_t h = 1; h < li->nshared &&
					     h < CTL_SHARED_SHOWN;
			     h++)
				one_kind &= li->shared[h].mode ==
					    li->shared[0].mode;
			mode = li->holder_slot >= 0 ? "X"
			       : one_kind ? ctl_mode_name(li->shared[0].mode)
					  : "mix";
		}
		if (li->waiters != 0 && x->wait_since_ns >= 0)
			snprintf(oldest, sizeof(oldest), "%lld ms",
				 (long long)((s->now_ns - x->wait_since_ns) /
					     1000000));
		fprintf(o->f, "  %-7s  %-4s  %-10s  %-22s  %-7u  %s", holder,
			mode, token, lease, li->waiters, oldest);
		nl(o, false);
	}
	more(o, n, s->nlocks, fr->max_locks, "locks");
}

static void event_line(struct top_out *o, const struct top_event *e)
{
	struct tm tm;
	char when[16] = "";
	if (localtime_r(&e->when.tv_sec, &tm) != NULL)
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(o->f, "%s.%03ld  %-10s  %s", when, e->when.tv_nsec / 1000000,
		e->kind, e->text);
	nl(o, false);
}

static void events(struct top_out *o, const struct top_frame *fr)
{
	const struct top_events *ev = fr->ev;
	uint64_t from = fr->ev_from;
	nl(o, false);
	if (ev->total <= from) {
		fprintf(o->f, "EVENTS      %s", ev->total == 0
			? "none yet" : "none since the last frame");
		nl(o, true);
		return;
	}
	fprintf(o->f, "EVENTS");
	nl(o, true);
	uint64_t oldest = ev->total > ev->cap ? ev->total - ev->cap : 0;
	if (fr->max_events >= 0 && ev->total - from > (uint64_t)fr->max_events)
		from = ev->total - (uint64_t)fr->max_events;
	if (from < oldest) {
		fprintf(o->f, "... %llu earlier events not kept",
			(unsigned long long)(oldest - from));
		nl(o, false);
		from = oldest;
	}
	for (uint64_t seq = from; seq < ev->total; seq++)
		event_line(o, top_event_at(ev, seq));
}

void top_render(struct top_out *o, const struct top_frame *fr)
{
	title(o, fr);
	servers(o, fr);
	sessions(o, fr);
	locks(o, fr);
	if (fr->events)
		events(o, fr);
}
