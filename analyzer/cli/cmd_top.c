/* SPDX-License-Identifier: MIT */
/*
 * cmd_top.c — `leakwatch top PID`: the report, refreshed.
 *
 * Every --interval (default 1s) the segment is snapshotted, joined with the
 * kernel and judged exactly as `report` does; each row is a group with its
 * verdict, count, endpoint, oldest age, most recent I/O, a sparkline of its
 * count over the last TOP_HISTORY refreshes and where it comes from.
 *
 * Full screen (ncursesw) when stdout is a terminal; plain-text snapshots
 * otherwise or with --plain/--once (what tests and pipes see).  The screen
 * is restored on every way out: q, SIGINT/SIGTERM (the handlers only set a
 * flag; getch() returns on the interrupted wait), and an atexit() guard for
 * anything else.  Resizes arrive as KEY_RESIZE and redraw from the last data.
 * Only plain ASCII unless the locale is UTF-8 (then the sparkline uses block
 * characters and cut text ends in an ellipsis), so it works over any ssh.
 *
 * Width.  Every cell is measured in display columns (mbrtowc + wcwidth under
 * the locale), never in bytes, and cut only between characters: a sparkline
 * of 3-byte block characters takes exactly one column per sample.  Bytes that
 * are no character of the locale, and unprintable characters, show as '?'.
 *
 * Columns (layout_compute), from the most to the least important:
 * VERDICT and COUNT always; WHERE and WHAT (the endpoint) next, each kept at
 * up to its "want" width (32 and 24 columns) before anything optional; then
 * IDLE, then AGE, then HISTORY (6 to TOP_HISTORY samples, the newest).  So a
 * narrowing screen first shortens and then drops the sparkline, then drops
 * AGE, then IDLE; below that WHAT gives way down to 10 columns, then WHERE
 * down to 12, then WHAT goes.  Room left over widens WHERE to its longest
 * text, then WHAT to its longest endpoint, then the sparkline to
 * TOP_HISTORY samples, then WHERE to the edge.  --plain lays out the same way for
 * --width, the terminal's width, $COLUMNS or 120 (the first known).
 *
 * WHERE names a group by one frame of its stack: the frame of the
 * program's own code that decided to open or keep the socket (lw_site_pick;
 * the rule is in site.h, shared with the exporter's site labels).  The text
 * report prints whole stacks and needs no such choice; top has one cell.
 *
 * Keys: Up/Down or j/k move the selection, PgUp/PgDn/Home/End; Enter opens
 * the selected group's details (the group as the text report prints it:
 * head line, evidence, fds, both stacks), Esc/q/Left go back; s sort, g
 * open/use grouping, K kind filter, ? help, q quit.  When the process exits
 * the last screen stays, the status line says "process exited (status N)"
 * and top waits for q; --plain prints a last line, as before.
 */
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "cli.h"
#include "heapgroups.h"
#include "options.h"
#include "names.h"
#include "present.h"
#include "render.h"
#include "report.h"
#include "segdir.h"
#include "site.h"
#include "testing.h"

#define TOP_HISTORY 30
#define TOP_HISTORY_MIN 6      /* fewer samples than this say nothing: drop the column */
#define TOP_KEY_MAX (LW_ENDPOINT_MAX + 96)
#define TOP_FORGET 60          /* refreshes a vanished group's history is kept */
#define TOP_WIDTH_DEFAULT 120  /* --plain without a terminal, --width or $COLUMNS */
#define TOP_WIDTH_MAX 4096

/* Defaults of `top`; each field is one option. */
struct top_options {
	uint64_t interval_ns;           /* --interval DUR: refresh period */
	uint64_t idle_for_ns;           /* --idle-for DUR: as for report */
	enum lw_group_by by;            /* --by open|use (g toggles) */
	int plain;                      /* --plain / --once: text snapshots, no full screen */
	int count;                      /* --count N / --once: stop after N snapshots (0: until q,
	                                   or 1 when stdout is not a terminal) */
	int width;                      /* --width N: --plain's line width, 0 no limit (-1: the
	                                   terminal's, else $COLUMNS, else TOP_WIDTH_DEFAULT) */
};

enum top_sort { SORT_COUNT = 0, SORT_AGE, SORT_IDLE, SORT_N };
static const char *const sort_names[SORT_N] = { "count", "age", "idle" };

struct history {
	char key[TOP_KEY_MAX];
	int v[TOP_HISTORY];
	size_t n;                       /* samples stored (<= TOP_HISTORY), oldest first */
	unsigned long seen;             /* refresh number of the last sample */
};

/* The columns, in screen order. */
enum col { C_VERDICT = 0, C_COUNT, C_WHAT, C_AGE, C_IDLE, C_HIST, C_WHERE, NCOL };

struct row {
	const struct lw_group *g;       /* NULL: heap row */
	const struct lw_heap_group *hg;
	size_t idx;
	char key[TOP_KEY_MAX];          /* the selection follows it across refreshes */
	char verdict[16], count[32], what[LW_ENDPOINT_MAX + 32], age[32], idle[32], where[256];
	int hist[TOP_HISTORY];          /* count history, oldest first */
	size_t nhist;
};

enum top_mode { MODE_LIST = 0, MODE_DETAIL };

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
	struct lw_site_graph cg;
	/* full screen */
	enum top_mode mode;
	int help;                       /* the help overlay is up */
	size_t sel, first;              /* selected row, first row shown */
	char sel_key[TOP_KEY_MAX];
	char **detail;                  /* the detail view's lines (malloc'd) */
	size_t ndetail;
	int detail_top;                 /* first detail line shown */
	int detail_gone;                /* the group is no longer in the report */
	char ended[160];                /* non-empty: no more refreshes (the process ended) */
	char flash[160];                /* a one-draw message on the status line */
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

/* ---- display columns ------------------------------------------------------ */

/*
 * One character of s at *p: its bytes (*len) and display columns; bytes that
 * are no character of the locale, and unprintable characters, are one
 * column shown as '?' (*bad).
 */
static int char_next(const char *p, size_t *len, int *bad, mbstate_t *st)
{
	wchar_t wc;
	size_t n = mbrtowc(&wc, p, MB_CUR_MAX, st);
	*bad = 0;
	if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
		memset(st, 0, sizeof *st);
		*len = 1;
		*bad = 1;
		return 1;
	}
	int w = wcwidth(wc);
	*len = n;
	if (w < 0) {
		*bad = 1;
		return 1;
	}
	return w;
}

/* text_cols - display columns of s under the current locale. */
static int text_cols(const char *s)
{
	mbstate_t st;
	int cols = 0, bad;
	size_t len;
	memset(&st, 0, sizeof st);
	for (const char *p = s; *p; p += len)
		cols += char_next(p, &len, &bad, &st);
	return cols;
}

/*
 * text_fit - s as exactly `cols` display columns into dst (cap bytes, NUL
 * included): cut between characters, the cut marked with an ellipsis ("…"
 * in UTF-8, "..." or "~" otherwise), padded with blanks on the right (on the
 * left when right), unless nopad.  Returns the bytes written; a dst too
 * small for it gets fewer columns, never a broken character.
 */
static size_t text_fit(char *dst, size_t cap, const char *s, int cols, int right, int nopad, int utf8)
{
	size_t k = 0;
	if (cap == 0)
		return 0;
	dst[0] = '\0';
	if (cols <= 0)
		return 0;
	int total = text_cols(s), room = cols;
	const char *ell = "";
	int ellw = 0;
	if (total > cols) {
		ell = utf8 ? "\u2026" : cols >= 8 ? "..." : "~";
		ellw = utf8 ? 1 : (int)strlen(ell);
		room = cols - ellw;
	}
	int used = 0;
	if (right && total < cols && !nopad)
		for (; used < cols - total && k + 1 < cap; used++)
			dst[k++] = ' ';
	mbstate_t st;
	memset(&st, 0, sizeof st);
	int w = 0, bad;
	size_t len;
	for (const char *p = s; *p; p += len) {
		int cw = char_next(p, &len, &bad, &st);
		if (w + cw > room)
			break;
		size_t need = bad ? 1 : len;
		if (k + need + 1 > cap)
			break;
		if (bad)
			dst[k++] = '?';
		else
			memcpy(dst + k, p, len), k += len;
		w += cw;
	}
	used += w;
	if (ellw && k + strlen(ell) + 1 <= cap) {
		memcpy(dst + k, ell, strlen(ell));
		k += strlen(ell);
		used += ellw;
	}
	/* a wide character that did not fit leaves a column to pad */
	for (; !nopad && used < cols && k + 1 < cap; used++)
		dst[k++] = ' ';
	dst[k] = '\0';
	return k;
}

/* A line being assembled, growing as needed (cells may be many bytes a column). */
struct line {
	char *s;
	size_t len, cap;
};

static void line_cell(struct line *l, const char *s, int cols, int right, int nopad, int utf8)
{
	/* at most 4 bytes a column in UTF-8, plus the padding and the ellipsis */
	size_t want = l->len + strlen(s) + (size_t)(cols > 0 ? cols : 0) + 8;
	if (want > l->cap) {
		size_t nc = want * 2;
		char *ns = realloc(l->s, nc);
		if (!ns)
			return;
		l->s = ns;
		l->cap = nc;
	}
	l->len += text_fit(l->s + l->len, l->cap - l->len, s, cols, right, nopad, utf8);
}

static void line_rstrip(struct line *l)
{
	while (l->len && l->s[l->len - 1] == ' ')
		l->s[--l->len] = '\0';
}

/* Sparkline of the newest `cells` samples of v[0..n) into buf, one column a
 * sample, scaled from 0 to their maximum. */
static void sparkline(const int *v, size_t n, size_t cells, int utf8, char *buf, size_t len)
{
	static const char *const blocks[] = { "\u2581", "\u2582", "\u2583", "\u2584",
					      "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii[] = "_.-:=+*#";
	size_t from = n > cells ? n - cells : 0, k = 0;
	int max = 0;
	buf[0] = '\0';
	for (size_t i = from; i < n; i++)
		if (v[i] > max)
			max = v[i];
	for (size_t i = from; i < n; i++) {
		int lvl = max ? (int)((long)v[i] * 7 / max) : 0;
		char one[2] = { ascii[lvl], '\0' };
		const char *c = utf8 ? blocks[lvl] : one;
		size_t bl = strlen(c);
		if (k + bl + 1 > len)
			break;
		memcpy(buf + k, c, bl);
		k += bl;
		buf[k] = '\0';
	}
}

/* ---- WHERE: the program's own frame that matters ------------------------------ */

/* "fn file.c:12" for the frame that names the stack (lw_site_pick); "?" unknown, "-" none. */
static void where(struct top_state *t, struct lw_report *r, uint32_t stack_id, char *buf, size_t len)
{
	struct lw_frame frames[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, frames, LW_PRESENT_MAX_FRAMES);
	const struct lw_frame *f = lw_site_pick(&t->cg, frames, n);
	if (!f) {
		snprintf(buf, len, "%s", stack_id ? "?" : "-");
		return;
	}
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

/* ---- rows ------------------------------------------------------------------ */

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

/* The cells of every row of a report; returns the count (rows malloc'd into *out). */
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
			char loc[200];
			w->g = g;
			w->idx = n++;
			group_key(g, w->key, sizeof w->key);
			struct history *h = history_get(t, w->key);
			if (h) {
				history_push(h, (int)g->count, t->tick);
				memcpy(w->hist, h->v, h->n * sizeof *h->v);
				w->nhist = h->n;
			}
			snprintf(w->verdict, sizeof w->verdict, "%s", lw_verdict_title(g->verdict));
			snprintf(w->count, sizeof w->count, "%zu", g->count);
			lw_present_group(g, LW_DESCRIBE_SHORT, w->what, sizeof w->what);
			lw_duration_format(g->age_max_ns, w->age, sizeof w->age);
			if (g->verdict == LW_V_LISTENING || g->verdict == LW_V_LEFT_OPEN)
				snprintf(w->idle, sizeof w->idle, "-");
			else
				lw_duration_format(g->ev.idle_min_ns, w->idle, sizeof w->idle);
			int use_first = lw_present_use_first(g);
			where(t, r, use_first ? g->use_stack_id : g->stack_id, loc, sizeof loc);
			snprintf(w->where, sizeof w->where, "%s %s", use_first ? "used" : "opened",
				 g->inherited ? "(inherited)" : loc);
		}
	if (lw_kind_heap(t->kind) && r->heap.mode != LW_HEAP_OFF)
		for (size_t i = 0; i < r->heap.ngroups && n < cap; i++) {
			const struct lw_heap_group *hg = &r->heap.groups[i];
			if (hg->cls != LW_HEAP_PROGRAM)
				continue;
			struct row *w = &rows[n];
			char b[32], loc[200];
			w->hg = hg;
			w->idx = n++;
			snprintf(w->key, sizeof w->key, "heap|%u", hg->stack_id);
			snprintf(w->verdict, sizeof w->verdict, "HEAP");
			snprintf(w->count, sizeof w->count, "%s%.0f", r->heap.estimated ? "~" : "", hg->blocks);
			snprintf(w->what, sizeof w->what, "heap %s", lw_bytes_format(hg->bytes, b, sizeof b));
			lw_duration_format(hg->age_max_ns, w->age, sizeof w->age);
			snprintf(w->idle, sizeof w->idle, "-");
			where(t, r, hg->stack_id, loc, sizeof loc);
			snprintf(w->where, sizeof w->where, "allocated %s", loc);
		}
	row_cmp_sort = t->sort;
	qsort(rows, n, sizeof *rows, row_cmp);
	return n;
}

/* ---- layout ----------------------------------------------------------------- */

/* Blanks before each column (when shown and not the first), and the alignment. */
static const int col_gap[NCOL] = { 0, 1, 2, 1, 1, 2, 2 };
static const int col_right[NCOL] = { 0, 1, 0, 1, 1, 0, 0 };
static const char *const col_title[NCOL] = { "VERDICT", "COUNT", "WHAT", "AGE", "IDLE", "HISTORY (count)",
					     "WHERE" };

struct layout {
	int w[NCOL];                    /* columns of each; 0: not shown */
};

static int imin(int a, int b)
{
	return a < b ? a : b;
}

static int imax(int a, int b)
{
	return a > b ? a : b;
}

/* layout_compute - the columns for a line of `width` (0: no limit) over rows (the order at the top). */
static void layout_compute(struct layout *L, int width, const struct row *rows, size_t n)
{
	int what_nat = text_cols(col_title[C_WHAT]), where_nat = text_cols(col_title[C_WHERE]);
	for (size_t i = 0; i < n; i++) {
		what_nat = imax(what_nat, text_cols(rows[i].what));
		where_nat = imax(where_nat, text_cols(rows[i].where));
	}
	memset(L, 0, sizeof *L);
	L->w[C_VERDICT] = 12;
	L->w[C_COUNT] = 6;
	if (width <= 0) {
		L->w[C_WHAT] = what_nat;
		L->w[C_AGE] = L->w[C_IDLE] = 8;
		L->w[C_HIST] = TOP_HISTORY;
		L->w[C_WHERE] = where_nat;
		return;
	}
	int rest = width - L->w[C_VERDICT] - col_gap[C_COUNT] - L->w[C_COUNT];
	int what_want = imin(what_nat, 24), where_want = imin(where_nat, 32);
	int avail = rest - col_gap[C_WHAT] - col_gap[C_WHERE];
	if (avail >= what_want + where_want) {
		int left = avail - what_want - where_want;
		L->w[C_WHAT] = what_want;
		L->w[C_WHERE] = where_want;
		if (left >= col_gap[C_IDLE] + 8) {
			L->w[C_IDLE] = 8;
			left -= col_gap[C_IDLE] + 8;
		}
		if (left >= col_gap[C_AGE] + 8) {
			L->w[C_AGE] = 8;
			left -= col_gap[C_AGE] + 8;
		}
		if (left >= col_gap[C_HIST] + TOP_HISTORY_MIN) {
			L->w[C_HIST] = TOP_HISTORY_MIN;
			left -= col_gap[C_HIST] + TOP_HISTORY_MIN;
		}
		/* what is left: WHERE in full, the endpoint in full, a longer history, the edge */
		int grow = imin(left, where_nat - L->w[C_WHERE]);
		L->w[C_WHERE] += grow;
		left -= grow;
		grow = imin(left, what_nat - L->w[C_WHAT]);
		L->w[C_WHAT] += grow;
		left -= grow;
		if (L->w[C_HIST]) {
			grow = imin(left, TOP_HISTORY - L->w[C_HIST]);
			L->w[C_HIST] += grow;
			left -= grow;
		}
		L->w[C_WHERE] += left;
		return;
	}
	/* narrow: WHAT gives way down to 10 columns, then WHERE down to 12, then WHAT goes */
	if (avail - where_want >= imin(10, what_want)) {
		L->w[C_WHAT] = avail - where_want;
		L->w[C_WHERE] = where_want;
	} else if (avail - 10 >= 12) {
		L->w[C_WHAT] = 10;
		L->w[C_WHERE] = avail - 10;
	} else {
		L->w[C_WHERE] = imax(rest - col_gap[C_WHERE], 1);
	}
}

/*
 * layout_line - one row (r) or the column titles (r NULL) laid out by L into
 * l, cut at `width` columns (0: no limit).  The last column is not padded.
 */
static void layout_line(const struct layout *L, const struct row *r, int utf8, int width, struct line *l)
{
	char spark[TOP_HISTORY * 4 + 1];
	int used = 0, last = C_WHERE;
	l->len = 0;
	if (l->s)
		l->s[0] = '\0';
	for (int c = 0; c < NCOL; c++) {
		if (!L->w[c])
			continue;
		int gap = used ? col_gap[c] : 0, w = L->w[c];
		if (width > 0 && used + gap >= width)
			break;
		if (width > 0 && used + gap + w > width)
			w = width - used - gap;
		const char *s;
		if (!r)
			s = col_title[c];
		else if (c == C_HIST) {
			sparkline(r->hist, r->nhist, (size_t)L->w[C_HIST], utf8, spark, sizeof spark);
			s = spark;
		} else {
			const char *cells[NCOL] = { r->verdict, r->count, r->what, r->age, r->idle, NULL, r->where };
			s = cells[c];
		}
		if (gap)
			line_cell(l, "", gap, 0, 0, utf8);
		line_cell(l, s, w, col_right[c], c == last, utf8);
		used += gap + w;
	}
}

/* Fit s (a header or a detail line) to width columns (0: as it is) into l. */
static void line_text(struct line *l, const char *s, int width, int utf8)
{
	l->len = 0;
	if (l->s)
		l->s[0] = '\0';
	line_cell(l, s, width > 0 ? width : text_cols(s), 0, 1, utf8);
}

/* ---- the header, a snapshot ---------------------------------------------------- */

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

static int report_take(struct top_state *t, struct lw_report *r, char *err, size_t errlen)
{
	struct lw_report_opts ro = { .kind = t->kind == LW_KIND_SOCKETS ? LW_KIND_SOCKETS : LW_KIND_ALL,
				     .format = LW_FMT_TEXT, .idle_for_ns = t->o.idle_for_ns, .by = t->o.by };
	t->tick++;
	if (lw_report_build(r, t->path, &ro, err, errlen) < 0)
		return -1;
	lw_site_graph_update(&t->cg, r);
	return 0;
}

/* What became of the process, for the status line or the last plain line ("" while it runs). */
static void gone_text(const struct lw_report *r, char *buf, size_t len)
{
	if (r->live == LW_LIVE_EXITED && r->snap.hdr.exit_known)
		snprintf(buf, len, "process exited (status %d)", r->snap.hdr.exit_status);
	else if (r->live == LW_LIVE_EXECED)
		snprintf(buf, len, "process replaced its image (exec); run top again for the new one");
	else if (r->live == LW_LIVE_EXITED)
		snprintf(buf, len, "process exited");
	else if (lw_report_ended(r))
		snprintf(buf, len, "process ended (killed: no exit status)");
	else
		buf[0] = '\0';
}

/* The last line when the process is gone, without its newline. */
static void gone_line(const struct lw_report *r, char *buf, size_t len)
{
	if (r->live == LW_LIVE_EXITED && r->snap.hdr.exit_known)
		snprintf(buf, len, "leakwatch: pid %d exited with status %d", r->snap.hdr.pid, r->snap.hdr.exit_status);
	else if (r->live == LW_LIVE_EXECED)
		snprintf(buf, len, "leakwatch: pid %d replaced its image (exec); run top again for the new one",
			 r->snap.hdr.pid);
	else
		snprintf(buf, len, "leakwatch: pid %d exited", r->snap.hdr.pid);
}

/* The line width --plain lays out for: --width, the terminal's, $COLUMNS, TOP_WIDTH_DEFAULT. */
static int plain_width(const struct top_state *t)
{
	if (t->o.width >= 0)
		return t->o.width;
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	char *end;
	long v = c ? strtol(c, &end, 10) : 0;
	if (c && *c && *end == '\0' && v > 0 && v <= TOP_WIDTH_MAX)
		return (int)v;
	return TOP_WIDTH_DEFAULT;
}

static void plain_print(struct top_state *t, struct lw_report *r, unsigned long n)
{
	char l1[512], l2[512], l3[256], h1[600];
	struct row *rows;
	struct line l = { 0 };
	struct layout L;
	int width = plain_width(t);
	header_lines(t, r, l1, sizeof l1, l2, sizeof l2, l3, sizeof l3);
	size_t nrows = rows_build(t, r, &rows);
	layout_compute(&L, width, rows, nrows);
	if (n > 1)
		fputc('\n', stdout);
	snprintf(h1, sizeof h1, "%s  snapshot %lu", l1, n);
	const char *heads[] = { h1, l2, l3 };
	for (int i = 0; i < 3; i++) {
		line_text(&l, heads[i], width, t->utf8);
		printf("%s\n", l.s ? l.s : "");
	}
	layout_line(&L, NULL, t->utf8, width, &l);
	line_rstrip(&l);
	printf("%s\n", l.s ? l.s : "");
	for (size_t i = 0; i < nrows; i++) {
		layout_line(&L, &rows[i], t->utf8, width, &l);
		line_rstrip(&l);
		printf("%s\n", l.s ? l.s : "");
	}
	if (nrows == 0)
		printf("(nothing open)\n");
	free(l.s);
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
			char last[160];
			gone_line(&r, last, sizeof last);
			printf("%s\n", last);
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

/* Draw s at row y, cut at the screen's width (the last row one short: the
 * bottom-right cell would scroll some terminals). */
static void put_line(struct top_state *t, struct line *l, int y, const char *s)
{
	line_text(l, s, y == LINES - 1 ? COLS - 1 : COLS, t->utf8);
	mvaddstr(y, 0, l->s ? l->s : "");
}

static void detail_free(struct top_state *t)
{
	for (size_t i = 0; i < t->ndetail; i++)
		free(t->detail[i]);
	free(t->detail);
	t->detail = NULL;
	t->ndetail = 0;
}

/* The selected group as the text report prints it, one line an entry; the
 * old lines stay when it is gone (or without memory). */
static void detail_build(struct top_state *t, struct lw_report *r, const struct row *rows, size_t nrows)
{
	const struct row *w = NULL;
	for (size_t i = 0; i < nrows && !w; i++)
		if (!strcmp(rows[i].key, t->sel_key))
			w = &rows[i];
	t->detail_gone = w == NULL;
	if (!w)
		return;
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m)
		return;
	if (w->g)
		lw_render_text_sock_group(m, r, w->g);
	else
		lw_render_text_heap_group(m, r, w->hg);
	fprintf(m, "  top's WHERE %s\n", w->where);
	if (fclose(m) != 0) {
		free(text);
		return;
	}
	size_t n = 0;
	for (const char *p = text; *p; p++)
		n += *p == '\n';
	char **lines = calloc(n + 1, sizeof *lines);
	if (!lines) {
		free(text);
		return;
	}
	size_t k = 0;
	for (char *p = text, *nl; *p && k <= n; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p) - 1;
		else
			*nl = '\0';
		lines[k] = strdup(p);
		if (!lines[k])
			break;
		lw_present_scrub(lines[k]);
		k++;
	}
	free(text);
	detail_free(t);
	t->detail = lines;
	t->ndetail = k;
}

static const char *const help_lines[] = {
	"leakwatch top: keys",
	"",
	"Up/Down  j/k    move the selection",
	"PgUp/PgDn       a screen up/down",
	"Home/End        first/last group",
	"Enter           the selected group's details:",
	"                evidence, fds, opened at and",
	"                last used at stacks",
	"Esc  q  Left    back from the details or this help",
	"s               sort by count, age, idle",
	"g               group by the opening or last-use stack",
	"K               kind: all, sockets, heap",
	"?               this help",
	"q               quit (also after the process exited)",
	"",
	"WHERE: the program's own function that opened",
	"or last used the group (not a shared helper)",
};

static void help_draw(struct top_state *t, struct line *l)
{
	int n = (int)(sizeof help_lines / sizeof help_lines[0]), w = 0;
	for (int i = 0; i < n; i++)
		w = imax(w, text_cols(help_lines[i]));
	int bw = imin(w + 4, COLS), bh = imin(n + 2, LINES - 1);
	int x0 = imax((COLS - bw) / 2, 0), y0 = imax((LINES - 1 - bh) / 2, 0);
	if (bw < 3 || bh < 3)
		return;
	for (int y = y0; y < y0 + bh; y++)
		mvhline(y, x0, ' ', bw);
	mvhline(y0, x0 + 1, ACS_HLINE, bw - 2);
	mvhline(y0 + bh - 1, x0 + 1, ACS_HLINE, bw - 2);
	mvvline(y0 + 1, x0, ACS_VLINE, bh - 2);
	mvvline(y0 + 1, x0 + bw - 1, ACS_VLINE, bh - 2);
	mvaddch(y0, x0, ACS_ULCORNER);
	mvaddch(y0, x0 + bw - 1, ACS_URCORNER);
	mvaddch(y0 + bh - 1, x0, ACS_LLCORNER);
	mvaddch(y0 + bh - 1, x0 + bw - 1, ACS_LRCORNER);
	for (int i = 0; i < n && i < bh - 2; i++) {
		line_text(l, help_lines[i], bw - 4, t->utf8);
		if (i == 0)
			attron(A_BOLD);
		mvaddstr(y0 + 1 + i, x0 + 2, l->s ? l->s : "");
		if (i == 0)
			attroff(A_BOLD);
	}
}

/* Rows that fit between the column titles (row 3) and the status line. */
static int list_rows(void)
{
	return imax(LINES - 5, 0);
}

static void status_draw(struct top_state *t, struct line *l)
{
	char s[400];
	if (t->ended[0])
		snprintf(s, sizeof s, "%s%s%s - last screen kept; q quit  ? help", t->flash, t->flash[0] ? "  " : "",
			 t->ended);
	else if (t->flash[0])
		snprintf(s, sizeof s, "%s", t->flash);
	else if (t->mode == MODE_DETAIL)
		snprintf(s, sizeof s, "Esc/q back  Up/Down scroll  ? help");
	else
		snprintf(s, sizeof s, "q quit  ? help  Enter details  Up/Down select  s sort  g group by open/use  K kind");
	int a = t->ended[0] ? A_REVERSE | A_BOLD : A_NORMAL;
	attron(a);
	put_line(t, l, LINES - 1, s);
	attroff(a);
	t->flash[0] = '\0';
}

/* The selection follows its group's key; else it stays at its place. */
static void select_fix(struct top_state *t, const struct row *rows, size_t nrows)
{
	for (size_t i = 0; i < nrows; i++)
		if (!strcmp(rows[i].key, t->sel_key)) {
			t->sel = i;
			return;
		}
	if (nrows == 0) {
		t->sel = 0;
		t->sel_key[0] = '\0';
		return;
	}
	if (t->sel >= nrows)
		t->sel = nrows - 1;
	snprintf(t->sel_key, sizeof t->sel_key, "%s", rows[t->sel].key);
}

static void screen_draw(struct top_state *t, struct lw_report *r, struct row *rows, size_t nrows)
{
	char l1[512], l2[512], l3[256];
	struct line l = { 0 };
	erase();
	header_lines(t, r, l1, sizeof l1, l2, sizeof l2, l3, sizeof l3);
	if (t->mode == MODE_DETAIL) {
		detail_build(t, r, rows, nrows);
		char title[160];
		snprintf(title, sizeof title, "details%s  (%zu line%s)", t->detail_gone ? " (no longer open: as last seen)" : "",
			 t->ndetail, t->ndetail == 1 ? "" : "s");
		put_line(t, &l, 0, l1);
		attron(A_REVERSE);
		put_line(t, &l, 1, title);
		attroff(A_REVERSE);
		int h = imax(LINES - 3, 0);
		if (t->detail_top > (int)t->ndetail - h)
			t->detail_top = imax((int)t->ndetail - h, 0);
		for (int i = 0; i < h && t->detail_top + i < (int)t->ndetail; i++)
			put_line(t, &l, 2 + i, t->detail[t->detail_top + i]);
	} else {
		struct layout L;
		layout_compute(&L, COLS, rows, nrows);
		put_line(t, &l, 0, l1);
		put_line(t, &l, 1, l2);
		put_line(t, &l, 2, l3);
		attron(A_REVERSE);
		layout_line(&L, NULL, t->utf8, COLS, &l);
		mvaddstr(3, 0, l.s ? l.s : "");
		for (int x = text_cols(l.s ? l.s : ""); x < COLS; x++)
			mvaddch(3, x, ' ');
		attroff(A_REVERSE);
		select_fix(t, rows, nrows);
		int h = list_rows();
		if (t->sel < t->first)
			t->first = t->sel;
		if (h > 0 && t->sel >= t->first + (size_t)h)
			t->first = t->sel - (size_t)h + 1;
		if (t->first > 0 && nrows - t->first < (size_t)h)
			t->first = nrows > (size_t)h ? nrows - (size_t)h : 0;
		for (int i = 0; i < h && t->first + (size_t)i < nrows; i++) {
			const struct row *w = &rows[t->first + (size_t)i];
			int a = (w->g && w->g->verdict == LW_V_LEAK_SUSPECT ? A_BOLD : 0) |
				(t->first + (size_t)i == t->sel ? A_REVERSE : 0);
			layout_line(&L, w, t->utf8, COLS, &l);
			attron(a);
			mvaddstr(4 + i, 0, l.s ? l.s : "");
			attroff(a);
		}
		if (nrows == 0)
			put_line(t, &l, 4, "(nothing open)");
	}
	if (t->help)
		help_draw(t, &l);
	status_draw(t, &l);
	free(l.s);
	refresh();
}

/* What a key asks the loop for. */
enum key_do { KEY_DO_DRAW = 0, KEY_DO_RESORT, KEY_DO_REGROUP, KEY_DO_QUIT };

static enum key_do key_handle(struct top_state *t, int c, size_t nrows)
{
	int page = imax(list_rows() - 1, 1);
	if (t->help) {
		if (c != KEY_RESIZE)
			t->help = 0;
		return KEY_DO_DRAW;
	}
	if (c == '?') {
		t->help = 1;
		return KEY_DO_DRAW;
	}
	if (c == 'Q')
		return KEY_DO_QUIT;
	if (t->mode == MODE_DETAIL) {
		int dpage = imax(LINES - 4, 1);
		switch (c) {
		case 27: case 'q': case KEY_LEFT: case 'h': case KEY_BACKSPACE: case 127:
			t->mode = MODE_LIST;
			break;
		case KEY_UP: case 'k': t->detail_top = imax(t->detail_top - 1, 0); break;
		case KEY_DOWN: case 'j': t->detail_top++; break;
		case KEY_PPAGE: t->detail_top = imax(t->detail_top - dpage, 0); break;
		case KEY_NPAGE: case ' ': t->detail_top += dpage; break;
		case KEY_HOME: t->detail_top = 0; break;
		case KEY_END: t->detail_top = INT_MAX / 2; break;
		default: goto common;
		}
		return KEY_DO_DRAW;
	}
	switch (c) {
	case 'q':
		return KEY_DO_QUIT;
	case KEY_UP: case 'k':
		if (t->sel > 0)
			t->sel--;
		break;
	case KEY_DOWN: case 'j':
		if (t->sel + 1 < nrows)
			t->sel++;
		break;
	case KEY_PPAGE: t->sel = t->sel > (size_t)page ? t->sel - (size_t)page : 0; break;
	case KEY_NPAGE:
		t->sel = nrows ? imin((int)(t->sel + (size_t)page), (int)nrows - 1) : 0;
		break;
	case KEY_HOME: t->sel = 0; break;
	case KEY_END: t->sel = nrows ? nrows - 1 : 0; break;
	case '\n': case '\r': case KEY_ENTER: case KEY_RIGHT: case 'l':
		if (nrows) {
			t->mode = MODE_DETAIL;
			t->detail_top = 0;
			detail_free(t);
		}
		return KEY_DO_DRAW;
	default:
		goto common;
	}
	t->sel_key[0] = '\0';   /* moved: select_fix takes the key of the new place */
	return KEY_DO_DRAW;
common:
	switch (c) {
	case 's':
		t->sort = (t->sort + 1) % SORT_N;
		return KEY_DO_RESORT;
	case 'g': case 'K':
		if (t->ended[0]) {
			snprintf(t->flash, sizeof t->flash, "%s: no new snapshot to regroup", c == 'g' ? "g" : "K");
			return KEY_DO_DRAW;
		}
		if (c == 'g')
			t->o.by = t->o.by == LW_BY_OPEN ? LW_BY_USE : LW_BY_OPEN;
		else
			t->kind = t->kind == LW_KIND_ALL ? LW_KIND_SOCKETS : t->kind == LW_KIND_SOCKETS ? LW_KIND_HEAP
											       : LW_KIND_ALL;
		return KEY_DO_REGROUP;
	}
	return KEY_DO_DRAW;
}

static void timespec_add(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec += (time_t)(ns / 1000000000ull);
	ts->tv_nsec += (long)(ns % 1000000000ull);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
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
	set_escdelay(50);       /* Esc closes the details: not after ncurses' default second */
	struct row *rows = NULL;
	size_t nrows = rows_build(t, &r, &rows);
	int rc = 0, failed = 0;
	unsigned long shown = 1;
	char last[160] = "";
	if (lw_report_ended(&r)) {
		gone_text(&r, t->ended, sizeof t->ended);
		gone_line(&r, last, sizeof last);
	}
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	timespec_add(&next, t->o.interval_ns);
	while (!g_stop) {
		screen_draw(t, &r, rows, nrows);
		if (t->o.count && shown >= (unsigned long)t->o.count)
			break;
		/* Wait for a key until the next refresh is due (after the end: for q). */
		enum key_do what = KEY_DO_DRAW;
		int due = 0, key = 0;
		while (!g_stop && !key && !due) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (long)(next.tv_sec - now.tv_sec) * 1000 + (next.tv_nsec - now.tv_nsec) / 1000000;
			if (t->ended[0])
				ms = 250;
			else if (ms <= 0) {
				due = 1;
				break;
			}
			timeout((int)(ms > 1000000 ? 1000000 : ms));
			int c = getch();
			if (c == ERR)
				continue;
			key = 1;
			what = key_handle(t, c, nrows);
		}
		if (g_stop || what == KEY_DO_QUIT)
			break;
		if (key && what == KEY_DO_DRAW)
			continue;
		if (what == KEY_DO_RESORT) {
			/* same data, new order (no history sample) */
			free(rows);
			t->tick--;
			nrows = rows_build(t, &r, &rows);
			t->tick++;
			continue;
		}
		struct lw_report nr;
		if (report_take(t, &nr, err, sizeof err) < 0) {
			/* keep the last screen and say why it stopped */
			snprintf(t->ended, sizeof t->ended, "cannot read the segment: %.100s", err);
			failed = 1;
			continue;
		}
		if (lw_report_ended(&nr)) {
			/* the last screen stays: it shows what the process held while it ran */
			gone_text(&nr, t->ended, sizeof t->ended);
			gone_line(&nr, last, sizeof last);
			lw_report_free(&nr);
			continue;
		}
		lw_report_free(&r);
		r = nr;
		free(rows);
		nrows = rows_build(t, &r, &rows);
		history_forget(t);
		shown++;
		clock_gettime(CLOCK_MONOTONIC, &next);
		timespec_add(&next, t->o.interval_ns);
	}
	curses_end();
	if (failed) {
		fprintf(stderr, "leakwatch: %s: %s\n", t->path, err);
		rc = LW_EXIT_ERROR;
	} else if (last[0]) {
		printf("%s\n", last);
	}
	free(rows);
	detail_free(t);
	lw_report_free(&r);
	return rc;
}

static int once_set(void *opts, const char *arg)
{
	struct top_options *o = opts;
	(void)arg;
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
	{ "width", LW_OPT_INT, LW_ARG_REQUIRED, offsetof(struct top_options, width), "N",
	  "plain-text line width in columns, 0 for no limit (default:\nthe terminal's, else $COLUMNS, else 120)",
	  0, TOP_WIDTH_MAX, 0, "bad --width '*' (0 to 4096 columns)", NULL },
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
	t.o.width = -1;
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
	lw_site_graph_free(&t.cg);
	return rc;
}
