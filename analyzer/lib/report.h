/* SPDX-License-Identifier: MIT */
/*
 * report.h — the report model (report.c): one segment snapshotted, joined
 * with the kernel, grouped and judged, heap grouped, ready to render; shared
 * by `report`, `run` and `top`.
 */
#ifndef LEAKWATCH_REPORT_H
#define LEAKWATCH_REPORT_H

#include <stdint.h>
#include "classify.h"
#include "fdusage.h"
#include "fdgroups.h"
#include "heapgroups.h"
#include "kernel.h"
#include "reach.h"
#include "segdir.h"
#include "snapshot.h"
#include "suppress.h"
#include "symbolize.h"

enum lw_format { LW_FMT_TEXT = 0, LW_FMT_JSON, LW_FMT_FOLDED, LW_FMT_SARIF };

/* What a report covers (--kind).  Zero is "all" so a zeroed lw_report_opts shows everything. */
enum lw_kind { LW_KIND_ALL = 0, LW_KIND_SOCKETS, LW_KIND_HEAP, LW_KIND_FDS };

struct lw_report_opts {
	uint64_t older_than_ns;         /* only sockets and heap blocks at least this old */
	int all;                        /* also inherited sockets, stale entries, system/inherited/
	                                   unrecorded heap blocks */
	enum lw_format format;
	enum lw_kind kind;
	uint64_t idle_for_ns;           /* --idle-for; 0 means LW_IDLE_FOR_DEFAULT_NS */
	uint64_t interval_ns;           /* --interval: a first snapshot this long before (0: none) */
	enum lw_group_by by;            /* --by open|use */
	const struct lw_reach_result *reach; /* a reachability check of this process, or NULL */
	unsigned leak_kinds;            /* --leak-kinds: reach classes that are leaks (0: default) */
	/* suppressions (suppress.h): the caller's set, whose counters the
	 * report adds to; NULL: the built-in default set alone */
	struct lw_supp_set *supp;
	enum lw_gen_supp { LW_GEN_SUPP_NONE = 0, LW_GEN_SUPP_VALGRIND, LW_GEN_SUPP_LSAN } gen_supp;
					/* --gen-suppressions: an entry after each leak group */
};

/* Descriptors a Python program dropped and its garbage collector closed
 * (lw_badclose what LW_BADCLOSE_GC), grouped by opening stack and kind. */
struct lw_gc_group {
	uint32_t open_stack;            /* where they were opened (0: before attach / unknown) */
	uint32_t close_stack;           /* the finalizer's close of the newest one */
	uint16_t kind;                  /* enum lw_fd_kind */
	size_t count;
	uint64_t last_ns;               /* the newest such close (CLOCK_MONOTONIC) */
};

struct lw_pg_view;                      /* pgjoin.h */

/* Everything a renderer needs about one segment. */
struct lw_report {
	struct lw_snapshot snap;
	enum lw_live live;
	uint64_t now_ns;
	struct lw_join join;
	struct lw_grouping grouping;
	struct lw_fd_grouping fds;      /* other kinds of descriptor (with the sockets' --kind) */
	struct lw_heap heap;            /* empty unless the kind includes heap and heap_mode != off */
	struct lw_symbolizer *sym;      /* NULL: no symbolization (libdw failed) */
	struct lw_supp_set *supp;       /* opts.supp, or the default set the report loaded */
	int supp_owned;                 /* ...which lw_report_free releases */
	struct lw_report_opts opts;
	/* --interval: the first snapshot (have_prev) */
	int have_prev;
	struct lw_snapshot prev;
	struct lw_join prev_join;
	uint64_t prev_now_ns;
	/* every descriptor of a live process by kind, against RLIMIT_NOFILE
	 * (!fd_usage.ok otherwise); prev_fd_usage at the first snapshot (--interval) */
	struct lw_fdusage fd_usage, prev_fd_usage;
	/* closed by the garbage collector, never by the program (Python) */
	struct lw_gc_group *gc;
	size_t ngc, gc_sockets, gc_fds;
	/* --pg: PostgreSQL's view of the connections (pgjoin.h), NULL without;
	 * the caller's, not freed by lw_report_free */
	const struct lw_pg_view *pg;
};

/*
 * lw_kind_parse - "all", "sockets" (or "socket"), "heap", "fds" (descriptors other than
 * sockets: files, pipes, ...).  Returns 0 with *k
 * set, or -1 (k untouched).
 */
int lw_kind_parse(const char *s, enum lw_kind *k);

/* lw_kind_name - "all", "sockets", "heap". */
const char *lw_kind_name(enum lw_kind k);

/* lw_kind_sockets / lw_kind_heap / lw_kind_fds - 1 when the kind covers
 * sockets / heap blocks / other descriptors (files, pipes, ...). */
int lw_kind_sockets(enum lw_kind k);
int lw_kind_fds(enum lw_kind k);
int lw_kind_heap(enum lw_kind k);

/*
 * lw_format_parse - "text", "json", "folded", "sarif".  Returns 0 with *f set, or -1.
 */
int lw_format_parse(const char *s, enum lw_format *f);

/*
 * lw_report_build - snapshot `path`, join with the process if it is alive,
 * group and prepare symbolization.  Returns 0 (free with lw_report_free) or
 * -1 with err set (input error: caller exits 2).
 */
int lw_report_build(struct lw_report *r, const char *path, const struct lw_report_opts *o,
		    char *err, size_t errlen);

/*
 * lw_report_classify - (re)group r's sockets with r->opts (older_than, all,
 * by) and decide verdicts (classify.c) against r->now_ns, using the first
 * snapshot when r->have_prev.  lw_report_build calls it; tests call it again
 * after installing fabricated kernel evidence (lw_join_set_sockdiag) or
 * changing r->live / r->now_ns.  Returns 0 or -1 (no memory).
 */
int lw_report_classify(struct lw_report *r);

/* lw_report_ended - 1 when r's image is gone (exited, execed, dead): nothing live to ask. */
int lw_report_ended(const struct lw_report *r);

/* lw_report_free - release a report; safe on a zeroed or failed one. */
void lw_report_free(struct lw_report *r);

/*
 * lw_report_process_name - a short name for the traced process: basename of
 * the first word of its command line, else of its exe, else "pid<N>";
 * ';' and control characters replaced so it can be a folded frame.  Returns buf.
 */
char *lw_report_process_name(const struct lw_report *r, char *buf, size_t len);

/*
 * lw_report_is_empty - 1 when the segment never recorded a socket of its
 * own (inherited ones do not count), a bad close or a heap block: a process
 * that did nothing leakwatch looks at.
 */
int lw_report_is_empty(const struct lw_report *r);

#endif /* LEAKWATCH_REPORT_H */
