/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c — `leakwatch run [options] -- CMD ARGS...`: run a command under the
 * shim in a private segment directory, then report what it left open.
 *
 * JSON output of `run` (--format json) wraps the per-segment report
 * objects: documented in docs/report-format.md, schema #/$defs/run of
 * docs/report-schema.json.
 *
 * Where the report goes.  The command's stdout and stderr are its own: the
 * report (every format) goes to stderr, to --output FILE, or to stdout with
 * --output -.  "command exited with status N" (text format) and the
 * not-traced lines always go to stderr.
 *
 * Exit status of `run` (first that applies; documented in --help):
 *   2            usage error, the command could not be started, or the
 *                report could not be written
 *   N            --fail-on-leak and something was left behind: N is
 *                --error-exitcode (default 1)
 *   3            something was not traced (fail closed): the command is
 *                statically linked or setuid, the shim was disabled
 *                (LEAKWATCH_DISABLE, segment state DISABLED) or had no room
 *                for its segment, or an image exec'd by a traced process
 *                left no segment (a static binary, LD_PRELOAD removed)
 *   else         the command's own status, 128 + signal when a signal
 *                killed it (as a shell reports it)
 *
 * A segment whose tables stopped growing (filesystem full, LEAKWATCH_BUDGET:
 * "incomplete") does not change the status by itself: it is traced, only
 * not everything fit, and the report, the summary ("leakwatch: incomplete:
 * pid N ...") and the JSON ("incomplete") say so.  What was recorded still
 * counts: --fail-on-leak fails on the leaks that fit.  (Failing closed here
 * would make a full /dev/shm fail every CI job that has no leak at all.)
 *
 * Not detected: a fork child whose segment could not be created, and a
 * child started with posix_spawn/vfork (no hook sees it) that runs a static
 * binary.  Both leave nothing behind that names them.
 *
 * Images replaced by execve() are shown but not counted: their sockets either
 * closed at exec or live on, inherited, in the next image, and their heap is
 * gone.  --format folded prints the folded lines of every other image, each
 * prefixed with the process name.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <stdatomic.h>
#include <linux/futex.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "heapgroups.h"
#include "json.h"
#include "options.h"
#include "output.h"
#include "names.h"
#include "render.h"
#include "render_sarif.h"
#include "report.h"
#include "segdir.h"
#include "present.h"
#include "reach.h"

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
	enum lw_format format;          /* --format text|json|folded|sarif */
	const char *output;             /* --output FILE: the report goes there, atomically */
	const char *junit;              /* --junit FILE: JUnit XML of the leaks, atomically */
	const char *sarif;              /* --sarif FILE: SARIF 2.1.0 of the leaks, atomically */
	int no_github;                  /* --no-github-annotations: none even with GITHUB_ACTIONS=true */
	const char *heap;               /* --heap off|sampled|full (default full: CI wants exact
	                                   counts; LEAKWATCH_HEAP in the environment if no option) */
	int error_exitcode;             /* --error-exitcode N: the status when --fail-on-leak finds
	                                   something (default 1); implies --fail-on-leak */
	int check_reachable;            /* --check-reachable[=no]: classify heap blocks at exit
	                                   (default yes) */
	unsigned leak_kinds;            /* --leak-kinds LIST: reach classes that are leaks (0: default) */
	struct lw_cli_supp supp;        /* --suppressions, --no-default-suppressions, --gen-suppressions */
};

/* How long a process waits at exit for its scan when run does not answer
 * (LEAKWATCH_REACH_WAIT): run answers at once unless it is busy scanning
 * another one, and a process gives up at once when run is gone. */
#define REACH_WAIT_MS "30000"


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

/* The heap mode for the command: --heap, else LEAKWATCH_HEAP from the
 * environment (passed through untouched), else full. */
static const char *run_heap_mode(const struct run_options *o)
{
	if (o->heap)
		return o->heap;
	const char *env = getenv("LEAKWATCH_HEAP");
	return env && *env ? NULL : "full";
}

static int fail_set(void *opts, const char *arg)
{
	struct run_options *o = opts;
	if (!arg) {
		o->fail = FAIL_DEFAULT;
		return 0;
	}
	if (lw_kind_parse(arg, &o->fail_kind) < 0)
		return -1;
	o->fail = FAIL_KIND;
	return 0;
}

static int heap_set(void *opts, const char *arg)
{
	struct run_options *o = opts;
	if (strcmp(arg, "off") && strcmp(arg, "sampled") && strcmp(arg, "full"))
		return -1;
	o->heap = arg;
	return 0;
}

static int reach_set(void *opts, const char *arg)
{
	struct run_options *o = opts;
	if (!arg || strcmp(arg, "yes") == 0)
		o->check_reachable = 1;
	else if (strcmp(arg, "no") == 0)
		o->check_reachable = 0;
	else
		return -1;
	return 0;
}

static int run_leak_kinds_set(void *opts, const char *arg)
{
	struct run_options *o = opts;
	if (lw_reach_kinds_parse(arg, &o->leak_kinds) < 0)
		return -1;
	if (!o->leak_kinds) /* "none": 0 would mean the default */
		o->leak_kinds = LW_REACH_KINDS_NONE;
	return 0;
}

static int run_supp_add(void *opts, const char *arg)
{
	return lw_cli_supp_add(&((struct run_options *)opts)->supp, arg);
}

static int run_gen_supp(void *opts, const char *arg)
{
	return lw_cli_supp_gen(&((struct run_options *)opts)->supp, arg);
}

static const struct lw_option run_options_table[] = {
	LW_OPT_KIND_(struct run_options, kind),
	LW_OPT_OLDER_THAN(struct run_options, older_than_ns),
	{ "fail-on-leak", LW_OPT_CUSTOM, LW_ARG_OPTIONAL, 0, "KIND",
	  "exit 1 (or --error-exitcode N) when anything --kind\nshows was left behind: a socket, file, pipe... made under leakwatch\n"
	  "still open, or a heap block the program allocated still\nlive at exit; --fail-on-leak=KIND: only for that kind\n"
	  "(sockets, fds, heap or all; --kind must show it: interpreters\nsuch as python3 keep memory until exit, use =sockets)",
	  0, 0, 0, "unknown kind for --fail-on-leak '*' (heap, sockets, fds or all)", fail_set },
	{ "error-exitcode", LW_OPT_INT, LW_ARG_REQUIRED, offsetof(struct run_options, error_exitcode), "N",
	  "the status for leaks found (1 to 255, default 1);\nimplies --fail-on-leak", 1, 255, 0, "bad --error-exitcode '*' (1 to 255)", NULL },
	{ "heap", LW_OPT_CUSTOM, LW_ARG_REQUIRED, 0, "MODE",
	  "heap tracking off, sampled or full (default full,\nexact; LEAKWATCH_HEAP in the environment when no option)",
	  0, 0, 0, "unknown heap mode '*' (off, sampled or full)", heap_set },
	{ "check-reachable", LW_OPT_CUSTOM, LW_ARG_OPTIONAL, 0, "yes|no",
	  "at each traced process's exit, stop it and classify its live\nheap blocks as valgrind memcheck does: definitely,\nindirectly, possibly lost, still reachable (default yes;\n--leak-kinds says which count as leaks)",
	  0, 0, 0, "bad --check-reachable '*' (yes or no)", reach_set },
	LW_OPT_LEAK_KINDS(struct run_options, run_leak_kinds_set),
	LW_OPT_SUPPRESSIONS(run_supp_add),
	LW_OPT_NO_DEFAULT_SUPPRESSIONS(struct run_options, supp.no_default),
	LW_OPT_GEN_SUPPRESSIONS(run_gen_supp),
	{ "keep", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct run_options, keep), NULL,
	  "keep the segment directory and print its path", 0, 0, 0, NULL, NULL },
	LW_OPT_ALL(struct run_options, all),
	LW_OPT_FORMAT_ALL(struct run_options, format,
			  "text (default), json, folded (each line prefixed with\nthe process name) or sarif (SARIF 2.1.0, as --sarif)"),
	{ "junit", LW_OPT_STRING, LW_ARG_REQUIRED, offsetof(struct run_options, junit), "FILE",
	  "also write the leaks as JUnit XML to FILE (GitLab, Jenkins...):\none failing testcase per leak group, naming its site and\ncarrying its stack; a passing one per kind without leaks",
	  0, 0, 0, NULL, NULL },
	{ "sarif", LW_OPT_STRING, LW_ARG_REQUIRED, offsetof(struct run_options, sarif), "FILE",
	  "also write the leaks as SARIF 2.1.0 to FILE (GitHub code\nscanning): one result per leak group at its site in the\nrepository, with its stack and a fingerprint that is the\nsame in every run",
	  0, 0, 0, NULL, NULL },
	LW_OPT_NO_GITHUB_ANNOTATIONS(struct run_options, no_github),
	LW_OPT_OUTPUT(struct run_options, output,
		      "write the report to FILE (complete or not at all) instead\nof stderr; - puts it on stdout, after the command's own output"),
};

const struct lw_command_spec lw_run_spec = { "run", LW_CMD_COMMAND, "-- CMD [ARGS...]", run_options_table,
					     sizeof run_options_table / sizeof run_options_table[0] };

/* The table, then what needs several options at once.  The command's index, or -1. */
static int options_parse(struct run_options *o, int argc, char **argv)
{
	int cmd = lw_options_parse(&lw_run_spec, o, argc, argv, NULL);
	if (cmd < 0)
		return -1;
	/* valgrind's --error-exitcode turns error detection on; so does ours. */
	if (o->error_exitcode && o->fail == FAIL_NEVER)
		o->fail = FAIL_DEFAULT;
	/* Failing on a kind the report hides would fail a CI job with no reason shown. */
	if (o->fail == FAIL_KIND && ((lw_kind_sockets(o->fail_kind) && !lw_kind_sockets(o->kind)) ||
				     (lw_kind_heap(o->fail_kind) && !lw_kind_heap(o->kind)) ||
				     (lw_kind_fds(o->fail_kind) && !lw_kind_fds(o->kind)))) {
		lw_usage_error("run", "--fail-on-leak kind is not shown by --kind '%s'", lw_kind_name(o->fail_kind));
		return -1;
	}
	if (cmd >= argc) {
		lw_usage_error("run", "missing command (usage: leakwatch run [options] -- CMD ARGS...)");
		return -1;
	}
	return cmd;
}

/* ---- fail closed: what will not be traced ------------------------------------ */

/* Something that ran without leakwatch seeing it. */
enum untraced_kind { UT_STATIC = 0, UT_SETUID, UT_NO_SEGMENT, UT_EXEC, UT_DISABLED };

static const char *const untraced_names[] = {
	[UT_STATIC] = "static", [UT_SETUID] = "setuid", [UT_NO_SEGMENT] = "no_segment",
	[UT_EXEC] = "exec", [UT_DISABLED] = "disabled",
};

struct untraced {
	enum untraced_kind kind;
	int pid;                        /* 0: not known */
	char what[PATH_MAX + LW_CMDLINE_MAX];   /* the program or command line */
	char reason[256];
};

struct untraced_list {
	struct untraced *v;
	size_t n, cap;
	size_t total;                   /* >= n: also those that found no memory to be listed */
};

static void untraced_add(struct untraced_list *l, enum untraced_kind kind, int pid, const char *what,
			 const char *reason)
{
	l->total++;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		struct untraced *nv = realloc(l->v, ncap * sizeof *nv);
		if (!nv)
			return;   /* the exit status still says "not traced" (total) */
		l->v = nv;
		l->cap = ncap;
	}
	struct untraced *u = &l->v[l->n++];
	u->kind = kind;
	u->pid = pid;
	snprintf(u->what, sizeof u->what, "%s", what);
	snprintf(u->reason, sizeof u->reason, "%s", reason);
}

/*
 * The file execvp() would run for `file`: as given when it has a '/', else
 * the first executable regular file along $PATH (glibc's default path when
 * unset).  Returns 0 with the path in out, or -1 (execvp will fail too).
 */
static int command_resolve(const char *file, char *out, size_t len)
{
	struct stat st;
	if (strchr(file, '/')) {
		snprintf(out, len, "%s", file);
		return 0;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		/* an empty element is the current directory */
		if ((size_t)snprintf(out, len, "%.*s%s%s", (int)n, n ? p : ".", "/", file) < len &&
		    stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		if (!end)
			break;
		p = end;
	}
	return -1;
}

/* 1: the ELF file has a PT_INTERP program header (dynamically linked), 0: it has none
 * (static, including static-pie), -1: not an ELF file or unreadable. */
static int elf_has_interp(int fd)
{
	unsigned char ident[EI_NIDENT];
	if (pread(fd, ident, sizeof ident, 0) != (ssize_t)sizeof ident || memcmp(ident, ELFMAG, SELFMAG) != 0)
		return -1;
	uint64_t phoff;
	unsigned phnum, phentsize;
	if (ident[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
			return -1;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
		if (phentsize < sizeof(Elf64_Phdr))
			return -1;
	} else if (ident[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;
		if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh)
			return -1;
		phoff = eh.e_phoff;
		phnum = eh.e_phnum;
		phentsize = eh.e_phentsize;
		if (phentsize < sizeof(Elf32_Phdr))
			return -1;
	} else {
		return -1;
	}
	if (phnum > 4096)
		return -1;
	for (unsigned i = 0; i < phnum; i++) {
		uint32_t type;
		/* p_type is the first 32-bit word of both layouts */
		if (pread(fd, &type, sizeof type, (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof type)
			return -1;
		if (type == PT_INTERP)
			return 1;
	}
	return 0;
}

/*
 * Before exec: will the shim be loaded into `path` at all?  A statically
 * linked program (no PT_INTERP: no dynamic loader, so no LD_PRELOAD) and a
 * set-user/group-ID one (secure execution: the shim stands down) will not.
 * "#!" scripts are judged by their interpreter, up to the kernel's 4
 * levels.  Returns 1 with the kind and the program that is at fault, 0 when
 * the image should be traced (or cannot be judged: the run will tell).
 */
static int image_untraceable(const char *path, int depth, char *who, size_t wlen, enum untraced_kind *kind)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if (((st.st_mode & S_ISUID) && st.st_uid != getuid()) || ((st.st_mode & S_ISGID) && st.st_gid != getgid())) {
		close(fd);
		snprintf(who, wlen, "%s", path);
		*kind = UT_SETUID;
		return 1;
	}
	char head[PATH_MAX + 3];
	ssize_t n = pread(fd, head, sizeof head - 1, 0);
	if (n >= 2 && head[0] == '#' && head[1] == '!') {
		close(fd);
		head[n] = '\0';
		char *p = head + 2;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t k = strcspn(p, " \t\n");
		if (k == 0 || depth >= 4)
			return 0;
		p[k] = '\0';
		return image_untraceable(p, depth + 1, who, wlen, kind);
	}
	int interp = elf_has_interp(fd);
	close(fd);
	if (interp == 0) {
		snprintf(who, wlen, "%s", path);
		*kind = UT_STATIC;
		return 1;
	}
	/* not ELF and no "#!": execvp runs it with /bin/sh, which is traced */
	return 0;
}

/* LEAKWATCH_DISABLE as the shim reads it ("1", "yes", "true"), or NULL. */
static const char *env_disable(void)
{
	const char *v = getenv("LEAKWATCH_DISABLE");
	return v && (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true")) ? v : NULL;
}

/* Why a process left no segment at all, when we can tell (dir: where it should be). */
static void no_segment_reason(const char *dir, char *buf, size_t len)
{
	struct statvfs vfs;
	char room[64] = "";
	if (env_disable()) {
		snprintf(buf, len, "LEAKWATCH_DISABLE is set in the environment");
		return;
	}
	if (statvfs(dir, &vfs) == 0) {
		char b[32];
		snprintf(room, sizeof room, " (%s free)",
			 lw_bytes_format((double)vfs.f_bavail * (double)vfs.f_frsize, b, sizeof b));
	}
	snprintf(buf, len, "the shim could not create it: no room or no write access in %s%s "
		 "(LEAKWATCH_LOG=1 says why), or LD_PRELOAD was removed", lw_segment_dir(), room);
}


/*
 * Fork and exec argv under the shim.  Returns the child's pid, or -1 with
 * *exec_errno set when it could not be started (the child reports a failed
 * execvp through a close-on-exec pipe: EOF means exec succeeded).
 */
static pid_t command_start(char **argv, const char *dir, const char *shim, const char *heap_mode, int reach,
			   int *exec_errno)
{
	char self[24];
	snprintf(self, sizeof self, "%d", (int)getpid());
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
			    (!heap_mode || setenv("LEAKWATCH_HEAP", heap_mode, 1) == 0) &&
			    (reach ? setenv("LEAKWATCH_REACH_WAIT", REACH_WAIT_MS, 1) == 0 &&
					     setenv("LEAKWATCH_RUN_PID", self, 1) == 0
				   : unsetenv("LEAKWATCH_REACH_WAIT") == 0)) {
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

/* ---- reachability at exit: the other side of segment_reach_rendezvous() ---- */

/* What the scans found, per process image, and what failed. */
struct reach_set {
	struct lw_reach_result *v;
	size_t n, cap;
	size_t failed;
	char first_err[LW_ERR_MAX + 64];
	int main_reaped, main_status;   /* a scan reaped the main command (it died while stopped) */
};

static const struct lw_reach_result *reach_find(const struct reach_set *rs, const struct lw_snapshot *s)
{
	for (size_t i = 0; rs && i < rs->n; i++)
		if (rs->v[i].pid == s->hdr.pid && rs->v[i].image_ns == s->hdr.start_monotonic_ns)
			return &rs->v[i];
	return NULL;
}

/* A segment that may be waiting: scan it and answer. */
static void reach_serve(struct reach_set *rs, const char *dir, const char *name, pid_t main_pid)
{
	if (strncmp(name, LW_SEGMENT_PREFIX, strlen(LW_SEGMENT_PREFIX)) != 0)
		return;
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return;
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_size < LW_HEADER_SIZE) {
		close(fd);
		return;
	}
	struct lw_header *h = mmap(NULL, LW_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED)
		return;
	if (h->magic == LW_MAGIC && h->version >= 2 &&
	    atomic_load_explicit(&h->reach_req, memory_order_acquire) == LW_REACH_REQ_WAITING &&
	    atomic_load_explicit(&h->reach_ack, memory_order_acquire) == LW_REACH_ACK_NONE) {
		atomic_store_explicit(&h->reach_ack, LW_REACH_ACK_SCANNING, memory_order_release);
		pid_t pid = h->pid;
		struct lw_reach_result res;
		char err[LW_ERR_MAX];
		int reaped = 0, status = 0;
		uint32_t ack = LW_REACH_ACK_FAILED;
		if (rs->n == rs->cap) {
			size_t ncap = rs->cap ? rs->cap * 2 : 16;
			struct lw_reach_result *nv = realloc(rs->v, ncap * sizeof *nv);
			if (nv) {
				rs->v = nv;
				rs->cap = ncap;
			}
		}
		if (rs->n == rs->cap) {
			snprintf(err, sizeof err, "not enough memory");
		} else if (lw_reach_check(pid, path, &res, &reaped, &status, err, sizeof err) == 0) {
			rs->v[rs->n++] = res;
			ack = LW_REACH_ACK_DONE;
		}
		if (ack != LW_REACH_ACK_DONE && rs->failed++ == 0)
			snprintf(rs->first_err, sizeof rs->first_err, "pid %d: %s", (int)pid, err);
		if (reaped && pid == main_pid) {
			rs->main_reaped = 1;
			rs->main_status = status;
		}
		atomic_store_explicit(&h->reach_ack, ack, memory_order_release);
		(void)syscall(SYS_futex, &h->reach_ack, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
	}
	munmap(h, LW_HEADER_SIZE);
}

/* Every segment of the directory: for requests whose event was lost. */
static void reach_sweep(struct reach_set *rs, const char *dir, pid_t main_pid)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		reach_serve(rs, dir, e->d_name, main_pid);
	closedir(d);
}

/*
 * command_wait, answering scan requests meanwhile: the shim of an exiting
 * process touches its segment (IN_ATTRIB on the watched directory) and
 * waits; the command's own end is seen through a pidfd (or, before Linux
 * 5.3, by polling waitpid).
 */
static int command_wait_serving(pid_t pid, int ifd, const char *dir, struct reach_set *rs)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int status = 0;
	union {
		struct inotify_event ev;
		char buf[16384];
	} u;
	for (;;) {
		struct pollfd p[2] = { { .fd = ifd, .events = POLLIN }, { .fd = pfd, .events = POLLIN } };
		int r = poll(p, pfd >= 0 ? 2 : 1, pfd >= 0 ? 1000 : 20);
		if (r > 0 && (p[0].revents & POLLIN)) {
			ssize_t len;
			while ((len = read(ifd, u.buf, sizeof u.buf)) > 0) {
				for (char *q = u.buf; q < u.buf + len;) {
					struct inotify_event *ev = (struct inotify_event *)(void *)q;
					if (ev->mask & IN_Q_OVERFLOW)
						reach_sweep(rs, dir, pid);
					else if (ev->len)
						reach_serve(rs, dir, ev->name, pid);
					q += sizeof *ev + ev->len;
				}
			}
		} else if (r == 0 && pfd >= 0) {
			reach_sweep(rs, dir, pid);
		}
		if (rs->main_reaped) {
			status = rs->main_status;
			break;
		}
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = 0;
			break;
		}
	}
	if (pfd >= 0)
		close(pfd);
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

/* The process name of a segment for a not-traced line: its command line, else its exe. */
static const char *snap_what(const struct lw_snapshot *s)
{
	return s->hdr.cmdline[0] ? s->hdr.cmdline : s->hdr.exe;
}

/*
 * After the run: every image that should have left a segment and did not.
 * The main command must have one; a segment left in state EXECED under its
 * live name (an exec'd image archives it when it starts its own) means the
 * new image never started the shim; DISABLED means the shim stood down.
 */
static void untraced_after_run(struct untraced_list *l, const struct lw_segref *refs, int n, pid_t pid,
			       char **cmdv, const char *pre_who, enum untraced_kind pre_kind, const char *dir)
{
	int main_seen = 0;
	char err[LW_ERR_MAX];
	for (int i = 0; i < n; i++) {
		main_seen |= refs[i].pid == pid;
		struct lw_snapshot s;
		/* the state is all this needs: the tables are read once, by the report */
		if (lw_snapshot_open_flags(&s, refs[i].path, LW_SNAP_HEADER_ONLY, err, sizeof err) < 0) {
			lw_snapshot_free(&s);
			continue;   /* reported as a segment error */
		}
		if (s.state == LW_STATE_DISABLED)
			untraced_add(l, UT_DISABLED, s.hdr.pid, snap_what(&s),
				     s.hdr.disable_reason ? strerror((int)s.hdr.disable_reason) : "");
		else if (s.state == LW_STATE_EXECED && !refs[i].archived)
			untraced_add(l, UT_EXEC, s.hdr.pid, snap_what(&s),
				     "statically linked, set-user-ID, or LD_PRELOAD removed");
		lw_snapshot_free(&s);
	}
	if (main_seen)
		return;
	if (pre_who) {
		untraced_add(l, pre_kind, 0, pre_who, pre_kind == UT_STATIC ? "statically linked" : "set-user/group-ID");
		return;
	}
	char what[PATH_MAX + LW_CMDLINE_MAX];
	size_t k = 0;
	what[0] = '\0';
	for (char **a = cmdv; *a && k + 1 < sizeof what; a++)
		k += (size_t)snprintf(what + k, sizeof what - k, "%s%s", a == cmdv ? "" : " ", *a);
	char why[256];
	no_segment_reason(dir, why, sizeof why);
	untraced_add(l, UT_NO_SEGMENT, pid, what, why);
}

/* One line per image on stderr, e.g. "leakwatch: /bin/x is statically linked: not traced". */
static void untraced_print(FILE *out, const struct untraced_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct untraced *u = &l->v[i];
		fputs("leakwatch: ", out);
		switch (u->kind) {
		case UT_STATIC:
		case UT_SETUID:
			lw_present_put_safe(out, u->what);
			fputs(u->kind == UT_STATIC ? " is statically linked"
						   : " is set-user/group-ID (the shim stands down in secure execution)",
			      out);
			break;
		case UT_NO_SEGMENT:
			fprintf(out, "no segment for pid %d (", u->pid);
			lw_present_put_safe(out, u->what);
			fprintf(out, "): %s", u->reason);
			break;
		case UT_EXEC:
			fprintf(out, "pid %d (", u->pid);
			lw_present_put_safe(out, u->what);
			fprintf(out, ") called exec and the new program left no segment (%s)", u->reason);
			break;
		case UT_DISABLED:
			fprintf(out, "pid %d (", u->pid);
			lw_present_put_safe(out, u->what);
			fprintf(out, "): the shim disabled itself%s%s", u->reason[0] ? ": " : "", u->reason);
			break;
		}
		fputs(": not traced\n", out);
	}
}

static void untraced_json(struct lw_json *j, const struct untraced_list *l)
{
	lw_json_begin_array(j, "not_traced");
	for (size_t i = 0; i < l->n; i++) {
		const struct untraced *u = &l->v[i];
		lw_json_begin_object(j, NULL);
		lw_json_str(j, "kind", untraced_names[u->kind]);
		if (u->pid > 0)
			lw_json_int(j, "pid", u->pid);
		else
			lw_json_null(j, "pid");
		lw_json_str(j, "command", u->what);
		lw_json_str(j, "reason", u->reason);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
}

/* The command's status as a shell shows it: its exit code, 128 + the signal that killed it. */
static int command_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return LW_EXIT_ERROR;
}

/* ---- --junit FILE, --sarif FILE --------------------------------------------------- */

/* Before the command runs: FILE's directory takes a new file, FILE is none of ours to refuse. */
static int artifact_check(const char *opt, const char *path)
{
	char d[PATH_MAX];
	struct stat st;
	snprintf(d, sizeof d, "%s", path);
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "leakwatch: %s %s: not a regular file\n", opt, path);
		return -1;
	}
	if (access(dirname(d), W_OK) != 0) {
		fprintf(stderr, "leakwatch: %s %s: cannot write there: %s\n", opt, path, strerror(errno));
		return -1;
	}
	return 0;
}

static int junit_check(const char *path)
{
	return artifact_check("--junit", path);
}

/* The SARIF document, complete or not at all (NULL: it could not be made). */
static int sarif_write(const char *path, const char *doc, size_t len)
{
	char tmp[PATH_MAX + 16];
	if (!doc) {
		fprintf(stderr, "leakwatch: --sarif %s: out of memory\n", path);
		return -1;
	}
	snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "leakwatch: --sarif %s: %s\n", path, strerror(errno));
		return -1;
	}
	fchmod(fd, 0644);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, doc + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "leakwatch: --sarif %s: %s\n", path, w < 0 ? strerror(errno) : "short write");
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "leakwatch: --sarif %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The XML, complete or not at all: a temporary file beside FILE, renamed over it. */
static int junit_write(const char *path, const char *suites, size_t tests, size_t failures)
{
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
	int fd = mkstemp(tmp);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "leakwatch: --junit %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd), unlink(tmp);
		return -1;
	}
	fchmod(fd, 0644);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"leakwatch\" tests=\"%zu\" failures=\"%zu\">\n%s</testsuites>\n",
		tests, failures, suites ? suites : "");
	if (fflush(f) != 0 || ferror(f) || fsync(fd) != 0) {
		fprintf(stderr, "leakwatch: --junit %s: %s\n", path, strerror(errno));
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "leakwatch: --junit %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ---- what the suppressions took, over every process of the run ---- */

struct supp_uses {
	struct lw_supp_use *v;
	size_t n, cap;
};

/* Add what r's suppressions took (the user's; the built-in set's with --all). */
static void supp_uses_add(struct supp_uses *su, const struct lw_report *r)
{
	struct lw_supp_use u[64];
	size_t n = lw_present_supp_uses(r, r->opts.all, u, sizeof u / sizeof u[0]);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < su->n && su->v[k].e != u[i].e)
			k++;
		if (k == su->n) {
			if (su->n == su->cap) {
				size_t nc = su->cap ? su->cap * 2 : 16;
				struct lw_supp_use *nv = realloc(su->v, nc * sizeof *nv);
				if (!nv)
					return; /* a count line less, never a wrong one */
				su->v = nv;
				su->cap = nc;
			}
			memset(&su->v[su->n], 0, sizeof su->v[su->n]);
			su->v[su->n++].e = u[i].e;
		}
		su->v[k].sockets += u[i].sockets;
		su->v[k].fds += u[i].fds;
		su->v[k].blocks += u[i].blocks;
		su->v[k].bytes += u[i].bytes;
	}
}

/* "leakwatch: suppressed 2 sockets, 10 heap blocks (640 B) by 'name' (file:line)" */
static void supp_uses_text(FILE *out, const struct supp_uses *su, int estimated)
{
	for (size_t i = 0; i < su->n; i++) {
		const struct lw_supp_use *u = &su->v[i];
		char b[32];
		int first = 1;
		fputs("leakwatch: suppressed ", out);
		if (u->sockets) {
			fprintf(out, "%zu socket%s", u->sockets, u->sockets == 1 ? "" : "s");
			first = 0;
		}
		if (u->fds) {
			fprintf(out, "%s%zu other descriptor%s", first ? "" : ", ", u->fds, u->fds == 1 ? "" : "s");
			first = 0;
		}
		if (u->blocks > 0)
			fprintf(out, "%s%s%.0f heap block%s (%s%s)", first ? "" : ", ", estimated ? "~" : "",
				round(u->blocks), round(u->blocks) == 1 ? "" : "s", estimated ? "~" : "",
				lw_bytes_format(u->bytes, b, sizeof b));
		fputs(" by '", out);
		lw_present_put_safe(out, u->e->name);
		fputs("' (", out);
		lw_present_put_safe(out, u->e->file);
		fprintf(out, ":%d)\n", u->e->line);
	}
}

static void supp_uses_json(struct lw_json *j, const struct supp_uses *su)
{
	lw_json_begin_array(j, "suppressions");
	for (size_t i = 0; i < su->n; i++) {
		const struct lw_supp_use *u = &su->v[i];
		lw_json_begin_object(j, NULL);
		lw_json_str(j, "name", u->e->name);
		lw_json_str(j, "file", u->e->file);
		lw_json_int(j, "line", u->e->line);
		lw_json_bool(j, "default", lw_supp_is_default(u->e));
		lw_json_uint(j, "sockets", u->sockets);
		lw_json_uint(j, "fds", u->fds);
		lw_json_count(j, "blocks", u->blocks);
		lw_json_count(j, "bytes", u->bytes);
		lw_json_end_object(j);
	}
	lw_json_end_array(j);
}

/* The suppressions of this run: loaded before the command starts (a bad
 * file is found before a long test run, not after), freed by lw_run_main. */
static struct lw_supp_set *run_supp;

static int run_main(int argc, char **argv);

int lw_run_main(int argc, char **argv)
{
	int rc = run_main(argc, argv);
	lw_supp_set_free(run_supp);
	run_supp = NULL;
	return rc;
}

static int run_main(int argc, char **argv)
{
	struct run_options o = {
		.older_than_ns = 0,
		.fail = FAIL_NEVER,
		.fail_kind = LW_KIND_ALL,
		.keep = 0,
		.all = 0,
		.kind = LW_KIND_ALL,
		.format = LW_FMT_TEXT,
		.error_exitcode = 0,
		.check_reachable = 1,
	};
	int cmd = options_parse(&o, argc, argv);
	if (cmd < 0)
		return LW_EXIT_ERROR;
	if (!(run_supp = lw_cli_supp_load(&o.supp)))
		return LW_EXIT_ERROR;
	char **cmdv = argv + cmd;
	/* "-": the report on stdout, asked for (mixed with the command's own output) */
	int to_stdout = o.output && strcmp(o.output, "-") == 0;
	const char *out_file = o.output && !to_stdout ? o.output : NULL;

	if (o.junit && junit_check(o.junit) != 0)
		return LW_EXIT_ERROR;
	if (o.sarif && artifact_check("--sarif", o.sarif) != 0)
		return LW_EXIT_ERROR;
	if (out_file) {
		/* find out now, not after a long test run, that the report has nowhere to go */
		char d[PATH_MAX];
		struct stat ost;
		snprintf(d, sizeof d, "%s", out_file);
		/* a device or FIFO is written in place (output.c): its directory
		 * need not be writable, the file itself must */
		int in_place = stat(out_file, &ost) == 0 && !S_ISREG(ost.st_mode) && !S_ISDIR(ost.st_mode);
		if (access(in_place ? out_file : dirname(d), W_OK) != 0) {
			fprintf(stderr, "leakwatch: cannot write %s: %s\n", out_file, strerror(errno));
			return LW_EXIT_ERROR;
		}
	}
	char shim[PATH_MAX];
	if (lw_shim_find(shim, sizeof shim) < 0) {
		fprintf(stderr, "leakwatch: cannot find " SHIM_NAME " (set LEAKWATCH_SHIM)\n");
		return LW_EXIT_ERROR;
	}
	/* Judged before exec, reported after the run with the rest. */
	char pre_who[PATH_MAX], resolved[PATH_MAX];
	enum untraced_kind pre_kind = UT_STATIC;
	int pre_untraceable = command_resolve(cmdv[0], resolved, sizeof resolved) == 0 &&
			      image_untraceable(resolved, 0, pre_who, sizeof pre_who, &pre_kind);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/leakwatch-run.XXXXXX", lw_segment_dir());
	if (!mkdtemp(dir)) {
		fprintf(stderr, "leakwatch: cannot create a directory in %s: %s\n", lw_segment_dir(),
			strerror(errno));
		return LW_EXIT_ERROR;
	}

	/* the watch exists before the command: no request can come too early */
	struct reach_set rs = { 0 };
	int ifd = -1;
	const char *heap_mode = run_heap_mode(&o);
	if (o.check_reachable && lw_kind_heap(o.kind) && !(heap_mode && strcmp(heap_mode, "off") == 0)) {
		ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (ifd >= 0 && inotify_add_watch(ifd, dir, IN_ATTRIB) < 0) {
			close(ifd);
			ifd = -1;
		}
		if (ifd < 0)
			snprintf(rs.first_err, sizeof rs.first_err, "cannot watch the segment directory: %s", strerror(errno));
	}
	int exec_errno;
	fflush(stdout);   /* the child must not inherit buffered output */
	fflush(stderr);
	pid_t pid = command_start(cmdv, dir, shim, heap_mode, ifd >= 0, &exec_errno);
	if (pid < 0) {
		fprintf(stderr, "leakwatch: cannot run %s: %s\n", cmdv[0], strerror(exec_errno));
		if (ifd >= 0)
			close(ifd);
		dir_remove(dir);
		return LW_EXIT_ERROR;
	}
	int status = ifd >= 0 ? command_wait_serving(pid, ifd, dir, &rs) : command_wait(pid);
	if (ifd >= 0)
		close(ifd);
	if (rs.failed || (o.check_reachable && ifd < 0 && rs.first_err[0]))
		fprintf(stderr, "leakwatch: reachability not checked for %zu process%s (%s): their live heap blocks all count\n",
			rs.failed ? rs.failed : 1, rs.failed > 1 ? "es" : "", rs.first_err);

	struct lw_segref *refs = NULL;
	char err[LW_ERR_MAX];
	int n = lw_segments_list(dir, &refs, err, sizeof err);
	if (n < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		n = 0;
	}
	segments_order(refs, n, pid);
	struct untraced_list untraced = { 0 };
	untraced_after_run(&untraced, refs, n, pid, cmdv, pre_untraceable ? pre_who : NULL, pre_kind, dir);

	struct lw_report_opts ro = { .older_than_ns = o.older_than_ns, .all = o.all, .format = o.format,
				     .kind = o.kind, .leak_kinds = o.leak_kinds, .supp = run_supp,
				     .gen_supp = (enum lw_gen_supp)o.supp.gen };
	struct supp_uses su = { 0 };
	char *junit_buf = NULL;
	size_t junit_len = 0, junit_tests = 0, junit_failures = 0;
	FILE *junit = o.junit ? open_memstream(&junit_buf, &junit_len) : NULL;
	size_t leaked = 0, leaked_fds = 0; /* sockets; other descriptors */
	size_t gc_socks = 0, gc_fds = 0;   /* of those, closed by Python's garbage collector */
	double heap_blocks = 0, heap_bytes = 0;
	size_t heap_samples = 0;        /* table entries behind heap_blocks (sampled mode) */
	int heap_tracked = 0, heap_estimated = 0, heap_checked = 0;
	int json = o.format == LW_FMT_JSON, folded = o.format == LW_FMT_FOLDED, sarif = o.format == LW_FMT_SARIF;
	/* The status line belongs to the text report's reader, on stderr whatever --output says. */
	if (!json && !folded && !sarif) {
		if (WIFEXITED(status))
			fprintf(stderr, "leakwatch: command exited with status %d\n", WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			fprintf(stderr, "leakwatch: command killed by signal %d (%s)\n", WTERMSIG(status),
				strsignal(WTERMSIG(status)));
	}
	if (lw_output_begin(out_file, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		free(refs);
		free(untraced.v);
		if (!o.keep)
			dir_remove(dir);
		return LW_EXIT_ERROR;
	}
	/* --sarif FILE and GitHub's annotations: collected per process, written at the end */
	char *sarif_buf = NULL, *gh_buf = NULL;
	size_t sarif_len = 0, gh_len = 0;
	FILE *sarif_f = o.sarif ? open_memstream(&sarif_buf, &sarif_len) : NULL;
	FILE *gh = !o.no_github && lw_github_wanted() ? open_memstream(&gh_buf, &gh_len) : NULL;
	struct lw_sarif sarif_doc, sarif_file;
	if (sarif_f)
		lw_sarif_begin(&sarif_file, sarif_f, LW_VERSION_STRING, 1);
	/* stderr is unbuffered: a fully buffered stream on a copy of fd 2 writes the report
	 * in few large writes (and the not-traced lines after it, in order). */
	FILE *out = stdout, *errdup = NULL;
	if (!out_file && !to_stdout) {
		int fd2 = dup(STDERR_FILENO);
		errdup = fd2 >= 0 ? fdopen(fd2, "w") : NULL;
		if (!errdup && fd2 >= 0)
			close(fd2);
		out = errdup ? errdup : stderr;
	}
	struct lw_json j;
	lw_json_init(&j, out);
	if (folded) {
		/* nothing before the lines: the output goes straight into flamegraph.pl */
	} else if (sarif) {
		lw_sarif_begin(&sarif_doc, out, LW_VERSION_STRING, 1);
	} else if (json) {
		lw_json_begin_object(&j, NULL);
		lw_json_int(&j, "leakwatch", 1);
		lw_json_begin_object(&j, "run");
		lw_json_begin_array(&j, "argv");
		for (char **a = cmdv; *a; a++)
			lw_json_str(&j, NULL, *a);
		lw_json_end_array(&j);
		if (WIFEXITED(status)) {
			lw_json_int(&j, "exit_status", WEXITSTATUS(status));
			lw_json_null(&j, "signal");
		} else {
			lw_json_null(&j, "exit_status");
			lw_json_int(&j, "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		}
		lw_json_end_object(&j);
		lw_json_begin_array(&j, "processes");
	}
	size_t nerrors = 0;
	struct seg_error { char path[PATH_MAX]; char msg[LW_ERR_MAX]; } *errors =
		n ? calloc((size_t)n, sizeof *errors) : NULL;
	/* "incomplete: pid N (cmd): ..." for the summary: tables that stopped growing */
	char *inc_notes = NULL;
	size_t inc_len = 0;
	int any_incomplete = 0;
	FILE *inc = json || folded || sarif ? NULL : open_memstream(&inc_notes, &inc_len);
	for (int i = 0; i < n; i++) {
		struct lw_report r;
		ro.reach = NULL;
		if (rs.n) { /* which image a segment holds: from its header */
			struct lw_snapshot hs;
			char e2[LW_ERR_MAX];
			if (lw_snapshot_open_flags(&hs, refs[i].path, LW_SNAP_HEADER_ONLY, e2, sizeof e2) == 0) {
				ro.reach = reach_find(&rs, &hs);
				lw_snapshot_free(&hs);
			}
		}
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
		 * subprocesses) would bury the report: shown with --all only.  One
		 * that recorded nothing because its tables could not grow is shown. */
		int incomplete = lw_snapshot_is_incomplete(&r.snap);
		if (!o.all && !(refs[i].pid == pid && !refs[i].archived) && lw_report_is_empty(&r) && !incomplete) {
			lw_report_free(&r);
			continue;
		}
		any_incomplete |= incomplete;
		char line[256];
		if (inc && lw_present_incomplete(&r.snap, line, sizeof line)) {
			fprintf(inc, "leakwatch: incomplete: pid %d (", r.snap.hdr.pid);
			lw_present_put_safe(inc, lw_present_command(&r.snap));
			fprintf(inc, "): %s\n", line);
		}
		/* An exec'd image's sockets either died with exec (CLOEXEC) or live on in
		 * the next image as inherited ones: counting them here would double count. */
		if (r.live != LW_LIVE_EXECED) {
			/* what a Python program dropped is a leak its collector cleaned up */
			leaked += r.grouping.nleaked + r.gc_sockets;
			leaked_fds += r.fds.nleaked + r.gc_fds;
			gc_socks += r.gc_sockets;
			gc_fds += r.gc_fds;
			heap_blocks += r.heap.leaked_blocks;
			heap_bytes += r.heap.leaked_bytes;
			for (size_t k = 0; k < r.heap.ngroups; k++)
				if (lw_heap_group_is_leak(&r.heap, &r.heap.groups[k]))
					heap_samples += r.heap.groups[k].samples;
			supp_uses_add(&su, &r);
			if (junit)
				lw_render_junit_suite(junit, &r, &junit_tests, &junit_failures);
			if (sarif_f)
				lw_sarif_add(&sarif_file, &r);
			if (gh)
				lw_github_annotations(gh, &r, 1);
		}
		if (r.heap.mode != LW_HEAP_OFF) {
			heap_tracked = 1;
			heap_estimated |= r.heap.estimated;
			heap_checked |= r.heap.reach_checked && r.live != LW_LIVE_EXECED;
		}
		if (folded) {
			char name[64];
			if (r.live != LW_LIVE_EXECED)
				lw_render_folded(out, &r, lw_report_process_name(&r, name, sizeof name));
		} else if (sarif) {
			lw_sarif_add(&sarif_doc, &r);
		} else if (json) {
			lw_render_json_value(&j, NULL, &r);
		} else {
			fprintf(out, "\n=== %s process, pid %d%s ===\n", refs[i].pid == pid ? "main" : "child",
				r.snap.hdr.pid, refs[i].archived ? " (earlier image)" : "");
			lw_render_text(out, &r);
		}
		lw_report_free(&r);
	}
	int show_socks = lw_kind_sockets(o.kind), show_heap = lw_kind_heap(o.kind), show_fds = lw_kind_fds(o.kind);
	if (sarif || sarif_f) {
		/* the invocation: what was not traced or not read makes it unsuccessful */
		char *notes = NULL;
		size_t notes_len = 0;
		FILE *nf = open_memstream(&notes, &notes_len);
		if (nf) {
			untraced_print(nf, &untraced);
			for (size_t i = 0; i < nerrors; i++)
				fprintf(nf, "leakwatch: %s: %s\n", errors[i].path, errors[i].msg);
			if (fclose(nf) != 0)
				notes = NULL;
		}
		struct lw_sarif_invocation inv = {
			.argv = cmdv, .exited = WIFEXITED(status), .exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 0,
			.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0,
			.successful = untraced.total == 0 && nerrors == 0,
			.notes = notes,
		};
		if (sarif)
			lw_sarif_end(&sarif_doc, &inv);
		if (sarif_f)
			lw_sarif_end(&sarif_file, &inv);
		free(notes);
	}
	if (sarif) {
		/* the document is complete: nothing after it */
	} else if (folded) {
		if (lw_kind_heap(o.kind) && !heap_tracked && n > 0)
			fprintf(stderr, "leakwatch: heap tracking was off, nothing to fold (try --kind sockets)\n");
	} else if (json) {
		lw_json_end_array(&j);
		if (show_socks)
			lw_json_uint(&j, "leaked", leaked);
		else
			lw_json_null(&j, "leaked");
		if (show_fds)
			lw_json_uint(&j, "leaked_fds", leaked_fds);
		else
			lw_json_null(&j, "leaked_fds");
		if (show_heap && heap_tracked) {
			lw_json_count(&j, "leaked_heap_blocks", heap_blocks);
			lw_json_count(&j, "leaked_heap_bytes", heap_bytes);
		} else {
			lw_json_null(&j, "leaked_heap_blocks");
			lw_json_null(&j, "leaked_heap_bytes");
		}
		lw_json_bool(&j, "leaked_heap_estimated", show_heap && heap_estimated);
		lw_json_begin_array(&j, "segment_errors");
		for (size_t i = 0; i < nerrors; i++) {
			lw_json_begin_object(&j, NULL);
			lw_json_str(&j, "segment", errors[i].path);
			lw_json_str(&j, "error", errors[i].msg);
			lw_json_end_object(&j);
		}
		lw_json_end_array(&j);
		untraced_json(&j, &untraced);
		supp_uses_json(&j, &su);
		lw_json_bool(&j, "incomplete", any_incomplete);
		lw_json_end_object(&j);
		fputc('\n', out);
	} else {
		char d[32], b[32];
		const char *older = o.older_than_ns ? " older than " : "";
		const char *dur = o.older_than_ns ? lw_duration_format(o.older_than_ns, d, sizeof d) : "";
		fputc('\n', out);
		if (show_socks)
			fprintf(out, "leakwatch: %zu socket%s left open%s%s%s\n", leaked, leaked == 1 ? "" : "s", older,
				dur, untraced.total ? " by the traced processes" : "");
		if (show_socks && gc_socks)
			fprintf(out, "leakwatch: of those, %zu dropped without a close (the garbage collector closed %s)\n",
				gc_socks, gc_socks == 1 ? "it" : "them");
		/* only when there are some: a sockets-only run reads as it always did */
		if (show_fds && (leaked_fds || !show_socks))
			fprintf(out, "leakwatch: %zu other descriptor%s (files, pipes, ...) left open%s%s\n", leaked_fds,
				leaked_fds == 1 ? "" : "s", older, dur);
		if (show_fds && gc_fds)
			fprintf(out, "leakwatch: of those, %zu dropped without a close (the garbage collector closed %s)\n",
				gc_fds, gc_fds == 1 ? "it" : "them");
		char est[48] = "";
		if (heap_estimated && heap_samples > 0 && heap_samples < LW_HEAP_FEW_SAMPLES)
			snprintf(est, sizeof est, " (est. from %zu sample%s)", heap_samples, heap_samples == 1 ? "" : "s");
		/* with a reachability check, what is counted is what --leak-kinds names */
		char kinds[96] = "";
		if (heap_checked) {
			unsigned m = o.leak_kinds ? o.leak_kinds : LW_REACH_KINDS_DEFAULT;
			size_t k = (size_t)snprintf(kinds, sizeof kinds, ", lost (");
			int first = 1;
			for (int c = LW_REACH_DEFINITE; c < LW_REACH_NCLASS; c++)
				if (m & LW_REACH_BIT(c)) {
					k += (size_t)snprintf(kinds + k, sizeof kinds - k, "%s%s", first ? "" : ", ",
							      lw_reach_name((enum lw_reach)c));
					first = 0;
				}
			if (first)
				snprintf(kinds, sizeof kinds, " (--leak-kinds none: none counted)");
			else
				snprintf(kinds + k, sizeof kinds - k, ")");
		}
		if (show_heap && heap_tracked)
			fprintf(out, "leakwatch: %s%.0f heap block%s (%s%s)%s left allocated by the program%s%s%s\n",
				heap_estimated ? "~" : "", round(heap_blocks), round(heap_blocks) == 1 ? "" : "s",
				heap_estimated ? "~" : "", lw_bytes_format(heap_bytes, b, sizeof b), est, older, dur,
				kinds);
		else if (show_heap && !show_socks && n > 0)
			fprintf(out, "leakwatch: heap tracking was off: no heap data\n");
		supp_uses_text(out, &su, heap_estimated);
	}
	free(su.v);
	int junit_rc = 0;
	if (o.junit) {
		if (!junit || fclose(junit) != 0)
			junit_buf = NULL;
		junit_rc = junit_write(o.junit, junit_buf, junit_tests, junit_failures);
		free(junit_buf);
	}
	int sarif_rc = 0;
	if (o.sarif) {
		if (!sarif_f || fclose(sarif_f) != 0)
			sarif_buf = NULL;
		sarif_rc = sarif_write(o.sarif, sarif_buf, sarif_len);
		free(sarif_buf);
	}
	if (inc) {
		fclose(inc);
		if (inc_len)
			fputs(inc_notes, out);
		free(inc_notes);
	}
	free(errors);
	free(refs);
	for (size_t i = 0; i < rs.n; i++)
		lw_reach_free(&rs.v[i]);
	free(rs.v);
	int out_rc = 0;
	if (errdup) {
		if (fflush(errdup) != 0 || ferror(errdup))
			out_rc = -1;
		fclose(errdup);
	} else if (to_stdout && (fflush(stdout) != 0 || ferror(stdout))) {
		fprintf(stderr, "leakwatch: write error on stdout: %s\n", strerror(errno));
		out_rc = -1;
	}
	if (lw_output_end(1) != 0)
		out_rc = -1;
	if (gh) {
		/* after the command and the report, on leakwatch's own stdout; when
		 * that carries a machine-readable report (--output -), on stderr */
		FILE *to = to_stdout && o.format != LW_FMT_TEXT ? stderr : stdout;
		if (fclose(gh) == 0 && gh_buf)
			fputs(gh_buf, to);
		fflush(to);
		free(gh_buf);
	}
	untraced_print(stderr, &untraced);
	size_t nuntraced = untraced.total;
	free(untraced.v);
	if (o.keep)
		fprintf(stderr, "leakwatch: segments kept in %s\n", dir);
	else
		dir_remove(dir);
	if (out_rc != 0 || junit_rc != 0 || sarif_rc != 0)
		return LW_EXIT_ERROR;
	int fail_socks = 0, fail_heap = 0, fail_fds = 0;
	/* Bare --fail-on-leak fails on every kind the report shows (--kind). */
	if (o.fail == FAIL_DEFAULT) {
		fail_socks = lw_kind_sockets(o.kind);
		fail_heap = lw_kind_heap(o.kind);
		fail_fds = lw_kind_fds(o.kind);
	} else if (o.fail == FAIL_KIND) {
		fail_socks = lw_kind_sockets(o.fail_kind);
		fail_heap = lw_kind_heap(o.fail_kind);
		fail_fds = lw_kind_fds(o.fail_kind);
	}
	/* round(): a sampled estimate is > 0 exactly when a sample was left. */
	if ((fail_socks && leaked > 0) || (fail_fds && leaked_fds > 0) || (fail_heap && round(heap_blocks) > 0))
		return o.error_exitcode ? o.error_exitcode : LW_EXIT_LEAK;
	/* Fail closed: "0 sockets left open" means nothing when nothing was looked at. */
	if (nuntraced > 0)
		return LW_EXIT_UNTRACED;
	return command_exit_code(status);
}
