/* SPDX-License-Identifier: MIT */
/*
 * render_folded.c — `--format folded`, for flamegraph.pl and speedscope: one
 * line per group, "outermost;...;innermost WEIGHT", frames are function
 * names (C++ demangled) or module+0xOFF, [unknown] for a missing stack
 * ([inherited] for inherited sockets, which have none).
 * Heap groups (weight: live bytes, rounded estimates in sampled mode) unless
 * --kind sockets (socket groups, weight: sockets).  `run` prefixes each line
 * with the process name as the root frame.  ';' inside a name becomes ':'.
 */
#include <math.h>
#include <stdio.h>

#include "render.h"
#include "present.h"

/* A frame in a folded line: ';' separates frames and the last ' ' the weight. */
static void folded_name(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		fputc(*p == ';' ? ':' : *p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

static void folded_line(FILE *out, struct lw_report *r, const char *root, uint32_t stack_id,
			const char *missing, unsigned long long weight)
{
	struct lw_frame frames[LW_PRESENT_MAX_FRAMES];
	size_t n = lw_present_stack(r, stack_id, frames, LW_PRESENT_MAX_FRAMES);
	int first = 1;
	if (root) {
		folded_name(out, root);
		first = 0;
	}
	if (n == 0) {
		if (!first)
			fputc(';', out);
		fputs(missing, out);
		first = 0;
	}
	/* Frames are innermost first; folded stacks start at the root. */
	for (size_t i = n; i-- > 0;) {
		char loc[LW_PATH_MAX + 32];
		const struct lw_frame *f = &frames[i];
		if (!first)
			fputc(';', out);
		folded_name(out, f->function ? f->function : lw_frame_format_location(f, loc, sizeof loc));
		first = 0;
	}
	fprintf(out, " %llu\n", weight);
}

int lw_render_folded(FILE *out, struct lw_report *r, const char *root)
{
	if (r->opts.kind == LW_KIND_SOCKETS) {
		for (size_t i = 0; i < r->grouping.ngroups; i++) {
			const struct lw_group *g = &r->grouping.groups[i];
			folded_line(out, r, root, g->inherited ? 0 : g->stack_id,
				    g->inherited ? "[inherited]" : "[unknown]", (unsigned long long)g->count);
		}
		return ferror(out) ? -1 : 0;
	}
	if (r->opts.kind == LW_KIND_FDS) {
		/* weight: descriptors open, as for sockets */
		for (size_t i = 0; i < r->fds.ngroups; i++) {
			const struct lw_fd_group *g = &r->fds.groups[i];
			folded_line(out, r, root, g->inherited ? 0 : g->stack_id,
				    g->inherited ? "[inherited]" : "[unknown]", (unsigned long long)g->count);
		}
		return ferror(out) ? -1 : 0;
	}
	for (size_t i = 0; i < r->heap.ngroups; i++) {
		const struct lw_heap_group *g = &r->heap.groups[i];
		if (!lw_present_heap_group_shown(r, g))
			continue;
		double w = round(g->bytes);
		folded_line(out, r, root, g->stack_id, "[unknown]", w > 0 ? (unsigned long long)w : 0);
	}
	return ferror(out) ? -1 : 0;
}
