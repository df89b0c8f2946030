/* SPDX-License-Identifier: MIT */
/* cli.c — what every command shares: the usage-error line, listing segments (cli.h). */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"
#include "segdir.h"

void lw_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("leakwatch: ", stderr);
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputs(" (try 'leakwatch --help')\n", stderr);
	va_end(ap);
}

int lw_cli_segments_list(const char *dir, struct lw_segref **refs)
{
	char err[LW_ERR_MAX];
	int n = lw_segments_list(dir, refs, err, sizeof err);
	if (n < 0)
		fprintf(stderr, "leakwatch: %s\n", err);
	return n;
}
