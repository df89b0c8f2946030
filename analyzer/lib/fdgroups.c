/* SPDX-License-Identifier: MIT */
/*
 * fdgroups.c — open descriptors other than sockets, grouped by creation
 * stack and kind.
 *
 * The shim records every descriptor a hooked call made (open family,
 * stdio, dirent, pipe, eventfd, epoll, ...) with the call's stack, its kind
 * as the call says and the path it was given.  Nothing in the process says
 * whether a file kept open is a leak or a log the program writes for ever,
 * so there is no verdict here: a live process's descriptors are listed,
 * an ended image's are left open (what `run --fail-on-leak` fails on).
 * A record is shown only while /proc/PID/fd/N names a descriptor of a kind
 * that agrees with it (procjoin.c), and with what that link says now.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdgroups.h"

const char *lw_fd_kind_name(unsigned kind)
{
	static const char *const names[] = {
		[LW_FD_SOCKET] = "socket", [LW_FD_FILE] = "file", [LW_FD_DIR] = "dir",
		[LW_FD_PIPE] = "pipe", [LW_FD_FIFO] = "fifo", [LW_FD_EVENTFD] = "eventfd",
		[LW_FD_EPOLL] = "epoll", [LW_FD_TIMERFD] = "timerfd", [LW_FD_SIGNALFD] = "signalfd",
		[LW_FD_INOTIFY] = "inotify", [LW_FD_FANOTIFY] = "fanotify", [LW_FD_MEMFD] = "memfd",
		[LW_FD_PIDFD] = "pidfd", [LW_FD_USERFAULTFD] = "userfaultfd", [LW_FD_OTHER] = "other",
	};
	return kind < LW_FD_KIND_MAX ? names[kind] : "other";
}

unsigned lw_fd_group_kind(const struct lw_fd_group *g)
{
	if (g->count == 0 || (g->kind != LW_FD_FILE && g->kind != LW_FD_OTHER))
		return g->kind;
	unsigned now = g->members[0].now_kind;
	for (size_t i = 1; i < g->count; i++)
		if (g->members[i].now_kind != now)
			return g->kind;
	return now;
}

char *lw_fd_oflags_format(unsigned kind, int32_t f, char *buf, size_t len)
{
	static const struct { int bit; const char *name; } bits[] = {
		{ O_CREAT, "O_CREAT" }, { O_EXCL, "O_EXCL" }, { O_TRUNC, "O_TRUNC" },
		{ O_APPEND, "O_APPEND" }, { O_NONBLOCK, "O_NONBLOCK" }, { O_DIRECTORY, "O_DIRECTORY" },
		{ O_NOFOLLOW, "O_NOFOLLOW" }, { O_CLOEXEC, "O_CLOEXEC" }, { O_PATH, "O_PATH" },
	};
	if (len)
		buf[0] = '\0';
	if (kind != LW_FD_FILE && kind != LW_FD_DIR)
		return buf;
	int acc = f & O_ACCMODE;
	size_t n = (size_t)snprintf(buf, len, "%s",
				    (f & O_PATH) ? "" : acc == O_WRONLY ? "O_WRONLY" : acc == O_RDWR ? "O_RDWR" : "O_RDONLY");
	for (size_t i = 0; i < sizeof bits / sizeof bits[0] && n < len; i++) {
		/* O_TMPFILE includes O_DIRECTORY's bit */
		if (bits[i].bit == O_DIRECTORY && (f & O_TMPFILE) == O_TMPFILE) {
			n += (size_t)snprintf(buf + n, len - n, "%sO_TMPFILE", n ? "|" : "");
			continue;
		}
		if (f & bits[i].bit)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "|" : "", bits[i].name);
	}
	return buf;
}

static int is_inherited(unsigned origin)
{
	return origin == LW_ORIGIN_INHERITED || origin == LW_ORIGIN_FORK;
}

struct entry {
	int inherited;
	uint16_t kind;
	uint32_t stack;
	const struct lw_supp *supp;
	size_t order;
	struct lw_fd_member m;
};

static int key_cmp(const struct entry *x, const struct entry *y)
{
	if (x->inherited != y->inherited)
		return x->inherited - y->inherited;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->stack != y->stack)
		return x->stack < y->stack ? -1 : 1;
	if (x->supp != y->supp)
		return (uintptr_t)x->supp < (uintptr_t)y->supp ? -1 : 1;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
	int c = key_cmp(x, y);
	return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int group_cmp(const void *a, const void *b)
{
	const struct lw_fd_group *x = a, *y = b;
	if (x->inherited != y->inherited)
		return x->inherited - y->inherited;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->age_max_ns != y->age_max_ns)
		return x->age_max_ns < y->age_max_ns ? 1 : -1;
	if (x->stack_id != y->stack_id)
		return x->stack_id < y->stack_id ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->members[0].fd - y->members[0].fd;
}

/* Distinct non-empty paths among members (groups are small: quadratic is fine
 * up to a bound, then counted as "many"). */
static size_t distinct_paths(const struct lw_fd_member *m, size_t n)
{
	size_t d = 0;
	for (size_t i = 0; i < n && i < 256; i++) {
		if (!m[i].path[0])
			continue;
		size_t k = 0;
		while (k < i && strcmp(m[k].path, m[i].path) != 0)
			k++;
		d += k == i;
	}
	return d;
}

int lw_fd_group_build(struct lw_fd_grouping *g, const struct lw_snapshot *s, const struct lw_join *j,
		      uint64_t now_ns, uint64_t older_than_ns, int include_inherited)
{
	memset(g, 0, sizeof *g);
	size_t cap = s->nhandles ? s->nhandles : 1, n = 0;
	struct entry *ents = malloc(cap * sizeof *ents);
	struct entry **order = malloc(cap * sizeof *order);
	if (!ents || !order)
		goto oom;
	for (size_t i = 0; i < s->nhandles; i++) {
		const struct lw_handle *h = &s->handles[i].h;
		if (h->kind == LW_FD_SOCKET || !lw_join_valid(j, s, i))
			continue;
		int inh = is_inherited(h->origin);
		if (inh && !include_inherited)
			continue;
		uint64_t age = now_ns > h->open_ns ? now_ns - h->open_ns : 0;
		if (age < older_than_ns)
			continue;
		struct entry *e = &ents[n];
		memset(e, 0, sizeof *e);
		e->inherited = inh;
		e->kind = h->kind;
		e->stack = inh ? 0 : h->stack_id;
		e->order = i;
		e->m.fd = s->handles[i].fd;
		e->m.origin = h->origin;
		e->m.oflags = h->oflags;
		e->m.age_ns = age;
		size_t pl = h->path.len <= LW_FDPATH_MAX ? h->path.len : LW_FDPATH_MAX;
		memcpy(e->m.path, h->path.data, pl);
		e->m.path[pl] = '\0';
		/* a path with a NUL inside ends there */
		e->m.path_truncated = (h->kflags & LW_HK_PATH_TRUNCATED) != 0;
		e->m.now_kind = h->kind;
		if (j && j->fd_ok && j->link && j->link[i]) {
			e->m.now = j->link[i];
			e->m.now_kind = j->now_kind[i];
		}
		e->supp = inh || !j || !j->supp ? NULL : j->supp[i];
		order[n++] = e;
		g->nfds++;
		if (!inh && e->supp)
			g->nsuppressed++;
		else if (!inh)
			g->nleaked++;
	}
	qsort(order, n, sizeof *order, entry_cmp);
	size_t ngroups = 0;
	for (size_t i = 0; i < n; i++)
		ngroups += i == 0 || key_cmp(order[i], order[i - 1]) != 0;
	g->groups = calloc(ngroups ? ngroups : 1, sizeof *g->groups);
	if (!g->groups)
		goto oom;
	for (size_t i = 0; i < n;) {
		size_t end = i + 1;
		while (end < n && key_cmp(order[end], order[i]) == 0)
			end++;
		struct lw_fd_group *grp = &g->groups[g->ngroups++];
		grp->inherited = order[i]->inherited;
		grp->kind = order[i]->kind;
		grp->stack_id = order[i]->stack;
		grp->supp = order[i]->supp;
		grp->origin = order[i]->m.origin;
		grp->count = end - i;
		grp->members = malloc(grp->count * sizeof *grp->members);
		if (!grp->members)
			goto oom;
		grp->age_min_ns = grp->age_max_ns = order[i]->m.age_ns;
		for (size_t k = i; k < end; k++) {
			const struct lw_fd_member *m = &order[k]->m;
			grp->members[k - i] = *m;
			grp->origin_mask |= 1u << (m->origin < 32 ? m->origin : 0);
			if (m->age_ns < grp->age_min_ns)
				grp->age_min_ns = m->age_ns;
			if (m->age_ns > grp->age_max_ns)
				grp->age_max_ns = m->age_ns;
		}
		grp->npaths = distinct_paths(grp->members, grp->count);
		i = end;
	}
	if (g->ngroups > 1)
		qsort(g->groups, g->ngroups, sizeof *g->groups, group_cmp);
	free(order);
	free(ents);
	return 0;
oom:
	free(order);
	free(ents);
	lw_fd_grouping_free(g);
	return -1;
}

void lw_fd_grouping_free(struct lw_fd_grouping *g)
{
	for (size_t i = 0; i < g->ngroups; i++)
		free(g->groups[i].members);
	free(g->groups);
	memset(g, 0, sizeof *g);
}

const char *lw_fd_verdict_name(int v)
{
	switch (v) {
	case LW_FDV_LEAK_SUSPECT: return "leak_suspect";
	case LW_FDV_LEFT_OPEN: return "left_open";
	default: return "open";
	}
}

static const struct lw_fd_group *fd_group_find(const struct lw_fd_grouping *g, const struct lw_fd_group *like)
{
	for (size_t i = 0; g && i < g->ngroups; i++)
		if (g->groups[i].inherited == like->inherited && g->groups[i].kind == like->kind &&
		    g->groups[i].stack_id == like->stack_id)
			return &g->groups[i];
	return NULL;
}

/*
 * The rules (the README copies them):
 *   ended                       -> LEFT OPEN
 *   inherited                   -> OPEN (made before leakwatch loaded: no stack to blame)
 *   --interval: more members now than at the first snapshot, and the
 *     creation stack opened more than it closed in between -> LEAK SUSPECT
 *   without --interval: at least 3 members whose ages span at least
 *     --idle-for (opened over time, none given back)       -> LEAK SUSPECT
 *   otherwise                   -> OPEN
 * A set opened at start-up has one age: not growing.  Known false
 * positive without --interval: a cache that opens files over time and
 * keeps them on purpose (--interval tells it apart once it stops growing).
 */
void lw_fd_group_judge(struct lw_fd_grouping *g, const struct lw_fd_grouping *prev,
		       const struct lw_snapshot *snap, const struct lw_snapshot *prev_snap,
		       uint64_t interval_ns, uint64_t idle_for_ns, int ended)
{
	for (size_t i = 0; i < g->ngroups; i++) {
		struct lw_fd_group *grp = &g->groups[i];
		grp->verdict = LW_FDV_OPEN;
		if (ended) {
			grp->verdict = LW_FDV_LEFT_OPEN;
			continue;
		}
		if (grp->inherited)
			continue;
		if (prev) {
			const struct lw_fd_group *pg = fd_group_find(prev, grp);
			const struct lw_snap_stack *st = grp->stack_id ? lw_snapshot_stack(snap, grp->stack_id) : NULL;
			const struct lw_snap_stack *ps = grp->stack_id && prev_snap ? lw_snapshot_stack(prev_snap, grp->stack_id)
									      : NULL;
			grp->have_growth = 1;
			grp->interval_ns = interval_ns;
			grp->count_start = pg ? pg->count : 0;
			if (st) {
				uint64_t o0 = ps ? ps->sock_opened : 0, c0 = ps ? ps->sock_closed : 0;
				grp->opened = st->sock_opened >= o0 ? st->sock_opened - o0 : 0;
				grp->closed = st->sock_closed >= c0 ? st->sock_closed - c0 : 0;
			}
			if (grp->count > grp->count_start && grp->opened > grp->closed)
				grp->verdict = LW_FDV_LEAK_SUSPECT;
			continue;
		}
		if (grp->count >= 3 && grp->age_max_ns - grp->age_min_ns >= idle_for_ns)
			grp->verdict = LW_FDV_LEAK_SUSPECT;
	}
}
