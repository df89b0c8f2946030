/* SPDX-License-Identifier: MIT */
/*
 * Python frames in recorded stacks (issue 14): unmodified CPython 3.11,
 * 3.12 and 3.13 interpreters under the shim, their socket and heap stacks
 * naming the Python functions (qualified names), files and lines; code
 * objects freed and their addresses reused still named right; threads;
 * an older interpreter said once to have C frames only.
 *
 * Interpreters: Debian's /usr/bin/python3.11 (required) and the pyenv
 * builds found under /root/.pyenv/versions (3.11.x, 3.12.x, 3.13.x; 3.10.x
 * for the older one), each skipped when absent.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fixtures.h"
#include "lib/json.h"
#include "lib/spawn.h"

static char tmp[PATH_MAX];

static void setup(void)
{
	lw_tmpdir(tmp, sizeof tmp);
}

static void teardown(void)
{
	lw_rmdir(tmp);
}

TestSuite(python, .init = setup, .fini = teardown, .timeout = 240);

static const char *write_script(const char *name, const char *text)
{
	static char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* An interpreter of pyenv's for major.minor, or NULL. */
static const char *pyenv_python(int minor, char *buf, size_t len)
{
	DIR *d = opendir("/root/.pyenv/versions");
	struct dirent *e;
	char want[16];
	snprintf(want, sizeof want, "3.%d.", minor);
	buf[0] = '\0';
	while (d && (e = readdir(d)))
		if (strncmp(e->d_name, want, strlen(want)) == 0) {
			snprintf(buf, len, "/root/.pyenv/versions/%s/bin/python3.%d", e->d_name, minor);
			if (access(buf, X_OK) == 0)
				break;
			buf[0] = '\0';
		}
	if (d)
		closedir(d);
	return buf[0] ? buf : NULL;
}

static struct tj *run_py(const char *py, const char *script, const char *kind, char *const env[])
{
	struct cmd_result r;
	const char *cmd[] = { py, script, NULL };
	char *text = run_report(&r, env, (const char *[]){ "--kind", kind, "--check-reachable=no", NULL }, cmd);
	cr_assert_not_null(text, "%s: no report: %s", py, r.err);
	struct tj *j = tj_parse(text);
	cr_assert_not_null(j, "%.300s", text);
	free(text);
	cmd_result_free(&r);
	return j;
}

/* Index of the Python frame named fn (at line, 0: any) in a JSON stack, or -1. */
static int py_frame(const struct tj *stack, const char *fn, int line)
{
	for (size_t i = 0; i < tj_len(stack); i++) {
		const struct tj *f = tj_at(stack, i);
		const char *name = tj_str(f, "function");
		if (tj_num(f, "python", 0) == 1 && name && strcmp(name, fn) == 0 &&
		    (!line || tj_num(f, "line", 0) == line))
			return (int)i;
	}
	return -1;
}

static const char leak_py[] =
	"import os, socket\n"
	"pool = []\n"
	"def get_user_data(user_id):\n"
	"    conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # line 4\n"
	"    pool.append(conn)\n"
	"    return user_id\n"
	"def handler(n):\n"
	"    for i in range(n):\n"
	"        get_user_data(i)  # line 9\n"
	"class Svc:\n"
	"    def serve(self):\n"
	"        handler(3)  # line 12\n"
	"Svc().serve()  # line 13\n"
	"os._exit(0)  # no finalizer closes them\n";

static void expect_named(const char *py, int want_minor)
{
	const char *script = write_script("leak.py", leak_py);
	struct tj *j = run_py(py, script, "sockets", NULL);
	const struct tj *p = tj_at(tj_get(j, "processes"), 0);
	const struct tj *pyinfo = tj_get(p, "python");
	cr_assert(pyinfo && pyinfo->type == TJ_OBJ, "%s: the report knows it is Python", py);
	cr_expect_eq(tj_num(pyinfo, "frames", 0), 1, "%s", py);
	char v[16];
	snprintf(v, sizeof v, "3.%d.", want_minor);
	cr_expect(tj_str(pyinfo, "version") && strncmp(tj_str(pyinfo, "version"), v, strlen(v)) == 0, "%s: %s", py,
		  tj_str(pyinfo, "version"));
	const struct tj *groups = tj_get(p, "groups");
	cr_assert_eq(tj_len(groups), 1, "%s: the three sockets are one group (one Python call site)", py);
	const struct tj *g = tj_at(groups, 0);
	cr_expect_eq(tj_num(g, "count", 0), 3, "%s", py);
	const struct tj *st = tj_get(g, "stack");
	int a = py_frame(st, "get_user_data", 4), b = py_frame(st, "handler", 9), c = py_frame(st, "Svc.serve", 12),
	    d = py_frame(st, "<module>", 13);
	cr_expect(a >= 0 && b > a && c > b && d > c, "%s: get_user_data:4 < handler:9 < Svc.serve:12 < <module>:13 (%d %d %d %d)",
		  py, a, b, c, d);
	const char *file = a >= 0 ? tj_str(tj_at(st, (size_t)a), "file") : NULL;
	cr_expect(file && strstr(file, "leak.py"), "%s: the script's path: %s", py, file ? file : "(none)");
	cr_expect(py_frame(st, "socket.__init__", 0) >= 0 && py_frame(st, "socket.__init__", 0) < a,
		  "%s: the stdlib's socket.__init__ inside get_user_data", py);
	tj_free(j);
}

Test(python, debian_311_names_the_python_functions)
{
	cr_assert_eq(access("/usr/bin/python3.11", X_OK), 0, "Debian's python3.11 is part of the base system");
	expect_named("/usr/bin/python3.11", 11);
}

Test(python, pyenv_311_312_313_name_them_too)
{
	char buf[PATH_MAX];
	int any = 0;
	for (int minor = 11; minor <= 13; minor++) {
		const char *py = pyenv_python(minor, buf, sizeof buf);
		if (!py) {
			fprintf(stderr, "python: no pyenv 3.%d here, not checked\n", minor);
			continue;
		}
		any = 1;
		expect_named(py, minor);
	}
	if (!any)
		cr_skip_test("no pyenv interpreter on this machine");
}

/* Functions made and dropped in a loop: their code objects are freed and
 * the memory reused, every leaked socket must still carry its own name. */
static const char reuse_py[] =
	"import gc, os, socket\n"
	"keep = []\n"
	"for i in range(60):\n"
	"    g = {'socket': socket}\n"
	"    src = '\\n' * i + 'def f_%d():\\n    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\\n' % i\n"
	"    exec(compile(src, 'gen_%d.py' % i, 'exec'), g)\n"
	"    keep.append(g['f_%d' % i]())\n"
	"    del g\n"
	"    gc.collect()\n"
	"os._exit(0)\n";

Test(python, freed_code_objects_are_never_named_wrong)
{
	const char *script = write_script("reuse.py", reuse_py);
	struct tj *j = run_py("/usr/bin/python3.11", script, "sockets", NULL);
	const struct tj *groups = tj_get(tj_at(tj_get(j, "processes"), 0), "groups");
	int seen[60] = { 0 }, total = 0;
	for (size_t i = 0; i < tj_len(groups); i++) {
		const struct tj *st = tj_get(tj_at(groups, i), "stack");
		for (size_t k = 0; k < tj_len(st); k++) {
			const struct tj *f = tj_at(st, k);
			const char *fn = tj_str(f, "function"), *file = tj_str(f, "file");
			if (tj_num(f, "python", 0) != 1 || !fn || strncmp(fn, "f_", 2) != 0)
				continue;
			int n = atoi(fn + 2), m = file ? atoi(file + (strrchr(file, '_') ? strrchr(file, '_') - file + 1 : 0)) : -1;
			cr_assert(n >= 0 && n < 60, "%s", fn);
			cr_expect_eq(m, n, "function %s named from file %s: another code object's name", fn, file);
			/* the def is on line n + 1, the call on n + 2 */
			cr_expect_eq(tj_num(f, "line", 0), n + 2, "%s at line %.0f", fn, tj_num(f, "line", 0));
			seen[n] += (int)tj_num(tj_at(groups, i), "count", 0);
			total++;
			break;
		}
	}
	for (int n = 0; n < 60; n++)
		cr_expect_eq(seen[n], 1, "f_%d's socket: %d", n, seen[n]);
	cr_expect_eq(total, 60);
	tj_free(j);
}

static const char thread_py[] =
	"import os, socket, threading\n"
	"keep = []\n"
	"def worker_opens():\n"
	"    keep.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))  # line 4\n"
	"t = threading.Thread(target=worker_opens)\n"
	"t.start(); t.join()\n"
	"big = []\n"
	"def alloc_big():\n"
	"    big.append(bytearray(1 << 20))  # line 9\n"
	"alloc_big()\n"
	"os._exit(0)\n";

Test(python, threads_and_heap_blocks_carry_python_frames)
{
	const char *script = write_script("thread.py", thread_py);
	char *env[] = { "LEAKWATCH_HEAP=full", NULL };
	struct tj *j = run_py("/usr/bin/python3.11", script, "all", env);
	const struct tj *p = tj_at(tj_get(j, "processes"), 0);
	const struct tj *groups = tj_get(p, "groups");
	int found = 0;
	for (size_t i = 0; i < tj_len(groups); i++)
		found |= py_frame(tj_get(tj_at(groups, i), "stack"), "worker_opens", 4) >= 0;
	cr_expect(found, "the thread's socket names worker_opens at line 4");
	const struct tj *hg = tj_get(tj_get(p, "heap"), "groups");
	found = 0;
	for (size_t i = 0; i < tj_len(hg); i++)
		found |= py_frame(tj_get(tj_at(hg, i), "stack"), "alloc_big", 9) >= 0;
	cr_expect(found, "the 1 MiB bytearray's block names alloc_big at line 9");
	tj_free(j);
}

Test(python, an_older_interpreter_is_said_to_have_c_frames_only)
{
	char buf[PATH_MAX];
	const char *py = pyenv_python(10, buf, sizeof buf);
	if (!py)
		cr_skip_test("no Python 3.10 here");
	const char *script = write_script("leak.py", leak_py);
	struct tj *j = run_py(py, script, "sockets", NULL);
	const struct tj *p = tj_at(tj_get(j, "processes"), 0);
	const struct tj *pyinfo = tj_get(p, "python");
	cr_assert(pyinfo && pyinfo->type == TJ_OBJ);
	cr_expect_eq(tj_num(pyinfo, "frames", 1), 0);
	const struct tj *st = tj_get(tj_at(tj_get(p, "groups"), 0), "stack");
	for (size_t i = 0; i < tj_len(st); i++)
		cr_expect_eq(tj_num(tj_at(st, i), "python", 0), 0, "never a Python frame for 3.10");
	tj_free(j);
	struct cmd_result r;
	lw_run_timed(&r, NULL, (const char *[]){ "--kind", "sockets", NULL }, (const char *[]){ py, script, NULL }, 120);
	cr_expect_not_null(strstr(r.err, "note: Python older than 3.11: stacks show C frames only\n"), "%s", r.err);
	const char *first = strstr(r.err, "note: Python older");
	cr_expect(first && !strstr(first + 1, "note: Python older"), "said once");
	cmd_result_free(&r);
}

/* Sockets the program dropped without close(): CPython's finalizer closes
 * them (ResourceWarning).  They are leaks: under run (counted, failing
 * --fail-on-leak) and in a live report; explicit close() and `with` are not. */
static const char gc_py[] =
	"import socket, sys\n"
	"def get_user_data(i):\n"
	"    conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # line 3\n"
	"    return i  # conn dropped, never closed\n"
	"for i in range(4):\n"
	"    get_user_data(i)\n"
	"s = socket.socket(); s.close()\n"
	"with socket.socket() as t:\n"
	"    pass\n"
	"if len(sys.argv) > 1:\n"
	"    print('ready', flush=True)\n"
	"    sys.stdin.readline()\n";

Test(python, sockets_closed_by_the_garbage_collector_are_leaks)
{
	const char *script = write_script("gc.py", gc_py);
	struct cmd_result r;
	const char *cmd[] = { "/usr/bin/python3.11", script, NULL };
	char *text = run_report(&r, NULL, (const char *[]){ "--kind", "sockets", "--fail-on-leak", NULL }, cmd);
	cr_assert_not_null(text, "%s", r.err);
	cr_expect_eq(r.status, 1, "dropped sockets fail --fail-on-leak");
	struct tj *j = tj_parse(text);
	cr_expect_eq(tj_num(j, "leaked", -1), 4, "the four dropped ones, not the closed two");
	const struct tj *gc = tj_get(tj_at(tj_get(j, "processes"), 0), "gc_closed");
	cr_assert_eq(tj_len(gc), 1, "%s", text);
	cr_expect_eq(tj_num(tj_at(gc, 0), "count", 0), 4);
	cr_expect_str_eq(tj_str(tj_at(gc, 0), "kind"), "socket");
	cr_expect_geq(py_frame(tj_get(tj_at(gc, 0), "stack"), "get_user_data", 3), 0, "opened in get_user_data");
	tj_free(j);
	free(text);
	cmd_result_free(&r);

	/* live */
	char dir[PATH_MAX + 32], pre[PATH_MAX + 16];
	snprintf(dir, sizeof dir, "LEAKWATCH_DIR=%s", tmp);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	char *env[] = { dir, pre, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 60 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ "/usr/bin/python3.11", (char *)script, "hold", NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 30), 1, "%s", sp.r.err);
	char seg[PATH_MAX + 64], out[1 << 16], err[4096];
	snprintf(seg, sizeof seg, "%s/leakwatch.%d", tmp, (int)sp.pid);
	const char *args[] = { "report", seg, "--kind", "sockets", NULL };
	cr_expect_eq(cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err), 0, "%s", err);
	cr_expect_not_null(strstr(out, "GC-CLOSED  4 sockets never closed by the program"), "%s", out);
	cr_expect_not_null(strstr(out, "get_user_data"), "%s", out);
	struct cmd_result fr;
	spawn_finish(&sp, SIGTERM, &fr);
	cmd_result_free(&fr);
}

/* Sockets in a reference cycle: the cycle collector calls their finalizer
 * directly (no exported function on that path); known by the finalizer's
 * close call site, learnt from a socket dropped by a reference count. */
static const char cycle_py[] =
	"import socket, gc\n"
	"class Holder: pass\n"
	"def drop_one():\n"
	"    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # line 4\n"
	"def in_cycle():\n"
	"    h = Holder(); h.me = h\n"
	"    h.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # line 7\n"
	"def collected():\n"
	"    in_cycle(); gc.collect()  # explicitly\n"
	"    in_cycle(); x = [[] for _ in range(100000)]  # by allocations\n"
	"drop_one()\n"
	"collected()\n"
	"with socket.socket() as t: pass\n"
	"h = Holder(); h.me = h; h.s = socket.socket(); h.s.close(); del h; gc.collect()\n";

static void expect_cycles(const char *py)
{
	const char *script = write_script("cycle.py", cycle_py);
	struct tj *j = run_py(py, script, "sockets", NULL);
	cr_expect_eq(tj_num(j, "leaked", -1), 3, "%s: the dropped one and the two in cycles, not the closed two", py);
	const struct tj *gc = tj_get(tj_at(tj_get(j, "processes"), 0), "gc_closed");
	double n = 0;
	int cyc = 0;
	for (size_t i = 0; i < tj_len(gc); i++) {
		n += tj_num(tj_at(gc, i), "count", 0);
		if (py_frame(tj_get(tj_at(gc, i), "stack"), "in_cycle", 7) >= 0)
			cyc += (int)tj_num(tj_at(gc, i), "count", 0);
	}
	cr_expect_eq(n, 3, "%s: three GC-closed sockets", py);
	cr_expect_eq(cyc, 2, "%s: both of in_cycle's, opened at line 7", py);
	tj_free(j);
}

Test(python, sockets_in_a_reference_cycle_closed_by_the_cycle_collector)
{
	expect_cycles("/usr/bin/python3.11");
	char buf[PATH_MAX];
	for (int minor = 11; minor <= 13; minor++)
		if (pyenv_python(minor, buf, sizeof buf))
			expect_cycles(buf);
}

/* A file object dropped without close(): found where the interpreter calls
 * _Py_Dealloc out of line (pyenv's builds); Debian's LTO build inlines it. */
Test(python, files_closed_by_the_garbage_collector_in_a_pyenv_build)
{
	char buf[PATH_MAX];
	const char *py = pyenv_python(11, buf, sizeof buf);
	if (!py)
		cr_skip_test("no pyenv 3.11 here");
	const char *script = write_script("gcfile.py", "def read_config():\n    f = open('/dev/null')  # line 2\n    return 1\nread_config()\n");
	struct tj *j = run_py(py, script, "all", NULL);
	cr_expect_eq(tj_num(j, "leaked_fds", -1), 1, "the dropped file is a leak");
	const struct tj *gc = tj_get(tj_at(tj_get(j, "processes"), 0), "gc_closed");
	cr_assert_eq(tj_len(gc), 1);
	cr_expect_str_eq(tj_str(tj_at(gc, 0), "kind"), "file");
	cr_expect_geq(py_frame(tj_get(tj_at(gc, 0), "stack"), "read_config", 2), 0);
	tj_free(j);
}
