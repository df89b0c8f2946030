/* SPDX-License-Identifier: MIT */
/*
 * fdgroups.h — open descriptors other than sockets (files, directories,
 * pipes, eventfd, epoll, ...), grouped by where they were made
 * (fdgroups.c).  Sockets are classify.c's.
 */
#ifndef LEAKWATCH_FDGROUPS_H
#define LEAKWATCH_FDGROUPS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include "kernel.h"
#include "snapshot.h"

/* One descriptor of a group. */
struct lw_fd_member {
	int fd;
	uint16_t origin;                /* enum lw_origin */
	uint16_t now_kind;              /* what /proc says it is now (= the group's kind without it) */
	int32_t oflags;                 /* the flags its call was given */
	uint64_t age_ns;
	char path[LW_FDPATH_MAX + 1];   /* the path its call was given ("" none) */
	int path_truncated;
	const char *now;                /* /proc/PID/fd/N now (NULL unknown: no kernel view);
					 * borrowed from the join, which must outlive the grouping */
};

/* Descriptors made at one stack, of one kind.  The key is (inherited,
 * kind, creation stack): a loop that leaks a file per request is one group
 * however many paths it opens. */
struct lw_fd_group {
	int inherited;                  /* origin INHERITED/FORK */
	uint16_t kind;                  /* enum lw_fd_kind, as recorded */
	uint32_t stack_id;              /* creation stack (0: unknown, inherited) */
	const struct lw_supp *supp;     /* the suppression the creation stack matched, or NULL */
	uint16_t origin;                /* of the first member */
	uint32_t origin_mask;           /* 1u << origin of every member */
	size_t count;
	uint64_t age_min_ns, age_max_ns;
	size_t npaths;                  /* distinct recorded paths among members (0: none) */
	struct lw_fd_member *members;   /* count entries, in fd order */
	/* lw_fd_group_judge() */
	int verdict;                    /* enum lw_fd_verdict */
	int have_growth;                /* --interval: the fields below are set */
	size_t count_start;             /* members of the same key at the first snapshot */
	uint64_t opened, closed;        /* the creation stack's opens and closes in between */
	uint64_t interval_ns;
};

/* What a live process's group of descriptors looks like (sockets have
 * classify.c's richer verdicts: files have no idle time to judge by). */
enum lw_fd_verdict {
	LW_FDV_OPEN = 0,                /* held: not growing (a log file, a config, an epoll set) */
	LW_FDV_LEAK_SUSPECT,            /* growing: more open than at the first snapshot
					 * (--interval), or without --interval at least 3
					 * members opened over at least --idle-for */
	LW_FDV_LEFT_OPEN,               /* the process has ended: everything left is a leak */
};

struct lw_fd_grouping {
	struct lw_fd_group *groups;     /* not inherited first, count desc, oldest, stack, kind */
	size_t ngroups;
	size_t nfds;                    /* descriptors counted into groups */
	size_t nleaked;                 /* of those, not inherited and not suppressed */
	size_t nsuppressed;             /* not inherited but suppressed (lw_fd_group.supp) */
};

/*
 * lw_fd_group_build - group the valid OPEN non-socket records of s (the
 * join j decides validity and says what each is now; may be NULL).
 * Descriptors younger than older_than_ns are skipped, inherited ones
 * unless include_inherited.  Returns 0, or -1 on allocation failure (g
 * empty).
 */
int lw_fd_group_build(struct lw_fd_grouping *g, const struct lw_snapshot *s, const struct lw_join *j,
		      uint64_t now_ns, uint64_t older_than_ns, int include_inherited);

/*
 * lw_fd_group_judge - give each group of g its verdict.  prev: the grouping
 * of the first snapshot (--interval), or NULL; snap (and prev_snap with
 * prev): the snapshots, for the creation stacks' open and close totals.
 * ended: the process is gone (every group LEFT OPEN).
 */
void lw_fd_group_judge(struct lw_fd_grouping *g, const struct lw_fd_grouping *prev,
		       const struct lw_snapshot *snap, const struct lw_snapshot *prev_snap,
		       uint64_t interval_ns, uint64_t idle_for_ns, int ended);

/* lw_fd_verdict_name - "open", "leak_suspect", "left_open" (JSON). */
const char *lw_fd_verdict_name(int v);

/* lw_fd_grouping_free - release; safe on a zeroed one. */
void lw_fd_grouping_free(struct lw_fd_grouping *g);

/* lw_fd_kind_name - "file", "dir", "pipe", "fifo", "eventfd", "epoll", "timerfd",
 * "signalfd", "inotify", "fanotify", "memfd", "pidfd", "userfaultfd", "other",
 * "socket". */
const char *lw_fd_kind_name(unsigned kind);

/* lw_fd_group_kind - the kind a group shows: the recorded one, or what
 * /proc says all its members are now when that is more precise (a file
 * opened without O_DIRECTORY that is a directory, a FIFO). */
unsigned lw_fd_group_kind(const struct lw_fd_group *g);

/* lw_fd_oflags_format - "O_RDONLY|O_CLOEXEC" for the open-family kinds
 * (file, dir), "" for the others; buf returned. */
char *lw_fd_oflags_format(unsigned kind, int32_t oflags, char *buf, size_t len);

#endif /* LEAKWATCH_FDGROUPS_H */
