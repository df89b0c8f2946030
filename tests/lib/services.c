/* SPDX-License-Identifier: MIT */
/* services.c — background services for a suite (services.h). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "services.h"
#include "testlib.h"

static pid_t groups[16];
static int ngroups;
static char dir[256];

const char *svc_dir(void)
{
	return dir;
}

void svc_setup(const char *prefix)
{
	snprintf(dir, sizeof dir, "/tmp/%s-XXXXXX", prefix);
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(mkdir(svc_path("segments"), 0700), 0);
}

static void reap(pid_t pid)
{
	int st;
	kill(-pid, SIGTERM);
	for (int t = 0; t < 50 && waitpid(pid, &st, WNOHANG) == 0; t++)
		usleep(50000);
	kill(-pid, SIGKILL);
	waitpid(pid, &st, 0);
}

void svc_teardown(void)
{
	for (int i = 0; i < ngroups; i++)
		kill(-groups[i], SIGTERM);
	for (int i = 0; i < ngroups; i++)
		reap(groups[i]);
	ngroups = 0;
	if (dir[0]) {
		struct cmd_result r;
		char *argv[] = { "rm", "-rf", dir, NULL };
		run_cmd(&r, argv, NULL, 30);
		cmd_result_free(&r);
		dir[0] = '\0';
	}
}

char *svc_path(const char *name)
{
	static char buf[4][400];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, sizeof buf[0], "%s/%s", dir, name);
	return p;
}

pid_t svc_spawn(char *const argv[], char *const env_extra[], const char *log)
{
	cr_assert_lt(ngroups, (int)(sizeof groups / sizeof groups[0]), "too many services");
	struct spawn_opts o = { .path = argv[0], .env = env_extra, .log_path = svc_path(log), .new_pgrp = true };
	pid_t pid = spawn_bg(argv, &o);
	cr_assert_geq(pid, 0, "cannot start %s", argv[0]);
	groups[ngroups++] = pid;
	return pid;
}

void svc_stop(pid_t pid)
{
	reap(pid);
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == pid)
			groups[i] = groups[--ngroups];
}

int svc_read_port(const char *file, int timeout_s)
{
	for (int t = 0; t < timeout_s * 20; t++) {
		char *s = slurp(svc_path(file));
		int port = s ? atoi(s) : 0;
		free(s);
		if (port > 0)
			return port;
		usleep(50000);
	}
	return 0;
}

int svc_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}
