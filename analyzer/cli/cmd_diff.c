/* SPDX-License-Identifier: MIT */
/*
 * cmd_diff.c — `leakwatch diff OLD NEW`: what grew per stack between two
 * moments (diff.h), and the diff that `report --baseline FILE` prints.
 */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"
#include "diff.h"
#include "output.h"

/* Defaults of `diff`; each field is one option. */
struct diff_options {
	enum lw_kind kind;              /* --kind heap|sockets|fds|all */
	enum lw_format format;          /* --format text|json */
	const char *output;             /* --output FILE: write the diff there, atomically */
	int min_growth;                 /* --min-growth N: a stack grew when its count rose by N or more */
};

static const struct diff_options diff_defaults = {
	.kind = LW_KIND_ALL,
	.format = LW_FMT_TEXT,
	.output = NULL,
	.min_growth = 1,
};

static const struct lw_option diff_options_table[] = {
	{ "kind", LW_OPT_KIND, LW_ARG_REQUIRED, offsetof(struct diff_options, kind), "KIND",
	  "heap, sockets, fds or all (default): what to compare", 0, 0, 0,
	  "unknown kind '*' (heap, sockets, fds or all)", NULL },
	{ "format", LW_OPT_FORMAT, LW_ARG_REQUIRED, offsetof(struct diff_options, format), "FMT",
	  "text (default) or json (docs/report-format.md, \"diff\")", 0, 0,
	  LW_FMT_BIT(LW_FMT_TEXT) | LW_FMT_BIT(LW_FMT_JSON), "unknown format '*' (text or json)", NULL },
	{ "min-growth", LW_OPT_INT, LW_ARG_REQUIRED, offsetof(struct diff_options, min_growth), "N",
	  "a stack grew when its count (blocks, sockets, descriptors)\nrose by N or more (default 1; with 1, heap bytes rising\nalone also count)",
	  1, INT_MAX, 0, "bad --min-growth '*' (a whole number, 1 or more)", NULL },
	LW_OPT_OUTPUT(struct diff_options, output, "write the diff to FILE (complete or not at all) instead\nof stdout"),
};

const struct lw_command_spec lw_diff_spec = { "diff", LW_CMD_TWO_ARGS, "OLD NEW", diff_options_table,
					      sizeof diff_options_table / sizeof diff_options_table[0] };

/* A kind asked for by name (not "all") that a side does not have is an input error. */
static int kind_missing(const struct lw_diff *d, enum lw_kind kind)
{
	if (kind == LW_KIND_ALL)
		return 0;
	for (int k = 0; k < LW_DK_N; k++) {
		if (!d->k[k].wanted || d->k[k].compared)
			continue;
		const struct lw_diff_side *s = d->old->covers[k] ? d->new : d->old;
		fprintf(stderr, "leakwatch: %s: no %s data (heap tracking off, or reported with another --kind)\n",
			s->source, lw_diff_kind_name(k));
		return 1;
	}
	return 0;
}

static int diff_print(const struct lw_diff_side *old, const struct lw_diff_side *new, enum lw_kind kind,
		      enum lw_format format, int min_growth, const char *output)
{
	char err[LW_ERR_MAX];
	struct lw_diff d;
	if (lw_diff_compute(&d, old, new, kind, min_growth) < 0) {
		fprintf(stderr, "leakwatch: diff: out of memory\n");
		return LW_EXIT_ERROR;
	}
	if (kind_missing(&d, kind)) {
		lw_diff_free(&d);
		return LW_EXIT_ERROR;
	}
	if (lw_output_begin(output, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		lw_diff_free(&d);
		return LW_EXIT_ERROR;
	}
	if (format == LW_FMT_JSON) {
		lw_render_diff_json(stdout, &d);
		fputc('\n', stdout);
	} else {
		lw_render_diff_text(stdout, &d);
	}
	int grew = lw_diff_grew(&d);
	lw_diff_free(&d);
	if (lw_output_end(1) != 0)
		return LW_EXIT_ERROR;
	return grew ? LW_EXIT_GREW : LW_EXIT_OK;
}

int lw_cmd_diff(int argc, char **argv)
{
	struct diff_options o = diff_defaults;
	const char *args[2] = { NULL, NULL };
	if (lw_options_parse(&lw_diff_spec, &o, argc, argv, args) < 0)
		return LW_EXIT_USAGE;
	struct lw_report_opts ro = { .kind = o.kind };
	struct lw_diff_side old, new;
	char err[LW_ERR_MAX];
	if (lw_diff_side_load(&old, args[0], &ro, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", args[0], err);
		return LW_EXIT_ERROR;
	}
	if (lw_diff_side_load(&new, args[1], &ro, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", args[1], err);
		lw_diff_side_free(&old);
		return LW_EXIT_ERROR;
	}
	int rc = diff_print(&old, &new, o.kind, o.format, o.min_growth, o.output);
	lw_diff_side_free(&old);
	lw_diff_side_free(&new);
	return rc;
}

int lw_diff_against(const char *baseline, const char *target, struct lw_report *r, const char *output)
{
	if (r->opts.format != LW_FMT_TEXT && r->opts.format != LW_FMT_JSON) {
		lw_usage_error("report", "--baseline takes --format text or json");
		return LW_EXIT_USAGE;
	}
	struct lw_diff_side old, new;
	char err[LW_ERR_MAX];
	if (lw_diff_side_load(&old, baseline, &r->opts, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", baseline, err);
		return LW_EXIT_ERROR;
	}
	if (lw_diff_side_from_report(&new, target, r, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", target, err);
		lw_diff_side_free(&old);
		return LW_EXIT_ERROR;
	}
	int rc = diff_print(&old, &new, r->opts.kind, r->opts.format, 1, output);
	lw_diff_side_free(&old);
	lw_diff_side_free(&new);
	return rc;
}
