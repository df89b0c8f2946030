/* SPDX-License-Identifier: MIT */
/* site.c — the frame that names a stack (the rule is in site.h). */
#include <stdlib.h>
#include <string.h>

#include "present.h"
#include "site.h"

/* A function's identity across stacks: its name and its module (C) or file (Python). */
static uint64_t fn_key(const struct lw_frame *f)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	const char *parts[2] = { f->function, f->python ? f->file : f->module };
	for (int k = 0; k < 2; k++) {
		for (const unsigned char *p = (const unsigned char *)(parts[k] ? parts[k] : ""); *p; p++)
			h = (h ^ *p) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;
	}
	return h;
}

static int stack_has_python(const struct lw_frame *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].python)
			return 1;
	return 0;
}

/* Indices of the own frames of f[0..n), innermost first, into own[]; their count. */
static size_t own_frames(const struct lw_frame *f, size_t n, size_t *own)
{
	int py = stack_has_python(f, n);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (lw_present_own_frame(&f[i], py))
			own[m++] = i;
	return m;
}

static int edge_cmp_from(const void *a, const void *b)
{
	const struct lw_site_edge *x = a, *y = b;
	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return (x->to > y->to) - (x->to < y->to);
}

static int edge_cmp_to(const void *a, const void *b)
{
	const struct lw_site_edge *x = a, *y = b;
	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return (x->from > y->from) - (x->from < y->from);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* 1 when stack id is among the first n (sorted) ids read. */
static int stack_read(const struct lw_site_graph *cg, size_t n, uint32_t id)
{
	return n && bsearch(&id, cg->read, n, sizeof *cg->read, u32_cmp) != NULL;
}

/*
 * Learn the call graph from the socket stacks of r not read before (the
 * stack table only grows, so each is read once).  Without memory the graph
 * stays as it was: WHERE falls back to rules 3 and 4.
 */
void lw_site_graph_update(struct lw_site_graph *cg, struct lw_report *r)
{
	struct lw_frame f[LW_PRESENT_MAX_FRAMES];
	size_t own[LW_PRESENT_MAX_FRAMES];
	size_t nread0 = cg->nread, n0 = cg->n;
	for (size_t s = 0; s < r->snap.nstacks; s++) {
		const struct lw_snap_stack *st = &r->snap.stacks[s];
		if (!st->sock_opened && !st->sock_closed && !st->uses)
			continue;
		if (stack_read(cg, nread0, st->id))
			continue;
		if (cg->nread == cg->read_cap) {
			size_t nc = cg->read_cap ? cg->read_cap * 2 : 256;
			uint32_t *nr = realloc(cg->read, nc * sizeof *nr);
			if (!nr)
				break;
			cg->read = nr;
			cg->read_cap = nc;
		}
		/* appended after the sorted part, which is all stack_read looks at
		 * (a snapshot holds each id once) */
		size_t keep = cg->nread;
		cg->read[cg->nread++] = st->id;
		size_t n = lw_present_stack(r, st->id, f, LW_PRESENT_MAX_FRAMES);
		size_t m = own_frames(f, n, own);
		for (size_t j = 0; j + 1 < m; j++) {
			struct lw_site_edge e = { fn_key(&f[own[j + 1]]), fn_key(&f[own[j]]) };
			if (e.from == e.to)
				continue;       /* recursion says nothing about callers */
			if (cg->n == cg->cap) {
				size_t nc = cg->cap ? cg->cap * 2 : 256;
				struct lw_site_edge *a = realloc(cg->by_from, nc * sizeof *a);
				if (a)
					cg->by_from = a;
				struct lw_site_edge *b = a ? realloc(cg->by_to, nc * sizeof *b) : NULL;
				if (b)
					cg->by_to = b;
				if (!a || !b) {
					cg->nread = keep;   /* read it again next time */
					break;
				}
				cg->cap = nc;
			}
			cg->by_from[cg->n++] = e;
		}
	}
	if (cg->nread != nread0)
		qsort(cg->read, cg->nread, sizeof *cg->read, u32_cmp);
	if (cg->n == n0)
		return;
	qsort(cg->by_from, cg->n, sizeof *cg->by_from, edge_cmp_from);
	size_t k = 0;
	for (size_t i = 0; i < cg->n; i++)
		if (k == 0 || edge_cmp_from(&cg->by_from[k - 1], &cg->by_from[i]) != 0)
			cg->by_from[k++] = cg->by_from[i];
	cg->n = k;
	memcpy(cg->by_to, cg->by_from, k * sizeof *cg->by_to);
	qsort(cg->by_to, k, sizeof *cg->by_to, edge_cmp_to);
}

/* Distinct own callees (to == 0) or callers (to == 1) of function key fn. */
static size_t callgraph_fanout(const struct lw_site_graph *cg, uint64_t fn, int to)
{
	const struct lw_site_edge *a = to ? cg->by_to : cg->by_from;
	size_t lo = 0, hi = cg->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = to ? a[mid].to : a[mid].from;
		if (v < fn)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t c = 0;
	for (size_t i = lo; i < cg->n && (to ? a[i].to : a[i].from) == fn && c < 2; i++)
		c++;
	return c;
}

/* lw_site_pick - the frame of f[0..n) that names the stack (the rule at the top); NULL for none. */
const struct lw_frame *lw_site_pick(const struct lw_site_graph *cg, const struct lw_frame *f, size_t n)
{
	size_t own[LW_PRESENT_MAX_FRAMES];
	size_t m = own_frames(f, n, own);
	for (size_t j = 0; j + 1 < m; j++)
		if (callgraph_fanout(cg, fn_key(&f[own[j + 1]]), 0) >= 2)
			return &f[own[j]];
	for (size_t j = 0; j < m; j++)
		if (callgraph_fanout(cg, fn_key(&f[own[j]]), 1) < 2)
			return &f[own[j]];
	if (m)
		return &f[own[0]];
	for (size_t i = 0; i < n; i++)
		if (f[i].function && !lw_present_runtime_frame(f[i].function))
			return &f[i];
	return n ? &f[0] : NULL;
}

void lw_site_graph_free(struct lw_site_graph *cg)
{
	free(cg->by_from);
	free(cg->by_to);
	free(cg->read);
	memset(cg, 0, sizeof *cg);
}

