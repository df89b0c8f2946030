/* SPDX-License-Identifier: MIT */
/*
 * Tests for analyzer/lib/suppress.c: both suppression formats, wildcard and
 * frame matching, counts, malformed input, --gen-suppressions round trips,
 * the LEAKWATCH_SUPPRESSIONS list, and the default set against
 * heapgroups.c's system_owners[].
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suppress.h"

#define LIBC "/usr/lib/x86_64-linux-gnu/libc.so.6"
#define LD   "/lib64/ld-linux-x86-64.so.2"
#define STDCXX "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
#define EXE  "/home/u/src/app/server"

static struct lw_supp_set *set;
static char err[512];

static void setup(void)
{
	set = lw_supp_set_new();
	cr_assert_not_null(set);
	err[0] = '\0';
}

static void teardown(void)
{
	lw_supp_set_free(set);
	set = NULL;
}

TestSuite(suppress, .init = setup, .fini = teardown);

static struct lw_frame fr(const char *fn, const char *module)
{
	return (struct lw_frame){ .function = fn, .module = module };
}

static int load(const char *text)
{
	return lw_supp_load_string(set, text, strlen(text), "supp.txt", err, sizeof err);
}

static void load_ok(const char *text, int expect)
{
	int n = load(text);
	cr_assert_eq(n, expect, "load gave %d (%s), expected %d", n, err, expect);
}

static const char *find_name(enum lw_supp_kind kind, enum lw_reach leak,
			     const struct lw_frame *f, size_t n)
{
	const struct lw_supp *e = lw_supp_find(set, kind, leak, f, n);
	return e ? e->name : NULL;
}

#define HEAP(f) find_name(LW_SUPP_HEAP, LW_REACH_UNKNOWN, f, sizeof(f) / sizeof(f)[0])

/* ---- the valgrind format -------------------------------------------------- */

Test(suppress, valgrind_basic)
{
	load_ok("# a comment\n"
		"\n"
		"{\n"
		"   cache-init\n"
		"   leakwatch:Heap\n"
		"   fun:cache_alloc\n"
		"   fun:cache_init\n"
		"}\n", 1);
	const struct lw_supp *e = lw_supp_set_entry(set, 0);
	cr_assert_str_eq(e->name, "cache-init");
	cr_assert_str_eq(e->file, "supp.txt");
	/* the name line, as valgrind -v's used_suppression counts (checked with valgrind 3.19) */
	cr_assert_eq(e->line, 4);
	cr_assert_eq(e->format, LW_SUPP_VALGRIND);
	cr_assert_eq(e->kinds, LW_SUPP_KIND_BIT(LW_SUPP_HEAP));
	cr_assert_null(lw_supp_set_entry(set, 1));

	struct lw_frame yes[] = { fr("cache_alloc", EXE), fr("cache_init", EXE), fr("main", EXE) };
	struct lw_frame shifted[] = { fr("malloc", LIBC), fr("cache_alloc", EXE), fr("cache_init", EXE) };
	struct lw_frame short1[] = { fr("cache_alloc", EXE) };
	cr_assert_str_eq(HEAP(yes), "cache-init");
	/* Frame lines match from frame 0 on, not anywhere. */
	cr_assert_null(HEAP(shifted));
	/* More lines than frames: no match. */
	cr_assert_null(HEAP(short1));
	/* Other kinds are not suppressed by a Heap entry. */
	cr_assert_null(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, yes, 3));
	cr_assert_null(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, yes, 3));
}

Test(suppress, valgrind_kinds_and_tools)
{
	load_ok("{\n s1\n leakwatch:Socket\n fun:connect_pool\n}\n"
		"{\n f1\n leakwatch:Fd\n fun:open_log\n}\n"
		"{\n m1\n Memcheck:Leak\n fun:mc_leak\n}\n"
		"{\n multi\n Memcheck,leakwatch:Leak\n fun:both\n}\n"
		/* other Memcheck kinds and other tools: parsed, skipped */
		"{\n cond\n Memcheck:Cond\n fun:whatever\n}\n"
		"{\n param\n Memcheck:Param\n write(buf)\n fun:write\n}\n"
		"{\n helgrind\n Helgrind:Race\n obj:*\n}\n", 4);
	struct lw_frame s[] = { fr("connect_pool", EXE) };
	struct lw_frame f[] = { fr("open_log", EXE) };
	struct lw_frame m[] = { fr("mc_leak", EXE) };
	struct lw_frame b[] = { fr("both", EXE) };
	struct lw_frame w[] = { fr("whatever", EXE) };
	cr_assert_str_eq(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, s, 1), "s1");
	cr_assert_null(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, s, 1));
	cr_assert_null(HEAP(s));
	cr_assert_str_eq(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, f, 1), "f1");
	cr_assert_null(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, f, 1));
	cr_assert_str_eq(HEAP(m), "m1");
	cr_assert_null(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, m, 1));
	cr_assert_str_eq(HEAP(b), "multi");
	cr_assert_null(HEAP(w));
	cr_assert_eq(lw_supp_set_size(set), 4);
}

Test(suppress, glob_wildcards)
{
	load_ok("{\n star\n leakwatch:Heap\n fun:pool_*_alloc\n}\n"
		"{\n qmark\n leakwatch:Heap\n fun:buf?\n}\n"
		"{\n quoted\n leakwatch:Heap\n fun:lit\\*x\n}\n", 3);
	struct lw_frame a[] = { fr("pool_conn_alloc", EXE) };
	struct lw_frame a0[] = { fr("pool__alloc", EXE) };
	struct lw_frame a1[] = { fr("pool_conn_alloc_x", EXE) };   /* whole-string match */
	struct lw_frame a2[] = { fr("my_pool_conn_alloc", EXE) };
	struct lw_frame q[] = { fr("buf1", EXE) };
	struct lw_frame q0[] = { fr("buf", EXE) };
	struct lw_frame q2[] = { fr("buf12", EXE) };
	struct lw_frame l[] = { fr("lit*x", EXE) };
	struct lw_frame l2[] = { fr("litABx", EXE) };
	cr_assert_str_eq(HEAP(a), "star");
	cr_assert_str_eq(HEAP(a0), "star");
	cr_assert_null(HEAP(a1));
	cr_assert_null(HEAP(a2));
	cr_assert_str_eq(HEAP(q), "qmark");
	cr_assert_null(HEAP(q0));
	cr_assert_null(HEAP(q2));
	cr_assert_str_eq(HEAP(l), "quoted");
	cr_assert_null(HEAP(l2));
}

Test(suppress, dots)
{
	load_ok("{\n lead\n leakwatch:Heap\n ...\n fun:config_load\n}\n"
		"{\n middle\n leakwatch:Heap\n fun:xmalloc\n ...\n fun:parse\n fun:main\n}\n"
		"{\n trailing\n leakwatch:Heap\n fun:only\n ...\n}\n", 3);
	struct lw_frame l0[] = { fr("config_load", EXE) };
	struct lw_frame l3[] = { fr("a", EXE), fr("b", EXE), fr("c", EXE), fr("config_load", EXE), fr("main", EXE) };
	struct lw_frame m0[] = { fr("xmalloc", EXE), fr("parse", EXE), fr("main", EXE) };
	/* `...` backtracks: the first "parse" is not followed by main, the second is. */
	struct lw_frame m2[] = { fr("xmalloc", EXE), fr("parse", EXE), fr("x", EXE),
				 fr("parse", EXE), fr("main", EXE), fr("__libc_start_main", LIBC) };
	struct lw_frame mno[] = { fr("xmalloc", EXE), fr("parse", EXE), fr("x", EXE) };
	struct lw_frame t[] = { fr("only", EXE) };
	cr_assert_str_eq(HEAP(l0), "lead");
	cr_assert_str_eq(HEAP(l3), "lead");
	cr_assert_str_eq(HEAP(m0), "middle");
	cr_assert_str_eq(HEAP(m2), "middle");
	cr_assert_null(HEAP(mno));
	cr_assert_str_eq(HEAP(t), "trailing");
}

Test(suppress, many_dots_are_not_exponential)
{
	/* 30 `...` lines and a last line that never matches a 200-frame stack. */
	char text[4096] = "{\n deep\n leakwatch:Heap\n";
	for (int i = 0; i < 30; i++)
		strcat(text, " ...\n fun:f\n");
	strcat(text, " fun:never\n}\n");
	load_ok(text, 1);
	struct lw_frame st[200];
	for (int i = 0; i < 200; i++)
		st[i] = fr("f", EXE);
	cr_assert_null(HEAP(st));
}

Test(suppress, mangled_and_demangled)
{
	load_ok("{\n by-mangled\n leakwatch:Heap\n fun:_ZN5Cache4growEm\n}\n"
		"{\n by-demangled\n leakwatch:Heap\n fun:Parser::token*\n}\n", 2);
	struct lw_frame m[] = { { .function = "Cache::grow(unsigned long)", .linkage = "_ZN5Cache4growEm",
				  .module = EXE } };
	struct lw_frame d[] = { { .function = "Parser::token(int)", .linkage = "_ZN6Parser5tokenEi",
				  .module = EXE } };
	struct lw_frame none[] = { { .function = "Cache::grow(unsigned long)", .module = EXE } };
	cr_assert_str_eq(HEAP(m), "by-mangled");
	cr_assert_str_eq(HEAP(d), "by-demangled");
	cr_assert_null(HEAP(none));
}

Test(suppress, obj_and_src)
{
	load_ok("{\n in-libfoo\n leakwatch:Heap\n obj:*/libfoo.so*\n fun:main\n}\n"
		"{\n by-file\n leakwatch:Fd\n src:pool.c\n}\n"
		"{\n by-line\n leakwatch:Socket\n src:net/*.c:42\n}\n"
		"{\n by-path\n leakwatch:Heap\n src:/src/app/util.c\n}\n", 4);
	struct lw_frame o[] = { fr(NULL, "/opt/foo/lib/libfoo.so.1.2"), fr("main", EXE) };
	struct lw_frame o2[] = { fr(NULL, "libfoo.so.1"), fr("main", EXE) };  /* obj: is the full path */
	cr_assert_str_eq(HEAP(o), "in-libfoo");
	cr_assert_null(HEAP(o2));

	struct lw_frame f[] = { { .function = "open_pool", .file = "/src/app/pool.c", .line = 7 } };
	struct lw_frame f2[] = { { .function = "open_pool", .file = "/src/app/pool.cc", .line = 7 } };
	cr_assert_str_eq(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, f, 1), "by-file");
	cr_assert_null(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, f2, 1));

	struct lw_frame s[] = { { .function = "dial", .file = "net/tcp.c", .line = 42 } };
	struct lw_frame s2[] = { { .function = "dial", .file = "net/tcp.c", .line = 43 } };
	cr_assert_str_eq(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, s, 1), "by-line");
	cr_assert_null(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, s2, 1));

	struct lw_frame p[] = { { .function = "u", .file = "/src/app/util.c", .line = 1 } };
	struct lw_frame p2[] = { { .function = "u", .file = "/other/app/util.c", .line = 1 } };
	cr_assert_str_eq(HEAP(p), "by-path");
	cr_assert_null(HEAP(p2));
}

Test(suppress, inlined_frames_count)
{
	load_ok("{\n inl\n leakwatch:Heap\n fun:helper\n fun:outer\n}\n", 1);
	struct lw_frame st[] = { { .function = "helper", .module = EXE, .inlined = 1 },
				 { .function = "outer", .module = EXE } };
	cr_assert_str_eq(HEAP(st), "inl");
}

Test(suppress, unknown_frames)
{
	load_ok("{\n any-fun\n leakwatch:Heap\n fun:*\n fun:main\n}\n"
		"{\n named\n leakwatch:Heap\n fun:?*\n fun:lone\n}\n", 2);
	/* An unknown function is the empty string: `*` matches it, `?*` does not. */
	struct lw_frame st[] = { fr(NULL, NULL), fr("main", EXE) };
	struct lw_frame st2[] = { fr(NULL, NULL), fr("lone", EXE) };
	cr_assert_str_eq(HEAP(st), "any-fun");
	cr_assert_null(HEAP(st2));
}

Test(suppress, match_leak_kinds)
{
	load_ok("{\n def\n Memcheck:Leak\n match-leak-kinds: definite,possible\n fun:a\n}\n"
		"{\n reach\n leakwatch:Heap\n match-leak-kinds: reachable\n fun:b\n}\n"
		"{\n all\n leakwatch:Heap\n match-leak-kinds: all\n fun:c\n}\n"
		"{\n none\n leakwatch:Heap\n match-leak-kinds: none\n fun:d\n}\n", 4);
	cr_assert_eq(lw_supp_set_entry(set, 0)->leak_kinds,
		     LW_REACH_BIT(LW_REACH_DEFINITE) | LW_REACH_BIT(LW_REACH_POSSIBLE));
	cr_assert_eq(lw_supp_set_entry(set, 1)->leak_kinds, LW_REACH_BIT(LW_REACH_REACHABLE));
	cr_assert_eq(lw_supp_set_entry(set, 2)->leak_kinds, LW_REACH_KINDS_ALL);
	cr_assert_eq(lw_supp_set_entry(set, 3)->leak_kinds, 0);

	struct lw_frame a[] = { fr("a", EXE) }, b[] = { fr("b", EXE) };
	struct lw_frame c[] = { fr("c", EXE) }, d[] = { fr("d", EXE) };
	cr_assert_str_eq(find_name(LW_SUPP_HEAP, LW_REACH_DEFINITE, a, 1), "def");
	cr_assert_str_eq(find_name(LW_SUPP_HEAP, LW_REACH_POSSIBLE, a, 1), "def");
	cr_assert_null(find_name(LW_SUPP_HEAP, LW_REACH_REACHABLE, a, 1));
	cr_assert_null(find_name(LW_SUPP_HEAP, LW_REACH_INDIRECT, a, 1));
	cr_assert_str_eq(find_name(LW_SUPP_HEAP, LW_REACH_REACHABLE, b, 1), "reach");
	cr_assert_null(find_name(LW_SUPP_HEAP, LW_REACH_DEFINITE, b, 1));
	cr_assert_str_eq(find_name(LW_SUPP_HEAP, LW_REACH_INDIRECT, c, 1), "all");
	/* Unknown class: matched by any non-empty set, never by none. */
	cr_assert_str_eq(find_name(LW_SUPP_HEAP, LW_REACH_UNKNOWN, a, 1), "def");
	cr_assert_str_eq(find_name(LW_SUPP_HEAP, LW_REACH_UNKNOWN, b, 1), "reach");
	cr_assert_null(find_name(LW_SUPP_HEAP, LW_REACH_UNKNOWN, d, 1));
	cr_assert_null(find_name(LW_SUPP_HEAP, LW_REACH_DEFINITE, d, 1));
}

Test(suppress, crlf_and_blanks)
{
	load_ok("\t{  \r\n\t  dos  \r\n  leakwatch:Heap\r\n# inside\r\n\r\n  fun:dos_fn \r\n}\r\n", 1);
	cr_assert_str_eq(lw_supp_set_entry(set, 0)->name, "dos");
	struct lw_frame st[] = { fr("dos_fn", EXE) };
	cr_assert_str_eq(HEAP(st), "dos");
}

/* ---- the LSan format --------------------------------------------------------- */

Test(suppress, lsan_lines)
{
	load_ok("# LSan file\n"
		"leak:cache_\n"
		"leakwatch-socket:^dial_\n"
		"leakwatch-fd:log$\n"
		"leakwatch-heap:^exact$\n", 4);
	const struct lw_supp *e = lw_supp_set_entry(set, 0);
	cr_assert_eq(e->format, LW_SUPP_LSAN);
	cr_assert_str_eq(e->name, "leak:cache_");
	cr_assert_eq(e->line, 2);
	cr_assert_eq(e->kinds, LW_SUPP_KINDS_ALL);
	cr_assert_eq(lw_supp_set_entry(set, 1)->kinds, LW_SUPP_KIND_BIT(LW_SUPP_SOCKET));

	/* Substring, any frame of the stack, every kind. */
	struct lw_frame c[] = { fr("malloc", LIBC), fr("x", EXE), fr("my_cache_fill", EXE) };
	cr_assert_str_eq(HEAP(c), "leak:cache_");
	cr_assert_str_eq(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, c, 3), "leak:cache_");
	cr_assert_str_eq(find_name(LW_SUPP_FD, LW_REACH_DEFINITE, c, 3), "leak:cache_");

	/* ^ anchors at the start, $ at the end; kind-specific prefixes. */
	struct lw_frame d1[] = { fr("dial_tcp", EXE) }, d2[] = { fr("redial_tcp", EXE) };
	cr_assert_str_eq(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, d1, 1), "leakwatch-socket:^dial_");
	cr_assert_null(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, d2, 1));
	cr_assert_null(HEAP(d1));
	struct lw_frame l1[] = { fr("open_log", EXE) }, l2[] = { fr("open_logs", EXE) };
	cr_assert_not_null(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, l1, 1));
	cr_assert_null(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, l2, 1));
	struct lw_frame x1[] = { fr("exact", EXE) }, x2[] = { fr("exactly", EXE) }, x3[] = { fr("inexact", EXE) };
	cr_assert_str_eq(HEAP(x1), "leakwatch-heap:^exact$");
	cr_assert_null(HEAP(x2));
	cr_assert_null(HEAP(x3));
}

Test(suppress, lsan_wildcards_and_fields)
{
	load_ok("leak:^conn*pool$\n"
		"leak:libplugin.so\n"
		"leak:/vendor/*.c\n"
		"leak:_ZN4Blob\n", 4);
	struct lw_frame a[] = { fr("conn_to_pool", EXE) }, a2[] = { fr("conn_pool_x", EXE) };
	struct lw_frame a3[] = { fr("connpoolxpool", EXE) };  /* $: the last occurrence counts */
	cr_assert_str_eq(HEAP(a), "leak:^conn*pool$");
	cr_assert_null(HEAP(a2));
	cr_assert_str_eq(HEAP(a3), "leak:^conn*pool$");
	/* Module path, source file and mangled name are matched too. */
	struct lw_frame m[] = { fr("f", "/opt/x/libplugin.so"), fr("main", EXE) };
	cr_assert_str_eq(HEAP(m), "leak:libplugin.so");
	struct lw_frame s[] = { { .function = "g", .file = "/vendor/lib/zz.c", .line = 3 } };
	cr_assert_str_eq(HEAP(s), "leak:/vendor/*.c");
	struct lw_frame k[] = { { .function = "Blob::Blob()", .linkage = "_ZN4BlobC1Ev", .module = EXE } };
	cr_assert_str_eq(HEAP(k), "leak:_ZN4Blob");
	/* An unknown frame matches no LSan pattern. */
	struct lw_frame u[] = { fr(NULL, NULL) };
	cr_assert_null(HEAP(u));
}

Test(suppress, mixed_formats_first_match_wins)
{
	load_ok("leak:worker\n"
		"{\n vg\n leakwatch:Heap\n fun:worker\n}\n", 2);
	struct lw_frame st[] = { fr("worker", EXE) };
	cr_assert_str_eq(HEAP(st), "leak:worker");
}

/* ---- counts ---------------------------------------------------------------------- */

Test(suppress, counts)
{
	load_ok("{\n vg\n leakwatch:Heap\n fun:a\n}\nleak:^b$\n", 2);
	struct lw_frame a[] = { fr("a", EXE) }, b[] = { fr("b", EXE) }, c[] = { fr("c", EXE) };
	cr_assert_not_null(lw_supp_match(set, LW_SUPP_HEAP, LW_REACH_UNKNOWN, a, 1, 3, 300));
	cr_assert_not_null(lw_supp_match(set, LW_SUPP_HEAP, LW_REACH_UNKNOWN, a, 1, 2.5, 40.5));
	cr_assert_not_null(lw_supp_match(set, LW_SUPP_SOCKET, LW_REACH_UNKNOWN, b, 1, 4, 0));
	cr_assert_null(lw_supp_match(set, LW_SUPP_HEAP, LW_REACH_UNKNOWN, c, 1, 9, 9));
	/* lw_supp_find counts nothing */
	cr_assert_not_null(lw_supp_find(set, LW_SUPP_HEAP, LW_REACH_UNKNOWN, a, 1));

	const struct lw_supp *ea = lw_supp_set_entry(set, 0), *eb = lw_supp_set_entry(set, 1);
	cr_assert_eq(ea->groups, 2);
	cr_assert_float_eq(ea->items, 5.5, 1e-9);
	cr_assert_float_eq(ea->bytes, 340.5, 1e-9);
	cr_assert_eq(eb->groups, 1);
	cr_assert_float_eq(eb->items, 4, 1e-9);
	cr_assert_float_eq(eb->bytes, 0, 1e-9);

	/* What a report's "suppressed:" lines come from. */
	char line[256];
	snprintf(line, sizeof line, "suppressed: %.0f blocks (%.0f bytes) by '%s' (%s:%d)",
		 ea->items, ea->bytes, ea->name, ea->file, ea->line);
	cr_assert_str_eq(line, "suppressed: 6 blocks (340 bytes) by 'vg' (supp.txt:2)"); /* the name line */

	lw_supp_reset_counts(set);
	cr_assert_eq(ea->groups, 0);
	cr_assert_eq(ea->items, 0);
	cr_assert_eq(eb->groups, 0);
}

/* ---- malformed input ---------------------------------------------------------- */

struct bad_case {
	const char *text;
	const char *msg;                /* expected err */
};

Test(suppress, malformed)
{
	static const struct bad_case cases[] = {
		{ "# ok\n{\n foo\n leakwatch:Heap\n fun:x\n", "supp.txt:2: unterminated suppression 'foo' (missing })" },
		{ "{\n", "supp.txt:1: unterminated suppression (missing })" },
		{ "{\n foo\n leakwatch:Heap\n fun:x\n{\n bar\n", "supp.txt:5: '{' inside suppression 'foo'" },
		{ "{\n}\n", "supp.txt:2: suppression without a name" },
		{ "{\n foo\n}\n", "supp.txt:3: suppression 'foo' has no tool:kind line" },
		{ "{\n foo\n fun:x\n}\n", "supp.txt:3: suppression 'foo' has no tool:kind line before 'fun:x'" },
		{ "{\n foo\n notatool\n}\n", "supp.txt:3: expected tool:kind" },
		{ "{\n foo\n leakwatch:Heap\n}\n", "supp.txt:4: suppression 'foo' has no fun:, obj:, src: or ... line" },
		{ "{\n foo\n leakwatch:Heap\n bar:x\n}\n", "supp.txt:4: expected fun:, obj:, src: or ... in suppression 'foo', got 'bar:x'" },
		{ "{\n foo\n leakwatch:Heap\n fun:\n}\n", "supp.txt:4: empty pattern" },
		{ "{\n foo\n leakwatch:Sockets\n fun:x\n}\n", "supp.txt:3: unknown leakwatch suppression kind 'Sockets'" },
		{ "{\n foo\n leakwatch:Heap\n match-leak-kinds: definite,lost\n fun:x\n}\n",
		  "supp.txt:4: unknown leak kind 'lost'" },
		{ "{\n foo\n leakwatch:Heap\n match-leak-kinds:\n fun:x\n}\n", "supp.txt:4: empty leak kind" },
		{ "{\n foo\n leakwatch:Fd\n match-leak-kinds: all\n fun:x\n}\n", "supp.txt:4: match-leak-kinds: in suppression 'foo', which is not a heap one" },
		{ "{\n foo\n leakwatch:Heap\n src:a.c:0\n}\n", "supp.txt:4: bad src: line" },
		{ "}\n", "supp.txt:1: '}' without '{'" },
		{ "\n\nleak:\n", "supp.txt:3: empty pattern in 'leak:'" },
		{ "leak:^$\n", "supp.txt:1: empty pattern" },
		{ "race:foo\n", "supp.txt:1: unexpected 'race:foo' (expected '{' or leak:PATTERN)" },
		{ "leak:ok\nfun:x\n", "supp.txt:2: unexpected 'fun:x'" },
		{ "{ foo\n", "supp.txt:1: unexpected '{ foo'" },
		{ "leak:a\0b\n", "supp.txt:1: NUL byte" },
		{ "{\n foo\n Memcheck:Cond\n fun:x\n", "supp.txt:1: unterminated suppression 'foo' (missing })" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = strlen(cases[i].text);
		if (strstr(cases[i].msg, "NUL"))
			len = 9;
		/* Something loaded before: a failed load must not remove or add entries. */
		lw_supp_set_free(set);
		set = lw_supp_set_new();
		load_ok("leak:before\n", 1);
		err[0] = '\0';
		int rc = lw_supp_load_string(set, cases[i].text, len, "supp.txt", err, sizeof err);
		cr_assert_eq(rc, -1, "case %zu should fail", i);
		cr_assert(strncmp(err, cases[i].msg, strlen(cases[i].msg)) == 0,
			  "case %zu: got '%s', expected '%s...'", i, err, cases[i].msg);
		cr_assert_null(strchr(err, '\n'), "case %zu: one line", i);
		cr_assert_eq(lw_supp_set_size(set), 1, "case %zu: partial load kept", i);
	}
}

Test(suppress, binary_and_garbage_never_crash)
{
	/* Pseudo-random bytes, and the same with NULs removed and lots of structure
	 * characters: every load either parses or fails with a one-line message. */
	unsigned seed = 12345;
	static const char alphabet[] = "{}\n:.*?\\^$#fun:obj:src:leak:leakwatch:HeapMemcheck:Leak ,\t\r\xff\x01";
	char buf[512];
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(round % 500) + 1;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned r = seed >> 16;
			buf[i] = round & 1 ? alphabet[r % (sizeof alphabet - 1)] : (char)(r & 0xff);
		}
		err[0] = '\0';
		int rc = lw_supp_load_string(set, buf, len, "fuzz", err, sizeof err);
		if (rc < 0) {
			cr_assert(strncmp(err, "fuzz:", 5) == 0, "round %d: '%s'", round, err);
			cr_assert_null(strchr(err, '\n'));
		}
		struct lw_frame st[] = { fr("a*b", EXE), fr(NULL, NULL), fr("leak", "/x/libleak.so") };
		lw_supp_match(set, LW_SUPP_HEAP, LW_REACH_UNKNOWN, st, 3, 1, 1);
	}
}

Test(suppress, file_errors)
{
	char dir[] = "/tmp/lw-supp-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof path, "%s/bad.supp", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("# header\n\n\n\n\n\n{\n   foo\n   leakwatch:Heap\n   fun:x\n", f);
	fclose(f);
	cr_assert_eq(lw_supp_load_file(set, path, err, sizeof err), -1);
	char want[400];
	snprintf(want, sizeof want, "%s:7: unterminated suppression 'foo' (missing })", path);
	cr_assert_str_eq(err, want);

	snprintf(path, sizeof path, "%s/missing.supp", dir);
	cr_assert_eq(lw_supp_load_file(set, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: No such file or directory", path);
	cr_assert_str_eq(err, want);
	cr_assert_eq(lw_supp_load_file(set, dir, err, sizeof err), -1);  /* a directory */
	cr_assert(strncmp(err, dir, strlen(dir)) == 0, "%s", err);

	snprintf(path, sizeof path, "%s/bad.supp", dir);
	unlink(path);
	rmdir(dir);
}

/* ---- generation -------------------------------------------------------------------- */

static char *gen_valgrind(const char *name, enum lw_supp_kind kind, enum lw_reach leak,
			  const struct lw_frame *f, size_t n, size_t max)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	cr_assert_not_null(out);
	cr_assert_eq(lw_supp_write_valgrind(out, name, kind, leak, f, n, max), 0);
	fclose(out);
	return text;
}

Test(suppress, gen_valgrind_text)
{
	struct lw_frame st[] = {
		{ .function = "Cache::grow(unsigned long)", .linkage = "_ZN5Cache4growEm", .module = EXE },
		{ .function = NULL, .module = "/opt/lib/libz.so.1" },
		{ .function = NULL, .module = NULL },
		{ .function = "main", .module = EXE },
	};
	char *t = gen_valgrind("<leakwatch_heap_1>", LW_SUPP_HEAP, LW_REACH_DEFINITE, st, 4, 0);
	cr_assert_str_eq(t, "{\n"
			    "   <leakwatch_heap_1>\n"
			    "   leakwatch:Heap\n"
			    "   match-leak-kinds: definite\n"
			    "   fun:_ZN5Cache4growEm\n"
			    "   obj:/opt/lib/libz.so.1\n"
			    "   obj:*\n"
			    "   fun:main\n"
			    "}\n");
	free(t);
	t = gen_valgrind(NULL, LW_SUPP_SOCKET, LW_REACH_DEFINITE, st, 4, 2);
	cr_assert_str_eq(t, "{\n"
			    "   <insert_a_suppression_name_here>\n"
			    "   leakwatch:Socket\n"
			    "   fun:_ZN5Cache4growEm\n"
			    "   obj:/opt/lib/libz.so.1\n"
			    "}\n");
	free(t);
	t = gen_valgrind("x", LW_SUPP_HEAP, LW_REACH_UNKNOWN, st + 3, 1, 0);
	cr_assert_str_eq(t, "{\n   x\n   leakwatch:Heap\n   fun:main\n}\n");
	free(t);
}

Test(suppress, gen_valgrind_round_trip)
{
	struct lw_frame st[20];
	for (int i = 0; i < 20; i++)
		st[i] = fr(i % 3 == 0 ? "step" : NULL, i % 3 == 1 ? "/usr/lib/libm.so.6" : EXE);
	st[0] = (struct lw_frame){ .function = "operator*(Vec const&, double)",
				   .linkage = NULL, .module = STDCXX };
	st[2] = (struct lw_frame){ .function = "ns::f<int>(int*)", .linkage = "_ZN2ns1fIiEEvPi", .module = EXE };
	st[5] = fr("what?", EXE);
	static const enum lw_supp_kind kinds[] = { LW_SUPP_HEAP, LW_SUPP_SOCKET, LW_SUPP_FD };
	for (size_t k = 0; k < 3; k++) {
		lw_supp_set_free(set);
		set = lw_supp_set_new();
		char *t = gen_valgrind("rt", kinds[k], LW_REACH_REACHABLE, st, 20, 0);
		load_ok(t, 1);
		free(t);
		cr_assert_not_null(lw_supp_find(set, kinds[k], LW_REACH_REACHABLE, st, 20));
		/* 12 frames were written: a stack differing after them still matches... */
		struct lw_frame other[20];
		memcpy(other, st, sizeof st);
		other[15] = fr("elsewhere", EXE);
		cr_assert_not_null(lw_supp_find(set, kinds[k], LW_REACH_REACHABLE, other, 20));
		/* ...one differing within them does not; nor do the quoted wildcards widen it. */
		other[5] = fr("whatX", EXE);
		cr_assert_null(lw_supp_find(set, kinds[k], LW_REACH_REACHABLE, other, 20));
		memcpy(other, st, sizeof st);
		other[0].function = "operator*(Vec const&, doubleXX)";
		cr_assert_null(lw_supp_find(set, kinds[k], LW_REACH_REACHABLE, other, 20));
		for (size_t j = 0; j < 3; j++)
			if (j != k)
				cr_assert_null(lw_supp_find(set, kinds[j], LW_REACH_REACHABLE, st, 20));
		if (kinds[k] == LW_SUPP_HEAP)
			cr_assert_null(lw_supp_find(set, LW_SUPP_HEAP, LW_REACH_DEFINITE, st, 20));
	}
}

static char *gen_lsan(enum lw_supp_kind kind, const struct lw_frame *f, size_t n, int expect_rc)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	cr_assert_not_null(out);
	cr_assert_eq(lw_supp_write_lsan(out, kind, f, n), expect_rc);
	fclose(out);
	return text;
}

Test(suppress, gen_lsan_round_trip)
{
	struct lw_frame st[] = { fr("strdup", LIBC), fr(NULL, EXE), fr("load_config", EXE), fr("main", EXE) };
	char *t = gen_lsan(LW_SUPP_HEAP, st, 4, 0);
	cr_assert_str_eq(t, "leak:^load_config$\n");
	load_ok(t, 1);
	free(t);
	cr_assert_not_null(HEAP(st));
	struct lw_frame near[] = { fr("load_config2", EXE), fr("main", EXE) };
	cr_assert_null(HEAP(near));

	t = gen_lsan(LW_SUPP_SOCKET, st, 4, 0);
	cr_assert_str_eq(t, "leakwatch-socket:^load_config$\n");
	free(t);
	t = gen_lsan(LW_SUPP_FD, st, 4, 0);
	cr_assert_str_eq(t, "leakwatch-fd:^load_config$\n");
	lw_supp_set_free(set);
	set = lw_supp_set_new();
	load_ok(t, 1);
	free(t);
	cr_assert_not_null(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, st, 4));
	cr_assert_null(HEAP(st));

	/* Only runtime frames: the innermost named one; nothing named: a module. */
	struct lw_frame rt[] = { fr(NULL, LIBC), fr("_IO_file_doallocate", LIBC), fr(NULL, LD) };
	t = gen_lsan(LW_SUPP_HEAP, rt, 3, 0);
	cr_assert_str_eq(t, "leak:^_IO_file_doallocate$\n");
	free(t);
	struct lw_frame anon[] = { fr(NULL, NULL), fr(NULL, "/opt/blob.so") };
	t = gen_lsan(LW_SUPP_HEAP, anon, 2, 0);
	cr_assert_str_eq(t, "leak:^/opt/blob.so$\n");
	free(t);
	struct lw_frame nothing[] = { fr(NULL, NULL) };
	t = gen_lsan(LW_SUPP_HEAP, nothing, 1, 1);
	cr_assert_str_eq(t, "");
	free(t);
}

/* ---- the environment list -------------------------------------------------------- */

Test(suppress, env_list)
{
	char dir[] = "/tmp/lw-supp-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char a[256], b[256], c[256], list[1024];
	snprintf(a, sizeof a, "%s/a.supp", dir);
	snprintf(b, sizeof b, "%s/b.supp", dir);
	snprintf(c, sizeof c, "%s/c.supp", dir);
	FILE *f = fopen(a, "w");
	fputs("leak:from_a\n{\n va\n leakwatch:Fd\n fun:x\n}\n", f);
	fclose(f);
	f = fopen(b, "w");
	fputs("leak:from_b\n", f);
	fclose(f);
	f = fopen(c, "w");
	fputs("leak:from_c\n{\n", f);
	fclose(f);

	cr_assert_eq(lw_supp_load_list(set, NULL, err, sizeof err), 0);
	cr_assert_eq(lw_supp_load_list(set, "", err, sizeof err), 0);
	cr_assert_eq(lw_supp_load_list(set, "::", err, sizeof err), 0);
	snprintf(list, sizeof list, ":%s::%s:", a, b);
	cr_assert_eq(lw_supp_load_list(set, list, err, sizeof err), 3, "%s", err);
	cr_assert_eq(lw_supp_set_size(set), 3);
	cr_assert_str_eq(lw_supp_set_entry(set, 0)->file, a);
	cr_assert_str_eq(lw_supp_set_entry(set, 2)->file, b);
	cr_assert_str_eq(lw_supp_set_entry(set, 2)->name, "leak:from_b");

	/* The failing file is named; the ones before it stay loaded. */
	snprintf(list, sizeof list, "%s:%s:%s", b, c, a);
	cr_assert_eq(lw_supp_load_list(set, list, err, sizeof err), -1);
	char want[400];
	snprintf(want, sizeof want, "%s:2: unterminated suppression (missing })", c);
	cr_assert_str_eq(err, want);
	cr_assert_eq(lw_supp_set_size(set), 4);

	/* What the CLI would do with the variable. */
	setenv(LW_SUPP_ENV, a, 1);
	lw_supp_set_free(set);
	set = lw_supp_set_new();
	cr_assert_eq(lw_supp_load_list(set, getenv(LW_SUPP_ENV), err, sizeof err), 2);
	unsetenv(LW_SUPP_ENV);

	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dir);
}

/* ---- the default set --------------------------------------------------------------- */

/* heapgroups.c's system_owners[] (rule 2), copied as data. */
static const char *const system_owners[] = {
	"_IO_file_doallocate",
	"__new_exitfn",
	"_dl_*",
	"__tzfile_read", "tzset_internal", "__tzstring", "__tzset_parse_tz",
	"_nl_*",
	"setlocale", "newlocale", "textdomain", "bindtextdomain", "bind_textdomain_codeset",
	"_dlerror_run", "dlerror",
	"__add_to_environ", "setenv", "putenv",
	"__cxa_thread_atexit_impl",
	"__nss_*", "nss_*",
	"__resolv_conf*", "__resolv_context*",
	"__gconv*",
	"getpwnam", "getpwuid", "getgrnam", "getgrgid", "getspnam", "gethostbyname",
	"gethostbyname2", "gethostbyaddr", "getservbyname", "getservbyport", "getprotobyname",
	"getprotobynumber", "getpwent", "getgrent",
};

/* An owner as a function name: a prefix entry gets a plausible tail. */
static void owner_name(const char *o, char *buf, size_t len)
{
	size_t n = strlen(o);
	if (o[n - 1] == '*')
		snprintf(buf, len, "%.*sinternal_x", (int)(n - 1), o);
	else
		snprintf(buf, len, "%s", o);
}

Test(suppress, default_set_loads_and_is_the_file)
{
	int n = lw_supp_load_default(set, err, sizeof err);
	cr_assert_gt(n, 0, "%s", err);
	for (size_t i = 0; i < lw_supp_set_size(set); i++) {
		const struct lw_supp *e = lw_supp_set_entry(set, i);
		cr_assert_str_eq(e->file, "<default>");
		cr_assert_eq(e->kinds, LW_SUPP_KIND_BIT(LW_SUPP_HEAP), "%s", e->name);
		cr_assert(strncmp(e->name, "leakwatch-runtime-", 18) == 0, "%s", e->name);
	}
	/* The built-in text is default.supp itself (one source of truth). */
	FILE *f = fopen(LW_SOURCE_DIR "/analyzer/lib/default.supp", "r");
	cr_assert_not_null(f);
	char *file = NULL;
	size_t cap = 0;
	ssize_t len = getdelim(&file, &cap, '\0', f);
	fclose(f);
	cr_assert_gt(len, 0);
	cr_assert_str_eq(lw_supp_default_text(), file);
	free(file);
}

Test(suppress, default_set_covers_system_owners)
{
	cr_assert_gt(lw_supp_load_default(set, err, sizeof err), 0, "%s", err);
	for (size_t i = 0; i < sizeof system_owners / sizeof system_owners[0]; i++) {
		char fn[128];
		owner_name(system_owners[i], fn, sizeof fn);
		/* owner in libc -> caller in the program */
		struct lw_frame st[] = { fr(fn, LIBC), fr("main", EXE), fr("__libc_start_main", LIBC) };
		cr_assert_not_null(HEAP(st), "owner %s not suppressed", fn);
		/* malloc-like libc frame first, then the owner */
		struct lw_frame st2[] = { fr("__libc_malloc_wrapper", LIBC), fr(fn, LIBC), fr("main", EXE) };
		cr_assert_not_null(HEAP(st2), "owner %s behind a libc frame not suppressed", fn);
		/* Default entries are heap entries only. */
		cr_assert_null(find_name(LW_SUPP_SOCKET, LW_REACH_UNKNOWN, st, 3));
		cr_assert_null(find_name(LW_SUPP_FD, LW_REACH_UNKNOWN, st, 3));
	}
}

Test(suppress, default_set_keeps_program_leaks)
{
	cr_assert_gt(lw_supp_load_default(set, err, sizeof err), 0, "%s", err);
	struct lw_frame plain[] = { fr("malloc", LIBC), fr("leaky", EXE), fr("main", EXE),
				    fr("__libc_start_main", LIBC), fr("_start", EXE) };
	struct lw_frame direct[] = { fr("leaky", EXE), fr("main", EXE), fr("__libc_start_main", LIBC) };
	struct lw_frame dup[] = { fr("strdup", LIBC), fr("parse_args", EXE), fr("main", EXE) };
	struct lw_frame cxx[] = { { .function = "operator new(unsigned long)", .linkage = "_Znwm", .module = STDCXX },
				  fr("make_widget", EXE), fr("main", EXE) };
	/* A constructor of a dlopen()ed library runs under _dl_init and _dlerror_run. */
	struct lw_frame ctor[] = { fr("plugin_init", "/opt/app/plugin.so"), fr("call_init", LD),
				   fr("_dl_init", LD), fr("dl_open_worker", LD), fr("_dl_catch_exception", LD),
				   fr("_dl_open", LD), fr("dlopen_doit", LIBC), fr("_dl_catch_error", LD),
				   fr("_dlerror_run", LIBC), fr("dlopen", LIBC), fr("main", EXE) };
	struct lw_frame ctor2[] = { fr("strdup", LIBC), fr("plugin_init", "/opt/app/plugin.so"),
				    fr("call_init", LD), fr("_dl_init", LD), fr("_dl_start_user", LD) };
	cr_assert_null(HEAP(plain));
	cr_assert_null(HEAP(direct));
	cr_assert_null(HEAP(dup));
	cr_assert_null(HEAP(cxx));
	cr_assert_null(HEAP(ctor), "%s", HEAP(ctor));
	cr_assert_null(HEAP(ctor2), "%s", HEAP(ctor2));

	/* The loader's own allocations are suppressed even without symbols. */
	struct lw_frame loader[] = { fr(NULL, LD), fr(NULL, LD), fr("dlopen", LIBC), fr("main", EXE) };
	cr_assert_str_eq(HEAP(loader), "leakwatch-runtime-loader");
	/* printf's stdio buffer, deep in libc. */
	struct lw_frame io[] = { fr("_IO_file_doallocate", LIBC), fr("_IO_doallocbuf", LIBC),
				 fr("_IO_file_overflow", LIBC), fr("_IO_file_xsputn", LIBC),
				 fr("__vfprintf_internal", LIBC), fr("printf", LIBC), fr("main", EXE) };
	cr_assert_str_eq(HEAP(io), "leakwatch-runtime-stdio-buffer");
}
