/* SPDX-License-Identifier: MIT */
/* cmd_clean.c — `leakwatch clean`: remove the segments of processes that are gone. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "names.h"
#include "segdir.h"
#include "snapshot.h"

/*
 * clean: remove the segments of processes that are gone (exited, exec'd,
 * killed).  A segment is kept while its process runs: the header's pid with
 * the same start time is alive — whatever the header's state says (an image
 * that recorded its exit may still be running atexit handlers; an exec'd
 * one's process lives on, and its new image archives the old segment) — or
 * the shim says it is running.  A file that is not a valid segment of ours
 * is never touched (one warning line each).  Only the header is read: a
 * segment of millions of heap blocks is judged as fast as an empty one.
 * Sizes are the space the files hold (st_blocks), not their logical size
 * (a layout 2 segment is a sparse file of up to 1 TiB).  --older-than keeps
 * segments whose process showed a sign of life (the header's end time or
 * last activity, or the file's mtime) within DUR; --dry-run only lists.
 */
/* Defaults of `clean`; each field is one option. */
struct clean_options {
	uint64_t older_than_ns;         /* --older-than DUR: keep segments last active within DUR */
	int dry_run;                    /* --dry-run: only list */
};

static const struct lw_option clean_options_table[] = {
	{ "older-than", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(struct clean_options, older_than_ns), "DUR",
	  "only segments whose process was last active at least DUR ago", 0, 0, 0, "bad duration '*'", NULL },
	{ "dry-run", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct clean_options, dry_run), NULL,
	  "list what would be removed, remove nothing", 0, 0, 0, NULL, NULL },
};

const struct lw_command_spec lw_clean_spec = { "clean", LW_CMD_NO_ARGS, NULL, clean_options_table,
					       sizeof clean_options_table / sizeof clean_options_table[0] };

/* process_runs - the process the header names still runs (same pid, same start time). */
static int process_runs(const struct lw_snapshot *s)
{
	uint64_t ticks;
	if (lw_proc_start_ticks(s->hdr.pid, &ticks) != 0)
		return 0;
	/* a header that never learnt its start time cannot tell a reused pid from its own */
	return s->hdr.proc_start_ticks == 0 || lw_start_ticks_match(&s->hdr, ticks);
}

/* last_seen_ns - CLOCK_REALTIME of the latest sign of life: the file's mtime (tmpfs
 * stamps a shared mapping only when a page is first dirtied, so it lags), the
 * header's end time, or its last activity mapped through the header's clock pair. */
static uint64_t last_seen_ns(const struct lw_snapshot *s)
{
	const struct lw_header *h = &s->hdr;
	uint64_t t = (uint64_t)s->mtime.tv_sec * 1000000000ull + (uint64_t)s->mtime.tv_nsec;
	if (h->end_realtime_ns > t)
		t = h->end_realtime_ns;
	uint64_t la = h->last_active_ns;
	if (h->start_realtime_ns && la > h->start_monotonic_ns && h->start_realtime_ns + (la - h->start_monotonic_ns) > t)
		t = h->start_realtime_ns + (la - h->start_monotonic_ns);
	return t;
}

int lw_cmd_clean(int argc, char **argv)
{
	struct clean_options o = { 0 };
	if (lw_options_parse(&lw_clean_spec, &o, argc, argv, NULL) < 0)
		return LW_EXIT_USAGE;
	uint64_t older_ns = o.older_than_ns;
	int dry = o.dry_run;
	const char *dir = lw_segment_dir();
	struct lw_segref *refs = NULL;
	char err[LW_ERR_MAX];
	int n = lw_cli_segments_list(dir, &refs);
	if (n < 0)
		return LW_EXIT_ERROR;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	int removed = 0, failed = 0;
	uint64_t freed = 0;
	/* root may remove anyone's segment of a process that is gone, nothing else */
	unsigned flags = LW_SNAP_HEADER_ONLY | (getuid() == 0 ? LW_SNAP_GONE_ANY_OWNER : 0);
	for (int i = 0; i < n; i++) {
		struct lw_snapshot s;
		if (lw_snapshot_open_flags(&s, refs[i].path, flags, err, sizeof err) < 0) {
			fprintf(stderr, "leakwatch: skipping %s: %s\n", refs[i].path, err);
			lw_snapshot_free(&s);
			continue; /* not ours to judge */
		}
		enum lw_live live = lw_snapshot_live(&s);
		uint64_t seen = last_seen_ns(&s);
		int keep = live == LW_LIVE_ALIVE || live == LW_LIVE_DISABLED || process_runs(&s) ||
			   (seen < now_ns ? now_ns - seen : 0) < older_ns;
		uint64_t bytes = s.file_bytes;
		int rm = !keep && (dry || lw_segment_remove(&s) == 0);
		int e = errno;
		lw_snapshot_free(&s);
		if (keep)
			continue;
		if (!rm) {
			fprintf(stderr, "leakwatch: cannot remove %s: %s\n", refs[i].path, strerror(e));
			failed = 1;
			continue;
		}
		char b[32];
		printf("%s %s (pid %d, %s, %s)\n", dry ? "would remove" : "removed", refs[i].path, refs[i].pid,
		       lw_live_name(live), lw_bytes_format((double)bytes, b, sizeof b));
		removed++;
		freed += bytes;
	}
	free(refs);
	char b[32];
	printf("%d segment%s %s, %s %s\n", removed, removed == 1 ? "" : "s", dry ? "to remove" : "removed",
	       lw_bytes_format((double)freed, b, sizeof b), dry ? "to free" : "freed");
	return failed ? LW_EXIT_ERROR : LW_EXIT_OK;
}
