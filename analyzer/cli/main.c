/* SPDX-License-Identifier: MIT */
/*
 * main.c — the `leakwatch` command line: dispatch to one file per command
 * (cmd_ps.c, cmd_clean.c, cmd_report.c, cmd_diff.c, cmd_run.c, cmd_top.c) and --help,
 * whose synopsis and options are generated from the commands' option tables.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "manpage.h"
#include "options.h"
#include "leakwatch/segment.h"

#ifndef LW_DATADIR
#define LW_DATADIR "/usr/local/share/leakwatch"
#endif

static const char help_intro[] =
	"Find sockets and heap memory a program never released, and where it got them.\n"
	"Programs are traced by preloading libleakwatch.so, which records every open\n"
	"socket (and, when heap tracking is on, every live heap block) with its call\n"
	"stack in $LEAKWATCH_DIR/leakwatch.<pid> (default /dev/shm).\n"
	"\n"
	"commands:\n"
	"  clean               remove segments of processes that are gone (exited, exec'd,\n"
	"                      killed); never a live one [--older-than DUR] [--dry-run]\n"
	"  ps                  list traced processes: PID, STATE, SOCKETS, FDS, HEAP BLOCKS\n"
	"                      (live blocks; \"smp\": samples in sampled mode), SIZE (space\n"
	"                      the segment holds), COMMAND, SEGMENT; then a line for each\n"
	"                      segment whose tables could not grow (incomplete)\n"
	"  report PID|SEGMENT  open sockets grouped by where they were opened, with age,\n"
	"                      peer and TCP state; untracked sockets; double closes;\n"
	"                      live heap blocks grouped by allocation stack\n"
	"  diff OLD NEW        what grew per stack between two moments: OLD and NEW are\n"
	"                      JSON reports (report --format json) or segments (PID or\n"
	"                      path, reported now); the stacks that grew, largest first,\n"
	"                      with old -> new; counts of those that shrank, vanished,\n"
	"                      appeared; exits 1 when something grew (as diff(1)).\n"
	"                      `report PID --baseline FILE` prints the same against FILE\n"
	"  run -- CMD          run CMD under leakwatch and report what it left open at exit\n"
	"                      (on stderr: CMD's stdout and stderr stay its own); exits\n"
	"                      with CMD's status (see exit status below)\n"
	"  attach PID          load the shim into a running process that was started\n"
	"                      without it (no restart; one thread stopped for a few ms):\n"
	"                      what is open then is \"before attach\", what happens after\n"
	"                      is recorded with stacks; then use report, top, diff\n"
	"  detach PID          stop recording in an attached process and restore its\n"
	"                      call sites (the shim stays loaded)\n"
	"  top PID             live view of a traced process, refreshed every second:\n"
	"                      groups by verdict and count, endpoint, age, idle time, a\n"
	"                      history of each group's count, heap totals.  Keys: j/k or\n"
	"                      Up/Down select, Enter the group's stacks and evidence,\n"
	"                      Esc back, s sort (count, age, idle), g grouping\n"
	"                      (open/last use), K kind (all, sockets, heap), ? help,\n"
	"                      q quit; when the process exits the last screen stays\n"
	"                      until q.  Plain-text snapshots when stdout is not a\n"
	"                      terminal\n"
	"  exporter            every traced process of the host as Prometheus metrics at\n"
	"                      http://127.0.0.1:9479/metrics (OpenMetrics on request),\n"
	"                      the sites' stacks at /stacks; --textfile for node_exporter\n"
	"\n"
	"verdicts (live processes; each group shows its evidence):\n"
	"  LEAK SUSPECT  members idle (no data sent or received) for --idle-for or more,\n"
	"                or in CLOSE_WAIT (the peer hung up, the program never closed);\n"
	"                inside a pool, split off and named by the last-use stack\n"
	"  POOL          2+ sockets, some open longer than --idle-for and used within it\n"
	"  ACTIVE        in use, not a pool (e.g. one long-lived connection with traffic)\n"
	"  NEW           every member younger than --idle-for: too early to judge\n"
	"  LISTENING     listening sockets\n"
	"  (run, and processes that ended, keep \"SOCKETS\": everything left open is a leak)\n"
	"\n";

static const char help_after[] =
	"heap blocks that are not leaks:\n"
	"  system      kept by the C/C++ runtime on purpose: every frame of the stack is in\n"
	"              libc, ld.so, libstdc++, libgcc_s or another glibc library (allocated\n"
	"              by the loader or a library constructor), or the allocation was made\n"
	"              for the library's own state (stdio buffers, atexit tables, TLS,\n"
	"              locale, timezone, NSS, iconv, dlopen)\n"
	"  no stack    the shim could not record where it was allocated\n"
	"  In sampled heap mode the numbers are estimates, marked ~ (JSON: estimated).\n"
	"\n"
	"examples:\n"
	"  LD_PRELOAD=/usr/local/lib/leakwatch/libleakwatch.so ./api --port 8080 &\n"
	"  leakwatch ps\n"
	"  leakwatch report 4242 --older-than 5m\n"
	"  leakwatch report 4242 --idle-for 2m --interval 30s\n"
	"  leakwatch report 4242 --by use\n"
	"  leakwatch top 4242\n"
	"  leakwatch top 4242 --plain --count 5 --interval 2s\n"
	"  leakwatch report /dev/shm/leakwatch.4242 --format json\n"
	"  leakwatch report 4242 --kind heap --format folded | flamegraph.pl > heap.svg\n"
	"  leakwatch report 4242 --format json --output warm.json   # after warm-up\n"
	"  leakwatch diff warm.json 4242 --kind heap                # later: what grew\n"
	"  leakwatch report 4242 --baseline warm.json\n"
	"  leakwatch run --fail-on-leak -- ./tests/integration\n"
	"  leakwatch run --fail-on-leak=all -- ./tests/unit-tests\n"
	"  leakwatch run --sarif leaks.sarif -- ./tests/integration   # code scanning\n"
	"\n"
	"environment:\n"
	"  LEAKWATCH_DIR       where segments are (default /dev/shm)\n"
	"  LEAKWATCH_SHIM      path of libleakwatch.so for `run`\n"
	"  LEAKWATCH_HEAP      shim heap mode: off, sampled (default) or full\n"
	"  (the shim's other LEAKWATCH_* settings are listed in the README)\n"
	"  GITHUB_ACTIONS      true: run and report also print one ::error file=...,line=...::\n"
	"                      workflow command per leak on stdout (--no-github-annotations)\n"
	"  GITHUB_WORKSPACE    the repository SARIF and annotation paths are relative to\n"
	"                      (default: the current directory)\n"
	"\n"
	"documentation: man leakwatch, man leakwatch-COMMAND; the runbooks, the JSON\n"
	"report format and schema, and the built-in suppressions are in\n"
	"  " LW_DATADIR "/\n"
	"\n"
	"exit status:\n"
	"  0  success\n"
	"  1  leaks found (run --fail-on-leak); diff, report --baseline: a stack grew\n"
	"  2  usage error, unreadable or invalid segment, command could not be run,\n"
	"     or output could not be written\n"
	"\n"
	"exit status of attach and detach:\n"
	"  2  usage error, no such process     4  kernel.yama.ptrace_scope forbids it\n"
	"  5  another user's process without root (CAP_SYS_PTRACE)\n"
	"  6  traced by another tracer (named)  7  statically linked, not x86_64, its own\n"
	"     allocator (jemalloc...), or\n"
	"     glibc older than 2.34 (no dlopen in libc)\n"
	"  8  another mount namespace without the shim   9  seccomp (strict, or a filter\n"
	"     without --seccomp-filter-ok)    10  attach: traced by leakwatch already;\n"
	"     detach: not attached          11  the injection or the shim's start failed\n"
	"\n"
	"exit status of run (the first that applies):\n"
	"  2    usage error, CMD could not be started, or the report could not be written\n"
	"  N    --fail-on-leak found something: N is --error-exitcode (default 1)\n"
	"  3    something was not traced (one \"...: not traced\" line each on stderr):\n"
	"       CMD is statically linked or set-user-ID, LEAKWATCH_DISABLE is set, the\n"
	"       shim had no room for its segment, or a traced process exec'd a program\n"
	"       that left no segment\n"
	"  else CMD's own status; 128 + the signal when a signal killed it\n"
	"  (1, 2 and 3 can also be CMD's own status: stderr and the JSON tell them apart)\n"
	"  A segment whose tables could not grow (\"incomplete\": filesystem full or\n"
	"  LEAKWATCH_BUDGET reached) changes no status by itself: the report says so.\n";

static const struct lw_command_spec *const commands[] = {
	&lw_ps_spec, &lw_clean_spec, &lw_report_spec, &lw_diff_spec, &lw_top_spec, &lw_run_spec, &lw_attach_spec,
	&lw_detach_spec, &lw_exporter_spec,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void help_print(FILE *out)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		lw_options_synopsis(out, commands[i], i == 0 ? "usage: " : "       ");
	fputs("       leakwatch preload\n", out);
	fputs("       leakwatch help | --help | --version | COMMAND --help\n\n", out);
	fputs(help_intro, out);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		lw_options_help(out, commands[i]);
		fputc('\n', out);
	}
	fputs(help_after, out);
}

/* `leakwatch COMMAND --help` (before a run's "--"): that command's synopsis and options. */
static int command_help(int argc, char **argv)
{
	for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			for (size_t k = 0; k < NCOMMANDS; k++)
				if (strcmp(commands[k]->name, argv[1]) == 0) {
					lw_options_synopsis(stdout, commands[k], "usage: ");
					fputc('\n', stdout);
					lw_options_help(stdout, commands[k]);
					fputs("\nleakwatch --help: every command, the exit statuses, the environment\n", stdout);
					return 1;
				}
			if (strcmp(argv[1], "preload") == 0) {
				fputs("usage: leakwatch preload\n\nprints LD_PRELOAD=PATH for this installation's shim, to put in front of a command\nor into a service's environment (systemd: Environment=...)\n",
				      stdout);
				return 1;
			}
		}
	return 0;
}

/* `leakwatch preload`: the LD_PRELOAD line for this installation's shim. */
static int cmd_preload(int argc)
{
	if (argc > 2) {
		lw_usage_error("preload", "takes no arguments");
		return LW_EXIT_USAGE;
	}
	char shim[PATH_MAX], real[PATH_MAX];
	if (lw_shim_find(shim, sizeof shim) < 0 || !realpath(shim, real)) {
		fprintf(stderr, "leakwatch: preload: cannot find libleakwatch.so (set LEAKWATCH_SHIM)\n");
		return LW_EXIT_ERROR;
	}
	printf("LD_PRELOAD=%s\n", real);
	return LW_EXIT_OK;
}

int main(int argc, char **argv)
{
	int rc;
	/* A closed pipe (leakwatch ps | head) must become a checked write error, not a kill. */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		lw_usage_error(NULL, "missing command");
		return LW_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (command_help(argc, argv)) {
		rc = LW_EXIT_OK;
	} else if (strcmp(cmd, "preload") == 0) {
		rc = cmd_preload(argc);
	} else if (strcmp(cmd, "help") == 0 && argc > 2) {
		/* hidden: the man pages and the completion, generated from the tables */
		rc = lw_help_generate(argc - 1, argv + 1, commands, NCOMMANDS);
	} else if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		help_print(stdout);
		rc = LW_EXIT_OK;
	} else if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("leakwatch %s (segment layout %u)\n", LW_VERSION_STRING, LW_VERSION);
		rc = LW_EXIT_OK;
	} else if (strcmp(cmd, "clean") == 0) {
		rc = lw_cmd_clean(argc - 1, argv + 1);
	} else if (strcmp(cmd, "ps") == 0) {
		rc = lw_cmd_ps(argc - 1, argv + 1);
	} else if (strcmp(cmd, "report") == 0) {
		rc = lw_cmd_report(argc - 1, argv + 1);
	} else if (strcmp(cmd, "diff") == 0) {
		rc = lw_cmd_diff(argc - 1, argv + 1);
	} else if (strcmp(cmd, "attach") == 0) {
		rc = lw_cmd_attach(argc - 1, argv + 1);
	} else if (strcmp(cmd, "detach") == 0) {
		rc = lw_cmd_detach(argc - 1, argv + 1);
	} else if (strcmp(cmd, "exporter") == 0) {
		rc = lw_cmd_exporter(argc - 1, argv + 1);
	} else if (strcmp(cmd, "top") == 0) {
		rc = lw_top_main(argc - 1, argv + 1);
	} else if (strcmp(cmd, "run") == 0) {
		rc = lw_run_main(argc - 1, argv + 1);
	} else if (cmd[0] == '-') {
		lw_usage_error(NULL, "unknown option '%s'", cmd);
		rc = LW_EXIT_USAGE;
	} else {
		lw_usage_error(NULL, "unknown command '%s'", cmd);
		rc = LW_EXIT_USAGE;
	}

	/* The one exit path: a report cut short by a full disk or closed pipe is a failure. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "leakwatch: write error: %s\n", strerror(errno));
		return LW_EXIT_ERROR;
	}
	return rc;
}
