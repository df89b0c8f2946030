/* SPDX-License-Identifier: MIT */
/*
 * render_github.c — GitHub Actions annotations: under a workflow
 * (GITHUB_ACTIONS=true) `run` and `report` print one workflow command per
 * leak group,
 *
 *   ::error file=tests/leak.c,line=59,title=leakwatch LW001 leaked-socket::1 socket left open ...
 *
 * which the runner turns into an annotation on that line of the pull
 * request and of the job's summary.  The groups, sites and messages are the
 * SARIF document's (render_sarif.c: lw_ci_leaks).  file and line are only
 * given for a site in the repository (the base directory): GitHub shows an
 * annotation of a file it does not have at the job alone anyway, and a path
 * outside the checkout would name nothing there.
 */
#include <stdlib.h>
#include <string.h>

#include "render_sarif.h"

int lw_github_wanted(void)
{
	const char *v = getenv("GITHUB_ACTIONS");
	return v && strcmp(v, "true") == 0;
}

/* GitHub's toolkit (escapeData / escapeProperty of @actions/core): the runner
 * undoes exactly these, so the text reads as it was. */
static char *escape(const char *s, char *buf, size_t len, int property)
{
	size_t o = 0;
	if (!len)
		return buf;
	for (const char *p = s ? s : ""; *p; p++) {
		const char *rep = NULL;
		switch (*p) {
		case '%': rep = "%25"; break;
		case '\r': rep = "%0D"; break;
		case '\n': rep = "%0A"; break;
		case ':': rep = property ? "%3A" : NULL; break;
		case ',': rep = property ? "%2C" : NULL; break;
		}
		size_t n = rep ? 3 : 1;
		if (o + n >= len)
			break;   /* cut whole: never half an escape */
		if (rep)
			memcpy(buf + o, rep, 3);
		else
			buf[o] = *p;
		o += n;
	}
	buf[o] = '\0';
	return buf;
}

char *lw_github_escape_data(const char *s, char *buf, size_t len)
{
	return escape(s, buf, len, 0);
}

char *lw_github_escape_property(const char *s, char *buf, size_t len)
{
	return escape(s, buf, len, 1);
}

struct annot {
	FILE *out;
	size_t n;
};

static void annotate(void *ctx, struct lw_report *r, const struct lw_ci_leak *l)
{
	(void)r;
	struct annot *a = ctx;
	char title[96], esc_title[3 * sizeof title], esc_file[3 * PATH_MAX], msg[3 * sizeof l->message];
	snprintf(title, sizeof title, "leakwatch %s %s", lw_ci_rule_id(l->rule), lw_ci_rule_name(l->rule));
	fprintf(a->out, "::%s ", l->warning ? "warning" : "error");
	if (l->site.in_base && l->site.path[0]) {
		fprintf(a->out, "file=%s,", lw_github_escape_property(l->site.path, esc_file, sizeof esc_file));
		if (l->site.line > 0)
			fprintf(a->out, "line=%d,", l->site.line);
	}
	fprintf(a->out, "title=%s::%s\n", lw_github_escape_property(title, esc_title, sizeof esc_title),
		lw_github_escape_data(l->message, msg, sizeof msg));
	a->n++;
}

size_t lw_github_annotations(FILE *out, struct lw_report *r, int left_behind)
{
	char base[PATH_MAX];
	struct annot a = { out, 0 };
	lw_ci_base_dir(base, sizeof base);
	lw_ci_leaks(r, left_behind, base, annotate, &a);
	return a.n;
}
