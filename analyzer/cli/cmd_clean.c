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
#include "segdir.h"
#include "snapshot.h"

/*
 * clean: remove the segments of processes that are gone (exited, exec'd,
 * killed).  A live process's segment is never touched, nor a file that is
 * not a valid segment of ours.  --older-than keeps recent ones (by the
 * file's modification time); --dry-run only lists.
 */
/* Defaults of `clean`; each field is one option. */
struct clean_options {
	uint64_t older_than_ns;         /* --older-than DUR: keep segments modified within DUR */
	int dry_run;                    /* --dry-run: only list */
};

static const struct lw_option clean_options_table[] = {
	{ "older-than", LW_OPT_DURATION, LW_ARG_REQUIRED, offsetof(struct clean_options, older_than_ns), "DUR",
	  "only segments last written at least DUR ago", 0, 0, 0, "bad duration '*'", NULL },
	{ "dry-run", LW_OPT_FLAG, LW_ARG_NONE, offsetof(struct clean_options, dry_run), NULL,
	  "list what would be removed, remove nothing", 0, 0, 0, NULL, NULL },
};

const struct lw_command_spec lw_clean_spec = { "clean", LW_CMD_NO_ARGS, NULL, clean_options_table,
					       sizeof clean_options_table / sizeof clean_options_table[0] };

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
	int removed = 0, failed = 0;
	for (int i = 0; i < n; i++) {
		struct lw_snapshot s;
		/* root may remove anyone's segment of a process that is gone, nothing else */
		if (lw_snapshot_open_flags(&s, refs[i].path, getuid() == 0 ? LW_SNAP_GONE_ANY_OWNER : 0, err,
					   sizeof err) < 0) {
			fprintf(stderr, "leakwatch: skipping %s: %s\n", refs[i].path, err);
			lw_snapshot_free(&s);
			continue; /* not ours to judge */
		}
		enum lw_live live = lw_snapshot_live(&s);
		uint64_t age = (uint64_t)(now.tv_sec - s.mtime.tv_sec) * 1000000000ull;
		int rm = live != LW_LIVE_ALIVE && live != LW_LIVE_DISABLED && age >= older_ns &&
			 (dry || lw_segment_remove(&s) == 0);
		lw_snapshot_free(&s);
		if (live == LW_LIVE_ALIVE || live == LW_LIVE_DISABLED || age < older_ns)
			continue;
		if (!rm) {
			fprintf(stderr, "leakwatch: cannot remove %s: %s\n", refs[i].path, strerror(errno));
			failed = 1;
			continue;
		}
		printf("%s %s (pid %d, %s)\n", dry ? "would remove" : "removed", refs[i].path, refs[i].pid,
		       lw_live_name(live));
		removed++;
	}
	free(refs);
	printf("%d segment%s %s\n", removed, removed == 1 ? "" : "s", dry ? "to remove" : "removed");
	return failed ? LW_EXIT_ERROR : LW_EXIT_OK;
}
