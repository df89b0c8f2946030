/* SPDX-License-Identifier: MIT */
/* render_text.c — the human-readable report (`--format text`, the default). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "names.h"
#include "pgjoin.h"
#include "present.h"

/* DWARF paths are absolute; relative to the current directory they read better. */
static const char *path_short(const char *path, const char *cwd)
{
	size_t n = strlen(cwd);
	if (n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/')
		return path + n + 1;
	return path;
}

void lw_render_text_frames(FILE *out, const struct lw_frame *frames, size_t n, const char *label, int lw,
			   const char *cwd, const char *suffix)
{
	if (n == 0) {
		fprintf(out, "  %-*s (no stack recorded)%s\n", lw, label, suffix);
		return;
	}
	/* The C runtime's frames below main() or a thread's start routine say
	 * nothing at 3 AM: the text report stops there (JSON keeps them). */
	while (n > 1 && frames[n - 1].function && lw_present_runtime_frame(frames[n - 1].function))
		n--;
	int width = 0;
	for (size_t i = 0; i < n; i++) {
		int w = frames[i].function ? (int)strlen(frames[i].function) : 0;
		if (w > width)
			width = w;
	}
	if (width > 40)
		width = 40;
	for (size_t i = 0; i < n; i++) {
		const struct lw_frame *f = &frames[i];
		char loc[LW_PATH_MAX + 32];
		fprintf(out, "  %-*s ", lw, i == 0 ? label : "");
		if (!f->function) {
			lw_present_put_safe(out, lw_frame_format_location(f, loc, sizeof loc));
		} else {
			int len = (int)strlen(f->function);
			lw_present_put_safe(out, f->function);
			if (f->file) {
				fprintf(out, "%*s  ", len < width ? width - len : 0, "");
				lw_present_put_safe(out, path_short(f->file, cwd));
				if (f->line > 0)
					fprintf(out, ":%d", f->line);
			} else {
				fprintf(out, "%*s  ", len < width ? width - len : 0, "");
				lw_present_put_safe(out, lw_frame_format_location(f, loc, sizeof loc));
			}
		}
		if (f->inlined)
			fputs("  [inlined]", out);
		if (f->buildid_mismatch)
			fputs("  (build-id mismatch)", out);
		if (i == 0)
			fputs(suffix, out);
		fputc('\n', out);
	}
}

static void text_stack_sfx(FILE *out, struct lw_report *r, uint32_t stack_id, const char *label, int lw,
			   const char *cwd, const char *suffix)
{
	struct lw_frame frames[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, frames, LW_PRESENT_MAX_FRAMES);
	lw_render_text_frames(out, frames, n, label, lw, cwd, suffix);
}

static void text_stack_w(FILE *out, struct lw_report *r, uint32_t stack_id, const char *label, int lw,
			 const char *cwd)
{
	text_stack_sfx(out, r, stack_id, label, lw, cwd, "");
}

static void text_stack(FILE *out, struct lw_report *r, uint32_t stack_id, const char *label,
		       const char *cwd)
{
	text_stack_w(out, r, stack_id, label, 11, cwd);
}

static void text_fds(FILE *out, const struct lw_group *g)
{
	const size_t shown = 16;
	fputs("  fds        ", out);
	for (size_t i = 0; i < g->nfds && i < shown; i++)
		fprintf(out, "%s%d", i ? " " : "", g->fds[i]);
	if (g->nfds > shown)
		fprintf(out, " ... (%zu more)", g->nfds - shown);
	fputc('\n', out);
}

/* "97/97" */
static char *share_fmt(size_t n, size_t of, char *buf, size_t len)
{
	snprintf(buf, len, "%zu/%zu", n, of);
	return buf;
}

/* "  suppressed by 'name' (file:line)" under a group --all shows. */
static void text_supp_by(FILE *out, const struct lw_supp *e)
{
	fputs("  suppressed by '", out);
	lw_present_put_safe(out, e->name);
	fputs("' (", out);
	lw_present_put_safe(out, e->file);
	fprintf(out, ":%d)\n", e->line);
}

/* --gen-suppressions: the entry for a leak group, right under its stack. */
static void text_gen_supp(FILE *out, struct lw_report *r, enum lw_supp_kind kind, enum lw_reach reach,
			  uint32_t stack_id)
{
	char *t = lw_present_gen_supp(r, kind, reach, stack_id);
	if (t) {
		fputs(t, out);
		free(t);
	}
}

static void text_opened(FILE *out, struct lw_report *r, const struct lw_group *g, const char *cwd)
{
	char sfx[64] = "", sh[48];
	if (g->inherited) {
		fputs("  opened       before leakwatch loaded (inherited across exec or fork)\n", out);
		return;
	}
	if (!g->stack_id && (g->origin_mask & (1u << LW_ORIGIN_ATTACH))) {
		fputs("  opened       before leakwatch attached (no stack; the kernel's evidence above)\n", out);
		return;
	}
	if (g->open_share < g->count)
		snprintf(sfx, sizeof sfx, "  (%s)", share_fmt(g->open_share, g->count, sh, sizeof sh));
	text_stack_sfx(out, r, g->stack_id, "opened at", 12, cwd, sfx);
}

static void text_last_used(FILE *out, struct lw_report *r, const struct lw_group *g, const char *cwd)
{
	char sfx[64] = "", sh[48];
	if (g->use_share < g->count)
		snprintf(sfx, sizeof sfx, "  (%s)", share_fmt(g->use_share, g->count, sh, sizeof sh));
	if (g->use_stack_id == 0 && !g->stack_id && (g->origin_mask & (1u << LW_ORIGIN_ATTACH)))
		fprintf(out, "  %-12s never since the attach (nothing sent)%s\n", "last used at", sfx);
	else if (g->use_stack_id == 0)
		fprintf(out, "  %-12s never (nothing sent since opened)%s\n", "last used at", sfx);
	else
		text_stack_sfx(out, r, g->use_stack_id, "last used at", 12, cwd, sfx);
}

/* One line of evidence under a live group: what the verdict was decided on. */
static void text_evidence(FILE *out, const struct lw_group *g)
{
	const struct lw_evidence *e = &g->ev;
	char a[32], b[32], c[32];
	fputs("  evidence    ", out);
	if (g->verdict == LW_V_LISTENING) {
		fprintf(out, "listening");
		if (e->kernel_known)
			fprintf(out, " (kernel)");
	} else {
		lw_duration_format(e->idle_min_ns, a, sizeof a);
		lw_duration_format(e->idle_max_ns, b, sizeof b);
		fprintf(out, "idle %s", a);
		if (e->idle_min_ns / 1000000 != e->idle_max_ns / 1000000)
			fprintf(out, "..%s", b);
		fprintf(out, " (");
		int any = 0;
		if (e->idle_kernel)
			any = fprintf(out, "kernel %zu", e->idle_kernel) > 0;
		if (e->idle_shim)
			any = fprintf(out, "%sshim %zu", any ? ", " : "", e->idle_shim) > 0;
		if (e->idle_age)
			fprintf(out, "%snever used %zu", any ? ", " : "", e->idle_age);
		fprintf(out, "), %zu/%zu idle > %s", e->idle, g->count,
			lw_duration_format(e->idle_for_ns, c, sizeof c));
		if (e->close_wait)
			fprintf(out, ", %zu in CLOSE_WAIT", e->close_wait);
		if (e->kernel_known)
			fprintf(out, ", recv-q %llu B, send-q %llu B", (unsigned long long)e->rqueue,
				(unsigned long long)e->wqueue);
	}
	if (e->have_interval) {
		double min = (double)e->interval_ns / 60e9;
		lw_duration_format(e->interval_ns, a, sizeof a);
		fprintf(out, "; over %s: %zu -> %zu open (%+lld)", a, e->count_start, e->count_end,
			(long long)e->count_end - (long long)e->count_start);
		if (g->by == LW_BY_OPEN && min > 0)
			fprintf(out, ", %.1f/min opened, %.1f/min closed", (double)e->opened / min,
				(double)e->closed / min);
	} else if (e->growing) {
		fprintf(out, "; growing: idle members opened over %s",
			lw_duration_format(g->age_max_ns - g->age_min_ns, a, sizeof a));
	}
	int before_attach = !g->stack_id && (g->origin_mask & (1u << LW_ORIGIN_ATTACH));
	if (g->split && before_attach)
		fprintf(out, "; %zu of the %zu open before the attach", g->count, e->key_count);
	else if (g->split)
		fprintf(out, "; %zu of %zu opened here", g->count, e->key_count);
	fputc('\n', out);
}

/* "7", "7, 9", "7, 9, ..." */
static void text_int_list(FILE *out, const int *v, size_t n, int more)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%d", i ? ", " : "", v[i]);
	if (more)
		fputs(", ...", out);
}

/*
 * Who waits on the members (watch.c), under a live group when the watch
 * view was read: "3 of 3 by epoll fd 7 (thread 4242 waiting); 1 of 3 by
 * thread 4243 blocked reading"; for a leak suspect nobody waits on, says so.
 */
static void text_watch(FILE *out, const struct lw_report *r, const struct lw_group *g)
{
	const struct lw_evidence *e = &g->ev;
	if (!r->join.watch.loaded || g->verdict == LW_V_LISTENING || g->verdict == LW_V_LEFT_OPEN)
		return;
	if (!e->watched) {
		if (g->verdict == LW_V_LEAK_SUSPECT)
			fprintf(out, "  watched     0 of %zu: in no epoll set, no thread blocked on %s\n", g->count,
				g->count == 1 ? "it" : "them");
		return;
	}
	struct lw_watch_summary ws;
	lw_present_watch(g, &ws);
	fputs("  watched    ", out);
	if (e->watched_epoll) {
		fprintf(out, " %zu of %zu by epoll fd%s ", e->watched_epoll, g->count, ws.nepoll_fds > 1 ? "s" : "");
		text_int_list(out, ws.epoll_fds, ws.nepoll_fds, ws.more_epoll_fds);
		if (ws.nwaiters) {
			fprintf(out, " (thread%s ", ws.nwaiters > 1 ? "s" : "");
			text_int_list(out, ws.waiters, ws.nwaiters, ws.more_waiters);
			fputs(" waiting)", out);
		}
	}
	if (e->watched_thread) {
		fprintf(out, "%s %zu of %zu by ", e->watched_epoll ? ";" : "", e->watched_thread, g->count);
		for (size_t i = 0; i < ws.nblocked && i < 3; i++)
			fprintf(out, "%sthread %d blocked %s", i ? ", " : "", ws.blocked[i].tid,
				lw_wait_call_name(ws.blocked[i].call));
		if (ws.nblocked > 3 || ws.more_blocked)
			fputs(", ...", out);
	}
	if (e->watched_peer) {
		fprintf(out, "%s %zu of %zu waited on in related process%s ", e->watched_epoll || e->watched_thread ? ";" : "",
			e->watched_peer, g->count, ws.npeer_pids > 1 ? "es" : "");
		text_int_list(out, ws.peer_pids, ws.npeer_pids, ws.more_peer_pids);
		fputs(" (a child or the parent: the same socket or its other end)", out);
	}
	fputc('\n', out);
}

/* A query on one line: whitespace runs as one space, control characters as
 * '?', at most max characters ("..." after a cut), in double quotes. */
static void text_query(FILE *out, const char *q, size_t max)
{
	char buf[LW_PG_QUERY_MAX + 8];
	size_t n = 0;
	int cut = 0;
	for (const char *p = q; *p; p++) {
		int space = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
		if (space && (n == 0 || buf[n - 1] == ' '))
			continue;
		if (n == max) {
			cut = 1;
			break;
		}
		buf[n++] = space ? ' ' : *p;
	}
	while (n && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	lw_present_scrub(buf);
	fprintf(out, "\"%s%s\"", buf, cut ? "..." : "");
}

/*
 * The database's view of a group (--pg): one line, "2 idle in transaction
 * (since 5h59m), 1 idle (since 3s); last query "SELECT ..." (2 of 3)";
 * with --all one "backend" line per joined member.
 */
static void text_pg(FILE *out, struct lw_report *r, const struct lw_group *g)
{
	struct lw_pg_summary s;
	char d[32];
	if (!lw_pg_summarize(r->pg, g, &s))
		return;
	fputs("  database   ", out);
	const char *sep = " ";
	for (size_t i = 0; i < s.nstates; i++) {
		fprintf(out, "%s%zu %s", sep, s.states[i].n, s.states[i].state);
		if (s.states[i].oldest_s >= 0)
			fprintf(out, " (since %s)", lw_duration_format((uint64_t)(s.states[i].oldest_s * 1e9), d, sizeof d));
		sep = ", ";
	}
	if (s.oldest_xact_s >= 0)
		fprintf(out, "%soldest transaction open %s", sep,
			lw_duration_format((uint64_t)(s.oldest_xact_s * 1e9), d, sizeof d));
	if (s.nqueries) {
		fputs(s.joined ? "; last query " : " last query ", out);
		text_query(out, s.queries[0].query, 72);
		if (s.queries[0].n < s.joined)
			fprintf(out, " (%zu of %zu)", s.queries[0].n, s.joined);
		if (s.nqueries_total > 1)
			fprintf(out, ", %zu other quer%s", s.nqueries_total - 1, s.nqueries_total == 2 ? "y" : "ies");
	}
	sep = s.joined ? "; " : " ";
	if (s.not_found) {
		fprintf(out, "%s%zu not in pg_stat_activity%s", sep, s.not_found,
			r->pg->hidden ? " (or hidden: sessions of other roles)" : "");
		sep = "; ";
	}
	if (s.unix_members)
		fprintf(out, "%s%zu over a unix socket: not joinable (no client port)", sep, s.unix_members);
	fputc('\n', out);
	if (!r->opts.all)
		return;
	for (size_t i = 0; i < g->count; i++) {
		const struct lw_member *m = &g->members[i];
		const struct lw_pg_backend *b = lw_pg_find(r->pg, m);
		if (!b)
			continue;
		char local[64];
		fprintf(out, "  backend     fd %d %s -> pid %d %s", m->fd, lw_pg_member_local(m, local, sizeof local),
			b->pid, lw_pg_state_word(b));
		if (b->state_age_s >= 0)
			fprintf(out, " since %s", lw_duration_format((uint64_t)(b->state_age_s * 1e9), d, sizeof d));
		if (b->xact_age_s >= 0)
			fprintf(out, ", transaction %s", lw_duration_format((uint64_t)(b->xact_age_s * 1e9), d, sizeof d));
		if (b->wait_event[0]) {
			fputs(", waiting ", out);
			lw_present_put_safe(out, b->wait_event_type);
			fputc('/', out);
			lw_present_put_safe(out, b->wait_event);
		}
		fputs(", ", out);
		lw_present_put_safe(out, b->user);
		fputc('@', out);
		lw_present_put_safe(out, b->database);
		if (b->query) {
			fputc(' ', out);
			text_query(out, b->query, 60);
		}
		fputc('\n', out);
	}
}

/* Under the summary (--pg): which server, what we may see, what cannot be joined. */
static void text_pg_head(FILE *out, const struct lw_report *r)
{
	const struct lw_pg_view *v = r->pg;
	size_t joined = 0, unix_members = 0;
	for (size_t i = 0; i < r->grouping.ngroups; i++) {
		struct lw_pg_summary s;
		if (lw_pg_summarize(v, &r->grouping.groups[i], &s)) {
			joined += s.joined;
			unix_members += s.unix_members;
		}
	}
	fputs("database   ", out);
	lw_present_put_safe(out, v->server);
	fputs(" as ", out);
	lw_present_put_safe(out, v->user);
	fprintf(out, ": %zu client backend%s visible, %zu joined with this process's sockets", v->n - v->hidden,
		v->n - v->hidden == 1 ? "" : "s", joined);
	if (v->hidden)
		fprintf(out, ", %zu hidden", v->hidden);
	fputc('\n', out);
	if (v->hidden)
		fprintf(out, "note: %zu session%s of other roles show no address, state or query to %s (neither "
			     "superuser nor in pg_read_all_stats): connections they serve cannot be joined\n",
			v->hidden, v->hidden == 1 ? "" : "s", v->user);
	if (unix_members)
		fprintf(out, "note: %zu connection%s over a unix socket cannot be joined: pg_stat_activity gives "
			     "%s no client address or port (client_port -1)\n",
			unix_members, unix_members == 1 ? "" : "s", unix_members == 1 ? "it" : "them");
	if (!r->join.fd_ok)
		fputs("note: no kernel view of the process's sockets (process gone or /proc unreadable): nothing "
		      "to join by address\n", out);
}

static const char *const verdict_words[] = {
	[LW_V_LEFT_OPEN] = "left open", [LW_V_LEAK_SUSPECT] = "leak suspect", [LW_V_POOL] = "pool",
	[LW_V_ACTIVE] = "active", [LW_V_NEW] = "new", [LW_V_WATCHED] = "watched",
	[LW_V_LISTENING] = "listening",
};

static void text_group(FILE *out, struct lw_report *r, const struct lw_group *g, int cw, int dw,
		       const char *cwd)
{
	char desc[LW_ENDPOINT_MAX + 64], a1[32], a2[32], d[32];
	int live = g->verdict != LW_V_LEFT_OPEN;
	lw_present_group(g, LW_DESCRIBE_FULL, desc, sizeof desc);
	lw_duration_format(g->age_min_ns, a1, sizeof a1);
	lw_duration_format(g->age_max_ns, a2, sizeof a2);
	const char *al = lw_present_at_least(r) ? "at least " : "";
	if (live)
		fprintf(out, "%-12s  %*zu  %-*s  age %s%s", lw_verdict_title(g->verdict), cw, g->count, dw, desc, al,
			a1);
	else
		fprintf(out, "%-9s  %*zu  %-*s  age %s%s",
			g->supp ? "SUPPRESSED" : g->inherited ? "INHERITED" : "SOCKETS", cw, g->count,
			dw, desc, al, a1);
	if (g->age_min_ns / 1000000 != g->age_max_ns / 1000000)
		fprintf(out, "..%s", a2);
	if (g->verdict == LW_V_LEAK_SUSPECT) {
		if (g->ev.idle)
			fprintf(out, ", idle > %s (%zu/%zu)", lw_duration_format(g->ev.idle_for_ns, d, sizeof d),
				g->ev.idle, g->count);
		if (g->ev.close_wait)
			fprintf(out, ", CLOSE_WAIT (%zu/%zu)", g->ev.close_wait, g->count);
	} else if (live && g->verdict != LW_V_LISTENING) {
		fprintf(out, ", last I/O %s ago", lw_duration_format(g->ev.idle_min_ns, d, sizeof d));
	}
	for (size_t i = 0; i < g->nstates; i++)
		fprintf(out, "%s%s %zu", i ? ", " : "   ", g->states[i].name, g->states[i].n);
	fputc('\n', out);
	if (live) {
		text_evidence(out, g);
		text_watch(out, r, g);
	}
	if (r->pg)
		text_pg(out, r, g);
	if (g->origin_mask & ~((1u << LW_ORIGIN_SOCKET) | (1u << LW_ORIGIN_ACCEPT) | (1u << LW_ORIGIN_ATTACH))) {
		fputs("  via       ", out);
		for (unsigned o = 0; o < LW_ORIGIN_MAX; o++)
			if (g->origin_mask & (1u << o))
				fprintf(out, " %s", lw_origin_name(o));
		fputc('\n', out);
	}
	text_fds(out, g);
	if (g->npeers_total > 0) {
		fputs("  peers     ", out);
		for (size_t i = 0; i < g->npeers && i < 4; i++) {
			fputc(' ', out);
			lw_present_put_safe(out, g->peers[i]);
		}
		if (g->npeers_total > 4)
			fprintf(out, " ... (%zu distinct)", g->npeers_total);
		fputc('\n', out);
	}
	/* Sockets nobody ever wrote to say nothing new about last use once the image is gone. */
	int show_use = live || g->use_stack_id != 0 || g->use_share < g->count;
	/* The culprit of a leak inside a pool is who used it last, not who opened it. */
	if (g->supp)
		text_supp_by(out, g->supp);
	if (lw_present_use_first(g)) {
		text_last_used(out, r, g, cwd);
		text_opened(out, r, g, cwd);
	} else {
		text_opened(out, r, g, cwd);
		if (show_use && g->verdict != LW_V_LISTENING)
			text_last_used(out, r, g, cwd);
	}
	if (r->opts.gen_supp && lw_present_gen_wanted_sock(r, g))
		text_gen_supp(out, r, LW_SUPP_SOCKET, LW_REACH_UNKNOWN, g->stack_id);
}

/* ---- other kinds of descriptor (fdgroups.c) ---- */

/* What a group is, for its head line: "/var/log/app.log (file)",
 * "pipe", "2 paths: /tmp/a ... (file)". */
static void fd_group_desc(const struct lw_fd_group *g, char *buf, size_t len)
{
	const char *kind = lw_fd_kind_name(lw_fd_group_kind(g));
	const struct lw_fd_member *m = &g->members[0];
	if (g->npaths == 0)
		snprintf(buf, len, "%s", kind);
	else if (g->npaths == 1)
		snprintf(buf, len, "%s%s (%s)", m->path, m->path_truncated ? "..." : "", kind);
	else
		snprintf(buf, len, "%zu paths: %s%s ... (%s)", g->npaths, m->path, m->path_truncated ? "..." : "",
			 kind);
}

static void text_fd_group(FILE *out, struct lw_report *r, const struct lw_fd_group *g, int cw, int dw,
			  const char *cwd)
{
	char desc[LW_FDPATH_MAX + 96], a1[32], a2[32], fl[160];
	fd_group_desc(g, desc, sizeof desc);
	lw_duration_format(g->age_min_ns, a1, sizeof a1);
	lw_duration_format(g->age_max_ns, a2, sizeof a2);
	fprintf(out, "%-9s  %*zu  ", g->supp ? "SUPPRESSED" : g->inherited ? "INHERITED" : "FILES", cw, g->count);
	lw_present_put_safe(out, desc);
	fprintf(out, "%*s  age %s%s", dw > (int)strlen(desc) ? dw - (int)strlen(desc) : 0, "",
		lw_present_at_least(r) ? "at least " : "", a1);
	if (g->age_min_ns / 1000000 != g->age_max_ns / 1000000)
		fprintf(out, "..%s", a2);
	fputc('\n', out);
	if (g->verdict == LW_FDV_LEAK_SUSPECT) {
		char iv[32], span[32];
		if (g->have_growth)
			fprintf(out, "  verdict    LEAK SUSPECT, growing: %zu -> %zu open over %s (opened %llu, closed %llu)\n",
				g->count_start, g->count, lw_duration_format(g->interval_ns, iv, sizeof iv),
				(unsigned long long)g->opened, (unsigned long long)g->closed);
		else
			fprintf(out, "  verdict    LEAK SUSPECT, growing: %zu opened over %s, none given back\n", g->count,
				lw_duration_format(g->age_max_ns - g->age_min_ns, span, sizeof span));
	}
	if (g->origin_mask & ~((1u << LW_ORIGIN_OPEN) | (1u << LW_ORIGIN_ATTACH))) {
		fputs("  via       ", out);
		for (unsigned o = 0; o < LW_ORIGIN_MAX; o++)
			if (g->origin_mask & (1u << o))
				fprintf(out, " %s", lw_origin_name(o));
		fputc('\n', out);
	}
	const size_t shown = 16;
	fputs("  fds        ", out);
	for (size_t i = 0; i < g->count && i < shown; i++)
		fprintf(out, "%s%d", i ? " " : "", g->members[i].fd);
	if (g->count > shown)
		fprintf(out, " ... (%zu more)", g->count - shown);
	fputc('\n', out);
	const struct lw_fd_member *m = &g->members[0];
	if (lw_fd_oflags_format(g->kind, m->oflags, fl, sizeof fl)[0])
		fprintf(out, "  flags      %s\n", fl);
	/* what the kernel names it now, when that says more than the call did */
	if (m->now && strcmp(m->now, m->path) != 0) {
		fputs("  now        ", out);
		lw_present_put_safe(out, m->now);
		if (g->count > 1)
			fprintf(out, "  (fd %d)", m->fd);
		fputc('\n', out);
	}
	if (g->supp)
		text_supp_by(out, g->supp);
	if (g->inherited)
		fputs("  opened       before leakwatch loaded (inherited across exec or fork)\n", out);
	else if (!g->stack_id && (g->origin_mask & (1u << LW_ORIGIN_ATTACH)))
		fputs("  opened       before leakwatch attached (no stack; path: what the kernel names it)\n", out);
	else
		text_stack_w(out, r, g->stack_id, "opened at", 12, cwd);
	if (r->opts.gen_supp && lw_present_gen_wanted_fd(r, g))
		text_gen_supp(out, r, LW_SUPP_FD, LW_REACH_UNKNOWN, g->stack_id);
}

/* column_widen - widen the count column (cw) and the description column
 * (dw, at most 48) of a group table to fit one row. */
static void column_widen(int *cw, int *dw, size_t count, const char *desc)
{
	char num[32];
	int n = snprintf(num, sizeof num, "%zu", count);
	if (n > *cw)
		*cw = n;
	int d = (int)strlen(desc);
	if (d > *dw)
		*dw = d > 48 ? 48 : d;
}

static void text_fds_groups(FILE *out, struct lw_report *r, const char *cwd)
{
	const struct lw_fd_grouping *g = &r->fds;
	int cw = 1, dw = 0;
	for (size_t i = 0; i < g->ngroups; i++) {
		char desc[LW_FDPATH_MAX + 96];
		fd_group_desc(&g->groups[i], desc, sizeof desc);
		column_widen(&cw, &dw, g->groups[i].count, desc);
	}
	for (size_t i = 0; i < g->ngroups; i++)
		if (lw_present_fd_group_shown(r, &g->groups[i]))
			text_fd_group(out, r, &g->groups[i], cw, dw, cwd);
}

static void text_badclose(FILE *out, struct lw_report *r, const struct lw_badclose *b, const char *cwd)
{
	char age[32];
	lw_duration_format(r->now_ns > b->ns ? r->now_ns - b->ns : 0, age, sizeof age);
	if (b->prev_state == LW_H_CLOSED)
		fprintf(out, "BAD CLOSE  fd %d closed twice by tid %d, %s ago\n", b->fd, b->tid, age);
	else
		fprintf(out, "BAD CLOSE  fd %d closed by tid %d but was not open, %s ago\n", b->fd, b->tid,
			age);
	text_stack(out, r, b->stack_id, "closed at", cwd);
	if (b->prev_close_stack_id)
		text_stack(out, r, b->prev_close_stack_id, "previously", cwd);
	if (b->prev_open_stack_id)
		text_stack(out, r, b->prev_open_stack_id, "opened at", cwd);
}

/* Python: what the program dropped and the garbage collector closed. */
static void text_gc(FILE *out, struct lw_report *r, const char *cwd)
{
	for (size_t i = 0; i < r->ngc; i++) {
		const struct lw_gc_group *g = &r->gc[i];
		char age[32];
		int sock = g->kind == LW_FD_SOCKET;
		fprintf(out, "GC-CLOSED  %zu %s%s never closed by the program: dropped, closed by the garbage collector (ResourceWarning), the last %s ago\n",
			g->count, sock ? "socket" : lw_fd_kind_name(g->kind), g->count == 1 ? "" : "s",
			lw_duration_format(r->now_ns > g->last_ns ? r->now_ns - g->last_ns : 0, age, sizeof age));
		if (g->open_stack)
			text_stack(out, r, g->open_stack, "opened at", cwd);
		else
			fputs("  opened at    (no stack: before leakwatch attached)\n", out);
		text_stack(out, r, g->close_stack, "dropped at", cwd);
	}
}

static void text_drops(FILE *out, const struct lw_report *r)
{
	static const struct { enum lw_counter c; const char *what; } drops[] = {
		{ LW_CTR_DROP_HANDLE_FULL, "fd beyond handle table" },
		{ LW_CTR_DROP_STACK_FULL, "stack table full" },
		{ LW_CTR_DROP_MODULE_FULL, "module table full" },
		{ LW_CTR_DROP_UNWIND, "unwind failed" },
		{ LW_CTR_DROP_BUSY, "slot busy" },
		{ LW_CTR_DROP_REENTRANT, "re-entrant hook" },
		{ LW_CTR_DROP_HEAP_FULL, "heap table full" },
	};
	int any = 0;
	for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
		uint64_t v = r->snap.counters[drops[i].c];
		if (!v)
			continue;
		fprintf(out, "%s%s %llu", any ? ", " : "DROPPED    events the shim could not record: ",
			drops[i].what, (unsigned long long)v);
		any = 1;
	}
	if (any)
		fputc('\n', out);
	if (r->snap.busy)
		fprintf(out, "BUSY       %zu slot(s) skipped: a writer held them during the snapshot\n",
			r->snap.busy);
	if (r->snap.heap_unsettled && lw_kind_heap(r->opts.kind))
		fprintf(out, "BUSY       heap table was being replaced during the snapshot: some blocks may be "
			"missing (report again)\n");
	if (r->snap.missing_stacks)
		fprintf(out, "MISSING    %zu stack reference(s) not in the stack table (no stack recorded)\n",
			r->snap.missing_stacks);
	if (r->snap.counters[LW_CTR_CONFIG_INVALID])
		fprintf(out, "CONFIG     %llu LEAKWATCH_* value(s) rejected, defaults used "
			"(LEAKWATCH_LOG=1 names them)\n",
			(unsigned long long)r->snap.counters[LW_CTR_CONFIG_INVALID]);
}

/*
 * DESCRIPTORS: what the process holds against its soft RLIMIT_NOFILE, by
 * kind, and with --interval the growth and when the limit would be reached
 * at that rate ("Too many open files").
 */
/* "<lead>kind n, kind n": the nonzero counts of an lw_fdk array */
static void text_kind_counts(FILE *out, const char *lead, const uint64_t counts[LW_FDK_N])
{
	const char *sep = lead;
	for (int k = 0; k < LW_FDK_N; k++)
		if (counts[k]) {
			fprintf(out, "%s%s %llu", sep, lw_fdk_name((enum lw_fdk)k), (unsigned long long)counts[k]);
			sep = ", ";
		}
}

static void text_descriptors(FILE *out, const struct lw_report *r)
{
	const struct lw_fdusage *u = &r->fd_usage;
	if (!u->ok)
		return;
	fprintf(out, "DESCRIPTORS %llu open", (unsigned long long)u->open);
	if (u->limit_ok && u->soft != LW_FD_UNLIMITED)
		fprintf(out, " of %llu allowed (soft RLIMIT_NOFILE, %.0f%%)", (unsigned long long)u->soft,
			u->soft ? 100.0 * (double)u->open / (double)u->soft : 100.0);
	else if (u->limit_ok)
		fprintf(out, " (RLIMIT_NOFILE unlimited)");
	text_kind_counts(out, ": ", u->by_kind);
	/* what the shim never saw made: before it loaded, or by a call no hook
	 * sees (a raw system call, inside libc) */
	if (u->have_untracked && u->untracked)
		text_kind_counts(out, "; not seen made: ", u->untracked_by_kind);
	if (r->have_prev && r->prev_fd_usage.ok) {
		char d[32], e[32];
		uint64_t iv = r->now_ns > r->prev_now_ns ? r->now_ns - r->prev_now_ns : 0;
		lw_duration_format(iv, d, sizeof d);
		long long growth = (long long)u->open - (long long)r->prev_fd_usage.open;
		if (growth == 0)
			fprintf(out, "; no change in %s", d);
		else
			fprintf(out, "; %+lld in %s", growth, d);
		uint64_t eta = lw_fdusage_eta_ns(&r->prev_fd_usage, u, iv);
		if (eta == 1)
			fprintf(out, ": at the limit");
		else if (eta)
			fprintf(out, ": the limit in about %s at this rate", lw_duration_format(eta, e, sizeof e));
	}
	fputc('\n', out);
}

/* What the watch view could not see (watch.c): only when there are sockets to judge. */
static void text_watch_notes(FILE *out, const struct lw_report *r)
{
	const struct lw_watchset *w = &r->join.watch;
	if (!w->loaded || !lw_kind_sockets(r->opts.kind) || r->grouping.ngroups == 0)
		return;
	if (w->epoll_errno)
		fprintf(out, "note: cannot read /proc/%d/fdinfo of an epoll set (%s): sockets it watches look unwatched\n",
			r->join.pid, strerror(w->epoll_errno));
	if (w->task_errno)
		fprintf(out, "note: cannot read /proc/%d/task/*/syscall (%s): threads blocked on sockets not seen\n",
			r->join.pid, strerror(w->task_errno));
	if (w->nunattributed) {
		fprintf(out, "note: thread%s", w->nunattributed > 1 ? "s" : "");
		for (size_t i = 0; i < w->nunattributed && i < LW_WATCH_MAX_UNATTRIBUTED; i++)
			fprintf(out, "%s %d (%s)", i ? "," : "", w->unattributed[i],
				lw_wait_call_name(w->unattributed_call[i]));
		if (w->nunattributed > LW_WATCH_MAX_UNATTRIBUTED)
			fputs(", ...", out);
		fprintf(out, " blocked on descriptors not read: sockets %s waits on look unwatched\n",
			w->nunattributed > 1 ? "they" : "it");
	}
}

static void text_summary(FILE *out, const struct lw_report *r)
{
	const struct lw_snapshot *s = &r->snap;
	char up[32];
	lw_duration_format(lw_present_uptime_ns(r), up, sizeof up);
	fprintf(out, "leakwatch: pid %d (", s->hdr.pid);
	lw_present_put_safe(out, lw_present_command(s));
	fprintf(out, ") %s", lw_present_state_word(r));
	if (r->live == LW_LIVE_EXITED && s->hdr.exit_known)
		fprintf(out, " with status %d", s->hdr.exit_status);
	fprintf(out, ", %s%s %s", r->live == LW_LIVE_ALIVE ? "up" : "ran", lw_present_at_least(r) ? " at least" : "", up);
	int socks = lw_kind_sockets(r->opts.kind);
	int heap = lw_kind_heap(r->opts.kind) && r->heap.mode != LW_HEAP_OFF;
	if (socks) {
		fprintf(out, ", %zu open socket%s tracked", lw_snapshot_open_count(s),
			lw_snapshot_open_count(s) == 1 ? "" : "s");
		size_t nfds = lw_kind_fds(r->opts.kind) ? lw_snapshot_open_fds(s) : 0;
		if (nfds)
			fprintf(out, ", %zu other descriptor%s", nfds, nfds == 1 ? "" : "s");
		if (r->join.fd_ok)
			fprintf(out, ", %zu untracked", r->join.nuntracked);
		if (r->join.nstale)
			fprintf(out, ", %zu stale", r->join.nstale);
	}
	if (!socks && lw_kind_fds(r->opts.kind))
		fprintf(out, ", %zu open descriptor%s tracked (files, pipes, ...)", lw_snapshot_open_fds(s),
			lw_snapshot_open_fds(s) == 1 ? "" : "s");
	if (heap)
		fprintf(out, ", %zu live heap block%s recorded%s", s->nallocs, s->nallocs == 1 ? "" : "s",
			r->heap.estimated ? " (sampled)" : "");
	fputc('\n', out);
	/* attached to a running process: what the tables can and cannot know */
	uint64_t at = s->hdr.attach_monotonic_ns, dt = s->hdr.detach_monotonic_ns;
	if (at) {
		char a1[32], a2[32];
		fprintf(out, "note: attached %s ago (%u call sites taken over): what was open before is \"before attach\", without a stack; calls through pointers taken before are not seen\n",
			lw_duration_format(r->now_ns > at ? r->now_ns - at : 0, a1, sizeof a1), s->hdr.attach_patched);
		if (dt)
			fprintf(out, "note: detached %s ago: nothing recorded since, the tables show the process as it was then\n",
				lw_duration_format(r->now_ns > dt ? r->now_ns - dt : 0, a2, sizeof a2));
	}
	if (s->hdr.py_frames == LW_PY_UNSUPPORTED) {
		if (s->hdr.py_version)
			fprintf(out, "note: Python %u.%u: no known frame layout, stacks show C frames only\n",
				s->hdr.py_version >> 24, (s->hdr.py_version >> 16) & 0xff);
		else
			fprintf(out, "note: Python older than 3.11: stacks show C frames only\n");
	}
	/* right under the summary: it qualifies every number below */
	char inc[256];
	if (lw_present_incomplete(s, inc, sizeof inc))
		fprintf(out, "INCOMPLETE %s\n", inc);
	if (socks || lw_kind_fds(r->opts.kind))
		text_descriptors(out, r);
	if (lw_kind_heap(r->opts.kind) && !socks && r->heap.mode == LW_HEAP_OFF)
		fprintf(out, "note: heap tracking was off in this process: no heap data\n");
	if (r->join.pid > 0 && !r->join.fd_ok)
		fprintf(out, "note: cannot read /proc/%d/fd (%s); showing the segment alone\n", r->join.pid,
			strerror(r->join.fd_errno));
	/* the "below" notes only make sense when something is below */
	if ((!socks || r->grouping.ngroups == 0) && (!heap || r->heap.ngroups == 0))
		goto notes_done;
	const char *what = socks && heap ? "sockets and heap blocks" : heap ? "heap blocks" : "sockets";
	const char *open_word = socks && heap ? "open or allocated" : socks ? "open" : "allocated";
	if (r->live == LW_LIVE_EXECED)
		fprintf(out, "note: this image was replaced by execve(); %s below were %s at exec\n", what,
			open_word);
	else if (r->live == LW_LIVE_DEAD)
		fprintf(out, "note: the process is gone without an exit record (killed?); %s below were %s at the end\n",
			what, open_word);
	else if (r->live == LW_LIVE_EXITED)
		fprintf(out, "note: %s below were still %s at exit\n", what, open_word);
notes_done:
	text_watch_notes(out, r);
	if (!r->sym)
		fprintf(out, "note: symbolization unavailable (libdw); frames shown as module+offset\n");
}

static const char *heap_tag(const struct lw_heap_group *g)
{
	switch (g->cls) {
	case LW_HEAP_PROGRAM: return "HEAP";
	case LW_HEAP_SYSTEM: return "SYSTEM";
	case LW_HEAP_UNRECORDED: return "NO STACK";
	case LW_HEAP_SUPPRESSED: return "SUPPRESSED";
	case LW_HEAP_NCLASS: break;
	}
	return "HEAP";
}

/* "1000", "~1000": estimates carry a tilde. */
static char *heap_num(const struct lw_heap *h, double v, char *buf, size_t len)
{
	snprintf(buf, len, "%s%.0f", h->estimated ? "~" : "", v < 0 ? 0.0 : round(v));
	return buf;
}

static char *heap_bytes(const struct lw_heap *h, double v, char *buf, size_t len)
{
	char b[32];
	snprintf(buf, len, "%s%s", h->estimated ? "~" : "", lw_bytes_format(v, b, sizeof b));
	return buf;
}

/* What each suppression took out of this report (the built-in ones with --all). */
static void text_supp_uses(FILE *out, const struct lw_report *r)
{
	struct lw_supp_use u[64];
	size_t n = lw_present_supp_uses(r, r->opts.all, u, sizeof u / sizeof u[0]);
	const struct lw_heap *h = &r->heap;
	for (size_t i = 0; i < n; i++) {
		char nb[48], bb[48];
		fputs("SUPPRESSED ", out);
		int first = 1;
		if (u[i].sockets) {
			fprintf(out, "%zu socket%s", u[i].sockets, u[i].sockets == 1 ? "" : "s");
			first = 0;
		}
		if (u[i].fds) {
			fprintf(out, "%s%zu descriptor%s", first ? "" : ", ", u[i].fds, u[i].fds == 1 ? "" : "s");
			first = 0;
		}
		if (u[i].blocks > 0)
			fprintf(out, "%s%s block%s (%s)", first ? "" : ", ", heap_num(h, u[i].blocks, nb, sizeof nb),
				round(u[i].blocks) == 1 ? "" : "s", heap_bytes(h, u[i].bytes, bb, sizeof bb));
		fputs(" by '", out);
		lw_present_put_safe(out, u[i].e->name);
		fputs("' (", out);
		lw_present_put_safe(out, u[i].e->file);
		fprintf(out, ":%d)\n", u[i].e->line);
	}
}

static void text_heap_group(FILE *out, struct lw_report *r, const struct lw_heap_group *g, int tw, int cw,
			    const char *cwd)
{
	const struct lw_heap *h = &r->heap;
	char n[48], b[48], t[48], a1[32], a2[32], med[32];
	heap_num(h, g->blocks, n, sizeof n);
	heap_bytes(h, g->bytes, b, sizeof b);
	heap_bytes(h, g->total_bytes, t, sizeof t);
	lw_duration_format(g->age_min_ns, a1, sizeof a1);
	lw_duration_format(g->age_max_ns, a2, sizeof a2);
	lw_duration_format(g->age_median_ns, med, sizeof med);
	/* An estimate from few samples is a guess: say how few (1/sqrt(samples) relative error). */
	char est[48] = "";
	if (h->estimated && g->samples < LW_HEAP_FEW_SAMPLES)
		snprintf(est, sizeof est, " (est. from %zu sample%s)", g->samples, g->samples == 1 ? "" : "s");
	char cls[48] = "";
	if (h->reach_checked)
		snprintf(cls, sizeof cls, ", %s", lw_reach_label(g->reach));
	fprintf(out, "%-*s %*s block%s  %s live%s%s  (allocated %s total)  age %s%s", tw, heap_tag(g), cw, n,
		round(g->blocks) == 1 ? " " : "s", b, cls, est, t, lw_present_at_least(r) ? "at least " : "", a1);
	if (g->age_min_ns / 1000000 != g->age_max_ns / 1000000)
		fprintf(out, "..%s, median %s", a2, med);
	fputc('\n', out);
	if (g->supp)
		text_supp_by(out, g->supp);
	text_stack_w(out, r, g->stack_id, "allocated at", 13, cwd);
	if (r->opts.gen_supp && lw_present_gen_wanted_heap(r, g))
		text_gen_supp(out, r, LW_SUPP_HEAP, r->heap.reach_checked ? g->reach : LW_REACH_UNKNOWN, g->stack_id);
}

static void text_heap(FILE *out, struct lw_report *r, const char *cwd)
{
	const struct lw_heap *h = &r->heap;
	char n[48], b[48], d[32];
	if (h->estimated)
		fprintf(out, "heap: sampled, one sample per %s allocated on average; numbers marked ~ are estimates\n",
			lw_bytes_format((double)h->sample_bytes, b, sizeof b));
	int tw = 8, cw = 1;
	for (size_t i = 0; i < h->ngroups; i++) {
		const struct lw_heap_group *g = &h->groups[i];
		if (!lw_present_heap_group_shown(r, g))
			continue;
		int w = (int)strlen(heap_num(h, g->blocks, n, sizeof n));
		if (w > cw)
			cw = w;
		if ((int)strlen(heap_tag(g)) > tw)
			tw = (int)strlen(heap_tag(g));
	}
	if (h->reach_checked) {
		/* valgrind's LEAK SUMMARY, every block counted */
		char d2[32];
		fprintf(out, "LEAK SUMMARY (every thread stopped %s, %zu thread%s):",
			lw_duration_format(h->reach_pause_ns, d2, sizeof d2), h->reach_threads,
			h->reach_threads == 1 ? "" : "s");
		for (int c = LW_REACH_DEFINITE; c <= LW_REACH_NCLASS; c++) {
			int k = c == LW_REACH_NCLASS ? LW_REACH_UNKNOWN : c;
			if (k == LW_REACH_UNKNOWN && h->reach_blocks[k] <= 0)
				continue;
			fprintf(out, "%s %s %s block%s (%s)", c == LW_REACH_DEFINITE ? "" : ",",
				lw_reach_label((enum lw_reach)k), heap_num(h, h->reach_blocks[k], n, sizeof n),
				round(h->reach_blocks[k]) == 1 ? "" : "s", heap_bytes(h, h->reach_bytes[k], b, sizeof b));
		}
		if (h->suppressed_blocks > 0)
			fprintf(out, ", suppressed %s block%s (%s)", heap_num(h, h->suppressed_blocks, n, sizeof n),
				round(h->suppressed_blocks) == 1 ? "" : "s", heap_bytes(h, h->suppressed_bytes, b, sizeof b));
		fputc('\n', out);
	}
	if (h->blocks[LW_HEAP_PROGRAM] <= 0) {
		if (r->opts.older_than_ns)
			fprintf(out, "no live heap blocks older than %s allocated by the program\n",
				lw_duration_format(r->opts.older_than_ns, d, sizeof d));
		else
			fprintf(out, "no live heap blocks allocated by the program\n");
	}
	for (size_t i = 0; i < h->ngroups; i++)
		if (lw_present_heap_group_shown(r, &h->groups[i]))
			text_heap_group(out, r, &h->groups[i], tw, cw, cwd);
	if (!r->opts.all) {
		double hb = 0, hn = 0;
		size_t sites = 0;
		for (size_t i = 0; i < h->ngroups; i++)
			if (!lw_present_heap_group_shown(r, &h->groups[i]) && h->groups[i].cls != LW_HEAP_SUPPRESSED) {
				hb += h->groups[i].bytes;
				hn += h->groups[i].blocks;
				sites++;
			}
		if (sites && h->reach_checked)
			fprintf(out, "(%s block%s, %s not listed: still reachable, kept by the C/C++ runtime or without a stack; --all shows them)\n",
				heap_num(h, hn, n, sizeof n), round(hn) == 1 ? "" : "s",
				heap_bytes(h, hb, b, sizeof b));
		else if (sites)
			fprintf(out, "(%s block%s, %s not counted: kept by the C/C++ runtime or without a stack; --all shows them)\n",
				heap_num(h, hn, n, sizeof n), round(hn) == 1 ? "" : "s",
				heap_bytes(h, hb, b, sizeof b));
	}
}

static void text_sockets(FILE *out, struct lw_report *r, const char *cwd)
{
	const struct lw_grouping *g = &r->grouping;
	int cw = 1, dw = 0;
	for (size_t i = 0; i < g->ngroups; i++) {
		char desc[LW_ENDPOINT_MAX + 64];
		lw_present_group(&g->groups[i], LW_DESCRIBE_FULL, desc, sizeof desc);
		column_widen(&cw, &dw, g->groups[i].count, desc);
	}
	if (g->ngroups && !lw_report_ended(r)) {
		size_t nv[LW_V_LISTENING + 1];
		lw_present_verdict_counts(g, nv);
		char d[32];
		fprintf(out, "sockets by verdict (idle > %s, grouped by %s stack):",
			lw_duration_format(r->opts.idle_for_ns ? r->opts.idle_for_ns : LW_IDLE_FOR_DEFAULT_NS, d,
					   sizeof d),
			r->opts.by == LW_BY_USE ? "last-use" : "creation");
		int first = 1;
		for (int v = LW_V_LEAK_SUSPECT; v <= LW_V_LISTENING; v++)
			if (nv[v]) {
				fprintf(out, "%s %zu %s", first ? "" : ",", nv[v], verdict_words[v]);
				first = 0;
			}
		fputc('\n', out);
	}
	if (r->pg)
		text_pg_head(out, r);
	if (g->nleaked == 0) {
		char d[32], sp[48] = "";
		if (g->nsuppressed)
			snprintf(sp, sizeof sp, " but %zu suppressed", g->nsuppressed);
		if (r->opts.older_than_ns)
			fprintf(out, "no open sockets older than %s created under leakwatch%s\n",
				lw_duration_format(r->opts.older_than_ns, d, sizeof d), sp);
		else
			fprintf(out, "no open sockets created under leakwatch%s\n", sp);
	}
	for (size_t i = 0; i < g->ngroups; i++)
		if (lw_present_sock_group_shown(r, &g->groups[i]))
			text_group(out, r, &g->groups[i], cw, dw, cwd);
	if (lw_kind_fds(r->opts.kind))
		text_fds_groups(out, r, cwd);

	if (r->join.nuntracked) {
		fprintf(out, "UNTRACKED  %zu socket%s the shim never saw:", r->join.nuntracked,
			r->join.nuntracked == 1 ? "" : "s");
		for (size_t i = 0; i < r->join.nuntracked && i < 16; i++)
			fprintf(out, " fd %d (inode %llu)%s", r->join.untracked[i].fd,
				(unsigned long long)r->join.untracked[i].inode,
				i + 1 < r->join.nuntracked && i < 15 ? "," : "");
		if (r->join.nuntracked > 16)
			fprintf(out, " ...");
		fputc('\n', out);
	}
	if (r->opts.all && r->join.nstale) {
		fprintf(out, "STALE      %zu entr%s no longer match /proc/%d/fd (closed where no hook saw it):",
			r->join.nstale, r->join.nstale == 1 ? "y" : "ies", r->join.pid);
		for (size_t i = 0; i < r->snap.nhandles; i++)
			if (r->snap.handles[i].h.state == LW_H_OPEN && !lw_join_valid(&r->join, &r->snap, i))
				fprintf(out, " fd %d", r->snap.handles[i].fd);
		fputc('\n', out);
	}
	for (size_t i = 0; i < r->snap.nbadcloses; i++)
		if (r->snap.badcloses[i].what == LW_BADCLOSE_EBADF)
			text_badclose(out, r, &r->snap.badcloses[i], cwd);
	text_gc(out, r, cwd);
}

int lw_render_text_sock_group(FILE *out, struct lw_report *r, const struct lw_group *g)
{
	char cwd[PATH_MAX], desc[LW_ENDPOINT_MAX + 64];
	int cw = 1, dw = 0;
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	column_widen(&cw, &dw, g->count, lw_present_group(g, LW_DESCRIBE_FULL, desc, sizeof desc));
	text_group(out, r, g, cw, dw, cwd);
	return ferror(out) ? -1 : 0;
}

int lw_render_text_heap_group(FILE *out, struct lw_report *r, const struct lw_heap_group *g)
{
	char cwd[PATH_MAX], n[48];
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	int tw = (int)strlen(heap_tag(g)), cw = (int)strlen(heap_num(&r->heap, g->blocks, n, sizeof n));
	text_heap_group(out, r, g, tw > 8 ? tw : 8, cw, cwd);
	return ferror(out) ? -1 : 0;
}

int lw_render_text(FILE *out, struct lw_report *r)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	text_summary(out, r);
	if (lw_kind_sockets(r->opts.kind))
		text_sockets(out, r, cwd);
	else if (lw_kind_fds(r->opts.kind))
		text_fds_groups(out, r, cwd);
	if (lw_kind_heap(r->opts.kind) && r->heap.mode != LW_HEAP_OFF)
		text_heap(out, r, cwd);
	text_supp_uses(out, r);
	text_drops(out, r);
	return ferror(out) ? -1 : 0;
}

