/* SPDX-License-Identifier: MIT */
/*
 * cli.h — the `leakwatch` command line: named exit statuses, the commands
 * (one file each: cmd_ps.c, cmd_clean.c, cmd_report.c, cmd_diff.c,
 * cmd_run.c, cmd_top.c) and the one usage-error printer.
 */
#ifndef LEAKWATCH_CLI_H
#define LEAKWATCH_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "options.h"

/* leakwatch's version: --version, the tool version of SARIF output, the man pages' footer. */
#ifndef LW_VERSION_STRING
#define LW_VERSION_STRING "0.1"
#endif

/* Exit statuses of leakwatch (documented in --help and the README). */
enum lw_exit {
	LW_EXIT_OK = 0,
	LW_EXIT_LEAK = 1,               /* --fail-on-leak found something (run: --error-exitcode) */
	LW_EXIT_GREW = LW_EXIT_LEAK,    /* diff, report --baseline: some stack grew (as diff(1)) */
	LW_EXIT_ERROR = 2,              /* unreadable or invalid segment, command could not be
	                                   run, output could not be written */
	LW_EXIT_USAGE = LW_EXIT_ERROR,  /* usage error: the same status, named for the reader */
	LW_EXIT_UNTRACED = 3,           /* run: something was not traced (fail closed) */
};
/* A segment whose tables stopped growing ("incomplete": filesystem full or
 * LEAKWATCH_BUDGET reached) changes no exit status by itself: report, ps and
 * run say so in one line each, and what was recorded is judged as usual. */

/*
 * lw_usage_error - the one usage-error line on stderr:
 * "leakwatch: [CMD: ]MESSAGE (try 'leakwatch --help')".  cmd may be NULL.
 */
void lw_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct lw_segref;
struct lw_supp_set;

/* --suppressions, --no-default-suppressions, --gen-suppressions (report and run). */
#define LW_CLI_SUPP_MAX_FILES 64
struct lw_cli_supp {
	const char *files[LW_CLI_SUPP_MAX_FILES]; /* --suppressions FILE, in order */
	size_t nfiles;
	int no_default;                 /* --no-default-suppressions */
	int gen;                        /* --gen-suppressions[=valgrind|lsan]: enum lw_gen_supp */
};

/* Option setters: -1 is a bad value (the option table prints it). */
int lw_cli_supp_add(struct lw_cli_supp *s, const char *arg);
int lw_cli_supp_gen(struct lw_cli_supp *s, const char *arg);

/*
 * lw_cli_supp_load - the set a report applies: the built-in default set
 * (unless no_default), then the files of $LEAKWATCH_SUPPRESSIONS
 * (colon-separated), then each --suppressions FILE.  Returns the set, or
 * NULL with the one error line ("leakwatch: FILE:LINE: problem") printed.
 */
struct lw_supp_set *lw_cli_supp_load(const struct lw_cli_supp *s);

/* lw_cli_segments_list - lw_segments_list(), printing its error line; the count or -1. */
int lw_cli_segments_list(const char *dir, struct lw_segref **refs);

/* The commands: argv[0] is the command's name; each returns an exit status (enum lw_exit). */
int lw_cmd_ps(int argc, char **argv);
int lw_cmd_clean(int argc, char **argv);
int lw_cmd_report(int argc, char **argv);
int lw_cmd_diff(int argc, char **argv);
int lw_cmd_attach(int argc, char **argv);
int lw_cmd_detach(int argc, char **argv);
int lw_cmd_exporter(int argc, char **argv);

/* Their option tables, for the generated --help. */
extern const struct lw_command_spec lw_ps_spec, lw_clean_spec, lw_report_spec, lw_diff_spec, lw_run_spec,
	lw_top_spec, lw_attach_spec, lw_detach_spec, lw_exporter_spec;

struct lw_report;

/*
 * lw_diff_against - `report TARGET --baseline FILE`: r (built from TARGET
 * with the report's options) is the NEW side, FILE (a JSON report or a
 * segment, reported with the same options) the OLD one; prints the diff in
 * r->opts.format (text or json) to stdout or `output`.  Returns LW_EXIT_OK
 * (nothing grew), LW_EXIT_GREW, LW_EXIT_USAGE (--format folded) or
 * LW_EXIT_ERROR (FILE unusable, output not written; one line printed).
 */
int lw_diff_against(const char *baseline, const char *target, struct lw_report *r, const char *output);

/*
 * lw_shim_find - locate libleakwatch.so: $LEAKWATCH_SHIM, next to
 * /proc/self/exe, ../lib/leakwatch/ from it, then LW_LIBDIR.  Returns 0 with
 * the path in out, or -1 when none exists.
 */
int lw_shim_find(char *out, size_t len);

/*
 * lw_run_main - `leakwatch run` with argv[0] == "run".  Returns the process
 * exit status: the command's own, LW_EXIT_LEAK (or --error-exitcode),
 * LW_EXIT_USAGE (usage/exec error, message already printed) or LW_EXIT_UNTRACED.
 */
int lw_run_main(int argc, char **argv);

/*
 * lw_top_main - `leakwatch top` with argv[0] == "top".  Returns the exit
 * status: 0 (quit, count reached, or the process exited), 2 (usage error,
 * no such process or segment; one line printed).
 */
int lw_top_main(int argc, char **argv);

#endif /* LEAKWATCH_CLI_H */
