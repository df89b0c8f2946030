/* SPDX-License-Identifier: MIT */
/*
 * The recorder's events (events.h): the one place that decides whether a
 * hooked call records, and that runs the recorder's steps in order.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>

#include "events.h"

/* enter - may this call record?  Sets the re-entry guard on success.  Not
 * for a nested call (a signal handler that interrupted the recorder: it is
 * counted and passes through), a shim not (or no longer) ready, or a caller
 * that does not own the segment (a vfork child shares our memory but not
 * our descriptors; segment_active() tells without a system call unless
 * such a child may be running). */
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

/* enter_own - enter() for a call that records something of this image's
 * own (a socket it opens, a bad close): in a fork child that has no
 * segment yet (lifecycle.c) this creates it first, without the inherited
 * records at fresh[0..nfresh), the descriptors the call just made. */
static inline __attribute__((always_inline)) int enter_own_fds(const int *fresh, unsigned nfresh)
{
	if (!atomic_load_explicit(&g_ready, memory_order_acquire))
		return 0;
	if (guard_busy()) {
		segment_counter_add(LW_CTR_DROP_REENTRANT, 1);
		return 0;
	}
	if (!segment_active()) {
		if (__builtin_expect(!atomic_load_explicit(&g_fork.pending, memory_order_relaxed), 1))
			return 0;
		guard_set();
		if (!lifecycle_fork_segment(fresh, nfresh)) {
			guard_clear();
			return 0;
		}
		return 1;
	}
	guard_set();
	return 1;
}

static inline __attribute__((always_inline)) int enter_own(void)
{
	return enter_own_fds(NULL, 0);
}

static inline void leave(void)
{
	guard_clear();
}

/* capture_new - the stack of a call that creates a record, and a module
 * table that covers it: the creating code may sit in an object dlopen()ed
 * since the last look (later stacks of the same record mostly share its
 * modules, and the exit path refreshes once more).  Asking the loader costs
 * two system calls (signals are blocked around dl_iterate_phdr), so it is
 * asked only when a frame lies outside every module recorded. */
/* The stacks this thread last found covered, and at which module epoch:
 * a server's few creation stacks skip the walk over frames and modules. */
#define KNOWN_SLOTS 4
static __thread struct {
	uint64_t gen;                   /* the segment the id belongs to */
	uint32_t id, epoch;
} t_known[KNOWN_SLOTS] __attribute__((tls_model("initial-exec")));
static __thread unsigned t_known_next __attribute__((tls_model("initial-exec")));

static inline __attribute__((always_inline)) uint32_t capture_new(uintptr_t ra, uintptr_t cfa)
{
	/* attached: objects loaded since must be taken over (attach.c) before
	 * their own calls are missed for long; looked for at most every 10 ms */
	if (__builtin_expect(atomic_load_explicit(&g_attach_rescan, memory_order_relaxed), 0))
		attach_rescan_maybe();
	uint32_t epoch = atomic_load_explicit(&g_modules_epoch, memory_order_acquire);
	int known;
	uint32_t id = stack_capture_known(ra, cfa, epoch | 1u << 31, &known);
	if (known)
		return id;
	for (unsigned i = 0; i < KNOWN_SLOTS; i++)
		if (t_known[i].id == id && t_known[i].epoch == epoch && t_known[i].gen == g_seg.gen &&
		    id != 0)
			return id;
	if (!stack_modules_known(id)) {
		modules_refresh();
		return id;
	}
	stack_site_known(id, epoch | 1u << 31);
	unsigned v = t_known_next++ % KNOWN_SLOTS;
	t_known[v].gen = g_seg.gen;
	t_known[v].id = id;
	t_known[v].epoch = epoch;
	return id;
}

/* inet_protocol - what the kernel makes of protocol 0 for an IP socket of
 * this type (SO_PROTOCOL); 0 where it is not certain. */
static int inet_protocol(int type)
{
	if (type == SOCK_STREAM)
		return IPPROTO_TCP;
	if (type == SOCK_DGRAM)
		return IPPROTO_UDP;
	return 0;
}

/* known_new - what socket()/socketpair()'s arguments tell about the new
 * socket; families other than AF_INET, AF_INET6 and AF_UNIX are asked. */
static void known_new(struct handle_known *k, int domain, int type, int protocol, int fresh)
{
	memset(k, 0, sizeof *k);
	k->like_fd = -1;
	k->new_socket = 1;
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (domain == AF_INET || domain == AF_INET6) {
		if (protocol == 0)
			protocol = inet_protocol(type);
		if (protocol == 0)
			return;
	} else if (domain != AF_UNIX) {
		return;
	}
	k->family = domain;
	k->type = type;
	k->protocol = protocol;
	k->fresh = fresh;
}

void lw_ev_socket_created(int fd, int domain, int type, int protocol, uintptr_t ra, uintptr_t cfa)
{
	if (!enter_own_fds(&fd, 1))
		return;
	int saved = errno;
	struct handle_known k;
	known_new(&k, domain, type, protocol, HANDLE_FRESH);
	handle_open_socket_known(fd, LW_ORIGIN_SOCKET, -1, capture_new(ra, cfa), &k);
	errno = saved;
	leave();
}

void lw_ev_accepted(int fd, int lfd, const struct sockaddr *addr, socklen_t cap, socklen_t len,
		    uintptr_t ra, uintptr_t cfa)
{
	if (!enter_own_fds(&fd, 1))
		return;
	int saved = errno;
	struct handle_known k = { .like_fd = lfd, .new_socket = 1 };
	/* the peer the call wrote, unless it was cut short */
	if (addr && len > 0 && len <= cap) {
		k.peer = addr;
		k.peer_len = len;
	}
	handle_open_socket_known(fd, LW_ORIGIN_ACCEPT, -1, capture_new(ra, cfa), &k);
	errno = saved;
	leave();
}

void lw_ev_socketpair_opened(const int sv[2], int domain, int type, int protocol, uintptr_t ra,
			     uintptr_t cfa)
{
	if (!enter_own_fds(sv, 2))
		return;
	int saved = errno;
	uint32_t stack = capture_new(ra, cfa);
	struct handle_known k;
	known_new(&k, domain, type, protocol, HANDLE_PAIRED);
	handle_open_socket_known(sv[0], LW_ORIGIN_SOCKETPAIR, -1, stack, &k);
	handle_open_socket_known(sv[1], LW_ORIGIN_SOCKETPAIR, -1, stack, &k);
	errno = saved;
	leave();
}

void lw_ev_fd_created(int fd, const struct handle_fd *d, uintptr_t ra, uintptr_t cfa)
{
	if (!enter_own_fds(&fd, 1))
		return;
	int saved = errno;
	handle_open_fd(fd, d, capture_new(ra, cfa));
	errno = saved;
	leave();
}

void lw_ev_fds_created(const int fds[2], const struct handle_fd *d, uintptr_t ra, uintptr_t cfa)
{
	if (!enter_own_fds(fds, 2))
		return;
	int saved = errno;
	uint32_t stack = capture_new(ra, cfa);
	handle_open_fd(fds[0], d, stack);
	handle_open_fd(fds[1], d, stack);
	errno = saved;
	leave();
}

void lw_ev_connected(int fd, const struct sockaddr *addr, socklen_t len, uintptr_t ra, uintptr_t cfa)
{
	if (!handle_is_open_socket(fd) || !enter())
		return;
	int saved = errno;
	handle_connected(fd, addr, len, stack_capture_at(ra, cfa));
	errno = saved;
	leave();
}

void lw_ev_bound(int fd)
{
	if (!handle_is_open_socket(fd) || !enter())
		return;
	int saved = errno;
	handle_bound(fd);
	errno = saved;
	leave();
}

void lw_ev_dup(int oldfd, int newfd, uintptr_t ra, uintptr_t cfa)
{
	if (!enter())
		return;
	int saved = errno;
	/* a stack only when a record changes: a tracked source (newfd gets a
	 * copy) or a tracked target (its record is closed) */
	if (oldfd != newfd && (handle_is_open(oldfd) || handle_is_open(newfd)))
		handle_dup(oldfd, newfd, stack_capture_at(ra, cfa));
	errno = saved;
	leave();
}

void lw_ev_fd_received(int fd, uintptr_t ra, uintptr_t cfa)
{
	if (!enter_own_fds(&fd, 1))
		return;
	int saved = errno;
	handle_open_received(fd, LW_ORIGIN_OPEN, capture_new(ra, cfa));
	errno = saved;
	leave();
}

void lw_ev_fds_received(const struct msghdr *msg, uintptr_t ra, uintptr_t cfa)
{
	if (!msg || !msg->msg_control || msg->msg_controllen == 0)
		return;
	/* the first descriptors received: a pending fork child's creation
	 * leaves their numbers' inherited records out */
	int fresh[8];
	unsigned nfresh = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n && nfresh < 8; i++)
			memcpy(&fresh[nfresh++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (!enter_own_fds(fresh, nfresh))
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
				stack = capture_new(ra, cfa);
			/* any kind: one fstat() says which (SCM_RIGHTS is rare) */
			handle_open_received(nfd, LW_ORIGIN_SCM_RIGHTS, stack);
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
	uint32_t stack = stack_capture_at(n->ra, n->cfa);
	n->state = handle_before_close(fd, stack, &n->prev);
	/* a Python object's finalizer closing what the program dropped */
	if (n->state == LW_H_OPEN && __builtin_expect(python_active(), 0) && python_close_by_gc(stack))
		handle_gc_close(fd, &n->prev, stack);
	errno = saved;
	leave();
}

void lw_ev_close_failed(int fd, struct lw_close_note *n)
{
	int saved = errno;
	/* close(-1) is a common "nothing to close" idiom (dash does it for every
	 * command); only a real descriptor number can be a double close. */
	/* a pending fork child saw none of its numbers closed: a failing
	 * close there is never one to report, and creates no segment */
	if (saved != EBADF || fd < 0 || atomic_load_explicit(&g_fork.pending, memory_order_relaxed) ||
	    !enter_own())
		return;
	/* one stack serves the stale record's close or the bad close */
	uint32_t stack = stack_capture_at(n->ra, n->cfa);
	if (n->state < 0)
		n->state = handle_before_close(fd, stack, &n->prev);
	if (n->state == LW_H_OPEN) /* our record was stale: closed inside libc */
		segment_counter_add(LW_CTR_STALE_CLOSES, 1);
	else
		handle_bad_close(fd, n->state, &n->prev, stack);
	errno = saved;
	leave();
}

void lw_ev_close_range(unsigned first, unsigned last, int flags, uintptr_t ra, uintptr_t cfa)
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
				stack = stack_capture_at(ra, cfa);
			state = handle_before_close(fd, stack, &prev);
		}
		if (state == LW_H_OPEN) /* our record was stale: closed inside libc */
			segment_counter_add(LW_CTR_STALE_CLOSES, 1);
		else if (state == LW_H_CLOSED)
			handle_bad_close(fd, state, &prev, stack);
	} else if (handle_any_open(first, last)) {
		handle_close_range(first, last, stack_capture_at(ra, cfa));
	}
	errno = saved;
	leave();
}

void lw_ev_send(int fd, uintptr_t ra, uintptr_t cfa)
{
	int saved = errno;
	if (enter()) {
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
		segment_reach_rendezvous();
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

int lw_ev_alloc_pending(size_t size)
{
	if (g_cfg.heap_mode == LW_HEAP_OFF || guard_busy())
		return 0;
	/* the sampler as heap_should_sample() runs it, on the thread's own
	 * count: the first crossing after the fork only starts a gap */
	if (g_cfg.heap_mode == LW_HEAP_SAMPLED) {
		t_heap_until_sample -= (int64_t)size;
		if (t_heap_until_sample > 0 || !heap_sample_slow())
			return 0;
	}
	int saved = errno;
	guard_set();
	int ok = lifecycle_fork_segment(NULL, 0) && heap_mode() != LW_HEAP_OFF;
	guard_clear();
	errno = saved;
	return ok;
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
