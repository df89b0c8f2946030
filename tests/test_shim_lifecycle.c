/*
 * The shim's lifecycle (preload/lifecycle.c), run in the test process as
 * the constructor would run it: start creates a RUNNING segment from the
 * environment, a fork child gets its own segment naming its parent (at its
 * first record of its own), and stop marks the image exited and drops a
 * segment that recorded nothing.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

static int resolved_hooks, resolved_heap;
static void resolve_hooks(void)
{
	resolved_hooks++;
}
static void resolve_heap(void)
{
	resolved_heap++;
}

static int read_header(const char *path, struct lw_header *h)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, h, sizeof *h, 0);
	close(fd);
	return n == (ssize_t)sizeof *h ? 0 : -1;
}

Test(shim_lifecycle, start_fork_stop, .timeout = 60)
{
	char dir[] = "/tmp/lw-lifecycle-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(setenv("LEAKWATCH_DIR", dir, 1), 0);
	cr_assert_eq(setenv("LEAKWATCH_HEAP", "off", 1), 0);
	cr_assert_eq(setenv("LEAKWATCH_MAX_FDS", "1024", 1), 0);
	const struct lifecycle_entry e = { resolve_hooks, resolve_heap, (const void *)&resolve_hooks };
	lifecycle_start(&e);
	cr_assert_eq(resolved_hooks, 1);
	cr_assert_eq(resolved_heap, 1, "the allocator is resolved once the segment exists");
	cr_assert(atomic_load(&g_ready));
	cr_assert_not_null(g_seg.hdr);
	/* layout 2: the handle table grows in chunks up to the configured limit */
	cr_assert_eq(g_seg.limit[LW_T_HANDLES], 1024, "configured from the environment");
	cr_assert_eq(atomic_load(&g_seg.hdr->state), LW_STATE_RUNNING);
	cr_assert_geq(atomic_load(&g_seg.hdr->modules.used), 1, "modules scanned at start");
	char path[sizeof g_seg.path];
	strcpy(path, g_seg.path);

	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* the atfork handler left this child pending: no segment until it
		 * records something of its own, which creates it */
		int ok = !g_seg.hdr && atomic_load(&g_fork.pending) == 1 && atomic_load(&g_ready);
		guard_set();
		ok = ok && lifecycle_fork_segment(NULL, 0);
		guard_clear();
		ok = ok && g_seg.hdr && g_seg.pid == getpid() && strcmp(g_seg.path, path) != 0 &&
		     g_seg.hdr->parent_segment_pid == (uint32_t)getppid() && atomic_load(&g_ready) &&
		     atomic_load(&g_fork.pending) == 0;
		_exit(ok ? 0 : 1);
	}
	int st;
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the fork child's segment (status %d)", st);
	char cpath[sizeof dir + 64];
	snprintf(cpath, sizeof cpath, "%s/" LW_SEGMENT_PREFIX "%d", dir, (int)child);
	struct lw_header h;
	cr_assert_eq(read_header(cpath, &h), 0, "no segment %s", cpath);
	cr_assert_eq(h.parent_segment_pid, (uint32_t)getpid());
	unlink(cpath);

	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	lifecycle_stop();
	cr_assert_neq(stat(path, &sb), 0, "an image that recorded nothing leaves no segment");
	cr_assert_eq(atomic_load(&g_seg.hdr->state), LW_STATE_EXITED);
	rmdir(dir);
}
