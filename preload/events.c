/* SPDX-License-Identifier: MIT */
/*
 * The recorder's events (events.h): the one place that decides whether a
 * hooked call records, and that runs the recorder's steps in order.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "events.h"

/* enter - may this call record?  Sets the re-entry guard on success.  Not
 * for a nested call (a signal handler that interrupted the recorder: it is
 * counted and passes through), a shim not (or no longer) ready, or a caller
 * that does not own the segment (a vfork child shares our memory but not
 * our descriptors). */
static inline __attribute__((always_inline)) int enter(void)
{
	if (!atomic_load_explicit(&g_ready, memory_order_acquire))
		return 0;
	if (guard_busy()) {
		segment_counter_add(LW_CTR_DROP_REENTRANT, 1);
		return 0;
	}
	if (!segment_active())
		return 0;
	guard_set();
	return 1;
}

static inline void leave(void)
{
	guard_clear();
}

/* enter_send - enter() for the send path, without segment_active()'s
 * getpid system call (one per send was the largest cost of last-use
 * tracking).  What that check keeps out is a vfork child, or a raw clone
 * sharing our memory: a send there lands on the parent's record of the same
 * fd number, which the child inherited — the same socket unless the child
 * renumbered its descriptors before exec, and then only a last-use stamp is
 * off.  Records are only ever created or removed through enter(). */
static inline __attribute__((always_inline)) int enter_send(void)
{
	if (!atomic_load_explicit(&g_ready, memory_order_acquire) || !g_seg.hdr)
		return 0;
	if (guard_busy()) {
		segment_counter_add(LW_CTR_DROP_REENTRANT, 1);
		return 0;
	}
	guard_set();
	return 1;
}

/* capture_new - the stack of a call that creates a record: refresh the
 * module table first (the creating code may sit in an object dlopen()ed
 * since the last look; later stacks of the same record mostly share its
 * modules, and the exit path refreshes once more). */
static uint32_t capture_new(void)
{
	modules_refresh();
	return stack_capture();
}

void lw_ev_socket_opened(int fd, uint16_t origin)
{
	if (!enter())
		return;
	int saved = errno;
	handle_open_socket(fd, origin, -1, capture_new());
	errno = saved;
	leave();
}

void lw_ev_socketpair_opened(const int sv[2])
{
	if (!enter())
		return;
	int saved = errno;
	uint32_t stack = capture_new();
	handle_open_socket(sv[0], LW_ORIGIN_SOCKETPAIR, -1, stack);
	handle_open_socket(sv[1], LW_ORIGIN_SOCKETPAIR, -1, stack);
	errno = saved;
	leave();
}

void lw_ev_connected(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!handle_is_open(fd) || !enter())
		return;
	int saved = errno;
	handle_connected(fd, addr, len, stack_capture());
	errno = saved;
	leave();
}

void lw_ev_bound(int fd)
{
	if (!handle_is_open(fd) || !enter())
		return;
	int saved = errno;
	handle_bound(fd);
	errno = saved;
	leave();
}

void lw_ev_dup(int oldfd, int newfd)
{
	if (!enter())
		return;
	int saved = errno;
	/* a stack only when a record changes: a tracked source (newfd gets a
	 * copy) or a tracked target (its record is closed) */
	if (oldfd != newfd && (handle_is_open(oldfd) || handle_is_open(newfd)))
		handle_dup(oldfd, newfd, stack_capture());
	errno = saved;
	leave();
}

void lw_ev_fds_received(const struct msghdr *msg)
{
	if (!msg || !msg->msg_control || msg->msg_controllen == 0)
		return;
	if (!enter())
		return;
	int saved = errno;
	uint32_t stack = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int nfd;
			memcpy(&nfd, CMSG_DATA(c) + i * sizeof(int), sizeof nfd);
			if (!stack)
				stack = capture_new();
			/* records only if nfd is a socket */
			handle_open_socket(nfd, LW_ORIGIN_SCM_RIGHTS, -1, stack);
		}
	}
	errno = saved;
	leave();
}

void lw_ev_close_tracked(int fd, struct lw_close_note *n)
{
	if (!enter())
		return;
	int saved = errno;
	n->state = handle_before_close(fd, stack_capture(), &n->prev);
	errno = saved;
	leave();
}

void lw_ev_close_failed(int fd, struct lw_close_note *n)
{
	int saved = errno;
	/* close(-1) is a common "nothing to close" idiom (dash does it for every
	 * command); only a real descriptor number can be a double close. */
	if (saved != EBADF || fd < 0 || !enter())
		return;
	/* one stack serves the stale record's close or the bad close */
	uint32_t stack = stack_capture();
	if (n->state < 0)
		n->state = handle_before_close(fd, stack, &n->prev);
	if (n->state == LW_H_OPEN) /* our record was stale: closed inside libc */
		segment_counter_add(LW_CTR_STALE_CLOSES, 1);
	else
		handle_bad_close(fd, n->state, &n->prev, stack);
	errno = saved;
	leave();
}

void lw_ev_close_range(unsigned first, unsigned last, int flags)
{
	/* CLOSE_RANGE_CLOEXEC only marks fds; nothing is closed now.  Flags we
	 * do not know may make the call fail: then nothing is recorded. */
	if ((flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) || (flags & CLOSE_RANGE_CLOEXEC) ||
	    first > last || !enter())
		return;
	int saved = errno;
	/* close_range(fd, fd) is close(fd) that never fails with EBADF: of a
	 * descriptor we saw closed and that is not open now, it is a double
	 * close all the same */
	if (first == last && first <= INT_MAX && prim_fd_flags((int)first) < 0 && errno == EBADF) {
		int fd = (int)first;
		struct handle_prev prev;
		int state = LW_H_FREE;
		uint32_t stack = 0;
		const struct lw_handle *h = g_seg.hdr ? segment_entry(LW_T_HANDLES, first) : NULL;
		if (h) {
			struct lw_handle snap;
			/* a stack only for a record to close or a bad close to report */
			if (!lw_seq_read(h, &snap, sizeof snap) || snap.state != LW_H_FREE)
				stack = stack_capture();
			state = handle_before_close(fd, stack, &prev);
		}
		if (state == LW_H_OPEN) /* our record was stale: closed inside libc */
			segment_counter_add(LW_CTR_STALE_CLOSES, 1);
		else if (state == LW_H_CLOSED)
			handle_bad_close(fd, state, &prev, stack);
	} else if (handle_any_open(first, last)) {
		handle_close_range(first, last, stack_capture());
	}
	errno = saved;
	leave();
}

void lw_ev_send(int fd, uintptr_t ra, uintptr_t cfa)
{
	int saved = errno;
	if (enter_send()) {
		handle_used(fd, stack_capture_at(ra, cfa));
		leave();
	}
	errno = saved;
}

int lw_ev_exec_begin(void)
{
	if (!enter())
		return 0;
	segment_mark_state(LW_STATE_EXECED);
	return 1;
}

void lw_ev_exec_failed(int token)
{
	if (!token)
		return;
	int saved = errno;
	segment_mark_state(LW_STATE_RUNNING);
	leave();
	errno = saved;
}

void lw_ev_exit(int status, int final)
{
	if (!atomic_load_explicit(&g_ready, memory_order_acquire) || !segment_active())
		return;
	g_seg.hdr->exit_status = status;
	g_seg.hdr->exit_known = 1;
	if (final) {
		/* _exit: no destructor will run; do what it would have done */
		heap_thread_flush();
		heap_exit_settle();
		segment_mark_state(LW_STATE_EXITED);
		segment_unlink_if_empty();
	}
}

/* jmpbuf_sp - where a jmp_buf resumes: glibc on x86-64 keeps the stack
 * pointer in __jmpbuf[6] (JB_RSP), mangled with the thread's pointer guard
 * (xor with %fs:0x30, then rotated left by 17).  0 where unknown. */
static uintptr_t jmpbuf_sp(const struct __jmp_buf_tag *env)
{
#if defined(__x86_64__)
	uintptr_t guard, v = (uintptr_t)env->__jmpbuf[6];
	__asm__("mov %%fs:0x30, %0" : "=r"(guard));
	v = (v >> 17) | (v << (64 - 17));
	return v ^ guard;
#else
	(void)env;
	return 0;
#endif
}

/*
 * A handler that interrupted the recorder and leaves with siglongjmp()
 * abandons the recording frame: its guard would stay set (the thread never
 * recorded again) and a slot it held would stay locked.  The jump's target
 * stack pointer tells whether it leaves that frame.
 */
void lw_ev_longjmp(const struct __jmp_buf_tag *env)
{
	if (g_in_shim && env && jmpbuf_sp(env) > t_guard_sp)
		guard_abandon();
}

/* ---- heap ------------------------------------------------------------------------ */

void __attribute__((noinline)) lw_ev_alloc(void *p, size_t size, uintptr_t ra, uintptr_t cfa)
{
	int saved = errno;
	guard_set();
	heap_record_alloc(p, size, stack_capture_at(ra, cfa));
	guard_clear();
	errno = saved;
}

void lw_ev_alloc_restore(void *p, const struct heap_old *old)
{
	if (guard_busy())
		return;
	int saved = errno;
	guard_set();
	heap_record_restore(p, old->size, old->stack, old->ns);
	guard_clear();
	errno = saved;
}
