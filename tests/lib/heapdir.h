/* SPDX-License-Identifier: MIT */
/*
 * heapdir.h — the live heap blocks of a v2 segment, read the way segment.h
 * tells a reader to (struct lw_heapdir: old, then cur, one record per ptr,
 * gen re-checked), over pread() with every slot read twice as the
 * analyzer's snapshot does.  For the shim's suites: it checks the writer
 * against the documented protocol, independently of the analyzer.
 */
#ifndef TESTS_LIB_HEAPDIR_H
#define TESTS_LIB_HEAPDIR_H

#include <stddef.h>
#include <stdint.h>

#include "leakwatch/segment.h"

struct hd_block {
	uint64_t ptr, size, ns;
	uint32_t stack;
	uint32_t in_old;                /* read from old (not also in cur) */
};

struct hd_snap {
	struct lw_header hdr;           /* as read before the tables */
	struct lw_heapdir dir;          /* the directory the tables were read under */
	struct hd_block *blocks;        /* sorted by ptr, one per ptr */
	size_t n;
	size_t busy;                    /* slots never read consistently (retried for ~0.5 s) */
	size_t in_both;                 /* ptrs found in old and in cur (kept cur's) */
	size_t twice;                   /* ptrs found twice in the same table: a writer bug */
	size_t cur_tombs;               /* deleted slots of cur */
	unsigned retries;               /* reads started over because gen moved */
	uint64_t st_blocks_bytes;       /* the file's allocated bytes after the read */
};

/* heapdir_read - snapshot path's heap blocks into s.  Returns 0, or -1 with
 * errno set (cannot open or read, not a v2 segment, gen never stable). */
int heapdir_read(const char *path, struct hd_snap *s);

/* heapdir_find - the block at ptr in s, or NULL. */
const struct hd_block *heapdir_find(const struct hd_snap *s, uint64_t ptr);

void heapdir_free(struct hd_snap *s);

/* heapdir_counter - header counter c of s. */
static inline uint64_t heapdir_counter(const struct hd_snap *s, enum lw_counter c)
{
	return atomic_load_explicit(&s->hdr.counters[c], memory_order_relaxed);
}

#endif
