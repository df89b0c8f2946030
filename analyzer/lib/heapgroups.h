/* SPDX-License-Identifier: MIT */
/*
 * heapgroups.h — live heap blocks grouped by allocation stack, sampled-mode
 * estimates and the "system allocation" rule (heapgroups.c).
 */
#ifndef LEAKWATCH_HEAPGROUPS_H
#define LEAKWATCH_HEAPGROUPS_H

#include <stddef.h>
#include <stdint.h>
#include "reach.h"
#include "snapshot.h"
#include "suppress.h"
#include "symbolize.h"

/*
 * Who a live block belongs to.  Only LW_HEAP_PROGRAM blocks are leaks (what
 * `run --fail-on-leak` counts); the others are shown with --all.
 */
enum lw_heap_class {
	LW_HEAP_PROGRAM = 0,            /* allocated by the program (or a non-system library) */
	LW_HEAP_SYSTEM,                 /* owned by libc/ld.so/libstdc++ (see heapgroups.c) */
	LW_HEAP_UNRECORDED,             /* no call stack was recorded for it */
	LW_HEAP_SUPPRESSED,             /* matched by a suppression the user gave */
	LW_HEAP_NCLASS
};

/* Below this many samples a sampled estimate shows its sample count (error over ~10%). */
#define LW_HEAP_FEW_SAMPLES 100

/* Live blocks allocated from one stack.  Sampled mode: blocks/bytes/totals are estimates. */
struct lw_heap_group {
	enum lw_heap_class cls;
	enum lw_reach reach;            /* LW_REACH_UNKNOWN unless a reachability check ran */
	const struct lw_supp *supp;     /* the suppression that matched (LW_HEAP_SUPPRESSED, and
					 * LW_HEAP_SYSTEM by a default entry), else NULL */
	uint32_t stack_id;
	size_t samples;                 /* table entries behind this group (= blocks in full mode) */
	double blocks;                  /* live blocks */
	double bytes;                   /* live bytes */
	double total_allocs;            /* allocations ever made from this stack (>= blocks) */
	double total_bytes;             /* bytes ever allocated from this stack (>= bytes) */
	uint64_t age_min_ns;
	uint64_t age_median_ns;         /* weighted by the blocks each entry stands for */
	uint64_t age_max_ns;
};

struct lw_heap {
	uint32_t mode;                  /* enum lw_heap_mode of the segment */
	int estimated;                  /* sampled mode: numbers are estimates */
	uint64_t sample_bytes;          /* mean bytes between samples (sampled mode) */
	struct lw_heap_group *groups;   /* sorted: class, bytes desc, blocks desc, stack id */
	size_t ngroups;
	size_t nsamples;                /* table entries counted (after --older-than) */
	double blocks[LW_HEAP_NCLASS];  /* live blocks per class (after --older-than) */
	double bytes[LW_HEAP_NCLASS];
	/* a reachability check (reach.h) classified the blocks: totals per
	 * reach class over every heap class but LW_HEAP_SUPPRESSED (valgrind's
	 * LEAK SUMMARY, where suppressed blocks are a line of their own) */
	int reach_checked;
	double reach_blocks[LW_REACH_NCLASS], reach_bytes[LW_REACH_NCLASS];
	uint64_t reach_pause_ns;
	size_t reach_threads;
	unsigned leak_kinds;            /* reach classes that are leaks (LW_REACH_BIT) */
	/* what counts as leaked: program blocks, and when checked only those of
	 * a class in leak_kinds */
	double leaked_blocks, leaked_bytes;
	/* blocks a user suppression matched (LW_HEAP_SUPPRESSED groups) */
	double suppressed_blocks, suppressed_bytes;
};

/*
 * lw_heap_sample_weight - how many allocations of `size` bytes one sample
 * stands for when the mean sampling interval is sample_bytes: 1/p with
 * p = 1 - exp(-size/sample_bytes).  1 when sample_bytes is 0 (every
 * allocation recorded) or size is 0 (never sampled by size: counted once).
 */
double lw_heap_sample_weight(uint64_t size, uint64_t sample_bytes);

/*
 * lw_module_is_system - 1 when `path` (a module path; basename decides) is
 * part of the C/C++ runtime: libc, ld.so, the other glibc libraries,
 * libstdc++, libgcc_s; else 0.
 */
int lw_module_is_system(const char *path);

/*
 * lw_heap_build - group the live heap blocks of a snapshot by allocation
 * stack (and reach class, when `reach` is the result of a check of this
 * process: blocks it did not see stay LW_REACH_UNKNOWN) and classify each
 * group (enum lw_heap_class): a program group that an entry of `supp`
 * matches (with its reach class) becomes LW_HEAP_SYSTEM when the entry is
 * one of the built-in default set, LW_HEAP_SUPPRESSED otherwise, and the
 * entry's counters grow (lw_supp_match).  supp may be NULL (nothing
 * suppressed but rule 1).  leak_kinds: the reach classes that count as
 * leaked (0: LW_REACH_KINDS_DEFAULT).  Blocks younger than older_than_ns are
 * skipped.  sym may be NULL: classification then uses the module table only
 * (no names: suppressions cannot match).  A segment with heap_mode OFF gives
 * an empty result.  Returns 0, or -1 on allocation failure (h left empty).
 */
int lw_heap_build(struct lw_heap *h, const struct lw_snapshot *s, struct lw_symbolizer *sym,
		  uint64_t now_ns, uint64_t older_than_ns, const struct lw_reach_result *reach,
		  unsigned leak_kinds, struct lw_supp_set *supp);

/*
 * lw_heap_group_is_leak - 1 when g counts as leaked: class program and,
 * when h was checked for reachability, a reach class in h->leak_kinds.
 */
int lw_heap_group_is_leak(const struct lw_heap *h, const struct lw_heap_group *g);

/* lw_heap_free - release groups; safe on a zeroed one. */
void lw_heap_free(struct lw_heap *h);

/* lw_heap_class_name - "program", "system", "unrecorded", "suppressed". */
const char *lw_heap_class_name(enum lw_heap_class c);

/* lw_heap_mode_name - "off", "sampled", "full" ("unknown" otherwise). */
const char *lw_heap_mode_name(uint32_t mode);

#endif /* LEAKWATCH_HEAPGROUPS_H */
