/* SPDX-License-Identifier: MIT */
/*
 * report.c — the pipeline for one segment (snapshot -> kernel join ->
 * groups -> symbolizer -> heap groups), shared by `leakwatch report` and
 * `leakwatch run`, and the option words both commands accept.  With
 * --interval the first snapshot is taken, the report waits, and the second
 * snapshot is the one reported; the first only feeds growth evidence.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report.h"
#include "names.h"

int lw_kind_parse(const char *s, enum lw_kind *k)
{
	if (!s)
		return -1;
	if (strcmp(s, "all") == 0)
		*k = LW_KIND_ALL;
	else if (strcmp(s, "sockets") == 0 || strcmp(s, "socket") == 0)
		*k = LW_KIND_SOCKETS;
	else if (strcmp(s, "heap") == 0)
		*k = LW_KIND_HEAP;
	else if (strcmp(s, "fds") == 0)
		*k = LW_KIND_FDS;
	else
		return -1;
	return 0;
}

const char *lw_kind_name(enum lw_kind k)
{
	return k == LW_KIND_SOCKETS ? "sockets" : k == LW_KIND_HEAP ? "heap" : k == LW_KIND_FDS ? "fds" : "all";
}

int lw_kind_sockets(enum lw_kind k)
{
	return k == LW_KIND_ALL || k == LW_KIND_SOCKETS;
}

int lw_kind_heap(enum lw_kind k)
{
	return k == LW_KIND_ALL || k == LW_KIND_HEAP;
}

int lw_kind_fds(enum lw_kind k)
{
	return k == LW_KIND_ALL || k == LW_KIND_FDS;
}

int lw_format_parse(const char *s, enum lw_format *f)
{
	if (!s)
		return -1;
	if (strcmp(s, "text") == 0)
		*f = LW_FMT_TEXT;
	else if (strcmp(s, "json") == 0)
		*f = LW_FMT_JSON;
	else if (strcmp(s, "folded") == 0)
		*f = LW_FMT_FOLDED;
	else if (strcmp(s, "sarif") == 0)
		*f = LW_FMT_SARIF;
	else
		return -1;
	return 0;
}

int lw_report_ended(const struct lw_report *r)
{
	return r->live != LW_LIVE_ALIVE && r->live != LW_LIVE_DISABLED;
}

int lw_report_classify(struct lw_report *r)
{
	const struct lw_report_opts *o = &r->opts;
	lw_grouping_free(&r->grouping);
	if (lw_group_build_by(&r->grouping, &r->snap, &r->join, r->now_ns, o->older_than_ns, o->all, o->by) < 0)
		return -1;
	struct lw_grouping prev;
	memset(&prev, 0, sizeof prev);
	struct lw_verdict_opts vo = {
		.now_ns = r->now_ns,
		.idle_for_ns = o->idle_for_ns ? o->idle_for_ns : LW_IDLE_FOR_DEFAULT_NS,
		.ended = lw_report_ended(r),
		.snap = &r->snap,
	};
	if (r->have_prev && !vo.ended) {
		if (lw_group_build_by(&prev, &r->prev, &r->prev_join, r->prev_now_ns, o->older_than_ns, o->all,
				      o->by) < 0)
			return -1;
		vo.prev = &prev;
		vo.prev_snap = &r->prev;
		vo.interval_ns = r->now_ns > r->prev_now_ns ? r->now_ns - r->prev_now_ns : 0;
	}
	int rc = lw_verdict_apply(&r->grouping, &vo);
	lw_grouping_free(&prev);
	lw_fd_grouping_free(&r->fds);
	if (rc == 0 && lw_kind_fds(o->kind)) {
		if (lw_fd_group_build(&r->fds, &r->snap, &r->join, r->now_ns, o->older_than_ns, o->all) < 0)
			return -1;
		struct lw_fd_grouping pf;
		memset(&pf, 0, sizeof pf);
		int with_prev = vo.prev != NULL;
		if (with_prev && lw_fd_group_build(&pf, &r->prev, &r->prev_join, r->prev_now_ns, o->older_than_ns,
						   o->all) < 0)
			return -1;
		lw_fd_group_judge(&r->fds, with_prev ? &pf : NULL, &r->snap, with_prev ? &r->prev : NULL,
				  vo.interval_ns, vo.idle_for_ns, vo.ended);
		lw_fd_grouping_free(&pf);
	}
	return rc;
}

/* Sleep ns, resuming after signal handlers (a report is not interrupted by SIGWINCH). */
static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --interval: the first snapshot, then wait.  Only a live image has a "later". */
static int report_first_snapshot(struct lw_report *r, const char *path, char *err, size_t errlen)
{
	if (lw_snapshot_open(&r->prev, path, err, errlen) < 0)
		return -1;
	enum lw_live live = lw_snapshot_live(&r->prev);
	if (live != LW_LIVE_ALIVE && live != LW_LIVE_DISABLED) {
		lw_snapshot_free(&r->prev);
		return 0;
	}
	r->prev_now_ns = lw_snapshot_now(&r->prev, live);
	if (lw_join_proc(&r->prev_join, &r->prev, r->prev.hdr.pid) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Validity of the first snapshot's entries is enough: no kernel dump for it. */
	r->prev_join.diag_loaded = 1;
	lw_fdusage_read(&r->prev_fd_usage, r->prev.hdr.pid);
	r->prev_join.watch_loaded = 1;
	r->have_prev = 1;
	sleep_ns(r->opts.interval_ns);
	return 0;
}

/*
 * Which suppression covers each descriptor's creation stack: j->supp[i] for
 * snapshot handle i, decided once per stack and kind.  The groupings key on
 * it (a suppressed socket never shares a group with a counted one) and leave
 * suppressed members out of nleaked.  Without names (no libdw) nothing
 * matches.  Returns 0 or -1 (no memory).
 */
static int report_supp_handles(struct lw_report *r, const struct lw_snapshot *s, struct lw_join *j)
{
	free((void *)j->supp);
	j->supp = NULL;
	if (!r->supp || !r->sym || lw_supp_set_size(r->supp) == 0 || s->nhandles == 0)
		return 0;
	const struct lw_supp **by_handle = calloc(s->nhandles, sizeof *by_handle);
	/* per stack index and kind: 0 not decided, 1 none, else the entry */
	const struct lw_supp **cache = calloc(s->nstacks * 2 + 1, sizeof *cache);
	static const struct lw_supp decided_none;
	if (!by_handle || !cache) {
		free(by_handle);
		free(cache);
		return -1;
	}
	struct lw_frame frames[LW_STACK_MAX_FRAMES * 4];
	for (size_t i = 0; i < s->nhandles; i++) {
		const struct lw_handle *h = &s->handles[i].h;
		if (h->state != LW_H_OPEN || h->origin == LW_ORIGIN_INHERITED || h->origin == LW_ORIGIN_FORK)
			continue;
		const struct lw_snap_stack *st = lw_snapshot_stack(s, h->stack_id);
		if (!st)
			continue;
		int sock = h->kind == LW_FD_SOCKET;
		const struct lw_supp **c = &cache[(size_t)(st - s->stacks) * 2 + (size_t)sock];
		if (!*c) {
			size_t n = lw_symbolize_stack(r->sym, st->frames, st->depth, frames,
						      sizeof frames / sizeof frames[0]);
			const struct lw_supp *e =
				lw_supp_find(r->supp, sock ? LW_SUPP_SOCKET : LW_SUPP_FD, LW_REACH_UNKNOWN, frames, n);
			*c = e ? e : &decided_none;
		}
		by_handle[i] = *c == &decided_none ? NULL : *c;
	}
	free(cache);
	j->supp = by_handle;
	return 0;
}

/* Credit each suppression with the sockets and descriptors its groups hold. */
static void report_supp_count(struct lw_report *r)
{
	/* an exec'd image's descriptors live on in the next image: counted there */
	if (!r->supp || r->live == LW_LIVE_EXECED)
		return;
	for (size_t i = 0; i < r->grouping.ngroups; i++)
		if (r->grouping.groups[i].supp && !r->grouping.groups[i].inherited)
			lw_supp_count(r->supp, r->grouping.groups[i].supp, (double)r->grouping.groups[i].count, 0);
	for (size_t i = 0; i < r->fds.ngroups; i++)
		if (r->fds.groups[i].supp && !r->fds.groups[i].inherited)
			lw_supp_count(r->supp, r->fds.groups[i].supp, (double)r->fds.groups[i].count, 0);
}

static int gc_cmp(const void *a, const void *b)
{
	const struct lw_gc_group *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return (x->open_stack > y->open_stack) - (x->open_stack < y->open_stack);
}

/* The garbage collector's closes (what LW_BADCLOSE_GC), by opening stack and kind. */
static int report_gc_groups(struct lw_report *r)
{
	const struct lw_snapshot *s = &r->snap;
	for (size_t i = 0; i < s->nbadcloses; i++) {
		const struct lw_badclose *b = &s->badcloses[i];
		if (b->what != LW_BADCLOSE_GC)
			continue;
		size_t k = 0;
		while (k < r->ngc && !(r->gc[k].open_stack == b->prev_open_stack_id && r->gc[k].kind == b->fd_kind))
			k++;
		if (k == r->ngc) {
			struct lw_gc_group *n = realloc(r->gc, (r->ngc + 1) * sizeof *n);
			if (!n)
				return -1;
			r->gc = n;
			memset(&r->gc[r->ngc], 0, sizeof r->gc[0]);
			r->gc[r->ngc].open_stack = b->prev_open_stack_id;
			r->gc[r->ngc].kind = b->fd_kind;
			r->ngc++;
		}
		struct lw_gc_group *g = &r->gc[k];
		g->count++;
		if (b->ns >= g->last_ns) {
			g->last_ns = b->ns;
			g->close_stack = b->stack_id;
		}
		if (b->fd_kind == LW_FD_SOCKET)
			r->gc_sockets++;
		else
			r->gc_fds++;
	}
	if (r->ngc > 1)
		qsort(r->gc, r->ngc, sizeof *r->gc, gc_cmp);
	return 0;
}

/* a valid OPEN record of the shim names fd (lw_fdusage_untracked) */
static int fd_tracked(int fd, void *arg)
{
	const struct lw_report *r = arg;
	const struct lw_snap_handle *h = lw_snapshot_handle(&r->snap, fd);
	return h && lw_join_valid(&r->join, &r->snap, (size_t)(h - r->snap.handles));
}

int lw_report_build(struct lw_report *r, const char *path, const struct lw_report_opts *o,
		    char *err, size_t errlen)
{
	memset(r, 0, sizeof *r);
	r->opts = *o;
	if (o->interval_ns && report_first_snapshot(r, path, err, errlen) < 0) {
		lw_report_free(r);
		return -1;
	}
	if (lw_snapshot_open(&r->snap, path, err, errlen) < 0) {
		lw_report_free(r);
		return -1;
	}
	r->live = lw_snapshot_live(&r->snap);
	r->now_ns = lw_snapshot_now(&r->snap, r->live);
	/* Only a live image has a kernel view; a reused pid would describe a stranger. */
	int pid = (r->live == LW_LIVE_ALIVE || r->live == LW_LIVE_DISABLED) ? r->snap.hdr.pid : 0;
	lw_fdusage_read(&r->fd_usage, pid);
	/* Without libdw the report is still useful: frames render as module+0xOFF.
	 * Suppressions match names, so the symbolizer comes before any grouping. */
	char symerr[LW_ERR_MAX];
	r->sym = lw_symbolizer_new(&r->snap, symerr, sizeof symerr);
	r->supp = o->supp;
	if (!r->supp) {
		r->supp = lw_supp_set_new();
		r->supp_owned = 1;
		if (!r->supp || lw_supp_load_default(r->supp, symerr, sizeof symerr) < 0) {
			snprintf(err, errlen, "out of memory");
			lw_report_free(r);
			return -1;
		}
	}
	if (lw_join_proc(&r->join, &r->snap, pid) < 0 || report_supp_handles(r, &r->snap, &r->join) < 0 ||
	    (r->have_prev && report_supp_handles(r, &r->prev, &r->prev_join) < 0) || lw_report_classify(r) < 0) {
		snprintf(err, errlen, "out of memory");
		lw_report_free(r);
		return -1;
	}
	report_supp_count(r);
	if (report_gc_groups(r) < 0) {
		snprintf(err, errlen, "out of memory");
		lw_report_free(r);
		return -1;
	}
	lw_fdusage_untracked(&r->fd_usage, fd_tracked, r);
	/* The heap grouping names allocation sites, so it comes after the symbolizer. */
	r->heap.mode = r->snap.hdr.heap_mode;
	r->heap.estimated = r->heap.mode == LW_HEAP_SAMPLED;
	r->heap.sample_bytes = r->snap.hdr.sample_bytes;
	if (lw_kind_heap(o->kind) &&
	    lw_heap_build(&r->heap, &r->snap, r->sym, r->now_ns, o->older_than_ns, o->reach, o->leak_kinds,
			  r->supp) < 0) {
		snprintf(err, errlen, "out of memory");
		lw_report_free(r);
		return -1;
	}
	return 0;
}

void lw_report_free(struct lw_report *r)
{
	lw_symbolizer_free(r->sym);
	r->sym = NULL;
	if (r->supp_owned)
		lw_supp_set_free(r->supp);
	r->supp = NULL;
	r->supp_owned = 0;
	lw_heap_free(&r->heap);
	lw_grouping_free(&r->grouping);
	lw_fd_grouping_free(&r->fds);
	lw_join_free(&r->join);
	lw_snapshot_free(&r->snap);
	lw_join_free(&r->prev_join);
	lw_snapshot_free(&r->prev);
	lw_fdusage_free(&r->fd_usage);
	lw_fdusage_free(&r->prev_fd_usage);
	free(r->gc);
	r->gc = NULL;
	r->ngc = r->gc_sockets = r->gc_fds = 0;
	r->have_prev = 0;
}

char *lw_report_process_name(const struct lw_report *r, char *buf, size_t len)
{
	const char *cmd = r->snap.hdr.cmdline;
	size_t n = 0;
	const char *start = cmd;
	if (!len)
		return buf;
	/* argv[0] ends at the first space of the joined command line. */
	for (const char *p = cmd; *p && *p != ' '; p++)
		if (*p == '/' && p[1] && p[1] != ' ')
			start = p + 1;
	while (start[n] && start[n] != ' ')
		n++;
	if (n == 0) {
		const char *exe = r->snap.hdr.exe;
		const char *b = strrchr(exe, '/');
		start = b ? b + 1 : exe;
		n = strlen(start);
	}
	if (n == 0)
		snprintf(buf, len, "pid%d", r->snap.hdr.pid);
	else
		snprintf(buf, len, "%.*s", (int)n, start);
	for (char *p = buf; *p; p++)
		if (*p == ';' || (unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '_';
	return buf;
}

int lw_report_is_empty(const struct lw_report *r)
{
	const uint64_t *c = r->snap.counters;
	/* sockets the image only inherited (exec, fork) are not its own doing */
	size_t own_open = 0;
	for (size_t i = 0; i < r->snap.nhandles; i++) {
		const struct lw_handle *h = &r->snap.handles[i].h;
		if (h->state == LW_H_OPEN && h->origin != LW_ORIGIN_INHERITED && h->origin != LW_ORIGIN_FORK)
			own_open++;
	}
	return c[LW_CTR_SOCK_OPENED] == c[LW_CTR_SOCK_INHERITED] && c[LW_CTR_BAD_CLOSES] == 0 &&
	       c[LW_CTR_HEAP_ALLOCS] == 0 && r->snap.nallocs == 0 && own_open == 0;
}
