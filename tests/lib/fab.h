/* SPDX-License-Identifier: MIT */
/*
 * fab.h — fabricate segments for the analyzer tests, so the reader can be
 * tested without the shim.  Layout 2 by default (include/leakwatch/segment.h:
 * each chunked table in chunks of 1 << shift, 2 << shift, ... entries, the
 * chunks of all tables interleaved in the file as a growing shim places
 * them, then the heap table of the heap directory); layout 1 (one array per
 * table, as shims before growable segments wrote them) on request.  The
 * header names a pid that does not exist (lw_dead_pid()).  Also fabricated
 * kernel evidence (sock_diag) and the group-then-verdict pipeline the
 * suites call.
 */
#ifndef TESTS_LIB_FAB_H
#define TESTS_LIB_FAB_H

#include <stddef.h>
#include <stdint.h>

#include "classify.h"
#include "kernel.h"
#include "snapshot.h"
#include "testing.h"
#include "leakwatch/segment.h"

struct fab {
	unsigned char *mem;             /* the file's bytes up to `size` */
	size_t size;
	struct lw_header *hdr;          /* = mem */
	int v1;                         /* layout 1 */
	uint64_t span;                  /* > size: the file is truncated up to it (sparse) */
};

/* First-chunk shift of fabricated v2 tables: 16, 32, 64, ... entries. */
#define FAB_SHIFT 4u

/* What fab_init_spec lays out; zeroes mean "this build's" / FAB_SHIFT. */
struct fab_spec {
	uint32_t n[LW_T_NUM];           /* at least this many entries: stacks, modules, handles,
	                                   bad closes (v2: rounded up to whole chunks) */
	uint32_t nallocs;               /* heap slots (0: no heap table) */
	uint32_t heap_mode;             /* enum lw_heap_mode */
	uint64_t sample_bytes;
	uint32_t es[LW_T_NUM];          /* entry sizes */
	uint32_t heap_es;
	uint32_t shift[LW_T_NUM];       /* v2 */
	int v1;                         /* layout 1: tables of exactly n entries */
};

/* A RUNNING segment for a pid that does not exist, laid out as spec says, tables empty. */
void fab_init_spec(struct fab *f, const struct fab_spec *spec);

uint64_t fab_now(void);

/* fab_align - v rounded up to 64 bytes, for tables placed by hand (hostile segments). */
uint64_t fab_align(uint64_t v);

/* fab_page - v rounded up to a page. */
uint64_t fab_page(uint64_t v);

/*
 * A RUNNING segment for a pid that does not exist, with empty tables and a
 * heap table of nallocs slots (0: heap tracking off).
 */
void fab_init_heap(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
		   uint32_t nbadcloses, uint32_t nallocs, uint32_t heap_mode, uint64_t sample_bytes);

/* A RUNNING segment for a pid that does not exist, with empty tables, heap tracking off. */
void fab_init(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
	      uint32_t nbadcloses);

/* fab_init_v1 - fab_init_heap in layout 1 (version 1, tables at lw_table.offset). */
void fab_init_v1(struct fab *f, uint32_t nstacks, uint32_t nmodules, uint32_t nhandles,
		 uint32_t nbadcloses, uint32_t nallocs, uint32_t heap_mode, uint64_t sample_bytes);

void fab_free(struct fab *f);

/* fab_slot - entry i of chunked table t (LW_T_*), wherever its chunk is; aborts beyond the table. */
void *fab_slot(struct fab *f, unsigned t, size_t i);

/* fab_heap_slot - slot i of the current heap table; fab_old_slot: of the replaced one. */
struct lw_alloc *fab_heap_slot(struct fab *f, size_t i);
struct lw_alloc *fab_old_slot(struct fab *f, size_t i);

/*
 * fab_heap_old - v2: a replaced heap table of cap slots after everything
 * else (heapdir.old_*), as while the shim moves blocks into a larger one.
 */
void fab_heap_old(struct fab *f, uint32_t cap);

/* fab_span - v2: make the file's logical size `span` (total_size; the rest is a hole). */
void fab_span(struct fab *f, uint64_t span);

/* fab_chunk_off - v2: file offset of chunk k of table t (0 when it has none). */
uint64_t fab_chunk_off(const struct fab *f, unsigned t, unsigned k);

/* Store a ready stack in slot id-1 and return id. */
uint32_t fab_stack(struct fab *f, uint32_t id, const uint64_t *frames, size_t n);

/* Per-stack heap totals of stack id. */
void fab_stack_heap(struct fab *f, uint32_t id, uint64_t allocs, uint64_t frees, uint64_t bytes);

/* A live heap block in heap slot i (a ready, even seq). */
struct lw_alloc *fab_alloc(struct fab *f, size_t i, uint64_t ptr, uint64_t size, uint64_t ns,
			   uint32_t stack_id);

/* The same in slot i of the replaced heap table (fab_heap_old). */
struct lw_alloc *fab_alloc_old(struct fab *f, size_t i, uint64_t ptr, uint64_t size, uint64_t ns,
			       uint32_t stack_id);

struct lw_module *fab_module(struct fab *f, const char *path, uint64_t base,
			     uint64_t start, uint64_t end, uint32_t flags);

void fab_addr_in(struct lw_addr *a, const char *ip, uint16_t port);

void fab_addr_un(struct lw_addr *a, const char *path);

/* An OPEN TCP handle at fd, opened age_s seconds before `now` on the header clock. */
struct lw_handle *fab_handle(struct fab *f, int fd, uint16_t origin, uint32_t stack_id,
			     uint64_t open_ns);

/* Per-stack socket totals of stack id (opened/closed ever, as the shim counts them). */
void fab_stack_socks(struct fab *f, uint32_t id, uint64_t opened, uint64_t closed);

/* The most recent send-side call on h: stack and time (0/0 = never used). */
void fab_use(struct lw_handle *h, uint32_t stack_id, uint64_t ns);

/*
 * Fabricated kernel evidence: a TCP socket (inode) in kernel state st
 * (1 ESTABLISHED, 8 CLOSE_WAIT, 10 LISTEN) whose last data went both ways
 * idle_ms ago (UINT32_MAX: no tcp_info), with queue sums rq/wq.
 */
void fab_kernel_tcp(struct lw_sockdiag *d, uint64_t inode, unsigned st, uint32_t idle_ms,
		    uint32_t rq, uint32_t wq);

/* fab_verdict - group snapshot s by `by` with kernel evidence d (consumed; may be
 * NULL) and decide verdicts as a live process at now_ns. prev/prev_s: --interval. */
int fab_verdict(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_sockdiag *d,
		uint64_t now_ns, uint64_t idle_for_ns, enum lw_group_by by,
			      const struct lw_snapshot *prev_s, uint64_t prev_now_ns);

struct lw_badclose *fab_badclose(struct fab *f, int fd, uint32_t stack_id);

/* Write the fabricated segment to dir/name (sparse up to f->span); returns the path in out. */
void fab_write(const struct fab *f, const char *dir, const char *name, char *out, size_t len);

/* render_report - r rendered as text (how 0), JSON (1) or folded stacks
 * under root (2), malloc'd; asserts the renderer succeeded. */
struct lw_report;
char *render_report(struct lw_report *r, int how, const char *root);

/* fab_segname - "leakwatch.<lw_dead_pid()>", the file name of a fabricated segment. */
const char *fab_segname(void);

#endif
