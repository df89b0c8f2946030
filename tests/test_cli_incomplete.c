/* SPDX-License-Identifier: MIT */
/*
 * Layout 2 segments as the CLI shows them: a table that could not grow
 * ("incomplete") in report (text and JSON), ps and run, none of which
 * changes an exit status; ps's SIZE column (st_blocks: a v2 segment is a
 * sparse file of 1 TiB).
 */
#include <criterion/criterion.h>

#include "lib/analyzer.h"
#include "lib/json.h"

static const char *const dir = suite_dir; /* the suite's private directory */

TestSuite(cli_incomplete, .init = suite_segdir_setup, .fini = suite_segdir_teardown);

/* An exited image whose heap and stack tables stopped growing under a 64 MiB budget. */
static void incomplete_segment(char *path, size_t len)
{
	struct fab f;
	fab_init_heap(&f, 16, 4, 16, 4, 64, LW_HEAP_FULL, 0);
	f.hdr->state = LW_STATE_EXITED;
	f.hdr->end_monotonic_ns = 5000000000ull;
	f.hdr->incomplete = LW_INCOMPLETE_HEAP | LW_INCOMPLETE_STACKS;
	f.hdr->counters[LW_CTR_DROP_RESERVE] = 7;
	f.hdr->counters[LW_CTR_DROP_HEAP_FULL] = 1234;
	f.hdr->budget_bytes = 64ull << 20;
	uint64_t fr[1] = { 0x1000 };
	fab_stack(&f, 1, fr, 1);
	fab_alloc(&f, 3, 0x4000, 100, 2000000000ull, 1);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 1, 2000000000ull);
	fab_span(&f, 1ull << 40);
	fab_write(&f, dir, fab_segname(), path, len);
	fab_free(&f);
}

#define INCOMPLETE_LINE \
	"heap and stack tables could not grow: filesystem full or LEAKWATCH_BUDGET (64.0 MiB) reached; 7 events dropped"

Test(cli_incomplete, report_says_which_tables_and_why)
{
	char path[PATH_MAX], out[16384], err[8192];
	incomplete_segment(path, sizeof path);
	int rc = cli_run((const char *[]){ "report", path, NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "incomplete changes no exit status; stderr %s", err);
	const char *line = strstr(out, "\nINCOMPLETE " INCOMPLETE_LINE "\n");
	cr_assert_not_null(line, "%s", out);
	cr_assert_eq(line, strchr(out, '\n'), "right under the summary line: %s", out);
	cr_assert(strstr(out, "heap table full 1234"), "the per-table drops stay: %s", out);

	rc = cli_run((const char *[]){ "report", path, "--format", "json", NULL }, (uid_t)-1, out, sizeof out, err,
		     sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	struct tj *j = tj_parse(out);
	cr_assert_not_null(j, "%s", out);
	struct tj *inc = tj_get(j, "incomplete");
	cr_assert_not_null(inc);
	cr_assert_eq(inc->type, TJ_OBJ, "%s", out);
	struct tj *tables = tj_get(inc, "tables");
	cr_assert_eq(tj_len(tables), 2);
	cr_assert_str_eq(tj_at(tables, 0)->str, "heap");
	cr_assert_str_eq(tj_at(tables, 1)->str, "stack");
	cr_assert_eq(tj_num(inc, "dropped", -1), 7);
	cr_assert_eq(tj_num(inc, "budget_bytes", -1), 64 << 20);
	cr_assert_str_eq(tj_get(inc, "reason")->str, "filesystem full or LEAKWATCH_BUDGET (64.0 MiB) reached");
	cr_assert_eq(tj_num(tj_get(tj_get(j, "counters"), "drops"), "reserve", -1), 7);
	cr_assert_eq(tj_num(j, "layout", -1), 2);
	cr_assert_lt(tj_num(j, "file_bytes", -1), 1 << 20, "the space held, not the 1 TiB span");
	tj_free(j);
}

/* Only the counter (no table bit, no budget): still said, in the same words. */
Test(cli_incomplete, counter_alone_is_enough)
{
	char path[PATH_MAX], out[16384], err[8192];
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->counters[LW_CTR_DROP_RESERVE] = 1;
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	int rc = cli_run((const char *[]){ "report", path, NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "\nINCOMPLETE a table could not grow: filesystem full or LEAKWATCH_BUDGET reached; "
			      "1 event dropped\n"), "%s", out);

	/* and a complete segment says nothing of the kind */
	fab_init(&f, 4, 4, 16, 4);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	rc = cli_run((const char *[]){ "report", path, "--format", "json", NULL }, (uid_t)-1, out, sizeof out, err,
		     sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "\"incomplete\":null"), "%s", out);
	rc = cli_run((const char *[]){ "report", path, NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_null(strstr(out, "INCOMPLETE"), "%s", out);
}

Test(cli_incomplete, ps_shows_space_held_and_incomplete)
{
	char path[PATH_MAX], out[16384], err[8192];
	incomplete_segment(path, sizeof path);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, 1ull << 40);
	char size[32];
	lw_bytes_format((double)st.st_blocks * 512, size, sizeof size);

	int rc = cli_run((const char *[]){ "ps", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "SIZE"), "%s", out);
	cr_assert(strstr(out, size), "SIZE is st_blocks (%s): %s", size, out);
	cr_assert_null(strstr(out, "TiB"), "not the logical size: %s", out);
	char want[256];
	snprintf(want, sizeof want, "\nincomplete: pid %d (fake --serve): " INCOMPLETE_LINE "\n", lw_dead_pid());
	cr_assert(strstr(out, want), "%s", out);
	cr_assert_eq(count_lines(out), 3, "header, the segment, the incomplete line: %s", out);

	rc = cli_run((const char *[]){ "ps", "--format", "json", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	struct tj *j = tj_parse(out);
	cr_assert_not_null(j, "%s", out);
	struct tj *e = tj_at(j, 0);
	cr_assert_eq(tj_num(e, "size_bytes", -1), (double)st.st_blocks * 512);
	cr_assert_eq(tj_len(tj_get(tj_get(e, "incomplete"), "tables")), 2);
	tj_free(j);
}

/*
 * run on a directory whose budget the shim reaches: the heap table cannot
 * grow (the real shim, full heap mode, 50000 live blocks under a 192 KiB
 * budget).  The summary says so in one line, JSON too, and the command's
 * own status is kept.
 */
Test(cli_incomplete, run_says_incomplete_and_keeps_the_status, .timeout = 120)
{
	char tdir[PATH_MAX], envdir[PATH_MAX + 32];
	if (tmpfs_dir(tdir, sizeof tdir, "incomplete") != 0)
		cr_skip_test("no tmpfs to mount and /dev/shm is not one");
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", tdir);
	char *env[] = { envdir, "LEAKWATCH_BUDGET=192K", NULL };
	const char *cmd[] = { LW_BUILD_DIR "/fixtures/heap_leak", "basic", "50000", "16", NULL };
	struct cmd_result r;
	lw_run_timed(&r, env, (const char *[]){ "--heap", "full", NULL }, cmd, 100);
	cr_assert_eq(r.status, 0, "the command's status, not a leak or an error: %s", r.err);
	const char *line = strstr(r.err, "\nleakwatch: incomplete: pid ");
	cr_assert_not_null(line, "%s", r.err);
	cr_assert(strstr(line, "heap_leak basic 50000 16): heap table could not grow: filesystem full or "
			       "LEAKWATCH_BUDGET (192.0 KiB) reached; "), "%s", line);
	cr_assert(strstr(r.err, "\nINCOMPLETE heap table could not grow"), "in the process's report: %s", r.err);
	cmd_result_free(&r);

	char *text = run_report(&r, env, (const char *[]){ "--heap", "full", NULL }, cmd);
	cr_assert_not_null(text, "%s", r.err);
	struct tj *j = tj_parse(text);
	cr_assert_not_null(j, "%s", text);
	cr_assert_eq(tj_get(j, "incomplete")->type, TJ_BOOL);
	cr_assert_eq(tj_get(j, "incomplete")->num, 1);
	struct tj *inc = tj_get(tj_at(tj_get(j, "processes"), 0), "incomplete");
	cr_assert_eq(inc->type, TJ_OBJ, "%s", text);
	cr_assert_str_eq(tj_at(tj_get(inc, "tables"), 0)->str, "heap");
	tj_free(j);
	free(text);
	cmd_result_free(&r);
	tmpfs_dir_release(tdir);
}
