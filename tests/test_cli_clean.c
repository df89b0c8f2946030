/* SPDX-License-Identifier: MIT */
/*
 * `leakwatch clean` on fabricated segments: it must never remove the
 * segment of a process that still runs, whatever the header's state says;
 * it judges layout 2 segments (sparse files of 1 TiB) by their header alone
 * and reports the space it frees from st_blocks; --older-than goes by the
 * process's last sign of life.
 */
#include <criterion/criterion.h>

#include "lib/analyzer.h"

static const char *const dir = suite_dir; /* the suite's private directory */

TestSuite(cli_clean, .init = suite_segdir_setup, .fini = suite_segdir_teardown);

/* A gone process's v2 segment: a 1 TiB span holding a few pages. */
static void gone_segment(char *path, size_t len)
{
	struct fab f;
	fab_init_heap(&f, 16, 4, 16, 4, 4096, LW_HEAP_FULL, 0);
	f.hdr->state = LW_STATE_EXITED;
	fab_alloc(&f, 3, 0x4000, 100, 2000000000ull, 0);
	fab_span(&f, 1ull << 40);
	fab_write(&f, dir, fab_segname(), path, len);
	fab_free(&f);
}

/* ---- clean ---------------------------------------------------------------------- */

/* A segment of this (live) test process whose header says it ended. */
static void own_segment(uint32_t state, char *path, size_t len)
{
	struct fab f;
	char name[64];
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->pid = getpid();
	cr_assert_eq(lw_proc_start_ticks(getpid(), &f.hdr->proc_start_ticks), 0);
	f.hdr->state = state;
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 0, 1);
	snprintf(name, sizeof name, "leakwatch.%d%s", (int)getpid(), state == LW_STATE_EXECED ? ".1" : "");
	fab_write(&f, dir, name, path, len);
	fab_free(&f);
}

Test(cli_clean, clean_keeps_segments_of_processes_that_still_run)
{
	char exited[PATH_MAX], execed[PATH_MAX], gone[PATH_MAX], out[16384], err[8192];
	/* exited, but the process still runs (its atexit handlers, say) */
	own_segment(LW_STATE_EXITED, exited, sizeof exited);
	/* an image this process exec'd out of (archived by the new image) */
	own_segment(LW_STATE_EXECED, execed, sizeof execed);
	/* and one that is really gone: a 1 TiB sparse v2 segment */
	gone_segment(gone, sizeof gone);
	struct stat st;
	cr_assert_eq(stat(gone, &st), 0);
	char size[32], want[PATH_MAX + 96];
	lw_bytes_format((double)st.st_blocks * 512, size, sizeof size);

	int rc = cli_run((const char *[]){ "clean", NULL }, (uid_t)-1, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	snprintf(want, sizeof want, "removed %s (pid %d, exited, %s)\n", gone, lw_dead_pid(), size);
	cr_assert(strstr(out, want), "'%s' in %s", want, out);
	snprintf(want, sizeof want, "1 segment removed, %s freed\n", size);
	cr_assert(strstr(out, want), "'%s' in %s", want, out);
	cr_assert_eq(err[0], '\0', "%s", err);
	cr_assert_eq(stat(exited, &st), 0, "the live process's segment stays");
	cr_assert_eq(stat(execed, &st), 0, "the live process's earlier image stays");
	cr_assert_neq(stat(gone, &st), 0);
}

Test(cli_clean, clean_dry_run_and_older_than_use_the_last_sign_of_life)
{
	char path[PATH_MAX], out[16384], err[8192];
	struct fab f;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->state = LW_STATE_EXITED;
	/* the file is new, but its process ended an hour ago */
	f.hdr->start_realtime_ns = ((uint64_t)now.tv_sec - 7200) * 1000000000ull;
	f.hdr->end_realtime_ns = ((uint64_t)now.tv_sec - 3600) * 1000000000ull;
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	struct timespec old[2] = { { now.tv_sec - 3600, 0 }, { now.tv_sec - 3600, 0 } };
	cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	int rc = cli_run((const char *[]){ "clean", "--older-than", "10m", "--dry-run", NULL }, (uid_t)-1, out,
			 sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "would remove ") && strstr(out, "1 segment to remove, "), "%s", out);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "dry run");
	/* last active a minute ago: kept by --older-than 10m */
	f.hdr->end_realtime_ns = ((uint64_t)now.tv_sec - 60) * 1000000000ull;
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	rc = cli_run((const char *[]){ "clean", "--older-than", "10m", NULL }, (uid_t)-1, out, sizeof out, err,
		     sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "0 segments removed, 0 B freed"), "%s", out);
	cr_assert_eq(stat(path, &st), 0);
}
