/* SPDX-License-Identifier: MIT */
/*
 * The interposed entry points of libleakwatch.so.
 *
 * Each hook is thin: resolve the real function, call it, hand the result to
 * the recorder, restore errno, return exactly what the real call returned.
 * The recorder runs only when the shim is initialised, the calling thread is
 * not already inside the shim, and the caller is the process that owns the
 * segment (a vfork child shares our memory but not our descriptors).
 *
 * This file also holds the constructor, the fork handler and the exit paths,
 * so that the recorder objects can be linked into the unit tests without
 * dragging in a constructor.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/single_threaded.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

#define EXPORT __attribute__((visibility("default")))


static _Atomic int g_ready;  /* 1 once the segment is set up */

#define REAL_DECL(ret, name, args) static ret (*real_##name) args
REAL_DECL(int, socket, (int, int, int));
REAL_DECL(int, socketpair, (int, int, int, int[2]));
REAL_DECL(int, connect, (int, const struct sockaddr *, socklen_t));
REAL_DECL(int, bind, (int, const struct sockaddr *, socklen_t));
REAL_DECL(int, accept, (int, struct sockaddr *, socklen_t *));
REAL_DECL(int, accept4, (int, struct sockaddr *, socklen_t *, int));
REAL_DECL(int, close, (int));
REAL_DECL(int, close_range, (unsigned, unsigned, int));
REAL_DECL(void, closefrom, (int));
REAL_DECL(int, dup, (int));
REAL_DECL(int, dup2, (int, int));
REAL_DECL(int, dup3, (int, int, int));
REAL_DECL(int, fcntl, (int, int, ...));
REAL_DECL(int, fcntl64, (int, int, ...));
REAL_DECL(ssize_t, recvmsg, (int, struct msghdr *, int));
REAL_DECL(ssize_t, write, (int, const void *, size_t));
REAL_DECL(ssize_t, writev, (int, const struct iovec *, int));
REAL_DECL(ssize_t, send, (int, const void *, size_t, int));
REAL_DECL(ssize_t, sendto, (int, const void *, size_t, int, const struct sockaddr *, socklen_t));
REAL_DECL(ssize_t, sendmsg, (int, const struct msghdr *, int));
REAL_DECL(int, sendmmsg, (int, struct mmsghdr *, unsigned int, int));
REAL_DECL(int, execve, (const char *, char *const[], char *const[]));
REAL_DECL(int, execv, (const char *, char *const[]));
REAL_DECL(int, execvp, (const char *, char *const[]));
REAL_DECL(int, execvpe, (const char *, char *const[], char *const[]));
REAL_DECL(int, fexecve, (int, char *const[], char *const[]));
REAL_DECL(int, execveat, (int, const char *, char *const[], char *const[], int));
REAL_DECL(void, exit, (int));
REAL_DECL(void, _exit, (int));
REAL_DECL(void, _Exit, (int));
REAL_DECL(void, siglongjmp, (struct __jmp_buf_tag *, int));
REAL_DECL(void, longjmp, (struct __jmp_buf_tag *, int));
REAL_DECL(void, _longjmp, (struct __jmp_buf_tag *, int));
REAL_DECL(void, __longjmp_chk, (struct __jmp_buf_tag *, int));

/* dlsym() may be called before our constructor (another library's
 * constructor calling socket()); it is idempotent, so a race only resolves
 * the same pointer twice. */
#define REAL(name)                                                                 \
	(real_##name ? real_##name                                                 \
		     : (real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)))

/* enter - may this call record?  Sets the re-entry guard on success. */
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

static void record_open(int fd, uint16_t origin)
{
	modules_refresh();
	handle_open_socket(fd, origin, -1, stack_capture());
}

EXPORT int socket(int domain, int type, int protocol)
{
	if (!REAL(socket)) {
		errno = ENOSYS;
		return -1;
	}
	int fd = real_socket(domain, type, protocol);
	if (fd >= 0 && enter()) {
		int saved = errno;
		record_open(fd, LW_ORIGIN_SOCKET);
		errno = saved;
		leave();
	}
	return fd;
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	if (!REAL(socketpair)) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_socketpair(domain, type, protocol, sv);
	if (r == 0 && enter()) {
		int saved = errno;
		modules_refresh();
		uint32_t stack = stack_capture();
		handle_open_socket(sv[0], LW_ORIGIN_SOCKETPAIR, -1, stack);
		handle_open_socket(sv[1], LW_ORIGIN_SOCKETPAIR, -1, stack);
		errno = saved;
		leave();
	}
	return r;
}

EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	if (!REAL(connect)) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_connect(fd, addr.__sockaddr__, len);
	int saved = errno;
	/* A non-blocking connect that is under way counts: the socket already
	 * has its peer, and that is what a leak report needs. */
	if ((r == 0 || saved == EINPROGRESS) && handle_is_open(fd) && enter()) {
		handle_connected(fd, addr.__sockaddr__, len);
		leave();
	}
	errno = saved;
	return r;
}

/* A listening socket's address is only known after bind(). */
EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	if (!REAL(bind)) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_bind(fd, addr.__sockaddr__, len);
	if (r == 0 && handle_is_open(fd) && enter()) {
		int saved = errno;
		handle_bound(fd);
		errno = saved;
		leave();
	}
	return r;
}

EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	if (!REAL(accept)) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_accept(fd, addr.__sockaddr__, len);
	if (r >= 0 && enter()) {
		int saved = errno;
		record_open(r, LW_ORIGIN_ACCEPT);
		errno = saved;
		leave();
	}
	return r;
}

EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
	if (!REAL(accept4)) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_accept4(fd, addr.__sockaddr__, len, flags);
	if (r >= 0 && enter()) {
		int saved = errno;
		record_open(r, LW_ORIGIN_ACCEPT);
		errno = saved;
		leave();
	}
	return r;
}

EXPORT int close(int fd)
{
	uint32_t pos = 0, pcs = 0;
	uint64_t pon = 0, pcn = 0;
	uint16_t porig = 0;
	int prev = -1;

	if (!REAL(close)) {
		errno = ENOSYS;
		return -1;
	}
	/* Untracked fds (files, pipes) pass with one load: no syscall, no unwind. */
	int tracked = handle_is_open(fd);
	int in = 0;
	if (tracked && enter()) {
		int saved = errno;
		prev = handle_before_close(fd, &pos, &pon, &pcs, &pcn, &porig);
		errno = saved;
		/* close() is a cancellation point: never hold the guard across it,
		 * or the thread's cancellation handlers would run unrecorded */
		leave();
	}
	int r = real_close(fd);
	/* close(-1) is a common "nothing to close" idiom (dash does it for every
	 * command); only a real descriptor number can be a double close. */
	if (r != 0 && errno == EBADF && fd >= 0) {
		int saved = errno;
		in = enter();
		if (in) {
			if (prev < 0)
				prev = handle_before_close(fd, &pos, &pon, &pcs, &pcn, &porig);
			if (prev == LW_H_OPEN) /* our record was stale: closed inside libc */
				segment_counter_add(LW_CTR_STALE_CLOSES, 1);
			else
				handle_bad_close(fd, prev, pos, pon, pcs, pcn, porig);
		}
		errno = saved;
	}
	if (in)
		leave();
	return r;
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	if (!REAL(close_range)) {
		errno = ENOSYS;
		return -1;
	}
	/* CLOSE_RANGE_CLOEXEC only marks fds; nothing is closed now.  Flags we
	 * do not know may make the call fail: then nothing is recorded. */
	if (!(flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) && !(flags & CLOSE_RANGE_CLOEXEC) &&
	    first <= last && enter()) {
		int saved = errno;
		/* close_range(fd, fd) is close(fd) that never fails with EBADF:
		 * of a descriptor we saw closed and that is not open now, it is
		 * a double close all the same */
		if (first == last && first <= INT_MAX && prim_fd_flags((int)first) < 0 &&
		    errno == EBADF)
			handle_close_range_bad((int)first);
		else
			handle_close_range(first, last);
		errno = saved;
		leave();
	}
	return real_close_range(first, last, flags);
}

/* glibc's closefrom() closes with the close_range system call directly,
 * where no close or close_range hook sees it. */
EXPORT void closefrom(int lowfd)
{
	if (!REAL(closefrom)) {
		syscall(SYS_close_range, (unsigned)(lowfd < 0 ? 0 : lowfd), ~0u, 0);
		return;
	}
	if (lowfd >= 0 && enter()) {
		int saved = errno;
		handle_close_range((unsigned)lowfd, ~0u);
		errno = saved;
		leave();
	}
	real_closefrom(lowfd);
}

static int after_dup(int oldfd, int r)
{
	if (r >= 0 && enter()) {
		int saved = errno;
		handle_dup(oldfd, r);
		errno = saved;
		leave();
	}
	return r;
}

EXPORT int dup(int oldfd)
{
	if (!REAL(dup)) {
		errno = ENOSYS;
		return -1;
	}
	return after_dup(oldfd, real_dup(oldfd));
}

/* dup2 onto an open fd closes it implicitly; the kernel swaps the numbers
 * atomically, so the record of newfd is replaced after the call. */
EXPORT int dup2(int oldfd, int newfd)
{
	if (!REAL(dup2)) {
		errno = ENOSYS;
		return -1;
	}
	return after_dup(oldfd, real_dup2(oldfd, newfd));
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (!REAL(dup3)) {
		errno = ENOSYS;
		return -1;
	}
	return after_dup(oldfd, real_dup3(oldfd, newfd, flags));
}

/* fcntl's third argument is an int or a pointer depending on cmd; like glibc
 * we fetch it as a pointer-sized value and pass it on unchanged. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int r = real(fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return after_dup(fd, r);
	return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(REAL(fcntl64), fd, cmd, arg);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!REAL(recvmsg)) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t r = real_recvmsg(fd, msg, flags);
	if (r < 0 || !msg || !msg->msg_control || msg->msg_controllen == 0)
		return r;
	if (!enter())
		return r;
	int saved = errno;
	uint32_t stack = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int nfd;
			memcpy(&nfd, CMSG_DATA(c) + i * sizeof(int), sizeof nfd);
			if (!stack) {
				modules_refresh();
				stack = stack_capture();
			}
			/* records only if nfd is a socket */
			handle_open_socket(nfd, LW_ORIGIN_SCM_RIGHTS, -1, stack);
		}
	}
	errno = saved;
	leave();
	return r;
}

/* ---- last use: send-side calls on tracked sockets ------------------------------
 *
 * An fd that is not a tracked socket costs one load from the handle table.
 * On a tracked socket the stack of the call is recorded as the socket's
 * "last use": in a connection pool the code that last wrote to a connection
 * is the code that checked it out, which is what a leak report must name.
 * The call-site cache makes a repeated call site cost a few loads. */
static void __attribute__((noinline)) note_use(int fd, uintptr_t ra, uintptr_t cfa)
{
	int saved = errno;
	if (enter()) {
		handle_used(fd, stack_capture_at(ra, cfa));
		leave();
	}
	errno = saved;
}

#define NOTE_USE(fd, r)                                                    \
	do {                                                               \
		if ((r) >= 0 && handle_is_open(fd))                        \
			note_use((fd), CALLER_RA(), CALLER_CFA());              \
	} while (0)

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	if (!REAL(write)) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t r = real_write(fd, buf, n);
	NOTE_USE(fd, r);
	return r;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	if (!REAL(writev)) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t r = real_writev(fd, iov, cnt);
	NOTE_USE(fd, r);
	return r;
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	if (!REAL(send)) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t r = real_send(fd, buf, n, flags);
	NOTE_USE(fd, r);
	return r;
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, __CONST_SOCKADDR_ARG addr,
		      socklen_t len)
{
	if (!REAL(sendto)) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t r = real_sendto(fd, buf, n, flags, addr.__sockaddr__, len);
	NOTE_USE(fd, r);
	return r;
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!REAL(sendmsg)) {
		errno = ENOSYS;
		return -1;
	}
	ssize_t r = real_sendmsg(fd, msg, flags);
	NOTE_USE(fd, r);
	return r;
}

EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags)
{
	if (!REAL(sendmmsg)) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_sendmmsg(fd, vec, n, flags);
	NOTE_USE(fd, r);
	return r;
}

/* ---- exec: mark the old image; the new one starts its own segment ------- */

static int exec_begin(void)
{
	if (!enter())
		return 0;
	segment_mark_state(LW_STATE_EXECED);
	return 1;
}

static void exec_failed(int marked)
{
	if (!marked)
		return;
	int saved = errno;
	segment_mark_state(LW_STATE_RUNNING);
	leave();
	errno = saved;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	if (!REAL(execve)) {
		errno = ENOSYS;
		return -1;
	}
	int m = exec_begin();
	int r = real_execve(path, argv, envp);
	exec_failed(m);
	return r;
}

EXPORT int execv(const char *path, char *const argv[])
{
	if (!REAL(execv)) {
		errno = ENOSYS;
		return -1;
	}
	int m = exec_begin();
	int r = real_execv(path, argv);
	exec_failed(m);
	return r;
}

EXPORT int execvp(const char *file, char *const argv[])
{
	if (!REAL(execvp)) {
		errno = ENOSYS;
		return -1;
	}
	int m = exec_begin();
	int r = real_execvp(file, argv);
	exec_failed(m);
	return r;
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (!REAL(execvpe)) {
		errno = ENOSYS;
		return -1;
	}
	int m = exec_begin();
	int r = real_execvpe(file, argv, envp);
	exec_failed(m);
	return r;
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (!REAL(fexecve)) {
		errno = ENOSYS;
		return -1;
	}
	int m = exec_begin();
	int r = real_fexecve(fd, argv, envp);
	exec_failed(m);
	return r;
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	if (!REAL(execveat)) {
		errno = ENOSYS;
		return -1;
	}
	int m = exec_begin();
	int r = real_execveat(dirfd, path, argv, envp, flags);
	exec_failed(m);
	return r;
}

/* The execl family is variadic; glibc builds an argv and calls its internal
 * execve, which no hook sees, so the same is done here on the stack. */
static size_t count_args(const char *arg0, va_list ap)
{
	size_t n = 1;
	va_list cp;
	va_copy(cp, ap);
	if (arg0)
		while (va_arg(cp, const char *))
			n++;
	va_end(cp);
	return n;
}

/* glibc declares arg nonnull, but a NULL argv[0] is legal for the kernel and
 * must be passed on as it came. */
#pragma GCC diagnostic ignored "-Wnonnull-compare"

/* Reads the n - 1 arguments after arg0 and the terminating NULL, leaving
 * `ap` at execle's envp. */
#define COLLECT_ARGV(argv, n, arg0, ap)                                  \
	char *argv[n + 1];                                               \
	argv[0] = (char *)(arg0);                                        \
	for (size_t i_ = 1; i_ < n; i_++)                               \
		argv[i_] = va_arg(ap, char *);                           \
	if (arg0)                                                        \
		(void)va_arg(ap, char *);                                \
	argv[n] = NULL

EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	size_t n = count_args(arg, ap);
	COLLECT_ARGV(argv, n, arg, ap);
	va_end(ap);
	return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	size_t n = count_args(arg, ap);
	COLLECT_ARGV(argv, n, arg, ap);
	va_end(ap);
	return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	size_t n = count_args(arg, ap);
	COLLECT_ARGV(argv, n, arg, ap);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}

/* ---- longjmp out of a signal handler ------------------------------------------
 *
 * A handler that interrupted the recorder and leaves with siglongjmp()
 * abandons the recording frame: its guard would stay set (the thread never
 * recorded again) and a slot it held would stay locked.  The jump's target
 * stack pointer tells whether it leaves that frame.
 */

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

static void before_longjmp(const struct __jmp_buf_tag *env)
{
	if (g_in_shim && env && jmpbuf_sp(env) > t_guard_sp)
		guard_abandon();
}

#define LONGJMP_HOOK(name)                                                          \
	EXPORT void name(struct __jmp_buf_tag env[1], int val)                       \
	{                                                                            \
		before_longjmp(env);                                                 \
		if (REAL(name))                                                      \
			real_##name(env, val);                                       \
		__builtin_trap(); /* no libc symbol: the program could not link */   \
	}

void __longjmp_chk(struct __jmp_buf_tag env[1], int val) __attribute__((noreturn));
LONGJMP_HOOK(siglongjmp)
LONGJMP_HOOK(longjmp)
LONGJMP_HOOK(_longjmp)
LONGJMP_HOOK(__longjmp_chk)

/* ---- exit ---------------------------------------------------------------- */

/* Returning from main() calls exit() inside libc, where no hook sees it;
 * on_exit() handlers are the one place that learns the status then. */
static void on_exit_status(int status, void *arg)
{
	(void)arg;
	if (atomic_load_explicit(&g_ready, memory_order_acquire) && segment_active()) {
		g_seg.hdr->exit_status = status;
		g_seg.hdr->exit_known = 1;
	}
}

static void note_exit(int status, int final)
{
	if (!atomic_load_explicit(&g_ready, memory_order_acquire) || !segment_active())
		return;
	g_seg.hdr->exit_status = status;
	g_seg.hdr->exit_known = 1;
	if (final) {
		/* _exit: no destructor will run; do what it would have done */
		heap_thread_flush();
		segment_mark_state(LW_STATE_EXITED);
		segment_unlink_if_empty();
	}
}

EXPORT void exit(int status)
{
	note_exit(status, 0);
	if (REAL(exit))
		real_exit(status);
	syscall(SYS_exit_group, status); /* no libc symbol: end the process anyway */
	__builtin_unreachable();
}

EXPORT void _exit(int status)
{
	note_exit(status, 1);
	if (REAL(_exit))
		real__exit(status);
	syscall(SYS_exit_group, status); /* no libc symbol: end the process anyway */
	__builtin_unreachable();
}

EXPORT void _Exit(int status)
{
	note_exit(status, 1);
	if (REAL(_Exit))
		real__Exit(status);
	syscall(SYS_exit_group, status); /* no libc symbol: end the process anyway */
	__builtin_unreachable();
}

/* ---- start-up, fork, shutdown ---------------------------------------------- */



static void resolve_all(void)
{
	REAL(socket); REAL(socketpair); REAL(connect); REAL(bind); REAL(accept); REAL(accept4);
	REAL(close); REAL(close_range); REAL(dup); REAL(dup2); REAL(dup3);
	REAL(fcntl); REAL(fcntl64); REAL(recvmsg);
	REAL(write); REAL(writev); REAL(send); REAL(sendto); REAL(sendmsg); REAL(sendmmsg);
	REAL(execve); REAL(execv); REAL(execvp); REAL(execvpe); REAL(fexecve); REAL(execveat);
	REAL(exit); REAL(_exit); REAL(_Exit); REAL(closefrom);
	REAL(siglongjmp); REAL(longjmp); REAL(_longjmp); REAL(__longjmp_chk);
}

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

/*
 * segment_privatize - fork child: make the parent's segment private to us
 * in place.  It must stay mapped: fork() may have run in a signal handler
 * that interrupted the shim, and the interrupted frame, which this child
 * resumes, holds pointers into it.  Replaced by a copy-on-write mapping of
 * the same file, it reads as before and whatever that frame still writes
 * stays in the child.  If the file cannot be opened (no descriptor left),
 * the shared mapping stays: never unmapped under a live frame.  The brief
 * descriptor is ours alone: this process has one thread now and signals
 * are blocked.
 */
static void segment_privatize(const struct shim_segment *parent)
{
	sigset_t old;
	shim_signals_block(&old);
	int fd = prim_open(parent->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd >= 0) {
		(void)prim_mmap(parent->hdr, parent->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
				fd, 0);
		prim_close(fd);
	}
	shim_signals_restore(&old);
}

static void atfork_child(void)
{
	struct shim_segment parent = g_seg;

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
	}
	/* The parent's mapping is shared; the child must never write to it. */
	segment_privatize(&parent);
	t_held_seq = was_held;
	t_guard_sp = was_sp;
	g_in_shim = was_in;
	errno = saved;
}

__attribute__((constructor)) static void shim_init(void)
{
	int saved = errno;

	resolve_all();
	g_in_shim = 1;
	if (getauxval(AT_SECURE)) /* setuid/setgid: do nothing at all */
		goto out;
	config_load();
	if (g_cfg.disabled)
		goto out;
	dl_iterate_phdr(self_range, (void *)(uintptr_t)&shim_init);
	if (segment_create(NULL) != 0)
		goto out;
	modules_refresh();
	modules_scan();
	(void)handles_mirror_init(g_seg.hdr->handles.capacity);
	handle_scan_inherited();
	heap_hooks_init();
	heap_init(g_cfg.heap_mode, g_cfg.sample_bytes);
	pthread_atfork(atfork_prepare, NULL, atfork_child);
	on_exit(on_exit_status, NULL);
	segment_mark_state(LW_STATE_RUNNING);
	atomic_store_explicit(&g_ready, 1, memory_order_release);
out:
	g_in_shim = 0;
	errno = saved;
}

__attribute__((destructor)) static void shim_fini(void)
{
	int saved = errno;
	if (atomic_load(&g_ready) && segment_active()) {
		g_in_shim = 1;
		heap_thread_flush();
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
