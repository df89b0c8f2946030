/* SPDX-License-Identifier: MIT */
/* cmd_report.c — `leakwatch report PID|SEGMENT`: one segment, rendered once. */
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "output.h"
#include "pgjoin.h"
#include "render.h"
#include "render_sarif.h"
#include "report.h"
#include "segdir.h"

/* Defaults of `report`; each field is one option. */
struct report_options {
	uint64_t older_than_ns;         /* --older-than DUR: hide sockets and heap blocks younger than DUR */
	enum lw_format format;          /* --format text|json|folded|sarif */
	enum lw_kind kind;              /* --kind heap|sockets|all */
	int all;                        /* --all: also inherited sockets, stale entries, system heap blocks */
	const char *output;             /* --output FILE: write the report there, atomically */
	uint64_t idle_for_ns;           /* --idle-for DUR: no I/O for this long makes a socket idle */
	uint64_t interval_ns;           /* --interval DUR: two snapshots DUR apart, growth per group */
	enum lw_group_by by;            /* --by open|use: group by creation or last-use stack */
	int check_reachable;            /* --check-reachable: stop the process and classify its heap */
	unsigned leak_kinds;            /* --leak-kinds LIST (LW_REACH_BIT set; 0: default) */
	const char *baseline;           /* --baseline FILE: print what grew since FILE instead */
	struct lw_cli_supp supp;        /* --suppressions, --no-default-suppressions, --gen-suppressions */
	const char *pg;                 /* --pg CONNINFO: join the connections with pg_stat_activity */
	int no_github;                  /* --no-github-annotations: none even with GITHUB_ACTIONS=true */
};

static int report_supp_add(void *opts, const char *arg)
{
	return lw_cli_supp_add(&((struct report_options *)opts)->supp, arg);
}

static int report_gen_supp(void *opts, const char *arg)
{
	return lw_cli_supp_gen(&((struct report_options *)opts)->supp, arg);
}

static int report_leak_kinds_set(void *opts, const char *arg)
{
	struct report_options *o = opts;
	if (lw_reach_kinds_parse(arg, &o->leak_kinds) < 0)
		return -1;
	if (!o->leak_kinds) /* "none": 0 would mean the default */
		o->leak_kinds = LW_REACH_KINDS_NONE;
	return 0;
}

static const struct report_options report_defaults = {
	.older_than_ns = 0,
	.idle_for_ns = LW_IDLE_FOR_DEFAULT_NS,
	.interval_ns = 0,
	.by = LW_BY_OPEN,
	.format = LW_FMT_TEXT,
	.kind = LW_KIND_ALL,
	.all = 0,
};

static const struct lw_option report_options_table[] = {
	LW_OPT_KIND_(struct report_options, kind),
	LW_OPT_OLDER_THAN(struct report_options, older_than_ns),
	LW_OPT_IDLE_FOR(struct report_options, idle_for_ns),
	{ "interval", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(struct report_options, interval_ns), "DUR",
	  "take two snapshots DUR apart and show each group's\nopen count at both ends and opened/closed per minute",
	  1, 0, 0, "bad --interval duration '*'", NULL },
	LW_OPT_BY_(struct report_options, by),
	LW_OPT_FORMAT_ALL(struct report_options, format,
			  "text (default), json, folded: collapsed stacks for\nflamegraph.pl / speedscope, one line per group, weighted by\nlive bytes (heap; --kind all means heap here) or by sockets\n(--kind sockets), or sarif: SARIF 2.1.0 for code scanning,\none result per leak suspect (heap: lost blocks, with\n--check-reachable)"),
	LW_OPT_ALL(struct report_options, all),
	{ "check-reachable", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct report_options, check_reachable), NULL,
	  "stop every thread of the (live) process, classify its heap\nblocks as valgrind memcheck does (definitely, indirectly,\npossibly lost, still reachable), resume it; the pause is\nreported.  Needs ptrace permission over the process",
	  0, 0, 0, NULL, NULL },
	LW_OPT_LEAK_KINDS(struct report_options, report_leak_kinds_set),
	LW_OPT_SUPPRESSIONS(report_supp_add),
	LW_OPT_NO_DEFAULT_SUPPRESSIONS(struct report_options, supp.no_default),
	LW_OPT_GEN_SUPPRESSIONS(report_gen_supp),
	{ "pg", LW_OPT_STRING, LW_ARG_REQUIRED, offsetof(struct report_options, pg), "CONNINFO",
	  "ask PostgreSQL (libpq CONNINFO: \"host=db user=me\" or a\npostgresql:// URI) what each TCP connection to it is doing:\npg_stat_activity joined by the socket's local address and\nport (state such as idle in transaction, since when, last\nquery); connect_timeout (default 5 s) bounds it; text and\njson; a database error is exit status 2",
	  0, 0, 0, NULL, NULL },
	LW_OPT_OUTPUT(struct report_options, output, "write the report to FILE (complete or not at all) instead\nof stdout"),
	LW_OPT_NO_GITHUB_ANNOTATIONS(struct report_options, no_github),
	{ "baseline", LW_OPT_STRING, LW_ARG_REQUIRED, offsetof(struct report_options, baseline), "FILE",
	  "print what grew per stack since FILE (a JSON report or a\nsegment) instead of the report, as `leakwatch diff FILE PID`\n(exit status 1 when something grew)",
	  0, 0, 0, NULL, NULL },
};

const struct lw_command_spec lw_report_spec = { "report", LW_CMD_ONE_ARG, "PID|SEGMENT", report_options_table,
						sizeof report_options_table / sizeof report_options_table[0] };

static int report_run(const struct report_options *o, const char *target, const char *path,
		      struct lw_report_opts *ro);

int lw_cmd_report(int argc, char **argv)
{
	struct report_options o = report_defaults;
	const char *target = NULL;
	if (lw_options_parse(&lw_report_spec, &o, argc, argv, &target) < 0)
		return LW_EXIT_USAGE;

	char path[PATH_MAX], err[LW_ERR_MAX];
	if (o.pg) {
		if ((o.format != LW_FMT_TEXT && o.format != LW_FMT_JSON) || o.baseline) {
			lw_usage_error("report", "--pg goes with --format text or json, not %s",
				       o.baseline ? "--baseline" : o.format == LW_FMT_SARIF ? "--format sarif" : "--format folded");
			return LW_EXIT_USAGE;
		}
		/* a bad CONNINFO is refused before any work */
		if (lw_pg_check_conninfo(o.pg, err, sizeof err) < 0) {
			fprintf(stderr, "leakwatch: --pg: %s\n", err);
			return LW_EXIT_USAGE;
		}
	}
	if (lw_segment_resolve(target, path, sizeof path, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", target, err);
		return LW_EXIT_ERROR;
	}
	struct lw_supp_set *supp = lw_cli_supp_load(&o.supp);
	if (!supp)
		return LW_EXIT_ERROR;
	struct lw_report_opts ro = { .older_than_ns = o.older_than_ns, .all = o.all, .format = o.format,
				     .kind = o.kind, .idle_for_ns = o.idle_for_ns, .interval_ns = o.interval_ns,
				     .by = o.by, .leak_kinds = o.leak_kinds, .supp = supp,
				     .gen_supp = (enum lw_gen_supp)o.supp.gen };
	int rc = report_run(&o, target, path, &ro);
	lw_supp_set_free(supp);
	return rc;
}

static int report_run(const struct report_options *op, const char *target, const char *path,
		      struct lw_report_opts *rop)
{
	const struct report_options o = *op;
	struct lw_report_opts ro = *rop;
	char err[LW_ERR_MAX];
	struct lw_reach_result reach = { 0 };
	if (o.check_reachable) {
		if (!lw_kind_heap(o.kind)) {
			fprintf(stderr, "leakwatch: --check-reachable needs --kind heap or all\n");
			return LW_EXIT_USAGE;
		}
		struct lw_snapshot hs;
		if (lw_snapshot_open_flags(&hs, path, LW_SNAP_HEADER_ONLY, err, sizeof err) < 0) {
			fprintf(stderr, "leakwatch: %s: %s\n", path, err);
			return LW_EXIT_ERROR;
		}
		pid_t pid = hs.hdr.pid;
		int running = hs.state == LW_STATE_RUNNING;
		lw_snapshot_free(&hs);
		if (!running || kill(pid, 0) != 0) {
			fprintf(stderr, "leakwatch: %s: --check-reachable needs a running process (pid %d is not)\n", path,
				(int)pid);
			return LW_EXIT_ERROR;
		}
		if (lw_reach_check(pid, path, &reach, NULL, NULL, err, sizeof err) < 0) {
			fprintf(stderr, "leakwatch: %s: %s\n", path, err);
			return LW_EXIT_ERROR;
		}
		ro.reach = &reach;
	}
	struct lw_report r;
	if (lw_report_build(&r, path, &ro, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", path, err);
		lw_reach_free(&reach);
		return LW_EXIT_ERROR;
	}
	if (o.baseline) {
		int rc = lw_diff_against(o.baseline, target, &r, o.output);
		lw_report_free(&r);
		lw_reach_free(&reach);
		return rc;
	}
	/* After the snapshot, so both views are of nearly the same moment;
	 * before any output, so a database error leaves nothing half-written. */
	struct lw_pg_view pg = { 0 };
	if (o.pg) {
		if (lw_pg_load(&pg, o.pg, err, sizeof err) < 0) {
			fprintf(stderr, "leakwatch: --pg: %s\n", err);
			lw_report_free(&r);
			lw_reach_free(&reach);
			return LW_EXIT_ERROR;
		}
		r.pg = &pg;
	}
	if (lw_output_begin(o.output, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		lw_pg_free(&pg);
		lw_report_free(&r);
		lw_reach_free(&reach);
		return LW_EXIT_ERROR;
	}
	if (o.format == LW_FMT_JSON) {
		lw_render_json(stdout, &r);
		fputc('\n', stdout);
	} else if (o.format == LW_FMT_SARIF) {
		struct lw_sarif sarif;
		lw_sarif_begin(&sarif, stdout, LW_VERSION_STRING, 0);
		lw_sarif_add(&sarif, &r);
		lw_sarif_end(&sarif, NULL);
	} else if (o.format == LW_FMT_FOLDED) {
		if (lw_kind_heap(o.kind) && r.snap.hdr.heap_mode == LW_HEAP_OFF)
			fprintf(stderr, "leakwatch: pid %d: heap tracking was off, nothing to fold (try --kind sockets)\n",
				r.snap.hdr.pid);
		lw_render_folded(stdout, &r, NULL);
	} else {
		lw_render_text(stdout, &r);
	}
	int rc = lw_output_end(1) == 0 ? LW_EXIT_OK : LW_EXIT_ERROR;
	/* after the report, on the real stdout again: a machine-readable report
	 * there must stay parseable, so then they go to stderr */
	if (!o.no_github && lw_github_wanted()) {
		int on_stdout = !o.output || strcmp(o.output, "-") == 0;
		FILE *to = on_stdout && o.format != LW_FMT_TEXT ? stderr : stdout;
		lw_github_annotations(to, &r, 0);
		fflush(to);
	}
	lw_report_free(&r);
	lw_pg_free(&pg);
	lw_reach_free(&reach);
	return rc;
}
