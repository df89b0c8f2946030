/* SPDX-License-Identifier: MIT */
/*
 * segdir.h — the segment directory (segdir.c): finding segments, turning a
 * PID or path argument into one, removing a gone process's segment, and the
 * liveness and clock of the process image a snapshot describes.
 */
#ifndef LEAKWATCH_SEGDIR_H
#define LEAKWATCH_SEGDIR_H

#include <limits.h>
#include <stdint.h>
#include "snapshot.h"

/* Liveness of the process image a segment describes. */
enum lw_live {
	LW_LIVE_ALIVE = 0,              /* running, same image (start time matches) */
	LW_LIVE_EXITED,                 /* the shim recorded an exit */
	LW_LIVE_EXECED,                 /* replaced by execve() */
	LW_LIVE_DEAD,                   /* gone without an exit record (killed) or pid reused */
	LW_LIVE_DISABLED,               /* shim disabled itself, process still alive */
};

struct lw_segref {
	char path[PATH_MAX];
	int pid;
	int archived;                   /* leakwatch.<pid>.<suffix> */
};

/* lw_segment_dir - $LEAKWATCH_DIR if set and non-empty, else LW_DEFAULT_DIR. */
const char *lw_segment_dir(void);

/*
 * lw_segments_list - every leakwatch.<pid>[.<suffix>] regular-name entry of
 * `dir`, sorted by pid then name (live "leakwatch.<pid>" before archives).
 * Returns the count (>= 0) with *out malloc'd (free()), or -1 with err set.
 */
int lw_segments_list(const char *dir, struct lw_segref **out, char *err, size_t errlen);

/*
 * lw_segment_resolve - turn a `report` argument into a segment path.
 * An argument containing '/' or naming an existing file is a path; all
 * digits is a pid looked up as $DIR/leakwatch.<pid>.  Returns 0 with the path
 * in out, or -1 with "no process N and no segment for it" / "process N is
 * running but is not traced by leakwatch (no DIR/leakwatch.N)" in err.
 */
int lw_segment_resolve(const char *arg, char *out, size_t outlen, char *err, size_t errlen);

/*
 * lw_segment_name_pid - the pid in a file name "leakwatch.<pid>" (archived
 * = 0) or "leakwatch.<pid>.<suffix>" (archived = 1); -1 for any other name.
 */
int lw_segment_name_pid(const char *name, int *archived);

/*
 * lw_segment_remove - unlink s->path, but only while it still is the regular
 * file (same device and inode) the snapshot s was read from: never a symlink
 * or a file put there since.  Returns 0, or -1 with errno set (ESTALE when
 * the file was replaced).
 */
int lw_segment_remove(const struct lw_snapshot *s);

/*
 * lw_proc_uids - real and effective uid of a process (/proc/PID/status).
 * Returns 0, or -1 when the process does not exist or the file is unreadable.
 */
int lw_proc_uids(int pid, uint32_t *ruid, uint32_t *euid);

/*
 * lw_proc_start_ticks - /proc/PID/stat field 22.  Returns 0 and sets *ticks,
 * or -1 when the process does not exist or the file cannot be parsed.
 */
int lw_proc_start_ticks(int pid, uint64_t *ticks);

/* lw_snapshot_live - classify the process image of a snapshot (never fails). */
enum lw_live lw_snapshot_live(const struct lw_snapshot *s);

/* lw_live_name - "alive", "exited", "execed", "dead", "disabled". */
const char *lw_live_name(enum lw_live l);

/*
 * lw_snapshot_now - the age reference for a snapshot: CLOCK_MONOTONIC now
 * for a live image, else end_monotonic_ns; for an image killed without an
 * exit record, the latest of last_active_ns and the newest time in any
 * record (never past now) — a lower bound of its end — else the file mtime
 * mapped through the header clock pair, else now.
 */
uint64_t lw_snapshot_now(const struct lw_snapshot *s, enum lw_live live);

/*
 * lw_snapshot_end_lower_bound - 1 when the image is gone without an end time
 * (killed, or its pid reused), so lw_snapshot_now() is only a lower bound of
 * its end: uptime and ages are "at least".  0 for live and ended images.
 */
int lw_snapshot_end_lower_bound(const struct lw_snapshot *s, enum lw_live live);

#endif /* LEAKWATCH_SEGDIR_H */
