/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch COMMAND --help` and `leakwatch preload` (issue 15, item 4 in
 * part): each command's own synopsis and options, status 0; the LD_PRELOAD
 * line of this build's shim.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fixtures.h"

Test(cli_help, every_command_has_its_own_help)
{
	static const char *const cmds[][2] = {
		{ "ps", NULL }, { "clean", "--dry-run" }, { "report", "--check-reachable" }, { "diff", "--min-growth" },
		{ "top", NULL }, { "run", "--suppressions" }, { "attach", "--seccomp-filter-ok" }, { "detach", "--timeout" },
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		char out[65536], err[4096], want[64];
		const char *args[] = { cmds[i][0], "--help", NULL };
		int st = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
		cr_expect_eq(st, 0, "%s --help: %s", cmds[i][0], err);
		snprintf(want, sizeof want, "usage: leakwatch %s", cmds[i][0]);
		cr_expect_eq(strncmp(out, want, strlen(want)), 0, "%s", out);
		snprintf(want, sizeof want, "options of %s", cmds[i][0]);
		if (cmds[i][1]) {
			cr_expect_not_null(strstr(out, want), "%s", out);
			cr_expect_not_null(strstr(out, cmds[i][1]), "%s --help names %s: %s", cmds[i][0], cmds[i][1], out);
		}
	}
	/* after run's "--" it is the command's own option */
	char out[4096], err[4096];
	const char *args[] = { "run", "--", "true", "--help", NULL };
	cr_expect_eq(cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_expect_null(strstr(out, "usage: leakwatch run"));
}

Test(cli_help, preload_prints_the_shims_line)
{
	char out[4096], err[4096];
	const char *args[] = { "preload", NULL };
	cr_assert_eq(cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_assert_eq(strncmp(out, "LD_PRELOAD=/", 12), 0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	struct stat a, b;
	cr_assert_eq(stat(out + 11, &a), 0, "%s", out);
	cr_assert_eq(stat(lw_shim(), &b), 0);
	cr_expect(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "the build's own shim");
	const char *bad[] = { "preload", "x", NULL };
	cr_expect_eq(cli_run(bad, (uid_t)-1, out, sizeof out, err, sizeof err), 2);
}
