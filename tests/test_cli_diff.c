/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch diff` and `report --baseline` end to end: tests/fixtures/heap_diff.c
 * under the shim (full heap mode) leaks 100 blocks at diff.grow before the
 * first snapshot and 100 more at the same stack before the second; the diff
 * of the two JSON reports, of a copied segment against the live process,
 * and report --baseline must each show exactly +100 blocks at that stack.
 * Then the input errors: one line naming the file, exit status 2.
 */
#include <criterion/criterion.h>
#include <sys/stat.h>

#include "lib/json.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define SRC "tests/fixtures/heap_diff.c"
#define OUT_MAX (1 << 20)

TestSuite(cli_diff, .init = suite_segdir_setup, .fini = suite_segdir_teardown);

static char out[OUT_MAX], err[8192];

struct traced {
	pid_t pid;
	int in, outfd;
	char buf[4096];
	size_t len;
	char pidstr[16];
};

static void traced_start(struct traced *t)
{
	char preload[4200];
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	t->len = 0;
	t->buf[0] = '\0';
	t->pid = spawn_piped(FIX("heap_diff"), (char *[]){ FIX("heap_diff"), NULL },
			     (char *[]){ preload, "LEAKWATCH_HEAP=full", NULL }, &t->in, &t->outfd);
	cr_assert_gt(t->pid, 0);
	snprintf(t->pidstr, sizeof t->pidstr, "%d", (int)t->pid);
	cr_assert(pipe_wait_for(t->outfd, t->buf, sizeof t->buf, &t->len, "phase 1\n", 20000), "no phase 1: %s", t->buf);
}

static void traced_next(struct traced *t)
{
	cr_assert_eq(write(t->in, "\n", 1), 1);
	cr_assert(pipe_wait_for(t->outfd, t->buf, sizeof t->buf, &t->len, "phase 2\n", 20000), "no phase 2: %s", t->buf);
}

static void traced_end(struct traced *t)
{
	if (write(t->in, "\n", 1) != 1) {
		/* gone already */
	}
	close(t->in);
	int st;
	waitpid(t->pid, &st, 0);
	close(t->outfd);
}

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", suite_dir, name);
}

/* `leakwatch report PID --format json --output FILE` */
static void snapshot_json(const struct traced *t, const char *file)
{
	int rc = cli_run((const char *[]){ "report", t->pidstr, "--format", "json", "--output", file, NULL }, (uid_t)-1,
			 out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "report: %s", err);
}

/* the entry of kind `kind` whose first frame is function fn at line, in a diff JSON */
static struct tj *diff_entry(struct tj *d, const char *kind, const char *fn, int line)
{
	struct tj *kinds = tj_get(d, "kinds");
	for (size_t k = 0; k < tj_len(kinds); k++) {
		struct tj *kd = tj_at(kinds, k);
		if (strcmp(tj_str(kd, "kind"), kind))
			continue;
		struct tj *stacks = tj_get(kd, "stacks");
		for (size_t i = 0; i < tj_len(stacks); i++) {
			struct tj *f = tj_at(tj_get(tj_at(stacks, i), "stack"), 0);
			if (f && tj_str(f, "function") && !strcmp(tj_str(f, "function"), fn) &&
			    (int)tj_num(f, "line", -1) == line)
				return tj_at(stacks, i);
		}
	}
	return NULL;
}

/* the diff JSON says exactly +100 blocks of 64 bytes at diff.grow, called from diff.grow_call */
static void check_grow_json(const char *text)
{
	struct tj *d = tj_parse(text);
	cr_assert_not_null(d, "diff JSON: %.400s", text);
	cr_assert_eq(tj_num(d, "leakwatch_diff", 0), 1);
	cr_assert_eq(tj_get(d, "grew")->num, 1);
	struct tj *e = diff_entry(d, "heap", "grow", marker_line(SRC, "diff.grow"));
	cr_assert_not_null(e, "no heap stack at grow: %.2000s", text);
	cr_assert_str_eq(tj_str(e, "status"), "grew");
	cr_assert_eq(tj_num(e, "old_count", -1), 100);
	cr_assert_eq(tj_num(e, "new_count", -1), 200);
	cr_assert_eq(tj_num(e, "count_delta", -1), 100);
	cr_assert_eq(tj_num(e, "bytes_delta", -1), 6400);
	struct tj *caller = tj_at(tj_get(e, "stack"), 1);
	cr_assert_str_eq(tj_str(caller, "function"), "main");
	cr_assert_eq(tj_num(caller, "line", -1), marker_line(SRC, "diff.grow_call"));
	/* the rest of the fixture: 20 new blocks at diff.later, warm-up shrank */
	struct tj *later = diff_entry(d, "heap", "later", marker_line(SRC, "diff.later"));
	cr_assert_not_null(later);
	cr_assert_str_eq(tj_str(later, "status"), "new");
	cr_assert_eq(tj_num(later, "count_delta", -1), 20);
	struct tj *warm = diff_entry(d, "heap", "warmup", marker_line(SRC, "diff.warmup"));
	cr_assert_not_null(warm);
	cr_assert_str_eq(tj_str(warm, "status"), "shrank");
	cr_assert_eq(tj_num(warm, "count_delta", 0), -10);
	tj_free(d);
}

static void check_grow_text(const char *text)
{
	char want[256];
	snprintf(want, sizeof want,
		 "HEAP  +100 blocks, +6.2 KiB  (100 -> 200 blocks, 6.2 KiB -> 12.5 KiB)\n"
		 "  allocated at  grow  " SRC ":%d\n"
		 "                main  " SRC ":%d\n",
		 marker_line(SRC, "diff.grow"), marker_line(SRC, "diff.grow_call"));
	cr_assert_not_null(strstr(text, want), "wanted\n%s\nin\n%s", want, text);
	cr_assert_not_null(strstr(text, "heap: 1 stack grew, 1 new, 1 shrank, 0 vanished"), "%s", text);
}

Test(cli_diff, hundred_blocks_between_two_snapshots, .timeout = 120)
{
	char f1[128], f2[128], seg[128], copy[128];
	path_in(f1, sizeof f1, "f1.json");
	path_in(f2, sizeof f2, "f2.json");
	path_in(copy, sizeof copy, "old.seg");
	struct traced t;
	traced_start(&t);
	snprintf(seg, sizeof seg, "%s/leakwatch.%d", suite_dir, (int)t.pid);
	snapshot_json(&t, f1);
	/* the segment as it was at the first moment, copied aside */
	struct cmd_result r;
	run_cmd(&r, (char *[]){ "cp", "--sparse=always", seg, copy, NULL }, NULL, 30);
	cr_assert_eq(r.status, 0, "cp: %s", r.err);
	cmd_result_free(&r);
	traced_next(&t);
	snapshot_json(&t, f2);

	/* two JSON reports */
	int rc = cli_run((const char *[]){ "diff", f1, f2, NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "something grew: exit 1 (stderr %s)", err);
	check_grow_text(out);
	cr_assert_not_null(strstr(out, "FDS  +3 descriptors (file)  (new: 0 -> 3)"), "%s", out);
	rc = cli_run((const char *[]){ "diff", "--format", "json", f1, f2, NULL }, (uid_t)-1, out, sizeof out, err,
		     sizeof err);
	cr_assert_eq(rc, 1, "%s", err);
	check_grow_json(out);

	/* a JSON report against the live process */
	rc = cli_run((const char *[]){ "diff", f1, t.pidstr, "--kind", "heap", "--format", "json", NULL }, (uid_t)-1,
		     out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "%s", err);
	check_grow_json(out);

	/* the copied segment against the live process: read as of the copy */
	rc = cli_run((const char *[]){ "diff", copy, t.pidstr, "--format", "json", NULL }, (uid_t)-1, out, sizeof out,
		     err, sizeof err);
	cr_assert_eq(rc, 1, "%s", err);
	check_grow_json(out);
	struct tj *d = tj_parse(out);
	cr_assert_str_eq(tj_str(tj_get(d, "old"), "state"), "copy");
	cr_assert_str_eq(tj_str(tj_get(d, "old"), "type"), "segment");
	cr_assert_not_null(diff_entry(d, "fds", "open_some", marker_line(SRC, "diff.open")),
			   "the copy has none of the descriptors opened after it");
	tj_free(d);

	/* report --baseline: the same diff, NEW being the report */
	rc = cli_run((const char *[]){ "report", t.pidstr, "--baseline", f1, NULL }, (uid_t)-1, out, sizeof out, err,
		     sizeof err);
	cr_assert_eq(rc, 1, "%s", err);
	check_grow_text(out);
	char f3[128];
	path_in(f3, sizeof f3, "baseline.json");
	rc = cli_run((const char *[]){ "report", t.pidstr, "--baseline", f1, "--kind", "heap", "--format", "json",
				       "--output", f3, NULL },
		     (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "%s", err);
	cr_assert_eq(out[0], '\0', "--output: nothing on stdout");
	char *text = slurp(f3);
	cr_assert_not_null(text);
	check_grow_json(text);
	free(text);
	rc = cli_run((const char *[]){ "report", t.pidstr, "--baseline", f1, "--format", "folded", NULL }, (uid_t)-1,
		     out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2);
	cr_assert_not_null(strstr(err, "--baseline takes --format text or json"), "%s", err);

	/* nothing grew between a snapshot and itself */
	rc = cli_run((const char *[]){ "diff", f2, f2, NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_not_null(strstr(out, "leakwatch: nothing grew\n"), "%s", out);
	traced_end(&t);

	/* after exit: the segment is still a side */
	rc = cli_run((const char *[]){ "diff", f1, seg, "--kind", "heap", "--format", "json", NULL }, (uid_t)-1, out,
		     sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "%s", err);
	check_grow_json(out);
}

/* one stderr line, naming the file, and exit status 2 */
static void refused(const char *const *args, const char *name, const char *why)
{
	int rc = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "%s %s: status %d, stderr %s", args[1], args[2], rc, err);
	cr_assert_eq(count_lines(err), 1, "one line: %s", err);
	cr_assert_not_null(strstr(err, name), "names %s: %s", name, err);
	cr_assert_not_null(strstr(err, why), "wanted '%s': %s", why, err);
	cr_assert_eq(out[0], '\0', "nothing on stdout: %s", out);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(cli_diff, bad_input_is_one_line_and_status_2, .timeout = 60)
{
	char good[128], trunc[128], notjson[128], other[128], empty[128], missing[128];
	path_in(good, sizeof good, "good.json");
	path_in(trunc, sizeof trunc, "trunc.json");
	path_in(notjson, sizeof notjson, "notes.txt");
	path_in(other, sizeof other, "other.json");
	path_in(empty, sizeof empty, "empty.json");
	path_in(missing, sizeof missing, "missing.json");
	write_file(good, "{\"leakwatch\":1,\"pid\":1,\"heap\":{\"mode\":\"full\",\"groups\":[]}}\n");
	write_file(trunc, "{\"leakwatch\":1,\"pid\":1,\"heap\":{\"mode\":\"full\",\"gro");
	write_file(notjson, "just some text\n");
	write_file(other, "{\"name\": \"package.json\"}");
	write_file(empty, "");

	refused((const char *[]){ "diff", missing, good, NULL }, missing, "no such file");
	refused((const char *[]){ "diff", good, trunc, NULL }, trunc, "not valid JSON: unexpected end of input (truncated?)");
	refused((const char *[]){ "diff", notjson, good, NULL }, notjson, "neither a JSON report nor a usable segment");
	refused((const char *[]){ "diff", good, other, NULL }, other, "not a leakwatch report");
	refused((const char *[]){ "diff", empty, good, NULL }, empty, "empty file");
	refused((const char *[]){ "diff", good, lw_dead_pid_str(), NULL }, lw_dead_pid_str(), "no process");
	refused((const char *[]){ "diff", good, good, "--kind", "sockets", NULL }, good, "no sockets data");
	refused((const char *[]){ "diff", good, NULL }, "diff", "missing NEW");
	refused((const char *[]){ "diff", NULL }, "diff", "missing OLD and NEW");
	refused((const char *[]){ "diff", good, good, good, NULL }, "diff", "unexpected argument");
	refused((const char *[]){ "diff", good, good, "--format", "folded", NULL }, "diff", "unknown format 'folded'");
	refused((const char *[]){ "diff", good, good, "--min-growth", "0", NULL }, "diff", "bad --min-growth '0'");
	refused((const char *[]){ "report", lw_dead_pid_str(), "--baseline", good, NULL }, lw_dead_pid_str(), "no process");

	/* the good one against itself is fine */
	int rc = cli_run((const char *[]){ "diff", good, good, NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_not_null(strstr(out, "heap: none on either side"), "%s", out);
}

Test(cli_diff, help_and_readme_name_the_command)
{
	int rc = cli_run((const char *[]){ "--help", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0);
	cr_assert_not_null(strstr(out, "leakwatch diff OLD NEW [--kind KIND] [--format FMT] [--min-growth N]"), "%s", out);
	cr_assert_not_null(strstr(out, "options of diff:"), "%s", out);
	cr_assert_not_null(strstr(out, "[--baseline FILE]"), "%s", out);
	char *readme = slurp(LW_SOURCE_DIR "/README.md");
	cr_assert_not_null(readme);
	cr_assert_not_null(strstr(readme, "leakwatch diff OLD NEW"));
	cr_assert_not_null(strstr(readme, "--baseline FILE"));
	free(readme);
}
