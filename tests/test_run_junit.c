/* SPDX-License-Identifier: MIT */
/*
 * `run --junit FILE` (issue 15, item 3 in part): JUnit XML that CI systems
 * read — one failing testcase per leak group naming its site and carrying
 * its stack, passing ones for clean kinds; well-formed (python3's XML
 * parser, nobody's here); written complete or not at all; a bad FILE is one
 * line and status 2 before the command runs.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fixtures.h"
#include "lib/spawn.h"

static char tmp[PATH_MAX];
static void setup(void) { lw_tmpdir(tmp, sizeof tmp); }
static void teardown(void) { lw_rmdir(tmp); }
TestSuite(run_junit, .init = setup, .fini = teardown, .timeout = 120);

/* python3 parses it and prints "tests failures" from the XML itself. */
static void xml_counts(const char *path, int *tests, int *failures)
{
	struct cmd_result r;
	char *argv[] = { "/usr/bin/python3", "-c",
			 "import sys, xml.dom.minidom as m\n"
			 "d = m.parse(sys.argv[1])\n"
			 "print(len(d.getElementsByTagName('testcase')), len(d.getElementsByTagName('failure')))\n",
			 (char *)path, NULL };
	run_cmd(&r, argv, NULL, 30);
	cr_assert_eq(r.status, 0, "not well-formed XML: %s", r.err);
	cr_assert_eq(sscanf(r.out, "%d %d", tests, failures), 2, "%s", r.out);
	cmd_result_free(&r);
}

Test(run_junit, one_failing_testcase_per_leak_group)
{
	char xml[PATH_MAX + 16], supp[PATH_MAX + 16];
	snprintf(xml, sizeof xml, "%s/leaks.xml", tmp);
	snprintf(supp, sizeof supp, "%s/s.supp", tmp);
	FILE *f = fopen(supp, "w");
	fputs("leak:known_cache\n", f);
	fclose(f);
	struct cmd_result r;
	lw_run_timed(&r, NULL, (const char *[]){ "--junit", xml, "--suppressions", supp, NULL },
		     (const char *[]){ LW_BUILD_DIR "/fixtures/supp", NULL }, 120);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	int tests, failures;
	xml_counts(xml, &tests, &failures);
	/* 2 socket groups, 2 file groups, new_leak's heap group; known_cache suppressed */
	cr_expect_eq(failures, 5);
	cr_expect_eq(tests, 5);
	char *text = slurp(xml);
	cr_assert_not_null(text);
	cr_expect_not_null(strstr(text, "message=\"3 heap blocks (96 B) left allocated, definitely lost, at new_leak (tests/fixtures/supp.c:"), "%s", text);
	cr_expect_not_null(strstr(text, "1 socket left open (UDP (no address)), opened at new_socket (tests/fixtures/supp.c:"), "%s", text);
	cr_expect_null(strstr(text, "known_cache"), "suppressed: not a failure");
	cr_expect_not_null(strstr(text, "main          tests/fixtures/supp.c:"), "the stack is in the failure: %s", text);
	free(text);
}

Test(run_junit, a_clean_run_has_passing_testcases)
{
	char xml[PATH_MAX + 16];
	snprintf(xml, sizeof xml, "%s/clean.xml", tmp);
	struct cmd_result r;
	lw_run_timed(&r, NULL, (const char *[]){ "--junit", xml, NULL }, (const char *[]){ "true", NULL }, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	int tests, failures;
	xml_counts(xml, &tests, &failures);
	cr_expect_eq(failures, 0);
	cr_expect_eq(tests, 3, "sockets, descriptors, heap: one passing testcase each");
}

Test(run_junit, a_bad_file_is_refused_before_the_command_runs)
{
	char marker[PATH_MAX + 16];
	snprintf(marker, sizeof marker, "%s/ran", tmp);
	const char *bad[] = { "/nonexistent-dir/x.xml", "/dev/null", tmp };
	for (size_t i = 0; i < 3; i++) {
		struct cmd_result r;
		lw_run_timed(&r, NULL, (const char *[]){ "--junit", bad[i], NULL }, (const char *[]){ "touch", marker, NULL }, 30);
		cr_expect_eq(r.status, 2, "%s: %s", bad[i], r.err);
		cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
		cr_expect_not_null(strstr(r.err, "--junit"), "%s", r.err);
		cr_expect_neq(access(marker, F_OK), 0, "the command ran");
		cmd_result_free(&r);
	}
}
