/* SPDX-License-Identifier: MIT */
/*
 * Stack capture and the hash-consed stack table.
 *
 * Each distinct stack is stored once; handles refer to it by a 32-bit id.
 * The table is open-addressed over the slots themselves: a slot is claimed
 * with a compare-and-swap of its seq from 0 to 1, filled, and published with
 * seq = 2.  No locks: a thread that meets a slot being filled by another
 * waits a bounded number of spins, then moves on (at worst the same stack is
 * stored twice, which the analyzer merges by frames).
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#include "shim.h"

#define PROBE_LIMIT 128u
#define FILL_SPINS  4096u

static uintptr_t g_self_lo, g_self_hi;
static int g_no_unwind;

void stack_disable_unwind(void)
{
	g_no_unwind = 1;
}

int stack_unwind_disabled(void)
{
	return g_no_unwind;
}

#define TCACHE_SLOTS 64u

/* Per-thread cache: stack hash -> id, valid for one segment (a fork child
 * starts a new segment, and its ids differ).  Keyed by the segment's
 * generation, not its address: a grandchild's segment may be mapped where
 * an older one was. */
struct tcache_entry {
	uint64_t hash;
	uint64_t gen;                   /* g_seg.gen the id belongs to */
	uint32_t id;
};
static __thread struct tcache_entry t_cache[TCACHE_SLOTS] __attribute__((tls_model("initial-exec")));

static uint32_t stack_intern_hashed(const uint64_t *frames, unsigned depth, uint64_t h);

void stack_set_self_range(uintptr_t lo, uintptr_t hi)
{
	g_self_lo = lo;
	g_self_hi = hi;
	/* libunwind's default global cache takes a lock per lookup; per-thread
	 * caches keep threads of the host from serialising on it. */
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

/* 64-bit mix of the frame addresses (splitmix-style finaliser per word). */
/* One multiply per frame, a full avalanche at the end: cheap on the hot
 * path, and still 64 well-mixed bits for the per-thread cache key. */
static uint64_t frames_hash(const uint64_t *frames, unsigned depth)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ depth;
	for (unsigned i = 0; i < depth; i++)
		h = (h ^ frames[i]) * 0x100000001b3ull + (h >> 29);
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h ? h : 1;
}

uint32_t stack_intern(const uint64_t *frames, unsigned depth)
{
	if (depth > LW_STACK_MAX_FRAMES)
		depth = LW_STACK_MAX_FRAMES;
	return stack_intern_hashed(frames, depth, frames_hash(frames, depth));
}

static uint32_t stack_intern_hashed(const uint64_t *frames, unsigned depth, uint64_t h)
{
	struct lw_header *hdr = g_seg.hdr;
	if (!hdr || depth == 0)
		return 0;
	uint32_t cap = hdr->stacks.capacity;
	uint32_t idx = (uint32_t)(h % cap);

	for (uint32_t probe = 0; probe < PROBE_LIMIT && probe < cap; probe++) {
		struct lw_stack *s = &g_seg.stacks[idx];
		uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);

		if (seq == 0) {
			uint32_t zero;
			if (seq_lock(&s->seq, &zero)) {
				s->hash = h;
				s->depth = (uint16_t)depth;
				memcpy(s->frames, frames, depth * sizeof frames[0]);
				seq_unlock(&s->seq, zero);
				atomic_fetch_add_explicit(&hdr->stacks.used, 1, memory_order_relaxed);
				return idx + 1;
			}
			seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		}
		for (unsigned spin = 0; seq == 1 && spin < FILL_SPINS; spin++) {
			shim_cpu_relax();
			seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		}
		if (seq == 2 && s->hash == h && s->depth == depth &&
		    memcmp(s->frames, frames, depth * sizeof frames[0]) == 0)
			return idx + 1;
		idx = idx + 1 == cap ? 0 : idx + 1;
	}
	segment_counter_add(LW_CTR_DROP_STACK_FULL, 1);
	return 0;
}

uint32_t stack_capture(void)
{
	if (g_no_unwind) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	void *raw[LW_STACK_MAX_FRAMES + 16];
	uint64_t frames[LW_STACK_MAX_FRAMES];
	unsigned want = g_cfg.stack_depth;
	int n = unw_backtrace(raw, (int)(want + 16 < LW_STACK_MAX_FRAMES + 16 ? want + 16
									 : LW_STACK_MAX_FRAMES + 16));
	unsigned depth = 0;

	if (n <= 0) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	/* Skip the shim's own frames at the top: the first frame shown is the
	 * caller of the hooked libc function. */
	int i = 0;
	while (i < n && (uintptr_t)raw[i] >= g_self_lo && (uintptr_t)raw[i] < g_self_hi)
		i++;
	for (; i < n && depth < want; i++)
		frames[depth++] = (uint64_t)(uintptr_t)raw[i];
	if (depth == 0) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	/*
	 * A per-thread cache of recent stacks by 64-bit hash keeps the hot
	 * path off the shared table (no memcmp, no shared cache lines).  Two
	 * different stacks with equal 64-bit hashes would be merged; at 2^-64
	 * per pair that is far below every other error source here.
	 */
	uint64_t h = frames_hash(frames, depth);
	struct tcache_entry *e = &t_cache[h % TCACHE_SLOTS];
	if (e->hash == h && e->gen == g_seg.gen)
		return e->id;
	uint32_t id = stack_intern_hashed(frames, depth, h);
	if (id) {
		e->hash = h;
		e->id = id;
		e->gen = g_seg.gen;
	}
	return id;
}

/*
 * ---- call-site cache: skip the unwind when the stack provably did not change
 *
 * Unwinding is a function of the registers at the first frame and of the
 * stack memory it reads.  For a call from the same return address with the
 * same stack pointer, an unwind that finds, at every frame's return-address
 * slot (its CFA - 8), the same return address as last time walks the same
 * frames: each frame's CFA follows from its caller's stack pointer and its
 * own code address, so equal addresses at equal slots mean an equal chain.  So the
 * first unwind from a call site records each frame's slot address, and
 * later calls only re-read those slots — a few loads of hot stack memory
 * instead of a DWARF-driven walk.
 *
 * Limits: that holds for frames whose CFA is the stack pointer plus a
 * constant, and for frame-pointer frames of fixed size.  A frame that
 * allocates a variable amount of stack (alloca, VLAs) and is re-entered
 * with a different amount, while stale stack memory still holds the old
 * return addresses at the old slots, would be attributed to the old chain.
 * Signal frames never validate and are never cached.  LEAKWATCH_STACK_CACHE=0 turns this off.
 */
#define SITE_SLOTS 8u

/*
 * Kept small: static TLS is carved out of every thread's stack, and a
 * program may run threads with 16 KiB stacks.  The frames themselves are
 * read back from the stack table (write-once) by id; slots are stored as
 * 32-bit offsets above the key's stack pointer.
 */
struct site_entry {
	uint64_t ra, cfa;               /* the key: first frame's return address and SP */
	uint64_t gen;                   /* ids belong to one segment (g_seg.gen) */
	uint32_t id;
	uint32_t depth;
	uint32_t off[LW_STACK_MAX_FRAMES]; /* frame i's return address is at cfa + off[i] */
};
static __thread struct site_entry t_sites[SITE_SLOTS] __attribute__((tls_model("initial-exec")));

/*
 * Fully associative: a direct-mapped cache thrashes when two hot call
 * chains (the same call site at two depths) share a slot and alternate.
 * Eight compares of two words cost less than one miss.
 */
static __thread unsigned t_site_next __attribute__((tls_model("initial-exec")));

static inline struct site_entry *site_find(uint64_t ra, uint64_t cfa)
{
	for (unsigned i = 0; i < SITE_SLOTS; i++)
		if (t_sites[i].ra == ra && t_sites[i].cfa == cfa)
			return &t_sites[i];
	return NULL;
}

static inline struct site_entry *site_victim(void)
{
	return &t_sites[t_site_next++ % SITE_SLOTS];
}

static uint32_t site_fill(struct site_entry *e, uint64_t ra, uint64_t cfa)
{
	unw_context_t uc;
	unw_cursor_t cur;
	uint64_t frames[LW_STACK_MAX_FRAMES], slots[LW_STACK_MAX_FRAMES];
	unsigned want = g_cfg.stack_depth, depth = 0, steps = 0;
	int cacheable = 1;

	if (unw_getcontext(&uc) != 0 || unw_init_local(&cur, &uc) != 0)
		return stack_capture();
	do {
		unw_word_t ip = 0, sp = 0;
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || unw_get_reg(&cur, UNW_REG_SP, &sp) != 0)
			break;
		if (depth == 0 && ip >= g_self_lo && ip < g_self_hi)
			continue; /* the shim's own frames */
		if (depth == 0 && (ip != ra || sp != cfa))
			cacheable = 0; /* not the frame the hook saw: do not trust a key */
		if (unw_is_signal_frame(&cur) > 0)
			cacheable = 0;
		frames[depth] = ip;
		slots[depth] = sp - 8;
		/* only while the chain is still cacheable: past a signal frame
		 * sp - 8 may lie in a guard page (a handler for a stack overflow) */
		if (cacheable && depth > 0 && *(const uint64_t *)(uintptr_t)slots[depth] != ip)
			cacheable = 0; /* return address not at CFA - 8: not validatable */
		depth++;
	} while (depth < want && ++steps < 256 && unw_step(&cur) > 0);

	if (depth == 0) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	uint32_t id = stack_intern(frames, depth);
	for (unsigned i = 1; cacheable && i < depth; i++)
		if (slots[i] < cfa || slots[i] - cfa > UINT32_MAX)
			cacheable = 0;
	if (id && cacheable) {
		e->ra = ra;
		e->cfa = cfa;
		e->gen = g_seg.gen;
		e->id = id;
		e->depth = depth;
		for (unsigned i = 1; i < depth; i++)
			e->off[i] = (uint32_t)(slots[i] - cfa);
	}
	return id;
}

/*
 * A miss costs a step-by-step unwind (several times unw_backtrace).  A
 * thread whose hot call chains do not fit in the cache would pay it on most
 * calls, so more than SITE_MISS_MAX misses in a window of SITE_WINDOW calls
 * switch the thread to plain unw_backtrace for SITE_COOLDOWN calls.
 */
#define SITE_WINDOW   64u
#define SITE_MISS_MAX 16u
#define SITE_COOLDOWN 4096u

static __thread struct {
	uint32_t calls, misses, cooldown;
} t_site_stats __attribute__((tls_model("initial-exec")));

uint32_t stack_capture_at(uintptr_t ra, uintptr_t cfa)
{
	if (!g_cfg.site_cache || g_no_unwind || (ra >= g_self_lo && ra < g_self_hi))
		return stack_capture();
	if (t_site_stats.cooldown) {
		t_site_stats.cooldown--;
		return stack_capture();
	}
	if (++t_site_stats.calls >= SITE_WINDOW) {
		t_site_stats.calls = 0;
		t_site_stats.misses = 0;
	}
	struct site_entry *e = site_find(ra, cfa);
	if (e && g_seg.hdr && e->gen == g_seg.gen && e->id && e->id <= g_seg.hdr->stacks.capacity) {
		const uint64_t *frames = g_seg.stacks[e->id - 1].frames;
		unsigned i = 1;
		for (; i < e->depth; i++)
			if (*(const uint64_t *)(uintptr_t)(cfa + e->off[i]) != frames[i])
				break;
		if (i == e->depth)
			return e->id;
	}
	if (++t_site_stats.misses > SITE_MISS_MAX) {
		t_site_stats.misses = 0;
		t_site_stats.cooldown = SITE_COOLDOWN;
		return stack_capture();
	}
	return site_fill(e ? e : site_victim(), ra, cfa);
}
