/* SPDX-License-Identifier: MIT */
/*
 * Internal interface of the recorder inside libleakwatch.so: the tables
 * (segment, stacks, modules, handles, heap), configuration, lifecycle and
 * the re-entry guard.  The hooks do not call these directly: they report
 * events (events.h), and the events call in here.  Nothing here is exported
 * from the shared object (the library is built with -fvisibility=hidden);
 * only the interposed libc symbols are.
 *
 *   hooks.c, heap_hooks.c    interposed entry points (not in libshimrec.a)
 *   events.c                 what a hooked call records, in which order
 *   lifecycle.c              start, stop, fork, on_exit
 *   handles.c heap.c         the handle and heap tables
 *   stack.c modules.c        stack capture and the stack table; loaded objects
 *   segment.c                the segment file, header, counters, state
 *   guard.c                  the re-entry guard and its siglongjmp recovery
 *   config.c                 the option table, shim_log
 *   prim.c                   raw system calls (prim.h); shim_limits.h: limits
 *
 * Every function below is safe to call from any thread at any time, including
 * before initialisation finished and after it failed: in those cases it does
 * nothing.  None of them allocates through malloc, takes a lock, or changes
 * errno (the events still save errno around them, belt and braces).
 */
#ifndef LEAKWATCH_SHIM_H
#define LEAKWATCH_SHIM_H

#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "leakwatch/segment.h"
#include "shim_limits.h"
#include "prim.h"

/* Configuration, read once from `environ` at start (never getenv later).
 * The variables, defaults and bounds are the option table in config.c. */
struct shim_config {
	char     dir[LW_PATH_MAX];  /* LEAKWATCH_DIR */
	uint32_t stack_depth;       /* LEAKWATCH_STACK_DEPTH */
	uint32_t max_fds;           /* LEAKWATCH_MAX_FDS: highest fd + 1 recorded */
	uint32_t max_stacks;        /* LEAKWATCH_MAX_STACKS: distinct stacks stored */
	uint32_t disabled;          /* LEAKWATCH_DISABLE */
	uint32_t log;               /* LEAKWATCH_LOG: diagnostics on stderr */
	uint32_t keep_empty;        /* LEAKWATCH_KEEP_EMPTY: keep segments that recorded nothing */
	uint32_t heap_mode;         /* LEAKWATCH_HEAP (enum lw_heap_mode) */
	uint64_t sample_bytes;      /* LEAKWATCH_SAMPLE_BYTES */
	uint32_t max_allocs;        /* LEAKWATCH_MAX_ALLOCS: live heap blocks recorded at most */
	uint64_t budget;            /* LEAKWATCH_BUDGET: bytes for all segments of the directory */
	uint32_t budget_pct;        /* ...or a share of the filesystem, in percent */
	uint32_t site_cache;        /* LEAKWATCH_STACK_CACHE: the call-site cache */
	uint32_t reach_wait_ms;     /* LEAKWATCH_REACH_WAIT: the exit rendezvous (0: none) */
	uint32_t run_pid;           /* LEAKWATCH_RUN_PID: who scans at exit */
	uint32_t python;            /* LEAKWATCH_PYTHON: Python frames (python.c) */
	uint32_t invalid;           /* values rejected (logged; LW_CTR_CONFIG_INVALID) */
};

/* The one mapped segment of this process image.  The header is mapped at
 * creation; every chunk and heap table is its own mapping of the same file,
 * made (and its pages reserved) when the table grows into it. */
struct shim_segment {
	struct lw_header    *hdr;   /* NULL when not tracing */
	size_t               size;  /* bytes of the header mapping */
	/* chunk k of table t, read with acquire (segment_chunk); NULL: not yet */
	void                *chunk[LW_T_NUM][LW_CHUNKS_MAX];
	uint32_t             shift[LW_T_NUM];
	uint32_t             esize[LW_T_NUM];
	uint64_t             limit[LW_T_NUM]; /* entries a table may hold (options) */
	uint64_t             file_end;  /* next free file offset, page aligned (grow lock) */
	/* extents in use (heap tables): what a fork child must make private */
	struct shim_extent { void *p; uint64_t off, len; } ext[LW_LIM_EXTENTS];
	int                  initial_ext;  /* ext[0] is the first heap table, not yet taken */
	uint64_t             span;      /* the file's logical size */
	pid_t                pid;   /* the pid that owns hdr (fork/vfork detection) */
	uint64_t             gen;   /* bumps with every segment this image creates; never 0 */
	char                 path[LW_PATH_MAX + 32];
};

SHIM_HIDDEN extern struct shim_config g_cfg;
SHIM_HIDDEN extern struct shim_segment g_seg;

/* config.c */
/* config_load - fill g_cfg from the process environment; never fails. */
SHIM_HIDDEN void config_load(void);
/* config_parse - fill g_cfg from env (NULL-terminated "NAME=value" array):
 * invalid values are logged, counted in g_cfg.invalid, and give defaults. */
SHIM_HIDDEN void config_parse(char *const *env);
/* shim_log - bounded, allocation-free printf subset (%s %d %u %lu %x) to fd 2,
 * only when LEAKWATCH_LOG=1, at most LW_LIM_LOG_MESSAGES per process. */
SHIM_HIDDEN void shim_log(const char *fmt, ...);

/* segment.c */
/* segment_create - create leakwatch.<pid> for this image, reserve and map
 * its header and the first chunk of every table, and fill the header.
 * `parent` (may be NULL) is a segment to inherit from after fork.  Returns
 * 0, or -1 with tracing left off (g_seg.hdr == NULL). */
SHIM_HIDDEN int segment_create(const struct shim_segment *parent);
/* segment_proc_start_ticks - field 22 of /proc/PID/stat (pid 0: ours),
 * counted after the last ')' because the command name may itself contain
 * spaces and parentheses; 0 when there is no such process. */
SHIM_HIDDEN uint64_t segment_proc_start_ticks(int pid);
/* segment_note_fork - fork child, first thing: note the time of the fork
 * (the child's start time, for its header, maybe created later). */
SHIM_HIDDEN void segment_note_fork(void);
/* segment_detach - unmap without changing state (fork child dropping the
 * parent's mapping). */
SHIM_HIDDEN void segment_detach(struct shim_segment *seg);
/* segment_mark_state - set state and end clocks (exit, exec, disabled). */
SHIM_HIDDEN void segment_mark_state(uint32_t state);
/* segment_counters_empty - nothing of its own was recorded (no socket it
 * opened itself, no bad close, no heap block). */
SHIM_HIDDEN int segment_counters_empty(const _Atomic uint64_t *counters);
/* segment_unlink_if_empty - at exit: remove a segment with nothing left in
 * it: no descriptor of its own open, no bad close, no live heap block, no
 * incomplete table (unless LEAKWATCH_KEEP_EMPTY). */
SHIM_HIDDEN void segment_unlink_if_empty(void);
/* segment_reach_rendezvous - at exit, under `leakwatch run`: wait (bounded)
 * for run to classify the live heap blocks (segment.c). */
SHIM_HIDDEN void segment_reach_rendezvous(void);
/* segment_counter_add - relaxed add to a header counter. */
SHIM_HIDDEN void segment_counter_add(enum lw_counter c, uint64_t n);
/* segment_event_at - count one socket event that happened at now_ns (a
 * CLOCK_MONOTONIC time the caller already read): LW_CTR_EVENTS and the
 * last-activity time, without a second clock read. */
SHIM_HIDDEN void segment_event_at(uint64_t now_ns);
/* segment_active - nonzero when this thread may record into g_seg: tracing is
 * on and the caller is the process that owns the segment (not a vfork child
 * or a clone sharing our memory, not a fork-like child that set up no
 * segment of its own).  No system call unless a child sharing our memory
 * may be running (lw_owner_state). */
SHIM_HIDDEN int segment_active_slow(void);
static inline int segment_active(void);

/*
 * Growth.  Every page a table uses is reserved before anything touches it:
 * a chunk or heap table that cannot be reserved (filesystem full, budget
 * reached, address space) is refused, counted in LW_CTR_DROP_RESERVE, and
 * its table is marked in hdr->incomplete.  Growth takes the segment's grow
 * lock (bounded wait, never held across a return to the host) with every
 * signal blocked, and never moves what exists: other threads and readers go
 * on using the published chunks while a new one is made.
 */
/* segment_chunk - chunk k of table t, or NULL when it does not exist yet. */
static inline void *segment_chunk(unsigned t, unsigned k)
{
	return k < LW_CHUNKS_MAX ? __atomic_load_n(&g_seg.chunk[t][k], __ATOMIC_ACQUIRE) : NULL;
}
/* segment_chunk_grow - make chunks up to and including k of table t exist
 * (in order).  Returns chunk k, or NULL when it could not be made (counted;
 * also when k is beyond the table's limit). */
SHIM_HIDDEN void *segment_chunk_grow(unsigned t, unsigned k);
/* seg_shift / seg_esize - the geometry of this image's own tables, fixed
 * at build time (tables_init stores the same in g_seg for code that reads
 * any segment, segment_entry_in; a parent's, after a fork, comes from its
 * own struct). */
static inline __attribute__((always_inline)) uint32_t seg_shift(unsigned t)
{
	return t == LW_T_STACKS ? LW_LIM_SHIFT_STACKS : t == LW_T_MODULES ? LW_LIM_SHIFT_MODULES
	       : t == LW_T_HANDLES ? LW_LIM_SHIFT_HANDLES : LW_LIM_SHIFT_BADCLOSES;
}
static inline __attribute__((always_inline)) uint32_t seg_esize(unsigned t)
{
	return t == LW_T_STACKS ? sizeof(struct lw_stack) : t == LW_T_MODULES ? sizeof(struct lw_module)
	       : t == LW_T_HANDLES ? sizeof(struct lw_handle) : sizeof(struct lw_badclose);
}
/* segment_entry - entry idx of table t, or NULL when its chunk does not
 * exist.  segment_entry_grow makes it exist first (NULL: counted refusal).
 * With a constant t, an entry of the first chunk (every fd below 16, the
 * first stacks) is a compare and a multiply by a constant; a bit scan more
 * beyond it. */
static inline __attribute__((always_inline)) void *segment_entry(unsigned t, uint64_t idx)
{
	const uint32_t shift = seg_shift(t);
	if (__builtin_expect(idx < (1ull << shift), 1)) {
		char *c0 = (char *)__atomic_load_n(&g_seg.chunk[t][0], __ATOMIC_ACQUIRE);
		return c0 ? c0 + idx * seg_esize(t) : NULL;
	}
	uint64_t within;
	unsigned k = lw_chunk_of(shift, idx, &within);
	char *c = (char *)segment_chunk(t, k);
	return c ? c + within * seg_esize(t) : NULL;
}
SHIM_HIDDEN void *segment_entry_grow_slow(unsigned t, uint64_t idx);
static inline void *segment_entry_grow(unsigned t, uint64_t idx)
{
	void *e = segment_entry(t, idx);
	return __builtin_expect(e != NULL, 1) ? e : segment_entry_grow_slow(t, idx);
}
/* segment_entry_in - segment_entry() in another segment (a fork child
 * reading its parent's tables). */
static inline void *segment_entry_in(const struct shim_segment *s, unsigned t, uint64_t idx)
{
	uint64_t within;
	unsigned k = lw_chunk_of(s->shift[t], idx, &within);
	char *c = k < LW_CHUNKS_MAX ? (char *)__atomic_load_n(&s->chunk[t][k], __ATOMIC_ACQUIRE) : NULL;
	return c ? c + within * s->esize[t] : NULL;
}
/* stack_slot - the stack table entry of a stack id, NULL for 0 or an id
 * beyond the published chunks. */
static inline struct lw_stack *stack_slot(uint32_t id)
{
	return id ? (struct lw_stack *)segment_entry(LW_T_STACKS, (uint64_t)id - 1) : NULL;
}
/* segment_capacity - entries in the published chunks of table t. */
SHIM_HIDDEN uint64_t segment_capacity(unsigned t);
/* segment_extent_new - reserve and map `bytes` (rounded up to pages) of new
 * file space, zero-filled, for a heap table; *off gets its file offset.
 * NULL when refused (counted in LW_CTR_DROP_RESERVE; the caller marks the
 * table incomplete).  The caller holds no lock of ours. */
SHIM_HIDDEN void *segment_extent_new(uint64_t bytes, uint64_t *off);
/* segment_extent_initial - the first heap table, reserved and mapped with
 * the segment (LW_LIM_HEAP_FIRST_* slots): returned once, when at least
 * `bytes` long; NULL otherwise (then use segment_extent_new). */
SHIM_HIDDEN void *segment_extent_initial(uint64_t bytes, uint64_t *off);
/* segment_extent_retire - give an extent's pages back.  The range stays
 * mapped, as private zero pages, so a thread still probing it reads empty
 * slots; the file range becomes a hole. */
SHIM_HIDDEN void segment_extent_retire(void *p, uint64_t off, uint64_t bytes);
/* segment_grow_lock / segment_grow_unlock - the grow lock, for a caller
 * that publishes something of its own with a growth (the heap directory).
 * lock: 1 when held (signals blocked into *old), 0 when it stayed busy. */
SHIM_HIDDEN int segment_grow_lock(sigset_t *old);
SHIM_HIDDEN void segment_grow_unlock(const sigset_t *old);
/* segment_privatize - fork child: replace every mapping of the parent's
 * segment (header, chunks, extents) in place by a private copy-on-write
 * mapping of the same file range, so that a frame the fork interrupted keeps
 * valid pointers and its writes stay in the child. */
SHIM_HIDDEN void segment_privatize(const struct shim_segment *parent);
/* segment_mark_incomplete - note that a table stopped growing (bits
 * LW_INCOMPLETE_*). */
SHIM_HIDDEN void segment_mark_incomplete(uint32_t bits);

/* budget.c */
/* budget_init - fix this image's budget for the directory (bytes, 0: none)
 * from LEAKWATCH_BUDGET and the filesystem's size; stored in the header. */
SHIM_HIDDEN uint64_t budget_init(void);
/* budget_inherit - a fork child keeps its parent's budget (no statfs). */
SHIM_HIDDEN uint64_t budget_inherit(uint64_t bytes);
/* budget_admit - may `bytes` more be reserved in the segment directory?
 * 1 yes; 0 no, even after removing segments of this user's dead processes
 * oldest first (counted in LW_CTR_RECLAIMED).  Never removes a segment of a
 * live process, another user's file, or our own. */
SHIM_HIDDEN int budget_admit(uint64_t bytes);
/* budget_take_pending - segments reclaimed while this image's own segment
 * was being created (counted into its header then). */
SHIM_HIDDEN uint64_t budget_take_pending(void);

/*
 * Who owns the segment, without asking the kernel (lifecycle.c).
 *
 * g_seg_owner is a private page marked MADV_WIPEONFORK, set to nonzero by
 * the image that created g_seg: it reads zero in every child that got a
 * copy of our memory (fork, _Fork, a raw fork or clone) until that child
 * sets up a segment of its own.  It cannot tell a child that *shares* our
 * memory (vfork, clone with CLONE_VM): for those, g_shared_vm counts the
 * ones that may be running — raised by the vfork and clone hooks (hooks.c)
 * before the child exists and lowered by the parent once a CLONE_VFORK
 * child has exec'd or exited; a CLONE_VM child without CLONE_VFORK raises
 * it for good.  While it is nonzero, segment_active() asks getpid().
 * Not seen: a child of a raw clone/vfork system call that shares our memory
 * and calls a hooked libc function before it execs (glibc's posix_spawn
 * child calls none).  g_seg_owner is NULL where the kernel lacks
 * MADV_WIPEONFORK (before Linux 4.14), and g_shared_vm starts at 1 where no
 * vfork hook exists: then every check asks getpid(), as before.
 */
SHIM_HIDDEN extern volatile uint64_t *g_seg_owner;
SHIM_HIDDEN extern _Atomic int g_shared_vm;

/* lw_owner_state - 1: this image owns g_seg; 0: it certainly does not (a
 * fork-like child that has no segment of its own); -1: ask getpid(). */
static inline int lw_owner_state(void)
{
	const volatile uint64_t *o = g_seg_owner;
	if (!o)
		return -1;
	if (!*o)
		return 0;
	return atomic_load_explicit(&g_shared_vm, memory_order_acquire) ? -1 : 1;
}

static inline int segment_active(void)
{
	if (g_seg.hdr == NULL)
		return 0;
	int owner = lw_owner_state();
	return owner >= 0 ? owner : segment_active_slow();
}

/* stack.c */
/* shim_mem_tag - this image's tag for the private mappings a pointer scan
 * must leave out (segment.h: mem_tag); never 0, the same in fork children. */
SHIM_HIDDEN uint64_t shim_mem_tag(void);
/* stack_capture - unwind the caller's stack (dropping the shim's own frames)
 * and intern it.  Returns the stack id, or 0 when unwinding failed or the
 * table is full (counted). */
SHIM_HIDDEN uint32_t stack_capture(void);
/* stack_capture_at - stack_capture() for a hook that knows its caller's
 * return address and stack pointer after return (cfa): a repeated call from
 * an unchanged caller chain skips the unwind. */
SHIM_HIDDEN uint32_t stack_capture_at(uintptr_t ra, uintptr_t cfa);
/* stack_capture_known - stack_capture_at(), and *known = 1 when the call
 * site's entry says the stack's frames were all in the module table at
 * module epoch `epoch` (what stack_site_known() noted); stack_site_known -
 * note that of the entry the thread's last capture used, if it gave id. */
SHIM_HIDDEN uint32_t stack_capture_known(uintptr_t ra, uintptr_t cfa, uint32_t epoch, int *known);
SHIM_HIDDEN void stack_site_known(uint32_t id, uint32_t epoch);
/* stack_modules_known - nonzero when every frame of stack `id` lies in a
 * module of the table that is not flagged unloaded (or id is 0: no frames
 * to symbolize). */
SHIM_HIDDEN int stack_modules_known(uint32_t id);
/* stack_intern - store `frames` once in the stack table.  Returns the id of
 * the existing or new slot, or 0 when the table is full (counted). */
SHIM_HIDDEN uint32_t stack_intern(const uint64_t *frames, unsigned depth);
/* stack_disable_unwind - from now on record no stacks (fork child of a
 * threaded parent, until exec: dl_iterate_phdr, and the unwinder's lookup of
 * frames registered at run time, take locks another thread may have held). */
SHIM_HIDDEN void stack_disable_unwind(void);
SHIM_HIDDEN int stack_unwind_disabled(void);
/* stack_before_fork / stack_after_fork - around fork() in the forking
 * thread (prepare; parent and child): see "fork" in stack.c. */
SHIM_HIDDEN void stack_before_fork(void);
SHIM_HIDDEN void stack_after_fork(int child);
/* stack_set_self_range - addresses in [lo, hi) belong to the shim and are
 * dropped from captured stacks. */
SHIM_HIDDEN void stack_set_self_range(uintptr_t lo, uintptr_t hi);
/* stack_side_call - fn(arg) on this thread's side stack (for work that
 * needs more stack than a host thread may have left); `fail` when there is
 * no side stack. */
SHIM_HIDDEN uint32_t stack_side_call(uint32_t (*fn)(void *), void *arg, uint32_t fail);
/* stack_on_side_stack - nonzero when sp lies in this thread's side stack,
 * the stack every unwind runs on (see stack.c).  Async-signal-safe. */
SHIM_HIDDEN int stack_on_side_stack(uintptr_t sp);

/* modules.c */
/* modules_scan - record every loaded object not yet in the module table and
 * mark the ones that disappeared as unloaded. */
SHIM_HIDDEN void modules_scan(void);
/* modules_refresh - rescan when the loader's adds/subs counters moved since
 * the last look (one dl_iterate_phdr callback when nothing changed). */
SHIM_HIDDEN void modules_refresh(void);
/* modules_after_fork - fork child: reset scan state and copy the parent's
 * table into the new segment (no dl_iterate_phdr: see modules.c). */
SHIM_HIDDEN void modules_after_fork(const struct shim_segment *parent);
/* modules_cover - nonzero when each of the n addresses lies in a module of
 * the table not flagged unloaded (read without the slots' seqlocks: a
 * scan racing with it can make it answer 0, never crash). */
SHIM_HIDDEN int modules_cover(const uint64_t *pcs, unsigned n);
/* g_modules_epoch - bumped after every change the module table can have
 * seen (each scan, and the fork child's copy): a stack found covered at one
 * epoch stays covered until it moves. */
SHIM_HIDDEN extern _Atomic uint32_t g_modules_epoch;

/* handles.c */
/* Recording of descriptor events into the handle table.  All take the fd as
 * returned by the real call and are no-ops for fds outside the table
 * (counted as drops).  Stack ids come from the caller (events.c). */
SHIM_HIDDEN void handle_open_socket(int fd, uint16_t origin, int dup_of, uint32_t stack_id);
/* What the hook of a new socket already knows, so that the record is
 * filled without asking the kernel (each question is a system call). */
enum { HANDLE_FRESH = 1, HANDLE_PAIRED = 2 };
struct handle_known {
	int family, type, protocol;     /* family > 0: known (type without SOCK_NONBLOCK/CLOEXEC) */
	int like_fd;                    /* >= 0: shares family, type, protocol with this fd's
					 * open record (accept: the listener) */
	int fresh;                      /* HANDLE_FRESH: from socket(), no address yet;
					 * HANDLE_PAIRED: a socketpair() end (AF_INET, AF_INET6,
					 * AF_UNIX: other families are asked) */
	const struct sockaddr *peer;    /* the peer address the call returned (accept), or NULL */
	socklen_t peer_len;
	int new_socket;                 /* the call made fd a socket (socket, socketpair, accept):
					 * no fstat() to prove it, and no inode (the analyzer
					 * takes it from /proc/PID/fd) */
};
/* handle_open_socket_known - handle_open_socket() with what k says known
 * (k may be NULL). */
SHIM_HIDDEN void handle_open_socket_known(int fd, uint16_t origin, int dup_of, uint32_t stack_id,
					  const struct handle_known *k);
/* What the hook of a new non-socket descriptor knows (struct lw_handle). */
struct handle_fd {
	int kind;                       /* enum lw_fd_kind, not LW_FD_SOCKET */
	int oflags;                     /* the call's flags */
	const char *path;               /* NULL: none; longer than LW_FDPATH_MAX: truncated */
	uint16_t origin;                /* 0: LW_ORIGIN_OPEN */
};
/* handle_open_fd - record fd (>= 0, just made by a hooked call) as d says.
 * No system call. */
SHIM_HIDDEN void handle_open_fd(int fd, const struct handle_fd *d, uint32_t stack_id);
/* handle_open_received - record fd of any kind that came in with `origin`
 * (SCM_RIGHTS): one fstat() tells its kind. */
SHIM_HIDDEN void handle_open_received(int fd, uint16_t origin, uint32_t stack_id);
/* handle_dup - newfd is a copy of oldfd: a tracked oldfd gives newfd an open
 * record (origin DUP; a record open at newfd is closed with `stack`); an
 * untracked one retires newfd's record. */
SHIM_HIDDEN void handle_dup(int oldfd, int newfd, uint32_t stack);
SHIM_HIDDEN void handle_connected(int fd, const struct sockaddr *addr, socklen_t len,
				  uint32_t stack);
/* handle_bound - refresh the local address after a successful bind(). */
SHIM_HIDDEN void handle_bound(int fd);
/* handle_used - record the stack and time of a send-side call on fd. */
SHIM_HIDDEN void handle_used(int fd, uint32_t stack_id);
/* handle_is_open - nonzero when the table holds an open record for fd. */
SHIM_HIDDEN int handle_is_open(int fd);
/* handle_is_open_socket - ...and that record is a socket's. */
SHIM_HIDDEN int handle_is_open_socket(int fd);
/* handle_names_peers - fd's open record is a TCP (AF_INET, AF_INET6) or
 * AF_UNIX socket, whose accepted connections the kernel can always name. */
SHIM_HIDDEN int handle_names_peers(int fd);
/* handle_any_open - nonzero when some fd in [first, last] is open. */
SHIM_HIDDEN int handle_any_open(unsigned first, unsigned last);

/* What a slot held before a close, for the bad-close record. */
struct handle_prev {
	uint32_t open_stack, close_stack;
	uint64_t open_ns, close_ns;
	uint16_t origin;
	uint16_t kind;                  /* enum lw_fd_kind */
};
/* handle_before_close - called before the real close(fd); closes an open
 * record with `stack`.  Returns the previous handle state (and its fields
 * in *prev) so the caller can report a bad close if the real close then
 * fails with EBADF. */
SHIM_HIDDEN int handle_before_close(int fd, uint32_t stack, struct handle_prev *prev);
/* handle_gc_close - append a close made by a Python finalizer of a record
 * that was open (prev), at stack. */
SHIM_HIDDEN void handle_gc_close(int fd, const struct handle_prev *prev, uint32_t stack);
/* python_close_by_gc - 1 when stack (a close's) runs under CPython's
 * finalizer-from-dealloc: the object holding the descriptor was dropped. */
SHIM_HIDDEN int python_close_by_gc(uint32_t stack);
/* handle_bad_close - append a close() that failed with EBADF. */
SHIM_HIDDEN void handle_bad_close(int fd, int prev_state, const struct handle_prev *prev,
				  uint32_t stack);
/* handle_close_range - close open records for fds in [first, last]. */
SHIM_HIDDEN void handle_close_range(unsigned first, unsigned last, uint32_t stack);
/* handle_scan_inherited - record every socket already open at start. */
SHIM_HIDDEN void handle_scan_inherited(void);
/* handle_scan_open - the same with the origin given (LW_ORIGIN_ATTACH). */
SHIM_HIDDEN void handle_scan_open(uint16_t origin);
/* handle_copy_from - fork child: copy the parent's open records as they
 * were at the fork (from the private mirror, see handles_mirror_init),
 * marked LW_ORIGIN_FORK, re-interning their stacks into our own table;
 * never those at the fds in skip[0..nskip). */
SHIM_HIDDEN void handle_copy_from(const struct shim_segment *parent, const int *skip, unsigned nskip);
/* handles_before_fork - the fork about to happen is this image's first:
 * start the private copy of the handle table that a fork child inherits as
 * a snapshot (until it is complete, children copy from the live table). */
SHIM_HIDDEN void handles_before_fork(void);

/* heap.c */
/* heap_init - enable heap recording into a new heap table of g_seg (mode
 * from enum lw_heap_mode; the first table is the one reserved with the
 * segment); the table grows with the live count up to LEAKWATCH_MAX_ALLOCS.
 * Before it, and with mode OFF, every call below is a cheap no-op.  The
 * tables of an earlier call are forgotten, not unmapped (they are the
 * segment's: segment_detach, segment_privatize). */
SHIM_HIDDEN void heap_init(uint32_t mode, uint64_t sample_bytes);
/* heap_exit_settle - at exit: finish moving the heap table into its
 * replacement, if a growth is in progress, so that the segment left behind
 * holds one table (waits for a growth another thread is making). */
SHIM_HIDDEN void heap_exit_settle(void);

/* The hot-path state, read inline by the hooks (heap.c owns it). */
SHIM_HIDDEN extern uint32_t g_heap_mode;
SHIM_HIDDEN extern _Atomic uint8_t g_heap_filter[LW_HEAP_FILTER_SIZE];
SHIM_HIDDEN extern __thread int64_t t_heap_until_sample;
SHIM_HIDDEN int heap_sample_slow(void);

SHIM_HIDDEN extern volatile uint64_t *g_heap_owner;

/* heap_mode - the mode this process records in; OFF in a fork-like child
 * that has not set up a segment of its own (see g_heap_owner in heap.c). */
static inline uint32_t heap_mode(void)
{
	if (g_heap_mode == LW_HEAP_OFF || !g_heap_owner || !*g_heap_owner)
		return LW_HEAP_OFF;
	return g_heap_mode;
}

/* heap_filter_index - the counting-filter byte of a block address. */
static inline uint32_t heap_filter_index(uint64_t p)
{
	return (uint32_t)(((p >> 4) * 0x9e3779b97f4a7c15ull) >> 48) & (LW_HEAP_FILTER_SIZE - 1);
}

/* heap_should_sample - is an allocation of `size` recorded?  Always in full
 * mode; in sampled mode when it crosses the thread's next sampling point
 * (exponentially distributed gaps with mean sample_bytes, as tcmalloc). */
static inline int heap_should_sample(size_t size)
{
	uint32_t mode = heap_mode();
	if (mode == LW_HEAP_FULL)
		return 1;
	if (mode != LW_HEAP_SAMPLED)
		return 0;
	t_heap_until_sample -= (int64_t)size;
	if (__builtin_expect(t_heap_until_sample > 0, 1))
		return 0;
	return heap_sample_slow();
}

/* heap_maybe_recorded - cheap pre-check before heap_record_free(): 0 means
 * the block is certainly not in the table. */
static inline int heap_maybe_recorded(const void *ptr)
{
	uint32_t mode = heap_mode();
	if (mode == LW_HEAP_FULL)
		return 1;
	if (mode != LW_HEAP_SAMPLED)
		return 0;
	return atomic_load_explicit(&g_heap_filter[heap_filter_index((uint64_t)(uintptr_t)ptr)],
				    memory_order_relaxed) != 0;
}

/* heap_record_alloc - insert a live block (growing the table when it
 * fills); no room and no growth possible, or LEAKWATCH_MAX_ALLOCS live
 * blocks already -> counted drop. */
SHIM_HIDDEN void heap_record_alloc(void *ptr, size_t size, uint32_t stack_id);
/* heap_record_free - remove ptr's record (call before the real free).
 * Returns 1 and the old record's fields when it was recorded, else 0. */
SHIM_HIDDEN int heap_record_free(void *ptr, uint32_t *stack_id, uint64_t *size, uint64_t *ns);
SHIM_HIDDEN void heap_record_restore(void *ptr, size_t size, uint32_t stack_id, uint64_t ns);
/* A removed record's fields (lw_ev_free, for a realloc that fails). */
struct heap_old {
	uint32_t stack;
	uint64_t size, ns;
};
/* heap_any_live - nonzero when the heap table holds a live block (exit
 * path: decides whether the segment is kept). */
SHIM_HIDDEN int heap_any_live(void);
/* heap_after_fork - fork child: drop the forking thread's batched totals. */
SHIM_HIDDEN void heap_after_fork(void);
/* heap_thread_flush - push this thread's batched totals to the segment. */
SHIM_HIDDEN void heap_thread_flush(void);
/* heap_hooks_init - resolve the real allocator (heap_hooks.c). */
SHIM_HIDDEN void heap_hooks_init(void);

/* lifecycle.c */
/* g_ready - 1 once the segment is set up (0 again while a fork child sets up
 * its own); events record only then. */
SHIM_HIDDEN extern _Atomic int g_ready;
/* What the hook object gives the lifecycle: its resolvers (run first, and
 * once the segment exists: the allocator's), and an address inside it (its
 * code is dropped from captured stacks). */
struct lifecycle_entry {
	void (*resolve_hooks)(void);
	void (*resolve_heap)(void);
	const void *self;
};
/* lifecycle_start - the constructor: read the configuration, create the
 * segment, record what is already open, arm fork and exit handling.  Leaves
 * tracing off (and the host untouched) on any failure, in secure-execution
 * mode, and with LEAKWATCH_DISABLE. */
SHIM_HIDDEN void lifecycle_start(const struct lifecycle_entry *e);
/* lifecycle_stop - the destructor: flush, mark the image exited, drop an
 * empty segment. */
SHIM_HIDDEN void lifecycle_stop(void);
/* lifecycle_attach - lifecycle_start() for a shim loaded into a running
 * process (attach.c): what is open gets LW_ORIGIN_ATTACH.  0 when
 * recording, else a positive LW_ATTACH_E_* code (segment.h). */
SHIM_HIDDEN int lifecycle_attach(void);

/* python.c */
/* python_init - look for a CPython 3.11-3.13 interpreter in the process
 * (its Py_Version, _PyRuntime, _PyEval_EvalFrameDefault) and note what was
 * found in the header.  At start and at attach. */
SHIM_HIDDEN void python_init(void);
/* python_active - 1 when Python frames are spliced into captured stacks
 * (one load: the call-site cache's hit path asks it). */
SHIM_HIDDEN extern int g_python_on;
static inline int python_active(void)
{
	return g_python_on;
}
/* python_splice - in[0..n) (native frames, innermost first) with the
 * calling thread's Python frames inserted before each eval-loop frame,
 * into out[0..max); returns the count. */
SHIM_HIDDEN unsigned python_splice(const uint64_t *in, unsigned n, uint64_t *out, unsigned max);
/* python_chain_hash - a hash of the calling thread's Python frames (code
 * and instruction of each): the call-site cache's check that the Python
 * part of a cached stack did not change. */
SHIM_HIDDEN uint64_t python_chain_hash(void);

/* attach.c */
/* attach_late_load - 1 when the shim was not preloaded but loaded into a
 * running process (libc comes before it in the load order); the
 * constructor then waits for leakwatch_attach(). */
SHIM_HIDDEN int attach_late_load(const void *self);
/* attach_refresh - after modules_scan() found new objects: take over their
 * calls too, when attached. */
SHIM_HIDDEN void attach_refresh(void);
/* g_attach_rescan - 1 while attached: every stack capture calls
 * attach_rescan_maybe(), which looks for new objects (modules_refresh) at
 * most every LW_LIM_ATTACH_RESCAN_NS. */
SHIM_HIDDEN extern _Atomic int g_attach_rescan;
SHIM_HIDDEN void attach_rescan_maybe(void);
/* g_fork - fork child state; pending is nonzero in a fork child that has
 * no segment yet and creates one at its first record of its own (see
 * lifecycle.c). */
struct shim_forkstate {
	_Atomic int pending;            /* 0 no, 1 pending, 2 being created */
	pid_t pending_pid;              /* the pending image's own pid (a vfork child of it
					 * shares this memory and is never it) */
	struct lw_header *parent_hdr;   /* the snapshot's segment: g_seg as the fork left
					 * it but for hdr, kept here; mapped, never written */
	uint64_t boot_ns;               /* CLOCK_BOOTTIME at the fork (0: not a fork child) */
};
SHIM_HIDDEN extern struct shim_forkstate g_fork;
/* lifecycle_fork_segment - pending fork child: create the segment now,
 * with the inherited records.  Call with the guard set.  1 when g_seg is
 * this image's own now; 0 when not pending, not the pending process itself
 * (a vfork child of it), another thread is creating it, or there is no
 * room (then the image stays untraced).  fresh[0..nfresh): descriptors the
 * call that creates it has just made (their numbers' inherited records are
 * finished: closed while the child had no segment, as no record shows). */
SHIM_HIDDEN int lifecycle_fork_segment(const int *fresh, unsigned nfresh);


/*
 * Per-thread re-entry guard (initial-exec TLS, no allocation on first use).
 *
 * g_in_shim is set while a thread records; a hook entered with it set (a
 * signal handler that interrupted the recorder) passes straight through.
 * A handler may also never return: siglongjmp() out of it abandons the
 * recording frame with the guard still set and perhaps a slot held odd.
 * So the guard remembers the stack pointer of the frame that set it
 * (t_guard_sp) and the one slot sequence counter the thread holds
 * (t_held_seq); guard_busy() tells a live guard from an abandoned one and
 * recovers the latter (guard_recover in guard.c).
 */
SHIM_HIDDEN extern __thread int g_in_shim;
SHIM_HIDDEN extern __thread uintptr_t t_guard_sp;
SHIM_HIDDEN extern __thread _Atomic uint32_t *t_held_seq;
SHIM_HIDDEN extern __thread uint32_t t_held_val;

/* guard_recover - the guard is set: return 1 if the frame that set it may
 * still be live (a nested call: pass through), or 0 after clearing a guard
 * whose frame is gone (and releasing the slot it held, counted). */
SHIM_HIDDEN int guard_recover(uintptr_t sp);
/* guard_abandon - clear the guard of a frame that is gone (siglongjmp out of
 * a handler that interrupted it), releasing the slot it held; counted. */
SHIM_HIDDEN void guard_abandon(void);

static inline __attribute__((always_inline)) int guard_busy(void)
{
	if (__builtin_expect(!g_in_shim, 1))
		return 0;
	return guard_recover((uintptr_t)__builtin_frame_address(0));
}

static inline __attribute__((always_inline)) void guard_set(void)
{
	t_guard_sp = (uintptr_t)__builtin_frame_address(0);
	/* a signal handler reading the guard must see the frame first */
	atomic_signal_fence(memory_order_seq_cst);
	g_in_shim = 1;
}

static inline void guard_clear(void)
{
	g_in_shim = 0;
}

/*
 * shim_signals_block / shim_signals_restore - around code that takes a lock
 * of the loader or of libc (dl_iterate_phdr, the unwinder's lookups): a
 * signal handler that left it with siglongjmp, or forked inside it, would
 * find that lock held for good.  glibc keeps its internal signals unblocked.
 */
static inline void shim_signals_block(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

static inline void shim_signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/*
 * seq_lock / seq_unlock - the writer side of a slot's seqlock
 * (lw_seq_write_claim / lw_seq_write_end in segment.h), with the held
 * counter noted in TLS so that a frame abandoned by siglongjmp cannot leave
 * the slot locked for good.  seq_lock returns 1 with *s the even value, or 0
 * if the slot was busy (odd) or changed under us.  Every multi-writer slot
 * of the recorder is taken through these.
 */
static inline int seq_lock(_Atomic uint32_t *seq, uint32_t *s)
{
	uint32_t v = atomic_load_explicit(seq, memory_order_relaxed);
	if (v & 1u)
		return 0;
	/* Noted before the CAS: a timer interrupt that arrives during a cold
	 * CAS is taken right after it, so a note made after it would miss the
	 * handlers that matter.  t_held_val tells guard_abandon whether the CAS
	 * happened (the slot still holds our odd value). */
	t_held_val = v + 1;
	t_held_seq = seq;
	if (!lw_seq_write_claim(seq, v)) {
		t_held_seq = NULL;
		return 0;
	}
	*s = v;
	return 1;
}

static inline void seq_unlock(_Atomic uint32_t *seq, uint32_t s)
{
	lw_seq_write_end(seq, s + 1);
	t_held_seq = NULL;
}

#if defined(__x86_64__) || defined(__i386__)
/*
 * Inside a hook: the caller's return address and its stack pointer after
 * our return (our frame's CFA), as stack_capture_at() wants them.  Valid
 * because the library is built with frame pointers.
 */
#define CALLER_RA()  ((uintptr_t)__builtin_return_address(0))
#define CALLER_CFA() ((uintptr_t)__builtin_frame_address(0) + 2 * sizeof(void *))

#define shim_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define shim_cpu_relax() __asm__ __volatile__("yield")
#else
#define shim_cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

/* seq_lock_spin - seq_lock(), retried up to `spins` times while another
 * writer holds the slot (shim_limits.h gives each table its bound).  0 when the
 * slot stayed busy: the caller drops its event. */
static inline int seq_lock_spin(_Atomic uint32_t *seq, uint32_t *s, unsigned spins)
{
	for (unsigned i = 0; i < spins; i++) {
		if (seq_lock(seq, s))
			return 1;
		shim_cpu_relax();
	}
	return 0;
}

#endif /* LEAKWATCH_SHIM_H */
