/* SPDX-License-Identifier: MIT */
/*
 * manpage.h — what `leakwatch help --man|--completion|--commands` generates
 * (manpage.c, completion.c) from the commands' option tables, and the
 * hand-written prose of each page (manpage_text.c).
 *
 * The synopsis, the options with their help and the values an option takes
 * come from the same tables that parse argv and print --help, so a man page
 * or the bash completion cannot name an option the command does not have.
 * A command registered in main.c's list gets its page and completion with
 * nothing more; its prose (description, examples, exit status) is what
 * manpage_text.c adds, keyed by the command's name.
 */
#ifndef LEAKWATCH_MANPAGE_H
#define LEAKWATCH_MANPAGE_H

#include <stddef.h>
#include <stdio.h>

#include "options.h"

/* What a command's PID word completes to (bash completion). */
enum lw_pid_words {
	LW_PIDS_SEGMENTS = 0,           /* PIDs that have a segment (running or not) */
	LW_PIDS_RUNNING_TRACED,         /* running PIDs that have a segment */
	LW_PIDS_UNTRACED,               /* running PIDs without a segment (attach) */
};

/*
 * The hand-written part of a page.  Text is a light markup that manpage.c
 * renders to roff: a blank line between paragraphs; a line indented by two
 * spaces is literal (examples); "= TERM" starts a tagged paragraph (the
 * lines below it are its body); "- " an item; `word` is bold.  Nothing else
 * is special: dashes, backslashes and leading dots are escaped.
 */
struct lw_man_text {
	const char *name;               /* the command; "" for leakwatch(1) */
	const char *summary;            /* the NAME line, after "leakwatch-report \- " */
	const char *description;
	const char *exit_status;        /* NULL: the common one (leakwatch(1)'s) */
	const char *environment;        /* NULL: LEAKWATCH_DIR only */
	const char *examples;           /* NULL: none */
	enum lw_pid_words pids;
};

/* lw_man_text_find - the prose of `name` ("" for leakwatch(1)), or NULL. */
const struct lw_man_text *lw_man_text_find(const char *name);

/* The spec of `leakwatch preload` (no options), a page and a completion like the others. */
extern const struct lw_command_spec lw_preload_spec;

/*
 * lw_help_generate - `leakwatch help --man [COMMAND]` (roff of leakwatch(1)
 * or leakwatch-COMMAND(1) on stdout), `help --completion` (the bash
 * completion script), `help --commands` (one command name a line: every
 * page there is besides leakwatch(1)).  argv[0] is "help"; cmds are main.c's
 * commands.  Returns the exit status: 0, or 2 after one usage-error line
 * (unknown page, extra words).
 */
int lw_help_generate(int argc, char **argv, const struct lw_command_spec *const *cmds, size_t n);

/* lw_completion_print - the bash completion script for cmds (and preload, help). */
void lw_completion_print(FILE *out, const struct lw_command_spec *const *cmds, size_t n);

/*
 * lw_option_values - the words o accepts as its value, learnt by offering
 * its own parser (lw_option_accepts) each '|'-separated word of its
 * metavar and each word of its help; at most max, in order of first
 * mention, into v.  Returns the count (0: not an enumerable option).
 */
size_t lw_option_values(const struct lw_option *o, char (*v)[32], size_t max);

#endif /* LEAKWATCH_MANPAGE_H */
