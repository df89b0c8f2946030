/* SPDX-License-Identifier: MIT */
/*
 * The interposed descriptor, exec, exit and longjmp entry points of
 * libleakwatch.so (the malloc family is in heap_hooks.c).
 *
 * Every hook is the real call plus one event (events.h), which decides
 * whether to record and owns every recorder step; a hook returns exactly
 * what the real call returned, with its errno.  The real functions are
 * listed once, in LW_HOOKS below, which declares their pointers and
 * resolves them; hooks of one shape (send-side calls, dups, execs, jumps,
 * exits) are generated from their own lists.
 *
 * The constructor and destructor are two stubs: the lifecycle is in
 * lifecycle.c, inside the recorder library the unit tests link.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <mqueue.h>
#include <pty.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "events.h"

#define EXPORT __attribute__((visibility("default")))

/* glibc has no prototype for the fortified longjmp */
void __longjmp_chk(struct __jmp_buf_tag env[1], int val) __attribute__((noreturn));
/* ...nor, without _FORTIFY_SOURCE, for the fortified opens (what a caller
 * compiled with it calls when the flags are not a constant) */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/* Every libc function a hook here forwards to. */
#define LW_HOOKS(X)                                                          \
	X(socket) X(socketpair) X(connect) X(bind) X(accept) X(accept4)      \
	X(close) X(close_range) X(closefrom)                                 \
	X(dup) X(dup2) X(dup3) X(fcntl) X(fcntl64) X(recvmsg)                \
	X(open) X(open64) X(openat) X(openat64) X(creat) X(creat64)          \
	X(__open_2) X(__open64_2) X(__openat_2) X(__openat64_2)              \
	X(pipe) X(pipe2) X(eventfd) X(epoll_create) X(epoll_create1)         \
	X(timerfd_create) X(signalfd) X(inotify_init) X(inotify_init1)       \
	X(fanotify_init) X(memfd_create) X(pidfd_open)                       \
	X(mkstemp) X(mkstemp64) X(mkostemp) X(mkostemp64)                    \
	X(mkstemps) X(mkstemps64) X(mkostemps) X(mkostemps64)                \
	X(tmpfile) X(tmpfile64) X(fopen) X(fopen64) X(freopen) X(freopen64)  \
	X(popen) X(opendir) X(fclose) X(pclose) X(closedir)                  \
	X(shm_open) X(posix_openpt) X(getpt) X(openpty) X(forkpty)           \
	X(mq_open) X(mq_close) X(pidfd_getfd)                                \
	X(fsopen) X(fsmount) X(fspick) X(open_tree)                          \
	X(write) X(writev) X(send) X(sendto) X(sendmsg) X(sendmmsg)          \
	X(execve) X(execv) X(execvp) X(execvpe) X(fexecve) X(execveat)       \
	X(exit) X(_exit) X(_Exit)                                            \
	X(siglongjmp) X(longjmp) X(_longjmp) X(__longjmp_chk)                \
	LW_HOOKS_CLONE(X)

#if defined(__x86_64__)
#define LW_HOOKS_CLONE(X) X(clone)
#else
#define LW_HOOKS_CLONE(X)
#endif

/* The pointers take their types from libc's own prototypes. */
#define REAL_DECL(name) static __typeof__(name) *real_##name;
LW_HOOKS(REAL_DECL)

/* dlsym() may be called before our constructor (another library's
 * constructor calling socket()); it is idempotent, so a race only resolves
 * the same pointer twice. */
#define REAL(name)                                                                 \
	(real_##name ? real_##name                                                 \
		     : (real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)))

/* The prologue of every hook that returns int/ssize_t: no libc symbol
 * (a static program, a stripped libc) fails the call as unsupported. */
#define REAL_OR_ENOSYS(name)                                                       \
	do {                                                                       \
		if (!REAL(name)) {                                                 \
			errno = ENOSYS;                                            \
			return -1;                                                 \
		}                                                                  \
	} while (0)

#define RESOLVE(name) (void)REAL(name);
static void resolve_all(void)
{
	LW_HOOKS(RESOLVE)
}

/* ---- sockets ---------------------------------------------------------------- */

EXPORT int socket(int domain, int type, int protocol)
{
	REAL_OR_ENOSYS(socket);
	int fd = real_socket(domain, type, protocol);
	if (fd >= 0)
		lw_ev_socket_created(fd, domain, type, protocol, CALLER_RA(), CALLER_CFA());
	return fd;
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	REAL_OR_ENOSYS(socketpair);
	int r = real_socketpair(domain, type, protocol, sv);
	if (r == 0)
		lw_ev_socketpair_opened(sv, domain, type, protocol, CALLER_RA(), CALLER_CFA());
	return r;
}

/*
 * The record needs the peer address; a caller that does not ask for it
 * (addr NULL) gets the call made with a buffer of ours, which saves the
 * getpeername() system call.  Only for listeners whose accept() cannot fail
 * on that account (the kernel fails accept() with ECONNABORTED when it
 * cannot name the peer: lw_ev_accept_borrows).
 */
#define ACCEPT_HOOK(name, ...)                                                             \
	{                                                                                  \
		REAL_OR_ENOSYS(name);                                                      \
		struct sockaddr_storage own;                                               \
		socklen_t own_len = sizeof own;                                            \
		struct sockaddr *sa = addr.__sockaddr__;                                   \
		socklen_t cap = sa && len ? *len : 0, *lenp = len;                         \
		if (!sa && lw_ev_accept_borrows(fd)) {                                     \
			sa = (struct sockaddr *)&own;                                      \
			lenp = &own_len;                                                   \
			cap = own_len;                                                     \
		}                                                                          \
		int r = real_##name(fd, sa, lenp, ##__VA_ARGS__);                          \
		if (r >= 0)                                                                \
			lw_ev_accepted(r, fd, sa, cap, sa && lenp ? *lenp : 0, CALLER_RA(),  \
				       CALLER_CFA());                                      \
		return r;                                                                  \
	}

EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
ACCEPT_HOOK(accept)

EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
ACCEPT_HOOK(accept4, flags)

EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	REAL_OR_ENOSYS(connect);
	int r = real_connect(fd, addr, len);
	/* A non-blocking connect that is under way counts: the socket already
	 * has its peer, and that is what a leak report needs. */
	if (r == 0 || errno == EINPROGRESS)
		lw_ev_connected(fd, addr.__sockaddr__, len, CALLER_RA(), CALLER_CFA());
	return r;
}

/* A listening socket's address is only known after bind(). */
EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	REAL_OR_ENOSYS(bind);
	int r = real_bind(fd, addr, len);
	if (r == 0)
		lw_ev_bound(fd);
	return r;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	REAL_OR_ENOSYS(recvmsg);
	ssize_t r = real_recvmsg(fd, msg, flags);
	if (r >= 0)
		lw_ev_fds_received(msg, CALLER_RA(), CALLER_CFA());
	return r;
}

/* ---- every other kind of descriptor --------------------------------------------
 *
 * The call tells what it made (no fstat: that would be a system call of
 * ours on every open); the record takes the path as the caller gave it.
 * stdio and dirent open and close inside libc, where the open and close
 * hooks never see it, so their own entry points are hooked, and their
 * closes remove the record before the real call (it closes the fd). */

#define REAL_OR_NULL(name)                                                         \
	do {                                                                       \
		if (!REAL(name)) {                                                 \
			errno = ENOSYS;                                            \
			return NULL;                                               \
		}                                                                  \
	} while (0)

/* The record of a new descriptor of kind k made from path with flags. */
#define FD_NEW(fd, k, flags, p)                                                    \
	do {                                                                       \
		struct handle_fd d_ = { .kind = (k), .oflags = (flags), .path = (p) }; \
		lw_ev_fd_created((fd), &d_, CALLER_RA(), CALLER_CFA());            \
	} while (0)

static inline int open_kind(int flags)
{
	return (flags & O_DIRECTORY) ? LW_FD_DIR : LW_FD_FILE;
}

/* open's mode argument is there only when the flags need it; like glibc,
 * it is read then and passed on. */
#define OPEN_HOOK(name, params, args, flags)                                       \
	EXPORT int name params                                                     \
	{                                                                          \
		mode_t mode = 0;                                                   \
		if (__OPEN_NEEDS_MODE(flags)) {                                    \
			va_list ap;                                                \
			va_start(ap, flags);                                       \
			mode = va_arg(ap, mode_t);                                 \
			va_end(ap);                                                \
		}                                                                  \
		REAL_OR_ENOSYS(name);                                              \
		int r = real_##name args;                                          \
		if (r >= 0)                                                        \
			FD_NEW(r, open_kind(flags), flags, path);                  \
		return r;                                                          \
	}
OPEN_HOOK(open, (const char *path, int flags, ...), (path, flags, mode), flags)
OPEN_HOOK(open64, (const char *path, int flags, ...), (path, flags, mode), flags)
OPEN_HOOK(openat, (int dirfd, const char *path, int flags, ...), (dirfd, path, flags, mode), flags)
OPEN_HOOK(openat64, (int dirfd, const char *path, int flags, ...), (dirfd, path, flags, mode), flags)

/* Fixed-argument makers: (return, name, params, args, success, record) */
#define LW_FD_HOOKS(X)                                                                     \
	X(creat, (const char *path, mode_t mode), (path, mode),                            \
	  FD_NEW(r, LW_FD_FILE, O_CREAT | O_WRONLY | O_TRUNC, path))                       \
	X(creat64, (const char *path, mode_t mode), (path, mode),                          \
	  FD_NEW(r, LW_FD_FILE, O_CREAT | O_WRONLY | O_TRUNC, path))                       \
	X(__open_2, (const char *path, int flags), (path, flags),                          \
	  FD_NEW(r, open_kind(flags), flags, path))                                        \
	X(__open64_2, (const char *path, int flags), (path, flags),                        \
	  FD_NEW(r, open_kind(flags), flags, path))                                        \
	X(__openat_2, (int dirfd, const char *path, int flags), (dirfd, path, flags),      \
	  FD_NEW(r, open_kind(flags), flags, path))                                        \
	X(__openat64_2, (int dirfd, const char *path, int flags), (dirfd, path, flags),    \
	  FD_NEW(r, open_kind(flags), flags, path))                                        \
	X(eventfd, (unsigned int count, int flags), (count, flags),                        \
	  FD_NEW(r, LW_FD_EVENTFD, flags, NULL))                                           \
	X(epoll_create, (int size), (size), FD_NEW(r, LW_FD_EPOLL, 0, NULL))               \
	X(epoll_create1, (int flags), (flags), FD_NEW(r, LW_FD_EPOLL, flags, NULL))        \
	X(timerfd_create, (__clockid_t clk, int flags), (clk, flags),                      \
	  FD_NEW(r, LW_FD_TIMERFD, flags, NULL))                                           \
	X(inotify_init, (void), (), FD_NEW(r, LW_FD_INOTIFY, 0, NULL))                     \
	X(inotify_init1, (int flags), (flags), FD_NEW(r, LW_FD_INOTIFY, flags, NULL))      \
	X(fanotify_init, (unsigned int flags, unsigned int event_flags), (flags, event_flags), \
	  FD_NEW(r, LW_FD_FANOTIFY, (int)flags, NULL))                                     \
	X(memfd_create, (const char *name, unsigned int flags), (name, flags),             \
	  FD_NEW(r, LW_FD_MEMFD, (int)flags, name))                                        \
	X(pidfd_open, (pid_t pid, unsigned int flags), (pid, flags),                       \
	  FD_NEW(r, LW_FD_PIDFD, (int)flags, NULL))                                        \
	X(mkstemp, (char *tmpl), (tmpl), FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL, tmpl)) \
	X(mkstemp64, (char *tmpl), (tmpl), FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL, tmpl)) \
	X(mkostemp, (char *tmpl, int flags), (tmpl, flags),                                \
	  FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL | flags, tmpl))                  \
	X(mkostemp64, (char *tmpl, int flags), (tmpl, flags),                              \
	  FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL | flags, tmpl))                  \
	X(mkstemps, (char *tmpl, int sfx), (tmpl, sfx),                                    \
	  FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL, tmpl))                          \
	X(mkstemps64, (char *tmpl, int sfx), (tmpl, sfx),                                  \
	  FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL, tmpl))                          \
	X(mkostemps, (char *tmpl, int sfx, int flags), (tmpl, sfx, flags),                 \
	  FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL | flags, tmpl))                  \
	X(mkostemps64, (char *tmpl, int sfx, int flags), (tmpl, sfx, flags),               \
	  FD_NEW(r, LW_FD_FILE, O_RDWR | O_CREAT | O_EXCL | flags, tmpl))                  \
	/* libc opens these with its internal open, where no open hook sees it */         \
	X(shm_open, (const char *name, int flags, mode_t mode), (name, flags, mode),       \
	  FD_NEW(r, LW_FD_FILE, flags, name))                                              \
	X(posix_openpt, (int flags), (flags), FD_NEW(r, LW_FD_FILE, flags, "/dev/ptmx"))   \
	X(getpt, (void), (), FD_NEW(r, LW_FD_FILE, O_RDWR | O_NOCTTY, "/dev/ptmx"))        \
	/* the new mount API: file system contexts and detached trees */                  \
	X(fsopen, (const char *fsname, unsigned int flags), (fsname, flags),               \
	  FD_NEW(r, LW_FD_OTHER, (int)flags, fsname))                                      \
	X(fsmount, (int fsfd, unsigned int flags, unsigned int attr), (fsfd, flags, attr), \
	  FD_NEW(r, LW_FD_OTHER, (int)flags, NULL))                                        \
	X(fspick, (int dfd, const char *path, unsigned int flags), (dfd, path, flags),     \
	  FD_NEW(r, LW_FD_OTHER, (int)flags, path))                                        \
	X(open_tree, (int dfd, const char *path, unsigned int flags), (dfd, path, flags),  \
	  FD_NEW(r, LW_FD_OTHER, (int)flags, path))

#define FD_HOOK(name, params, args, record)                                                \
	EXPORT int name params                                                             \
	{                                                                                  \
		REAL_OR_ENOSYS(name);                                                      \
		int r = real_##name args;                                                  \
		if (r >= 0)                                                                \
			record;                                                            \
		return r;                                                                  \
	}
LW_FD_HOOKS(FD_HOOK)

/* signalfd(fd, ...) with an fd of its own only changes its mask */
EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	REAL_OR_ENOSYS(signalfd);
	int r = real_signalfd(fd, mask, flags);
	if (r >= 0 && fd == -1)
		FD_NEW(r, LW_FD_SIGNALFD, flags, NULL);
	return r;
}

#define PIPE_HOOK(name, params, args, flags)                                               \
	EXPORT int name params                                                             \
	{                                                                                  \
		REAL_OR_ENOSYS(name);                                                      \
		int r = real_##name args;                                                  \
		if (r == 0) {                                                              \
			struct handle_fd d_ = { .kind = LW_FD_PIPE, .oflags = (flags) };   \
			lw_ev_fds_created(fds, &d_, CALLER_RA(), CALLER_CFA());            \
		}                                                                          \
		return r;                                                                  \
	}
PIPE_HOOK(pipe, (int fds[2]), (fds), 0)
PIPE_HOOK(pipe2, (int fds[2], int flags), (fds, flags), flags)

/* openpty: both ends, the master as posix_openpt makes it, the slave by the
 * name the caller asked for (NULL: /proc/PID/fd names it) */
EXPORT int openpty(int *amaster, int *aslave, char *name, const struct termios *termp,
		   const struct winsize *winp)
{
	REAL_OR_ENOSYS(openpty);
	int r = real_openpty(amaster, aslave, name, termp, winp);
	if (r == 0) {
		FD_NEW(*amaster, LW_FD_FILE, O_RDWR | O_NOCTTY, "/dev/ptmx");
		FD_NEW(*aslave, LW_FD_FILE, O_RDWR | O_NOCTTY, name);
	}
	return r;
}

/* forkpty: the parent keeps the master (the slave it closed inside libc
 * was never recorded); the child's ends are its standard descriptors now,
 * made inside libc too. */
EXPORT pid_t forkpty(int *amaster, char *name, const struct termios *termp,
		     const struct winsize *winp)
{
	REAL_OR_ENOSYS(forkpty);
	pid_t pid = real_forkpty(amaster, name, termp, winp);
	if (pid > 0 && *amaster >= 0)
		FD_NEW(*amaster, LW_FD_FILE, O_RDWR | O_NOCTTY, "/dev/ptmx");
	return pid;
}

/* mq_open's mode and attributes are there only with O_CREAT; mq_close
 * closes with the system call itself, where no close hook sees it. */
EXPORT mqd_t mq_open(const char *name, int flags, ...)
{
	mode_t mode = 0;
	struct mq_attr *attr = NULL;
	if (flags & O_CREAT) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		attr = va_arg(ap, struct mq_attr *);
		va_end(ap);
	}
	REAL_OR_ENOSYS(mq_open);
	mqd_t r = (flags & O_CREAT) ? real_mq_open(name, flags, mode, attr) : real_mq_open(name, flags);
	if (r >= 0)
		FD_NEW(r, LW_FD_OTHER, flags, name);
	return r;
}

EXPORT int mq_close(mqd_t mq)
{
	REAL_OR_ENOSYS(mq_close);
	LW_EV_CLOSE_INSIDE(mq);
	return real_mq_close(mq);
}

/* pidfd_getfd: a copy of another process's descriptor, of any kind */
EXPORT int pidfd_getfd(int pidfd, int targetfd, unsigned int flags)
{
	REAL_OR_ENOSYS(pidfd_getfd);
	int r = real_pidfd_getfd(pidfd, targetfd, flags);
	if (r >= 0)
		lw_ev_fd_received(r, CALLER_RA(), CALLER_CFA());
	return r;
}

/* fopen's mode as open flags (what glibc passes to open) */
static int fopen_flags(const char *mode)
{
	int acc = O_RDONLY, f = 0;
	if (!mode)
		return 0;
	switch (mode[0]) {
	case 'w': acc = O_WRONLY; f = O_CREAT | O_TRUNC; break;
	case 'a': acc = O_WRONLY; f = O_CREAT | O_APPEND; break;
	default: break;
	}
	for (const char *p = mode + 1; *p && p < mode + 7; p++) {
		if (*p == '+')
			acc = O_RDWR;
		else if (*p == 'e')
			f |= O_CLOEXEC;
		else if (*p == 'x')
			f |= O_EXCL;
	}
	return acc | f;
}

/* fd_of - the descriptor under a FILE, errno kept (fileno fails with EBADF
 * on a stream without one: fmemopen, fopencookie). */
static int fd_of(FILE *fp)
{
	int e = errno;
	int fd = fp ? fileno(fp) : -1;
	errno = e;
	return fd;
}

#define FOPEN_HOOK(name)                                                                   \
	EXPORT FILE *name(const char *path, const char *mode)                              \
	{                                                                                  \
		REAL_OR_NULL(name);                                                        \
		FILE *f = real_##name(path, mode);                                         \
		int fd = fd_of(f);                                                         \
		if (fd >= 0)                                                               \
			FD_NEW(fd, LW_FD_FILE, fopen_flags(mode), path);                   \
		return f;                                                                  \
	}
FOPEN_HOOK(fopen)
FOPEN_HOOK(fopen64)

/* freopen closes the stream's descriptor inside libc, then opens path
 * (path NULL: the same file again, on the same number; its record stays). */
#define FREOPEN_HOOK(name)                                                                 \
	EXPORT FILE *name(const char *path, const char *mode, FILE *fp)                    \
	{                                                                                  \
		REAL_OR_NULL(name);                                                        \
		if (path)                                                                  \
			LW_EV_CLOSE_INSIDE(fd_of(fp));                                     \
		FILE *f = real_##name(path, mode, fp);                                     \
		int fd = path ? fd_of(f) : -1;                                             \
		if (fd >= 0)                                                               \
			FD_NEW(fd, LW_FD_FILE, fopen_flags(mode), path);                   \
		return f;                                                                  \
	}
FREOPEN_HOOK(freopen)
FREOPEN_HOOK(freopen64)

#define TMPFILE_HOOK(name)                                                                 \
	EXPORT FILE *name(void)                                                            \
	{                                                                                  \
		REAL_OR_NULL(name);                                                        \
		FILE *f = real_##name();                                                   \
		int fd = fd_of(f);                                                         \
		if (fd >= 0)                                                               \
			FD_NEW(fd, LW_FD_FILE, O_RDWR | O_TMPFILE, NULL);                  \
		return f;                                                                  \
	}
TMPFILE_HOOK(tmpfile)
TMPFILE_HOOK(tmpfile64)

/* popen: our end of the pipe; the record's path is the command */
EXPORT FILE *popen(const char *command, const char *mode)
{
	REAL_OR_NULL(popen);
	FILE *f = real_popen(command, mode);
	int fd = fd_of(f);
	if (fd >= 0)
		FD_NEW(fd, LW_FD_PIPE, fopen_flags(mode), command);
	return f;
}

/* dir_fd - dirfd() of d, errno kept; -1 for NULL (glibc's closedir fails
 * it with EINVAL, dirfd would crash) */
static int dir_fd(DIR *d)
{
	int e = errno;
	int fd = d ? dirfd(d) : -1;
	errno = e;
	return fd;
}

EXPORT DIR *opendir(const char *path)
{
	REAL_OR_NULL(opendir);
	DIR *d = real_opendir(path);
	int fd = dir_fd(d);
	if (fd >= 0)
		FD_NEW(fd, LW_FD_DIR, O_RDONLY | O_DIRECTORY, path);
	return d;
}

EXPORT int fclose(FILE *fp)
{
	REAL_OR_ENOSYS(fclose);
	LW_EV_CLOSE_INSIDE(fd_of(fp));
	return real_fclose(fp);
}

EXPORT int pclose(FILE *fp)
{
	REAL_OR_ENOSYS(pclose);
	LW_EV_CLOSE_INSIDE(fd_of(fp));
	return real_pclose(fp);
}

EXPORT int closedir(DIR *d)
{
	REAL_OR_ENOSYS(closedir);
	LW_EV_CLOSE_INSIDE(dir_fd(d));
	return real_closedir(d);
}

/* ---- close ------------------------------------------------------------------ */

EXPORT int close(int fd)
{
	struct lw_close_note note;
	REAL_OR_ENOSYS(close);
	LW_EV_CLOSE_BEFORE(fd, &note);
	int r = real_close(fd);
	if (__builtin_expect(r != 0, 0))
		lw_ev_close_failed(fd, &note);
	return r;
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	REAL_OR_ENOSYS(close_range);
	lw_ev_close_range(first, last, flags, CALLER_RA(), CALLER_CFA());
	return real_close_range(first, last, flags);
}

/* glibc's closefrom() closes with the close_range system call directly,
 * where no close or close_range hook sees it. */
EXPORT void closefrom(int lowfd)
{
	if (!REAL(closefrom)) {
		(void)prim_close_range((unsigned)(lowfd < 0 ? 0 : lowfd), ~0u, 0);
		return;
	}
	if (lowfd >= 0)
		lw_ev_close_range((unsigned)lowfd, ~0u, 0, CALLER_RA(), CALLER_CFA());
	real_closefrom(lowfd);
}

/* ---- dup: dup2 onto an open fd closes it implicitly; the kernel swaps the
 * numbers atomically, so the record of newfd is replaced after the call. */

#define LW_DUP_HOOKS(X)                                                                \
	X(dup, (int oldfd), (oldfd))                                                   \
	X(dup2, (int oldfd, int newfd), (oldfd, newfd))                                \
	X(dup3, (int oldfd, int newfd, int flags), (oldfd, newfd, flags))

#define DUP_HOOK(name, params, args)                                                   \
	EXPORT int name params                                                         \
	{                                                                              \
		REAL_OR_ENOSYS(name);                                                  \
		int r = real_##name args;                                              \
		if (r >= 0)                                                            \
			lw_ev_dup(oldfd, r, CALLER_RA(), CALLER_CFA());                \
		return r;                                                              \
	}
LW_DUP_HOOKS(DUP_HOOK)

/* fcntl's third argument is an int or a pointer depending on cmd; like glibc
 * we fetch it as a pointer-sized value and pass it on unchanged. */
#define FCNTL_HOOK(name)                                                               \
	EXPORT int name(int fd, int cmd, ...)                                          \
	{                                                                              \
		va_list ap;                                                            \
		va_start(ap, cmd);                                                     \
		void *arg = va_arg(ap, void *);                                        \
		va_end(ap);                                                            \
		REAL_OR_ENOSYS(name);                                                  \
		int r = real_##name(fd, cmd, arg);                                     \
		if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))              \
			lw_ev_dup(fd, r, CALLER_RA(), CALLER_CFA());                   \
		return r;                                                              \
	}
FCNTL_HOOK(fcntl)
FCNTL_HOOK(fcntl64)

/* ---- last use: send-side calls on tracked sockets ------------------------------
 *
 * An fd that is not a tracked socket costs one load from the handle table.
 * On a tracked socket the stack of the call is recorded as the socket's
 * "last use": in a connection pool the code that last wrote to a connection
 * is the code that checked it out, which is what a leak report must name.
 * The call-site cache makes a repeated call site cost a few loads. */

#define LW_SEND_HOOKS(X)                                                                   \
	X(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n))               \
	X(ssize_t, writev, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt))     \
	X(ssize_t, send, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags)) \
	X(ssize_t, sendto,                                                                 \
	  (int fd, const void *buf, size_t n, int flags, __CONST_SOCKADDR_ARG addr,        \
	   socklen_t len),                                                                 \
	  (fd, buf, n, flags, addr, len))                                                  \
	X(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags)) \
	X(int, sendmmsg, (int fd, struct mmsghdr *vec, unsigned int n, int flags),          \
	  (fd, vec, n, flags))

#define SEND_HOOK(ret, name, params, args)                                                 \
	EXPORT ret name params                                                             \
	{                                                                                  \
		REAL_OR_ENOSYS(name);                                                      \
		ret r = real_##name args;                                                  \
		LW_EV_SEND(fd, r);                                                         \
		return r;                                                                  \
	}
LW_SEND_HOOKS(SEND_HOOK)

/* ---- exec: mark the old image; the new one starts its own segment ------- */

#define LW_EXEC_HOOKS(X)                                                                   \
	X(execve, (const char *path, char *const argv[], char *const envp[]), (path, argv, envp)) \
	X(execv, (const char *path, char *const argv[]), (path, argv))                     \
	X(execvp, (const char *file, char *const argv[]), (file, argv))                    \
	X(execvpe, (const char *file, char *const argv[], char *const envp[]),             \
	  (file, argv, envp))                                                              \
	X(fexecve, (int fd, char *const argv[], char *const envp[]), (fd, argv, envp))     \
	X(execveat, (int dirfd, const char *path, char *const argv[], char *const envp[],  \
		     int flags),                                                           \
	  (dirfd, path, argv, envp, flags))

#define EXEC_HOOK(name, params, args)                                                      \
	EXPORT int name params                                                             \
	{                                                                                  \
		REAL_OR_ENOSYS(name);                                                      \
		int token = lw_ev_exec_begin();                                            \
		int r = real_##name args;                                                  \
		lw_ev_exec_failed(token);                                                  \
		return r;                                                                  \
	}
LW_EXEC_HOOKS(EXEC_HOOK)

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

/* execle's envp follows the argument list's NULL: read before va_end */
#define EXECL_HOOK(name, first, envp_arg, call)                                          \
	EXPORT int name(const char *first, const char *arg, ...)                          \
	{                                                                                 \
		va_list ap;                                                               \
		va_start(ap, arg);                                                        \
		size_t n = count_args(arg, ap);                                           \
		COLLECT_ARGV(argv, n, arg, ap);                                           \
		char *const *envp = envp_arg;                                             \
		va_end(ap);                                                               \
		(void)envp;                                                               \
		return call;                                                              \
	}
EXECL_HOOK(execl, path, NULL, execv(path, argv))
EXECL_HOOK(execlp, file, NULL, execvp(file, argv))
EXECL_HOOK(execle, path, va_arg(ap, char *const *), execve(path, argv, envp))

/* ---- longjmp out of a signal handler (lw_ev_longjmp) -------------------------- */

#define LONGJMP_HOOK(name)                                                          \
	EXPORT void name(struct __jmp_buf_tag env[1], int val)                       \
	{                                                                            \
		lw_ev_longjmp(env);                                                  \
		if (REAL(name))                                                      \
			real_##name(env, val);                                       \
		__builtin_trap(); /* no libc symbol: the program could not link */   \
	}
LONGJMP_HOOK(siglongjmp)
LONGJMP_HOOK(longjmp)
LONGJMP_HOOK(_longjmp)
LONGJMP_HOOK(__longjmp_chk)

/* ---- exit: exit() runs the destructor; _exit and _Exit do not (final) ---- */

#define EXIT_HOOK(name, final)                                                      \
	EXPORT void name(int status)                                                 \
	{                                                                            \
		lw_ev_exit(status, final);                                           \
		if (REAL(name))                                                      \
			real_##name(status);                                         \
		prim_exit_group(status); /* no libc symbol: end the process anyway */ \
	}
EXIT_HOOK(exit, 0)
EXIT_HOOK(_exit, 1)
EXIT_HOOK(_Exit, 1)

/* ---- children that share our memory: vfork, clone(CLONE_VM) ------------------
 *
 * Until it execs or exits, such a child runs in our memory with its own
 * descriptors: a hook there must not record (segment_active()).  These
 * hooks keep g_seg_owner's companion count, g_shared_vm (shim.h), up while
 * one may be running, so that everyone else records without asking the
 * kernel who they are. */

#if defined(__x86_64__)
#define LW_STR_(x) #x
#define LW_STR(x) LW_STR_(x)
#ifdef __CET__
#define LW_HOOK_ENDBR "endbr64\n\t"
#else
#define LW_HOOK_ENDBR ""
#endif

/* lw_vfork_failed - the vfork system call failed with err: errno, -1. */
SHIM_HIDDEN int lw_vfork_failed(int err);
__attribute__((used)) int lw_vfork_failed(int err)
{
	errno = err;
	return -1;
}

/*
 * vfork cannot be a C function: the child returns first, on the parent's
 * stack, and would leave a C frame's return address clobbered for the
 * parent.  So, as glibc's own: the return address is popped into a register
 * the system call keeps (rdi), and pushed back by each side.  The count
 * goes up before the child exists; the parent, which the kernel resumes
 * only once the child has exec'd or exited, takes it down.  With a shadow
 * stack in use the child returns by an indirect jump, leaving the shared
 * shadow stack to the parent (glibc does the same; rdsspq is a no-op
 * without CET and leaves rsi zero).
 */
__asm__(".text\n\t"
	".p2align 4\n\t"
	".globl vfork\n\t"
	".type vfork, @function\n\t"
	".globl __vfork\n\t"
	".type __vfork, @function\n\t"
	".hidden g_shared_vm\n"
	"vfork:\n"
	"__vfork:\n\t"
	".cfi_startproc\n\t"
	LW_HOOK_ENDBR
	"lock incl g_shared_vm(%rip)\n\t"
	"popq %rdi\n\t"
	".cfi_adjust_cfa_offset -8\n\t"
	".cfi_register %rip, %rdi\n\t"
	"movl $" LW_STR(__NR_vfork) ", %eax\n\t"
	"syscall\n\t"
	"pushq %rdi\n\t"
	".cfi_adjust_cfa_offset 8\n\t"
	".cfi_rel_offset %rip, 0\n\t"
	"testl %eax, %eax\n\t"
	"jz 1f\n\t"
	"lock decl g_shared_vm(%rip)\n\t"
	"cmpq $-4095, %rax\n\t"
	"jae 2f\n\t"
	"ret\n"
	"1:\n\t"
	"xorl %esi, %esi\n\t"
	"rdsspq %rsi\n\t"
	"testq %rsi, %rsi\n\t"
	"je 3f\n\t"
	"popq %rdi\n\t"
	"jmp *%rdi\n"
	"3:\n\t"
	"ret\n"
	"2:\n\t"
	"movl %eax, %edi\n\t"
	"negl %edi\n\t"
	"jmp lw_vfork_failed\n\t"
	".cfi_endproc\n\t"
	".size vfork, .-vfork\n\t"
	".size __vfork, .-__vfork\n");

/* glibc's clone: the child runs fn on its own stack and never returns
 * here, so this one can be C.  The optional arguments are passed on as
 * glibc reads them, whatever the flags. */
EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	void *ptid = va_arg(ap, void *);
	void *tls = va_arg(ap, void *);
	void *ctid = va_arg(ap, void *);
	va_end(ap);
	REAL_OR_ENOSYS(clone);
	/* a thread is still us; a CLONE_VM child without CLONE_VFORK may
	 * outlive any call: the count stays up for good */
	int shared = (flags & CLONE_VM) && !(flags & CLONE_THREAD);
	if (shared)
		atomic_fetch_add(&g_shared_vm, 1);
	int r = real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	if (shared && (flags & CLONE_VFORK)) {
		int e = errno;
		atomic_fetch_sub(&g_shared_vm, 1);
		errno = e;
	}
	return r;
}
#endif

/* ---- start-up and shutdown (lifecycle.c) --------------------------------------- */

__attribute__((constructor)) static void shim_init(void)
{
	static const struct lifecycle_entry entry = {
		.resolve_hooks = resolve_all,
		.resolve_heap = heap_hooks_init,
		.self = (const void *)&shim_init,
	};
	lifecycle_start(&entry);
}

__attribute__((destructor)) static void shim_fini(void)
{
	lifecycle_stop();
}
