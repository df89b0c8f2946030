/* SPDX-License-Identifier: MIT */
/*
 * The directory budget: how much space all segments in $LEAKWATCH_DIR may
 * hold together (LEAKWATCH_BUDGET; default a quarter of the filesystem).
 *
 * Every reservation asks first.  The cheap answer comes from statfs(): when
 * everything on the filesystem together stays within the budget, so do the
 * segments.  Otherwise the directory is scanned (on the side stack: it
 * needs a few KiB a host thread may not have): the segments' allocated
 * blocks are summed, and if the new bytes do not fit, segments of this
 * user's dead processes are removed, oldest first, until they do.  A live
 * process's segment, another user's file and our own are never touched.
 * The scan's sum is reused for a moment, so that a burst of growths (or of
 * forked children) does not rescan.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "shim.h"

static uint64_t g_budget;               /* bytes; 0: no budget */
static uint64_t g_scan_ns, g_scan_sum;  /* the last scan, and bytes admitted since */
static uint64_t g_pending;              /* reclaimed before the header existed */

static uint64_t fs_unit(const struct statfs *f)
{
	return f->f_frsize ? (uint64_t)f->f_frsize : (uint64_t)f->f_bsize;
}

uint64_t budget_init(void)
{
	struct statfs f;
	g_budget = g_cfg.budget;
	if (g_cfg.budget_pct) {
		g_budget = 0;
		if (prim_statfs(g_cfg.dir, &f) == 0)
			g_budget = (uint64_t)f.f_blocks * fs_unit(&f) / 100 * g_cfg.budget_pct;
	}
	g_scan_ns = 0;
	return g_budget;
}

uint64_t budget_inherit(uint64_t bytes)
{
	/* a fork child: the same directory, already measured */
	g_budget = bytes;
	g_scan_ns = 0;
	return g_budget;
}

/* A segment name: "leakwatch.<pid>" or "leakwatch.<pid>.<n>". */
static int segment_name(const char *name)
{
	size_t n = sizeof LW_SEGMENT_PREFIX - 1;
	if (strncmp(name, LW_SEGMENT_PREFIX, n) != 0)
		return 0;
	const char *p = name + n;
	int digits = 0, dots = 0;
	for (; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && digits && dots == 0)
			dots++, digits = 0;
		else
			return 0;
	}
	return digits > 0;
}

/* The part of a header the scan needs: everything up to last_active_ns. */
#define PEEK_BYTES (offsetof(struct lw_header, last_active_ns) + sizeof(uint64_t))

/* dead_image - the segment belongs to a process image that is gone; *age
 * gets its last sign of life (CLOCK_MONOTONIC, comparable across processes). */
static int dead_image(const char *path, uint64_t *age)
{
	static struct lw_header peek; /* grow lock held */
	const struct lw_header *h = &peek;
	int fd = prim_open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	ssize_t n = prim_pread(fd, &peek, PEEK_BYTES, 0);
	prim_close(fd);
	if (n != (ssize_t)PEEK_BYTES || h->magic != LW_MAGIC)
		return 0; /* not a segment we understand: leave it */
	uint64_t a = h->start_monotonic_ns;
	if (h->end_monotonic_ns > a)
		a = h->end_monotonic_ns;
	uint64_t la = atomic_load_explicit(&h->last_active_ns, memory_order_relaxed);
	if (la > a)
		a = la;
	*age = a;
	uint32_t state = atomic_load_explicit(&h->state, memory_order_relaxed);
	if (state == LW_STATE_EXITED || state == LW_STATE_EXECED)
		return 1;
	/* running as far as the header knows: dead if its pid is gone or reused */
	if (h->pid <= 0)
		return 0;
	uint64_t t = segment_proc_start_ticks(h->pid);
	if (t == 0)
		return 1; /* no such process */
	/* a start time the shim could not read: alive while the pid is */
	return h->proc_start_ticks != 0 && !lw_start_ticks_match(h, t);
}

#define CANDIDATES 32

struct scan {
	uint64_t need;
	uint64_t sum;
	unsigned n;
	struct cand {
		uint64_t age, bytes;
		char name[40];
	} c[CANDIDATES];
};

/* path_of - "<dir>/<name>"; out holds LW_PATH_MAX + NAME_MAX + 2 bytes. */
static void path_of(char *out, const char *name)
{
	size_t d = strlen(g_cfg.dir), n = strlen(name);
	if (n > 255)
		n = 255;
	memcpy(out, g_cfg.dir, d);
	out[d] = '/';
	memcpy(out + d + 1, name, n);
	out[d + 1 + n] = '\0';
}

/* consider - keep the CANDIDATES oldest dead segments of this user. */
static void consider(struct scan *s, const char *name, uint64_t bytes, uint64_t age)
{
	unsigned i = s->n;
	if (i == CANDIDATES) {
		unsigned young = 0;
		for (unsigned j = 1; j < CANDIDATES; j++)
			if (s->c[j].age > s->c[young].age)
				young = j;
		if (s->c[young].age <= age)
			return;
		i = young;
	} else {
		s->n++;
	}
	s->c[i].age = age;
	s->c[i].bytes = bytes;
	size_t n = strlen(name);
	if (n >= sizeof s->c[i].name)
		n = sizeof s->c[i].name - 1;
	memcpy(s->c[i].name, name, n);
	s->c[i].name[n] = '\0';
}

static uint32_t scan_body(void *arg)
{
	struct scan *s = arg;
	char buf[2048] __attribute__((aligned(8)));
	char path[LW_PATH_MAX + 258];
	const char *own = strrchr(g_seg.path, '/');
	uid_t me = prim_geteuid();

	int dfd = prim_open(g_cfg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return 0;
	long n;
	while ((n = prim_getdents64(dfd, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (!segment_name(d->d_name))
				continue;
			struct stat st;
			path_of(path, d->d_name);
			if (prim_lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			uint64_t bytes = (uint64_t)st.st_blocks * 512u;
			s->sum += bytes;
			uint64_t age;
			if (st.st_uid == me && !(own && g_seg.hdr && strcmp(own + 1, d->d_name) == 0) &&
			    dead_image(path, &age))
				consider(s, d->d_name, bytes, age);
		}
	}
	prim_close(dfd);
	/* oldest first, until the new bytes fit */
	while (s->sum + s->need > g_budget && s->n > 0) {
		unsigned old = 0;
		for (unsigned j = 1; j < s->n; j++)
			if (s->c[j].age < s->c[old].age)
				old = j;
		path_of(path, s->c[old].name);
		if (prim_unlink(path) == 0) {
			s->sum -= s->c[old].bytes < s->sum ? s->c[old].bytes : s->sum;
			if (g_seg.hdr)
				segment_counter_add(LW_CTR_RECLAIMED, 1);
			else
				g_pending++;
			shim_log("budget: removed %s (a dead process's segment)", path);
		}
		s->c[old] = s->c[--s->n];
	}
	return s->sum + s->need <= g_budget;
}

uint64_t budget_take_pending(void)
{
	uint64_t n = g_pending;
	g_pending = 0;
	return n;
}

int budget_admit(uint64_t bytes)
{
	struct statfs f;
	if (!g_budget)
		return 1;
	if (prim_statfs(g_cfg.dir, &f) == 0) {
		uint64_t used = ((uint64_t)f.f_blocks - (uint64_t)f.f_bfree) * fs_unit(&f);
		if (used + bytes <= g_budget)
			return 1;
	}
	uint64_t now = prim_now_ns();
	if (g_scan_ns && now - g_scan_ns < LW_LIM_BUDGET_RESCAN_NS && g_scan_sum + bytes <= g_budget) {
		g_scan_sum += bytes;
		return 1;
	}
	static struct scan s; /* callers hold the grow lock, or are alone */
	memset(&s, 0, sizeof s);
	s.need = bytes;
	int ok = (int)stack_side_call(scan_body, &s, 0);
	if (!ok) {
		g_scan_ns = 0;
		shim_log("budget: %lu more bytes would pass LEAKWATCH_BUDGET (%lu bytes; segments use %lu)",
			 (unsigned long)bytes, (unsigned long)g_budget, (unsigned long)s.sum);
		return 0;
	}
	g_scan_ns = now;
	g_scan_sum = s.sum + bytes;
	return 1;
}
