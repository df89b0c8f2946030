/*
 * Live processes: the analyzer reading a segment while the traced program
 * writes it (threads), and real programs nobody here wrote running under the
 * shim (python3, curl, a shell) without crashes or false leaks.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "classify.h"
#include "heapgroups.h"
#include "kernel.h"
#include "names.h"
#include "render.h"
#include "report.h"
#include "segdir.h"
#include "snapshot.h"
#include "symbolize.h"
#include "lib/json.h"
#include "lib/testlib.h"

/* A traced child with pipes to its stdin and stdout. */
struct child {
	pid_t pid;
	int in, out;
	char dir[64];
	char buf[8192];
	size_t len;
};

static void child_start(struct child *c, char *const argv[])
{
	char envdir[96], preload[4096];
	strcpy(c->dir, "/tmp/lw-live-XXXXXX");
	cr_assert_not_null(mkdtemp(c->dir));
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", c->dir);
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	c->len = 0;
	c->buf[0] = '\0';
	c->pid = spawn_piped(NULL, argv, (char *[]){ envdir, preload, NULL }, &c->in, &c->out);
	cr_assert_gt(c->pid, 0);
}

/* child_wait_line - read stdout until a line containing `what` (10 s). */
static int child_wait_line(struct child *c, const char *what, int timeout_ms)
{
	struct pollfd p = { c->out, POLLIN, 0 };
	while (!strstr(c->buf, what)) {
		if (poll(&p, 1, timeout_ms) <= 0)
			return 0;
		ssize_t n = read(c->out, c->buf + c->len, sizeof c->buf - 1 - c->len);
		if (n <= 0)
			return 0;
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
	}
	return 1;
}

static void child_stop(struct child *c)
{
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	close(c->in);
	close(c->out);
	cr_assert_eq(rm_rf(c->dir), 0);
}

/* ---- concurrency: readers against 4 writing threads ------------------------- */

Test(live, concurrent_reads_see_no_torn_entries, .timeout = 120)
{
	struct child c;
	char *argv[] = { LW_BUILD_DIR "/fixtures/threads", "4", "6000", "5", NULL };
	child_start(&c, argv);
	char seg[128], err[LW_ERR_MAX];
	snprintf(seg, sizeof seg, "%s/leakwatch.%d", c.dir, (int)c.pid);

	/* read the live segment over and over while the threads churn */
	unsigned snapshots = 0, entries = 0;
	struct pollfd p = { c.out, POLLIN, 0 };
	for (;;) {
		struct lw_snapshot s;
		if (lw_snapshot_open(&s, seg, err, sizeof err) == 0) {
			snapshots++;
			for (size_t i = 0; i < s.nhandles; i++) {
				const struct lw_handle *h = &s.handles[i].h;
				if (h->state != LW_H_OPEN)
					continue;
				entries++;
				cr_assert(h->family == AF_INET || h->family == AF_INET6 || h->family == AF_UNIX,
					  "torn entry: family %u at fd %d", h->family, s.handles[i].fd);
				cr_assert(h->type == SOCK_STREAM || h->type == SOCK_DGRAM,
					  "torn entry: type %u", h->type);
				/* (no inode: records of sockets from socket() and
				 * accept() leave it to the analyzer) */
				cr_assert_neq(h->open_ns, 0, "torn entry: no open time");
				cr_assert_neq(h->tid, 0, "torn entry: no thread");
				cr_assert(h->origin == LW_ORIGIN_SOCKET || h->origin == LW_ORIGIN_SOCKETPAIR ||
					  h->origin == LW_ORIGIN_INHERITED,
					  "torn entry: origin %u", h->origin);
				if (h->stack_id)
					cr_assert_not_null(lw_snapshot_stack(&s, h->stack_id),
							   "stack %u not in the table", h->stack_id);
			}
			lw_snapshot_free(&s);
		}
		if (poll(&p, 1, 0) > 0)
			break; /* "ready": the threads are done */
		cr_assert_lt(snapshots, 1000000u);
	}
	cr_assert(child_wait_line(&c, "ready", 30000), "fixture did not finish");
	cr_assert_gt(snapshots, 3, "the analyzer read the live segment repeatedly (%u)", snapshots);

	/* final state: exactly the 4 x 5 leaked sockets, all from one line */
	struct lw_report_opts ro = { 0 };
	struct lw_report r;
	cr_assert_eq(lw_report_build(&r, seg, &ro, err, sizeof err), 0, "%s", err);
	cr_assert_eq(r.live, LW_LIVE_ALIVE);
	cr_assert_eq(r.grouping.nleaked, 20);
	cr_assert_eq(r.grouping.ngroups, 1, "one creation line");
	cr_assert_eq(r.grouping.groups[0].count, 20);
	uint64_t opened = r.snap.counters[LW_CTR_SOCK_OPENED], closed = r.snap.counters[LW_CTR_SOCK_CLOSED];
	cr_assert_eq(opened - closed, 20, "opened %lu closed %lu", (unsigned long)opened,
		     (unsigned long)closed);
	/* 4 threads x 6000 iterations: 1500 socketpairs (2 each) + 4500 sockets, + 5 leaks */
	cr_assert_eq(opened, 4 * (1500 * 2 + 4500 + 5));
	cr_assert_eq(r.snap.counters[LW_CTR_DROP_BUSY], 0);
	cr_assert_eq(r.join.nstale, 0);
	cr_assert_eq(r.join.nuntracked, 0);
	lw_report_free(&r);
	child_stop(&c);
}

/* ---- real programs ------------------------------------------------------------- */

static int have(const char *prog)
{
	return have_program(prog);
}

static void run_clean(const char *const *cmd, int expect_status)
{
	/* interpreters and shells keep heap memory until exit by design */
	const char *opts[] = { "--fail-on-leak=sockets", NULL };
	struct cmd_result r;
	char *text = run_report(&r, NULL, opts, cmd);
	cr_assert_not_null(text, "no report from %s: %s", cmd[0], r.err);
	struct tj *j = tj_parse(text);
	cr_assert_not_null(j, "invalid report for %s: %.300s / %s", cmd[0], text, r.err);
	struct tj *run = tj_get(j, "run");
	cr_assert_eq(tj_num(run, "exit_status", -1), expect_status, "%s exited %g: %s", cmd[0],
		     tj_num(run, "exit_status", -1), r.out);
	cr_assert_eq(tj_num(j, "leaked", -1), 0, "false leak under %s: %.2000s", cmd[0], text);
	/* everything was traced, nothing leaked: run exits with the command's own status */
	cr_assert_not_null(tj_get(j, "not_traced"));
	cr_assert_eq(tj_len(tj_get(j, "not_traced")), 0, "%s: %s", cmd[0], r.err);
	cr_assert_eq(r.status, expect_status, "leakwatch run exit %d: %s", r.status, r.err);
	struct tj *procs = tj_get(j, "processes");
	cr_assert_geq(tj_len(procs), 1);
	for (size_t i = 0; i < tj_len(procs); i++) {
		const char *state = tj_str(tj_at(procs, i), "state");
		cr_assert(state && strcmp(state, "dead") != 0, "a process died under the shim");
	}
	tj_free(j);
	free(text);
	cmd_result_free(&r);
}

Test(live_real, python_opens_and_closes_sockets, .timeout = 120)
{
	if (!have("python3"))
		cr_skip_test("python3 not installed");
	const char *cmd[] = { "python3", "-c",
		"import socket, threading\n"
		"srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(16)\n"
		"port = srv.getsockname()[1]\n"
		"def serve():\n"
		"    for _ in range(20):\n"
		"        c, _a = srv.accept(); c.sendall(b'hi'); c.close()\n"
		"t = threading.Thread(target=serve); t.start()\n"
		"for _ in range(20):\n"
		"    with socket.create_connection(('127.0.0.1', port)) as s:\n"
		"        assert s.recv(2) == b'hi'\n"
		"t.join(); srv.close()\n"
		"a, b = socket.socketpair(); a.close(); b.close()\n",
		NULL };
	run_clean(cmd, 0);
}

/* a one-shot HTTP server in the test process (not traced) for curl */
static int http_fd;

static void *http_serve(void *arg)
{
	(void)arg;
	int c = accept(http_fd, NULL, NULL);
	if (c >= 0) {
		char buf[2048];
		ssize_t n = read(c, buf, sizeof buf);
		(void)n;
		const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
		n = write(c, resp, strlen(resp));
		close(c);
	}
	return NULL;
}

Test(live_real, curl_against_local_listener, .timeout = 120)
{
	if (!have("curl"))
		cr_skip_test("curl not installed");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	http_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(http_fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(http_fd, 4), 0);
	getsockname(http_fd, (struct sockaddr *)&a, &len);
	pthread_t t;
	pthread_create(&t, NULL, http_serve, NULL);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
	const char *cmd[] = { "curl", "-sS", "--max-time", "20", "-o", "/dev/null", url, NULL };
	run_clean(cmd, 0);
	pthread_join(t, NULL);
	close(http_fd);
}

Test(live_real, shell_running_many_commands, .timeout = 120)
{
	const char *cmd[] = { "sh", "-c",
		"i=0; while [ $i -lt 40 ]; do /bin/true; ls / >/dev/null; echo $i | cat >/dev/null; "
		"i=$((i+1)); done; exit 3",
		NULL };
	run_clean(cmd, 3);
}

Test(live_real, python_keeping_ten_sockets_is_seen_live, .timeout = 120)
{
	if (!have("python3"))
		cr_skip_test("python3 not installed");
	struct child c;
	char *argv[] = { "python3", "-c",
		"import os, socket, sys, time\n"
		"srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(32)\n"
		"port = srv.getsockname()[1]\n"
		"keep = [socket.create_connection(('127.0.0.1', port)) for _ in range(10)]\n"
		"print('pid', os.getpid(), 'port', port, 'ready', flush=True)\n"
		"sys.stdin.readline()\n",
		NULL };
	child_start(&c, argv);
	cr_assert(child_wait_line(&c, "ready", 60000), "python did not start: %s", c.buf);
	int pid = 0, port = 0;
	cr_assert_eq(sscanf(strstr(c.buf, "pid"), "pid %d port %d", &pid, &port), 2);

	char envdir[128], spid[16];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", c.dir);
	snprintf(spid, sizeof spid, "%d", pid);
	char *env[] = { envdir, NULL };
	char *rep[] = { (char *)lw_bin(), "report", spid, "--format", "json", NULL };
	struct cmd_result r;
	run_cmd(&r, rep, env, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%s", r.out);
	cr_assert_str_eq(tj_str(j, "state"), "running");
	char want[64];
	snprintf(want, sizeof want, "127.0.0.1:%d", port);
	struct tj *groups = tj_get(j, "groups");
	double to_peer = 0;
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		const char *ep = tj_str(g, "endpoint");
		if (ep && !strcmp(ep, want) && !strcmp(tj_str(g, "endpoint_role"), "peer")) {
			to_peer += tj_num(g, "count", 0);
			cr_assert_str_eq(tj_str(g, "family"), "AF_INET");
			cr_assert_eq(tj_num(tj_get(g, "states"), "ESTABLISHED", 0), tj_num(g, "count", -1),
				     "the kernel reports them established");
		}
	}
	cr_assert_eq(to_peer, 10, "10 sockets to %s", want);
	tj_free(j);
	cmd_result_free(&r);
	child_stop(&c);
}
