/* SPDX-License-Identifier: MIT */
/*
 * The shim's lifecycle: start (the constructor), stop (the destructor),
 * fork (prepare and child handlers), the on_exit() status.  Exits through
 * exit/_exit/_Exit and exec are events (events.c).
 *
 * hooks.c keeps only the constructor/destructor stubs that call in here,
 * so that the unit tests can link this file without a constructor.
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>

#include "events.h"

SHIM_HIDDEN _Atomic int g_ready;

static int self_range(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && me >= lo && me < lo + ph->p_memsz) {
			stack_set_self_range(lo, lo + ph->p_memsz);
			return 1;
		}
	}
	return 0;
}

/* The owner token and the count of children sharing our memory (shim.h). */
SHIM_HIDDEN volatile uint64_t *g_seg_owner;
#if defined(__x86_64__)
SHIM_HIDDEN _Atomic int g_shared_vm;
#else
SHIM_HIDDEN _Atomic int g_shared_vm = 1; /* no vfork hook (hooks.c): always ask getpid() */
#endif

/* owner_setup - map the token page; without MADV_WIPEONFORK (before Linux
 * 4.14) there is none and segment_active() asks getpid() every time. */
static void owner_setup(void)
{
	void *p = prim_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	if (prim_madvise(p, 4096, MADV_WIPEONFORK) != 0) {
		prim_munmap(p, 4096);
		return;
	}
	g_seg_owner = p;
}

/* owner_claim - this image has just set up g_seg as its own. */
static void owner_claim(void)
{
	if (g_seg_owner)
		*g_seg_owner = 1;
}

/* set in the prepare handler: was the process threaded when it forked? */
static int g_fork_threaded;

static void atfork_prepare(void)
{
	/* __libc_single_threaded never becomes true again once a thread has
	 * existed; the number of tasks now is what matters (procfs gives a
	 * task directory nlink of 2 + tasks) */
	struct stat st;
	int threaded = !__libc_single_threaded &&
		       (prim_stat("/proc/self/task", &st) != 0 || st.st_nlink > 3);
	/* written only when it changes: a page the parent writes after each
	 * fork is a copy-on-write fault while the child lives */
	if (g_fork_threaded != threaded)
		g_fork_threaded = threaded;
	handles_before_fork();
	stack_before_fork();
}

static void atfork_parent(void)
{
	stack_after_fork(0);
}

/* fork_inherit - a fork child that just created its segment: take over
 * the parent's module table and open records, start recording. */
static void fork_inherit(const struct shim_segment *parent, const int *fresh, unsigned nfresh)
{
	modules_after_fork(parent);
	handle_copy_from(parent, fresh, nfresh);
	heap_init(g_cfg.heap_mode, g_cfg.sample_bytes);
	owner_claim();
	segment_mark_state(LW_STATE_RUNNING);
}

/*
 * ---- fork children create their segment when they first record
 *
 * Creating a segment costs a fork child more than the rest of a short
 * child's life under the shim (a tmpfs file, its identity from /proc, the
 * table copies: ~170 us against ~280 us for a whole fork-serve-exit round
 * natively), and a child that records nothing of its own would remove it at
 * exit anyway.  So in the default configuration a fork child starts
 * *pending*: no segment, nothing recorded, its memory holding the parent's
 * records as they were at the fork (the handle mirror, copied by fork).  Its
 * first record of its own -- a socket it opens or receives, a bad close, a
 * sampled heap block (lw_ev_alloc_pending) -- creates the segment
 * (lifecycle_fork_segment) and copies into it the inherited records whose
 * descriptors are still open on the same socket.  What happens to inherited
 * sockets before that (sends, closes, dups) is not recorded.  A fork child
 * of a pending image is pending from the same snapshot.
 *
 * LEAKWATCH_KEEP_EMPTY (what `leakwatch run` sets, to show every process)
 * and a fork run by a signal handler that interrupted the recorder (that
 * frame resumes in the child and expects g_seg) create it at the fork, as
 * before.
 */

int lifecycle_fork_segment(const int *fresh, unsigned nfresh)
{
	int want = 1;
	if (!atomic_compare_exchange_strong(&g_fork.pending, &want, 2))
		return 0; /* not pending, or another thread is creating it */
	/* a vfork child of the pending image shares this memory: never ours */
	if (prim_getpid() != g_fork.pending_pid) {
		atomic_store(&g_fork.pending, 1);
		return 0;
	}
	/* no handler may fork or jump out half-way through */
	sigset_t old;
	shim_signals_block(&old);
	static struct shim_segment parent; /* large; g_fork.pending == 2: ours alone */
	parent = g_seg;
	parent.hdr = g_fork.parent_hdr;
	parent.path[0] = '\0';
	/* segment_create fills g_seg's table pointers before it publishes hdr;
	 * until then they still name the parent's tables (see fork_pend) */
	int ok = segment_create(&parent) == 0;
	if (ok) {
		fork_inherit(&parent, fresh, nfresh);
		/* a fresh scan: the table copied is the parent's as it is now */
		if (!stack_unwind_disabled())
			modules_scan();
	}
	/* The parent's mapping stays, as in an eager child: a frame that read
	 * a table pointer before the fork may still hold it. */
	atomic_store(&g_fork.pending, 0);
	shim_signals_restore(&old);
	return ok;
}

/*
 * fork_pend - the fork child starts pending (see above).  It writes as
 * little as it can (each page it writes is a copy-on-write fault): no
 * errno, guard or g_ready change.  A signal handler that records meanwhile
 * finds either the parent's segment, which segment_active() refuses (the
 * owner token reads zero here, or the pid differs), or, once
 * g_fork.pending is set, the complete snapshot.  Only hdr is cleared: the
 * fork may have interrupted a hook between its read of g_seg.hdr and of a
 * table pointer (handle_is_open runs unguarded), and that frame resumes
 * here reading the parent's tables, still mapped, never written.  A
 * pending parent hands on its own snapshot; one whose other thread was
 * creating its segment at the fork has g_seg half rewritten, and its child
 * starts with nothing inherited.
 */
static void fork_pend(int pending)
{
	/* the parent's heap records stay in the parent's segment; blocks the
	 * child inherited and frees pass through as never seen: heap.c's own
	 * owner token reads zero here where ours works (both are WIPEONFORK
	 * pages; reading it would only fault it in) */
	if (!g_seg_owner)
		heap_init(LW_HEAP_OFF, 0);
	heap_after_fork();
	if (!pending)
		g_fork.parent_hdr = g_seg.hdr;
	else if (pending == 2)
		/* another thread of the pending parent was creating its segment
		 * (g_seg half rewritten): this child inherits no records */
		g_fork.parent_hdr = NULL;
	__atomic_store_n(&g_seg.hdr, NULL, __ATOMIC_RELEASE);
	g_fork.pending_pid = prim_getpid();
	atomic_store(&g_fork.pending, 1);
}

static void atfork_child(void)
{
	int pending = atomic_load(&g_fork.pending);

	segment_note_fork();
	stack_after_fork(1);
	prim_identity_reset();
	if (!g_seg.hdr && !pending)
		return;
	/* Another parent thread may have held the loader lock (which
	 * dl_iterate_phdr takes) when fork ran; glibc does not reset it in the
	 * child.  A threaded parent's child therefore records without stacks
	 * until it execs. */
	if (g_fork_threaded)
		stack_disable_unwind();
	/* a fork run by a handler that interrupted the recorder resumes that
	 * frame here, which expects g_seg: the eager path (a pending image's
	 * frames hold no segment) */
	if (pending || (!g_in_shim && !g_cfg.keep_empty)) {
		fork_pend(pending);
		return;
	}

	/* static: large, and this child has one thread now */
	static struct shim_segment parent;
	parent = g_seg;
	int saved = errno;
	/* that frame's guard is put back as it was when this returns */
	int was_in = g_in_shim;
	uintptr_t was_sp = t_guard_sp;
	_Atomic uint32_t *was_held = t_held_seq;
	atomic_store(&g_ready, 0);
	g_in_shim = 1;
	if (!g_heap_owner || *g_heap_owner)
		heap_init(LW_HEAP_OFF, 0);
	heap_after_fork();
	memset(&g_seg, 0, sizeof g_seg);
	if (segment_create(&parent) == 0) {
		fork_inherit(&parent, NULL, 0);
		atomic_store(&g_ready, 1);
	} else {
		/* No segment of our own (no room: a small /dev/shm): this child
		 * is not traced.  g_seg keeps naming the parent's mapping, made
		 * private below, whose owner token reads zero here, so
		 * segment_active() refuses every recording from now on, while a
		 * frame the fork interrupted still finds the tables it was using
		 * (zeroed table pointers there killed children with SIGSEGV). */
		g_seg = parent;
	}
	/* The parent's mappings are shared; the child must never write to
	 * them.  They stay mapped, privately, in every case: the fork may have
	 * interrupted a frame of ours that holds a pointer into them, inside
	 * the guard (was_in) or in an unguarded read (handle_is_open, between
	 * its loads of a chunk pointer and of the slot: unmapping them here
	 * killed 1 in ~2000 children forked by a signal handler, SIGSEGV). */
	segment_privatize(&parent);
	t_held_seq = was_held;
	t_guard_sp = was_sp;
	g_in_shim = was_in;
	errno = saved;
}

/* Returning from main() calls exit() inside libc, where no hook sees it;
 * on_exit() handlers are the one place that learns the status then. */
static void on_exit_status(int status, void *arg)
{
	(void)arg;
	lw_ev_exit(status, 0);
}

/*
 * Attached: the segment is new but the process is not.  Its start (the
 * header's clock pair, what uptime and the "never older than the process"
 * rule count from) goes back to the kernel's start time; the attach time is
 * kept apart, and what was open before gets it as its open time (a lower
 * bound of its age).
 */
static void attach_clock_fix(struct lw_header *h)
{
	uint64_t mono = prim_now_ns();
	unsigned long hz = getauxval(AT_CLKTCK);
	uint64_t boot = prim_boottime_ns_raw();
	atomic_store(&h->attach_monotonic_ns, mono);
	if (!hz || !h->proc_start_ticks)
		return;
	uint64_t started = h->proc_start_ticks * (1000000000ull / hz);
	if (started >= boot || boot - started >= mono)
		return;
	uint64_t age = boot - started;
	h->start_monotonic_ns = mono - age;
	h->start_realtime_ns -= age;
}

/* what the constructor was given, for a start deferred to leakwatch_attach() */
static const struct lifecycle_entry *g_entry;

/* The start proper; origin: what descriptors already open are. */
static int lifecycle_begin(const struct lifecycle_entry *e, uint16_t origin)
{
	int rc = LW_ATTACH_E_DISABLED;
	g_in_shim = 1;
	if (getauxval(AT_SECURE)) /* setuid/setgid: do nothing at all */
		goto out;
	config_load();
	if (g_cfg.disabled)
		goto out;
	dl_iterate_phdr(self_range, (void *)(uintptr_t)e->self);
	rc = LW_ATTACH_E_SEGMENT;
	if (segment_create(NULL) != 0)
		goto out;
	rc = LW_ATTACH_OK;
	owner_setup();
	owner_claim();
	modules_refresh();
	modules_scan();
	handle_scan_open(origin);
	python_init();
	e->resolve_heap();
	heap_init(g_cfg.heap_mode, g_cfg.sample_bytes);
	/* The main thread's first sampling gap starts now rather than at its
	 * first sampled-mode allocation (the same draw, heap_sample_slow): a
	 * process that forks before it ever allocated would otherwise hand
	 * every child a spent counter, and each child would draw its first gap
	 * (neg_log()) on its first malloc. */
	if (heap_mode() == LW_HEAP_SAMPLED && t_heap_until_sample == 0)
		(void)heap_sample_slow();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	on_exit(on_exit_status, NULL);
	if (origin == LW_ORIGIN_ATTACH)
		attach_clock_fix(g_seg.hdr);
	segment_mark_state(LW_STATE_RUNNING);
	atomic_store_explicit(&g_ready, 1, memory_order_release);
out:
	g_in_shim = 0;
	return rc;
}

void lifecycle_start(const struct lifecycle_entry *e)
{
	int saved = errno;
	e->resolve_hooks();
	g_entry = e;
	/* loaded into a running process: `leakwatch attach` calls
	 * leakwatch_attach() next, which starts (attach.c) */
	if (!attach_late_load(e->self))
		(void)lifecycle_begin(e, LW_ORIGIN_INHERITED);
	errno = saved;
}

int lifecycle_attach(void)
{
	int saved = errno;
	int rc = g_entry ? lifecycle_begin(g_entry, LW_ORIGIN_ATTACH) : LW_ATTACH_E_DISABLED;
	errno = saved;
	return rc;
}

void lifecycle_stop(void)
{
	int saved = errno;
	if (atomic_load(&g_ready) && segment_active()) {
		g_in_shim = 1;
		heap_thread_flush();
		heap_exit_settle(); /* one heap table left behind, not two */
		modules_refresh(); /* frames in objects dlopen()ed since the last event */
		segment_reach_rendezvous();
		g_in_shim = 0;
		if (atomic_load(&g_seg.hdr->state) == LW_STATE_RUNNING)
			segment_mark_state(LW_STATE_EXITED);
		/* A process that never held a socket leaves nothing to read; a shell
		 * script would otherwise leave one file per command behind. */
		segment_unlink_if_empty();
	}
	errno = saved;
}
