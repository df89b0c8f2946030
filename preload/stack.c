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

void stack_set_self_range(uintptr_t lo, uintptr_t hi)
{
	g_self_lo = lo;
	g_self_hi = hi;
}

/* 64-bit mix of the frame addresses (splitmix-style finaliser per word). */
static uint64_t frames_hash(const uint64_t *frames, unsigned depth)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ depth;
	for (unsigned i = 0; i < depth; i++) {
		uint64_t x = frames[i] + 0x9e3779b97f4a7c15ull * (i + 1);
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
		h = (h ^ x ^ (x >> 31)) * 0x100000001b3ull;
	}
	return h ? h : 1;
}

uint32_t stack_intern(const uint64_t *frames, unsigned depth)
{
	struct lw_header *hdr = g_seg.hdr;
	if (!hdr || depth == 0)
		return 0;
	if (depth > LW_STACK_MAX_FRAMES)
		depth = LW_STACK_MAX_FRAMES;

	uint32_t cap = hdr->stacks.capacity;
	uint64_t h = frames_hash(frames, depth);
	uint32_t idx = (uint32_t)(h % cap);

	for (uint32_t probe = 0; probe < PROBE_LIMIT && probe < cap; probe++) {
		struct lw_stack *s = &g_seg.stacks[idx];
		uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);

		if (seq == 0) {
			uint32_t expect = 0;
			if (atomic_compare_exchange_strong_explicit(&s->seq, &expect, 1,
								    memory_order_acq_rel,
								    memory_order_acquire)) {
				s->hash = h;
				s->depth = (uint16_t)depth;
				memcpy(s->frames, frames, depth * sizeof frames[0]);
				atomic_store_explicit(&s->seq, 2, memory_order_release);
				atomic_fetch_add_explicit(&hdr->stacks.used, 1, memory_order_relaxed);
				return idx + 1;
			}
			seq = expect;
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
	return stack_intern(frames, depth);
}
