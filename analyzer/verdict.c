/* SPDX-License-Identifier: MIT */
/*
 * verdict.c — leak or pool?  One verdict per group, from evidence only.
 *
 * VERDICT RULES (deterministic; the README copies this block)
 * ------------------------------------------------------------
 * Terms.  IDLE_FOR is --idle-for (default 5m).  A group is keyed by its
 * creation stack (--by open, the default) or its last-use stack (--by use),
 * plus protocol and endpoint.  For each socket ("member"):
 *
 *   age     now - when it was opened.
 *   idle    time since its last known I/O, the smallest of
 *             - the kernel's tcp_info: min(last_data_sent, last_data_recv)
 *               (TCP over sock_diag; these count from the connection's
 *               establishment when no data ever moved), and
 *             - the shim's last_use_ns: now - the most recent send-side call
 *               (write, send, sendto, sendmsg, ... on that socket);
 *           when neither exists (never used, UDP/unix, no kernel view):
 *           idle = age.  idle is capped at age.  The shim only sees sends,
 *           so a socket that only receives, with no tcp_info, counts as idle.
 *   listening   the kernel says LISTEN; without a kernel view: a stream
 *               socket created by socket(), bound, with no peer.
 *   close_wait  the kernel says CLOSE_WAIT: the peer hung up, the program
 *               never closed.
 *   suspect     not listening, and (close_wait or idle >= IDLE_FOR).
 *   young       age < IDLE_FOR.
 *
 * Each key group is partitioned into L (listening members), S (suspect
 * members) and R (the rest: used within IDLE_FOR, or too young to be idle).
 * Each non-empty part becomes one group with one verdict:
 *
 *   L -> LISTENING.
 *   S -> LEAK SUSPECT, with reasons: "idle" (members idle >= IDLE_FOR),
 *        "close_wait", and "growing" when the key group keeps growing
 *        (below).  When R is not empty too — a pool whose healthy members
 *        are used while others were checked out and never given back — S is
 *        further split by last-use stack (--by open): each leak suspect names
 *        the code that used its sockets last, which is the culprit; sockets
 *        never used form their own "never used" suspect.  When the whole
 *        group is suspect it stays one group and shows the most common
 *        last-use stack with its share.
 *   R -> NEW    when S is empty and every member of R is young: nothing has
 *               been open long enough to judge;
 *        POOL   when the key group has at least 2 non-listening members and
 *               some member of R is older than IDLE_FOR (kept open and used
 *               again recently: the definition of pooling);
 *        ACTIVE otherwise (a single long-lived connection with traffic, or
 *               recent sockets next to suspects).
 *
 * Growing (evidence, and a reason on leak suspects; it never makes a used
 * socket a suspect — growth with traffic is load, not a leak):
 *   with --interval DUR: the key group's open count at the second snapshot
 *     is larger than at the first (net growth > 0); opened/closed per minute
 *     come from the creation stack's totals (sock_opened/sock_closed deltas);
 *   without: at least 3 idle members whose ages span at least IDLE_FOR —
 *     they were opened over time and none of them came back into use (a
 *     pool opened at start-up has one age and is not "growing").
 *
 * A process image that has ended (run, or a report on a dead segment) has
 * no kernel view and no future: every group is LEFT OPEN (a leak, as `run`
 * always said).  Known false positive: spare pool connections idle for
 * longer than IDLE_FOR are suspects; choose IDLE_FOR above the pool's own
 * idle timeout.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "analyzer.h"

#define TCP_ST_CLOSE_WAIT 8
#define TCP_ST_LISTEN 10

const char *lw_verdict_name(enum lw_verdict v)
{
	switch (v) {
	case LW_V_LEFT_OPEN: return "left_open";
	case LW_V_LEAK_SUSPECT: return "leak_suspect";
	case LW_V_POOL: return "pool";
	case LW_V_ACTIVE: return "active";
	case LW_V_NEW: return "new";
	case LW_V_LISTENING: return "listening";
	}
	return "unknown";
}

const char *lw_verdict_title(enum lw_verdict v)
{
	switch (v) {
	case LW_V_LEFT_OPEN: return "SOCKETS";
	case LW_V_LEAK_SUSPECT: return "LEAK SUSPECT";
	case LW_V_POOL: return "POOL";
	case LW_V_ACTIVE: return "ACTIVE";
	case LW_V_NEW: return "NEW";
	case LW_V_LISTENING: return "LISTENING";
	}
	return "?";
}

enum part { PART_R = 0, PART_S, PART_L };

static void member_judge(struct lw_member *m, const struct lw_verdict_opts *o)
{
	uint64_t idle = UINT64_MAX;
	m->idle_source = LW_IDLE_AGE;
	if (m->has_kernel && m->k.has_tcpinfo) {
		uint32_t ms = m->k.last_data_sent_ms < m->k.last_data_recv_ms ? m->k.last_data_sent_ms
										 : m->k.last_data_recv_ms;
		idle = (uint64_t)ms * 1000000ull;
		m->idle_source = LW_IDLE_KERNEL;
	}
	if (m->last_use_ns) {
		uint64_t s = o->now_ns > m->last_use_ns ? o->now_ns - m->last_use_ns : 0;
		if (s < idle) {
			idle = s;
			m->idle_source = LW_IDLE_SHIM;
		}
	}
	if (idle == UINT64_MAX || idle > m->age_ns)
		idle = m->age_ns;
	m->idle_ns = idle;
}

static int member_listening(const struct lw_member *m, const struct lw_group *g)
{
	if (m->has_kernel)
		return m->k.state == TCP_ST_LISTEN;
	/* No kernel view: a bound stream socket from socket() with no peer. */
	return (g->type == SOCK_STREAM || g->type == SOCK_SEQPACKET) && m->origin == LW_ORIGIN_SOCKET &&
	       g->role == LW_EP_LOCAL && m->peer[0] == '\0';
}

static int member_close_wait(const struct lw_member *m)
{
	return m->has_kernel && (m->k.family == AF_INET || m->k.family == AF_INET6) &&
	       m->k.state == TCP_ST_CLOSE_WAIT;
}

static enum part member_part(const struct lw_member *m, const struct lw_group *g, const struct lw_verdict_opts *o)
{
	if (member_listening(m, g))
		return PART_L;
	if (member_close_wait(m) || m->idle_ns >= o->idle_for_ns)
		return PART_S;
	return PART_R;
}

/* Evidence over a (sub)group's own members. */
static void evidence_members(struct lw_evidence *ev, const struct lw_group *g, const struct lw_verdict_opts *o)
{
	ev->idle_for_ns = o->idle_for_ns;
	for (size_t i = 0; i < g->count; i++) {
		const struct lw_member *m = &g->members[i];
		int listening = member_listening(m, g);
		if (listening) {
			ev->listening++;
		} else {
			if (m->idle_ns >= o->idle_for_ns)
				ev->idle++;
			else if (m->idle_source != LW_IDLE_AGE)
				ev->used_recently++;
			if (i == 0 || m->idle_ns < ev->idle_min_ns)
				ev->idle_min_ns = m->idle_ns;
			if (m->idle_ns > ev->idle_max_ns)
				ev->idle_max_ns = m->idle_ns;
		}
		ev->close_wait += member_close_wait(m);
		ev->young += m->age_ns < o->idle_for_ns;
		if (m->idle_source == LW_IDLE_KERNEL)
			ev->idle_kernel++;
		else if (m->idle_source == LW_IDLE_SHIM)
			ev->idle_shim++;
		else
			ev->idle_age++;
		if (m->has_kernel) {
			ev->kernel_known++;
			if (m->k.has_queues && !listening) {
				ev->rqueue += m->k.rqueue;
				ev->wqueue += m->k.wqueue;
			}
		}
	}
}

static const struct lw_snap_stack *stack_of(const struct lw_snapshot *s, uint32_t id)
{
	return s && id ? lw_snapshot_stack(s, id) : NULL;
}

/*
 * The first snapshot's groups sorted by key, so each group of the second
 * finds its counterpart by bisection (a linear search per group was
 * quadratic in groups).  The first grouping is not split by verdicts: a key
 * appears in it at most once.
 */
struct prev_index {
	const struct lw_group **v;
	size_t n;
};

static uint32_t key_stack(const struct lw_group *g)
{
	return g->by == LW_BY_USE ? g->use_stack_id : g->stack_id;
}

/* Orders groups by the key lw_group_same_key() compares: 0 exactly when it says 1. */
static int key_cmp(const struct lw_group *x, const struct lw_group *y)
{
	lw_group_ops++;
	if (x->by != y->by)
		return x->by < y->by ? -1 : 1;
	if (x->inherited != y->inherited)
		return x->inherited < y->inherited ? -1 : 1;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->role != y->role)
		return x->role < y->role ? -1 : 1;
	if (key_stack(x) != key_stack(y))
		return key_stack(x) < key_stack(y) ? -1 : 1;
	return strcmp(x->endpoint, y->endpoint);
}

static int key_ptr_cmp(const void *a, const void *b)
{
	return key_cmp(*(const struct lw_group *const *)a, *(const struct lw_group *const *)b);
}

static int prev_index_build(struct prev_index *p, const struct lw_grouping *prev)
{
	p->v = NULL;
	p->n = 0;
	if (!prev || prev->ngroups == 0)
		return 0;
	p->v = malloc(prev->ngroups * sizeof *p->v);
	if (!p->v)
		return -1;
	for (size_t i = 0; i < prev->ngroups; i++)
		p->v[i] = &prev->groups[i];
	p->n = prev->ngroups;
	qsort(p->v, p->n, sizeof *p->v, key_ptr_cmp);
	return 0;
}

static const struct lw_group *prev_find(const struct prev_index *p, const struct lw_group *g)
{
	size_t lo = 0, hi = p ? p->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(p->v[mid], g);
		if (c == 0)
			return p->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Growth of a key group (see the rules above); fills the group-level evidence. */
static void evidence_growth(struct lw_evidence *ev, const struct lw_group *g, const enum part *parts,
			    const struct lw_verdict_opts *o, const struct prev_index *prev)
{
	ev->key_count = g->count;
	const struct lw_snap_stack *st = g->by == LW_BY_OPEN ? stack_of(o->snap, g->stack_id) : NULL;
	if (st) {
		ev->stack_opened = st->sock_opened;
		ev->stack_closed = st->sock_closed;
	}
	if (o->prev) {
		ev->have_interval = 1;
		ev->interval_ns = o->interval_ns;
		ev->count_end = g->count;
		const struct lw_group *pg = prev_find(prev, g);
		ev->count_start = pg ? pg->count : 0;
		const struct lw_snap_stack *p0 = g->by == LW_BY_OPEN ? stack_of(o->prev_snap, g->stack_id) : NULL;
		if (st && p0) {
			ev->opened = st->sock_opened >= p0->sock_opened ? st->sock_opened - p0->sock_opened : 0;
			ev->closed = st->sock_closed >= p0->sock_closed ? st->sock_closed - p0->sock_closed : 0;
		} else if (st) {
			ev->opened = st->sock_opened;
			ev->closed = st->sock_closed;
		}
		ev->growing = ev->count_end > ev->count_start;
		return;
	}
	size_t nidle = 0;
	uint64_t amin = 0, amax = 0;
	for (size_t i = 0; i < g->count; i++, lw_group_ops++) {
		const struct lw_member *m = &g->members[i];
		if (parts[i] == PART_L || m->idle_ns < o->idle_for_ns)
			continue;
		if (nidle == 0 || m->age_ns < amin)
			amin = m->age_ns;
		if (m->age_ns > amax)
			amax = m->age_ns;
		nidle++;
	}
	ev->growing = nidle >= 3 && amax - amin >= o->idle_for_ns;
}

/* A new group with g's key and the given members (taken over). */
static int subgroup_make(struct lw_group *out, const struct lw_group *g, struct lw_member *m, size_t n)
{
	memset(out, 0, sizeof *out);
	out->by = g->by;
	out->inherited = g->inherited;
	out->stack_id = g->stack_id;
	out->use_stack_id = g->use_stack_id;
	out->family = g->family;
	out->type = g->type;
	out->role = g->role;
	memcpy(out->endpoint, g->endpoint, sizeof out->endpoint);
	out->split = 1;
	return lw_group_from_members(out, m, n);
}

struct outv {
	struct lw_group *v;
	size_t n, cap;
};

static struct lw_group *out_push(struct outv *o)
{
	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 16;
		struct lw_group *nv = realloc(o->v, ncap * sizeof *nv);
		if (!nv)
			return NULL;
		o->v = nv;
		o->cap = ncap;
	}
	return &o->v[o->n++];
}

static void group_release(struct lw_group *g)
{
	free(g->fds);
	free(g->peers);
	free(g->members);
	g->fds = NULL;
	g->peers = NULL;
	g->members = NULL;
}

/* Append a subgroup of g with members m[0..n) (taken over; NULL: allocation failed). 0 or -1. */
static int subgroup_push(struct outv *out, const struct lw_group *g, struct lw_member *m, size_t n)
{
	struct lw_group *dst = m ? out_push(out) : NULL;
	if (!dst) {
		free(m);
		return -1;
	}
	if (subgroup_make(dst, g, m, n) < 0) {
		out->n--;
		group_release(dst);
		return -1;
	}
	return 0;
}

/* Members of g in part p, in fd order. */
static struct lw_member *members_pick(const struct lw_group *g, const enum part *parts, enum part p, size_t *n)
{
	struct lw_member *m = malloc((g->count ? g->count : 1) * sizeof *m);
	*n = 0;
	if (!m)
		return NULL;
	for (size_t i = 0; i < g->count; i++, lw_group_ops++)
		if (parts[i] == p)
			m[(*n)++] = g->members[i];
	return m;
}

/* Sorting member indices by (last-use stack, fd order): the pool split in O(n log n). */
static const struct lw_member *g_sort_members;

static int by_use_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	uint32_t ux = g_sort_members[x].last_use_stack_id, uy = g_sort_members[y].last_use_stack_id;
	lw_group_ops++;
	if (ux != uy)
		return ux < uy ? -1 : 1;
	return (x > y) - (x < y);
}

static enum lw_verdict rest_verdict(const struct lw_group *rest, size_t nonlisten, size_t nsuspect,
				    const struct lw_verdict_opts *o)
{
	int all_young = 1, some_old = 0;
	for (size_t i = 0; i < rest->count; i++) {
		if (rest->members[i].age_ns >= o->idle_for_ns) {
			all_young = 0;
			some_old = 1;
		}
	}
	if (nsuspect == 0 && all_young)
		return LW_V_NEW;
	if (nonlisten >= 2 && some_old)
		return LW_V_POOL;
	return LW_V_ACTIVE;
}

/* Judge one key group g and append the resulting group(s) to out. g is consumed. */
static int judge_group(struct outv *out, struct lw_group *g, const struct lw_verdict_opts *o,
		       const struct prev_index *prev)
{
	enum part *parts = malloc((g->count ? g->count : 1) * sizeof *parts);
	if (!parts)
		return -1;
	size_t np[3] = { 0, 0, 0 };
	for (size_t i = 0; i < g->count; i++, lw_group_ops++) {
		member_judge(&g->members[i], o);
		parts[i] = member_part(&g->members[i], g, o);
		np[parts[i]]++;
	}
	struct lw_evidence key_ev;
	memset(&key_ev, 0, sizeof key_ev);
	evidence_growth(&key_ev, g, parts, o, prev);
	size_t nonlisten = np[PART_R] + np[PART_S];

	int nparts = (np[PART_R] > 0) + (np[PART_S] > 0) + (np[PART_L] > 0);
	size_t first = out->n;
	int rc = 0;
	if (nparts <= 1) {
		struct lw_group *dst = out_push(out);
		if (!dst) {
			free(parts);
			return -1;
		}
		*dst = *g;
		memset(g, 0, sizeof *g);
	} else {
		for (int p = PART_R; p <= PART_L && rc == 0; p++) {
			if (!np[p])
				continue;
			/* The pool split: suspects next to healthy members, one group per last-use stack. */
			int by_use = p == PART_S && np[PART_R] > 0 && g->by == LW_BY_OPEN;
			if (!by_use) {
				size_t n;
				struct lw_member *m = members_pick(g, parts, (enum part)p, &n);
				if (subgroup_push(out, g, m, n) < 0)
					rc = -1;
				continue;
			}
			size_t *idx = malloc(np[p] * sizeof *idx), nidx = 0;
			if (!idx) {
				rc = -1;
				break;
			}
			for (size_t i = 0; i < g->count; i++, lw_group_ops++)
				if (parts[i] == PART_S)
					idx[nidx++] = i;
			g_sort_members = g->members;
			qsort(idx, nidx, sizeof *idx, by_use_cmp);
			for (size_t k = 0; k < nidx && rc == 0;) {
				size_t end = k + 1;
				uint32_t id = g->members[idx[k]].last_use_stack_id;
				while (end < nidx && g->members[idx[end]].last_use_stack_id == id)
					end++, lw_group_ops++;
				struct lw_member *m = malloc((end - k) * sizeof *m);
				for (size_t i = k; m && i < end; i++)
					m[i - k] = g->members[idx[i]];
				if (subgroup_push(out, g, m, end - k) < 0)
					rc = -1;
				k = end;
			}
			free(idx);
		}
		group_release(g);
	}
	for (size_t k = first; k < out->n && rc == 0; k++) {
		struct lw_group *d = &out->v[k];
		struct lw_evidence ev = key_ev;
		evidence_members(&ev, d, o);
		enum part p = PART_R;
		if (d->count && member_listening(&d->members[0], d))
			p = PART_L;
		else if (d->count && (member_close_wait(&d->members[0]) || d->members[0].idle_ns >= o->idle_for_ns))
			p = PART_S;
		if (p == PART_L) {
			d->verdict = LW_V_LISTENING;
		} else if (p == PART_S) {
			d->verdict = LW_V_LEAK_SUSPECT;
			ev.reasons = (ev.idle ? LW_REASON_IDLE : 0) | (ev.close_wait ? LW_REASON_CLOSE_WAIT : 0) |
				     (ev.growing ? LW_REASON_GROWING : 0);
		} else {
			d->verdict = rest_verdict(d, nonlisten, np[PART_S], o);
		}
		d->ev = ev;
	}
	free(parts);
	return rc;
}

int lw_verdict_apply(struct lw_grouping *g, const struct lw_verdict_opts *o)
{
	if (o->ended) {
		for (size_t i = 0; i < g->ngroups; i++) {
			struct lw_group *grp = &g->groups[i];
			grp->verdict = LW_V_LEFT_OPEN;
			memset(&grp->ev, 0, sizeof grp->ev);
			grp->ev.key_count = grp->count;
			grp->ev.idle_for_ns = o->idle_for_ns;
			const struct lw_snap_stack *st = grp->by == LW_BY_OPEN ? stack_of(o->snap, grp->stack_id) : NULL;
			if (st) {
				grp->ev.stack_opened = st->sock_opened;
				grp->ev.stack_closed = st->sock_closed;
			}
		}
		lw_group_sort(g);
		return 0;
	}
	struct outv out = { 0 };
	struct prev_index prev;
	int rc = prev_index_build(&prev, o->prev);
	for (size_t i = 0; i < g->ngroups; i++) {
		if (rc == 0 && judge_group(&out, &g->groups[i], o, &prev) < 0)
			rc = -1;
		group_release(&g->groups[i]);
	}
	free(prev.v);
	free(g->groups);
	g->groups = out.v;
	g->ngroups = out.n;
	if (rc < 0) {
		lw_grouping_free(g);
		return -1;
	}
	lw_group_sort(g);
	return 0;
}
