/* SPDX-License-Identifier: MIT */
/*
 * services.h — background services for a suite (services.c): each started
 * in a process group of its own, output to a log under one temporary
 * directory (which has a segments/ directory for LEAKWATCH_DIR), every
 * one stopped — SIGTERM to the group, SIGKILL after 2.5 s — and the
 * directory removed by svc_teardown(), also when an assertion failed.
 */
#ifndef TESTS_LIB_SERVICES_H
#define TESTS_LIB_SERVICES_H

#include <sys/types.h>

/* svc_setup - make /tmp/PREFIX-XXXXXX and its segments/ (asserts). */
void svc_setup(const char *prefix);

/* svc_teardown - stop every service still running, remove the directory. */
void svc_teardown(void);

/* svc_dir - the temporary directory ("" before svc_setup). */
const char *svc_dir(void);

/* svc_path - DIR/name, in one of 4 rotating static buffers. */
char *svc_path(const char *name);

/* svc_spawn - start argv (argv[0] a path) with extra environment entries,
 * stdout and stderr to DIR/log; its pid (= process group id).  Asserts. */
pid_t svc_spawn(char *const argv[], char *const env_extra[], const char *log);

/* svc_stop - stop one service started by svc_spawn and forget it. */
void svc_stop(pid_t pid);

/* svc_read_port - the number a service writes to DIR/file (--port-file),
 * waiting up to timeout_s; 0 if it never came. */
int svc_read_port(const char *file, int timeout_s);

/* svc_free_port - a TCP port on 127.0.0.1 nothing listens on now. */
int svc_free_port(void);

#endif
