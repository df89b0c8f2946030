/* SPDX-License-Identifier: MIT */
/*
 * Reachability (analyzer/lib/reach.c): the classification on hand-built
 * memory, and on real processes against valgrind memcheck's own counts.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "reach.h"
#include "util.h"
#include "lib/fixtures.h"
#include "lib/json.h"
#include "lib/spawn.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define REACH_SRC "tests/fixtures/reach.c"

/* ---- lw_reach_classify on a fake address space -------------------------------------------- */

/* Memory: one local buffer standing for remote addresses [BASE, BASE + size). */
#define BASE 0x100000ull
static unsigned char mem[1 << 16];

static long fake_readv(void *ctx, const struct iovec *local, const struct iovec *remote, size_t n)
{
	(void)ctx;
	long bad = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t a = (uint64_t)(uintptr_t)remote[i].iov_base;
		if (a < BASE || a + remote[i].iov_len > BASE + sizeof mem) {
			memset(local[i].iov_base, 0, local[i].iov_len);
			bad++;
			continue;
		}
		memcpy(local[i].iov_base, mem + (a - BASE), local[i].iov_len);
	}
	return bad;
}

static void put(uint64_t addr, uint64_t v)
{
	memcpy(mem + (addr - BASE), &v, sizeof v);
}

/* blocks at BASE + 0x1000 * (i + 1), 64 bytes each; roots at BASE */
static uint64_t blk(int i)
{
	return BASE + 0x1000ull * (uint64_t)(i + 1);
}

static void classify(struct lw_reach_block *b, int n, unsigned heur)
{
	for (int i = 0; i < n; i++)
		b[i] = (struct lw_reach_block){ .ptr = blk(i), .size = 64, .ns = (uint64_t)i };
	struct lw_reach_range root = { BASE, BASE + 0x100 };
	struct lw_reach_input in = { .readv = fake_readv, .roots = &root, .nroots = 1, .heuristics = heur };
	char err[LW_ERR_MAX];
	cr_assert_eq(lw_reach_classify(b, (size_t)n, &in, NULL, err, sizeof err), 0, "%s", err);
}

Test(reach, classes_of_every_kind)
{
	memset(mem, 0, sizeof mem);
	/* 0: reachable from the root, and 1 through it (start pointers) */
	put(BASE, blk(0));
	put(blk(0) + 8, blk(1));
	/* 2: only an interior pointer from the root: possible; 3 only from 2: possible too */
	put(BASE + 8, blk(2) + 16);
	put(blk(2), blk(3));
	/* 4 -> 5 -> 6: a lost chain; 7 <-> 8: a lost cycle; 9: alone */
	put(blk(4), blk(5));
	put(blk(5) + 16, blk(6) + 40);
	put(blk(7), blk(8));
	put(blk(8), blk(7));
	struct lw_reach_block b[10];
	classify(b, 10, 0);
	const int want[10] = { LW_REACH_REACHABLE, LW_REACH_REACHABLE, LW_REACH_POSSIBLE, LW_REACH_POSSIBLE,
			       LW_REACH_DEFINITE,  LW_REACH_INDIRECT,  LW_REACH_INDIRECT, LW_REACH_DEFINITE,
			       LW_REACH_INDIRECT,  LW_REACH_DEFINITE };
	for (int i = 0; i < 10; i++)
		cr_expect_eq(b[i].cls, want[i], "block %d: %s, want %s", i, lw_reach_name((enum lw_reach)b[i].cls),
			     lw_reach_name((enum lw_reach)want[i]));
}

Test(reach, registers_are_roots_and_a_start_pointer_upgrades_possible)
{
	memset(mem, 0, sizeof mem);
	put(BASE, blk(0) + 8);  /* interior first... */
	put(blk(1), blk(0));    /* ...then a start pointer from a reachable block */
	struct lw_reach_block b[2];
	for (int i = 0; i < 2; i++)
		b[i] = (struct lw_reach_block){ .ptr = blk(i), .size = 64 };
	uint64_t regs[] = { 7, blk(1) };
	struct lw_reach_range root = { BASE, BASE + 0x100 };
	struct lw_reach_input in = { .readv = fake_readv, .roots = &root, .nroots = 1, .words = regs, .nwords = 2 };
	char err[LW_ERR_MAX];
	cr_assert_eq(lw_reach_classify(b, 2, &in, NULL, err, sizeof err), 0, "%s", err);
	cr_expect_eq(b[1].cls, LW_REACH_REACHABLE, "a register is a root");
	cr_expect_eq(b[0].cls, LW_REACH_REACHABLE, "possible, then a start pointer: reachable");
}

Test(reach, length64_heuristic_and_glibc_next_chunk)
{
	memset(mem, 0, sizeof mem);
	put(BASE, blk(0) + 8);    /* interior pointer at +8 ... */
	put(blk(0), 56);          /* ...to a block whose first word is its length - 8 */
	put(BASE + 8, blk(1) + 8); /* the same shape without the length */
	struct lw_reach_block b[2];
	classify(b, 2, LW_REACH_HEUR_LENGTH64);
	cr_expect_eq(b[0].cls, LW_REACH_REACHABLE);
	cr_expect_eq(b[0].heuristic, 2, "reachable through length64");
	cr_expect_eq(b[1].cls, LW_REACH_POSSIBLE);
	classify(b, 2, 0);
	cr_expect_eq(b[0].cls, LW_REACH_POSSIBLE, "without heuristics an interior pointer is only possible");

	/* a 72-byte block in an 80-byte chunk: malloc's pointer to the next
	 * chunk's header points 64 bytes into it, and is not the program's */
	memset(mem, 0, sizeof mem);
	struct lw_reach_block c[1] = { { .ptr = blk(0), .size = 72 } };
	put(blk(0) - 8, 80 | 1);         /* size word: 80, PREV_INUSE */
	put(BASE, blk(0) - 16 + 80);     /* a bin or the top pointing at the next chunk */
	struct lw_reach_range root = { BASE, BASE + 0x100 };
	struct lw_reach_input in = { .readv = fake_readv, .roots = &root, .nroots = 1, .glibc_chunks = 1 };
	char err[LW_ERR_MAX];
	cr_assert_eq(lw_reach_classify(c, 1, &in, NULL, err, sizeof err), 0, "%s", err);
	cr_expect_eq(c[0].cls, LW_REACH_DEFINITE, "the next chunk's header is malloc's pointer");
	put(BASE, blk(0) + 56);
	cr_assert_eq(lw_reach_classify(c, 1, &in, NULL, err, sizeof err), 0, "%s", err);
	cr_expect_eq(c[0].cls, LW_REACH_POSSIBLE, "any other interior pointer still counts");
}

Test(reach, kinds_parse)
{
	unsigned m;
	cr_assert_eq(lw_reach_kinds_parse("definite,possible", &m), 0);
	cr_expect_eq(m, LW_REACH_BIT(LW_REACH_DEFINITE) | LW_REACH_BIT(LW_REACH_POSSIBLE));
	cr_assert_eq(lw_reach_kinds_parse("all", &m), 0);
	cr_expect_eq(m, LW_REACH_KINDS_ALL);
	cr_assert_eq(lw_reach_kinds_parse("none", &m), 0);
	cr_expect_eq(m, 0u);
	cr_expect_eq(lw_reach_kinds_parse("definite,", &m), -1);
	cr_expect_eq(lw_reach_kinds_parse("lost", &m), -1);
	cr_expect_eq(lw_reach_kinds_parse("", &m), -1);
}

/* ---- real processes, against valgrind ------------------------------------------------------ */

struct counts {
	long blocks[LW_REACH_NCLASS];
};

/* valgrind memcheck's LEAK SUMMARY (blocks per class) for cmd; freeres off, as
 * the shim cannot run it: libc's buffers stay allocated in both. */
static void valgrind_counts(const char *const *cmd, struct counts *c)
{
	cr_assert(have_program("valgrind"), "valgrind (the reference) is not installed: make deps");
	const char *argv[32] = { "valgrind", "--leak-check=full", "--run-libc-freeres=no", "--run-cxx-freeres=no" };
	int n = 4;
	for (int i = 0; cmd[i] && n < 31; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	struct spawn_opts so = { .timeout_s = 120 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const *)argv, &so), 0);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	static const struct { const char *label; int cls; } L[] = {
		{ "definitely lost: ", LW_REACH_DEFINITE }, { "indirectly lost: ", LW_REACH_INDIRECT },
		{ "possibly lost: ", LW_REACH_POSSIBLE }, { "still reachable: ", LW_REACH_REACHABLE },
	};
	memset(c, 0, sizeof *c);
	const char *none = strstr(r.err, "All heap blocks were freed");
	for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
		const char *p = strstr(r.err, L[i].label);
		if (!p) {
			cr_assert_not_null(none, "no '%s' in valgrind's output: %s", L[i].label, r.err);
			continue;
		}
		const char *in = strstr(p, " bytes in ");
		cr_assert_not_null(in, "%s", p);
		char digits[32];
		size_t k = 0;
		for (const char *q = in + 10; *q && *q != ' ' && k + 1 < sizeof digits; q++)
			if (*q != ',')
				digits[k++] = *q;
		digits[k] = '\0';
		c->blocks[L[i].cls] = atol(digits);
	}
	cmd_result_free(&r);
}

static void leakwatch_counts(const char *const *opts, const char *const *cmd, struct counts *c, int *status)
{
	struct cmd_result r;
	const char *all[16] = { "--kind", "heap", "--heap", "full" };
	int n = 4;
	for (int i = 0; opts && opts[i]; i++)
		all[n++] = opts[i];
	all[n] = NULL;
	char *text = run_report(&r, NULL, all, cmd);
	cr_assert_not_null(text, "no report: %s", r.err);
	struct tj *j = tj_parse(text);
	cr_assert_not_null(j, "%.300s", text);
	struct tj *h = tj_get(tj_at(tj_get(j, "processes"), 0), "heap");
	struct tj *re = tj_get(h, "reachability");
	cr_assert(re && re->type == TJ_OBJ, "no reachability check in the report: %.2000s\n%s", text, r.err);
	memset(c, 0, sizeof *c);
	for (int k = LW_REACH_DEFINITE; k < LW_REACH_NCLASS; k++)
		c->blocks[k] = (long)tj_num(tj_get(re, lw_reach_name((enum lw_reach)k)), "blocks", -1);
	cr_expect_eq(tj_num(tj_get(re, "not_checked"), "blocks", -1), 0, "every block was checked");
	if (status)
		*status = r.status;
	tj_free(j);
	free(text);
	cmd_result_free(&r);
}

static void expect_same(const struct counts *lw, const struct counts *vg, const char *what)
{
	for (int k = LW_REACH_DEFINITE; k < LW_REACH_NCLASS; k++)
		cr_expect_eq(lw->blocks[k], vg->blocks[k], "%s: %s: leakwatch %ld blocks, valgrind %ld", what,
			     lw_reach_label((enum lw_reach)k), lw->blocks[k], vg->blocks[k]);
}

Test(run_reach, fixture_classes_equal_valgrinds, .timeout = 240)
{
	static const char *const modes[] = { "exit", "_exit", "threads" };
	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		const char *cmd[] = { FIX("reach"), modes[m], NULL };
		struct counts lw, vg;
		leakwatch_counts(NULL, cmd, &lw, NULL);
		valgrind_counts(cmd, &vg);
		expect_same(&lw, &vg, modes[m]);
		if (m < 2) { /* what the fixture builds, independent of both tools */
			cr_expect_eq(lw.blocks[LW_REACH_DEFINITE], 5);
			cr_expect_eq(lw.blocks[LW_REACH_INDIRECT], 7);
			cr_expect_eq(lw.blocks[LW_REACH_POSSIBLE], 1);
			cr_expect_eq(lw.blocks[LW_REACH_REACHABLE], 5);
		}
	}
	/* threads that allocated and exited, their stacks cached by glibc */
	const char *stress[] = { FIX("heap_stress"), "2", "20000", "300", NULL };
	struct counts lw, vg;
	leakwatch_counts(NULL, stress, &lw, NULL);
	valgrind_counts(stress, &vg);
	expect_same(&lw, &vg, "heap_stress");
}

Test(run_reach, real_programs_equal_valgrinds, .timeout = 240)
{
	/* python3 -c pass: interpreter state at exit, pymalloc arenas as roots */
	/* Debian's own: a pyenv shim in PATH is a shell script */
	const char *py[] = { access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3", "-c", "pass", NULL };
	struct counts lw, vg;
	leakwatch_counts(NULL, py, &lw, NULL);
	valgrind_counts(py, &vg);
	expect_same(&lw, &vg, "python3 -c pass");
	/* git log (this checkout): 166 blocks still reachable, none lost; the
	 * run that --fail-on-leak used to fail on 103 of them */
	if (have_program("git") && access(".git", F_OK) == 0) {
		const char *git[] = { "git", "--no-pager", "log", "-3", "--oneline", NULL };
		leakwatch_counts(NULL, git, &lw, NULL);
		valgrind_counts(git, &vg);
		expect_same(&lw, &vg, "git log");
	}
}

Test(run_reach, fail_on_leak_counts_lost_blocks_only, .timeout = 120)
{
	struct counts c;
	int st;
	/* 100 blocks kept in a global: still reachable, no leak */
	const char *kept[] = { FIX("rawfork"), NULL };
	leakwatch_counts((const char *[]){ "--fail-on-leak=heap", NULL }, kept, &c, &st);
	cr_expect_eq(c.blocks[LW_REACH_REACHABLE] >= 100, 1);
	cr_expect_eq(st, 0, "still reachable alone passes");
	leakwatch_counts((const char *[]){ "--fail-on-leak=heap", "--leak-kinds", "all", NULL }, kept, &c, &st);
	cr_expect_eq(st, 1, "--leak-kinds all counts them");
	const char *lost[] = { FIX("reach"), "exit", NULL };
	leakwatch_counts((const char *[]){ "--fail-on-leak=heap", NULL }, lost, &c, &st);
	cr_expect_eq(st, 1, "definitely lost fails");
	leakwatch_counts((const char *[]){ "--fail-on-leak=heap", "--leak-kinds", "none", NULL }, lost, &c, &st);
	cr_expect_eq(st, 0, "--leak-kinds none never fails on heap");
}

Test(run_reach, check_reachable_off_counts_every_block, .timeout = 60)
{
	struct cmd_result r;
	const char *cmd[] = { FIX("rawfork"), NULL };
	char *text = run_report(&r, NULL, (const char *[]){ "--kind", "heap", "--heap", "full", "--check-reachable=no",
							   "--fail-on-leak=heap", NULL },
				cmd);
	cr_assert_not_null(text, "%s", r.err);
	struct tj *j = tj_parse(text);
	struct tj *h = tj_get(tj_at(tj_get(j, "processes"), 0), "heap");
	cr_expect(tj_get(h, "reachability")->type == TJ_NULL, "not checked");
	cr_expect_eq(tj_num(h, "leaked_blocks", -1), 100, "every live program block counts");
	cr_expect_eq(r.status, 1);
	tj_free(j);
	free(text);
	cmd_result_free(&r);
}

Test(run_reach, live_check_pauses_and_resumes, .timeout = 60)
{
	const char *argv[] = { FIX("reach"), "hold", NULL };
	char pre[PATH_MAX + 16], dirv[PATH_MAX + 16];
	char dir[PATH_MAX];
	lw_tmpdir(dir, sizeof dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	snprintf(dirv, sizeof dirv, "LEAKWATCH_DIR=%s", dir);
	char *env[] = { pre, dirv, "LEAKWATCH_HEAP=full", NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 60 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const *)argv, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1, "fixture never got ready");
	char seg[PATH_MAX + 32];
	snprintf(seg, sizeof seg, "%s/leakwatch.%d", dir, (int)sp.pid);
	static char out[1 << 20], err[4096];
	const char *args[] = { "report", seg, "--check-reachable", "--kind", "heap", "--format", "json", NULL };
	int st = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(st, 0, "%s", err);
	struct tj *j = tj_parse(out);
	cr_assert_not_null(j, "%.300s", out);
	struct tj *re = tj_get(tj_get(j, "heap"), "reachability");
	cr_assert(re && re->type == TJ_OBJ, "%.1000s", out);
	cr_expect_eq(tj_num(tj_get(re, "definite"), "blocks", -1), 5);
	cr_expect_eq(tj_num(tj_get(re, "indirect"), "blocks", -1), 7);
	cr_expect_eq(tj_num(tj_get(re, "possible"), "blocks", -1), 1);
	cr_expect_eq(tj_num(tj_get(re, "reachable"), "blocks", -1), 5);
	cr_expect_geq(tj_num(re, "pause_ms", -1), 0);
	/* the groups name their lines */
	int line = marker_line(REACH_SRC, "reach.possible");
	int found = 0;
	struct tj *groups = tj_get(tj_get(j, "heap"), "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		struct tj *f0 = tj_at(tj_get(g, "stack"), 0);
		if (tj_str(g, "reach") && !strcmp(tj_str(g, "reach"), "possible") && tj_num(f0, "line", 0) == line)
			found = 1;
	}
	cr_expect(found, "the possibly lost block is at reach.c:%d: %.2000s", line, out);
	tj_free(j);
	/* the process runs on as before: it frees, exits 0 */
	cr_assert_eq(write(sp.in, "\n", 1), 1);
	close(sp.in);
	sp.in = -1;
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0, "the fixture went on after the pause: %s", r.err);
	cr_expect_str_eq(r.out, "ready\n");
	cmd_result_free(&r);

	/* a process that is gone cannot be checked: one line, exit 2 */
	st = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_expect_eq(st, 2, "%s", err);
	cr_expect(strstr(err, "needs a running process") && count_lines(err) == 1, "%s", err);
	lw_rmdir(dir);
}

Test(run_reach, bad_leak_kinds_is_a_usage_error)
{
	char out[4096], err[4096];
	const char *args[] = { "run", "--leak-kinds", "lost", "--", "true", NULL };
	int st = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_expect_eq(st, 2, "%s", err);
	cr_expect(strstr(err, "bad --leak-kinds 'lost'"), "%s", err);
	const char *args2[] = { "run", "--check-reachable=maybe", "--", "true", NULL };
	st = cli_run(args2, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_expect_eq(st, 2, "%s", err);
	cr_expect(strstr(err, "bad --check-reachable 'maybe'"), "%s", err);
}
