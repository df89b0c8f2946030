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
 *    "leaked":N|null,                         (sockets left open: what --fail-on-leak=sockets
 *                                              looks at; null with --kind heap)
 *    "leaked_heap_blocks":N|null,             (heap blocks of class "program" still live:
 *    "leaked_heap_bytes":N|null,               what --fail-on-leak=heap looks at; null with
 *                                              --kind sockets or when no process tracked heap)
 *    "leaked_heap_estimated":bool,            (some process was sampled: heap numbers are estimates)
 *    "segment_errors":[{"segment":..,"error":..}]}
 *
 * Images replaced by execve() are shown but not counted: their sockets either
 * closed at exec or live on, inherited, in the next image, and their heap is
 * gone.  --format folded prints the folded lines of every other image, each
 * prefixed with the process name.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
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

/* --fail-on-leak[=KIND] */
enum fail_mode { FAIL_NEVER = 0, FAIL_DEFAULT, FAIL_KIND };

/* Defaults of `run`; each field is one option. */
struct run_options {
	uint64_t older_than_ns;         /* --older-than DUR: only count sockets/blocks at least this old */
	enum fail_mode fail;            /* --fail-on-leak: exit 1 when anything --kind shows
	                                   leaked; --fail-on-leak=KIND: only that kind */
	enum lw_kind fail_kind;         /* the KIND of --fail-on-leak=KIND */
	int keep;                       /* --keep: leave the segment directory behind */
	int all;                        /* --all: also show inherited sockets, system heap blocks */
	enum lw_kind kind;              /* --kind heap|sockets|all: what to report */
	enum lw_format format;          /* --format text|json|folded */
	const char *output;             /* --output FILE: the report goes there, atomically */
	const char *heap;               /* --heap off|sampled|full (default full: CI wants exact
	                                   counts; LEAKWATCH_HEAP in the environment if no option) */
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

/* The heap mode for the command: --heap, else LEAKWATCH_HEAP from the
 * environment (passed through untouched), else full. */
static const char *run_heap_mode(const struct run_options *o)
{
	if (o->heap)
		return o->heap;
	const char *env = getenv("LEAKWATCH_HEAP");
	return env && *env ? NULL : "full";
}

static int options_parse(struct run_options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "fail-on-leak", optional_argument, NULL, 'F' },
		{ "kind", required_argument, NULL, 'K' },
		{ "keep", no_argument, NULL, 'k' },
		{ "all", no_argument, NULL, 'a' },
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'O' },
		{ "heap", required_argument, NULL, 'H' },
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
		case 'F':
			if (!optarg) {
				o->fail = FAIL_DEFAULT;
			} else if (lw_kind_parse(optarg, &o->fail_kind) == 0) {
				o->fail = FAIL_KIND;
			} else {
				usage_error("unknown kind for --fail-on-leak (heap, sockets or all)", optarg);
				return -1;
			}
			break;
		case 'K':
			if (lw_kind_parse(optarg, &o->kind) < 0) {
				usage_error("unknown kind (heap, sockets or all)", optarg);
				return -1;
			}
			break;
		case 'k': o->keep = 1; break;
		case 'a': o->all = 1; break;
		case 'O': o->output = optarg; break;
		case 'H':
			if (strcmp(optarg, "off") && strcmp(optarg, "sampled") && strcmp(optarg, "full")) {
				usage_error("unknown heap mode (off, sampled or full)", optarg);
				return -1;
			}
			o->heap = optarg;
			break;
		case 'f':
			if (lw_format_parse(optarg, &o->format) < 0) {
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
	/* Failing on a kind the report hides would fail a CI job with no reason shown. */
	if (o->fail == FAIL_KIND && ((lw_kind_sockets(o->fail_kind) && !lw_kind_sockets(o->kind)) ||
				     (lw_kind_heap(o->fail_kind) && !lw_kind_heap(o->kind)))) {
		usage_error("--fail-on-leak kind is not shown by --kind", lw_kind_name(o->fail_kind));
		return -1;
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
static pid_t command_start(char **argv, const char *dir, const char *shim, const char *heap_mode,
			   int *exec_errno)
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
			/* keep_empty: the report shows the main process even when it
			 * recorded nothing, instead of "no segment was written" */
			if (setenv("LEAKWATCH_DIR", dir, 1) == 0 && setenv("LD_PRELOAD", pre, 1) == 0 &&
			    setenv("LEAKWATCH_KEEP_EMPTY", "1", 1) == 0 &&
			    (!heap_mode || setenv("LEAKWATCH_HEAP", heap_mode, 1) == 0)) {
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
		.fail = FAIL_NEVER,
		.fail_kind = LW_KIND_ALL,
		.keep = 0,
		.all = 0,
		.kind = LW_KIND_ALL,
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
	pid_t pid = command_start(cmdv, dir, shim, run_heap_mode(&o), &exec_errno);
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

	struct lw_report_opts ro = { .older_than_ns = o.older_than_ns, .all = o.all, .format = o.format,
				     .kind = o.kind };
	size_t leaked = 0;
	double heap_blocks = 0, heap_bytes = 0;
	int heap_tracked = 0, heap_estimated = 0;
	if (lw_output_begin(o.output, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		free(refs);
		if (!o.keep)
			dir_remove(dir);
		return 2;
	}
	int json = o.format == LW_FMT_JSON, folded = o.format == LW_FMT_FOLDED;
	if (folded) {
		/* nothing before the lines: the output goes straight into flamegraph.pl */
	} else if (json) {
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
		/* Children and earlier images that recorded nothing (a shell's
		 * subprocesses) would bury the report: shown with --all only. */
		if (!o.all && !(refs[i].pid == pid && !refs[i].archived) && lw_report_is_empty(&r)) {
			lw_report_free(&r);
			continue;
		}
		/* An exec'd image's sockets either died with exec (CLOEXEC) or live on in
		 * the next image as inherited ones: counting them here would double count. */
		if (r.live != LW_LIVE_EXECED) {
			leaked += r.grouping.nleaked;
			heap_blocks += r.heap.blocks[LW_HEAP_PROGRAM];
			heap_bytes += r.heap.bytes[LW_HEAP_PROGRAM];
		}
		if (r.heap.mode != LW_HEAP_OFF) {
			heap_tracked = 1;
			heap_estimated |= r.heap.estimated;
		}
		if (folded) {
			char name[64];
			if (r.live != LW_LIVE_EXECED)
				lw_render_folded(stdout, &r, lw_report_process_name(&r, name, sizeof name));
		} else if (json) {
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
	int show_socks = lw_kind_sockets(o.kind), show_heap = lw_kind_heap(o.kind);
	if (folded) {
		if (o.kind != LW_KIND_SOCKETS && !heap_tracked && n > 0)
			fprintf(stderr, "leakwatch: heap tracking was off, nothing to fold (try --kind sockets)\n");
	} else if (json) {
		fputs("],\"leaked\":", stdout);
		if (show_socks)
			printf("%zu", leaked);
		else
			fputs("null", stdout);
		if (show_heap && heap_tracked)
			printf(",\"leaked_heap_blocks\":%.0f,\"leaked_heap_bytes\":%.0f", round(heap_blocks),
			       round(heap_bytes));
		else
			fputs(",\"leaked_heap_blocks\":null,\"leaked_heap_bytes\":null", stdout);
		printf(",\"leaked_heap_estimated\":%s,\"segment_errors\":[",
		       show_heap && heap_estimated ? "true" : "false");
		for (size_t i = 0; i < nerrors; i++) {
			fputs(i ? ",{\"segment\":" : "{\"segment\":", stdout);
			lw_json_string(stdout, errors[i].path);
			fputs(",\"error\":", stdout);
			lw_json_string(stdout, errors[i].msg);
			fputc('}', stdout);
		}
		fputs("]}\n", stdout);
	} else {
		char d[32], b[32];
		const char *older = o.older_than_ns ? " older than " : "";
		const char *dur = o.older_than_ns ? lw_duration_format(o.older_than_ns, d, sizeof d) : "";
		fputc('\n', stdout);
		if (show_socks)
			printf("leakwatch: %zu socket%s left open%s%s\n", leaked, leaked == 1 ? "" : "s", older, dur);
		if (show_heap && heap_tracked)
			printf("leakwatch: %s%.0f heap block%s (%s%s) left allocated by the program%s%s\n",
			       heap_estimated ? "~" : "", round(heap_blocks), round(heap_blocks) == 1 ? "" : "s",
			       heap_estimated ? "~" : "", lw_bytes_format(heap_bytes, b, sizeof b), older, dur);
		else if (show_heap && !show_socks && n > 0)
			printf("leakwatch: heap tracking was off: no heap data\n");
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
	int fail_socks = 0, fail_heap = 0;
	/* Bare --fail-on-leak fails on every kind the report shows (--kind). */
	if (o.fail == FAIL_DEFAULT) {
		fail_socks = lw_kind_sockets(o.kind);
		fail_heap = lw_kind_heap(o.kind);
	} else if (o.fail == FAIL_KIND) {
		fail_socks = lw_kind_sockets(o.fail_kind);
		fail_heap = lw_kind_heap(o.fail_kind);
	}
	/* round(): a sampled estimate is > 0 exactly when a sample was left. */
	if ((fail_socks && leaked > 0) || (fail_heap && round(heap_blocks) > 0))
		return 1;
	return 0;
}
