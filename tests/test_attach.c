/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch attach PID` / `detach PID` (issue 13): a process started
 * without the shim gets it while it runs.
 *
 *   - tests/fixtures/attach.c (threads busy in malloc, blocked in read,
 *     accept and poll) runs on through attach and detach: same descriptors,
 *     no EINTR, no early return, its heap intact; a leak made after the
 *     attach is reported at its line, what was open before as "before
 *     attach" with the kernel's evidence; after detach nothing more is
 *     recorded;
 *   - a python3 HTTP server under light load keeps answering through it,
 *     and the sockets a request handler leaks after the attach are
 *     reported with their (C) stack;
 *   - each preflight failure has its line and its exit status.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fixtures.h"
#include "lib/json.h"
#include "lib/spawn.h"

#define ATTACH_FIX LW_BUILD_DIR "/fixtures/attach"
#define ATTACH_SRC "tests/fixtures/attach.c"

static char tmp[PATH_MAX], dirv[PATH_MAX + 32];

static void setup(void)
{
	lw_tmpdir(tmp, sizeof tmp);
	snprintf(dirv, sizeof dirv, "LEAKWATCH_DIR=%s", tmp);
}

static void teardown(void)
{
	lw_rmdir(tmp);
}

TestSuite(attach, .init = setup, .fini = teardown, .timeout = 180);

/* `leakwatch ARGS...` with our LEAKWATCH_DIR; status, stdout and stderr. */
static int lw(const char *const *args, char *out, size_t outlen, char *err, size_t errlen)
{
	char *env[] = { dirv, NULL };
	struct spawn_opts so = { .env = env, .timeout_s = 60 };
	return cli_run_opts(args, &so, out, outlen, err, errlen);
}

static void expect_status(const char *const *args, int want, const char *text);

static void say(struct spawn *sp, const char *line, const char *want)
{
	size_t n = strlen(line);
	cr_assert_eq(write(sp->in, line, n), (ssize_t)n);
	if (want)
		cr_assert_eq(spawn_wait_output(sp, want, 20), 1, "no '%s' after '%s': %s", want, line, sp->r.out);
}

/* The last "fds ..." line the fixture printed. */
static void last_fds(struct spawn *sp, char *buf, size_t len)
{
	const char *p = sp->r.out, *last = NULL;
	while ((p = strstr(p, "fds ")))
		last = p++;
	cr_assert_not_null(last, "%s", sp->r.out);
	snprintf(buf, len, "%.*s", (int)strcspn(last, "\n"), last);
}

static struct tj *report_json(int pid)
{
	static char out[1 << 21], err[4096];
	char spid[16];
	snprintf(spid, sizeof spid, "%d", pid);
	int st = lw((const char *[]){ "report", spid, "--format", "json", NULL }, out, sizeof out, err, sizeof err);
	cr_assert_eq(st, 0, "report: %s", err);
	struct tj *j = tj_parse(out);
	cr_assert_not_null(j, "%.300s", out);
	return j;
}

/* Does any frame of stack (a JSON array) name function fn (prefix) at line (0: any)? */
static int stack_has(const struct tj *stack, const char *fn, int line)
{
	for (size_t i = 0; i < tj_len(stack); i++) {
		const char *f = tj_str(tj_at(stack, i), "function");
		if (f && strncmp(f, fn, strlen(fn)) == 0 && (!line || tj_num(tj_at(stack, i), "line", 0) == line))
			return 1;
	}
	return 0;
}

static const struct tj *group_at(const struct tj *groups, const char *fn, int line)
{
	for (size_t i = 0; i < tj_len(groups); i++)
		if (stack_has(tj_get(tj_at(groups, i), "stack"), fn, line))
			return tj_at(groups, i);
	return NULL;
}

Test(attach, multithreaded_target_runs_on_through_attach_and_detach)
{
	char *env[] = { dirv, "LEAKWATCH_HEAP=full", NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 120 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ ATTACH_FIX, NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1, "%s", sp.r.out);
	say(&sp, "fds\n", "fds ");
	char before[512], after[512];
	last_fds(&sp, before, sizeof before);

	char spid[16], out[8192], err[8192];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	int st = lw((const char *[]){ "attach", spid, NULL }, out, sizeof out, err, sizeof err);
	cr_assert_eq(st, 0, "attach: %s%s", out, err);
	cr_expect_not_null(strstr(out, "leakwatch: attached to pid "), "%s", out);
	cr_expect_not_null(strstr(out, " was stopped "), "the pause is said: %s", out);

	sp.r.out[0] = '\0', sp.r.out_len = 0;
	say(&sp, "fds\n", "fds ");
	last_fds(&sp, after, sizeof after);
	cr_expect_str_eq(after, before, "attach left the program's descriptors as they were");
	say(&sp, "leak\n", "leaked\n");

	struct tj *j = report_json((int)sp.pid);
	const struct tj *at = tj_get(j, "attach");
	cr_assert(at && at->type == TJ_OBJ, "the report says it was attached");
	cr_expect_gt(tj_num(at, "call_sites", 0), 0);
	cr_expect_eq(tj_get(at, "detached_age_s")->type, TJ_NULL);
	const struct tj *groups = tj_get(j, "groups");
	const struct tj *leak = group_at(groups, "leak_after_attach", marker_line(ATTACH_SRC, "attach.leak"));
	cr_assert_not_null(leak, "the leak made after attach is reported at its line");
	cr_expect_eq(tj_num(leak, "count", 0), 4);
	/* the pool's two connections and the listener were open before: no stack, kernel evidence */
	size_t before_attach = 0, listening = 0;
	for (size_t i = 0; i < tj_len(groups); i++) {
		const struct tj *g = tj_at(groups, i);
		if (!tj_str(g, "origin") || strcmp(tj_str(g, "origin"), "before_attach") != 0)
			continue;
		cr_expect_eq(tj_len(tj_get(g, "stack")), 0, "no stack for what was open before");
		cr_expect_eq(tj_get(g, "inherited")->type, TJ_BOOL);
		cr_expect_eq(tj_num(g, "inherited", 1), 0, "before attach is judged, not set aside");
		before_attach += (size_t)tj_num(g, "count", 0);
		listening += tj_str(g, "verdict") && strcmp(tj_str(g, "verdict"), "listening") == 0;
		const struct tj *states = tj_get(g, "states");
		cr_expect_gt(tj_len(states), 0, "the kernel's state for a socket open before attach");
	}
	cr_expect_geq(before_attach, 5, "listener, 2 pool connections and their 2 accepted ends");
	cr_expect_eq(listening, 1);
	const struct tj *heap = tj_get(j, "heap");
	cr_expect_str_eq(tj_str(heap, "mode"), "full", "the target's own LEAKWATCH_HEAP applies");
	const struct tj *hg = group_at(tj_get(heap, "groups"), "leak_after_attach", marker_line(ATTACH_SRC, "attach.heap"));
	cr_assert_not_null(hg, "the heap blocks leaked after attach");
	cr_expect_eq(tj_num(hg, "count", 0), 8);
	tj_free(j);

	st = lw((const char *[]){ "detach", spid, NULL }, out, sizeof out, err, sizeof err);
	cr_assert_eq(st, 0, "detach: %s%s", out, err);
	say(&sp, "leak\n", "leaked\n");
	j = report_json((int)sp.pid);
	at = tj_get(j, "attach");
	cr_expect_eq(tj_get(at, "detached_age_s")->type, TJ_NUM, "the report says it was detached");
	leak = group_at(tj_get(j, "groups"), "leak_after_attach", 0);
	cr_expect_eq(tj_num(leak, "count", 0), 4, "nothing recorded after detach");
	tj_free(j);

	/* the blocked threads return with what they were sent, not before, not EINTR */
	say(&sp, "wake\n", "woken\n");
	say(&sp, "check\n", "\n");
	cr_expect_eq(spawn_wait_output(&sp, "ok ", 20), 1, "the program saw something wrong: %s", sp.r.out);
	cr_expect_null(strstr(sp.r.out, "bad "), "%s", sp.r.out);

	/* once detached, no second attach */
	st = lw((const char *[]){ "attach", spid, NULL }, out, sizeof out, err, sizeof err);
	cr_expect_eq(st, 10, "%s", err);
	cr_expect_eq(count_lines(err), 1, "%s", err);

	say(&sp, "quit\n", NULL);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0, "the program's own exit status: %s", r.out);
	cmd_result_free(&r);
}

/* An object loaded after the attach: its calls are taken over at the first
 * recorded event (here the program's own socket calls) at least 10 ms after
 * the last look for new objects, not before. */
Test(attach, objects_loaded_after_attach_are_taken_over)
{
	char *env[] = { dirv, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 120 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ ATTACH_FIX, NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1);
	char spid[16], out[8192], err[8192];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	cr_assert_eq(lw((const char *[]){ "attach", spid, NULL }, out, sizeof out, err, sizeof err), 0, "%s", err);
	say(&sp, "plugin\n", "plugin\n");
	/* the first recorded event at least 10 ms (LW_LIM_ATTACH_RESCAN_NS) after
	 * the last look finds the plugin */
	usleep(50 * 1000);
	say(&sp, "leak\n", "leaked\n");
	say(&sp, "plugin2\n", "plugin2\n");
	struct tj *j = report_json((int)sp.pid);
	const struct tj *g = group_at(tj_get(j, "groups"), "plugin_open",
				      marker_line("tests/fixtures/libplugin.c", "plugin.socket"));
	cr_assert_not_null(g, "the plugin's sockets opened once it was taken over");
	cr_expect_eq(tj_num(g, "count", 0), 2, "the two after the next event; the first one was not seen");
	tj_free(j);
	say(&sp, "check\n", "\n");
	cr_expect_eq(spawn_wait_output(&sp, "ok ", 20), 1, "%s", sp.r.out);
	say(&sp, "quit\n", NULL);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0);
	cmd_result_free(&r);
}

/* Signals that arrive for the borrowed thread while it runs the shim's load
 * are held back and delivered after: none lost (real-time ones, counted). */
Test(attach, signals_during_the_attach_are_not_lost)
{
	char *env[] = { dirv, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 120 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ ATTACH_FIX, NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1);
	say(&sp, "sigs\n", "sending\n");
	usleep(100 * 1000);
	char spid[16], out[8192], err[8192];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	cr_assert_eq(lw((const char *[]){ "attach", spid, NULL }, out, sizeof out, err, sizeof err), 0, "%s", err);
	say(&sp, "sigcount\n", "got ");
	cr_assert_eq(spawn_wait_output(&sp, "\n", 20), 1);
	const char *p = strstr(sp.r.out, "sent ");
	int sent = 0, got = 0;
	cr_assert(p && sscanf(p, "sent %d got %d", &sent, &got) == 2, "%s", sp.r.out);
	cr_expect_gt(sent, 1000);
	cr_expect_eq(got, sent, "every queued signal reached the handler (%d of %d)", got, sent);
	say(&sp, "check\n", "\n");
	cr_expect_eq(spawn_wait_output(&sp, "ok ", 20), 1, "%s", sp.r.out);
	say(&sp, "quit\n", NULL);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0);
	cmd_result_free(&r);
}

/* A program bound to an allocator of its own (redis links jemalloc): the
 * hooks forward to libc's, so a block made before the attach would be freed
 * by the wrong allocator (redis crashed so).  Refused with status 7, the
 * program untouched (its strdup()ed blocks still freed by its own free). */
Test(attach, a_program_with_its_own_allocator_is_refused)
{
	char *env[] = { dirv, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 120 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ LW_BUILD_DIR "/fixtures/ownalloc", NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1);
	char spid[16];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	expect_status((const char *[]){ "attach", spid, NULL }, 7, "uses an allocator of its own");
	say(&sp, "leak\n", "leaked\n");
	say(&sp, "free\n", "\n");
	cr_expect_eq(spawn_wait_output(&sp, "freed\n", 20), 1, "%s", sp.r.out);
	say(&sp, "quit\n", NULL);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0, "no bad free: %s", r.out);
	cmd_result_free(&r);
}

Test(attach, heap_tracking_after_attach_defaults_to_sampled)
{
	char *env[] = { dirv, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 120 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ ATTACH_FIX, NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1);
	char spid[16], out[8192], err[8192];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	cr_assert_eq(lw((const char *[]){ "attach", spid, NULL }, out, sizeof out, err, sizeof err), 0, "%s", err);
	struct tj *j = report_json((int)sp.pid);
	cr_expect_str_eq(tj_str(tj_get(j, "heap"), "mode"), "sampled");
	tj_free(j);
	say(&sp, "check\n", "\n");
	cr_expect_eq(spawn_wait_output(&sp, "ok ", 20), 1, "%s", sp.r.out);
	say(&sp, "quit\n", NULL);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0);
	cmd_result_free(&r);
}

/* ---- a real server ------------------------------------------------------------------------ */

static const char py_server[] =
	"import http.server, socket\n"
	"leaked = []\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    def do_GET(self):\n"
	"        if self.path == '/leak':\n"
	"            leaked.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))\n"
	"        body = b'ok\\n'\n"
	"        self.send_response(200)\n"
	"        self.send_header('Content-Length', str(len(body)))\n"
	"        self.end_headers()\n"
	"        self.wfile.write(body)\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
	"print('port', s.server_address[1], flush=True)\n"
	"s.serve_forever()\n";

static int http_get(int port, const char *path)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct timeval tv = { 5, 0 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		close(s);
		return -1;
	}
	char req[128], buf[512];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
	if (write(s, req, (size_t)n) != n) {
		close(s);
		return -1;
	}
	size_t got = 0;
	ssize_t k;
	while (got < sizeof buf - 1 && (k = read(s, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)k;
	buf[got] = '\0';
	close(s);
	return strncmp(buf, "HTTP/1.0 200", 12) == 0 ? 200 : -1;
}

static atomic_int load_stop, load_ok, load_bad, load_port;

static void *load(void *arg)
{
	(void)arg;
	while (!atomic_load(&load_stop)) {
		if (http_get(atomic_load(&load_port), "/") == 200)
			atomic_fetch_add(&load_ok, 1);
		else
			atomic_fetch_add(&load_bad, 1);
		usleep(20000);
	}
	return NULL;
}

Test(attach, python_http_server_keeps_answering_and_its_leak_is_reported)
{
	const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char script[PATH_MAX + 16];
	snprintf(script, sizeof script, "%s/server.py", tmp);
	FILE *f = fopen(script, "w");
	cr_assert_not_null(f);
	fputs(py_server, f);
	fclose(f);
	char *env[] = { dirv, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 150 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ (char *)py, script, NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "\n", 30), 1, "%s", sp.r.err);
	int port = 0;
	cr_assert_eq(sscanf(sp.r.out, "port %d", &port), 1, "%s", sp.r.out);
	atomic_store(&load_port, port);
	pthread_t lt;
	pthread_create(&lt, NULL, load, NULL);
	usleep(200000);

	char spid[16], out[8192], err[8192];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	int st = lw((const char *[]){ "attach", spid, NULL }, out, sizeof out, err, sizeof err);
	cr_expect_eq(st, 0, "attach: %s%s", out, err);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(http_get(port, "/leak"), 200);
	struct tj *j = report_json((int)sp.pid);
	const struct tj *groups = tj_get(j, "groups");
	const struct tj *leak = NULL;
	for (size_t i = 0; i < tj_len(groups); i++) {
		const struct tj *g = tj_at(groups, i);
		if (strcmp(tj_str(g, "type") ? tj_str(g, "type") : "", "SOCK_DGRAM") == 0 && tj_len(tj_get(g, "stack")) > 0)
			leak = g;
	}
	cr_assert_not_null(leak, "the UDP sockets the handler leaked after attach");
	cr_expect_eq(tj_num(leak, "count", 0), 3);
	/* the Python frames of the handler, attached or not (issue 14) */
	cr_expect(stack_has(tj_get(leak, "stack"), "H.do_GET", 6), "made by H.do_GET at server.py:6");
	tj_free(j);
	st = lw((const char *[]){ "detach", spid, NULL }, out, sizeof out, err, sizeof err);
	cr_expect_eq(st, 0, "detach: %s%s", out, err);
	usleep(200000);
	atomic_store(&load_stop, 1);
	pthread_join(lt, NULL);
	cr_expect_gt(atomic_load(&load_ok), 10, "it answered under load");
	cr_expect_eq(atomic_load(&load_bad), 0, "no request failed through attach and detach");
	cr_expect_eq(http_get(port, "/"), 200, "still answering after detach");
	struct cmd_result r;
	spawn_finish(&sp, SIGTERM, &r);
	cmd_result_free(&r);
}

/* ---- preflight ------------------------------------------------------------------------- */

static void expect_status(const char *const *args, int want, const char *text)
{
	char out[4096], err[4096];
	int st = lw(args, out, sizeof out, err, sizeof err);
	cr_expect_eq(st, want, "%s %s: status %d: %s%s", args[0], args[1], st, out, err);
	cr_expect_eq(count_lines(err), 1, "one line: %s", err);
	cr_expect_not_null(strstr(err, text), "'%s' not in: %s", text, err);
}

Test(attach, preflight_failures_have_their_own_status)
{
	expect_status((const char *[]){ "attach", lw_dead_pid_str(), NULL }, 2, "no process");
	expect_status((const char *[]){ "attach", "12abc", NULL }, 2, "not a process id");
	expect_status((const char *[]){ "detach", lw_dead_pid_str(), NULL }, 2, "no process");

	/* preloaded already */
	char pre[PATH_MAX + 16];
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	char *env[] = { dirv, pre, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 60 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ ATTACH_FIX, NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1);
	char spid[16];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	expect_status((const char *[]){ "attach", spid, NULL }, 10, "traced by leakwatch already");
	expect_status((const char *[]){ "detach", spid, NULL }, 10, "not attached");
	say(&sp, "quit\n", NULL);
	struct cmd_result r;
	spawn_finish(&sp, 0, &r);
	cmd_result_free(&r);

	/* another tracer, named; a process without the shim to detach */
	char *env2[] = { dirv, NULL };
	so.env = env2;
	cr_assert_eq(spawn_start(&sp, (char *const[]){ ATTACH_FIX, NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1);
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	expect_status((const char *[]){ "detach", spid, NULL }, 10, "is not traced by leakwatch");
	/* another user, without root */
	if (geteuid() == 0) {
		char out[4096], err[4096];
		const char *args[] = { "attach", spid, NULL };
		int st = cli_run(args, 65534, out, sizeof out, err, sizeof err);
		cr_expect_eq(st, 5, "%s", err);
		cr_expect_not_null(strstr(err, "another user's process needs root"), "%s", err);
	}
	cr_assert_eq(ptrace(PTRACE_SEIZE, sp.pid, 0, 0), 0, "%s", strerror(errno));
	char who[64];
	snprintf(who, sizeof who, "is traced by pid %d", (int)getpid());
	expect_status((const char *[]){ "attach", spid, NULL }, 6, who);
	/* PTRACE_DETACH wants a stopped tracee */
	cr_assert_eq(ptrace(PTRACE_INTERRUPT, sp.pid, 0, 0), 0);
	int ws;
	cr_assert_eq(waitpid(sp.pid, &ws, __WALL), sp.pid);
	cr_assert_eq(ptrace(PTRACE_DETACH, sp.pid, 0, 0), 0, "%s", strerror(errno));
	say(&sp, "check\n", "ok ");
	say(&sp, "quit\n", NULL);
	spawn_finish(&sp, 0, &r);
	cmd_result_free(&r);

	/* a seccomp filter: refused, unless asked to try */
	cr_assert_eq(spawn_start(&sp, (char *const[]){ ATTACH_FIX, "seccomp", NULL }, &so), 0);
	cr_assert_eq(spawn_wait_output(&sp, "ready\n", 20), 1);
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	expect_status((const char *[]){ "attach", spid, NULL }, 9, "seccomp filter");
	char out[4096], err[4096];
	cr_expect_eq(lw((const char *[]){ "attach", spid, "--seccomp-filter-ok", NULL }, out, sizeof out, err,
			sizeof err),
		     0, "%s", err);
	say(&sp, "check\n", "ok ");
	say(&sp, "quit\n", NULL);
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0);
	cmd_result_free(&r);

	/* a statically linked program */
	char prog[PATH_MAX + 16];
	snprintf(prog, sizeof prog, "%s/static-wait", tmp);
	struct spawn_opts co = { .stdin_text = "#include <unistd.h>\nint main(void){char c; return read(0, &c, 1) < 0;}\n",
				 .timeout_s = 120 };
	run_opts(&r, (char *[]){ "cc", "-static", "-x", "c", "-o", prog, "-", NULL }, &co);
	int built = r.status == 0;
	cmd_result_free(&r);
	if (built) {
		cr_assert_eq(spawn_start(&sp, (char *const[]){ prog, NULL }, &so), 0);
		usleep(100000);
		snprintf(spid, sizeof spid, "%d", (int)sp.pid);
		expect_status((const char *[]){ "attach", spid, NULL }, 7, "statically linked");
		say(&sp, "x", NULL);
		spawn_finish(&sp, 0, &r);
		cmd_result_free(&r);
	}
}

/* A process in another mount namespace where the shim's path shows another
 * file (a tmpfs over its directory): refused with status 8, nothing loaded. */
Test(attach, another_mount_namespace_without_the_shim)
{
	if (geteuid() != 0 || !have_program("unshare"))
		cr_skip_test("needs root and unshare(1)");
	char shim[PATH_MAX], fix[PATH_MAX + 16];
	cr_assert_not_null(realpath(lw_shim(), shim));
	char *slash = strrchr(shim, '/');
	*slash = '\0'; /* the shim's directory, hidden in the namespace */
	snprintf(fix, sizeof fix, "%s/attach-copy", tmp);
	struct cmd_result r;
	run_cmd(&r, (char *[]){ "cp", ATTACH_FIX, fix, NULL }, NULL, 10);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	char *env[] = { dirv, NULL };
	struct spawn_opts so = { .env = env, .stdin_pipe = true, .timeout_s = 60 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp,
				 (char *const[]){ "unshare", "-m", "--propagation", "private", "sh", "-c",
						  "mount -t tmpfs none \"$0\" && exec \"$1\"", shim, fix, NULL },
				 &so),
		     0);
	if (spawn_wait_output(&sp, "ready\n", 20) != 1) {
		spawn_finish(&sp, SIGKILL, &r);
		cr_skip_test("cannot make a mount namespace here: %s", r.err);
	}
	char spid[16];
	snprintf(spid, sizeof spid, "%d", (int)sp.pid);
	expect_status((const char *[]){ "attach", spid, NULL }, 8, "another mount namespace");
	char maps[64];
	snprintf(maps, sizeof maps, "/proc/%d/maps", (int)sp.pid);
	char *m = slurp(maps);
	cr_expect(m && !strstr(m, "libleakwatch"), "nothing was loaded");
	free(m);
	say(&sp, "check\n", "ok ");
	say(&sp, "quit\n", NULL);
	spawn_finish(&sp, 0, &r);
	cr_expect_eq(r.status, 0);
	cmd_result_free(&r);
}
