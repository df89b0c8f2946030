/* SPDX-License-Identifier: MIT */
/*
 * options.h — table-driven command-line options (options.c).
 *
 * Each command describes its options once, as a table of struct lw_option
 * pointing into the command's own options struct (offsetof).  The same table
 * parses argv, validates every value (a bad value is a one-line usage error
 * and exit status 2, never a silent default) and generates the command's
 * synopsis and option help for `leakwatch --help`.  Options several commands
 * share (--older-than, --idle-for, --interval, --by, --format, --kind,
 * --output, --all) are written once, as the LW_OPT_* macros below.
 */
#ifndef LEAKWATCH_OPTIONS_H
#define LEAKWATCH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum lw_opt_type {
	LW_OPT_FLAG = 0,        /* int = 1 */
	LW_OPT_STRING,          /* const char * = the argument */
	LW_OPT_DURATION,        /* uint64_t ns, at least .min (0 accepted when .min is 0) */
	LW_OPT_FORMAT,          /* enum lw_format, one of .allowed (LW_FMT_* bits) */
	LW_OPT_KIND,            /* enum lw_kind */
	LW_OPT_BY,              /* enum lw_group_by */
	LW_OPT_INT,             /* int in [.min, .max] */
	LW_OPT_CUSTOM,          /* .set(opts, arg) decides; -1 is a bad value */
};

/* Argument of an option (as getopt_long's has_arg). */
enum lw_opt_arg { LW_ARG_NONE = 0, LW_ARG_REQUIRED = 1, LW_ARG_OPTIONAL = 2 };

struct lw_option {
	const char *name;               /* long name without "--" */
	enum lw_opt_type type;
	enum lw_opt_arg arg;
	size_t off;                     /* the field in the command's options struct */
	const char *metavar;            /* "DUR", "open|use"; NULL for flags */
	const char *help;               /* one or more lines, each without "\n" at the end */
	long long min, max;             /* LW_OPT_INT range; LW_OPT_DURATION minimum (ns) */
	unsigned allowed;               /* LW_OPT_FORMAT: 1u << LW_FMT_* accepted */
	const char *bad;                /* the error for a bad value, '*' standing for it:
	                                   "unknown kind '*' (heap, sockets or all)" */
	int (*set)(void *opts, const char *arg); /* LW_OPT_CUSTOM; arg NULL for a bare optional */
};

/* What a command takes besides options. */
enum lw_cmd_args {
	LW_CMD_NO_ARGS = 0,             /* nothing: any word is an unexpected argument */
	LW_CMD_ONE_ARG,                 /* exactly one word (before or after options) */
	LW_CMD_TWO_ARGS,                /* exactly two words ("OLD NEW"), anywhere among options */
	LW_CMD_COMMAND,                 /* options, then a command line of its own (after "--") */
};

struct lw_command_spec {
	const char *name;               /* "report" */
	enum lw_cmd_args args;
	const char *arg_name;           /* "PID|SEGMENT", "-- CMD [ARGS...]" */
	const struct lw_option *opts;
	size_t nopts;
};

#define LW_FMT_BIT(f) (1u << (f))

/* The options several commands share, defined once.  T is the options struct. */
#define LW_OPT_OLDER_THAN(T, field) \
	{ "older-than", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(T, field), "DUR", \
	  "only sockets open / heap blocks allocated at least DUR ago\n(500ms, 30s, 5m, 2h, 1d, 1h30m)", \
	  0, 0, 0, "bad duration '*'", NULL }
#define LW_OPT_IDLE_FOR(T, field) \
	{ "idle-for", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(T, field), "DUR", \
	  "a socket with no I/O for DUR is idle (default 5m)", \
	  1, 0, 0, "bad --idle-for duration '*'", NULL }
#define LW_OPT_BY_(T, field) \
	{ "by", LW_OPT_BY, LW_ARG_REQUIRED, offsetof(T, field), "open|use", \
	  "group sockets by the stack that opened them (default) or\nby the stack that last sent on them (\"never used\" for\nsockets nothing was sent on)", \
	  0, 0, 0, "unknown grouping '*' (open or use)", NULL }
#define LW_OPT_KIND_(T, field) \
	{ "kind", LW_OPT_KIND, LW_ARG_REQUIRED, offsetof(T, field), "KIND", \
	  "heap, sockets, fds (files, pipes, ...) or all (default):\nwhat to report", \
	  0, 0, 0, "unknown kind '*' (heap, sockets, fds or all)", NULL }
#define LW_OPT_FORMAT_ALL(T, field, help) \
	{ "format", LW_OPT_FORMAT, LW_ARG_REQUIRED, offsetof(T, field), "FMT", help, 0, 0, \
	  LW_FMT_BIT(LW_FMT_TEXT) | LW_FMT_BIT(LW_FMT_JSON) | LW_FMT_BIT(LW_FMT_FOLDED) | \
	  LW_FMT_BIT(LW_FMT_SARIF), "unknown format '*' (text, json, folded or sarif)", NULL }
#define LW_OPT_ALL(T, field) \
	{ "all", LW_OPT_FLAG, LW_ARG_NONE, offsetof(T, field), NULL, \
	  "also inherited sockets (opened before leakwatch loaded),\nstale entries (closed where no hook saw it), and heap blocks\nthat are not counted as leaks (see below)", \
	  0, 0, 0, NULL, NULL }
/* --leak-kinds: LW_OPT_CUSTOM; `set` parses with lw_reach_kinds_parse into the command's
 * unsigned field, "none" stored as LW_REACH_KINDS_NONE (0 is the default) */
#define LW_OPT_LEAK_KINDS(T, set) \
	{ "leak-kinds", LW_OPT_CUSTOM, LW_ARG_REQUIRED, 0, "LIST", \
	  "reachability classes that count as leaked (valgrind's\n--errors-for-leak-kinds): definite, indirect, possible,\nreachable, all or none, comma-separated (default\ndefinite,indirect)", \
	  0, 0, 0, "bad --leak-kinds '*' (definite, indirect, possible, reachable, all, none)", set }
/* Suppressions (report, run): T holds a struct lw_cli_supp (cli.h) at `field`. */
#define LW_OPT_SUPPRESSIONS(set) \
	{ "suppressions", LW_OPT_CUSTOM, LW_ARG_REQUIRED, 0, "FILE", \
	  "do not count leaks that an entry of FILE matches: valgrind's\nformat ({ name / leakwatch:Heap|Socket|Fd or Memcheck:Leak /\nfun: obj: src: frames, *, ?, ... }) or LSan's leak:PATTERN\nlines; repeatable; $LEAKWATCH_SUPPRESSIONS adds files too\n(colon-separated); the report counts what each entry took", \
	  0, 0, 0, "bad --suppressions '*' (a file; at most 64 of them)", set }
#define LW_OPT_NO_DEFAULT_SUPPRESSIONS(T, field) \
	{ "no-default-suppressions", LW_OPT_FLAG, LW_ARG_NONE, offsetof(T, field), NULL, \
	  "do not apply the built-in suppressions of what the C/C++\nruntime keeps until exit (stdio buffers, locale, loader...)", \
	  0, 0, 0, NULL, NULL }
#define LW_OPT_GEN_SUPPRESSIONS(set) \
	{ "gen-suppressions", LW_OPT_CUSTOM, LW_ARG_OPTIONAL, 0, "valgrind|lsan", \
	  "print, under each leak, a suppression entry that silences it\n(valgrind format, or an LSan leak: line with =lsan); with\n--format json a \"suppression\" string in each group", \
	  0, 0, 0, "bad --gen-suppressions '*' (valgrind or lsan)", set }
/* GitHub Actions annotations (report, run): T's int field set turns them off. */
#define LW_OPT_NO_GITHUB_ANNOTATIONS(T, field) \
	{ "no-github-annotations", LW_OPT_FLAG, LW_ARG_NONE, offsetof(T, field), NULL, \
	  "with GITHUB_ACTIONS=true in the environment, do not print\nthe ::error file=...,line=...:: workflow command of each leak", \
	  0, 0, 0, NULL, NULL }
#define LW_OPT_OUTPUT(T, field, help) \
	{ "output", LW_OPT_STRING, LW_ARG_REQUIRED, offsetof(T, field), "FILE", help, 0, 0, 0, NULL, NULL }

/*
 * lw_options_parse - parse argv[1..argc) (argv[0] is the command name) into
 * opts with the command's table.  *arg receives the one word of an
 * LW_CMD_ONE_ARG command, arg[0] and arg[1] the two of an LW_CMD_TWO_ARGS one.  Returns the index of the first word not parsed
 * (LW_CMD_COMMAND: the command line; otherwise argc), or -1 after printing
 * one usage-error line (unknown option, missing or bad value, missing or
 * unexpected word).
 */
int lw_options_parse(const struct lw_command_spec *c, void *opts, int argc, char **argv, const char **arg);

/* lw_options_synopsis - "leakwatch NAME ARG [--opt METAVAR] ...", wrapped, with a final newline. */
void lw_options_synopsis(FILE *out, const struct lw_command_spec *c, const char *lead);

/* lw_options_help - one "  --name METAVAR   help" entry per option, with a heading line. */
void lw_options_help(FILE *out, const struct lw_command_spec *c);

/*
 * lw_option_accepts - whether o takes arg as its value (parsed as
 * lw_options_parse would, into a scratch copy of no command's options: no
 * options struct is touched).  For generated documentation and completion:
 * the values an option accepts are learnt from its own parser.  0 or 1.
 */
int lw_option_accepts(const struct lw_option *o, const char *arg);

#endif /* LEAKWATCH_OPTIONS_H */
