/* SPDX-License-Identifier: MIT */
/*
 * testing.h — test-only seams of the reader library.  Nothing in the CLI
 * uses them.
 */
#ifndef LEAKWATCH_TESTING_H
#define LEAKWATCH_TESTING_H

#include "classify.h"
#include "kernel.h"

/*
 * lw_group_ops - test seam: element steps and comparisons made by grouping
 * and verdicts (classify.c) and top's history lookup, summed since
 * start.  Tests reset it and check that the work grows as n log n, not n^2,
 * without timing anything.  The analyzer is single-threaded.
 */
extern unsigned long long lw_group_ops;

/*
 * lw_join_set_sockdiag - use d as the kernel's view (taking ownership of its
 * memory; d is zeroed) instead of asking the kernel: tests feed fabricated
 * evidence this way, `top` could reuse a table.
 */
void lw_join_set_sockdiag(struct lw_join *j, struct lw_sockdiag *d);

/*
 * lw_join_set_watch - use w as the watch evidence (taking ownership; w is
 * zeroed) instead of reading /proc: tests feed fabricated evidence this way.
 */
void lw_join_set_watch(struct lw_join *j, struct lw_watchset *w);

/* lw_sockdiag_load_proc - the /proc/PID/net fallback alone (tests, comparison). 0 or -1. */
int lw_sockdiag_load_proc(struct lw_sockdiag *d, int pid);

/*
 * lw_snapshot_heap_read_hook - test seam (snapshot.c): called during every
 * read of a v2 segment's heap, after the replaced table (if any) was read
 * and before the current one is: tests make the shim's replacement of its
 * table happen exactly there, where blocks moving out of the current table
 * would be missed.  NULL: nothing is called.
 */
extern void (*lw_snapshot_heap_read_hook)(void);

#endif /* LEAKWATCH_TESTING_H */
