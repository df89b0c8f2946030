/* SPDX-License-Identifier: MIT */
/*
 * reach.h — reachability of live heap blocks, as valgrind memcheck
 * classifies them (reach.c): definitely lost, indirectly lost, possibly
 * lost, still reachable.
 *
 * How.  From outside the process: every thread is stopped with ptrace
 * (PTRACE_SEIZE + PTRACE_INTERRUPT: no signal is sent, none is lost), the
 * segment's heap table is copied while nothing can change it, the roots —
 * every readable and writable mapping that is not the malloc heap, the
 * shim's segment or the shim's own memory; each thread's stack from its
 * stack pointer (less the 128-byte red zone) up; each thread's general
 * registers — are read through process_vm_readv (or /proc/PID/mem) and
 * scanned for aligned words that point into a recorded block, then the
 * blocks found are scanned in turn; then the threads are released.  Doing
 * it outside keeps the host's memory, stack and descriptors untouched and
 * stops the world with the kernel's help, which a library inside the
 * process cannot do safely; the price is ptrace permission (the same user
 * and Yama's ptrace_scope allowing it, or CAP_SYS_PTRACE).
 *
 * The classes follow mc_leakcheck.c: a block is still reachable when a
 * chain of start pointers leads to it from a root, possibly lost when only
 * chains with an interior pointer do, indirectly lost when only lost blocks
 * point to it, definitely lost when nothing does; among lost blocks that
 * point to each other (a lost tree, a cycle) the lowest-addressed one not
 * reached from another is the definitely lost "clique leader".  memcheck's
 * default heuristics (stdstring, length64, newarray, multipleinheritance)
 * turn an interior pointer into a reachable one where they match.
 *
 * Differences from memcheck, documented for users: memcheck ignores words
 * it knows are undefined (uninitialised stack slots, fresh malloc memory);
 * a conservative scan from outside cannot know, so a stale pointer can make
 * a lost block look reachable.  Blocks the shim did not record (sampled
 * mode; allocations before the shim started) are not scanned: in sampled
 * mode the classes are estimates.
 */
#ifndef LEAKWATCH_REACH_H
#define LEAKWATCH_REACH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum lw_reach {
	LW_REACH_UNKNOWN = 0,           /* not checked */
	LW_REACH_DEFINITE,              /* definitely lost */
	LW_REACH_INDIRECT,              /* indirectly lost */
	LW_REACH_POSSIBLE,              /* possibly lost */
	LW_REACH_REACHABLE,             /* still reachable */
	LW_REACH_NCLASS
};

/* Bits of a leak-kind set (1u << enum lw_reach). */
#define LW_REACH_BIT(c) (1u << (c))
#define LW_REACH_KINDS_DEFAULT (LW_REACH_BIT(LW_REACH_DEFINITE) | LW_REACH_BIT(LW_REACH_INDIRECT))
/* an explicitly empty set (--leak-kinds=none): a bit no class uses */
#define LW_REACH_KINDS_NONE LW_REACH_BIT(LW_REACH_UNKNOWN)
#define LW_REACH_KINDS_ALL                                                                       \
	(LW_REACH_BIT(LW_REACH_DEFINITE) | LW_REACH_BIT(LW_REACH_INDIRECT) |                         \
	 LW_REACH_BIT(LW_REACH_POSSIBLE) | LW_REACH_BIT(LW_REACH_REACHABLE))

/* One recorded block and its class. */
struct lw_reach_block {
	uint64_t ptr, size, ns;
	uint8_t cls;                    /* enum lw_reach */
	uint8_t heuristic;              /* reachable only through a heuristic (1..4), else 0 */
	uint8_t pad[6];
};

/* What the scan looked at. */
struct lw_reach_stats {
	uint64_t root_bytes;            /* bytes of roots scanned */
	uint64_t block_bytes;           /* bytes of blocks scanned */
	size_t nroots;                  /* root ranges */
	size_t threads;                 /* threads stopped (registers and stacks) */
	size_t unreadable;              /* ranges that could not be read (skipped) */
};

/* The result of one check of one process. */
struct lw_reach_result {
	pid_t pid;
	uint64_t image_ns;              /* the segment's start_monotonic_ns: which image (exec
	                                   keeps the pid and the start time) */
	int sampled;                    /* the segment was in sampled mode: estimates */
	struct lw_reach_block *blocks;  /* sorted by ptr */
	size_t nblocks;
	uint64_t pause_ns;              /* how long every thread was stopped */
	struct lw_reach_stats stats;
};

/* ---- the classification, on any memory (unit-testable) ---- */

/* A range of addresses [start, end). */
struct lw_reach_range {
	uint64_t start, end;
};

/*
 * Reads n remote ranges into n local buffers (process_vm_readv's shape).
 * Must fill every local buffer: bytes that cannot be read are zeroed and the
 * function returns how many ranges were (partly) unreadable, 0 when all
 * were read, -1 on a failure that should end the check.
 */
typedef long (*lw_reach_readv_fn)(void *ctx, const struct iovec *local, const struct iovec *remote,
				  size_t n);

/* memcheck's heuristics (valgrind --leak-check-heuristics), as bits */
#define LW_REACH_HEUR_STDSTRING  0x1u
#define LW_REACH_HEUR_LENGTH64   0x2u
#define LW_REACH_HEUR_NEWARRAY   0x4u
#define LW_REACH_HEUR_MULTIPLE   0x8u
#define LW_REACH_HEUR_ALL        0xfu

struct lw_reach_input {
	lw_reach_readv_fn readv;
	void *ctx;
	const struct lw_reach_range *roots;     /* memory to scan for pointers */
	size_t nroots;
	const uint64_t *words;                  /* register values: roots too */
	size_t nwords;
	const struct lw_reach_range *vtables;   /* read-only data of loaded objects (multiple-
	                                           inheritance heuristic); may be empty */
	size_t nvtables;
	unsigned heuristics;                    /* LW_REACH_HEUR_* */
	int glibc_chunks;                       /* the blocks are glibc malloc chunks: the word
	                                           before each is its size, and a pointer to
	                                           where a chunk ends is malloc's own (a bin or
	                                           the top pointing at the next chunk's header,
	                                           which overlaps the block's last bytes), not
	                                           an interior pointer of the program's */
};

/*
 * lw_reach_classify - set blocks[i].cls for n blocks sorted by ptr, with
 * no two overlapping, from the roots and registers of `in`.  Block contents
 * are read through in->readv.  Returns 0 (stats filled when st is not NULL),
 * or -1 with err set (no memory, or readv failed).
 */
int lw_reach_classify(struct lw_reach_block *blocks, size_t n, const struct lw_reach_input *in,
		      struct lw_reach_stats *st, char *err, size_t errlen);

/* ---- a live process ---- */

/*
 * lw_reach_check - stop every thread of pid, copy the segment at segpath
 * (the process's own), classify its live blocks, release the threads.
 * Returns 0 with r filled (free with lw_reach_free), or -1 with err set
 * (no ptrace permission, process gone, not a segment of pid, heap tracking
 * off, no memory).  The process is never left stopped: every thread
 * attached is detached, with any signal that arrived during the pause
 * delivered.  When the check reaped pid itself (it died while stopped and
 * is the caller's child), *reaped_status gets its wait status and
 * *reaped = 1; both may be NULL.
 */
int lw_reach_check(pid_t pid, const char *segpath, struct lw_reach_result *r, int *reaped,
		   int *reaped_status, char *err, size_t errlen);

/* lw_reach_free - release a result; safe on a zeroed one. */
void lw_reach_free(struct lw_reach_result *r);

/*
 * lw_reach_lookup - the class the check gave the block at ptr allocated at
 * ns (a block freed and allocated again at the same address since is not
 * the one checked: LW_REACH_UNKNOWN).  r may be NULL.
 */
enum lw_reach lw_reach_lookup(const struct lw_reach_result *r, uint64_t ptr, uint64_t ns);

/* lw_reach_name - "definite", "indirect", "possible", "reachable", "unknown" (JSON). */
const char *lw_reach_name(enum lw_reach c);

/* lw_reach_label - "definitely lost", ..., "still reachable", "not checked" (text). */
const char *lw_reach_label(enum lw_reach c);

/*
 * lw_reach_kinds_parse - a comma-separated list of definite, indirect,
 * possible, reachable, or "all" or "none" (valgrind's
 * --errors-for-leak-kinds), into LW_REACH_BIT()s.  Returns 0 or -1.
 */
int lw_reach_kinds_parse(const char *s, unsigned *mask);

#endif /* LEAKWATCH_REACH_H */
