/* SPDX-License-Identifier: MIT */
/* options.c — table-driven options: parsing, validation, help (options.h). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "classify.h"
#include "names.h"
#include "options.h"
#include "report.h"

#define MAX_OPTS 24

/* Store one value; 0, or -1 when it is not one the option takes. */
static int option_store(const struct lw_option *o, void *opts, const char *arg)
{
	char *field = (char *)opts + o->off;
	switch (o->type) {
	case LW_OPT_FLAG:
		*(int *)field = 1;
		return 0;
	case LW_OPT_STRING:
		*(const char **)field = arg;
		return 0;
	case LW_OPT_DURATION: {
		uint64_t ns;
		if (lw_duration_parse(arg, &ns) < 0 || ns < (uint64_t)o->min)
			return -1;
		*(uint64_t *)field = ns;
		return 0;
	}
	case LW_OPT_FORMAT: {
		enum lw_format f;
		if (lw_format_parse(arg, &f) < 0 || !(o->allowed & LW_FMT_BIT(f)))
			return -1;
		*(enum lw_format *)field = f;
		return 0;
	}
	case LW_OPT_KIND:
		return lw_kind_parse(arg, (enum lw_kind *)field);
	case LW_OPT_BY:
		return lw_group_by_parse(arg, (enum lw_group_by *)field);
	case LW_OPT_INT: {
		char *end;
		errno = 0;
		long long v = strtoll(arg, &end, 10);
		if (errno || end == arg || *end || v < o->min || v > o->max)
			return -1;
		*(int *)field = (int)v;
		return 0;
	}
	case LW_OPT_CUSTOM:
		return o->set(opts, arg);
	}
	return -1;
}

int lw_option_accepts(const struct lw_option *o, const char *arg)
{
	/*
	 * Larger than any command's options struct (run's, the largest, is
	 * about 1 KiB): a store at o->off, or a setter writing its command's
	 * fields, stays inside it.  Zeroed for each probe, so a setter that
	 * counts (--suppressions) starts from nothing.
	 */
	static _Alignas(max_align_t) char scratch[1 << 16];
	if (o->arg == LW_ARG_NONE || o->off >= sizeof scratch - sizeof(uint64_t))
		return 0;
	memset(scratch, 0, sizeof scratch);
	return option_store(o, scratch, arg) == 0;
}

/* The option's own error line: its template with the value where '*' stands. */
static void bad_value(const struct lw_command_spec *c, const struct lw_option *o, const char *arg)
{
	const char *t = o->bad ? o->bad : "bad value '*'";
	const char *star = strchr(t, '*');
	int pre = star ? (int)(star - t) : (int)strlen(t);
	/* a template that does not name its option gets " for --NAME" */
	int named = strstr(t, "--") != NULL;
	lw_usage_error(c->name, "%.*s%s%s%s%s", pre, t, star ? arg : "", star ? star + 1 : "",
		       named ? "" : " for --", named ? "" : o->name);
}

int lw_options_parse(const struct lw_command_spec *c, void *opts, int argc, char **argv, const char **arg)
{
	struct option longopts[MAX_OPTS + 1];
	size_t n = c->nopts < MAX_OPTS ? c->nopts : MAX_OPTS;
	for (size_t i = 0; i < n; i++)
		longopts[i] = (struct option){ c->opts[i].name, (int)c->opts[i].arg, NULL, 256 + (int)i };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	const char *words[2] = { NULL, NULL };
	int nwords = 0, maxwords = c->args == LW_CMD_TWO_ARGS ? 2 : c->args == LW_CMD_ONE_ARG ? 1 : 0;
	/* "-": words come back as 1, so PID may come before or after options;
	 * "+": stop at the command line, its options are its own. */
	const char *optstring = c->args == LW_CMD_COMMAND ? "+:" : "-:";
	opterr = 0;
	optind = 0;   /* glibc: full re-initialisation */
	int ch;
	while ((ch = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		if (ch == 1) {
			if (nwords == maxwords) {
				lw_usage_error(c->name, "unexpected argument '%s'", optarg);
				return -1;
			}
			words[nwords++] = optarg;
		} else if (ch == ':') {
			lw_usage_error(c->name, "missing argument for '%s'", argv[optind - 1]);
			return -1;
		} else if (ch >= 256 && ch < 256 + (int)n) {
			const struct lw_option *o = &c->opts[ch - 256];
			if (option_store(o, opts, optarg) < 0) {
				bad_value(c, o, optarg ? optarg : "");
				return -1;
			}
		} else {
			lw_usage_error(c->name, "unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	if (c->args == LW_CMD_COMMAND)
		return optind;
	for (; optind < argc; optind++) {   /* after "--" */
		if (nwords == maxwords) {
			lw_usage_error(c->name, "unexpected argument '%s'", argv[optind]);
			return -1;
		}
		words[nwords++] = argv[optind];
	}
	if (c->args == LW_CMD_TWO_ARGS && nwords < 2) {
		lw_usage_error(c->name, nwords ? "missing NEW" : "missing OLD and NEW");
		return -1;
	}
	if (c->args == LW_CMD_ONE_ARG && !nwords) {
		/* "PID|SEGMENT" reads "PID or SEGMENT" in a sentence */
		char what[64];
		size_t k = 0;
		for (const char *p = c->arg_name; *p && k + 5 < sizeof what; p++)
			k += (size_t)snprintf(what + k, sizeof what - k, "%s", *p == '|' ? " or " : (char[]){ *p, 0 });
		lw_usage_error(c->name, "missing %s", what);
		return -1;
	}
	for (int i = 0; arg && i < maxwords; i++)
		arg[i] = words[i];
	return argc;
}

/* "--name METAVAR", "--name[=METAVAR]" or "--name" into buf. */
static const char *option_form(const struct lw_option *o, char *buf, size_t len)
{
	if (!o->metavar)
		snprintf(buf, len, "--%s", o->name);
	else if (o->arg == LW_ARG_OPTIONAL)
		snprintf(buf, len, "--%s[=%s]", o->name, o->metavar);
	else
		snprintf(buf, len, "--%s %s", o->name, o->metavar);
	return buf;
}

void lw_options_synopsis(FILE *out, const struct lw_command_spec *c, const char *lead)
{
	char form[96];
	int col = fprintf(out, "%sleakwatch %s", lead, c->name);
	int indent = (int)strlen(lead) + (int)strlen("leakwatch ") + (int)strlen(c->name) + 1;
	if (c->args == LW_CMD_ONE_ARG || c->args == LW_CMD_TWO_ARGS)
		col += fprintf(out, " %s", c->arg_name);
	for (size_t i = 0; i < c->nopts; i++) {
		int w = (int)strlen(option_form(&c->opts[i], form, sizeof form)) + 3;
		if (col + w > 88)
			col = fprintf(out, "\n%*s", indent - 1, "") - 1;
		col += fprintf(out, " [%s]", form);
	}
	if (c->args == LW_CMD_COMMAND)
		fprintf(out, " %s", c->arg_name);
	fputc('\n', out);
}

void lw_options_help(FILE *out, const struct lw_command_spec *c)
{
	char form[96];
	fprintf(out, "options of %s:\n", c->name);
	for (size_t i = 0; i < c->nopts; i++) {
		const struct lw_option *o = &c->opts[i];
		int w = fprintf(out, "  %s", option_form(o, form, sizeof form));
		const char *h = o->help ? o->help : "";
		if (w >= 22) {
			fputc('\n', out);
			w = 0;
		}
		fprintf(out, "%*s", 22 - w, "");
		for (const char *p = h; *p; p++) {
			fputc(*p, out);
			if (*p == '\n')
				fprintf(out, "%22s", "");
		}
		fputc('\n', out);
	}
}
