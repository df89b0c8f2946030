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

uint64_t lw_snapshot_now(const struct lw_snapshot *s, enum lw_live live)
{
	if (live == LW_LIVE_ALIVE || live == LW_LIVE_DISABLED)
		return monotonic_now();
	if (s->hdr.end_monotonic_ns)
		return s->hdr.end_monotonic_ns;
	/* Killed: the last write to the file is the best end time we have. */
	uint64_t mt = (uint64_t)s->mtime.tv_sec * 1000000000ull + (uint64_t)s->mtime.tv_nsec;
	if (s->hdr.start_realtime_ns && mt >= s->hdr.start_realtime_ns)
		return s->hdr.start_monotonic_ns + (mt - s->hdr.start_realtime_ns);
	return monotonic_now();
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

/* The most common value of a member field; ties go to a non-zero id, then the lowest. */
static uint32_t most_common(const struct lw_member *m, size_t n, int use, size_t *share)
{
	uint32_t best = 0;
	size_t best_n = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t id = use ? m[i].last_use_stack_id : m[i].stack_id;
		size_t k = 0;
		for (size_t j = 0; j < n; j++)
			k += (use ? m[j].last_use_stack_id : m[j].stack_id) == id;
		if (k > best_n || (k == best_n && ((best == 0 && id != 0) || (id != 0 && id < best)))) {
			best = id;
			best_n = k;
		}
		/* Quadratic only in the distinct ids seen before a majority. */
		if (best_n * 2 > n)
			break;
	}
	*share = best_n;
	return best;
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
	for (size_t i = 0; i < n; i++) {
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
		if (g->role != LW_EP_PEER && group_add_peer(g, m->peer) < 0)
			return -1;
	}
	if (g->by == LW_BY_USE) {
		g->stack_id = g->inherited ? 0 : most_common(members, n, 0, &g->open_share);
		g->use_share = n;
	} else {
		g->use_stack_id = most_common(members, n, 1, &g->use_share);
		g->open_share = n;
	}
	return 0;
}

int lw_group_build(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		   uint64_t now_ns, uint64_t older_than_ns, int include_inherited)
{
	return lw_group_build_by(g, s, j, now_ns, older_than_ns, include_inherited, LW_BY_OPEN);
}

int lw_group_build_by(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		      uint64_t now_ns, uint64_t older_than_ns, int include_inherited, enum lw_group_by by)
{
	size_t cap = 0;
	memset(g, 0, sizeof *g);
	g->by = by;
	/* members_cap per group lives in fds_cap until lw_group_from_members runs */
	for (size_t i = 0; i < s->nhandles; i++) {
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

		char ep[LW_ENDPOINT_MAX];
		enum lw_endpoint_role role = handle_endpoint(h, ep, sizeof ep);
		/* Inherited sockets have no creation stack worth splitting on. */
		uint32_t stack_id = inh ? 0 : h->stack_id;
		uint32_t use_id = h->last_use_ns ? h->last_use_stack_id : 0;

		struct lw_group *grp = NULL;
		for (size_t k = 0; k < g->ngroups; k++) {
			struct lw_group *c = &g->groups[k];
			if (c->inherited == inh && c->family == h->family && c->type == h->type &&
			    c->role == role && (by == LW_BY_USE ? c->use_stack_id == use_id : c->stack_id == stack_id) &&
			    strcmp(c->endpoint, ep) == 0) {
				grp = c;
				break;
			}
		}
		if (!grp) {
			if (g->ngroups == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct lw_group *ng = realloc(g->groups, ncap * sizeof *ng);
				if (!ng)
					goto oom;
				g->groups = ng;
				cap = ncap;
			}
			grp = &g->groups[g->ngroups++];
			memset(grp, 0, sizeof *grp);
			grp->by = by;
			grp->inherited = inh;
			grp->stack_id = by == LW_BY_OPEN ? stack_id : 0;
			grp->use_stack_id = by == LW_BY_USE ? use_id : 0;
			grp->family = h->family;
			grp->type = h->type;
			grp->role = role;
			snprintf(grp->endpoint, sizeof grp->endpoint, "%s", ep);
		}
		if (grp->count == grp->fds_cap) {
			size_t ncap = grp->fds_cap ? grp->fds_cap * 2 : 8;
			struct lw_member *nm = realloc(grp->members, ncap * sizeof *nm);
			if (!nm)
				goto oom;
			grp->members = nm;
			grp->fds_cap = ncap;
		}
		struct lw_member *m = &grp->members[grp->count++];
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
		g->nsockets++;
		if (!inh)
			g->nleaked++;
	}
	for (size_t k = 0; k < g->ngroups; k++) {
		struct lw_group *grp = &g->groups[k];
		/* fds_cap counted members so far; fds itself is still unallocated. */
		grp->fds_cap = 0;
		if (lw_group_from_members(grp, grp->members, grp->count) < 0)
			goto oom;
	}
	lw_group_sort(g);
	return 0;
oom:
	for (size_t k = 0; k < g->ngroups; k++)
		if (!g->groups[k].fds)
			g->groups[k].fds_cap = 0;
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
