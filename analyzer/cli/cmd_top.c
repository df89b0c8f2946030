/* SPDX-License-Identifier: MIT */
/*
 * cmd_top.c — `leakwatch top PID`: the report, refreshed.
 *
 * Every --interval (default 1s) the segment is snapshotted, joined with the
 * kernel and judged exactly as `report` does; each row is a group with its
 * verdict, count, endpoint, oldest age, most recent I/O, where it comes from
 * and a sparkline of its count over the last TOP_HISTORY refreshes.
 *
 * Full screen (ncursesw) when stdout is a terminal; plain-text snapshots
 * otherwise or with --plain/--once (what tests and pipes see).  The screen
 * is restored on every way out: q, the process exiting, SIGINT/SIGTERM (the
 * handlers only set a flag; getch() returns on the interrupted wait), and an
 * atexit() guard for anything else.  Resizes arrive as KEY_RESIZE and
 * redraw from the last data.  Only plain ASCII unless the locale is UTF-8
 * (then the sparkline uses block characters), so it works over any ssh.
 */
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "names.h"
#include "present.h"
#include "report.h"
#include "segdir.h"
#include "testing.h"

#define TOP_HISTORY 30
#define TOP_KEY_MAX (LW_ENDPOINT_MAX + 96)
#define TOP_FORGET 60          /* refreshes a vanished group's history is kept */
#define ROW_FMT "%-12s %6s  %-30.30s %8s %8s  %-30s  %s"

/* Defaults of `top`; each field is one option. */
struct top_options {
	uint64_t interval_ns;           /* --interval DUR: refresh period */
	uint64_t idle_for_ns;           /* --idle-for DUR: as for report */
	enum lw_group_by by;            /* --by open|use (g toggles) */
	int plain;                      /* --plain / --once: text snapshots, no full screen */
	int count;                      /* --count N / --once: stop after N snapshots (0: until q,
	                                   or 1 when stdout is not a terminal) */
};

enum top_sort { SORT_COUNT = 0, SORT_AGE, SORT_IDLE, SORT_N };
static const char *const sort_names[SORT_N] = { "count", "age", "idle" };

struct history {
	char key[TOP_KEY_MAX];
	int v[TOP_HISTORY];
	size_t n;                       /* samples stored (<= TOP_HISTORY), oldest first */
	unsigned long seen;             /* refresh number of the last sample */
};

struct top_state {
	struct top_options o;
	const char *path;
	enum top_sort sort;
	enum lw_kind kind;
	int utf8;
	unsigned long tick;
	struct history *hist;
	size_t nhist, hist_cap;
	/* hash index over hist by key (open addressing; slot = index + 1, 0 empty):
	 * a linear search per group made each frame quadratic in groups */
	size_t *hidx;
	size_t hidx_cap;                /* power of two, > 2 * nhist; 0: none yet */
};

static volatile sig_atomic_t g_stop;
static int g_curses;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void curses_end(void)
{
	if (g_curses) {
		g_curses = 0;
		endwin();
	}
}

/* ---- history ------------------------------------------------------------- */

static void group_key(const struct lw_group *g, char *buf, size_t len)
{
	/* The part of a split group, not the verdict: NEW turning into POOL keeps its history. */
	char part = g->verdict == LW_V_LEAK_SUSPECT ? 'S' : g->verdict == LW_V_LISTENING ? 'L'
		  : g->verdict == LW_V_WATCHED ? 'W' : 'R';
	snprintf(buf, len, "%d|%c|%d|%u|%u|%u|%u|%d|%s", g->by, part, g->inherited, g->stack_id,
		 g->split || g->by == LW_BY_USE ? g->use_stack_id : 0, g->family, g->type, g->role, g->endpoint);
}

static size_t key_hash(const char *key)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

/* The slot of key in the index: its entry, or the empty slot where it goes. */
static size_t *hidx_slot(struct top_state *t, const char *key)
{
	size_t mask = t->hidx_cap - 1;
	for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
		lw_group_ops++;
		size_t *s = &t->hidx[i];
		if (*s == 0 || strcmp(t->hist[*s - 1].key, key) == 0)
			return s;
	}
}

/* (Re)build the index for nhist entries with room to grow; 0 or -1 (no memory, index unchanged). */
static int hidx_rebuild(struct top_state *t, size_t want)
{
	size_t cap = 64;
	while (cap <= 2 * want)
		cap *= 2;
	size_t *ni = calloc(cap, sizeof *ni);
	if (!ni)
		return -1;
	free(t->hidx);
	t->hidx = ni;
	t->hidx_cap = cap;
	for (size_t i = 0; i < t->nhist; i++)
		*hidx_slot(t, t->hist[i].key) = i + 1;
	return 0;
}

static struct history *history_get(struct top_state *t, const char *key)
{
	if ((t->nhist + 1) * 2 >= t->hidx_cap && hidx_rebuild(t, t->nhist + 1) < 0)
		return NULL;
	size_t *slot = hidx_slot(t, key);
	if (*slot)
		return &t->hist[*slot - 1];
	if (t->nhist == t->hist_cap) {
		size_t ncap = t->hist_cap ? t->hist_cap * 2 : 32;
		struct history *nh = realloc(t->hist, ncap * sizeof *nh);
		if (!nh)
			return NULL;
		t->hist = nh;
		t->hist_cap = ncap;
	}
	struct history *h = &t->hist[t->nhist++];
	memset(h, 0, sizeof *h);
	snprintf(h->key, sizeof h->key, "%s", key);
	*slot = t->nhist;
	return h;
}

static void history_push(struct history *h, int v, unsigned long tick)
{
	if (h->seen == tick && h->n)   /* same group seen twice this refresh: add up */
		h->v[h->n - 1] += v;
	else if (h->n < TOP_HISTORY)
		h->v[h->n++] = v;
	else {
		memmove(h->v, h->v + 1, (TOP_HISTORY - 1) * sizeof *h->v);
		h->v[TOP_HISTORY - 1] = v;
	}
	h->seen = tick;
}

static void history_forget(struct top_state *t)
{
	size_t k = 0;
	for (size_t i = 0; i < t->nhist; i++)
		if (t->tick - t->hist[i].seen <= TOP_FORGET)
			t->hist[k++] = t->hist[i];
	if (k == t->nhist)
		return;
	t->nhist = k;
	/* entries moved: reindex (without memory, drop the index; history_get rebuilds it) */
	if (hidx_rebuild(t, k) < 0) {
		free(t->hidx);
		t->hidx = NULL;
		t->hidx_cap = 0;
	}
}

/* Sparkline of h into buf: one cell per sample, scaled from 0 to the maximum. */
static void sparkline(const struct history *h, int utf8, char *buf, size_t len)
{
	static const char *const blocks[] = { "\u2581", "\u2582", "\u2583", "\u2584",
					      "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii[] = "_.-:=+*#";
	int max = 0;
	size_t k = 0;
	buf[0] = '\0';
	for (size_t i = 0; h && i < h->n; i++)
		if (h->v[i] > max)
			max = h->v[i];
	for (size_t i = 0; h && i < h->n; i++) {
		int lvl = max ? (int)((long)h->v[i] * 7 / max) : 0;
		if (utf8) {
			size_t bl = strlen(blocks[lvl]);
			if (k + bl + 1 > len)
				break;
			memcpy(buf + k, blocks[lvl], bl);
			k += bl;
		} else {
			if (k + 2 > len)
				break;
			buf[k++] = ascii[lvl];
		}
		buf[k] = '\0';
	}
	/* Pad to TOP_HISTORY cells: printf counts bytes, a block is 3. */
	for (size_t cells = h ? h->n : 0; cells < TOP_HISTORY && k + 2 <= len; cells++) {
		buf[k++] = ' ';
		buf[k] = '\0';
	}
}

/* ---- rows ------------------------------------------------------------------ */

struct row {
	const struct lw_group *g;       /* NULL: heap row */
	const struct lw_heap_group *hg;
	size_t idx;
	char text[512];
};

/* "fn file.c:12" for the first frame outside the C runtime, else the first frame. */
static void where(struct lw_report *r, uint32_t stack_id, char *buf, size_t len)
{
	struct lw_frame frames[LW_STACK_MAX_FRAMES * 2];
	size_t n = lw_present_stack(r, stack_id, frames, sizeof frames / sizeof frames[0]);
	buf[0] = '\0';
	if (n == 0) {
		snprintf(buf, len, "%s", stack_id ? "?" : "-");
		return;
	}
	size_t pick = 0;
	for (size_t i = 0; i < n; i++)
		if (!frames[i].module || !lw_module_is_system(frames[i].module)) {
			pick = i;
			break;
		}
	const struct lw_frame *f = &frames[pick];
	if (f->function && f->file) {
		const char *b = strrchr(f->file, '/');
		snprintf(buf, len, "%s %s:%d", f->function, b ? b + 1 : f->file, f->line);
	} else if (f->function) {
		snprintf(buf, len, "%s", f->function);
	} else {
		char loc[LW_PATH_MAX + 32];
		snprintf(buf, len, "%s", lw_frame_format_location(f, loc, sizeof loc));
	}
	lw_present_scrub(buf);
}

static int row_cmp_sort;

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if ((x->g == NULL) != (y->g == NULL))
		return x->g ? -1 : 1;
	if (x->g) {
		uint64_t xv = 0, yv = 0;
		if (row_cmp_sort == SORT_COUNT) {
			xv = x->g->count;
			yv = y->g->count;
		} else if (row_cmp_sort == SORT_AGE) {
			xv = x->g->age_max_ns;
			yv = y->g->age_max_ns;
		} else {
			xv = x->g->verdict == LW_V_LISTENING ? 0 : x->g->ev.idle_max_ns;
			yv = y->g->verdict == LW_V_LISTENING ? 0 : y->g->ev.idle_max_ns;
		}
		if (xv != yv)
			return xv < yv ? 1 : -1;
	}
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Format every row of a report; returns the count (rows malloc'd into *out). */
static size_t rows_build(struct top_state *t, struct lw_report *r, struct row **out)
{
	size_t n = 0, cap = r->grouping.ngroups + r->heap.ngroups + 1;
	struct row *rows = calloc(cap, sizeof *rows);
	*out = rows;
	if (!rows)
		return 0;
	if (lw_kind_sockets(t->kind))
		for (size_t i = 0; i < r->grouping.ngroups; i++) {
			const struct lw_group *g = &r->grouping.groups[i];
			struct row *w = &rows[n];
			char key[TOP_KEY_MAX], desc[LW_ENDPOINT_MAX + 32], age[32], idle[32], wh[256], spark[TOP_HISTORY * 4 + 1];
			w->g = g;
			w->idx = n++;
			group_key(g, key, sizeof key);
			struct history *h = history_get(t, key);
			if (h)
				history_push(h, (int)g->count, t->tick);
			sparkline(h, t->utf8, spark, sizeof spark);
			lw_present_group(g, LW_DESCRIBE_SHORT, desc, sizeof desc);
			lw_duration_format(g->age_max_ns, age, sizeof age);
			if (g->verdict == LW_V_LISTENING || g->verdict == LW_V_LEFT_OPEN)
				snprintf(idle, sizeof idle, "-");
			else
				lw_duration_format(g->ev.idle_min_ns, idle, sizeof idle);
			int use_first = lw_present_use_first(g);
			char loc[200];
			where(r, use_first ? g->use_stack_id : g->stack_id, loc, sizeof loc);
			snprintf(wh, sizeof wh, "%s %s", use_first ? "used" : "opened", g->inherited ? "(inherited)" : loc);
			char cnt[24];
			snprintf(cnt, sizeof cnt, "%zu", g->count);
			snprintf(w->text, sizeof w->text, ROW_FMT, lw_verdict_title(g->verdict), cnt, desc, age, idle,
				 spark, wh);
		}
	if (lw_kind_heap(t->kind) && r->heap.mode != LW_HEAP_OFF)
		for (size_t i = 0; i < r->heap.ngroups && n < cap; i++) {
			const struct lw_heap_group *hg = &r->heap.groups[i];
			if (hg->cls != LW_HEAP_PROGRAM)
				continue;
			struct row *w = &rows[n];
			char b[32], age[32], loc[200];
			w->hg = hg;
			w->idx = n++;
			where(r, hg->stack_id, loc, sizeof loc);
			char cnt[32], what[64], wh[240];
			snprintf(cnt, sizeof cnt, "%s%.0f", r->heap.estimated ? "~" : "", hg->blocks);
			snprintf(what, sizeof what, "heap %s", lw_bytes_format(hg->bytes, b, sizeof b));
			snprintf(wh, sizeof wh, "allocated %s", loc);
			snprintf(w->text, sizeof w->text, ROW_FMT, "HEAP", cnt, what,
				 lw_duration_format(hg->age_max_ns, age, sizeof age), "-", "", wh);
		}
	row_cmp_sort = t->sort;
	qsort(rows, n, sizeof *rows, row_cmp);
	return n;
}

static void header_lines(struct top_state *t, struct lw_report *r, char *l1, size_t n1, char *l2, size_t n2,
			 char *l3, size_t n3)
{
	char up[32], idle[32], iv[32], b[32];
	uint64_t up_ns = lw_present_uptime_ns(r);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "%.40s", lw_present_command(&r->snap));
	lw_present_scrub(cmd);
	snprintf(l1, n1, "leakwatch top  pid %d (%s)  %s, up %s", r->snap.hdr.pid, cmd, lw_live_name(r->live),
		 lw_duration_format(up_ns, up, sizeof up));
	snprintf(l3, n3, "every %s  idle > %s  by %s  sort %s  kind %s", lw_duration_format(t->o.interval_ns, iv, sizeof iv),
		 lw_duration_format(t->o.idle_for_ns, idle, sizeof idle), lw_group_by_name(t->o.by),
		 sort_names[t->sort], lw_kind_name(t->kind));
	size_t nv[LW_V_LISTENING + 1];
	lw_present_verdict_counts(&r->grouping, nv);
	int k = snprintf(l2, n2, "sockets %zu in %zu groups: suspect %zu, pool %zu, active %zu, new %zu, watched %zu, "
			 "listening %zu", r->grouping.nsockets, r->grouping.ngroups, nv[LW_V_LEAK_SUSPECT],
			 nv[LW_V_POOL], nv[LW_V_ACTIVE], nv[LW_V_NEW], nv[LW_V_WATCHED], nv[LW_V_LISTENING]);
	if (k < 0 || (size_t)k >= n2)
		return;
	if (r->heap.mode == LW_HEAP_OFF) {
		snprintf(l2 + k, n2 - (size_t)k, "  heap off");
	} else {
		double blocks, bytes;
		lw_present_heap_totals(&r->heap, &blocks, &bytes);
		snprintf(l2 + k, n2 - (size_t)k, "  heap %s%.0f live blocks, %s%s", r->heap.estimated ? "~" : "", blocks,
			 r->heap.estimated ? "~" : "", lw_bytes_format(bytes, b, sizeof b));
	}
}

static char col_header[160];

static void col_header_init(void)
{
	snprintf(col_header, sizeof col_header, ROW_FMT, "VERDICT", "COUNT", "WHAT", "AGE", "IDLE", "HISTORY (count)",
		 "WHERE");
}

static int report_take(struct top_state *t, struct lw_report *r, char *err, size_t errlen)
{
	struct lw_report_opts ro = { .kind = t->kind == LW_KIND_SOCKETS ? LW_KIND_SOCKETS : LW_KIND_ALL,
				     .format = LW_FMT_TEXT, .idle_for_ns = t->o.idle_for_ns, .by = t->o.by };
	t->tick++;
	return lw_report_build(r, t->path, &ro, err, errlen);
}

/* The last line when the process is gone. */
static void gone_line(FILE *out, const struct lw_report *r)
{
	if (r->live == LW_LIVE_EXITED && r->snap.hdr.exit_known)
		fprintf(out, "leakwatch: pid %d exited with status %d\n", r->snap.hdr.pid, r->snap.hdr.exit_status);
	else if (r->live == LW_LIVE_EXECED)
		fprintf(out, "leakwatch: pid %d replaced its image (exec); run top again for the new one\n",
			r->snap.hdr.pid);
	else
		fprintf(out, "leakwatch: pid %d exited\n", r->snap.hdr.pid);
}

static void plain_print(struct top_state *t, struct lw_report *r, unsigned long n)
{
	char l1[512], l2[512], l3[256];
	struct row *rows;
	header_lines(t, r, l1, sizeof l1, l2, sizeof l2, l3, sizeof l3);
	size_t nrows = rows_build(t, r, &rows);
	if (n > 1)
		fputc('\n', stdout);
	printf("%s  snapshot %lu\n%s\n%s\n%s\n", l1, n, l2, l3, col_header);
	for (size_t i = 0; i < nrows; i++)
		printf("%s\n", rows[i].text);
	if (nrows == 0)
		printf("(nothing open)\n");
	free(rows);
	fflush(stdout);
	history_forget(t);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (!g_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int run_plain(struct top_state *t)
{
	char err[LW_ERR_MAX];
	for (unsigned long n = 1; !g_stop; n++) {
		struct lw_report r;
		if (report_take(t, &r, err, sizeof err) < 0) {
			fprintf(stderr, "leakwatch: %s: %s\n", t->path, err);
			return LW_EXIT_ERROR;
		}
		int ended = lw_report_ended(&r);
		if (!ended || n == 1)
			plain_print(t, &r, n);
		if (ended) {
			gone_line(stdout, &r);
			lw_report_free(&r);
			return 0;
		}
		lw_report_free(&r);
		if (t->o.count && n >= (unsigned long)t->o.count)
			break;
		sleep_ns(t->o.interval_ns);
	}
	return 0;
}

/* ---- full screen ------------------------------------------------------------ */

static void screen_draw(struct top_state *t, struct lw_report *r, struct row *rows, size_t nrows)
{
	char l1[512], l2[512], l3[256];
	erase();
	header_lines(t, r, l1, sizeof l1, l2, sizeof l2, l3, sizeof l3);
	mvaddnstr(0, 0, l1, COLS);
	mvaddnstr(1, 0, l2, COLS);
	mvaddnstr(2, 0, l3, COLS);
	attron(A_REVERSE);
	mvaddnstr(3, 0, col_header, COLS);
	for (int x = (int)strlen(col_header); x < COLS; x++)
		mvaddch(3, x, ' ');
	attroff(A_REVERSE);
	int y = 4;
	for (size_t i = 0; i < nrows && y < LINES - 1; i++, y++) {
		int bold = rows[i].g && rows[i].g->verdict == LW_V_LEAK_SUSPECT;
		if (bold)
			attron(A_BOLD);
		mvaddnstr(y, 0, rows[i].text, COLS);
		if (bold)
			attroff(A_BOLD);
	}
	if (nrows == 0)
		mvaddnstr(4, 0, "(nothing open)", COLS);
	mvaddnstr(LINES - 1, 0, "q quit  s sort  g group by open/use  k kind", COLS);
	refresh();
}

static int run_screen(struct top_state *t)
{
	char err[LW_ERR_MAX];
	struct lw_report r;
	if (report_take(t, &r, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", t->path, err);
		return LW_EXIT_ERROR;
	}
	if (!initscr()) {
		lw_report_free(&r);
		fprintf(stderr, "leakwatch: top: cannot initialise the terminal (try --plain)\n");
		return LW_EXIT_ERROR;
	}
	g_curses = 1;
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	struct row *rows = NULL;
	size_t nrows = rows_build(t, &r, &rows);
	int rc = 0;
	unsigned long shown = 1;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		if (lw_report_ended(&r)) {
			curses_end();
			gone_line(stdout, &r);
			break;
		}
		screen_draw(t, &r, rows, nrows);
		if (t->o.count && shown >= (unsigned long)t->o.count)
			break;
		/* Wait for a key until the next refresh is due. */
		next.tv_sec += (time_t)(t->o.interval_ns / 1000000000ull);
		next.tv_nsec += (long)(t->o.interval_ns % 1000000000ull);
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		int refresh_now = 0, regroup = 0;
		while (!g_stop && !refresh_now) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (long)(next.tv_sec - now.tv_sec) * 1000 + (next.tv_nsec - now.tv_nsec) / 1000000;
			if (ms <= 0)
				break;
			timeout((int)(ms > 1000000 ? 1000000 : ms));
			int c = getch();
			if (c == ERR)
				continue;
			if (c == 'q' || c == 'Q') {
				g_stop = 1;
			} else if (c == 's') {
				t->sort = (t->sort + 1) % SORT_N;
				refresh_now = 1;
			} else if (c == 'g') {
				t->o.by = t->o.by == LW_BY_OPEN ? LW_BY_USE : LW_BY_OPEN;
				regroup = refresh_now = 1;
			} else if (c == 'k') {
				t->kind = t->kind == LW_KIND_ALL ? LW_KIND_SOCKETS : t->kind == LW_KIND_SOCKETS ? LW_KIND_HEAP
												     : LW_KIND_ALL;
				regroup = refresh_now = 1;
			} else if (c == KEY_RESIZE) {
				screen_draw(t, &r, rows, nrows);
			}
		}
		if (g_stop)
			break;
		if (refresh_now && !regroup) {
			/* sort change: same data, new order (no history sample) */
			free(rows);
			t->tick--;
			nrows = rows_build(t, &r, &rows);
			t->tick++;
			continue;
		}
		lw_report_free(&r);
		if (report_take(t, &r, err, sizeof err) < 0) {
			curses_end();
			free(rows);
			fprintf(stderr, "leakwatch: %s: %s\n", t->path, err);
			return LW_EXIT_ERROR;
		}
		free(rows);
		nrows = rows_build(t, &r, &rows);
		history_forget(t);
		shown++;
		if (regroup)
			clock_gettime(CLOCK_MONOTONIC, &next);
	}
	curses_end();
	free(rows);
	lw_report_free(&r);
	return rc;
}

static int once_set(void *opts, const char *arg)
{
	struct top_options *o = opts;
	o->plain = 1;
	o->count = 1;
	return 0;
}

static const struct lw_option top_options_table[] = {
	{ "interval", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(struct top_options, interval_ns), "DUR",
	  "refresh period (default 1s, at least 10ms)", 10000000ll, 0, 0, "bad --interval '*' (at least 10ms)", NULL },
	LW_OPT_IDLE_FOR(struct top_options, idle_for_ns),
	LW_OPT_BY_(struct top_options, by),
	{ "plain", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct top_options, plain), NULL,
	  "plain-text snapshots instead of the full screen", 0, 0, 0, NULL, NULL },
	{ "once", LW_OPT_CUSTOM, LW_ARG_NONE, 0, NULL, "one plain-text snapshot (--plain --count 1)", 0, 0, 0, NULL,
	  once_set },
	{ "count", LW_OPT_INT, LW_ARG_REQUIRED, offsetof(struct top_options, count), "N",
	  "stop after N snapshots (default 1 when not a tty)", 1, 2147483647ll, 0, "bad --count '*' (a positive number)", NULL },
};

const struct lw_command_spec lw_top_spec = { "top", LW_CMD_ONE_ARG, "PID", top_options_table,
					     sizeof top_options_table / sizeof top_options_table[0] };

int lw_top_main(int argc, char **argv)
{
	struct top_state t;
	memset(&t, 0, sizeof t);
	t.o.interval_ns = 1000000000ull;
	t.o.idle_for_ns = LW_IDLE_FOR_DEFAULT_NS;
	t.o.by = LW_BY_OPEN;
	t.kind = LW_KIND_ALL;
	const char *target = NULL;
	if (lw_options_parse(&lw_top_spec, &t.o, argc, argv, &target) < 0)
		return LW_EXIT_USAGE;
	char path[PATH_MAX], err[LW_ERR_MAX];
	if (lw_segment_resolve(target, path, sizeof path, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", target, err);
		return LW_EXIT_ERROR;
	}
	t.path = path;
	int tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
	if (!tty)
		t.o.plain = 1;
	if (!t.o.count && !tty)
		t.o.count = 1;

	col_header_init();
	setlocale(LC_ALL, "");
	const char *cs = nl_langinfo(CODESET);
	t.utf8 = cs && strcmp(cs, "UTF-8") == 0;

	/* Our handlers before initscr(): ncurses then leaves SIGINT/SIGTERM to us. */
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	atexit(curses_end);
	g_stop = 0;

	int rc = t.o.plain ? run_plain(&t) : run_screen(&t);
	curses_end();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	free(t.hist);
	free(t.hidx);
	return rc;
}
