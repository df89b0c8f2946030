/* SPDX-License-Identifier: MIT */
/*
 * Baselines without a process: the JSON reader (jsonread.h) on valid and
 * malformed input, and the diff (diff.h) of hand-built report documents —
 * growth, shrink, new and vanished stacks, keys by frames and never by
 * stack_id, groups of one key summed, unknown fields ignored.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "jsonread.h"
#include "util.h"

/* ---- the reader ---- */

static struct lw_jv parse_ok(const char *text)
{
	struct lw_jv v;
	char err[LW_ERR_MAX] = "";
	cr_assert_eq(lw_jv_parse(text, strlen(text), &v, err, sizeof err), 0, "%s: %s", text, err);
	return v;
}

Test(diff, reader_reads_values_members_and_escapes)
{
	struct lw_jv v = parse_ok(" {\"a\": [1, -2.5e1, 0, true, false, null, {}], \"s\": \"x\\n\\u00e9\\ud83d\\ude00\\/\","
				  " \"z\": {\"k\": \"v\"}, \"b\": 1E2} \n");
	cr_assert_eq(v.type, LW_JV_OBJ);
	cr_assert_eq(lw_jv_len(&v), 4);
	const struct lw_jv *a = lw_jv_get(&v, "a");
	cr_assert_eq(lw_jv_len(a), 7);
	cr_assert_eq(lw_jv_at(a, 0)->num, 1);
	cr_assert_eq(lw_jv_at(a, 1)->num, -25);
	cr_assert_eq(lw_jv_at(a, 3)->type, LW_JV_BOOL);
	cr_assert_eq(lw_jv_at(a, 3)->boolean, 1);
	cr_assert_eq(lw_jv_at(a, 4)->boolean, 0);
	cr_assert_eq(lw_jv_at(a, 5)->type, LW_JV_NULL);
	cr_assert_eq(lw_jv_at(a, 6)->type, LW_JV_OBJ);
	cr_assert_null(lw_jv_at(a, 7));
	cr_assert_str_eq(lw_jv_str(&v, "s"), "x\n\xc3\xa9\xf0\x9f\x98\x80/");
	cr_assert_str_eq(lw_jv_str(lw_jv_get(&v, "z"), "k"), "v");
	double b = 0;
	cr_assert_eq(lw_jv_num(&v, "b", &b), 0);
	cr_assert_eq(b, 100);
	cr_assert_null(lw_jv_get(&v, "missing"));
	cr_assert_null(lw_jv_str(&v, "a"), "not a string");
	cr_assert_eq(lw_jv_num(&v, "s", &b), -1);
	cr_assert_null(lw_jv_get(a, "a"), "an array has no members");
	lw_jv_free(&v);

	/* raw UTF-8 passes through; a bare value is a document too */
	v = parse_ok("\"caf\xc3\xa9 \xe2\x82\xac\"");
	cr_assert_str_eq(v.str, "caf\xc3\xa9 \xe2\x82\xac");
	lw_jv_free(&v);
	v = parse_ok("-0");
	cr_assert_eq(v.num, 0);
	lw_jv_free(&v);
}

Test(diff, reader_finds_members_of_a_large_object)
{
	size_t n = 5000, cap = n * 24 + 16, len = 0;
	char *text = malloc(cap);
	len += (size_t)snprintf(text + len, cap - len, "{");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", n - i, i);
	snprintf(text + len, cap - len, "}");
	struct lw_jv v = parse_ok(text);
	for (size_t i = 0; i < n; i++) {
		char key[32];
		double x = -1;
		snprintf(key, sizeof key, "k%zu", n - i);
		cr_assert_eq(lw_jv_num(&v, key, &x), 0, "%s", key);
		cr_assert_eq(x, (double)i);
	}
	lw_jv_free(&v);
	free(text);
}

Test(diff, reader_refuses_malformed_input_with_a_position)
{
	static const struct { const char *text; const char *why; } bad[] = {
		{ "", "end of input" },
		{ "   ", "end of input" },
		{ "{", "end of input" },
		{ "{\"a\":", "end of input" },
		{ "{\"a\":1", "end of input" },
		{ "[1,2", "end of input" },
		{ "\"abc", "end of input" },
		{ "[1,]", "unexpected ']'" },
		{ "{\"a\":1,}", "expected a string as object key" },
		{ "{a:1}", "expected a string as object key" },
		{ "{\"a\" 1}", "expected ':'" },
		{ "[1 2]", "expected ','" },
		{ "01", "leading zero" },
		{ "1.", "after '.'" },
		{ ".5", "unexpected '.'" },
		{ "+1", "unexpected '+'" },
		{ "1e", "exponent" },
		{ "1e999", "out of range" },
		{ "-", "expected a digit" },
		{ "nul", "unexpected 'n'" },
		{ "trueish", "text after" },
		{ "tru", "unexpected 't'" },
		{ "NaN", "unexpected 'N'" },
		{ "'a'", "unexpected" },
		{ "\"\\x\"", "unknown escape" },
		{ "\"\\u12\"", "four hex digits" },
		{ "\"\\ud800\"", "without its low half" },
		{ "\"\\ud800\\u0041\"", "without its low half" },
		{ "\"\\udc00\"", "lone low surrogate" },
		{ "\"\\u0000\"", "\\u0000" },
		{ "\"a\tb\"", "control character" },
		{ "\"\xff\"", "invalid UTF-8" },
		{ "\"\xc3\"", "invalid UTF-8" },
		{ "\"\xed\xa0\x80\"", "invalid UTF-8" },
		{ "\"\xc0\xaf\"", "invalid UTF-8" },
		{ "{\"a\":1,\"a\":2}", "duplicate key \"a\"" },
		{ "1 2", "text after" },
		{ "{} x", "text after" },
		{ "[1]\n]", "line 2, column 1" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct lw_jv v;
		char err[LW_ERR_MAX] = "";
		cr_assert_eq(lw_jv_parse(bad[i].text, strlen(bad[i].text), &v, err, sizeof err), -1, "accepted: %s",
			     bad[i].text);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: error '%s', wanted '%s'", bad[i].text, err,
				   bad[i].why);
		cr_assert_eq(v.type, LW_JV_NULL, "output zeroed");
		cr_assert_eq(v.n, 0);
	}
	/* length bounds the input: a NUL-less buffer is never read past */
	struct lw_jv v;
	char err[LW_ERR_MAX];
	cr_assert_eq(lw_jv_parse("[1,2]", 4, &v, err, sizeof err), -1);
	cr_assert_not_null(strstr(err, "end of input"), "%s", err);
}

Test(diff, reader_limits_depth_instead_of_recursing)
{
	size_t n = 100000;
	char *deep = malloc(2 * n + 1);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	struct lw_jv v;
	char err[LW_ERR_MAX] = "";
	cr_assert_eq(lw_jv_parse(deep, 2 * n, &v, err, sizeof err), -1);
	cr_assert_not_null(strstr(err, "nested deeper than"), "%s", err);
	/* at the limit it is fine */
	memset(deep, '[', LW_JV_MAX_DEPTH);
	memset(deep + LW_JV_MAX_DEPTH, ']', LW_JV_MAX_DEPTH);
	cr_assert_eq(lw_jv_parse(deep, 2 * LW_JV_MAX_DEPTH, &v, err, sizeof err), 0, "%s", err);
	lw_jv_free(&v);
	free(deep);
}

/* ---- hand-built reports ---- */

#define FRAME(fn, line) \
	"{\"addr\":\"0x" #line "\",\"function\":\"" fn "\",\"file\":\"/src/app.c\",\"line\":" #line \
	",\"module\":\"/bin/app\",\"module_offset\":\"0x10\",\"inlined\":false,\"build_id_mismatch\":false}"
#define MAIN_FRAME FRAME("main", 90)
#define HEAP_GROUP(id, count, bytes, frames) \
	"{\"class\":\"program\",\"count\":" #count ",\"bytes\":" #bytes ",\"stack_id\":" #id \
	",\"reach\":\"unreachable\",\"stack\":[" frames "]}"

/* a report document: pid, heap groups, socket groups, descriptor groups */
static char *report_doc(int pid, const char *heap_groups, const char *socket_groups, const char *fd_groups)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	fprintf(m, "{\"leakwatch\":1,\"segment\":\"/dev/shm/leakwatch.%d\",\"pid\":%d,\"command\":\"./app\","
		   "\"state\":\"running\",\"uptime_s\":%d.500,\"future_field\":{\"x\":[1,2]},\"kind\":\"all\"",
		pid, pid, pid % 100);
	if (socket_groups)
		fprintf(m, ",\"groups\":[%s]", socket_groups);
	if (fd_groups)
		fprintf(m, ",\"descriptors\":[%s]", fd_groups);
	if (heap_groups)
		fprintf(m, ",\"heap\":{\"mode\":\"full\",\"estimated\":false,\"groups\":[%s]}", heap_groups);
	fputc('}', m);
	fclose(m);
	return buf;
}

static void side_ok(struct lw_diff_side *s, const char *name, char *text)
{
	char err[LW_ERR_MAX] = "";
	cr_assert_eq(lw_diff_side_parse(s, name, text, strlen(text), err, sizeof err), 0, "%s: %s", name, err);
	free(text);
}

static const struct lw_diff_entry *entry_at(const struct lw_diff *d, enum lw_diff_kind k, const char *fn)
{
	for (size_t i = 0; i < d->k[k].nentries; i++) {
		const struct lw_diff_entry *e = &d->k[k].entries[i];
		const struct lw_diff_stack *st = e->new ? e->new : e->old;
		if (st->nframes && st->frames[0].function && !strcmp(st->frames[0].function, fn))
			return e;
	}
	return NULL;
}

Test(diff, heap_growth_shrink_new_vanished_keyed_by_frames)
{
	struct lw_diff_side old, new;
	/* the same stacks under other stack ids in NEW: ids must not matter */
	side_ok(&old, "old.json",
		report_doc(100,
			   HEAP_GROUP(1, 100, 6400, FRAME("grow", 10) "," MAIN_FRAME) ","
			   HEAP_GROUP(2, 30, 1440, FRAME("warmup", 20) "," MAIN_FRAME) ","
			   HEAP_GROUP(3, 5, 50, FRAME("gone", 30) "," MAIN_FRAME) ","
			   HEAP_GROUP(4, 7, 70, FRAME("steady", 40) "," MAIN_FRAME),
			   "", ""));
	side_ok(&new, "new.json",
		report_doc(100,
			   HEAP_GROUP(9, 7, 70, FRAME("steady", 40) "," MAIN_FRAME) ","
			   HEAP_GROUP(8, 200, 12800, FRAME("grow", 10) "," MAIN_FRAME) ","
			   HEAP_GROUP(7, 20, 960, FRAME("warmup", 20) "," MAIN_FRAME) ","
			   HEAP_GROUP(6, 20, 640, FRAME("later", 50) "," MAIN_FRAME),
			   "", ""));
	new.uptime_s = old.uptime_s + 42;
	struct lw_diff d;
	cr_assert_eq(lw_diff_compute(&d, &old, &new, LW_KIND_ALL, 1), 0);
	const struct lw_diff_kind_result *h = &d.k[LW_DK_HEAP];
	cr_assert(h->compared);
	cr_assert_eq(h->nstatus[LW_DS_GREW], 1);
	cr_assert_eq(h->nstatus[LW_DS_NEW], 1);
	cr_assert_eq(h->nstatus[LW_DS_SHRANK], 1);
	cr_assert_eq(h->nstatus[LW_DS_VANISHED], 1);
	cr_assert_eq(h->nstatus[LW_DS_SAME], 1);
	cr_assert_eq(h->nentries, 4, "unchanged stacks are not listed");

	const struct lw_diff_entry *g = entry_at(&d, LW_DK_HEAP, "grow");
	cr_assert_not_null(g);
	cr_assert_eq(g->status, LW_DS_GREW);
	cr_assert_eq(g->dcount, 100);
	cr_assert_eq(g->dbytes, 6400);
	cr_assert_eq(g->old->count, 100);
	cr_assert_eq(g->new->count, 200);
	cr_assert_eq(h->entries[0].new, g->new, "largest growth first");
	cr_assert_eq(h->entries[1].status, LW_DS_NEW);
	cr_assert_eq(entry_at(&d, LW_DK_HEAP, "later")->dcount, 20);
	cr_assert_eq(entry_at(&d, LW_DK_HEAP, "warmup")->status, LW_DS_SHRANK);
	cr_assert_eq(entry_at(&d, LW_DK_HEAP, "warmup")->dcount, -10);
	const struct lw_diff_entry *v = entry_at(&d, LW_DK_HEAP, "gone");
	cr_assert_eq(v->status, LW_DS_VANISHED);
	cr_assert_null(v->new);
	cr_assert_eq(h->entries[3].old, v->old, "vanished last");
	cr_assert_eq(h->old_count, 142);
	cr_assert_eq(h->new_count, 247);
	cr_assert(lw_diff_grew(&d));

	/* the text names the growth and the frames */
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	cr_assert_eq(lw_render_diff_text(m, &d), 0);
	fclose(m);
	cr_assert_not_null(strstr(text, "HEAP  +100 blocks, +6.2 KiB  (100 -> 200 blocks, 6.2 KiB -> 12.5 KiB)\n"
					"  allocated at  grow  /src/app.c:10\n"
					"                main  /src/app.c:90\n"), "%s", text);
	cr_assert_not_null(strstr(text, "HEAP  +20 blocks, +640 B  (new: 0 -> 20 blocks"), "%s", text);
	cr_assert_null(strstr(text, "warmup"), "shrunk stacks are counted, not listed: %s", text);
	cr_assert_not_null(strstr(text, "heap: 1 stack grew, 1 new, 1 shrank, 1 vanished, 1 unchanged; 142 -> 247 blocks (+105)"),
			   "%s", text);
	cr_assert_not_null(strstr(text, "(42s later)"), "same pid: the interval from the uptimes: %s", text);
	cr_assert_not_null(strstr(text, "leakwatch: 2 stacks grew (heap 2)\n"), "%s", text);
	free(text);
	lw_diff_free(&d);

	/* --min-growth 150: the +100 and the new +20 are below it */
	cr_assert_eq(lw_diff_compute(&d, &old, &new, LW_KIND_HEAP, 150), 0);
	cr_assert_eq(d.k[LW_DK_HEAP].nstatus[LW_DS_GREW], 0);
	cr_assert_eq(d.k[LW_DK_HEAP].nstatus[LW_DS_NEW], 0);
	cr_assert_not(lw_diff_grew(&d));
	lw_diff_free(&d);

	/* the other way round: growth becomes shrink */
	cr_assert_eq(lw_diff_compute(&d, &new, &old, LW_KIND_ALL, 1), 0);
	cr_assert_eq(entry_at(&d, LW_DK_HEAP, "grow")->status, LW_DS_SHRANK);
	cr_assert_eq(entry_at(&d, LW_DK_HEAP, "later")->status, LW_DS_VANISHED);
	cr_assert_eq(entry_at(&d, LW_DK_HEAP, "gone")->status, LW_DS_NEW);
	lw_diff_free(&d);
	lw_diff_side_free(&old);
	lw_diff_side_free(&new);
}

Test(diff, same_key_groups_are_summed_and_callers_tell_stacks_apart)
{
	struct lw_diff_side old, new;
	side_ok(&old, "old",
		report_doc(1, HEAP_GROUP(1, 10, 100, FRAME("leaf", 5) "," FRAME("via_a", 15)), "", ""));
	/* NEW: the via_a stack in two groups (two classes, say), and a via_b stack */
	side_ok(&new, "new",
		report_doc(2,
			   HEAP_GROUP(1, 10, 100, FRAME("leaf", 5) "," FRAME("via_a", 15)) ","
			   HEAP_GROUP(2, 5, 50, FRAME("leaf", 5) "," FRAME("via_a", 15)) ","
			   HEAP_GROUP(3, 4, 40, FRAME("leaf", 5) "," FRAME("via_b", 25)),
			   "", ""));
	cr_assert_eq(new.nstacks, 2);
	struct lw_diff d;
	cr_assert_eq(lw_diff_compute(&d, &old, &new, LW_KIND_HEAP, 1), 0);
	cr_assert_eq(d.k[LW_DK_HEAP].nentries, 2);
	const struct lw_diff_entry *e = &d.k[LW_DK_HEAP].entries[0];
	cr_assert_eq(e->status, LW_DS_GREW);
	cr_assert_eq(e->dcount, 5);
	cr_assert_str_eq(e->new->frames[1].function, "via_a");
	cr_assert_eq(d.k[LW_DK_HEAP].entries[1].status, LW_DS_NEW);
	cr_assert_str_eq(d.k[LW_DK_HEAP].entries[1].new->frames[1].function, "via_b");
	cr_assert_eq(d.k[LW_DK_SOCKET].wanted, 0, "--kind heap");
	cr_assert_eq(d.k[LW_DK_SOCKET].compared, 0, "both have sockets, but --kind heap");
	lw_diff_free(&d);
	lw_diff_side_free(&old);
	lw_diff_side_free(&new);
}

Test(diff, bytes_alone_grow_and_frames_without_function_key_by_module)
{
	struct lw_diff_side old, new;
#define MODFRAME(off) \
	"{\"addr\":\"0x7f00" off "\",\"function\":null,\"file\":null,\"line\":null,\"module\":\"/lib/libx.so\"," \
	"\"module_offset\":\"0x" off "\",\"inlined\":false,\"build_id_mismatch\":false}"
	side_ok(&old, "old", report_doc(1, HEAP_GROUP(1, 3, 300, MODFRAME("40")) "," HEAP_GROUP(2, 1, 10, MODFRAME("80")), NULL, NULL));
	side_ok(&new, "new", report_doc(1, HEAP_GROUP(5, 3, 900, MODFRAME("40")) "," HEAP_GROUP(6, 1, 10, MODFRAME("80")), NULL, NULL));
	struct lw_diff d;
	cr_assert_eq(lw_diff_compute(&d, &old, &new, LW_KIND_ALL, 1), 0);
	cr_assert_eq(d.k[LW_DK_HEAP].nstatus[LW_DS_GREW], 1, "same count, more bytes: a growing buffer");
	cr_assert_eq(d.k[LW_DK_HEAP].nstatus[LW_DS_SAME], 1);
	cr_assert_eq(d.k[LW_DK_HEAP].entries[0].dbytes, 600);
	cr_assert_eq(d.k[LW_DK_SOCKET].compared, 0, "no socket section on either side");
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	lw_render_diff_text(m, &d);
	fclose(m);
	cr_assert_not_null(strstr(text, "HEAP  +0 blocks, +600 B  (3 -> 3 blocks, 300 B -> 900 B)\n"
					"  allocated at  libx.so+0x40\n"), "%s", text);
	free(text);
	lw_diff_free(&d);
	lw_diff_side_free(&old);
	lw_diff_side_free(&new);
}

#define SOCK_GROUP(id, count, endpoint, frames) \
	"{\"kind\":\"socket\",\"count\":" #count ",\"endpoint\":\"" endpoint "\",\"stack_id\":" #id \
	",\"stack\":[" frames "],\"verdict\":\"LEAK SUSPECT\"}"
#define FD_GROUP(id, kind, count, frames) \
	"{\"kind\":\"" kind "\",\"count\":" #count ",\"stack_id\":" #id ",\"stack\":[" frames "]}"

Test(diff, sockets_and_descriptors_by_count)
{
	struct lw_diff_side old, new;
	side_ok(&old, "old",
		report_doc(1, NULL, SOCK_GROUP(1, 2, "1.2.3.4:5432", FRAME("db_connect", 60) "," MAIN_FRAME),
			   FD_GROUP(3, "pipe", 2, FRAME("spawn", 70))));
	/* two endpoints from one stack: one key */
	side_ok(&new, "new",
		report_doc(1, NULL,
			   SOCK_GROUP(4, 3, "1.2.3.4:5432", FRAME("db_connect", 60) "," MAIN_FRAME) ","
			   SOCK_GROUP(5, 2, "1.2.3.5:5432", FRAME("db_connect", 60) "," MAIN_FRAME),
			   FD_GROUP(6, "pipe", 2, FRAME("spawn", 70)) "," FD_GROUP(7, "file", 4, FRAME("spawn", 70))));
	struct lw_diff d;
	cr_assert_eq(lw_diff_compute(&d, &old, &new, LW_KIND_ALL, 1), 0);
	cr_assert_eq(d.k[LW_DK_HEAP].compared, 0, "no heap on either side");
	const struct lw_diff_kind_result *s = &d.k[LW_DK_SOCKET], *f = &d.k[LW_DK_FD];
	cr_assert_eq(s->nentries, 1);
	cr_assert_eq(s->entries[0].status, LW_DS_GREW);
	cr_assert_eq(s->entries[0].dcount, 3);
	cr_assert_eq(f->nstatus[LW_DS_SAME], 1, "pipes unchanged");
	cr_assert_eq(f->nstatus[LW_DS_NEW], 1, "files from the same stack are another key");
	cr_assert_str_eq(f->entries[0].new->fd_kind, "file");
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	lw_render_diff_text(m, &d);
	fclose(m);
	cr_assert_not_null(strstr(text, "SOCKETS  +3 sockets  (2 -> 5)\n  opened at    db_connect  /src/app.c:60\n"),
			   "%s", text);
	cr_assert_not_null(strstr(text, "FDS  +4 descriptors (file)  (new: 0 -> 4)\n"), "%s", text);
	free(text);

	/* JSON output parses back and says the same */
	m = open_memstream(&text, &len);
	cr_assert_eq(lw_render_diff_json(m, &d), 0);
	fclose(m);
	struct lw_jv j;
	char err[LW_ERR_MAX];
	cr_assert_eq(lw_jv_parse(text, len, &j, err, sizeof err), 0, "%s: %s", err, text);
	cr_assert_eq(lw_jv_bool(&j, "grew", 0), 1);
	const struct lw_jv *kinds = lw_jv_get(&j, "kinds");
	cr_assert_eq(lw_jv_len(kinds), 3);
	const struct lw_jv *sk = lw_jv_at(kinds, 1);
	cr_assert_str_eq(lw_jv_str(sk, "kind"), "sockets");
	const struct lw_jv *st = lw_jv_at(lw_jv_get(sk, "stacks"), 0);
	double x;
	cr_assert_eq(lw_jv_num(st, "count_delta", &x), 0);
	cr_assert_eq(x, 3);
	cr_assert_str_eq(lw_jv_str(st, "status"), "grew");
	cr_assert_str_eq(lw_jv_str(lw_jv_at(lw_jv_get(st, "stack"), 0), "function"), "db_connect");
	cr_assert_eq(lw_jv_get(st, "bytes_delta")->type, LW_JV_NULL);
	lw_jv_free(&j);
	free(text);
	lw_diff_free(&d);
	lw_diff_side_free(&old);
	lw_diff_side_free(&new);
}

Test(diff, nothing_grew_between_equal_reports)
{
	struct lw_diff_side a, b;
	side_ok(&a, "a", report_doc(1, HEAP_GROUP(1, 100, 6400, FRAME("grow", 10)), "", ""));
	side_ok(&b, "b", report_doc(1, HEAP_GROUP(2, 100, 6400, FRAME("grow", 10)), "", ""));
	struct lw_diff d;
	cr_assert_eq(lw_diff_compute(&d, &a, &b, LW_KIND_ALL, 1), 0);
	cr_assert_not(lw_diff_grew(&d));
	cr_assert_eq(d.k[LW_DK_HEAP].nentries, 0);
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	lw_render_diff_text(m, &d);
	fclose(m);
	cr_assert_not_null(strstr(text, "leakwatch: nothing grew\n"), "%s", text);
	free(text);
	lw_diff_free(&d);
	lw_diff_side_free(&a);
	lw_diff_side_free(&b);
}

Test(diff, documents_that_are_not_reports_are_refused)
{
	static const struct { const char *text; const char *why; } bad[] = {
		{ "[1]", "not a leakwatch report (not an object)" },
		{ "{\"name\":\"x\"}", "no \"leakwatch\" member" },
		{ "{\"leakwatch\":2,\"pid\":1}", "format version 2" },
		{ "{\"leakwatch\":1}", "no \"pid\" member" },
		{ "{\"leakwatch\":1,\"pid\":1,\"heap\":{\"mode\":\"full\",\"groups\":[{\"bytes\":1,\"stack\":[]}]}}",
		  "heap group 0 has no count" },
		{ "{\"leakwatch\":1,\"pid\":1,\"heap\":{\"mode\":\"full\",\"groups\":[{\"count\":1,\"bytes\":1}]}}",
		  "heap group 0 has no stack" },
		{ "{\"leakwatch\":1,\"pid\":1,\"groups\":[{\"count\":1,\"stack\":[1]}]}", "frame 0 is not an object" },
		{ "{\"leakwatch\":1,\"pid\":1,\"groups\":{}}", "socket groups is not an array" },
		{ "{\"leakwatch\":1,\"processes\":[{\"leakwatch\":1,\"pid\":1},{\"leakwatch\":1,\"pid\":2}]}",
		  "a run report of 2 processes" },
		{ "{\"leakwatch\":1,\"pid\":1,\"heap\":", "not valid JSON: unexpected end of input" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct lw_diff_side s;
		char err[LW_ERR_MAX] = "";
		cr_assert_eq(lw_diff_side_parse(&s, "x", bad[i].text, strlen(bad[i].text), err, sizeof err), -1,
			     "accepted %s", bad[i].text);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: '%s', wanted '%s'", bad[i].text, err, bad[i].why);
	}
	/* a run document of one process is that process's report */
	struct lw_diff_side s;
	side_ok(&s, "run.json",
		strdup("{\"leakwatch\":1,\"run\":{},\"processes\":[{\"leakwatch\":1,\"pid\":7,\"heap\":{\"mode\":\"full\","
		       "\"groups\":[" HEAP_GROUP(1, 2, 20, FRAME("f", 1)) "]}}]}"));
	cr_assert_eq(s.pid, 7);
	cr_assert_eq(s.nstacks, 1);
	cr_assert(s.covers[LW_DK_HEAP]);
	cr_assert_not(s.covers[LW_DK_SOCKET]);
	lw_diff_side_free(&s);
	/* heap tracking off: the heap is not covered */
	side_ok(&s, "off", strdup("{\"leakwatch\":1,\"pid\":7,\"heap\":{\"mode\":\"off\",\"groups\":[]}}"));
	cr_assert_not(s.covers[LW_DK_HEAP]);
	lw_diff_side_free(&s);
}

/* Every prefix of a real-looking report is refused cleanly (ASan checks the reads). */
Test(diff, every_truncation_of_a_report_is_an_error)
{
	char *doc = report_doc(42, HEAP_GROUP(1, 100, 6400, FRAME("grow", 10) "," MAIN_FRAME),
			       SOCK_GROUP(2, 1, "\\u00e9:1", FRAME("c", 3)), FD_GROUP(3, "file", 1, FRAME("o", 4)));
	size_t n = strlen(doc);
	for (size_t len = 0; len < n; len++) {
		char *cut = malloc(len ? len : 1);
		memcpy(cut, doc, len);
		struct lw_diff_side s;
		char err[LW_ERR_MAX] = "";
		cr_assert_eq(lw_diff_side_parse(&s, "cut", cut, len, err, sizeof err), -1, "prefix %zu accepted", len);
		cr_assert_neq(err[0], '\0');
		free(cut);
	}
	struct lw_diff_side s;
	side_ok(&s, "whole", doc);
	cr_assert_eq(s.nstacks, 3);
	lw_diff_side_free(&s);
}
