/*
 * Who is watching a socket, end to end: tests/fixtures/watched.c holds idle
 * loopback connections, some in an epoll set a thread waits on, one a thread
 * is blocked reading, one a thread is blocked polling, some nobody waits on.
 * After --idle-for (500ms) the watched ones must be WATCHED with the
 * kernel's evidence shown, the others still LEAK SUSPECT.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/json.h"
#include "lib/testlib.h"

#define WATCHED_SRC "tests/fixtures/watched.c"

struct live {
	pid_t pid;
	int in, out;
	char dir[64];
	int epfd, epoll_tid, reader_tid, poll_tid;
};

static void live_start(struct live *l)
{
	char envdir[96], preload[4096];
	strcpy(l->dir, "/tmp/lw-watch-XXXXXX");
	cr_assert_not_null(mkdtemp(l->dir));
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", l->dir);
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	l->pid = spawn_piped(LW_BUILD_DIR "/fixtures/watched", (char *[]){ "watched", NULL },
			     (char *[]){ envdir, "LEAKWATCH_HEAP=off", preload, NULL }, &l->in, &l->out);
	cr_assert_gt(l->pid, 0);
	char buf[256] = "";
	struct pollfd p = { l->out, POLLIN, 0 };
	cr_assert_gt(poll(&p, 1, 30000), 0, "fixture did not start");
	cr_assert_gt(read(l->out, buf, sizeof buf - 1), 0);
	cr_assert_eq(sscanf(buf, "ready epfd %d epoll_tid %d reader_tid %d poll_tid %d", &l->epfd, &l->epoll_tid,
			    &l->reader_tid, &l->poll_tid), 4, "%s", buf);
}

static void live_stop(struct live *l)
{
	close(l->in); /* the fixture ends when stdin closes */
	int st;
	waitpid(l->pid, &st, 0);
	close(l->out);
	cr_assert_eq(rm_rf(l->dir), 0);
}

/* Idle time is what is measured: it has to pass (the fixture's sockets never move data). */
static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void live_report(struct live *l, const char *format, struct cmd_result *r)
{
	char envdir[128], spid[16];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", l->dir);
	snprintf(spid, sizeof spid, "%d", (int)l->pid);
	char *env[] = { envdir, NULL };
	char *argv[] = { (char *)lw_bin(), "report", spid, "--format", (char *)format, "--idle-for", "500ms", NULL };
	run_cmd(r, argv, env, 60);
	cr_assert_eq(r->status, 0, "%s", r->err);
}

/* the group whose creation stack has `func` at the marker's line; nth of them */
static struct tj *group_at(struct tj *j, const char *func, const char *mark, size_t nth)
{
	int line = marker_line(WATCHED_SRC, mark);
	cr_assert_neq(line, 0, "marker %s", mark);
	struct tj *groups = tj_get(j, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i), *stack = tj_get(g, "stack");
		for (size_t k = 0; k < tj_len(stack); k++) {
			struct tj *f = tj_at(stack, k);
			if (tj_str(f, "function") && !strcmp(tj_str(f, "function"), func) &&
			    (int)tj_num(f, "line", -1) == line && nth-- == 0)
				return g;
		}
	}
	return NULL;
}

static int int_in(struct tj *arr, int v)
{
	for (size_t i = 0; i < tj_len(arr); i++)
		if ((int)tj_at(arr, i)->num == v)
			return 1;
	return 0;
}

Test(live_watch, watched_sockets_are_not_leak_suspects, .timeout = 60)
{
	struct live l;
	struct cmd_result r;
	live_start(&l);
	sleep_ms(1200);
	live_report(&l, "json", &r);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%.500s", r.out);
	cmd_result_free(&r);
	cr_assert_str_eq(tj_str(j, "state"), "running");
	struct tj *view = tj_get(j, "watch_view");
	cr_assert_not_null(view, "a live process has a watch view");
	cr_assert_geq(tj_num(view, "epoll_sets", -1), 1);
	cr_assert_null(tj_str(view, "threads_error"), "%s", tj_str(view, "threads_error"));

	/* (a) in the epoll set a thread waits on */
	struct tj *g = group_at(j, "epoll_conns", "watched.epoll", 0);
	cr_assert_not_null(g, "no epoll_conns group");
	cr_assert_str_eq(tj_str(g, "verdict"), "watched");
	cr_assert_eq(tj_num(g, "count", -1), 3);
	cr_assert_eq(tj_num(tj_get(g, "evidence"), "idle", -1), 3, "idle they are");
	struct tj *w = tj_get(g, "watch");
	cr_assert_eq(tj_num(w, "watched", -1), 3);
	cr_assert_eq(tj_num(w, "in_epoll", -1), 3);
	cr_assert(int_in(tj_get(w, "epoll_fds"), l.epfd), "epoll fd %d", l.epfd);
	cr_assert(int_in(tj_get(w, "waiting_threads"), l.epoll_tid), "thread %d waits", l.epoll_tid);

	/* (b) a thread blocked in read() */
	g = group_at(j, "reader_conn", "watched.read", 0);
	cr_assert_not_null(g);
	cr_assert_str_eq(tj_str(g, "verdict"), "watched");
	w = tj_get(g, "watch");
	cr_assert_eq(tj_num(w, "blocked", -1), 1);
	struct tj *bt = tj_at(tj_get(w, "blocked_threads"), 0);
	cr_assert_not_null(bt);
	cr_assert_eq((int)tj_num(bt, "tid", -1), l.reader_tid);
	cr_assert_str_eq(tj_str(bt, "call"), "read");

	/* a thread blocked in poll(): its pollfd array names the socket */
	g = group_at(j, "poll_conn", "watched.poll", 0);
	cr_assert_not_null(g);
	cr_assert_str_eq(tj_str(g, "verdict"), "watched");
	bt = tj_at(tj_get(tj_get(g, "watch"), "blocked_threads"), 0);
	cr_assert_not_null(bt);
	cr_assert_eq((int)tj_num(bt, "tid", -1), l.poll_tid);
	cr_assert_str_eq(tj_str(bt, "call"), "poll");

	/* (c) nobody waits on these: still leak suspects */
	g = group_at(j, "idle_conns", "watched.idle", 0);
	cr_assert_not_null(g);
	cr_assert_str_eq(tj_str(g, "verdict"), "leak_suspect");
	cr_assert_eq(tj_num(g, "count", -1), 2);
	cr_assert_eq(tj_num(tj_get(g, "watch"), "watched", -1), 0);
	cr_assert_eq(tj_num(tj_get(g, "evidence"), "watched", -1), 0);

	/* one place, one socket watched and one not: split in two */
	struct tj *m0 = group_at(j, "mixed_conns", "watched.mixed", 0);
	struct tj *m1 = group_at(j, "mixed_conns", "watched.mixed", 1);
	cr_assert(m0 && m1, "the mixed group is split");
	cr_assert_null(group_at(j, "mixed_conns", "watched.mixed", 2));
	if (!strcmp(tj_str(m0, "verdict"), "watched")) {
		struct tj *t = m0;
		m0 = m1;
		m1 = t;
	}
	cr_assert_str_eq(tj_str(m0, "verdict"), "leak_suspect");
	cr_assert_str_eq(tj_str(m1, "verdict"), "watched");
	cr_assert_eq(tj_num(m0, "count", -1), 1);
	cr_assert_eq(tj_num(m1, "count", -1), 1);
	cr_assert_eq(tj_num(tj_get(m1, "evidence"), "key_count", -1), 2);
	tj_free(j);

	/* the text report shows the same evidence */
	char want[128];
	live_report(&l, "text", &r);
	cr_assert_not_null(strstr(r.out, "WATCHED "), "%s", r.out);
	snprintf(want, sizeof want, "3 of 3 by epoll fd %d (thread %d waiting)", l.epfd, l.epoll_tid);
	cr_assert_not_null(strstr(r.out, want), "%s\n%s", want, r.out);
	snprintf(want, sizeof want, "1 of 1 by thread %d blocked reading", l.reader_tid);
	cr_assert_not_null(strstr(r.out, want), "%s\n%s", want, r.out);
	snprintf(want, sizeof want, "1 of 1 by thread %d blocked in poll", l.poll_tid);
	cr_assert_not_null(strstr(r.out, want), "%s\n%s", want, r.out);
	cr_assert_not_null(strstr(r.out, "0 of 2: in no epoll set, no thread blocked on them"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "3 leak suspect, 6 watched"), "%s", r.out);
	cmd_result_free(&r);
	live_stop(&l);
}
