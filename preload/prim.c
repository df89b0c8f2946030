/* SPDX-License-Identifier: MIT */
/*
 * Raw system calls for the recorder (see prim.h for why).  glibc's
 * syscall() sets errno on failure exactly as the named wrappers do.
 */
#include <fcntl.h>
#include <stdio.h> /* RENAME_NOREPLACE */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prim.h"

int prim_open(const char *path, int flags, unsigned mode)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int prim_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

ssize_t prim_read(int fd, void *buf, size_t n)
{
	return (ssize_t)syscall(SYS_read, fd, buf, n);
}

ssize_t prim_pread(int fd, void *buf, size_t n, off_t off)
{
	return (ssize_t)syscall(SYS_pread64, fd, buf, n, off);
}

ssize_t prim_write(int fd, const void *buf, size_t n)
{
	return (ssize_t)syscall(SYS_write, fd, buf, n);
}

long prim_getdents64(int fd, void *buf, size_t n)
{
	return syscall(SYS_getdents64, fd, buf, n);
}

/* glibc's struct stat is the kernel's on the 64-bit ABIs this builds for;
 * elsewhere the libc call (not interposed by leakwatch) converts. */
int prim_fstat(int fd, struct stat *st)
{
#if defined(SYS_newfstatat) && (defined(__x86_64__) || defined(__aarch64__))
	return (int)syscall(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH);
#else
	return fstatat(fd, "", st, AT_EMPTY_PATH);
#endif
}

static int stat_at(const char *path, struct stat *st, int flags)
{
#if defined(SYS_newfstatat) && (defined(__x86_64__) || defined(__aarch64__))
	return (int)syscall(SYS_newfstatat, AT_FDCWD, path, st, flags);
#else
	return fstatat(AT_FDCWD, path, st, flags);
#endif
}

int prim_stat(const char *path, struct stat *st)
{
	return stat_at(path, st, 0);
}

int prim_lstat(const char *path, struct stat *st)
{
	return stat_at(path, st, AT_SYMLINK_NOFOLLOW);
}

int prim_fstatfs(int fd, struct statfs *st)
{
	return (int)syscall(SYS_fstatfs, fd, st);
}

int prim_statfs(const char *path, struct statfs *st)
{
	return (int)syscall(SYS_statfs, path, st);
}

int prim_ftruncate(int fd, off_t len)
{
	return (int)syscall(SYS_ftruncate, fd, len);
}

int prim_fallocate(int fd, off_t off, off_t len)
{
	return (int)syscall(SYS_fallocate, fd, 0, off, len);
}

void *prim_mremap_dup(void *addr, size_t len)
{
	/* old_size 0 on a shared mapping: a second mapping of the same pages */
	return (void *)syscall(SYS_mremap, addr, (size_t)0, len, MREMAP_MAYMOVE);
}

int prim_sched_yield(void)
{
	return (int)syscall(SYS_sched_yield);
}

ssize_t prim_readlink(const char *path, char *buf, size_t n)
{
	return (ssize_t)syscall(SYS_readlinkat, AT_FDCWD, path, buf, n);
}

int prim_unlink(const char *path)
{
	return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
}

int prim_rename_noreplace(const char *from, const char *to)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

int prim_close_range(unsigned first, unsigned last, int flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}

int prim_fd_flags(int fd)
{
	return (int)syscall(SYS_fcntl, fd, F_GETFD);
}

int prim_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	return (int)syscall(SYS_getsockname, fd, sa, len);
}

int prim_getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	return (int)syscall(SYS_getpeername, fd, sa, len);
}

int prim_getsockopt_int(int fd, int level, int name, int *out)
{
	socklen_t len = sizeof *out;
	return (int)syscall(SYS_getsockopt, fd, level, name, out, &len);
}

void *prim_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int prim_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

int prim_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

int prim_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

__thread pid_t t_prim_tid __attribute__((tls_model("initial-exec")));

pid_t prim_gettid_slow(void)
{
	return t_prim_tid = (pid_t)syscall(SYS_gettid);
}

void prim_identity_reset(void)
{
	t_prim_tid = 0;
}

/* inline on x86-64: a fork child asks for its pid before it has run any
 * other system call through libc, whose syscall() page it would fault in */
pid_t prim_getpid(void)
{
#if defined(__x86_64__)
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_getpid) : "rcx", "r11", "memory");
	return (pid_t)r;
#else
	return (pid_t)syscall(SYS_getpid);
#endif
}

/* the same for the clock a fork child reads first (segment_note_fork): the
 * vDSO's code and the shim's PLT would be two more pages faulted in */
uint64_t prim_boottime_ns_raw(void)
{
	struct timespec ts = { 0, 0 };
#if defined(__x86_64__)
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "0"((long)SYS_clock_gettime), "D"((long)CLOCK_BOOTTIME), "S"(&ts)
			 : "rcx", "r11", "memory");
	if (r != 0)
		return 0;
#else
	if (syscall(SYS_clock_gettime, CLOCK_BOOTTIME, &ts) != 0)
		return 0;
#endif
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

pid_t prim_getppid(void)
{
	return (pid_t)syscall(SYS_getppid);
}

uid_t prim_geteuid(void)
{
	return (uid_t)syscall(SYS_geteuid);
}

void prim_exit_group(int status)
{
	for (;;)
		syscall(SYS_exit_group, status);
}
