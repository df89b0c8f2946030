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

#include "shim.h"

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

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static size_t (*real_malloc_usable_size)(void *);

static __thread int t_resolving __attribute__((tls_model("initial-exec")));
static _Atomic int g_resolved;

static void resolve(void)
{
	if (atomic_load_explicit(&g_resolved, memory_order_acquire))
		return;
	t_resolving = 1;
	real_malloc = (__typeof__(real_malloc))dlsym(RTLD_NEXT, "malloc");
	real_free = (__typeof__(real_free))dlsym(RTLD_NEXT, "free");
	real_calloc = (__typeof__(real_calloc))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (__typeof__(real_realloc))dlsym(RTLD_NEXT, "realloc");
	real_posix_memalign = (__typeof__(real_posix_memalign))dlsym(RTLD_NEXT, "posix_memalign");
	real_aligned_alloc = (__typeof__(real_aligned_alloc))dlsym(RTLD_NEXT, "aligned_alloc");
	real_memalign = (__typeof__(real_memalign))dlsym(RTLD_NEXT, "memalign");
	real_valloc = (__typeof__(real_valloc))dlsym(RTLD_NEXT, "valloc");
	real_pvalloc = (__typeof__(real_pvalloc))dlsym(RTLD_NEXT, "pvalloc");
	real_malloc_usable_size = (__typeof__(real_malloc_usable_size))dlsym(RTLD_NEXT,
									 "malloc_usable_size");
	t_resolving = 0;
	atomic_store_explicit(&g_resolved, 1, memory_order_release);
}

/* heap_hooks_init - resolve the allocator early (called from the constructor). */
SHIM_HIDDEN void heap_hooks_init(void);
void heap_hooks_init(void)
{
	resolve();
}

/* ---- recording ----------------------------------------------------------------- */

/* A recorded call: the allocator is ready, tracing is on, this thread is not
 * already inside the shim, and the sampler picked this block. */
static inline int want_record(size_t size)
{
	return heap_should_sample(size) && !guard_busy(); /* 0 when heap tracking is off */
}

/*
 * The caller's return address and its stack pointer after our return (our
 * frame's CFA), as the hook saw them.
 */
#define RECORD(p, size) record((p), (size), CALLER_RA(), CALLER_CFA())

static void __attribute__((noinline)) record(void *p, size_t size, uintptr_t ra, uintptr_t cfa)
{
	int saved = errno;
	guard_set();
	heap_record_alloc(p, size, stack_capture_at(ra, cfa));
	guard_clear();
	errno = saved;
}

/* forget - drop the record of p before the real free.  Returns 1 when p was
 * recorded (its old fields in *stack, *size, *ns). */
static inline int forget(void *p, uint32_t *stack, uint64_t *size, uint64_t *ns)
{
	if (!heap_maybe_recorded(p) || guard_busy())
		return 0;
	guard_set();
	int r = heap_record_free(p, stack, size, ns);
	guard_clear();
	return r;
}

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
	if (p && want_record(size))
		RECORD(p, size);
	return p;
}

EXPORT void free(void *p)
{
	if (!p || in_arena(p))
		return;
	forget(p, NULL, NULL, NULL);
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
	if (p && want_record(n * size))
		RECORD(p, n * size);
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
	uint32_t stack = 0;
	uint64_t osize = 0, ons = 0;
	int had = forget(old, &stack, &osize, &ons);
	void *p = real_realloc(old, size);
	if (!p) {
		/* size 0 freed the block (glibc); otherwise it failed and old lives on */
		if (had && size != 0 && !guard_busy()) {
			int saved = errno;
			guard_set();
			heap_record_restore(old, osize, stack, ons);
			guard_clear();
			errno = saved;
		}
		return p;
	}
	if (want_record(size))
		RECORD(p, size);
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
	if (r == 0 && *out && want_record(size))
		RECORD(*out, size);
	return r;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	if (__builtin_expect(!real_aligned_alloc, 0))
		resolve();
	void *p = real_aligned_alloc(align, size);
	if (p && want_record(size))
		RECORD(p, size);
	return p;
}

EXPORT void *memalign(size_t align, size_t size)
{
	if (__builtin_expect(!real_memalign, 0)) {
		if (t_resolving)
			return arena_alloc(size, align);
		resolve();
	}
	void *p = real_memalign(align, size);
	if (p && want_record(size))
		RECORD(p, size);
	return p;
}

EXPORT void *valloc(size_t size)
{
	if (__builtin_expect(!real_valloc, 0))
		resolve();
	void *p = real_valloc(size);
	if (p && want_record(size))
		RECORD(p, size);
	return p;
}

EXPORT void *pvalloc(size_t size)
{
	if (__builtin_expect(!real_pvalloc, 0))
		resolve();
	void *p = real_pvalloc(size);
	if (p && want_record(size))
		RECORD(p, size);
	return p;
}

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
