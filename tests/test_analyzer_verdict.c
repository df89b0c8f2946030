/* SPDX-License-Identifier: MIT */
/*
 * Tests for analyzer/verdict.c: every verdict on fabricated segments with
 * fabricated kernel evidence, the pool split, growth with and without
 * --interval, --by use, ordering, and how reports render the result.
 */
#include <criterion/criterion.h>

#include "lib/analyzer.h"
#include "lib/json.h"

#define SEC 1000000000ull
#define MIN (60 * SEC)
#define NOW (100000 * SEC)
#define IDLE_FOR (5 * MIN)

static const char *const dir = suite_dir; /* the suite's private directory */

TestSuite(analyzer_verdict, .init = suite_dir_setup, .fini = suite_dir_teardown);

static void snap_of(struct fab *f, const char *name, struct lw_snapshot *s)
{
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(f, dir, name, path, sizeof path);
	fab_free(f);
	cr_assert_eq(lw_snapshot_open(s, path, err, sizeof err), 0, "%s", err);
}

static struct lw_handle *tcp_to(struct fab *f, int fd, uint32_t stack, uint64_t age, uint16_t port)
{
	struct lw_handle *h = fab_handle(f, fd, LW_ORIGIN_SOCKET, stack, NOW - age);
	fab_addr_in(&h->peer, "127.0.0.1", port);
	return h;
}

static const struct lw_group *only(const struct lw_grouping *g)
{
	cr_assert_eq(g->ngroups, 1, "expected one group, got %zu", g->ngroups);
	return &g->groups[0];
}

Test(analyzer_verdict, each_verdict)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	struct lw_sockdiag d;
	uint64_t frames[1] = { 0x1000 };

	/* listening */
	fab_init(&f, 8, 2, 32, 2);
	fab_stack(&f, 1, frames, 1);
	fab_addr_in(&fab_handle(&f, 3, LW_ORIGIN_SOCKET, 1, NOW - 3600 * SEC)->local, "0.0.0.0", 8080);
	snap_of(&f, "l", &s);
	memset(&d, 0, sizeof d);
	fab_kernel_tcp(&d, 100003, 10, UINT32_MAX, 0, 128);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(only(&g)->verdict, LW_V_LISTENING);
	cr_assert_eq(only(&g)->ev.listening, 1);
	cr_assert_eq(only(&g)->ev.idle, 0, "a listener is never idle");
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* new: everything younger than --idle-for, even never used */
	fab_init(&f, 8, 2, 32, 2);
	tcp_to(&f, 3, 1, 10 * SEC, 5432);
	tcp_to(&f, 4, 1, 20 * SEC, 5432);
	snap_of(&f, "n", &s);
	cr_assert_eq(fab_verdict(&g, &s, NULL, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(only(&g)->verdict, LW_V_NEW);
	cr_assert_eq(only(&g)->ev.young, 2);
	cr_assert_eq(only(&g)->ev.idle_age, 2, "no evidence of use: idle = age");
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* active: one long-lived connection with recent traffic (kernel) */
	fab_init(&f, 8, 2, 32, 2);
	tcp_to(&f, 3, 1, 3600 * SEC, 443);
	snap_of(&f, "a", &s);
	memset(&d, 0, sizeof d);
	fab_kernel_tcp(&d, 100003, 1, 1500, 7, 9);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(only(&g)->verdict, LW_V_ACTIVE);
	cr_assert_eq(only(&g)->members[0].idle_ns, 1500 * 1000000ull);
	cr_assert_eq(only(&g)->members[0].idle_source, LW_IDLE_KERNEL);
	cr_assert_eq(only(&g)->ev.rqueue, 7);
	cr_assert_eq(only(&g)->ev.wqueue, 9);
	cr_assert_eq(only(&g)->ev.used_recently, 1);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* pool: several old connections, I/O within --idle-for */
	fab_init(&f, 8, 2, 32, 2);
	memset(&d, 0, sizeof d);
	for (int i = 0; i < 3; i++) {
		tcp_to(&f, 3 + i, 1, 6 * 3600 * SEC, 5432);
		fab_kernel_tcp(&d, 100003 + (uint64_t)i, 1, 400 + 1000 * (uint32_t)i, 0, 0);
	}
	snap_of(&f, "p", &s);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(only(&g)->verdict, LW_V_POOL);
	cr_assert_eq(only(&g)->ev.idle_min_ns, 400 * 1000000ull);
	cr_assert_eq(only(&g)->ev.idle_max_ns, 2400 * 1000000ull);
	cr_assert_eq(only(&g)->ev.reasons, 0);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* leak suspect: idle (kernel says no data for 10 minutes) */
	fab_init(&f, 8, 2, 32, 2);
	memset(&d, 0, sizeof d);
	for (int i = 0; i < 4; i++) {
		tcp_to(&f, 3 + i, 1, 3600 * SEC, 5432);
		fab_kernel_tcp(&d, 100003 + (uint64_t)i, 1, 600000, 0, 0);
	}
	snap_of(&f, "s", &s);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(only(&g)->verdict, LW_V_LEAK_SUSPECT);
	cr_assert_eq(only(&g)->ev.idle, 4);
	cr_assert_eq(only(&g)->ev.reasons, LW_REASON_IDLE, "same age: not growing");
	cr_assert_not(only(&g)->split);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* leak suspect: CLOSE_WAIT, however young and recently used */
	fab_init(&f, 8, 2, 32, 2);
	tcp_to(&f, 3, 1, 10 * SEC, 5432);
	snap_of(&f, "cw", &s);
	memset(&d, 0, sizeof d);
	fab_kernel_tcp(&d, 100003, 8, 100, 1, 0);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(only(&g)->verdict, LW_V_LEAK_SUSPECT);
	cr_assert_eq(only(&g)->ev.reasons, LW_REASON_CLOSE_WAIT);
	cr_assert_eq(only(&g)->ev.close_wait, 1);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
}

Test(analyzer_verdict, shim_last_use_when_the_kernel_has_no_times)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	fab_init(&f, 8, 2, 32, 2);
	/* UDP: no tcp_info.  fd 3 sent 2s ago, fd 4 never sent anything in an hour. */
	struct lw_handle *u = fab_handle(&f, 3, LW_ORIGIN_SOCKET, 1, NOW - 3600 * SEC);
	u->type = SOCK_DGRAM;
	fab_use(u, 2, NOW - 2 * SEC);
	u = fab_handle(&f, 4, LW_ORIGIN_SOCKET, 3, NOW - 3600 * SEC);
	u->type = SOCK_DGRAM;
	snap_of(&f, "u", &s);
	cr_assert_eq(fab_verdict(&g, &s, NULL, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(g.ngroups, 2);
	cr_assert_eq(g.groups[0].verdict, LW_V_LEAK_SUSPECT, "leak suspects first");
	cr_assert_eq(g.groups[0].stack_id, 3);
	cr_assert_eq(g.groups[0].members[0].idle_source, LW_IDLE_AGE);
	cr_assert_eq(g.groups[0].use_stack_id, 0, "never used");
	cr_assert_eq(g.groups[1].verdict, LW_V_ACTIVE);
	cr_assert_eq(g.groups[1].members[0].idle_ns, 2 * SEC);
	cr_assert_eq(g.groups[1].members[0].idle_source, LW_IDLE_SHIM);
	cr_assert_eq(g.groups[1].use_stack_id, 2);
	cr_assert_eq(g.groups[1].use_share, 1);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
}

/*
 * The 3 AM incident: 100 connections opened by the pool at start-up (stack
 * 1); 3 still in service (last used by handle_request, stack 3), 97 checked
 * out by get_user_data (stack 2) and never returned: idle for 10 minutes.
 * 60/37 split variant: two culprits.
 */
static void pool_fab(struct fab *f, struct lw_sockdiag *d, int two_culprits)
{
	uint64_t fr[2] = { 0x20000100, 0x20000200 };
	fab_init(f, 8, 4, 128, 2);
	fab_module(f, "/opt/app/libdb.so", 0x20000000, 0x20000000, 0x20100000, 0);
	fab_stack(f, 1, fr, 2);
	uint64_t f2[1] = { 0x20000300 }, f3[1] = { 0x20000400 }, f4[1] = { 0x20000500 };
	fab_stack(f, 2, f2, 1);
	fab_stack(f, 3, f3, 1);
	fab_stack(f, 4, f4, 1);
	fab_stack_socks(f, 1, 100, 0);
	memset(d, 0, sizeof *d);
	for (int i = 0; i < 100; i++) {
		struct lw_handle *h = tcp_to(f, 3 + i, 1, 6 * 3600 * SEC, 5432);
		if (i < 3) {
			fab_use(h, 3, NOW - 400 * 1000000ull);
			fab_kernel_tcp(d, h->inode, 1, 400, 0, 0);
		} else {
			fab_use(h, two_culprits && i >= 63 ? 4 : 2, NOW - 10 * MIN);
			fab_kernel_tcp(d, h->inode, 1, 600000, 0, 0);
		}
	}
}

Test(analyzer_verdict, pool_split_names_the_culprit_by_last_use)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	struct lw_sockdiag d;
	pool_fab(&f, &d, 0);
	snap_of(&f, "pool", &s);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(g.ngroups, 2);
	const struct lw_group *sus = &g.groups[0], *pool = &g.groups[1];
	cr_assert_eq(sus->verdict, LW_V_LEAK_SUSPECT);
	cr_assert_eq(sus->count, 97);
	cr_assert_eq(sus->stack_id, 1, "opened at the pool's stack");
	cr_assert_eq(sus->use_stack_id, 2, "named by get_user_data");
	cr_assert_eq(sus->use_share, 97);
	cr_assert(sus->split);
	cr_assert_eq(sus->ev.key_count, 100);
	cr_assert_eq(sus->ev.idle, 97);
	cr_assert_eq(sus->ev.reasons, LW_REASON_IDLE);
	cr_assert_eq(sus->ev.stack_opened, 100);
	cr_assert_eq(pool->verdict, LW_V_POOL);
	cr_assert_eq(pool->count, 3);
	cr_assert_eq(pool->use_stack_id, 3);
	cr_assert_eq(pool->fds[0], 3);
	cr_assert_eq(pool->fds[2], 5);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* Two culprits: one suspect per last-use stack, larger first. */
	pool_fab(&f, &d, 1);
	snap_of(&f, "pool2", &s);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(g.ngroups, 3);
	cr_assert_eq(g.groups[0].verdict, LW_V_LEAK_SUSPECT);
	cr_assert_eq(g.groups[0].count, 60);
	cr_assert_eq(g.groups[0].use_stack_id, 2);
	cr_assert_eq(g.groups[1].verdict, LW_V_LEAK_SUSPECT);
	cr_assert_eq(g.groups[1].count, 37);
	cr_assert_eq(g.groups[1].use_stack_id, 4);
	cr_assert_eq(g.groups[2].verdict, LW_V_POOL);
	lw_grouping_free(&g);

	/* --by use: keyed by last-use stack; the creation stack is shown with its share. */
	pool_fab(&f, &d, 1);
	lw_snapshot_free(&s);
	snap_of(&f, "pool3", &s);
	cr_assert_eq(fab_verdict(&g, &s, &d, NOW, IDLE_FOR, LW_BY_USE, NULL, 0), 0);
	cr_assert_eq(g.ngroups, 3);
	cr_assert_eq(g.groups[0].by, LW_BY_USE);
	cr_assert_eq(g.groups[0].use_stack_id, 2);
	cr_assert_eq(g.groups[0].count, 60);
	cr_assert_eq(g.groups[0].stack_id, 1);
	cr_assert_eq(g.groups[0].open_share, 60);
	cr_assert_eq(g.groups[2].use_stack_id, 3);
	cr_assert_eq(g.groups[2].verdict, LW_V_POOL);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
}

Test(analyzer_verdict, all_idle_group_shows_most_common_last_use_with_share)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	fab_init(&f, 8, 2, 32, 2);
	for (int i = 0; i < 5; i++) {
		struct lw_handle *h = fab_handle(&f, 3 + i, LW_ORIGIN_SOCKET, 1, NOW - 3600 * SEC);
		h->type = SOCK_DGRAM;
		if (i < 3)
			fab_use(h, 2, NOW - 30 * MIN);
		else if (i == 3)
			fab_use(h, 3, NOW - 20 * MIN);
	}
	snap_of(&f, "share", &s);
	cr_assert_eq(fab_verdict(&g, &s, NULL, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	const struct lw_group *x = only(&g);
	cr_assert_eq(x->verdict, LW_V_LEAK_SUSPECT);
	cr_assert_not(x->split, "no healthy members: one group");
	cr_assert_eq(x->use_stack_id, 2);
	cr_assert_eq(x->use_share, 3);
	cr_assert_eq(x->ev.idle_shim, 4);
	cr_assert_eq(x->ev.idle_age, 1);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
}

Test(analyzer_verdict, growth_without_interval_needs_spread_ages)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	fab_init(&f, 8, 2, 32, 2);
	const uint64_t ages[] = { 3600, 1800, 600 };
	for (int i = 0; i < 3; i++)
		fab_handle(&f, 3 + i, LW_ORIGIN_SOCKET, 1, NOW - ages[i] * SEC)->type = SOCK_DGRAM;
	snap_of(&f, "spread", &s);
	cr_assert_eq(fab_verdict(&g, &s, NULL, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(only(&g)->verdict, LW_V_LEAK_SUSPECT);
	cr_assert(only(&g)->ev.growing, "3 idle members opened over 50 minutes");
	cr_assert_eq(only(&g)->ev.reasons, LW_REASON_IDLE | LW_REASON_GROWING);
	cr_assert_not(only(&g)->ev.have_interval);
	lw_grouping_free(&g);
	/* With a 1h threshold only the oldest is idle: not enough to call it growth. */
	cr_assert_eq(fab_verdict(&g, &s, NULL, NOW, 50 * MIN, LW_BY_OPEN, NULL, 0), 0);
	cr_assert_eq(g.ngroups, 2);
	cr_assert_eq(g.groups[0].verdict, LW_V_LEAK_SUSPECT);
	cr_assert_eq(g.groups[0].count, 1);
	cr_assert_not(g.groups[0].ev.growing);
	cr_assert_eq(g.groups[1].verdict, LW_V_ACTIVE, "young members next to a suspect are not new");
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
}

Test(analyzer_verdict, growth_with_interval)
{
	struct fab f;
	struct lw_snapshot s0, s1;
	struct lw_grouping g;
	struct lw_sockdiag d;
	const uint64_t t0 = NOW - 60 * SEC;
	/* first snapshot: 5 connections, stack totals 5 opened 0 closed */
	uint64_t fr[1] = { 0x1000 };
	fab_init(&f, 8, 2, 32, 2);
	fab_stack(&f, 1, fr, 1);
	for (int i = 0; i < 5; i++)
		tcp_to(&f, 3 + i, 1, 3600 * SEC + 60 * SEC, 5432);
	fab_stack_socks(&f, 1, 5, 0);
	snap_of(&f, "first", &s0);
	/* 60s later: 2 closed elsewhere, 5 more opened and kept, 3 of them here: 8 open */
	fab_init(&f, 8, 2, 32, 2);
	fab_stack(&f, 1, fr, 1);
	memset(&d, 0, sizeof d);
	for (int i = 0; i < 8; i++) {
		struct lw_handle *h = tcp_to(&f, 3 + i, 1, i < 5 ? 3600 * SEC : 30 * SEC, 5432);
		fab_kernel_tcp(&d, h->inode, 1, i < 5 ? 600000 : 30000, 0, 0);
	}
	fab_stack_socks(&f, 1, 10, 2);
	snap_of(&f, "second", &s1);
	cr_assert_eq(fab_verdict(&g, &s1, &d, NOW, IDLE_FOR, LW_BY_OPEN, &s0, t0), 0);
	cr_assert_eq(g.ngroups, 2);
	const struct lw_group *sus = &g.groups[0], *rest = &g.groups[1];
	cr_assert_eq(sus->verdict, LW_V_LEAK_SUSPECT);
	cr_assert_eq(sus->count, 5);
	cr_assert(sus->ev.have_interval);
	cr_assert_eq(sus->ev.interval_ns, 60 * SEC);
	cr_assert_eq(sus->ev.count_start, 5);
	cr_assert_eq(sus->ev.count_end, 8);
	cr_assert_eq(sus->ev.opened, 5);
	cr_assert_eq(sus->ev.closed, 2);
	cr_assert(sus->ev.growing);
	cr_assert_eq(sus->ev.reasons, LW_REASON_IDLE | LW_REASON_GROWING);
	cr_assert_eq(rest->verdict, LW_V_ACTIVE, "young and used, next to suspects");
	cr_assert_eq(rest->count, 3);
	cr_assert(rest->ev.growing, "growth describes the whole key group");
	cr_assert_eq(rest->ev.reasons, 0, "growth never makes a used socket a suspect");
	lw_grouping_free(&g);

	/* Stable over the interval: not growing. */
	memset(&d, 0, sizeof d);
	for (int i = 0; i < 5; i++)
		fab_kernel_tcp(&d, 100003 + (uint64_t)i, 1, 600000, 0, 0);
	cr_assert_eq(fab_verdict(&g, &s0, &d, NOW, IDLE_FOR, LW_BY_OPEN, &s0, t0), 0);
	cr_assert_eq(only(&g)->ev.count_start, 5);
	cr_assert_eq(only(&g)->ev.count_end, 5);
	cr_assert_not(only(&g)->ev.growing);
	cr_assert_eq(only(&g)->ev.opened, 0);
	lw_grouping_free(&g);
	lw_snapshot_free(&s0);
	lw_snapshot_free(&s1);
}

Test(analyzer_verdict, deterministic_order)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	struct lw_sockdiag d;
	fab_init(&f, 8, 2, 64, 2);
	memset(&d, 0, sizeof d);
	/* listening (stack 5), new x2 (stack 4), active x1 (stack 3), pool x2 (stack 2),
	 * two suspects of equal size and age (stacks 7 and 6) */
	fab_addr_in(&fab_handle(&f, 3, LW_ORIGIN_SOCKET, 5, NOW - 3600 * SEC)->local, "0.0.0.0", 80);
	fab_kernel_tcp(&d, 100003, 10, UINT32_MAX, 0, 0);
	tcp_to(&f, 4, 4, SEC, 1);
	tcp_to(&f, 5, 4, SEC, 1);
	tcp_to(&f, 6, 3, 3600 * SEC, 2);
	fab_kernel_tcp(&d, 100006, 1, 10, 0, 0);
	tcp_to(&f, 7, 2, 3600 * SEC, 3);
	tcp_to(&f, 8, 2, 3600 * SEC, 3);
	fab_kernel_tcp(&d, 100007, 1, 10, 0, 0);
	fab_kernel_tcp(&d, 100008, 1, 10, 0, 0);
	for (int i = 0; i < 2; i++) {
		tcp_to(&f, 9 + i, 7, 3600 * SEC, 4);
		tcp_to(&f, 11 + i, 6, 3600 * SEC, 4);
	}
	snap_of(&f, "order", &s);
	/* verdict rank first (suspect, pool, active, new, listening), then count, age, stack id */
	const enum lw_verdict want_v[] = { LW_V_LEAK_SUSPECT, LW_V_LEAK_SUSPECT, LW_V_POOL, LW_V_ACTIVE,
					   LW_V_NEW, LW_V_LISTENING };
	const uint32_t want_stack[] = { 6, 7, 2, 3, 4, 5 };
	for (int round = 0; round < 2; round++) {
		struct lw_sockdiag copy;
		memset(&copy, 0, sizeof copy);
		for (size_t i = 0; i < d.n; i++)
			lw_sockdiag_add(&copy, &d.v[i]);
		cr_assert_eq(fab_verdict(&g, &s, &copy, NOW, IDLE_FOR, LW_BY_OPEN, NULL, 0), 0);
		cr_assert_eq(g.ngroups, 6);
		for (size_t i = 0; i < 6; i++) {
			cr_assert_eq(g.groups[i].stack_id, want_stack[i], "round %d group %zu: stack %u", round, i,
				     g.groups[i].stack_id);
			cr_assert_eq(g.groups[i].verdict, want_v[i], "group %zu", i);
		}
		lw_grouping_free(&g);
	}
	lw_sockdiag_free(&d);
	lw_snapshot_free(&s);
}

/* ---- through the report: text and JSON ---------------------------------- */

static void pool_report(struct lw_report *r)
{
	struct fab f;
	struct lw_sockdiag d;
	char path[PATH_MAX], err[LW_ERR_MAX];
	pool_fab(&f, &d, 0);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	struct lw_report_opts o = { .format = LW_FMT_TEXT, .kind = LW_KIND_SOCKETS };
	cr_assert_eq(lw_report_build(r, path, &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(r->grouping.groups[0].verdict, LW_V_LEFT_OPEN, "a dead image: run semantics");
	/* As if alive: the fabricated kernel view and clock. */
	r->live = LW_LIVE_ALIVE;
	r->now_ns = NOW;
	lw_join_set_sockdiag(&r->join, &d);
	cr_assert_eq(lw_report_classify(r), 0);
}

Test(analyzer_verdict, text_leads_with_last_used_for_suspects)
{
	struct lw_report r;
	pool_report(&r);
	char *t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, "sockets by verdict (idle > 5m00s, grouped by creation stack): 97 leak suspect, 3 pool\n"), "%s", t);
	const char *sus = strstr(t, "LEAK SUSPECT  97  TCP -> 127.0.0.1:5432  age 6h00m, idle > 5m00s (97/97)   ESTABLISHED 97\n");
	const char *pool = strstr(t, "POOL           3  TCP -> 127.0.0.1:5432  age 6h00m, last I/O 400ms ago   ESTABLISHED 3\n");
	cr_assert_not_null(sus, "%s", t);
	cr_assert_not_null(pool, "%s", t);
	cr_assert_lt(sus, pool);
	cr_assert(strstr(sus, "  evidence    idle 10m00s (kernel 97), 97/97 idle > 5m00s, recv-q 0 B, send-q 0 B; 97 of 100 opened here\n"), "%s", t);
	const char *lu = strstr(sus, "  last used at libdb.so+0x300\n");
	const char *op = strstr(sus, "  opened at    libdb.so+0x100\n               libdb.so+0x200\n");
	cr_assert(lu && op && lu < op && op < pool, "suspect: last used at first: %s", t);
	const char *op2 = strstr(pool, "  opened at    libdb.so+0x100\n");
	const char *lu2 = strstr(pool, "  last used at libdb.so+0x400\n");
	cr_assert(op2 && lu2 && op2 < lu2, "pool: opened at first: %s", t);
	free(t);
	lw_report_free(&r);
}

Test(analyzer_verdict, json_verdict_evidence_and_last_use)
{
	struct lw_report r;
	pool_report(&r);
	char *t = render_report(&r, 1, NULL);
	struct tj *j = tj_parse(t);
	cr_assert_not_null(j, "invalid JSON: %s", t);
	cr_assert_str_eq(tj_str(j, "group_by"), "open");
	cr_assert_eq(tj_num(j, "idle_for_s", -1), 300);
	cr_assert_eq(tj_get(j, "interval_s")->type, TJ_NULL);
	struct tj *groups = tj_get(j, "groups");
	cr_assert_eq(tj_len(groups), 2);
	struct tj *s = tj_at(groups, 0), *p = tj_at(groups, 1);
	cr_assert_str_eq(tj_str(s, "verdict"), "leak_suspect");
	cr_assert_str_eq(tj_str(p, "verdict"), "pool");
	struct tj *ev = tj_get(s, "evidence");
	cr_assert_eq(tj_num(ev, "idle", -1), 97);
	cr_assert_eq(tj_num(ev, "close_wait", -1), 0);
	cr_assert_eq(tj_num(ev, "idle_min_s", -1), 600);
	cr_assert_eq(tj_num(ev, "idle_max_s", -1), 600);
	cr_assert_eq(tj_num(tj_get(ev, "idle_source"), "kernel", -1), 97);
	cr_assert_eq(tj_len(tj_get(ev, "reasons")), 1);
	cr_assert_str_eq(tj_at(tj_get(ev, "reasons"), 0)->str, "idle");
	cr_assert_eq(tj_num(ev, "key_count", -1), 100);
	cr_assert_eq(tj_num(ev, "split", -1), 1);
	cr_assert_eq(tj_num(ev, "recv_queue", -1), 0);
	cr_assert_eq(tj_get(ev, "growth")->type, TJ_NULL);
	cr_assert_eq(tj_num(s, "last_use_stack_id", -1), 2);
	cr_assert_eq(tj_num(tj_get(s, "last_use_share"), "count", -1), 97);
	cr_assert_eq(tj_num(tj_get(s, "last_use_share"), "of", -1), 97);
	struct tj *f0 = tj_at(tj_get(s, "last_use_stack"), 0);
	cr_assert_str_eq(tj_str(f0, "module_offset"), "0x300");
	cr_assert_eq(tj_num(p, "last_use_stack_id", -1), 3);
	cr_assert_eq(tj_num(tj_get(p, "evidence"), "used_recently", -1), 3);
	tj_free(j);
	free(t);
	lw_report_free(&r);
}

Test(analyzer_verdict, ended_images_keep_run_semantics)
{
	struct fab f;
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_init(&f, 8, 2, 32, 2);
	f.hdr->state = LW_STATE_EXITED;
	f.hdr->end_monotonic_ns = NOW;
	uint64_t fr[1] = { 0x1000 };
	fab_stack(&f, 1, fr, 1);
	fab_stack(&f, 2, fr, 1);
	fab_use(tcp_to(&f, 3, 1, 10 * SEC, 5432), 2, NOW - SEC);
	tcp_to(&f, 4, 1, 10 * SEC, 5432);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	struct lw_report r;
	struct lw_report_opts o = { .kind = LW_KIND_SOCKETS };
	cr_assert_eq(lw_report_build(&r, path, &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(r.grouping.ngroups, 1);
	cr_assert_eq(r.grouping.groups[0].verdict, LW_V_LEFT_OPEN);
	cr_assert_eq(r.grouping.nleaked, 2);
	char *t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, "SOCKETS    2  TCP -> 127.0.0.1:5432  age 10s\n"), "%s", t);
	cr_assert(strstr(t, "  last used at 0x1000  (1/2)\n"), "last-use shown at exit too: %s", t);
	cr_assert_null(strstr(t, "evidence"), "%s", t);
	free(t);
	t = render_report(&r, 1, NULL);
	cr_assert(strstr(t, "\"verdict\":\"left_open\""), "%s", t);
	free(t);
	lw_report_free(&r);
}

Test(analyzer_verdict, names_and_parsing)
{
	enum lw_group_by by = LW_BY_OPEN;
	cr_assert_eq(lw_group_by_parse("use", &by), 0);
	cr_assert_eq(by, LW_BY_USE);
	cr_assert_eq(lw_group_by_parse("open", &by), 0);
	cr_assert_eq(by, LW_BY_OPEN);
	cr_assert_eq(lw_group_by_parse("stack", &by), -1);
	cr_assert_str_eq(lw_verdict_name(LW_V_LEAK_SUSPECT), "leak_suspect");
	cr_assert_str_eq(lw_verdict_name(LW_V_POOL), "pool");
	cr_assert_str_eq(lw_verdict_name(LW_V_ACTIVE), "active");
	cr_assert_str_eq(lw_verdict_name(LW_V_NEW), "new");
	cr_assert_str_eq(lw_verdict_name(LW_V_LISTENING), "listening");
	cr_assert_str_eq(lw_verdict_title(LW_V_LEAK_SUSPECT), "LEAK SUSPECT");
}
