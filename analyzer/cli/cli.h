/* SPDX-License-Identifier: MIT */
/*
 * cli.h — the `leakwatch` command line: named exit statuses, the commands
 * (one file each: cmd_ps.c, cmd_clean.c, cmd_report.c, cmd_run.c,
 * cmd_top.c) and the one usage-error printer.
 */
#ifndef LEAKWATCH_CLI_H
#define LEAKWATCH_CLI_H

#include <stddef.h>

/*
 * lw_shim_find - locate libleakwatch.so: $LEAKWATCH_SHIM, next to
 * /proc/self/exe, ../lib/leakwatch/ from it, then LW_LIBDIR.  Returns 0 with
 * the path in out, or -1 when none exists.
 */
int lw_shim_find(char *out, size_t len);

/*
 * lw_run_main - `leakwatch run` with argv[0] == "run".  Returns the process
 * exit status: 0, 1 (leak with --fail-on-leak) or 2 (usage/exec error,
 * message already printed).
 */
int lw_run_main(int argc, char **argv);

/*
 * lw_top_main - `leakwatch top` with argv[0] == "top".  Returns the exit
 * status: 0 (quit, count reached, or the process exited), 2 (usage error,
 * no such process or segment; one line printed).
 */
int lw_top_main(int argc, char **argv);

#endif /* LEAKWATCH_CLI_H */
