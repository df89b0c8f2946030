/* SPDX-License-Identifier: MIT */
/*
 * analyzer.h — internal API of the `leakwatch` command.
 *
 * The stages, one file each:
 *   discover.c   find segment files, resolve a PID/path argument, liveness
 *   segment.c    open + validate a segment, copy a private snapshot
 *   procjoin.c   join a snapshot with /proc/PID/fd and the kernel's socket state
 *   symbolize.c  libdw symbolization from the snapshot's module table
 *   group.c      group open sockets by (stack, family, type, endpoint)
 *   heap.c       group live heap blocks by allocation stack, sampled-mode
 *                estimates, the "system allocation" suppression rule
 *   render.c     text, JSON and folded-stack output
 *   report.c     glue: snapshot -> join -> groups -> render, shared by
 *                `report` and `run`
 *   duration.c   DUR parsing and age formatting
 *   sockdiag.c   NETLINK_SOCK_DIAG (tcp_info, unix peers), /proc/net fallback
 *   verdict.c    leak suspect / pool / active / new / listening, with evidence
 *   run.c        `leakwatch run -- CMD`
 *   top.c        `leakwatch top PID`: live ncurses view or plain snapshots
 *
 * Error convention: functions that can fail on input return -1 (or NULL)
 * and write a one-line, lower-case message without a trailing newline into a
 * caller-provided buffer of LW_ERR_MAX bytes; the caller prints
 * "leakwatch: <what>: <msg>".  Nothing here aborts on bad input.
 */
#ifndef LEAKWATCH_ANALYZER_H
#define LEAKWATCH_ANALYZER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "leakwatch/segment.h"

#define LW_ERR_MAX 512
#define LW_STATE_NAME_MAX 16
#define LW_ENDPOINT_MAX 128

/* ---- duration.c -------------------------------------------------------- */

/*
 * lw_duration_parse - parse "500ms", "30s", "5m", "2h", "1d", "250us",
 * "10ns", compounds like "1h30m", or a bare "0".
 * Returns 0 and stores nanoseconds in *ns; -1 on empty, negative, junk,
 * missing unit (other than "0") or overflow, leaving *ns untouched.
 */
int lw_duration_parse(const char *s, uint64_t *ns);

/*
 * lw_duration_format - format an age compactly: "850ms", "42s", "5m03s",
 * "5h59m", "2d03h".  Writes at most len bytes (always NUL-terminated when
 * len > 0) and returns buf.
 */
char *lw_duration_format(uint64_t ns, char *buf, size_t len);

/* ---- segment.c --------------------------------------------------------- */

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
 * (never mapped: see segment.c).
 */
struct lw_snapshot {
	char path[PATH_MAX];
	struct lw_header hdr;           /* copy; exe/cmdline NUL-terminated */
	uint32_t state;                 /* hdr.state, read once (enum lw_state) */
	uint64_t counters[LW_CTR_MAX];  /* hdr.counters, read atomically */
	struct timespec mtime;          /* file mtime: end time of a killed process */
	uint32_t file_uid;
	uint64_t file_dev, file_ino;    /* the file read (lw_segment_remove checks them) */

	struct lw_snap_stack *stacks;   /* sorted by id */
	size_t nstacks;
	struct lw_module *modules;      /* in table order; path NUL-terminated */
	size_t nmodules;
	struct lw_snap_handle *handles; /* OPEN and CLOSED slots, sorted by fd */
	size_t nhandles;
	struct lw_badclose *badcloses;  /* valid ring entries, oldest first */
	size_t nbadcloses;
	struct lw_snap_alloc *allocs;   /* live heap blocks, in table order */
	size_t nallocs;
	size_t busy;                    /* slots skipped: writer stayed inside */
	size_t missing_stacks;          /* references (by handles, bad closes, heap blocks) to a
	                                   stack id the stack table does not hold: shown as an
	                                   unknown stack */
};

/*
 * lw_snapshot_open - open, validate and copy the segment at `path`.
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

/* lw_snapshot_open_flags - lw_snapshot_open with LW_SNAP_* flags. */
int lw_snapshot_open_flags(struct lw_snapshot *s, const char *path, unsigned flags, char *err, size_t errlen);

/* lw_snapshot_free - release a snapshot's tables; safe on a zeroed or failed one. */
void lw_snapshot_free(struct lw_snapshot *s);

/* lw_snapshot_stack - the stack with this id, or NULL (0, unknown or not ready). */
const struct lw_snap_stack *lw_snapshot_stack(const struct lw_snapshot *s, uint32_t id);

/* lw_snapshot_handle - the OPEN/CLOSED handle copied for fd, or NULL. */
const struct lw_snap_handle *lw_snapshot_handle(const struct lw_snapshot *s, int fd);

/* lw_snapshot_open_count - number of OPEN handles in the snapshot. */
size_t lw_snapshot_open_count(const struct lw_snapshot *s);

/* ---- discover.c -------------------------------------------------------- */

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

/* ---- sockdiag.c -------------------------------------------------------- */

/* Where a socket's kernel view came from. */
enum lw_sockdiag_source { LW_SD_NONE = 0, LW_SD_NETLINK, LW_SD_PROC };

/* What the kernel says about one socket. */
struct lw_sockinfo {
	uint64_t inode;
	uint16_t family;                /* AF_INET, AF_INET6, AF_UNIX */
	uint8_t protocol;               /* IPPROTO_TCP, IPPROTO_UDP; 0 for unix */
	uint8_t state;                  /* sk_state, numbered as include/net/tcp_states.h */
	char state_name[LW_STATE_NAME_MAX]; /* "ESTABLISHED", "CLOSE_WAIT", "LISTEN", "UNCONN"
	                                       (UDP), "CONNECTED"/"UNCONNECTED" (unix)... */
	uint8_t source;                 /* enum lw_sockdiag_source */
	uint8_t has_queues;             /* rqueue/wqueue valid */
	uint8_t has_tcpinfo;            /* last_data_* valid (TCP over sock_diag, not LISTEN) */
	uint32_t rqueue;                /* bytes not yet read (LISTEN: accept backlog) */
	uint32_t wqueue;                /* bytes not yet acknowledged/sent (LISTEN: max backlog) */
	uint32_t last_data_sent_ms;     /* tcp_info: ms since data was last sent (or since connect) */
	uint32_t last_data_recv_ms;     /* tcp_info: ms since data was last received (or since connect) */
	uint64_t peer_inode;            /* unix: the peer socket's inode, 0 unknown */
};

/* An inode-indexed table of lw_sockinfo. */
struct lw_sockdiag {
	struct lw_sockinfo *v;
	size_t n, cap;
	int sorted;                     /* v sorted by inode (lw_sockdiag_sort) */
	int source_inet;                /* LW_SD_NETLINK or LW_SD_PROC: how TCP/UDP were loaded */
	int source_unix;                /* ...and unix sockets */
	int netns_other;                /* the target is in another network namespace */
	int error;                      /* errno of the netlink failure that forced a fallback */
};

/*
 * lw_sockdiag_load - the kernel's view of every TCP, UDP (v4 and v6) and unix
 * socket in the network namespace of pid (pid <= 0: ours).  One
 * NETLINK_SOCK_DIAG dump per (family, protocol), with tcp_info for TCP and
 * peer + queue lengths for unix (UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).  A
 * target in another netns is reached with setns() when permitted; otherwise,
 * or when a dump fails, /proc/PID/net/... is parsed instead (states and
 * queues, no tcp_info).  Returns 0 with d filled and sorted (free with
 * lw_sockdiag_free), or -1 on allocation failure (d empty).
 */
int lw_sockdiag_load(struct lw_sockdiag *d, int pid);

/* lw_sockdiag_load_proc - the /proc/PID/net fallback alone (tests, comparison). 0 or -1. */
int lw_sockdiag_load_proc(struct lw_sockdiag *d, int pid);

/* lw_sockdiag_add - append a copy of k (inode 0 is ignored); 0 or -1 (no memory). */
int lw_sockdiag_add(struct lw_sockdiag *d, const struct lw_sockinfo *k);

/* lw_sockdiag_sort - sort by inode so lookups bisect. */
void lw_sockdiag_sort(struct lw_sockdiag *d);

/* lw_sockdiag_find - the entry for inode, or NULL (d may be NULL). */
const struct lw_sockinfo *lw_sockdiag_find(const struct lw_sockdiag *d, uint64_t inode);

/* lw_sockdiag_free - release; safe on a zeroed table. */
void lw_sockdiag_free(struct lw_sockdiag *d);

/* lw_sockdiag_source_name - "sock_diag", "proc", "none". */
const char *lw_sockdiag_source_name(int source);

/* ---- procjoin.c -------------------------------------------------------- */

struct lw_untracked {
	int fd;
	uint64_t inode;
};

struct lw_join {
	int pid;
	int fd_ok;                      /* /proc/PID/fd was read */
	int fd_errno;                   /* why not, when !fd_ok (EACCES, ENOENT...) */
	unsigned char *valid;           /* per snapshot handle: 1 = kernel agrees */
	size_t nstale;                  /* OPEN entries whose fd no longer matches */
	struct lw_untracked *untracked; /* socket fds the shim never recorded */
	size_t nuntracked;
	/* lw_join_sockinfo() cache: the kernel's view of every socket, by inode */
	int diag_loaded;
	struct lw_sockdiag diag;
};

/*
 * lw_join_proc - join the snapshot with /proc/PID/fd.  pid <= 0 (or a process
 * that is not this image any more) gives a join with fd_ok = 0 where every
 * OPEN entry is considered valid.  Returns 0, or -1 only on allocation failure.
 */
int lw_join_proc(struct lw_join *j, const struct lw_snapshot *s, int pid);

/* lw_join_free - release a join; safe on a zeroed one. */
void lw_join_free(struct lw_join *j);

/*
 * lw_join_valid - 1 when the handle at snapshot index i is to be believed:
 * it is OPEN and (no kernel view or the kernel shows the same inode there).
 */
int lw_join_valid(const struct lw_join *j, const struct lw_snapshot *s, size_t i);

/*
 * lw_join_sockinfo - the kernel's view of a socket inode, or NULL when
 * unknown.  Loads the whole table once (lw_sockdiag_load for the join's
 * pid) on first use; only for a live process whose /proc/PID/fd was read,
 * unless a table was installed with lw_join_set_sockdiag().
 */
const struct lw_sockinfo *lw_join_sockinfo(struct lw_join *j, uint64_t inode);

/*
 * lw_join_set_sockdiag - use d as the kernel's view (taking ownership of its
 * memory; d is zeroed) instead of asking the kernel: tests feed fabricated
 * evidence this way, `top` could reuse a table.
 */
void lw_join_set_sockdiag(struct lw_join *j, struct lw_sockdiag *d);

/*
 * sockstate_lookup - the kernel's state name for a socket inode
 * ("ESTABLISHED", "CLOSE_WAIT", "LISTEN", "CONNECTED", "UNCONN"...) or NULL
 * when unknown: lw_join_sockinfo()->state_name.
 */
const char *sockstate_lookup(struct lw_join *j, uint64_t inode);

/* ---- symbolize.c ------------------------------------------------------- */

struct lw_frame {
	uint64_t addr;                  /* as recorded (return address except frame 0) */
	const char *function;           /* NULL: unknown */
	const char *file;               /* as given by DWARF; NULL: unknown */
	int line;                       /* 0: unknown */
	const char *module;             /* module path; NULL: no module */
	uint64_t module_off;            /* addr - module base */
	int inlined;                    /* function was inlined into the next frame */
	int buildid_mismatch;           /* file on disk is not what was loaded */
};

struct lw_symbolizer;

/*
 * lw_symbolizer_new - set up libdw for the snapshot's module table (offline:
 * works after the process exited).  Unreadable modules are skipped.  Returns
 * NULL only when libdw itself cannot start (err set).  The snapshot must
 * outlive the symbolizer.
 */
struct lw_symbolizer *lw_symbolizer_new(const struct lw_snapshot *s, char *err, size_t errlen);

/* lw_symbolizer_free - release everything, including strings in returned frames. */
void lw_symbolizer_free(struct lw_symbolizer *sym);

/*
 * lw_symbolize_stack - symbolize frames[0..depth), expanding inlined calls
 * into extra frames and hiding frames inside libleakwatch.so.  Writes at most
 * max frames to out and returns how many; strings stay valid until
 * lw_symbolizer_free().  Never fails: unknown frames come back with
 * function == NULL.
 */
size_t lw_symbolize_stack(struct lw_symbolizer *sym, const uint64_t *frames, size_t depth,
			  struct lw_frame *out, size_t max);

/*
 * lw_symbol_demangle - the demangled form of a C++ symbol ("_ZN3foo3barEi"
 * -> "foo::bar(int)") as a malloc'd string, or NULL when name does not start
 * with "_Z" or is not a valid mangled name.
 */
char *lw_symbol_demangle(const char *name);

/*
 * lw_frame_format_location - "module+0xOFF" (module basename) or "0xADDR"
 * for a frame without a function; returns buf.
 */
char *lw_frame_format_location(const struct lw_frame *f, char *buf, size_t len);

/* ---- group.c ----------------------------------------------------------- */

enum lw_endpoint_role { LW_EP_NONE = 0, LW_EP_PEER, LW_EP_LOCAL };

#define LW_GROUP_MAX_STATES 8
#define LW_GROUP_MAX_PEERS 16

/* The grouping key's stack (--by): where sockets were created, or last used. */
enum lw_group_by { LW_BY_OPEN = 0, LW_BY_USE };

/* Verdict of a group (verdict.c).  LW_V_LEFT_OPEN: the image ended, so every
 * socket still open is a leak (`run` semantics) and nothing else is judged. */
enum lw_verdict {
	LW_V_LEFT_OPEN = 0,
	LW_V_LEAK_SUSPECT,
	LW_V_POOL,
	LW_V_ACTIVE,
	LW_V_NEW,
	LW_V_LISTENING,
};

/* Where a member's idle time came from (best first). */
enum lw_idle_source { LW_IDLE_AGE = 0, LW_IDLE_SHIM, LW_IDLE_KERNEL };

/* One socket of a group with the evidence about it. */
struct lw_member {
	int fd;
	uint16_t origin;
	char peer[LW_ENDPOINT_MAX];     /* formatted peer address ("" unknown) */
	uint64_t inode;
	uint64_t age_ns;
	uint32_t stack_id;              /* creation stack (0: unknown or inherited) */
	uint32_t last_use_stack_id;     /* most recent send-side call; 0: never used since opened */
	uint64_t last_use_ns;           /* 0: never used */
	int has_kernel;                 /* k is valid */
	struct lw_sockinfo k;
	/* lw_verdict_apply() */
	uint64_t idle_ns;               /* time since the last I/O known (<= age) */
	enum lw_idle_source idle_source;
};

/* Reasons behind LW_V_LEAK_SUSPECT (bit mask). */
#define LW_REASON_IDLE       0x1u   /* members idle >= idle_for */
#define LW_REASON_CLOSE_WAIT 0x2u   /* members in CLOSE_WAIT */
#define LW_REASON_GROWING    0x4u   /* the group keeps growing (see verdict.c) */

/* Everything a verdict was decided on (verdict.c). */
struct lw_evidence {
	uint64_t idle_for_ns;           /* the threshold used */
	size_t idle;                    /* members idle >= idle_for */
	size_t close_wait;              /* members in CLOSE_WAIT */
	size_t listening;
	size_t young;                   /* members younger than idle_for */
	size_t used_recently;           /* members with I/O within idle_for */
	size_t idle_kernel, idle_shim, idle_age; /* members by source of their idle time */
	uint64_t idle_min_ns, idle_max_ns;
	size_t kernel_known;            /* members the kernel described */
	uint64_t rqueue, wqueue;        /* sums over members (bytes) */
	unsigned reasons;               /* LW_REASON_* (leak suspects) */
	int growing;                    /* the key group keeps growing */
	size_t key_count;               /* members of the whole key group (before any split) */
	uint64_t stack_opened;          /* creation stack totals (by open) */
	uint64_t stack_closed;
	/* --interval: two snapshots interval_ns apart (have_interval) */
	int have_interval;
	uint64_t interval_ns;
	size_t count_start, count_end;  /* the key group's open count at both ends */
	uint64_t opened, closed;        /* creation stack total deltas over the interval (by open) */
};

struct lw_group {
	int inherited;                  /* origin INHERITED/FORK: opened before leakwatch */
	uint32_t stack_id;              /* creation stack (by use: the most common one) */
	uint16_t family;
	uint16_t type;
	uint16_t origin;                /* origin of the first member */
	uint32_t origin_mask;           /* 1u << origin for every member */
	char endpoint[LW_ENDPOINT_MAX];
	enum lw_endpoint_role role;
	size_t count;
	uint64_t age_min_ns;
	uint64_t age_max_ns;
	struct { char name[LW_STATE_NAME_MAX]; size_t n; } states[LW_GROUP_MAX_STATES];
	size_t nstates;                 /* only states the kernel reported */
	int *fds;                       /* ascending */
	size_t nfds;
	size_t fds_cap;
	char (*peers)[LW_ENDPOINT_MAX]; /* distinct peers when role != PEER */
	size_t npeers;                  /* stored (capped at LW_GROUP_MAX_PEERS) */
	size_t npeers_total;            /* distinct peers seen before the cap */
	/* added with verdicts */
	enum lw_group_by by;            /* which stack is the key */
	uint32_t use_stack_id;          /* last-use stack (by open: the most common one; 0: never used) */
	size_t use_share;               /* members whose last-use stack is use_stack_id */
	size_t open_share;              /* members whose creation stack is stack_id */
	struct lw_member *members;      /* count entries, in fd order (parallel to fds) */
	int split;                      /* carved out of a larger key group by the verdict rules */
	enum lw_verdict verdict;
	struct lw_evidence ev;
};

struct lw_grouping {
	struct lw_group *groups;        /* sorted (see lw_group_sort) */
	size_t ngroups;
	size_t nsockets;                /* open sockets counted into groups */
	size_t nleaked;                 /* of those, not inherited */
	enum lw_group_by by;
};

/*
 * lw_group_build - group the valid OPEN sockets of a snapshot by creation
 * stack.  Sockets younger than older_than_ns are skipped; inherited ones
 * (INHERITED, FORK) only with include_inherited.  now_ns is the age reference
 * on the header's monotonic clock.  j may be NULL (no kernel view: no
 * states).  Returns 0, or -1 on allocation failure.
 */
int lw_group_build(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		   uint64_t now_ns, uint64_t older_than_ns, int include_inherited);

/*
 * lw_group_build_by - as lw_group_build, keyed by creation stack (LW_BY_OPEN)
 * or by last-use stack (LW_BY_USE: sockets never used share key 0).  Each
 * group also records its members with their kernel view (from j) and the
 * most common stack of the other kind.  Verdicts are not decided here
 * (lw_verdict_apply).  Returns 0, or -1 on allocation failure.
 */
int lw_group_build_by(struct lw_grouping *g, const struct lw_snapshot *s, struct lw_join *j,
		      uint64_t now_ns, uint64_t older_than_ns, int include_inherited, enum lw_group_by by);

/*
 * lw_group_from_members - (re)compute a group's derived fields (count, ages,
 * fds, states, peers, shares) from g->members[0..n), which it takes over.
 * Key fields (inherited, family, type, role, endpoint, by, stack ids) are
 * left as they are.  Returns 0 or -1 (no memory).
 */
int lw_group_from_members(struct lw_group *g, struct lw_member *members, size_t n);

/*
 * The grouping key, explicit: sockets with equal keys form one group.  A
 * view of a group's (or a socket's) key fields; endpoint is not owned.
 */
struct lw_group_key {
	enum lw_group_by by;
	int inherited;
	uint16_t family, type;
	enum lw_endpoint_role role;
	uint32_t stack;                 /* creation stack (by open) or last-use stack (by use) */
	const char *endpoint;
};

/* lw_group_key_of - the key of g (endpoint points into g). */
struct lw_group_key lw_group_key_of(const struct lw_group *g);

/* lw_group_set_key - copy a key into g's key fields (the other stack id is set to 0). */
void lw_group_set_key(struct lw_group *g, const struct lw_group_key *k);

/*
 * lw_group_key_cmp - the one comparison of keys: a total order, 0 exactly
 * when the keys are equal (by, inherited, family, type, role, stack, endpoint).
 */
int lw_group_key_cmp(const struct lw_group_key *a, const struct lw_group_key *b);

/* lw_group_same_key - 1 when a and b have the same grouping key (lw_group_key_cmp == 0). */
int lw_group_same_key(const struct lw_group *a, const struct lw_group *b);

/* lw_group_sort - deterministic order: verdict (leak suspects first), not
 * inherited before inherited, count desc, oldest desc, stack ids, endpoint, first fd. */
void lw_group_sort(struct lw_grouping *g);

/* lw_group_by_parse - "open" or "use"; 0 with *by set, or -1. */
int lw_group_by_parse(const char *s, enum lw_group_by *by);

/* lw_group_by_name - "open", "use". */
const char *lw_group_by_name(enum lw_group_by by);

/* lw_grouping_free - release groups; safe on a zeroed one. */
void lw_grouping_free(struct lw_grouping *g);

/*
 * lw_group_ops - test seam: element steps and comparisons made by grouping
 * (group.c), verdicts (verdict.c) and top's history lookup, summed since
 * start.  Tests reset it and check that the work grows as n log n, not n^2,
 * without timing anything.  The analyzer is single-threaded.
 */
extern unsigned long long lw_group_ops;

/* ---- verdict.c --------------------------------------------------------- */

#define LW_IDLE_FOR_DEFAULT_NS (5ull * 60 * 1000000000ull)   /* --idle-for default: 5m */

struct lw_verdict_opts {
	uint64_t now_ns;                /* age/idle reference, the snapshot's clock */
	uint64_t idle_for_ns;           /* --idle-for */
	int ended;                      /* the image ended: every group is LW_V_LEFT_OPEN */
	const struct lw_snapshot *snap; /* creation stack totals (may be NULL) */
	/* --interval: the first snapshot, grouped with the same key (NULL: no interval) */
	const struct lw_grouping *prev;
	const struct lw_snapshot *prev_snap;
	uint64_t interval_ns;           /* time between the two snapshots */
};

/*
 * lw_verdict_apply - decide every group's verdict by the rules documented at
 * the top of verdict.c: splits key groups into listening / leak suspect
 * (per last-use stack in the pool case) / the rest, fills each group's
 * evidence and sorts the grouping (lw_group_sort).  Returns 0, or -1 on
 * allocation failure (the grouping is then emptied).
 */
int lw_verdict_apply(struct lw_grouping *g, const struct lw_verdict_opts *o);

/* lw_verdict_name - JSON word: "leak_suspect", "pool", "active", "new", "listening", "left_open". */
const char *lw_verdict_name(enum lw_verdict v);

/* lw_verdict_title - text tag: "LEAK SUSPECT", "POOL", "ACTIVE", "NEW", "LISTENING", "SOCKETS". */
const char *lw_verdict_title(enum lw_verdict v);

/*
 * lw_addr_format - render a recorded sockaddr: "1.2.3.4:80", "[::1]:80",
 * "/path", "@abstract", "unnamed"; "" when len is 0 or the family is unknown.
 * Returns buf.
 */
char *lw_addr_format(const struct lw_addr *a, char *buf, size_t len);

/* lw_family_name / lw_type_name / lw_origin_name - "AF_INET", "SOCK_STREAM", "accept"... */
const char *lw_family_name(unsigned family);
const char *lw_type_name(unsigned type);
const char *lw_origin_name(unsigned origin);

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

/* ---- heap.c ------------------------------------------------------------ */

/*
 * Who a live block belongs to.  Only LW_HEAP_PROGRAM blocks are leaks (what
 * `run --fail-on-leak` counts); the others are shown with --all.
 */
enum lw_heap_class {
	LW_HEAP_PROGRAM = 0,            /* allocated by the program (or a non-system library) */
	LW_HEAP_SYSTEM,                 /* owned by libc/ld.so/libstdc++ (see heap.c) */
	LW_HEAP_UNRECORDED,             /* no call stack was recorded for it */
	LW_HEAP_NCLASS
};

/* Below this many samples a sampled estimate shows its sample count (error over ~10%). */
#define LW_HEAP_FEW_SAMPLES 100

/* Live blocks allocated from one stack.  Sampled mode: blocks/bytes/totals are estimates. */
struct lw_heap_group {
	enum lw_heap_class cls;
	uint32_t stack_id;
	size_t samples;                 /* table entries behind this group (= blocks in full mode) */
	double blocks;                  /* live blocks */
	double bytes;                   /* live bytes */
	double total_allocs;            /* allocations ever made from this stack (>= blocks) */
	double total_bytes;             /* bytes ever allocated from this stack (>= bytes) */
	uint64_t age_min_ns;
	uint64_t age_median_ns;         /* weighted by the blocks each entry stands for */
	uint64_t age_max_ns;
};

struct lw_heap {
	uint32_t mode;                  /* enum lw_heap_mode of the segment */
	int estimated;                  /* sampled mode: numbers are estimates */
	uint64_t sample_bytes;          /* mean bytes between samples (sampled mode) */
	struct lw_heap_group *groups;   /* sorted: class, bytes desc, blocks desc, stack id */
	size_t ngroups;
	size_t nsamples;                /* table entries counted (after --older-than) */
	double blocks[LW_HEAP_NCLASS];  /* live blocks per class (after --older-than) */
	double bytes[LW_HEAP_NCLASS];
};

/*
 * lw_heap_sample_weight - how many allocations of `size` bytes one sample
 * stands for when the mean sampling interval is sample_bytes: 1/p with
 * p = 1 - exp(-size/sample_bytes).  1 when sample_bytes is 0 (every
 * allocation recorded) or size is 0 (never sampled by size: counted once).
 */
double lw_heap_sample_weight(uint64_t size, uint64_t sample_bytes);

/*
 * lw_module_is_system - 1 when `path` (a module path; basename decides) is
 * part of the C/C++ runtime: libc, ld.so, the other glibc libraries,
 * libstdc++, libgcc_s; else 0.
 */
int lw_module_is_system(const char *path);

/*
 * lw_heap_build - group the live heap blocks of a snapshot by allocation
 * stack and classify each group (enum lw_heap_class).  Blocks younger than
 * older_than_ns are skipped.  sym may be NULL: classification then uses the
 * module table only (no allocation-site names).  A segment with heap_mode
 * OFF gives an empty result.  Returns 0, or -1 on allocation failure (h left
 * empty).
 */
int lw_heap_build(struct lw_heap *h, const struct lw_snapshot *s, struct lw_symbolizer *sym,
		  uint64_t now_ns, uint64_t older_than_ns);

/* lw_heap_free - release groups; safe on a zeroed one. */
void lw_heap_free(struct lw_heap *h);

/* lw_heap_class_name - "program", "system", "unrecorded". */
const char *lw_heap_class_name(enum lw_heap_class c);

/* lw_heap_mode_name - "off", "sampled", "full" ("unknown" otherwise). */
const char *lw_heap_mode_name(uint32_t mode);

/*
 * lw_bytes_format - "512 B", "64.0 KiB", "2.0 MiB", "1.5 GiB", "3.0 TiB"
 * (binary units, one decimal above bytes).  Returns buf.
 */
char *lw_bytes_format(double bytes, char *buf, size_t len);

/* ---- report.c / render.c ---------------------------------------------- */

enum lw_format { LW_FMT_TEXT = 0, LW_FMT_JSON, LW_FMT_FOLDED };

/* What a report covers (--kind).  Zero is "all" so a zeroed lw_report_opts shows everything. */
enum lw_kind { LW_KIND_ALL = 0, LW_KIND_SOCKETS, LW_KIND_HEAP };

struct lw_report_opts {
	uint64_t older_than_ns;         /* only sockets and heap blocks at least this old */
	int all;                        /* also inherited sockets, stale entries, system/inherited/
	                                   unrecorded heap blocks */
	enum lw_format format;
	enum lw_kind kind;
	uint64_t idle_for_ns;           /* --idle-for; 0 means LW_IDLE_FOR_DEFAULT_NS */
	uint64_t interval_ns;           /* --interval: a first snapshot this long before (0: none) */
	enum lw_group_by by;            /* --by open|use */
};

/* Everything a renderer needs about one segment. */
struct lw_report {
	struct lw_snapshot snap;
	enum lw_live live;
	uint64_t now_ns;
	struct lw_join join;
	struct lw_grouping grouping;
	struct lw_heap heap;            /* empty unless the kind includes heap and heap_mode != off */
	struct lw_symbolizer *sym;      /* NULL: no symbolization (libdw failed) */
	struct lw_report_opts opts;
	/* --interval: the first snapshot (have_prev) */
	int have_prev;
	struct lw_snapshot prev;
	struct lw_join prev_join;
	uint64_t prev_now_ns;
};

/*
 * lw_kind_parse - "all", "sockets" (or "socket"), "heap".  Returns 0 with *k
 * set, or -1 (k untouched).
 */
int lw_kind_parse(const char *s, enum lw_kind *k);

/* lw_kind_name - "all", "sockets", "heap". */
const char *lw_kind_name(enum lw_kind k);

/* lw_kind_sockets / lw_kind_heap - 1 when the kind covers sockets / heap blocks. */
int lw_kind_sockets(enum lw_kind k);
int lw_kind_heap(enum lw_kind k);

/*
 * lw_format_parse - "text", "json", "folded".  Returns 0 with *f set, or -1.
 */
int lw_format_parse(const char *s, enum lw_format *f);

/*
 * lw_report_build - snapshot `path`, join with the process if it is alive,
 * group and prepare symbolization.  Returns 0 (free with lw_report_free) or
 * -1 with err set (input error: caller exits 2).
 */
int lw_report_build(struct lw_report *r, const char *path, const struct lw_report_opts *o,
		    char *err, size_t errlen);

/*
 * lw_report_classify - (re)group r's sockets with r->opts (older_than, all,
 * by) and decide verdicts (verdict.c) against r->now_ns, using the first
 * snapshot when r->have_prev.  lw_report_build calls it; tests call it again
 * after installing fabricated kernel evidence (lw_join_set_sockdiag) or
 * changing r->live / r->now_ns.  Returns 0 or -1 (no memory).
 */
int lw_report_classify(struct lw_report *r);

/* lw_report_ended - 1 when r's image is gone (exited, execed, dead): nothing live to ask. */
int lw_report_ended(const struct lw_report *r);

/* lw_report_free - release a report; safe on a zeroed or failed one. */
void lw_report_free(struct lw_report *r);

/* lw_render_text - human-readable report; returns 0 or -1 on a write error. */
int lw_render_text(FILE *out, struct lw_report *r);

/* lw_render_json - one JSON object (no trailing newline); 0 or -1 on write error. */
int lw_render_json(FILE *out, struct lw_report *r);

/*
 * lw_render_folded - collapsed stacks (flamegraph.pl, speedscope): one line
 * "root;...;leaf WEIGHT" per heap group (weight: live bytes) or, with
 * --kind sockets, per socket group (weight: sockets).  Frames are function
 * names, else module+0xOFF.  A non-NULL `root` becomes the first frame of
 * every line (run: the process name).  A heap kind on a segment without heap
 * tracking writes nothing.  Returns 0 or -1 on a write error.
 */
int lw_render_folded(FILE *out, struct lw_report *r, const char *root);

/*
 * lw_report_process_name - a short name for the traced process: basename of
 * the first word of its command line, else of its exe, else "pid<N>";
 * ';' and control characters replaced so it can be a folded frame.  Returns buf.
 */
char *lw_report_process_name(const struct lw_report *r, char *buf, size_t len);

struct lw_json;

/*
 * lw_render_json_value - the report object as a value of an enclosing JSON
 * document (run's "processes" array): key names the member, NULL for an
 * array element.  Write errors stay in the stream (lw_json_error).
 */
void lw_render_json_value(struct lw_json *j, const char *key, struct lw_report *r);

/* ---- run.c ------------------------------------------------------------- */

/*
 * lw_shim_find - locate libleakwatch.so: $LEAKWATCH_SHIM, next to
 * /proc/self/exe, ../lib/leakwatch/ from it, then LW_LIBDIR.  Returns 0 with
 * the path in out, or -1 when none exists.
 */
int lw_shim_find(char *out, size_t len);

/*
 * lw_run_main - `leakwatch run` with argv[0] == "run".  Returns the process
 * exit status: 0, 1 (leak with --fail-on-leak) or 2 (usage/exec error,
 * message already printed).
 */
int lw_run_main(int argc, char **argv);

/*
 * lw_report_is_empty - 1 when the segment never recorded a socket of its
 * own (inherited ones do not count), a bad close or a heap block: a process
 * that did nothing leakwatch looks at.
 */
int lw_report_is_empty(const struct lw_report *r);

/* ---- top.c ------------------------------------------------------------- */

/*
 * lw_top_main - `leakwatch top` with argv[0] == "top".  Returns the exit
 * status: 0 (quit, count reached, or the process exited), 2 (usage error,
 * no such process or segment; one line printed).
 */
int lw_top_main(int argc, char **argv);

/* ---- output.c ---------------------------------------------------------- */

/*
 * lw_output_begin - send stdout where `--output path` says (NULL: do
 * nothing; "-": stdout).  A regular or missing file is written through a
 * temporary file beside it (renamed into place by lw_output_end; a new file
 * gets 0666 & ~umask, an existing one keeps its mode and, where permitted,
 * owner); a symlink is followed; a character device or a FIFO is written in
 * place (a FIFO without a reader is an error, never a wait); a directory,
 * socket or block device is refused.  Returns 0, or -1 with a one-line
 * message in err ("cannot write FILE: ...") and stdout unchanged.
 */
int lw_output_begin(const char *path, char *err, size_t errlen);

/*
 * lw_output_end - finish an lw_output_begin(): flush, restore stdout, and
 * rename the temporary file into place when ok, else remove it (the old file
 * is untouched).  Returns 0, or -1 when writing or renaming failed (message
 * printed: "leakwatch: write error on FILE: ...").  No-op without a begin.
 */
int lw_output_end(int ok);

#endif /* LEAKWATCH_ANALYZER_H */
