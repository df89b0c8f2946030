/*
 * Heap tracking end to end: fixtures with leaks of known count and size at
 * known lines, run under the real shim in full and sampled mode, checked
 * through `leakwatch run --format json --kind heap`.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>

#include "classify.h"
#include "heapgroups.h"
#include "kernel.h"
#include "present.h"
#include "names.h"
#include "render.h"
#include "report.h"
#include "segdir.h"
#include "snapshot.h"
#include "symbolize.h"
#include "lib/json.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define HEAP_SRC "tests/fixtures/heap_leak.c"

/* `leakwatch run --kind heap --format json [opts] -- cmd` with extra env, parsed */
static struct tj *heap_run(struct cmd_result *r, char *const env[], const char *const *opts,
			   const char *const *cmd)
{
	const char *all[32] = { "--kind", "heap" };
	int n = 2;
	for (int i = 0; opts && opts[i] && n < 31; i++)
		all[n++] = opts[i];
	all[n] = NULL;
	char *text = run_report(r, env, all, cmd);
	cr_assert_not_null(text, "no report; stderr: %s", r->err);
	struct tj *j = tj_parse(text);
	cr_assert_not_null(j, "invalid JSON: %.500s", text);
	free(text);
	return j;
}

static struct tj *heap_of(struct tj *j)
{
	struct tj *p = tj_at(tj_get(j, "processes"), 0);
	cr_assert_not_null(p, "no process");
	struct tj *h = tj_get(p, "heap");
	cr_assert_not_null(h, "no heap section");
	return h;
}

/* the first frame of a stack whose function is `func`, or NULL */
static struct tj *frame_named(struct tj *stack, const char *func)
{
	for (size_t i = 0; i < tj_len(stack); i++) {
		const char *f = tj_str(tj_at(stack, i), "function");
		if (f && !strcmp(f, func))
			return tj_at(stack, i);
	}
	return NULL;
}

/* the group whose first frame with a known file is `func` at `line` */
static struct tj *group_at(struct tj *heap, const char *func, int line)
{
	struct tj *groups = tj_get(heap, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		struct tj *st = tj_get(g, "stack");
		for (size_t k = 0; k < tj_len(st); k++) {
			struct tj *f = tj_at(st, k);
			if (!tj_str(f, "file"))
				continue; /* allocator frames in libc/libstdc++ */
			if (tj_str(f, "function") && !strcmp(tj_str(f, "function"), func) &&
			    (int)tj_num(f, "line", -1) == line)
				return g;
			break;
		}
	}
	return NULL;
}

Test(run_heap, full_mode_exact_count_and_bytes, .timeout = 60)
{
	struct cmd_result r;
	const char *opts[] = { "--heap", "full", "--fail-on-leak", NULL };
	const char *cmd[] = { FIX("heap_leak"), "basic", "250", "72", NULL };
	struct tj *j = heap_run(&r, NULL, opts, cmd);
	cr_assert_eq(r.status, 1, "heap leak fails the run: %s", r.err);
	struct tj *h = heap_of(j);
	cr_assert_str_eq(tj_str(h, "mode"), "full");
	cr_assert(!tj_get(h, "estimated")->num);
	int line = marker_line(HEAP_SRC, "heap.make_leak");
	struct tj *g = group_at(h, "make_leak", line);
	cr_assert_not_null(g, "no group at make_leak:%d", line);
	cr_assert_eq(tj_num(g, "count", -1), 250);
	cr_assert_eq(tj_num(g, "bytes", -1), 250 * 72);
	cr_assert_eq(tj_num(g, "total_allocated_bytes", -1), 250 * 72, "totals flushed at exit");
	/* churn() allocated and freed 30000 blocks: none of them is left */
	cr_assert_eq(tj_num(j, "leaked_heap_blocks", -1), 250, "only make_leak's blocks leak");
	cr_assert_eq(tj_num(j, "leaked_heap_bytes", -1), 250 * 72);
	tj_free(j);
	cmd_result_free(&r);
}

Test(run_heap, every_entry_point_recorded_at_its_line, .timeout = 60)
{
	static const struct { const char *mark; size_t size; } api[] = {
		{ "heap.malloc", 101 }, { "heap.calloc", 102 }, { "heap.realloc", 103 },
		{ "heap.reallocarray", 104 }, { "heap.posix_memalign", 105 },
		{ "heap.aligned_alloc", 128 }, { "heap.memalign", 107 }, { "heap.valloc", 108 },
		{ "heap.pvalloc", 109 },
	};
	struct cmd_result r;
	const char *cmd[] = { FIX("heap_leak"), "apis", NULL };
	struct tj *j = heap_run(&r, NULL, NULL, cmd);
	cr_assert_eq(tj_num(tj_get(j, "run"), "exit_status", -1), 0, "fixture failed: %s", r.out);
	struct tj *h = heap_of(j);
	for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
		int line = marker_line(HEAP_SRC, api[i].mark);
		struct tj *g = group_at(h, "apis", line);
		cr_assert_not_null(g, "%s: no group at apis:%d", api[i].mark, line);
		cr_assert_eq(tj_num(g, "count", -1), 1, "%s", api[i].mark);
		cr_assert_eq(tj_num(g, "bytes", -1), (double)api[i].size, "%s: size %g", api[i].mark,
			     tj_num(g, "bytes", -1));
	}
	/* realloc moved the 10-byte block: nothing is left at the malloc(10) */
	cr_assert_eq(tj_num(j, "leaked_heap_blocks", -1), 9);
	tj_free(j);
	cmd_result_free(&r);
}

Test(run_heap, failed_allocations_not_recorded, .timeout = 60)
{
	struct cmd_result r;
	const char *cmd[] = { FIX("heap_leak"), "failures", NULL };
	struct tj *j = heap_run(&r, NULL, NULL, cmd);
	cr_assert_eq(tj_num(tj_get(j, "run"), "exit_status", -1), 0, "fixture failed: %s %s", r.out, r.err);
	struct tj *h = heap_of(j);
	cr_assert_eq(tj_num(j, "leaked_heap_blocks", -1), 1, "only the kept block");
	struct tj *g = group_at(h, "failures", marker_line(HEAP_SRC, "heap.keep"));
	cr_assert_not_null(g, "the block whose realloc failed stays at its malloc line");
	cr_assert_eq(tj_num(g, "bytes", -1), 777, "with its original size");
	tj_free(j);
	cmd_result_free(&r);
}

Test(run_heap, cxx_new_demangled, .timeout = 60)
{
	struct cmd_result r;
	const char *cmd[] = { FIX("heap_cxx"), "4", NULL };
	struct tj *j = heap_run(&r, NULL, NULL, cmd);
	struct tj *h = heap_of(j);
	int line = marker_line("tests/fixtures/heap_cxx.cc", "cxx.new");
	struct tj *g = group_at(h, "demo::Server::accept_session(int)", line);
	cr_assert_not_null(g, "no group at demo::Server::accept_session(int):%d", line);
	cr_assert_eq(tj_num(g, "count", -1), 4);
	cr_assert_eq(tj_num(g, "bytes", -1), 4 * 204);
	cr_assert_not_null(frame_named(tj_get(g, "stack"), "demo::Server::handle(int)"));
	tj_free(j);
	cmd_result_free(&r);
}

/* Two callers at the same depth reach one allocating function: the call-site
 * cache must tell them apart, and must give the same answer as a full unwind
 * every time. */
static void paths_expect(struct tj *h)
{
	int leaf = marker_line(HEAP_SRC, "heap.leaf");
	size_t a = 0, b = 0, rec = 0, rec_groups = 0;
	struct tj *groups = tj_get(h, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i), *st = tj_get(g, "stack");
		struct tj *f0 = tj_at(st, 0), *f1 = tj_at(st, 1);
		if (!f0 || !tj_str(f0, "function") || strcmp(tj_str(f0, "function"), "leaf_alloc"))
			continue;
		cr_assert_eq((int)tj_num(f0, "line", -1), leaf);
		const char *caller = tj_str(f1, "function");
		if (!strcmp(caller, "via_a")) {
			a += (size_t)tj_num(g, "count", 0);
			cr_assert_eq((int)tj_num(f1, "line", -1), marker_line(HEAP_SRC, "heap.via_a"));
		} else if (!strcmp(caller, "via_b")) {
			b += (size_t)tj_num(g, "count", 0);
			cr_assert_eq((int)tj_num(f1, "line", -1), marker_line(HEAP_SRC, "heap.via_b"));
		} else if (!strcmp(caller, "recurse")) {
			rec += (size_t)tj_num(g, "count", 0);
			rec_groups++;
			/* depth d: 1 + d recurse frames, then paths */
			size_t depth = 0;
			while (tj_str(tj_at(st, 1 + depth), "function") &&
			       !strcmp(tj_str(tj_at(st, 1 + depth), "function"), "recurse"))
				depth++;
			cr_assert_eq(tj_num(g, "count", -1), 10, "10 blocks per recursion depth");
			cr_assert_str_eq(tj_str(tj_at(st, 1 + depth), "function"), "paths");
		}
	}
	cr_assert_eq(a, 500, "via_a: %zu", a);
	cr_assert_eq(b, 500, "via_b: %zu", b);
	cr_assert_eq(rec, 100);
	cr_assert_eq(rec_groups, 10, "one stack per recursion depth");
}

Test(run_heap, call_site_cache_matches_full_unwind, .timeout = 60)
{
	for (int cache = 1; cache >= 0; cache--) {
		struct cmd_result r;
		char *env[] = { cache ? "LEAKWATCH_STACK_CACHE=1" : "LEAKWATCH_STACK_CACHE=0", NULL };
		const char *cmd[] = { FIX("heap_leak"), "paths", NULL };
		struct tj *j = heap_run(&r, env, NULL, cmd);
		paths_expect(heap_of(j));
		tj_free(j);
		cmd_result_free(&r);
	}
}

/*
 * Sampled mode: 20000 blocks of 16 KiB at the default mean of 512 KiB
 * between samples.  Each block is sampled with p = 1 - exp(-16/512) = 0.0308,
 * so about 616 samples; the estimate N' = samples / p has a relative
 * standard error sqrt((1 - p) / (N p)) = 3.9%.  The bound asserted is 20%
 * (5 standard errors): a real bug (unweighted samples, a wrong p) misses it
 * by far, chance does not reach it.
 */
#define SAMPLED_N 20000
#define SAMPLED_SIZE 16384
#define SAMPLED_BOUND 0.20

Test(run_heap, sampled_estimate_within_bound, .timeout = 120)
{
	struct cmd_result r;
	const char *opts[] = { "--heap", "sampled", NULL };
	char n[16], sz[16];
	snprintf(n, sizeof n, "%d", SAMPLED_N);
	snprintf(sz, sizeof sz, "%d", SAMPLED_SIZE);
	const char *cmd[] = { FIX("heap_leak"), "basic", n, sz, NULL };
	struct tj *j = heap_run(&r, NULL, opts, cmd);
	struct tj *h = heap_of(j);
	cr_assert_str_eq(tj_str(h, "mode"), "sampled");
	cr_assert(tj_get(h, "estimated")->num, "sampled numbers are marked as estimates");
	cr_assert_eq(tj_num(h, "sample_bytes", -1), 512 * 1024);
	struct tj *g = group_at(h, "make_leak", marker_line(HEAP_SRC, "heap.make_leak"));
	cr_assert_not_null(g, "the large leak is found with its stack");
	double count = tj_num(g, "count", -1), bytes = tj_num(g, "bytes", -1);
	cr_assert_lt(fabs(count - SAMPLED_N) / SAMPLED_N, SAMPLED_BOUND, "estimated %g blocks of %d",
		     count, SAMPLED_N);
	cr_assert_lt(fabs(bytes - (double)SAMPLED_N * SAMPLED_SIZE) / ((double)SAMPLED_N * SAMPLED_SIZE),
		     SAMPLED_BOUND, "estimated %g bytes", bytes);
	cr_assert_lt(tj_num(g, "samples", 1e9), SAMPLED_N / 10, "sampled, not recorded in full");
	tj_free(j);
	cmd_result_free(&r);
}

/* ---- stress: 4 threads x 1M mixed operations, read live --------------------- */

Test(run_heap, stress_four_threads_exact_counts, .timeout = 180)
{
	char dir[] = "/tmp/lw-hstress-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	int ip[2], op[2];
	char envdir[96], preload[4096];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	pid_t pid = spawn_piped(FIX("heap_stress"), (char *[]){ "heap_stress", "4", "1000000", "10", "wait", NULL },
				(char *[]){ envdir, "LEAKWATCH_HEAP=full", preload, NULL }, &ip[1], &op[0]);
	cr_assert_gt(pid, 0);
	char seg[128], err[LW_ERR_MAX], buf[64] = "";
	snprintf(seg, sizeof seg, "%s/leakwatch.%d", dir, (int)pid);

	/* snapshot the live heap table while the threads run */
	unsigned snaps = 0;
	struct pollfd p = { op[0], POLLIN, 0 };
	while (poll(&p, 1, 0) == 0) {
		struct lw_snapshot s;
		if (lw_snapshot_open(&s, seg, err, sizeof err) == 0) {
			snaps++;
			for (size_t i = 0; i < s.nallocs; i++) {
				cr_assert_gt(s.allocs[i].ptr, LW_ALLOC_TOMBSTONE);
				cr_assert_leq(s.allocs[i].size, 4096, "torn heap entry: size %lu",
					      (unsigned long)s.allocs[i].size);
				cr_assert_eq(s.allocs[i].ptr % 16, 0, "torn heap entry: ptr");
			}
			lw_snapshot_free(&s);
		}
		cr_assert_lt(snaps, 10000000u);
	}
	ssize_t n = read(op[0], buf, sizeof buf - 1);
	cr_assert_gt(n, 0);
	cr_assert_not_null(strstr(buf, "ready"));
	cr_assert_gt(snaps, 2, "read the live segment during the run (%u)", snaps);

	struct lw_report_opts ro = { .kind = LW_KIND_HEAP };
	struct lw_report rep;
	cr_assert_eq(lw_report_build(&rep, seg, &ro, err, sizeof err), 0, "%s", err);
	int line = marker_line("tests/fixtures/heap_stress.c", "stress.leak");
	size_t found = 0;
	for (size_t i = 0; i < rep.heap.ngroups; i++) {
		const struct lw_heap_group *g = &rep.heap.groups[i];
		if (g->cls != LW_HEAP_PROGRAM)
			continue;
		/* everything the workers left is leak_some()'s: 4 x 10 x 48 bytes */
		found += (size_t)g->blocks;
		struct lw_frame fr[8];
		size_t nf = lw_present_stack(&rep, g->stack_id, fr, 8);
		cr_assert_eq(g->bytes / g->blocks, 48.0, "a group of %.0f blocks, %.0f bytes, at %s / %s / %s", g->blocks,
			     g->bytes, nf > 0 && fr[0].function ? fr[0].function : "?",
			     nf > 1 && fr[1].function ? fr[1].function : "?", nf > 2 && fr[2].function ? fr[2].function : "?");
	}
	cr_assert_eq(found, 40, "exactly the 40 leaked blocks are live (line %d)", line);
	cr_assert_eq(rep.snap.counters[LW_CTR_DROP_HEAP_FULL], 0);
	cr_assert_eq(rep.snap.counters[LW_CTR_DROP_BUSY], 0);
	cr_assert_eq(rep.snap.counters[LW_CTR_HEAP_UNTRACKED_FREES], 0,
		     "every free found its record");
	lw_report_free(&rep);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ip[1]);
	close(op[0]);
	cr_assert_eq(rm_rf(dir), 0);
}

/* ---- real programs in full mode ---------------------------------------------------- */

static void real_full(const char *const *cmd, int expect)
{
	struct cmd_result r;
	const char *opts[] = { "--heap", "full", NULL };
	struct tj *j = heap_run(&r, NULL, opts, cmd);
	cr_assert_eq(r.status, 0, "leakwatch: %s", r.err);
	cr_assert_eq(tj_num(tj_get(j, "run"), "exit_status", -1), expect, "%s: %s", cmd[0], r.err);
	struct tj *procs = tj_get(j, "processes");
	cr_assert_geq(tj_len(procs), 1);
	size_t recorded = 0;
	for (size_t i = 0; i < tj_len(procs); i++) {
		struct tj *p = tj_at(procs, i);
		cr_assert_str_neq(tj_str(p, "state"), "dead", "a process died under the shim");
		recorded += (size_t)tj_num(tj_get(p, "counters"), "heap_allocs", 0);
		cr_assert_eq(tj_num(tj_get(tj_get(p, "counters"), "drops"), "heap_full", -1), 0);
	}
	cr_assert_gt(recorded, 100, "the run recorded heap activity");
	tj_free(j);
	cmd_result_free(&r);
}

Test(run_heap_real, python_workload, .timeout = 180)
{
	const char *cmd[] = { "python3", "-c",
		"import json, collections\n"
		"d = collections.Counter(str(i % 977) for i in range(200000))\n"
		"s = json.dumps({k: [v] * 3 for k, v in d.items()})\n"
		"assert len(json.loads(s)) == 977\n",
		NULL };
	real_full(cmd, 0);
}

Test(run_heap_real, sort_large_file, .timeout = 180)
{
	char in[] = "/tmp/lw-sort-XXXXXX";
	int fd = mkstemp(in);
	FILE *f = fdopen(fd, "w");
	for (int i = 0; i < 200000; i++)
		fprintf(f, "%08x line %d\n", (unsigned)(i * 2654435761u), i);
	fclose(f);
	const char *cmd[] = { "sort", "-o", "/dev/null", in, NULL };
	real_full(cmd, 0);
	unlink(in);
}

Test(run_heap_real, gcc_compiles_a_file, .timeout = 180)
{
	char src[] = "/tmp/lw-gcc-XXXXXX.c";
	int fd = mkstemps(src, 2);
	const char *prog = "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }\n";
	cr_assert_eq(write(fd, prog, strlen(prog)), (ssize_t)strlen(prog));
	close(fd);
	char obj[64];
	snprintf(obj, sizeof obj, "%s.o", src);
	const char *cmd[] = { "gcc", "-O2", "-c", src, "-o", obj, NULL };
	real_full(cmd, 0);
	struct stat st;
	cr_assert_eq(stat(obj, &st), 0, "gcc produced its object file under the shim");
	unlink(obj);
	unlink(src);
}

/* A child made by _Fork() runs no atfork handler and so has no segment of
 * its own: it must not write into the parent's heap table, which it still
 * maps. */
Test(run_heap, raw_fork_child_leaves_parent_table_alone, .timeout = 60)
{
	struct cmd_result r;
	const char *opts[] = { "--heap", "full", NULL };
	const char *cmd[] = { FIX("rawfork"), NULL };
	struct tj *j = heap_run(&r, NULL, opts, cmd);
	cr_assert_eq(tj_num(tj_get(j, "run"), "exit_status", -1), 0, "%s", r.err);
	struct tj *g = group_at(heap_of(j), "keep_blocks", marker_line("tests/fixtures/rawfork.c", "rawfork.keep"));
	cr_assert_not_null(g, "the parent's blocks are still recorded");
	cr_assert_eq(tj_num(g, "count", -1), 100, "the child's frees did not remove the parent's records");
	/* the parent keeps them in a global: live and still reachable, so not
	 * leaked; what is checked is the table holding exactly those 100 */
	cr_assert_eq(tj_num(heap_of(j), "program_blocks", -1), 100, "the child's 500 blocks are not in the parent's table");
	tj_free(j);
	cmd_result_free(&r);
}

/* ---- --fail-on-leak per kind, through cli_run ------------------------------------ */

TestSuite(run_heap_kinds, .init = suite_dir_setup, .fini = suite_dir_teardown);

static const char *heap_leak_fixture(void)
{
	static const char path[] = LW_BUILD_DIR "/fixtures/heap_leak";
	if (access(path, X_OK) != 0)
		cr_skip_test("no heap_leak fixture (make test builds it)");
	return path;
}

Test(run_heap_kinds, fail_on_leak_per_kind, .timeout = 60)
{
	const char *fx = heap_leak_fixture();
	char out[65536], err[8192];
	setenv("LEAKWATCH_HEAP", "full", 1);
	unsetenv("LEAKWATCH_SHIM");

	/* 5 leaked blocks: only heap-counting modes fail */
	int rc = cli_run((const char *[]){ "run", "--fail-on-leak=heap", "--", fx, "basic", "5", "48", NULL },
			 (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "stderr %s\nout %s", err, out);
	/* the report is on stderr: the command's stdout stays its own */
	cr_assert(strstr(err, "leakwatch: 5 heap blocks (240 B) left allocated by the program, lost (definite, indirect)\n"), "%s", err);
	cr_assert_null(strstr(out, "leakwatch:"), "%s", out);
	rc = cli_run((const char *[]){ "run", "--fail-on-leak=all", "--", fx, "basic", "5", "48", NULL }, (uid_t)-1,
		     out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "%s", err);
	rc = cli_run((const char *[]){ "run", "--kind", "heap", "--fail-on-leak", "--", fx, "basic", "5", "48", NULL },
		     (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "bare --fail-on-leak with --kind heap counts heap: %s", err);
	rc = cli_run((const char *[]){ "run", "--fail-on-leak", "--", fx, "basic", "5", "48", NULL }, (uid_t)-1, out,
		     sizeof out, err, sizeof err);
	cr_assert_eq(rc, 1, "bare --fail-on-leak covers every kind --kind shows: %s", err);
	rc = cli_run((const char *[]){ "run", "--fail-on-leak=sockets", "--", fx, "basic", "5", "48", NULL },
		     (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	rc = cli_run((const char *[]){ "run", "--older-than", "1h", "--fail-on-leak=heap", "--", fx, "basic", "5",
				       "48", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "nothing is an hour old: %s", err);

	/* no leak: churn frees everything; what libc keeps does not count */
	rc = cli_run((const char *[]){ "run", "--fail-on-leak=heap", "--", "/bin/echo", "hello", NULL }, (uid_t)-1,
		     out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "echo's stdout buffer is libc's: %s", err);
	cr_assert_str_eq(out, "hello\n", "echo's output alone on stdout");
	rc = cli_run((const char *[]){ "run", "--fail-on-leak=heap", "--", fx, "basic", "0", "48", NULL }, (uid_t)-1,
		     out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);

	/* JSON totals and folded lines of the run */
	/* --output -: the report on stdout, on request */
	rc = cli_run((const char *[]){ "run", "--format", "json", "--output", "-", "--", fx, "basic", "7", "100", NULL },
		     (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	struct tj *j = tj_parse(out);
	cr_assert_not_null(j, "%.2000s", out);
	cr_assert_eq(tj_num(j, "leaked", -1), 0);
	cr_assert_eq(tj_num(j, "leaked_heap_blocks", -1), 7);
	cr_assert_eq(tj_num(j, "leaked_heap_bytes", -1), 700);
	cr_assert_eq(tj_num(j, "leaked_heap_estimated", 1), 0);
	tj_free(j);

	rc = cli_run((const char *[]){ "run", "--format", "folded", "--output", "-", "--", fx, "basic", "7", "100",
				       NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strncmp(out, "heap_leak;", 10) == 0, "%s", out);
	cr_assert(strstr(out, ";main;make_leak 700\n"), "%s", out);
	cr_assert_eq(count_lines(out), 1, "one program group: %s", out);
}
