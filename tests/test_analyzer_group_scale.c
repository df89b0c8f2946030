/* SPDX-License-Identifier: MIT */
/*
 * Grouping at scale (issue 8, item 10): lw_group_build_by, the verdict
 * split and top's history used to search linearly per socket or per group,
 * so 64k distinct stacks or 20k UDP peers took seconds to minutes.
 *
 *  - exactness: on random small snapshots the grouping equals a naive
 *    reference written the way the old code worked (one linear search per
 *    socket), field by field, and the pool split partitions each key group
 *    by last-use stack with members in fd order;
 *  - scale: 64k distinct stacks, 20k UDP peers, 20k accepted clients, a
 *    20k-way pool split and --interval over 20k groups are grouped
 *    correctly, and the work done (lw_group_ops, a count of comparisons and
 *    element steps — never wall-clock time) grows as n log n: from n to 8n
 *    it grows less than 12 times (n^2 would be 64).
 */
#include <criterion/criterion.h>

#include "lib/analyzer.h"

#define SEC 1000000000ull
#define NOW (100000 * SEC)
#define IDLE_FOR (300 * SEC)

static const char *const dir = suite_dir; /* the suite's private directory */

TestSuite(analyzer_group_scale, .init = suite_dir_setup, .fini = suite_dir_teardown, .timeout = 120);

static void snap_of(struct fab *f, struct lw_snapshot *s)
{
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(f, dir, fab_segname(), path, sizeof path);
	fab_free(f);
	cr_assert_eq(lw_snapshot_open(s, path, err, sizeof err), 0, "%s", err);
}

/* ---- the reference: the old algorithm, one linear search per socket ------- */

static int ref_unbound(const struct lw_addr *a)
{
	struct sockaddr_in sin;
	if (a->len < sizeof(sa_family_t))
		return 1;
	memcpy(&sin, a->data, sizeof sin);
	return sin.sin_family == AF_INET && a->len >= sizeof sin && sin.sin_port == 0 && sin.sin_addr.s_addr == 0;
}

static enum lw_endpoint_role ref_endpoint(const struct lw_handle *h, char *buf, size_t len)
{
	char peer[LW_ENDPOINT_MAX], local[LW_ENDPOINT_MAX];
	lw_addr_format(&h->peer, peer, sizeof peer);
	lw_addr_format(&h->local, local, sizeof local);
	if (ref_unbound(&h->local))
		local[0] = '\0';
	if (ref_unbound(&h->peer))
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

/* most common id: max count, ties to a non-zero id, then the lowest (quadratic, obviously right) */
static uint32_t ref_most_common(const struct lw_member *m, size_t n, int use, size_t *share)
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
	}
	*share = best_n;
	return best;
}

static void ref_finish(struct lw_group *g)
{
	g->fds = calloc(g->count ? g->count : 1, sizeof *g->fds);
	g->peers = calloc(LW_GROUP_MAX_PEERS, sizeof *g->peers);
	for (size_t i = 0; i < g->count; i++) {
		const struct lw_member *m = &g->members[i];
		if (i == 0) {
			g->age_min_ns = g->age_max_ns = m->age_ns;
			g->origin = m->origin;
		}
		if (m->age_ns < g->age_min_ns)
			g->age_min_ns = m->age_ns;
		if (m->age_ns > g->age_max_ns)
			g->age_max_ns = m->age_ns;
		g->origin_mask |= 1u << m->origin;
		g->fds[g->nfds++] = m->fd;
		if (m->has_kernel) {
			size_t k = 0;
			while (k < g->nstates && strcmp(g->states[k].name, m->k.state_name) != 0)
				k++;
			if (k < g->nstates)
				g->states[k].n++;
			else if (g->nstates < LW_GROUP_MAX_STATES) {
				snprintf(g->states[k].name, sizeof g->states[k].name, "%s", m->k.state_name);
				g->states[g->nstates++].n = 1;
			}
		}
		if (g->role != LW_EP_PEER && m->peer[0]) {
			/* distinct: not seen in any earlier member */
			int seen = 0;
			for (size_t j = 0; j < i && !seen; j++)
				seen = strcmp(g->members[j].peer, m->peer) == 0;
			if (!seen) {
				g->npeers_total++;
				if (g->npeers < LW_GROUP_MAX_PEERS)
					snprintf(g->peers[g->npeers++], LW_ENDPOINT_MAX, "%s", m->peer);
			}
		}
	}
	if (g->by == LW_BY_USE) {
		g->stack_id = g->inherited ? 0 : ref_most_common(g->members, g->count, 0, &g->open_share);
		g->use_share = g->count;
	} else {
		g->use_stack_id = ref_most_common(g->members, g->count, 1, &g->use_share);
		g->open_share = g->count;
	}
}

static void ref_group(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j, uint64_t older,
		      int inherited, enum lw_group_by by)
{
	memset(g, 0, sizeof *g);
	g->by = by;
	g->groups = calloc(s->nhandles + 1, sizeof *g->groups);
	for (size_t i = 0; i < s->nhandles; i++) {
		if (!lw_join_valid(j, s, i))
			continue;
		const struct lw_handle *h = &s->handles[i].h;
		int inh = h->origin == LW_ORIGIN_INHERITED || h->origin == LW_ORIGIN_FORK;
		uint64_t age = NOW > h->open_ns ? NOW - h->open_ns : 0;
		if ((inh && !inherited) || age < older)
			continue;
		char ep[LW_ENDPOINT_MAX];
		enum lw_endpoint_role role = ref_endpoint(h, ep, sizeof ep);
		uint32_t sid = inh ? 0 : h->stack_id, uid = h->last_use_ns ? h->last_use_stack_id : 0;
		struct lw_group *grp = NULL;
		for (size_t k = 0; k < g->ngroups && !grp; k++) {
			struct lw_group *c = &g->groups[k];
			if (c->inherited == inh && c->family == h->family && c->type == h->type && c->role == role &&
			    (by == LW_BY_USE ? c->use_stack_id == uid : c->stack_id == sid) && !strcmp(c->endpoint, ep))
				grp = c;
		}
		if (!grp) {
			grp = &g->groups[g->ngroups++];
			grp->by = by;
			grp->inherited = inh;
			grp->stack_id = by == LW_BY_OPEN ? sid : 0;
			grp->use_stack_id = by == LW_BY_USE ? uid : 0;
			grp->family = h->family;
			grp->type = h->type;
			grp->role = role;
			snprintf(grp->endpoint, sizeof grp->endpoint, "%s", ep);
			grp->members = calloc(s->nhandles, sizeof *grp->members);
		}
		struct lw_member *m = &grp->members[grp->count++];
		m->fd = s->handles[i].fd;
		m->origin = h->origin;
		m->inode = h->inode;
		m->age_ns = age;
		m->stack_id = sid;
		m->last_use_stack_id = uid;
		m->last_use_ns = h->last_use_ns;
		lw_addr_format(&h->peer, m->peer, sizeof m->peer);
		const struct lw_sockinfo *k = lw_join_sockinfo(j, h->inode);
		if (k) {
			m->has_kernel = 1;
			m->k = *k;
		}
		g->nsockets++;
		g->nleaked += !inh;
	}
	for (size_t k = 0; k < g->ngroups; k++)
		ref_finish(&g->groups[k]);
	lw_group_sort(g);
}

static void assert_same_grouping(const struct lw_grouping *a, const struct lw_grouping *b, unsigned seed)
{
	cr_assert_eq(a->ngroups, b->ngroups, "seed %u: %zu groups, reference %zu", seed, a->ngroups, b->ngroups);
	cr_assert_eq(a->nsockets, b->nsockets, "seed %u", seed);
	cr_assert_eq(a->nleaked, b->nleaked, "seed %u", seed);
	for (size_t i = 0; i < a->ngroups; i++) {
		const struct lw_group *x = &a->groups[i], *y = &b->groups[i];
		cr_assert(lw_group_same_key(x, y), "seed %u group %zu: key differs", seed, i);
		cr_assert_eq(x->stack_id, y->stack_id, "seed %u group %zu", seed, i);
		cr_assert_eq(x->use_stack_id, y->use_stack_id, "seed %u group %zu", seed, i);
		cr_assert_eq(x->use_share, y->use_share, "seed %u group %zu", seed, i);
		cr_assert_eq(x->open_share, y->open_share, "seed %u group %zu", seed, i);
		cr_assert_eq(x->count, y->count, "seed %u group %zu", seed, i);
		cr_assert_eq(x->origin, y->origin, "seed %u group %zu", seed, i);
		cr_assert_eq(x->origin_mask, y->origin_mask, "seed %u group %zu", seed, i);
		cr_assert_eq(x->age_min_ns, y->age_min_ns, "seed %u group %zu", seed, i);
		cr_assert_eq(x->age_max_ns, y->age_max_ns, "seed %u group %zu", seed, i);
		cr_assert_eq(x->nfds, y->nfds, "seed %u group %zu", seed, i);
		for (size_t k = 0; k < x->nfds; k++) {
			cr_assert_eq(x->fds[k], y->fds[k], "seed %u group %zu fd %zu", seed, i, k);
			cr_assert_eq(x->members[k].fd, y->members[k].fd, "seed %u group %zu member %zu", seed, i, k);
			cr_assert_eq(x->members[k].last_use_stack_id, y->members[k].last_use_stack_id);
			cr_assert_eq(x->members[k].has_kernel, y->members[k].has_kernel);
		}
		cr_assert_eq(x->nstates, y->nstates, "seed %u group %zu", seed, i);
		for (size_t k = 0; k < x->nstates; k++) {
			cr_assert_str_eq(x->states[k].name, y->states[k].name);
			cr_assert_eq(x->states[k].n, y->states[k].n);
		}
		cr_assert_eq(x->npeers, y->npeers, "seed %u group %zu", seed, i);
		cr_assert_eq(x->npeers_total, y->npeers_total, "seed %u group %zu: %zu distinct peers, reference %zu",
			     seed, i, x->npeers_total, y->npeers_total);
		for (size_t k = 0; k < x->npeers; k++)
			cr_assert_str_eq(x->peers[k], y->peers[k], "seed %u group %zu peer %zu", seed, i, k);
	}
}

/* A random snapshot: few stacks, endpoints and origins so groups collide; accepted sockets
 * from more than LW_GROUP_MAX_PEERS clients, some repeated. */
static void fab_random(struct fab *f, unsigned seed, int n, struct lw_sockdiag *d)
{
	srand(seed);
	fab_init(f, 16, 4, (uint32_t)n + 3, 4);
	uint64_t fr[1] = { 0x1000 };
	for (uint32_t id = 1; id <= 12; id++)
		fab_stack(f, id, fr, 1);
	static const uint16_t origins[] = { LW_ORIGIN_SOCKET, LW_ORIGIN_SOCKET, LW_ORIGIN_ACCEPT, LW_ORIGIN_DUP,
					    LW_ORIGIN_INHERITED, LW_ORIGIN_FORK, LW_ORIGIN_SCM_RIGHTS };
	memset(d, 0, sizeof *d);
	for (int fd = 3; fd < n + 3; fd++) {
		if (rand() % 10 == 0)
			continue; /* a hole in the fd table */
		uint16_t origin = origins[rand() % 7];
		struct lw_handle *h = fab_handle(f, fd, origin, (uint32_t)(rand() % 5), NOW - (uint64_t)(rand() % 1000) * SEC);
		if (rand() % 12 == 0)
			h->state = LW_H_CLOSED;
		h->type = rand() % 4 ? SOCK_STREAM : SOCK_DGRAM;
		char ip[32];
		snprintf(ip, sizeof ip, "10.0.0.%d", rand() % 40);
		if (origin == LW_ORIGIN_ACCEPT) {
			fab_addr_in(&h->local, "0.0.0.0", (uint16_t)(8080 + rand() % 2));
			fab_addr_in(&h->peer, ip, (uint16_t)(40000 + rand() % 3));
		} else if (rand() % 5 == 0) {
			fab_addr_in(&h->local, "0.0.0.0", 0); /* unbound, no peer */
		} else if (rand() % 6 == 0) {
			fab_addr_in(&h->local, "127.0.0.1", 9000); /* bound, e.g. UDP */
		} else {
			fab_addr_in(&h->peer, rand() % 2 ? "127.0.0.1" : "10.1.1.1", (uint16_t)(5432 + rand() % 2));
		}
		if (rand() % 3)
			fab_use(h, (uint32_t)(1 + rand() % 12), NOW - (uint64_t)(rand() % 900) * SEC);
		else if (rand() % 4 == 0)
			fab_use(h, (uint32_t)(1 + rand() % 12), 0); /* a stack without a time: not a use */
		if (rand() % 3 == 0) {
			static const unsigned st[] = { 1, 8, 10 };
			fab_kernel_tcp(d, h->inode, st[rand() % 3], rand() % 2 ? (uint32_t)(rand() % 900000) : UINT32_MAX,
				       (uint32_t)(rand() % 100), (uint32_t)(rand() % 100));
		}
	}
}

static void join_with(struct lw_join *j, const struct lw_snapshot *s, const struct lw_sockdiag *d)
{
	struct lw_sockdiag copy;
	memset(&copy, 0, sizeof copy);
	for (size_t i = 0; i < d->n; i++)
		cr_assert_eq(lw_sockdiag_add(&copy, &d->v[i]), 0);
	lw_sockdiag_sort(&copy);
	cr_assert_eq(lw_join_proc(j, s, 0), 0);
	lw_join_set_sockdiag(j, &copy);
}

Test(analyzer_group_scale, same_groups_as_the_naive_reference)
{
	for (unsigned seed = 1; seed <= 40; seed++) {
		struct fab f;
		struct lw_snapshot s;
		struct lw_sockdiag d;
		fab_random(&f, seed, 40 + (int)(seed * 7 % 300), &d);
		snap_of(&f, &s);
		for (int variant = 0; variant < 4; variant++) {
			enum lw_group_by by = variant & 1 ? LW_BY_USE : LW_BY_OPEN;
			int inh = variant >> 1;
			uint64_t older = seed % 3 == 0 ? 200 * SEC : 0;
			struct lw_join j1, j2;
			join_with(&j1, &s, &d);
			join_with(&j2, &s, &d);
			struct lw_grouping got, want;
			cr_assert_eq(lw_group_build_by(&got, &s, &j1, NOW, older, inh, by), 0);
			ref_group(&want, &s, &j2, older, inh, by);
			assert_same_grouping(&got, &want, seed * 4 + (unsigned)variant);
			lw_grouping_free(&got);
			lw_grouping_free(&want);
			lw_join_free(&j1);
			lw_join_free(&j2);
		}
		lw_sockdiag_free(&d);
		lw_snapshot_free(&s);
	}
}

/* The pool split: every verdict group is a subset of one key group, the subsets
 * partition it, suspects of a split key group have one last-use stack each and
 * distinct ones, and members stay in fd order. */
Test(analyzer_group_scale, verdict_split_partitions_each_key_group)
{
	for (unsigned seed = 100; seed < 130; seed++) {
		struct fab f;
		struct lw_snapshot s;
		struct lw_sockdiag d;
		fab_random(&f, seed, 300, &d);
		snap_of(&f, &s);
		struct lw_join j1, j2;
		join_with(&j1, &s, &d);
		join_with(&j2, &s, &d);
		struct lw_grouping keys, g;
		cr_assert_eq(lw_group_build_by(&keys, &s, &j1, NOW, 0, 1, LW_BY_OPEN), 0);
		cr_assert_eq(lw_group_build_by(&g, &s, &j2, NOW, 0, 1, LW_BY_OPEN), 0);
		struct lw_verdict_opts vo = { .now_ns = NOW, .idle_for_ns = IDLE_FOR, .snap = &s };
		cr_assert_eq(lw_verdict_apply(&g, &vo), 0);
		size_t covered = 0;
		for (size_t k = 0; k < keys.ngroups; k++) {
			const struct lw_group *key = &keys.groups[k];
			size_t members = 0, suspects_split = 0;
			uint32_t seen_ids[64];
			int has_rest = 0;
			for (size_t i = 0; i < g.ngroups; i++)
				if (lw_group_same_key(&g.groups[i], key) && g.groups[i].verdict != LW_V_LEAK_SUSPECT &&
				    g.groups[i].verdict != LW_V_LISTENING)
					has_rest = 1;
			for (size_t i = 0; i < g.ngroups; i++) {
				const struct lw_group *v = &g.groups[i];
				if (!lw_group_same_key(v, key))
					continue;
				cr_assert_eq(v->ev.key_count, key->count, "seed %u", seed);
				/* suspects next to healthy members: one group per last-use stack */
				int by_use = has_rest && v->verdict == LW_V_LEAK_SUSPECT;
				for (size_t m = 0; m < v->count; m++) {
					cr_assert(m == 0 || v->members[m - 1].fd < v->members[m].fd, "fd order");
					size_t at = 0;
					while (at < key->count && key->members[at].fd != v->members[m].fd)
						at++;
					cr_assert_lt(at, key->count, "seed %u: fd %d not in its key group", seed,
						     v->members[m].fd);
					if (by_use)
						cr_assert_eq(v->members[m].last_use_stack_id, v->use_stack_id,
							     "seed %u: one last-use stack per split suspect", seed);
				}
				if (by_use) {
					cr_assert(v->split);
					cr_assert_eq(v->use_share, v->count);
					for (size_t q = 0; q < suspects_split; q++)
						cr_assert_neq(seen_ids[q], v->use_stack_id, "seed %u: split twice", seed);
					cr_assert_lt(suspects_split, 64);
					seen_ids[suspects_split++] = v->use_stack_id;
				}
				members += v->count;
			}
			cr_assert_eq(members, key->count, "seed %u: key group %zu partitioned", seed, k);
			covered += members;
		}
		cr_assert_eq(covered, g.nsockets);
		lw_grouping_free(&keys);
		lw_grouping_free(&g);
		lw_join_free(&j1);
		lw_join_free(&j2);
		lw_sockdiag_free(&d);
		lw_snapshot_free(&s);
	}
}

/* ---- scale ---------------------------------------------------------------- */

enum shape {
	DISTINCT_STACKS,    /* n sockets, each from its own creation stack */
	UDP_PEERS,          /* n UDP sockets from one stack, each to its own peer */
	ACCEPTED_CLIENTS,   /* n accepted sockets on one port from n distinct clients */
	POOL_SPLIT,         /* one pool: half used recently, half idle, each idle one last used at its own stack */
};

static void fab_shape(struct fab *f, enum shape sh, int n)
{
	fab_init(f, (uint32_t)n + 8, 4, (uint32_t)n + 8, 4);
	uint64_t fr[2] = { 0x1000, 0x2000 };
	fab_stack(f, 1, fr, 2);
	for (int i = 0; i < n; i++) {
		uint32_t sid = 1;
		if (sh == DISTINCT_STACKS) {
			uint64_t own[2] = { 0x100000 + (uint64_t)i, 0x2000 };
			sid = fab_stack(f, (uint32_t)i + 2, own, 2);
		}
		struct lw_handle *h = fab_handle(f, 3 + i, sh == ACCEPTED_CLIENTS ? LW_ORIGIN_ACCEPT : LW_ORIGIN_SOCKET,
						 sid, NOW - (uint64_t)(1000 + i % 500) * SEC);
		char ip[32];
		snprintf(ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		if (sh == UDP_PEERS) {
			h->type = SOCK_DGRAM;
			fab_addr_in(&h->peer, ip, 53);
		} else if (sh == ACCEPTED_CLIENTS) {
			fab_addr_in(&h->local, "0.0.0.0", 8080);
			fab_addr_in(&h->peer, ip, (uint16_t)(1024 + i % 50000));
		} else {
			fab_addr_in(&h->peer, "127.0.0.1", 5432);
		}
		if (sh == POOL_SPLIT) {
			if (i % 2) {
				uint64_t use[2] = { 0x900000 + (uint64_t)i, 0x2000 };
				fab_use(h, fab_stack(f, (uint32_t)i + 2, use, 2), NOW - 2000 * SEC);
			} else {
				fab_use(h, 1, NOW - 1 * SEC);
			}
		}
	}
}

/* Group and judge a shape of n sockets; returns lw_group_ops spent, checks the result. */
static unsigned long long shape_ops(enum shape sh, int n)
{
	struct fab f;
	struct lw_snapshot s;
	fab_shape(&f, sh, n);
	snap_of(&f, &s);
	struct lw_grouping g;
	lw_group_ops = 0;
	cr_assert_eq(lw_group_build_by(&g, &s, NULL, NOW, 0, 0, LW_BY_OPEN), 0);
	struct lw_verdict_opts vo = { .now_ns = NOW, .idle_for_ns = IDLE_FOR, .snap = &s };
	cr_assert_eq(lw_verdict_apply(&g, &vo), 0);
	unsigned long long ops = lw_group_ops;
	cr_assert_eq(g.nsockets, (size_t)n);
	switch (sh) {
	case DISTINCT_STACKS:
	case UDP_PEERS:
		cr_assert_eq(g.ngroups, (size_t)n, "one group per stack / peer");
		for (size_t i = 0; i < g.ngroups; i++)
			cr_assert_eq(g.groups[i].count, 1);
		if (sh == UDP_PEERS)
			cr_assert_eq(g.groups[0].age_max_ns, 1499 * SEC, "the oldest first");
		break;
	case ACCEPTED_CLIENTS:
		cr_assert_eq(g.ngroups, 1);
		cr_assert_eq(g.groups[0].count, (size_t)n);
		cr_assert_eq(g.groups[0].npeers, LW_GROUP_MAX_PEERS);
		cr_assert_eq(g.groups[0].npeers_total, (size_t)n, "every client is distinct");
		cr_assert_str_eq(g.groups[0].peers[0], "10.0.0.0:1024", "first peer in fd order");
		break;
	case POOL_SPLIT: {
		/* n/2 suspects, one per last-use stack, and the pool of the healthy half */
		size_t suspects = 0, pool = 0;
		for (size_t i = 0; i < g.ngroups; i++) {
			const struct lw_group *x = &g.groups[i];
			if (x->verdict == LW_V_LEAK_SUSPECT) {
				cr_assert_eq(x->count, 1);
				cr_assert(x->split);
				cr_assert_eq(x->use_stack_id, (uint32_t)x->fds[0] - 3 + 2, "named by its own last use");
				suspects++;
			} else {
				cr_assert_eq(x->verdict, LW_V_POOL);
				cr_assert_eq(x->count, (size_t)n / 2);
				pool++;
			}
		}
		cr_assert_eq(suspects, (size_t)n / 2);
		cr_assert_eq(pool, 1);
		break;
	}
	}
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
	return ops;
}

static void assert_n_log_n(const char *what, unsigned long long small, unsigned long long big)
{
	double ratio = (double)big / (double)(small ? small : 1);
	cr_log_info("%s: %llu -> %llu operations for 8x the sockets (x%.1f)", what, small, big, ratio);
	cr_assert_lt(ratio, 12.0, "%s: 8x the sockets cost %.1fx the operations (%llu -> %llu): not n log n", what,
		     ratio, small, big);
}

Test(analyzer_group_scale, distinct_stacks_64k)
{
	assert_n_log_n("64k distinct stacks", shape_ops(DISTINCT_STACKS, 8000), shape_ops(DISTINCT_STACKS, 64000));
}

Test(analyzer_group_scale, udp_peers_20k)
{
	assert_n_log_n("20k UDP peers", shape_ops(UDP_PEERS, 2500), shape_ops(UDP_PEERS, 20000));
}

Test(analyzer_group_scale, accepted_clients_20k)
{
	assert_n_log_n("20k accepted clients", shape_ops(ACCEPTED_CLIENTS, 2500), shape_ops(ACCEPTED_CLIENTS, 20000));
}

Test(analyzer_group_scale, pool_split_20k)
{
	assert_n_log_n("20k-way pool split", shape_ops(POOL_SPLIT, 2500), shape_ops(POOL_SPLIT, 20000));
}

/* --interval: each group of the second snapshot looks up its key in the first. */
static unsigned long long interval_ops(int n)
{
	struct fab f;
	struct lw_snapshot s;
	fab_shape(&f, UDP_PEERS, n);
	snap_of(&f, &s);
	struct lw_grouping g, prev;
	cr_assert_eq(lw_group_build_by(&g, &s, NULL, NOW, 0, 0, LW_BY_OPEN), 0);
	cr_assert_eq(lw_group_build_by(&prev, &s, NULL, NOW - 10 * SEC, 0, 0, LW_BY_OPEN), 0);
	lw_group_ops = 0;
	struct lw_verdict_opts vo = { .now_ns = NOW, .idle_for_ns = IDLE_FOR, .snap = &s, .prev = &prev,
				      .prev_snap = &s, .interval_ns = 10 * SEC };
	cr_assert_eq(lw_verdict_apply(&g, &vo), 0);
	unsigned long long ops = lw_group_ops;
	for (size_t i = 0; i < g.ngroups; i++) {
		cr_assert(g.groups[i].ev.have_interval);
		cr_assert_eq(g.groups[i].ev.count_start, 1, "group %zu found its first-snapshot self", i);
		cr_assert_eq(g.groups[i].ev.count_end, 1);
	}
	lw_grouping_free(&prev);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
	return ops;
}

Test(analyzer_group_scale, interval_lookup_20k)
{
	assert_n_log_n("--interval over 20k groups", interval_ops(2500), interval_ops(20000));
}

/* top: one plain snapshot of n groups, in this process (stdout to /dev/null). */
static unsigned long long top_ops(int n)
{
	struct fab f;
	char path[PATH_MAX];
	fab_shape(&f, UDP_PEERS, n);
	f.hdr->state = LW_STATE_EXITED; /* one snapshot, then "exited" */
	f.hdr->end_monotonic_ns = NOW;
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	fflush(stdout);
	int saved = dup(1), nul = open("/dev/null", O_WRONLY);
	cr_assert(saved >= 0 && nul >= 0);
	dup2(nul, 1);
	close(nul);
	char *argv[] = { "top", path, "--plain", "--count", "1", NULL };
	lw_group_ops = 0;
	int rc = lw_top_main(5, argv);
	unsigned long long ops = lw_group_ops;
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	cr_assert_eq(rc, 0);
	return ops;
}

Test(analyzer_group_scale, top_frame_20k_groups)
{
	assert_n_log_n("top over 20k groups", top_ops(2500), top_ops(20000));
}

/* 40 clients connecting 3 times each to one port: 40 distinct peers, not one per
 * connection past the first 16 (the old count added repeats of unstored peers). */
Test(analyzer_group_scale, distinct_peers_counted_once)
{
	struct fab f;
	struct lw_snapshot s;
	fab_init(&f, 4, 4, 200, 4);
	for (int i = 0; i < 120; i++) {
		struct lw_handle *h = fab_handle(&f, 3 + i, LW_ORIGIN_ACCEPT, 0, NOW - 10 * SEC);
		char ip[32];
		snprintf(ip, sizeof ip, "10.0.0.%d", i % 40);
		fab_addr_in(&h->local, "0.0.0.0", 8080);
		fab_addr_in(&h->peer, ip, 4000);
	}
	snap_of(&f, &s);
	struct lw_grouping g;
	cr_assert_eq(lw_group_build(&g, &s, NULL, NOW, 0, 0), 0);
	cr_assert_eq(g.ngroups, 1);
	cr_assert_eq(g.groups[0].count, 120);
	cr_assert_eq(g.groups[0].npeers, LW_GROUP_MAX_PEERS);
	cr_assert_eq(g.groups[0].npeers_total, 40, "%zu distinct peers counted", g.groups[0].npeers_total);
	cr_assert_str_eq(g.groups[0].peers[15], "10.0.0.15:4000");
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
}
