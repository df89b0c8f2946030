/*
 * Test helpers: run a command with a timeout and capture its output, find
 * the line of an "LW-MARK: name" comment in a fixture source, locate built
 * artefacts.  Header-only; every function is static.
 */
#ifndef TESTS_TUTIL_H
#define TESTS_TUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LW_BUILD_DIR
#define LW_BUILD_DIR "build"
#endif
#ifndef LW_SOURCE_DIR
#define LW_SOURCE_DIR "."
#endif

struct cmd_result {
	int status;        /* exit status, 128 + signal if killed, -1 on timeout */
	char *out;         /* captured stdout, NUL-terminated */
	char *err;         /* captured stderr */
	size_t out_len, err_len;
};

static inline void cmd_result_free(struct cmd_result *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

static inline void buf_append(char **buf, size_t *len, const char *data, size_t n)
{
	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/*
 * run_cmd - run argv (NULL-terminated) with extra environment entries
 * ("NAME=value", NULL-terminated, may be NULL) and stdin from /dev/null.
 * Kills the child after timeout_s seconds.  Always returns with r filled.
 */
static inline void run_cmd(struct cmd_result *r, char *const argv[], char *const env_extra[], int timeout_s)
{
	int op[2], ep[2];
	memset(r, 0, sizeof *r);
	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
		r->status = -2;
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(op[1], 1);
		dup2(ep[1], 2);
		for (int i = 0; env_extra && env_extra[i]; i++)
			putenv(env_extra[i]);
		execvp(argv[0], argv);
		fprintf(stderr, "run_cmd: cannot exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(op[1]);
	close(ep[1]);
	struct pollfd p[2] = { { op[0], POLLIN, 0 }, { ep[0], POLLIN, 0 } };
	time_t deadline = time(NULL) + timeout_s;
	int open_fds = 2, timed_out = 0;
	while (open_fds > 0) {
		int left = (int)(deadline - time(NULL));
		if (left <= 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, left * 1000) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			char buf[8192];
			ssize_t n = read(p[i].fd, buf, sizeof buf);
			if (n <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
			} else if (i == 0) {
				buf_append(&r->out, &r->out_len, buf, (size_t)n);
			} else {
				buf_append(&r->err, &r->err_len, buf, (size_t)n);
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	int st = 0;
	waitpid(pid, &st, 0);
	if (timed_out)
		r->status = -1;
	else if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else
		r->status = 128 + WTERMSIG(st);
}

/* marker_line - line number (1-based) of the "LW-MARK: name" comment in a
 * source file below LW_SOURCE_DIR, or 0. */
static inline int marker_line(const char *relpath, const char *name)
{
	char path[1024], line[1024], tag[256];
	snprintf(path, sizeof path, "%s/%s", LW_SOURCE_DIR, relpath);
	snprintf(tag, sizeof tag, "LW-MARK: %s", name);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int n = 0, found = 0;
	while (fgets(line, sizeof line, f)) {
		n++;
		const char *at = strstr(line, tag);
		/* the name must end there: "x.a" must not match "x.ab" */
		if (at && (at[strlen(tag)] == ' ' || at[strlen(tag)] == '\n' || at[strlen(tag)] == '\0')) {
			found = n;
			break;
		}
	}
	fclose(f);
	return found;
}

/* count_lines - lines of s (a trailing text without newline counts). */
static inline int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* slurp - a whole file as a malloc'd NUL-terminated string, or NULL. */
static inline char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0, n;
	char *buf = malloc(cap);
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 >= cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static inline const char *lw_bin(void)
{
	return LW_BUILD_DIR "/leakwatch";
}

static inline const char *lw_shim(void)
{
	return LW_BUILD_DIR "/libleakwatch.so";
}

/*
 * run_report - `leakwatch run --format json --output F OPTS... -- CMD...`
 * with extra environment entries (NULL-terminated, may be NULL).  Fills r
 * with the leakwatch process's result and returns the report (malloc'd), or
 * NULL when none was written.
 */
static inline char *run_report(struct cmd_result *r, char *const env[], const char *const *opts,
			       const char *const *cmd)
{
	char out[] = "/tmp/lw-report-XXXXXX";
	int fd = mkstemp(out);
	if (fd >= 0)
		close(fd);
	const char *argv[96];
	int n = 0;
	argv[n++] = lw_bin();
	argv[n++] = "run";
	argv[n++] = "--format";
	argv[n++] = "json";
	argv[n++] = "--output";
	argv[n++] = out;
	for (int i = 0; opts && opts[i] && n < 60; i++)
		argv[n++] = opts[i];
	argv[n++] = "--";
	for (int i = 0; cmd[i] && n < 94; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	run_cmd(r, (char *const *)argv, env, 120);
	char *text = slurp(out);
	unlink(out);
	return text;
}

#endif
