/* SPDX-License-Identifier: MIT */
/*
 * Truth in the figures (issue 8, item 14):
 *   - a process killed without an exit record (state still RUNNING) ends at
 *     the latest of last_active_ns and the newest record, not at the file's
 *     mtime, and says so: "ran at least", "age at least", JSON
 *     end_time_lower_bound;
 *   - a live process's heap blocks are live, not leaked: JSON leaked_blocks /
 *     leaked_bytes are null while it runs, program_blocks / program_bytes
 *     always carry the count;
 *   - a sampled estimate from few samples shows its sample count in text.
 */
#include <criterion/criterion.h>
#include <time.h>

#include "lib/analyzer.h"
#include "lib/json.h"

#define SEC 1000000000ull
/* The fabricated process started 40 s ago on this machine's monotonic clock
 * (the times below are relative to it, and a dead process's end is never
 * taken to be later than now: a fixed start would fail on a machine up for
 * less than start + 30 s). */
static uint64_t start_ns(void)
{
	static uint64_t start;
	if (!start) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
		if (now < 41 * SEC) { /* a machine up for less than that: wait */
			uint64_t wait = 41 * SEC - now;
			struct timespec w = { (time_t)(wait / SEC), (long)(wait % SEC) };
			nanosleep(&w, NULL);
			now = 41 * SEC;
		}
		start = now - 40 * SEC;
	}
	return start;
}
#define START start_ns()

static const char *const dir = suite_dir; /* the suite's private directory */

TestSuite(analyzer_render_truth, .init = suite_dir_setup, .fini = suite_dir_teardown, .timeout = 60);

static void report_of(struct fab *f, struct lw_report *r, enum lw_kind kind)
{
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(f, dir, fab_segname(), path, sizeof path);
	struct lw_report_opts o = { .kind = kind };
	cr_assert_eq(lw_report_build(r, path, &o, err, sizeof err), 0, "%s", err);
}

/* Killed 20 s after start: the last socket was opened at 2 s, the shim was last active at
 * 20 s; the file's mtime (7 s after start on the realtime clock) says nothing. */
Test(analyzer_render_truth, killed_process_ran_at_least)
{
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	struct lw_header *h = f.hdr;
	h->start_monotonic_ns = START;
	h->state = LW_STATE_RUNNING;   /* SIGKILL: no exit path ran */
	h->last_active_ns = START + 20 * SEC;
	uint64_t fr[1] = { 0x1000 };
	fab_stack(&f, 1, fr, 1);
	fab_addr_in(&fab_handle(&f, 3, LW_ORIGIN_SOCKET, 1, START + 2 * SEC)->peer, "127.0.0.1", 5432);
	struct lw_report r;
	report_of(&f, &r, LW_KIND_SOCKETS);
	fab_free(&f);
	cr_assert_eq(r.live, LW_LIVE_DEAD);
	cr_assert_eq(r.now_ns, START + 20 * SEC, "the end is the last activity");
	cr_assert(lw_snapshot_end_lower_bound(&r.snap, r.live));

	char *t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, ") dead, ran at least 20s, "), "%s", t);
	cr_assert(strstr(t, "SOCKETS    1  TCP -> 127.0.0.1:5432  age at least 18s\n"), "%s", t);
	free(t);
	t = render_report(&r, 1, NULL);
	struct tj *j = tj_parse(t);
	cr_assert_not_null(j, "%s", t);
	cr_assert_eq(tj_get(j, "end_time_lower_bound")->type, TJ_BOOL);
	cr_assert_eq(tj_num(j, "end_time_lower_bound", 0), 1);
	cr_assert_eq(tj_num(j, "uptime_s", 0), 20.0);
	cr_assert_eq(tj_num(tj_at(tj_get(j, "groups"), 0), "age_max_s", 0), 18.0);
	tj_free(j);
	free(t);
	lw_report_free(&r);

	/* a later record than last_active (a heap block from a batch not flushed) wins */
	fab_init_heap(&f, 4, 4, 16, 4, 64, LW_HEAP_FULL, 0);
	f.hdr->start_monotonic_ns = START;
	f.hdr->last_active_ns = START + 20 * SEC;
	fab_stack(&f, 1, fr, 1);
	fab_alloc(&f, 0, 0x7000010, 64, START + 25 * SEC, 1);
	report_of(&f, &r, LW_KIND_ALL);
	fab_free(&f);
	cr_assert_eq(r.now_ns, START + 25 * SEC);
	t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, ") dead, ran at least 25s, "), "%s", t);
	cr_assert(strstr(t, "  age at least 0ms\n"), "%s", t);
	free(t);
	lw_report_free(&r);

	/* an exit record is exact: no "at least" */
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->start_monotonic_ns = START;
	f.hdr->state = LW_STATE_EXITED;
	f.hdr->end_monotonic_ns = START + 30 * SEC;
	f.hdr->last_active_ns = START + 30 * SEC;
	report_of(&f, &r, LW_KIND_SOCKETS);
	fab_free(&f);
	cr_assert_not(lw_snapshot_end_lower_bound(&r.snap, r.live));
	t = render_report(&r, 0, NULL);
	cr_assert(strstr(t, ") exited, ran 30s, "), "%s", t);
	free(t);
	t = render_report(&r, 1, NULL);
	cr_assert(strstr(t, "\"uptime_s\":30.000,\"end_time_lower_bound\":false,"), "%s", t);
	free(t);
	lw_report_free(&r);
}

/* A fabricated segment of this very process, so the report sees a live image. */
static void fab_self(struct fab *f, uint32_t heap_mode, uint64_t sample_bytes)
{
	fab_init_heap(f, 4, 4, 16, 4, 64, heap_mode, sample_bytes);
	uint64_t ticks;
	cr_assert_eq(lw_proc_start_ticks(getpid(), &ticks), 0);
	f->hdr->pid = getpid();
	f->hdr->proc_start_ticks = ticks;
	f->hdr->start_monotonic_ns = fab_now() - 60 * SEC;
	uint64_t fr[1] = { 0x1000 };
	fab_stack(f, 1, fr, 1);
}

Test(analyzer_render_truth, live_blocks_are_not_leaked_yet)
{
	struct fab f;
	fab_self(&f, LW_HEAP_FULL, 0);
	for (size_t i = 0; i < 3; i++)
		fab_alloc(&f, i, 0x7000010 + i * 64, 100, fab_now() - 10 * SEC, 1);
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(&f, dir, "leakwatch.self", path, sizeof path);
	struct lw_report_opts o = { .kind = LW_KIND_HEAP };
	struct lw_report r;
	cr_assert_eq(lw_report_build(&r, path, &o, err, sizeof err), 0, "%s", err);
	cr_assert_eq(r.live, LW_LIVE_ALIVE);
	char *t = render_report(&r, 1, NULL);
	struct tj *j = tj_parse(t);
	cr_assert_not_null(j, "%s", t);
	struct tj *h = tj_get(j, "heap");
	cr_assert_eq(tj_num(h, "live_blocks", -1), 3);
	cr_assert_eq(tj_num(h, "program_blocks", -1), 3);
	cr_assert_eq(tj_num(h, "program_bytes", -1), 300);
	cr_assert_not_null(tj_get(h, "leaked_blocks"), "the key stays");
	cr_assert_eq(tj_get(h, "leaked_blocks")->type, TJ_NULL, "a running process has not leaked them (yet)");
	cr_assert_eq(tj_get(h, "leaked_bytes")->type, TJ_NULL);
	cr_assert_eq(tj_num(j, "end_time_lower_bound", 1), 0);
	tj_free(j);
	free(t);
	lw_report_free(&r);

	/* the same blocks once the image has exited are leaked */
	f.hdr->state = LW_STATE_EXITED;
	f.hdr->end_monotonic_ns = fab_now();
	fab_write(&f, dir, "leakwatch.self", path, sizeof path);
	fab_free(&f);
	cr_assert_eq(lw_report_build(&r, path, &o, err, sizeof err), 0, "%s", err);
	t = render_report(&r, 1, NULL);
	j = tj_parse(t);
	h = tj_get(j, "heap");
	cr_assert_eq(tj_num(h, "leaked_blocks", -1), 3);
	cr_assert_eq(tj_num(h, "leaked_bytes", -1), 300);
	cr_assert_eq(tj_num(h, "program_blocks", -1), 3);
	tj_free(j);
	free(t);
	lw_report_free(&r);
}

Test(analyzer_render_truth, few_samples_are_counted_in_text)
{
	struct fab f;
	fab_init_heap(&f, 4, 4, 16, 4, 1024, LW_HEAP_SAMPLED, 512 * 1024);
	f.hdr->start_monotonic_ns = START;
	f.hdr->state = LW_STATE_EXITED;
	f.hdr->end_monotonic_ns = START + 10 * SEC;
	uint64_t fr1[1] = { 0x1000 }, fr2[1] = { 0x2000 };
	fab_stack(&f, 1, fr1, 1);
	fab_stack(&f, 2, fr2, 1);
	/* one sample of 512 KiB from stack 1; 200 samples of 1 MiB from stack 2 */
	fab_alloc(&f, 0, 0x7000010, 512 * 1024, START + SEC, 1);
	for (size_t i = 0; i < 200; i++)
		fab_alloc(&f, 1 + i, 0x8000000 + i * 64, 1024 * 1024, START + SEC, 2);
	struct lw_report r;
	report_of(&f, &r, LW_KIND_HEAP);
	fab_free(&f);
	char *t = render_report(&r, 0, NULL);
	const char *one = strstr(t, " live (est. from 1 sample)  (allocated ");
	cr_assert_not_null(one, "a one-sample estimate says so: %s", t);
	cr_assert(strstr(t, " ~2 blocks  ~810.0 KiB live (est. from 1 sample)  (allocated ~810.0 KiB total)"), "%s", t);
	cr_assert_null(strstr(t, "(est. from 200 samples)"), "many samples need no warning: %s", t);
	free(t);
	lw_report_free(&r);
}
