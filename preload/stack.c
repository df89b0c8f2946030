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
 *
 * Stacks are unwound with libgcc's DWARF unwinder (_Unwind_Backtrace), on a
 * per-thread side stack (see "side stack" below), so a hook needs only a few
 * hundred bytes of the host thread's stack.
 *
 * Not libunwind: the 1.6 series validates every memory access of unw_step
 * (Debian builds it with conservative checks) by writing the byte to a pipe
 * it opens at init.  That pipe would sit on fds 3 and 4 of every traced
 * program, and be read, written and reopened (closing the old numbers)
 * wherever a program that closed everything reused them.  Refusing it the
 * pipe makes every validated read fail, i.e. no stacks at all.  libgcc's
 * unwinder opens nothing, takes no lock (glibc's _dl_find_object), follows
 * only the CFI (no frame-pointer guessing, so there is nothing to validate)
 * and is what C++ exceptions already use in the same process.
 */
#include <unwind.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "shim.h"

#define PROBE_LIMIT LW_LIM_STACK_PROBES
#define FILL_SPINS  LW_LIM_STACK_FILL_SPINS

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

#define TCACHE_SLOTS LW_LIM_TCACHE_SLOTS
#define SITE_SLOTS   LW_LIM_SITE_SLOTS

/* Per-thread cache: stack hash -> id, valid for one segment (a fork child
 * starts a new segment, and its ids differ).  Keyed by the segment's
 * generation, not its address: a grandchild's segment may be mapped where
 * an older one was. */
struct tcache_entry {
	uint64_t hash;
	uint64_t gen;                   /* g_seg.gen the id belongs to */
	uint32_t id;
};

/*
 * Call-site cache entry (see "call-site cache" below): for each frame above
 * the first, the return address the first unwind found and where (its
 * offset above the key's stack pointer), side by side, so that a check
 * reads the entry's own lines and never the shared stack table.
 */
struct site_key {
	uint64_t ra, cfa;               /* first frame's return address and SP */
};
struct site_frame {
	uint64_t ra;                    /* the return address expected... */
	uint64_t off;                   /* ...at cfa + off */
};
struct site_entry {
	uint64_t gen;                   /* ids belong to one segment (g_seg.gen) */
	uint32_t id;
	uint32_t depth;
	uint32_t known_epoch;           /* module epoch at which the stack's frames were
					 * all found in the module table (0: not checked) */
	uint32_t pad;
	uint64_t pyhash;                /* python_chain_hash() at the fill (Python processes) */
	uint64_t span;                  /* bytes above cfa that the check reads */
	struct site_frame f[LW_STACK_MAX_FRAMES]; /* f[0] unused: the key is frame 0 */
};

/*
 * ---- side stack
 *
 * An unwinder needs kilobytes of stack (libgcc about 1.5 KiB, 4.5 on its
 * first call; libunwind 10), more than a 16 KiB thread or an 8 KiB
 * sigaltstack handler may have left.  So every unwind runs on a per-thread
 * side stack, mapped on the thread's first capture (256 KiB of address
 * space, MAP_NORESERVE: only the few pages touched cost memory): a
 * PROT_NONE guard page, the stack, and at the top
 * the thread's caches (kept out of static TLS, which glibc carves out of
 * every thread's stack).  lw_call_on_stack() switches to it with a standard
 * frame-pointer frame whose CFI (CFA = rbp + 16) leads the unwinder back
 * onto the host stack, so the unwind walks through the switch unchanged and
 * the shim's frames are dropped by address as before.
 *
 * A signal that interrupts the unwinder runs its handler on the side stack
 * (unless SA_ONSTACK); its hooks see the re-entry guard and pass through,
 * and SIDE_STACK_SIZE leaves it far more room than the unwinder uses.
 * The mapping goes at thread exit (a pthread key destructor); captures after
 * that, and when the mapping cannot be made, are skipped and counted.
 */
#define SIDE_GUARD      LW_LIM_SIDE_GUARD
#define SIDE_STACK_SIZE LW_LIM_SIDE_STACK

struct unw_area {
	struct tcache_entry cache[TCACHE_SLOTS];
	/* the keys apart from the entries: a lookup reads one or two cache
	 * lines, the hit entry's check the lines of its own frames, with the
	 * return address beside its slot offset (not the stack table's copy) */
	struct site_key site_keys[SITE_SLOTS];
	struct site_entry sites[SITE_SLOTS];
	unsigned site_next;
	int site_last;                  /* the entry the last capture used, -1: none */
	uint32_t site_calls, site_window, site_misses, site_cooldown; /* see SITE_WINDOW */
};

#define SIDE_AREA_SIZE (((sizeof(struct unw_area) + 4095u) & ~(size_t)4095u))
#define SIDE_MAP_SIZE  (SIDE_GUARD + SIDE_STACK_SIZE + SIDE_AREA_SIZE)

enum { SIDE_NONE = 0, SIDE_MAPPED, SIDE_GONE };

static __thread struct {
	struct unw_area *area;          /* NULL until mapped */
	uintptr_t lo, hi;               /* the side stack: [lo, hi), hi 16-aligned */
	uint32_t state;
	uint32_t dontfork;              /* the mapping is MADV_DONTFORK (see "fork") */
	/* this thread's own stack, for the call-site cache (stack_bounds()) */
	uint32_t bounds_state;
	uintptr_t bounds_lo, bounds_hi;
} t_unw __attribute__((tls_model("initial-exec")));

static pthread_key_t g_side_key;
static int g_side_key_ok;
static pthread_once_t g_side_once = PTHREAD_ONCE_INIT;

static void side_stack_release(void *arg);

static void side_key_create(void)
{
	g_side_key_ok = pthread_key_create(&g_side_key, side_stack_release) == 0;
}

/* lw_call_on_stack(arg, fn, top) - fn(arg) with the stack pointer at top. */
SHIM_HIDDEN uint32_t lw_call_on_stack(void *arg, uint32_t (*fn)(void *), uintptr_t top);

#if defined(__x86_64__)
#ifdef __CET__
#define LW_ENDBR "endbr64\n\t"
#else
#define LW_ENDBR ""
#endif
/* rbp keeps the host stack pointer; the CFI says so, for any unwinder
 * (libgcc, gdb, perf) walking out of the side stack. */
__asm__(".text\n\t"
	".p2align 4\n\t"
	".globl lw_call_on_stack\n\t"
	".hidden lw_call_on_stack\n\t"
	".type lw_call_on_stack, @function\n"
	"lw_call_on_stack:\n\t"
	".cfi_startproc\n\t"
	LW_ENDBR
	"pushq %rbp\n\t"
	".cfi_def_cfa_offset 16\n\t"
	".cfi_offset %rbp, -16\n\t"
	"movq %rsp, %rbp\n\t"
	".cfi_def_cfa_register %rbp\n\t"
	"movq %rdx, %rsp\n\t"
	"callq *%rsi\n\t"
	"movq %rbp, %rsp\n\t"
	"popq %rbp\n\t"
	".cfi_def_cfa %rsp, 8\n\t"
	"ret\n\t"
	".cfi_endproc\n\t"
	".size lw_call_on_stack, .-lw_call_on_stack\n");
#define HAVE_SIDE_STACK 1
#else
/* No trampoline for this architecture: unwind on the host stack. */
uint32_t lw_call_on_stack(void *arg, uint32_t (*fn)(void *), uintptr_t top)
{
	(void)top;
	return fn(arg);
}
#define HAVE_SIDE_STACK 0
#endif

int stack_on_side_stack(uintptr_t sp)
{
	return sp >= t_unw.lo && sp < t_unw.hi;
}

static void side_stack_release(void *arg)
{
	(void)arg;
	uintptr_t lo = t_unw.lo;
	/* never unmap the stack we run on (a thread exiting from a handler
	 * that interrupted the unwinder): leave it, it is only memory */
	int on_it = stack_on_side_stack((uintptr_t)__builtin_frame_address(0));
	/* unpublish before unmapping: a signal handler's hook may capture at
	 * any point of this, and must then see no side stack */
	t_unw.state = SIDE_GONE;
	t_unw.area = NULL;
	t_unw.lo = t_unw.hi = 0;
	atomic_signal_fence(memory_order_seq_cst);
	if (lo && !on_it)
		prim_munmap((char *)lo - SIDE_GUARD, SIDE_MAP_SIZE);
}

/* side_area - this thread's unwinder area, mapped on first use; NULL when
 * it cannot be (counted by the caller) or the thread is exiting. */
static struct unw_area *side_area(void)
{
	if (__builtin_expect(t_unw.area != NULL, 1))
		return t_unw.area;
	if (t_unw.state != SIDE_NONE)
		return NULL;
	pthread_once(&g_side_once, side_key_create);
	if (!g_side_key_ok)
		return NULL; /* could not be freed at thread exit */
	char *m = prim_mmap(NULL, SIDE_MAP_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (prim_mprotect(m, SIDE_GUARD, PROT_NONE) != 0 ||
	    pthread_setspecific(g_side_key, (void *)1) != 0) {
		prim_munmap(m, SIDE_MAP_SIZE);
		return NULL;
	}
	/* the scan for pointers at exit leaves this mapping out (segment.h: mem_tag) */
	uint64_t *tag = (uint64_t *)(void *)(m + SIDE_GUARD);
	tag[0] = shim_mem_tag();
	tag[1] = tag[0] ^ LW_MEM_TAG_XOR;
	tag[2] = SIDE_MAP_SIZE - SIDE_GUARD;
	/* see "fork" below */
	t_unw.dontfork = g_seg_owner && prim_madvise(m, SIDE_MAP_SIZE, MADV_DONTFORK) == 0;
	/* area last: a handler that sees it sees the stack bounds too */
	t_unw.lo = (uintptr_t)m + SIDE_GUARD;
	t_unw.hi = t_unw.lo + SIDE_STACK_SIZE;
	t_unw.state = SIDE_MAPPED;
	atomic_signal_fence(memory_order_seq_cst);
	t_unw.area = (struct unw_area *)(uintptr_t)t_unw.hi;
	return t_unw.area;
}

/*
 * ---- fork
 *
 * Side stacks are MADV_DONTFORK: a fork child gets none (stack_after_fork
 * forgets the forking thread's, and the child maps its own at its first
 * capture).  Nothing in them is valid in a child (the caches name the
 * parent's segment); copying their mappings cost every fork and exit two
 * VMAs and their pages, and the parent's next capture after each fork a
 * copy fault.  The exception is a fork run by a handler that interrupted
 * a recording frame (on the side stack or not): the child resumes that
 * frame, so for that one fork the mapping comes along.  Only where the owner
 * tokens work (MADV_WIPEONFORK, g_seg_owner): a child made without our
 * atfork handler (_Fork, a raw fork) then never records, so never touches
 * the side stack it lacks.
 */
uint64_t shim_mem_tag(void)
{
	static _Atomic uint64_t tag;
	uint64_t t = atomic_load_explicit(&tag, memory_order_relaxed);
	if (__builtin_expect(t != 0, 1))
		return t;
	/* not secret, only unlikely to be found in the program's memory */
	t = (prim_realtime_ns() ^ ((uint64_t)(uintptr_t)&tag << 7) ^ (uint64_t)prim_gettid()) *
		    0x9e3779b97f4a7c15ull | 1u;
	uint64_t none = 0;
	if (!atomic_compare_exchange_strong(&tag, &none, t))
		t = none;
	return t;
}

static __thread int t_side_kept __attribute__((tls_model("initial-exec")));

static void side_set_fork(int keep)
{
	if (t_unw.lo && t_unw.dontfork)
		(void)prim_madvise((char *)t_unw.lo - SIDE_GUARD, SIDE_MAP_SIZE,
				   keep ? MADV_DOFORK : MADV_DONTFORK);
}

void stack_before_fork(void)
{
	/* on the side stack, or anywhere inside a recording frame (a handler
	 * that interrupted it forks): that frame may hold a pointer into the
	 * caches (stack_capture_at runs on the host stack) */
	if (g_in_shim || stack_on_side_stack((uintptr_t)__builtin_frame_address(0))) {
		side_set_fork(1);
		t_side_kept = 1;
	}
}

void stack_after_fork(int child)
{
	if (__builtin_expect(t_side_kept, 0)) {
		side_set_fork(0);
		t_side_kept = 0;
		return;
	}
	if (child && t_unw.dontfork && t_unw.state == SIDE_MAPPED) {
		/* the mapping stayed in the parent; area first, as side_area
		 * publishes it last */
		t_unw.area = NULL;
		atomic_signal_fence(memory_order_seq_cst);
		t_unw.lo = t_unw.hi = 0;
		t_unw.dontfork = 0;
		t_unw.state = SIDE_NONE;
	}
}

/* on_side - fn(arg) on this thread's side stack; 0 (counted) without one. */
static uint32_t on_side(uint32_t (*fn)(void *), void *arg)
{
	if (!HAVE_SIDE_STACK || stack_on_side_stack((uintptr_t)__builtin_frame_address(0)))
		return fn(arg); /* already there (a capture calling a capture) */
	if (!side_area()) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	return lw_call_on_stack(arg, fn, t_unw.hi);
}

uint32_t stack_side_call(uint32_t (*fn)(void *), void *arg, uint32_t fail)
{
	if (!HAVE_SIDE_STACK || stack_on_side_stack((uintptr_t)__builtin_frame_address(0)))
		return fn(arg);
	if (!side_area())
		return fail;
	return lw_call_on_stack(arg, fn, t_unw.hi);
}

/*
 * ---- the stack the program runs on, for the call-site cache
 *
 * The cache re-reads stack slots recorded by an earlier unwind.  That is
 * only safe where the memory is certain to still be mapped: on the main
 * thread's stack ([sp, __libc_stack_end) is mapped when sp lies on it; the
 * kernel keeps every other mapping at least RLIMIT_STACK below its top) and
 * on a glibc thread's own stack block (mapped for the thread's lifetime;
 * glibc records it in the thread descriptor).  Coroutine stacks, signal
 * stacks and anything else get no cache.
 */
extern void *__libc_stack_end;
/* sizeof(struct pthread), exported by glibc for libthread_db */
extern const uint32_t _thread_db_sizeof_pthread __attribute__((weak));

#define MAIN_WINDOW_MAX LW_LIM_MAIN_WINDOW_MAX
#define MAIN_WINDOW_INF LW_LIM_MAIN_WINDOW_INF

static uintptr_t g_main_lo, g_main_hi, g_main_tp;
static uint32_t g_pd_size;       /* sizeof(struct pthread), 0 = unknown */
static int g_pd_off = -1;        /* word index of stackblock in it, -1 = not yet known */

static inline uintptr_t thread_pointer(void)
{
#if defined(__x86_64__)
	uintptr_t tp;
	__asm__("movq %%fs:0, %0" : "=r"(tp));
	return tp;
#else
	return 0;
#endif
}

/* pd_block_at - does word i of the descriptor at tp look like glibc's
 * (stackblock, stackblock_size) of a block that ends just above it? */
static int pd_block_at(const uintptr_t *w, unsigned i, uintptr_t tp, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t b = w[i], n = w[i + 1];
	uintptr_t end = tp + g_pd_size;
	/* glibc puts the descriptor at the block's top, aligned down to the
	 * static TLS alignment */
	if (b < 65536 || n < 16384 || n > (1ull << 40) || b + n < end || b + n - end >= 65536 || b >= tp)
		return 0;
	*lo = b;
	*hi = tp;
	return 1;
}

/* thread_block - this (non-main) thread's stack block, from its glibc
 * descriptor; the word offset is found once, on a thread whose stack
 * pointer lies in the candidate block, and must be the only candidate. */
static int thread_block(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
	uintptr_t tp = thread_pointer();
	if (!tp || g_pd_size < 64 || tp == g_main_tp)
		return 0;
	const uintptr_t *w = (const uintptr_t *)tp;
	unsigned words = g_pd_size / sizeof *w;
	int off = __atomic_load_n(&g_pd_off, __ATOMIC_RELAXED);
	if (off >= 0)
		return pd_block_at(w, (unsigned)off, tp, lo, hi);
	int found = -1;
	uintptr_t l = 0, h = 0;
	for (unsigned i = 0; i + 1 < words; i++) {
		uintptr_t a, b;
		if (pd_block_at(w, i, tp, &a, &b) && sp >= a && sp < b) {
			if (found >= 0)
				return 0; /* ambiguous: no cache */
			found = (int)i;
			l = a;
			h = b;
		}
	}
	if (found < 0)
		return 0;
	__atomic_store_n(&g_pd_off, found, __ATOMIC_RELAXED); /* racing threads find the same one */
	*lo = l;
	*hi = h;
	return 1;
}

enum { BOUNDS_UNKNOWN = 0, BOUNDS_KNOWN, BOUNDS_NONE };

/* stack_bounds - [lo, hi) of the stack sp is on, all of [sp, hi) mapped for
 * as long as the thread lives; 0 when that cannot be known. */
static __attribute__((noinline)) int stack_bounds_slow(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
	if (g_main_hi && thread_pointer() == g_main_tp) {
		/* kept in TLS like another thread's: the call-site cache's
		 * hit path reads only that */
		t_unw.bounds_lo = g_main_lo;
		t_unw.bounds_hi = g_main_hi;
		t_unw.bounds_state = BOUNDS_KNOWN;
	}
	if (t_unw.bounds_state == BOUNDS_UNKNOWN) {
		uintptr_t l, h;
		if (thread_block(sp, &l, &h)) {
			t_unw.bounds_lo = l;
			t_unw.bounds_hi = h;
			t_unw.bounds_state = BOUNDS_KNOWN;
		} else if (__atomic_load_n(&g_pd_off, __ATOMIC_RELAXED) >= 0 || g_pd_size < 64) {
			t_unw.bounds_state = BOUNDS_NONE; /* not a glibc thread block */
		} /* else: try again from another sp */
	}
	if (t_unw.bounds_state != BOUNDS_KNOWN)
		return 0;
	*lo = t_unw.bounds_lo;
	*hi = t_unw.bounds_hi;
	return sp >= *lo && sp < *hi;
}

static inline __attribute__((always_inline)) int stack_bounds(uintptr_t sp, uintptr_t *lo,
							      uintptr_t *hi)
{
	if (__builtin_expect(t_unw.bounds_state == BOUNDS_KNOWN, 1)) {
		*lo = t_unw.bounds_lo;
		*hi = t_unw.bounds_hi;
		return sp >= *lo && sp < *hi;
	}
	return stack_bounds_slow(sp, lo, hi);
}

void stack_set_self_range(uintptr_t lo, uintptr_t hi)
{
	g_self_lo = lo;
	g_self_hi = hi;

	g_main_tp = thread_pointer();
	g_pd_size = &_thread_db_sizeof_pthread ? _thread_db_sizeof_pthread : 0;
	struct rlimit rl;
	if (__libc_stack_end && getrlimit(RLIMIT_STACK, &rl) == 0) {
		uint64_t win = rl.rlim_cur == RLIM_INFINITY ? MAIN_WINDOW_INF : rl.rlim_cur;
		if (win > MAIN_WINDOW_MAX)
			win = MAIN_WINDOW_MAX;
		g_main_hi = (uintptr_t)__libc_stack_end;
		g_main_lo = g_main_hi > win ? g_main_hi - win : 0;
	}
	pthread_once(&g_side_once, side_key_create);
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

static uint32_t stack_intern_hashed(const uint64_t *frames, unsigned depth, uint64_t h);

uint32_t stack_intern(const uint64_t *frames, unsigned depth)
{
	if (depth > LW_STACK_MAX_FRAMES)
		depth = LW_STACK_MAX_FRAMES;
	return stack_intern_hashed(frames, depth, frames_hash(frames, depth));
}

/*
 * The stack table grows in chunks (segment.h); each chunk is a hash set of
 * its own, filled to half before the next, twice as large, is made.  A
 * lookup probes every chunk (few: the sizes double), an insert goes into
 * the newest.  Entries never move, so ids stay valid and readers never see
 * one torn by growth.  Two threads interning the same new stack while a
 * chunk is being added may store it twice; the analyzer merges equal stacks.
 */
static struct {
	uint64_t gen;                   /* g_seg.gen the counts belong to */
	_Atomic uint32_t fill[LW_CHUNKS_MAX];
} g_sfill;

static _Atomic uint32_t *chunk_fill(unsigned k)
{
	if (g_sfill.gen != g_seg.gen) { /* a new segment (fork child): alone here */
		memset(&g_sfill, 0, sizeof g_sfill);
		g_sfill.gen = g_seg.gen;
	}
	return &g_sfill.fill[k];
}

enum { PROBE_MISS, PROBE_FOUND, PROBE_FULL };

/* probe_chunk - look for the stack in chunk k; with `insert`, claim the
 * first empty slot for it.  *id gets the id when found or inserted. */
static int probe_chunk(unsigned k, const uint64_t *frames, unsigned depth, uint64_t h, int insert,
		       uint32_t *id)
{
	struct lw_stack *c = segment_chunk(LW_T_STACKS, k);
	uint32_t shift = g_seg.shift[LW_T_STACKS];
	uint64_t n = lw_chunk_entries(shift, k), first = lw_chunk_first(shift, k);
	if (!c)
		return PROBE_MISS;
	uint64_t idx = h & (n - 1);
	for (uint32_t probe = 0; probe < PROBE_LIMIT && probe < n; probe++, idx = (idx + 1) & (n - 1)) {
		struct lw_stack *s = &c[idx];
		uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);

		if (seq == 0) {
			if (!insert)
				return PROBE_MISS;
			_Atomic uint32_t *fill = chunk_fill(k);
			if (atomic_load_explicit(fill, memory_order_relaxed) >= n / 2)
				return PROBE_FULL;
			if (atomic_load_explicit(&g_seg.hdr->stacks.used, memory_order_relaxed) >=
			    g_seg.limit[LW_T_STACKS])
				return PROBE_MISS; /* LEAKWATCH_MAX_STACKS: counted by the caller */
			uint32_t zero;
			if (seq_lock(&s->seq, &zero)) {
				s->hash = h;
				s->depth = (uint16_t)depth;
				memcpy(s->frames, frames, depth * sizeof frames[0]);
				seq_unlock(&s->seq, zero);
				atomic_fetch_add_explicit(fill, 1, memory_order_relaxed);
				atomic_fetch_add_explicit(&g_seg.hdr->stacks.used, 1, memory_order_relaxed);
				*id = (uint32_t)(first + idx + 1);
				return PROBE_FOUND;
			}
			seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		}
		for (unsigned spin = 0; seq == 1 && spin < FILL_SPINS; spin++) {
			shim_cpu_relax();
			seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		}
		if (seq == 2 && s->hash == h && s->depth == depth &&
		    memcmp(s->frames, frames, depth * sizeof frames[0]) == 0) {
			*id = (uint32_t)(first + idx + 1);
			return PROBE_FOUND;
		}
	}
	return insert ? PROBE_FULL : PROBE_MISS;
}

static uint32_t stack_intern_hashed(const uint64_t *frames, unsigned depth, uint64_t h)
{
	struct lw_header *hdr = g_seg.hdr;
	uint32_t id = 0;
	if (!hdr || depth == 0)
		return 0;
	unsigned n = atomic_load_explicit(&hdr->chunks[LW_T_STACKS].count, memory_order_acquire);
	if (n == 0)
		return 0;
	for (unsigned k = n - 1; k-- > 0;)
		if (probe_chunk(k, frames, depth, h, 0, &id) == PROBE_FOUND)
			return id;
	for (unsigned k = n - 1; k < LW_CHUNKS_MAX; k++) {
		if (k > n - 1 && !segment_chunk_grow(LW_T_STACKS, k))
			break; /* refused: counted there, and as a drop below */
		int r = probe_chunk(k, frames, depth, h, 1, &id);
		if (r == PROBE_FOUND)
			return id;
		if (r == PROBE_MISS)
			break;
	}
	segment_counter_add(LW_CTR_DROP_STACK_FULL, 1);
	return 0;
}

/* ---- unwinding (libgcc's DWARF unwinder, on the side stack) */

struct walk {
	uint64_t frames[LW_STACK_MAX_FRAMES];
	uint64_t slots[LW_STACK_MAX_FRAMES]; /* where frame i's return address is */
	unsigned depth, want;
	int in_self;                    /* still in the shim's own frames */
	int want_slots;
	int signal;                     /* a signal frame was met */
	uintptr_t first_sp;             /* stack pointer of frames[0] */
};

/*
 * One callback per frame, the caller of _Unwind_Backtrace first.  In the
 * callback, _Unwind_GetCFA() is the CFA of the frame below (libgcc updates
 * the context's CFA when it steps), i.e. this frame's stack pointer, and the
 * return address that brought us here is at that stack pointer - 8.
 */
static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *ctx, void *arg)
{
	struct walk *w = arg;
	int before = 0;
	uintptr_t ip = (uintptr_t)_Unwind_GetIPInfo(ctx, &before);
	if (ip == 0)
		return _URC_END_OF_STACK;
	if (w->in_self) {
		if (ip >= g_self_lo && ip < g_self_hi)
			return _URC_NO_REASON; /* the shim's own frames */
		w->in_self = 0;
	}
	if (before)
		w->signal = 1; /* interrupted by a signal: its ip is exact */
	if (w->want_slots) {
		uintptr_t sp = (uintptr_t)_Unwind_GetCFA(ctx);
		if (w->depth == 0)
			w->first_sp = sp;
		w->slots[w->depth] = sp - 8;
	}
	w->frames[w->depth++] = ip;
	return w->depth >= w->want ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static void walk_stack(struct walk *w, int want_slots)
{
	w->depth = 0;
	w->want = g_cfg.stack_depth < LW_STACK_MAX_FRAMES ? g_cfg.stack_depth : LW_STACK_MAX_FRAMES;
	if (w->want == 0)
		w->want = 1;
	w->in_self = g_self_hi != 0;
	w->want_slots = want_slots;
	w->signal = 0;
	w->first_sp = 0;
	_Unwind_Backtrace(walk_frame, w);
}

/* capture_body - stack_capture() on the side stack. */
static uint32_t capture_body(void *arg)
{
	(void)arg;
	struct walk w;
	walk_stack(&w, 0);
	unsigned depth = w.depth;
	const uint64_t *frames = w.frames;
	if (depth == 0) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	uint64_t spliced[LW_STACK_MAX_FRAMES];
	/* a signal handler may have interrupted the interpreter while it
	 * linked a frame in: no Python frames then (C frames only) */
	if (python_active() && !w.signal) {
		depth = python_splice(frames, depth, spliced, LW_STACK_MAX_FRAMES);
		frames = spliced;
	}
	/*
	 * A per-thread cache of recent stacks by 64-bit hash keeps the hot
	 * path off the shared table (no memcmp, no shared cache lines).  Two
	 * different stacks with equal 64-bit hashes would be merged; at 2^-64
	 * per pair that is far below every other error source here.
	 */
	uint64_t h = frames_hash(frames, depth);
	struct unw_area *a = t_unw.area;
	struct tcache_entry *e = a ? &a->cache[h % TCACHE_SLOTS] : NULL;
	if (e && e->hash == h && e->gen == g_seg.gen)
		return e->id;
	uint32_t id = stack_intern_hashed(frames, depth, h);
	if (id && e) {
		e->hash = h;
		e->id = id;
		e->gen = g_seg.gen;
	}
	return id;
}

uint32_t stack_capture(void)
{
	if (g_no_unwind) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	return on_side(capture_body, NULL);
}

int stack_modules_known(uint32_t id)
{
	const struct lw_stack *s = g_seg.hdr ? stack_slot(id) : NULL;
	if (!s)
		return 1;
	unsigned depth = s->depth < LW_STACK_MAX_FRAMES ? s->depth : LW_STACK_MAX_FRAMES;
	return modules_cover(s->frames, depth);
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
 * The slots are read only where they are certain to be mapped: on the main
 * thread's stack or a glibc thread's own stack, with every slot between the
 * key's stack pointer and that stack's top (stack_bounds()).  A coroutine
 * stack freed and replaced by a smaller one at the same address would
 * otherwise be read past its end.
 *
 * Limits: that holds for frames whose CFA is the stack pointer plus a
 * constant, and for frame-pointer frames of fixed size.  A frame that
 * allocates a variable amount of stack (alloca, VLAs) and is re-entered
 * with a different amount, while stale stack memory still holds the old
 * return addresses at the old slots, would be attributed to the old chain.
 * Signal frames never validate and are never cached.  LEAKWATCH_STACK_CACHE=0 turns this off.
 */

/*
 * Fully associative: a direct-mapped cache thrashes when two hot call
 * chains (the same call site at two depths) share a slot and alternate.
 * Eight compares of two words, in two cache lines of keys kept apart from
 * the entries, cost less than one miss.
 */
static inline int site_find(const struct unw_area *a, uint64_t ra, uint64_t cfa)
{
	for (unsigned i = 0; i < SITE_SLOTS; i++)
		if (a->site_keys[i].ra == ra && a->site_keys[i].cfa == cfa)
			return (int)i;
	return -1;
}

/* site_check - do the return addresses at the entry's slots above cfa
 * still match?  One branch for the whole chain. */
static inline int site_check(const struct site_entry *e, uint64_t cfa)
{
	uint64_t diff = 0;
	for (unsigned i = 1; i < e->depth; i++)
		diff |= *(const uint64_t *)(uintptr_t)(cfa + e->f[i].off) ^ e->f[i].ra;
	return diff == 0;
}

struct site_fill_args {
	int slot;                       /* -1: take a victim */
	uint64_t ra, cfa;
};

/* site_fill_body - unwind recording each frame's return-address slot; on
 * the side stack. */
static uint32_t site_fill_body(void *arg)
{
	const struct site_fill_args *fa = arg;
	uint64_t ra = fa->ra, cfa = fa->cfa;
	struct walk w;
	walk_stack(&w, 1);
	unsigned depth = w.depth;
	const uint64_t *frames = w.frames, *slots = w.slots;
	/* the frame the hook saw, no signal frame, and every return address
	 * where the slots say (CFA - 8): only then can the chain be re-checked
	 * by re-reading the slots */
	int cacheable = depth > 0 && !w.signal && frames[0] == ra && w.first_sp == cfa;

	if (depth == 0) {
		segment_counter_add(LW_CTR_DROP_UNWIND, 1);
		return 0;
	}
	uint32_t id;
	uint64_t pyhash = 0;
	if (python_active() && !w.signal) {
		uint64_t spliced[LW_STACK_MAX_FRAMES];
		unsigned n = python_splice(frames, depth, spliced, LW_STACK_MAX_FRAMES);
		id = stack_intern(spliced, n);
		pyhash = python_chain_hash();
	} else {
		id = stack_intern(frames, depth);
	}
	uintptr_t lo = 0, hi = 0;
	if (cacheable && !stack_bounds((uintptr_t)cfa, &lo, &hi))
		cacheable = 0;
	uint64_t span = 0;
	for (unsigned i = 1; cacheable && i < depth; i++) {
		if (slots[i] < cfa || slots[i] + 8 > hi || slots[i] - cfa > UINT32_MAX - 8 ||
		    *(const uint64_t *)(uintptr_t)slots[i] != frames[i])
			cacheable = 0;
		else if (slots[i] + 8 - cfa > span)
			span = slots[i] + 8 - cfa;
	}
	struct unw_area *a = t_unw.area;
	if (id && cacheable && a) {
		unsigned k = fa->slot >= 0 ? (unsigned)fa->slot : a->site_next++ % SITE_SLOTS;
		struct site_entry *e = &a->sites[k];
		/* the key goes last: a handler's capture that interrupts this
		 * finds no key, or one whose entry is whole */
		a->site_keys[k].ra = 0;
		atomic_signal_fence(memory_order_seq_cst);
		e->gen = g_seg.gen;
		e->id = id;
		e->depth = depth;
		e->known_epoch = 0;
		e->span = span;
		e->pyhash = pyhash;
		for (unsigned i = 1; i < depth; i++) {
			e->f[i].ra = frames[i];
			e->f[i].off = slots[i] - cfa;
		}
		a->site_keys[k].cfa = cfa;
		atomic_signal_fence(memory_order_seq_cst);
		a->site_keys[k].ra = ra;
		a->site_last = (int)k;
	}
	return id;
}

/*
 * A miss costs an unwind that also records the slots.  A thread whose hot
 * call chains do not fit in the cache would pay it on most calls, so more
 * than SITE_MISS_MAX misses in a window of SITE_WINDOW calls switch the
 * thread to plain capture for SITE_COOLDOWN calls.
 */
#define SITE_WINDOW   LW_LIM_SITE_WINDOW
#define SITE_MISS_MAX LW_LIM_SITE_MISS_MAX
#define SITE_COOLDOWN LW_LIM_SITE_COOLDOWN

static uint32_t site_capture(uintptr_t ra, uintptr_t cfa, uint32_t epoch, int *known);

SHIM_HOT uint32_t stack_capture_at(uintptr_t ra, uintptr_t cfa)
{
	int known;
	return site_capture(ra, cfa, 0, &known);
}

SHIM_HOT uint32_t stack_capture_known(uintptr_t ra, uintptr_t cfa, uint32_t epoch, int *known)
{
	return site_capture(ra, cfa, epoch, known);
}

void stack_site_known(uint32_t id, uint32_t epoch)
{
	struct unw_area *a = t_unw.area;
	if (a && a->site_last >= 0 && a->sites[a->site_last].id == id)
		a->sites[a->site_last].known_epoch = epoch;
}

/* site_capture - the call-site cache's capture; *known: the entry hit was
 * found covered by the module table at `epoch` (nonzero) */
/* site_capture_slow - everything but a hit: the first capture of a thread,
 * a cache that is off or cooling down, an unknown stack, a miss (k: the
 * entry whose key matched and whose frames did not, -1: none, -2: not
 * looked up yet). */
static __attribute__((noinline)) uint32_t site_capture_slow(uintptr_t ra, uintptr_t cfa, int k)
{
	struct unw_area *a = t_unw.area;
	if (a)
		a->site_last = -1;
	if (!g_cfg.site_cache || g_no_unwind || (ra >= g_self_lo && ra < g_self_hi))
		return stack_capture();
	if (!a) /* first capture of this thread: maps the side stack */
		return stack_capture();
	if (a->site_cooldown) {
		a->site_cooldown--;
		return stack_capture();
	}
	/* the window is counted in calls, hits included (site_calls) */
	if (a->site_calls - a->site_window >= SITE_WINDOW) {
		a->site_window = a->site_calls;
		a->site_misses = 0;
	}
	a->site_calls++;
	uintptr_t lo, hi;
	if (!stack_bounds(cfa, &lo, &hi))
		return stack_capture(); /* an unknown stack: nothing may be re-read */
	if (k == -2) {
		/* the bounds were not known to the hit path: try the entry now */
		k = site_find(a, ra, cfa);
		if (k >= 0) {
			const struct site_entry *e = &a->sites[k];
			if (e->gen == g_seg.gen && e->span <= hi - cfa && site_check(e, cfa) &&
			    (!python_active() || e->pyhash == python_chain_hash())) {
				a->site_last = k;
				return e->id;
			}
		}
	}
	if (++a->site_misses > SITE_MISS_MAX) {
		a->site_misses = 0;
		a->site_cooldown = SITE_COOLDOWN;
		return stack_capture();
	}
	struct site_fill_args fa = { k, ra, cfa };
	return on_side(site_fill_body, &fa);
}

/* site_capture - the call-site cache's capture; *known: the entry hit was
 * found covered by the module table at `epoch` (nonzero).  The hit path is
 * a leaf (its stack bounds cached in the thread's TLS): no register saved,
 * no call, a few cache lines. */
static inline __attribute__((always_inline)) uint32_t site_capture(uintptr_t ra, uintptr_t cfa,
								   uint32_t epoch, int *known)
{
	struct unw_area *a = t_unw.area;
	*known = 0;
	/* Only the slow path fills entries and learns the thread's stack
	 * bounds, and only when the cache is on and the key is not the shim's
	 * own code: a key found here passed those checks.  (A hit needs no
	 * unwinder, so g_no_unwind, a fork child's, does not forbid it.) */
	if (__builtin_expect(a != NULL && !a->site_cooldown && t_unw.bounds_state == BOUNDS_KNOWN &&
			     cfa - t_unw.bounds_lo < t_unw.bounds_hi - t_unw.bounds_lo, 1)) {
		int k = site_find(a, ra, cfa);
		if (k >= 0) {
			const struct site_entry *e = &a->sites[k];
			if (e->gen == g_seg.gen && e->span <= t_unw.bounds_hi - cfa && site_check(e, cfa) &&
			    (__builtin_expect(!python_active(), 1) || e->pyhash == python_chain_hash())) {
				a->site_calls++;
				a->site_last = k;
				*known = epoch && e->known_epoch == epoch;
				return e->id;
			}
		}
		return site_capture_slow(ra, cfa, k);
	}
	return site_capture_slow(ra, cfa, -2);
}
