/* SPDX-License-Identifier: MIT */
/*
 * Heap recording: the live-allocation hash set in the segment, the sampling
 * decision, and per-thread batching of the per-stack totals.
 *
 * The hot path is malloc/free, so:
 *  - no lock; each table slot has its own seqlock, claimed by CAS;
 *  - no shared counter is written per call: totals are batched per thread
 *    (struct heap_batch) and flushed every BATCH_FLUSH events;
 *  - in sampled mode, free() of a block that was never sampled (nearly all
 *    of them) is answered by a small per-process counting filter that lives
 *    in cache, without touching the big table.
 */
#include <math.h>
#include <sys/mman.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "shim.h"

#define PROBE_LIMIT  LW_LIM_HEAP_PROBES
#define BATCH_SLOTS  LW_LIM_HEAP_BATCH_SLOTS
#define BATCH_FLUSH  LW_LIM_HEAP_BATCH_FLUSH

static struct lw_alloc *g_tab;
static uint64_t g_mask;
SHIM_HIDDEN uint32_t g_heap_mode;
#define g_mode g_heap_mode
static uint64_t g_sample_bytes;

/* Counting filter over hash(ptr): nonzero means "maybe sampled".  Only
 * sampled inserts and their frees write it; every free reads one byte. */
SHIM_HIDDEN _Atomic uint8_t g_heap_filter[LW_HEAP_FILTER_SIZE];
#define g_filter g_heap_filter

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
	uint64_t allocs, frees;         /* header counters not yet flushed */
	struct heap_batch_slot slot[BATCH_SLOTS];
} t_heap __attribute__((tls_model("initial-exec")));


/*
 * Table index: the address in 16-byte units, so blocks close in memory sit
 * in nearby slots (fewer cache and TLB misses than a scrambling hash), with
 * each 1 MiB region of the address space shifted by its own scrambled
 * offset.  Without the shift, heaps larger than the table's span (capacity
 * x 16 bytes), or glibc's thread heaps (64 MiB-aligned), would fold onto the
 * same slots and make probe chains long enough to drop records.
 */
static inline uint64_t ptr_index(uint64_t p)
{
	return ((p >> 4) + ((p >> 20) * 0x9e3779b97f4a7c15ull >> 32)) & g_mask;
}

/* Per-thread totals are batched; a thread that ends flushes its batch
 * through this key's destructor, set on the thread's first recorded block. */
static pthread_key_t g_thread_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;

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

/*
 * Ownership.  A child made by fork() gets its own segment through the
 * atfork handler; one made by _Fork(), a raw fork/clone system call, or
 * before our handler ran would write into the parent's heap table through
 * the shared mapping.  A private page marked MADV_WIPEONFORK reads as zero
 * in every such child (and stays set in vfork children, which share our
 * memory and so our heap): one load per call tells who we are.
 */
SHIM_HIDDEN volatile uint64_t *g_heap_owner;

static void owner_claim(void)
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
		owner_claim();
	struct lw_header *hdr = g_seg.hdr;
	g_mode = LW_HEAP_OFF;
	if (!hdr || mode == LW_HEAP_OFF)
		return;
	/* interim: one table, sized at start (growth: heap table rewrite) */
	uint64_t cap = mode == LW_HEAP_FULL ? (1u << 18) : (1u << 8), off;
	struct lw_alloc *t = segment_extent_initial(cap * sizeof(struct lw_alloc), &off);
	if (!t)
		t = segment_extent_new(cap * sizeof(struct lw_alloc), &off);
	if (!t) {
		segment_mark_incomplete(LW_INCOMPLETE_HEAP);
		return;
	}
	uint32_t s = lw_seq_write_begin(&hdr->heapdir.seq);
	hdr->heapdir.cur_off = off;
	hdr->heapdir.cur_cap = cap;
	hdr->heapdir.gen++;
	lw_seq_write_end(&hdr->heapdir.seq, s);
	hdr->heap.capacity = (uint32_t)cap;
	g_tab = t;
	g_mask = cap - 1;
	g_sample_bytes = sample_bytes ? sample_bytes : 1;
	hdr->heap_mode = mode;
	hdr->sample_bytes = mode == LW_HEAP_SAMPLED ? g_sample_bytes : 0;
	memset(g_filter, 0, sizeof g_filter);
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
 * Exponentially distributed gaps (as tcmalloc does): the decision for a
 * block depends only on the bytes allocated before it, with no period for a
 * periodic allocation pattern to line up with.
 */
static int64_t next_gap(void)
{
	double u = (double)((rng_next() >> 11) + 1) * (1.0 / 9007199254740993.0); /* (0,1] */
	double gap = -log(u) * (double)g_sample_bytes;
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

/* ---- per-thread batching of totals --------------------------------------------- */

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
}

void heap_thread_flush(void)
{
	if (g_mode != LW_HEAP_OFF)
		batch_flush();
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

/* ---- the table -------------------------------------------------------------------- */

static struct lw_alloc *slot_lock(struct lw_alloc *a, uint32_t *seq)
{
	return seq_lock_spin(&a->seq, seq, LW_LIM_HEAP_SPINS) ? a : NULL;
}

static inline uint64_t slot_ptr(const struct lw_alloc *a)
{
	return __atomic_load_n(&a->ptr, __ATOMIC_RELAXED);
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

static void heap_insert(uint64_t p, size_t size, uint32_t stack_id, uint64_t ns, int count)
{
	uint64_t idx = ptr_index(p);

	for (unsigned probe = 0; probe < PROBE_LIMIT; probe++, idx = (idx + 1) & g_mask) {
		struct lw_alloc *a = &g_tab[idx];
		uint64_t q = slot_ptr(a);
		/* the same address still recorded means its free was missed (a
		 * busy slot, a signal): that record is stale, this one replaces it */
		if (q > LW_ALLOC_TOMBSTONE && q != p)
			continue;
		uint32_t seq;
		if (!slot_lock(a, &seq))
			continue;
		q = slot_ptr(a);
		if (q > LW_ALLOC_TOMBSTONE && q != p) { /* another thread took it */
			seq_unlock(&a->seq, seq);
			continue;
		}

		a->stack_id = stack_id;
		a->size = size;
		a->ns = ns;
		__atomic_store_n(&a->ptr, p, __ATOMIC_RELAXED);
		seq_unlock(&a->seq, seq);
		if (g_mode == LW_HEAP_SAMPLED)
			filter_inc(&g_filter[heap_filter_index(p)]);
		if (count)
			batch_add(stack_id, size);
		return;
	}
	segment_counter_add(LW_CTR_DROP_HEAP_FULL, 1);
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
	uint64_t idx = ptr_index(p);

	if (g_mode == LW_HEAP_OFF || p <= LW_ALLOC_TOMBSTONE)
		return 0;
	_Atomic uint8_t *f = &g_filter[heap_filter_index(p)];
	if (g_mode == LW_HEAP_SAMPLED && atomic_load_explicit(f, memory_order_relaxed) == 0)
		return 0; /* never sampled: the common case, one cached byte */
	for (unsigned probe = 0; probe < PROBE_LIMIT; probe++, idx = (idx + 1) & g_mask) {
		struct lw_alloc *a = &g_tab[idx];
		uint64_t q = slot_ptr(a);
		if (q == 0)
			break;
		if (q != p)
			continue;
		uint32_t seq;
		if (!slot_lock(a, &seq)) {
			segment_counter_add(LW_CTR_DROP_BUSY, 1);
			return 0;
		}
		if (slot_ptr(a) != p) {
			seq_unlock(&a->seq, seq);
			return 0;
		}
		if (stack_id)
			*stack_id = a->stack_id;
		if (size)
			*size = a->size;
		if (ns)
			*ns = a->ns;
		__atomic_store_n(&a->ptr, LW_ALLOC_TOMBSTONE, __ATOMIC_RELAXED);
		seq_unlock(&a->seq, seq);
		if (g_mode == LW_HEAP_SAMPLED)
			filter_dec(f);
		t_heap.frees++;
		if (++t_heap.pending >= BATCH_FLUSH)
			batch_flush();
		return 1;
	}
	if (g_mode == LW_HEAP_FULL)
		segment_counter_add(LW_CTR_HEAP_UNTRACKED_FREES, 1);
	return 0;
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
	/* the forking thread's batch holds the parent's stack ids */
	memset(&t_heap, 0, sizeof t_heap);
}
