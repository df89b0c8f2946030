/* SPDX-License-Identifier: MIT */
/* present.c — presentation helpers shared by the renderers and top (present.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "names.h"
#include "present.h"

const char *lw_present_state_word(const struct lw_report *r)
{
	switch (r->live) {
	case LW_LIVE_ALIVE:
		return r->snap.state == LW_STATE_STARTING ? "starting" : "running";
	case LW_LIVE_EXITED: return "exited";
	case LW_LIVE_EXECED: return "execed";
	case LW_LIVE_DEAD: return "dead";
	case LW_LIVE_DISABLED: return "disabled";
	}
	return "unknown";
}

int lw_present_at_least(const struct lw_report *r)
{
	return lw_snapshot_end_lower_bound(&r->snap, r->live);
}

uint64_t lw_present_uptime_ns(const struct lw_report *r)
{
	return r->now_ns > r->snap.hdr.start_monotonic_ns ? r->now_ns - r->snap.hdr.start_monotonic_ns : 0;
}

int lw_present_heap_group_shown(const struct lw_report *r, const struct lw_heap_group *g)
{
	if (r->opts.all)
		return 1;
	/* still reachable: not a leak, summed up (valgrind --show-leak-kinds's default) */
	return g->cls == LW_HEAP_PROGRAM && !(r->heap.reach_checked && g->reach == LW_REACH_REACHABLE);
}

size_t lw_present_stack(struct lw_report *r, uint32_t stack_id, struct lw_frame *out, size_t max)
{
	const struct lw_snap_stack *st = lw_snapshot_stack(&r->snap, stack_id);
	return st ? lw_symbolize_stack(r->sym, st->frames, st->depth, out, max) : 0;
}

int lw_present_runtime_frame(const char *fn)
{
	static const char *const names[] = { "_start", "__libc_start_main", "__libc_start_call_main",
					     "start_thread", "__clone3", "__clone", "clone", "clone3" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(fn, names[i]))
			return 1;
	return 0;
}

static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

int lw_present_own_frame(const struct lw_frame *f, int python_stack)
{
	if (!f->function || !*f->function)
		return 0;
	if (f->python) {
		const char *p = f->file;
		if (!p)
			return 1;
		return !(strncmp(p, "<frozen ", 8) == 0 || strstr(p, "/lib/python3.") || strstr(p, "/lib64/python3.") ||
			 strstr(p, "/site-packages/") || strstr(p, "/dist-packages/"));
	}
	if (python_stack || !f->module || !*f->module || lw_module_is_system(f->module))
		return 0;
	static const char *const dirs[] = { "/lib", "/lib64", "/usr/lib", "/usr/lib64" };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (under(f->module, dirs[i]))
			return 0;
	/* Python older than 3.11 has no Python frames: its eval loop is not the program */
	const char *b = strrchr(f->module, '/');
	b = b ? b + 1 : f->module;
	return strncmp(b, "python", 6) != 0 && strncmp(b, "libpython", 9) != 0;
}

void lw_present_scrub(char *buf)
{
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

void lw_present_put_safe(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

const char *lw_present_proto(const struct lw_group *g, enum lw_describe how, char *buf, size_t len)
{
	int inet = g->family == AF_INET || g->family == AF_INET6;
	if (inet && g->type == SOCK_STREAM)
		snprintf(buf, len, g->family == AF_INET6 ? "TCP6" : "TCP");
	else if (inet && g->type == SOCK_DGRAM)
		snprintf(buf, len, g->family == AF_INET6 ? "UDP6" : "UDP");
	else if (g->family == AF_UNIX && how == LW_DESCRIBE_SHORT)
		snprintf(buf, len, "UNIX");
	else if (g->family == AF_UNIX)
		snprintf(buf, len, "UNIX/%s",
			 g->type == SOCK_STREAM ? "stream" : g->type == SOCK_DGRAM ? "dgram" :
			 g->type == SOCK_SEQPACKET ? "seqpacket" : "other");
	else if (how == LW_DESCRIBE_SHORT)
		snprintf(buf, len, "%s", lw_family_name(g->family) + 3);
	else
		snprintf(buf, len, "%s/%s", lw_family_name(g->family) + 3, lw_type_name(g->type) + 5);
	return buf;
}

char *lw_present_group(const struct lw_group *g, enum lw_describe how, char *buf, size_t len)
{
	char proto[32];
	lw_present_proto(g, how, proto, sizeof proto);
	if (g->role == LW_EP_PEER)
		snprintf(buf, len, "%s -> %s", proto, g->endpoint);
	else if (g->role == LW_EP_LOCAL)
		snprintf(buf, len, "%s %s %s", proto,
			 how == LW_DESCRIBE_FULL && g->origin == LW_ORIGIN_ACCEPT ? "accepted on" : "on", g->endpoint);
	else
		snprintf(buf, len, "%s (no address)", proto);
	/* The endpoint came from the target: scrub control characters. */
	lw_present_scrub(buf);
	return buf;
}

int lw_present_use_first(const struct lw_group *g)
{
	return g->by == LW_BY_USE || (g->verdict == LW_V_LEAK_SUSPECT && g->use_stack_id != 0);
}

void lw_present_verdict_counts(const struct lw_grouping *g, size_t *nv)
{
	memset(nv, 0, (LW_V_LISTENING + 1) * sizeof *nv);
	for (size_t i = 0; i < g->ngroups; i++)
		if (!g->groups[i].supp)
			nv[g->groups[i].verdict] += g->groups[i].count;
}

/* Insert v into the ascending set v[0..*n) of at most LW_PRESENT_WATCH_MAX; *more when full. */
static void watch_set_add(int *set, size_t *n, int *more, int v)
{
	size_t i = 0;
	while (i < *n && set[i] < v)
		i++;
	if (i < *n && set[i] == v)
		return;
	if (*n == LW_PRESENT_WATCH_MAX) {
		*more = 1;
		return;
	}
	memmove(set + i + 1, set + i, (*n - i) * sizeof *set);
	set[i] = v;
	(*n)++;
}

void lw_present_watch(const struct lw_group *g, struct lw_watch_summary *s)
{
	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < g->count; i++) {
		const struct lw_member *m = &g->members[i];
		if (!lw_member_watched(m))
			continue;
		if (m->watch.peer_pid > 0) {
			watch_set_add(s->peer_pids, &s->npeer_pids, &s->more_peer_pids, m->watch.peer_pid);
			continue;
		}
		if (m->watch.epoll_fd >= 0)
			watch_set_add(s->epoll_fds, &s->nepoll_fds, &s->more_epoll_fds, m->watch.epoll_fd);
		if (m->watch.epoll_fd >= 0 && m->watch.epoll_tid > 0)
			watch_set_add(s->waiters, &s->nwaiters, &s->more_waiters, m->watch.epoll_tid);
		if (m->watch.tid > 0) {
			size_t k = 0;
			while (k < s->nblocked && s->blocked[k].tid != m->watch.tid)
				k++;
			if (k < s->nblocked)
				continue;
			if (s->nblocked == LW_PRESENT_WATCH_MAX) {
				s->more_blocked = 1;
				continue;
			}
			s->blocked[s->nblocked].tid = m->watch.tid;
			s->blocked[s->nblocked++].call = m->watch.call;
		}
	}
}

void lw_present_heap_totals(const struct lw_heap *h, double *blocks, double *bytes)
{
	*blocks = *bytes = 0;
	for (int c = 0; c < LW_HEAP_NCLASS; c++) {
		*blocks += h->blocks[c];
		*bytes += h->bytes[c];
	}
}

const char *lw_present_command(const struct lw_snapshot *s)
{
	return s->hdr.cmdline[0] ? s->hdr.cmdline : s->hdr.exe;
}

/* The tables of hdr.incomplete, in the order a reader cares about them. */
static const struct { uint32_t bit; const char *name; } incomplete_tables[] = {
	{ LW_INCOMPLETE_HEAP, "heap" },       { LW_INCOMPLETE_STACKS, "stack" },
	{ LW_INCOMPLETE_HANDLES, "handle" },  { LW_INCOMPLETE_MODULES, "module" },
	{ LW_INCOMPLETE_BADCLOSES, "bad-close" },
};

size_t lw_present_incomplete_tables(const struct lw_snapshot *s, const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof incomplete_tables / sizeof incomplete_tables[0] && n < max; i++)
		if (s->incomplete & incomplete_tables[i].bit)
			names[n++] = incomplete_tables[i].name;
	return n;
}

const char *lw_present_incomplete_reason(const struct lw_snapshot *s, char *buf, size_t len)
{
	char b[32];
	if (s->hdr.budget_bytes && s->layout >= 2)
		snprintf(buf, len, "filesystem full or LEAKWATCH_BUDGET (%s) reached",
			 lw_bytes_format((double)s->hdr.budget_bytes, b, sizeof b));
	else
		snprintf(buf, len, "filesystem full or LEAKWATCH_BUDGET reached");
	return buf;
}

int lw_present_incomplete(const struct lw_snapshot *s, char *buf, size_t len)
{
	if (!lw_snapshot_is_incomplete(s)) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	const char *names[8];
	size_t n = lw_present_incomplete_tables(s, names, 8), k = 0;
	char what[128] = "", why[96];
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(what + k, sizeof what - k, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ",
				      names[i]);
	uint64_t dropped = s->counters[LW_CTR_DROP_RESERVE];
	snprintf(buf, len, "%s%s could not grow: %s; %llu event%s dropped", n ? what : "a table",
		 n > 1 ? " tables" : n ? " table" : "", lw_present_incomplete_reason(s, why, sizeof why),
		 (unsigned long long)dropped, dropped == 1 ? "" : "s");
	return 1;
}

int lw_present_sock_group_shown(const struct lw_report *r, const struct lw_group *g)
{
	return !g->supp || r->opts.all;
}

int lw_present_fd_group_shown(const struct lw_report *r, const struct lw_fd_group *g)
{
	return !g->supp || r->opts.all;
}

static struct lw_supp_use *use_of(struct lw_supp_use *u, size_t *n, size_t max, const struct lw_supp *e)
{
	for (size_t i = 0; i < *n; i++)
		if (u[i].e == e)
			return &u[i];
	if (*n == max)
		return NULL;
	memset(&u[*n], 0, sizeof u[*n]);
	u[*n].e = e;
	return &u[(*n)++];
}

size_t lw_present_supp_uses(const struct lw_report *r, int with_default, struct lw_supp_use *u, size_t max)
{
	size_t n = 0;
	/* in set order: walk the set, then each kind of group */
	for (size_t k = 0; r->supp && k < lw_supp_set_size(r->supp); k++) {
		const struct lw_supp *e = lw_supp_set_entry(r->supp, k);
		if (!with_default && lw_supp_is_default(e))
			continue;
		struct lw_supp_use acc = { .e = e };
		for (size_t i = 0; i < r->grouping.ngroups; i++)
			if (r->grouping.groups[i].supp == e && !r->grouping.groups[i].inherited)
				acc.sockets += r->grouping.groups[i].count;
		for (size_t i = 0; i < r->fds.ngroups; i++)
			if (r->fds.groups[i].supp == e && !r->fds.groups[i].inherited)
				acc.fds += r->fds.groups[i].count;
		for (size_t i = 0; i < r->heap.ngroups; i++)
			if (r->heap.groups[i].supp == e) {
				acc.blocks += r->heap.groups[i].blocks;
				acc.bytes += r->heap.groups[i].bytes;
			}
		if (!acc.sockets && !acc.fds && !(acc.blocks > 0))
			continue;
		struct lw_supp_use *slot = use_of(u, &n, max, e);
		if (!slot)
			break;
		*slot = acc;
	}
	return n;
}

int lw_present_gen_wanted_heap(const struct lw_report *r, const struct lw_heap_group *g)
{
	return lw_heap_group_is_leak(&r->heap, g);
}

int lw_present_gen_wanted_sock(const struct lw_report *r, const struct lw_group *g)
{
	if (g->inherited || g->supp || !g->stack_id)
		return 0;
	return lw_report_ended(r) || g->verdict == LW_V_LEAK_SUSPECT;
}

int lw_present_gen_wanted_fd(const struct lw_report *r, const struct lw_fd_group *g)
{
	if (g->inherited || g->supp || !g->stack_id)
		return 0;
	return lw_report_ended(r) || g->verdict == LW_FDV_LEAK_SUSPECT;
}

char *lw_present_gen_supp(struct lw_report *r, enum lw_supp_kind kind, enum lw_reach reach, uint32_t stack_id)
{
	struct lw_frame frames[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, frames, LW_PRESENT_MAX_FRAMES);
	if (n == 0)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	int rc;
	if (r->opts.gen_supp == LW_GEN_SUPP_LSAN) {
		rc = lw_supp_write_lsan(m, kind, frames, n);
	} else {
		static const char *const kinds[LW_SUPP_NKIND] = { "heap", "socket", "fd" };
		const char *fn = lw_supp_name_frame(frames, n);
		char name[160];
		snprintf(name, sizeof name, "%s-%.140s", kinds[kind < LW_SUPP_NKIND ? kind : 0], fn ? fn : "leak");
		/* the name is one line of its own: no blanks or braces from a C++ signature */
		for (char *p = name; *p; p++)
			if (*p == ' ' || *p == '\t' || *p == '{' || *p == '}' || (unsigned char)*p < 0x20)
				*p = '_';
		rc = lw_supp_write_valgrind(m, name, kind, reach, frames, n, 0);
	}
	if (fclose(m) != 0 || rc != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
