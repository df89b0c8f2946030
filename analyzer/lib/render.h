/* SPDX-License-Identifier: MIT */
/*
 * render.h — the report's output formats, one file each: render_text.c,
 * render_json.c (documented in docs/report-format.md, schema in
 * docs/report-schema.json), render_folded.c.
 */
#ifndef LEAKWATCH_RENDER_H
#define LEAKWATCH_RENDER_H

#include <stdio.h>
#include "json.h"
#include "report.h"

/* lw_render_text - human-readable report; returns 0 or -1 on a write error. */
int lw_render_text(FILE *out, struct lw_report *r);

/*
 * lw_render_text_frames - a stack as the text report shows it: `label`
 * (padded to lw) before the first frame, one frame a line ("function  file:line",
 * or module+0xOFF), files relative to cwd, the C runtime's frames below
 * main() left out, suffix after the first frame; "(no stack recorded)" for
 * n == 0.  Write errors stay in the stream.
 */
void lw_render_text_frames(FILE *out, const struct lw_frame *frames, size_t n, const char *label, int lw,
			   const char *cwd, const char *suffix);

/*
 * lw_render_text_sock_group / lw_render_text_heap_group - one group exactly
 * as the text report prints it (head line, evidence, stacks): `top`'s detail
 * view.  Returns 0 or -1 on a write error.
 */
int lw_render_text_sock_group(FILE *out, struct lw_report *r, const struct lw_group *g);
int lw_render_text_heap_group(FILE *out, struct lw_report *r, const struct lw_heap_group *g);

/* lw_render_json - one JSON object (no trailing newline); 0 or -1 on write error. */
int lw_render_json(FILE *out, struct lw_report *r);

/*
 * lw_render_folded - collapsed stacks (flamegraph.pl, speedscope): one line
 * "root;...;leaf WEIGHT" per heap group (weight: live bytes) or, with
 * --kind sockets, per socket group (weight: sockets).  Frames are function
 * names, else module+0xOFF.  A non-NULL `root` becomes the first frame of
 * every line (run: the process name).  A heap kind on a segment without heap
 * tracking writes nothing.  Returns 0 or -1 on a write error.
 */
int lw_render_folded(FILE *out, struct lw_report *r, const char *root);

/*
 * lw_render_junit_suite - one JUnit <testsuite> for r (render_junit.c): a
 * failing <testcase> per leak group (sockets, descriptors, lost heap
 * blocks, descriptors Python's garbage collector closed), a passing one per
 * kind without leaks; adds to *tests and *failures.  The caller writes the
 * XML declaration and <testsuites>.
 */
void lw_render_junit_suite(FILE *out, struct lw_report *r, size_t *tests, size_t *failures);

/*
 * lw_render_json_value - the report object as a value of an enclosing JSON
 * document (run's "processes" array): key names the member, NULL for an
 * array element.  Write errors stay in the stream (lw_json_error).
 */
void lw_render_json_value(struct lw_json *j, const char *key, struct lw_report *r);

/*
 * lw_render_json_frames - member `key` (NULL: an element): the array of
 * frame objects {addr, function, file, line, module, module_offset, inlined,
 * build_id_mismatch} of docs/report-format.md.
 */
void lw_render_json_frames(struct lw_json *j, const char *key, const struct lw_frame *frames, size_t n);

/*
 * lw_render_json_incomplete - member `key`: null for a complete segment,
 * else {"tables": [...], "reason": "...", "dropped": N, "budget_bytes": N|null}
 * (docs/report-format.md; `report`, `run` and `ps` share it).
 */
void lw_render_json_incomplete(struct lw_json *j, const char *key, const struct lw_snapshot *s);

#endif /* LEAKWATCH_RENDER_H */
