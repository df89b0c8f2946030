/* SPDX-License-Identifier: MIT */
/*
 * manpage_text.c — the hand-written prose of the man pages (manpage.h):
 * one entry per page, in the markup manpage.c renders.  The synopsis and
 * the options are not here: they are generated from the option tables.
 */
#include <string.h>

#include "manpage.h"
#include "leakwatch/segment.h"

#ifndef LW_LIBDIR
#define LW_LIBDIR "/usr/local/lib/leakwatch"
#endif
#ifndef LW_DATADIR
#define LW_DATADIR "/usr/local/share/leakwatch"
#endif

#define ENV_DIR "= LEAKWATCH_DIR\nWhere the segments are (default " LW_DEFAULT_DIR ").\n"
#define ENV_SHIM \
	"= LEAKWATCH_SHIM\n" \
	"The path of libleakwatch.so to use.  Otherwise it is looked for next to the leakwatch binary, in\n" \
	"../lib/leakwatch/ from it, then in " LW_LIBDIR ".\n"
#define ENV_SUPP \
	"= LEAKWATCH_SUPPRESSIONS\n" \
	"Colon-separated suppression files applied as if each were given with --suppressions.\n"

static const struct lw_man_text texts[] = {
	{ "", "find leaked sockets, descriptors and heap blocks, and where they were made",
	  "leakwatch finds the sockets, descriptors and heap blocks a running Linux program never gives back,\n"
	  "and says where they were created, how old they are, who they talk to and whether anyone still uses\n"
	  "them, without recompiling anything and without restarting a service that runs already.\n"
	  "\n"
	  "Programs are traced by the shim, `libleakwatch.so`, preloaded with LD_PRELOAD (`leakwatch preload`\n"
	  "prints the line), run under `leakwatch run`, or loaded into a running process by `leakwatch attach`.\n"
	  "It records every open descriptor and live heap block with its call stack in a per-process segment,\n"
	  "$LEAKWATCH_DIR/leakwatch.PID.  The leakwatch command reads those segments, while the process runs\n"
	  "or after it exited, symbolizes the stacks, joins what the kernel knows (/proc/PID/fd, socket states)\n"
	  "and reports what was left behind, grouped by stack.\n"
	  "\n"
	  "Sockets of a live process get a verdict, each with its evidence:\n"
	  "= LEAK SUSPECT\n"
	  "Members idle (no data sent or received) for --idle-for or more, or in CLOSE_WAIT (the peer hung up,\n"
	  "the program never closed); inside a pool, split off and named by the stack that last used them.\n"
	  "= POOL\n"
	  "Two or more sockets, some open longer than --idle-for and used within it.\n"
	  "= ACTIVE\n"
	  "In use, not a pool (one long-lived connection with traffic).\n"
	  "= NEW\n"
	  "Every member younger than --idle-for: too early to judge.\n"
	  "= LISTENING\n"
	  "Listening sockets.\n"
	  "\n"
	  "Under `run`, and for processes that ended, everything left open is a leak.  Heap blocks kept by the\n"
	  "C/C++ runtime on purpose (stdio buffers, locale, the loader) are counted apart as \"system\"; the\n"
	  "built-in suppressions and --suppressions files take out the rest that is known.\n"
	  "\n"
	  "Durations (DUR) are written 500ms, 30s, 5m, 2h, 1d or compounds such as 1h30m.  The JSON formats\n"
	  "are documented in " LW_DATADIR "/report-format.md.",
	  NULL,
	  ENV_DIR ENV_SHIM ENV_SUPP
	  "\n"
	  "The shim reads its settings once, at start, from the traced program's environment (a rejected value\n"
	  "is replaced by the default and counted in the report):\n"
	  "= LEAKWATCH_HEAP\n"
	  "Heap tracking: off, sampled (default; full under `leakwatch run`) or full.\n"
	  "= LEAKWATCH_SAMPLE_BYTES\n"
	  "Sampled mode: mean bytes allocated between two samples (default 524288).\n"
	  "= LEAKWATCH_MAX_ALLOCS\n"
	  "Live heap blocks recorded at most.\n"
	  "= LEAKWATCH_STACK_DEPTH\n"
	  "Frames captured per stack (1 to 64, default 32).\n"
	  "= LEAKWATCH_MAX_FDS\n"
	  "Descriptors recorded: fd numbers from this one up are counted as dropped.\n"
	  "= LEAKWATCH_MAX_STACKS\n"
	  "Distinct stacks stored at most.\n"
	  "= LEAKWATCH_BUDGET\n"
	  "Space for all segments of the directory together: bytes (K, M, G suffixes) or N% of its filesystem\n"
	  "(default 25%); 0: no budget.\n"
	  "= LEAKWATCH_STACK_CACHE\n"
	  "0 disables the call-site stack cache.\n"
	  "= LEAKWATCH_PYTHON\n"
	  "0: no Python frames in the stacks of a CPython process.\n"
	  "= LEAKWATCH_KEEP_EMPTY\n"
	  "1 keeps the segments of processes that recorded nothing (`leakwatch run` sets it).\n"
	  "= LEAKWATCH_REACH_WAIT\n"
	  "Milliseconds a process with live heap blocks waits at exit for LEAKWATCH_RUN_PID to check\n"
	  "reachability (`leakwatch run` sets it).\n"
	  "= LEAKWATCH_RUN_PID\n"
	  "The `leakwatch run` that checks processes at exit (set by it).\n"
	  "= LEAKWATCH_DISABLE\n"
	  "1: the shim does nothing.\n"
	  "= LEAKWATCH_LOG\n"
	  "1: the shim prints its own problems on standard error (a few lines at most).\n",
	  "A service started with the shim, its leaked connections found:\n"
	  "\n"
	  "  env \"$(leakwatch preload)\" ./api --port 8080 &\n"
	  "  leakwatch ps\n"
	  "  leakwatch report 4242 --older-than 5m\n"
	  "\n"
	  "A test suite that fails when it leaks:\n"
	  "\n"
	  "  leakwatch run --fail-on-leak -- ./tests/integration\n"
	  "\n"
	  "A service started without it:\n"
	  "\n"
	  "  leakwatch attach 4242\n"
	  "  leakwatch top 4242\n",
	  LW_PIDS_SEGMENTS },

	{ "ps", "list the processes leakwatch traces",
	  "Lists every segment in $LEAKWATCH_DIR: PID, STATE (alive, exited, execed, dead), SOCKETS and FDS\n"
	  "(open descriptors), HEAP BLOCKS (live blocks; \"smp\": samples in sampled mode), SIZE (the space the\n"
	  "segment holds, not its sparse size), COMMAND and SEGMENT; then one \"incomplete:\" line for each\n"
	  "segment whose tables could not grow.  A file that is not a usable segment is listed as invalid,\n"
	  "with the reason.",
	  NULL, NULL,
	  "  leakwatch ps\n"
	  "  leakwatch ps --format json | jq '.[].pid'\n",
	  LW_PIDS_SEGMENTS },

	{ "clean", "remove the segments of processes that are gone",
	  "Removes the segments of processes that exited, exec'd or were killed, for hosts where programs are\n"
	  "traced with plain LD_PRELOAD; never the segment of a process that still runs (the same pid and start\n"
	  "time).  It reads only headers, says how much space it freed, never follows a symlink, and removes\n"
	  "only regular segment files: the user's own, or anyone's when run as root.  A file it skips is named\n"
	  "on standard error and the rest is cleaned.",
	  NULL, NULL,
	  "  leakwatch clean --dry-run\n"
	  "  leakwatch clean --older-than 1d\n",
	  LW_PIDS_SEGMENTS },

	{ "report", "what a traced process holds open or allocated, grouped by the stack that made it",
	  "Reports on a live process (by PID) or on the segment of one that exited (PID or path): open sockets\n"
	  "grouped by creation stack and endpoint, with count, age range, TCP state and a verdict (see\n"
	  "leakwatch(1)); sockets the shim never saw (untracked); other descriptors (files, pipes, eventfds...)\n"
	  "with their paths; double closes with the stacks of both closes and of the open; live heap blocks\n"
	  "grouped by allocation stack, with count, bytes and ages.\n"
	  "\n"
	  "For a live process an entry counts only while /proc/PID/fd/N still holds the same descriptor.  With\n"
	  "--check-reachable the heap blocks are classified as valgrind memcheck does (definitely, indirectly,\n"
	  "possibly lost, still reachable); the process is stopped meanwhile, and the report says for how long.\n"
	  "With --baseline FILE the report is instead what grew since FILE, as leakwatch-diff(1) prints it.\n"
	  "\n"
	  "--format json is a stable, documented object (" LW_DATADIR "/report-format.md, schema\n"
	  "report-schema.json); --format folded prints collapsed stacks for flamegraph.pl and speedscope.",
	  "= 0\n"
	  "The report was written (with --baseline: nothing grew).\n"
	  "= 1\n"
	  "With --baseline: a stack grew.\n"
	  "= 2\n"
	  "Usage error; no such process and no segment for it; a segment that is unreadable, foreign,\n"
	  "truncated or of a newer layout; a suppression file that cannot be read or parsed; the process could\n"
	  "not be stopped for --check-reachable; the output could not be written.  One line on standard error\n"
	  "names the problem.\n",
	  ENV_DIR ENV_SUPP,
	  "  leakwatch report 4242 --older-than 5m\n"
	  "  leakwatch report 4242 --idle-for 2m --interval 30s\n"
	  "  leakwatch report 4242 --by use\n"
	  "  leakwatch report /dev/shm/leakwatch.4242 --format json\n"
	  "  leakwatch report 4242 --kind heap --format folded | flamegraph.pl > heap.svg\n"
	  "  leakwatch report 4242 --format json --output warm.json\n"
	  "  leakwatch report 4242 --baseline warm.json\n",
	  LW_PIDS_SEGMENTS },

	{ "diff", "what grew per stack between two moments",
	  "Compares two reports of one program, per stack: OLD and NEW are each a JSON report (report --format\n"
	  "json; a file whose first non-space byte is \"{\") or what `report` takes, a PID or a segment, reported\n"
	  "now.  Stacks are matched by kind and symbolized frames, never by stack id, so two runs of one\n"
	  "program compare too.  The stacks that grew or appeared come first, largest growth first (bytes for\n"
	  "the heap, count otherwise), with old -> new; those that shrank, vanished or stayed are counted.",
	  "= 0\n"
	  "Nothing grew.\n"
	  "= 1\n"
	  "A stack grew (as diff(1)).\n"
	  "= 2\n"
	  "Usage error, or a side is unusable (missing, not JSON, not a leakwatch report, truncated; one line\n"
	  "names the file), or the output could not be written.\n",
	  NULL,
	  "  leakwatch report 4242 --format json --output warm.json   # after warm-up\n"
	  "  leakwatch diff warm.json 4242 --kind heap                # later: what grew\n",
	  LW_PIDS_SEGMENTS },

	{ "top", "live view of a traced process",
	  "Refreshes, every --interval, a full-screen view of a traced process: its groups by verdict and count,\n"
	  "endpoint, age and idle time, a history of each group's count, and heap totals.  Keys: s sort (count,\n"
	  "age, idle), g grouping (open or last use), k kind (all, sockets, heap), q quit.  When standard\n"
	  "output is not a terminal, or with --plain, it prints plain-text snapshots instead.",
	  "= 0\n"
	  "Quit, --count snapshots printed, or the process exited.\n"
	  "= 2\n"
	  "Usage error, no such process or segment (one line names it).\n",
	  NULL,
	  "  leakwatch top 4242\n"
	  "  leakwatch top 4242 --plain --count 5 --interval 2s\n",
	  LW_PIDS_RUNNING_TRACED },

	{ "run", "run a command under leakwatch and report what it left behind",
	  "Runs CMD with the shim preloaded (its children too, in a private segment directory), waits for it,\n"
	  "then reports every socket and other descriptor still open at exit that was not inherited, and every\n"
	  "heap block the program allocated and never freed, grouped by stack.  Heap tracking defaults to full\n"
	  "(exact).  At the exit of each traced process that still has heap blocks, `run` stops it and\n"
	  "classifies them as valgrind memcheck does; --fail-on-leak counts the definitely and indirectly lost\n"
	  "ones unless --leak-kinds says otherwise.\n"
	  "\n"
	  "The command's standard output and error are its own: the report goes to standard error, to\n"
	  "--output FILE, or to standard output with --output - (after the command's output).  `run` fails\n"
	  "closed: a command that cannot be traced (statically linked, set-user-ID, LEAKWATCH_DISABLE, no room\n"
	  "for its segment) is named on one \"not traced\" line and the status is 3.  The segments are removed\n"
	  "afterwards unless --keep.",
	  "The first that applies:\n"
	  "= 2\n"
	  "Usage error, a suppression file that cannot be read or parsed (before CMD starts), CMD could not be\n"
	  "started, or the report could not be written.\n"
	  "= N\n"
	  "--fail-on-leak found something: N is --error-exitcode (default 1).\n"
	  "= 3\n"
	  "Something was not traced (one \"leakwatch: ...: not traced\" line each on standard error).\n"
	  "= other\n"
	  "CMD's own status; 128 + the signal when a signal killed it.\n"
	  "\n"
	  "1, 2 and 3 can also be CMD's own status: standard error and the JSON tell them apart.\n",
	  ENV_DIR ENV_SHIM ENV_SUPP
	  "= LEAKWATCH_HEAP\n"
	  "The heap mode when --heap is not given (passed to CMD as it is).\n",
	  "  leakwatch run --fail-on-leak -- ./tests/integration\n"
	  "  leakwatch run --fail-on-leak=sockets -- python3 service_test.py\n"
	  "  leakwatch run --format json --output leaks.json --junit leaks.xml -- make check\n",
	  LW_PIDS_SEGMENTS },

	{ "attach", "load leakwatch into a running process",
	  "Brings the shim into a running, dynamically linked x86_64 process (glibc 2.34 or later) that was\n"
	  "started without it, without restarting it; then `report`, `top` and `diff` work on it as on a\n"
	  "preloaded one.  Through ptrace it borrows one thread at a safe point (blocked in read, poll,\n"
	  "accept, a sleep... inside libc), makes it dlopen libleakwatch.so, and gives it back with every\n"
	  "register as it was; the thread is stopped for a few milliseconds.  The call sites already bound are\n"
	  "taken over.  What was open at the attach is recorded as \"before attach\", without a stack;\n"
	  "everything after it with stacks.  The segment goes where the process's own LEAKWATCH_DIR says.",
	  "= 0\n"
	  "Attached (detach: detached).\n"
	  "= 2\n"
	  "Usage error, no such process.\n"
	  "= 4\n"
	  "kernel.yama.ptrace_scope forbids it.\n"
	  "= 5\n"
	  "Another user's process without root (CAP_SYS_PTRACE).\n"
	  "= 6\n"
	  "Traced by another tracer (named).\n"
	  "= 7\n"
	  "Statically linked, not x86_64, an allocator of its own (jemalloc...), or glibc older than 2.34.\n"
	  "= 8\n"
	  "Another mount namespace without the shim at the same path.\n"
	  "= 9\n"
	  "A seccomp filter (without --seccomp-filter-ok), or strict seccomp.\n"
	  "= 10\n"
	  "Traced by leakwatch already (detach: not attached).\n"
	  "= 11\n"
	  "The injection or the shim's start failed (no safe point within --timeout...).\n",
	  ENV_SHIM,
	  "  leakwatch attach 4242\n"
	  "  leakwatch report 4242 --idle-for 2m\n"
	  "  leakwatch detach 4242\n",
	  LW_PIDS_UNTRACED },

	{ "detach", "stop recording in an attached process",
	  "Stops the recording in a process `leakwatch attach` loaded the shim into, and puts back every call\n"
	  "site that still points to the shim.  The shim stays loaded (unloading code another thread may be\n"
	  "running would risk the process); its segment keeps what was recorded, and the report says\n"
	  "\"detached N ago\".",
	  "As leakwatch-attach(1); 10: the process is not attached.\n",
	  ENV_DIR,
	  "  leakwatch detach 4242\n",
	  LW_PIDS_RUNNING_TRACED },

	{ "exporter", "every traced process of the host as Prometheus metrics",
	  "Runs until stopped.  Every --interval it reports each live segment of $LEAKWATCH_DIR as `leakwatch\n"
	  "report PID` would (same verdicts, same --idle-for) and renders the metrics once; the HTTP server\n"
	  "(loopback by default) hands out the last rendering, so a scrape never touches a segment.\n"
	  "/metrics is Prometheus text 0.0.4, or OpenMetrics 1.0.0 when the Accept header asks for it;\n"
	  "/stacks is JSON, each exported site with its whole stack.  --textfile also writes the text for\n"
	  "node_exporter's textfile collector, through a temporary file renamed into place.\n"
	  "\n"
	  "Labels are bounded: pid, comm, a kind, a verdict, and a site id, 12 hex digits hashed from the\n"
	  "resource, endpoint and symbolized stack (the same for the same code in every process and run);\n"
	  "--top sites per process and resource, the rest summed as site \"other\".  leakwatch_site_info names\n"
	  "each site's function, file, line and endpoint.  Growth rates are least-squares slopes over\n"
	  "--window; leakwatch_descriptors_exhaustion_seconds is the descriptors left under the soft\n"
	  "RLIMIT_NOFILE over their growth.  Alerting rules: " LW_DATADIR "/prometheus/leakwatch-alerts.yml.",
	  "= 0\n"
	  "Stopped by SIGINT or SIGTERM, or --once done.\n"
	  "= 2\n"
	  "Usage error, an address that cannot be listened on, the segment directory unreadable at start, or\n"
	  "--textfile not writable (one line names it).\n",
	  ENV_DIR,
	  "  leakwatch exporter\n"
	  "  leakwatch exporter --listen :9479 --interval 15s\n"
	  "  leakwatch exporter --textfile /var/lib/node_exporter/textfile/leakwatch.prom\n"
	  "  leakwatch exporter --once | promtool check metrics\n",
	  LW_PIDS_SEGMENTS },

	{ "preload", "print the LD_PRELOAD line of this installation's shim",
	  "Prints LD_PRELOAD=PATH, the absolute path of the libleakwatch.so this leakwatch uses, to put in\n"
	  "front of a command or into a service's environment (systemd: Environment=...).",
	  "= 0\n"
	  "The line was printed.\n"
	  "= 2\n"
	  "An argument was given, or libleakwatch.so was not found.\n",
	  ENV_SHIM,
	  "  env \"$(leakwatch preload)\" ./api --port 8080\n"
	  "  leakwatch preload >> /etc/default/api\n",
	  LW_PIDS_SEGMENTS },
};

const struct lw_man_text *lw_man_text_find(const char *name)
{
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (strcmp(texts[i].name, name) == 0)
			return &texts[i];
	return NULL;
}
