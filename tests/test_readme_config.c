/*
 * README's table of the shim's environment variables states each default;
 * the shim's option table (preload/config.c) is where they are defined.
 * This suite keeps the two in agreement: every default README states is the
 * value config_parse() gives with that variable unset.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

#ifndef LW_SOURCE_DIR
#define LW_SOURCE_DIR "."
#endif

/* readme_default - the first `...` of the default column of NAME's row, or
 * NULL when README has no such row. */
static char *readme_default(const char *name, char *out, size_t len)
{
	char path[1024], line[1024], tag[128];
	snprintf(path, sizeof path, "%s/README.md", LW_SOURCE_DIR);
	snprintf(tag, sizeof tag, "| `%s` | `", name);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "cannot read %s", path);
	char *found = NULL;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, tag, strlen(tag)) != 0)
			continue;
		const char *v = line + strlen(tag), *end = strchr(v, '`');
		if (end && (size_t)(end - v) < len) {
			memcpy(out, v, (size_t)(end - v));
			out[end - v] = '\0';
			found = out;
		}
		break;
	}
	fclose(f);
	return found;
}

static unsigned long readme_uint(const char *name)
{
	char v[64], *end;
	cr_assert_not_null(readme_default(name, v, sizeof v), "README has no default for %s", name);
	unsigned long x = strtoul(v, &end, 10);
	cr_assert(*v && *end == '\0', "%s: README default '%s' is not a number", name, v);
	return x;
}

Test(readme_config, defaults_match_the_option_table)
{
	char *none[] = { NULL };
	config_parse(none);
	struct shim_config d = g_cfg;
	char v[64];

	cr_expect_eq(readme_uint("LEAKWATCH_SAMPLE_BYTES"), d.sample_bytes);
	cr_expect_eq(readme_uint("LEAKWATCH_STACK_DEPTH"), d.stack_depth);
	cr_expect_eq(readme_uint("LEAKWATCH_MAX_FDS"), d.max_fds);
	cr_expect_eq(readme_uint("LEAKWATCH_MAX_STACKS"), d.max_stacks);
	cr_expect_eq(readme_uint("LEAKWATCH_STACK_CACHE"), d.site_cache);
	cr_expect_eq(readme_uint("LEAKWATCH_KEEP_EMPTY"), d.keep_empty);
	cr_expect_eq(readme_uint("LEAKWATCH_DISABLE"), d.disabled);
	cr_expect_eq(readme_uint("LEAKWATCH_LOG"), d.log);
	cr_assert_not_null(readme_default("LEAKWATCH_DIR", v, sizeof v));
	cr_expect_str_eq(v, d.dir);
	cr_assert_not_null(readme_default("LEAKWATCH_HEAP", v, sizeof v));
	cr_expect_str_eq(v, d.heap_mode == LW_HEAP_SAMPLED ? "sampled"
			    : d.heap_mode == LW_HEAP_FULL  ? "full"
							   : "off");
}

/* LEAKWATCH_MAX_ALLOCS is a cap on live blocks in either mode (2^28); the
 * budget's default is a share of the filesystem. */
Test(readme_config, caps_and_budget)
{
	char *none[] = { NULL };
	char v[64];
	config_parse(none);
	cr_assert_not_null(readme_default("LEAKWATCH_MAX_ALLOCS", v, sizeof v));
	cr_assert_str_eq(v, "2^28", "README row changed: update this test with it");
	cr_expect_eq(g_cfg.max_allocs, 1u << 28);
	cr_assert_not_null(readme_default("LEAKWATCH_BUDGET", v, sizeof v));
	char want[16];
	snprintf(want, sizeof want, "%u%%", g_cfg.budget_pct);
	cr_expect_str_eq(v, want);
}
