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

static int group_cmp(const void *a, const void *b)
{
	const struct lw_group *x = a, *y = b;
	if (x->inherited != y->inherited)
		return x->inherited - y->inherited;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->age_max_ns != y->age_max_ns)
		return x->age_max_ns < y->age_max_ns ? 1 : -1;
	return (x->stack_id > y->stack_id) - (x->stack_id < y->stack_id);
}

int lw_group_build(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		   uint64_t now_ns, uint64_t older_than_ns, int include_inherited)
{
	size_t cap = 0;
	memset(g, 0, sizeof *g);
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

		struct lw_group *grp = NULL;
		for (size_t k = 0; k < g->ngroups; k++) {
			struct lw_group *c = &g->groups[k];
			if (c->inherited == inh && c->stack_id == stack_id && c->family == h->family &&
			    c->type == h->type && c->role == role && strcmp(c->endpoint, ep) == 0) {
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
			grp->inherited = inh;
			grp->stack_id = stack_id;
			grp->family = h->family;
			grp->type = h->type;
			grp->origin = h->origin;
			grp->role = role;
			snprintf(grp->endpoint, sizeof grp->endpoint, "%s", ep);
			grp->age_min_ns = age;
			grp->age_max_ns = age;
		}
		if (grp->nfds == grp->fds_cap) {
			size_t ncap = grp->fds_cap ? grp->fds_cap * 2 : 8;
			int *nf = realloc(grp->fds, ncap * sizeof *nf);
			if (!nf)
				goto oom;
			grp->fds = nf;
			grp->fds_cap = ncap;
		}
		grp->count++;
		grp->origin_mask |= 1u << (h->origin < 32 ? h->origin : 0);
		if (age < grp->age_min_ns)
			grp->age_min_ns = age;
		if (age > grp->age_max_ns)
			grp->age_max_ns = age;
		grp->fds[grp->nfds++] = s->handles[i].fd;
		const char *state = sockstate_lookup(j, h->inode);
		if (state)
			group_add_state(grp, state);
		if (role != LW_EP_PEER) {
			char peer[LW_ENDPOINT_MAX];
			if (group_add_peer(grp, lw_addr_format(&h->peer, peer, sizeof peer)) < 0)
				goto oom;
		}
		g->nsockets++;
		if (!inh)
			g->nleaked++;
	}
	if (g->ngroups)
		qsort(g->groups, g->ngroups, sizeof *g->groups, group_cmp);
	return 0;
oom:
	lw_grouping_free(g);
	return -1;
}

void lw_grouping_free(struct lw_grouping *g)
{
	for (size_t i = 0; i < g->ngroups; i++) {
		free(g->groups[i].fds);
		free(g->groups[i].peers);
	}
	free(g->groups);
	memset(g, 0, sizeof *g);
}
