/* SPDX-License-Identifier: MIT */
/* Tests for analyzer/duration.c: DUR parsing and age formatting. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "names.h"

#define SEC 1000000000ull

static uint64_t parse_ok(const char *s)
{
	uint64_t ns = 12345;
	cr_assert_eq(lw_duration_parse(s, &ns), 0, "'%s' should parse", s);
	return ns;
}

Test(analyzer_duration, units)
{
	cr_assert_eq(parse_ok("0"), 0);
	cr_assert_eq(parse_ok("0s"), 0);
	cr_assert_eq(parse_ok("10ns"), 10);
	cr_assert_eq(parse_ok("250us"), 250000ull);
	cr_assert_eq(parse_ok("500ms"), 500000000ull);
	cr_assert_eq(parse_ok("30s"), 30 * SEC);
	cr_assert_eq(parse_ok("5m"), 300 * SEC);
	cr_assert_eq(parse_ok("2h"), 7200 * SEC);
	cr_assert_eq(parse_ok("1d"), 86400 * SEC);
}

Test(analyzer_duration, compound)
{
	cr_assert_eq(parse_ok("1h30m"), 5400 * SEC);
	cr_assert_eq(parse_ok("1m30s500ms"), 90 * SEC + 500000000ull);
	cr_assert_eq(parse_ok("2d3h"), (2 * 86400 + 3 * 3600) * SEC);
}

Test(analyzer_duration, rejects)
{
	static const char *const bad[] = {
		"", "5", "10", "-5s", "+5s", " 5s", "5s ", "5x", "s", "ms", "5 s", "1.5s",
		"5mm", "abc", "5m-", "99999999999999999999s", "18446744073709551615d",
		"213504d", /* > 2^64 ns */ "213503d1d",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t ns = 777;
		cr_expect_eq(lw_duration_parse(bad[i], &ns), -1, "'%s' must be rejected", bad[i]);
		cr_expect_eq(ns, 777, "'%s': output must be untouched on error", bad[i]);
	}
	uint64_t ns;
	cr_assert_eq(lw_duration_parse(NULL, &ns), -1);
}

Test(analyzer_duration, largest_accepted)
{
	/* 213503 days is 1.84466e19 ns, just below 2^64 = 1.84467e19 */
	uint64_t ns = 0;
	cr_assert_eq(lw_duration_parse("213504d", &ns), -1);
	cr_assert_eq(lw_duration_parse("213503d", &ns), 0);
	cr_assert_eq(ns, 213503ull * 86400 * SEC);
}

Test(analyzer_duration, format)
{
	char b[32];
	cr_assert_str_eq(lw_duration_format(0, b, sizeof b), "0ms");
	cr_assert_str_eq(lw_duration_format(850000000ull, b, sizeof b), "850ms");
	cr_assert_str_eq(lw_duration_format(42 * SEC + 999, b, sizeof b), "42s");
	cr_assert_str_eq(lw_duration_format(5 * 60 * SEC + 3 * SEC, b, sizeof b), "5m03s");
	cr_assert_str_eq(lw_duration_format((5 * 3600 + 59 * 60 + 59) * SEC, b, sizeof b), "5h59m");
	cr_assert_str_eq(lw_duration_format((2 * 86400 + 3 * 3600 + 5) * SEC, b, sizeof b), "2d03h");
	cr_assert_str_eq(lw_duration_format(UINT64_MAX, b, sizeof b), "213503d23h");
}

Test(analyzer_duration, format_truncates_safely)
{
	char b[4];
	lw_duration_format(5 * 60 * SEC, b, sizeof b);
	cr_assert_str_eq(b, "5m0");
}
