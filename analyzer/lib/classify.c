/* SPDX-License-Identifier: MIT */
/*
 * classify.c — from open sockets to judged groups: grouping by one explicit
 * key (struct lw_group_key, compared only by lw_group_key_cmp), then one
 * verdict per group, from evidence only.
 *
 * THE KEY.  A leak shows up as many sockets created at the same place
 * talking to the same thing, so the key is (grouping, inherited, family,
 * type, endpoint role, key stack, endpoint), the key stack being the
 * creation stack (--by open) or the last-use stack (--by use).  The endpoint
 * is the peer for connected sockets; for accepted sockets it is the local
 * (listening) address, because every client has a different port and
 * grouping by peer would scatter one leak over hundreds of one-line groups.
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
 *   watched     the kernel shows the program waiting on it at report time
 *               (live processes; watch.c): it is in an armed epoll set of the
 *               process, or a thread is blocked reading, accepting or polling
 *               on it.
 *   suspect     not listening, and (close_wait or (idle >= IDLE_FOR and not
 *               watched)).
 *   young       age < IDLE_FOR.
 *
 * Each key group is partitioned into L (listening members), S (suspect
 * members), W (idle >= IDLE_FOR but watched, not CLOSE_WAIT) and R (the
 * rest: used within IDLE_FOR, or too young to be idle).  Each non-empty
 * part becomes one group with one verdict:
 *
 *   L -> LISTENING.
 *   W -> WATCHED: idle, but the program still waits on every member (an
 *        event loop's idle clients, a worker's channel, a thread-per-
 *        connection server's idle client).  Not a leak: the program will
 *        notice the peer's next byte or hang-up.
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
 * The pool rules are unchanged by W: the pool split still needs healthy (R)
 * members.  Known false negative: a connection checked out of a pool and
 * never returned that stays registered in an event loop's epoll set is
 * WATCHED.  CLOSE_WAIT stays suspect however watched: the program was told
 * of the hang-up and kept the socket.
 *
 * A process image that has ended (run, or a report on a dead segment) has
 * no kernel view and no future: every group is LEFT OPEN (a leak, as `run`
 * always said).  Known false positive: spare pool connections idle for
 * longer than IDLE_FOR are suspects; choose IDLE_FOR above the pool's own
 * idle timeout.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "classify.h"
#include "names.h"
#include "testing.h"

/* ==== grouping ============================================================= */

int lw_group_by_parse(const char *s, enum lw_group_by *by)
{
	if (!s)
		return -1;
	if (strcmp(s, "open") == 0)
		*by = LW_BY_OPEN;
	else if (strcmp(s, "use") == 0)
		*by = LW_BY_USE;
	else
		return -1;
	return 0;
}

const char *lw_group_by_name(enum lw_group_by by)
{
	return by == LW_BY_USE ? "use" : "open";
}

static int is_inherited(unsigned origin)
{
	return origin == LW_ORIGIN_INHERITED || origin == LW_ORIGIN_FORK;
}

/*
 * 0.0.0.0:0 / [::]:0 is what getsockname() says of a socket that is not bound
 * yet (the shim reads the local address at creation): no address at all.
 */
static int addr_unbound(const struct lw_addr *a)
{
	static const uint8_t zero[16];
	sa_family_t fam;
	if (a->len < sizeof fam)
		return 1;
	memcpy(&fam, a->data, sizeof fam);
	if (fam == AF_INET && a->len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, a->data, sizeof sin);
		return sin.sin_port == 0 && sin.sin_addr.s_addr == 0;
	}
	if (fam == AF_INET6 && a->len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, a->data, sizeof sin6);
		return sin6.sin6_port == 0 && memcmp(&sin6.sin6_addr, zero, sizeof zero) == 0;
	}
	return 0;
}

/* Endpoint and its role for one handle (see the file comment). */
static enum lw_endpoint_role handle_endpoint(const struct lw_handle *h, char *buf, size_t len)
{
	char peer[LW_ENDPOINT_MAX], local[LW_ENDPOINT_MAX];
	lw_addr_format(&h->peer, peer, sizeof peer);
	lw_addr_format(&h->local, local, sizeof local);
	if (addr_unbound(&h->local))
		local[0] = '\0';
	if (addr_unbound(&h->peer))
		peer[0] = '\0';
	if (h->origin != LW_ORIGIN_ACCEPT && peer[0]) {
		snprintf(buf, len, "%s", peer);
		return LW_EP_PEER;
	}
	if (local[0]) {
		snprintf(buf, len, "%s", local);
		return LW_EP_LOCAL;
	}
	if (peer[0]) {
		snprintf(buf, len, "%s", peer);
		return LW_EP_PEER;
	}
	buf[0] = '\0';
	return LW_EP_NONE;
}

static void group_add_state(struct lw_group *g, const char *state)
{
	for (size_t i = 0; i < g->nstates; i++)
		if (strcmp(g->states[i].name, state) == 0) {
			g->states[i].n++;
			return;
		}
	if (g->nstates == LW_GROUP_MAX_STATES)
		return;
	snprintf(g->states[g->nstates].name, sizeof g->states[g->nstates].name, "%s", state);
	g->states[g->nstates++].n = 1;
}

static int group_add_peer(struct lw_group *g, const char *peer)
{
	if (!peer[0])
		return 0;
	for (size_t i = 0; i < g->npeers; i++)
		if (strcmp(g->peers[i], peer) == 0)
			return 0;
	g->npeers_total++;
	if (g->npeers == LW_GROUP_MAX_PEERS)
		return 0;
	if (!g->peers) {
		g->peers = calloc(LW_GROUP_MAX_PEERS, sizeof *g->peers);
		if (!g->peers)
			return -1;
	}
	snprintf(g->peers[g->npeers++], LW_ENDPOINT_MAX, "%s", peer);
	return 0;
}

static const int verdict_rank[] = {
	[LW_V_LEFT_OPEN] = 0, [LW_V_LEAK_SUSPECT] = 0, [LW_V_POOL] = 1, [LW_V_ACTIVE] = 2,
	[LW_V_WATCHED] = 3, [LW_V_NEW] = 4, [LW_V_LISTENING] = 5,
};

static int u64cmp(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

static int group_cmp(const void *a, const void *b)
{
	const struct lw_group *x = a, *y = b;
	int c;
	lw_group_ops++;
	if (x->verdict != y->verdict && verdict_rank[x->verdict] != verdict_rank[y->verdict])
		return verdict_rank[x->verdict] - verdict_rank[y->verdict];
	if (x->inherited != y->inherited)
		return x->inherited - y->inherited;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->age_max_ns != y->age_max_ns)
		return x->age_max_ns < y->age_max_ns ? 1 : -1;
	if ((c = u64cmp(x->stack_id, y->stack_id)) != 0)
		return c;
	if ((c = u64cmp(x->use_stack_id, y->use_stack_id)) != 0)
		return c;
	if ((c = strcmp(x->endpoint, y->endpoint)) != 0)
		return c;
	if (x->nfds && y->nfds && x->fds[0] != y->fds[0])
		return x->fds[0] - y->fds[0];
	return (int)x->verdict - (int)y->verdict;
}

void lw_group_sort(struct lw_grouping *g)
{
	if (g->ngroups > 1)
		qsort(g->groups, g->ngroups, sizeof *g->groups, group_cmp);
}

struct lw_group_key lw_group_key_of(const struct lw_group *g)
{
	struct lw_group_key k = {
		.by = g->by, .inherited = g->inherited, .family = g->family, .type = g->type,
		.role = g->role, .stack = g->by == LW_BY_USE ? g->use_stack_id : g->stack_id,
		.endpoint = g->endpoint, .supp = g->supp,
	};
	return k;
}

void lw_group_set_key(struct lw_group *g, const struct lw_group_key *k)
{
	g->by = k->by;
	g->inherited = k->inherited;
	g->family = k->family;
	g->type = k->type;
	g->role = k->role;
	g->stack_id = k->by == LW_BY_OPEN ? k->stack : 0;
	g->use_stack_id = k->by == LW_BY_USE ? k->stack : 0;
	g->supp = k->supp;
	snprintf(g->endpoint, sizeof g->endpoint, "%s", k->endpoint);
}

/* The one comparison of group keys: grouping, the pool split and --interval use it. */
int lw_group_key_cmp(const struct lw_group_key *x, const struct lw_group_key *y)
{
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
	if (x->stack != y->stack)
		return x->stack < y->stack ? -1 : 1;
	if (x->supp != y->supp)
		return (uintptr_t)x->supp < (uintptr_t)y->supp ? -1 : 1;
	return strcmp(x->endpoint, y->endpoint);
}

int lw_group_same_key(const struct lw_group *a, const struct lw_group *b)
{
	struct lw_group_key ka = lw_group_key_of(a), kb = lw_group_key_of(b);
	return lw_group_key_cmp(&ka, &kb) == 0;
}

/* Test seam (testing.h): element steps and comparisons of grouping and verdicts. */
unsigned long long lw_group_ops;

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	lw_group_ops++;
	return (x > y) - (x < y);
}

/*
 * The most common value of a member field; ties go to a non-zero id, then
 * the lowest.  Sorts a copy of the ids: O(n log n) however many distinct
 * ids there are (19,000 UDP sockets each used from its own stack).
 * Returns 0, or -1 on allocation failure.
 */
static int most_common(const struct lw_member *m, size_t n, int use, size_t *share, uint32_t *out)
{
	*share = 0;
	*out = 0;
	if (n == 0)
		return 0;
	uint32_t first = use ? m[0].last_use_stack_id : m[0].stack_id;
	size_t same = 1;
	for (size_t i = 1; i < n; i++, lw_group_ops++)
		same += (use ? m[i].last_use_stack_id : m[i].stack_id) == first;
	if (same == n) {
		/* the usual case: one stack for the whole group, nothing to sort */
		*share = n;
		*out = first;
		return 0;
	}
	uint32_t *ids = malloc(n * sizeof *ids);
	if (!ids)
		return -1;
	for (size_t i = 0; i < n; i++)
		ids[i] = use ? m[i].last_use_stack_id : m[i].stack_id;
	qsort(ids, n, sizeof *ids, u32_cmp);
	uint32_t best = 0;
	size_t best_n = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && ids[j] == ids[i])
			j++, lw_group_ops++;
		/* ascending ids: the first of equal counts is the lowest, 0 only if alone */
		if (j - i > best_n || (j - i == best_n && best == 0 && ids[i] != 0)) {
			best = ids[i];
			best_n = j - i;
		}
		i = j;
	}
	free(ids);
	*share = best_n;
	*out = best;
	return 0;
}

static int str_ptr_cmp(const void *a, const void *b)
{
	lw_group_ops++;
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct non-empty peers among the members (sorting pointers: O(n log n)); -1 on no memory. */
static int distinct_peers(const struct lw_member *m, size_t n, size_t *out)
{
	const char **v = malloc((n ? n : 1) * sizeof *v);
	size_t k = 0, d = 0;
	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (m[i].peer[0])
			v[k++] = m[i].peer;
	qsort(v, k, sizeof *v, str_ptr_cmp);
	for (size_t i = 0; i < k; i++, lw_group_ops++)
		d += i == 0 || strcmp(v[i], v[i - 1]) != 0;
	free(v);
	*out = d;
	return 0;
}

int lw_group_from_members(struct lw_group *g, struct lw_member *members, size_t n)
{
	if (g->members != members)
		free(g->members);
	g->members = members;
	g->count = n;
	g->nfds = 0;
	g->nstates = 0;
	g->npeers = 0;
	g->npeers_total = 0;
	g->origin_mask = 0;
	if (n > g->fds_cap) {
		int *nf = realloc(g->fds, n * sizeof *nf);
		if (!nf)
			return -1;
		g->fds = nf;
		g->fds_cap = n;
	}
	int peers_full = 0;
	for (size_t i = 0; i < n; i++, lw_group_ops++) {
		const struct lw_member *m = &members[i];
		if (i == 0) {
			g->age_min_ns = g->age_max_ns = m->age_ns;
			g->origin = m->origin;
		}
		if (m->age_ns < g->age_min_ns)
			g->age_min_ns = m->age_ns;
		if (m->age_ns > g->age_max_ns)
			g->age_max_ns = m->age_ns;
		g->origin_mask |= 1u << (m->origin < 32 ? m->origin : 0);
		g->fds[g->nfds++] = m->fd;
		if (m->has_kernel)
			group_add_state(g, m->k.state_name);
		if (g->role != LW_EP_PEER && !peers_full) {
			/* the first LW_GROUP_MAX_PEERS distinct peers, in fd order */
			if (group_add_peer(g, m->peer) < 0)
				return -1;
			peers_full = g->npeers_total > LW_GROUP_MAX_PEERS;
		}
	}
	/* Past the cap the count of distinct peers needs every member. */
	if (peers_full && distinct_peers(members, n, &g->npeers_total) < 0)
		return -1;
	if (g->by == LW_BY_USE) {
		g->stack_id = 0;
		g->open_share = 0;
		if (!g->inherited && most_common(members, n, 0, &g->open_share, &g->stack_id) < 0)
			return -1;
		g->use_share = n;
	} else {
		if (most_common(members, n, 1, &g->use_share, &g->use_stack_id) < 0)
			return -1;
		g->open_share = n;
	}
	return 0;
}

int lw_group_build(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		   uint64_t now_ns, uint64_t older_than_ns, int include_inherited)
{
	return lw_group_build_by(g, s, j, now_ns, older_than_ns, include_inherited, LW_BY_OPEN);
}

/* One socket to group: its key and its member record. */
struct entry {
	struct lw_group_key key;        /* key.endpoint points at endpoint */
	size_t order;                   /* handle index: members stay in fd order */
	char endpoint[LW_ENDPOINT_MAX];
	struct lw_member m;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
	lw_group_ops++;
	int c = lw_group_key_cmp(&x->key, &y->key);
	return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int entry_same_key(const struct entry *x, const struct entry *y)
{
	return lw_group_key_cmp(&x->key, &y->key) == 0;
}

/*
 * Grouping sorts the sockets by key and cuts the sorted run into groups:
 * O(n log n) in sockets, whatever the number of groups (64k distinct
 * stacks, or 19,000 UDP peers, one group each).
 */
int lw_group_build_by(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		      uint64_t now_ns, uint64_t older_than_ns, int include_inherited, enum lw_group_by by)
{
	memset(g, 0, sizeof *g);
	g->by = by;
	struct entry *ents = malloc((s->nhandles ? s->nhandles : 1) * sizeof *ents);
	struct entry **order = malloc((s->nhandles ? s->nhandles : 1) * sizeof *order);
	size_t n = 0;
	if (!ents || !order)
		goto oom;
	for (size_t i = 0; i < s->nhandles; i++, lw_group_ops++) {
		if (!lw_join_valid(j, s, i))
			continue;
		const struct lw_handle *h = &s->handles[i].h;
		/* other kinds of descriptor are grouped by fdgroups.c */
		if (h->kind != LW_FD_SOCKET)
			continue;
		int inh = is_inherited(h->origin);
		if (inh && !include_inherited)
			continue;
		/* A clock step or a handle opened after the reference time: age 0. */
		uint64_t age = now_ns > h->open_ns ? now_ns - h->open_ns : 0;
		if (age < older_than_ns)
			continue;
		struct entry *e = &ents[n];
		e->key.by = by;
		e->key.role = handle_endpoint(h, e->endpoint, sizeof e->endpoint);
		e->key.endpoint = e->endpoint;
		e->key.inherited = inh;
		e->key.family = h->family;
		e->key.type = h->type;
		e->order = i;
		/* Inherited sockets have no creation stack worth splitting on. */
		uint32_t stack_id = inh ? 0 : h->stack_id;
		uint32_t use_id = h->last_use_ns ? h->last_use_stack_id : 0;
		e->key.stack = by == LW_BY_USE ? use_id : stack_id;
		struct lw_member *m = &e->m;
		memset(m, 0, sizeof *m);
		m->fd = s->handles[i].fd;
		m->origin = h->origin;
		m->inode = lw_join_inode(j, s, i);
		m->age_ns = age;
		m->stack_id = stack_id;
		m->last_use_stack_id = use_id;
		m->last_use_ns = h->last_use_ns;
		lw_addr_format(&h->peer, m->peer, sizeof m->peer);
		const struct lw_sockinfo *k = lw_join_sockinfo(j, m->inode);
		if (k) {
			m->has_kernel = 1;
			m->k = *k;
			/* open before `leakwatch attach`: the record's time is the attach,
			 * a lower bound; no data for longer than that says it is older */
			if (h->origin == LW_ORIGIN_ATTACH && k->has_tcpinfo) {
				uint32_t ms = k->last_data_sent_ms < k->last_data_recv_ms ? k->last_data_sent_ms
											 : k->last_data_recv_ms;
				if ((uint64_t)ms * 1000000ull > m->age_ns)
					m->age_ns = (uint64_t)ms * 1000000ull;
			}
		}
		const struct lw_watch *w = lw_join_watch(j, m->inode);
		if (w)
			m->watch = *w;
		e->key.supp = inh || !j || !j->supp ? NULL : j->supp[i];
		order[n++] = e;
		g->nsockets++;
		if (!inh && e->key.supp)
			g->nsuppressed++;
		else if (!inh)
			g->nleaked++;
	}
	qsort(order, n, sizeof *order, entry_cmp);
	size_t ngroups = 0;
	for (size_t i = 0; i < n; i++, lw_group_ops++)
		ngroups += i == 0 || !entry_same_key(order[i], order[i - 1]);
	g->groups = calloc(ngroups ? ngroups : 1, sizeof *g->groups);
	if (!g->groups)
		goto oom;
	for (size_t i = 0; i < n;) {
		size_t end = i + 1;
		while (end < n && entry_same_key(order[end], order[i]))
			end++, lw_group_ops++;
		const struct entry *e = order[i];
		struct lw_group *grp = &g->groups[g->ngroups++];
		lw_group_set_key(grp, &e->key);
		struct lw_member *mem = malloc((end - i) * sizeof *mem);
		if (!mem)
			goto oom;
		for (size_t k = i; k < end; k++)
			mem[k - i] = order[k]->m;
		if (lw_group_from_members(grp, mem, end - i) < 0)
			goto oom;
		i = end;
	}
	free(order);
	free(ents);
	lw_group_sort(g);
	return 0;
oom:
	free(order);
	free(ents);
	lw_grouping_free(g);
	return -1;
}

void lw_grouping_free(struct lw_grouping *g)
{
	for (size_t i = 0; i < g->ngroups; i++) {
		free(g->groups[i].fds);
		free(g->groups[i].peers);
		free(g->groups[i].members);
	}
	free(g->groups);
	memset(g, 0, sizeof *g);
}

/* ==== verdicts ============================================================= */

const char *lw_verdict_name(enum lw_verdict v)
{
	switch (v) {
	case LW_V_LEFT_OPEN: return "left_open";
	case LW_V_LEAK_SUSPECT: return "leak_suspect";
	case LW_V_POOL: return "pool";
	case LW_V_ACTIVE: return "active";
	case LW_V_NEW: return "new";
	case LW_V_WATCHED: return "watched";
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
	case LW_V_WATCHED: return "WATCHED";
	case LW_V_LISTENING: return "LISTENING";
	}
	return "?";
}

#define TCP_ST_CLOSE_WAIT 8
#define TCP_ST_LISTEN 10

enum part { PART_R = 0, PART_S, PART_L, PART_W, PART_N };

int lw_member_watched(const struct lw_member *m)
{
	return m->watch.inode != 0 && (m->watch.epoll_fd >= 0 || m->watch.tid > 0);
}

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
	if (member_close_wait(m))
		return PART_S;
	if (m->idle_ns >= o->idle_for_ns)
		return lw_member_watched(m) ? PART_W : PART_S;
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
		if (lw_member_watched(m)) {
			ev->watched++;
			if (m->watch.peer_pid > 0) {
				ev->watched_peer++;
			} else {
				ev->watched_epoll += m->watch.epoll_fd >= 0;
				ev->watched_thread += m->watch.tid > 0;
			}
		}
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

static int key_cmp(const struct lw_group *x, const struct lw_group *y)
{
	lw_group_ops++;
	struct lw_group_key kx = lw_group_key_of(x), ky = lw_group_key_of(y);
	return lw_group_key_cmp(&kx, &ky);
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
	/* open before an attach: the ages are the kernel's lower bounds, no
	 * evidence of when they were opened */
	int before_attach = g->stack_id == 0 && (g->origin_mask & (1u << LW_ORIGIN_ATTACH));
	ev->growing = !before_attach && nidle >= 3 && amax - amin >= o->idle_for_ns;
}

/* A new group with g's key and the given members (taken over). */
static int subgroup_make(struct lw_group *out, const struct lw_group *g, struct lw_member *m, size_t n)
{
	memset(out, 0, sizeof *out);
	struct lw_group_key key = lw_group_key_of(g);
	lw_group_set_key(out, &key);
	out->stack_id = g->stack_id;           /* the other stack: recomputed from the members */
	out->use_stack_id = g->use_stack_id;
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
	size_t np[PART_N] = { 0 };
	for (size_t i = 0; i < g->count; i++, lw_group_ops++) {
		member_judge(&g->members[i], o);
		parts[i] = member_part(&g->members[i], g, o);
		np[parts[i]]++;
	}
	struct lw_evidence key_ev;
	memset(&key_ev, 0, sizeof key_ev);
	evidence_growth(&key_ev, g, parts, o, prev);
	size_t nonlisten = np[PART_R] + np[PART_S] + np[PART_W];

	int nparts = (np[PART_R] > 0) + (np[PART_S] > 0) + (np[PART_L] > 0) + (np[PART_W] > 0);
	/* Suspects are split by last-use stack next to healthy members (the pool
	 * split), and always when the group has no creation stack because its
	 * sockets were open before `leakwatch attach`: their last use since is
	 * the only stack there is (a leak after the attach then stands apart
	 * from the ones before it, never used since). */
	int attach_group = g->stack_id == 0 && (g->origin_mask & (1u << LW_ORIGIN_ATTACH));
	int split_use = g->by == LW_BY_OPEN && np[PART_S] > 0 && (np[PART_R] > 0 || attach_group);
	size_t first = out->n;
	int rc = 0;
	if (nparts <= 1 && !split_use) {
		struct lw_group *dst = out_push(out);
		if (!dst) {
			free(parts);
			return -1;
		}
		*dst = *g;
		memset(g, 0, sizeof *g);
	} else {
		for (int p = PART_R; p < PART_N && rc == 0; p++) {
			if (!np[p])
				continue;
			/* The pool split: suspects next to healthy members, one group per last-use stack. */
			int by_use = p == PART_S && split_use;
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
		enum part p = d->count ? member_part(&d->members[0], d, o) : PART_R;
		if (p == PART_W) {
			d->verdict = LW_V_WATCHED;
		} else if (p == PART_L) {
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
