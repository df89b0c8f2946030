/*
 * The heap table grows with the program, end to end: the heap_many fixture
 * under the preloaded shim in full mode, its segment read back from the
 * file (tests/lib/heapdir: the reader protocol of segment.h over pread).
 *   - 4M live blocks are all recorded, with their exact bytes, and
 *     `leakwatch report` says so;
 *   - from 100K live blocks on, the segment costs at most 64 resident bytes
 *     per live block;
 *   - on a tmpfs too small for the table to grow, the program runs to its
 *     normal end, and the segment says incomplete and counts what it
 *     dropped.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/heapdir.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name

static char dir[96];
static int mounted;

static void teardown(void)
{
	if (mounted) {
		rm_rf(dir);
		umount2(dir, MNT_DETACH);
		rmdir(dir);
		mounted = 0;
	} else if (dir[0]) {
		tmpfs_dir_release(dir);
	}
	dir[0] = '\0';
}

TestSuite(run_heapgrow, .fini = teardown);

/* the one segment in dir (the fixture's), or "" */
static void segment_in(const char *d, char *path, size_t len)
{
	path[0] = '\0';
	DIR *dd = opendir(d);
	cr_assert_not_null(dd, "%s: %s", d, strerror(errno));
	struct dirent *e;
	while ((e = readdir(dd)))
		if (!strncmp(e->d_name, "leakwatch.", 10))
			snprintf(path, len, "%s/%s", d, e->d_name);
	closedir(dd);
	cr_assert_neq(path[0], '\0', "no segment in %s", d);
}

/* run heap_many N THREADS under the shim (full mode, no directory budget),
 * check its output and status, and return its segment's path in seg */
static void run_many(long n, int threads, char *seg, size_t len)
{
	char dir_env[160], nbuf[32], tbuf[16], pre[600];
	snprintf(dir_env, sizeof dir_env, "LEAKWATCH_DIR=%s", dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	snprintf(nbuf, sizeof nbuf, "%ld", n);
	snprintf(tbuf, sizeof tbuf, "%d", threads);
	char *env[] = { dir_env, pre, "LEAKWATCH_HEAP=full", "LEAKWATCH_BUDGET=0", NULL };
	struct cmd_result r;
	run_cmd(&r, (char *[]){ FIX("heap_many"), nbuf, tbuf, NULL }, env, 300);
	cr_assert_eq(r.status, 0, "heap_many %ld: status %d, stderr %s", n, r.status, r.err);
	long got = -1;
	cr_assert_eq(sscanf(r.out, "heap_many: %ld blocks", &got), 1, "stdout: %s", r.out);
	cr_assert_eq(got, n / threads * threads);
	cmd_result_free(&r);
	segment_in(dir, seg, len);
}

/* what heap_many allocates: block i of a thread has 40 + (i & 31) bytes */
static void many_expect(long n, int threads, uint64_t *blocks, uint64_t *bytes)
{
	long per = n / threads;
	*blocks = (uint64_t)(per * threads);
	*bytes = 0;
	for (long i = 0; i < per; i++)
		*bytes += 40 + (uint64_t)(i & 31);
	*bytes *= (uint64_t)threads;
}

static void count_many(const struct hd_snap *s, uint64_t *blocks, uint64_t *bytes)
{
	*blocks = *bytes = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->blocks[i].size >= 40 && s->blocks[i].size <= 71) {
			(*blocks)++;
			*bytes += s->blocks[i].size;
		}
}

static void no_drops(const struct hd_snap *s)
{
	cr_assert_eq(heapdir_counter(s, LW_CTR_DROP_HEAP_FULL), 0);
	cr_assert_eq(heapdir_counter(s, LW_CTR_DROP_BUSY), 0);
	cr_assert_eq(heapdir_counter(s, LW_CTR_DROP_RESERVE), 0);
	cr_assert_eq(atomic_load(&s->hdr.incomplete), 0);
}

/* Before growth: one table of 2^18 slots at most; a report on 4M leaked
 * blocks said about 250K. */
Test(run_heapgrow, four_million_live_blocks_recorded_exactly, .timeout = 300)
{
	if (tmpfs_dir(dir, sizeof dir, "heapgrow") != 0)
		cr_skip_test("no tmpfs to mount and /dev/shm is not one");
	char seg[512];
	const long N = 4000000;
	run_many(N, 2, seg, sizeof seg);
	struct hd_snap s;
	cr_assert_eq(heapdir_read(seg, &s), 0, "%s: %s", seg, strerror(errno));
	uint64_t want_n, want_b, n, b;
	many_expect(N, 2, &want_n, &want_b);
	count_many(&s, &n, &b);
	cr_assert_eq(n, want_n, "%lu of %lu blocks", (unsigned long)n, (unsigned long)want_n);
	cr_assert_eq(b, want_b, "%lu of %lu bytes", (unsigned long)b, (unsigned long)want_b);
	cr_assert_eq(s.twice + s.busy, 0);
	no_drops(&s);
	cr_assert_eq(atomic_load(&s.hdr.state), LW_STATE_EXITED);
	cr_assert_eq(s.dir.old_cap, 0, "the exit finished the migration: one table left");
	cr_assert_gt(heapdir_counter(&s, LW_CTR_HEAP_GROWS), 0);
	cr_assert_eq(s.hdr.heap.capacity, s.dir.cur_cap);
	heapdir_free(&s);

	/* and the report says so: one group at the fixture's malloc line */
	struct cmd_result r;
	run_cmd(&r, (char *[]){ (char *)lw_bin(), "report", seg, "--kind", "heap", "--format", "json", NULL }, NULL, 120);
	cr_assert_eq(r.status, 0, "report: %s", r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "report JSON: %.300s", r.out);
	struct tj *groups = tj_get(tj_get(j, "heap"), "groups");
	double count = -1, bytes = -1;
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *g = tj_at(groups, i);
		struct tj *f = tj_at(tj_get(g, "stack"), 0);
		if (f && tj_str(f, "function") && !strcmp(tj_str(f, "function"), "worker")) {
			count = tj_num(g, "count", -1);
			bytes = tj_num(g, "bytes", -1);
		}
	}
	cr_assert_eq(count, (double)want_n, "reported %.0f blocks", count);
	cr_assert_eq(bytes, (double)want_b, "reported %.0f bytes", bytes);
	tj_free(j);
	cmd_result_free(&r);
}

/* The segment file's allocated blocks (header, tables, everything) per
 * live recorded block, at 100K to 1M live blocks.  Before growth: 269
 * bytes at 125K. */
Test(run_heapgrow, at_most_64_resident_bytes_per_live_block, .timeout = 300)
{
	if (tmpfs_dir(dir, sizeof dir, "heapgrow") != 0)
		cr_skip_test("no tmpfs to mount and /dev/shm is not one");
	static const long sizes[] = { 100000, 250000, 400000, 1000000 };
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		char seg[512];
		run_many(sizes[k], 1, seg, sizeof seg);
		struct hd_snap s;
		cr_assert_eq(heapdir_read(seg, &s), 0, "%s: %s", seg, strerror(errno));
		uint64_t want_n, want_b, n, b;
		many_expect(sizes[k], 1, &want_n, &want_b);
		count_many(&s, &n, &b);
		cr_assert_eq(n, want_n);
		no_drops(&s);
		double per = (double)s.st_blocks_bytes / (double)s.n;
		cr_log_info("%zu live blocks: %.1f resident bytes each (%lu slots)", s.n, per,
			    (unsigned long)s.dir.cur_cap);
		cr_assert_leq(per, 64.0, "%zu live blocks: %.1f resident bytes each", s.n, per);
		heapdir_free(&s);
		unlink(seg);
	}
}

/*
 * A filesystem too small for the heap table to grow (a 512 KiB tmpfs: the
 * segment, its first tables and one growth fit): the program must run as
 * it would without leakwatch — same output, same status, no SIGBUS — and
 * the segment must say that the heap is incomplete and count what it could
 * not record.
 */
Test(run_heapgrow, full_filesystem_refuses_growth_and_says_so, .timeout = 120)
{
	if (geteuid() != 0)
		cr_skip_test("mounting a tmpfs needs root");
	snprintf(dir, sizeof dir, "/tmp/lw-heapgrow-small.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=512k,mode=0755") != 0) {
		rmdir(dir);
		dir[0] = '\0';
		cr_skip_test("cannot mount a tmpfs here: %s", strerror(errno));
	}
	mounted = 1;
	char seg[512];
	const long N = 50000;
	run_many(N, 1, seg, sizeof seg);
	struct hd_snap s;
	cr_assert_eq(heapdir_read(seg, &s), 0, "%s: %s", seg, strerror(errno));
	cr_assert(atomic_load(&s.hdr.incomplete) & LW_INCOMPLETE_HEAP, "incomplete: %#x",
		  atomic_load(&s.hdr.incomplete));
	cr_assert_geq(heapdir_counter(&s, LW_CTR_DROP_RESERVE), 1);
	uint64_t n, b, dropped = heapdir_counter(&s, LW_CTR_DROP_HEAP_FULL);
	count_many(&s, &n, &b);
	cr_assert_gt(n, 1000, "what fits is recorded: %lu blocks", (unsigned long)n);
	cr_assert_gt(dropped, 0);
	/* every block is recorded or counted (a few of the fixture's other
	 * allocations may be among the dropped) */
	cr_assert_geq(n + dropped, (uint64_t)N, "%lu recorded + %lu dropped", (unsigned long)n, (unsigned long)dropped);
	cr_assert_leq(n + dropped, (uint64_t)N + 16, "%lu recorded + %lu dropped", (unsigned long)n,
		      (unsigned long)dropped);
	cr_assert_eq(atomic_load(&s.hdr.state), LW_STATE_EXITED);
	heapdir_free(&s);
}
