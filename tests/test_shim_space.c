/* SPDX-License-Identifier: MIT */
/*
 * Segment space (issue 10): every page reserved before it is touched, tables
 * that stop growing say so, a directory budget that reclaims dead
 * processes' segments oldest first, and segments removed when their process
 * leaves nothing behind.
 */
#include <criterion/criterion.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "leakwatch/segment.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name

static char mnt[64];
static int mounted;

/* mount_small - a fresh tmpfs of `size` (mount's size= syntax) at mnt. */
static void mount_small(const char *size)
{
	char opts[64];
	if (geteuid() != 0)
		cr_skip_test("needs root to mount a small tmpfs");
	snprintf(mnt, sizeof mnt, "/tmp/lw-space.XXXXXX");
	cr_assert_not_null(mkdtemp(mnt));
	snprintf(opts, sizeof opts, "size=%s,mode=0755", size);
	if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
		rmdir(mnt);
		cr_skip_test("cannot mount tmpfs: %s", strerror(errno));
	}
	mounted = 1;
}

static void teardown(void)
{
	if (mounted) {
		umount2(mnt, MNT_DETACH);
		rmdir(mnt);
		mounted = 0;
	}
}

TestSuite(shim_space, .fini = teardown, .timeout = 120);

/* read_header - the header of dir/leakwatch.<pid>; 0 when it is there. */
static int read_header(const char *dir, int pid, struct lw_header *h)
{
	char path[256];
	snprintf(path, sizeof path, "%s/leakwatch.%d", dir, pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, h, sizeof *h, 0);
	close(fd);
	return n == (ssize_t)sizeof *h && h->magic == LW_MAGIC ? 0 : -1;
}

static int count_segments(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "ls %s | grep -c '^leakwatch\\.'", dir);
	FILE *f = popen(cmd, "r");
	int n = -1;
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

/* run_traced - run argv under the shim with env extras; r filled, pid in *pid. */
static void run_traced(struct cmd_result *r, const char *const *argv, const char *const *extra, pid_t *pid)
{
	char dirv[128], pre[256];
	snprintf(dirv, sizeof dirv, "LEAKWATCH_DIR=%s", mnt);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lw_shim());
	char *env[16];
	int n = 0;
	env[n++] = dirv;
	env[n++] = pre;
	for (; extra && *extra && n < 15; extra++)
		env[n++] = (char *)*extra;
	env[n] = NULL;
	struct spawn_opts o = { .path = argv[0], .env = env, .timeout_s = 100 };
	struct spawn sp;
	cr_assert_eq(spawn_start(&sp, (char *const *)argv, &o), 0);
	*pid = sp.pid;
	spawn_finish(&sp, 0, r);
}

/*
 * A filesystem with room for the first chunks only: the handle table cannot
 * grow past them.  The program runs exactly as without the shim (same
 * output, status), and the segment says which table stopped and counts it.
 */
Test(shim_space, refused_growth_is_incomplete_not_fatal)
{
	mount_small("160k");
	const char *argv[] = { FIX("spacejob"), "fds", "3000", NULL };
	struct cmd_result native, traced;
	run_cmd(&native, (char *const *)argv, NULL, 60);
	cr_assert_eq(native.status, 0, "%s", native.err);
	pid_t pid;
	/* no budget: the filesystem itself is what runs out */
	run_traced(&traced, argv,
		   (const char *[]){ "LEAKWATCH_HEAP=off", "LEAKWATCH_KEEP_EMPTY=1", "LEAKWATCH_BUDGET=0", NULL },
		   &pid);
	cr_assert_eq(traced.status, 0, "traced run: status %d, %s", traced.status, traced.err);
	cr_assert_str_eq(traced.out, native.out, "the program sees what it sees without the shim");
	struct lw_header h;
	cr_assert_eq(read_header(mnt, pid, &h), 0, "the segment of %d", (int)pid);
	cr_expect(h.incomplete & LW_INCOMPLETE_HANDLES, "handles marked incomplete: %#x", h.incomplete);
	cr_expect_gt(h.counters[LW_CTR_DROP_RESERVE], 0);
	cr_expect_gt(h.counters[LW_CTR_DROP_HANDLE_FULL], 0, "fds beyond the table are counted");
	cr_expect_lt(h.handles.capacity, 3000);
	cr_expect_gt(h.handles.capacity, 63, "the first chunk was there");
	struct statfs f;
	cr_assert_eq(statfs(mnt, &f), 0);
	cmd_result_free(&native);
	cmd_result_free(&traced);
}

/* The same program with room to grow: every fd recorded, nothing refused,
 * and the segment holds about what it needs (not the old fixed tables). */
Test(shim_space, tables_grow_with_what_they_hold)
{
	mount_small("64m");
	const char *argv[] = { FIX("spacejob"), "fds", "3000", NULL };
	struct cmd_result r;
	pid_t pid;
	run_traced(&r, argv, (const char *[]){ "LEAKWATCH_HEAP=off", "LEAKWATCH_KEEP_EMPTY=1", NULL }, &pid);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct lw_header h;
	cr_assert_eq(read_header(mnt, pid, &h), 0);
	cr_expect_eq(h.incomplete, 0);
	cr_expect_eq(h.counters[LW_CTR_DROP_RESERVE], 0);
	cr_expect_eq(h.counters[LW_CTR_DROP_HANDLE_FULL], 0);
	cr_expect_geq(h.handles.capacity, 3000);
	cr_expect_eq(h.counters[LW_CTR_SOCK_OPENED], 3000);
	/* 3000 handles of 360 B and a few stacks: well under 4 MiB reserved */
	cr_expect_lt(h.reserved_bytes, 4u << 20, "reserved %lu", (unsigned long)h.reserved_bytes);
	char path[256];
	struct stat st;
	snprintf(path, sizeof path, "%s/leakwatch.%d", mnt, (int)pid);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_leq((uint64_t)st.st_blocks * 512, h.reserved_bytes, "only reserved pages are allocated");
	cmd_result_free(&r);
}

/* A process that records little costs little: a few sockets, sampled heap. */
Test(shim_space, small_process_small_segment)
{
	mount_small("64m");
	const char *argv[] = { FIX("spacejob"), "fds", "4", NULL };
	struct cmd_result r;
	pid_t pid;
	run_traced(&r, argv, (const char *[]){ "LEAKWATCH_HEAP=sampled", "LEAKWATCH_KEEP_EMPTY=1", NULL }, &pid);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char path[256];
	struct stat st;
	snprintf(path, sizeof path, "%s/leakwatch.%d", mnt, (int)pid);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_lt((uint64_t)st.st_blocks * 512, 256u * 1024, "%lu bytes", (unsigned long)st.st_blocks * 512);
	cmd_result_free(&r);
}

/* fake_segment - a segment file of another process image: state, age,
 * pid, reserved size.  Returns 0. */
static int fake_segment(const char *name, int pid, uint32_t state, uint64_t last_ns, uint64_t start_ticks,
			off_t bytes)
{
	char path[256];
	struct lw_header h;
	memset(&h, 0, sizeof h);
	h.magic = LW_MAGIC;
	h.version = LW_VERSION;
	h.compat_version = LW_COMPAT_VERSION;
	h.header_size = LW_HEADER_SIZE;
	h.pid = pid;
	h.state = state;
	h.start_monotonic_ns = last_ns - 1000;
	h.last_active_ns = last_ns;
	h.proc_start_ticks = start_ticks;
	snprintf(path, sizeof path, "%s/%s", mnt, name);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int ok = pwrite(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && fallocate(fd, 0, 0, bytes) == 0;
	close(fd);
	return ok ? 0 : -1;
}

static uint64_t proc_ticks(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	for (int field = 2; p && *++p && field < 22;)
		if (*p == ' ')
			field++;
	return p ? strtoull(p, NULL, 10) : 0;
}

static int exists(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", mnt, name);
	return access(path, F_OK) == 0;
}

/*
 * Over the budget: the segments of dead processes go, oldest first, until
 * the new one fits; a live process's segment, another user's and files that
 * are not segments stay.
 */
Test(shim_space, budget_reclaims_dead_oldest_first)
{
	mount_small("16m");
	int dead = lw_dead_pid();
	char name[64];
	/* ten dead images of 512 KiB, ages 1..10 (1 oldest) */
	for (int i = 1; i <= 10; i++) {
		snprintf(name, sizeof name, "leakwatch.%d.%d", dead, i);
		cr_assert_eq(fake_segment(name, dead, LW_STATE_EXITED, 1000000ull * (uint64_t)i, 0, 512 << 10), 0);
	}
	/* a live process (this test's own pid, with its start time), older than all */
	snprintf(name, sizeof name, "leakwatch.%d", (int)getpid());
	cr_assert_eq(fake_segment(name, getpid(), LW_STATE_RUNNING, 10, proc_ticks(getpid()), 512 << 10), 0);
	/* a dead image of another user, also older */
	cr_assert_eq(fake_segment("leakwatch.1.1", 1, LW_STATE_EXITED, 20, 0, 512 << 10), 0);
	char other[256];
	snprintf(other, sizeof other, "%s/leakwatch.1.1", mnt);
	cr_assert_eq(chown(other, 65534, 65534), 0);
	/* not a segment name */
	cr_assert_eq(fake_segment("leakwatch.notes", dead, LW_STATE_EXITED, 5, 0, 512 << 10), 0);

	/* 12 x 512 KiB + 512 KiB of notes on the filesystem; budget 4 MiB */
	const char *argv[] = { FIX("spacejob"), "fds", "8", NULL };
	struct cmd_result r;
	pid_t pid;
	run_traced(&r, argv,
		   (const char *[]){ "LEAKWATCH_HEAP=off", "LEAKWATCH_KEEP_EMPTY=1", "LEAKWATCH_BUDGET=4M", "LEAKWATCH_LOG=1", NULL },
		   &pid);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct lw_header h;
	cr_assert_eq(read_header(mnt, pid, &h), 0, "the new process is traced");
	cr_expect_eq(h.budget_bytes, 4u << 20);
	/* segments: 9 candidates x 512K + live 512K + other 512K + ours must fit
	 * 4 MiB: the oldest dead ones go until they do */
	uint64_t removed = h.counters[LW_CTR_RECLAIMED];
	cr_expect_geq(removed, 4, "removed %lu: %s", (unsigned long)removed, r.err);
	for (int i = 1; i <= 10; i++) {
		snprintf(name, sizeof name, "leakwatch.%d.%d", dead, i);
		cr_expect_eq(exists(name), (uint64_t)i > removed, "%s: oldest first (%lu removed)", name,
			     (unsigned long)removed);
	}
	snprintf(name, sizeof name, "leakwatch.%d", (int)getpid());
	cr_expect(exists(name), "a live process's segment is never reclaimed");
	cr_expect(exists("leakwatch.1.1"), "another user's file is never touched");
	cr_expect(exists("leakwatch.notes"), "a file that is not a segment is never touched");
	cmd_result_free(&r);
}

/* Over the budget with nothing to reclaim: the process is not traced, and
 * runs as it would without the shim. */
Test(shim_space, budget_full_of_live_segments_refuses)
{
	mount_small("16m");
	char name[64];
	snprintf(name, sizeof name, "leakwatch.%d", (int)getpid());
	cr_assert_eq(fake_segment(name, getpid(), LW_STATE_RUNNING, 10, proc_ticks(getpid()), 2 << 20), 0);
	const char *argv[] = { FIX("spacejob"), "fds", "8", NULL };
	struct cmd_result native, r;
	run_cmd(&native, (char *const *)argv, NULL, 60);
	pid_t pid;
	run_traced(&r, argv, (const char *[]){ "LEAKWATCH_BUDGET=1M", "LEAKWATCH_KEEP_EMPTY=1", NULL }, &pid);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect_str_eq(r.out, native.out);
	struct lw_header h;
	cr_expect_neq(read_header(mnt, pid, &h), 0, "no segment over the budget");
	cr_expect(exists(name), "the live one stays");
	cmd_result_free(&native);
	cmd_result_free(&r);
}

/* Children of a fork-per-connection server that clean up leave no segment;
 * one that leaks keeps its own; the parent (a socket still open) keeps its. */
Test(shim_space, clean_children_remove_their_segments)
{
	mount_small("64m");
	const char *argv[] = { FIX("spacejob"), "children", "40", NULL };
	struct cmd_result r;
	pid_t pid;
	run_traced(&r, argv, (const char *[]){ "LEAKWATCH_HEAP=full", NULL }, &pid);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "children 40\n");
	cr_expect_eq(count_segments(mnt), 1, "only the parent's segment is left");
	struct lw_header h;
	cr_expect_eq(read_header(mnt, pid, &h), 0, "the parent's");
	cmd_result_free(&r);

	const char *leak[] = { FIX("spacejob"), "children", "10", "leak", NULL };
	run_traced(&r, leak, (const char *[]){ "LEAKWATCH_HEAP=full", NULL }, &pid);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_expect_eq(count_segments(mnt), 3, "the first parent, this parent and the leaking child");
	cmd_result_free(&r);
}

/* count_done - "done" lines in the job's output (heap_stress also says "ready"). */
static int count_done(const char *out)
{
	int n = 0;
	for (const char *p = out; (p = strstr(p, "done\n")) != NULL; p += 5)
		n++;
	return n;
}

/* job - `leakwatch run` (full heap) of N concurrent heap_stress processes,
 * each leaking `leak` blocks, with its segments on the mounted tmpfs.  The
 * command prints one "done" line per process that finished with status 0. */
static void job(struct cmd_result *r, int n, int leak)
{
	char script[512], dirv[128];
	snprintf(script, sizeof script,
		 "i=0; while [ $i -lt %d ]; do (%s 1 20000 %d && echo done) & i=$((i+1)); done; wait", n,
		 FIX("heap_stress"), leak);
	snprintf(dirv, sizeof dirv, "LEAKWATCH_DIR=%s", mnt);
	char *env[] = { dirv, NULL };
	lw_run_timed(r, env, (const char *[]){ "--heap", "full", NULL }, (const char *[]){ "sh", "-c", script, NULL },
		     110);
}

/* Docker's default /dev/shm: a 20-process job traced in full fits, every
 * process traced, every block reported, nothing incomplete. */
Test(shim_space, container_shm_holds_a_20_process_job, .timeout = 200)
{
	mount_small("64m");
	struct cmd_result r;
	job(&r, 20, 2000);
	cr_assert_eq(count_done(r.out), 20, "every process ran to the end: %s", r.out);
	cr_expect_eq(r.status, 0, "run: status %d: %s", r.status, r.err);
	cr_expect_null(strstr(r.err, "not traced"), "%s", r.err);
	cr_expect_null(strstr(r.err, "incomplete"), "%s", r.err);
	int exact = 0;
	for (const char *p = r.err; (p = strstr(p, "HEAP     2000 blocks")) != NULL; p++)
		exact++;
	cr_expect_eq(exact, 20, "each process's 2000 leaked blocks reported exactly: %s", r.err);
	cmd_result_free(&r);
}

/* A tmpfs that runs out under the same job, 100 times the leaks: nothing
 * dies, every process finishes with its own output, and run says the
 * record is incomplete. */
Test(shim_space, full_shm_kills_nothing_and_says_so, .timeout = 200)
{
	mount_small("48m");
	struct cmd_result r;
	job(&r, 20, 200000);
	cr_assert_eq(count_done(r.out), 20, "every process ran to the end: %s", r.out);
	cr_expect_eq(r.status, 0, "run: status %d: %s", r.status, r.err);
	cr_expect(strstr(r.err, "incomplete"), "run says the record is incomplete: %s", r.err);
	cmd_result_free(&r);
}

/* Growth runs inside the program's calls: on a thread with a 16 KiB stack,
 * the heap table's replacements and migration and the handle table's new
 * chunks fit in what that thread has left (the directory scan of the budget
 * runs on the side stack). */
Test(shim_space, growth_on_a_16k_thread_stack)
{
	mount_small("64m");
	const char *argv[] = { FIX("spacejob"), "tiny", NULL };
	for (int full = 0; full < 2; full++) {
		struct cmd_result r;
		pid_t pid;
		run_traced(&r, argv,
			   (const char *[]){ full ? "LEAKWATCH_HEAP=full" : "LEAKWATCH_HEAP=sampled",
					     "LEAKWATCH_KEEP_EMPTY=1", NULL },
			   &pid);
		cr_assert_eq(r.status, 0, "heap %s: status %d: %s", full ? "full" : "sampled", r.status, r.err);
		cr_assert_str_eq(r.out, "tiny ok\n");
		struct lw_header h;
		cr_assert_eq(read_header(mnt, pid, &h), 0);
		cr_expect_eq(h.counters[LW_CTR_SOCK_OPENED], 300);
		cr_expect_geq(h.handles.capacity, 300, "the handle table grew on the small thread");
		if (full)
			cr_expect_gt(h.counters[LW_CTR_HEAP_GROWS], 0, "the heap table grew on the small thread");
		cmd_result_free(&r);
	}
}
