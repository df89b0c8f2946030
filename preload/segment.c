/* SPDX-License-Identifier: MIT */
/*
 * The segment file: creation, layout, header, state changes.
 *
 * Every system call goes through prim.h, so creating the segment never
 * re-enters the hooks.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#include "shim.h"

SHIM_HIDDEN struct shim_segment g_seg;
/* Defined next to g_seg on purpose: a fork child writes both before it
 * records anything (g_seg.hdr and this), and every page it writes is a
 * copy-on-write fault (tests/test_shim_link.c checks they share a page). */
SHIM_HIDDEN struct shim_forkstate g_fork;
/*
 * Without a system call where that is certain (see shim.h, lw_owner_state):
 * a child that shares our memory asks the kernel for its pid, a fork-like
 * child without a segment of its own reads a wiped owner token.
 */
int segment_active_slow(void)
{
	return g_seg.pid == prim_getpid();
}

void segment_counter_add(enum lw_counter c, uint64_t n)
{
	struct lw_header *h = g_seg.hdr;
	if (!h)
		return;
	atomic_fetch_add_explicit(&h->counters[c], n, memory_order_relaxed);
	/* Socket events, and heap totals (flushed every few hundred events per
	 * thread), move the last-activity time: the only clock a SIGKILLed
	 * process leaves behind. */
	if (c == LW_CTR_EVENTS || c == LW_CTR_HEAP_ALLOCS || c == LW_CTR_HEAP_FREES)
		atomic_store_explicit(&h->last_active_ns, prim_event_ns(), memory_order_relaxed);
}

void segment_event_at(uint64_t now_ns)
{
	struct lw_header *h = g_seg.hdr;
	if (!h)
		return;
	atomic_fetch_add_explicit(&h->counters[LW_CTR_EVENTS], 1, memory_order_relaxed);
	atomic_store_explicit(&h->last_active_ns, now_ns, memory_order_relaxed);
}

/* fmt_path - "<dir>/leakwatch.<pid>[.<n>]" without stdio's allocating paths. */
static void fmt_path(char *out, size_t cap, const char *dir, pid_t pid, int n)
{
	if (n > 0)
		snprintf(out, cap, "%s/" LW_SEGMENT_PREFIX "%d.%d", dir, (int)pid, n);
	else
		snprintf(out, cap, "%s/" LW_SEGMENT_PREFIX "%d", dir, (int)pid);
}

/* read_small_file - read up to cap-1 bytes of a /proc file into buf. */
static ssize_t read_small_file(const char *path, char *buf, size_t cap)
{
	int fd = prim_open(path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t n, total = 0;
	if (fd < 0)
		return -1;
	while ((size_t)total + 1 < cap && (n = prim_read(fd, buf + total, cap - 1 - (size_t)total)) > 0)
		total += n;
	prim_close(fd);
	buf[total] = '\0';
	return total;
}

uint64_t segment_proc_start_ticks(int pid)
{
	char path[32], buf[1024];
	if (pid > 0)
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
	else
		snprintf(path, sizeof path, "/proc/self/stat");
	if (read_small_file(path, buf, sizeof buf) <= 0)
		return 0;
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

int segment_counters_empty(const _Atomic uint64_t *c)
{
	/* sockets the image only inherited (exec, fork) are not its own doing */
	return atomic_load(&c[LW_CTR_SOCK_OPENED]) == atomic_load(&c[LW_CTR_SOCK_INHERITED]) &&
	       atomic_load(&c[LW_CTR_BAD_CLOSES]) == 0 && atomic_load(&c[LW_CTR_HEAP_ALLOCS]) == 0;
}

/* heap_any_live - is any heap block still recorded?  heap.c has the real
 * answer; without it, assume so (a segment is only ever kept too often). */
#ifndef LW_UNITY /* the unit with heap.c has the real one */
__attribute__((weak)) int heap_any_live(void)
{
	return 1;
}
#endif

/* own_open - an open record of a descriptor this image made itself (not
 * one it inherited through exec or fork). */
static int own_open(void)
{
	uint32_t hw = atomic_load_explicit(&g_seg.hdr->handles.used, memory_order_acquire);
	for (uint32_t fd = 0; fd < hw; fd++) {
		const struct lw_handle *h = segment_entry(LW_T_HANDLES, fd);
		if (!h)
			break;
		if (__atomic_load_n(&h->state, __ATOMIC_RELAXED) == LW_H_OPEN &&
		    h->origin != LW_ORIGIN_INHERITED && h->origin != LW_ORIGIN_FORK)
			return 1;
	}
	return 0;
}

/*
 * At exit: a segment with nothing left in it is removed — nothing of its
 * own still open, no bad close, no heap block still allocated.  That is
 * every short-lived child of a fork-per-connection server that cleaned up
 * after itself.  What it recorded along the way is gone with it; the
 * totals are not worth a file per process.
 */
void segment_unlink_if_empty(void)
{
	struct lw_header *h = g_seg.hdr;
	if (!h || g_cfg.keep_empty)
		return;
	const _Atomic uint64_t *c = h->counters;
	/* bad closes, and the garbage collector's closes (ring entries too) */
	if (atomic_load(&c[LW_CTR_BAD_CLOSES]) || atomic_load(&h->badcloses.used) || atomic_load(&h->incomplete) ||
	    own_open())
		return;
	uint64_t allocs = atomic_load(&c[LW_CTR_HEAP_ALLOCS]), frees = atomic_load(&c[LW_CTR_HEAP_FREES]);
	if (allocs && (allocs > frees || heap_any_live()))
		return;
	prim_unlink(g_seg.path);
}

/*
 * The reachability rendezvous (segment.h, reach_req): under `leakwatch run`
 * (LEAKWATCH_REACH_WAIT and LEAKWATCH_RUN_PID set) a process that still has
 * heap blocks at exit asks run to classify them while its memory is intact:
 * run stops every thread with ptrace, scans, and answers in reach_ack.
 * Nobody answering in reach_wait_ms, or run gone, ends the wait; a scan in
 * progress is waited for as long as run lives.  No descriptor, no
 * allocation, no signal of ours: a store, utimensat on the file (the event
 * run's inotify watch wakes on) and futex waits.
 */
void segment_reach_rendezvous(void)
{
	struct lw_header *h = g_seg.hdr;
	if (!h || !g_cfg.reach_wait_ms || !g_cfg.run_pid || h->heap_mode == LW_HEAP_OFF || !heap_any_live())
		return;
	int saved = errno;
	atomic_store_explicit(&h->reach_ack, LW_REACH_ACK_NONE, memory_order_relaxed);
	atomic_store_explicit(&h->reach_req, LW_REACH_REQ_WAITING, memory_order_release);
	(void)syscall(SYS_utimensat, AT_FDCWD, g_seg.path, NULL, 0);
	uint64_t deadline = prim_now_ns() + (uint64_t)g_cfg.reach_wait_ms * 1000000ull;
	for (;;) {
		uint32_t a = atomic_load_explicit(&h->reach_ack, memory_order_acquire);
		if (a == LW_REACH_ACK_DONE || a == LW_REACH_ACK_FAILED)
			break;
		if (a == LW_REACH_ACK_NONE && prim_now_ns() >= deadline)
			break;
		if (syscall(SYS_kill, (pid_t)g_cfg.run_pid, 0) != 0 && errno == ESRCH)
			break;
		struct timespec slice = { 0, 50 * 1000 * 1000 };
		(void)syscall(SYS_futex, &h->reach_ack, FUTEX_WAIT, a, &slice, NULL, 0);
	}
	uint32_t a = atomic_load_explicit(&h->reach_ack, memory_order_acquire);
	if (a != LW_REACH_ACK_DONE && a != LW_REACH_ACK_FAILED)
		atomic_store_explicit(&h->reach_req, LW_REACH_REQ_GAVE_UP, memory_order_release);
	errno = saved;
}

/* segment_file_is_empty - a finished segment that never recorded a socket,
 * a bad close or a heap block: nothing in it is worth keeping. */
static int segment_file_is_empty(const char *path)
{
	struct lw_header h;
	int fd = prim_open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	ssize_t n = prim_pread(fd, &h, sizeof h, 0);
	prim_close(fd);
	if (n != (ssize_t)sizeof h || h.magic != LW_MAGIC)
		return 0;
	uint32_t state = atomic_load_explicit(&h.state, memory_order_relaxed);
	return (state == LW_STATE_EXECED || state == LW_STATE_EXITED) && segment_counters_empty(h.counters);
}

/*
 * An existing leakwatch.<pid> is the segment of an earlier image of this
 * pid: our own pre-exec image, or a dead process whose pid was reused.
 * Either way it is a record worth keeping, so it is renamed to
 * leakwatch.<pid>.<n>, never overwritten.
 */
static int archive_existing(const char *path, pid_t pid)
{
	char dst[sizeof g_seg.path];
	struct stat st;

	if (prim_lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != prim_geteuid())
		return -1;
	if (!g_cfg.keep_empty && segment_file_is_empty(path))
		return prim_unlink(path);
	for (int n = 1; n < LW_LIM_ARCHIVE_NAMES; n++) {
		fmt_path(dst, sizeof dst, g_cfg.dir, pid, n);
		if (prim_rename_noreplace(path, dst) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}


void segment_note_fork(void)
{
	g_fork.boot_ns = prim_boottime_ns_raw();
}

static void header_fill_identity(struct lw_header *h, const struct lw_header *parent)
{
	char buf[LW_CMDLINE_MAX];
	ssize_t n;

	h->pid = (int32_t)prim_getpid();
	h->ppid = (int32_t)prim_getppid();
	h->uid = (uint32_t)prim_geteuid();
	unsigned long hz = getauxval(AT_CLKTCK);
	if (parent && g_fork.boot_ns && hz) {
		/* A fork child: the kernel's start time (boot-time clock ticks)
		 * is the tick of the fork's boot-time reading or the one before,
		 * and reading /proc/self/stat in a fresh child costs ~30 us, the
		 * price of the fork itself. */
		h->proc_start_ticks = g_fork.boot_ns / (1000000000ull / hz);
		h->flags |= LW_HDR_START_TICKS_BOOTTIME;
	} else {
		h->proc_start_ticks = segment_proc_start_ticks(0);
	}
	/* Take the pair back to back so wall = realtime + (t - monotonic). */
	h->start_realtime_ns = prim_realtime_ns();
	h->start_monotonic_ns = prim_now_ns();
	h->stack_depth = g_cfg.stack_depth;
	h->heap_mode = LW_HEAP_OFF;
	h->sample_bytes = 0;
	if (parent) {
		/* a fork child runs its parent's program with its arguments */
		memcpy(h->exe, parent->exe, sizeof h->exe);
		memcpy(h->cmdline, parent->cmdline, sizeof h->cmdline);
		h->exe[sizeof h->exe - 1] = '\0';
		h->cmdline[sizeof h->cmdline - 1] = '\0';
		return;
	}
	n = prim_readlink("/proc/self/exe", h->exe, sizeof h->exe - 1);
	h->exe[n > 0 ? n : 0] = '\0';
	n = read_small_file("/proc/self/cmdline", buf, sizeof buf);
	if (n > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		while (n > 0 && buf[n - 1] == ' ')
			n--;
		buf[n] = '\0';
		memcpy(h->cmdline, buf, (size_t)n + 1);
	}
}

/* ---- growth: the grow lock, reservations, new mappings ------------------------------------- */

static _Atomic int g_grow_lock;

int segment_grow_lock(sigset_t *old)
{
	/* every signal blocked while it is held: no handler can interrupt a
	 * growth, leave it with siglongjmp or fork in the middle of it */
	shim_signals_block(old);
	for (unsigned i = 0; i < LW_LIM_GROW_SPINS; i++) {
		int z = 0;
		if (atomic_compare_exchange_weak_explicit(&g_grow_lock, &z, 1, memory_order_acquire,
							  memory_order_relaxed))
			return 1;
		if (i % 64 == 63)
			prim_sched_yield(); /* the holder is making a system call */
		else
			shim_cpu_relax();
	}
	shim_signals_restore(old);
	return 0;
}

void segment_grow_unlock(const sigset_t *old)
{
	atomic_store_explicit(&g_grow_lock, 0, memory_order_release);
	shim_signals_restore(old);
}

void segment_mark_incomplete(uint32_t bits)
{
	if (g_seg.hdr)
		atomic_fetch_or_explicit(&g_seg.hdr->incomplete, bits, memory_order_relaxed);
}

/*
 * reserve_mapped - allocate every page of [p, p + len), a shared mapping of
 * the segment at file offset off, without touching it: MADV_POPULATE_WRITE
 * (Linux 5.14) reports a full filesystem as an error where a store would
 * raise SIGBUS; older kernels get fallocate() through a brief descriptor.
 * On failure the pages it did allocate are given back.
 */
static int reserve_mapped(void *p, uint64_t off, uint64_t len)
{
	if (prim_madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno == EINVAL) {
		int fd = prim_open(g_seg.path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
		if (fd >= 0) {
			int r = prim_fallocate(fd, (off_t)off, (off_t)len);
			prim_close(fd);
			if (r == 0)
				return 0;
		}
	}
	(void)prim_madvise(p, len, MADV_REMOVE);
	return -1;
}

/*
 * map_new - map and reserve len bytes of new file space (grow lock held).
 * The new mapping is made from the header's (mremap with old_size 0 maps
 * the file again from offset 0; the part before `off` is dropped), so
 * growing never opens a descriptor in the program's range.
 */
static void *map_new(uint64_t len, uint64_t *off_out)
{
	uint64_t off = g_seg.file_end;
	if (off + len > g_seg.span || !budget_admit(len))
		return NULL;
	char *m = prim_mremap_dup(g_seg.hdr, off + len);
	if (m == MAP_FAILED)
		return NULL;
	if (off)
		prim_munmap(m, off);
	m += off;
	if (reserve_mapped(m, off, len) != 0) {
		prim_munmap(m, len);
		return NULL;
	}
	g_seg.file_end = off + len;
	atomic_fetch_add_explicit(&g_seg.hdr->reserved_bytes, len, memory_order_relaxed);
	*off_out = off;
	return m;
}

static void refuse(uint32_t bits)
{
	segment_counter_add(LW_CTR_DROP_RESERVE, 1);
	segment_mark_incomplete(bits);
}

/* chunk_make - publish chunk k of table t (grow lock held, chunks before it
 * exist): reader-visible offset first, then the count (release), then the
 * pointer the shim's own threads use. */
static void *chunk_make(unsigned t, unsigned k, void *premapped, uint64_t off)
{
	struct lw_chunks *c = &g_seg.hdr->chunks[t];
	c->off[k] = off;
	atomic_store_explicit(&c->count, k + 1, memory_order_release);
	struct lw_table *tab = &g_seg.hdr->stacks + t;
	tab->capacity = (uint32_t)lw_chunk_first(g_seg.shift[t], k + 1);
	__atomic_store_n(&g_seg.chunk[t][k], premapped, __ATOMIC_RELEASE);
	return premapped;
}

void *segment_chunk_grow(unsigned t, unsigned k)
{
	void *c = segment_chunk(t, k);
	if (c)
		return c;
	/* a configured limit: the caller counts its own drop, nothing is
	 * incomplete for lack of space */
	if (!g_seg.hdr || t >= LW_T_NUM || k >= LW_CHUNKS_MAX ||
	    lw_chunk_first(g_seg.shift[t], k) >= g_seg.limit[t])
		return NULL;
	sigset_t old;
	if (!segment_grow_lock(&old)) {
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
		return NULL;
	}
	for (unsigned j = 0; j <= k; j++) {
		if (segment_chunk(t, j))
			continue;
		uint64_t off, len = lw_chunk_bytes(g_seg.shift[t], j, g_seg.esize[t]);
		void *m = map_new(len, &off);
		if (!m) {
			refuse(1u << t);
			break;
		}
		chunk_make(t, j, m, off);
	}
	segment_grow_unlock(&old);
	return segment_chunk(t, k);
}

void *segment_entry_grow_slow(unsigned t, uint64_t idx)
{
	void *e = segment_entry_in(&g_seg, t, idx);
	if (e || !g_seg.hdr)
		return e;
	uint64_t within;
	unsigned k = lw_chunk_of(g_seg.shift[t], idx, &within);
	if (idx >= g_seg.limit[t] || !segment_chunk_grow(t, k))
		return NULL;
	return segment_entry_in(&g_seg, t, idx);
}

uint64_t segment_capacity(unsigned t)
{
	if (!g_seg.hdr)
		return 0;
	uint32_t n = atomic_load_explicit(&g_seg.hdr->chunks[t].count, memory_order_acquire);
	return lw_chunk_first(g_seg.shift[t], n);
}

void *segment_extent_new(uint64_t bytes, uint64_t *off)
{
	if (!g_seg.hdr)
		return NULL;
	sigset_t old;
	if (!segment_grow_lock(&old)) {
		segment_counter_add(LW_CTR_DROP_BUSY, 1);
		return NULL;
	}
	uint64_t len = (bytes + 4095u) & ~4095ull;
	unsigned slot = 0;
	while (slot < LW_LIM_EXTENTS && g_seg.ext[slot].p)
		slot++;
	void *m = slot < LW_LIM_EXTENTS ? map_new(len, off) : NULL;
	if (m) {
		g_seg.ext[slot].off = *off;
		g_seg.ext[slot].len = len;
		__atomic_store_n(&g_seg.ext[slot].p, m, __ATOMIC_RELEASE);
	}
	segment_grow_unlock(&old);
	if (!m)
		segment_counter_add(LW_CTR_DROP_RESERVE, 1);
	return m;
}

void segment_extent_retire(void *p, uint64_t off, uint64_t bytes)
{
	(void)off;
	bytes = (bytes + 4095u) & ~4095ull;
	sigset_t old;
	if (!segment_grow_lock(&old))
		return; /* kept: costs pages, never correctness */
	for (unsigned i = 0; i < LW_LIM_EXTENTS; i++)
		if (g_seg.ext[i].p == p)
			g_seg.ext[i].p = NULL;
	/* A second mapping of the pages, so that the range can be replaced by
	 * zero pages first: a thread still probing it never faults the file
	 * again.  Then the file's pages are released through the second one. */
	void *dup = prim_mremap_dup(p, bytes);
	void *z = prim_mmap(p, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (dup != MAP_FAILED) {
		if (z != MAP_FAILED && prim_madvise(dup, bytes, MADV_REMOVE) == 0 && g_seg.hdr)
			atomic_fetch_sub_explicit(&g_seg.hdr->reserved_bytes, bytes, memory_order_relaxed);
		prim_munmap(dup, bytes);
	}
	segment_grow_unlock(&old);
}

/* in_first - p lies in the segment's first mapping (header, chunks 0, the
 * first heap table): remapped or unmapped with it. */
static int in_first(const struct shim_segment *s, const void *p)
{
	return (const char *)p >= (const char *)s->hdr && (const char *)p < (const char *)s->hdr + s->size;
}

void segment_privatize(const struct shim_segment *parent)
{
	sigset_t old;
	shim_signals_block(&old);
	int fd = prim_open(parent->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd >= 0) {
		const int prot = PROT_READ | PROT_WRITE, fl = MAP_PRIVATE | MAP_FIXED;
		(void)prim_mmap(parent->hdr, parent->size, prot, fl, fd, 0);
		for (unsigned t = 0; t < LW_T_NUM; t++)
			for (unsigned k = 1; k < LW_CHUNKS_MAX && parent->chunk[t][k]; k++)
				(void)prim_mmap(parent->chunk[t][k],
						lw_chunk_bytes(parent->shift[t], k, parent->esize[t]), prot, fl, fd,
						(off_t)parent->hdr->chunks[t].off[k]);
		for (unsigned i = 0; i < LW_LIM_EXTENTS; i++)
			if (parent->ext[i].p && !in_first(parent, parent->ext[i].p))
				(void)prim_mmap(parent->ext[i].p, parent->ext[i].len, prot, fl, fd,
						(off_t)parent->ext[i].off);
		prim_close(fd);
	}
	shim_signals_restore(&old);
}

/* ---- creation ---------------------------------------------------------------------------------- */

/* First-chunk sizes (entries = 1 << shift): what a process that records
 * little needs, about 100 KiB with the header. */
static const uint32_t g_shift[LW_T_NUM] = {
	[LW_T_STACKS] = LW_LIM_SHIFT_STACKS, [LW_T_MODULES] = LW_LIM_SHIFT_MODULES,
	[LW_T_HANDLES] = LW_LIM_SHIFT_HANDLES, [LW_T_BADCLOSES] = LW_LIM_SHIFT_BADCLOSES,
};

/* tables_init - g_seg's table geometry, and h's descriptors (h may be NULL). */
static void tables_init(struct lw_header *h)
{
	const uint32_t esize[LW_T_NUM] = {
		[LW_T_STACKS] = sizeof(struct lw_stack), [LW_T_MODULES] = sizeof(struct lw_module),
		[LW_T_HANDLES] = sizeof(struct lw_handle), [LW_T_BADCLOSES] = sizeof(struct lw_badclose),
	};
	const uint64_t limit[LW_T_NUM] = {
		[LW_T_STACKS] = g_cfg.max_stacks, [LW_T_MODULES] = LW_LIM_MODULES,
		[LW_T_HANDLES] = g_cfg.max_fds, [LW_T_BADCLOSES] = LW_LIM_BADCLOSES,
	};
	for (unsigned t = 0; t < LW_T_NUM; t++) {
		g_seg.shift[t] = g_shift[t];
		g_seg.esize[t] = esize[t];
		g_seg.limit[t] = limit[t];
		if (h) {
			h->chunks[t].shift = g_shift[t];
			(&h->stacks)[t].entry_size = esize[t];
		}
	}
	if (h)
		h->heap.entry_size = sizeof(struct lw_alloc);
}

/* The file's logical size: large and sparse (only reserved ranges hold
 * pages); smaller where the filesystem limits file sizes. */
static const uint64_t g_spans[] = { 1ull << 40, 1ull << 36, (1ull << 32) - 4096 };

/* The first heap table's bytes, reserved with the segment (heap.c takes it
 * with segment_extent_initial): 0 with heap tracking off. */
static uint64_t initial_heap_bytes(void)
{
	switch (g_cfg.heap_mode) {
	case LW_HEAP_SAMPLED: return (uint64_t)LW_LIM_HEAP_FIRST_SAMPLED * sizeof(struct lw_alloc);
	case LW_HEAP_FULL: return (uint64_t)LW_LIM_HEAP_FIRST_FULL * sizeof(struct lw_alloc);
	default: return 0;
	}
}

int segment_create(const struct shim_segment *parent)
{
	pid_t pid = prim_getpid();
	int fd;

	atomic_store_explicit(&g_grow_lock, 0, memory_order_relaxed); /* a fork child's */
	fmt_path(g_seg.path, sizeof g_seg.path, g_cfg.dir, pid, 0);
	fd = prim_open(g_seg.path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && archive_existing(g_seg.path, pid) == 0)
		fd = prim_open(g_seg.path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		shim_log("cannot create %s: errno %d; not tracing", g_seg.path, errno);
		return -1;
	}
	/* a fork child keeps its parent's span and budget: same filesystem */
	uint64_t span = parent && parent->span ? parent->span : 0;
	if (span && prim_ftruncate(fd, (off_t)span) != 0)
		span = 0;
	for (unsigned i = 0; i < sizeof g_spans / sizeof g_spans[0] && !span; i++)
		if (prim_ftruncate(fd, (off_t)g_spans[i]) == 0)
			span = g_spans[i];
	/* The header, the first chunk of every table and the first heap table:
	 * one range, reserved before anything touches it, one mapping.  Nothing
	 * is traced if it does not fit. */
	uint64_t first = LW_HEADER_SIZE, off[LW_T_NUM];
	tables_init(NULL);
	for (unsigned t = 0; t < LW_T_NUM; t++) {
		off[t] = first;
		first += lw_chunk_bytes(g_seg.shift[t], 0, g_seg.esize[t]);
	}
	uint64_t heap_off = first, heap_len = (initial_heap_bytes() + 4095u) & ~4095ull;
	first += heap_len;
	uint64_t budget = parent && parent->hdr ? budget_inherit(parent->hdr->budget_bytes) : budget_init();
	if (!span || !budget_admit(first) || prim_fallocate(fd, 0, (off_t)first) != 0) {
		shim_log("%s: cannot reserve %lu bytes (filesystem full or over LEAKWATCH_BUDGET); not tracing",
			 g_seg.path, (unsigned long)first);
		goto fail_quiet;
	}
	char *map = prim_mmap(NULL, first, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto fail_unlink;
	prim_close(fd);

	struct lw_header *h = (struct lw_header *)map;
	tables_init(h);
	h->version = LW_VERSION;
	h->compat_version = LW_COMPAT_VERSION;
	h->header_size = LW_HEADER_SIZE;
	h->total_size = span;
	header_fill_identity(h, parent && parent->hdr ? parent->hdr : NULL);
	if (parent && parent->hdr)
		h->parent_segment_pid = (uint32_t)parent->pid;
	h->budget_bytes = budget;
	h->mem_tag = shim_mem_tag();
	atomic_store_explicit(&h->reserved_bytes, first, memory_order_relaxed);
	atomic_store_explicit(&h->counters[LW_CTR_CONFIG_INVALID], g_cfg.invalid, memory_order_relaxed);
	atomic_store_explicit(&h->counters[LW_CTR_RECLAIMED], budget_take_pending(), memory_order_relaxed);
	atomic_store_explicit(&h->state, LW_STATE_STARTING, memory_order_relaxed);

	static uint64_t generation;
	g_seg.size = first;
	g_seg.span = span;
	g_seg.file_end = first;
	g_seg.pid = pid;
	g_seg.gen = ++generation + ((uint64_t)pid << 32);
	memset(g_seg.ext, 0, sizeof g_seg.ext);
	if (heap_len)
		g_seg.ext[0] = (struct shim_extent){ map + heap_off, heap_off, heap_len };
	g_seg.initial_ext = heap_len ? 1 : 0;
	/* a fork child made lazily still names its parent's chunks here: none
	 * of them is ours (every reader of a chunk pointer checks for NULL) */
	for (unsigned t = 0; t < LW_T_NUM; t++)
		for (unsigned k = 1; k < LW_CHUNKS_MAX; k++)
			__atomic_store_n(&g_seg.chunk[t][k], NULL, __ATOMIC_RELAXED);
	g_seg.hdr = h; /* chunk_make writes through it; published below */
	for (unsigned t = 0; t < LW_T_NUM; t++)
		chunk_make(t, 0, map + off[t], off[t]);
	__atomic_store_n(&g_seg.hdr, NULL, __ATOMIC_RELAXED);
	/* magic last: a reader that sees it sees a complete layout */
	atomic_thread_fence(memory_order_release);
	h->magic = LW_MAGIC;
	/* hdr last: other threads test it before using the tables */
	__atomic_store_n(&g_seg.hdr, h, __ATOMIC_RELEASE);
	return 0;

fail_unlink:
	shim_log("cannot size or map %s: errno %d; not tracing", g_seg.path, errno);
fail_quiet:
	prim_unlink(g_seg.path);
	prim_close(fd);
	memset(g_seg.chunk, 0, sizeof g_seg.chunk);
	return -1;
}

void *segment_extent_initial(uint64_t bytes, uint64_t *off)
{
	/* once, and only if it is the size asked for */
	if (!g_seg.initial_ext || !g_seg.ext[0].p || g_seg.ext[0].len < bytes)
		return NULL;
	g_seg.initial_ext = 0;
	*off = g_seg.ext[0].off;
	return g_seg.ext[0].p;
}

void segment_detach(struct shim_segment *seg)
{
	if (seg->hdr) {
		for (unsigned t = 0; t < LW_T_NUM; t++)
			for (unsigned k = 1; k < LW_CHUNKS_MAX && seg->chunk[t][k]; k++)
				prim_munmap(seg->chunk[t][k], lw_chunk_bytes(seg->shift[t], k, seg->esize[t]));
		for (unsigned i = 0; i < LW_LIM_EXTENTS; i++)
			if (seg->ext[i].p && ((char *)seg->ext[i].p < (char *)seg->hdr ||
					      (char *)seg->ext[i].p >= (char *)seg->hdr + seg->size))
				prim_munmap(seg->ext[i].p, seg->ext[i].len);
		prim_munmap(seg->hdr, seg->size);
	}
	memset(seg, 0, sizeof *seg);
}

void segment_mark_state(uint32_t state)
{
	struct lw_header *h = g_seg.hdr;
	if (!h)
		return;
	if (state == LW_STATE_RUNNING) {
		h->end_realtime_ns = 0;
		h->end_monotonic_ns = 0;
	} else {
		h->end_realtime_ns = prim_realtime_ns();
		h->end_monotonic_ns = prim_now_ns();
	}
	atomic_store_explicit(&h->last_active_ns, prim_now_ns(), memory_order_relaxed);
	atomic_store_explicit(&h->state, state, memory_order_release);
}
