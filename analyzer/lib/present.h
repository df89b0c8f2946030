/* SPDX-License-Identifier: MIT */
/*
 * present.h — presentation helpers shared by the renderers (render_text.c,
 * render_json.c, render_folded.c) and `top`: the words for a report's state,
 * the description of a socket group, a stack symbolized from its id, and the
 * scrubbing of strings recorded by the target before they reach a terminal.
 */
#ifndef LEAKWATCH_PRESENT_H
#define LEAKWATCH_PRESENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"
#include "symbolize.h"

/* Frames one stack can expand to once inlined calls are shown. */
#define LW_PRESENT_MAX_FRAMES (LW_STACK_MAX_FRAMES * 4)

/* lw_present_state_word - "running", "starting", "exited", "execed", "dead", "disabled". */
const char *lw_present_state_word(const struct lw_report *r);

/* lw_present_at_least - 1 when the image ended without an end time: ages are lower bounds. */
int lw_present_at_least(const struct lw_report *r);

/* lw_present_uptime_ns - from the image's start to r->now_ns (0 if the clock went back). */
uint64_t lw_present_uptime_ns(const struct lw_report *r);

/* lw_present_heap_group_shown - 1 when a heap group is listed: class program, or --all. */
int lw_present_heap_group_shown(const struct lw_report *r, const struct lw_heap_group *g);

/*
 * lw_present_stack - symbolize the stack with this id into out[0..max).
 * Returns the frame count: 0 for stack id 0, a missing stack, or an empty one.
 */
size_t lw_present_stack(struct lw_report *r, uint32_t stack_id, struct lw_frame *out, size_t max);

/* lw_present_runtime_frame - 1 for the C runtime's frames below main() or a thread start. */
int lw_present_runtime_frame(const char *function);

/*
 * lw_present_own_frame - 1 when f is a frame of the program's own code, the
 * kind `top` names a group by: in a stack with Python frames (python_stack),
 * a Python frame outside the standard library and installed packages (file
 * not under .../lib/python3.N/, site-packages, dist-packages, "<frozen ...>"),
 * never a C frame (the interpreter's, its C modules', extensions'); in a C
 * stack, a named frame whose module is neither a C/C++ runtime library
 * (lw_module_is_system), nor under /lib, /lib64, /usr/lib, /usr/lib64 (the
 * distribution's libraries: libpq, libssl...), nor a Python interpreter.
 * 0 for frames without a function or a module.
 */
int lw_present_own_frame(const struct lw_frame *f, int python_stack);

/* lw_present_scrub - replace control characters in buf with '?' (strings from the target). */
void lw_present_scrub(char *buf);

/* lw_present_put_safe - write s to out with control characters shown as '?'. */
void lw_present_put_safe(FILE *out, const char *s);

/* How much a group description says (top has narrower columns). */
enum lw_describe { LW_DESCRIBE_FULL = 0, LW_DESCRIBE_SHORT };

/*
 * lw_present_proto - "TCP", "TCP6", "UDP", "UDP6"; unix sockets "UNIX/stream"
 * (FULL) or "UNIX" (SHORT); others "INET/RAW"-style (FULL) or the family.
 * Returns buf.
 */
const char *lw_present_proto(const struct lw_group *g, enum lw_describe how, char *buf, size_t len);

/*
 * lw_present_group - "TCP -> 1.2.3.4:5432", "TCP accepted on 0.0.0.0:80"
 * (SHORT: "TCP on ..."), "UDP on 0.0.0.0:53", "UNIX/stream (no address)",
 * scrubbed.  Returns buf.
 */
char *lw_present_group(const struct lw_group *g, enum lw_describe how, char *buf, size_t len);

/*
 * lw_present_use_first - 1 when a group is best named by its last-use stack:
 * grouped by use, or a leak suspect inside a pool (the culprit is who used it
 * last, not who opened it).
 */
int lw_present_use_first(const struct lw_group *g);

/* lw_present_verdict_counts - sockets per verdict over the grouping, nv[LW_V_LISTENING + 1]
 * (suppressed groups left out). */
void lw_present_verdict_counts(const struct lw_grouping *g, size_t *nv);

/* Who waits on a group's members (watch.c evidence), distinct values capped. */
#define LW_PRESENT_WATCH_MAX 8
struct lw_watch_summary {
	int epoll_fds[LW_PRESENT_WATCH_MAX];    /* distinct epoll fds holding members, ascending */
	size_t nepoll_fds;
	int more_epoll_fds;                     /* more than LW_PRESENT_WATCH_MAX */
	int waiters[LW_PRESENT_WATCH_MAX];      /* threads in epoll_wait on those sets */
	size_t nwaiters;
	int more_waiters;
	struct { int tid; uint8_t call; } blocked[LW_PRESENT_WATCH_MAX]; /* threads blocked on members */
	size_t nblocked;
	int more_blocked;
	int peer_pids[LW_PRESENT_WATCH_MAX];    /* processes waiting on the other ends, ascending */
	size_t npeer_pids;
	int more_peer_pids;
};

/* lw_present_watch - summarize the watch evidence of g's members into s. */
void lw_present_watch(const struct lw_group *g, struct lw_watch_summary *s);

/* lw_present_heap_totals - live blocks and bytes over every class. */
void lw_present_heap_totals(const struct lw_heap *h, double *blocks, double *bytes);

/* lw_present_command - the recorded command line, else the exe path (never NULL). */
const char *lw_present_command(const struct lw_snapshot *s);

/*
 * lw_present_incomplete - when a table of the segment stopped growing
 * (lw_snapshot_is_incomplete), the one line that says so: "heap table could
 * not grow: filesystem full or LEAKWATCH_BUDGET reached; 3 events dropped"
 * (the events are LW_CTR_DROP_RESERVE: refused growths).  Returns 1 with the
 * line in buf, or 0 (buf empty) for a complete segment.
 */
int lw_present_incomplete(const struct lw_snapshot *s, char *buf, size_t len);

/* lw_present_incomplete_tables - names of the tables hdr.incomplete marks ("heap",
 * "stack", "handle", "module", "bad-close"), at most max; their count. */
size_t lw_present_incomplete_tables(const struct lw_snapshot *s, const char **names, size_t max);

/* lw_present_incomplete_reason - why a table could not grow, as far as the
 * segment tells ("filesystem full or LEAKWATCH_BUDGET (64.0 MiB) reached").  Returns buf. */
const char *lw_present_incomplete_reason(const struct lw_snapshot *s, char *buf, size_t len);

/* lw_present_sock_group_shown / lw_present_fd_group_shown - 1 when a group
 * is listed: not suppressed, or --all. */
int lw_present_sock_group_shown(const struct lw_report *r, const struct lw_group *g);
int lw_present_fd_group_shown(const struct lw_report *r, const struct lw_fd_group *g);

/* What one suppression took out of one report. */
struct lw_supp_use {
	const struct lw_supp *e;
	size_t sockets, fds;            /* open, not inherited */
	double blocks, bytes;           /* heap (sampled: estimates) */
};

/*
 * lw_present_supp_uses - the suppressions that matched something in r, in
 * the order of their set, with what each took out; entries of the built-in
 * default set only when with_default.  Returns how many were written to
 * u[0..max) (more are cut).
 */
size_t lw_present_supp_uses(const struct lw_report *r, int with_default, struct lw_supp_use *u, size_t max);

/*
 * lw_present_gen_wanted_* - 1 when --gen-suppressions writes an entry for
 * the group: what the report counts as leaked (heap: lw_heap_group_is_leak;
 * sockets and descriptors: of the program, not suppressed, and when the
 * process runs only the leak suspects).
 */
int lw_present_gen_wanted_heap(const struct lw_report *r, const struct lw_heap_group *g);
int lw_present_gen_wanted_sock(const struct lw_report *r, const struct lw_group *g);
int lw_present_gen_wanted_fd(const struct lw_report *r, const struct lw_fd_group *g);

/*
 * lw_present_gen_supp - the ready-to-paste suppression for the stack
 * stack_id (r->opts.gen_supp says which format) as a malloc'd string ending
 * in a newline, named "KIND-FUNCTION" after the innermost function outside
 * the C/C++ runtime; NULL when there is nothing to write or no memory.
 */
char *lw_present_gen_supp(struct lw_report *r, enum lw_supp_kind kind, enum lw_reach reach, uint32_t stack_id);

#endif /* LEAKWATCH_PRESENT_H */
