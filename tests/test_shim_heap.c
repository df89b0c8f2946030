/*
 * The shim's heap table (preload/heap.c), linked from libshimrec.a: record
 * and forget, the live cap, sampling, growth with the live count, churn at
 * a steady live count, a growth the filesystem or the budget refuses, and
 * readers copying the table (over pread, as the analyzer does: heapdir.h)
 * while threads allocate, free and grow it.
 *
 * Pointers are fake addresses: the recorder never dereferences them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"
#include "lib/fixtures.h"
#include "lib/heapdir.h"
#include "lib/shimseg.h"

static char dir[64];
static int on_tmpfs;

static void heap_setup(uint32_t mode, uint32_t max_allocs)
{
	cr_assert_eq(shimseg_create(dir, sizeof dir, "shim-heap", 256, 256, max_allocs), 0);
	segment_mark_state(LW_STATE_RUNNING);
	heap_init(mode, 4096);
}

static void heap_teardown(void)
{
	heap_init(LW_HEAP_OFF, 0);
	shimseg_destroy(dir);
	if (on_tmpfs) {
		umount2(dir, MNT_DETACH);
		rmdir(dir);
		on_tmpfs = 0;
	}
}

TestSuite(shim_heap, .fini = heap_teardown);

static uint64_t ctr(enum lw_counter c)
{
	return atomic_load(&g_seg.hdr->counters[c]);
}

/* The segment's live blocks, read from the file (old, then cur). */
static void snap(struct hd_snap *s)
{
	cr_assert_eq(heapdir_read(g_seg.path, s), 0, "reading %s: %s", g_seg.path, strerror(errno));
	cr_assert_eq(s->twice, 0, "a block recorded twice in one table");
	cr_assert_eq(s->busy, 0, "a slot stayed locked");
}

static size_t live_entries(void)
{
	struct hd_snap s;
	snap(&s);
	size_t n = s.n;
	heapdir_free(&s);
	return n;
}

/* fake block i of a region: 64 bytes apart, sizes and stacks derived from
 * the address (a torn record would pair one block's address with another
 * one's size) */
static uint64_t blk(uint64_t region, uint64_t i)
{
	return region + i * 64;
}

static uint64_t blk_size(uint64_t p)
{
	return (p >> 6) % 997 + 1;
}

static uint32_t blk_stack(uint64_t p)
{
	return (uint32_t)((p >> 6) % 13) + 1;
}

static void blk_alloc(uint64_t p)
{
	heap_record_alloc((void *)(uintptr_t)p, blk_size(p), blk_stack(p));
}

static int blk_free(uint64_t p)
{
	return heap_record_free((void *)(uintptr_t)p, NULL, NULL, NULL);
}

Test(shim_heap, record_and_forget)
{
	heap_setup(LW_HEAP_FULL, 0);
	char blocks[8][32] __attribute__((aligned(16)));
	for (int i = 0; i < 8; i++)
		heap_record_alloc(blocks[i], 32, 5);
	cr_assert_eq(live_entries(), 8);
	uint32_t stack = 0;
	uint64_t size = 0, ns = 0;
	cr_assert(heap_record_free(blocks[3], &stack, &size, &ns));
	cr_assert_eq(stack, 5);
	cr_assert_eq(size, 32);
	cr_assert_neq(ns, 0);
	cr_assert_not(heap_record_free(blocks[3], NULL, NULL, NULL), "already forgotten");
	cr_assert_eq(live_entries(), 7);
	/* a pointer never recorded passes through, and is counted in full mode */
	char other[16] __attribute__((aligned(16)));
	cr_assert_not(heap_record_free(other, NULL, NULL, NULL));
	cr_assert_eq(ctr(LW_CTR_HEAP_UNTRACKED_FREES), 2, "the second forget of blocks[3] and the stranger");
	/* a failed realloc puts the old record back with its age */
	cr_assert(heap_record_free(blocks[4], &stack, &size, &ns));
	heap_record_restore(blocks[4], size, stack, ns);
	uint64_t ns2 = 0;
	cr_assert(heap_record_free(blocks[4], NULL, NULL, &ns2));
	cr_assert_eq(ns2, ns, "restored with the original time");
	heap_thread_flush();
	cr_assert_eq(ctr(LW_CTR_HEAP_ALLOCS), 8, "a restore is not a new allocation");
	cr_assert_eq(atomic_load(&stack_slot(5)->heap_allocs), 8);
	cr_assert_eq(atomic_load(&stack_slot(5)->heap_bytes), 8 * 32);
	/* the directory names one table, and the header its capacity */
	struct lw_heapdir *d = &g_seg.hdr->heapdir;
	cr_assert_neq(d->cur_off, 0);
	cr_assert_eq(d->old_cap, 0);
	cr_assert_eq(d->cur_cap % 16, 0);
	cr_assert_eq(g_seg.hdr->heap.capacity, d->cur_cap);
	cr_assert_eq(g_seg.hdr->heap.entry_size, sizeof(struct lw_alloc));
}

/* LEAKWATCH_MAX_ALLOCS caps the live count: what is beyond it is dropped
 * and counted, and freed room is used again. */
Test(shim_heap, live_cap_drops_and_counts)
{
	heap_setup(LW_HEAP_FULL, 1024);
	const uint64_t R = 0x100000000000ull;
	for (int i = 0; i < 4096; i++)
		blk_alloc(blk(R, (uint64_t)i));
	heap_thread_flush();
	size_t live = live_entries();
	uint64_t dropped = ctr(LW_CTR_DROP_HEAP_FULL);
	cr_assert_eq(live + dropped, 4096, "live %zu + dropped %lu", live, (unsigned long)dropped);
	/* (exact to within one count batch of the thread) */
	cr_assert_geq(live, 1024, "the cap holds LEAKWATCH_MAX_ALLOCS blocks");
	cr_assert_lt(live, 1024 + LW_LIM_HEAP_COUNT_FLUSH, "%zu blocks, beyond the cap", live);
	size_t freed = 0;
	for (int i = 0; i < 4096; i++)
		freed += (size_t)blk_free(blk(R, (uint64_t)i));
	cr_assert_eq(freed, live);
	cr_assert_eq(live_entries(), 0);
	for (int i = 0; i < 512; i++)
		blk_alloc(blk(R, (uint64_t)i * 2));
	heap_thread_flush();
	cr_assert_eq(live_entries(), 512);
	cr_assert_eq(ctr(LW_CTR_DROP_HEAP_FULL), dropped, "no drop below the cap");
	cr_assert_eq(atomic_load(&g_seg.hdr->incomplete) & LW_INCOMPLETE_HEAP, 0,
		     "the cap is not a refused reservation");
}

Test(shim_heap, sampled_mode_rate_and_filter)
{
	heap_setup(LW_HEAP_SAMPLED, 0);
	/* mean gap 4096 bytes: 4 MiB of 64-byte blocks gives ~1024 samples */
	uint64_t samples = 0;
	for (int i = 0; i < 65536; i++)
		samples += (uint64_t)heap_should_sample(64);
	cr_assert_gt(samples, 800, "%lu samples", (unsigned long)samples);
	cr_assert_lt(samples, 1250, "%lu samples", (unsigned long)samples);
	/* the filter says "maybe" for a recorded block and the table answers */
	char b[64] __attribute__((aligned(16)));
	cr_assert_not(heap_maybe_recorded(b) && heap_record_free(b, NULL, NULL, NULL));
	heap_record_alloc(b, 64, 2);
	cr_assert(heap_maybe_recorded(b));
	cr_assert(heap_record_free(b, NULL, NULL, NULL));
	cr_assert_eq(ctr(LW_CTR_HEAP_UNTRACKED_FREES), 0, "sampled mode does not count unsampled frees");
	/* a sampled process starts small */
	cr_assert_leq(g_seg.hdr->heapdir.cur_cap, 1024);
}

Test(shim_heap, off_mode_records_nothing)
{
	heap_setup(LW_HEAP_OFF, 0);
	char b[32] __attribute__((aligned(16)));
	cr_assert_not(heap_should_sample(1 << 20));
	heap_record_alloc(b, 32, 1);
	cr_assert_not(heap_maybe_recorded(b));
	cr_assert_eq(g_seg.hdr->heapdir.cur_cap, 0, "no table");
}

/* check_blocks - s holds exactly blocks [0, n) of region R with their sizes
 * and stacks, plus nothing else of R */
static void check_blocks(const struct hd_snap *s, uint64_t R, uint64_t n)
{
	uint64_t found = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct hd_block *b = &s->blocks[i];
		if (b->ptr < R || b->ptr >= R + (1ull << 40))
			continue;
		cr_assert_lt((b->ptr - R) / 64, n, "a block never allocated: %lx", (unsigned long)b->ptr);
		cr_assert_eq(b->size, blk_size(b->ptr), "block %lx: size %lu", (unsigned long)b->ptr,
			     (unsigned long)b->size);
		cr_assert_eq(b->stack, blk_stack(b->ptr));
		found++;
	}
	cr_assert_eq(found, n, "%lu of %lu blocks", (unsigned long)found, (unsigned long)n);
}

/*
 * The table follows the live count: 300K blocks are all recorded (no
 * fixed capacity in the way), in a table of fewer than 2 slots (64 bytes)
 * per block, and it shrinks back when they are freed.  Before growth the
 * one table of the interim shim dropped what did not fit.
 */
Test(shim_heap, grows_and_shrinks_with_the_live_count, .timeout = 120)
{
	heap_setup(LW_HEAP_FULL, 0);
	const uint64_t R = 0x200000000000ull, N = 300000;
	uint32_t cap0 = g_seg.hdr->heap.capacity;
	for (uint64_t i = 0; i < N; i++)
		blk_alloc(blk(R, i));
	heap_thread_flush();
	heap_exit_settle(); /* a migration still in progress: finish it */
	struct hd_snap s;
	snap(&s);
	check_blocks(&s, R, N);
	cr_assert_eq(s.dir.old_cap, 0, "settled: one table");
	cr_assert_gt(s.dir.cur_cap, cap0);
	cr_assert_eq(s.dir.cur_cap % 16, 0);
	cr_assert_eq(g_seg.hdr->heap.capacity, s.dir.cur_cap, "the header names cur's capacity");
	cr_assert_leq(s.dir.cur_cap, 2 * N, "%lu slots for %lu blocks", (unsigned long)s.dir.cur_cap,
		      (unsigned long)N);
	cr_assert_gt(ctr(LW_CTR_HEAP_GROWS), 0);
	cr_assert_eq(ctr(LW_CTR_DROP_HEAP_FULL) + ctr(LW_CTR_DROP_BUSY) + ctr(LW_CTR_DROP_RESERVE), 0);
	uint64_t big = s.dir.cur_cap;
	heapdir_free(&s);

	/* free in random order: every record found, then the table shrinks */
	uint64_t x = 88172645463325252ull, freed = 0;
	uint8_t *gone = calloc(N, 1);
	for (uint64_t k = 0; k < 4 * N + N; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t i = k < 4 * N ? x % N : k - 4 * N; /* then the stragglers in order */
		if (gone[i])
			continue;
		gone[i] = 1;
		cr_assert(blk_free(blk(R, i)), "block %lu not found", (unsigned long)i);
		freed++;
	}
	cr_assert_eq(freed, N);
	free(gone);
	heap_thread_flush();
	heap_exit_settle();
	cr_assert_eq(ctr(LW_CTR_HEAP_UNTRACKED_FREES), 0);
	snap(&s);
	cr_assert_eq(s.n, 0);
	cr_assert_lt(s.dir.cur_cap, big / 8, "shrunk from %lu to %lu slots", (unsigned long)big,
		     (unsigned long)s.dir.cur_cap);
	heapdir_free(&s);
}

/*
 * Churn at a steady live count (free a random block, allocate another at
 * a new address): the table keeps its size.  With plain tombstones every
 * empty slot is gone after about one pass, and the table would be
 * replaced again and again.
 */
Test(shim_heap, churn_keeps_one_table, .timeout = 120)
{
	heap_setup(LW_HEAP_FULL, 0);
	const uint64_t R = 0x300000000000ull, N = 100000, OPS = 6000000;
	uint64_t *ring = malloc(N * sizeof *ring), next = N;
	for (uint64_t i = 0; i < N; i++) {
		ring[i] = blk(R, i);
		blk_alloc(ring[i]);
	}
	heap_thread_flush();
	heap_exit_settle();
	uint32_t gen0 = g_seg.hdr->heapdir.gen;
	uint64_t x = 0x2545f4914f6cdd1dull;
	for (uint64_t k = 0; k < OPS; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t i = x % N;
		cr_assert(blk_free(ring[i]), "op %lu: block %lx not found", (unsigned long)k, (unsigned long)ring[i]);
		ring[i] = blk(R, next++);
		blk_alloc(ring[i]);
	}
	heap_thread_flush();
	heap_exit_settle();
	struct hd_snap s;
	snap(&s);
	cr_assert_eq(s.n, N);
	for (uint64_t i = 0; i < N; i++) {
		const struct hd_block *b = heapdir_find(&s, ring[i]);
		cr_assert_not_null(b, "ring[%lu] missing", (unsigned long)i);
		cr_assert_eq(b->size, blk_size(ring[i]));
	}
	cr_assert_leq(s.dir.gen - gen0, 1, "%u table replacements in %lu operations", s.dir.gen - gen0,
		      (unsigned long)OPS);
	cr_assert_leq(s.dir.cur_cap, 2 * N);
	cr_assert_lt((s.n + s.cur_tombs) * 5, s.dir.cur_cap * 4, "%zu live + %zu deleted slots of %lu", s.n,
		     s.cur_tombs, (unsigned long)s.dir.cur_cap);
	cr_assert_eq(ctr(LW_CTR_DROP_HEAP_FULL) + ctr(LW_CTR_DROP_BUSY), 0);
	heapdir_free(&s);
	free(ring);
}

/*
 * A growth the space refuses (here: the directory's budget) leaves the
 * table working: what fits is recorded, the rest is dropped and counted,
 * the heap is marked incomplete, and frees still find every record.
 */
Test(shim_heap, refused_growth_keeps_the_table, .timeout = 60)
{
	cr_assert_eq(shimseg_create(dir, sizeof dir, "shim-heap", 256, 256, 0), 0);
	segment_mark_state(LW_STATE_RUNNING);
	g_cfg.budget = atomic_load(&g_seg.hdr->reserved_bytes) + 256 * 1024; /* about 8K more slots */
	g_cfg.budget_pct = 0;
	budget_init();
	heap_init(LW_HEAP_FULL, 4096);
	const uint64_t R = 0x400000000000ull, N = 100000;
	for (uint64_t i = 0; i < N; i++)
		blk_alloc(blk(R, i));
	heap_thread_flush();
	heap_exit_settle();
	cr_assert(atomic_load(&g_seg.hdr->incomplete) & LW_INCOMPLETE_HEAP, "incomplete: heap");
	cr_assert_geq(ctr(LW_CTR_DROP_RESERVE), 1);
	struct hd_snap s;
	snap(&s);
	uint64_t kept = s.n, dropped = ctr(LW_CTR_DROP_HEAP_FULL);
	cr_assert_gt(kept, 1000);
	cr_assert_eq(kept + dropped, N, "kept %lu + dropped %lu", (unsigned long)kept, (unsigned long)dropped);
	cr_assert_leq(atomic_load(&g_seg.hdr->reserved_bytes), g_cfg.budget);
	for (size_t i = 0; i < s.n; i++)
		cr_assert_eq(s.blocks[i].size, blk_size(s.blocks[i].ptr));
	/* every record is still found */
	uint64_t freed = 0;
	for (uint64_t i = 0; i < N; i++)
		freed += (uint64_t)blk_free(blk(R, i));
	cr_assert_eq(freed, kept);
	heapdir_free(&s);
}

/* ---- readers during growth -------------------------------------------------------- */

#define STABLE_R 0x500000000000ull
#define WRITER_R 0x600000000000ull
#define STABLE_N 20000u

struct writer {
	pthread_t th;
	int id;
	uint64_t target;               /* live blocks this writer grows to */
	uint64_t lost;                 /* frees that did not find their record */
};

static _Atomic uint32_t g_read_gen; /* gen at the start of the latest finished read */
static _Atomic int g_writers_done;

static uint64_t wblk(int id, uint64_t i)
{
	return WRITER_R + ((uint64_t)id << 36) + i * 64;
}

/* allocate, and free a third of it again at random: the live count grows,
 * and with it the table, while blocks come and go.  A writer stays at most
 * one table generation ahead of the reader, so that it reads them all. */
static void *writer_run(void *arg)
{
	struct writer *w = arg;
	uint64_t *live = malloc(w->target * 2 * sizeof *live), n = 0, next = 0;
	uint64_t x = (uint64_t)w->id * 0x9e3779b97f4a7c15ull + 1;
	while (n < w->target) {
		while (g_seg.hdr->heapdir.gen > atomic_load(&g_read_gen) + 1)
			sched_yield();
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (x % 3 == 0 && n > 0) {
			uint64_t k = (x >> 8) % n;
			w->lost += !blk_free(live[k]);
			live[k] = live[--n];
		} else {
			live[n] = wblk(w->id, next++);
			blk_alloc(live[n++]);
		}
	}
	heap_thread_flush();
	free(live);
	atomic_fetch_add(&g_writers_done, 1);
	return NULL;
}

/* snap_check - a snapshot holds every stable block once, and no record
 * that pairs an address with another block's fields.  NULL, or what is
 * wrong (the writers are still running: no assertion here). */
static const char *snap_check(const struct hd_snap *s)
{
	static char why[160];
	if (s->twice || s->busy) {
		snprintf(why, sizeof why, "%zu blocks twice in one table, %zu busy slots", s->twice, s->busy);
		return why;
	}
	uint64_t stable = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct hd_block *b = &s->blocks[i];
		if (b->ptr < STABLE_R || b->size != blk_size(b->ptr) || b->stack != blk_stack(b->ptr)) {
			snprintf(why, sizeof why, "a stranger or a torn record: %lx size %lu stack %u",
				 (unsigned long)b->ptr, (unsigned long)b->size, b->stack);
			return why;
		}
		if (b->ptr < WRITER_R && (b->ptr - STABLE_R) / 64 < STABLE_N)
			stable++;
	}
	if (stable != STABLE_N) {
		snprintf(why, sizeof why, "%lu of the %u blocks live through the read", (unsigned long)stable,
			 STABLE_N);
		return why;
	}
	return NULL;
}

Test(shim_heap, readers_during_growth_see_every_live_block_once, .timeout = 240)
{
	heap_setup(LW_HEAP_FULL, 0);
	for (uint64_t i = 0; i < STABLE_N; i++)
		blk_alloc(blk(STABLE_R, i));
	heap_thread_flush();

	/* 1. A migration held half done (it only moves on with heap calls):
	 * blocks are in old, in cur, and some in both for a reader. */
	uint64_t i = 0;
	const uint64_t W = 0x700000000000ull;
	while (g_seg.hdr->heapdir.old_cap == 0)
		blk_alloc(blk(W, i++));
	uint64_t before = i;
	/* half of old's batches */
	uint64_t half = g_seg.hdr->heapdir.old_cap / LW_LIM_HEAP_MIG_STEP / 2 * LW_LIM_HEAP_MIG_EVERY;
	for (uint64_t k = 0; k < half; k++)
		blk_alloc(blk(W, i++));
	cr_assert_neq(g_seg.hdr->heapdir.old_cap, 0, "the migration is still under way");
	struct hd_snap s;
	snap(&s);
	cr_assert_neq(s.dir.old_cap, 0);
	uint64_t stable = 0, wn = 0, from_old = 0;
	for (size_t k = 0; k < s.n; k++) {
		if (s.blocks[k].ptr >= W)
			wn++;
		else
			stable++;
		from_old += s.blocks[k].in_old;
	}
	cr_assert_eq(stable, STABLE_N);
	cr_assert_eq(wn, i, "%lu of %lu (growth began after %lu)", (unsigned long)wn, (unsigned long)i,
		     (unsigned long)before);
	cr_assert_gt(from_old, 0, "some blocks are read from old");
	cr_assert_lt(from_old, s.n, "some from cur");
	heapdir_free(&s);
	for (uint64_t k = 0; k < i; k++)
		cr_assert(blk_free(blk(W, k)));

	/* 2. Writers allocate and free (growing the table over and over) while
	 * this thread reads it again and again. */
	struct writer w[3];
	atomic_store(&g_writers_done, 0);
	atomic_store(&g_read_gen, g_seg.hdr->heapdir.gen);
	for (int k = 0; k < 3; k++) {
		w[k] = (struct writer){ .id = k, .target = 150000 };
		pthread_create(&w[k].th, NULL, writer_run, &w[k]);
	}
	unsigned reads = 0, during_migration = 0, gens = 0;
	uint32_t last_gen = 0;
	const char *bad = NULL;
	for (int done = 0; !done;) {
		done = atomic_load(&g_writers_done) == 3;
		uint32_t g = g_seg.hdr->heapdir.gen;
		if (heapdir_read(g_seg.path, &s) != 0) {
			bad = "read failed";
			atomic_store(&g_read_gen, UINT32_MAX - 1); /* let the writers finish */
			continue;
		}
		if (!bad)
			bad = snap_check(&s);
		atomic_store(&g_read_gen, bad ? UINT32_MAX - 1 : g);
		reads++;
		during_migration += s.dir.old_cap != 0;
		gens += s.dir.gen != last_gen;
		last_gen = s.dir.gen;
		heapdir_free(&s);
	}
	for (int k = 0; k < 3; k++)
		pthread_join(w[k].th, NULL);
	cr_assert_null(bad, "%s", bad);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(w[k].lost, 0, "writer %d: %lu frees found no record", k, (unsigned long)w[k].lost);
	cr_log_info("%u reads, %u of them during a migration, %u generations seen", reads, during_migration, gens);
	cr_assert_gt(reads, 3);
	cr_assert_gt(gens, 3, "the table grew while it was read");
	cr_assert_eq(ctr(LW_CTR_DROP_HEAP_FULL) + ctr(LW_CTR_DROP_BUSY), 0);
}
