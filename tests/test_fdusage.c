/*
 * Every descriptor a live process holds, by kind, against RLIMIT_NOFILE
 * (analyzer/lib/fdusage.c): the link names of /proc/PID/fd, the limits
 * file, the time to exhaustion, and the report's DESCRIPTORS line on a
 * traced fixture whose descriptors the test makes grow.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/analyzer.h"
#include "lib/spawn.h"
#include "lib/testlib.h"

#define SEC 1000000000ull

Test(fdusage, kinds_from_link_names)
{
	cr_assert_eq(lw_fdk_of_link("socket:[12345]", 0), LW_FDK_SOCKET);
	cr_assert_eq(lw_fdk_of_link("pipe:[77]", 0), LW_FDK_PIPE);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[eventfd]", 0), LW_FDK_EVENTFD);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[eventfd:3]", 0), LW_FDK_EVENTFD);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[eventpoll]", 0), LW_FDK_EPOLL);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[timerfd]", 0), LW_FDK_TIMERFD);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[signalfd]", 0), LW_FDK_SIGNALFD);
	cr_assert_eq(lw_fdk_of_link("anon_inode:inotify", 0), LW_FDK_INOTIFY);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[fanotify]", 0), LW_FDK_FANOTIFY);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[pidfd]", 0), LW_FDK_PIDFD);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[userfaultfd]", 0), LW_FDK_USERFAULTFD);
	cr_assert_eq(lw_fdk_of_link("anon_inode:[io_uring]", 0), LW_FDK_OTHER);
	cr_assert_eq(lw_fdk_of_link("/memfd:cache (deleted)", 0), LW_FDK_MEMFD);
	cr_assert_eq(lw_fdk_of_link("/var/log/app.log", S_IFREG | 0644), LW_FDK_FILE);
	cr_assert_eq(lw_fdk_of_link("/var/log/app.log (deleted)", 0), LW_FDK_FILE);
	cr_assert_eq(lw_fdk_of_link("/etc", S_IFDIR | 0755), LW_FDK_DIR);
	cr_assert_eq(lw_fdk_of_link("/run/fifo", S_IFIFO | 0600), LW_FDK_FIFO);
	cr_assert_eq(lw_fdk_of_link("/dev/null", S_IFCHR | 0666), LW_FDK_DEVICE);
	cr_assert_eq(lw_fdk_of_link("net:[4026531840]", 0), LW_FDK_OTHER);
	cr_assert_eq(lw_fdk_of_link("", 0), LW_FDK_OTHER);
	cr_assert_str_eq(lw_fdk_name(LW_FDK_EPOLL), "epoll");
	cr_assert_str_eq(lw_fdk_name((enum lw_fdk)999), "other");
}

Test(fdusage, limits_file)
{
	uint64_t s = 0, h = 0;
	const char *real = "Limit                     Soft Limit           Hard Limit           Units     \n"
			   "Max cpu time              unlimited            unlimited            seconds   \n"
			   "Max open files            1024                 524288               files     \n"
			   "Max locked memory         8388608              8388608              bytes     \n";
	cr_assert_eq(lw_fdusage_parse_limits(real, &s, &h), 1);
	cr_assert_eq(s, 1024);
	cr_assert_eq(h, 524288);
	cr_assert_eq(lw_fdusage_parse_limits("Max open files unlimited unlimited files\n", &s, &h), 1);
	cr_assert_eq(s, LW_FD_UNLIMITED);
	cr_assert_eq(h, LW_FD_UNLIMITED);
	/* missing, malformed, overflowing, cut short: not understood, never a crash */
	cr_assert_eq(lw_fdusage_parse_limits("Max processes 10 10 processes\n", &s, &h), 0);
	cr_assert_eq(lw_fdusage_parse_limits("Max open files  lots  more  files\n", &s, &h), 0);
	cr_assert_eq(lw_fdusage_parse_limits("Max open files 99999999999999999999999 1 files\n", &s, &h), 0);
	cr_assert_eq(lw_fdusage_parse_limits("Max open files 1024\nMax x 5 5\n", &s, &h), 0);
	cr_assert_eq(lw_fdusage_parse_limits("Max open files", &s, &h), 0);
	cr_assert_eq(lw_fdusage_parse_limits("", &s, &h), 0);
}

Test(fdusage, time_to_exhaustion)
{
	struct lw_fdusage a = { .ok = 1, .open = 100, .limit_ok = 1, .soft = 1024, .hard = 4096 };
	struct lw_fdusage b = a;
	b.open = 200; /* +100 in 10 s: 824 to go at 10/s */
	cr_assert_eq(lw_fdusage_eta_ns(&a, &b, 10 * SEC), 82400000000ull);
	cr_assert_eq(lw_fdusage_eta_ns(&a, &a, 10 * SEC), 0, "no growth: no estimate");
	cr_assert_eq(lw_fdusage_eta_ns(&b, &a, 10 * SEC), 0, "shrinking: no estimate");
	struct lw_fdusage full = b;
	full.open = 1024;
	cr_assert_eq(lw_fdusage_eta_ns(&a, &full, 10 * SEC), 1, "at the limit");
	struct lw_fdusage unl = b;
	unl.soft = LW_FD_UNLIMITED;
	cr_assert_eq(lw_fdusage_eta_ns(&a, &unl, 10 * SEC), 0);
	struct lw_fdusage nolim = b;
	nolim.limit_ok = 0;
	cr_assert_eq(lw_fdusage_eta_ns(&a, &nolim, 10 * SEC), 0);
	cr_assert_eq(lw_fdusage_eta_ns(&a, &b, 0), 0);
}

struct kid {
	pid_t pid;
	int in, out;
	char dir[64];
	char buf[4096];
	size_t len;
};

static int kid_wait(struct kid *k, const char *what)
{
	return pipe_wait_for(k->out, k->buf, sizeof k->buf, &k->len, what, 20000);
}

static void kid_start(struct kid *k)
{
	memset(k, 0, sizeof *k);
	lw_tmpdir(k->dir, sizeof k->dir);
	char envdir[128], pre[512];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", k->dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	char *argv[] = { LW_BUILD_DIR "/fixtures/fdgrow", NULL };
	k->pid = spawn_piped(NULL, argv, (char *[]){ envdir, pre, NULL }, &k->in, &k->out);
	cr_assert_gt(k->pid, 0);
	cr_assert(kid_wait(k, "ready"), "fixture not ready: %s", k->buf);
}

static void kid_stop(struct kid *k)
{
	close(k->in);
	int st;
	waitpid(k->pid, &st, 0);
	close(k->out);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(rm_rf(k->dir), 0);
}

Test(fdusage, live_process_by_kind_and_growth, .timeout = 60)
{
	struct kid k;
	kid_start(&k);
	struct lw_fdusage a, b;
	lw_fdusage_read(&a, k.pid);
	cr_assert(a.ok && a.limit_ok);
	cr_assert_eq(a.soft, 256, "the fixture's soft limit");
	cr_assert_eq(a.by_kind[LW_FDK_SOCKET], 1);
	cr_assert_eq(a.by_kind[LW_FDK_EVENTFD], 1);
	cr_assert_eq(a.by_kind[LW_FDK_EPOLL], 1);
	cr_assert_eq(a.by_kind[LW_FDK_DIR], 1);
	cr_assert_geq(a.by_kind[LW_FDK_PIPE], 4, "its pipe and the test's stdin/stdout pipes");
	cr_assert_geq(a.by_kind[LW_FDK_FILE], 3);
	uint64_t sum = 0;
	for (int i = 0; i < LW_FDK_N; i++)
		sum += a.by_kind[i];
	cr_assert_eq(sum, a.open);

	cr_assert_eq(write(k.in, "open 40\n", 8), 8);
	cr_assert(kid_wait(&k, "opened 43"), "%s", k.buf);
	lw_fdusage_read(&b, k.pid);
	cr_assert_eq(b.open, a.open + 40);
	cr_assert_eq(b.by_kind[LW_FDK_FILE], a.by_kind[LW_FDK_FILE] + 40);
	/* +40 in 4 s (a stated interval): 10/s, (256 - open) / 10 seconds left */
	cr_assert_eq(lw_fdusage_eta_ns(&a, &b, 4 * SEC), (256 - b.open) * SEC / 10);
	lw_fdusage_free(&a);
	lw_fdusage_free(&b);
	kid_stop(&k);
	struct lw_fdusage gone;
	lw_fdusage_read(&gone, k.pid);
	cr_assert(!gone.ok);
	lw_fdusage_free(&gone);
}

/* The report's DESCRIPTORS line and fd_usage object: with --interval over
 * a process that does not change, the count and "no change". */
Test(fdusage, report_shows_descriptors_against_the_limit, .timeout = 60)
{
	struct kid k;
	kid_start(&k);
	char pid[16], envdir[128];
	snprintf(pid, sizeof pid, "%d", (int)k.pid);
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", k.dir);
	struct cmd_result r;
	run_cmd(&r, (char *[]){ LW_BUILD_DIR "/leakwatch", "report", pid, "--interval", "200ms", NULL },
		(char *[]){ envdir, NULL }, 60);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	struct lw_fdusage u;
	lw_fdusage_read(&u, k.pid);
	lw_fdusage_free(&u);
	char want[128];
	snprintf(want, sizeof want, "DESCRIPTORS %llu open of 256 allowed (soft RLIMIT_NOFILE, %.0f%%): socket 1, file ",
		 (unsigned long long)u.open, 100.0 * (double)u.open / 256.0);
	cr_assert_not_null(strstr(r.out, want), "want '%s' in:\n%s", want, r.out);
	cr_assert_not_null(strstr(r.out, "eventfd 1, epoll 1"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "; no change in "), "%s", r.out);
	/* the fixture made its socket, pipe, eventfd, epoll, dir and files
	 * under the shim; stdin and stdout (the test's pipes) it did not */
	const char *nsm = strstr(r.out, "; not seen made: ");
	cr_assert_not_null(nsm, "%s", r.out);
	char seen[256];
	snprintf(seen, sizeof seen, "%.*s", (int)strcspn(nsm, "\n"), nsm);
	cr_assert_not_null(strstr(seen, "pipe "), "%s", seen);
	cr_assert_null(strstr(seen, "socket"), "%s", seen);
	cmd_result_free(&r);

	run_cmd(&r, (char *[]){ LW_BUILD_DIR "/leakwatch", "report", pid, "--format", "json", NULL },
		(char *[]){ envdir, NULL }, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%s", r.out);
	struct tj *fu = tj_get(j, "fd_usage");
	cr_assert_not_null(fu, "%s", r.out);
	cr_assert_eq(tj_num(fu, "open", -1), (double)u.open);
	cr_assert_eq(tj_num(fu, "soft_limit", -1), 256);
	cr_assert_eq(tj_num(tj_get(fu, "by_kind"), "socket", -1), 1);
	cr_assert_eq(tj_get(fu, "growth")->type, TJ_NULL, "no --interval: no growth");
	struct tj *ub = tj_get(fu, "untracked_by_kind");
	cr_assert_geq(tj_num(ub, "pipe", -1), 2, "stdin and stdout: %s", r.out);
	cr_assert_eq(tj_num(ub, "socket", -1), -1, "the fixture's socket is recorded");
	cr_assert_eq(tj_num(ub, "eventfd", -1), -1);
	tj_free(j);
	cmd_result_free(&r);

	/* ps: the descriptors other than sockets the fixture made (its pipe's
	 * two ends, the eventfd, the epoll set, the directory, three files) */
	run_cmd(&r, (char *[]){ LW_BUILD_DIR "/leakwatch", "ps", "--format", "json", NULL }, (char *[]){ envdir, NULL }, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	j = tj_parse(r.out);
	cr_assert_not_null(j, "%s", r.out);
	cr_assert_eq(tj_len(j), 1, "%s", r.out);
	cr_assert_eq(tj_num(tj_at(j, 0), "fds", -1), 8, "%s", r.out);
	cr_assert_eq(tj_num(tj_at(j, 0), "sockets", -1), 1, "%s", r.out);
	tj_free(j);
	cmd_result_free(&r);
	run_cmd(&r, (char *[]){ LW_BUILD_DIR "/leakwatch", "ps", NULL }, (char *[]){ envdir, NULL }, 60);
	cr_assert_not_null(strstr(r.out, "SOCKETS      FDS  HEAP BLOCKS"), "%s", r.out);
	cmd_result_free(&r);
	kid_stop(&k);
}

/* Verdicts of descriptor groups (fdgroups.c), from two real snapshots of
 * the fixture taken around a growth the test makes: the loop's group grows
 * (LEAK SUSPECT), the start-up files do not (open). */
Test(fdusage, growing_file_group_is_a_leak_suspect, .timeout = 60)
{
	struct kid k;
	kid_start(&k);
	char seg[128], err[LW_ERR_MAX];
	snprintf(seg, sizeof seg, "%s/leakwatch.%d", k.dir, (int)k.pid);
	cr_assert_eq(write(k.in, "open 2\n", 7), 7);
	cr_assert(kid_wait(&k, "opened 5"), "%s", k.buf);
	struct lw_report_opts o = { .kind = LW_KIND_FDS };
	struct lw_report a, b;
	cr_assert_eq(lw_report_build(&a, seg, &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(write(k.in, "open 5\n", 7), 7);
	cr_assert(kid_wait(&k, "opened 10"), "%s", k.buf);
	cr_assert_eq(lw_report_build(&b, seg, &o, err, sizeof err), 0, "%s", err);

	lw_fd_group_judge(&b.fds, &a.fds, &b.snap, &a.snap, 4 * SEC, 300 * SEC, 0);
	int loop = 0, startup = 0;
	for (size_t i = 0; i < b.fds.ngroups; i++) {
		const struct lw_fd_group *g = &b.fds.groups[i];
		if (g->kind != LW_FD_FILE)
			continue;
		cr_assert(g->have_growth);
		if (g->count == 7) { /* the loop's: 2, then 5 more */
			loop = 1;
			cr_assert_eq(g->count_start, 2);
			cr_assert_eq(g->opened, 5);
			cr_assert_eq(g->closed, 0);
			cr_assert_eq(g->verdict, LW_FDV_LEAK_SUSPECT);
		} else if (g->count == 3) { /* opened at start, before "ready" */
			startup = 1;
			cr_assert_eq(g->count_start, 3);
			cr_assert_eq(g->verdict, LW_FDV_OPEN, "held, not growing");
		}
	}
	cr_assert(loop && startup, "groups: %zu", b.fds.ngroups);
	/* without --interval: 7 members of one age span (< --idle-for) is no growth */
	lw_fd_group_judge(&b.fds, NULL, &b.snap, NULL, 0, 300 * SEC, 0);
	for (size_t i = 0; i < b.fds.ngroups; i++)
		cr_assert_eq(b.fds.groups[i].verdict, LW_FDV_OPEN);
	/* ended: everything left open */
	lw_fd_group_judge(&b.fds, NULL, &b.snap, NULL, 0, 300 * SEC, 1);
	for (size_t i = 0; i < b.fds.ngroups; i++)
		cr_assert_eq(b.fds.groups[i].verdict, LW_FDV_LEFT_OPEN);
	lw_report_free(&a);
	lw_report_free(&b);
	kid_stop(&k);
}

/* Without --interval: files opened one by one over more than --idle-for
 * and none given back read as growing, in the text report. */
Test(fdusage, files_opened_over_time_are_reported_growing, .timeout = 60)
{
	struct kid k;
	kid_start(&k);
	for (int i = 0; i < 3; i++) {
		char want[32];
		snprintf(want, sizeof want, "opened %d", 4 + i);
		cr_assert_eq(write(k.in, "open 1\n", 7), 7);
		cr_assert(kid_wait(&k, want), "%s", k.buf);
		usleep(150000); /* ages that differ: the span the rule looks at, not a synchronisation */
	}
	char pid[16], envdir[128];
	snprintf(pid, sizeof pid, "%d", (int)k.pid);
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", k.dir);
	struct cmd_result r;
	run_cmd(&r, (char *[]){ LW_BUILD_DIR "/leakwatch", "report", pid, "--kind", "fds", "--idle-for", "250ms", NULL },
		(char *[]){ envdir, NULL }, 60);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	cr_assert_not_null(strstr(r.out, "  verdict    LEAK SUSPECT, growing: 3 opened over "), "%s", r.out);
	/* the three start-up files share one age: no verdict line for them */
	const char *first = strstr(r.out, "verdict");
	cr_assert_null(strstr(first + 1, "verdict"), "one suspect group only:\n%s", r.out);
	cmd_result_free(&r);
	kid_stop(&k);
}
