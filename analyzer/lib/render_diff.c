/* SPDX-License-Identifier: MIT */
/*
 * render_diff.c — the output of `leakwatch diff` and `report --baseline`
 * (diff.h): text for people, JSON (docs/report-format.md, "diff") for tools.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diff.h"
#include "json.h"
#include "names.h"
#include "present.h"
#include "render.h"

/* The time from OLD to NEW when both describe one process image, else -1. */
static double diff_interval(const struct lw_diff *d)
{
	const struct lw_diff_side *o = d->old, *n = d->new;
	if (o->pid && o->pid == n->pid && o->uptime_s >= 0 && n->uptime_s >= o->uptime_s)
		return n->uptime_s - o->uptime_s;
	return -1;
}

static int estimated(const struct lw_diff *d)
{
	return d->old->estimated || d->new->estimated;
}

/* ---- text ---- */

static void text_side(FILE *out, const char *label, const struct lw_diff_side *s, double interval)
{
	char up[32], when[64];
	fprintf(out, "%-4s ", label);
	lw_present_put_safe(out, s->source);
	fputs(s->from_segment ? " (segment, reported now)" : "", out);
	if (s->pid)
		fprintf(out, ": pid %d", s->pid);
	if (s->command) {
		fputs(" (", out);
		lw_present_put_safe(out, s->command);
		fputc(')', out);
	}
	if (s->state) {
		fputc(' ', out);
		lw_present_put_safe(out, s->state);
	}
	if (s->uptime_s >= 0)
		fprintf(out, ", up %s", lw_duration_format((uint64_t)(s->uptime_s * 1e9), up, sizeof up));
	time_t t = (time_t)s->taken;
	struct tm tm;
	if (s->taken > 0 && localtime_r(&t, &tm) && strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm))
		fprintf(out, ", taken %s", when);
	if (interval >= 0)
		fprintf(out, " (%s later)", lw_duration_format((uint64_t)(interval * 1e9), up, sizeof up));
	fputc('\n', out);
}

/* "+6.3 KiB", "-512 B" */
static char *bytes_delta(double v, char *buf, size_t len)
{
	char b[32];
	snprintf(buf, len, "%s%s", v < 0 ? "-" : "+", lw_bytes_format(fabs(v), b, sizeof b));
	return buf;
}

static const char *const kind_tag[LW_DK_N] = { "HEAP", "SOCKETS", "FDS" };
static const char *const kind_unit[LW_DK_N] = { "block", "socket", "descriptor" };
static const char *const kind_label[LW_DK_N] = { "allocated at", "opened at", "opened at" };

static void text_entry(FILE *out, const struct lw_diff *d, enum lw_diff_kind k, const struct lw_diff_entry *e,
		       const char *cwd)
{
	const char *est = k == LW_DK_HEAP && estimated(d) ? "~" : "";
	double oc = e->old ? e->old->count : 0, nc = e->new ? e->new->count : 0;
	const struct lw_diff_stack *st = e->new ? e->new : e->old;
	fprintf(out, "%s  %s%+.0f %s%s", kind_tag[k], est, e->dcount, kind_unit[k], fabs(e->dcount) == 1 ? "" : "s");
	if (k == LW_DK_HEAP) {
		char b[48];
		fprintf(out, ", %s%s", est, bytes_delta(e->dbytes, b, sizeof b));
	}
	if (st->fd_kind) {
		fputs(" (", out);
		lw_present_put_safe(out, st->fd_kind);
		fputc(')', out);
	}
	fprintf(out, "  (%s%s%.0f -> %.0f", e->status == LW_DS_NEW ? "new: " : "", est, oc, nc);
	if (k == LW_DK_HEAP) {
		char b1[32], b2[32];
		fprintf(out, " blocks, %s%s -> %s%s", est, lw_bytes_format(e->old ? e->old->bytes : 0, b1, sizeof b1),
			est, lw_bytes_format(e->new ? e->new->bytes : 0, b2, sizeof b2));
	}
	fputs(")\n", out);
	lw_render_text_frames(out, st->frames, st->nframes, kind_label[k], k == LW_DK_HEAP ? 13 : 12, cwd, "");
}

static void text_kind(FILE *out, const struct lw_diff *d, enum lw_diff_kind k, const char *cwd)
{
	const struct lw_diff_kind_result *kr = &d->k[k];
	const char *est = k == LW_DK_HEAP && estimated(d) ? "~" : "";
	size_t nstacks = 0;
	for (int s = 0; s <= LW_DS_SAME; s++)
		nstacks += kr->nstatus[s];
	if (!nstacks) {
		fprintf(out, "%s: none on either side\n", lw_diff_kind_name(k));
		return;
	}
	for (size_t i = 0; i < kr->nentries; i++)
		if (kr->entries[i].status == LW_DS_GREW || kr->entries[i].status == LW_DS_NEW)
			text_entry(out, d, k, &kr->entries[i], cwd);
	fprintf(out, "%s: %zu stack%s grew, %zu new, %zu shrank, %zu vanished, %zu unchanged; %s%.0f -> %s%.0f %ss (%s%+.0f)",
		lw_diff_kind_name(k), kr->nstatus[LW_DS_GREW], kr->nstatus[LW_DS_GREW] == 1 ? "" : "s",
		kr->nstatus[LW_DS_NEW], kr->nstatus[LW_DS_SHRANK], kr->nstatus[LW_DS_VANISHED],
		kr->nstatus[LW_DS_SAME], est, kr->old_count, est, kr->new_count, kind_unit[k], est,
		kr->new_count - kr->old_count);
	if (k == LW_DK_HEAP) {
		char b1[32], b2[32], b3[48];
		fprintf(out, ", %s%s -> %s%s (%s%s)", est, lw_bytes_format(kr->old_bytes, b1, sizeof b1), est,
			lw_bytes_format(kr->new_bytes, b2, sizeof b2), est,
			bytes_delta(kr->new_bytes - kr->old_bytes, b3, sizeof b3));
	}
	fputc('\n', out);
}

int lw_render_diff_text(FILE *out, const struct lw_diff *d)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	text_side(out, "old", d->old, -1);
	text_side(out, "new", d->new, diff_interval(d));
	if (estimated(d))
		fputs("heap: sampled; numbers marked ~ are estimates\n", out);
	if (d->min_growth > 1)
		fprintf(out, "(stacks that grew by fewer than %.0f are counted as unchanged)\n", d->min_growth);
	size_t grew = 0;
	for (int k = 0; k < LW_DK_N; k++) {
		const struct lw_diff_kind_result *kr = &d->k[k];
		if (!kr->compared) {
			if (kr->wanted && d->old->covers[k] != d->new->covers[k])
				fprintf(out, "note: %s not compared: %s has none (heap tracking off, or reported with another --kind)\n",
					lw_diff_kind_name(k), d->old->covers[k] ? "new" : "old");
			continue;
		}
		text_kind(out, d, (enum lw_diff_kind)k, cwd);
		grew += kr->nstatus[LW_DS_GREW] + kr->nstatus[LW_DS_NEW];
	}
	if (grew) {
		fprintf(out, "leakwatch: %zu stack%s grew (", grew, grew == 1 ? "" : "s");
		int first = 1;
		for (int k = 0; k < LW_DK_N; k++) {
			size_t n = d->k[k].nstatus[LW_DS_GREW] + d->k[k].nstatus[LW_DS_NEW];
			if (d->k[k].compared && n) {
				fprintf(out, "%s%s %zu", first ? "" : ", ", lw_diff_kind_name(k), n);
				first = 0;
			}
		}
		fputs(")\n", out);
	} else {
		fputs("leakwatch: nothing grew\n", out);
	}
	return ferror(out) ? -1 : 0;
}

/* ---- JSON ---- */

static void json_side(struct lw_json *j, const char *key, const struct lw_diff_side *s)
{
	lw_json_begin_object(j, key);
	lw_json_str(j, "source", s->source);
	lw_json_str(j, "type", s->from_segment ? "segment" : "report");
	if (s->pid)
		lw_json_int(j, "pid", s->pid);
	else
		lw_json_null(j, "pid");
	lw_json_str(j, "command", s->command);
	lw_json_str(j, "state", s->state);
	if (s->uptime_s >= 0)
		lw_json_fixed3(j, "uptime_s", s->uptime_s);
	else
		lw_json_null(j, "uptime_s");
	if (s->taken > 0)
		lw_json_int(j, "taken_unix_s", s->taken);
	else
		lw_json_null(j, "taken_unix_s");
	lw_json_begin_array(j, "covers");
	for (int k = 0; k < LW_DK_N; k++)
		if (s->covers[k])
			lw_json_str(j, NULL, lw_diff_kind_name(k));
	lw_json_end_array(j);
	lw_json_bool(j, "estimated", s->estimated);
	lw_json_end_object(j);
}

static void json_entry(struct lw_json *j, enum lw_diff_kind k, const struct lw_diff_entry *e)
{
	const struct lw_diff_stack *st = e->new ? e->new : e->old;
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "status", lw_diff_status_name(e->status));
	lw_json_str(j, "fd_kind", st->fd_kind);
	lw_json_count(j, "old_count", e->old ? e->old->count : 0);
	lw_json_count(j, "new_count", e->new ? e->new->count : 0);
	lw_json_int(j, "count_delta", llround(e->dcount));
	if (k == LW_DK_HEAP) {
		lw_json_count(j, "old_bytes", e->old ? e->old->bytes : 0);
		lw_json_count(j, "new_bytes", e->new ? e->new->bytes : 0);
		lw_json_int(j, "bytes_delta", llround(e->dbytes));
	} else {
		lw_json_null(j, "old_bytes");
		lw_json_null(j, "new_bytes");
		lw_json_null(j, "bytes_delta");
	}
	lw_render_json_frames(j, "stack", st->frames, st->nframes);
	lw_json_end_object(j);
}

static void json_kind(struct lw_json *j, const struct lw_diff *d, enum lw_diff_kind k)
{
	const struct lw_diff_kind_result *kr = &d->k[k];
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "kind", lw_diff_kind_name(k));
	lw_json_bool(j, "compared", kr->compared);
	lw_json_bool(j, "estimated", k == LW_DK_HEAP && estimated(d));
	lw_json_count(j, "old_count", kr->old_count);
	lw_json_count(j, "new_count", kr->new_count);
	lw_json_int(j, "count_delta", llround(kr->new_count - kr->old_count));
	if (k == LW_DK_HEAP) {
		lw_json_count(j, "old_bytes", kr->old_bytes);
		lw_json_count(j, "new_bytes", kr->new_bytes);
		lw_json_int(j, "bytes_delta", llround(kr->new_bytes - kr->old_bytes));
	} else {
		lw_json_null(j, "old_bytes");
		lw_json_null(j, "new_bytes");
		lw_json_null(j, "bytes_delta");
	}
	lw_json_begin_object(j, "stacks_by_status");
	for (int s = 0; s <= LW_DS_SAME; s++)
		lw_json_uint(j, lw_diff_status_name((enum lw_diff_status)s), kr->nstatus[s]);
	lw_json_end_object(j);
	lw_json_begin_array(j, "stacks");
	for (size_t i = 0; i < kr->nentries; i++)
		json_entry(j, k, &kr->entries[i]);
	lw_json_end_array(j);
	lw_json_end_object(j);
}

int lw_render_diff_json(FILE *out, const struct lw_diff *d)
{
	struct lw_json j;
	lw_json_init(&j, out);
	lw_json_begin_object(&j, NULL);
	lw_json_int(&j, "leakwatch_diff", 1);
	json_side(&j, "old", d->old);
	json_side(&j, "new", d->new);
	double iv = diff_interval(d);
	if (iv >= 0)
		lw_json_fixed3(&j, "interval_s", iv);
	else
		lw_json_null(&j, "interval_s");
	lw_json_count(&j, "min_growth", d->min_growth);
	lw_json_bool(&j, "grew", lw_diff_grew(d));
	lw_json_begin_array(&j, "kinds");
	for (int k = 0; k < LW_DK_N; k++)
		if (d->k[k].wanted)
			json_kind(&j, d, (enum lw_diff_kind)k);
	lw_json_end_array(&j);
	lw_json_end_object(&j);
	return lw_json_error(&j);
}
