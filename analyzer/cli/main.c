/* SPDX-License-Identifier: MIT */
/* main.c — the `leakwatch` command line: ps, report, run, top. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"
#include "names.h"
#include "render.h"
#include "report.h"
#include "segdir.h"
#include "snapshot.h"
#include "present.h"
#include "json.h"

#ifndef LW_VERSION_STRING
#define LW_VERSION_STRING "0.1"
#endif

/* Defaults of `report`; each field is one option. */
struct report_options {
	uint64_t older_than_ns;         /* --older-than DUR: hide sockets and heap blocks younger than DUR */
	enum lw_format format;          /* --format text|json|folded */
	enum lw_kind kind;              /* --kind heap|sockets|all */
	int all;                        /* --all: also inherited sockets, stale entries, system heap blocks */
	const char *output;             /* --output FILE: write the report there, atomically */
	uint64_t idle_for_ns;           /* --idle-for DUR: no I/O for this long makes a socket idle */
	uint64_t interval_ns;           /* --interval DUR: two snapshots DUR apart, growth per group */
	enum lw_group_by by;            /* --by open|use: group by creation or last-use stack */
};

static const struct report_options report_defaults = {
	.older_than_ns = 0,
	.idle_for_ns = LW_IDLE_FOR_DEFAULT_NS,
	.interval_ns = 0,
	.by = LW_BY_OPEN,
	.format = LW_FMT_TEXT,
	.kind = LW_KIND_ALL,
	.all = 0,
};

static const char usage_text[] =
	"usage: leakwatch ps [--format text|json]\n"
	"       leakwatch clean [--older-than DUR] [--dry-run]\n"
	"       leakwatch report PID|SEGMENT [--kind heap|sockets|all] [--older-than DUR]\n"
	"                        [--idle-for DUR] [--interval DUR] [--by open|use]\n"
	"                        [--format text|json|folded] [--all] [--output FILE]\n"
	"       leakwatch top PID [--interval DUR] [--idle-for DUR] [--by open|use]\n"
	"                         [--plain] [--count N]\n"
	"       leakwatch run [--kind heap|sockets|all] [--older-than DUR]\n"
	"                     [--fail-on-leak[=heap|sockets|all]] [--error-exitcode N]\n"
	"                     [--heap MODE] [--keep] [--all]\n"
	"                     [--format text|json|folded] [--output FILE|-] -- CMD [ARGS...]\n"
	"       leakwatch help | --help | --version\n"
	"\n"
	"Find sockets and heap memory a program never released, and where it got them.\n"
	"Programs are traced by preloading libleakwatch.so, which records every open\n"
	"socket (and, when heap tracking is on, every live heap block) with its call\n"
	"stack in $LEAKWATCH_DIR/leakwatch.<pid> (default /dev/shm).\n"
	"\n"
	"commands:\n"
	"  clean               remove segments of processes that are gone (exited, exec'd,\n"
	"                      killed); never a live one [--older-than DUR] [--dry-run]\n"
	"  ps                  list traced processes: PID, STATE, SOCKETS, HEAP BLOCKS\n"
	"                      (live blocks; \"smp\": samples in sampled mode), COMMAND, SEGMENT\n"
	"  report PID|SEGMENT  open sockets grouped by where they were opened, with age,\n"
	"                      peer and TCP state; untracked sockets; double closes;\n"
	"                      live heap blocks grouped by allocation stack\n"
	"  run -- CMD          run CMD under leakwatch and report what it left open at exit\n"
	"                      (on stderr: CMD's stdout and stderr stay its own); exits\n"
	"                      with CMD's status (see exit status below)\n"
	"  top PID             live view of a traced process, refreshed every second:\n"
	"                      groups by verdict and count, endpoint, age, idle time, a\n"
	"                      history of each group's count, heap totals.  Keys: s sort\n"
	"                      (count, age, idle), g grouping (open/last use), k kind\n"
	"                      (all, sockets, heap), q quit.  Plain-text snapshots when\n"
	"                      stdout is not a terminal\n"
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
	"\n"
	"options:\n"
	"  --kind KIND         heap, sockets or all (default): what to report\n"
	"  --older-than DUR    only sockets open / heap blocks allocated at least DUR ago\n"
	"                      (500ms, 30s, 5m, 2h, 1d, 1h30m)\n"
	"  --format FMT        text (default), json, or folded: collapsed stacks for\n"
	"                      flamegraph.pl / speedscope, one line per group, weighted by\n"
	"                      live bytes (heap; --kind all means heap here) or by sockets\n"
	"                      (--kind sockets); run prefixes each line with the process name\n"
	"  --idle-for DUR      a socket with no I/O for DUR is idle (default 5m)\n"
	"  --interval DUR      report: take two snapshots DUR apart and show each group's\n"
	"                      open count at both ends and opened/closed per minute;\n"
	"                      top: refresh period (default 1s)\n"
	"  --by open|use       group sockets by the stack that opened them (default) or\n"
	"                      by the stack that last sent on them (\"never used\" for\n"
	"                      sockets nothing was sent on)\n"
	"  --plain, --once     top: plain-text snapshots instead of the full screen\n"
	"  --count N           top: stop after N snapshots (default 1 when not a tty)\n"
	"  --all               also inherited sockets (opened before leakwatch loaded),\n"
	"                      stale entries (closed where no hook saw it), and heap blocks\n"
	"                      that are not counted as leaks (see below)\n"
	"  --fail-on-leak      run: exit 1 (or --error-exitcode N) when anything --kind\n"
	"                      shows was left behind: a socket created under leakwatch\n"
	"                      still open, or a heap block the program allocated still\n"
	"                      live at exit\n"
	"  --fail-on-leak=KIND run: exit 1 only for that kind: sockets, heap or all;\n"
	"                      --kind must show it (interpreters such as python3 keep\n"
	"                      memory until exit: use =sockets for them)\n"
	"  --error-exitcode N  run: the status for leaks found (1 to 255, default 1);\n"
	"                      implies --fail-on-leak\n"
	"  --heap MODE         run: heap tracking off, sampled or full (default full,\n"
	"                      exact; LEAKWATCH_HEAP in the environment when no option)\n"	"  --keep              run: keep the segment directory and print its path\n"
	"  --output FILE       write the report to FILE (complete or not at all) instead\n"
	"                      of stdout (run: instead of stderr); run --output - puts\n"
	"                      it on stdout, after the command's own output\n"
	"\n"
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
	"  leakwatch run --fail-on-leak -- ./tests/integration\n"
	"  leakwatch run --fail-on-leak=all -- ./tests/unit-tests\n"
	"\n"
	"environment:\n"
	"  LEAKWATCH_DIR       where segments are (default /dev/shm)\n"
	"  LEAKWATCH_SHIM      path of libleakwatch.so for `run`\n"
	"  LEAKWATCH_HEAP      shim heap mode: off, sampled (default) or full\n"
	"  (the shim's other LEAKWATCH_* settings are listed in the README)\n"
	"\n"
	"exit status:\n"
	"  0  success\n"
	"  1  leaks found (run --fail-on-leak)\n"
	"  2  usage error, unreadable or invalid segment, command could not be run,\n"
	"     or output could not be written\n"
	"\n"
	"exit status of run (the first that applies):\n"
	"  2    usage error, CMD could not be started, or the report could not be written\n"
	"  N    --fail-on-leak found something: N is --error-exitcode (default 1)\n"
	"  3    something was not traced (one \"...: not traced\" line each on stderr):\n"
	"       CMD is statically linked or set-user-ID, LEAKWATCH_DISABLE is set, the\n"
	"       shim had no room for its segment, or a traced process exec'd a program\n"
	"       that left no segment\n"
	"  else CMD's own status; 128 + the signal when a signal killed it\n"
	"  (1, 2 and 3 can also be CMD's own status: stderr and the JSON tell them apart)\n";

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("leakwatch: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (try 'leakwatch --help')\n", stderr);
	va_end(ap);
}

/* segments_list_or_say - lw_segments_list(), printing the error line. */
static int segments_list_or_say(const char *dir, struct lw_segref **refs)
{
	char err[LW_ERR_MAX];
	int n = lw_segments_list(dir, refs, err, sizeof err);
	if (n < 0)
		fprintf(stderr, "leakwatch: %s\n", err);
	return n;
}

/* ps_command - argv[0] without its directory, then the arguments. */
static void ps_command(const struct lw_snapshot *s, char *out, size_t len)
{
	const char *full = s->hdr.cmdline[0] ? s->hdr.cmdline : s->hdr.exe;
	const char *space = strchr(full, ' ');
	const char *base = full;
	for (const char *p = full; *p && (!space || p < space); p++)
		if (*p == '/')
			base = p + 1;
	snprintf(out, len, "%s", base);
}

/*
 * ps [--format text|json]: one line per segment, or a JSON array of
 * {"pid","state","sockets","heap_mode","heap_records","command","segment",
 *  "error"} objects (error: why the file could not be read, else null;
 * heap_records: live blocks in full mode, samples in sampled mode).
 */
static int cmd_ps(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0, c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == 'f' && (!strcmp(optarg, "text") || !strcmp(optarg, "json"))) {
			json = !strcmp(optarg, "json");
		} else if (c == 'f') {
			usage_error("unknown format '%s' (text or json)", optarg);
			return 2;
		} else if (c == ':') {
			usage_error("missing argument for '%s'", argv[optind - 1]);
			return 2;
		} else {
			usage_error("unknown option '%s'", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		usage_error("ps: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	const char *dir = lw_segment_dir();
	struct lw_segref *refs = NULL;
	char err[LW_ERR_MAX];
	int n = segments_list_or_say(dir, &refs);
	if (n < 0)
		return 2;
	struct lw_json j;
	lw_json_init(&j, stdout);
	if (json)
		lw_json_begin_array(&j, NULL);
	else
		printf("%7s  %-8s  %7s  %11s  %-40s  %s\n", "PID", "STATE", "SOCKETS", "HEAP BLOCKS",
		       "COMMAND", "SEGMENT");
	for (int i = 0; i < n; i++) {
		struct lw_snapshot s;
		int ok = lw_snapshot_open(&s, refs[i].path, err, sizeof err) == 0;
		char cmd[LW_CMDLINE_MAX];
		if (ok)
			ps_command(&s, cmd, sizeof cmd);
		if (json) {
			lw_json_begin_object(&j, NULL);
			lw_json_int(&j, "pid", ok ? s.hdr.pid : refs[i].pid);
			lw_json_str(&j, "state", ok ? lw_live_name(lw_snapshot_live(&s)) : "invalid");
			if (ok) {
				lw_json_uint(&j, "sockets", lw_snapshot_open_count(&s));
				lw_json_str(&j, "heap_mode", lw_heap_mode_name(s.hdr.heap_mode));
				lw_json_uint(&j, "heap_records", s.nallocs);
			} else {
				lw_json_null(&j, "sockets");
				lw_json_null(&j, "heap_mode");
				lw_json_null(&j, "heap_records");
			}
			lw_json_str(&j, "command", ok ? cmd : NULL);
			lw_json_str(&j, "segment", refs[i].path);
			lw_json_str(&j, "error", ok ? NULL : err);
			lw_json_end_object(&j);
		} else if (!ok) {
			printf("%7d  %-8s  %7s  %11s  %-40s  %s\n", refs[i].pid, "invalid", "-", "-", err,
			       refs[i].path);
		} else {
			char shown[41];
			snprintf(shown, sizeof shown, "%.40s", cmd);
			lw_present_scrub(shown);
			/* live heap records: blocks in full mode, samples in sampled mode */
			char heap[24];
			if (s.hdr.heap_mode == LW_HEAP_OFF)
				snprintf(heap, sizeof heap, "-");
			else if (s.hdr.heap_mode == LW_HEAP_SAMPLED)
				snprintf(heap, sizeof heap, "%zu smp", s.nallocs);
			else
				snprintf(heap, sizeof heap, "%zu", s.nallocs);
			printf("%7d  %-8s  %7zu  %11s  %-40s  %s\n", s.hdr.pid,
			       lw_live_name(lw_snapshot_live(&s)), lw_snapshot_open_count(&s), heap, shown,
			       refs[i].path);
		}
		lw_snapshot_free(&s);
	}
	if (json) {
		lw_json_end_array(&j);
		fputc('\n', stdout);
	} else if (n == 0) {
		fprintf(stderr, "leakwatch: no segments in %s\n", dir);
	}
	free(refs);
	return 0;
}

/*
 * clean: remove the segments of processes that are gone (exited, exec'd,
 * killed).  A live process's segment is never touched, nor a file that is
 * not a valid segment of ours.  --older-than keeps recent ones (by the
 * file's modification time); --dry-run only lists.
 */
static int cmd_clean(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t older_ns = 0;
	int dry = 0, c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (lw_duration_parse(optarg, &older_ns) < 0) {
				usage_error("bad duration '%s'", optarg);
				return 2;
			}
			break;
		case 'n':
			dry = 1;
			break;
		case ':':
			usage_error("missing argument for '%s'", argv[optind - 1]);
			return 2;
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		usage_error("clean: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	const char *dir = lw_segment_dir();
	struct lw_segref *refs = NULL;
	char err[LW_ERR_MAX];
	int n = segments_list_or_say(dir, &refs);
	if (n < 0)
		return 2;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int removed = 0, failed = 0;
	for (int i = 0; i < n; i++) {
		struct lw_snapshot s;
		/* root may remove anyone's segment of a process that is gone, nothing else */
		if (lw_snapshot_open_flags(&s, refs[i].path, getuid() == 0 ? LW_SNAP_GONE_ANY_OWNER : 0, err,
					   sizeof err) < 0) {
			fprintf(stderr, "leakwatch: skipping %s: %s\n", refs[i].path, err);
			lw_snapshot_free(&s);
			continue; /* not ours to judge */
		}
		enum lw_live live = lw_snapshot_live(&s);
		uint64_t age = (uint64_t)(now.tv_sec - s.mtime.tv_sec) * 1000000000ull;
		int rm = live != LW_LIVE_ALIVE && live != LW_LIVE_DISABLED && age >= older_ns &&
			 (dry || lw_segment_remove(&s) == 0);
		lw_snapshot_free(&s);
		if (live == LW_LIVE_ALIVE || live == LW_LIVE_DISABLED || age < older_ns)
			continue;
		if (!rm) {
			fprintf(stderr, "leakwatch: cannot remove %s: %s\n", refs[i].path, strerror(errno));
			failed = 1;
			continue;
		}
		printf("%s %s (pid %d, %s)\n", dry ? "would remove" : "removed", refs[i].path, refs[i].pid,
		       lw_live_name(live));
		removed++;
	}
	free(refs);
	printf("%d segment%s %s\n", removed, removed == 1 ? "" : "s", dry ? "to remove" : "removed");
	return failed ? 2 : 0;
}

static int cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "all", no_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'O' },
		{ "kind", required_argument, NULL, 'K' },
		{ "idle-for", required_argument, NULL, 'I' },
		{ "interval", required_argument, NULL, 'i' },
		{ "by", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	struct report_options o = report_defaults;
	const char *target = NULL;
	opterr = 0;
	optind = 0;
	int c;
	/* "-": non-options come back as 1, so PID may come before or after options. */
	while ((c = getopt_long(argc, argv, "-:", longopts, NULL)) != -1) {
		switch (c) {
		case 1:
			if (target) {
				usage_error("report: unexpected argument '%s'", optarg);
				return 2;
			}
			target = optarg;
			break;
		case 'o':
			if (lw_duration_parse(optarg, &o.older_than_ns) < 0) {
				usage_error("bad duration '%s'", optarg);
				return 2;
			}
			break;
		case 'f':
			if (lw_format_parse(optarg, &o.format) < 0) {
				usage_error("unknown format '%s' (text, json or folded)", optarg);
				return 2;
			}
			break;
		case 'K':
			if (lw_kind_parse(optarg, &o.kind) < 0) {
				usage_error("unknown kind '%s' (heap, sockets or all)", optarg);
				return 2;
			}
			break;
		case 'I':
			if (lw_duration_parse(optarg, &o.idle_for_ns) < 0 || o.idle_for_ns == 0) {
				usage_error("bad --idle-for duration '%s'", optarg);
				return 2;
			}
			break;
		case 'i':
			if (lw_duration_parse(optarg, &o.interval_ns) < 0 || o.interval_ns == 0) {
				usage_error("bad --interval duration '%s'", optarg);
				return 2;
			}
			break;
		case 'b':
			if (lw_group_by_parse(optarg, &o.by) < 0) {
				usage_error("unknown grouping '%s' (open or use)", optarg);
				return 2;
			}
			break;
		case 'a':
			o.all = 1;
			break;
		case 'O':
			o.output = optarg;
			break;
		case ':':
			usage_error("missing argument for '%s'", argv[optind - 1]);
			return 2;
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
			return 2;
		}
	}
	for (; optind < argc; optind++) {   /* after "--" */
		if (target) {
			usage_error("report: unexpected argument '%s'", argv[optind]);
			return 2;
		}
		target = argv[optind];
	}
	if (!target) {
		usage_error("report: missing PID or SEGMENT");
		return 2;
	}

	char path[PATH_MAX], err[LW_ERR_MAX];
	if (lw_segment_resolve(target, path, sizeof path, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", target, err);
		return 2;
	}
	struct lw_report_opts ro = { .older_than_ns = o.older_than_ns, .all = o.all, .format = o.format,
				     .kind = o.kind, .idle_for_ns = o.idle_for_ns, .interval_ns = o.interval_ns,
				     .by = o.by };
	struct lw_report r;
	if (lw_report_build(&r, path, &ro, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s: %s\n", path, err);
		return 2;
	}
	if (lw_output_begin(o.output, err, sizeof err) < 0) {
		fprintf(stderr, "leakwatch: %s\n", err);
		lw_report_free(&r);
		return 2;
	}
	if (o.format == LW_FMT_JSON) {
		lw_render_json(stdout, &r);
		fputc('\n', stdout);
	} else if (o.format == LW_FMT_FOLDED) {
		if (o.kind != LW_KIND_SOCKETS && r.snap.hdr.heap_mode == LW_HEAP_OFF)
			fprintf(stderr, "leakwatch: pid %d: heap tracking was off, nothing to fold (try --kind sockets)\n",
				r.snap.hdr.pid);
		lw_render_folded(stdout, &r, NULL);
	} else {
		lw_render_text(stdout, &r);
	}
	lw_report_free(&r);
	return lw_output_end(1) == 0 ? 0 : 2;
}

int main(int argc, char **argv)
{
	int rc;
	/* A closed pipe (leakwatch ps | head) must become a checked write error, not a kill. */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		usage_error("missing command");
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		rc = 0;
	} else if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("leakwatch %s (segment layout %u)\n", LW_VERSION_STRING, LW_VERSION);
		rc = 0;
	} else if (strcmp(cmd, "clean") == 0) {
		rc = cmd_clean(argc - 1, argv + 1);
	} else if (strcmp(cmd, "ps") == 0) {
		rc = cmd_ps(argc - 1, argv + 1);
	} else if (strcmp(cmd, "report") == 0) {
		rc = cmd_report(argc - 1, argv + 1);
	} else if (strcmp(cmd, "top") == 0) {
		rc = lw_top_main(argc - 1, argv + 1);
	} else if (strcmp(cmd, "run") == 0) {
		rc = lw_run_main(argc - 1, argv + 1);
	} else if (cmd[0] == '-') {
		usage_error("unknown option '%s'", cmd);
		rc = 2;
	} else {
		usage_error("unknown command '%s'", cmd);
		rc = 2;
	}

	/* The one exit path: a report cut short by a full disk or closed pipe is a failure. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "leakwatch: write error: %s\n", strerror(errno));
		return 2;
	}
	return rc;
}
