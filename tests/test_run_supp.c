/* SPDX-License-Identifier: MIT */
/*
 * Suppressions end to end (issue 12, item 3): `run` and `report` with
 * --suppressions (valgrind's format and LSan's lines, from files and from
 * $LEAKWATCH_SUPPRESSIONS), what the report says each entry took, entries
 * from --gen-suppressions fed back, the built-in set, bad files - and
 * valgrind itself reading the same file for the same program.
 *
 * tests/fixtures/supp.c leaks, each kind from its own function: 10 blocks
 * (640 B) from known_cache and 3 (96 B) from new_leak, definitely lost; 4
 * blocks kept in a global by kept_table; 2 sockets from known_socket and 1
 * from new_socket; 2 descriptors from known_file and 1 from new_file.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fixtures.h"
#include "lib/json.h"
#include "lib/spawn.h"

#define SUPP_FIX LW_BUILD_DIR "/fixtures/supp"

static char tmp[PATH_MAX];

static void setup(void)
{
	lw_tmpdir(tmp, sizeof tmp);
}

static void teardown(void)
{
	lw_rmdir(tmp);
}

TestSuite(run_supp, .init = setup, .fini = teardown, .timeout = 120);

/* tmp/NAME holding text; returns its path (static, one at a time per name slot) */
static const char *write_file(const char *name, const char *text)
{
	static char paths[4][PATH_MAX + 64];
	static int slot;
	char *p = paths[slot++ % 4];
	snprintf(p, PATH_MAX + 64, "%s/%s", tmp, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f, "%s", p);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
	return p;
}

/* The JSON report of `run OPTS -- supp [ARG]`; status in *st.  Caller frees with tj_free. */
static struct tj *run_json(char *const env[], const char *const *opts, const char *arg, int *st)
{
	struct cmd_result r;
	const char *cmd[] = { SUPP_FIX, arg, NULL };
	char *text = run_report(&r, env, opts, cmd);
	cr_assert_not_null(text, "no report: %s", r.err);
	struct tj *j = tj_parse(text);
	cr_assert_not_null(j, "%.400s", text);
	if (st)
		*st = r.status;
	free(text);
	cmd_result_free(&r);
	return j;
}

/* the "suppressions" element named `name` of a JSON array, or NULL */
static const struct tj *use_named(const struct tj *arr, const char *name)
{
	for (size_t i = 0; i < tj_len(arr); i++)
		if (tj_str(tj_at(arr, i), "name") && strcmp(tj_str(tj_at(arr, i), "name"), name) == 0)
			return tj_at(arr, i);
	return NULL;
}

/* A valgrind-format file as valgrind --gen-suppressions writes it for the
 * heap (first frame: its malloc replacement), leakwatch's kinds for the
 * rest, and an LSan line. */
static const char known_supp[] =
	"# known leaks of tests/fixtures/supp.c\n"
	"{\n"
	"   known-cache\n"
	"   Memcheck:Leak\n"
	"   match-leak-kinds: definite\n"
	"   fun:malloc\n"
	"   fun:known_cache\n"
	"   fun:main\n"
	"}\n"
	"{\n"
	"   known-socket\n"
	"   leakwatch:Socket\n"
	"   ...\n"
	"   fun:known_socket\n"
	"}\n"
	"leakwatch-fd:known_file\n";

static void expect_known_silenced(const struct tj *j, const char *heap_name, double heap_line)
{
	cr_expect_eq(tj_num(j, "leaked_heap_blocks", -1), 3, "new_leak's 3 blocks remain");
	cr_expect_eq(tj_num(j, "leaked_heap_bytes", -1), 96);
	cr_expect_eq(tj_num(j, "leaked", -1), 1, "new_socket's socket remains");
	cr_expect_eq(tj_num(j, "leaked_fds", -1), 1, "new_file's descriptor remains");
	const struct tj *uses = tj_get(j, "suppressions");
	const struct tj *h = use_named(uses, heap_name), *s = use_named(uses, "known-socket"),
			*f = use_named(uses, "leakwatch-fd:known_file");
	cr_assert_not_null(h, "no use of '%s'", heap_name);
	cr_expect_eq(tj_num(h, "blocks", -1), 10);
	cr_expect_eq(tj_num(h, "bytes", -1), 640);
	cr_expect_eq(tj_num(h, "sockets", -1), 0);
	cr_expect_eq(tj_num(h, "line", -1), heap_line);
	cr_assert_not_null(s);
	cr_expect_eq(tj_num(s, "sockets", -1), 2);
	cr_expect_eq(tj_num(s, "blocks", -1), 0);
	cr_expect_eq(tj_num(s, "line", -1), 11, "valgrind counts the name line");
	cr_assert_not_null(f);
	cr_expect_eq(tj_num(f, "fds", -1), 2);
	cr_expect_eq(tj_num(f, "line", -1), 16);
	/* per process too */
	const struct tj *p = tj_at(tj_get(j, "processes"), 0);
	cr_expect_eq(tj_num(tj_get(p, "heap"), "suppressed_blocks", -1), 10);
	cr_expect_not_null(use_named(tj_get(p, "suppressions"), heap_name));
}

Test(run_supp, valgrind_entry_and_lsan_line_silence_known_leaks)
{
	const char *f = write_file("known.supp", known_supp);
	int st;
	struct tj *j = run_json(NULL, (const char *[]){ "--fail-on-leak", "--suppressions", f, NULL }, NULL, &st);
	expect_known_silenced(j, "known-cache", 3);
	cr_expect_eq(st, 1, "the new leaks still fail the run");
	tj_free(j);

	/* the heap entry as an LSan line, from the environment; the rest from the file */
	const char *lsan = write_file("lsan.supp", "# LeakSanitizer's syntax\nleak:known_cache\n");
	char envv[PATH_MAX + 64];
	snprintf(envv, sizeof envv, "LEAKWATCH_SUPPRESSIONS=%s", lsan);
	char *env[] = { envv, NULL };
	/* nine comment lines: the entries keep the lines they have in known_supp */
	const char *rest = write_file("rest.supp", "# 1\n# 2\n# 3\n# 4\n# 5\n# 6\n# 7\n# 8\n# 9\n"
						   "{\n   known-socket\n   leakwatch:Socket\n   ...\n"
						   "   fun:known_socket\n}\nleakwatch-fd:known_file\n");
	j = run_json(env, (const char *[]){ "--suppressions", rest, NULL }, NULL, &st);
	expect_known_silenced(j, "leak:known_cache", 2);
	cr_expect_eq(st, 0, "no --fail-on-leak: the command's status");
	tj_free(j);
}

/* valgrind's "suppressed: B bytes in N blocks" and "definitely lost: ..." numbers */
static void vg_line(const char *err, const char *label, long *bytes, long *blocks)
{
	const char *p = strstr(err, label);
	cr_assert_not_null(p, "no '%s' in valgrind's output:\n%s", label, err);
	p += strlen(label);
	char num[2][32];
	size_t k[2] = { 0, 0 };
	int which = 0;
	for (; *p && *p != '\n' && which < 2; p++) {
		if (*p >= '0' && *p <= '9') {
			if (k[which] + 1 < sizeof num[which])
				num[which][k[which]++] = *p;
		} else if (*p == ',') {
			continue;
		} else if (k[which]) {
			num[which][k[which]] = '\0';
			which++;
		}
	}
	cr_assert_eq(which, 2, "%s", label);
	*bytes = atol(num[0]);
	*blocks = atol(num[1]);
}

Test(run_supp, valgrind_reads_the_same_file_the_same_way)
{
	cr_assert(have_program("valgrind"), "valgrind (the reference) is not installed: make deps");
	/* valgrind ignores leakwatch:KIND entries (another tool's) but not LSan lines */
	char vgtext[sizeof known_supp];
	snprintf(vgtext, sizeof vgtext, "%s", known_supp);
	*strstr(vgtext, "leakwatch-fd:") = '\0';
	const char *f = write_file("vg.supp", vgtext);
	char sarg[PATH_MAX + 32];
	snprintf(sarg, sizeof sarg, "--suppressions=%s", f);
	const char *argv[] = { "valgrind", "-v", "--leak-check=full", "--run-libc-freeres=no", sarg, SUPP_FIX, NULL };
	struct spawn_opts so = { .timeout_s = 120 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const *)argv, &so), 0);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	long vsb, vsn, vdb, vdn;
	vg_line(r.err, "suppressed: ", &vsb, &vsn);
	vg_line(r.err, "definitely lost: ", &vdb, &vdn);
	cr_expect_not_null(strstr(r.err, "used_suppression:      1 known-cache "), "%s", r.err);
	char where[PATH_MAX + 32];
	snprintf(where, sizeof where, "%s:3 suppressed: 640 bytes in 10 blocks", f);
	cr_expect_not_null(strstr(r.err, where), "valgrind names the name line:\n%s", r.err);
	cmd_result_free(&r);

	int st;
	struct tj *j = run_json(NULL, (const char *[]){ "--suppressions", f, NULL }, NULL, &st);
	const struct tj *h = tj_get(tj_at(tj_get(j, "processes"), 0), "heap");
	cr_expect_eq(tj_num(h, "suppressed_blocks", -1), (double)vsn);
	cr_expect_eq(tj_num(h, "suppressed_bytes", -1), (double)vsb);
	const struct tj *def = tj_get(tj_get(h, "reachability"), "definite");
	cr_expect_eq(tj_num(def, "blocks", -1), (double)vdn);
	cr_expect_eq(tj_num(def, "bytes", -1), (double)vdb);
	const struct tj *u = use_named(tj_get(j, "suppressions"), "known-cache");
	cr_assert_not_null(u);
	cr_expect_eq(tj_num(u, "line", -1), 3, "the line valgrind gives");
	tj_free(j);
}

/* Every "{ ... }" entry (valgrind) or every leak:-style line (lsan) of a text report. */
static char *extract_entries(const char *text, int lsan)
{
	size_t cap = strlen(text) + 1, n = 0;
	char *out = calloc(1, cap);
	int in = 0;
	for (const char *l = text; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) + 1 : strlen(l);
		int take;
		if (lsan)
			take = strncmp(l, "leak:", 5) == 0 || strncmp(l, "leakwatch-socket:", 17) == 0 ||
			       strncmp(l, "leakwatch-fd:", 13) == 0;
		else {
			if (strncmp(l, "{\n", 2) == 0)
				in = 1;
			take = in;
			if (strncmp(l, "}\n", 2) == 0)
				in = 0;
		}
		if (take) {
			memcpy(out + n, l, len);
			n += len;
		}
		l += len;
	}
	out[n] = '\0';
	return out;
}

static void gen_round_trip(const char *gen_opt, int lsan, int want_entries)
{
	struct cmd_result r;
	const char *cmd[] = { SUPP_FIX, NULL };
	lw_run_timed(&r, NULL, (const char *[]){ gen_opt, "--fail-on-leak", NULL }, cmd, 120);
	cr_assert_eq(r.status, 1, "%s", r.err);
	/* the text report is on stderr (stdout is the command's) */
	char *entries = extract_entries(r.err, lsan);
	int n = 0;
	for (const char *p = entries; (p = strstr(p, lsan ? "\n" : "}\n")); p++)
		n++;
	cr_expect_eq(n, want_entries, "one entry per leak group:\n%s\n--- report:\n%s", entries, r.err);
	const char *f = write_file(lsan ? "gen-lsan.supp" : "gen.supp", entries);
	cmd_result_free(&r);

	int st;
	struct tj *j = run_json(NULL, (const char *[]){ "--fail-on-leak", "--suppressions", f, NULL }, NULL, &st);
	cr_expect_eq(st, 0, "the generated entries silence the run:\n%s", entries);
	cr_expect_eq(tj_num(j, "leaked", -1), 0);
	cr_expect_eq(tj_num(j, "leaked_fds", -1), 0);
	cr_expect_eq(tj_num(j, "leaked_heap_blocks", -1), 0);
	double blocks = 0, socks = 0, fds = 0;
	const struct tj *uses = tj_get(j, "suppressions");
	for (size_t i = 0; i < tj_len(uses); i++) {
		blocks += tj_num(tj_at(uses, i), "blocks", 0);
		socks += tj_num(tj_at(uses, i), "sockets", 0);
		fds += tj_num(tj_at(uses, i), "fds", 0);
	}
	cr_expect_eq(blocks, 13, "every lost block, none of the reachable ones");
	cr_expect_eq(socks, 3);
	cr_expect_eq(fds, 3);
	tj_free(j);
	free(entries);
}

Test(run_supp, generated_valgrind_entries_fed_back_silence_a_run)
{
	gen_round_trip("--gen-suppressions", 0, 6);
}

Test(run_supp, generated_lsan_lines_fed_back_silence_a_run)
{
	gen_round_trip("--gen-suppressions=lsan", 1, 6);
}

Test(run_supp, generated_entries_in_json_groups)
{
	struct tj *j = run_json(NULL, (const char *[]){ "--gen-suppressions", NULL }, NULL, NULL);
	const struct tj *p = tj_at(tj_get(j, "processes"), 0);
	const struct tj *hg = tj_get(tj_get(p, "heap"), "groups");
	size_t with = 0;
	for (size_t i = 0; i < tj_len(hg); i++) {
		const char *s = tj_str(tj_at(hg, i), "suppression");
		const char *reach = tj_str(tj_at(hg, i), "reach");
		if (s) {
			with++;
			cr_expect_not_null(strstr(s, "leakwatch:Heap\n"), "%s", s);
			cr_expect_not_null(strstr(s, "match-leak-kinds: definite\n"), "%s", s);
		} else {
			cr_expect_str_eq(reach, "reachable", "only groups that are no leak have none");
		}
	}
	cr_expect_eq(with, 2, "known_cache and new_leak");
	tj_free(j);
}

Test(run_supp, match_leak_kinds_limits_an_entry_to_its_classes)
{
	const char *f = write_file("kinds.supp", "{\n   kept-reachable\n   leakwatch:Heap\n   match-leak-kinds: reachable\n"
						 "   fun:kept_table\n}\n"
						 "{\n   cache-if-reachable\n   leakwatch:Heap\n   match-leak-kinds: reachable\n"
						 "   fun:known_cache\n}\n");
	struct tj *j = run_json(NULL, (const char *[]){ "--suppressions", f, NULL }, NULL, NULL);
	const struct tj *uses = tj_get(j, "suppressions");
	cr_expect_eq(tj_num(use_named(uses, "kept-reachable"), "blocks", -1), 4);
	cr_expect_null(use_named(uses, "cache-if-reachable"), "known_cache's blocks are definitely lost");
	cr_expect_eq(tj_num(j, "leaked_heap_blocks", -1), 13);
	tj_free(j);
}

Test(run_supp, all_shows_suppressed_groups_with_their_entry)
{
	const char *f = write_file("known.supp", known_supp);
	struct cmd_result r;
	const char *cmd[] = { SUPP_FIX, NULL };
	lw_run_timed(&r, NULL, (const char *[]){ "--suppressions", f, NULL }, cmd, 120);
	cr_expect_null(strstr(r.err, "known_cache "), "hidden without --all:\n%s", r.err);
	cr_expect_not_null(strstr(r.err, "SUPPRESSED 10 blocks (640 B) by 'known-cache' ("), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "SUPPRESSED 2 sockets by 'known-socket' ("), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "leakwatch: suppressed 10 heap blocks (640 B) by 'known-cache' ("), "%s",
			   r.err);
	cr_expect_not_null(strstr(r.err, "suppressed 10 blocks (640 B)"), "in the LEAK SUMMARY:\n%s", r.err);
	cmd_result_free(&r);
	lw_run_timed(&r, NULL, (const char *[]){ "--all", "--suppressions", f, NULL }, cmd, 120);
	cr_expect_not_null(strstr(r.err, "SUPPRESSED 10 blocks  640 B live, definitely lost"), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "SUPPRESSED  2  UDP"), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "SUPPRESSED  2  /dev/null (file)"), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "  suppressed by 'known-cache' ("), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "known_cache "), "%s", r.err);
	cmd_result_free(&r);
}

Test(run_supp, builtin_set_and_no_default_suppressions)
{
	/* the stdio buffer of printf: kept by libc, silenced by the built-in set */
	struct tj *j = run_json(NULL, (const char *[]){ "--all", "--check-reachable=no", NULL }, "print", NULL);
	const struct tj *u = use_named(tj_get(j, "suppressions"), "leakwatch-runtime-stdio-buffer");
	cr_assert_not_null(u, "the built-in entry is named with --all");
	cr_expect_eq(tj_num(u, "blocks", -1), 1);
	cr_expect_eq(tj_get(u, "default")->type, TJ_BOOL);
	cr_expect_eq(tj_num(u, "default", 0), 1);
	cr_expect_eq(tj_num(j, "leaked_heap_blocks", -1), 17, "13 lost + 4 kept, not the buffer");
	tj_free(j);
	j = run_json(NULL, (const char *[]){ "--no-default-suppressions", "--check-reachable=no", NULL }, "print", NULL);
	cr_expect_eq(tj_num(j, "leaked_heap_blocks", -1), 18, "the buffer counts without the built-in set");
	cr_expect_eq(tj_len(tj_get(j, "suppressions")), 0);
	tj_free(j);
}

Test(run_supp, report_applies_them_to_a_kept_segment)
{
	const char *f = write_file("known.supp", known_supp);
	struct cmd_result r;
	const char *cmd[] = { SUPP_FIX, NULL };
	char dirv[PATH_MAX + 32];
	snprintf(dirv, sizeof dirv, "LEAKWATCH_DIR=%s/segs", tmp);
	char *env[] = { dirv, NULL };
	mkdir(strchr(dirv, '=') + 1, 0700);
	lw_run_timed(&r, env, (const char *[]){ "--keep", NULL }, cmd, 120);
	const char *k = strstr(r.err, "segments kept in ");
	cr_assert_not_null(k, "%s", r.err);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%.*s", (int)strcspn(k + 17, "\n"), k + 17);
	cmd_result_free(&r);
	char seg[PATH_MAX + 64];
	struct cmd_result ls;
	run_cmd(&ls, (char *const[]){ "sh", "-c", "ls \"$0\" | grep '^leakwatch[.][0-9]*$' | head -1", dir, NULL }, NULL, 10);
	snprintf(seg, sizeof seg, "%s/%.*s", dir, (int)strcspn(ls.out, "\n"), ls.out);
	cmd_result_free(&ls);
	static char out[1 << 20], err[4096];
	const char *args[] = { "report", seg, "--format", "json", "--suppressions", f, NULL };
	cr_assert_eq(cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err), 0, "%s", err);
	struct tj *j = tj_parse(out);
	cr_assert_not_null(j, "%.300s", out);
	const struct tj *uses = tj_get(j, "suppressions");
	cr_expect_eq(tj_num(use_named(uses, "known-socket"), "sockets", -1), 2);
	cr_expect_eq(tj_num(use_named(uses, "leakwatch-fd:known_file"), "fds", -1), 2);
	cr_expect_eq(tj_num(use_named(uses, "known-cache"), "blocks", -1), 10);
	cr_expect_eq(tj_len(tj_get(j, "groups")), 1, "only new_socket's group is listed");
	tj_free(j);
	rm_rf(dir);
}

/* One line on stderr naming the problem, exit status 2, and the command never run. */
static void expect_bad(const char *const *opts, char *const env[], const char *want)
{
	char marker[PATH_MAX + 16];
	snprintf(marker, sizeof marker, "%s/ran", tmp);
	unlink(marker);
	struct cmd_result r;
	const char *cmd[] = { "touch", marker, NULL };
	lw_run_timed(&r, env, opts, cmd, 30);
	cr_expect_eq(r.status, 2, "%s", r.err);
	cr_expect_eq(count_lines(r.err), 1, "one line: %s", r.err);
	cr_expect_not_null(strstr(r.err, want), "'%s' not in: %s", want, r.err);
	cr_expect_neq(access(marker, F_OK), 0, "the command ran despite the bad suppressions");
	cmd_result_free(&r);
}

Test(run_supp, bad_files_are_one_line_errors_before_the_command_runs)
{
	char missing[PATH_MAX + 16];
	snprintf(missing, sizeof missing, "%s/nope.supp", tmp);
	expect_bad((const char *[]){ "--suppressions", missing, NULL }, NULL, "nope.supp: No such file or directory");
	const char *bad = write_file("bad.supp", "{\n   x\n   leakwatch:Heap\n   fun:a\n");
	expect_bad((const char *[]){ "--suppressions", bad, NULL }, NULL, "bad.supp:1: unterminated suppression 'x'");
	const char *kind = write_file("kind.supp", "{\n   y\n   leakwatch:Heap\n   match-leak-kinds: lost\n   fun:a\n}\n");
	expect_bad((const char *[]){ "--suppressions", kind, NULL }, NULL, "kind.supp:4: unknown leak kind 'lost'");
	expect_bad((const char *[]){ "--suppressions", "/dev/zero", NULL }, NULL,
		   "/dev/zero: not a regular file or a pipe");
	/* a FIFO nobody writes to: read as empty at once, never a hang */
	char fifo[PATH_MAX + 16];
	snprintf(fifo, sizeof fifo, "%s/fifo", tmp);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	struct cmd_result fr;
	lw_run_timed(&fr, NULL, (const char *[]){ "--suppressions", fifo, NULL }, (const char *[]){ "true", NULL }, 30);
	cr_expect_eq(fr.status, 0, "%s", fr.err);
	cr_expect(!fr.timed_out);
	cmd_result_free(&fr);
	expect_bad((const char *[]){ "--suppressions", tmp, NULL }, NULL, "Is a directory");
	char envv[PATH_MAX + 64];
	snprintf(envv, sizeof envv, "LEAKWATCH_SUPPRESSIONS=%s", missing);
	expect_bad(NULL, (char *[]){ envv, NULL }, "(from $LEAKWATCH_SUPPRESSIONS)");
	expect_bad((const char *[]){ "--gen-suppressions=xml", NULL }, NULL, "bad --gen-suppressions 'xml'");
	/* report too */
	static char out[4096], err[4096];
	const char *args[] = { "report", lw_dead_pid_str(), "--suppressions", missing, NULL };
	cr_expect_eq(cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err), 2);
	cr_expect_eq(count_lines(err), 1, "%s", err);
}
