/* SPDX-License-Identifier: MIT */
/*
 * fixtures.h — what the tests find around them: the built binaries, the
 * "LW-MARK: name" lines of fixture sources, private temporary directories,
 * a pid that names no process, and the few ways of running leakwatch that
 * many suites share (all through spawn.h).
 */
#ifndef TESTS_LIB_FIXTURES_H
#define TESTS_LIB_FIXTURES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spawn.h"

#ifndef LW_BUILD_DIR
#define LW_BUILD_DIR "build"
#endif
#ifndef LW_SOURCE_DIR
#define LW_SOURCE_DIR "."
#endif

const char *lw_bin(void);   /* build/leakwatch */
const char *lw_shim(void);  /* build/libleakwatch.so */

/* marker_line - line number (1-based) of the "LW-MARK: name" comment in a
 * source file below LW_SOURCE_DIR, or 0. */
int marker_line(const char *relpath, const char *name);

/* count_lines - newlines in s. */
int count_lines(const char *s);

/* slurp - a whole file as a malloc'd NUL-terminated string, or NULL. */
char *slurp(const char *path);

/*
 * lw_dead_pid - a valid pid (below pid_max) that names no process, found by
 * probing /proc once per test process (from pid_max - 1 down; pids are
 * handed out upwards, so one up there stays free for the run).
 * lw_dead_pid_str: the same as text.  lw_pidfmt: fmt with its one %d
 * replaced by that pid, in one of 8 rotating static buffers.
 */
int lw_dead_pid(void);
const char *lw_dead_pid_str(void);
const char *lw_pidfmt(const char *fmt) __attribute__((format_arg(1)));

/* lw_tmpdir - a fresh private directory /tmp/lw-analyzer-test.XXXXXX, 0755
 * so a setuid() child can reach files in it; lw_rmdir removes one. */
void lw_tmpdir(char *dir, size_t len);
void lw_rmdir(const char *dir);

/* suite_dir - a private directory for the running test: suite_dir_setup
 * (a TestSuite .init) makes it with lw_tmpdir, suite_dir_teardown (.fini)
 * removes it. */
extern char suite_dir[64];
void suite_dir_setup(void);
void suite_dir_teardown(void);
/* suite_segdir_setup / _teardown - the same, with LEAKWATCH_DIR naming it
 * (the analyzer looks for segments there) while the test runs. */
void suite_segdir_setup(void);
void suite_segdir_teardown(void);

/*
 * tmpfs_dir - a fresh directory on a tmpfs of our own, for tests whose
 * segments must behave as on /dev/shm (holes, SEEK_DATA, free space):
 * as root, a tmpfs (size=1g, sparse: costs what is written) mounted on
 * /tmp/lw-<tag>.XXXXXX; otherwise a directory under /dev/shm when that is a
 * tmpfs.  Returns 0, or -1 when neither is possible (the caller skips).
 * tmpfs_dir_release unmounts (if mounted) and removes it.
 */
int tmpfs_dir(char *dir, size_t len, const char *tag);
void tmpfs_dir_release(const char *dir);

/* loaded_lib_path - where the dynamic loader found `soname` (e.g.
 * "libm.so.6") for this process, loading it if needed: no distribution's
 * library directory is assumed.  A static string, or NULL. */
const char *loaded_lib_path(const char *soname);

/* obj_range - a loaded object of this process: its path, load bias and the
 * span of its PT_LOAD segments. */
struct obj_range {
	const char *want;               /* NULL: the first object (the main program) */
	char path[4096];
	uint64_t base, start, end;
	int found;
};

/* loaded_object - fill r for the first object whose name contains want
 * (NULL: the main program); returns r->found. */
int loaded_object(const char *want, struct obj_range *r);

/* rm_rf - `rm -rf path` (through spawn); its exit status. */
int rm_rf(const char *path);

/* have_program - whether prog is found in PATH. */
int have_program(const char *prog);

/* lw_run_timed - `leakwatch run OPTS... -- CMD...` with extra environment
 * entries (NULL-terminated, may be NULL), killed after timeout_s; r filled. */
void lw_run_timed(struct cmd_result *r, char *const env[], const char *const *opts, const char *const *cmd,
		  int timeout_s);

/*
 * run_report - `leakwatch run --format json --output F OPTS... -- CMD...`
 * with extra environment entries (NULL-terminated, may be NULL).  Fills r
 * with the leakwatch process's result and returns the report (malloc'd), or
 * NULL when none was written.
 */
char *run_report(struct cmd_result *r, char *const env[], const char *const *opts, const char *const *cmd);

/*
 * cli_run - run build/leakwatch with args (NULL-terminated, without argv[0]),
 * optionally as another uid ((uid_t)-1: ours).  Captures stdout and stderr
 * (truncated to their buffers) and returns the exit status, or -1 if it did
 * not exit normally.
 */
int cli_run(const char *const *args, uid_t as_uid, char *out, size_t outlen, char *err, size_t errlen);

/* cli_run_opts - cli_run with spawn options (umask, timeout, env). */
int cli_run_opts(const char *const *args, const struct spawn_opts *o, char *out, size_t outlen, char *err,
		 size_t errlen);

#endif
