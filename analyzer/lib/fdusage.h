/* SPDX-License-Identifier: MIT */
/*
 * fdusage.h — every descriptor a live process holds, by kind, against its
 * RLIMIT_NOFILE: what "Too many open files" is measured against.  Read
 * from /proc/PID/fd (the link names the kind) and /proc/PID/limits, at
 * report time, whatever the shim recorded.
 */
#ifndef LEAKWATCH_FDUSAGE_H
#define LEAKWATCH_FDUSAGE_H

#include <stddef.h>
#include <stdint.h>

/* Kinds as /proc/PID/fd/N tells them. */
enum lw_fdk {
	LW_FDK_SOCKET = 0, LW_FDK_FILE, LW_FDK_DIR, LW_FDK_PIPE, LW_FDK_FIFO, LW_FDK_DEVICE,
	LW_FDK_EVENTFD, LW_FDK_EPOLL, LW_FDK_TIMERFD, LW_FDK_SIGNALFD, LW_FDK_INOTIFY,
	LW_FDK_FANOTIFY, LW_FDK_MEMFD, LW_FDK_PIDFD, LW_FDK_USERFAULTFD, LW_FDK_OTHER,
	LW_FDK_N
};

#define LW_FD_UNLIMITED UINT64_MAX

struct lw_fdusage {
	int ok;                         /* /proc/PID/fd was read */
	int err;                        /* errno when !ok */
	uint64_t open;                  /* descriptors open (every kind) */
	uint64_t by_kind[LW_FDK_N];
	int limit_ok;                   /* /proc/PID/limits gave "Max open files" */
	uint64_t soft, hard;            /* LW_FD_UNLIMITED: unlimited */
	/* every descriptor read, and which kind (lw_fdusage_untracked) */
	struct lw_fdusage_fd {
		int fd;
		unsigned kind;          /* enum lw_fdk */
	} *fds;
	size_t nfds;
	int have_untracked;             /* untracked_by_kind was filled */
	uint64_t untracked;             /* descriptors no valid record of the shim names */
	uint64_t untracked_by_kind[LW_FDK_N];
};

/* lw_fdk_name - "socket", "file", "dir", "pipe", ... (stable: JSON keys). */
const char *lw_fdk_name(enum lw_fdk k);

/*
 * lw_fdk_of_link - the kind of a /proc/PID/fd link text ("socket:[7]",
 * "pipe:[9]", "anon_inode:[eventfd]", "/memfd:x (deleted)", "/var/log/a").
 * A path is a file unless mode (st_mode of the target, 0 when unknown) says
 * directory, FIFO or device.
 */
enum lw_fdk lw_fdk_of_link(const char *link, unsigned mode);

/*
 * lw_fdusage_parse_limits - "Max open files  SOFT  HARD  files" from the
 * text of /proc/PID/limits ("unlimited" allowed).  Returns 1 with *soft and
 * *hard set, 0 when the line is missing or malformed.
 */
int lw_fdusage_parse_limits(const char *text, uint64_t *soft, uint64_t *hard);

/* lw_fdusage_read - fill u for a live process (pid > 0).  Never fails:
 * what cannot be read is marked (!ok, !limit_ok; no memory: no fds list,
 * counts still right).  Free with lw_fdusage_free. */
void lw_fdusage_read(struct lw_fdusage *u, int pid);

/* lw_fdusage_untracked - count, by kind, the descriptors read for which
 * tracked(fd, arg) says no valid record of the shim exists. */
void lw_fdusage_untracked(struct lw_fdusage *u, int (*tracked)(int fd, void *arg), void *arg);

/* lw_fdusage_free - release; safe on a zeroed one. */
void lw_fdusage_free(struct lw_fdusage *u);

/*
 * lw_fdusage_eta_ns - at the growth from `before` to `now` over interval_ns,
 * the time until `now.open` reaches the soft limit; 0 when it does not grow,
 * the limit is unknown or unlimited, or either reading failed.  Already at
 * or past the limit: 1.
 */
uint64_t lw_fdusage_eta_ns(const struct lw_fdusage *before, const struct lw_fdusage *now,
			   uint64_t interval_ns);

#endif /* LEAKWATCH_FDUSAGE_H */
