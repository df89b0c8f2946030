/* SPDX-License-Identifier: MIT */
/*
 * group.c — turn the open sockets of a snapshot into groups worth reading.
 *
 * A leak shows up as many sockets created at the same place talking to the
 * same thing, so the key is (creation stack, family, type, endpoint).  The
 * endpoint is the peer for connected sockets; for accepted sockets it is the
 * local (listening) address, because every client has a different port and
 * grouping by peer would scatter one leak over hundreds of one-line groups.
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

#include "analyzer.h"

char *lw_addr_format(const struct lw_addr *a, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	size_t alen = a->len > LW_ADDR_MAX ? LW_ADDR_MAX : a->len;
	if (alen < sizeof(sa_family_t))
		return buf;
	sa_family_t fam;
	memcpy(&fam, a->data, sizeof fam);
	char ip[INET6_ADDRSTRLEN];
	if (fam == AF_INET && alen >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, a->data, sizeof sin);
		inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
		snprintf(buf, len, "%s:%u", ip, ntohs(sin.sin_port));
	} else if (fam == AF_INET6 && alen >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, a->data, sizeof sin6);
		inet_ntop(AF_INET6, &sin6.sin6_addr, ip, sizeof ip);
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6.sin6_port));
	} else if (fam == AF_UNIX) {
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (alen <= off) {
			snprintf(buf, len, "unnamed");
		} else if (a->data[off] == '\0') {
			/* Abstract names are not NUL-terminated and may hold NULs: show '@'. */
			size_t n = alen - off - 1, k = 0;
			if (len > 1)
				buf[k++] = '@';
			for (size_t i = 0; i < n && k + 1 < len; i++) {
				unsigned char c = a->data[off + 1 + i];
				buf[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '@';
			}
			buf[k] = '\0';
		} else {
			size_t n = strnlen((const char *)a->data + off, alen - off);
			snprintf(buf, len, "%.*s", (int)n, (const char *)a->data + off);
		}
	}
	return buf;
}

const char *lw_family_name(unsigned family)
{
	switch (family) {
	case AF_UNIX: return "AF_UNIX";
	case AF_INET: return "AF_INET";
	case AF_INET6: return "AF_INET6";
	case AF_NETLINK: return "AF_NETLINK";
	case AF_PACKET: return "AF_PACKET";
	case AF_UNSPEC: return "AF_UNSPEC";
	default: return "AF_OTHER";
	}
}

const char *lw_type_name(unsigned type)
{
	switch (type) {
	case SOCK_STREAM: return "SOCK_STREAM";
	case SOCK_DGRAM: return "SOCK_DGRAM";
	case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
	case SOCK_RAW: return "SOCK_RAW";
	default: return "SOCK_OTHER";
	}
}

const char *lw_origin_name(unsigned origin)
{
	static const char *const names[] = {
		[LW_ORIGIN_NONE] = "unknown",
		[LW_ORIGIN_SOCKET] = "socket",
		[LW_ORIGIN_SOCKETPAIR] = "socketpair",
		[LW_ORIGIN_ACCEPT] = "accept",
		[LW_ORIGIN_DUP] = "dup",
		[LW_ORIGIN_SCM_RIGHTS] = "scm_rights",
		[LW_ORIGIN_INHERITED] = "inherited",
		[LW_ORIGIN_FORK] = "fork",
	};
	return origin < LW_ORIGIN_MAX ? names[origin] : "unknown";
}

static uint64_t monotonic_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* The latest time the segment shows the process doing anything: last_active_ns and the
 * newest time in any record.  0 when there is none. */
static uint64_t snapshot_last_seen(const struct lw_snapshot *s)
{
	uint64_t t = s->hdr.last_active_ns;
	for (size_t i = 0; i < s->nhandles; i++) {
		const struct lw_handle *h = &s->handles[i].h;
		t = max_u64(t, max_u64(max_u64(h->open_ns, h->connect_ns), max_u64(h->last_use_ns, h->close_ns)));
	}
	for (size_t i = 0; i < s->nallocs; i++)
		t = max_u64(t, s->allocs[i].ns);
	for (size_t i = 0; i < s->nbadcloses; i++)
		t = max_u64(t, s->badcloses[i].ns);
	for (size_t i = 0; i < s->nmodules; i++)
		t = max_u64(t, max_u64(s->modules[i].load_ns, s->modules[i].unload_ns));
	return t;
}

int lw_snapshot_end_lower_bound(const struct lw_snapshot *s, enum lw_live live)
{
	return live != LW_LIVE_ALIVE && live != LW_LIVE_DISABLED && s->hdr.end_monotonic_ns == 0;
}

uint64_t lw_snapshot_now(const struct lw_snapshot *s, enum lw_live live)
{
	if (live == LW_LIVE_ALIVE || live == LW_LIVE_DISABLED)
		return monotonic_now();
	if (s->hdr.end_monotonic_ns)
		return s->hdr.end_monotonic_ns;
	/*
	 * Killed (SIGKILL: no exit path ran): the latest thing the shim recorded.
	 * The file's mtime is no help: tmpfs stamps a shared mapping only when a
	 * page is first dirtied.  Never later than now (a hostile record).
	 */
	uint64_t now = monotonic_now(), seen = snapshot_last_seen(s);
	if (seen > s->hdr.start_monotonic_ns)
		return seen < now ? seen : now;
	/* Nothing recorded at all (an older shim): the last write to the file. */
	uint64_t mt = (uint64_t)s->mtime.tv_sec * 1000000000ull + (uint64_t)s->mtime.tv_nsec;
	if (s->hdr.start_realtime_ns && mt >= s->hdr.start_realtime_ns)
		return s->hdr.start_monotonic_ns + (mt - s->hdr.start_realtime_ns);
	return now;
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
	[LW_V_NEW] = 3, [LW_V_LISTENING] = 4,
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

int lw_group_same_key(const struct lw_group *a, const struct lw_group *b)
{
	if (a->by != b->by || a->inherited != b->inherited || a->family != b->family ||
	    a->type != b->type || a->role != b->role || strcmp(a->endpoint, b->endpoint) != 0)
		return 0;
	return a->by == LW_BY_USE ? a->use_stack_id == b->use_stack_id : a->stack_id == b->stack_id;
}

/* Test seam (analyzer.h): element steps and comparisons of grouping and verdicts. */
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
	int inherited;
	uint16_t family, type;
	enum lw_endpoint_role role;
	uint32_t key_stack;             /* creation or last-use stack, per --by */
	size_t order;                   /* handle index: members stay in fd order */
	char endpoint[LW_ENDPOINT_MAX];
	struct lw_member m;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
	int c;
	lw_group_ops++;
	if (x->inherited != y->inherited)
		return x->inherited - y->inherited;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->role != y->role)
		return x->role < y->role ? -1 : 1;
	if ((c = u64cmp(x->key_stack, y->key_stack)) != 0)
		return c;
	if ((c = strcmp(x->endpoint, y->endpoint)) != 0)
		return c;
	return (x->order > y->order) - (x->order < y->order);
}

static int entry_same_key(const struct entry *x, const struct entry *y)
{
	return x->inherited == y->inherited && x->family == y->family && x->type == y->type &&
	       x->role == y->role && x->key_stack == y->key_stack && strcmp(x->endpoint, y->endpoint) == 0;
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
		int inh = is_inherited(h->origin);
		if (inh && !include_inherited)
			continue;
		/* A clock step or a handle opened after the reference time: age 0. */
		uint64_t age = now_ns > h->open_ns ? now_ns - h->open_ns : 0;
		if (age < older_than_ns)
			continue;
		struct entry *e = &ents[n];
		e->role = handle_endpoint(h, e->endpoint, sizeof e->endpoint);
		e->inherited = inh;
		e->family = h->family;
		e->type = h->type;
		e->order = i;
		/* Inherited sockets have no creation stack worth splitting on. */
		uint32_t stack_id = inh ? 0 : h->stack_id;
		uint32_t use_id = h->last_use_ns ? h->last_use_stack_id : 0;
		e->key_stack = by == LW_BY_USE ? use_id : stack_id;
		struct lw_member *m = &e->m;
		memset(m, 0, sizeof *m);
		m->fd = s->handles[i].fd;
		m->origin = h->origin;
		m->inode = h->inode;
		m->age_ns = age;
		m->stack_id = stack_id;
		m->last_use_stack_id = use_id;
		m->last_use_ns = h->last_use_ns;
		lw_addr_format(&h->peer, m->peer, sizeof m->peer);
		const struct lw_sockinfo *k = lw_join_sockinfo(j, h->inode);
		if (k) {
			m->has_kernel = 1;
			m->k = *k;
		}
		order[n++] = e;
		g->nsockets++;
		if (!inh)
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
		grp->by = by;
		grp->inherited = e->inherited;
		grp->stack_id = by == LW_BY_OPEN ? e->key_stack : 0;
		grp->use_stack_id = by == LW_BY_USE ? e->key_stack : 0;
		grp->family = e->family;
		grp->type = e->type;
		grp->role = e->role;
		memcpy(grp->endpoint, e->endpoint, sizeof grp->endpoint);
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
