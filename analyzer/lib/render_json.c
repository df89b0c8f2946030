/* SPDX-License-Identifier: MIT */
/*
 * render_json.c — `--format json`: one object per segment, written with the
 * JSON writer (json.h).  The format is documented in docs/report-format.md
 * and checked against docs/report-schema.json by the tests.
 */
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "names.h"
#include "pgjoin.h"
#include "present.h"
#include "json.h"

/* "origins": every origin in mask (1u << enum lw_origin) */
static void json_origins(struct lw_json *j, uint32_t mask)
{
	lw_json_begin_array(j, "origins");
	for (unsigned o = 0; o < LW_ORIGIN_MAX; o++)
		if (mask & (1u << o))
			lw_json_str(j, NULL, lw_origin_name(o));
	lw_json_end_array(j);
}

/* {kind: n} for the nonzero counts of an lw_fdk array */
static void json_kind_counts(struct lw_json *j, const char *key, const uint64_t counts[LW_FDK_N])
{
	lw_json_begin_object(j, key);
	for (int k = 0; k < LW_FDK_N; k++)
		if (counts[k])
			lw_json_uint(j, lw_fdk_name((enum lw_fdk)k), counts[k]);
	lw_json_end_object(j);
}

void lw_render_json_frames(struct lw_json *j, const char *key, const struct lw_frame *frames, size_t n)
{
	lw_json_begin_array(j, key);
	for (size_t i = 0; i < n; i++) {
		const struct lw_frame *f = &frames[i];
		lw_json_begin_object(j, NULL);
		lw_json_hex(j, "addr", f->addr);
		lw_json_str(j, "function", f->function);
		lw_json_str(j, "file", f->file);
		if (f->line > 0)
			lw_json_int(j, "line", f->line);
		else
			lw_json_null(j, "line");
		lw_json_str(j, "module", f->module);
		if (f->module)
			lw_json_hex(j, "module_offset", f->module_off);
		else
			lw_json_null(j, "module_offset");
		lw_json_bool(j, "inlined", f->inlined);
		lw_json_bool(j, "build_id_mismatch", f->buildid_mismatch);
		lw_json_bool(j, "python", f->python);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
}

static void json_stack(struct lw_json *j, const char *key, struct lw_report *r, uint32_t stack_id)
{
	struct lw_frame frames[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, frames, LW_PRESENT_MAX_FRAMES);
	lw_render_json_frames(j, key, frames, n);
}

static const char *role_name(enum lw_endpoint_role role)
{
	return role == LW_EP_PEER ? "peer" : role == LW_EP_LOCAL ? "local" : "none";
}

static void json_growth(struct lw_json *j, const struct lw_group *g)
{
	const struct lw_evidence *e = &g->ev;
	if (!e->have_interval) {
		lw_json_null(j, "growth");
		return;
	}
	double min = (double)e->interval_ns / 60e9;
	lw_json_begin_object(j, "growth");
	lw_json_seconds(j, "interval_s", e->interval_ns);
	lw_json_uint(j, "count_start", e->count_start);
	lw_json_uint(j, "count_end", e->count_end);
	lw_json_int(j, "net", (long long)e->count_end - (long long)e->count_start);
	if (g->by == LW_BY_OPEN && min > 0) {
		lw_json_uint(j, "opened", e->opened);
		lw_json_uint(j, "closed", e->closed);
		lw_json_fixed3(j, "opened_per_min", (double)e->opened / min);
		lw_json_fixed3(j, "closed_per_min", (double)e->closed / min);
	} else {
		lw_json_null(j, "opened");
		lw_json_null(j, "closed");
		lw_json_null(j, "opened_per_min");
		lw_json_null(j, "closed_per_min");
	}
	lw_json_end_object(j);
}

static void json_evidence(struct lw_json *j, const struct lw_group *g)
{
	static const struct { unsigned bit; const char *name; } reasons[] = {
		{ LW_REASON_IDLE, "idle" }, { LW_REASON_CLOSE_WAIT, "close_wait" }, { LW_REASON_GROWING, "growing" },
	};
	const struct lw_evidence *e = &g->ev;
	int live = g->verdict != LW_V_LEFT_OPEN;
	lw_json_begin_object(j, "evidence");
	lw_json_seconds(j, "idle_for_s", e->idle_for_ns);
	lw_json_uint(j, "members", g->count);
	lw_json_uint(j, "idle", e->idle);
	lw_json_uint(j, "close_wait", e->close_wait);
	lw_json_uint(j, "listening", e->listening);
	lw_json_uint(j, "young", e->young);
	lw_json_uint(j, "used_recently", e->used_recently);
	if (live && g->verdict != LW_V_LISTENING) {
		lw_json_seconds(j, "idle_min_s", e->idle_min_ns);
		lw_json_seconds(j, "idle_max_s", e->idle_max_ns);
	} else {
		lw_json_null(j, "idle_min_s");
		lw_json_null(j, "idle_max_s");
	}
	lw_json_begin_object(j, "idle_source");
	lw_json_uint(j, "kernel", e->idle_kernel);
	lw_json_uint(j, "shim", e->idle_shim);
	lw_json_uint(j, "age", e->idle_age);
	lw_json_end_object(j);
	lw_json_uint(j, "kernel_known", e->kernel_known);
	lw_json_uint(j, "watched", e->watched);
	lw_json_uint(j, "recv_queue", e->rqueue);
	lw_json_uint(j, "send_queue", e->wqueue);
	lw_json_begin_array(j, "reasons");
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (e->reasons & reasons[i].bit)
			lw_json_str(j, NULL, reasons[i].name);
	lw_json_end_array(j);
	lw_json_bool(j, "growing", e->growing);
	lw_json_uint(j, "key_count", e->key_count);
	lw_json_bool(j, "split", g->split);
	lw_json_uint(j, "stack_opened", e->stack_opened);
	lw_json_uint(j, "stack_closed", e->stack_closed);
	json_growth(j, g);
	lw_json_end_object(j);
}

/* Who waits on the members (watch.c); null without a watch view (process gone, /proc unreadable). */
static void json_watch(struct lw_json *j, const struct lw_report *r, const struct lw_group *g)
{
	const struct lw_evidence *e = &g->ev;
	if (!r->join.watch.loaded || g->verdict == LW_V_LEFT_OPEN) {
		lw_json_null(j, "watch");
		return;
	}
	struct lw_watch_summary ws;
	lw_present_watch(g, &ws);
	lw_json_begin_object(j, "watch");
	lw_json_uint(j, "watched", e->watched);
	lw_json_uint(j, "in_epoll", e->watched_epoll);
	lw_json_uint(j, "blocked", e->watched_thread);
	lw_json_uint(j, "by_peer", e->watched_peer);
	lw_json_begin_array(j, "epoll_fds");
	for (size_t i = 0; i < ws.nepoll_fds; i++)
		lw_json_int(j, NULL, ws.epoll_fds[i]);
	lw_json_end_array(j);
	lw_json_begin_array(j, "waiting_threads");
	for (size_t i = 0; i < ws.nwaiters; i++)
		lw_json_int(j, NULL, ws.waiters[i]);
	lw_json_end_array(j);
	lw_json_begin_array(j, "blocked_threads");
	for (size_t i = 0; i < ws.nblocked; i++) {
		lw_json_begin_object(j, NULL);
		lw_json_int(j, "tid", ws.blocked[i].tid);
		lw_json_str(j, "call", lw_wait_call_word(ws.blocked[i].call));
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_begin_array(j, "peer_pids");
	for (size_t i = 0; i < ws.npeer_pids; i++)
		lw_json_int(j, NULL, ws.peer_pids[i]);
	lw_json_end_array(j);
	lw_json_begin_array(j, "fds");
	for (size_t i = 0; i < g->count; i++)
		if (lw_member_watched(&g->members[i]))
			lw_json_int(j, NULL, g->members[i].fd);
	lw_json_end_array(j);
	lw_json_end_object(j);
}

static void json_watch_view(struct lw_json *j, const struct lw_report *r)
{
	const struct lw_watchset *w = &r->join.watch;
	if (!w->loaded) {
		lw_json_null(j, "watch_view");
		return;
	}
	lw_json_begin_object(j, "watch_view");
	lw_json_uint(j, "epoll_sets", w->nepoll);
	lw_json_str(j, "epoll_error", w->epoll_errno ? strerror(w->epoll_errno) : NULL);
	lw_json_uint(j, "threads", w->nthreads);
	lw_json_str(j, "threads_error", w->task_errno ? strerror(w->task_errno) : NULL);
	lw_json_begin_array(j, "unattributed");
	for (size_t i = 0; i < w->nunattributed && i < LW_WATCH_MAX_UNATTRIBUTED; i++) {
		lw_json_begin_object(j, NULL);
		lw_json_int(j, "tid", w->unattributed[i]);
		lw_json_str(j, "call", lw_wait_call_word(w->unattributed_call[i]));
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_uint(j, "unattributed_total", w->nunattributed);
	lw_json_end_object(j);
}

static void json_share(struct lw_json *j, const char *key, size_t n, size_t of)
{
	lw_json_begin_object(j, key);
	lw_json_uint(j, "count", n);
	lw_json_uint(j, "of", of);
	lw_json_end_object(j);
}

/* "suppressed": the entry that matched the group, or null. */
static void json_supp_ref(struct lw_json *j, const struct lw_supp *e)
{
	if (!e) {
		lw_json_null(j, "suppressed");
		return;
	}
	lw_json_begin_object(j, "suppressed");
	lw_json_str(j, "name", e->name);
	lw_json_str(j, "file", e->file);
	lw_json_int(j, "line", e->line);
	lw_json_bool(j, "default", lw_supp_is_default(e));
	lw_json_end_object(j);
}

/* --gen-suppressions: "suppression" is the entry text (null for groups that are no leak). */
static void json_gen_supp(struct lw_json *j, struct lw_report *r, int wanted, enum lw_supp_kind kind,
			  enum lw_reach reach, uint32_t stack_id)
{
	if (!r->opts.gen_supp)
		return;
	char *t = wanted ? lw_present_gen_supp(r, kind, reach, stack_id) : NULL;
	lw_json_str(j, "suppression", t);
	free(t);
}

/* What each suppression took out of this report (the built-in set's too, marked). */
static void json_supp_uses(struct lw_json *j, const struct lw_report *r)
{
	struct lw_supp_use u[256];
	size_t n = lw_present_supp_uses(r, 1, u, sizeof u / sizeof u[0]);
	lw_json_begin_array(j, "suppressions");
	for (size_t i = 0; i < n; i++) {
		lw_json_begin_object(j, NULL);
		lw_json_str(j, "name", u[i].e->name);
		lw_json_str(j, "file", u[i].e->file);
		lw_json_int(j, "line", u[i].e->line);
		lw_json_bool(j, "default", lw_supp_is_default(u[i].e));
		lw_json_uint(j, "sockets", u[i].sockets);
		lw_json_uint(j, "fds", u[i].fds);
		lw_json_count(j, "blocks", u[i].blocks);
		lw_json_count(j, "bytes", u[i].bytes);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
}

/* seconds with three decimals, null when < 0 (NULL in pg_stat_activity) */
static void json_age(struct lw_json *j, const char *key, double s)
{
	if (s < 0)
		lw_json_null(j, key);
	else
		lw_json_fixed3(j, key, s);
}

/* an empty string of pg_stat_activity is its NULL */
static void json_pg_str(struct lw_json *j, const char *key, const char *s)
{
	lw_json_str(j, key, s && *s ? s : NULL);
}

/* --pg: the group's pg object (docs/report-format.md), null when no member concerns the database. */
static void json_group_pg(struct lw_json *j, struct lw_report *r, const struct lw_group *g)
{
	struct lw_pg_summary s;
	if (!lw_pg_summarize(r->pg, g, &s)) {
		lw_json_null(j, "pg");
		return;
	}
	lw_json_begin_object(j, "pg");
	lw_json_uint(j, "joined", s.joined);
	lw_json_uint(j, "not_found", s.not_found);
	lw_json_uint(j, "unix", s.unix_members);
	lw_json_begin_object(j, "states");
	for (size_t i = 0; i < s.nstates; i++)
		lw_json_uint(j, s.states[i].state, s.states[i].n);
	lw_json_end_object(j);
	json_age(j, "oldest_state_change_s", s.oldest_state_s);
	lw_json_str(j, "oldest_state", s.oldest_state);
	json_age(j, "oldest_xact_s", s.oldest_xact_s);
	lw_json_begin_array(j, "queries");
	for (size_t i = 0; i < s.nqueries; i++) {
		lw_json_begin_object(j, NULL);
		lw_json_str(j, "query", s.queries[i].query);
		lw_json_uint(j, "count", s.queries[i].n);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_uint(j, "queries_total", s.nqueries_total);
	lw_json_begin_array(j, "connections");
	for (size_t i = 0; i < g->count; i++) {
		const struct lw_member *m = &g->members[i];
		const struct lw_pg_backend *b = lw_pg_find(r->pg, m);
		if (!b)
			continue;
		char local[64];
		lw_json_begin_object(j, NULL);
		lw_json_int(j, "fd", m->fd);
		lw_json_str(j, "local", lw_pg_member_local(m, local, sizeof local));
		lw_json_int(j, "backend_pid", b->pid);
		json_pg_str(j, "state", b->state);
		json_age(j, "state_change_age_s", b->state_age_s);
		json_age(j, "xact_age_s", b->xact_age_s);
		json_age(j, "query_age_s", b->query_age_s);
		json_age(j, "backend_age_s", b->backend_age_s);
		json_pg_str(j, "wait_event_type", b->wait_event_type);
		json_pg_str(j, "wait_event", b->wait_event);
		lw_json_str(j, "query", b->query);
		json_pg_str(j, "user", b->user);
		json_pg_str(j, "database", b->database);
		json_pg_str(j, "application_name", b->application);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_end_object(j);
}

/* --pg: the report's pg object; null without --pg. */
static void json_pg(struct lw_json *j, const struct lw_report *r)
{
	const struct lw_pg_view *v = r->pg;
	if (!v) {
		lw_json_null(j, "pg");
		return;
	}
	size_t joined = 0, unix_members = 0;
	for (size_t i = 0; i < r->grouping.ngroups; i++) {
		struct lw_pg_summary s;
		if (lw_pg_summarize(v, &r->grouping.groups[i], &s)) {
			joined += s.joined;
			unix_members += s.unix_members;
		}
	}
	lw_json_begin_object(j, "pg");
	lw_json_str(j, "server", v->server);
	lw_json_str(j, "user", v->user);
	lw_json_int(j, "server_version", v->version);
	lw_json_int(j, "server_port", v->server_port);
	lw_json_bool(j, "all_visible", v->all_visible);
	lw_json_uint(j, "backends", v->n);
	lw_json_uint(j, "hidden", v->hidden);
	lw_json_uint(j, "unix_clients", v->unix_clients);
	lw_json_uint(j, "joined", joined);
	lw_json_uint(j, "unix_unjoinable", unix_members);
	lw_json_end_object(j);
}

static void json_group(struct lw_json *j, struct lw_report *r, const struct lw_group *g)
{
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "kind", "socket");
	lw_json_uint(j, "count", g->count);
	lw_json_str(j, "family", lw_family_name(g->family));
	lw_json_str(j, "type", lw_type_name(g->type));
	lw_json_str(j, "origin", lw_origin_name(g->origin));
	json_origins(j, g->origin_mask);
	lw_json_str(j, "endpoint", g->endpoint);
	lw_json_str(j, "endpoint_role", role_name(g->role));
	lw_json_begin_array(j, "peers");
	for (size_t i = 0; i < g->npeers; i++)
		lw_json_str(j, NULL, g->peers[i]);
	lw_json_end_array(j);
	lw_json_uint(j, "peers_total", g->npeers_total);
	lw_json_seconds(j, "age_min_s", g->age_min_ns);
	lw_json_seconds(j, "age_max_s", g->age_max_ns);
	lw_json_begin_object(j, "states");
	for (size_t i = 0; i < g->nstates; i++)
		lw_json_uint(j, g->states[i].name, g->states[i].n);
	lw_json_end_object(j);
	lw_json_begin_array(j, "fds");
	for (size_t i = 0; i < g->nfds; i++)
		lw_json_int(j, NULL, g->fds[i]);
	lw_json_end_array(j);
	lw_json_bool(j, "inherited", g->inherited);
	lw_json_uint(j, "stack_id", g->stack_id);
	json_stack(j, "stack", r, g->stack_id);
	lw_json_str(j, "verdict", lw_verdict_name(g->verdict));
	json_evidence(j, g);
	json_watch(j, r, g);
	if (r->pg)
		json_group_pg(j, r, g);
	lw_json_uint(j, "last_use_stack_id", g->use_stack_id);
	json_stack(j, "last_use_stack", r, g->use_stack_id);
	json_share(j, "last_use_share", g->use_share, g->count);
	json_share(j, "open_share", g->open_share, g->count);
	json_supp_ref(j, g->supp);
	json_gen_supp(j, r, lw_present_gen_wanted_sock(r, g), LW_SUPP_SOCKET, LW_REACH_UNKNOWN, g->stack_id);
	lw_json_end_object(j);
}

static void json_counters(struct lw_json *j, const struct lw_snapshot *s)
{
	static const struct { enum lw_counter c; const char *name; } counters[] = {
		{ LW_CTR_EVENTS, "events" }, { LW_CTR_SOCK_OPENED, "sock_opened" },
		{ LW_CTR_SOCK_CLOSED, "sock_closed" }, { LW_CTR_BAD_CLOSES, "bad_closes" },
		{ LW_CTR_STALE_CLOSES, "stale_closes" }, { LW_CTR_HEAP_ALLOCS, "heap_allocs" },
		{ LW_CTR_HEAP_FREES, "heap_frees" }, { LW_CTR_HEAP_UNTRACKED_FREES, "heap_untracked_frees" },
		{ LW_CTR_GUARD_RECOVERED, "guard_recovered" }, { LW_CTR_CONFIG_INVALID, "config_invalid" },
		{ LW_CTR_HEAP_GROWS, "heap_grows" }, { LW_CTR_RECLAIMED, "reclaimed" },
		{ LW_CTR_FD_OPENED, "fd_opened" }, { LW_CTR_FD_CLOSED, "fd_closed" },
		{ LW_CTR_UNSEEN_CLOSES, "unseen_closes" },
	}, drops[] = {
		{ LW_CTR_DROP_HANDLE_FULL, "handle_full" }, { LW_CTR_DROP_STACK_FULL, "stack_full" },
		{ LW_CTR_DROP_MODULE_FULL, "module_full" }, { LW_CTR_DROP_UNWIND, "unwind" },
		{ LW_CTR_DROP_BUSY, "busy" }, { LW_CTR_DROP_REENTRANT, "reentrant" },
		{ LW_CTR_DROP_HEAP_FULL, "heap_full" }, { LW_CTR_DROP_RESERVE, "reserve" },
	};
	lw_json_begin_object(j, "counters");
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
		lw_json_uint(j, counters[i].name, s->counters[counters[i].c]);
	lw_json_begin_object(j, "drops");
	for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++)
		lw_json_uint(j, drops[i].name, s->counters[drops[i].c]);
	lw_json_end_object(j);
	lw_json_end_object(j);
}

void lw_render_json_incomplete(struct lw_json *j, const char *key, const struct lw_snapshot *s)
{
	const char *names[8];
	char why[96];
	if (!lw_snapshot_is_incomplete(s)) {
		lw_json_null(j, key);
		return;
	}
	size_t n = lw_present_incomplete_tables(s, names, 8);
	lw_json_begin_object(j, key);
	lw_json_begin_array(j, "tables");
	for (size_t i = 0; i < n; i++)
		lw_json_str(j, NULL, names[i]);
	lw_json_end_array(j);
	lw_json_str(j, "reason", lw_present_incomplete_reason(s, why, sizeof why));
	lw_json_uint(j, "dropped", s->counters[LW_CTR_DROP_RESERVE]);
	if (s->hdr.budget_bytes && s->layout >= 2)
		lw_json_uint(j, "budget_bytes", s->hdr.budget_bytes);
	else
		lw_json_null(j, "budget_bytes");
	lw_json_end_object(j);
}

static void json_heap_group(struct lw_json *j, struct lw_report *r, const struct lw_heap_group *g)
{
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "class", lw_heap_class_name(g->cls));
	lw_json_bool(j, "system", g->cls == LW_HEAP_SYSTEM);
	if (r->heap.reach_checked)
		lw_json_str(j, "reach", lw_reach_name(g->reach));
	else
		lw_json_null(j, "reach");
	lw_json_count(j, "count", g->blocks);
	lw_json_count(j, "bytes", g->bytes);
	lw_json_uint(j, "samples", g->samples);
	lw_json_count(j, "total_allocations", g->total_allocs);
	lw_json_count(j, "total_allocated_bytes", g->total_bytes);
	lw_json_seconds(j, "age_min_s", g->age_min_ns);
	lw_json_seconds(j, "age_median_s", g->age_median_ns);
	lw_json_seconds(j, "age_max_s", g->age_max_ns);
	lw_json_uint(j, "stack_id", g->stack_id);
	json_stack(j, "stack", r, g->stack_id);
	json_supp_ref(j, g->supp);
	json_gen_supp(j, r, lw_present_gen_wanted_heap(r, g), LW_SUPP_HEAP,
		      r->heap.reach_checked ? g->reach : LW_REACH_UNKNOWN, g->stack_id);
	lw_json_end_object(j);
}

static void json_heap(struct lw_json *j, struct lw_report *r)
{
	const struct lw_heap *h = &r->heap;
	double live_blocks, live_bytes;
	lw_present_heap_totals(h, &live_blocks, &live_bytes);
	lw_json_begin_object(j, "heap");
	lw_json_str(j, "mode", lw_heap_mode_name(h->mode));
	lw_json_uint(j, "sample_bytes", h->sample_bytes);
	lw_json_bool(j, "estimated", h->estimated);
	lw_json_uint(j, "samples", h->nsamples);
	lw_json_count(j, "live_blocks", live_blocks);
	lw_json_count(j, "live_bytes", live_bytes);
	lw_json_count(j, "program_blocks", h->blocks[LW_HEAP_PROGRAM]);
	lw_json_count(j, "program_bytes", h->bytes[LW_HEAP_PROGRAM]);
	/* A block of a running process is live, not leaked: it may still be freed. */
	if (lw_report_ended(r)) {
		lw_json_count(j, "leaked_blocks", h->leaked_blocks);
		lw_json_count(j, "leaked_bytes", h->leaked_bytes);
	} else {
		lw_json_null(j, "leaked_blocks");
		lw_json_null(j, "leaked_bytes");
	}
	lw_json_count(j, "system_blocks", h->blocks[LW_HEAP_SYSTEM]);
	lw_json_count(j, "system_bytes", h->bytes[LW_HEAP_SYSTEM]);
	lw_json_count(j, "suppressed_blocks", h->suppressed_blocks);
	lw_json_count(j, "suppressed_bytes", h->suppressed_bytes);
	/* valgrind's LEAK SUMMARY, when a reachability check ran (else null) */
	if (h->reach_checked) {
		lw_json_begin_object(j, "reachability");
		lw_json_fixed3(j, "pause_ms", (double)h->reach_pause_ns / 1e6);
		lw_json_uint(j, "threads", h->reach_threads);
		lw_json_begin_array(j, "leak_kinds");
		for (int c = LW_REACH_DEFINITE; c < LW_REACH_NCLASS; c++)
			if (h->leak_kinds & LW_REACH_BIT(c))
				lw_json_str(j, NULL, lw_reach_name((enum lw_reach)c));
		lw_json_end_array(j);
		for (int c = LW_REACH_DEFINITE; c <= LW_REACH_NCLASS; c++) {
			int k = c == LW_REACH_NCLASS ? LW_REACH_UNKNOWN : c;
			lw_json_begin_object(j, c == LW_REACH_NCLASS ? "not_checked" : lw_reach_name((enum lw_reach)k));
			lw_json_count(j, "blocks", h->reach_blocks[k]);
			lw_json_count(j, "bytes", h->reach_bytes[k]);
			lw_json_end_object(j);
		}
		lw_json_end_object(j);
	} else {
		lw_json_null(j, "reachability");
	}
	lw_json_begin_array(j, "groups");
	for (size_t i = 0; i < h->ngroups; i++)
		/* still reachable program blocks too: the text hides them, a
		 * program reading "reach" decides for itself */
		if (lw_present_heap_group_shown(r, &h->groups[i]) ||
		    (h->groups[i].cls == LW_HEAP_PROGRAM && h->groups[i].reach == LW_REACH_REACHABLE))
			json_heap_group(j, r, &h->groups[i]);
	lw_json_end_array(j);
	lw_json_end_object(j);
}

static void json_bad_close(struct lw_json *j, struct lw_report *r, const struct lw_badclose *b)
{
	lw_json_begin_object(j, NULL);
	lw_json_int(j, "fd", b->fd);
	lw_json_int(j, "tid", b->tid);
	lw_json_seconds(j, "age_s", r->now_ns > b->ns ? r->now_ns - b->ns : 0);
	lw_json_str(j, "kind", b->prev_state == LW_H_CLOSED ? "double_close" : "never_opened");
	lw_json_str(j, "prev_origin", lw_origin_name(b->prev_origin));
	json_stack(j, "stack", r, b->stack_id);
	json_stack(j, "prev_open_stack", r, b->prev_open_stack_id);
	json_stack(j, "prev_close_stack", r, b->prev_close_stack_id);
	lw_json_end_object(j);
}

/* "fd_usage": every descriptor of a live process by kind, against
 * RLIMIT_NOFILE; null for a process that is gone. */
static void json_fd_usage(struct lw_json *j, const struct lw_report *r)
{
	const struct lw_fdusage *u = &r->fd_usage;
	if (!u->ok) {
		lw_json_null(j, "fd_usage");
		return;
	}
	lw_json_begin_object(j, "fd_usage");
	lw_json_uint(j, "open", u->open);
	if (u->limit_ok && u->soft != LW_FD_UNLIMITED)
		lw_json_uint(j, "soft_limit", u->soft);
	else
		lw_json_null(j, "soft_limit");
	if (u->limit_ok && u->hard != LW_FD_UNLIMITED)
		lw_json_uint(j, "hard_limit", u->hard);
	else
		lw_json_null(j, "hard_limit");
	json_kind_counts(j, "by_kind", u->by_kind);
	if (u->have_untracked) {
		json_kind_counts(j, "untracked_by_kind", u->untracked_by_kind);
	} else {
		lw_json_null(j, "untracked_by_kind");
	}
	if (r->have_prev && r->prev_fd_usage.ok) {
		uint64_t iv = r->now_ns > r->prev_now_ns ? r->now_ns - r->prev_now_ns : 0;
		lw_json_int(j, "growth", (long long)u->open - (long long)r->prev_fd_usage.open);
		uint64_t eta = lw_fdusage_eta_ns(&r->prev_fd_usage, u, iv);
		if (eta)
			lw_json_seconds(j, "exhaustion_in_s", eta == 1 ? 0 : eta);
		else
			lw_json_null(j, "exhaustion_in_s");
	} else {
		lw_json_null(j, "growth");
		lw_json_null(j, "exhaustion_in_s");
	}
	lw_json_end_object(j);
}

static void json_fd_group(struct lw_json *j, struct lw_report *r, const struct lw_fd_group *g)
{
	char fl[160];
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "kind", lw_fd_kind_name(lw_fd_group_kind(g)));
	lw_json_str(j, "recorded_kind", lw_fd_kind_name(g->kind));
	lw_json_uint(j, "count", g->count);
	lw_json_str(j, "origin", lw_origin_name(g->origin));
	json_origins(j, g->origin_mask);
	lw_json_seconds(j, "age_min_s", g->age_min_ns);
	lw_json_seconds(j, "age_max_s", g->age_max_ns);
	lw_json_uint(j, "paths_total", g->npaths);
	lw_json_begin_array(j, "members");
	for (size_t i = 0; i < g->count; i++) {
		const struct lw_fd_member *m = &g->members[i];
		lw_json_begin_object(j, NULL);
		lw_json_int(j, "fd", m->fd);
		lw_json_str(j, "kind", lw_fd_kind_name(m->now_kind));
		lw_json_str(j, "path", m->path[0] ? m->path : NULL);
		lw_json_bool(j, "path_truncated", m->path_truncated);
		lw_json_str(j, "now", m->now);
		lw_json_str(j, "flags", lw_fd_oflags_format(g->kind, m->oflags, fl, sizeof fl)[0] ? fl : NULL);
		lw_json_str(j, "origin", lw_origin_name(m->origin));
		lw_json_seconds(j, "age_s", m->age_ns);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_bool(j, "inherited", g->inherited);
	lw_json_uint(j, "stack_id", g->stack_id);
	json_stack(j, "stack", r, g->stack_id);
	lw_json_str(j, "verdict", lw_fd_verdict_name(g->verdict));
	if (g->have_growth) {
		lw_json_begin_object(j, "growth");
		lw_json_seconds(j, "interval_s", g->interval_ns);
		lw_json_uint(j, "count_start", g->count_start);
		lw_json_uint(j, "count_end", g->count);
		lw_json_uint(j, "opened", g->opened);
		lw_json_uint(j, "closed", g->closed);
		lw_json_end_object(j);
	} else {
		lw_json_null(j, "growth");
	}
	json_supp_ref(j, g->supp);
	json_gen_supp(j, r, lw_present_gen_wanted_fd(r, g), LW_SUPP_FD, LW_REACH_UNKNOWN, g->stack_id);
	lw_json_end_object(j);
}

static void json_sockets(struct lw_json *j, struct lw_report *r)
{
	const struct lw_snapshot *s = &r->snap;
	lw_json_begin_array(j, "groups");
	for (size_t i = 0; i < r->grouping.ngroups; i++)
		if (lw_present_sock_group_shown(r, &r->grouping.groups[i]))
			json_group(j, r, &r->grouping.groups[i]);
	lw_json_end_array(j);

	lw_json_begin_array(j, "untracked");
	for (size_t i = 0; i < r->join.nuntracked; i++) {
		lw_json_begin_object(j, NULL);
		lw_json_int(j, "fd", r->join.untracked[i].fd);
		lw_json_uint(j, "inode", r->join.untracked[i].inode);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
	lw_json_uint(j, "stale", r->join.nstale);
	if (r->opts.all) {
		lw_json_begin_array(j, "stale_fds");
		for (size_t i = 0; i < s->nhandles; i++)
			if (s->handles[i].h.state == LW_H_OPEN && !lw_join_valid(&r->join, s, i))
				lw_json_int(j, NULL, s->handles[i].fd);
		lw_json_end_array(j);
	}
	lw_json_begin_array(j, "bad_closes");
	for (size_t i = 0; i < s->nbadcloses; i++)
		if (s->badcloses[i].what == LW_BADCLOSE_EBADF)
			json_bad_close(j, r, &s->badcloses[i]);
	lw_json_end_array(j);
	/* Python: dropped by the program, closed by its garbage collector */
	lw_json_begin_array(j, "gc_closed");
	for (size_t i = 0; i < r->ngc; i++) {
		const struct lw_gc_group *g = &r->gc[i];
		lw_json_begin_object(j, NULL);
		lw_json_str(j, "kind", lw_fd_kind_name(g->kind));
		lw_json_uint(j, "count", g->count);
		lw_json_seconds(j, "last_age_s", r->now_ns > g->last_ns ? r->now_ns - g->last_ns : 0);
		lw_json_uint(j, "stack_id", g->open_stack);
		json_stack(j, "stack", r, g->open_stack);
		json_stack(j, "close_stack", r, g->close_stack);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
}

void lw_render_json_value(struct lw_json *j, const char *key, struct lw_report *r)
{
	const struct lw_snapshot *s = &r->snap;
	lw_json_begin_object(j, key);
	lw_json_int(j, "leakwatch", 1);
	lw_json_str(j, "segment", s->path);
	lw_json_int(j, "pid", s->hdr.pid);
	lw_json_int(j, "ppid", s->hdr.ppid);
	lw_json_str(j, "command", s->hdr.cmdline);
	lw_json_str(j, "exe", s->hdr.exe);
	lw_json_str(j, "state", lw_present_state_word(r));
	if (r->live == LW_LIVE_EXITED && s->hdr.exit_known)
		lw_json_int(j, "exit_status", s->hdr.exit_status);
	else
		lw_json_null(j, "exit_status");
	lw_json_seconds(j, "uptime_s", lw_present_uptime_ns(r));
	lw_json_bool(j, "end_time_lower_bound", lw_present_at_least(r));
	json_counters(j, s);
	lw_json_uint(j, "busy_slots", s->busy);
	lw_json_uint(j, "missing_stacks", s->missing_stacks);
	lw_json_bool(j, "heap_unsettled", s->heap_unsettled);
	lw_render_json_incomplete(j, "incomplete", s);
	lw_json_uint(j, "layout", s->layout);
	lw_json_uint(j, "file_bytes", s->file_bytes);
	if (s->layout >= 2)
		lw_json_uint(j, "reserved_bytes", s->hdr.reserved_bytes);
	else
		lw_json_null(j, "reserved_bytes");
	if (s->hdr.py_frames) {
		lw_json_begin_object(j, "python");
		char v[32];
		if (s->hdr.py_version)
			snprintf(v, sizeof v, "%u.%u.%u", s->hdr.py_version >> 24, (s->hdr.py_version >> 16) & 0xff,
				 (s->hdr.py_version >> 8) & 0xff);
		lw_json_str(j, "version", s->hdr.py_version ? v : NULL);
		lw_json_bool(j, "frames", s->hdr.py_frames == LW_PY_FRAMES);
		lw_json_end_object(j);
	} else {
		lw_json_null(j, "python");
	}
	if (s->hdr.attach_monotonic_ns) {
		uint64_t at = s->hdr.attach_monotonic_ns, dt = s->hdr.detach_monotonic_ns;
		lw_json_begin_object(j, "attach");
		lw_json_seconds(j, "age_s", r->now_ns > at ? r->now_ns - at : 0);
		lw_json_uint(j, "call_sites", s->hdr.attach_patched);
		if (dt)
			lw_json_seconds(j, "detached_age_s", r->now_ns > dt ? r->now_ns - dt : 0);
		else
			lw_json_null(j, "detached_age_s");
		lw_json_end_object(j);
	} else {
		lw_json_null(j, "attach");
	}
	lw_json_uint(j, "open_tracked", lw_snapshot_open_count(s));
	lw_json_uint(j, "open_fds_tracked", lw_snapshot_open_fds(s));
	lw_json_begin_object(j, "kernel_view");
	lw_json_bool(j, "available", r->join.fd_ok);
	lw_json_str(j, "error", r->join.fd_ok || r->join.pid <= 0 ? NULL : strerror(r->join.fd_errno));
	lw_json_end_object(j);
	if (r->join.diag_loaded) {
		lw_json_begin_object(j, "sock_diag");
		lw_json_str(j, "inet", lw_sockdiag_source_name(r->join.diag.source_inet));
		lw_json_str(j, "unix", lw_sockdiag_source_name(r->join.diag.source_unix));
		lw_json_end_object(j);
	} else {
		lw_json_null(j, "sock_diag");
	}
	json_watch_view(j, r);
	lw_json_seconds(j, "older_than_s", r->opts.older_than_ns);
	lw_json_str(j, "kind", lw_kind_name(r->opts.kind));
	lw_json_str(j, "group_by", lw_group_by_name(r->opts.by));
	lw_json_seconds(j, "idle_for_s", r->opts.idle_for_ns ? r->opts.idle_for_ns : LW_IDLE_FOR_DEFAULT_NS);
	if (r->have_prev)
		lw_json_seconds(j, "interval_s", r->now_ns > r->prev_now_ns ? r->now_ns - r->prev_now_ns : 0);
	else
		lw_json_null(j, "interval_s");
	if (lw_kind_sockets(r->opts.kind) || lw_kind_fds(r->opts.kind))
		json_fd_usage(j, r);
	if (lw_kind_sockets(r->opts.kind))
		json_sockets(j, r);
	json_pg(j, r);
	if (lw_kind_fds(r->opts.kind)) {
		lw_json_begin_array(j, "descriptors");
		for (size_t i = 0; i < r->fds.ngroups; i++)
			if (lw_present_fd_group_shown(r, &r->fds.groups[i]))
				json_fd_group(j, r, &r->fds.groups[i]);
		lw_json_end_array(j);
	}
	if (lw_kind_heap(r->opts.kind))
		json_heap(j, r);
	json_supp_uses(j, r);
	lw_json_end_object(j);
}

int lw_render_json(FILE *out, struct lw_report *r)
{
	struct lw_json j;
	lw_json_init(&j, out);
	lw_render_json_value(&j, NULL, r);
	return lw_json_error(&j);
}
