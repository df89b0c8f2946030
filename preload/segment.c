/* SPDX-License-Identifier: MIT */
/*
 * The segment file: creation, layout, header, state changes.
 *
 * Every system call goes through prim.h, so creating the segment never
 * re-enters the hooks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "shim.h"

SHIM_HIDDEN struct shim_segment g_seg;
/*
 * Without a system call where that is certain (see shim.h, lw_owner_state):
 * a child that shares our memory asks the kernel for its pid, a fork-like
 * child without a segment of its own reads a wiped owner token.
 */
int segment_active(void)
{
	if (g_seg.hdr == NULL)
		return 0;
	int owner = lw_owner_state();
	if (owner >= 0)
		return owner;
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
		atomic_store_explicit(&h->last_active_ns, prim_now_ns(), memory_order_relaxed);
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

/* proc_start_ticks - field 22 of /proc/self/stat, counted after the last ')'
 * because the command name may itself contain spaces and parentheses. */
static uint64_t proc_start_ticks(void)
{
	char buf[1024];
	if (read_small_file("/proc/self/stat", buf, sizeof buf) <= 0)
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

void segment_unlink_if_empty(void)
{
	if (g_seg.hdr && !g_cfg.keep_empty && segment_counters_empty(g_seg.hdr->counters))
		prim_unlink(g_seg.path);
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

/* fs_unit - the block unit of f_blocks/f_bavail (statvfs's f_frsize). */
static uint64_t fs_unit(const struct statfs *f)
{
	return f->f_frsize ? (uint64_t)f->f_frsize : (uint64_t)f->f_bsize;
}

static void header_fill_identity(struct lw_header *h)
{
	char buf[LW_CMDLINE_MAX];
	ssize_t n;

	h->pid = (int32_t)prim_getpid();
	h->ppid = (int32_t)prim_getppid();
	h->uid = (uint32_t)prim_geteuid();
	h->proc_start_ticks = proc_start_ticks();
	/* Take the pair back to back so wall = realtime + (t - monotonic). */
	h->start_realtime_ns = prim_realtime_ns();
	h->start_monotonic_ns = prim_now_ns();
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
	h->stack_depth = g_cfg.stack_depth;
	h->heap_mode = LW_HEAP_OFF;
	h->sample_bytes = 0;
}

int segment_create(const struct shim_segment *parent)
{
	struct lw_header tmp;
	struct statfs vfs;
	uint64_t off;
	pid_t pid = prim_getpid();
	int fd;

	memset(&tmp, 0, sizeof tmp);
	off = lw_layout(&tmp, g_cfg.max_stacks, LW_LIM_MODULES, g_cfg.max_fds, LW_LIM_BADCLOSES, g_cfg.max_allocs);

	fmt_path(g_seg.path, sizeof g_seg.path, g_cfg.dir, pid, 0);
	fd = prim_open(g_seg.path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && archive_existing(g_seg.path, pid) == 0)
		fd = prim_open(g_seg.path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		shim_log("cannot create %s: errno %d; not tracing", g_seg.path, errno);
		return -1;
	}
	/*
	 * The file is sparse, and touching a page of a full tmpfs raises SIGBUS
	 * in the host.  Refuse to start unless the whole segment would fit now.
	 */
	memset(&vfs, 0, sizeof vfs);
	if (prim_fstatfs(fd, &vfs) == 0 && (uint64_t)vfs.f_bavail * fs_unit(&vfs) < off) {
		shim_log("%s: filesystem too full for %lu bytes; not tracing", g_seg.path,
			 (unsigned long)off);
		goto fail_unlink;
	}
	if (prim_ftruncate(fd, (off_t)off) != 0)
		goto fail_unlink;
	/*
	 * On a small filesystem (under 1 GiB: a container's 64 MiB /dev/shm) other users can
	 * fill it after we start, and our next new page would then be a SIGBUS
	 * in the host.  There, reserve the whole segment now or do not trace.
	 * On a large one the sparse file and the check above are enough.
	 */
	if ((uint64_t)vfs.f_blocks * fs_unit(&vfs) < LW_LIM_SMALL_FS_BYTES &&
	    prim_fallocate(fd, 0, (off_t)off) != 0) {
		shim_log("%s: cannot reserve %lu bytes on a small filesystem; not tracing", g_seg.path,
			 (unsigned long)off);
		goto fail_unlink;
	}
	void *map = prim_mmap(NULL, off, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto fail_unlink;
	prim_close(fd);

	struct lw_header *h = map;
	memcpy(&h->stacks, &tmp.stacks, sizeof tmp.stacks * 5);
	h->version = LW_VERSION;
	h->compat_version = LW_COMPAT_VERSION;
	h->header_size = LW_HEADER_SIZE;
	h->total_size = off;
	header_fill_identity(h);
	if (parent && parent->hdr)
		h->parent_segment_pid = (uint32_t)parent->pid;
	atomic_store_explicit(&h->counters[LW_CTR_CONFIG_INVALID], g_cfg.invalid, memory_order_relaxed);
	atomic_store_explicit(&h->state, LW_STATE_STARTING, memory_order_relaxed);
	/* magic last: a reader that sees it sees a complete layout */
	atomic_thread_fence(memory_order_release);
	h->magic = LW_MAGIC;

	static uint64_t generation;
	g_seg.size = off;
	g_seg.pid = pid;
	g_seg.gen = ++generation + ((uint64_t)pid << 32);
	g_seg.stacks = (struct lw_stack *)((char *)map + h->stacks.offset);
	g_seg.modules = (struct lw_module *)((char *)map + h->modules.offset);
	g_seg.handles = (struct lw_handle *)((char *)map + h->handles.offset);
	g_seg.badcloses = (struct lw_badclose *)((char *)map + h->badcloses.offset);
	/* hdr last: other threads test it before using the table pointers */
	__atomic_store_n(&g_seg.hdr, h, __ATOMIC_RELEASE);
	return 0;

fail_unlink:
	shim_log("cannot size or map %s: errno %d; not tracing", g_seg.path, errno);
	prim_unlink(g_seg.path);
	prim_close(fd);
	return -1;
}

void segment_detach(struct shim_segment *seg)
{
	if (seg->hdr)
		prim_munmap(seg->hdr, seg->size);
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
