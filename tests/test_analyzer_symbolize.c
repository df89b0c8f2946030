/* SPDX-License-Identifier: MIT */
/*
 * Tests for analyzer/symbolize.c: addresses taken from this very test binary,
 * described by a fabricated module table, must come back as the functions
 * and source lines they are in.
 */
#include <criterion/criterion.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <stdio.h>

#include "heapgroups.h"
#include "symbolize.h"
#include "snapshot.h"
#include "lib/fixtures.h"

static volatile uint64_t captured_ra;
static int call_line_plain, call_line_inner, call_line_outer;

__attribute__((noinline, noclone, used)) static int target_fn(int x)
{
	asm volatile("" ::: "memory");
	return x * 3 + 1;
}

__attribute__((noinline, noclone)) static void capture_ra(void)
{
	captured_ra = (uint64_t)(uintptr_t)__builtin_return_address(0);
	asm volatile("" ::: "memory");
}

__attribute__((noinline, noclone)) static void plain_caller(void)
{
	call_line_plain = __LINE__; capture_ra();
	asm volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) void inlined_helper(void)
{
	call_line_inner = __LINE__; capture_ra();
	asm volatile("" ::: "memory");
}

__attribute__((noinline, noclone)) static void inline_outer(void)
{
	call_line_outer = __LINE__; inlined_helper();
	asm volatile("" ::: "memory");
}

static struct lw_module mods[4];
static struct lw_snapshot snap;

static void setup(void)
{
	struct obj_range r;
	loaded_object(NULL, &r);
	memset(&snap, 0, sizeof snap);
	memset(mods, 0, sizeof mods);
	ssize_t n = readlink("/proc/self/exe", snap.hdr.exe, sizeof snap.hdr.exe - 1);
	cr_assert_gt(n, 0);
	/* the main program is recorded with an empty path: the header's exe is used */
	mods[0].flags = LW_MODULE_MAIN;
	mods[0].base = r.base;
	mods[0].start = r.start;
	mods[0].end = r.end;
	/* the shim's own frames are hidden */
	mods[1].base = mods[1].start = 0x10000000;
	mods[1].end = 0x10100000;
	snprintf(mods[1].path, sizeof mods[1].path, "/opt/lw/lib/libleakwatch.so");
	/* a library that is gone from disk */
	mods[2].base = mods[2].start = 0x20000000;
	mods[2].end = 0x20100000;
	snprintf(mods[2].path, sizeof mods[2].path, "/opt/gone/libfoo.so.1");
	snap.modules = mods;
	snap.nmodules = 3;
}

TestSuite(analyzer_symbolize, .init = setup);

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

Test(analyzer_symbolize, function_and_file)
{
	char err[LW_ERR_MAX];
	struct lw_symbolizer *sym = lw_symbolizer_new(&snap, err, sizeof err);
	cr_assert_not_null(sym, "%s", err);
	cr_assert_eq(target_fn(1), 4);

	/* every frame is looked up as a return address (addr - 1); +4 stays inside */
	uint64_t frames[1] = { (uint64_t)(uintptr_t)&target_fn + 4 };
	struct lw_frame out[8];
	size_t n = lw_symbolize_stack(sym, frames, 1, out, 8);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(out[0].function, "target_fn");
	cr_assert_not_null(out[0].file);
	cr_assert(ends_with(out[0].file, "tests/test_analyzer_symbolize.c"), "%s", out[0].file);
	cr_assert_gt(out[0].line, 0);
	cr_assert_str_eq(out[0].module, snap.hdr.exe);
	cr_assert_eq(out[0].module_off, frames[0] - mods[0].base);
	cr_assert(!out[0].inlined);
	cr_assert(!out[0].buildid_mismatch);
	lw_symbolizer_free(sym);
}

Test(analyzer_symbolize, return_address_maps_to_call_line)
{
	char err[LW_ERR_MAX];
	struct lw_symbolizer *sym = lw_symbolizer_new(&snap, err, sizeof err);
	cr_assert_not_null(sym, "%s", err);
	plain_caller();
	/* a shim frame first (hidden), then the return address into plain_caller */
	uint64_t frames[2] = { 0x10000040, captured_ra };
	struct lw_frame out[8];
	size_t n = lw_symbolize_stack(sym, frames, 2, out, 8);
	cr_assert_eq(n, 1, "the libleakwatch.so frame is dropped");
	cr_assert_str_eq(out[0].function, "plain_caller");
	cr_assert_eq(out[0].line, call_line_plain);
	cr_assert_eq(out[0].addr, captured_ra);

	/* cached: the same answer again */
	n = lw_symbolize_stack(sym, frames, 2, out, 8);
	cr_assert_eq(n, 1);
	cr_assert_eq(out[0].line, call_line_plain);
	lw_symbolizer_free(sym);
}

Test(analyzer_symbolize, inlined_frames_are_expanded)
{
	char err[LW_ERR_MAX];
	struct lw_symbolizer *sym = lw_symbolizer_new(&snap, err, sizeof err);
	cr_assert_not_null(sym, "%s", err);
	inline_outer();
	uint64_t frames[2] = { 0x10000040, captured_ra };
	struct lw_frame out[8];
	size_t n = lw_symbolize_stack(sym, frames, 2, out, 8);
	for (size_t i = 0; i < n; i++)
		cr_log_info("frame %zu: %s %s:%d inlined=%d", i, out[i].function, out[i].file, out[i].line, out[i].inlined);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(out[0].function, "inlined_helper");
	cr_assert(out[0].inlined);
	cr_assert_eq(out[0].line, call_line_inner);
	cr_assert_str_eq(out[1].function, "inline_outer");
	cr_assert(!out[1].inlined);
	cr_assert_eq(out[1].line, call_line_outer);
	cr_assert(ends_with(out[1].file, "test_analyzer_symbolize.c"), "%s", out[1].file);
	cr_assert_eq(out[0].addr, out[1].addr);
	lw_symbolizer_free(sym);
}

Test(analyzer_symbolize, unknown_frames_render_as_module_offset)
{
	char err[LW_ERR_MAX], buf[128];
	struct lw_symbolizer *sym = lw_symbolizer_new(&snap, err, sizeof err);
	cr_assert_not_null(sym, "%s", err);
	uint64_t frames[3] = { 0x20000123, 0x5000, 0 };
	struct lw_frame out[8];
	size_t n = lw_symbolize_stack(sym, frames, 3, out, 8);
	cr_assert_eq(n, 2, "zero frames are skipped");
	cr_assert_null(out[0].function);
	cr_assert_str_eq(lw_frame_format_location(&out[0], buf, sizeof buf), "libfoo.so.1+0x123");
	cr_assert_null(out[1].function);
	cr_assert_null(out[1].module);
	cr_assert_str_eq(lw_frame_format_location(&out[1], buf, sizeof buf), "0x5000");

	/* output capacity is respected */
	n = lw_symbolize_stack(sym, frames, 3, out, 1);
	cr_assert_eq(n, 1);
	lw_symbolizer_free(sym);

	/* without a symbolizer, frames still come back as addresses */
	n = lw_symbolize_stack(NULL, frames, 2, out, 8);
	cr_assert_eq(n, 2);
	cr_assert_eq(out[0].addr, 0x20000123);
	cr_assert_null(out[0].function);
}

Test(analyzer_symbolize, build_id_mismatch_is_flagged)
{
	char err[LW_ERR_MAX];
	mods[0].build_id_len = 20;
	memset(mods[0].build_id, 0xab, 20);
	struct lw_symbolizer *sym = lw_symbolizer_new(&snap, err, sizeof err);
	cr_assert_not_null(sym, "%s", err);
	/* a return address just past the entry still lies inside target_fn */
	uint64_t frames[1] = { (uint64_t)(uintptr_t)&target_fn + 1 };
	struct lw_frame out[4];
	size_t n = lw_symbolize_stack(sym, frames, 1, out, 4);
	cr_assert_eq(n, 1);
	cr_assert(out[0].buildid_mismatch);
	cr_assert_str_eq(out[0].function, "target_fn");
	lw_symbolizer_free(sym);
}

Test(analyzer_symbolize, empty_module_table)
{
	char err[LW_ERR_MAX];
	struct lw_snapshot empty;
	memset(&empty, 0, sizeof empty);
	struct lw_symbolizer *sym = lw_symbolizer_new(&empty, err, sizeof err);
	cr_assert_not_null(sym, "%s", err);
	/* a return address just past the entry still lies inside target_fn */
	uint64_t frames[1] = { (uint64_t)(uintptr_t)&target_fn + 1 };
	struct lw_frame out[4];
	cr_assert_eq(lw_symbolize_stack(sym, frames, 1, out, 4), 1);
	cr_assert_null(out[0].function);
	lw_symbolizer_free(sym);
}
