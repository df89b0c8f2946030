/* SPDX-License-Identifier: MIT */
/* classify: the explicit group key and its one comparison. */
#include <criterion/criterion.h>
#include <sys/socket.h>

#include "lib/analyzer.h"

Test(analyzer_classify_key, order_is_total_and_round_trips)
{
	struct lw_group a, b;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	struct lw_group_key k = { .by = LW_BY_USE, .inherited = 0, .family = AF_INET, .type = SOCK_STREAM,
				  .role = LW_EP_PEER, .stack = 7, .endpoint = "127.0.0.1:5432" };
	lw_group_set_key(&a, &k);
	cr_assert_eq(a.use_stack_id, 7);
	cr_assert_eq(a.stack_id, 0);
	struct lw_group_key back = lw_group_key_of(&a);
	cr_assert_eq(lw_group_key_cmp(&k, &back), 0);
	b = a;
	cr_assert(lw_group_same_key(&a, &b));
	/* the non-key stack does not matter */
	b.stack_id = 99;
	cr_assert(lw_group_same_key(&a, &b));
	/* every key field does, and the order is antisymmetric */
	struct lw_group_key other[] = { k, k, k, k, k, k, k };
	other[0].by = LW_BY_OPEN;
	other[1].inherited = 1;
	other[2].family = AF_INET6;
	other[3].type = SOCK_DGRAM;
	other[4].role = LW_EP_LOCAL;
	other[5].stack = 8;
	other[6].endpoint = "127.0.0.1:5433";
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		int c1 = lw_group_key_cmp(&k, &other[i]), c2 = lw_group_key_cmp(&other[i], &k);
		cr_assert_neq(c1, 0, "field %zu", i);
		cr_assert((c1 < 0) == (c2 > 0), "field %zu", i);
	}
}
