/* SPDX-License-Identifier: MIT */
/*
 * leakwatch segment ABI — the only contract between the preloaded shim
 * (libleakwatch.so, the writer) and the `leakwatch` analyzer (the reader).
 *
 * One segment per traced process image: a regular file named
 * "leakwatch.<pid>" in $LEAKWATCH_DIR (default /dev/shm), created with
 * O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and mode 0600.  The file's logical
 * size is a large sparse span (total_size); only the ranges the tables
 * occupy hold pages, and every one of them was reserved (the pages
 * allocated, MADV_POPULATE_WRITE or fallocate) before the shim touched it,
 * so a full filesystem refuses growth instead of killing the host with
 * SIGBUS.  Readers must only read the ranges the header names.
 *
 * Layout v2 (offsets from the start of the file, page aligned):
 *
 *   +--------------------------+ 0
 *   | struct lw_header         |  header_size bytes (LW_HEADER_SIZE)
 *   +--------------------------+
 *   | chunks and heap tables,  |  in the order they were created; ranges
 *   | anywhere in the span     |  no longer named by the header (a heap
 *   |                          |  table that was replaced) are holes
 *   +--------------------------+ total_size
 *
 * Tables that only ever grow are chunked (struct lw_chunks): chunk k holds
 * 1 << (shift + k) entries, entry index i lives in chunk
 * k = floor(log2((i >> shift) + 1)) at position i - (((1 << k) - 1) << shift)
 * (lw_chunk_of below), and a chunk, once published, never moves.  Chunks
 * are published in order: off[k] is written, then count = k + 1 (release);
 * a reader loads count first (acquire), then the offsets below it.
 *   stacks    hash-consed call stacks, id = index + 1; each chunk is an
 *             open-addressed hash set of its own (the shim probes every
 *             chunk when it interns); readers just scan all slots
 *   modules   loaded objects, appended (used = entries written)
 *   handles   indexed by file descriptor number (used = highest fd + 1)
 *   badcloses ring of close() calls that failed EBADF: entry n (the n-th
 *             bad close, counting from 0) is at index n % LW_BADCLOSE_RING,
 *             used = total appended; entries in a chunk that could not be
 *             made are lost (counted as incomplete)
 * The heap table is a hash set that is replaced by a larger one as it
 * fills (struct lw_heapdir): while `old` is named, its entries are being
 * moved into `cur`, and a block lives in exactly one of the two, except for
 * the instant of its move, when a reader may see it in both (keep one per
 * ptr).  Read old first, then cur, then check that gen did not change.
 *
 * Version 1 (shims before growable segments) had no chunks: each table was
 * one array at lw_table.offset with lw_table.capacity entries, the heap a
 * power-of-two hash set there.  Readers of v2 still read v1 segments that
 * way (version == 1).
 *
 * Versioning (modelled on perf_event_mmap_page):
 *   - `version` is the layout the writer produced; `compat_version` is the
 *     oldest reader layout that can still read it.  Fields are only ever
 *     appended (into the reserved areas) and a new field is zero in segments
 *     written by older shims.  A reader of layout R accepts a segment when
 *     compat_version <= R, and refuses it otherwise with "newer layout".
 *   - Entry sizes are recorded in each table descriptor (`entry_size`), so a
 *     reader steps through tables with the writer's stride, never its own.
 *
 * Sequence counters (seqlock) — the reader protocol:
 *
 *   Every mutable slot begins with a 32-bit `seq`.  A writer makes it odd
 *   (compare-and-swap from an even value, which also excludes other writers
 *   of the same slot), writes the payload, then stores seq + 1 with release
 *   semantics.  A reader never writes and never waits on a writer:
 *
 *       for (tries = 0; tries < LW_READ_RETRIES; tries++) {
 *           s1 = atomic_load_explicit(&slot->seq, memory_order_acquire);
 *           if (s1 & 1) continue;              // write in progress
 *           memcpy(&copy, slot, sizeof copy);  // may be torn
 *           atomic_thread_fence(memory_order_acquire);
 *           s2 = atomic_load_explicit(&slot->seq, memory_order_relaxed);
 *           if (s1 == s2) return copy;         // consistent
 *       }
 *       // give up on this slot: count it as "busy", never block
 *
 *   lw_seq_read() below implements exactly this loop.  Writer side
 *   (lw_seq_write_claim / lw_seq_write_end below):
 *
 *       s = seq (even); CAS(seq, s, s + 1) acquire   // or give up
 *       ... payload stores ...
 *       atomic_store_explicit(&seq, s + 2, memory_order_release)
 *
 *   A slot with a single writer (a table only one thread appends to, a
 *   process-private copy) needs no CAS: lw_seq_write_begin / lw_seq_write_end.
 *
 *   A writer that finds the slot odd (another writer inside) retries a bounded
 *   number of times, then drops the event and counts it: the host program is
 *   never blocked for long by leakwatch, and never by a reader.
 *
 * Stack slots are write-once: seq goes 0 (empty) -> 1 (being filled) -> 2
 * (ready) and never changes again, so a reader that sees 2 may copy freely.
 * Counters in the header and in stack slots are updated with relaxed atomic
 * adds and read without the seqlock: they are monotonic totals.
 *
 * Times are CLOCK_MONOTONIC nanoseconds unless named *_realtime_*; the times
 * of descriptor events (open, connect, last use, close, bad close) and
 * last_active_ns are read at the coarse resolution of that clock
 * (CLOCK_MONOTONIC_COARSE: one scheduler tick, up to a tick behind).  The header
 * holds a (realtime, monotonic) pair taken together at start so wall-clock
 * times can be derived: wall = start_realtime_ns + (t - start_monotonic_ns).
 */
#ifndef LEAKWATCH_SEGMENT_H
#define LEAKWATCH_SEGMENT_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define LW_MAGIC            0x48435441574b414cULL /* "LAKWATCH" little-endian */
#define LW_VERSION          2u
#define LW_COMPAT_VERSION   2u   /* a v1 reader cannot read chunked tables */
#define LW_HEADER_SIZE      8192u
#define LW_SEGMENT_PREFIX   "leakwatch."
#define LW_DEFAULT_DIR      "/dev/shm"

#define LW_STACK_MAX_FRAMES 64u     /* hard maximum of LEAKWATCH_STACK_DEPTH */
#define LW_PATH_MAX         256u
#define LW_CMDLINE_MAX      1024u
#define LW_BUILD_ID_MAX     32u
#define LW_ADDR_MAX         112u    /* holds sockaddr_in, sockaddr_in6, sockaddr_un */
#define LW_READ_RETRIES     1000u

/* Process image state (lw_header.state). */
enum lw_state {
	LW_STATE_STARTING = 0,      /* header not filled in yet */
	LW_STATE_RUNNING  = 1,
	LW_STATE_EXITED   = 2,      /* exit()/_exit() or a destructor ran */
	LW_STATE_EXECED   = 3,      /* replaced by execve(); see "leakwatch.<pid>" for the new image */
	LW_STATE_DISABLED = 4,      /* the shim shut itself down (see disable_reason) */
};

/* Header counters (lw_header.counters[]). */
enum lw_counter {
	LW_CTR_EVENTS = 0,          /* hooked calls that changed the tables */
	LW_CTR_SOCK_OPENED,         /* socket handles recorded (any origin) */
	LW_CTR_SOCK_CLOSED,         /* socket handles removed */
	LW_CTR_BAD_CLOSES,          /* close() on an fd that was not open (EBADF) */
	LW_CTR_STALE_CLOSES,        /* a record found stale (fd reused without a hook seeing it) */
	LW_CTR_DROP_HANDLE_FULL,    /* fd >= handle table capacity */
	LW_CTR_DROP_STACK_FULL,     /* stack table full or probe limit hit */
	LW_CTR_DROP_MODULE_FULL,    /* module table full */
	LW_CTR_DROP_UNWIND,         /* unw_backtrace() failed or returned 0 frames */
	LW_CTR_DROP_BUSY,           /* slot stayed locked by another writer too long */
	LW_CTR_DROP_REENTRANT,      /* hook entered while the same thread was recording */
	LW_CTR_MODULE_RESCANS,      /* dl_iterate_phdr() scans after dlopen/dlclose */
	LW_CTR_HEAP_ALLOCS,         /* recorded heap allocations */
	LW_CTR_HEAP_FREES,          /* recorded heap frees */
	LW_CTR_DROP_HEAP_FULL,      /* heap table full */
	LW_CTR_HEAP_UNTRACKED_FREES,/* free() of a pointer the shim never saw */
	LW_CTR_SEND_CALLS,          /* send-side calls on tracked sockets */
	LW_CTR_SOCK_INHERITED,      /* of LW_CTR_SOCK_OPENED: records of inherited/fork-copied fds */
	LW_CTR_GUARD_RECOVERED,     /* a recording frame left by siglongjmp: guard and slot released */
	LW_CTR_CONFIG_INVALID,      /* LEAKWATCH_* values the shim rejected (defaults used instead) */
	LW_CTR_DROP_RESERVE,        /* a table could not grow: no space, or over the budget (see incomplete) */
	LW_CTR_HEAP_GROWS,          /* heap table replaced by a larger one */
	LW_CTR_RECLAIMED,           /* segments of dead processes this image removed to stay in the budget */
	LW_CTR_FD_OPENED,           /* handles of other kinds (files, pipes, ...) recorded, any origin
				     * (inherited and fork-copied ones too: they stay out of SOCK_INHERITED) */
	LW_CTR_FD_CLOSED,           /* ...and removed */
	LW_CTR_UNSEEN_CLOSES,       /* close() failing with EBADF on a number the shim never saw
				     * open nor closed (a close loop): not a bad close, as for
				     * valgrind --track-fds */
	LW_CTR_NUM_DEFINED,
	LW_CTR_MAX = 64             /* room in the header */
};

/* lw_header.flags */
#define LW_HDR_START_TICKS_BOOTTIME 0x1u /* proc_start_ticks derived from CLOCK_BOOTTIME
					    at creation (a fork child): see lw_start_ticks_match */

/* Table descriptor: where a table lives and how big its entries are.
 * v2: offset is 0 (the entries are in chunks, or in the heap directory) and
 * capacity is the number of entries in the published chunks (heap: cur_cap). */
struct lw_table {
	uint64_t offset;            /* v1: from start of segment, 64-byte aligned */
	uint32_t capacity;          /* number of entries */
	uint32_t entry_size;        /* sizeof(entry) as the writer compiled it */
	_Atomic uint32_t used;      /* high-water mark / append cursor (table-specific) */
	uint32_t reserved;
};

/* The chunked tables of v2, in the order of lw_header.chunks[]. */
enum lw_table_id { LW_T_STACKS = 0, LW_T_MODULES, LW_T_HANDLES, LW_T_BADCLOSES, LW_T_NUM };
#define LW_BADCLOSE_RING 960u     /* bad closes kept: the newest win */
#define LW_CHUNKS_MAX 24u           /* 1 << shift .. (2^24 - 1) << shift entries in all */

/* lw_header.incomplete: a table that stopped growing (no space left on the
 * filesystem, or the directory's budget reached); what did not fit is
 * counted in LW_CTR_DROP_RESERVE and the per-table drop counters. */
#define LW_INCOMPLETE_STACKS    (1u << LW_T_STACKS)
#define LW_INCOMPLETE_MODULES   (1u << LW_T_MODULES)
#define LW_INCOMPLETE_HANDLES   (1u << LW_T_HANDLES)
#define LW_INCOMPLETE_BADCLOSES (1u << LW_T_BADCLOSES)
#define LW_INCOMPLETE_HEAP      (1u << 4)

struct lw_chunks {
	_Atomic uint32_t count;         /* chunks published: off[0 .. count) are valid */
	uint32_t shift;                 /* chunk k holds 1 << (shift + k) entries */
	uint64_t off[LW_CHUNKS_MAX];    /* file offset of chunk k (page aligned) */
};

/* The heap hash set(s).  Written by the one thread that replaces the table,
 * under seq (single writer); readers copy it with lw_seq_read(). */
struct lw_heapdir {
	_Atomic uint32_t seq;
	uint32_t gen;                   /* bumps each time a new cur is published */
	uint64_t cur_off, cur_cap;      /* inserts go here; cap slots, a multiple of 16 */
	uint64_t old_off, old_cap;      /* 0: none; else being moved into cur */
	uint64_t reserved[3];
};

/* lw_header.reach_req / reach_ack (the reachability rendezvous at exit). */
enum lw_reach_req { LW_REACH_REQ_NONE = 0, LW_REACH_REQ_WAITING = 1, LW_REACH_REQ_GAVE_UP = 2 };
/*
 * What leakwatch_attach() / leakwatch_detach(), the two functions
 * libleakwatch.so exports for `leakwatch attach|detach PID` to call in the
 * target, return: 0 done, else one of these.
 */
enum lw_attach_error {
	LW_ATTACH_OK = 0,
	LW_ATTACH_E_PRELOADED = 1,      /* the shim was preloaded: already tracing */
	LW_ATTACH_E_ATTACHED = 2,       /* attached already */
	LW_ATTACH_E_DISABLED = 3,       /* LEAKWATCH_DISABLE, or secure-execution mode */
	LW_ATTACH_E_SEGMENT = 4,        /* the segment could not be created (directory, space) */
	LW_ATTACH_E_ARCH = 5,           /* no call-site patching on this architecture */
	LW_ATTACH_E_NOT_ATTACHED = 6,   /* detach: not attached (or detached already) */
	LW_ATTACH_E_MEMORY = 7,         /* no memory for the patch list */
	LW_ATTACH_E_ALLOCATOR = 9,      /* the program is bound to an allocator of its own */
	LW_ATTACH_E_DETACHED = 8,       /* attached once and detached: the tables missed what
					 * happened since, so no second attach */
};

enum lw_reach_ack { LW_REACH_ACK_NONE = 0, LW_REACH_ACK_SCANNING = 1, LW_REACH_ACK_DONE = 2,
		    LW_REACH_ACK_FAILED = 3 };
#define LW_MEM_TAG_XOR 0x6c65616b77617463ull /* "leakwatc" */

/* Heap tracking modes (lw_header.heap_mode). */
enum lw_heap_mode { LW_HEAP_OFF = 0, LW_HEAP_SAMPLED = 1, LW_HEAP_FULL = 2 };

struct lw_header {
	/* identity of the layout — never moves */
	uint64_t magic;
	uint32_t version;
	uint32_t compat_version;
	uint32_t header_size;
	uint32_t flags;
	uint64_t total_size;

	/* identity of the process image */
	int32_t  pid;
	int32_t  ppid;
	uint32_t uid;
	_Atomic uint32_t state;         /* enum lw_state */
	int32_t  exit_status;           /* valid when state == EXITED and exit_known */
	uint32_t exit_known;
	uint64_t proc_start_ticks;      /* /proc/PID/stat field 22: detects pid reuse */
	uint64_t start_realtime_ns;     /* clock pair, taken together at start */
	uint64_t start_monotonic_ns;
	uint64_t end_realtime_ns;       /* set on exit or exec */
	uint64_t end_monotonic_ns;
	uint32_t parent_segment_pid;    /* fork child: the parent's pid, else 0 */
	uint32_t disable_reason;        /* errno-like code when state == DISABLED */
	char     exe[LW_PATH_MAX];
	char     cmdline[LW_CMDLINE_MAX]; /* argv joined with spaces, truncated */

	/* configuration the shim ran with */
	uint32_t stack_depth;           /* frames captured per stack */
	uint32_t heap_mode;             /* enum lw_heap_mode */
	uint64_t sample_bytes;          /* mean bytes between heap samples */

	/* counters, enum lw_counter */
	_Atomic uint64_t counters[LW_CTR_MAX];

	/* tables */
	struct lw_table stacks;
	struct lw_table modules;
	struct lw_table handles;
	struct lw_table badcloses;
	struct lw_table heap;
	struct lw_table reserved_tables[7];

	/* room to grow; new fields go here and are zero in older segments */
	/* CLOCK_MONOTONIC time of the latest event the shim recorded (socket
	 * events always, heap events every few hundred per thread, exit).  A
	 * process killed without running any exit path (SIGKILL) has no end
	 * time; its uptime and ages are then "at least" up to this point. */
	_Atomic uint64_t last_active_ns;

	/* ---- v2: growable tables ---- */
	struct lw_chunks chunks[LW_T_NUM];  /* stacks, modules, handles, badcloses */
	struct lw_heapdir heapdir;
	_Atomic uint32_t incomplete;    /* LW_INCOMPLETE_* bits: a table that could not grow */
	uint32_t reserved0;
	_Atomic uint64_t reserved_bytes;/* bytes of the file reserved for the tables now */
	uint64_t budget_bytes;          /* the directory budget the shim enforced (0: none) */

	/* ---- the reachability rendezvous (no version bump: zero in older
	 * segments, which a reader treats as "no tag, no rendezvous") ----
	 * mem_tag: nonzero; every private anonymous mapping of the shim that
	 * may hold copies of the program's pointers (the unwinder's side stack)
	 * begins with the three words {mem_tag, mem_tag ^ LW_MEM_TAG_XOR, its
	 * length in bytes}, so a scan of the process's memory for pointers
	 * (analyzer/lib/reach.c) can leave it out.  reach_req / reach_ack: at exit, when LEAKWATCH_REACH_WAIT
	 * is set (by `leakwatch run`), the shim stores LW_REACH_REQ_WAITING in
	 * reach_req, touches the file's times (utimensat: an IN_ATTRIB event for
	 * a watcher of the directory) and waits on reach_ack (a futex) until the
	 * analyzer stores LW_REACH_ACK_DONE or _FAILED there, for at most the
	 * configured time while nobody answers.  reach_ack is the one word of a
	 * segment a reader writes. */
	uint64_t mem_tag;
	_Atomic uint32_t reach_req;     /* enum lw_reach_req */
	_Atomic uint32_t reach_ack;     /* enum lw_reach_ack */
	/* ---- attach (no version bump: zero in older segments) ----
	 * attach_monotonic_ns: nonzero when the shim was loaded into a running
	 * process by `leakwatch attach` (the time it started recording; what
	 * was open before has origin LW_ORIGIN_ATTACH).  detach_monotonic_ns:
	 * nonzero once `leakwatch detach` stopped the recording (the tables
	 * show the process as it was then).  attach_patched: call sites (GOT
	 * entries) taken over. */
	_Atomic uint64_t attach_monotonic_ns;
	_Atomic uint64_t detach_monotonic_ns;
	uint32_t attach_patched;
	uint32_t attach_reserved;
	/* ---- Python frames (no version bump: zero in older segments) ----
	 * py_version: the interpreter's Py_Version (PY_VERSION_HEX) when the
	 * process is CPython 3.11 or later, else 0; py_frames: enum lw_py_frames */
	uint32_t py_version;
	uint32_t py_frames;
	uint8_t  reserved[LW_HEADER_SIZE - 2208 - LW_T_NUM * 200 - 64 - 24 - 16 - 24 - 8];
};

/*
 * Python frames in a stack (preload/python.c).  A frame word with the top
 * twelve bits LW_PYFRAME_TAG (never a user-space return address) is a
 * Python frame: bits 24..51 the id of its name entry, bits 0..23 its line
 * (0: unknown).  A name entry is a stack whose frames[0] is LW_PYNAME_MAGIC
 * and whose following words hold "qualname\0filename\0" (UTF-8, cut to fit);
 * it is never the stack of a record.
 */
#define LW_PYFRAME_TAG      0xfff0000000000000ull
#define LW_PYFRAME_ID_MAX   ((1u << 28) - 1)
#define LW_PYNAME_MAGIC     0xffe05059544e414dull
#define LW_IS_PYFRAME(w)    (((w) >> 52) == 0xfffu)
#define LW_PYFRAME_ID(w)    ((uint32_t)(((w) >> 24) & LW_PYFRAME_ID_MAX))
#define LW_PYFRAME_LINE(w)  ((uint32_t)((w) & 0xffffffu))

/* lw_header.py_frames */
enum lw_py_frames {
	LW_PY_NONE = 0,                 /* not a CPython 3.11+ process */
	LW_PY_FRAMES = 1,               /* Python frames are recorded */
	LW_PY_UNSUPPORTED = 2,          /* CPython of a version without a known layout: C frames only */
};

/*
 * A call stack, stored once.  id = index + 1; 0 means "no stack".
 * The write-once part (seq .. frames) and the counters live on different
 * cache lines: threads that only look a stack up never share a line with
 * threads that count into it.
 */
struct lw_stack {
	_Atomic uint32_t seq;           /* 0 empty, 1 filling, 2 ready (write-once) */
	uint16_t depth;                 /* valid entries in frames[] */
	uint16_t flags;
	uint64_t hash;
	uint64_t frames[LW_STACK_MAX_FRAMES]; /* return addresses, innermost first */
	uint64_t pad[6];                /* counters start on a 64-byte boundary */
	/* per-stack totals, relaxed atomics */
	_Atomic uint64_t sock_opened;   /* handles created with this stack */
	_Atomic uint64_t sock_closed;   /* ...and since closed */
	_Atomic uint64_t uses;          /* times recorded as a last-use stack */
	_Atomic uint64_t heap_allocs;   /* heap: allocations recorded */
	_Atomic uint64_t heap_frees;    /* heap: ...and freed */
	_Atomic uint64_t heap_bytes;    /* heap: total bytes allocated */
	uint64_t reserved[2];
};

/* A loaded object, appended at start and after each dlopen/dlclose. */
struct lw_module {
	_Atomic uint32_t seq;
	uint32_t flags;                 /* LW_MODULE_* */
	uint64_t base;                  /* load bias (dlpi_addr) */
	uint64_t start;                 /* lowest mapped address of PT_LOAD segments */
	uint64_t end;                   /* one past the highest */
	uint64_t load_ns;
	uint64_t unload_ns;             /* 0 while loaded */
	uint32_t build_id_len;
	uint8_t  build_id[LW_BUILD_ID_MAX];
	uint32_t reserved;
	char     path[LW_PATH_MAX];     /* absolute where known; "" for the main program → exe */
};
#define LW_MODULE_MAIN     0x1u     /* the main executable */
#define LW_MODULE_UNLOADED 0x2u     /* dlclose()d; kept for old stacks */
#define LW_MODULE_VDSO     0x4u

enum lw_handle_state {
	LW_H_FREE   = 0,                /* never seen */
	LW_H_OPEN   = 1,
	LW_H_CLOSED = 2,                /* closed; payload keeps the last open/close for diagnostics */
};

enum lw_origin {
	LW_ORIGIN_NONE = 0,
	LW_ORIGIN_SOCKET,               /* socket() */
	LW_ORIGIN_SOCKETPAIR,           /* socketpair() */
	LW_ORIGIN_ACCEPT,               /* accept()/accept4() */
	LW_ORIGIN_DUP,                  /* dup/dup2/dup3/fcntl(F_DUPFD*) of a tracked socket */
	LW_ORIGIN_SCM_RIGHTS,           /* received with recvmsg(SCM_RIGHTS) */
	LW_ORIGIN_INHERITED,            /* already open when the shim loaded (exec, spawn) */
	LW_ORIGIN_FORK,                 /* copied from the parent's segment by fork() */
	LW_ORIGIN_OPEN,                 /* any other call that made a descriptor: open family,
					 * fopen, opendir, mkstemp, tmpfile, popen, pipe,
					 * eventfd, epoll_create, ... (lw_handle.kind says which) */
	LW_ORIGIN_ATTACH,               /* already open when `leakwatch attach` loaded the shim
					 * into the running process: no stack */
	LW_ORIGIN_MAX
};

/*
 * What a descriptor is (lw_handle.kind), as the call that made it says: no
 * system call is made to ask (an open() of a FIFO or a directory without
 * O_DIRECTORY is recorded as LW_FD_FILE; readers ask /proc/PID/fd for what
 * it is now).  Sockets are 0, so records of shims that only knew sockets
 * (the field was reserved0, zero) read as sockets.
 */
enum lw_fd_kind {
	LW_FD_SOCKET = 0,
	LW_FD_FILE,                     /* open, openat, creat, fopen, mkstemp, tmpfile, ... */
	LW_FD_DIR,                      /* opendir, open(O_DIRECTORY) */
	LW_FD_PIPE,                     /* pipe, pipe2, popen */
	LW_FD_FIFO,                     /* a named pipe (only from a received/inherited fd) */
	LW_FD_EVENTFD,
	LW_FD_EPOLL,
	LW_FD_TIMERFD,
	LW_FD_SIGNALFD,
	LW_FD_INOTIFY,
	LW_FD_FANOTIFY,
	LW_FD_MEMFD,
	LW_FD_PIDFD,
	LW_FD_USERFAULTFD,
	LW_FD_OTHER,                    /* none of the above: received over SCM_RIGHTS (an
					 * anonymous inode), a message queue (mq_open), the
					 * mount API's fsopen/fsmount/fspick/open_tree */
	LW_FD_KIND_MAX
};

/* lw_handle.kflags */
#define LW_HK_PATH_TRUNCATED 0x1u   /* path.data holds the first LW_FDPATH_MAX bytes only */

#define LW_FDPATH_MAX       228u    /* 2 * sizeof(struct lw_addr) - 4 */

/* The path a non-socket descriptor was made with, where the call gave one:
 * open/openat/creat/fopen/freopen/opendir: the path as given (relative to
 * the caller's cwd or dirfd: not resolved); mkstemp family: the name the
 * call chose; memfd_create: the name; popen: the command. */
struct lw_fdpath {
	uint16_t len;                   /* bytes valid in data, no NUL; 0 = none */
	uint16_t reserved;
	char     data[LW_FDPATH_MAX];
};

struct lw_addr {
	uint16_t len;                   /* bytes valid in data; 0 = unknown */
	uint16_t reserved;
	uint8_t  data[LW_ADDR_MAX];     /* a struct sockaddr_* as the kernel returned it */
};

/* One file descriptor.  Index = fd number.  Every kind is recorded (see
 * enum lw_fd_kind); what a field means for a kind other than a socket is
 * said next to it. */
struct lw_handle {
	_Atomic uint32_t seq;
	uint16_t state;                 /* enum lw_handle_state */
	uint16_t origin;                /* enum lw_origin */
	uint16_t family;                /* AF_* (0 for other kinds) */
	uint16_t type;                  /* SOCK_* without SOCK_NONBLOCK/SOCK_CLOEXEC (0: other kinds) */
	union {
		int32_t protocol;       /* kind LW_FD_SOCKET */
		int32_t oflags;         /* other kinds: the flags the call was given (open's
					 * O_*; pipe2, eventfd, epoll_create1, ...: theirs) */
	};
	uint32_t stack_id;              /* where it was created (0 = unknown, e.g. inherited) */
	int32_t  tid;                   /* creating thread */
	uint64_t inode;                 /* st_ino from fstat(): matches /proc/PID/fd and sock_diag;
					 * 0 for sockets the hook saw made (socket, accept,
					 * socketpair: not asked, an fstat per call): readers take
					 * it from /proc/PID/fd while the process lives */
	uint64_t open_ns;
	uint64_t generation;            /* bumps on every open of this fd number */
	uint32_t connect_stack_id;      /* last successful/in-progress connect() */
	uint32_t last_use_stack_id;     /* most recent send-side call */
	uint64_t connect_ns;
	uint64_t last_use_ns;
	uint32_t close_stack_id;        /* state == CLOSED: who closed it */
	int32_t  close_tid;
	uint64_t close_ns;
	int32_t  dup_of;                /* origin DUP: the source fd; SCM_RIGHTS: -1 */
	uint16_t kind;                  /* enum lw_fd_kind (was reserved: 0 = socket) */
	uint16_t kflags;                /* LW_HK_* */
	/* The reader rule: kind == LW_FD_SOCKET reads local and peer; any
	 * other kind reads path (and never local/peer).  Layout 2 was not
	 * released before this union was made, so no version bump: a segment
	 * whose records are all sockets is byte for byte what it was. */
	union {
		struct {
			struct lw_addr local;   /* as bound (bind, socket: unbound), the listener's
						 * for an accepted socket (0.0.0.0:80 stays the
						 * wildcard); len 0 once connect() chose an unbound
						 * IP socket's address (not asked: sock_diag has it) */
			struct lw_addr peer;    /* as connect() was given it, or accept() returned */
		};
		struct lw_fdpath path;          /* kind != LW_FD_SOCKET */
	};
	uint64_t reserved[4];
};
_Static_assert(sizeof(struct lw_fdpath) == 2 * sizeof(struct lw_addr), "lw_fdpath overlays local+peer");
_Static_assert(sizeof(struct lw_handle) == 360, "lw_handle: the size of layout 2");

/* close() that failed with EBADF — a double close or a close of a stranger's fd. */
/*
 * lw_badclose.what: a close that failed with EBADF, or (Python processes)
 * a descriptor the program never closed but its garbage collector did: a
 * dropped socket or file object closed by its finalizer (CPython warns
 * with ResourceWarning).  stack_id is the close's stack (the finalizer
 * under the Python code that dropped the last reference), prev_open_* the
 * record's opening; prev_state is LW_H_OPEN.
 */
enum lw_badclose_what { LW_BADCLOSE_EBADF = 0, LW_BADCLOSE_GC = 1 };

struct lw_badclose {
	_Atomic uint32_t seq;
	int32_t  fd;
	int32_t  tid;
	uint32_t stack_id;              /* the failing close */
	uint64_t ns;
	uint16_t prev_state;            /* lw_handle_state of the fd at the time */
	uint16_t prev_origin;
	uint32_t prev_open_stack_id;    /* where that fd was last opened, if we saw it */
	uint32_t prev_close_stack_id;   /* where it was closed before, if we saw it */
	uint16_t what;                  /* enum lw_badclose_what (was reserved: 0 = a bad close) */
	uint16_t fd_kind;               /* LW_BADCLOSE_GC: enum lw_fd_kind of what was closed */
	uint64_t prev_open_ns;
	uint64_t prev_close_ns;
	uint64_t reserved[2];
};

/*
 * A live heap block.  The heap table is an open-addressed hash set keyed by
 * ptr (linear probing; the index function is the shim's business): ptr 0 is
 * an empty slot, LW_ALLOC_TOMBSTONE a deleted one, any other value a live
 * block.  Readers simply scan every slot with lw_seq_read() and keep those
 * with ptr > LW_ALLOC_TOMBSTONE (v2: of old, then cur; one per ptr).
 *
 * In LW_HEAP_SAMPLED mode only sampled blocks are here; hdr.sample_bytes is
 * the mean distance in bytes between samples (exponentially distributed), so
 * a block of size s was recorded with probability 1 - exp(-s / sample_bytes).
 * The per-stack heap_* totals in struct lw_stack are flushed from per-thread
 * batches and may lag the table by a few hundred events per thread.
 */
struct lw_alloc {
	_Atomic uint32_t seq;
	uint32_t stack_id;
	uint64_t ptr;                   /* 0 = free slot; LW_ALLOC_TOMBSTONE = deleted */
	uint64_t size;
	uint64_t ns;
};
#define LW_ALLOC_TOMBSTONE 1ull

_Static_assert(sizeof(struct lw_header) == LW_HEADER_SIZE, "lw_header must stay 8 KiB");
_Static_assert(sizeof(struct lw_table) == 24, "lw_table layout");
_Static_assert(sizeof(struct lw_stack) % 64 == 0, "lw_stack: whole cache lines");
_Static_assert(__builtin_offsetof(struct lw_stack, sock_opened) % 64 == 0,
	       "lw_stack counters on their own cache line");

_Static_assert(sizeof(struct lw_chunks) == 200, "lw_chunks layout");
_Static_assert(sizeof(struct lw_heapdir) == 64, "lw_heapdir layout");

/* lw_chunk_entries - entries in chunk k of a table with this shift. */
static inline uint64_t lw_chunk_entries(uint32_t shift, unsigned k)
{
	return 1ull << (shift + k);
}

/* lw_chunk_first - index of the first entry of chunk k. */
static inline uint64_t lw_chunk_first(uint32_t shift, unsigned k)
{
	return ((1ull << k) - 1) << shift;
}

/* lw_chunk_of - the chunk holding entry idx, and idx's position in it. */
static inline unsigned lw_chunk_of(uint32_t shift, uint64_t idx, uint64_t *within)
{
	unsigned k = 63u - (unsigned)__builtin_clzll((idx >> shift) + 1);
	*within = idx - lw_chunk_first(shift, k);
	return k;
}

/* lw_chunk_bytes - bytes a chunk occupies in the file (whole pages). */
static inline uint64_t lw_chunk_bytes(uint32_t shift, unsigned k, uint32_t entry_size)
{
	return (lw_chunk_entries(shift, k) * entry_size + 4095u) & ~4095ull;
}

/*
 * lw_start_ticks_match - is `ticks` (field 22 of /proc/PID/stat) the start
 * time of the process that wrote h?  Exact, unless the shim derived it from
 * CLOCK_BOOTTIME just after the fork (LW_HDR_START_TICKS_BOOTTIME): the
 * kernel's value is then the same or one tick earlier.
 */
static inline int lw_start_ticks_match(const struct lw_header *h, uint64_t ticks)
{
	if (h->flags & LW_HDR_START_TICKS_BOOTTIME)
		return ticks == h->proc_start_ticks || ticks + 1 == h->proc_start_ticks;
	return ticks == h->proc_start_ticks;
}

/*
 * lw_seq_read - copy one seqlock-protected slot consistently.
 * Returns 1 with `out` filled when a stable even sequence was seen around the
 * copy, 0 when the slot stayed busy for LW_READ_RETRIES attempts.  Never
 * writes to `slot` and never blocks.  `len` must not exceed the slot size.
 */
static inline int lw_seq_read(const void *slot, void *out, size_t len)
{
	const _Atomic uint32_t *seqp = (const _Atomic uint32_t *)slot;
	for (unsigned tries = 0; tries < LW_READ_RETRIES; tries++) {
		uint32_t s1 = atomic_load_explicit(seqp, memory_order_acquire);
		if (s1 & 1u)
			continue;
		memcpy(out, slot, len);
		atomic_thread_fence(memory_order_acquire);
		uint32_t s2 = atomic_load_explicit(seqp, memory_order_relaxed);
		if (s1 == s2)
			return 1;
	}
	return 0;
}

/*
 * The writer side of the same protocol.  Readers never call these.
 *
 * lw_seq_write_claim - multi-writer slot: make the even value `even` (read
 * by the caller from *seq) odd with a compare-and-swap.  Returns 1 when this
 * writer now owns the slot, 0 when `even` was odd or another writer got in
 * first (the caller retries a bounded number of times or drops its event).
 * The release fence orders the odd seq before the payload stores.
 */
static inline int lw_seq_write_claim(_Atomic uint32_t *seq, uint32_t even)
{
	if (even & 1u)
		return 0;
	if (!atomic_compare_exchange_strong_explicit(seq, &even, even + 1, memory_order_acquire,
						     memory_order_relaxed))
		return 0;
	atomic_thread_fence(memory_order_release);
	return 1;
}

/*
 * lw_seq_write_begin - single-writer slot: make seq odd and return that odd
 * value for lw_seq_write_end().  An odd seq left by a writer that never
 * finished (a copy abandoned by siglongjmp) stays odd until this write ends.
 */
static inline uint32_t lw_seq_write_begin(_Atomic uint32_t *seq)
{
	uint32_t odd = atomic_load_explicit(seq, memory_order_relaxed) | 1u;
	atomic_store_explicit(seq, odd, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	return odd;
}

/* lw_seq_write_end - publish the payload: seq = odd + 1 (release).  `odd` is
 * what lw_seq_write_begin returned, or claim's `even` + 1. */
static inline void lw_seq_write_end(_Atomic uint32_t *seq, uint32_t odd)
{
	atomic_store_explicit(seq, odd + 1, memory_order_release);
}

#endif /* LEAKWATCH_SEGMENT_H */
