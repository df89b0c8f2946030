/* SPDX-License-Identifier: MIT */
/*
 * Tests for analyzer/segment.c and discover.c: snapshot validation over
 * fabricated segments, and every bad-input case of the built binary (one
 * line on stderr, exit status 2).
 */
#include <criterion/criterion.h>
#include <pwd.h>

#include <glob.h>

#include "lib/analyzer.h"

static char dir[64];

static void setup(void)
{
	lw_tmpdir(dir, sizeof dir);
	setenv("LEAKWATCH_DIR", dir, 1);
}

static void teardown(void)
{
	lw_rmdir(dir);
	unsetenv("LEAKWATCH_DIR");
}

static int snap_err(const struct fab *f, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct lw_snapshot s;
	fab_write(f, dir, fab_segname(), path, sizeof path);
	int rc = lw_snapshot_open(&s, path, err, errlen);
	lw_snapshot_free(&s);
	return rc;
}

TestSuite(analyzer_segment, .init = setup, .fini = teardown);

Test(analyzer_segment, valid_snapshot)
{
	struct fab f;
	fab_init(&f, 8, 4, 32, 4);
	f.hdr->counters[LW_CTR_SOCK_OPENED] = 5;
	f.hdr->counters[LW_CTR_DROP_UNWIND] = 2;
	uint64_t fr[3] = { 0x1000, 0x2000, 0x3000 };
	fab_stack(&f, 3, fr, 3);
	fab_module(&f, "/usr/lib/libx.so", 0x7f0000000000, 0x7f0000000000, 0x7f0000100000, 0);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 3, 100);
	fab_handle(&f, 9, LW_ORIGIN_ACCEPT, 3, 200)->state = LW_H_CLOSED;
	fab_handle(&f, 12, LW_ORIGIN_INHERITED, 0, 0);
	struct lw_stack *half = fab_slot(&f, LW_T_STACKS, 6);
	half->seq = 1; /* being filled: must be skipped, not counted busy */

	char path[PATH_MAX], err[LW_ERR_MAX] = "";
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.hdr.pid, lw_dead_pid());
	cr_assert_str_eq(s.hdr.cmdline, "fake --serve");
	cr_assert_eq(s.counters[LW_CTR_SOCK_OPENED], 5);
	cr_assert_eq(s.counters[LW_CTR_DROP_UNWIND], 2);
	cr_assert_eq(s.nstacks, 1);
	cr_assert_eq(s.stacks[0].id, 3);
	cr_assert_eq(s.stacks[0].depth, 3);
	cr_assert_eq(s.stacks[0].frames[2], 0x3000);
	cr_assert_not_null(lw_snapshot_stack(&s, 3));
	cr_assert_null(lw_snapshot_stack(&s, 7));
	cr_assert_null(lw_snapshot_stack(&s, 0));
	cr_assert_eq(s.nmodules, 1);
	cr_assert_str_eq(s.modules[0].path, "/usr/lib/libx.so");
	cr_assert_eq(s.nhandles, 3);
	cr_assert_eq(s.handles[0].fd, 5);
	cr_assert_eq(s.handles[1].fd, 9);
	cr_assert_eq(s.handles[1].h.state, LW_H_CLOSED);
	cr_assert_eq(lw_snapshot_open_count(&s), 2);
	cr_assert_not_null(lw_snapshot_handle(&s, 12));
	cr_assert_null(lw_snapshot_handle(&s, 6));
	cr_assert_eq(s.busy, 0);
	lw_snapshot_free(&s);
	fab_free(&f);
}

Test(analyzer_segment, busy_slot_is_counted_not_waited_for)
{
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	fab_handle(&f, 3, LW_ORIGIN_SOCKET, 0, 1);
	fab_handle(&f, 4, LW_ORIGIN_SOCKET, 0, 1)->seq = 7; /* a writer died inside */
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.nhandles, 1);
	cr_assert_eq(s.handles[0].fd, 3);
	cr_assert_eq(s.busy, 1);
	lw_snapshot_free(&s);
	fab_free(&f);
}

/* A ring that wrapped: the last `capacity` appends, oldest first, across chunks. */
Test(analyzer_segment, badclose_ring_wraps_oldest_first)
{
	struct fab f;
	fab_init(&f, 4, 4, 16, 48); /* chunks of 16 and 32 bad closes */
	cr_assert_eq(f.hdr->chunks[LW_T_BADCLOSES].count, 2);
	cr_assert_eq(f.hdr->badcloses.capacity, 48);
	for (int i = 0; i < 50; i++)
		fab_badclose(&f, 10 + i, 0);
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.nbadcloses, 48);
	for (int i = 0; i < 48; i++)
		cr_assert_eq(s.badcloses[i].fd, 12 + i, "entry %d: fd %d", i, s.badcloses[i].fd);
	lw_snapshot_free(&s);
	fab_free(&f);

	/* not wrapped: the `used` first entries, in order */
	fab_init(&f, 4, 4, 16, 48);
	for (int i = 0; i < 20; i++)
		fab_badclose(&f, 10 + i, 0);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.nbadcloses, 20);
	cr_assert_eq(s.badcloses[0].fd, 10);
	cr_assert_eq(s.badcloses[19].fd, 29);
	lw_snapshot_free(&s);
	fab_free(&f);
}

Test(analyzer_segment, bigger_writer_entries_use_writer_stride)
{
	/* A future shim with larger handle entries: read with its stride (both layouts). */
	for (int v1 = 0; v1 <= 1; v1++) {
		struct fab_spec sp = { .n = { 4, 4, 40, 4 }, .es = { [LW_T_HANDLES] = sizeof(struct lw_handle) + 64 },
				       .v1 = v1 };
		struct fab f;
		fab_init_spec(&f, &sp);
		for (int fd = 2; fd < 40; fd += 35) {
			struct lw_handle *h = fab_slot(&f, LW_T_HANDLES, (size_t)fd);
			h->seq = 2;
			h->state = LW_H_OPEN;
			h->inode = 4200 + (uint64_t)fd;
		}
		f.hdr->handles.used = 40;
		char path[PATH_MAX], err[LW_ERR_MAX];
		fab_write(&f, dir, fab_segname(), path, sizeof path);
		struct lw_snapshot s;
		cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
		cr_assert_eq(s.layout, v1 ? 1u : 2u);
		cr_assert_eq(s.nhandles, 2, "layout %d", v1 ? 1 : 2);
		cr_assert_eq(s.handles[0].fd, 2);
		cr_assert_eq(s.handles[0].h.inode, 4202);
		cr_assert_eq(s.handles[1].fd, 37, "fd 37 is in the second chunk");
		cr_assert_eq(s.handles[1].h.inode, 4237);
		lw_snapshot_free(&s);
		fab_free(&f);
	}
}

/* v2: only fds below handles.used (the highest fd + 1 the shim recorded) are read. */
Test(analyzer_segment, handles_beyond_used_are_not_read)
{
	struct fab f;
	fab_init(&f, 4, 4, 64, 4);
	fab_handle(&f, 3, LW_ORIGIN_SOCKET, 0, 1);
	fab_handle(&f, 40, LW_ORIGIN_SOCKET, 0, 1);
	f.hdr->handles.used = 4;
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.nhandles, 1);
	cr_assert_eq(s.handles[0].fd, 3);
	lw_snapshot_free(&s);
	fab_free(&f);
}

/*
 * Layout 1 (shims before growable segments) is still read: every table at
 * lw_table.offset, the heap a plain hash set there, the ring sized by its
 * capacity.
 */
Test(analyzer_segment, layout_v1_segment_is_read)
{
	struct fab f;
	fab_init_v1(&f, 8, 4, 32, 3, 64, LW_HEAP_FULL, 0);
	cr_assert_eq(f.hdr->version, 1);
	cr_assert_eq(f.hdr->chunks[LW_T_STACKS].count, 0, "no chunks in layout 1");
	uint64_t fr[2] = { 0x1000, 0x2000 };
	fab_stack(&f, 5, fr, 2);
	fab_module(&f, "/usr/lib/libv1.so", 0x7f0000000000, 0x7f0000000000, 0x7f0000100000, 0);
	fab_handle(&f, 31, LW_ORIGIN_SOCKET, 5, 100);
	f.hdr->handles.used = 0; /* v1 shims scanned by capacity: used is not trusted */
	for (int i = 0; i < 5; i++)
		fab_badclose(&f, 10 + i, 5);
	fab_alloc(&f, 63, 0x5000, 48, 10, 5);
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.layout, 1);
	cr_assert_eq(s.incomplete, 0);
	cr_assert_eq(s.nstacks, 1);
	cr_assert_eq(s.stacks[0].id, 5);
	cr_assert_eq(s.nmodules, 1);
	cr_assert_str_eq(s.modules[0].path, "/usr/lib/libv1.so");
	cr_assert_eq(s.nhandles, 1);
	cr_assert_eq(s.handles[0].fd, 31);
	cr_assert_eq(s.nbadcloses, 3);
	cr_assert_eq(s.badcloses[0].fd, 12);
	cr_assert_eq(s.badcloses[2].fd, 14);
	cr_assert_eq(s.nallocs, 1);
	cr_assert_eq(s.allocs[0].ptr, 0x5000);
	lw_snapshot_free(&s);

	char out[16384], e2[8192];
	int rc = cli_run((const char *[]){ "report", path, NULL }, (uid_t)-1, out, sizeof out, e2, sizeof e2);
	cr_assert_eq(rc, 0, "stderr: %s", e2);
	cr_assert(strstr(out, "1 open socket tracked") && strstr(out, "1 live heap block recorded"), "%s", out);
	cr_assert_null(strstr(out, "INCOMPLETE"), "%s", out);

	/* layout 1's own bounds still hold */
	f.hdr->handles.capacity = 1000000;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert(strstr(err, "handle table"), "%s", err);
	f.hdr->handles.capacity = 32;
	f.hdr->modules.offset = 64; /* inside the header */
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert(strstr(err, "module table"), "%s", err);
	f.hdr->modules.offset = f.hdr->stacks.offset;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert_str_eq(err, "stack and module tables overlap");
	fab_free(&f);
}

Test(analyzer_segment, rejects_bad_headers)
{
	struct fab f;
	char err[LW_ERR_MAX];

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->magic ^= 1;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert_str_eq(err, "not a leakwatch segment");
	fab_free(&f);

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->version = 4;
	f.hdr->compat_version = 3;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert_str_eq(err, "newer layout (version 4, this leakwatch reads up to 2)");
	fab_free(&f);

	/* newer writer that older readers can still read: accepted */
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->version = 3;
	f.hdr->compat_version = 2;
	cr_assert_eq(snap_err(&f, err, sizeof err), 0, "%s", err);
	fab_free(&f);

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->total_size += 4096;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert(strstr(err, "truncated: header says"), "%s", err);
	fab_free(&f);

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->chunks[LW_T_HANDLES].count = LW_CHUNKS_MAX + 1;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert_str_eq(err, "handle table claims 25 chunks (at most 24)");
	fab_free(&f);

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->stacks.entry_size = 64;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert(strstr(err, "stack table entries are 64 bytes"), "%s", err);
	fab_free(&f);

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->chunks[LW_T_MODULES].off[0] = 64; /* inside the header, and not on a page */
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert_str_eq(err, "module table chunk 0 is misaligned");
	f.hdr->chunks[LW_T_MODULES].off[0] = 4096;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert_str_eq(err, "module table chunk 0 offset 4096 is outside the file");
	fab_free(&f);

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->header_size = 100;
	cr_assert_eq(snap_err(&f, err, sizeof err), -1);
	cr_assert(strstr(err, "header size"), "%s", err);
	fab_free(&f);
}

Test(analyzer_segment, rejects_short_and_foreign_files)
{
	char path[PATH_MAX], err[LW_ERR_MAX];
	struct lw_snapshot s;

	snprintf(path, sizeof path, "%s/empty", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), -1);
	cr_assert(strstr(err, "truncated"), "%s", err);

	cr_assert_eq(lw_snapshot_open(&s, "/etc/passwd", err, sizeof err), -1);
	cr_assert_str_eq(err, "not a leakwatch segment");

	cr_assert_eq(lw_snapshot_open(&s, dir, err, sizeof err), -1);
	cr_assert_str_eq(err, "not a regular file");

	char link[PATH_MAX];
	snprintf(link, sizeof link, "%s/link", dir);
	cr_assert_eq(symlink("/etc/passwd", link), 0);
	cr_assert_eq(lw_snapshot_open(&s, link, err, sizeof err), -1);
	cr_assert(strstr(err, "symbolic link"), "%s", err);

	cr_assert_eq(lw_snapshot_open(&s, "/nonexistent/leakwatch.1", err, sizeof err), -1);
	cr_assert_str_eq(err, "No such file or directory");

	/* a header cut short */
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	fab_write(&f, dir, "short", path, sizeof path);
	cr_assert_eq(truncate(path, 100), 0);
	cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), -1);
	cr_assert(strstr(err, "truncated"), "%s", err);
	fab_free(&f);
}

Test(analyzer_segment, discover_lists_and_resolves)
{
	struct fab f;
	char path[PATH_MAX], err[LW_ERR_MAX];
	fab_init(&f, 4, 4, 16, 4);
	fab_write(&f, dir, "leakwatch.77", path, sizeof path);
	fab_write(&f, dir, "leakwatch.77.1", path, sizeof path);
	fab_write(&f, dir, "leakwatch.5", path, sizeof path);
	fab_write(&f, dir, "leakwatch.x", path, sizeof path);
	fab_write(&f, dir, "other", path, sizeof path);
	fab_free(&f);

	struct lw_segref *refs;
	int n = lw_segments_list(dir, &refs, err, sizeof err);
	cr_assert_eq(n, 3, "%s", err);
	cr_assert_eq(refs[0].pid, 5);
	cr_assert_eq(refs[1].pid, 77);
	cr_assert_eq(refs[1].archived, 0);
	cr_assert_eq(refs[2].archived, 1);
	free(refs);

	cr_assert_eq(lw_segment_resolve("77", path, sizeof path, err, sizeof err), 0, "%s", err);
	char want[PATH_MAX];
	snprintf(want, sizeof want, "%s/leakwatch.77", dir);
	cr_assert_str_eq(path, want);

	cr_assert_eq(lw_segment_resolve("./some/file", path, sizeof path, err, sizeof err), 0);
	cr_assert_str_eq(path, "./some/file");

	cr_assert_eq(lw_segment_resolve(lw_dead_pid_str(), path, sizeof path, err, sizeof err), -1);
	cr_assert_str_eq(err, lw_pidfmt("no process %d and no segment for it"));

	char me[32];
	snprintf(me, sizeof me, "%d", (int)getpid());
	cr_assert_eq(lw_segment_resolve(me, path, sizeof path, err, sizeof err), -1);
	snprintf(want, sizeof want, "process %d is running but is not traced by leakwatch (no %s/leakwatch.%d)",
		 (int)getpid(), dir, (int)getpid());
	cr_assert_str_eq(err, want);
}

Test(analyzer_segment, liveness_uses_start_time)
{
	struct lw_snapshot s;
	memset(&s, 0, sizeof s);
	s.hdr.pid = getpid();
	s.state = LW_STATE_RUNNING;
	cr_assert_eq(lw_proc_start_ticks(getpid(), &s.hdr.proc_start_ticks), 0);
	cr_assert_eq(lw_snapshot_live(&s), LW_LIVE_ALIVE);
	s.hdr.proc_start_ticks += 1; /* same pid, another process image: pid reuse */
	cr_assert_eq(lw_snapshot_live(&s), LW_LIVE_DEAD);
	s.state = LW_STATE_EXITED;
	cr_assert_eq(lw_snapshot_live(&s), LW_LIVE_EXITED);
	s.state = LW_STATE_EXECED;
	cr_assert_eq(lw_snapshot_live(&s), LW_LIVE_EXECED);
	s.state = LW_STATE_RUNNING;
	s.hdr.pid = lw_dead_pid();
	cr_assert_eq(lw_snapshot_live(&s), LW_LIVE_DEAD);
}

/* ---- the binary: bad input gives one line on stderr and exit status 2 ---- */

static void expect_usage_fail(const char *const *args, const char *needle)
{
	char out[8192], err[8192];
	int rc = cli_run(args, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_expect_eq(rc, 2, "%s: exit %d, stderr '%s'", args[0] ? args[0] : "(none)", rc, err);
	cr_expect_eq(count_lines(err), 1, "%s: stderr must be one line: '%s'", args[0] ? args[0] : "", err);
	cr_expect(strncmp(err, "leakwatch: ", 11) == 0, "stderr '%s'", err);
	if (needle)
		cr_expect(strstr(err, needle), "stderr '%s' lacks '%s'", err, needle);
}

Test(analyzer_segment, cli_bad_arguments)
{
	expect_usage_fail((const char *[]){ NULL }, "missing command");
	expect_usage_fail((const char *[]){ "--bogus", NULL }, "unknown option '--bogus'");
	expect_usage_fail((const char *[]){ "frobnicate", NULL }, "unknown command");
	expect_usage_fail((const char *[]){ "report", NULL }, "missing PID");
	expect_usage_fail((const char *[]){ "report", "1", "--older-than", "5parsecs", NULL }, "bad duration");
	expect_usage_fail((const char *[]){ "report", "1", "--older-than", "-5s", NULL }, "bad duration");
	expect_usage_fail((const char *[]){ "report", "1", "--older-than", NULL }, "missing argument");
	expect_usage_fail((const char *[]){ "report", "1", "--format", "xml", NULL }, "unknown format");
	expect_usage_fail((const char *[]){ "report", "1", "--wat", NULL }, "unknown option");
	expect_usage_fail((const char *[]){ "report", "1", "2", NULL }, "unexpected argument");
	expect_usage_fail((const char *[]){ "ps", "extra", NULL }, "unexpected argument");
	expect_usage_fail((const char *[]){ "run", NULL }, "missing command");
	expect_usage_fail((const char *[]){ "run", "--", NULL }, "missing command");
	expect_usage_fail((const char *[]){ "run", "--older-than", "soon", "--", "true", NULL }, "bad duration");
	expect_usage_fail((const char *[]){ "run", "--nope", "--", "true", NULL }, "unknown option");
}

Test(analyzer_segment, cli_bad_targets)
{
	char path[PATH_MAX], me[32];
	struct fab f;

	expect_usage_fail((const char *[]){ "report", lw_dead_pid_str(), NULL }, lw_pidfmt("no process %d and no segment"));
	snprintf(me, sizeof me, "%d", (int)getpid());
	expect_usage_fail((const char *[]){ "report", me, NULL }, "is running but is not traced");
	expect_usage_fail((const char *[]){ "report", "/etc/passwd", NULL }, "not a leakwatch segment");

	snprintf(path, sizeof path, "%s/empty", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	expect_usage_fail((const char *[]){ "report", path, NULL }, "truncated");

	fab_init(&f, 4, 4, 16, 4);
	f.hdr->compat_version = 9;
	f.hdr->version = 9;
	fab_write(&f, dir, "leakwatch.11", path, sizeof path);
	expect_usage_fail((const char *[]){ "report", "11", NULL }, "newer layout (version 9");
	fab_free(&f);

	fab_init(&f, 4, 4, 16, 4);
	fab_write(&f, dir, "leakwatch.12", path, sizeof path);
	cr_assert_eq(truncate(path, (off_t)f.size - 64), 0);
	expect_usage_fail((const char *[]){ "report", path, NULL }, "truncated: header says");
	fab_free(&f);
}

Test(analyzer_segment, cli_valid_segment_and_ps)
{
	char path[PATH_MAX], out[16384], err[8192];
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 0, 1);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	snprintf(path, sizeof path, "%s/leakwatch.9", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));

	int rc = cli_run((const char *[]){ "report", lw_dead_pid_str(), NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "stderr: %s", err);
	cr_assert(strstr(out, lw_pidfmt("pid %d (fake --serve) dead")), "%s", out);

	rc = cli_run((const char *[]){ "ps", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "stderr: %s", err);
	cr_assert(strstr(out, "PID"), "%s", out);
	cr_assert(strstr(out, lw_pidfmt("%d  dead")), "%s", out);
	/* a broken file is listed with its reason, not fatal */
	cr_assert(strstr(out, "invalid"), "%s", out);
	cr_assert(strstr(out, "truncated"), "%s", out);

	rc = cli_run((const char *[]){ "--help", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0);
	cr_assert(strstr(out, "exit status"), "%s", out);
}

Test(analyzer_segment, cli_segment_of_another_user)
{
	if (getuid() != 0)
		cr_skip_test("needs root to create a file owned by someone else");
	struct passwd *pw = getpwnam("nobody");
	cr_assert_not_null(pw);
	char path[PATH_MAX], out[4096], err[4096];
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	fab_write(&f, dir, "leakwatch.13", path, sizeof path);
	fab_free(&f);
	chmod(path, 0644); /* readable, but not ours: still refused */
	int rc = cli_run((const char *[]){ "report", path, NULL }, pw->pw_uid, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 2, "stderr: %s", err);
	cr_assert_eq(count_lines(err), 1, "%s", err);
	cr_assert(strstr(err, "owned by uid 0"), "%s", err);
}

Test(analyzer_segment, cli_run_exec_failure_and_status)
{
	char out[16384], err[8192];
	/* Any loadable library stands in for the shim: nothing writes segments. */
	const char *shim = loaded_lib_path("libm.so.6");
	if (!shim || access(shim, R_OK) != 0)
		cr_skip_test("no libm to stand in for the shim");
	setenv("LEAKWATCH_SHIM", shim, 1);

	int rc = cli_run((const char *[]){ "run", "--", "/nonexistent/cmd", NULL }, (uid_t)-1, out, sizeof out,
			 err, sizeof err);
	cr_expect_eq(rc, 2, "stderr: %s", err);
	cr_expect_eq(count_lines(err), 1, "%s", err);
	cr_expect(strstr(err, "cannot run /nonexistent/cmd: No such file or directory"), "%s", err);

	/* Nothing wrote a segment: the command's status is reported, and run fails
	 * closed with 3 (not traced) instead of passing on 0 sockets it never saw. */
	rc = cli_run((const char *[]){ "run", "--fail-on-leak", "--", "sh", "-c", "exit 5", NULL }, (uid_t)-1,
		     out, sizeof out, err, sizeof err);
	cr_expect_eq(rc, 3, "stderr: %s", err);
	cr_expect(strstr(err, "command exited with status 5"), "%s", err);
	cr_expect(strstr(err, "no segment for pid ") && strstr(err, " (sh -c exit 5): ") &&
		  strstr(err, ": not traced\n"), "%s", err);
	cr_expect_eq(out[0], '\0', "the report is not on stdout: %s", out);

	rc = cli_run((const char *[]){ "run", "--", "sh", "-c", "kill -TERM $$", NULL }, (uid_t)-1, out,
		     sizeof out, err, sizeof err);
	cr_expect_eq(rc, 3, "stderr: %s", err);
	cr_expect(strstr(err, "killed by signal 15"), "%s", err);
	cr_expect(strstr(err, ": not traced\n"), "%s", err);

	setenv("LEAKWATCH_SHIM", "/nonexistent/libleakwatch.so", 1);
	rc = cli_run((const char *[]){ "run", "--", "true", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_expect_eq(rc, 2);
	cr_expect(strstr(err, "cannot find libleakwatch.so (set LEAKWATCH_SHIM)"), "%s", err);
	unsetenv("LEAKWATCH_SHIM");

	/* the private directory is gone afterwards */
	struct lw_segref *refs;
	char e[LW_ERR_MAX];
	cr_expect_eq(lw_segments_list(dir, &refs, e, sizeof e), 0);
	free(refs);
	char pattern[PATH_MAX + 64];
	glob_t g;
	snprintf(pattern, sizeof pattern, "%s/leakwatch-run.*", dir);
	cr_expect_neq(glob(pattern, GLOB_NOSORT, NULL, &g), 0, "leftover run directory in %s", dir);
	globfree(&g);
}

/* A fork child's header has its start time from CLOCK_BOOTTIME, taken just
 * after the fork (LW_HDR_START_TICKS_BOOTTIME): the kernel's is the same tick
 * or the one before.  One tick later is the same live process; without the
 * flag, or two ticks off, it is another process (the pid was reused). */
Test(analyzer_segment, fork_child_start_time_within_a_tick_is_alive)
{
	uint64_t ticks = 0;
	cr_assert_eq(lw_proc_start_ticks(getpid(), &ticks), 0);
	const struct { uint64_t ticks; uint32_t flags; enum lw_live want; } cases[] = {
		{ ticks, 0, LW_LIVE_ALIVE },
		{ ticks + 1, LW_HDR_START_TICKS_BOOTTIME, LW_LIVE_ALIVE },
		{ ticks, LW_HDR_START_TICKS_BOOTTIME, LW_LIVE_ALIVE },
		{ ticks + 1, 0, LW_LIVE_DEAD },
		{ ticks + 2, LW_HDR_START_TICKS_BOOTTIME, LW_LIVE_DEAD },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fab f;
		fab_init(&f, 8, 4, 32, 4);
		f.hdr->pid = getpid();
		f.hdr->proc_start_ticks = cases[i].ticks;
		f.hdr->flags = cases[i].flags;
		f.hdr->state = LW_STATE_RUNNING;
		char name[64], path[PATH_MAX], err[LW_ERR_MAX] = "";
		snprintf(name, sizeof name, "leakwatch.%d", (int)getpid());
		fab_write(&f, dir, name, path, sizeof path);
		struct lw_snapshot s;
		cr_assert_eq(lw_snapshot_open(&s, path, err, sizeof err), 0, "%s", err);
		cr_expect_eq(lw_snapshot_live(&s), cases[i].want, "case %zu: ticks %+ld flags %u", i,
			     (long)(cases[i].ticks - ticks), cases[i].flags);
		lw_snapshot_free(&s);
		fab_free(&f);
		unlink(path);
	}
}
