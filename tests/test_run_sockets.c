/*
 * End-to-end tests: fixture programs with leaks at known lines, run under
 * the real shim through `leakwatch run --format json`, and the JSON report
 * checked field by field.  Lines are found through "LW-MARK:" comments in
 * the fixture sources, never hard-coded.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/json.h"
#include <glob.h>

#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name

struct runrep {
	struct cmd_result res;   /* the leakwatch process */
	struct tj *json;         /* parsed --output file */
	int port;                /* "fixture-port: N" from the fixture's stderr, or 0 */
};

/* lw_run - `leakwatch run --format json [opts...] -- cmd...`, parsed */
static void lw_run(struct runrep *rr, const char *const *opts, const char *const *cmd)
{
	memset(rr, 0, sizeof *rr);
	char *text = run_report(&rr->res, NULL, opts, cmd);
	cr_assert_not_null(text, "no report written; stderr: %s", rr->res.err);
	rr->json = tj_parse(text);
	cr_assert_not_null(rr->json, "report is not valid JSON: %.400s", text);
	free(text);
	const char *p = strstr(rr->res.err, "fixture-port: ");
	if (p)
		rr->port = atoi(p + strlen("fixture-port: "));
}

static void runrep_free(struct runrep *rr)
{
	tj_free(rr->json);
	cmd_result_free(&rr->res);
}

/* the process object of the main image (first in "processes") */
static struct tj *main_proc(struct runrep *rr)
{
	struct tj *procs = tj_get(rr->json, "processes");
	cr_assert_geq(tj_len(procs), 1, "no process in the report");
	return tj_at(procs, 0);
}

/* frame i of a stack array: function, file basename and line */
static void assert_stack_frame(struct tj *stack, size_t i, const char *func, const char *file, int line)
{
	struct tj *f = tj_at(stack, i);
	cr_assert_neq(line, 0, "marker for %s not found in the fixture source", func);
	cr_assert_not_null(f, "stack has no frame %zu", i);
	cr_assert_str_eq(tj_str(f, "function") ? tj_str(f, "function") : "(null)", func);
	const char *path = tj_str(f, "file");
	cr_assert_not_null(path, "frame %zu (%s) has no file", i, func);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	cr_assert_str_eq(base, file);
	cr_assert_eq((int)tj_num(f, "line", -1), line, "%s: line %d, expected %d", func,
		     (int)tj_num(f, "line", -1), line);
}

static void assert_frame(struct tj *group, size_t i, const char *func, const char *file, int line)
{
	assert_stack_frame(tj_get(group, "stack"), i, func, file, line);
}

static void assert_endpoint(struct tj *group, int port)
{
	char want[64];
	snprintf(want, sizeof want, "127.0.0.1:%d", port);
	cr_assert_neq(port, 0, "fixture port unknown");
	cr_assert_str_eq(tj_str(group, "endpoint") ? tj_str(group, "endpoint") : "(null)", want);
}

/* ---- leak_basic ------------------------------------------------------------ */

Test(run_sockets, leaked_connections_named_at_their_line)
{
	struct runrep rr;
	const char *opts[] = { "--fail-on-leak", NULL };
	const char *cmd[] = { FIX("leak_basic"), "3", "2", NULL };
	lw_run(&rr, opts, cmd);
	cr_assert_eq(rr.res.status, 1, "--fail-on-leak must exit 1 (got %d): %s", rr.res.status,
		     rr.res.err);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 3);
	struct tj *p = main_proc(&rr);
	cr_assert_str_eq(tj_str(p, "state"), "exited");
	cr_assert_eq(tj_num(p, "exit_status", -1), 0, "exit status of a return from main is known");
	struct tj *groups = tj_get(p, "groups");
	cr_assert_eq(tj_len(groups), 1, "one leaking site, got %zu groups", tj_len(groups));
	struct tj *g = tj_at(groups, 0);
	cr_assert_eq(tj_num(g, "count", -1), 3);
	cr_assert_str_eq(tj_str(g, "family"), "AF_INET");
	cr_assert_str_eq(tj_str(g, "type"), "SOCK_STREAM");
	cr_assert_str_eq(tj_str(g, "origin"), "socket");
	cr_assert_str_eq(tj_str(g, "endpoint_role"), "peer");
	assert_endpoint(g, rr.port);
	assert_frame(g, 0, "leak_connection", "leak_basic.c",
		     marker_line("tests/fixtures/leak_basic.c", "leak_basic.socket"));
	assert_frame(g, 1, "main", "leak_basic.c",
		     marker_line("tests/fixtures/leak_basic.c", "leak_basic.call"));
	/* accepted connections are closed at once and the listener at the end,
	 * so what was opened and not closed is exactly the leak */
	struct tj *c = tj_get(p, "counters");
	cr_assert_eq(tj_num(c, "sock_opened", -1) - tj_num(c, "sock_closed", -1), 3);
	cr_assert_geq(tj_num(c, "sock_opened", -1), 1 + 2 + 3, "listener + good + leaked at least");
	runrep_free(&rr);
}

Test(run_sockets, no_leak_exits_zero)
{
	struct runrep rr;
	const char *opts[] = { "--fail-on-leak", NULL };
	const char *cmd[] = { FIX("leak_basic"), "0", "4", NULL };
	lw_run(&rr, opts, cmd);
	cr_assert_eq(rr.res.status, 0, "nothing leaked: exit 0 (got %d): %s", rr.res.status, rr.res.err);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 0);
	cr_assert_eq(tj_len(tj_get(main_proc(&rr), "groups")), 0);
	runrep_free(&rr);
}

Test(run_sockets, older_than_filters_young_sockets)
{
	struct runrep rr;
	const char *opts[] = { "--fail-on-leak", "--older-than", "1h", NULL };
	const char *cmd[] = { FIX("leak_basic"), "3", "0", NULL };
	lw_run(&rr, opts, cmd);
	cr_assert_eq(rr.res.status, 0, "sockets younger than 1h are not leaks: %s", rr.res.err);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 0);
	runrep_free(&rr);
}

Test(run_sockets, without_fail_on_leak_exits_zero)
{
	struct runrep rr;
	const char *cmd[] = { FIX("leak_basic"), "2", "0", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(rr.res.status, 0);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 2);
	runrep_free(&rr);
}

/* ---- descriptor semantics ----------------------------------------------------- */

static struct tj *only_group(struct runrep *rr)
{
	struct tj *groups = tj_get(main_proc(rr), "groups");
	cr_assert_eq(tj_len(groups), 1, "expected one group, got %zu", tj_len(groups));
	return tj_at(groups, 0);
}

static int printed_fd(struct runrep *rr)
{
	const char *p = strstr(rr->res.out, "fd ");
	cr_assert_not_null(p, "fixture did not print its fd: %s", rr->res.out);
	return atoi(p + 3);
}

Test(run_sockets, dup2_onto_open_socket)
{
	struct runrep rr;
	const char *cmd[] = { FIX("fdsem"), "dup2", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 1, "the replaced socket was closed by dup2");
	struct tj *g = only_group(&rr);
	cr_assert_str_eq(tj_str(g, "origin"), "dup");
	cr_assert_eq((int)tj_at(tj_get(g, "fds"), 0)->num, printed_fd(&rr));
	assert_endpoint(g, rr.port);
	assert_frame(g, 0, "mode_dup2", "fdsem.c", marker_line("tests/fixtures/fdsem.c", "fdsem.dup2"));
	runrep_free(&rr);
}

Test(run_sockets, fcntl_dupfd)
{
	struct runrep rr;
	const char *cmd[] = { FIX("fdsem"), "fdupfd", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 1);
	struct tj *g = only_group(&rr);
	cr_assert_str_eq(tj_str(g, "origin"), "dup");
	cr_assert_geq(tj_at(tj_get(g, "fds"), 0)->num, 100);
	assert_endpoint(g, rr.port);
	assert_frame(g, 0, "mode_fdupfd", "fdsem.c", marker_line("tests/fixtures/fdsem.c", "fdsem.fdupfd"));
	runrep_free(&rr);
}

Test(run_sockets, socketpair_both_ends)
{
	struct runrep rr;
	const char *cmd[] = { FIX("fdsem"), "socketpair", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 2);
	struct tj *g = only_group(&rr);
	cr_assert_eq(tj_num(g, "count", -1), 2);
	cr_assert_str_eq(tj_str(g, "family"), "AF_UNIX");
	cr_assert_str_eq(tj_str(g, "origin"), "socketpair");
	assert_frame(g, 0, "mode_socketpair", "fdsem.c",
		     marker_line("tests/fixtures/fdsem.c", "fdsem.socketpair"));
	runrep_free(&rr);
}

Test(run_sockets, scm_rights_received_socket)
{
	struct runrep rr;
	const char *cmd[] = { FIX("fdsem"), "scm", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 1, "only the received copy stays open");
	struct tj *g = only_group(&rr);
	cr_assert_str_eq(tj_str(g, "origin"), "scm_rights");
	assert_endpoint(g, rr.port);
	assert_frame(g, 0, "recv_fd", "fdsem.c", marker_line("tests/fixtures/fdsem.c", "fdsem.recvmsg"));
	runrep_free(&rr);
}

Test(run_sockets, double_close_reported_with_both_stacks)
{
	struct runrep rr;
	const char *cmd[] = { FIX("fdsem"), "double", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(rr.res.status, 0, "%s", rr.res.err);
	struct tj *p = main_proc(&rr);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 0);
	struct tj *bad = tj_get(p, "bad_closes");
	cr_assert_eq(tj_len(bad), 1, "one double close");
	struct tj *b = tj_at(bad, 0);
	assert_frame(b, 0, "close_twice", "fdsem.c", marker_line("tests/fixtures/fdsem.c", "fdsem.close2"));
	struct tj *prev = tj_get(b, "prev_close_stack");
	cr_assert_geq(tj_len(prev), 1, "the earlier close is shown");
	assert_stack_frame(prev, 0, "close_twice", "fdsem.c",
			   marker_line("tests/fixtures/fdsem.c", "fdsem.close1"));
	runrep_free(&rr);
}

Test(run_sockets, close_range_closes_everything)
{
	struct runrep rr;
	const char *cmd[] = { FIX("fdsem"), "close_range", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 0, "close_range closed all four");
	cr_assert_eq(tj_len(tj_get(main_proc(&rr), "groups")), 0);
	runrep_free(&rr);
}

Test(run_sockets, fork_child_gets_own_segment_with_inherited_entries)
{
	struct runrep rr;
	const char *opts[] = { "--all", NULL };
	const char *cmd[] = { FIX("fdsem"), "fork", NULL };
	lw_run(&rr, opts, cmd);
	struct tj *procs = tj_get(rr.json, "processes");
	cr_assert_eq(tj_len(procs), 2, "parent and child segments");
	struct tj *parent = tj_at(procs, 0), *child = tj_at(procs, 1);
	cr_assert_neq(tj_num(parent, "pid", 0), tj_num(child, "pid", 0));
	cr_assert_eq(tj_num(child, "ppid", 0), tj_num(parent, "pid", -1));
	/* parent: its connection leaks; child: its own UDP socket leaks, the
	 * copies of the parent's sockets are inherited, not leaks */
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 2);
	size_t inherited = 0, own = 0;
	struct tj *groups = tj_get(child, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		struct tj *inh = tj_get(g, "inherited");
		if (inh && inh->num) {
			inherited += (size_t)tj_num(g, "count", 0);
			cr_assert_str_eq(tj_str(g, "origin"), "fork");
		} else {
			own += (size_t)tj_num(g, "count", 0);
			assert_frame(g, 0, "mode_fork", "fdsem.c",
				     marker_line("tests/fixtures/fdsem.c", "fdsem.child_socket"));
		}
	}
	cr_assert_eq(own, 1);
	cr_assert_geq(inherited, 1, "the parent's connection is in the child's segment");
	runrep_free(&rr);
}

Test(run_sockets, exec_marks_old_image_and_new_image_inherits)
{
	struct runrep rr;
	const char *opts[] = { "--all", NULL };
	const char *cmd[] = { FIX("fdsem"), "exec", NULL };
	lw_run(&rr, opts, cmd);
	cr_assert_eq(rr.res.status, 0, "%s", rr.res.err);
	struct tj *procs = tj_get(rr.json, "processes");
	cr_assert_eq(tj_len(procs), 2, "the new image and the exec'd one");
	struct tj *newimg = NULL, *old = NULL;
	for (size_t i = 0; i < 2; i++) {
		struct tj *p = tj_at(procs, i);
		if (!strcmp(tj_str(p, "state"), "execed"))
			old = p;
		else
			newimg = p;
	}
	cr_assert_not_null(old, "old image marked execed");
	cr_assert_not_null(newimg);
	cr_assert_eq(tj_num(old, "pid", 0), tj_num(newimg, "pid", -1), "same pid across exec");
	cr_assert_not_null(strstr(tj_str(newimg, "command"), "exec-child"));
	struct tj *groups = tj_get(newimg, "groups");
	cr_assert_eq(tj_len(groups), 1);
	struct tj *g = tj_at(groups, 0);
	cr_assert_str_eq(tj_str(g, "origin"), "inherited");
	cr_assert(tj_get(g, "inherited")->num);
	cr_assert_eq(tj_len(tj_get(g, "stack")), 0, "inherited sockets have no stack");
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 0, "inherited sockets are not counted as leaks");
	runrep_free(&rr);
}

/* posix_spawn (clone with CLONE_VM|CLONE_VFORK inside glibc) and vfork:
 * the child runs in the parent's memory until exec, and the parent's
 * segment must come out untouched: still the parent's, not marked execed,
 * its socket still open. */
static void spawn_case(const char *mode)
{
	struct runrep rr;
	const char *opts[] = { "--all", NULL };
	const char *cmd[] = { FIX("fdsem"), mode, NULL };
	lw_run(&rr, opts, cmd);
	cr_assert_eq(rr.res.status, 0, "%s", rr.res.err);
	cr_assert_eq(tj_num(tj_get(rr.json, "run"), "exit_status", -1), 0, "fixture failed");
	struct tj *procs = tj_get(rr.json, "processes");
	cr_assert_eq(tj_len(procs), 2, "parent and the spawned image");
	struct tj *parent = tj_at(procs, 0), *child = tj_at(procs, 1);
	cr_assert_str_eq(tj_str(parent, "state"), "exited", "the parent's segment was not marked by the child");
	cr_assert_eq(tj_num(tj_get(parent, "counters"), "bad_closes", -1), 0,
		     "the vfork child's close(100) was not recorded in the parent");
	cr_assert_not_null(strstr(tj_str(child, "command"), "exec-child"));
	struct tj *g = tj_at(tj_get(child, "groups"), 0);
	cr_assert_not_null(g);
	cr_assert_str_eq(tj_str(g, "origin"), "inherited");
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 1, "only the parent's own socket");
	assert_frame(tj_at(tj_get(parent, "groups"), 0), 0, "tcp_to", "fdsem.c",
		     marker_line("tests/fixtures/fdsem.c", "fdsem.tcp_to"));
	runrep_free(&rr);
}

Test(run_sockets, posix_spawn_child_leaves_parent_alone)
{
	spawn_case("spawn");
}

Test(run_sockets, vfork_child_leaves_parent_alone)
{
	spawn_case("vfork");
}

/* ---- ps ------------------------------------------------------------------------- */

Test(run_sockets, ps_lists_exited_process)
{
	char dir[] = "/tmp/lw-ps-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char envdir[128], envpre[512];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
	char *env1[] = { envdir, envpre, NULL };
	char *fx[] = { FIX("leak_basic"), "2", "0", NULL };
	struct cmd_result r;
	run_cmd(&r, fx, env1, 60);
	cr_assert_eq(r.status, 0);
	cmd_result_free(&r);

	char *env2[] = { envdir, NULL };
	char *ps[] = { (char *)lw_bin(), "ps", NULL };
	run_cmd(&r, ps, env2, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "leak_basic"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "exited"), "%s", r.out);
	/* the socket column: 2 open sockets */
	const char *line = strstr(r.out, "exited");
	int sockets = -1;
	cr_assert_eq(sscanf(line, "exited %d", &sockets), 1, "%s", line);
	cr_assert_eq(sockets, 2);
	cmd_result_free(&r);

	char *psj[] = { (char *)lw_bin(), "ps", "--format", "json", NULL };
	run_cmd(&r, psj, env2, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%s", r.out);
	cr_assert_eq(tj_len(j), 1);
	struct tj *e = tj_at(j, 0);
	cr_assert_str_eq(tj_str(e, "state"), "exited");
	cr_assert_eq(tj_num(e, "sockets", -1), 2);
	cr_assert_str_eq(tj_str(e, "command"), "leak_basic 2 0");
	cr_assert_eq(tj_get(e, "error")->type, TJ_NULL);
	tj_free(j);
	cmd_result_free(&r);
	cr_assert_eq(rm_rf(dir), 0);
}

/* Reading a segment must not allocate its holes: a read fault on a shared
 * mapping of a tmpfs hole allocates a page, and a full /dev/shm kills the
 * traced program with SIGBUS. */
Test(run_sockets, report_does_not_make_segment_resident)
{
	char dir[64];
	if (tmpfs_dir(dir, sizeof dir, "sparse") != 0)
		cr_skip_test("no tmpfs to mount and /dev/shm is not one");
	char envdir[128], envpre[512];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
	char *env[] = { envdir, envpre, "LEAKWATCH_HEAP=full", NULL };
	char *fx[] = { FIX("leak_basic"), "2", "0", NULL };
	struct cmd_result r;
	run_cmd(&r, fx, env, 60);
	cr_assert_eq(r.status, 0);
	cmd_result_free(&r);

	char seg[256];
	snprintf(seg, sizeof seg, "%s/leakwatch.", dir);
	char cmdline[512];
	snprintf(cmdline, sizeof cmdline, "%s/leakwatch.*", dir);
	glob_t g;
	cr_assert_eq(glob(cmdline, 0, NULL, &g), 0, "no segment in %s", dir);
	snprintf(seg, sizeof seg, "%s", g.gl_pathv[0]);
	globfree(&g);
	struct stat before, after;
	cr_assert_eq(stat(seg, &before), 0);
	cr_assert_lt((uint64_t)before.st_blocks * 512, (uint64_t)before.st_size / 8, "the shim keeps it sparse");
	char *rep[] = { (char *)lw_bin(), "report", seg, "--all", "--format", "json", NULL };
	run_cmd(&r, rep, NULL, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	cr_assert_eq(stat(seg, &after), 0);
	cr_assert_eq(after.st_blocks, before.st_blocks, "report allocated %ld KiB of holes",
		     (long)(after.st_blocks - before.st_blocks) / 2);
	tmpfs_dir_release(dir);
}

/* An object dlopen()ed after start, and dlclose()d before exit: its frames
 * still symbolize (module table rescanned on the loader's counters, entries
 * kept when unloaded). */
Test(run_sockets, dlopened_object_symbolized_after_dlclose)
{
	struct runrep rr;
	const char *cmd[] = { FIX("dlopen"), FIX("libplugin.so"), "close", NULL };
	lw_run(&rr, NULL, cmd);
	cr_assert_eq(tj_num(tj_get(rr.json, "run"), "exit_status", -1), 0, "%s", rr.res.err);
	struct tj *p = main_proc(&rr);
	struct tj *g = tj_at(tj_get(p, "groups"), 0);
	cr_assert_not_null(g, "the plugin's socket");
	assert_frame(g, 0, "plugin_open", "libplugin.c", marker_line("tests/fixtures/libplugin.c", "plugin.socket"));
	struct tj *hg = tj_get(tj_get(p, "heap"), "groups");
	int found = 0;
	for (size_t i = 0; i < tj_len(hg); i++) {
		struct tj *f = tj_at(tj_get(tj_at(hg, i), "stack"), 0);
		if (tj_str(f, "function") && !strcmp(tj_str(f, "function"), "plugin_alloc")) {
			assert_frame(tj_at(hg, i), 0, "plugin_alloc", "libplugin.c",
				     marker_line("tests/fixtures/libplugin.c", "plugin.malloc"));
			cr_assert_eq(tj_num(tj_at(hg, i), "bytes", -1), 333);
			found = 1;
		}
	}
	cr_assert(found, "the plugin's heap block, symbolized");
	runrep_free(&rr);
}

/* Signal handlers that call hooked functions (dup, close) while the shim is
 * busy in the interrupted thread: no crash, no deadlock, no record lost or
 * left behind; what the handler did inside the shim passes through. */
Test(run_sockets, signal_handlers_interrupting_the_shim, .timeout = 120)
{
	struct runrep rr;
	const char *opts[] = { "--heap", "full", NULL };
	const char *cmd[] = { FIX("signals"), "20000", "3", NULL };
	lw_run(&rr, opts, cmd);
	cr_assert_eq(tj_num(tj_get(rr.json, "run"), "exit_status", -1), 0, "the program ran to the end: %s",
		     rr.res.err);
	int handled = 0;
	cr_assert_eq(sscanf(strstr(rr.res.out, "signals:"), "signals: %d handled", &handled), 1);
	cr_assert_gt(handled, 100, "signals were delivered (%d)", handled);
	struct tj *p = main_proc(&rr);
	struct tj *c = tj_get(p, "counters");
	cr_assert_eq(tj_num(rr.json, "leaked", -1), 6);
	cr_assert_eq(tj_num(c, "sock_opened", -1) - tj_num(c, "sock_closed", -1), 6);
	cr_assert_eq(tj_num(c, "stale_closes", -1), 0);
	cr_assert_eq(tj_num(c, "bad_closes", -1), 0);
	cr_assert_eq(tj_num(c, "heap_untracked_frees", -1), 0);
	struct tj *g = only_group(&rr);
	cr_assert_eq(tj_num(g, "count", -1), 6);
	assert_frame(g, 0, "leak_some", "signals.c", marker_line("tests/fixtures/signals.c", "signals.leak"));
	runrep_free(&rr);
}

/* clean removes what belongs to processes that are gone, never a live one. */
Test(run_sockets, clean_removes_only_finished_segments, .timeout = 60)
{
	char dir[] = "/tmp/lw-clean-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char envdir[128], envpre[512];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
	char *env[] = { envdir, envpre, NULL };
	char *fx[] = { FIX("leak_basic"), "1", "0", NULL };
	struct cmd_result r;
	run_cmd(&r, fx, env, 60);
	cr_assert_eq(r.status, 0);
	cmd_result_free(&r);

	/* a live traced process: threads waits on its stdin */
	int ip[2], op[2];
	pid_t live = spawn_piped(FIX("threads"), (char *[]){ "threads", "1", "10", "1", NULL },
				 (char *[]){ envdir, envpre, NULL }, &ip[1], &op[0]);
	cr_assert_gt(live, 0);
	char buf[16];
	cr_assert_gt(read(op[0], buf, sizeof buf), 0, "live fixture started");

	char *envd[] = { envdir, NULL };
	char *clean[] = { (char *)lw_bin(), "clean", NULL };
	run_cmd(&r, clean, envd, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "1 segment removed"), "%s", r.out);
	cmd_result_free(&r);
	char seg[128];
	snprintf(seg, sizeof seg, "%s/leakwatch.%d", dir, (int)live);
	struct stat st;
	cr_assert_eq(stat(seg, &st), 0, "the live process's segment stays");
	char *bad[] = { (char *)lw_bin(), "clean", "--older-than", "soon", NULL };
	run_cmd(&r, bad, envd, 60);
	cr_assert_eq(r.status, 2);
	cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
	cmd_result_free(&r);

	close(ip[1]); /* ends the fixture */
	waitpid(live, NULL, 0);
	close(op[0]);
	cr_assert_eq(rm_rf(dir), 0);
}

/* fork while another thread holds the loader lock (inside dl_iterate_phdr):
 * glibc leaves it held in the child, so a child that unwinds or scans
 * modules would hang.  The children must finish; their sockets are recorded
 * without stacks. */
Test(run_sockets, fork_while_loader_lock_held_does_not_hang, .timeout = 120)
{
	struct runrep rr;
	const char *opts[] = { "--heap", "full", NULL };
	const char *cmd[] = { FIX("forkdl"), "20", NULL };
	lw_run(&rr, opts, cmd);
	cr_assert_not_null(strstr(rr.res.out, "forkdl: 0 of 20 children hung"), "%s", rr.res.out);
	cr_assert_eq(tj_num(tj_get(rr.json, "run"), "exit_status", -1), 0);
	struct tj *procs = tj_get(rr.json, "processes");
	cr_assert_eq(tj_len(procs), 21, "the parent and 20 children");
	struct tj *child = tj_at(procs, 1);
	cr_assert_eq(tj_num(tj_get(tj_get(child, "counters"), "drops"), "unwind", -1), 2,
		     "the child's socket and malloc were recorded without unwinding");
	runrep_free(&rr);
}
