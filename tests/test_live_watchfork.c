/*
 * Who is watching, across a fork: a master's channels to a worker (nginx's
 * socketpairs) sit idle in the master while the worker waits on its end in
 * an epoll set.  The master's copies are WATCHED, by the related process;
 * a socketpair nobody waits on stays a LEAK SUSPECT.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/json.h"
#include "lib/testlib.h"

static struct tj *group_with_fd(struct tj *groups, int fd)
{
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *fds = tj_get(tj_at(groups, i), "fds");
		for (size_t k = 0; k < tj_len(fds); k++)
			if (tj_at(fds, k) && (int)tj_at(fds, k)->num == fd)
				return tj_at(groups, i);
	}
	return NULL;
}

Test(live_watchfork, master_channels_watched_by_the_worker, .timeout = 60)
{
	char dir[64], envdir[128], pre[512];
	lw_tmpdir(dir, sizeof dir);
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	char *argv[] = { LW_BUILD_DIR "/fixtures/watchfork", NULL };
	int in, out;
	pid_t pid = spawn_piped(NULL, argv, (char *[]){ envdir, pre, NULL }, &in, &out);
	cr_assert_gt(pid, 0);
	char buf[256] = "";
	size_t len = 0;
	cr_assert(pipe_wait_for(out, buf, sizeof buf, &len, "\n", 20000), "fixture not ready: %s", buf);
	int child, a0, a1, u0, u1;
	cr_assert_eq(sscanf(buf, "ready child=%d a=%d,%d u=%d,%d", &child, &a0, &a1, &u0, &u1), 5, "%s", buf);
	/* idle past --idle-for: the state the verdicts judge, not a synchronisation */
	struct timespec idle = { 0, 400 * 1000 * 1000 };
	nanosleep(&idle, NULL);

	char pids[16];
	snprintf(pids, sizeof pids, "%d", (int)pid);
	struct cmd_result r;
	run_cmd(&r, (char *[]){ LW_BUILD_DIR "/leakwatch", "report", pids, "--kind", "sockets", "--idle-for", "300ms",
				"--format", "json", NULL },
		(char *[]){ envdir, NULL }, 60);
	if (r.status != 0) {
		kill(child, SIGKILL);
		kill(pid, SIGKILL);
	}
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%s", r.out);
	struct tj *groups = tj_get(j, "groups");
	struct tj *ga = group_with_fd(groups, a0), *gu = group_with_fd(groups, u0);
	cr_assert_not_null(ga, "%s", r.out);
	cr_assert_not_null(gu, "%s", r.out);
	cr_assert_eq(group_with_fd(groups, a1), ga);
	cr_assert_str_eq(tj_str(ga, "verdict"), "watched", "%s", r.out);
	struct tj *w = tj_get(ga, "watch");
	cr_assert_eq(tj_num(w, "by_peer", -1), 2, "a0 by its other end, a1 the same socket: %s", r.out);
	cr_assert_eq(tj_num(w, "in_epoll", -1), 0, "the master watches nothing itself");
	cr_assert_not_null(tj_at(tj_get(w, "peer_pids"), 0));
	cr_assert_eq((int)tj_at(tj_get(w, "peer_pids"), 0)->num, child);
	cr_assert_str_eq(tj_str(gu, "verdict"), "leak_suspect", "%s", r.out);
	cr_assert_eq(tj_num(tj_get(gu, "watch"), "watched", -1), 0);
	tj_free(j);
	cmd_result_free(&r);

	run_cmd(&r, (char *[]){ LW_BUILD_DIR "/leakwatch", "report", pids, "--kind", "sockets", "--idle-for", "300ms", NULL },
		(char *[]){ envdir, NULL }, 60);
	char want[96];
	snprintf(want, sizeof want, "2 of 2 waited on in related process %d (a child or the parent", child);
	cr_assert_not_null(strstr(r.out, want), "%s", r.out);
	cmd_result_free(&r);

	kill(child, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(in);
	close(out);
	cr_assert_eq(rm_rf(dir), 0);
}
