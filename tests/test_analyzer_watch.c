/* SPDX-License-Identifier: MIT */
/*
 * Tests for analyzer/lib/watch.c: the /proc/PID/fdinfo (epoll) and
 * /proc/PID/task/TID/syscall parsers on fabricated and hostile text, the
 * loader on this very process (a real epoll set, a real blocked thread),
 * and the WATCHED verdict on fabricated evidence.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "lib/analyzer.h"
#include "present.h"

#define SEC 1000000000ull
#define MIN (60 * SEC)
#define NOW (100000 * SEC)
#define IDLE_FOR (5 * MIN)

static const char *const dir = suite_dir;

TestSuite(analyzer_watch, .init = suite_dir_setup, .fini = suite_dir_teardown);

/* ---- /proc/PID/task/TID/syscall ---- */

Test(analyzer_watch, syscall_lines)
{
	struct lw_task_syscall sc;
	memset(&sc, 0, sizeof sc);
	cr_assert_eq(lw_watch_parse_syscall("0 0x7 0x7ffd1000 0x40 0x0 0x0 0x0 0x7ffd0ff8 0x7f00deadbeef\n", &sc), 1);
	cr_assert_eq(sc.nr, 0);
	cr_assert_eq(sc.args[0], 7);
	cr_assert_eq(sc.args[1], 0x7ffd1000);
	cr_assert_eq(sc.args[2], 0x40);
	cr_assert_eq(sc.sp, 0x7ffd0ff8);
	cr_assert_eq(sc.pc, 0x7f00deadbeef);
	cr_assert_eq(lw_watch_parse_syscall("232 0x3 0x1 0x8 0xffffffffffffffff 0x0 0x0 0x1 0x2", &sc), 1,
		     "no newline at the end");
	cr_assert_eq(sc.args[3], UINT64_MAX);
	cr_assert_eq(lw_watch_parse_syscall("running\n", &sc), 0);
	cr_assert_eq(lw_watch_parse_syscall("-1 0x7ffd0ff8 0x7f00deadbeef\n", &sc), 0, "blocked outside a syscall");

	static const char *const bad[] = {
		"",
		"\n",
		"0",
		"0 0x7 0x1",                                            /* truncated */
		"0 0x7 0x1 0x2 0x3 0x4 0x5 0x6",                        /* no pc */
		"0 0x7 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8",                /* one too many */
		"0 7 1 2 3 4 5 6 7",                                    /* hex without 0x */
		"99999999999999999999 0x1 0x1 0x1 0x1 0x1 0x1 0x1 0x1", /* nr overflows */
		"4294967296 0x1 0x1 0x1 0x1 0x1 0x1 0x1 0x1",           /* nr beyond int */
		"0 0x1ffffffffffffffff 0x1 0x1 0x1 0x1 0x1 0x1 0x1",    /* argument overflows */
		"0 0x 0x1 0x1 0x1 0x1 0x1 0x1 0x1",                     /* no digits */
		"0 0x7g 0x1 0x1 0x1 0x1 0x1 0x1 0x1",                   /* stray character */
		"-2 0x1 0x2",
		"-1 0x1",
		"-1 0x1 0x2 0x3",
		"runningx",
		"garbage \x01\xff",
		"0 0x7 0x1 0x2 0x3 0x4 0x5 0x6 0x7 trailing",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(lw_watch_parse_syscall(bad[i], &sc), -1, "accepted \"%s\"", bad[i]);
}

Test(analyzer_watch, syscall_kinds_of_the_host)
{
	cr_assert_eq(lw_watch_syscall_kind(SYS_read), LW_WAIT_READ);
	cr_assert_eq(lw_watch_syscall_kind(SYS_readv), LW_WAIT_READ);
	cr_assert_eq(lw_watch_syscall_kind(SYS_pread64), LW_WAIT_READ);
	cr_assert_eq(lw_watch_syscall_kind(SYS_recvfrom), LW_WAIT_READ);
	cr_assert_eq(lw_watch_syscall_kind(SYS_recvmsg), LW_WAIT_READ);
	cr_assert_eq(lw_watch_syscall_kind(SYS_recvmmsg), LW_WAIT_READ);
	cr_assert_eq(lw_watch_syscall_kind(SYS_accept), LW_WAIT_ACCEPT);
	cr_assert_eq(lw_watch_syscall_kind(SYS_accept4), LW_WAIT_ACCEPT);
	cr_assert_eq(lw_watch_syscall_kind(SYS_ppoll), LW_WAIT_POLL);
	cr_assert_eq(lw_watch_syscall_kind(SYS_epoll_pwait), LW_WAIT_EPOLL);
	cr_assert_eq(lw_watch_syscall_kind(SYS_pselect6), LW_WAIT_SELECT);
#ifdef SYS_poll
	cr_assert_eq(lw_watch_syscall_kind(SYS_poll), LW_WAIT_POLL);
	cr_assert_eq(lw_watch_syscall_kind(SYS_epoll_wait), LW_WAIT_EPOLL);
	cr_assert_eq(lw_watch_syscall_kind(SYS_select), LW_WAIT_SELECT);
#endif
	cr_assert_eq(lw_watch_syscall_kind(SYS_write), LW_WAIT_NONE);
	cr_assert_eq(lw_watch_syscall_kind(SYS_futex), LW_WAIT_NONE);
	cr_assert_eq(lw_watch_syscall_kind(SYS_nanosleep), LW_WAIT_NONE);
	cr_assert_eq(lw_watch_syscall_kind(-1), LW_WAIT_NONE);
	cr_assert_eq(lw_watch_syscall_kind(1L << 40), LW_WAIT_NONE);
}

/* ---- /proc/PID/fdinfo of an epoll set ---- */

Test(analyzer_watch, epoll_fdinfo_lines)
{
	const char *text = "pos:\t0\n"
			   "flags:\t02000002\n"
			   "mnt_id:\t15\n"
			   "ino:\t1057\n"
			   "tfd:        5 events:       19 data:                5  pos:0 ino:61af sdev:8\n"
			   "tfd:       12 events: 80000019 data: ffffffffffffffff  pos:0 ino:ffffffffffffffff sdev:8\n"
			   "tfd:        7 events:       1d data:                0\n" /* before 3.18: no inode */
			   "tfd:       40 events:        4 data:               28  pos:-1 ino:abc sdev:8 later:1";
	struct lw_epoll_item it[8];
	cr_assert_eq(lw_watch_parse_epoll(text, NULL, 0), 4, "counted without storing");
	cr_assert_eq(lw_watch_parse_epoll(text, it, 8), 4);
	cr_assert_eq(it[0].tfd, 5);
	cr_assert_eq(it[0].events, 0x19);
	cr_assert_eq(it[0].ino, 0x61af, "ino is hex");
	cr_assert_eq(it[1].tfd, 12);
	cr_assert_eq(it[1].events, 0x80000019u);
	cr_assert_eq(it[1].ino, UINT64_MAX);
	cr_assert_eq(it[2].tfd, 7);
	cr_assert_eq(it[2].ino, 0, "no inode shown: 0");
	cr_assert_eq(it[3].tfd, 40);
	cr_assert_eq(it[3].ino, 0xabc);
	memset(it, 0, sizeof it);
	cr_assert_eq(lw_watch_parse_epoll(text, it, 2), 4, "max bounds the writes, not the count");
	cr_assert_eq(it[2].tfd, 0, "nothing written past max");

	const char *hostile = "tfd:\n"
			      "tfd: 5\n"
			      "tfd: 5 events:\n"
			      "tfd: 5 events: 19\n"
			      "tfd: 5 events: 19 data:\n"
			      "tfd: 5 events: 19 data: 0 pos:\n"
			      "tfd: 5 events: 19 data: 0 pos:0\n"
			      "tfd: 5 events: 19 data: 0 pos:0 ino:\n"
			      "tfd: 5 events: 19 data: 0 pos:0 ino:xyz sdev:0\n"
			      "tfd: -5 events: 19 data: 0\n"
			      "tfd: 2147483648 events: 19 data: 0\n"
			      "tfd: 99999999999999999999999 events: 19 data: 0\n"
			      "tfd: 5 events: 100000000 data: 0\n"
			      "tfd: 5 events: 19 data: 1ffffffffffffffff\n"
			      "tfd: 5 events: 19 data: 0 pos:0 ino:1ffffffffffffffff sdev:0\n"
			      "tfd: 5x events: 19 data: 0\n"
			      "tfd: 5 event: 19 data: 0\n"
			      "xtfd: 5 events: 19 data: 0\n"
			      "\x01\x02\xff garbage\n"
			      "tfd: 9 events: 1 data: 0 pos:0 ino:10 sdev:0\n";
	cr_assert_eq(lw_watch_parse_epoll(hostile, it, 8), 1, "only the last line is well formed");
	cr_assert_eq(it[0].tfd, 9);
	cr_assert_eq(it[0].ino, 0x10);
	cr_assert_eq(lw_watch_parse_epoll("", it, 8), 0);
}

Test(analyzer_watch, random_text_never_crashes)
{
	static const char alphabet[] = "tfd: events:data:posinosdev0123456789abcdefx-\n \t\x01\xff";
	char buf[4096];
	struct lw_epoll_item it[16];
	struct lw_task_syscall sc;
	uint32_t x = 12345;
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(round % (sizeof buf - 1));
		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
		}
		buf[n] = '\0';
		(void)lw_watch_parse_epoll(buf, it, 16);
		(void)lw_watch_parse_syscall(buf, &sc);
	}
}

Test(analyzer_watch, armed_masks)
{
	cr_assert(lw_watch_epoll_armed(EPOLLIN));
	cr_assert(lw_watch_epoll_armed(EPOLLOUT | EPOLLET));
	cr_assert(lw_watch_epoll_armed(EPOLLRDHUP | EPOLLONESHOT));
	cr_assert_not(lw_watch_epoll_armed(EPOLLONESHOT | EPOLLET), "a fired one-shot, never re-armed");
	cr_assert_not(lw_watch_epoll_armed(EPOLLWAKEUP | EPOLLEXCLUSIVE));
	cr_assert_not(lw_watch_epoll_armed(0));
}

Test(analyzer_watch, set_merges_and_finds)
{
	struct lw_watchset w;
	memset(&w, 0, sizeof w);
	struct lw_watch a = { .inode = 30, .epoll_fd = 9, .epoll_tid = 0 };
	struct lw_watch b = { .inode = 30, .epoll_fd = 4, .epoll_tid = 77 };
	struct lw_watch c = { .inode = 30, .epoll_fd = -1, .tid = 88, .call = LW_WAIT_READ };
	struct lw_watch d = { .inode = 10, .epoll_fd = -1, .tid = 99, .call = LW_WAIT_ACCEPT };
	struct lw_watch z = { .inode = 0, .epoll_fd = 3 };
	cr_assert_eq(lw_watch_add(&w, &a), 0);
	cr_assert_eq(lw_watch_add(&w, &b), 0);
	cr_assert_eq(lw_watch_add(&w, &c), 0);
	cr_assert_eq(lw_watch_add(&w, &d), 0);
	cr_assert_eq(lw_watch_add(&w, &z), 0, "inode 0 is ignored");
	cr_assert_null(lw_watch_find(&w, 30), "unsorted: no lookups");
	lw_watch_sort(&w);
	cr_assert_eq(w.n, 2);
	const struct lw_watch *f = lw_watch_find(&w, 30);
	cr_assert_not_null(f);
	cr_assert_eq(f->epoll_fd, 4, "the lowest epoll fd");
	cr_assert_eq(f->epoll_tid, 77);
	cr_assert_eq(f->tid, 88);
	cr_assert_eq(f->call, LW_WAIT_READ);
	cr_assert_eq(lw_watch_find(&w, 10)->call, LW_WAIT_ACCEPT);
	cr_assert_null(lw_watch_find(&w, 20));
	cr_assert_null(lw_watch_find(&w, 0));
	cr_assert_null(lw_watch_find(NULL, 10));
	lw_watch_free(&w);
	lw_watch_free(&w);
}

/* ---- the loader, on this process ---- */

static uint64_t inode_of(int fd)
{
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

struct blocked {
	int fd;
	volatile int tid;
};

static void *read_one(void *arg)
{
	struct blocked *b = arg;
	char c;
	b->tid = (int)syscall(SYS_gettid);
	(void)read(b->fd, &c, 1);
	return NULL;
}

/* 1 when thread tid is in a system call whose first argument is fd (as the fixture checks). */
static int in_call_on(int tid, int fd)
{
	char path[64], *text;
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
	FILE *f = fopen(path, "r");
	char line[512] = "";
	if (!f)
		return 0;
	text = fgets(line, sizeof line, f);
	fclose(f);
	struct lw_task_syscall sc;
	return text && lw_watch_parse_syscall(line, &sc) == 1 && sc.args[0] == (uint64_t)fd;
}

Test(analyzer_watch, load_this_process)
{
	int sp[2], sq[2], sr[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sq), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sr), 0);
	int ep = epoll_create1(0), oneshot_ep = epoll_create1(0);
	cr_assert_geq(ep, 0);
	struct epoll_event ev = { .events = EPOLLIN };
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, sp[0], &ev), 0);
	/* registered through a dup that is then closed: the item stays (the file is
	 * open), its tfd names no descriptor any more, only the inode matches */
	int dup_fd = dup(sq[0]);
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, dup_fd, &ev), 0);
	close(dup_fd);
	/* a one-shot that fired and was never re-armed watches nothing */
	struct epoll_event one = { .events = EPOLLIN | EPOLLONESHOT };
	cr_assert_eq(epoll_ctl(oneshot_ep, EPOLL_CTL_ADD, sr[0], &one), 0);
	cr_assert_eq(write(sr[1], "x", 1), 1);
	struct epoll_event got;
	cr_assert_eq(epoll_wait(oneshot_ep, &got, 1, 5000), 1);

	struct blocked b = { .fd = sp[1], .tid = 0 };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, read_one, &b), 0);
	for (int i = 0; i < 20000 && !(b.tid && in_call_on(b.tid, sp[1])); i++)
		usleep(1000);
	cr_assert(in_call_on(b.tid, sp[1]), "the reader never blocked");

	struct lw_watchset w;
	cr_assert_eq(lw_watch_load(&w, getpid()), 0);
	cr_assert(w.loaded);
	cr_assert_geq(w.nepoll, 2);
	cr_assert_geq(w.nthreads, 2);
	cr_assert_eq(w.task_errno, 0, "%s", strerror(w.task_errno));
	const struct lw_watch *x = lw_watch_find(&w, inode_of(sp[0]));
	cr_assert_not_null(x, "the socket in the epoll set");
	cr_assert_eq(x->epoll_fd, ep);
	x = lw_watch_find(&w, inode_of(sq[0]));
	cr_assert_not_null(x, "matched by inode, not by the closed dup's number");
	cr_assert_eq(x->epoll_fd, ep);
	x = lw_watch_find(&w, inode_of(sp[1]));
	cr_assert_not_null(x, "the socket a thread is blocked reading");
	cr_assert_eq(x->tid, b.tid);
	cr_assert_eq(x->call, LW_WAIT_READ);
	cr_assert_eq(x->epoll_fd, -1);
	cr_assert_null(lw_watch_find(&w, inode_of(sr[0])), "fired one-shot");
	cr_assert_null(lw_watch_find(&w, inode_of(sq[1])), "nobody waits on it");
	lw_watch_free(&w);

	cr_assert_eq(write(sp[0], "y", 1), 1);
	pthread_join(t, NULL);
	close(ep);
	close(oneshot_ep);
	for (int i = 0; i < 2; i++) {
		close(sp[i]);
		close(sq[i]);
		close(sr[i]);
	}
}

Test(analyzer_watch, load_of_a_gone_process_is_empty)
{
	struct lw_watchset w;
	cr_assert_eq(lw_watch_load(&w, lw_dead_pid()), 0);
	cr_assert_eq(w.n, 0);
	lw_watch_free(&w);
}

/* ---- verdicts on fabricated evidence ---- */

static void snap_of(struct fab *f, const char *name, struct lw_snapshot *s)
{
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(f, dir, name, path, sizeof path);
	fab_free(f);
	cr_assert_eq(lw_snapshot_open(s, path, err, sizeof err), 0, "%s", err);
}

static void tcp_to(struct fab *f, int fd, uint32_t stack, uint64_t age, uint16_t port)
{
	struct lw_handle *h = fab_handle(f, fd, LW_ORIGIN_SOCKET, stack, NOW - age);
	fab_addr_in(&h->peer, "127.0.0.1", port);
}

static void watch_epoll(struct lw_watchset *w, int fd, int epfd, int tid)
{
	struct lw_watch x = { .inode = 100000 + (uint64_t)fd, .epoll_fd = epfd, .epoll_tid = tid };
	cr_assert_eq(lw_watch_add(w, &x), 0);
}

static void watch_thread(struct lw_watchset *w, int fd, int tid, enum lw_wait_call call)
{
	struct lw_watch x = { .inode = 100000 + (uint64_t)fd, .epoll_fd = -1, .tid = tid, .call = (uint8_t)call };
	cr_assert_eq(lw_watch_add(w, &x), 0);
}

static int verdicts(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_sockdiag *d,
		    struct lw_watchset *w, int ended)
{
	struct lw_join j;
	if (lw_join_proc(&j, s, 0) < 0)
		return -1;
	if (d)
		lw_join_set_sockdiag(&j, d);
	if (w)
		lw_join_set_watch(&j, w);
	int rc = lw_group_build_by(g, s, &j, NOW, 0, 0, LW_BY_OPEN);
	struct lw_verdict_opts vo = { .now_ns = NOW, .idle_for_ns = IDLE_FOR, .snap = s, .ended = ended };
	if (rc == 0)
		rc = lw_verdict_apply(g, &vo);
	lw_join_free(&j);
	return rc;
}

static const struct lw_group *with_verdict(const struct lw_grouping *g, enum lw_verdict v)
{
	for (size_t i = 0; i < g->ngroups; i++)
		if (g->groups[i].verdict == v)
			return &g->groups[i];
	return NULL;
}

Test(analyzer_watch, watched_idle_members_are_not_suspects)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	struct lw_sockdiag d;
	struct lw_watchset w;
	uint64_t frames[1] = { 0x1000 };

	/* 5 idle connections from one place: 2 in epoll fd 7, 1 with a reader, 2 unwatched */
	fab_init(&f, 16, 2, 32, 2);
	fab_stack(&f, 1, frames, 1);
	memset(&d, 0, sizeof d);
	memset(&w, 0, sizeof w);
	for (int fd = 3; fd < 8; fd++) {
		tcp_to(&f, fd, 1, 3600 * SEC, 6379);
		fab_kernel_tcp(&d, 100000 + (uint64_t)fd, 1, 600000, 0, 0);
	}
	watch_epoll(&w, 3, 7, 42);
	watch_epoll(&w, 4, 7, 42);
	watch_thread(&w, 5, 43, LW_WAIT_READ);
	snap_of(&f, "mixed", &s);
	cr_assert_eq(verdicts(&g, &s, &d, &w, 0), 0);
	cr_assert_eq(g.ngroups, 2, "watched and suspect parts");
	const struct lw_group *sus = with_verdict(&g, LW_V_LEAK_SUSPECT), *wat = with_verdict(&g, LW_V_WATCHED);
	cr_assert(sus && wat);
	cr_assert_eq(sus->count, 2);
	cr_assert_eq(sus->fds[0], 6);
	cr_assert_eq(sus->ev.watched, 0);
	cr_assert_eq(sus->ev.reasons & LW_REASON_IDLE, LW_REASON_IDLE);
	cr_assert_eq(wat->count, 3);
	cr_assert_eq(wat->ev.watched, 3);
	cr_assert_eq(wat->ev.watched_epoll, 2);
	cr_assert_eq(wat->ev.watched_thread, 1);
	cr_assert_eq(wat->ev.idle, 3, "idle they are, still");
	cr_assert_eq(wat->ev.reasons, 0);
	cr_assert(wat->split);
	cr_assert_eq(wat->ev.key_count, 5);
	struct lw_watch_summary ws;
	lw_present_watch(wat, &ws);
	cr_assert_eq(ws.nepoll_fds, 1);
	cr_assert_eq(ws.epoll_fds[0], 7);
	cr_assert_eq(ws.nwaiters, 1);
	cr_assert_eq(ws.waiters[0], 42);
	cr_assert_eq(ws.nblocked, 1);
	cr_assert_eq(ws.blocked[0].tid, 43);
	cr_assert_eq(g.groups[0].verdict, LW_V_LEAK_SUSPECT, "suspects sort first");
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* all watched: one group, not split; CLOSE_WAIT stays suspect however watched */
	fab_init(&f, 16, 2, 32, 2);
	fab_stack(&f, 1, frames, 1);
	memset(&d, 0, sizeof d);
	memset(&w, 0, sizeof w);
	for (int fd = 3; fd < 6; fd++) {
		tcp_to(&f, fd, 1, 3600 * SEC, 6379);
		fab_kernel_tcp(&d, 100000 + (uint64_t)fd, 1, 600000, 0, 0);
		watch_epoll(&w, fd, 9, 0);
	}
	tcp_to(&f, 6, 2, 3600 * SEC, 6379);
	fab_kernel_tcp(&d, 100006, 8, 100, 1, 0);
	watch_epoll(&w, 6, 9, 0);
	snap_of(&f, "all", &s);
	cr_assert_eq(verdicts(&g, &s, &d, &w, 0), 0);
	cr_assert_eq(g.ngroups, 2);
	wat = with_verdict(&g, LW_V_WATCHED);
	sus = with_verdict(&g, LW_V_LEAK_SUSPECT);
	cr_assert(wat && sus);
	cr_assert_eq(wat->count, 3);
	cr_assert_not(wat->split);
	cr_assert_eq(sus->ev.reasons, LW_REASON_CLOSE_WAIT);
	cr_assert_eq(sus->ev.watched, 1, "the evidence is still shown");
	lw_grouping_free(&g);
	lw_snapshot_free(&s);
}

Test(analyzer_watch, recent_use_and_ended_images_are_unchanged)
{
	struct fab f;
	struct lw_snapshot s;
	struct lw_grouping g;
	struct lw_sockdiag d;
	struct lw_watchset w;

	/* a pool used within --idle-for stays a pool, watched or not */
	fab_init(&f, 16, 2, 32, 2);
	memset(&d, 0, sizeof d);
	memset(&w, 0, sizeof w);
	for (int fd = 3; fd < 6; fd++) {
		tcp_to(&f, fd, 1, 6 * 3600 * SEC, 5432);
		fab_kernel_tcp(&d, 100000 + (uint64_t)fd, 1, 400, 0, 0);
	}
	watch_epoll(&w, 3, 8, 0);
	snap_of(&f, "pool", &s);
	cr_assert_eq(verdicts(&g, &s, &d, &w, 0), 0);
	cr_assert_eq(g.ngroups, 1);
	cr_assert_eq(g.groups[0].verdict, LW_V_POOL);
	cr_assert_eq(g.groups[0].ev.watched, 1);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	/* an ended image: every socket left open is a leak, whatever was watched */
	fab_init(&f, 16, 2, 32, 2);
	memset(&w, 0, sizeof w);
	tcp_to(&f, 3, 1, 3600 * SEC, 5432);
	watch_epoll(&w, 3, 8, 0);
	snap_of(&f, "ended", &s);
	cr_assert_eq(verdicts(&g, &s, NULL, &w, 1), 0);
	cr_assert_eq(g.ngroups, 1);
	cr_assert_eq(g.groups[0].verdict, LW_V_LEFT_OPEN);
	lw_grouping_free(&g);
	lw_snapshot_free(&s);

	cr_assert_str_eq(lw_verdict_name(LW_V_WATCHED), "watched");
	cr_assert_str_eq(lw_verdict_title(LW_V_WATCHED), "WATCHED");
	cr_assert_str_eq(lw_wait_call_word(LW_WAIT_POLL), "poll");
	cr_assert_str_eq(lw_wait_call_name(LW_WAIT_READ), "reading");
}
