/*
 * The shim keeps out of the program's descriptors (DESIGN.md rule 8): a
 * daemon that closes everything and reuses the numbers sees, traced, exactly
 * what it sees natively, in every heap mode and with each way of closing,
 * and what it opens afterwards still gets stacks.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/json.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define FDREUSE_SRC "tests/fixtures/fdreuse.c"

/* run fdreuse MODE with env (may be NULL); returns its log (malloc'd) */
static char *fdreuse_log(const char *mode, char *const env[], int *status)
{
	char log[] = "/tmp/lw-fdreuse-log-XXXXXX";
	int fd = mkstemp(log);
	cr_assert_geq(fd, 0);
	close(fd);
	char *argv[] = { FIX("fdreuse"), (char *)mode, log, NULL };
	struct cmd_result r;
	run_cmd(&r, argv, env, 60);
	*status = r.status;
	char *text = slurp(log);
	unlink(log);
	if (r.status != 0)
		cr_log_error("fdreuse %s: status %d, stderr: %s", mode, r.status, r.err);
	cmd_result_free(&r);
	return text ? text : strdup("");
}

static void compare_native_traced(const char *mode)
{
	int st;
	char *native = fdreuse_log(mode, NULL, &st);
	cr_assert_eq(st, 0, "fdreuse %s fails natively (status %d): %s", mode, st, native);
	cr_assert_not_null(strstr(native, "files on: "), "no log: %s", native);

	char dir[] = "/tmp/lw-fds-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	static const char *const heap[] = { "off", "sampled", "full" };
	for (size_t i = 0; i < sizeof heap / sizeof heap[0]; i++) {
		char envdir[128], envpre[512], envheap[64];
		snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
		snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
		snprintf(envheap, sizeof envheap, "LEAKWATCH_HEAP=%s", heap[i]);
		char *env[] = { envdir, envpre, envheap, NULL };
		char *traced = fdreuse_log(mode, env, &st);
		/* a stray read of a blocking socket hangs: alarm() ends it (142) */
		cr_expect_eq(st, 0, "fdreuse %s, heap %s: status %d under the shim", mode, heap[i], st);
		cr_expect_str_eq(traced, native, "fdreuse %s, heap %s: traced log differs from native",
				 mode, heap[i]);
		free(traced);
	}
	cr_assert_eq(rm_rf(dir), 0);
	free(native);
}

Test(shim_fds, close_loop_same_fds_as_native, .timeout = 120)
{
	compare_native_traced("loop");
}

Test(shim_fds, close_range_same_fds_as_native, .timeout = 120)
{
	compare_native_traced("range");
}

Test(shim_fds, closefrom_same_fds_as_native, .timeout = 120)
{
	compare_native_traced("from");
}

/* closefrom(0): stdin/stdout/stderr reopened on /dev/null get 0, 1, 2 */
Test(shim_fds, closefrom_zero_stdio_same_as_native, .timeout = 120)
{
	compare_native_traced("all");
}

/* the first frame of a group's stack with a source file */
static struct tj *first_src_frame(struct tj *group)
{
	struct tj *st = tj_get(group, "stack");
	for (size_t k = 0; k < tj_len(st); k++)
		if (tj_str(tj_at(st, k), "file"))
			return tj_at(st, k);
	return NULL;
}

static struct tj *group_at_line(struct tj *groups, const char *func, int line)
{
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *f = first_src_frame(tj_at(groups, i));
		if (f && tj_str(f, "function") && !strcmp(tj_str(f, "function"), func) &&
		    (int)tj_num(f, "line", -1) == line)
			return tj_at(groups, i);
	}
	return NULL;
}

/* after closing everything, a socket and a heap block still get their stacks */
Test(shim_fds, stacks_after_closing_everything, .timeout = 120)
{
	int sline = marker_line(FDREUSE_SRC, "fdreuse.socket");
	int hline = marker_line(FDREUSE_SRC, "fdreuse.heap");
	cr_assert(sline > 0 && hline > 0, "markers not found");
	static const char *const modes[] = { "loop", "range", "from" };
	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		struct cmd_result r;
		const char *opts[] = { "--kind", "all", "--heap", "full", NULL };
		const char *cmd[] = { FIX("fdreuse"), modes[m], NULL };
		char *text = run_report(&r, NULL, opts, cmd);
		cr_assert_not_null(text, "no report (%s); stderr: %s", modes[m], r.err);
		struct tj *j = tj_parse(text);
		cr_assert_not_null(j, "invalid JSON: %.300s", text);
		struct tj *p = tj_at(tj_get(j, "processes"), 0);
		cr_assert_not_null(p);
		cr_assert_eq(tj_num(p, "exit_status", -1), 0, "fdreuse %s failed under leakwatch: %s",
			     modes[m], r.err);
		cr_expect_not_null(group_at_line(tj_get(p, "groups"), "leak_after_close_all", sline),
				   "%s: the socket opened after closing everything has no stack: %.2000s",
				   modes[m], text);
		cr_expect_not_null(group_at_line(tj_get(tj_get(p, "heap"), "groups"),
						 "leak_after_close_all", hline),
				   "%s: the block allocated after closing everything has no stack: %.2000s",
				   modes[m], text);
		tj_free(j);
		free(text);
		cmd_result_free(&r);
	}
}
