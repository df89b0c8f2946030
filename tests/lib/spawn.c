/* SPDX-License-Identifier: MIT */
/* spawn.c — the tests' one process runner (see spawn.h). */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void cmd_result_free(struct cmd_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

static void buf_append(char **buf, size_t *len, const char *data, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int spawn_start(struct spawn *sp, char *const argv[], const struct spawn_opts *o)
{
	static const struct spawn_opts none;
	int ip[2] = { -1, -1 }, op[2], ep[2] = { -1, -1 };
	if (!o)
		o = &none;
	memset(sp, 0, sizeof *sp);
	sp->in = sp->err = -1;
	sp->timeout_s = o->timeout_s > 0 ? o->timeout_s : 120;
	sp->r.out = calloc(1, 1);
	sp->r.err = calloc(1, 1);
	if ((o->stdin_pipe || o->stdin_text) && pipe2(ip, O_CLOEXEC))
		return -1;
	if (!o->log_path && (pipe2(op, O_CLOEXEC) || (!o->stderr_inherit && pipe2(ep, O_CLOEXEC))))
		return -1;
	if (o->log_path)
		op[0] = op[1] = -1;
	sp->pid = fork();
	if (sp->pid < 0)
		return -1;
	if (sp->pid == 0) {
		if (o->new_pgrp)
			setpgid(0, 0);
		int in = ip[0] >= 0 ? ip[0] : open("/dev/null", O_RDONLY);
		dup2(in, 0);
		if (o->log_path) {
			int fd = open(o->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			dup2(fd, 1);
			dup2(fd, 2);
		} else {
			dup2(op[1], 1);
		}
		if (ep[1] >= 0)
			dup2(ep[1], 2);
		/* a suite run under GitHub Actions: the programs it starts see
		 * GITHUB_ACTIONS only when a test sets it (run and report print
		 * annotations under it, which other suites do not expect) */
		unsetenv("GITHUB_ACTIONS");
		unsetenv("GITHUB_WORKSPACE");
		for (int i = 0; o->env && o->env[i]; i++)
			putenv(o->env[i]);
		if (o->set_umask)
			umask(o->umask);
		if (o->set_uid && (setgid(o->uid) < 0 || setuid(o->uid) < 0)) {
			fprintf(stderr, "spawn: cannot become uid %d: %s\n", (int)o->uid, strerror(errno));
			_exit(126);
		}
		const char *prog = o->path ? o->path : argv[0];
		execvp(prog, argv);
		fprintf(stderr, "spawn: cannot exec %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	if (o->new_pgrp)
		setpgid(sp->pid, sp->pid); /* also here: no race with a kill of the group */
	if (ip[0] >= 0)
		close(ip[0]);
	if (op[1] >= 0)
		close(op[1]);
	if (ep[1] >= 0)
		close(ep[1]);
	sp->in = ip[1];
	sp->out = op[0];
	sp->err = ep[0];
	if (o->stdin_text) {
		/* small texts: they fit the pipe, so this never blocks */
		size_t len = strlen(o->stdin_text), done = 0;
		while (done < len) {
			ssize_t w = write(sp->in, o->stdin_text + done, len - done);
			if (w <= 0)
				break;
			done += (size_t)w;
		}
		if (!o->stdin_pipe) {
			close(sp->in);
			sp->in = -1;
		}
	}
	return 0;
}

/* Read what is ready from stdout/stderr for at most `wait_s`; returns the
 * number of pipes still open. */
static int pump(struct spawn *sp, double wait_s)
{
	struct pollfd p[2] = { { sp->out, POLLIN, 0 }, { sp->err, POLLIN, 0 } };
	if (sp->out < 0 && sp->err < 0)
		return 0;
	int ms = wait_s > 0 ? (int)(wait_s * 1000) + 1 : 0;
	if (poll(p, 2, ms) < 0 && errno != EINTR)
		return -1;
	for (int i = 0; i < 2; i++) {
		int *fd = i == 0 ? &sp->out : &sp->err;
		if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		char buf[8192];
		ssize_t n = read(*fd, buf, sizeof buf);
		if (n <= 0) {
			close(*fd);
			*fd = -1;
		} else if (i == 0) {
			buf_append(&sp->r.out, &sp->r.out_len, buf, (size_t)n);
		} else {
			buf_append(&sp->r.err, &sp->r.err_len, buf, (size_t)n);
		}
	}
	return (sp->out >= 0) + (sp->err >= 0);
}

int spawn_wait_output(struct spawn *sp, const char *text, int timeout_s)
{
	double deadline = now_s() + timeout_s;
	while (!strstr(sp->r.out, text)) {
		double left = deadline - now_s();
		if (left <= 0 || sp->out < 0)
			return 0;
		if (pump(sp, left) < 0)
			return 0;
	}
	return 1;
}

void spawn_finish(struct spawn *sp, int kill_sig, struct cmd_result *r)
{
	if (sp->in >= 0) {
		close(sp->in);
		sp->in = -1;
	}
	if (kill_sig && sp->pid > 0)
		kill(sp->pid, kill_sig);
	double deadline = now_s() + sp->timeout_s;
	bool timed_out = false;
	for (;;) {
		double left = deadline - now_s();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		int open_fds = pump(sp, left);
		if (open_fds <= 0)
			break;
	}
	if (sp->out >= 0)
		close(sp->out);
	if (sp->err >= 0)
		close(sp->err);
	sp->out = sp->err = -1;
	int st = 0;
	if (sp->pid > 0) {
		if (!timed_out) {
			/* the pipes closed; the child may still be running (it closed
			 * them itself): give it the rest of the time */
			while (waitpid(sp->pid, &st, WNOHANG) == 0) {
				if (now_s() >= deadline) {
					timed_out = true;
					break;
				}
				struct timespec ts = { 0, 10000000L };
				nanosleep(&ts, NULL);
			}
		}
		if (timed_out) {
			kill(sp->pid, SIGKILL);
			waitpid(sp->pid, &st, 0);
		}
	}
	*r = sp->r;
	memset(&sp->r, 0, sizeof sp->r);
	r->timed_out = timed_out;
	if (timed_out) {
		r->status = -1;
	} else if (WIFEXITED(st)) {
		r->status = WEXITSTATUS(st);
	} else {
		r->signal = WTERMSIG(st);
		r->status = 128 + r->signal;
	}
	sp->pid = 0;
}

pid_t spawn_piped(const char *path, char *const argv[], char *const env_extra[], int *in, int *out)
{
	struct spawn sp;
	struct spawn_opts o = { .path = path, .env = env_extra, .stdin_pipe = true, .stderr_inherit = true };
	int rc = spawn_start(&sp, argv, &o);
	cmd_result_free(&sp.r);
	if (rc < 0)
		return -1;
	*in = sp.in;
	*out = sp.out;
	return sp.pid;
}

pid_t spawn_bg(char *const argv[], const struct spawn_opts *o)
{
	struct spawn sp;
	int rc = spawn_start(&sp, argv, o);
	cmd_result_free(&sp.r);
	if (rc < 0)
		return -1;
	if (sp.in >= 0)
		close(sp.in);
	if (sp.out >= 0)
		close(sp.out);
	if (sp.err >= 0)
		close(sp.err);
	return sp.pid;
}

void run_opts(struct cmd_result *r, char *const argv[], const struct spawn_opts *o)
{
	struct spawn sp;
	if (spawn_start(&sp, argv, o) < 0) {
		int e = errno;
		*r = sp.r;
		r->status = -2;
		buf_append(&r->err, &r->err_len, "spawn: ", 7);
		buf_append(&r->err, &r->err_len, strerror(e), strlen(strerror(e)));
		return;
	}
	spawn_finish(&sp, 0, r);
}

void run_cmd(struct cmd_result *r, char *const argv[], char *const env_extra[], int timeout_s)
{
	struct spawn_opts o = { .env = env_extra, .timeout_s = timeout_s };
	run_opts(r, argv, &o);
}

int pipe_wait_for(int fd, char *buf, size_t cap, size_t *len, const char *what, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	buf[*len] = '\0';
	while (!strstr(buf, what)) {
		if (*len + 1 >= cap || poll(&p, 1, timeout_ms) <= 0)
			return 0;
		ssize_t n = read(fd, buf + *len, cap - 1 - *len);
		if (n <= 0)
			return 0;
		*len += (size_t)n;
		buf[*len] = '\0';
	}
	return 1;
}
