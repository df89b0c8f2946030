/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch run`: its exit status (issue 8, items 11 and 12) and where the
 * report goes (item 13).
 *
 *   - the command's status comes through (128 + signal when killed), unless
 *     --fail-on-leak finds something: then --error-exitcode N (default 1);
 *   - fail closed: a static command, a static program exec'd by a traced one,
 *     LEAKWATCH_DISABLE, no room for a segment (a 64 KiB tmpfs) each print
 *     one "...: not traced" line on stderr and exit 3;
 *   - the command's stdout is its own: the report goes to stderr, --output
 *     FILE, or stdout with --output -.
 */
#include <criterion/criterion.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "lib/json.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name

static char tmp[64];
static char mnt[96];
static int mounted;

static void setup(void)
{
	snprintf(tmp, sizeof tmp, "/tmp/lw-run-exit.XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
	mounted = 0;
}

static void teardown(void)
{
	if (mounted)
		umount2(mnt, MNT_DETACH);
	if (rm_rf(tmp) != 0) {
		/* leftovers in /tmp are harmless */
	}
}

TestSuite(run_exit, .init = setup, .fini = teardown, .timeout = 120);

/* `leakwatch run OPTS... -- CMD...` with extra environment entries; r filled. */
static void lw_run(struct cmd_result *r, char *const env[], const char *const *opts, const char *const *cmd)
{
	lw_run_timed(r, env, opts, cmd, 100);
}

/* A statically linked program that exits 0, built for the test (NULL: no static libc). */
static const char *static_prog(void)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/static-true", tmp);
	struct spawn_opts o = { .stdin_text = "int main(void){return 0;}\n", .timeout_s = 120 };
	struct cmd_result r;
	run_opts(&r, (char *[]){ "cc", "-static", "-x", "c", "-o", path, "-", NULL }, &o);
	int built = r.status == 0;
	cmd_result_free(&r);
	if (!built || access(path, X_OK) != 0)
		return NULL;
	return path;
}

Test(run_exit, command_status_passes_through)
{
	struct cmd_result r;
	lw_run(&r, NULL, NULL, (const char *[]){ "sh", "-c", "exit 7", NULL });
	cr_assert_eq(r.status, 7, "run exits with the command's status: %s", r.err);
	cr_assert(strstr(r.err, "leakwatch: command exited with status 7\n"), "%s", r.err);
	cr_assert_null(strstr(r.err, "not traced"), "%s", r.err);
	cr_assert_str_eq(r.out, "", "nothing of leakwatch's on the command's stdout");
	cmd_result_free(&r);

	lw_run(&r, NULL, NULL, (const char *[]){ "sh", "-c", "kill -KILL $$", NULL });
	cr_assert_eq(r.status, 128 + SIGKILL, "a signal is 128 + its number: %s", r.err);
	cr_assert(strstr(r.err, "command killed by signal 9"), "%s", r.err);
	/* no exit record: the uptime is a lower bound (item 14) */
	cr_assert(strstr(r.err, ") dead, ran at least "), "%s", r.err);
	cmd_result_free(&r);

	/* sockets only: a shell keeps heap memory until exit */
	lw_run(&r, NULL, (const char *[]){ "--fail-on-leak=sockets", NULL }, (const char *[]){ "sh", "-c", "exit 0", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
}

Test(run_exit, leaks_use_error_exitcode)
{
	const char *leak[] = { FIX("heap_leak"), "basic", "5", "48", NULL };
	const char *clean_fail[] = { "sh", "-c", "exit 5", NULL };
	struct cmd_result r;

	lw_run(&r, NULL, (const char *[]){ "--fail-on-leak", NULL }, leak);
	cr_assert_eq(r.status, 1, "default --error-exitcode is 1: %s", r.err);
	cmd_result_free(&r);

	lw_run(&r, NULL, (const char *[]){ "--fail-on-leak", "--error-exitcode", "42", NULL }, leak);
	cr_assert_eq(r.status, 42, "%s", r.err);
	cmd_result_free(&r);

	/* as in valgrind, --error-exitcode alone turns leak detection into a status */
	lw_run(&r, NULL, (const char *[]){ "--error-exitcode=42", NULL }, leak);
	cr_assert_eq(r.status, 42, "%s", r.err);
	cmd_result_free(&r);

	/* leaks without --fail-on-leak: the command's status */
	lw_run(&r, NULL, NULL, leak);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.err, "leakwatch: 5 heap blocks (240 B) left allocated by the program, lost (definite, indirect)\n"), "%s", r.err);
	cmd_result_free(&r);

	/* no leak: the command's failure is not hidden by --fail-on-leak (sockets only: sh keeps memory) */
	lw_run(&r, NULL, (const char *[]){ "--fail-on-leak=sockets", "--error-exitcode", "42", NULL }, clean_fail);
	cr_assert_eq(r.status, 5, "%s", r.err);
	cmd_result_free(&r);

	static const char *const bad[] = { "0", "256", "-1", "x", "" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		lw_run(&r, NULL, (const char *[]){ "--error-exitcode", bad[i], NULL }, clean_fail);
		cr_assert_eq(r.status, 2, "'%s': %s", bad[i], r.err);
		cr_assert(strstr(r.err, "bad --error-exitcode"), "%s", r.err);
		cr_assert_eq(count_lines(r.err), 1, "%s", r.err);
		cmd_result_free(&r);
	}
}

Test(run_exit, static_command_is_not_traced)
{
	const char *prog = static_prog();
	if (!prog)
		cr_skip_test("no static libc to build a static program");
	struct cmd_result r;
	lw_run(&r, NULL, NULL, (const char *[]){ prog, NULL });
	cr_assert_eq(r.status, 3, "%s", r.err);
	char want[256];
	snprintf(want, sizeof want, "leakwatch: %s is statically linked: not traced\n", prog);
	cr_assert(strstr(r.err, want), "%s", r.err);
	cmd_result_free(&r);

	/* found through PATH as execvp finds it, and named in the JSON report */
	char path_env[256];
	snprintf(path_env, sizeof path_env, "PATH=%s:/usr/bin:/bin", tmp);
	char *env[] = { path_env, NULL };
	lw_run(&r, env, (const char *[]){ "--format", "json", "--output", "-", NULL }, (const char *[]){ "static-true", NULL });
	cr_assert_eq(r.status, 3, "%s", r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%s", r.out);
	struct tj *nt = tj_get(j, "not_traced");
	cr_assert_eq(tj_len(nt), 1, "%s", r.out);
	cr_assert_str_eq(tj_str(tj_at(nt, 0), "kind"), "static");
	cr_assert_str_eq(tj_str(tj_at(nt, 0), "command"), prog);
	tj_free(j);
	cr_assert(strstr(r.err, "is statically linked: not traced\n"), "%s", r.err);
	cmd_result_free(&r);
}

Test(run_exit, exec_of_a_static_program_is_not_traced)
{
	const char *prog = static_prog();
	if (!prog)
		cr_skip_test("no static libc to build a static program");
	char script[256];
	snprintf(script, sizeof script, "exec '%s'", prog);
	struct cmd_result r;
	lw_run(&r, NULL, NULL, (const char *[]){ "sh", "-c", script, NULL });
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert(strstr(r.err, "called exec and the new program left no segment"), "%s", r.err);
	cr_assert(strstr(r.err, ": not traced\n"), "%s", r.err);
	cmd_result_free(&r);

	/* a dynamic program exec'd the same way is traced: the command's status */
	lw_run(&r, NULL, NULL, (const char *[]){ "sh", "-c", "exec /bin/sh -c 'exit 4'", NULL });
	cr_assert_eq(r.status, 4, "%s", r.err);
	cr_assert_null(strstr(r.err, "not traced"), "%s", r.err);
	cmd_result_free(&r);
}

Test(run_exit, disabled_shim_is_not_traced)
{
	struct cmd_result r;
	char *env[] = { "LEAKWATCH_DISABLE=1", NULL };
	lw_run(&r, env, (const char *[]){ "--fail-on-leak", NULL }, (const char *[]){ "true", NULL });
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert(strstr(r.err, "leakwatch: no segment for pid ") &&
		  strstr(r.err, " (true): LEAKWATCH_DISABLE is set in the environment: not traced\n"), "%s", r.err);
	cmd_result_free(&r);
}

Test(run_exit, no_room_for_a_segment_is_not_traced)
{
	if (geteuid() != 0)
		cr_skip_test("mounting a tmpfs needs root");
	snprintf(mnt, sizeof mnt, "%s/tiny", tmp);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0)
		cr_skip_test("cannot mount a tmpfs here: %s", strerror(errno));
	mounted = 1;
	char dir_env[160];
	snprintf(dir_env, sizeof dir_env, "LEAKWATCH_DIR=%s", mnt);
	char *env[] = { dir_env, NULL };
	struct cmd_result r;
	lw_run(&r, env, NULL, (const char *[]){ "true", NULL });
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert(strstr(r.err, "leakwatch: no segment for pid ") && strstr(r.err, " (true): the shim could not create it") &&
		  strstr(r.err, ": not traced\n"), "%s", r.err);
	cr_assert_null(strstr(r.err, "\nleakwatch: 0 sockets left open\n"), "no plain all-clear: %s", r.err);
	cmd_result_free(&r);
}

Test(run_exit, report_stays_off_the_commands_stdout)
{
	struct cmd_result r;
	/* JSON on stderr by default: stdout is echo's alone, and `| jq` works */
	lw_run(&r, NULL, (const char *[]){ "--format", "json", NULL }, (const char *[]){ "echo", "hi", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "hi\n");
	struct tj *j = tj_parse(r.err);
	cr_assert_not_null(j, "stderr is the JSON report: %s", r.err);
	cr_assert_eq(tj_num(tj_get(j, "run"), "exit_status", -1), 0);
	cr_assert_eq(tj_len(tj_get(j, "not_traced")), 0);
	tj_free(j);
	cmd_result_free(&r);

	/* text: on stderr, after the status line */
	lw_run(&r, NULL, NULL, (const char *[]){ "echo", "hi", NULL });
	cr_assert_str_eq(r.out, "hi\n");
	const char *st = strstr(r.err, "leakwatch: command exited with status 0\n");
	cr_assert_not_null(st, "%s", r.err);
	cr_assert(strstr(st, "=== main process, pid "), "%s", r.err);
	cr_assert(strstr(st, "\nleakwatch: 0 sockets left open\n"), "%s", r.err);
	cmd_result_free(&r);

	/* folded, on stdout on request: after the command's own output */
	lw_run(&r, NULL, (const char *[]){ "--format", "folded", "--output", "-", NULL },
	       (const char *[]){ FIX("heap_leak"), "basic", "3", "100", NULL });
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, ";main;make_leak 300\n"), "%s", r.out);
	cr_assert_str_eq(r.err, "");
	cmd_result_free(&r);

	/* --output FILE: nothing on either stream but the status line */
	char file[128];
	snprintf(file, sizeof file, "%s/report.txt", tmp);
	lw_run(&r, NULL, (const char *[]){ "--output", file, NULL }, (const char *[]){ "echo", "hi", NULL });
	cr_assert_str_eq(r.out, "hi\n");
	cr_assert_str_eq(r.err, "leakwatch: command exited with status 0\n");
	char *text = slurp(file);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "=== main process, pid ") && strstr(text, "\nleakwatch: 0 sockets left open\n"), "%s",
		  text);
	free(text);
	cmd_result_free(&r);
}
