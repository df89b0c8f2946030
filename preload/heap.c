/* SPDX-License-Identifier: MIT */
/*
 * Heap recording: the live-allocation hash set in the segment, its growth,
 * the sampling decision, and per-thread batching of the per-stack totals.
 *
 * The hot path is malloc/free, so:
 *  - no lock; each table slot has its own seqlock, claimed by CAS;
 *  - no shared counter is written per call: totals and the live and fill
 *    counts are batched per thread and flushed every few dozen events;
 *  - in sampled mode, free() of a block that was never sampled (nearly all
 *    of them) is answered by a small per-process counting filter that lives
 *    in cache, without touching the big table.
 *
 * The table.  Open addressing with linear probing over slots grouped in
 * runs of 16: a block's home is run R(ptr) = a scrambled hash of ptr >> 8
 * reduced to [0, runs) by a multiply (no power of two needed), slot
 * (ptr >> 4) & 15 within it, so the blocks of one 256-byte stretch share a
 * run without colliding.  The capacity is a multiple of 128 slots (whole
 * pages) sized from the live count when a table is made: 15/8 slots per
 * live block, and the table is replaced when its non-empty slots (live +
 * tombstones) reach 4/5 of it, so it holds 1.25..1.875 slots (40..60
 * bytes) per live block as it grows.  Tables of up to LW_LIM_HEAP_SPARSE
 * slots (2 MiB) get 4 slots per block and are replaced at 2/5: probe runs
 * stay short where that costs little memory.  A table shrinks again when
 * the live count falls below 1/4 of its slots (sparse: 1/8).
 *
 * Deletions.  A freed slot becomes empty instead of a tombstone when no
 * block behind it in the probe run has its home at or before it (the scan
 * reads a few slots), and tombstones directly before a new empty slot
 * become empty too.  Without that, churn at a steady live count can turn
 * every empty slot into a tombstone within about one pass over the table
 * (inserts land on empty homes, frees leave tombstones), and the table
 * would have to be rebuilt over and over.  The scan costs a free more than
 * anything else here (it reads the next slots, often another cache line),
 * so frees only do it while a table's tombstones exceed a share of it
 * (heap_check: "tidy"); many programs reuse freed addresses enough that it
 * stays off.  Making a slot empty can cut the probe path of
 * an insert that is claiming a slot behind it at the same moment, so an
 * insert that claimed a slot away from its home re-reads its path (waiting
 * out slots that are being written) and starts over if it finds an empty
 * one there: a deleter locks its slot before reading the slots behind it,
 * an inserter locks its slot before re-reading the ones before it, so one
 * of them always sees the other (the locked CAS orders the two).
 *
 * Growth (struct lw_heapdir in segment.h).  One thread at a time (the
 * growth lock, taken with every signal blocked) reserves a new table
 * (segment_extent_new: reserved before use, so a full filesystem refuses
 * it), publishes it as cur with the old one as old, and the old table is
 * then drained into the new one a batch at a time by the heap calls of all
 * threads (every LW_LIM_HEAP_MIG_EVERY-th call of a thread tries to move a
 * batch; a thread that finds the lock busy goes on).  Meanwhile:
 *  - inserts go to cur only; an insert re-checks after claiming its slot
 *    that its table is still cur, and otherwise gives the slot back and
 *    retries in the new one (a late insert into old behind the migration
 *    would be lost);
 *  - free looks in old first, then in cur (the record may be moving: a
 *    locked slot of old is waited for), and retries with the new tables
 *    when a growth happened under it;
 *  - the migration waits for each locked slot of old before moving it.
 * When old is drained, it is unnamed and retired: its pages go back to the
 * filesystem, and its range stays mapped as private zero pages, so a thread
 * still holding it (it read the directory before the change) reads empty
 * slots and nothing else.  Every replacement leaves such a mapping behind,
 * so replacements that do not grow (shrinking, rebuilding at the same size)
 * are limited per image (LW_LIM_HEAP_REBUILDS); growths are bounded by the
 * capacity limit.
 *
 * LEAKWATCH_MAX_ALLOCS caps the live count (approximately: within the
 * per-thread batches); inserts beyond it, and inserts that find no room
 * when the table cannot grow, are dropped and counted (LW_CTR_DROP_HEAP_FULL);
 * a refused growth also marks the heap incomplete.
 */
#include <sys/mman.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "shim.h"

#define BATCH_SLOTS  LW_LIM_HEAP_BATCH_SLOTS
#define BATCH_FLUSH  LW_LIM_HEAP_BATCH_FLUSH
#define TOMB         LW_ALLOC_TOMBSTONE
#define RUN          16u                /* slots per run */
#define CAP_ROUND    (4096u / sizeof(struct lw_alloc)) /* capacities are whole pages */
#define NTABS        8u                 /* descriptors, reused round robin */

_Static_assert(CAP_ROUND % RUN == 0, "capacity: whole runs");

SHIM_HIDDEN uint32_t g_heap_mode;
#define g_mode g_heap_mode
static uint64_t g_sample_bytes;

/* Counting filter over hash(ptr): nonzero means "maybe sampled".  Only
 * sampled inserts and their frees write it; every free reads one byte. */
SHIM_HIDDEN _Atomic uint8_t g_heap_filter[LW_HEAP_FILTER_SIZE];
#define g_filter g_heap_filter

/* ---- tables and the directory -------------------------------------------------------- */

/* What an operation needs of a table: fixed once the table is published. */
struct tab_ref {
	struct lw_alloc *slot;          /* NULL: no table */
	uint64_t cap;                   /* slots, a multiple of CAP_ROUND */
	uint64_t runs;                  /* cap / RUN */
	uint64_t seed;                  /* scrambles the run index */
	uint32_t gen;                   /* the heapdir gen it was published with */
	uint32_t idx;                   /* its descriptor in g_tabs */
};

/* A table's descriptor: the fixed part and the probe bound, read by every
 * call, and on a line of its own the fill count, which the threads' count
 * flushes write. */
struct tab_desc {
	struct tab_ref ref;
	uint64_t off;                   /* file offset of the table */
	_Atomic uint32_t maxd;          /* longest probe distance an insert used */
	_Atomic uint32_t tidy;          /* frees make slots empty where they can (see heap_check) */
	_Atomic int64_t fill __attribute__((aligned(64))); /* non-empty slots (batched) */
} __attribute__((aligned(64)));

static struct tab_desc g_tabs[NTABS];

/*
 * The shared state.  epoch and the indexes are read by every call (one
 * cache line, written only by a growth); the live count and the growth
 * lock have lines of their own.
 */
static struct {
	_Atomic uint32_t epoch;         /* bumps whenever cur or old changes: views go stale */
	_Atomic uint32_t seq;           /* seqlock over cur/old for view_refresh */
	_Atomic uint32_t cur_gen;       /* gen of cur: inserts re-check it after claiming */
	_Atomic uint32_t flags;         /* HF_* */
	_Atomic int cur, old;           /* descriptors; old -1: no migration */
	uint64_t max_live;              /* LEAKWATCH_MAX_ALLOCS */

	_Atomic int64_t live __attribute__((aligned(64))); /* recorded blocks (batched) */

	/* the growth side: written under lock */
	_Atomic int lock __attribute__((aligned(64)));
	_Atomic uint64_t cursor;        /* old's slots below this one have been moved */
	uint64_t cap_min, cap_max;
	uint64_t retry_ns;              /* a refused growth is tried again from here on */
	uint32_t rebuilds;              /* replacements that did not grow */
	uint64_t stuck_at;              /* migration: 1 + the slot that stayed locked */
	uint64_t stuck_since;           /* ...since then */
	uint64_t rng;
} g_heap;

#define HF_AT_CAP  1u                   /* live count at LEAKWATCH_MAX_ALLOCS */
#define HF_NO_GROW 2u                   /* the last growth was refused, or cap_max reached */

/* Per-thread state: zero-initialised TLS, initial-exec, no allocation. */
struct heap_batch_slot {
	uint32_t stack_id;
	uint32_t allocs;
	uint64_t bytes;
};
SHIM_HIDDEN __thread int64_t t_heap_until_sample __attribute__((tls_model("initial-exec")));
static __thread struct {
	uint64_t rng;                   /* xorshift state, 0 = not seeded */
	uint32_t pending;               /* events since the last flush */
	uint32_t registered;            /* thread-exit flush arranged */
	uint32_t since_rescan;          /* recorded blocks since the last module check */
	uint32_t mig_tick;              /* calls since this thread last moved a batch */
	uint64_t allocs, frees;         /* header counters not yet flushed */
	int32_t dlive, dfill;           /* live and fill counts not yet flushed */
	uint32_t fill_gen, fill_idx;    /* the table dfill belongs to */
	struct heap_batch_slot slot[BATCH_SLOTS];
} t_heap __attribute__((tls_model("initial-exec")));

/* This thread's copy of the directory, refreshed when the epoch moves.
 * Kept apart from t_heap: a fork child clears t_heap while a frame that
 * the fork interrupted may still be reading its view. */
struct heap_view {
	uint32_t epoch;
	struct tab_ref cur, old;        /* old.slot NULL: none */
};
static __thread struct heap_view t_view __attribute__((tls_model("initial-exec")));

static inline uint64_t slot_ptr(const struct lw_alloc *a)
{
	return __atomic_load_n(&a->ptr, __ATOMIC_RELAXED);
}

static inline uint64_t tab_next(const struct tab_ref *t, uint64_t i)
{
	return i + 1 == t->cap ? 0 : i + 1;
}

static inline uint64_t tab_prev(const struct tab_ref *t, uint64_t i)
{
	return i == 0 ? t->cap - 1 : i - 1;
}

/* tab_dist - probe distance from slot h forward to slot m. */
static inline uint64_t tab_dist(const struct tab_ref *t, uint64_t h, uint64_t m)
{
	return m >= h ? m - h : m + t->cap - h;
}

/* tab_home - the slot a block's probe run starts at (see the top comment). */
static inline uint64_t tab_home(const struct tab_ref *t, uint64_t p)
{
	uint64_t h = ((p >> 8) ^ t->seed) * 0x9e3779b97f4a7c15ull;
	uint64_t run = (uint64_t)(((unsigned __int128)h * t->runs) >> 64);
	return run * RUN + ((p >> 4) & (RUN - 1));
}

/* The longest probe run an operation follows: a little under the table. */
static inline unsigned tab_limit(const struct tab_ref *t, unsigned want)
{
	return t->cap / 2 < want ? (unsigned)(t->cap / 2) : want;
}

/*
 * After a slot claim (a locked CAS), the loads that follow must not be
 * satisfied before it: the claim is a full barrier on x86; elsewhere a
 * fence makes it one.
 */
static inline void storeload_fence(void)
{
#if defined(__x86_64__) || defined(__i386__)
	atomic_signal_fence(memory_order_seq_cst);
#else
	atomic_thread_fence(memory_order_seq_cst);
#endif
}

/*
 * wait_even - wait until a slot's seq is even (its writer is done).  The
 * writer may be a thread that was preempted while holding it (more threads
 * than CPUs, a loaded machine): after a short spin the wait yields, for up
 * to LW_LIM_HEAP_WAIT_NS.  0 when it stayed odd.
 */
static int wait_even(const _Atomic uint32_t *seq)
{
	uint64_t deadline = 0;
	for (unsigned i = 0;; i++) {
		if (!(atomic_load_explicit(seq, memory_order_acquire) & 1u))
			return 1;
		if (i < 256) {
			shim_cpu_relax();
			continue;
		}
		uint64_t now = prim_coarse_ns();
		if (!deadline)
			deadline = now + LW_LIM_HEAP_WAIT_NS;
		else if (now > deadline)
			return 0;
		prim_sched_yield();
	}
}

/* lock_wait - seq_lock(), waiting (as wait_even) while another writer holds the slot. */
static int lock_wait(_Atomic uint32_t *seq, uint32_t *s)
{
	for (unsigned i = 0; i < 64; i++) {
		if (seq_lock(seq, s))
			return 1;
		if (!wait_even(seq))
			return 0;
	}
	return 0;
}

/* view_refresh - copy the directory into t_view (consistent under g_heap.seq).
 * NULL when a growth kept it busy (never for long: it is a few stores). */
static const struct heap_view *view_refresh(void)
{
	for (unsigned tries = 0; tries < LW_LIM_HEAP_SPINS; tries++) {
		uint32_t s1 = atomic_load_explicit(&g_heap.seq, memory_order_acquire);
		if (s1 & 1u) {
			(void)wait_even(&g_heap.seq);
			continue;
		}
		uint32_t e = atomic_load_explicit(&g_heap.epoch, memory_order_relaxed);
		int c = atomic_load_explicit(&g_heap.cur, memory_order_relaxed);
		int o = atomic_load_explicit(&g_heap.old, memory_order_relaxed);
		struct tab_ref cur = g_tabs[c & (NTABS - 1)].ref, old = { 0 };
		if (o >= 0)
			old = g_tabs[o & (NTABS - 1)].ref;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&g_heap.seq, memory_order_relaxed) != s1)
			continue;
		t_view.cur = cur;
		t_view.old = old;
		t_view.epoch = e;
		return &t_view;
	}
	return NULL;
}

static inline const struct heap_view *view_get(void)
{
	uint32_t e = atomic_load_explicit(&g_heap.epoch, memory_order_acquire);
	if (__builtin_expect(t_view.epoch == e, 1))
		return &t_view;
	return view_refresh();
}

/* ---- per-thread batching of totals and counts -------------------------------------------------- */

/* Per-thread totals are batched; a thread that ends flushes its batch
 * through this key's destructor, set on the thread's first recorded block. */
static pthread_key_t g_thread_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

static void heap_check(void);

/* counts_flush - push this thread's live and fill deltas (a fill delta of
 * a table that was replaced meanwhile is dropped with it). */
static void counts_flush(void)
{
	if (t_heap.dlive) {
		int64_t live = atomic_fetch_add_explicit(&g_heap.live, t_heap.dlive, memory_order_relaxed) +
			       t_heap.dlive;
		uint32_t f = atomic_load_explicit(&g_heap.flags, memory_order_relaxed);
		if ((live >= (int64_t)g_heap.max_live) != !!(f & HF_AT_CAP)) {
			if (live >= (int64_t)g_heap.max_live)
				atomic_fetch_or_explicit(&g_heap.flags, HF_AT_CAP, memory_order_relaxed);
			else
				atomic_fetch_and_explicit(&g_heap.flags, ~HF_AT_CAP, memory_order_relaxed);
		}
	}
	if (t_heap.dfill) {
		struct tab_desc *d = &g_tabs[t_heap.fill_idx & (NTABS - 1)];
		if (d->ref.gen == t_heap.fill_gen)
			atomic_fetch_add_explicit(&d->fill, t_heap.dfill, memory_order_relaxed);
	}
	t_heap.dlive = t_heap.dfill = 0;
}

static inline void counts_add(int dlive, int dfill, const struct tab_ref *t)
{
	if (dfill && (t_heap.fill_gen != t->gen || t_heap.fill_idx != t->idx)) {
		counts_flush();
		t_heap.fill_gen = t->gen;
		t_heap.fill_idx = t->idx;
	}
	t_heap.dlive += dlive;
	t_heap.dfill += dfill;
	const int32_t n = LW_LIM_HEAP_COUNT_FLUSH;
	if (__builtin_expect(t_heap.dlive >= n || t_heap.dlive <= -n || t_heap.dfill >= n ||
				     t_heap.dfill <= -n,
			     0)) {
		counts_flush();
		heap_check();
	}
}

static void batch_flush(void)
{
	struct lw_header *hdr = g_seg.hdr;
	if (!hdr)
		return;
	for (unsigned i = 0; i < BATCH_SLOTS; i++) {
		struct heap_batch_slot *b = &t_heap.slot[i];
		struct lw_stack *s = b->allocs ? stack_slot(b->stack_id) : NULL;
		if (s) {
			atomic_fetch_add_explicit(&s->heap_allocs, b->allocs, memory_order_relaxed);
			atomic_fetch_add_explicit(&s->heap_bytes, b->bytes, memory_order_relaxed);
		}
		b->allocs = 0;
		b->bytes = 0;
	}
	if (t_heap.allocs)
		segment_counter_add(LW_CTR_HEAP_ALLOCS, t_heap.allocs);
	if (t_heap.frees)
		segment_counter_add(LW_CTR_HEAP_FREES, t_heap.frees);
	t_heap.allocs = t_heap.frees = 0;
	t_heap.pending = 0;
	counts_flush();
}

void heap_thread_flush(void)
{
	if (g_mode != LW_HEAP_OFF)
		batch_flush();
}

static void thread_exit(void *arg)
{
	(void)arg;
	int saved = errno;
	guard_set();
	heap_thread_flush();
	guard_clear();
	errno = saved;
}

static void key_create(void)
{
	pthread_key_create(&g_thread_key, thread_exit);
}

static void batch_add(uint32_t stack_id, uint64_t size)
{
	struct heap_batch_slot *b = &t_heap.slot[stack_id % BATCH_SLOTS];
	if (b->stack_id != stack_id) {
		struct lw_stack *s = b->allocs ? stack_slot(b->stack_id) : NULL;
		if (s) {
			atomic_fetch_add_explicit(&s->heap_allocs, b->allocs, memory_order_relaxed);
			atomic_fetch_add_explicit(&s->heap_bytes, b->bytes, memory_order_relaxed);
		}
		b->stack_id = stack_id;
		b->allocs = 0;
		b->bytes = 0;
	}
	b->allocs++;
	b->bytes += size;
	t_heap.allocs++;
	if (__builtin_expect(!t_heap.registered, 0)) {
		t_heap.registered = 1;
		pthread_setspecific(g_thread_key, (void *)1);
	}
	/* dlopen()ed objects must reach the module table for their frames to be
	 * symbolized (shim_limits.h) */
	if (__builtin_expect(++t_heap.since_rescan >= LW_LIM_HEAP_RESCAN, 0)) {
		t_heap.since_rescan = 0;
		modules_refresh();
	}
	if (++t_heap.pending >= BATCH_FLUSH)
		batch_flush();
}

/* Counting filter bytes saturate at 255 and then stay there: a wrapped
 * count would say "never sampled" for blocks that were. */
static void filter_inc(_Atomic uint8_t *f)
{
	uint8_t v = atomic_load_explicit(f, memory_order_relaxed);
	while (v != 255 && !atomic_compare_exchange_weak_explicit(f, &v, (uint8_t)(v + 1),
								 memory_order_relaxed, memory_order_relaxed))
		;
}

static void filter_dec(_Atomic uint8_t *f)
{
	uint8_t v = atomic_load_explicit(f, memory_order_relaxed);
	while (v != 0 && v != 255 &&
	       !atomic_compare_exchange_weak_explicit(f, &v, (uint8_t)(v - 1), memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* ---- one table: insert, remove ------------------------------------------------------------------- */

/* A record's payload. */
struct rec {
	uint64_t size, ns;
	uint32_t stack;
};

enum ins_result {
	INS_NEW,                        /* stored in an empty or deleted slot */
	INS_REPLACED,                   /* the same address was still recorded: replaced */
	INS_KEPT,                       /* migration: cur already held the address; kept cur's */
	INS_MOVED,                      /* the table stopped being cur: retry in the new one */
	INS_FULL,                       /* no free slot within the probe limit */
	INS_BUSY,                       /* the probe path kept changing under us */
};

/* path_ok - every slot of the probe path [h, h + d) is non-empty, waiting
 * out slots that are being written (a deleter may be making one empty). */
static int path_ok(const struct tab_ref *t, uint64_t h, unsigned d)
{
	uint64_t m = h;
	for (unsigned k = 0; k < d; k++, m = tab_next(t, m)) {
		const struct lw_alloc *a = &t->slot[m];
		if (!wait_even(&a->seq) || slot_ptr(a) == 0)
			return 0;
	}
	return 1;
}

/*
 * tab_insert - store p's record in t, probing at most `limit` slots from its
 * home.  *dist gets the probe distance, *was_empty whether the slot had been
 * empty (the fill count grows).  `migrating`: a move from old, which keeps
 * a record cur already has for p.
 */
static int tab_insert(const struct tab_ref *t, uint64_t p, const struct rec *r, int migrating,
		      unsigned limit, unsigned *dist, int *was_empty)
{
	struct tab_desc *desc = &g_tabs[t->idx & (NTABS - 1)];
	uint64_t h = tab_home(t, p);
	limit = tab_limit(t, limit);
	for (unsigned restart = 0; restart < 8; restart++) {
		uint64_t i = h;
		unsigned d;
		for (d = 0; d < limit; d++, i = tab_next(t, i)) {
			struct lw_alloc *a = &t->slot[i];
			uint64_t q = slot_ptr(a);
			/* the same address still recorded means its free was missed (a
			 * busy slot, a signal): that record is stale, this one replaces it */
			if (q > TOMB && q != p)
				continue;
			uint32_t s;
			/* a slot being written is skipped: if it was on our path and
			 * becomes empty, path_ok sees it */
			if (!seq_lock(&a->seq, &s))
				continue;
			q = slot_ptr(a);
			if (q > TOMB && q != p) { /* another thread took it */
				seq_unlock(&a->seq, s);
				continue;
			}
			storeload_fence();
			if (d) {
				/* lookups follow runs this long from now on: raised
				 * before the record is written (a free of it comes
				 * after this insert returns) */
				uint32_t md = atomic_load_explicit(&desc->maxd, memory_order_relaxed);
				while (d > md && !atomic_compare_exchange_weak_explicit(&desc->maxd, &md, d,
										       memory_order_seq_cst,
										       memory_order_relaxed))
					;
				if (!path_ok(t, h, d)) {
					seq_unlock(&a->seq, s);
					break; /* start over from the home slot */
				}
			}
			if (atomic_load_explicit(&g_heap.cur_gen, memory_order_relaxed) != t->gen) {
				seq_unlock(&a->seq, s);
				return INS_MOVED;
			}
			if (q == p && migrating) {
				seq_unlock(&a->seq, s);
				return INS_KEPT;
			}
			a->stack_id = r->stack;
			a->size = r->size;
			a->ns = r->ns;
			__atomic_store_n(&a->ptr, p, __ATOMIC_RELAXED);
			seq_unlock(&a->seq, s);
			*dist = d;
			*was_empty = q == 0;
			return q == p ? INS_REPLACED : INS_NEW;
		}
		if (d >= limit)
			return INS_FULL;
	}
	return INS_BUSY;
}

/*
 * empty_ok - may slot i of t (locked by us, its block being removed) become
 * empty?  Only when an empty slot follows within a few slots and no block
 * in between has its home at or before i (its probe path crosses i).  A
 * slot being written counts as such a block.
 */
static int empty_ok(const struct tab_ref *t, uint64_t i)
{
	uint64_t m = i;
	unsigned scan = tab_limit(t, LW_LIM_HEAP_SCAN);
	for (unsigned k = 1; k <= scan; k++) {
		m = tab_next(t, m);
		const struct lw_alloc *a = &t->slot[m];
		if (atomic_load_explicit(&a->seq, memory_order_acquire) & 1u)
			return 0;
		uint64_t q = slot_ptr(a);
		if (q == 0)
			return 1;
		if (q != TOMB && tab_dist(t, tab_home(t, q), m) >= k)
			return 0;
	}
	return 0;
}

/* cascade - slot i just became empty: deleted slots right before it are no
 * longer on anyone's probe path; make them empty too.  Returns how many. */
static int cascade(const struct tab_ref *t, uint64_t i)
{
	int n = 0;
	unsigned scan = tab_limit(t, LW_LIM_HEAP_SCAN);
	for (unsigned k = 0; k < scan; k++) {
		uint64_t j = tab_prev(t, i);
		struct lw_alloc *a = &t->slot[j];
		uint32_t s;
		if (slot_ptr(a) != TOMB || !seq_lock(&a->seq, &s))
			break;
		int ok = slot_ptr(a) == TOMB;
		if (ok) {
			storeload_fence();
			const struct lw_alloc *b = &t->slot[i];
			ok = !(atomic_load_explicit(&b->seq, memory_order_acquire) & 1u) && slot_ptr(b) == 0;
		}
		if (ok)
			__atomic_store_n(&a->ptr, 0, __ATOMIC_RELAXED);
		seq_unlock(&a->seq, s);
		if (!ok)
			break;
		n++;
		i = j;
	}
	return n;
}

enum rm_result { RM_ABSENT, RM_FOUND, RM_BUSY };

/*
 * tab_remove - remove p's record from t into *out.  In old (`is_old`),
 * slots below the migration cursor hold nothing any more and are skipped,
 * a removed slot always becomes a tombstone (old only drains), and a
 * locked slot holding p is waited for: it may be moving to cur, and then p
 * is not here any more (RM_ABSENT).  *emptied gets the slots that became
 * empty (cur's fill count shrinks).
 */
static inline int tab_remove(const struct tab_ref *t, uint64_t p, int is_old, struct rec *out, int *emptied)
{
	uint64_t h = tab_home(t, p), i = h;
	unsigned lim = atomic_load_explicit(&g_tabs[t->idx & (NTABS - 1)].maxd, memory_order_acquire) + 1;
	uint64_t cursor = is_old ? atomic_load_explicit(&g_heap.cursor, memory_order_acquire) : 0;
	if (lim > t->cap)
		lim = (unsigned)t->cap;
	for (unsigned d = 0; d < lim; d++, i = tab_next(t, i)) {
		if (i < cursor)
			continue;
		struct lw_alloc *a = &t->slot[i];
		uint64_t q = slot_ptr(a);
		if (q == 0)
			return RM_ABSENT;
		if (q != p)
			continue;
		uint32_t s;
		if (!lock_wait(&a->seq, &s))
			return RM_BUSY;
		if (slot_ptr(a) != p) { /* moved to cur, or freed by another thread */
			seq_unlock(&a->seq, s);
			return RM_ABSENT;
		}
		out->stack = a->stack_id;
		out->size = a->size;
		out->ns = a->ns;
		int empty = 0;
		if (!is_old && atomic_load_explicit(&g_tabs[t->idx & (NTABS - 1)].tidy, memory_order_relaxed)) {
			storeload_fence();
			empty = empty_ok(t, i);
		}
		__atomic_store_n(&a->ptr, empty ? 0 : TOMB, __ATOMIC_RELAXED);
		seq_unlock(&a->seq, s);
		*emptied = empty ? 1 + cascade(t, i) : 0;
		return RM_FOUND;
	}
	return RM_ABSENT;
}

/* ---- growth and migration -------------------------------------------------------------------------- */

static uint64_t cap_round(uint64_t n)
{
	return (n + CAP_ROUND - 1) / CAP_ROUND * CAP_ROUND;
}

static uint64_t heap_rng(void)
{
	uint64_t x = g_heap.rng ? g_heap.rng : prim_now_ns() ^ 0x2545f4914f6cdd1dull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return g_heap.rng = x;
}

/* The growth lock, always taken with every signal blocked: a handler can
 * neither interrupt a growth or a migration batch, nor leave it with
 * siglongjmp, nor fork in the middle of one (a fork child starts over in
 * heap_init). */
static int grow_trylock(void)
{
	int z = 0;
	return atomic_compare_exchange_strong_explicit(&g_heap.lock, &z, 1, memory_order_acquire,
						       memory_order_relaxed);
}

static int grow_lock_wait(void)
{
	for (unsigned i = 0; i < LW_LIM_GROW_SPINS; i++) {
		if (atomic_load_explicit(&g_heap.lock, memory_order_relaxed) == 0 && grow_trylock())
			return 1;
		if (i % 64 == 63)
			prim_sched_yield(); /* the holder is reserving pages or draining */
		else
			shim_cpu_relax();
	}
	return 0;
}

/* grow_lock_wait_for - the growth lock, or 0 as soon as cur is no longer
 * the table of generation gen (another thread's growth made room), or
 * after LW_LIM_HEAP_GROW_WAIT_NS (the holder is stopped). */
static int grow_lock_wait_for(uint32_t gen)
{
	uint64_t deadline = 0;
	for (unsigned i = 0;; i++) {
		if (atomic_load_explicit(&g_heap.lock, memory_order_relaxed) == 0 && grow_trylock())
			return 1;
		if (atomic_load_explicit(&g_heap.cur_gen, memory_order_relaxed) != gen)
			return 0;
		if (i % 64 != 63) {
			shim_cpu_relax();
			continue;
		}
		prim_sched_yield(); /* the holder is reserving pages or draining */
		uint64_t now = prim_coarse_ns();
		if (!deadline)
			deadline = now + LW_LIM_HEAP_GROW_WAIT_NS;
		else if (now > deadline)
			return 0;
	}
}

static void grow_unlock(void)
{
	atomic_store_explicit(&g_heap.lock, 0, memory_order_release);
}

/* dir_begin / dir_end - the private directory's writer (growth lock held). */
static void dir_begin(void)
{
	atomic_store_explicit(&g_heap.seq, atomic_load_explicit(&g_heap.seq, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void dir_end(void)
{
	atomic_fetch_add_explicit(&g_heap.epoch, 1, memory_order_release);
	atomic_store_explicit(&g_heap.seq, atomic_load_explicit(&g_heap.seq, memory_order_relaxed) + 1,
			      memory_order_release);
	/* a growth's later loads of table slots must not pass these stores
	 * (inserts re-check cur_gen after claiming a slot) */
	atomic_thread_fence(memory_order_seq_cst);
}

/* hdir_publish - the segment's heap directory (one writer: the growth lock
 * holder, or heap_init before recording starts).  Readers copy it with
 * lw_seq_read. */
static void hdir_publish(const struct tab_desc *cur, const struct tab_desc *old)
{
	struct lw_header *hdr = g_seg.hdr;
	struct lw_heapdir *hd = &hdr->heapdir;
	uint32_t s = lw_seq_write_begin(&hd->seq);
	hd->cur_off = cur->off;
	hd->cur_cap = cur->ref.cap;
	hd->old_off = old ? old->off : 0;
	hd->old_cap = old ? old->ref.cap : 0;
	hd->gen = cur->ref.gen;
	lw_seq_write_end(&hd->seq, s);
	hdr->heap.capacity = (uint32_t)cur->ref.cap;
}

/*
 * move_slot - migrate slot i of old into cur (growth lock held).  Returns 1
 * when done with it, 0 when it stayed locked by another thread (an insert
 * or free in progress there; try again later).
 */
static int move_slot(struct tab_desc *old, struct tab_desc *cur, uint64_t i, int *fill)
{
	struct lw_alloc *a = &old->ref.slot[i];
	for (unsigned tries = 0; tries < 4; tries++) {
		uint32_t s;
		if (!wait_even(&a->seq))
			return 0;
		uint64_t q = slot_ptr(a);
		if (q <= TOMB)
			return 1; /* a late insert that claims it now sees the new cur_gen */
		if (!seq_lock(&a->seq, &s))
			continue;
		q = slot_ptr(a);
		if (q <= TOMB) {
			seq_unlock(&a->seq, s);
			return 1;
		}
		struct rec r = { a->size, a->ns, a->stack_id };
		unsigned d;
		int was_empty = 0;
		int res = tab_insert(&cur->ref, q, &r, 1, LW_LIM_HEAP_PROBES_MAX, &d, &was_empty);
		if (res == INS_NEW) {
			*fill += was_empty;
		} else if (res == INS_KEPT) {
			/* cur has a newer record of the address: this one's free was
			 * missed (the filter counted both records) */
			atomic_fetch_sub_explicit(&g_heap.live, 1, memory_order_relaxed);
			if (g_mode == LW_HEAP_SAMPLED)
				filter_dec(&g_filter[heap_filter_index(q)]);
		} else {
			/* no room (a table sized for all live blocks: only under a
			 * pathological address pattern) or a path that kept
			 * changing: the record stays here, tried again later */
			seq_unlock(&a->seq, s);
			return 0;
		}
		__atomic_store_n(&a->ptr, TOMB, __ATOMIC_RELAXED);
		seq_unlock(&a->seq, s);
		return 1;
	}
	return 0;
}

/* migrate_finish - old is drained: unname it, then give its pages back. */
static void migrate_finish(void)
{
	int o = atomic_load_explicit(&g_heap.old, memory_order_relaxed);
	struct tab_desc *old = &g_tabs[o], *cur = &g_tabs[atomic_load_explicit(&g_heap.cur, memory_order_relaxed)];
	hdir_publish(cur, NULL);
	dir_begin();
	atomic_store_explicit(&g_heap.old, -1, memory_order_relaxed);
	atomic_store_explicit(&g_heap.cursor, 0, memory_order_relaxed);
	dir_end();
	segment_extent_retire(old->ref.slot, old->off, old->ref.cap * sizeof(struct lw_alloc));
}

/*
 * migrate_run - move up to `n` slots of old into cur from the cursor on
 * (growth lock held, signals blocked); finishes the migration when old is
 * drained.  A slot that stays locked ends a batch (`drain`: is waited for,
 * yielding); one that stays locked for LW_LIM_HEAP_STUCK_NS (its thread
 * stopped in the middle of an insert or free) is given up on, counted as
 * busy.
 */
static void migrate_run(uint64_t n, int drain)
{
	int o = atomic_load_explicit(&g_heap.old, memory_order_relaxed);
	if (o < 0)
		return;
	struct tab_desc *old = &g_tabs[o], *cur = &g_tabs[atomic_load_explicit(&g_heap.cur, memory_order_relaxed)];
	uint64_t c = atomic_load_explicit(&g_heap.cursor, memory_order_relaxed);
	uint64_t end = n >= old->ref.cap - c ? old->ref.cap : c + n;
	int fill = 0;
	while (c < end) {
		if (!move_slot(old, cur, c, &fill)) {
			uint64_t now = prim_coarse_ns();
			if (g_heap.stuck_at != c + 1) {
				g_heap.stuck_at = c + 1;
				g_heap.stuck_since = now;
			}
			if (now - g_heap.stuck_since < LW_LIM_HEAP_STUCK_NS) {
				if (!drain)
					break;
				prim_sched_yield();
				continue;
			}
			/* its record (if it gets one) goes with old */
			segment_counter_add(LW_CTR_DROP_BUSY, 1);
		}
		c++;
		if (c % 64 == 0)
			atomic_store_explicit(&g_heap.cursor, c, memory_order_release);
	}
	atomic_store_explicit(&g_heap.cursor, c, memory_order_release);
	if (fill)
		atomic_fetch_add_explicit(&cur->fill, fill, memory_order_relaxed);
	if (c == old->ref.cap)
		migrate_finish();
}

/* migrate_some - a heap call's share of the migration: one batch, unless
 * another thread is at it. */
static void migrate_some(void)
{
	if (atomic_load_explicit(&g_heap.lock, memory_order_relaxed))
		return;
	sigset_t ss;
	shim_signals_block(&ss);
	if (grow_trylock()) {
		migrate_run(LW_LIM_HEAP_MIG_STEP, 0);
		grow_unlock();
	}
	shim_signals_restore(&ss);
}

/*
 * migrate_tick - a heap call during a migration.  Every MIG_EVERY-th call
 * of a thread moves a batch, unless another thread is at it.  But when the
 * live count nears what cur was sized for (the thread that holds the lock
 * was preempted, or many threads insert faster than batches move), an
 * insert waits for the lock and finishes the migration itself: cur must
 * keep room for what old still holds.
 */
/* migrate_all - finish the migration in progress, under the heap's grow
 * lock with every signal blocked (waits for the lock). */
static void migrate_all(void)
{
	sigset_t ss;
	shim_signals_block(&ss);
	if (grow_lock_wait()) {
		migrate_run(UINT64_MAX, 1);
		grow_unlock();
	}
	shim_signals_restore(&ss);
}

static void __attribute__((noinline)) migrate_tick(const struct heap_view *v, int insert)
{
	if (insert && (uint64_t)atomic_load_explicit(&g_heap.live, memory_order_relaxed) * 4 >= v->cur.cap * 3) {
		migrate_all();
		return;
	}
	if (++t_heap.mig_tick >= LW_LIM_HEAP_MIG_EVERY) {
		t_heap.mig_tick = 0;
		migrate_some();
	}
}

static inline void op_tick(const struct heap_view *v, int insert)
{
	if (__builtin_expect(v->old.slot != NULL, 0))
		migrate_tick(v, insert);
}

/* replace - publish a new table of `cap` slots as cur, the present one as
 * old (growth lock held, no migration in progress).  0, or -1 when the
 * space was refused (counted; the present table goes on). */
static int replace(uint64_t cap)
{
	int c = atomic_load_explicit(&g_heap.cur, memory_order_relaxed);
	struct tab_desc *cur = &g_tabs[c];
	uint64_t off;
	/* a refusal is counted in LW_CTR_DROP_RESERVE; a grow lock that stayed
	 * busy (another table reserving a large chunk) is not one */
	uint64_t refused = atomic_load_explicit(&g_seg.hdr->counters[LW_CTR_DROP_RESERVE], memory_order_relaxed);
	struct lw_alloc *slots = segment_extent_new(cap * sizeof(struct lw_alloc), &off);
	if (!slots) {
		int full = atomic_load_explicit(&g_seg.hdr->counters[LW_CTR_DROP_RESERVE], memory_order_relaxed) !=
			   refused;
		if (full)
			segment_mark_incomplete(LW_INCOMPLETE_HEAP);
		atomic_fetch_or_explicit(&g_heap.flags, HF_NO_GROW, memory_order_relaxed);
		g_heap.retry_ns = prim_coarse_ns() + (full ? LW_LIM_HEAP_RETRY_NS : LW_LIM_HEAP_RETRY_NS / 16);
		if (full)
			shim_log("heap table: no room for %lu slots; blocks beyond the present %lu are dropped",
				 (unsigned long)cap, (unsigned long)cur->ref.cap);
		return -1;
	}
	atomic_fetch_and_explicit(&g_heap.flags, ~HF_NO_GROW, memory_order_relaxed);
	int n = (c + 1) & (int)(NTABS - 1);
	struct tab_desc *nt = &g_tabs[n];
	nt->ref.slot = slots;
	nt->ref.cap = cap;
	nt->ref.runs = cap / RUN;
	nt->ref.seed = heap_rng();
	nt->ref.gen = cur->ref.gen + 1;
	nt->ref.idx = (uint32_t)n;
	nt->off = off;
	atomic_store_explicit(&nt->maxd, 0, memory_order_relaxed);
	atomic_store_explicit(&nt->tidy, 0, memory_order_relaxed);
	atomic_store_explicit(&nt->fill, 0, memory_order_relaxed);
	/* readers first (they read old, then cur: every block is in one of
	 * them from now on), then our own threads, then the migration */
	hdir_publish(nt, cur);
	dir_begin();
	atomic_store_explicit(&g_heap.old, c, memory_order_relaxed);
	atomic_store_explicit(&g_heap.cur, n, memory_order_relaxed);
	atomic_store_explicit(&g_heap.cursor, 0, memory_order_relaxed);
	atomic_store_explicit(&g_heap.cur_gen, nt->ref.gen, memory_order_relaxed);
	dir_end();
	if (cap > cur->ref.cap)
		segment_counter_add(LW_CTR_HEAP_GROWS, 1);
	else
		g_heap.rebuilds++;
	return 0;
}

enum grow_why {
	WHY_FILL,                       /* live + tombstones reached 4/5 of the slots */
	WHY_SHRINK,                     /* live fell below 1/4 of the slots (sparse: 1/8) */
	WHY_PROBES,                     /* an insert probed LW_LIM_HEAP_PROBES slots */
	WHY_FULL,                       /* an insert found no slot: must grow before it retries */
};

/* slots_for - the capacity for `live` blocks (see the top comment). */
static uint64_t slots_for(uint64_t live)
{
	uint64_t want = live * 4 + RUN;
	if (want > LW_LIM_HEAP_SPARSE)
		want = live * 15 / 8 + RUN;
	want = cap_round(want);
	if (want < g_heap.cap_min)
		want = g_heap.cap_min;
	return want < g_heap.cap_max ? want : g_heap.cap_max;
}

/* fill_high - is a table of cap slots with `fill` non-empty ones due for
 * replacement: 2/5 full when sparse, 4/5 otherwise. */
static inline int fill_high(uint64_t fill, uint64_t cap)
{
	return fill * 5 >= cap * (cap <= LW_LIM_HEAP_SPARSE ? 2 : 4);
}

/* target_cap - the capacity for the live count now. */
static uint64_t target_cap(void)
{
	int64_t live = atomic_load_explicit(&g_heap.live, memory_order_relaxed);
	return slots_for((uint64_t)(live > 0 ? live : 0));
}

/*
 * grow_decide - should the table be replaced for `why`, and by how many
 * slots (*want)?  Read without the lock for a first look, and again under
 * it.
 */
static int grow_decide(enum grow_why why, uint64_t *want)
{
	const struct tab_desc *cur = &g_tabs[atomic_load_explicit(&g_heap.cur, memory_order_relaxed)];
	uint64_t cap = cur->ref.cap, w = target_cap();
	int64_t f = atomic_load_explicit(&cur->fill, memory_order_relaxed);
	uint64_t fill = f > 0 ? (uint64_t)f : 0;
	int grows = w >= cap + cap / 8;
	switch (why) {
	case WHY_FILL:
		if (!fill_high(fill, cap))
			return 0;
		/* mostly tombstones: rebuild only when they are many */
		if (!grows && fill * 10 < cap * 9)
			return 0;
		break;
	case WHY_SHRINK:
		if (w > cap / 2)
			return 0;
		break;
	case WHY_PROBES:
		/* at the size for the live count, with a new seed */
		break;
	case WHY_FULL:
		/* (full at a low load: an address pattern the seed clusters) */
		if (w < cap + cap / 8)
			w = cap_round(cap + cap / 8);
		if (w > g_heap.cap_max)
			w = g_heap.cap_max;
		if (w <= cap)
			return -1; /* at LEAKWATCH_MAX_ALLOCS' capacity */
		grows = 1;
		break;
	}
	if (!grows && g_heap.rebuilds >= LW_LIM_HEAP_REBUILDS)
		return 0;
	*want = w;
	return 1;
}

/*
 * heap_grow - replace the table if `why` still holds once the growth lock
 * is ours and cur is still the table of generation `gen` (0: any).
 * WHY_FULL (the caller cannot go on without room) waits for the lock, or
 * for another thread's growth to publish a new cur, and finishes a
 * migration in progress before growing.
 */
static void heap_grow(enum grow_why why, uint32_t gen)
{
	int wait = why == WHY_FULL;
	uint64_t want;
	if (!wait && (atomic_load_explicit(&g_heap.lock, memory_order_relaxed) ||
		      atomic_load_explicit(&g_heap.old, memory_order_relaxed) >= 0 || grow_decide(why, &want) <= 0))
		return;
	if ((atomic_load_explicit(&g_heap.flags, memory_order_relaxed) & HF_NO_GROW) &&
	    prim_coarse_ns() < g_heap.retry_ns)
		return;
	sigset_t ss;
	shim_signals_block(&ss);
	if (!(wait ? grow_lock_wait_for(gen) : grow_trylock()))
		goto out;
	/* the table that was found full or long to probe was replaced meanwhile */
	if (gen && atomic_load_explicit(&g_heap.cur_gen, memory_order_relaxed) != gen)
		goto unlock;
	if (atomic_load_explicit(&g_heap.old, memory_order_relaxed) >= 0) {
		if (!wait)
			goto unlock;
		migrate_run(UINT64_MAX, 1);
		if (atomic_load_explicit(&g_heap.old, memory_order_relaxed) >= 0)
			goto unlock;
	}
	int d = grow_decide(why, &want);
	if (d < 0) {
		atomic_fetch_or_explicit(&g_heap.flags, HF_NO_GROW, memory_order_relaxed);
		g_heap.retry_ns = UINT64_MAX; /* for good */
	} else if (d > 0) {
		(void)replace(want);
	}
unlock:
	grow_unlock();
out:
	shim_signals_restore(&ss);
}

/* heap_check - after a count flush: does the table need replacing? */
static void heap_check(void)
{
	if (atomic_load_explicit(&g_heap.old, memory_order_relaxed) >= 0 || g_mode == LW_HEAP_OFF)
		return;
	const struct tab_desc *cur = &g_tabs[atomic_load_explicit(&g_heap.cur, memory_order_relaxed)];
	uint64_t cap = cur->ref.cap;
	int64_t fill = atomic_load_explicit(&cur->fill, memory_order_relaxed);
	int64_t live = atomic_load_explicit(&g_heap.live, memory_order_relaxed);
	/* Tombstones (fill - live) are cheap until there are many: a free that
	 * makes its slot empty reads the slots behind it, which costs malloc/free
	 * more than anything else here.  So frees tidy up only while deleted
	 * slots exceed a share of the table (1/16 when sparse, 3/16 when dense:
	 * about what remains necessary at those loads), down to half of it. */
	struct tab_desc *d = (struct tab_desc *)cur;
	int64_t tombs = fill - live, unit = (int64_t)(cap <= LW_LIM_HEAP_SPARSE ? cap / 16 : cap * 3 / 16);
	uint32_t tidy = atomic_load_explicit(&d->tidy, memory_order_relaxed);
	if (!tidy && tombs > unit)
		atomic_store_explicit(&d->tidy, 1, memory_order_relaxed);
	else if (tidy && tombs * 2 < unit)
		atomic_store_explicit(&d->tidy, 0, memory_order_relaxed);
	if (fill_high((uint64_t)(fill > 0 ? fill : 0), cap))
		heap_grow(WHY_FILL, 0);
	else if (cap > g_heap.cap_min && (uint64_t)(live > 0 ? live : 0) * (cap <= LW_LIM_HEAP_SPARSE ? 8 : 4) < cap &&
		 g_heap.rebuilds < LW_LIM_HEAP_REBUILDS)
		heap_grow(WHY_SHRINK, 0);
}

/* table_any_live - a slot of t that holds a block, or is being written */
static int table_any_live(const struct tab_ref *t)
{
	for (uint64_t i = 0; t->slot && i < t->cap; i++)
		if (slot_ptr(&t->slot[i]) > TOMB || (atomic_load_explicit(&t->slot[i].seq, memory_order_relaxed) & 1u))
			return 1;
	return 0;
}

int heap_any_live(void)
{
	if (g_mode == LW_HEAP_OFF)
		return 0;
	/* the shared live count lags the threads' batches: look */
	const struct heap_view *v = view_refresh();
	return !v || table_any_live(&v->cur) || table_any_live(&v->old);
}

void heap_exit_settle(void)
{
	if (g_mode == LW_HEAP_OFF || atomic_load_explicit(&g_heap.old, memory_order_relaxed) < 0)
		return;
	migrate_all();
}

/* ---- set-up ------------------------------------------------------------------------------------------- */

/*
 * Ownership.  A child made by fork() gets its own segment through the
 * atfork handler; one made by _Fork(), a raw fork/clone system call, or
 * before our handler ran would write into the parent's heap table through
 * the shared mapping.  A private page marked MADV_WIPEONFORK reads as zero
 * in every such child (and stays set in vfork children, which share our
 * memory and so our heap): one load per call tells who we are.
 */
SHIM_HIDDEN volatile uint64_t *g_heap_owner;

static void heap_owner_claim(void)
{
	if (!g_heap_owner) {
		void *p = prim_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return;
		(void)prim_madvise(p, 4096, MADV_WIPEONFORK); /* before Linux 4.14: no protection */
		g_heap_owner = p;
	}
	*g_heap_owner = 1;
}

void heap_init(uint32_t mode, uint64_t sample_bytes)
{
	pthread_once(&g_key_once, key_create);
	if (mode != LW_HEAP_OFF)
		heap_owner_claim();
	struct lw_header *hdr = g_seg.hdr;
	/* The tables of an earlier set-up stay mapped: the segment's (a fork
	 * child drops or privatizes its parent's: segment_privatize). */
	g_mode = LW_HEAP_OFF;
	/* everything but the epoch, which only moves on: views taken from an
	 * earlier set-up (a fork child's thread, a test) go stale */
	uint32_t epoch = atomic_load_explicit(&g_heap.epoch, memory_order_relaxed);
	memset(&g_heap, 0, sizeof g_heap);
	memset(g_tabs, 0, sizeof g_tabs);
	atomic_store_explicit(&g_heap.old, -1, memory_order_relaxed);
	atomic_store_explicit(&g_heap.epoch, epoch + 1, memory_order_relaxed);
	if (!hdr || mode == LW_HEAP_OFF)
		return;
	uint64_t cap = mode == LW_HEAP_FULL ? LW_LIM_HEAP_FIRST_FULL : LW_LIM_HEAP_FIRST_SAMPLED, off;
	g_heap.max_live = g_cfg.max_allocs ? g_cfg.max_allocs : (1u << 28);
	g_heap.cap_min = cap;
	g_heap.cap_max = UINT64_MAX;
	g_heap.cap_max = slots_for(g_heap.max_live);
	/* the first table was reserved with the segment */
	struct lw_alloc *t = segment_extent_initial(cap * sizeof(struct lw_alloc), &off);
	if (!t)
		t = segment_extent_new(cap * sizeof(struct lw_alloc), &off);
	if (!t) {
		segment_mark_incomplete(LW_INCOMPLETE_HEAP);
		return;
	}
	struct tab_desc *d = &g_tabs[0];
	d->ref.slot = t;
	d->ref.cap = cap;
	d->ref.runs = cap / RUN;
	d->ref.seed = heap_rng();
	d->ref.gen = hdr->heapdir.gen + 1;
	d->ref.idx = 0;
	d->off = off;
	hdir_publish(d, NULL);
	atomic_store_explicit(&g_heap.cur_gen, d->ref.gen, memory_order_relaxed);
	g_sample_bytes = sample_bytes ? sample_bytes : 1;
	hdr->heap_mode = mode;
	hdr->sample_bytes = mode == LW_HEAP_SAMPLED ? g_sample_bytes : 0;
	memset(g_filter, 0, sizeof g_filter);
	atomic_fetch_add_explicit(&g_heap.epoch, 1, memory_order_release);
	atomic_thread_fence(memory_order_release);
	g_mode = mode;
}

/* ---- sampling --------------------------------------------------------------- */

static uint64_t rng_next(void)
{
	uint64_t x = t_heap.rng;
	if (x == 0)
		x = (uint64_t)prim_gettid() * 0x9e3779b97f4a7c15ull ^ prim_now_ns() ^ 0x5deece66dull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	t_heap.rng = x;
	return x;
}

/*
 * neg_log - -ln(u) for u in (0, 1], to ~1e-12, without libm: libm would be
 * one more library mapped into every traced process (five mappings that
 * every fork copies and every child unmaps).  u = m * 2^e with m in
 * [sqrt(1/2), sqrt(2)); ln m = 2 atanh(t), t = (m - 1) / (m + 1), |t| < 0.172.
 */
static double neg_log(double u)
{
	int e = 0;
	while (u < 0.7071067811865476) {
		u *= 2.0;
		e--;
	}
	double t = (u - 1.0) / (u + 1.0), t2 = t * t, sum = 0.0;
	for (int k = 19; k >= 1; k -= 2)
		sum = sum * t2 + 1.0 / k;
	return -(2.0 * t * sum + (double)e * 0.6931471805599453);
}

/*
 * Exponentially distributed gaps (as tcmalloc does): the decision for a
 * block depends only on the bytes allocated before it, with no period for a
 * periodic allocation pattern to line up with.
 */
static int64_t next_gap(void)
{
	double u = (double)((rng_next() >> 11) + 1) * (1.0 / 9007199254740993.0); /* (0,1] */
	double gap = neg_log(u) * (double)g_sample_bytes;
	if (gap > 9e18)
		gap = 9e18;
	return (int64_t)gap + 1;
}

int heap_sample_slow(void)
{
	if (t_heap.rng == 0) {
		/* first allocation of this thread: start a gap, this one is not sampled */
		t_heap_until_sample = next_gap();
		return 0;
	}
	/* a block larger than several gaps still counts once; the analyzer
	 * weighs it by 1/p(size) */
	t_heap_until_sample = next_gap();
	return 1;
}

/* ---- the recorder's calls ----------------------------------------------------------------- */

static void heap_insert(uint64_t p, size_t size, uint32_t stack_id, uint64_t ns, int count)
{
	const struct rec r = { size, ns, stack_id };
	const struct heap_view *v = view_get();
	if (!v) {
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
		return;
	}
	op_tick(v, 1);
	if (atomic_load_explicit(&g_heap.flags, memory_order_relaxed) & HF_AT_CAP) {
		segment_counter_add(LW_CTR_DROP_HEAP_FULL, 1);
		return;
	}
	for (unsigned tries = 0; tries < 8 && v; tries++) {
		int no_grow = atomic_load_explicit(&g_heap.flags, memory_order_relaxed) & HF_NO_GROW;
		unsigned d = 0;
		int was_empty = 0;
		int res = tab_insert(&v->cur, p, &r, 0, no_grow ? LW_LIM_HEAP_PROBES : LW_LIM_HEAP_PROBES_MAX,
				     &d, &was_empty);
		switch (res) {
		case INS_NEW:
		case INS_REPLACED: {
			/* a replaced stale record was counted (and filtered) already */
			int fresh = res == INS_NEW;
			if (g_mode == LW_HEAP_SAMPLED && fresh)
				filter_inc(&g_filter[heap_filter_index(p)]);
			if (count)
				batch_add(stack_id, size);
			counts_add(fresh, was_empty, &v->cur);
			if (d >= LW_LIM_HEAP_PROBES && !no_grow)
				heap_grow(WHY_PROBES, v->cur.gen);
			return;
		}
		case INS_MOVED:
			v = view_refresh();
			continue;
		case INS_FULL:
			if (no_grow)
				break;
			heap_grow(WHY_FULL, v->cur.gen);
			v = view_refresh();
			continue;
		default:
			v = NULL;
			break;
		}
		break;
	}
	/* no room and no growth to wait for; or the table kept changing */
	segment_counter_add(v ? LW_CTR_DROP_HEAP_FULL : LW_CTR_DROP_BUSY, 1);
}

void heap_record_alloc(void *ptr, size_t size, uint32_t stack_id)
{
	uint64_t p = (uint64_t)(uintptr_t)ptr;
	if (g_mode == LW_HEAP_OFF || p <= LW_ALLOC_TOMBSTONE)
		return;
	heap_insert(p, size, stack_id, prim_coarse_ns(), 1);
}

int heap_record_free(void *ptr, uint32_t *stack_id, uint64_t *size, uint64_t *ns)
{
	uint64_t p = (uint64_t)(uintptr_t)ptr;

	if (g_mode == LW_HEAP_OFF || p <= LW_ALLOC_TOMBSTONE)
		return 0;
	_Atomic uint8_t *f = &g_filter[heap_filter_index(p)];
	if (g_mode == LW_HEAP_SAMPLED && atomic_load_explicit(f, memory_order_relaxed) == 0)
		return 0; /* never sampled: the common case, one cached byte */
	const struct heap_view *v = view_get();
	if (!v) {
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
		return 0;
	}
	op_tick(v, 0);
	struct rec r;
	int res = RM_ABSENT, emptied = 0;
	for (unsigned tries = 0; tries < 4 && v; tries++) {
		int busy_old = 0;
		res = RM_ABSENT;
		if (__builtin_expect(v->old.slot != NULL, 0)) {
			res = tab_remove(&v->old, p, 1, &r, &emptied);
			if (res == RM_BUSY)
				busy_old = 1; /* it may have moved on: look in cur */
		}
		if (res != RM_FOUND)
			res = tab_remove(&v->cur, p, 0, &r, &emptied);
		if (res == RM_FOUND) {
			counts_add(-1, -emptied, &v->cur);
			break;
		}
		if (res == RM_ABSENT && busy_old)
			res = RM_BUSY;
		if (res == RM_BUSY)
			break;
		/* not found: unless a growth moved it under us */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&g_heap.epoch, memory_order_acquire) == v->epoch)
			break;
		v = view_refresh();
	}
	if (res == RM_BUSY) {
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
		return 0;
	}
	if (res != RM_FOUND) {
		if (g_mode == LW_HEAP_FULL)
			segment_counter_add(LW_CTR_HEAP_UNTRACKED_FREES, 1);
		return 0;
	}
	if (stack_id)
		*stack_id = r.stack;
	if (size)
		*size = r.size;
	if (ns)
		*ns = r.ns;
	if (g_mode == LW_HEAP_SAMPLED)
		filter_dec(f);
	t_heap.frees++;
	if (++t_heap.pending >= BATCH_FLUSH)
		batch_flush();
	return 1;
}

/* heap_record_restore - put back a record removed by a realloc that failed,
 * with its original stack and age, without counting a new allocation. */
void heap_record_restore(void *ptr, size_t size, uint32_t stack_id, uint64_t ns)
{
	uint64_t p = (uint64_t)(uintptr_t)ptr;
	if (g_mode == LW_HEAP_OFF || p <= LW_ALLOC_TOMBSTONE)
		return;
	heap_insert(p, size, stack_id, ns, 0);
}

void heap_after_fork(void)
{
	/* the forking thread's batch holds the parent's stack ids, and its
	 * counts the parent's tables (t_view stays: see struct heap_view) */
	memset(&t_heap, 0, sizeof t_heap);
}
