/* SPDX-License-Identifier: MIT */
/*
 * diff.h — baselines (diff.c, render_diff.c): what grew per stack between
 * two moments, for `leakwatch diff OLD NEW` and `report --baseline FILE`.
 *
 * Each side is a JSON report (`report --format json`, docs/report-format.md)
 * or a segment, which is reported and rendered to JSON in memory first, so
 * both go through one path: JSON -> per-stack totals -> diff.
 *
 * A stack is keyed by its kind (heap; socket; descriptor and the
 * descriptor's kind) and its symbolized frames — function, file and line,
 * or module basename and offset for a frame without a function — never by
 * stack_id, which differs between processes and runs.  Groups of one side
 * with the same key (a heap stack in two classes, a socket stack with
 * several endpoints) are summed.  Fields a side has that this reader does
 * not know are ignored.
 */
#ifndef LEAKWATCH_DIFF_H
#define LEAKWATCH_DIFF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "jsonread.h"
#include "report.h"
#include "symbolize.h"

/* What a stack holds: heap blocks, sockets, other descriptors. */
enum lw_diff_kind { LW_DK_HEAP = 0, LW_DK_SOCKET, LW_DK_FD, LW_DK_N };

/* One key of one side: the sum of its groups. */
struct lw_diff_stack {
	enum lw_diff_kind kind;
	const char *fd_kind;            /* LW_DK_FD: "file", "pipe", ...; else NULL */
	char *key;                      /* the canonical key (malloc'd) */
	struct lw_frame *frames;        /* malloc'd; strings point into the side's document */
	size_t nframes;
	double count;                   /* blocks, sockets, descriptors */
	double bytes;                   /* LW_DK_HEAP; 0 otherwise */
};

/* One side: where it came from and its stacks, sorted by key. */
struct lw_diff_side {
	char source[PATH_MAX];          /* the argument as given ("f1.json", "4242") */
	int from_segment;               /* 1: a segment reported now, 0: a JSON file */
	struct lw_jv doc;               /* the report */
	int pid;                        /* 0: unknown */
	const char *command, *state;    /* NULL: unknown */
	double uptime_s;                /* -1: unknown */
	int64_t taken;                  /* wall-clock time (s) of the snapshot: now, or the file's mtime; 0 unknown */
	int covers[LW_DK_N];            /* the report has this kind (heap tracking on, --kind) */
	int estimated;                  /* heap numbers are estimates (sampled mode) */
	struct lw_diff_stack *stacks;
	size_t nstacks;
};

/* How a stack changed. */
enum lw_diff_status { LW_DS_GREW = 0, LW_DS_NEW, LW_DS_SHRANK, LW_DS_VANISHED, LW_DS_SAME };

struct lw_diff_entry {
	const struct lw_diff_stack *old, *new;  /* NULL when absent on that side */
	enum lw_diff_status status;
	double dcount, dbytes;                  /* new - old */
};

/* Per kind: the entries (grew and new first, by growth; then shrank, vanished) and totals. */
struct lw_diff_kind_result {
	int wanted;                     /* the --kind asked for includes it */
	int compared;                   /* wanted, and both sides cover the kind */
	struct lw_diff_entry *entries;  /* every key with a change (no LW_DS_SAME) */
	size_t nentries;
	size_t nstatus[LW_DS_SAME + 1]; /* stacks per status */
	double old_count, new_count, old_bytes, new_bytes;
};

struct lw_diff {
	const struct lw_diff_side *old, *new;
	double min_growth;              /* count growth a stack needs to be "grew"/"new" */
	struct lw_diff_kind_result k[LW_DK_N];
};

/*
 * lw_diff_side_load - read OLD or NEW: a file whose first non-space byte
 * is '{' is a JSON report; anything else is what `report` accepts (a PID
 * or a segment path), reported now with the options ro (kind, older_than,
 * all; NULL: every kind) and read back from its JSON.  A `run --format json` document with one
 * process is taken as that process's report.  A segment that a running
 * process does not map is a copy of its segment taken earlier: it is read
 * as the record of an image that ended then (no join with the process's
 * descriptors now), and its state is "copy".  Returns 0 (free with
 * lw_diff_side_free), or -1 with a one-line message in err naming the
 * problem ("not valid JSON: line 3, column 7: ...", "JSON, but not a
 * leakwatch report (no \"leakwatch\" member)", "not a leakwatch segment").
 */
int lw_diff_side_load(struct lw_diff_side *s, const char *arg, const struct lw_report_opts *ro, char *err,
		      size_t errlen);

/*
 * lw_diff_side_from_report - the side of a report already built (`report
 * --baseline`: NEW is the report being shown), rendered to JSON in memory.
 * Returns 0, or -1 with err set.
 */
int lw_diff_side_from_report(struct lw_diff_side *s, const char *source, struct lw_report *r, char *err,
			     size_t errlen);

/*
 * lw_diff_side_parse - a side from JSON text (what the loaders use; tests
 * call it with hand-built documents).  Returns 0, or -1 with err set ("not
 * valid JSON: ...", "not a leakwatch report ...", "out of memory").
 */
int lw_diff_side_parse(struct lw_diff_side *s, const char *source, const char *text, size_t len, char *err,
		       size_t errlen);

/* lw_diff_side_free - release a side; safe on a zeroed or failed one. */
void lw_diff_side_free(struct lw_diff_side *s);

/*
 * lw_diff_compute - compare two sides for the kinds `kind` covers.  A stack
 * grew when its count rose by at least min_growth (1 when 0 is given), or
 * — heap, min_growth 1 — its bytes rose while its count did not fall; it is
 * new when absent from OLD and its count is at least min_growth.  Returns 0
 * (free with lw_diff_free), or -1 (no memory).
 */
int lw_diff_compute(struct lw_diff *d, const struct lw_diff_side *old, const struct lw_diff_side *new,
		    enum lw_kind kind, double min_growth);

/* lw_diff_grew - 1 when some compared kind has a stack that grew or is new. */
int lw_diff_grew(const struct lw_diff *d);

/* lw_diff_free - release a diff; safe on a zeroed one. */
void lw_diff_free(struct lw_diff *d);

/* lw_diff_kind_name - "heap", "sockets", "fds". */
const char *lw_diff_kind_name(enum lw_diff_kind k);

/* lw_diff_status_name - "grew", "new", "shrank", "vanished", "unchanged". */
const char *lw_diff_status_name(enum lw_diff_status s);

/*
 * lw_render_diff_text - the diff for people: both sides, then per kind the
 * stacks that grew (largest growth first) with old -> new and their frames,
 * the counts of the others, and totals.  Returns 0 or -1 on a write error.
 */
int lw_render_diff_text(FILE *out, const struct lw_diff *d);

/*
 * lw_render_diff_json - the diff as one JSON object (docs/report-format.md,
 * "diff"; no trailing newline).  Returns 0 or -1 on a write error.
 */
int lw_render_diff_json(FILE *out, const struct lw_diff *d);

#endif /* LEAKWATCH_DIFF_H */
