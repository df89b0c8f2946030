/* SPDX-License-Identifier: MIT */
/*
 * diff.c — baselines (diff.h): a side read from a JSON report or from a
 * segment reported now, reduced to per-stack totals keyed by symbolized
 * frames, and two sides compared.  The output is render_diff.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "diff.h"
#include "render.h"
#include "util.h"

/* The JSON format version this reader understands (the report's "leakwatch" member). */
#define DIFF_FORMAT_VERSION 1

static int diff_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int diff_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

const char *lw_diff_kind_name(enum lw_diff_kind k)
{
	switch (k) {
	case LW_DK_HEAP: return "heap";
	case LW_DK_SOCKET: return "sockets";
	case LW_DK_FD: return "fds";
	case LW_DK_N: break;
	}
	return "?";
}

const char *lw_diff_status_name(enum lw_diff_status s)
{
	switch (s) {
	case LW_DS_GREW: return "grew";
	case LW_DS_NEW: return "new";
	case LW_DS_SHRANK: return "shrank";
	case LW_DS_VANISHED: return "vanished";
	case LW_DS_SAME: return "unchanged";
	}
	return "?";
}

/* ---- one side: JSON report -> stacks ---- */

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

/* "0x1f" as written by lw_json_hex; 0 for anything else. */
static uint64_t hex_member(const struct lw_jv *o, const char *key)
{
	const char *s = lw_jv_str(o, key);
	if (!s || strncmp(s, "0x", 2) != 0)
		return 0;
	return strtoull(s + 2, NULL, 16);
}

/*
 * The key of one group: kind, then each frame, every string length-prefixed
 * so no two different stacks share a key whatever their names contain.
 */
static char *stack_key(enum lw_diff_kind kind, const char *fd_kind, const struct lw_frame *f, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	fprintf(m, "%c", "hsd"[kind]);
	if (fd_kind)
		fprintf(m, "%zu:%s", strlen(fd_kind), fd_kind);
	for (size_t i = 0; i < n; i++) {
		if (f[i].function) {
			fprintf(m, "F%zu:%s", strlen(f[i].function), f[i].function);
			if (f[i].file)
				fprintf(m, "f%zu:%s:%d", strlen(f[i].file), f[i].file, f[i].line);
			else if (f[i].module)
				fprintf(m, "m%zu:%s", strlen(base_name(f[i].module)), base_name(f[i].module));
		} else if (f[i].module) {
			fprintf(m, "M%zu:%s+%llx", strlen(base_name(f[i].module)), base_name(f[i].module),
				(unsigned long long)f[i].module_off);
		} else {
			fprintf(m, "A%llx", (unsigned long long)f[i].addr);
		}
	}
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Frames of a "stack" array into st (strings stay in the document). */
static int stack_frames(struct lw_diff_stack *st, const struct lw_jv *stack)
{
	size_t n = lw_jv_len(stack);
	st->frames = n ? calloc(n, sizeof *st->frames) : NULL;
	if (n && !st->frames)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct lw_jv *o = lw_jv_at(stack, i);
		struct lw_frame *f = &st->frames[i];
		double line = 0;
		f->addr = hex_member(o, "addr");
		f->function = lw_jv_str(o, "function");
		f->file = lw_jv_str(o, "file");
		f->line = lw_jv_num(o, "line", &line) == 0 && line > 0 && line < 1e9 ? (int)line : 0;
		f->module = lw_jv_str(o, "module");
		f->module_off = hex_member(o, "module_offset");
		f->inlined = lw_jv_bool(o, "inlined", 0);
		f->buildid_mismatch = lw_jv_bool(o, "build_id_mismatch", 0);
	}
	st->nframes = n;
	return 0;
}

struct stacks {
	struct lw_diff_stack *v;
	size_t n, cap;
};

/* One group of the report (heap, socket or descriptor) appended to *ss. */
static int group_add(struct stacks *ss, enum lw_diff_kind kind, const struct lw_jv *g, const char *what,
		     size_t idx, char *err, size_t errlen)
{
	double count, bytes = 0;
	const struct lw_jv *stack = lw_jv_get(g, "stack");
	if (!g || g->type != LW_JV_OBJ)
		return diff_fail(err, errlen, "not a leakwatch report: %s %zu is not an object", what, idx);
	if (lw_jv_num(g, "count", &count) < 0 || count < 0)
		return diff_fail(err, errlen, "not a leakwatch report: %s %zu has no count", what, idx);
	if (kind == LW_DK_HEAP && (lw_jv_num(g, "bytes", &bytes) < 0 || bytes < 0))
		return diff_fail(err, errlen, "not a leakwatch report: %s %zu has no bytes", what, idx);
	if (!stack || stack->type != LW_JV_ARR)
		return diff_fail(err, errlen, "not a leakwatch report: %s %zu has no stack", what, idx);
	for (size_t i = 0; i < stack->n; i++)
		if (stack->items[i].type != LW_JV_OBJ)
			return diff_fail(err, errlen, "not a leakwatch report: %s %zu: frame %zu is not an object",
					 what, idx, i);
	const char *fd_kind = NULL;
	if (kind == LW_DK_FD && !(fd_kind = lw_jv_str(g, "kind")))
		return diff_fail(err, errlen, "not a leakwatch report: %s %zu has no kind", what, idx);
	if (ss->n == ss->cap) {
		size_t cap = ss->cap ? ss->cap * 2 : 16;
		struct lw_diff_stack *v = realloc(ss->v, cap * sizeof *v);
		if (!v)
			return diff_fail(err, errlen, "out of memory");
		ss->v = v;
		ss->cap = cap;
	}
	struct lw_diff_stack *st = &ss->v[ss->n];
	memset(st, 0, sizeof *st);
	st->kind = kind;
	st->fd_kind = fd_kind;
	st->count = count;
	st->bytes = bytes;
	if (stack_frames(st, stack) < 0 || !(st->key = stack_key(kind, fd_kind, st->frames, st->nframes))) {
		free(st->frames);
		return diff_fail(err, errlen, "out of memory");
	}
	ss->n++;
	return 0;
}

/* Every group of array `arr` (absent: none), each of this kind. */
static int groups_add(struct stacks *ss, enum lw_diff_kind kind, const struct lw_jv *arr, const char *what,
		      char *err, size_t errlen)
{
	if (!arr)
		return 0;
	if (arr->type != LW_JV_ARR)
		return diff_fail(err, errlen, "not a leakwatch report: %ss is not an array", what);
	for (size_t i = 0; i < arr->n; i++)
		if (group_add(ss, kind, &arr->items[i], what, i, err, errlen) < 0)
			return -1;
	return 0;
}

static int stack_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lw_diff_stack *)a)->key, ((const struct lw_diff_stack *)b)->key);
}

static void stack_release(struct lw_diff_stack *st)
{
	free(st->key);
	free(st->frames);
}

/* Sort by key and sum the groups that share one. */
static void stacks_merge(struct stacks *ss)
{
	if (ss->n < 2)
		return;
	qsort(ss->v, ss->n, sizeof *ss->v, stack_cmp);
	size_t w = 0;
	for (size_t i = 1; i < ss->n; i++) {
		if (!strcmp(ss->v[w].key, ss->v[i].key)) {
			ss->v[w].count += ss->v[i].count;
			ss->v[w].bytes += ss->v[i].bytes;
			stack_release(&ss->v[i]);
		} else {
			ss->v[++w] = ss->v[i];
		}
	}
	ss->n = w + 1;
}

/* The report inside the document: itself, or the one process of a run document. */
static const struct lw_jv *report_of(const struct lw_jv *doc, char *err, size_t errlen)
{
	double version;
	if (doc->type != LW_JV_OBJ) {
		diff_fail(err, errlen, "JSON, but not a leakwatch report (not an object)");
		return NULL;
	}
	if (lw_jv_num(doc, "leakwatch", &version) < 0) {
		diff_fail(err, errlen, "JSON, but not a leakwatch report (no \"leakwatch\" member)");
		return NULL;
	}
	if (version > DIFF_FORMAT_VERSION) {
		diff_fail(err, errlen, "report format version %g (this leakwatch reads up to %d)", version,
			  DIFF_FORMAT_VERSION);
		return NULL;
	}
	const struct lw_jv *procs = lw_jv_get(doc, "processes");
	if (procs && !lw_jv_get(doc, "pid")) {
		if (lw_jv_len(procs) != 1 || procs->type != LW_JV_ARR) {
			diff_fail(err, errlen, "a run report of %zu processes: give one (jq '.processes[N]')",
				  lw_jv_len(procs));
			return NULL;
		}
		return report_of(&procs->items[0], err, errlen);
	}
	return doc;
}

int lw_diff_side_parse(struct lw_diff_side *s, const char *source, const char *text, size_t len, char *err,
		       size_t errlen)
{
	char jerr[LW_ERR_MAX];
	memset(s, 0, sizeof *s);
	snprintf(s->source, sizeof s->source, "%s", source);
	s->uptime_s = -1;
	if (lw_jv_parse(text, len, &s->doc, jerr, sizeof jerr) < 0)
		return diff_fail(err, errlen, "not valid JSON: %s", jerr);
	const struct lw_jv *r = report_of(&s->doc, err, errlen);
	if (!r)
		goto fail;
	double pid;
	if (lw_jv_num(r, "pid", &pid) < 0) {
		diff_fail(err, errlen, "JSON, but not a leakwatch report (no \"pid\" member)");
		goto fail;
	}
	s->pid = pid > 0 && pid < 1e9 ? (int)pid : 0;
	s->command = lw_jv_str(r, "command");
	s->state = lw_jv_str(r, "state");
	if (lw_jv_num(r, "uptime_s", &s->uptime_s) < 0)
		s->uptime_s = -1;

	const struct lw_jv *heap = lw_jv_get(r, "heap");
	const char *mode = lw_jv_str(heap, "mode");
	s->covers[LW_DK_HEAP] = heap && heap->type == LW_JV_OBJ && !(mode && !strcmp(mode, "off"));
	s->covers[LW_DK_SOCKET] = lw_jv_get(r, "groups") != NULL;
	s->covers[LW_DK_FD] = lw_jv_get(r, "descriptors") != NULL;
	s->estimated = lw_jv_bool(heap, "estimated", 0);

	struct stacks ss = { 0 };
	if ((s->covers[LW_DK_HEAP] && groups_add(&ss, LW_DK_HEAP, lw_jv_get(heap, "groups"), "heap group", err,
						  errlen) < 0) ||
	    groups_add(&ss, LW_DK_SOCKET, lw_jv_get(r, "groups"), "socket group", err, errlen) < 0 ||
	    groups_add(&ss, LW_DK_FD, lw_jv_get(r, "descriptors"), "descriptor group", err, errlen) < 0) {
		s->stacks = ss.v;
		s->nstacks = ss.n;
		goto fail;
	}
	stacks_merge(&ss);
	s->stacks = ss.v;
	s->nstacks = ss.n;
	return 0;
fail:
	lw_diff_side_free(s);
	return -1;
}

void lw_diff_side_free(struct lw_diff_side *s)
{
	for (size_t i = 0; i < s->nstacks; i++)
		stack_release(&s->stacks[i]);
	free(s->stacks);
	s->stacks = NULL;
	s->nstacks = 0;
	lw_jv_free(&s->doc);
}

/* The report as JSON text in memory (malloc'd *text). */
static int report_json(struct lw_report *r, char **text, size_t *len, char *err, size_t errlen)
{
	*text = NULL;
	*len = 0;
	FILE *m = open_memstream(text, len);
	if (!m)
		return diff_fail(err, errlen, "out of memory");
	int bad = lw_render_json(m, r) < 0;
	if (fclose(m) != 0 || bad) {
		free(*text);
		*text = NULL;
		return diff_fail(err, errlen, "out of memory");
	}
	return 0;
}

int lw_diff_side_from_report(struct lw_diff_side *s, const char *source, struct lw_report *r, char *err,
			     size_t errlen)
{
	char *text;
	size_t len;
	memset(s, 0, sizeof *s);
	if (report_json(r, &text, &len, err, errlen) < 0)
		return -1;
	int rc = lw_diff_side_parse(s, source, text, len, err, errlen);
	free(text);
	if (rc == 0) {
		s->from_segment = 1;
		s->taken = (int64_t)time(NULL);
	}
	return rc;
}

/* A whole file into memory (malloc'd, NUL-terminated). */
static int file_read(int fd, char **text, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -1;
	for (;;) {
		if (n + 1 == cap) {
			if (cap > SIZE_MAX / 2) {
				free(buf);
				errno = ENOMEM;
				return -1;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + n, cap - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return -1;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

/*
 * A regular file starting with '{' (after whitespace): 1 with its text read;
 * 0 when it is something else (a PID, a segment); -1 with err set when it
 * cannot be read or holds only whitespace.
 */
static int json_file(const char *arg, char **text, size_t *len, int64_t *mtime, char *err, size_t errlen)
{
	int fd = open(arg, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		/* all digits: a PID, unless a file of that name exists */
		int pid_like = arg[0] && strspn(arg, "0123456789") == strlen(arg);
		if (errno == ENOENT && !pid_like)
			return diff_fail(err, errlen, "no such file");
		return 0;   /* a PID, or what the segment reader will name */
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;   /* the segment reader names what it is */
	}
	char head[512];
	ssize_t n = pread(fd, head, sizeof head, 0);
	size_t i = 0;
	while (n > 0 && i < (size_t)n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\t' || head[i] == '\r'))
		i++;
	if (n >= 0 && i == (size_t)n && (size_t)n < sizeof head) {
		close(fd);
		return diff_fail(err, errlen, n == 0 ? "empty file" : "only whitespace");
	}
	if (n < 0 || i == (size_t)n || head[i] != '{') {
		int e = errno;
		close(fd);
		if (n < 0)
			return diff_fail(err, errlen, "cannot read: %s", strerror(e));
		return 0;
	}
	int rc = file_read(fd, text, len);
	int e = errno;
	close(fd);
	if (rc < 0)
		return diff_fail(err, errlen, "cannot read: %s", strerror(e));
	*mtime = (int64_t)st.st_mtim.tv_sec;
	return 1;
}

/*
 * Whether process pid maps the file (dev, ino): 1 it does (its own live
 * segment), 0 it does not (a copy), -1 unknown (maps unreadable).
 */
static int segment_mapped_by(int pid, uint64_t dev, uint64_t ino)
{
	char path[64], line[PATH_MAX + 128];
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned maj, min;
		unsigned long long inode;
		if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &inode) == 3 && inode == ino &&
		    makedev(maj, min) == (dev_t)dev)
			found = 1;
	}
	fclose(f);
	return found;
}

int lw_diff_side_load(struct lw_diff_side *s, const char *arg, const struct lw_report_opts *ro, char *err,
		      size_t errlen)
{
	char *text = NULL, path[PATH_MAX], serr[LW_ERR_MAX];
	size_t len = 0;
	int64_t mtime = 0;
	memset(s, 0, sizeof *s);
	int j = json_file(arg, &text, &len, &mtime, err, errlen);
	if (j < 0)
		return -1;
	if (j == 1) {
		int rc = lw_diff_side_parse(s, arg, text, len, err, errlen);
		free(text);
		if (rc == 0)
			s->taken = mtime;
		return rc;
	}
	if (lw_segment_resolve(arg, path, sizeof path, serr, sizeof serr) < 0)
		return diff_fail(err, errlen, "%s", serr);
	struct lw_report_opts o = { .kind = LW_KIND_ALL };
	if (ro)
		o = *ro;
	o.format = LW_FMT_JSON;
	o.interval_ns = 0;
	struct lw_report r;
	if (lw_report_build(&r, path, &o, serr, sizeof serr) < 0)
		return diff_fail(err, errlen, "neither a JSON report nor a usable segment: %s", serr);
	int copy = 0;
	if ((r.live == LW_LIVE_ALIVE || r.live == LW_LIVE_DISABLED) &&
	    segment_mapped_by(r.snap.hdr.pid, r.snap.file_dev, r.snap.file_ino) == 0) {
		/* A copy of a running process's segment (cp /dev/shm/leakwatch.PID old.seg):
		 * what it holds is the past; joined with today's /proc/PID/fd its sockets
		 * and descriptors would be judged by descriptors the process has now.
		 * Read it as the record of an image that ended when it was copied. */
		copy = 1;
		lw_join_free(&r.join);
		lw_fdusage_free(&r.fd_usage);
		memset(&r.fd_usage, 0, sizeof r.fd_usage);
		r.live = LW_LIVE_DEAD;
		r.now_ns = lw_snapshot_now(&r.snap, r.live);
		if (lw_join_proc(&r.join, &r.snap, 0) < 0 || lw_report_classify(&r) < 0) {
			lw_report_free(&r);
			return diff_fail(err, errlen, "out of memory");
		}
	}
	int rc = lw_diff_side_from_report(s, arg, &r, err, errlen);
	lw_report_free(&r);
	if (rc == 0 && copy)
		s->state = "copy";
	return rc;
}

/* ---- two sides ---- */

static enum lw_diff_kind key_kind(const struct lw_diff_stack *st)
{
	return st->kind;
}

static int entry_group(enum lw_diff_status s)
{
	return s == LW_DS_GREW || s == LW_DS_NEW ? 0 : s == LW_DS_SHRANK ? 1 : 2;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct lw_diff_entry *x = a, *y = b;
	int gx = entry_group(x->status), gy = entry_group(y->status);
	if (gx != gy)
		return gx - gy;
	/* growth first by bytes (0 outside the heap), then count; shrink most first */
	double bx = gx == 0 ? x->dbytes : -x->dbytes, by = gy == 0 ? y->dbytes : -y->dbytes;
	if (bx != by)
		return bx > by ? -1 : 1;
	double cx = gx == 0 ? x->dcount : -x->dcount, cy = gy == 0 ? y->dcount : -y->dcount;
	if (cx != cy)
		return cx > cy ? -1 : 1;
	const struct lw_diff_stack *sx = x->new ? x->new : x->old, *sy = y->new ? y->new : y->old;
	return strcmp(sx->key, sy->key);
}

static enum lw_diff_status entry_status(const struct lw_diff_entry *e, double mg)
{
	if (!e->old)
		return e->new->count >= mg || (mg <= 1 && e->new->bytes > 0) ? LW_DS_NEW : LW_DS_SAME;
	if (!e->new)
		return LW_DS_VANISHED;
	if (e->dcount >= mg || (mg <= 1 && e->new->kind == LW_DK_HEAP && e->dcount >= 0 && e->dbytes > 0))
		return LW_DS_GREW;
	if (e->dcount < 0 || (e->dcount == 0 && e->dbytes < 0))
		return LW_DS_SHRANK;
	return LW_DS_SAME;
}

static int entry_add(struct lw_diff *d, const struct lw_diff_stack *o, const struct lw_diff_stack *n,
		     size_t *cap)
{
	enum lw_diff_kind k = key_kind(o ? o : n);
	struct lw_diff_kind_result *kr = &d->k[k];
	if (!kr->compared)
		return 0;
	struct lw_diff_entry e = { .old = o, .new = n };
	e.dcount = (n ? n->count : 0) - (o ? o->count : 0);
	e.dbytes = (n ? n->bytes : 0) - (o ? o->bytes : 0);
	e.status = entry_status(&e, d->min_growth);
	kr->nstatus[e.status]++;
	if (o) {
		kr->old_count += o->count;
		kr->old_bytes += o->bytes;
	}
	if (n) {
		kr->new_count += n->count;
		kr->new_bytes += n->bytes;
	}
	if (e.status == LW_DS_SAME)
		return 0;
	if (kr->nentries == cap[k]) {
		size_t nc = cap[k] ? cap[k] * 2 : 16;
		struct lw_diff_entry *v = realloc(kr->entries, nc * sizeof *v);
		if (!v)
			return -1;
		kr->entries = v;
		cap[k] = nc;
	}
	kr->entries[kr->nentries++] = e;
	return 0;
}

int lw_diff_compute(struct lw_diff *d, const struct lw_diff_side *old, const struct lw_diff_side *new,
		    enum lw_kind kind, double min_growth)
{
	memset(d, 0, sizeof *d);
	d->old = old;
	d->new = new;
	d->min_growth = min_growth > 0 ? min_growth : 1;
	d->k[LW_DK_HEAP].wanted = lw_kind_heap(kind);
	d->k[LW_DK_SOCKET].wanted = lw_kind_sockets(kind);
	d->k[LW_DK_FD].wanted = lw_kind_fds(kind);
	for (int k = 0; k < LW_DK_N; k++)
		d->k[k].compared = d->k[k].wanted && old->covers[k] && new->covers[k];
	size_t cap[LW_DK_N] = { 0 }, i = 0, j = 0;
	/* both sides are sorted by key: one merge pass pairs them */
	while (i < old->nstacks || j < new->nstacks) {
		int c = i == old->nstacks ? 1 : j == new->nstacks ? -1 : strcmp(old->stacks[i].key, new->stacks[j].key);
		const struct lw_diff_stack *o = c <= 0 ? &old->stacks[i] : NULL, *n = c >= 0 ? &new->stacks[j] : NULL;
		if (entry_add(d, o, n, cap) < 0) {
			lw_diff_free(d);
			return -1;
		}
		i += c <= 0;
		j += c >= 0;
	}
	for (int k = 0; k < LW_DK_N; k++)
		if (d->k[k].nentries > 1)
			qsort(d->k[k].entries, d->k[k].nentries, sizeof *d->k[k].entries, entry_cmp);
	return 0;
}

int lw_diff_grew(const struct lw_diff *d)
{
	for (int k = 0; k < LW_DK_N; k++)
		if (d->k[k].compared && (d->k[k].nstatus[LW_DS_GREW] || d->k[k].nstatus[LW_DS_NEW]))
			return 1;
	return 0;
}

void lw_diff_free(struct lw_diff *d)
{
	for (int k = 0; k < LW_DK_N; k++) {
		free(d->k[k].entries);
		d->k[k].entries = NULL;
		d->k[k].nentries = 0;
	}
}
