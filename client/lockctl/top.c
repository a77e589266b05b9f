/*
 * top.c - `lockctl top`: a live view of the servers, sessions
 * and locks, refreshed at an interval, with the events seen between
 * refreshes (top_events.c).
 *
 * Three ways to show it:
 *   - the terminal view (ncurses), until q, ^C, SIGTERM or SIGHUP; it
 *     redraws at once when the terminal is resized;
 *   - --once: one frame as plain text, for scripts;
 *   - -b: a plain-text frame every interval (-n of them, or until a
 *     signal), each with the events seen since the frame before, so the
 *     output as a whole is also a log of the events.
 * Like status, top only reads: it registers no session.
 *
 * Signals. The terminal view must give the terminal back however it
 * ends, so SIGINT, SIGTERM and SIGHUP only set a flag: they are blocked
 * except inside the ppoll that waits for a key or the next refresh (no
 * signal can slip in between a check of the flag and the wait), and the
 * loop then ends through endwin(). They are installed before ncurses
 * starts, so it keeps its own hands off them; it still handles SIGWINCH
 * (a resize, read as KEY_RESIZE) and SIGTSTP (^Z) itself. Batch mode
 * has no terminal to restore: it waits for them with sigtimedwait.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ncurses.h>

#include "../../shm/clock.h"
#include "../../shm/test_hook.h"
#include "lockctl.h"
#include "top.h"
#include "../lockmgr.h"

#define TOP_DELAY_MS   500
#define TOP_EVENTS     10
#define TOP_EVENT_KEEP 4096u /* events a batch frame can list */

struct top_opts {
	bool once;
	bool batch;
	int64_t delay_ms;
	int64_t iterations;  /* 0: until stopped */
	int64_t events;      /* on the terminal view */
};

struct top {
	struct ctl_global *g;
	struct top_opts opt;
	struct lm_region r;
	struct top_view views[2]; /* views[cur] is the latest */
	int cur;
	bool have;
	struct top_events ev;
};

static void top_usage(FILE *f)
{
	fprintf(f,
"Usage: lockctl top [--once | -b [-n N]] [-d MS] [-e N] [-r NAME]\n"
"A live view of the servers, sessions and locks, refreshed every MS, with\n"
"the events seen between refreshes: grants, releases, expiries, sessions\n"
"that connect, end or die, server faults. Registers no session.\n"
"Keys: q quits (so do ^C and SIGTERM), space refreshes now.\n"
"\n"
"      --once            print one frame as plain text and exit\n"
"  -b, --batch           plain text: a frame every MS, each with the events\n"
"                        since the frame before, until stopped or N frames\n"
"  -n, --iterations N    stop after N frames\n"
"  -d, --delay MS        refresh every MS milliseconds (default 500)\n"
"  -e, --events N        events kept on the screen (default 10)\n"
CTL_REGION_HELP
"  -h, --help            show this help\n"
"\n"
"Exit status: 0 when stopped (q, ^C, SIGTERM, -n), 69 if the region is\n"
"missing or incompatible, 64 on a usage error (also: no terminal for the\n"
"live view; use --once or -b), 71 if the output cannot be written.\n");
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "lockctl top: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'lockctl top --help'.\n");
	return EX_CTL_USAGE;
}

/* A whole decimal number for flag, within [min, max]; -1 after saying
 * what is wrong with it. */
static int parse_num(const char *s, const char *flag, int64_t min,
		     int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	/* strtoll alone would take "  12", "+12" and "12abc". */
	if (*s < '0' || *s > '9' || *end != '\0') {
		usage_error("%s: '%s' is not a whole number", flag, s);
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		usage_error("%s: '%s' is out of range (%lld to %lld)", flag, s,
			    (long long)min, (long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ */

static const struct top_view *latest(const struct top *t)
{
	return &t->views[t->cur];
}

/*
 * A supervisor that stopped cleanly removed its region; a new lockmgrd
 * makes a new one under the same name. Follow it, so that a view left
 * running across a restart of the service shows the service.
 */
static void follow_restart(struct top *t)
{
	if (!t->have || strcmp(latest(t)->s.sup_state, "stopped") != 0)
		return;
	struct lm_region nr;
	char why[256];
	if (lm_region_attach(&nr, t->g->region, why, sizeof(why)) != 0)
		return;
	top_view_free(&t->views[0]);
	top_view_free(&t->views[1]);
	lm_region_detach(&t->r);
	t->r = nr;
	t->have = false;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	top_event_add(&t->ev, &now, "service", "lockmgrd is back, with a new "
		      "region");
}

/* Take the next view. 0, or an exit status after saying why not. */
static int observe(struct top *t)
{
	follow_restart(t);
	const struct top_view *prev = t->have ? latest(t) : NULL;
	struct top_view *next = &t->views[t->cur ^ 1];
	top_view_free(next);
	if (top_observe(next, prev, &t->r, &t->ev) != 0) {
		fprintf(stderr, "lockctl: out of memory reading the region\n");
		return EX_CTL_OSERR;
	}
	t->cur ^= 1;
	t->have = true;
	return 0;
}

static struct timespec ns_to_ts(int64_t ns)
{
	if (ns < 0)
		ns = 0;
	return (struct timespec){.tv_sec = ns / 1000000000,
				 .tv_nsec = ns % 1000000000};
}

/* ------------------------------------------------------------------ */
/* Plain text: --once and -b */

static int run_plain(struct top *t)
{
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, &old);
	int rc = 0;
	uint64_t shown = 0;
	for (int64_t frame = 0;; frame++) {
		int64_t start = lm_now_ns();
		rc = observe(t);
		if (rc != 0)
			break;
		if (frame > 0)
			putchar('\n');
		struct top_frame fr = {
			.v = latest(t), .ev = &t->ev, .events = !t->opt.once,
			.ev_from = shown, .max_sess = -1, .max_locks = -1,
			.max_events = -1,
			.delay_ms = t->opt.once ? 0 : t->opt.delay_ms,
		};
		struct top_out o = {.f = stdout};
		top_render(&o, &fr);
		shown = t->ev.total;
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "lockctl: writing the frame: %s\n",
				strerror(errno));
			rc = EX_CTL_OSERR;
			break;
		}
		if (t->opt.once || (t->opt.iterations > 0 &&
				    frame + 1 >= t->opt.iterations))
			break;
		int64_t deadline = start + t->opt.delay_ms * 1000000;
		int sig = 0;
		for (;;) {
			int64_t left = deadline - lm_now_ns();
			if (left <= 0)
				break;
			struct timespec ts = ns_to_ts(left);
			sig = sigtimedwait(&stop, NULL, &ts);
			if (sig > 0 || errno == EAGAIN)
				break;
			sig = 0; /* EINTR: a stop and continue, say */
		}
		if (sig > 0)
			break;
	}
	LM_HOOK("lockctl.top_last_frame");
	/* A stop signal that came during the last frame ends us as one
	 * that came between frames would (exit 0): take it before the old
	 * mask lets it kill us. A standard signal is pending at most once,
	 * so NSIG tries take every one; the bound keeps a sigtimedwait that
	 * always answers (the fuzzer's) from holding us here. */
	const struct timespec zero = {0};
	for (int n = 0; n < NSIG && sigtimedwait(&stop, NULL, &zero) > 0; n++)
		;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The terminal view */

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

/* Rows for each section on a screen of `lines` (see TOP_FIXED_LINES). */
static void screen_rows(const struct top *t, int lines, struct top_frame *fr)
{
	const struct ctl_snapshot *s = &latest(t)->s;
	int avail = lines - TOP_FIXED_LINES;
	avail = avail < 0 ? 0 : avail;
	int ns = (int)s->nsess, nk = (int)s->nlocks;
	int ne = t->ev.total < (uint64_t)t->opt.events ? (int)t->ev.total
						       : (int)t->opt.events;
	int e = ne < avail / 3 ? ne : avail / 3;
	int rest = avail - e;
	if (ns + nk <= rest) {
		fr->max_sess = ns;
		fr->max_locks = nk;
		e = avail - ns - nk < ne ? avail - ns - nk : ne;
	} else if (ns < rest / 2) {
		fr->max_sess = ns;
		fr->max_locks = rest - ns;
	} else if (nk < rest - rest / 2) {
		fr->max_sess = rest - nk;
		fr->max_locks = nk;
	} else {
		fr->max_sess = rest / 2;
		fr->max_locks = rest - rest / 2;
	}
	fr->max_events = e;
}

static void draw(const struct top *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return;
	struct top_frame fr = {
		.v = latest(t), .ev = &t->ev, .events = true, .ev_from = 0,
		.delay_ms = t->opt.delay_ms, .keys = "q quits",
	};
	screen_rows(t, LINES, &fr);
	struct top_out o = {.f = f};
	top_render(&o, &fr);
	if (fclose(f) != 0) {
		free(buf);
		return;
	}
	erase();
	char *line = buf;
	for (int y = 0; y < LINES && line != NULL && *line != '\0'; y++) {
		char *end = strchr(line, '\n');
		int n = end != NULL ? (int)(end - line) : (int)strlen(line);
		mvaddnstr(y, 0, line, n < COLS ? n : COLS);
		for (int h = 0; h < o.nhdr; h++)
			if (o.hdr[h] == y)
				mvchgat(y, 0, -1, y == 0 ? A_REVERSE : A_BOLD,
					0, NULL);
		line = end != NULL ? end + 1 : NULL;
	}
	refresh();
	free(buf);
}

/* Handle the keys typed so far. True to quit; *now: refresh now. */
static bool keys(const struct top *t, bool *now)
{
	int ch;
	while ((ch = getch()) != ERR) {
		if (ch == 'q' || ch == 'Q')
			return true;
		if (ch == ' ')
			*now = true;
		else if (ch == KEY_RESIZE)
			draw(t);
		else if (ch == 12) { /* ^L */
			clearok(curscr, TRUE);
			draw(t);
		}
	}
	return false;
}

static int run_screen(struct top *t)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa, old_sa[3];
	sigset_t stop, old_mask, wait_mask;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&stop);
	for (int i = 0; i < 3; i++)
		sigaddset(&stop, sigs[i]);
	sigprocmask(SIG_BLOCK, &stop, &old_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old_sa[i]);
	wait_mask = old_mask;
	for (int i = 0; i < 3; i++)
		sigdelset(&wait_mask, sigs[i]);
	stop_signal = 0;

	int rc = 0;
	SCREEN *scr = newterm(NULL, stdout, stdin);
	/* A terminal that cannot move its cursor (TERM=dumb) would get a
	 * smear of frames: plain text serves it better. */
	const char *cup = scr != NULL ? tigetstr("cup") : NULL;
	if (cup == NULL || cup == (char *)-1) {
		if (scr != NULL) {
			endwin();
			delscreen(scr);
		}
		const char *term = getenv("TERM");
		rc = usage_error("cannot drive this terminal (%s%s): use "
				 "--once, or -b for plain text",
				 term != NULL && *term != '\0' ? "TERM=" :
				 "TERM is not set",
				 term != NULL ? term : "");
		goto out;
	}
	cbreak();
	noecho();
	nonl();
	intrflush(stdscr, FALSE);
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	curs_set(0);

	for (int64_t frames = 0; stop_signal == 0;) {
		int64_t start = lm_now_ns();
		rc = observe(t);
		if (rc != 0)
			break;
		draw(t);
		if (t->opt.iterations > 0 && ++frames >= t->opt.iterations)
			break;
		int64_t deadline = start + t->opt.delay_ms * 1000000;
		bool quit = false, now = false;
		while (stop_signal == 0 && !(quit = keys(t, &now)) && !now) {
			int64_t left = deadline - lm_now_ns();
			if (left <= 0)
				break;
			struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
			struct timespec ts = ns_to_ts(left);
			/* Our stop signals (and SIGWINCH) end the wait:
			 * EINTR, and the loop looks again. */
			if (ppoll(&p, 1, &ts, &wait_mask) > 0 &&
			    (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
				quit = true; /* the terminal is gone */
			if (quit)
				break;
		}
		if (quit)
			break;
	}
	endwin();
	delscreen(scr);
	LM_HOOK("lockctl.top_screen_ended");
out:
	/* Unblocked while on_stop still takes them (one pending from the
	 * last frame ends us as any stop does), then the old handlers. */
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	return rc;
}

/* ------------------------------------------------------------------ */

int ctl_top(struct ctl_global *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"once", no_argument, NULL, 'o'},
		{"batch", no_argument, NULL, 'b'},
		{"iterations", required_argument, NULL, 'n'},
		{"delay", required_argument, NULL, 'd'},
		{"events", required_argument, NULL, 'e'},
		{"region", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct top t;
	memset(&t, 0, sizeof(t));
	t.g = g;
	t.opt.delay_ms = TOP_DELAY_MS;
	t.opt.events = TOP_EVENTS;
	bool iterations = false;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "+:bn:d:e:r:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'o':
			t.opt.once = true;
			break;
		case 'b':
			t.opt.batch = true;
			break;
		case 'n':
			if (parse_num(optarg, "--iterations", 1, INT32_MAX,
				      &t.opt.iterations) != 0)
				return EX_CTL_USAGE;
			iterations = true;
			break;
		case 'd':
			if (parse_num(optarg, "--delay", 10, 3600000,
				      &t.opt.delay_ms) != 0)
				return EX_CTL_USAGE;
			break;
		case 'e':
			if (parse_num(optarg, "--events", 1, TOP_EVENT_KEEP,
				      &t.opt.events) != 0)
				return EX_CTL_USAGE;
			break;
		case 'r':
			g->region_arg = optarg;
			break;
		case 'h':
			top_usage(stdout);
			return EX_CTL_OK;
		case ':':
			return usage_error("option '%s' needs a value",
					   argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (t.opt.once && (t.opt.batch || iterations))
		return usage_error("--once prints one frame: it takes no -b "
				   "or -n");
	bool screen = !t.opt.once && !t.opt.batch;
	if (screen && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)))
		return usage_error("the live view needs a terminal: use "
				   "--once, or -b for plain text");
	int rc = ctl_resolve_region(g);
	if (rc == 0)
		rc = ctl_shm_only(g, "lockctl top");
	if (rc != 0)
		return rc;

	char why[256] = "";
	int err = lm_region_attach(&t.r, g->region, why, sizeof(why));
	if (err != 0)
		return ctl_service_error(err, g->region, why);
	if (top_events_init(&t.ev, TOP_EVENT_KEEP) != 0) {
		fprintf(stderr, "lockctl: out of memory\n");
		rc = EX_CTL_OSERR;
		goto out;
	}
	rc = screen ? run_screen(&t) : run_plain(&t);
out:
	top_view_free(&t.views[0]);
	top_view_free(&t.views[1]);
	top_events_free(&t.ev);
	lm_region_detach(&t.r);
	return rc;
}
