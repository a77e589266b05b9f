/*
 * top.h - what the files of `lockctl top` share.
 *
 * top reads the region as status does (snapshot.c), once a
 * refresh, and derives what happened in between by comparing each
 * snapshot with the one before (top_events.c): the region keeps
 * no log, and top needs no protocol change. top_frame.c turns
 * a snapshot and the events into the lines of one frame, the same for
 * the terminal view and for plain text; top.c has the options
 * and the loops.
 */
#ifndef LOCKMGR_CLIENT_LOCKCTL_TOP_H
#define LOCKMGR_CLIENT_LOCKCTL_TOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "snapshot.h"

/* ---- events ------------------------------------------------------- */

#define TOP_EVENT_TEXT 384

struct top_event {
	struct timespec when;  /* wall clock when top saw it */
	const char *kind;      /* grant, release, expire, ... */
	char text[TOP_EVENT_TEXT];
};

/* The last `cap` events, oldest first; `total` counts every event ever
 * added, so a frame can show those added since the frame before. */
struct top_events {
	struct top_event *ring;
	uint32_t cap;
	uint64_t total;
};

int top_events_init(struct top_events *ev, uint32_t cap);
void top_events_free(struct top_events *ev);
/* Add an event seen at wall-clock time when. */
void top_event_add(struct top_events *ev, const struct timespec *when,
		   const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Event number seq (total-cap <= seq < total), or NULL if gone. */
const struct top_event *top_event_at(const struct top_events *ev,
				     uint64_t seq);

/* ---- what top knows beyond one snapshot --------------------------- */

/* Per lock of a snapshot, in the order of its locks. */
struct top_lock_extra {
	int64_t wait_since_ns; /* when top first saw its oldest waiter
	                        * waiting (monotonic), or -1: the region
	                        * does not record when a wait began */
	int64_t span_ms;       /* what a full lease bar stands for */
};

/* One observation: a snapshot and what top worked out around it. */
struct top_view {
	struct ctl_snapshot s;
	struct timespec wall;        /* wall clock at the snapshot */
	int64_t *sess_wait_since_ns; /* per session: since when top has
	                              * seen it waiting on waiting_on (-1:
	                              * not waiting) */
	struct top_lock_extra *lx;   /* per lock */
	bool taken;
};

/*
 * Take a snapshot of r into v, carrying over from prev (NULL on the
 * first) what only a sequence of snapshots tells: how long each waiter
 * has been seen waiting, and the span of each lease bar. Then add to ev
 * what changed from prev to v. Returns 0, or -1 when out of memory.
 */
int top_observe(struct top_view *v, const struct top_view *prev,
		const struct lm_region *r, struct top_events *ev);
void top_view_free(struct top_view *v);

/* ---- frames -------------------------------------------------------- */

#define TOP_MAX_HEADERS 8

struct top_frame {
	const struct top_view *v;
	const struct top_events *ev;
	bool events;           /* show an EVENTS section */
	uint64_t ev_from;      /* with the events from this number on */
	int max_sess;          /* rows per section; -1: all */
	int max_locks;
	int max_events;
	int64_t delay_ms;      /* 0: a single frame */
	const char *keys;      /* what keys do, for the title; or NULL */
};

/* Where a frame goes, and which of its lines are headings. */
struct top_out {
	FILE *f;
	int line;
	int hdr[TOP_MAX_HEADERS];
	int nhdr;
};

/* Lines a frame takes besides its sessions, locks and events. */
#define TOP_FIXED_LINES 15

void top_render(struct top_out *o, const struct top_frame *fr);

/* Write len bytes of name into out (n bytes, NUL-ended) as
 * ctl_print_escaped prints them, cut short if it does not fit. */
void top_escape(char *out, size_t n, const char *name, size_t len);

#endif
