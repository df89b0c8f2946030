/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch top` full screen, driven through tmux with real key presses:
 * the demo's leaky api service (demo/api.c, two requests for missing users
 * keep two pool connections for good) runs under the shim against minidb;
 * top runs in a detached tmux session of its own server (-S, a socket in
 * the test's directory; killed in the fini) at 100x30 under LANG=C.UTF-8
 * and TERM=screen.  tmux send-keys types, capture-pane reads the screen;
 * every wait polls the screen until the expected text shows, with a
 * deadline.
 *
 * Checked: every line fits the pane in display columns and the WHERE column
 * starts at the same display column in the titles and in the rows (a
 * sparkline of 3-byte block characters counted as 3 columns would shift or
 * eat it); WHERE names get_user_data, not the driver helper db_roundtrip;
 * `?` lists the keys; j/k/Down select, Enter shows the group's evidence and
 * both stacks, Esc/q go back; at 60 and 40 columns verdict, count and WHERE
 * stay; when the service exits the last screen stays with "process exited
 * (status 0)" until q.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <locale.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <wchar.h>

#include "lib/testlib.h"

#define DEMO(name) LW_BUILD_DIR "/demo/" name
#define WAIT_S 20

static char tmpdir[256], sock[300], env_dir[320];
static pid_t db_pid = -1, api_pid = -1;

static char *tmp_path(const char *name)
{
	static char buf[4][400];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
	return p;
}

/* tmux -u -S sock -f /dev/null ARGS...; its stdout (malloc'd) and status.  The
 * server's socket is in tmpdir: its own server, and nothing left behind. */
static char *tmux(int *status, const char *const *args)
{
	char *argv[32];
	int n = 0;
	argv[n++] = "tmux";
	argv[n++] = "-u";
	argv[n++] = "-S";
	argv[n++] = sock;
	argv[n++] = "-f";
	argv[n++] = "/dev/null";
	for (; *args && n < 31; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	char *envv[] = { "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TERM=screen", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, envv, 15);
	if (status)
		*status = r.status;
	char *out = r.out;
	r.out = NULL;
	cmd_result_free(&r);
	return out;
}

#define TMUX(...) tmux(NULL, (const char *const[]){ __VA_ARGS__, NULL })

static void teardown(void)
{
	if (sock[0]) {
		int st;
		free(tmux(&st, (const char *const[]){ "kill-server", NULL }));
	}
	pid_t pids[2] = { api_pid, db_pid };
	for (int i = 0; i < 2; i++)
		if (pids[i] > 0) {
			kill(-pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	api_pid = db_pid = -1;
	if (tmpdir[0])
		lw_rmdir(tmpdir);
	tmpdir[0] = sock[0] = '\0';
}

static void setup(void)
{
	lw_tmpdir(tmpdir, sizeof tmpdir);
	snprintf(sock, sizeof sock, "%s/tmux", tmpdir);
	char seg[300];
	snprintf(seg, sizeof seg, "%s/segments", tmpdir);
	cr_assert_eq(mkdir(seg, 0700), 0);
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", seg);
	cr_assert_not_null(setlocale(LC_ALL, "C.UTF-8"), "no C.UTF-8 locale");
}

TestSuite(top_tmux, .init = setup, .fini = teardown, .timeout = 120);

static pid_t spawn(char *const argv[], char *const env_extra[], const char *log)
{
	struct spawn_opts o = { .path = argv[0], .env = env_extra, .log_path = tmp_path(log), .new_pgrp = true };
	pid_t pid = spawn_bg(argv, &o);
	cr_assert_gt(pid, 0);
	return pid;
}

static int read_port(const char *file)
{
	for (int t = 0; t < WAIT_S * 20; t++) {
		char *s = slurp(tmp_path(file));
		int port = s ? atoi(s) : 0;
		free(s);
		if (port > 0)
			return port;
		usleep(50000);
	}
	return 0;
}

/* GET path from the service; its status line's code. */
static int http_get(int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { 10, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "cannot reach the service");
	char req[256], buf[2048];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	cr_assert_eq(write(fd, req, (size_t)n), n);
	size_t len = 0;
	ssize_t r;
	while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = '\0';
	int code = 0;
	cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &code), 1, "no HTTP answer: %s", buf);
	return code;
}

/* The pane's text now (malloc'd). */
static char *screen(void)
{
	char *s = TMUX("capture-pane", "-p", "-t", "top");
	cr_assert_not_null(s);
	return s;
}

/* The screen once it holds every one of what[] (NULL-terminated), polled until WAIT_S. */
static char *screen_wait(const char *const *what)
{
	char *s = NULL;
	const char *missing = what[0];
	for (int t = 0; t < WAIT_S * 10; t++) {
		free(s);
		s = screen();
		missing = NULL;
		for (const char *const *w = what; *w && !missing; w++)
			if (!strstr(s, *w))
				missing = *w;
		if (!missing)
			return s;
		usleep(100000);
	}
	cr_assert_fail("the screen never showed '%s':\n%s", missing, s);
	return s;
}

#define SCREEN_WAIT(...) screen_wait((const char *const[]){ __VA_ARGS__, NULL })

/* The screen once it no longer holds `text`. */
static char *screen_wait_gone(const char *text)
{
	char *s = NULL;
	for (int t = 0; t < WAIT_S * 10; t++) {
		free(s);
		s = screen();
		if (!strstr(s, text))
			return s;
		usleep(100000);
	}
	cr_assert_fail("'%s' stayed on the screen:\n%s", text, s);
	return s;
}

static void keys(const char *k)
{
	free(TMUX("send-keys", "-t", "top", k));
}

/* Display columns of the first n bytes of s (UTF-8). */
static int cols_n(const char *s, size_t n)
{
	wchar_t w[512];
	char buf[2048];
	snprintf(buf, sizeof buf, "%.*s", (int)n, s);
	size_t k = mbstowcs(w, buf, 511);
	cr_assert_neq(k, (size_t)-1, "not UTF-8: %s", buf);
	int c = wcswidth(w, k);
	cr_assert_geq(c, 0, "unprintable character in: %s", buf);
	return c;
}

/* The line of s holding `what` (copied into line), or 0. */
static int line_with(const char *s, const char *what, char *line, size_t len)
{
	const char *p = strstr(s, what);
	if (!p)
		return 0;
	const char *b = p;
	while (b > s && b[-1] != '\n')
		b--;
	const char *e = strchr(p, '\n');
	size_t n = e ? (size_t)(e - b) : strlen(b);
	snprintf(line, len, "%.*s", (int)n, b);
	return 1;
}

/* Every line of the screen within `width` display columns. */
static void assert_fits(const char *s, int width)
{
	int no = 0;
	for (const char *p = s; *p; no++) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		cr_assert_leq(cols_n(p, n), width, "line %d wider than %d columns: '%.*s'", no, width, (int)n, p);
		p += n + (e ? 1 : 0);
	}
}

/* Rows of the list, in screen order, after the column titles; the index of the first holding what. */
static int row_index(const char *s, const char *what)
{
	const char *p = strstr(s, "VERDICT ");
	cr_assert_not_null(p, "%s", s);
	p = strchr(p, '\n');
	for (int i = 0; p && p[1]; i++) {
		const char *e = strchr(p + 1, '\n');
		size_t n = e ? (size_t)(e - p - 1) : strlen(p + 1);
		if (memmem(p + 1, n, what, strlen(what)))
			return i;
		p = e;
	}
	return -1;
}

static void assert_narrow(int width)
{
	char w[8], line[1024];
	snprintf(w, sizeof w, "%d", width);
	free(TMUX("resize-window", "-t", "top", "-x", w, "-y", "30"));
	/* the titles show once the pane has its new width: the header ends with WHERE */
	char *s = NULL;
	for (int t = 0; t < WAIT_S * 10; t++) {
		free(s);
		s = screen();
		if (line_with(s, "VERDICT ", line, sizeof line) && strstr(line, "WHERE") && cols_n(line, strlen(line)) <= width &&
		    line_with(s, "LEAK SUSPECT", line, sizeof line) && strstr(line, "used get_user_d"))
			break;
		usleep(100000);
	}
	assert_fits(s, width);
	cr_assert(line_with(s, "LEAK SUSPECT", line, sizeof line), "%d columns: no suspect row:\n%s", width, s);
	cr_assert(strstr(line, "  2  ") && strstr(line, "used get_user_d"),
		  "%d columns: verdict, count and WHERE stay: '%s'", width, line);
	cr_assert(line_with(s, "VERDICT ", line, sizeof line));
	cr_assert_null(strstr(line, "HISTORY"), "%d columns: the sparkline goes first: '%s'", width, line);
	cr_assert_null(strstr(line, "AGE"), "%d columns: then AGE: '%s'", width, line);
	free(s);
}

/*
 * service_start - minidb, then the demo service under the shim (demo/api.c,
 * or demo/api.py when python), each handler asked once and two missing
 * users: two pool connections kept for good.  The database port into dbp.
 */
static void service_start(int python, char *dbp, size_t dbplen)
{
	char env_pre[400];
	snprintf(env_pre, sizeof env_pre, "LD_PRELOAD=%s", lw_shim());
	char *dbv[] = { DEMO("minidb"), "--latency-ms", "1", "--port-file", tmp_path("db.port"), NULL };
	db_pid = spawn(dbv, NULL, "db.log");
	int db_port = read_port("db.port");
	cr_assert_gt(db_port, 0, "minidb did not start: %s", slurp(tmp_path("db.log")));
	snprintf(dbp, dbplen, "%d", db_port);
	char *apiv[] = { DEMO("api"), "--db-port", dbp, "--pool", "6", "--workers", "4", "--checkout-timeout-ms", "300",
			 "--port-file", tmp_path("api.port"), NULL };
	char *pyv[] = { "/usr/bin/python3", LW_SOURCE_DIR "/demo/api.py", "--db-port", dbp, "--pool", "6",
			"--checkout-timeout-ms", "300", "--port-file", tmp_path("api.port"), NULL };
	api_pid = spawn(python ? pyv : apiv, (char *[]){ env_dir, env_pre, NULL }, "api.log");
	int port = read_port("api.port");
	cr_assert_gt(port, 0, "the service did not start: %s", slurp(tmp_path("api.log")));
	/* every handler once; two missing users keep two connections */
	cr_assert_eq(http_get(port, "/users/1"), 200);
	cr_assert_eq(http_get(port, "/users/2/orders"), 200);
	cr_assert_eq(http_get(port, "/users/99999"), 404);
	cr_assert_eq(http_get(port, "/users/3"), 200);
	cr_assert_eq(http_get(port, "/users/99998"), 404);
}

Test(top_tmux, keys_width_where_and_the_last_screen)
{
	int use_line = marker_line("demo/api.c", "demo.leak_use");
	cr_assert_gt(use_line, 0);
	char dbp[16];
	service_start(0, dbp, sizeof dbp);

	char cmd[1024], line[1024];
	snprintf(cmd, sizeof cmd, "TERM=screen %s top %d --idle-for 2s --interval 300ms; echo top-exit-$?; sleep 100",
		 lw_bin(), (int)api_pid);
	int st;
	free(tmux(&st, (const char *const[]){ "new-session", "-d", "-s", "top", "-x", "100", "-y", "30", "-e",
					       "LANG=C.UTF-8", "-e", "LC_ALL=C.UTF-8", "-e", env_dir, cmd, NULL }));
	cr_assert_eq(st, 0, "tmux new-session failed");

	/* the leaked connections go idle past --idle-for: a suspect named by its handler */
	char where[64];
	snprintf(where, sizeof where, "used get_user_data api.c:%d", use_line);
	char *s = SCREEN_WAIT("LEAK SUSPECT", where, "POOL");
	assert_fits(s, 100);
	cr_assert_null(strstr(s, "db_roundtrip"), "WHERE skips the driver helper:\n%s", s);
	cr_assert(line_with(s, "LEAK SUSPECT", line, sizeof line));
	cr_assert(strstr(line, "      2  TCP -> 127.0.0.1:"), "verdict, count, endpoint: '%s'", line);
	/* the sparkline: block characters, and WHERE where its title says */
	cr_assert(strstr(line, "\u2588"), "a sparkline of block characters at 100 columns: '%s'", line);
	int where_col = cols_n(line, (size_t)(strstr(line, "used ") - line));
	char head[1024];
	cr_assert(line_with(s, "VERDICT ", head, sizeof head));
	cr_assert(strstr(head, "WHERE"), "%s", head);
	cr_assert_eq(cols_n(head, (size_t)(strstr(head, "WHERE") - head)), where_col,
		     "WHERE starts at the same column in the titles and the row:\n%s\n%s", head, line);
	cr_assert(line_with(s, "POOL ", line, sizeof line));
	cr_assert_eq(cols_n(line, (size_t)(strstr(line, "opened ") - line)), where_col, "%s", line);
	int idx = row_index(s, "LEAK SUSPECT");
	cr_assert_geq(idx, 0, "%s", s);
	free(s);

	/* ? lists every key; any key closes it, q too (top stays) */
	keys("?");
	s = SCREEN_WAIT("leakwatch top: keys", "j/k", "Enter", "Esc", "sort", "group by", "kind", "quit", "? ");
	assert_fits(s, 100);
	free(s);
	keys("q");
	free(screen_wait_gone("leakwatch top: keys"));
	free(SCREEN_WAIT("VERDICT ", "LEAK SUSPECT"));

	/* select the suspect: Home, down with j and Down past it, back with k; Enter */
	keys("Home");
	for (int i = 0; i < idx; i++)
		keys(i % 2 ? "Down" : "j");
	keys("Down");
	keys("k");
	keys("Enter");
	s = SCREEN_WAIT("details", "evidence", "last used at", "opened at", "pool_init");
	assert_fits(s, 100);
	cr_assert(line_with(s, "details", line, sizeof line));
	char *d = strstr(s, "details");
	cr_assert(strstr(d, "LEAK SUSPECT  2  TCP -> 127.0.0.1:"), "the selected group's head line:\n%s", s);
	cr_assert(strstr(d, dbp), "the endpoint:\n%s", s);
	cr_assert(strstr(d, "idle > 2s (2/2)"), "the counts:\n%s", s);
	const char *lu = strstr(d, "last used at db_roundtrip"), *gu = strstr(d, "get_user_data"),
		   *op = strstr(d, "opened at");
	cr_assert(lu && gu && op && lu < gu && gu < op, "the full last-use stack, then the opening one:\n%s", s);
	free(s);
	keys("Escape");
	free(SCREEN_WAIT("VERDICT ", "HISTOR"));
	keys("Enter");
	free(SCREEN_WAIT("details", "last used at"));
	keys("q");
	s = SCREEN_WAIT("VERDICT ", where);
	cr_assert_null(strstr(s, "top-exit-"), "q in the details goes back, not out:\n%s", s);
	free(s);

	/* narrow panes keep verdict, count and WHERE */
	assert_narrow(60);
	assert_narrow(40);
	free(TMUX("resize-window", "-t", "top", "-x", "100", "-y", "30"));

	/* the service exits: the last screen stays with the exit status, until q */
	cr_assert_eq(kill(api_pid, SIGTERM), 0);
	cr_assert_eq(waitpid(api_pid, &st, 0), api_pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the service's status %d", st);
	api_pid = -1;
	s = SCREEN_WAIT("process exited (status 0)", "LEAK SUSPECT", where);
	assert_fits(s, 100);
	cr_assert_null(strstr(s, "top-exit-"), "%s", s);
	free(s);
	/* still reading keys: s sorts the kept rows */
	keys("s");
	s = SCREEN_WAIT("sort age", "process exited (status 0)", "LEAK SUSPECT");
	cr_assert_null(strstr(s, "top-exit-"), "%s", s);
	free(s);
	keys("q");
	char gone[96];
	snprintf(gone, sizeof gone, "exited with status 0");
	s = SCREEN_WAIT("top-exit-0", gone);
	free(s);
}

/* The Python service: WHERE is the first Python frame outside the standard
 * library below a dispatcher (Handler.do_GET), not Connection.execute (the
 * helper every query goes through), nor a frame of the interpreter.  Plain
 * snapshots: this is about the rule, the keys are checked above. */
Test(top_tmux, python_where_is_the_handler)
{
	int use_line = marker_line("demo/api.py", "demo.py_leak_use");
	cr_assert_gt(use_line, 0);
	char dbp[16], spid[16], where[64];
	service_start(1, dbp, sizeof dbp);
	snprintf(spid, sizeof spid, "%d", (int)api_pid);
	snprintf(where, sizeof where, "used get_user_data api.py:%d", use_line);
	char *argv[] = { (char *)lw_bin(), "top", spid, "--once", "--idle-for", "1s", "--width", "120", NULL };
	char *envv[] = { env_dir, "LC_ALL=C.UTF-8", NULL };
	struct cmd_result r = { 0 };
	for (int t = 0; t < WAIT_S * 5; t++) {
		cmd_result_free(&r);
		run_cmd(&r, argv, envv, 30);
		cr_assert_eq(r.status, 0, "top: %s", r.err);
		if (strstr(r.out, "LEAK SUSPECT"))
			break;
		usleep(200000);
	}
	char line[1024];
	cr_assert(line_with(r.out, "LEAK SUSPECT", line, sizeof line), "%s", r.out);
	cr_assert(strstr(line, "      2  TCP -> 127.0.0.1:") && strstr(line, where), "%s", r.out);
	cr_assert_null(strstr(r.out, "Connection.execute"), "%s", r.out);
	cr_assert(line_with(r.out, "LISTENING", line, sizeof line), "%s", r.out);
	cr_assert(strstr(line, "opened main api.py:"), "%s", line);
	cmd_result_free(&r);
}
