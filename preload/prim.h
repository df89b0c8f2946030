/* SPDX-License-Identifier: MIT */
/*
 * The system primitives of the recorder.
 *
 * Recorder code must never call libc's exported close(), write(), open(),
 * read(), dup()... : libleakwatch.so exports its own close() and write()
 * (the recorder would record itself, or recurse), and another preloaded
 * library may interpose the others.  Every file of the recorder goes through
 * these instead: raw system calls, no allocation, errno set as the libc
 * wrapper would on failure.  The link test (`make check-shim-link`, run by
 * `make test`) fails when an object of libshimrec.a references one of the
 * libc symbols directly.
 *
 * Clocks stay on libc's clock_gettime (the vDSO: no system call, nothing an
 * LD_PRELOAD library hooks) and are inline for the heap hot path.
 */
#ifndef LEAKWATCH_PRELOAD_PRIM_H
#define LEAKWATCH_PRELOAD_PRIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>

#define SHIM_HIDDEN __attribute__((visibility("hidden")))
/* SHIM_HOT - a recorder function on the descriptor hooks' hot path: in the
 * shim's one-unit build (LW_UNITY: the Makefile's build/preload/unity.c) it
 * is inlined into its event, where every call costs (measured here: a call
 * and return right after a system call ~1.4 ns, 0.7 ns in a loop without
 * one); elsewhere (the unit tests' recorder library) an ordinary function. */
#ifdef LW_UNITY
#define SHIM_HOT __attribute__((always_inline)) inline
#else
#define SHIM_HOT
#endif

/* File descriptors and files.  Return as the libc call of the same name. */
SHIM_HIDDEN int prim_open(const char *path, int flags, unsigned mode);
SHIM_HIDDEN int prim_close(int fd);
SHIM_HIDDEN ssize_t prim_read(int fd, void *buf, size_t n);
SHIM_HIDDEN ssize_t prim_pread(int fd, void *buf, size_t n, off_t off);
SHIM_HIDDEN ssize_t prim_write(int fd, const void *buf, size_t n);
SHIM_HIDDEN long prim_getdents64(int fd, void *buf, size_t n);
SHIM_HIDDEN int prim_fstat(int fd, struct stat *st);
SHIM_HIDDEN int prim_stat(const char *path, struct stat *st);
SHIM_HIDDEN int prim_lstat(const char *path, struct stat *st);
SHIM_HIDDEN int prim_fstatfs(int fd, struct statfs *st);
SHIM_HIDDEN int prim_statfs(const char *path, struct statfs *st);
SHIM_HIDDEN int prim_ftruncate(int fd, off_t len);
SHIM_HIDDEN int prim_fallocate(int fd, off_t off, off_t len);
SHIM_HIDDEN ssize_t prim_readlink(const char *path, char *buf, size_t n);
SHIM_HIDDEN int prim_unlink(const char *path);
/* prim_rename_noreplace - renameat2(RENAME_NOREPLACE) in the cwd. */
SHIM_HIDDEN int prim_rename_noreplace(const char *from, const char *to);
/* prim_close_range - the close_range system call (closefrom without libc). */
SHIM_HIDDEN int prim_close_range(unsigned first, unsigned last, int flags);
/* prim_fd_flags - fcntl(fd, F_GETFD): is fd open (-1, EBADF when not)? */
SHIM_HIDDEN int prim_fd_flags(int fd);

/* Sockets: identity queries (never hooked by leakwatch, raw all the same). */
SHIM_HIDDEN int prim_getsockname(int fd, struct sockaddr *sa, socklen_t *len);
SHIM_HIDDEN int prim_getpeername(int fd, struct sockaddr *sa, socklen_t *len);
SHIM_HIDDEN int prim_getsockopt_int(int fd, int level, int name, int *out);

/* Memory. */
SHIM_HIDDEN void *prim_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
SHIM_HIDDEN int prim_munmap(void *addr, size_t len);
SHIM_HIDDEN int prim_mprotect(void *addr, size_t len, int prot);
SHIM_HIDDEN int prim_madvise(void *addr, size_t len, int advice);
/* prim_mremap_dup - a second mapping of the first len bytes of the shared
 * file mapping at addr (mremap with old_size 0): how the shim maps more of
 * its segment without opening a descriptor. */
SHIM_HIDDEN void *prim_mremap_dup(void *addr, size_t len);
SHIM_HIDDEN int prim_sched_yield(void);

/* Identity.  The raw getpid also sees through vfork (glibc caches nothing).
 * prim_gettid asks the kernel once per thread and keeps the answer in TLS;
 * a fork child (atfork handler) drops it with prim_identity_reset().  A
 * child sharing our TLS (vfork) reads the parent thread's tid, and records
 * nothing. */
SHIM_HIDDEN extern __thread pid_t t_prim_tid __attribute__((tls_model("initial-exec")));
SHIM_HIDDEN pid_t prim_gettid_slow(void);
static inline pid_t prim_gettid(void)
{
	pid_t t = t_prim_tid;
	return __builtin_expect(t != 0, 1) ? t : prim_gettid_slow();
}
SHIM_HIDDEN void prim_identity_reset(void);
SHIM_HIDDEN pid_t prim_getpid(void);
/* prim_boottime_ns_raw - CLOCK_BOOTTIME by a direct system call (no vDSO);
 * 0 on failure. */
SHIM_HIDDEN uint64_t prim_boottime_ns_raw(void);
SHIM_HIDDEN pid_t prim_getppid(void);
SHIM_HIDDEN uid_t prim_geteuid(void);

/* Process end without libc (no symbol to call): exit_group. */
SHIM_HIDDEN __attribute__((noreturn)) void prim_exit_group(int status);

/* Clocks, nanoseconds. */
static inline uint64_t prim_clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* prim_now_ns - CLOCK_MONOTONIC, the segment's time base. */
static inline uint64_t prim_now_ns(void)
{
	return prim_clock_ns(CLOCK_MONOTONIC);
}

/* prim_event_ns - the time stamp of a recorded event: CLOCK_MONOTONIC's
 * time base read at its coarse resolution (one scheduler tick, 1-10 ms,
 * behind at most that much), at a fraction of the fine clock's cost: every
 * open, close, connect and send-side call takes one.  Ages and idle times
 * are reported in milliseconds and up. */
static inline uint64_t prim_event_ns(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
	return prim_clock_ns(CLOCK_MONOTONIC_COARSE);
#else
	return prim_clock_ns(CLOCK_MONOTONIC);
#endif
}

/* prim_realtime_ns - CLOCK_REALTIME, for the header's clock pair. */
static inline uint64_t prim_realtime_ns(void)
{
	return prim_clock_ns(CLOCK_REALTIME);
}

/* prim_coarse_ns - CLOCK_MONOTONIC_COARSE: heap ages need no nanoseconds,
 * and it costs a few ns against about 20 (vDSO). */
static inline uint64_t prim_coarse_ns(void)
{
	return prim_clock_ns(CLOCK_MONOTONIC_COARSE);
}

#endif /* LEAKWATCH_PRELOAD_PRIM_H */
