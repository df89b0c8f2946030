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

/* Growth of a key group (see the rules above); fills the group-level evidence. */
static void evidence_growth(struct lw_evidence *ev, const struct lw_group *g, const enum part *parts,
			    const struct lw_verdict_opts *o)
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
		ev->count_start = 0;
		for (size_t i = 0; i < o->prev->ngroups; i++)
			if (lw_group_same_key(&o->prev->groups[i], g)) {
				ev->count_start = o->prev->groups[i].count;
				break;
			}
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
	for (size_t i = 0; i < g->count; i++) {
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

static int u32cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
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

/* Members of g in part p, optionally only those with last-use stack use_id. */
static struct lw_member *members_pick(const struct lw_group *g, const enum part *parts, enum part p,
				      int by_use_id, uint32_t use_id, size_t *n)
{
	struct lw_member *m = malloc((g->count ? g->count : 1) * sizeof *m);
	*n = 0;
	if (!m)
		return NULL;
	for (size_t i = 0; i < g->count; i++)
		if (parts[i] == p && (!by_use_id || g->members[i].last_use_stack_id == use_id))
			m[(*n)++] = g->members[i];
	return m;
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
static int judge_group(struct outv *out, struct lw_group *g, const struct lw_verdict_opts *o)
{
	enum part *parts = malloc((g->count ? g->count : 1) * sizeof *parts);
	if (!parts)
		return -1;
	size_t np[3] = { 0, 0, 0 };
	for (size_t i = 0; i < g->count; i++) {
		member_judge(&g->members[i], o);
		parts[i] = member_part(&g->members[i], g, o);
		np[parts[i]]++;
	}
	struct lw_evidence key_ev;
	memset(&key_ev, 0, sizeof key_ev);
	evidence_growth(&key_ev, g, parts, o);
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
			uint32_t *ids = NULL;
			size_t nids = 1;
			if (by_use) {
				ids = malloc(np[p] * sizeof *ids);
				if (!ids) {
					rc = -1;
					break;
				}
				nids = 0;
				for (size_t i = 0; i < g->count; i++)
					if (parts[i] == PART_S)
						ids[nids++] = g->members[i].last_use_stack_id;
				qsort(ids, nids, sizeof *ids, u32cmp);
			}
			for (size_t k = 0; k < nids && rc == 0; k++) {
				if (by_use && k > 0 && ids[k] == ids[k - 1])
					continue;
				uint32_t id = by_use ? ids[k] : 0;
				size_t n;
				struct lw_member *m = members_pick(g, parts, (enum part)p, by_use, id, &n);
				struct lw_group *dst = m ? out_push(out) : NULL;
				if (!dst) {
					free(m);
					rc = -1;
					break;
				}
				if (subgroup_make(dst, g, m, n) < 0) {
					out->n--;
					group_release(dst);
					rc = -1;
				}
			}
			free(ids);
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
	int rc = 0;
	for (size_t i = 0; i < g->ngroups; i++) {
		if (rc == 0 && judge_group(&out, &g->groups[i], o) < 0)
			rc = -1;
		group_release(&g->groups[i]);
	}
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
