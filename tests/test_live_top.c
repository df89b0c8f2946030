/* SPDX-License-Identifier: MIT */
/*
 * Tests for analyzer/top.c and the new report options, through the
 * leakwatch binary: plain snapshots of a live traced fixture, the last line
 * when it exits, usage errors; report --interval/--idle-for/--by.
 */
#include <criterion/criterion.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <wchar.h>

#include "lib/analyzer.h"
#include "lib/json.h"

/* build/fixtures/threads 1 10 3 under the shim: 3 leaked UDP sockets, waits on stdin. */
struct fixture {
	pid_t pid;
	int in;
	char dir[64];
	char spid[16];
};

/* Start a fixture under the shim; it prints "ready" once set up and lives until stdin closes. */
static void fixture_start_argv(struct fixture *x, const char *path, char *const argv[])
{
	int out;
	char envdir[96];
	lw_tmpdir(x->dir, sizeof x->dir);
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", x->dir);
	x->pid = spawn_piped(path, argv, (char *[]){ envdir, "LD_PRELOAD=" LW_BUILD_DIR "/libleakwatch.so", NULL },
			     &x->in, &out);
	cr_assert_gt(x->pid, 0);
	char buf[256] = "";
	size_t len = 0;
	struct pollfd p = { out, POLLIN, 0 };
	while (!strstr(buf, "ready")) {
		cr_assert_gt(poll(&p, 1, 20000), 0, "fixture did not start");
		ssize_t n = read(out, buf + len, sizeof buf - 1 - len);
		cr_assert_gt(n, 0, "fixture died: %s", buf);
		len += (size_t)n;
		buf[len] = '\0';
	}
	close(out);
	snprintf(x->spid, sizeof x->spid, "%d", x->pid);
	setenv("LEAKWATCH_DIR", x->dir, 1);   /* for the leakwatch runs below */
	/* Older than the --idle-for 100ms the tests use. */
	struct timespec ts = { 0, 300000000L };
	nanosleep(&ts, NULL);
}

static void fixture_start(struct fixture *x)
{
	fixture_start_argv(x, LW_BUILD_DIR "/fixtures/threads", (char *[]){ "threads", "1", "10", "3", NULL });
}

static void fixture_stop(struct fixture *x)
{
	if (x->pid > 0) {
		kill(x->pid, SIGKILL);
		waitpid(x->pid, NULL, 0);
	}
	close(x->in);
	lw_rmdir(x->dir);
}

static size_t count_of(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

TestSuite(live_top, .timeout = 60);

Test(live_top, plain_snapshots_of_a_live_process)
{
	struct fixture x;
	fixture_start(&x);
	static char out[65536], err[4096];
	const char *args[] = { "top", x.spid, "--plain", "--count", "2", "--interval", "200ms", "--idle-for", "100ms", NULL };
	int rc = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "rc %d: %s", rc, err);
	cr_assert_eq(count_of(out, "leakwatch top  pid "), 2, "two snapshots: %s", out);
	cr_assert(strstr(out, "  snapshot 1\n") && strstr(out, "  snapshot 2\n"), "%s", out);
	cr_assert_eq(count_of(out, "\nevery 200ms  idle > 100ms  by open  sort count  kind all\n"), 2, "%s", out);
	cr_assert_eq(count_of(out, "sockets 3 in 1 groups: suspect 3, pool 0, active 0, new 0, watched 0, listening 0"), 2, "%s", out);
	/* one row per snapshot: 3 never-used UDP sockets older than 100ms, named by the fixture line */
	char want[64];
	snprintf(want, sizeof want, "opened worker threads.c:%d", 31);
	cr_assert_eq(count_of(out, "LEAK SUSPECT      3  UDP (no address)"), 2, "%s", out);
	cr_assert_eq(count_of(out, want), 2, "%s", out);
	cr_assert_eq(count_of(out, "VERDICT       COUNT  WHAT"), 2, "%s", out);
	cr_assert_null(strstr(out, "\x1b["), "no terminal control in plain mode");
	cr_assert_str_eq(err, "");

	/* Without --idle-for they are too young to judge. */
	const char *args2[] = { "top", x.spid, "--once", NULL };
	rc = cli_run(args2, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(count_of(out, "leakwatch top  pid "), 1, "--once: one snapshot: %s", out);
	cr_assert(strstr(out, "NEW               3  UDP (no address)"), "%s", out);

	/* The process exits while watched: a last line saying so, status 0. */
	close(x.in);
	x.in = open("/dev/null", O_RDONLY);
	int st;
	cr_assert_eq(waitpid(x.pid, &st, 0), x.pid);
	x.pid = -1;
	const char *args3[] = { "top", x.spid, "--plain", "--count", "5", "--interval", "50ms", NULL };
	rc = cli_run(args3, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	char last[64];
	snprintf(last, sizeof last, "leakwatch: pid %s exited with status 0\n", x.spid);
	cr_assert(strstr(out, last), "%s", out);
	cr_assert_eq(count_of(out, "leakwatch top  pid "), 1, "one last snapshot of the ended image: %s", out);
	fixture_stop(&x);
}

Test(live_top, report_interval_idle_for_and_by)
{
	struct fixture x;
	fixture_start(&x);
	static char out[262144], err[4096];
	const char *args[] = { "report", x.spid, "--format", "json", "--interval", "300ms", "--idle-for", "100ms",
			       "--kind", "sockets", NULL };
	int rc = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	struct tj *j = tj_parse(out);
	cr_assert_not_null(j, "%s", out);
	cr_assert_geq(tj_num(j, "interval_s", -1), 0.3);
	cr_assert_eq(tj_num(j, "idle_for_s", -1), 0.1);
	cr_assert_str_eq(tj_str(tj_get(j, "sock_diag"), "inet"), "sock_diag");
	struct tj *g = tj_at(tj_get(j, "groups"), 0);
	cr_assert_eq(tj_len(tj_get(j, "groups")), 1, "%s", out);
	cr_assert_str_eq(tj_str(g, "verdict"), "leak_suspect");
	struct tj *ev = tj_get(g, "evidence");
	cr_assert_eq(tj_num(ev, "idle", -1), 3);
	cr_assert_eq(tj_num(tj_get(ev, "idle_source"), "age", -1), 3, "never used, no tcp_info");
	struct tj *gr = tj_get(ev, "growth");
	cr_assert_eq(tj_num(gr, "count_start", -1), 3);
	cr_assert_eq(tj_num(gr, "count_end", -1), 3);
	cr_assert_eq(tj_num(gr, "net", -1), 0);
	cr_assert_eq(tj_num(gr, "opened", -1), 0, "nothing opened during the interval");
	cr_assert_eq(tj_num(tj_get(g, "last_use_share"), "count", -1), 3);
	cr_assert_eq(tj_num(g, "last_use_stack_id", -1), 0);
	tj_free(j);

	const char *args2[] = { "report", x.spid, "--by", "use", "--idle-for", "1h", "--kind", "sockets", NULL };
	rc = cli_run(args2, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "grouped by last-use stack): 3 new\n"), "%s", out);
	const char *lu = strstr(out, "  last used at never"), *op = strstr(out, "  opened at ");
	cr_assert(lu && op && lu < op, "--by use leads with the last-use stack: %s", out);
	fixture_stop(&x);
}

Test(live_top, usage_errors_exit_2_with_one_line)
{
	static char out[4096], err[4096];
	const char *const cases[][8] = {
		{ "top", lw_dead_pid_str(), NULL },
		{ "top", NULL },
		{ "top", "1", "--count", "0", NULL },
		{ "top", "1", "--by", "stack", NULL },
		{ "top", "1", "--interval", "soon", NULL },
		{ "report", "1", "--idle-for", "0", NULL },
		{ "report", "1", "--interval", "-1s", NULL },
		{ "report", "1", "--by", "x", NULL },
		{ "top", "1", "--width", "-1", NULL },
		{ "top", "1", "--width", "wide", NULL },
		{ "top", "1", "--width", "5000", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = cli_run(cases[i], (uid_t)-1, out, sizeof out, err, sizeof err);
		cr_assert_eq(rc, 2, "case %zu: rc %d (%s)", i, rc, err);
		cr_assert_eq(count_lines(err), 1, "case %zu: one line: %s", i, err);
		cr_assert(strncmp(err, "leakwatch: ", 11) == 0, "%s", err);
		cr_assert_str_eq(out, "", "case %zu", i);
	}
	const char *help[] = { "--help", NULL };
	cr_assert_eq(cli_run(help, (uid_t)-1, out, sizeof out, err, sizeof err), 0);
	cr_assert(strstr(out, "leakwatch top PID [--interval DUR]"), "%s", out);
	cr_assert(strstr(out, "--idle-for DUR"), "%s", out);
	cr_assert(strstr(out, "--by open|use"), "%s", out);
}

/* Display columns of s[0..n) (UTF-8; the test runs under C.UTF-8). */
static int cols_n(const char *s, size_t n)
{
	wchar_t w[1024];
	char buf[4096];
	snprintf(buf, sizeof buf, "%.*s", (int)n, s);
	size_t k = mbstowcs(w, buf, 1023);
	cr_assert_neq(k, (size_t)-1, "not UTF-8: %s", buf);
	int c = wcswidth(w, k);
	cr_assert_geq(c, 0, "unprintable character in: %s", buf);
	return c;
}

/* The widest line of out, in display columns. */
static int widest(const char *out)
{
	int max = 0;
	for (const char *p = out; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		int c = cols_n(p, n);
		if (c > max)
			max = c;
		p += n + (e ? 1 : 0);
	}
	return max;
}

/* The line of out starting with `start`, copied into line; 0 if none. */
static int line_of(const char *out, const char *start, char *line, size_t len)
{
	for (const char *p = out; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (strncmp(p, start, strlen(start)) == 0) {
			snprintf(line, len, "%.*s", (int)n, p);
			return 1;
		}
		p += n + (e ? 1 : 0);
	}
	return 0;
}

static int top_once(const char *spid, const char *width, char *out, size_t outlen)
{
	static char err[4096];
	const char *args[] = { "top", spid, "--once", "--idle-for", "100ms", width ? "--width" : NULL, width, NULL };
	int rc = cli_run(args, (uid_t)-1, out, outlen, err, sizeof err);
	cr_assert_eq(rc, 0, "rc %d: %s", rc, err);
	cr_assert_str_eq(err, "");
	return rc;
}

/* --plain lays out for --width, else $COLUMNS, else 120, in display columns:
 * narrower drops the sparkline, then AGE and IDLE, and keeps verdict, count and
 * WHERE; the sparkline's block characters are one column each. */
Test(live_top, plain_width_in_display_columns)
{
	struct fixture x;
	fixture_start(&x);
	cr_assert_not_null(setlocale(LC_ALL, "C.UTF-8"));
	setenv("LC_ALL", "C.UTF-8", 1);
	unsetenv("COLUMNS");
	static char out[65536];
	char line[1024], head[1024];

	top_once(x.spid, "100", out, sizeof out);
	cr_assert_leq(widest(out), 100, "%s", out);
	cr_assert(line_of(out, "VERDICT ", head, sizeof head) && line_of(out, "LEAK SUSPECT ", line, sizeof line), "%s", out);
	cr_assert(strstr(head, "AGE") && strstr(head, "IDLE") && strstr(head, "HISTORY") && strstr(head, "WHERE"), "%s", head);
	cr_assert(strstr(line, "\u2581") || strstr(line, "\u2588"), "block characters: %s", line);
	const char *wh = strstr(line, "opened worker threads.c:31");
	cr_assert_not_null(wh, "%s", line);
	cr_assert_eq(cols_n(line, (size_t)(wh - line)), cols_n(head, (size_t)(strstr(head, "WHERE") - head)),
		     "WHERE under its title:\n%s\n%s", head, line);

	top_once(x.spid, "60", out, sizeof out);
	cr_assert_leq(widest(out), 60, "%s", out);
	cr_assert(line_of(out, "VERDICT ", head, sizeof head) && line_of(out, "LEAK SUSPECT ", line, sizeof line), "%s", out);
	cr_assert(!strstr(head, "HISTORY") && !strstr(head, "AGE"), "60 columns: no sparkline, no AGE: %s", head);
	cr_assert(strstr(line, "LEAK SUSPECT      3  UDP") && strstr(line, "opened worker threads.c:31"), "%s", line);

	top_once(x.spid, "40", out, sizeof out);
	cr_assert_leq(widest(out), 40, "%s", out);
	cr_assert(line_of(out, "LEAK SUSPECT ", line, sizeof line), "%s", out);
	cr_assert(strstr(line, "LEAK SUSPECT      3  opened worker"), "40 columns: verdict, count, WHERE: %s", line);
	cr_assert(strstr(out, "\u2026"), "cut text ends in an ellipsis: %s", out);

	setenv("COLUMNS", "50", 1);
	top_once(x.spid, NULL, out, sizeof out);
	cr_assert_leq(widest(out), 50, "$COLUMNS: %s", out);
	cr_assert_gt(widest(out), 40, "$COLUMNS used, not a narrower default: %s", out);
	top_once(x.spid, "0", out, sizeof out);
	cr_assert(line_of(out, "sockets 3 in 1 groups: ", line, sizeof line), "%s", out);
	cr_assert(strstr(line, " live blocks, "), "--width 0: nothing cut: %s", line);
	cr_assert(line_of(out, "VERDICT ", head, sizeof head) && strstr(head, "HISTORY (count)"), "%s", out);
	unsetenv("COLUMNS");

	/* Outside UTF-8: ASCII only, the sparkline and the cuts too. */
	setenv("LC_ALL", "C", 1);
	top_once(x.spid, "100", out, sizeof out);
	for (const char *p = out; *p; p++)
		cr_assert_lt((unsigned char)*p, 0x80, "a non-ASCII byte in the C locale: %s", out);
	cr_assert(line_of(out, "LEAK SUSPECT ", line, sizeof line), "%s", out);
	cr_assert(strstr(line, "opened worker threads.c:31"), "%s", line);
	cr_assert_leq((int)strlen(line), 100, "%s", line);
	top_once(x.spid, "40", out, sizeof out);
	cr_assert(strstr(out, "..."), "an ASCII ellipsis: %s", out);
	fixture_stop(&x);
}

/* WHERE is the program's function below a dispatcher: in the pool fixture main()
 * calls pool_init(), healthy_handler() and leaky_handler(), so the pool is
 * named by pool_init (not dial(), the helper that connects) and the
 * connections leaky_handler() kept by it. */
Test(live_top, where_names_the_code_that_kept_the_connection)
{
	struct fixture x;
	fixture_start_argv(&x, LW_BUILD_DIR "/fixtures/pool", (char *[]){ "pool", "checkout", NULL });
	static char out[65536];
	char line[1024], want_use[96], want_open[96];
	snprintf(want_use, sizeof want_use, "used leaky_handler pool.c:%d",
		 marker_line("tests/fixtures/pool.c", "checkout.leak"));
	snprintf(want_open, sizeof want_open, "opened pool_init pool.c:%d", marker_line("tests/fixtures/pool.c", "pool.open"));
	/* the two kept connections go idle while the healthy handler uses the rest */
	int found = 0;
	for (int t = 0; t < 100 && !found; t++) {
		top_once(x.spid, "120", out, sizeof out);
		found = line_of(out, "LEAK SUSPECT ", line, sizeof line);
		if (!found)
			usleep(100000);
	}
	cr_assert(found, "no suspect: %s", out);
	cr_assert(strstr(line, "LEAK SUSPECT      2  TCP -> 127.0.0.1:") && strstr(line, want_use), "%s", out);
	cr_assert(line_of(out, "POOL ", line, sizeof line), "%s", out);
	cr_assert(strstr(line, "POOL              3  TCP -> 127.0.0.1:"), "%s", out);
	cr_assert(strstr(line, want_open), "the pool by pool_init, not by dial: %s", out);
	cr_assert_null(strstr(out, "dial"), "%s", out);
	fixture_stop(&x);
}
