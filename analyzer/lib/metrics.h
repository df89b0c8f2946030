/* SPDX-License-Identifier: MIT */
/*
 * metrics.h — what `leakwatch exporter` publishes (metrics.c): every traced
 * process of a segment directory, reported as `report` would, reduced to
 * numbers with bounded labels, and kept across collections so growth rates
 * and a time to exhaustion can be estimated.
 *
 * Labels are bounded: pid, the command's name, a resource kind, a verdict,
 * and a site id — a hash of what identifies a leak's site (resource,
 * endpoint, symbolized stack), the same in every collection and every run
 * of the same code, exported for the top N sites of each process only (the
 * rest summed as site "other").  A site is named by the frame site.h picks
 * (the one top's WHERE shows).  Stacks are never labels: the site's
 * function, file, line and endpoint are one info series per site, the whole
 * stack is at /stacks (lw_metrics_render_stacks).
 */
#ifndef LEAKWATCH_METRICS_H
#define LEAKWATCH_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fdusage.h"
#include "site.h"

#define LW_METRICS_TOP_DEFAULT 10
#define LW_METRICS_HISTORY 512          /* samples kept per process (the window's bound) */
#define LW_METRICS_SITE_ID 13           /* 12 hex digits and a NUL */

enum lw_met_res { LW_MET_SOCKET = 0, LW_MET_FD, LW_MET_HEAP, LW_MET_NRES };

struct lw_met_frame {
	char *function;                 /* NULL: unnamed */
	char *file;
	char *module;
	int line;
	int python;
	uint64_t module_off;
};

/* One site of a process: leak suspects (sockets, descriptors) or live heap
 * blocks (program allocations) from one stack. */
struct lw_met_site {
	char id[LW_METRICS_SITE_ID];
	enum lw_met_res res;
	char kind[24];                  /* "TCP", "UNIX", "file", "pipe", "heap" */
	char endpoint[128];             /* sockets: "10.0.0.5:5432" ("" none) */
	char verdict[24];               /* "leak_suspect", "left_open", "live" (heap) */
	double count;                   /* sockets / descriptors / blocks */
	double bytes;                   /* heap only */
	uint64_t oldest_ns;             /* age of the oldest member */
	struct lw_met_frame *frames;    /* the stack that names it, innermost first */
	size_t nframes;
	size_t site_frame;              /* index of the frame that names it (nframes: none) */
};

struct lw_met_sample {
	uint64_t t_ns;                  /* CLOCK_MONOTONIC of the collection */
	double fds, suspects, heap_bytes;
};

/* One traced process as of the last collection. */
struct lw_met_proc {
	int pid;
	uint64_t start_ticks;           /* identity with pid: a new process under an old pid is new */
	char comm[64];
	int live;                       /* seen alive in the last collection */
	unsigned long seen;             /* collection number */
	double start_time_s;            /* Unix time the process started */
	/* sockets by kind x verdict */
	struct lw_met_count { char kind[16]; char verdict[16]; double n; } *socks;
	size_t nsocks;
	/* traced non-socket descriptors by kind x verdict */
	struct lw_met_count *fdv;
	size_t nfdv;
	struct lw_fdusage fd;           /* every descriptor, by kind, and the limit */
	double suspects[LW_MET_NRES];   /* leak-suspect members (heap: unused) */
	double heap_bytes, heap_blocks; /* live, every class */
	int heap_on, heap_estimated;
	double gc_closed;               /* closes by Python's garbage collector (recorded ones) */
	int incomplete;                 /* the segment's tables stopped growing */
	struct lw_met_site *sites;      /* top N per resource, then "other" rows (frames empty) */
	struct lw_site_graph cg;        /* the process's call graph, which names the sites (site.h) */
	size_t nsites;
	struct lw_met_sample hist[LW_METRICS_HISTORY];
	size_t nhist, hist_head;        /* ring: oldest at hist_head when full */
};

struct lw_metrics_opts {
	const char *dir;                /* segment directory */
	size_t top;                     /* sites per resource and process */
	uint64_t window_ns;             /* growth over this long (default 5m) */
	uint64_t idle_for_ns;           /* as report's --idle-for (0: default) */
};

struct lw_metrics {
	struct lw_metrics_opts o;
	struct lw_met_proc *procs;
	size_t nprocs;
	unsigned long collections;
	double last_duration_s;
	size_t segment_errors;          /* segments that could not be read in the last collection */
	double segment_errors_total;
	uint64_t now_ns;
};

/* lw_metrics_init - an empty set (o copied; dir NULL: lw_segment_dir()). */
void lw_metrics_init(struct lw_metrics *m, const struct lw_metrics_opts *o);

/*
 * lw_metrics_collect - report every live traced process of the directory
 * once (as `report PID` would: kernel join, verdicts, heap) and update m:
 * processes gone since the last collection are dropped, the others get a
 * history sample.  Returns 0, or -1 with err set when the directory cannot
 * be listed (an unreadable segment is counted, never an error).
 */
int lw_metrics_collect(struct lw_metrics *m, char *err, size_t errlen);

/* lw_metrics_growth - least-squares slope per second over the window of
 * what sel picks (0 fds, 1 suspects, 2 heap bytes); 0 with *ok = 0 when
 * fewer than 2 samples span at least 1 s. */
double lw_metrics_growth(const struct lw_met_proc *p, int sel, uint64_t window_ns, int *ok);

/*
 * lw_metrics_render - the exposition: Prometheus text format 0.0.4, or
 * OpenMetrics 1.0.0 text (openmetrics: counters' samples end in _total,
 * info families, "# EOF").
 */
void lw_metrics_render(FILE *out, const struct lw_metrics *m, int openmetrics);

/* lw_metrics_render_stacks - every exported site with its whole stack, as JSON. */
void lw_metrics_render_stacks(FILE *out, const struct lw_metrics *m);

/* lw_metrics_free - release m (safe on a zeroed one). */
void lw_metrics_free(struct lw_metrics *m);

#endif /* LEAKWATCH_METRICS_H */
