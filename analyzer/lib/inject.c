/* SPDX-License-Identifier: MIT */
/*
 * inject.c — borrow one thread of a running process and make it call
 * functions (inject.h explains the safe point and what is restored).
 *
 * The steps, all through ptrace on the one thread:
 *   seize + interrupt   PTRACE_SEIZE, PTRACE_INTERRUPT: a ptrace stop, no
 *                       signal; the thread's registers say where it is
 *   safe?               blocked in a listed system call (orig_rax), its
 *                       rax the kernel's "restart me" code, the syscall
 *                       instruction in libc: else let it go, try another
 *   save                registers (PTRACE_GETREGS) and the extended state
 *                       (PTRACE_GETREGSET NT_X86_XSTATE)
 *   mmap                a system call made from the thread's own syscall
 *                       instruction (orig_rax = -1: no restart meanwhile):
 *                       our stack and strings
 *   call                rip = fn, arguments in rdi/rsi/rdx, rsp on our stack
 *                       with a return address of 0: the return faults at 0,
 *                       a SIGSEGV stop that we swallow
 *   munmap, restore     then PTRACE_DETACH; the kernel resumes the thread's
 *                       interrupted system call from the restored registers
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"

#if defined(__x86_64__)

#define SCRATCH_LEN (256u * 1024)

/* the kernel's internal "restart" return values (include/linux/errno.h) */
#define K_ERESTARTSYS           512
#define K_ERESTARTNOINTR        513
#define K_ERESTARTNOHAND        514
#define K_ERESTART_RESTARTBLOCK 516

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct user_regs_struct *saved(struct lw_inject *ij)
{
	return (struct user_regs_struct *)ij->regs;
}

/* System calls a thread waits in without holding a lock of libc's or the loader's. */
static int safe_syscall(long nr)
{
	switch (nr) {
	case SYS_read: case SYS_readv: case SYS_pread64: case SYS_poll: case SYS_select:
	case SYS_nanosleep: case SYS_pause: case SYS_accept: case SYS_recvfrom: case SYS_recvmsg:
	case SYS_wait4: case SYS_waitid: case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait:
	case SYS_epoll_wait: case SYS_clock_nanosleep: case SYS_pselect6: case SYS_ppoll:
	case SYS_epoll_pwait: case SYS_accept4: case SYS_recvmmsg: case SYS_connect:
#ifdef SYS_epoll_pwait2
	case SYS_epoll_pwait2:
#endif
		return 1;
	}
	return 0;
}

static int restart_code(long rax)
{
	return rax == -K_ERESTARTSYS || rax == -K_ERESTARTNOINTR || rax == -K_ERESTARTNOHAND ||
	       rax == -K_ERESTART_RESTARTBLOCK || rax == -EINTR;
}

/* Copy len bytes from (write 0) or to (write 1) addr in pid: process_vm_*,
 * else /proc/PID/mem (pages it cannot touch, such as read-only ones). */
static int mem_io(pid_t pid, uint64_t addr, void *buf, size_t len, int write)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };
	ssize_t n = write ? process_vm_writev(pid, &l, 1, &r, 1, 0) : process_vm_readv(pid, &l, 1, &r, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
	int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = write ? pwrite(fd, buf, len, (off_t)addr) : pread(fd, buf, len, (off_t)addr);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	return mem_io(pid, addr, buf, len, 0);
}

static int mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	return mem_io(pid, addr, (void *)buf, len, 1);
}

/* libc's mapping in the target: its path and the address of its first byte. */
static int find_libc(struct lw_inject *ij)
{
	char path[64], line[4096 + 128];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)ij->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int found = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi, off;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s%n", &lo, &hi, perms, &off, &pos) < 4)
			continue;
		char *p = line + pos;
		while (*p == ' ')
			p++;
		p[strcspn(p, "\n")] = '\0';
		const char *b = strrchr(p, '/');
		b = b ? b + 1 : p;
		if (off == 0 && (strncmp(b, "libc.so", 7) == 0 || strncmp(b, "libc-2.", 7) == 0)) {
			snprintf(ij->libc, sizeof ij->libc, "%s", p);
			ij->libc_base = lo;
			found = 1;
			break;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

/* Is addr inside an executable mapping of libc? */
static int in_libc_text(pid_t pid, uint64_t addr)
{
	char path[64], line[4096 + 128];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int yes = 0;
	while (!yes && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char perms[8];
		int pos = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s%n", &lo, &hi, perms, &pos) < 3)
			continue;
		if (addr < lo || addr >= hi || perms[2] != 'x')
			continue;
		const char *b = strrchr(line + pos, '/');
		yes = b && (strncmp(b + 1, "libc.so", 7) == 0 || strncmp(b + 1, "libc-2.", 7) == 0);
	}
	fclose(f);
	return yes;
}

/* Wait for tid's next stop; a signal it would receive meanwhile is held back. */
static int wait_stop(struct lw_inject *ij, pid_t tid, int *status, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		pid_t w = waitpid(tid, status, __WALL | WNOHANG);
		if (w == tid)
			return 0;
		if (w < 0 && errno != EINTR)
			return -1;
		if (now_ns() > end) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
	}
	(void)ij;
}

/* Hold sig back for the end; 0, or sig when the list is full (deliver it now). */
static int hold(struct lw_inject *ij, int sig)
{
	if (ij->nheld < LW_INJECT_MAX_HELD) {
		ij->held[ij->nheld++] = sig;
		return 0;
	}
	return sig;
}

/* Seize tid and wait for its interrupt stop.  0 stopped; -1 error. */
static int seize_stop(struct lw_inject *ij, pid_t tid)
{
	if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD) != 0)
		return -1;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return -1;
	}
	for (;;) {
		int st;
		if (wait_stop(ij, tid, &st, 2000) != 0) {
			ptrace(PTRACE_DETACH, tid, 0, 0);
			return -1;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			errno = ESRCH;
			return -1;
		}
		if (!WIFSTOPPED(st))
			continue;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0;
		/* a signal-delivery stop before ours: hold the signal back */
		int sig = WSTOPSIG(st);
		ptrace(PTRACE_CONT, tid, 0, (void *)(long)hold(ij, sig));
	}
}

static void release(struct lw_inject *ij, pid_t tid)
{
	int sig = ij->nheld ? ij->held[0] : 0;
	ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig);
	for (size_t i = 1; i < ij->nheld; i++)
		syscall(SYS_tgkill, ij->pid, tid, ij->held[i]);
	ij->nheld = 0;
}

/* Is tid, stopped, at a safe point?  Fills the saved registers when it is. */
static int at_safe_point(struct lw_inject *ij, pid_t tid)
{
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, 0, &r) != 0)
		return 0;
	long nr = (long)r.orig_rax, rax = (long)r.rax;
	if (nr < 0 || !safe_syscall(nr) || !restart_code(rax))
		return 0;
	unsigned char insn[2];
	if (mem_read(ij->pid, r.rip - 2, insn, 2) != 0 || insn[0] != 0x0f || insn[1] != 0x05)
		return 0;
	if (!in_libc_text(ij->pid, r.rip - 2))
		return 0;
	memcpy(ij->regs, &r, sizeof r);
	ij->syscall_insn = r.rip - 2;
	ij->syscall_nr = nr;
	return 1;
}

static int save_xstate(struct lw_inject *ij)
{
	static const int kinds[] = { NT_X86_XSTATE, NT_PRFPREG };
	size_t cap = 64 * 1024;
	ij->xstate = malloc(cap);
	if (!ij->xstate)
		return -1;
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		struct iovec iov = { ij->xstate, cap };
		if (ptrace(PTRACE_GETREGSET, ij->tid, (void *)(long)kinds[k], &iov) == 0) {
			ij->xstate_len = iov.iov_len;
			ij->xstate_kind = kinds[k];
			return 0;
		}
	}
	free(ij->xstate);
	ij->xstate = NULL;
	return -1;
}

/* Run one system call from the thread's own syscall instruction. */
static int remote_syscall(struct lw_inject *ij, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
			  uint64_t a4, uint64_t a5, long *ret)
{
	struct user_regs_struct r = *saved(ij);
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1; /* not a syscall being restarted */
	r.rdi = a0, r.rsi = a1, r.rdx = a2, r.r10 = a3, r.r8 = a4, r.r9 = a5;
	r.rip = ij->syscall_insn;
	if (ptrace(PTRACE_SETREGS, ij->tid, 0, &r) != 0)
		return -1;
	for (int phase = 0; phase < 2;) {
		if (ptrace(PTRACE_SYSCALL, ij->tid, 0, 0) != 0)
			return -1;
		int st;
		if (wait_stop(ij, ij->tid, &st, 5000) != 0 || !WIFSTOPPED(st))
			return -1;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			phase++;
			continue;
		}
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue;
		int now = hold(ij, WSTOPSIG(st));
		if (now && ptrace(PTRACE_SYSCALL, ij->tid, 0, (void *)(long)now) != 0)
			return -1;
		if (now) { /* delivered: its stop does not count as a phase */
			if (wait_stop(ij, ij->tid, &st, 5000) != 0 || !WIFSTOPPED(st))
				return -1;
			if (WSTOPSIG(st) == (SIGTRAP | 0x80))
				phase++;
		}
	}
	if (ptrace(PTRACE_GETREGS, ij->tid, 0, &r) != 0)
		return -1;
	*ret = (long)r.rax;
	return 0;
}

/* Thread ids of pid, main thread first. */
static size_t list_tasks(pid_t pid, pid_t *out, size_t max)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	size_t n = 0;
	if (!d)
		return 0;
	out[n++] = pid;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		int t = atoi(e->d_name);
		if (t > 0 && t != pid)
			out[n++] = t;
	}
	closedir(d);
	return n;
}

int lw_inject_begin(struct lw_inject *ij, pid_t pid, int timeout_ms, char *err, size_t errlen)
{
	memset(ij, 0, sizeof *ij);
	ij->pid = pid;
	if (find_libc(ij) != 0) {
		snprintf(err, errlen, "pid %d has no libc mapped (statically linked?)", (int)pid);
		return -1;
	}
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int tried_any = 0, last_errno = 0;
	static pid_t tids[4096];
	do {
		size_t n = list_tasks(pid, tids, sizeof tids / sizeof tids[0]);
		if (n == 0 || kill(pid, 0) != 0) {
			snprintf(err, errlen, "pid %d is gone", (int)pid);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (seize_stop(ij, tids[i]) != 0) {
				last_errno = errno;
				continue;
			}
			tried_any = 1;
			uint64_t t0 = now_ns();
			if (at_safe_point(ij, tids[i])) {
				ij->tid = tids[i];
				ij->seized = 1;
				ij->stopped_ns = t0;
				if (save_xstate(ij) != 0) {
					snprintf(err, errlen, "cannot read the FPU state of thread %d: %s", (int)tids[i],
						 strerror(errno));
					release(ij, tids[i]);
					ij->seized = 0;
					return -1;
				}
				long m;
				if (remote_syscall(ij, SYS_mmap, 0, SCRATCH_LEN, PROT_READ | PROT_WRITE,
						   MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &m) != 0 ||
				    (m < 0 && m > -4096)) {
					snprintf(err, errlen, "mmap in pid %d failed: %s", (int)pid,
						 m < 0 && m > -4096 ? strerror((int)-m) : strerror(errno));
					lw_inject_end(ij);
					return -1;
				}
				ij->scratch = (uint64_t)m;
				ij->scratch_len = SCRATCH_LEN;
				return 0;
			}
			release(ij, tids[i]);
		}
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	} while (now_ns() < end);
	if (!tried_any)
		snprintf(err, errlen, "cannot ptrace pid %d: %s", (int)pid, strerror(last_errno ? last_errno : EPERM));
	else
		snprintf(err, errlen,
			 "no thread of pid %d reached a safe point in %d ms (every thread busy outside a blocking "
			 "read, poll, accept or sleep)",
			 (int)pid, timeout_ms);
	return -1;
}

uint64_t lw_inject_symbol(struct lw_inject *ij, const char *name)
{
	char path[4096 + 64];
	/* the target's view of the file system (another mount namespace) */
	snprintf(path, sizeof path, "/proc/%d/root%s", (int)ij->pid, ij->libc);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	uint64_t addr = 0;
	Elf_Scn *scn = NULL;
	while (e && !addr && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF)
				continue;
			const char *n = elf_strptr(e, sh.sh_link, s.st_name);
			if (n && strcmp(n, name) == 0) {
				addr = ij->libc_base + s.st_value;
				break;
			}
		}
	}
	if (e)
		elf_end(e);
	close(fd);
	return addr;
}

uint64_t lw_inject_string(struct lw_inject *ij, const char *s, char *err, size_t errlen)
{
	size_t n = strlen(s) + 1;
	if (!ij->scratch || n > 8192) {
		snprintf(err, errlen, "string too long for the scratch area");
		return 0;
	}
	uint64_t at = ij->scratch; /* strings at the bottom, the stack grows down from the top */
	if (mem_write(ij->pid, at, s, n) != 0) {
		snprintf(err, errlen, "cannot write into pid %d: %s", (int)ij->pid, strerror(errno));
		return 0;
	}
	return at;
}

int lw_inject_call(struct lw_inject *ij, uint64_t fn, uint64_t a0, uint64_t a1, uint64_t a2, int timeout_ms,
		   uint64_t *ret, char *err, size_t errlen)
{
	struct user_regs_struct r = *saved(ij);
	uint64_t top = (ij->scratch + ij->scratch_len) & ~(uint64_t)15;
	uint64_t sp = top - 64 - 8; /* at entry (sp + 8) is 16-byte aligned, as after a call */
	uint64_t zero = 0;
	if (mem_write(ij->pid, sp, &zero, sizeof zero) != 0) {
		snprintf(err, errlen, "cannot write into pid %d: %s", (int)ij->pid, strerror(errno));
		return -1;
	}
	r.rip = fn;
	r.rsp = sp;
	r.rbp = 0;
	r.rdi = a0, r.rsi = a1, r.rdx = a2;
	r.rax = 0;
	r.orig_rax = (unsigned long long)-1;
	if (ptrace(PTRACE_SETREGS, ij->tid, 0, &r) != 0 || ptrace(PTRACE_CONT, ij->tid, 0, 0) != 0) {
		snprintf(err, errlen, "ptrace: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		int st;
		if (wait_stop(ij, ij->tid, &st, timeout_ms) != 0) {
			snprintf(err, errlen, "the call in pid %d did not return within %d ms", (int)ij->pid, timeout_ms);
			return -1;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			ij->seized = 0;
			snprintf(err, errlen, "pid %d ended during the call", (int)ij->pid);
			return -1;
		}
		if (!WIFSTOPPED(st))
			continue;
		if ((st >> 16) == PTRACE_EVENT_STOP) {
			ptrace(PTRACE_CONT, ij->tid, 0, 0);
			continue;
		}
		int sig = WSTOPSIG(st);
		if (sig == SIGSEGV) {
			struct user_regs_struct now;
			if (ptrace(PTRACE_GETREGS, ij->tid, 0, &now) != 0) {
				snprintf(err, errlen, "ptrace: %s", strerror(errno));
				return -1;
			}
			if (now.rip == 0) {
				*ret = now.rax;
				return 0;
			}
			snprintf(err, errlen, "the call faulted in pid %d at 0x%llx", (int)ij->pid, now.rip);
			return -1;
		}
		ptrace(PTRACE_CONT, ij->tid, 0, (void *)(long)hold(ij, sig));
	}
}

int lw_inject_read_string(struct lw_inject *ij, uint64_t addr, char *buf, size_t len)
{
	if (!len)
		return -1;
	size_t n = 0;
	while (n + 1 < len) {
		char c;
		if (mem_read(ij->pid, addr + n, &c, 1) != 0)
			break;
		if (!c)
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return 0;
}

uint64_t lw_inject_end(struct lw_inject *ij)
{
	if (!ij->seized)
		return 0;
	if (ij->scratch) {
		long r;
		remote_syscall(ij, SYS_munmap, ij->scratch, ij->scratch_len, 0, 0, 0, 0, &r);
		ij->scratch = 0;
	}
	ptrace(PTRACE_SETREGS, ij->tid, 0, ij->regs);
	if (ij->xstate) {
		struct iovec iov = { ij->xstate, ij->xstate_len };
		ptrace(PTRACE_SETREGSET, ij->tid, (void *)(long)ij->xstate_kind, &iov);
		free(ij->xstate);
		ij->xstate = NULL;
	}
	uint64_t stopped = now_ns() - ij->stopped_ns;
	release(ij, ij->tid);
	ij->seized = 0;
	return stopped;
}

#else /* !__x86_64__ */

int lw_inject_begin(struct lw_inject *ij, pid_t pid, int timeout_ms, char *err, size_t errlen)
{
	memset(ij, 0, sizeof *ij);
	(void)pid, (void)timeout_ms;
	snprintf(err, errlen, "attach is implemented for x86_64 only");
	return -1;
}
uint64_t lw_inject_symbol(struct lw_inject *ij, const char *name) { (void)ij, (void)name; return 0; }
uint64_t lw_inject_string(struct lw_inject *ij, const char *s, char *err, size_t errlen)
{
	(void)ij, (void)s, (void)err, (void)errlen;
	return 0;
}
int lw_inject_call(struct lw_inject *ij, uint64_t fn, uint64_t a0, uint64_t a1, uint64_t a2, int timeout_ms,
		   uint64_t *ret, char *err, size_t errlen)
{
	(void)ij, (void)fn, (void)a0, (void)a1, (void)a2, (void)timeout_ms, (void)ret;
	snprintf(err, errlen, "attach is implemented for x86_64 only");
	return -1;
}
int lw_inject_read_string(struct lw_inject *ij, uint64_t addr, char *buf, size_t len)
{
	(void)ij, (void)addr, (void)buf, (void)len;
	return -1;
}
uint64_t lw_inject_end(struct lw_inject *ij) { (void)ij; return 0; }

#endif
