/* SPDX-License-Identifier: MIT */
/* Tests for analyzer/render.c (and report.c): text layout and well-formed JSON. */
#include <criterion/criterion.h>

#include "lib/analyzer.h"
#include "json.h"

#define SEC 1000000000ull

static const char *const dir = suite_dir; /* the suite's private directory */

TestSuite(analyzer_render, .init = suite_dir_setup, .fini = suite_dir_teardown);

/* ---- a strict little JSON checker (RFC 8259 grammar, no semantics) ---- */

static const char *js_value(const char *p, int depth);

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
		p++;
	return p;
}

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;
		if (c == '\0' || c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 5;
			} else if (*p && strchr("\"\\/bfnrt", *p)) {
				p++;
			} else {
				return NULL;
			}
		} else {
			p++;
		}
	}
	return p + 1;
}

static const char *js_number(const char *p)
{
	const char *s = p;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > s ? p : NULL;
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = js_ws(p);
	if (*p == '{') {
		p = js_ws(p + 1);
		if (*p == '}')
			return p + 1;
		for (;;) {
			p = js_string(js_ws(p));
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p++ != ':')
				return NULL;
			p = js_value(p, depth + 1);
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p == '}')
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '[') {
		p = js_ws(p + 1);
		if (*p == ']')
			return p + 1;
		for (;;) {
			p = js_value(p, depth + 1);
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p == ']')
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (strncmp(p, "true", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	if (strncmp(p, "null", 4) == 0)
		return p + 4;
	return js_number(p);
}

static int json_valid(const char *s)
{
	const char *end = js_value(s, 0);
	return end && *js_ws(end) == '\0';
}

Test(analyzer_render, checker_sanity)
{
	cr_assert(json_valid("{\"a\":[1,2.5,-3,true,null,\"x\\u00e9\"],\"b\":{}}"));
	cr_assert(!json_valid("{\"a\":1,}"));
	cr_assert(!json_valid("{\"a\":\"\n\"}"));
	cr_assert(!json_valid("[1,2"));
	cr_assert(!json_valid("{\"a\":01}"));
}

static char *json_of_string(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	lw_json_string(m, s);
	fclose(m);
	return buf;
}

Test(analyzer_render, json_string_escapes)
{
	char *j = json_of_string("a\"b\\c\nd\te\x01 \x7f");
	cr_assert_str_eq(j, "\"a\\\"b\\\\c\\nd\\te\\u0001 \\u007f\"");
	free(j);
	j = json_of_string("caf\xc3\xa9 \xe2\x82\xac");  /* valid UTF-8 passes through */
	cr_assert_str_eq(j, "\"caf\xc3\xa9 \xe2\x82\xac\"");
	free(j);
	j = json_of_string("bad\xff\xc3(\xed\xa0\x80"); /* invalid byte, truncated seq, surrogate */
	cr_assert_str_eq(j, "\"bad\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\"");
	free(j);
	j = json_of_string(NULL);
	cr_assert_str_eq(j, "null");
	free(j);
}

/* An exited process with 3 leaked connections, one accepted socket, a double close. */
static void report_fixture(struct lw_report *r, int all, uint64_t older_than)
{
	struct fab f;
	const uint64_t end = 1000000 * SEC;
	fab_init(&f, 8, 4, 32, 4);
	f.hdr->state = LW_STATE_EXITED;
	f.hdr->exit_known = 1;
	f.hdr->exit_status = 3;
	f.hdr->end_monotonic_ns = end;
	snprintf(f.hdr->cmdline, sizeof f.hdr->cmdline, "./api \"--name=x\\y\"\n\x1b[31mred \xff");
	f.hdr->counters[LW_CTR_DROP_STACK_FULL] = 7;
	uint64_t fr[2] = { 0x20000100, 0x20000200 };
	fab_stack(&f, 1, fr, 2);
	fab_stack(&f, 2, fr, 1);
	fab_module(&f, "/opt/gone/libdb.so", 0x20000000, 0x20000000, 0x20100000, 0);
	const uint64_t ages[] = { 120, 21540, 3600 };
	for (int i = 0; i < 3; i++)
		fab_addr_in(&fab_handle(&f, 5 + i, LW_ORIGIN_SOCKET, 1, end - ages[i] * SEC)->peer, "127.0.0.1", 5432);
	struct lw_handle *a = fab_handle(&f, 9, LW_ORIGIN_ACCEPT, 2, end - 2 * SEC);
	fab_addr_in(&a->local, "0.0.0.0", 8080);
	fab_addr_in(&a->peer, "10.1.2.3", 50000);
	fab_handle(&f, 3, LW_ORIGIN_INHERITED, 0, 0);
	struct lw_badclose *b = fab_badclose(&f, 7, 2);
	b->prev_state = LW_H_CLOSED;
	b->prev_open_stack_id = 1;
	b->prev_close_stack_id = 2;
	b->ns = end - 10 * SEC;

	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	struct lw_report_opts o = { .older_than_ns = older_than, .all = all, .format = LW_FMT_TEXT };
	cr_assert_eq(lw_report_build(r, path, &o, err, sizeof err), 0, "%s", err);
}

Test(analyzer_render, json_report)
{
	struct lw_report r;
	report_fixture(&r, 0, 0);
	cr_assert_eq(r.live, LW_LIVE_EXITED);
	char *j = render_report(&r, 1, NULL);
	cr_assert(json_valid(j), "invalid JSON: %s", j);
	cr_assert(strstr(j, "\"leakwatch\":1,"), "%s", j);
	cr_assert(strstr(j, "\"state\":\"exited\",\"exit_status\":3"), "%s", j);
	cr_assert(strstr(j, "\"command\":\"./api \\\"--name=x\\\\y\\\"\\n\\u001b[31mred \\ufffd\""), "%s", j);
	cr_assert(strstr(j, "\"count\":3,\"family\":\"AF_INET\",\"type\":\"SOCK_STREAM\",\"origin\":\"socket\""), "%s", j);
	cr_assert(strstr(j, "\"endpoint\":\"127.0.0.1:5432\",\"endpoint_role\":\"peer\""), "%s", j);
	cr_assert(strstr(j, "\"age_min_s\":120.000,\"age_max_s\":21540.000"), "%s", j);
	cr_assert(strstr(j, "\"fds\":[5,6,7]"), "%s", j);
	cr_assert(strstr(j, "\"endpoint\":\"0.0.0.0:8080\",\"endpoint_role\":\"local\",\"peers\":[\"10.1.2.3:50000\"]"), "%s", j);
	cr_assert(strstr(j, "{\"addr\":\"0x20000100\",\"function\":null,\"file\":null,\"line\":null,"
			    "\"module\":\"/opt/gone/libdb.so\",\"module_offset\":\"0x100\",\"inlined\":false"), "%s", j);
	cr_assert(strstr(j, "\"stack_full\":7"), "%s", j);
	cr_assert(strstr(j, "\"kind\":\"double_close\""), "%s", j);
	cr_assert(strstr(j, "\"kernel_view\":{\"available\":false,\"error\":null}"), "%s", j);
	cr_assert_null(strstr(j, "\"inherited\":true"), "inherited hidden without --all: %s", j);
	cr_assert_null(strstr(j, "stale_fds"), "%s", j);
	free(j);
	lw_report_free(&r);

	report_fixture(&r, 1, 0);
	j = render_report(&r, 1, NULL);
	cr_assert(json_valid(j), "invalid JSON: %s", j);
	cr_assert(strstr(j, "\"inherited\":true"), "%s", j);
	cr_assert(strstr(j, "\"stale_fds\":[]"), "%s", j);
	free(j);
	lw_report_free(&r);
}

Test(analyzer_render, text_report)
{
	struct lw_report r;
	report_fixture(&r, 0, 0);
	char *t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, lw_pidfmt("leakwatch: pid %d (./api \"--name=x\\y\"??[31mred \xff) exited with status 3, ran ")), "%s", t);
	cr_assert_null(strchr(t, '\x1b'), "escape sequences from the target must not reach the terminal");
	cr_assert(strstr(t, "5 open sockets tracked"), "%s", t);
	cr_assert(strstr(t, "SOCKETS    3  TCP -> 127.0.0.1:5432         age 2m00s..5h59m\n"), "%s", t);
	cr_assert(strstr(t, "SOCKETS    1  TCP accepted on 0.0.0.0:8080  age 2s\n"), "%s", t);
	cr_assert(strstr(t, "  fds        5 6 7\n"), "%s", t);
	cr_assert(strstr(t, "  opened at   libdb.so+0x100\n              libdb.so+0x200\n"), "%s", t);
	cr_assert(strstr(t, "BAD CLOSE  fd 7 closed twice by tid 4243, 10s ago\n"), "%s", t);
	cr_assert(strstr(t, "  previously  libdb.so+0x100\n"), "%s", t);
	cr_assert(strstr(t, "DROPPED    events the shim could not record: stack table full 7\n"), "%s", t);
	cr_assert_null(strstr(t, "INHERITED"), "%s", t);
	free(t);
	lw_report_free(&r);

	report_fixture(&r, 1, 1000 * SEC);
	t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, "SOCKETS    2  TCP -> 127.0.0.1:5432"), "older-than filter: %s", t);
	cr_assert(strstr(t, "INHERITED"), "%s", t);
	cr_assert(strstr(t, "before leakwatch loaded"), "%s", t);
	cr_assert_null(strstr(t, "accepted on"), "%s", t);
	free(t);
	lw_report_free(&r);
}

Test(analyzer_render, empty_report_says_so)
{
	struct fab f;
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_init(&f, 4, 4, 16, 4);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	struct lw_report r;
	struct lw_report_opts o = { 0 };
	cr_assert_eq(lw_report_build(&r, path, &o, err, sizeof err), 0, "%s", err);
	char *t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, "no open sockets created under leakwatch"), "%s", t);
	free(t);
	t = render_report(&r, 1, NULL);
	cr_assert(json_valid(t), "%s", t);
	cr_assert(strstr(t, "\"groups\":[]"), "%s", t);
	free(t);
	lw_report_free(&r);
}
