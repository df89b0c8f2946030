/* SPDX-License-Identifier: MIT */
/*
 * The command line's option tables (analyzer/cli/options.c): the help is
 * generated from them, and a bad value of a shared option is the same
 * one-line usage error (exit 2) in every command that takes it.
 */
#include <criterion/criterion.h>

#include "lib/analyzer.h"

static const struct lw_command_spec *const specs[] = {
	&lw_ps_spec, &lw_clean_spec, &lw_report_spec, &lw_top_spec, &lw_run_spec,
};

Test(cli_options, help_lists_every_option_of_every_table)
{
	static char out[65536], err[8192];
	int rc = cli_run((const char *[]){ "--help", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		char head[64];
		snprintf(head, sizeof head, "options of %s:\n", specs[i]->name);
		const char *sec = strstr(out, head);
		cr_assert_not_null(sec, "no section for %s", specs[i]->name);
		for (size_t k = 0; k < specs[i]->nopts; k++) {
			char form[64];
			snprintf(form, sizeof form, "\n  --%s", specs[i]->opts[k].name);
			cr_assert_not_null(strstr(sec, form), "%s: --%s not in its help", specs[i]->name,
					   specs[i]->opts[k].name);
			cr_assert_not_null(specs[i]->opts[k].help, "%s --%s has no help", specs[i]->name,
					   specs[i]->opts[k].name);
		}
	}
}

/* Each case must fail with exit 2 and one line naming the command. */
Test(cli_options, bad_shared_values_are_errors_everywhere)
{
	static const struct { const char *args[8]; const char *needle; } cases[] = {
		{ { "top", "1", "--idle-for", "0", NULL }, "top: bad --idle-for duration '0'" },
		{ { "report", "1", "--idle-for", "0", NULL }, "report: bad --idle-for duration '0'" },
		{ { "top", "1", "--by", "who", NULL }, "top: unknown grouping 'who'" },
		{ { "report", "1", "--by", "who", NULL }, "report: unknown grouping 'who'" },
		{ { "clean", "--older-than", "soon", NULL }, "clean: bad duration 'soon'" },
		{ { "run", "--older-than", "soon", "--", "true", NULL }, "run: bad duration 'soon'" },
		{ { "report", "1", "--older-than", "soon", NULL }, "report: bad duration 'soon'" },
		{ { "ps", "--format", "folded", NULL }, "ps: unknown format 'folded'" },
		{ { "run", "--format", "xml", "--", "true", NULL }, "run: unknown format 'xml'" },
		{ { "top", "1", "--count", "many", NULL }, "top: bad --count 'many'" },
		{ { "top", "1", "--count", "99999999999", NULL }, "top: bad --count" },
		{ { "top", "1", "--interval", "1ms", NULL }, "top: bad --interval '1ms'" },
		{ { "run", "--heap", "most", "--", "true", NULL }, "run: unknown heap mode 'most'" },
		{ { "report", NULL }, "report: missing PID or SEGMENT" },
		{ { "top", NULL }, "top: missing PID" },
		{ { "clean", "--all", NULL }, "clean: unknown option '--all'" },
	};
	char out[4096], err[4096];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = cli_run(cases[i].args, (uid_t)-1, out, sizeof out, err, sizeof err);
		cr_expect_eq(rc, LW_EXIT_USAGE, "case %zu: exit %d (%s)", i, rc, err);
		cr_expect_eq(count_lines(err), 1, "case %zu: %s", i, err);
		cr_expect(strstr(err, cases[i].needle), "case %zu: '%s' lacks '%s'", i, err, cases[i].needle);
		cr_expect(strstr(err, "(try 'leakwatch --help')"), "case %zu: %s", i, err);
	}
}
