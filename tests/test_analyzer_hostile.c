/* SPDX-License-Identifier: MIT */
/*
 * Hostile and racing segment files (issue 8, items 7 and 8): what other users
 * can put in a shared segment directory, and what a writer or a truncation
 * does while the analyzer reads.  Every case must end with an answer — a
 * one-line refusal (exit 2) or a report — never a hang or a crash.  The
 * binary is run with an alarm(), so a hang fails the test instead of
 * blocking the suite.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "lib/analyzer.h"

static char dir[64];

/* tmpfs, like /dev/shm: holes and SEEK_DATA behave as they do for real segments */
static void setup(void)
{
	cr_assert_eq(tmpfs_dir(dir, sizeof dir, "hostile-test"), 0, "no tmpfs to mount and /dev/shm is not one");
	setenv("LEAKWATCH_DIR", dir, 1);
}

static void teardown(void)
{
	tmpfs_dir_release(dir);
	unsetenv("LEAKWATCH_DIR");
}

TestSuite(analyzer_hostile, .init = setup, .fini = teardown);

/*
 * lw - run build/leakwatch with args (NULL-terminated), killed after
 * `secs`; stdout and stderr captured into out/err.  Returns the exit status,
 * or -1 when it did not exit (killed at the deadline: a hang, or a crash).
 */
static int lw(const char *const *args, unsigned secs, char *out, size_t outlen, char *err, size_t errlen)
{
	struct spawn_opts o = { .timeout_s = (int)secs };
	return cli_run_opts(args, &o, out, outlen, err, errlen);
}

static void expect_refusal(const char *const *args, const char *needle)
{
	char out[16384], err[8192];
	int rc = lw(args, 20, out, sizeof out, err, sizeof err);
	cr_expect_eq(rc, 2, "%s %s: exit %d (-1: hung or crashed), stderr '%s'", args[0], args[1], rc, err);
	cr_expect_eq(count_lines(err), 1, "stderr must be one line: '%s'", err);
	cr_expect(strncmp(err, "leakwatch: ", 11) == 0, "stderr '%s'", err);
	if (needle)
		cr_expect(strstr(err, needle), "stderr '%s' lacks '%s'", err, needle);
}

/* a valid segment of a process that is gone, named after its pid */
static void write_dead_segment(int pid, char *path, size_t len)
{
	struct fab f;
	char name[64];
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->pid = pid;
	f.hdr->state = LW_STATE_EXITED;
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 0, 1);
	snprintf(name, sizeof name, "leakwatch.%d", pid);
	fab_write(&f, dir, name, path, len);
	fab_free(&f);
}

/* ---- item 8: a FIFO where a segment should be ------------------------------------ */

Test(analyzer_hostile, fifo_named_like_a_segment_never_blocks, .timeout = 60)
{
	char fifo[PATH_MAX], good[PATH_MAX], out[16384], err[8192], e[LW_ERR_MAX];
	snprintf(fifo, sizeof fifo, "%s/leakwatch.4242", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	write_dead_segment(lw_dead_pid(), good, sizeof good);

	/* in process first: open(O_RDONLY) of a FIFO without a writer would block here */
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, fifo, e, sizeof e), -1);
	cr_assert_str_eq(e, "not a regular file");
	lw_snapshot_free(&s);

	int rc = lw((const char *[]){ "ps", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "ps: exit %d (-1: hung), stderr '%s'", rc, err);
	cr_assert(strstr(out, lw_pidfmt("%d  exited")), "the good segment is still listed: %s", out);
	cr_assert(strstr(out, "not a regular file") && strstr(out, "leakwatch.4242"), "%s", out);

	rc = lw((const char *[]){ "clean", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "clean: exit %d (-1: hung), stderr '%s'", rc, err);
	cr_assert(strstr(out, "1 segment removed"), "%s", out);
	cr_assert_eq(count_lines(err), 1, "one warning, naming the FIFO: '%s'", err);
	cr_assert(strstr(err, "leakwatch.4242") && strstr(err, "not a regular file"), "%s", err);
	struct stat st;
	cr_assert_eq(lstat(fifo, &st), 0, "clean leaves what is not a segment alone");
	cr_assert(S_ISFIFO(st.st_mode));

	expect_refusal((const char *[]){ "report", "4242", NULL }, "not a regular file");
	expect_refusal((const char *[]){ "report", fifo, NULL }, "not a regular file");
}

/* ---- item 8: module paths naming a FIFO or a device ------------------------------- */

Test(analyzer_hostile, module_path_fifo_or_device_is_not_opened, .timeout = 60)
{
	char fifo[PATH_MAX], path[PATH_MAX], out[16384], err[8192], e[LW_ERR_MAX];
	snprintf(fifo, sizeof fifo, "%s/libevil.so", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);

	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	uint64_t fr[3] = { 0x10001000, 0x20001000, 0x30001000 };
	fab_stack(&f, 1, fr, 3);
	fab_module(&f, fifo, 0x10000000, 0x10000000, 0x10100000, 0);
	fab_module(&f, "/dev/zero", 0x20000000, 0x20000000, 0x20100000, 0);
	fab_module(&f, "/dev/tty", 0x30000000, 0x30000000, 0x30100000, 0);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 1, 1);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);

	/* in process: libdw's own open() of the FIFO would block here */
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), 0, "%s", e);
	struct lw_symbolizer *sym = lw_symbolizer_new(&s, e, sizeof e);
	cr_assert_not_null(sym, "%s", e);
	struct lw_frame frames[8];
	size_t n = lw_symbolize_stack(sym, fr, 3, frames, 8);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		cr_assert_null(frames[i].function, "frame %zu named from a non-file", i);
	lw_symbolizer_free(sym);
	lw_snapshot_free(&s);

	int rc = lw((const char *[]){ "report", path, "--format", "json", NULL }, 20, out, sizeof out, err,
		    sizeof err);
	cr_assert_eq(rc, 0, "exit %d (-1: hung or crashed), stderr '%s'", rc, err);
	cr_assert(strstr(out, "libevil.so"), "the frame still shows its module: %.2000s", out);
}

/* ---- item 8: truncation while the analyzer reads ------------------------------------ */

/* A segment with every handle slot written, so a read takes long enough to be cut. */
static void write_busy_segment(const char *name, char *path, size_t len, struct fab *f)
{
	fab_init(f, 64, 4, 4096, 4);
	uint64_t fr[2] = { 0x1000, 0x2000 };
	fab_stack(f, 1, fr, 2);
	for (int fd = 0; fd < 4096; fd++)
		fab_handle(f, fd, LW_ORIGIN_SOCKET, 1, 1);
	fab_write(f, dir, name, path, len);
}

Test(analyzer_hostile, concurrent_truncation_never_kills_the_reader, .timeout = 120)
{
	char path[PATH_MAX], e[LW_ERR_MAX];
	struct fab f;
	write_busy_segment(fab_segname(), path, sizeof path, &f);

	/* another process cuts the file down and writes it back, over and over */
	pid_t cutter = fork();
	if (cutter == 0) {
		/* never outlive the test, even when a SIGBUS kills it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(100);
		int fd = open(path, O_WRONLY);
		for (;;) {
			if (ftruncate(fd, 4096) != 0 || pwrite(fd, f.mem, f.size, 0) != (ssize_t)f.size)
				_exit(1);
		}
	}
	unsigned ok = 0, refused = 0;
	for (int i = 0; i < 400; i++) {
		struct lw_snapshot s;
		if (lw_snapshot_open(&s, path, e, sizeof e) == 0)
			ok++;
		else
			refused++;
		lw_snapshot_free(&s);
	}
	/* and the binary, which must answer every time: a report or a one-line refusal */
	for (int i = 0; i < 20; i++) {
		char out[16384], err[8192];
		int rc = lw((const char *[]){ "report", path, "--format", "json", NULL }, 30, out, sizeof out, err,
			    sizeof err);
		cr_assert(rc == 0 || (rc == 2 && count_lines(err) == 1), "exit %d (-1: killed), stderr '%s'", rc,
			  err);
	}
	kill(cutter, SIGKILL);
	waitpid(cutter, NULL, 0);
	fab_free(&f);
	cr_assert_eq(ok + refused, 400, "the reader survived every truncation");
}

/* ---- item 8: sparse files that claim huge tables ------------------------------------- */

/* write_sparse - f's header alone, then a hole up to `size` (the header's total_size). */
static void write_sparse(struct fab *f, const char *name, uint64_t size, char *path, size_t len)
{
	f->hdr->total_size = size;
	f->size = LW_HEADER_SIZE; /* the header only: the rest is one hole */
	fab_write(f, dir, name, path, len);
	cr_assert_eq(truncate(path, (off_t)size), 0, "%s", strerror(errno));
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_lt((uint64_t)st.st_blocks * 512, 64 << 10, "sparse: %ld blocks", (long)st.st_blocks);
}

static void write_sparse_claim(const char *name, uint64_t size, struct lw_table stacks, struct lw_table heap,
			       char *path, size_t len)
{
	struct fab f;
	fab_init_v1(&f, 4, 4, 16, 4, 0, LW_HEAP_OFF, 0);
	f.hdr->stacks = stacks;
	f.hdr->heap = heap;
	f.hdr->heap_mode = heap.capacity ? LW_HEAP_FULL : LW_HEAP_OFF;
	write_sparse(&f, name, size, path, len);
	fab_free(&f);
}

Test(analyzer_hostile, sparse_file_claiming_terabytes_is_refused_at_once, .timeout = 60)
{
	char path[PATH_MAX], out[16384], err[8192];
	/* layout 1: 8 KiB on disk, 5.7 TiB apparent, one stack table filling it */
	uint64_t off = fab_align(LW_HEADER_SIZE + 64 * 4096);
	struct lw_table st = { .offset = off, .capacity = 0xffffffffu, .entry_size = 1472 };
	uint64_t size = off + (uint64_t)st.capacity * st.entry_size;
	cr_assert_gt(size, 5ull << 40);
	write_sparse_claim(fab_segname(), size, st, (struct lw_table){ 0 }, path, sizeof path);

	int rc = lw((const char *[]){ "ps", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "ps: exit %d (-1: took too long), stderr '%s'", rc, err);
	cr_assert(strstr(out, "invalid") && strstr(out, "refused"), "%s", out);
	expect_refusal((const char *[]){ "report", path, NULL }, "layout 1 segment can be; refused");
	unlink(path);

	/* layout 2: a logical size beyond any span a shim makes (1 TiB) */
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	write_sparse(&f, fab_segname(), 32ull << 40, path, sizeof path);
	fab_free(&f);
	expect_refusal((const char *[]){ "report", path, NULL },
		       "claims 32768 GiB (more than the 16384 GiB a segment can be; refused)");
}

Test(analyzer_hostile, sparse_tables_within_bounds_are_read_by_extent, .timeout = 60)
{
	char path[PATH_MAX], out[16384], err[8192], e[LW_ERR_MAX];
	/* layout 1, 48 GiB apparent: a 40 GiB stack table and an 8 GiB heap table, all holes */
	uint64_t off = fab_align(LW_HEADER_SIZE + 64 * 4096);
	struct lw_table st = { .offset = off, .capacity = 1u << 26, .entry_size = sizeof(struct lw_stack) };
	uint64_t hoff = off + (uint64_t)st.capacity * st.entry_size;
	struct lw_table ht = { .offset = hoff, .capacity = 1u << 28, .entry_size = sizeof(struct lw_alloc) };
	uint64_t size = hoff + (uint64_t)ht.capacity * ht.entry_size;
	write_sparse_claim(fab_segname(), size, st, ht, path, sizeof path);
	struct stat before, after;
	cr_assert_eq(stat(path, &before), 0);

	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), 0, "%s", e);
	cr_assert_eq(s.nstacks, 0);
	cr_assert_eq(s.nallocs, 0);
	lw_snapshot_free(&s);
	int rc = lw((const char *[]){ "ps", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "ps: exit %d (-1: took too long), stderr '%s'", rc, err);
	cr_assert(strstr(out, lw_pidfmt("%d  dead")), "%s", out);
	cr_assert_eq(stat(path, &after), 0);
	cr_assert_eq(after.st_blocks, before.st_blocks, "reading allocated holes");

	/* out of bounds: more entries than any shim writes */
	st.capacity = (1u << 28) + 1;
	write_sparse_claim("leakwatch.2147484", off + (uint64_t)st.capacity * 64, st, (struct lw_table){ 0 }, path,
			   sizeof path);
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), -1);
	cr_assert(strstr(e, "stack table claims"), "%s", e);
	lw_snapshot_free(&s);
	unlink(path);
}

/*
 * Layout 2 as a shim leaves it: a 1 TiB span whose tables sit anywhere in
 * it.  Here a stack table of 2^28 - 2^20 slots in chunks up to 2^27 slots
 * (170 GiB) and a heap table of 2^28 slots (8 GiB), all holes, at the far
 * end of the span: read by extent, nothing allocated, no time.
 */
Test(analyzer_hostile, v2_span_of_a_terabyte_is_read_by_extent, .timeout = 60)
{
	char path[PATH_MAX], out[16384], err[8192], e[LW_ERR_MAX];
	const uint64_t span = 1ull << 40;
	struct fab f;
	fab_init_heap(&f, 4, 4, 16, 4, 0, LW_HEAP_FULL, 0);
	struct lw_chunks *c = &f.hdr->chunks[LW_T_STACKS];
	c->shift = 20;
	c->count = 8;
	uint64_t off = 512ull << 30;
	for (unsigned k = 0; k < c->count; k++) {
		c->off[k] = off;
		off += lw_chunk_bytes(c->shift, k, sizeof(struct lw_stack));
	}
	f.hdr->heapdir.cur_off = fab_page(off);
	f.hdr->heapdir.cur_cap = 1u << 28;
	cr_assert_lt(f.hdr->heapdir.cur_off + (1ull << 28) * sizeof(struct lw_alloc), span);
	/* the first chunks of the other tables stay where fab_init put them, in data */
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 0, 1);
	fab_span(&f, span);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	struct stat before, after;
	cr_assert_eq(stat(path, &before), 0);
	cr_assert_eq((uint64_t)before.st_size, span);

	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), 0, "%s", e);
	cr_assert_eq(s.layout, 2);
	cr_assert_eq(s.nstacks, 0);
	cr_assert_eq(s.nallocs, 0);
	cr_assert_eq(s.nhandles, 1);
	cr_assert_eq(s.file_bytes, (uint64_t)before.st_blocks * 512);
	lw_snapshot_free(&s);
	int rc = lw((const char *[]){ "report", path, NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "report: exit %d (-1: took too long), stderr '%s'", rc, err);
	cr_assert(strstr(out, "1 open socket tracked"), "%s", out);
	rc = lw((const char *[]){ "ps", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "ps: exit %d (-1: took too long), stderr '%s'", rc, err);
	cr_assert(strstr(out, lw_pidfmt("%d  dead")), "%s", out);
	cr_assert_null(strstr(out, "TiB"), "ps shows the space held, not the span: %s", out);
	cr_assert_eq(stat(path, &after), 0);
	cr_assert_eq(after.st_blocks, before.st_blocks, "reading allocated holes");
}

Test(analyzer_hostile, overlapping_tables_are_refused)
{
	struct fab f;
	char path[PATH_MAX], e[LW_ERR_MAX];
	fab_init_v1(&f, 4, 4, 16, 4, 0, LW_HEAP_OFF, 0);
	f.hdr->modules.offset = f.hdr->stacks.offset;
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), -1);
	cr_assert_str_eq(e, "stack and module tables overlap");
}

/*
 * Layout 2 headers as a forger (or a broken writer) could write them: every
 * one is refused in one line, before any table is read and before anything
 * large is allocated.
 */
enum v2_forgery {
	F_CHUNKS_OVERLAP_TABLES, F_CHUNKS_OVERLAP_SAME, F_CHUNK_PAST_END, F_CHUNK_BEYOND_FILE, F_CHUNK_UNALIGNED,
	F_TOO_MANY_CHUNKS, F_SHIFT, F_TOO_MANY_ENTRIES, F_HEAP_CAP, F_HEAP_PAST_END, F_HEAP_OVER_CHUNK,
	F_HEAP_OLD_OVER_CUR, F_HEAP_UNALIGNED, F_HEAP_ENTRY, F_NFORGERIES
};

static void forge(struct fab *f, enum v2_forgery k)
{
	struct lw_header *h = f->hdr;
	struct lw_heapdir *d = &h->heapdir;
	switch (k) {
	case F_CHUNKS_OVERLAP_TABLES: h->chunks[LW_T_MODULES].off[0] = h->chunks[LW_T_STACKS].off[0]; break;
	case F_CHUNKS_OVERLAP_SAME: h->chunks[LW_T_HANDLES].off[1] = h->chunks[LW_T_HANDLES].off[0]; break;
	case F_CHUNK_PAST_END: h->chunks[LW_T_HANDLES].off[1] = fab_page(f->size) - 4096; break;
	case F_CHUNK_BEYOND_FILE: h->chunks[LW_T_STACKS].off[0] = 1ull << 50; break;
	case F_CHUNK_UNALIGNED: h->chunks[LW_T_BADCLOSES].off[0] += 64; break;
	case F_TOO_MANY_CHUNKS: h->chunks[LW_T_STACKS].count = 1000000; break;
	case F_SHIFT: h->chunks[LW_T_STACKS].shift = 60; break;
	case F_TOO_MANY_ENTRIES:
		h->chunks[LW_T_MODULES].shift = 20;
		h->chunks[LW_T_MODULES].count = 24;
		break;
	case F_HEAP_CAP: d->cur_cap = 1ull << 40; break;
	case F_HEAP_PAST_END: d->cur_cap = f->size; break;
	case F_HEAP_OVER_CHUNK: d->cur_off = h->chunks[LW_T_HANDLES].off[1]; break;
	case F_HEAP_OLD_OVER_CUR:
		d->old_off = d->cur_off;
		d->old_cap = 16;
		break;
	case F_HEAP_UNALIGNED: d->cur_off += 8; break;
	case F_HEAP_ENTRY: h->heap.entry_size = 1u << 30; break;
	case F_NFORGERIES: break;
	}
}

static const char *const forged_msg[F_NFORGERIES] = {
	[F_CHUNKS_OVERLAP_TABLES] = "stack and module tables overlap",
	[F_CHUNKS_OVERLAP_SAME] = "handle table chunks overlap",
	[F_CHUNK_PAST_END] = "handle table chunk 1 (",
	[F_CHUNK_BEYOND_FILE] = "stack table chunk 0 offset 1125899906842624 is outside the file",
	[F_CHUNK_UNALIGNED] = "bad-close table chunk 0 is misaligned",
	[F_TOO_MANY_CHUNKS] = "stack table claims 1000000 chunks (at most 24)",
	[F_SHIFT] = "stack table chunk shift 60 is out of range (at most 24)",
	[F_TOO_MANY_ENTRIES] = "module table claims 17592184995840 entries (at most 268435456 are read)",
	[F_HEAP_CAP] = "heap table claims 1099511627776 entries (at most 268435456 are read)",
	[F_HEAP_PAST_END] = "runs past the end of the file",
	[F_HEAP_OVER_CHUNK] = "handle and heap tables overlap",
	[F_HEAP_OLD_OVER_CUR] = "replaced heap and heap tables overlap",
	[F_HEAP_UNALIGNED] = "heap table is misaligned",
	[F_HEAP_ENTRY] = "heap table entries are 1073741824 bytes (at most 65536 are read)",
};

Test(analyzer_hostile, v2_forged_layouts_are_refused_in_one_line, .timeout = 120)
{
	for (int k = 0; k < F_NFORGERIES; k++) {
		char path[PATH_MAX], e[LW_ERR_MAX], name[64];
		struct fab f;
		fab_init_heap(&f, 40, 4, 40, 4, 64, LW_HEAP_FULL, 0);
		cr_assert_eq(f.hdr->chunks[LW_T_HANDLES].count, 2);
		uint64_t fr[1] = { 0x1000 };
		fab_stack(&f, 1, fr, 1);
		fab_handle(&f, 20, LW_ORIGIN_SOCKET, 1, 1);
		fab_alloc(&f, 3, 0x4000, 10, 1, 1);
		forge(&f, (enum v2_forgery)k);
		snprintf(name, sizeof name, "forged-%d", k);
		fab_write(&f, dir, name, path, sizeof path);
		fab_free(&f);
		struct lw_snapshot s;
		cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), -1, "forgery %d was read", k);
		cr_assert(strstr(e, forged_msg[k]), "forgery %d: '%s' lacks '%s'", k, e, forged_msg[k]);
		cr_assert_null(s.allocs);
		cr_assert_null(s.stacks);
		lw_snapshot_free(&s);
		expect_refusal((const char *[]){ "report", path, NULL }, forged_msg[k]);
		unlink(path);
	}
}

/* ---- item 8: forged owner and forged pid ----------------------------------------------- */

/* A RUNNING segment that claims to be this (root) test process. */
static void write_forgery(const char *name, int hdr_pid, char *path, size_t len)
{
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->pid = hdr_pid;
	cr_assert_eq(lw_proc_start_ticks(getpid(), &f.hdr->proc_start_ticks), 0);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 0, 1);
	fab_write(&f, dir, name, path, len);
	fab_free(&f);
}

Test(analyzer_hostile, forged_segment_of_a_root_process_is_refused, .timeout = 60)
{
	if (getuid() != 0)
		cr_skip_test("needs root to give a file to another uid");
	char path[PATH_MAX], name[64], me[32], out[16384], err[8192], e[LW_ERR_MAX];
	struct lw_snapshot s;
	snprintf(name, sizeof name, "leakwatch.%d", (int)getpid());
	snprintf(me, sizeof me, "%d", (int)getpid());

	/* the genuine article (owned by root, like the process): believed */
	write_forgery(name, getpid(), path, sizeof path);
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), 0, "%s", e);
	cr_assert_eq(lw_snapshot_live(&s), LW_LIVE_ALIVE);
	lw_snapshot_free(&s);

	/* the same file owned by nobody (65534): someone else wrote it */
	cr_assert_eq(chown(path, 65534, 65534), 0);
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), -1);
	char want[128];
	snprintf(want, sizeof want, "owned by uid 65534, but process %d runs as uid 0", (int)getpid());
	cr_assert(strstr(e, want), "%s", e);
	lw_snapshot_free(&s);
	expect_refusal((const char *[]){ "report", me, NULL }, want);
	int rc = lw((const char *[]){ "ps", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "invalid") && strstr(out, "owned by uid 65534"), "%s", out);
	/* clean never removes the segment of a live process, forged or not */
	rc = lw((const char *[]){ "clean", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "0 segments removed"), "%s", out);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0);
	unlink(path);

	/* a name and a header that disagree: leakwatch.<root pid> saying it is another pid */
	write_forgery(name, lw_dead_pid(), path, sizeof path);
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), -1);
	cr_assert(strstr(e, lw_pidfmt("header says pid %d, the file name says")), "%s", e);
	lw_snapshot_free(&s);
	expect_refusal((const char *[]){ "report", me, NULL }, "the file name says");
}

Test(analyzer_hostile, foreign_segment_of_a_gone_process, .timeout = 60)
{
	if (getuid() != 0)
		cr_skip_test("needs root to give a file to another uid");
	char path[PATH_MAX], out[16384], err[8192], e[LW_ERR_MAX];
	write_dead_segment(lw_dead_pid(), path, sizeof path);
	cr_assert_eq(chown(path, 65534, 65534), 0);

	/* nothing vouches for it: report refuses, even for root */
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), -1);
	cr_assert(strstr(e, lw_pidfmt("owned by uid 65534 and process %d is gone")), "%s", e);
	lw_snapshot_free(&s);
	expect_refusal((const char *[]){ "report", lw_dead_pid_str(), NULL }, "is gone");

	/* ...but root's clean removes it: a regular segment file whose process is gone */
	int rc = lw((const char *[]){ "clean", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "1 segment removed"), "%s", out);
	struct stat st;
	cr_assert_neq(lstat(path, &st), 0, "removed");
}

Test(analyzer_hostile, clean_never_follows_a_symlink, .timeout = 60)
{
	char victim_dir[] = "/tmp/lw-hostile-victim.XXXXXX", victim[PATH_MAX], link[PATH_MAX];
	char out[16384], err[8192];
	cr_assert_not_null(mkdtemp(victim_dir));
	/* a dead segment elsewhere, and a link to it under a segment name */
	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	f.hdr->pid = 77;
	f.hdr->state = LW_STATE_EXITED;
	fab_write(&f, victim_dir, "leakwatch.77", victim, sizeof victim);
	fab_free(&f);
	snprintf(link, sizeof link, "%s/leakwatch.77", dir);
	cr_assert_eq(symlink(victim, link), 0);

	int rc = lw((const char *[]){ "clean", NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "0 segments removed"), "%s", out);
	cr_assert(strstr(err, "leakwatch.77") && strstr(err, "symbolic link"), "%s", err);
	struct stat st;
	cr_assert_eq(stat(victim, &st), 0, "the target stays");
	cr_assert_eq(lstat(link, &st), 0, "the link stays");
	unlink(link);
	unlink(victim);
	rmdir(victim_dir);
}

Test(analyzer_hostile, segment_replaced_before_removal_is_kept)
{
	char path[PATH_MAX], e[LW_ERR_MAX];
	write_dead_segment(lw_dead_pid(), path, sizeof path);
	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), 0, "%s", e);
	/* someone puts another file under the name after it was judged */
	cr_assert_eq(unlink(path), 0);
	write_dead_segment(lw_dead_pid(), path, sizeof path);
	cr_assert_eq(lw_segment_remove(&s), -1);
	cr_assert_eq(errno, ESTALE);
	struct stat st;
	cr_assert_eq(lstat(path, &st), 0, "the new file stays");
	lw_snapshot_free(&s);
}

/* ---- item 7: stacks written while the snapshot is taken ----------------------------- */

Test(analyzer_hostile, missing_stack_is_unknown_and_counted)
{
	char path[PATH_MAX], out[16384], err[8192], e[LW_ERR_MAX];
	struct fab f;
	fab_init(&f, 8, 4, 16, 4);
	uint64_t fr[2] = { 0x1000, 0x2000 };
	fab_stack(&f, 1, fr, 2);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 1, 1);
	fab_handle(&f, 6, LW_ORIGIN_SOCKET, 3, 1);     /* stack 3 was never written */
	fab_handle(&f, 7, LW_ORIGIN_SOCKET, 1000, 1);  /* beyond the table */
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);

	struct lw_snapshot s;
	cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), 0, "%s", e);
	cr_assert_eq(s.nstacks, 1);
	cr_assert_eq(s.missing_stacks, 2);
	lw_snapshot_free(&s);
	int rc = lw((const char *[]){ "report", path, NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "stderr '%s'", err);
	cr_assert(strstr(out, "no stack recorded"), "%s", out);
	cr_assert(strstr(out, "MISSING    2 stack reference(s) not in the stack table"), "%s", out);
	rc = lw((const char *[]){ "report", "--format", "json", path, NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "stderr '%s'", err);
	cr_assert(strstr(out, "\"missing_stacks\":2,"), "%s", out);
}

/*
 * A writer thread on a tmpfs segment: each round it writes a new stack into a
 * page that was a hole until then — publishing the stack table's next chunk
 * first when the stack falls in it, as a growing shim does — and then a
 * handle naming it: the shim's order.  Every handle a snapshot holds must
 * find its stack.  Reading the extents once, before the tables, missed
 * stacks written in between; so did reading the chunk list only with the
 * header.
 */
struct race {
	unsigned char *map;
	struct lw_header *h;
	atomic_int stop;
	atomic_uint rounds;
	atomic_uint snaps;              /* snapshots the reader finished */
};

#define RACE_STACKS 32768u
#define RACE_STRIDE 8u    /* 8 x 640 bytes: every new stack starts a new page */
#define RACE_FDS 1024u
/* the writer waits for one more finished snapshot every RACE_PACE rounds:
 * however the two threads are scheduled, at least 8 snapshots overlap the
 * writes (no timing in the test) */
#define RACE_PACE (RACE_STACKS / RACE_STRIDE / 8u)

static void *race_at(struct race *r, unsigned t, uint64_t idx)
{
	uint64_t within;
	unsigned k = lw_chunk_of(r->h->chunks[t].shift, idx, &within);
	return r->map + r->h->chunks[t].off[k] + within * (&r->h->stacks)[t].entry_size;
}

static void *race_writer(void *arg)
{
	struct race *r = arg;
	struct lw_chunks *sc = &r->h->chunks[LW_T_STACKS];
	for (uint32_t k = 0; k < RACE_STACKS / RACE_STRIDE && !atomic_load(&r->stop); k++) {
		while (k && k % RACE_PACE == 0 && atomic_load(&r->snaps) < k / RACE_PACE &&
		       !atomic_load(&r->stop))
			sched_yield();
		uint32_t idx = k * RACE_STRIDE;
		uint64_t within;
		unsigned chunk = lw_chunk_of(sc->shift, idx, &within);
		if (chunk >= atomic_load_explicit(&sc->count, memory_order_relaxed))
			atomic_store_explicit(&sc->count, chunk + 1, memory_order_release);
		struct lw_stack *s = race_at(r, LW_T_STACKS, idx);
		s->depth = 2;
		s->frames[0] = 0x1000 + k;
		s->frames[1] = 0x2000;
		atomic_store_explicit(&s->seq, 2, memory_order_release);
		struct lw_handle *h = race_at(r, LW_T_HANDLES, k % RACE_FDS);
		uint32_t q = atomic_load_explicit(&h->seq, memory_order_relaxed);
		atomic_store_explicit(&h->seq, q + 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
		h->state = LW_H_OPEN;
		h->family = AF_INET;
		h->type = SOCK_STREAM;
		h->origin = LW_ORIGIN_SOCKET;
		h->stack_id = idx + 1;
		h->inode = 100000 + k;
		atomic_store_explicit(&h->seq, q + 2, memory_order_release);
		atomic_fetch_add(&r->rounds, 1);
		for (volatile int spin = 0; spin < 5000; spin++) {
		}
	}
	return NULL;
}

Test(analyzer_hostile, stack_written_during_the_snapshot_is_found, .timeout = 120)
{
	char path[PATH_MAX], e[LW_ERR_MAX];
	struct fab f;
	fab_init(&f, RACE_STACKS, 4, RACE_FDS, 4);
	f.hdr->chunks[LW_T_STACKS].count = 1; /* the rest is published by the writer */
	f.hdr->handles.used = RACE_FDS;
	f.size = LW_HEADER_SIZE; /* header only: the tables are holes, like a fresh segment */
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	uint64_t size = f.hdr->total_size;
	fab_free(&f);
	cr_assert_eq(truncate(path, (off_t)size), 0);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	struct race r = { 0 };
	r.map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(r.map, MAP_FAILED);
	close(fd);
	r.h = (struct lw_header *)(void *)r.map;
	/* every handle page is data from the start, as the shim's first fds make it */
	const struct lw_chunks *hc = &r.h->chunks[LW_T_HANDLES];
	for (unsigned k = 0; k < hc->count; k++)
		memset(r.map + hc->off[k], 0, lw_chunk_bytes(hc->shift, k, r.h->handles.entry_size));

	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, race_writer, &r), 0);
	unsigned snaps = 0, checked = 0;
	while (atomic_load(&r.rounds) < RACE_STACKS / RACE_STRIDE && snaps < 100000) {
		struct lw_snapshot s;
		cr_assert_eq(lw_snapshot_open(&s, path, e, sizeof e), 0, "%s", e);
		snaps++;
		for (size_t i = 0; i < s.nhandles; i++) {
			uint32_t id = s.handles[i].h.stack_id;
			cr_assert_not_null(lw_snapshot_stack(&s, id), "snapshot %u: stack %u not in the table", snaps,
					   id);
			checked++;
		}
		cr_assert_eq(s.missing_stacks, 0);
		lw_snapshot_free(&s);
		atomic_fetch_add(&r.snaps, 1);
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	cr_assert_gt(atomic_load(&r.h->chunks[LW_T_STACKS].count), 8, "the stack table grew during the test");
	munmap(r.map, size);
	cr_assert_gt(snaps, 3, "snapshots taken while the writer ran (%u)", snaps);
	cr_assert_gt(checked, 0);
}

/*
 * libdw looks for separate debug info next to a module (the .gnu_debuglink
 * name, in its directory and its .debug/) with a plain open(): in a
 * directory anyone can write, a FIFO under that name would block the
 * report forever.  There only the module's own file is read.
 */
Test(analyzer_hostile, debuglink_fifo_in_a_shared_directory_is_not_opened, .timeout = 60)
{
	char shared[PATH_MAX], prog[PATH_MAX + 16], dbg[PATH_MAX + 32], path[PATH_MAX], out[16384],
		err[8192];
	snprintf(shared, sizeof shared, "%s/shared", dir);
	cr_assert_eq(mkdir(shared, 0777), 0);
	cr_assert_eq(chmod(shared, 01777), 0); /* like /tmp */
	snprintf(prog, sizeof prog, "%s/prog", shared);
	snprintf(dbg, sizeof dbg, "%s/prog.debug", shared);
	char link_opt[PATH_MAX + 80];
	snprintf(link_opt, sizeof link_opt, "--add-gnu-debuglink=%s", dbg);
	struct cmd_result r;
	char *cp[] = { "cp", LW_BUILD_DIR "/fixtures/leak_basic", prog, NULL };
	run_cmd(&r, cp, NULL, 20);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	char *keep[] = { "objcopy", "--only-keep-debug", prog, dbg, NULL };
	run_cmd(&r, keep, NULL, 20);
	cr_assert_eq(r.status, 0, "objcopy: %s", r.err);
	cmd_result_free(&r);
	char *strip[] = { "objcopy", "--strip-debug", link_opt, prog, NULL };
	run_cmd(&r, strip, NULL, 20);
	cr_assert_eq(r.status, 0, "objcopy: %s", r.err);
	cmd_result_free(&r);
	cr_assert_eq(unlink(dbg), 0);
	cr_assert_eq(mkfifo(dbg, 0666), 0);

	struct fab f;
	fab_init(&f, 4, 4, 16, 4);
	uint64_t fr[1] = { 0x10001200 };
	fab_stack(&f, 1, fr, 1);
	fab_module(&f, prog, 0x10000000, 0x10000000, 0x10100000, 0);
	fab_handle(&f, 5, LW_ORIGIN_SOCKET, 1, 1);
	fab_write(&f, dir, fab_segname(), path, sizeof path);
	fab_free(&f);

	int rc = lw((const char *[]){ "report", path, NULL }, 20, out, sizeof out, err, sizeof err);
	cr_assert_eq(rc, 0, "exit %d (-1: hung on the FIFO), stderr '%s'", rc, err);
	cr_assert(strstr(out, "prog"), "the frame is shown by its module: %.2000s", out);
}
