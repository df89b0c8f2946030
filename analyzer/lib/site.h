/* SPDX-License-Identifier: MIT */
/*
 * site.h — the one frame that names a stack (site.c): top's WHERE, the
 * exporter's site labels.
 *
 * "The first frame outside the C runtime" is usually a driver helper:
 * db_roundtrip, called for every query, says nothing about who leaked the
 * connection.  The rule, over the frames lw_present_own_frame() calls own
 * code:
 *
 *   1. the program's call graph between own functions is learnt from every
 *      stack the segment recorded for a socket (opened, closed or last used
 *      at); heap stacks are left out (allocations inside helpers would make
 *      every function look like a dispatcher);
 *   2. a function with two or more own callees there is a dispatcher
 *      (handle_request -> get_user_data | get_user_orders); the site is the
 *      innermost own frame whose caller is a dispatcher: the handler;
 *   3. otherwise the innermost own frame that is not a shared helper (a
 *      function with two or more own callers: db_roundtrip);
 *   4. otherwise the innermost own frame; without one, the first named
 *      frame outside the C runtime, else the innermost frame.
 */
#ifndef LEAKWATCH_SITE_H
#define LEAKWATCH_SITE_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "symbolize.h"

/* An edge of the program's own call graph: function keys. */
struct lw_site_edge {
	uint64_t from, to;              /* caller, callee */
};

/* The call graph of one process (zeroed: empty). */
struct lw_site_graph {
	struct lw_site_edge *by_from, *by_to; /* the same edges, unique, sorted by (from, to) / (to, from) */
	size_t n, cap;
	uint32_t *read;                 /* ids of the stacks read, ascending */
	size_t nread, read_cap;
};

/*
 * lw_site_graph_update - learn the edges of r's socket stacks not read
 * before (a segment's stack table only grows: each is read once; call it
 * again with later reports of the same process).  Without memory the graph
 * stays as it was (rules 3 and 4 still apply).
 */
void lw_site_graph_update(struct lw_site_graph *g, struct lw_report *r);

/* lw_site_pick - the frame of f[0..n) that names the stack; NULL when n is 0. */
const struct lw_frame *lw_site_pick(const struct lw_site_graph *g, const struct lw_frame *f, size_t n);

/* lw_site_graph_free - release g (zeroed after; safe on a zeroed one). */
void lw_site_graph_free(struct lw_site_graph *g);

#endif /* LEAKWATCH_SITE_H */
