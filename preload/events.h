/* SPDX-License-Identifier: MIT */
/*
 * The recorder's event API: what the hooks (hooks.c, heap_hooks.c) tell it.
 *
 * A hook makes the real call and hands the outcome to one event.  The event
 * owns every recorder step: whether this call may record at all (shim
 * ready, re-entry guard, caller owns the segment: enter/leave), errno saved
 * and restored, the module table refreshed where a new stack may point into
 * a newly loaded object, the stack captured, and then the table writes
 * (handles.c, heap.c, segment.c), which receive stack ids and capture
 * nothing themselves.  Events never fail, never allocate, never block.
 *
 * The checks that decide the hot paths (an untracked fd, an unsampled
 * block) are inline here so that a hook that records nothing costs what it
 * did before: one load or a counter decrement.
 */
#ifndef LEAKWATCH_PRELOAD_EVENTS_H
#define LEAKWATCH_PRELOAD_EVENTS_H

#include <setjmp.h>

#include "shim.h"

/* ---- descriptors ------------------------------------------------------------ */

/*
 * Every event that records a stack takes the hook's caller as ra/cfa
 * (CALLER_RA()/CALLER_CFA() in the hook): the call-site cache
 * (stack_capture_at) then re-checks a repeated caller chain instead of
 * unwinding it again.  ra = cfa = 0: a full unwind.
 */
/* lw_ev_socket_created - socket(domain, type, protocol) returned fd (>= 0). */
SHIM_HIDDEN void lw_ev_socket_created(int fd, int domain, int type, int protocol, uintptr_t ra,
				      uintptr_t cfa);
/* lw_ev_accepted - accept/accept4 on lfd returned fd (>= 0); addr (may be
 * NULL) is the caller's buffer of cap bytes, len what the call wrote. */
SHIM_HIDDEN void lw_ev_accepted(int fd, int lfd, const struct sockaddr *addr, socklen_t cap,
				socklen_t len, uintptr_t ra, uintptr_t cfa);
/* lw_ev_accept_borrows - may accept() on lfd be given a peer buffer the
 * caller did not pass?  Yes for a tracked TCP or AF_UNIX listener. */
static inline int lw_ev_accept_borrows(int lfd)
{
	return handle_is_open(lfd) && handle_names_peers(lfd);
}
/* lw_ev_socketpair_opened - both ends of a successful socketpair(). */
SHIM_HIDDEN void lw_ev_socketpair_opened(const int sv[2], int domain, int type, int protocol,
					 uintptr_t ra, uintptr_t cfa);
/* lw_ev_connected - connect() succeeded or is in progress (EINPROGRESS). */
SHIM_HIDDEN void lw_ev_connected(int fd, const struct sockaddr *addr, socklen_t len, uintptr_t ra,
				 uintptr_t cfa);
/* lw_ev_bound - bind() succeeded: the local address is known now. */
SHIM_HIDDEN void lw_ev_bound(int fd);
/* lw_ev_dup - newfd (>= 0) is now a copy of oldfd (dup*, F_DUPFD*). */
SHIM_HIDDEN void lw_ev_dup(int oldfd, int newfd, uintptr_t ra, uintptr_t cfa);
/* lw_ev_fd_received - fd (>= 0) is a copy of a descriptor of any kind made
 * elsewhere (pidfd_getfd): one fstat() tells which. */
SHIM_HIDDEN void lw_ev_fd_received(int fd, uintptr_t ra, uintptr_t cfa);
/* lw_ev_fds_received - recvmsg() returned msg: record SCM_RIGHTS sockets. */
SHIM_HIDDEN void lw_ev_fds_received(const struct msghdr *msg, uintptr_t ra, uintptr_t cfa);
/* lw_ev_fd_created - a hooked call made fd (>= 0), a descriptor of
 * another kind than a socket, as d describes it (d->path is read now). */
SHIM_HIDDEN void lw_ev_fd_created(int fd, const struct handle_fd *d, uintptr_t ra, uintptr_t cfa);
/* lw_ev_fds_created - both ends of a pipe (pipe, pipe2). */
SHIM_HIDDEN void lw_ev_fds_created(const int fds[2], const struct handle_fd *d, uintptr_t ra,
				   uintptr_t cfa);
/* lw_ev_close_range - before close_range(first, last, flags) / closefrom. */
SHIM_HIDDEN void lw_ev_close_range(unsigned first, unsigned last, int flags, uintptr_t ra,
				   uintptr_t cfa);

/*
 * close() is two events around the real call: the record is removed before
 * it (the kernel may hand the number to another thread the moment it is
 * freed), and a failure with EBADF afterwards is a bad close.  The note
 * carries what the first half saw to the second.  close() is a
 * cancellation point: the guard is never held across the real call.
 */
struct lw_close_note {
	int state;                      /* handle state before, -1 = not looked at */
	struct handle_prev prev;
	uintptr_t ra, cfa;              /* the hook's caller */
};
SHIM_HIDDEN void lw_ev_close_tracked(int fd, struct lw_close_note *n);

/* lw_ev_close_before - untracked fds (files, pipes) pass with one load.
 * Use LW_EV_CLOSE_BEFORE in the hook. */
static inline __attribute__((always_inline)) void lw_ev_close_before(int fd, struct lw_close_note *n,
								  uintptr_t ra, uintptr_t cfa)
{
	n->state = -1;
	n->ra = ra;
	n->cfa = cfa;
	if (handle_is_open(fd))
		lw_ev_close_tracked(fd, n);
}
#define LW_EV_CLOSE_BEFORE(fd, n) lw_ev_close_before((fd), (n), CALLER_RA(), CALLER_CFA())

/* lw_ev_close_inside - before a libc call that closes fd where no close()
 * hook sees it (fclose, pclose, closedir, freopen): the record goes now,
 * and a failure of that call is not a bad close (it may fail after
 * closing).  fd < 0 (a FILE without a descriptor) passes. */
static inline __attribute__((always_inline)) void lw_ev_close_inside(int fd, uintptr_t ra, uintptr_t cfa)
{
	struct lw_close_note n;
	lw_ev_close_before(fd, &n, ra, cfa);
}
#define LW_EV_CLOSE_INSIDE(fd) lw_ev_close_inside((fd), CALLER_RA(), CALLER_CFA())

/* lw_ev_close_failed - the real close(fd) returned nonzero (errno as it
 * left it, preserved). */
SHIM_HIDDEN void lw_ev_close_failed(int fd, struct lw_close_note *n);

/* lw_ev_send - a send-side call on fd succeeded: its stack is the socket's
 * last use.  ra/cfa: the hook's caller (CALLER_RA/CALLER_CFA), for the
 * call-site cache.  Use LW_EV_SEND. */
SHIM_HIDDEN void lw_ev_send(int fd, uintptr_t ra, uintptr_t cfa);
#define LW_EV_SEND(fd, r)                                                     \
	do {                                                                  \
		if ((r) >= 0 && handle_is_open_socket(fd))                    \
			lw_ev_send((fd), CALLER_RA(), CALLER_CFA());          \
	} while (0)

/* ---- process --------------------------------------------------------------------- */

/* lw_ev_exec_begin - before an exec: mark the image execed.  Returns a token
 * for lw_ev_exec_failed (the guard stays set across the exec: a new image
 * has none, a failed exec clears it there). */
SHIM_HIDDEN int lw_ev_exec_begin(void);
SHIM_HIDDEN void lw_ev_exec_failed(int token);
/* lw_ev_exit - exit status known (exit, _exit, on_exit); final: no
 * destructor will run (_exit, _Exit), so finish the segment now. */
SHIM_HIDDEN void lw_ev_exit(int status, int final);
/* lw_ev_longjmp - before a longjmp family call to env: a jump out of a
 * recording frame (a handler that interrupted it) abandons its guard. */
SHIM_HIDDEN void lw_ev_longjmp(const struct __jmp_buf_tag *env);

/* ---- heap ------------------------------------------------------------------------ */

/* lw_ev_alloc_wanted - is an allocation of size recorded?  (Sampler, then
 * the guard; 0 when heap tracking is off.)  lw_ev_alloc_pending: the same
 * for a fork child that has no segment yet, which one that is recorded
 * creates (lifecycle.c). */
SHIM_HIDDEN int lw_ev_alloc_pending(size_t size);
static inline __attribute__((always_inline)) int lw_ev_alloc_wanted(size_t size)
{
	if (heap_should_sample(size))
		return !guard_busy();
	/* a fork child without its segment yet: a block it samples creates it */
	if (__builtin_expect(atomic_load_explicit(&g_fork.pending, memory_order_relaxed) != 0, 0))
		return lw_ev_alloc_pending(size);
	return 0;
}

/* lw_ev_alloc - record block p (after lw_ev_alloc_wanted said yes). */
SHIM_HIDDEN void lw_ev_alloc(void *p, size_t size, uintptr_t ra, uintptr_t cfa);
#define LW_EV_ALLOC(p, size) lw_ev_alloc((p), (size), CALLER_RA(), CALLER_CFA())

/* lw_ev_free - before the real free/realloc of p: drop its record.
 * Returns 1 when p was recorded (its old fields in *old, may be NULL). */
static inline __attribute__((always_inline)) int lw_ev_free(void *p, struct heap_old *old)
{
	if (!heap_maybe_recorded(p) || guard_busy())
		return 0;
	guard_set();
	int r = heap_record_free(p, old ? &old->stack : NULL, old ? &old->size : NULL,
				 old ? &old->ns : NULL);
	guard_clear();
	return r;
}

/* lw_ev_alloc_restore - realloc(p) failed and p lives on: put back the
 * record lw_ev_free removed, with its stack and age. */
SHIM_HIDDEN void lw_ev_alloc_restore(void *p, const struct heap_old *old);

#endif /* LEAKWATCH_PRELOAD_EVENTS_H */
