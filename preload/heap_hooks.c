/* SPDX-License-Identifier: MIT */
/*
 * The interposed malloc family.
 *
 * The real functions are found with dlsym(RTLD_NEXT), so an allocator that
 * the program links dynamically (jemalloc, tcmalloc) keeps serving it.
 * dlsym() itself may call malloc/calloc before the real ones are known;
 * those few requests are served from a small static arena, and free() or
 * realloc() of an arena block is recognised by its address.
 *
 * Rules (DESIGN.md): a failed allocation is not recorded; a record is
 * removed before the real free (the address can be handed to another thread
 * the moment free returns); a pointer the shim never saw passes straight
 * through; nothing here changes errno or a return value.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"

#define EXPORT __attribute__((visibility("default")))

/* ---- bootstrap arena ------------------------------------------------------- */

#define ARENA_SIZE LW_LIM_BOOT_ARENA
static _Alignas(64) unsigned char g_arena[ARENA_SIZE];
static _Atomic size_t g_arena_used;

struct arena_hdr {
	size_t size;
	size_t pad;                     /* keep the payload 16-byte aligned */
};

static int in_arena(const void *p)
{
	return (const unsigned char *)p >= g_arena && (const unsigned char *)p < g_arena + ARENA_SIZE;
}

static void *arena_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	size_t used = atomic_load(&g_arena_used), start, end;
	do {
		start = (used + sizeof(struct arena_hdr) + align - 1) & ~(align - 1);
		end = start + size;
		if (end > ARENA_SIZE || end < start)
			return NULL;
	} while (!atomic_compare_exchange_weak(&g_arena_used, &used, end));
	struct arena_hdr *h = (struct arena_hdr *)(g_arena + start) - 1;
	h->size = size;
	return g_arena + start; /* static storage: already zero */
}

static size_t arena_size(const void *p)
{
	return ((const struct arena_hdr *)p - 1)->size;
}

/* ---- the real allocator ----------------------------------------------------- */

/* Every allocator function a hook here forwards to; the pointers take
 * their types from libc's prototypes. */
#define LW_HEAP_HOOKS(X)                                                            \
	X(malloc) X(free) X(calloc) X(realloc) X(posix_memalign) X(aligned_alloc)   \
	X(memalign) X(valloc) X(pvalloc) X(malloc_usable_size)

#define REAL_DECL(name) static __typeof__(name) *real_##name;
LW_HEAP_HOOKS(REAL_DECL)

static __thread int t_resolving __attribute__((tls_model("initial-exec")));
static _Atomic int g_resolved;

static void resolve(void)
{
	if (atomic_load_explicit(&g_resolved, memory_order_acquire))
		return;
	t_resolving = 1; /* dlsym's own allocations come from the arena */
#define RESOLVE(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name);
	LW_HEAP_HOOKS(RESOLVE)
#undef RESOLVE
	t_resolving = 0;
	atomic_store_explicit(&g_resolved, 1, memory_order_release);
}

void heap_hooks_init(void)
{
	resolve();
}

/* ---- the hooks: the real call, then one event (events.h) ------------------------
 *
 * lw_ev_alloc_wanted() is the sampler and the guard, inline: an unsampled
 * allocation costs a counter decrement.  LW_EV_ALLOC passes the hook's
 * caller (return address, stack pointer after return) for the call-site
 * cache.  lw_ev_free() drops a record before the real free. */

EXPORT void *malloc(size_t size)
{
	if (__builtin_expect(!real_malloc, 0)) {
		if (t_resolving)
			return arena_alloc(size, 16);
		resolve();
		if (!real_malloc)
			return arena_alloc(size, 16);
	}
	void *p = real_malloc(size);
	if (p && lw_ev_alloc_wanted(size))
		LW_EV_ALLOC(p, size);
	return p;
}

EXPORT void free(void *p)
{
	if (!p || in_arena(p))
		return;
	lw_ev_free(p, NULL);
	if (__builtin_expect(!real_free, 0))
		resolve();
	real_free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	if (__builtin_expect(!real_calloc, 0)) {
		size_t total;
		if (__builtin_mul_overflow(n, size, &total)) {
			errno = ENOMEM;
			return NULL;
		}
		if (t_resolving)
			return arena_alloc(total, 16);
		resolve();
		if (!real_calloc)
			return arena_alloc(total, 16);
	}
	void *p = real_calloc(n, size);
	if (p && lw_ev_alloc_wanted(n * size))
		LW_EV_ALLOC(p, n * size);
	return p;
}

EXPORT void *realloc(void *old, size_t size)
{
	if (old && in_arena(old)) {
		/* move a bootstrap block into the real heap */
		void *p = malloc(size);
		if (p) {
			size_t n = arena_size(old);
			memcpy(p, old, n < size ? n : size);
		}
		return p;
	}
	if (__builtin_expect(!real_realloc, 0))
		resolve();
	if (!old)
		return malloc(size);
	struct heap_old rec = { 0, 0, 0 };
	int had = lw_ev_free(old, &rec);
	void *p = real_realloc(old, size);
	if (!p) {
		/* size 0 freed the block (glibc); otherwise it failed and old lives on */
		if (had && size != 0)
			lw_ev_alloc_restore(old, &rec);
		return p;
	}
	if (lw_ev_alloc_wanted(size))
		LW_EV_ALLOC(p, size);
	return p;
}

EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(old, total);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (__builtin_expect(!real_posix_memalign, 0)) {
		if (t_resolving) {
			void *p = arena_alloc(size, align);
			if (!p)
				return ENOMEM;
			*out = p;
			return 0;
		}
		resolve();
	}
	int r = real_posix_memalign(out, align, size);
	if (r == 0 && *out && lw_ev_alloc_wanted(size))
		LW_EV_ALLOC(*out, size);
	return r;
}

EXPORT void *memalign(size_t align, size_t size)
{
	if (__builtin_expect(!real_memalign, 0)) {
		if (t_resolving)
			return arena_alloc(size, align);
		resolve();
	}
	void *p = real_memalign(align, size);
	if (p && lw_ev_alloc_wanted(size))
		LW_EV_ALLOC(p, size);
	return p;
}

/* Allocators dlsym() never calls (no bootstrap arena path), one shape. */
#define LW_PLAIN_ALLOC_HOOKS(X)                                                         \
	X(aligned_alloc, (size_t align, size_t size), (align, size))                    \
	X(valloc, (size_t size), (size))                                                \
	X(pvalloc, (size_t size), (size))

#define PLAIN_ALLOC_HOOK(name, params, args)                                            \
	EXPORT void *name params                                                        \
	{                                                                               \
		if (__builtin_expect(!real_##name, 0))                                  \
			resolve();                                                      \
		void *p = real_##name args;                                             \
		if (p && lw_ev_alloc_wanted(size))                                      \
			LW_EV_ALLOC(p, size);                                           \
		return p;                                                               \
	}
LW_PLAIN_ALLOC_HOOKS(PLAIN_ALLOC_HOOK)

EXPORT size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (in_arena(p))
		return arena_size(p);
	if (__builtin_expect(!real_malloc_usable_size, 0))
		resolve();
	return real_malloc_usable_size(p);
}
