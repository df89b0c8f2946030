/*
 * The shim's stack budget (DESIGN.md rule 8) and the call-site cache's
 * memory safety: a hooked call takes less than 2 KiB of the host's stack
 * more than natively, small thread stacks and sigaltstack handlers survive,
 * and a coroutine stack replaced by a smaller one at the same address is
 * never read past its end.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define EXTRA_MAX 2048

struct traced_env {
	char dir[64];
	char envdir[128], envpre[512], envheap[64], envcache[64];
	char *env[5];
};

static void traced_env_init(struct traced_env *t, const char *heap)
{
	strcpy(t->dir, "/tmp/lw-stack-XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir));
	snprintf(t->envdir, sizeof t->envdir, "LEAKWATCH_DIR=%s", t->dir);
	snprintf(t->envpre, sizeof t->envpre, "LD_PRELOAD=%s", lw_shim());
	snprintf(t->envheap, sizeof t->envheap, "LEAKWATCH_HEAP=%s", heap);
	snprintf(t->envcache, sizeof t->envcache, "LEAKWATCH_STACK_CACHE=1");
	t->env[0] = t->envdir;
	t->env[1] = t->envpre;
	t->env[2] = t->envheap;
	t->env[3] = t->envcache;
	t->env[4] = NULL;
}

static void traced_env_done(struct traced_env *t)
{
	cr_assert_eq(rm_rf(t->dir), 0);
}

static void measure(char *const env[], long *thread_depth, long *alt_depth)
{
	char *argv[] = { FIX("stackuse"), "measure", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, env, 60);
	cr_assert_eq(r.status, 0, "stackuse measure: status %d: %s", r.status, r.err);
	const char *t = strstr(r.out, "thread-depth: "), *a = strstr(r.out, "altstack-depth: ");
	cr_assert(t && a, "no depths in: %s", r.out);
	*thread_depth = atol(t + strlen("thread-depth: "));
	*alt_depth = atol(a + strlen("altstack-depth: "));
	cmd_result_free(&r);
}

static void budget_in_mode(const char *heap)
{
	long nt, na, tt, ta;
	measure(NULL, &nt, &na);
	struct traced_env t;
	traced_env_init(&t, heap);
	measure(t.env, &tt, &ta);
	traced_env_done(&t);
	cr_log_info("heap %s: thread %ld -> %ld, sigaltstack %ld -> %ld bytes", heap, nt, tt, na, ta);
	/* the thread figure includes the shim's static TLS (glibc carves it
	 * out of the same stack) */
	cr_expect_lt(tt - nt, EXTRA_MAX, "heap %s: a thread's calls took %ld bytes more stack traced",
		     heap, tt - nt);
	cr_expect_lt(ta - na, EXTRA_MAX, "heap %s: a handler's calls took %ld bytes more stack traced",
		     heap, ta - na);
}

Test(shim_stack, extra_stack_under_2k_sampled, .timeout = 120)
{
	budget_in_mode("sampled");
}

Test(shim_stack, extra_stack_under_2k_full, .timeout = 120)
{
	budget_in_mode("full");
}

static void survives(const char *mode)
{
	char *argv[] = { FIX("stackuse"), (char *)mode, NULL };
	char want[64];
	snprintf(want, sizeof want, "%s: ok", mode);
	struct cmd_result r;
	run_cmd(&r, argv, NULL, 60);
	cr_assert_eq(r.status, 0, "stackuse %s fails natively: %d %s", mode, r.status, r.err);
	cmd_result_free(&r);
	static const char *const heap[] = { "sampled", "full" };
	for (size_t i = 0; i < 2; i++) {
		struct traced_env t;
		traced_env_init(&t, heap[i]);
		run_cmd(&r, argv, t.env, 60);
		traced_env_done(&t);
		cr_expect_eq(r.status, 0, "stackuse %s, heap %s: status %d under the shim", mode, heap[i],
			     r.status);
		cr_expect_not_null(strstr(r.out, want), "stackuse %s, heap %s: %s", mode, heap[i], r.out);
		cmd_result_free(&r);
	}
}

/* a 16 KiB thread that uses 6 KiB itself, calling socket/write/malloc */
Test(shim_stack, small_thread_survives, .timeout = 120)
{
	survives("small-thread");
}

/* a handler on an 8 KiB sigaltstack (guard page below) calling write/malloc */
Test(shim_stack, small_sigaltstack_survives, .timeout = 120)
{
	survives("small-alt");
}

/* the call-site cache must not read a smaller coroutine stack past its end */
Test(shim_stack, site_cache_reused_coroutine_stack, .timeout = 60)
{
	char *argv[] = { FIX("corostack"), NULL };
	struct cmd_result r;
	run_cmd(&r, argv, NULL, 30);
	/* 4: the two runs did not reach the call with one stack pointer */
	cr_assert_eq(r.status, 0, "corostack natively: status %d: %s", r.status, r.err);
	cmd_result_free(&r);
	for (int rep = 0; rep < 3; rep++) {
		struct traced_env t;
		traced_env_init(&t, "full");
		run_cmd(&r, argv, t.env, 30);
		traced_env_done(&t);
		cr_assert_eq(r.status, 0, "corostack under the shim (full heap, cache on): status %d: %s",
			     r.status, r.err);
		cr_assert_not_null(strstr(r.out, "corostack: ok"), "%s", r.out);
		cmd_result_free(&r);
	}
}
