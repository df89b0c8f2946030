/* SPDX-License-Identifier: MIT */
/*
 * spawn.h — the tests' one process runner.  Every test that runs a program
 * (leakwatch, a fixture, nm, du, ...) goes through spawn_start/spawn_finish
 * or their one-call form run_cmd: argv, extra environment, optional uid and
 * umask, stdin text or a pipe, a timeout that kills the child, stdout and
 * stderr captured, exit status or signal.
 */
#ifndef TESTS_LIB_SPAWN_H
#define TESTS_LIB_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cmd_result {
	int status;        /* exit status, 128 + signal if killed, -1 on timeout, -2 spawn failed */
	int signal;        /* the signal that ended it, 0 if it exited */
	bool timed_out;    /* killed by the timeout */
	char *out;         /* captured stdout, NUL-terminated */
	char *err;         /* captured stderr */
	size_t out_len, err_len;
};

struct spawn_opts {
	const char *path;        /* the program to run; NULL: argv[0], searched in PATH */
	char *const *env;        /* extra "NAME=value" entries, NULL-terminated, may be NULL */
	bool set_uid;            /* run as uid (and gid = uid) */
	uid_t uid;
	bool set_umask;
	mode_t umask;
	const char *stdin_text;  /* fed to stdin; NULL: /dev/null (or a pipe, below) */
	bool stdin_pipe;         /* leave stdin a pipe the caller writes: spawn.in */
	bool stderr_inherit;     /* leave stderr the test's own (not captured) */
	const char *log_path;    /* stdout and stderr to this file (created 0600), not captured */
	bool new_pgrp;           /* in a process group of its own (pgid = pid) */
	int timeout_s;           /* 0: 120 */
};

/* A started child: pipes to its stdin (-1 unless stdin_pipe), stdout, stderr. */
struct spawn {
	pid_t pid;
	int in, out, err;
	int timeout_s;
	struct cmd_result r;     /* output collected so far */
};

/* Start argv (NULL-terminated; argv[0] searched in PATH).  Returns 0, or -1
 * (errno set) with nothing started. */
int spawn_start(struct spawn *sp, char *const argv[], const struct spawn_opts *o);

/* Read the child's stdout until it contains `text` or timeout_s pass;
 * returns 1 when seen, 0 on timeout or EOF.  The text read stays in sp->r.out. */
int spawn_wait_output(struct spawn *sp, const char *text, int timeout_s);

/* Close stdin, collect the rest of stdout/stderr and the status into r
 * (which the caller frees with cmd_result_free), killing the child at the
 * deadline.  `kill_sig` (0: none) is sent first, for a child that runs
 * until told to stop. */
void spawn_finish(struct spawn *sp, int kill_sig, struct cmd_result *r);

/* spawn_piped - start path (NULL: argv[0]) with argv and extra environment entries (may be NULL),
 * stdin and stdout pipes (*in, *out: the caller's ends, close-on-exec),
 * stderr the test's own: for fixtures that live while a test talks to
 * them.  Returns the pid, or -1.  The caller reaps it (waitpid). */
pid_t spawn_piped(const char *path, char *const argv[], char *const env_extra[], int *in, int *out);

/* pipe_wait_for - append what fd (a spawn_piped stdout) gives to buf
 * (*len bytes so far, cap with the NUL) until it holds `what`; 1 then, 0 on
 * EOF, a full buffer or timeout_ms without output. */
int pipe_wait_for(int fd, char *buf, size_t cap, size_t *len, const char *what, int timeout_ms);

/* spawn_bg - start a program that runs in the background until the test
 * stops it (o->path, o->log_path, o->new_pgrp ...; no pipes).  Returns the
 * pid, or -1.  The caller reaps it. */
pid_t spawn_bg(char *const argv[], const struct spawn_opts *o);

/* run_cmd - run argv with extra environment entries (may be NULL), stdin
 * from /dev/null, killed after timeout_s seconds.  Always returns with r filled. */
void run_cmd(struct cmd_result *r, char *const argv[], char *const env_extra[], int timeout_s);

/* run_opts - run_cmd with all the options. */
void run_opts(struct cmd_result *r, char *const argv[], const struct spawn_opts *o);

void cmd_result_free(struct cmd_result *r);

#endif
