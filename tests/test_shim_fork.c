/*
 * Whose segment a child's calls land in (preload/lifecycle.c,
 * segment_active), with the forkown fixture run under the shim in its
 * default configuration (no LEAKWATCH_KEEP_EMPTY):
 *  - a fork child has no segment until its first record of its own, which
 *    creates it with the inherited records still open in it, and a child
 *    that never records leaves none;
 *  - a child that shares the parent's memory (vfork, clone with CLONE_VM),
 *    or copies it behind the atfork handlers (_Fork), changes nothing in the
 *    parent's records whatever it does with the parent's descriptor numbers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leakwatch/segment.h"
#include "lib/analyzer.h"
#include "lib/testlib.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name
#define SRC "tests/fixtures/forkown.c"

struct forkown {
	char dir[64];
	struct cmd_result r;
};

static void forkown_run(struct forkown *f, const char *mode, const char *heap)
{
	lw_tmpdir(f->dir, sizeof f->dir);
	char envdir[128], envpre[512], envheap[64];
	snprintf(envdir, sizeof envdir, "LEAKWATCH_DIR=%s", f->dir);
	snprintf(envpre, sizeof envpre, "LD_PRELOAD=%s", lw_shim());
	snprintf(envheap, sizeof envheap, "LEAKWATCH_HEAP=%s", heap);
	char *env[] = { envdir, envpre, envheap, NULL };
	char *argv[] = { FIX("forkown"), (char *)mode, NULL };
	run_cmd(&f->r, argv, env, 60);
	cr_assert_eq(f->r.status, 0, "forkown %s: status %d, stderr: %s", mode, f->r.status, f->r.err);
}

static void forkown_free(struct forkown *f)
{
	cmd_result_free(&f->r);
	cr_assert_eq(rm_rf(f->dir), 0);
}

/* the number after "name " at the start of a line of the fixture's output */
static int out_num(const struct forkown *f, const char *name, int nth)
{
	char key[32];
	snprintf(key, sizeof key, "%s ", name);
	for (const char *p = f->r.out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, strlen(key)) != 0)
			continue;
		const char *q = p + strlen(key);
		for (int i = 0; i < nth && q; i++)
			q = strchr(q, ' ') ? strchr(q, ' ') + 1 : NULL;
		cr_assert_not_null(q, "no field %d of '%s' in: %s", nth, name, f->r.out);
		return atoi(q);
	}
	cr_assert_fail("no '%s' line in: %s", name, f->r.out);
	return -1;
}

static void seg_path(const struct forkown *f, int pid, char *out, size_t len)
{
	snprintf(out, len, "%s/" LW_SEGMENT_PREFIX "%d", f->dir, pid);
}

static int seg_exists(const struct forkown *f, int pid)
{
	char p[128];
	struct stat st;
	seg_path(f, pid, p, sizeof p);
	return stat(p, &st) == 0;
}

static int segments_in(const struct forkown *f)
{
	char pat[128];
	snprintf(pat, sizeof pat, "ls %s | wc -l", f->dir);
	FILE *p = popen(pat, "r");
	int n = -1;
	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static struct lw_header seg_header(const struct forkown *f, int pid)
{
	char p[128];
	struct lw_header h;
	seg_path(f, pid, p, sizeof p);
	int fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0, "no segment %s", p);
	cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	close(fd);
	return h;
}

/* `leakwatch report SEG --all --kind all --format json`, parsed */
static struct tj *seg_report(const struct forkown *f, int pid)
{
	char p[128];
	seg_path(f, pid, p, sizeof p);
	char *argv[] = { (char *)lw_bin(), "report", p, "--all", "--kind", "all", "--format", "json", NULL };
	struct cmd_result r;
	run_cmd(&r, argv, NULL, 60);
	cr_assert_eq(r.status, 0, "report %s: %s", p, r.err);
	struct tj *j = tj_parse(r.out);
	cr_assert_not_null(j, "%s", r.out);
	cmd_result_free(&r);
	return j;
}

/* the socket group whose fds include fd, or NULL */
static struct tj *group_of_fd(const struct tj *rep, int fd)
{
	struct tj *groups = tj_get(rep, "groups");
	for (size_t i = 0; i < tj_len(groups); i++) {
		struct tj *fds = tj_get(tj_at(groups, i), "fds");
		for (size_t k = 0; k < tj_len(fds); k++)
			if ((int)tj_at(fds, k)->num == fd)
				return tj_at(groups, i);
	}
	return NULL;
}

/* the group's first frame with a source line is func at the marker */
static void assert_opened_at(const struct tj *g, const char *func, const char *marker)
{
	struct tj *st = tj_get(g, "stack");
	for (size_t k = 0; k < tj_len(st); k++) {
		struct tj *fr = tj_at(st, k);
		if (!tj_str(fr, "file"))
			continue;
		cr_assert_str_eq(tj_str(fr, "function"), func);
		cr_assert_eq((int)tj_num(fr, "line", -1), marker_line(SRC, marker));
		return;
	}
	cr_assert_fail("no frame with a source line");
}

static double counter(const struct tj *rep, const char *name)
{
	return tj_num(tj_get(rep, "counters"), name, -1);
}

/* ---- fork children: a segment at the first record of their own ------------------- */

Test(shim_fork, child_that_records_nothing_of_its_own_leaves_no_segment, .timeout = 60)
{
	struct forkown f;
	forkown_run(&f, "pending", "off");
	cr_assert(seg_exists(&f, out_num(&f, "parent", 0)), "the parent keeps its segment");
	cr_assert_eq(out_num(&f, "quiet-segment-while-alive", 0), 0,
		     "sent on and closed inherited sockets only: no segment, even while it lived");
	cr_assert_not(seg_exists(&f, out_num(&f, "quiet", 0)));
	cr_assert_not(seg_exists(&f, out_num(&f, "middle", 0)), "only forked: no segment");
	cr_assert_not(seg_exists(&f, out_num(&f, "heap", 0)), "heap tracking off: its block is nothing");
	cr_assert_eq(segments_in(&f), 3, "parent, own, grand");
	/* what the children did to inherited sockets is not the parent's doing */
	struct tj *rep = seg_report(&f, out_num(&f, "parent", 0));
	cr_assert_eq(counter(rep, "sock_opened"), 3);
	cr_assert_eq(counter(rep, "sock_closed"), 0);
	tj_free(rep);
	forkown_free(&f);
}

Test(shim_fork, first_own_socket_creates_segment_with_inherited_records, .timeout = 60)
{
	struct forkown f;
	forkown_run(&f, "pending", "off");
	int a0 = out_num(&f, "fds", 0), a1 = out_num(&f, "fds", 1), b = out_num(&f, "fds", 2);
	int parent = out_num(&f, "parent", 0), own = out_num(&f, "own", 0);
	struct lw_header h = seg_header(&f, own);
	cr_assert_eq(h.parent_segment_pid, (uint32_t)parent);
	struct tj *rep = seg_report(&f, own);
	struct tj *ga = group_of_fd(rep, a0);
	cr_assert_not_null(ga, "the inherited socketpair is in the child's segment");
	cr_assert_str_eq(tj_str(ga, "origin"), "fork");
	cr_assert_eq(group_of_fd(rep, a1), ga);
	/* B was closed while the child had no segment; C took its number */
	struct tj *gc = group_of_fd(rep, b);
	cr_assert_not_null(gc, "the child's own socket");
	cr_assert_str_eq(tj_str(gc, "origin"), "socket", "inherited B, closed before, is not copied");
	cr_assert_eq(tj_num(gc, "count", 0), 1);
	assert_opened_at(gc, "own_socket", "forkown.own");
	cr_assert_eq(counter(rep, "sock_opened"), 3);
	cr_assert_eq(atomic_load(&h.counters[LW_CTR_SOCK_INHERITED]), 2);
	tj_free(rep);
	/* the child's own record names the child's thread, not the parent's
	 * (the shim caches thread ids) */
	char p[128], err[256];
	struct lw_snapshot snap;
	seg_path(&f, own, p, sizeof p);
	cr_assert_eq(lw_snapshot_open(&snap, p, err, sizeof err), 0, "%s", err);
	const struct lw_snap_handle *sh = lw_snapshot_handle(&snap, b);
	cr_assert_not_null(sh);
	cr_assert_eq(sh->h.tid, own);
	lw_snapshot_free(&snap);
	forkown_free(&f);
}

Test(shim_fork, grandchild_of_a_child_without_segment_inherits_the_snapshot, .timeout = 60)
{
	struct forkown f;
	forkown_run(&f, "pending", "off");
	int a0 = out_num(&f, "fds", 0), b = out_num(&f, "fds", 2);
	int parent = out_num(&f, "parent", 0), grand = out_num(&f, "grand", 0);
	cr_assert_eq(seg_header(&f, grand).parent_segment_pid, (uint32_t)parent,
		     "the nearest ancestor with a segment");
	struct tj *rep = seg_report(&f, grand);
	cr_assert_not_null(group_of_fd(rep, a0));
	cr_assert_str_eq(tj_str(group_of_fd(rep, a0), "origin"), "fork");
	cr_assert_not_null(group_of_fd(rep, b), "B is still open in this line of children");
	cr_assert_str_eq(tj_str(group_of_fd(rep, b), "origin"), "fork");
	cr_assert_eq(counter(rep, "sock_opened"), 4);
	struct tj *groups = tj_get(rep, "groups");
	int own = 0;
	for (size_t i = 0; i < tj_len(groups); i++)
		if (!strcmp(tj_str(tj_at(groups, i), "origin"), "socket")) {
			own++;
			assert_opened_at(tj_at(groups, i), "grand_socket", "forkown.grand");
		}
	cr_assert_eq(own, 1);
	tj_free(rep);
	forkown_free(&f);
}

Test(shim_fork, first_recorded_block_creates_segment, .timeout = 60)
{
	struct forkown f;
	forkown_run(&f, "pending", "full");
	int heap = out_num(&f, "heap", 0);
	cr_assert(seg_exists(&f, heap), "its block is its own record");
	cr_assert_not(seg_exists(&f, out_num(&f, "quiet", 0)));
	struct tj *rep = seg_report(&f, heap);
	struct tj *hg = tj_get(tj_get(rep, "heap"), "groups");
	int found = 0;
	for (size_t i = 0; i < tj_len(hg); i++) {
		struct tj *st = tj_get(tj_at(hg, i), "stack");
		for (size_t k = 0; k < tj_len(st); k++)
			if (tj_str(tj_at(st, k), "function") &&
			    !strcmp(tj_str(tj_at(st, k), "function"), "kept_block") &&
			    (int)tj_num(tj_at(st, k), "line", -1) == marker_line(SRC, "forkown.heap"))
				found++;
	}
	cr_assert_eq(found, 1, "the kept block, at its line");
	cr_assert_not_null(group_of_fd(rep, out_num(&f, "fds", 0)), "and the inherited sockets");
	tj_free(rep);
	forkown_free(&f);
}

/* ---- children that share our memory, or copy it behind the atfork handlers -------- */

/* the parent's records come out as the parent made them: S still open, U
 * recorded, nothing the child closed, opened, sent on or double-closed */
static void shared_case(const char *mode)
{
	struct forkown f;
	forkown_run(&f, mode, "sampled");
	int parent = out_num(&f, "parent", 0), s = out_num(&f, "fds", 0), u = out_num(&f, "fds", 1);
	cr_assert_eq(segments_in(&f), 1, "%s: the parent's segment only", mode);
	struct tj *rep = seg_report(&f, parent);
	cr_assert_str_eq(tj_str(rep, "state"), "exited");
	struct tj *gs = group_of_fd(rep, s);
	cr_assert_not_null(gs, "%s: the child's close(S) did not close the parent's record", mode);
	cr_assert_str_eq(tj_str(gs, "origin"), "socket");
	cr_assert_not_null(group_of_fd(rep, u), "%s: the parent records after the child", mode);
	struct tj *gp = group_of_fd(rep, out_num(&f, "fds", 2));
	cr_assert_not_null(gp);
	cr_assert_eq(tj_num(gp, "last_use_stack_id", -1), 0, "%s: the child's send is not the parent's last use",
		     mode);
	cr_assert_eq(counter(rep, "sock_opened"), 4, "%s: S, the pair, U; not the child's T", mode);
	cr_assert_eq(counter(rep, "sock_closed"), 0, "%s", mode);
	cr_assert_eq(counter(rep, "bad_closes"), 0, "%s: the child's close(61)", mode);
	cr_assert_eq(counter(rep, "events"), 4, "%s: nothing but the parent's opens", mode);
	tj_free(rep);
	forkown_free(&f);
}

Test(shim_fork, vfork_child_leaves_parent_records_alone, .timeout = 60)
{
	shared_case("vfork");
}

Test(shim_fork, clone_vm_vfork_child_leaves_parent_records_alone, .timeout = 60)
{
	shared_case("clone-vfork");
}

Test(shim_fork, clone_vm_child_leaves_parent_records_alone, .timeout = 60)
{
	shared_case("clone-vm");
}

Test(shim_fork, raw_fork_child_leaves_parent_records_alone, .timeout = 60)
{
	shared_case("rawfork");
}

/* the vfork hook's own error path: -1 and errno, and recording goes on */
Test(shim_fork, failed_vfork_returns_its_errno, .timeout = 60)
{
	struct forkown f;
	forkown_run(&f, "vfork-fail", "sampled");
	struct tj *rep = seg_report(&f, out_num(&f, "parent", 0));
	cr_assert_not_null(group_of_fd(rep, out_num(&f, "fds", 1)));
	tj_free(rep);
	forkown_free(&f);
}
