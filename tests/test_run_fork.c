/*
 * The fork and signal paths of the shim, attacked with the forksig fixture:
 * fork() in a signal handler that interrupted the shim (also on its unwinder
 * stack), siglongjmp() out of such a handler, the accept-fork-close race,
 * closefrom() and a double close
 * through close_range().  Run under `leakwatch run`, checked from the report.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sys/mount.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define SRC "tests/fixtures/forksig.c"

struct forkrep {
	struct cmd_result res;
	struct tj *json;
};

static void fork_run(struct forkrep *fr, const char *const *opts, const char *const *cmd)
{
	memset(fr, 0, sizeof *fr);
	char *text = run_report(&fr->res, NULL, opts, cmd);
	cr_assert_not_null(text, "no report written; stderr: %s", fr->res.err);
	fr->json = tj_parse(text);
	cr_assert_not_null(fr->json, "report is not valid JSON: %.400s", text);
	free(text);
}

static void fork_free(struct forkrep *fr)
{
	tj_free(fr->json);
	cmd_result_free(&fr->res);
}

/* the first frame of a stack array names func at SRC:line */
static void assert_top(struct tj *stack, const char *func, const char *marker)
{
	struct tj *f = tj_at(stack, 0);
	int line = marker_line(SRC, marker);
	cr_assert_neq(line, 0, "marker %s", marker);
	cr_assert_not_null(f, "empty stack for %s", func);
	cr_assert_str_eq(tj_str(f, "function") ? tj_str(f, "function") : "(null)", func);
	cr_assert_eq((int)tj_num(f, "line", -1), line, "%s at line %d, expected %d", func,
		     (int)tj_num(f, "line", -1), line);
}

/* Before the fix the child's atfork handler unmapped the parent's segment
 * under the frame the handler had interrupted: children died of SIGSEGV. */
Test(run_fork, fork_in_signal_handler_children_survive, .timeout = 180)
{
	struct forkrep fr;
	const char *opts[] = { "--heap", "full", NULL };
	const char *cmd[] = { FIX("forksig"), "fork", "300", NULL };
	fork_run(&fr, opts, cmd);
	const char *line = strstr(fr.res.out, "forksig:");
	cr_assert_not_null(line, "fixture output missing; stderr: %s", fr.res.err);
	int kids = -1, died = -1;
	cr_assert_eq(sscanf(line, "forksig: %d children, %d died", &kids, &died), 2);
	cr_assert_eq(kids, 300);
	cr_assert_eq(died, 0, "children killed: %s", fr.res.err);
	cr_assert_eq(tj_num(tj_get(fr.json, "run"), "exit_status", -1), 0);
	fork_free(&fr);
}

/* fork() in a handler that interrupted an unwind, on the shim's side
 * stack: the child resumes that unwind, so it must get the stack as it was
 * (fork children otherwise get side stacks wiped: MADV_WIPEONFORK). */
Test(run_fork, fork_on_the_unwinder_stack_children_survive, .timeout = 120)
{
	struct forkrep fr;
	const char *opts[] = { "--heap", "full", NULL };
	const char *cmd[] = { FIX("forksig"), "sidefork", "50", NULL };
	fork_run(&fr, opts, cmd);
	const char *line = strstr(fr.res.out, "forksig:");
	cr_assert_not_null(line, "fixture output missing; stderr: %s", fr.res.err);
	int kids = -1, died = -1;
	cr_assert_eq(sscanf(line, "forksig: %d side forks, %d died", &kids, &died), 2);
	cr_assert_eq(kids, 50);
	cr_assert_eq(died, 0, "children killed: %s", fr.res.err);
	fork_free(&fr);
}

/* siglongjmp out of a handler that interrupted the recorder: the thread
 * records again afterwards (the guard is not stuck) and no slot stays
 * locked (no busy slot in the offline snapshot). */
Test(run_fork, siglongjmp_out_of_the_shim_loses_nothing, .timeout = 120)
{
	struct forkrep fr;
	const char *opts[] = { "--heap", "full", NULL };
	const char *cmd[] = { FIX("forksig"), "longjmp", "300", NULL };
	fork_run(&fr, opts, cmd);
	cr_assert_not_null(strstr(fr.res.out, "forksig: 300 jumps"), "stdout: %s stderr: %s", fr.res.out,
			   fr.res.err);
	struct tj *p = tj_at(tj_get(fr.json, "processes"), 0);
	cr_assert_not_null(p);
	cr_assert_eq(tj_num(p, "busy_slots", -1), 0, "a slot was left locked");
	cr_assert_gt(tj_num(tj_get(p, "counters"), "guard_recovered", 0), 0,
		     "some jumps left the recorder (the test exercised the recovery)");
	int sock = 0, block = 0;
	struct tj *groups = tj_get(p, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *f = tj_at(tj_get(tj_at(groups, i), "stack"), 0);
		if (f && tj_str(f, "function") && !strcmp(tj_str(f, "function"), "leak_after_jumps")) {
			assert_top(tj_get(tj_at(groups, i), "stack"), "leak_after_jumps",
				   "forksig.after_jumps");
			cr_assert_eq(tj_num(tj_at(groups, i), "count", -1), 1);
			sock++;
		}
	}
	struct tj *hg = tj_get(tj_get(p, "heap"), "groups");
	for (size_t i = 0; i < tj_len(hg); i++) {
		struct tj *f = tj_at(tj_get(tj_at(hg, i), "stack"), 0);
		if (f && tj_str(f, "function") && !strcmp(tj_str(f, "function"), "leak_after_jumps")) {
			assert_top(tj_get(tj_at(hg, i), "stack"), "leak_after_jumps",
				   "forksig.block_after_jumps");
			block++;
		}
	}
	cr_assert_eq(sock, 1, "the socket leaked after the jumps is recorded with its stack");
	cr_assert_eq(block, 1, "the block leaked after the jumps is recorded with its stack");
	fork_free(&fr);
}

/* accept-fork-close: the parent closes the child's socket as soon as fork()
 * returns; each child must still own a record of it. */
Test(run_fork, child_keeps_socket_the_parent_closes_right_after_fork, .timeout = 120)
{
	struct forkrep fr;
	const char *opts[] = { "--all", NULL };
	const char *cmd[] = { FIX("forksig"), "forkclose", "5", NULL };
	fork_run(&fr, opts, cmd);
	cr_assert_not_null(strstr(fr.res.out, "forksig: 5 fork-close rounds"), "%s", fr.res.err);
	struct tj *procs = tj_get(fr.json, "processes");
	cr_assert_eq(tj_len(procs), 6, "parent and five children");
	int children = 0;
	for (size_t i = 0; i < tj_len(procs); i++) {
		struct tj *p = tj_at(procs, i);
		if (tj_num(p, "ppid", 0) != tj_num(tj_at(procs, 0), "pid", -1))
			continue;
		children++;
		struct tj *groups = tj_get(p, "groups");
		int held = 0;
		for (size_t g = 0; g < tj_len(groups); g++) {
			struct tj *gr = tj_at(groups, g);
			if (!gr || !tj_str(gr, "origin") || strcmp(tj_str(gr, "origin"), "fork"))
				continue;
			/* (the report shows inherited groups without the parent's stack) */
			held += (int)tj_num(gr, "count", 0);
		}
		cr_assert_eq(held, 1, "child %d: the socket it kept is in its segment",
			     (int)tj_num(p, "pid", 0));
	}
	cr_assert_eq(children, 5);
	fork_free(&fr);
}

/* glibc's closefrom() uses the close_range system call directly. */
Test(run_fork, closefrom_closes_what_it_closes)
{
	struct forkrep fr;
	const char *cmd[] = { FIX("forksig"), "closefrom", NULL };
	fork_run(&fr, NULL, cmd);
	cr_assert_eq(tj_num(fr.json, "leaked", -1), 0, "closefrom(3) closed all three");
	fork_free(&fr);
}

Test(run_fork, double_close_through_close_range)
{
	struct forkrep fr;
	const char *cmd[] = { FIX("forksig"), "closerange2", NULL };
	fork_run(&fr, NULL, cmd);
	struct tj *p = tj_at(tj_get(fr.json, "processes"), 0);
	struct tj *bad = tj_get(p, "bad_closes");
	cr_assert_eq(tj_len(bad), 1, "one double close");
	struct tj *b = tj_at(bad, 0);
	assert_top(tj_get(b, "stack"), "mode_closerange2", "forksig.cr_again");
	assert_top(tj_get(b, "prev_close_stack"), "mode_closerange2", "forksig.cr_close");
	fork_free(&fr);
}

/* A fork child that finds no room for its own segment (a small tmpfs: the
 * parent's fits, the child's does not) is not traced, and a child forked
 * by a signal handler that interrupted the shim still resumes that frame
 * safely: before the fix its table pointers were zeroed and it died. */
Test(run_fork, child_without_room_for_a_segment_survives, .timeout = 180)
{
	char mnt[] = "/tmp/lw-smallfs-XXXXXX";
	cr_assert_not_null(mkdtemp(mnt));
	/* room for the parent's first reservation (about 50 KiB), not for a
	 * child's as well; no budget: the filesystem is what runs out */
	if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=76k") != 0) {
		rmdir(mnt);
		cr_skip_test("needs root to mount a small tmpfs");
	}
	char envdir[128], envpre[512];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", mnt);
	snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
	char *env[] = { envdir, envpre, "LEAKWATCH_HEAP=sampled", "LEAKWATCH_BUDGET=0",
			"LEAKWATCH_KEEP_EMPTY=1", NULL };
	char *argv[] = { FIX("forksig"), "fork", "200", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, env, 120);
	int segments = 0;
	DIR *d = opendir(mnt);
	for (struct dirent *e; d && (e = readdir(d));)
		segments += strncmp(e->d_name, "leakwatch.", 10) == 0;
	if (d)
		closedir(d);
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	const char *line = strstr(r.out, "forksig:");
	cr_assert_not_null(line, "fixture output missing (status %d): %s", r.status, r.err);
	int kids = -1, died = -1;
	cr_assert_eq(sscanf(line, "forksig: %d children, %d died", &kids, &died), 2);
	cr_assert_eq(kids, 200);
	cr_assert_eq(died, 0, "children killed: %s", r.err);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(segments, 1, "the parent's segment fitted, no child's did");
	cmd_result_free(&r);
}

/* Bad closes as valgrind --track-fds reports them: a double close of a
 * descriptor the shim saw closed, with both closes' stacks; a close loop
 * over numbers never opened is counted (unseen_closes), never reported. */
Test(run_fork, close_loop_is_quiet_double_closes_are_reported, .timeout = 60)
{
	struct forkrep fr;
	const char *opts[] = { NULL };
	const char *cmd[] = { FIX("closeloop"), NULL };
	fork_run(&fr, opts, cmd);
	cr_assert_not_null(strstr(fr.res.out, "closeloop: done"), "%s", fr.res.err);
	struct tj *procs = tj_get(fr.json, "processes");
	cr_assert_eq(tj_len(procs), 1);
	struct tj *p = tj_at(procs, 0);
	struct tj *bad = tj_get(p, "bad_closes");
	cr_assert_eq(tj_len(bad), 2, "exactly the two double closes, not the loop's 1021");
	const char *marks[2][2] = { { "closeloop.pipe_second", "closeloop.pipe_first" },
				    { "closeloop.sock_second", "closeloop.sock_first" } };
	for (int i = 0; i < 2; i++) {
		struct tj *b = tj_at(bad, (size_t)i);
		cr_assert_str_eq(tj_str(b, "kind"), "double_close");
		struct tj *st = tj_get(b, "stack"), *prev = tj_get(b, "prev_close_stack");
		cr_assert_eq((int)tj_num(tj_at(st, 0), "line", -1),
			     marker_line("tests/fixtures/closeloop.c", marks[i][0]));
		cr_assert_eq((int)tj_num(tj_at(prev, 0), "line", -1),
			     marker_line("tests/fixtures/closeloop.c", marks[i][1]));
	}
	cr_assert_geq(tj_num(tj_get(p, "counters"), "unseen_closes", -1), 1000);
	cr_assert_eq(tj_num(tj_get(p, "counters"), "bad_closes", -1), 2);
	fork_free(&fr);
}
