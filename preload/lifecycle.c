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

/* set in the prepare handler: was the process threaded when it forked? */
static int g_fork_threaded;

static void atfork_prepare(void)
{
	/* __libc_single_threaded never becomes true again once a thread has
	 * existed; the number of tasks now is what matters (procfs gives a
	 * task directory nlink of 2 + tasks) */
	struct stat st;
	if (__libc_single_threaded)
		g_fork_threaded = 0;
	else
		g_fork_threaded = prim_stat("/proc/self/task", &st) != 0 || st.st_nlink > 3;
}

static void atfork_child(void)
{
	/* static: large, and this child has one thread now */
	static struct shim_segment parent;
	parent = g_seg;

	if (!parent.hdr)
		return;
	int saved = errno;
	/* fork() may run in a handler that interrupted the recorder: that
	 * frame's guard is put back as it was when this returns */
	int was_in = g_in_shim;
	uintptr_t was_sp = t_guard_sp;
	_Atomic uint32_t *was_held = t_held_seq;
	atomic_store(&g_ready, 0);
	g_in_shim = 1;
	/* the parent's heap records stay in the parent's segment; blocks the
	 * child inherited and frees pass through as never seen */
	heap_init(LW_HEAP_OFF, 0);
	heap_after_fork();
	memset(&g_seg, 0, sizeof g_seg);
	if (segment_create(&parent) == 0) {
		modules_after_fork(&parent);
		/* Another parent thread may have held the loader lock (which
		 * dl_iterate_phdr takes) when fork ran; glibc does not
		 * reset it in the child.  A threaded parent's child therefore
		 * records without stacks until it execs. */
		if (g_fork_threaded)
			stack_disable_unwind();
		handle_copy_from(&parent);
		heap_init(g_cfg.heap_mode, g_cfg.sample_bytes);
		segment_mark_state(LW_STATE_RUNNING);
		atomic_store(&g_ready, 1);
	} else {
		/* No segment of our own (no room: a small /dev/shm): this child
		 * is not traced.  g_seg keeps naming the parent's mapping, made
		 * private below, whose pid is not ours, so segment_active()
		 * refuses every recording from now on, while a frame the fork
		 * interrupted still finds the tables it was using (zeroed table
		 * pointers there killed children with SIGSEGV). */
		g_seg = parent;
	}
	/* The parent's mapping is shared; the child must never write to it. */
	/* interrupted, or still named by g_seg (no segment of our own): keep
	 * the parent's tables mapped, privately; else they simply go */
	segment_privatize(&parent, was_in || g_seg.hdr == parent.hdr);
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

void lifecycle_start(const struct lifecycle_entry *e)
{
	int saved = errno;

	e->resolve_hooks();
	g_in_shim = 1;
	if (getauxval(AT_SECURE)) /* setuid/setgid: do nothing at all */
		goto out;
	config_load();
	if (g_cfg.disabled)
		goto out;
	dl_iterate_phdr(self_range, (void *)(uintptr_t)e->self);
	if (segment_create(NULL) != 0)
		goto out;
	modules_refresh();
	modules_scan();
	(void)handles_mirror_init(0);
	handle_scan_inherited();
	e->resolve_heap();
	heap_init(g_cfg.heap_mode, g_cfg.sample_bytes);
	pthread_atfork(atfork_prepare, NULL, atfork_child);
	on_exit(on_exit_status, NULL);
	segment_mark_state(LW_STATE_RUNNING);
	atomic_store_explicit(&g_ready, 1, memory_order_release);
out:
	g_in_shim = 0;
	errno = saved;
}

void lifecycle_stop(void)
{
	int saved = errno;
	if (atomic_load(&g_ready) && segment_active()) {
		g_in_shim = 1;
		heap_thread_flush();
		heap_exit_settle(); /* one heap table left behind, not two */
		modules_refresh(); /* frames in objects dlopen()ed since the last event */
		g_in_shim = 0;
		if (atomic_load(&g_seg.hdr->state) == LW_STATE_RUNNING)
			segment_mark_state(LW_STATE_EXITED);
		/* A process that never held a socket leaves nothing to read; a shell
		 * script would otherwise leave one file per command behind. */
		segment_unlink_if_empty();
	}
	errno = saved;
}
