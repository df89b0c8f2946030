/* SPDX-License-Identifier: MIT */
/*
 * heapgroups.c — live heap blocks grouped by the stack that allocated them.
 *
 * Sampled mode.  The shim records an allocation with a probability that
 * grows with its size, the way tcmalloc samples: with a mean interval of
 * R = sample_bytes between samples, an allocation of s bytes is sampled with
 * probability p = 1 - exp(-s/R).  Each sample therefore stands for 1/p
 * allocations and s/p bytes, and summing those gives unbiased estimates of
 * the live blocks and bytes of a stack.  Expected error: for a leak of N
 * blocks of size s the number of samples is binomial(N, p), so the estimate
 * N' = samples/p has relative standard error sqrt((1-p)/(N p)) — about
 * 1/sqrt(samples) when s << R (e.g. 100 samples: +-10%), and 0 when s >> R
 * (p ~ 1: every such block is recorded).  A small leak of small blocks may
 * have no sample at all; that is the price of sampling.
 *
 * Per-stack totals (heap_allocs, heap_bytes) count only sampled allocations
 * in sampled mode and keep no sizes, so they are scaled with the weight of
 * the stack's mean allocation size: exact when a call site always allocates
 * the same size (the common case), an approximation otherwise.  A total is
 * never shown below what is live.
 *
 * Which blocks are leaks (LW_HEAP_PROGRAM)?  glibc, the dynamic loader and
 * libstdc++ keep memory until exit by design: stdio buffers, atexit tables,
 * TLS blocks, locale and timezone data, NSS state, the libstdc++ emergency
 * exception pool.  A CI run must not fail on those, so a group is "system"
 * (LW_HEAP_SYSTEM, shown with --all, never counted) when either
 *
 *   1. every frame of its stack lies in a system module (lw_module_is_system)
 *      and the stack is complete (shorter than the recorded depth limit):
 *      allocations by the loader and by library constructors before main;
 *   2. an entry of the built-in default suppressions (default.supp) matches
 *      it: printf -> _IO_file_doallocate keeps a stdio buffer, localtime ->
 *      tzset_internal keeps timezone data.  Functions that hand memory to
 *      their caller (malloc, strdup, operator new, fopen, getline...) are
 *      not there, so `new Foo` or strdup() from the program stays a leak.
 *      Rule 2 needs symbol names: without libdw only rule 1 applies.
 *
 * Rule 1 says "every frame", which no suppression format can express, so it
 * stays code.  A program group that one of the user's suppressions matches
 * is LW_HEAP_SUPPRESSED: not counted, its entry credited.
 *
 * Frames with no module (JIT code, a corrupt stack) are never system, and a
 * stack cut at the depth limit is never system by rule 1: the program frame
 * may be the one that was cut off.  Blocks without a recorded stack are
 * LW_HEAP_UNRECORDED and not counted either.  (A fork child starts with an
 * empty heap table: blocks it inherited are never seen, so there is no
 * "inherited" class as there is for sockets.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapgroups.h"
#include "names.h"

#define MAX_FRAMES (LW_STACK_MAX_FRAMES * 4)

double lw_heap_sample_weight(uint64_t size, uint64_t sample_bytes)
{
	if (sample_bytes == 0 || size == 0)
		return 1.0;
	/* -expm1(-x) keeps precision where 1 - exp(-x) would cancel (s << R). */
	double p = -expm1(-(double)size / (double)sample_bytes);
	if (!(p > 0.0))
		return 1.0;
	return 1.0 / p;
}

static const char *path_basename(const char *p)
{
	const char *b = strrchr(p, '/');
	return b ? b + 1 : p;
}

int lw_module_is_system(const char *path)
{
	/* Basename prefixes; each is followed by a version or ".so" in real names. */
	static const char *const prefixes[] = {
		"libc.so", "ld-linux", "ld.so", "ld-2.", "libpthread.so", "libdl.so", "libm.so",
		"librt.so", "libresolv.so", "libnss_", "libanl.so", "libutil.so", "libmvec.so",
		"libcrypt.so", "libc_malloc_debug.so", "libstdc++.so", "libgcc_s.so",
	};
	if (!path || !*path)
		return 0;
	const char *b = path_basename(path);
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (strncmp(b, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* The module a recorded address lies in: loaded ones win over dlclose()d ones. */
static const struct lw_module *module_of(const struct lw_snapshot *s, uint64_t addr)
{
	const struct lw_module *best = NULL;
	for (size_t i = 0; i < s->nmodules; i++) {
		const struct lw_module *m = &s->modules[i];
		if (addr < m->start || addr >= m->end)
			continue;
		if (!best || !(m->flags & LW_MODULE_UNLOADED) || (best->flags & LW_MODULE_UNLOADED))
			best = m;
	}
	return best;
}

static int module_hidden(const struct lw_module *m)
{
	return strcmp(path_basename(m->path), "libleakwatch.so") == 0;
}

/* Rule 1: every (non-shim) frame in a system module, stack not cut short. */
static int stack_all_system(const struct lw_snapshot *s, const struct lw_snap_stack *st)
{
	size_t n = 0;
	if (s->hdr.stack_depth && st->depth >= s->hdr.stack_depth)
		return 0;
	for (size_t i = 0; i < st->depth; i++) {
		if (st->frames[i] == 0)
			continue;
		const struct lw_module *m = module_of(s, st->frames[i]);
		if (!m)
			return 0;
		if (module_hidden(m))
			continue;
		/* The main program is recorded with an empty path; the vdso has no file. */
		if ((m->flags & LW_MODULE_MAIN) || m->path[0] == '\0')
			return 0;
		if (!(m->flags & LW_MODULE_VDSO) && !lw_module_is_system(m->path))
			return 0;
		n++;
	}
	return n > 0;
}

static enum lw_heap_class stack_class(const struct lw_snapshot *s, uint32_t stack_id)
{
	const struct lw_snap_stack *st = lw_snapshot_stack(s, stack_id);
	if (!st || st->depth == 0)
		return LW_HEAP_UNRECORDED;
	if (stack_all_system(s, st))
		return LW_HEAP_SYSTEM;
	return LW_HEAP_PROGRAM;
}

/* Rule 2 and the user's suppressions: the entry matching a program group, or NULL. */
static const struct lw_supp *group_supp(const struct lw_snapshot *s, struct lw_symbolizer *sym,
					struct lw_supp_set *supp, const struct lw_heap_group *g)
{
	struct lw_frame frames[MAX_FRAMES];
	const struct lw_snap_stack *st = lw_snapshot_stack(s, g->stack_id);
	if (!sym || !supp || !st)
		return NULL;
	size_t n = lw_symbolize_stack(sym, st->frames, st->depth, frames, MAX_FRAMES);
	return lw_supp_match(supp, LW_SUPP_HEAP, g->reach, frames, n, g->blocks, g->bytes);
}

/* One live block as the grouping sees it. */
struct item {
	uint32_t stack_id;
	uint32_t reach;                 /* enum lw_reach */
	uint64_t age;
	double weight;                  /* blocks this entry stands for */
	double bytes;                   /* bytes it stands for */
};

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->stack_id != y->stack_id)
		return x->stack_id < y->stack_id ? -1 : 1;
	if (x->reach != y->reach)
		return x->reach < y->reach ? -1 : 1;
	return (x->age > y->age) - (x->age < y->age);
}

/*
 * Weighted median of ages sorted ascending: the first age where the running
 * weight reaches half the total; with equal weights and an even count, the
 * mean of the two middle ages (the usual median).
 */
static uint64_t median_age(const struct item *it, size_t n, double total)
{
	double cum = 0;
	for (size_t i = 0; i < n; i++) {
		cum += it[i].weight;
		if (cum * 2 >= total) {
			if (cum * 2 == total && i + 1 < n)
				return it[i].age + (it[i + 1].age - it[i].age) / 2;
			return it[i].age;
		}
	}
	return n ? it[n - 1].age : 0;
}

static int group_cmp(const void *a, const void *b)
{
	const struct lw_heap_group *x = a, *y = b;
	if (x->cls != y->cls)
		return x->cls < y->cls ? -1 : 1;
	if (x->reach != y->reach) /* definitely lost first, not checked last */
		return (x->reach ? x->reach : LW_REACH_NCLASS) < (y->reach ? y->reach : LW_REACH_NCLASS) ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	if (x->blocks != y->blocks)
		return x->blocks < y->blocks ? 1 : -1;
	return (x->stack_id > y->stack_id) - (x->stack_id < y->stack_id);
}

static void group_totals(struct lw_heap_group *g, const struct lw_snapshot *s, uint64_t sample_bytes)
{
	const struct lw_snap_stack *st = lw_snapshot_stack(s, g->stack_id);
	if (st && st->heap_allocs) {
		double w = lw_heap_sample_weight(st->heap_bytes / st->heap_allocs, sample_bytes);
		g->total_allocs = (double)st->heap_allocs * w;
		g->total_bytes = (double)st->heap_bytes * w;
	}
	/* Counters are relaxed and sampled totals use a mean size: never below what is live. */
	if (g->total_allocs < g->blocks)
		g->total_allocs = g->blocks;
	if (g->total_bytes < g->bytes)
		g->total_bytes = g->bytes;
}

int lw_heap_group_is_leak(const struct lw_heap *h, const struct lw_heap_group *g)
{
	if (g->cls != LW_HEAP_PROGRAM)
		return 0;
	if (!h->reach_checked)
		return 1;
	/* a block the check did not see (allocated after it) is not judged lost */
	return g->reach != LW_REACH_UNKNOWN && (h->leak_kinds & LW_REACH_BIT(g->reach));
}

int lw_heap_build(struct lw_heap *h, const struct lw_snapshot *s, struct lw_symbolizer *sym,
		  uint64_t now_ns, uint64_t older_than_ns, const struct lw_reach_result *reach,
		  unsigned leak_kinds, struct lw_supp_set *supp)
{
	memset(h, 0, sizeof *h);
	h->leak_kinds = leak_kinds ? leak_kinds : LW_REACH_KINDS_DEFAULT;
	if (reach && reach->pid == s->hdr.pid && reach->image_ns == s->hdr.start_monotonic_ns) {
		h->reach_checked = 1;
		h->reach_pause_ns = reach->pause_ns;
		h->reach_threads = reach->stats.threads;
	} else {
		reach = NULL;
	}
	h->mode = s->hdr.heap_mode;
	h->estimated = h->mode == LW_HEAP_SAMPLED;
	h->sample_bytes = s->hdr.sample_bytes;
	if (h->mode == LW_HEAP_OFF || s->nallocs == 0)
		return 0;
	uint64_t rate = h->estimated ? h->sample_bytes : 0;

	struct item *items = malloc(s->nallocs * sizeof *items);
	if (!items)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < s->nallocs; i++) {
		const struct lw_snap_alloc *a = &s->allocs[i];
		/*
		 * The shim stamps blocks with the coarse monotonic clock, which lags the
		 * fine one by up to a tick: never older than the process.  A block
		 * stamped after the reference time has age 0.
		 */
		uint64_t ns = a->ns < s->hdr.start_monotonic_ns ? s->hdr.start_monotonic_ns : a->ns;
		uint64_t age = now_ns > ns ? now_ns - ns : 0;
		if (age < older_than_ns)
			continue;
		struct item *it = &items[n++];
		it->stack_id = a->stack_id;
		it->reach = reach ? lw_reach_lookup(reach, a->ptr, a->ns) : LW_REACH_UNKNOWN;
		it->age = age;
		it->weight = lw_heap_sample_weight(a->size, rate);
		it->bytes = (double)a->size * it->weight;
	}
	h->nsamples = n;
	if (n == 0) {
		free(items);
		return 0;
	}
	qsort(items, n, sizeof *items, item_cmp);

	size_t ngroups = 1;
	for (size_t i = 1; i < n; i++)
		if (items[i].stack_id != items[i - 1].stack_id || items[i].reach != items[i - 1].reach)
			ngroups++;
	h->groups = calloc(ngroups, sizeof *h->groups);
	if (!h->groups) {
		free(items);
		memset(h, 0, sizeof *h);
		return -1;
	}
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct lw_heap_group *g = &h->groups[h->ngroups++];
		g->stack_id = items[i].stack_id;
		g->reach = (enum lw_reach)items[i].reach;
		while (j < n && items[j].stack_id == g->stack_id && items[j].reach == items[i].reach) {
			g->blocks += items[j].weight;
			g->bytes += items[j].bytes;
			j++;
		}
		g->samples = j - i;
		g->age_min_ns = items[i].age;
		g->age_max_ns = items[j - 1].age;
		g->age_median_ns = median_age(&items[i], j - i, g->blocks);
		g->cls = stack_class(s, g->stack_id);
		if (g->cls == LW_HEAP_PROGRAM && (g->supp = group_supp(s, sym, supp, g)) != NULL)
			g->cls = lw_supp_is_default(g->supp) ? LW_HEAP_SYSTEM : LW_HEAP_SUPPRESSED;
		group_totals(g, s, rate);
		h->blocks[g->cls] += g->blocks;
		h->bytes[g->cls] += g->bytes;
		if (g->cls == LW_HEAP_SUPPRESSED) {
			h->suppressed_blocks += g->blocks;
			h->suppressed_bytes += g->bytes;
		} else {
			h->reach_blocks[g->reach] += g->blocks;
			h->reach_bytes[g->reach] += g->bytes;
		}
		if (lw_heap_group_is_leak(h, g)) {
			h->leaked_blocks += g->blocks;
			h->leaked_bytes += g->bytes;
		}
		i = j;
	}
	free(items);
	qsort(h->groups, h->ngroups, sizeof *h->groups, group_cmp);
	return 0;
}

void lw_heap_free(struct lw_heap *h)
{
	free(h->groups);
	memset(h, 0, sizeof *h);
}

const char *lw_heap_class_name(enum lw_heap_class c)
{
	switch (c) {
	case LW_HEAP_PROGRAM: return "program";
	case LW_HEAP_SYSTEM: return "system";
	case LW_HEAP_UNRECORDED: return "unrecorded";
	case LW_HEAP_SUPPRESSED: return "suppressed";
	case LW_HEAP_NCLASS: break;
	}
	return "unknown";
}

const char *lw_heap_mode_name(uint32_t mode)
{
	switch (mode) {
	case LW_HEAP_OFF: return "off";
	case LW_HEAP_SAMPLED: return "sampled";
	case LW_HEAP_FULL: return "full";
	}
	return "unknown";
}

