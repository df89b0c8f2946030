/* SPDX-License-Identifier: MIT */
/* cli.c — what every command shares: the usage-error line, listing segments,
 * the suppression options (cli.h). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"
#include "segdir.h"
#include "suppress.h"

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

int lw_cli_supp_add(struct lw_cli_supp *s, const char *arg)
{
	if (!arg || !*arg || s->nfiles == LW_CLI_SUPP_MAX_FILES)
		return -1;
	s->files[s->nfiles++] = arg;
	return 0;
}

int lw_cli_supp_gen(struct lw_cli_supp *s, const char *arg)
{
	if (!arg || strcmp(arg, "valgrind") == 0 || strcmp(arg, "yes") == 0)
		s->gen = LW_GEN_SUPP_VALGRIND;
	else if (strcmp(arg, "lsan") == 0)
		s->gen = LW_GEN_SUPP_LSAN;
	else if (strcmp(arg, "no") == 0)
		s->gen = LW_GEN_SUPP_NONE;
	else
		return -1;
	return 0;
}

struct lw_supp_set *lw_cli_supp_load(const struct lw_cli_supp *s)
{
	char err[LW_ERR_MAX + PATH_MAX];
	struct lw_supp_set *set = lw_supp_set_new();
	if (!set) {
		fprintf(stderr, "leakwatch: out of memory\n");
		return NULL;
	}
	int rc = s->no_default ? 0 : lw_supp_load_default(set, err, sizeof err);
	if (rc >= 0)
		rc = lw_supp_load_list(set, getenv(LW_SUPP_ENV), err, sizeof err);
	if (rc < 0)
		fprintf(stderr, "leakwatch: %s (from $%s)\n", err, LW_SUPP_ENV);
	for (size_t i = 0; rc >= 0 && i < s->nfiles; i++)
		if ((rc = lw_supp_load_file(set, s->files[i], err, sizeof err)) < 0)
			fprintf(stderr, "leakwatch: %s\n", err);
	if (rc < 0) {
		lw_supp_set_free(set);
		return NULL;
	}
	return set;
}
