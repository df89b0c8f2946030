/* SPDX-License-Identifier: MIT */
/* The JSON writer (analyzer json.h): commas, nesting, keys, escapes, numbers. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "json.h"

static char *written(void (*fn)(struct lw_json *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	struct lw_json j;
	lw_json_init(&j, m);
	fn(&j);
	cr_assert_eq(lw_json_error(&j), 0);
	fclose(m);
	return buf;
}

static void nested(struct lw_json *j)
{
	lw_json_begin_object(j, NULL);
	lw_json_int(j, "a", -3);
	lw_json_begin_array(j, "b");
	lw_json_uint(j, NULL, 1);
	lw_json_begin_object(j, NULL);
	lw_json_end_object(j);
	lw_json_begin_array(j, NULL);
	lw_json_end_array(j);
	lw_json_null(j, NULL);
	lw_json_end_array(j);
	lw_json_bool(j, "c", 1);
	lw_json_str(j, "d\"", "x\n\x01\xff");
	lw_json_str(j, "e", NULL);
	lw_json_seconds(j, "f", 1500000000ull);
	lw_json_count(j, "g", 999.9999);
	lw_json_count(j, "h", -2);
	lw_json_hex(j, "i", 0x1f);
	lw_json_end_object(j);
}

Test(analyzer_json, commas_nesting_and_values)
{
	char *s = written(nested);
	cr_assert_str_eq(s, "{\"a\":-3,\"b\":[1,{},[],null],\"c\":true,\"d\\\"\":\"x\\n\\u0001\\ufffd\","
			    "\"e\":null,\"f\":1.500,\"g\":1000,\"h\":0,\"i\":\"0x1f\"}");
	free(s);
}

static void two_documents(struct lw_json *j)
{
	lw_json_begin_array(j, NULL);
	lw_json_end_array(j);
	lw_json_begin_object(j, NULL);
	lw_json_str(j, "k", "v");
	lw_json_end_object(j);
}

/* Top-level values are separate documents: no comma between them. */
Test(analyzer_json, top_level_values_have_no_comma)
{
	char *s = written(two_documents);
	cr_assert_str_eq(s, "[]{\"k\":\"v\"}");
	free(s);
}
