/* SPDX-License-Identifier: MIT */
/*
 * inject.h — calling functions inside a running process through ptrace
 * (inject.c), for `leakwatch attach` and `leakwatch detach`: the target's
 * own dlopen() loads the shim, then the shim's leakwatch_attach() starts
 * it.  x86_64 only.
 *
 * One thread is borrowed, at a safe point: stopped (PTRACE_SEIZE +
 * PTRACE_INTERRUPT: no signal is sent) while blocked in a system call that
 * waits for I/O or time (read, poll, epoll_wait, accept, nanosleep...)
 * from libc's code.  Such a thread holds no allocator or loader lock (the
 * loader reads files with its own code in ld.so, and futex waits - where
 * a lock holder may sleep - are not used), so the call it is made to run
 * can take them.  The other threads keep running: a lock one of them holds
 * is released as usual.  The call runs on a stack of its own (mapped in the
 * target for it, unmapped after), so a thread with a small stack is fine;
 * the thread's registers (general, and the FPU/SSE/AVX state) are saved
 * before and written back after, and the interrupted system call resumes
 * exactly as after SIGSTOP/SIGCONT (restarted, or EINTR where the kernel
 * gives that to a stopped thread).  A signal that arrives for the borrowed
 * thread meanwhile is held back and delivered when it is let go.
 */
#ifndef LEAKWATCH_INJECT_H
#define LEAKWATCH_INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Signals held back at most; one more is delivered at once (its handler
 * then runs inside our call, as it could inside any function) rather than
 * lost. */
#define LW_INJECT_MAX_HELD 1024

struct lw_inject {
	pid_t pid, tid;                 /* the process, the borrowed thread */
	int seized;                     /* tid is seized and stopped */
	uint64_t regs[64];              /* struct user_regs_struct as saved (aligned) */
	unsigned char *xstate;          /* NT_X86_XSTATE (or NT_PRFPREG) as saved */
	size_t xstate_len;
	int xstate_kind;                /* the regset it came from */
	uint64_t syscall_insn;          /* address of the thread's syscall instruction */
	uint64_t scratch;               /* our mapping in the target (0: none) */
	size_t scratch_len;
	int held[LW_INJECT_MAX_HELD];   /* signals held back, delivered at the end */
	size_t nheld;
	uint64_t stopped_ns;            /* CLOCK_MONOTONIC when the thread stopped */
	long syscall_nr;                /* what it was blocked in */
	char libc[4096];                /* libc's path in the target's filesystem view */
	uint64_t libc_base;
};

/*
 * lw_inject_begin - borrow a thread of pid at a safe point, trying every
 * thread, for up to timeout_ms.  Returns 0, or -1 with err set ("no thread
 * at a safe point ...", ptrace errors).  On failure nothing is left seized.
 */
int lw_inject_begin(struct lw_inject *ij, pid_t pid, int timeout_ms, char *err, size_t errlen);

/*
 * lw_inject_symbol - the address in the target of a function libc exports
 * (dlopen, dlsym, dlerror: glibc 2.34 and later).  0 when it has none.
 */
uint64_t lw_inject_symbol(struct lw_inject *ij, const char *name);

/* lw_inject_string - copy s (with its NUL) into the scratch mapping; its address, or 0. */
uint64_t lw_inject_string(struct lw_inject *ij, const char *s, char *err, size_t errlen);

/*
 * lw_inject_call - run fn(a0, a1, a2) in the borrowed thread on the scratch
 * stack and wait up to timeout_ms for it to return.  Returns 0 with *ret
 * set (rax), or -1 with err set (the call faulted, the process died, it did
 * not return in time: then the thread is left running our call, and the
 * error says so).
 */
int lw_inject_call(struct lw_inject *ij, uint64_t fn, uint64_t a0, uint64_t a1, uint64_t a2, int timeout_ms,
		   uint64_t *ret, char *err, size_t errlen);

/* lw_inject_read_string - up to len - 1 bytes of the NUL-terminated string at addr in the target. */
int lw_inject_read_string(struct lw_inject *ij, uint64_t addr, char *buf, size_t len);

/*
 * lw_inject_end - unmap the scratch stack, write the registers back, let
 * the thread go (with a held signal) and re-raise the others.  Returns the
 * time the thread was stopped, in ns.
 */
uint64_t lw_inject_end(struct lw_inject *ij);

#endif /* LEAKWATCH_INJECT_H */
