/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h — reading one segment (snapshot.c): open, validate, copy a
 * private snapshot with the seqlock reader of include/leakwatch/segment.h,
 * and look records up in it.
 */
#ifndef LEAKWATCH_SNAPSHOT_H
#define LEAKWATCH_SNAPSHOT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "util.h"

/* A ready (seq == 2) stack, with its id (= table index + 1). */
struct lw_snap_stack {
	uint32_t id;
	uint32_t depth;                 /* <= LW_STACK_MAX_FRAMES */
	uint64_t sock_opened;
	uint64_t sock_closed;
	uint64_t uses;                  /* times recorded as a last-use stack */
	uint64_t heap_allocs;           /* heap: allocations recorded (sampled ones in sampled mode) */
	uint64_t heap_frees;
	uint64_t heap_bytes;            /* heap: bytes of those allocations */
	uint64_t frames[LW_STACK_MAX_FRAMES];
};

/* A live heap block (a heap table slot with ptr > LW_ALLOC_TOMBSTONE). */
struct lw_snap_alloc {
	uint64_t ptr;
	uint64_t size;                  /* requested size */
	uint64_t ns;                    /* CLOCK_MONOTONIC at allocation */
	uint32_t stack_id;              /* 0: no stack recorded */
	uint32_t reserved;
};

/* A handle slot that was OPEN or CLOSED, with its fd (= table index). */
struct lw_snap_handle {
	int fd;
	struct lw_handle h;             /* private copy; h.seq is meaningless */
};

/*
 * A private, consistent-per-slot copy of one segment, read with pread()
 * (never mapped: see snapshot.c).
 */
struct lw_snapshot {
	char path[PATH_MAX];
	struct lw_header hdr;           /* copy; exe/cmdline NUL-terminated */
	uint32_t state;                 /* hdr.state, read once (enum lw_state) */
	uint64_t counters[LW_CTR_MAX];  /* hdr.counters, read atomically */
	struct timespec mtime;          /* file mtime: end time of a killed process */
	uint32_t file_uid;
	uint64_t file_dev, file_ino;    /* the file read (lw_segment_remove checks them) */
	uint64_t file_bytes;            /* space the file holds (st_blocks * 512), not its sparse
	                                   logical size */
	uint32_t layout;                /* segment layout read: 1 (fixed tables) or 2 (chunked) */
	uint32_t incomplete;            /* hdr.incomplete, read once (LW_INCOMPLETE_*; 0 in v1) */

	struct lw_snap_stack *stacks;   /* sorted by id */
	size_t nstacks;
	struct lw_module *modules;      /* in table order; path NUL-terminated */
	size_t nmodules;
	struct lw_snap_handle *handles; /* OPEN and CLOSED slots, sorted by fd */
	size_t nhandles;
	struct lw_badclose *badcloses;  /* valid ring entries, oldest first */
	size_t nbadcloses;
	struct lw_snap_alloc *allocs;   /* live heap blocks, in table order (v2: the table being
	                                   replaced first, then the current one; one per ptr) */
	size_t nallocs;
	size_t busy;                    /* slots skipped: writer stayed inside */
	int heap_unsettled;             /* v2: the heap table was replaced (or its directory stayed
	                                   busy) during every read of it: blocks may be missing */
	size_t missing_stacks;          /* references (by handles, bad closes, heap blocks) to a
	                                   stack id the stack table does not hold: shown as an
	                                   unknown stack */
};

/*
 * lw_snapshot_open - open, validate and copy the segment at `path`: layout 2
 * (chunked tables and the heap directory, read only over the ranges the
 * header names, whatever the file's logical size) or layout 1 (one array
 * per table).
 * Returns 0 with *s filled (free with lw_snapshot_free) or -1 with a message
 * in err ("truncated", "not a leakwatch segment", "owned by uid N", "not a
 * regular file", "truncated while being read", ...) and *s left empty (safe
 * to free).  Never blocks (a FIFO is refused, not opened for reading), never
 * faults (the file is read, not mapped), never allocates a hole of a tmpfs
 * segment, and refuses a header whose tables exceed the file or sane bounds
 * before reading them.  Trust: a file named leakwatch.<pid>[.x] must have
 * that pid in its header; it must belong to root, or to the real or
 * effective uid of that process while it runs, or (process gone) to the
 * invoking user.
 */
int lw_snapshot_open(struct lw_snapshot *s, const char *path, char *err, size_t errlen);

/* lw_snapshot_open_flags: also accept a gone process's segment of any owner
 * (`clean` as root deciding on removal; nothing in it is shown). */
#define LW_SNAP_GONE_ANY_OWNER 0x1u
/* ...read the header and validate the layout, but copy no table (`clean`,
 * which needs only identity and state: a segment may hold millions of heap
 * blocks). */
#define LW_SNAP_HEADER_ONLY    0x2u

/* lw_snapshot_open_flags - lw_snapshot_open with LW_SNAP_* flags. */
int lw_snapshot_open_flags(struct lw_snapshot *s, const char *path, unsigned flags, char *err, size_t errlen);

/* lw_snapshot_free - release a snapshot's tables; safe on a zeroed or failed one. */
void lw_snapshot_free(struct lw_snapshot *s);

/* lw_snapshot_stack - the stack with this id, or NULL (0, unknown or not ready). */
const struct lw_snap_stack *lw_snapshot_stack(const struct lw_snapshot *s, uint32_t id);

/* lw_snapshot_handle - the OPEN/CLOSED handle copied for fd, or NULL. */
const struct lw_snap_handle *lw_snapshot_handle(const struct lw_snapshot *s, int fd);

/* lw_snapshot_open_count - number of OPEN socket handles in the snapshot. */
size_t lw_snapshot_open_count(const struct lw_snapshot *s);

/* lw_snapshot_open_fds - number of OPEN handles of other kinds (files, pipes, ...). */
size_t lw_snapshot_open_fds(const struct lw_snapshot *s);

/*
 * lw_snapshot_is_incomplete - 1 when a table of the segment stopped growing
 * (hdr.incomplete has a bit, or LW_CTR_DROP_RESERVE counted a refused
 * reservation): what did not fit was not recorded.  0 otherwise.
 */
int lw_snapshot_is_incomplete(const struct lw_snapshot *s);

#endif /* LEAKWATCH_SNAPSHOT_H */
