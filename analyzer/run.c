/* SPDX-License-Identifier: MIT */
/*
 * run.c — `leakwatch run [options] -- CMD ARGS...`: run a command under the
 * shim in a private segment directory, then report what it left open.
 *
 * JSON output of `run` (--format json) wraps the per-segment objects of
 * render.c:
 *   {"leakwatch":1,
 *    "run":{"argv":[...],"exit_status":N|null,"signal":S|null},
 *    "processes":[<report object>, ...],      (main process image(s) first)
 *    "leaked":N,                              (what --fail-on-leak looks at)
 *    "segment_errors":[{"segment":..,"error":..}]}
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analyzer.h"

#ifndef LW_LIBDIR
#define LW_LIBDIR "/usr/local/lib/leakwatch"
#endif

#define SHIM_NAME "libleakwatch.so"

/* Defaults of `run`; each field is one option. */
struct run_options {
	uint64_t older_than_ns;         /* --older-than DUR: only count sockets at least this old */
	int fail_on_leak;               /* --fail-on-leak: exit 1 when anything leaked */
	int keep;                       /* --keep: leave the segment directory behind */
	int all;                        /* --all: also show inherited sockets */
	enum lw_format format;          /* --format text|json */
	const char *output;             /* --output FILE: the report goes there, atomically */
};

static volatile sig_atomic_t child_pid;

/* leakwatch must outlive the command to report on it: pass the signal on instead. */
static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

static int file_readable(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, R_OK) == 0;
}

int lw_shim_find(char *out, size_t len)
{
	const char *env = getenv("LEAKWATCH_SHIM");
	if (env && *env) {
		if (!file_readable(env))
			return -1;
		snprintf(out, len, "%s", env);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *dir = dirname(self);
		snprintf(out, len, "%s/" SHIM_NAME, dir);
		if (file_readable(out))
			return 0;
		snprintf(out, len, "%s/../lib/leakwatch/" SHIM_NAME, dir);
		if (file_readable(out))
			return 0;
	}
	snprintf(out, len, "%s/" SHIM_NAME, LW_LIBDIR);
	return file_readable(out) ? 0 : -1;
}

static void dir_remove(const char *dir)
{
	struct lw_segref *refs = NULL;
	char err[LW_ERR_MAX];
	int n = lw_segments_list(dir, &refs, err, sizeof err);
	for (int i = 0; i < n; i++)
		unlink(refs[i].path);
	free(refs);
	if (rmdir(dir) < 0)
		fprintf(stderr, "leakwatch: cannot remove %s: %s\n", dir, strerror(errno));
}

static void usage_error(const char *msg, const char *arg)
{
	if (arg)
		fprintf(stderr, "leakwatch: run: %s '%s' (try 'leakwatch --help')\n", msg, arg);
	else
		fprintf(stderr, "leakwatch: run: %s (try 'leakwatch --help')\n", msg);
}

static int options_parse(struct run_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "fail-on-leak", no_argument, NULL, 'F' },
		{ "keep", no_argument, NULL, 'k' },
		{ "all", no_argument, NULL, 'a' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'O' },
		{ NULL, 0, NULL, 0 },
	};
	opterr = 0;
	optind = 0;   /* glibc: full re-initialisation */
	int c;
	/* '+': stop at the command, its options are its own. */
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (lw_duration_parse(optarg, &o->older_than_ns) < 0) {
				usage_error("bad duration", optarg);
				return -1;
			}
			break;
		case 'F': o->fail_on_leak = 1; break;
		case 'k': o->keep = 1; break;
		case 'a': o->all = 1; break;
		case 'O': o->output = optarg; break;
		case 'f':
			if (strcmp(optarg, "text") == 0)
				o->format = LW_FMT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				o->format = LW_FMT_JSON;
			else {
				usage_error("unknown format", optarg);
				return -1;
			}
			break;
		case ':':
			usage_error("missing argument for", argv[optind - 1]);
			return -1;
		default:
			usage_error("unknown option", argv[optind - 1]);
			return -1;
		}
	}
	if (optind >= argc) {
		usage_error("missing command (usage: leakwatch run [options] -- CMD ARGS...)", NULL);
		return -1;
	}
	return optind;
}

/*
 * Fork and exec argv under the shim.  Returns the child's pid, or -1 with
 * *exec_errno set when it could not be started (the child reports a failed
 * execvp through a close-on-exec pipe: EOF means exec succeeded).
 */
static pid_t command_start(char **argv, const char *dir, const char *shim, int *exec_errno)
{
	int pfd[2];
	*exec_errno = 0;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		*exec_errno = errno;
		return -1;
	}
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	/* Blocked across fork so no signal lands before the forwarding handler exists. */
	sigprocmask(SIG_BLOCK, &block, &old);
	pid_t pid = fork();
	if (pid < 0) {
		*exec_errno = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		const char *prev = getenv("LD_PRELOAD");
		size_t n = strlen(shim) + (prev ? strlen(prev) : 0) + 2;
		char *pre = malloc(n);
		int e = ENOMEM;
		if (pre) {
			if (prev && *prev)
				snprintf(pre, n, "%s:%s", shim, prev);
			else
				snprintf(pre, n, "%s", shim);
			if (setenv("LEAKWATCH_DIR", dir, 1) == 0 && setenv("LD_PRELOAD", pre, 1) == 0) {
				execvp(argv[0], argv);
			}
			e = errno;
		}
		if (write(pfd[1], &e, sizeof e) < 0) {
			/* nothing left to tell anyone */
		}
		_exit(127);
	}
	close(pfd[1]);
	child_pid = pid;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);

	int e = 0;
	ssize_t r;
	do
		r = read(pfd[0], &e, sizeof e);
	while (r < 0 && errno == EINTR);
	close(pfd[0]);
	if (r == (ssize_t)sizeof e) {
		*exec_errno = e;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	return pid;
}

static int command_wait(pid_t pid)
{
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 0;
			break;
		}
	}
	child_pid = 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	return status;
}

/* Segments of the main pid first (its current image, then exec'd ones), then the rest. */
static void segments_order(struct lw_segref *refs, int n, pid_t main_pid)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		if (refs[i].pid == main_pid) {
			struct lw_segref tmp = refs[i];
			memmove(&refs[k + 1], &refs[k], (size_t)(i - k) * sizeof *refs);
			refs[k++] = tmp;
		}
}

int lw_run_main(int argc, char **argv)
{
	struct run_options o = {
		.older_than_ns = 0,
		.fail_on_leak = 0,
		.keep = 0,
		.all = 0,
		.format = LW_FMT_TEXT,
	};
	int cmd = options_parse(&o, argc, argv);
	if (cmd < 0)
		return 2;
	char **cmdv = argv + cmd;

	if (o.output) {
		/* find out now, not after a long test run, that the report has nowhere to go */
		char d[PATH_MAX];
		snprintf(d, sizeof d, "%s", o.output);
		if (access(dirname(d), W_OK) != 0) {
			fprintf(stderr, "leakwatch: cannot write %s: %s\n", o.output, strerror(errno));
			return 2;
		}
	}
	char shim[PATH_MAX];
	if (lw_shim_find(shim, sizeof shim) < 0) {
		fprintf(stderr, "leakwatch: cannot find " SHIM_NAME " (set LEAKWATCH_SHIM)\n");
		return 2;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/leakwatch-run.XXXXXX", lw_segment_dir());
	if (!mkdtemp(dir)) {
		fprintf(stderr, "leakwatch: cannot create a directory in %s: %s\n", lw_segment_dir(),
			strerror(errno));
		return 2;
	}

	int exec_errno;
	fflush(stdout);   /* the child must not inherit buffered output */
	pid_t pid = command_start(cmdv, dir, shim, &exec_errno);
	if (pid < 0) {
		fprintf(stderr, "leakwatch: cannot run %s: %s\n", cmdv[0], strerror(exec_errno));
		dir_remove(dir);
		return 2;
	}
	int status = command_wait(pid);

	struct lw_segref *refs = NULL;
	char err[LW_ERR_MAX];
	int n = lw_segments_list(dir, &refs, err, sizeof err);
	if (n < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		n = 0;
	}
	segments_order(refs, n, pid);

	struct lw_report_opts ro = { .older_than_ns = o.older_than_ns, .all = o.all, .format = o.format };
	size_t leaked = 0;
	if (lw_output_begin(o.output, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		free(refs);
		if (!o.keep)
			dir_remove(dir);
		return 2;
	}
	int json = o.format == LW_FMT_JSON;
	if (json) {
		fputs("{\"leakwatch\":1,\"run\":{\"argv\":[", stdout);
		for (char **a = cmdv; *a; a++) {
			if (a != cmdv)
				fputc(',', stdout);
			lw_json_string(stdout, *a);
		}
		fputs("],\"exit_status\":", stdout);
		if (WIFEXITED(status))
			printf("%d,\"signal\":null", WEXITSTATUS(status));
		else
			printf("null,\"signal\":%d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		fputs("},\"processes\":[", stdout);
	} else {
		if (WIFEXITED(status))
			printf("leakwatch: command exited with status %d\n", WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			printf("leakwatch: command killed by signal %d (%s)\n", WTERMSIG(status),
			       strsignal(WTERMSIG(status)));
		if (n == 0)
			printf("leakwatch: no segment was written (static binary, setuid, or the shim disabled itself?)\n");
	}
	int first = 1;
	size_t nerrors = 0;
	struct seg_error { char path[PATH_MAX]; char msg[LW_ERR_MAX]; } *errors =
		n ? calloc((size_t)n, sizeof *errors) : NULL;
	for (int i = 0; i < n; i++) {
		struct lw_report r;
		if (lw_report_build(&r, refs[i].path, &ro, err, sizeof err) < 0) {
			fprintf(stderr, "leakwatch: %s: %s\n", refs[i].path, err);
			if (errors) {
				memcpy(errors[nerrors].path, refs[i].path, sizeof errors[nerrors].path);
				memcpy(errors[nerrors].msg, err, sizeof errors[nerrors].msg);
				nerrors++;
			}
			continue;
		}
		/* An exec'd image's sockets either died with exec (CLOEXEC) or live on in
		 * the next image as inherited ones: counting them here would double count. */
		if (r.live != LW_LIVE_EXECED)
			leaked += r.grouping.nleaked;
		if (json) {
			if (!first)
				fputc(',', stdout);
			lw_render_json(stdout, &r);
		} else {
			printf("\n=== %s process, pid %d%s ===\n", refs[i].pid == pid ? "main" : "child",
			       r.snap.hdr.pid, refs[i].archived ? " (earlier image)" : "");
			lw_render_text(stdout, &r);
		}
		first = 0;
		lw_report_free(&r);
	}
	if (json) {
		printf("],\"leaked\":%zu,\"segment_errors\":[", leaked);
		for (size_t i = 0; i < nerrors; i++) {
			fputs(i ? ",{\"segment\":" : "{\"segment\":", stdout);
			lw_json_string(stdout, errors[i].path);
			fputs(",\"error\":", stdout);
			lw_json_string(stdout, errors[i].msg);
			fputc('}', stdout);
		}
		fputs("]}\n", stdout);
	} else {
		char d[32];
		printf("\nleakwatch: %zu socket%s left open%s%s\n", leaked, leaked == 1 ? "" : "s",
		       o.older_than_ns ? " older than " : "",
		       o.older_than_ns ? lw_duration_format(o.older_than_ns, d, sizeof d) : "");
	}
	free(errors);
	free(refs);
	int out_rc = lw_output_end(1);
	if (o.keep)
		fprintf(stderr, "leakwatch: segments kept in %s\n", dir);
	else
		dir_remove(dir);
	if (out_rc != 0)
		return 2;
	return o.fail_on_leak && leaked > 0 ? 1 : 0;
}
