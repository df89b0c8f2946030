/* SPDX-License-Identifier: MIT */
/*
 * docs/report-schema.json against real output: `run --format json` of two
 * fixtures (a socket leak, a heap leak), `report --format json` of their kept
 * segments with each --kind and --all, and `ps --format json`.
 *
 * The validator below covers exactly the JSON Schema keywords the document
 * uses ($ref to #/$defs, type (one or a list), properties, required,
 * additionalProperties (false or a schema), items, enum, minimum); an
 * unknown keyword fails the test, so the schema cannot silently outgrow it.
 * A C validator instead of python3-jsonschema: no dependency that a
 * pyenv/venv python3 on PATH may not see.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>

#include "lib/json.h"
#include "lib/testlib.h"
#include "lib/analyzer.h"
#include "lib/pgtest.h"

static struct tj *g_schema;

static int type_is(const struct tj *v, const char *t)
{
	if (!strcmp(t, "null")) return v->type == TJ_NULL;
	if (!strcmp(t, "boolean")) return v->type == TJ_BOOL;
	if (!strcmp(t, "string")) return v->type == TJ_STR;
	if (!strcmp(t, "object")) return v->type == TJ_OBJ;
	if (!strcmp(t, "array")) return v->type == TJ_ARR;
	if (!strcmp(t, "number")) return v->type == TJ_NUM;
	if (!strcmp(t, "integer")) return v->type == TJ_NUM && v->num == floor(v->num);
	return 0;
}

static int same_value(const struct tj *a, const struct tj *b)
{
	if (a->type != b->type)
		return 0;
	if (a->type == TJ_STR)
		return !strcmp(a->str, b->str);
	if (a->type == TJ_NUM || a->type == TJ_BOOL)
		return a->num == b->num;
	return a->type == TJ_NULL;
}

/* 0 when v matches schema s; else 1 with the failing path and reason in why. */
static int check(const struct tj *s, const struct tj *v, const char *path, char *why, size_t len)
{
	char sub[512];
	if (s->type != TJ_OBJ) {
		snprintf(why, len, "%s: schema is not an object", path);
		return 1;
	}
	for (size_t i = 0; i < s->n; i++) {
		const char *k = s->keys[i];
		const struct tj *a = s->items[i];
		if (!strcmp(k, "$ref")) {
			cr_assert(a->type == TJ_STR && !strncmp(a->str, "#/$defs/", 8), "%s: $ref %s", path, a->str);
			const struct tj *d = tj_get(tj_get(g_schema, "$defs"), a->str + 8);
			cr_assert_not_null(d, "%s: no $defs entry %s", path, a->str);
			if (check(d, v, path, why, len))
				return 1;
		} else if (!strcmp(k, "type")) {
			int ok = 0;
			if (a->type == TJ_STR)
				ok = type_is(v, a->str);
			for (size_t t = 0; a->type == TJ_ARR && t < a->n; t++)
				ok |= type_is(v, a->items[t]->str);
			if (!ok) {
				snprintf(why, len, "%s: wrong type", path);
				return 1;
			}
		} else if (!strcmp(k, "enum")) {
			int ok = 0;
			for (size_t t = 0; t < a->n; t++)
				ok |= same_value(a->items[t], v);
			if (!ok) {
				snprintf(why, len, "%s: value not in enum (%s)", path, v->type == TJ_STR ? v->str : "?");
				return 1;
			}
		} else if (!strcmp(k, "minimum")) {
			if (v->type == TJ_NUM && v->num < a->num) {
				snprintf(why, len, "%s: below minimum", path);
				return 1;
			}
		} else if (!strcmp(k, "required")) {
			for (size_t t = 0; v->type == TJ_OBJ && t < a->n; t++)
				if (!tj_get(v, a->items[t]->str)) {
					snprintf(why, len, "%s: missing %s", path, a->items[t]->str);
					return 1;
				}
		} else if (!strcmp(k, "properties")) {
			for (size_t t = 0; v->type == TJ_OBJ && t < v->n; t++) {
				const struct tj *ps = tj_get(a, v->keys[t]);
				snprintf(sub, sizeof sub, "%s.%s", path, v->keys[t]);
				if (ps && check(ps, v->items[t], sub, why, len))
					return 1;
			}
		} else if (!strcmp(k, "additionalProperties")) {
			const struct tj *props = tj_get(s, "properties");
			for (size_t t = 0; v->type == TJ_OBJ && t < v->n; t++) {
				if (props && tj_get(props, v->keys[t]))
					continue;
				snprintf(sub, sizeof sub, "%s.%s", path, v->keys[t]);
				if (a->type == TJ_BOOL && !a->num) {
					snprintf(why, len, "%s: not in the schema", sub);
					return 1;
				}
				if (a->type == TJ_OBJ && check(a, v->items[t], sub, why, len))
					return 1;
			}
		} else if (!strcmp(k, "items")) {
			for (size_t t = 0; v->type == TJ_ARR && t < v->n; t++) {
				snprintf(sub, sizeof sub, "%s[%zu]", path, t);
				if (check(a, v->items[t], sub, why, len))
					return 1;
			}
		} else if (strcmp(k, "description") && strcmp(k, "$schema") && strcmp(k, "$id") &&
			   strcmp(k, "title") && strcmp(k, "$defs")) {
			cr_assert_fail("%s: schema keyword '%s' not supported by this validator", path, k);
		}
	}
	return 0;
}

static void schema_load(void)
{
	char *text = slurp(LW_SOURCE_DIR "/docs/report-schema.json");
	cr_assert_not_null(text, "docs/report-schema.json unreadable");
	g_schema = tj_parse(text);
	free(text);
	cr_assert_not_null(g_schema, "docs/report-schema.json is not valid JSON");
}

static void expect_valid(const char *def, const char *text, const char *what)
{
	cr_assert_not_null(text, "%s: no output", what);
	struct tj *v = tj_parse(text);
	cr_assert_not_null(v, "%s: not JSON: %.300s", what, text);
	char ref[64], why[600] = "";
	snprintf(ref, sizeof ref, "{\"$ref\":\"#/$defs/%s\"}", def);
	struct tj *s = tj_parse(ref);
	int bad = check(s, v, def, why, sizeof why);
	cr_assert_eq(bad, 0, "%s does not match the schema: %s", what, why);
	tj_free(s);
	tj_free(v);
}

TestSuite(report_schema, .init = schema_load, .timeout = 180);

/* The validator itself: it must refuse what the schema forbids. */
Test(report_schema, validator_refuses_wrong_documents)
{
	char why[600];
	struct tj *s = tj_parse("{\"$ref\":\"#/$defs/share\"}");
	static const char *const bad[] = { "{\"count\":1}", "{\"count\":1,\"of\":2,\"x\":0}", "{\"count\":-1,\"of\":2}",
					   "{\"count\":1.5,\"of\":2}", "[]" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct tj *v = tj_parse(bad[i]);
		cr_assert_eq(check(s, v, "share", why, sizeof why), 1, "accepted %s", bad[i]);
		tj_free(v);
	}
	struct tj *ok = tj_parse("{\"count\":1,\"of\":2}");
	cr_assert_eq(check(s, ok, "share", why, sizeof why), 0, "%s", why);
	tj_free(ok);
	tj_free(s);
}

static void kept_dir(const char *err, char *dir, size_t len)
{
	const char *p = strstr(err, "segments kept in ");
	cr_assert_not_null(p, "no kept directory: %s", err);
	p += strlen("segments kept in ");
	size_t n = strcspn(p, "\n");
	snprintf(dir, len, "%.*s", (int)n, p);
}

static void run_and_check(const char *fixture)
{
	char bin[PATH_MAX], env_dir[PATH_MAX + 32], tmp[] = "/tmp/lw-schema-XXXXXX";
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(bin, sizeof bin, LW_BUILD_DIR "/fixtures/%s", fixture);
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", tmp);
	char *env[] = { env_dir, NULL };
	struct cmd_result r;
	char *text = run_report(&r, env, (const char *[]){ "--keep", "--all", NULL }, (const char *[]){ bin, NULL });
	expect_valid("run", text, fixture);
	free(text);
	char dir[PATH_MAX];
	kept_dir(r.err, dir, sizeof dir);
	cmd_result_free(&r);

	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	int nseg = 0;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "leakwatch.", 10))
			continue;
		char seg[PATH_MAX * 2];
		snprintf(seg, sizeof seg, "%s/%s", dir, e->d_name);
		static const char *const variants[][3] = { { "--all", NULL }, { "--kind", "heap" },
							   { "--kind", "sockets" }, { "--by", "use" } };
		for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
			char *argv[] = { (char *)lw_bin(), "report", seg, "--format", "json", (char *)variants[i][0],
					 (char *)variants[i][1], NULL };
			run_cmd(&r, argv, env, 60);
			cr_assert_eq(r.status, 0, "%s", r.err);
			expect_valid("report", r.out, seg);
			cmd_result_free(&r);
		}
		nseg++;
	}
	closedir(d);
	cr_assert_gt(nseg, 0);
	char kdir[PATH_MAX + 32];
	snprintf(kdir, sizeof kdir, "LEAKWATCH_DIR=%s", dir);
	char *env2[] = { kdir, NULL };
	char *ps[] = { (char *)lw_bin(), "ps", "--format", "json", NULL };
	run_cmd(&r, ps, env2, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	expect_valid("ps", r.out, "ps");
	cmd_result_free(&r);
	cr_assert_eq(rm_rf(dir), 0);
	cr_assert_eq(rm_rf(tmp), 0);
}

Test(report_schema, run_report_and_ps_of_a_socket_leak) { run_and_check("leak_basic"); }
Test(report_schema, run_report_and_ps_of_a_heap_leak) { run_and_check("heap_leak"); }

/*
 * What the fixtures do not produce: a v2 segment whose tables stopped
 * growing and whose heap table was being replaced, and a layout 1 segment —
 * their report and ps documents must match the schema too (the incomplete
 * object, null fields of layout 1).
 */
Test(report_schema, report_and_ps_of_incomplete_and_v1_segments)
{
	char tmp[] = "/tmp/lw-schema-XXXXXX", path[PATH_MAX], env_dir[PATH_MAX + 32];
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", tmp);
	char *env[] = { env_dir, NULL };
	struct fab f;
	fab_init_heap(&f, 16, 4, 16, 4, 64, LW_HEAP_FULL, 0);
	f.hdr->incomplete = LW_INCOMPLETE_HEAP | LW_INCOMPLETE_HANDLES | LW_INCOMPLETE_BADCLOSES;
	f.hdr->counters[LW_CTR_DROP_RESERVE] = 3;
	f.hdr->budget_bytes = 1 << 20;
	f.hdr->heapdir.seq = 1; /* never settles */
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 0, 1);
	char v1name[64];
	snprintf(v1name, sizeof v1name, "%s.1", fab_segname());
	fab_write(&f, tmp, fab_segname(), path, sizeof path);
	fab_free(&f);
	fab_init_v1(&f, 16, 4, 16, 4, 64, LW_HEAP_FULL, 0);
	fab_alloc(&f, 1, 0x1000, 8, 1, 0);
	fab_write(&f, tmp, v1name, path, sizeof path);
	fab_free(&f);
	const char *const segs[] = { fab_segname(), v1name };
	struct cmd_result r;
	for (size_t i = 0; i < 2; i++) {
		char seg[PATH_MAX * 2];
		snprintf(seg, sizeof seg, "%s/%s", tmp, segs[i]);
		char *argv[] = { (char *)lw_bin(), "report", seg, "--format", "json", NULL };
		run_cmd(&r, argv, env, 60);
		cr_assert_eq(r.status, 0, "%s", r.err);
		cr_assert(strstr(r.out, i == 0 ? "\"incomplete\":{" : "\"incomplete\":null"), "%s", r.out);
		expect_valid("report", r.out, seg);
		cmd_result_free(&r);
	}
	char *ps[] = { (char *)lw_bin(), "ps", "--format", "json", NULL };
	run_cmd(&r, ps, env, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "\"incomplete\":{\"tables\":[\"heap\",\"handle\",\"bad-close\"]"), "%s", r.out);
	expect_valid("ps", r.out, "ps");
	cmd_result_free(&r);
	cr_assert_eq(rm_rf(tmp), 0);
}

/*
 * A live process with watch evidence (tests/fixtures/watched.c): the
 * watch_view object, group.watch objects and the "watched" verdict must
 * match the schema too.  --idle-for 10ms after 100ms: idle enough to judge.
 */
Test(report_schema, live_report_with_watch_evidence)
{
	char tmp[] = "/tmp/lw-schema-XXXXXX", env_dir[PATH_MAX + 32], preload[4096], buf[256] = "", spid[16];
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", tmp);
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lw_shim());
	int in, out;
	pid_t pid = spawn_piped(LW_BUILD_DIR "/fixtures/watched", (char *[]){ "watched", NULL },
				(char *[]){ env_dir, "LEAKWATCH_HEAP=off", preload, NULL }, &in, &out);
	cr_assert_gt(pid, 0);
	struct pollfd p = { out, POLLIN, 0 };
	cr_assert_gt(poll(&p, 1, 30000), 0, "fixture did not start");
	cr_assert_gt(read(out, buf, sizeof buf - 1), 0);
	cr_assert(strncmp(buf, "ready", 5) == 0, "%s", buf);
	struct timespec ts = { 0, 100000000L };
	nanosleep(&ts, NULL);
	snprintf(spid, sizeof spid, "%d", (int)pid);
	char *env[] = { env_dir, NULL };
	char *argv[] = { (char *)lw_bin(), "report", spid, "--format", "json", "--idle-for", "10ms", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, env, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strstr(r.out, "\"watch_view\":{"), "%s", r.out);
	cr_assert(strstr(r.out, "\"verdict\":\"watched\""), "%s", r.out);
	cr_assert(strstr(r.out, "\"blocked_threads\":[{"), "%s", r.out);
	expect_valid("report", r.out, "watched");
	cmd_result_free(&r);
	close(in);
	int st;
	waitpid(pid, &st, 0);
	close(out);
	cr_assert_eq(rm_rf(tmp), 0);
}

/*
 * report --pg (analyzer/lib/pgjoin.c) on the pgclient fixture against a
 * throwaway PostgreSQL: the report's pg object and each group's, joined
 * connections (idle in transaction, idle, active) and a unix-socket one, in
 * JSON and with --all, must match the schema.
 */
static struct pgtest schema_pg;
static struct pgclient schema_pgclient;

static void schema_pg_teardown(void)
{
	pgclient_stop(&schema_pgclient);
	pgtest_stop(&schema_pg);
}

Test(report_schema, live_report_with_pg, .fini = schema_pg_teardown)
{
	char why[256];
	if (!pgtest_available(why, sizeof why))
		cr_skip_test("%s", why);
	pgtest_start(&schema_pg);
	pgclient_start(&schema_pgclient, &schema_pg, 1);
	char spid[16], env_dir[200];
	snprintf(spid, sizeof spid, "%d", (int)schema_pgclient.pid);
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", schema_pg.segdir);
	char *env[] = { env_dir, NULL };
	for (int all = 0; all < 2; all++) {
		char *argv[] = { (char *)lw_bin(), "report", spid, "--format", "json", "--pg", schema_pg.conninfo,
				 all ? "--all" : NULL, NULL };
		struct cmd_result r;
		run_cmd(&r, argv, env, 60);
		cr_assert_eq(r.status, 0, "%s", r.err);
		cr_assert(strstr(r.out, "\"state\":\"idle in transaction\""), "%s", r.out);
		cr_assert(strstr(r.out, "\"unix\":1"), "%s", r.out);
		expect_valid("report", r.out, "report --pg");
		cmd_result_free(&r);
	}
}

/* The newest segment file (leakwatch.PID) of a kept run directory. */
static void kept_segment(const char *dir, char *seg, size_t len)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	struct dirent *e;
	seg[0] = '\0';
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "leakwatch.", 10) && !strchr(e->d_name + 10, '.'))
			snprintf(seg, len, "%s/%s", dir, e->d_name);
	closedir(d);
	cr_assert(seg[0], "no segment in %s", dir);
}

/* diff --format json of a JSON report (a socket leak) against a segment (a
 * heap leak): both side types, a new stack, a vanished one. */
Test(report_schema, diff_of_a_report_and_a_segment)
{
	char tmp[] = "/tmp/lw-schema-XXXXXX", env_dir[PATH_MAX + 32], seg[2][PATH_MAX + 300], dir[PATH_MAX];
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(env_dir, sizeof env_dir, "LEAKWATCH_DIR=%s", tmp);
	char *env[] = { env_dir, NULL };
	static const char *const fixtures[] = { "leak_basic", "heap_leak" };
	for (int i = 0; i < 2; i++) {
		char bin[PATH_MAX];
		snprintf(bin, sizeof bin, LW_BUILD_DIR "/fixtures/%s", fixtures[i]);
		struct cmd_result r;
		lw_run_timed(&r, env, (const char *[]){ "--keep", NULL }, (const char *[]){ bin, NULL }, 120);
		kept_dir(r.err, dir, sizeof dir);
		kept_segment(dir, seg[i], sizeof seg[i]);
		cmd_result_free(&r);
	}
	char old[PATH_MAX + 16];
	snprintf(old, sizeof old, "%s/old.json", tmp);
	struct cmd_result r;
	char *rep[] = { (char *)lw_bin(), "report", seg[0], "--format", "json", "--output", old, NULL };
	run_cmd(&r, rep, NULL, 60);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	char *diff[] = { (char *)lw_bin(), "diff", old, seg[1], "--format", "json", NULL };
	run_cmd(&r, diff, NULL, 60);
	cr_assert_eq(r.status, 1, "the heap leak is new: %s", r.err);
	expect_valid("diff", r.out, "diff");
	struct tj *v = tj_parse(r.out);
	size_t stacks = 0;
	for (size_t i = 0; i < tj_len(tj_get(v, "kinds")); i++)
		stacks += tj_len(tj_get(tj_at(tj_get(v, "kinds"), i), "stacks"));
	cr_assert_geq(stacks, 2, "a new and a vanished stack at least: %s", r.out);
	tj_free(v);
	cmd_result_free(&r);
	rm_rf(tmp);
}
