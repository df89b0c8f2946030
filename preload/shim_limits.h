/* SPDX-License-Identifier: MIT */
/*
 * Every fixed limit of the shim, with the reason for its value.  (Not named
 * limits.h: the tests build with -Ipreload, where it would shadow <limits.h>.)
 *
 * Table capacities chosen by the user (fds, stacks, heap slots, stack depth)
 * are options (config.c); the ones here are not worth a knob.  A limit that
 * is hit is never an error: the event is dropped and counted in one of the
 * LW_CTR_DROP_* counters, or the shim takes its slower path.
 */
#ifndef LEAKWATCH_PRELOAD_LIMITS_H
#define LEAKWATCH_PRELOAD_LIMITS_H

/* ---- attach ------------------------------------------------------------------------ */

/* How often a stack capture of an attached shim looks for objects loaded
 * since (dl_iterate_phdr takes the loader's lock: not on every call). */
#define LW_LIM_ATTACH_RESCAN_NS (10ull * 1000 * 1000)

/* ---- segment layout ------------------------------------------------------------ */

/* Loaded objects recorded per image (append-only, unloaded ones kept; the
 * table grows in chunks of 32, 64, ...).  Real programs load tens to a few
 * hundred; a program that loads and unloads plugins forever stops here. */
#define LW_LIM_MODULES          65536u
/* Bad closes kept: a ring of LW_BADCLOSE_RING (segment.h), the newest win;
 * a program with more than that many double closes has one bug repeated,
 * not 960 different ones. */
#define LW_LIM_BADCLOSES        LW_BADCLOSE_RING
/* Waiting for the grow lock: another thread is reserving pages (a system
 * call of up to a few ms for a large heap table); spins, yielding the CPU
 * every 64, before the event is dropped (counted as busy). */
#define LW_LIM_GROW_SPINS       (1u << 20)
/* leakwatch.<pid>.<n> names tried when archiving an earlier image's segment. */
#define LW_LIM_ARCHIVE_NAMES    1000

/* The first heap table's slots, reserved with the segment: sampled mode
 * records few blocks; full mode grows from here (about 1.5x per step). */
#define LW_LIM_HEAP_FIRST_SAMPLED 256u
#define LW_LIM_HEAP_FIRST_FULL    4096u
/* Extents (heap tables) mapped at once: the current table and the one being
 * drained into it, with room to spare. */
#define LW_LIM_EXTENTS          8u
/* How long a directory scan of the budget (budget.c) is trusted, with the
 * bytes admitted since added to its sum. */
#define LW_LIM_BUDGET_RESCAN_NS (200ull * 1000 * 1000)

/* ---- seqlock writers: bounded waits, never a block --------------------------------- */

/* A handle slot is contended only by a close racing a dup2 onto the same
 * number: rare and short, so the writer may wait long before it drops. */
#define LW_LIM_HANDLE_SPINS     100000u
/* A heap slot is contended by a free racing a probe of another insert; it is
 * on the malloc/free hot path, so give up sooner (the insert probes on). */
#define LW_LIM_HEAP_SPINS       10000u
/* ...but a slot that an insert's probe path or a free must see finished
 * (heap.c: wait_even) may be held by a preempted thread: after a short
 * spin, the wait yields the CPU for up to this long before the event is
 * dropped (counted as busy). */
#define LW_LIM_HEAP_WAIT_NS     (50ull * 1000 * 1000)
/* Waiting for another thread to finish filling a stack slot (write-once);
 * after that the same stack may be stored twice, which the analyzer merges. */
#define LW_LIM_STACK_FILL_SPINS 4096u

/* ---- open-addressing probe limits ----------------------------------------------- */

/* Heap table: an insert that probes this many slots asks for a larger
 * table (at the 4/5 fill that triggers growth, linear probing rarely goes
 * this far); while one is coming it may probe up to PROBES_MAX, and a
 * lookup follows the longest run an insert used.  When the table cannot
 * grow, an insert stops at PROBES (dropped, counted) rather than slow
 * malloc down. */
#define LW_LIM_HEAP_PROBES      64u
#define LW_LIM_HEAP_PROBES_MAX  1024u
/* Slots a free reads behind the one it empties (to tell a needed tombstone
 * from one nobody's probe path crosses), and tombstones before it that it
 * turns back into empty slots. */
#define LW_LIM_HEAP_SCAN        64u
/* Stack table: probes per intern, on the slow path of a new stack only. */
#define LW_LIM_STACK_PROBES     128u

/* ---- heap batching and sampling ------------------------------------------------------ */

/* Per-thread batch of per-stack totals: slots (by stack id), and events
 * before the batch is flushed to the shared counters (keeps shared cache
 * lines off the hot path; totals lag by at most this much per thread). */
#define LW_LIM_HEAP_BATCH_SLOTS 16u
#define LW_LIM_HEAP_BATCH_FLUSH 256u
/* Recorded blocks between two checks of the loader's counters (dlopen()ed
 * objects must reach the module table); a check per 64K costs nothing. */
#define LW_LIM_HEAP_RESCAN      65536u
/* ---- heap table growth (heap.c) ------------------------------------------------------ */

/* (The first table's size, LW_LIM_HEAP_FIRST_*, above: tables never
 * shrink below it.) */
/* Tables up to this many slots (2 MiB) are kept sparse, 4 slots per live
 * block: short probe runs make malloc/free cheaper, and the memory is
 * small; larger ones hold 15/8 slots per block (60 bytes: the 64
 * per block from 100K blocks on). */
#define LW_LIM_HEAP_SPARSE      65536u
/* Migration into a new table: a thread's every MIG_EVERY-th heap call
 * moves MIG_STEP slots (tens of microseconds; blocking signals for it costs
 * about half a microsecond, so batches are not smaller).  The old table
 * drains after old capacity / 32 heap calls. */
#define LW_LIM_HEAP_MIG_STEP    1024u
#define LW_LIM_HEAP_MIG_EVERY   32u
/* A slot of the old table that stays locked this long (its thread stopped
 * inside an insert or free: a preempted one resumes within milliseconds)
 * is given up on (counted as busy); the migration waits for it until then. */
#define LW_LIM_HEAP_STUCK_NS    (2ull * 1000 * 1000 * 1000)
/* Replacements that do not grow the table (shrinking, rebuilding one full
 * of tombstones or with unlucky probe runs): each leaves an address range
 * of zero pages behind (see heap.c), so an image makes at most this many;
 * growths are bounded by LEAKWATCH_MAX_ALLOCS. */
#define LW_LIM_HEAP_REBUILDS    64u
/* An insert that found no room waits this long at most for the growth
 * another thread is making (reserving a large table takes a while). */
#define LW_LIM_HEAP_GROW_WAIT_NS (2ull * 1000 * 1000 * 1000)
/* After a refused growth (filesystem full, budget reached) the next try
 * waits this long; inserts that find no room meanwhile are dropped. */
#define LW_LIM_HEAP_RETRY_NS    (100ull * 1000 * 1000)
/* Per-thread live and fill count changes pushed to the shared counts in
 * batches of this size: the live cap and the growth trigger are exact to
 * within this much per thread. */
#define LW_LIM_HEAP_COUNT_FLUSH 32

/* The counting filter in front of the heap table in sampled mode (one byte
 * each, 16 KiB: stays in cache; a free of a never-sampled block reads it). */
#define LW_HEAP_FILTER_SIZE     (1u << 14)
/* Static arena for the allocations dlsym() makes before the real allocator
 * is known (a few hundred bytes in practice). */
#define LW_LIM_BOOT_ARENA       (64u * 1024u)

/* ---- stack capture -------------------------------------------------------------- */

/* Per-thread cache of recent stacks by hash (keeps the shared table off
 * the hot path) and the fully associative call-site cache (see stack.c). */
/* First-chunk sizes of the tables (entries = 1 << shift): what a process
 * that records little needs, about 100 KiB with the header. */
#define LW_LIM_SHIFT_STACKS     4u
#define LW_LIM_SHIFT_MODULES    5u
#define LW_LIM_SHIFT_HANDLES    4u
#define LW_LIM_SHIFT_BADCLOSES  4u
#define LW_LIM_TCACHE_SLOTS     64u
#define LW_LIM_SITE_SLOTS       8u
/* A thread with more than SITE_MISS_MAX call-site misses in SITE_WINDOW calls
 * has more hot chains than the cache holds: plain capture for SITE_COOLDOWN. */
#define LW_LIM_SITE_WINDOW      64u
#define LW_LIM_SITE_MISS_MAX    16u
#define LW_LIM_SITE_COOLDOWN    4096u
/* The per-thread side stack every unwind runs on: libgcc needs ~1.5 KiB
 * (4.5 on its first call), a signal handler nested in it gets the rest.
 * MAP_NORESERVE: only touched pages cost memory. */
#define LW_LIM_SIDE_GUARD       4096u
#define LW_LIM_SIDE_STACK       (256u * 1024u)
/* How much of the main thread's stack the call-site cache may re-read:
 * RLIMIT_STACK, capped at 1 GiB, or 8 MiB when unlimited. */
#define LW_LIM_MAIN_WINDOW_MAX  (1ull << 30)
#define LW_LIM_MAIN_WINDOW_INF  (8ull << 20)

/* ---- diagnostics -------------------------------------------------------------------- */

/* LEAKWATCH_LOG=1: at most this many messages per process (a broken setup
 * must not flood the host's stderr), each at most LOG_LINE bytes. */
#define LW_LIM_LOG_MESSAGES     32u
#define LW_LIM_LOG_LINE         512u

#endif /* LEAKWATCH_PRELOAD_LIMITS_H */
