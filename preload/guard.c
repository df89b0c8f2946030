/* SPDX-License-Identifier: MIT */
/*
 * The per-thread re-entry guard (see shim.h): its TLS, and the recovery of
 * a guard whose recording frame was abandoned by siglongjmp.
 */
#include <signal.h>

#include "shim.h"

SHIM_HIDDEN __thread int g_in_shim __attribute__((tls_model("initial-exec")));
SHIM_HIDDEN __thread uintptr_t t_guard_sp __attribute__((tls_model("initial-exec")));
SHIM_HIDDEN __thread _Atomic uint32_t *t_held_seq __attribute__((tls_model("initial-exec")));
SHIM_HIDDEN __thread uint32_t t_held_val __attribute__((tls_model("initial-exec")));

/* guard_abandon - the frame that set the guard is gone: release the slot it
 * held (publishing whatever it had written: every slot payload is a set of
 * independent fields, and a half-written stack slot was never handed out)
 * and clear the guard.  One ambiguity is left: a handler that arrived just
 * after this thread lost the CAS to another thread that took the slot from
 * the same value would publish that thread's write early (its final store
 * writes the same even value again): one possibly torn read, never a lock
 * held for good. */
void guard_abandon(void)
{
	_Atomic uint32_t *held = t_held_seq;
	t_held_seq = NULL;
	if (held) {
		/* only if it still holds the odd value this thread's CAS wrote
		 * (the note is made just before the CAS) */
		uint32_t v = t_held_val;
		atomic_compare_exchange_strong_explicit(held, &v, v + 1, memory_order_release,
							memory_order_relaxed);
	}
	g_in_shim = 0;
	segment_counter_add(LW_CTR_GUARD_RECOVERED, 1);
}

int guard_recover(uintptr_t sp)
{
	stack_t ss;

	/* Signals are delivered on the current stack or on the alternate one.
	 * A call nested in the guarded frame (a handler that interrupted it)
	 * therefore runs below it, on the unwinder's side stack, or on the
	 * alternate signal stack; a call above it on a normal stack means the
	 * guarded frame was left by siglongjmp (see also the longjmp hooks). */
	if (sp < t_guard_sp || stack_on_side_stack(sp))
		return 1;
	if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK))
		return 1;
	guard_abandon();
	return 0;
}
