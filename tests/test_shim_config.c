/*
 * The shim's option table (preload/config.c): valid values are taken,
 * invalid ones give the default, are counted, and are logged with
 * LEAKWATCH_LOG=1 (and only then).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"
#include "lib/testlib.h"

static struct shim_config defaults(void)
{
	char *none[] = { NULL };
	config_parse(none);
	return g_cfg;
}

Test(shim_config, valid_values_are_taken)
{
	char *env[] = { "LEAKWATCH_DIR=/tmp/x", "LEAKWATCH_HEAP=full", "LEAKWATCH_STACK_DEPTH=7",
			"LEAKWATCH_MAX_FDS=128", "LEAKWATCH_SAMPLE_BYTES=1000", "LEAKWATCH_MAX_ALLOCS=3000",
			"LEAKWATCH_KEEP_EMPTY=yes", "LEAKWATCH_DISABLE=false", "LEAKWATCH_STACK_CACHE=0",
			NULL };
	config_parse(env);
	cr_assert_str_eq(g_cfg.dir, "/tmp/x");
	cr_assert_eq(g_cfg.heap_mode, LW_HEAP_FULL);
	cr_assert_eq(g_cfg.stack_depth, 7);
	cr_assert_eq(g_cfg.max_fds, 128);
	cr_assert_eq(g_cfg.sample_bytes, 1000);
	cr_assert_eq(g_cfg.max_allocs, 3000, "a cap on live blocks, taken as given");
	cr_assert_eq(g_cfg.keep_empty, 1);
	cr_assert_eq(g_cfg.disabled, 0);
	cr_assert_eq(g_cfg.site_cache, 0);
	cr_assert_eq(g_cfg.invalid, 0);
	char *off[] = { "LEAKWATCH_HEAP=off", NULL };
	config_parse(off);
	cr_assert_eq(g_cfg.max_allocs, 0, "no heap table without heap tracking");
}

Test(shim_config, invalid_values_give_defaults_and_are_counted)
{
	struct shim_config def = defaults();
	cr_assert_eq(def.invalid, 0);
	char longdir[LW_PATH_MAX + 40] = "LEAKWATCH_DIR=";
	memset(longdir + strlen(longdir), 'd', LW_PATH_MAX + 8);
	longdir[sizeof longdir - 1] = '\0';
	char *env[] = { longdir, "LEAKWATCH_HEAP=most", "LEAKWATCH_STACK_DEPTH=0",
			"LEAKWATCH_MAX_FDS=12abc", "LEAKWATCH_MAX_STACKS=99999999999",
			"LEAKWATCH_KEEP_EMPTY=maybe", "LEAKWATCH_STACK_CACHE=2", "LEAKWATCH_SAMPLE_BYTES=",
			NULL };
	config_parse(env);
	cr_assert_str_eq(g_cfg.dir, def.dir);
	cr_assert_eq(g_cfg.heap_mode, def.heap_mode);
	cr_assert_eq(g_cfg.stack_depth, def.stack_depth);
	cr_assert_eq(g_cfg.max_fds, def.max_fds);
	cr_assert_eq(g_cfg.max_stacks, def.max_stacks);
	cr_assert_eq(g_cfg.keep_empty, def.keep_empty);
	cr_assert_eq(g_cfg.site_cache, def.site_cache);
	cr_assert_eq(g_cfg.sample_bytes, def.sample_bytes, "empty is unset");
	cr_assert_eq(g_cfg.max_allocs, def.max_allocs);
	cr_assert_eq(g_cfg.invalid, 7, "an empty value is not an invalid one");
}

/* LEAKWATCH_BUDGET: bytes with binary suffixes, a share in percent, or 0. */
Test(shim_config, budget_sizes_and_shares)
{
	struct shim_config def = defaults();
	cr_assert_eq(def.budget, 0);
	cr_assert_eq(def.budget_pct, 25, "default: a quarter of the filesystem");
	const struct { const char *v; uint64_t bytes; uint32_t pct; int bad; } cases[] = {
		{ "LEAKWATCH_BUDGET=4096", 4096, 0, 0 },   { "LEAKWATCH_BUDGET=64K", 64u << 10, 0, 0 },
		{ "LEAKWATCH_BUDGET=3m", 3u << 20, 0, 0 }, { "LEAKWATCH_BUDGET=2G", 2ull << 30, 0, 0 },
		{ "LEAKWATCH_BUDGET=10%", 0, 10, 0 },      { "LEAKWATCH_BUDGET=0", 0, 0, 0 },
		{ "LEAKWATCH_BUDGET=0%", 0, 25, 1 },       { "LEAKWATCH_BUDGET=101%", 0, 25, 1 },
		{ "LEAKWATCH_BUDGET=12T", 0, 25, 1 },      { "LEAKWATCH_BUDGET=-1", 0, 25, 1 },
		{ "LEAKWATCH_BUDGET=5MB", 0, 25, 1 },      { "LEAKWATCH_BUDGET=K", 0, 25, 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *env[] = { (char *)cases[i].v, NULL };
		config_parse(env);
		cr_expect_eq(g_cfg.budget, cases[i].bytes, "%s: bytes %lu", cases[i].v, (unsigned long)g_cfg.budget);
		cr_expect_eq(g_cfg.budget_pct, cases[i].pct, "%s: pct %u", cases[i].v, g_cfg.budget_pct);
		cr_expect_eq(g_cfg.invalid, (uint32_t)cases[i].bad, "%s", cases[i].v);
	}
}

/* run /bin/true traced with env; its stderr and its segment's counter */
static void run_true(const char *log, char **err, uint64_t *invalid)
{
	char dir[] = "/tmp/lw-config-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char envdir[128], envpre[512], envlog[64];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", dir);
	snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
	snprintf(envlog, sizeof envlog, "LEAKWATCH_LOG=%s", log);
	char *env[] = { envdir, envpre, envlog, "LEAKWATCH_KEEP_EMPTY=1", "LEAKWATCH_MAX_FDS=lots",
			"LEAKWATCH_HEAP=bogus", NULL };
	char *argv[] = { "/bin/true", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, env, 30);
	cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
	*err = strdup(r.err);
	cmd_result_free(&r);

	*invalid = UINT64_MAX;
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, LW_SEGMENT_PREFIX, strlen(LW_SEGMENT_PREFIX)) != 0)
			continue;
		char path[sizeof dir + 300];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct lw_header h;
		int fd = open(path, O_RDONLY);
		cr_assert_geq(fd, 0);
		cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
		close(fd);
		*invalid = h.counters[LW_CTR_CONFIG_INVALID];
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

Test(shim_config, invalid_values_logged_only_with_log, .timeout = 60)
{
	char *err;
	uint64_t invalid;
	run_true("1", &err, &invalid);
	cr_expect_not_null(strstr(err, "LEAKWATCH_MAX_FDS=lots"), "stderr: %s", err);
	cr_expect_not_null(strstr(err, "LEAKWATCH_HEAP=bogus"), "stderr: %s", err);
	cr_expect_eq(invalid, 2, "counted in the segment: %lu", (unsigned long)invalid);
	free(err);
	run_true("0", &err, &invalid);
	cr_expect_str_empty(err, "LEAKWATCH_LOG=0 prints nothing: %s", err);
	cr_expect_eq(invalid, 2);
	free(err);
}

/* The report says so: a shim that ran on defaults it was not asked for. */
Test(shim_config, rejected_values_shown_in_the_report, .timeout = 60)
{
	struct cmd_result r;
	char *env[] = { "LEAKWATCH_MAX_FDS=lots", NULL };
	const char *cmd[] = { "/bin/true", NULL };
	char *text = run_report(&r, env, NULL, cmd);
	cr_assert_not_null(text, "no report: %s", r.err);
	cr_expect_not_null(strstr(text, "\"config_invalid\":1"), "%.3000s", text);
	free(text);
	cmd_result_free(&r);
	const char *argv[] = { lw_bin(), "run", "--", "/bin/true", NULL };
	run_cmd(&r, (char *const *)argv, env, 60);
	cr_expect_not_null(strstr(r.err, "CONFIG     1 LEAKWATCH_* value(s) rejected"), "%s", r.err);
	cmd_result_free(&r);
}
